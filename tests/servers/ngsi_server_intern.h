/*
 * Interned names and types for the NGSI test server (included by
 * ngsi_server_rules.h). Attribute and metadata names and types repeat in
 * every entity an agent sends ("NO2", "Number", "TimeInstant", "DateTime"):
 * the server keeps one copy of each in a table instead of a malloc'd copy
 * per attribute per request, and a copy freed per attribute replaced (the
 * allocator was a third of the server's time on batch updates).
 *
 * Bounded: at most NS_INTERN_MAX strings of at most NS_INTERN_LEN bytes, in
 * a static pool; anything else is malloc'd as before. The table lives until
 * exit. str_release() frees only what intern() did not take from the pool.
 * Thread-safe: slots are written once, from NULL to a pooled string, under
 * a mutex; lookups read them without it.
 */
#ifndef NGSI_SERVER_INTERN_H
#define NGSI_SERVER_INTERN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NS_INTERN_MAX  4096u /* strings */
#define NS_INTERN_LEN  64u   /* bytes, longer ones are not interned */
#define NS_INTERN_SLOT (2u * NS_INTERN_MAX)

static char intern_pool[NS_INTERN_MAX * (NS_INTERN_LEN + 1)];
static size_t intern_used; /* bytes of intern_pool, under intern_mu */
static unsigned intern_count;
static _Atomic(const char *) intern_slot[NS_INTERN_SLOT];
static pthread_mutex_t intern_mu = PTHREAD_MUTEX_INITIALIZER;

static uint32_t intern_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    }
    return h;
}

/* Probes for s from its home slot: the slot holding it, or the first empty
 * one (*at), or NULL with *at = NS_INTERN_SLOT when the table is full. */
static const char *intern_probe(const char *s, uint32_t h, size_t *at)
{
    for (size_t k = 0; k < NS_INTERN_SLOT; k++) {
        size_t i = (h + k) % NS_INTERN_SLOT;
        const char *p =
            atomic_load_explicit(&intern_slot[i], memory_order_acquire);
        if (p == NULL) {
            *at = i;
            return NULL;
        }
        if (strcmp(p, s) == 0) {
            return p;
        }
    }
    *at = NS_INTERN_SLOT;
    return NULL;
}

/* The pooled copy of s (shared, never freed), or a malloc'd one when s is
 * too long or the pool is full; NULL when out of memory. */
static char *intern(const char *s)
{
    size_t n = strlen(s), at;
    uint32_t h;
    const char *p;

    if (n > NS_INTERN_LEN) {
        return strdup(s);
    }
    h = intern_hash(s, n);
    if ((p = intern_probe(s, h, &at)) != NULL) {
        return (char *)(uintptr_t)p;
    }
    pthread_mutex_lock(&intern_mu);
    p = intern_probe(s, h, &at); /* another thread may have added it */
    if (p == NULL && at < NS_INTERN_SLOT && intern_count < NS_INTERN_MAX) {
        char *q = intern_pool + intern_used;
        memcpy(q, s, n + 1);
        intern_used += n + 1;
        intern_count++;
        atomic_store_explicit(&intern_slot[at], q, memory_order_release);
        p = q;
    }
    pthread_mutex_unlock(&intern_mu);
    return p != NULL ? (char *)(uintptr_t)p : strdup(s);
}

/* Frees s unless it is pooled. */
static void str_release(char *s)
{
    uintptr_t p = (uintptr_t)s, lo = (uintptr_t)intern_pool;

    if (p < lo || p - lo >= sizeof intern_pool) { /* not pooled */
        free(s);
    }
}

#endif
