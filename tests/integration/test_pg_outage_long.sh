#!/usr/bin/env bash
# PostgreSQL down for longer than the back-off takes to reach its cap
# (SPOT_BACKOFF_MAX_MS, 30 s: ten failed attempts), with the broker
# restarted in the middle of the outage, while devices keep publishing:
#  - the agent stays up and keeps taking messages into its journal;
#  - it notices the loss while idle (/ready 503 naming "pg" without a
#    message having to fail first);
#  - every delay it logs is within the cap, and the last ones are at it;
#  - it reconnects to the restarted broker by itself;
#  - once PostgreSQL is back, /ready flips to 200 within one capped delay
#    and every message lands exactly once.
source "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || fail "curl is not installed"

start_mosquitto
start_postgres
agent_http_port
start_agent --http-listen "127.0.0.1:$AGENT_HTTP_PORT"
wait_for 30 "/ready says ready" ep_status_is 200 /ready

pub() { # apikey count rate
    spotpub --qos 1 --count "$2" --devices 4 --vertical all --apikey "$1" \
        --rate "$3" --quiet || fail "spotpub $1 failed"
}
errors() { ep_metric 'spotagent_sink_errors_total{sink="pg"}'; }

pub before 200 0
wait_total 200 60

errors0=$(errors)
stop_postgres
outage_start=$SECONDS
# Nothing is published: the sink must find out by itself.
wait_for 20 "/ready names pg while idle" ep_ready_down pg
log "noticed the outage while idle after $((SECONDS - outage_start)) s"

pub during1 400 100
id_re=${AGENT_ID//./\\.}
c=$(mqtt_log_count "New client connected from .* as $id_re ")
restart_mosquitto
connected_again() {
    [ "$(mqtt_log_count "New client connected from .* as $id_re ")" -gt "$c" ]
}
wait_for 60 "agent reconnected to the restarted broker" connected_again
pub during2 400 100
agent_alive || fail "agent died during the outage"

# Ten failed attempts: the tenth delay is computed at the cap.
at_cap() { [ $(($(errors) - errors0)) -ge 10 ]; }
wait_for 90 "ten failed attempts (back-off at its cap)" at_cap
log "back-off at its cap after $((SECONDS - outage_start)) s of outage"
delays=$(sed -nE 's/.*pg: .*(retrying|reconnecting) in ([0-9]+) ms.*/\2/p' \
    "$AGENT_STDERR")
[ -n "$delays" ] || fail "no back-off delay logged"
max=$(printf '%s\n' $delays | sort -n | tail -n 1)
log "back-off delays logged (ms): $(echo $delays)"
[ "$max" -le 30000 ] || fail "a back-off delay of $max ms exceeds the 30 s cap"
[ "$max" -ge 12800 ] || fail "back-off never got near its cap (max $max ms)"
ep_ready_down pg || fail "/ready does not name pg during the outage: $EP_BODY"

restart_postgres
back=$SECONDS
wait_for 45 "/ready 200 after PostgreSQL is back" ep_status_is 200 /ready
log "/ready 200 again $((SECONDS - back)) s after PostgreSQL came back"
wait_total 1000 60
assert_no_duplicates
assert_eq 0 "$(pg_count rejected_message)" "rejected messages"

agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
