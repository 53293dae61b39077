/*
 * The fleet simulator (API: spot/fleet.h). The generator (fleet_run's
 * thread) keeps the devices in a min-heap ordered by the end of their next
 * period; it pops the due ones, samples their sensors, encodes, injects
 * faults and appends to the spool of the device's connection, whose
 * publisher thread sends. Two clocks: in speed mode a period is due when
 * the accelerated wall clock passed its end; in rate mode periods are
 * taken in time order as fast as the target rate (a token bucket) and the
 * publishers' back-pressure allow.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spot/clock.h"
#include "spot/device_limits.h"
#include "spot/device_topic.h"
#include "spot/err.h"
#include "spot/fleet.h"
#include "spot/log.h"
#include "spot/message.h"
#include "spot/publisher.h"
#include "spot/sensor.h"
#include "spot/spool.h"
#include "spot/topic.h"

#define MOD "fleet"

/* Messages appended to a connection before its publisher is woken. */
#define NOTIFY_BATCH 32

struct sim_dev {
    char id[SPOT_MAX_ID_LEN + 1];
    int conn;
    long period_min;
    int64_t period_s;
    int64_t next_end; /* end of the next period to measure */
    int64_t due;      /* heap key: when to look at it again */
    bool bursting;
    unsigned verticals;
    struct sensor *sensors[SPOT_V_COUNT];
};

struct conn {
    struct spool *spool;
    struct publisher *pub;
    char dir[4096];
    unsigned unnotified;
};

struct fleet {
    struct fleet_opts o;
    struct sim_dev *devs;
    long n_devs;
    struct conn *conns;
    int n_conns;
    long *heap;
    long heap_n;
    struct message_encoder *enc;
    char root[4096];
    bool tmp_root;
    bool done; /* count reached */
    int64_t t0_ms;
    struct fleet_summary s;
};

/* --- the heap of devices by due time -----------------------------------------
 */

static bool before(const struct fleet *f, long a, long b)
{
    const struct sim_dev *x = &f->devs[a], *y = &f->devs[b];
    return x->due < y->due || (x->due == y->due && a < b);
}

static void heap_push(struct fleet *f, long dev)
{
    long i = f->heap_n++;
    f->heap[i] = dev;
    while (i > 0) {
        long up = (i - 1) / 2;
        if (!before(f, f->heap[i], f->heap[up]))
            break;
        long t = f->heap[i];
        f->heap[i] = f->heap[up];
        f->heap[up] = t;
        i = up;
    }
}

static long heap_pop(struct fleet *f)
{
    long top = f->heap[0];
    f->heap[0] = f->heap[--f->heap_n];
    long i = 0;
    for (;;) {
        long l = 2 * i + 1, r = l + 1, m = i;
        if (l < f->heap_n && before(f, f->heap[l], f->heap[m]))
            m = l;
        if (r < f->heap_n && before(f, f->heap[r], f->heap[m]))
            m = r;
        if (m == i)
            break;
        long t = f->heap[i];
        f->heap[i] = f->heap[m];
        f->heap[m] = t;
        i = m;
    }
    return top;
}

/* --- set-up
 * ---------------------------------------------------------------------- */

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static int make_device(struct fleet *f, long i, int width)
{
    const struct fleet_opts *o = &f->o;
    struct sim_dev *d = &f->devs[i];
    int n =
        snprintf(d->id, sizeof d->id, "%s%0*ld", o->device_prefix, width, i);
    if (n < 0 || (size_t)n >= sizeof d->id - 4) {
        log_msg(LOG_ERROR, MOD, "device prefix too long");
        return SPOT_EINVAL;
    }
    d->conn = (int)(i % f->n_conns);
    d->period_min = o->periods[mix(o->seed, (uint64_t)i) % o->n_periods];
    d->period_s = d->period_min * 60;
    d->next_end = message_align(o->start_s, d->period_s) + d->period_s;
    d->due = d->next_end;
    d->verticals = o->verticals;
    if (o->vertical_mix) {
        unsigned m = 0;
        for (int v = 0; v < SPOT_V_COUNT; v++)
            if ((o->verticals & (1u << v)) &&
                mix(o->seed ^ 0x77, (uint64_t)(i * SPOT_V_COUNT + v)) % 10 < 6)
                m |= 1u << v;
        if (m == 0) /* at least one of the selected verticals */
            for (int v = 0; v < SPOT_V_COUNT && m == 0; v++)
                if (o->verticals & (1u << v))
                    m = 1u << v;
        d->verticals = m;
    }
    struct device_topic t;
    char prefix[2 * SPOT_MAX_ID_LEN + 4], why[200];
    snprintf(prefix, sizeof prefix, "/%s/%s", o->apikey, d->id);
    if (device_topic_init(&t, prefix, NULL, why, sizeof why) != SPOT_OK) {
        log_msg(LOG_ERROR, MOD, "device %s: %s", d->id, why);
        return SPOT_EINVAL;
    }
    /* a quarter of the fleet has every sensor fitted, the rest the
     * drivers' default hardware */
    static const char *const all[] = {"all"};
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        if (!(d->verticals & (1u << v)))
            continue;
        struct sensor_params p = {
            .schema = schema_set_vertical(o->schemas, (enum spot_vertical)v),
            .seed = o->seed,
            .device_index = (uint32_t)i,
            .fields = i % 4 == 3 ? all : NULL,
            .n_fields = i % 4 == 3 ? 1 : 0,
            .failure_rate = o->failure_rate,
            .random_mac_share = 0.6,
            .serial_number = d->id,
        };
        int rc = sensor_new(&d->sensors[v], "sim", &p);
        if (rc != SPOT_OK)
            return rc;
    }
    return SPOT_OK;
}

static int make_conn(struct fleet *f, int k)
{
    const struct fleet_opts *o = &f->o;
    struct conn *c = &f->conns[k];
    int n = snprintf(c->dir, sizeof c->dir, "%s/c%04d", f->root, k);
    if (n < 0 || (size_t)n >= sizeof c->dir)
        return SPOT_ETOOBIG;
    struct spool_opts so = {.dir = c->dir,
                            .max_bytes = (uint64_t)o->spool_kb * 1024,
                            .fsync_ms = o->fsync_ms};
    int rc = spool_open(&c->spool, &so);
    if (rc != SPOT_OK) {
        log_msg(LOG_ERROR, MOD, "spool %s: %s", c->dir, spot_strerror(rc));
        return rc;
    }
    char id[SPOT_MAX_ID_LEN + 32];
    if (f->n_conns == f->n_devs)
        snprintf(id, sizeof id, "%s", f->devs[k].id);
    else
        snprintf(id, sizeof id, "spotsim-%ld-%d", (long)getpid(), k);
    struct publisher_opts po = {.mqtt = o->mqtt,
                                .client_id = id,
                                .spool = c->spool,
                                .window = o->window,
                                .tls_dir = c->dir};
    if ((rc = publisher_new(&c->pub, &po)) != SPOT_OK)
        return rc;
    return publisher_start(c->pub);
}

int fleet_new(struct fleet **out, const struct fleet_opts *o)
{
    if (o->devices < 1 || o->devices > SPOT_SIM_MAX_DEVICES ||
        o->n_periods < 1 || o->window < 1 || o->verticals == 0)
        return SPOT_EINVAL;
    int n_conns = o->connections > 0 ? o->connections : (int)o->devices;
    if (n_conns > o->devices)
        n_conns = (int)o->devices;
    if (n_conns > SPOT_SIM_MAX_CONNECTIONS) {
        log_msg(LOG_ERROR, MOD,
                "%d connections is more than %d: use --connections or "
                "--shared-connection",
                n_conns, SPOT_SIM_MAX_CONNECTIONS);
        return SPOT_EINVAL;
    }
    struct fleet *f = calloc(1, sizeof *f);
    if (f == NULL)
        return SPOT_ENOMEM;
    f->o = *o;
    f->n_devs = o->devices;
    f->n_conns = n_conns;
    int rc = SPOT_OK;
    f->devs = calloc((size_t)o->devices, sizeof *f->devs);
    f->conns = calloc((size_t)n_conns, sizeof *f->conns);
    f->heap = calloc((size_t)o->devices, sizeof *f->heap);
    if (!f->devs || !f->conns || !f->heap) {
        rc = SPOT_ENOMEM;
        goto out;
    }
    if ((rc = message_encoder_new(&f->enc)) != SPOT_OK)
        goto out;
    if (o->spool_dir) {
        snprintf(f->root, sizeof f->root, "%s", o->spool_dir);
        if (mkdir(f->root, 0700) != 0 && errno != EEXIST) {
            log_msg(LOG_ERROR, MOD, "creating %s failed: %s", f->root,
                    strerror(errno));
            rc = SPOT_EIO;
            goto out;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(f->root, sizeof f->root, "%s/spotsim.XXXXXX",
                 tmp && tmp[0] ? tmp : "/tmp");
        if (mkdtemp(f->root) == NULL) {
            log_msg(LOG_ERROR, MOD, "cannot create a spool directory: %s",
                    strerror(errno));
            f->root[0] = '\0';
            rc = SPOT_EIO;
            goto out;
        }
        f->tmp_root = true;
    }
    int width = 4;
    for (long n = o->devices - 1; n >= 10000; n /= 10)
        width++;
    for (long i = 0; i < o->devices; i++) {
        if ((rc = make_device(f, i, width)) != SPOT_OK)
            goto out;
        heap_push(f, i);
    }
    for (int k = 0; k < n_conns; k++)
        if ((rc = make_conn(f, k)) != SPOT_OK)
            goto out;
out:
    if (rc != SPOT_OK) {
        fleet_free(f);
        return rc;
    }
    *out = f;
    return SPOT_OK;
}

/* --- one message
 * ------------------------------------------------------------------ */

struct emit_ctx {
    struct fleet *f;
    struct sim_dev *d;
    enum spot_vertical v;
    int64_t start;
    uint64_t k; /* message index in (device, vertical, period) */
};

/* Sets the first numeric fitted value with a range just outside it. */
static bool push_out_of_range(struct reading *r)
{
    const struct schema_vertical *sv = r->schema;
    for (size_t i = 0; i < sv->n_fields; i++) {
        const struct schema_field *fd = &sv->fields[i];
        if (fd->type != SCHEMA_NUMBER || fd->mandatory ||
            r->v[i].kind != READING_NUMBER || !(fd->has_min || fd->has_max))
            continue;
        r->v[i].number = fd->has_max ? fd->max + 1000.0 : fd->min - 1000.0;
        return true;
    }
    return false;
}

static int append(struct fleet *f, struct sim_dev *d, const char *topic,
                  const void *json, size_t len)
{
    struct conn *c = &f->conns[d->conn];
    int rc =
        spool_append(c->spool, topic, (int)f->o.mqtt->qos, false, json, len);
    if (rc != SPOT_OK) {
        f->s.failures++;
        log_msg(LOG_ERROR, MOD, "device %s: message lost: %s", d->id,
                spot_strerror(rc));
        return rc;
    }
    f->s.generated++;
    if (++c->unnotified >= NOTIFY_BATCH) {
        c->unnotified = 0;
        publisher_notify(c->pub);
    }
    if (f->o.count > 0 && f->s.generated >= f->o.count)
        f->done = true;
    return SPOT_OK;
}

static int emit(void *arg, const struct reading *rd)
{
    struct emit_ctx *e = arg;
    struct fleet *f = e->f;
    struct sim_dev *d = e->d;
    if (f->done)
        return 1;
    uint64_t key = mix(mix((uint64_t)(d - f->devs), (uint64_t)e->v),
                       mix((uint64_t)e->start, e->k++));
    enum fault_kind fault = fault_draw(&f->o.faults, f->o.seed, key);
    struct reading bad;
    const struct reading *r = rd;
    unsigned flags = 0;
    if (fault == FAULT_WRONG_TYPE)
        flags = MESSAGE_PERIOD_AS_TEXT;
    if (fault == FAULT_RANGE) {
        reading_copy(&bad, rd);
        if (push_out_of_range(&bad))
            r = &bad;
        else
            fault = FAULT_NONE; /* nothing numeric to push: sent valid */
    }
    char topic[SPOT_MAX_TOPIC_LEN + 1];
    /* wrong topic: the second level names another vertical */
    if (fault == FAULT_WRONG_TOPIC) {
        char dev2[SPOT_MAX_ID_LEN + 8];
        const char *other = vertical_code((e->v + 1) % SPOT_V_COUNT);
        const char *code = vertical_code(e->v);
        snprintf(dev2, sizeof dev2, "%s_%c%c%c", d->id, other[0] - 32,
                 other[1] - 32, other[2] - 32);
        snprintf(topic, sizeof topic, "/%s%s/%s/attrs", f->o.apikey, code,
                 dev2);
    } else {
        topic_compose(topic, sizeof topic, f->o.apikey, d->id, e->v);
    }
    const unsigned char *json;
    size_t len;
    char why[200];
    int rc = message_encode(f->enc, r, e->start, (int)d->period_min, flags,
                            &json, &len, why, sizeof why);
    if (rc != SPOT_OK) {
        f->s.failures++;
        log_msg(LOG_ERROR, MOD, "device %s: %s reading not sent: %s", d->id,
                vertical_code(e->v), why);
        return 0;
    }
    unsigned char buf[SPOT_DEVICE_MAX_MESSAGE + 2];
    if (fault == FAULT_MALFORMED) {
        /* a trailing comma, the note's own defect */
        memcpy(buf, json, len - 1);
        buf[len - 1] = ',';
        buf[len] = '}';
        json = buf;
        len++;
    }
    if (append(f, d, topic, json, len) != SPOT_OK)
        return 0;
    f->s.per_vertical[e->v]++;
    if (fault != FAULT_NONE)
        f->s.faults[fault]++;
    if (d->bursting)
        f->s.faults[FAULT_BURST]++;
    if (fault == FAULT_NONE || fault == FAULT_RANGE) {
        f->s.rows[e->v]++;
        for (size_t i = 0; i < r->schema->n_fields; i++)
            if (r->v[i].kind == READING_NULL)
                f->s.nulls++;
    }
    if (fault == FAULT_NONE && !f->done &&
        fault_duplicate(&f->o.faults, f->o.seed, key)) {
        if (append(f, d, topic, json, len) == SPOT_OK) {
            f->s.per_vertical[e->v]++;
            f->s.faults[FAULT_DUPLICATE]++;
        }
    }
    return f->done ? 1 : 0;
}

static void measure(struct fleet *f, struct sim_dev *d, int64_t start)
{
    struct sensor_period per = {.start_s = start, .period_s = d->period_s};
    for (int v = 0; v < SPOT_V_COUNT && !f->done; v++) {
        if (d->sensors[v] == NULL)
            continue;
        struct emit_ctx e = {
            .f = f, .d = d, .v = (enum spot_vertical)v, .start = start};
        sensor_sample(d->sensors[v], &per, emit, &e);
    }
    f->s.periods++;
}

/* Measures every period of d that ended by now; handles bursts. */
static void visit(struct fleet *f, long i, int64_t now)
{
    struct sim_dev *d = &f->devs[i];
    const struct fault_opts *fo = &f->o.faults;
    if (!d->bursting && fo->p[FAULT_BURST] > 0 &&
        fault_burst(fo, f->o.seed, mix((uint64_t)i, (uint64_t)d->next_end))) {
        /* the device holds its next periods back, then sends them at once */
        d->bursting = true;
        d->due = d->next_end + (fo->burst_size - 1) * d->period_s;
        heap_push(f, i);
        return;
    }
    while (d->next_end <= now && !f->done) {
        measure(f, d, d->next_end - d->period_s);
        d->next_end += d->period_s;
    }
    d->bursting = false;
    d->due = d->next_end;
    heap_push(f, i);
}

/* --- the run
 * ----------------------------------------------------------------------- */

static void sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {
        .tv_sec = (time_t)(ms / 1000),
        .tv_nsec = (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
    nanosleep(&ts, NULL);
}

static void notify_all(struct fleet *f)
{
    for (int k = 0; k < f->n_conns; k++)
        if (f->conns[k].unnotified > 0) {
            f->conns[k].unnotified = 0;
            publisher_notify(f->conns[k].pub);
        }
}

static uint64_t pending(struct fleet *f, int k)
{
    struct spool_stats st;
    spool_get_stats(f->conns[k].spool, &st);
    return st.pending;
}

static double elapsed_s(const struct fleet *f)
{
    return (double)(spot_mono_ms() - f->t0_ms) / 1000.0;
}

int fleet_run(struct fleet *f, volatile sig_atomic_t *stop)
{
    const struct fleet_opts *o = &f->o;
    f->t0_ms = spot_mono_ms();
    bool rate_mode = o->rate != 0;
    while (!*stop && !f->done && f->heap_n > 0) {
        double el = elapsed_s(f);
        if (o->duration_s > 0 && el >= o->duration_s)
            break;
        long top = f->heap[0];
        int64_t now;
        if (rate_mode) {
            if (o->rate > 0) {
                double allowed = o->rate * el - (double)f->s.generated;
                if (allowed < 1) {
                    notify_all(f);
                    sleep_ms((1 - allowed) * 1000.0 / o->rate < 2
                                 ? (1 - allowed) * 1000.0 / o->rate
                                 : 2);
                    continue;
                }
            }
            /* back-pressure: never let a connection's queue grow */
            int k = f->devs[top].conn;
            if (pending(f, k) >= SPOT_SIM_HIGH_WATER) {
                notify_all(f);
                sleep_ms(1);
                continue;
            }
            now = f->devs[top].due;
        } else {
            now = o->start_s + (int64_t)(el * o->speed);
            int64_t due = f->devs[top].due;
            if (due > now) {
                notify_all(f);
                double ms = (double)(due - now) * 1000.0 / o->speed;
                sleep_ms(ms < 50 ? ms : 50);
                continue;
            }
        }
        visit(f, heap_pop(f), now);
    }
    notify_all(f);
    f->s.elapsed_s = elapsed_s(f);

    /* drain: wait for the acknowledgements */
    int64_t until = spot_mono_ms() + (int64_t)(o->drain_s * 1000);
    for (;;) {
        uint64_t left = 0;
        for (int k = 0; k < f->n_conns; k++)
            left += pending(f, k);
        if (left == 0 || spot_mono_ms() >= until || *stop > 1)
            break;
        sleep_ms(10);
    }
    for (int k = 0; k < f->n_conns; k++)
        publisher_stop(f->conns[k].pub);
    f->s.drain_s = elapsed_s(f) - f->s.elapsed_s;
    for (int k = 0; k < f->n_conns; k++) {
        struct spool_stats ss;
        struct publisher_stats ps;
        spool_get_stats(f->conns[k].spool, &ss);
        publisher_get_stats(f->conns[k].pub, &ps);
        f->s.pending += ss.pending;
        f->s.dropped += ss.dropped;
        f->s.delivered += ps.acked;
        f->s.connects += ps.connects;
        f->s.losses += ps.losses;
    }
    return f->s.pending == 0 ? SPOT_OK : SPOT_EAGAIN;
}

void fleet_get_summary(struct fleet *f, struct fleet_summary *out)
{
    *out = f->s;
}

/* --- clean-up
 * ------------------------------------------------------------------------ */

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    rmdir(dir);
}

void fleet_free(struct fleet *f)
{
    if (f == NULL)
        return;
    for (int k = 0; f->conns && k < f->n_conns; k++) {
        publisher_free(f->conns[k].pub);
        spool_close(f->conns[k].spool);
        if (f->tmp_root && f->conns[k].dir[0])
            remove_dir(f->conns[k].dir);
    }
    for (long i = 0; f->devs && i < f->n_devs; i++)
        for (int v = 0; v < SPOT_V_COUNT; v++)
            sensor_free(f->devs[i].sensors[v]);
    if (f->tmp_root)
        rmdir(f->root);
    message_encoder_free(f->enc);
    free(f->devs);
    free(f->conns);
    free(f->heap);
    free(f);
}
