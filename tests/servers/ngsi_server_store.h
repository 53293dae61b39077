/*
 * The NGSI test server's in-memory entity store (included once, by
 * ngsi_server.c). NGSI-v2 entities are keyed by (service, service path, id,
 * type) as in Orion; NGSI-LD entities by (tenant, id). A hash table finds
 * an entity, a list keeps creation order (Orion lists entities by creation
 * date). Bounded by an entity count and a byte total, both checked before a
 * request is applied. Not thread-safe: the caller holds the server lock.
 */
#ifndef NGSI_SERVER_STORE_H
#define NGSI_SERVER_STORE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngsi_server_rules.h"

#define NS_STORE_MIN_BUCKETS 1024u
/* Rough per-allocation overhead counted in the byte total. */
#define NS_ALLOC_OVERHEAD 16u

struct ns_stored {
    struct ns_stored *hnext;       /* hash chain */
    struct ns_stored *prev, *next; /* creation order */
    uint64_t hash;
    int ld;
    char *service; /* v2 service or LD tenant ("" = default) */
    char *path;    /* v2 service path; "" for LD */
    struct ns_entity e;
    size_t cap; /* capacity of e.attrs */
    size_t bytes;
};

struct ns_store {
    struct ns_stored **buckets;
    size_t nbuckets;
    size_t count;
    size_t bytes;
    struct ns_stored *head, *tail;
    size_t max_entities;
    size_t max_bytes;
};

static uint64_t fnv_str(uint64_t h, const char *s)
{
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    h ^= 0xff; /* separator */
    h *= 1099511628211ull;
    return h;
}

static uint64_t store_key_hash(int ld, const char *service, const char *path,
                               const char *id, const char *type)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)ld;

    h = fnv_str(h, service);
    h = fnv_str(h, path);
    h = fnv_str(h, id);
    if (!ld) {
        h = fnv_str(h, type);
    }
    return h;
}

static size_t str_bytes(const char *s)
{
    return s != NULL ? strlen(s) + 1 + NS_ALLOC_OVERHEAD : 0;
}

static size_t attr_bytes(const struct ns_attr *a)
{
    size_t b = sizeof *a + str_bytes(a->name) + str_bytes(a->type) +
               str_bytes(a->value);

    for (size_t i = 0; i < a->nmd; i++) {
        b += sizeof a->md[i] + str_bytes(a->md[i].name) +
             str_bytes(a->md[i].type) + str_bytes(a->md[i].value);
    }
    return b;
}

/* Bytes an entity costs (also used to estimate a request's cost). */
static size_t entity_bytes(const struct ns_entity *e)
{
    size_t b = sizeof(struct ns_stored) + str_bytes(e->id) +
               str_bytes(e->type) + str_bytes(e->type_json) +
               str_bytes(e->types);

    for (size_t i = 0; i < e->nattrs; i++) {
        b += attr_bytes(&e->attrs[i]);
    }
    return b;
}

static int store_init(struct ns_store *s, size_t max_entities, size_t max_bytes)
{
    memset(s, 0, sizeof *s);
    s->nbuckets = NS_STORE_MIN_BUCKETS;
    s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
    s->max_entities = max_entities;
    s->max_bytes = max_bytes;
    return s->buckets != NULL ? 0 : -1;
}

static void stored_free(struct ns_stored *x)
{
    entity_clear(&x->e);
    free(x->service);
    free(x->path);
    free(x);
}

static void store_clear(struct ns_store *s)
{
    struct ns_stored *x = s->head;

    while (x != NULL) {
        struct ns_stored *next = x->next;
        stored_free(x);
        x = next;
    }
    memset(s->buckets, 0, s->nbuckets * sizeof *s->buckets);
    s->head = s->tail = NULL;
    s->count = 0;
    s->bytes = 0;
}

static void store_free(struct ns_store *s)
{
    if (s->buckets != NULL) {
        store_clear(s);
    }
    free(s->buckets);
    s->buckets = NULL;
}

static struct ns_stored *store_find(struct ns_store *s, int ld,
                                    const char *service, const char *path,
                                    const char *id, const char *type)
{
    uint64_t h = store_key_hash(ld, service, path, id, type);

    for (struct ns_stored *x = s->buckets[h & (s->nbuckets - 1)]; x != NULL;
         x = x->hnext) {
        if (x->hash == h && x->ld == ld && strcmp(x->e.id, id) == 0 &&
            strcmp(x->service, service) == 0 && strcmp(x->path, path) == 0 &&
            (ld || strcmp(x->e.type, type) == 0)) {
            return x;
        }
    }
    return NULL;
}

static void store_grow(struct ns_store *s)
{
    size_t n = s->nbuckets * 2;
    struct ns_stored **b = calloc(n, sizeof *b);

    if (b == NULL) {
        return; /* chains just get longer */
    }
    for (struct ns_stored *x = s->head; x != NULL; x = x->next) {
        x->hnext = b[x->hash & (n - 1)];
        b[x->hash & (n - 1)] = x;
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

/* Re-counts x's bytes after a change. */
static void store_account(struct ns_store *s, struct ns_stored *x)
{
    size_t b = entity_bytes(&x->e) + str_bytes(x->service) + str_bytes(x->path);

    s->bytes = s->bytes - x->bytes + b;
    x->bytes = b;
}

/* Takes en (its fields move into the store; en is zeroed). NULL when out
 * of memory (en is left untouched then). */
static struct ns_stored *store_insert(struct ns_store *s, int ld,
                                      const char *service, const char *path,
                                      struct ns_entity *en)
{
    struct ns_stored *x = calloc(1, sizeof *x);

    if (x == NULL) {
        return NULL;
    }
    x->service = strdup(service);
    x->path = strdup(path);
    if (x->service == NULL || x->path == NULL) {
        free(x->service);
        free(x->path);
        free(x);
        return NULL;
    }
    x->ld = ld;
    x->e = *en;
    x->cap = en->nattrs;
    memset(en, 0, sizeof *en);
    x->hash = store_key_hash(ld, service, path, x->e.id, x->e.type);
    if (s->count + 1 > s->nbuckets) {
        store_grow(s);
    }
    x->hnext = s->buckets[x->hash & (s->nbuckets - 1)];
    s->buckets[x->hash & (s->nbuckets - 1)] = x;
    x->prev = s->tail;
    if (s->tail != NULL) {
        s->tail->next = x;
    } else {
        s->head = x;
    }
    s->tail = x;
    s->count++;
    store_account(s, x);
    return x;
}

static void store_remove(struct ns_store *s, struct ns_stored *x)
{
    struct ns_stored **pp = &s->buckets[x->hash & (s->nbuckets - 1)];

    while (*pp != x) {
        pp = &(*pp)->hnext;
    }
    *pp = x->hnext;
    if (x->prev != NULL) {
        x->prev->next = x->next;
    } else {
        s->head = x->next;
    }
    if (x->next != NULL) {
        x->next->prev = x->prev;
    } else {
        s->tail = x->prev;
    }
    s->count--;
    s->bytes -= x->bytes;
    stored_free(x);
}

/* --- attributes of a stored entity ---------------------------------------- */

/* The attribute called name, or NULL. The search starts at *hint, where
 * the caller's previous search ended: a request naming the attributes in
 * the stored order (an agent's every update) finds each at the first try
 * instead of comparing against all that come before it. */
static struct ns_attr *ent_attr(struct ns_entity *e, const char *name,
                                size_t *hint)
{
    size_t n = e->nattrs, start = *hint < n ? *hint : 0;

    for (size_t k = 0; k < n; k++) {
        size_t i = start + k < n ? start + k : start + k - n;
        if (strcmp(e->attrs[i].name, name) == 0) {
            *hint = i + 1;
            return &e->attrs[i];
        }
    }
    return NULL;
}

/* Appends *a (taken: zeroed on success). */
static int ent_add_attr(struct ns_stored *x, struct ns_attr *a)
{
    if (x->e.nattrs == x->cap) {
        size_t n = x->cap ? x->cap * 2 : 4;
        struct ns_attr *p = realloc(x->e.attrs, n * sizeof *p);
        if (p == NULL) {
            return -1;
        }
        x->e.attrs = p;
        x->cap = n;
    }
    x->e.attrs[x->e.nattrs++] = *a;
    memset(a, 0, sizeof *a);
    return 0;
}

static void ent_del_attr(struct ns_stored *x, struct ns_attr *a)
{
    size_t i = (size_t)(a - x->e.attrs);

    attr_clear(a);
    memmove(&x->e.attrs[i], &x->e.attrs[i + 1],
            (x->e.nattrs - i - 1) * sizeof *a);
    x->e.nattrs--;
}

static void ent_clear_attrs(struct ns_stored *x)
{
    for (size_t i = 0; i < x->e.nattrs; i++) {
        attr_clear(&x->e.attrs[i]);
    }
    x->e.nattrs = 0;
}

/* Orion's metadata update semantics: metadata in the request are added or
 * updated, others kept; "metadata": {} clears them; overrideMetadata
 * replaces them. Takes the request's metadata. */
static int md_merge(struct ns_attr *old, struct ns_attr *in, int override)
{
    if (override || (in->md_given && in->nmd == 0)) {
        for (size_t i = 0; i < old->nmd; i++) {
            md_clear(&old->md[i]);
        }
        free(old->md);
        old->md = in->md;
        old->nmd = in->nmd;
        in->md = NULL;
        in->nmd = 0;
        return 0;
    }
    for (size_t i = 0; i < in->nmd; i++) {
        struct ns_md *m = NULL;
        for (size_t j = 0; j < old->nmd; j++) {
            if (strcmp(old->md[j].name, in->md[i].name) == 0) {
                m = &old->md[j];
                break;
            }
        }
        if (m == NULL) {
            struct ns_md *p = realloc(old->md, (old->nmd + 1) * sizeof *p);
            if (p == NULL) {
                return -1;
            }
            old->md = p;
            m = &old->md[old->nmd++];
        } else {
            md_clear(m);
        }
        *m = in->md[i];
        memset(&in->md[i], 0, sizeof in->md[i]);
    }
    return 0;
}

/* Updates attribute old from in (type, value, metadata); takes in's
 * fields. */
static int attr_update(struct ns_attr *old, struct ns_attr *in, int override)
{
    str_release(old->type);
    free(old->value);
    old->type = in->type;
    old->value = in->value;
    old->is_geo = in->is_geo;
    in->type = NULL;
    in->value = NULL;
    return md_merge(old, in, override);
}

/* Location attributes x would have after merging request entity in
 * (replace: only in's). */
static int geo_count_after(const struct ns_stored *x,
                           const struct ns_entity *in, int replace)
{
    int n = 0;

    for (size_t i = 0; i < in->nattrs; i++) {
        n += in->attrs[i].is_geo;
    }
    if (x == NULL || replace) {
        return n;
    }
    for (size_t i = 0; i < x->e.nattrs; i++) {
        int overwritten = 0;
        if (!x->e.attrs[i].is_geo) {
            continue;
        }
        for (size_t j = 0; j < in->nattrs; j++) {
            if (strcmp(in->attrs[j].name, x->e.attrs[i].name) == 0) {
                overwritten = 1;
                break;
            }
        }
        n += !overwritten;
    }
    return n;
}

#endif
