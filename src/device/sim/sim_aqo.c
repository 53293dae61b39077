/*
 * Simulated air quality (aqo): traffic-shaped NO2, NO, CO and particles
 * with weekday rush hours, ozone that follows the sun and is titrated by
 * traffic, slowly drifting background gases. Values in µg/m³ rounded to
 * the resolution of the electrochemical and optical sensors. One instance
 * per device; used by one thread at a time.
 */
#include <stdlib.h>

#include "spot/err.h"
#include "spot/sim.h"
#include "sim_util.h"

enum { NO2, OX, CO, SO2, H2S, NO, NH3, CL2, PM1, PM2, PM10, VOC, CO2, N };

static const char *const names[N] = {
    "no2-a4", "ox-a431", "co-a4", "so2-a4", "h2s-a4", "no-a4", "nh3-a4",
    "cl2-a1", "pm1",     "pm2",   "pm10",   "voc",    "co2",
};

/* A typical urban air quality unit: NO2, O3, CO, NO and particles. */
static const char *const defaults[] = {"no2-a4", "ox-a431", "co-a4", "no-a4",
                                       "pm1",    "pm2",     "pm10"};

struct state {
    struct sim_base b;
    int idx[N];
};

static int create(void **out, const struct sensor_params *p)
{
    struct state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return SPOT_ENOMEM;
    int rc =
        sim_base_init(&s->b, p, defaults, sizeof defaults / sizeof defaults[0]);
    if (rc != SPOT_OK) {
        free(s);
        return rc;
    }
    for (int i = 0; i < N; i++)
        s->idx[i] = sim_field(&s->b, names[i]);
    *out = s;
    return SPOT_OK;
}

static int probe(void *state)
{
    (void)state;
    return SPOT_OK;
}

static int sample(void *state, const struct sensor_period *per,
                  sensor_emit_fn emit, void *ctx)
{
    struct state *s = state;
    const struct sim_base *b = &s->b;
    double t = (double)per->start_s + (double)per->period_s / 2.0;
    int64_t t0 = per->start_s;
    uint64_t key = sim_hash(b->seed, b->dev, 0xa90, 0);
    double tr = sim_traffic(t) * b->scale;
    double n1 = sim_smooth(key + 1, t, 3 * 3600.0);
    double n2 = sim_smooth(key + 2, t, 12 * 3600.0);
    double jit = sim_gauss(sim_hash(key, (uint64_t)t0, 3, 0));

    struct reading r;
    reading_init(&r, b->sv);
    double no2 = 12.0 + 55.0 * tr + 8.0 * n1 + 2.0 * jit;
    double no = 3.0 + 45.0 * tr * tr + 3.0 * n1;
    double o3 = 35.0 + 55.0 * sim_sun(t) - 18.0 * tr + 10.0 * n2;
    double co = 250.0 + 650.0 * tr + 60.0 * n1 + 20.0 * jit;
    double pm10 = 16.0 + 14.0 * tr + 9.0 * n2 + 1.5 * jit;
    double pm2 = pm10 * (0.55 + 0.08 * n1);
    double pm1 = pm2 * (0.7 + 0.05 * n2);
    sim_put(b, &r, s->idx[NO2], no2 < 1 ? 1 : no2, 1, t0);
    sim_put(b, &r, s->idx[NO], no < 0.5 ? 0.5 : no, 1, t0);
    sim_put(b, &r, s->idx[OX], o3 < 2 ? 2 : o3, 1, t0);
    sim_put(b, &r, s->idx[CO], co < 50 ? 50 : co, 1, t0);
    sim_put(b, &r, s->idx[SO2], 4.0 + 2.5 * tr + 1.0 * n2, 1, t0);
    sim_put(b, &r, s->idx[H2S], 1.5 + 0.6 * n1 + 0.2 * jit, 2, t0);
    sim_put(b, &r, s->idx[NH3], 8.0 + 3.0 * n2 + 0.5 * jit, 1, t0);
    sim_put(b, &r, s->idx[CL2], 0.4 + 0.2 * n1, 2, t0);
    sim_put(b, &r, s->idx[PM10], pm10 < 1 ? 1 : pm10, 1, t0);
    sim_put(b, &r, s->idx[PM2], pm2 < 0.5 ? 0.5 : pm2, 1, t0);
    sim_put(b, &r, s->idx[PM1], pm1 < 0.3 ? 0.3 : pm1, 1, t0);
    sim_put(b, &r, s->idx[VOC], 140.0 + 110.0 * tr + 25.0 * n1, 0, t0);
    sim_put(b, &r, s->idx[CO2], 755000.0 + 90000.0 * tr + 15000.0 * n2, 0, t0);
    return emit(ctx, &r);
}

static void destroy(void *state)
{
    free(state);
}

const struct sensor_driver sim_aqo_driver = {
    .name = "sim",
    .vertical = SPOT_V_AQO,
    .create = create,
    .probe = probe,
    .sample = sample,
    .destroy = destroy,
};
