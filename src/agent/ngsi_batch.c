/*
 * NGSI request and response bodies (see ngsi_batch.h).
 *
 * Why a copy pass rather than pasting the encoded bytes: the conventions
 * forbid JSON built from strings, and the copy pass keeps the guarantee
 * that the request is exactly what yajl_gen produces (a broken entity
 * cannot leak into the neighbouring ones: the parser stops at the first
 * bad byte and the caller learns which entity it was). It costs one
 * parse of each entity per request attempt, a few microseconds for the
 * kilobyte an entity weighs, next to a network round trip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "spot/err.h"
#include "spot/json_depth.h"
#include "spot/limits.h"
#include "ngsi_batch.h"

struct ngsi_body {
    enum ngsi_flavour flavour;
    yajl_gen gen;
    bool broken;
};

/* --- copy pass ------------------------------------------------------------ */

struct copy {
    yajl_gen g; /* NULL: validate only */
    int depth;
    int values; /* top-level values seen */
    bool not_object;
};

static int top(struct copy *c, bool object)
{
    if (c->depth == 0) {
        c->values++;
        if (!object)
            c->not_object = true;
    }
    return !c->not_object && c->values == 1;
}

static int gen_ok(yajl_gen_status st)
{
    return st == yajl_gen_status_ok;
}

static int cp_null(void *ctx)
{
    struct copy *c = ctx;
    if (!top(c, false))
        return 0;
    return c->g == NULL || gen_ok(yajl_gen_null(c->g));
}

static int cp_bool(void *ctx, int v)
{
    struct copy *c = ctx;
    if (!top(c, false))
        return 0;
    return c->g == NULL || gen_ok(yajl_gen_bool(c->g, v));
}

static int cp_number(void *ctx, const char *s, size_t len)
{
    struct copy *c = ctx;
    if (!top(c, false))
        return 0;
    return c->g == NULL || gen_ok(yajl_gen_number(c->g, s, len));
}

static int cp_string(void *ctx, const unsigned char *s, size_t len)
{
    struct copy *c = ctx;
    if (!top(c, false))
        return 0;
    return c->g == NULL || gen_ok(yajl_gen_string(c->g, s, len));
}

static int cp_start_map(void *ctx)
{
    struct copy *c = ctx;
    if (!top(c, true))
        return 0;
    c->depth++;
    return c->g == NULL || gen_ok(yajl_gen_map_open(c->g));
}

static int cp_map_key(void *ctx, const unsigned char *s, size_t len)
{
    struct copy *c = ctx;
    return c->g == NULL || gen_ok(yajl_gen_string(c->g, s, len));
}

static int cp_end_map(void *ctx)
{
    struct copy *c = ctx;
    c->depth--;
    return c->g == NULL || gen_ok(yajl_gen_map_close(c->g));
}

static int cp_start_array(void *ctx)
{
    struct copy *c = ctx;
    if (!top(c, false))
        return 0;
    c->depth++;
    return c->g == NULL || gen_ok(yajl_gen_array_open(c->g));
}

static int cp_end_array(void *ctx)
{
    struct copy *c = ctx;
    c->depth--;
    return c->g == NULL || gen_ok(yajl_gen_array_close(c->g));
}

static const yajl_callbacks copy_callbacks = {
    .yajl_null = cp_null,
    .yajl_boolean = cp_bool,
    .yajl_number = cp_number,
    .yajl_string = cp_string,
    .yajl_start_map = cp_start_map,
    .yajl_map_key = cp_map_key,
    .yajl_end_map = cp_end_map,
    .yajl_start_array = cp_start_array,
    .yajl_end_array = cp_end_array,
};

/* Parses json into g (NULL: only checks). SPOT_OK, SPOT_EINVAL or
 * SPOT_ENOMEM. */
static int copy_entity(yajl_gen g, const char *json, size_t len)
{
    struct copy c = {.g = g};
    yajl_handle h = yajl_alloc(&copy_callbacks, NULL, &c);
    if (h == NULL)
        return SPOT_ENOMEM;
    int rc = SPOT_OK;
    if (yajl_parse(h, (const unsigned char *)json, len) != yajl_status_ok ||
        yajl_complete_parse(h) != yajl_status_ok || c.values != 1 ||
        c.depth != 0 || c.not_object)
        rc = SPOT_EINVAL;
    yajl_free(h);
    return rc;
}

int ngsi_entity_check(const char *json, size_t len)
{
    return copy_entity(NULL, json, len) == SPOT_OK;
}

/* --- request bodies ------------------------------------------------------- */

int ngsi_body_new(struct ngsi_body **out, enum ngsi_flavour flavour)
{
    struct ngsi_body *b = calloc(1, sizeof *b);
    if (b == NULL)
        return SPOT_ENOMEM;
    b->flavour = flavour;
    b->gen = yajl_gen_alloc(NULL);
    if (b->gen == NULL) {
        free(b);
        return SPOT_ENOMEM;
    }
    *out = b;
    return SPOT_OK;
}

void ngsi_body_free(struct ngsi_body *b)
{
    if (b == NULL)
        return;
    yajl_gen_free(b->gen);
    free(b);
}

static int key(yajl_gen g, const char *s)
{
    return gen_ok(yajl_gen_string(g, (const unsigned char *)s, strlen(s)));
}

void ngsi_body_begin(struct ngsi_body *b)
{
    yajl_gen g = b->gen;
    yajl_gen_clear(g);
    yajl_gen_reset(g, NULL);
    int ok = 1;
    if (b->flavour == NGSI_FLAVOUR_V2) {
        ok &= gen_ok(yajl_gen_map_open(g));
        ok &= key(g, "actionType");
        ok &= key(g, "append");
        ok &= key(g, "entities");
    }
    ok &= gen_ok(yajl_gen_array_open(g));
    b->broken = !ok;
}

int ngsi_body_add(struct ngsi_body *b, const char *json, size_t len)
{
    if (b->broken)
        return SPOT_EINVAL;
    int rc = copy_entity(b->gen, json, len);
    if (rc != SPOT_OK)
        b->broken = true;
    return rc;
}

int ngsi_body_finish(struct ngsi_body *b, const unsigned char **buf,
                     size_t *len)
{
    if (b->broken)
        return SPOT_EINVAL;
    yajl_gen g = b->gen;
    int ok = gen_ok(yajl_gen_array_close(g));
    if (b->flavour == NGSI_FLAVOUR_V2)
        ok &= gen_ok(yajl_gen_map_close(g));
    if (!ok || yajl_gen_get_buf(g, buf, len) != yajl_gen_status_ok) {
        b->broken = true;
        return SPOT_ENOMEM;
    }
    return SPOT_OK;
}

/* --- response bodies ------------------------------------------------------ */

/* Parses len bytes (need not be NUL-terminated) into a tree, or NULL. */
static yajl_val parse_tree(const char *body, size_t len)
{
    char *s = malloc(len + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, body, len);
    s[len] = '\0';
    /* a broker's body nested deep enough would overflow the stack in
     * yajl_tree_free(): treat it as unparseable */
    yajl_val v = json_depth_exceeds(s, len, SPOT_MAX_RESPONSE_DEPTH)
                     ? NULL
                     : yajl_tree_parse(s, NULL, 0);
    free(s);
    return v;
}

static yajl_val obj_get(yajl_val obj, const char *k)
{
    if (!YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (strcmp(obj->u.object.keys[i], k) == 0)
            return obj->u.object.values[i];
    }
    return NULL;
}

static const char *obj_str(yajl_val obj, const char *k)
{
    return YAJL_GET_STRING(obj_get(obj, k));
}

/* Appends printable ASCII of s (n bytes) to out at *k; others as '?'. */
static void put_printable(char *out, size_t outlen, size_t *k, const char *s,
                          size_t n)
{
    for (size_t i = 0; i < n && *k + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[(*k)++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    out[*k] = '\0';
}

static void put_str(char *out, size_t outlen, size_t *k, const char *s)
{
    put_printable(out, outlen, k, s, strlen(s));
}

/* "type: title: detail" of an Orion or NGSI-LD error object. */
static void error_object_line(yajl_val v, char *out, size_t outlen, size_t *k)
{
    const char *parts[] = {obj_str(v, "error"), obj_str(v, "description"),
                           obj_str(v, "type"), obj_str(v, "title"),
                           obj_str(v, "detail")};
    bool first = true;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (parts[i] == NULL || parts[i][0] == '\0')
            continue;
        if (!first)
            put_str(out, outlen, k, ": ");
        put_str(out, outlen, k, parts[i]);
        first = false;
    }
}

void ngsi_error_line(const char *body, size_t len, char *out, size_t outlen)
{
    size_t k = 0;
    if (outlen == 0)
        return;
    out[0] = '\0';
    yajl_val v = len > 0 ? parse_tree(body, len) : NULL;
    if (YAJL_IS_OBJECT(v))
        error_object_line(v, out, outlen, &k);
    yajl_tree_free(v);
    if (k == 0) {
        /* Not an error object: its bytes, on one line. */
        while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r' ||
                           body[len - 1] == ' '))
            len--;
        if (len == 0)
            put_str(out, outlen, &k, "(empty body)");
        else
            put_printable(out, outlen, &k, body, len);
    }
}

static bool ld_error_transient(yajl_val err)
{
    yajl_val st = obj_get(err, "status");
    if (YAJL_IS_INTEGER(st))
        return YAJL_GET_INTEGER(st) >= 500;
    const char *type = obj_str(err, "type");
    if (type == NULL)
        return false;
    size_t n = strlen(type);
    const char *transient[] = {"InternalError", "LdContextNotAvailable"};
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++) {
        size_t m = strlen(transient[i]);
        if (n >= m && strcmp(type + n - m, transient[i]) == 0)
            return true;
    }
    return false;
}

int ngsi_ld_parse_207(const char *body, size_t len,
                      void (*fn)(void *arg, const struct ngsi_ld_error *e),
                      void *arg)
{
    yajl_val v = parse_tree(body, len);
    if (!YAJL_IS_OBJECT(v)) {
        yajl_tree_free(v);
        return SPOT_EINVAL;
    }
    yajl_val errors = obj_get(v, "errors");
    yajl_val success = obj_get(v, "success");
    if ((errors != NULL && !YAJL_IS_ARRAY(errors)) ||
        (errors == NULL && !YAJL_IS_ARRAY(success))) {
        yajl_tree_free(v);
        return SPOT_EINVAL;
    }
    for (size_t i = 0; errors && i < errors->u.array.len; i++) {
        yajl_val item = errors->u.array.values[i];
        const char *id = obj_str(item, "entityId");
        if (id == NULL)
            continue;
        yajl_val err = obj_get(item, "error");
        struct ngsi_ld_error e = {.entity_id = id};
        size_t k = 0;
        e.detail[0] = '\0';
        if (YAJL_IS_OBJECT(err)) {
            e.transient = ld_error_transient(err);
            error_object_line(err, e.detail, sizeof e.detail, &k);
        }
        if (k == 0)
            put_str(e.detail, sizeof e.detail, &k, "(no error details)");
        fn(arg, &e);
    }
    yajl_tree_free(v);
    return SPOT_OK;
}
