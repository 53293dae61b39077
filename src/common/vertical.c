/*
 * The vertical table of the wire contract §2: enum <-> three-letter code.
 * Constant data and pure functions: any thread may call them.
 */
#include <stddef.h>

#include "spot/err.h"
#include "spot/vertical.h"

/* In enum order; the wire spells them in either case. */
static const char *const codes[SPOT_V_COUNT] = {
    [SPOT_V_AQO] = "aqo", [SPOT_V_NLO] = "nlo", [SPOT_V_WTO] = "wto",
    [SPOT_V_CFO] = "cfo", [SPOT_V_CFE] = "cfe", [SPOT_V_DEV] = "dev",
    [SPOT_V_DHO] = "dho",
};

#define CODE_LEN 3

const char *vertical_code(enum spot_vertical v)
{
    if ((unsigned)v < SPOT_V_COUNT)
        return codes[v];
    return "generic";
}

/* ASCII only: the codes are ASCII and locale must not matter. */
static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

int vertical_from_code(const char *s, size_t len, enum spot_vertical *out)
{
    if (s == NULL || len != CODE_LEN)
        return SPOT_ENOTFOUND;
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const char *c = codes[v];
        size_t i = 0;
        while (i < CODE_LEN &&
               lower((unsigned char)s[i]) == (unsigned char)c[i])
            i++;
        if (i == CODE_LEN) {
            if (out != NULL)
                *out = (enum spot_vertical)v;
            return SPOT_OK;
        }
    }
    return SPOT_ENOTFOUND;
}
