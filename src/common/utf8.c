/*
 * Strict UTF-8 checks (API: spot/utf8.h). Pure functions: any thread.
 */
#include <stdint.h>

#include "spot/utf8.h"

size_t utf8_valid_prefix(const void *s, size_t n)
{
    const unsigned char *p = s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xbf; /* bounds of the second byte */
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return i; /* continuation byte, overlong lead, or 0xf5.. */
        }
        if (n - i <= need || p[i + 1] < lo || p[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= need; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return i;
        i += need + 1;
    }
    return n;
}

int utf8_is_valid(const void *s, size_t n)
{
    return utf8_valid_prefix(s, n) == n;
}

size_t utf8_cut(const void *s, size_t n, size_t max)
{
    const unsigned char *p = s;
    if (max >= n)
        return n;
    size_t k = max;
    /* back over continuation bytes to the start of the sequence at k */
    while (k > 0 && (p[k] & 0xc0) == 0x80)
        k--;
    return k;
}
