/* NGSI request bodies (ngsi_batch.c): the spliced body is valid JSON with
 * the entities byte for byte, in order; reuse, refusals; the entity check;
 * broker error lines and NGSI-LD 207 answers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "ngsi_batch.h"
#include "spot/err.h"

static const char *const ENTS[] = {
    "{\"id\":\"E1\",\"type\":\"T\",\"n\":{\"type\":\"Number\",\"value\":1e2}}",
    "{\"id\":\"E2\",\"type\":\"T\",\"s\":{\"type\":\"Text\",\"value\":"
    "\"caf\xc3\xa9 \\\"q\\\"\"}}",
    "{\"id\":\"E3\",\"type\":\"T\"}",
};

/* The body as a NUL-terminated string (caller frees). */
static char *body_of(struct ngsi_body *b, size_t n)
{
    ngsi_body_begin(b);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ngsi_body_add(b, ENTS[i], strlen(ENTS[i])), SPOT_OK);
    const unsigned char *buf;
    size_t len;
    cr_assert_eq(ngsi_body_finish(b, &buf, &len), SPOT_OK);
    char *s = malloc(len + 1);
    memcpy(s, buf, len);
    s[len] = '\0';
    return s;
}

Test(ngsi_batch, v2_body_is_the_envelope_around_the_entities)
{
    struct ngsi_body *b;
    cr_assert_eq(ngsi_body_new(&b, NGSI_FLAVOUR_V2), SPOT_OK);
    char *s = body_of(b, 3);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"actionType\":\"append\",\"entities\":[%s,%s,%s]}", ENTS[0],
             ENTS[1], ENTS[2]);
    cr_assert_str_eq(s, want);
    char err[128];
    yajl_val v = yajl_tree_parse(s, err, sizeof err);
    cr_assert_not_null(v, "%s", err);
    const char *path[] = {"entities", NULL};
    yajl_val ents = yajl_tree_get(v, path, yajl_t_array);
    cr_assert_not_null(ents);
    cr_assert_eq(ents->u.array.len, 3);
    yajl_tree_free(v);
    free(s);
    /* reused: a second, shorter body */
    s = body_of(b, 1);
    snprintf(want, sizeof want, "{\"actionType\":\"append\",\"entities\":[%s]}",
             ENTS[0]);
    cr_assert_str_eq(s, want);
    free(s);
    ngsi_body_free(b);
}

Test(ngsi_batch, ld_body_is_an_array)
{
    struct ngsi_body *b;
    cr_assert_eq(ngsi_body_new(&b, NGSI_FLAVOUR_LD), SPOT_OK);
    char *s = body_of(b, 2);
    char want[1024];
    snprintf(want, sizeof want, "[%s,%s]", ENTS[0], ENTS[1]);
    cr_assert_str_eq(s, want);
    free(s);
    ngsi_body_free(b);
}

Test(ngsi_batch, large_body_grows)
{
    struct ngsi_body *b;
    cr_assert_eq(ngsi_body_new(&b, NGSI_FLAVOUR_V2), SPOT_OK);
    size_t n = 5000,
           want = strlen("{\"actionType\":\"append\",\"entities\":[]}");
    ngsi_body_begin(b);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(ngsi_body_add(b, ENTS[1], strlen(ENTS[1])), SPOT_OK);
        want += strlen(ENTS[1]) + (i > 0);
    }
    const unsigned char *buf;
    size_t len;
    cr_assert_eq(ngsi_body_finish(b, &buf, &len), SPOT_OK);
    cr_assert_eq(len, want);
    cr_assert_eq(buf[len - 1], '}');
    ngsi_body_free(b);
}

Test(ngsi_batch, refuses_what_is_not_an_object_until_begin)
{
    struct ngsi_body *b;
    cr_assert_eq(ngsi_body_new(&b, NGSI_FLAVOUR_V2), SPOT_OK);
    ngsi_body_begin(b);
    cr_assert_eq(ngsi_body_add(b, "[1]", 3), SPOT_EINVAL);
    cr_assert_eq(ngsi_body_add(b, ENTS[0], strlen(ENTS[0])), SPOT_EINVAL);
    const unsigned char *buf;
    size_t len;
    cr_assert_eq(ngsi_body_finish(b, &buf, &len), SPOT_EINVAL);
    ngsi_body_begin(b);
    cr_assert_eq(ngsi_body_add(b, "{", 1), SPOT_EINVAL);
    ngsi_body_begin(b);
    cr_assert_eq(ngsi_body_add(b, ENTS[0], strlen(ENTS[0])), SPOT_OK);
    cr_assert_eq(ngsi_body_finish(b, &buf, &len), SPOT_OK);
    /* finished: no second finish, no add until the next begin */
    cr_assert_eq(ngsi_body_finish(b, &buf, &len), SPOT_EINVAL);
    cr_assert_eq(ngsi_body_add(b, ENTS[0], strlen(ENTS[0])), SPOT_EINVAL);
    ngsi_body_free(b);
    ngsi_body_free(NULL);
}

Test(ngsi_batch, entity_check)
{
    for (size_t i = 0; i < sizeof ENTS / sizeof ENTS[0]; i++)
        cr_assert(ngsi_entity_check(ENTS[i], strlen(ENTS[i])), "%s", ENTS[i]);
    static const char *const bad[] = {
        "",     "[]",   "1",        "\"s\"",      "{",
        "{}{}", "{} 1", "{\"a\":}", "{\"a\":1,}", "{\"a\":\"\xff\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!ngsi_entity_check(bad[i], strlen(bad[i])), "%s", bad[i]);
    cr_assert(ngsi_entity_check("{}", 2));
    cr_assert(ngsi_entity_check(" {\"a\":[{}]} ", 12));
}

Test(ngsi_batch, error_lines)
{
    char out[128];
    const char *orion = "{\"error\":\"BadRequest\",\"description\":\"Invalid "
                        "characters in attribute value\"}";
    ngsi_error_line(orion, strlen(orion), out, sizeof out);
    cr_assert_str_eq(out, "BadRequest: Invalid characters in attribute value");
    const char *text = "oops\n";
    ngsi_error_line(text, strlen(text), out, sizeof out);
    cr_assert_str_eq(out, "oops");
    ngsi_error_line("", 0, out, sizeof out);
    cr_assert_str_eq(out, "(empty body)");
}

struct seen {
    int n, transient;
    char ids[4][32];
};

static void on_error(void *arg, const struct ngsi_ld_error *e)
{
    struct seen *s = arg;
    snprintf(s->ids[s->n], sizeof s->ids[0], "%s", e->entity_id);
    s->transient += e->transient;
    s->n++;
}

Test(ngsi_batch, ld_207)
{
    const char *body =
        "{\"success\":[\"urn:a\"],\"errors\":[{\"entityId\":\"urn:b\","
        "\"error\":{\"type\":\"https://uri.etsi.org/ngsi-ld/errors/"
        "BadRequestData\",\"title\":\"t\",\"status\":400}},{\"entityId\":"
        "\"urn:c\",\"error\":{\"type\":\"https://uri.etsi.org/ngsi-ld/errors/"
        "InternalError\"}}]}";
    struct seen s = {0};
    cr_assert_eq(ngsi_ld_parse_207(body, strlen(body), on_error, &s), SPOT_OK);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.ids[0], "urn:b");
    cr_assert_str_eq(s.ids[1], "urn:c");
    cr_assert_eq(s.transient, 1);
    cr_assert_eq(ngsi_ld_parse_207("[]", 2, on_error, &s), SPOT_EINVAL);
}
