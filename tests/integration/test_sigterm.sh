#!/usr/bin/env bash
# SIGTERM in the middle of a stream: the agent exits 0 within a deadline,
# leaves a journal checkpoint in its data dir, and after a restart every
# message it had taken in (and every one the broker queued meanwhile) is in
# PostgreSQL exactly once. SIGINT is graceful too.
source "$(dirname "$0")/lib.sh"

N=20000

start_mosquitto
start_postgres
start_agent

bg pub "$TOOLS/spotpub" --url "$MQTT_URL" --qos 1 --count "$N" --devices 5 \
    --vertical all --apikey termkey --inflight 500
pub=$BG_PID

wait_for 60 "2000 rows landed" pg_total_ge 2000
log "SIGTERM with $(pg_total_rows) of $N rows stored"
rc=0
stop_agent 20 || rc=$?
assert_eq 0 "$rc" "exit status after SIGTERM"
log "after SIGTERM: $(pg_total_rows) rows stored"

checkpoints=$(find "$AGENT_DATA" -name 'checkpoint*' -type f | wc -l)
[ "$checkpoints" -ge 1 ] ||
    fail "no journal checkpoint in $AGENT_DATA: $(find "$AGENT_DATA" | head -20)"

start_agent
wait_pid "$pub" 120 || fail "spotpub failed (exit $?)"
wait_total "$N" 60
assert_no_duplicates
assert_eq 0 "$(pg_count rejected_message)" "rejected messages"

# SIGINT behaves like SIGTERM.
kill -INT "$AGENT_PID"
rc=0
wait_pid "$AGENT_PID" 20 || rc=$?
AGENT_PID=
assert_eq 0 "$rc" "exit status after SIGINT"
