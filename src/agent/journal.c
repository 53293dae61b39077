/*
 * The crash-safe append-only journal between MQTT ingress and the sinks
 * (API: journal.h; design: docs/internals/journal.md).
 *
 * Files in the journal directory: JOURNAL_ID, segments seg-<20 digits>.log
 * and one checkpoint.<name> per cursor. A segment starts with a 24-byte
 * header naming the seq of its first record; records follow, each a 32-byte
 * header (magic, CRC-32, seq, receive time, lengths), the topic and the
 * payload, written with one writev() to an O_APPEND descriptor.
 *
 * Threads and locks. One mutex (mu) guards the segment list, the published
 * end of the active segment, the cursor registry and the flags; bytes,
 * next_seq and full are atomics updated under mu so the const getters read
 * them without it. The appender owns the w_* fields: it writes a record
 * without holding mu, then publishes it under mu (readers never look past
 * the published end, so they never see a half-written record). A flusher
 * thread fdatasyncs a dup() of the active descriptor every fsync interval.
 * Each cursor has its own descriptor and read buffer, touched only by the
 * thread that owns the cursor; its committed position lives in the registry
 * under mu, because the getters may run on any thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "spot/err.h"
#include "spot/limits.h"
#include "spot/log.h"
#include "journal.h"

#define MOD "journal"

/* On-disk format. */
#define SEG_MAGIC     "SPOTJSEG"
#define SEG_VERSION   1u
#define SEG_HDR       24u         /* magic[8] first_seq u64 ver u32 crc u32 */
#define REC_MAGIC     0x314c4a53u /* "SJL1" as little-endian bytes */
#define REC_HDR       32u         /* see rec_encode() */
#define REC_MAX_TOPIC 65535u
#define REC_MAX_PAYLD (1u << 31)

/* Caps of this module (kept here: nothing outside the journal uses them). */
#define MAX_CURSORS   32     /* checkpoint files a journal directory holds */
#define MAX_NAME      32     /* cursor name length */
#define READ_CHUNK    65536u /* read-ahead of cursors and of the open scan */
#define MIN_SEGMENT   64u    /* smallest segment_bytes accepted */
#define GC_BATCH      64     /* segments unlinked per lock round */
#define CKPT_MAX_SIZE 512    /* a checkpoint file is ~100 bytes */

struct seg {
    uint64_t num;
    uint64_t first_seq; /* seq of its first record (or of the next one) */
    uint64_t size;      /* file size; for the active one: published end */
};

/* A cursor that has ever been opened here: one checkpoint file. */
struct reg {
    char name[MAX_NAME + 1];
    struct journal_pos committed;
    bool open;
    bool rewrite; /* open-time repair: write the checkpoint back */
};

struct rbuf {
    unsigned char *p;
    size_t cap;
    size_t len;
    uint64_t off; /* file offset of p[0] */
};

struct journal {
    char *dir;
    int dirfd; /* also holds the flock() excluding other processes */
    char id[33];
    unsigned fsync_ms;
    uint64_t max_bytes;
    uint64_t seg_bytes;

    pthread_mutex_t append_mu; /* serialises appenders (ingress, sinks'
                                  dead letters) */
    pthread_mutex_t mu;
    pthread_cond_t data_cv;  /* a record was published, a roll, shutdown */
    pthread_cond_t space_cv; /* segments deleted, a commit, shutdown */
    pthread_cond_t flush_cv; /* the flusher should stop */

    /* under mu */
    struct seg *segs; /* ascending; the last one is the active segment */
    size_t nsegs, segs_cap;
    int active_fd; /* the appender's descriptor, for dup() by syncers */
    bool dirty;    /* appended since the last fdatasync */
    bool shutdown;
    bool stop_flusher;
    struct reg regs[MAX_CURSORS];
    size_t nregs;
    unsigned open_cursors;
    uint64_t corrupt_skips;

    /* written under mu, read anywhere */
    _Atomic uint64_t bytes;
    _Atomic uint64_t next_seq;
    atomic_int full;

    /* the appender's own (and open/close, when no other thread runs) */
    int w_fd;
    uint64_t w_seg;
    uint64_t w_size;
    bool w_broken;
    int w_errno;        /* errno of the last failed append */
    atomic_int failing; /* 1 from a failed append to the next good one */

    pthread_t flusher;
    bool flusher_started;
    bool sync_init;
};

struct journal_cursor {
    struct journal *j;
    struct reg *reg; /* committed position: reg->committed, under j->mu */
    struct journal_pos pos; /* read position */
    int fd;
    uint64_t fd_seg;
    struct rbuf rb;
};

struct rec_hdr {
    uint32_t crc;
    uint64_t seq;
    int64_t received_us;
    uint16_t topic_len;
    uint32_t payload_len;
};

/* ---- little helpers --------------------------------------------------- */

static void put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* crc32_z() treats a NULL buffer as "return the initial value". */
static uint32_t crc_add(uint32_t crc, const void *p, size_t n)
{
    if (n == 0)
        return crc;
    return (uint32_t)crc32_z(crc, p, n);
}

static void seg_name(char *buf, size_t n, uint64_t num)
{
    snprintf(buf, n, "seg-%020" PRIu64 ".log", num);
}

/* "seg-" 20 digits ".log" */
static bool seg_parse_name(const char *s, uint64_t *num)
{
    if (strlen(s) != 28 || strncmp(s, "seg-", 4) != 0 ||
        strcmp(s + 24, ".log") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *num = v;
    return true;
}

static bool name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return false;
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static int write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes every iovec, continuing after short writes. */
static int writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0 && iov->iov_len == 0) {
        iov++;
        n--;
    }
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        size_t done = (size_t)w;
        while (n > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (unsigned char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

/* Reads up to len bytes at off; fewer only at end of file. -1 on error. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* Makes bytes [off, off + need) of fd available in rb, reading ahead up to
 * limit (never past it: beyond may be a record still being written). */
static int rbuf_get(struct rbuf *rb, int fd, uint64_t off, size_t need,
                    uint64_t limit, const unsigned char **out)
{
    if (rb->len > 0 && off >= rb->off && off - rb->off <= rb->len &&
        need <= rb->len - (off - rb->off)) {
        *out = rb->p + (off - rb->off);
        return SPOT_OK;
    }
    if (off > limit || need > limit - off)
        return SPOT_ECORRUPT;
    size_t want = need > READ_CHUNK ? need : READ_CHUNK;
    if (want > limit - off)
        want = (size_t)(limit - off);
    /* grow for a big record; give the memory back after one */
    size_t newcap = want > READ_CHUNK ? want : READ_CHUNK;
    if (rb->cap < want || (rb->cap > 4 * READ_CHUNK && newcap < rb->cap)) {
        free(rb->p);
        rb->p = malloc(newcap);
        rb->cap = rb->p ? newcap : 0;
        rb->len = 0;
        if (!rb->p)
            return SPOT_ENOMEM;
    }
    rb->len = 0;
    ssize_t n = pread_full(fd, rb->p, want, off);
    if (n < 0)
        return SPOT_EIO;
    rb->off = off;
    rb->len = (size_t)n;
    if ((size_t)n < need)
        return SPOT_ECORRUPT; /* the file is shorter than it was */
    *out = rb->p;
    return SPOT_OK;
}

/* ---- formats ---------------------------------------------------------- */

static void seg_hdr_encode(unsigned char h[SEG_HDR], uint64_t first_seq)
{
    memcpy(h, SEG_MAGIC, 8);
    put_le64(h + 8, first_seq);
    put_le32(h + 16, SEG_VERSION);
    put_le32(h + 20, crc_add(0, h, 20));
}

static int seg_hdr_decode(const unsigned char h[SEG_HDR], uint64_t *first_seq)
{
    if (memcmp(h, SEG_MAGIC, 8) != 0 || get_le32(h + 16) != SEG_VERSION ||
        get_le32(h + 20) != crc_add(0, h, 20))
        return SPOT_ECORRUPT;
    *first_seq = get_le64(h + 8);
    return SPOT_OK;
}

/* Record header: magic u32, crc u32, seq u64, received_us i64, topic_len
 * u16, reserved u16 (0), payload_len u32, all little-endian. The CRC covers
 * bytes 8..31 of the header, the topic and the payload. */
static void rec_encode(unsigned char h[REC_HDR], uint64_t seq, int64_t us,
                       const void *topic, size_t topic_len, const void *payload,
                       size_t payload_len)
{
    put_le32(h, REC_MAGIC);
    put_le64(h + 8, seq);
    put_le64(h + 16, (uint64_t)us);
    put_le16(h + 24, (uint16_t)topic_len);
    put_le16(h + 26, 0);
    put_le32(h + 28, (uint32_t)payload_len);
    uint32_t crc = crc_add(0, h + 8, REC_HDR - 8);
    crc = crc_add(crc, topic, topic_len);
    crc = crc_add(crc, payload, payload_len);
    put_le32(h + 4, crc);
}

static int rec_decode(const unsigned char h[REC_HDR], struct rec_hdr *r)
{
    if (get_le32(h) != REC_MAGIC || get_le16(h + 26) != 0)
        return SPOT_ECORRUPT;
    r->crc = get_le32(h + 4);
    r->seq = get_le64(h + 8);
    r->received_us = (int64_t)get_le64(h + 16);
    r->topic_len = get_le16(h + 24);
    r->payload_len = get_le32(h + 28);
    if (r->payload_len > REC_MAX_PAYLD)
        return SPOT_ECORRUPT;
    return SPOT_OK;
}

static uint64_t rec_len(const struct rec_hdr *r)
{
    return (uint64_t)REC_HDR + r->topic_len + r->payload_len;
}

/* ---- files ------------------------------------------------------------ */

/* Replaces dir/name atomically and durably: temp file, fdatasync, rename,
 * directory fsync. */
static int file_replace(struct journal *j, const char *name, const void *data,
                        size_t len)
{
    char tmp[96];
    int err;
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int fd =
        openat(j->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        goto fail;
    if (write_all(fd, data, len) != 0 || fdatasync(fd) != 0) {
        err = errno;
        close(fd);
        errno = err;
        goto fail;
    }
    if (close(fd) != 0 || renameat(j->dirfd, tmp, j->dirfd, name) != 0 ||
        fsync(j->dirfd) != 0)
        goto fail;
    return SPOT_OK;
fail:
    err = errno;
    unlinkat(j->dirfd, tmp, 0);
    log_msg(LOG_ERROR, MOD, "writing %s/%s failed: %s", j->dir, name,
            strerror(err));
    return SPOT_EIO;
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return SPOT_EINVAL;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST) {
            log_msg(LOG_ERROR, MOD, "creating directory %s failed: %s", buf,
                    strerror(errno));
            return SPOT_EIO;
        }
        buf[i] = saved;
    }
    return SPOT_OK;
}

static int id_load_or_create(struct journal *j)
{
    char buf[64];
    int fd = openat(j->dirfd, "JOURNAL_ID", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = pread_full(fd, buf, sizeof buf, 0);
        close(fd);
        bool ok = n == 32 || (n == 33 && buf[32] == '\n');
        for (int i = 0; ok && i < 32; i++)
            ok = (buf[i] >= '0' && buf[i] <= '9') ||
                 (buf[i] >= 'a' && buf[i] <= 'f');
        if (!ok) {
            log_msg(LOG_ERROR, MOD, "%s/JOURNAL_ID is not 32 hex characters",
                    j->dir);
            return SPOT_ECORRUPT;
        }
        memcpy(j->id, buf, 32);
        j->id[32] = '\0';
        return SPOT_OK;
    }
    if (errno != ENOENT) {
        log_msg(LOG_ERROR, MOD, "reading %s/JOURNAL_ID failed: %s", j->dir,
                strerror(errno));
        return SPOT_EIO;
    }
    unsigned char rnd[16];
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || pread_full(fd, rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        log_msg(LOG_ERROR, MOD, "reading /dev/urandom failed: %s",
                strerror(err));
        return SPOT_EIO;
    }
    close(fd);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        j->id[2 * i] = hex[rnd[i] >> 4];
        j->id[2 * i + 1] = hex[rnd[i] & 15];
    }
    j->id[32] = '\0';
    memcpy(buf, j->id, 32);
    buf[32] = '\n';
    return file_replace(j, "JOURNAL_ID", buf, 33);
}

/* Checkpoint file: four text lines and a CRC of them. */
static int ckpt_write(struct journal *j, const char *name,
                      struct journal_pos pos)
{
    char fname[64], body[256];
    int n = snprintf(body, sizeof body,
                     "spotagent journal checkpoint v1\nseq %" PRIu64
                     "\nsegment %" PRIu64 "\noffset %" PRIu64 "\n",
                     pos.seq, pos.segment, pos.offset);
    uint32_t crc = crc_add(0, body, (size_t)n);
    n +=
        snprintf(body + n, sizeof body - (size_t)n, "crc %08" PRIx32 "\n", crc);
    snprintf(fname, sizeof fname, "checkpoint.%s", name);
    return file_replace(j, fname, body, (size_t)n);
}

static int ckpt_read(struct journal *j, const char *fname,
                     struct journal_pos *pos)
{
    char buf[CKPT_MAX_SIZE + 1];
    int fd = openat(j->dirfd, fname, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SPOT_EIO;
    ssize_t n = pread_full(fd, buf, CKPT_MAX_SIZE, 0);
    close(fd);
    if (n < 0)
        return SPOT_EIO;
    buf[n] = '\0';
    char *c = strstr(buf, "\ncrc ");
    if (!c)
        return SPOT_ECORRUPT;
    size_t body = (size_t)(c + 1 - buf);
    char *end;
    unsigned long crc = strtoul(c + 5, &end, 16);
    if (end != c + 13 || *end != '\n' || crc != crc_add(0, buf, body))
        return SPOT_ECORRUPT;
    int used = 0;
    if (sscanf(buf,
               "spotagent journal checkpoint v1\nseq %" SCNu64
               "\nsegment %" SCNu64 "\noffset %" SCNu64 "\n%n",
               &pos->seq, &pos->segment, &pos->offset, &used) != 3 ||
        (size_t)used != body)
        return SPOT_ECORRUPT;
    return SPOT_OK;
}

/* ---- segments (callers hold mu, or run inside open) ------------------- */

static struct seg *seg_find(struct journal *j, uint64_t num)
{
    size_t lo = 0, hi = j->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (j->segs[mid].num < num)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < j->nsegs && j->segs[lo].num == num ? &j->segs[lo] : NULL;
}

/* The first segment numbered above num, or NULL. */
static struct seg *seg_after(struct journal *j, uint64_t num)
{
    for (size_t i = 0; i < j->nsegs; i++)
        if (j->segs[i].num > num)
            return &j->segs[i];
    return NULL;
}

static bool seg_is_active(const struct journal *j, const struct seg *s)
{
    return s == &j->segs[j->nsegs - 1];
}

static int segs_reserve(struct journal *j, size_t n)
{
    if (n <= j->segs_cap)
        return SPOT_OK;
    size_t cap = j->segs_cap ? j->segs_cap * 2 : 16;
    while (cap < n)
        cap *= 2;
    struct seg *p = realloc(j->segs, cap * sizeof *p);
    if (!p)
        return SPOT_ENOMEM;
    j->segs = p;
    j->segs_cap = cap;
    return SPOT_OK;
}

static struct journal_pos pos_oldest(const struct journal *j)
{
    struct journal_pos p = {j->segs[0].first_seq, j->segs[0].num, SEG_HDR};
    return p;
}

static struct journal_pos pos_end(const struct journal *j)
{
    const struct seg *s = &j->segs[j->nsegs - 1];
    struct journal_pos p = {atomic_load(&j->next_seq), s->num, s->size};
    return p;
}

/* Whether pos is a record boundary this journal handed out (or could):
 * the start of a record carrying pos.seq, or the end of a segment. A
 * position at the end of a sealed segment is rewritten as the start of the
 * next one. With `read_by_cursor` the position is one a cursor reached by
 * reading, so the record that starts there is not read to prove it: that
 * record may be the corrupt one the cursor is about to skip, and the
 * position before it is still good. Called with mu held, or inside open. */
static int pos_check_as(struct journal *j, struct journal_pos *pos,
                        bool read_by_cursor)
{
    struct seg *s = seg_find(j, pos->segment);
    if (!s || pos->offset < SEG_HDR || pos->offset > s->size)
        return SPOT_EINVAL;
    bool active = seg_is_active(j, s);
    if (pos->offset == SEG_HDR && pos->seq != s->first_seq)
        return SPOT_EINVAL;
    if (pos->offset == s->size) {
        if (active)
            return pos->seq == atomic_load(&j->next_seq) ? SPOT_OK
                                                         : SPOT_EINVAL;
        if (pos->seq != s[1].first_seq)
            return SPOT_EINVAL;
        pos->segment = s[1].num;
        pos->offset = SEG_HDR;
        return SPOT_OK;
    }
    if (read_by_cursor)
        return SPOT_OK;
    char name[64];
    seg_name(name, sizeof name, s->num);
    int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SPOT_EIO;
    unsigned char h[REC_HDR];
    ssize_t n = pread_full(fd, h, REC_HDR, pos->offset);
    close(fd);
    struct rec_hdr r;
    if (n != (ssize_t)REC_HDR || rec_decode(h, &r) != SPOT_OK ||
        r.seq != pos->seq || rec_len(&r) > s->size - pos->offset)
        return SPOT_EINVAL;
    return SPOT_OK;
}

static int pos_check(struct journal *j, struct journal_pos *pos)
{
    return pos_check_as(j, pos, false);
}

static uint64_t min_committed_seq(const struct journal *j)
{
    uint64_t m = UINT64_MAX;
    for (size_t i = 0; i < j->nregs; i++)
        if (j->regs[i].committed.seq < m)
            m = j->regs[i].committed.seq;
    return m;
}

/* Deletes every segment (never the active one) whose records are all
 * before the checkpoint of every cursor ever registered. Any thread. */
static void journal_gc(struct journal *j)
{
    for (;;) {
        uint64_t nums[GC_BATCH];
        size_t n = 0;
        pthread_mutex_lock(&j->mu);
        if (j->nregs > 0) {
            uint64_t min = min_committed_seq(j);
            uint64_t freed = 0;
            while (n < GC_BATCH && n + 1 < j->nsegs &&
                   j->segs[n + 1].first_seq <= min) {
                nums[n] = j->segs[n].num;
                freed += j->segs[n].size;
                n++;
            }
            if (n > 0) {
                memmove(j->segs, j->segs + n, (j->nsegs - n) * sizeof *j->segs);
                j->nsegs -= n;
                atomic_store(&j->bytes, atomic_load(&j->bytes) - freed);
                pthread_cond_broadcast(&j->space_cv);
            }
        }
        pthread_mutex_unlock(&j->mu);
        for (size_t i = 0; i < n; i++) {
            char name[64];
            seg_name(name, sizeof name, nums[i]);
            if (unlinkat(j->dirfd, name, 0) != 0 && errno != ENOENT)
                log_msg(LOG_WARN, MOD, "removing %s/%s failed: %s", j->dir,
                        name, strerror(errno));
            else
                log_msg(LOG_DEBUG, MOD,
                        "removed %s/%s: every cursor is past it", j->dir, name);
        }
        if (n < GC_BATCH)
            return;
    }
}

/* Seals the active segment and starts the next one, whose first record
 * will have seq first_seq. Appender thread (or open) only. */
static int seg_roll(struct journal *j, uint64_t first_seq)
{
    if (j->w_fd >= 0 && j->fsync_ms != 0 && fdatasync(j->w_fd) != 0) {
        log_msg(LOG_ERROR, MOD, "fdatasync of segment %" PRIu64 " failed: %s",
                j->w_seg, strerror(errno));
        return SPOT_EIO;
    }
    pthread_mutex_lock(&j->mu);
    int rc = segs_reserve(j, j->nsegs + 1);
    pthread_mutex_unlock(&j->mu);
    if (rc != SPOT_OK)
        return rc;

    uint64_t num = j->w_seg + 1;
    char name[64];
    unsigned char h[SEG_HDR];
    seg_name(name, sizeof name, num);
    seg_hdr_encode(h, first_seq);
    rc = file_replace(j, name, h, SEG_HDR);
    if (rc != SPOT_OK)
        return rc;
    int fd = openat(j->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        log_msg(LOG_ERROR, MOD, "opening %s/%s failed: %s", j->dir, name,
                strerror(errno));
        unlinkat(j->dirfd, name, 0);
        return SPOT_EIO;
    }

    pthread_mutex_lock(&j->mu);
    struct seg s = {num, first_seq, SEG_HDR};
    j->segs[j->nsegs++] = s;
    j->active_fd = fd;
    j->dirty = false;
    atomic_store(&j->bytes, atomic_load(&j->bytes) + SEG_HDR);
    atomic_store(&j->next_seq, first_seq);
    pthread_cond_broadcast(&j->data_cv);
    pthread_mutex_unlock(&j->mu);

    if (j->w_fd >= 0)
        close(j->w_fd); /* a syncer may still hold a dup of it: fine */
    j->w_fd = fd;
    j->w_seg = num;
    j->w_size = SEG_HDR;
    log_msg(LOG_DEBUG, MOD, "started %s/%s at seq %" PRIu64, j->dir, name,
            first_seq);
    return SPOT_OK;
}

/* ---- open ------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the directory: segment numbers (sorted), checkpoint names; removes
 * temp files left by a crash. */
static int dir_list(struct journal *j, uint64_t **nums_out, size_t *n_out)
{
    int rc = SPOT_OK;
    uint64_t *nums = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(j->dir);
    if (!d) {
        log_msg(LOG_ERROR, MOD, "listing %s failed: %s", j->dir,
                strerror(errno));
        return SPOT_EIO;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *s = e->d_name;
        uint64_t num;
        if (ends_with(s, ".tmp")) {
            unlinkat(j->dirfd, s, 0);
        } else if (seg_parse_name(s, &num)) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                uint64_t *p = realloc(nums, ncap * sizeof *p);
                if (!p) {
                    rc = SPOT_ENOMEM;
                    goto out;
                }
                nums = p;
                cap = ncap;
            }
            nums[n++] = num;
        } else if (strncmp(s, "checkpoint.", 11) == 0) {
            if (!name_valid(s + 11)) {
                log_msg(LOG_WARN, MOD, "ignoring %s/%s: not a cursor name",
                        j->dir, s);
                continue;
            }
            if (j->nregs == MAX_CURSORS) {
                log_msg(LOG_ERROR, MOD,
                        "%s holds more than %d checkpoint files", j->dir,
                        MAX_CURSORS);
                rc = SPOT_EFULL;
                goto out;
            }
            struct reg *r = &j->regs[j->nregs++];
            memset(r, 0, sizeof *r);
            snprintf(r->name, sizeof r->name, "%s", s + 11);
        }
    }
    if (n > 1)
        qsort(nums, n, sizeof *nums, cmp_u64);
out:
    closedir(d);
    if (rc != SPOT_OK) {
        free(nums);
        return rc;
    }
    *nums_out = nums;
    *n_out = n;
    return SPOT_OK;
}

/* Reads every segment header; drops a last segment whose creation was torn
 * (only possible if the disk lost an fsync'd write). */
static int segs_load(struct journal *j, const uint64_t *nums, size_t n)
{
    int rc = segs_reserve(j, n + 1);
    if (rc != SPOT_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char name[64];
        seg_name(name, sizeof name, nums[i]);
        int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
        struct stat st;
        unsigned char h[SEG_HDR];
        if (fd < 0 || fstat(fd, &st) != 0) {
            log_msg(LOG_ERROR, MOD, "opening %s/%s failed: %s", j->dir, name,
                    strerror(errno));
            if (fd >= 0)
                close(fd);
            return SPOT_EIO;
        }
        ssize_t got = pread_full(fd, h, SEG_HDR, 0);
        close(fd);
        uint64_t first = 0;
        if (got != (ssize_t)SEG_HDR || seg_hdr_decode(h, &first) != SPOT_OK) {
            if (i == n - 1 && i > 0 && st.st_size <= (off_t)SEG_HDR) {
                log_msg(LOG_WARN, MOD,
                        "removing %s/%s: its header was torn by a crash",
                        j->dir, name);
                unlinkat(j->dirfd, name, 0);
                continue;
            }
            log_msg(LOG_ERROR, MOD,
                    "%s/%s: bad segment header; move the file away to start",
                    j->dir, name);
            return SPOT_ECORRUPT;
        }
        if (j->nsegs > 0 && first < j->segs[j->nsegs - 1].first_seq) {
            log_msg(LOG_ERROR, MOD,
                    "%s/%s: first seq %" PRIu64 " goes backwards", j->dir, name,
                    first);
            return SPOT_ECORRUPT;
        }
        struct seg s = {nums[i], first, (uint64_t)st.st_size};
        j->segs[j->nsegs++] = s;
        atomic_store(&j->bytes, atomic_load(&j->bytes) + s.size);
    }
    return SPOT_OK;
}

/* Walks the records of the last segment, validating each, and cuts the
 * file at the first torn or invalid one. Sets next_seq. */
static int recover_tail(struct journal *j)
{
    struct seg *s = &j->segs[j->nsegs - 1];
    char name[64];
    seg_name(name, sizeof name, s->num);
    int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_msg(LOG_ERROR, MOD, "opening %s/%s failed: %s", j->dir, name,
                strerror(errno));
        return SPOT_EIO;
    }
    struct rbuf rb = {0};
    int rc = SPOT_OK;
    uint64_t off = SEG_HDR, seq = s->first_seq;
    const char *why = NULL;
    while (off < s->size) {
        const unsigned char *h;
        struct rec_hdr r;
        if (s->size - off < REC_HDR) {
            why = "incomplete record header";
            break;
        }
        rc = rbuf_get(&rb, fd, off, REC_HDR, s->size, &h);
        if (rc == SPOT_OK && rec_decode(h, &r) != SPOT_OK)
            why = "bad record header";
        else if (rc == SPOT_OK && r.seq != seq)
            why = "sequence number out of order";
        else if (rc == SPOT_OK && rec_len(&r) > s->size - off)
            why = "incomplete record";
        if (rc != SPOT_OK || why)
            break;
        uint32_t crc = crc_add(0, h + 8, REC_HDR - 8);
        uint64_t p = off + REC_HDR, left = rec_len(&r) - REC_HDR;
        while (left > 0) {
            size_t chunk = left > READ_CHUNK ? READ_CHUNK : (size_t)left;
            const unsigned char *b;
            rc = rbuf_get(&rb, fd, p, chunk, s->size, &b);
            if (rc != SPOT_OK)
                break;
            crc = crc_add(crc, b, chunk);
            p += chunk;
            left -= chunk;
        }
        if (rc != SPOT_OK)
            break;
        if (crc != r.crc) {
            why = "checksum mismatch";
            break;
        }
        off += rec_len(&r);
        seq++;
    }
    free(rb.p);
    close(fd);
    if (rc == SPOT_ECORRUPT && !why)
        why = "file shrank while scanning";
    else if (rc != SPOT_OK)
        return rc;

    if (off < s->size) {
        log_msg(LOG_WARN, MOD,
                "%s/%s: cut %" PRIu64 " bytes at offset %" PRIu64
                " (%s), left by a crash; journal continues at seq %" PRIu64,
                j->dir, name, s->size - off, off, why, seq);
        if (ftruncate(j->w_fd, (off_t)off) != 0 || fdatasync(j->w_fd) != 0) {
            log_msg(LOG_ERROR, MOD, "truncating %s/%s failed: %s", j->dir, name,
                    strerror(errno));
            return SPOT_EIO;
        }
        atomic_store(&j->bytes, atomic_load(&j->bytes) - (s->size - off));
        s->size = off;
    }
    atomic_store(&j->next_seq, seq);
    j->w_size = s->size;
    return SPOT_OK;
}

/* Loads the checkpoint files and reconciles them with the segments: a
 * checkpoint ahead of the journal (a power cut lost records its sink had
 * already confirmed) moves the journal's seq forward so no seq is reused;
 * one that does not match a record boundary restarts from the oldest
 * record (at least once). Repaired checkpoints are written back. */
static int ckpts_load(struct journal *j)
{
    uint64_t next = atomic_load(&j->next_seq), ahead = 0;
    for (size_t i = 0; i < j->nregs; i++) {
        struct reg *r = &j->regs[i];
        char fname[64];
        snprintf(fname, sizeof fname, "checkpoint.%s", r->name);
        struct journal_pos p;
        int rc = ckpt_read(j, fname, &p);
        if (rc != SPOT_OK) {
            log_msg(LOG_ERROR, MOD,
                    "%s/%s is unreadable (%s); cursor %s restarts from the "
                    "oldest record",
                    j->dir, fname, spot_strerror(rc), r->name);
            r->committed = pos_oldest(j);
            r->rewrite = true;
            continue;
        }
        r->committed = p;
        if (p.seq > next) {
            if (p.seq > ahead)
                ahead = p.seq;
        } else if (p.seq == next) {
            struct journal_pos e = pos_end(j);
            r->rewrite = memcmp(&e, &p, sizeof p) != 0;
            r->committed = e;
        } else if (p.segment < j->segs[0].num || p.seq < j->segs[0].first_seq) {
            if (p.seq != j->segs[0].first_seq)
                log_msg(LOG_WARN, MOD,
                        "cursor %s: checkpoint seq %" PRIu64
                        " is before the oldest segment; records lost",
                        r->name, p.seq);
            r->committed = pos_oldest(j);
            r->rewrite = true;
        } else if (pos_check(j, &r->committed) != SPOT_OK) {
            log_msg(LOG_ERROR, MOD,
                    "cursor %s: checkpoint seq %" PRIu64 " segment %" PRIu64
                    " offset %" PRIu64
                    " matches no record; restarting from the oldest record",
                    r->name, p.seq, p.segment, p.offset);
            r->committed = pos_oldest(j);
            r->rewrite = true;
        }
    }
    if (ahead > 0) {
        log_msg(LOG_WARN, MOD,
                "checkpoints are %" PRIu64 " records ahead of the journal "
                "(a power cut lost records after their sinks confirmed "
                "them); continuing at seq %" PRIu64,
                ahead - next, ahead);
        int rc = seg_roll(j, ahead);
        if (rc != SPOT_OK)
            return rc;
        for (size_t i = 0; i < j->nregs; i++) {
            struct reg *r = &j->regs[i];
            if (r->committed.seq > next) {
                r->committed = pos_end(j);
                r->rewrite = true;
            }
        }
    }
    for (size_t i = 0; i < j->nregs; i++) {
        if (!j->regs[i].rewrite)
            continue;
        j->regs[i].rewrite = false;
        int rc = ckpt_write(j, j->regs[i].name, j->regs[i].committed);
        if (rc != SPOT_OK)
            return rc;
    }
    return SPOT_OK;
}

static void *flusher_main(void *arg)
{
    struct journal *j = arg;
    bool failing = false;
    pthread_mutex_lock(&j->mu);
    while (!j->stop_flusher) {
        struct timespec ts;
        deadline_after(&ts, j->fsync_ms);
        pthread_cond_timedwait(&j->flush_cv, &j->mu, &ts);
        if (j->stop_flusher || !j->dirty)
            continue;
        int fd = fcntl(j->active_fd, F_DUPFD_CLOEXEC, 0);
        j->dirty = false;
        pthread_mutex_unlock(&j->mu);
        int err = 0;
        if (fd < 0 || fdatasync(fd) != 0)
            err = errno;
        if (fd >= 0)
            close(fd);
        if (err && !failing)
            log_msg(LOG_ERROR, MOD, "fdatasync of %s failed: %s", j->dir,
                    strerror(err));
        else if (!err && failing)
            log_msg(LOG_INFO, MOD, "fdatasync of %s works again", j->dir);
        failing = err != 0;
        pthread_mutex_lock(&j->mu);
        if (err)
            j->dirty = true;
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static void journal_free(struct journal *j)
{
    if (j->w_fd >= 0)
        close(j->w_fd);
    if (j->dirfd >= 0)
        close(j->dirfd); /* releases the flock */
    if (j->sync_init) {
        pthread_mutex_destroy(&j->mu);
        pthread_mutex_destroy(&j->append_mu);
        pthread_cond_destroy(&j->data_cv);
        pthread_cond_destroy(&j->space_cv);
        pthread_cond_destroy(&j->flush_cv);
    }
    free(j->segs);
    free(j->dir);
    free(j);
}

static int sync_init(struct journal *j)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return SPOT_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int ok = pthread_mutex_init(&j->mu, NULL) == 0;
    ok = ok && pthread_mutex_init(&j->append_mu, NULL) == 0;
    ok = ok && pthread_cond_init(&j->data_cv, &ca) == 0;
    ok = ok && pthread_cond_init(&j->space_cv, &ca) == 0;
    ok = ok && pthread_cond_init(&j->flush_cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    /* (a partial failure leaks nothing on Linux: these allocate nothing) */
    j->sync_init = ok;
    return ok ? SPOT_OK : SPOT_ENOMEM;
}

int journal_open(struct journal **out, const struct journal_options *opt)
{
    *out = NULL;
    if (!opt || !opt->dir || !*opt->dir ||
        (opt->segment_bytes != 0 && opt->segment_bytes < MIN_SEGMENT))
        return SPOT_EINVAL;
    struct journal *j = calloc(1, sizeof *j);
    if (!j)
        return SPOT_ENOMEM;
    uint64_t *nums = NULL;
    size_t nnums = 0;
    j->dirfd = -1;
    j->w_fd = -1;
    j->active_fd = -1;
    j->fsync_ms = opt->fsync_interval_ms;
    j->max_bytes = opt->max_bytes ? opt->max_bytes
                                  : (uint64_t)SPOT_JOURNAL_DEFAULT_MAX_MB << 20;
    j->seg_bytes =
        opt->segment_bytes ? opt->segment_bytes : SPOT_JOURNAL_SEGMENT_BYTES;
    j->dir = strdup(opt->dir);
    int rc = j->dir ? sync_init(j) : SPOT_ENOMEM;
    if (rc != SPOT_OK)
        goto out;
    if ((rc = mkdir_p(j->dir)) != SPOT_OK)
        goto out;
    j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->dirfd < 0) {
        log_msg(LOG_ERROR, MOD, "opening %s failed: %s", j->dir,
                strerror(errno));
        rc = SPOT_EIO;
        goto out;
    }
    if (flock(j->dirfd, LOCK_EX | LOCK_NB) != 0) {
        log_msg(LOG_ERROR, MOD, "%s is in use by another journal: %s", j->dir,
                strerror(errno));
        rc = SPOT_EIO;
        goto out;
    }
    if ((rc = id_load_or_create(j)) != SPOT_OK ||
        (rc = dir_list(j, &nums, &nnums)) != SPOT_OK ||
        (rc = segs_load(j, nums, nnums)) != SPOT_OK)
        goto out;
    if (j->nsegs == 0) {
        j->w_seg = 0; /* the first segment is number 1, first seq 0 */
        if ((rc = seg_roll(j, 0)) != SPOT_OK)
            goto out;
    } else {
        struct seg *last = &j->segs[j->nsegs - 1];
        char name[64];
        seg_name(name, sizeof name, last->num);
        j->w_fd = openat(j->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (j->w_fd < 0) {
            log_msg(LOG_ERROR, MOD, "opening %s/%s failed: %s", j->dir, name,
                    strerror(errno));
            rc = SPOT_EIO;
            goto out;
        }
        j->w_seg = last->num;
        j->active_fd = j->w_fd;
        if ((rc = recover_tail(j)) != SPOT_OK)
            goto out;
    }
    if ((rc = ckpts_load(j)) != SPOT_OK)
        goto out;
    journal_gc(j);
    if (j->fsync_ms > 0) {
        if (pthread_create(&j->flusher, NULL, flusher_main, j) != 0) {
            rc = SPOT_ENOMEM;
            goto out;
        }
        j->flusher_started = true;
    }
    log_msg(LOG_INFO, MOD,
            "opened %s: id %s, %zu segment(s), %" PRIu64 " bytes, next seq "
            "%" PRIu64 ", %zu cursor checkpoint(s)",
            j->dir, j->id, j->nsegs, atomic_load(&j->bytes),
            atomic_load(&j->next_seq), j->nregs);
    *out = j;
out:
    free(nums);
    if (rc != SPOT_OK)
        journal_free(j);
    return rc;
}

void journal_close(struct journal *j)
{
    if (!j)
        return;
    if (j->flusher_started) {
        pthread_mutex_lock(&j->mu);
        j->stop_flusher = true;
        pthread_cond_broadcast(&j->flush_cv);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->flusher, NULL);
    }
    if (j->open_cursors > 0)
        log_msg(LOG_ERROR, MOD, "closing %s with %u cursor(s) still open",
                j->dir, j->open_cursors);
    if (j->w_fd >= 0 && fdatasync(j->w_fd) != 0)
        log_msg(LOG_ERROR, MOD, "fdatasync of %s failed: %s", j->dir,
                strerror(errno));
    journal_free(j);
}

const char *journal_id(const struct journal *j)
{
    return j->id;
}

/* ---- append ----------------------------------------------------------- */

/* Blocks while the journal is over its bound. When every cursor has read
 * and committed everything, only the active segment holds the bytes: roll
 * it so it can go. */
static int append_wait(struct journal *j)
{
    int rc = SPOT_OK;
    bool warned = false;
    pthread_mutex_lock(&j->mu);
    while (atomic_load(&j->bytes) > j->max_bytes && !j->shutdown) {
        if (j->nregs > 0 && min_committed_seq(j) >= atomic_load(&j->next_seq) &&
            j->segs[j->nsegs - 1].size > SEG_HDR) {
            pthread_mutex_unlock(&j->mu);
            /* the writer's state belongs to the holder of append_mu */
            pthread_mutex_lock(&j->append_mu);
            rc = seg_roll(j, atomic_load(&j->next_seq));
            pthread_mutex_unlock(&j->append_mu);
            if (rc != SPOT_OK)
                return rc;
            journal_gc(j);
            pthread_mutex_lock(&j->mu);
            continue;
        }
        if (!warned) {
            log_msg(LOG_WARN, MOD,
                    "%s is full (%" PRIu64 " bytes): holding messages at the "
                    "broker until the sinks catch up",
                    j->dir, atomic_load(&j->bytes));
            warned = true;
        }
        atomic_store(&j->full, 1);
        struct timespec ts;
        deadline_after(&ts, 1000);
        if (pthread_cond_timedwait(&j->space_cv, &j->mu, &ts) == ETIMEDOUT) {
            pthread_mutex_unlock(&j->mu);
            journal_gc(j); /* e.g. full since open, no commit yet */
            pthread_mutex_lock(&j->mu);
        }
    }
    atomic_store(&j->full, 0);
    pthread_mutex_unlock(&j->mu);
    if (warned)
        log_msg(LOG_INFO, MOD, "%s has room again", j->dir);
    return SPOT_OK;
}

/* Writes one record; the caller holds append_mu. */
static int append_locked(struct journal *j, const char *topic, size_t topic_len,
                         const void *payload, size_t payload_len,
                         int64_t received_us)
{
    if (j->w_broken)
        return SPOT_EIO;
    uint64_t len = (uint64_t)REC_HDR + topic_len + payload_len;
    int rc;
    if (j->w_size > SEG_HDR && j->w_size + len > j->seg_bytes &&
        (rc = seg_roll(j, atomic_load(&j->next_seq))) != SPOT_OK)
        return rc;

    /* only the holder of append_mu changes next_seq */
    uint64_t seq = atomic_load_explicit(&j->next_seq, memory_order_relaxed);
    unsigned char h[REC_HDR];
    rec_encode(h, seq, received_us, topic, topic_len, payload, payload_len);
    struct iovec iov[3] = {
        {h, REC_HDR},
        {(void *)(uintptr_t)topic, topic_len},
        {(void *)(uintptr_t)payload, payload_len},
    };
    if (writev_all(j->w_fd, iov, 3) != 0) {
        int err = errno;
        j->w_errno = err;
        atomic_store(&j->failing, 1);
        /* remove a partial record so the next one starts at a boundary */
        if (ftruncate(j->w_fd, (off_t)j->w_size) != 0) {
            j->w_broken = true;
            log_msg(LOG_ERROR, MOD,
                    "append to %s failed (%s) and cutting the partial record "
                    "failed too (%s): journal disabled",
                    j->dir, strerror(err), strerror(errno));
        } else {
            log_msg(LOG_ERROR, MOD, "append to %s failed: %s", j->dir,
                    strerror(err));
        }
        return SPOT_EIO;
    }
    rc = SPOT_OK;
    if (j->fsync_ms == 0 && fdatasync(j->w_fd) != 0) {
        /* the record is written, only not durable: publish it anyway */
        log_msg(LOG_ERROR, MOD, "fdatasync of %s failed: %s", j->dir,
                strerror(errno));
        rc = SPOT_EIO;
    }
    j->w_size += len;
    if (atomic_load_explicit(&j->failing, memory_order_relaxed))
        atomic_store(&j->failing, 0);
    pthread_mutex_lock(&j->mu);
    j->segs[j->nsegs - 1].size = j->w_size;
    atomic_store(&j->bytes, atomic_load(&j->bytes) + len);
    atomic_store(&j->next_seq, seq + 1);
    if (j->fsync_ms != 0)
        j->dirty = true;
    pthread_cond_broadcast(&j->data_cv);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

/* After an append failed for lack of space: when every cursor has
 * committed everything, the active segment holds only what is no longer
 * needed but cannot be deleted while it is active (the bound-based roll of
 * append_wait never comes when the disk is smaller than the bound). Roll
 * and collect it. Returns 1 when space was freed (try again). Holder of
 * append_mu only. */
static int reclaim_drained(struct journal *j)
{
    if (j->w_errno != ENOSPC && j->w_errno != EDQUOT)
        return 0;
    pthread_mutex_lock(&j->mu);
    bool drained = j->nregs > 0 &&
                   min_committed_seq(j) >= atomic_load(&j->next_seq) &&
                   j->segs[j->nsegs - 1].size > SEG_HDR;
    pthread_mutex_unlock(&j->mu);
    if (!drained)
        return 0;
    /* Creating the next segment needs a little space: cut the drained one
     * first (its file goes once it is sealed; readers are all past it, and
     * the segment list keeps its old size until it is collected). A crash
     * between the cut and the roll is recovered at open: the checkpoints
     * are then ahead of the journal, which moves its seq forward. */
    if (ftruncate(j->w_fd, (off_t)SEG_HDR) != 0) {
        log_msg(LOG_ERROR, MOD, "cutting the drained segment of %s failed: %s",
                j->dir, strerror(errno));
        return 0;
    }
    if (seg_roll(j, atomic_load(&j->next_seq)) != SPOT_OK) {
        /* the active file no longer matches its published size */
        j->w_broken = true;
        log_msg(LOG_ERROR, MOD,
                "%s: no room for a new segment even after cutting the "
                "drained one: journal disabled until a restart",
                j->dir);
        return 0;
    }
    uint64_t before = atomic_load(&j->bytes);
    journal_gc(j);
    log_msg(LOG_WARN, MOD,
            "%s: file system full; dropped the drained segment (%" PRIu64
            " bytes freed)",
            j->dir, before - atomic_load(&j->bytes));
    return 1;
}

static int append(struct journal *j, const char *topic, size_t topic_len,
                  const void *payload, size_t payload_len, int64_t received_us,
                  int wait_for_space)
{
    if (topic_len > REC_MAX_TOPIC || payload_len > REC_MAX_PAYLD)
        return SPOT_ETOOBIG;
    if ((!topic && topic_len) || (!payload && payload_len))
        return SPOT_EINVAL;
    int rc;
    /* the bound is waited for outside append_mu, so that an unbounded
     * append (a sink's dead letter) never queues behind a blocked one */
    if (wait_for_space &&
        atomic_load_explicit(&j->bytes, memory_order_relaxed) > j->max_bytes &&
        (rc = append_wait(j)) != SPOT_OK)
        return rc;
    pthread_mutex_lock(&j->append_mu);
    rc = append_locked(j, topic, topic_len, payload, payload_len, received_us);
    if (rc == SPOT_EIO && !j->w_broken && reclaim_drained(j))
        rc = append_locked(j, topic, topic_len, payload, payload_len,
                           received_us);
    pthread_mutex_unlock(&j->append_mu);
    return rc;
}

int journal_append(struct journal *j, const char *topic, size_t topic_len,
                   const void *payload, size_t payload_len, int64_t received_us)
{
    return append(j, topic, topic_len, payload, payload_len, received_us, 1);
}

int journal_append_unbounded(struct journal *j, const char *topic,
                             size_t topic_len, const void *payload,
                             size_t payload_len, int64_t received_us)
{
    return append(j, topic, topic_len, payload, payload_len, received_us, 0);
}

int journal_sync(struct journal *j)
{
    pthread_mutex_lock(&j->mu);
    int fd = fcntl(j->active_fd, F_DUPFD_CLOEXEC, 0);
    bool was_dirty = j->dirty;
    j->dirty = false;
    pthread_mutex_unlock(&j->mu);
    int err = 0;
    if (fd < 0 || fdatasync(fd) != 0)
        err = errno;
    if (fd >= 0)
        close(fd);
    if (err == 0)
        return SPOT_OK;
    log_msg(LOG_ERROR, MOD, "fdatasync of %s failed: %s", j->dir,
            strerror(err));
    pthread_mutex_lock(&j->mu);
    j->dirty = j->dirty || was_dirty;
    pthread_mutex_unlock(&j->mu);
    return SPOT_EIO;
}

void journal_shutdown(struct journal *j)
{
    pthread_mutex_lock(&j->mu);
    j->shutdown = true;
    pthread_cond_broadcast(&j->data_cv);
    pthread_cond_broadcast(&j->space_cv);
    pthread_mutex_unlock(&j->mu);
}

uint64_t journal_bytes(const struct journal *j)
{
    return atomic_load(&j->bytes);
}

uint64_t journal_next_seq(const struct journal *j)
{
    return atomic_load(&j->next_seq);
}

int journal_is_full(const struct journal *j)
{
    return atomic_load(&j->full);
}

int journal_is_failing(const struct journal *j)
{
    return atomic_load(&j->failing);
}

/* ---- cursors ---------------------------------------------------------- */

int journal_cursor_open(struct journal *j, const char *name,
                        struct journal_cursor **out)
{
    *out = NULL;
    if (!name || !name_valid(name))
        return SPOT_EINVAL;
    struct journal_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return SPOT_ENOMEM;
    c->j = j;
    c->fd = -1;
    bool fresh = false;
    pthread_mutex_lock(&j->mu);
    struct reg *r = NULL;
    for (size_t i = 0; i < j->nregs; i++)
        if (strcmp(j->regs[i].name, name) == 0)
            r = &j->regs[i];
    int rc = SPOT_OK;
    if (r && r->open) {
        rc = SPOT_EINVAL; /* one owner per cursor */
    } else if (!r && j->nregs == MAX_CURSORS) {
        rc = SPOT_EFULL;
    } else if (!r) {
        /* registered at once: from now on segments wait for it */
        r = &j->regs[j->nregs++];
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", name);
        r->committed = pos_oldest(j);
        fresh = true;
    }
    if (rc == SPOT_OK) {
        r->open = true;
        j->open_cursors++;
        c->reg = r;
        c->pos = r->committed;
    }
    pthread_mutex_unlock(&j->mu);
    if (rc == SPOT_OK && fresh) {
        rc = ckpt_write(j, name, c->pos);
        if (rc != SPOT_OK) {
            pthread_mutex_lock(&j->mu);
            r->open = false;
            j->open_cursors--;
            pthread_mutex_unlock(&j->mu);
        }
    }
    if (rc != SPOT_OK) {
        free(c);
        return rc;
    }
    *out = c;
    return SPOT_OK;
}

void journal_cursor_close(struct journal_cursor *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->j->mu);
    c->reg->open = false;
    c->j->open_cursors--;
    pthread_mutex_unlock(&c->j->mu);
    if (c->fd >= 0)
        close(c->fd);
    free(c->rb.p);
    free(c);
}

static void cursor_set_pos(struct journal_cursor *c, struct journal_pos pos)
{
    if (c->fd >= 0 && c->fd_seg != pos.segment) {
        close(c->fd);
        c->fd = -1;
        c->rb.len = 0;
    }
    c->pos = pos;
}

/* Opens the file of segment s for the cursor. mu held. */
static int cursor_open_fd(struct journal_cursor *c, const struct seg *s)
{
    char name[64];
    seg_name(name, sizeof name, s->num);
    int fd = openat(c->j->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_msg(LOG_ERROR, MOD, "cursor %s: opening %s/%s failed: %s",
                c->reg->name, c->j->dir, name, strerror(errno));
        return SPOT_EIO;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = fd;
    c->fd_seg = s->num;
    c->rb.len = 0;
    return SPOT_OK;
}

/* Reads the record at the read position, which ends before end. */
static int cursor_read(struct journal_cursor *c, uint64_t end,
                       struct journal_entry *out, const char **why)
{
    uint64_t off = c->pos.offset;
    const unsigned char *h;
    struct rec_hdr r;
    int rc = rbuf_get(&c->rb, c->fd, off, REC_HDR, end, &h);
    if (rc != SPOT_OK) {
        *why = "record header past the end";
        return rc;
    }
    if (rec_decode(h, &r) != SPOT_OK) {
        *why = "bad record header";
        return SPOT_ECORRUPT;
    }
    if (r.seq != c->pos.seq) {
        *why = "sequence number out of order";
        return SPOT_ECORRUPT;
    }
    uint64_t len = rec_len(&r);
    if (len > end - off) {
        *why = "record runs past the end of the segment";
        return SPOT_ECORRUPT;
    }
    rc = rbuf_get(&c->rb, c->fd, off, (size_t)len, end, &h);
    if (rc != SPOT_OK) {
        *why = "segment shorter than recorded";
        return rc;
    }
    uint32_t crc = crc_add(0, h + 8, (size_t)len - 8);
    if (crc != r.crc) {
        *why = "checksum mismatch";
        return SPOT_ECORRUPT;
    }
    out->topic = (const char *)h + REC_HDR;
    out->topic_len = r.topic_len;
    out->payload = h + REC_HDR + r.topic_len;
    out->payload_len = r.payload_len;
    out->received_us = r.received_us;
    c->pos.offset += len;
    c->pos.seq++;
    out->next = c->pos;
    return SPOT_OK;
}

/* After a corrupt record: skip to the end of the segment as far as it is
 * known (sealed: the whole file; active: the published end). */
static void cursor_skip(struct journal_cursor *c, const char *why)
{
    struct journal *j = c->j;
    pthread_mutex_lock(&j->mu);
    struct seg *s = seg_find(j, c->pos.segment);
    if (s) {
        uint64_t to =
            seg_is_active(j, s) ? atomic_load(&j->next_seq) : s[1].first_seq;
        j->corrupt_skips++;
        log_msg(LOG_ERROR, MOD,
                "cursor %s: corrupt record in %s/seg-%020" PRIu64
                ".log at offset %" PRIu64 " (%s): skipping %" PRIu64
                " bytes, %" PRIu64 " record(s) (corruption #%" PRIu64 ")",
                c->reg->name, j->dir, s->num, c->pos.offset, why,
                s->size - c->pos.offset, to > c->pos.seq ? to - c->pos.seq : 0,
                j->corrupt_skips);
        c->pos.seq = to;
        c->pos.offset = s->size;
    }
    pthread_mutex_unlock(&j->mu);
}

int journal_cursor_next(struct journal_cursor *c, int timeout_ms,
                        struct journal_entry *out)
{
    struct journal *j = c->j;
    struct timespec deadline;
    bool have_deadline = false, timed_out = false;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        struct seg *s = seg_find(j, c->pos.segment);
        if (!s || (!seg_is_active(j, s) && c->pos.offset >= s->size)) {
            /* this segment is done (or gone): go to the next one */
            struct seg *n = seg_after(j, c->pos.segment);
            int rc = n ? cursor_open_fd(c, n) : SPOT_ECORRUPT;
            if (rc == SPOT_OK) {
                if (c->pos.seq < n->first_seq)
                    log_msg(LOG_WARN, MOD,
                            "cursor %s: %" PRIu64 " record(s) missing "
                            "before segment %" PRIu64,
                            c->reg->name, n->first_seq - c->pos.seq, n->num);
                struct journal_pos p = {n->first_seq, n->num, SEG_HDR};
                c->pos = p;
            } else if (!n) {
                log_msg(LOG_ERROR, MOD,
                        "cursor %s: position segment %" PRIu64
                        " is past the journal",
                        c->reg->name, c->pos.segment);
            }
            pthread_mutex_unlock(&j->mu);
            if (rc != SPOT_OK)
                return rc;
            continue;
        }
        if (c->fd < 0 || c->fd_seg != s->num) {
            int rc = cursor_open_fd(c, s);
            if (rc != SPOT_OK) {
                pthread_mutex_unlock(&j->mu);
                return rc;
            }
        }
        uint64_t end = s->size;
        if (c->pos.offset < end) {
            pthread_mutex_unlock(&j->mu);
            const char *why = NULL;
            int rc = cursor_read(c, end, out, &why);
            if (rc != SPOT_ECORRUPT)
                return rc;
            cursor_skip(c, why);
            continue;
        }
        /* caught up with everything published */
        int rc = SPOT_OK;
        if (j->shutdown)
            rc = SPOT_ESHUTDOWN;
        else if (timeout_ms == 0 || timed_out)
            rc = SPOT_EAGAIN;
        else if (timeout_ms < 0)
            pthread_cond_wait(&j->data_cv, &j->mu);
        else {
            if (!have_deadline) {
                deadline_after(&deadline, timeout_ms);
                have_deadline = true;
            }
            if (pthread_cond_timedwait(&j->data_cv, &j->mu, &deadline) ==
                ETIMEDOUT)
                timed_out = true;
        }
        pthread_mutex_unlock(&j->mu);
        if (rc != SPOT_OK)
            return rc;
    }
}

/* Validates pos for a commit or seek (not before the checkpoint, a record
 * boundary), writes the checkpoint file, then publishes it. */
static int cursor_set_checkpoint(struct journal_cursor *c,
                                 struct journal_pos pos)
{
    struct journal *j = c->j;
    pthread_mutex_lock(&j->mu);
    struct journal_pos cur = c->reg->committed;
    int rc = SPOT_OK;
    if (pos.seq < cur.seq)
        rc = SPOT_EINVAL;
    else if (memcmp(&pos, &cur, sizeof pos) == 0)
        rc = SPOT_EAGAIN; /* nothing to do */
    else
        rc = pos_check_as(j, &pos, memcmp(&pos, &c->pos, sizeof pos) == 0);
    pthread_mutex_unlock(&j->mu);
    if (rc == SPOT_EAGAIN)
        return SPOT_OK;
    if (rc != SPOT_OK) {
        log_msg(LOG_ERROR, MOD,
                "cursor %s: refusing position seq %" PRIu64 " segment %" PRIu64
                " offset %" PRIu64 " (checkpoint at seq "
                "%" PRIu64 ")",
                c->reg->name, pos.seq, pos.segment, pos.offset, cur.seq);
        return rc;
    }
    /* A checkpoint file the disk refuses (full) is not durable, but the
     * sink did confirm everything before pos: publish it anyway, so that
     * segments can go and the disk gets room again; the next commit
     * writes the file. After a crash the older file only means records
     * sent again, or "before the oldest segment", never a loss. */
    int wrc = ckpt_write(j, c->reg->name, pos);
    pthread_mutex_lock(&j->mu);
    c->reg->committed = pos;
    pthread_cond_broadcast(&j->space_cv); /* an append may roll to free */
    pthread_mutex_unlock(&j->mu);
    journal_gc(j);
    return wrc;
}

int journal_cursor_commit(struct journal_cursor *c, struct journal_pos pos)
{
    int rc = cursor_set_checkpoint(c, pos);
    if (rc == SPOT_OK && pos.seq > c->pos.seq) {
        /* committed past what was read: read on from there */
        pthread_mutex_lock(&c->j->mu);
        struct journal_pos p = c->reg->committed;
        pthread_mutex_unlock(&c->j->mu);
        cursor_set_pos(c, p);
    }
    return rc;
}

int journal_cursor_rewind(struct journal_cursor *c)
{
    pthread_mutex_lock(&c->j->mu);
    struct journal_pos p = c->reg->committed;
    pthread_mutex_unlock(&c->j->mu);
    cursor_set_pos(c, p);
    return SPOT_OK;
}

int journal_cursor_seek(struct journal_cursor *c, struct journal_pos pos)
{
    int rc = cursor_set_checkpoint(c, pos);
    if (rc != SPOT_OK)
        return rc;
    return journal_cursor_rewind(c);
}

struct journal_pos journal_cursor_checkpoint(const struct journal_cursor *c)
{
    pthread_mutex_lock(&c->j->mu);
    struct journal_pos p = c->reg->committed;
    pthread_mutex_unlock(&c->j->mu);
    return p;
}

uint64_t journal_cursor_backlog(const struct journal_cursor *c)
{
    uint64_t done = journal_cursor_checkpoint(c).seq;
    uint64_t next = atomic_load(&c->j->next_seq);
    return next > done ? next - done : 0;
}
