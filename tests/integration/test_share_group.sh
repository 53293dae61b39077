#!/usr/bin/env bash
# Two agents in one MQTT shared subscription (--mqtt-share-group), each
# with its own client id and data dir, writing to the same PostgreSQL:
# the broker splits the stream between them, both take part, and every
# message is in PostgreSQL exactly once. Then one of them is killed
# mid-stream and restarted: still exactly once.
source "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || fail "curl is not installed"

N=12000

start_mosquitto
start_postgres

# Agent B, by hand (start_agent tracks one agent): same group, own id,
# own data dir, own endpoint.
B_ID=$AGENT_ID-b
B_DATA=$TEST_TMP/agent-b
B_PORT=$(free_port)
B_PID=
start_b() {
    env --default-signal=INT "$SPOTAGENT" --mqtt-url "$MQTT_URL" \
        --mqtt-client-id "$B_ID" --data-dir "$B_DATA" --pg-url "$PG_URL" \
        --http-listen "127.0.0.1:$B_PORT" --mqtt-share-group spot \
        >>"$TEST_TMP/agent-b.stdout" 2>>"$TEST_TMP/agent-b.log" &
    B_PID=$!
    _BG_PIDS+=("$B_PID")
    wait_for 30 "agent B subscribed" b_subscribed
}
b_subscribed() {
    local id_re=${B_ID//./\\.}
    [ "$(mqtt_log_count ": $id_re [0-2] [$]share/spot/")" -ge 1 ]
}
b_received() {
    curl -s --max-time 10 "http://127.0.0.1:$B_PORT/metrics" | awk '
        $1 ~ /^spotagent_messages_received_total/ { t += $2 } END { print t + 0 }'
}
a_received() {
    curl -s --max-time 10 "$AGENT_HTTP/metrics" | awk '
        $1 ~ /^spotagent_messages_received_total/ { t += $2 } END { print t + 0 }'
}

agent_http_port
A_ARGS=(--mqtt-share-group spot --http-listen "127.0.0.1:$AGENT_HTTP_PORT")
start_agent "${A_ARGS[@]}"
start_b

spotpub --qos 1 --count 4000 --devices 8 --vertical all --apikey sharekey \
    --start 1700000000 --inflight 200 --quiet || fail "spotpub failed"
wait_total 4000 90
assert_no_duplicates
a=$(a_received)
b=$(b_received)
log "split: agent A took $a, agent B took $b"
[ "$a" -gt 0 ] && [ "$b" -gt 0 ] || fail "the stream was not split (A $a, B $b)"
assert_eq 4000 $((a + b)) "messages taken by A and B together"

# Kill A mid-stream; B goes on; A comes back with its journal.
bg pub "$TOOLS/spotpub" --url "$MQTT_URL" --qos 1 --count $((N - 4000)) \
    --devices 8 --vertical all --apikey sharekey2 --start 1700000000 \
    --inflight 200 --rate 2000
pub=$BG_PID
wait_for 60 "more rows landed" pg_total_ge 6000
kill9_agent
start_agent "${A_ARGS[@]}"
wait_pid "$pub" 120 || fail "spotpub failed (exit $?)"
wait_total "$N" 120
assert_no_duplicates
assert_eq 0 "$(pg_count rejected_message)" "rejected messages"

agent_alive || fail "agent A died"
stop_agent || fail "agent A exited with status $?"
kill -TERM "$B_PID"
rc=0
wait_pid "$B_PID" 30 || rc=$?
assert_eq 0 "$rc" "agent B exit status"

# Each agent keeps its own database checkpoint (one row per journal): A's
# does not overwrite B's.
assert_eq 2 "$(psql_q "SELECT count(DISTINCT journal_id) FROM spotagent_checkpoint WHERE sink = 'pg'")" \
    "checkpoint rows, one per agent's journal"
for d in "$AGENT_DATA" "$B_DATA"; do
    id=$(cat "$d/journal/JOURNAL_ID")
    seq=$(psql_q "SELECT seq FROM spotagent_checkpoint WHERE sink = 'pg' AND journal_id = '$id'")
    [ -n "$seq" ] && [ "$seq" -gt 0 ] || fail "no checkpoint row for journal $id ($d)"
done
