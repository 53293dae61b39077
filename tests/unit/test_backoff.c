/* Back-off: delays stay within [min/2, max], grow, and reset. */
#include <criterion/criterion.h>

#include "spot/backoff.h"
#include "spot/limits.h"

Test(backoff, grows_to_the_cap_with_jitter)
{
    struct backoff b;
    backoff_init(&b);
    unsigned prev_cap = 0;
    for (int i = 0; i < 40; i++) {
        unsigned d = backoff_next(&b);
        cr_assert_geq(d, b.current_ms / 2);
        cr_assert_leq(d, b.current_ms);
        cr_assert_leq(b.current_ms, SPOT_BACKOFF_MAX_MS);
        cr_assert_geq(b.current_ms, prev_cap);
        prev_cap = b.current_ms;
    }
    cr_assert_eq(b.current_ms, SPOT_BACKOFF_MAX_MS);
    backoff_reset(&b);
    backoff_next(&b);
    cr_assert_eq(b.current_ms, SPOT_BACKOFF_MIN_MS);
}

Test(backoff, jitter_varies)
{
    struct backoff b;
    backoff_init(&b);
    for (int i = 0; i < 20; i++)
        backoff_next(&b);
    unsigned first = backoff_next(&b);
    int differs = 0;
    for (int i = 0; i < 50; i++)
        differs |= backoff_next(&b) != first;
    cr_assert(differs, "50 delays at the cap were all %u ms", first);
}
