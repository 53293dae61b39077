/* NGSI response bodies (ngsi_batch.c's parsers) from a broker that misbehaves:
 * a body nested deep enough to overflow the stack in yajl_tree_free() must be
 * treated as unparseable, not crash the agent. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "spot/err.h"
#include "ngsi_batch.h"

static char *nested(size_t depth, size_t *len)
{
    char *s = malloc(2 * depth + 1);
    cr_assert_not_null(s);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    *len = 2 * depth;
    return s;
}

static void count(void *arg, const struct ngsi_ld_error *e)
{
    (void)e;
    (*(int *)arg)++;
}

Test(ngsi_response, deep_error_body_is_printed_not_parsed)
{
    size_t len;
    char *body = nested(300000, &len);
    char line[128];
    ngsi_error_line(body, len, line, sizeof line);
    cr_assert(line[0] == '[', "%s", line);
    int n = 0;
    cr_assert_eq(ngsi_ld_parse_207(body, len, count, &n), SPOT_EINVAL);
    cr_assert_eq(n, 0);
    free(body);
}

Test(ngsi_response, ordinary_bodies_still_parse)
{
    const char *err = "{\"error\":\"BadRequest\",\"description\":\"nope\"}";
    char line[128];
    ngsi_error_line(err, strlen(err), line, sizeof line);
    cr_assert(strstr(line, "BadRequest") != NULL, "%s", line);
    const char *b207 = "{\"success\":[],\"errors\":[{\"entityId\":\"urn:x\","
                       "\"error\":{\"type\":\"BadRequestData\"}}]}";
    int n = 0;
    cr_assert_eq(ngsi_ld_parse_207(b207, strlen(b207), count, &n), SPOT_OK);
    cr_assert_eq(n, 1);
}
