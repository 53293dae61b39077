/*
 * The MQTT client configuration resources 0-17 (API: spot/mqtt_config.h):
 * the table of ids, names, types, ranges and defaults; typed setters; the
 * whole-configuration validation; the Paho URI. One thread fills a config;
 * validation and the getters only read it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/device_topic.h"
#include "spot/err.h"
#include "spot/mqtt_config.h"
#include "spot/mqtt_url.h"
#include "spot/pem.h"

static const struct mqtt_res_def defs[MQTT_RES_COUNT] = {
    {0, "enable", MQTT_RES_BOOL, 0, 0, "false", false,
     "enable the MQTT client"},
    {1, "transport", MQTT_RES_INT, 1, 4, "1", false,
     "1 TCP, 2 TLS, 3 WebSocket, 4 WebSocket over TLS"},
    {2, "server", MQTT_RES_STRING, 0, 0, "mqtt://iot.eclipse.org", false,
     "broker URL: mqtt:// (transports 1, 2), ws:// (3), wss:// (4); may "
     "carry user:password@"},
    {3, "port", MQTT_RES_INT, 1, 65535, "1883", false, "broker port"},
    {4, "keep_alive", MQTT_RES_INT, 20, 6000, "120", false,
     "keep-alive interval, seconds"},
    {5, "lwt_topic", MQTT_RES_STRING, 0, 0, NULL, false, "Last Will topic"},
    {6, "lwt_qos", MQTT_RES_INT, 0, 2, "0", false, "Last Will QoS"},
    {7, "lwt_retain", MQTT_RES_BOOL, 0, 0, "false", false,
     "Last Will retain flag"},
    {8, "lwt_message", MQTT_RES_STRING, 0, 0, NULL, false, "Last Will message"},
    {9, "reserved", MQTT_RES_NONE, 0, 0, NULL, false, "reserved"},
    {10, "username", MQTT_RES_STRING, 0, 0, NULL, false, "user name"},
    {11, "password", MQTT_RES_STRING, 0, 0, NULL, true, "password"},
    {12, "ca_certificate", MQTT_RES_STRING, 0, 0, NULL, false,
     "server CA certificate: PEM text or file; required for transports 2 "
     "and 4"},
    {13, "client_certificate", MQTT_RES_STRING, 0, 0, NULL, false,
     "client certificate: PEM text or file"},
    {14, "client_key", MQTT_RES_STRING, 0, 0, NULL, true,
     "client private key: PEM text or file; required with 13"},
    {15, "qos", MQTT_RES_INT, 0, 2, "1", false, "QoS of published data"},
    {16, "topic_prefix", MQTT_RES_STRING, 0, 0, NULL, false,
     "/{base_apikey}/{device_id}; default /" DEVICE_DEFAULT_APIKEY
     "/{serial_number}"},
    {17, "client_status", MQTT_RES_NONE, 0, 0, NULL, false,
     "read-only: true once connected to the broker"},
};

const struct mqtt_res_def *mqtt_res_def(int id)
{
    return id >= 0 && id < MQTT_RES_COUNT ? &defs[id] : NULL;
}

int mqtt_res_find(const char *key, size_t len)
{
    if (len > 0 && len <= 2 && key[0] >= '0' && key[0] <= '9') {
        int id = 0;
        for (size_t i = 0; i < len; i++) {
            if (key[i] < '0' || key[i] > '9')
                return -1;
            id = id * 10 + (key[i] - '0');
        }
        if (len == 2 && key[0] == '0')
            return -1;
        return id < MQTT_RES_COUNT ? id : -1;
    }
    for (int i = 0; i < MQTT_RES_COUNT; i++)
        if (strlen(defs[i].name) == len && memcmp(defs[i].name, key, len) == 0)
            return i;
    return -1;
}

const char *mqtt_transport_name(long transport)
{
    switch (transport) {
    case MQTT_TRANSPORT_TCP:
        return "TCP";
    case MQTT_TRANSPORT_TLS:
        return "TLS";
    case MQTT_TRANSPORT_WS:
        return "WebSocket";
    case MQTT_TRANSPORT_WSS:
        return "WebSocket over TLS";
    default:
        return "unknown";
    }
}

/* --- values
 * -------------------------------------------------------------------- */

static bool *bool_slot(struct mqtt_config *c, int id)
{
    switch (id) {
    case MQTT_RES_ENABLE:
        return &c->enable;
    case MQTT_RES_LWT_RETAIN:
        return &c->lwt_retain;
    default:
        return NULL;
    }
}

static long *int_slot(struct mqtt_config *c, int id)
{
    switch (id) {
    case MQTT_RES_TRANSPORT:
        return &c->transport;
    case MQTT_RES_PORT:
        return &c->port;
    case MQTT_RES_KEEP_ALIVE:
        return &c->keep_alive;
    case MQTT_RES_LWT_QOS:
        return &c->lwt_qos;
    case MQTT_RES_QOS:
        return &c->qos;
    default:
        return NULL;
    }
}

static char **string_slot(struct mqtt_config *c, int id)
{
    switch (id) {
    case MQTT_RES_SERVER:
        return &c->server;
    case MQTT_RES_LWT_TOPIC:
        return &c->lwt_topic;
    case MQTT_RES_LWT_MESSAGE:
        return &c->lwt_message;
    case MQTT_RES_USERNAME:
        return &c->username;
    case MQTT_RES_PASSWORD:
        return &c->password;
    case MQTT_RES_CA:
        return &c->ca;
    case MQTT_RES_CERT:
        return &c->cert;
    case MQTT_RES_KEY:
        return &c->key;
    case MQTT_RES_PREFIX:
        return &c->topic_prefix;
    default:
        return NULL;
    }
}

int mqtt_config_init(struct mqtt_config *c)
{
    memset(c, 0, sizeof *c);
    c->transport = MQTT_TRANSPORT_TCP;
    c->port = 1883;
    c->keep_alive = 120;
    c->qos = 1;
    c->server = strdup(defs[MQTT_RES_SERVER].deflt);
    return c->server ? SPOT_OK : SPOT_ENOMEM;
}

void mqtt_config_clear(struct mqtt_config *c)
{
    for (int i = 0; i < MQTT_RES_COUNT; i++) {
        char **s = string_slot(c, i);
        if (s) {
            free(*s);
            *s = NULL;
        }
    }
}

static const char *type_name(enum mqtt_res_type t)
{
    switch (t) {
    case MQTT_RES_BOOL:
        return "a boolean (true or false)";
    case MQTT_RES_INT:
        return "an integer";
    case MQTT_RES_STRING:
        return "a string";
    default:
        return "nothing";
    }
}

/* Common checks of the setters; returns the definition or NULL. */
static const struct mqtt_res_def *settable(int id, enum mqtt_res_type t,
                                           struct config_report *r)
{
    const struct mqtt_res_def *d = mqtt_res_def(id);
    if (d == NULL) {
        config_report_error(r, "no MQTT client resource %d", id);
        return NULL;
    }
    if (id == MQTT_RES_RESERVED) {
        config_report_error(r, "resource 9 is reserved and cannot be set");
        return NULL;
    }
    if (id == MQTT_RES_STATUS) {
        config_report_error(r, "resource 17 (client_status) is read-only: "
                               "the client reports it");
        return NULL;
    }
    if (d->type != t) {
        config_report_error(r, "resource %d (%s) must be %s", id, d->name,
                            type_name(d->type));
        return NULL;
    }
    return d;
}

int mqtt_config_set_bool(struct mqtt_config *c, int id, bool value,
                         struct config_report *r)
{
    if (settable(id, MQTT_RES_BOOL, r) == NULL)
        return SPOT_EINVAL;
    *bool_slot(c, id) = value;
    c->given[id] = true;
    return SPOT_OK;
}

int mqtt_config_set_int(struct mqtt_config *c, int id, long long value,
                        struct config_report *r)
{
    if (settable(id, MQTT_RES_INT, r) == NULL)
        return SPOT_EINVAL;
    *int_slot(c, id) = (long)value;
    c->given[id] = true;
    return SPOT_OK;
}

int mqtt_config_set_string(struct mqtt_config *c, int id, const char *value,
                           struct config_report *r)
{
    if (settable(id, MQTT_RES_STRING, r) == NULL)
        return SPOT_EINVAL;
    char *copy = strdup(value);
    if (copy == NULL)
        return SPOT_ENOMEM;
    char **slot = string_slot(c, id);
    free(*slot);
    *slot = copy;
    c->given[id] = true;
    return SPOT_OK;
}

/* --- validation
 * ------------------------------------------------------------------ */

static const char *name(int id)
{
    return defs[id].name;
}

static void check_range(const struct mqtt_config *c, int id, long v,
                        struct config_report *r)
{
    const struct mqtt_res_def *d = &defs[id];
    (void)c;
    if (v < d->min || v > d->max)
        config_report_error(r, "resource %d (%s): %ld is outside %ld..%ld", id,
                            d->name, v, d->min, d->max);
}

static void check_length(const char *s, int id, struct config_report *r)
{
    if (s && strlen(s) > SPOT_DEVICE_MAX_MQTT_STRING)
        config_report_error(r, "resource %d (%s) is longer than %d bytes", id,
                            name(id), SPOT_DEVICE_MAX_MQTT_STRING);
}

static const char *scheme_for(long transport)
{
    switch (transport) {
    case MQTT_TRANSPORT_TCP:
    case MQTT_TRANSPORT_TLS:
        return "mqtt";
    case MQTT_TRANSPORT_WS:
        return "ws";
    case MQTT_TRANSPORT_WSS:
        return "wss";
    default:
        return NULL;
    }
}

static bool uses_tls(long transport)
{
    return transport == MQTT_TRANSPORT_TLS || transport == MQTT_TRANSPORT_WSS;
}

static void check_server(const struct mqtt_config *c, struct config_report *r)
{
    struct mqtt_url u;
    char why[160];
    if (c->server == NULL || c->server[0] == '\0') {
        config_report_error(r, "resource 2 (server) is empty");
        return;
    }
    if (mqtt_url_parse(c->server, &u, why, sizeof why) != SPOT_OK) {
        config_report_error(r, "resource 2 (server): %s", why);
        return;
    }
    const char *want = scheme_for(c->transport);
    if (want && strcmp(u.scheme, want) != 0)
        config_report_error(r,
                            "resource 2 (server): transport %ld (%s) needs a "
                            "%s:// URL, not %s://",
                            c->transport, mqtt_transport_name(c->transport),
                            want, u.scheme);
    if (u.port >= 0)
        config_report_error(r,
                            "resource 2 (server): the port goes in resource 3 "
                            "(port), not in the URL");
    if (strcmp(u.scheme, "mqtt") == 0 && u.path[0] != '\0' &&
        strcmp(u.path, "/") != 0)
        config_report_error(r,
                            "resource 2 (server): an mqtt:// URL has no path "
                            "(only WebSocket URLs do)");
    if (u.has_user && c->given[MQTT_RES_USERNAME])
        config_report_error(r, "credentials are given twice: in the server "
                               "URL and in resource 10 (username)");
    if (u.has_password && c->given[MQTT_RES_PASSWORD])
        config_report_error(r, "credentials are given twice: in the server "
                               "URL and in resource 11 (password)");
}

static void check_lwt(const struct mqtt_config *c, struct config_report *r)
{
    bool topic = c->lwt_topic != NULL, message = c->lwt_message != NULL;
    if (topic && !message)
        config_report_error(r, "resource 8 (lwt_message) is required when 5 "
                               "(lwt_topic) is set");
    if (message && !topic)
        config_report_error(r, "resource 5 (lwt_topic) is required when 8 "
                               "(lwt_message) is set");
    if (!topic && (c->given[MQTT_RES_LWT_QOS] || c->given[MQTT_RES_LWT_RETAIN]))
        config_report_error(r, "resources 6 (lwt_qos) and 7 (lwt_retain) "
                               "need a Last Will: set 5 (lwt_topic) and 8 "
                               "(lwt_message)");
    if (topic) {
        if (c->lwt_topic[0] == '\0')
            config_report_error(r, "resource 5 (lwt_topic) is empty");
        else if (strpbrk(c->lwt_topic, "+#") != NULL)
            config_report_error(r, "resource 5 (lwt_topic): a topic to "
                                   "publish on may not hold the wildcards + "
                                   "or #");
    }
    check_length(c->lwt_topic, MQTT_RES_LWT_TOPIC, r);
    check_length(c->lwt_message, MQTT_RES_LWT_MESSAGE, r);
    check_range(c, MQTT_RES_LWT_QOS, c->lwt_qos, r);
}

static void check_credentials(const struct mqtt_config *c,
                              struct config_report *r)
{
    if (c->password && !c->username)
        config_report_error(r, "resource 11 (password) needs 10 (username): "
                               "MQTT 3.1.1 sends no password without a user "
                               "name");
    if (c->username && c->username[0] == '\0')
        config_report_error(r, "resource 10 (username) is empty");
    check_length(c->username, MQTT_RES_USERNAME, r);
    check_length(c->password, MQTT_RES_PASSWORD, r);
}

/* Loads a PEM resource; NULL (reported) when it cannot be read. */
static char *load_pem(const char *value, int id, size_t *len,
                      struct config_report *r)
{
    char *pem = NULL;
    char why[300];
    int rc = pem_load(value, &pem, len, why, sizeof why);
    if (rc == SPOT_ENOMEM)
        config_report_error(r, "resource %d (%s): out of memory", id, name(id));
    else if (rc != SPOT_OK)
        config_report_error(r, "resource %d (%s): %s", id, name(id), why);
    return rc == SPOT_OK ? pem : NULL;
}

static void check_tls(const struct mqtt_config *c, struct config_report *r)
{
    bool tls = uses_tls(c->transport);
    if (tls && c->ca == NULL)
        config_report_error(r,
                            "resource 12 (ca_certificate) is required for "
                            "transport %ld (%s)",
                            c->transport, mqtt_transport_name(c->transport));
    if (c->cert && !c->key)
        config_report_error(r, "resource 14 (client_key) is required when 13 "
                               "(client_certificate) is set");
    if (c->key && !c->cert)
        config_report_error(r, "resource 14 (client_key) is set but 13 "
                               "(client_certificate) is not");
    if (!tls && c->transport >= 1 && c->transport <= 4 &&
        (c->ca || c->cert || c->key))
        config_report_warn(r,
                           "resources 12-14 (certificates) are ignored: "
                           "transport %ld (%s) does not use TLS",
                           c->transport, mqtt_transport_name(c->transport));
    char why[300];
    size_t ca_len = 0, cert_len = 0, key_len = 0;
    char *ca = c->ca ? load_pem(c->ca, MQTT_RES_CA, &ca_len, r) : NULL;
    char *cert =
        c->cert ? load_pem(c->cert, MQTT_RES_CERT, &cert_len, r) : NULL;
    char *key = c->key ? load_pem(c->key, MQTT_RES_KEY, &key_len, r) : NULL;
    if (ca && pem_check_certs(ca, ca_len, why, sizeof why) != SPOT_OK)
        config_report_error(r, "resource 12 (ca_certificate): %s", why);
    bool cert_ok =
        cert && pem_check_certs(cert, cert_len, why, sizeof why) == SPOT_OK;
    if (cert && !cert_ok)
        config_report_error(r, "resource 13 (client_certificate): %s", why);
    bool key_ok =
        key && pem_check_key(key, key_len, why, sizeof why) == SPOT_OK;
    if (key && !key_ok)
        config_report_error(r, "resource 14 (client_key): %s", why);
    if (cert_ok && key_ok &&
        pem_check_pair(cert, cert_len, key, key_len, why, sizeof why) !=
            SPOT_OK)
        config_report_error(r, "resources 13/14: %s", why);
    free(ca);
    free(cert);
    free(key);
}

int mqtt_config_validate(const struct mqtt_config *c,
                         const char *default_device, struct config_report *r)
{
    int before = r->errors;
    check_range(c, MQTT_RES_TRANSPORT, c->transport, r);
    check_server(c, r);
    check_range(c, MQTT_RES_PORT, c->port, r);
    check_range(c, MQTT_RES_KEEP_ALIVE, c->keep_alive, r);
    check_lwt(c, r);
    check_credentials(c, r);
    check_tls(c, r);
    check_range(c, MQTT_RES_QOS, c->qos, r);
    struct device_topic t;
    char why[300];
    if (device_topic_init(&t, c->topic_prefix, default_device, why,
                          sizeof why) != SPOT_OK)
        config_report_error(r, "resource 16 (topic_prefix)%s: %s",
                            c->topic_prefix ? "" : " (the default)", why);
    if (!c->enable)
        config_report_warn(r, "resource 0 (enable) is false: the MQTT client "
                              "stays off and measurements wait in the "
                              "spool");
    return r->errors > before ? SPOT_ECONFIG : SPOT_OK;
}

int mqtt_config_paho_uri(const struct mqtt_config *c, char *buf, size_t len)
{
    struct mqtt_url u;
    char why[160];
    if (mqtt_url_parse(c->server, &u, why, sizeof why) != SPOT_OK)
        return SPOT_EINVAL;
    const char *scheme;
    switch (c->transport) {
    case MQTT_TRANSPORT_TCP:
        scheme = "tcp";
        break;
    case MQTT_TRANSPORT_TLS:
        scheme = "ssl";
        break;
    case MQTT_TRANSPORT_WS:
        scheme = "ws";
        break;
    case MQTT_TRANSPORT_WSS:
        scheme = "wss";
        break;
    default:
        return SPOT_EINVAL;
    }
    bool ws =
        c->transport == MQTT_TRANSPORT_WS || c->transport == MQTT_TRANSPORT_WSS;
    int n = snprintf(buf, len, "%s://%s:%ld%s", scheme, u.host, c->port,
                     ws ? u.path : "");
    return n < 0 || (size_t)n >= len ? SPOT_ETOOBIG : SPOT_OK;
}

void mqtt_config_credentials(const struct mqtt_config *c,
                             const struct mqtt_url *url, const char **user,
                             const char **password)
{
    *user = c->username;
    *password = c->password;
    if (*user == NULL && url && url->has_user) {
        *user = url->user;
        *password = url->has_password ? url->password : NULL;
    }
}
