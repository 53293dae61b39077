/*
 * Shared parts of the simulated drivers (src/device/sim/): counter-based
 * hashing (every value is a pure function of its inputs), smooth noise,
 * daily and weekly profiles, fitted-field resolution and the failure
 * model. Pure functions over their arguments: any thread.
 */
#ifndef SPOT_SIM_UTIL_H
#define SPOT_SIM_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "spot/sensor.h"

/* What every simulated driver keeps. */
struct sim_base {
    const struct schema_vertical *sv;
    uint64_t seed;
    uint32_t dev;
    double fail;  /* probability a fitted field reads null in a period */
    double scale; /* per-device level, 0.7 .. 1.3 */
    bool fitted[SPOT_MAX_SCHEMA_FIELDS];
};

/* Resolves the fitted set: p->fields (or defaults when NULL; "all" means
 * every non-mandatory field). Returns SPOT_OK or SPOT_EINVAL. */
int sim_base_init(struct sim_base *b, const struct sensor_params *p,
                  const char *const *defaults, size_t n_defaults);

/* Index of a field of b's vertical, or -1. */
int sim_field(const struct sim_base *b, const char *name);

/* True when the fitted field idx has no valid reading in the period that
 * starts at t0 (random failures and whole-sensor outages). */
bool sim_failed(const struct sim_base *b, int idx, int64_t t0);

/* Stores x rounded to decimals places into r: nothing when idx is not fitted,
 * null when sim_failed(). */
void sim_put(const struct sim_base *b, struct reading *r, int idx, double x,
             int decimals, int64_t t0);
/* The same for integer codes and text. */
void sim_put_int(const struct sim_base *b, struct reading *r, int idx,
                 long long x, int64_t t0);
void sim_put_text(const struct sim_base *b, struct reading *r, int idx,
                  const char *s);

/* Hashing: a 64-bit value from up to four inputs. */
uint64_t sim_hash(uint64_t a, uint64_t b, uint64_t c, uint64_t d);
/* Uniform in [0, 1) and standard normal, from a hash. */
double sim_u01(uint64_t h);
double sim_gauss(uint64_t h);
/* Smooth noise in about [-1, 1] at time t, changing over scale_s seconds. */
double sim_smooth(uint64_t key, double t, double scale_s);

/* Calendar (UTC): hour of day [0, 24), day of week (0 Monday .. 6
 * Sunday), day of year [0, 365.25). */
double sim_hour(double t);
int sim_weekday(double t);
double sim_day_of_year(double t);
/* Road traffic intensity [0, 1]: rush hours on weekdays, a flat
 * afternoon at weekends. */
double sim_traffic(double t);
/* Pedestrian activity [0, 1] (crowd monitoring). */
double sim_pedestrians(double t);
/* Sunlight factor [0, 1]: 0 at night, 1 at a clear summer noon. */
double sim_sun(double t);

/* x rounded to `decimals` decimal places (the nearest double to the
 * decimal, so it prints short). */
double sim_round(double x, int decimals);
double sim_clamp(double x, double lo, double hi);

#endif
