/* The PostgreSQL batch: values in PostgreSQL's binary format and the binary
 * COPY stream built from them (header, length-prefixed fields, NULLs,
 * trailer), with hostile strings that would break a text format (tabs,
 * newlines, backslashes, quotes, "\." and "\N") arriving byte for byte. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_batch.h"
#include "pg_schema.h"
#include "validate.h"
#include "spot/err.h"
#include "spot/schema.h"

#define TOPIC_AQO "/JRI9jTbEKJQS29y3bc8BC6aqo/SmartSpot_AQ_1_AQO/attrs"
#define TOPIC_DEV "/kdev/SmartSpot_1_DEV/attrs"
#define TOPIC_CFO "/kcfo/SmartSpot_1_CFO/attrs"
#define RECEIVED  1700000000123456LL /* µs since 1970 */
#define PG_EPOCH  946684800000000LL  /* 2000-01-01 in µs since 1970 */

static struct schema_set *schemas;
static struct pg_layout layout;
static struct pg_batch *batch;
static struct validator *val;

static void setup(void)
{
    char err[256];
    cr_assert_eq(schema_set_new(&schemas, err, sizeof err), SPOT_OK, "%s", err);
    cr_assert_eq(pg_layout_build(&layout, schemas, err, sizeof err), SPOT_OK,
                 "%s", err);
    cr_assert_eq(pg_batch_new(&batch, &layout), SPOT_OK);
    cr_assert_eq(validator_new(&val, schemas, NULL), SPOT_OK);
}

static void teardown(void)
{
    validator_free(val);
    pg_batch_free(batch);
    schema_set_free(schemas);
}

TestSuite(pg_batch, .init = setup, .fini = teardown);

/* --- a COPY stream decoder ------------------------------------------------ */

#define MAX_FIELDS 64
#define MAX_ROWS   8

struct field {
    const unsigned char *p;
    int32_t len; /* -1: NULL */
};

struct decoded {
    size_t rows;
    size_t cols;
    struct field f[MAX_ROWS][MAX_FIELDS];
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint64_t be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* Decodes the whole stream strictly: any byte out of place fails. */
static void decode(int table, struct decoded *d)
{
    const char *data;
    size_t len;
    cr_assert_eq(pg_batch_copy_stream(batch, table, &data, &len), SPOT_OK);
    const unsigned char *p = (const unsigned char *)data;
    const unsigned char *end = p + len;
    static const unsigned char sig[11] = "PGCOPY\n\377\r\n";
    cr_assert(len >= 21, "stream of %zu bytes", len);
    cr_assert_eq(memcmp(p, sig, 11), 0, "signature");
    cr_assert_eq(be32(p + 11), 0, "flags");
    cr_assert_eq(be32(p + 15), 0, "header extension");
    p += 19;
    memset(d, 0, sizeof *d);
    for (;;) {
        cr_assert(end - p >= 2, "truncated tuple");
        uint16_t n = (uint16_t)(p[0] << 8 | p[1]);
        p += 2;
        if (n == 0xffff)
            break;
        cr_assert(d->rows < MAX_ROWS && n <= MAX_FIELDS);
        cr_assert(d->rows == 0 || n == d->cols, "field count changed");
        d->cols = n;
        for (uint16_t i = 0; i < n; i++) {
            cr_assert(end - p >= 4, "truncated field length");
            int32_t flen = (int32_t)be32(p);
            p += 4;
            cr_assert(flen >= -1, "field length %d", flen);
            if (flen > 0)
                cr_assert(end - p >= flen, "truncated field");
            d->f[d->rows][i].p = p;
            d->f[d->rows][i].len = flen;
            if (flen > 0)
                p += flen;
        }
        d->rows++;
    }
    cr_assert_eq(p, end, "bytes after the trailer");
}

/* Position of column name among the inserted columns of table. */
static size_t col(int table, const char *name)
{
    const struct pg_table *t = &layout.tables[table];
    size_t k = 0;
    for (size_t c = 0; c < t->n_cols; c++) {
        if (t->cols[c].src == PG_SRC_ID)
            continue;
        if (strcmp(t->cols[c].name, name) == 0)
            return k;
        k++;
    }
    cr_assert_fail("no column %s in %s", name, t->name);
    return 0;
}

static size_t n_inserted(int table)
{
    const struct pg_table *t = &layout.tables[table];
    size_t k = 0;
    for (size_t c = 0; c < t->n_cols; c++)
        k += t->cols[c].src != PG_SRC_ID;
    return k;
}

static void expect_text(const struct field *f, const char *want)
{
    cr_assert_eq(f->len, (int32_t)strlen(want), "length %d, want %zu (%s)",
                 f->len, strlen(want), want);
    cr_assert_eq(memcmp(f->p, want, strlen(want)), 0, "bytes of \"%s\"", want);
}

static void expect_float8(const struct field *f, double want)
{
    cr_assert_eq(f->len, 8);
    uint64_t bits = be64(f->p), wbits;
    memcpy(&wbits, &want, sizeof wbits);
    cr_assert_eq(bits, wbits, "float8 bits %016llx, want %016llx (%.17g)",
                 (unsigned long long)bits, (unsigned long long)wbits, want);
}

static void expect_time(const struct field *f, int64_t us_since_1970)
{
    cr_assert_eq(f->len, 8);
    cr_assert_eq((int64_t)be64(f->p), us_since_1970 - PG_EPOCH);
}

static void add(const char *topic, const char *payload,
                struct pg_add_result *res)
{
    const struct record *r;
    cr_assert_eq(validator_run(val, topic, strlen(topic),
                               (const unsigned char *)payload, strlen(payload),
                               RECEIVED, &r),
                 SPOT_OK);
    cr_assert_eq(pg_batch_add_record(batch, r, topic, strlen(topic),
                                     (const unsigned char *)payload,
                                     strlen(payload), true, res),
                 SPOT_OK);
}

/* --- tests ------------------------------------------------------------------
 */

Test(pg_batch, air_quality_row_in_binary)
{
    struct pg_add_result res;
    add(TOPIC_AQO,
        "{\"TimeInstant\":\"2023-03-20T13:50:00.123456Z\",\"period\":5,"
        "\"status\":\"connected\",\"no2-a4\":12.5,\"pm2\":null,"
        "\"co2\":0.77999997138977051,\"voc\":1e3,\"pm10\":-0}",
        &res);
    cr_assert(res.row && !res.rejected);
    cr_assert_eq(pg_batch_data_rows(batch), 1);

    struct decoded d;
    int t = SPOT_V_AQO;
    decode(t, &d);
    cr_assert_eq(d.rows, 1);
    cr_assert_eq(d.cols, n_inserted(t));
    const struct field *f = d.f[0];
    expect_text(&f[col(t, "apikey")], "JRI9jTbEKJQS29y3bc8BC6");
    expect_text(&f[col(t, "device_id")], "SmartSpot_AQ_1");
    cr_assert_eq(f[col(t, "service")].len, -1, "no group: NULL");
    cr_assert_eq(f[col(t, "service_path")].len, -1);
    /* 2023-03-20T13:50:00.123456Z */
    expect_time(&f[col(t, "time_instant")], 1679320200123456LL);
    expect_time(&f[col(t, "received_at")], RECEIVED);
    expect_float8(&f[col(t, "period")], 5);
    expect_text(&f[col(t, "status")], "connected");
    expect_float8(&f[col(t, "no2_a4")], 12.5);
    cr_assert_eq(f[col(t, "pm2")].len, -1, "null reading: NULL");
    cr_assert_eq(f[col(t, "pm1")].len, -1, "absent field: NULL");
    /* 17 significant digits: exactly strtod's double, as float8in */
    expect_float8(&f[col(t, "co2")], strtod("0.77999997138977051", NULL));
    expect_float8(&f[col(t, "voc")], 1000);
    expect_float8(&f[col(t, "pm10")], -0.0);
    cr_assert(signbit(-0.0) && be64(f[col(t, "pm10")].p) >> 63 == 1);
    cr_assert_eq(f[col(t, "extra")].len, -1, "no extra fields: NULL");
}

Test(pg_batch, numbers_equal_strtod)
{
    /* the validator's fast path must not leak its 2-ulp approximation */
    static const char *const nums[] = {
        "0.1",
        "123456789012345.6",
        "9007199254740993",
        "1.7976931348623157e308",
        "5e-324",
        "0.30000000000000004",
        "4503599627370497.5",
        "2.2250738585072014e-308",
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char payload[256];
        /* peopleCount: a number with no upper bound */
        snprintf(payload, sizeof payload,
                 "{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":5,"
                 "\"status\":\"connected\",\"peopleCount\":%s}",
                 nums[i]);
        pg_batch_reset(batch);
        const struct record *r;
        cr_assert_eq(validator_run(val, TOPIC_CFO, strlen(TOPIC_CFO),
                                   (const unsigned char *)payload,
                                   strlen(payload), RECEIVED, &r),
                     SPOT_OK);
        if (strcmp(nums[i], "5e-324") == 0) {
            /* a denormal: refused as JSON, as float8in would refuse it */
            cr_assert_eq(r->reason, REJECT_JSON);
            continue;
        }
        cr_assert_eq(r->reason, REJECT_NONE, "%s: %s", nums[i], r->detail);
        struct pg_add_result res;
        cr_assert_eq(pg_batch_add_record(batch, r, TOPIC_CFO, strlen(TOPIC_CFO),
                                         (const unsigned char *)payload,
                                         strlen(payload), true, &res),
                     SPOT_OK);
        struct decoded d;
        decode(SPOT_V_CFO, &d);
        expect_float8(&d.f[0][col(SPOT_V_CFO, "people_count")],
                      strtod(nums[i], NULL));
    }
}

Test(pg_batch, hostile_strings_arrive_byte_for_byte)
{
    /* In COPY's text format each of these would need escaping; here every
     * value is length-prefixed. JSON escapes: \t \n \r \\ \" */
    static const char *const raw[] = {
        "tab\there",
        "new\nline\r\n",
        "back\\slash\\N",
        "\\.",
        "'); DROP TABLE device_info; --",
        "\"quoted\" $1 $$x$$",
        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", /* é € 😀 */
        "",
    };
    static const char *const json[] = {
        "tab\\there",
        "new\\nline\\r\\n",
        "back\\\\slash\\\\N",
        "\\\\.",
        "'); DROP TABLE device_info; --",
        "\\\"quoted\\\" $1 $$x$$",
        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
        "",
    };
    size_t n = sizeof raw / sizeof raw[0];
    for (size_t i = 0; i < n; i++) {
        char payload[512];
        snprintf(payload, sizeof payload,
                 "{\"TimeInstant\":\"2023-03-20T13:%02zu:00Z\",\"period\":5,"
                 "\"status\":\"connected\",\"wifiSsid\":\"%s\","
                 "\"cellularEnabled\":\"true\",\"updateFirmwareState\":3,"
                 "\"unknownKey\":\"%s\"}",
                 i, json[i], json[i]);
        struct pg_add_result res;
        add(TOPIC_DEV, payload, &res);
        cr_assert(res.row, "row %zu", i);
    }
    struct decoded d;
    int t = SPOT_V_DEV;
    decode(t, &d);
    cr_assert_eq(d.rows, n);
    for (size_t i = 0; i < n; i++) {
        const struct field *f = d.f[i];
        expect_text(&f[col(t, "wifi_ssid")], raw[i]);
        cr_assert_eq(f[col(t, "cellular_enabled")].len, 1);
        cr_assert_eq(f[col(t, "cellular_enabled")].p[0], 1, "true");
        cr_assert_eq(f[col(t, "update_firmware_state")].len, 4, "int4");
        cr_assert_eq(be32(f[col(t, "update_firmware_state")].p), 3);
        /* jsonb: version 1, then the JSON text yajl wrote */
        const struct field *x = &f[col(t, "extra")];
        cr_assert(x->len > 1);
        cr_assert_eq(x->p[0], 1, "jsonb version byte");
        char want[512];
        snprintf(want, sizeof want, "{\"unknownKey\":\"%s\"}", json[i]);
        /* yajl escapes "/" never and the rest as the input did */
        cr_assert_eq((size_t)x->len - 1, strlen(want), "extra %.*s",
                     (int)x->len - 1, x->p + 1);
        cr_assert_eq(memcmp(x->p + 1, want, strlen(want)), 0);
    }
}

Test(pg_batch, range_rejection_stores_row_with_null_and_dead_letter)
{
    struct pg_add_result res;
    add(TOPIC_AQO,
        "{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":5,"
        "\"status\":\"connected\",\"pm2\":10001,\"pm10\":7}",
        &res);
    cr_assert(res.row && res.rejected);
    cr_assert_eq(res.reason, REJECT_RANGE);
    struct decoded d;
    decode(SPOT_V_AQO, &d);
    cr_assert_eq(d.rows, 1);
    cr_assert_eq(d.f[0][col(SPOT_V_AQO, "pm2")].len, -1, "out of range: NULL");
    expect_float8(&d.f[0][col(SPOT_V_AQO, "pm10")], 7);
    cr_assert_eq(pg_batch_reject_rows(batch), 1);
}

Test(pg_batch, rejected_message_row)
{
    /* raw bytes kept as they came (bytea), topic made valid UTF-8 */
    static const unsigned char payload[] = {'{',  0x00, '\t', '\n', '\\',
                                            0xff, 0xfe, '"',  '}'};
    const char topic[] = "/bad\xff\ttopic/x/attrs";
    cr_assert_eq(pg_batch_add_reject(batch, topic, strlen(topic), payload,
                                     sizeof payload, RECEIVED, REJECT_JSON,
                                     "parse error at byte 1: \\ \t"),
                 SPOT_OK);
    struct decoded d;
    int t = PG_TABLE_REJECTED;
    decode(t, &d);
    cr_assert_eq(d.rows, 1);
    cr_assert_eq(d.cols, n_inserted(t));
    const struct field *f = d.f[0];
    expect_time(&f[col(t, "received_at")], RECEIVED);
    expect_text(&f[col(t, "topic")], "/bad\xef\xbf\xbd\ttopic/x/attrs");
    cr_assert_eq(f[col(t, "payload")].len, (int32_t)sizeof payload);
    cr_assert_eq(memcmp(f[col(t, "payload")].p, payload, sizeof payload), 0);
    expect_text(&f[col(t, "reason")], "json");
    expect_text(&f[col(t, "detail")], "parse error at byte 1: \\ \t");
    cr_assert_eq(f[col(t, "fingerprint")].len, 32, "SHA-256");
}

Test(pg_batch, unstorable_value_becomes_a_dead_letter)
{
    /* The validator refuses NUL in strings; should a record still carry
     * one (or an integer beyond int4), the row becomes a "schema" dead
     * letter and nothing of it stays in the batch. */
    static const char payload[] =
        "{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":5,"
        "\"status\":\"connected\",\"wifiSsid\":\"abc\","
        "\"updateFirmwareState\":3}";
    const struct record *r;
    cr_assert_eq(validator_run(val, TOPIC_DEV, strlen(TOPIC_DEV),
                               (const unsigned char *)payload, strlen(payload),
                               RECEIVED, &r),
                 SPOT_OK);
    cr_assert_eq(r->reason, REJECT_NONE);
    static struct record copy;
    int ssid = schema_field_index(r->schema, "wifiSsid", 8);
    int state = schema_field_index(r->schema, "updateFirmwareState", 19);
    cr_assert(ssid >= 0 && state >= 0);
    for (int k = 0; k < 2; k++) {
        copy = *r;
        if (k == 0) {
            copy.values[ssid].text = "a\0b";
            copy.values[ssid].text_len = 3;
        } else {
            copy.values[state].integer = 1LL << 40;
        }
        struct pg_add_result res;
        cr_assert_eq(pg_batch_add_record(batch, &copy, TOPIC_DEV,
                                         strlen(TOPIC_DEV),
                                         (const unsigned char *)payload,
                                         strlen(payload), false, &res),
                     SPOT_OK);
        cr_assert(!res.row && res.rejected, "case %d", k);
        cr_assert_eq(res.reason, REJECT_SCHEMA);
    }
    cr_assert_eq(pg_batch_data_rows(batch), 0);
    cr_assert_eq(pg_batch_reject_rows(batch), 2);
    struct decoded d;
    decode(SPOT_V_DEV, &d);
    cr_assert_eq(d.rows, 0, "nothing half-added");
    decode(PG_TABLE_REJECTED, &d);
    cr_assert_eq(d.rows, 2);
    expect_text(&d.f[0][col(PG_TABLE_REJECTED, "reason")], "schema");
}

Test(pg_batch, empty_table_and_bad_index)
{
    struct decoded d;
    decode(SPOT_V_NLO, &d);
    cr_assert_eq(d.rows, 0);
    const char *data;
    size_t len;
    cr_assert_eq(pg_batch_copy_stream(batch, -1, &data, &len), SPOT_EINVAL);
    cr_assert_eq(pg_batch_copy_stream(batch, PG_TABLE_COUNT, &data, &len),
                 SPOT_EINVAL);
}

Test(pg_batch, reset_empties_every_table)
{
    struct pg_add_result res;
    for (int i = 0; i < 3; i++)
        add(TOPIC_AQO,
            "{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":5,"
            "\"status\":\"connected\"}",
            &res);
    cr_assert_eq(pg_batch_data_rows(batch), 3);
    struct decoded d;
    decode(SPOT_V_AQO, &d);
    cr_assert_eq(d.rows, 3);
    pg_batch_reset(batch);
    cr_assert_eq(pg_batch_data_rows(batch), 0);
    cr_assert_eq(pg_batch_bytes(batch), 0);
    decode(SPOT_V_AQO, &d);
    cr_assert_eq(d.rows, 0);
}
