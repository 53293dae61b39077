/*
 * The crash-safe, append-only local journal between MQTT ingress and the
 * sinks (design: docs/internals/journal.md).
 *
 * One writer (the Paho callback thread) appends records; each sink owns one
 * cursor, reads records in order from its own checkpoint and commits a new
 * checkpoint only after its peer confirmed. A record is in the kernel's page
 * cache when journal_append() returns, so a killed process loses nothing; a
 * flusher fsyncs on an interval (0 = inside every append) to bound what a
 * power cut can lose. Segments are deleted once every cursor is past them.
 *
 * Threads: appends from any thread (they are serialised); each cursor from
 * one thread at a time (different cursors from different threads); the
 * remaining calls from any thread.
 */
#ifndef SPOT_JOURNAL_H
#define SPOT_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

struct journal_options {
    const char *dir;            /* created if missing; copied */
    unsigned fsync_interval_ms; /* 0: fdatasync inside every append */
    uint64_t max_bytes;         /* bound of all segments together */
    uint32_t segment_bytes;     /* roll to a new segment past this */
};

/* A position in the journal: seq is the number of records before it since
 * the journal was created (monotonic, never reused); segment and offset say
 * where that record starts. */
struct journal_pos {
    uint64_t seq;
    uint64_t segment;
    uint64_t offset;
};

/* One record, borrowed from the cursor until its next call. */
struct journal_entry {
    const char *topic; /* NOT NUL-terminated */
    size_t topic_len;
    const unsigned char *payload;
    size_t payload_len;
    int64_t received_us;     /* receive time, µs since the epoch */
    struct journal_pos next; /* position just after this record: commit it
                                once this record is confirmed */
};

struct journal;
struct journal_cursor;

/* Opens (or creates) the journal in opt->dir, truncating a torn tail left
 * by a crash. Returns SPOT_OK, SPOT_EIO or SPOT_ECORRUPT. */
int journal_open(struct journal **out, const struct journal_options *opt);

/* Syncs and closes; every cursor must be closed first. Accepts NULL. */
void journal_close(struct journal *j);

/* A random identifier made when the journal directory was created (32 hex
 * characters). Sinks that keep a checkpoint elsewhere store it beside. */
const char *journal_id(const struct journal *j);

/* Appends one record. Blocks while the journal is over max_bytes, until a
 * cursor frees space or journal_shutdown() is called (then writes past the
 * bound: a message already received is never refused, and SPOT_OK says it
 * was written). When the file system is full and every cursor has
 * committed everything, the active segment is rolled and deleted to make
 * room. Returns SPOT_OK, SPOT_ETOOBIG (topic > 65535 or payload > 2^31) or
 * SPOT_EIO. */
int journal_append(struct journal *j, const char *topic, size_t topic_len,
                   const void *payload, size_t payload_len,
                   int64_t received_us);

/* The same without waiting on the bound: for the few records sinks append
 * themselves (dead letters, see dead_record.h), which must never wait for
 * a cursor that may be their own. */
int journal_append_unbounded(struct journal *j, const char *topic,
                             size_t topic_len, const void *payload,
                             size_t payload_len, int64_t received_us);

/* fdatasync now (used at shutdown and by the flusher). */
int journal_sync(struct journal *j);

/* Wakes every blocked append and cursor wait. Appends write from then on
 * without waiting; cursors return SPOT_ESHUTDOWN once caught up. */
void journal_shutdown(struct journal *j);

/* Bytes held by all segments, records appended in total (the next seq),
 * and 1 while an append is blocked on the bound. */
uint64_t journal_bytes(const struct journal *j);
uint64_t journal_next_seq(const struct journal *j);
int journal_is_full(const struct journal *j);
/* 1 from an append the file system refused (disk full, I/O error) until
 * the next one it takes: the ingress is holding messages at the broker. */
int journal_is_failing(const struct journal *j);

/* Opens the cursor called name ([a-z0-9_]+), positioned at its checkpoint
 * (file "checkpoint.<name>" in the journal directory), or at the oldest
 * record when it has none. */
int journal_cursor_open(struct journal *j, const char *name,
                        struct journal_cursor **out);

/* Closes the cursor (its checkpoint stays on disk). Accepts NULL. */
void journal_cursor_close(struct journal_cursor *c);

/* Reads the next record. Returns SPOT_OK with *out filled, SPOT_EAGAIN when
 * none arrived within timeout_ms (0: do not wait), SPOT_ESHUTDOWN after
 * journal_shutdown() once nothing is left to read, SPOT_EIO or
 * SPOT_ECORRUPT. */
int journal_cursor_next(struct journal_cursor *c, int timeout_ms,
                        struct journal_entry *out);

/* Durably records that everything before pos is confirmed (atomic file
 * replace), then lets the journal delete segments every cursor is past.
 * SPOT_EIO: the checkpoint file could not be written (disk full); the
 * position still counts for deleting segments, and the next commit tries
 * the file again. */
int journal_cursor_commit(struct journal_cursor *c, struct journal_pos pos);

/* Moves the read position back to the last committed checkpoint (after a
 * failed batch, to send it again). */
int journal_cursor_rewind(struct journal_cursor *c);

/* Moves the read position (and the committed checkpoint) to pos, which
 * must be a position this journal handed out and not before the current
 * checkpoint; used when a sink keeps a newer checkpoint of its own. */
int journal_cursor_seek(struct journal_cursor *c, struct journal_pos pos);

/* Committed checkpoint, and records appended but not yet committed. */
struct journal_pos journal_cursor_checkpoint(const struct journal_cursor *c);
uint64_t journal_cursor_backlog(const struct journal_cursor *c);

#endif
