/*
 * Nesting depth of JSON text before it is made into a yajl tree (API:
 * spot/json_depth.h). Pure function: any thread.
 */
#include "spot/json_depth.h"

int json_depth_exceeds(const char *s, size_t n, unsigned max)
{
    unsigned depth = 0;
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character cannot end the string */
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return 1;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}
