/*
 * Simulated noise level (nlo): an equivalent level LAeq that follows road
 * traffic (weekday rush hours, quiet nights), and the statistical levels
 * of the period derived from it so that LAmax >= LA1 >= LA10 >= LA50 >=
 * LA90 >= LA99 >= LAmin always holds. dB(A), 0.1 dB resolution. One
 * instance per device; used by one thread at a time.
 */
#include <math.h>
#include <stdlib.h>

#include "spot/err.h"
#include "spot/sim.h"
#include "sim_util.h"

enum { LAEQ, LAMAX, LAMIN, LA1, LA10, LA50, LA90, LA99, N };

static const char *const names[N] = {"son_laeq", "son_lamax", "son_lamin",
                                     "son_la1",  "son_la10",  "son_la50",
                                     "son_la90", "son_la99"};

struct state {
    struct sim_base b;
    int idx[N];
};

static int create(void **out, const struct sensor_params *p)
{
    struct state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return SPOT_ENOMEM;
    int rc = sim_base_init(&s->b, p, names, N);
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
    uint64_t key = sim_hash(b->seed, b->dev, 0x410, 0);
    double tr = sim_traffic(t);
    double u1 = sim_u01(sim_hash(key, (uint64_t)t0, 1, 0));
    double u2 = sim_u01(sim_hash(key, (uint64_t)t0, 2, 0));
    double laeq = 44.0 + 4.0 * (b->scale - 1.0) * 10.0 + 24.0 * tr +
                  2.5 * sim_smooth(key, t, 2 * 3600.0) +
                  1.0 * sim_gauss(key ^ (uint64_t)t0);
    laeq = sim_clamp(laeq, 30.0, 95.0);
    /* spread of the period's levels grows with traffic (passing cars) */
    double spread = 6.0 + 10.0 * tr + 3.0 * u1;
    double la10 = laeq + 0.25 * spread;
    double la1 = la10 + 0.3 * spread;
    double lamax = la1 + 2.0 + 6.0 * u2;
    double la50 = laeq - 0.2 * spread;
    double la90 = la50 - 0.3 * spread;
    double la99 = la90 - 0.15 * spread;
    double lamin = la99 - 0.5 - 2.0 * u1;

    struct reading r;
    reading_init(&r, b->sv);
    sim_put(b, &r, s->idx[LAEQ], laeq, 1, t0);
    sim_put(b, &r, s->idx[LAMAX], lamax, 1, t0);
    sim_put(b, &r, s->idx[LAMIN], lamin, 1, t0);
    sim_put(b, &r, s->idx[LA1], la1, 1, t0);
    sim_put(b, &r, s->idx[LA10], la10, 1, t0);
    sim_put(b, &r, s->idx[LA50], la50, 1, t0);
    sim_put(b, &r, s->idx[LA90], la90, 1, t0);
    sim_put(b, &r, s->idx[LA99], la99, 1, t0);
    return emit(ctx, &r);
}

static void destroy(void *state)
{
    free(state);
}

const struct sensor_driver sim_nlo_driver = {
    .name = "sim",
    .vertical = SPOT_V_NLO,
    .create = create,
    .probe = probe,
    .sample = sample,
    .destroy = destroy,
};
