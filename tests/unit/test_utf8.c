/* Strict UTF-8 (spot/utf8.h): accepted and refused forms at every
 * boundary of RFC 3629, and cutting text at a character boundary. */
#include <criterion/criterion.h>
#include <string.h>

#include "spot/utf8.h"

static int ok(const char *s)
{
    return utf8_is_valid(s, strlen(s));
}

Test(utf8, accepts_every_range)
{
    cr_assert(ok(""));
    cr_assert(ok("plain ASCII \x7f"));
    cr_assert(ok("\xc2\x80"));                 /* U+0080 */
    cr_assert(ok("\xdf\xbf"));                 /* U+07FF */
    cr_assert(ok("\xe0\xa0\x80"));             /* U+0800 */
    cr_assert(ok("\xed\x9f\xbf"));             /* U+D7FF */
    cr_assert(ok("\xee\x80\x80"));             /* U+E000 */
    cr_assert(ok("\xef\xbf\xbf"));             /* U+FFFF */
    cr_assert(ok("\xf0\x90\x80\x80"));         /* U+10000 */
    cr_assert(ok("\xf4\x8f\xbf\xbf"));         /* U+10FFFF */
    cr_assert(ok("caf\xc3\xa9 \xe2\x82\xac")); /* cafe-acute euro */
    /* an embedded NUL is valid UTF-8 (callers refuse it separately) */
    cr_assert(utf8_is_valid("a\0b", 3));
}

Test(utf8, refuses_overlong_surrogates_and_beyond)
{
    cr_assert(!ok("\xc0\x80"));
    cr_assert(!ok("\xc1\xbf"));
    cr_assert(!ok("\xe0\x9f\xbf"));
    cr_assert(!ok("\xf0\x8f\xbf\xbf"));
    cr_assert(!ok("\xed\xa0\x80")); /* U+D800 */
    cr_assert(!ok("\xed\xbf\xbf")); /* U+DFFF */
    cr_assert(!ok("\xf4\x90\x80\x80"));
    cr_assert(!ok("\xf5\x80\x80\x80"));
    cr_assert(!ok("\xff"));
    cr_assert(!ok("\x80"));         /* lone continuation */
    cr_assert(!ok("\xc3"));         /* truncated */
    cr_assert(!ok("\xe2\x82"));     /* truncated */
    cr_assert(!ok("\xe2\x28\xa1")); /* bad continuation */
    cr_assert_eq(utf8_valid_prefix("ab\xc3\xa9\xff", 5), 4);
}

Test(utf8, cut_keeps_whole_characters)
{
    const char *s = "ab\xc3\xa9\xe2\x82\xac"; /* a b e-acute euro: 7 bytes */
    cr_assert_eq(utf8_cut(s, 7, 10), 7);
    cr_assert_eq(utf8_cut(s, 7, 7), 7);
    cr_assert_eq(utf8_cut(s, 7, 6), 4); /* inside the euro sign */
    cr_assert_eq(utf8_cut(s, 7, 5), 4);
    cr_assert_eq(utf8_cut(s, 7, 4), 4);
    cr_assert_eq(utf8_cut(s, 7, 3), 2); /* inside the e-acute */
    cr_assert_eq(utf8_cut(s, 7, 0), 0);
}
