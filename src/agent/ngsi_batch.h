/*
 * Request bodies and response bodies of the NGSI sink.
 *
 * A struct ngsi_body builds one batch request: NGSI-v2
 * {"actionType":"append","entities":[...]} or the NGSI-LD upsert array.
 * The envelope comes from yajl_gen; the entities come already encoded
 * (ngsi_encode.h: yajl_gen output, a standalone JSON object each, checked
 * with ngsi_entity_check when it was made) and are spliced in byte for
 * byte, comma-separated: no second parse per request.
 *
 * The parsers turn a broker's error answer into a one-line detail and an
 * NGSI-LD 207 answer into per-entity errors.
 *
 * A struct ngsi_body is used by one thread at a time; the rest are pure
 * functions.
 */
#ifndef SPOT_NGSI_BATCH_H
#define SPOT_NGSI_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "ngsi_encode.h"

struct ngsi_body;

int ngsi_body_new(struct ngsi_body **out, enum ngsi_flavour flavour);
void ngsi_body_free(struct ngsi_body *b);

/* Starts a new body (the previous one is dropped). */
void ngsi_body_begin(struct ngsi_body *b);
/* Appends one encoded entity (len bytes, copied), which must have passed
 * ngsi_entity_check. SPOT_OK, SPOT_EINVAL (not "{...}": the body is
 * unusable until the next ngsi_body_begin) or SPOT_ENOMEM. */
int ngsi_body_add(struct ngsi_body *b, const char *json, size_t len);
/* Closes the body; *buf (borrowed until the next ngsi_body_begin) and
 * *len. SPOT_OK, SPOT_EINVAL (a failed add, or already finished) or
 * SPOT_ENOMEM. */
int ngsi_body_finish(struct ngsi_body *b, const unsigned char **buf,
                     size_t *len);
/* Bytes of envelope around the entities, and per entity (the comma). */
#define NGSI_BODY_OVERHEAD 64

/* 1 when json (len bytes) is exactly one JSON object. */
int ngsi_entity_check(const char *json, size_t len);

/* One line describing a broker's error body (Orion's
 * {"error":..,"description":..}, NGSI-LD's ProblemDetails
 * {"type":..,"title":..,"detail":..}, or printable bytes of anything
 * else), at most outlen - 1 characters. */
void ngsi_error_line(const char *body, size_t len, char *out, size_t outlen);

/* One entity's error in an NGSI-LD 207 answer. */
struct ngsi_ld_error {
    const char *entity_id; /* borrowed, NUL-terminated */
    bool transient;        /* 5xx-like (InternalError, LdContextNotAvailable,
                              status >= 500): retry it */
    char detail[384];      /* "type: title: detail" */
};

/* Parses a 207 body ({"success":[..],"errors":[{"entityId":..,"error":
 * {..}}]}) and calls fn once per entry of "errors". SPOT_OK or SPOT_EINVAL
 * (not such an object: neither array is there). */
int ngsi_ld_parse_207(const char *body, size_t len,
                      void (*fn)(void *arg, const struct ngsi_ld_error *e),
                      void *arg);

#endif
