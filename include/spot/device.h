/*
 * The device core: one Smart Spot-like device. At the end of each sampling
 * period it samples every configured sensor over the period, encodes one
 * message per reading (spot/message.h) with TimeInstant = the period's
 * start, and appends it to the store-and-forward spool (spot/spool.h),
 * from which the publisher (spot/publisher.h) sends in order. Every
 * measurement goes through the spool, connected or not.
 *
 * The clock can run faster than real time (tests, demos): simulated time
 * = start + elapsed real time x speed.
 *
 * Threads: device_tick and device_shutdown from one thread (the daemon's
 * main loop); device_connected and device_get_stats from any thread.
 */
#ifndef SPOT_DEVICE_H
#define SPOT_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "spot/device_config.h"
#include "spot/publisher.h"
#include "spot/schema.h"
#include "spot/spool.h"

struct device;

struct device_opts {
    const struct device_config *cfg;  /* validated; borrowed, outlives d */
    const struct schema_set *schemas; /* borrowed, outlives d */
    double speed;    /* simulated seconds per real second; 0 means 1 */
    int64_t start_s; /* simulated time at start, Unix s; 0: now */
};

struct device_stats {
    uint64_t periods;         /* sampling periods measured */
    uint64_t messages;        /* messages appended to the spool */
    uint64_t encode_errors;   /* readings that could not be encoded */
    uint64_t spool_errors;    /* messages the spool refused (disk) */
    uint64_t skipped_periods; /* after a stall longer than the catch-up cap */
    uint64_t sensors_failed;  /* sensors that failed their probe */
    int64_t last_period_s;    /* start of the last period measured, or -1 */
    struct spool_stats spool;
    struct publisher_stats pub;
};

/* Creates and probes the sensors, opens the spool (resending what an
 * earlier run left) and prepares the publisher. Returns SPOT_OK,
 * SPOT_EAGAIN (the spool is used by another process), SPOT_EIO,
 * SPOT_EINVAL, SPOT_ENOMEM; the reason is logged. */
int device_new(struct device **out, const struct device_opts *o);

/* Starts the publisher (it connects when resource 0 is true). */
int device_start(struct device *d);

/* Measures every period that ended by now. *wait_ms: real milliseconds
 * until the next period ends. Returns SPOT_OK. */
int device_tick(struct device *d, int64_t *wait_ms);

/* SIGTERM: sends what is queued for up to drain_ms, disconnects cleanly
 * (no Last Will) and syncs the spool. What is left stays queued on disk.
 * Returns SPOT_OK, or SPOT_EAGAIN when messages were left. */
int device_shutdown(struct device *d, int drain_ms);

void device_free(struct device *d);

/* Resource 17. */
bool device_connected(struct device *d);

void device_get_stats(struct device *d, struct device_stats *out);

/* Simulated time now, Unix seconds. */
int64_t device_now(struct device *d);

#endif
