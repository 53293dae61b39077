#!/usr/bin/env bash
# Every kind of bad message lands in rejected_message with the contract's
# reason (§4), its raw bytes and a non-empty detail: wrong topic shapes,
# vertical mismatch, missing and mistyped fields, bad TimeInstant,
# out-of-range values (row stored with the field NULL), oversized payload,
# invalid UTF-8, deep nesting. An identical reject is stored once.
#
# The agent subscribes to '#' here so that topics with the wrong number of
# levels reach it too.
source "$(dirname "$0")/lib.sh"

K=rejkey
GOOD="/${K}aqo/dev1_AQO/attrs"

start_mosquitto
start_postgres
start_agent --mqtt-topic '#'

# aqo payload at minute M past 2024-01-01T00:00Z, with extra JSON members.
aqo() {
    printf '{"TimeInstant":"2024-01-01T00:%02d:00Z","period":5,"status":"connected","no2-a4":12.5%s}' "$1" "${2:-}"
}

# case_file REASON WHAT TOPIC FILE: publish FILE's bytes on TOPIC, expect
# one rejected_message row with REASON.
case_file() {
    reject_case "$@"
    publish_file "$3" "$4"
}
# case_str REASON WHAT TOPIC PAYLOAD
case_str() {
    local f=$TEST_TMP/case$n_cases.bin
    printf '%s' "$4" >"$f"
    case_file "$1" "$2" "$3" "$f"
}

# --- topic errors (valid payloads) ------------------------------------------
case_str topic "vertical mismatch" "/K_aqo/D_NLO/attrs" "$(aqo 1)"
case_str topic "empty apikey level" "//dev1_AQO/attrs" "$(aqo 2)"
case_str topic "empty device level" "/${K}aqo//attrs" "$(aqo 3)"
case_str topic "illegal character in device id" "/${K}aqo/dev(1)_AQO/attrs" "$(aqo 4)"
case_str topic "space in apikey" "/${K} x aqo/dev1_AQO/attrs" "$(aqo 5)"
case_str topic "too many levels" "/${K}aqo/dev1_AQO/attrs/x" "$(aqo 6)"
case_str topic "too few levels" "/${K}aqo/dev1_AQO" "$(aqo 7)"
case_str topic "no leading slash" "${K}aqo/dev1_AQO/attrs" "$(aqo 8)"
case_str topic "last level not attrs" "/${K}aqo/dev1_AQO/cmd" "$(aqo 9)"

# --- schema errors -------------------------------------------------------------
case_str schema "missing TimeInstant" "$GOOD" \
    '{"period":5,"status":"connected","no2-a4":1}'
case_str schema "missing status" "$GOOD" \
    '{"TimeInstant":"2024-01-01T00:11:00Z","period":5,"no2-a4":1}'
case_str schema "missing period" "$GOOD" \
    '{"TimeInstant":"2024-01-01T00:12:00Z","status":"connected"}'
case_str schema "string for a number" "$GOOD" "$(aqo 13 ',"pm2":"15.3"')"
case_str schema "number for TimeInstant" "$GOOD" \
    '{"TimeInstant":1704067200,"period":5,"status":"connected"}'
case_str schema "TimeInstant not ISO 8601" "$GOOD" \
    '{"TimeInstant":"01/01/2024 00:15","period":5,"status":"connected"}'
case_str schema "TimeInstant impossible date" "$GOOD" \
    '{"TimeInstant":"2024-13-45T25:61:00Z","period":5,"status":"connected"}'
case_str schema "null TimeInstant" "$GOOD" \
    '{"TimeInstant":null,"period":5,"status":"connected"}'

# --- json errors ---------------------------------------------------------------
f=$TEST_TMP/utf8.bin
printf '{"TimeInstant":"2024-01-01T00:20:00Z","period":5,"status":"connected","note":"\xff\xfe bad"}' >"$f"
case_file json "invalid UTF-8" "$GOOD" "$f"
deep=$(printf '[%.0s' $(seq 1 100))1$(printf ']%.0s' $(seq 1 100))
case_str json "deep nesting" "$GOOD" "$(aqo 21 ",\"x\":$deep")"
case_str json "truncated" "$GOOD" '{"TimeInstant":"2024-01-01T00:22:00Z","period":'
case_str json "empty payload" "$GOOD" ''

# --- too large -----------------------------------------------------------------
f=$TEST_TMP/large.bin
{
    printf '{"TimeInstant":"2024-01-01T00:23:00Z","period":5,"status":"connected","pad":"'
    head -c 70000 /dev/zero | tr '\0' 'a'
    printf '"}'
} >"$f"
case_file too_large "payload of 70 kB" "$GOOD" "$f"

# --- range: the row is stored with the field NULL, and the message rejected ---
RANGE_PAYLOAD=$(aqo 30 ',"pm2":20000,"pm10":40.5')
case_str range "pm2 above its maximum" "$GOOD" "$RANGE_PAYLOAD"
case_str range "negative battery level" "/${K}dho/dev1_DHO/attrs" \
    '{"TimeInstant":"2024-01-01T00:31:00Z","period":5,"status":"connected","batteryLevel":-0.5,"batteryVoltage":11000}'

# --- an identical reject, published twice, is stored once ----------------------
DUP='{"dup": not json}'
case_str json "duplicate (first copy)" "$GOOD" "$DUP"
publish_payload "$GOOD" "$DUP"

# A sentinel after everything: the agent handles messages in order, so once
# it is stored, everything before it has been handled.
SENTINEL='{"sentinel": '
publish_payload "$GOOD" "$SENTINEL"
wait_for 60 "sentinel rejected" pg_count_is 1 rejected_message \
    "payload = convert_to('$SENTINEL', 'UTF8')"

check_reject_cases

# Nothing else was rejected (n_cases + the sentinel; the duplicate once).
assert_eq $((n_cases + 1)) "$(pg_count rejected_message)" "rejected_message rows"

# The range rejections also stored their rows, with the field NULL.
assert_eq "t|t|40.5|12.5" "$(psql_q "SELECT pm2 IS NULL, period = 5, pm10, no2_a4
    FROM air_quality WHERE apikey = '$K' AND device_id = 'dev1'
      AND time_instant = '2024-01-01T00:30:00Z'")" "air_quality row of the range case"
assert_eq "t|11000" "$(psql_q "SELECT battery_level IS NULL, battery_voltage
    FROM device_health WHERE apikey = '$K' AND device_id = 'dev1'
      AND time_instant = '2024-01-01T00:31:00Z'")" "device_health row of the range case"
# ... and no other rows at all.
wait_total 2 1

agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
