/*
 * stdout sink, active when no other sink is configured (contract §2): one
 * JSON object per accepted message on standard output, the NGSI-v2 entity
 * that would be sent, so spotagent alone is a live, validating viewer of a
 * broker. Its journal cursor is "stdout". It may also be the dead-letter
 * store (file in the data directory).
 *
 * new/start/stop/free from the main thread.
 */
#ifndef SPOT_STDOUT_SINK_H
#define SPOT_STDOUT_SINK_H

#include <stdbool.h>

#include "devices.h"
#include "groups.h"
#include "journal.h"
#include "metrics.h"
#include "ngsi_encode.h"
#include "spot/schema.h"

struct stdout_sink_options {
    enum ngsi_mapping mapping; /* of the printed NGSI-v2 entities */
    bool record_rejects;       /* this sink is the dead-letter store */
    const char *data_dir;      /* where dead letters go then; borrowed */
};

struct stdout_sink;

/* Borrowed: journal, schemas, groups, devices, metrics. */
int stdout_sink_new(struct stdout_sink **out,
                    const struct stdout_sink_options *o,
                    struct journal *journal, const struct schema_set *schemas,
                    const struct groups *groups, const struct devices *devices,
                    struct metrics *metrics);
int stdout_sink_start(struct stdout_sink *s);
void stdout_sink_stop(struct stdout_sink *s);
void stdout_sink_free(struct stdout_sink *s);
struct activity;
/* Recent rejects go to a (borrowed, may be NULL); before start. */
void stdout_sink_set_activity(struct stdout_sink *s, struct activity *a);

#endif
