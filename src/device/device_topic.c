/*
 * Device topic prefix and composition (API: spot/device_topic.h). Pure
 * functions: any thread.
 */
#include <stdio.h>
#include <string.h>

#include "spot/device_topic.h"
#include "spot/err.h"
#include "spot/topic.h"

static int set_level(char *dst, const char *src, size_t len, const char *what,
                     char *why, size_t whylen)
{
    if (len == 0) {
        snprintf(why, whylen, "the %s level is empty", what);
        return SPOT_EINVAL;
    }
    if (!topic_id_is_legal(src, len)) {
        snprintf(why, whylen,
                 "the %s \"%.*s\" is not a legal id (1..%d printable ASCII "
                 "characters, no whitespace, none of <>\"'=;()&?/#%%+)",
                 what, (int)(len > 64 ? 64 : len), src, SPOT_MAX_ID_LEN);
        return SPOT_EINVAL;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
    return SPOT_OK;
}

int device_topic_init(struct device_topic *t, const char *prefix,
                      const char *default_device, char *why, size_t whylen)
{
    int rc;
    if (prefix == NULL || prefix[0] == '\0') {
        const char *d = default_device ? default_device : "";
        rc = set_level(t->apikey, DEVICE_DEFAULT_APIKEY,
                       strlen(DEVICE_DEFAULT_APIKEY), "apikey", why, whylen);
        if (rc == SPOT_OK)
            rc = set_level(t->device, d, strlen(d), "default device id", why,
                           whylen);
    } else {
        if (prefix[0] != '/') {
            snprintf(why, whylen,
                     "must look like /{base_apikey}/{device_id}: no leading "
                     "'/'");
            return SPOT_EINVAL;
        }
        const char *a = prefix + 1;
        const char *slash = strchr(a, '/');
        if (slash == NULL) {
            snprintf(why, whylen,
                     "must look like /{base_apikey}/{device_id}: one level "
                     "only");
            return SPOT_EINVAL;
        }
        const char *d = slash + 1;
        if (strchr(d, '/') != NULL) {
            snprintf(why, whylen,
                     "must look like /{base_apikey}/{device_id}: more than "
                     "two levels");
            return SPOT_EINVAL;
        }
        rc = set_level(t->apikey, a, (size_t)(slash - a), "base apikey", why,
                       whylen);
        if (rc == SPOT_OK)
            rc = set_level(t->device, d, strlen(d), "device id", why, whylen);
    }
    if (rc != SPOT_OK)
        return rc;
    /* Every topic must parse back, with the agent's grammar, into this
     * apikey and device (this also checks "{device}_{CODE}" fits an id). */
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        char buf[SPOT_MAX_TOPIC_LEN + 1];
        struct topic_parts p;
        char pwhy[128] = "it splits differently";
        if (device_topic_compose(t, (enum spot_vertical)v, buf, sizeof buf) !=
            SPOT_OK) {
            snprintf(why, whylen, "topics would be longer than %d bytes",
                     SPOT_MAX_TOPIC_LEN);
            return SPOT_EINVAL;
        }
        if (topic_parse(buf, strlen(buf), &p, pwhy, sizeof pwhy) != SPOT_OK ||
            p.vertical != (enum spot_vertical)v ||
            p.apikey_len != strlen(t->apikey) ||
            p.device_len != strlen(t->device)) {
            snprintf(why, whylen, "the %s topic %.80s would not parse: %s",
                     vertical_code((enum spot_vertical)v), buf, pwhy);
            return SPOT_EINVAL;
        }
    }
    return SPOT_OK;
}

int device_topic_compose(const struct device_topic *t, enum spot_vertical v,
                         char *buf, size_t len)
{
    return topic_compose(buf, len, t->apikey, t->device, v);
}
