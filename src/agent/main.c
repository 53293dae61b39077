/*
 * spotagent: start-up and shut-down order, nothing else. Configuration and
 * schemas first, then the journal, the sinks that read it, and last the
 * MQTT ingress that feeds it; shut-down runs the same list backwards.
 * Signals are taken synchronously by the main thread (sigwait).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spot/err.h"
#include "spot/log.h"
#include "spot/schema.h"
#include "config.h"
#include "journal.h"
#include "metrics.h"
#include "mqtt_ingress.h"
#include "pg_sink.h"
#include "stdout_sink.h"

#define MOD "main"

#ifndef SPOT_VERSION
#define SPOT_VERSION "dev"
#endif
#ifndef SPOT_GIT_REV
#define SPOT_GIT_REV "unknown"
#endif

struct agent {
    struct agent_config *cfg;
    struct schema_set *schemas;
    struct journal *journal;
    struct metrics *metrics;
    struct pg_sink *pg;
    struct stdout_sink *out;
    struct ingress *ingress;
};

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

    int any_sink = c->pg_url != NULL;
    if (c->pg_url != NULL) {
        struct pg_sink_options po = {c->pg_url, c->pg_schema, true};
        rc = pg_sink_new(&a->pg, &po, a->journal, a->schemas, c->groups,
                         a->metrics);
        if (rc == SPOT_OK)
            rc = pg_sink_start(a->pg);
        if (rc != SPOT_OK)
            return rc;
    }
    if (!any_sink) {
        log_msg(LOG_INFO, MOD,
                "no sink configured: accepted messages go to "
                "standard output, rejected ones to %s/"
                "dead-letters.jsonl",
                c->data_dir);
        rc = stdout_sink_new(&a->out, c->data_dir, true, a->journal, a->schemas,
                             c->groups, a->metrics);
        if (rc == SPOT_OK)
            rc = stdout_sink_start(a->out);
        if (rc != SPOT_OK)
            return rc;
    }
    if (groups_count(c->groups) == 0)
        log_msg(LOG_WARN, MOD,
                "no service groups configured: messages of "
                "every apikey are accepted");
    rc = ingress_new(&a->ingress, c, a->journal, a->metrics);
    if (rc == SPOT_OK)
        rc = ingress_start(a->ingress);
    return rc;
}

static void stop(struct agent *a)
{
    /* No more blocking appends: a message already received is written even
     * past the journal's bound. */
    if (a->journal)
        journal_shutdown(a->journal);
    ingress_stop(a->ingress);
    pg_sink_stop(a->pg);
    stdout_sink_stop(a->out);
    ingress_free(a->ingress);
    pg_sink_free(a->pg);
    stdout_sink_free(a->out);
    journal_close(a->journal);
    metrics_free(a->metrics);
    schema_set_free(a->schemas);
    config_free(a->cfg);
}

static int wait_for_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            log_msg(LOG_WARN, MOD,
                    "SIGHUP: configuration reload is not "
                    "supported yet; restart to apply changes");
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
    log_level_parse(a.cfg->log_level, &level);
    log_set_level(level);

    rc = schema_set_new(&a.schemas, err, sizeof err);
    if (rc != SPOT_OK) {
        fprintf(stderr, "spotagent: built-in schemas: %s\n", err);
        config_free(a.cfg);
        return 2;
    }
    if (a.cfg->orion_url != NULL || a.cfg->ngsi_ld_url != NULL) {
        fprintf(stderr, "spotagent: orion-url/ngsi-ld-url: the NGSI sinks "
                        "are not part of this build yet\n");
        schema_set_free(a.schemas);
        config_free(a.cfg);
        return 2;
    }
    if (a.cfg->check_config) {
        printf("spotagent: configuration is valid (%zu service group(s), "
               "sinks: %s)\n",
               groups_count(a.cfg->groups), a.cfg->pg_url ? "pg" : "stdout");
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
    int sig = wait_for_signal();
    log_msg(LOG_INFO, MOD, "%s: stopping",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    stop(&a);
    log_msg(LOG_INFO, MOD, "stopped");
    return 0;
}
