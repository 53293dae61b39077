/*
 * Dead-letter journal records. Payload layout (little endian):
 *   u32 topic_len, u32 detail_len, topic bytes, detail bytes, payload bytes
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/err.h"
#include "spot/limits.h"
#include "dead_record.h"

#define HDR 8

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

int dead_record_append(struct journal *j, const struct dead_record *d,
                       bool bounded)
{
    if (d->topic_len > DEAD_RECORD_MAX_TOPIC_LEN ||
        d->detail_len > SPOT_MAX_DETAIL_LEN * 16 ||
        d->payload_len > SPOT_MAX_JOURNAL_PAYLOAD)
        return SPOT_ETOOBIG;
    size_t len = HDR + d->topic_len + d->detail_len + d->payload_len;
    unsigned char *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return SPOT_ENOMEM;
    put_u32(buf, (uint32_t)d->topic_len);
    put_u32(buf + 4, (uint32_t)d->detail_len);
    unsigned char *p = buf + HDR;
    if (d->topic_len)
        memcpy(p, d->topic, d->topic_len);
    p += d->topic_len;
    if (d->detail_len)
        memcpy(p, d->detail, d->detail_len);
    p += d->detail_len;
    if (d->payload_len)
        memcpy(p, d->payload, d->payload_len);
    char topic[64];
    snprintf(topic, sizeof topic, "%s%s", DEAD_RECORD_TOPIC_PREFIX,
             reject_reason_name(d->reason));
    int rc = bounded ? journal_append(j, topic, strlen(topic), buf, len,
                                      d->received_us)
                     : journal_append_unbounded(j, topic, strlen(topic), buf,
                                                len, d->received_us);
    free(buf);
    return rc;
}

int dead_record_is(const struct journal_entry *e)
{
    size_t n = sizeof DEAD_RECORD_TOPIC_PREFIX - 1;
    return e->topic_len > n &&
           memcmp(e->topic, DEAD_RECORD_TOPIC_PREFIX, n) == 0;
}

int dead_record_decode(const struct journal_entry *e, struct dead_record *out)
{
    size_t n = sizeof DEAD_RECORD_TOPIC_PREFIX - 1;
    if (!dead_record_is(e) || e->payload_len < HDR)
        return SPOT_ECORRUPT;
    memset(out, 0, sizeof *out);
    out->reason = REJECT_COUNT;
    for (int r = REJECT_NONE + 1; r < REJECT_COUNT; r++) {
        const char *name = reject_reason_name((enum reject_reason)r);
        if (strlen(name) == e->topic_len - n &&
            memcmp(e->topic + n, name, e->topic_len - n) == 0)
            out->reason = (enum reject_reason)r;
    }
    if (out->reason == REJECT_COUNT)
        return SPOT_ECORRUPT;
    uint64_t tl = get_u32(e->payload), dl = get_u32(e->payload + 4);
    if (HDR + tl + dl > e->payload_len)
        return SPOT_ECORRUPT;
    out->topic = (const char *)e->payload + HDR;
    out->topic_len = tl;
    out->detail = out->topic + tl;
    out->detail_len = dl;
    out->payload = e->payload + HDR + tl + dl;
    out->payload_len = e->payload_len - HDR - tl - dl;
    out->received_us = e->received_us;
    return SPOT_OK;
}
