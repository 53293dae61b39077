/*
 * Fault injection of the fleet simulator (spotsim --fault): which faults,
 * how often, and the deterministic draw that decides, per message, whether
 * one applies. The kinds map to what the agent must do with the message:
 * malformed JSON (rejected "json"), a wrong type (rejected "schema"), a
 * wrong topic (rejected "topic"), a value out of range (stored with the
 * field null and dead-lettered "range"), a duplicate (stored once), a
 * burst (a device sends many periods at once; all valid). Pure functions
 * over their arguments: any thread.
 */
#ifndef SPOT_FAULT_H
#define SPOT_FAULT_H

#include <stddef.h>
#include <stdint.h>

enum fault_kind {
    FAULT_MALFORMED,
    FAULT_WRONG_TYPE,
    FAULT_WRONG_TOPIC,
    FAULT_RANGE,
    FAULT_DUPLICATE,
    FAULT_BURST,
    FAULT_COUNT,
    FAULT_NONE = FAULT_COUNT,
};

#define FAULT_DEFAULT_BURST 20

struct fault_opts {
    double p[FAULT_COUNT]; /* probability per message (burst: per device
                              period) */
    long burst_size;       /* periods sent at once by a burst */
};

/* "malformed", "wrong-type", "wrong-topic", "range", "duplicate", "burst". */
const char *fault_name(enum fault_kind k);

/* Parses "malformed=0.01,wrong-type=0.02,burst=0.001,burst-size=50" over
 * o (kinds not named keep their value). Returns SPOT_OK or SPOT_EINVAL
 * with the reason in why. */
int fault_parse(const char *spec, struct fault_opts *o, char *why,
                size_t whylen);

/* The corrupting fault (malformed, wrong-type, wrong-topic, range) of one
 * message, or FAULT_NONE; key identifies the message. At most one applies
 * (their probabilities add up, at most 1). */
enum fault_kind fault_draw(const struct fault_opts *o, uint64_t seed,
                           uint64_t key);

/* Whether the message identified by key is sent twice / the period starts
 * a burst. */
int fault_duplicate(const struct fault_opts *o, uint64_t seed, uint64_t key);
int fault_burst(const struct fault_opts *o, uint64_t seed, uint64_t key);

#endif
