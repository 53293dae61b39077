#!/usr/bin/env bash
#
# test_ngsi_faults: the NGSI sink loses nothing and shows no stale value
# while the broker misbehaves. A stream of air quality messages from 20
# devices goes to the NGSI test server while it answers 503 to several
# updates, delays its answers by 1.5 s, closes connections without
# answering, and refuses connections for 2.5 s; then a stream while it
# holds its answers longer than the agent's 10 s request timeout; then one
# while the agent is killed with SIGKILL and restarted. After each, every
# device's entity holds its last message (TimeInstant of the last one sent),
# there are exactly as many entities as devices, and nothing was
# dead-lettered or refused.
#
# Environment: NGSI_SERVER (default $TOOLS/../servers/ngsi_server).

source "$(dirname "$0")/lib.sh"

# shellcheck source=ngsi_lib.sh
source "$(dirname "$0")/ngsi_lib.sh"

D=20
PERIOD=5

# --- helpers ------------------------------------------------------------------

# fault JSON: sets the server's faults.
fault() {
    ngsi POST /__faults -H 'Content-Type: application/json' -d "$1"
    assert_eq 200 "$ST" "POST /__faults $1: $BODY"
    log "fault: $1"
}

stat_of() {
    ngsi GET /__stats
    perl -MJSON::PP -e 'local $/; my $v = decode_json(<STDIN>);
        $v = $v->{$_} // 0 for split /\./, $ARGV[0]; print $v' "$1" <<<"$BODY"
}

# stat_ge N FIELD: for wait_until.
stat_ge() {
    [ "$(stat_of "$2")" -ge "$1" ]
}

# all_last N START: for wait_until.
all_last() {
    [ "$(stored_v2)" = "$(expected_last "$1" "$2")" ]
}

# check_last N START WHAT: waits until every device shows its last message.
check_last() {
    if ! wait_until 60 all_last "$1" "$2"; then
        diff <(expected_last "$1" "$2") <(stored_v2) >&2 || true
        fail "$3: the broker does not hold every device's last message"
    fi
    assert_eq "$D" "$(stat_of entities)" "entities in the broker"
    log "$3: all $D devices show their last message"
}

# The agent refuses --orion-url until main.c wires the sink in.
out=$("$SPOTAGENT" --orion-url http://127.0.0.1:9 --check-config 2>&1 || true)
if [[ $out == *"not part of this build"* ]]; then
    log "SKIP: this agent build has no NGSI sink yet"
    exit 0
fi

# --- the stream through faults -----------------------------------------------

start_mosquitto
start_ngsi ngsi
start_agent --orion-url "$NGSI_URL"

# 4000 messages at 300/s: the stream lasts about 13 s, long enough to run
# through every fault below.
N1=4000
S1=1700000000
bg pub1 "$TOOLS/spotpub" --url "$MQTT_URL" --qos 1 --count "$N1" \
    --devices "$D" --vertical aqo --apikey flt --start "$S1" --rate 300
pub=$BG_PID
wait_for 20 "first updates" stat_ge 3 updates

fault '{"fail_next":6,"status":503}'
wait_for 30 "six 503 answers" stat_ge 6 injected_failures

updates=$(stat_of updates)
fault '{"delay_ms":1500}'
wait_for 30 "three delayed updates" stat_ge $((updates + 3)) updates
fault '{"delay_ms":0}'

fault '{"close_next":4}'
wait_for 30 "four closed connections" stat_ge 4 injected_closes

fault '{"refuse_for_ms":2500}'
wait_for 30 "refusal" stat_ge 1 refusals
kill -0 "$pub" 2>/dev/null ||
    log "warning: the stream ended before the refusal (slow machine?)"

wait_pid "$pub" 60 || fail "spotpub failed (exit $?): $(cat "$TEST_TMP/pub1.log")"
log "spotpub: $(tail -n 1 "$TEST_TMP/pub1.log")"
check_last "$N1" "$S1" "after 503, delays, closes and refusal"
assert_eq 0 "$(stat_of by_status.400)" "400 answers"
assert_eq 0 "$(stat_of by_status.413)" "413 answers"

# --- an answer slower than the agent's request timeout (10 s) -------------------

# The server holds every answer 15 s: the agent gives up on the request
# after 10 s, logs a timeout and retries. The held updates reach the store
# late (an upsert of the same values); once answers are prompt again every
# device still shows its last message.
N3=400
S3=1750000000
fault '{"delay_ms":15000}'
bg pub3 "$TOOLS/spotpub" --url "$MQTT_URL" --qos 1 --count "$N3" \
    --devices "$D" --vertical aqo --apikey flt --start "$S3" --rate 1000
pub=$BG_PID
wait_for 40 "a request timeout in the agent's log" \
    grep -q 'failed: timeout: .*retrying in' "$AGENT_STDERR"
log "agent: $(grep -m1 -o 'update of .*failed: timeout: .*' "$AGENT_STDERR")"
fault '{"delay_ms":0}'
wait_pid "$pub" 60 || fail "spotpub failed (exit $?): $(cat "$TEST_TMP/pub3.log")"
check_last "$N3" "$S3" "after request timeouts"

# --- SIGKILL mid-stream ---------------------------------------------------------

N2=3000
S2=1800000000
bg pub2 "$TOOLS/spotpub" --url "$MQTT_URL" --qos 1 --count "$N2" \
    --devices "$D" --vertical aqo --apikey flt --start "$S2" --rate 1000
pub=$BG_PID
updates=$(stat_of updates)
wait_for 20 "updates of the second stream" stat_ge $((updates + 5)) updates
kill9_agent
start_agent --orion-url "$NGSI_URL"
wait_pid "$pub" 60 || fail "spotpub failed (exit $?): $(cat "$TEST_TMP/pub2.log")"
log "spotpub: $(tail -n 1 "$TEST_TMP/pub2.log")"
check_last "$N2" "$S2" "after SIGKILL and restart"

# Nothing was refused or dead-lettered on the way.
if [ -s "$AGENT_DATA/dead-letters.jsonl" ]; then
    head -n 3 "$AGENT_DATA/dead-letters.jsonl" >&2
    fail "dead letters were written"
fi
ngsi GET /__stats
log "server: $BODY"
agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
