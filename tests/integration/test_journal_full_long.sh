#!/usr/bin/env bash
# A database down for longer than the broker's patience: with a 1 MB
# journal and PostgreSQL stopped, a stream fills the journal and the agent
# stops taking messages (its MQTT callback waits for room, so Paho sends no
# keep-alive). After 1.5 x the 30 s keep-alive the broker drops the agent;
# it reconnects and, with the journal still full, waits again. When
# PostgreSQL returns, every message lands exactly once (redeliveries of the
# messages in flight at the drop are absorbed by the natural key), nothing
# is dead-lettered, the agent is ready again and exits 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"

N=8000
MAX_MB=1

start_mosquitto
start_postgres
agent_http_port
start_agent --journal-max-mb "$MAX_MB" --http-listen "127.0.0.1:$AGENT_HTTP_PORT"

spotpub --qos 1 --count 50 --devices 2 --vertical aqo --apikey warmkey \
    --quiet || fail "spotpub warm-up failed"
wait_total 50 60

stop_postgres
wait_for 30 "/ready names pg" ep_ready_down pg

bg pub "$TOOLS/spotpub" --url "$MQTT_URL" --qos 1 --count "$N" --devices 8 \
    --vertical aqo --apikey fullkey --start 1700000000 --inflight 200
pub=$BG_PID
wait_pid "$pub" 120 || fail "spotpub failed (exit $?): $(cat "$TEST_TMP/pub.log")"
wait_for 60 "spotagent_journal_full is 1" ep_metric_is 1 spotagent_journal_full

# The broker gives up on a silent client after 1.5 x its keep-alive (45 s).
drops() { mqtt_log_count "Client $AGENT_ID has exceeded timeout"; }
dropped() { [ "$(drops)" -ge 1 ]; }
wait_for 90 "the broker to drop the silent agent" dropped
log "broker: $(grep -m1 "exceeded timeout" "$MQTT_DIR/mosquitto.log")"
agent_alive || fail "agent died while the journal was full"

restart_postgres
wait_total $((N + 50)) 180
assert_no_duplicates
assert_eq 0 "$(pg_count rejected_message)" "rejected messages"
wait_for 60 "/ready says ready again" ep_status_is 200 /ready
agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
