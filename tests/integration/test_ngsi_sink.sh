#!/usr/bin/env bash
#
# test_ngsi_sink: the NGSI sink against the NGSI test server
# (tests/servers/ngsi_server.c, Orion's rules, --multiservice), with
# PostgreSQL as the dead-letter store and service groups from a --config
# file.
#
# 1. An entity the broker refuses (HTTP 400) is isolated by splitting its
#    batch, dead-lettered in rejected_message (reason ngsi_rejected, the
#    broker's error in the detail) and the rest of its batch lands. The
#    batch is made deterministic: the eight messages wait in the journal
#    (first run against a dead port), the second run reads them at once into
#    one request, and the server refuses the next four writes (400): the
#    halves 8, 4, 2, 1 of the first entity. A content-based refusal the
#    encoder cannot foresee needs a server rule (see the report).
# 2. Every vertical (the application note's vectors) lands as its Smart
#    Data Models entity under its group's Fiware-Service/-ServicePath, and
#    nowhere else; a group without a service lands in the default service
#    at "/"; dev and dho update one Device entity.
# 3. A wifiSsid full of characters Orion forbids lands as TextUnrestricted
#    and does not poison the batch around it.
# 4. Both sinks at once (--orion-url and --ngsi-ld-url, cursors "orion" and
#    "ngsi_ld"): the NGSI-LD sink replays the journal on its own into the
#    tenants; X-Auth-Token, Fiware-Service/-ServicePath and the Link header
#    as the server received them; the token never in the agent's output.
# 5. A broker with a smaller body limit (--max-body 16384, as Orion's
#    -inReqPayloadMaxSize): batches answered 413 are split; an entity above
#    the limit on its own is dead-lettered (ngsi_rejected, HTTP 413) and the
#    rest lands.
#
# Environment: NGSI_SERVER (default $TOOLS/../servers/ngsi_server).

source "$(dirname "$0")/lib.sh"

# shellcheck source=ngsi_lib.sh
source "$(dirname "$0")/ngsi_lib.sh"

# --- helpers ------------------------------------------------------------------

# jget PATH: reads JSON on stdin, prints the value at PATH (dot-separated
# keys and array indexes): strings raw, true/false, null, others as JSON.
jget() {
    perl -MJSON::PP -e '
        local $/; my $v = JSON::PP->new->allow_nonref->allow_bignum->decode(<STDIN>);
        for my $k (split /\./, $ARGV[0]) {
            $v = ref $v eq "ARRAY" ? $v->[$k] : ref $v eq "HASH" ? $v->{$k}
               : undef;
        }
        if (!defined $v) { print "null" }
        elsif (JSON::PP::is_bool($v)) { print $v ? "true" : "false" }
        elsif (ref($v) =~ /^Math::Big/) { print "$v" }
        elsif (ref $v) {
            print JSON::PP->new->canonical->allow_bignum->encode($v)
        }
        else { print $v }' "$1"
}

# v2_attr SERVICE PATH ID FIELD: FIELD (e.g. no2.value) of the v2 entity
# ID under SERVICE ("" = none) and PATH; "404" when it is not there.
v2_attr() {
    local svc=$1 sp=$2 id=$3 field=$4
    local h=(-H "Fiware-ServicePath: $sp")
    [ -n "$svc" ] && h+=(-H "Fiware-Service: $svc")
    ngsi GET "/v2/entities/$id" "${h[@]}"
    if [ "$ST" = 404 ]; then
        echo 404
        return 0
    fi
    [ "$ST" = 200 ] || fail "GET /v2/entities/$id: HTTP $ST: $BODY"
    jget "$field" <<<"$BODY"
}

# v2_has SERVICE PATH ID: for wait_until.
v2_has() {
    [ "$(v2_attr "$1" "$2" "$3" id)" = "$3" ]
}

# ld_attr TENANT ID FIELD: FIELD of the NGSI-LD entity (404 when absent).
ld_attr() {
    local tenant=$1 id=$2 field=$3
    local h=(-H "Accept: application/json")
    [ -n "$tenant" ] && h+=(-H "NGSILD-Tenant: $tenant")
    ngsi GET "/ngsi-ld/v1/entities/$id" "${h[@]}"
    if [ "$ST" = 404 ]; then
        echo 404
        return 0
    fi
    [ "$ST" = 200 ] || fail "GET LD entity $id: HTTP $ST: $BODY"
    jget "$field" <<<"$BODY"
}

ld_has() {
    [ "$(ld_attr "$1" "$2" id)" = "$2" ]
}

# v2_requests: the recorded POST /v2/op/update requests, oldest first, one
# line each: STATUS ENTITIES FIWARE-SERVICE FIWARE-SERVICEPATH IDS (comma-
# separated).
v2_requests() {
    ngsi GET "/__requests?path=/v2/op/update&last=256"
    perl -MJSON::PP -e '
        local $/; my $d = JSON::PP->new->decode(<STDIN>);
        for my $r (@{$d->{requests}}) {
            my $b = eval { JSON::PP->new->decode($r->{body}) } || {};
            my @e = @{$b->{entities} || []};
            my $h = $r->{headers} || {};
            printf "%s %d %s %s %s\n", $r->{status}, scalar @e,
                $h->{"fiware-service"} // "-",
                $h->{"fiware-servicepath"} // "-",
                join(",", map { $_->{id} } @e) || "-";
        }' <<<"$BODY"
}

# last_headers PATH_PREFIX: "name: value" lines (lower-case names) of the
# last recorded request under PATH_PREFIX.
last_headers() {
    ngsi GET "/__requests?path=$1&last=1"
    perl -MJSON::PP -e '
        local $/; my $d = JSON::PP->new->decode(<STDIN>);
        my $h = $d->{requests}[-1]{headers} || {};
        print "$_: $h->{$_}\n" for sort keys %$h' <<<"$BODY"
}

stat_of() {
    ngsi GET /__stats
    jget "$1" <<<"$BODY"
}

# The agent refuses --orion-url until main.c wires the sink in.
out=$("$SPOTAGENT" --orion-url http://127.0.0.1:9 --check-config 2>&1 || true)
if [[ $out == *"not part of this build"* ]]; then
    log "SKIP: this agent build has no NGSI sink yet"
    exit 0
fi

# --- setup --------------------------------------------------------------------

start_mosquitto
start_postgres
start_ngsi ngsi --multiservice

CFG=$TEST_TMP/agent.json
cat >"$CFG" <<'EOF'
{
  "service_groups": [
    {"apikey": "air", "service": "city", "service_path": "/env/air"},
    {"apikey": "noise", "service": "city", "service_path": "/env/noise"},
    {"apikey": "wx", "service": "weather"},
    {"apikey": "crowd", "service": "city", "service_path": "/crowd"},
    {"apikey": "ops", "service": "ops", "service_path": "/devices"},
    {"apikey": "bare"}
  ]
}
EOF

# aqo MINUTE NO2: an air quality payload.
aqo() {
    printf '{"TimeInstant":"2024-05-01T10:%02d:00Z","period":5,"status":"connected","no2-a4":%s,"pm10":20.5}' "$1" "$2"
}

# --- 1. a refused entity is isolated and dead-lettered ------------------------

DEAD_PORT=$(free_port)
start_agent --config "$CFG" --orion-url "http://127.0.0.1:$DEAD_PORT"
VICTIM_TOPIC=/airaqo/victim_AQO/attrs
VICTIM_PAYLOAD=$(aqo 1 11.5)
publish_payload "$VICTIM_TOPIC" "$VICTIM_PAYLOAD"
for i in 1 2 3 4 5 6 7; do
    publish_payload "/airaqo/batch${i}_AQO/attrs" "$(aqo 1 "$i.25")"
done
wait_for 30 "8 rows in air_quality" pg_count_is 8 air_quality
stop_agent || fail "agent exited with status $?"

ngsi POST /__faults -H 'Content-Type: application/json' \
    -d '{"fail_next":4,"status":400}'
assert_eq 200 "$ST" "setting the fault"
start_agent --config "$CFG" --orion-url "$NGSI_URL"
for i in 1 2 3 4 5 6 7; do
    wait_for 30 "batch$i landed" v2_has city /env/air \
        "urn:ngsi-ld:AirQualityObserved:batch$i"
    assert_eq "$i.25" "$(v2_attr city /env/air \
        "urn:ngsi-ld:AirQualityObserved:batch$i" no2.value)" "no2 of batch$i"
done
wait_for 30 "the refused entity in rejected_message" pg_count_is 1 \
    rejected_message "reason = 'ngsi_rejected'"
assert_eq 4 "$(stat_of injected_failures)" "refused requests (8, 4, 2, 1)"
assert_eq 404 "$(v2_attr city /env/air urn:ngsi-ld:AirQualityObserved:victim id)" \
    "the refused entity in the broker"
row=$(psql_q "SELECT topic, encode(payload, 'escape'), detail FROM rejected_message
              WHERE reason = 'ngsi_rejected'")
IFS='|' read -r topic payload detail <<<"$row"
assert_eq "$VICTIM_TOPIC" "$topic" "topic of the dead letter"
assert_eq "$VICTIM_PAYLOAD" "$payload" "payload of the dead letter"
assert_match 'urn:ngsi-ld:AirQualityObserved:victim' "$detail" "detail names the entity"
assert_match 'HTTP 400' "$detail" "detail has the status"
assert_match 'injected fault' "$detail" "detail has the broker's description"
log "dead letter: $detail"
assert_eq "400 8,400 4,400 2,400 1" \
    "$(v2_requests | awk '$1 == 400 {printf "%s%s %s", s, $1, $2; s = ","}')" \
    "refused requests: the halves holding the refused entity"

# --- 2 and 3. every vertical, its service and path; wifiSsid -----------------

V=$VECTORS
publish_file /airaqo/SmartSpot_1_AQO/attrs "$V/aqo.json"
publish_file /noisenlo/SmartSpot_1_NLO/attrs "$V/nlo.json"
publish_file /wxwto/SmartSpot_1_WTO/attrs "$V/wto.json"
publish_file /crowdcfo/SmartSpot_1_CFO/attrs "$V/cfo.json"
publish_file /crowdcfe/SmartSpot_1_CFE/attrs "$V/cfe.fixed.json"
publish_file /opsdev/SmartSpot_1_DEV/attrs "$V/dev.fixed.json"
publish_file /opsdho/SmartSpot_1_DHO/attrs "$V/dho.fixed.json"
publish_file /bareaqo/SmartSpot_9_AQO/attrs "$V/aqo.json"
# Forbidden characters in a free-text field, amid ordinary messages of
# the same group. They pile up while the broker refuses connections, and
# go in one batch when it is back.
SSID="Bob's (home)=<net>; \"5G\""
SSID_JSON=${SSID//\"/\\\"}
ngsi POST /__faults -H 'Content-Type: application/json' \
    -d '{"refuse_for_ms":1500}'
assert_eq 200 "$ST" "refusing connections"
spotpub --qos 1 --count 20 --devices 10 --vertical dev --apikey ops \
    --device-prefix flood --start 1714557600 --quiet ||
    fail "publishing the dev stream failed"
publish_payload /opsdev/SmartSpot_2_DEV/attrs \
    "{\"TimeInstant\":\"2024-05-01T10:00:00Z\",\"period\":5,\"status\":\"connected\",\"firmwareVersion\":\"1.0\",\"wifiSsid\":\"$SSID_JSON\"}"
spotpub --qos 1 --count 20 --devices 10 --vertical dev --apikey ops \
    --device-prefix after --start 1714557600 --quiet ||
    fail "publishing the dev stream failed"

# entity SERVICE PATH ID: waits for it.
entity() {
    wait_for 30 "$3 under ${1:-(no service)} $2" v2_has "$1" "$2" "$3"
}
ssid=urn:ngsi-ld:Device:SmartSpot_2
entity ops /devices $ssid
entity ops /devices urn:ngsi-ld:Device:after9
# (the server keeps its last 256 requests: look before many GETs)
batch=$(v2_requests | grep "$ssid" || true)
log "the wifiSsid request: ${batch:0:200}"
read -r st n svc sp _ <<<"$(grep '^2' <<<"$batch" | tail -n 1)"
assert_eq "204 ops /devices" "$st $svc $sp" "status and headers of its request"
[ "$n" -gt 10 ] || fail "the wifiSsid entity went in a request of $n entities"
[ "$(grep -c '^400' <<<"$batch")" = 0 ] || fail "a request with it was refused"
entity city /env/air urn:ngsi-ld:AirQualityObserved:SmartSpot_1
entity city /env/noise urn:ngsi-ld:NoiseLevelObserved:SmartSpot_1
entity weather / urn:ngsi-ld:WeatherObserved:SmartSpot_1
entity city /crowd urn:ngsi-ld:CrowdFlowObserved:SmartSpot_1
entity city /crowd \
    urn:ngsi-ld:AnonymousCommuterId:cdb6be6326af1dc10b55fd91d6c26548db230203
entity ops /devices urn:ngsi-ld:Device:SmartSpot_1
entity "" / urn:ngsi-ld:AirQualityObserved:SmartSpot_9
entity ops /devices urn:ngsi-ld:Device:SmartSpot_2
for i in 0 1 9; do
    entity ops /devices "urn:ngsi-ld:Device:flood$i"
    entity ops /devices "urn:ngsi-ld:Device:after$i"
done

air=urn:ngsi-ld:AirQualityObserved:SmartSpot_1
assert_eq AirQualityObserved "$(v2_attr city /env/air $air type)" "aqo type"
assert_eq 0.640869140625 "$(v2_attr city /env/air $air no2.value)" "aqo no2"
assert_eq GQ "$(v2_attr city /env/air $air no2.metadata.unitCode.value)" \
    "aqo no2 unitCode"
assert_eq 2023-03-20T13:50:00.000Z "$(v2_attr city /env/air $air TimeInstant.value)" \
    "aqo TimeInstant"
assert_eq urn:ngsi-ld:Device:SmartSpot_1 \
    "$(v2_attr city /env/air $air refDevice.value)" "aqo refDevice"
noise=urn:ngsi-ld:NoiseLevelObserved:SmartSpot_1
assert_eq 66.512710571289062 "$(v2_attr city /env/noise $noise LAeq.value)" "nlo LAeq"
assert_eq 2023-03-20T13:48:00.000Z \
    "$(v2_attr city /env/noise $noise dateObservedTo.value)" "nlo dateObservedTo"
assert_eq 980.83404541015625 "$(v2_attr weather / urn:ngsi-ld:WeatherObserved:SmartSpot_1 \
    atmosphericPressure.value)" "wto pressure"
assert_eq 20 "$(v2_attr city /crowd urn:ngsi-ld:CrowdFlowObserved:SmartSpot_1 \
    peopleCount.value)" "cfo peopleCount"
dev=urn:ngsi-ld:Device:SmartSpot_1
assert_eq 0.18.14 "$(v2_attr ops /devices $dev firmwareVersion.value)" "dev firmware"
assert_eq 0.87 "$(v2_attr ops /devices $dev batteryLevel.value)" "dho battery (same entity)"
assert_eq 49.334125518798828 \
    "$(v2_attr "" / urn:ngsi-ld:AirQualityObserved:SmartSpot_9 pm10.value)" \
    "entity of the group without a service"

# Nowhere else: other paths, other services, no service.
assert_eq 404 "$(v2_attr city /env/noise $air id)" "aqo under /env/noise"
assert_eq 404 "$(v2_attr weather /env/air $air id)" "aqo under service weather"
assert_eq 404 "$(v2_attr "" / $air id)" "aqo without a service"
assert_eq 404 "$(v2_attr city /env/air $dev id)" "Device under city"

assert_eq TextUnrestricted "$(v2_attr ops /devices $ssid wifiSsid.type)" "wifiSsid type"
assert_eq "$SSID" "$(v2_attr ops /devices $ssid wifiSsid.value)" "wifiSsid value"


# Nothing refused after phase 1: no other dead letter, no 400 answered.
assert_eq 1 "$(pg_count rejected_message)" "rejected_message rows"
assert_eq 4 "$(stat_of by_status.400)" "400 answers (the injected ones only)"
ngsi GET /__stats
log "server: $BODY"
agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"

# --- 4. both sinks at once; NGSI-LD replays the journal on its own cursor ------

TOKEN=tok-$RANDOM$RANDOM-secret
start_agent --config "$CFG" --orion-url "$NGSI_URL" --ngsi-ld-url "$NGSI_URL" \
    --orion-token "$TOKEN"
wait_for 30 "LD Device in tenant ops" ld_has ops urn:ngsi-ld:Device:SmartSpot_1
wait_for 30 "LD air quality in tenant city" ld_has city \
    urn:ngsi-ld:AirQualityObserved:SmartSpot_1
wait_for 30 "LD entity without a tenant" ld_has "" \
    urn:ngsi-ld:AirQualityObserved:SmartSpot_9
wait_for 30 "LD victim (no fault now)" ld_has city \
    urn:ngsi-ld:AirQualityObserved:victim
assert_eq 0.640869140625 "$(ld_attr city urn:ngsi-ld:AirQualityObserved:SmartSpot_1 \
    no2.value)" "LD no2"
assert_eq "$SSID" "$(ld_attr ops urn:ngsi-ld:Device:SmartSpot_2 wifiSsid.value)" \
    "LD wifiSsid"
hdrs=$(last_headers /ngsi-ld/v1/entityOperations/upsert)
assert_match 'content-type: application/json' "$hdrs" "LD Content-Type"
assert_match 'link: <https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld\+json"' \
    "$hdrs" "LD Link header"
# The v2 sink goes on from its own checkpoint.
publish_payload /airaqo/SmartSpot_1_AQO/attrs "$(aqo 59 99.5)"
wait_until 30 bash -c "[ \"\$(curl -s -H 'Fiware-Service: city' \
    -H 'Fiware-ServicePath: /env/air' \
    '$NGSI_URL/v2/entities/$air?attrs=no2&options=keyValues')\" = \
    '{\"id\":\"$air\",\"type\":\"AirQualityObserved\",\"no2\":99.5}' ]" ||
    fail "last aqo message not in the broker"
hdrs=$(last_headers /v2/op/update)
assert_match "x-auth-token: $TOKEN" "$hdrs" "X-Auth-Token"
assert_match 'fiware-service: city' "$hdrs" "Fiware-Service"
assert_match 'fiware-servicepath: /env/air' "$hdrs" "Fiware-ServicePath"
if grep -q "$TOKEN" "$AGENT_STDERR" "$AGENT_STDOUT"; then
    fail "the token appears in the agent's output"
fi
assert_eq 1 "$(pg_count rejected_message)" "rejected_message rows"
agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"

# The same token as "Authorization: Bearer", read from a _FILE secret.
printf '%s\n' "$TOKEN" >"$TEST_TMP/orion-token"
SPOTAGENT_ORION_TOKEN_FILE=$TEST_TMP/orion-token start_agent --config "$CFG" \
    --orion-url "$NGSI_URL" --orion-auth bearer
publish_payload /airaqo/SmartSpot_1_AQO/attrs "$(aqo 58 77.25)"
wait_until 30 bash -c "[ \"\$(curl -s -H 'Fiware-Service: city' \
    -H 'Fiware-ServicePath: /env/air' \
    '$NGSI_URL/v2/entities/$air?attrs=no2&options=keyValues')\" = \
    '{\"id\":\"$air\",\"type\":\"AirQualityObserved\",\"no2\":77.25}' ]" ||
    fail "aqo message sent with a bearer token not in the broker"
hdrs=$(last_headers /v2/op/update)
assert_match "authorization: Bearer $TOKEN" "$hdrs" "Authorization: Bearer"
if grep -qi '^x-auth-token:' <<<"$hdrs"; then
    fail "X-Auth-Token sent although --orion-auth is bearer"
fi
if grep -q "$TOKEN" "$AGENT_STDERR" "$AGENT_STDOUT"; then
    fail "the bearer token appears in the agent's output"
fi
stop_agent || fail "agent exited with status $?"

# --- 5. 413: a smaller body limit splits batches; an entity above it alone
# is dead-lettered ------------------------------------------------------------

URL1=$NGSI_URL
start_ngsi ngsi --multiservice --max-body 16384
log "second server with a 16 KiB body limit: $NGSI_URL"
start_agent --config "$CFG" --orion-url "$NGSI_URL"
ngsi POST /__faults -H 'Content-Type: application/json' \
    -d '{"refuse_for_ms":1000}'
assert_eq 200 "$ST" "refusing connections"
# The first message fails alone (connection refused); the rest pile up
# and go as one batch with the oversized entity in it, once the server is
# back: 413, split, ... , the oversized one alone: 413, dead-lettered.
BIG=$(head -c 20000 /dev/zero | tr '\0' 'x')
publish_payload /airaqo/small0_AQO/attrs "$(aqo 2 0.5)"
publish_payload /airaqo/big_AQO/attrs \
    "{\"TimeInstant\":\"2024-05-01T11:00:00Z\",\"period\":5,\"status\":\"connected\",\"no2-a4\":1,\"note\":\"$BIG\"}"
for i in $(seq 1 20); do
    publish_payload "/airaqo/small${i}_AQO/attrs" "$(aqo 2 "$i.5")"
done
for i in $(seq 0 20); do
    wait_for 30 "small$i landed" v2_has city /env/air \
        "urn:ngsi-ld:AirQualityObserved:small$i"
done
wait_for 30 "the oversized entity in rejected_message" pg_count_is 2 \
    rejected_message "reason = 'ngsi_rejected'"
detail=$(psql_q "SELECT detail FROM rejected_message
                 WHERE reason = 'ngsi_rejected' AND topic = '/airaqo/big_AQO/attrs'")
assert_match 'urn:ngsi-ld:AirQualityObserved:big: HTTP 413' "$detail" \
    "detail of the oversized entity"
assert_eq 404 "$(v2_attr city /env/air urn:ngsi-ld:AirQualityObserved:big id)" \
    "the oversized entity in the broker"
n413=$(stat_of by_status.413)
[ "$n413" -ge 2 ] ||
    fail "expected split batches and the oversized entity refused (413), got $n413 413s"
ngsi GET /__stats
log "second server: $BODY"
agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
NGSI_URL=$URL1
