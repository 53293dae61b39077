/*
 * The server URL of the device's MQTT client (resource 2):
 * scheme://[user[:password]@]host[:port][/path], with scheme mqtt, ws or
 * wss, host a name, an IPv4 address or a bracketed IPv6 address. User and
 * password are percent-decoded. Pure function: any thread.
 */
#ifndef SPOT_MQTT_URL_H
#define SPOT_MQTT_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "spot/device_limits.h"

#define MQTT_URL_MAX_CRED 512

struct mqtt_url {
    char scheme[8];                      /* "mqtt", "ws", "wss" */
    char host[SPOT_DEVICE_MAX_HOST + 3]; /* IPv6 keeps its brackets */
    char path[SPOT_DEVICE_MAX_URL];      /* "" or starting with '/' */
    int port;                            /* -1: not in the URL */
    bool has_user;
    char user[MQTT_URL_MAX_CRED];
    bool has_password;
    char password[MQTT_URL_MAX_CRED];
};

/* Parses url. Returns SPOT_OK, or SPOT_EINVAL with the reason in why
 * (never echoing a password). */
int mqtt_url_parse(const char *url, struct mqtt_url *out, char *why,
                   size_t whylen);

#endif
