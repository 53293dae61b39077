/*
 * Fuzz target: the NGSI encoder (src/agent/ngsi_encode.c) over whatever the
 * validator accepts (input format: fuzz_common.h), in both flavours (v2,
 * LD) and both mappings (sdm, compat), with service groups and a devices
 * table. Invariants: an entity is exactly one JSON object in valid UTF-8
 * whose id and type are legal NGSI names; a refusal says why.
 */
#include <string.h>

#include "spot/err.h"
#include "fuzz.h"
#include "fuzz_common.h"
#include "ngsi_encode.h"

static struct ngsi_encoder *enc[2][2];

static void encode_all(const struct record *r)
{
    for (int f = 0; f < 2; f++) {
        for (int m = 0; m < 2; m++) {
            struct ngsi_entity ent;
            char why[256] = "";
            int rc = ngsi_encode(enc[f][m], r, &ent, why, sizeof why);
            if (r->reason != REJECT_NONE && r->reason != REJECT_RANGE) {
                FUZZ_ASSERT(rc == SPOT_EINVAL);
                continue;
            }
            FUZZ_ASSERT(rc == SPOT_OK || rc == SPOT_EINVAL);
            if (rc != SPOT_OK) {
                FUZZ_ASSERT(why[0] != '\0');
                continue;
            }
            FUZZ_ASSERT(ent.json != NULL && ent.len >= 2 && ent.json[0] == '{');
            FUZZ_ASSERT(fuzz_json_ok(ent.json, ent.len));
            FUZZ_ASSERT(fuzz_utf8_ok((const unsigned char *)ent.json, ent.len));
            FUZZ_ASSERT(ngsi_name_is_legal(ent.type, strlen(ent.type)));
            if (f == NGSI_FLAVOUR_V2)
                FUZZ_ASSERT(ngsi_name_is_legal(ent.id, strlen(ent.id)));
            else
                FUZZ_ASSERT(strncmp(ent.id, "urn:ngsi-ld:", 12) == 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_world *w = fuzz_world();
    if (enc[0][0] == NULL) {
        for (int f = 0; f < 2; f++)
            for (int m = 0; m < 2; m++)
                FUZZ_ASSERT(ngsi_encoder_new(&enc[f][m], (enum ngsi_flavour)f,
                                             (enum ngsi_mapping)m,
                                             w->devices) == SPOT_OK);
    }
    struct fuzz_msg m;
    fuzz_split(data, size, &m);
    struct validator *vs[2] = {w->open, w->closed};
    for (int i = 0; i < 2; i++) {
        const struct record *r;
        FUZZ_ASSERT(validator_run(vs[i], m.topic, m.topic_len, m.payload,
                                  m.payload_len, 1700000000000000,
                                  &r) == SPOT_OK);
        encode_all(r);
    }
    return 0;
}
