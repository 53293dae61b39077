/*
 * Simulated weather (wto): a diurnal and seasonal temperature, humidity
 * that falls as it warms, slowly drifting pressure, wind, sunlight (solar
 * radiation, UV, illuminance), rain showers with their daily and averaged
 * totals, and the derived quantities (dew point, wind chill, THSW index).
 * One instance per device; used by one thread at a time.
 */
#include <math.h>
#include <stdlib.h>

#include "spot/err.h"
#include "spot/sim.h"
#include "sim_util.h"

enum {
    TEMP8,
    HUM8,
    PRES1,
    TEMP3,
    HUM3,
    THSW,
    WIND_DIR,
    WIND_SP,
    UV,
    SOLAR,
    ET,
    DEW,
    RAIN_RATE,
    RAIN_15A,
    RAIN_DAILY,
    RAIN_24HA,
    WIND_CHILL,
    ILLUM,
    N
};

static const char *const names[N] = {
    "temp8",      "hum8",       "pres1",       "temp3",    "hum3",
    "thsw_index", "wind_dir",   "wind_sp",     "uv_index", "solar_rad0",
    "et_daily",   "dew_point",  "rain_rate",   "rain_15a", "rain_daily",
    "rain_24ha",  "wind_chill", "illuminance",
};

/* A weather station without the second temperature/humidity sensor. */
static const char *const defaults[] = {
    "temp8",      "hum8",      "pres1",      "thsw_index",
    "wind_dir",   "wind_sp",   "uv_index",   "solar_rad0",
    "et_daily",   "dew_point", "rain_rate",  "rain_15a",
    "rain_daily", "rain_24ha", "wind_chill", "illuminance",
};

struct state {
    struct sim_base b;
    int idx[N];
    uint64_t key;
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
    s->key = sim_hash(p->seed, p->device_index, 0x3e0, 0);
    *out = s;
    return SPOT_OK;
}

static int probe(void *state)
{
    (void)state;
    return SPOT_OK;
}

static double cloud(const struct state *s, double t)
{
    return sim_clamp(0.5 + 0.6 * sim_smooth(s->key + 7, t, 8 * 3600.0), 0, 1);
}

/* Rain intensity, mm/h: showers when a slow noise crosses a threshold. */
static double rain(const struct state *s, double t)
{
    double x = sim_smooth(s->key + 5, t, 3 * 3600.0);
    return x > 0.45 ? (x - 0.45) * 30.0 : 0.0;
}

static double solar(const struct state *s, double t)
{
    return 950.0 * sim_sun(t) * (1.0 - 0.75 * cloud(s, t));
}

static double temperature(const struct state *s, double t)
{
    double season = cos(2.0 * M_PI * (sim_day_of_year(t) - 200.0) / 365.25);
    double mean = 14.0 + 9.0 * season + 3.0 * (s->b.scale - 1.0) * 5.0;
    double h = sim_hour(t);
    double diurnal = cos(2.0 * M_PI * (h - 15.0) / 24.0);
    return mean + 5.5 * diurnal + 2.0 * sim_smooth(s->key + 1, t, 24 * 3600.0);
}

/* Average (or sum) of f over [from, to) sampled every step seconds. */
static double integrate(const struct state *s,
                        double (*f)(const struct state *, double), double from,
                        double to, double step)
{
    double sum = 0;
    int n = 0;
    for (double x = from + step / 2; x < to; x += step, n++)
        sum += f(s, x);
    return n ? sum / n : 0.0;
}

static int sample(void *state, const struct sensor_period *per,
                  sensor_emit_fn emit, void *ctx)
{
    struct state *s = state;
    const struct sim_base *b = &s->b;
    double t = (double)per->start_s + (double)per->period_s / 2.0;
    int64_t t0 = per->start_s;
    uint64_t k = s->key;
    double jit = sim_gauss(sim_hash(k, (uint64_t)t0, 1, 0));

    double temp = temperature(s, t) + 0.1 * jit;
    double rr = rain(s, t);
    double hum = 62.0 - 2.2 * (temp - 14.0) +
                 12.0 * sim_smooth(k + 2, t, 10 * 3600.0) +
                 (rr > 0 ? 25.0 : 0.0);
    hum = sim_clamp(hum, 8.0, 100.0);
    double pres =
        1013.0 + 9.0 * sim_smooth(k + 3, t, 48 * 3600.0) - (rr > 0 ? 4.0 : 0.0);
    double wind = 9.0 + 7.0 * sim_smooth(k + 4, t, 6 * 3600.0) +
                  2.0 * fabs(jit) + 0.3 * rr;
    wind = wind < 0 ? 0 : wind;
    double dir = fmod(220.0 + 140.0 * sim_smooth(k + 6, t, 12 * 3600.0) +
                          15.0 * jit + 720.0,
                      360.0);
    double sol = solar(s, t);
    double day_start = floor(t / 86400.0) * 86400.0;
    double rain_daily =
        integrate(s, rain, day_start, t, 1800.0) * (t - day_start) / 3600.0;
    double rain_24 = integrate(s, rain, t - 86400.0, t, 3600.0);
    double rain_15 = integrate(s, rain, t - 900.0, t, 300.0);
    double et = integrate(s, solar, day_start, t, 3600.0) * (t - day_start) /
                3600.0 * 0.0016;
    /* Magnus formula */
    double g = log(hum / 100.0) + 17.62 * temp / (243.12 + temp);
    double dew = 243.12 * g / (17.62 - g);
    double v16 = pow(wind, 0.16);
    double chill =
        temp <= 10.0 && wind > 4.8
            ? 13.12 + 0.6215 * temp - 11.37 * v16 + 0.3965 * temp * v16
            : temp;
    double thsw = temp + 0.004 * sol - 0.08 * wind + 0.03 * (hum - 50.0);

    struct reading r;
    reading_init(&r, b->sv);
    sim_put(b, &r, s->idx[TEMP8], temp, 2, t0);
    sim_put(b, &r, s->idx[HUM8], hum, 1, t0);
    sim_put(b, &r, s->idx[PRES1], pres, 1, t0);
    sim_put(b, &r, s->idx[TEMP3], temp + 0.2 + 0.1 * jit, 2, t0);
    sim_put(b, &r, s->idx[HUM3], sim_clamp(hum - 1.5, 0, 100), 1, t0);
    sim_put(b, &r, s->idx[THSW], thsw, 1, t0);
    sim_put(b, &r, s->idx[WIND_DIR], dir, 0, t0);
    sim_put(b, &r, s->idx[WIND_SP], wind, 1, t0);
    sim_put(b, &r, s->idx[UV], sol / 90.0, 1, t0);
    sim_put(b, &r, s->idx[SOLAR], sol, 0, t0);
    sim_put(b, &r, s->idx[ET], et, 2, t0);
    sim_put(b, &r, s->idx[DEW], dew, 1, t0);
    sim_put(b, &r, s->idx[RAIN_RATE], rr, 1, t0);
    sim_put(b, &r, s->idx[RAIN_15A], rain_15, 1, t0);
    sim_put(b, &r, s->idx[RAIN_DAILY], rain_daily, 1, t0);
    sim_put(b, &r, s->idx[RAIN_24HA], rain_24, 2, t0);
    sim_put(b, &r, s->idx[WIND_CHILL], chill, 1, t0);
    sim_put(b, &r, s->idx[ILLUM], sol * 110.0, 0, t0);
    return emit(ctx, &r);
}

static void destroy(void *state)
{
    free(state);
}

const struct sensor_driver sim_wto_driver = {
    .name = "sim",
    .vertical = SPOT_V_WTO,
    .create = create,
    .probe = probe,
    .sample = sample,
    .destroy = destroy,
};
