/*
 * Service groups: the "service_groups" array of the configuration file,
 * validated whole and turned into an immutable lookup table. A reload
 * (groups_adopt) publishes a new table through an atomic pointer; readers
 * never lock. A replaced table stays allocated for GROUPS_RETIRED more
 * reloads, because a record being validated and encoded may still point
 * into it; reloads are at least GROUPS_ADOPT_GAP_MS apart (main.c), so
 * that is 16 s. It is freed then or at exit.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "spot/err.h"
#include "spot/topic.h"
#include "groups.h"

struct table {
    struct group *items;
    size_t n;
};

struct groups {
    _Atomic(struct table *) current;
    pthread_mutex_t mu; /* serialises adopters */
    struct table *retired[GROUPS_RETIRED];
    size_t next_retired;
};

static int fail(char *err, size_t errlen, size_t i, const char *msg)
{
    snprintf(err, errlen, "service_groups[%zu]: %s", i, msg);
    return SPOT_ECONFIG;
}

/* Orion: Fiware-Service is [A-Za-z0-9_]{1,50}. */
static int service_is_legal(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 50)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_") == n;
}

/* Orion: "/" or 1-10 levels of /[A-Za-z0-9_]{1,50}. */
static int service_path_is_legal(const char *s)
{
    if (strcmp(s, "/") == 0)
        return 1;
    int levels = 0;
    while (*s == '/') {
        s++;
        size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                             "VWXYZ0123456789_");
        if (n < 1 || n > 50)
            return 0;
        s += n;
        levels++;
    }
    return *s == '\0' && levels >= 1 && levels <= 10;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void group_clear(struct group *g)
{
    free(g->apikey);
    free(g->service);
    free(g->service_path);
    for (size_t v = 0; v <= SPOT_V_COUNT; v++)
        free(g->entity_types[v]);
}

static int parse_group(struct group *g, const struct yajl_val_s *node, size_t i,
                       char *err, size_t errlen)
{
    if (!YAJL_IS_OBJECT(node))
        return fail(err, errlen, i, "must be an object");
    g->verticals = (1u << SPOT_V_COUNT) - 1;
    for (size_t k = 0; k < node->u.object.len; k++) {
        const char *key = node->u.object.keys[k];
        const struct yajl_val_s *val = node->u.object.values[k];
        if (strcmp(key, "apikey") == 0 || strcmp(key, "service") == 0 ||
            strcmp(key, "service_path") == 0) {
            if (!YAJL_IS_STRING(val))
                return fail(err, errlen, i,
                            "apikey, service and "
                            "service_path must be strings");
            char *copy = dup_str(val->u.string);
            if (copy == NULL)
                return SPOT_ENOMEM;
            char **slot = key[0] == 'a'                 ? &g->apikey
                          : strcmp(key, "service") == 0 ? &g->service
                                                        : &g->service_path;
            if (*slot != NULL) {
                free(copy);
                return fail(err, errlen, i, "duplicate key");
            }
            *slot = copy;
        } else if (strcmp(key, "generic") == 0) {
            if (!YAJL_IS_TRUE(val) && !YAJL_IS_FALSE(val))
                return fail(err, errlen, i, "generic must be true or false");
            g->generic = YAJL_IS_TRUE(val);
        } else if (strcmp(key, "verticals") == 0) {
            if (!YAJL_IS_ARRAY(val))
                return fail(err, errlen, i,
                            "verticals must be an array of "
                            "vertical codes");
            g->verticals = 0;
            for (size_t j = 0; j < val->u.array.len; j++) {
                const struct yajl_val_s *c = val->u.array.values[j];
                enum spot_vertical v;
                if (!YAJL_IS_STRING(c) ||
                    vertical_from_code(c->u.string, strlen(c->u.string), &v) !=
                        SPOT_OK ||
                    strlen(c->u.string) != 3)
                    return fail(err, errlen, i,
                                "verticals holds an unknown "
                                "vertical code");
                g->verticals |= 1u << v;
            }
        } else if (strcmp(key, "entity_types") == 0) {
            if (!YAJL_IS_OBJECT(val))
                return fail(err, errlen, i,
                            "entity_types must be an object "
                            "of vertical code -> type");
            for (size_t j = 0; j < val->u.object.len; j++) {
                const char *code = val->u.object.keys[j];
                const struct yajl_val_s *t = val->u.object.values[j];
                enum spot_vertical v = SPOT_V_GENERIC;
                if (strcmp(code, "generic") != 0 &&
                    (strlen(code) != 3 ||
                     vertical_from_code(code, 3, &v) != SPOT_OK))
                    return fail(err, errlen, i,
                                "entity_types has an unknown "
                                "vertical code");
                if (!YAJL_IS_STRING(t) ||
                    !topic_id_is_legal(t->u.string, strlen(t->u.string)))
                    return fail(err, errlen, i,
                                "entity type must be a legal "
                                "NGSI name");
                free(g->entity_types[v]);
                g->entity_types[v] = dup_str(t->u.string);
                if (g->entity_types[v] == NULL)
                    return SPOT_ENOMEM;
            }
        } else {
            char msg[128];
            snprintf(msg, sizeof msg, "unknown key \"%.64s\"", key);
            return fail(err, errlen, i, msg);
        }
    }
    if (g->apikey == NULL || !topic_id_is_legal(g->apikey, strlen(g->apikey)))
        return fail(err, errlen, i, "apikey missing or not a legal id");
    if (g->service != NULL && !service_is_legal(g->service))
        return fail(err, errlen, i, "service must match [A-Za-z0-9_]{1,50}");
    if (g->service_path != NULL && !service_path_is_legal(g->service_path))
        return fail(err, errlen, i,
                    "service_path must be \"/\" or 1-10 "
                    "levels of /[A-Za-z0-9_]{1,50}");
    return SPOT_OK;
}

static void table_free(struct table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        group_clear(&t->items[i]);
    free(t->items);
    free(t);
}

static int table_new(struct table **out, const struct yajl_val_s *node,
                     char *err, size_t errlen)
{
    struct table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return SPOT_ENOMEM;
    int rc = SPOT_OK;
    if (node == NULL)
        goto out;
    if (!YAJL_IS_ARRAY(node)) {
        snprintf(err, errlen, "service_groups must be an array");
        rc = SPOT_ECONFIG;
        goto out;
    }
    t->items = calloc(node->u.array.len + 1, sizeof *t->items);
    if (t->items == NULL) {
        rc = SPOT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < node->u.array.len; i++) {
        rc = parse_group(&t->items[i], node->u.array.values[i], i, err, errlen);
        t->n = i + 1;
        if (rc != SPOT_OK)
            goto out;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t->items[j].apikey, t->items[i].apikey) == 0) {
                rc = fail(err, errlen, i, "apikey already configured");
                goto out;
            }
        }
    }
out:
    if (rc != SPOT_OK) {
        table_free(t);
        return rc;
    }
    *out = t;
    return SPOT_OK;
}

int groups_new(struct groups **out, const struct yajl_val_s *node, char *err,
               size_t errlen)
{
    struct table *t;
    int rc = table_new(&t, node, err, errlen);
    if (rc != SPOT_OK)
        return rc;
    struct groups *g = calloc(1, sizeof *g);
    if (g == NULL) {
        table_free(t);
        return SPOT_ENOMEM;
    }
    pthread_mutex_init(&g->mu, NULL);
    atomic_init(&g->current, t);
    *out = g;
    return SPOT_OK;
}

void groups_free(struct groups *g)
{
    if (g == NULL)
        return;
    table_free(atomic_load(&g->current));
    for (size_t i = 0; i < GROUPS_RETIRED; i++)
        table_free(g->retired[i]);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void groups_adopt(struct groups *g, struct groups *from)
{
    struct table *fresh = atomic_exchange(&from->current, NULL);
    pthread_mutex_lock(&g->mu);
    struct table *old = atomic_exchange(&g->current, fresh);
    table_free(g->retired[g->next_retired]);
    g->retired[g->next_retired] = old;
    g->next_retired = (g->next_retired + 1) % GROUPS_RETIRED;
    pthread_mutex_unlock(&g->mu);
    groups_free(from);
}

size_t groups_count(const struct groups *g)
{
    if (g == NULL)
        return 0;
    const struct table *t = atomic_load_explicit(
        &((struct groups *)(uintptr_t)g)->current, memory_order_acquire);
    return t ? t->n : 0;
}

const struct group *groups_find(const struct groups *g, const char *apikey,
                                size_t len)
{
    if (g == NULL)
        return NULL;
    const struct table *t = atomic_load_explicit(
        &((struct groups *)(uintptr_t)g)->current, memory_order_acquire);
    for (size_t i = 0; t && i < t->n; i++) {
        const char *k = t->items[i].apikey;
        if (strlen(k) == len && memcmp(k, apikey, len) == 0)
            return &t->items[i];
    }
    return NULL;
}

const struct group *groups_at(const struct groups *g, size_t i)
{
    if (g == NULL)
        return NULL;
    const struct table *t = atomic_load_explicit(
        &((struct groups *)(uintptr_t)g)->current, memory_order_acquire);
    return t && i < t->n ? &t->items[i] : NULL;
}
