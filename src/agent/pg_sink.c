/*
 * PostgreSQL sink (see pg_sink.h): one thread, one connection, one journal
 * cursor ("pg"), one validator. new/start/stop/free from the main thread;
 * pg_sink_is_ready from any thread; everything else runs on the sink
 * thread.
 *
 * Loop: connect (asynchronous, with a deadline, TCP keepalives), migrate
 * (pg_schema.c), resume from the database checkpoint when it is ahead of the
 * journal's, then repeatedly: gather up to SPOT_PG_BATCH_ROWS journal
 * records (the first read waits 200 ms so that a stop request is seen, the
 * rest take only what is there), validate and encode each into the batch,
 * and in one transaction store the rows (binary COPY), the rejected
 * messages (INSERT) and the database checkpoint. Design and costs:
 * docs/internals/pg-sink.md.
 *
 * The database checkpoint, committed with the rows, is the one that
 * counts: the journal cursor's checkpoint file (two fsyncs per write) is
 * written at most every SPOT_PG_JOURNAL_COMMIT_MS, when the sink is idle,
 * before any rewind and at stop. After a crash the sink seeks forward from
 * the file's position to the database's (resume_from_db), so nothing is
 * written twice and nothing is skipped.
 *
 * Duplicates: COPY has no ON CONFLICT, so a batch holding a row already
 * stored (a redelivery after a crash or a reconnect) fails with
 * unique_violation; it is rolled back and sent again by INSERT ... ON
 * CONFLICT DO NOTHING, which keeps the first copy, and the next
 * SPOT_PG_COPY_PAUSE_BATCHES batches go by INSERT too (redeliveries come
 * in runs). A server that refuses COPY itself (row-level security, ...)
 * gets INSERTs for the rest of the connection.
 *
 * Failures: a refused connection or statement (anything but a data error)
 * rolls back, drops the connection, rewinds the cursor and retries after an
 * exponential back-off with jitter, for ever. A data error (PostgreSQL
 * refused a value: SQLSTATE 22, 23, 54) would fail again, so the batch is
 * replayed one message per transaction and the offending message goes to
 * rejected_message (reason "schema", PostgreSQL's error in detail).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dead_record.h"
#include "activity.h"
#include "pg_batch.h"
#include "pg_schema.h"
#include "pg_sink.h"
#include "validate.h"
#include "spot/backoff.h"
#include "spot/clock.h"
#include "spot/err.h"
#include "spot/limits.h"
#include "spot/log.h"

#define MOD "pg"

#define POLL_TIMEOUT_MS     200 /* first read of a batch: stop latency */
#define CONNECT_TIMEOUT_DEF 5   /* seconds, unless the conninfo says */
#define ERR_LEN             512

struct pg_sink {
    char *conninfo;
    char *schema;
    bool record_rejects;
    struct journal *journal;
    struct metrics *metrics;
    struct activity *activity;

    struct pg_layout layout;
    struct pg_batch *batch;
    struct validator *validator;
    struct journal_cursor *cursor;
    PGconn *conn;
    struct pg_sql ckpt_sql;  /* checkpoint upsert, per connection */
    struct pg_sql ckpt_read; /* checkpoint select, per connection */

    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_int ready;
    pthread_mutex_t mu;
    pthread_cond_t cv;

    /* Per transaction: receive times of the messages it stores, and the
     * rejections to count once it commits. */
    int64_t lat[SPOT_PG_BATCH_ROWS];
    size_t n_lat;
    uint64_t rejects[REJECT_COUNT];

    /* COPY on this connection: off after the server refused it; paused
     * for a number of batches after a duplicate. */
    bool copy_off;
    unsigned copy_pause;

    /* The last position committed to the database, and whether the
     * journal cursor's checkpoint file still lags behind it. */
    struct journal_pos written;
    bool unsynced;
    int64_t synced_ms;

    struct backoff backoff;
    char err[ERR_LEN];
};

/* --- helpers -------------------------------------------------------------- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* A loggable copy of untrusted bytes: printable ASCII kept, others '?'. */
static void printable(char *out, size_t outlen, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (outlen)
        out[k] = '\0';
}

static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    log_msg(LOG_DEBUG, MOD, "server notice: %.*s", (int)n, msg);
}

/* Waits up to ms, or until a stop request. */
static void wait_ms(struct pg_sink *s, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stop)) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&s->mu);
}

static void disconnect(struct pg_sink *s)
{
    atomic_store(&s->ready, 0);
    if (s->conn) {
        PQfinish(s->conn);
        s->conn = NULL;
    }
}

/* Writes the journal cursor's checkpoint at the last position the
 * database committed, if it lags. */
static void sync_journal(struct pg_sink *s)
{
    if (!s->unsynced)
        return;
    int rc = journal_cursor_commit(s->cursor, s->written);
    if (rc != SPOT_OK)
        log_msg(LOG_ERROR, MOD,
                "journal checkpoint failed: %s (the database checkpoint "
                "holds record %" PRIu64 ")",
                spot_strerror(rc), s->written.seq);
    s->unsynced = false;
    s->synced_ms = spot_mono_ms();
}

/* Rewinds the cursor to the last position the database committed. */
static int rewind_cursor(struct pg_sink *s)
{
    sync_journal(s);
    return journal_cursor_rewind(s->cursor);
}

/* Records not yet in the database. */
static uint64_t backlog(const struct pg_sink *s)
{
    if (!s->unsynced)
        return journal_cursor_backlog(s->cursor);
    uint64_t next = journal_next_seq(s->journal);
    return next > s->written.seq ? next - s->written.seq : 0;
}

/* A failure that calls for a new connection: drop it, rewind, count. */
static void sink_fail(struct pg_sink *s, const char *what)
{
    metrics_sink_error(s->metrics, SINK_PG);
    disconnect(s);
    int rc = rewind_cursor(s);
    if (rc != SPOT_OK)
        log_msg(LOG_ERROR, MOD, "journal rewind failed: %s", spot_strerror(rc));
    unsigned delay = backoff_next(&s->backoff);
    log_msg(LOG_WARN, MOD, "%s: %s; reconnecting in %u ms", what, s->err,
            delay);
    wait_ms(s, delay);
}

/* --- connection ----------------------------------------------------------- */

static int connect_timeout_s(PGconn *c)
{
    int t = CONNECT_TIMEOUT_DEF;
    PQconninfoOption *opts = PQconninfo(c);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && o->val[0]) {
            long v = strtol(o->val, NULL, 10);
            if (v > 0 && v < 3600)
                t = (int)v;
        }
    }
    PQconninfoFree(opts);
    return t < 2 ? 2 : t;
}

/* Opens s->conn; SPOT_OK, SPOT_EAGAIN (err filled) or SPOT_ESHUTDOWN. */
static int open_connection(struct pg_sink *s)
{
    /* Entries before dbname are defaults the conninfo may override; those
     * after it are forced. */
    const char *const kw[] = {
        "connect_timeout",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "application_name",
        "dbname",
        "client_encoding",
        NULL,
    };
    const char *const val[] = {
        "5", "1", "30", "10", "3", "spotagent", s->conninfo, "UTF8", NULL,
    };
    PGconn *c = PQconnectStartParams(kw, val, 1);
    int rc = SPOT_EAGAIN;
    if (!c) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return SPOT_EAGAIN;
    }
    if (PQstatus(c) == CONNECTION_BAD)
        goto fail;
    int64_t deadline = spot_mono_ms() + 1000 * connect_timeout_s(c);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED)
            goto fail;
        if (atomic_load(&s->stop)) {
            rc = SPOT_ESHUTDOWN;
            snprintf(s->err, sizeof s->err, "stopping");
            goto out;
        }
        int64_t left = deadline - spot_mono_ms();
        if (left <= 0) {
            snprintf(s->err, sizeof s->err, "timed out");
            goto out;
        }
        struct pollfd pfd = {
            .fd = PQsocket(c),
            .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
        };
        int r = poll(&pfd, 1, left < 100 ? (int)left : 100);
        if (r < 0 && errno != EINTR) {
            snprintf(s->err, sizeof s->err, "poll: %s", strerror(errno));
            goto out;
        }
        if (r > 0)
            st = PQconnectPoll(c);
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    s->conn = c;
    return SPOT_OK;
fail:
    pg_one_line(s->err, sizeof s->err, "", PQerrorMessage(c));
out:
    PQfinish(c);
    return rc;
}

/* Builds the checkpoint statements for the new connection. */
static int build_checkpoint_sql(struct pg_sink *s)
{
    pg_sql_reset(&s->ckpt_sql);
    pg_sql_add(&s->ckpt_sql, "INSERT INTO ");
    pg_sql_qualified(&s->ckpt_sql, s->conn, s->schema, "spotagent_checkpoint");
    pg_sql_add(&s->ckpt_sql,
               " AS c (sink, journal_id, seq, segment, \"offset\", "
               "updated_at) VALUES ($1, $2, $3, $4, $5, now()) "
               "ON CONFLICT (sink, journal_id) DO UPDATE SET "
               "seq = EXCLUDED.seq, segment = EXCLUDED.segment, "
               "\"offset\" = EXCLUDED.\"offset\", "
               "updated_at = EXCLUDED.updated_at "
               "WHERE c.seq IS NULL OR c.seq <= EXCLUDED.seq");
    pg_sql_reset(&s->ckpt_read);
    pg_sql_add(&s->ckpt_read, "SELECT journal_id, seq, segment, \"offset\" "
                              "FROM ");
    pg_sql_qualified(&s->ckpt_read, s->conn, s->schema, "spotagent_checkpoint");
    pg_sql_add(&s->ckpt_read, " WHERE sink = $1 AND journal_id = $2");
    return s->ckpt_sql.oom || s->ckpt_read.oom ? SPOT_ENOMEM : SPOT_OK;
}

/* Seeks the cursor to the database checkpoint when it belongs to this
 * journal and is ahead of the file checkpoint (the agent died between
 * COMMIT and the journal commit). */
static int resume_from_db(struct pg_sink *s)
{
    const char *params[2] = {"pg", journal_id(s->journal)};
    PGresult *res =
        PQexecParams(s->conn, s->ckpt_read.s, 2, NULL, params, NULL, NULL, 0);
    int rc =
        pg_result_check(s->conn, res, PGRES_TUPLES_OK, s->err, sizeof s->err);
    if (rc != SPOT_OK) {
        PQclear(res);
        return SPOT_EAGAIN;
    }
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
        !PQgetisnull(res, 0, 1) && !PQgetisnull(res, 0, 2) &&
        !PQgetisnull(res, 0, 3) &&
        strcmp(PQgetvalue(res, 0, 0), journal_id(s->journal)) == 0) {
        struct journal_pos db = {
            .seq = strtoull(PQgetvalue(res, 0, 1), NULL, 10),
            .segment = strtoull(PQgetvalue(res, 0, 2), NULL, 10),
            .offset = strtoull(PQgetvalue(res, 0, 3), NULL, 10),
        };
        struct journal_pos file = journal_cursor_checkpoint(s->cursor);
        if (db.seq > file.seq) {
            int r = journal_cursor_seek(s->cursor, db);
            if (r == SPOT_OK)
                log_msg(LOG_INFO, MOD,
                        "resumed from the database checkpoint (record "
                        "%" PRIu64 ", journal checkpoint was %" PRIu64 ")",
                        db.seq, file.seq);
            else
                log_msg(LOG_WARN, MOD,
                        "database checkpoint (record %" PRIu64
                        ") unusable: %s; resuming from record %" PRIu64,
                        db.seq, spot_strerror(r), file.seq);
        }
    }
    PQclear(res);
    return SPOT_OK;
}

/* Connects, migrates and resumes. SPOT_OK, SPOT_EAGAIN or
 * SPOT_ESHUTDOWN. */
static int sink_connect(struct pg_sink *s)
{
    int rc = open_connection(s);
    if (rc != SPOT_OK)
        return rc;
    const char *host = PQhost(s->conn);
    const char *port = PQport(s->conn);
    const char *db = PQdb(s->conn);
    log_msg(LOG_INFO, MOD, "connected to %s:%s/%s (server %d)",
            host ? host : "?", port ? port : "?", db ? db : "?",
            PQserverVersion(s->conn));
    bool types_ok[PG_TABLE_COUNT];
    rc = pg_schema_migrate(s->conn, s->schema, &s->layout, types_ok, s->err,
                           sizeof s->err);
    const char *idt = PQparameterStatus(s->conn, "integer_datetimes");
    if (rc == SPOT_OK && (!idt || strcmp(idt, "on") != 0)) {
        /* timestamps travel in binary: microseconds as an integer */
        snprintf(s->err, sizeof s->err,
                 "the server keeps timestamps as floating point "
                 "(integer_datetimes %s); spotagent needs PostgreSQL 10 or "
                 "later",
                 idt ? idt : "unknown");
        disconnect(s);
        return SPOT_EAGAIN;
    }
    s->copy_off = false;
    s->copy_pause = 0;
    if (rc == SPOT_OK) {
        rc = pg_batch_prepare(s->batch, s->conn, s->schema, types_ok);
        if (rc == SPOT_OK)
            rc = build_checkpoint_sql(s);
        if (rc != SPOT_OK)
            snprintf(s->err, sizeof s->err, "%s", spot_strerror(rc));
    } else {
        char tmp[ERR_LEN];
        snprintf(tmp, sizeof tmp, "%s", s->err);
        snprintf(s->err, sizeof s->err, "migrating schema %.63s: %.400s",
                 s->schema, tmp);
    }
    if (rc == SPOT_OK)
        rc = resume_from_db(s);
    if (rc != SPOT_OK) {
        disconnect(s);
        return SPOT_EAGAIN;
    }
    atomic_store(&s->ready, 1);
    log_msg(LOG_INFO, MOD, "ready: schema %s at version %d", s->schema,
            pg_schema_latest_version());
    return SPOT_OK;
}

/* --- one transaction ------------------------------------------------------ */

static void txn_reset(struct pg_sink *s)
{
    pg_batch_reset(s->batch);
    s->n_lat = 0;
    memset(s->rejects, 0, sizeof s->rejects);
}

/* A dead letter another sink journaled (dead_record.h): stored here when
 * this sink is the dead-letter store, skipped otherwise. */
static int encode_dead(struct pg_sink *s, const struct journal_entry *e)
{
    struct dead_record d;
    if (!s->record_rejects)
        return SPOT_OK;
    if (dead_record_decode(e, &d) != SPOT_OK) {
        log_msg(LOG_ERROR, MOD, "skipping a malformed dead-letter record");
        return SPOT_OK;
    }
    char detail[SPOT_MAX_DETAIL_LEN * 4];
    snprintf(detail, sizeof detail, "%.*s", (int)d.detail_len, d.detail);
    int rc =
        pg_batch_add_reject(s->batch, d.topic, d.topic_len, d.payload,
                            d.payload_len, d.received_us, d.reason, detail);
    if (rc == SPOT_OK) {
        s->rejects[d.reason]++;
        activity_rejected(s->activity, d.topic, d.topic_len, d.reason, detail,
                          d.received_us);
    }
    return rc;
}

/* Validates and encodes one journal record into the batch. */
static int encode(struct pg_sink *s, const struct journal_entry *e)
{
    if (dead_record_is(e))
        return encode_dead(s, e);
    const struct record *r = NULL;
    int rc = validator_run(s->validator, e->topic, e->topic_len, e->payload,
                           e->payload_len, e->received_us, &r);
    if (rc != SPOT_OK)
        return rc;
    struct pg_add_result res;
    rc = pg_batch_add_record(s->batch, r, e->topic, e->topic_len, e->payload,
                             e->payload_len, s->record_rejects, &res);
    if (rc != SPOT_OK)
        return rc;
    if ((res.row || res.rejected) && s->n_lat < SPOT_PG_BATCH_ROWS)
        s->lat[s->n_lat++] = e->received_us;
    if (res.rejected) {
        s->rejects[res.reason]++;
        activity_rejected(s->activity, e->topic, e->topic_len, res.reason,
                          r->detail, e->received_us);
        if (log_enabled(LOG_DEBUG)) {
            char t[128];
            printable(t, sizeof t, e->topic, e->topic_len);
            log_msg(LOG_DEBUG, MOD, "rejected message on %s: %s", t,
                    reject_reason_name(res.reason));
        }
    }
    return SPOT_OK;
}

static int rollback_if_open(struct pg_sink *s)
{
    if (PQstatus(s->conn) == CONNECTION_OK &&
        PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(s->conn, "ROLLBACK");
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        return ok ? SPOT_OK : SPOT_EAGAIN;
    }
    return SPOT_OK;
}

/* Writes the batch and the checkpoint `next` in one transaction, by COPY
 * when why is not NULL, else by INSERT. Returns SPOT_OK, SPOT_EPEER (data
 * refused, rolled back, connection usable; *why says how for COPY) or
 * SPOT_EAGAIN; s->err says why. */
static int txn_write(struct pg_sink *s, struct journal_pos next,
                     enum pg_copy_refusal *why)
{
    char seq[24], seg[24], off[24];
    snprintf(seq, sizeof seq, "%" PRIu64, next.seq);
    snprintf(seg, sizeof seg, "%" PRIu64, next.segment);
    snprintf(off, sizeof off, "%" PRIu64, next.offset);
    const char *params[5] = {"pg", journal_id(s->journal), seq, seg, off};

    int rc = pg_exec_simple(s->conn, "BEGIN", s->err, sizeof s->err);
    if (rc != SPOT_OK)
        return SPOT_EAGAIN;
    if (why)
        rc = pg_batch_copy(s->batch, s->conn, why, s->err, sizeof s->err);
    else
        rc = pg_batch_insert(s->batch, s->conn, s->err, sizeof s->err);
    if (rc == SPOT_OK) {
        PGresult *res = PQexecParams(s->conn, s->ckpt_sql.s, 5, NULL, params,
                                     NULL, NULL, 0);
        rc = pg_result_check(s->conn, res, PGRES_COMMAND_OK, s->err,
                             sizeof s->err);
        PQclear(res);
    }
    if (rc == SPOT_OK)
        rc = pg_exec_simple(s->conn, "COMMIT", s->err, sizeof s->err);
    if (rc != SPOT_OK && rollback_if_open(s) != SPOT_OK)
        rc = SPOT_EAGAIN;
    return rc;
}

/* Writes a gathered batch: by COPY unless COPY is off or paused, and by
 * INSERT again when COPY was refused. As txn_write. */
static int batch_write(struct pg_sink *s, struct journal_pos next)
{
    enum pg_copy_refusal why = PG_COPY_DATA;
    if (s->copy_off || s->copy_pause > 0) {
        if (s->copy_pause > 0)
            s->copy_pause--;
        return txn_write(s, next, NULL);
    }
    int rc = txn_write(s, next, &why);
    if (rc != SPOT_EPEER)
        return rc;
    if (why == PG_COPY_UNSUPPORTED) {
        s->copy_off = true;
        log_msg(LOG_WARN, MOD,
                "COPY refused: %s; writing by INSERT on this connection",
                s->err);
    } else {
        s->copy_pause = SPOT_PG_COPY_PAUSE_BATCHES;
        log_msg(LOG_INFO, MOD,
                "COPY refused the batch (%s): sending it by INSERT ... ON "
                "CONFLICT DO NOTHING, and the next %d batches too",
                s->err, SPOT_PG_COPY_PAUSE_BATCHES);
    }
    return txn_write(s, next, NULL);
}

/* After COMMIT: the journal checkpoint (now and then) and the metrics. */
static void txn_done(struct pg_sink *s, struct journal_pos next)
{
    s->written = next;
    s->unsynced = true;
    if (spot_mono_ms() - s->synced_ms >= SPOT_PG_JOURNAL_COMMIT_MS)
        sync_journal(s);
    size_t rows = pg_batch_data_rows(s->batch);
    if (rows)
        metrics_sink_writes(s->metrics, SINK_PG, rows);
    for (int r = 0; r < REJECT_COUNT; r++) {
        for (uint64_t i = 0; i < s->rejects[r]; i++)
            metrics_rejected(s->metrics, (enum reject_reason)r);
    }
    int64_t now = spot_now_us();
    for (size_t i = 0; i < s->n_lat; i++)
        metrics_latency(s->metrics, SINK_PG, s->lat[i], now);
    metrics_sink_backlog(s->metrics, SINK_PG, backlog(s));
}

/* Replays the refused batch (up to record `last`) one message per
 * transaction, dead-lettering each message PostgreSQL refuses. Returns
 * SPOT_OK, SPOT_EPEER (connection dropped) or a journal error. */
static int isolate(struct pg_sink *s, uint64_t last)
{
    int rc = rewind_cursor(s);
    if (rc != SPOT_OK)
        return rc;
    for (;;) {
        struct journal_entry e;
        rc = journal_cursor_next(s->cursor, 0, &e);
        if (rc == SPOT_EAGAIN || rc == SPOT_ESHUTDOWN)
            return SPOT_OK; /* nothing left: cannot happen after rewind */
        if (rc != SPOT_OK)
            return rc;
        txn_reset(s);
        rc = encode(s, &e);
        if (rc != SPOT_OK) {
            rewind_cursor(s);
            return rc;
        }
        rc = txn_write(s, e.next, NULL);
        if (rc == SPOT_EPEER) {
            char t[128];
            char detail[ERR_LEN + 64];
            printable(t, sizeof t, e.topic, e.topic_len);
            snprintf(detail, sizeof detail, "PostgreSQL refused the row: %s",
                     s->err);
            log_msg(LOG_WARN, MOD, "message on %s dead-lettered: %s", t,
                    s->err);
            metrics_sink_error(s->metrics, SINK_PG);
            txn_reset(s);
            rc = pg_batch_add_reject(s->batch, e.topic, e.topic_len, e.payload,
                                     e.payload_len, e.received_us,
                                     REJECT_SCHEMA, detail);
            if (rc != SPOT_OK) {
                rewind_cursor(s);
                return rc;
            }
            s->lat[s->n_lat++] = e.received_us;
            s->rejects[REJECT_SCHEMA]++;
            rc = txn_write(s, e.next, NULL);
            if (rc == SPOT_EPEER) {
                /* Not even storable as a dead letter: skip it, loudly,
                 * rather than stall the sink for ever. */
                log_msg(LOG_ERROR, MOD,
                        "message on %s dropped by the PostgreSQL sink: %s", t,
                        s->err);
                txn_reset(s);
                rc = txn_write(s, e.next, NULL);
            }
        }
        if (rc != SPOT_OK) {
            sink_fail(s, "writing one message");
            return SPOT_EPEER;
        }
        txn_done(s, e.next);
        if (e.next.seq >= last)
            return SPOT_OK;
    }
}

/* Gathers, writes and commits one batch. Returns SPOT_OK (progress),
 * SPOT_EAGAIN (nothing to read), SPOT_ESHUTDOWN (journal shut down and
 * read to the end), SPOT_EPEER (PostgreSQL failed: connection dropped,
 * back-off done), or a journal or memory error (cursor rewound). */
static int sink_step(struct pg_sink *s, int timeout_ms)
{
    struct journal_pos last = {0, 0, 0};
    size_t n = 0;
    int rc = SPOT_OK;
    int64_t deadline = 0;
    size_t n_slept = 0; /* records in the batch at the last sleep */
    txn_reset(s);
    while (n < SPOT_PG_BATCH_ROWS &&
           pg_batch_bytes(s->batch) < PG_BATCH_MAX_BYTES) {
        struct journal_entry e;
        rc = journal_cursor_next(s->cursor, n == 0 ? timeout_ms : 0, &e);
        if (rc == SPOT_EAGAIN && n > 0 && n > n_slept &&
            !atomic_load(&s->stop)) {
            /* Let the batch fill while records keep coming: a
             * transaction costs the server as much as a few hundred rows.
             * Sleep in slices rather than wait for each record, which
             * would wake this thread once per message; send when a slice
             * brought nothing (the stream paused) or at the deadline. */
            int64_t left = deadline - spot_mono_ms();
            if (left > 0) {
                n_slept = n;
                wait_ms(s, left < SPOT_PG_BATCH_SLICE_MS
                               ? (unsigned)left
                               : SPOT_PG_BATCH_SLICE_MS);
                continue;
            }
        }
        if (rc != SPOT_OK)
            break;
        if (n == 0)
            deadline = spot_mono_ms() + SPOT_PG_BATCH_LINGER_MS;
        rc = encode(s, &e);
        if (rc != SPOT_OK) {
            rewind_cursor(s);
            return rc;
        }
        last = e.next;
        n++;
    }
    if (n == 0)
        return rc;

    rc = batch_write(s, last);
    if (rc == SPOT_OK) {
        txn_done(s, last);
        return SPOT_OK;
    }
    if (rc == SPOT_EPEER) {
        log_msg(LOG_WARN, MOD,
                "batch of %zu messages refused: %s; retrying one by one", n,
                s->err);
        metrics_sink_error(s->metrics, SINK_PG);
        return isolate(s, last.seq);
    }
    sink_fail(s, "writing a batch");
    return SPOT_EPEER;
}

/* While idle, notices a server that went away (a shutdown sends a FATAL
 * message and closes the socket; keepalives catch a dead peer): reads
 * what is there without blocking, so that /ready says "pg" is down before
 * the next message would find out. */
static void idle_check(struct pg_sink *s)
{
    if (!s->conn)
        return;
    if (PQconsumeInput(s->conn) != 0 && PQstatus(s->conn) == CONNECTION_OK)
        return;
    char *m = PQerrorMessage(s->conn);
    snprintf(s->err, sizeof s->err, "%.*s", (int)strcspn(m, "\n"), m);
    sink_fail(s, "connection lost while idle");
}

/* --- thread --------------------------------------------------------------- */

static void *sink_main(void *arg)
{
    struct pg_sink *s = arg;
    int64_t drain_deadline = -1;

    for (;;) {
        metrics_heartbeat(s->metrics, SINK_PG);
        bool stopping = atomic_load(&s->stop);
        if (stopping) {
            if (drain_deadline < 0)
                drain_deadline = spot_mono_ms() + SPOT_SHUTDOWN_DRAIN_MS;
            if (!s->conn || spot_mono_ms() >= drain_deadline)
                break;
        }
        if (!s->conn) {
            int rc = sink_connect(s);
            if (rc == SPOT_ESHUTDOWN)
                break;
            if (rc != SPOT_OK) {
                metrics_sink_error(s->metrics, SINK_PG);
                unsigned delay = backoff_next(&s->backoff);
                log_msg(LOG_WARN, MOD,
                        "PostgreSQL unavailable: %s; retrying in %u ms", s->err,
                        delay);
                wait_ms(s, delay);
                continue;
            }
            backoff_reset(&s->backoff);
        }
        int rc = sink_step(s, stopping ? 0 : POLL_TIMEOUT_MS);
        switch (rc) {
        case SPOT_OK:
            backoff_reset(&s->backoff);
            break;
        case SPOT_EPEER:
            break; /* sink_fail() backed off */
        case SPOT_EAGAIN:
            sync_journal(s); /* idle: catch the file checkpoint up */
            metrics_sink_backlog(s->metrics, SINK_PG, backlog(s));
            if (stopping)
                goto done;
            idle_check(s);
            break;
        case SPOT_ESHUTDOWN:
            if (stopping)
                goto done;
            wait_ms(s, SPOT_BACKOFF_MAX_MS); /* until stop */
            break;
        default: {
            unsigned delay = backoff_next(&s->backoff);
            log_msg(LOG_ERROR, MOD,
                    "processing the journal: %s; retrying in %u ms",
                    spot_strerror(rc), delay);
            if (stopping)
                goto done;
            wait_ms(s, delay);
            break;
        }
        }
    }
done:
    sync_journal(s);
    if (s->conn)
        log_msg(LOG_INFO, MOD, "stopped; %" PRIu64 " records not yet written",
                journal_cursor_backlog(s->cursor));
    else
        log_msg(LOG_INFO, MOD,
                "stopped while PostgreSQL is unavailable; %" PRIu64
                " records wait in the journal",
                journal_cursor_backlog(s->cursor));
    disconnect(s);
    return NULL;
}

/* --- public --------------------------------------------------------------- */

int pg_sink_new(struct pg_sink **out, const struct pg_sink_options *opt,
                struct journal *journal, const struct schema_set *schemas,
                const struct groups *groups, struct metrics *metrics)
{
    char err[256];
    int rc = SPOT_ENOMEM;
    if (!opt || !opt->conninfo || !opt->conninfo[0] || !journal || !schemas)
        return SPOT_EINVAL;
    struct pg_sink *s = calloc(1, sizeof *s);
    if (!s)
        return SPOT_ENOMEM;
    s->record_rejects = opt->record_rejects;
    s->journal = journal;
    s->metrics = metrics;
    atomic_init(&s->stop, false);
    atomic_init(&s->ready, 0);
    backoff_init(&s->backoff);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->mu, NULL);

    s->conninfo = dup_str(opt->conninfo);
    s->schema = dup_str(opt->schema && opt->schema[0] ? opt->schema : "public");
    if (!s->conninfo || !s->schema)
        goto fail;
    rc = pg_layout_build(&s->layout, schemas, err, sizeof err);
    if (rc != SPOT_OK) {
        log_msg(LOG_ERROR, MOD, "schemas unusable for PostgreSQL: %s", err);
        goto fail;
    }
    rc = pg_batch_new(&s->batch, &s->layout);
    if (rc != SPOT_OK)
        goto fail;
    rc = validator_new(&s->validator, schemas, groups);
    if (rc != SPOT_OK)
        goto fail;
    rc = journal_cursor_open(journal, "pg", &s->cursor);
    if (rc != SPOT_OK) {
        log_msg(LOG_ERROR, MOD, "opening journal cursor pg: %s",
                spot_strerror(rc));
        goto fail;
    }
    *out = s;
    return SPOT_OK;
fail:
    pg_sink_free(s);
    return rc;
}

int pg_sink_start(struct pg_sink *s)
{
    if (s->started)
        return SPOT_EINVAL;
    atomic_store(&s->stop, false);
    int e = pthread_create(&s->thread, NULL, sink_main, s);
    if (e != 0) {
        log_msg(LOG_ERROR, MOD, "starting the sink thread: %s", strerror(e));
        return e == EAGAIN ? SPOT_EAGAIN : SPOT_ENOMEM;
    }
    s->started = true;
    return SPOT_OK;
}

void pg_sink_stop(struct pg_sink *s)
{
    if (!s || !s->started)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->started = false;
}

void pg_sink_free(struct pg_sink *s)
{
    if (!s)
        return;
    pg_sink_stop(s);
    disconnect(s);
    journal_cursor_close(s->cursor);
    validator_free(s->validator);
    pg_batch_free(s->batch);
    pg_sql_free(&s->ckpt_sql);
    pg_sql_free(&s->ckpt_read);
    free(s->conninfo);
    free(s->schema);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

int pg_sink_is_ready(const struct pg_sink *s)
{
    return s ? atomic_load(&s->ready) : 0;
}

void pg_sink_set_activity(struct pg_sink *s, struct activity *a)
{
    s->activity = a;
}
