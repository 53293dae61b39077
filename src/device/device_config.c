/*
 * The device configuration file (API: spot/device_config.h): parsing with
 * yajl_tree, the table of device settings, the sensors, and the whole-file
 * validation (which runs the MQTT resources' own). One thread fills a
 * config; the readers only read it.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "spot/device_config.h"
#include "spot/device_limits.h"
#include "spot/device_topic.h"
#include "spot/err.h"
#include "spot/json_depth.h"
#include "spot/sensor.h"
#include "spot/sim.h"
#include "spot/topic.h"
#include "version.h" /* generated: SPOT_VERSION */

/* --- the device settings table ----------------------------------------------
 */

enum set_type { SET_STR, SET_INT, SET_U64 };

struct setting {
    const char *key;
    enum set_type type;
    size_t off;
    long min, max; /* SET_INT */
    const char *help;
};

#define OFF(f) offsetof(struct device_settings, f)

static const struct setting settings[] = {
    {"serial_number", SET_STR, OFF(serial_number), 0, 0,
     "serial number (default: the host name)"},
    {"model_name", SET_STR, OFF(model_name), 0, 0, "model name"},
    {"firmware_version", SET_STR, OFF(firmware_version), 0, 0,
     "firmware version"},
    {"client_id", SET_STR, OFF(client_id), 0, 0,
     "MQTT client id (default: the device id of the topic prefix)"},
    {"period_min", SET_INT, OFF(period_min), SPOT_DEVICE_MIN_PERIOD_MIN,
     SPOT_DEVICE_MAX_PERIOD_MIN, "sampling period, minutes"},
    {"seed", SET_U64, OFF(seed), 0, 0, "seed of the simulated sensors"},
    {"visitor_salt", SET_STR, OFF(visitor_salt), 0, 0,
     "salt of the visitorId hash (default: the serial number)"},
    {"spool_dir", SET_STR, OFF(spool_dir), 0, 0, "store-and-forward directory"},
    {"spool_max_kb", SET_INT, OFF(spool_max_kb), SPOT_SPOOL_MIN_KB,
     SPOT_SPOOL_MAX_KB, "bound of the spool on disk, KiB"},
    {"fsync_interval_ms", SET_INT, OFF(fsync_interval_ms), -1,
     SPOT_SPOOL_MAX_FSYNC_MS,
     "spool fsync interval: 0 every message, -1 never"},
    {"publish_window", SET_INT, OFF(publish_window), 1, SPOT_DEVICE_MAX_WINDOW,
     "messages in flight (unacknowledged)"},
};

#define N_SETTINGS (sizeof settings / sizeof settings[0])

static char **str_at(struct device_settings *d, const struct setting *s)
{
    return (char **)(void *)((char *)d + s->off);
}

static long *long_at(struct device_settings *d, const struct setting *s)
{
    return (long *)(void *)((char *)d + s->off);
}

static char *default_serial(void)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof host, "spotdevice");
    host[sizeof host - 1] = '\0';
    /* keep it a legal id */
    for (char *p = host; *p; p++)
        if (!topic_id_is_legal(p, 1))
            *p = '_';
    return strdup(host);
}

int device_config_init(struct device_config *c)
{
    memset(c, 0, sizeof *c);
    int rc = mqtt_config_init(&c->mqtt);
    struct device_settings *d = &c->dev;
    d->serial_number = default_serial();
    d->model_name = strdup("Smart Spot");
    d->firmware_version = strdup(SPOT_VERSION);
    d->spool_dir = strdup("spotdevice-spool");
    d->period_min = 5;
    d->seed = 1;
    d->spool_max_kb = SPOT_SPOOL_DEFAULT_KB;
    d->fsync_interval_ms = SPOT_SPOOL_DEFAULT_FSYNC_MS;
    d->publish_window = SPOT_DEVICE_DEFAULT_WINDOW;
    if (rc != SPOT_OK || !d->serial_number || !d->model_name ||
        !d->firmware_version || !d->spool_dir) {
        device_config_clear(c);
        return SPOT_ENOMEM;
    }
    return SPOT_OK;
}

static void sensor_clear(struct sensor_config *s)
{
    free(s->driver);
    for (size_t i = 0; i < s->n_fields; i++)
        free(s->fields[i]);
    free(s->fields);
    memset(s, 0, sizeof *s);
}

void device_config_clear(struct device_config *c)
{
    mqtt_config_clear(&c->mqtt);
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].type == SET_STR) {
            char **p = str_at(&c->dev, &settings[i]);
            free(*p);
            *p = NULL;
        }
    for (int v = 0; v < SPOT_V_COUNT; v++)
        sensor_clear(&c->sensors[v]);
}

/* --- parsing
 * ---------------------------------------------------------------------- */

static const char *json_type(const yajl_val v)
{
    if (v == NULL || YAJL_IS_NULL(v))
        return "null";
    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))
        return "a boolean";
    if (YAJL_IS_INTEGER(v))
        return "an integer";
    if (YAJL_IS_NUMBER(v))
        return "a number";
    if (YAJL_IS_STRING(v))
        return "a string";
    if (YAJL_IS_ARRAY(v))
        return "an array";
    return "an object";
}

static int replace(char **slot, const char *s)
{
    char *copy = strdup(s);
    if (copy == NULL)
        return SPOT_ENOMEM;
    free(*slot);
    *slot = copy;
    return SPOT_OK;
}

static int parse_mqtt(struct device_config *c, yajl_val obj,
                      struct config_report *r)
{
    if (!YAJL_IS_OBJECT(obj)) {
        config_report_error(r, "\"mqtt_client\" must be an object, not %s",
                            json_type(obj));
        return SPOT_OK;
    }
    bool seen[MQTT_RES_COUNT] = {false};
    for (size_t i = 0; i < obj->u.object.len; i++) {
        const char *key = obj->u.object.keys[i];
        yajl_val v = obj->u.object.values[i];
        int id = mqtt_res_find(key, strlen(key));
        if (id < 0) {
            config_report_error(r,
                                "mqtt_client: unknown resource \"%s\" (ids "
                                "0-17 or names, see spotdevice --help)",
                                key);
            continue;
        }
        const struct mqtt_res_def *d = mqtt_res_def(id);
        if (seen[id]) {
            config_report_error(r,
                                "mqtt_client: resource %d (%s) is given "
                                "twice",
                                id, d->name);
            continue;
        }
        seen[id] = true;
        int rc = SPOT_OK;
        if (d->type == MQTT_RES_STRING && YAJL_IS_NULL(v))
            continue; /* explicitly none */
        if (d->type == MQTT_RES_BOOL && (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)))
            rc = mqtt_config_set_bool(&c->mqtt, id, YAJL_IS_TRUE(v), r);
        else if (d->type == MQTT_RES_INT && YAJL_IS_INTEGER(v))
            rc = mqtt_config_set_int(&c->mqtt, id, YAJL_GET_INTEGER(v), r);
        else if (d->type == MQTT_RES_STRING && YAJL_IS_STRING(v))
            rc = mqtt_config_set_string(&c->mqtt, id, v->u.string, r);
        else if (d->type == MQTT_RES_NONE)
            rc = mqtt_config_set_bool(&c->mqtt, id, false, r); /* reports */
        else
            config_report_error(r, "resource %d (%s) must be %s, not %s", id,
                                d->name,
                                d->type == MQTT_RES_BOOL  ? "true or false"
                                : d->type == MQTT_RES_INT ? "an integer"
                                                          : "a string",
                                json_type(v));
        if (rc == SPOT_ENOMEM)
            return rc;
    }
    return SPOT_OK;
}

static const struct setting *find_setting(const char *key)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

static int parse_device(struct device_config *c, yajl_val obj,
                        struct config_report *r)
{
    if (!YAJL_IS_OBJECT(obj)) {
        config_report_error(r, "\"device\" must be an object, not %s",
                            json_type(obj));
        return SPOT_OK;
    }
    bool seen[N_SETTINGS] = {false};
    for (size_t i = 0; i < obj->u.object.len; i++) {
        const char *key = obj->u.object.keys[i];
        yajl_val v = obj->u.object.values[i];
        const struct setting *s = find_setting(key);
        if (s == NULL) {
            config_report_error(r, "device: unknown setting \"%s\"", key);
            continue;
        }
        size_t k = (size_t)(s - settings);
        if (seen[k]) {
            config_report_error(r, "device: \"%s\" is given twice", key);
            continue;
        }
        seen[k] = true;
        if (s->type == SET_STR) {
            if (!YAJL_IS_STRING(v)) {
                config_report_error(r, "device.%s must be a string, not %s",
                                    key, json_type(v));
                continue;
            }
            if (replace(str_at(&c->dev, s), v->u.string) != SPOT_OK)
                return SPOT_ENOMEM;
        } else if (!YAJL_IS_INTEGER(v)) {
            config_report_error(r, "device.%s must be an integer, not %s", key,
                                json_type(v));
        } else if (s->type == SET_U64) {
            long long x = YAJL_GET_INTEGER(v);
            if (x < 0)
                config_report_error(r, "device.%s must not be negative", key);
            else
                c->dev.seed = (uint64_t)x;
        } else {
            long long x = YAJL_GET_INTEGER(v);
            if (x < s->min || x > s->max)
                config_report_error(r, "device.%s: %lld is outside %ld..%ld",
                                    key, x, s->min, s->max);
            else
                *long_at(&c->dev, s) = (long)x;
        }
    }
    return SPOT_OK;
}

static int parse_fields(struct sensor_config *s, const char *code, yajl_val v,
                        struct config_report *r)
{
    if (YAJL_IS_STRING(v) && strcmp(v->u.string, "all") == 0) {
        s->fields = calloc(1, sizeof *s->fields);
        if (s->fields == NULL || (s->fields[0] = strdup("all")) == NULL)
            return SPOT_ENOMEM;
        s->n_fields = 1;
        return SPOT_OK;
    }
    if (!YAJL_IS_ARRAY(v)) {
        config_report_error(r,
                            "sensors.%s.fields must be an array of field "
                            "names or \"all\"",
                            code);
        return SPOT_OK;
    }
    size_t n = v->u.array.len;
    s->fields = calloc(n ? n : 1, sizeof *s->fields);
    if (s->fields == NULL)
        return SPOT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        yajl_val e = v->u.array.values[i];
        if (!YAJL_IS_STRING(e)) {
            config_report_error(r, "sensors.%s.fields[%zu] must be a string",
                                code, i);
            continue;
        }
        if ((s->fields[s->n_fields] = strdup(e->u.string)) == NULL)
            return SPOT_ENOMEM;
        s->n_fields++;
    }
    return SPOT_OK;
}

static int parse_fraction(yajl_val v, const char *code, const char *key,
                          double *out, struct config_report *r)
{
    if (!YAJL_IS_NUMBER(v)) {
        config_report_error(r, "sensors.%s.%s must be a number", code, key);
        return SPOT_OK;
    }
    double x = YAJL_GET_DOUBLE(v);
    if (!(x >= 0.0 && x <= 1.0))
        config_report_error(r, "sensors.%s.%s: %g is outside 0..1", code, key,
                            x);
    else
        *out = x;
    return SPOT_OK;
}

static int parse_sensor(struct sensor_config *s, const char *code, yajl_val v,
                        struct config_report *r)
{
    sensor_clear(s);
    s->failure_rate = SIM_DEFAULT_FAILURE_RATE;
    s->random_mac_share = SIM_DEFAULT_RANDOM_MAC_SHARE;
    if ((s->driver = strdup("sim")) == NULL)
        return SPOT_ENOMEM;
    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        s->enabled = YAJL_IS_TRUE(v);
        return SPOT_OK;
    }
    if (!YAJL_IS_OBJECT(v)) {
        config_report_error(r, "sensors.%s must be an object or a boolean",
                            code);
        return SPOT_OK;
    }
    s->enabled = true;
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *key = v->u.object.keys[i];
        yajl_val e = v->u.object.values[i];
        int rc = SPOT_OK;
        if (strcmp(key, "driver") == 0) {
            if (YAJL_IS_STRING(e))
                rc = replace(&s->driver, e->u.string);
            else
                config_report_error(r, "sensors.%s.driver must be a string",
                                    code);
        } else if (strcmp(key, "enabled") == 0) {
            if (YAJL_IS_TRUE(e) || YAJL_IS_FALSE(e))
                s->enabled = YAJL_IS_TRUE(e);
            else
                config_report_error(r,
                                    "sensors.%s.enabled must be true or "
                                    "false",
                                    code);
        } else if (strcmp(key, "fields") == 0) {
            rc = parse_fields(s, code, e, r);
        } else if (strcmp(key, "failure_rate") == 0) {
            rc = parse_fraction(e, code, key, &s->failure_rate, r);
        } else if (strcmp(key, "random_mac_share") == 0) {
            rc = parse_fraction(e, code, key, &s->random_mac_share, r);
        } else {
            config_report_error(r, "sensors.%s: unknown key \"%s\"", code, key);
        }
        if (rc != SPOT_OK)
            return rc;
    }
    return SPOT_OK;
}

static int parse_sensors(struct device_config *c, yajl_val obj,
                         struct config_report *r)
{
    if (!YAJL_IS_OBJECT(obj)) {
        config_report_error(r, "\"sensors\" must be an object keyed by "
                               "vertical code");
        return SPOT_OK;
    }
    bool seen[SPOT_V_COUNT] = {false};
    for (size_t i = 0; i < obj->u.object.len; i++) {
        const char *key = obj->u.object.keys[i];
        enum spot_vertical v;
        if (strlen(key) != 3 || vertical_from_code(key, 3, &v) != SPOT_OK) {
            config_report_error(r,
                                "sensors: unknown vertical \"%s\" (aqo nlo "
                                "wto cfo cfe dev dho)",
                                key);
            continue;
        }
        if (seen[v]) {
            config_report_error(r, "sensors: \"%s\" is given twice", key);
            continue;
        }
        seen[v] = true;
        int rc = parse_sensor(&c->sensors[v], vertical_code(v),
                              obj->u.object.values[i], r);
        if (rc != SPOT_OK)
            return rc;
    }
    return SPOT_OK;
}

int device_config_parse(struct device_config *c, const char *text, size_t len,
                        const struct schema_set *schemas,
                        struct config_report *r)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return SPOT_ENOMEM;
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (json_depth_exceeds(copy, len, SPOT_DEVICE_MAX_CONFIG_DEPTH)) {
        free(copy);
        config_report_error(r,
                            "not valid: arrays/objects nested deeper than %d "
                            "levels",
                            SPOT_DEVICE_MAX_CONFIG_DEPTH);
        return SPOT_ECONFIG;
    }
    char perr[256];
    yajl_val root = yajl_tree_parse(copy, perr, sizeof perr);
    free(copy);
    int rc = SPOT_OK;
    if (root == NULL) {
        /* yajl's message spans lines; keep the first */
        char *nl = strchr(perr, '\n');
        if (nl)
            *nl = '\0';
        config_report_error(r, "not valid JSON: %s", perr);
        return SPOT_ECONFIG;
    }
    if (!YAJL_IS_OBJECT(root)) {
        config_report_error(r, "the configuration must be a JSON object");
        rc = SPOT_ECONFIG;
        goto out;
    }
    bool seen[3] = {false};
    static const char *const top[] = {"mqtt_client", "device", "sensors"};
    for (size_t i = 0; rc == SPOT_OK && i < root->u.object.len; i++) {
        const char *key = root->u.object.keys[i];
        yajl_val v = root->u.object.values[i];
        int k = -1;
        for (int j = 0; j < 3; j++)
            if (strcmp(key, top[j]) == 0)
                k = j;
        if (k < 0) {
            config_report_error(r,
                                "unknown key \"%s\" (expected mqtt_client, "
                                "device, sensors)",
                                key);
            continue;
        }
        if (seen[k]) {
            config_report_error(r, "\"%s\" is given twice", key);
            continue;
        }
        seen[k] = true;
        if (k == 0)
            rc = parse_mqtt(c, v, r);
        else if (k == 1)
            rc = parse_device(c, v, r);
        else
            rc = parse_sensors(c, v, r);
    }
    if (rc == SPOT_OK && device_config_validate(c, schemas, r) != SPOT_OK)
        rc = SPOT_ECONFIG;
    if (rc == SPOT_OK && r->errors > 0)
        rc = SPOT_ECONFIG;
out:
    yajl_tree_free(root);
    return rc;
}

int device_config_load(struct device_config *c, const char *path,
                       const struct schema_set *schemas,
                       struct config_report *r)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        config_report_error(r, "%s: %s", path, strerror(errno));
        return SPOT_ECONFIG;
    }
    char *buf = malloc(SPOT_DEVICE_MAX_CONFIG_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        return SPOT_ENOMEM;
    }
    size_t n = fread(buf, 1, SPOT_DEVICE_MAX_CONFIG_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc;
    if (bad) {
        config_report_error(r, "%s: read error", path);
        rc = SPOT_ECONFIG;
    } else if (n > SPOT_DEVICE_MAX_CONFIG_BYTES) {
        config_report_error(r, "%s: larger than %d bytes", path,
                            SPOT_DEVICE_MAX_CONFIG_BYTES);
        rc = SPOT_ECONFIG;
    } else {
        rc = device_config_parse(c, buf, n, schemas, r);
    }
    free(buf);
    return rc;
}

/* --- validation
 * ------------------------------------------------------------------ */

static void check_text(const char *what, const char *s, size_t max,
                       struct config_report *r)
{
    if (s == NULL || s[0] == '\0')
        config_report_error(r, "device.%s is empty", what);
    else if (strlen(s) > max)
        config_report_error(r, "device.%s is longer than %zu bytes", what, max);
}

int device_config_validate(const struct device_config *c,
                           const struct schema_set *schemas,
                           struct config_report *r)
{
    int before = r->errors;
    const struct device_settings *d = &c->dev;
    mqtt_config_validate(&c->mqtt, d->serial_number, r);
    check_text("serial_number", d->serial_number, 256, r);
    check_text("model_name", d->model_name, 256, r);
    check_text("firmware_version", d->firmware_version, 256, r);
    check_text("spool_dir", d->spool_dir, 4000, r);
    if (d->client_id)
        check_text("client_id", d->client_id, SPOT_DEVICE_MAX_MQTT_STRING, r);
    if (d->visitor_salt && strlen(d->visitor_salt) > 1024)
        config_report_error(r, "device.visitor_salt is longer than 1024 "
                               "bytes");
    int n = 0;
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const struct sensor_config *s = &c->sensors[v];
        if (!s->enabled)
            continue;
        n++;
        const char *code = vertical_code((enum spot_vertical)v);
        if (sensor_driver_find(s->driver, (enum spot_vertical)v) == NULL) {
            config_report_error(r,
                                "sensors.%s: no driver \"%s\" (drivers: "
                                "sim)",
                                code, s->driver);
            continue;
        }
        char why[200];
        const struct schema_vertical *sv =
            schema_set_vertical(schemas, (enum spot_vertical)v);
        if (s->fields &&
            sensor_check_fields(sv, (const char *const *)s->fields, s->n_fields,
                                why, sizeof why) != SPOT_OK)
            config_report_error(r, "sensors.%s.fields: %s", code, why);
    }
    if (n == 0)
        config_report_error(r, "no sensor is configured: add a \"sensors\" "
                               "object, e.g. {\"aqo\": {}, \"dho\": {}}");
    return r->errors > before ? SPOT_ECONFIG : SPOT_OK;
}

const char *device_config_client_id(const struct device_config *c, char *buf,
                                    size_t len)
{
    if (c->dev.client_id)
        return c->dev.client_id;
    struct device_topic t;
    char why[128];
    if (device_topic_init(&t, c->mqtt.topic_prefix, c->dev.serial_number, why,
                          sizeof why) != SPOT_OK)
        snprintf(buf, len, "%s", c->dev.serial_number);
    else
        snprintf(buf, len, "%s", t.device);
    return buf;
}

/* --- printing
 * ---------------------------------------------------------------------- */

static void print_string(FILE *f, const char *s, bool secret)
{
    if (s == NULL)
        fputs("(none)", f);
    else if (secret)
        fputs("(set, not shown)", f);
    else if (strstr(s, "-----BEGIN ") != NULL)
        fputs("(inline PEM)", f);
    else
        fputs(s, f);
}

void device_config_print(const struct device_config *c, FILE *f)
{
    const struct mqtt_config *m = &c->mqtt;
    fprintf(f, "MQTT client (wire contract §4):\n");
    for (int id = 0; id < MQTT_RES_COUNT; id++) {
        const struct mqtt_res_def *d = mqtt_res_def(id);
        if (d->type == MQTT_RES_NONE)
            continue;
        fprintf(f, "  %2d %-19s ", id, d->name);
        switch (id) {
        case MQTT_RES_ENABLE:
            fputs(m->enable ? "true" : "false", f);
            break;
        case MQTT_RES_LWT_RETAIN:
            fputs(m->lwt_retain ? "true" : "false", f);
            break;
        case MQTT_RES_TRANSPORT:
            fprintf(f, "%ld (%s)", m->transport,
                    mqtt_transport_name(m->transport));
            break;
        case MQTT_RES_PORT:
            fprintf(f, "%ld", m->port);
            break;
        case MQTT_RES_KEEP_ALIVE:
            fprintf(f, "%ld s", m->keep_alive);
            break;
        case MQTT_RES_LWT_QOS:
            fprintf(f, "%ld", m->lwt_qos);
            break;
        case MQTT_RES_QOS:
            fprintf(f, "%ld", m->qos);
            break;
        case MQTT_RES_SERVER:
            if (strchr(m->server, '@'))
                fputs("(URL with credentials, not shown)", f);
            else
                fputs(m->server, f);
            break;
        case MQTT_RES_LWT_TOPIC:
            print_string(f, m->lwt_topic, false);
            break;
        case MQTT_RES_LWT_MESSAGE:
            print_string(f, m->lwt_message, false);
            break;
        case MQTT_RES_USERNAME:
            print_string(f, m->username, false);
            break;
        case MQTT_RES_PASSWORD:
            print_string(f, m->password, true);
            break;
        case MQTT_RES_CA:
            print_string(f, m->ca, false);
            break;
        case MQTT_RES_CERT:
            print_string(f, m->cert, false);
            break;
        case MQTT_RES_KEY:
            print_string(f, m->key, true);
            break;
        case MQTT_RES_PREFIX:
            if (m->topic_prefix)
                fputs(m->topic_prefix, f);
            else
                fprintf(f, "/%s/%s (default)", DEVICE_DEFAULT_APIKEY,
                        c->dev.serial_number);
            break;
        default:
            break;
        }
        fputc('\n', f);
    }
    const struct device_settings *d = &c->dev;
    char id[SPOT_MAX_ID_LEN + 1];
    fprintf(f,
            "device:\n  serial_number %s\n  model_name %s\n"
            "  firmware_version %s\n  client_id %s\n  period_min %ld\n"
            "  seed %llu\n  spool_dir %s\n  spool_max_kb %ld\n"
            "  fsync_interval_ms %ld\n  publish_window %ld\n",
            d->serial_number, d->model_name, d->firmware_version,
            device_config_client_id(c, id, sizeof id), d->period_min,
            (unsigned long long)d->seed, d->spool_dir, d->spool_max_kb,
            d->fsync_interval_ms, d->publish_window);
    fprintf(f, "sensors:\n");
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const struct sensor_config *s = &c->sensors[v];
        if (!s->enabled)
            continue;
        fprintf(f, "  %s driver %s, fields ", vertical_code(v), s->driver);
        if (s->fields == NULL)
            fputs("(driver default)", f);
        for (size_t i = 0; i < s->n_fields; i++)
            fprintf(f, "%s%s", i ? "," : "", s->fields[i]);
        fprintf(f, ", failure_rate %g\n", s->failure_rate);
    }
}
