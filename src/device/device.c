/*
 * The device core (API: spot/device.h): sensors -> encoder -> spool ->
 * publisher. The measuring side runs on the caller's thread (device_tick);
 * the publisher has its own.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/clock.h"
#include "spot/device.h"
#include "spot/device_limits.h"
#include "spot/device_topic.h"
#include "spot/err.h"
#include "spot/log.h"
#include "spot/message.h"
#include "spot/sensor.h"

#define MOD "device"

struct device {
    const struct device_config *cfg;
    const struct schema_set *schemas;
    struct sensor *sensors[SPOT_V_COUNT];
    char topics[SPOT_V_COUNT][SPOT_MAX_TOPIC_LEN + 1];
    struct message_encoder *enc;
    struct spool *spool;
    struct publisher *pub;
    int64_t period_s;
    double speed;
    int64_t start_s;  /* simulated time at mono0 */
    int64_t mono0_ms; /* real time origin */
    int64_t next_end; /* end of the next period to measure */
    struct device_stats st;
};

int64_t device_now(struct device *d)
{
    double real_s = (double)(spot_mono_ms() - d->mono0_ms) / 1000.0;
    return d->start_s + (int64_t)(real_s * d->speed);
}

static int make_sensors(struct device *d)
{
    const struct device_config *c = d->cfg;
    int n = 0;
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const struct sensor_config *sc = &c->sensors[v];
        if (!sc->enabled)
            continue;
        struct sensor_params p = {
            .schema = schema_set_vertical(d->schemas, (enum spot_vertical)v),
            .seed = c->dev.seed,
            .device_index = 0,
            .fields = (const char *const *)sc->fields,
            .n_fields = sc->n_fields,
            .failure_rate = sc->failure_rate,
            .random_mac_share = sc->random_mac_share,
            .salt = c->dev.visitor_salt ? c->dev.visitor_salt
                                        : c->dev.serial_number,
            .serial_number = c->dev.serial_number,
            .model_name = c->dev.model_name,
            .firmware_version = c->dev.firmware_version,
        };
        struct sensor *s = NULL;
        int rc = sensor_new(&s, sc->driver, &p);
        if (rc != SPOT_OK) {
            log_msg(LOG_ERROR, MOD, "sensor %s (driver %s): %s",
                    vertical_code(v), sc->driver, spot_strerror(rc));
            return rc;
        }
        if ((rc = sensor_probe(s)) != SPOT_OK) {
            log_msg(LOG_ERROR, MOD,
                    "sensor %s (driver %s) does not answer its probe: %s; "
                    "not measured",
                    vertical_code(v), sc->driver, spot_strerror(rc));
            sensor_free(s);
            d->st.sensors_failed++;
            continue;
        }
        d->sensors[v] = s;
        n++;
    }
    if (n == 0) {
        log_msg(LOG_ERROR, MOD, "no working sensor");
        return SPOT_EIO;
    }
    return SPOT_OK;
}

int device_new(struct device **out, const struct device_opts *o)
{
    const struct device_config *c = o->cfg;
    struct device *d = calloc(1, sizeof *d);
    if (d == NULL)
        return SPOT_ENOMEM;
    d->cfg = c;
    d->schemas = o->schemas;
    d->st.last_period_s = -1;
    d->period_s = c->dev.period_min * 60;
    d->speed = o->speed > 0 ? o->speed : 1.0;
    d->mono0_ms = spot_mono_ms();
    d->start_s = o->start_s ? o->start_s : spot_now_us() / 1000000;
    /* the first report covers the period the device started in */
    d->next_end = message_align(d->start_s, d->period_s) + d->period_s;

    int rc;
    struct device_topic t;
    char why[300];
    if (device_topic_init(&t, c->mqtt.topic_prefix, c->dev.serial_number, why,
                          sizeof why) != SPOT_OK) {
        log_msg(LOG_ERROR, MOD, "topic prefix: %s", why);
        rc = SPOT_EINVAL;
        goto out;
    }
    for (int v = 0; v < SPOT_V_COUNT; v++)
        device_topic_compose(&t, (enum spot_vertical)v, d->topics[v],
                             sizeof d->topics[v]);
    if ((rc = message_encoder_new(&d->enc)) != SPOT_OK)
        goto out;
    if ((rc = make_sensors(d)) != SPOT_OK)
        goto out;
    struct spool_opts so = {
        .dir = c->dev.spool_dir,
        .max_bytes = (uint64_t)c->dev.spool_max_kb * 1024,
        .fsync_ms = (int)c->dev.fsync_interval_ms,
    };
    if ((rc = spool_open(&d->spool, &so)) != SPOT_OK) {
        log_msg(LOG_ERROR, MOD, "cannot open the spool %s: %s",
                c->dev.spool_dir, spot_strerror(rc));
        goto out;
    }
    char id[SPOT_MAX_ID_LEN + 1];
    struct publisher_opts po = {
        .mqtt = &c->mqtt,
        .client_id = device_config_client_id(c, id, sizeof id),
        .spool = d->spool,
        .window = (int)c->dev.publish_window,
        .tls_dir = c->dev.spool_dir,
    };
    if ((rc = publisher_new(&d->pub, &po)) != SPOT_OK)
        log_msg(LOG_ERROR, MOD, "cannot set up the MQTT client: %s",
                spot_strerror(rc));
out:
    if (rc != SPOT_OK) {
        device_free(d);
        return rc;
    }
    *out = d;
    return SPOT_OK;
}

int device_start(struct device *d)
{
    return publisher_start(d->pub);
}

struct emit_ctx {
    struct device *d;
    enum spot_vertical v;
    int64_t start;
};

static int emit(void *arg, const struct reading *r)
{
    struct emit_ctx *e = arg;
    struct device *d = e->d;
    const unsigned char *json;
    size_t len;
    char why[200];
    int rc = message_encode(d->enc, r, e->start, (int)d->cfg->dev.period_min, 0,
                            &json, &len, why, sizeof why);
    if (rc != SPOT_OK) {
        d->st.encode_errors++;
        log_msg(LOG_ERROR, MOD, "%s reading not sent: %s", vertical_code(e->v),
                why);
        return 0;
    }
    rc = spool_append(d->spool, d->topics[e->v], (int)d->cfg->mqtt.qos, false,
                      json, len);
    if (rc != SPOT_OK) {
        d->st.spool_errors++;
        log_msg(LOG_ERROR, MOD, "%s message lost: the spool refused it: %s",
                vertical_code(e->v), spot_strerror(rc));
        return 0;
    }
    d->st.messages++;
    return 0;
}

static void measure(struct device *d, int64_t start)
{
    struct sensor_period per = {.start_s = start, .period_s = d->period_s};
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        if (d->sensors[v] == NULL)
            continue;
        struct emit_ctx e = {
            .d = d, .v = (enum spot_vertical)v, .start = start};
        int rc = sensor_sample(d->sensors[v], &per, emit, &e);
        if (rc != SPOT_OK)
            log_msg(LOG_WARN, MOD, "sampling %s failed: %s", vertical_code(v),
                    spot_strerror(rc));
    }
    d->st.periods++;
    d->st.last_period_s = start;
}

int device_tick(struct device *d, int64_t *wait_ms)
{
    int64_t now = device_now(d);
    if (now >= d->next_end) {
        int64_t behind = (now - d->next_end) / d->period_s + 1;
        if (behind > SPOT_DEVICE_MAX_CATCH_UP) {
            int64_t skip = behind - SPOT_DEVICE_MAX_CATCH_UP;
            d->next_end += skip * d->period_s;
            d->st.skipped_periods += (uint64_t)skip;
            log_msg(LOG_WARN, MOD,
                    "the clock jumped: %" PRId64 " periods skipped", skip);
        }
        while (now >= d->next_end) {
            measure(d, d->next_end - d->period_s);
            d->next_end += d->period_s;
        }
        spool_sync(d->spool);
        publisher_notify(d->pub);
    }
    double real_ms = (double)(d->next_end - now) * 1000.0 / d->speed;
    *wait_ms = real_ms < 1 ? 1 : (int64_t)real_ms;
    return SPOT_OK;
}

int device_shutdown(struct device *d, int drain_ms)
{
    int rc = SPOT_OK;
    if (d->cfg->mqtt.enable && publisher_connected(d->pub))
        rc = publisher_drain(d->pub, drain_ms);
    else if (d->cfg->mqtt.enable)
        rc = SPOT_EAGAIN;
    publisher_stop(d->pub);
    spool_sync(d->spool);
    struct spool_stats st;
    spool_get_stats(d->spool, &st);
    if (st.pending > 0) {
        log_msg(LOG_INFO, MOD,
                "%" PRIu64 " messages stay queued in %s for the next start",
                st.pending, d->cfg->dev.spool_dir);
        rc = SPOT_EAGAIN;
    }
    return rc;
}

void device_free(struct device *d)
{
    if (d == NULL)
        return;
    publisher_free(d->pub);
    spool_close(d->spool);
    for (int v = 0; v < SPOT_V_COUNT; v++)
        sensor_free(d->sensors[v]);
    message_encoder_free(d->enc);
    free(d);
}

bool device_connected(struct device *d)
{
    return publisher_connected(d->pub);
}

void device_get_stats(struct device *d, struct device_stats *out)
{
    *out = d->st;
    spool_get_stats(d->spool, &out->spool);
    publisher_get_stats(d->pub, &out->pub);
}
