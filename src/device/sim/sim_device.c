/*
 * Simulated device information (dev) and device health (dho). Identity
 * comes from the configuration; connectivity from the device index (even:
 * Wi-Fi, odd: cellular); a firmware update runs once a week per device
 * (downloading, downloaded, installing, installed). The battery charges
 * from the solar panel by day and discharges by night. One instance per
 * device and vertical; used by one thread at a time.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/err.h"
#include "spot/sim.h"
#include "sim_util.h"

#define WEEK_S (7 * 86400)

enum {
    MODEL,
    SERIAL,
    FIRMWARE,
    PROGRESS,
    FW_STATE,
    FW_RESULT,
    CELL_ON,
    WIFI_ON,
    APN,
    SSID,
    N_DEV
};
static const char *const dev_names[N_DEV] = {
    "modelName",           "serialNumber",
    "firmwareVersion",     "updateFirmwareDownloadProgress",
    "updateFirmwareState", "updateFirmwareResult",
    "cellularEnabled",     "wifiEnabled",
    "cellularApn",         "wifiSsid",
};

enum { BEARER, RSSI, LEVEL, BSTATE, VOLTAGE, CURRENT, N_DHO };
static const char *const dho_names[N_DHO] = {
    "networkBearer", "rssi",           "batteryLevel",
    "batteryState",  "batteryVoltage", "batteryCurrent",
};

static const char *const all[] = {"all"};

struct state {
    struct sim_base b;
    int idx[16]; /* N_DEV or N_DHO entries */
    uint64_t key;
    bool wifi;
    char model[64], serial[64], firmware[64], ssid[64];
};

static int create(void **out, const struct sensor_params *p,
                  const char *const *names, int n)
{
    struct state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return SPOT_ENOMEM;
    int rc = sim_base_init(&s->b, p, all, 1);
    if (rc != SPOT_OK) {
        free(s);
        return rc;
    }
    for (int i = 0; i < n; i++)
        s->idx[i] = sim_field(&s->b, names[i]);
    s->key = sim_hash(p->seed, p->device_index, 0xde5, 0);
    s->wifi = p->device_index % 2 == 0;
    snprintf(s->model, sizeof s->model, "%s",
             p->model_name ? p->model_name : "Smart Spot");
    if (p->serial_number)
        snprintf(s->serial, sizeof s->serial, "%s", p->serial_number);
    else
        snprintf(s->serial, sizeof s->serial, "SIM%08u", p->device_index);
    snprintf(s->firmware, sizeof s->firmware, "%s",
             p->firmware_version ? p->firmware_version : "2.4.1");
    snprintf(s->ssid, sizeof s->ssid, "CityNet-%02u",
             (unsigned)(sim_hash(s->key, 1, 0, 0) % 40));
    *out = s;
    return SPOT_OK;
}

static int create_dev(void **out, const struct sensor_params *p)
{
    return create(out, p, dev_names, N_DEV);
}

static int create_dho(void **out, const struct sensor_params *p)
{
    return create(out, p, dho_names, N_DHO);
}

static int probe(void *state)
{
    (void)state;
    return SPOT_OK;
}

static void put_text(const struct state *s, struct reading *r, int i,
                     const char *text)
{
    sim_put_text(&s->b, r, s->idx[i], text);
}

static int sample_dev(void *state, const struct sensor_period *per,
                      sensor_emit_fn emit, void *ctx)
{
    struct state *s = state;
    const struct sim_base *b = &s->b;
    int64_t t0 = per->start_s;
    struct reading r;
    reading_init(&r, b->sv);
    put_text(s, &r, MODEL, s->model);
    put_text(s, &r, SERIAL, s->serial);
    put_text(s, &r, FIRMWARE, s->firmware);
    /* the weekly update: a 4-hour window at a per-device time */
    int64_t slot = (int64_t)(sim_hash(s->key, 2, 0, 0) % (WEEK_S - 14400));
    int64_t in = ((t0 % WEEK_S) + WEEK_S) % WEEK_S - slot;
    int state_code = 0, result = 0;
    double progress = 0;
    if (in >= 0 && in < 3600) {
        state_code = 1;
        progress = floor(100.0 * (double)in / 3600.0);
    } else if (in >= 3600 && in < 7200) {
        state_code = 2;
        progress = 100;
    } else if (in >= 7200 && in < 10800) {
        state_code = 3;
        progress = 100;
    } else if (in >= 10800 && in < 14400) {
        result = 1;
        progress = 100;
    }
    sim_put(b, &r, s->idx[PROGRESS], progress, 0, t0);
    if (s->idx[FW_STATE] >= 0 && b->fitted[s->idx[FW_STATE]])
        reading_set_integer(&r, s->idx[FW_STATE], state_code);
    if (s->idx[FW_RESULT] >= 0 && b->fitted[s->idx[FW_RESULT]])
        reading_set_integer(&r, s->idx[FW_RESULT], result);
    put_text(s, &r, CELL_ON, s->wifi ? "false" : "true");
    put_text(s, &r, WIFI_ON, s->wifi ? "true" : "false");
    /* APN and SSID only when that link is enabled */
    if (s->wifi)
        put_text(s, &r, SSID, s->ssid);
    else
        put_text(s, &r, APN, "iot.spot-telecom.net");
    return emit(ctx, &r);
}

static int sample_dho(void *state, const struct sensor_period *per,
                      sensor_emit_fn emit, void *ctx)
{
    struct state *s = state;
    const struct sim_base *b = &s->b;
    int64_t t0 = per->start_s;
    double t = (double)t0 + (double)per->period_s / 2.0;
    double h = sim_hour(t);
    long bearer = s->wifi ? 21 : (b->dev % 4 == 1 ? 6 : 7);
    double rssi =
        sim_clamp(0.62 + 0.18 * sim_smooth(s->key, t, 4 * 3600.0) +
                      0.04 * sim_gauss(sim_hash(s->key, (uint64_t)t0, 3, 0)),
                  0.02, 1.0);
    /* charge peaks in the late afternoon, bottoms out before dawn */
    double level = sim_clamp(0.58 + 0.34 * cos(2.0 * M_PI * (h - 17.0) / 24.0) +
                                 0.05 * sim_smooth(s->key + 1, t, 24 * 3600.0),
                             0.05, 1.0);
    long bstate;
    double current;
    if (level >= 0.97 && sim_sun(t) > 0) {
        bstate = 0; /* full: the panel feeds the load directly */
        current = 0;
    } else if (h > 5.0 && h < 17.0 && sim_sun(t) > 0) {
        bstate = 1;
        current = 120.0 + 320.0 * sim_sun(t);
    } else {
        bstate = 2;
        current =
            -(70.0 + 30.0 * sim_u01(sim_hash(s->key, (uint64_t)t0, 4, 0)));
    }
    struct reading r;
    reading_init(&r, b->sv);
    sim_put_int(b, &r, s->idx[BEARER], bearer, t0);
    sim_put(b, &r, s->idx[RSSI], rssi, 2, t0);
    sim_put(b, &r, s->idx[LEVEL], level, 2, t0);
    sim_put_int(b, &r, s->idx[BSTATE], bstate, t0);
    sim_put(b, &r, s->idx[VOLTAGE], 3300.0 + 900.0 * level, 0, t0);
    sim_put(b, &r, s->idx[CURRENT], current, 1, t0);
    return emit(ctx, &r);
}

static void destroy(void *state)
{
    free(state);
}

const struct sensor_driver sim_dev_driver = {
    .name = "sim",
    .vertical = SPOT_V_DEV,
    .create = create_dev,
    .probe = probe,
    .sample = sample_dev,
    .destroy = destroy,
};

const struct sensor_driver sim_dho_driver = {
    .name = "sim",
    .vertical = SPOT_V_DHO,
    .create = create_dho,
    .probe = probe,
    .sample = sample_dho,
    .destroy = destroy,
};
