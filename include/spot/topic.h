/*
 * Topic grammar of the wire contract §2: /{apikey}{code}/{device}_{CODE}/attrs
 * and the generic /{apikey}/{device}/attrs. Pure function: any thread.
 */
#ifndef SPOT_TOPIC_H
#define SPOT_TOPIC_H

#include <stddef.h>

#include "spot/vertical.h"

struct topic_parts {
    enum spot_vertical vertical; /* SPOT_V_GENERIC: no vertical in topic */
    const char *apikey;          /* base apikey (first level minus code) */
    size_t apikey_len;
    const char *device; /* base device id (second level minus _CODE) */
    size_t device_len;
    const char *full_device; /* second level as sent */
    size_t full_device_len;
};

/* Parses topic (len bytes, need not be NUL-terminated). On success returns
 * SPOT_OK and fills *out with slices borrowed from topic. On failure returns
 * SPOT_EINVAL and writes a reason into why (whylen bytes, may be 0). */
int topic_parse(const char *topic, size_t len, struct topic_parts *out,
                char *why, size_t whylen);

/* Writes "/{apikey}{code}/{device}_{CODE}/attrs" (or the generic form for
 * SPOT_V_GENERIC) into buf. Returns SPOT_OK or SPOT_ETOOBIG. */
int topic_compose(char *buf, size_t buflen, const char *apikey,
                  const char *device, enum spot_vertical v);

/* True when the len bytes at s form a legal id: 1..SPOT_MAX_ID_LEN
 * printable ASCII, none of the characters NGSI or MQTT forbid. */
int topic_id_is_legal(const char *s, size_t len);

#endif
