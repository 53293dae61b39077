/*
 * Fuzz target: what the NGSI sinks read from a context broker
 * (src/agent/ngsi_batch.c): error bodies turned into a log line, NGSI-LD
 * 207 multi-status bodies, and the entity check. A broker is a peer the
 * agent does not control. Invariants: the log line is NUL-terminated,
 * printable ASCII within its buffer; every 207 error names an entity.
 */
#include <string.h>

#include "spot/err.h"
#include "fuzz.h"
#include "fuzz_util.h"
#include "ngsi_batch.h"

static void on_error(void *arg, const struct ngsi_ld_error *e)
{
    (*(int *)arg)++;
    FUZZ_ASSERT(e->entity_id != NULL);
    FUZZ_ASSERT(memchr(e->detail, '\0', sizeof e->detail) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    char line[160];
    fuzz_quiet_logs();
    memset(line, 'Z', sizeof line);
    ngsi_error_line(body, size, line, sizeof line);
    size_t n = strnlen(line, sizeof line);
    FUZZ_ASSERT(n < sizeof line);
    for (size_t i = 0; i < n; i++)
        FUZZ_ASSERT(line[i] >= 0x20 && line[i] < 0x7f);
    int errors = 0;
    int rc = ngsi_ld_parse_207(body, size, on_error, &errors);
    FUZZ_ASSERT(rc == SPOT_OK || rc == SPOT_EINVAL);
    FUZZ_ASSERT(rc == SPOT_OK || errors == 0);
    int ok = ngsi_entity_check(body, size);
    FUZZ_ASSERT(ok == 0 || ok == 1);
    return 0;
}
