/*
 * MQTT ingress: a Paho MQTTAsync client (MQTT 3.1.1, clean session off,
 * stable client id, automatic reconnect) subscribed to the configured
 * filters at the configured QoS. Each message is appended to the journal
 * inside Paho's messageArrived callback, before it returns: Paho sends the
 * PUBACK only after the callback returns, so an acknowledged message is
 * always journaled. Reconnect design: docs/internals/reconnect.md.
 *
 * new/start/stop/free from the main thread; is_connected from any thread.
 * The callbacks run on Paho's single library thread.
 */
#ifndef SPOT_MQTT_INGRESS_H
#define SPOT_MQTT_INGRESS_H

#include "config.h"
#include "journal.h"
#include "metrics.h"

struct ingress;

/* cfg, journal and metrics are borrowed and must outlive the ingress. */
int ingress_new(struct ingress **out, const struct agent_config *cfg,
                struct journal *journal, struct metrics *metrics);
/* Starts connecting; returns at once (the first connection is retried with
 * back-off until it succeeds or ingress_stop is called). */
int ingress_start(struct ingress *in);
/* Stops taking messages: disconnects (the broker keeps the session and
 * queues new messages) and waits for the callback thread to be idle.
 * When the callback is stuck on a journal that refuses appends (disk
 * full) for longer than SPOT_SHUTDOWN_DRAIN_MS, it gives up instead:
 * ingress_abandoned() is then 1, and the caller must end the process
 * without freeing the ingress or the journal (the message in hand was not
 * acknowledged: the broker delivers it again). */
void ingress_stop(struct ingress *in);
int ingress_abandoned(const struct ingress *in);
void ingress_free(struct ingress *in);
int ingress_is_connected(const struct ingress *in);
struct activity;
void ingress_set_activity(struct ingress *in, struct activity *a);

#endif
