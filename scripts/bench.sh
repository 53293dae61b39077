#!/usr/bin/env bash
# make bench: prints performance figures (never asserted; see
# docs/PERFORMANCE.md). Publisher, broker, subscriber and database share
# this machine's cores, as in production-like single-host runs.
#   1. parse + validate (+ row encoding) micro-benchmark, one core;
#   2. a bare Paho subscriber of /+/+/attrs, QoS 0 and QoS 1 (the ceiling
#      the broker gives one subscriber);
#   3. publisher -> Mosquitto -> spotagent -> PostgreSQL, QoS 1 and QoS 0;
#   4. spotagent's resident memory over a long run, and while PostgreSQL
#      is down (the backlog must go to disk, not RAM);
#   5. publisher -> Mosquitto -> spotagent -> NGSI test server (entities/s,
#      requests/s, entities per request, CPU per entity of each process):
#      scripts/bench-ngsi.sh, also runnable alone. BENCH_AGENT_CMD runs
#      another agent that reads /+/+/attrs and writes to the test server
#      (e.g. the FIWARE IoT Agent for JSON) on the same stream instead.
# The load generator is spotsim (rate "max", one shared connection).
# Sizes: BENCH_N (messages per throughput run, default 200000),
# BENCH_LONG (messages of the memory run, default 1000000).
set -Eeuo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
export SPOTAGENT=${SPOTAGENT:-$REPO/build/spotagent}
export TOOLS=${TOOLS:-$REPO/build/tools}
SPOTSIM=${SPOTSIM:-$REPO/build/spotsim}
NGSI_SERVER=${NGSI_SERVER:-$REPO/build/servers/ngsi_server}
N=${BENCH_N:-200000}
LONG=${BENCH_LONG:-1000000}
# shellcheck source=../tests/integration/lib.sh
source "$REPO/tests/integration/lib.sh"

section() { printf '\n== %s\n' "$*"; }
START=$(date -u -d '2026-01-01' +%s)

# load QOS COUNT APIKEY [VERTICALS]: spotsim publishes COUNT messages as
# fast as the broker takes them (100 devices, distinct natural keys).
load() {
    "$SPOTSIM" --url "$MQTT_URL" --qos "$1" --count "$2" --devices 100 \
        --verticals "${4:-aqo}" --apikey "$3" --rate max --shared-connection \
        --failure-rate 0 --start 2026-01-01T00:00:00Z --summary - --quiet |
        tr -d ' \n' | grep -o '"delivered":[0-9]*\|"delivered_per_s":[0-9.]*' |
        tr '\n' ' '
    echo
}

section "1. parse + validate + row encoding (one core, the 7 example messages)"
"$TOOLS/bench_validate" "$VECTORS" 2000000

start_mosquitto
start_postgres

# bare_subscriber QOS: spotsub receives N messages from spotpub.
bare_subscriber() {
    local qos=$1
    "$TOOLS/spotsub" --url "$MQTT_URL" --qos "$qos" --count "$N" \
        --timeout 300 --ready-file "$TEST_TMP/sub.$qos.ready" \
        >"$TEST_TMP/sub.$qos.log" 2>&1 &
    local sub=$!
    wait_for 10 "spotsub to subscribe" test -e "$TEST_TMP/sub.$qos.ready"
    echo "publisher:  $(load "$qos" "$N" "bare$qos")"
    wait "$sub" || true
    echo "subscriber: $(tail -1 "$TEST_TMP/sub.$qos.log")"
}

section "2. bare Paho subscriber, QoS 0 ($N messages)"
bare_subscriber 0
section "2. bare Paho subscriber, QoS 1 ($N messages)"
bare_subscriber 1

# agent_run QOS KEY: spotpub publishes N aqo messages under apikey KEY;
# the rate is N / (time the last row committed - first MQTT arrival).
agent_run() {
    local qos=$1 key=$2
    local pub
    pub=$(load "$qos" "$N" "$key")
    wait_until 600 pg_count_ge "$N" air_quality "apikey = '$key'" ||
        echo "(not all rows landed: $(pg_count air_quality "apikey = '$key'"))"
    local end first rows
    end=$(psql_q "SELECT extract(epoch FROM clock_timestamp())")
    first=$(psql_q "SELECT extract(epoch FROM min(received_at)) FROM air_quality WHERE apikey = '$key'")
    rows=$(pg_count air_quality "apikey = '$key'")
    echo "publisher: $pub"
    awk -v n="$rows" -v a="$first" -v b="$end" \
        'BEGIN { printf "spotagent -> PostgreSQL: %d rows in %.2f s = %.0f msg/s (first arrival to last commit, polled every 0.1 s)\n", n, b - a, n / (b - a) }'
}

section "3. publisher -> Mosquitto -> spotagent -> PostgreSQL, QoS 1 ($N messages)"
start_agent --mqtt-qos 1 --log-level warn
agent_run 1 e2eq1
stop_agent 60 >/dev/null || true

section "3. publisher -> Mosquitto -> spotagent -> PostgreSQL, QoS 0 ($N messages)"
AGENT_ID="$AGENT_ID-q0"
start_agent --mqtt-qos 0 --log-level warn
agent_run 0 e2eq0

rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$AGENT_PID/status"; }

section "4. resident memory over $LONG messages (QoS 1)"
load 1 "$LONG" longrun all >"$TEST_TMP/pub.long.log" 2>&1 &
PUB=$!
samples=()
while kill -0 "$PUB" 2>/dev/null; do
    samples+=("$(rss_kb)")
    sleep 2
done
wait "$PUB" || true
wait_until 600 pg_count_ge "$LONG" air_quality "apikey = 'longrun'" || true
samples+=("$(rss_kb)")
echo "publisher: $(tail -1 "$TEST_TMP/pub.long.log")"
echo "RSS samples (KiB, every 2 s): ${samples[*]}"

section "4. resident memory while PostgreSQL is down ($N messages queued in the journal)"
before=$(rss_kb)
stop_postgres
load 1 "$N" pgdown >"$TEST_TMP/pub.down.log" 2>&1
during=$(rss_kb)
journal=$(du -sk "$AGENT_DATA/journal" | cut -f1)
restart_postgres
wait_until 600 pg_count_ge "$N" air_quality "apikey = 'pgdown'" || true
after=$(rss_kb)
echo "publisher: $(tail -1 "$TEST_TMP/pub.down.log")"
echo "RSS before: $before KiB, with $N messages backlogged: $during KiB (journal on disk: $journal KiB), after catching up: $after KiB"
echo "rows landed after PostgreSQL came back: $(pg_count air_quality "apikey = 'pgdown'")"
stop_agent 60 >/dev/null || true

section "5. publisher -> Mosquitto -> spotagent -> NGSI test server, QoS 1 ($N messages, all verticals)"
# A separate script (runnable alone); BENCH_AGENT_CMD and its companions
# are described there.
BENCH_N=$N bash "$REPO/scripts/bench-ngsi.sh"
