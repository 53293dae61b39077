/*
 * The device's MQTT publisher: one Paho MQTTAsync client (MQTT 3.1.1,
 * clean session, keep-alive, Last Will, user name and password, TLS with
 * host verification, WebSocket) that sends the spool's messages in order.
 * At most `window` messages are in flight; a QoS 1 or 2 message leaves the
 * spool only once the broker acknowledged it (QoS 0: once handed to the
 * socket). When the connection is lost the client is destroyed, everything
 * unacknowledged is sent again from the spool's head after a reconnect
 * with exponential back-off, so the broker sees the messages in order
 * (with at-least-once duplicates after a loss). Design:
 * docs/internals/spool.md, "The sender".
 *
 * Threads: the publisher runs its own thread; Paho's callbacks only mark
 * acknowledgements and state under one mutex. Every function may be called
 * from any thread except publisher_free (after publisher_stop).
 */
#ifndef SPOT_PUBLISHER_H
#define SPOT_PUBLISHER_H

#include <stdbool.h>
#include <stdint.h>

#include "spot/mqtt_config.h"
#include "spot/spool.h"

struct publisher;

struct publisher_opts {
    const struct mqtt_config *mqtt; /* validated; borrowed, outlives p */
    const char *client_id;          /* copied */
    struct spool *spool;            /* borrowed, outlives p */
    int window;                     /* 1..SPOT_DEVICE_MAX_WINDOW */
    const char *tls_dir; /* where inline PEM resources are written for
                            Paho (mode 0600); copied; may be NULL when the
                            PEM resources are file paths */
};

struct publisher_stats {
    uint64_t sent;        /* handed to Paho (again after a loss) */
    uint64_t acked;       /* acknowledged (QoS 0: written) */
    uint64_t connects;    /* successful connections */
    uint64_t losses;      /* connections lost or refused */
    uint64_t send_errors; /* MQTTAsync_sendMessage refused */
    bool connected;       /* resource 17 */
};

/* Validates options and builds the Paho URI; does not connect. Returns
 * SPOT_OK, SPOT_EINVAL, SPOT_EIO (a PEM could not be written), SPOT_ENOMEM. */
int publisher_new(struct publisher **out, const struct publisher_opts *o);

/* Starts the thread; it connects when resource 0 (enable) is true. */
int publisher_start(struct publisher *p);

/* Wakes the sender after messages were appended to the spool. */
void publisher_notify(struct publisher *p);

/* Waits until the spool holds nothing unacknowledged, or timeout_ms.
 * Returns SPOT_OK or SPOT_EAGAIN (time out). */
int publisher_drain(struct publisher *p, int timeout_ms);

/* Stops the thread: a clean DISCONNECT (so the broker does not publish the
 * Last Will), then the client is destroyed. What was not acknowledged stays
 * in the spool. Accepts a publisher never started. */
void publisher_stop(struct publisher *p);

void publisher_free(struct publisher *p);

/* Resource 17: true once connected to the broker. */
bool publisher_connected(struct publisher *p);

void publisher_get_stats(struct publisher *p, struct publisher_stats *out);

#endif
