/*
 * Micro-benchmark of the per-message CPU work on one core: parse + validate
 * (validator_run) and parse + validate + row encoding (pg_batch_add_record),
 * over the manufacturer's valid example messages. Prints ns per message.
 * Usage: bench_validate VECTOR_DIR [ITERATIONS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spot/err.h"
#include "spot/schema.h"
#include "pg_batch.h"
#include "pg_schema.h"
#include "validate.h"

struct msg {
    char topic[128];
    char *payload;
    size_t len;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static const char *const files[][2] = {
        {"aqo.json", "aqo"},       {"nlo.json", "nlo"},
        {"wto.json", "wto"},       {"cfo.json", "cfo"},
        {"cfe.fixed.json", "cfe"}, {"dev.fixed.json", "dev"},
        {"dho.fixed.json", "dho"},
    };
    enum { N = sizeof files / sizeof files[0] };
    if (argc < 2) {
        fprintf(stderr, "usage: bench_validate VECTOR_DIR [ITERATIONS]\n");
        return 2;
    }
    long iters = argc > 2 ? strtol(argv[2], NULL, 10) : 1000000;
    struct msg msgs[N];
    size_t total_bytes = 0;
    for (size_t i = 0; i < N; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", argv[1], files[i][0]);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            perror(path);
            return 1;
        }
        msgs[i].payload = malloc(8192);
        msgs[i].len = fread(msgs[i].payload, 1, 8192, f);
        fclose(f);
        const char *c = files[i][1];
        snprintf(msgs[i].topic, sizeof msgs[i].topic,
                 "/JRI9jTbEKJQS29y3bc8BC6%s/SmartSpot_AQ_1_%c%c%c/attrs", c,
                 c[0] - 32, c[1] - 32, c[2] - 32);
        total_bytes += msgs[i].len;
    }
    char err[256];
    struct schema_set *set;
    struct validator *v;
    struct pg_layout layout;
    struct pg_batch *batch;
    if (schema_set_new(&set, err, sizeof err) != SPOT_OK ||
        validator_new(&v, set, NULL) != SPOT_OK ||
        pg_layout_build(&layout, set, err, sizeof err) != SPOT_OK ||
        pg_batch_new(&batch, &layout) != SPOT_OK) {
        fprintf(stderr, "setup failed: %s\n", err);
        return 1;
    }

    const struct record *r;
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        const struct msg *m = &msgs[i % N];
        validator_run(v, m->topic, strlen(m->topic),
                      (const unsigned char *)m->payload, m->len, 0, &r);
        if (r->reason != REJECT_NONE) {
            fprintf(stderr, "unexpected rejection: %s\n", r->detail);
            return 1;
        }
    }
    double validate_ns = (now_s() - t0) / (double)iters * 1e9;

    t0 = now_s();
    for (long i = 0; i < iters; i++) {
        const struct msg *m = &msgs[i % N];
        validator_run(v, m->topic, strlen(m->topic),
                      (const unsigned char *)m->payload, m->len, 0, &r);
        struct pg_add_result res;
        pg_batch_add_record(batch, r, m->topic, strlen(m->topic),
                            (const unsigned char *)m->payload, m->len, true,
                            &res);
        if (pg_batch_data_rows(batch) >= 500)
            pg_batch_reset(batch);
    }
    double encode_ns = (now_s() - t0) / (double)iters * 1e9;

    printf("messages=%ld mean_payload_bytes=%zu\n", iters, total_bytes / N);
    printf("parse+validate: %.0f ns/message (%.0f messages/s on one core)\n",
           validate_ns, 1e9 / validate_ns);
    printf("parse+validate+row encoding: %.0f ns/message (%.0f messages/s on "
           "one core)\n",
           encode_ns, 1e9 / encode_ns);
    pg_batch_free(batch);
    validator_free(v);
    schema_set_free(set);
    for (size_t i = 0; i < N; i++)
        free(msgs[i].payload);
    return 0;
}
