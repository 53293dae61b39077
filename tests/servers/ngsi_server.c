/*
 * ngsi_server: the project's stand-in for a FIWARE context broker (Orion
 * NGSI-v2 and an Orion-LD-like NGSI-LD subset), for the NGSI sink tests.
 * It enforces Orion's documented request rules strictly (see README.md and
 * ngsi_server_rules.h), keeps entities in memory (ngsi_server_store.h) and
 * offers a test-control API under /__ (faults, statistics, recorded
 * requests).
 *
 * Threads: libmicrohttpd runs one thread per connection; our own listener
 * thread accepts connections and hands them to libmicrohttpd
 * (MHD_add_connection), so that /__faults can stop listening and listen
 * again on the same port; the main thread waits for SIGINT/SIGTERM. All
 * shared state (store, statistics, request ring, faults) is under one
 * mutex, g.lock; request parsing and validation run outside it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "spot/err.h"
#include "spot/pem.h"

#include "ngsi_server_json.h"
#include "ngsi_server_rules.h"
#include "ngsi_server_store.h"

/* --- limits --------------------------------------------------------------- */

#define NS_VERSION              "3.10.1-spotagent-test"
#define NS_DEFAULT_MAX_BODY     (1024u * 1024u) /* Orion -inReqPayloadMaxSize */
#define NS_DEFAULT_MAX_ENTITIES 1000000u
#define NS_DEFAULT_MAX_STORE_MB 512u
#define NS_DISCARD_MAX          (64u * 1024u * 1024u) /* read, then 413 */
#define NS_CONN_LIMIT           1020 /* Orion -maxConnections */
#define NS_CONN_TIMEOUT_S       120
#define NS_RING_SIZE            256
#define NS_RING_MAX_BYTES       (64u * 1024u * 1024u)
#define NS_RING_BODY_MAX        (1024u * 1024u)
#define NS_PAGE_DEFAULT         20
#define NS_PAGE_MAX             1000 /* Orion MAX_PAGINATION_LIMIT */
#define NS_MAX_FAULT_MS         600000
#define NS_RELISTEN_TRY_MS      5000
#define NS_DESC_MAX             1024

#define LD_ERR_BASE "https://uri.etsi.org/ngsi-ld/errors/"
#define LD_CTX_REL  "http://www.w3.org/ns/json-ld#context"

/* --- state ---------------------------------------------------------------- */

struct rec {
    uint64_t seq;
    int64_t t_ms;
    char *method;
    char *path;
    char *args;    /* JSON object text */
    char *headers; /* JSON object text, lower-case names */
    char *body;    /* UTF-8 sanitized */
    size_t body_len;
    int truncated;
    int status; /* 0: connection closed without an answer */
    size_t bytes;
};

struct stats {
    uint64_t requests, updates, rejected, entities_received;
    uint64_t injected_failures, injected_closes, refusals, store_full;
    uint64_t by_status[600];
    size_t max_entities_per_request;
};

struct faults {
    long fail_next;
    int fail_status;
    long close_next;
    long delay_ms;
    int all; /* 1: fail/close any request, 0: write requests only */
};

static struct {
    /* configuration */
    const char *bind;
    unsigned port;
    const char *port_file;
    size_t max_body;
    int multiservice;
    size_t max_entities;
    size_t max_store_bytes;
    FILE *log;
    char *tls_cert; /* PEM text of --tls-cert (HTTPS when set) */
    char *tls_key;  /* PEM text of --tls-key */

    /* shared state, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cv; /* stop, refusal handshake, delays */
    int stopping;
    struct ns_store store;
    struct stats st;
    struct faults f;
    struct rec ring[NS_RING_SIZE];
    size_t ring_head, ring_n, ring_bytes;
    uint64_t seq;
    long refuse_ms;    /* pending refusal request */
    int refuse_keep;   /* connection fd not to shut down */
    int refuse_ack;    /* listener closed the socket */
    int refusing;      /* refusal window in progress */
    uint64_t corr_seq; /* Fiware-Correlator counter */

    /* live connections (for refusals), under conn_lock */
    pthread_mutex_t conn_lock;
    int conns[NS_CONN_LIMIT + 64];
    size_t nconns;

    struct MHD_Daemon *mhd;
    int wake[2]; /* self-pipe waking the listener */
    pthread_t listener;
} g;

static void log_line(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void log_line(const char *fmt, ...)
{
    va_list ap;
    struct timespec ts;
    char tbuf[40];

    if (g.log == NULL) {
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    iso8601_format((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, tbuf,
                   sizeof tbuf);
    flockfile(g.log);
    fprintf(g.log, "%s ", tbuf);
    va_start(ap, fmt);
    vfprintf(g.log, fmt, ap);
    va_end(ap);
    fputc('\n', g.log);
    fflush(g.log);
    funlockfile(g.log);
}

/* libmicrohttpd's own messages (closed sockets under injected faults, ...)
 * go to --log, not to stderr. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    if (g.log == NULL) {
        return;
    }
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
    vsnprintf(msg, sizeof msg, fmt, ap);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') {
        msg[--n] = '\0';
    }
    log_line("libmicrohttpd: %s", msg);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec deadline_in(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* --- per-request context -------------------------------------------------- */

enum kind { K_OTHER, K_CONTROL, K_V2, K_LD };

struct req {
    struct MHD_Connection *conn;
    char method[16];
    char *path;
    enum kind kind;
    int write; /* POST, PUT, PATCH or DELETE outside /__ */
    char *body;
    size_t len, cap;
    size_t received;
    int overflow; /* body beyond max_body: discarded */
    int has_clen;
    unsigned long long clen;
    int answered;
    size_t entities; /* entities in the body, for the statistics */
};

static const char *hdr(const struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static const char *arg(const struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* --- UTF-8 ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned min;
    unsigned cp;

    if (s[0] < 0x80) {
        return s[0] != 0 ? 1 : 0;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2, min = 0x80, cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, min = 0x800, cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

/* The offset in s[0..n) of the first byte at or after i that does not
 * start a valid UTF-8 sequence (a NUL byte among them), or n. Bodies are
 * nearly always plain ASCII: checked eight bytes at a time. */
static size_t utf8_next_bad(const char *s, size_t i, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    const uint64_t ones = 0x0101010101010101ull, highs = ones * 0x80;

    while (i < n) {
        size_t k;
        uint64_t w;
        if (i + 8 <= n) {
            memcpy(&w, u + i, 8);
            /* no byte >= 0x80 and no zero byte */
            if (((w | ((w - ones) & ~w)) & highs) == 0) {
                i += 8;
                continue;
            }
        }
        if (u[i] >= 0x01 && u[i] < 0x80) {
            i++;
            continue;
        }
        if ((k = utf8_seq(u + i, n - i)) == 0) {
            return i;
        }
        i += k;
    }
    return n;
}

/* A NUL-terminated copy of s[0..n) with invalid UTF-8 and NUL bytes
 * replaced by '?' (so that yajl_gen emits valid JSON); caller frees; NULL
 * when out of memory. */
static char *utf8_copy(const char *s, size_t n)
{
    char *out = malloc(n + 1);

    if (out == NULL) {
        return NULL;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    for (size_t i = utf8_next_bad(out, 0, n); i < n;
         i = utf8_next_bad(out, i + 1, n)) {
        out[i] = '?';
    }
    return out;
}

static void gen_str_safe(yajl_gen gen, const char *s)
{
    char *c = utf8_copy(s, strlen(s));

    if (c != NULL) {
        gen_str(gen, c);
        free(c);
    } else {
        yajl_gen_null(gen);
    }
}

/* --- request ring and statistics (under g.lock) --------------------------- */

static void rec_clear(struct rec *x)
{
    free(x->method);
    free(x->path);
    free(x->args);
    free(x->headers);
    free(x->body);
    memset(x, 0, sizeof *x);
}

static void ring_clear(void)
{
    for (size_t i = 0; i < NS_RING_SIZE; i++) {
        rec_clear(&g.ring[i]);
    }
    g.ring_head = g.ring_n = g.ring_bytes = 0;
}

static enum MHD_Result collect_kv(void *cls, enum MHD_ValueKind kind,
                                  const char *key, const char *value)
{
    yajl_gen gen = cls;
    char name[128];
    size_t i;

    for (i = 0; key[i] != '\0' && i + 1 < sizeof name; i++) {
        name[i] = kind == MHD_HEADER_KIND ? (char)tolower((unsigned char)key[i])
                                          : key[i];
    }
    name[i] = '\0';
    gen_str_safe(gen, name);
    if (value != NULL) {
        gen_str_safe(gen, value);
    } else {
        gen_str(gen, "");
    }
    return MHD_YES;
}

static char *kv_json(struct MHD_Connection *c, enum MHD_ValueKind kind)
{
    yajl_gen gen = yajl_gen_alloc(NULL);
    char *out;

    if (gen == NULL) {
        return NULL;
    }
    yajl_gen_map_open(gen);
    MHD_get_connection_values(c, kind, collect_kv, gen);
    yajl_gen_map_close(gen);
    out = gen_take(gen, NULL);
    yajl_gen_free(gen);
    return out;
}

/* Builds the record of request r outside the lock. */
static void rec_build(struct rec *x, struct req *r, int status)
{
    size_t blen = r->len < NS_RING_BODY_MAX ? r->len : NS_RING_BODY_MAX;

    memset(x, 0, sizeof *x);
    x->t_ms = now_ms();
    x->method = strdup(r->method);
    x->path = strdup(r->path);
    x->args = kv_json(r->conn, MHD_GET_ARGUMENT_KIND);
    x->headers = kv_json(r->conn, MHD_HEADER_KIND);
    /* A whole, clean body is moved, not copied: the request is answered and
     * its body not read again (a batch body is a few hundred KB). */
    if (r->body != NULL && !r->overflow && blen == r->len &&
        utf8_next_bad(r->body, 0, r->len) == r->len) {
        x->body = r->body;
        r->body = NULL;
        r->cap = 0;
    } else {
        x->body = utf8_copy(r->body != NULL ? r->body : "", r->body ? blen : 0);
    }
    x->body_len = r->received;
    x->truncated = r->overflow || blen < r->len;
    x->status = status;
    x->bytes = sizeof *x + str_bytes(x->method) + str_bytes(x->path) +
               str_bytes(x->args) + str_bytes(x->headers) + blen + 1;
}

/* Adds x (taken) to the ring, dropping the oldest records to stay within
 * NS_RING_SIZE and NS_RING_MAX_BYTES. Call with g.lock held. */
static void ring_push(struct rec *x)
{
    while (g.ring_n > 0 && (g.ring_n == NS_RING_SIZE ||
                            g.ring_bytes + x->bytes > NS_RING_MAX_BYTES)) {
        size_t oldest = (g.ring_head + NS_RING_SIZE - g.ring_n) % NS_RING_SIZE;
        g.ring_bytes -= g.ring[oldest].bytes;
        rec_clear(&g.ring[oldest]);
        g.ring_n--;
    }
    x->seq = ++g.seq;
    g.ring[g.ring_head] = *x;
    g.ring_head = (g.ring_head + 1) % NS_RING_SIZE;
    g.ring_n++;
    g.ring_bytes += x->bytes;
    memset(x, 0, sizeof *x);
}

/* Counts the answer to a non-control request and records it. */
static void account(struct req *r, int status, const char *why)
{
    struct rec x;

    rec_build(&x, r, status);
    pthread_mutex_lock(&g.lock);
    g.st.requests++;
    if (status > 0 && status < 600) {
        g.st.by_status[status]++;
    }
    if (r->write) {
        if (status >= 200 && status < 300) {
            g.st.updates++;
        } else if (status >= 400 && status < 500) {
            g.st.rejected++;
        }
    }
    if (r->entities > g.st.max_entities_per_request) {
        g.st.max_entities_per_request = r->entities;
    }
    ring_push(&x);
    pthread_mutex_unlock(&g.lock);
    rec_clear(&x);
    log_line("%s %s %d entities=%zu%s%s", r->method, r->path, status,
             r->entities, why != NULL ? " " : "", why != NULL ? why : "");
}

/* --- responses ------------------------------------------------------------ */

/* Holds the answer delay_ms (a fault) from now; a new delay_ms set
 * meanwhile applies to waiting answers too (0 releases them). Wakes early
 * when the server stops. */
static void fault_delay(void)
{
    struct timespec start, until;

    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_mutex_lock(&g.lock);
    while (!g.stopping && g.f.delay_ms > 0) {
        long ms = g.f.delay_ms;
        until = start;
        until.tv_sec += ms / 1000;
        until.tv_nsec += (ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&g.cv, &g.lock, &until) == ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&g.lock);
}

/* Queues the answer: body taken (malloc'd, may be NULL), hdrs a
 * NULL-terminated list of name/value pairs. Accounts for non-control
 * requests and applies the delay fault to them. */
static enum MHD_Result reply(struct req *r, int status, char *body, size_t len,
                             const char *const *hdrs, const char *why)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char corr[48];

    r->answered = 1;
    if (r->kind != K_CONTROL) {
        account(r, status, why);
        fault_delay();
    }
    if (body != NULL) {
        resp =
            MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    } else {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    if (body != NULL) {
        MHD_add_response_header(resp, "Content-Type", "application/json");
    }
    if (r->kind == K_V2) {
        uint64_t n;
        pthread_mutex_lock(&g.lock);
        n = ++g.corr_seq;
        pthread_mutex_unlock(&g.lock);
        snprintf(corr, sizeof corr, "%08x-%04x-11ee-8000-%012" PRIx64,
                 (unsigned)(now_ms() & 0xffffffff), (unsigned)getpid() & 0xffff,
                 n);
        MHD_add_response_header(resp, "Fiware-Correlator", corr);
    }
    for (; hdrs != NULL && hdrs[0] != NULL; hdrs += 2) {
        MHD_add_response_header(resp, hdrs[0], hdrs[1]);
    }
    ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Orion's error body: {"error": ..., "description": ...}. */
static enum MHD_Result reply_orion(struct req *r, int status, const char *error,
                                   const char *desc)
{
    yajl_gen gen = yajl_gen_alloc(NULL);
    char *body = NULL;
    size_t len = 0;

    if (gen != NULL) {
        yajl_gen_map_open(gen);
        gen_kv_str(gen, "error", error);
        if (desc != NULL) {
            gen_str(gen, "description");
            gen_str_safe(gen, desc);
        }
        yajl_gen_map_close(gen);
        body = gen_take(gen, &len);
        yajl_gen_free(gen);
    }
    return reply(r, status, body, len, NULL, desc);
}

static enum MHD_Result reply_err(struct req *r, const struct ns_err *e)
{
    return reply_orion(r, e->status, e->error, e->desc);
}

/* NGSI-LD ProblemDetails: {"type", "title", "detail"}. */
static enum MHD_Result reply_ld(struct req *r, int status, const char *type,
                                const char *title, const char *detail)
{
    yajl_gen gen = yajl_gen_alloc(NULL);
    char *body = NULL;
    char t[128];
    size_t len = 0;

    if (gen != NULL) {
        snprintf(t, sizeof t, "%s%s", LD_ERR_BASE, type);
        yajl_gen_map_open(gen);
        gen_kv_str(gen, "type", t);
        gen_kv_str(gen, "title", title);
        if (detail != NULL) {
            gen_str(gen, "detail");
            gen_str_safe(gen, detail);
        }
        yajl_gen_map_close(gen);
        body = gen_take(gen, &len);
        yajl_gen_free(gen);
    }
    return reply(r, status, body, len, NULL, detail);
}

/* Answers with the finished generator's text. */
static enum MHD_Result reply_gen(struct req *r, int status, yajl_gen gen,
                                 const char *const *hdrs)
{
    size_t len = 0;
    char *body = gen_take(gen, &len);

    yajl_gen_free(gen);
    if (body == NULL) {
        return reply(r, 500, NULL, 0, NULL, "out of memory");
    }
    return reply(r, status, body, len, hdrs, NULL);
}

static enum MHD_Result method_not_allowed(struct req *r, const char *allow)
{
    const char *hdrs[3];
    yajl_gen gen = yajl_gen_alloc(NULL);
    char t[128];

    if (gen == NULL) {
        return reply(r, 405, NULL, 0, NULL, NULL);
    }
    hdrs[0] = "Allow";
    hdrs[1] = allow;
    hdrs[2] = NULL;
    yajl_gen_map_open(gen);
    if (r->kind == K_LD) {
        snprintf(t, sizeof t, "%s%s", LD_ERR_BASE, "OperationNotSupported");
        gen_kv_str(gen, "type", t);
        gen_kv_str(gen, "title", "Method not allowed");
        gen_kv_str(gen, "detail", allow);
    } else {
        gen_kv_str(gen, "error", "MethodNotAllowed");
        gen_kv_str(gen, "description", "method not allowed");
    }
    yajl_gen_map_close(gen);
    return reply_gen(r, 405, gen, hdrs);
}

/* --- common request checks (Orion's rest.cpp order) ----------------------- */

/* Content-Type before ';' (Orion cuts there and compares exactly). */
static void media_type(const char *ct, char *out, size_t outlen, int trim)
{
    size_t n = strcspn(ct, ";");

    if (trim) {
        while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) {
            n--;
        }
    }
    if (n >= outlen) {
        n = outlen - 1;
    }
    memcpy(out, ct, n);
    out[n] = '\0';
}

/* Accept: absent, or one media range we can produce. */
static int accept_ok(const struct req *r, int ld)
{
    const char *a = hdr(r, "Accept");

    if (a == NULL) {
        return 1;
    }
    while (*a != '\0') {
        char mt[64];
        size_t n = strcspn(a, ",");
        size_t i = 0;
        while (i < n && a[i] == ' ') {
            i++;
        }
        size_t m = strcspn(a + i, ";,");
        while (m > 0 && a[i + m - 1] == ' ') {
            m--;
        }
        if (m < sizeof mt) {
            memcpy(mt, a + i, m);
            mt[m] = '\0';
            if (strcmp(mt, "*/*") == 0 || strcmp(mt, "application/*") == 0 ||
                strcmp(mt, "application/json") == 0 ||
                (ld && strcmp(mt, "application/ld+json") == 0)) {
                return 1;
            }
        }
        a += n + (a[n] == ',');
    }
    return 0;
}

struct argchk {
    int bad;
};

static enum MHD_Result arg_forbidden(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value)
{
    struct argchk *c = cls;

    (void)kind;
    if (strcmp(key, "q") == 0 || strcmp(key, "mq") == 0 ||
        strcmp(key, "georel") == 0 || strcmp(key, "coords") == 0) {
        return MHD_YES;
    }
    if ((value != NULL && has_forbidden_chars(value)) ||
        has_forbidden_chars(key)) {
        c->bad = 1;
        return MHD_NO;
    }
    return MHD_YES;
}

/* urlCheck + URI parameter check: 0 or an Orion error in e. */
static int v2_uri_check(const struct req *r, struct ns_err *e)
{
    struct argchk c = {0};

    if (has_forbidden_chars(r->path)) {
        return BAD(e, "invalid character in URI");
    }
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, arg_forbidden,
                              &c);
    if (c.bad) {
        return BAD(e, "invalid character in URI parameter");
    }
    return 0;
}

/* Fiware-Service: ignored unless --multiservice ("" = default service). */
static int v2_tenant(const struct req *r, char *out, size_t outlen,
                     struct ns_err *e)
{
    const char *s = hdr(r, "Fiware-Service");

    out[0] = '\0';
    if (!g.multiservice || s == NULL) {
        return 0;
    }
    return v2_service(s, out, outlen, e);
}

/* The options URI parameter: a comma-separated list of allowed words.
 * Sets bit i of *set for allowed[i]. */
static int options_parse(const struct req *r, const char *const *allowed,
                         unsigned *set, struct ns_err *e)
{
    const char *o = arg(r, "options");

    *set = 0;
    if (o == NULL) {
        return 0;
    }
    while (*o != '\0') {
        size_t n = strcspn(o, ",");
        int found = 0;
        for (unsigned i = 0; allowed[i] != NULL; i++) {
            if (strlen(allowed[i]) == n && strncmp(o, allowed[i], n) == 0) {
                *set |= 1u << i;
                found = 1;
            }
        }
        if (!found) {
            return BAD(e, "Invalid value for URI param /options/");
        }
        o += n + (o[n] == ',');
    }
    return 0;
}

/* limit and offset (Orion's uriArgumentGet messages). */
static int page_args(const struct req *r, long *limit, long *offset,
                     struct ns_err *e)
{
    const char *l = arg(r, "limit");
    const char *o = arg(r, "offset");
    char *end;

    *limit = NS_PAGE_DEFAULT;
    *offset = 0;
    if (o != NULL) {
        errno = 0;
        *offset = strtol(o, &end, 10);
        if (*o == '\0' || *end != '\0' || errno != 0 || *offset < 0) {
            return BAD(e,
                       "Bad pagination offset: /%s/ [must be a decimal "
                       "number]",
                       o);
        }
    }
    if (l != NULL) {
        errno = 0;
        *limit = strtol(l, &end, 10);
        if (*l == '\0' || *end != '\0' || errno != 0 || *limit <= 0) {
            return BAD(e,
                       "Bad pagination limit: /%s/ [must be a positive "
                       "integer number]",
                       l);
        }
        if (*limit > NS_PAGE_MAX) {
            return BAD(e, "Bad pagination limit: /%s/ [max: %d]", l,
                       NS_PAGE_MAX);
        }
    }
    return 0;
}

/* True when name is one of the comma-separated items of list. */
static int csv_has(const char *list, const char *name)
{
    size_t nl = strlen(name);

    while (*list != '\0') {
        size_t n = strcspn(list, ",");
        if (n == nl && strncmp(list, name, n) == 0) {
            return 1;
        }
        list += n + (list[n] == ',');
    }
    return 0;
}

/* The checks Orion makes on every POST before its service routine. */
static int v2_write_preamble(struct req *r, struct spaths *sp, char *tenant,
                             size_t tlen, struct ns_err *e)
{
    const char *ct = hdr(r, "Content-Type");
    char mt[128];

    if (r->has_clen && r->clen > g.max_body) {
        return ns_fail(e, 413, "RequestEntityTooLarge",
                       "payload size: %llu, max size supported: %zu", r->clen,
                       g.max_body);
    }
    if (v2_uri_check(r, e) != 0 ||
        v2_service_paths(hdr(r, "Fiware-ServicePath"), 1, sp, e) != 0) {
        return -1;
    }
    if (r->has_clen && r->clen > 0) {
        if (ct == NULL) {
            return ns_fail(e, 415, "UnsupportedMediaType",
                           "Content-Type header not used, default "
                           "application/octet-stream is not supported");
        }
        media_type(ct, mt, sizeof mt, 0);
        if (strcmp(mt, "application/json") != 0) {
            return ns_fail(e, 415, "UnsupportedMediaType",
                           "not supported content type: %s", mt);
        }
    }
    if (!accept_ok(r, 0)) {
        return ns_fail(e, 406, "NotAcceptable",
                       "acceptable MIME types: application/json");
    }
    if (!r->has_clen || r->clen == 0) {
        return ns_fail(e, 411, "ContentLengthRequired",
                       "Zero/No Content-Length in PUT/POST/PATCH request");
    }
    return v2_tenant(r, tenant, tlen, e);
}

/* --- NGSI-v2: POST /v2/op/update ------------------------------------------ */

/* Appends to a bounded description buffer. */
static void desc_add(char *buf, size_t len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void desc_add(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;

    if (used + 1 >= len) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

struct outcome {
    size_t missing_entities;
    size_t succeeded; /* entities with at least something applied */
    int problems;
    char desc[NS_DESC_MAX];
};

/* Notes entity en's problem with the attribute names in names (a
 * ", "-joined list) or the entity itself (names NULL). */
static void note_problem(struct outcome *o, const struct ns_entity *en,
                         const char *names)
{
    o->problems = 1;
    desc_add(o->desc, sizeof o->desc, "%s%s/%s - [%s%s%s]",
             o->desc[0] != '\0' ? ", " : "", en->id, en->type,
             names != NULL ? " " : "", names != NULL ? names : "entity itself",
             names != NULL ? " " : "");
}

/* Applies one entity of a batch update; the request entity's fields may be
 * taken. Call with g.lock held. Returns 0, or -1 when out of memory. */
static int v2_apply_one(enum ns_action act, const char *service,
                        const char *path, struct ns_entity *en, int override,
                        struct outcome *o)
{
    struct ns_stored *x =
        store_find(&g.store, 0, service, path, en->id, en->type);
    char names[NS_DESC_MAX];
    size_t bad = 0;

    names[0] = '\0';
    if (x == NULL) {
        if (act == ACT_APPEND || act == ACT_APPEND_STRICT) {
            if (store_insert(&g.store, 0, service, path, en) == NULL) {
                return -1;
            }
            o->succeeded++;
            return 0;
        }
        o->missing_entities++;
        note_problem(o, en, NULL);
        return 0;
    }
    if (act == ACT_REPLACE) {
        ent_clear_attrs(x);
    }
    if (act == ACT_DELETE && en->nattrs == 0) {
        store_remove(&g.store, x);
        o->succeeded++;
        return 0;
    }
    size_t hint = 0;
    for (size_t i = 0; i < en->nattrs; i++) {
        struct ns_attr *a = &en->attrs[i];
        struct ns_attr *old = ent_attr(&x->e, a->name, &hint);
        int rc = 0;

        if (old == NULL && (act == ACT_UPDATE || act == ACT_DELETE)) {
            desc_add(names, sizeof names, "%s%s", bad ? ", " : "", a->name);
            bad++;
        } else if (old != NULL && act == ACT_APPEND_STRICT) {
            desc_add(names, sizeof names, "%s%s", bad ? ", " : "", a->name);
            bad++;
        } else if (act == ACT_DELETE) {
            ent_del_attr(x, old);
        } else if (old != NULL) {
            rc = attr_update(old, a, override);
        } else {
            rc = ent_add_attr(x, a);
        }
        if (rc != 0) {
            store_account(&g.store, x);
            return -1;
        }
    }
    store_account(&g.store, x);
    if (bad > 0) {
        note_problem(o, en, names);
    }
    if (bad < en->nattrs || en->nattrs == 0) {
        o->succeeded++;
    }
    return 0;
}

/* Applies a validated batch update (state checks first: capacity, the
 * one-location limit). Call with g.lock held. */
static int v2_apply(struct v2_update *u, const char *service, const char *path,
                    int override, struct ns_err *e)
{
    struct outcome o;
    size_t est = 0;

    memset(&o, 0, sizeof o);
    for (size_t i = 0; i < u->n; i++) {
        est += entity_bytes(&u->ents[i]) + str_bytes(service) + str_bytes(path);
    }
    if ((u->action == ACT_APPEND || u->action == ACT_APPEND_STRICT) &&
        g.store.count + u->n > g.max_entities) {
        g.st.store_full++;
        return ns_fail(e, 503, "NoResourcesAvailable",
                       "test server store full: %zu entities (--max-entities)",
                       g.store.count);
    }
    if (g.store.bytes + est > g.max_store_bytes) {
        g.st.store_full++;
        return ns_fail(e, 503, "NoResourcesAvailable",
                       "test server store full: %zu bytes (--max-store-mb)",
                       g.store.bytes);
    }
    if (u->action != ACT_DELETE) {
        for (size_t i = 0; i < u->n; i++) {
            struct ns_entity *en = &u->ents[i];
            struct ns_stored *x =
                store_find(&g.store, 0, service, path, en->id, en->type);
            if (geo_count_after(x, en, u->action == ACT_REPLACE) > 1) {
                return ns_fail(e, 413, "NoResourcesAvailable",
                               "You cannot use more than one geo location "
                               "attribute when creating an entity. Use "
                               "ignoreType metadata if you want to add "
                               "additional informative locations.");
            }
        }
    }
    for (size_t i = 0; i < u->n; i++) {
        g.st.entities_received++;
        if (v2_apply_one(u->action, service, path, &u->ents[i], override, &o) !=
            0) {
            return ns_fail(e, 500, "InternalServerError", "out of memory");
        }
    }
    if (!o.problems) {
        return 0;
    }
    if (u->action == ACT_APPEND_STRICT) {
        return ns_fail(e, 422, o.succeeded ? "PartialUpdate" : "Unprocessable",
                       "one or more of the attributes in the request already "
                       "exist: %s",
                       o.desc);
    }
    if (o.missing_entities == u->n) {
        return ns_fail(e, 404, "NotFound", "do not exist: %s", o.desc);
    }
    return ns_fail(e, 422, o.succeeded ? "PartialUpdate" : "Unprocessable",
                   "do not exist: %s", o.desc);
}

static const char *const update_options[] = {
    "keyValues", "overrideMetadata", "forcedUpdate", "flowControl", NULL,
};

static enum MHD_Result v2_op_update(struct req *r)
{
    struct ns_err e = {0};
    struct spaths sp;
    struct v2_update u = {0};
    char tenant[64];
    unsigned opts;
    yajl_val root;
    yajl_val ents;
    int rc;

    if (v2_write_preamble(r, &sp, tenant, sizeof tenant, &e) != 0 ||
        options_parse(r, update_options, &opts, &e) != 0) {
        return reply_err(r, &e);
    }
    root = json_parse_finite(r->body, r->len);
    if (root == NULL) {
        json_free(root);
        return reply_orion(r, 400, "ParseError",
                           "Errors found in incoming JSON buffer");
    }
    ents = obj_get(root, "entities");
    if (YAJL_IS_ARRAY(ents)) {
        r->entities = ents->u.array.len;
    }
    rc = v2_parse_update(root, (opts & 1u) != 0, &u, &e);
    json_free(root);
    if (rc != 0) {
        return reply_err(r, &e);
    }
    pthread_mutex_lock(&g.lock);
    rc = v2_apply(&u, tenant, sp.p[0], (opts & 2u) != 0, &e);
    pthread_mutex_unlock(&g.lock);
    v2_update_clear(&u);
    if (rc != 0) {
        return reply_err(r, &e);
    }
    return reply(r, 204, NULL, 0, NULL, NULL);
}

/* --- NGSI-v2: POST /v2/entities ------------------------------------------- */

static const char *const create_options[] = {
    "keyValues", "upsert", "forcedUpdate", "flowControl", NULL,
};

/* Orion's postEntities: one entity, the same rules as a batch entity. 201
 * with a Location when it is new; with ?options=upsert an existing entity
 * is updated as by "append" (204), without it the answer is 422 "Already
 * Exists". */
static enum MHD_Result v2_create_entity(struct req *r)
{
    struct ns_err e = {0};
    struct spaths sp;
    struct v2_update u = {0};
    char tenant[64];
    char loc[2 * NS_MAX_ID_LEN + 64];
    const char *hdrs[3] = {"Location", loc, NULL};
    unsigned opts;
    yajl_val root;
    int rc, existed;

    if (v2_write_preamble(r, &sp, tenant, sizeof tenant, &e) != 0 ||
        options_parse(r, create_options, &opts, &e) != 0) {
        return reply_err(r, &e);
    }
    root = json_parse_finite(r->body, r->len);
    if (root == NULL) {
        json_free(root);
        return reply_orion(r, 400, "ParseError",
                           "Errors found in incoming JSON buffer");
    }
    r->entities = 1;
    if ((u.ents = calloc(1, sizeof *u.ents)) == NULL) {
        json_free(root);
        return reply_orion(r, 500, "InternalServerError", "out of memory");
    }
    u.n = 1;
    u.action = ACT_APPEND;
    rc = v2_parse_entity(root, (opts & 1u) != 0, &u.ents[0], &e);
    json_free(root);
    if (rc != 0) {
        v2_update_clear(&u);
        return reply_err(r, &e);
    }
    snprintf(loc, sizeof loc, "/v2/entities/%s?type=%s", u.ents[0].id,
             u.ents[0].type);
    pthread_mutex_lock(&g.lock);
    existed = store_find(&g.store, 0, tenant, sp.p[0], u.ents[0].id,
                         u.ents[0].type) != NULL;
    if (existed && (opts & 2u) == 0) {
        rc = ns_fail(&e, 422, "Unprocessable", "Already Exists");
    } else {
        rc = v2_apply(&u, tenant, sp.p[0], 0, &e);
    }
    pthread_mutex_unlock(&g.lock);
    v2_update_clear(&u);
    if (rc != 0) {
        return reply_err(r, &e);
    }
    if (existed) {
        return reply(r, 204, NULL, 0, NULL, NULL);
    }
    return reply(r, 201, NULL, 0, hdrs, NULL);
}

/* --- NGSI-v2: GET /v2/entities, GET /v2/entities/{id} --------------------- */

static void gen_v2_entity(yajl_gen gen, const struct ns_entity *e,
                          int keyvalues, const char *attrs)
{
    yajl_gen_map_open(gen);
    gen_kv_str(gen, "id", e->id);
    gen_kv_str(gen, "type", e->type);
    for (size_t i = 0; i < e->nattrs; i++) {
        const struct ns_attr *a = &e->attrs[i];
        if (attrs != NULL && !csv_has(attrs, a->name) && !csv_has(attrs, "*")) {
            continue;
        }
        gen_str(gen, a->name);
        if (keyvalues) {
            gen_json(gen, a->value);
            continue;
        }
        yajl_gen_map_open(gen);
        gen_kv_str(gen, "type", a->type);
        gen_str(gen, "value");
        gen_json(gen, a->value);
        gen_str(gen, "metadata");
        yajl_gen_map_open(gen);
        for (size_t j = 0; j < a->nmd; j++) {
            gen_str(gen, a->md[j].name);
            yajl_gen_map_open(gen);
            gen_kv_str(gen, "type", a->md[j].type);
            gen_str(gen, "value");
            gen_json(gen, a->md[j].value);
            yajl_gen_map_close(gen);
        }
        yajl_gen_map_close(gen);
        yajl_gen_map_close(gen);
    }
    yajl_gen_map_close(gen);
}

struct v2_query {
    const char *service;
    struct spaths sp;
    const char *id, *type;
    int has_idp, has_typep;
    regex_t idp, typep;
};

static int v2_matches(const struct v2_query *q, const struct ns_stored *x)
{
    if (x->ld || strcmp(x->service, q->service) != 0 ||
        !spath_match(&q->sp, x->path)) {
        return 0;
    }
    if (q->id != NULL && !csv_has(q->id, x->e.id)) {
        return 0;
    }
    if (q->type != NULL && !csv_has(q->type, x->e.type)) {
        return 0;
    }
    if (q->has_idp && regexec(&q->idp, x->e.id, 0, NULL, 0) != 0) {
        return 0;
    }
    if (q->has_typep && regexec(&q->typep, x->e.type, 0, NULL, 0) != 0) {
        return 0;
    }
    return 1;
}

static void v2_query_free(struct v2_query *q)
{
    if (q->has_idp) {
        regfree(&q->idp);
    }
    if (q->has_typep) {
        regfree(&q->typep);
    }
}

/* Orion query features the test server does not implement: refused rather
 * than silently ignored. */
static const char *const unsupported_query[] = {
    "q", "mq", "georel", "geometry", "coords", "orderBy", "metadata", NULL,
};

/* The common part of both GETs: URI, service path (query form), tenant,
 * Accept, id/type/pattern parameters. */
static int v2_query_init(struct req *r, struct v2_query *q, char *tenant,
                         size_t tlen, struct ns_err *e)
{
    const char *idp = arg(r, "idPattern");
    const char *typep = arg(r, "typePattern");

    memset(q, 0, sizeof *q);
    if (v2_uri_check(r, e) != 0 ||
        v2_service_paths(hdr(r, "Fiware-ServicePath"), 0, &q->sp, e) != 0) {
        return -1;
    }
    if (!accept_ok(r, 0)) {
        return ns_fail(e, 406, "NotAcceptable",
                       "acceptable MIME types: application/json");
    }
    if (v2_tenant(r, tenant, tlen, e) != 0) {
        return -1;
    }
    for (size_t i = 0; unsupported_query[i] != NULL; i++) {
        if (arg(r, unsupported_query[i]) != NULL) {
            return BAD(e,
                       "URI parameter /%s/ is not supported by the test "
                       "server",
                       unsupported_query[i]);
        }
    }
    q->service = tenant;
    q->id = arg(r, "id");
    q->type = arg(r, "type");
    if (q->id != NULL && idp != NULL) {
        return BAD(e, "Incompatible parameters: id, IdPattern");
    }
    if (q->type != NULL && typep != NULL) {
        return BAD(e, "Incompatible parameters: type, typePattern");
    }
    if (idp != NULL) {
        if (regcomp(&q->idp, idp, REG_EXTENDED | REG_NOSUB) != 0) {
            return BAD(e, "Invalid regex for entity idPattern");
        }
        q->has_idp = 1;
    }
    if (typep != NULL) {
        if (regcomp(&q->typep, typep, REG_EXTENDED | REG_NOSUB) != 0) {
            return BAD(e, "Invalid regex for entity typePattern");
        }
        q->has_typep = 1;
    }
    return 0;
}

static const char *const get_options[] = {
    "count",
    "keyValues",
    "normalized",
    NULL,
};

static enum MHD_Result v2_get_entities(struct req *r)
{
    struct ns_err e = {0};
    struct v2_query q;
    char tenant[64];
    char total[32];
    const char *hdrs[3] = {NULL, NULL, NULL};
    unsigned opts = 0;
    long limit, offset, n = 0, out = 0;
    yajl_gen gen;

    if (v2_query_init(r, &q, tenant, sizeof tenant, &e) != 0 ||
        page_args(r, &limit, &offset, &e) != 0 ||
        options_parse(r, get_options, &opts, &e) != 0) {
        v2_query_free(&q);
        return reply_err(r, &e);
    }
    if ((gen = yajl_gen_alloc(NULL)) == NULL) {
        v2_query_free(&q);
        return reply(r, 500, NULL, 0, NULL, "out of memory");
    }
    yajl_gen_array_open(gen);
    pthread_mutex_lock(&g.lock);
    for (struct ns_stored *x = g.store.head; x != NULL; x = x->next) {
        if (!v2_matches(&q, x)) {
            continue;
        }
        if (n++ >= offset && out < limit) {
            gen_v2_entity(gen, &x->e, (opts & 2u) != 0, arg(r, "attrs"));
            out++;
        }
    }
    pthread_mutex_unlock(&g.lock);
    yajl_gen_array_close(gen);
    v2_query_free(&q);
    if (opts & 1u) {
        snprintf(total, sizeof total, "%ld", n);
        hdrs[0] = "Fiware-Total-Count";
        hdrs[1] = total;
    }
    return reply_gen(r, 200, gen, hdrs);
}

static enum MHD_Result v2_get_entity(struct req *r, const char *id)
{
    struct ns_err e = {0};
    struct v2_query q;
    char tenant[64];
    unsigned opts = 0;
    size_t found = 0;
    yajl_gen gen;

    if (v2_query_init(r, &q, tenant, sizeof tenant, &e) != 0 ||
        options_parse(r, get_options, &opts, &e) != 0) {
        v2_query_free(&q);
        return reply_err(r, &e);
    }
    q.id = NULL;
    if ((gen = yajl_gen_alloc(NULL)) == NULL) {
        v2_query_free(&q);
        return reply(r, 500, NULL, 0, NULL, "out of memory");
    }
    pthread_mutex_lock(&g.lock);
    for (struct ns_stored *x = g.store.head; x != NULL; x = x->next) {
        if (strcmp(x->e.id, id) == 0 && v2_matches(&q, x)) {
            if (found++ == 0) {
                gen_v2_entity(gen, &x->e, (opts & 2u) != 0, arg(r, "attrs"));
            }
        }
    }
    pthread_mutex_unlock(&g.lock);
    v2_query_free(&q);
    if (found == 1) {
        return reply_gen(r, 200, gen, NULL);
    }
    yajl_gen_free(gen);
    if (found == 0) {
        return reply_orion(r, 404, "NotFound",
                           "The requested entity has not been found. Check "
                           "type and id");
    }
    return reply_orion(r, 409, "TooManyResults",
                       "More than one matching entity. Please refine your "
                       "query");
}

static enum MHD_Result v2_version(struct req *r)
{
    yajl_gen gen;

    if (!accept_ok(r, 0)) {
        return reply_orion(r, 406, "NotAcceptable",
                           "acceptable MIME types: application/json");
    }
    if ((gen = yajl_gen_alloc(NULL)) == NULL) {
        return reply(r, 500, NULL, 0, NULL, "out of memory");
    }
    yajl_gen_map_open(gen);
    gen_str(gen, "orion");
    yajl_gen_map_open(gen);
    gen_kv_str(gen, "version", NS_VERSION);
    gen_kv_str(gen, "uptime", "0 d, 0 h, 0 m, 0 s");
    gen_kv_str(gen, "git_hash", "nogitversion");
    gen_kv_str(gen, "compile_time", __DATE__ " " __TIME__);
    gen_kv_str(gen, "compiled_by", "spotagent");
    gen_kv_str(gen, "compiled_in", "tests/servers/ngsi_server.c");
    gen_kv_str(gen, "release_date", "test server");
    gen_kv_str(gen, "machine", "x86_64");
    gen_kv_str(gen, "doc", "https://fiware-orion.rtfd.io/en/3.10.1/");
    yajl_gen_map_close(gen);
    yajl_gen_map_close(gen);
    return reply_gen(r, 200, gen, NULL);
}

/* --- NGSI-LD
 * ------------------------------------------------------------------ */

/* NGSILD-Tenant: 1..50 of [A-Za-z0-9_-] ("" = default tenant). */
static int ld_tenant(const struct req *r, char *out, size_t outlen)
{
    const char *t = hdr(r, "NGSILD-Tenant");
    size_t n;

    out[0] = '\0';
    if (t == NULL) {
        return 0;
    }
    n = strlen(t);
    if (n == 0 || n > 50 || n >= outlen) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '-') {
            return -1;
        }
    }
    memcpy(out, t, n + 1);
    return 0;
}

/* Link: <URI>; rel="http://www.w3.org/ns/json-ld#context"[; type="..."] */
static int ld_link_ok(const char *link)
{
    const char *p = link;
    const char *end;
    char uri[NS_MAX_URI_LEN + 1];
    int rel = 0;

    while (*p == ' ') {
        p++;
    }
    if (*p++ != '<' || (end = strchr(p, '>')) == NULL ||
        (size_t)(end - p) > NS_MAX_URI_LEN) {
        return 0;
    }
    memcpy(uri, p, (size_t)(end - p));
    uri[end - p] = '\0';
    if (!ld_uri_ok(uri) ||
        (strncmp(uri, "http://", 7) != 0 && strncmp(uri, "https://", 8) != 0)) {
        return 0;
    }
    for (p = end + 1; *p != '\0';) {
        while (*p == ' ' || *p == ';') {
            p++;
        }
        if (strncmp(p, "rel=\"" LD_CTX_REL "\"",
                    sizeof("rel=\"" LD_CTX_REL "\"") - 1) == 0) {
            rel = 1;
        }
        p += strcspn(p, ";");
    }
    return rel;
}

static void gen_ld_entity(yajl_gen gen, const struct ns_entity *e)
{
    yajl_gen_map_open(gen);
    gen_kv_str(gen, "id", e->id);
    gen_str(gen, "type");
    gen_json(gen, e->type_json);
    for (size_t i = 0; i < e->nattrs; i++) {
        gen_str(gen, e->attrs[i].name);
        gen_json(gen, e->attrs[i].value);
    }
    yajl_gen_map_close(gen);
}

/* Applies one valid upsert entity (taken); 1 created, 0 updated, -1 out of
 * memory. Call with g.lock held. */
static int ld_apply_one(const char *tenant, struct ns_entity *en, int update)
{
    struct ns_stored *x = store_find(&g.store, 1, tenant, "", en->id, NULL);

    if (x == NULL) {
        return store_insert(&g.store, 1, tenant, "", en) != NULL ? 1 : -1;
    }
    if (!update) {
        ent_clear_attrs(x);
    }
    free(x->e.type);
    free(x->e.type_json);
    free(x->e.types);
    x->e.type = en->type;
    x->e.type_json = en->type_json;
    x->e.types = en->types;
    en->type = en->type_json = en->types = NULL;
    size_t hint = 0;
    for (size_t i = 0; i < en->nattrs; i++) {
        struct ns_attr *a = &en->attrs[i];
        struct ns_attr *old = ent_attr(&x->e, a->name, &hint);
        if (old != NULL) {
            free(old->value);
            old->value = a->value;
            a->value = NULL;
        } else if (ent_add_attr(x, a) != 0) {
            store_account(&g.store, x);
            return -1;
        }
    }
    store_account(&g.store, x);
    return 0;
}

static int id_listed(char **ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ids[i], id) == 0) {
            return 1;
        }
    }
    return 0;
}

struct ld_error {
    const char *id;
    struct ns_err e;
};

static enum MHD_Result ld_upsert(struct req *r)
{
    const char *ct = hdr(r, "Content-Type");
    const char *link = hdr(r, "Link");
    const char *opt = arg(r, "options");
    char mt[128], tenant[64];
    int ldjson, update = 0, rc = 0;
    yajl_val root;
    size_t n, ncreated = 0, nupdated = 0, nerr = 0;
    struct ns_entity *ents = NULL;
    struct ld_error *errs = NULL;
    char **created = NULL, **updated = NULL;
    int *valid = NULL;
    enum MHD_Result ret;
    yajl_gen gen;
    const char *hdrs[3] = {NULL, NULL, NULL};
    int status;

    if (r->has_clen && r->clen > g.max_body) {
        char d[128];
        snprintf(d, sizeof d, "payload size: %llu, max size supported: %zu",
                 r->clen, g.max_body);
        return reply_ld(r, 413, "BadRequestData", "Payload too large", d);
    }
    if (ld_tenant(r, tenant, sizeof tenant) != 0) {
        return reply_ld(r, 400, "BadRequestData", "Invalid tenant",
                        "NGSILD-Tenant must be 1..50 of [A-Za-z0-9_-]");
    }
    if (ct == NULL) {
        return reply_ld(r, 415, "InvalidRequest", "Unsupported Media Type",
                        "Content-Type header missing");
    }
    media_type(ct, mt, sizeof mt, 1);
    if (strcmp(mt, "application/json") == 0) {
        ldjson = 0;
        if (link == NULL) {
            return reply_ld(r, 400, "BadRequestData", "Link header missing",
                            "Content-Type is application/json: the @context "
                            "must come in a Link header");
        }
        if (!ld_link_ok(link)) {
            return reply_ld(r, 400, "BadRequestData", "Invalid Link header",
                            "expected <URI>; "
                            "rel=\"" LD_CTX_REL "\"");
        }
    } else if (strcmp(mt, "application/ld+json") == 0) {
        ldjson = 1;
        if (link != NULL) {
            return reply_ld(r, 400, "BadRequestData",
                            "@context in Link header and payload",
                            "Content-Type is application/ld+json: the "
                            "@context must come in the payload, not in a "
                            "Link header");
        }
    } else {
        return reply_ld(r, 415, "InvalidRequest", "Unsupported Media Type", mt);
    }
    if (!accept_ok(r, 1)) {
        return reply_ld(r, 406, "InvalidRequest", "Not Acceptable",
                        "acceptable MIME types: application/json, "
                        "application/ld+json");
    }
    if (!r->has_clen || r->clen == 0) {
        return reply_ld(r, 411, "InvalidRequest", "Content-Length required",
                        "Zero/No Content-Length in POST request");
    }
    if (opt != NULL) {
        if (strcmp(opt, "update") == 0) {
            update = 1;
        } else if (strcmp(opt, "replace") != 0) {
            return reply_ld(r, 400, "BadRequestData", "URI Param Error",
                            "options: only /update/ or /replace/");
        }
    }
    root = json_parse_finite(r->body, r->len);
    if (root == NULL) {
        json_free(root);
        return reply_ld(r, 400, "InvalidRequest", "JSON Parse Error",
                        "the payload is not valid JSON");
    }
    if (!YAJL_IS_ARRAY(root) || root->u.array.len == 0) {
        json_free(root);
        return reply_ld(r, 400, "BadRequestData", "Invalid payload",
                        "payload body must be a non-empty JSON Array");
    }
    n = root->u.array.len;
    r->entities = n;
    if (!ldjson) {
        for (size_t i = 0; i < n; i++) {
            if (obj_get(root->u.array.values[i], "@context") != NULL) {
                json_free(root);
                return reply_ld(r, 400, "BadRequestData",
                                "@context in Link header and payload",
                                "Content-Type is application/json and the "
                                "payload carries an @context");
            }
        }
    }
    ents = calloc(n, sizeof *ents);
    errs = calloc(n, sizeof *errs);
    valid = calloc(n, sizeof *valid);
    created = calloc(n, sizeof *created);
    updated = calloc(n, sizeof *updated);
    if (ents == NULL || errs == NULL || valid == NULL || created == NULL ||
        updated == NULL) {
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        yajl_val v = root->u.array.values[i];
        struct ns_err e = {0};
        if (ld_parse_entity(v, ldjson, &ents[i], &e) == 0) {
            valid[i] = 1;
            continue;
        }
        if (e.status == 500) {
            rc = -1;
            goto out;
        }
        entity_clear(&ents[i]);
        errs[nerr].id = ld_entity_id(v);
        errs[nerr++].e = e;
    }
    pthread_mutex_lock(&g.lock);
    {
        size_t est = 0;
        for (size_t i = 0; i < n; i++) {
            est += valid[i] ? entity_bytes(&ents[i]) : 0;
        }
        if (g.store.count + n > g.max_entities ||
            g.store.bytes + est > g.max_store_bytes) {
            g.st.store_full++;
            rc = -2;
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        int k;
        if (!valid[i]) {
            continue;
        }
        g.st.entities_received++;
        if (id_listed(created, ncreated, ents[i].id) ||
            id_listed(updated, nupdated, ents[i].id)) {
            k = ld_apply_one(tenant, &ents[i], update) < 0 ? -1 : 2;
        } else {
            char *id = strdup(ents[i].id);
            k = id != NULL ? ld_apply_one(tenant, &ents[i], update) : -1;
            if (k == 1) {
                created[ncreated++] = id;
            } else if (k == 0) {
                updated[nupdated++] = id;
            } else {
                free(id);
            }
        }
        if (k < 0) {
            rc = -1;
        }
    }
    pthread_mutex_unlock(&g.lock);
out:
    if (rc == -1) {
        ret = reply_ld(r, 500, "InternalError", "Out of memory", NULL);
    } else if (rc == -2) {
        ret = reply_ld(r, 503, "InternalError", "Test server store full",
                       "--max-entities or --max-store-mb reached");
    } else if (nerr == 0 && ncreated == 0) {
        ret = reply(r, 204, NULL, 0, NULL, NULL);
    } else if ((gen = yajl_gen_alloc(NULL)) == NULL) {
        ret = reply(r, 500, NULL, 0, NULL, "out of memory");
    } else {
        if (nerr == 0) {
            status = 201;
            yajl_gen_array_open(gen);
            for (size_t i = 0; i < ncreated; i++) {
                gen_str(gen, created[i]);
            }
            yajl_gen_array_close(gen);
        } else {
            status = 207;
            yajl_gen_map_open(gen);
            gen_str(gen, "success");
            yajl_gen_array_open(gen);
            for (size_t i = 0; i < ncreated; i++) {
                gen_str(gen, created[i]);
            }
            for (size_t i = 0; i < nupdated; i++) {
                gen_str(gen, updated[i]);
            }
            yajl_gen_array_close(gen);
            gen_str(gen, "errors");
            yajl_gen_array_open(gen);
            for (size_t i = 0; i < nerr; i++) {
                char t[128];
                snprintf(t, sizeof t, "%s%s", LD_ERR_BASE, errs[i].e.error);
                yajl_gen_map_open(gen);
                gen_str(gen, "entityId");
                gen_str_safe(gen, errs[i].id);
                gen_str(gen, "error");
                yajl_gen_map_open(gen);
                gen_kv_str(gen, "type", t);
                gen_kv_str(gen, "title", errs[i].e.title);
                gen_str(gen, "detail");
                gen_str_safe(gen, errs[i].e.desc);
                gen_kv_int(gen, "status", errs[i].e.status);
                yajl_gen_map_close(gen);
                yajl_gen_map_close(gen);
            }
            yajl_gen_array_close(gen);
            yajl_gen_map_close(gen);
        }
        if (tenant[0] != '\0') {
            hdrs[0] = "NGSILD-Tenant";
            hdrs[1] = tenant;
        }
        ret = reply_gen(r, status, gen, hdrs);
    }
    for (size_t i = 0; ents != NULL && i < n; i++) {
        entity_clear(&ents[i]);
    }
    for (size_t i = 0; i < ncreated; i++) {
        free(created[i]);
    }
    for (size_t i = 0; i < nupdated; i++) {
        free(updated[i]);
    }
    free(ents);
    free(errs);
    free(valid);
    free(created);
    free(updated);
    json_free(root);
    return ret;
}

static int ld_matches(const struct ns_stored *x, const char *tenant,
                      const char *types, const char *ids, regex_t *idp)
{
    if (!x->ld || strcmp(x->service, tenant) != 0) {
        return 0;
    }
    if (ids != NULL && !csv_has(ids, x->e.id)) {
        return 0;
    }
    if (idp != NULL && regexec(idp, x->e.id, 0, NULL, 0) != 0) {
        return 0;
    }
    if (types != NULL) {
        const char *t = x->e.types;
        int hit = 0;
        while (*t != '\0') {
            size_t len = strcspn(t, "\n");
            char one[NS_MAX_ID_LEN + 1];
            if (len <= NS_MAX_ID_LEN) {
                memcpy(one, t, len);
                one[len] = '\0';
                hit |= csv_has(types, one);
            }
            t += len + (t[len] == '\n');
        }
        return hit;
    }
    return 1;
}

static enum MHD_Result ld_get(struct req *r, const char *id)
{
    const char *types = arg(r, "type");
    const char *ids = arg(r, "id");
    const char *idp_s = arg(r, "idPattern");
    const char *opt = arg(r, "options");
    char tenant[64], total[32];
    const char *hdrs[3] = {NULL, NULL, NULL};
    struct ns_err e = {0};
    regex_t idp;
    long limit, offset, n = 0, out = 0;
    yajl_gen gen;
    int has_idp = 0;

    if (ld_tenant(r, tenant, sizeof tenant) != 0) {
        return reply_ld(r, 400, "BadRequestData", "Invalid tenant",
                        "NGSILD-Tenant must be 1..50 of [A-Za-z0-9_-]");
    }
    if (!accept_ok(r, 1)) {
        return reply_ld(r, 406, "InvalidRequest", "Not Acceptable",
                        "acceptable MIME types: application/json, "
                        "application/ld+json");
    }
    if (id == NULL && types == NULL && ids == NULL && idp_s == NULL) {
        return reply_ld(r, 400, "BadRequestData", "Too broad query",
                        "need at least one of type, id, idPattern");
    }
    if (page_args(r, &limit, &offset, &e) != 0) {
        return reply_ld(r, 400, "BadRequestData", "Invalid pagination", e.desc);
    }
    if (idp_s != NULL) {
        if (regcomp(&idp, idp_s, REG_EXTENDED | REG_NOSUB) != 0) {
            return reply_ld(r, 400, "BadRequestData", "Invalid idPattern",
                            idp_s);
        }
        has_idp = 1;
    }
    if ((gen = yajl_gen_alloc(NULL)) == NULL) {
        if (has_idp) {
            regfree(&idp);
        }
        return reply(r, 500, NULL, 0, NULL, "out of memory");
    }
    if (id == NULL) {
        yajl_gen_array_open(gen);
    }
    pthread_mutex_lock(&g.lock);
    if (id != NULL) {
        struct ns_stored *x = store_find(&g.store, 1, tenant, "", id, NULL);
        if (x != NULL) {
            gen_ld_entity(gen, &x->e);
            n = 1;
        }
    } else {
        for (struct ns_stored *x = g.store.head; x != NULL; x = x->next) {
            if (!ld_matches(x, tenant, types, ids, has_idp ? &idp : NULL)) {
                continue;
            }
            if (n++ >= offset && out < limit) {
                gen_ld_entity(gen, &x->e);
                out++;
            }
        }
    }
    pthread_mutex_unlock(&g.lock);
    if (has_idp) {
        regfree(&idp);
    }
    if (id != NULL) {
        if (n == 0) {
            yajl_gen_free(gen);
            return reply_ld(r, 404, "ResourceNotFound", "Entity Not Found", id);
        }
        return reply_gen(r, 200, gen, NULL);
    }
    yajl_gen_array_close(gen);
    if (opt != NULL && csv_has(opt, "count")) {
        snprintf(total, sizeof total, "%ld", n);
        hdrs[0] = "NGSILD-Results-Count";
        hdrs[1] = total;
    }
    return reply_gen(r, 200, gen, hdrs);
}

/* --- test control: /__faults, /__stats, /__entities, /__requests ---------- */

static void gen_faults(yajl_gen gen)
{
    yajl_gen_map_open(gen);
    gen_kv_int(gen, "fail_next", g.f.fail_next);
    gen_kv_int(gen, "status", g.f.fail_status);
    gen_kv_int(gen, "close_next", g.f.close_next);
    gen_kv_int(gen, "delay_ms", g.f.delay_ms);
    gen_kv_str(gen, "match", g.f.all ? "all" : "writes");
    gen_str(gen, "refusing");
    yajl_gen_bool(gen, g.refusing);
    yajl_gen_map_close(gen);
}

/* Asks the listener to stop listening for ms and to drop every connection
 * but this one; returns once the listen socket is closed. */
static void refuse_now(struct req *r, long ms)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    ssize_t w;

    pthread_mutex_lock(&g.lock);
    if (g.refusing) {
        pthread_mutex_unlock(&g.lock);
        return;
    }
    g.refuse_ms = ms;
    g.refuse_keep = ci != NULL ? ci->connect_fd : -1;
    g.refuse_ack = 0;
    pthread_mutex_unlock(&g.lock);
    w = write(g.wake[1], "r", 1);
    (void)w;
    pthread_mutex_lock(&g.lock);
    while (!g.refuse_ack && !g.stopping) {
        pthread_cond_wait(&g.cv, &g.lock);
    }
    pthread_mutex_unlock(&g.lock);
}

static int fault_long(yajl_val v, long min, long max, long *out)
{
    if (!YAJL_IS_INTEGER(v) || v->u.number.i < min || v->u.number.i > max) {
        return -1;
    }
    *out = (long)v->u.number.i;
    return 0;
}

static enum MHD_Result ctl_faults(struct req *r)
{
    static const char *const hdrs_close[] = {"Connection", "close", NULL};
    struct faults f;
    long refuse = 0, status = 0;
    yajl_val root;
    yajl_gen gen;

    if (strcmp(r->method, "GET") == 0) {
        if ((gen = yajl_gen_alloc(NULL)) == NULL) {
            return reply(r, 500, NULL, 0, NULL, NULL);
        }
        pthread_mutex_lock(&g.lock);
        gen_faults(gen);
        pthread_mutex_unlock(&g.lock);
        return reply_gen(r, 200, gen, NULL);
    }
    if (strcmp(r->method, "POST") != 0) {
        return method_not_allowed(r, "GET, POST");
    }
    root = json_parse(r->body != NULL ? r->body : "", r->len);
    if (!YAJL_IS_OBJECT(root)) {
        json_free(root);
        return reply_orion(r, 400, "ParseError", "a JSON object is expected");
    }
    pthread_mutex_lock(&g.lock);
    f = g.f;
    pthread_mutex_unlock(&g.lock);
    for (size_t i = 0; i < root->u.object.len; i++) {
        const char *k = root->u.object.keys[i];
        yajl_val v = root->u.object.values[i];
        int bad = 0;
        if (strcmp(k, "fail_next") == 0) {
            bad = fault_long(v, 0, 1000000000L, &f.fail_next);
        } else if (strcmp(k, "status") == 0) {
            bad = fault_long(v, 100, 599, &status);
            f.fail_status = (int)status;
        } else if (strcmp(k, "close_next") == 0) {
            bad = fault_long(v, 0, 1000000000L, &f.close_next);
        } else if (strcmp(k, "delay_ms") == 0) {
            bad = fault_long(v, 0, NS_MAX_FAULT_MS, &f.delay_ms);
        } else if (strcmp(k, "refuse_for_ms") == 0) {
            bad = fault_long(v, 0, NS_MAX_FAULT_MS, &refuse);
        } else if (strcmp(k, "match") == 0 && YAJL_IS_STRING(v) &&
                   (strcmp(v->u.string, "all") == 0 ||
                    strcmp(v->u.string, "writes") == 0)) {
            f.all = strcmp(v->u.string, "all") == 0;
        } else if (strcmp(k, "reset") == 0 && YAJL_IS_TRUE(v)) {
            f.fail_next = f.close_next = f.delay_ms = 0;
            f.fail_status = 503;
            f.all = 0;
        } else {
            bad = 1;
        }
        if (bad) {
            char d[160];
            snprintf(d, sizeof d, "bad fault field /%.60s/", k);
            json_free(root);
            return reply_orion(r, 400, "BadRequest", d);
        }
    }
    json_free(root);
    pthread_mutex_lock(&g.lock);
    g.f = f;
    pthread_cond_broadcast(&g.cv); /* a shorter delay takes effect */
    pthread_mutex_unlock(&g.lock);
    log_line("faults: fail_next=%ld status=%d close_next=%ld delay_ms=%ld "
             "match=%s refuse_for_ms=%ld",
             f.fail_next, f.fail_status, f.close_next, f.delay_ms,
             f.all ? "all" : "writes", refuse);
    if (refuse > 0) {
        refuse_now(r, refuse);
    }
    if ((gen = yajl_gen_alloc(NULL)) == NULL) {
        return reply(r, 500, NULL, 0, NULL, NULL);
    }
    pthread_mutex_lock(&g.lock);
    gen_faults(gen);
    pthread_mutex_unlock(&g.lock);
    return reply_gen(r, 200, gen, refuse > 0 ? hdrs_close : NULL);
}

static enum MHD_Result ctl_stats(struct req *r)
{
    yajl_gen gen;
    char code[16];

    if (strcmp(r->method, "DELETE") == 0) {
        pthread_mutex_lock(&g.lock);
        memset(&g.st, 0, sizeof g.st);
        ring_clear();
        pthread_mutex_unlock(&g.lock);
        return reply(r, 204, NULL, 0, NULL, NULL);
    }
    if (strcmp(r->method, "GET") != 0) {
        return method_not_allowed(r, "GET, DELETE");
    }
    if ((gen = yajl_gen_alloc(NULL)) == NULL) {
        return reply(r, 500, NULL, 0, NULL, NULL);
    }
    pthread_mutex_lock(&g.lock);
    yajl_gen_map_open(gen);
    gen_kv_int(gen, "requests", (long long)g.st.requests);
    gen_kv_int(gen, "updates", (long long)g.st.updates);
    gen_kv_int(gen, "entities", (long long)g.store.count);
    gen_kv_int(gen, "rejected", (long long)g.st.rejected);
    gen_str(gen, "by_status");
    yajl_gen_map_open(gen);
    for (int i = 0; i < 600; i++) {
        if (g.st.by_status[i] > 0) {
            snprintf(code, sizeof code, "%d", i);
            gen_kv_int(gen, code, (long long)g.st.by_status[i]);
        }
    }
    yajl_gen_map_close(gen);
    gen_kv_int(gen, "max_entities_per_request",
               (long long)g.st.max_entities_per_request);
    gen_kv_int(gen, "entities_received", (long long)g.st.entities_received);
    gen_kv_int(gen, "injected_failures", (long long)g.st.injected_failures);
    gen_kv_int(gen, "injected_closes", (long long)g.st.injected_closes);
    gen_kv_int(gen, "refusals", (long long)g.st.refusals);
    gen_kv_int(gen, "store_full", (long long)g.st.store_full);
    gen_kv_int(gen, "store_bytes", (long long)g.store.bytes);
    yajl_gen_map_close(gen);
    pthread_mutex_unlock(&g.lock);
    return reply_gen(r, 200, gen, NULL);
}

static enum MHD_Result ctl_entities(struct req *r)
{
    yajl_gen gen;
    size_t n;

    if (strcmp(r->method, "DELETE") != 0) {
        return method_not_allowed(r, "DELETE");
    }
    if ((gen = yajl_gen_alloc(NULL)) == NULL) {
        return reply(r, 500, NULL, 0, NULL, NULL);
    }
    pthread_mutex_lock(&g.lock);
    n = g.store.count;
    store_clear(&g.store);
    pthread_mutex_unlock(&g.lock);
    yajl_gen_map_open(gen);
    gen_kv_int(gen, "deleted", (long long)n);
    yajl_gen_map_close(gen);
    return reply_gen(r, 200, gen, NULL);
}

static enum MHD_Result ctl_requests(struct req *r)
{
    const char *last = arg(r, "last");
    const char *prefix = arg(r, "path");
    long want = 10;
    char tbuf[40];
    yajl_gen gen;
    size_t first;

    if (strcmp(r->method, "DELETE") == 0) {
        pthread_mutex_lock(&g.lock);
        ring_clear();
        pthread_mutex_unlock(&g.lock);
        return reply(r, 204, NULL, 0, NULL, NULL);
    }
    if (strcmp(r->method, "GET") != 0) {
        return method_not_allowed(r, "GET, DELETE");
    }
    if (last != NULL) {
        char *end;
        want = strtol(last, &end, 10);
        if (*last == '\0' || *end != '\0' || want < 1) {
            return reply_orion(r, 400, "BadRequest", "last must be >= 1");
        }
    }
    if ((gen = yajl_gen_alloc(NULL)) == NULL) {
        return reply(r, 500, NULL, 0, NULL, NULL);
    }
    yajl_gen_map_open(gen);
    gen_str(gen, "requests");
    yajl_gen_array_open(gen);
    pthread_mutex_lock(&g.lock);
    {
        /* the last `want` records (matching the path prefix), oldest first */
        size_t idx[NS_RING_SIZE];
        size_t k = 0;
        for (size_t i = 0; i < g.ring_n && (long)k < want; i++) {
            size_t at = (g.ring_head + NS_RING_SIZE - 1 - i) % NS_RING_SIZE;
            if (prefix == NULL ||
                strncmp(g.ring[at].path, prefix, strlen(prefix)) == 0) {
                idx[k++] = at;
            }
        }
        for (first = k; first > 0; first--) {
            const struct rec *x = &g.ring[idx[first - 1]];
            iso8601_format(x->t_ms, tbuf, sizeof tbuf);
            yajl_gen_map_open(gen);
            gen_kv_int(gen, "seq", (long long)x->seq);
            gen_kv_str(gen, "time", tbuf);
            gen_kv_str(gen, "method", x->method ? x->method : "");
            gen_str(gen, "path");
            gen_str_safe(gen, x->path ? x->path : "");
            gen_str(gen, "args");
            gen_json(gen, x->args);
            gen_str(gen, "headers");
            gen_json(gen, x->headers);
            gen_kv_str(gen, "body", x->body ? x->body : "");
            gen_kv_int(gen, "body_bytes", (long long)x->body_len);
            gen_str(gen, "body_truncated");
            yajl_gen_bool(gen, x->truncated);
            gen_kv_int(gen, "status", x->status);
            yajl_gen_map_close(gen);
        }
    }
    pthread_mutex_unlock(&g.lock);
    yajl_gen_array_close(gen);
    yajl_gen_map_close(gen);
    return reply_gen(r, 200, gen, NULL);
}

static enum MHD_Result control(struct req *r)
{
    if (strcmp(r->path, "/__faults") == 0) {
        return ctl_faults(r);
    }
    if (strcmp(r->path, "/__stats") == 0) {
        return ctl_stats(r);
    }
    if (strcmp(r->path, "/__entities") == 0) {
        return ctl_entities(r);
    }
    if (strcmp(r->path, "/__requests") == 0) {
        return ctl_requests(r);
    }
    return reply_orion(r, 404, "NotFound", "unknown test-control resource");
}

/* --- dispatch
 * ------------------------------------------------------------------ */

/* Answers the fail_next fault: Orion's (or an NGSI-LD) error body. */
static enum MHD_Result injected_failure(struct req *r, int status)
{
    static const struct {
        int status;
        const char *error;
    } names[] = {
        {400, "BadRequest"},
        {404, "NotFound"},
        {411, "ContentLengthRequired"},
        {413, "RequestEntityTooLarge"},
        {415, "UnsupportedMediaType"},
        {422, "Unprocessable"},
        {429, "TooManyRequests"},
        {500, "InternalServerError"},
        {502, "BadGateway"},
        {503, "ServiceUnavailable"},
        {504, "GatewayTimeout"},
    };
    const char *error = "InjectedFault";

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (names[i].status == status) {
            error = names[i].error;
        }
    }
    if (r->kind == K_LD) {
        return reply_ld(r, status,
                        status >= 500 ? "InternalError" : "BadRequestData",
                        error, "injected fault (ngsi_server /__faults)");
    }
    return reply_orion(r, status, error,
                       "injected fault (ngsi_server /__faults)");
}

static enum MHD_Result route(struct req *r)
{
    const char *p = r->path;
    const char *m = r->method;
    int get = strcmp(m, "GET") == 0;
    int post = strcmp(m, "POST") == 0;

    /* rest.cpp: "Check Content-Type and Content-Length for GET/DELETE" */
    if (r->kind == K_V2 && (get || strcmp(m, "DELETE") == 0) &&
        hdr(r, "Content-Type") != NULL && (!r->has_clen || r->clen == 0)) {
        return reply_orion(r, 400, "BadRequest",
                           "Orion accepts no payload for GET/DELETE requests. "
                           "HTTP header Content-Type is thus forbidden");
    }

    if (strcmp(p, "/version") == 0) {
        return get ? v2_version(r) : method_not_allowed(r, "GET");
    }
    if (strcmp(p, "/v2/op/update") == 0) {
        return post ? v2_op_update(r) : method_not_allowed(r, "POST");
    }
    if (strcmp(p, "/v2/entities") == 0) {
        if (get) {
            return v2_get_entities(r);
        }
        return post ? v2_create_entity(r) : method_not_allowed(r, "GET, POST");
    }
    if (strncmp(p, "/v2/entities/", 13) == 0 && p[13] != '\0' &&
        strchr(p + 13, '/') == NULL) {
        if (get) {
            return v2_get_entity(r, p + 13);
        }
        return reply_orion(r, 501, "NotImplemented",
                           "not implemented by the test server");
    }
    if (strcmp(p, "/ngsi-ld/v1/entityOperations/upsert") == 0) {
        return post ? ld_upsert(r) : method_not_allowed(r, "POST");
    }
    if (strcmp(p, "/ngsi-ld/v1/entities") == 0) {
        return get ? ld_get(r, NULL) : method_not_allowed(r, "GET");
    }
    if (strncmp(p, "/ngsi-ld/v1/entities/", 21) == 0 && p[21] != '\0') {
        return get ? ld_get(r, p + 21) : method_not_allowed(r, "GET");
    }
    if (r->kind == K_LD) {
        return reply_ld(r, 400, "BadRequestData", "Service not found", p);
    }
    return reply_orion(r, 400, "BadRequest",
                       "Service not found. Check your URL as probably it is "
                       "wrong.");
}

/* The request is complete: control, faults, then the NGSI routes. */
static enum MHD_Result dispatch(struct req *r)
{
    int fail = 0, close_it = 0, status = 0;

    if (r->kind == K_CONTROL) {
        return control(r);
    }
    pthread_mutex_lock(&g.lock);
    if (r->write || g.f.all) {
        if (g.f.close_next > 0) {
            g.f.close_next--;
            g.st.injected_closes++;
            close_it = 1;
        } else if (g.f.fail_next > 0) {
            g.f.fail_next--;
            g.st.injected_failures++;
            fail = 1;
            status = g.f.fail_status;
        }
    }
    pthread_mutex_unlock(&g.lock);
    if (close_it) {
        account(r, 0, "closed (injected)");
        r->answered = 1;
        return MHD_NO; /* libmicrohttpd closes the connection */
    }
    if (fail) {
        return injected_failure(r, status);
    }
    return route(r);
}

static struct req *req_new(struct MHD_Connection *c, const char *url,
                           const char *method)
{
    struct req *r = calloc(1, sizeof *r);
    const char *cl;
    size_t plen;

    if (r == NULL) {
        return NULL;
    }
    r->conn = c;
    snprintf(r->method, sizeof r->method, "%s", method);
    r->path = strdup(url);
    if (r->path == NULL) {
        free(r);
        return NULL;
    }
    plen = strlen(r->path);
    if (plen > 1 && r->path[plen - 1] == '/') { /* urlCheck drops one */
        r->path[plen - 1] = '\0';
    }
    if (strncmp(r->path, "/__", 3) == 0) {
        r->kind = K_CONTROL;
    } else if (strncmp(r->path, "/ngsi-ld/", 9) == 0) {
        r->kind = K_LD;
    } else if (strncmp(r->path, "/v2/", 4) == 0 ||
               strcmp(r->path, "/version") == 0) {
        r->kind = K_V2;
    }
    r->write = r->kind != K_CONTROL &&
               (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                strcmp(method, "PATCH") == 0 || strcmp(method, "DELETE") == 0);
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl != NULL) {
        char *end;
        errno = 0;
        r->clen = strtoull(cl, &end, 10);
        r->has_clen = *cl != '\0' && *end == '\0' && errno == 0;
    }
    return r;
}

static int body_add(struct req *r, const char *data, size_t n)
{
    r->received += n;
    if (r->overflow || r->len + n > g.max_body) {
        r->overflow = 1;
        return 0;
    }
    if (r->len + n + 1 > r->cap) {
        /* Content-Length (within the size limit) sizes it at once. */
        size_t cap = r->cap                                ? r->cap
                     : r->has_clen && r->clen < g.max_body ? (size_t)r->clen + 1
                                                           : 4096;
        char *b;
        while (cap < r->len + n + 1) {
            cap *= 2;
        }
        if ((b = realloc(r->body, cap)) == NULL) {
            return -1;
        }
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return 0;
}

static enum MHD_Result too_large(struct req *r)
{
    char d[128];
    unsigned long long n = r->has_clen ? r->clen : r->received;

    snprintf(d, sizeof d, "payload size: %llu, max size supported: %zu", n,
             g.max_body);
    if (r->kind == K_LD) {
        return reply_ld(r, 413, "BadRequestData", "Payload too large", d);
    }
    return reply_orion(r, 413, "RequestEntityTooLarge", d);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct req *r = *con_cls;

    (void)cls;
    (void)version;
    if (r == NULL) {
        const char *expect;
        if ((r = req_new(c, url, method)) == NULL) {
            return MHD_NO;
        }
        *con_cls = r;
        /* Orion answers 413 from the headers; without "Expect:
         * 100-continue" we read (and drop) a body of sane size first so
         * that the client is not reset while still sending. */
        expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
        if (r->has_clen && r->clen > g.max_body &&
            (expect != NULL || r->clen > NS_DISCARD_MAX) &&
            r->kind != K_CONTROL) {
            return too_large(r);
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!r->answered && body_add(r, upload, *upload_size) != 0) {
            return MHD_NO;
        }
        *upload_size = 0;
        if (!r->answered && r->received > NS_DISCARD_MAX) {
            return too_large(r);
        }
        return MHD_YES;
    }
    if (r->answered) {
        return MHD_YES;
    }
    if (r->overflow && r->kind == K_CONTROL) {
        return reply_orion(r, 413, "RequestEntityTooLarge", "body too large");
    }
    if (r->overflow && r->has_clen) {
        return too_large(r);
    }
    return dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req *r = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (r != NULL) {
        free(r->body);
        free(r->path);
        free(r);
        *con_cls = NULL;
    }
}

/* Tracks live connection sockets, so that a refusal can drop them. */
static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci != NULL ? ci->connect_fd : -1;

    (void)cls;
    (void)socket_ctx;
    if (fd < 0) {
        return;
    }
    pthread_mutex_lock(&g.conn_lock);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        if (g.nconns < sizeof g.conns / sizeof g.conns[0]) {
            g.conns[g.nconns++] = fd;
        }
    } else {
        for (size_t i = 0; i < g.nconns; i++) {
            if (g.conns[i] == fd) {
                g.conns[i] = g.conns[--g.nconns];
                break;
            }
        }
    }
    pthread_mutex_unlock(&g.conn_lock);
}

/* --- listener
 * ------------------------------------------------------------------- */

/* Opens the listening socket on g.bind:port; sets g.port from it. */
static int listen_open(unsigned port)
{
    struct addrinfo hints, *ai = NULL;
    char portstr[16];
    int fd = -1, one = 1, rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(portstr, sizeof portstr, "%u", port);
    if ((rc = getaddrinfo(g.bind, portstr, &hints, &ai)) != 0) {
        fprintf(stderr, "ngsi_server: --bind %s: %s\n", g.bind,
                gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
        freeaddrinfo(ai);
        return -1;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        int err = errno;
        close(fd);
        freeaddrinfo(ai);
        errno = err;
        return -1;
    }
    freeaddrinfo(ai);
    if (port == 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
            g.port = ntohs(ss.ss_family == AF_INET6
                               ? ((struct sockaddr_in6 *)&ss)->sin6_port
                               : ((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    return fd;
}

/* Waits until the wake pipe is readable or ms pass. */
static void wait_wake(int ms)
{
    struct pollfd p = {g.wake[0], POLLIN, 0};
    char buf[64];

    if (poll(&p, 1, ms) > 0) {
        ssize_t n = read(g.wake[0], buf, sizeof buf);
        (void)n;
    }
}

/* One refusal: close the socket, drop connections, wait, listen again. */
static int refusal(int lfd)
{
    struct timespec until;
    long ms;
    int keep;

    if (lfd >= 0) {
        close(lfd);
    }
    pthread_mutex_lock(&g.lock);
    ms = g.refuse_ms;
    keep = g.refuse_keep;
    g.refuse_ms = 0;
    g.refusing = 1;
    g.st.refusals++;
    pthread_mutex_unlock(&g.lock);
    pthread_mutex_lock(&g.conn_lock);
    for (size_t i = 0; i < g.nconns; i++) {
        if (g.conns[i] != keep) {
            shutdown(g.conns[i], SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&g.conn_lock);
    log_line("refusing connections for %ld ms", ms);
    pthread_mutex_lock(&g.lock);
    g.refuse_ack = 1;
    pthread_cond_broadcast(&g.cv);
    until = deadline_in(ms);
    while (!g.stopping &&
           pthread_cond_timedwait(&g.cv, &g.lock, &until) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&g.lock);
    lfd = -1;
    for (int waited = 0; lfd < 0 && waited < NS_RELISTEN_TRY_MS; waited += 20) {
        pthread_mutex_lock(&g.lock);
        int stop = g.stopping;
        pthread_mutex_unlock(&g.lock);
        if (stop) {
            break;
        }
        if ((lfd = listen_open(g.port)) < 0) {
            wait_wake(20);
        }
    }
    pthread_mutex_lock(&g.lock);
    g.refusing = 0;
    pthread_mutex_unlock(&g.lock);
    if (lfd < 0) {
        fprintf(stderr, "ngsi_server: cannot listen again on port %u: %s\n",
                g.port, strerror(errno));
    } else {
        log_line("listening again on port %u", g.port);
    }
    return lfd;
}

static void *listener_main(void *arg_)
{
    int lfd = (int)(intptr_t)arg_;

    for (;;) {
        struct pollfd p[2] = {{g.wake[0], POLLIN, 0}, {lfd, POLLIN, 0}};
        int stop, refuse;

        pthread_mutex_lock(&g.lock);
        stop = g.stopping;
        refuse = g.refuse_ms > 0;
        pthread_mutex_unlock(&g.lock);
        if (stop) {
            break;
        }
        if (refuse) {
            lfd = refusal(lfd);
            continue;
        }
        if (lfd < 0 && (lfd = listen_open(g.port)) >= 0) {
            log_line("listening again on port %u", g.port);
        }
        if (poll(p, lfd >= 0 ? 2 : 1, lfd >= 0 ? -1 : 100) < 0) {
            continue;
        }
        if (p[0].revents & POLLIN) {
            char buf[64];
            ssize_t n = read(g.wake[0], buf, sizeof buf);
            (void)n;
        }
        if (lfd >= 0 && (p[1].revents & POLLIN)) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            int fd = accept(lfd, (struct sockaddr *)&ss, &sl);
            if (fd >= 0) {
                fcntl(fd, F_SETFD, FD_CLOEXEC);
                MHD_add_connection(g.mhd, fd, (struct sockaddr *)&ss, sl);
            }
        }
    }
    if (lfd >= 0) {
        close(lfd);
    }
    return NULL;
}

/* --- main
 * ---------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: ngsi_server [--port N] [--bind ADDR] [--port-file FILE]\n"
            "                   [--max-body BYTES] [--multiservice] "
            "[--log FILE]\n"
            "                   [--max-entities N] [--max-store-mb N]\n"
            "                   [--tls-cert PEM --tls-key PEM]\n"
            "  --port 0 (default) picks a free port; --port-file receives it\n"
            "  once the server listens. --tls-cert and --tls-key (both or\n"
            "  neither) serve HTTPS instead of HTTP. See "
            "tests/servers/README.md.\n");
}

static int parse_size(const char *s, unsigned long long min,
                      unsigned long long max, unsigned long long *out)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 10);
    return (*s == '\0' || *end != '\0' || errno != 0 || *out < min ||
            *out > max)
               ? -1
               : 0;
}

/* The PEM text of --tls-cert or --tls-key (the project's pem_load and its
 * checks), malloc'd; NULL with a message on stderr. */
static char *load_pem(const char *opt, const char *path, int is_key)
{
    char why[512];
    char *pem = NULL;
    size_t len;

    if (pem_load(path, &pem, &len, why, sizeof why) != SPOT_OK ||
        (is_key ? pem_check_key(pem, len, why, sizeof why)
                : pem_check_certs(pem, len, why, sizeof why)) != SPOT_OK) {
        fprintf(stderr, "ngsi_server: %s: %s\n", opt, why);
        free(pem);
        return NULL;
    }
    return pem;
}

static int parse_args(int argc, char **argv, const char **logpath)
{
    const char *cert = NULL, *key = NULL;

    unsigned long long v;

    g.bind = "127.0.0.1";
    g.max_body = NS_DEFAULT_MAX_BODY;
    g.max_entities = NS_DEFAULT_MAX_ENTITIES;
    g.max_store_bytes = (size_t)NS_DEFAULT_MAX_STORE_MB * 1024u * 1024u;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--multiservice") == 0) {
            g.multiservice = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            exit(0);
        }
        if (val == NULL) {
            usage();
            return -1;
        }
        i++;
        if (strcmp(a, "--port") == 0 && parse_size(val, 0, 65535, &v) == 0) {
            g.port = (unsigned)v;
        } else if (strcmp(a, "--bind") == 0) {
            g.bind = val;
        } else if (strcmp(a, "--port-file") == 0) {
            g.port_file = val;
        } else if (strcmp(a, "--log") == 0) {
            *logpath = val;
        } else if (strcmp(a, "--tls-cert") == 0) {
            cert = val;
        } else if (strcmp(a, "--tls-key") == 0) {
            key = val;
        } else if (strcmp(a, "--max-body") == 0 &&
                   parse_size(val, 16, NS_DISCARD_MAX, &v) == 0) {
            g.max_body = (size_t)v;
        } else if (strcmp(a, "--max-entities") == 0 &&
                   parse_size(val, 1, 100000000ull, &v) == 0) {
            g.max_entities = (size_t)v;
        } else if (strcmp(a, "--max-store-mb") == 0 &&
                   parse_size(val, 1, 65536, &v) == 0) {
            g.max_store_bytes = (size_t)v * 1024u * 1024u;
        } else {
            fprintf(stderr, "ngsi_server: bad option or value: %s %s\n", a,
                    val);
            usage();
            return -1;
        }
    }
    if ((cert == NULL) != (key == NULL)) {
        fprintf(stderr, "ngsi_server: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (cert != NULL) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            fprintf(stderr, "ngsi_server: this libmicrohttpd has no TLS\n");
            return -1;
        }
        if ((g.tls_cert = load_pem("--tls-cert", cert, 0)) == NULL ||
            (g.tls_key = load_pem("--tls-key", key, 1)) == NULL) {
            free(g.tls_cert);
            g.tls_cert = NULL;
            return -1;
        }
    }
    return 0;
}

static int write_port_file(void)
{
    char tmp[4096];
    FILE *f;

    if (g.port_file == NULL) {
        return 0;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", g.port_file);
    if ((f = fopen(tmp, "w")) == NULL) {
        return -1;
    }
    fprintf(f, "%u\n", g.port);
    if (fclose(f) != 0 || rename(tmp, g.port_file) != 0) {
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *logpath = NULL;
    sigset_t sigs;
    pthread_condattr_t ca;
    int lfd, sig = 0, rc = 1;

    if (parse_args(argc, argv, &logpath) != 0) {
        return 2;
    }
    if (logpath != NULL && (g.log = fopen(logpath, "a")) == NULL) {
        free(g.tls_cert);
        free(g.tls_key);
        fprintf(stderr, "ngsi_server: --log %s: %s\n", logpath,
                strerror(errno));
        return 1;
    }
    /* Signals are taken by sigwait in main; every thread inherits the
     * mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    pthread_mutex_init(&g.lock, NULL);
    pthread_mutex_init(&g.conn_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g.cv, &ca);
    pthread_condattr_destroy(&ca);
    g.f.fail_status = 503;
    if (store_init(&g.store, g.max_entities, g.max_store_bytes) != 0 ||
        pipe(g.wake) != 0) {
        fprintf(stderr, "ngsi_server: out of resources\n");
        goto out_store;
    }
    fcntl(g.wake[0], F_SETFL, O_NONBLOCK);
    fcntl(g.wake[1], F_SETFL, O_NONBLOCK);

    if (g.tls_cert != NULL) {
        g.mhd = MHD_start_daemon(
            MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                MHD_USE_TLS,
            0, NULL, NULL, on_request, NULL, MHD_OPTION_HTTPS_MEM_CERT,
            g.tls_cert, MHD_OPTION_HTTPS_MEM_KEY, g.tls_key,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned)NS_CONN_LIMIT,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)NS_CONN_TIMEOUT_S,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL, MHD_OPTION_END);
    } else {
        g.mhd = MHD_start_daemon(
            MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | MHD_USE_ERROR_LOG,
            0, NULL, NULL, on_request, NULL, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)NS_CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)NS_CONN_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED,
            on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
            NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL, MHD_OPTION_END);
    }
    if (g.mhd == NULL) {
        fprintf(stderr, "ngsi_server: cannot start libmicrohttpd\n");
        goto out_pipe;
    }
    if ((lfd = listen_open(g.port)) < 0) {
        fprintf(stderr, "ngsi_server: cannot listen on %s:%u: %s\n", g.bind,
                g.port, strerror(errno));
        goto out_mhd;
    }
    if (pthread_create(&g.listener, NULL, listener_main,
                       (void *)(intptr_t)lfd) != 0) {
        close(lfd);
        goto out_mhd;
    }
    if (write_port_file() != 0) {
        fprintf(stderr, "ngsi_server: cannot write --port-file %s: %s\n",
                g.port_file, strerror(errno));
        sig = -1;
    } else {
        fprintf(stderr,
                "ngsi_server: listening on %s:%u (%s, max body %zu bytes%s)\n",
                g.bind, g.port, g.tls_cert ? "https" : "http", g.max_body,
                g.multiservice ? ", multiservice" : "");
        log_line("listening on %s:%u", g.bind, g.port);
        if (sigwait(&sigs, &sig) != 0) {
            sig = -1;
        }
    }
    pthread_mutex_lock(&g.lock);
    g.stopping = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.lock);
    {
        ssize_t w = write(g.wake[1], "s", 1);
        (void)w;
    }
    pthread_join(g.listener, NULL);
    rc = sig > 0 ? 0 : 1;
    log_line("stopping (signal %d)", sig);
out_mhd:
    MHD_stop_daemon(g.mhd);
out_pipe:
    close(g.wake[0]);
    close(g.wake[1]);
out_store:
    store_free(&g.store);
    ring_clear();
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.conn_lock);
    pthread_mutex_destroy(&g.lock);
    if (g.log != NULL) {
        fclose(g.log);
    }
    free(g.tls_cert);
    free(g.tls_key);
    return rc;
}
