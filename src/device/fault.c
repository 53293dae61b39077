/*
 * Fault injection options and draws of spotsim (API: spot/fault.h). Pure
 * functions: any thread.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/device_limits.h"
#include "spot/err.h"
#include "spot/fault.h"

static const char *const names[FAULT_COUNT] = {
    "malformed", "wrong-type", "wrong-topic", "range", "duplicate", "burst",
};

const char *fault_name(enum fault_kind k)
{
    return k < FAULT_COUNT ? names[k] : "none";
}

int fault_parse(const char *spec, struct fault_opts *o, char *why,
                size_t whylen)
{
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq == NULL) {
            snprintf(why, whylen, "\"%.*s\": expected kind=probability",
                     (int)len, p);
            return SPOT_EINVAL;
        }
        size_t klen = (size_t)(eq - p);
        char val[64];
        size_t vlen = len - klen - 1;
        if (vlen == 0 || vlen >= sizeof val) {
            snprintf(why, whylen, "\"%.*s\": bad value", (int)len, p);
            return SPOT_EINVAL;
        }
        memcpy(val, eq + 1, vlen);
        val[vlen] = '\0';
        char *vend;
        errno = 0;
        double x = strtod(val, &vend);
        if (*vend != '\0' || errno != 0 || !isfinite(x)) {
            snprintf(why, whylen, "\"%.*s\": bad number", (int)len, p);
            return SPOT_EINVAL;
        }
        if (klen == 10 && memcmp(p, "burst-size", 10) == 0) {
            if (x < 1 || x > SPOT_SIM_MAX_BURST || x != floor(x)) {
                snprintf(why, whylen, "burst-size: an integer 1..%d",
                         SPOT_SIM_MAX_BURST);
                return SPOT_EINVAL;
            }
            o->burst_size = (long)x;
        } else {
            int k = -1;
            for (int i = 0; i < FAULT_COUNT; i++)
                if (strlen(names[i]) == klen && memcmp(names[i], p, klen) == 0)
                    k = i;
            if (k < 0) {
                snprintf(why, whylen,
                         "unknown fault \"%.*s\" (malformed, wrong-type, "
                         "wrong-topic, range, duplicate, burst, burst-size)",
                         (int)klen, p);
                return SPOT_EINVAL;
            }
            if (x < 0 || x > 1) {
                snprintf(why, whylen, "%s: a probability 0..1", names[k]);
                return SPOT_EINVAL;
            }
            o->p[k] = x;
        }
        p = end ? end + 1 : p + len;
    }
    double sum = o->p[FAULT_MALFORMED] + o->p[FAULT_WRONG_TYPE] +
                 o->p[FAULT_WRONG_TOPIC] + o->p[FAULT_RANGE];
    if (sum > 1.0 + 1e-9) {
        snprintf(why, whylen,
                 "malformed + wrong-type + wrong-topic + range "
                 "add up to more than 1");
        return SPOT_EINVAL;
    }
    return SPOT_OK;
}

static double draw(uint64_t seed, uint64_t key, uint64_t salt)
{
    uint64_t h = seed ^ (key * 0x9e3779b97f4a7c15ull) ^ (salt << 56);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return (double)(h >> 11) * 0x1.0p-53;
}

enum fault_kind fault_draw(const struct fault_opts *o, uint64_t seed,
                           uint64_t key)
{
    double u = draw(seed, key, 1), acc = 0;
    static const enum fault_kind order[] = {FAULT_MALFORMED, FAULT_WRONG_TYPE,
                                            FAULT_WRONG_TOPIC, FAULT_RANGE};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        acc += o->p[order[i]];
        if (u < acc)
            return order[i];
    }
    return FAULT_NONE;
}

int fault_duplicate(const struct fault_opts *o, uint64_t seed, uint64_t key)
{
    return o->p[FAULT_DUPLICATE] > 0 &&
           draw(seed, key, 2) < o->p[FAULT_DUPLICATE];
}

int fault_burst(const struct fault_opts *o, uint64_t seed, uint64_t key)
{
    return o->p[FAULT_BURST] > 0 && draw(seed, key, 3) < o->p[FAULT_BURST];
}
