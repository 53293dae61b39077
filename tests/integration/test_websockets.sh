#!/usr/bin/env bash
# WebSocket transports end to end on a real Mosquitto (websockets
# listeners, plain and TLS with a private CA):
#  1. spotagent subscribes over ws:// and spotsim publishes over ws://:
#     every message arrives, once (stdout sink, one entity per line);
#  2. the same over wss:// (spotagent --mqtt-ca, spotsim --ca);
#  3. spotdevice with transport 3 (server ws://...) publishes to the agent.
#
# Debian's Mosquitto 2.0.11 binds a websockets listener to every interface
# whatever address it is given, so this test runs in a network namespace of
# its own (unshare --net) that holds only a loopback interface: nothing it
# starts can be reached from outside this machine.
if [ -z "${SPOT_IN_NETNS:-}" ]; then
    ns=(--net)
    [ "$(id -u)" -eq 0 ] || ns+=(--map-root-user)
    exec unshare "${ns[@]}" env SPOT_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up || {
    echo "test_websockets: cannot bring up loopback in the namespace" >&2
    exit 1
}
source "$(dirname "$0")/lib.sh"

SPOTDEVICE=${SPOTDEVICE:-${TOOLS%/tools}/spotdevice}
SPOTSIM=${SPOTSIM:-${TOOLS%/tools}/spotsim}
[ -x "$SPOTDEVICE" ] || fail "spotdevice not found: $SPOTDEVICE"
[ -x "$SPOTSIM" ] || fail "spotsim not found: $SPOTSIM"

# shellcheck source=deploy_lib.sh
source "$(dirname "$0")/deploy_lib.sh" # make_pki
PKI=$TEST_TMP/pki
make_pki "$PKI"

start_mosquitto
WS_PORT=$(free_port)
WSS_PORT=$(free_port)
cat >>"$MQTT_DIR/mosquitto.conf" <<EOF
listener $WS_PORT
protocol websockets
listener $WSS_PORT
protocol websockets
cafile $PKI/ca.pem
certfile $PKI/server.pem
keyfile $PKI/server.key
EOF
restart_mosquitto
ws_up() { ! _port_free "$WS_PORT" && ! _port_free "$WSS_PORT"; }
wait_for 10 "the websockets listeners" ws_up

# entities DEVICE_PREFIX: stdout lines of the agent's current run naming
# devices with that prefix.
entities() { grep -c -- "$1" "$AGENT_STDOUT" 2>/dev/null || true; }
entities_are() { [ "$(entities "$2")" -eq "$1" ]; }

# run_case URL AGENT_ARGS... -- SIM_ARGS...: the agent over URL, spotsim
# over URL, 300 messages of 5 devices.
run_case() {
    local url=$1 prefix=$2
    shift 2
    local agent_args=() sim_args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do agent_args+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    sim_args=("$@")
    AGENT_ID=ws-agent-$prefix
    AGENT_DATA=$TEST_TMP/agent-$prefix
    # start_agent waits on the broker's log, which names the client either way
    MQTT_URL_SAVED=$MQTT_URL
    MQTT_URL=$url
    start_agent "${agent_args[@]}"
    MQTT_URL=$MQTT_URL_SAVED
    "$SPOTSIM" --url "$url" "${sim_args[@]}" --devices 5 --apikey wsKey \
        --device-prefix "$prefix" --verticals aqo,nlo,wto --shared-connection \
        --rate max --count 300 --failure-rate 0 --start 2026-01-01T00:00:00Z \
        --summary "$TEST_TMP/$prefix.json" --quiet ||
        fail "spotsim over $url failed"
    grep -q '"delivered": 300' "$TEST_TMP/$prefix.json" ||
        fail "spotsim over $url: not all delivered: $(cat "$TEST_TMP/$prefix.json")"
    wait_for 30 "300 entities from $url" entities_are 300 "$prefix"
    assert_eq 300 "$(grep -- "$prefix" "$AGENT_STDOUT" | sort -u | wc -l)" \
        "distinct entities over $url"
    grep -q "subscribed to 1 filter" "$AGENT_STDERR" ||
        fail "the agent did not log its subscription over $url"
    stop_agent || fail "agent over $url exited with status $?"
}

# 1. ws://
run_case "ws://127.0.0.1:$WS_PORT" wsplain
# 2. wss:// with the private CA (host verification on: the certificate
# names 127.0.0.1)
run_case "wss://127.0.0.1:$WSS_PORT" wstls --mqtt-ca "$PKI/ca.pem" -- \
    --ca "$PKI/ca.pem"

# 3. spotdevice, transport 3, into an agent over ws://
AGENT_ID=ws-agent-dev
AGENT_DATA=$TEST_TMP/agent-dev
start_agent --mqtt-url "ws://127.0.0.1:$WS_PORT"
cat >"$TEST_TMP/dev.json" <<EOF
{
  "mqtt_client": {
    "enable": true, "transport": 3, "server": "ws://127.0.0.1",
    "port": $WS_PORT, "topic_prefix": "/wsKey/wsdev1"
  },
  "device": {"period_min": 1, "spool_dir": "$TEST_TMP/spool-dev"},
  "sensors": {"aqo": {}, "dho": {}}
}
EOF
"$SPOTDEVICE" --config "$TEST_TMP/dev.json" --check-config >/dev/null ||
    fail "transport 3 configuration rejected"
bg dev "$SPOTDEVICE" --config "$TEST_TMP/dev.json" --speed 600 \
    --status "$TEST_TMP/dev.status"
DEV=$BG_PID
connected() { grep -q '"client_status":true' "$TEST_TMP/dev.status" 2>/dev/null; }
wait_for 20 "spotdevice connected over ws://" connected
arrived() { [ "$(entities wsdev1)" -ge 4 ]; }
wait_for 30 "spotdevice's messages in the agent" arrived
kill -TERM "$DEV"
wait_pid "$DEV" 20 || fail "spotdevice did not stop cleanly"
grep -q '"type":"AirQualityObserved"' "$AGENT_STDOUT" ||
    fail "no air quality entity from spotdevice"
stop_agent || fail "agent exited with status $?"
log "WebSocket transports: ok"
