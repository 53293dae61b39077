#!/usr/bin/env bash
# Service groups from the configuration file, as PostgreSQL sees them:
# Fiware-Service and -ServicePath in the rows, a vertical outside a group's
# list and an unconfigured apikey rejected as unknown_apikey, generic
# devices (/{apikey}/{device}/attrs) stored in generic_measure (keyed by
# TimeInstant, or the receive time without one), a generic topic under a
# non-generic group refused, unknown fields kept in extra, the AvgDuration
# alias. Then SIGHUP: a valid new file adds an apikey at once; an invalid
# one is refused and the agent goes on with the last good configuration.
source "$(dirname "$0")/lib.sh"

CFG=$TEST_TMP/agent.json
write_config() {
    cat >"$CFG" <<EOF
{
  "log_level": "info",
  "service_groups": [
    {"apikey": "cityA", "service": "city", "service_path": "/env/air",
     "verticals": ["aqo", "cfo"]},
    {"apikey": "legacy42", "generic": true, "service": "city",
     "service_path": "/legacy"}$1
  ]
}
EOF
}
write_config ""

start_mosquitto
start_postgres
start_agent --config "$CFG"

aqo() {
    printf '{"TimeInstant":"2024-02-01T10:%02d:00Z","period":5,"status":"connected","no2-a4":%s%s}' \
        "$1" "$2" "${3:-}"
}

# --- accepted under a group ---------------------------------------------------
publish_payload /cityAaqo/S1_AQO/attrs "$(aqo 0 21.5 ',"fw":"1.2","x":{"a":[1,2]}')"
publish_payload /cityAcfo/S1_CFO/attrs \
    '{"TimeInstant":"2024-02-01T10:00:00Z","period":5,"status":"connected","peopleCount":17,"AvgDuration":42}'
# --- refused ------------------------------------------------------------------
publish_payload /cityAnlo/S1_NLO/attrs \
    '{"TimeInstant":"2024-02-01T10:00:00Z","period":5,"status":"connected","son_laeq":55}'
publish_payload /otherKeyaqo/S2_AQO/attrs "$(aqo 1 30)"
publish_payload /cityA/S1/attrs '{"kwh":1}'
# --- generic devices ------------------------------------------------------------
publish_payload /legacy42/meter7/attrs \
    '{"TimeInstant":"2024-02-01T09:00:00Z","kwh":12.5,"phase":"L1"}'
publish_payload /legacy42/meter7/attrs \
    '{"TimeInstant":"2024-02-01T09:00:00Z","kwh":12.5,"phase":"L1"}'
publish_payload /legacy42/meter8/attrs '{"kwh":3}'

wait_for 30 "the generic measures" pg_count_ge 2 generic_measure
wait_for 30 "the three refusals" pg_count_ge 3 rejected_message \
    "reason = 'unknown_apikey'"
wait_for 30 "the air quality row" pg_count_ge 1 air_quality
wait_for 30 "the crowd count row" pg_count_ge 1 crowd_count

assert_eq "S1|city|/env/air|21.5|1.2|[1, 2]" \
    "$(psql_q "SELECT device_id, service, service_path, no2_a4, extra->>'fw',
                      extra->'x'->>'a' FROM air_quality")" \
    "air quality row: group's service and path, unknown fields in extra"
assert_eq "17|42" "$(psql_q "SELECT people_count, avg_duration FROM crowd_count")" \
    "crowd count with the AvgDuration alias"
assert_eq 0 "$(pg_count noise_level)" "nlo rows (vertical not allowed)"
assert_eq "/cityA/S1/attrs|generic service group
/cityAnlo/S1_NLO/attrs|is not allowed
/otherKeyaqo/S2_AQO/attrs|is not configured" \
    "$(psql_q "SELECT topic, CASE WHEN detail LIKE '%not a generic service group%'
                                 THEN 'generic service group'
                                 WHEN detail LIKE '%vertical nlo is not allowed%'
                                 THEN 'is not allowed'
                                 WHEN detail LIKE '%\"otherKey\" is not configured%'
                                 THEN 'is not configured' ELSE detail END
               FROM rejected_message WHERE reason = 'unknown_apikey'
               ORDER BY topic")" "unknown_apikey refusals and their details"
assert_eq 3 "$(pg_count rejected_message)" "rejected_message rows in all"
assert_eq "meter7|city|/legacy|2024-02-01 09:00:00+00|12.5|L1" \
    "$(psql_q "SELECT device_id, service, service_path, time_instant,
                      attrs->>'kwh', attrs->>'phase'
               FROM generic_measure WHERE device_id = 'meter7'")" \
    "generic measure with TimeInstant, stored once"
assert_eq "t|3" \
    "$(psql_q "SELECT time_instant = received_at, attrs->>'kwh'
               FROM generic_measure WHERE device_id = 'meter8'")" \
    "generic measure without TimeInstant keyed by its receive time"

# --- SIGHUP with a valid file: otherKey accepted from now on --------------------
write_config ',
    {"apikey": "otherKey", "service": "town"}'
kill -HUP "$AGENT_PID"
wait_for 30 "the reload to be logged" \
    grep -q "configuration reloaded: 3 service group(s) (was 2)" "$AGENT_STDERR"
publish_payload /otherKeyaqo/S2_AQO/attrs "$(aqo 2 31)"
wait_for 30 "otherKey's row after the reload" pg_count_ge 1 air_quality \
    "apikey = 'otherKey'"
assert_eq "town|/|31" \
    "$(psql_q "SELECT service, coalesce(service_path, '/'), no2_a4
               FROM air_quality WHERE apikey = 'otherKey'")" \
    "row of the group added by the reload"

# --- SIGHUP with an invalid file: refused, the running configuration stays ------
printf '{"service_groups": [{"apikey": "cityA", "service": "bad-name!"}]}' >"$CFG"
kill -HUP "$AGENT_PID"
wait_for 30 "the refusal to be logged" \
    grep -q "new configuration rejected, keeping the running one" "$AGENT_STDERR"
agent_alive || fail "agent died on an invalid reload"
publish_payload /otherKeyaqo/S2_AQO/attrs "$(aqo 3 32)"
wait_for 30 "otherKey still accepted" pg_count_ge 2 air_quality \
    "apikey = 'otherKey'"
printf 'not json' >"$CFG"
kill -HUP "$AGENT_PID"
wait_until 30 bash -c "[ \$(grep -c 'new configuration rejected' '$AGENT_STDERR') -ge 2 ]" ||
    fail "the second invalid file was not refused"
agent_alive || fail "agent died on a file that is not JSON"
assert_eq 3 "$(pg_count rejected_message)" "no new rejects after the reloads"
stop_agent || fail "agent exited with status $?"
