/*
 * JSON helpers of the NGSI test server (included once, by ngsi_server.c):
 * a strict pre-scan that yajl_tree_parse lacks (no comments, no NUL bytes,
 * bounded nesting), object lookups, duplicate-key detection, and output
 * through yajl_gen only: a value tree to compact text, and compact text
 * streamed back into a generator. Pure functions: any thread.
 */
#ifndef NGSI_SERVER_JSON_H
#define NGSI_SERVER_JSON_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

/* Orion's MAX_JSON_NESTING is 50 for attribute values; the request adds a
 * few levels (body, entities, entity, attribute, metadata). */
#define NS_MAX_JSON_DEPTH 60

/* Checks what yajl_tree_parse does not: no NUL byte and no \u0000 escape
 * (its strings are NUL-terminated), no comment (yajl's tree parser enables
 * them, Orion's rapidjson refuses them), nesting at most NS_MAX_JSON_DEPTH
 * (yajl_tree_free recurses). Returns 0 or -1. */
static int json_prescan(const char *s, size_t len)
{
    int depth = 0;
    int in_str = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\0') {
            return -1;
        }
        if (in_str) {
            if (c == '\\') {
                /* yajl_tree keeps strings NUL-terminated: a \u0000 would
                 * silently cut them short */
                if (i + 5 < len && memcmp(s + i + 1, "u0000", 5) == 0) {
                    return -1;
                }
                i++;
            } else if (c == '"') {
                in_str = 0;
            }
            continue;
        }
        switch (c) {
        case '"':
            in_str = 1;
            break;
        case '/':
            return -1;
        case '[':
        case '{':
            if (++depth > NS_MAX_JSON_DEPTH) {
                return -1;
            }
            break;
        case ']':
        case '}':
            depth--;
            break;
        default:
            break;
        }
    }
    return 0;
}

/* Parses the NUL-terminated text s (len bytes) strictly; NULL on error. */
static yajl_val json_parse(const char *s, size_t len)
{
    char err[128];

    if (json_prescan(s, len) != 0) {
        return NULL;
    }
    return yajl_tree_parse(s, err, sizeof err);
}

/* First member named key of object o, or NULL (borrowed). */
static yajl_val obj_get(yajl_val o, const char *key)
{
    if (!YAJL_IS_OBJECT(o)) {
        return NULL;
    }
    for (size_t i = 0; i < o->u.object.len; i++) {
        if (strcmp(o->u.object.keys[i], key) == 0) {
            return o->u.object.values[i];
        }
    }
    return NULL;
}

/* Returns a key that appears twice in object o, or NULL. */
static const char *obj_dup_key(yajl_val o)
{
    size_t n = o->u.object.len;

    for (size_t i = 0; i + 1 < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            if (strcmp(o->u.object.keys[i], o->u.object.keys[j]) == 0) {
                return o->u.object.keys[i];
            }
        }
    }
    return NULL;
}

/* True for a number JSON can carry and a double can hold (no overflow). */
static int json_number_finite(yajl_val v)
{
    return YAJL_IS_DOUBLE(v) && isfinite(v->u.number.d);
}

/* Finds a non-finite number anywhere in v: 1 if found. */
static int json_has_bad_number(yajl_val v)
{
    if (YAJL_IS_NUMBER(v)) {
        return !json_number_finite(v);
    }
    if (YAJL_IS_OBJECT(v)) {
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (json_has_bad_number(v->u.object.values[i])) {
                return 1;
            }
        }
    } else if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (json_has_bad_number(v->u.array.values[i])) {
                return 1;
            }
        }
    }
    return 0;
}

/* --- output --------------------------------------------------------------- */

static void gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gen_kv_str(yajl_gen g, const char *k, const char *v)
{
    gen_str(g, k);
    gen_str(g, v);
}

static void gen_kv_int(yajl_gen g, const char *k, long long v)
{
    gen_str(g, k);
    yajl_gen_integer(g, v);
}

/* Generates the tree v into g. */
static void gen_tree(yajl_gen g, yajl_val v)
{
    if (v == NULL || YAJL_IS_NULL(v)) {
        yajl_gen_null(g);
    } else if (YAJL_IS_STRING(v)) {
        gen_str(g, v->u.string);
    } else if (YAJL_IS_NUMBER(v)) {
        yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
    } else if (YAJL_IS_TRUE(v)) {
        yajl_gen_bool(g, 1);
    } else if (YAJL_IS_FALSE(v)) {
        yajl_gen_bool(g, 0);
    } else if (YAJL_IS_OBJECT(v)) {
        yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            gen_str(g, v->u.object.keys[i]);
            gen_tree(g, v->u.object.values[i]);
        }
        yajl_gen_map_close(g);
    } else if (YAJL_IS_ARRAY(v)) {
        yajl_gen_array_open(g);
        for (size_t i = 0; i < v->u.array.len; i++) {
            gen_tree(g, v->u.array.values[i]);
        }
        yajl_gen_array_close(g);
    }
}

/* Copies the generator's buffer into a new NUL-terminated string (caller
 * frees); NULL when out of memory. */
static char *gen_take(yajl_gen g, size_t *lenp)
{
    const unsigned char *buf;
    size_t len;
    char *out;

    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok) {
        return NULL;
    }
    out = malloc(len + 1);
    if (out != NULL) {
        memcpy(out, buf, len);
        out[len] = '\0';
        if (lenp != NULL) {
            *lenp = len;
        }
    }
    return out;
}

/* Compact JSON text of v (caller frees); NULL when out of memory. */
static char *json_text(yajl_val v)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    char *out;

    if (g == NULL) {
        return NULL;
    }
    gen_tree(g, v);
    out = gen_take(g, NULL);
    yajl_gen_free(g);
    return out;
}

/* Compact JSON text of the string s (caller frees). */
static char *json_text_str(const char *s)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    char *out;

    if (g == NULL) {
        return NULL;
    }
    gen_str(g, s);
    out = gen_take(g, NULL);
    yajl_gen_free(g);
    return out;
}

/* Streaming stored JSON text back into a generator: yajl parse callbacks
 * that forward every event. */
static int fw_null(void *ctx)
{
    return yajl_gen_null(ctx) == yajl_gen_status_ok;
}

static int fw_bool(void *ctx, int b)
{
    return yajl_gen_bool(ctx, b) == yajl_gen_status_ok;
}

static int fw_number(void *ctx, const char *s, size_t l)
{
    return yajl_gen_number(ctx, s, l) == yajl_gen_status_ok;
}

static int fw_string(void *ctx, const unsigned char *s, size_t l)
{
    return yajl_gen_string(ctx, s, l) == yajl_gen_status_ok;
}

static int fw_map_open(void *ctx)
{
    return yajl_gen_map_open(ctx) == yajl_gen_status_ok;
}

static int fw_map_close(void *ctx)
{
    return yajl_gen_map_close(ctx) == yajl_gen_status_ok;
}

static int fw_array_open(void *ctx)
{
    return yajl_gen_array_open(ctx) == yajl_gen_status_ok;
}

static int fw_array_close(void *ctx)
{
    return yajl_gen_array_close(ctx) == yajl_gen_status_ok;
}

static const yajl_callbacks fw_callbacks = {
    fw_null,      fw_bool,       NULL,           NULL,
    fw_number,    fw_string,     fw_map_open,    fw_string,
    fw_map_close, fw_array_open, fw_array_close,
};

/* Emits the JSON text json (produced by json_text) into g; a NULL json is
 * emitted as null. */
static void gen_json(yajl_gen g, const char *json)
{
    yajl_handle h;

    if (json == NULL) {
        yajl_gen_null(g);
        return;
    }
    h = yajl_alloc(&fw_callbacks, NULL, g);
    if (h == NULL) {
        yajl_gen_null(g);
        return;
    }
    yajl_parse(h, (const unsigned char *)json, strlen(json));
    yajl_complete_parse(h);
    yajl_free(h);
}

#endif
