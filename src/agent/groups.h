/*
 * Per-apikey service groups from the configuration file: which apikeys are
 * accepted, their Fiware-Service / Fiware-ServicePath, the verticals they may
 * send, whether they are generic (IoT Agent JSON style) groups, and
 * per-device static attributes.
 *
 * Immutable once built: any thread may read a struct groups. A reload builds
 * a new one and swaps the pointer.
 */
#ifndef SPOT_GROUPS_H
#define SPOT_GROUPS_H

#include <stdbool.h>
#include <stddef.h>

#include "spot/vertical.h"

struct group {
    char *apikey;
    char *service;      /* Fiware-Service, or NULL */
    char *service_path; /* Fiware-ServicePath, or NULL ("/") */
    bool generic;       /* accepts /{apikey}/{device}/attrs */
    unsigned verticals; /* bit (1u << v) per allowed vertical;
                           all bits when the file lists none */
    char *entity_types[SPOT_V_COUNT + 1]; /* overrides, or NULL */
};

struct groups;

/* Builds groups from the "service_groups" array of a parsed config file
 * (yajl tree, borrowed; strings are copied). node may be NULL (no groups).
 * On failure returns SPOT_ECONFIG with a message in err. */
struct yajl_val_s;
int groups_new(struct groups **out, const struct yajl_val_s *node, char *err,
               size_t errlen);
void groups_free(struct groups *g);

/* Replaces g's table with from's and frees from (main thread; readers of
 * g carry on without locking). The replaced table is freed GROUPS_RETIRED
 * adopts later: callers leave at least GROUPS_ADOPT_GAP_MS between adopts,
 * so a group pointer stays valid for GROUPS_RETIRED x that (16 s) after
 * the reload that replaced it. Sinks hold one only between validating a
 * record and encoding it. */
#define GROUPS_RETIRED      16
#define GROUPS_ADOPT_GAP_MS 1000
void groups_adopt(struct groups *g, struct groups *from);

/* Number of configured groups; 0 means "accept every apikey". */
size_t groups_count(const struct groups *g);

/* The group of the apikey (len bytes), or NULL. Case-sensitive. */
const struct group *groups_find(const struct groups *g, const char *apikey,
                                size_t len);

/* The i-th group (configuration order), or NULL past the end. */
const struct group *groups_at(const struct groups *g, size_t i);

#endif
