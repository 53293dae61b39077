/* Validation: the manufacturer's vectors, and edge cases of every stage
 * (topic, apikey policy, size, JSON, schema, ranges). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "spot/err.h"
#include "spot/schema.h"
#include "spot/utf8.h"
#include "validate.h"

#define TOPIC_AQO "/JRI9jTbEKJQS29y3bc8BC6aqo/SmartSpot_AQ_1_AQO/attrs"
#define BASE_AQO                                                               \
    "\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":5,"                   \
    "\"status\":\"connected\""

static struct schema_set *schemas;
static struct validator *val;

static void setup(void)
{
    char err[256];
    cr_assert_eq(schema_set_new(&schemas, err, sizeof err), SPOT_OK, "%s", err);
    cr_assert_eq(validator_new(&val, schemas, NULL), SPOT_OK);
}

static void teardown(void)
{
    validator_free(val);
    schema_set_free(schemas);
}

TestSuite(validate, .init = setup, .fini = teardown);

static const struct record *run_topic(const char *topic, const void *payload,
                                      size_t len)
{
    const struct record *r;
    cr_assert_eq(validator_run(val, topic, strlen(topic), payload, len,
                               1700000000000000, &r),
                 SPOT_OK);
    return r;
}

static const struct record *run(const char *payload)
{
    return run_topic(TOPIC_AQO, payload, strlen(payload));
}

static const struct value *field(const struct record *r, const char *name)
{
    int i = schema_field_index(r->schema, name, strlen(name));
    cr_assert(i >= 0, "no field %s", name);
    return &r->values[i];
}

static void expect_reason(const struct record *r, enum reject_reason want,
                          const char *detail_part)
{
    cr_assert_eq(r->reason, want, "reason %s (%s), want %s",
                 reject_reason_name(r->reason), r->detail,
                 reject_reason_name(want));
    if (detail_part)
        cr_assert(strstr(r->detail, detail_part) != NULL,
                  "detail \"%s\" lacks \"%s\"", r->detail, detail_part);
}

static char *read_vector(const char *name, size_t *len)
{
    const char *dir = getenv("SPOT_VECTORS");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/fixtures/vectors",
             name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    char *buf = malloc(8192);
    *len = fread(buf, 1, 8192, f);
    fclose(f);
    return buf;
}

static const struct record *run_vector(const char *file, const char *code)
{
    char topic[128];
    char upper[4] = {(char)(code[0] - 32), (char)(code[1] - 32),
                     (char)(code[2] - 32), 0};
    snprintf(topic, sizeof topic,
             "/JRI9jTbEKJQS29y3bc8BC6%s/SmartSpot_AQ_1_%s/attrs", code, upper);
    size_t len;
    char *p = read_vector(file, &len);
    const struct record *r = run_topic(topic, p, len);
    free(p);
    return r;
}

/* --- the manufacturer's example messages --------------------------------- */

Test(validate, valid_vectors_are_accepted)
{
    static const char *const ok[][2] = {
        {"aqo.json", "aqo"},       {"nlo.json", "nlo"},
        {"wto.json", "wto"},       {"cfo.json", "cfo"},
        {"cfe.fixed.json", "cfe"}, {"dev.fixed.json", "dev"},
        {"dho.fixed.json", "dho"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const struct record *r = run_vector(ok[i][0], ok[i][1]);
        cr_assert_eq(r->reason, REJECT_NONE, "%s: %s (%s)", ok[i][0],
                     reject_reason_name(r->reason), r->detail);
        cr_assert_str_eq(r->apikey, "JRI9jTbEKJQS29y3bc8BC6");
        cr_assert_str_eq(r->device_id, "SmartSpot_AQ_1");
        cr_assert_null(r->extra_json, "%s: unexpected extras %.*s", ok[i][0],
                       (int)r->extra_len, r->extra_json);
    }
}

Test(validate, malformed_vectors_are_json_rejections)
{
    static const char *const bad[][2] = {
        {"cfe.json", "cfe"}, {"dev.json", "dev"}, {"dho.json", "dho"}};
    for (size_t i = 0; i < 3; i++) {
        const struct record *r = run_vector(bad[i][0], bad[i][1]);
        expect_reason(r, REJECT_JSON, "parse error at byte");
    }
}

Test(validate, aqo_values_are_typed)
{
    size_t len;
    char *p = read_vector("aqo.json", &len);
    const struct record *r = run_topic(TOPIC_AQO, p, len);
    free(p);
    cr_assert_eq(r->vertical, SPOT_V_AQO);
    const struct value *no2 = field(r, "no2-a4");
    cr_assert_eq(no2->kind, VALUE_NUMBER);
    cr_assert_float_eq(no2->number, 0.640869140625, 1e-15);
    cr_assert_str_eq(no2->text, "0.640869140625");
    cr_assert_eq(field(r, "voc")->kind, VALUE_ABSENT);
    cr_assert_str_eq(r->time_instant_text, "2023-03-20T13:50:00.000000Z");
    cr_assert_eq(r->time_instant_us, 1679320200000000LL);
    const struct value *st = field(r, "status");
    cr_assert_eq(st->kind, VALUE_TEXT);
    cr_assert_str_eq(st->text, "connected");
}

Test(validate, dev_and_dho_types)
{
    const struct record *r = run_vector("dev.fixed.json", "dev");
    cr_assert_eq(field(r, "wifiEnabled")->kind, VALUE_BOOL);
    cr_assert_eq(field(r, "wifiEnabled")->boolean, false);
    cr_assert_str_eq(field(r, "wifiSsid")->text, "defaultSSAP");
    cr_assert_eq(field(r, "updateFirmwareState")->kind, VALUE_INTEGER);
    r = run_vector("dho.fixed.json", "dho");
    cr_assert_eq(field(r, "networkBearer")->integer, 21);
    cr_assert_float_eq(field(r, "batteryCurrent")->number, -312, 0);
}

Test(validate, cfo_alias_and_cfe_key)
{
    const char *alias =
        "{\"TimeInstant\":\"2023-03-20T13:44:06Z\",\"period\":1,"
        "\"status\":\"connected\",\"AvgDuration\":11}";
    const struct record *r =
        run_topic("/kcfo/d_CFO/attrs", alias, strlen(alias));
    cr_assert_eq(r->reason, REJECT_NONE, "%s", r->detail);
    cr_assert_float_eq(field(r, "avgDuration")->number, 11, 0);
    const char *both = "{\"TimeInstant\":\"2023-03-20T13:44:06Z\",\"period\":1,"
                       "\"status\":\"connected\",\"avgDuration\":1,"
                       "\"AvgDuration\":11}";
    expect_reason(run_topic("/kcfo/d_CFO/attrs", both, strlen(both)),
                  REJECT_JSON, "twice");
    /* cfe without its key field is a schema rejection */
    const char *cfe = "{\"TimeInstant\":\"2023-03-20T13:44:06Z\",\"period\":1}";
    expect_reason(run_topic("/kcfe/d_CFE/attrs", cfe, strlen(cfe)),
                  REJECT_SCHEMA, "visitorId");
    const char *badkey = "{\"TimeInstant\":\"2023-03-20T13:44:06Z\",\"period\":"
                         "1,\"visitorId\":\"AA:BB:CC:DD:EE:FF\"}";
    expect_reason(run_topic("/kcfe/d_CFE/attrs", badkey, strlen(badkey)),
                  REJECT_SCHEMA, "visitorId");
}

/* --- schema -----------------------------------------------------------------
 */

Test(validate, null_reading_is_accepted)
{
    const struct record *r = run("{" BASE_AQO ",\"pm10\":null}");
    cr_assert_eq(r->reason, REJECT_NONE, "%s", r->detail);
    cr_assert_eq(field(r, "pm10")->kind, VALUE_NULL);
    cr_assert_eq(field(r, "pm10")->out_of_range, false);
}

Test(validate, null_mandatory_is_schema_error)
{
    expect_reason(run("{\"TimeInstant\":null,\"period\":5,\"status\":"
                      "\"connected\"}"),
                  REJECT_SCHEMA, "TimeInstant");
    expect_reason(run("{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":"
                      "null,\"status\":\"connected\"}"),
                  REJECT_SCHEMA, "period");
}

Test(validate, missing_mandatory)
{
    expect_reason(run("{\"period\":5,\"status\":\"connected\"}"), REJECT_SCHEMA,
                  "TimeInstant");
    expect_reason(run("{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"status\":"
                      "\"connected\"}"),
                  REJECT_SCHEMA, "period");
    expect_reason(run("{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":"
                      "5}"),
                  REJECT_SCHEMA, "status");
}

Test(validate, wrong_types)
{
    expect_reason(run("{" BASE_AQO ",\"pm10\":\"49\"}"), REJECT_SCHEMA, "pm10");
    expect_reason(run("{" BASE_AQO ",\"pm10\":true}"), REJECT_SCHEMA, "pm10");
    expect_reason(run("{" BASE_AQO ",\"pm10\":[1]}"), REJECT_SCHEMA, "pm10");
    expect_reason(run("{" BASE_AQO ",\"pm10\":{\"a\":1}}"), REJECT_SCHEMA,
                  "pm10");
    expect_reason(run("{\"TimeInstant\":1679320200,\"period\":5,\"status\":"
                      "\"connected\"}"),
                  REJECT_SCHEMA, "TimeInstant");
    const char *dho = "{\"TimeInstant\":\"2023-03-20T13:45:00Z\",\"period\":5,"
                      "\"status\":\"connected\",\"networkBearer\":21.5}";
    expect_reason(run_topic("/kdho/d_DHO/attrs", dho, strlen(dho)),
                  REJECT_SCHEMA, "networkBearer");
    const char *dev = "{\"TimeInstant\":\"2023-03-20T13:45:00Z\",\"period\":5,"
                      "\"status\":\"connected\",\"wifiEnabled\":\"yes\"}";
    expect_reason(run_topic("/kdev/d_DEV/attrs", dev, strlen(dev)),
                  REJECT_SCHEMA, "wifiEnabled");
}

Test(validate, top_level_must_be_an_object)
{
    expect_reason(run("[1,2]"), REJECT_SCHEMA, "object");
    expect_reason(run("42"), REJECT_SCHEMA, "object");
    expect_reason(run("\"x\""), REJECT_SCHEMA, "object");
}

Test(validate, bad_dates)
{
    static const char *const bad[] = {
        "2023-03-20T13:50:00",
        "2023-03-20 13:50:00Z",
        "2023-02-29T00:00:00Z",
        "2023-13-01T00:00:00Z",
        "2023-03-20T24:00:00Z",
        "2023-03-20T13:60:00Z",
        "2023-03-20T13:50:60Z",
        "2023-03-20T13:50:00+01:00",
        "2023-3-20T13:50:00Z",
        "2023-03-20T13:50:00.Z",
        "2023-03-20T13:50:00.1234567890Z",
        "",
        "2023-03-32T00:00:00Z",
        "20230320T135000Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "{\"TimeInstant\":\"%s\",\"period\":5,\"status\":"
                 "\"connected\"}",
                 bad[i]);
        expect_reason(run(msg), REJECT_SCHEMA, "TimeInstant");
    }
}

Test(validate, good_dates)
{
    int64_t t;
    cr_assert_eq(validate_parse_time("2024-02-29T23:59:59.5Z", 22, &t),
                 SPOT_OK);
    char buf[32];
    validate_format_time(t, buf);
    cr_assert_str_eq(buf, "2024-02-29T23:59:59.500000Z");
    cr_assert_eq(validate_parse_time("1970-01-01T00:00:00Z", 20, &t), SPOT_OK);
    cr_assert_eq(t, 0);
    cr_assert_eq(validate_parse_time("2000-02-29T00:00:00.123456789Z", 30, &t),
                 SPOT_OK);
    cr_assert_eq(t % 1000000, 123456);
    validate_format_time(-1, buf);
    cr_assert_str_eq(buf, "1969-12-31T23:59:59.999999Z");
}

Test(validate, out_of_range_keeps_row_with_null)
{
    const struct record *r =
        run("{" BASE_AQO ",\"pm10\":-5,\"pm2\":15.3,\"no2-a4\":1e7}");
    expect_reason(r, REJECT_RANGE, "outside");
    cr_assert_eq(field(r, "pm10")->kind, VALUE_NULL);
    cr_assert(field(r, "pm10")->out_of_range);
    cr_assert_eq(field(r, "pm2")->kind, VALUE_NUMBER);
    cr_assert_eq(field(r, "no2-a4")->kind, VALUE_NULL);
    /* a range problem does not hide a schema problem */
    r = run("{" BASE_AQO ",\"pm10\":-5,\"pm2\":\"x\"}");
    expect_reason(r, REJECT_SCHEMA, "pm2");
}

Test(validate, disallowed_codes_and_status)
{
    const char *dho = "{\"TimeInstant\":\"2023-03-20T13:45:00Z\",\"period\":5,"
                      "\"status\":\"connected\",\"networkBearer\":3}";
    const struct record *r = run_topic("/kdho/d_DHO/attrs", dho, strlen(dho));
    expect_reason(r, REJECT_RANGE, "networkBearer");
    expect_reason(run("{\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":5,"
                      "\"status\":\"online\"}"),
                  REJECT_RANGE, "status");
}

Test(validate, unknown_fields_are_kept_in_extra)
{
    const struct record *r =
        run("{" BASE_AQO ",\"pm1\":2,\"fw\":\"1.2\",\"cfg\":{\"a\":[1,"
            "true,null,{\"b\":\"c\"}]},\"n\":1.50}");
    cr_assert_eq(r->reason, REJECT_NONE, "%s", r->detail);
    cr_assert_not_null(r->extra_json);
    char *extra = strndup(r->extra_json, r->extra_len);
    cr_assert_str_eq(extra, "{\"fw\":\"1.2\",\"cfg\":{\"a\":[1,true,null,{"
                            "\"b\":\"c\"}]},\"n\":1.50}");
    free(extra);
}

/* --- JSON -------------------------------------------------------------------
 */

Test(validate, duplicate_keys)
{
    expect_reason(run("{" BASE_AQO ",\"pm10\":1,\"pm10\":2}"), REJECT_JSON,
                  "duplicate");
    expect_reason(run("{" BASE_AQO ",\"x\":1,\"x\":2}"), REJECT_JSON,
                  "duplicate");
    expect_reason(run("{" BASE_AQO ",\"x\":{\"a\":1,\"a\":2}}"), REJECT_JSON,
                  "duplicate");
    /* the same key in sibling objects is fine */
    const struct record *r =
        run("{" BASE_AQO ",\"x\":[{\"a\":1},{\"a\":2}],\"y\":{\"a\":3}}");
    cr_assert_eq(r->reason, REJECT_NONE, "%s", r->detail);
}

Test(validate, non_finite_numbers)
{
    expect_reason(run("{" BASE_AQO ",\"pm10\":1e999}"), REJECT_JSON, "range");
    expect_reason(run("{" BASE_AQO ",\"x\":-1e400}"), REJECT_JSON, "range");
    expect_reason(run("{" BASE_AQO ",\"pm10\":NaN}"), REJECT_JSON, NULL);
    expect_reason(run("{" BASE_AQO ",\"pm10\":Infinity}"), REJECT_JSON, NULL);
    expect_reason(run("{" BASE_AQO ",\"x\":1e-400}"), REJECT_JSON, "range");
}

Test(validate, deep_nesting)
{
    char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof buf, "{" BASE_AQO ",\"x\":");
    for (int i = 0; i < 100; i++)
        buf[n++] = '[';
    for (int i = 0; i < 100; i++)
        buf[n++] = ']';
    buf[n++] = '}';
    buf[n] = '\0';
    expect_reason(run(buf), REJECT_JSON, "deep");
}

Test(validate, invalid_utf8_and_nul)
{
    expect_reason(run("{" BASE_AQO ",\"x\":\"\xff\xfe\"}"), REJECT_JSON, NULL);
    expect_reason(run("{" BASE_AQO ",\"x\":\"\xc3\"}"), REJECT_JSON, NULL);
    expect_reason(run("{" BASE_AQO ",\"\xe9\":1}"), REJECT_JSON, NULL);
    expect_reason(run("{" BASE_AQO ",\"x\":\"a\\u0000b\"}"), REJECT_JSON,
                  "U+0000");
    const char nul[] = "{\"TimeInstant\":\"2023-03-20T13:50:00Z\"\0}";
    expect_reason(run_topic(TOPIC_AQO, nul, sizeof nul - 1), REJECT_JSON, NULL);
    /* valid multi-byte UTF-8 passes */
    const struct record *r =
        run("{" BASE_AQO ",\"x\":\"caf\xc3\xa9 \xe2\x82\xac\"}");
    cr_assert_eq(r->reason, REJECT_NONE, "%s", r->detail);
}

/* yajl checks only the shape of a multi-byte sequence; PostgreSQL (text,
 * jsonb) refuses the rest, so the validator must (found by fuzzing: an
 * overlong form in a key of a generic message). */
Test(validate, strict_utf8)
{
    static const char *const bad[] = {
        "\"x\":\"\xc0\x80\"",         /* overlong U+0000 */
        "\"x\":\"\xe0\x80\xaf\"",     /* overlong '/' */
        "\"x\":\"\xed\xa0\x80\"",     /* UTF-16 surrogate, raw */
        "\"x\":\"\\udc00\"",          /* lone low surrogate escape */
        "\"x\":\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
        "\"\xc0\x94t\":1",            /* overlong form in a key */
        "\"x\":{\"\xed\xbf\xbf\":1}", /* surrogate in a nested key */
    };
    char buf[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "{" BASE_AQO ",%s}", bad[i]);
        expect_reason(run(buf), REJECT_JSON, "UTF-8");
    }
    /* the largest code point, and a correct surrogate pair, pass */
    const struct record *r = run("{" BASE_AQO ",\"x\":\"\xf4\x8f\xbf\xbf"
                                 "\\ud83d\\ude00\"}");
    cr_assert_eq(r->reason, REJECT_NONE, "%s", r->detail);
}

/* The detail quotes at most 40 bytes of a duplicate key: never half a
 * character (it is stored as text). */
Test(validate, duplicate_key_detail_is_valid_utf8)
{
    char key[64];
    memset(key, 'k', 39);
    memcpy(key + 39, "\xc3\xa9z", 4); /* the 40th byte starts an e-acute */
    char buf[256];
    snprintf(buf, sizeof buf, "{" BASE_AQO ",\"%s\":1,\"%s\":2}", key, key);
    const struct record *r = run(buf);
    expect_reason(r, REJECT_JSON, "duplicate key");
    cr_assert(utf8_is_valid(r->detail, strlen(r->detail)), "%s", r->detail);
    cr_assert(strstr(r->detail, "kkk\"") != NULL, "%s", r->detail);
}

Test(validate, syntax_errors)
{
    static const char *const bad[] = {
        "",
        "{",
        "{\"a\":}",
        "{" BASE_AQO "}x",
        "{" BASE_AQO "}{}",
        "{'a':1}",
        "{" BASE_AQO ",}",
        "{" BASE_AQO " /* c */}",
        "   ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_reason(run(bad[i]), REJECT_JSON, "parse error");
}

Test(validate, too_large)
{
    size_t n = SPOT_MAX_PAYLOAD_LEN + 1;
    char *p = malloc(n);
    memset(p, ' ', n);
    p[0] = '{';
    p[n - 1] = '}';
    expect_reason(run_topic(TOPIC_AQO, p, n), REJECT_TOO_LARGE, "exceeds");
    free(p);
}

Test(validate, largest_accepted_payload_fits_the_arena)
{
    /* one huge extra string right at the cap: accepted, not a crash */
    size_t n = SPOT_MAX_PAYLOAD_LEN;
    char *p = malloc(n + 1);
    int head = snprintf(p, n, "{" BASE_AQO ",\"x\":\"");
    memset(p + head, 'a', n - (size_t)head - 2);
    p[n - 2] = '"';
    p[n - 1] = '}';
    const struct record *r = run_topic(TOPIC_AQO, p, n);
    cr_assert_eq(r->reason, REJECT_NONE, "%s", r->detail);
    free(p);
}

/* --- topic and apikey policy ------------------------------------------------
 */

Test(validate, topic_errors)
{
    const char *p = "{" BASE_AQO "}";
    expect_reason(run_topic("/X_aqo/Y_NLO/attrs", p, strlen(p)), REJECT_TOPIC,
                  "disagree");
    expect_reason(run_topic("/a/b/c/attrs", p, strlen(p)), REJECT_TOPIC, NULL);
}

Test(validate, generic_needs_a_generic_group)
{
    const char *p = "{\"temperature\":21.5}";
    expect_reason(run_topic("/anykey/thing1/attrs", p, strlen(p)),
                  REJECT_UNKNOWN_APIKEY, "generic");
}

static struct groups *make_groups(const char *json)
{
    char err[256];
    yajl_val root = yajl_tree_parse(json, err, sizeof err);
    cr_assert_not_null(root, "%s", err);
    struct groups *g;
    cr_assert_eq(groups_new(&g, root, err, sizeof err), SPOT_OK, "%s", err);
    yajl_tree_free(root);
    return g;
}

Test(validate, configured_groups)
{
    struct groups *g = make_groups(
        "[{\"apikey\":\"gen1\",\"generic\":true,\"service\":\"city\","
        "\"service_path\":\"/sensors\"},"
        "{\"apikey\":\"JRI9jTbEKJQS29y3bc8BC6\",\"verticals\":[\"aqo\"]}]");
    validator_set_groups(val, g);
    const char *p = "{\"temperature\":21.5,\"TimeInstant\":"
                    "\"2023-03-20T13:50:00Z\"}";
    const struct record *r = run_topic("/gen1/thing1/attrs", p, strlen(p));
    cr_assert_eq(r->reason, REJECT_NONE, "%s", r->detail);
    cr_assert_eq(r->vertical, SPOT_V_GENERIC);
    cr_assert_str_eq(r->group->service, "city");
    cr_assert_str_eq(r->time_instant_text, "2023-03-20T13:50:00.000000Z");
    cr_assert_not_null(r->extra_json);

    r = run_topic("/gen1/thing1/attrs", "{\"t\":1}", 7);
    cr_assert_eq(r->reason, REJECT_NONE, "%s", r->detail);
    cr_assert_eq(r->time_instant_us, 1700000000000000LL);

    r = run("{" BASE_AQO "}");
    cr_assert_eq(r->reason, REJECT_NONE, "%s", r->detail);
    const char *nlo = "{" BASE_AQO "}";
    r = run_topic("/JRI9jTbEKJQS29y3bc8BC6nlo/D_NLO/attrs", nlo, strlen(nlo));
    expect_reason(r, REJECT_UNKNOWN_APIKEY, "not allowed");
    r = run_topic("/otheraqo/D_AQO/attrs", nlo, strlen(nlo));
    expect_reason(r, REJECT_UNKNOWN_APIKEY, "not configured");
    validator_set_groups(val, NULL);
    groups_free(g);
}

Test(validate, group_config_errors)
{
    static const char *const bad[] = {
        "{}",
        "[{\"service\":\"x\"}]",
        "[{\"apikey\":\"a b\"}]",
        "[{\"apikey\":\"a\",\"service\":\"bad-name\"}]",
        "[{\"apikey\":\"a\",\"service_path\":\"nopath\"}]",
        "[{\"apikey\":\"a\",\"service_path\":\"/a-b\"}]",
        "[{\"apikey\":\"a\",\"verticals\":[\"xyz\"]}]",
        "[{\"apikey\":\"a\"},{\"apikey\":\"a\"}]",
        "[{\"apikey\":\"a\",\"bogus\":1}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        yajl_val root = yajl_tree_parse(bad[i], err, sizeof err);
        cr_assert_not_null(root);
        struct groups *g = NULL;
        cr_assert_eq(groups_new(&g, root, err, sizeof err), SPOT_ECONFIG,
                     "accepted %s", bad[i]);
        cr_assert(err[0] != '\0');
        yajl_tree_free(root);
    }
}

Test(validate, record_is_reset_between_messages)
{
    const struct record *r = run("{" BASE_AQO ",\"pm10\":3,\"x\":1}");
    cr_assert_not_null(r->extra_json);
    r = run("{" BASE_AQO "}");
    cr_assert_eq(field(r, "pm10")->kind, VALUE_ABSENT);
    cr_assert_null(r->extra_json);
    cr_assert_eq(r->reason, REJECT_NONE);
}

Test(validate, stale_errno_does_not_reject_a_number)
{
    /* the fast number path runs no strtod: an ERANGE left over from an
     * earlier call must not make its number "out of range" */
    errno = ERANGE;
    const struct record *r =
        run("{" BASE_AQO ",\"pm2\":0.30000000000000004,\"pm10\":12.5}");
    expect_reason(r, REJECT_NONE, NULL);
    cr_assert(!field(r, "pm10")->out_of_range);
}

Test(validate, number_exact_flag)
{
    /* exact: the fast path's integer fits 2^53, or strtod ran */
    const struct record *r =
        run("{" BASE_AQO ",\"pm1\":12.5,\"pm2\":0.30000000000000004,"
            "\"pm10\":1e2}");
    expect_reason(r, REJECT_NONE, NULL);
    cr_assert(field(r, "pm1")->number_exact);
    cr_assert(!field(r, "pm2")->number_exact);
    cr_assert(field(r, "pm10")->number_exact);
    cr_assert_eq(field(r, "pm10")->number, 100.0);
}
