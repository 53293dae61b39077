/*
 * The PostgreSQL side of the vertical schemas (contract §4): the table
 * layout derived from the schema set (one table per vertical, plus
 * generic_measure and rejected_message), and the versioned migrations that
 * create and evolve it, run in one transaction under an advisory lock.
 *
 * A struct pg_layout is built once from an immutable schema set and is then
 * read-only: any thread may read it. pg_schema_migrate() uses the
 * connection it is given, from the thread that owns that connection.
 *
 * Also here: the small SQL-text builder and the result classifier that the
 * sink and the batch builder share. SQL text only ever holds identifiers
 * (quoted by PQescapeIdentifier), placeholders and whitelisted type names;
 * values always travel as parameters.
 */
#ifndef SPOT_PG_SCHEMA_H
#define SPOT_PG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

/* Debian keeps libpq-fe.h in /usr/include/postgresql (pkg-config --cflags
 * libpq); find it there too when the build does not add that path. */
#if defined(__has_include)
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif
#else
#include <libpq-fe.h>
#endif

#include "spot/limits.h"
#include "spot/schema.h"

/* Where the value of a column comes from. */
enum pg_col_source {
    PG_SRC_ID,           /* rejected_message.id: bigserial, never inserted */
    PG_SRC_APIKEY,       /* record->apikey */
    PG_SRC_DEVICE_ID,    /* record->device_id (base id) */
    PG_SRC_SERVICE,      /* record->group->service */
    PG_SRC_SERVICE_PATH, /* record->group->service_path */
    PG_SRC_TIME_INSTANT, /* record->time_instant_text */
    PG_SRC_RECEIVED_AT,  /* record->received_us */
    PG_SRC_FIELD,        /* record->values[field] */
    PG_SRC_EXTRA,        /* record->extra_json (vertical tables) */
    PG_SRC_ATTRS,        /* record->extra_json (generic_measure) */
    PG_SRC_TOPIC,        /* rejected_message: topic, made valid UTF-8 */
    PG_SRC_PAYLOAD,      /* rejected_message: raw bytes (binary param) */
    PG_SRC_REASON,       /* rejected_message: reject_reason_name() */
    PG_SRC_DETAIL,       /* rejected_message: human-readable detail */
    PG_SRC_FINGERPRINT,  /* rejected_message: SHA-256(topic, payload) */
};

/* Fixed columns of a vertical table, one per schema field but TimeInstant,
 * and extra; or rejected_message's seven. */
#define PG_MAX_COLUMNS (SPOT_MAX_SCHEMA_FIELDS + 8)

struct pg_column {
    const char *name; /* column name, unquoted */
    const char *type; /* PostgreSQL type, from a fixed whitelist */
    enum pg_col_source src;
    size_t field;  /* schema field index for PG_SRC_FIELD */
    bool key;      /* part of the primary key */
    bool not_null; /* NOT NULL in the DDL (key columns are implicitly) */
    bool unique;   /* UNIQUE constraint of its own */
    bool binary;   /* sent as a binary parameter (bytea) */
};

/* Tables: index v < SPOT_V_COUNT is vertical v's table. */
enum {
    PG_TABLE_GENERIC = SPOT_V_COUNT,
    PG_TABLE_REJECTED,
    PG_TABLE_COUNT,
};

struct pg_table {
    const char *name;                     /* unquoted table name */
    const struct schema_vertical *schema; /* NULL: generic and rejected */
    struct pg_column cols[PG_MAX_COLUMNS];
    size_t n_cols;
};

struct pg_layout {
    struct pg_table tables[PG_TABLE_COUNT];
};

/* Fills out from the schema set (borrowed: out points into it, so set must
 * outlive out). Checks that table and column names are usable and that
 * every field's pg_type is one the contract allows. Returns SPOT_OK, or
 * SPOT_ECONFIG with a message in err. */
int pg_layout_build(struct pg_layout *out, const struct schema_set *set,
                    char *err, size_t errlen);

/* Highest migration version this agent knows. */
int pg_schema_latest_version(void);

/* Brings the tables in schema (created if missing) up to date: applies the
 * versioned migrations not yet recorded in spotagent_schema_version, then
 * adds any layout table or column that is missing from the database
 * (logging each), all in one transaction under pg_advisory_xact_lock so
 * that agents starting together do not collide. types_ok (may be NULL)
 * gets, per layout table, whether every column has the layout's type (a
 * differing type is reported, never changed). Returns SPOT_OK,
 * SPOT_EAGAIN (connection lost or server error: retry later) with a
 * message in err. The connection is idle again on return when it is still
 * usable. */
int pg_schema_migrate(PGconn *conn, const char *schema,
                      const struct pg_layout *layout,
                      bool types_ok[PG_TABLE_COUNT], char *err, size_t errlen);

/* Classifies a result (NULL: out of memory or connection lost): SPOT_OK
 * when its status is want; SPOT_EPEER when the server refused the data
 * itself while the connection is fine (SQLSTATE classes 22, 23, 54 and
 * datatype mismatches: the same statement would fail again, so the caller
 * must isolate the offending row); SPOT_EAGAIN for everything else
 * (connection, resources, missing objects, permissions: retry later after
 * reconnecting). err gets one line "SQLSTATE: message". Does not clear the
 * result. */
int pg_result_check(PGconn *conn, const PGresult *res, ExecStatusType want,
                    char *err, size_t errlen);

/* Writes prefix and s into err (errlen bytes) as one line: control
 * characters and runs of blanks become one space. */
void pg_one_line(char *err, size_t errlen, const char *prefix, const char *s);

/* Runs one statement without parameters (DDL, BEGIN, COMMIT); as
 * pg_result_check. */
int pg_exec_simple(PGconn *conn, const char *sql, char *err, size_t errlen);

/* A growing SQL text buffer. After an allocation failure, oom is set and
 * further appends do nothing. */
struct pg_sql {
    char *s;
    size_t len;
    size_t cap;
    bool oom;
};

void pg_sql_reset(struct pg_sql *b);
void pg_sql_free(struct pg_sql *b);
void pg_sql_add(struct pg_sql *b, const char *s);
void pg_sql_addn(struct pg_sql *b, const char *s, size_t n);
/* Appends "$n". */
void pg_sql_param(struct pg_sql *b, unsigned n);
/* Appends the identifier quoted by PQescapeIdentifier(conn). */
void pg_sql_ident(struct pg_sql *b, PGconn *conn, const char *ident);
/* Appends "schema"."table". */
void pg_sql_qualified(struct pg_sql *b, PGconn *conn, const char *schema,
                      const char *table);

#endif
