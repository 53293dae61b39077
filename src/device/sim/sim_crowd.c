/*
 * Simulated crowd monitoring: the people detected near a device in each
 * period (Wi-Fi and Bluetooth MACs, a share of them randomised), reported
 * as counts (cfo) and as one event per visitor (cfe) whose visitorId is
 * the salted SHA-1 of the MAC. Both drivers derive the same visitors from
 * (seed, device, period), so counts and events agree. Real MACs come from
 * a fixed population per device (people come back); random MACs are new
 * each time. One instance per device and vertical; one thread at a time.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/err.h"
#include "spot/sim.h"
#include "spot/visitor_id.h"
#include "sim_util.h"

#define POPULATION 2003 /* prime: any stride walks distinct indexes */

struct visitor {
    unsigned char mac[6];
    unsigned char random;
    unsigned char detection; /* 1 Wi-Fi, 2 Bluetooth */
    float duration;          /* whole seconds */
};

struct state {
    struct sim_base b;
    uint64_t key;
    double random_share;
    char *salt;
    int people, avg, interval, reporting, collection, count_mode, event_mode;
    int detection, visitor, random, duration;
};

static const char *const cfo_defaults[] = {"all"};
static const char *const cfe_defaults[] = {"all"};

static void mac_from(uint64_t h, unsigned char mac[6])
{
    for (int i = 0; i < 6; i++)
        mac[i] = (unsigned char)(h >> (8 * i));
}

/* The visitors of the period [t0, t0 + p) into out (room for
 * SPOT_DEVICE_MAX_VISITORS); returns how many. */
static size_t visitors(const struct state *s, int64_t t0, int64_t p,
                       struct visitor *out)
{
    double t = (double)t0 + (double)p / 2.0;
    uint64_t hk = sim_hash(s->key, (uint64_t)t0, 0xc0, 0);
    double lambda =
        (1.5 + 32.0 * sim_pedestrians(t)) * s->b.scale * ((double)p / 300.0);
    double n = round(lambda + sqrt(lambda) * sim_gauss(hk));
    if (n < 0)
        n = 0;
    if (n > SPOT_DEVICE_MAX_VISITORS)
        n = SPOT_DEVICE_MAX_VISITORS;
    uint64_t offset = sim_hash(hk, 1, 0, 0) % POPULATION;
    uint64_t stride = 1 + sim_hash(hk, 2, 0, 0) % (POPULATION - 1);
    for (size_t k = 0; k < (size_t)n; k++) {
        struct visitor *v = &out[k];
        uint64_t h = sim_hash(s->key, (uint64_t)t0, k, 0x71);
        v->random = sim_u01(h) < s->random_share ? 1 : 0;
        if (v->random) {
            mac_from(sim_hash(h, 0x3ac, 0, 0), v->mac);
            v->mac[0] = (unsigned char)((v->mac[0] | 0x02) & 0xfe);
        } else {
            uint64_t idx = (offset + k * stride) % POPULATION;
            mac_from(sim_hash(s->key, idx, 0x9001, 0), v->mac);
            v->mac[0] = (unsigned char)(v->mac[0] & 0xfc);
        }
        v->detection = sim_u01(sim_hash(h, 1, 0, 0)) < 0.75 ? 1 : 2;
        double u = sim_u01(sim_hash(h, 2, 0, 0));
        double d = round(15.0 + 900.0 * u * u);
        v->duration = (float)(d > (double)p ? (double)p : d);
    }
    return (size_t)n;
}

static int create(void **out, const struct sensor_params *p,
                  const char *const *defaults, size_t n_defaults)
{
    struct state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return SPOT_ENOMEM;
    int rc = sim_base_init(&s->b, p, defaults, n_defaults);
    s->random_share = p->random_mac_share;
    if (rc == SPOT_OK && (s->random_share < 0 || s->random_share > 1))
        rc = SPOT_EINVAL;
    if (rc != SPOT_OK) {
        free(s);
        return rc;
    }
    /* one visitor population per device, whichever vertical asks */
    s->key = sim_hash(p->seed, p->device_index, 0xc40d, 0);
    char def[48];
    snprintf(def, sizeof def, "spotsim-%llu", (unsigned long long)p->seed);
    s->salt = strdup(p->salt ? p->salt : def);
    if (s->salt == NULL) {
        free(s);
        return SPOT_ENOMEM;
    }
    struct sim_base *b = &s->b;
    s->people = sim_field(b, "peopleCount");
    s->avg = sim_field(b, "avgDuration");
    s->interval = sim_field(b, "measurementInterval");
    s->reporting = sim_field(b, "reportingPeriod");
    s->collection = sim_field(b, "dataCollection");
    s->count_mode = sim_field(b, "peopleCountCollection");
    s->event_mode = sim_field(b, "eventCollection");
    s->detection = sim_field(b, "detectionType");
    s->visitor = sim_field(b, "visitorId");
    s->random = sim_field(b, "random");
    s->duration = sim_field(b, "duration");
    *out = s;
    return SPOT_OK;
}

static int create_cfo(void **out, const struct sensor_params *p)
{
    return create(out, p, cfo_defaults, 1);
}

static int create_cfe(void **out, const struct sensor_params *p)
{
    return create(out, p, cfe_defaults, 1);
}

static int probe(void *state)
{
    (void)state;
    return SPOT_OK;
}

/* Configuration fields: constants of the device, never failing. */
static void put_setting(const struct sim_base *b, struct reading *r, int idx,
                        long long x)
{
    if (idx >= 0 && b->fitted[idx])
        reading_set_integer(r, idx, x);
}

static int sample_cfo(void *state, const struct sensor_period *per,
                      sensor_emit_fn emit, void *ctx)
{
    struct state *s = state;
    const struct sim_base *b = &s->b;
    struct visitor v[SPOT_DEVICE_MAX_VISITORS];
    size_t n = visitors(s, per->start_s, per->period_s, v);
    double sum = 0;
    for (size_t k = 0; k < n; k++)
        sum += v[k].duration;
    struct reading r;
    reading_init(&r, b->sv);
    int64_t t0 = per->start_s;
    sim_put(b, &r, s->people, (double)n, 0, t0);
    sim_put(b, &r, s->avg, n ? sum / (double)n : 0.0, 1, t0);
    if (s->interval >= 0 && b->fitted[s->interval])
        reading_set_number(&r, s->interval, (double)(per->period_s / 60));
    if (s->reporting >= 0 && b->fitted[s->reporting])
        reading_set_number(&r, s->reporting, -1);
    if (s->collection >= 0 && b->fitted[s->collection])
        reading_set_text(&r, s->collection, "on");
    put_setting(b, &r, s->count_mode, 3);
    put_setting(b, &r, s->event_mode, 3);
    return emit(ctx, &r);
}

static int sample_cfe(void *state, const struct sensor_period *per,
                      sensor_emit_fn emit, void *ctx)
{
    struct state *s = state;
    const struct sim_base *b = &s->b;
    struct visitor vis[SPOT_DEVICE_MAX_VISITORS];
    size_t n = visitors(s, per->start_s, per->period_s, vis);
    for (size_t k = 0; k < n; k++) {
        const struct visitor *v = &vis[k];
        char id[VISITOR_ID_LEN + 1];
        int rc = visitor_id(s->salt, v->mac, id);
        if (rc != SPOT_OK)
            return rc;
        struct reading r;
        reading_init(&r, b->sv);
        reading_set_text(&r, s->visitor, id);
        /* per-visitor failures: a distinct key per event */
        int64_t key = per->start_s * 1000 + (int64_t)k;
        sim_put_int(b, &r, s->detection, v->detection, key);
        sim_put_int(b, &r, s->random, v->random, key);
        sim_put(b, &r, s->duration, v->duration, 0, key);
        if ((rc = emit(ctx, &r)) != 0)
            return rc;
    }
    return SPOT_OK;
}

static void destroy(void *state)
{
    struct state *s = state;
    if (s == NULL)
        return;
    free(s->salt);
    free(s);
}

const struct sensor_driver sim_cfo_driver = {
    .name = "sim",
    .vertical = SPOT_V_CFO,
    .create = create_cfo,
    .probe = probe,
    .sample = sample_cfo,
    .destroy = destroy,
};

const struct sensor_driver sim_cfe_driver = {
    .name = "sim",
    .vertical = SPOT_V_CFE,
    .create = create_cfe,
    .probe = probe,
    .sample = sample_cfe,
    .destroy = destroy,
};
