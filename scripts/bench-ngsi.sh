#!/usr/bin/env bash
# Section 5 of make bench (scripts/bench.sh runs it), also runnable alone:
#   bash scripts/bench-ngsi.sh
# publisher -> Mosquitto -> agent -> NGSI test server, QoS 1 (or
# BENCH_NGSI_QOS), all verticals. Prints entities/s, requests/s, entities
# per request, and the CPU each process spent per entity (publisher, broker, agent, server all
# share this machine's cores). A bare Paho subscriber on the same stream
# first gives the ceiling the broker and publisher leave on this machine.
#
# Environment (all optional):
#   BENCH_N             messages per run (default 200000)
#   BENCH_NGSI_RATES    publish rates, messages/s or "max", one run each
#                       (default "max")
#   BENCH_NGSI_WINDOW   publisher messages in flight (default 1000 for raw,
#                       100 for spotsim: Paho's cost per message grows with
#                       it, the raw publisher's shrinks)
#   BENCH_NGSI_BARE=0   skip the bare-subscriber reference
#   BENCH_NGSI_QOS      MQTT QoS of publisher, subscriber and agent (default 1)
#   BENCH_PUBLISHER     raw (default: spotpub --raw, many packets per write,
#                       no Paho, so the publisher takes little of the shared
#                       cores) or spotsim (the fleet simulator, Paho)
#   BENCH_APIKEY        apikey of the stream (default ngsibench)
# Another agent on the same stream and test server (BENCH_AGENT_CMD):
#   BENCH_AGENT_CMD     shell command that starts it in the foreground; it
#                       gets MQTT_URL, MQTT_HOST, MQTT_PORT, ORION_URL,
#                       ORION_HOST, ORION_PORT, BENCH_APIKEY in its
#                       environment
#   BENCH_AGENT_READY   command polled (60 s) until it succeeds: the agent
#                       is up (default: sleep 5)
#   BENCH_AGENT_PROVISION  command run once it is ready (same environment),
#                       e.g. curl to its provisioning API
#   BENCH_SETTLE_S      a run ends when nothing new lands for this long
#                       (default 10)
# What landed is counted at the test server (/__stats entities_received):
# messages it never got are reported as lost.
set -Eeuo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
export SPOTAGENT=${SPOTAGENT:-$REPO/build/spotagent}
export TOOLS=${TOOLS:-$REPO/build/tools}
SPOTSIM=${SPOTSIM:-$REPO/build/spotsim}
NGSI_SERVER=${NGSI_SERVER:-$REPO/build/servers/ngsi_server}
N=${BENCH_N:-200000}
RATES=${BENCH_NGSI_RATES:-max}
PUBLISHER=${BENCH_PUBLISHER:-raw}
if [ "$PUBLISHER" = raw ]; then
    WINDOW=${BENCH_NGSI_WINDOW:-1000}
else
    WINDOW=${BENCH_NGSI_WINDOW:-100}
fi
APIKEY=${BENCH_APIKEY:-ngsibench}
SETTLE=${BENCH_SETTLE_S:-10}
# shellcheck source=../tests/integration/lib.sh
source "$REPO/tests/integration/lib.sh"

HZ=$(getconf CLK_TCK)
# cpu_ticks PID: user + system clock ticks of a process and its threads.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# tree_ticks PID: the same summed over a process and its descendants.
tree_ticks() {
    local t c
    t=$(cpu_ticks "$1")
    for c in $(pgrep -P "$1" 2>/dev/null || true); do
        t=$((t + $(tree_ticks "$c")))
    done
    echo "$t"
}

# publish RATE COUNT: BENCH_PUBLISHER, 100 devices, all verticals, one
# connection; prints the delivered figures and the publisher's CPU seconds
# ("cpu=").
QOS=${BENCH_NGSI_QOS:-1}
START=$(date -u -d '2026-01-01' +%s)
publish() {
    local out TIMEFORMAT='cpu=%U+%S'
    case $PUBLISHER in
    raw)
        out=$( { time "$TOOLS/spotpub" --raw --url "$MQTT_URL" --qos "$QOS" \
            --count "$2" --devices 100 --vertical all --apikey "$APIKEY" \
            --rate "${1/max/0}" --inflight "$WINDOW" --start "$START" \
            --quiet; } 2>&1)
        out=$(sed 's/.*acked=\([0-9]*\).*rate=\([0-9]*\)/"delivered":\1 "delivered_per_s":\2 /' <<<"$out")
        ;;
    spotsim)
        out=$( { time "$SPOTSIM" --url "$MQTT_URL" \
            --qos "$QOS" --count "$2" --devices 100 --verticals all \
            --apikey "$APIKEY" --rate "$1" --shared-connection \
            --window "$WINDOW" --failure-rate 0 \
            --start 2026-01-01T00:00:00Z --summary - --quiet; } 2>&1)
        ;;
    *)
        fail "BENCH_PUBLISHER must be spotsim or raw"
        ;;
    esac
    printf '%s' "$out" | tr -d ' \n' |
        grep -o '"delivered":[0-9]*\|"delivered_per_s":[0-9.]*\|cpu=[0-9.+]*' |
        tr '\n' ' '
}
pub_cpu() {
    sed -n 's/.*cpu=\([0-9.+]*\).*/\1/p' <<<"$1" |
        awk -F+ '{ print $1 + $2 }'
}

# The test server's statistics; an agent that floods it with connections
# can make one poll fail: retried for up to 10 s.
stats() {
    local i
    for i in $(seq 1 50); do
        curl -fsS --max-time 5 "$ORION_URL/__stats" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}
stat_field() { stats | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }

start_mosquitto

if [ "${BENCH_NGSI_BARE:-1}" != 0 ]; then
    "$TOOLS/spotsub" --url "$MQTT_URL" --qos "$QOS" --count "$N" \
        --timeout 300 --idle-timeout 10 --ready-file "$TEST_TMP/sub.ready" \
        >"$TEST_TMP/sub.log" 2>&1 &
    sub=$!
    wait_for 10 "spotsub to subscribe" test -e "$TEST_TMP/sub.ready"
    m0=$(cpu_ticks "$MQTT_PID")
    pub=$(publish max "$N")
    m1=$(cpu_ticks "$MQTT_PID")
    wait "$sub" || true
    echo "reference, bare Paho subscriber (QoS $QOS): $(tail -1 "$TEST_TMP/sub.log")"
    BARE_RATE=$(tail -1 "$TEST_TMP/sub.log" | sed -n 's/.*rate=\([0-9.]*\).*/\1/p')
    awk -v n="$N" -v p="$(pub_cpu "$pub")" -v m=$((m1 - m0)) -v hz="$HZ" \
        'BEGIN { printf "  CPU per message: publisher %.1f us, broker %.1f us\n", p / n * 1e6, m / hz / n * 1e6 }'
fi

NGSI_PORT=$(free_port)
bg ngsi "$NGSI_SERVER" --port "$NGSI_PORT" --port-file "$TEST_TMP/ngsi.port" \
    --max-entities 10000000
NGSI_PID=$BG_PID
wait_for 10 "the NGSI test server" test -s "$TEST_TMP/ngsi.port"
ORION_URL=http://127.0.0.1:$NGSI_PORT

# report SENT T0 T1 PUB BROKER_TICKS AGENT_TICKS SERVER_TICKS
report() {
    local sent=$1 t0=$2 t1=$3 pub=$4
    local landed reqs
    landed=$(stat_field entities_received) || landed=0
    reqs=$(stat_field updates) || reqs=0
    awk -v n="$landed" -v s="$sent" -v a="$t0" -v b="$t1" -v r="$reqs" \
        -v p="$(pub_cpu "$pub")" -v m="$5" -v ag="$6" -v sv="$7" -v hz="$HZ" \
        -v bare="${BARE_RATE:-0}" 'BEGIN {
        d = b - a; if (d <= 0) d = 1e-9; k = (n > 0 ? n : 1)
        printf "  %d of %d entities landed (%d lost) in %.2f s = %.0f entities/s, %d requests = %.0f requests/s, %.1f entities per request\n",
            n, s, s - n, d, n / d, r, r / d, (r > 0 ? n / r : 0)
        printf "  CPU per entity landed: publisher %.1f us, broker %.1f us, agent %.1f us, test server %.1f us\n",
            p / k * 1e6, m / hz / k * 1e6, ag / hz / k * 1e6, sv / hz / k * 1e6
        if (bare > 0)
            printf "  entities/s / bare subscriber msg/s: %.1f %%\n", n / d / bare * 100 }'
}

# settled N: all N landed, or nothing new for SETTLE seconds; sets T_LAST
# (when the count last grew).
settle() {
    local want=$1 last=-1 now n
    T_LAST=$(date +%s.%N)
    while true; do
        n=$(stat_field entities_received) || n=${last#-1}
        n=${n:-0}
        now=$(date +%s.%N)
        if [ "$n" != "$last" ]; then
            last=$n
            T_LAST=$now
        fi
        [ "$n" -ge "$want" ] && return 0
        awk -v a="$T_LAST" -v b="$now" -v s="$SETTLE" 'BEGIN { exit !(b - a >= s) }' &&
            return 0
        sleep 0.2
    done
}

if [ -n "${BENCH_AGENT_CMD:-}" ]; then
    echo "agent under test: $BENCH_AGENT_CMD"
    MQTT_HOST=127.0.0.1 MQTT_PORT=$MQTT_PORT MQTT_URL=$MQTT_URL \
        ORION_HOST=127.0.0.1 ORION_PORT=$NGSI_PORT ORION_URL=$ORION_URL \
        BENCH_APIKEY=$APIKEY bg other bash -c "exec $BENCH_AGENT_CMD"
    OTHER_PID=$BG_PID
    export MQTT_HOST=127.0.0.1 MQTT_PORT MQTT_URL ORION_HOST=127.0.0.1 \
        ORION_PORT=$NGSI_PORT ORION_URL BENCH_APIKEY=$APIKEY
    wait_for 60 "the agent under test to be ready" \
        bash -c "${BENCH_AGENT_READY:-sleep 5}"
    if [ -n "${BENCH_AGENT_PROVISION:-}" ]; then
        bash -c "$BENCH_AGENT_PROVISION" >"$TEST_TMP/provision.log" 2>&1 ||
            fail "BENCH_AGENT_PROVISION failed: $(tail -3 "$TEST_TMP/provision.log")"
    fi
else
    AGENT_ID="$AGENT_ID-ngsi"
    AGENT_DATA=$TEST_TMP/agent-ngsi
    AGENT_NO_PG=1 start_agent --mqtt-qos "$QOS" --log-level warn \
        --orion-url "$ORION_URL"
    OTHER_PID=$AGENT_PID
fi

for rate in $RATES; do
    echo "publish rate $rate msg/s, $N messages:"
    curl -fsS -X DELETE "$ORION_URL/__stats" >/dev/null
    m0=$(cpu_ticks "$MQTT_PID")
    a0=$(tree_ticks "$OTHER_PID")
    s0=$(cpu_ticks "$NGSI_PID")
    t0=$(date +%s.%N)
    pub=$(publish "$rate" "$N")
    echo "  publisher: $pub"
    settle "$N"
    m1=$(cpu_ticks "$MQTT_PID")
    a1=$(tree_ticks "$OTHER_PID")
    s1=$(cpu_ticks "$NGSI_PID")
    report "$N" "$t0" "$T_LAST" "$pub" $((m1 - m0)) $((a1 - a0)) $((s1 - s0))
done
echo "  test server: $(stats || echo "(not answering)")"
if [ -z "${BENCH_AGENT_CMD:-}" ]; then
    stop_agent 60 >/dev/null || true
fi
