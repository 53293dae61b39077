/*
 * Unit tests of src/common/vertical.c and src/common/err.c: the vertical
 * codes (wire contract §2, case-insensitive, "DH0" refused) and
 * spot_strerror.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "spot/err.h"
#include "spot/vertical.h"

Test(vertical, codes_in_enum_order)
{
    static const char *const want[] = {"aqo", "nlo", "wto", "cfo",
                                       "cfe", "dev", "dho"};
    for (int v = 0; v < SPOT_V_COUNT; v++)
        cr_expect_str_eq(vertical_code((enum spot_vertical)v), want[v]);
    cr_expect_str_eq(vertical_code(SPOT_V_GENERIC), "generic");
    cr_expect_str_eq(vertical_code((enum spot_vertical)99), "generic");
}

Test(vertical, round_trip)
{
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        enum spot_vertical got = SPOT_V_GENERIC;
        const char *code = vertical_code((enum spot_vertical)v);
        cr_expect_eq(vertical_from_code(code, 3, &got), SPOT_OK);
        cr_expect_eq(got, (enum spot_vertical)v);
    }
}

Test(vertical, case_insensitive)
{
    static const char *const spellings[] = {"aqo", "AQO", "aQo", "Aqo", "aqO"};
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        enum spot_vertical got = SPOT_V_GENERIC;
        cr_expect_eq(vertical_from_code(spellings[i], 3, &got), SPOT_OK, "%s",
                     spellings[i]);
        cr_expect_eq(got, SPOT_V_AQO);
    }
    enum spot_vertical got = SPOT_V_GENERIC;
    cr_expect_eq(vertical_from_code("DhO", 3, &got), SPOT_OK);
    cr_expect_eq(got, SPOT_V_DHO);
}

Test(vertical, rejects)
{
    enum spot_vertical got = SPOT_V_AQO;
    /* the note's typo (digit zero) is not a code */
    cr_expect_eq(vertical_from_code("DH0", 3, &got), SPOT_ENOTFOUND);
    cr_expect_eq(vertical_from_code("dh0", 3, &got), SPOT_ENOTFOUND);
    cr_expect_eq(vertical_from_code("generic", 7, &got), SPOT_ENOTFOUND);
    cr_expect_eq(vertical_from_code("aq", 2, &got), SPOT_ENOTFOUND);
    cr_expect_eq(vertical_from_code("aqoo", 4, &got), SPOT_ENOTFOUND);
    cr_expect_eq(vertical_from_code("", 0, &got), SPOT_ENOTFOUND);
    cr_expect_eq(vertical_from_code(NULL, 3, &got), SPOT_ENOTFOUND);
    cr_expect_eq(vertical_from_code("aq\0", 3, &got), SPOT_ENOTFOUND);
    cr_expect_eq(vertical_from_code("\xc1qo", 3, &got), SPOT_ENOTFOUND);
    cr_expect_eq(got, SPOT_V_AQO, "*out untouched on failure");
    /* only len bytes count: "aqox" with len 3 is aqo */
    cr_expect_eq(vertical_from_code("nlox", 3, &got), SPOT_OK);
    cr_expect_eq(got, SPOT_V_NLO);
}

Test(err, strerror_never_null)
{
    for (int e = -5; e <= SPOT_EPEER + 5; e++) {
        const char *s = spot_strerror(e);
        cr_assert_not_null(s);
        cr_expect_gt(strlen(s), 0);
    }
    cr_expect_str_eq(spot_strerror(SPOT_OK), "success");
    cr_expect_str_eq(spot_strerror(-1), "unknown error");
    /* every defined code has its own text */
    for (int a = SPOT_OK; a <= SPOT_EPEER; a++) {
        cr_expect_str_neq(spot_strerror(a), "unknown error");
        for (int b = a + 1; b <= SPOT_EPEER; b++)
            cr_expect_str_neq(spot_strerror(a), spot_strerror(b));
    }
}
