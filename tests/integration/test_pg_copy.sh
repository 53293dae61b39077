#!/usr/bin/env bash
# The PostgreSQL sink's binary COPY and its way back to INSERT ... ON
# CONFLICT DO NOTHING (docs/internals/pg-sink.md):
#   - a stream published twice, then again with new messages mixed in:
#     COPY meets the stored natural keys, the batch goes by INSERT, every
#     row is stored once and the new ones land;
#   - hostile text (tab, newline, backslash, quote, "\.", "\N") stored byte
#     for byte, numbers exactly as their text;
#   - row-level security (COPY refused, 0A000): INSERT for the connection;
#   - a column an administrator changed to another type: no COPY for that
#     table, INSERT with assignment casts, the value right.
# The agent connects as a role that owns its tables but is no superuser
# (superusers bypass row-level security).
source "$(dirname "$0")/lib.sh"

SPOTSIM=${SPOTSIM:-${TOOLS%/tools}/spotsim}
[ -x "$SPOTSIM" ] || fail "spotsim not found: $SPOTSIM"

start_mosquitto
start_postgres
psql_q "CREATE ROLE writer LOGIN; CREATE SCHEMA city AUTHORIZATION writer"
PG_URL="host=127.0.0.1 port=$PG_PORT dbname=$PG_DB user=writer"
start_agent --pg-schema city
wait_for 30 "the agent's tables" pg_count_ge 0 city.air_quality

# sim COUNT APIKEY: spotsim publishes COUNT aqo messages of 10 devices from
# a fixed start, so a second run repeats the first one's natural keys.
sim() {
    "$SPOTSIM" --url "$MQTT_URL" --qos 1 --count "$1" --devices 10 \
        --verticals aqo --apikey "$2" --rate max --shared-connection \
        --failure-rate 0 --start 2026-01-01T00:00:00Z --summary - --quiet \
        >>"$TEST_TMP/spotsim.log" 2>&1 || fail "spotsim failed"
}
aq() { pg_count city.air_quality "${1:-true}"; }
refusals() {
    local n
    n=$(grep -c "COPY refused the batch" "$AGENT_STDERR") || true
    echo "${n:-0}"
}

# --- duplicates ------------------------------------------------------------
sim 3000 dup
wait_for 60 "3000 rows" pg_count_is 3000 city.air_quality
assert_eq 0 "$(refusals)" "COPY refusals before any duplicate"
sim 3000 dup # the same 3000 messages again
sim 4000 dup # and again, with 1000 new ones behind them
wait_for 60 "4000 rows" pg_count_is 4000 city.air_quality
[ "$(refusals)" -ge 1 ] || fail "COPY never met the duplicates"
grep -q "unique_violation\|23505" "$AGENT_STDERR" ||
    fail "the refusal does not say why: $(grep 'COPY refused' "$AGENT_STDERR")"
assert_eq 4000 "$(psql_q "SELECT count(DISTINCT (apikey, device_id, time_instant)) FROM city.air_quality")" \
    "distinct natural keys"

# --- hostile text, exact numbers ---------------------------------------------
DEV="/dvkdev/hostile_DEV/attrs"
publish_payload "$DEV" '{"TimeInstant":"2026-02-01T00:00:00Z","period":5,"status":"connected","wifiSsid":"a\tb\nc\\d\\N\\.'"'"'x\"","modelName":"); DROP TABLE city.device_info; --","unknown":"\t\\."}'
AQ="/numkaqo/n_AQO/attrs"
publish_payload "$AQ" '{"TimeInstant":"2026-02-01T00:00:00Z","period":5,"status":"connected","co2":0.77999997138977051,"pm2":12.25}'
wait_for 30 "the device row" pg_count_is 1 city.device_info
wait_for 30 "the number row" pg_count_is 1 city.air_quality "apikey = 'numk'"
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
assert_eq "$(hex $'a\tb\nc\\d\\N\\.\'x"')" \
    "$(psql_q "SELECT encode(convert_to(wifi_ssid, 'UTF8'), 'hex') FROM city.device_info")" \
    "wifi_ssid, byte for byte"
assert_eq "); DROP TABLE city.device_info; --" \
    "$(psql_q "SELECT model_name FROM city.device_info")" "model_name"
assert_eq "$(hex $'\t\\.')" \
    "$(psql_q "SELECT encode(convert_to(extra->>'unknown', 'UTF8'), 'hex') FROM city.device_info")" \
    "extra, byte for byte"
assert_eq t "$(psql_q "SELECT co2 = '0.77999997138977051'::float8 AND pm2 = 12.25 FROM city.air_quality WHERE apikey = 'numk'")" \
    "numbers as float8in reads their text"

# --- row-level security: COPY refused, INSERT for the connection -------------
# (a new agent: the one above sends by INSERT for a while after the
# duplicates)
stop_agent || fail "agent exited with status $?"
start_agent --pg-schema city
psql_q "ALTER TABLE city.air_quality ENABLE ROW LEVEL SECURITY;
        ALTER TABLE city.air_quality FORCE ROW LEVEL SECURITY;
        CREATE POLICY everything ON city.air_quality USING (true) WITH CHECK (true)"
sim 500 rls
wait_for 60 "the rows under row-level security" pg_count_is 500 city.air_quality "apikey = 'rls'"
grep -q "COPY refused: .*writing by INSERT on this connection" "$AGENT_STDERR" ||
    fail "no word of COPY being refused under row-level security"
psql_q "DROP POLICY everything ON city.air_quality;
        ALTER TABLE city.air_quality NO FORCE ROW LEVEL SECURITY;
        ALTER TABLE city.air_quality DISABLE ROW LEVEL SECURITY"

# --- a column of another type: INSERT with assignment casts ------------------
stop_agent || fail "agent exited with status $?"
psql_q "ALTER TABLE city.air_quality ALTER COLUMN pm2 TYPE numeric"
start_agent --pg-schema city
publish_payload "/castkaqo/c_AQO/attrs" '{"TimeInstant":"2026-02-01T00:00:00Z","period":5,"status":"connected","pm2":12.25,"pm10":3}'
sim 500 cast
wait_for 60 "the rows after the type change" pg_count_is 500 city.air_quality "apikey = 'cast'"
wait_for 30 "the hand-made row" pg_count_is 1 city.air_quality "apikey = 'castk'"
assert_eq "12.25|3" "$(psql_q "SELECT pm2, pm10 FROM city.air_quality WHERE apikey = 'castk'")" \
    "numeric pm2 got the value, not its bytes"
grep -q "air_quality.pm2 is numeric in the database" "$AGENT_STDERR" ||
    fail "the type change was not reported"

assert_no_duplicates_in() {
    local all distinct
    all=$(aq)
    distinct=$(psql_q "SELECT count(*) FROM (SELECT DISTINCT apikey, device_id, time_instant FROM city.air_quality) d")
    assert_eq "$all" "$distinct" "distinct natural keys in city.air_quality"
}
assert_no_duplicates_in
agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
