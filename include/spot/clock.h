/* Time helpers shared by every module. Any thread. */
#ifndef SPOT_CLOCK_H
#define SPOT_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Wall-clock time in microseconds since the Unix epoch. */
static inline int64_t spot_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Monotonic time in milliseconds, for deadlines and back-off. */
static inline int64_t spot_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
