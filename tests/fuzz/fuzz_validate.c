/*
 * Fuzz target: the validator (src/agent/validate.c) over a topic and a
 * payload (input format: fuzz_common.h), once without service groups and
 * once with them. Invariants: fuzz_check_record (reason and detail sane,
 * valid UTF-8 everywhere a sink writes text, extra fields valid JSON, typed
 * values consistent), and the same input validated twice gives the same
 * verdict (no state leaks from one message into the next).
 */
#include <string.h>

#include "spot/err.h"
#include "fuzz.h"
#include "fuzz_common.h"

static void run(struct validator *v, const struct fuzz_msg *m)
{
    const struct record *r;
    FUZZ_ASSERT(validator_run(v, m->topic, m->topic_len, m->payload,
                              m->payload_len, 1700000000000000, &r) == SPOT_OK);
    fuzz_check_record(r, m);
    enum reject_reason reason = r->reason;
    char detail[SPOT_MAX_DETAIL_LEN];
    memcpy(detail, r->detail, sizeof detail);
    FUZZ_ASSERT(validator_run(v, m->topic, m->topic_len, m->payload,
                              m->payload_len, 1700000000000000, &r) == SPOT_OK);
    FUZZ_ASSERT(r->reason == reason && strcmp(r->detail, detail) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_world *w = fuzz_world();
    struct fuzz_msg m;
    fuzz_split(data, size, &m);
    run(w->open, &m);
    run(w->closed, &m);
    return 0;
}
