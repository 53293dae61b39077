/*
 * Command-line times and numbers of spotdevice and spotsim (API:
 * spot/time_arg.h). Pure functions: any thread.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spot/err.h"
#include "spot/time_arg.h"

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int time_arg_parse(const char *s, int64_t now_s, int64_t *out)
{
    if (strcmp(s, "now") == 0) {
        *out = now_s;
        return SPOT_OK;
    }
    size_t n = strlen(s);
    if (n == 10 && s[4] == '-' && s[7] == '-') {
        int y, m, d;
        if (digits(s, 4, &y) || digits(s + 5, 2, &m) || digits(s + 8, 2, &d) ||
            m < 1 || m > 12 || d < 1 || d > 31)
            return SPOT_EINVAL;
        *out = days_from_civil(y, m, d) * 86400;
        return SPOT_OK;
    }
    if (n == 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
        s[16] == ':' && s[19] == 'Z') {
        int y, mo, d, h, mi, se;
        if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
            digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) ||
            digits(s + 17, 2, &se) || mo < 1 || mo > 12 || d < 1 || d > 31 ||
            h > 23 || mi > 59 || se > 60)
            return SPOT_EINVAL;
        *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
        return SPOT_OK;
    }
    long long v;
    if (time_arg_long(s, 0, 253402300799LL, &v) != SPOT_OK)
        return SPOT_EINVAL;
    *out = v;
    return SPOT_OK;
}

int time_arg_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v) || v < 0)
        return SPOT_EINVAL;
    *out = v;
    return SPOT_OK;
}

int time_arg_long(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < min || v > max)
        return SPOT_EINVAL;
    *out = v;
    return SPOT_OK;
}
