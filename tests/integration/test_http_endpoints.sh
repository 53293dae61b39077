#!/usr/bin/env bash
# The operations endpoint of the contract §5 (--http-listen), driven with
# curl against the real agent, Mosquitto and PostgreSQL: /health, /ready
# (naming "pg" while PostgreSQL is down and "mqtt" while the broker is),
# /metrics (every contract metric with HELP and TYPE, counts that match
# what was published), /version, /status.json, 404 and 405 with JSON
# bodies, HEAD, IPv6, a port already taken, --http-listen off opening no
# port, and bad --http-listen values refused as configuration errors.
source "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || fail "curl is not installed"

K=httpkey

# --- helpers ------------------------------------------------------------------

# http METHOD URL: sets HTTP_CODE, HTTP_BODY, HTTP_HEADERS (lower-cased
# header lines). A HEAD request's HTTP_BODY is what came after the headers.
http() {
    local out=$TEST_TMP/http.body hdr=$TEST_TMP/http.headers
    local m=(-X "$1")
    [ "$1" = HEAD ] && m=(-I)
    HTTP_CODE=$(curl -sg -o "$out" -D "$hdr" -w '%{http_code}' \
        --max-time 10 "${m[@]}" "$2") || HTTP_CODE=000
    HTTP_BODY=$(cat "$out" 2>/dev/null || true)
    # curl -I writes the headers as the output: the body is what follows.
    if [ "$1" = HEAD ]; then
        HTTP_BODY=$(tail -c +"$(($(wc -c <"$hdr") + 1))" "$out")
    fi
    HTTP_HEADERS=$(tr -d '\r' <"$hdr" 2>/dev/null | tr '[:upper:]' '[:lower:]' || true)
}

get() {
    http GET "$BASE$1"
}

# status_is CODE PATH: for wait_until.
status_is() {
    get "$2"
    [ "$HTTP_CODE" = "$1" ]
}

assert_header() {
    [[ $HTTP_HEADERS == *"$1"* ]] || fail "$2: no header '$1' in: $HTTP_HEADERS"
}

# listening_ports PID: the TCP ports PID listens on (from /proc: its socket
# inodes matched against the LISTEN entries of /proc/net/tcp and tcp6).
listening_ports() {
    local inodes
    inodes=$(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null |
        sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | sort -u | tr '\n' ' ')
    local hex
    awk -v inodes=" $inodes" '
        FNR > 1 && $4 == "0A" && index(inodes, " " $10 " ") {
            n = split($2, a, ":"); print a[n]
        }' /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        while read -r hex; do echo $((16#$hex)); done | sort -un
}

# --- agent with the endpoint on 127.0.0.1 ---------------------------------------

start_mosquitto
start_postgres
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT
AGENT_HTTP=$BASE # lib.sh ep_* helpers
start_agent --http-listen "127.0.0.1:$HTTP_PORT"
wait_for 20 "the endpoint answers" status_is 200 /health

get /health
assert_eq 200 "$HTTP_CODE" "GET /health"
assert_eq '{"status":"ok"}' "$HTTP_BODY" "/health body"
assert_header "content-type: application/json" "/health"
get '/health?probe=1'
assert_eq 200 "$HTTP_CODE" "GET /health with a query string"
http HEAD "$BASE/health"
assert_eq 200 "$HTTP_CODE" "HEAD /health"
assert_eq "" "$HTTP_BODY" "HEAD /health body"

listening_ports "$AGENT_PID" | grep -qx "$HTTP_PORT" ||
    fail "listening_ports does not see the agent's port $HTTP_PORT"

wait_for 60 "/ready says ready" status_is 200 /ready
assert_eq '{"status":"ready"}' "$HTTP_BODY" "/ready body"

# --- /metrics ---------------------------------------------------------------------

get /metrics
assert_eq 200 "$HTTP_CODE" "GET /metrics"
assert_header "content-type: text/plain; version=0.0.4" "/metrics"
M=$HTTP_BODY
for nt in spotagent_messages_received_total:counter \
    spotagent_messages_rejected_total:counter \
    spotagent_sink_writes_total:counter spotagent_sink_errors_total:counter \
    spotagent_sink_backlog_messages:gauge spotagent_mqtt_connected:gauge \
    spotagent_end_to_end_latency_seconds:histogram; do
    name=${nt%%:*}
    type=${nt#*:}
    grep -qE "^# HELP $name .+" <<<"$M" || fail "/metrics: no HELP for $name"
    grep -qx "# TYPE $name $type" <<<"$M" || fail "/metrics: no TYPE $type for $name"
done
for v in aqo nlo wto cfo cfe dev dho generic unknown; do
    grep -qE "^spotagent_messages_received_total\{vertical=\"$v\"\} [0-9]+$" <<<"$M" ||
        fail "/metrics: no received series for vertical $v"
done
for r in topic unknown_apikey too_large json schema range ngsi_rejected; do
    grep -qE "^spotagent_messages_rejected_total\{reason=\"$r\"\} [0-9]+$" <<<"$M" ||
        fail "/metrics: no rejected series for reason $r"
done
for s in pg orion ngsi_ld stdout; do
    for n in spotagent_sink_writes_total spotagent_sink_errors_total \
        spotagent_sink_backlog_messages; do
        grep -qE "^$n\{sink=\"$s\"\} [0-9]+$" <<<"$M" ||
            fail "/metrics: no $n series for sink $s"
    done
    grep -qE "^spotagent_end_to_end_latency_seconds_bucket\{sink=\"$s\",le=\"\+Inf\"\} [0-9]+$" <<<"$M" ||
        fail "/metrics: no latency +Inf bucket for sink $s"
    grep -qE "^spotagent_end_to_end_latency_seconds_count\{sink=\"$s\"\} [0-9]+$" <<<"$M" ||
        fail "/metrics: no latency count for sink $s"
done
assert_eq 1 "$(ep_metric spotagent_mqtt_connected)" "spotagent_mqtt_connected"

# 5 aqo and 2 nlo messages (distinct natural keys), one broken JSON on a
# cfo topic (received as cfo, then rejected).
spotpub --count 5 --vertical aqo --apikey "$K" --devices 1 --quiet ||
    fail "publishing aqo failed"
spotpub --count 2 --vertical nlo --apikey "$K" --devices 2 --quiet ||
    fail "publishing nlo failed"
publish_payload "/${K}cfo/dev0_CFO/attrs" '{"TimeInstant":'
wait_for 30 "received aqo = 5" ep_metric_is 5 'spotagent_messages_received_total{vertical="aqo"}'
wait_for 30 "received nlo = 2" ep_metric_is 2 'spotagent_messages_received_total{vertical="nlo"}'
wait_for 30 "received cfo = 1" ep_metric_is 1 'spotagent_messages_received_total{vertical="cfo"}'
wait_for 30 "7 rows written by pg" ep_metric_is 7 'spotagent_sink_writes_total{sink="pg"}'
wait_for 30 "rejected json = 1" ep_metric_is 1 'spotagent_messages_rejected_total{reason="json"}'
wait_for 30 "pg backlog back to 0" ep_metric_is 0 'spotagent_sink_backlog_messages{sink="pg"}'
assert_eq 0 "$(ep_metric 'spotagent_messages_received_total{vertical="wto"}')" "received wto"
assert_eq 0 "$(ep_metric 'spotagent_messages_rejected_total{reason="schema"}')" "rejected schema"
assert_eq 0 "$(ep_metric 'spotagent_sink_writes_total{sink="stdout"}')" "stdout writes"
assert_eq 0 "$(ep_metric 'spotagent_sink_errors_total{sink="pg"}')" "pg errors"
ep_metric_ge 7 'spotagent_end_to_end_latency_seconds_count{sink="pg"}' ||
    fail "latency histogram of pg has fewer than 7 observations"
assert_eq 5 "$(pg_count air_quality)" "air_quality rows"
assert_eq 2 "$(pg_count noise_level)" "noise_level rows"

# --- /version, /status.json, the page ------------------------------------------

get /version
assert_eq 200 "$HTTP_CODE" "GET /version"
json_valid "$HTTP_BODY" || fail "/version is not JSON: $HTTP_BODY"
want=$("$SPOTAGENT" --version) # "spotagent VERSION (git REV)"
ver=$(sed -n 's/^spotagent \([^ ]*\) (git \(.*\))$/\1/p' <<<"$want")
rev=$(sed -n 's/^spotagent \([^ ]*\) (git \(.*\))$/\2/p' <<<"$want")
assert_match "\"version\":\"$ver\"" "$HTTP_BODY" "/version version"
assert_match "\"git_revision\":\"$rev\"" "$HTTP_BODY" "/version git_revision"
for k in compiler sanitizers paho libpq yajl; do
    assert_match "\"build\":\{.*\"$k\":" "$HTTP_BODY" "/version build.$k"
done
assert_match '"sanitizers":\[[^]]*"address"' "$HTTP_BODY" "ASan build reports it"

get /status.json
assert_eq 200 "$HTTP_CODE" "GET /status.json"
json_valid "$HTTP_BODY" || fail "/status.json is not JSON"
assert_match '"mqtt_connected":true' "$HTTP_BODY" "status mqtt_connected"
assert_match '"ready":true' "$HTTP_BODY" "status ready"
assert_match '"sinks":\[\{"name":"pg","ready":true,"backlog":0,"writes":7,"errors":0\}\]' \
    "$HTTP_BODY" "status sinks"
assert_match '"received":\{"aqo":5,"nlo":2,"wto":0,"cfo":1,' "$HTTP_BODY" \
    "status received"
assert_match '"rejected":\{[^}]*"json":1' "$HTTP_BODY" "status rejected"
assert_match '"activity":\{"devices":\[' "$HTTP_BODY" "status activity"

get /
assert_eq 200 "$HTTP_CODE" "GET /"
assert_header "content-type: text/html; charset=utf-8" "/"
assert_header "content-security-policy: default-src 'none'" "/"
assert_match "<noscript>" "$HTTP_BODY" "the page's JavaScript-disabled note"
if grep -qiE '(src|href)="(https?:)?//' <<<"$HTTP_BODY"; then
    fail "the status page refers to external assets"
fi

# --- errors -------------------------------------------------------------------------

for p in /nope /health/ /metrics/x /index.html; do
    get "$p"
    assert_eq 404 "$HTTP_CODE" "GET $p"
    json_valid "$HTTP_BODY" || fail "404 body of $p is not JSON: $HTTP_BODY"
    assert_match '"error":"not found"' "$HTTP_BODY" "404 body"
    assert_header "content-type: application/json" "404"
done
for m in POST PUT DELETE PATCH OPTIONS; do
    http "$m" "$BASE/health"
    assert_eq 405 "$HTTP_CODE" "$m /health"
    json_valid "$HTTP_BODY" || fail "405 body is not JSON: $HTTP_BODY"
    assert_header "allow: get, head" "405"
done
HTTP_CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    -X POST --data-binary 'x=1' "$BASE/ready")
assert_eq 405 "$HTTP_CODE" "POST with a body"
wait_for 10 "the endpoint still answers" status_is 200 /health

# --- readiness follows PostgreSQL ---------------------------------------------------

stop_postgres
# The sink notices when it next writes: devices keep publishing.
spotpub --count 3 --vertical wto --apikey "$K" --devices 1 --quiet ||
    fail "publishing wto failed"
wait_for 60 "/ready 503 naming pg" ep_ready_down pg
[[ $EP_BODY == *'"status":"not ready"'* ]] || fail "/ready body: $EP_BODY"
[[ $EP_BODY != *'"mqtt"'* ]] || fail "/ready names mqtt while it is up: $EP_BODY"
get /health
assert_eq 200 "$HTTP_CODE" "/health while PostgreSQL is down"
ep_metric_ge 1 'spotagent_sink_errors_total{sink="pg"}' ||
    wait_for 60 "pg errors counted" ep_metric_ge 1 'spotagent_sink_errors_total{sink="pg"}'
restart_postgres
wait_for 90 "/ready 200 after PostgreSQL is back" status_is 200 /ready
wait_for 30 "3 wto rows" pg_count_is 3 weather
wait_for 30 "pg backlog drained" ep_metric_is 0 'spotagent_sink_backlog_messages{sink="pg"}'

# --- readiness follows the broker ---------------------------------------------------

stop_mosquitto
wait_for 30 "/ready 503 naming mqtt" ep_ready_down mqtt
[[ $EP_BODY != *'"pg"'* ]] || fail "/ready names pg while it is up: $EP_BODY"
assert_eq 0 "$(ep_metric spotagent_mqtt_connected)" "spotagent_mqtt_connected while down"
get /health
assert_eq 200 "$HTTP_CODE" "/health while the broker is down"
restart_mosquitto
wait_for 60 "/ready 200 after the broker is back" status_is 200 /ready
assert_eq 1 "$(ep_metric spotagent_mqtt_connected)" "spotagent_mqtt_connected"

# --- a port already taken -------------------------------------------------------------

rc=0
timeout 60 "$SPOTAGENT" --mqtt-url "$MQTT_URL" --mqtt-client-id "$AGENT_ID-2" \
    --data-dir "$TEST_TMP/agent2" --http-listen "127.0.0.1:$HTTP_PORT" \
    >"$TEST_TMP/agent2.log" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
    fail "a second agent on port $HTTP_PORT: exit $rc, expected a start-up failure"
fi
grep -q "cannot listen on 127.0.0.1:$HTTP_PORT: Address already in use" \
    "$TEST_TMP/agent2.log" ||
    fail "no clear bind error: $(tail -n 5 "$TEST_TMP/agent2.log")"
agent_alive || fail "the agent died"
stop_agent || fail "agent exited with status $?"

# --- IPv6 ------------------------------------------------------------------------------

if grep -qE "^0{31}1 " /proc/net/if_inet6 2>/dev/null; then
    P6=$(free_port)
    BASE="http://[::1]:$P6"
    AGENT_HTTP=$BASE # lib.sh ep_* helpers
    start_agent --http-listen "[::1]:$P6"
    wait_for 20 "the endpoint answers on [::1]" status_is 200 /health
    wait_for 60 "/ready on [::1]" status_is 200 /ready
    stop_agent || fail "agent exited with status $?"
else
    log "no IPv6 loopback: [::1] not tested"
fi

# --- --http-listen off: no port at all --------------------------------------------------

start_agent # lib.sh passes --http-listen off
ports=$(listening_ports "$AGENT_PID" | tr '\n' ' ')
assert_eq "" "$ports" "ports the agent listens on with --http-listen off"
stop_agent || fail "agent exited with status $?"

# --- bad values are configuration errors (exit 2) ---------------------------------------

for bad in nonsense 127.0.0.1 127.0.0.1: :8080 127.0.0.1:0 127.0.0.1:65536 \
    127.0.0.1:http '[::1]' '[::1]8080' '[::1:8080' ::1:8080 ''; do
    rc=0
    timeout 20 "$SPOTAGENT" --mqtt-url "$MQTT_URL" --data-dir "$TEST_TMP/bad" \
        --http-listen "$bad" >"$TEST_TMP/bad.log" 2>&1 || rc=$?
    assert_eq 2 "$rc" "exit status with --http-listen '$bad'"
    grep -q "http-listen" "$TEST_TMP/bad.log" ||
        fail "--http-listen '$bad': the error does not name the option: $(cat "$TEST_TMP/bad.log")"
done
rc=0
SPOTAGENT_HTTP_LISTEN=localhost timeout 20 "$SPOTAGENT" --mqtt-url "$MQTT_URL" \
    --data-dir "$TEST_TMP/bad" >"$TEST_TMP/bad.log" 2>&1 || rc=$?
assert_eq 2 "$rc" "exit status with SPOTAGENT_HTTP_LISTEN=localhost"

log "ok"
