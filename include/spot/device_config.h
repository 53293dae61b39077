/*
 * The configuration of one device (spotdevice): the MQTT client resources
 * 0-17 (spot/mqtt_config.h), the device's own settings (identity, sampling
 * period, spool) and its sensors, loaded from one JSON file and validated
 * whole. File format: docs/device.md.
 *
 * A struct device_config is filled by one thread; once validated any
 * thread may read it. Strings are owned by the struct.
 */
#ifndef SPOT_DEVICE_CONFIG_H
#define SPOT_DEVICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "spot/config_report.h"
#include "spot/mqtt_config.h"
#include "spot/schema.h"
#include "spot/vertical.h"

/* One vertical's sensor. */
struct sensor_config {
    bool enabled;
    char *driver;  /* "sim" */
    char **fields; /* fitted fields; NULL: the driver's default set */
    size_t n_fields;
    double failure_rate;     /* sim: probability of a null reading */
    double random_mac_share; /* sim crowd: share of random MACs */
};

struct device_settings {
    char *serial_number; /* default: the host name */
    char *model_name;    /* default "Smart Spot" */
    char *firmware_version;
    char *client_id;    /* NULL: the device id of the topic prefix */
    long period_min;    /* sampling period, minutes */
    uint64_t seed;      /* simulated sensors */
    char *visitor_salt; /* NULL: "{serial_number}" */
    char *spool_dir;
    long spool_max_kb;
    long fsync_interval_ms; /* -1 never, 0 every message */
    long publish_window;    /* messages in flight */
};

struct device_config {
    struct mqtt_config mqtt;
    struct device_settings dev;
    struct sensor_config sensors[SPOT_V_COUNT];
};

/* Defaults everywhere, no sensor. Returns SPOT_OK or SPOT_ENOMEM. */
int device_config_init(struct device_config *c);
void device_config_clear(struct device_config *c);

/* Applies a JSON text (keys: "mqtt_client", "device", "sensors") over c,
 * then validates the whole. Every problem goes to r. Returns SPOT_OK,
 * SPOT_ECONFIG or SPOT_ENOMEM. */
int device_config_parse(struct device_config *c, const char *text, size_t len,
                        const struct schema_set *schemas,
                        struct config_report *r);
/* The same for a file (at most SPOT_DEVICE_MAX_CONFIG_BYTES). */
int device_config_load(struct device_config *c, const char *path,
                       const struct schema_set *schemas,
                       struct config_report *r);
/* Validation alone (device_config_parse runs it). */
int device_config_validate(const struct device_config *c,
                           const struct schema_set *schemas,
                           struct config_report *r);

/* The client id: dev.client_id, else the device id of the prefix. */
const char *device_config_client_id(const struct device_config *c, char *buf,
                                    size_t len);

/* Prints the effective configuration, secrets masked (--check-config). */
void device_config_print(const struct device_config *c, FILE *f);

#endif
