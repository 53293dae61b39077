/*
 * NGSI sink: forwards validated messages to a context broker, NGSI-v2
 * (Orion: POST /v2/op/update, actionType append) or NGSI-LD (POST
 * /ngsi-ld/v1/entityOperations/upsert?options=update), batched across
 * devices, over libcurl's multi interface (keep-alive, a bounded number of
 * connections, timeouts). One thread, one journal cursor ("orion" or
 * "ngsi_ld"), one validator, one encoder.
 *
 * Responses: 2xx advance the checkpoint; 400 splits the batch to isolate
 * the entity the broker refuses, which is dead-lettered (reason
 * "ngsi_rejected", the broker's error body in the detail) through the
 * journal (dead_record.h) while the rest is sent; 413 splits; 207 (LD)
 * retries only transient failures; 5xx, timeouts and refused connections
 * are retried with exponential back-off and jitter, for ever, the journal
 * holding the backlog.
 *
 * new/start/stop/free from the main thread; ngsi_sink_is_ready from any.
 */
#ifndef SPOT_NGSI_SINK_H
#define SPOT_NGSI_SINK_H

#include <stdbool.h>

#include "devices.h"
#include "groups.h"
#include "journal.h"
#include "metrics.h"
#include "ngsi_encode.h"
#include "spot/schema.h"

struct ngsi_sink_options {
    enum ngsi_flavour flavour;
    enum ngsi_mapping mapping;
    const char *url;        /* base URL, e.g. http://orion:1026; copied */
    const char *token;      /* access token, or NULL; copied */
    bool token_bearer;      /* send it as "Authorization: Bearer <token>"
                               instead of "X-Auth-Token: <token>" */
    const char *ca_file;    /* CA bundle for https, or NULL; copied */
    const char *ld_context; /* NGSI-LD @context URL for the Link header;
                               NULL: the core context; copied */
    bool record_rejects;    /* this sink is the dead-letter store (no
                               PostgreSQL sink): validation rejects and
                               dead-letter records go to the file store */
    const char *data_dir;   /* for the file dead-letter store; copied */
};

struct ngsi_sink;

/* Borrowed: journal, schemas, groups, devices, metrics. */
int ngsi_sink_new(struct ngsi_sink **out, const struct ngsi_sink_options *o,
                  struct journal *journal, const struct schema_set *schemas,
                  const struct groups *groups, const struct devices *devices,
                  struct metrics *metrics);
int ngsi_sink_start(struct ngsi_sink *s);
/* Finishes in-flight requests, drains for at most SPOT_SHUTDOWN_DRAIN_MS
 * while the broker answers, commits, joins the thread. */
void ngsi_sink_stop(struct ngsi_sink *s);
void ngsi_sink_free(struct ngsi_sink *s);
/* 1 while the broker answered GET /version (v2) or the LD probe recently. */
int ngsi_sink_is_ready(const struct ngsi_sink *s);

#endif
