/*
 * File dead-letter store: JSON lines built with yajl_gen (never by string
 * pasting), the payload kept byte for byte in base64.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>

#include "spot/err.h"
#include "spot/log.h"
#include "deadletter.h"

struct deadletter {
    FILE *f;
    yajl_gen gen;
    char *b64;
    size_t b64_cap;
};

int deadletter_open(struct deadletter **out, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/dead-letters.jsonl", dir);
    struct deadletter *d = calloc(1, sizeof *d);
    if (d == NULL)
        return SPOT_ENOMEM;
    d->f = fopen(path, "ab");
    if (d->f == NULL) {
        log_msg(LOG_ERROR, "deadletter", "cannot open %s: %s", path,
                strerror(errno));
        free(d);
        return SPOT_EIO;
    }
    d->gen = yajl_gen_alloc(NULL);
    if (d->gen == NULL) {
        fclose(d->f);
        free(d);
        return SPOT_ENOMEM;
    }
    yajl_gen_config(d->gen, yajl_gen_validate_utf8, 1);
    *out = d;
    return SPOT_OK;
}

void deadletter_close(struct deadletter *d)
{
    if (d == NULL)
        return;
    deadletter_sync(d);
    fclose(d->f);
    yajl_gen_free(d->gen);
    free(d->b64);
    free(d);
}

static const char *base64(struct deadletter *d, const unsigned char *p,
                          size_t n, size_t *out_len)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t need = (n + 2) / 3 * 4 + 1;
    if (need > d->b64_cap) {
        char *b = realloc(d->b64, need);
        if (b == NULL)
            return NULL;
        d->b64 = b;
        d->b64_cap = need;
    }
    char *o = d->b64;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = tbl[(v >> 6) & 63];
        *o++ = tbl[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *out_len = (size_t)(o - d->b64);
    return d->b64;
}

static void gen_key(yajl_gen g, const char *k)
{
    yajl_gen_string(g, (const unsigned char *)k, strlen(k));
}

int deadletter_write(struct deadletter *d, enum reject_reason reason,
                     const char *detail, size_t detail_len, int64_t received_us,
                     const char *topic, size_t topic_len,
                     const unsigned char *payload, size_t payload_len)
{
    yajl_gen g = d->gen;
    yajl_gen_clear(g);
    yajl_gen_reset(g, NULL);
    char when[32];
    validate_format_time(received_us, when);
    yajl_gen_map_open(g);
    gen_key(g, "received_at");
    yajl_gen_string(g, (const unsigned char *)when, strlen(when));
    gen_key(g, "topic");
    if (yajl_gen_string(g, (const unsigned char *)topic, topic_len) !=
        yajl_gen_status_ok) {
        size_t n;
        const char *b = base64(d, (const unsigned char *)topic, topic_len, &n);
        gen_key(g, "topic_base64");
        if (b)
            yajl_gen_string(g, (const unsigned char *)b, n);
        else
            yajl_gen_null(g);
    }
    gen_key(g, "reason");
    const char *name = reject_reason_name(reason);
    yajl_gen_string(g, (const unsigned char *)name, strlen(name));
    gen_key(g, "detail");
    if (yajl_gen_string(g, (const unsigned char *)detail, detail_len) !=
        yajl_gen_status_ok)
        yajl_gen_null(g); /* not UTF-8 */
    gen_key(g, "payload_base64");
    size_t n;
    const char *b = base64(d, payload, payload_len, &n);
    if (b == NULL)
        return SPOT_ENOMEM;
    yajl_gen_string(g, (const unsigned char *)b, n);
    yajl_gen_map_close(g);
    const unsigned char *buf;
    size_t len;
    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
        return SPOT_EINVAL;
    if (fwrite(buf, 1, len, d->f) != len || fputc('\n', d->f) == EOF)
        return SPOT_EIO;
    return SPOT_OK;
}

int deadletter_sync(struct deadletter *d)
{
    if (fflush(d->f) != 0 || fdatasync(fileno(d->f)) != 0)
        return SPOT_EIO;
    return SPOT_OK;
}
