/*
 * Decodes and validates one journaled MQTT message into a struct record:
 * topic grammar, apikey policy, size cap, JSON syntax (yajl callback parser:
 * UTF-8, depth cap, finite numbers, duplicate keys), then the vertical's
 * schema (mandatory fields, types, null, TimeInstant, ranges). Unknown
 * fields are kept as a JSON object in extra_json.
 *
 * A struct validator is used by one thread at a time; each sink owns one.
 * The record it returns is borrowed until the next validator_run().
 */
#ifndef SPOT_VALIDATE_H
#define SPOT_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spot/limits.h"
#include "spot/schema.h"
#include "groups.h"

/* Rejection reasons: the contract's names, in this order. */
enum reject_reason {
    REJECT_NONE,
    REJECT_TOPIC,
    REJECT_UNKNOWN_APIKEY,
    REJECT_TOO_LARGE,
    REJECT_JSON,
    REJECT_SCHEMA,
    REJECT_RANGE,
    REJECT_NGSI,
    REJECT_COUNT,
};

/* "topic", "unknown_apikey", "too_large", "json", "schema", "range",
 * "ngsi_rejected"; "" for REJECT_NONE. */
const char *reject_reason_name(enum reject_reason r);

enum value_kind {
    VALUE_ABSENT,  /* field not in the message: hardware not fitted */
    VALUE_NULL,    /* JSON null, or a value outside its range (see below) */
    VALUE_NUMBER,  /* number: .text (the JSON text as sent, exact) and
                      .number (within 2 ulp of it; exactly strtod's value
                      of .text when .number_exact) */
    VALUE_INTEGER, /* integral number: .integer (and .number, .text) */
    VALUE_TEXT,    /* string, unescaped: .text/.text_len (NUL-terminated) */
    VALUE_BOOL,    /* "true"/"false" text: .boolean */
    VALUE_TIME,    /* datetime: .time_us and .text (normalised
                      YYYY-MM-DDThh:mm:ss.ffffffZ) */
};

struct value {
    enum value_kind kind;
    bool out_of_range; /* the message had a value outside its physical
                          range; kind is VALUE_NULL */
    double number;
    bool number_exact; /* .number is the correctly rounded .text */
    long long integer;
    bool boolean;
    int64_t time_us;
    const char *text;
    size_t text_len;
};

struct record {
    enum spot_vertical vertical;
    const struct schema_vertical *schema; /* NULL for generic devices */
    const struct group *group;            /* NULL when no groups configured */
    const char *apikey;                   /* base apikey, NUL-terminated */
    const char *device_id;                /* base device id */
    const char *full_device_id;           /* second topic level as sent */
    int64_t time_instant_us;       /* TimeInstant; received_us when a generic
                                      message has none */
    const char *time_instant_text; /* normalised, as in VALUE_TIME */
    int64_t received_us;
    struct value values[SPOT_MAX_SCHEMA_FIELDS]; /* by schema field index */
    const char *extra_json; /* JSON object of fields the schema does not
                               list (generic: all fields), or NULL */
    size_t extra_len;
    /* REJECT_NONE: valid. REJECT_RANGE: valid but some values were out of
     * range and are VALUE_NULL: store the row AND dead-letter the message.
     * Anything else: no row; dead-letter only. */
    enum reject_reason reason;
    char detail[SPOT_MAX_DETAIL_LEN];
};

struct validator;

/* schemas and groups are borrowed and must outlive the validator. */
int validator_new(struct validator **out, const struct schema_set *schemas,
                  const struct groups *groups);
void validator_free(struct validator *v);

/* Swaps the groups (after a configuration reload). Borrowed. */
void validator_set_groups(struct validator *v, const struct groups *groups);

/* Decodes one message. Always returns a record (borrowed until the next
 * call) whose reason says whether it is valid; returns SPOT_OK, or
 * SPOT_ENOMEM. */
int validator_run(struct validator *v, const char *topic, size_t topic_len,
                  const unsigned char *payload, size_t payload_len,
                  int64_t received_us, const struct record **out);

/* Parses a strict ISO 8601 UTC date-time ("YYYY-MM-DDThh:mm:ss[.f{1,9}]Z")
 * into µs since the epoch. Returns SPOT_OK or SPOT_EINVAL. */
int validate_parse_time(const char *s, size_t len, int64_t *out_us);

/* Writes t as "YYYY-MM-DDThh:mm:ss.ffffffZ" (28 bytes with the NUL). */
void validate_format_time(int64_t t_us, char out[32]);

#endif
