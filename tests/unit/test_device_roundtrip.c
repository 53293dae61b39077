/* Round trip: every message the device core produces (simulated sensors of
 * every vertical, failures mixed in, default and full hardware) goes through
 * the agent's validator and comes out unchanged, field by field. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/device_topic.h"
#include "spot/err.h"
#include "spot/message.h"
#include "spot/schema.h"
#include "spot/sensor.h"
#include "validate.h"

static struct schema_set *schemas;
static struct message_encoder *enc;
static struct validator *val;

static void setup(void)
{
    char err[256];
    cr_assert_eq(schema_set_new(&schemas, err, sizeof err), SPOT_OK, "%s", err);
    cr_assert_eq(message_encoder_new(&enc), SPOT_OK);
    cr_assert_eq(validator_new(&val, schemas, NULL), SPOT_OK);
}

static void teardown(void)
{
    validator_free(val);
    message_encoder_free(enc);
    schema_set_free(schemas);
}

TestSuite(device_roundtrip, .init = setup, .fini = teardown);

struct ctx {
    enum spot_vertical v;
    int64_t start;
    int period_min;
    char topic[SPOT_MAX_TOPIC_LEN];
    long messages, nulls, values, absent;
};

static void compare(struct ctx *c, const struct reading *rd,
                    const struct record *rec, const char *json)
{
    const struct schema_vertical *sv = rd->schema;
    cr_assert_eq(rec->reason, REJECT_NONE, "%s: %s\n%s", sv->code, rec->detail,
                 json);
    cr_assert_eq(rec->vertical, c->v);
    cr_assert_eq(rec->time_instant_us, c->start * 1000000);
    for (size_t i = 0; i < sv->n_fields; i++) {
        const struct schema_field *f = &sv->fields[i];
        const struct value *got = &rec->values[i];
        if (i == sv->time_field)
            continue;
        if (strcmp(f->name, "period") == 0) {
            cr_assert_eq(got->number, c->period_min);
            continue;
        }
        if (strcmp(f->name, "status") == 0) {
            cr_assert_str_eq(got->text, "connected");
            continue;
        }
        const struct reading_value *want = &rd->v[i];
        switch (want->kind) {
        case READING_ABSENT:
            c->absent++;
            cr_assert_eq(got->kind, VALUE_ABSENT, "%s.%s", sv->code, f->name);
            break;
        case READING_NULL:
            c->nulls++;
            cr_assert_eq(got->kind, VALUE_NULL, "%s.%s", sv->code, f->name);
            cr_assert(!got->out_of_range);
            break;
        case READING_NUMBER:
        case READING_INTEGER:
            c->values++;
            if (f->type == SCHEMA_INTEGER) {
                cr_assert_eq(got->kind, VALUE_INTEGER, "%s.%s", sv->code,
                             f->name);
                cr_assert_eq(got->integer, want->integer, "%s.%s", sv->code,
                             f->name);
            } else {
                cr_assert(got->kind == VALUE_NUMBER ||
                              got->kind == VALUE_INTEGER,
                          "%s.%s kind %d", sv->code, f->name, got->kind);
                /* the text as sent reads back as exactly the value */
                cr_assert_eq(strtod(got->text, NULL), want->number,
                             "%s.%s: %s vs %.17g", sv->code, f->name, got->text,
                             want->number);
                cr_assert(fabs(got->number - want->number) <=
                              4 * 2.3e-16 * fabs(want->number),
                          "%s.%s", sv->code, f->name);
            }
            break;
        case READING_TEXT:
            c->values++;
            if (f->type == SCHEMA_BOOL_TEXT) {
                cr_assert_eq(got->kind, VALUE_BOOL);
                cr_assert_eq(got->boolean, strcmp(want->text, "true") == 0);
            } else {
                cr_assert_eq(got->kind, VALUE_TEXT, "%s.%s", sv->code, f->name);
                cr_assert_str_eq(got->text, want->text);
            }
            break;
        }
    }
}

static int emit(void *arg, const struct reading *rd)
{
    struct ctx *c = arg;
    const unsigned char *out;
    size_t len;
    char why[128];
    int rc = message_encode(enc, rd, c->start, c->period_min, 0, &out, &len,
                            why, sizeof why);
    cr_assert_eq(rc, SPOT_OK, "%s", why);
    char json[SPOT_DEVICE_MAX_MESSAGE + 1];
    memcpy(json, out, len);
    json[len] = '\0';
    const struct record *rec;
    cr_assert_eq(validator_run(val, c->topic, strlen(c->topic),
                               (const unsigned char *)json, len,
                               1700000000000000, &rec),
                 SPOT_OK);
    compare(c, rd, rec, json);
    c->messages++;
    return 0;
}

static void run_vertical(enum spot_vertical v, const char *const *fields,
                         size_t n_fields, double failure_rate, long *messages,
                         long *nulls)
{
    static const int periods[] = {1, 5, 15};
    struct ctx c = {.v = v};
    struct device_topic dt;
    char why[128];
    cr_assert_eq(
        device_topic_init(&dt, "/rtKey/rtDevice", NULL, why, sizeof why),
        SPOT_OK, "%s", why);
    cr_assert_eq(device_topic_compose(&dt, v, c.topic, sizeof c.topic),
                 SPOT_OK);
    for (uint32_t dev = 0; dev < 6; dev++) {
        struct sensor_params p = {
            .schema = schema_set_vertical(schemas, v),
            .seed = 42,
            .device_index = dev,
            .fields = fields,
            .n_fields = n_fields,
            .failure_rate = failure_rate,
            .random_mac_share = 0.6,
        };
        struct sensor *s;
        cr_assert_eq(sensor_new(&s, "sim", &p), SPOT_OK, "%s",
                     vertical_code(v));
        cr_assert_eq(sensor_probe(s), SPOT_OK);
        c.period_min = periods[dev % 3];
        int64_t ps = c.period_min * 60;
        /* a week and a bit from a Monday, two days per device apart */
        int64_t from = message_align(1767571200 + (int64_t)dev * 2 * 86400, ps);
        for (int k = 0; k < 200; k++) {
            c.start = from + (int64_t)k * 37 * ps;
            struct sensor_period per = {.start_s = c.start, .period_s = ps};
            cr_assert_eq(sensor_sample(s, &per, emit, &c), SPOT_OK);
        }
        sensor_free(s);
    }
    *messages += c.messages;
    *nulls += c.nulls;
}

Test(device_roundtrip, every_vertical_default_hardware_with_failures)
{
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        long messages = 0, nulls = 0;
        run_vertical((enum spot_vertical)v, NULL, 0, 0.1, &messages, &nulls);
        cr_assert_gt(messages, 0, "%s produced nothing", vertical_code(v));
        if (v != SPOT_V_DEV)
            cr_assert_gt(nulls, 0, "%s: failures were mixed in",
                         vertical_code(v));
    }
}

Test(device_roundtrip, every_vertical_all_fields_fitted)
{
    static const char *const all[] = {"all"};
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        long messages = 0, nulls = 0;
        run_vertical((enum spot_vertical)v, all, 1, 0.3, &messages, &nulls);
        cr_assert_gt(messages, 0);
    }
}

Test(device_roundtrip, no_failures_no_nulls)
{
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        long messages = 0, nulls = 0;
        run_vertical((enum spot_vertical)v, NULL, 0, 0.0, &messages, &nulls);
        cr_assert_eq(nulls, 0, "%s", vertical_code(v));
    }
}
