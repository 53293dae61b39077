/*
 * Exponential back-off with "equal jitter" for every retry loop of the
 * project: the delay doubles from SPOT_BACKOFF_MIN_MS up to
 * SPOT_BACKOFF_MAX_MS, and each wait is half that plus a random half, so
 * agents that lost the same peer do not retry in step. A struct backoff
 * belongs to one thread.
 */
#ifndef SPOT_BACKOFF_H
#define SPOT_BACKOFF_H

#include <stdint.h>

struct backoff {
    unsigned current_ms; /* 0: no failure since the last reset */
    uint64_t rng;        /* xorshift64 state, never 0 */
};

/* Seeds the jitter from the clock, the process and the object address. */
void backoff_init(struct backoff *b);

/* The delay to wait before the next attempt, in milliseconds. */
unsigned backoff_next(struct backoff *b);

/* After a success: the next failure starts again from the minimum. */
void backoff_reset(struct backoff *b);

#endif
