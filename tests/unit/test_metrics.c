/* Metrics: counters render with the contract's names; heartbeats. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "spot/err.h"
#include "metrics.h"

Test(metrics, render_has_contract_names_and_counts)
{
    struct metrics *m;
    cr_assert_eq(metrics_new(&m), SPOT_OK);
    metrics_received(m, SPOT_V_AQO);
    metrics_received(m, SPOT_V_AQO);
    metrics_rejected(m, REJECT_JSON);
    metrics_sink_writes(m, SINK_PG, 7);
    metrics_latency(m, SINK_PG, 0, 2000);
    char *text;
    size_t len;
    cr_assert_eq(metrics_render(m, &text, &len), SPOT_OK);
    cr_assert_eq(strlen(text), len);
    cr_assert(strstr(
        text, "spotagent_messages_received_total{vertical=\"aqo\"} 2\n"));
    cr_assert(
        strstr(text, "spotagent_messages_rejected_total{reason=\"json\"} 1\n"));
    cr_assert(strstr(text, "spotagent_sink_writes_total{sink=\"pg\"} 7\n"));
    cr_assert(strstr(text, "spotagent_end_to_end_latency_seconds_bucket{sink="
                           "\"pg\",le=\"0.005\"} 1\n"));
    cr_assert(strstr(text, "# TYPE spotagent_mqtt_connected gauge\n"));
    free(text);
    metrics_free(m);
}

Test(metrics, heartbeat_age)
{
    struct metrics *m;
    cr_assert_eq(metrics_new(&m), SPOT_OK);
    cr_assert_eq(metrics_heartbeat_age_ms(m, SINK_ORION), -1);
    metrics_heartbeat(m, SINK_ORION);
    int64_t age = metrics_heartbeat_age_ms(m, SINK_ORION);
    cr_assert(age >= 0 && age < 10000, "age %lld", (long long)age);
    cr_assert_eq(metrics_heartbeat_age_ms(m, SINK_PG), -1);
    metrics_free(m);
}
