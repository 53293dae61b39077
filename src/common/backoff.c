/* Exponential back-off with jitter (see include/spot/backoff.h). */
#include <unistd.h>

#include "spot/backoff.h"
#include "spot/clock.h"
#include "spot/limits.h"

void backoff_init(struct backoff *b)
{
    b->current_ms = 0;
    b->rng = (uint64_t)spot_now_us() ^ ((uint64_t)getpid() << 32) ^
             (uint64_t)(uintptr_t)b;
    if (b->rng == 0)
        b->rng = 0x9e3779b97f4a7c15ull;
}

unsigned backoff_next(struct backoff *b)
{
    if (b->current_ms == 0)
        b->current_ms = SPOT_BACKOFF_MIN_MS;
    else if (b->current_ms < SPOT_BACKOFF_MAX_MS / 2)
        b->current_ms *= 2;
    else
        b->current_ms = SPOT_BACKOFF_MAX_MS;
    b->rng ^= b->rng << 13; /* xorshift64 */
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    unsigned half = b->current_ms / 2;
    return half + (unsigned)(b->rng % (half + 1));
}

void backoff_reset(struct backoff *b)
{
    b->current_ms = 0;
}
