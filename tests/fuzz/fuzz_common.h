/*
 * What the message-level fuzz targets share (fuzz_common.c): one input is
 * a topic and a payload, built-in schemas, two validators (no service
 * groups; and groups with a generic and a restricted apikey), a devices
 * table, and checks of a validator's record.
 *
 * Input format: when it starts with '/', the topic is everything up to the
 * first newline and the payload is the rest; otherwise the first byte
 * picks one of a fixed list of topics and the payload is the rest. Seeds
 * are therefore readable files: "/Kaqo/dev1_AQO/attrs\n{...}".
 */
#ifndef SPOT_FUZZ_COMMON_H
#define SPOT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "spot/schema.h"
#include "devices.h"
#include "groups.h"
#include "validate.h"

struct fuzz_msg {
    const char *topic;
    size_t topic_len;
    const unsigned char *payload;
    size_t payload_len;
};

struct fuzz_world {
    struct schema_set *schemas;
    struct groups *groups;
    struct devices *devices;
    struct validator *open;   /* no groups: every vertical apikey */
    struct validator *closed; /* the groups below */
};

/* Built once per process (aborts on failure). */
struct fuzz_world *fuzz_world(void);

void fuzz_split(const uint8_t *data, size_t size, struct fuzz_msg *out);

/* Checks the invariants of a record validator_run returned for m. */
void fuzz_check_record(const struct record *r, const struct fuzz_msg *m);

/* Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
 * U+10FFFF). An implementation of its own, independent of the product's. */
int fuzz_utf8_ok(const unsigned char *s, size_t n);

/* True when the n bytes at s are exactly one JSON value (yajl). */
int fuzz_json_ok(const char *s, size_t n);

#endif
