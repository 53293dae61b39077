/*
 * The store-and-forward spool (API: spot/spool.h; design and format:
 * docs/internals/spool.md).
 *
 * Files in the spool directory: segments <20-digit first seq>.seg, "head"
 * (the oldest unreleased seq, 16 bytes with a CRC) and "lock" (flock'd
 * while open). A record is a 16-byte header (body length u32, CRC-32 of
 * seq and body u32, seq u64, little-endian) and a body (QoS u8, flags u8,
 * topic length u16, topic, payload). Seqs are consecutive inside a segment.
 *
 * Threads: one mutex guards everything; the reader state (cursor, read
 * descriptor and buffer) belongs to the one thread that calls spool_next().
 * Records are written with one pwrite() under the mutex, and the reader
 * never looks past a segment's recorded end, so it never sees half a record.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "spot/clock.h"
#include "spot/device_limits.h"
#include "spot/err.h"
#include "spot/log.h"
#include "spot/spool.h"

#define MOD "spool"

#define REC_HDR     16u
#define BODY_HDR    4u
#define HEAD_MAGIC  0x44485053u /* "SPHD" */
#define HEAD_BYTES  16u
#define SEG_SUFFIX  ".seg"
#define SEG_NAMELEN 24 /* 20 digits + ".seg" */
/* Seqs a real spool reaches (2^62: a message a nanosecond for a century)
 * leave room to count on without wrapping; a segment name or head beyond
 * is not one this code wrote (found by fuzzing: a name near 2^64 made the
 * tail wrap to 0, behind the head). */
#define SEQ_LIMIT (UINT64_C(1) << 62)

struct seg {
    uint64_t first; /* seq of its first record (file name) */
    uint64_t end;   /* one past its last record */
    uint64_t bytes; /* file size (valid records only) */
};

struct spool {
    pthread_mutex_t mu;
    char *dir;
    int dirfd, lockfd, headfd, wfd;
    uint64_t max_bytes, seg_bytes;
    int fsync_ms;

    struct seg *segs; /* oldest first; the last one is being written */
    size_t nseg, capseg;
    uint64_t head; /* oldest unreleased seq */
    uint64_t tail; /* next seq to assign */
    uint64_t disk_bytes;
    bool dirty;
    int64_t last_sync_ms;
    uint64_t head_on_disk;
    int64_t head_write_ms;

    /* reader */
    uint64_t send;    /* next seq to hand out */
    int rfd;          /* -1: not positioned */
    uint64_t r_first; /* segment the reader is in */
    uint64_t r_off;   /* file offset of the next record */
    unsigned char *rbuf;
    size_t rcap;
    uint64_t rbuf_off;
    size_t rbuf_len;

    unsigned char *wbuf; /* one record being built */

    struct spool_stats st;
};

/* --- little-endian helpers ------------------------------------------------ */

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

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t crc(const unsigned char *p, size_t n)
{
    return (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), p, n);
}

/* --- file helpers ------------------------------------------------------------
 */

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Reads up to n bytes at off; returns the count (short at end of file) or
 * -1. */
static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static void seg_name(char *buf, size_t len, uint64_t first)
{
    snprintf(buf, len, "%020" PRIu64 SEG_SUFFIX, first);
}

static void sync_dir(struct spool *s)
{
    if (s->fsync_ms >= 0 && fsync(s->dirfd) != 0)
        log_msg(LOG_WARN, MOD, "fsync of %s failed: %s", s->dir,
                strerror(errno));
}

/* --- head file
 * ------------------------------------------------------------------ */

static void head_write(struct spool *s, bool sync)
{
    unsigned char b[HEAD_BYTES];
    put32(b, HEAD_MAGIC);
    put64(b + 8, s->head);
    put32(b + 4, crc(b + 8, 8));
    if (pwrite_all(s->headfd, b, sizeof b, 0) != 0) {
        log_msg(LOG_WARN, MOD, "writing %s/head failed: %s", s->dir,
                strerror(errno));
        return;
    }
    if (sync && s->fsync_ms >= 0 && fdatasync(s->headfd) != 0)
        log_msg(LOG_WARN, MOD, "fdatasync of %s/head failed: %s", s->dir,
                strerror(errno));
    s->head_on_disk = s->head;
    s->head_write_ms = spot_mono_ms();
}

/* The head recorded on disk, or 0 when the file is missing or invalid. */
static uint64_t head_read(struct spool *s)
{
    unsigned char b[HEAD_BYTES];
    if (pread_full(s->headfd, b, sizeof b, 0) != (ssize_t)sizeof b)
        return 0;
    if (get32(b) != HEAD_MAGIC || get32(b + 4) != crc(b + 8, 8) ||
        get64(b + 8) >= SEQ_LIMIT) {
        log_msg(LOG_WARN, MOD,
                "%s/head is damaged; resending from the "
                "oldest queued message",
                s->dir);
        return 0;
    }
    return get64(b + 8);
}

/* --- segments
 * --------------------------------------------------------------------- */

static int segs_push(struct spool *s, struct seg g)
{
    if (s->nseg == s->capseg) {
        size_t cap = s->capseg ? s->capseg * 2 : 16;
        struct seg *n = realloc(s->segs, cap * sizeof *n);
        if (n == NULL)
            return SPOT_ENOMEM;
        s->segs = n;
        s->capseg = cap;
    }
    s->segs[s->nseg++] = g;
    return SPOT_OK;
}

static void reader_reset(struct spool *s)
{
    if (s->rfd >= 0)
        close(s->rfd);
    s->rfd = -1;
    s->rbuf_len = 0;
}

static uint64_t seg_live(const struct spool *s, const struct seg *g)
{
    uint64_t from = g->first > s->head ? g->first : s->head;
    return g->end > from ? g->end - from : 0;
}

/* Deletes the oldest segment; its unreleased messages count as dropped. */
static void drop_oldest(struct spool *s, bool count)
{
    struct seg g = s->segs[0];
    uint64_t live = seg_live(s, &g);
    if (count && live > 0) {
        s->st.dropped += live;
        log_msg(LOG_WARN, MOD,
                "%s: bound reached, dropped the %" PRIu64
                " oldest messages (%" PRIu64 " dropped so far)",
                s->dir, live, s->st.dropped);
    }
    char name[SEG_NAMELEN + 1];
    seg_name(name, sizeof name, g.first);
    if (unlinkat(s->dirfd, name, 0) != 0 && errno != ENOENT)
        log_msg(LOG_WARN, MOD, "removing %s/%s failed: %s", s->dir, name,
                strerror(errno));
    if (s->rfd >= 0 && s->r_first == g.first)
        reader_reset(s);
    s->disk_bytes -= g.bytes;
    memmove(s->segs, s->segs + 1, (s->nseg - 1) * sizeof *s->segs);
    s->nseg--;
    if (s->head < g.end)
        s->head = g.end;
    if (s->send < s->head)
        s->send = s->head;
}

/* Starts a new segment whose first record will be s->tail. */
static int seg_create(struct spool *s)
{
    char name[SEG_NAMELEN + 1];
    seg_name(name, sizeof name, s->tail);
    int fd =
        openat(s->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        log_msg(LOG_ERROR, MOD, "creating %s/%s failed: %s", s->dir, name,
                strerror(e));
        errno = e;
        return SPOT_EIO;
    }
    struct seg g = {.first = s->tail, .end = s->tail, .bytes = 0};
    if (segs_push(s, g) != SPOT_OK) {
        close(fd);
        unlinkat(s->dirfd, name, 0);
        return SPOT_ENOMEM;
    }
    if (s->wfd >= 0) {
        if (s->fsync_ms >= 0 && s->dirty && fdatasync(s->wfd) != 0)
            log_msg(LOG_WARN, MOD, "fdatasync of %s failed: %s", s->dir,
                    strerror(errno));
        close(s->wfd);
    }
    s->wfd = fd;
    s->dirty = false;
    sync_dir(s);
    return SPOT_OK;
}

/* --- recovery
 * -------------------------------------------------------------------------- */

/* Checks one record at buf (avail bytes); returns its total size, or 0
 * when it is torn or corrupt. */
static size_t rec_check(const unsigned char *buf, size_t avail,
                        uint64_t want_seq)
{
    if (avail < REC_HDR)
        return 0;
    uint32_t len = get32(buf);
    if (len < BODY_HDR || len > SPOT_SPOOL_MAX_RECORD - REC_HDR ||
        avail < REC_HDR + len)
        return 0;
    if (get64(buf + 8) != want_seq)
        return 0;
    if (crc(buf + 8, 8 + (size_t)len) != get32(buf + 4))
        return 0;
    const unsigned char *b = buf + REC_HDR;
    size_t tlen = (size_t)b[2] | ((size_t)b[3] << 8);
    if (b[0] > 2 || BODY_HDR + tlen > len)
        return 0;
    return REC_HDR + len;
}

/* Scans segment g (name first), counting valid records; cuts the file at
 * the first torn or corrupt one. */
static int seg_scan(struct spool *s, struct seg *g, bool last)
{
    char name[SEG_NAMELEN + 1];
    seg_name(name, sizeof name, g->first);
    int fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        log_msg(LOG_ERROR, MOD, "opening %s/%s failed: %s", s->dir, name,
                strerror(errno));
        return SPOT_EIO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return SPOT_EIO;
    }
    uint64_t size = (uint64_t)sb.st_size, off = 0, seq = g->first;
    int rc = SPOT_OK;
    for (;;) {
        if (off == size)
            break;
        size_t want = s->rcap;
        ssize_t n = pread_full(fd, s->rbuf, want, off);
        if (n < 0) {
            rc = SPOT_EIO;
            break;
        }
        size_t pos = 0, got = 0;
        while (pos < (size_t)n) {
            size_t r = rec_check(s->rbuf + pos, (size_t)n - pos, seq);
            if (r == 0)
                break;
            pos += r;
            seq++;
            got++;
        }
        off += pos;
        if (got == 0 || off == size)
            break;
        /* a record straddles the chunk end: read again from it */
        if ((size_t)n < want)
            break;
    }
    if (rc == SPOT_OK && off < size) {
        s->st.truncated++;
        log_msg(last ? LOG_WARN : LOG_ERROR, MOD,
                "%s/%s: %s record at offset %" PRIu64 " (file %" PRIu64
                " bytes); cut there",
                s->dir, name, last ? "torn" : "corrupt", off, size);
        if (ftruncate(fd, (off_t)off) != 0 ||
            (s->fsync_ms >= 0 && fdatasync(fd) != 0)) {
            log_msg(LOG_ERROR, MOD, "cutting %s/%s failed: %s", s->dir, name,
                    strerror(errno));
            rc = SPOT_EIO;
        }
    }
    close(fd);
    g->end = seq;
    g->bytes = off;
    return rc;
}

static int cmp_seg(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int parse_seg_name(const char *n, uint64_t *first)
{
    if (strlen(n) != SEG_NAMELEN || strcmp(n + 20, SEG_SUFFIX) != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (n[i] < '0' || n[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(n[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *first = v;
    return v > 0;
}

static int list_segments(struct spool *s)
{
    int fd = dup(s->dirfd);
    if (fd < 0)
        return SPOT_EIO;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return SPOT_EIO;
    }
    int rc = SPOT_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t first;
        if (!parse_seg_name(e->d_name, &first))
            continue;
        if (first >= SEQ_LIMIT) {
            log_msg(LOG_ERROR, MOD,
                    "%s/%s: sequence number out of range; ignored", s->dir,
                    e->d_name);
            continue;
        }
        struct seg g = {.first = first, .end = first};
        if ((rc = segs_push(s, g)) != SPOT_OK)
            break;
    }
    closedir(d);
    if (s->nseg > 1)
        qsort(s->segs, s->nseg, sizeof *s->segs, cmp_seg);
    return rc;
}

static void remove_seg_at(struct spool *s, size_t i)
{
    char name[SEG_NAMELEN + 1];
    seg_name(name, sizeof name, s->segs[i].first);
    unlinkat(s->dirfd, name, 0);
    s->disk_bytes -= s->segs[i].bytes;
    memmove(s->segs + i, s->segs + i + 1, (s->nseg - i - 1) * sizeof *s->segs);
    s->nseg--;
}

static int recover(struct spool *s)
{
    int rc = list_segments(s);
    if (rc != SPOT_OK)
        return rc;
    for (size_t i = 0; i < s->nseg; i++) {
        if ((rc = seg_scan(s, &s->segs[i], i + 1 == s->nseg)) != SPOT_OK)
            return rc;
        s->disk_bytes += s->segs[i].bytes;
    }
    /* Overlapping names (never written by this code) and empty segments
     * other than the last are removed. */
    for (size_t i = 0; i < s->nseg;) {
        bool overlap = i > 0 && s->segs[i].first < s->segs[i - 1].end;
        bool empty = s->segs[i].bytes == 0 && i + 1 < s->nseg;
        if (overlap) {
            s->st.truncated++;
            log_msg(LOG_ERROR, MOD,
                    "%s: segment %" PRIu64 " overlaps its predecessor; removed",
                    s->dir, s->segs[i].first);
        }
        if (overlap || empty)
            remove_seg_at(s, i);
        else
            i++;
    }
    uint64_t h = head_read(s);
    if (s->nseg == 0) {
        s->tail = h > 0 ? h : 1;
        s->head = s->tail;
    } else {
        s->tail = s->segs[s->nseg - 1].end;
        uint64_t oldest = s->segs[0].first;
        if (h > s->tail) {
            log_msg(LOG_WARN, MOD,
                    "%s/head points past the newest message; "
                    "resending from the oldest",
                    s->dir);
            h = 0;
        }
        s->head = h > oldest ? h : oldest;
    }
    /* Segments holding only released messages go now. */
    while (s->nseg > 1 && s->segs[0].end <= s->head)
        remove_seg_at(s, 0);
    if (s->nseg == 0) {
        if ((rc = seg_create(s)) != SPOT_OK)
            return rc;
    } else {
        struct seg *last = &s->segs[s->nseg - 1];
        char name[SEG_NAMELEN + 1];
        seg_name(name, sizeof name, last->first);
        s->wfd = openat(s->dirfd, name, O_WRONLY | O_CLOEXEC);
        if (s->wfd < 0) {
            log_msg(LOG_ERROR, MOD, "opening %s/%s failed: %s", s->dir, name,
                    strerror(errno));
            return SPOT_EIO;
        }
    }
    s->send = s->head;
    for (size_t i = 0; i < s->nseg; i++)
        s->st.recovered += seg_live(s, &s->segs[i]);
    if (s->st.recovered > 0)
        log_msg(LOG_INFO, MOD, "%s: %" PRIu64 " queued messages to send",
                s->dir, s->st.recovered);
    head_write(s, true);
    return SPOT_OK;
}

/* --- open / close
 * ------------------------------------------------------------------ */

int spool_open(struct spool **out, const struct spool_opts *o)
{
    if (o == NULL || o->dir == NULL || o->dir[0] == '\0' ||
        o->max_bytes < (uint64_t)SPOT_SPOOL_MIN_KB * 1024 ||
        o->max_bytes > (uint64_t)SPOT_SPOOL_MAX_KB * 1024 || o->fsync_ms < -1 ||
        o->fsync_ms > SPOT_SPOOL_MAX_FSYNC_MS)
        return SPOT_EINVAL;
    struct spool *s = calloc(1, sizeof *s);
    if (s == NULL)
        return SPOT_ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    s->dirfd = s->lockfd = s->headfd = s->wfd = s->rfd = -1;
    s->max_bytes = o->max_bytes;
    s->fsync_ms = o->fsync_ms;
    uint64_t seg = o->segment_bytes;
    if (seg == 0) {
        seg = o->max_bytes / SPOT_SPOOL_SEGMENTS;
        uint64_t want = SPOT_SPOOL_MAX_RECORD;
        if (want > o->max_bytes / 2)
            want = o->max_bytes / 2;
        if (seg < want)
            seg = want;
    }
    if (seg < 256 || seg > o->max_bytes / 2) {
        free(s);
        return SPOT_EINVAL;
    }
    s->seg_bytes = seg;
    s->rcap = SPOT_SPOOL_READ_CHUNK > SPOT_SPOOL_MAX_RECORD
                  ? SPOT_SPOOL_READ_CHUNK
                  : SPOT_SPOOL_MAX_RECORD;
    s->dir = strdup(o->dir);
    s->rbuf = malloc(s->rcap);
    s->wbuf = malloc(SPOT_SPOOL_MAX_RECORD);
    int rc = SPOT_OK;
    if (s->dir == NULL || s->rbuf == NULL || s->wbuf == NULL) {
        rc = SPOT_ENOMEM;
        goto out;
    }
    if (mkdir(o->dir, 0700) != 0 && errno != EEXIST) {
        log_msg(LOG_ERROR, MOD, "creating %s failed: %s", o->dir,
                strerror(errno));
        rc = SPOT_EIO;
        goto out;
    }
    s->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        log_msg(LOG_ERROR, MOD, "opening %s failed: %s", o->dir,
                strerror(errno));
        rc = SPOT_EIO;
        goto out;
    }
    s->lockfd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lockfd < 0) {
        rc = SPOT_EIO;
        goto out;
    }
    if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
        log_msg(LOG_ERROR, MOD, "%s is in use by another process", o->dir);
        rc = SPOT_EAGAIN;
        goto out;
    }
    s->headfd = openat(s->dirfd, "head", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->headfd < 0) {
        rc = SPOT_EIO;
        goto out;
    }
    s->last_sync_ms = spot_mono_ms();
    rc = recover(s);
out:
    if (rc != SPOT_OK) {
        spool_close(s);
        return rc;
    }
    *out = s;
    return SPOT_OK;
}

void spool_close(struct spool *s)
{
    if (s == NULL)
        return;
    if (s->headfd >= 0 && s->wfd >= 0)
        head_write(s, true);
    if (s->wfd >= 0) {
        if (s->fsync_ms >= 0 && s->dirty && fdatasync(s->wfd) != 0)
            log_msg(LOG_WARN, MOD, "fdatasync of %s failed: %s", s->dir,
                    strerror(errno));
        close(s->wfd);
    }
    reader_reset(s);
    if (s->headfd >= 0)
        close(s->headfd);
    if (s->lockfd >= 0)
        close(s->lockfd); /* releases the flock */
    if (s->dirfd >= 0)
        close(s->dirfd);
    pthread_mutex_destroy(&s->mu);
    free(s->segs);
    free(s->rbuf);
    free(s->wbuf);
    free(s->dir);
    free(s);
}

/* --- append
 * ---------------------------------------------------------------------- */

static int write_record(struct spool *s, size_t n)
{
    struct seg *g = &s->segs[s->nseg - 1];
    if (pwrite_all(s->wfd, s->wbuf, n, g->bytes) != 0) {
        int e = errno;
        /* leave no partial record behind */
        if (ftruncate(s->wfd, (off_t)g->bytes) != 0)
            log_msg(LOG_ERROR, MOD,
                    "cutting %s after a failed write "
                    "failed: %s",
                    s->dir, strerror(errno));
        errno = e;
        return SPOT_EIO;
    }
    g->bytes += n;
    g->end++;
    s->disk_bytes += n;
    s->tail++;
    s->dirty = true;
    return SPOT_OK;
}

int spool_append(struct spool *s, const char *topic, int qos, bool retain,
                 const void *payload, size_t len)
{
    size_t tlen = strlen(topic);
    if (qos < 0 || qos > 2 || tlen > 65535)
        return SPOT_EINVAL;
    size_t n = REC_HDR + BODY_HDR + tlen + len;
    if (n > SPOT_SPOOL_MAX_RECORD)
        return SPOT_ETOOBIG;
    pthread_mutex_lock(&s->mu);
    int rc = SPOT_OK;
    if (n > s->seg_bytes) {
        rc = SPOT_ETOOBIG;
        goto out;
    }
    /* build the record */
    unsigned char *b = s->wbuf;
    put32(b, (uint32_t)(n - REC_HDR));
    put64(b + 8, s->tail);
    b[16] = (unsigned char)qos;
    b[17] = retain ? 1 : 0;
    b[18] = (unsigned char)(tlen & 0xff);
    b[19] = (unsigned char)(tlen >> 8);
    memcpy(b + 20, topic, tlen);
    if (len > 0)
        memcpy(b + 20 + tlen, payload, len);
    put32(b + 4, crc(b + 8, n - 8));

    struct seg *last = &s->segs[s->nseg - 1];
    if (last->bytes > 0 && last->bytes + n > s->seg_bytes)
        if ((rc = seg_create(s)) != SPOT_OK)
            goto out;
    while (s->disk_bytes + n > s->max_bytes) {
        if (s->nseg > 1)
            drop_oldest(s, true);
        else if (s->segs[0].bytes > 0) {
            if ((rc = seg_create(s)) != SPOT_OK)
                goto out;
        } else
            break;
    }
    rc = write_record(s, n);
    if (rc == SPOT_EIO && errno == ENOSPC && s->nseg > 1) {
        /* disk full: make room by dropping the oldest, once */
        drop_oldest(s, true);
        rc = write_record(s, n);
    }
    if (rc != SPOT_OK) {
        log_msg(LOG_ERROR, MOD, "appending to %s failed: %s", s->dir,
                strerror(errno));
        goto out;
    }
    s->st.appended++;
    if (s->fsync_ms == 0 ||
        (s->fsync_ms > 0 && spot_mono_ms() - s->last_sync_ms >= s->fsync_ms)) {
        if (fdatasync(s->wfd) != 0)
            log_msg(LOG_WARN, MOD, "fdatasync of %s failed: %s", s->dir,
                    strerror(errno));
        s->dirty = false;
        s->last_sync_ms = spot_mono_ms();
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* --- reading
 * ------------------------------------------------------------------------ */

static struct seg *seg_find(struct spool *s, uint64_t first)
{
    size_t lo = 0, hi = s->nseg;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->segs[mid].first < first)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nseg && s->segs[lo].first == first ? &s->segs[lo] : NULL;
}

/* Opens the segment holding s->send (or the next one after a gap). */
static int reader_position(struct spool *s)
{
    reader_reset(s);
    size_t i = 0;
    while (i < s->nseg && s->segs[i].end <= s->send)
        i++;
    if (i == s->nseg)
        return SPOT_EAGAIN;
    struct seg *g = &s->segs[i];
    if (s->send < g->first)
        s->send = g->first;
    char name[SEG_NAMELEN + 1];
    seg_name(name, sizeof name, g->first);
    s->rfd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (s->rfd < 0) {
        log_msg(LOG_ERROR, MOD, "opening %s/%s failed: %s", s->dir, name,
                strerror(errno));
        return SPOT_EIO;
    }
    s->r_first = g->first;
    s->r_off = 0;
    return SPOT_OK;
}

static int refill(struct spool *s, const struct seg *g)
{
    size_t want = s->rcap;
    if (g->bytes - s->r_off < want)
        want = (size_t)(g->bytes - s->r_off);
    ssize_t n = pread_full(s->rfd, s->rbuf, want, s->r_off);
    if (n < 0 || (size_t)n < want) {
        log_msg(LOG_ERROR, MOD, "reading %s failed: %s", s->dir,
                n < 0 ? strerror(errno) : "file shorter than written");
        return SPOT_EIO;
    }
    s->rbuf_off = s->r_off;
    s->rbuf_len = (size_t)n;
    return SPOT_OK;
}

int spool_next(struct spool *s, struct spool_item *out)
{
    pthread_mutex_lock(&s->mu);
    int rc = SPOT_OK;
    if (s->send < s->head) {
        s->send = s->head;
        reader_reset(s);
    }
    for (;;) {
        if (s->send >= s->tail) {
            rc = SPOT_EAGAIN;
            break;
        }
        struct seg *g = s->rfd >= 0 ? seg_find(s, s->r_first) : NULL;
        if (g == NULL) {
            if ((rc = reader_position(s)) != SPOT_OK)
                break;
            continue;
        }
        if (s->r_off >= g->bytes) {
            if (g == &s->segs[s->nseg - 1]) {
                rc = SPOT_EAGAIN;
                break;
            }
            /* on to the next segment */
            reader_reset(s);
            continue;
        }
        uint64_t in_buf_end = s->rbuf_off + s->rbuf_len;
        if (s->rbuf_len == 0 || s->r_off < s->rbuf_off ||
            s->r_off + REC_HDR > in_buf_end ||
            s->r_off + REC_HDR + get32(s->rbuf + (s->r_off - s->rbuf_off)) >
                in_buf_end) {
            if ((rc = refill(s, g)) != SPOT_OK)
                break;
        }
        const unsigned char *p = s->rbuf + (s->r_off - s->rbuf_off);
        size_t avail = s->rbuf_len - (size_t)(s->r_off - s->rbuf_off);
        uint64_t seq = avail >= REC_HDR ? get64(p + 8) : 0;
        size_t r = rec_check(p, avail, seq);
        if (r == 0 || seq < g->first || seq >= g->end) {
            /* damaged after it was written: skip the rest of the segment */
            uint64_t lost = g->end > s->send ? g->end - s->send : 0;
            s->st.dropped += lost;
            log_msg(LOG_ERROR, MOD,
                    "%s: damaged record in segment %" PRIu64
                    " at offset %" PRIu64 "; %" PRIu64 " messages lost",
                    s->dir, g->first, s->r_off, lost);
            s->send = g->end;
            s->r_off = g->bytes;
            continue;
        }
        s->r_off += r;
        if (seq < s->send)
            continue;
        const unsigned char *b = p + REC_HDR;
        size_t tlen = (size_t)b[2] | ((size_t)b[3] << 8);
        out->seq = seq;
        out->qos = b[0];
        out->retain = (b[1] & 1) != 0;
        out->topic = (const char *)(b + BODY_HDR);
        out->topic_len = tlen;
        out->payload = b + BODY_HDR + tlen;
        out->payload_len = r - REC_HDR - BODY_HDR - tlen;
        s->send = seq + 1;
        break;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void spool_rewind(struct spool *s)
{
    pthread_mutex_lock(&s->mu);
    s->send = s->head;
    reader_reset(s);
    pthread_mutex_unlock(&s->mu);
}

void spool_release(struct spool *s, uint64_t upto)
{
    pthread_mutex_lock(&s->mu);
    if (upto > s->tail)
        upto = s->tail;
    if (upto > s->head) {
        for (size_t i = 0; i < s->nseg; i++) {
            const struct seg *g = &s->segs[i];
            uint64_t a = g->first > s->head ? g->first : s->head;
            uint64_t z = g->end < upto ? g->end : upto;
            if (z > a)
                s->st.released += z - a;
        }
        s->head = upto;
        bool removed = false;
        while (s->nseg > 1 && s->segs[0].end <= s->head) {
            drop_oldest(s, false);
            removed = true;
        }
        if (removed ||
            spot_mono_ms() - s->head_write_ms >= SPOT_SPOOL_HEAD_WRITE_MS)
            head_write(s, false);
    }
    pthread_mutex_unlock(&s->mu);
}

uint64_t spool_tail(struct spool *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t t = s->tail;
    pthread_mutex_unlock(&s->mu);
    return t;
}

int spool_sync(struct spool *s)
{
    pthread_mutex_lock(&s->mu);
    int rc = SPOT_OK;
    if (s->fsync_ms >= 0) {
        if (s->dirty && fdatasync(s->wfd) != 0) {
            log_msg(LOG_WARN, MOD, "fdatasync of %s failed: %s", s->dir,
                    strerror(errno));
            rc = SPOT_EIO;
        }
        s->dirty = false;
        s->last_sync_ms = spot_mono_ms();
    }
    if (s->head != s->head_on_disk)
        head_write(s, true);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void spool_get_stats(struct spool *s, struct spool_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->pending = 0;
    out->pending_bytes = 0;
    for (size_t i = 0; i < s->nseg; i++)
        out->pending += seg_live(s, &s->segs[i]);
    /* bytes of unreleased records: exact per whole segment, estimated for
     * the partly released oldest one */
    for (size_t i = 0; i < s->nseg; i++) {
        const struct seg *g = &s->segs[i];
        uint64_t live = seg_live(s, g), all = g->end - g->first;
        if (all > 0)
            out->pending_bytes += g->bytes * live / all;
    }
    out->disk_bytes = s->disk_bytes;
    out->segments = s->nseg;
    pthread_mutex_unlock(&s->mu);
}
