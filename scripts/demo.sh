#!/usr/bin/env bash
# make demo: a live run on real local services. Starts a private Mosquitto
# and PostgreSQL on free loopback ports, runs spotagent between them,
# publishes the manufacturer's example messages (three of them malformed on
# purpose), then runs a simulated fleet (spotsim: 50 devices, every
# vertical, time accelerated so a 5-minute sampling period passes in half a
# second, with a few faults injected) for about half a minute, shows rows
# landing per table, then a summary. spotagent also forwards every accepted
# message to an NGSI-v2 broker: the project's NGSI test server (Orion's
# rules, in memory), or a real Orion given as DEMO_ORION_URL. Everything is
# stopped at the end, even on Ctrl-C.
set -Eeuo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
export SPOTAGENT=${SPOTAGENT:-$REPO/build/spotagent}
export TOOLS=${TOOLS:-$REPO/build/tools}
DEVICES=${DEMO_DEVICES:-50}
DURATION=${DEMO_DURATION:-30}
SPEED=${DEMO_SPEED:-600}
SPOTSIM=${SPOTSIM:-$REPO/build/spotsim}
NGSI_SERVER=${NGSI_SERVER:-$REPO/build/servers/ngsi_server}
# shellcheck source=../tests/integration/lib.sh
source "$REPO/tests/integration/lib.sh"

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
TABLES=(air_quality noise_level weather crowd_count crowd_event device_info
    device_health)

bold "1. Private services on loopback"
start_mosquitto
start_postgres
echo "Mosquitto  $MQTT_URL"
echo "PostgreSQL $PG_URL"
if [ -n "${DEMO_ORION_URL:-}" ]; then
    ORION_URL=${DEMO_ORION_URL%/}
    echo "Orion      $ORION_URL (DEMO_ORION_URL)"
else
    bg ngsi "$NGSI_SERVER" --port 0 --port-file "$TEST_TMP/ngsi.port"
    wait_for 10 "the NGSI test server" test -s "$TEST_TMP/ngsi.port"
    ORION_URL=http://127.0.0.1:$(cat "$TEST_TMP/ngsi.port")
    echo "NGSI-v2    $ORION_URL (the project's NGSI test server, Orion's rules;"
    echo "           DEMO_ORION_URL=http://orion:1026 sends to a real Orion)"
fi

bold "2. spotagent (subscribes to /+/+/attrs at QoS 1, stores in PostgreSQL, updates Orion)"
HTTP_PORT=$(free_port)
start_agent --http-listen "127.0.0.1:$HTTP_PORT" --orion-url "$ORION_URL"
echo "running: pid $AGENT_PID, log $AGENT_STDERR"
echo "status page: http://127.0.0.1:$HTTP_PORT/  (metrics at /metrics)"

bold "3. The manufacturer's example messages (cfe, dev and dho are malformed)"
for f in aqo nlo wto cfo cfe dev dho; do
    publish_file "/JRI9jTbEKJQS29y3bc8BC6$f/SmartSpot_AQ_1_${f^^}/attrs" \
        "$VECTORS/$f.json" 1
    echo "published $f.json"
done
wait_for 30 "the four valid examples to land" pg_total_ge 4
wait_for 30 "the three malformed examples to be dead-lettered" \
    pg_count_ge 3 rejected_message
echo "4 rows stored, 3 messages dead-lettered"

bold "4. A simulated fleet: $DEVICES devices, all verticals, ${DURATION}s at ${SPEED}x time (faults injected)"
"$SPOTSIM" --url "$MQTT_URL" --devices "$DEVICES" --verticals all \
    --apikey demoKey --device-prefix spot --speed "$SPEED" \
    --duration "$DURATION" --start 2026-01-01T00:00:00Z --seed 7 \
    --fault malformed=0.002,wrong-type=0.002,range=0.002,wrong-topic=0.001 \
    --summary "$TEST_TMP/fleet.json" --quiet >"$TEST_TMP/fleet.log" 2>&1 &
FLEET=$!
printf '%-8s' "time"
for t in "${TABLES[@]}"; do printf '%14s' "$t"; done
printf '%10s%14s\n' rejected "orion updates"
# metric NAME SINK: a sink's counter or gauge from /metrics.
metric() {
    curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" |
        awk -v m="$1{sink=\"$2\"}" '$1 == m { print $2 }'
}
start_s=$(date +%s)
while :; do
    printf '%-8s' "+$(($(date +%s) - start_s))s"
    for t in "${TABLES[@]}"; do printf '%14s' "$(pg_count "$t")"; done
    printf '%10s' "$(pg_count rejected_message)"
    printf '%14s\n' "$(metric spotagent_sink_writes_total orion)"
    kill -0 "$FLEET" 2>/dev/null || break
    sleep 3
done
wait "$FLEET" || fail "the fleet simulator failed: $(tail -5 "$TEST_TMP/fleet.log")"
echo "spotsim summary: $(tr -d '\n ' <"$TEST_TMP/fleet.json" | cut -c1-300)..."
# wait until both sinks have confirmed everything journaled
backlog_empty() {
    [ "$(metric spotagent_sink_backlog_messages pg)" = 0 ] &&
        [ "$(metric spotagent_sink_backlog_messages orion)" = 0 ]
}
wait_for 120 "spotagent to store and forward the fleet's messages" backlog_empty
echo "spotagent's backlog is empty: everything the broker delivered is stored and in Orion"

bold "5. Summary: rows per table"
demo_psql() {
    "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" \
        "$@"
}
demo_psql -c "SELECT 'air_quality' AS table_name, count(*) AS rows FROM air_quality UNION ALL
        SELECT 'noise_level', count(*) FROM noise_level UNION ALL
        SELECT 'weather', count(*) FROM weather UNION ALL
        SELECT 'crowd_count', count(*) FROM crowd_count UNION ALL
        SELECT 'crowd_event', count(*) FROM crowd_event UNION ALL
        SELECT 'device_info', count(*) FROM device_info UNION ALL
        SELECT 'device_health', count(*) FROM device_health UNION ALL
        SELECT 'rejected_message', count(*) FROM rejected_message"

bold "Sample rows"
demo_psql -c \
    "SELECT device_id, time_instant, no2_a4, pm2, pm10 FROM air_quality
     WHERE apikey = 'JRI9jTbEKJQS29y3bc8BC6'" -c \
    "SELECT device_id, time_instant, temp8, hum8, pres1, wind_sp FROM weather
     ORDER BY time_instant DESC, device_id LIMIT 3"

bold "Rejected messages by reason (raw bytes kept in rejected_message.payload)"
demo_psql -c "SELECT reason, count(*) AS messages,
       left(min(detail), 60) AS example_detail
     FROM rejected_message GROUP BY reason ORDER BY count(*) DESC"

bold "NGSI-v2 entities in $ORION_URL (one per device and vertical, updated in place)"
printf '%-22s %s\n' "entity type" entities
for type in AirQualityObserved NoiseLevelObserved WeatherObserved \
    CrowdFlowObserved AnonymousCommuterId Device; do
    n=$(curl -fsS -D - -o /dev/null \
        "$ORION_URL/v2/entities?type=$type&limit=1&options=count" |
        tr -d '\r' | awk -F': ' 'tolower($1) == "fiware-total-count" { print $2 }')
    printf '%-22s %s\n' "$type" "${n:-?}"
done
echo
echo "urn:ngsi-ld:AirQualityObserved:SmartSpot_AQ_1 (the manufacturer's example, sdm mapping):"
curl -fsS "$ORION_URL/v2/entities/urn:ngsi-ld:AirQualityObserved:SmartSpot_AQ_1?attrs=no2,pm25,pm10,dateObserved,refDevice" |
    python3 -c 'import json, sys
e = json.load(sys.stdin)
print("  id %s, type %s" % (e.pop("id"), e.pop("type")))
for name, a in e.items():
    md = a.get("metadata", {})
    unit = md.get("unitCode", {}).get("value", "")
    print("  %-14s %-13s %-36s %s" % (name, a["type"], json.dumps(a["value"]),
          "unitCode " + unit if unit else ""))
print("  (each attribute also carries TimeInstant metadata)")' ||
    echo "(not found)"

bold "6. Stopping spotagent (SIGTERM: flush, checkpoint, exit 0)"
rc=0
stop_agent 30 || rc=$?
echo "spotagent exited with status $rc"
echo "Services stop now; their data directories are removed."
