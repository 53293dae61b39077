/*
 * Recent activity for the status page: the last-seen devices with their
 * verticals, per-vertical message rates, and the most recent rejections
 * with their reasons. Bounded (fixed-size tables, oldest entries evicted),
 * updated from the MQTT callback thread and the sinks, read by the HTTP
 * thread; one mutex, held for a few hundred nanoseconds.
 */
#ifndef SPOT_ACTIVITY_H
#define SPOT_ACTIVITY_H

#include <stddef.h>
#include <stdint.h>

#include "spot/vertical.h"
#include "validate.h"

struct yajl_gen_t;

struct activity;

int activity_new(struct activity **out);
void activity_free(struct activity *a);

/* A message of apikey/device (base ids, len bytes each) on vertical v
 * (SPOT_V_GENERIC too) arrived at now_us. Called per message: cheap. */
void activity_seen(struct activity *a, const char *apikey, size_t apikey_len,
                   const char *device, size_t device_len, enum spot_vertical v,
                   int64_t now_us);

/* A message was dead-lettered (topic and detail copied, truncated). */
void activity_rejected(struct activity *a, const char *topic, size_t topic_len,
                       enum reject_reason reason, const char *detail,
                       int64_t when_us);

/* Writes the activity as a JSON object into g (devices, rates per vertical
 * over the last minute, recent rejects). */
void activity_to_json(struct activity *a, struct yajl_gen_t *g, int64_t now_us);

#endif
