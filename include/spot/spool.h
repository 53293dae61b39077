/*
 * The device's store-and-forward spool: a bounded on-disk FIFO of MQTT
 * messages (topic, QoS, retain flag, payload), in append-only segment files
 * with a CRC per record. Every measurement goes through it: the measuring
 * thread appends, the publisher reads from the head in order and releases
 * what the broker acknowledged. A restart loses nothing that was queued;
 * when the bound is hit the oldest segment is dropped and its messages
 * counted. Design, file format and fsync policy: docs/internals/spool.md.
 *
 * Threads: every function may be called from any thread (one mutex). The
 * single reader (the publisher) owns the cursor: spool_next() and
 * spool_rewind() must be called by one thread at a time.
 */
#ifndef SPOT_SPOOL_H
#define SPOT_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spool;

struct spool_opts {
    const char *dir;        /* created if missing (one level); copied */
    uint64_t max_bytes;     /* bound of the segment files together */
    uint64_t segment_bytes; /* 0: max_bytes / SPOT_SPOOL_SEGMENTS */
    int fsync_ms; /* 0: fdatasync every append; > 0: at most this often
                     (on the appending thread); -1: never (simulators) */
};

/* One message handed out by spool_next(). topic and payload are borrowed
 * from the spool's read buffer until the next spool_next() or
 * spool_rewind(). */
struct spool_item {
    uint64_t seq; /* position in the spool; increasing, never reused */
    const char *topic;
    size_t topic_len;
    const unsigned char *payload;
    size_t payload_len;
    int qos;
    bool retain;
};

struct spool_stats {
    uint64_t pending;       /* messages queued and not released */
    uint64_t pending_bytes; /* their record bytes */
    uint64_t disk_bytes;    /* bytes of all segment files */
    uint64_t appended;      /* since open */
    uint64_t released;      /* since open: acknowledged and removed */
    uint64_t dropped;       /* since open: oldest dropped (bound, disk full) */
    uint64_t recovered;     /* found queued at open */
    uint64_t truncated;     /* torn or corrupt records cut at open */
    uint64_t segments;
};

/* Opens (or creates) the spool in o->dir, takes an exclusive lock on it
 * (a second process gets SPOT_EAGAIN), scans every segment, cuts a torn
 * tail, and positions the reader at the oldest unreleased message.
 * Returns SPOT_OK, SPOT_EINVAL (bad options), SPOT_EAGAIN (locked),
 * SPOT_EIO, SPOT_ENOMEM. */
int spool_open(struct spool **out, const struct spool_opts *o);

/* Writes the head, syncs (unless fsync_ms is -1), closes; accepts NULL. */
void spool_close(struct spool *s);

/* Appends one message (topic and payload copied). When the bound would be
 * exceeded, drops the oldest segment first (counted in dropped). Returns
 * SPOT_OK, SPOT_ETOOBIG (message larger than a segment or the record cap),
 * SPOT_EINVAL (qos), SPOT_EIO (errno set; nothing was appended). */
int spool_append(struct spool *s, const char *topic, int qos, bool retain,
                 const void *payload, size_t len);

/* The message after the last one handed out, in order; advances the read
 * cursor. Returns SPOT_OK, SPOT_EAGAIN (nothing more yet), SPOT_EIO. */
int spool_next(struct spool *s, struct spool_item *out);

/* Moves the read cursor back to the oldest unreleased message (after a
 * connection loss: what was in flight is sent again). */
void spool_rewind(struct spool *s);

/* Releases every message whose seq is below upto (delivered). Segments
 * that hold only released messages are deleted. */
void spool_release(struct spool *s, uint64_t upto);

/* The seq the next appended message will get (one past the newest). */
uint64_t spool_tail(struct spool *s);

/* fdatasync of the active segment and of the head (unless fsync_ms -1). */
int spool_sync(struct spool *s);

void spool_get_stats(struct spool *s, struct spool_stats *out);

#endif
