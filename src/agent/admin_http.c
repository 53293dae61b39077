/*
 * The operations endpoint (admin_http.h) over libmicrohttpd. One internal
 * polling thread serves every connection (bounded in number and time);
 * handlers answer from lock-free metrics, a snapshot of the activity
 * tables and the agent's view callbacks, and never block. Only GET and
 * HEAD are served (libmicrohttpd drops the body of HEAD answers); anything
 * else is 405, an unknown path 404, both with a JSON body. Every JSON body
 * is written by yajl_gen.
 *
 * The listening socket is made here rather than by libmicrohttpd, so that
 * a failed bind is reported with its errno and address; libmicrohttpd
 * takes it over (and closes it when stopped).
 *
 * new/free from the main thread; the handlers run on libmicrohttpd's
 * thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <MQTTAsync.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_version.h>
/* Debian keeps libpq-fe.h in /usr/include/postgresql (as pg_schema.h). */
#if defined(__has_include)
#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif
#else
#include <libpq-fe.h>
#endif

#include "spot/clock.h"
#include "spot/err.h"
#include "spot/log.h"
#include "admin_http.h"
#include "status_page.h"

#define MOD "http"

#include "version.h" /* generated: SPOT_VERSION, SPOT_GIT_REV */

/* Bounds of the endpoint: concurrent connections, idle seconds. */
#define ADMIN_MAX_CONNECTIONS 64u
#define ADMIN_TIMEOUT_S       10u
#define ADMIN_LISTEN_BACKLOG  64

#define CONTENT_JSON    "application/json"
#define CONTENT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_HTML    "text/html; charset=utf-8"

struct admin_http {
    struct MHD_Daemon *daemon;
    struct metrics *metrics;
    struct activity *activity;
    struct admin_view view; /* copied */
    char *page;             /* the status page and its CSP header */
    size_t page_len;
    char *csp;
};

/* --- listen address ------------------------------------------------------ */

static int copy_part(char *dst, size_t cap, const char *src, size_t len)
{
    if (len == 0 || len >= cap)
        return SPOT_EINVAL;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return SPOT_OK;
}

int admin_http_parse_listen(const char *listen, char *host, size_t hostlen,
                            char *port, size_t portlen)
{
    const char *colon;
    if (listen == NULL)
        return SPOT_EINVAL;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':' ||
            copy_part(host, hostlen, listen + 1,
                      (size_t)(close - listen - 1)) != SPOT_OK)
            return SPOT_EINVAL;
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL ||
            copy_part(host, hostlen, listen, (size_t)(colon - listen)) !=
                SPOT_OK ||
            strchr(host, ':') != NULL) /* IPv6 needs brackets */
            return SPOT_EINVAL;
    }
    const char *p = colon + 1;
    size_t n = strlen(p);
    if (n == 0 || n > 5 || strspn(p, "0123456789") != n)
        return SPOT_EINVAL;
    long v = strtol(p, NULL, 10);
    if (v < 1 || v > 65535)
        return SPOT_EINVAL;
    return copy_part(port, portlen, p, n);
}

/* Makes the listening socket; logs why not. */
static int open_listener(const char *listen_addr, int *out_fd)
{
    char host[256], port[8];
    if (admin_http_parse_listen(listen_addr, host, sizeof host, port,
                                sizeof port) != SPOT_OK) {
        log_msg(LOG_ERROR, MOD,
                "http-listen %s: expected host:port or [ipv6]:port",
                listen_addr);
        return SPOT_EINVAL;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        log_msg(LOG_ERROR, MOD, "cannot listen on %s: %s", listen_addr,
                gai_strerror(gai));
        return SPOT_EIO;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, ADMIN_LISTEN_BACKLOG) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        log_msg(LOG_ERROR, MOD, "cannot listen on %s: %s", listen_addr,
                strerror(err));
        return SPOT_EIO;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    *out_fd = fd;
    return SPOT_OK;
}

/* --- replies ------------------------------------------------------------- */

static void common_headers(struct MHD_Response *r, const char *type)
{
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

/* Queues body (len bytes, taken: freed by libmicrohttpd). */
static enum MHD_Result reply_take(struct MHD_Connection *c, unsigned status,
                                  const char *type, char *body, size_t len,
                                  const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO; /* libmicrohttpd closes the connection */
    }
    common_headers(r, type);
    if (allow != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static yajl_gen json_new(void)
{
    return yajl_gen_alloc(NULL);
}

/* Sends what g holds, with a final newline, and frees g. */
static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status,
                                  yajl_gen g, const char *allow)
{
    const unsigned char *buf;
    size_t len;
    char *body = NULL;
    if (g != NULL && yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
        body = malloc(len + 1);
    if (body == NULL) {
        yajl_gen_free(g);
        return MHD_NO;
    }
    memcpy(body, buf, len);
    body[len] = '\n';
    yajl_gen_free(g);
    return reply_take(c, status, CONTENT_JSON, body, len + 1, allow);
}

static void gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gen_kv(yajl_gen g, const char *k, const char *v)
{
    gen_str(g, k);
    gen_str(g, v);
}

/* {"error": what, ...}: 404 lists the paths there are. */
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status,
                                   const char *what, const char *allow)
{
    static const char *const paths[] = {"/",        "/health",  "/ready",
                                        "/metrics", "/version", "/status.json"};
    yajl_gen g = json_new();
    if (g == NULL)
        return MHD_NO;
    yajl_gen_map_open(g);
    gen_kv(g, "error", what);
    if (status == MHD_HTTP_NOT_FOUND) {
        gen_str(g, "endpoints");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
            gen_str(g, paths[i]);
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g);
    return reply_json(c, status, g, allow);
}

/* --- the agent's state --------------------------------------------------- */

static int view_alive(const struct admin_http *h)
{
    return h->view.alive ? h->view.alive(h->view.ctx) != 0 : 1;
}

/* Reads the journal's state into the metrics; returns 1 while it takes
 * no message (full or failing). */
static int view_journal_full(const struct admin_http *h)
{
    if (h->view.journal == NULL)
        return 0;
    uint64_t bytes = 0, max = 0;
    int failing = 0;
    int full = h->view.journal(h->view.ctx, &bytes, &max, &failing) != 0;
    metrics_journal(h->metrics, bytes, max, full, failing);
    return full || failing;
}

static int view_mqtt(const struct admin_http *h)
{
    if (h->view.mqtt_connected)
        return h->view.mqtt_connected(h->view.ctx) != 0;
    return metrics_get_mqtt_connected(h->metrics) != 0;
}

struct sinks_state {
    enum sink_id ids[SINK_COUNT];
    int ready[SINK_COUNT];
    size_t n;
};

static void view_sinks(const struct admin_http *h, struct sinks_state *s)
{
    s->n = 0;
    if (h->view.sinks)
        s->n = h->view.sinks(h->view.ctx, s->ids, s->ready, SINK_COUNT);
    if (s->n > SINK_COUNT)
        s->n = SINK_COUNT;
}

/* Writes the names of what is down as a JSON array; returns how many.
 * A full journal counts: the agent takes no message until it has room. */
static size_t gen_down(yajl_gen g, int mqtt, int journal_full,
                       const struct sinks_state *s)
{
    size_t n = 0;
    yajl_gen_array_open(g);
    if (!mqtt) {
        gen_str(g, "mqtt");
        n++;
    }
    if (journal_full) {
        gen_str(g, "journal");
        n++;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (!s->ready[i]) {
            gen_str(g, sink_name(s->ids[i]));
            n++;
        }
    }
    yajl_gen_array_close(g);
    return n;
}

static int all_ready(int mqtt, int journal_full, const struct sinks_state *s)
{
    if (!mqtt || journal_full)
        return 0;
    for (size_t i = 0; i < s->n; i++)
        if (!s->ready[i])
            return 0;
    return 1;
}

/* --- endpoints ----------------------------------------------------------- */

static enum MHD_Result get_health(struct admin_http *h,
                                  struct MHD_Connection *c)
{
    int ok = view_alive(h);
    yajl_gen g = json_new();
    if (g == NULL)
        return MHD_NO;
    yajl_gen_map_open(g);
    gen_kv(g, "status", ok ? "ok" : "stalled");
    yajl_gen_map_close(g);
    return reply_json(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, g,
                      NULL);
}

static enum MHD_Result get_ready(struct admin_http *h, struct MHD_Connection *c)
{
    int mqtt = view_mqtt(h);
    int full = view_journal_full(h);
    struct sinks_state s;
    view_sinks(h, &s);
    int ready = all_ready(mqtt, full, &s);
    yajl_gen g = json_new();
    if (g == NULL)
        return MHD_NO;
    yajl_gen_map_open(g);
    gen_kv(g, "status", ready ? "ready" : "not ready");
    if (!ready) {
        gen_str(g, "down");
        gen_down(g, mqtt, full, &s);
    }
    yajl_gen_map_close(g);
    return reply_json(c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, g,
                      NULL);
}

static enum MHD_Result get_metrics(struct admin_http *h,
                                   struct MHD_Connection *c)
{
    char *text;
    size_t len;
    view_journal_full(h);
    if (metrics_render(h->metrics, &text, &len) != SPOT_OK)
        return MHD_NO;
    return reply_take(c, MHD_HTTP_OK, CONTENT_METRICS, text, len, NULL);
}

#if defined(__clang__)
#define COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER "unknown"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SAN_ADDRESS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SAN_ADDRESS 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SAN_THREAD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SAN_THREAD 1
#endif
#endif

/* UBSan defines no macro: its runtime is linked in when it is on. */
extern void __ubsan_handle_builtin_unreachable(void *data)
    __attribute__((weak));

static void gen_version_int(yajl_gen g, const char *key, int major, int minor,
                            int patch)
{
    char v[48];
    if (patch >= 0)
        snprintf(v, sizeof v, "%d.%d.%d", major, minor, patch);
    else
        snprintf(v, sizeof v, "%d.%d", major, minor);
    gen_kv(g, key, v);
}

static void gen_libraries(yajl_gen g)
{
    const char *paho = "unknown";
    MQTTAsync_nameValue *info = MQTTAsync_getVersionInfo();
    for (; info != NULL && info->name != NULL; info++)
        if (strcmp(info->name, "Version") == 0 && info->value != NULL)
            paho = info->value;
    gen_kv(g, "paho", paho);
    int pq = PQlibVersion(); /* e.g. 150004 for 15.4 */
    gen_version_int(g, "libpq", pq / 10000, pq % 100, -1);
    int yv = yajl_version(); /* e.g. 20100 for 2.1.0 */
    gen_version_int(g, "yajl", yv / 10000, yv / 100 % 100, yv % 100);
    gen_kv(g, "libmicrohttpd", MHD_get_version());
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    gen_kv(g, "libcurl", cv && cv->version ? cv->version : "unknown");
    gen_kv(g, "openssl", OpenSSL_version(OPENSSL_VERSION));
}

static enum MHD_Result get_version(struct admin_http *h,
                                   struct MHD_Connection *c)
{
    (void)h;
    yajl_gen g = json_new();
    if (g == NULL)
        return MHD_NO;
    yajl_gen_map_open(g);
    gen_kv(g, "version", SPOT_VERSION);
    gen_kv(g, "git_revision", SPOT_GIT_REV);
    gen_str(g, "build");
    yajl_gen_map_open(g);
    gen_kv(g, "compiler", COMPILER);
    gen_str(g, "sanitizers");
    yajl_gen_array_open(g);
#ifdef SAN_ADDRESS
    gen_str(g, "address");
#endif
#ifdef SAN_THREAD
    gen_str(g, "thread");
#endif
    if (__ubsan_handle_builtin_unreachable != NULL)
        gen_str(g, "undefined");
    yajl_gen_array_close(g);
    gen_str(g, "optimized");
#ifdef __OPTIMIZE__
    yajl_gen_bool(g, 1);
#else
    yajl_gen_bool(g, 0);
#endif
    gen_libraries(g);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    return reply_json(c, MHD_HTTP_OK, g, NULL);
}

static enum MHD_Result get_status(struct admin_http *h,
                                  struct MHD_Connection *c)
{
    int64_t now = spot_now_us();
    int mqtt = view_mqtt(h);
    int full = view_journal_full(h);
    struct sinks_state s;
    view_sinks(h, &s);
    yajl_gen g = json_new();
    if (g == NULL)
        return MHD_NO;
    char ts[32];
    validate_format_time(now, ts);

    yajl_gen_map_open(g);
    gen_kv(g, "time", ts);
    gen_str(g, "alive");
    yajl_gen_bool(g, view_alive(h));
    gen_str(g, "mqtt_connected");
    yajl_gen_bool(g, mqtt);
    gen_str(g, "ready");
    yajl_gen_bool(g, all_ready(mqtt, full, &s));
    gen_str(g, "down");
    gen_down(g, mqtt, full, &s);
    if (h->view.journal != NULL) {
        uint64_t bytes = 0, max = 0;
        int failing = 0;
        int at_bound = h->view.journal(h->view.ctx, &bytes, &max, &failing);
        gen_str(g, "journal");
        yajl_gen_map_open(g);
        gen_str(g, "bytes");
        yajl_gen_integer(g, (long long)bytes);
        gen_str(g, "max_bytes");
        yajl_gen_integer(g, (long long)max);
        gen_str(g, "full");
        yajl_gen_bool(g, at_bound);
        gen_str(g, "failing");
        yajl_gen_bool(g, failing);
        yajl_gen_map_close(g);
    }

    gen_str(g, "sinks");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < s.n; i++) {
        enum sink_id id = s.ids[i];
        yajl_gen_map_open(g);
        gen_kv(g, "name", sink_name(id));
        gen_str(g, "ready");
        yajl_gen_bool(g, s.ready[i] != 0);
        gen_str(g, "backlog");
        yajl_gen_integer(g,
                         (long long)metrics_get_sink_backlog(h->metrics, id));
        gen_str(g, "writes");
        yajl_gen_integer(g, (long long)metrics_get_sink_writes(h->metrics, id));
        gen_str(g, "errors");
        yajl_gen_integer(g, (long long)metrics_get_sink_errors(h->metrics, id));
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);

    gen_str(g, "received");
    yajl_gen_map_open(g);
    for (int v = 0; v <= METRICS_VERTICAL_UNKNOWN; v++) {
        gen_str(g, v == METRICS_VERTICAL_UNKNOWN
                       ? "unknown"
                       : vertical_code((enum spot_vertical)v));
        yajl_gen_integer(g, (long long)metrics_get_received(h->metrics, v));
    }
    yajl_gen_map_close(g);

    gen_str(g, "rejected");
    yajl_gen_map_open(g);
    for (int r = REJECT_NONE + 1; r < REJECT_COUNT; r++) {
        gen_str(g, reject_reason_name((enum reject_reason)r));
        yajl_gen_integer(g, (long long)metrics_get_rejected(
                                h->metrics, (enum reject_reason)r));
    }
    yajl_gen_map_close(g);

    gen_str(g, "activity");
    activity_to_json(h->activity, g, now);
    yajl_gen_map_close(g);
    return reply_json(c, MHD_HTTP_OK, g, NULL);
}

static enum MHD_Result get_page(struct admin_http *h, struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        h->page_len, h->page, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    common_headers(r, CONTENT_HTML);
    MHD_add_response_header(r, "Content-Security-Policy", h->csp);
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static const struct route {
    const char *path;
    enum MHD_Result (*get)(struct admin_http *h, struct MHD_Connection *c);
} routes[] = {
    {"/", get_page},           {"/health", get_health},
    {"/ready", get_ready},     {"/metrics", get_metrics},
    {"/version", get_version}, {"/status.json", get_status},
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct admin_http *h = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed",
                           "GET, HEAD");
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(url, routes[i].path) == 0)
            return routes[i].get(h, c);
    return reply_error(c, MHD_HTTP_NOT_FOUND, "not found", NULL);
}

/* libmicrohttpd's own errors, one line each. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    log_msg(LOG_WARN, MOD, "libmicrohttpd: %s", msg);
}

/* --- life cycle ---------------------------------------------------------- */

int admin_http_new(struct admin_http **out, const char *listen,
                   struct metrics *metrics, struct activity *activity,
                   const struct admin_view *view)
{
    struct admin_http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return SPOT_ENOMEM;
    h->metrics = metrics;
    h->activity = activity;
    if (view != NULL)
        h->view = *view;
    int fd = -1;
    int rc = status_page_build(&h->page, &h->page_len, &h->csp);
    if (rc == SPOT_OK)
        rc = open_listener(listen, &fd);
    if (rc != SPOT_OK)
        goto out;
    h->daemon = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
        ADMIN_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, ADMIN_TIMEOUT_S,
        MHD_OPTION_END);
    if (h->daemon == NULL) {
        log_msg(LOG_ERROR, MOD,
                "cannot serve on %s: libmicrohttpd refused "
                "to start",
                listen);
        close(fd);
        rc = SPOT_EIO;
        goto out;
    }
    log_msg(LOG_INFO, MOD,
            "serving /health /ready /metrics /version and the status page "
            "on http://%s/",
            listen);
out:
    if (rc != SPOT_OK) {
        admin_http_free(h);
        return rc;
    }
    *out = h;
    return SPOT_OK;
}

void admin_http_free(struct admin_http *h)
{
    if (h == NULL)
        return;
    if (h->daemon != NULL)
        MHD_stop_daemon(h->daemon); /* joins its thread, closes the socket */
    free(h->page);
    free(h->csp);
    free(h);
}
