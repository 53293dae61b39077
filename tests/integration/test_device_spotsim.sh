#!/usr/bin/env bash
# spotsim -> Mosquitto -> spotagent -> PostgreSQL. What spotsim's summary
# says it sent is what lands: rows per table (every vertical, nulls mixed
# in, duplicates stored once, out-of-range values stored as NULL) and
# rejected messages per reason (malformed JSON, wrong types, wrong
# topics, out of range).
#  1. 20 devices, one connection each, accelerated clock (x3000), every
#     fault kind, bursts;
#  2. the load-generator mode: 30 devices on one shared connection at a
#     target rate, QoS 1, stopping after an exact count;
#  3. the same seed gives the same fleet (same summary, bar timings).
source "$(dirname "$0")/lib.sh"

# beside the tools of the same build (make check: build/)
SPOTSIM=${SPOTSIM:-${TOOLS%/tools}/spotsim}
[ -x "$SPOTSIM" ] || fail "spotsim not found: $SPOTSIM"

# sumget FILE KEY.KEY...: a value of a spotsim summary.
sumget() {
    perl -MJSON::PP -e 'local $/; my $j = decode_json(<STDIN>);
        $j = $j->{$_} for split /\./, $ARGV[0]; print $j' "$2" <"$1"
}

start_mosquitto
start_postgres
start_agent

# table_count TABLE APIKEY
table_count() { pg_count "$1" "apikey = '$2'"; }
rejected_count() { pg_count rejected_message "reason = '$1'"; }

# check_landed SUMMARY APIKEY: every expected row and reject is there.
check_landed() {
    local s=$1 key=$2 t want total
    total=$(sumget "$s" expected.rows_total)
    land_ge() {
        local n=0 t
        for t in "${VERTICAL_TABLES[@]}"; do
            n=$((n + $(table_count "$t" "$key")))
        done
        [ "$n" -ge "$1" ]
    }
    wait_for 60 "$total rows of $key" land_ge "$total"
    for t in "${VERTICAL_TABLES[@]}"; do
        want=$(sumget "$s" "expected.rows.$t")
        assert_eq "$want" "$(table_count "$t" "$key")" "rows in $t ($key)"
    done
}

# --- 1. every fault, one connection per device ---------------------------------
S=$TEST_TMP/faults.json
"$SPOTSIM" --url "$MQTT_URL" --devices 20 --apikey simA --verticals all \
    --period 5,15 --speed 3000 --start 2026-01-05T06:00:00Z --duration 4 \
    --failure-rate 0.1 --seed 7 --summary "$S" \
    --fault malformed=0.02,wrong-type=0.02,wrong-topic=0.02,range=0.02,duplicate=0.05,burst=0.02,burst-size=4 \
    >"$TEST_TMP/spotsim1.log" 2>&1 || fail "spotsim failed: $(cat "$TEST_TMP/spotsim1.log")"
cat "$TEST_TMP/spotsim1.log" >&2
assert_eq 0 "$(sumget "$S" pending)" "pending"
assert_eq 0 "$(sumget "$S" dropped)" "dropped"
assert_eq 0 "$(sumget "$S" failures)" "failures"
assert_eq "$(sumget "$S" generated)" "$(sumget "$S" delivered)" "delivered"
for k in malformed wrong-type wrong-topic range duplicate burst; do
    [ "$(sumget "$S" "faults.$k")" -gt 0 ] || fail "no $k fault injected"
done
check_landed "$S" simA
rejected_is() { [ "$(pg_count rejected_message)" -ge "$1" ]; }
wait_for 30 "the rejects" rejected_is "$(sumget "$S" expected.rejected_total)"
for r in json schema topic range; do
    assert_eq "$(sumget "$S" "expected.rejected.$r")" "$(rejected_count "$r")" \
        "rejected_message with reason $r"
done
assert_no_duplicates
# nulls for failed sensors landed as NULL in fitted columns
n=$(pg_count air_quality "apikey = 'simA' AND (no2_a4 IS NULL OR pm10 IS NULL)")
[ "$n" -gt 0 ] || fail "no null reading landed"
# the per-visitor events carry a 40-hex visitorId
n=$(pg_count crowd_event "apikey = 'simA' AND visitor_id !~ '^[0-9a-f]{40}$'")
assert_eq 0 "$n" "malformed visitor ids"

# --- 2. load generator: shared connection, target rate, exact count ----------------
S2=$TEST_TMP/rate.json
"$SPOTSIM" --url "$MQTT_URL" --devices 30 --apikey simB --shared-connection \
    --rate 3000 --count 4000 --qos 1 --start 2026-01-05T00:00:00Z \
    --summary "$S2" --quiet || fail "spotsim in rate mode failed"
assert_eq 4000 "$(sumget "$S2" generated)" "generated with --count"
assert_eq 4000 "$(sumget "$S2" delivered)" "delivered"
assert_eq 1 "$(sumget "$S2" connects)" "connections with --shared-connection"
el=$(sumget "$S2" elapsed_s)
perl -e 'exit($ARGV[0] >= 1.0 ? 0 : 1)' "$el" ||
    fail "4000 messages at 3000/s took ${el}s: the rate was not applied"
check_landed "$S2" simB

# --- 3. determinism --------------------------------------------------------------------
run_det() {
    "$SPOTSIM" --url "$MQTT_URL" --devices 5 --apikey "$1" --rate max \
        --count 700 --seed 11 --start 2026-01-05T00:00:00Z --shared-connection \
        --fault malformed=0.05,duplicate=0.05 --summary "$TEST_TMP/$1.json" \
        --quiet || fail "spotsim $1 failed"
    perl -MJSON::PP -e 'local $/; my $j = decode_json(<STDIN>);
        print JSON::PP->new->canonical->encode([$j->{sent_per_vertical},
            $j->{faults}, $j->{expected}{rows}, $j->{nulls}])' \
        <"$TEST_TMP/$1.json"
}
a=$(run_det simC)
b=$(run_det simD)
assert_eq "$a" "$b" "two runs with the same seed"
# and the same measurements: compare the stored values of both runs
check_landed "$TEST_TMP/simC.json" simC
check_landed "$TEST_TMP/simD.json" simD
diff_rows=$(psql_q "SELECT (SELECT count(*) FROM (
      SELECT device_id, time_instant, no2_a4, pm10 FROM air_quality WHERE apikey = 'simC'
      EXCEPT SELECT device_id, time_instant, no2_a4, pm10 FROM air_quality WHERE apikey = 'simD') a)
    + (SELECT count(*) FROM (
      SELECT device_id, time_instant, visitor_id, duration FROM crowd_event WHERE apikey = 'simC'
      EXCEPT SELECT device_id, time_instant, visitor_id, duration FROM crowd_event WHERE apikey = 'simD') b)")
assert_eq 0 "$diff_rows" "rows that differ between two runs with one seed"
stop_agent || fail "agent exited with status $?"
log "spotsim end to end: ok"
