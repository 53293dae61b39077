/*
 * stdout sink: reads the journal, validates, prints accepted messages as
 * the NGSI-v2 entities the Orion sink would send (same encoder, same
 * --ngsi-mapping, static device attributes), one per line, and keeps
 * rejected ones in the file dead-letter store. The checkpoint advances
 * after each flushed batch.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/clock.h"
#include "spot/err.h"
#include "spot/limits.h"
#include "spot/log.h"
#include "dead_record.h"
#include "deadletter.h"
#include "stdout_sink.h"
#include "activity.h"
#include "ngsi_encode.h"
#include "validate.h"

#define MOD       "stdout"
#define BATCH_MAX SPOT_PG_BATCH_ROWS

struct stdout_sink {
    struct journal *journal;
    struct journal_cursor *cursor;
    const struct schema_set *schemas;
    struct metrics *metrics;
    struct activity *activity;
    struct validator *validator;
    struct deadletter *deadletter; /* NULL unless we record rejects */
    struct ngsi_encoder *encoder;
    pthread_t thread;
    int started;
    atomic_int stopping;
};

/* Writes the NGSI-v2 entity of an accepted record, as the NGSI sinks
 * would send it (ngsi_encode.c). A record the encoder refuses is
 * dead-lettered with reason ngsi_rejected when this sink keeps the
 * rejects. Returns SPOT_OK, SPOT_EIO or SPOT_ENOMEM. */
static int print_entity(struct stdout_sink *s, const struct journal_entry *e,
                        const struct record *r)
{
    struct ngsi_entity ent;
    char why[SPOT_MAX_DETAIL_LEN];
    int rc = ngsi_encode(s->encoder, r, &ent, why, sizeof why);
    if (rc == SPOT_EINVAL) {
        log_msg(LOG_INFO, MOD, "not an NGSI entity (ngsi_rejected) on %.*s: %s",
                (int)(e->topic_len > 200 ? 200 : e->topic_len), e->topic, why);
        if (s->deadletter == NULL)
            return SPOT_OK;
        rc = deadletter_write(s->deadletter, REJECT_NGSI, why, strlen(why),
                              r->received_us, e->topic, e->topic_len,
                              e->payload, e->payload_len);
        if (rc == SPOT_OK) {
            metrics_rejected(s->metrics, REJECT_NGSI);
            activity_rejected(s->activity, e->topic, e->topic_len, REJECT_NGSI,
                              why, e->received_us);
        }
        return rc;
    }
    if (rc != SPOT_OK)
        return rc;
    if (fwrite(ent.json, 1, ent.len, stdout) != ent.len ||
        fputc('\n', stdout) == EOF)
        return SPOT_EIO;
    metrics_sink_writes(s->metrics, SINK_STDOUT, 1);
    return SPOT_OK;
}

/* A dead letter another sink journaled (dead_record.h). */
static int handle_dead(struct stdout_sink *s, const struct journal_entry *e)
{
    struct dead_record d;
    if (s->deadletter == NULL)
        return SPOT_OK;
    if (dead_record_decode(e, &d) != SPOT_OK) {
        log_msg(LOG_ERROR, MOD, "skipping a malformed dead-letter record");
        return SPOT_OK;
    }
    int rc = deadletter_write(s->deadletter, d.reason, d.detail, d.detail_len,
                              d.received_us, d.topic, d.topic_len, d.payload,
                              d.payload_len);
    if (rc == SPOT_OK) {
        char detail[SPOT_MAX_DETAIL_LEN];
        snprintf(detail, sizeof detail, "%.*s", (int)d.detail_len, d.detail);
        metrics_rejected(s->metrics, d.reason);
        activity_rejected(s->activity, d.topic, d.topic_len, d.reason, detail,
                          d.received_us);
    }
    return rc;
}

static int handle(struct stdout_sink *s, const struct journal_entry *e)
{
    if (dead_record_is(e))
        return handle_dead(s, e);
    const struct record *r;
    int rc = validator_run(s->validator, e->topic, e->topic_len, e->payload,
                           e->payload_len, e->received_us, &r);
    if (rc != SPOT_OK)
        return rc;
    if (r->reason == REJECT_NONE || r->reason == REJECT_RANGE) {
        rc = print_entity(s, e, r);
        if (rc != SPOT_OK)
            return rc;
    }
    if (r->reason != REJECT_NONE && s->deadletter != NULL) {
        rc = deadletter_write(s->deadletter, r->reason, r->detail,
                              strlen(r->detail), r->received_us, e->topic,
                              e->topic_len, e->payload, e->payload_len);
        if (rc != SPOT_OK)
            return rc;
        metrics_rejected(s->metrics, r->reason);
        activity_rejected(s->activity, e->topic, e->topic_len, r->reason,
                          r->detail, e->received_us);
        log_msg(LOG_INFO, MOD, "rejected (%s) on %.*s: %s",
                reject_reason_name(r->reason),
                (int)(e->topic_len > 200 ? 200 : e->topic_len), e->topic,
                r->detail);
    }
    return SPOT_OK;
}

static int flush_batch(struct stdout_sink *s)
{
    if (fflush(stdout) != 0)
        return SPOT_EIO;
    if (s->deadletter != NULL)
        return deadletter_sync(s->deadletter);
    return SPOT_OK;
}

static void *run(void *arg)
{
    struct stdout_sink *s = arg;
    int64_t shutdown_deadline = 0;
    for (;;) {
        metrics_heartbeat(s->metrics, SINK_STDOUT);
        if (atomic_load(&s->stopping) && shutdown_deadline == 0)
            shutdown_deadline = spot_mono_ms() + SPOT_SHUTDOWN_DRAIN_MS;
        if (shutdown_deadline && spot_mono_ms() > shutdown_deadline)
            break;
        struct journal_entry e;
        int n = 0, rc = SPOT_OK;
        struct journal_pos last = {0, 0, 0};
        int64_t first_received = 0;
        while (n < BATCH_MAX) {
            rc = journal_cursor_next(s->cursor, n == 0 ? 200 : 0, &e);
            if (rc != SPOT_OK)
                break;
            if (n == 0)
                first_received = e.received_us;
            rc = handle(s, &e);
            if (rc != SPOT_OK)
                break;
            last = e.next;
            n++;
        }
        if (rc == SPOT_EIO || rc == SPOT_ENOMEM || rc == SPOT_ECORRUPT) {
            log_msg(LOG_ERROR, MOD, "stdout sink stops: %s", spot_strerror(rc));
            metrics_sink_error(s->metrics, SINK_STDOUT);
            break;
        }
        if (n > 0) {
            if (flush_batch(s) != SPOT_OK) {
                log_msg(LOG_ERROR, MOD, "cannot write standard output: %s",
                        strerror(errno));
                metrics_sink_error(s->metrics, SINK_STDOUT);
                break;
            }
            journal_cursor_commit(s->cursor, last);
            metrics_latency(s->metrics, SINK_STDOUT, first_received,
                            spot_now_us());
        }
        metrics_sink_backlog(s->metrics, SINK_STDOUT,
                             journal_cursor_backlog(s->cursor));
        if (rc == SPOT_ESHUTDOWN || (rc == SPOT_EAGAIN && shutdown_deadline))
            break;
    }
    return NULL;
}

int stdout_sink_new(struct stdout_sink **out,
                    const struct stdout_sink_options *o,
                    struct journal *journal, const struct schema_set *schemas,
                    const struct groups *groups, const struct devices *devices,
                    struct metrics *metrics)
{
    struct stdout_sink *s = calloc(1, sizeof *s);
    if (s == NULL)
        return SPOT_ENOMEM;
    s->journal = journal;
    s->schemas = schemas;
    s->metrics = metrics;
    int rc = validator_new(&s->validator, schemas, groups);
    if (rc == SPOT_OK)
        rc = journal_cursor_open(journal, "stdout", &s->cursor);
    if (rc == SPOT_OK && o->record_rejects)
        rc = deadletter_open(&s->deadletter, o->data_dir);
    if (rc == SPOT_OK)
        rc =
            ngsi_encoder_new(&s->encoder, NGSI_FLAVOUR_V2, o->mapping, devices);
    if (rc != SPOT_OK) {
        stdout_sink_free(s);
        return rc;
    }
    *out = s;
    return SPOT_OK;
}

int stdout_sink_start(struct stdout_sink *s)
{
    if (pthread_create(&s->thread, NULL, run, s) != 0)
        return SPOT_ENOMEM;
    s->started = 1;
    return SPOT_OK;
}

void stdout_sink_stop(struct stdout_sink *s)
{
    if (s == NULL || !s->started)
        return;
    atomic_store(&s->stopping, 1);
    pthread_join(s->thread, NULL);
    s->started = 0;
}

void stdout_sink_free(struct stdout_sink *s)
{
    if (s == NULL)
        return;
    stdout_sink_stop(s);
    journal_cursor_close(s->cursor);
    deadletter_close(s->deadletter);
    validator_free(s->validator);
    ngsi_encoder_free(s->encoder);
    free(s);
}

void stdout_sink_set_activity(struct stdout_sink *s, struct activity *a)
{
    s->activity = a;
}
