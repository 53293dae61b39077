#!/usr/bin/env bash
# Last Will (resources 5-8): when spotdevice is killed with SIGKILL the
# broker publishes the will message on the will topic, with the will QoS
# and retain flag; when it stops on SIGTERM (a clean DISCONNECT) it does
# not. Also: user name and password (resources 10, 11) against a broker
# that requires them, and --check-config refusing a bad file with every
# problem listed.
source "$(dirname "$0")/lib.sh"

# beside the tools of the same build (make check: build/)
SPOTDEVICE=${SPOTDEVICE:-${TOOLS%/tools}/spotdevice}
[ -x "$SPOTDEVICE" ] || fail "spotdevice not found: $SPOTDEVICE"

# --check-config: exit 2 and every error on stderr.
cat >"$TEST_TMP/bad.json" <<'EOF'
{"mqtt_client": {"enable": true, "transport": 2, "keep_alive": 10,
  "lwt_topic": "/k/d/lwt", "qos": 3, "17": true},
 "sensors": {"aqo": {"fields": ["no2"]}}}
EOF
rc=0
"$SPOTDEVICE" --config "$TEST_TMP/bad.json" --check-config \
    >"$TEST_TMP/check.out" 2>"$TEST_TMP/check.err" || rc=$?
assert_eq 2 "$rc" "--check-config exit status on a bad file"
for want in "resource 4 (keep_alive): 10 is outside 20..6000" \
    "resource 12 (ca_certificate) is required for transport 2" \
    "resource 8 (lwt_message) is required when 5" \
    "resource 15 (qos): 3 is outside 0..2" \
    "resource 17 (client_status) is read-only" \
    'aqo has no field "no2"' "6 errors"; do
    grep -qF -- "$want" "$TEST_TMP/check.err" ||
        fail "--check-config did not say: $want ($(cat "$TEST_TMP/check.err"))"
done

start_mosquitto
# A second listener that requires a password, on the same broker.
AUTH_PORT=$(free_port)
printf 'spot:%s\n' "s3cret" >"$MQTT_DIR/passwd"
mosquitto_passwd -U "$MQTT_DIR/passwd"
cat >>"$MQTT_DIR/mosquitto.conf" <<EOF
per_listener_settings true
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
listener $AUTH_PORT 127.0.0.1
allow_anonymous false
password_file $MQTT_DIR/passwd
EOF
# the first "listener" line of lib.sh's file is now repeated: drop it
sed -i "0,/^listener $MQTT_PORT 127.0.0.1$/{//d}" "$MQTT_DIR/mosquitto.conf"
sed -i '0,/^allow_anonymous true$/{//d}' "$MQTT_DIR/mosquitto.conf"
restart_mosquitto

write_config() { # FILE CLIENT_ID
    cat >"$1" <<EOF
{
  "mqtt_client": {
    "0": true, "1": 1, "2": "mqtt://127.0.0.1", "3": $AUTH_PORT, "4": 20,
    "5": "/lwtKey/$2/status", "6": 1, "7": true, "8": "{\"status\":\"lost\"}",
    "10": "spot", "11": "s3cret", "15": 1, "16": "/lwtKey/$2"
  },
  "device": {"period_min": 1, "spool_dir": "$TEST_TMP/spool-$2"},
  "sensors": {"dho": {}}
}
EOF
}

status_connected() {
    grep -q '"client_status":true' "$1" 2>/dev/null
}

# 1. SIGKILL: the will is published (retained, so a late subscriber sees it).
write_config "$TEST_TMP/d1.json" dev1
bg dev1 "$SPOTDEVICE" --config "$TEST_TMP/d1.json" --speed 60 \
    --status "$TEST_TMP/d1.status"
D1=$BG_PID
wait_for 20 "dev1 connected with user name and password" \
    status_connected "$TEST_TMP/d1.status"
kill -KILL "$D1"
wait "$D1" 2>/dev/null || true
got=$(timeout 10 mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -C 1 -v \
    -t '/lwtKey/dev1/status') || fail "no Last Will after SIGKILL"
assert_eq '/lwtKey/dev1/status {"status":"lost"}' "$got" "the Last Will"

# 2. SIGTERM: a clean disconnect, no will.
write_config "$TEST_TMP/d2.json" dev2
bg dev2 "$SPOTDEVICE" --config "$TEST_TMP/d2.json" --speed 60 \
    --status "$TEST_TMP/d2.status"
D2=$BG_PID
wait_for 20 "dev2 connected" status_connected "$TEST_TMP/d2.status"
kill -TERM "$D2"
rc=0
wait_pid "$D2" 20 || rc=$?
assert_eq 0 "$rc" "spotdevice exit status after SIGTERM"
got=$(timeout 2 mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -C 1 -v \
    -t '/lwtKey/dev2/status') || true
assert_eq "" "$got" "no Last Will after a clean stop"

# 3. A wrong password: refused, retried, measurements kept in the spool.
write_config "$TEST_TMP/d3.json" dev3
sed -i 's/"s3cret"/"wrong"/' "$TEST_TMP/d3.json"
bg dev3 "$SPOTDEVICE" --config "$TEST_TMP/d3.json" --speed 600 \
    --status "$TEST_TMP/d3.status"
refused() { grep -q "connecting to tcp://127.0.0.1:$AUTH_PORT failed" \
    "$TEST_TMP/dev3.log"; }
wait_for 20 "the bad password refused" refused
queued() { grep -qE '"queued":[1-9]' "$TEST_TMP/d3.status" 2>/dev/null; }
wait_for 20 "measurements queued meanwhile" queued
status_connected "$TEST_TMP/d3.status" && fail "connected with a bad password"
log "Last Will, clean stop and credentials: ok"
