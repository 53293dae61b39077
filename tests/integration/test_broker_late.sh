#!/usr/bin/env bash
# The broker is not there when the agent starts (a deployment where the
# agent comes up first): the agent starts anyway, serves /health, says in
# /ready that "mqtt" is down, retries with back-off, and connects and
# subscribes once the broker appears; messages then land. The first
# connection is retried by the agent itself (Paho's automatic reconnect
# only covers connections that were once up).
source "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || fail "curl is not installed"

reserve_mosquitto
start_postgres
agent_http_port
AGENT_NO_WAIT=1 start_agent --http-listen "127.0.0.1:$AGENT_HTTP_PORT"

wait_for 30 "/health answers with no broker" ep_status_is 200 /health
wait_for 30 "/ready names mqtt" ep_ready_down mqtt
attempts() {
    local n
    n=$(grep -c "cannot connect to" "$AGENT_STDERR" 2>/dev/null) || true
    echo "${n:-0}"
}
at_least_attempts() { [ "$(attempts)" -ge "$1" ]; }
# Let it fail a few times (1 s, 2 s, 4 s apart) before the broker comes.
wait_for 30 "three failed connection attempts" at_least_attempts 3
agent_alive || fail "agent gave up without a broker"
assert_eq 0 "$(ep_metric spotagent_mqtt_connected)" "mqtt_connected gauge"

launch_mosquitto
id_re=${AGENT_ID//./\\.}
subscribed() { [ "$(mqtt_log_count ": $id_re [0-2] ")" -ge 1 ]; }
# The next attempt is at most 8 s away (the fourth delay).
wait_for 40 "agent connected and subscribed once the broker appeared" subscribed
wait_for 20 "/ready says ready" ep_status_is 200 /ready
assert_eq 1 "$(ep_metric spotagent_mqtt_connected)" "mqtt_connected gauge"

spotpub --qos 1 --count 300 --devices 3 --vertical all --apikey latekey \
    --quiet || fail "spotpub failed"
wait_total 300 60
assert_no_duplicates

agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
