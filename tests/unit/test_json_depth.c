/* The nesting pre-check done before yajl_tree_parse (spot/json_depth.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "spot/json_depth.h"

static int deep(const char *s, unsigned max)
{
    return json_depth_exceeds(s, strlen(s), max);
}

Test(json_depth, counts_arrays_and_objects)
{
    cr_assert(!deep("", 0));
    cr_assert(!deep("1", 0));
    cr_assert(deep("[]", 0));
    cr_assert(!deep("[]", 1));
    cr_assert(!deep("[[]][[]]", 2)); /* siblings do not add up */
    cr_assert(deep("[[[]]]", 2));
    cr_assert(deep("{\"a\":{\"b\":[1]}}", 2));
    cr_assert(!deep("{\"a\":{\"b\":[1]}}", 3));
}

Test(json_depth, strings_do_not_count)
{
    cr_assert(!deep("[\"[[[[{{{{\"]", 1));
    cr_assert(!deep("[\"\\\"[[[[\"]", 1)); /* escaped quote stays inside */
    cr_assert(!deep("[\"\\\\\"]", 1));     /* an escaped backslash ends */
    cr_assert(deep("[\"\\\\\",[[]]]", 2));
}

Test(json_depth, invalid_text_is_fine)
{
    cr_assert(!deep("]]]]]][", 1)); /* closers never go below zero */
    cr_assert(deep("[[[", 2));
    cr_assert(!deep("\"unterminated [[[[", 1));
}
