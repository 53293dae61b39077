/*
 * Topic grammar of the wire contract §2 and its Decisions:
 *   /{apikey}{code}/{device}_{CODE}/attrs   (a vertical: both ends agree)
 *   /{apikey}/{device}/attrs                (generic device)
 * Pure functions over borrowed bytes: any thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "spot/err.h"
#include "spot/limits.h"
#include "spot/topic.h"

#define CODE_LEN 3
#define SUFFIX   "/attrs"

static void set_why(char *why, size_t whylen, const char *msg)
{
    if (whylen > 0)
        snprintf(why, whylen, "%s", msg);
}

/* 1 for the bytes an id may hold: printable ASCII except the characters
 * NGSI forbids and the MQTT wildcards. Built on first use. */
static unsigned char legal[256];
static pthread_once_t legal_once = PTHREAD_ONCE_INIT;

static void legal_init(void)
{
    for (int c = 0x21; c <= 0x7e; c++)
        legal[c] = strchr("<>\"'=;()&?/#%+", c) == NULL;
}

int topic_id_is_legal(const char *s, size_t len)
{
    if (len == 0 || len > SPOT_MAX_ID_LEN)
        return 0;
    pthread_once(&legal_once, legal_init);
    for (size_t i = 0; i < len; i++)
        if (!legal[(unsigned char)s[i]])
            return 0;
    return 1;
}

/* Finds the vertical whose code ends the second level as "_CODE", with a
 * non-empty base before the underscore. */
static int device_code(const char *lvl, size_t len, enum spot_vertical *out)
{
    if (len < CODE_LEN + 2 || lvl[len - CODE_LEN - 1] != '_')
        return SPOT_ENOTFOUND;
    return vertical_from_code(lvl + len - CODE_LEN, CODE_LEN, out);
}

int topic_parse(const char *topic, size_t len, struct topic_parts *out,
                char *why, size_t whylen)
{
    const size_t suffix_len = sizeof SUFFIX - 1;

    memset(out, 0, sizeof *out);
    if (len > SPOT_MAX_TOPIC_LEN) {
        set_why(why, whylen, "topic longer than the maximum");
        return SPOT_EINVAL;
    }
    if (memchr(topic, '+', len) != NULL || memchr(topic, '#', len) != NULL) {
        set_why(why, whylen, "topic contains a wildcard character");
        return SPOT_EINVAL;
    }
    if (len < suffix_len + 4 || topic[0] != '/' ||
        memcmp(topic + len - suffix_len, SUFFIX, suffix_len) != 0) {
        set_why(why, whylen,
                "topic is not of the form /{apikey}/{device}/attrs");
        return SPOT_EINVAL;
    }
    const char *first = topic + 1;
    const char *end = topic + len - suffix_len; /* points at "/attrs" */
    const char *slash = memchr(first, '/', (size_t)(end - first));
    if (slash == NULL || memchr(slash + 1, '/', (size_t)(end - slash - 1))) {
        set_why(why, whylen,
                "topic must have exactly 3 levels after the "
                "leading slash");
        return SPOT_EINVAL;
    }
    size_t first_len = (size_t)(slash - first);
    const char *second = slash + 1;
    size_t second_len = (size_t)(end - second);
    if (first_len == 0 || second_len == 0) {
        set_why(why, whylen, "topic has an empty level");
        return SPOT_EINVAL;
    }

    enum spot_vertical v;
    if (device_code(second, second_len, &v) == SPOT_OK) {
        enum spot_vertical v1;
        if (first_len <= CODE_LEN ||
            vertical_from_code(first + first_len - CODE_LEN, CODE_LEN, &v1) !=
                SPOT_OK) {
            set_why(why, whylen,
                    "device level names a vertical but the "
                    "apikey level does not end with its code");
            return SPOT_EINVAL;
        }
        if (v1 != v) {
            set_why(why, whylen,
                    "vertical codes of apikey and device levels "
                    "disagree");
            return SPOT_EINVAL;
        }
        out->vertical = v;
        out->apikey_len = first_len - CODE_LEN;
        out->device_len = second_len - CODE_LEN - 1;
    } else {
        out->vertical = SPOT_V_GENERIC;
        out->apikey_len = first_len;
        out->device_len = second_len;
    }
    out->apikey = first;
    out->device = second;
    out->full_device = second;
    out->full_device_len = second_len;

    if (!topic_id_is_legal(out->apikey, out->apikey_len)) {
        set_why(why, whylen,
                "apikey is empty, too long or holds a character "
                "not allowed in an NGSI id");
        return SPOT_EINVAL;
    }
    if (!topic_id_is_legal(out->device, out->device_len) ||
        !topic_id_is_legal(out->full_device, out->full_device_len)) {
        set_why(why, whylen,
                "device id is empty, too long or holds a "
                "character not allowed in an NGSI id");
        return SPOT_EINVAL;
    }
    return SPOT_OK;
}

int topic_compose(char *buf, size_t buflen, const char *apikey,
                  const char *device, enum spot_vertical v)
{
    int n;
    if (v == SPOT_V_GENERIC) {
        n = snprintf(buf, buflen, "/%s/%s/attrs", apikey, device);
    } else {
        const char *code = vertical_code(v);
        char upper[CODE_LEN + 1];
        for (size_t i = 0; i < CODE_LEN; i++)
            upper[i] = (char)(code[i] - 'a' + 'A');
        upper[CODE_LEN] = '\0';
        n = snprintf(buf, buflen, "/%s%s/%s_%s/attrs", apikey, code, device,
                     upper);
    }
    if (n < 0 || (size_t)n >= buflen)
        return SPOT_ETOOBIG;
    return SPOT_OK;
}
