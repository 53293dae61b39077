#!/usr/bin/env bash
# No sink configured: every accepted message is one JSON object on one line
# of standard output, the NGSI-v2 entity the Orion sink would send (byte
# for byte the golden entities of tests/fixtures/ngsi, in the mapping of
# --ngsi-mapping); a rejected message prints nothing there.
source "$(dirname "$0")/lib.sh"

APIKEY=JRI9jTbEKJQS29y3bc8BC6
topic() { echo "/$APIKEY$1/SmartSpot_AQ_1_${1^^}/attrs"; }

# The static attributes the golden entities were made with
# (tests/unit/test_ngsi_encode.c).
CFG=$TEST_TMP/agent.json
cat >"$CFG" <<'EOF'
{"devices": {"SmartSpot_AQ_1": {"location": [-1.1307, 37.9922],
  "address": {"streetAddress": "Calle Mayor 1", "addressLocality": "Murcia",
              "addressCountry": "ES"}}}}
EOF

start_mosquitto
start_agent --config "$CFG"

lines() { local n; n=$(wc -l <"$AGENT_STDOUT") && echo "$n"; }
lines_ge() { [ "$(lines)" -ge "$1" ]; }

publish_file "$(topic aqo)" "$VECTORS/aqo.json"
wait_for 30 "one line on stdout" lines_ge 1

# A malformed message, then a valid one: only the valid one is printed.
publish_file "$(topic dho)" "$VECTORS/dho.json"
publish_file "$(topic nlo)" "$VECTORS/nlo.json"
wait_for 30 "two lines on stdout" lines_ge 2

stop_agent || fail "agent exited with status $?"
assert_eq 2 "$(lines)" "lines on stdout"

n=0
while IFS= read -r line; do
    n=$((n + 1))
    json_valid "$line" || fail "stdout line $n is not one JSON value: $line"
    [[ $line == "{"* ]] || fail "stdout line $n is not a JSON object: $line"
    grep -q 'SmartSpot_AQ_1' <<<"$line" ||
        fail "stdout line $n does not name the device: $line"
done <"$AGENT_STDOUT"
grep -q '0.640869140625' <(sed -n 1p "$AGENT_STDOUT") ||
    fail "the air-quality line does not carry no2-a4 = 0.640869140625"
grep -q '66.512710571289062' <(sed -n 2p "$AGENT_STDOUT") ||
    fail "the second line is not the noise-level message"

GOLDEN=$(dirname "$VECTORS")/ngsi
assert_eq "$(cat "$GOLDEN/v2-sdm/aqo.json")" "$(sed -n 1p "$AGENT_STDOUT")" \
    "air quality line = the golden sdm entity"
assert_eq "$(cat "$GOLDEN/v2-sdm/nlo.json")" "$(sed -n 2p "$AGENT_STDOUT")" \
    "noise line = the golden sdm entity"

# --ngsi-mapping compat: the entity iotagent-json would make. A fresh data
# directory, so the journal starts empty.
AGENT_DATA=$TEST_TMP/agent-compat
AGENT_ID=$AGENT_ID-compat
start_agent --config "$CFG" --ngsi-mapping compat
publish_file "$(topic wto)" "$VECTORS/wto.json"
wait_for 30 "the compat line" lines_ge 1
stop_agent || fail "agent exited with status $?"
assert_eq "$(cat "$GOLDEN/v2-compat/wto.json")" "$(cat "$AGENT_STDOUT")" \
    "weather line = the golden compat entity"
