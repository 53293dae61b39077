#!/usr/bin/env bash
# At-least-once end to end, idempotent sink: 20,000 QoS 1 messages across
# several devices and every vertical; the agent is killed with SIGKILL
# mid-stream, twice, and restarted each time with the same client id and
# data dir. Exactly 20,000 rows land, none twice, none lost.
source "$(dirname "$0")/lib.sh"

N=20000

start_mosquitto
start_postgres
start_agent

bg pub "$TOOLS/spotpub" --url "$MQTT_URL" --qos 1 --count "$N" --devices 8 \
    --vertical all --apikey kill9key --start 1700000000 --inflight 500
pub=$BG_PID

# Kill twice: once a few thousand rows landed, and again half-way (or, on
# a slow machine, once everything is published but not yet stored).
for at in 3000 10000; do
    wait_for 120 "$at rows landed" pg_total_ge "$at"
    before=$(pg_total_rows)
    kill9_agent
    log "killed the agent with $before of $N rows stored"
    [ "$before" -lt "$N" ] || log "warning: all rows landed before the kill"
    start_agent
done
wait_pid "$pub" 120 || fail "spotpub failed (exit $?): $(cat "$TEST_TMP/pub.log")"
log "spotpub: $(tail -n 1 "$TEST_TMP/pub.log")"

wait_total "$N" 120
assert_no_duplicates
assert_eq 0 "$(pg_count rejected_message)" "rejected messages"

agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
