/*
 * NGSI sink (see ngsi_sink.h; design and state machine in
 * docs/internals/ngsi-sink.md). One thread per sink runs everything below;
 * ngsi_sink_is_ready() reads an atomic from any thread.
 *
 * The window: journal records read and not yet committed, in journal
 * order, in a ring of NGSI_WINDOW_RECORDS slots (and at most
 * NGSI_WINDOW_BYTES of copies). A slot is RAW (copied from the journal),
 * PENDING (encoded, waiting for a request), SENT (in a request) or DONE
 * (confirmed, dead-lettered or nothing to send). The checkpoint advances
 * over the DONE prefix only, so nothing unconfirmed is ever skipped.
 *
 * Requests: up to NGSI_MAX_REQUESTS batches at once, each of one
 * (Fiware-Service, Fiware-ServicePath) group, at most NGSI_BATCH_ENTITIES
 * entities and NGSI_BATCH_BYTES. Order per entity: an entity (group + id)
 * that is in one request is not put in another until that one is resolved,
 * so two updates of one entity never race on two connections; within one
 * NGSI-v2 batch they stay in journal order (Orion applies a batch in
 * order). NGSI-LD batches hold each entity once (207 answers are keyed by
 * entity id).
 *
 * Answers: 2xx confirms; 400/413 splits the request's current range in
 * halves, sent one after the other, down to the single entity the broker
 * refuses, which is dead-lettered through the journal; 207 (LD)
 * dead-letters permanent per-entity errors and retries transient ones;
 * anything else (no answer, 5xx, other 4xx) is retried with exponential
 * back-off and jitter, one request at a time while failing.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "dead_record.h"
#include "deadletter.h"
#include "http_client.h"
#include "ngsi_batch.h"
#include "ngsi_sink.h"
#include "validate.h"
#include "spot/backoff.h"
#include "spot/clock.h"
#include "spot/err.h"
#include "spot/limits.h"
#include "spot/log.h"

/* Caps and timings of this sink. */
#define NGSI_BATCH_ENTITIES     250          /* entities per request */
#define NGSI_BATCH_BYTES        (768 * 1024) /* well under Orion's 1 MB */
#define NGSI_MAX_REQUESTS       HTTP_MAX_HOST_CONNECTIONS
#define NGSI_WINDOW_RECORDS     2048 /* records read, not committed */
#define NGSI_WINDOW_BYTES       (8 * 1024 * 1024)
#define NGSI_READ_PER_TURN      256
#define NGSI_CONNECT_TIMEOUT_MS 5000
#define NGSI_REQUEST_TIMEOUT_MS 10000
#define NGSI_LINGER_MS          10    /* wait to fill a batch while busy */
#define NGSI_IDLE_WAIT_MS       100   /* journal wait when idle */
#define NGSI_NET_WAIT_MS        10    /* network wait, journal polled after */
#define NGSI_PROBE_FAIL_MS      1000  /* probe period while failing */
#define NGSI_PROBE_IDLE_MS      15000 /* probe period when nothing flows */
#define NGSI_PREP_RETRY_MS      1000  /* after a local failure */
#define NGSI_SPLIT_DEPTH        16    /* > log2(NGSI_BATCH_ENTITIES) + 1 */
#define NGSI_COMMIT_MS          100  /* checkpoint commits at most this often */
#define NGSI_BACKLOG_MS         1000 /* backlog gauge refresh */
#define NGSI_DETAIL_LEN         512
#define KEYSET_CAP              4096 /* > 2 * requests * entities, 2^n */

#define LD_CORE_CONTEXT                                                        \
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"

enum slot_state { SLOT_FREE, SLOT_RAW, SLOT_PENDING, SLOT_SENT, SLOT_DONE };

struct slot {
    enum slot_state state;
    struct journal_pos next;
    int64_t received_us;
    int64_t pending_ms; /* when it became PENDING (linger) */
    char *raw;          /* topic bytes, then payload bytes */
    size_t topic_len;
    size_t payload_len;
    char *ent; /* entity JSON, then id, service, path (NUL-terminated) */
    size_t json_len;
    const char *id;
    const char *service; /* NULL: no Fiware-Service / NGSILD-Tenant */
    const char *path;
    uint64_t ghash;      /* of (service, path) */
    uint64_t khash;      /* of (service, path, id): the entity's key */
    size_t bytes;        /* counted in the window */
    bool reject_written; /* range reject already in the file store */
};

enum req_state { RQ_FREE, RQ_READY, RQ_INFLIGHT };

struct range {
    uint16_t lo, hi; /* indexes into items[] */
};

struct req {
    enum req_state state;
    uint32_t items[NGSI_BATCH_ENTITIES]; /* ring indexes, journal order */
    uint16_t n;
    struct range cur;                     /* what is (to be) sent */
    struct range stack[NGSI_SPLIT_DEPTH]; /* later halves still to send */
    int depth;
    int64_t started_ms;
    struct http_request *http;
    struct ngsi_body *body;
    /* 207 outcome per item of cur (ITEM_*), reset per answer */
    uint8_t outcome[NGSI_BATCH_ENTITIES];
};

enum { ITEM_OK, ITEM_DEAD, ITEM_RETRY };

/* Multiset of entity keys in requests (linear probing, key 0 = empty). A
 * hash collision only serialises two entities: never incorrect. */
struct keyset {
    uint64_t key[KEYSET_CAP];
    uint32_t count[KEYSET_CAP];
};

struct ngsi_sink {
    enum ngsi_flavour flavour;
    enum sink_id sink;
    const char *mod;
    char *url_log; /* redacted base URL */
    char *url_update;
    char *url_probe;
    const char *auth_header; /* X-Auth-Token or Authorization */
    char *token;             /* that header's value, or NULL */
    char *link;              /* LD Link header value */
    bool record_rejects;
    struct journal *journal;
    struct metrics *metrics;

    struct validator *validator;
    struct ngsi_encoder *encoder;
    struct journal_cursor *cursor;
    struct deadletter *deadletter; /* when record_rejects */
    struct http_client *http;
    struct http_request *probe;
    bool probe_active;
    bool probe_ok;
    bool probe_known; /* a probe answered or failed once */
    int64_t next_probe_ms;

    struct req reqs[NGSI_MAX_REQUESTS];
    struct slot ring[NGSI_WINDOW_RECORDS];
    uint32_t head, count; /* window */
    uint32_t n_raw;       /* RAW slots: always the window's tail */
    uint32_t n_pending;
    size_t bytes;
    struct keyset keys;

    unsigned failures; /* consecutive transient request failures */
    struct backoff backoff;
    int64_t retry_at_ms;
    int64_t last_fail_ms;
    bool last_fail_unreachable;
    int64_t prep_retry_ms;
    bool caught_up;     /* the last read found nothing more */
    bool journal_shut;  /* ... and the journal is shut down: no waiting */
    bool halted;        /* cannot read on (out of memory while stopping) */
    bool dl_dirty;      /* file dead letters written since the last commit */
    bool dead_appended; /* dead records journaled since the last commit */
    struct journal_pos uncommitted; /* checkpoint to commit */
    bool has_uncommitted;
    int64_t next_commit_ms;
    int64_t next_backlog_ms;

    uint64_t n_requests; /* requests answered 2xx */
    uint64_t n_confirmed;

    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_int ready;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* --- small helpers -------------------------------------------------------- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* malloc'd "a" "b" (b may be ""). */
static char *join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 1);
    if (p) {
        memcpy(p, a, na);
        memcpy(p + na, b, nb + 1);
    }
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

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Waits up to ms, or until a stop request. */
static void wait_ms(struct ngsi_sink *s, int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
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

static void set_ready(struct ngsi_sink *s)
{
    atomic_store(&s->ready, s->probe_ok && s->failures == 0);
}

/* --- key multiset --------------------------------------------------------- */

static size_t keyset_find(const struct keyset *k, uint64_t key)
{
    size_t i = (size_t)key & (KEYSET_CAP - 1);
    while (k->key[i] != 0 && k->key[i] != key)
        i = (i + 1) & (KEYSET_CAP - 1);
    return i;
}

static bool keyset_has(const struct keyset *k, uint64_t key)
{
    return k->key[keyset_find(k, key)] == key;
}

static void keyset_add(struct keyset *k, uint64_t key)
{
    size_t i = keyset_find(k, key);
    k->key[i] = key;
    k->count[i]++;
}

static void keyset_remove(struct keyset *k, uint64_t key)
{
    size_t i = keyset_find(k, key);
    if (k->key[i] != key || --k->count[i] > 0)
        return;
    /* Backward-shift deletion keeps every probe chain unbroken. */
    for (;;) {
        k->key[i] = 0;
        k->count[i] = 0;
        size_t j = i;
        for (;;) {
            j = (j + 1) & (KEYSET_CAP - 1);
            if (k->key[j] == 0)
                return;
            size_t h = (size_t)k->key[j] & (KEYSET_CAP - 1);
            bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
            if (!stays)
                break;
        }
        k->key[i] = k->key[j];
        k->count[i] = k->count[j];
        i = j;
    }
}

/* --- window --------------------------------------------------------------- */

static struct slot *slot_at(struct ngsi_sink *s, uint32_t i)
{
    return &s->ring[(s->head + i) % NGSI_WINDOW_RECORDS];
}

static uint32_t ring_index(const struct ngsi_sink *s, const struct slot *sl)
{
    return (uint32_t)(sl - s->ring);
}

static void slot_entry(const struct slot *sl, struct journal_entry *e)
{
    e->topic = sl->raw;
    e->topic_len = sl->topic_len;
    e->payload = (const unsigned char *)sl->raw + sl->topic_len;
    e->payload_len = sl->payload_len;
    e->received_us = sl->received_us;
    e->next = sl->next;
}

static void slot_release(struct ngsi_sink *s, struct slot *sl)
{
    free(sl->raw);
    free(sl->ent);
    s->bytes -= sl->bytes;
    sl->raw = sl->ent = NULL;
    sl->bytes = 0;
    sl->id = sl->service = sl->path = NULL;
}

static void slot_done(struct ngsi_sink *s, struct slot *sl)
{
    if (sl->state == SLOT_PENDING)
        s->n_pending--;
    if (sl->state == SLOT_SENT)
        keyset_remove(&s->keys, sl->khash);
    sl->state = SLOT_DONE;
    slot_release(s, sl);
}

/* Appends the journal entry to the window as a RAW slot. SPOT_OK or
 * SPOT_ESHUTDOWN (no memory, and a stop was requested). */
static int slot_push(struct ngsi_sink *s, const struct journal_entry *e)
{
    size_t n = e->topic_len + e->payload_len;
    char *raw;
    while ((raw = malloc(n ? n : 1)) == NULL) {
        log_msg(LOG_ERROR, s->mod,
                "out of memory reading the journal; retrying in %d ms",
                NGSI_PREP_RETRY_MS);
        if (atomic_load(&s->stop))
            return SPOT_ESHUTDOWN;
        wait_ms(s, NGSI_PREP_RETRY_MS);
    }
    memcpy(raw, e->topic, e->topic_len);
    memcpy(raw + e->topic_len, e->payload, e->payload_len);
    struct slot *sl = slot_at(s, s->count);
    memset(sl, 0, sizeof *sl);
    sl->state = SLOT_RAW;
    sl->next = e->next;
    sl->received_us = e->received_us;
    sl->raw = raw;
    sl->topic_len = e->topic_len;
    sl->payload_len = e->payload_len;
    sl->bytes = n;
    s->bytes += n;
    s->count++;
    s->n_raw++;
    return SPOT_OK;
}

static bool window_has_room(const struct ngsi_sink *s)
{
    return s->count < NGSI_WINDOW_RECORDS && s->bytes < NGSI_WINDOW_BYTES;
}

/* Reads up to NGSI_READ_PER_TURN records into the window, waiting up to
 * wait_ms for the first. SPOT_OK or a journal error. */
static int intake(struct ngsi_sink *s, int wait_ms_first)
{
    for (int n = 0; n < NGSI_READ_PER_TURN && window_has_room(s); n++) {
        struct journal_entry e;
        int rc = journal_cursor_next(s->cursor, n == 0 ? wait_ms_first : 0, &e);
        if (rc == SPOT_EAGAIN || rc == SPOT_ESHUTDOWN) {
            s->caught_up = true;
            s->journal_shut = rc == SPOT_ESHUTDOWN;
            return SPOT_OK;
        }
        if (rc != SPOT_OK)
            return rc;
        s->caught_up = false;
        rc = slot_push(s, &e);
        if (rc != SPOT_OK) {
            s->halted = true;
            return rc;
        }
    }
    return SPOT_OK;
}

/* --- preparing records ---------------------------------------------------- */

/* Journals a dead letter for the slot's message. */
static int dead_append(struct ngsi_sink *s, const struct slot *sl,
                       enum reject_reason reason, const char *detail)
{
    struct dead_record d = {
        .reason = reason,
        .detail = detail,
        .detail_len = strlen(detail),
        .topic = sl->raw,
        .topic_len = sl->topic_len,
        .payload = (const unsigned char *)sl->raw + sl->topic_len,
        .payload_len = sl->payload_len,
        .received_us = sl->received_us,
    };
    int rc = dead_record_append(s->journal, &d, false);
    if (rc == SPOT_OK) {
        s->dead_appended = true;
    } else if (rc == SPOT_ETOOBIG) {
        char t[128];
        printable(t, sizeof t, sl->raw, sl->topic_len);
        log_msg(LOG_ERROR, s->mod,
                "message on %s cannot be dead-lettered (too large); "
                "dropped: %s",
                t, detail);
        rc = SPOT_OK;
    }
    return rc;
}

static int file_reject(struct ngsi_sink *s, const struct slot *sl,
                       enum reject_reason reason, const char *detail)
{
    int rc = deadletter_write(s->deadletter, reason, detail, strlen(detail),
                              sl->received_us, sl->raw, sl->topic_len,
                              (const unsigned char *)sl->raw + sl->topic_len,
                              sl->payload_len);
    if (rc == SPOT_OK) {
        s->dl_dirty = true;
        metrics_rejected(s->metrics, reason);
    }
    return rc;
}

/* A dead letter another sink (or this one) journaled: kept in the file
 * store when this sink is the dead-letter store, else skipped. */
static int prepare_dead(struct ngsi_sink *s, const struct journal_entry *e)
{
    struct dead_record d;
    if (!s->record_rejects)
        return SPOT_OK;
    if (dead_record_decode(e, &d) != SPOT_OK) {
        log_msg(LOG_ERROR, s->mod, "skipping a malformed dead-letter record");
        return SPOT_OK;
    }
    int rc = deadletter_write(s->deadletter, d.reason, d.detail, d.detail_len,
                              d.received_us, d.topic, d.topic_len, d.payload,
                              d.payload_len);
    if (rc == SPOT_OK) {
        s->dl_dirty = true;
        metrics_rejected(s->metrics, d.reason);
    }
    return rc;
}

/* Copies the encoded entity and its group into the slot. */
static int slot_set_entity(struct ngsi_sink *s, struct slot *sl,
                           const struct ngsi_entity *ent, const struct group *g)
{
    const char *svc = g && g->service && g->service[0] ? g->service : NULL;
    const char *path =
        g && g->service_path && g->service_path[0] ? g->service_path : "/";
    size_t il = strlen(ent->id) + 1, sl_len = svc ? strlen(svc) + 1 : 0;
    size_t pl = strlen(path) + 1;
    size_t n = ent->len + il + sl_len + pl;
    char *p = malloc(n);
    if (p == NULL)
        return SPOT_ENOMEM;
    memcpy(p, ent->json, ent->len);
    char *q = p + ent->len;
    memcpy(q, ent->id, il);
    sl->id = q;
    q += il;
    if (svc) {
        memcpy(q, svc, sl_len);
        sl->service = q;
        q += sl_len;
    }
    memcpy(q, path, pl);
    sl->path = q;
    sl->ent = p;
    sl->json_len = ent->len;
    uint64_t h = fnv(0xcbf29ce484222325ull, svc ? svc : "", sl_len);
    h = fnv(h, path, pl);
    sl->ghash = h;
    sl->khash = fnv(h, ent->id, il);
    if (sl->khash == 0)
        sl->khash = 1;
    sl->bytes += n;
    s->bytes += n;
    return SPOT_OK;
}

/* Validates and encodes one RAW slot. On failure (memory, the file
 * dead-letter store) the slot stays RAW, to be tried again. */
static int prepare(struct ngsi_sink *s, struct slot *sl, int64_t now)
{
    struct journal_entry e;
    slot_entry(sl, &e);
    if (dead_record_is(&e)) {
        int rc = prepare_dead(s, &e);
        if (rc == SPOT_OK)
            slot_done(s, sl);
        return rc;
    }
    const struct record *r = NULL;
    int rc = validator_run(s->validator, e.topic, e.topic_len, e.payload,
                           e.payload_len, e.received_us, &r);
    if (rc != SPOT_OK)
        return rc;
    if (r->reason != REJECT_NONE && r->reason != REJECT_RANGE) {
        /* Rejected by validation: the dead-letter store keeps it. */
        if (s->record_rejects) {
            rc = file_reject(s, sl, r->reason, r->detail);
            if (rc != SPOT_OK)
                return rc;
        }
        slot_done(s, sl);
        return SPOT_OK;
    }
    if (r->reason == REJECT_RANGE && s->record_rejects && !sl->reject_written) {
        rc = file_reject(s, sl, r->reason, r->detail);
        if (rc != SPOT_OK)
            return rc;
        sl->reject_written = true;
    }
    struct ngsi_entity ent;
    char why[SPOT_MAX_DETAIL_LEN];
    why[0] = '\0';
    rc = ngsi_encode(s->encoder, r, &ent, why, sizeof why);
    if (rc == SPOT_OK && !ngsi_entity_check(ent.json, ent.len)) {
        log_msg(LOG_ERROR, s->mod, "the encoder produced invalid JSON for %s",
                ent.id);
        snprintf(why, sizeof why, "the encoder produced invalid JSON");
        rc = SPOT_EINVAL;
    }
    if (rc == SPOT_EINVAL) {
        char t[128], detail[SPOT_MAX_DETAIL_LEN + 64];
        printable(t, sizeof t, e.topic, e.topic_len);
        snprintf(detail, sizeof detail, "not sendable to the broker: %s",
                 why[0] ? why : "invalid entity");
        rc = dead_append(s, sl, REJECT_NGSI, detail);
        if (rc != SPOT_OK)
            return rc;
        log_msg(LOG_INFO, s->mod, "message on %s dead-lettered: %s", t, detail);
        slot_done(s, sl);
        return SPOT_OK;
    }
    if (rc != SPOT_OK)
        return rc;
    rc = slot_set_entity(s, sl, &ent, r->group);
    if (rc != SPOT_OK)
        return rc;
    if (ent.skipped_attrs > 0)
        log_msg(LOG_DEBUG, s->mod,
                "%s: %zu extra field(s) without a legal NGSI name left out",
                ent.id, ent.skipped_attrs);
    sl->state = SLOT_PENDING;
    sl->pending_ms = now;
    s->n_pending++;
    return SPOT_OK;
}

/* Prepares the RAW tail of the window, in order. */
static void prepare_all(struct ngsi_sink *s, int64_t now)
{
    if (s->n_raw == 0 || now < s->prep_retry_ms)
        return;
    while (s->n_raw > 0) {
        struct slot *sl = slot_at(s, s->count - s->n_raw);
        int rc = prepare(s, sl, now);
        if (rc != SPOT_OK) {
            log_msg(LOG_ERROR, s->mod,
                    "processing record %" PRIu64 ": %s; retrying in %d ms",
                    sl->next.seq - 1, spot_strerror(rc), NGSI_PREP_RETRY_MS);
            s->prep_retry_ms = now + NGSI_PREP_RETRY_MS;
            return;
        }
        s->n_raw--;
    }
}

/* Drops the DONE prefix of the window; the checkpoint past it is
 * committed by commit(). */
static void pop_done(struct ngsi_sink *s)
{
    while (s->count > s->n_raw && slot_at(s, 0)->state == SLOT_DONE) {
        struct slot *sl = slot_at(s, 0);
        s->uncommitted = sl->next;
        s->has_uncommitted = true;
        sl->state = SLOT_FREE;
        s->head = (s->head + 1) % NGSI_WINDOW_RECORDS;
        s->count--;
    }
}

/* Commits the checkpoint past what pop_done() dropped, at most every
 * NGSI_COMMIT_MS unless forced (each commit is two fsyncs; a later one
 * only means more is sent again after a crash), after making the dead
 * letters written for those records durable. */
static void commit(struct ngsi_sink *s, int64_t now, bool force)
{
    if (now >= s->next_backlog_ms) {
        metrics_sink_backlog(s->metrics, s->sink,
                             journal_cursor_backlog(s->cursor));
        s->next_backlog_ms = now + NGSI_BACKLOG_MS;
    }
    if (!s->has_uncommitted || (!force && now < s->next_commit_ms))
        return;
    if (s->dl_dirty) {
        int rc = deadletter_sync(s->deadletter);
        if (rc != SPOT_OK) {
            log_msg(LOG_ERROR, s->mod, "syncing the dead-letter file: %s",
                    spot_strerror(rc));
            return;
        }
        s->dl_dirty = false;
    }
    if (s->dead_appended) {
        int rc = journal_sync(s->journal);
        if (rc != SPOT_OK) {
            log_msg(LOG_ERROR, s->mod, "syncing the journal: %s",
                    spot_strerror(rc));
            return;
        }
        s->dead_appended = false;
    }
    int rc = journal_cursor_commit(s->cursor, s->uncommitted);
    if (rc != SPOT_OK)
        log_msg(LOG_ERROR, s->mod,
                "journal checkpoint failed: %s (records up to %" PRIu64
                " will be sent again after a restart)",
                spot_strerror(rc), s->uncommitted.seq);
    s->has_uncommitted = false;
    s->next_commit_ms = now + NGSI_COMMIT_MS;
    metrics_sink_backlog(s->metrics, s->sink,
                         journal_cursor_backlog(s->cursor));
}

/* --- requests ------------------------------------------------------------- */

static struct slot *req_slot(struct ngsi_sink *s, const struct req *q,
                             uint16_t i)
{
    return &s->ring[q->items[i]];
}

static int req_count(const struct ngsi_sink *s, enum req_state st)
{
    int n = 0;
    for (int i = 0; i < NGSI_MAX_REQUESTS; i++)
        n += s->reqs[i].state == st;
    return n;
}

static bool same_group(const struct slot *a, const struct slot *b)
{
    if (a->ghash != b->ghash || strcmp(a->path, b->path) != 0)
        return false;
    if (a->service == NULL || b->service == NULL)
        return a->service == b->service;
    return strcmp(a->service, b->service) == 0;
}

static bool key_in_batch(const struct ngsi_sink *s, const struct req *q,
                         uint64_t key)
{
    for (uint16_t i = 0; i < q->n; i++) {
        if (s->ring[q->items[i]].khash == key)
            return true;
    }
    return false;
}

/* Fills the free request q with pending entities of one group, oldest
 * first, skipping entities that another request holds. Returns the number
 * taken. */
static uint16_t form_batch(struct ngsi_sink *s, struct req *q)
{
    const struct slot *g = NULL;
    size_t bytes = NGSI_BODY_OVERHEAD;
    q->n = 0;
    for (uint32_t i = 0; i < s->count - s->n_raw; i++) {
        struct slot *sl = slot_at(s, i);
        if (sl->state != SLOT_PENDING || keyset_has(&s->keys, sl->khash))
            continue;
        if (g == NULL) {
            g = sl;
        } else {
            if (!same_group(sl, g))
                continue;
            if (s->flavour == NGSI_FLAVOUR_LD && key_in_batch(s, q, sl->khash))
                continue;
            if (q->n == NGSI_BATCH_ENTITIES ||
                bytes + sl->json_len + 1 > NGSI_BATCH_BYTES)
                break;
        }
        q->items[q->n++] = ring_index(s, sl);
        bytes += sl->json_len + 1;
    }
    for (uint16_t i = 0; i < q->n; i++) {
        struct slot *sl = req_slot(s, q, i);
        sl->state = SLOT_SENT;
        s->n_pending--;
        keyset_add(&s->keys, sl->khash);
    }
    if (q->n > 0) {
        q->cur = (struct range){0, q->n};
        q->depth = 0;
        q->state = RQ_READY;
    }
    return q->n;
}

/* Builds the body and the headers of q's current range and starts it. */
static int send_req(struct ngsi_sink *s, struct req *q, int64_t now)
{
    const struct slot *first = req_slot(s, q, q->cur.lo);
    ngsi_body_begin(q->body);
    for (uint16_t i = q->cur.lo; i < q->cur.hi; i++) {
        const struct slot *sl = req_slot(s, q, i);
        int rc = ngsi_body_add(q->body, sl->ent, sl->json_len);
        if (rc != SPOT_OK)
            return rc;
    }
    const unsigned char *buf;
    size_t len;
    int rc = ngsi_body_finish(q->body, &buf, &len);
    if (rc != SPOT_OK)
        return rc;
    struct http_request *h = q->http;
    http_request_clear_headers(h);
    rc = http_request_header(h, "Content-Type", "application/json");
    if (rc == SPOT_OK)
        rc = http_request_header(h, "Accept", "application/json");
    if (rc == SPOT_OK)
        rc = http_request_header(h, "Expect", "");
    if (s->flavour == NGSI_FLAVOUR_V2) {
        if (rc == SPOT_OK && first->service)
            rc = http_request_header(h, "Fiware-Service", first->service);
        if (rc == SPOT_OK)
            rc = http_request_header(h, "Fiware-ServicePath", first->path);
    } else {
        if (rc == SPOT_OK)
            rc = http_request_header(h, "Link", s->link);
        if (rc == SPOT_OK && first->service)
            rc = http_request_header(h, "NGSILD-Tenant", first->service);
    }
    if (rc == SPOT_OK && s->token)
        rc = http_request_header(h, s->auth_header, s->token);
    if (rc == SPOT_OK)
        rc = http_client_start(s->http, h, s->url_update, buf, len);
    if (rc != SPOT_OK)
        return rc;
    q->state = RQ_INFLIGHT;
    q->started_ms = now;
    log_msg(LOG_DEBUG, s->mod, "sending %u entities (%zu bytes) to %s%s",
            (unsigned)(q->cur.hi - q->cur.lo), len,
            first->service ? first->service : "-", first->path);
    return SPOT_OK;
}

/* The next range of q after its current one is resolved. */
static void next_range(struct req *q)
{
    if (q->depth > 0) {
        q->cur = q->stack[--q->depth];
        q->state = RQ_READY;
    } else {
        q->state = RQ_FREE;
        q->n = 0;
    }
}

/* The broker answered properly: the failure streak ends. */
static void peer_ok(struct ngsi_sink *s, int64_t now)
{
    if (s->failures > 0)
        log_msg(LOG_INFO, s->mod, "%s answers again after %u failed attempt(s)",
                s->url_log, s->failures);
    s->failures = 0;
    backoff_reset(&s->backoff);
    s->probe_ok = true;
    s->next_probe_ms = now + NGSI_PROBE_IDLE_MS;
    set_ready(s);
}

/* A transient failure of q: retried after the back-off. */
static void req_transient(struct ngsi_sink *s, struct req *q, int64_t now,
                          bool unreachable, const char *why)
{
    metrics_sink_error(s->metrics, s->sink);
    q->state = RQ_READY;
    /* Requests that were already in flight when the streak began do not
     * lengthen the back-off again. */
    if (s->failures == 0 || q->started_ms >= s->last_fail_ms) {
        unsigned delay = backoff_next(&s->backoff);
        s->retry_at_ms = now + delay;
        s->last_fail_ms = now;
        s->failures++;
        s->last_fail_unreachable = unreachable;
        log_msg(LOG_WARN, s->mod,
                "update of %u entities failed: %s; retrying in %u ms "
                "(failure %u)",
                (unsigned)(q->cur.hi - q->cur.lo), why, delay, s->failures);
    }
    if (unreachable)
        s->probe_ok = false;
    s->next_probe_ms = now; /* probe while failing */
    set_ready(s);
}

static void confirm(struct ngsi_sink *s, struct slot *sl, int64_t now_us)
{
    metrics_latency(s->metrics, s->sink, sl->received_us, now_us);
    slot_done(s, sl);
    s->n_confirmed++;
}

/* Dead-letters the entity at q->items[i]: SPOT_OK, or an error (then it
 * stays in the request). */
static int refuse_item(struct ngsi_sink *s, struct req *q, uint16_t i,
                       const char *why)
{
    struct slot *sl = req_slot(s, q, i);
    char detail[NGSI_DETAIL_LEN], t[128];
    snprintf(detail, sizeof detail, "%s refused entity %s: %s",
             s->flavour == NGSI_FLAVOUR_V2 ? "Orion" : "the NGSI-LD broker",
             sl->id, why);
    int rc = dead_append(s, sl, REJECT_NGSI, detail);
    if (rc != SPOT_OK) {
        log_msg(LOG_ERROR, s->mod, "dead-lettering %s: %s", sl->id,
                spot_strerror(rc));
        return rc;
    }
    printable(t, sizeof t, sl->raw, sl->topic_len);
    log_msg(LOG_WARN, s->mod, "message on %s dead-lettered: %s", t, detail);
    slot_done(s, sl);
    return SPOT_OK;
}

/* 400 or 413: halve the current range, or dead-letter its one entity. */
static void req_refused(struct ngsi_sink *s, struct req *q, int64_t now,
                        const struct http_result *res)
{
    char line[384], why[400];
    ngsi_error_line(res->body, res->body_len, line, sizeof line);
    snprintf(why, sizeof why, "HTTP %ld: %s", res->status, line);
    metrics_sink_error(s->metrics, s->sink);
    peer_ok(s, now);
    uint16_t n = q->cur.hi - q->cur.lo;
    if (n > 1 && q->depth < NGSI_SPLIT_DEPTH) {
        uint16_t mid = q->cur.lo + n / 2;
        q->stack[q->depth++] = (struct range){mid, q->cur.hi};
        q->cur.hi = mid;
        q->state = RQ_READY;
        log_msg(LOG_INFO, s->mod,
                "batch of %u entities refused (%s); splitting it to find "
                "the entity the broker refuses",
                (unsigned)n, why);
        return;
    }
    for (uint16_t i = q->cur.lo; i < q->cur.hi; i++) {
        if (refuse_item(s, q, i, why) != SPOT_OK) {
            q->cur.lo = i; /* the rest is retried */
            req_transient(s, q, now, false, "cannot write a dead letter");
            return;
        }
    }
    next_range(q);
}

static void confirm_range(struct ngsi_sink *s, struct req *q, int64_t now)
{
    int64_t now_us = spot_now_us();
    uint16_t n = q->cur.hi - q->cur.lo;
    for (uint16_t i = q->cur.lo; i < q->cur.hi; i++)
        confirm(s, req_slot(s, q, i), now_us);
    metrics_sink_writes(s->metrics, s->sink, n);
    s->n_requests++;
    peer_ok(s, now);
    next_range(q);
}

struct ld207 {
    struct ngsi_sink *s;
    struct req *q;
    unsigned dead, retry;
    char first[384];
};

static void on_ld_error(void *arg, const struct ngsi_ld_error *e)
{
    struct ld207 *c = arg;
    struct req *q = c->q;
    for (uint16_t i = q->cur.lo; i < q->cur.hi; i++) {
        struct slot *sl = req_slot(c->s, q, i);
        if (q->outcome[i] != ITEM_OK || strcmp(sl->id, e->entity_id) != 0)
            continue;
        if (!e->transient && refuse_item(c->s, q, i, e->detail) == SPOT_OK) {
            q->outcome[i] = ITEM_DEAD;
            c->dead++;
        } else {
            q->outcome[i] = ITEM_RETRY;
            c->retry++;
            if (c->first[0] == '\0')
                snprintf(c->first, sizeof c->first, "%s", e->detail);
        }
        break;
    }
}

/* 207 (NGSI-LD): per-entity errors. */
static void req_multi(struct ngsi_sink *s, struct req *q, int64_t now,
                      const struct http_result *res)
{
    struct ld207 c = {.s = s, .q = q};
    memset(q->outcome, ITEM_OK, sizeof q->outcome);
    if (ngsi_ld_parse_207(res->body, res->body_len, on_ld_error, &c) !=
        SPOT_OK) {
        req_transient(s, q, now, false, "HTTP 207 with an unreadable body");
        return;
    }
    int64_t now_us = spot_now_us();
    uint16_t keep = q->cur.lo, ok = 0;
    for (uint16_t i = q->cur.lo; i < q->cur.hi; i++) {
        if (q->outcome[i] == ITEM_RETRY) {
            q->items[keep++] = q->items[i];
        } else if (q->outcome[i] == ITEM_OK) {
            confirm(s, req_slot(s, q, i), now_us);
            ok++;
        }
    }
    if (ok > 0)
        metrics_sink_writes(s->metrics, s->sink, ok);
    s->n_requests++;
    if (c.retry > 0) {
        char why[480];
        q->cur.hi = keep;
        snprintf(why, sizeof why, "HTTP 207, %u transient error(s): %s",
                 c.retry, c.first);
        req_transient(s, q, now, false, why);
        return;
    }
    if (c.dead > 0)
        metrics_sink_error(s->metrics, s->sink);
    peer_ok(s, now);
    next_range(q);
}

static void req_done(struct ngsi_sink *s, struct req *q, int64_t now,
                     const struct http_result *res)
{
    char why[480];
    if (!res->answered) {
        snprintf(why, sizeof why, "%s%s", res->timed_out ? "timeout: " : "",
                 res->error);
        req_transient(s, q, now, true, why);
        return;
    }
    long st = res->status;
    if (st == 207 && s->flavour == NGSI_FLAVOUR_LD) {
        req_multi(s, q, now, res);
    } else if (st >= 200 && st < 300) {
        confirm_range(s, q, now);
    } else if (st == 400 || st == 413) {
        req_refused(s, q, now, res);
    } else {
        char line[384];
        ngsi_error_line(res->body, res->body_len, line, sizeof line);
        const char *hint = "";
        if (st == 401 || st == 403)
            hint = " (check --orion-token)";
        else if (st == 404 || st == 405)
            hint = " (check the broker URL)";
        snprintf(why, sizeof why, "HTTP %ld: %s%s", st, line, hint);
        req_transient(s, q, now, false, why);
    }
}

/* Starts what may start now: while failing, one request at a time after
 * the back-off (the oldest); otherwise every ready request, then new
 * batches while requests are free. */
static void schedule(struct ngsi_sink *s, int64_t now, bool stopping)
{
    int inflight = req_count(s, RQ_INFLIGHT);
    for (;;) {
        if (s->failures > 0 && (inflight > 0 || now < s->retry_at_ms))
            return;
        struct req *best = NULL;
        uint64_t best_seq = UINT64_MAX;
        for (int i = 0; i < NGSI_MAX_REQUESTS; i++) {
            struct req *q = &s->reqs[i];
            uint64_t seq = q->state == RQ_READY
                               ? req_slot(s, q, q->cur.lo)->next.seq
                               : UINT64_MAX;
            if (seq < best_seq) {
                best = q;
                best_seq = seq;
            }
        }
        if (best == NULL)
            break;
        int rc = send_req(s, best, now);
        if (rc != SPOT_OK) {
            req_transient(s, best, now, false, spot_strerror(rc));
            return;
        }
        inflight++;
    }
    if (s->failures > 0 || s->n_pending == 0)
        return;
    while (s->n_pending > 0) {
        struct req *q = NULL;
        for (int i = 0; i < NGSI_MAX_REQUESTS && q == NULL; i++) {
            if (s->reqs[i].state == RQ_FREE)
                q = &s->reqs[i];
        }
        if (q == NULL)
            return;
        if (inflight > 0 && !stopping && s->n_pending < NGSI_BATCH_ENTITIES) {
            /* Busy: let a batch fill for up to NGSI_LINGER_MS. */
            int64_t oldest = now;
            for (uint32_t i = 0; i < s->count - s->n_raw; i++) {
                const struct slot *sl = slot_at(s, i);
                if (sl->state == SLOT_PENDING) {
                    oldest = sl->pending_ms;
                    break;
                }
            }
            if (now - oldest < NGSI_LINGER_MS)
                return;
        }
        if (form_batch(s, q) == 0)
            return;
        int rc = send_req(s, q, now);
        if (rc != SPOT_OK) {
            req_transient(s, q, now, false, spot_strerror(rc));
            return;
        }
        inflight++;
    }
}

/* --- readiness probe ------------------------------------------------------ */

static void probe_start(struct ngsi_sink *s, int64_t now)
{
    if (s->probe_active || now < s->next_probe_ms)
        return;
    http_request_clear_headers(s->probe);
    int rc = http_request_header(s->probe, "Accept", "application/json");
    if (rc == SPOT_OK && s->token)
        rc = http_request_header(s->probe, s->auth_header, s->token);
    if (rc == SPOT_OK)
        rc = http_client_start(s->http, s->probe, s->url_probe, NULL, 0);
    if (rc != SPOT_OK) {
        s->next_probe_ms = now + NGSI_PROBE_FAIL_MS;
        return;
    }
    s->probe_active = true;
}

static void probe_done(struct ngsi_sink *s, int64_t now,
                       const struct http_result *res)
{
    s->probe_active = false;
    bool ok = res->answered && (s->flavour == NGSI_FLAVOUR_V2
                                    ? res->status >= 200 && res->status < 300
                                    : res->status < 500);
    if (ok && (!s->probe_ok || !s->probe_known))
        log_msg(LOG_INFO, s->mod, "%s reachable (HTTP %ld in %.0f ms)",
                s->url_log, res->status, res->seconds * 1000);
    if (!ok && (s->probe_ok || !s->probe_known)) {
        char why[400];
        if (res->answered) {
            char line[300];
            ngsi_error_line(res->body, res->body_len, line, sizeof line);
            snprintf(why, sizeof why, "HTTP %ld: %s", res->status, line);
        } else {
            snprintf(why, sizeof why, "%s", res->error);
        }
        log_msg(LOG_WARN, s->mod, "%s unreachable: %s", s->url_log, why);
    }
    s->probe_known = true;
    s->probe_ok = ok;
    if (ok && s->failures > 0 && s->last_fail_unreachable &&
        s->retry_at_ms > now)
        s->retry_at_ms = now; /* back: retry at once */
    s->next_probe_ms = now + (ok && s->failures == 0 ? NGSI_PROBE_IDLE_MS
                                                     : NGSI_PROBE_FAIL_MS);
    set_ready(s);
}

/* --- thread --------------------------------------------------------------- */

static void handle_done(struct ngsi_sink *s)
{
    struct http_result res;
    struct http_request *h;
    while ((h = http_client_done(s->http, &res)) != NULL) {
        int64_t now = spot_mono_ms();
        if (h == s->probe) {
            probe_done(s, now, &res);
            continue;
        }
        struct req *q = http_request_user(h);
        req_done(s, q, now, &res);
    }
}

/* Milliseconds until the next timer (retry, probe, linger, local retry),
 * at most cap. */
static int64_t next_timer(const struct ngsi_sink *s, int64_t now, int64_t cap)
{
    int64_t t = now + cap;
    if (s->failures > 0 && req_count(s, RQ_READY) > 0 && s->retry_at_ms < t)
        t = s->retry_at_ms;
    if (!s->probe_active && s->next_probe_ms < t)
        t = s->next_probe_ms;
    if (s->n_pending > 0 && s->failures == 0)
        t = t < now + NGSI_LINGER_MS ? t : now + NGSI_LINGER_MS;
    if (s->n_raw > 0 && s->prep_retry_ms < t)
        t = s->prep_retry_ms;
    if (s->has_uncommitted && s->next_commit_ms < t)
        t = s->next_commit_ms;
    return t > now ? t - now : 0;
}

static void *sink_main(void *arg)
{
    struct ngsi_sink *s = arg;
    int64_t deadline = -1;
    s->next_probe_ms = spot_mono_ms();
    log_msg(LOG_INFO, s->mod, "started: %s (%s)", s->url_log,
            s->flavour == NGSI_FLAVOUR_V2 ? "NGSI-v2" : "NGSI-LD");
    for (;;) {
        metrics_heartbeat(s->metrics, s->sink);
        int64_t now = spot_mono_ms();
        if (atomic_load(&s->stop) && deadline < 0) {
            deadline = now + SPOT_SHUTDOWN_DRAIN_MS;
            log_msg(LOG_INFO, s->mod,
                    "stopping: sending what was read (at most %d ms)",
                    SPOT_SHUTDOWN_DRAIN_MS);
        }
        bool stopping = deadline >= 0;
        int inflight = req_count(s, RQ_INFLIGHT);
        if (stopping) {
            if (now >= deadline)
                break;
            if ((s->failures > 0 || s->halted) && inflight == 0)
                break; /* the broker is not answering: keep the rest */
            if (s->count == 0 && s->caught_up && inflight == 0)
                break; /* everything read is confirmed */
        }
        prepare_all(s, now);
        pop_done(s);
        commit(s, now, false);
        probe_start(s, now);
        schedule(s, now, stopping);

        /* Wait: for the network while anything is on it, else for the
         * journal, else for the next timer. */
        bool can_read =
            window_has_room(s) && !s->halted && !(stopping && s->failures > 0);
        int64_t t = next_timer(s, now, NGSI_IDLE_WAIT_MS);
        if (stopping && deadline - now < t)
            t = deadline - now;
        if (http_client_active(s->http) > 0) {
            if (can_read && !s->caught_up)
                t = 0;
            else if (t > NGSI_NET_WAIT_MS)
                t = NGSI_NET_WAIT_MS;
            if (http_client_run(s->http, (int)t) != SPOT_OK) {
                log_msg(LOG_ERROR, s->mod, "libcurl multi interface failed");
                wait_ms(s, NGSI_PREP_RETRY_MS);
            }
            handle_done(s);
            if (can_read && intake(s, 0) != SPOT_OK && !s->halted)
                wait_ms(s, NGSI_PREP_RETRY_MS);
        } else if (can_read && !s->journal_shut) {
            int rc = intake(s, (int)t);
            if (rc != SPOT_OK && !s->halted) {
                log_msg(LOG_ERROR, s->mod,
                        "reading the journal: %s; retrying in %d ms",
                        spot_strerror(rc), NGSI_PREP_RETRY_MS);
                wait_ms(s, NGSI_PREP_RETRY_MS);
            }
        } else {
            wait_ms(s, t > 0 ? t : 1);
            if (can_read && intake(s, 0) != SPOT_OK && !s->halted)
                wait_ms(s, NGSI_PREP_RETRY_MS);
        }
        pop_done(s);
        commit(s, spot_mono_ms(), false);
    }

    /* Unconfirmed requests stay after the checkpoint: sent again later. */
    for (int i = 0; i < NGSI_MAX_REQUESTS; i++) {
        if (s->reqs[i].state == RQ_INFLIGHT)
            http_client_cancel(s->http, s->reqs[i].http);
    }
    if (s->probe_active)
        http_client_cancel(s->http, s->probe);
    s->probe_active = false;
    pop_done(s);
    commit(s, spot_mono_ms(), true);
    atomic_store(&s->ready, 0);
    metrics_sink_backlog(s->metrics, s->sink,
                         journal_cursor_backlog(s->cursor));
    log_msg(LOG_INFO, s->mod,
            "stopped: %" PRIu64 " entities confirmed in %" PRIu64
            " requests; %" PRIu64 " records wait in the journal",
            s->n_confirmed, s->n_requests, journal_cursor_backlog(s->cursor));
    return NULL;
}

/* --- public --------------------------------------------------------------- */

static bool header_safe(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

static int build_urls(struct ngsi_sink *s, const struct ngsi_sink_options *o)
{
    size_t n = strlen(o->url);
    char *base = dup_str(o->url);
    if (base == NULL)
        return SPOT_ENOMEM;
    while (n > 0 && base[n - 1] == '/')
        base[--n] = '\0';
    int rc = SPOT_ENOMEM;
    char red[1024];
    log_redact_url(base, red, sizeof red);
    s->url_log = dup_str(red);
    if (o->flavour == NGSI_FLAVOUR_V2) {
        s->url_update = join(base, "/v2/op/update");
        s->url_probe = join(base, "/version");
    } else {
        s->url_update =
            join(base, "/ngsi-ld/v1/entityOperations/upsert?options=update");
        s->url_probe = join(base, "/ngsi-ld/v1/types");
    }
    if (s->url_log && s->url_update && s->url_probe)
        rc = SPOT_OK;
    free(base);
    return rc;
}

int ngsi_sink_new(struct ngsi_sink **out, const struct ngsi_sink_options *o,
                  struct journal *journal, const struct schema_set *schemas,
                  const struct groups *groups, const struct devices *devices,
                  struct metrics *metrics)
{
    if (!o || !o->url || !journal || !schemas || !metrics)
        return SPOT_EINVAL;
    const char *mod = o->flavour == NGSI_FLAVOUR_V2 ? "orion" : "ngsi_ld";
    if (strncmp(o->url, "http://", 7) != 0 &&
        strncmp(o->url, "https://", 8) != 0) {
        log_msg(LOG_ERROR, mod,
                "broker URL must start with http:// or "
                "https://");
        return SPOT_ECONFIG;
    }
    if ((o->token && !header_safe(o->token)) || !header_safe(o->url) ||
        (o->ld_context &&
         (!header_safe(o->ld_context) || strpbrk(o->ld_context, "<>\"")))) {
        log_msg(LOG_ERROR, mod,
                "token, URL or @context holds characters that cannot go "
                "into an HTTP header");
        return SPOT_ECONFIG;
    }
    if (o->record_rejects && (!o->data_dir || !o->data_dir[0]))
        return SPOT_EINVAL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return SPOT_ENOMEM;
    struct ngsi_sink *s = calloc(1, sizeof *s);
    if (!s) {
        curl_global_cleanup();
        return SPOT_ENOMEM;
    }
    s->flavour = o->flavour;
    s->sink = o->flavour == NGSI_FLAVOUR_V2 ? SINK_ORION : SINK_NGSI_LD;
    s->mod = mod;
    s->record_rejects = o->record_rejects;
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

    int rc = build_urls(s, o);
    if (rc != SPOT_OK)
        goto fail;
    rc = SPOT_ENOMEM;
    s->auth_header = o->token_bearer ? "Authorization" : "X-Auth-Token";
    if (o->token && o->token[0]) {
        size_t n = strlen(o->token) + sizeof "Bearer ";
        if ((s->token = malloc(n)) == NULL)
            goto fail;
        snprintf(s->token, n, "%s%s", o->token_bearer ? "Bearer " : "",
                 o->token);
    }
    if (o->flavour == NGSI_FLAVOUR_LD) {
        const char *ctx =
            o->ld_context && o->ld_context[0] ? o->ld_context : LD_CORE_CONTEXT;
        char link[2048];
        int n = snprintf(link, sizeof link,
                         "<%s>; rel=\"http://www.w3.org/ns/json-ld#context\"; "
                         "type=\"application/ld+json\"",
                         ctx);
        if (n < 0 || (size_t)n >= sizeof link) {
            rc = SPOT_ECONFIG;
            goto fail;
        }
        if ((s->link = dup_str(link)) == NULL)
            goto fail;
    }
    struct http_client_options ho = {
        .ca_file = o->ca_file,
        .connect_timeout_ms = NGSI_CONNECT_TIMEOUT_MS,
        .timeout_ms = NGSI_REQUEST_TIMEOUT_MS,
    };
    rc = http_client_new(&s->http, &ho);
    if (rc == SPOT_OK)
        rc = http_request_new(&s->probe, NULL);
    for (int i = 0; i < NGSI_MAX_REQUESTS && rc == SPOT_OK; i++) {
        rc = http_request_new(&s->reqs[i].http, &s->reqs[i]);
        if (rc == SPOT_OK)
            rc = ngsi_body_new(&s->reqs[i].body, o->flavour);
    }
    if (rc == SPOT_OK)
        rc = validator_new(&s->validator, schemas, groups);
    if (rc == SPOT_OK)
        rc = ngsi_encoder_new(&s->encoder, o->flavour, o->mapping, devices);
    if (rc == SPOT_OK && o->record_rejects)
        rc = deadletter_open(&s->deadletter, o->data_dir);
    if (rc != SPOT_OK)
        goto fail;
    rc = journal_cursor_open(journal, sink_name(s->sink), &s->cursor);
    if (rc != SPOT_OK) {
        log_msg(LOG_ERROR, mod, "opening journal cursor %s: %s",
                sink_name(s->sink), spot_strerror(rc));
        goto fail;
    }
    *out = s;
    return SPOT_OK;
fail:
    ngsi_sink_free(s);
    return rc;
}

int ngsi_sink_start(struct ngsi_sink *s)
{
    if (s->started)
        return SPOT_EINVAL;
    atomic_store(&s->stop, false);
    int e = pthread_create(&s->thread, NULL, sink_main, s);
    if (e != 0) {
        log_msg(LOG_ERROR, s->mod, "starting the sink thread: %s", strerror(e));
        return e == EAGAIN ? SPOT_EAGAIN : SPOT_ENOMEM;
    }
    s->started = true;
    return SPOT_OK;
}

void ngsi_sink_stop(struct ngsi_sink *s)
{
    if (!s || !s->started)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    http_client_wakeup(s->http);
    pthread_join(s->thread, NULL);
    s->started = false;
}

void ngsi_sink_free(struct ngsi_sink *s)
{
    if (!s)
        return;
    ngsi_sink_stop(s);
    for (uint32_t i = 0; i < s->count; i++)
        slot_release(s, slot_at(s, i));
    for (int i = 0; i < NGSI_MAX_REQUESTS; i++) {
        if (s->reqs[i].http && http_request_active(s->reqs[i].http))
            http_client_cancel(s->http, s->reqs[i].http);
        http_request_free(s->reqs[i].http);
        ngsi_body_free(s->reqs[i].body);
    }
    if (s->probe && http_request_active(s->probe))
        http_client_cancel(s->http, s->probe);
    http_request_free(s->probe);
    http_client_free(s->http);
    journal_cursor_close(s->cursor);
    deadletter_close(s->deadletter);
    ngsi_encoder_free(s->encoder);
    validator_free(s->validator);
    free(s->url_log);
    free(s->url_update);
    free(s->url_probe);
    free(s->token);
    free(s->link);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    curl_global_cleanup();
}

int ngsi_sink_is_ready(const struct ngsi_sink *s)
{
    return s ? atomic_load(&s->ready) : 0;
}
