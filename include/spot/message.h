/*
 * The message encoder of the device side: one reading becomes one JSON
 * object of the wire contract §3, from the same schemas the agent
 * validates with (spot/schema.h). Fields come in schema order:
 * TimeInstant (the start of the sampling period), period (minutes),
 * status "connected" where the vertical has it (not cfe), then every
 * fitted field: a value, or null when the sensor had no valid reading.
 * Fields that are not fitted are left out. Output is made with yajl_gen;
 * numbers are printed locale-independently in their shortest round-trip
 * form.
 *
 * A struct message_encoder is used by one thread at a time; the formatting
 * helpers are pure (any thread).
 */
#ifndef SPOT_MESSAGE_H
#define SPOT_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "spot/sensor.h"

struct message_encoder;

/* Fault injection (spotsim): deliberately wrong output. */
enum message_flags {
    MESSAGE_PERIOD_AS_TEXT = 1, /* "period": "5" (a schema error) */
};

int message_encoder_new(struct message_encoder **out);
void message_encoder_free(struct message_encoder *e);

/* Encodes r for the period starting at period_start_s (Unix seconds,
 * already aligned) of period_min minutes. On success *out / *len hold the
 * JSON text, borrowed until the next call. Returns SPOT_OK, SPOT_EINVAL (a
 * mandatory field is missing or null, or a value does not fit its field's
 * type; the reason is in why), SPOT_ETOOBIG (over SPOT_DEVICE_MAX_MESSAGE),
 * SPOT_ENOMEM. */
int message_encode(struct message_encoder *e, const struct reading *r,
                   int64_t period_start_s, int period_min, unsigned flags,
                   const unsigned char **out, size_t *len, char *why,
                   size_t whylen);

/* The start of the period of period_s seconds holding t: floor(t / p) * p
 * (also for times before 1970). */
int64_t message_align(int64_t t_s, int64_t period_s);

/* Writes t as "YYYY-MM-DDThh:mm:ssZ" (21 bytes with the NUL). */
void message_format_time(int64_t t_s, char out[32]);

/* Writes the shortest decimal text that reads back as exactly x, with '.'
 * as the decimal point whatever the locale ("21.4", "1e+21", "-0.25").
 * x must be finite. Returns the length. */
size_t message_format_number(double x, char out[32]);

#endif
