/*
 * NGSI request and response bodies (see ngsi_batch.h).
 *
 * A request body is spliced, not regenerated: the envelope's two ends are
 * produced once by yajl_gen (ngsi_body_new), and each entity is the
 * encoder's yajl_gen output, checked by ngsi_entity_check to be exactly
 * one JSON object when it was encoded (ngsi_sink.c refuses it otherwise)
 * and immutable after that. The only byte written by hand is the comma
 * between two such objects. The copy pass used before (parsing each
 * entity again and replaying it into a generator, per request attempt)
 * was a third of the sink's JSON work for no extra guarantee.
 */
#include <stdint.h>
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

/* --- entity check --------------------------------------------------------- */

struct check {
    int depth;
    int values; /* top-level values seen */
    bool not_object;
};

static int top(struct check *c, bool object)
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

static int ck_null(void *ctx)
{
    return top(ctx, false);
}

static int ck_bool(void *ctx, int v)
{
    (void)v;
    return top(ctx, false);
}

static int ck_number(void *ctx, const char *s, size_t len)
{
    (void)s;
    (void)len;
    return top(ctx, false);
}

static int ck_string(void *ctx, const unsigned char *s, size_t len)
{
    (void)s;
    (void)len;
    return top(ctx, false);
}

static int ck_start_map(void *ctx)
{
    struct check *c = ctx;
    if (!top(c, true))
        return 0;
    c->depth++;
    return 1;
}

static int ck_map_key(void *ctx, const unsigned char *s, size_t len)
{
    (void)ctx;
    (void)s;
    (void)len;
    return 1;
}

static int ck_end(void *ctx)
{
    struct check *c = ctx;
    c->depth--;
    return 1;
}

static int ck_start_array(void *ctx)
{
    struct check *c = ctx;
    if (!top(c, false))
        return 0;
    c->depth++;
    return 1;
}

static const yajl_callbacks check_callbacks = {
    .yajl_null = ck_null,
    .yajl_boolean = ck_bool,
    .yajl_number = ck_number,
    .yajl_string = ck_string,
    .yajl_start_map = ck_start_map,
    .yajl_map_key = ck_map_key,
    .yajl_end_map = ck_end,
    .yajl_start_array = ck_start_array,
    .yajl_end_array = ck_end,
};

int ngsi_entity_check(const char *json, size_t len)
{
    struct check c = {0};
    yajl_handle h = yajl_alloc(&check_callbacks, NULL, &c);
    if (h == NULL)
        return 0;
    int ok =
        yajl_parse(h, (const unsigned char *)json, len) == yajl_status_ok &&
        yajl_complete_parse(h) == yajl_status_ok && c.values == 1 &&
        c.depth == 0 && !c.not_object;
    yajl_free(h);
    return ok;
}

/* --- request bodies ------------------------------------------------------- */

struct ngsi_body {
    char *head; /* envelope up to the first entity (yajl_gen output) */
    char *tail; /* envelope after the last entity */
    size_t head_len, tail_len;
    char *buf;
    size_t len, cap;
    size_t n; /* entities in buf */
    bool broken;
};

static int key(yajl_gen g, const char *s)
{
    return gen_ok(yajl_gen_string(g, (const unsigned char *)s, strlen(s)));
}

/* Copies what g holds into *out (NUL-terminated) and empties g. */
static int take_buf(yajl_gen g, char **out, size_t *len)
{
    const unsigned char *b;
    if (yajl_gen_get_buf(g, &b, len) != yajl_gen_status_ok)
        return SPOT_ENOMEM;
    if ((*out = malloc(*len + 1)) == NULL)
        return SPOT_ENOMEM;
    memcpy(*out, b, *len);
    (*out)[*len] = '\0';
    yajl_gen_clear(g);
    return SPOT_OK;
}

/* The envelope: v2 {"actionType":"append","entities":[ ... ]}, LD [ ... ]. */
static int make_envelope(struct ngsi_body *b, enum ngsi_flavour flavour)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g == NULL)
        return SPOT_ENOMEM;
    int ok = 1;
    if (flavour == NGSI_FLAVOUR_V2) {
        ok &= gen_ok(yajl_gen_map_open(g));
        ok &= key(g, "actionType");
        ok &= key(g, "append");
        ok &= key(g, "entities");
    }
    ok &= gen_ok(yajl_gen_array_open(g));
    int rc = ok ? take_buf(g, &b->head, &b->head_len) : SPOT_ENOMEM;
    if (rc == SPOT_OK) {
        ok &= gen_ok(yajl_gen_array_close(g));
        if (flavour == NGSI_FLAVOUR_V2)
            ok &= gen_ok(yajl_gen_map_close(g));
        rc = ok ? take_buf(g, &b->tail, &b->tail_len) : SPOT_ENOMEM;
    }
    yajl_gen_free(g);
    return rc;
}

int ngsi_body_new(struct ngsi_body **out, enum ngsi_flavour flavour)
{
    struct ngsi_body *b = calloc(1, sizeof *b);
    if (b == NULL)
        return SPOT_ENOMEM;
    int rc = make_envelope(b, flavour);
    if (rc != SPOT_OK) {
        ngsi_body_free(b);
        return rc;
    }
    *out = b;
    return SPOT_OK;
}

void ngsi_body_free(struct ngsi_body *b)
{
    if (b == NULL)
        return;
    free(b->head);
    free(b->tail);
    free(b->buf);
    free(b);
}

static int put(struct ngsi_body *b, const char *p, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2)
                return SPOT_ENOMEM;
            cap *= 2;
        }
        char *nb = realloc(b->buf, cap);
        if (nb == NULL)
            return SPOT_ENOMEM;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    return SPOT_OK;
}

void ngsi_body_begin(struct ngsi_body *b)
{
    b->len = 0;
    b->n = 0;
    b->broken = put(b, b->head, b->head_len) != SPOT_OK;
}

int ngsi_body_add(struct ngsi_body *b, const char *json, size_t len)
{
    if (b->broken)
        return SPOT_EINVAL;
    /* The entity was checked whole when it was encoded; this only guards
     * against a caller handing something else. */
    if (len < 2 || json[0] != '{' || json[len - 1] != '}') {
        b->broken = true;
        return SPOT_EINVAL;
    }
    int rc = SPOT_OK;
    if (b->n > 0)
        rc = put(b, ",", 1);
    if (rc == SPOT_OK)
        rc = put(b, json, len);
    if (rc != SPOT_OK) {
        b->broken = true;
        return rc;
    }
    b->n++;
    return SPOT_OK;
}

int ngsi_body_finish(struct ngsi_body *b, const unsigned char **buf,
                     size_t *len)
{
    if (b->broken)
        return SPOT_EINVAL;
    if (put(b, b->tail, b->tail_len) != SPOT_OK) {
        b->broken = true;
        return SPOT_ENOMEM;
    }
    b->broken = true; /* finished: only ngsi_body_begin starts again */
    *buf = (const unsigned char *)b->buf;
    *len = b->len;
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
