/* The device-side message encoder: every vertical's mandatory fields,
 * null for a fitted sensor without a valid reading, absent fields for
 * hardware that is not fitted, TimeInstant alignment, number formatting. */
#include <criterion/criterion.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/err.h"
#include "spot/message.h"
#include "spot/schema.h"
#include "spot/sensor.h"

static struct schema_set *schemas;
static struct message_encoder *enc;

static void setup(void)
{
    char err[256];
    cr_assert_eq(schema_set_new(&schemas, err, sizeof err), SPOT_OK, "%s", err);
    cr_assert_eq(message_encoder_new(&enc), SPOT_OK);
}

static void teardown(void)
{
    message_encoder_free(enc);
    schema_set_free(schemas);
}

TestSuite(device_message, .init = setup, .fini = teardown);

/* 2023-03-20T13:50:00Z */
#define T0 1679320200

static int idx(struct reading *r, const char *name)
{
    int i = schema_field_index(r->schema, name, strlen(name));
    cr_assert(i >= 0, "no field %s", name);
    return i;
}

static void init(struct reading *r, enum spot_vertical v)
{
    reading_init(r, schema_set_vertical(schemas, v));
}

static void expect(const struct reading *r, int period, const char *want)
{
    const unsigned char *out;
    size_t len;
    char why[128];
    int rc = message_encode(enc, r, T0, period, 0, &out, &len, why, sizeof why);
    cr_assert_eq(rc, SPOT_OK, "%s", why);
    cr_assert_eq(len, strlen(want), "got %.*s\nwant %s", (int)len, out, want);
    cr_assert(memcmp(out, want, len) == 0, "got %.*s\nwant %s", (int)len, out,
              want);
}

Test(device_message, aqo_values_null_and_absent)
{
    struct reading r;
    init(&r, SPOT_V_AQO);
    reading_set_number(&r, idx(&r, "no2-a4"), 23.4);
    reading_set_null(&r, idx(&r, "ox-a431"));
    reading_set_number(&r, idx(&r, "pm10"), 12);
    reading_set_number(&r, idx(&r, "co2"), 755000.5);
    expect(&r, 5,
           "{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":5,"
           "\"status\":\"connected\",\"no2-a4\":23.4,\"ox-a431\":null,"
           "\"pm10\":12,\"co2\":755000.5}");
}

Test(device_message, nothing_fitted_is_still_a_message)
{
    struct reading r;
    init(&r, SPOT_V_NLO);
    expect(&r, 15,
           "{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":15,"
           "\"status\":\"connected\"}");
}

Test(device_message, nlo_wto)
{
    struct reading r;
    init(&r, SPOT_V_NLO);
    reading_set_number(&r, idx(&r, "son_laeq"), 61.2);
    reading_set_null(&r, idx(&r, "son_la99"));
    expect(&r, 1,
           "{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":1,"
           "\"status\":\"connected\",\"son_laeq\":61.2,\"son_la99\":null}");
    init(&r, SPOT_V_WTO);
    reading_set_number(&r, idx(&r, "temp8"), -3.25);
    reading_set_number(&r, idx(&r, "hum8"), 81.5);
    reading_set_null(&r, idx(&r, "wind_dir"));
    expect(&r, 10,
           "{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":10,"
           "\"status\":\"connected\",\"temp8\":-3.25,\"hum8\":81.5,"
           "\"wind_dir\":null}");
}

Test(device_message, cfo_and_cfe_without_status)
{
    struct reading r;
    init(&r, SPOT_V_CFO);
    reading_set_number(&r, idx(&r, "peopleCount"), 17);
    reading_set_number(&r, idx(&r, "avgDuration"), 250.5);
    reading_set_number(&r, idx(&r, "reportingPeriod"), -1);
    reading_set_text(&r, idx(&r, "dataCollection"), "on");
    reading_set_integer(&r, idx(&r, "peopleCountCollection"), 3);
    expect(&r, 5,
           "{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":5,"
           "\"status\":\"connected\",\"peopleCount\":17,\"avgDuration\":250.5,"
           "\"reportingPeriod\":-1,\"dataCollection\":\"on\","
           "\"peopleCountCollection\":3}");
    init(&r, SPOT_V_CFE);
    reading_set_integer(&r, idx(&r, "detectionType"), 1);
    reading_set_text(&r, idx(&r, "visitorId"),
                     "0123456789abcdef0123456789abcdef01234567");
    reading_set_integer(&r, idx(&r, "random"), 1);
    reading_set_null(&r, idx(&r, "duration"));
    expect(&r, 5,
           "{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":5,"
           "\"detectionType\":1,\"visitorId\":"
           "\"0123456789abcdef0123456789abcdef01234567\",\"random\":1,"
           "\"duration\":null}");
}

Test(device_message, dev_and_dho)
{
    struct reading r;
    init(&r, SPOT_V_DEV);
    reading_set_text(&r, idx(&r, "modelName"), "Smart Spot \"AQ\" ñ");
    reading_set_integer(&r, idx(&r, "updateFirmwareState"), 0);
    reading_set_text(&r, idx(&r, "wifiEnabled"), "true");
    reading_set_text(&r, idx(&r, "wifiSsid"), "net");
    expect(&r, 5,
           "{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":5,"
           "\"status\":\"connected\",\"modelName\":\"Smart Spot \\\"AQ\\\" "
           "ñ\",\"updateFirmwareState\":0,\"wifiEnabled\":\"true\","
           "\"wifiSsid\":\"net\"}");
    init(&r, SPOT_V_DHO);
    reading_set_integer(&r, idx(&r, "networkBearer"), 21);
    reading_set_number(&r, idx(&r, "rssi"), 0.62);
    reading_set_number(&r, idx(&r, "batteryCurrent"), -85.5);
    reading_set_null(&r, idx(&r, "batteryState"));
    expect(&r, 5,
           "{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":5,"
           "\"status\":\"connected\",\"networkBearer\":21,\"rssi\":0.62,"
           "\"batteryState\":null,\"batteryCurrent\":-85.5}");
}

static int encode_rc(const struct reading *r)
{
    const unsigned char *out;
    size_t len;
    char why[128];
    return message_encode(enc, r, T0, 5, 0, &out, &len, why, sizeof why);
}

Test(device_message, refuses_what_the_schema_forbids)
{
    struct reading r;
    init(&r, SPOT_V_CFE); /* visitorId is mandatory */
    cr_assert_eq(encode_rc(&r), SPOT_EINVAL);
    reading_set_null(&r, idx(&r, "visitorId"));
    cr_assert_eq(encode_rc(&r), SPOT_EINVAL, "mandatory, not nullable");
    init(&r, SPOT_V_DEV);
    reading_set_text(&r, idx(&r, "wifiEnabled"), "yes");
    cr_assert_eq(encode_rc(&r), SPOT_EINVAL, "bool_text is true/false");
    init(&r, SPOT_V_DHO);
    reading_set_number(&r, idx(&r, "networkBearer"), 6.5);
    cr_assert_eq(encode_rc(&r), SPOT_EINVAL, "integer field");
    init(&r, SPOT_V_DEV);
    reading_set_text(&r, idx(&r, "modelName"), "\xff\xfe");
    cr_assert_eq(encode_rc(&r), SPOT_EINVAL, "invalid UTF-8");
    init(&r, SPOT_V_AQO);
    reading_set_number(&r, idx(&r, "pm10"), NAN);
    const unsigned char *out;
    size_t len;
    char why[128];
    cr_assert_eq(message_encode(enc, &r, T0, 5, 0, &out, &len, why, sizeof why),
                 SPOT_OK);
    cr_assert(strstr((const char *)out, "\"pm10\":null") != NULL,
              "a non-finite reading is no valid reading");
}

Test(device_message, period_as_text_fault)
{
    struct reading r;
    init(&r, SPOT_V_AQO);
    const unsigned char *out;
    size_t len;
    char why[128];
    cr_assert_eq(message_encode(enc, &r, T0, 5, MESSAGE_PERIOD_AS_TEXT, &out,
                                &len, why, sizeof why),
                 SPOT_OK);
    char json[256];
    cr_assert_lt(len, sizeof json);
    memcpy(json, out, len);
    json[len] = '\0';
    cr_assert(strstr(json, "\"period\":\"5\"") != NULL, "%s", json);
}

Test(device_message, time_instant_is_the_aligned_period_start)
{
    cr_assert_eq(message_align(T0 + 299, 300), T0);
    cr_assert_eq(message_align(T0 + 300, 300), T0 + 300);
    cr_assert_eq(message_align(T0 + 59, 60), T0);
    cr_assert_eq(message_align(T0 + 7 * 60 + 3, 900), T0 - 300);
    cr_assert_eq(message_align(-1, 300), -300);
    cr_assert_eq(message_align(0, 300), 0);
    char ts[32];
    message_format_time(message_align(T0 + 123, 300), ts);
    cr_assert_str_eq(ts, "2023-03-20T13:50:00Z");
    message_format_time(0, ts);
    cr_assert_str_eq(ts, "1970-01-01T00:00:00Z");
    message_format_time(4102444799, ts);
    cr_assert_str_eq(ts, "2099-12-31T23:59:59Z");
}

Test(device_message, numbers_are_short_and_round_trip)
{
    static const struct {
        double x;
        const char *want;
    } cases[] = {
        {21.4, "21.4"},
        {0.1, "0.1"},
        {-0.25, "-0.25"},
        {100, "100"},
        {1e21, "1e+21"},
        {755000.5, "755000.5"},
        {0.62, "0.62"},
        {-1, "-1"},
        {1.0 / 3.0, "0.3333333333333333"},
        {5e-324, "4.94065645841247e-324"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        size_t n = message_format_number(cases[i].x, buf);
        cr_assert_str_eq(buf, cases[i].want);
        cr_assert_eq(n, strlen(cases[i].want));
        cr_assert_eq(strtod(buf, NULL), cases[i].x);
    }
    /* a locale with a decimal comma changes nothing */
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") != NULL ||
        setlocale(LC_NUMERIC, "fr_FR.UTF-8") != NULL) {
        char buf[32];
        message_format_number(21.4, buf);
        setlocale(LC_NUMERIC, "C");
        cr_assert_str_eq(buf, "21.4");
    }
}
