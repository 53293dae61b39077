/*
 * Recent activity for the status page (activity.h): three bounded tables
 * behind one mutex.
 *
 *  - devices: ACT_MAX_DEVICES entries in a fixed array, found through an
 *    open-addressing hash index (linear probing, backward-shift deletion)
 *    keyed by apikey + device, and kept on a doubly linked recency list so
 *    that, when the table is full, the least recently seen device is evicted
 *    in O(1);
 *  - rates: one bucket per second for the last ACT_RATE_WINDOW_S seconds,
 *    each holding a counter per vertical (generic included);
 *  - rejects: a ring of the ACT_MAX_REJECTS most recent rejections, topic
 *    and detail copied (truncated) into the ring's own storage.
 *
 * Writers (the MQTT callback thread, the sinks) only copy into storage made
 * by activity_new: no allocation and no system call, a few hundred
 * nanoseconds under the lock. The reader (the HTTP thread) copies a
 * snapshot under the lock into a buffer also made by activity_new, releases
 * the lock, and only then formats JSON. Every text is stored as received
 * and made valid UTF-8 when written out (the browser renders it with
 * textContent; see status_page.c).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_gen.h>

#include "spot/err.h"
#include "spot/limits.h"
#include "activity.h"

/* Caps of the tables (bounded memory: about 600 KiB in all, twice over
 * with the reader's snapshot). */
#define ACT_MAX_DEVICES   1024
#define ACT_HASH_SLOTS    2048 /* power of two, >= 2 * ACT_MAX_DEVICES */
#define ACT_RATE_WINDOW_S 60
#define ACT_MAX_REJECTS   50
#define ACT_TOPIC_LEN     256 /* bytes of a rejected topic kept */

#define N_VERTICALS (SPOT_V_GENERIC + 1)
#define NIL         UINT16_MAX

struct device {
    uint32_t hash;
    uint16_t prev, next; /* recency list, most recent first */
    uint16_t apikey_len, device_len;
    uint16_t verticals; /* one bit per enum spot_vertical */
    uint8_t last_vertical;
    uint64_t messages;
    int64_t first_us, last_us;
    char key[2 * SPOT_MAX_ID_LEN]; /* apikey then device, no separator */
};

struct rate_bucket {
    int64_t sec; /* the second this bucket counts; -1: never used */
    uint32_t n[N_VERTICALS];
};

struct reject {
    int64_t when_us;
    uint8_t reason;
    bool topic_cut, detail_cut;
    uint16_t topic_len, detail_len;
    char topic[ACT_TOPIC_LEN];
    char detail[SPOT_MAX_DETAIL_LEN];
};

/* Everything the reader copies; the writers' state is the same shape. */
struct tables {
    uint16_t n_devices;
    uint16_t head, tail;
    uint64_t evicted;
    struct device devices[ACT_MAX_DEVICES];
    int64_t first_sec; /* first second with a message; -1: none yet */
    struct rate_bucket rates[ACT_RATE_WINDOW_S];
    unsigned reject_next; /* ring position of the next rejection */
    unsigned n_rejects;   /* filled entries of the ring */
    uint64_t rejects_total;
    struct reject rejects[ACT_MAX_REJECTS];
};

struct activity {
    pthread_mutex_t lock; /* guards t and index */
    uint32_t seed;
    uint16_t index[ACT_HASH_SLOTS]; /* device index + 1; 0: empty */
    struct tables t;

    pthread_mutex_t snap_lock; /* one reader at a time uses snap */
    struct tables *snap;       /* devices in recency order, rejects newest
                                  first */
};

int activity_new(struct activity **out)
{
    struct activity *a = calloc(1, sizeof *a);
    if (a == NULL)
        return SPOT_ENOMEM;
    a->snap = malloc(sizeof *a->snap);
    if (a->snap == NULL) {
        free(a);
        return SPOT_ENOMEM;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->snap_lock, NULL);
    /* A per-process seed: device ids chosen to collide in one process do
     * not collide in another. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    a->seed = (uint32_t)ts.tv_nsec ^ (uint32_t)(uintptr_t)a;
    a->t.head = a->t.tail = NIL;
    a->t.first_sec = -1;
    for (size_t i = 0; i < ACT_RATE_WINDOW_S; i++)
        a->t.rates[i].sec = -1;
    *out = a;
    return SPOT_OK;
}

void activity_free(struct activity *a)
{
    if (a == NULL)
        return;
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->snap_lock);
    free(a->snap);
    free(a);
}

/* --- devices: hash index and recency list (lock held) -------------------- */

static uint32_t key_hash(uint32_t seed, const char *apikey, size_t alen,
                         const char *device, size_t dlen)
{
    uint32_t h = 2166136261u ^ seed; /* FNV-1a */
    for (size_t i = 0; i < alen; i++)
        h = (h ^ (unsigned char)apikey[i]) * 16777619u;
    h = (h ^ 0xffu) * 16777619u; /* separator: ("ab","c") != ("a","bc") */
    for (size_t i = 0; i < dlen; i++)
        h = (h ^ (unsigned char)device[i]) * 16777619u;
    return h;
}

static void list_unlink(struct tables *t, uint16_t i)
{
    struct device *d = &t->devices[i];
    if (d->prev != NIL)
        t->devices[d->prev].next = d->next;
    else
        t->head = d->next;
    if (d->next != NIL)
        t->devices[d->next].prev = d->prev;
    else
        t->tail = d->prev;
}

static void list_push_front(struct tables *t, uint16_t i)
{
    struct device *d = &t->devices[i];
    d->prev = NIL;
    d->next = t->head;
    if (t->head != NIL)
        t->devices[t->head].prev = i;
    t->head = i;
    if (t->tail == NIL)
        t->tail = i;
}

/* Slot holding device i (which is in the index). */
static size_t index_slot_of(const struct activity *a, uint16_t i)
{
    size_t s = a->t.devices[i].hash & (ACT_HASH_SLOTS - 1);
    while (a->index[s] != (uint16_t)(i + 1))
        s = (s + 1) & (ACT_HASH_SLOTS - 1);
    return s;
}

/* Removes slot s and shifts the following entries of its probe run back,
 * so that every lookup still finds its entry without tombstones. */
static void index_delete(struct activity *a, size_t s)
{
    const size_t mask = ACT_HASH_SLOTS - 1;
    a->index[s] = 0;
    size_t hole = s;
    for (size_t j = (s + 1) & mask; a->index[j] != 0; j = (j + 1) & mask) {
        size_t home = a->t.devices[a->index[j] - 1].hash & mask;
        /* The entry at j may move into the hole unless its home lies
         * cyclically in (hole, j]. */
        bool stays =
            hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (stays)
            continue;
        a->index[hole] = a->index[j];
        a->index[j] = 0;
        hole = j;
    }
}

/* Finds the device or makes room for it; returns its index. */
static uint16_t device_get(struct activity *a, uint32_t h, const char *apikey,
                           size_t alen, const char *device, size_t dlen,
                           int64_t now_us)
{
    struct tables *t = &a->t;
    const size_t mask = ACT_HASH_SLOTS - 1;
    size_t s = h & mask;
    for (; a->index[s] != 0; s = (s + 1) & mask) {
        uint16_t i = (uint16_t)(a->index[s] - 1);
        const struct device *d = &t->devices[i];
        if (d->hash == h && d->apikey_len == alen && d->device_len == dlen &&
            memcmp(d->key, apikey, alen) == 0 &&
            memcmp(d->key + alen, device, dlen) == 0)
            return i;
    }
    uint16_t i;
    if (t->n_devices < ACT_MAX_DEVICES) {
        i = t->n_devices++;
    } else {
        /* Full: the least recently seen device makes room. Its removal
         * may shift entries, so probe for a free slot again. */
        i = t->tail;
        list_unlink(t, i);
        index_delete(a, index_slot_of(a, i));
        t->evicted++;
        for (s = h & mask; a->index[s] != 0; s = (s + 1) & mask)
            ;
    }
    struct device *d = &t->devices[i];
    d->hash = h;
    d->apikey_len = (uint16_t)alen;
    d->device_len = (uint16_t)dlen;
    memcpy(d->key, apikey, alen);
    memcpy(d->key + alen, device, dlen);
    d->verticals = 0;
    d->messages = 0;
    d->first_us = now_us;
    a->index[s] = (uint16_t)(i + 1);
    list_push_front(t, i);
    return i;
}

void activity_seen(struct activity *a, const char *apikey, size_t apikey_len,
                   const char *device, size_t device_len, enum spot_vertical v,
                   int64_t now_us)
{
    if (a == NULL || (unsigned)v >= N_VERTICALS)
        return;
    if (apikey_len > SPOT_MAX_ID_LEN)
        apikey_len = SPOT_MAX_ID_LEN;
    if (device_len > SPOT_MAX_ID_LEN)
        device_len = SPOT_MAX_ID_LEN;
    uint32_t h = key_hash(a->seed, apikey, apikey_len, device, device_len);
    int64_t sec = now_us >= 0 ? now_us / 1000000 : 0;

    pthread_mutex_lock(&a->lock);
    struct tables *t = &a->t;
    uint16_t i =
        device_get(a, h, apikey, apikey_len, device, device_len, now_us);
    struct device *d = &t->devices[i];
    if (t->head != i) {
        list_unlink(t, i);
        list_push_front(t, i);
    }
    d->verticals |= (uint16_t)(1u << v);
    d->last_vertical = (uint8_t)v;
    d->messages++;
    d->last_us = now_us;

    struct rate_bucket *b = &t->rates[sec % ACT_RATE_WINDOW_S];
    if (b->sec != sec) {
        memset(b->n, 0, sizeof b->n);
        b->sec = sec;
    }
    b->n[v]++;
    if (t->first_sec < 0 || sec < t->first_sec)
        t->first_sec = sec;
    pthread_mutex_unlock(&a->lock);
}

/* --- rejects ----------------------------------------------------------- */

static size_t clamp_copy(char *dst, size_t cap, const char *src, size_t len,
                         bool *cut)
{
    *cut = len > cap;
    if (len > cap)
        len = cap;
    if (len > 0)
        memcpy(dst, src, len);
    return len;
}

void activity_rejected(struct activity *a, const char *topic, size_t topic_len,
                       enum reject_reason reason, const char *detail,
                       int64_t when_us)
{
    if (a == NULL)
        return;
    if (topic == NULL)
        topic_len = 0;
    size_t detail_len = detail ? strnlen(detail, SPOT_MAX_DETAIL_LEN + 1) : 0;

    pthread_mutex_lock(&a->lock);
    struct tables *t = &a->t;
    struct reject *r = &t->rejects[t->reject_next];
    t->reject_next = (t->reject_next + 1) % ACT_MAX_REJECTS;
    if (t->n_rejects < ACT_MAX_REJECTS)
        t->n_rejects++;
    t->rejects_total++;
    r->when_us = when_us;
    r->reason = (uint8_t)((unsigned)reason < REJECT_COUNT ? reason : 0);
    r->topic_len = (uint16_t)clamp_copy(r->topic, sizeof r->topic, topic,
                                        topic_len, &r->topic_cut);
    r->detail_len = (uint16_t)clamp_copy(r->detail, sizeof r->detail, detail,
                                         detail_len, &r->detail_cut);
    pthread_mutex_unlock(&a->lock);
}

/* --- snapshot and JSON (HTTP thread) ------------------------------------- */

/* Copies the tables into a->snap (snap_lock held): devices in recency
 * order (most recent first), rejects newest first. */
static void take_snapshot(struct activity *a)
{
    struct tables *s = a->snap;
    pthread_mutex_lock(&a->lock);
    const struct tables *t = &a->t;
    uint16_t n = 0;
    for (uint16_t i = t->head; i != NIL; i = t->devices[i].next) {
        const struct device *d = &t->devices[i];
        struct device *c = &s->devices[n++];
        /* the fixed fields, then only the used bytes of the key */
        memcpy(c, d, offsetof(struct device, key));
        memcpy(c->key, d->key, (size_t)d->apikey_len + d->device_len);
    }
    s->n_devices = n;
    s->evicted = t->evicted;
    s->first_sec = t->first_sec;
    memcpy(s->rates, t->rates, sizeof s->rates);
    s->rejects_total = t->rejects_total;
    for (unsigned k = 0; k < t->n_rejects; k++) {
        unsigned at =
            (t->reject_next + ACT_MAX_REJECTS - 1 - k) % ACT_MAX_REJECTS;
        const struct reject *r = &t->rejects[at];
        struct reject *c = &s->rejects[k];
        memcpy(c, r, offsetof(struct reject, topic));
        memcpy(c->topic, r->topic, r->topic_len);
        memcpy(c->detail, r->detail, r->detail_len);
    }
    s->n_rejects = t->n_rejects;
    pthread_mutex_unlock(&a->lock);
}

/* A string the program controls (keys, codes, times). */
static void gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* bounds of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* Writes len bytes of untrusted text as a JSON string of valid UTF-8:
 * invalid bytes and control characters become '?', and cut adds an
 * ellipsis. */
static void gen_text(yajl_gen g, const char *text, size_t len, bool cut)
{
    unsigned char buf[2 * SPOT_MAX_ID_LEN + 8];
    const unsigned char *s = (const unsigned char *)text;
    size_t o = 0;
    if (len > sizeof buf - 4)
        len = sizeof buf - 4;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(s + i, len - i);
        if (n == 0 || (n == 1 && (s[i] < 0x20 || s[i] == 0x7f))) {
            buf[o++] = '?';
            i++;
            continue;
        }
        memcpy(buf + o, s + i, n);
        o += n;
        i += n;
    }
    if (cut) {
        memcpy(buf + o, "\xe2\x80\xa6", 3); /* U+2026 */
        o += 3;
    }
    yajl_gen_string(g, buf, o);
}

/* A number with a fixed count of decimals (yajl_gen_double prints 17
 * significant digits). */
static void gen_fixed(yajl_gen g, double v, int decimals)
{
    char num[64];
    int n = snprintf(num, sizeof num, "%.*f", decimals, v);
    if (n > 0 && (size_t)n < sizeof num)
        yajl_gen_number(g, num, (size_t)n);
    else
        yajl_gen_integer(g, 0);
}

static void gen_time(yajl_gen g, int64_t t_us)
{
    char ts[32];
    validate_format_time(t_us, ts);
    gen_str(g, ts);
}

static double age_s(int64_t now_us, int64_t then_us)
{
    return now_us > then_us ? (double)(now_us - then_us) / 1e6 : 0.0;
}

static void gen_devices(yajl_gen g, const struct tables *s, int64_t now_us)
{
    gen_str(g, "devices");
    yajl_gen_array_open(g);
    for (size_t k = 0; k < s->n_devices; k++) {
        const struct device *d = &s->devices[k];
        yajl_gen_map_open(g);
        gen_str(g, "apikey");
        gen_text(g, d->key, d->apikey_len, false);
        gen_str(g, "device");
        gen_text(g, d->key + d->apikey_len, d->device_len, false);
        gen_str(g, "verticals");
        yajl_gen_array_open(g);
        for (int v = 0; v < N_VERTICALS; v++)
            if (d->verticals & (1u << v))
                gen_str(g, vertical_code((enum spot_vertical)v));
        yajl_gen_array_close(g);
        gen_str(g, "last_vertical");
        gen_str(g, vertical_code((enum spot_vertical)d->last_vertical));
        gen_str(g, "messages");
        yajl_gen_integer(g, (long long)d->messages);
        gen_str(g, "first_seen");
        gen_time(g, d->first_us);
        gen_str(g, "last_seen");
        gen_time(g, d->last_us);
        gen_str(g, "age_s");
        gen_fixed(g, age_s(now_us, d->last_us), 1);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    gen_str(g, "devices_tracked");
    yajl_gen_integer(g, s->n_devices);
    gen_str(g, "devices_capacity");
    yajl_gen_integer(g, ACT_MAX_DEVICES);
    gen_str(g, "devices_evicted");
    yajl_gen_integer(g, (long long)s->evicted);
}

static void gen_rates(yajl_gen g, const struct tables *s, int64_t now_us)
{
    int64_t now_sec = now_us >= 0 ? now_us / 1000000 : 0;
    /* Seconds covered: the whole window, or since the first message. */
    int64_t window = ACT_RATE_WINDOW_S;
    if (s->first_sec >= 0 && now_sec - s->first_sec + 1 < window)
        window = now_sec - s->first_sec + 1;
    if (window < 1)
        window = 1;
    gen_str(g, "rates");
    yajl_gen_map_open(g);
    gen_str(g, "window_s");
    yajl_gen_integer(g, (long long)window);
    gen_str(g, "verticals");
    yajl_gen_map_open(g);
    for (int v = 0; v < N_VERTICALS; v++) {
        uint32_t series[ACT_RATE_WINDOW_S];
        uint64_t sum = 0;
        for (int k = 0; k < ACT_RATE_WINDOW_S; k++) {
            int64_t sec = now_sec - (ACT_RATE_WINDOW_S - 1) + k;
            const struct rate_bucket *b =
                &s->rates[(sec < 0 ? 0 : sec) % ACT_RATE_WINDOW_S];
            series[k] = b->sec == sec ? b->n[v] : 0;
            sum += series[k];
        }
        gen_str(g, vertical_code((enum spot_vertical)v));
        yajl_gen_map_open(g);
        gen_str(g, "last_minute");
        yajl_gen_integer(g, (long long)sum);
        gen_str(g, "per_second");
        gen_fixed(g, (double)sum / (double)window, 2);
        gen_str(g, "series");
        yajl_gen_array_open(g);
        for (int k = 0; k < ACT_RATE_WINDOW_S; k++)
            yajl_gen_integer(g, series[k]);
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
    }
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
}

static void gen_rejects(yajl_gen g, const struct tables *s, int64_t now_us)
{
    gen_str(g, "rejects");
    yajl_gen_array_open(g);
    for (unsigned k = 0; k < s->n_rejects; k++) {
        const struct reject *r = &s->rejects[k];
        yajl_gen_map_open(g);
        gen_str(g, "time");
        gen_time(g, r->when_us);
        gen_str(g, "age_s");
        gen_fixed(g, age_s(now_us, r->when_us), 1);
        gen_str(g, "reason");
        gen_str(g, reject_reason_name((enum reject_reason)r->reason));
        gen_str(g, "topic");
        gen_text(g, r->topic, r->topic_len, r->topic_cut);
        gen_str(g, "detail");
        gen_text(g, r->detail, r->detail_len, r->detail_cut);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    gen_str(g, "rejects_total");
    yajl_gen_integer(g, (long long)s->rejects_total);
    gen_str(g, "rejects_capacity");
    yajl_gen_integer(g, ACT_MAX_REJECTS);
}

void activity_to_json(struct activity *a, struct yajl_gen_t *g, int64_t now_us)
{
    yajl_gen_map_open(g);
    if (a != NULL) {
        pthread_mutex_lock(&a->snap_lock);
        take_snapshot(a);
        gen_devices(g, a->snap, now_us);
        gen_rates(g, a->snap, now_us);
        gen_rejects(g, a->snap, now_us);
        pthread_mutex_unlock(&a->snap_lock);
    }
    yajl_gen_map_close(g);
}
