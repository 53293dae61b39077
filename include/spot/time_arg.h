/*
 * Times and durations given on the command line of spotdevice and spotsim.
 * Pure functions: any thread.
 */
#ifndef SPOT_TIME_ARG_H
#define SPOT_TIME_ARG_H

#include <stdint.h>

/* "now", Unix seconds ("1767225600"), or ISO 8601 UTC
 * ("2026-01-01T00:00:00Z", "2026-01-01"). Returns SPOT_OK or SPOT_EINVAL. */
int time_arg_parse(const char *s, int64_t now_s, int64_t *out);

/* A non-negative decimal number (e.g. "0.5", "600"). SPOT_OK/SPOT_EINVAL. */
int time_arg_number(const char *s, double *out);

/* A decimal integer in [min, max]. SPOT_OK or SPOT_EINVAL. */
int time_arg_long(const char *s, long long min, long long max, long long *out);

#endif
