/*
 * The sensor driver interface: real drivers (a later issue) and the
 * simulated ones plug in the same way. A driver serves one vertical; it is
 * probed once, then asked to sample each period and to emit one reading
 * per message (one for most verticals, one per visitor for cfe). A reading
 * holds, per schema field, a value, "no valid reading" (sent as null) or
 * nothing (the hardware is not fitted: the field is absent). The mandatory
 * fields (TimeInstant, period, status) are the core's, not the driver's.
 *
 * A struct sensor is used by one thread at a time. Readings are plain
 * values: any thread may read one it was handed.
 */
#ifndef SPOT_SENSOR_H
#define SPOT_SENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spot/device_limits.h"
#include "spot/schema.h"
#include "spot/vertical.h"

enum reading_kind {
    READING_ABSENT,  /* not fitted: the field is left out */
    READING_NULL,    /* fitted, no valid reading: sent as null */
    READING_NUMBER,  /* a finite number */
    READING_INTEGER, /* an integral code */
    READING_TEXT,    /* text (bool_text fields: "true" / "false") */
};

struct reading_value {
    enum reading_kind kind;
    double number;
    long long integer;
    const char *text; /* points into the reading's own text buffer */
};

/* One message's worth of sensor values, indexed by schema field. */
struct reading {
    const struct schema_vertical *schema; /* borrowed */
    struct reading_value v[SPOT_MAX_SCHEMA_FIELDS];
    char text[SPOT_DEVICE_READING_TEXT];
    size_t text_used;
};

/* Every field absent. sv is borrowed. */
void reading_init(struct reading *r, const struct schema_vertical *sv);
/* Setters by field index (from schema_field_index); an index < 0 is
 * ignored, so drivers can resolve names once and skip unknown ones. A
 * non-finite number is stored as READING_NULL. reading_set_text returns
 * SPOT_ETOOBIG when the text buffer is full (the field becomes null). */
void reading_set_null(struct reading *r, int field);
void reading_set_number(struct reading *r, int field, double x);
void reading_set_integer(struct reading *r, int field, long long x);
int reading_set_text(struct reading *r, int field, const char *s);
/* A copy whose text pointers point into dst's own buffer. */
void reading_copy(struct reading *dst, const struct reading *src);

/* The period being sampled: [start_s, start_s + period_s). */
struct sensor_period {
    int64_t start_s;  /* Unix seconds, aligned to the period */
    int64_t period_s; /* the sampling period */
};

/* Called once per message a sample produces; reading is borrowed for the
 * call. A non-zero return stops the sample and is returned by it. */
typedef int (*sensor_emit_fn)(void *ctx, const struct reading *reading);

/* What a driver is created with. Everything is borrowed for the call
 * unless said otherwise. */
struct sensor_params {
    const struct schema_vertical *schema; /* the vertical; kept */
    uint64_t seed;         /* simulation: everything derives from it */
    uint32_t device_index; /* simulation: distinguishes devices */
    /* Fitted fields by name (NULL: the driver's default set). */
    const char *const *fields;
    size_t n_fields;
    double failure_rate;     /* simulation: probability a field reads null */
    double random_mac_share; /* simulation (crowd): share of random MACs */
    const char *salt;        /* crowd: salt of the visitor hash; copied */
    const char *serial_number, *model_name, *firmware_version; /* dev */
};

struct sensor_driver {
    const char *name; /* "sim" */
    enum spot_vertical vertical;
    int (*create)(void **state, const struct sensor_params *p);
    /* SPOT_OK when the hardware answers; anything else: not usable. */
    int (*probe)(void *state);
    int (*sample)(void *state, const struct sensor_period *period,
                  sensor_emit_fn emit, void *ctx);
    void (*destroy)(void *state);
};

struct sensor;

/* The driver called name for vertical v, or NULL. */
const struct sensor_driver *sensor_driver_find(const char *name,
                                               enum spot_vertical v);

/* Creates a sensor with the named driver. Returns SPOT_OK, SPOT_ENOTFOUND
 * (no such driver for the vertical), SPOT_EINVAL (bad parameters, e.g. an
 * unknown field name), SPOT_ENOMEM. */
int sensor_new(struct sensor **out, const char *driver,
               const struct sensor_params *p);
void sensor_free(struct sensor *s);
int sensor_probe(struct sensor *s);
int sensor_sample(struct sensor *s, const struct sensor_period *period,
                  sensor_emit_fn emit, void *ctx);
enum spot_vertical sensor_vertical(const struct sensor *s);

/* Checks that every name in fields is a non-mandatory field of sv;
 * writes the first offender into why. Used by drivers and config checks. */
int sensor_check_fields(const struct schema_vertical *sv,
                        const char *const *fields, size_t n, char *why,
                        size_t whylen);

#endif
