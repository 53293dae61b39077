/* Topic grammar (wire contract §2 and its Decisions), including hostile
 * topics. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "spot/err.h"
#include "spot/topic.h"

static int parse(const char *t, struct topic_parts *p)
{
    char why[160];
    return topic_parse(t, strlen(t), p, why, sizeof why);
}

static void expect_slice(const char *s, size_t n, const char *want)
{
    cr_assert_eq(n, strlen(want), "length %zu, want %s", n, want);
    cr_assert(memcmp(s, want, n) == 0, "got %.*s want %s", (int)n, s, want);
}

Test(topic, every_vertical_of_the_note)
{
    static const char *const codes[] = {"aqo", "nlo", "wto", "cfo",
                                        "cfe", "dev", "dho"};
    static const char *const upper[] = {"AQO", "NLO", "WTO", "CFO",
                                        "CFE", "DEV", "DHO"};
    for (int i = 0; i < 7; i++) {
        char t[200];
        struct topic_parts p;
        snprintf(t, sizeof t,
                 "/JRI9jTbEKJQS29y3bc8BC6%s/SmartSpot_AQ_1_%s/attrs", codes[i],
                 upper[i]);
        cr_assert_eq(parse(t, &p), SPOT_OK, "%s", t);
        cr_assert_eq((int)p.vertical, i);
        expect_slice(p.apikey, p.apikey_len, "JRI9jTbEKJQS29y3bc8BC6");
        expect_slice(p.device, p.device_len, "SmartSpot_AQ_1");
        char full[40];
        snprintf(full, sizeof full, "SmartSpot_AQ_1_%s", upper[i]);
        expect_slice(p.full_device, p.full_device_len, full);
    }
}

Test(topic, code_comparison_ignores_case)
{
    struct topic_parts p;
    cr_assert_eq(parse("/keyaQo/dev1_AQO/attrs", &p), SPOT_OK);
    cr_assert_eq(p.vertical, SPOT_V_AQO);
    cr_assert_eq(parse("/keyDHO/dev1_dho/attrs", &p), SPOT_OK);
    cr_assert_eq(p.vertical, SPOT_V_DHO);
    expect_slice(p.apikey, p.apikey_len, "key");
}

Test(topic, apikey_and_device_stay_case_sensitive)
{
    struct topic_parts p;
    cr_assert_eq(parse("/AbCaqo/DeV_AQO/attrs", &p), SPOT_OK);
    expect_slice(p.apikey, p.apikey_len, "AbC");
    expect_slice(p.device, p.device_len, "DeV");
}

Test(topic, mismatched_codes_are_an_error_not_a_guess)
{
    struct topic_parts p;
    cr_assert_eq(parse("/X_aqo/Y_NLO/attrs", &p), SPOT_EINVAL);
    cr_assert_eq(parse("/keynlo/dev_AQO/attrs", &p), SPOT_EINVAL);
    /* device names a vertical, apikey level does not */
    cr_assert_eq(parse("/key/dev_AQO/attrs", &p), SPOT_EINVAL);
}

Test(topic, dh0_typo_is_not_a_vertical)
{
    struct topic_parts p;
    /* DH0 is no code: the topic is a generic one, with the full levels */
    cr_assert_eq(parse("/keydh0/dev_DH0/attrs", &p), SPOT_OK);
    cr_assert_eq(p.vertical, SPOT_V_GENERIC);
    expect_slice(p.apikey, p.apikey_len, "keydh0");
    expect_slice(p.device, p.device_len, "dev_DH0");
    cr_assert_eq(parse("/keydho/dev_DH0/attrs", &p), SPOT_OK);
    cr_assert_eq(p.vertical, SPOT_V_GENERIC);
}

Test(topic, generic_device)
{
    struct topic_parts p;
    cr_assert_eq(parse("/myapikey/sensor-7/attrs", &p), SPOT_OK);
    cr_assert_eq(p.vertical, SPOT_V_GENERIC);
    expect_slice(p.apikey, p.apikey_len, "myapikey");
    expect_slice(p.device, p.device_len, "sensor-7");
    expect_slice(p.full_device, p.full_device_len, "sensor-7");
}

Test(topic, empty_bases_are_errors)
{
    struct topic_parts p;
    cr_assert_eq(parse("/aqo/dev_AQO/attrs", &p), SPOT_EINVAL);
    cr_assert_eq(parse("//dev/attrs", &p), SPOT_EINVAL);
    cr_assert_eq(parse("/key//attrs", &p), SPOT_EINVAL);
}

Test(topic, wrong_number_of_levels)
{
    static const char *const bad[] = {
        "/a/b/c/attrs", "/a/attrs", "a/b/attrs", "/a/b/attrs/", "/a/b/attr",
        "/a/b/ATTRS",   "",         "/",         "/attrs",      "///attrs",
        "/a/b/attrs/x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct topic_parts p;
        cr_assert_eq(parse(bad[i], &p), SPOT_EINVAL, "accepted \"%s\"", bad[i]);
    }
}

Test(topic, wildcards_and_forbidden_characters)
{
    static const char *const bad[] = {
        "/+/+/attrs",           "/keyaqo/#/attrs",       "/key aqo/d_AQO/attrs",
        "/key<aqo/d_AQO/attrs", "/keyaqo/d'x_AQO/attrs", "/k=aqo/d_AQO/attrs",
        "/k;aqo/d_AQO/attrs",   "/k(aqo/d_AQO/attrs",    "/k)aqo/d_AQO/attrs",
        "/k&aqo/d_AQO/attrs",   "/k?aqo/d_AQO/attrs",    "/k%aqo/d_AQO/attrs",
        "/k\"aqo/d_AQO/attrs",  "/k>aqo/d_AQO/attrs",    "/k\taqo/d_AQO/attrs",
        "/k\xc3\xa9/d/attrs",   "/k\x7f/d/attrs",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct topic_parts p;
        cr_assert_eq(parse(bad[i], &p), SPOT_EINVAL, "accepted \"%s\"", bad[i]);
    }
}

Test(topic, embedded_nul_is_rejected)
{
    struct topic_parts p;
    const char t[] = "/keyaqo/d\0x_AQO/attrs";
    cr_assert_eq(topic_parse(t, sizeof t - 1, &p, NULL, 0), SPOT_EINVAL);
}

Test(topic, id_length_limits)
{
    char t[700];
    char key[300];
    memset(key, 'k', 256);
    key[256] = '\0';
    struct topic_parts p;
    snprintf(t, sizeof t, "/%saqo/d_AQO/attrs", key);
    cr_assert_eq(parse(t, &p), SPOT_OK);
    key[256] = 'k';
    key[257] = '\0';
    snprintf(t, sizeof t, "/%saqo/d_AQO/attrs", key);
    cr_assert_eq(parse(t, &p), SPOT_EINVAL);
}

Test(topic, huge_topic_is_rejected)
{
    static char t[100000];
    memset(t, 'a', sizeof t - 1);
    t[0] = '/';
    struct topic_parts p;
    cr_assert_eq(parse(t, &p), SPOT_EINVAL);
}

Test(topic, reason_is_written)
{
    struct topic_parts p;
    char why[160] = "";
    cr_assert_eq(topic_parse("/X_aqo/Y_NLO/attrs", 18, &p, why, sizeof why),
                 SPOT_EINVAL);
    cr_assert(strstr(why, "disagree") != NULL, "why: %s", why);
}

Test(topic, compose_round_trips)
{
    char buf[128];
    for (int v = 0; v <= SPOT_V_GENERIC; v++) {
        cr_assert_eq(topic_compose(buf, sizeof buf, "Key1", "Dev_9",
                                   (enum spot_vertical)v),
                     SPOT_OK);
        struct topic_parts p;
        cr_assert_eq(parse(buf, &p), SPOT_OK, "%s", buf);
        cr_assert_eq((int)p.vertical, v);
        expect_slice(p.apikey, p.apikey_len, "Key1");
        expect_slice(p.device, p.device_len, "Dev_9");
    }
    cr_assert_eq(topic_compose(buf, sizeof buf, "/JRI9jTbEKJQS29y3bc8BC6" + 1,
                               "SmartSpot_AQ_1", SPOT_V_AQO),
                 SPOT_OK);
    cr_assert_str_eq(buf,
                     "/JRI9jTbEKJQS29y3bc8BC6aqo/SmartSpot_AQ_1_AQO/attrs");
    cr_assert_eq(topic_compose(buf, 10, "Key1", "Dev", SPOT_V_AQO),
                 SPOT_ETOOBIG);
}
