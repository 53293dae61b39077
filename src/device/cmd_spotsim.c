/*
 * spotsim: the fleet simulator and load generator. Options in, a struct
 * fleet_opts and the MQTT client resources out, then fleet_run and the
 * summary. SIGINT / SIGTERM stop the generation early (the summary is
 * still written). Options: docs/device.md.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spot/clock.h"
#include "spot/device_limits.h"
#include "spot/err.h"
#include "spot/fault.h"
#include "spot/fleet.h"
#include "spot/log.h"
#include "spot/message.h"
#include "spot/mqtt_config.h"
#include "spot/mqtt_url.h"
#include "spot/schema.h"
#include "spot/time_arg.h"

#include "version.h" /* generated: SPOT_VERSION, SPOT_GIT_REV */

static volatile sig_atomic_t stop_flag;

/* The first signal stops the generation; a second one the drain. */
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = stop_flag < 2 ? stop_flag + 1 : 2;
}

struct cli {
    const char *url;
    long transport; /* 0: from the URL */
    const char *username, *password, *ca, *cert, *key;
    long qos, keep_alive;
    const char *summary;
    const char *log_level;
    double period_ms;
    bool quiet;
    bool window_set;
};

static void usage(FILE *f)
{
    fprintf(
        f, "usage: spotsim [options]\n"
           "\n"
           "Simulates a fleet of Smart Spot devices publishing over MQTT (the "
           "device\ncore with simulated sensors), for demos, tests and load "
           "tests.\n"
           "\n"
           "Broker:\n"
           "  --url URL             mqtt://host:port, mqtts://host:port (TLS), "
           "ws://host:port/path,\n"
           "                        wss://host:port/path; may carry user:pass@ "
           "(default\n"
           "                        mqtt://127.0.0.1:1883)\n"
           "  --username U, --password P\n"
           "  --ca FILE, --cert FILE, --key FILE   PEM files for TLS\n"
           "  --qos 0|1|2           QoS of the data (default 1)\n"
           "  --keep-alive S        20..6000 (default 120)\n"
           "  --connections K       devices share K MQTT connections "
           "(default: one each)\n"
           "  --shared-connection   all devices on one connection "
           "(--connections 1)\n"
           "  --window W            messages in flight per connection "
           "(default 100, 1000 shared)\n"
           "Fleet:\n"
           "  --devices N           number of devices (default 10)\n"
           "  --apikey KEY          base apikey of every device (default "
           "simKey)\n"
           "  --device-prefix P     device ids P0000, P0001, ... (default "
           "sim)\n"
           "  --verticals LIST      all, or e.g. aqo,nlo,dho (default all)\n"
           "  --vertical-mix        each device a seeded subset of them\n"
           "  --period MIN[,MIN..]  sampling periods, one per device, seeded "
           "(default 5)\n"
           "  --failure-rate P      probability a sensor field reads null "
           "(default 0.02)\n"
           "  --seed N              everything derives from it (default 1)\n"
           "Time and load:\n"
           "  --speed X             simulated seconds per real second "
           "(default 1)\n"
           "  --period-ms MS        a sampling period lasts MS real ms (sets "
           "--speed)\n"
           "  --start TIME          simulated start: now, Unix seconds, "
           "2026-01-01T00:00:00Z\n"
           "  --rate R|max          target messages per second instead of a "
           "clock (load tests)\n"
           "  --duration S          generate for S real seconds\n"
           "  --count N             stop after N messages\n"
           "  --fault SPEC          e.g. malformed=0.01,wrong-type=0.01,"
           "wrong-topic=0.01,\n"
           "                        range=0.01,duplicate=0.01,burst=0.001,"
           "burst-size=20\n"
           "Output and the rest:\n"
           "  --summary FILE        write the summary as JSON (\"-\": stdout)\n"
           "  --drain-timeout S     wait S s for the last acknowledgements "
           "(default 30)\n"
           "  --spool-dir DIR       keep the spools there (default: a "
           "temporary directory)\n"
           "  --spool-kb N          spool bound per connection (default "
           "16384)\n"
           "  --fsync-ms N          spool fsync interval, -1 never (default "
           "-1)\n"
           "  --log-level L         error, warn, info, debug (default warn)\n"
           "  --quiet               no summary on stderr\n"
           "  --version, --help\n");
}

static int bad(const char *opt, const char *what)
{
    fprintf(stderr, "spotsim: %s: %s\n", opt, what);
    return 2;
}

static int parse_verticals(const char *s, unsigned *out)
{
    if (strcmp(s, "all") == 0) {
        *out = (1u << SPOT_V_COUNT) - 1;
        return SPOT_OK;
    }
    unsigned m = 0;
    const char *p = s;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        enum spot_vertical v;
        if (len != 3 || vertical_from_code(p, 3, &v) != SPOT_OK)
            return SPOT_EINVAL;
        m |= 1u << v;
        p = end ? end + 1 : p + len;
    }
    *out = m;
    return m ? SPOT_OK : SPOT_EINVAL;
}

static int parse_periods(const char *s, struct fleet_opts *o)
{
    o->n_periods = 0;
    const char *p = s;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char buf[16];
        long long v;
        if (len == 0 || len >= sizeof buf ||
            o->n_periods == SPOT_SIM_MAX_PERIODS_LIST)
            return SPOT_EINVAL;
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (time_arg_long(buf, SPOT_DEVICE_MIN_PERIOD_MIN,
                          SPOT_DEVICE_MAX_PERIOD_MIN, &v) != SPOT_OK)
            return SPOT_EINVAL;
        o->periods[o->n_periods++] = (long)v;
        p = end ? end + 1 : p + len;
    }
    return o->n_periods ? SPOT_OK : SPOT_EINVAL;
}

enum {
    O_URL = 256,
    O_TRANSPORT,
    O_USER,
    O_PASS,
    O_CA,
    O_CERT,
    O_KEY,
    O_QOS,
    O_KEEPALIVE,
    O_CONNS,
    O_SHARED,
    O_WINDOW,
    O_DEVICES,
    O_APIKEY,
    O_PREFIX,
    O_VERTICALS,
    O_MIX,
    O_PERIOD,
    O_FAILRATE,
    O_SEED,
    O_SPEED,
    O_PERIOD_MS,
    O_START,
    O_RATE,
    O_DURATION,
    O_COUNT,
    O_FAULT,
    O_SUMMARY,
    O_DRAIN,
    O_SPOOL_DIR,
    O_SPOOL_KB,
    O_FSYNC,
    O_LOG,
    O_QUIET,
    O_VERSION,
    O_HELP,
};

static const struct option longs[] = {
    {"url", required_argument, NULL, O_URL},
    {"transport", required_argument, NULL, O_TRANSPORT},
    {"username", required_argument, NULL, O_USER},
    {"password", required_argument, NULL, O_PASS},
    {"ca", required_argument, NULL, O_CA},
    {"cert", required_argument, NULL, O_CERT},
    {"key", required_argument, NULL, O_KEY},
    {"qos", required_argument, NULL, O_QOS},
    {"keep-alive", required_argument, NULL, O_KEEPALIVE},
    {"connections", required_argument, NULL, O_CONNS},
    {"shared-connection", no_argument, NULL, O_SHARED},
    {"window", required_argument, NULL, O_WINDOW},
    {"devices", required_argument, NULL, O_DEVICES},
    {"apikey", required_argument, NULL, O_APIKEY},
    {"device-prefix", required_argument, NULL, O_PREFIX},
    {"verticals", required_argument, NULL, O_VERTICALS},
    {"vertical-mix", no_argument, NULL, O_MIX},
    {"period", required_argument, NULL, O_PERIOD},
    {"failure-rate", required_argument, NULL, O_FAILRATE},
    {"seed", required_argument, NULL, O_SEED},
    {"speed", required_argument, NULL, O_SPEED},
    {"period-ms", required_argument, NULL, O_PERIOD_MS},
    {"start", required_argument, NULL, O_START},
    {"rate", required_argument, NULL, O_RATE},
    {"duration", required_argument, NULL, O_DURATION},
    {"count", required_argument, NULL, O_COUNT},
    {"fault", required_argument, NULL, O_FAULT},
    {"summary", required_argument, NULL, O_SUMMARY},
    {"drain-timeout", required_argument, NULL, O_DRAIN},
    {"spool-dir", required_argument, NULL, O_SPOOL_DIR},
    {"spool-kb", required_argument, NULL, O_SPOOL_KB},
    {"fsync-ms", required_argument, NULL, O_FSYNC},
    {"log-level", required_argument, NULL, O_LOG},
    {"quiet", no_argument, NULL, O_QUIET},
    {"version", no_argument, NULL, O_VERSION},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

/* Returns 0 to go on, 1 to exit 0 (help), 2 on a usage error. */
static int parse_args(int argc, char **argv, struct cli *c,
                      struct fleet_opts *o)
{
    int ch;
    long long v;
    double x;
    char why[200];
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        const char *a = optarg;
        switch (ch) {
        case O_URL:
            c->url = a;
            break;
        case O_TRANSPORT:
            if (time_arg_long(a, 1, 4, &v) != SPOT_OK)
                return bad("--transport", "1..4");
            c->transport = (long)v;
            break;
        case O_USER:
            c->username = a;
            break;
        case O_PASS:
            c->password = a;
            break;
        case O_CA:
            c->ca = a;
            break;
        case O_CERT:
            c->cert = a;
            break;
        case O_KEY:
            c->key = a;
            break;
        case O_QOS:
            if (time_arg_long(a, 0, 2, &v) != SPOT_OK)
                return bad("--qos", "0, 1 or 2");
            c->qos = (long)v;
            break;
        case O_KEEPALIVE:
            if (time_arg_long(a, 20, 6000, &v) != SPOT_OK)
                return bad("--keep-alive", "20..6000");
            c->keep_alive = (long)v;
            break;
        case O_CONNS:
            if (time_arg_long(a, 1, SPOT_SIM_MAX_CONNECTIONS, &v) != SPOT_OK)
                return bad("--connections", "1..2000");
            o->connections = (int)v;
            break;
        case O_SHARED:
            o->connections = 1;
            break;
        case O_WINDOW:
            if (time_arg_long(a, 1, SPOT_DEVICE_MAX_WINDOW, &v) != SPOT_OK)
                return bad("--window", "1..10000");
            o->window = (int)v;
            c->window_set = true;
            break;
        case O_DEVICES:
            if (time_arg_long(a, 1, SPOT_SIM_MAX_DEVICES, &v) != SPOT_OK)
                return bad("--devices", "1..100000");
            o->devices = (long)v;
            break;
        case O_APIKEY:
            o->apikey = a;
            break;
        case O_PREFIX:
            o->device_prefix = a;
            break;
        case O_VERTICALS:
            if (parse_verticals(a, &o->verticals) != SPOT_OK)
                return bad("--verticals", "all, or codes such as aqo,nlo");
            break;
        case O_MIX:
            o->vertical_mix = true;
            break;
        case O_PERIOD:
            if (parse_periods(a, o) != SPOT_OK)
                return bad("--period", "minutes 1..10080, comma-separated");
            break;
        case O_FAILRATE:
            if (time_arg_number(a, &x) != SPOT_OK || x > 1)
                return bad("--failure-rate", "a probability 0..1");
            o->failure_rate = x;
            break;
        case O_SEED:
            if (time_arg_long(a, 0, INT64_MAX, &v) != SPOT_OK)
                return bad("--seed", "a non-negative integer");
            o->seed = (uint64_t)v;
            break;
        case O_SPEED:
            if (time_arg_number(a, &x) != SPOT_OK || x <= 0)
                return bad("--speed", "a positive number");
            o->speed = x;
            break;
        case O_PERIOD_MS:
            if (time_arg_number(a, &x) != SPOT_OK || x <= 0)
                return bad("--period-ms", "a positive number");
            c->period_ms = x;
            break;
        case O_START:
            if (time_arg_parse(a, spot_now_us() / 1000000, &o->start_s) !=
                SPOT_OK)
                return bad("--start", "now, Unix seconds or "
                                      "YYYY-MM-DDThh:mm:ssZ");
            break;
        case O_RATE:
            if (strcmp(a, "max") == 0)
                o->rate = -1;
            else if (time_arg_number(a, &x) != SPOT_OK || x <= 0)
                return bad("--rate", "messages per second, or max");
            else
                o->rate = x;
            break;
        case O_DURATION:
            if (time_arg_number(a, &x) != SPOT_OK || x <= 0)
                return bad("--duration", "seconds");
            o->duration_s = x;
            break;
        case O_COUNT:
            if (time_arg_long(a, 1, INT64_MAX, &v) != SPOT_OK)
                return bad("--count", "a positive integer");
            o->count = (uint64_t)v;
            break;
        case O_FAULT:
            if (fault_parse(a, &o->faults, why, sizeof why) != SPOT_OK)
                return bad("--fault", why);
            break;
        case O_SUMMARY:
            c->summary = a;
            break;
        case O_DRAIN:
            if (time_arg_number(a, &x) != SPOT_OK)
                return bad("--drain-timeout", "seconds");
            o->drain_s = x;
            break;
        case O_SPOOL_DIR:
            o->spool_dir = a;
            break;
        case O_SPOOL_KB:
            if (time_arg_long(a, SPOT_SPOOL_MIN_KB, SPOT_SPOOL_MAX_KB, &v) !=
                SPOT_OK)
                return bad("--spool-kb", "16..16777216");
            o->spool_kb = (long)v;
            break;
        case O_FSYNC:
            if (time_arg_long(a, -1, SPOT_SPOOL_MAX_FSYNC_MS, &v) != SPOT_OK)
                return bad("--fsync-ms", "-1..3600000");
            o->fsync_ms = (int)v;
            break;
        case O_LOG:
            c->log_level = a;
            break;
        case O_QUIET:
            c->quiet = true;
            break;
        case O_VERSION:
            printf("spotsim %s\n", SPOT_VERSION);
            return 1;
        case O_HELP:
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "spotsim: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    return 0;
}

/* --url -> resources 1, 2, 3 (and 10/11 from user info). */
static int url_to_resources(const struct cli *c, struct mqtt_config *m,
                            struct config_report *r)
{
    const char *sep = strstr(c->url, "://");
    if (sep == NULL) {
        config_report_error(r, "--url: no scheme");
        return SPOT_EINVAL;
    }
    size_t slen = (size_t)(sep - c->url);
    long transport;
    const char *scheme;
    long port;
    if (slen == 4 && strncmp(c->url, "mqtt", 4) == 0) {
        transport = 1, scheme = "mqtt", port = 1883;
    } else if (slen == 5 && strncmp(c->url, "mqtts", 5) == 0) {
        transport = 2, scheme = "mqtt", port = 8883;
    } else if (slen == 2 && strncmp(c->url, "ws", 2) == 0) {
        transport = 3, scheme = "ws", port = 80;
    } else if (slen == 3 && strncmp(c->url, "wss", 3) == 0) {
        transport = 4, scheme = "wss", port = 443;
    } else {
        config_report_error(r, "--url: mqtt://, mqtts://, ws:// or wss://");
        return SPOT_EINVAL;
    }
    char norm[SPOT_DEVICE_MAX_URL + 16];
    snprintf(norm, sizeof norm, "%s%s", scheme, sep);
    struct mqtt_url u;
    char why[160];
    if (mqtt_url_parse(norm, &u, why, sizeof why) != SPOT_OK) {
        config_report_error(r, "--url: %s", why);
        return SPOT_EINVAL;
    }
    if (u.port > 0)
        port = u.port;
    char server[2 * SPOT_DEVICE_MAX_URL];
    int n =
        snprintf(server, sizeof server, "%s://%s%s", scheme, u.host, u.path);
    if (n < 0 || (size_t)n >= sizeof server) {
        config_report_error(r, "--url: too long");
        return SPOT_EINVAL;
    }
    int rc = mqtt_config_set_string(m, MQTT_RES_SERVER, server, r);
    rc |= mqtt_config_set_int(m, MQTT_RES_TRANSPORT,
                              c->transport ? c->transport : transport, r);
    rc |= mqtt_config_set_int(m, MQTT_RES_PORT, port, r);
    if (u.has_user && !c->username)
        rc |= mqtt_config_set_string(m, MQTT_RES_USERNAME, u.user, r);
    if (u.has_password && !c->password)
        rc |= mqtt_config_set_string(m, MQTT_RES_PASSWORD, u.password, r);
    return rc ? SPOT_EINVAL : SPOT_OK;
}

static int build_mqtt(const struct cli *c, struct mqtt_config *m,
                      struct config_report *r)
{
    int rc = mqtt_config_init(m);
    if (rc != SPOT_OK)
        return rc;
    rc = mqtt_config_set_bool(m, MQTT_RES_ENABLE, true, r);
    rc |= url_to_resources(c, m, r);
    rc |= mqtt_config_set_int(m, MQTT_RES_QOS, c->qos, r);
    rc |= mqtt_config_set_int(m, MQTT_RES_KEEP_ALIVE, c->keep_alive, r);
    if (c->username)
        rc |= mqtt_config_set_string(m, MQTT_RES_USERNAME, c->username, r);
    if (c->password)
        rc |= mqtt_config_set_string(m, MQTT_RES_PASSWORD, c->password, r);
    if (c->ca)
        rc |= mqtt_config_set_string(m, MQTT_RES_CA, c->ca, r);
    if (c->cert)
        rc |= mqtt_config_set_string(m, MQTT_RES_CERT, c->cert, r);
    if (c->key)
        rc |= mqtt_config_set_string(m, MQTT_RES_KEY, c->key, r);
    if (rc != SPOT_OK)
        return SPOT_ECONFIG;
    return mqtt_config_validate(m, "spotsim", r);
}

int main(int argc, char **argv)
{
    struct cli c = {.url = "mqtt://127.0.0.1:1883",
                    .qos = 1,
                    .keep_alive = 120,
                    .log_level = "warn"};
    struct fleet_opts o = {
        .devices = 10,
        .apikey = "simKey",
        .device_prefix = "sim",
        .verticals = (1u << SPOT_V_COUNT) - 1,
        .periods = {5},
        .n_periods = 1,
        .speed = 1.0,
        .seed = 1,
        .failure_rate = 0.02,
        .window = SPOT_DEVICE_DEFAULT_WINDOW,
        .spool_kb = SPOT_SPOOL_DEFAULT_KB,
        .fsync_ms = -1,
        .drain_s = 30,
        .faults = {.burst_size = FAULT_DEFAULT_BURST},
    };
    int prc = parse_args(argc, argv, &c, &o);
    if (prc != 0)
        return prc == 1 ? 0 : 2;
    enum log_level lvl;
    if (log_level_parse(c.log_level, &lvl) != SPOT_OK)
        return bad("--log-level", "error, warn, info, debug");
    log_set_level(lvl);
    if (o.start_s == 0)
        o.start_s = spot_now_us() / 1000000;
    if (c.period_ms > 0)
        o.speed = (double)o.periods[0] * 60.0 * 1000.0 / c.period_ms;
    if (!c.window_set && o.connections > 0 && o.connections < o.devices)
        o.window = 1000;

    struct schema_set *schemas = NULL;
    char err[256];
    if (schema_set_new(&schemas, err, sizeof err) != SPOT_OK) {
        fprintf(stderr, "spotsim: built-in schemas: %s\n", err);
        return 1;
    }
    o.schemas = schemas;
    struct mqtt_config mqtt;
    struct config_report rep;
    config_report_init(&rep);
    int rc = build_mqtt(&c, &mqtt, &rep);
    if (rep.len > 0)
        fprintf(stderr, "%s", rep.text);
    if (rc != SPOT_OK) {
        fprintf(stderr, "spotsim: the MQTT client resources come from --url "
                        "(1-3, 10, 11), --keep-alive (4), --username (10), "
                        "--password (11), --ca (12), --cert (13), --key (14) "
                        "and --qos (15)\n");
        mqtt_config_clear(&mqtt);
        schema_set_free(schemas);
        return 2;
    }
    o.mqtt = &mqtt;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int exit_code = 1;
    struct fleet *f = NULL;
    if (fleet_new(&f, &o) != SPOT_OK) {
        fprintf(stderr, "spotsim: cannot set up the fleet (see the log)\n");
        goto out;
    }
    fleet_run(f, &stop_flag);
    struct fleet_summary s;
    fleet_get_summary(f, &s);
    if (!c.quiet)
        fleet_summary_print(&s, &o, stderr);
    if (c.summary) {
        FILE *out =
            strcmp(c.summary, "-") == 0 ? stdout : fopen(c.summary, "w");
        if (out == NULL) {
            fprintf(stderr, "spotsim: %s: %s\n", c.summary, strerror(errno));
            goto out;
        }
        int wrc = fleet_summary_write_json(&s, &o, schemas, out);
        fputc('\n', out);
        if ((out != stdout && fclose(out) != 0) || wrc != SPOT_OK) {
            fprintf(stderr, "spotsim: writing %s failed\n", c.summary);
            goto out;
        }
    }
    exit_code = s.pending == 0 && s.failures == 0 && s.dropped == 0 ? 0 : 1;
out:
    fleet_free(f);
    mqtt_config_clear(&mqtt);
    schema_set_free(schemas);
    return exit_code;
}
