/*
 * Builds the rows of one PostgreSQL transaction from validated records and
 * sends them, inside the caller's transaction, either
 *   - by binary COPY (pg_batch_copy): COPY "schema"."table" ("c1", ...)
 *     FROM STDIN (FORMAT binary) per vertical or generic table, the
 *     cheapest way for the server to take rows; it fails on a row whose
 *     natural key is already stored, and the caller then sends the batch
 *     again by
 *   - INSERT (pg_batch_insert): multi-row parameterised statements,
 *     INSERT INTO "schema"."table" ("c1", ...) VALUES ($1, ...), (...)
 *     ON CONFLICT DO NOTHING, prepared per connection for a few fixed row
 *     counts (see pg_batch.c).
 * Values never enter the SQL text: they are encoded once, in PostgreSQL's
 * binary format, and travel as length-prefixed COPY fields or binary
 * parameters. Every value is copied into one arena owned by the batch at
 * once (records are borrowed only until the next validator_run()), and the
 * arena, slots and parameter arrays are reused from batch to batch: no
 * allocation per row once warm.
 *
 * A struct pg_batch belongs to one thread (the PostgreSQL sink's).
 */
#ifndef SPOT_PG_BATCH_H
#define SPOT_PG_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg_schema.h"
#include "validate.h"

/* Bytes of values one batch may hold before the sink sends it early (a
 * batch of SPOT_PG_BATCH_ROWS maximal payloads would be 32 MiB). */
#define PG_BATCH_MAX_BYTES (8u * 1024u * 1024u)

struct pg_batch;

/* layout is borrowed and must outlive the batch. Returns SPOT_OK or
 * SPOT_ENOMEM. */
int pg_batch_new(struct pg_batch **out, const struct pg_layout *layout);
void pg_batch_free(struct pg_batch *b);

/* Builds the statements with conn's identifier quoting for the tables of
 * schema, and forgets the statements prepared on the previous connection.
 * types_ok[i] (from pg_schema_migrate; NULL: all true) says whether table
 * i's columns have the layout's types: binary COPY is used only then (an
 * INSERT's parameters get PostgreSQL's assignment casts, COPY's do not).
 * Call after each (re)connection. Returns SPOT_OK or SPOT_ENOMEM. */
int pg_batch_prepare(struct pg_batch *b, PGconn *conn, const char *schema,
                     const bool types_ok[PG_TABLE_COUNT]);

/* Empties the batch (keeps its buffers). */
void pg_batch_reset(struct pg_batch *b);

/* What pg_batch_add_record() did with a record. */
struct pg_add_result {
    bool row;      /* a row was added to its vertical or generic table */
    bool rejected; /* a rejected_message row was added */
    enum reject_reason reason; /* of that rejected_message row */
};

/* Adds the record (borrowed; copied) of the message topic/payload:
 * REJECT_NONE gives a row, REJECT_RANGE a row and a rejected_message row,
 * any other reason a rejected_message row only. Rejected_message rows for
 * the validator's reasons are added only when record_rejects. A value
 * PostgreSQL could not store (a NUL character in text, \u0000 in a JSON
 * string, an integer column out of range) turns the message into a
 * rejected_message row with reason "schema" whatever record_rejects.
 * Returns SPOT_OK or SPOT_ENOMEM. */
int pg_batch_add_record(struct pg_batch *b, const struct record *r,
                        const char *topic, size_t topic_len,
                        const unsigned char *payload, size_t payload_len,
                        bool record_rejects, struct pg_add_result *res);

/* Adds one rejected_message row (everything copied; topic and detail made
 * valid UTF-8). Returns SPOT_OK or SPOT_ENOMEM. */
int pg_batch_add_reject(struct pg_batch *b, const char *topic, size_t topic_len,
                        const unsigned char *payload, size_t payload_len,
                        int64_t received_us, enum reject_reason reason,
                        const char *detail);

/* Rows in the vertical and generic tables; rows in rejected_message; bytes
 * held. */
size_t pg_batch_data_rows(const struct pg_batch *b);
size_t pg_batch_reject_rows(const struct pg_batch *b);
size_t pg_batch_bytes(const struct pg_batch *b);

/* Sends every row by INSERT ... ON CONFLICT DO NOTHING, inside the
 * caller's transaction. Returns SPOT_OK, SPOT_EPEER (PostgreSQL refused a
 * row; connection fine) or SPOT_EAGAIN, with "SQLSTATE: message (table)"
 * in err (see pg_result_check). */
int pg_batch_insert(struct pg_batch *b, PGconn *conn, char *err, size_t errlen);

/* Why PostgreSQL refused a COPY. */
enum pg_copy_refusal {
    PG_COPY_DUPLICATE,   /* unique_violation: a row is already stored */
    PG_COPY_DATA,        /* another data error (SQLSTATE 22, 23, 54) */
    PG_COPY_UNSUPPORTED, /* COPY itself refused (row-level security,
                            privileges, not a table): use INSERT */
};

/* Sends the rows of the vertical and generic tables by binary COPY (by
 * INSERT for a table whose types_ok was false) and the rejected_message
 * rows by INSERT, inside the caller's transaction. Returns SPOT_OK;
 * SPOT_EPEER when PostgreSQL refused (the transaction is aborted, the
 * connection fine), *why saying how; or SPOT_EAGAIN. err as
 * pg_batch_insert. */
int pg_batch_copy(struct pg_batch *b, PGconn *conn, enum pg_copy_refusal *why,
                  char *err, size_t errlen);

/* The COPY data (binary format: header, one tuple per row, trailer) of
 * table's rows, in a buffer of the batch valid until the next call or
 * pg_batch_reset. For pg_batch_copy and tests. Returns SPOT_OK,
 * SPOT_EINVAL (no such table) or SPOT_ENOMEM. */
int pg_batch_copy_stream(struct pg_batch *b, int table, const char **data,
                         size_t *len);

#endif
