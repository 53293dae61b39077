/*
 * The sensor registry: finds a driver by name and vertical, and wraps a
 * driver instance in a struct sensor (API: spot/sensor.h). Only simulated
 * drivers exist so far; real ones (I2C, UART) are added to the table.
 * A struct sensor is used by one thread at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/err.h"
#include "spot/sensor.h"
#include "spot/sim.h"

static const struct sensor_driver *const drivers[] = {
    &sim_aqo_driver, &sim_nlo_driver, &sim_wto_driver, &sim_cfo_driver,
    &sim_cfe_driver, &sim_dev_driver, &sim_dho_driver,
};

struct sensor {
    const struct sensor_driver *drv;
    void *state;
};

const struct sensor_driver *sensor_driver_find(const char *name,
                                               enum spot_vertical v)
{
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
        if (drivers[i]->vertical == v && strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    return NULL;
}

int sensor_check_fields(const struct schema_vertical *sv,
                        const char *const *fields, size_t n, char *why,
                        size_t whylen)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fields[i], "all") == 0)
            continue;
        int k = schema_field_index(sv, fields[i], strlen(fields[i]));
        if (k < 0) {
            snprintf(why, whylen, "%s has no field \"%s\"", sv->code,
                     fields[i]);
            return SPOT_EINVAL;
        }
        if (sv->fields[k].mandatory) {
            snprintf(why, whylen,
                     "\"%s\" is mandatory in %s: it is always sent, not a "
                     "fitted sensor",
                     fields[i], sv->code);
            return SPOT_EINVAL;
        }
        if (strcmp(sv->fields[k].name, fields[i]) != 0) {
            snprintf(why, whylen, "\"%s\" is an alias; use \"%s\"", fields[i],
                     sv->fields[k].name);
            return SPOT_EINVAL;
        }
    }
    return SPOT_OK;
}

int sensor_new(struct sensor **out, const char *driver,
               const struct sensor_params *p)
{
    const struct sensor_driver *d =
        sensor_driver_find(driver, p->schema->vertical);
    if (d == NULL)
        return SPOT_ENOTFOUND;
    struct sensor *s = calloc(1, sizeof *s);
    if (s == NULL)
        return SPOT_ENOMEM;
    s->drv = d;
    int rc = d->create(&s->state, p);
    if (rc != SPOT_OK) {
        free(s);
        return rc;
    }
    *out = s;
    return SPOT_OK;
}

void sensor_free(struct sensor *s)
{
    if (s == NULL)
        return;
    s->drv->destroy(s->state);
    free(s);
}

int sensor_probe(struct sensor *s)
{
    return s->drv->probe(s->state);
}

int sensor_sample(struct sensor *s, const struct sensor_period *period,
                  sensor_emit_fn emit, void *ctx)
{
    return s->drv->sample(s->state, period, emit, ctx);
}

enum spot_vertical sensor_vertical(const struct sensor *s)
{
    return s->drv->vertical;
}
