#!/usr/bin/env bash
# Configuration edge cases, end to end.
#  1. --check-config with bad values: exit 2, one clear line on stderr
#     naming the option; a *_FILE secret that is missing or a directory;
#     a configuration file nested half a million levels deep (it crashed); a
#     good configuration: exit 0.
#  2. SIGHUP with an invalid file (bad JSON, unknown key, bad value, a
#     secret file gone) is logged and the agent keeps running on the old
#     configuration (the old service groups still decide what is
#     accepted); then a valid file applies at once.
#  3. A burst of 300 SIGHUPs during a stream: coalesced to at most one
#     reload a second, nothing lost, the last file applies.
source "$(dirname "$0")/lib.sh"

# check_fails WANT ARGS...: --check-config exits 2 saying WANT (a
# substring); CHECK_ENV (NAME=VALUE...) is added to its environment.
CHECK_ENV=()
check_fails() {
    local want=$1
    shift
    local rc=0 out
    out=$(env "${CHECK_ENV[@]}" "$SPOTAGENT" "$@" --check-config 2>&1) || rc=$?
    [ "$rc" = 2 ] || fail "--check-config $*: exit $rc, want 2 ($out)"
    [[ $out == *"$want"* ]] || fail "--check-config $*: '$out' lacks '$want'"
    [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "more than one line: $out"
    log "ok: $* -> $out"
}

check_fails 'mqtt-qos: "5" is not an integer in [0, 2]' --mqtt-qos 5
check_fails 'journal-max-mb' --journal-max-mb 0
check_fails 'mqtt-url' --mqtt-url mqtt://broker:70000
check_fails "'#' must be the whole last level" --mqtt-topic 'a/#/b'
check_fails 'http-listen' --http-listen 'nope'
check_fails 'unknown option "--mqtt-qso"' --mqtt-qso 1
CHECK_ENV=(SPOTAGENT_PG_URL_FILE=/nonexistent/pg-url)
check_fails 'SPOTAGENT_PG_URL_FILE: cannot open /nonexistent/pg-url: No such file'
CHECK_ENV=(SPOTAGENT_ORION_TOKEN_FILE="$TEST_TMP")
check_fails "SPOTAGENT_ORION_TOKEN_FILE: cannot read $TEST_TMP: Is a directory"
CHECK_ENV=()
python3 -c "print('{\"devices\":' + '['*500000 + ']'*500000 + '}')" \
    >"$TEST_TMP/deep.json"
check_fails "deeper than 64 levels" --config "$TEST_TMP/deep.json"
out=$("$SPOTAGENT" --mqtt-qos 2 --check-config 2>&1) ||
    fail "a good configuration was refused: $out"

# --- SIGHUP ---------------------------------------------------------------------
start_mosquitto
start_postgres
CONF=$TEST_TMP/agent.json
groups_file() { # apikey...
    local g="" k
    for k in "$@"; do g="$g${g:+,}{\"apikey\":\"$k\"}"; done
    printf '{"service_groups":[%s]}\n' "$g" >"$CONF"
}
groups_file okkey
printf 'secret\n' >"$TEST_TMP/pw"
export SPOTAGENT_MQTT_USERNAME=spot SPOTAGENT_MQTT_PASSWORD_FILE=$TEST_TMP/pw
start_agent --config "$CONF"

minute=0
# send APIKEY: one aqo message of a new minute.
send() {
    minute=$((minute + 1))
    publish_payload "/${1}aqo/dev1_AQO/attrs" \
        "$(printf '{"TimeInstant":"2024-03-01T00:%02d:00Z","period":5,"status":"connected"}' "$minute")"
}
stored() { pg_count air_quality "apikey = '$1'"; }
unknown() { pg_count rejected_message "reason = 'unknown_apikey' AND topic LIKE '/$1%'"; }

send okkey
send otherkey
wait_for 60 "okkey stored" pg_count_is 1 air_quality "apikey = 'okkey'"
wait_for 60 "otherkey refused" pg_count_is 1 rejected_message \
    "reason = 'unknown_apikey' AND topic LIKE '/otherkey%'"

hups=0
rejected_reload() { # WHAT: SIGHUP, then the rejection is logged, agent up
    local n
    n=$(grep -c "SIGHUP: new configuration rejected" "$AGENT_STDERR" || true)
    kill -HUP "$AGENT_PID"
    hups=$((hups + 1))
    wait_for 20 "$1: reload rejected" \
        test_count_gt "SIGHUP: new configuration rejected" "$n"
    agent_alive || fail "agent died on a SIGHUP with $1"
    log "ok: $1: $(grep "SIGHUP: new configuration rejected" "$AGENT_STDERR" | tail -n 1 | cut -c 1-200)"
}
test_count_gt() {
    [ "$(grep -c "$1" "$AGENT_STDERR" || true)" -gt "$2" ]
}

printf '{"service_groups": [' >"$CONF"
rejected_reload "truncated JSON"
printf '{"service_grups": []}' >"$CONF"
rejected_reload "an unknown key"
printf '{"mqtt_qos": 9}' >"$CONF"
rejected_reload "a bad value"
cp "$TEST_TMP/deep.json" "$CONF"
rejected_reload "a file nested half a million levels deep"
groups_file okkey newkey
mv "$TEST_TMP/pw" "$TEST_TMP/pw.gone"
rejected_reload "the password file gone"
mv "$TEST_TMP/pw.gone" "$TEST_TMP/pw"

# Still the old groups: okkey in, newkey out.
send okkey
send newkey
wait_for 60 "okkey stored after the rejected reloads" \
    pg_count_is 2 air_quality "apikey = 'okkey'"
wait_for 60 "newkey still refused" pg_count_is 1 rejected_message \
    "reason = 'unknown_apikey' AND topic LIKE '/newkey%'"

# A valid file applies at once.
n=$(grep -c "SIGHUP: configuration reloaded" "$AGENT_STDERR" || true)
kill -HUP "$AGENT_PID"
wait_for 20 "valid reload applied" test_count_gt "SIGHUP: configuration reloaded" "$n"
send newkey
wait_for 60 "newkey stored after the reload" \
    pg_count_is 1 air_quality "apikey = 'newkey'"
assert_eq 2 "$(stored okkey)" "okkey rows"

# A burst of SIGHUPs, the file changing between them, while a stream
# flows: reloads are coalesced to at most one a second (a replaced groups
# table is freed 16 reloads later, so it must not be in use then), nothing
# is lost or refused, and the file as it is last applies.
reloads() { grep -c "SIGHUP: configuration reloaded" "$AGENT_STDERR" || true; }
groups_file okkey newkey burstkey
n=$(reloads)
kill -HUP "$AGENT_PID"
wait_for 20 "burstkey accepted" test_count_gt "SIGHUP: configuration reloaded" "$n"
n=$(reloads)
t0=$SECONDS
bg pub "$TOOLS/spotpub" --url "$MQTT_URL" --qos 1 --count 3000 --devices 5 \
    --vertical aqo --apikey burstkey --start 1700000000 --rate 1000 --quiet
pub=$BG_PID
for i in $(seq 1 300); do
    if [ $((i % 2)) = 0 ]; then groups_file okkey newkey burstkey; else groups_file burstkey okkey; fi
    kill -HUP "$AGENT_PID"
    [ $((i % 50)) = 0 ] && sleep 0.5 # spread over a few seconds
done
groups_file okkey newkey burstkey lastkey
kill -HUP "$AGENT_PID"
wait_pid "$pub" 60 || fail "spotpub failed (exit $?)"
wait_for 60 "the burst's messages stored" pg_count_is 3000 air_quality "apikey = 'burstkey'"
wait_for 20 "the last file applied" grep -q "configuration reloaded: 4 service group" "$AGENT_STDERR"
elapsed=$((SECONDS - t0))
done_reloads=$(($(reloads) - n))
log "301 SIGHUPs in ${elapsed}s: $done_reloads reloads"
[ "$done_reloads" -ge 2 ] || fail "only $done_reloads reloads for 301 SIGHUPs"
[ "$done_reloads" -le $((elapsed + 2)) ] ||
    fail "$done_reloads reloads in ${elapsed}s: SIGHUPs were not coalesced"
assert_eq 0 "$(unknown burstkey)" "burstkey messages refused during the burst"
send lastkey
wait_for 60 "lastkey stored" pg_count_is 1 air_quality "apikey = 'lastkey'"

agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
