/*
 * Per-device static attributes from the configuration file's "devices"
 * object (contract §2), keyed by base device id:
 *
 *   "devices": {
 *     "SmartSpot_AQ_1": {"location": [-1.13, 37.99],
 *                        "address": "Calle Mayor 1, Murcia",
 *                        "name": "Plaza 1"}
 *   }
 *
 * `location` is [lon, lat] (sent as a geo:json Point / GeoProperty); every
 * other key becomes an attribute of the same name on each entity of that
 * device (strings, numbers, booleans, objects, arrays as given).
 *
 * Immutable once built: any thread may read it.
 */
#ifndef SPOT_DEVICES_H
#define SPOT_DEVICES_H

#include <stdbool.h>
#include <stddef.h>

struct yajl_val_s;

struct device_attr {
    const char *name;               /* legal NGSI attribute name */
    const struct yajl_val_s *value; /* owned by struct devices */
};

struct device_static {
    const char *device_id;
    bool has_location;
    double lon, lat; /* WGS84, validated: lon in [-180, 180], lat in
                        [-90, 90] */
    const struct device_attr *attrs; /* other static attributes */
    size_t n_attrs;
};

struct devices;

/* Builds the table from the "devices" node of a parsed config file
 * (borrowed; copied). node may be NULL (no devices). On failure returns
 * SPOT_ECONFIG with a message naming the device and key in err. */
int devices_new(struct devices **out, const struct yajl_val_s *node, char *err,
                size_t errlen);
void devices_free(struct devices *d);

/* The static attributes of the base device id (len bytes), or NULL. */
const struct device_static *devices_find(const struct devices *d,
                                         const char *device_id, size_t len);

#endif
