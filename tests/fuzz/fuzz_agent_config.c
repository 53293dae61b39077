/*
 * Fuzz target: the agent's configuration file loader (src/agent/config.c,
 * with the service groups of groups.c and the static device attributes of
 * devices.c) over any file contents, given as --config. Invariants: the
 * result is SPOT_OK or SPOT_ECONFIG; a refusal comes with a one-line
 * message; a loaded configuration is complete (every default filled).
 */
#include <stdio.h>
#include <string.h>

#include "spot/err.h"
#include "config.h"
#include "fuzz.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[512];
    if (path[0] == '\0') {
        fuzz_quiet_logs();
        snprintf(path, sizeof path, "%s/agent.json", fuzz_scratch_dir());
    }
    FUZZ_ASSERT(fuzz_write_file(path, data, size) == 0);
    char prog[] = "spotagent", flag[] = "--config";
    char *argv[] = {prog, flag, path, NULL};
    char err[512] = "";
    struct agent_config *c = NULL;
    int rc = config_load(&c, 3, argv, err, sizeof err);
    FUZZ_ASSERT(rc == SPOT_OK || rc == SPOT_ECONFIG);
    if (rc != SPOT_OK) {
        FUZZ_ASSERT(c == NULL);
        FUZZ_ASSERT(err[0] != '\0' && strchr(err, '\n') == NULL);
        return 0;
    }
    FUZZ_ASSERT(c->mqtt_url && c->mqtt_client_id && c->pg_schema &&
                c->http_listen && c->data_dir && c->log_level &&
                c->ngsi_mapping && c->log_format && c->groups && c->devices);
    FUZZ_ASSERT(c->n_mqtt_topics >= 1 &&
                c->n_mqtt_topics <= SPOT_MQTT_MAX_TOPICS);
    config_free(c);
    return 0;
}
