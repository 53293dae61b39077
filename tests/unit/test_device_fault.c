/* spotsim's fault injection: the --fault syntax, draws at the asked
 * frequencies, determinism, corrupting faults exclusive; and the
 * command-line time and number arguments. */
#include <criterion/criterion.h>
#include <string.h>

#include "spot/err.h"
#include "spot/fault.h"
#include "spot/time_arg.h"

TestSuite(device_fault);

Test(device_fault, parse)
{
    struct fault_opts o = {.burst_size = FAULT_DEFAULT_BURST};
    char why[200];
    cr_assert_eq(fault_parse("malformed=0.01,wrong-type=0.02,wrong-topic=0.03,"
                             "range=0.04,duplicate=0.5,burst=0.001,"
                             "burst-size=7",
                             &o, why, sizeof why),
                 SPOT_OK, "%s", why);
    cr_assert_eq(o.p[FAULT_MALFORMED], 0.01);
    cr_assert_eq(o.p[FAULT_WRONG_TYPE], 0.02);
    cr_assert_eq(o.p[FAULT_WRONG_TOPIC], 0.03);
    cr_assert_eq(o.p[FAULT_RANGE], 0.04);
    cr_assert_eq(o.p[FAULT_DUPLICATE], 0.5);
    cr_assert_eq(o.p[FAULT_BURST], 0.001);
    cr_assert_eq(o.burst_size, 7);
    static const char *const bad[] = {
        "malformed",    "malformed=",     "malformed=x",
        "bogus=0.1",    "duplicate=1.5",  "range=-0.1",
        "burst-size=0", "burst-size=2.5", "malformed=0.6,range=0.6",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fault_opts b = {0};
        cr_assert_eq(fault_parse(bad[i], &b, why, sizeof why), SPOT_EINVAL,
                     "%s", bad[i]);
    }
    cr_assert_str_eq(fault_name(FAULT_WRONG_TOPIC), "wrong-topic");
}

Test(device_fault, draws_follow_the_probabilities)
{
    struct fault_opts o = {.p = {[FAULT_MALFORMED] = 0.1,
                                 [FAULT_WRONG_TYPE] = 0.05,
                                 [FAULT_RANGE] = 0.2,
                                 [FAULT_DUPLICATE] = 0.3,
                                 [FAULT_BURST] = 0.01}};
    long n[FAULT_COUNT + 1] = {0}, dup = 0, burst = 0;
    const long N = 200000;
    for (long k = 0; k < N; k++) {
        enum fault_kind f = fault_draw(&o, 9, (uint64_t)k);
        cr_assert_eq(fault_draw(&o, 9, (uint64_t)k), f, "deterministic");
        n[f]++;
        dup += fault_duplicate(&o, 9, (uint64_t)k);
        burst += fault_burst(&o, 9, (uint64_t)k);
    }
    cr_assert_eq(n[FAULT_WRONG_TOPIC], 0);
    cr_assert((double)n[FAULT_MALFORMED] / N > 0.095 &&
              (double)n[FAULT_MALFORMED] / N < 0.105);
    cr_assert((double)n[FAULT_WRONG_TYPE] / N > 0.045 &&
              (double)n[FAULT_WRONG_TYPE] / N < 0.055);
    cr_assert((double)n[FAULT_RANGE] / N > 0.19 &&
              (double)n[FAULT_RANGE] / N < 0.21);
    cr_assert((double)dup / N > 0.29 && (double)dup / N < 0.31);
    cr_assert((double)burst / N > 0.008 && (double)burst / N < 0.012);
    /* another seed, other messages */
    int differ = 0;
    for (long k = 0; k < 1000; k++)
        differ +=
            fault_draw(&o, 9, (uint64_t)k) != fault_draw(&o, 10, (uint64_t)k);
    cr_assert_gt(differ, 100);
    struct fault_opts none = {0};
    for (long k = 0; k < 1000; k++) {
        cr_assert_eq(fault_draw(&none, 1, (uint64_t)k), FAULT_NONE);
        cr_assert(!fault_duplicate(&none, 1, (uint64_t)k));
    }
}

Test(device_fault, time_and_number_arguments)
{
    int64_t t;
    cr_assert_eq(time_arg_parse("2026-01-01T00:00:00Z", 0, &t), SPOT_OK);
    cr_assert_eq(t, 1767225600);
    cr_assert_eq(time_arg_parse("2026-01-05", 0, &t), SPOT_OK);
    cr_assert_eq(t, 1767571200);
    cr_assert_eq(time_arg_parse("1970-01-01T00:00:01Z", 0, &t), SPOT_OK);
    cr_assert_eq(t, 1);
    cr_assert_eq(time_arg_parse("2024-02-29T12:34:56Z", 0, &t), SPOT_OK);
    cr_assert_eq(t, 1709210096);
    cr_assert_eq(time_arg_parse("now", 1234, &t), SPOT_OK);
    cr_assert_eq(t, 1234);
    cr_assert_eq(time_arg_parse("1700000000", 0, &t), SPOT_OK);
    cr_assert_eq(t, 1700000000);
    static const char *const bad[] = {"",
                                      "yesterday",
                                      "2026-13-01",
                                      "2026-01-01T25:00:00Z",
                                      "2026-01-01 00:00:00",
                                      "-5",
                                      "12x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(time_arg_parse(bad[i], 0, &t), SPOT_EINVAL, "%s", bad[i]);
    double x;
    cr_assert_eq(time_arg_number("0.5", &x), SPOT_OK);
    cr_assert_eq(x, 0.5);
    cr_assert_eq(time_arg_number("-1", &x), SPOT_EINVAL);
    cr_assert_eq(time_arg_number("inf", &x), SPOT_EINVAL);
    cr_assert_eq(time_arg_number("1e3x", &x), SPOT_EINVAL);
    long long v;
    cr_assert_eq(time_arg_long("42", 0, 100, &v), SPOT_OK);
    cr_assert_eq(v, 42);
    cr_assert_eq(time_arg_long("101", 0, 100, &v), SPOT_EINVAL);
    cr_assert_eq(time_arg_long("", 0, 100, &v), SPOT_EINVAL);
}
