/*
 * Fuzz target: the journal's recovery and record reader
 * (src/agent/journal.c) on corrupted files. Each input becomes a journal
 * directory holding one or two segment files and maybe a checkpoint; the
 * journal is opened, a cursor reads everything (committing as it goes),
 * a record is appended and read back, and the journal is closed and
 * opened again.
 *
 * Input: flags byte, u16 length + bytes of segment 1, u16 length + bytes
 * of segment 2, then the checkpoint. Flags: 0x01 fix the records' CRCs and
 * sequence numbers (so the fuzzer gets past the checksums), 0x02 give
 * segment 1 a valid header, 0x04 write segment 2, 0x08 give it a valid
 * header, 0x10 write the checkpoint, 0x20 make it a well-formed
 * checkpoint from three numbers in the bytes.
 *
 * Invariants: open either fails cleanly or gives a journal whose reader
 * terminates; what a cursor commits is accepted; the appended record reads
 * back intact; a journal this code closed opens again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "spot/err.h"
#include "fuzz.h"
#include "fuzz_util.h"
#include "journal.h"

#define SEG_HDR 24u
#define REC_HDR 32u

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
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

static uint32_t crc(uint32_t c, const unsigned char *p, size_t n)
{
    return n ? (uint32_t)crc32_z(c, p, n) : c;
}

/* Rewrites the CRC and seq of each record that fits, from seq `first`.
 * Returns the number of records fixed. */
static uint64_t fix_records(unsigned char *b, size_t n, uint64_t first)
{
    size_t off = SEG_HDR;
    uint64_t k = 0;
    while (off + REC_HDR <= n) {
        unsigned char *h = b + off;
        put32(h, 0x314c4a53u);
        h[26] = h[27] = 0;
        uint64_t len = REC_HDR + (uint64_t)(h[24] | h[25] << 8) + le32(h + 28);
        if (len > n - off)
            break;
        put64(h + 8, first + k);
        uint32_t c = crc(0, h + 8, REC_HDR - 8);
        c = crc(c, h + REC_HDR, (size_t)(len - REC_HDR));
        put32(h + 4, c);
        off += (size_t)len;
        k++;
    }
    return k;
}

static void seg_header(unsigned char *b, uint64_t first_seq)
{
    memcpy(b, "SPOTJSEG", 8);
    put64(b + 8, first_seq);
    put32(b + 16, 1);
    put32(b + 20, crc(0, b, 20));
}

/* Takes a u16-length-prefixed chunk off the input. */
static const uint8_t *take(const uint8_t **p, size_t *left, size_t *len)
{
    size_t n = 0;
    if (*left >= 2) {
        n = (size_t)((*p)[0] | (*p)[1] << 8);
        *p += 2;
        *left -= 2;
    } else {
        *p += *left;
        *left = 0;
    }
    if (n > *left)
        n = *left;
    const uint8_t *chunk = *p;
    *p += n;
    *left -= n;
    *len = n;
    return chunk;
}

static int write_seg(const char *dir, int num, const uint8_t *bytes, size_t n,
                     int valid_hdr, int fix, uint64_t first_seq,
                     uint64_t *n_fixed)
{
    size_t len = n + (valid_hdr ? SEG_HDR : 0);
    unsigned char *b = malloc(len ? len : 1);
    FUZZ_ASSERT(b != NULL);
    if (valid_hdr)
        seg_header(b, first_seq);
    memcpy(b + (valid_hdr ? SEG_HDR : 0), bytes, n);
    *n_fixed = fix ? fix_records(b, len, first_seq) : 0;
    char path[1024];
    snprintf(path, sizeof path, "%s/seg-%020d.log", dir, num);
    int rc = fuzz_write_file(path, b, len);
    free(b);
    return rc;
}

static void write_ckpt(const char *dir, const uint8_t *bytes, size_t n,
                       int well_formed)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/checkpoint.pg", dir);
    if (!well_formed) {
        FUZZ_ASSERT(fuzz_write_file(path, bytes, n) == 0);
        return;
    }
    unsigned char nums[24] = {0};
    memcpy(nums, bytes, n < sizeof nums ? n : sizeof nums);
    char body[256];
    int len =
        snprintf(body, sizeof body,
                 "spotagent journal checkpoint v1\nseq %" PRIu64
                 "\nsegment %" PRIu64 "\noffset %" PRIu64 "\n",
                 le64(nums) % 64, le64(nums + 8) % 4, le64(nums + 16) % 8192);
    uint32_t c = crc(0, (const unsigned char *)body, (size_t)len);
    len += snprintf(body + len, sizeof body - (size_t)len,
                    "crc %08" PRIx32 "\n", c);
    FUZZ_ASSERT(fuzz_write_file(path, body, (size_t)len) == 0);
}

/* Reads everything, committing each record; returns the count. */
static uint64_t drain(struct journal_cursor *c, uint64_t bound)
{
    uint64_t n = 0;
    for (;;) {
        struct journal_entry e;
        int rc = journal_cursor_next(c, 0, &e);
        if (rc != SPOT_OK) {
            FUZZ_ASSERT(rc == SPOT_EAGAIN || rc == SPOT_ECORRUPT ||
                        rc == SPOT_EIO);
            return n;
        }
        FUZZ_ASSERT(e.topic_len <= 65535);
        FUZZ_ASSERT(journal_cursor_commit(c, e.next) == SPOT_OK);
        n++;
        FUZZ_ASSERT(n <= bound); /* a reader that never ends */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[512];
    fuzz_quiet_logs();
    snprintf(dir, sizeof dir, "%s/j", fuzz_scratch_dir());
    fuzz_rm_rf(dir);
    FUZZ_ASSERT(mkdir(dir, 0700) == 0);

    const uint8_t *p = data;
    size_t left = size;
    unsigned flags = 0;
    if (left > 0) {
        flags = p[0];
        p++;
        left--;
    }
    size_t la, lb;
    const uint8_t *a = take(&p, &left, &la);
    const uint8_t *b = take(&p, &left, &lb);
    uint64_t fixed_a = 0, fixed_b = 0;
    FUZZ_ASSERT(
        write_seg(dir, 1, a, la, flags & 0x02, flags & 0x01, 0, &fixed_a) == 0);
    if (flags & 0x04)
        FUZZ_ASSERT(write_seg(dir, 2, b, lb, flags & 0x08, flags & 0x01,
                              fixed_a, &fixed_b) == 0);
    if (flags & 0x10)
        write_ckpt(dir, p, left, flags & 0x20);

    struct journal_options jo = {
        .dir = dir,
        .fsync_interval_ms = 0,
        .max_bytes = 1u << 30,
        .segment_bytes = 4096,
    };
    struct journal *j;
    int rc = journal_open(&j, &jo);
    if (rc != SPOT_OK) {
        FUZZ_ASSERT(rc == SPOT_ECORRUPT || rc == SPOT_EIO || rc == SPOT_EFULL);
        return 0;
    }
    uint64_t bound = size + 2;
    struct journal_cursor *c;
    FUZZ_ASSERT(journal_cursor_open(j, "pg", &c) == SPOT_OK);
    uint64_t first = drain(c, bound);
    static const char topic[] = "/Kaqo/dev1_AQO/attrs";
    static const char payload[] = "{\"fuzz\":1}";
    rc = journal_append(j, topic, sizeof topic - 1, payload, sizeof payload - 1,
                        42);
    FUZZ_ASSERT(rc == SPOT_OK);
    struct journal_entry e;
    rc = journal_cursor_next(c, 0, &e);
    FUZZ_ASSERT(rc == SPOT_OK);
    FUZZ_ASSERT(e.topic_len == sizeof topic - 1 &&
                memcmp(e.topic, topic, e.topic_len) == 0);
    FUZZ_ASSERT(e.payload_len == sizeof payload - 1 &&
                memcmp(e.payload, payload, e.payload_len) == 0);
    FUZZ_ASSERT(e.received_us == 42);
    FUZZ_ASSERT(journal_cursor_commit(c, e.next) == SPOT_OK);
    journal_cursor_close(c);
    journal_close(j);

    /* what this code left behind opens again, and nothing new is there */
    rc = journal_open(&j, &jo);
    FUZZ_ASSERT(rc == SPOT_OK);
    FUZZ_ASSERT(journal_cursor_open(j, "pg", &c) == SPOT_OK);
    uint64_t again = drain(c, bound);
    FUZZ_ASSERT(again <= first);
    journal_cursor_close(c);
    journal_close(j);
    return 0;
}
