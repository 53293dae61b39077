#!/usr/bin/env bash
# PostgreSQL goes away mid-stream (immediate shutdown: in-flight
# transactions are cut) while the publisher keeps going; the agent keeps
# taking messages into its journal and retries. Once PostgreSQL is back,
# every message lands exactly once.
source "$(dirname "$0")/lib.sh"

N=6000

start_mosquitto
start_postgres
start_agent

bg pub "$TOOLS/spotpub" --url "$MQTT_URL" --qos 1 --count "$N" --devices 6 \
    --vertical all --apikey pgrkey --rate 1000
pub=$BG_PID

wait_for 60 "1000 rows landed" pg_total_ge 1000
stop_postgres immediate
# Publishing goes on while the database is down; the agent must stay up
# and keep acknowledging (spotpub fails if the broker stops acking, which
# it would not; the agent's own intake is checked by the final count).
wait_pid "$pub" 60 || fail "spotpub failed (exit $?)"
log "spotpub: $(tail -n 1 "$TEST_TMP/pub.log")"
agent_alive || fail "agent died while PostgreSQL was down"
restart_postgres

# Back-off is capped at 30 s (SPOT_BACKOFF_MAX_MS).
wait_total "$N" 90
assert_no_duplicates
assert_eq 0 "$(pg_count rejected_message)" "rejected messages"

agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
