#!/usr/bin/env bash
# The journal's bound (contract §3): with a 1 MB journal and PostgreSQL
# down, a publisher sends about four times what fits. The agent stops
# taking messages once the journal is full (the broker queues the rest:
# the test broker's per-client queue is unbounded), /ready answers 503
# naming "journal", spotagent_journal_full is 1 and the journal stays
# within its bound. SIGTERM while full still exits 0 promptly. Full for
# longer than the broker's keep-alive patience (45 s), the agent is dropped
# by the broker and lives on; SIGKILL while full loses nothing either.
# Restarted with PostgreSQL up, every message lands exactly once (the
# redeliveries absorbed by the natural key) and the agent is ready again.
source "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || fail "curl is not installed"

N=8000
MAX_MB=1

start_mosquitto
start_postgres
agent_http_port
AGENT_ARGS=(--journal-max-mb "$MAX_MB" --http-listen "127.0.0.1:$AGENT_HTTP_PORT")
start_agent "${AGENT_ARGS[@]}"

# The pipeline works, the tables exist.
spotpub --qos 1 --count 50 --devices 2 --vertical aqo --apikey warmkey \
    --quiet || fail "spotpub warm-up failed"
wait_total 50 60
wait_for 30 "/ready says ready" ep_status_is 200 /ready
assert_eq 0 "$(ep_metric spotagent_journal_full)" "journal_full before"
assert_eq $((MAX_MB * 1048576)) "$(ep_metric spotagent_journal_max_bytes)" \
    "journal_max_bytes"

stop_postgres
wait_for 30 "/ready names pg" ep_ready_down pg

# ~420 bytes a record: four times what the journal holds.
bg pub "$TOOLS/spotpub" --url "$MQTT_URL" --qos 1 --count "$N" --devices 8 \
    --vertical aqo --apikey fullkey --start 1700000000 --inflight 200
pub=$BG_PID
wait_pid "$pub" 120 || fail "spotpub failed (exit $?): $(cat "$TEST_TMP/pub.log")"
log "spotpub: $(tail -n 1 "$TEST_TMP/pub.log")"

wait_for 60 "spotagent_journal_full is 1" ep_metric_is 1 spotagent_journal_full
wait_for 10 "/ready names journal" ep_ready_down journal
log "/ready while full: $EP_BODY"
agent_alive || fail "agent died with a full journal"
grep -q "is full" "$AGENT_STDERR" || fail "no 'journal is full' warning logged"

# Held within the bound: at most one record (and the segment headers)
# past it.
bytes=$(ep_metric spotagent_journal_bytes)
limit=$((MAX_MB * 1048576 + 65536))
[ "$bytes" -le "$limit" ] ||
    fail "journal holds $bytes bytes, bound $((MAX_MB * 1048576))"
disk=$(find "$AGENT_DATA/journal" -name 'seg-*.log' -printf '%s\n' |
    awk '{ t += $1 } END { print t + 0 }')
[ "$disk" -le "$limit" ] || fail "journal segments hold $disk bytes on disk"

# It took in only what fits: the rest waits at the broker.
received=$(ep_metric 'spotagent_messages_received_total{vertical="aqo"}')
log "full: journal $bytes bytes, $received aqo messages taken of $((N + 50))"
[ "$received" -lt "$N" ] ||
    fail "the agent took $received messages into a full 1 MB journal"

# SIGTERM while full: exit 0, promptly.
t0=$SECONDS
rc=0
stop_agent 20 || rc=$?
assert_eq 0 "$rc" "exit status of SIGTERM with a full journal"
[ $((SECONDS - t0)) -le 15 ] || fail "SIGTERM took $((SECONDS - t0)) s"

# Again, with SIGKILL: Paho acknowledges a QoS 1 message before its
# callback runs, so the one message the callback holds while the journal
# is full must already be on disk when the agent dies.
start_agent "${AGENT_ARGS[@]}"
wait_for 60 "full again after the restart" ep_metric_is 1 spotagent_journal_full

# Full for longer than the broker's patience: the callback waiting for
# room sends nothing, not even a keep-alive, so after 1.5 x the 30 s
# keep-alive the broker drops the agent; the agent lives on and reconnects.
dropped() { [ "$(mqtt_log_count "Client $AGENT_ID has exceeded timeout")" -ge 1 ]; }
wait_for 90 "the broker to drop the silent agent" dropped
log "broker: $(grep -m1 "exceeded timeout" "$MQTT_DIR/mosquitto.log")"
agent_alive || fail "agent died while the journal was full"
kill9_agent

restart_postgres
start_agent "${AGENT_ARGS[@]}"
wait_total $((N + 50)) 180
assert_no_duplicates
assert_eq 0 "$(pg_count rejected_message)" "rejected messages"
wait_for 30 "/ready says ready again" ep_status_is 200 /ready
wait_for 30 "spotagent_journal_full back to 0" \
    ep_metric_is 0 spotagent_journal_full

agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
