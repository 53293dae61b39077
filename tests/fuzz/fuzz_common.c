/*
 * Shared set-up and record checks of the message-level fuzz targets (see
 * fuzz_common.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "spot/err.h"
#include "fuzz.h"
#include "fuzz_common.h"
#include "fuzz_util.h"

static const char *const topics[] = {
    "/Kaqo/dev1_AQO/attrs",           "/Knlo/dev1_NLO/attrs",
    "/Kwto/dev1_WTO/attrs",           "/Kcfo/dev1_CFO/attrs",
    "/Kcfe/dev1_CFE/attrs",           "/Kdev/dev1_DEV/attrs",
    "/Kdho/dev1_DHO/attrs",           "/G/thing1/attrs",
    "/Raqo/SmartSpot_AQ_1_AQO/attrs", "/Rnlo/dev1_NLO/attrs",
    "/Kaqo/dev1_NLO/attrs",           "/U/dev/attrs",
};
#define N_TOPICS (sizeof topics / sizeof topics[0])

static const char *const groups_json =
    "[{\"apikey\":\"K\",\"service\":\"city\",\"service_path\":\"/air\"},"
    "{\"apikey\":\"G\",\"generic\":true,"
    "\"entity_types\":{\"generic\":\"Sensor\"}},"
    "{\"apikey\":\"R\",\"verticals\":[\"aqo\"],"
    "\"entity_types\":{\"aqo\":\"AirQualityCustom\"}}]";

static const char *const devices_json =
    "{\"SmartSpot_AQ_1\":{\"location\":[-1.1307,37.9922],"
    "\"address\":{\"streetAddress\":\"Calle Mayor 1\"},\"name\":\"P1\"},"
    "\"dev1\":{\"location\":[2.5,40.0]}}";

static yajl_val parse_or_die(const char *json)
{
    char err[256];
    yajl_val v = yajl_tree_parse(json, err, sizeof err);
    if (v == NULL) {
        fprintf(stderr, "fuzz: bad built-in JSON: %s\n", err);
        abort();
    }
    return v;
}

struct fuzz_world *fuzz_world(void)
{
    static struct fuzz_world w;
    static int done;
    if (done)
        return &w;
    fuzz_quiet_logs();
    char err[256];
    FUZZ_ASSERT(schema_set_new(&w.schemas, err, sizeof err) == SPOT_OK);
    yajl_val g = parse_or_die(groups_json);
    FUZZ_ASSERT(groups_new(&w.groups, g, err, sizeof err) == SPOT_OK);
    yajl_tree_free(g);
    yajl_val d = parse_or_die(devices_json);
    FUZZ_ASSERT(devices_new(&w.devices, d, err, sizeof err) == SPOT_OK);
    yajl_tree_free(d);
    FUZZ_ASSERT(validator_new(&w.open, w.schemas, NULL) == SPOT_OK);
    FUZZ_ASSERT(validator_new(&w.closed, w.schemas, w.groups) == SPOT_OK);
    done = 1;
    return &w;
}

void fuzz_split(const uint8_t *data, size_t size, struct fuzz_msg *out)
{
    if (size > 0 && data[0] == '/') {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t tl = nl ? (size_t)(nl - data) : size;
        out->topic = (const char *)data;
        out->topic_len = tl;
        out->payload = nl ? nl + 1 : data + size;
        out->payload_len = nl ? size - tl - 1 : 0;
        return;
    }
    const char *t = topics[size > 0 ? data[0] % N_TOPICS : 0];
    out->topic = t;
    out->topic_len = strlen(t);
    out->payload = size > 0 ? data + 1 : data;
    out->payload_len = size > 0 ? size - 1 : 0;
}

int fuzz_utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        unsigned need;
        unsigned long cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= need)
            return 0;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

int fuzz_json_ok(const char *s, size_t n)
{
    yajl_handle h = yajl_alloc(NULL, NULL, NULL);
    FUZZ_ASSERT(h != NULL);
    yajl_status st = yajl_parse(h, (const unsigned char *)s, n);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    yajl_free(h);
    return st == yajl_status_ok;
}

static void check_text(const char *s, size_t len)
{
    FUZZ_ASSERT(s != NULL);
    FUZZ_ASSERT(strlen(s) == len);
    FUZZ_ASSERT(fuzz_utf8_ok((const unsigned char *)s, len));
}

void fuzz_check_record(const struct record *r, const struct fuzz_msg *m)
{
    (void)m;
    FUZZ_ASSERT((unsigned)r->reason < REJECT_COUNT);
    FUZZ_ASSERT(memchr(r->detail, '\0', sizeof r->detail) != NULL);
    /* the detail goes into a PostgreSQL text column and JSON */
    FUZZ_ASSERT(
        fuzz_utf8_ok((const unsigned char *)r->detail, strlen(r->detail)));
    if (r->reason != REJECT_NONE)
        FUZZ_ASSERT(r->detail[0] != '\0');
    if (r->reason != REJECT_NONE && r->reason != REJECT_RANGE)
        return;
    FUZZ_ASSERT(r->apikey && r->device_id && r->full_device_id);
    check_text(r->apikey, strlen(r->apikey));
    check_text(r->device_id, strlen(r->device_id));
    FUZZ_ASSERT(r->time_instant_text != NULL &&
                strlen(r->time_instant_text) == 27);
    if (r->extra_json != NULL) {
        FUZZ_ASSERT(r->extra_len >= 2 && r->extra_json[0] == '{');
        FUZZ_ASSERT(
            fuzz_utf8_ok((const unsigned char *)r->extra_json, r->extra_len));
        FUZZ_ASSERT(fuzz_json_ok(r->extra_json, r->extra_len));
    }
    if (r->schema == NULL) {
        FUZZ_ASSERT(r->vertical == SPOT_V_GENERIC && r->extra_json != NULL);
        return;
    }
    FUZZ_ASSERT(r->schema->n_fields <= SPOT_MAX_SCHEMA_FIELDS);
    for (size_t i = 0; i < r->schema->n_fields; i++) {
        const struct value *v = &r->values[i];
        switch (v->kind) {
        case VALUE_TEXT:
        case VALUE_TIME:
            check_text(v->text, v->text_len);
            break;
        case VALUE_NUMBER:
        case VALUE_INTEGER:
            FUZZ_ASSERT(v->text != NULL && v->text_len > 0);
            FUZZ_ASSERT(fuzz_json_ok(v->text, v->text_len));
            break;
        case VALUE_NULL:
            FUZZ_ASSERT(!v->out_of_range || r->reason == REJECT_RANGE);
            break;
        case VALUE_ABSENT:
            FUZZ_ASSERT(!r->schema->fields[i].mandatory);
            break;
        case VALUE_BOOL:
            break;
        }
    }
}
