/* The NGSI test server's JSON parser and DateTime formatter
 * (tests/servers/ngsi_server_json.h, ngsi_server_rules.h): the arena
 * parser builds the same tree as yajl_tree_parse, refuses the same inputs,
 * and iso8601_format matches the snprintf it replaces. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include "../servers/ngsi_server_rules.h"
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* Compares two trees node by node; fails with the path on a difference. */
static void same_tree(yajl_val a, yajl_val b, const char *path)
{
    cr_assert_not_null(a, "%s: missing in json_parse", path);
    cr_assert_not_null(b, "%s: missing in yajl_tree_parse", path);
    cr_assert_eq(a->type, b->type, "%s: type", path);
    char sub[512];
    switch (a->type) {
    case yajl_t_string:
        cr_assert_str_eq(a->u.string, b->u.string, "%s", path);
        break;
    case yajl_t_number:
        cr_assert_str_eq(a->u.number.r, b->u.number.r, "%s", path);
        cr_assert_eq(a->u.number.flags, b->u.number.flags, "%s: flags %s", path,
                     a->u.number.r);
        if (a->u.number.flags & YAJL_NUMBER_INT_VALID)
            cr_assert_eq(a->u.number.i, b->u.number.i, "%s", path);
        if (a->u.number.flags & YAJL_NUMBER_DOUBLE_VALID)
            cr_assert_eq(a->u.number.d, b->u.number.d, "%s", path);
        break;
    case yajl_t_object:
        cr_assert_eq(a->u.object.len, b->u.object.len, "%s: members", path);
        for (size_t i = 0; i < a->u.object.len; i++) {
            cr_assert_str_eq(a->u.object.keys[i], b->u.object.keys[i],
                             "%s: key %zu", path, i);
            snprintf(sub, sizeof sub, "%s/%s", path, a->u.object.keys[i]);
            same_tree(a->u.object.values[i], b->u.object.values[i], sub);
        }
        break;
    case yajl_t_array:
        cr_assert_eq(a->u.array.len, b->u.array.len, "%s: length", path);
        for (size_t i = 0; i < a->u.array.len; i++) {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            same_tree(a->u.array.values[i], b->u.array.values[i], sub);
        }
        break;
    default:
        break;
    }
}

static void check_same(const char *text)
{
    char err[128];
    yajl_val a = json_parse(text, strlen(text));
    yajl_val b = yajl_tree_parse(text, err, sizeof err);
    cr_assert_not_null(b, "yajl_tree_parse refused %s: %s", text, err);
    same_tree(a, b, "");
    json_free(a);
    yajl_tree_free(b);
}

Test(ngsi_server_json, same_tree_as_yajl_tree)
{
    static const char *const docs[] = {
        "{}",
        "[]",
        "0",
        "\"s\"",
        "null",
        "true",
        "[false,null,true,\"\",{}]",
        "{\"a\":1,\"a\":2,\"b\":[1,2,{\"c\":null}]}",
        "{\"n\":[0,-0,1.5,-2e3,1e400,1e-400,9223372036854775807,"
        "9223372036854775808,-9223372036854775808,-9223372036854775809,"
        "12345678901234567890123]}",
        "{\"esc\":\"a\\\"b\\\\c\\/d\\u00e9\\ud83d\\ude00\\n\",\"\":\"\"}",
        "  {\"deep\":[[[[[[[[[[{\"x\":[[[]]]}]]]]]]]]]]}  ",
        "{\"actionType\":\"append\",\"entities\":[{\"id\":\"E1\",\"type\":"
        "\"T\",\"t\":{\"type\":\"DateTime\",\"value\":"
        "\"2026-01-01T00:00:00Z\",\"metadata\":{\"u\":{\"type\":\"Text\","
        "\"value\":\"GQ\"}}}}]}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
        check_same(docs[i]);
}

Test(ngsi_server_json, large_body_spans_blocks)
{
    /* well over one arena block, and arrays longer than the item stack's
     * first size */
    size_t cap = 4u << 20, n = 0;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    n += (size_t)snprintf(s + n, cap - n, "{\"entities\":[");
    for (int i = 0; i < 3000; i++)
        n += (size_t)snprintf(s + n, cap - n,
                              "%s{\"id\":\"E%d\",\"v\":%d.25,\"s\":\"%0200d\"}",
                              i ? "," : "", i, i, i);
    n += (size_t)snprintf(s + n, cap - n, "]}");
    cr_assert_lt(n, cap);
    check_same(s);
    free(s);
}

Test(ngsi_server_json, refuses_what_yajl_tree_or_the_prescan_refuses)
{
    static const char *const bad[] = {
        "",
        "   ",
        "{",
        "{\"a\":}",
        "[1,]",
        "{\"a\":1}x",
        "{} {}",
        "/* c */ {}",
        "{\"a\":1 // c\n}",
        "\"\\u0000\"",
        "\"\xff\"",
        "{\"a\":\"unterminated",
        "\"\\",
        "[01]",
        "{'a':1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        yajl_val v = json_parse(bad[i], strlen(bad[i]));
        cr_assert_null(v, "accepted: %s", bad[i]);
    }
    /* a NUL byte inside the text */
    static const char nul[] = "{\"a\":\"x\0y\"}";
    cr_assert_null(json_parse(nul, sizeof nul - 1));
    /* nesting deeper than NS_MAX_JSON_DEPTH */
    char deep[2 * (NS_MAX_JSON_DEPTH + 2) + 1];
    size_t k = 0;
    for (int i = 0; i < NS_MAX_JSON_DEPTH + 1; i++)
        deep[k++] = '[';
    for (int i = 0; i < NS_MAX_JSON_DEPTH + 1; i++)
        deep[k++] = ']';
    deep[k] = '\0';
    cr_assert_null(json_parse(deep, k));
    deep[NS_MAX_JSON_DEPTH] = '\0'; /* 60 opening brackets only */
    memset(deep, '[', NS_MAX_JSON_DEPTH);
    memset(deep + NS_MAX_JSON_DEPTH, ']', NS_MAX_JSON_DEPTH);
    deep[2 * NS_MAX_JSON_DEPTH] = '\0';
    check_same(deep);
    json_free(NULL);
}

Test(ngsi_server_json, json_text_reuses_one_generator)
{
    yajl_val v = json_parse("{\"a\":[1,\"x\",null]}", 18);
    cr_assert_not_null(v);
    for (int i = 0; i < 3; i++) {
        char *t = json_text(v);
        cr_assert_str_eq(t, "{\"a\":[1,\"x\",null]}");
        free(t);
    }
    json_free(v);
}

/* json_text of a string or number, generator-free where it can be, gives
 * exactly what yajl_gen gives, for every byte value and for number texts
 * yajl keeps as they came. */
static char *yajl_text(yajl_val v)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    const unsigned char *buf;
    size_t len;
    char *out;

    gen_tree(g, v);
    yajl_gen_get_buf(g, &buf, &len);
    out = strndup((const char *)buf, len);
    yajl_gen_free(g);
    return out;
}

Test(ngsi_server_json, json_text_of_scalars_is_yajl_gen_text)
{
    char text[32];
    static const char *const numbers[] = {
        "[0]", "[-1.50]", "[1e3]", "[12345678901234567890]", "[0.000001]"};

    for (int c = 1; c < 256; c++) {
        struct yajl_val_s sv = {.type = yajl_t_string};
        char str[4] = {'a', (char)c, 'z', '\0'};
        sv.u.string = str;
        char *a = json_text(&sv), *b = yajl_text(&sv);
        cr_assert_str_eq(a, b, "byte 0x%02x", c);
        free(a);
        free(b);
    }
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        yajl_val v = json_parse(numbers[i], strlen(numbers[i]));
        cr_assert_not_null(v);
        char *a = json_text(v->u.array.values[0]);
        char *b = yajl_text(v->u.array.values[0]);
        cr_assert_str_eq(a, b);
        snprintf(text, sizeof text, "%s", numbers[i] + 1);
        text[strlen(text) - 1] = '\0';
        cr_assert_str_eq(a, text, "a number is its text as received");
        free(a);
        free(b);
        json_free(v);
    }
}

Test(ngsi_server_json, finite_parse_refuses_overflowing_numbers)
{
    static const char *const bad[] = {"[1e400]", "{\"a\":{\"b\":-1e999}}",
                                      "[1e-400]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        yajl_val v = json_parse(bad[i], strlen(bad[i]));
        cr_assert_not_null(v, "%s parses", bad[i]);
        json_free(v);
        cr_assert_null(json_parse_finite(bad[i], strlen(bad[i])), "%s", bad[i]);
    }
    yajl_val v = json_parse_finite("[1e300,-2,0.5]", 14);
    cr_assert_not_null(v);
    json_free(v);
}

Test(ngsi_server_json, iso8601_format_matches_snprintf)
{
    static const int64_t ms[] = {
        0,
        1,
        999,
        -1,
        -1000,
        1767225600000,  /* 2026-01-01 */
        951782399999,   /* 2000-02-28T23:59:59.999 */
        951868800123,   /* 2000-03-01 */
        -2208988800000, /* 1900-01-01 */
        253402300799999 /* 9999-12-31T23:59:59.999 */,
        253402300800000 /* year 10000: the snprintf path */,
    };
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        char got[40], want[40];
        int64_t secs = ms[i] >= 0 ? ms[i] / 1000 : (ms[i] - 999) / 1000;
        int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
        int64_t rem = secs - days * 86400;
        int y;
        unsigned m, d;
        civil_from_days(days, &y, &m, &d);
        snprintf(want, sizeof want, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m,
                 d, (int)(rem / 3600), (int)(rem % 3600 / 60), (int)(rem % 60),
                 (int)(ms[i] - secs * 1000));
        iso8601_format(ms[i], got, sizeof got);
        cr_assert_str_eq(got, want, "ms %lld", (long long)ms[i]);
    }
    /* a round trip through the parser */
    int64_t t;
    cr_assert_eq(iso8601_parse("2026-03-20T13:50:00.5+01:00", DT_ORION, &t), 0);
    char out[40];
    iso8601_format(t, out, sizeof out);
    cr_assert_str_eq(out, "2026-03-20T12:50:00.500Z");
}
