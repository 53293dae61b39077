/*
 * Shared parts of the simulated drivers (see sim_util.h). Pure functions:
 * any thread.
 */
#include <math.h>
#include <string.h>

#include "spot/err.h"
#include "sim_util.h"

#define DAY_S 86400.0

uint64_t sim_hash(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    uint64_t in[4] = {a, b, c, d};
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 4; i++) {
        h ^= in[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
        /* splitmix64 finaliser */
        h ^= h >> 30;
        h *= 0xbf58476d1ce4e5b9ull;
        h ^= h >> 27;
        h *= 0x94d049bb133111ebull;
        h ^= h >> 31;
    }
    return h;
}

double sim_u01(uint64_t h)
{
    return (double)(h >> 11) * 0x1.0p-53;
}

double sim_gauss(uint64_t h)
{
    double u1 = sim_u01(h), u2 = sim_u01(sim_hash(h, 1, 2, 3));
    if (u1 < 1e-12)
        u1 = 1e-12;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double lattice(uint64_t key, int64_t i)
{
    return sim_u01(sim_hash(key, (uint64_t)i, 0x51, 0)) * 2.0 - 1.0;
}

double sim_smooth(uint64_t key, double t, double scale_s)
{
    double x = t / scale_s;
    double fl = floor(x);
    double f = x - fl;
    int64_t i = (int64_t)fl;
    double s = f * f * (3.0 - 2.0 * f);
    double a = lattice(key, i) + (lattice(key, i + 1) - lattice(key, i)) * s;
    /* a second, faster octave */
    double x2 = t / (scale_s / 3.0);
    double fl2 = floor(x2);
    double f2 = x2 - fl2;
    int64_t j = (int64_t)fl2;
    double s2 = f2 * f2 * (3.0 - 2.0 * f2);
    uint64_t k2 = key ^ 0xabcdefull;
    double b = lattice(k2, j) + (lattice(k2, j + 1) - lattice(k2, j)) * s2;
    return 0.75 * a + 0.25 * b;
}

double sim_hour(double t)
{
    double s = fmod(t, DAY_S);
    if (s < 0)
        s += DAY_S;
    return s / 3600.0;
}

int sim_weekday(double t)
{
    int64_t days = (int64_t)floor(t / DAY_S);
    /* 1970-01-01 was a Thursday (3 with Monday = 0) */
    int64_t w = (days + 3) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

double sim_day_of_year(double t)
{
    double d = fmod(t / DAY_S, 365.2425);
    return d < 0 ? d + 365.2425 : d;
}

static double bump(double h, double centre, double width)
{
    double z = (h - centre) / width;
    return exp(-0.5 * z * z);
}

double sim_traffic(double t)
{
    double h = sim_hour(t);
    double v;
    if (sim_weekday(t) < 5)
        v = 0.08 + 0.9 * bump(h, 8.2, 1.2) + 0.8 * bump(h, 18.3, 1.7) +
            0.35 * bump(h, 13.0, 2.8);
    else
        v = 0.06 + 0.45 * bump(h, 13.5, 3.5);
    return sim_clamp(v, 0.0, 1.0);
}

double sim_pedestrians(double t)
{
    double h = sim_hour(t);
    double v;
    if (sim_weekday(t) < 5)
        v = 0.03 + 0.55 * bump(h, 8.5, 1.2) + 0.75 * bump(h, 13.5, 1.8) +
            0.9 * bump(h, 18.5, 2.0);
    else
        v = 0.03 + 0.95 * bump(h, 17.0, 3.5);
    return sim_clamp(v, 0.0, 1.0);
}

double sim_sun(double t)
{
    double h = sim_hour(t);
    /* day length 10 h (winter) .. 15 h (summer), centred on 13:00 */
    double season = cos(2.0 * M_PI * (sim_day_of_year(t) - 172.0) / 365.25);
    double half = 6.25 + 1.25 * season;
    double x = (h - 13.0) / half;
    if (x <= -1.0 || x >= 1.0)
        return 0.0;
    return cos(x * M_PI / 2.0) * (0.8 + 0.2 * season);
}

double sim_round(double x, int decimals)
{
    static const double p10[] = {1, 10, 100, 1000, 10000, 100000, 1e6};
    double p = p10[decimals < 0 ? 0 : decimals > 6 ? 6 : decimals];
    return round(x * p) / p;
}

double sim_clamp(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* --- fitted fields and failures
 * ------------------------------------------------- */

int sim_base_init(struct sim_base *b, const struct sensor_params *p,
                  const char *const *defaults, size_t n_defaults)
{
    memset(b, 0, sizeof *b);
    b->sv = p->schema;
    b->seed = p->seed;
    b->dev = p->device_index;
    b->fail = p->failure_rate;
    if (b->fail < 0 || b->fail > 1)
        return SPOT_EINVAL;
    b->scale =
        0.7 + 0.6 * sim_u01(sim_hash(p->seed, p->device_index, 0x5ca1e, 0));
    const char *const *names = p->fields ? p->fields : defaults;
    size_t n = p->fields ? p->n_fields : n_defaults;
    char why[128];
    if (sensor_check_fields(b->sv, names, n, why, sizeof why) != SPOT_OK)
        return SPOT_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], "all") == 0) {
            for (size_t k = 0; k < b->sv->n_fields; k++)
                if (!b->sv->fields[k].mandatory)
                    b->fitted[k] = true;
            continue;
        }
        int k = sim_field(b, names[i]);
        if (k >= 0)
            b->fitted[k] = true;
    }
    return SPOT_OK;
}

int sim_field(const struct sim_base *b, const char *name)
{
    return schema_field_index(b->sv, name, strlen(name));
}

bool sim_failed(const struct sim_base *b, int idx, int64_t t0)
{
    if (b->fail <= 0)
        return false;
    uint64_t key = sim_hash(b->seed, b->dev, (uint64_t)b->sv->vertical, 0);
    /* a whole-sensor outage now and then: a few hours, rarer than field
     * failures */
    if (sim_smooth(key ^ 0x0dead, (double)t0, 6 * 3600.0) > 1.0 - b->fail)
        return true;
    return sim_u01(sim_hash(key, (uint64_t)idx, (uint64_t)t0, 0xfa11)) <
           b->fail;
}

void sim_put(const struct sim_base *b, struct reading *r, int idx, double x,
             int decimals, int64_t t0)
{
    if (idx < 0 || !b->fitted[idx])
        return;
    if (sim_failed(b, idx, t0)) {
        reading_set_null(r, idx);
        return;
    }
    const struct schema_field *f = &b->sv->fields[idx];
    double v = sim_round(x, decimals);
    /* never leave the physical range because of noise or rounding */
    if (f->has_min && v < f->min)
        v = f->min;
    if (f->has_max && v > f->max)
        v = f->max;
    reading_set_number(r, idx, v);
}

void sim_put_int(const struct sim_base *b, struct reading *r, int idx,
                 long long x, int64_t t0)
{
    if (idx < 0 || !b->fitted[idx])
        return;
    if (sim_failed(b, idx, t0))
        reading_set_null(r, idx);
    else
        reading_set_integer(r, idx, x);
}

void sim_put_text(const struct sim_base *b, struct reading *r, int idx,
                  const char *s)
{
    if (idx < 0 || !b->fitted[idx])
        return;
    reading_set_text(r, idx, s);
}
