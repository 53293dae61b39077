/*
 * JSON helpers of the NGSI test server (included once, by ngsi_server.c):
 * a strict pre-scan that yajl_tree_parse lacks (no comments, no NUL bytes,
 * bounded nesting), object lookups, duplicate-key detection, and output
 * through yajl_gen only: a value tree to compact text, and compact text
 * streamed back into a generator. Pure functions: any thread.
 */
#ifndef NGSI_SERVER_JSON_H
#define NGSI_SERVER_JSON_H

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
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
    /* Byte classes: 1 structural or NUL (outside strings), 2 ends a run of
     * string bytes (quote, backslash, NUL). One table lookup per byte. */
    static const unsigned char cls[256] = {
        [0] = 3,   ['"'] = 3, ['/'] = 1, ['['] = 1,
        [']'] = 1, ['{'] = 1, ['}'] = 1, ['\\'] = 2,
    };
    const unsigned char *u = (const unsigned char *)s;
    int depth = 0;
    size_t i = 0;

    /* s[len] is the terminating NUL: a scan stops at it at the latest,
     * and a stop before len on a NUL is an embedded NUL byte. */
    while (i < len) {
        while (!(cls[u[i]] & 1)) {
            i++;
        }
        if (i >= len) {
            break;
        }
        switch (s[i]) {
        case '\0':
            return -1;
        case '"':
            /* skip the string */
            for (i++;;) {
                while (!(cls[u[i]] & 2)) {
                    i++;
                }
                if (i >= len || s[i] == '\0') {
                    return i >= len ? 0 : -1; /* yajl reports the rest */
                }
                if (s[i] == '"') {
                    break;
                }
                /* yajl_tree keeps strings NUL-terminated: a \u0000 would
                 * silently cut them short */
                if (i + 5 < len && memcmp(s + i + 1, "u0000", 5) == 0) {
                    return -1;
                }
                if (i + 2 >= len) {
                    return 0;
                }
                i += 2;
            }
            break;
        case '/':
            return -1;
        case '[':
        case '{':
            if (++depth > NS_MAX_JSON_DEPTH) {
                return -1;
            }
            break;
        default: /* ] } */
            depth--;
            break;
        }
        i++;
    }
    return 0;
}

/* --- parsing into an arena ----------------------------------------------
 *
 * json_parse builds the same yajl_val tree as yajl_tree_parse (same
 * structures, same number flags, duplicate keys kept in order), but every
 * node, string and array lives in a few large blocks freed at once by
 * json_free, instead of three to five malloc calls per node: on 200 KB
 * batch bodies the allocator was half of the server's time. */

#define NS_ARENA_MIN      (64u * 1024u)
#define NS_ARENA_KEEP_MAX (16u * 1024u * 1024u) /* largest block kept */

struct json_blk {
    struct json_blk *next;
    size_t used, cap;
    max_align_t data[]; /* the root node is always data[0] of the first */
};

struct json_item {
    const char *key; /* NULL in arrays */
    yajl_val v;
};

struct json_builder {
    struct json_blk *first, *cur;
    yajl_val root;
    yajl_val open[NS_MAX_JSON_DEPTH + 1];  /* containers being filled */
    size_t open_at[NS_MAX_JSON_DEPTH + 1]; /* their first item */
    int depth;
    struct json_item *items; /* children of the open containers */
    size_t nitems, cap;
    const char *key;  /* the pending key of the innermost object */
    size_t first_cap; /* of the first block */
    int finite_only;  /* a number a double cannot hold fails the parse */
};

/* Each thread keeps the largest block its last parse freed, for the next
 * parse: a batch body of a few hundred KB needs a block of about a
 * megabyte, and getting a fresh one from malloc for every request cost the
 * server a fifth of its time (heap consolidation, page faults). Blocks over
 * NS_ARENA_KEEP_MAX are not kept. Freed when the thread ends. */
static pthread_key_t json_blk_key;
static pthread_once_t json_blk_once = PTHREAD_ONCE_INIT;

static void json_blk_key_init(void)
{
    if (pthread_key_create(&json_blk_key, free) != 0) {
        abort();
    }
}

/* The thread's kept block if it holds at least cap bytes (taken), else
 * NULL. */
static struct json_blk *json_blk_take(size_t cap)
{
    struct json_blk *k;

    pthread_once(&json_blk_once, json_blk_key_init);
    k = pthread_getspecific(json_blk_key);
    if (k == NULL || k->cap < cap) {
        return NULL;
    }
    (void)pthread_setspecific(json_blk_key, NULL);
    return k;
}

static void *json_alloc(struct json_builder *b, size_t n)
{
    struct json_blk *k = b->cur;
    void *p;

    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    if (k == NULL || k->cap - k->used < n) {
        size_t cap = k != NULL ? k->cap * 2 : b->first_cap;
        while (cap < n) {
            cap *= 2;
        }
        struct json_blk *kept = json_blk_take(cap);
        if (kept != NULL) {
            k = kept;
        } else if ((k = malloc(sizeof *k + cap)) == NULL) {
            return NULL;
        } else {
            k->cap = cap;
        }
        k->next = NULL;
        k->used = 0;
        if (b->cur != NULL) {
            b->cur->next = k;
        } else {
            b->first = k;
        }
        b->cur = k;
    }
    p = (char *)k->data + k->used;
    k->used += n;
    return p;
}

static char *json_strdup(struct json_builder *b, const unsigned char *s,
                         size_t n)
{
    char *p = json_alloc(b, n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Attaches v to the innermost open container (or makes it the root). */
static int json_attach(struct json_builder *b, yajl_val v)
{
    if (b->depth == 0) {
        b->root = v;
        return 1;
    }
    if (b->nitems == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        struct json_item *p = realloc(b->items, cap * sizeof *p);
        if (p == NULL) {
            return 0;
        }
        b->items = p;
        b->cap = cap;
    }
    b->items[b->nitems].key = b->key;
    b->items[b->nitems].v = v;
    b->nitems++;
    b->key = NULL;
    return 1;
}

static yajl_val json_node(struct json_builder *b, yajl_type t)
{
    yajl_val v = json_alloc(b, sizeof *v);

    if (v != NULL) {
        memset(v, 0, sizeof *v);
        v->type = t;
    }
    return v;
}

static int jb_scalar(void *ctx, yajl_type t)
{
    struct json_builder *b = ctx;
    yajl_val v = json_node(b, t);

    return v != NULL && json_attach(b, v);
}

static int jb_null(void *ctx)
{
    return jb_scalar(ctx, yajl_t_null);
}

static int jb_bool(void *ctx, int x)
{
    return jb_scalar(ctx, x ? yajl_t_true : yajl_t_false);
}

/* yajl's own integer rule (yajl_parse_integer): digits after an optional
 * sign; -1 when s is not such an integer or does not fit. */
static int json_integer(const char *s, size_t n, long long *out)
{
    const char *p = s, *end = s + n;
    long long v = 0;
    int neg = 0;

    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p < end && *p == '+') {
        p++;
    }
    for (; p < end; p++) {
        int d = *p - '0';
        if (d < 0 || d > 9 || v > (LLONG_MAX - d) / 10) {
            *out = neg ? LLONG_MIN : LLONG_MAX;
            return -1;
        }
        v = v * 10 + d;
    }
    *out = neg ? -v : v;
    return 0;
}

/* True for a number JSON can carry and a double can hold (no overflow). */
static int json_number_finite(yajl_val v)
{
    return YAJL_IS_DOUBLE(v) && isfinite(v->u.number.d);
}

static int jb_number(void *ctx, const char *s, size_t n)
{
    struct json_builder *b = ctx;
    yajl_val v = json_node(b, yajl_t_number);
    char *end = NULL;

    if (v == NULL ||
        (v->u.number.r = json_strdup(b, (const unsigned char *)s, n)) == NULL) {
        return 0;
    }
    /* the flags of yajl_tree's handle_number */
    if (json_integer(s, n, &v->u.number.i) == 0) {
        v->u.number.flags |= YAJL_NUMBER_INT_VALID;
    }
    errno = 0;
    v->u.number.d = strtod(v->u.number.r, &end);
    if (errno == 0 && end != NULL && *end == '\0') {
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    }
    if (b->finite_only && !json_number_finite(v)) {
        return 0;
    }
    return json_attach(b, v);
}

static int jb_string(void *ctx, const unsigned char *s, size_t n)
{
    struct json_builder *b = ctx;
    yajl_val v = json_node(b, yajl_t_string);

    return v != NULL && (v->u.string = json_strdup(b, s, n)) != NULL &&
           json_attach(b, v);
}

static int jb_key(void *ctx, const unsigned char *s, size_t n)
{
    struct json_builder *b = ctx;

    return (b->key = json_strdup(b, s, n)) != NULL;
}

static int jb_open(void *ctx, yajl_type t)
{
    struct json_builder *b = ctx;
    yajl_val v = json_node(b, t);

    if (v == NULL || b->depth > NS_MAX_JSON_DEPTH || !json_attach(b, v)) {
        return 0;
    }
    b->open[b->depth] = v;
    b->open_at[b->depth] = b->nitems;
    b->depth++;
    return 1;
}

static int jb_start_map(void *ctx)
{
    return jb_open(ctx, yajl_t_object);
}

static int jb_start_array(void *ctx)
{
    return jb_open(ctx, yajl_t_array);
}

/* Closes the innermost container: its children move into the arena. */
static int jb_close(void *ctx)
{
    struct json_builder *b = ctx;
    yajl_val v = b->open[--b->depth];
    size_t at = b->open_at[b->depth], n = b->nitems - at;
    yajl_val *values = NULL;

    if (n > 0 && (values = json_alloc(b, n * sizeof *values)) == NULL) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        values[i] = b->items[at + i].v;
    }
    if (v->type == yajl_t_object) {
        const char **keys = NULL;
        if (n > 0 && (keys = json_alloc(b, n * sizeof *keys)) == NULL) {
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            keys[i] = b->items[at + i].key;
        }
        v->u.object.keys = keys;
        v->u.object.values = values;
        v->u.object.len = n;
    } else {
        v->u.array.values = values;
        v->u.array.len = n;
    }
    b->nitems = at;
    return 1;
}

static const yajl_callbacks jb_callbacks = {
    jb_null,      jb_bool, NULL,     NULL,           jb_number, jb_string,
    jb_start_map, jb_key,  jb_close, jb_start_array, jb_close,
};

static void json_blocks_free(struct json_blk *k)
{
    pthread_once(&json_blk_once, json_blk_key_init);
    while (k != NULL) {
        struct json_blk *next = k->next;
        struct json_blk *kept = pthread_getspecific(json_blk_key);
        if (k->cap <= NS_ARENA_KEEP_MAX &&
            (kept == NULL || kept->cap < k->cap)) {
            if (pthread_setspecific(json_blk_key, k) == 0) {
                free(kept);
                k = next;
                continue;
            }
        }
        free(k);
        k = next;
    }
}

/* Frees a tree made by json_parse (NULL is fine). */
static void json_free(yajl_val v)
{
    if (v != NULL) {
        json_blocks_free(
            (struct json_blk *)(void *)((char *)v -
                                        offsetof(struct json_blk, data)));
    }
}

/* Parses the NUL-terminated text s (len bytes) strictly into a tree that
 * json_free frees; NULL on error, and with finite_only also when a number
 * overflows a double (Orion's parser refuses those). */
static yajl_val json_parse_opt(const char *s, size_t len, int finite_only)
{
    struct json_builder b;
    yajl_handle h;
    int ok;

    if (json_prescan(s, len) != 0) {
        return NULL;
    }
    memset(&b, 0, sizeof b);
    b.finite_only = finite_only;
    /* The tree takes about 3 times the text's size: one block, mostly. */
    b.first_cap = NS_ARENA_MIN;
    while (b.first_cap < 4 * len && b.first_cap < ((size_t)1 << 30)) {
        b.first_cap *= 2;
    }
    if ((h = yajl_alloc(&jb_callbacks, NULL, &b)) == NULL) {
        return NULL;
    }
    ok = yajl_parse(h, (const unsigned char *)s, len) == yajl_status_ok &&
         yajl_complete_parse(h) == yajl_status_ok && b.root != NULL &&
         b.depth == 0;
    yajl_free(h);
    free(b.items);
    if (!ok) {
        json_blocks_free(b.first);
        return NULL;
    }
    return b.root;
}

static yajl_val json_parse(const char *s, size_t len)
{
    return json_parse_opt(s, len, 0);
}

/* json_parse, refusing numbers a double cannot hold. */
static yajl_val json_parse_finite(const char *s, size_t len)
{
    return json_parse_opt(s, len, 1);
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

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *obj_dup_key_scan(yajl_val o)
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

/* The first key of object o (in document order) that occurs again later,
 * or NULL. Objects of more than 8 keys (an entity's attributes) are
 * checked by sorting a copy of the keys, n log n instead of n^2; the
 * document-order scan then names the duplicate. */
static const char *obj_dup_key(yajl_val o)
{
    size_t n = o->u.object.len;
    const char *small[64];
    const char **keys = small;
    int dup = 0;

    if (n <= 8) {
        return obj_dup_key_scan(o);
    }
    if (n > sizeof small / sizeof small[0] &&
        (keys = malloc(n * sizeof *keys)) == NULL) {
        return obj_dup_key_scan(o);
    }
    memcpy(keys, o->u.object.keys, n * sizeof *keys);
    qsort(keys, n, sizeof *keys, key_cmp);
    for (size_t i = 0; i + 1 < n && !dup; i++) {
        dup = strcmp(keys[i], keys[i + 1]) == 0;
    }
    if (keys != small) {
        free(keys);
    }
    return dup ? obj_dup_key_scan(o) : NULL;
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

/* One generator per thread for json_text and json_text_str, kept between
 * calls (a fresh generator per value cost three allocations, one of 2 KB);
 * freed when the thread ends. */
static pthread_key_t json_gen_key;
static pthread_once_t json_gen_once = PTHREAD_ONCE_INIT;

static void json_gen_destroy(void *g)
{
    yajl_gen_free(g);
}

static void json_gen_key_init(void)
{
    if (pthread_key_create(&json_gen_key, json_gen_destroy) != 0) {
        abort();
    }
}

/* The calling thread's generator, emptied and reset; NULL when out of
 * memory. */
static yajl_gen scratch_gen(void)
{
    yajl_gen g;

    pthread_once(&json_gen_once, json_gen_key_init);
    if ((g = pthread_getspecific(json_gen_key)) == NULL) {
        if ((g = yajl_gen_alloc(NULL)) == NULL) {
            return NULL;
        }
        if (pthread_setspecific(json_gen_key, g) != 0) {
            yajl_gen_free(g);
            return NULL;
        }
    }
    yajl_gen_clear(g);
    yajl_gen_reset(g, NULL);
    return g;
}

/* s quoted as a JSON string, when it has only printable ASCII that needs
 * no escape (what yajl_gen_string gives for it); NULL otherwise or when
 * out of memory. */
static char *json_text_plain(const char *s)
{
    size_t n = 0;
    char *out;

    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '/') {
            return NULL;
        }
    }
    if ((out = malloc(n + 3)) != NULL) {
        out[0] = '"';
        memcpy(out + 1, s, n);
        out[n + 1] = '"';
        out[n + 2] = '\0';
    }
    return out;
}

/* Compact JSON text of v (caller frees); NULL when out of memory. */
static char *json_text(yajl_val v)
{
    yajl_gen g;
    char *plain;

    /* Scalars without a generator: a number is its text as received
     * (yajl_gen_number copies it), most strings need no escape. */
    if (v != NULL && YAJL_IS_NUMBER(v)) {
        return strdup(v->u.number.r);
    }
    if (v != NULL && YAJL_IS_STRING(v) &&
        (plain = json_text_plain(v->u.string)) != NULL) {
        return plain;
    }
    g = scratch_gen();

    if (g == NULL) {
        return NULL;
    }
    gen_tree(g, v);
    return gen_take(g, NULL);
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
