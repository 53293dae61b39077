#!/usr/bin/env bash
#
# test_ngsi_tls: the NGSI sinks over HTTPS (--orion-url https://...,
# --ngsi-ld-url https://..., --orion-ca), against the NGSI test server
# serving TLS (--tls-cert/--tls-key) with a certificate of a throwaway CA.
#
# 1. A broker the agent cannot verify is never sent a measure: with the
#    system CAs (no --orion-ca), another CA's bundle, or the right CA but a
#    certificate for another host name, /ready names the sink as down, the
#    log says why (the certificate), nothing lands and the messages wait in
#    the journal.
# 2. Restarted with --orion-ca naming the test CA, the agent delivers what
#    waited and what follows: every device's entity shows its last message,
#    exactly one entity per device, through NGSI-v2 and NGSI-LD.
# 3. --orion-ca naming a missing file is a configuration error.

source "$(dirname "$0")/lib.sh"
# shellcheck source=deploy_lib.sh
source "$(dirname "$0")/deploy_lib.sh" # make_pki
# shellcheck source=ngsi_lib.sh
source "$(dirname "$0")/ngsi_lib.sh"

D=5
PERIOD=5 # minutes between a device's measures (spotpub's default)
PKI=$TEST_TMP/pki
make_pki "$PKI"

# stored_ld: the same as stored_v2 (ngsi_lib.sh) through NGSI-LD.
stored_ld() {
    ngsi GET '/ngsi-ld/v1/entities?type=AirQualityObserved&limit=1000' \
        -H 'Accept: application/json'
    [ "$ST" = 200 ] || return 1
    perl -MJSON::PP -e 'local $/;
        for my $e (@{decode_json(<STDIN>)}) {
            my $t = $e->{TimeInstant}{value};
            $t = $t->{"\@value"} if ref $t;
            print "$e->{id} $t\n" }' <<<"$BODY" | sort
}

all_last() {
    [ "$("stored_$1")" = "$(expected_last "$2" "$3")" ]
}

# check_last v2|ld N START WHAT
check_last() {
    if ! wait_until 60 all_last "$1" "$2" "$3"; then
        diff <(expected_last "$2" "$3") <("stored_$1") >&2 || true
        fail "$4: the broker does not show every device's last message"
    fi
    log "$4: all $D devices show their last message ($1)"
}

landed() {
    # -k: the test's own look, whichever certificate the server has
    ngsi GET /__stats -k
    [ "$ST" = 200 ] || fail "GET /__stats: $ST"
    perl -MJSON::PP -e 'local $/; print decode_json(<STDIN>)->{entities_received}' \
        <<<"$BODY"
}

# untrusted WHAT CERT [AGENT ARGS...]: the server with CERT; an agent with
# ARGS must refuse it: /ready names the sink as down, its log names the
# certificate, nothing lands while a stream waits in the journal.
untrusted() {
    local what=$1 cert=$2
    shift 2
    RUN=$((RUN + 1))
    start_ngsi "ngsi-$RUN-$cert" --tls-cert "$PKI/$cert.pem" --tls-key "$PKI/$cert.key"
    NGSI_CA=$PKI/ca.pem
    agent_http_port
    start_agent --http-listen "127.0.0.1:$AGENT_HTTP_PORT" \
        --orion-url "$NGSI_URL" "$@"
    wait_for 20 "/ready to name orion as down ($what)" ep_ready_down orion
    spotpub --qos 1 --count 20 --devices "$D" --vertical aqo --apikey tls \
        --start "$START" --quiet || fail "spotpub failed"
    WAITING=$((WAITING + 20))
    wait_for 20 "the orion backlog to reach $WAITING ($what)" \
        ep_metric_ge "$WAITING" 'spotagent_sink_backlog_messages{sink="orion"}'
    wait_for 20 "a log line about the certificate ($what)" \
        grep -qE 'orion: .*unreachable: .*(certificate|SSL)' "$AGENT_STDERR"
    ep_ready_down orion || fail "$what: /ready does not name orion: $EP_BODY"
    assert_eq 0 "$(landed)" "entities landed on an untrusted broker ($what)"
    log "$what: refused ($(grep -oE -m1 'unreachable: .*' "$AGENT_STDERR"))"
    stop_agent || fail "agent exited with status $? ($what)"
    kill -TERM "$NGSI_PID"
    wait_pid "$NGSI_PID" 10 || fail "ngsi_server exit status $?"
    START=$((START + 20 / D * PERIOD * 60))
}

start_mosquitto
START=1700000000
FIRST=$START
WAITING=0
RUN=0

# --- 1. brokers the agent must not trust ------------------------------------------

untrusted "system CAs" server
untrusted "another CA" server --orion-ca "$PKI/rogue-ca.pem"
untrusted "wrong host name" server-wrongsan --orion-ca "$PKI/ca.pem"

# --- 2. the right CA: what waited lands, then a live stream -------------------------

start_ngsi ngsi --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key"
NGSI_CA=$PKI/ca.pem
LD_URL=$NGSI_URL
agent_http_port
start_agent --http-listen "127.0.0.1:$AGENT_HTTP_PORT" \
    --orion-url "$NGSI_URL" --ngsi-ld-url "$LD_URL" --orion-ca "$PKI/ca.pem"
wait_for 20 "/ready" ep_status_is 200 /ready
# 60 messages waited in the journal (three refused runs of 20).
check_last v2 60 "$FIRST" "the journal's backlog over HTTPS"
check_last ld 60 "$FIRST" "the journal's backlog over HTTPS"

spotpub --qos 1 --count 200 --devices "$D" --vertical aqo --apikey tls \
    --start "$START" --quiet || fail "spotpub failed"
# The stream continues the backlog's timeline: 260 messages from FIRST.
check_last v2 260 "$FIRST" "a live stream over HTTPS"
check_last ld 260 "$FIRST" "a live stream over HTTPS"
ngsi GET /__stats
assert_match '"entities":'$((2 * D))',' "$BODY" "one entity per device and API"
grep -q 'reachable (HTTP 200' "$AGENT_STDERR" ||
    fail "no 'reachable' line for the probe of GET /version: $(tail -5 "$AGENT_STDERR")"
[ ! -s "$AGENT_DATA/dead-letters.jsonl" ] ||
    fail "dead letters: $(head -3 "$AGENT_DATA/dead-letters.jsonl")"
stop_agent || fail "agent exited with status $?"

# --- 3. a CA bundle that is not there ----------------------------------------------

rc=0
out=$("$SPOTAGENT" --orion-url "$NGSI_URL" --orion-ca "$PKI/missing.pem" \
    --check-config 2>&1) || rc=$?
assert_ne 0 "$rc" "exit status of --check-config with a missing --orion-ca"
assert_match "orion-ca: cannot read .*missing.pem" "$out" "error message"
log "missing CA bundle: $out"
