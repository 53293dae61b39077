/*
 * Fuzz target: the topic grammar (src/common/topic.c). Any bytes as a
 * topic. Invariants: a parsed topic's slices lie inside the input and are
 * legal ids; composing the parts again and parsing the result gives the
 * same parts (the vertical code's case aside; a generic topic comes back
 * byte for byte).
 */
#include <stdint.h>
#include <string.h>

#include "spot/err.h"
#include "spot/limits.h"
#include "spot/topic.h"
#include "fuzz.h"

static int inside(const char *base, size_t len, const char *p, size_t n)
{
    return p >= base && n <= len && (size_t)(p - base) <= len - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    struct topic_parts tp;
    char why[160];
    int rc = topic_parse(t, size, &tp, why, sizeof why);
    /* a zero-sized reason buffer is allowed */
    struct topic_parts tp0;
    FUZZ_ASSERT(topic_parse(t, size, &tp0, NULL, 0) == rc);
    if (rc != SPOT_OK) {
        FUZZ_ASSERT(rc == SPOT_EINVAL);
        FUZZ_ASSERT(memchr(why, '\0', sizeof why) != NULL && why[0] != '\0');
        return 0;
    }
    FUZZ_ASSERT(inside(t, size, tp.apikey, tp.apikey_len));
    FUZZ_ASSERT(inside(t, size, tp.device, tp.device_len));
    FUZZ_ASSERT(inside(t, size, tp.full_device, tp.full_device_len));
    FUZZ_ASSERT(topic_id_is_legal(tp.apikey, tp.apikey_len));
    FUZZ_ASSERT(topic_id_is_legal(tp.device, tp.device_len));
    FUZZ_ASSERT((unsigned)tp.vertical <= SPOT_V_GENERIC);

    char apikey[SPOT_MAX_ID_LEN + 1], device[SPOT_MAX_ID_LEN + 1];
    memcpy(apikey, tp.apikey, tp.apikey_len);
    apikey[tp.apikey_len] = '\0';
    memcpy(device, tp.device, tp.device_len);
    device[tp.device_len] = '\0';
    char again[SPOT_MAX_TOPIC_LEN + 64];
    rc = topic_compose(again, sizeof again, apikey, device, tp.vertical);
    FUZZ_ASSERT(rc == SPOT_OK);
    struct topic_parts tp2;
    rc = topic_parse(again, strlen(again), &tp2, NULL, 0);
    FUZZ_ASSERT(rc == SPOT_OK);
    FUZZ_ASSERT(tp2.vertical == tp.vertical);
    FUZZ_ASSERT(tp2.apikey_len == tp.apikey_len &&
                memcmp(tp2.apikey, apikey, tp.apikey_len) == 0);
    FUZZ_ASSERT(tp2.device_len == tp.device_len &&
                memcmp(tp2.device, device, tp.device_len) == 0);
    /* the generic form has one spelling: composing gives the input back */
    if (tp.vertical == SPOT_V_GENERIC)
        FUZZ_ASSERT(strlen(again) == size && memcmp(again, t, size) == 0);
    return 0;
}
