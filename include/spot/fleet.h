/*
 * The fleet simulator behind spotsim: N simulated devices (each with its
 * own prefix /{apikey}/{device}, verticals and period) on the device core's
 * parts - simulated sensors, the message encoder, store-and-forward spools
 * and publishers - with time acceleration, a target message rate, fault
 * injection and a summary of what was sent, so that tests can compare it
 * with what landed. Devices share one MQTT connection, a few, or have one
 * each (spotsim --connections / --shared-connection).
 *
 * Threads: fleet_run on one thread (the generator); each connection's
 * publisher runs its own. fleet_get_summary after fleet_run returned.
 */
#ifndef SPOT_FLEET_H
#define SPOT_FLEET_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "spot/device_limits.h"
#include "spot/fault.h"
#include "spot/mqtt_config.h"
#include "spot/schema.h"
#include "spot/vertical.h"

struct fleet;

struct fleet_opts {
    const struct mqtt_config *mqtt;   /* validated; borrowed (prefix unused) */
    const struct schema_set *schemas; /* borrowed */
    long devices;
    const char *apikey;        /* base apikey of every device */
    const char *device_prefix; /* device ids: {prefix}{index, 4+ digits} */
    unsigned verticals;        /* bit (1u << v) per vertical */
    bool vertical_mix;         /* each device a seeded subset of them */
    long periods[SPOT_SIM_MAX_PERIODS_LIST]; /* minutes; per device, seeded */
    size_t n_periods;
    double speed;      /* simulated seconds per real second (speed mode) */
    int64_t start_s;   /* simulated start time */
    double rate;       /* > 0: messages per second, paced; < 0: as fast as
                          the publishers take them; 0: speed mode */
    double duration_s; /* generate for this long (real seconds); 0: no
                          limit */
    uint64_t count;    /* stop after this many messages; 0: no limit */
    struct fault_opts faults;
    uint64_t seed;
    double failure_rate;   /* sensors: probability of a null reading */
    int connections;       /* 0: one per device */
    int window;            /* per connection */
    const char *spool_dir; /* NULL: a temporary directory, removed */
    long spool_kb;         /* bound per connection */
    int fsync_ms;          /* spools: -1 never (default) */
    double drain_s;        /* after generation: wait for acknowledgements */
};

/* What was sent, and what the agent should therefore store and reject. */
struct fleet_summary {
    double elapsed_s;   /* generation */
    double drain_s;     /* waiting for the last acknowledgements */
    uint64_t periods;   /* device periods measured */
    uint64_t generated; /* messages appended to the spools */
    uint64_t delivered; /* acknowledged by the broker (QoS 0: written) */
    uint64_t pending;   /* still queued at exit (not delivered) */
    uint64_t dropped;   /* oldest dropped by a full spool */
    uint64_t failures;  /* could not be encoded or spooled */
    uint64_t connects, losses;
    uint64_t per_vertical[SPOT_V_COUNT]; /* messages, all kinds */
    uint64_t rows[SPOT_V_COUNT];         /* expected rows (valid + range) */
    uint64_t faults[FAULT_COUNT];        /* messages per fault (burst: messages
                                            sent in bursts) */
    uint64_t nulls;                      /* fields sent as null */
};

int fleet_new(struct fleet **out, const struct fleet_opts *o);

/* Generates until the duration or count is reached or *stop becomes
 * non-zero, then waits for the acknowledgements (up to drain_s, or until
 * *stop passes 1) and disconnects. Returns SPOT_OK, or SPOT_EAGAIN when
 * messages were left undelivered. */
int fleet_run(struct fleet *f, volatile sig_atomic_t *stop);

void fleet_get_summary(struct fleet *f, struct fleet_summary *out);

/* Removes a temporary spool directory; frees. */
void fleet_free(struct fleet *f);

/* The summary as one JSON object (fleet_summary.c). */
int fleet_summary_write_json(const struct fleet_summary *s,
                             const struct fleet_opts *o,
                             const struct schema_set *schemas, FILE *out);
/* The summary for people, a few lines. */
void fleet_summary_print(const struct fleet_summary *s,
                         const struct fleet_opts *o, FILE *out);

#endif
