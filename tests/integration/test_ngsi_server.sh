#!/usr/bin/env bash
#
# test_ngsi_server: the NGSI test server itself (tests/servers/ngsi_server.c)
# answers like Orion / Orion-LD and its test-control API works: version; a
# valid batch update is stored; every Orion rule violated gives 400 (or 411,
# 413, 415) and applies nothing; tenant and service-path isolation; NGSI-LD
# upsert 201/204/207 and the Link header rules; POST /v2/entities (create,
# upsert); faults (fail_next, close_next, refuse_for_ms, delay_ms);
# statistics and recorded requests; clean exit on SIGTERM. Needs no broker or database.
#
# Environment: NGSI_SERVER (default build/servers/ngsi_server; point it at
# a -fsanitize=address,undefined build to check for leaks at exit).

source "$(dirname "$0")/lib.sh"

# shellcheck source=ngsi_lib.sh
source "$(dirname "$0")/ngsi_lib.sh"

MAX_BODY=65536
# --- helpers ------------------------------------------------------------------

# stop_ngsi: SIGTERM; the server must exit 0 (and, under ASan, leak-free).
stop_ngsi() {
    local rc=0
    kill -TERM "$NGSI_PID"
    wait_pid "$NGSI_PID" 10 || rc=$?
    assert_eq 0 "$rc" "exit status of the server after SIGTERM"
    NGSI_PID=
}

# update JSON [CURL ARGS...]: POST /v2/op/update (Content-Type $UPDATE_CT,
# default application/json).
update() {
    local body=$1
    shift
    ngsi POST /v2/op/update -H "Content-Type: ${UPDATE_CT:-application/json}" \
        "$@" --data-binary "$body"
}

# upsert JSON [CURL ARGS...]: POST /ngsi-ld/v1/entityOperations/upsert.
upsert() {
    local body=$1
    shift
    ngsi POST /ngsi-ld/v1/entityOperations/upsert "$@" --data-binary "$body"
}

# jget JSON PERL-PATH: prints the value at the path ('->{a}[0]'); objects
# and arrays as compact JSON, booleans as true/false, missing as null.
jget() {
    printf '%s' "$1" | perl -MJSON::PP -e '
        my $j = JSON::PP->new->allow_nonref->canonical;
        my $d = $j->decode(do { local $/; <STDIN> });
        my $v = eval "\$d$ARGV[0]";
        if (!defined $v) { print "null" }
        elsif (JSON::PP::is_bool($v)) { print $v ? "true" : "false" }
        elsif (ref $v) { print $j->encode($v) }
        else { print $v }' -- "$2"
}

stat_of() {
    ngsi GET /__stats
    jget "$BODY" "$1"
}

entity_count() {
    stat_of '->{entities}'
}

LINK='<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
CASE=0

# reject STATUS ERROR WHAT ENTITY-JSON [CURL ARGS...]: a batch whose first
# entity is valid and new and whose second is ENTITY-JSON must be answered
# STATUS with Orion's error name ERROR, and nothing of it applied.
reject() {
    local status=$1 error=$2 what=$3 ent=$4 before fresh
    shift 4
    CASE=$((CASE + 1))
    fresh="Fresh_$CASE"
    before=$(entity_count)
    update "{\"actionType\":\"append\",\"entities\":[{\"id\":\"$fresh\",\"type\":\"T\",\"n\":{\"value\":1,\"type\":\"Number\"}},$ent]}" "$@"
    assert_eq "$status" "$ST" "status for $what (body $BODY)"
    assert_eq "$error" "$(jget "$BODY" '->{error}')" "error for $what"
    assert_eq "$before" "$(entity_count)" "entities stored after $what"
    ngsi GET "/v2/entities/$fresh"
    assert_eq 404 "$ST" "valid entity of a rejected batch ($what)"
}

version_ok() {
    curl -sf -o /dev/null "$NGSI_URL/version"
}

# --- version and a valid update ---------------------------------------------------

start_ngsi ngsi --multiservice --max-body "$MAX_BODY"

ngsi GET /version
assert_eq 200 "$ST" "GET /version"
assert_eq 3.10.1-spotagent-test "$(jget "$BODY" '->{orion}{version}')" \
    "orion.version"
ngsi GET /version -H 'Content-Type: application/json'
assert_eq 400 "$ST" "GET with a Content-Type header (Orion forbids it)"

update '{"actionType":"append","entities":[
  {"id":"urn:ngsi-ld:AirQualityObserved:SmartSpot_AQ_1","type":"AirQualityObserved",
   "TimeInstant":{"type":"DateTime","value":"2024-05-01T10:00:00+02:00"},
   "no2":{"type":"Number","value":21.5,
          "metadata":{"TimeInstant":{"type":"DateTime","value":"2024-05-01T08:00:00.123Z"},
                      "unitCode":{"type":"Text","value":"GQ"}}},
   "location":{"type":"geo:json","value":{"type":"Point","coordinates":[-1.1,37.9]}},
   "wifiSsid":{"type":"TextUnrestricted","value":"Bob'"'"'s (guest) = 5G"},
   "extra":{"type":"StructuredValue","value":{"a":[1,"two",{"b":true}]}},
   "missing":{"value":null}}]}'
assert_eq 204 "$ST" "valid append (body $BODY)"
ngsi GET /v2/entities/urn:ngsi-ld:AirQualityObserved:SmartSpot_AQ_1
assert_eq 200 "$ST" "GET the appended entity"
assert_eq 21.5 "$(jget "$BODY" '->{no2}{value}')" "no2 value"
assert_eq GQ "$(jget "$BODY" '->{no2}{metadata}{unitCode}{value}')" "unitCode"
assert_eq 2024-05-01T08:00:00.000Z "$(jget "$BODY" '->{TimeInstant}{value}')" \
    "DateTime normalized to UTC"
assert_eq 2024-05-01T08:00:00.123Z \
    "$(jget "$BODY" '->{no2}{metadata}{TimeInstant}{value}')" "DateTime metadata"
assert_eq "Bob's (guest) = 5G" "$(jget "$BODY" '->{wifiSsid}{value}')" \
    "TextUnrestricted value kept"
assert_eq None "$(jget "$BODY" '->{missing}{type}')" "null keeps the attribute"
assert_eq '{}' "$(jget "$BODY" '->{location}{metadata}')" "empty metadata"

# append merges attributes and metadata; update needs existing entities
update '{"actionType":"append","entities":[{"id":"urn:ngsi-ld:AirQualityObserved:SmartSpot_AQ_1","type":"AirQualityObserved","no2":{"type":"Number","value":22,"metadata":{"accuracy":{"type":"Number","value":0.5}}}}]}'
assert_eq 204 "$ST" "append to an existing entity"
ngsi GET /v2/entities/urn:ngsi-ld:AirQualityObserved:SmartSpot_AQ_1
assert_eq 22 "$(jget "$BODY" '->{no2}{value}')" "updated value"
assert_eq GQ "$(jget "$BODY" '->{no2}{metadata}{unitCode}{value}')" \
    "metadata not in the update kept"
update '{"actionType":"update","entities":[{"id":"Nope","type":"T","a":{"value":1}}]}'
assert_eq 404 "$ST" "update of a missing entity"
assert_eq NotFound "$(jget "$BODY" '->{error}')" "update of a missing entity"
ngsi GET '/v2/entities?type=AirQualityObserved&options=count'
assert_eq 200 "$ST" "GET /v2/entities"
assert_eq 1 "$(jget "$BODY" '->[0]{no2}{value} ? 1 : 0')" "listed entity"
grep -qi '^Fiware-Total-Count: 1' < <(curl -sS -D - -o /dev/null \
    "$NGSI_URL/v2/entities?type=AirQualityObserved&options=count") ||
    fail "Fiware-Total-Count header missing"

# --- every rule violated: 4xx and nothing applied ------------------------------------

LONG_ID=$(printf 'x%.0s' $(seq 1 257))
reject 400 BadRequest "forbidden char in id" '{"id":"E<1","type":"T"}'
reject 400 BadRequest "space in id" '{"id":"E 1","type":"T"}'
reject 400 BadRequest "257-char id" "{\"id\":\"$LONG_ID\",\"type\":\"T\"}"
reject 400 BadRequest "missing type" '{"id":"E2"}'
reject 400 BadRequest "forbidden char in type" '{"id":"E2","type":"T/x"}'
reject 400 BadRequest "forbidden char in a string value" \
    '{"id":"E2","type":"T","a":{"type":"Text","value":"a(b"}}'
reject 400 BadRequest "forbidden char in a nested value" \
    '{"id":"E2","type":"T","a":{"type":"StructuredValue","value":{"x":["ok",{"y":"a;b"}]}}}'
reject 400 BadRequest "forbidden char in a metadata value" \
    '{"id":"E2","type":"T","a":{"type":"Number","value":1,"metadata":{"m":{"type":"Text","value":"<x>"}}}}'
reject 400 BadRequest "forbidden char in an attribute name" \
    '{"id":"E2","type":"T","a#b":{"type":"Number","value":1}}'
reject 400 BadRequest "bad DateTime" \
    '{"id":"E2","type":"T","t":{"type":"DateTime","value":"2024-13-01T00:00:00Z"}}'
reject 400 BadRequest "bad DateTime metadata" \
    '{"id":"E2","type":"T","a":{"type":"Number","value":1,"metadata":{"TimeInstant":{"type":"DateTime","value":"yesterday"}}}}'
reject 400 BadRequest "reserved attribute name" \
    '{"id":"E2","type":"T","dateCreated":{"type":"Text","value":"x"}}'
reject 400 BadRequest "reserved metadata name" \
    '{"id":"E2","type":"T","a":{"type":"Number","value":1,"metadata":{"dateModified":{"type":"Text","value":"x"}}}}'
reject 400 BadRequest "invalid GeoJSON" \
    '{"id":"E2","type":"T","location":{"type":"geo:json","value":{"type":"Point","coordinates":[200,1]}}}'
reject 400 BadRequest "unknown attribute field" \
    '{"id":"E2","type":"T","a":{"type":"Number","value":1,"unit":"x"}}'
reject 400 BadRequest "duplicated attribute (3 keys)" \
    '{"id":"E2","type":"T","a":{"value":1},"a":{"value":2}}'
# More than 8 keys are checked by sorting; the answer must name the first
# duplicated key in document order all the same.
MANY='{"id":"E2","type":"T","k9":{"value":1},"b":{"value":1},"c":{"value":1},"d":{"value":1},"e":{"value":1},"f":{"value":1},"a":{"value":1},"g":{"value":1},"h":{"value":1},"a":{"value":2},"k9":{"value":2}}'
reject 400 BadRequest "duplicated attribute (13 keys)" "$MANY"
update "{\"actionType\":\"append\",\"entities\":[$MANY]}"
assert_eq "duplicated key /k9/ in entity" "$(jget "$BODY" '->{description}')" \
    "the duplicated key named (13 keys)"
update '{"actionType":"append","entities":[{"id":"E_many","type":"T","a1":{"value":1},"a2":{"value":1},"a3":{"value":1},"a4":{"value":1},"a5":{"value":1},"a6":{"value":1},"a7":{"value":1},"a8":{"value":1},"a9":{"value":1}}]}'
assert_eq 204 "$ST" "11 distinct keys accepted (body $BODY)"
reject 400 ParseError "number out of range" '{"id":"E2","type":"T","a":{"value":1e400}}'
reject 400 ParseError "invalid JSON" '{"id":"E2",'
reject 400 BadRequest "hyphen in Fiware-ServicePath" '{"id":"E2","type":"T"}' \
    -H 'Fiware-ServicePath: /a-b'
reject 400 BadRequest "two service paths on an update" '{"id":"E2","type":"T"}' \
    -H 'Fiware-ServicePath: /a,/b'
reject 400 BadRequest "hyphen in Fiware-Service" '{"id":"E2","type":"T"}' \
    -H 'Fiware-Service: bad-name'
UPDATE_CT=text/plain reject 415 UnsupportedMediaType "wrong Content-Type" \
    '{"id":"E2","type":"T"}'
reject 413 NoResourcesAvailable "two locations" \
    '{"id":"E2","type":"T","l1":{"type":"geo:json","value":{"type":"Point","coordinates":[1,2]}},"l2":{"type":"geo:json","value":{"type":"Point","coordinates":[1,2]}}}'

# body over the limit: 413; chunked: 411
head -c $((MAX_BODY + 100)) /dev/zero | tr '\0' ' ' >"$TEST_TMP/big.json"
ngsi POST /v2/op/update -H 'Content-Type: application/json' \
    --data-binary @"$TEST_TMP/big.json"
assert_eq 413 "$ST" "body over --max-body"
assert_eq RequestEntityTooLarge "$(jget "$BODY" '->{error}')" "413 error"
ngsi POST /v2/op/update -H 'Content-Type: application/json' \
    -H 'Transfer-Encoding: chunked' \
    --data-binary '{"actionType":"append","entities":[{"id":"C1","type":"T"}]}'
assert_eq 411 "$ST" "chunked body"
assert_eq ContentLengthRequired "$(jget "$BODY" '->{error}')" "411 error"
ngsi GET /v2/entities/C1
assert_eq 404 "$ST" "chunked entity not stored"

# --- tenants and service paths ----------------------------------------------------

update '{"actionType":"append","entities":[{"id":"Iso","type":"T","a":{"value":1}}]}' \
    -H 'Fiware-Service: TenantA' -H 'Fiware-ServicePath: /p1/'
assert_eq 204 "$ST" "append in TenantA /p1"
ngsi GET /v2/entities/Iso -H 'Fiware-Service: tenanta' -H 'Fiware-ServicePath: /p1'
assert_eq 200 "$ST" "same service (lower-cased) and path"
ngsi GET /v2/entities/Iso -H 'Fiware-Service: tenantb' -H 'Fiware-ServicePath: /p1'
assert_eq 404 "$ST" "other service"
ngsi GET /v2/entities/Iso -H 'Fiware-Service: tenanta' -H 'Fiware-ServicePath: /p2'
assert_eq 404 "$ST" "other service path"
ngsi GET /v2/entities/Iso -H 'Fiware-Service: tenanta'
assert_eq 200 "$ST" "no service path header queries /#"
ngsi GET /v2/entities/Iso
assert_eq 404 "$ST" "default service"

# --- NGSI-LD -------------------------------------------------------------------------

LD1='{"id":"urn:ngsi-ld:WeatherObserved:W1","type":"WeatherObserved","temperature":{"type":"Property","value":21.2,"unitCode":"CEL","observedAt":"2024-05-01T08:00:00.000Z"},"refDevice":{"type":"Relationship","object":"urn:ngsi-ld:Device:W1"},"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[-1.1,37.9]}}}'
LD2='{"id":"urn:ngsi-ld:WeatherObserved:W2","type":"WeatherObserved","temperature":{"type":"Property","value":null}}'
LD3='{"id":"urn:ngsi-ld:WeatherObserved:W3","type":"WeatherObserved","temperature":{"type":"Property","value":3}}'
upsert "[$LD1]" -H 'Content-Type: application/json' -H "Link: $LINK"
assert_eq 201 "$ST" "LD upsert creating (body $BODY)"
assert_eq '["urn:ngsi-ld:WeatherObserved:W1"]' "$BODY" "201 body: created ids"
upsert "[$LD1]" -H 'Content-Type: application/json' -H "Link: $LINK"
assert_eq 204 "$ST" "LD upsert of an existing entity"
upsert "[$LD3,$LD2]" -H 'Content-Type: application/json' -H "Link: $LINK"
assert_eq 207 "$ST" "LD upsert with a null value"
assert_eq '["urn:ngsi-ld:WeatherObserved:W3"]' "$(jget "$BODY" '->{success}')" \
    "207 success"
assert_eq urn:ngsi-ld:WeatherObserved:W2 \
    "$(jget "$BODY" '->{errors}[0]{entityId}')" "207 errors"
assert_eq https://uri.etsi.org/ngsi-ld/errors/BadRequestData \
    "$(jget "$BODY" '->{errors}[0]{error}{type}')" "207 error type"
ngsi GET /ngsi-ld/v1/entities/urn:ngsi-ld:WeatherObserved:W3
assert_eq 200 "$ST" "valid entity of a 207 applied"
ngsi GET /ngsi-ld/v1/entities/urn:ngsi-ld:WeatherObserved:W2
assert_eq 404 "$ST" "failed entity of a 207 not applied"

upsert "[$LD3]" -H 'Content-Type: application/json'
assert_eq 400 "$ST" "application/json without Link"
upsert '[{"@context":"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld","id":"urn:x:1","type":"T","p":{"type":"Property","value":1}}]' \
    -H 'Content-Type: application/json' -H "Link: $LINK"
assert_eq 400 "$ST" "inline @context with application/json"
upsert '[{"@context":"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld","id":"urn:x:1","type":"T","p":{"type":"Property","value":1}}]' \
    -H 'Content-Type: application/ld+json' -H "Link: $LINK"
assert_eq 400 "$ST" "Link header with application/ld+json"
upsert '[{"@context":"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld","id":"urn:x:1","type":"T","p":{"type":"Property","value":1}}]' \
    -H 'Content-Type: application/ld+json'
assert_eq 201 "$ST" "application/ld+json with inline @context"
upsert "[$LD3]" -H 'Content-Type: text/plain'
assert_eq 415 "$ST" "LD wrong Content-Type"

# ?options=update merges, the default replaces
upsert '[{"id":"urn:x:2","type":"T","a":{"type":"Property","value":1}}]' \
    -H 'Content-Type: application/json' -H "Link: $LINK" -H 'NGSILD-Tenant: t1'
assert_eq 201 "$ST" "LD create in tenant t1"
ngsi POST '/ngsi-ld/v1/entityOperations/upsert?options=update' \
    -H 'Content-Type: application/json' -H "Link: $LINK" -H 'NGSILD-Tenant: t1' \
    --data-binary '[{"id":"urn:x:2","type":"T","b":{"type":"Property","value":2}}]'
assert_eq 204 "$ST" "LD upsert ?options=update"
ngsi GET /ngsi-ld/v1/entities/urn:x:2 -H 'NGSILD-Tenant: t1'
assert_eq 1 "$(jget "$BODY" '->{a}{value}')" "update keeps attribute a"
assert_eq 2 "$(jget "$BODY" '->{b}{value}')" "update adds attribute b"
upsert '[{"id":"urn:x:2","type":"T","c":{"type":"Property","value":3}}]' \
    -H 'Content-Type: application/json' -H "Link: $LINK" -H 'NGSILD-Tenant: t1'
assert_eq 204 "$ST" "LD upsert (replace)"
ngsi GET /ngsi-ld/v1/entities/urn:x:2 -H 'NGSILD-Tenant: t1'
assert_eq null "$(jget "$BODY" '->{a}')" "replace drops attribute a"
assert_eq 3 "$(jget "$BODY" '->{c}{value}')" "replace sets attribute c"
ngsi GET /ngsi-ld/v1/entities/urn:x:2
assert_eq 404 "$ST" "LD tenant isolation"
ngsi GET '/ngsi-ld/v1/entities?type=WeatherObserved'
assert_eq 2 "$(jget "$BODY" '->@*+0')" "LD list by type"

# --- faults ------------------------------------------------------------------------------

OKBODY='{"actionType":"append","entities":[{"id":"F1","type":"T","a":{"value":1}}]}'
ngsi POST /__faults --data-binary '{"fail_next":1,"status":503}'
assert_eq 200 "$ST" "POST /__faults"
update "$OKBODY"
assert_eq 503 "$ST" "injected failure"
assert_eq ServiceUnavailable "$(jget "$BODY" '->{error}')" "injected failure body"
ngsi GET /v2/entities/F1
assert_eq 404 "$ST" "failed update not applied"
update "$OKBODY"
assert_eq 204 "$ST" "after the injected failure"

ngsi POST /__faults --data-binary '{"close_next":1}'
rc=0
curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data-binary "$OKBODY" "$NGSI_URL/v2/op/update" 2>"$TEST_TMP/curl.err" ||
    rc=$?
assert_eq 52 "$rc" "curl exit status for a closed connection (empty reply)"
update "$OKBODY"
assert_eq 204 "$ST" "after the closed connection"

ngsi POST /__faults --data-binary '{"refuse_for_ms":1500}'
assert_eq 200 "$ST" "refusal requested"
rc=0
curl -sS -o /dev/null --max-time 5 "$NGSI_URL/version" 2>"$TEST_TMP/curl.err" ||
    rc=$?
assert_eq 7 "$rc" "curl exit status while refusing (connection refused)"
wait_for 10 "the server to listen again on $NGSI_PORT" version_ok

ngsi POST /__faults --data-binary '{"delay_ms":300,"match":"all"}'
t0=$(_now_ms)
ngsi GET /version
t1=$(_now_ms)
assert_eq 200 "$ST" "delayed answer"
[ $((t1 - t0)) -ge 280 ] || fail "delay_ms not applied ($((t1 - t0)) ms)"
ngsi POST /__faults --data-binary '{"reset":true}'
assert_eq 0 "$(jget "$BODY" '->{delay_ms}')" "faults reset"
ngsi POST /__faults --data-binary '{"bogus":1}'
assert_eq 400 "$ST" "unknown fault field"

# --- statistics and recorded requests ---------------------------------------------------

ngsi GET /__stats
assert_eq 200 "$ST" "GET /__stats"
assert_match '^[0-9]+$' "$(jget "$BODY" '->{requests}')" "stats.requests"
[ "$(jget "$BODY" '->{by_status}{400}')" -ge "$CASE" ] ||
    fail "by_status.400 below the $CASE rejected batches: $BODY"
assert_eq 1 "$(jget "$BODY" '->{by_status}{503}')" "by_status.503"
assert_eq 1 "$(jget "$BODY" '->{injected_closes}')" "injected closes"
assert_eq 1 "$(jget "$BODY" '->{refusals}')" "refusals"
assert_eq 2 "$(jget "$BODY" '->{max_entities_per_request}')" \
    "max_entities_per_request"
[ "$(jget "$BODY" '->{rejected}')" -ge "$CASE" ] || fail "stats.rejected: $BODY"
ngsi GET '/__requests?last=1&path=/v2/op/update'
assert_eq "$OKBODY" "$(jget "$BODY" '->{requests}[0]{body}')" \
    "last recorded update body"
assert_eq application/json \
    "$(jget "$BODY" '->{requests}[0]{headers}{"content-type"}')" \
    "recorded Content-Type header"
ngsi DELETE /__entities
assert_eq 200 "$ST" "DELETE /__entities"
assert_eq 0 "$(entity_count)" "store cleared"
stop_ngsi

# --- POST /v2/entities (create, ?options=upsert), as the FIWARE IoT Agents send ---------

start_ngsi ngsi-create
create() {
    local body=$1
    shift
    ngsi POST "/v2/entities$1" -H 'Content-Type: application/json' \
        -D "$TEST_TMP/create.headers" --data-binary "$body"
}
CE='{"id":"C1","type":"T","n":{"type":"Number","value":1}}'
create "$CE" ""
assert_eq 201 "$ST" "POST /v2/entities creates"
grep -qi '^Location: /v2/entities/C1?type=T' "$TEST_TMP/create.headers" ||
    fail "Location header of a created entity: $(cat "$TEST_TMP/create.headers")"
create "$CE" ""
assert_eq 422 "$ST" "POST /v2/entities of an existing entity"
assert_eq "Already Exists" "$(jget "$BODY" '->{description}')" "422 description"
create '{"id":"C1","type":"T","m":{"type":"Text","value":"x"}}' "?options=upsert"
assert_eq 204 "$ST" "upsert of an existing entity"
ngsi GET /v2/entities/C1
assert_eq 1 "$(jget "$BODY" '->{n}{value}')" "upsert keeps other attributes"
assert_eq x "$(jget "$BODY" '->{m}{value}')" "upsert adds attributes"
create '{"id":"C2","type":"T","m":"x"}' "?options=upsert,keyValues"
assert_eq 201 "$ST" "upsert of a new entity, keyValues"
create '{"id":"C3","type":"T","bad<":{"value":1}}' "?options=upsert"
assert_eq 400 "$ST" "rules apply to POST /v2/entities"
create '{"id":"C4","type":"T"}' "?options=nonsense"
assert_eq 400 "$ST" "unknown option"
ngsi GET /v2/entities/C3
assert_eq 404 "$ST" "nothing of a refused create is stored"
assert_eq 3 "$(stat_of '->{entities_received}')" "entities received by create"
stop_ngsi

# --- without --multiservice, Fiware-Service is ignored as by Orion ----------------------

start_ngsi ngsi-single
update '{"actionType":"append","entities":[{"id":"S1","type":"T"}]}' \
    -H 'Fiware-Service: not-checked-here'
assert_eq 204 "$ST" "Fiware-Service ignored without --multiservice"
ngsi GET /v2/entities/S1 -H 'Fiware-Service: other'
assert_eq 200 "$ST" "single service"
stop_ngsi

log "all NGSI test server checks passed ($CASE rejection cases)"
