/*
 * The device's MQTT client configuration: the resources 0-17 of the LwM2M
 * object "MQTT Client Configuration" (wire contract §4), with the same ids,
 * names, ranges and defaults, as one table. Values are set one by one
 * (type-checked), then validated whole: every range, the transport / URL
 * scheme rule, the CA required for transports 2 and 4, the key required
 * with a client certificate, the Last Will fields, the topic prefix.
 *
 * A struct mqtt_config is a plain value filled by one thread; once
 * validated, any thread may read it. Strings are owned by the struct.
 */
#ifndef SPOT_MQTT_CONFIG_H
#define SPOT_MQTT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "spot/config_report.h"

enum mqtt_res {
    MQTT_RES_ENABLE = 0,
    MQTT_RES_TRANSPORT = 1,
    MQTT_RES_SERVER = 2,
    MQTT_RES_PORT = 3,
    MQTT_RES_KEEP_ALIVE = 4,
    MQTT_RES_LWT_TOPIC = 5,
    MQTT_RES_LWT_QOS = 6,
    MQTT_RES_LWT_RETAIN = 7,
    MQTT_RES_LWT_MESSAGE = 8,
    MQTT_RES_RESERVED = 9,
    MQTT_RES_USERNAME = 10,
    MQTT_RES_PASSWORD = 11,
    MQTT_RES_CA = 12,
    MQTT_RES_CERT = 13,
    MQTT_RES_KEY = 14,
    MQTT_RES_QOS = 15,
    MQTT_RES_PREFIX = 16,
    MQTT_RES_STATUS = 17,
    MQTT_RES_COUNT = 18,
};

enum mqtt_transport {
    MQTT_TRANSPORT_TCP = 1,
    MQTT_TRANSPORT_TLS = 2,
    MQTT_TRANSPORT_WS = 3,
    MQTT_TRANSPORT_WSS = 4,
};

enum mqtt_res_type {
    MQTT_RES_BOOL,
    MQTT_RES_INT,
    MQTT_RES_STRING,
    MQTT_RES_NONE, /* reserved (9) and read-only (17): never set */
};

/* One row of the resource table. */
struct mqtt_res_def {
    int id;
    const char *name; /* file key, e.g. "keep_alive" */
    enum mqtt_res_type type;
    long min, max;     /* MQTT_RES_INT */
    const char *deflt; /* the default, as text, or NULL ("none") */
    bool secret;       /* never printed */
    const char *help;
};

struct mqtt_config {
    bool enable;
    long transport;
    char *server;
    long port;
    long keep_alive;
    char *lwt_topic;
    long lwt_qos;
    bool lwt_retain;
    char *lwt_message;
    char *username;
    char *password;
    char *ca;   /* PEM text, or the path of a PEM file (spot/pem.h) */
    char *cert; /* idem */
    char *key;  /* idem */
    long qos;
    char *topic_prefix;         /* NULL: the device default */
    bool given[MQTT_RES_COUNT]; /* set explicitly rather than defaulted */
};

/* The definition of resource id, or NULL. */
const struct mqtt_res_def *mqtt_res_def(int id);
/* The id of a key: a decimal id ("4") or a name ("keep_alive"); -1. */
int mqtt_res_find(const char *key, size_t len);

/* Fills c with the defaults of §4. Returns SPOT_OK or SPOT_ENOMEM. */
int mqtt_config_init(struct mqtt_config *c);
/* Frees the strings; c may be reused after mqtt_config_init(). */
void mqtt_config_clear(struct mqtt_config *c);

/* Setters by id. They check the JSON-level type only (a string for a
 * string resource...), so that validation reports every range problem at
 * once. Return SPOT_OK, SPOT_EINVAL (wrong type, reserved, read-only;
 * reported in r), SPOT_ENOMEM. value is copied. */
int mqtt_config_set_bool(struct mqtt_config *c, int id, bool value,
                         struct config_report *r);
int mqtt_config_set_int(struct mqtt_config *c, int id, long long value,
                        struct config_report *r);
int mqtt_config_set_string(struct mqtt_config *c, int id, const char *value,
                           struct config_report *r);

/* Validates the whole configuration; default_device is the device id of
 * the default topic prefix. PEM files are read and checked with OpenSSL.
 * Returns SPOT_OK or SPOT_ECONFIG; errors and warnings go to r. */
int mqtt_config_validate(const struct mqtt_config *c,
                         const char *default_device, struct config_report *r);

/* The URI Paho connects to: tcp://, ssl://, ws:// or wss://, the host of
 * resource 2, the port of resource 3 and the path of a WebSocket URL.
 * Returns SPOT_OK, SPOT_EINVAL (the server URL does not parse),
 * SPOT_ETOOBIG. */
int mqtt_config_paho_uri(const struct mqtt_config *c, char *buf, size_t len);

/* The user name and password to connect with: resources 10/11, else the
 * URL's user info. Pointers into c or into url (which the caller keeps
 * alive); NULL when none. */
struct mqtt_url;
void mqtt_config_credentials(const struct mqtt_config *c,
                             const struct mqtt_url *url, const char **user,
                             const char **password);

/* "TCP", "TLS", "WebSocket", "WebSocket over TLS". */
const char *mqtt_transport_name(long transport);

#endif
