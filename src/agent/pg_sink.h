/*
 * PostgreSQL sink: one thread that reads the journal through its own cursor,
 * validates each message, and writes rows (one table per vertical, contract
 * §4) in batched transactions, with rejected messages in rejected_message
 * and its journal checkpoint in the same transaction. Reconnects with
 * exponential back-off and jitter for ever while the journal holds the
 * backlog. Tables are created and migrated at each (re)connection.
 *
 * pg_sink_new/start/stop/free from the main thread; pg_sink_is_ready from
 * any thread.
 */
#ifndef SPOT_PG_SINK_H
#define SPOT_PG_SINK_H

#include <stdbool.h>

#include "journal.h"
#include "metrics.h"
#include "spot/schema.h"
#include "groups.h"

struct pg_sink_options {
    const char *conninfo; /* libpq connection string or URI; copied */
    const char *schema;   /* PostgreSQL schema of the tables; copied */
    bool record_rejects;  /* this sink stores rejected messages (it is the
                             dead-letter store) and counts them */
};

struct pg_sink;

/* Borrowed: journal, schemas, groups, metrics (must outlive the sink). */
int pg_sink_new(struct pg_sink **out, const struct pg_sink_options *opt,
                struct journal *journal, const struct schema_set *schemas,
                const struct groups *groups, struct metrics *metrics);
/* Starts the thread. */
int pg_sink_start(struct pg_sink *s);
/* Asks the thread to stop: it finishes the current batch, drains what the
 * journal holds for at most SPOT_SHUTDOWN_DRAIN_MS while PostgreSQL is
 * reachable, commits its checkpoint and exits; joins it. */
void pg_sink_stop(struct pg_sink *s);
void pg_sink_free(struct pg_sink *s);
/* 1 while connected and the schema is migrated. */
int pg_sink_is_ready(const struct pg_sink *s);
struct activity;
void pg_sink_set_activity(struct pg_sink *s, struct activity *a);

#endif
