/*
 * Logging: one line per event to stderr, as
 *   text:   2026-01-01T00:00:00.000Z warn  mqtt: message
 *   logfmt: ts=2026-01-01T00:00:00.000Z level=warn module=mqtt msg="message"
 *   json:   {"ts":"...","level":"warn","module":"mqtt","msg":"message"}
 * Any thread; each line is written with a single write() so lines from
 * different threads never interleave. Warnings and errors are rate-limited
 * per call site (format string): at most LOG_BURST lines per LOG_WINDOW_S
 * seconds, then one line saying how many were suppressed.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>

#include "spot/err.h"
#include "spot/log.h"

#define LOG_LINE     2048
#define LOG_BURST    5
#define LOG_WINDOW_S 10
#define LOG_SITES    64 /* call sites tracked for rate limiting */

static atomic_int current_level = LOG_INFO;
static atomic_int current_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

struct site {
    const char *fmt;
    time_t window_start;
    unsigned count;
    unsigned suppressed;
};

static pthread_mutex_t sites_mu = PTHREAD_MUTEX_INITIALIZER;
static struct site sites[LOG_SITES];

void log_set_level(enum log_level level)
{
    atomic_store(&current_level, (int)level);
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return SPOT_OK;
        }
    }
    return SPOT_EINVAL;
}

void log_set_format(enum log_format format)
{
    atomic_store(&current_format, (int)format);
}

int log_format_parse(const char *s, enum log_format *out)
{
    static const char *const names[] = {"text", "logfmt", "json"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_format)i;
            return SPOT_OK;
        }
    }
    return SPOT_EINVAL;
}

int log_enabled(enum log_level level)
{
    return (int)level <=
           atomic_load_explicit(&current_level, memory_order_relaxed);
}

/* Decides whether a warning/error from the call site fmt may be written;
 * *suppressed receives how many were dropped before it. */
static int rate_allow(const char *fmt, unsigned *suppressed)
{
    time_t now = time(NULL);
    size_t h = ((uintptr_t)fmt >> 3) % LOG_SITES;
    int allow = 1;
    *suppressed = 0;
    pthread_mutex_lock(&sites_mu);
    struct site *s = &sites[h];
    if (s->fmt != fmt || now - s->window_start >= LOG_WINDOW_S) {
        *suppressed = s->fmt == fmt ? s->suppressed : 0;
        s->fmt = fmt;
        s->window_start = now;
        s->count = 0;
        s->suppressed = 0;
    }
    if (++s->count > LOG_BURST) {
        s->suppressed++;
        allow = 0;
    }
    pthread_mutex_unlock(&sites_mu);
    return allow;
}

/* Appends s to buf (at *n, cap bytes) escaped for a double-quoted logfmt
 * or JSON string; non-printable bytes become \u00XX. */
static void put_escaped(char *buf, size_t *n, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && *n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[(*n)++] = '\\';
            buf[(*n)++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(buf + *n, "\\u00", 4);
            buf[*n + 4] = hex[c >> 4];
            buf[*n + 5] = hex[c & 15];
            *n += 6;
        } else {
            buf[(*n)++] = (char)c;
        }
    }
}

/* The JSON form, through yajl_gen (strings are escaped for us; a message
 * that is not UTF-8 is written as its printable ASCII). */
static void json_line(char *buf, size_t *n, size_t cap, const char *ts,
                      const char *level, const char *module, const char *msg)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g == NULL)
        return;
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    const char *kv[] = {"ts", ts, "level", level, "module", module, "msg", msg};
    yajl_gen_map_open(g);
    for (size_t i = 0; i < 8; i += 2) {
        yajl_gen_string(g, (const unsigned char *)kv[i], strlen(kv[i]));
        if (yajl_gen_string(g, (const unsigned char *)kv[i + 1],
                            strlen(kv[i + 1])) != yajl_gen_status_ok) {
            char ascii[LOG_LINE];
            size_t a = 0;
            for (const char *p = kv[i + 1]; *p && a + 1 < sizeof ascii; p++)
                ascii[a++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
            yajl_gen_string(g, (const unsigned char *)ascii, a);
        }
    }
    yajl_gen_map_close(g);
    const unsigned char *out;
    size_t len;
    if (yajl_gen_get_buf(g, &out, &len) == yajl_gen_status_ok) {
        if (len > cap - *n)
            len = cap - *n;
        memcpy(buf + *n, out, len);
        *n += len;
    }
    yajl_gen_free(g);
}

static void put(char *buf, size_t *n, size_t cap, const char *s)
{
    size_t len = strlen(s);
    if (*n + len >= cap)
        len = cap - *n - 1;
    memcpy(buf + *n, s, len);
    *n += len;
}

void log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    unsigned suppressed = 0;
    if (level <= LOG_WARN && !rate_allow(fmt, &suppressed))
        return;
    char msg[LOG_LINE];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    if (suppressed > 0) {
        size_t ml = strlen(msg);
        snprintf(msg + ml, sizeof msg - ml, " (%u similar suppressed)",
                 suppressed);
    }

    char ts[64];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(now.tv_nsec / 1000000));

    char line[LOG_LINE * 2];
    size_t n = 0, cap = sizeof line - 1;
    switch ((enum log_format)atomic_load(&current_format)) {
    case LOG_FORMAT_LOGFMT:
        put(line, &n, cap, "ts=");
        put(line, &n, cap, ts);
        put(line, &n, cap, " level=");
        put(line, &n, cap, level_names[level]);
        put(line, &n, cap, " module=");
        put(line, &n, cap, module);
        put(line, &n, cap, " msg=\"");
        put_escaped(line, &n, cap, msg);
        put(line, &n, cap, "\"");
        break;
    case LOG_FORMAT_JSON:
        json_line(line, &n, cap, ts, level_names[level], module, msg);
        break;
    case LOG_FORMAT_TEXT:
    default:
        put(line, &n, cap, ts);
        put(line, &n, cap, " ");
        put(line, &n, cap, level_names[level]);
        put(line, &n, cap, level == LOG_WARN || level == LOG_INFO ? "  " : " ");
        put(line, &n, cap, module);
        put(line, &n, cap, ": ");
        /* one event, one line: fold embedded newlines */
        for (const char *p = msg; *p && n < cap; p++)
            line[n++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
        break;
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void log_redact_url(const char *url, char *out, size_t outlen)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');
    if (at != NULL && (slash == NULL || at < slash))
        snprintf(out, outlen, "%.*s***@%s", (int)(host - url), url, at + 1);
    else
        snprintf(out, outlen, "%s", url);
}
