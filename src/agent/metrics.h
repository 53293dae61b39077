/*
 * Process-wide counters, gauges and histograms of the contract §5, updated
 * lock-free (C11 atomics) from any thread and rendered in the Prometheus
 * text format. One struct metrics per process, owned by main.
 */
#ifndef SPOT_METRICS_H
#define SPOT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "spot/vertical.h"
#include "validate.h"

enum sink_id { SINK_PG, SINK_ORION, SINK_NGSI_LD, SINK_STDOUT, SINK_COUNT };

/* "pg", "orion", "ngsi_ld", "stdout". */
const char *sink_name(enum sink_id s);

/* Label value for messages whose topic did not parse. */
#define METRICS_VERTICAL_UNKNOWN (SPOT_V_GENERIC + 1)

struct metrics;

int metrics_new(struct metrics **out);
void metrics_free(struct metrics *m);

/* vertical: an enum spot_vertical, SPOT_V_GENERIC or
 * METRICS_VERTICAL_UNKNOWN. */
void metrics_received(struct metrics *m, int vertical);
void metrics_rejected(struct metrics *m, enum reject_reason r);
void metrics_sink_writes(struct metrics *m, enum sink_id s, uint64_t n);
void metrics_sink_error(struct metrics *m, enum sink_id s);
void metrics_sink_backlog(struct metrics *m, enum sink_id s, uint64_t n);
void metrics_mqtt_connected(struct metrics *m, int connected);
/* The journal's size and bound; full: 1 while it is at its bound;
 * failing: 1 while the file system refuses appends (disk full). Either
 * way the ingress waits and the broker queues. Gauges
 * spotagent_journal_bytes, spotagent_journal_max_bytes,
 * spotagent_journal_full, spotagent_journal_failing. */
void metrics_journal(struct metrics *m, uint64_t bytes, uint64_t max_bytes,
                     int full, int failing);
/* Records one message confirmed by sink s, received at received_us. */
void metrics_latency(struct metrics *m, enum sink_id s, int64_t received_us,
                     int64_t confirmed_us);

uint64_t metrics_get_received(const struct metrics *m, int vertical);
uint64_t metrics_get_rejected(const struct metrics *m, enum reject_reason r);
uint64_t metrics_get_sink_writes(const struct metrics *m, enum sink_id s);

/* Renders every metric in the Prometheus text format into a malloc'd,
 * NUL-terminated buffer (caller frees). Returns SPOT_OK or SPOT_ENOMEM. */
int metrics_render(const struct metrics *m, char **out, size_t *len);

/* Added for the status page (admin_http.c): the remaining per-sink values
 * and the broker gauge, read without locks. */
uint64_t metrics_get_sink_errors(const struct metrics *m, enum sink_id s);
uint64_t metrics_get_sink_backlog(const struct metrics *m, enum sink_id s);
int metrics_get_mqtt_connected(const struct metrics *m);

/* Liveness: each sink thread calls metrics_heartbeat() once per loop turn;
 * metrics_heartbeat_age_ms() says how long ago (monotonic ms), or -1 when
 * the sink never beat. */
void metrics_heartbeat(struct metrics *m, enum sink_id s);
int64_t metrics_heartbeat_age_ms(const struct metrics *m, enum sink_id s);

#endif
