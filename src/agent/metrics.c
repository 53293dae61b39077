/*
 * Metrics of the contract §5: relaxed C11 atomics updated from any thread
 * without locks, rendered on demand in the Prometheus text format.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/clock.h"
#include "spot/err.h"
#include "metrics.h"

#define N_VERTICAL_LABELS (METRICS_VERTICAL_UNKNOWN + 1)

/* Latency histogram buckets, seconds. */
static const double buckets[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                 1,     5,     10,   60,   300};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])

struct histogram {
    atomic_ullong counts[N_BUCKETS + 1]; /* last: +Inf */
    atomic_ullong sum_us;
    atomic_ullong count;
};

struct metrics {
    atomic_ullong received[N_VERTICAL_LABELS];
    atomic_ullong rejected[REJECT_COUNT];
    atomic_ullong writes[SINK_COUNT];
    atomic_ullong errors[SINK_COUNT];
    atomic_ullong backlog[SINK_COUNT];
    atomic_int connected;
    atomic_ullong journal_bytes, journal_max_bytes;
    atomic_int journal_full, journal_failing;
    atomic_llong heartbeat_ms[SINK_COUNT]; /* monotonic; 0: never */
    struct histogram latency[SINK_COUNT];
};

const char *sink_name(enum sink_id s)
{
    static const char *const names[SINK_COUNT] = {"pg", "orion", "ngsi_ld",
                                                  "stdout"};
    return (unsigned)s < SINK_COUNT ? names[s] : "unknown";
}

int metrics_new(struct metrics **out)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return SPOT_ENOMEM;
    *out = m;
    return SPOT_OK;
}

void metrics_free(struct metrics *m)
{
    free(m);
}

static void add(atomic_ullong *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(const atomic_ullong *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void metrics_received(struct metrics *m, int vertical)
{
    if (vertical < 0 || vertical >= N_VERTICAL_LABELS)
        vertical = METRICS_VERTICAL_UNKNOWN;
    add(&m->received[vertical], 1);
}

void metrics_rejected(struct metrics *m, enum reject_reason r)
{
    if ((unsigned)r < REJECT_COUNT)
        add(&m->rejected[r], 1);
}

void metrics_sink_writes(struct metrics *m, enum sink_id s, uint64_t n)
{
    add(&m->writes[s], n);
}

void metrics_sink_error(struct metrics *m, enum sink_id s)
{
    add(&m->errors[s], 1);
}

void metrics_sink_backlog(struct metrics *m, enum sink_id s, uint64_t n)
{
    atomic_store_explicit(&m->backlog[s], n, memory_order_relaxed);
}

void metrics_mqtt_connected(struct metrics *m, int connected)
{
    atomic_store_explicit(&m->connected, connected != 0, memory_order_relaxed);
}

void metrics_journal(struct metrics *m, uint64_t bytes, uint64_t max_bytes,
                     int full, int failing)
{
    atomic_store_explicit(&m->journal_failing, failing != 0,
                          memory_order_relaxed);
    atomic_store_explicit(&m->journal_bytes, bytes, memory_order_relaxed);
    atomic_store_explicit(&m->journal_max_bytes, max_bytes,
                          memory_order_relaxed);
    atomic_store_explicit(&m->journal_full, full != 0, memory_order_relaxed);
}

void metrics_latency(struct metrics *m, enum sink_id s, int64_t received_us,
                     int64_t confirmed_us)
{
    int64_t d = confirmed_us - received_us;
    if (d < 0)
        d = 0;
    double secs = (double)d / 1e6;
    size_t b = 0;
    while (b < N_BUCKETS && secs > buckets[b])
        b++;
    struct histogram *h = &m->latency[s];
    add(&h->counts[b], 1);
    add(&h->sum_us, (uint64_t)d);
    add(&h->count, 1);
}

uint64_t metrics_get_received(const struct metrics *m, int vertical)
{
    if (vertical < 0 || vertical >= N_VERTICAL_LABELS)
        return 0;
    return get(&m->received[vertical]);
}

uint64_t metrics_get_rejected(const struct metrics *m, enum reject_reason r)
{
    return (unsigned)r < REJECT_COUNT ? get(&m->rejected[r]) : 0;
}

uint64_t metrics_get_sink_writes(const struct metrics *m, enum sink_id s)
{
    return get(&m->writes[s]);
}

/* A growing text buffer for rendering. */
struct out {
    char *buf;
    size_t len, cap;
    int failed;
};

static void emit(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void emit(struct out *o, const char *fmt, ...)
{
    for (;;) {
        if (o->failed)
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *p = realloc(o->buf, cap);
        if (p == NULL) {
            o->failed = 1;
            return;
        }
        o->buf = p;
        o->cap = cap;
    }
}

static const char *vertical_label(int v)
{
    return v == METRICS_VERTICAL_UNKNOWN ? "unknown"
                                         : vertical_code((enum spot_vertical)v);
}

int metrics_render(const struct metrics *m, char **out, size_t *len)
{
    struct out o = {malloc(4096), 0, 4096, 0};
    if (o.buf == NULL)
        return SPOT_ENOMEM;
    o.buf[0] = '\0';

    emit(&o, "# HELP spotagent_messages_received_total MQTT messages "
             "received, by vertical.\n"
             "# TYPE spotagent_messages_received_total counter\n");
    for (int v = 0; v < N_VERTICAL_LABELS; v++)
        emit(&o, "spotagent_messages_received_total{vertical=\"%s\"} %llu\n",
             vertical_label(v), (unsigned long long)get(&m->received[v]));

    emit(&o, "# HELP spotagent_messages_rejected_total Messages "
             "dead-lettered, by reason.\n"
             "# TYPE spotagent_messages_rejected_total counter\n");
    for (int r = REJECT_NONE + 1; r < REJECT_COUNT; r++)
        emit(&o, "spotagent_messages_rejected_total{reason=\"%s\"} %llu\n",
             reject_reason_name((enum reject_reason)r),
             (unsigned long long)get(&m->rejected[r]));

    static const struct {
        const char *name, *type, *help;
        size_t off;
    } per_sink[] = {
        {"spotagent_sink_writes_total", "counter",
         "Messages confirmed by the sink.", offsetof(struct metrics, writes)},
        {"spotagent_sink_errors_total", "counter",
         "Failed attempts to write to the sink.",
         offsetof(struct metrics, errors)},
        {"spotagent_sink_backlog_messages", "gauge",
         "Journaled messages the sink has not confirmed yet.",
         offsetof(struct metrics, backlog)},
    };
    for (size_t i = 0; i < sizeof per_sink / sizeof per_sink[0]; i++) {
        const atomic_ullong *vals =
            (const atomic_ullong *)((const char *)m + per_sink[i].off);
        emit(&o, "# HELP %s %s\n# TYPE %s %s\n", per_sink[i].name,
             per_sink[i].help, per_sink[i].name, per_sink[i].type);
        for (int s = 0; s < SINK_COUNT; s++)
            emit(&o, "%s{sink=\"%s\"} %llu\n", per_sink[i].name,
                 sink_name((enum sink_id)s), (unsigned long long)get(&vals[s]));
    }

    emit(&o,
         "# HELP spotagent_mqtt_connected 1 while connected to the "
         "broker.\n# TYPE spotagent_mqtt_connected gauge\n"
         "spotagent_mqtt_connected %d\n",
         atomic_load_explicit(&m->connected, memory_order_relaxed));

    emit(&o,
         "# HELP spotagent_journal_bytes Bytes held by the journal's "
         "segments.\n# TYPE spotagent_journal_bytes gauge\n"
         "spotagent_journal_bytes %llu\n"
         "# HELP spotagent_journal_max_bytes Bound of the journal "
         "(--journal-max-mb).\n# TYPE spotagent_journal_max_bytes gauge\n"
         "spotagent_journal_max_bytes %llu\n"
         "# HELP spotagent_journal_full 1 while the journal is full: no "
         "message is taken, the broker queues them.\n"
         "# TYPE spotagent_journal_full gauge\n"
         "spotagent_journal_full %d\n"
         "# HELP spotagent_journal_failing 1 while the file system refuses "
         "journal appends (disk full): no message is taken.\n"
         "# TYPE spotagent_journal_failing gauge\n"
         "spotagent_journal_failing %d\n",
         (unsigned long long)get(&m->journal_bytes),
         (unsigned long long)get(&m->journal_max_bytes),
         atomic_load_explicit(&m->journal_full, memory_order_relaxed),
         atomic_load_explicit(&m->journal_failing, memory_order_relaxed));

    emit(&o, "# HELP spotagent_end_to_end_latency_seconds From MQTT arrival "
             "to sink confirmation.\n"
             "# TYPE spotagent_end_to_end_latency_seconds histogram\n");
    for (int s = 0; s < SINK_COUNT; s++) {
        const struct histogram *h = &m->latency[s];
        unsigned long long cum = 0;
        for (size_t b = 0; b <= N_BUCKETS; b++) {
            cum += get(&h->counts[b]);
            if (b < N_BUCKETS)
                emit(&o,
                     "spotagent_end_to_end_latency_seconds_bucket{sink=\"%s\","
                     "le=\"%g\"} %llu\n",
                     sink_name((enum sink_id)s), buckets[b], cum);
            else
                emit(&o,
                     "spotagent_end_to_end_latency_seconds_bucket{sink=\"%s\","
                     "le=\"+Inf\"} %llu\n",
                     sink_name((enum sink_id)s), cum);
        }
        emit(&o,
             "spotagent_end_to_end_latency_seconds_sum{sink=\"%s\"} %.6f\n"
             "spotagent_end_to_end_latency_seconds_count{sink=\"%s\"} %llu\n",
             sink_name((enum sink_id)s), (double)get(&h->sum_us) / 1e6,
             sink_name((enum sink_id)s), (unsigned long long)get(&h->count));
    }
    if (o.failed) {
        free(o.buf);
        return SPOT_ENOMEM;
    }
    *out = o.buf;
    *len = o.len;
    return SPOT_OK;
}

uint64_t metrics_get_sink_errors(const struct metrics *m, enum sink_id s)
{
    return (unsigned)s < SINK_COUNT ? get(&m->errors[s]) : 0;
}

uint64_t metrics_get_sink_backlog(const struct metrics *m, enum sink_id s)
{
    return (unsigned)s < SINK_COUNT ? get(&m->backlog[s]) : 0;
}

int metrics_get_mqtt_connected(const struct metrics *m)
{
    return atomic_load_explicit(&m->connected, memory_order_relaxed);
}

void metrics_heartbeat(struct metrics *m, enum sink_id s)
{
    atomic_store_explicit(&m->heartbeat_ms[s], (long long)spot_mono_ms(),
                          memory_order_relaxed);
}

int64_t metrics_heartbeat_age_ms(const struct metrics *m, enum sink_id s)
{
    long long t =
        atomic_load_explicit(&m->heartbeat_ms[s], memory_order_relaxed);
    return t == 0 ? -1 : spot_mono_ms() - t;
}
