/*
 * Fuzz target: the device configuration loader
 * (src/device/device_config.c) over any JSON text, applied on top of the
 * defaults and validated whole, then printed (--check-config's output).
 * Invariants: the result is SPOT_OK or SPOT_ECONFIG; an error is reported
 * as at least one line; a valid configuration validates again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spot/device_config.h"
#include "spot/err.h"
#include "fuzz.h"
#include "fuzz_util.h"

static struct schema_set *schemas;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (schemas == NULL) {
        char err[256];
        fuzz_quiet_logs();
        FUZZ_ASSERT(schema_set_new(&schemas, err, sizeof err) == SPOT_OK);
    }
    struct device_config c;
    FUZZ_ASSERT(device_config_init(&c) == SPOT_OK);
    struct config_report *rep = malloc(sizeof *rep);
    FUZZ_ASSERT(rep != NULL);
    config_report_init(rep);
    int rc = device_config_parse(&c, (const char *)data, size, schemas, rep);
    FUZZ_ASSERT(rc == SPOT_OK || rc == SPOT_ECONFIG);
    FUZZ_ASSERT(rep->len < sizeof rep->text && rep->text[rep->len] == '\0');
    if (rc == SPOT_ECONFIG) {
        FUZZ_ASSERT(rep->errors > 0 && rep->len > 0);
    } else {
        FUZZ_ASSERT(rep->errors == 0);
        config_report_init(rep);
        FUZZ_ASSERT(device_config_validate(&c, schemas, rep) == SPOT_OK);
        char id[512];
        FUZZ_ASSERT(device_config_client_id(&c, id, sizeof id) != NULL);
        FILE *f = fopen("/dev/null", "w");
        if (f != NULL) {
            device_config_print(&c, f);
            fclose(f);
        }
    }
    device_config_clear(&c);
    free(rep);
    return 0;
}
