/*
 * NGSI encoder: turns a validated record into the NGSI-v2 or NGSI-LD entity
 * a context broker receives, in the `sdm` (FIWARE Smart Data Models) or
 * `compat` (what iotagent-json produces) mapping of ngsi-mapping.md, driven
 * by the schema files. JSON is produced with yajl_gen only.
 *
 * One struct ngsi_encoder per thread (each sink owns one). The entity it
 * returns is borrowed until the next ngsi_encode() call.
 */
#ifndef SPOT_NGSI_ENCODE_H
#define SPOT_NGSI_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "devices.h"
#include "validate.h"

enum ngsi_flavour { NGSI_FLAVOUR_V2, NGSI_FLAVOUR_LD };
enum ngsi_mapping { NGSI_MAPPING_SDM, NGSI_MAPPING_COMPAT };

/* One encoded entity: a standalone JSON object. */
struct ngsi_entity {
    const char *id;   /* NUL-terminated */
    const char *type; /* NUL-terminated */
    const char *json; /* the entity object, not NUL-terminated */
    size_t len;
    /* Attributes left out because their name is not a legal NGSI name
     * (extra fields only). */
    size_t skipped_attrs;
};

struct ngsi_encoder;

/* "sdm" / "compat" -> mapping; returns SPOT_OK or SPOT_EINVAL. */
int ngsi_mapping_parse(const char *s, enum ngsi_mapping *out);

/* devices is borrowed (may be NULL) and must outlive the encoder. */
int ngsi_encoder_new(struct ngsi_encoder **out, enum ngsi_flavour flavour,
                     enum ngsi_mapping mapping, const struct devices *devices);
void ngsi_encoder_free(struct ngsi_encoder *e);

/* Swaps the devices table (after a configuration reload). Borrowed. */
void ngsi_encoder_set_devices(struct ngsi_encoder *e,
                              const struct devices *devices);

/* Encodes the entity of a record whose reason is REJECT_NONE or
 * REJECT_RANGE. Returns SPOT_OK with *out filled; SPOT_EINVAL when the
 * record cannot be made into an entity Orion accepts (id or type too long
 * or illegal, ...), with a human-readable reason in why: the caller
 * dead-letters it with reason "ngsi_rejected"; SPOT_ENOMEM. */
int ngsi_encode(struct ngsi_encoder *e, const struct record *r,
                struct ngsi_entity *out, char *why, size_t whylen);

/* Formats t_us as NGSI's DateTime "YYYY-MM-DDThh:mm:ss.sssZ" (25 bytes
 * with the NUL). */
void ngsi_format_datetime(int64_t t_us, char out[32]);

/* True when the len bytes at s are a legal Orion id, type or attribute
 * name: 1..256 printable ASCII, none of < > " ' = ; ( ) & ? / # or space.
 * ngsi_attr_name_is_legal also refuses the reserved attribute names (id,
 * type, geo:distance, *, dateCreated, dateModified, dateExpires,
 * servicePath, alterationType). Pure functions: any thread. */
int ngsi_name_is_legal(const char *s, size_t len);
int ngsi_attr_name_is_legal(const char *s, size_t len);

#endif
