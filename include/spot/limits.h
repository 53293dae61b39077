/*
 * Every size, depth, queue and retry cap of the project, in one place.
 * Hitting one of these is a counted, logged outcome, never a crash.
 */
#ifndef SPOT_LIMITS_H
#define SPOT_LIMITS_H

/* MQTT topic: "/" apikey "/" device "/attrs"; NGSI ids are <= 256 chars. */
#define SPOT_MAX_TOPIC_LEN 600
#define SPOT_MAX_ID_LEN    256

/* A Smart Spot message is a few hundred bytes; anything above is hostile. */
#define SPOT_MAX_PAYLOAD_LEN (64 * 1024)
/* Nesting of JSON containers inside the top-level object (extra fields). */
#define SPOT_MAX_JSON_DEPTH 16
/* The largest payload the journal keeps; larger ones are truncated and
 * rejected as too_large. */
#define SPOT_MAX_JOURNAL_PAYLOAD (1024 * 1024)
/* Fields one vertical schema may declare. */
#define SPOT_MAX_SCHEMA_FIELDS 40
/* Human-readable rejection detail, including the terminating NUL. */
#define SPOT_MAX_DETAIL_LEN 256

/* Journal: segment size, record cap, default bound of the whole journal. */
#define SPOT_JOURNAL_SEGMENT_BYTES    (64u * 1024u * 1024u)
#define SPOT_JOURNAL_DEFAULT_MAX_MB   1024
#define SPOT_JOURNAL_DEFAULT_FSYNC_MS 100

/* Sinks: rows per database transaction, back-off bounds in milliseconds. */
#define SPOT_PG_BATCH_ROWS     5000
#define SPOT_BACKOFF_MIN_MS    100
#define SPOT_BACKOFF_MAX_MS    30000
#define SPOT_SHUTDOWN_DRAIN_MS 5000

/* PostgreSQL sink: how long a batch that is not full waits for more
 * records (ms), checking every slice (ms) that some came; batches sent by
 * INSERT after COPY met a duplicate; how often the journal cursor's
 * checkpoint file follows the database's (ms). */
#define SPOT_PG_BATCH_LINGER_MS    250
#define SPOT_PG_BATCH_SLICE_MS     10
#define SPOT_PG_COPY_PAUSE_BATCHES 64
#define SPOT_PG_JOURNAL_COMMIT_MS  1000

/* MQTT reconnect back-off, seconds (Paho's automatic reconnect). */
#define SPOT_MQTT_RETRY_MIN_S 1
#define SPOT_MQTT_RETRY_MAX_S 30
#define SPOT_MQTT_MAX_TOPICS  8

/* Configuration file size, and nesting of its JSON (deeper files are
 * refused before a tree is built: yajl's tree recurses per level). */
#define SPOT_MAX_CONFIG_BYTES (1024 * 1024)
#define SPOT_MAX_CONFIG_DEPTH 64
/* Nesting of a JSON body a peer (an NGSI broker) answers with. */
#define SPOT_MAX_RESPONSE_DEPTH 64

#endif
