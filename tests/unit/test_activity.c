/* The activity tables behind the status page (activity.h): bounds, eviction
 * of the least recently seen device, per-vertical rates over the last
 * minute, the ring of recent rejects, the JSON shape (valid UTF-8 whatever
 * the input), and concurrent writers with a reader (run under ASan). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "spot/err.h"
#include "activity.h"

#define T0 1700000000000000LL /* µs: 2023-11-14T22:13:20Z */
#define S  1000000LL

/* Renders the activity and parses it back (caller frees with
 * yajl_tree_free). */
static yajl_val render(struct activity *a, int64_t now_us)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    cr_assert_not_null(g);
    activity_to_json(a, g, now_us);
    const unsigned char *buf;
    size_t len;
    cr_assert_eq(yajl_gen_get_buf(g, &buf, &len), yajl_gen_status_ok);
    char *text = malloc(len + 1);
    cr_assert_not_null(text);
    memcpy(text, buf, len);
    text[len] = '\0';
    yajl_gen_free(g);
    char err[256];
    yajl_val v = yajl_tree_parse(text, err, sizeof err);
    cr_assert_not_null(v, "activity JSON does not parse: %s\n%s", err, text);
    free(text);
    return v;
}

static yajl_val at(yajl_val v, const char *a, const char *b, const char *c)
{
    const char *path[4] = {a, b, c, NULL};
    return yajl_tree_get(v, path, yajl_t_any);
}

static long long num(yajl_val v)
{
    cr_assert(v != NULL && YAJL_IS_NUMBER(v), "not a number");
    return YAJL_GET_INTEGER(v);
}

static double dbl(yajl_val v)
{
    cr_assert(v != NULL && YAJL_IS_NUMBER(v), "not a number");
    return YAJL_GET_DOUBLE(v);
}

static const char *str(yajl_val v)
{
    cr_assert(v != NULL && YAJL_IS_STRING(v), "not a string");
    return YAJL_GET_STRING(v);
}

static void seen(struct activity *a, const char *key, const char *dev,
                 enum spot_vertical v, int64_t t)
{
    activity_seen(a, key, strlen(key), dev, strlen(dev), v, t);
}

/* Index of device dev in the JSON device list, or -1. */
static int find_device(yajl_val root, const char *key, const char *dev)
{
    yajl_val list = at(root, "devices", NULL, NULL);
    cr_assert(YAJL_IS_ARRAY(list));
    for (size_t i = 0; i < list->u.array.len; i++) {
        yajl_val d = list->u.array.values[i];
        if (strcmp(str(at(d, "apikey", NULL, NULL)), key) == 0 &&
            strcmp(str(at(d, "device", NULL, NULL)), dev) == 0)
            return (int)i;
    }
    return -1;
}

Test(activity, empty_tables_have_the_full_shape)
{
    struct activity *a;
    cr_assert_eq(activity_new(&a), SPOT_OK);
    yajl_val r = render(a, T0);
    cr_assert(YAJL_IS_OBJECT(r));
    cr_assert_eq(at(r, "devices", NULL, NULL)->u.array.len, 0);
    cr_assert_eq(num(at(r, "devices_tracked", NULL, NULL)), 0);
    cr_assert_eq(num(at(r, "devices_capacity", NULL, NULL)), 1024);
    cr_assert_eq(num(at(r, "devices_evicted", NULL, NULL)), 0);
    cr_assert_eq(num(at(r, "rates", "window_s", NULL)), 60);
    static const char *const codes[] = {"aqo", "nlo", "wto", "cfo",
                                        "cfe", "dev", "dho", "generic"};
    for (size_t i = 0; i < 8; i++) {
        yajl_val v = at(r, "rates", "verticals", codes[i]);
        cr_assert_not_null(v, "no rate for %s", codes[i]);
        cr_assert_eq(num(at(v, "last_minute", NULL, NULL)), 0);
        cr_assert_eq(dbl(at(v, "per_second", NULL, NULL)), 0.0);
        cr_assert_eq(at(v, "series", NULL, NULL)->u.array.len, 60);
    }
    cr_assert_eq(at(r, "rejects", NULL, NULL)->u.array.len, 0);
    cr_assert_eq(num(at(r, "rejects_total", NULL, NULL)), 0);
    cr_assert_eq(num(at(r, "rejects_capacity", NULL, NULL)), 50);
    yajl_tree_free(r);
    activity_free(a);
}

Test(activity, null_is_a_no_op)
{
    activity_seen(NULL, "k", 1, "d", 1, SPOT_V_AQO, T0);
    activity_rejected(NULL, "t", 1, REJECT_JSON, "x", T0);
    activity_free(NULL);
    yajl_val r = render(NULL, T0);
    cr_assert(YAJL_IS_OBJECT(r));
    yajl_tree_free(r);
}

Test(activity, a_device_collects_its_verticals_and_messages)
{
    struct activity *a;
    cr_assert_eq(activity_new(&a), SPOT_OK);
    seen(a, "key1", "SmartSpot_AQ_1", SPOT_V_AQO, T0);
    seen(a, "key1", "SmartSpot_AQ_1", SPOT_V_NLO, T0 + S);
    seen(a, "key1", "SmartSpot_AQ_1", SPOT_V_AQO, T0 + 2 * S);
    /* same device id under another apikey: another device */
    seen(a, "key2", "SmartSpot_AQ_1", SPOT_V_GENERIC, T0 + 3 * S);
    /* ("ab","c") and ("a","bc") are different keys */
    seen(a, "ab", "c", SPOT_V_DEV, T0 + 3 * S);
    seen(a, "a", "bc", SPOT_V_DEV, T0 + 3 * S);

    yajl_val r = render(a, T0 + 5 * S + 500000);
    cr_assert_eq(num(at(r, "devices_tracked", NULL, NULL)), 4);
    int i = find_device(r, "key1", "SmartSpot_AQ_1");
    cr_assert_geq(i, 0);
    yajl_val d = at(r, "devices", NULL, NULL)->u.array.values[i];
    yajl_val vs = at(d, "verticals", NULL, NULL);
    cr_assert_eq(vs->u.array.len, 2);
    cr_assert_str_eq(str(vs->u.array.values[0]), "aqo");
    cr_assert_str_eq(str(vs->u.array.values[1]), "nlo");
    cr_assert_str_eq(str(at(d, "last_vertical", NULL, NULL)), "aqo");
    cr_assert_eq(num(at(d, "messages", NULL, NULL)), 3);
    cr_assert_str_eq(str(at(d, "first_seen", NULL, NULL)),
                     "2023-11-14T22:13:20.000000Z");
    cr_assert_str_eq(str(at(d, "last_seen", NULL, NULL)),
                     "2023-11-14T22:13:22.000000Z");
    cr_assert_float_eq(dbl(at(d, "age_s", NULL, NULL)), 3.5, 1e-9);
    int j = find_device(r, "key2", "SmartSpot_AQ_1");
    cr_assert_geq(j, 0);
    d = at(r, "devices", NULL, NULL)->u.array.values[j];
    cr_assert_str_eq(str(at(d, "verticals", NULL, NULL)->u.array.values[0]),
                     "generic");
    cr_assert_geq(find_device(r, "ab", "c"), 0);
    cr_assert_geq(find_device(r, "a", "bc"), 0);
    /* most recently seen first */
    cr_assert_lt(j, i);
    yajl_tree_free(r);
    activity_free(a);
}

Test(activity, the_device_table_is_bounded_and_evicts_the_least_recent)
{
    struct activity *a;
    cr_assert_eq(activity_new(&a), SPOT_OK);
    char dev[32];
    for (int i = 0; i < 1024; i++) {
        snprintf(dev, sizeof dev, "dev%04d", i);
        seen(a, "k", dev, SPOT_V_AQO, T0 + i);
    }
    /* dev0000 is seen again: dev0001 is now the least recent */
    seen(a, "k", "dev0000", SPOT_V_WTO, T0 + 2000);
    for (int i = 1024; i < 1024 + 10; i++) {
        snprintf(dev, sizeof dev, "dev%04d", i);
        seen(a, "k", dev, SPOT_V_AQO, T0 + 3000 + i);
    }
    yajl_val r = render(a, T0 + 10 * S);
    cr_assert_eq(num(at(r, "devices_tracked", NULL, NULL)), 1024);
    cr_assert_eq(at(r, "devices", NULL, NULL)->u.array.len, 1024);
    cr_assert_eq(num(at(r, "devices_evicted", NULL, NULL)), 10);
    cr_assert_geq(find_device(r, "k", "dev0000"), 0);
    for (int i = 1; i <= 10; i++) {
        snprintf(dev, sizeof dev, "dev%04d", i);
        cr_assert_eq(find_device(r, "k", dev), -1, "%s not evicted", dev);
    }
    cr_assert_geq(find_device(r, "k", "dev0011"), 0);
    cr_assert_eq(find_device(r, "k", "dev1033"), 0, "newest first");
    yajl_tree_free(r);
    activity_free(a);
}

/* Many evictions through the hash index: every tracked device is still
 * found (re-seeing it never adds a duplicate), and the count stays exact. */
Test(activity, churn_keeps_the_index_consistent)
{
    struct activity *a;
    cr_assert_eq(activity_new(&a), SPOT_OK);
    unsigned x = 12345;
    char dev[32];
    for (int i = 0; i < 200000; i++) {
        x = x * 1103515245u + 12345u;
        snprintf(dev, sizeof dev, "d%u", (x >> 8) % 1500);
        seen(a, "churn", dev, (enum spot_vertical)(i % 8), T0 + i);
    }
    yajl_val r = render(a, T0 + 300 * S);
    yajl_val list = at(r, "devices", NULL, NULL);
    cr_assert_eq(list->u.array.len, 1024);
    uint64_t total = 0;
    for (size_t i = 0; i < list->u.array.len; i++) {
        const char *di = str(at(list->u.array.values[i], "device", NULL, NULL));
        for (size_t j = i + 1; j < list->u.array.len; j++)
            cr_assert_str_neq(
                di, str(at(list->u.array.values[j], "device", NULL, NULL)),
                "device %s twice", di);
        total +=
            (uint64_t)num(at(list->u.array.values[i], "messages", NULL, NULL));
    }
    uint64_t evicted = (uint64_t)num(at(r, "devices_evicted", NULL, NULL));
    cr_assert_gt(evicted, 0);
    cr_assert_leq(total, 200000);
    yajl_tree_free(r);

    /* The last 1024 distinct devices seen are exactly the ones tracked:
     * seeing a tracked one again must not evict anything. */
    r = render(a, T0 + 300 * S);
    list = at(r, "devices", NULL, NULL);
    for (size_t i = 0; i < list->u.array.len; i++) {
        const char *di = str(at(list->u.array.values[i], "device", NULL, NULL));
        activity_seen(a, "churn", 5, di, strlen(di), SPOT_V_AQO, T0 + 400 * S);
    }
    yajl_val r2 = render(a, T0 + 400 * S);
    cr_assert_eq(num(at(r2, "devices_evicted", NULL, NULL)),
                 (long long)evicted);
    cr_assert_eq(num(at(r2, "devices_tracked", NULL, NULL)), 1024);
    yajl_tree_free(r2);
    yajl_tree_free(r);
    activity_free(a);
}

Test(activity, rates_per_vertical_over_the_last_minute)
{
    struct activity *a;
    cr_assert_eq(activity_new(&a), SPOT_OK);
    /* 120 s of aqo at 2/s, nlo at 1/s during the last 30 s only */
    for (int s = 0; s < 120; s++) {
        seen(a, "k", "a", SPOT_V_AQO, T0 + s * S);
        seen(a, "k", "a", SPOT_V_AQO, T0 + s * S + 500000);
        if (s >= 90)
            seen(a, "k", "n", SPOT_V_NLO, T0 + s * S + 100);
    }
    /* now: the last bucket is second 119 */
    yajl_val r = render(a, T0 + 119 * S + 900000);
    cr_assert_eq(num(at(r, "rates", "window_s", NULL)), 60);
    yajl_val aqo = at(r, "rates", "verticals", "aqo");
    cr_assert_eq(num(at(aqo, "last_minute", NULL, NULL)), 120);
    cr_assert_float_eq(dbl(at(aqo, "per_second", NULL, NULL)), 2.0, 1e-9);
    yajl_val series = at(aqo, "series", NULL, NULL);
    cr_assert_eq(series->u.array.len, 60);
    for (size_t k = 0; k < 60; k++)
        cr_assert_eq(num(series->u.array.values[k]), 2);
    yajl_val nlo = at(r, "rates", "verticals", "nlo");
    cr_assert_eq(num(at(nlo, "last_minute", NULL, NULL)), 30);
    cr_assert_float_eq(dbl(at(nlo, "per_second", NULL, NULL)), 0.5, 1e-9);
    series = at(nlo, "series", NULL, NULL);
    cr_assert_eq(num(series->u.array.values[29]), 0);
    cr_assert_eq(num(series->u.array.values[30]), 1);
    cr_assert_eq(num(series->u.array.values[59]), 1);
    cr_assert_eq(num(at(r, "rates", "verticals", "wto")->u.object.values[0]),
                 0);
    yajl_tree_free(r);

    /* 30 s later the oldest half of the window has gone */
    r = render(a, T0 + 149 * S);
    aqo = at(r, "rates", "verticals", "aqo");
    cr_assert_eq(num(at(aqo, "last_minute", NULL, NULL)), 60);
    /* two minutes after the last message: nothing */
    yajl_tree_free(r);
    r = render(a, T0 + 240 * S);
    cr_assert_eq(num(at(r, "rates", "verticals", "aqo")->u.object.values[0]),
                 0);
    yajl_tree_free(r);
    activity_free(a);
}

Test(activity, the_rate_window_starts_at_the_first_message)
{
    struct activity *a;
    cr_assert_eq(activity_new(&a), SPOT_OK);
    for (int i = 0; i < 10; i++)
        seen(a, "k", "d", SPOT_V_CFO, T0 + i * 100000); /* 10 in 1 s */
    yajl_val r = render(a, T0 + 4 * S + 1);
    cr_assert_eq(num(at(r, "rates", "window_s", NULL)), 5);
    cr_assert_float_eq(
        dbl(at(at(r, "rates", "verticals", "cfo"), "per_second", NULL, NULL)),
        2.0, 1e-9);
    yajl_tree_free(r);
    activity_free(a);
}

Test(activity, rejects_keep_the_last_fifty_newest_first)
{
    struct activity *a;
    cr_assert_eq(activity_new(&a), SPOT_OK);
    for (int i = 0; i < 60; i++) {
        char topic[64], detail[64];
        snprintf(topic, sizeof topic, "/k%d/d_AQO/attrs", i);
        snprintf(detail, sizeof detail, "detail %d", i);
        activity_rejected(a, topic, strlen(topic),
                          i % 2 ? REJECT_JSON : REJECT_SCHEMA, detail,
                          T0 + i * S);
    }
    yajl_val r = render(a, T0 + 60 * S);
    cr_assert_eq(num(at(r, "rejects_total", NULL, NULL)), 60);
    yajl_val list = at(r, "rejects", NULL, NULL);
    cr_assert_eq(list->u.array.len, 50);
    yajl_val first = list->u.array.values[0];
    cr_assert_str_eq(str(at(first, "topic", NULL, NULL)), "/k59/d_AQO/attrs");
    cr_assert_str_eq(str(at(first, "detail", NULL, NULL)), "detail 59");
    cr_assert_str_eq(str(at(first, "reason", NULL, NULL)), "json");
    cr_assert_str_eq(str(at(first, "time", NULL, NULL)),
                     "2023-11-14T22:14:19.000000Z");
    cr_assert_float_eq(dbl(at(first, "age_s", NULL, NULL)), 1.0, 1e-9);
    yajl_val last = list->u.array.values[49];
    cr_assert_str_eq(str(at(last, "topic", NULL, NULL)), "/k10/d_AQO/attrs");
    cr_assert_str_eq(str(at(last, "reason", NULL, NULL)), "schema");
    yajl_tree_free(r);
    activity_free(a);
}

Test(activity, hostile_text_comes_out_as_valid_json_strings)
{
    struct activity *a;
    cr_assert_eq(activity_new(&a), SPOT_OK);
    /* invalid UTF-8, controls, quotes, markup, a cut multi-byte sequence */
    const char topic[] = "/<img src=x onerror=alert(1)>/\"\\\x01\xff\xc3/attrs";
    activity_rejected(a, topic, sizeof topic - 1, REJECT_TOPIC,
                      "bad \xe2\x82 seq \xed\xa0\x80 </script>", T0);
    char big[2000];
    memset(big, 'x', sizeof big);
    memcpy(big + 254, "\xc3\xa9", 2); /* the last two bytes kept: an é */
    activity_rejected(a, big, sizeof big, REJECT_TOO_LARGE, NULL, T0);
    /* over-long ids are cut at SPOT_MAX_ID_LEN */
    activity_seen(a, "k\x80", 2, big, sizeof big, SPOT_V_AQO, T0);
    activity_rejected(a, "t", 1, (enum reject_reason)99, "weird reason", T0);

    yajl_val r = render(a, T0);
    yajl_val list = at(r, "rejects", NULL, NULL);
    cr_assert_eq(list->u.array.len, 3);
    cr_assert_str_eq(str(at(list->u.array.values[0], "reason", NULL, NULL)),
                     "");
    yajl_val big_rej = list->u.array.values[1];
    const char *t = str(at(big_rej, "topic", NULL, NULL));
    cr_assert_eq(strlen(t), 256 + 3, "kept 256 bytes and an ellipsis");
    cr_assert_str_eq(t + 256, "\xe2\x80\xa6");
    cr_assert_str_eq(str(at(big_rej, "detail", NULL, NULL)), "");
    yajl_val h = list->u.array.values[2];
    cr_assert_str_eq(str(at(h, "topic", NULL, NULL)),
                     "/<img src=x onerror=alert(1)>/\"\\??\?/attrs");
    cr_assert_str_eq(str(at(h, "detail", NULL, NULL)),
                     "bad ?? seq ??? </script>");
    cr_assert_str_eq(str(at(h, "reason", NULL, NULL)), "topic");
    yajl_val d = at(r, "devices", NULL, NULL)->u.array.values[0];
    cr_assert_str_eq(str(at(d, "apikey", NULL, NULL)), "k?");
    cr_assert_eq(strlen(str(at(d, "device", NULL, NULL))), 256);
    yajl_tree_free(r);
    activity_free(a);
}

/* --- concurrency: writers on several threads, a reader rendering -------- */

struct writer_arg {
    struct activity *a;
    int id;
};

#define WRITES 20000

static void *writer(void *p)
{
    struct writer_arg *w = p;
    char dev[32];
    for (int i = 0; i < WRITES; i++) {
        snprintf(dev, sizeof dev, "w%d-d%d", w->id, i % 700);
        activity_seen(w->a, "conc", 4, dev, strlen(dev),
                      (enum spot_vertical)(i % 8), T0 + i);
        if (i % 50 == 0)
            activity_rejected(w->a, dev, strlen(dev), REJECT_JSON, dev, T0 + i);
    }
    return NULL;
}

static void *reader(void *p)
{
    struct activity *a = p;
    for (int i = 0; i < 40; i++) {
        yajl_val r = render(a, T0 + WRITES);
        yajl_tree_free(r);
    }
    return NULL;
}

Test(activity, concurrent_writers_and_a_reader)
{
    struct activity *a;
    cr_assert_eq(activity_new(&a), SPOT_OK);
    pthread_t w[4], rd;
    struct writer_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct writer_arg){a, i};
        cr_assert_eq(pthread_create(&w[i], NULL, writer, &args[i]), 0);
    }
    cr_assert_eq(pthread_create(&rd, NULL, reader, a), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(w[i], NULL);
    pthread_join(rd, NULL);

    yajl_val r = render(a, T0 + WRITES);
    cr_assert_eq(num(at(r, "rejects_total", NULL, NULL)), 4 * WRITES / 50);
    cr_assert_eq(num(at(r, "devices_tracked", NULL, NULL)), 1024);
    cr_assert_geq(num(at(r, "devices_evicted", NULL, NULL)), 4 * 700 - 1024);
    /* every message is in the rate buckets (all within one second) */
    long long sum = 0;
    yajl_val vs = at(r, "rates", "verticals", NULL);
    for (size_t i = 0; i < vs->u.object.len; i++)
        sum += num(at(vs->u.object.values[i], "last_minute", NULL, NULL));
    cr_assert_eq(sum, 4 * WRITES);
    yajl_tree_free(r);
    activity_free(a);
}
