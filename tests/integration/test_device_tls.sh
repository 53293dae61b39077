#!/usr/bin/env bash
# TLS (transport 2) against a real Mosquitto with a private CA:
#  1. spotdevice with the CA as a file path and its client certificate and
#     key inline in the configuration (resources 12-14), on a listener that
#     requires a client certificate: connects, its messages arrive;
#  2. host verification: a broker whose certificate names another host is
#     refused (never connected; measurements stay queued);
#  3. spotsim over mqtts:// with --ca/--cert/--key.
# (WebSocket transports 3 and 4: test_websockets.sh.)
source "$(dirname "$0")/lib.sh"

# beside the tools of the same build (make check: build/)
SPOTDEVICE=${SPOTDEVICE:-${TOOLS%/tools}/spotdevice}
SPOTSIM=${SPOTSIM:-${TOOLS%/tools}/spotsim}
[ -x "$SPOTDEVICE" ] || fail "spotdevice not found: $SPOTDEVICE"
[ -x "$SPOTSIM" ] || fail "spotsim not found: $SPOTSIM"

PKI=$TEST_TMP/pki
mkdir -p "$PKI"
ossl() { openssl "$@" >>"$TEST_TMP/openssl.log" 2>&1 || fail "openssl $1 failed"; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$PKI/ca.key" -out "$PKI/ca.pem" -days 2 -subj /CN=spot-test-ca
# leaf NAME SAN: a key and a certificate signed by the CA.
leaf() {
    ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj "/CN=$1"
    printf 'subjectAltName=%s\n' "$2" >"$PKI/$1.ext"
    ossl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
        -CAcreateserial -out "$PKI/$1.pem" -days 2 -extfile "$PKI/$1.ext"
}
leaf server "IP:127.0.0.1,DNS:localhost"
leaf wrong "DNS:wrong.example"
leaf dev1 "DNS:dev1"

start_mosquitto
TLS_PORT=$(free_port)
WRONG_PORT=$(free_port)
cat >>"$MQTT_DIR/mosquitto.conf" <<EOF
listener $TLS_PORT 127.0.0.1
cafile $PKI/ca.pem
certfile $PKI/server.pem
keyfile $PKI/server.key
require_certificate true
listener $WRONG_PORT 127.0.0.1
certfile $PKI/wrong.pem
keyfile $PKI/wrong.key
EOF
restart_mosquitto

# json_string FILE: the file's content as a JSON string (inline PEM).
json_string() {
    perl -MJSON::PP -e 'local $/; print JSON::PP->new->allow_nonref->encode(<STDIN>)' <"$1"
}

write_config() { # FILE PORT NAME
    cat >"$1" <<EOF
{
  "mqtt_client": {
    "enable": true, "transport": 2, "server": "mqtt://127.0.0.1",
    "port": $2, "topic_prefix": "/tlsKey/$3",
    "ca_certificate": "$PKI/ca.pem",
    "client_certificate": $(json_string "$PKI/dev1.pem"),
    "client_key": $(json_string "$PKI/dev1.key")
  },
  "device": {"period_min": 1, "spool_dir": "$TEST_TMP/spool-$3"},
  "sensors": {"aqo": {}, "dho": {}}
}
EOF
}

# 1. TLS with a client certificate.
write_config "$TEST_TMP/d1.json" "$TLS_PORT" dev1
"$SPOTDEVICE" --config "$TEST_TMP/d1.json" --check-config >/dev/null ||
    fail "valid TLS configuration rejected"
bg sub stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -v \
    -t '/tlsKeyaqo/dev1_AQO/attrs'
subscribed() { [ "$(mqtt_log_count " 1 /tlsKeyaqo/dev1_AQO/attrs")" -gt 0 ]; }
wait_for 10 "the subscriber" subscribed
bg dev1 "$SPOTDEVICE" --config "$TEST_TMP/d1.json" --speed 600 \
    --status "$TEST_TMP/d1.status"
D1=$BG_PID
connected() { grep -q '"client_status":true' "$1" 2>/dev/null; }
wait_for 20 "connected over TLS" connected "$TEST_TMP/d1.status"
arrived() { [ "$(grep -c TimeInstant "$TEST_TMP/sub.log")" -ge 3 ]; }
wait_for 20 "messages sent over TLS" arrived
kill -TERM "$D1"
wait_pid "$D1" 20 || fail "spotdevice did not stop cleanly"
# the inline PEMs were written for Paho, private to the owner
mode=$(stat -c %a "$TEST_TMP/spool-dev1/key.pem")
assert_eq 600 "$mode" "mode of the client key file"

# 2. The broker's certificate names another host: refused. (Control: the
# listener itself works when the name is not checked.)
mosquitto_pub -h 127.0.0.1 -p "$WRONG_PORT" --cafile "$PKI/ca.pem" --insecure \
    -t /control -m x || fail "control: the second TLS listener does not work"
write_config "$TEST_TMP/d2.json" "$WRONG_PORT" dev2
bg dev2 "$SPOTDEVICE" --config "$TEST_TMP/d2.json" --speed 600 \
    --status "$TEST_TMP/d2.status"
D2=$BG_PID
refused() { [ "$(grep -c "connecting to ssl://127.0.0.1:$WRONG_PORT failed" \
    "$TEST_TMP/dev2.log")" -ge 2 ]; }
wait_for 20 "the wrong host name refused" refused
queued() { grep -qE '"queued":[1-9]' "$TEST_TMP/d2.status" 2>/dev/null; }
wait_for 10 "measurements queued" queued
connected "$TEST_TMP/d2.status" && fail "connected to a broker with a wrong name"
kill -TERM "$D2"
wait_pid "$D2" 20 || true

# 3. spotsim over mqtts://
"$SPOTSIM" --url "mqtts://127.0.0.1:$TLS_PORT" --ca "$PKI/ca.pem" \
    --cert "$PKI/dev1.pem" --key "$PKI/dev1.key" --devices 3 \
    --shared-connection --rate max --count 200 --summary "$TEST_TMP/s.json" \
    --quiet || fail "spotsim over TLS failed"
grep -q '"delivered": 200' "$TEST_TMP/s.json" || fail "spotsim: not all delivered"
log "TLS: ok"
