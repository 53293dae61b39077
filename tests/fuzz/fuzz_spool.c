/*
 * Fuzz target: the device's store-and-forward spool (src/device/spool.c)
 * recovering corrupted files. Each input becomes a spool directory with
 * one or two segment files and a head file; the spool is opened, every
 * queued message read, one appended and read back, everything released,
 * and the spool closed and opened again.
 *
 * Input: flags byte, u64 first seq of segment 2, u16 length + bytes of
 * segment 1, u16 length + bytes of segment 2, then the head file. Flags:
 * 0x01 fix the records' CRCs, sequence numbers and body fields (so the
 * fuzzer gets past the checksums), 0x02 write segment 2, 0x04 write the
 * head file, 0x08 let segment 2 start right after segment 1.
 *
 * Invariants: open fails cleanly or reading ends; items are well formed;
 * the appended message reads back; seqs increase; a spool this code
 * closed opens again with nothing left to send.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "spot/err.h"
#include "spot/spool.h"
#include "fuzz.h"
#include "fuzz_util.h"

#define REC_HDR 16u

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Makes every record that fits valid, seqs from first; returns how many. */
static uint64_t fix_records(unsigned char *b, size_t n, uint64_t first)
{
    size_t off = 0;
    uint64_t k = 0;
    while (off + REC_HDR + 4 <= n) {
        unsigned char *h = b + off;
        uint64_t len = le32(h) % 4096;
        if (len < 4)
            len = 4;
        if (len > n - off - REC_HDR)
            break;
        put32(h, (uint32_t)len);
        put64(h + 8, first + k);
        unsigned char *body = h + REC_HDR;
        body[0] %= 3;
        size_t tlen = (size_t)(body[2] | body[3] << 8) % (len - 3);
        body[2] = (unsigned char)tlen;
        body[3] = (unsigned char)(tlen >> 8);
        uLong c = crc32_z(crc32_z(0L, Z_NULL, 0), h + 8, 8 + (size_t)len);
        put32(h + 4, (uint32_t)c);
        off += REC_HDR + (size_t)len;
        k++;
    }
    return k;
}

static const uint8_t *take(const uint8_t **p, size_t *left, size_t *len)
{
    size_t n = 0;
    if (*left >= 2) {
        n = (size_t)((*p)[0] | (*p)[1] << 8);
        *p += 2;
        *left -= 2;
    }
    if (n > *left)
        n = *left;
    const uint8_t *chunk = *p;
    *p += n;
    *left -= n;
    *len = n;
    return chunk;
}

static void write_seg(const char *dir, uint64_t first, const uint8_t *bytes,
                      size_t n, int fix, uint64_t *n_fixed)
{
    unsigned char *b = malloc(n ? n : 1);
    FUZZ_ASSERT(b != NULL);
    memcpy(b, bytes, n);
    *n_fixed = fix ? fix_records(b, n, first) : 0;
    char path[1024];
    snprintf(path, sizeof path, "%s/%020" PRIu64 ".seg", dir, first);
    FUZZ_ASSERT(fuzz_write_file(path, b, n) == 0);
    free(b);
}

/* Reads what is queued; returns how many, checking each item. */
static uint64_t drain(struct spool *s, uint64_t bound, uint64_t *last_seq)
{
    uint64_t n = 0;
    for (;;) {
        struct spool_item it;
        int rc = spool_next(s, &it);
        if (rc != SPOT_OK) {
            FUZZ_ASSERT(rc == SPOT_EAGAIN || rc == SPOT_EIO);
            return n;
        }
        FUZZ_ASSERT(it.qos >= 0 && it.qos <= 2);
        FUZZ_ASSERT(it.topic != NULL || it.topic_len == 0);
        FUZZ_ASSERT(n == 0 || it.seq > *last_seq);
        *last_seq = it.seq;
        n++;
        FUZZ_ASSERT(n <= bound); /* a reader that never ends */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[512];
    fuzz_quiet_logs();
    snprintf(dir, sizeof dir, "%s/s", fuzz_scratch_dir());
    fuzz_rm_rf(dir);
    FUZZ_ASSERT(mkdir(dir, 0700) == 0);

    const uint8_t *p = data;
    size_t left = size;
    unsigned flags = 0;
    uint64_t first2 = 0;
    if (left >= 9) {
        flags = p[0];
        for (int i = 0; i < 8; i++)
            first2 |= (uint64_t)p[1 + i] << (8 * i);
        p += 9;
        left -= 9;
    }
    size_t la, lb;
    const uint8_t *a = take(&p, &left, &la);
    const uint8_t *b = take(&p, &left, &lb);
    uint64_t fixed_a = 0, fixed_b = 0;
    write_seg(dir, 1, a, la, flags & 0x01, &fixed_a);
    if (flags & 0x02) {
        if (flags & 0x08)
            first2 = 1 + fixed_a;
        write_seg(dir, first2, b, lb, flags & 0x01, &fixed_b);
    }
    if (flags & 0x04) {
        char path[1024];
        snprintf(path, sizeof path, "%s/head", dir);
        FUZZ_ASSERT(fuzz_write_file(path, p, left) == 0);
    }

    struct spool_opts o = {
        .dir = dir, .max_bytes = 1u << 20, .segment_bytes = 0, .fsync_ms = -1};
    struct spool *s;
    int rc = spool_open(&s, &o);
    if (rc != SPOT_OK) {
        FUZZ_ASSERT(rc == SPOT_EIO);
        return 0;
    }
    uint64_t bound = size + 2, last = 0;
    drain(s, bound, &last);
    static const char topic[] = "/Kaqo/dev1_AQO/attrs";
    static const char payload[] = "{\"fuzz\":1}";
    rc = spool_append(s, topic, 1, false, payload, sizeof payload - 1);
    FUZZ_ASSERT(rc == SPOT_OK);
    struct spool_item it;
    rc = spool_next(s, &it);
    FUZZ_ASSERT(rc == SPOT_OK);
    FUZZ_ASSERT(it.topic_len == sizeof topic - 1 &&
                memcmp(it.topic, topic, it.topic_len) == 0);
    FUZZ_ASSERT(it.payload_len == sizeof payload - 1 &&
                memcmp(it.payload, payload, it.payload_len) == 0);
    FUZZ_ASSERT(it.qos == 1 && !it.retain);
    spool_release(s, it.seq + 1);
    struct spool_stats st;
    spool_get_stats(s, &st);
    FUZZ_ASSERT(st.pending == 0);
    spool_close(s);

    FUZZ_ASSERT(spool_open(&s, &o) == SPOT_OK);
    FUZZ_ASSERT(drain(s, bound, &last) == 0);
    spool_close(s);
    return 0;
}
