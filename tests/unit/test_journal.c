/*
 * Unit tests of the journal (src/agent/journal.c): round trips, checkpoints,
 * segment roll and removal, torn-tail recovery, corruption, the bound,
 * shutdown, large records, a concurrent writer and reader, and a writer
 * killed with SIGKILL. Each test works in its own mkdtemp() directory.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spot/clock.h"
#include "spot/err.h"
#include "journal.h"

#define SEG_HDR 24 /* segment header size, see journal.c */
#define REC_HDR 32 /* record header size */

/* ---- helpers ---------------------------------------------------------- */

static char *tmpdir_new(void)
{
    char tmpl[] = "/tmp/spot-journal-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    char *d = strdup(tmpl);
    cr_assert_not_null(d);
    return d;
}

static void tmpdir_rm(char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        cr_assert_eq(unlink(p), 0, "unlink %s: %s", p, strerror(errno));
    }
    closedir(d);
    cr_assert_eq(rmdir(dir), 0);
    free(dir);
}

static struct journal *jopen(const char *dir, unsigned fsync_ms,
                             uint64_t max_bytes, uint32_t seg_bytes)
{
    struct journal_options o = {dir, fsync_ms, max_bytes, seg_bytes};
    struct journal *j = NULL;
    int rc = journal_open(&j, &o);
    cr_assert_eq(rc, SPOT_OK, "journal_open: %s", spot_strerror(rc));
    return j;
}

static struct journal_cursor *copen(struct journal *j, const char *name)
{
    struct journal_cursor *c = NULL;
    int rc = journal_cursor_open(j, name, &c);
    cr_assert_eq(rc, SPOT_OK, "cursor_open %s: %s", name, spot_strerror(rc));
    return c;
}

static size_t topic_of(uint64_t i, char *buf, size_t n)
{
    return (size_t)snprintf(buf, n, "/key%" PRIu64 "/dev%" PRIu64 "/attrs",
                            i % 7, i);
}

static void payload_of(uint64_t i, unsigned char *buf, size_t len)
{
    for (size_t k = 0; k < len; k++)
        buf[k] = (unsigned char)(i * 131 + k * 7 + (k >> 8));
}

/* Payload sizes vary with i; some are empty. */
static size_t size_of(uint64_t i)
{
    return (size_t)((i * 37) % 300);
}

static void append_one(struct journal *j, uint64_t i, size_t len)
{
    char topic[64];
    size_t tlen = topic_of(i, topic, sizeof topic);
    unsigned char *p = malloc(len ? len : 1);
    cr_assert_not_null(p);
    payload_of(i, p, len);
    int rc = journal_append(j, topic, tlen, p, len, (int64_t)i * 1000 + 7);
    free(p);
    cr_assert_eq(rc, SPOT_OK, "append %" PRIu64 ": %s", i, spot_strerror(rc));
}

static void append_range(struct journal *j, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++)
        append_one(j, i, size_of(i));
}

/* Whether e is record i (content id) with payload length len. */
static bool entry_is(const struct journal_entry *e, uint64_t i, size_t len)
{
    char topic[64];
    size_t tlen = topic_of(i, topic, sizeof topic);
    if (e->topic_len != tlen || memcmp(e->topic, topic, tlen) != 0 ||
        e->payload_len != len || e->received_us != (int64_t)i * 1000 + 7)
        return false;
    for (size_t k = 0; k < len; k++)
        if (e->payload[k] != (unsigned char)(i * 131 + k * 7 + (k >> 8)))
            return false;
    return true;
}

static void expect_next(struct journal_cursor *c, uint64_t i,
                        struct journal_entry *e)
{
    int rc = journal_cursor_next(c, 0, e);
    cr_assert_eq(rc, SPOT_OK, "next (want %" PRIu64 "): %s", i,
                 spot_strerror(rc));
    cr_assert(entry_is(e, i, size_of(i)), "record %" PRIu64 " differs", i);
    cr_assert_eq(e->next.seq, i + 1);
}

static void expect_range(struct journal_cursor *c, uint64_t from, uint64_t to,
                         struct journal_entry *e)
{
    for (uint64_t i = from; i < to; i++)
        expect_next(c, i, e);
}

static void path_of(char *buf, size_t n, const char *dir, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

/* Segment numbers present in dir, ascending; returns how many. */
static size_t segs_in(const char *dir, uint64_t *nums, size_t max)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned long long v;
        char tail[8];
        if (strlen(e->d_name) == 28 &&
            sscanf(e->d_name, "seg-%20llu%4s", &v, tail) == 2 &&
            strcmp(tail, ".log") == 0 && n < max)
            nums[n++] = v;
    }
    closedir(d);
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (nums[b] < nums[a]) {
                uint64_t t = nums[a];
                nums[a] = nums[b];
                nums[b] = t;
            }
    return n;
}

static void seg_path(char *buf, size_t n, const char *dir, uint64_t num)
{
    snprintf(buf, n, "%s/seg-%020" PRIu64 ".log", dir, num);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return (uint64_t)st.st_size;
}

static uint64_t dir_seg_bytes(const char *dir)
{
    uint64_t nums[4096], total = 0;
    size_t n = segs_in(dir, nums, 4096);
    for (size_t i = 0; i < n; i++) {
        char p[512];
        seg_path(p, sizeof p, dir, nums[i]);
        total += file_size(p);
    }
    return total;
}

static void last_seg_path(char *buf, size_t n, const char *dir)
{
    uint64_t nums[4096];
    size_t cnt = segs_in(dir, nums, 4096);
    cr_assert_gt(cnt, 0);
    seg_path(buf, n, dir, nums[cnt - 1]);
}

static void flip_byte(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    unsigned char b;
    cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x5a;
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls cond every millisecond until it holds or ms elapsed. */
#define POLL_UNTIL(cond, ms)                                                   \
    do {                                                                       \
        int64_t poll_end_ = spot_mono_ms() + (ms);                             \
        while (!(cond) && spot_mono_ms() < poll_end_)                          \
            sleep_ms(1);                                                       \
    } while (0)

/* ---- basics ----------------------------------------------------------- */

Test(journal, append_and_read_back_in_order)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    const char *id = journal_id(j);
    cr_assert_eq(strlen(id), 32);
    cr_assert_eq(strspn(id, "0123456789abcdef"), 32);
    char id_copy[33];
    memcpy(id_copy, id, 33);

    append_range(j, 0, 200);
    cr_assert_eq(journal_next_seq(j), 200);
    cr_assert_eq(journal_bytes(j), dir_seg_bytes(dir));

    struct journal_cursor *c = copen(j, "pg");
    cr_assert_eq(journal_cursor_backlog(c), 200);
    struct journal_entry e;
    expect_range(c, 0, 200, &e);
    cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_EAGAIN);

    /* empty topic and payload are records too */
    cr_assert_eq(journal_append(j, NULL, 0, NULL, 0, -5), SPOT_OK);
    cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_OK);
    cr_assert_eq(e.topic_len, 0);
    cr_assert_eq(e.payload_len, 0);
    cr_assert_eq(e.received_us, -5);
    cr_assert_eq(e.next.seq, 201);

    journal_cursor_close(c);
    journal_close(j);
    j = jopen(dir, 100, 1 << 20, 1 << 20);
    cr_assert_str_eq(journal_id(j), id_copy);
    cr_assert_eq(journal_next_seq(j), 201);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, rejects_bad_arguments)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    static char big[65536];
    cr_assert_eq(journal_append(j, big, sizeof big, "x", 1, 0), SPOT_ETOOBIG);
    struct journal_cursor *c = NULL, *c2 = NULL;
    cr_assert_eq(journal_cursor_open(j, "Bad-Name", &c), SPOT_EINVAL);
    cr_assert_eq(journal_cursor_open(j, "", &c), SPOT_EINVAL);
    c = copen(j, "orion_1");
    cr_assert_eq(journal_cursor_open(j, "orion_1", &c2), SPOT_EINVAL);
    journal_cursor_close(c);
    c = copen(j, "orion_1"); /* closed, so it can be opened again */
    journal_cursor_close(c);
    journal_cursor_close(NULL);
    journal_close(j);
    journal_close(NULL);

    struct journal_options o = {dir, 100, 1 << 20, 8};
    cr_assert_eq(journal_open(&j, &o), SPOT_EINVAL);
    tmpdir_rm(dir);
}

Test(journal, second_open_of_same_directory_fails)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    struct journal_options o = {dir, 100, 1 << 20, 1 << 20};
    struct journal *j2 = NULL;
    cr_assert_eq(journal_open(&j2, &o), SPOT_EIO);
    cr_assert_null(j2);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, cursor_resumes_from_checkpoint_after_reopen)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    append_range(j, 0, 10);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    expect_range(c, 0, 4, &e);
    cr_assert_eq(journal_cursor_commit(c, e.next), SPOT_OK);
    cr_assert_eq(journal_cursor_checkpoint(c).seq, 4);
    cr_assert_eq(journal_cursor_backlog(c), 6);
    expect_range(c, 4, 6, &e); /* read but not committed */
    journal_cursor_close(c);
    journal_close(j);

    j = jopen(dir, 100, 1 << 20, 1 << 20);
    c = copen(j, "pg");
    cr_assert_eq(journal_cursor_checkpoint(c).seq, 4);
    cr_assert_eq(journal_cursor_backlog(c), 6);
    expect_range(c, 4, 10, &e);
    cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_EAGAIN);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, two_cursors_are_independent)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    append_range(j, 0, 20);
    struct journal_cursor *a = copen(j, "pg");
    struct journal_cursor *b = copen(j, "orion");
    struct journal_entry e;
    expect_range(a, 0, 20, &e);
    cr_assert_eq(journal_cursor_commit(a, e.next), SPOT_OK);
    expect_range(b, 0, 3, &e);
    cr_assert_eq(journal_cursor_commit(b, e.next), SPOT_OK);
    cr_assert_eq(journal_cursor_backlog(a), 0);
    cr_assert_eq(journal_cursor_backlog(b), 17);
    expect_range(b, 3, 5, &e);
    journal_cursor_close(a);
    journal_cursor_close(b);
    journal_close(j);

    j = jopen(dir, 100, 1 << 20, 1 << 20);
    a = copen(j, "pg");
    b = copen(j, "orion");
    cr_assert_eq(journal_cursor_next(a, 0, &e), SPOT_EAGAIN);
    expect_range(b, 3, 20, &e);
    journal_cursor_close(a);
    journal_cursor_close(b);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, rewind_rereads_from_checkpoint)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    append_range(j, 0, 10);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    expect_range(c, 0, 2, &e);
    cr_assert_eq(journal_cursor_commit(c, e.next), SPOT_OK);
    expect_range(c, 2, 7, &e);
    cr_assert_eq(journal_cursor_rewind(c), SPOT_OK);
    expect_range(c, 2, 10, &e);
    cr_assert_eq(journal_cursor_rewind(c), SPOT_OK);
    expect_range(c, 2, 3, &e);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, seek_validates_and_moves_both_positions)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    append_range(j, 0, 10);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    expect_range(c, 0, 6, &e);
    struct journal_pos at6 = e.next;
    cr_assert_eq(journal_cursor_rewind(c), SPOT_OK);

    struct journal_pos bad = at6;
    bad.offset += 1;
    cr_assert_eq(journal_cursor_seek(c, bad), SPOT_EINVAL);
    bad = at6;
    bad.seq += 1;
    cr_assert_eq(journal_cursor_seek(c, bad), SPOT_EINVAL);
    bad = at6;
    bad.segment += 7;
    cr_assert_eq(journal_cursor_seek(c, bad), SPOT_EINVAL);

    cr_assert_eq(journal_cursor_seek(c, at6), SPOT_OK);
    cr_assert_eq(journal_cursor_checkpoint(c).seq, 6);
    expect_range(c, 6, 10, &e);

    /* not before the checkpoint */
    struct journal_pos start = {0, at6.segment, SEG_HDR};
    cr_assert_eq(journal_cursor_seek(c, start), SPOT_EINVAL);
    cr_assert_eq(journal_cursor_commit(c, start), SPOT_EINVAL);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, commit_ahead_of_reading_moves_read_position)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    append_range(j, 0, 10);
    struct journal_cursor *a = copen(j, "a");
    struct journal_cursor *b = copen(j, "b");
    struct journal_entry e;
    expect_range(a, 0, 8, &e);
    struct journal_pos at8 = e.next;
    /* b commits a position it has not read: it reads on from there */
    cr_assert_eq(journal_cursor_commit(b, at8), SPOT_OK);
    expect_range(b, 8, 10, &e);
    journal_cursor_close(a);
    journal_cursor_close(b);
    journal_close(j);
    tmpdir_rm(dir);
}

/* ---- segments --------------------------------------------------------- */

Test(journal, segments_roll_and_go_only_when_every_cursor_is_past)
{
    char *dir = tmpdir_new();
    uint64_t nums[4096];
    struct journal *j = jopen(dir, 100, 1 << 20, 1024);
    /* "late" registers, then goes away: its checkpoint still counts */
    journal_cursor_close(copen(j, "late"));
    append_range(j, 0, 100);
    size_t nseg = segs_in(dir, nums, 4096);
    cr_assert_gt(nseg, 10, "only %zu segments", nseg);
    for (size_t i = 0; i + 1 < nseg; i++) {
        char p[512];
        seg_path(p, sizeof p, dir, nums[i]);
        cr_assert_leq(file_size(p), 1024);
    }

    struct journal_cursor *a = copen(j, "pg");
    struct journal_entry e;
    expect_range(a, 0, 100, &e);
    cr_assert_eq(journal_cursor_commit(a, e.next), SPOT_OK);
    cr_assert_eq(segs_in(dir, nums, 4096), nseg, "deleted while late lags");
    journal_cursor_close(a);
    journal_close(j);

    /* after a restart the closed cursor's checkpoint still holds them */
    j = jopen(dir, 100, 1 << 20, 1024);
    cr_assert_eq(segs_in(dir, nums, 4096), nseg);
    append_range(j, 100, 110);
    size_t nseg2 = segs_in(dir, nums, 4096);

    struct journal_cursor *late = copen(j, "late");
    expect_range(late, 0, 50, &e);
    cr_assert_eq(journal_cursor_commit(late, e.next), SPOT_OK);
    /* pg is at 100: everything before seq 50 can go */
    size_t nseg3 = segs_in(dir, nums, 4096);
    cr_assert_lt(nseg3, nseg2);
    cr_assert_eq(journal_bytes(j), dir_seg_bytes(dir));
    journal_cursor_rewind(late);
    expect_range(late, 50, 110, &e);
    cr_assert_eq(journal_cursor_commit(late, e.next), SPOT_OK);
    /* pg is still at 100 */
    a = copen(j, "pg");
    expect_range(a, 100, 110, &e);
    cr_assert_eq(journal_cursor_commit(a, e.next), SPOT_OK);
    /* only the active segment is left */
    cr_assert_eq(segs_in(dir, nums, 4096), 1);
    cr_assert_eq(journal_bytes(j), dir_seg_bytes(dir));

    /* a cursor new to this journal starts at the oldest record kept */
    struct journal_cursor *fresh = copen(j, "fresh");
    append_range(j, 110, 112);
    uint64_t s0 = journal_cursor_checkpoint(fresh).seq;
    cr_assert_leq(s0, 110);
    for (uint64_t i = s0; i < 112; i++)
        expect_next(fresh, i, &e);
    journal_cursor_close(fresh);
    journal_cursor_close(late);
    journal_cursor_close(a);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, no_cursor_means_nothing_is_deleted)
{
    char *dir = tmpdir_new();
    uint64_t nums[4096];
    struct journal *j = jopen(dir, 100, 1 << 20, 512);
    append_range(j, 0, 50);
    size_t n = segs_in(dir, nums, 4096);
    cr_assert_gt(n, 3);
    journal_close(j);
    j = jopen(dir, 100, 1 << 20, 512);
    cr_assert_eq(segs_in(dir, nums, 4096), n);
    cr_assert_eq(journal_next_seq(j), 50);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    expect_range(c, 0, 50, &e);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

/* ---- recovery --------------------------------------------------------- */

/* Offset of record i (content id == seq) in a single-segment journal. */
static uint64_t offset_of(uint64_t i)
{
    uint64_t off = SEG_HDR;
    char topic[64];
    for (uint64_t k = 0; k < i; k++)
        off += REC_HDR + topic_of(k, topic, sizeof topic) + size_of(k);
    return off;
}

Test(journal, torn_tail_is_cut_and_appends_continue)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    append_range(j, 0, 10);
    journal_close(j);
    char p[512];
    last_seg_path(p, sizeof p, dir);
    uint64_t size = file_size(p);
    /* cut in the middle of the last record */
    cr_assert_eq(truncate(p, (off_t)(size - 5)), 0);

    j = jopen(dir, 100, 1 << 20, 1 << 20);
    cr_assert_eq(journal_next_seq(j), 9);
    cr_assert_eq(size, offset_of(10));
    cr_assert_eq(file_size(p), offset_of(9));
    append_range(j, 9, 12);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    expect_range(c, 0, 12, &e);
    journal_cursor_close(c);
    journal_close(j);

    /* a torn header (fewer than 32 bytes left) */
    cr_assert_eq(truncate(p, (off_t)(offset_of(11) + 20)), 0);
    j = jopen(dir, 100, 1 << 20, 1 << 20);
    cr_assert_eq(journal_next_seq(j), 11);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, garbage_after_the_last_record_is_cut)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    append_range(j, 0, 10);
    journal_close(j);
    char p[512];
    last_seg_path(p, sizeof p, dir);
    uint64_t size = file_size(p);
    FILE *f = fopen(p, "ab");
    cr_assert_not_null(f);
    for (int i = 0; i < 1000; i++)
        fputc((i * 97) & 0xff, f);
    fclose(f);

    j = jopen(dir, 100, 1 << 20, 1 << 20);
    cr_assert_eq(journal_next_seq(j), 10);
    cr_assert_eq(file_size(p), size);
    append_range(j, 10, 11);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    expect_range(c, 0, 11, &e);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, bad_checksum_in_last_segment_cuts_there)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    append_range(j, 0, 10);
    journal_close(j);
    char p[512];
    last_seg_path(p, sizeof p, dir);
    cr_assert_eq(file_size(p), offset_of(10));
    /* a payload byte of record 5 */
    flip_byte(p, offset_of(5) + REC_HDR + 20 + 3);
    j = jopen(dir, 100, 1 << 20, 1 << 20);
    cr_assert_eq(journal_next_seq(j), 5);
    cr_assert_eq(file_size(p), offset_of(5));
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    expect_range(c, 0, 5, &e);
    cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_EAGAIN);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, corrupt_record_in_sealed_segment_is_skipped)
{
    char *dir = tmpdir_new();
    uint64_t nums[4096];
    struct journal *j = jopen(dir, 100, 1 << 20, 2048);
    append_range(j, 0, 60);
    journal_close(j);
    size_t n = segs_in(dir, nums, 4096);
    cr_assert_geq(n, 3);
    /* second record of the first segment: its topic */
    char p[512];
    seg_path(p, sizeof p, dir, nums[0]);
    flip_byte(p, offset_of(1) + REC_HDR + 2);

    j = jopen(dir, 100, 1 << 20, 2048);
    cr_assert_eq(journal_next_seq(j), 60);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    expect_next(c, 0, &e);
    /* the rest of segment 1 is skipped; reading goes on in segment 2 */
    cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_OK);
    uint64_t first2 = e.next.seq - 1;
    cr_assert_gt(first2, 1);
    cr_assert_eq(e.next.segment, nums[1]);
    cr_assert(entry_is(&e, first2, size_of(first2)));
    expect_range(c, first2 + 1, 60, &e);
    cr_assert_eq(journal_cursor_commit(c, e.next), SPOT_OK);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

/* The position just before a corrupt record is a good one: committing it
 * was refused ("refusing position") because the check read the record
 * that starts there (found by fuzzing). */
Test(journal, commit_before_a_corrupt_record_is_accepted)
{
    char *dir = tmpdir_new();
    uint64_t nums[4096];
    struct journal *j = jopen(dir, 100, 1 << 20, 2048);
    append_range(j, 0, 60);
    journal_close(j);
    size_t n = segs_in(dir, nums, 4096);
    cr_assert_geq(n, 3);
    char p[512];
    seg_path(p, sizeof p, dir, nums[0]);
    flip_byte(p, offset_of(1) + 29); /* record 1's payload length */

    j = jopen(dir, 100, 1 << 20, 2048);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    expect_next(c, 0, &e);
    cr_assert_eq(journal_cursor_commit(c, e.next), SPOT_OK);
    cr_assert_eq(journal_cursor_checkpoint(c).seq, 1);
    /* a position nobody read up to is still checked */
    struct journal_pos bogus = e.next;
    bogus.offset += 1;
    bogus.seq += 1;
    cr_assert_neq(journal_cursor_commit(c, bogus), SPOT_OK);
    /* reading goes on past the corrupt record, in segment 2 */
    cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_OK);
    cr_assert_eq(e.next.segment, nums[1]);
    cr_assert_eq(journal_cursor_commit(c, e.next), SPOT_OK);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

/* A checkpoint file the disk refuses (here: its temp name is taken by a
 * directory) makes the commit fail, yet the position counts: segments
 * every cursor is past still go, so that a full disk gets room again.
 * The next commit that can write the file makes it durable. */
Test(journal, commit_counts_when_the_checkpoint_file_fails)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 2048);
    struct journal_cursor *c = copen(j, "pg");
    append_range(j, 0, 60);
    uint64_t nums[4096];
    size_t before = segs_in(dir, nums, 4096);
    cr_assert_geq(before, 3);
    char tmp[512];
    path_of(tmp, sizeof tmp, dir, "checkpoint.pg.tmp");
    cr_assert_eq(mkdir(tmp, 0700), 0);
    struct journal_entry e;
    expect_range(c, 0, 60, &e);
    cr_assert_eq(journal_cursor_commit(c, e.next), SPOT_EIO);
    cr_assert_eq(journal_cursor_checkpoint(c).seq, 60);
    cr_assert_eq(journal_cursor_backlog(c), 0);
    cr_assert_eq(segs_in(dir, nums, 4096), 1, "sealed segments were kept");
    cr_assert_eq(rmdir(tmp), 0);
    append_range(j, 60, 61);
    expect_next(c, 60, &e);
    cr_assert_eq(journal_cursor_commit(c, e.next), SPOT_OK);
    journal_cursor_close(c);
    journal_close(j);
    j = jopen(dir, 100, 1 << 20, 2048);
    c = copen(j, "pg");
    cr_assert_eq(journal_cursor_checkpoint(c).seq, 61);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

/* A power cut lost the journal's last records after the sink confirmed
 * them: the seq must not be reused. */
Test(journal, checkpoint_ahead_of_journal_moves_seq_forward)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    append_range(j, 0, 10);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    expect_range(c, 0, 10, &e);
    cr_assert_eq(journal_cursor_commit(c, e.next), SPOT_OK);
    journal_cursor_close(c);
    journal_close(j);
    char p[512];
    last_seg_path(p, sizeof p, dir);
    cr_assert_eq(truncate(p, (off_t)offset_of(7)), 0);

    j = jopen(dir, 100, 1 << 20, 1 << 20);
    cr_assert_eq(journal_next_seq(j), 10);
    c = copen(j, "pg");
    cr_assert_eq(journal_cursor_checkpoint(c).seq, 10);
    cr_assert_eq(journal_cursor_backlog(c), 0);
    append_range(j, 10, 12);
    expect_range(c, 10, 12, &e);
    journal_cursor_close(c);
    journal_close(j);

    j = jopen(dir, 100, 1 << 20, 1 << 20);
    c = copen(j, "pg");
    cr_assert_eq(journal_cursor_checkpoint(c).seq, 10);
    expect_range(c, 10, 12, &e);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, unreadable_checkpoint_restarts_from_oldest)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    append_range(j, 0, 10);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    expect_range(c, 0, 5, &e);
    cr_assert_eq(journal_cursor_commit(c, e.next), SPOT_OK);
    journal_cursor_close(c);
    journal_close(j);
    char p[512];
    path_of(p, sizeof p, dir, "checkpoint.pg");
    flip_byte(p, 40);
    j = jopen(dir, 100, 1 << 20, 1 << 20);
    c = copen(j, "pg");
    cr_assert_eq(journal_cursor_checkpoint(c).seq, 0);
    expect_range(c, 0, 10, &e);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

/* ---- the bound and shutdown ------------------------------------------- */

struct writer_arg {
    struct journal *j;
    uint64_t from, to;
    size_t len; /* 0: size_of(i) */
    atomic_ullong done;
    atomic_int rc;
};

static void *writer_main(void *p)
{
    struct writer_arg *w = p;
    char topic[64];
    unsigned char *buf = malloc(w->len ? w->len : 300);
    for (uint64_t i = w->from; i < w->to; i++) {
        size_t len = w->len ? w->len : size_of(i);
        size_t tlen = topic_of(i, topic, sizeof topic);
        payload_of(i, buf, len);
        int rc =
            journal_append(w->j, topic, tlen, buf, len, (int64_t)i * 1000 + 7);
        if (rc != SPOT_OK) {
            atomic_store(&w->rc, rc);
            break;
        }
        atomic_store(&w->done, i + 1 - w->from);
    }
    free(buf);
    return NULL;
}

Test(journal, full_journal_blocks_append_until_a_commit)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 4096, 1024);
    struct journal_cursor *c = copen(j, "pg");
    struct writer_arg w = {.j = j, .from = 0, .to = 100, .len = 200};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, writer_main, &w), 0);
    POLL_UNTIL(journal_is_full(j), 10000);
    cr_assert(journal_is_full(j), "append never blocked");
    uint64_t stuck = atomic_load(&w.done);
    cr_assert_lt(stuck, 100);
    cr_assert_geq(journal_bytes(j), 4096);

    /* read and commit everything that arrives: the writer gets through */
    struct journal_entry e;
    uint64_t got = 0;
    int64_t end = spot_mono_ms() + 20000;
    while (got < 100 && spot_mono_ms() < end) {
        int rc = journal_cursor_next(c, 100, &e);
        if (rc == SPOT_EAGAIN)
            continue;
        cr_assert_eq(rc, SPOT_OK);
        cr_assert(entry_is(&e, got, 200));
        got++;
        cr_assert_eq(journal_cursor_commit(c, e.next), SPOT_OK);
    }
    cr_assert_eq(got, 100);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&w.rc), SPOT_OK);
    cr_assert_eq(atomic_load(&w.done), 100);
    cr_assert_not(journal_is_full(j));
    cr_assert_leq(journal_bytes(j), 4096 + 1024);
    cr_assert_eq(journal_bytes(j), dir_seg_bytes(dir));
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

/* The bound smaller than one segment: once every cursor has caught up, the
 * active segment is rolled so it can be deleted. */
Test(journal, bound_below_segment_size_does_not_deadlock)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 2000, 1 << 20);
    struct journal_cursor *c = copen(j, "pg");
    struct writer_arg w = {.j = j, .from = 0, .to = 50, .len = 100};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, writer_main, &w), 0);
    struct journal_entry e;
    uint64_t got = 0;
    int64_t end = spot_mono_ms() + 20000;
    while (got < 50 && spot_mono_ms() < end) {
        int rc = journal_cursor_next(c, 100, &e);
        if (rc == SPOT_EAGAIN)
            continue;
        cr_assert_eq(rc, SPOT_OK);
        cr_assert(entry_is(&e, got, 100));
        got++;
        cr_assert_eq(journal_cursor_commit(c, e.next), SPOT_OK);
    }
    cr_assert_eq(got, 50);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&w.done), 50);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, shutdown_unblocks_a_full_append)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 2048, 1024);
    journal_cursor_close(copen(j, "pg")); /* registered, never commits */
    struct writer_arg w = {.j = j, .from = 0, .to = 40, .len = 200};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, writer_main, &w), 0);
    POLL_UNTIL(journal_is_full(j), 10000);
    cr_assert(journal_is_full(j));
    cr_assert_lt(atomic_load(&w.done), 40);
    journal_shutdown(j);
    POLL_UNTIL(atomic_load(&w.done) == 40, 10000);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&w.rc), SPOT_OK);
    cr_assert_eq(atomic_load(&w.done), 40);
    cr_assert_gt(journal_bytes(j), 2048);
    cr_assert_not(journal_is_full(j));

    /* nothing was lost, and the cursor ends with SPOT_ESHUTDOWN */
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    for (uint64_t i = 0; i < 40; i++) {
        cr_assert_eq(journal_cursor_next(c, 1000, &e), SPOT_OK);
        cr_assert(entry_is(&e, i, 200));
    }
    cr_assert_eq(journal_cursor_next(c, 1000, &e), SPOT_ESHUTDOWN);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, cursor_timeout_returns_eagain)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_EAGAIN);
    int64_t t0 = spot_mono_ms();
    cr_assert_eq(journal_cursor_next(c, 80, &e), SPOT_EAGAIN);
    cr_assert_geq(spot_mono_ms() - t0, 75);
    append_range(j, 0, 1);
    cr_assert_eq(journal_cursor_next(c, 80, &e), SPOT_OK);
    cr_assert(entry_is(&e, 0, size_of(0)));
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

struct reader_arg {
    struct journal_cursor *c;
    int timeout_ms;
    atomic_int rc;
    atomic_int finished;
};

static void *wait_main(void *p)
{
    struct reader_arg *r = p;
    struct journal_entry e;
    atomic_store(&r->rc, journal_cursor_next(r->c, r->timeout_ms, &e));
    atomic_store(&r->finished, 1);
    return NULL;
}

Test(journal, shutdown_ends_cursors_once_caught_up)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 100, 1 << 20, 1 << 20);
    struct journal_cursor *c = copen(j, "pg");
    struct reader_arg r = {.c = c, .timeout_ms = -1};
    atomic_init(&r.rc, -1);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, wait_main, &r), 0);
    journal_shutdown(j);
    POLL_UNTIL(atomic_load(&r.finished), 10000);
    cr_assert(atomic_load(&r.finished), "waiting cursor not woken");
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&r.rc), SPOT_ESHUTDOWN);

    /* appends still write; the cursor reads them, then SPOT_ESHUTDOWN */
    append_range(j, 0, 3);
    struct journal_entry e;
    expect_range(c, 0, 3, &e);
    cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_ESHUTDOWN);
    cr_assert_eq(journal_cursor_next(c, 500, &e), SPOT_ESHUTDOWN);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

/* ---- write path variants ---------------------------------------------- */

Test(journal, fsync_every_append)
{
    char *dir = tmpdir_new();
    struct journal *j = jopen(dir, 0, 1 << 20, 4096);
    append_range(j, 0, 30);
    cr_assert_eq(journal_sync(j), SPOT_OK);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    expect_range(c, 0, 30, &e);
    cr_assert_eq(journal_cursor_commit(c, e.next), SPOT_OK);
    journal_cursor_close(c);
    journal_close(j);
    j = jopen(dir, 0, 1 << 20, 4096);
    cr_assert_eq(journal_next_seq(j), 30);
    journal_close(j);
    tmpdir_rm(dir);
}

Test(journal, large_payloads)
{
    char *dir = tmpdir_new();
    const size_t big = 1 << 20;
    struct journal *j = jopen(dir, 100, 64 << 20, 3 << 20);
    for (uint64_t i = 0; i < 8; i++)
        append_one(j, i, i % 2 ? big : 10 + i);
    cr_assert_eq(journal_sync(j), SPOT_OK);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    for (uint64_t i = 0; i < 8; i++) {
        cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_OK);
        cr_assert(entry_is(&e, i, i % 2 ? big : 10 + i), "record %" PRIu64, i);
    }
    journal_cursor_close(c);
    journal_close(j);
    /* the open-time scan validates the big records of the last segment */
    j = jopen(dir, 100, 64 << 20, 3 << 20);
    cr_assert_eq(journal_next_seq(j), 8);
    c = copen(j, "pg");
    for (uint64_t i = 0; i < 8; i++) {
        cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_OK);
        cr_assert(entry_is(&e, i, i % 2 ? big : 10 + i));
    }
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

/* ---- concurrency ------------------------------------------------------ */

struct verify_arg {
    struct journal_cursor *c;
    uint64_t n;
    atomic_ullong got;
    atomic_int bad;
};

static void *verify_main(void *p)
{
    struct verify_arg *v = p;
    struct journal_entry e;
    uint64_t i = 0;
    int64_t end = spot_mono_ms() + 120000;
    while (i < v->n && spot_mono_ms() < end) {
        int rc = journal_cursor_next(v->c, 200, &e);
        if (rc == SPOT_EAGAIN)
            continue;
        if (rc != SPOT_OK || e.next.seq != i + 1 ||
            !entry_is(&e, i, size_of(i))) {
            atomic_store(&v->bad, 1);
            break;
        }
        i++;
        atomic_store(&v->got, i);
        if (i % 500 == 0 && journal_cursor_commit(v->c, e.next) != SPOT_OK) {
            atomic_store(&v->bad, 2);
            break;
        }
    }
    if (i == v->n && journal_cursor_commit(v->c, e.next) != SPOT_OK)
        atomic_store(&v->bad, 3);
    return NULL;
}

Test(journal, concurrent_writer_and_reader_100k, .timeout = 300)
{
    char *dir = tmpdir_new();
    /* small segments and a small bound: rolls, removals, back-pressure */
    struct journal *j = jopen(dir, 5, 4 << 20, 256 << 10);
    struct journal_cursor *c = copen(j, "pg");
    const uint64_t n = 100000;
    struct writer_arg w = {.j = j, .from = 0, .to = n, .len = 0};
    struct verify_arg v = {.c = c, .n = n};
    pthread_t tw, tr;
    cr_assert_eq(pthread_create(&tr, NULL, verify_main, &v), 0);
    cr_assert_eq(pthread_create(&tw, NULL, writer_main, &w), 0);
    /* a third thread's view: the getters are safe anywhere */
    while (atomic_load(&v.got) < n && !atomic_load(&v.bad) &&
           atomic_load(&w.rc) == SPOT_OK) {
        (void)journal_bytes(j);
        (void)journal_is_full(j);
        (void)journal_cursor_backlog(c);
        (void)journal_cursor_checkpoint(c);
        sleep_ms(2);
    }
    pthread_join(tw, NULL);
    pthread_join(tr, NULL);
    cr_assert_eq(atomic_load(&w.rc), SPOT_OK);
    cr_assert_eq(atomic_load(&v.bad), 0, "reader failed (%d) at %llu",
                 atomic_load(&v.bad), (unsigned long long)atomic_load(&v.got));
    cr_assert_eq(atomic_load(&v.got), n);
    cr_assert_eq(journal_next_seq(j), n);
    cr_assert_eq(journal_cursor_backlog(c), 0);
    cr_assert_eq(journal_bytes(j), dir_seg_bytes(dir));
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}

/* ---- a writer killed with SIGKILL ------------------------------------- */

static void child_writer(const char *dir, int fd) __attribute__((noreturn));
static void child_writer(const char *dir, int fd)
{
    struct journal_options o = {dir, 100, 1ull << 30, 1 << 20};
    struct journal *j = NULL;
    if (journal_open(&j, &o) != SPOT_OK)
        _exit(2);
    static unsigned char buf[60000];
    char topic[64];
    for (uint64_t i = 0;; i++) {
        /* sizes up to ~60 KB so a kill may land inside a write */
        size_t len = (size_t)((i * 7919) % sizeof buf);
        size_t tlen = topic_of(i, topic, sizeof topic);
        payload_of(i, buf, len);
        if (journal_append(j, topic, tlen, buf, len, (int64_t)i * 1000 + 7) !=
            SPOT_OK)
            _exit(3);
        uint64_t n = i + 1;
        if (write(fd, &n, sizeof n) != (ssize_t)sizeof n)
            _exit(4);
    }
}

Test(journal, sigkill_leaves_a_consistent_prefix, .timeout = 120)
{
    char *dir = tmpdir_new();
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(pfd[0]);
        child_writer(dir, pfd[1]);
    }
    close(pfd[1]);
    uint64_t acked = 0, n;
    while (acked < 2000 && read(pfd[0], &n, sizeof n) == (ssize_t)sizeof n)
        acked = n;
    cr_assert_geq(acked, 2000, "child stopped early");
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    while (read(pfd[0], &n, sizeof n) == (ssize_t)sizeof n)
        acked = n;
    close(pfd[0]);

    /* every append that returned is there; at most one more that had not
     * been reported yet; nothing torn */
    struct journal *j = jopen(dir, 100, 1ull << 30, 1 << 20);
    uint64_t have = journal_next_seq(j);
    cr_assert(have == acked || have == acked + 1,
              "acked %" PRIu64 ", journal has %" PRIu64, acked, have);
    struct journal_cursor *c = copen(j, "pg");
    struct journal_entry e;
    for (uint64_t i = 0; i < have; i++) {
        cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_OK);
        cr_assert(entry_is(&e, i, (size_t)((i * 7919) % 60000)),
                  "record %" PRIu64, i);
    }
    cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_EAGAIN);
    /* and it goes on from there */
    append_one(j, have, 10);
    cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_OK);
    cr_assert(entry_is(&e, have, 10));
    cr_assert_eq(e.next.seq, have + 1);
    journal_cursor_close(c);
    journal_close(j);
    tmpdir_rm(dir);
}
