/*
 * spotsim's summary (API: spot/fleet.h): as JSON for tests and scripts
 * (yajl_gen) and as a few lines for people. Pure output: any thread.
 */
#include <stdio.h>
#include <string.h>

#include <yajl/yajl_gen.h>

#include "spot/err.h"
#include "spot/fleet.h"
#include "spot/message.h"

static void key(yajl_gen g, const char *k)
{
    yajl_gen_string(g, (const unsigned char *)k, strlen(k));
}

static void num(yajl_gen g, const char *k, double x)
{
    char buf[32];
    size_t n = message_format_number(x, buf);
    key(g, k);
    yajl_gen_number(g, buf, n);
}

static void u64(yajl_gen g, const char *k, uint64_t x)
{
    key(g, k);
    yajl_gen_integer(g, (long long)x);
}

static double round3(double x)
{
    return (double)(long long)(x * 1000.0 + 0.5) / 1000.0;
}

int fleet_summary_write_json(const struct fleet_summary *s,
                             const struct fleet_opts *o,
                             const struct schema_set *schemas, FILE *out)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g == NULL)
        return SPOT_ENOMEM;
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_map_open(g);
    u64(g, "seed", o->seed);
    u64(g, "devices", (uint64_t)o->devices);
    key(g, "apikey");
    yajl_gen_string(g, (const unsigned char *)o->apikey, strlen(o->apikey));
    u64(g, "qos", (uint64_t)o->mqtt->qos);
    num(g, "elapsed_s", round3(s->elapsed_s));
    num(g, "drain_s", round3(s->drain_s));
    u64(g, "periods", s->periods);
    u64(g, "generated", s->generated);
    u64(g, "delivered", s->delivered);
    u64(g, "pending", s->pending);
    u64(g, "dropped", s->dropped);
    u64(g, "failures", s->failures);
    u64(g, "connects", s->connects);
    u64(g, "connection_losses", s->losses);
    u64(g, "nulls", s->nulls);
    num(g, "generated_per_s",
        round3(s->elapsed_s > 0 ? (double)s->generated / s->elapsed_s : 0));
    double total = s->elapsed_s + s->drain_s;
    num(g, "delivered_per_s",
        round3(total > 0 ? (double)s->delivered / total : 0));
    key(g, "sent_per_vertical");
    yajl_gen_map_open(g);
    for (int v = 0; v < SPOT_V_COUNT; v++)
        u64(g, vertical_code((enum spot_vertical)v), s->per_vertical[v]);
    yajl_gen_map_close(g);
    key(g, "faults");
    yajl_gen_map_open(g);
    for (int k = 0; k < FAULT_COUNT; k++)
        u64(g, fault_name((enum fault_kind)k), s->faults[k]);
    yajl_gen_map_close(g);
    /* what the agent should make of it, when everything was delivered */
    key(g, "expected");
    yajl_gen_map_open(g);
    key(g, "rows");
    yajl_gen_map_open(g);
    uint64_t rows = 0;
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const struct schema_vertical *sv =
            schema_set_vertical(schemas, (enum spot_vertical)v);
        u64(g, sv->table, s->rows[v]);
        rows += s->rows[v];
    }
    yajl_gen_map_close(g);
    u64(g, "rows_total", rows);
    key(g, "rejected");
    yajl_gen_map_open(g);
    u64(g, "json", s->faults[FAULT_MALFORMED]);
    u64(g, "schema", s->faults[FAULT_WRONG_TYPE]);
    u64(g, "topic", s->faults[FAULT_WRONG_TOPIC]);
    u64(g, "range", s->faults[FAULT_RANGE]);
    yajl_gen_map_close(g);
    u64(g, "rejected_total",
        s->faults[FAULT_MALFORMED] + s->faults[FAULT_WRONG_TYPE] +
            s->faults[FAULT_WRONG_TOPIC] + s->faults[FAULT_RANGE]);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    const unsigned char *buf;
    size_t len;
    int rc = SPOT_ENOMEM;
    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok &&
        fwrite(buf, 1, len, out) == len)
        rc = SPOT_OK;
    yajl_gen_free(g);
    return rc;
}

void fleet_summary_print(const struct fleet_summary *s,
                         const struct fleet_opts *o, FILE *out)
{
    double total = s->elapsed_s + s->drain_s;
    fprintf(out,
            "spotsim: %ld devices, %llu periods, %llu messages generated in "
            "%.2f s (%.0f msg/s)\n"
            "spotsim: %llu delivered (QoS %ld) in %.2f s (%.0f msg/s), "
            "%llu pending, %llu dropped, %llu failures\n",
            o->devices, (unsigned long long)s->periods,
            (unsigned long long)s->generated, s->elapsed_s,
            s->elapsed_s > 0 ? (double)s->generated / s->elapsed_s : 0.0,
            (unsigned long long)s->delivered, o->mqtt->qos, total,
            total > 0 ? (double)s->delivered / total : 0.0,
            (unsigned long long)s->pending, (unsigned long long)s->dropped,
            (unsigned long long)s->failures);
    fprintf(out, "spotsim: per vertical:");
    for (int v = 0; v < SPOT_V_COUNT; v++)
        fprintf(out, " %s=%llu", vertical_code((enum spot_vertical)v),
                (unsigned long long)s->per_vertical[v]);
    fprintf(out, "\nspotsim: faults:");
    for (int k = 0; k < FAULT_COUNT; k++)
        fprintf(out, " %s=%llu", fault_name((enum fault_kind)k),
                (unsigned long long)s->faults[k]);
    fprintf(out, "\n");
}
