/*
 * The operations endpoint (contract §5, --http-listen): GET /health,
 * /ready, /metrics, /version, and a small self-refreshing status page at /
 * (plain HTML, no external assets) with its data at /status.json. Served
 * by libmicrohttpd's internal polling thread; handlers only read
 * lock-free metrics and the activity module, and ask the agent's state
 * through the callbacks below (which must be cheap and thread-safe).
 *
 * new/free from the main thread.
 */
#ifndef SPOT_ADMIN_HTTP_H
#define SPOT_ADMIN_HTTP_H

#include <stddef.h>

#include <stdint.h>

#include "activity.h"
#include "metrics.h"

/* What the endpoint asks the running agent. */
struct admin_view {
    void *ctx;
    /* 1 while connected to the broker and subscribed. */
    int (*mqtt_connected)(void *ctx);
    /* Number of enabled sinks; fills names (sink_name()) and readiness. */
    size_t (*sinks)(void *ctx, enum sink_id *ids, int *ready, size_t max);
    /* 1 while the threads make progress (main loop and sinks alive). */
    int (*alive)(void *ctx);
    /* The journal: its bytes, bound, and whether the file system refuses
     * appends; returns 1 while it is full. Full or failing, the agent
     * takes no message: not ready. */
    int (*journal)(void *ctx, uint64_t *bytes, uint64_t *max_bytes,
                   int *failing);
};

struct admin_http;

/* listen is "host:port" (validated by config). metrics, activity and view
 * are borrowed. Returns SPOT_OK, SPOT_EIO (cannot bind: the message says
 * why) or SPOT_ENOMEM (SPOT_EINVAL: listen does not parse, see below).
 * activity may be NULL (the page then shows no devices or rejects); a NULL
 * callback in view counts as "yes" (alive), the metrics' broker gauge
 * (mqtt_connected), no sink (sinks) or a journal with room (journal). */
int admin_http_new(struct admin_http **out, const char *listen,
                   struct metrics *metrics, struct activity *activity,
                   const struct admin_view *view);
void admin_http_free(struct admin_http *h);

/* Splits listen ("host:port", "[ipv6]:port") into host and port, the port
 * a number in 1..65535 and an IPv6 host in brackets. For config
 * validation too. Returns SPOT_OK or SPOT_EINVAL. Any thread. */
int admin_http_parse_listen(const char *listen, char *host, size_t hostlen,
                            char *port, size_t portlen);

#endif
