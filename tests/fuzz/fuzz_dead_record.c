/*
 * Fuzz target: decoding dead-letter journal records
 * (src/agent/dead_record.c), whose payload is a length-prefixed structure.
 * Input: flags byte (0x01: the topic gets the dead-letter prefix), u8
 * topic length, topic bytes, payload. Invariants: only SPOT_OK or
 * SPOT_ECORRUPT; a decoded record has a real reason and its slices lie
 * inside the payload.
 */
#include <string.h>

#include "spot/err.h"
#include "dead_record.h"
#include "fuzz.h"

static int inside(const void *base, size_t len, const void *p, size_t n)
{
    const unsigned char *b = base, *q = p;
    return q >= b && n <= len && (size_t)(q - b) <= len - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0];
    size_t tl = data[1];
    data += 2;
    size -= 2;
    if (tl > size)
        tl = size;
    char topic[16 + 256];
    size_t n = 0;
    if (flags & 1) {
        memcpy(topic, DEAD_RECORD_TOPIC_PREFIX,
               sizeof DEAD_RECORD_TOPIC_PREFIX - 1);
        n = sizeof DEAD_RECORD_TOPIC_PREFIX - 1;
    }
    memcpy(topic + n, data, tl);
    n += tl;
    struct journal_entry e = {
        .topic = topic,
        .topic_len = n,
        .payload = data + tl,
        .payload_len = size - tl,
        .received_us = 7,
    };
    struct dead_record d;
    int rc = dead_record_decode(&e, &d);
    if (rc != SPOT_OK) {
        FUZZ_ASSERT(rc == SPOT_ECORRUPT);
        return 0;
    }
    FUZZ_ASSERT(dead_record_is(&e));
    FUZZ_ASSERT(d.reason > REJECT_NONE && d.reason < REJECT_COUNT);
    FUZZ_ASSERT(inside(e.payload, e.payload_len, d.topic, d.topic_len));
    FUZZ_ASSERT(inside(e.payload, e.payload_len, d.detail, d.detail_len));
    FUZZ_ASSERT(inside(e.payload, e.payload_len, d.payload, d.payload_len));
    FUZZ_ASSERT(d.received_us == 7);
    return 0;
}
