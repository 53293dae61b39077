/* The device core without a broker: every period is measured, encoded and
 * spooled in order (TimeInstant = the aligned period start, the first one
 * being the period the device started in), each message passes the agent's
 * validator, the queue survives a restart, and a publisher that cannot
 * reach its broker keeps everything queued and reports client status
 * false. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spot/clock.h"
#include "spot/device.h"
#include "spot/device_config.h"
#include "spot/err.h"
#include "spot/publisher.h"
#include "spot/schema.h"
#include "spot/spool.h"
#include "validate.h"

static struct schema_set *schemas;
static char dir[64];

static void setup(void)
{
    char err[256];
    cr_assert_eq(schema_set_new(&schemas, err, sizeof err), SPOT_OK, "%s", err);
    snprintf(dir, sizeof dir, "/tmp/spotcore.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(dir);
    schema_set_free(schemas);
}

TestSuite(device_core, .init = setup, .fini = teardown);

/* Monday 2026-01-05 08:00:30 UTC: the first period is 08:00-08:01 */
#define START 1767600030

static void load(struct device_config *c, bool enable, int port)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"mqtt_client\": {\"enable\": %s, \"server\": "
             "\"mqtt://127.0.0.1\", \"port\": %d, \"topic_prefix\": "
             "\"/coreKey/core1\"},"
             " \"device\": {\"period_min\": 1, \"spool_dir\": \"%s\","
             " \"fsync_interval_ms\": -1, \"seed\": 5},"
             " \"sensors\": {\"aqo\": {}, \"cfe\": {\"failure_rate\": 0.2},"
             " \"dho\": {}}}",
             enable ? "true" : "false", port, dir);
    cr_assert_eq(device_config_init(c), SPOT_OK);
    struct config_report r;
    config_report_init(&r);
    cr_assert_eq(device_config_parse(c, json, strlen(json), schemas, &r),
                 SPOT_OK, "%s", r.text);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};
    nanosleep(&ts, NULL);
}

Test(device_core, measures_every_period_into_the_spool_in_order)
{
    struct device_config cfg;
    load(&cfg, false, 1883);
    struct device *d;
    struct device_opts o = {.cfg = &cfg,
                            .schemas = schemas,
                            .speed = 6000, /* a minute in 10 ms */
                            .start_s = START};
    cr_assert_eq(device_new(&d, &o), SPOT_OK);
    cr_assert_eq(device_start(d), SPOT_OK);
    struct device_stats st;
    int64_t until = spot_mono_ms() + 5000;
    do {
        int64_t wait;
        device_tick(d, &wait);
        cr_assert_leq(wait, 11);
        sleep_ms(wait);
        device_get_stats(d, &st);
    } while (st.periods < 30 && spot_mono_ms() < until);
    cr_assert_geq(st.periods, 30);
    cr_assert(!device_connected(d), "MQTT disabled: never connected");
    cr_assert_eq(st.spool.pending, st.messages);
    cr_assert_eq(st.encode_errors + st.spool_errors, 0);
    uint64_t periods = st.periods, messages = st.messages;
    cr_assert_eq(device_shutdown(d, 100), SPOT_EAGAIN, "messages left");
    device_free(d);

    /* every message in the spool: valid, in order, no period missing */
    struct spool *s;
    struct spool_opts so = {.dir = dir, .max_bytes = 16 << 20, .fsync_ms = -1};
    cr_assert_eq(spool_open(&s, &so), SPOT_OK);
    struct validator *val;
    cr_assert_eq(validator_new(&val, schemas, NULL), SPOT_OK);
    int64_t last[SPOT_V_COUNT];
    int count[SPOT_V_COUNT] = {0};
    for (int v = 0; v < SPOT_V_COUNT; v++)
        last[v] = -1;
    struct spool_item it;
    uint64_t n = 0;
    while (spool_next(s, &it) == SPOT_OK) {
        const struct record *r;
        cr_assert_eq(validator_run(val, it.topic, it.topic_len, it.payload,
                                   it.payload_len, 0, &r),
                     SPOT_OK);
        cr_assert_eq(r->reason, REJECT_NONE, "%s: %.*s", r->detail,
                     (int)it.payload_len, it.payload);
        cr_assert_str_eq(r->apikey, "coreKey");
        cr_assert_str_eq(r->device_id, "core1");
        cr_assert_eq(it.qos, 1);
        int64_t ti = r->time_instant_us / 1000000;
        cr_assert_eq(ti % 60, 0, "aligned to the period");
        enum spot_vertical v = r->vertical;
        if (last[v] < 0)
            cr_assert_eq(ti, START - 30, "the period it started in");
        else if (v == SPOT_V_CFE)
            cr_assert_geq(ti, last[v]);
        else
            cr_assert_eq(ti, last[v] + 60, "%s: no period missing",
                         vertical_code(v));
        if (v != SPOT_V_CFE)
            count[v]++;
        last[v] = ti;
        n++;
    }
    cr_assert_eq(n, messages);
    cr_assert_eq((uint64_t)count[SPOT_V_AQO], periods);
    cr_assert_eq((uint64_t)count[SPOT_V_DHO], periods);
    cr_assert_eq(count[SPOT_V_NLO], 0, "not configured, not sent");
    validator_free(val);
    spool_close(s);

    /* a new process finds the queue */
    cr_assert_eq(device_new(&d, &o), SPOT_OK);
    device_get_stats(d, &st);
    cr_assert_eq(st.spool.recovered, messages);
    device_free(d);
    device_config_clear(&cfg);
}

Test(device_core, unreachable_broker_keeps_everything_queued)
{
    struct device_config cfg;
    load(&cfg, true, 1); /* nothing listens on port 1 */
    struct spool *s;
    struct spool_opts so = {.dir = dir, .max_bytes = 1 << 20, .fsync_ms = -1};
    cr_assert_eq(spool_open(&s, &so), SPOT_OK);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(spool_append(s, "/k/d/attrs", 1, false, "{}", 2), SPOT_OK);
    struct publisher *p;
    struct publisher_opts po = {
        .mqtt = &cfg.mqtt, .client_id = "t", .spool = s, .window = 4};
    cr_assert_eq(publisher_new(&p, &po), SPOT_OK);
    cr_assert_eq(publisher_start(p), SPOT_OK);
    struct publisher_stats ps;
    int64_t until = spot_mono_ms() + 5000;
    do {
        sleep_ms(20);
        publisher_get_stats(p, &ps);
    } while (ps.losses < 2 && spot_mono_ms() < until);
    cr_assert_geq(ps.losses, 2, "connection refused, retried");
    cr_assert(!publisher_connected(p));
    cr_assert_eq(publisher_drain(p, 50), SPOT_EAGAIN);
    publisher_stop(p);
    publisher_free(p);
    struct spool_stats st;
    spool_get_stats(s, &st);
    cr_assert_eq(st.pending, 10);
    spool_close(s);
    device_config_clear(&cfg);

    struct publisher_opts bad = po;
    bad.window = 0;
    cr_assert_eq(publisher_new(&p, &bad), SPOT_EINVAL);
}
