/*
 * spotagent: start-up and shut-down order, nothing else. Configuration and
 * schemas first, then the journal, the sinks that read it, and last the
 * MQTT ingress that feeds it; shut-down runs the same list backwards.
 * Signals are taken synchronously by the main thread (sigwait).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spot/err.h"
#include "spot/log.h"
#include "spot/schema.h"
#include "activity.h"
#include "admin_http.h"
#include "config.h"
#include "groups.h"
#include "journal.h"
#include "metrics.h"
#include "mqtt_ingress.h"
#include "ngsi_encode.h"
#include "ngsi_sink.h"
#include "pg_sink.h"
#include "stdout_sink.h"

#define MOD "main"

#include "version.h" /* generated: SPOT_VERSION, SPOT_GIT_REV */

struct agent {
    struct agent_config *cfg;
    struct schema_set *schemas;
    struct journal *journal;
    struct metrics *metrics;
    struct pg_sink *pg;
    struct stdout_sink *out;
    struct ngsi_sink *orion;
    struct ngsi_sink *ngsi_ld;
    struct ingress *ingress;
    struct activity *activity;
    struct admin_http *http;
};

static int view_mqtt(void *ctx)
{
    struct agent *a = ctx;
    return a->ingress != NULL && ingress_is_connected(a->ingress);
}

static size_t view_sinks(void *ctx, enum sink_id *ids, int *ready, size_t max)
{
    struct agent *a = ctx;
    size_t n = 0;
    if (a->pg != NULL && n < max) {
        ids[n] = SINK_PG;
        ready[n++] = pg_sink_is_ready(a->pg);
    }
    if (a->orion != NULL && n < max) {
        ids[n] = SINK_ORION;
        ready[n++] = ngsi_sink_is_ready(a->orion);
    }
    if (a->ngsi_ld != NULL && n < max) {
        ids[n] = SINK_NGSI_LD;
        ready[n++] = ngsi_sink_is_ready(a->ngsi_ld);
    }
    if (a->out != NULL && n < max) {
        ids[n] = SINK_STDOUT;
        ready[n++] = 1;
    }
    return n;
}

/* Alive while every sink thread has turned its loop recently: the longest
 * legitimate pause is a back-off wait (30 s) or a request timeout. */
#define SINK_STALL_MS 120000

static int view_alive(void *ctx)
{
    struct agent *a = ctx;
    enum sink_id ids[SINK_COUNT];
    int ready[SINK_COUNT];
    size_t n = view_sinks(a, ids, ready, SINK_COUNT);
    for (size_t i = 0; i < n; i++) {
        int64_t age = metrics_heartbeat_age_ms(a->metrics, ids[i]);
        if (age > SINK_STALL_MS) {
            log_msg(LOG_ERROR, MOD, "sink %s made no progress for %lld s",
                    sink_name(ids[i]), (long long)(age / 1000));
            return 0;
        }
    }
    return 1;
}

static int view_journal(void *ctx, uint64_t *bytes, uint64_t *max_bytes,
                        int *failing)
{
    struct agent *a = ctx;
    *failing = journal_is_failing(a->journal);
    *bytes = journal_bytes(a->journal);
    *max_bytes = (uint64_t)a->cfg->journal_max_mb * 1024 * 1024;
    return journal_is_full(a->journal);
}

/* mkdir -p with mode 0700. */
static int make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return SPOT_ETOOBIG;
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
                log_msg(LOG_ERROR, MOD, "cannot create %s: %s", buf,
                        strerror(errno));
                return SPOT_EIO;
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return SPOT_OK;
}

static int start(struct agent *a)
{
    const struct agent_config *c = a->cfg;
    char dir[4096];
    int rc = make_dirs(c->data_dir);
    if (rc != SPOT_OK)
        return rc;
    snprintf(dir, sizeof dir, "%s/journal", c->data_dir);
    struct journal_options jo = {
        .dir = dir,
        .fsync_interval_ms = (unsigned)c->fsync_interval_ms,
        .max_bytes = (uint64_t)c->journal_max_mb * 1024 * 1024,
        .segment_bytes = SPOT_JOURNAL_SEGMENT_BYTES,
    };
    if (jo.max_bytes < 4ull * jo.segment_bytes)
        jo.segment_bytes = (uint32_t)(jo.max_bytes / 4);
    rc = journal_open(&a->journal, &jo);
    if (rc != SPOT_OK) {
        log_msg(LOG_ERROR, MOD, "cannot open the journal in %s: %s", dir,
                spot_strerror(rc));
        return rc;
    }
    rc = metrics_new(&a->metrics);
    if (rc != SPOT_OK)
        return rc;
    if (strcmp(c->http_listen, "off") != 0) {
        rc = activity_new(&a->activity);
        if (rc != SPOT_OK)
            return rc;
    }

    int any_sink = c->pg_url || c->orion_url || c->ngsi_ld_url;
    /* Exactly one sink stores dead letters: PostgreSQL when enabled,
     * else the first NGSI sink, else the stdout sink (file store). */
    int rejects_taken = 0;
    if (c->pg_url != NULL) {
        struct pg_sink_options po = {c->pg_url, c->pg_schema, true};
        rejects_taken = 1;
        rc = pg_sink_new(&a->pg, &po, a->journal, a->schemas, c->groups,
                         a->metrics);
        if (rc == SPOT_OK) {
            pg_sink_set_activity(a->pg, a->activity);
            rc = pg_sink_start(a->pg);
        }
        if (rc != SPOT_OK)
            return rc;
    }
    enum ngsi_mapping mapping = NGSI_MAPPING_SDM;
    ngsi_mapping_parse(c->ngsi_mapping, &mapping);
    const char *urls[2] = {c->orion_url, c->ngsi_ld_url};
    struct ngsi_sink **slots[2] = {&a->orion, &a->ngsi_ld};
    for (int i = 0; i < 2; i++) {
        if (urls[i] == NULL)
            continue;
        struct ngsi_sink_options no = {
            .flavour = i == 0 ? NGSI_FLAVOUR_V2 : NGSI_FLAVOUR_LD,
            .mapping = mapping,
            .url = urls[i],
            .token = c->orion_token,
            .token_bearer = strcmp(c->orion_auth, "bearer") == 0,
            .ca_file = c->orion_ca,
            .ld_context = c->ngsi_ld_context,
            .record_rejects = !rejects_taken,
            .data_dir = c->data_dir,
        };
        rejects_taken = 1;
        rc = ngsi_sink_new(slots[i], &no, a->journal, a->schemas, c->groups,
                           c->devices, a->metrics);
        if (rc == SPOT_OK)
            rc = ngsi_sink_start(*slots[i]);
        if (rc != SPOT_OK)
            return rc;
    }
    if (!any_sink) {
        log_msg(LOG_INFO, MOD,
                "no sink configured: accepted messages go to "
                "standard output, rejected ones to %s/"
                "dead-letters.jsonl",
                c->data_dir);
        struct stdout_sink_options so = {.mapping = mapping,
                                         .record_rejects = true,
                                         .data_dir = c->data_dir};
        rc = stdout_sink_new(&a->out, &so, a->journal, a->schemas, c->groups,
                             c->devices, a->metrics);
        if (rc == SPOT_OK) {
            stdout_sink_set_activity(a->out, a->activity);
            rc = stdout_sink_start(a->out);
        }
        if (rc != SPOT_OK)
            return rc;
    }
    if (groups_count(c->groups) == 0)
        log_msg(LOG_WARN, MOD,
                "no service groups configured: messages of "
                "every apikey are accepted");
    rc = ingress_new(&a->ingress, c, a->journal, a->metrics);
    if (rc == SPOT_OK) {
        ingress_set_activity(a->ingress, a->activity);
        rc = ingress_start(a->ingress);
    }
    if (rc == SPOT_OK && strcmp(c->http_listen, "off") != 0) {
        /* copied by admin_http_new */
        struct admin_view view = {a, view_mqtt, view_sinks, view_alive,
                                  view_journal};
        rc = admin_http_new(&a->http, c->http_listen, a->metrics, a->activity,
                            &view);
    }
    return rc;
}

/* Returns the exit status: 0, or 1 when the ingress had to be abandoned
 * (the process then ends here, without freeing what Paho's thread may
 * still use). */
static int stop(struct agent *a)
{
    /* No more blocking appends: a message already received is written even
     * past the journal's bound. */
    admin_http_free(a->http);
    if (a->journal)
        journal_shutdown(a->journal);
    ingress_stop(a->ingress);
    pg_sink_stop(a->pg);
    ngsi_sink_stop(a->orion);
    ngsi_sink_stop(a->ngsi_ld);
    stdout_sink_stop(a->out);
    if (ingress_abandoned(a->ingress)) {
        journal_sync(a->journal);
        log_msg(LOG_ERROR, MOD, "stopped without a clean MQTT disconnect");
        _exit(1);
    }
    ingress_free(a->ingress);
    pg_sink_free(a->pg);
    ngsi_sink_free(a->orion);
    ngsi_sink_free(a->ngsi_ld);
    stdout_sink_free(a->out);
    journal_close(a->journal);
    metrics_free(a->metrics);
    activity_free(a->activity);
    schema_set_free(a->schemas);
    config_free(a->cfg);
    return 0;
}

/* SIGHUP: loads the configuration again (same command line and
 * environment, the file re-read), validated whole. Valid: service groups
 * and the log level/format apply at once, other changes are logged as
 * needing a restart. Invalid: logged, the running configuration stays. */
static void reload(struct agent *a, int argc, char **argv)
{
    struct agent_config *fresh;
    char err[512] = "";
    if (config_load(&fresh, argc, argv, err, sizeof err) != SPOT_OK) {
        log_msg(LOG_ERROR, MOD,
                "SIGHUP: new configuration rejected, keeping the running "
                "one: %s",
                err);
        return;
    }
    config_log_changes(a->cfg, fresh);
    enum log_level level;
    enum log_format format;
    if (log_level_parse(fresh->log_level, &level) == SPOT_OK)
        log_set_level(level);
    if (log_format_parse(fresh->log_format, &format) == SPOT_OK)
        log_set_format(format);
    size_t before = groups_count(a->cfg->groups);
    groups_adopt(a->cfg->groups, fresh->groups);
    fresh->groups = NULL;
    log_msg(LOG_INFO, MOD,
            "SIGHUP: configuration reloaded: %zu service group(s) (was %zu); "
            "static device attributes apply after a restart",
            groups_count(a->cfg->groups), before);
    config_free(fresh);
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for SIGTERM or SIGINT (returned), reloading on SIGHUP. Reloads
 * are at least GROUPS_ADOPT_GAP_MS apart: SIGHUPs that arrive sooner are
 * coalesced into one reload when the gap has passed (it reads the file as
 * it is then). groups.c relies on this gap to know that a replaced table
 * is no longer in use when it frees it. */
static int wait_for_signal(struct agent *a, int argc, char **argv)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    bool reload_due = false;
    int64_t last_reload = INT64_MIN / 2;
    for (;;) {
        int sig;
        if (reload_due) {
            int64_t wait = last_reload + GROUPS_ADOPT_GAP_MS - monotonic_ms();
            if (wait <= 0) {
                reload_due = false;
                reload(a, argc, argv);
                last_reload = monotonic_ms();
                continue;
            }
            struct timespec ts = {.tv_sec = wait / 1000,
                                  .tv_nsec = (wait % 1000) * 1000000};
            sig = sigtimedwait(&set, NULL, &ts);
            if (sig < 0)
                continue; /* EAGAIN: the gap has passed; EINTR */
        } else if (sigwait(&set, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            reload_due = true;
            continue;
        }
        return sig;
    }
}

int main(int argc, char **argv)
{
    struct agent a = {0};
    char err[512] = "";
    int rc = config_load(&a.cfg, argc, argv, err, sizeof err);
    if (rc != SPOT_OK) {
        fprintf(stderr, "spotagent: %s\n", err);
        return 2;
    }
    if (a.cfg->help) {
        config_print_help(stdout);
        config_free(a.cfg);
        return 0;
    }
    if (a.cfg->version) {
        printf("spotagent %s (git %s)\n", SPOT_VERSION, SPOT_GIT_REV);
        config_free(a.cfg);
        return 0;
    }
    enum log_level level = LOG_INFO;
    enum log_format format = LOG_FORMAT_TEXT;
    log_level_parse(a.cfg->log_level, &level);
    log_format_parse(a.cfg->log_format, &format);
    log_set_level(level);
    log_set_format(format);

    rc = schema_set_new(&a.schemas, err, sizeof err);
    if (rc != SPOT_OK) {
        fprintf(stderr, "spotagent: built-in schemas: %s\n", err);
        config_free(a.cfg);
        return 2;
    }
    if (a.cfg->check_config) {
        const struct agent_config *c = a.cfg;
        printf("spotagent: configuration is valid (%zu service group(s); "
               "sinks:%s%s%s%s)\n",
               groups_count(c->groups), c->pg_url ? " pg" : "",
               c->orion_url ? " orion" : "", c->ngsi_ld_url ? " ngsi_ld" : "",
               c->pg_url || c->orion_url || c->ngsi_ld_url ? "" : " stdout");
        schema_set_free(a.schemas);
        config_free(a.cfg);
        return 0;
    }

    /* Signals are taken by sigwait in this thread only; threads created
     * from here on inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    log_msg(LOG_INFO, MOD, "spotagent %s (git %s) starting", SPOT_VERSION,
            SPOT_GIT_REV);
    rc = start(&a);
    if (rc != SPOT_OK) {
        log_msg(LOG_ERROR, MOD, "start-up failed: %s", spot_strerror(rc));
        stop(&a);
        return 1;
    }
    int sig = wait_for_signal(&a, argc, argv);
    log_msg(LOG_INFO, MOD, "%s: stopping",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = stop(&a);
    log_msg(LOG_INFO, MOD, "stopped");
    return rc;
}
