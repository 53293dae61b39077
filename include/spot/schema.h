/*
 * The built-in vertical schemas: schemas/<code>.json, embedded into the
 * binary at build time and parsed once at start-up into constant tables.
 * They are the single source of truth for validation, PostgreSQL columns and
 * NGSI names, on the agent and the device side alike.
 *
 * A struct schema_set is immutable after schema_set_new(): any number of
 * threads may read it concurrently. Everything it hands out is borrowed and
 * lives until schema_set_free().
 */
#ifndef SPOT_SCHEMA_H
#define SPOT_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "spot/vertical.h"

enum schema_type {
    SCHEMA_NUMBER,    /* JSON number, finite; PostgreSQL double precision */
    SCHEMA_INTEGER,   /* JSON number with an integral value (codes) */
    SCHEMA_TEXT,      /* JSON string */
    SCHEMA_BOOL_TEXT, /* JSON string "true" or "false"; PostgreSQL boolean */
    SCHEMA_DATETIME,  /* JSON string, strict ISO 8601 UTC */
};

/* One entry of a code -> text conversion (e.g. networkBearer 21 -> "wifi"). */
struct schema_code_text {
    long code;
    const char *text;
};

/* How a field is sent in one NGSI mapping. name == NULL: not sent as an
 * attribute of its own (handled specially by the encoder, or dropped). */
struct schema_ngsi {
    const char *name;      /* attribute name */
    const char *attr_type; /* NGSI attribute type ("Number", "Text", ...) */
    const char *unit_code; /* UN/CEFACT Rec 20 code, or NULL */
    const char *convert;   /* NULL or a conversion the encoder knows, e.g.
                              "div100", "code_text", "bool_text" */
    const struct schema_code_text *codes; /* for "code_text" */
    size_t n_codes;
};

struct schema_field {
    const char *name;           /* JSON key as devices send it */
    const char *const *aliases; /* other accepted keys (e.g. AvgDuration) */
    size_t n_aliases;
    enum schema_type type;
    const char *unit; /* human unit ("µg/m³", "dB(A)"), or NULL */
    bool mandatory;   /* absent -> rejected (reason "schema") */
    bool nullable;    /* null allowed ("sensor fitted, no valid reading") */
    bool key;         /* part of the table's natural key beyond
                         (apikey, device_id, time_instant) */
    bool has_min, has_max;
    double min, max;               /* physical range, inclusive */
    const double *allowed_numbers; /* for codes: the only valid values */
    size_t n_allowed_numbers;
    const char *const *allowed_texts; /* for text: the only valid values */
    size_t n_allowed_texts;
    const char *pattern; /* NULL, or "hex40" (40 hexadecimal characters) */
    size_t max_length;   /* text: longest accepted value in bytes, 0 = none */
    const char *column;  /* PostgreSQL column name */
    const char *pg_type; /* "double precision", "integer", "text",
                            "boolean" or "timestamptz" */
    struct schema_ngsi sdm;
    struct schema_ngsi compat;
};

struct schema_vertical {
    enum spot_vertical vertical;
    const char *code;               /* "aqo" */
    const char *title;              /* "Air Quality" */
    const char *table;              /* PostgreSQL table, e.g. "air_quality" */
    const char *sdm_entity_type;    /* e.g. "AirQualityObserved" */
    const char *sdm_id_field;       /* NULL: id from the device; else the
                                       field whose value makes the id
                                       (cfe: "visitorId") */
    const char *compat_entity_type; /* e.g. "AirQualityObserved" */
    const struct schema_field *fields;
    size_t n_fields;
    size_t time_field; /* index of TimeInstant in fields */
};

struct schema_set;

/* Parses the built-in schemas. On failure returns SPOT_ECORRUPT and writes
 * a message naming the file and the problem into err (errlen bytes). */
int schema_set_new(struct schema_set **out, char *err, size_t errlen);

/* Parses schemas from n JSON texts (for tests and tools). Every vertical of
 * enum spot_vertical must be defined exactly once. Texts are copied. */
int schema_set_parse(struct schema_set **out, const char *const *texts,
                     const size_t *lens, size_t n, char *err, size_t errlen);

/* Frees the set; accepts NULL. */
void schema_set_free(struct schema_set *set);

/* The schema of vertical v (v < SPOT_V_COUNT). Borrowed. */
const struct schema_vertical *schema_set_vertical(const struct schema_set *set,
                                                  enum spot_vertical v);

/* Index of the field whose name or alias equals the len bytes at key, or -1.
 * Case-sensitive. */
int schema_field_index(const struct schema_vertical *sv, const char *key,
                       size_t len);

#endif
