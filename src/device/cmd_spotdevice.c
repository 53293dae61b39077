/*
 * spotdevice: the device daemon for one Smart Spot-like device. Start-up
 * and shut-down order, nothing else: options, schemas, the configuration
 * file (validated whole; --check-config stops there), the device core,
 * then a loop that measures at each period's end and waits for the next
 * one or a signal. SIGTERM / SIGINT: send what is queued for a while,
 * disconnect cleanly, keep the rest on disk, exit 0. Signals are taken
 * synchronously by the main thread (sigtimedwait); every other thread
 * blocks them. Options and file format: docs/device.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spot/clock.h"
#include "spot/device.h"
#include "spot/device_config.h"
#include "spot/device_status.h"
#include "spot/device_limits.h"
#include "spot/err.h"
#include "spot/log.h"
#include "spot/mqtt_config.h"
#include "spot/schema.h"
#include "spot/time_arg.h"

#define MOD "spotdevice"

#include "version.h" /* generated: SPOT_VERSION, SPOT_GIT_REV */

struct opts {
    const char *config;
    bool check;
    double speed;
    int64_t start_s;
    long long drain_ms;
    const char *log_level;
    const char *status;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: spotdevice --config FILE [options]\n"
            "\n"
            "Runs one simulated Smart Spot: measures its sensors every "
            "sampling period\nand publishes over MQTT through an on-disk "
            "store-and-forward spool.\n"
            "\n"
            "  --config FILE      device configuration (JSON; see "
            "docs/device.md)\n"
            "  --check-config     validate the file, print the effective "
            "configuration, exit\n"
            "  --speed X          simulated seconds per real second "
            "(default 1)\n"
            "  --start TIME       simulated time at start: now, Unix "
            "seconds or\n"
            "                     2026-01-01T00:00:00Z (default now)\n"
            "  --drain-ms N       on SIGTERM, keep sending for up to N ms "
            "(default %d)\n"
            "  --status FILE      keep FILE up to date with the counters and "
            "the client\n"
            "                     status (resource 17), as JSON\n"
            "  --log-level L      error, warn, info, debug (default info)\n"
            "  --version, --help\n"
            "\n"
            "MQTT client resources (\"mqtt_client\" keys: id or name):\n",
            SPOT_DEVICE_DRAIN_MS);
    for (int id = 0; id < MQTT_RES_COUNT; id++) {
        const struct mqtt_res_def *d = mqtt_res_def(id);
        char range[32] = "";
        if (d->type == MQTT_RES_INT)
            snprintf(range, sizeof range, " %ld..%ld", d->min, d->max);
        fprintf(f, "  %2d %-19s %-7s%-12s default %-12s %s\n", id, d->name,
                d->type == MQTT_RES_BOOL     ? "bool"
                : d->type == MQTT_RES_INT    ? "int"
                : d->type == MQTT_RES_STRING ? "string"
                                             : "-",
                range, d->deflt ? d->deflt : "none", d->help);
    }
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    enum {
        O_CHECK = 256,
        O_SPEED,
        O_START,
        O_DRAIN,
        O_LOG,
        O_STATUS,
        O_VERSION
    };
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, O_CHECK},
        {"speed", required_argument, NULL, O_SPEED},
        {"start", required_argument, NULL, O_START},
        {"drain-ms", required_argument, NULL, O_DRAIN},
        {"log-level", required_argument, NULL, O_LOG},
        {"status", required_argument, NULL, O_STATUS},
        {"version", no_argument, NULL, O_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:h", longs, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case O_CHECK:
            o->check = true;
            break;
        case O_SPEED:
            if (time_arg_number(optarg, &o->speed) != SPOT_OK ||
                o->speed <= 0) {
                fprintf(stderr, "spotdevice: --speed: a positive number\n");
                return 2;
            }
            break;
        case O_START:
            if (time_arg_parse(optarg, spot_now_us() / 1000000, &o->start_s) !=
                SPOT_OK) {
                fprintf(stderr, "spotdevice: --start: now, Unix seconds or "
                                "YYYY-MM-DDThh:mm:ssZ\n");
                return 2;
            }
            break;
        case O_DRAIN:
            if (time_arg_long(optarg, 0, 3600000, &o->drain_ms) != SPOT_OK) {
                fprintf(stderr, "spotdevice: --drain-ms: 0..3600000\n");
                return 2;
            }
            break;
        case O_LOG:
            o->log_level = optarg;
            break;
        case O_STATUS:
            o->status = optarg;
            break;
        case O_VERSION:
            printf("spotdevice %s\n", SPOT_VERSION);
            return 1;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "spotdevice: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    if (o->config == NULL) {
        fprintf(stderr, "spotdevice: --config FILE is required\n");
        return 2;
    }
    return 0;
}

/* Waits up to ms for SIGTERM/SIGINT (returns it) or SIGHUP (logged,
 * ignored); 0 on time out. */
static int wait_signal(const sigset_t *set, int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    int sig = sigtimedwait(set, NULL, &ts);
    if (sig == SIGHUP) {
        log_msg(LOG_WARN, MOD,
                "SIGHUP: the configuration is read at start "
                "only (a change takes effect after a restart)");
        return 0;
    }
    return sig < 0 ? 0 : sig;
}

/* Rewrites the status file when something changed since *last. */
static void update_status(struct device *dev, const char *path,
                          struct device_stats *last)
{
    struct device_stats st;
    device_get_stats(dev, &st);
    if (st.periods != last->periods ||
        st.pub.connected != last->pub.connected ||
        st.pub.acked != last->pub.acked ||
        st.spool.pending != last->spool.pending)
        if (device_status_write(&st, path) != SPOT_OK)
            log_msg(LOG_WARN, MOD, "writing %s failed: %s", path,
                    strerror(errno));
    *last = st;
}

int main(int argc, char **argv)
{
    struct opts o = {
        .speed = 1.0, .drain_ms = SPOT_DEVICE_DRAIN_MS, .log_level = "info"};
    int prc = parse_args(argc, argv, &o);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    enum log_level lvl;
    if (log_level_parse(o.log_level, &lvl) != SPOT_OK) {
        fprintf(stderr, "spotdevice: --log-level: error, warn, info, debug\n");
        return 2;
    }
    log_set_level(lvl);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    struct schema_set *schemas = NULL;
    struct device *dev = NULL;
    struct device_config cfg;
    bool cfg_ok = false;
    char err[256];
    if (schema_set_new(&schemas, err, sizeof err) != SPOT_OK) {
        fprintf(stderr, "spotdevice: built-in schemas: %s\n", err);
        return 1;
    }
    if (device_config_init(&cfg) != SPOT_OK)
        goto out;
    cfg_ok = true;
    struct config_report rep;
    config_report_init(&rep);
    int crc = device_config_load(&cfg, o.config, schemas, &rep);
    if (rep.len > 0)
        fprintf(stderr, "%s%s", rep.text,
                rep.truncated ? "(more problems not shown)\n" : "");
    if (crc != SPOT_OK) {
        fprintf(stderr, "spotdevice: %s: %d error%s\n", o.config, rep.errors,
                rep.errors == 1 ? "" : "s");
        rc = 2;
        goto out;
    }
    if (o.check) {
        device_config_print(&cfg, stdout);
        printf("%s: configuration OK\n", o.config);
        rc = 0;
        goto out;
    }

    struct device_opts dopts = {.cfg = &cfg,
                                .schemas = schemas,
                                .speed = o.speed,
                                .start_s = o.start_s};
    if (device_new(&dev, &dopts) != SPOT_OK || device_start(dev) != SPOT_OK)
        goto out;
    char id[SPOT_MAX_ID_LEN + 1];
    log_msg(LOG_INFO, MOD,
            "spotdevice %s: device %s, period %ld min, speed x%g, "
            "MQTT %s",
            SPOT_VERSION, device_config_client_id(&cfg, id, sizeof id),
            cfg.dev.period_min, o.speed,
            cfg.mqtt.enable ? "enabled" : "disabled");
    int sig = 0;
    struct device_stats last = {.periods = UINT64_MAX};
    while (sig == 0) {
        int64_t wait_ms;
        device_tick(dev, &wait_ms);
        if (o.status && wait_ms > 200)
            wait_ms = 200;
        sig = wait_signal(&set, wait_ms);
        /* written after the wait, not right after the tick: the file
         * shows what the publisher made of the last period's messages */
        if (o.status)
            update_status(dev, o.status, &last);
    }
    log_msg(LOG_INFO, MOD,
            "%s: sending what is queued (up to %lld ms), "
            "then stopping",
            strsignal(sig), o.drain_ms);
    device_shutdown(dev, (int)o.drain_ms);
    struct device_stats st;
    device_get_stats(dev, &st);
    if (o.status)
        device_status_write(&st, o.status);
    log_msg(LOG_INFO, MOD,
            "stopped: %" PRIu64 " periods, %" PRIu64 " messages, %" PRIu64
            " acknowledged, %" PRIu64 " queued, %" PRIu64 " dropped",
            st.periods, st.messages, st.pub.acked, st.spool.pending,
            st.spool.dropped);
    rc = 0;
out:
    device_free(dev);
    if (cfg_ok)
        device_config_clear(&cfg);
    schema_set_free(schemas);
    return rc;
}
