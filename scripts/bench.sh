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
# The load generator (BENCH_PUBLISHER) is spotpub --raw by default, which
# packs MQTT packets many per write and costs the shared cores 1-4 µs per
# message; BENCH_PUBLISHER=spotsim uses the fleet simulator on the device
# side's Paho publisher instead (18 µs per message at QoS 0, 45 at QoS 1, on
# the same two cores as the broker and the agent). See load below.
# Sizes: BENCH_N (messages per throughput run, default 200000),
# BENCH_LONG (messages of the memory run, default 1000000).
# BENCH_SECTIONS: comma-separated sections to run (e.g. 2,3; default all).
# BENCH_WINDOW: the publisher's messages in flight (default 1000 for raw,
# 100 for spotsim: Paho's publisher costs about 20 µs more per message with
# 1000, the raw one 13 µs more with 100).
# BENCH_REPEAT: how many times sections 2 and 3 alternate (default 1); the
# QoS 1 ratio of each pair is printed, then their median.
# Sections 2-4 also print the CPU time per message of each process
# (publisher, broker, subscriber or agent, PostgreSQL server) over the run.
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
# want N: section N is selected by BENCH_SECTIONS (default: all).
want() { [[ ",${BENCH_SECTIONS:-1,2,3,4,5}," == *",$1,"* ]]; }
START=$(date -u -d '2026-01-01' +%s)

# load QOS COUNT APIKEY [VERTICALS]: the publisher sends COUNT messages as
# fast as the broker takes them (100 devices, distinct natural keys) and
# prints what it delivered. BENCH_PUBLISHER picks it: raw (default: spotpub
# --raw, MQTT packed many packets per write, no Paho, so the publisher
# takes little of the cores the broker and agent share) or spotsim (the
# fleet simulator on the device-side Paho publisher, one shared connection).
load() {
    case ${BENCH_PUBLISHER:-raw} in
    raw)
        "$TOOLS/spotpub" --raw --url "$MQTT_URL" --qos "$1" --count "$2" \
            --devices 100 --vertical "${4:-aqo}" --apikey "$3" \
            --start "$START" --inflight "${BENCH_WINDOW:-1000}" --quiet |
            sed -n 's/.*acked=\([0-9]*\).*rate=\([0-9]*\).*/"delivered":\1 "delivered_per_s":\2/p'
        ;;
    spotsim)
        "$SPOTSIM" --url "$MQTT_URL" --qos "$1" --count "$2" --devices 100 \
            --verticals "${4:-aqo}" --apikey "$3" --rate max --shared-connection \
            --window "${BENCH_WINDOW:-100}" \
            --failure-rate 0 --start 2026-01-01T00:00:00Z --summary - --quiet |
            tr -d ' \n' | grep -o '"delivered":[0-9]*\|"delivered_per_s":[0-9.]*' |
            tr '\n' ' '
        echo
        ;;
    *)
        echo "BENCH_PUBLISHER must be spotsim or raw" >&2
        return 2
        ;;
    esac
    # CPU of the pipeline just reaped (the publisher; tr, sed, grep are noise)
    awk '{ sub(/.*\) /, ""); print $14 + $15 }' "/proc/$BASHPID/stat" \
        >"$TEST_TMP/pub.ticks"
}

# --- CPU per process -------------------------------------------------------
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# ticks PID: user + system clock ticks of PID and of its reaped children.
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# pg_ticks: the PostgreSQL server's, postmaster and every backend.
pg_ticks() {
    local pm
    pm=$(head -1 "$PG_DIR/data/postmaster.pid")
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" '{
        pid = $1; sub(/.*\) /, "")
        if (pid == pm) t += $12 + $13 + $14 + $15
        else if ($2 == pm) t += $12 + $13
    } END { print t + 0 }'
}
# cpu_mark PID: remembers the broker's, PostgreSQL's and PID's ticks.
cpu_mark() {
    CPU_T0=$(date +%s.%N) CPU_PID=$1
    CPU_MQ=$(ticks "$MQTT_PID") CPU_PG=$(pg_ticks) CPU_AG=$(ticks "$1")
}
# cpu_report N NAME [TICKS]: CPU µs per message of each process since
# cpu_mark, for N messages (NAME: the subscriber or agent; TICKS: its ticks
# when it has exited, else read now).
cpu_report() {
    local n=$1 name=$2 ag=${3:-$(ticks "$CPU_PID")} pub
    pub=$(cat "$TEST_TMP/pub.ticks" 2>/dev/null || echo 0)
    awk -v n="$n" -v u="$TICK_US" -v t0="$CPU_T0" -v t1="$(date +%s.%N)" \
        -v pub="$pub" -v mq=$(($(ticks "$MQTT_PID") - CPU_MQ)) \
        -v ag=$((ag - CPU_AG)) -v pg=$(($(pg_ticks) - CPU_PG)) -v name="$name" \
        'BEGIN { f = u / n; printf "CPU µs/message: publisher %.1f, mosquitto %.1f, %s %.1f, postgres %.1f; total %.1f (wall %.1f µs/message x 2 cores = %.1f)\n",
            pub * f, mq * f, name, ag * f, pg * f, (pub + mq + ag + pg) * f,
            (t1 - t0) * 1e6 / n, 2 * (t1 - t0) * 1e6 / n }'
}

if want 1; then
    section "1. parse + validate + row encoding (one core, the 7 example messages)"
    "$TOOLS/bench_validate" "$VECTORS" 2000000
fi
if ! want 2 && ! want 3 && ! want 4 && ! want 5; then
    exit 0
fi

start_mosquitto
start_postgres

# bare_subscriber QOS: spotsub receives N messages from spotsim.
bare_subscriber() {
    local qos=$1
    "$TOOLS/spotsub" --url "$MQTT_URL" --qos "$qos" --count "$N" \
        --timeout 300 --idle-timeout 10 --ready-file "$TEST_TMP/sub.$qos.ready" \
        >"$TEST_TMP/sub.$qos.log" 2>&1 &
    local sub=$!
    wait_for 10 "spotsub to subscribe" test -e "$TEST_TMP/sub.$qos.ready"
    cpu_mark "$sub"
    echo "publisher:  $(load "$qos" "$N" "bare$qos")"
    wait "$sub" || true
    local line
    line=$(tail -1 "$TEST_TMP/sub.$qos.log")
    echo "subscriber: $line"
    case $line in "received=$N "*) ;; *) echo "(the bare subscriber did not get all $N messages; its rate is of those it got)" ;; esac
    BARE_RATE=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$line")
    local cpu=${line##*cpu_s=}
    cpu_report "$N" spotsub "$(awk -v c="$cpu" -v u="$TICK_US" -v t="$CPU_AG" \
        'BEGIN { printf "%d", t + c * 1e6 / u }')"
}


# metric NAME: sets METRIC to the value of the sample NAME in the agent's
# /metrics (HTTP_PORT), read with bash's /dev/tcp: polling forks nothing
# and costs PostgreSQL nothing.
metric() {
    local line
    METRIC=
    exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" || return 1
    printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
    while IFS= read -r line <&3; do
        case $line in "$1 "*) METRIC=${line#"$1 "} ;; esac
    done
    exec 3<&-
    METRIC=${METRIC%$'\r'}
}
# pg_written_ge N: the agent's PostgreSQL sink has committed N rows.
pg_written_ge() {
    metric 'spotagent_sink_writes_total{sink="pg"}' && [ "${METRIC:-0}" -ge "$1" ]
}
exec 9<> <(:) # a pipe nobody writes to: `read -t` on it sleeps, unforked
pg_xacts() { psql_q "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"; }

# agent_run QOS KEY: spotsim publishes N aqo messages under apikey KEY;
# the rate is N / (time the last row committed - first MQTT arrival). The
# agent's row counter is polled every 20 ms. Stops the agent (its
# backend's statistics are complete once it has gone).
agent_run() {
    local qos=$1 key=$2
    local pub x0 end deadline=$((SECONDS + 600))
    x0=$(pg_xacts)
    cpu_mark "$AGENT_PID"
    pub=$(load "$qos" "$N" "$key")
    until pg_written_ge "$N"; do
        [ "$SECONDS" -lt "$deadline" ] || break
        read -rt 0.02 -u 9 || true
    done
    end=$EPOCHREALTIME
    cpu_report "$N" spotagent
    local first rows xacts
    first=$(psql_q "SELECT extract(epoch FROM min(received_at)) FROM air_quality WHERE apikey = '$key'")
    rows=$(pg_count air_quality "apikey = '$key'")
    [ "$rows" -ge "$N" ] || echo "(not all rows landed: $rows)"
    echo "publisher: $pub"
    stop_agent 60 >/dev/null || true
    forget_session "$AGENT_ID"
    xacts=$(($(pg_xacts) - x0 - 3))
    echo "PostgreSQL transactions: $xacts ($((rows / (xacts > 0 ? xacts : 1))) rows each)"
    awk -v n="$rows" -v a="$first" -v b="$end" \
        'BEGIN { printf "spotagent -> PostgreSQL: %d rows in %.2f s = %.0f msg/s (first arrival to last commit)\n", n, b - a, n / (b - a) }'
    E2E_RATE=$(awk -v n="$rows" -v a="$first" -v b="$end" 'BEGIN { printf "%d", n / (b - a) }')
}

# forget_session ID: ends the stopped agent's persistent session (a clean
# session connect with its client id). Otherwise Mosquitto queues every
# later run's messages for it, grows by gigabytes over a BENCH_REPEAT run
# and slows down.
forget_session() {
    mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -i "$1" -t spotagent/bench/none \
        -E -W 10 >/dev/null 2>&1 || echo "(could not end the session of $1)"
}

# Sections 2 and 3 alternate BENCH_REPEAT times, so that each end-to-end
# run has a bare-subscriber run of the same minute beside it (the shared
# cores drift by more than 10 % from one minute to the next).
REPEAT=${BENCH_REPEAT:-1}
ratios=() q0_rates=()
BASE_ID=$AGENT_ID
for ((rep = 1; rep <= REPEAT; rep++)); do
    tag=""
    [ "$REPEAT" -gt 1 ] && tag=" [run $rep of $REPEAT]"
    bare1=
    if want 2; then
        section "2. bare Paho subscriber, QoS 0 ($N messages)$tag"
        bare_subscriber 0
        section "2. bare Paho subscriber, QoS 1 ($N messages)$tag"
        bare_subscriber 1
        bare1=$BARE_RATE
    fi
    if want 3; then
        section "3. publisher -> Mosquitto -> spotagent -> PostgreSQL, QoS 1 ($N messages)$tag"
        HTTP_PORT=$(free_port)
        AGENT_ID="$BASE_ID-q1-$rep" AGENT_DATA=$TEST_TMP/agent-q1-$rep
        start_agent --mqtt-qos 1 --log-level warn --http-listen "127.0.0.1:$HTTP_PORT"
        agent_run 1 "e2eq1r$rep"
        if [ -n "$bare1" ]; then
            ratios+=("$(awk -v a="$E2E_RATE" -v b="$bare1" 'BEGIN { printf "%.1f", 100 * a / b }')")
            echo "QoS 1 end to end / bare subscriber: ${ratios[-1]} %"
        fi

        section "3. publisher -> Mosquitto -> spotagent -> PostgreSQL, QoS 0 ($N messages)$tag"
        AGENT_ID="$BASE_ID-q0-$rep" AGENT_DATA=$TEST_TMP/agent-q0-$rep
        start_agent --mqtt-qos 0 --log-level warn --http-listen "127.0.0.1:$HTTP_PORT"
        agent_run 0 "e2eq0r$rep"
        q0_rates+=("$E2E_RATE")
    fi
done
AGENT_ID=$BASE_ID
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
if [ "${#ratios[@]}" -gt 1 ]; then
    section "2-3. summary of $REPEAT alternating runs"
    echo "QoS 1 end to end / bare subscriber, per run: ${ratios[*]} (%); median $(median "${ratios[@]}") %"
    echo "QoS 0 end to end, per run: ${q0_rates[*]} (msg/s); median $(median "${q0_rates[@]}") msg/s"
fi

rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$AGENT_PID/status"; }
# pg_caught_up N: the agent received N messages and its PostgreSQL sink
# has nothing left to write.
pg_caught_up() {
    curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v n="$1" '
        $1 ~ /^spotagent_messages_received_total[{]/ { r += $2 }
        $1 == "spotagent_sink_backlog_messages{sink=\"pg\"}" { b = $2; seen = 1 }
        END { exit !(r >= n && seen && b == 0) }'
}

if want 4; then
    section "4. resident memory over $LONG messages (QoS 1)"
    HTTP_PORT=$(free_port)
    AGENT_ID="$AGENT_ID-mem"
    AGENT_DATA=$TEST_TMP/agent-mem
    start_agent --mqtt-qos 1 --log-level warn \
        --http-listen "127.0.0.1:$HTTP_PORT"
    cpu_mark "$AGENT_PID"
    load 1 "$LONG" longrun all >"$TEST_TMP/pub.long.log" 2>&1 &
    PUB=$!
    samples=()
    while kill -0 "$PUB" 2>/dev/null; do
        samples+=("$(rss_kb)")
        sleep 2
    done
    wait "$PUB" || true
    wait_until 600 pg_caught_up "$LONG" || echo "(the PostgreSQL sink did not catch up)"
    samples+=("$(rss_kb)")
    echo "publisher: $(tail -1 "$TEST_TMP/pub.long.log")"
    cpu_report "$LONG" spotagent
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
    forget_session "$AGENT_ID"
fi

want 5 || exit 0
section "5. publisher -> Mosquitto -> spotagent -> NGSI test server, QoS 1 ($N messages, all verticals)"
# A separate script (runnable alone); BENCH_AGENT_CMD and its companions
# are described there.
BENCH_N=$N bash "$REPO/scripts/bench-ngsi.sh"
