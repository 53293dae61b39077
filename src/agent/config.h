/*
 * spotagent's configuration: every option of the contract §2 as a command
 * line flag, a SPOTAGENT_* environment variable and a key of the JSON file
 * given by --config, with precedence flag > environment > file > default.
 * The option table in config.c is the single description: --help, parsing
 * and validation are generated from it. Secrets may come from *_FILE
 * variables naming a file.
 *
 * Built and validated whole on the main thread; read-only afterwards.
 */
#ifndef SPOT_CONFIG_H
#define SPOT_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "spot/limits.h"
#include "devices.h"
#include "groups.h"

struct agent_config {
    char *config_path;
    char *mqtt_url;
    char *mqtt_username;
    char *mqtt_password;
    char *mqtt_ca;
    char *mqtt_cert;
    char *mqtt_key;
    char *mqtt_client_id;
    char *mqtt_topics[SPOT_MQTT_MAX_TOPICS];
    int n_mqtt_topics;
    int mqtt_qos;
    char *mqtt_share_group;
    char *pg_url;
    char *pg_schema;
    char *orion_url;
    char *ngsi_ld_url;
    char *ngsi_mapping;
    char *orion_token;
    char *orion_auth; /* "x-auth-token" or "bearer" */
    char *orion_ca;
    char *ngsi_ld_context;
    char *http_listen;
    char *data_dir;
    char *log_level;
    char *log_format;
    int fsync_interval_ms;
    int journal_max_mb;
    bool check_config;
    bool help;
    bool version;
    struct groups *groups;   /* from the file's "service_groups" */
    struct devices *devices; /* from the file's "devices" */
};

/* Builds the configuration from argv, the environment and the file named by
 * --config / SPOTAGENT_CONFIG. On failure returns SPOT_ECONFIG (or
 * SPOT_ENOMEM) with a one-line message in err. */
int config_load(struct agent_config **out, int argc, char **argv, char *err,
                size_t errlen);
void config_free(struct agent_config *c);

/* Logs which options differ between the running and a freshly loaded
 * configuration (names only, never values), saying which apply now. */
void config_log_changes(const struct agent_config *running,
                        const struct agent_config *fresh);

/* Prints the option table (--help). */
void config_print_help(FILE *f);

#endif
