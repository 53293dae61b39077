/*
 * Every size, queue, window and retry cap of the device side (spotdevice,
 * spotsim and the publisher library), in one place. The shared caps (topic
 * and payload lengths) stay in spot/limits.h. Hitting one of these is a
 * counted, logged outcome, never a crash.
 */
#ifndef SPOT_DEVICE_LIMITS_H
#define SPOT_DEVICE_LIMITS_H

#include "spot/limits.h"

/* --- store-and-forward spool (docs/internals/spool.md) ------------------ */

/* Default bound of a device's spool on disk, KiB (16 MiB: ~50,000 Smart
 * Spot messages, a week of one device offline at a 5-minute period). */
#define SPOT_SPOOL_DEFAULT_KB 16384
/* Smallest and largest accepted bounds, KiB. */
#define SPOT_SPOOL_MIN_KB 16
#define SPOT_SPOOL_MAX_KB (16 * 1024 * 1024)
/* A segment is this fraction of the bound: dropping the oldest segment
 * when full drops at most 1/8 of the queue. */
#define SPOT_SPOOL_SEGMENTS 8
/* Largest record: header, topic and a maximal message. */
#define SPOT_SPOOL_MAX_RECORD                                                  \
    (32 + SPOT_MAX_TOPIC_LEN + SPOT_DEVICE_MAX_MESSAGE)
/* Read-ahead of the sender and of the recovery scan. */
#define SPOT_SPOOL_READ_CHUNK (64 * 1024)
/* The head (first unacknowledged record) is written to disk at most this
 * often; a crash resends at most this much of what was acknowledged. */
#define SPOT_SPOOL_HEAD_WRITE_MS 100
/* Default fsync interval of spotdevice's spool (0: every message). */
#define SPOT_SPOOL_DEFAULT_FSYNC_MS 1000
#define SPOT_SPOOL_MAX_FSYNC_MS     3600000

/* --- messages --------------------------------------------------------------
 */

/* Largest message the device encoder produces (a Smart Spot message is a
 * few hundred bytes; dev with four 256-byte texts stays under 2 KiB). */
#define SPOT_DEVICE_MAX_MESSAGE 8192
/* Text bytes one reading may hold (all its text fields together). */
#define SPOT_DEVICE_READING_TEXT 2048
/* Per-visitor (cfe) messages one device emits per sampling period. */
#define SPOT_DEVICE_MAX_VISITORS 256
/* Sampling period, minutes (the schemas' range of `period`). */
#define SPOT_DEVICE_MIN_PERIOD_MIN 1
#define SPOT_DEVICE_MAX_PERIOD_MIN 10080
/* Periods a device catches up at once after a stall (clock jump,
 * suspended process); older ones are skipped and counted. */
#define SPOT_DEVICE_MAX_CATCH_UP 10000

/* --- MQTT client configuration (wire contract §4) ---------------------------
 */

/* MQTT strings (topics, user name, password, will message) are at most
 * 65535 bytes on the wire. */
#define SPOT_DEVICE_MAX_MQTT_STRING 65535
/* A PEM resource (CA, certificate, key), inline or read from a file. */
#define SPOT_DEVICE_MAX_PEM (256 * 1024)
/* Host name, path and credentials inside the server URL. */
#define SPOT_DEVICE_MAX_HOST 253
#define SPOT_DEVICE_MAX_URL  1024
/* Errors and warnings one validation collects (text, bytes). */
#define SPOT_DEVICE_REPORT_BYTES 4096
/* The device configuration file. */
#define SPOT_DEVICE_MAX_CONFIG_BYTES (1024 * 1024)
/* Nesting of the configuration's JSON (deeper is refused before yajl
 * builds a tree, which recurses per level). */
#define SPOT_DEVICE_MAX_CONFIG_DEPTH 64

/* --- publisher
 * ---------------------------------------------------------------- */

/* Messages handed to Paho and not yet acknowledged (the send window). */
#define SPOT_DEVICE_DEFAULT_WINDOW 100
#define SPOT_DEVICE_MAX_WINDOW     10000
/* Reconnect back-off, milliseconds, doubling from MIN to MAX. */
#define SPOT_DEVICE_RETRY_MIN_MS      250
#define SPOT_DEVICE_RETRY_MAX_MS      30000
#define SPOT_DEVICE_CONNECT_TIMEOUT_S 10
/* SIGTERM: how long spotdevice keeps sending what is queued. */
#define SPOT_DEVICE_DRAIN_MS 5000
/* Acknowledgements Paho may report before the sender recorded the token. */
#define SPOT_DEVICE_EARLY_ACKS 64

/* --- fleet simulator (spotsim)
 * -------------------------------------------------- */

#define SPOT_SIM_MAX_DEVICES     100000
#define SPOT_SIM_MAX_CONNECTIONS 2000
/* In --rate mode the generator waits while a connection has this many
 * messages queued (back-pressure instead of dropping). */
#define SPOT_SIM_HIGH_WATER       20000
#define SPOT_SIM_MAX_BURST        10000
#define SPOT_SIM_MAX_PERIODS_LIST 16

#endif
