/*
 * Dead letters that sinks find after validation (an entity a context broker
 * refused, reason "ngsi_rejected") travel through the journal like messages,
 * so that the one dead-letter store (PostgreSQL's rejected_message, or the
 * file in the data directory) keeps them durably and exactly once, with
 * the original topic and payload bytes.
 *
 * They are journal records on the topic "$spotagent/dead/<reason>": no MQTT
 * subscription of the agent can deliver a '$' topic, so they never mix with
 * device messages. The sink that stores dead letters decodes them; the other
 * sinks skip them. Pure functions, any thread.
 */
#ifndef SPOT_DEAD_RECORD_H
#define SPOT_DEAD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spot/limits.h"
#include "journal.h"
#include "validate.h"

#define DEAD_RECORD_TOPIC_PREFIX "$spotagent/dead/"
/* The longest original topic a dead letter keeps. */
#define DEAD_RECORD_MAX_TOPIC_LEN (SPOT_MAX_TOPIC_LEN * 100)

struct dead_record {
    enum reject_reason reason;
    const char *detail; /* not NUL-terminated */
    size_t detail_len;
    const char *topic; /* original topic */
    size_t topic_len;
    const unsigned char *payload; /* original payload bytes */
    size_t payload_len;
    int64_t received_us; /* original receive time */
};

/* Appends a dead letter to the journal: waiting for space within the
 * journal's bound when bounded (like journal_append: the MQTT callback),
 * else never waiting (a sink, which is what frees space). Returns SPOT_OK,
 * SPOT_ETOOBIG, SPOT_ENOMEM or SPOT_EIO. */
int dead_record_append(struct journal *j, const struct dead_record *d,
                       bool bounded);

/* 1 when the journal entry is a dead letter (its topic has the prefix). */
int dead_record_is(const struct journal_entry *e);

/* Decodes a dead letter; the result borrows from e. Returns SPOT_OK or
 * SPOT_ECORRUPT. */
int dead_record_decode(const struct journal_entry *e, struct dead_record *out);

#endif
