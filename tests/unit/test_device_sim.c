/* The sensor interface and the simulated drivers: the registry, fitted
 * fields, determinism for a seed, plausible series (diurnal temperature,
 * weekday traffic, ordered noise levels, crowd counts that agree with the
 * per-visitor events, battery charging by day), failures as null, and the
 * visitorId hash. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/err.h"
#include "spot/schema.h"
#include "spot/sensor.h"
#include "spot/sim.h"
#include "spot/visitor_id.h"

static struct schema_set *schemas;

static void setup(void)
{
    char err[256];
    cr_assert_eq(schema_set_new(&schemas, err, sizeof err), SPOT_OK, "%s", err);
}

static void teardown(void)
{
    schema_set_free(schemas);
}

TestSuite(device_sim, .init = setup, .fini = teardown);

/* Monday 2026-01-05 00:00:00 UTC */
#define MONDAY 1767571200

#define MAX_READINGS 300

struct sink {
    struct reading r[MAX_READINGS];
    size_t n;
};

static int collect(void *arg, const struct reading *r)
{
    struct sink *s = arg;
    cr_assert_lt(s->n, MAX_READINGS);
    reading_copy(&s->r[s->n++], r);
    return 0;
}

static struct sensor *make(enum spot_vertical v, uint64_t seed, uint32_t dev,
                           double fail, const char *const *fields, size_t n)
{
    struct sensor_params p = {
        .schema = schema_set_vertical(schemas, v),
        .seed = seed,
        .device_index = dev,
        .fields = fields,
        .n_fields = n,
        .failure_rate = fail,
        .random_mac_share = 0.6,
        .salt = "pepper",
    };
    struct sensor *s = NULL;
    int rc = sensor_new(&s, "sim", &p);
    cr_assert_eq(rc, SPOT_OK, "%s: %s", vertical_code(v), spot_strerror(rc));
    cr_assert_eq(sensor_vertical(s), v);
    return s;
}

static struct sink *sample(struct sensor *s, int64_t start, int64_t period)
{
    static struct sink sk;
    sk.n = 0;
    struct sensor_period per = {.start_s = start, .period_s = period};
    cr_assert_eq(sensor_sample(s, &per, collect, &sk), SPOT_OK);
    return &sk;
}

static double value(const struct reading *r, const char *name)
{
    int i = schema_field_index(r->schema, name, strlen(name));
    cr_assert(i >= 0);
    if (r->v[i].kind == READING_NULL || r->v[i].kind == READING_ABSENT)
        return NAN;
    return r->v[i].number;
}

static enum reading_kind kind(const struct reading *r, const char *name)
{
    int i = schema_field_index(r->schema, name, strlen(name));
    cr_assert(i >= 0);
    return r->v[i].kind;
}

Test(device_sim, registry_and_fields)
{
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        cr_assert_not_null(sensor_driver_find("sim", (enum spot_vertical)v));
        cr_assert_null(sensor_driver_find("i2c", (enum spot_vertical)v));
    }
    struct sensor_params p = {.schema =
                                  schema_set_vertical(schemas, SPOT_V_AQO)};
    struct sensor *s = NULL;
    cr_assert_eq(sensor_new(&s, "nope", &p), SPOT_ENOTFOUND);
    static const char *const bad[] = {"no2"};
    p.fields = bad;
    p.n_fields = 1;
    cr_assert_eq(sensor_new(&s, "sim", &p), SPOT_EINVAL);
    static const char *const mand[] = {"period"};
    p.fields = mand;
    cr_assert_eq(sensor_new(&s, "sim", &p), SPOT_EINVAL);
    char why[128];
    cr_assert_eq(sensor_check_fields(p.schema, mand, 1, why, sizeof why),
                 SPOT_EINVAL);
    cr_assert(strstr(why, "mandatory"));

    /* default hardware: NO2 fitted, SO2 not; only what was asked */
    s = make(SPOT_V_AQO, 1, 0, 0, NULL, 0);
    cr_assert_eq(sensor_probe(s), SPOT_OK);
    struct sink *k = sample(s, MONDAY, 300);
    cr_assert_eq(k->n, 1);
    cr_assert_eq(kind(&k->r[0], "no2-a4"), READING_NUMBER);
    cr_assert_eq(kind(&k->r[0], "so2-a4"), READING_ABSENT);
    sensor_free(s);
    static const char *const two[] = {"so2-a4", "voc"};
    s = make(SPOT_V_AQO, 1, 0, 0, two, 2);
    k = sample(s, MONDAY, 300);
    cr_assert_eq(kind(&k->r[0], "no2-a4"), READING_ABSENT);
    cr_assert_eq(kind(&k->r[0], "so2-a4"), READING_NUMBER);
    cr_assert_eq(kind(&k->r[0], "voc"), READING_NUMBER);
    sensor_free(s);
}

static void fingerprint(enum spot_vertical v, uint64_t seed, char *out,
                        size_t len)
{
    static const char *const all[] = {"all"};
    struct sensor *s = make(v, seed, 3, 0.2, all, 1);
    size_t off = 0;
    for (int k = 0; k < 40; k++) {
        struct sink *sk = sample(s, MONDAY + k * 3600, 300);
        for (size_t m = 0; m < sk->n; m++)
            for (size_t i = 0; i < sk->r[m].schema->n_fields; i++) {
                const struct reading_value *rv = &sk->r[m].v[i];
                int n = snprintf(out + off, len - off, "%d:%.17g:%s;", rv->kind,
                                 rv->number,
                                 rv->kind == READING_TEXT ? rv->text : "");
                if (n > 0 && (size_t)n < len - off)
                    off += (size_t)n;
            }
    }
    sensor_free(s);
}

Test(device_sim, deterministic_for_a_seed)
{
    static char a[1 << 17], b[1 << 17];
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        fingerprint((enum spot_vertical)v, 42, a, sizeof a);
        fingerprint((enum spot_vertical)v, 42, b, sizeof b);
        cr_assert_str_eq(a, b, "%s", vertical_code(v));
        fingerprint((enum spot_vertical)v, 43, b, sizeof b);
        cr_assert(strcmp(a, b) != 0, "%s: the seed changes nothing",
                  vertical_code(v));
    }
    /* and independent of the order periods are sampled in */
    struct sensor *s = make(SPOT_V_WTO, 9, 1, 0, NULL, 0);
    double later = value(&sample(s, MONDAY + 86400, 300)->r[0], "temp8");
    double first = value(&sample(s, MONDAY, 300)->r[0], "temp8");
    cr_assert_eq(value(&sample(s, MONDAY + 86400, 300)->r[0], "temp8"), later);
    cr_assert_eq(value(&sample(s, MONDAY, 300)->r[0], "temp8"), first);
    sensor_free(s);
}

Test(device_sim, diurnal_temperature_and_humidity)
{
    struct sensor *s = make(SPOT_V_WTO, 5, 0, 0, NULL, 0);
    double warm = 0, cold = 0, hum_warm = 0, hum_cold = 0;
    for (int d = 0; d < 14; d++) {
        const struct reading *r =
            &sample(s, MONDAY + d * 86400 + 15 * 3600, 300)->r[0];
        warm += value(r, "temp8");
        hum_warm += value(r, "hum8");
        double sol = value(r, "solar_rad0");
        cr_assert_gt(sol, 0, "sun at 15:00");
        r = &sample(s, MONDAY + d * 86400 + 4 * 3600, 300)->r[0];
        cold += value(r, "temp8");
        hum_cold += value(r, "hum8");
        cr_assert_eq(value(r, "solar_rad0"), 0, "no sun at 04:00");
        cr_assert_leq(value(r, "dew_point"), value(r, "temp8") + 0.05);
    }
    cr_assert_gt(warm / 14, cold / 14 + 4, "afternoons warmer than nights");
    cr_assert_lt(hum_warm / 14, hum_cold / 14, "and drier");
    sensor_free(s);
}

Test(device_sim, traffic_shaped_no2_and_noise)
{
    struct sensor *aq = make(SPOT_V_AQO, 5, 0, 0, NULL, 0);
    struct sensor *nl = make(SPOT_V_NLO, 5, 0, 0, NULL, 0);
    double rush = 0, night = 0, weekend = 0, loud = 0, quiet = 0;
    for (int w = 0; w < 4; w++) {
        int64_t mon = MONDAY + (int64_t)w * 7 * 86400;
        for (int d = 0; d < 5; d++) {
            rush += value(&sample(aq, mon + d * 86400 + 8 * 3600, 300)->r[0],
                          "no2-a4");
            night += value(&sample(aq, mon + d * 86400 + 3 * 3600, 300)->r[0],
                           "no2-a4");
            loud += value(&sample(nl, mon + d * 86400 + 8 * 3600, 300)->r[0],
                          "son_laeq");
            quiet += value(&sample(nl, mon + d * 86400 + 3 * 3600, 300)->r[0],
                           "son_laeq");
        }
        /* Saturday 08:00 */
        weekend +=
            value(&sample(aq, mon + 5 * 86400 + 8 * 3600, 300)->r[0], "no2-a4");
    }
    cr_assert_gt(rush / 20, 2 * night / 20, "rush hour NO2");
    cr_assert_gt(rush / 20, 1.5 * weekend / 4, "weekday rush vs Saturday");
    cr_assert_gt(loud / 20, quiet / 20 + 8, "rush hour noise");
    /* statistical levels are ordered in every period */
    for (int k = 0; k < 200; k++) {
        const struct reading *r = &sample(nl, MONDAY + k * 1800, 900)->r[0];
        double mx = value(r, "son_lamax"), l1 = value(r, "son_la1"),
               l10 = value(r, "son_la10"), l50 = value(r, "son_la50"),
               l90 = value(r, "son_la90"), l99 = value(r, "son_la99"),
               mn = value(r, "son_lamin");
        cr_assert(mx >= l1 && l1 >= l10 && l10 >= l50 && l50 >= l90 &&
                      l90 >= l99 && l99 >= mn,
                  "period %d: %g %g %g %g %g %g %g", k, mx, l1, l10, l50, l90,
                  l99, mn);
    }
    sensor_free(aq);
    sensor_free(nl);
}

Test(device_sim, crowd_counts_agree_with_events)
{
    struct sensor *cfo = make(SPOT_V_CFO, 8, 2, 0, NULL, 0);
    struct sensor *cfe = make(SPOT_V_CFE, 8, 2, 0, NULL, 0);
    long total = 0, randoms = 0, day = 0, night = 0;
    for (int k = 0; k < 96; k++) {
        int64_t t = MONDAY + k * 900;
        double count = value(&sample(cfo, t, 900)->r[0], "peopleCount");
        struct sink *ev = sample(cfe, t, 900);
        cr_assert_eq((size_t)count, ev->n, "period %d", k);
        for (size_t i = 0; i < ev->n; i++) {
            const struct reading *r = &ev->r[i];
            int vi = schema_field_index(r->schema, "visitorId", 9);
            cr_assert_eq(strlen(r->v[vi].text), 40);
            for (size_t j = 0; j < i; j++)
                cr_assert(strcmp(r->v[vi].text, ev->r[j].v[vi].text) != 0,
                          "visitor ids are distinct within a period");
            randoms += (long)value(r, "random");
            cr_assert_leq(value(r, "duration"), 900);
        }
        total += (long)ev->n;
        double h = (double)(k * 900 % 86400) / 3600.0;
        if (h >= 12 && h < 20)
            day += (long)ev->n;
        if (h < 5)
            night += (long)ev->n;
    }
    cr_assert_gt(total, 100);
    double share = (double)randoms / (double)total;
    cr_assert(share > 0.45 && share < 0.75, "random MAC share %g", share);
    cr_assert_gt(day, 3 * night, "busier by day");
    sensor_free(cfo);
    sensor_free(cfe);
}

Test(device_sim, battery_charges_by_day)
{
    struct sensor *s = make(SPOT_V_DHO, 4, 0, 0, NULL, 0);
    for (int d = 0; d < 7; d++) {
        const struct reading *r =
            &sample(s, MONDAY + d * 86400 + 11 * 3600, 300)->r[0];
        double st = value(r, "batteryState");
        cr_assert(st == 1 || st == 0, "charging or full at 11:00");
        cr_assert_geq(value(r, "batteryCurrent"), 0);
        r = &sample(s, MONDAY + d * 86400 + 2 * 3600, 300)->r[0];
        cr_assert_eq(value(r, "batteryState"), 2, "discharging at night");
        cr_assert_lt(value(r, "batteryCurrent"), 0);
        double lvl = value(r, "batteryLevel");
        cr_assert(lvl > 0 && lvl <= 1);
    }
    sensor_free(s);
}

Test(device_sim, failures_are_null_at_about_the_rate)
{
    struct sensor *s = make(SPOT_V_NLO, 6, 1, 0.1, NULL, 0);
    long nulls = 0, fields = 0;
    for (int k = 0; k < 2000; k++) {
        const struct reading *r = &sample(s, MONDAY + k * 300, 300)->r[0];
        for (size_t i = 0; i < r->schema->n_fields; i++) {
            if (r->schema->fields[i].mandatory)
                continue;
            fields++;
            nulls += r->v[i].kind == READING_NULL;
            cr_assert_neq(r->v[i].kind, READING_ABSENT);
        }
    }
    double rate = (double)nulls / (double)fields;
    cr_assert(rate > 0.07 && rate < 0.2, "null rate %g", rate);
    sensor_free(s);
}

Test(device_sim, dev_links_and_firmware)
{
    struct sensor *wifi = make(SPOT_V_DEV, 1, 0, 0, NULL, 0);
    struct sensor *cell = make(SPOT_V_DEV, 1, 1, 0, NULL, 0);
    const struct reading *r = &sample(wifi, MONDAY, 300)->r[0];
    cr_assert_str_eq(
        r->v[schema_field_index(r->schema, "wifiEnabled", 11)].text, "true");
    cr_assert_eq(kind(r, "wifiSsid"), READING_TEXT);
    cr_assert_eq(kind(r, "cellularApn"), READING_ABSENT,
                 "APN only when cellular is enabled");
    r = &sample(cell, MONDAY, 300)->r[0];
    cr_assert_eq(kind(r, "cellularApn"), READING_TEXT);
    cr_assert_eq(kind(r, "wifiSsid"), READING_ABSENT);
    /* one firmware update a week: the states go 1, 2, 3, then result 1 */
    int seen[4] = {0};
    for (int k = 0; k < 7 * 96; k++) {
        r = &sample(wifi, MONDAY + k * 900, 900)->r[0];
        int st = (int)value(r, "updateFirmwareState");
        cr_assert(st >= 0 && st <= 3);
        seen[st]++;
    }
    cr_assert(seen[1] > 0 && seen[2] > 0 && seen[3] > 0);
    sensor_free(wifi);
    sensor_free(cell);
}

Test(device_sim, visitor_id_is_salted_sha1)
{
    char id[VISITOR_ID_LEN + 1];
    const unsigned char mac[6] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    cr_assert_eq(visitor_id("salt", mac, id), SPOT_OK);
    cr_assert_str_eq(id, "10feee316ba405e220fae4a6263cdc1d07e49664");
    const unsigned char mac2[6] = {0x00, 0x01, 0x02, 0x0a, 0x0b, 0xff};
    cr_assert_eq(visitor_id("", mac2, id), SPOT_OK);
    cr_assert_str_eq(id, "3c18a097ac13867f87bab79da3a891ea7aa13261");
}

Test(device_sim, reading_texts)
{
    struct reading r, c;
    reading_init(&r, schema_set_vertical(schemas, SPOT_V_DEV));
    int i = schema_field_index(r.schema, "modelName", 9);
    cr_assert_eq(reading_set_text(&r, i, "Smart Spot"), SPOT_OK);
    reading_copy(&c, &r);
    cr_assert_str_eq(c.v[i].text, "Smart Spot");
    cr_assert(c.v[i].text >= c.text && c.v[i].text < c.text + sizeof c.text,
              "the copy points into its own buffer");
    static char big[SPOT_DEVICE_READING_TEXT + 1];
    memset(big, 'x', sizeof big - 1);
    cr_assert_eq(reading_set_text(&r, i, big), SPOT_ETOOBIG);
    cr_assert_eq(r.v[i].kind, READING_NULL);
    reading_set_number(&r, -1, 1.0); /* ignored */
    reading_set_number(&r, 999, 1.0);
}
