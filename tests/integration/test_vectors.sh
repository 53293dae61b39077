#!/usr/bin/env bash
# The application note's example messages (tests/fixtures/vectors), each
# published as-is at QoS 1 on its vertical's topic: the valid ones land in
# their tables with the right column values; the three malformed ones land
# in rejected_message (reason json) with their raw bytes intact.
source "$(dirname "$0")/lib.sh"

APIKEY=JRI9jTbEKJQS29y3bc8BC6
DEVICE=SmartSpot_AQ_1

topic_of() { # file -> topic
    local code
    code=$(basename "$1")
    code=${code%%.*}
    echo "/$APIKEY$code/${DEVICE}_${code^^}/attrs"
}

start_mosquitto
start_postgres
start_agent

for f in "$VECTORS"/*.json; do
    publish_file "$(topic_of "$f")" "$f"
done

landed() {
    pg_total_ge 7 && pg_count_ge 3 rejected_message
}
wait_for 60 "7 rows and 3 rejected messages" landed

# q TABLE COLUMNS: the single row of TABLE (one line, fields joined by |).
q() {
    psql_q "SELECT $2 FROM $1 WHERE apikey = '$APIKEY' AND device_id = '$DEVICE'"
}
# is TABLE SQL-BOOLEAN WHAT: asserts the condition holds on TABLE's row.
is() {
    assert_eq t "$(q "$1" "($2)")" "$3 ($1: $2)"
}
ts="to_char(time_instant AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

for t in "${VERTICAL_TABLES[@]}"; do
    assert_eq 1 "$(pg_count "$t")" "rows in $t"
    is "$t" "received_at IS NOT NULL" "received_at"
done

# Air quality.
assert_eq "$APIKEY|$DEVICE|2023-03-20T13:50:00Z|5|connected" \
    "$(q air_quality "apikey, device_id, $ts, period, status")" "air_quality key"
assert_eq "0.640869140625|15.33404541015625" \
    "$(q air_quality "no2_a4, pm2")" "air_quality no2_a4, pm2"
is air_quality "ox_a431 = '28.586013793945312'::float8" "ox_a431"
is air_quality "co_a4 = '91.760452270507812'::float8" "co_a4"
is air_quality "so2_a4 = '0.927800178527832'::float8" "so2_a4"
is air_quality "pm10 = '49.334125518798828'::float8" "pm10"
is air_quality "pm1 = '2.1444158554077148'::float8" "pm1"
is air_quality "h2s_a4 IS NULL AND voc IS NULL" "absent fields are NULL"

# Noise level.
assert_eq "2023-03-20T13:45:00Z|3" "$(q noise_level "$ts, period")" "noise_level"
is noise_level "son_laeq = '66.512710571289062'::float8" "son_laeq"
is noise_level "son_lamax = '75.870002746582031'::float8" "son_lamax"
is noise_level "son_la99 = '63.020454406738281'::float8" "son_la99"

# Weather.
assert_eq "2023-03-20T13:45:00Z|67|0|168750|34" \
    "$(q weather "$ts, hum3, rain_rate, illuminance, wind_dir")" "weather"
is weather "temp3 = '18.05555534362793'::float8" "temp3"
is weather "pres1 = '980.83404541015625'::float8" "pres1"
is weather "temp8 IS NULL AND hum8 IS NULL" "absent fields are NULL"

# Crowd counts.
assert_eq "2023-03-20T13:44:06Z|20|11|1|-1|on|3|3" \
    "$(q crowd_count "$ts, people_count, avg_duration, measurement_interval,
        reporting_period, data_collection, people_count_collection,
        event_collection")" "crowd_count"

# Crowd event (cfe.fixed.json; cfe.json is rejected).
assert_eq "2023-03-20T13:45:07Z|cdb6be6326af1dc10b55fd91d6c26548db230203|1|0|21" \
    "$(q crowd_event "$ts, visitor_id, detection_type, random, duration")" \
    "crowd_event"

# Device (dev.fixed.json): "true"/"false" strings are booleans.
assert_eq "boolean|boolean" \
    "$(q device_info "pg_typeof(wifi_enabled), pg_typeof(cellular_enabled)")" \
    "device_info boolean columns"
assert_eq "f|f" "$(q device_info "wifi_enabled, cellular_enabled")" \
    "device_info wifi_enabled, cellular_enabled"
assert_eq "A72gG21N1P1E1GDIB10Y1H1|ac67b2ce52da|0.18.14|example.apn.com|defaultSSAP|0|0|0" \
    "$(q device_info "model_name, serial_number, firmware_version,
        cellular_apn, wifi_ssid, update_firmware_download_progress,
        update_firmware_result, update_firmware_state")" "device_info"

# Device health (dho.fixed.json).
assert_eq "2023-03-20T13:45:00Z|21|-312|11785|0|0.87" \
    "$(q device_health "$ts, network_bearer, battery_current,
        battery_voltage, battery_state, battery_level")" "device_health"
is device_health "rssi = '0.77999997138977051'::float8" "rssi"
assert_eq integer "$(q device_health "pg_typeof(network_bearer)")" \
    "network_bearer is an integer code"

# The three malformed vectors: reason json, raw bytes kept, a detail.
assert_eq 3 "$(pg_count rejected_message)" "rejected messages"
for code in cfe dev dho; do
    f=$VECTORS/$code.json
    topic=$(topic_of "$f")
    row=$(psql_q "SELECT reason, encode(payload, 'hex'), coalesce(detail, '')
                  FROM rejected_message WHERE topic = '$topic'")
    IFS='|' read -r reason hex detail <<<"$row"
    assert_eq json "$reason" "reason of $code.json"
    assert_eq "$(hex_of_file "$f")" "$hex" "raw payload of $code.json"
    assert_ne "" "$detail" "detail of $code.json"
    log "$code.json rejected: $detail"
done

assert_no_duplicates
agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
