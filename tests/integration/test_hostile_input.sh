#!/usr/bin/env bash
# Hostile MQTT input end to end, through a real broker: every message is
# either stored or in rejected_message with the contract's reason (§4),
# counted in spotagent_messages_rejected_total, and the agent is healthy
# afterwards (it still stores a good message; /health 200; no sanitizer
# report at exit). Cases: a 1.5 MB payload (the journal keeps 1 MB, the
# reject says too_large), NUL bytes, invalid UTF-8 that yajl lets through
# (overlong forms, surrogates, code points above U+10FFFF) and that it
# does not, 10,000-deep nesting, 10,000 keys, 5,000 keys (under the size
# cap: the key cap), duplicate keys, a 65,535-byte topic, odd but legal
# topic characters (space and non-ASCII refused; '$' inside a level
# stored), QoS 0 and 2,
# retained messages (and their redelivery on every subscribe, stored
# once). Topics a broker must refuse (wildcards, control characters)
# never reach the agent, and a forged dead-letter topic ($spotagent/...)
# is not delivered to it.
source "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || fail "curl is not installed"
command -v mosquitto_pub >/dev/null || fail "mosquitto_pub is not installed"

K=hostkey
GOOD="/${K}aqo/dev1_AQO/attrs"

start_mosquitto
start_postgres

# mpub ARGS...: mosquitto_pub at QoS 1 against the test broker.
mpub() {
    mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 "$@" ||
        fail "mosquitto_pub $* failed"
}

# aqo M [EXTRA]: a valid payload at minute M of 2024-02-01, extra members.
aqo() {
    printf '{"TimeInstant":"2024-02-01T00:%02d:00Z","period":5,"status":"connected","no2-a4":7%s}' "$1" "${2:-}"
}

# --- retained messages, published before the agent ever subscribed ---------
RET_GOOD=$(aqo 50)
mpub -r -t "/${K}aqo/retained_AQO/attrs" -m "$RET_GOOD"
mpub -r -t "/${K}aqo/retained2_AQO/attrs" -m '{"retained": broken'

agent_http_port
AGENT_ARGS=(--mqtt-topic '#' --http-listen "127.0.0.1:$AGENT_HTTP_PORT")
start_agent "${AGENT_ARGS[@]}"

# case_file REASON WHAT TOPIC FILE [mosquitto_pub options]
case_file() {
    reject_case "$1" "$2" "$3" "$4"
    local topic=$3 file=$4
    shift 4
    mpub "$@" -t "$topic" -f "$file"
}
# case_str REASON WHAT TOPIC PAYLOAD [options]
case_str() {
    local f=$TEST_TMP/case$n_cases.bin
    printf '%s' "$4" >"$f"
    local r=$1 w=$2 t=$3
    shift 4
    case_file "$r" "$w" "$t" "$f" "$@"
}

# --- size ---------------------------------------------------------------------
f=$TEST_TMP/huge.bin
{
    printf '{"TimeInstant":"2024-02-01T00:01:00Z","period":5,"status":"connected","pad":"'
    head -c 1500000 /dev/zero | tr '\0' 'a'
    printf '"}'
} >"$f"
head -c 1048576 "$f" >"$TEST_TMP/huge.kept"
HUGE_SIZE=$(stat -c %s "$f")
reject_case too_large "1.5 MB payload (the journal keeps its first 1 MB)" \
    "$GOOD" "$TEST_TMP/huge.kept"
mpub -t "$GOOD" -f "$f"

# --- bytes that are not JSON text --------------------------------------------
f=$TEST_TMP/nul.bin
printf '{"TimeInstant":"2024-02-01T00:02:00Z","period":5,\0"status":"connected"}' >"$f"
case_file json "NUL byte between members" "$GOOD" "$f"
f=$TEST_TMP/nul2.bin
printf '{"TimeInstant":"2024-02-01T00:03:00Z","period":5,"status":"connected","x":"a\0b"}' >"$f"
case_file json "NUL byte inside a string" "$GOOD" "$f"
f=$TEST_TMP/nulonly.bin
head -c 100 /dev/zero >"$f"
case_file json "only NUL bytes" "$GOOD" "$f"
i=4
for bytes in '\xc0\x80' '\xe0\x80\xaf' '\xed\xa0\x80' '\xf4\x90\x80\x80' '\xff\xfe' '\xc3'; do
    f=$TEST_TMP/utf8-$i.bin
    printf '{"TimeInstant":"2024-02-01T00:%02d:00Z","period":5,"status":"connected","note":"x'"$bytes"'y"}' "$i" >"$f"
    case_file json "invalid UTF-8 $bytes in a value" "$GOOD" "$f"
    i=$((i + 1))
done
f=$TEST_TMP/utf8-key.bin
printf '{"TimeInstant":"2024-02-01T00:10:00Z","period":5,"status":"connected","k\xed\xbf\xbf":1}' >"$f"
case_file json "surrogate in a key" "$GOOD" "$f"
case_str json "lone surrogate escape" "$GOOD" "$(aqo 11 ',"note":"\udc00"')"

# --- structure ---------------------------------------------------------------------
deep=$(printf '[%.0s' $(seq 1 10000))$(printf ']%.0s' $(seq 1 10000))
case_str json "10,000-deep nesting" "$GOOD" "$(aqo 12 ",\"x\":$deep")"
keys() { # N: ,"k00001":1,...
    awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++) printf ",\"k%05d\":1", i }'
}
case_str too_large "10,000 keys (100 kB)" "$GOOD" "$(aqo 13 "$(keys 10000)")"
case_str json "5,000 keys (under the size cap)" "$GOOD" "$(aqo 14 "$(keys 5000)")"
case_str json "duplicate extra key" "$GOOD" "$(aqo 15 ',"x":1,"x":2')"
case_str json "duplicate schema field" "$GOOD" "$(aqo 16 ',"no2-a4":8')"

# --- topics ---------------------------------------------------------------------------
long=/$(head -c 65526 /dev/zero | tr '\0' 'a')/d/attrs
[ ${#long} = 65535 ] || fail "long topic is ${#long} bytes"
case_str topic "65,535-byte topic" "$long" "$(aqo 17)"
case_str topic "space in the apikey" "/${K} aqo/dev1_AQO/attrs" "$(aqo 18)"
case_str topic "non-ASCII apikey" "/${K}é1aqo/dev1_AQO/attrs" "$(aqo 19)"
case_str topic "empty topic levels" "///" "$(aqo 21)"

# --- stored, not rejected ------------------------------------------------------------
mpub -q 0 -t "/${K}aqo/qos0_AQO/attrs" -m "$(aqo 30)"
mpub -q 2 -t "/${K}aqo/qos2_AQO/attrs" -m "$(aqo 31)"
# '$' is legal inside an id (only NGSI's forbidden characters are not)
mpub -t "/${K}aqo/dev\$1_AQO/attrs" -m "$(aqo 20)"
# non-ASCII ids are refused (NGSI ids are printable ASCII)
mpub -t "/${K}aqo/ünïcode_AQO/attrs" -m "$(aqo 32)"
printf '%s' "$(aqo 32)" >"$TEST_TMP/unicode.bin"
reject_case topic "non-ASCII device id" "/${K}aqo/ünïcode_AQO/attrs" \
    "$TEST_TMP/unicode.bin"

# --- what the broker refuses never reaches the agent ------------------------------------
for t in "/${K}aqo/+/attrs" "/${K}aqo/#" "$(printf '/%saqo/d\001_AQO/attrs' "$K")"; do
    rc=0
    "$TOOLS/spotpub" --url "$MQTT_URL" --qos 1 --topic "$t" --payload x \
        --timeout 3 >>"$TEST_TMP/refused.log" 2>&1 || rc=$?
    [ "$rc" != 0 ] || fail "the broker accepted a publish on '$t'"
done
# A forged dead letter: '#' does not match '$' topics, so the agent never
# sees it (and --mqtt-topic refuses filters on \$spotagent/).
mpub -t '$spotagent/dead/json' -m "$(printf 'FORGEDxx')"

# A good sentinel after everything: messages are handled in order.
SENTINEL_TOPIC="/${K}aqo/sentinel_AQO/attrs"
mpub -t "$SENTINEL_TOPIC" -m "$(aqo 59)"
wait_for 120 "sentinel stored" pg_count_is 1 air_quality "device_id = 'sentinel'"

check_reject_cases
# The detail of the truncated one gives its real size, not the kept one.
assert_eq "payload of $HUGE_SIZE bytes exceeds 65536 bytes (the first 1048576 are kept)" \
    "$(psql_q "SELECT detail FROM rejected_message WHERE reason = 'too_large' AND length(payload) = 1048576")" \
    "detail of the 1.5 MB payload"

# The retained ones: stored / rejected like any other.
assert_eq 1 "$(pg_count air_quality "device_id = 'retained'")" "retained good message"
assert_eq json "$(psql_q "SELECT string_agg(reason, ',') FROM rejected_message
    WHERE topic = '/${K}aqo/retained2_AQO/attrs'")" "retained bad message"
assert_eq 2 "$(pg_count air_quality "device_id IN ('qos0', 'qos2')")" "QoS 0 and 2 messages"
assert_eq 0 "$(pg_count rejected_message "topic LIKE '\$%' OR payload = convert_to('FORGEDxx', 'UTF8')")" \
    "forged dead letter"
total_rejects=$((n_cases + 1)) # + the retained bad one
assert_eq "$total_rejects" "$(pg_count rejected_message)" "rejected_message rows"
assert_eq 1 "$(pg_count air_quality "device_id = 'dev\$1'")" "'\$' inside a device id"
assert_eq 5 "$(pg_count air_quality)" "air_quality rows (retained, qos0, qos2, dev\$1, sentinel)"

# Counted by reason in the metrics (this agent saw each exactly once).
for reason in json topic too_large; do
    want=$(pg_count rejected_message "reason = '$reason'")
    wait_for 10 "rejected_total{reason=$reason} = $want" \
        ep_metric_is "$want" "spotagent_messages_rejected_total{reason=\"$reason\"}"
done
ep_status_is 200 /health || fail "/health is $EP_CODE after the hostile input"

# Still healthy, and a restart re-subscribes: the broker sends the
# retained messages again; they are stored once.
stop_agent || fail "agent exited with status $? (sanitizer report?)"
! grep -q "Sanitizer\|runtime error" "$AGENT_STDERR" ||
    fail "sanitizer report: $(grep -A5 "Sanitizer\|runtime error" "$AGENT_STDERR" | head -20)"
start_agent "${AGENT_ARGS[@]}"
mpub -t "$SENTINEL_TOPIC" -m "$(aqo 58)"
wait_for 60 "second sentinel stored" pg_count_is 2 air_quality "device_id = 'sentinel'"
wait_for 20 "the retained messages came again" \
    ep_metric_ge 3 'spotagent_messages_received_total{vertical="aqo"}'
assert_eq 1 "$(pg_count air_quality "device_id = 'retained'")" "retained good message, after a re-subscribe"
assert_eq "$total_rejects" "$(pg_count rejected_message)" "rejected_message rows after a re-subscribe"
ep_status_is 200 /ready || fail "/ready is $EP_CODE: $EP_BODY"
stop_agent || fail "agent exited with status $?"
