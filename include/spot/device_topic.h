/*
 * Topic composition of the device side (wire contract §2): the topic
 * prefix "/{base_apikey}/{device_id}" (resource 16) is split once, then
 * each vertical's topic "/{apikey}{code}/{device}_{CODE}/attrs" is
 * composed with topic_compose() (spot/topic.h), the same grammar the agent
 * parses. Without a prefix the device default applies:
 * "/" DEVICE_DEFAULT_APIKEY "/{device default id}". Plain values: any
 * thread may read a struct device_topic once it is built.
 */
#ifndef SPOT_DEVICE_TOPIC_H
#define SPOT_DEVICE_TOPIC_H

#include <stddef.h>

#include "spot/limits.h"
#include "spot/vertical.h"

#define DEVICE_DEFAULT_APIKEY "smartspot"

struct device_topic {
    char apikey[SPOT_MAX_ID_LEN + 1];
    char device[SPOT_MAX_ID_LEN + 1];
};

/* Splits prefix (NULL or "": the default, with default_device as the
 * device id). Both levels must be legal ids (topic_id_is_legal) and every
 * composed topic must fit SPOT_MAX_TOPIC_LEN. Returns SPOT_OK or
 * SPOT_EINVAL with the reason in why. */
int device_topic_init(struct device_topic *t, const char *prefix,
                      const char *default_device, char *why, size_t whylen);

/* The topic of vertical v. Returns SPOT_OK or SPOT_ETOOBIG. */
int device_topic_compose(const struct device_topic *t, enum spot_vertical v,
                         char *buf, size_t len);

#endif
