#!/usr/bin/env bash
# TLS end to end with client certificates, on the shipped broker
# configuration (deploy/mosquitto/mosquitto-tls.conf with its acl): a
# throwaway CA and certificates made with openssl; spotagent connects over
# mqtts:// with a valid client certificate and a measure published by a
# device (certificate CN = its device id) lands on its standard output.
# Refused: a client certificate from another CA, no client certificate, and
# a broker whose certificate does not name 127.0.0.1 (host verification).
# A refused agent keeps retrying, never subscribes, stays alive, says so in
# its log, and stops cleanly on SIGTERM.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/deploy_lib.sh"

APIKEY=JRI9jTbEKJQS29y3bc8BC6
TOPIC_OWN=/${APIKEY}aqo/SmartSpot_AQ_1_AQO/attrs
TOPIC_OTHER=/${APIKEY}aqo/SmartSpot_AQ_2_AQO/attrs
PKI=$TEST_TMP/pki

make_pki "$PKI"
log "PKI ready"

# broker_dir NAME SERVER_CERT: the files mosquitto-tls.conf names.
broker_dir() {
    local d=$TEST_TMP/$1
    mkdir -p "$d/certs"
    cp "$PKI/ca.pem" "$d/certs/ca.pem"
    cp "$PKI/$2.pem" "$d/certs/server.pem"
    cp "$PKI/$2.key" "$d/certs/server.key"
    cp "$DEPLOY/mosquitto/acl" "$d/acl"
}

broker_dir good server
start_deploy_broker good mosquitto-tls.conf
GOOD_PORT=$BROKER_PORT
GOOD_DIR=$BROKER_DIR
# lib.sh's start_agent watches this broker's log.
MQTT_DIR=$GOOD_DIR
MQTT_PORT=$GOOD_PORT
MQTT_URL=mqtts://127.0.0.1:$GOOD_PORT

broker_dir wrongsan server-wrongsan
start_deploy_broker wrongsan mosquitto-tls.conf
BAD_PORT=$BROKER_PORT
BAD_DIR=$BROKER_DIR

# --- the refused agents, started first: they retry while the rest runs ------
# refused_agent NAME URL ARGS...: an agent in the background (stdout sink),
# client id itest-tls-NAME-$$, log in $TEST_TMP/NAME.log.
declare -A REFUSED_PID REFUSED_ID
refused_agent() {
    local name=$1 url=$2
    shift 2
    local id=itest-tls-$name-$$
    bg "$name" env --default-signal=INT "$SPOTAGENT" --mqtt-url "$url" \
        --mqtt-client-id "$id" --data-dir "$TEST_TMP/$name-data" \
        --http-listen off --log-level info "$@"
    REFUSED_PID[$name]=$BG_PID
    REFUSED_ID[$name]=$id
}
refused_agent rogue "mqtts://127.0.0.1:$GOOD_PORT" --mqtt-ca "$PKI/ca.pem" \
    --mqtt-cert "$PKI/rogue-agent.pem" --mqtt-key "$PKI/rogue-agent.key"
refused_agent nocert "mqtts://127.0.0.1:$GOOD_PORT" --mqtt-ca "$PKI/ca.pem"
refused_agent wrongsan "mqtts://127.0.0.1:$BAD_PORT" --mqtt-ca "$PKI/ca.pem" \
    --mqtt-cert "$PKI/agent.pem" --mqtt-key "$PKI/agent.key"

# --- valid certificate --------------------------------------------------------
AGENT_NO_PG=1
start_agent --mqtt-ca "$PKI/ca.pem" --mqtt-cert "$PKI/agent.pem" \
    --mqtt-key "$PKI/agent.key"
id_re=${AGENT_ID//./\\.}
[ "$(broker_log_count "$GOOD_DIR" "New client connected from .* as $id_re .*u'spotagent'")" -ge 1 ] ||
    fail "the broker did not take the certificate's CN (spotagent) as user name"
log "agent connected over TLS as user spotagent (its certificate's CN)"

# device_pub TOPIC: publishes the aqo vector at QoS 1 with the device's
# certificate (CN=SmartSpot_AQ_1).
device_pub() {
    mosquitto_pub -h 127.0.0.1 -p "$GOOD_PORT" --cafile "$PKI/ca.pem" \
        --cert "$PKI/device.pem" --key "$PKI/device.key" -q 1 \
        -i "itest-device-$$" -t "$1" -f "$VECTORS/aqo.json" \
        >>"$TEST_TMP/mosquitto_pub.log" 2>&1 ||
        fail "mosquitto_pub over TLS to $1 failed"
}

lines() { wc -l <"$AGENT_STDOUT"; }
lines_ge() { [ "$(lines)" -ge "$1" ]; }

# The ACL lets a device publish under another device's id? No: denied
# (dropped by the broker, so nothing reaches the agent).
denied_other() {
    [ "$(broker_log_count "$GOOD_DIR" "Denied PUBLISH .*SmartSpot_AQ_2_AQO")" -ge 1 ]
}
device_pub "$TOPIC_OTHER"
wait_for 10 "the broker denying SmartSpot_AQ_1 on SmartSpot_AQ_2's topic" \
    denied_other
device_pub "$TOPIC_OWN"
wait_for 20 "the device's measure on the agent's stdout" lines_ge 1
assert_eq 1 "$(lines)" "lines on stdout (the denied publish must not arrive)"
grep -q 'SmartSpot_AQ_1' "$AGENT_STDOUT" ||
    fail "the stdout line does not name SmartSpot_AQ_1: $(head -c 300 "$AGENT_STDOUT")"
log "valid certificate: connected, subscribed, the device's measure arrived"

# --- refused ones -------------------------------------------------------------
attempts() {
    local n
    n=$(grep -c "cannot connect to $2" "$TEST_TMP/$1.log" 2>/dev/null) || true
    echo "${n:-0}"
}
attempts_ge() { [ "$(attempts "$1" "$2")" -ge "$3" ]; }

check_refused() {
    local name=$1 url=$2 dir=$3 broker_says=$4
    # At least two attempts: it keeps retrying (back-off 1 s, 2 s, ...).
    wait_for 30 "$name: two failed connection attempts in the agent's log" \
        attempts_ge "$name" "$url" 2
    if ! kill -0 "${REFUSED_PID[$name]}" 2>/dev/null ||
        _is_zombie "${REFUSED_PID[$name]}"; then
        fail "$name: the agent died instead of retrying"
    fi
    local id_re=${REFUSED_ID[$name]}
    assert_eq 0 "$(broker_log_count "$dir" " as $id_re ")" \
        "$name: MQTT sessions the broker opened for the refused agent"
    assert_eq 0 "$(broker_log_count "$dir" "^.*: $id_re [0-2] ")" \
        "$name: subscriptions of the refused agent"
    grep -q "subscribed" "$TEST_TMP/$name.log" &&
        fail "$name: the agent says it subscribed"
    [ "$(broker_log_count "$dir" "$broker_says")" -ge 1 ] ||
        fail "$name: the broker log does not show /$broker_says/"
    local why
    why=$(grep -m1 "cannot connect to $url" "$TEST_TMP/$name.log")
    log "$name refused; agent: ${why#*warn  }"
}

check_refused rogue "mqtts://127.0.0.1:$GOOD_PORT" "$GOOD_DIR" \
    "OpenSSL Error.*certificate verify failed"
check_refused nocert "mqtts://127.0.0.1:$GOOD_PORT" "$GOOD_DIR" \
    "OpenSSL Error.*peer did not return a certificate"
# Host verification: the chain is valid (same CA), only the name is wrong.
# The client closes the connection after the handshake, before any CONNECT;
# the broker only sees it go.
check_refused wrongsan "mqtts://127.0.0.1:$BAD_PORT" "$BAD_DIR" \
    "Client <unknown> closed its connection"
# Control: without host name verification the same certificates connect,
# so the refusal above is the name check and nothing else.
mosquitto_pub -h 127.0.0.1 -p "$BAD_PORT" --cafile "$PKI/ca.pem" --insecure \
    --cert "$PKI/device.pem" --key "$PKI/device.key" -q 1 \
    -i "itest-control-$$" -t "$TOPIC_OWN" -f "$VECTORS/aqo.json" \
    >>"$TEST_TMP/mosquitto_pub.log" 2>&1 ||
    fail "control: mosquitto_pub --insecure to the wrong-SAN broker failed"
[ "$(broker_log_count "$BAD_DIR" "New client connected from .* as itest-control-$$ ")" -ge 1 ] ||
    fail "control: the wrong-SAN broker did not accept a client that skips the name check"

# Refused agents stop cleanly.
for name in rogue nocert wrongsan; do
    kill -TERM "${REFUSED_PID[$name]}" 2>/dev/null || true
done
for name in rogue nocert wrongsan; do
    rc=0
    wait_pid "${REFUSED_PID[$name]}" 20 || rc=$?
    assert_eq 0 "$rc" "$name: exit status after SIGTERM"
done

stop_agent 30 || fail "agent exited with status $?"
log "PASS"
