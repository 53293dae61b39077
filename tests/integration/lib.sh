# shellcheck shell=bash
#
# Helpers for the integration tests: sourced by every tests/integration/
# test_*.sh. Each test gets a private Mosquitto and PostgreSQL on free
# loopback ports, throwaway directories, and one EXIT trap that stops every
# process it started and removes every directory, even on failure or
# Ctrl-C. When a test fails, the tails of its logs are printed.
#
# Environment:
#   SPOTAGENT  agent binary (default: build/asan/spotagent)
#   TOOLS      directory holding spotpub and spotsub (default: build/tools)
#   KEEP_TMP=1 keep the throwaway directory of a failed test
#
# Conventions: poll conditions with wait_until and a deadline; never sleep
# to synchronise an assertion.

set -Eeuo pipefail

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$LIB_DIR/../.." && pwd)
VECTORS=$REPO_ROOT/tests/fixtures/vectors
SPOTAGENT=${SPOTAGENT:-$REPO_ROOT/build/asan/spotagent}
TOOLS=${TOOLS:-$REPO_ROOT/build/tools}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
TEST_NAME=$(basename "${0%.sh}")

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/spotinteg.$TEST_NAME.XXXXXX")
# PostgreSQL runs as the postgres user when we are root: it must be able to
# traverse this directory.
chmod 755 "$TEST_TMP"

# Processes to stop at exit (pid list), commands to run then (at_exit),
# and other state.
_BG_PIDS=()
_AT_EXIT=()
_PORTS_TAKEN=" "
MQTT_PORT=
MQTT_URL=
MQTT_DIR=
MQTT_PID=
PG_PORT=
PG_DIR=
PG_URL=
PG_USER=spot
PG_DB=spot
AGENT_PID=
AGENT_ID="itest-$TEST_NAME-$$-$RANDOM"
AGENT_DATA=$TEST_TMP/agent-data
AGENT_RUNS=0
AGENT_STDOUT=
AGENT_STDERR=

log() {
    printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "$TEST_NAME" "$*" >&2
}

# --- cleanup ----------------------------------------------------------------

_print_logs() {
    local f
    for f in "$TEST_TMP"/*.log "$TEST_TMP"/agent.*.stderr \
        "$TEST_TMP"/agent.*.stdout "$TEST_TMP"/mqtt/mosquitto.log \
        "$TEST_TMP"/pg/postgres.log; do
        [ -s "$f" ] || continue
        echo "----- tail -n 60 ${f#"$TEST_TMP"/} -----" >&2
        tail -n 60 "$f" >&2 || true
    done
}

_cleanup() {
    local rc=$?
    trap - EXIT INT TERM ERR
    set +e
    if [ "$rc" -ne 0 ]; then
        echo "FAILED: $TEST_NAME (exit $rc); log tails follow (KEEP_TMP=1 keeps $TEST_TMP):" >&2
        _print_logs
    fi
    local p
    for p in "$AGENT_PID" "${_BG_PIDS[@]}"; do
        [ -n "$p" ] && kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    done
    local h
    for h in "${_AT_EXIT[@]}"; do
        eval "$h"
    done
    if [ -n "$MQTT_PID" ] && kill -0 "$MQTT_PID" 2>/dev/null; then
        kill -KILL "$MQTT_PID" 2>/dev/null
    fi
    if [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
        _as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 20 \
            stop >/dev/null 2>&1
    fi
    wait 2>/dev/null
    if [ "$rc" -ne 0 ] && [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $TEST_TMP" >&2
    else
        rm -rf "$TEST_TMP"
    fi
    exit "$rc"
}

# at_exit COMMAND: runs COMMAND (a string, eval'd) at exit, after the
# processes are killed and before the directories go (e.g. an umount).
at_exit() {
    _AT_EXIT+=("$1")
}

_on_err() {
    echo "error: line $1: command failed (exit $2): $3" >&2
}

trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap '_on_err "$LINENO" "$?" "$BASH_COMMAND"' ERR

# --- assertions and polling ---------------------------------------------------

fail() {
    echo "FAIL: $TEST_NAME: $*" >&2
    exit 1
}

# assert_eq EXPECTED ACTUAL [what]
assert_eq() {
    if [ "$1" != "$2" ]; then
        fail "${3:-value}: expected '$1', got '$2'"
    fi
}

# assert_ne UNEXPECTED ACTUAL [what]
assert_ne() {
    if [ "$1" = "$2" ]; then
        fail "${3:-value}: did not expect '$1'"
    fi
}

# assert_match REGEX ACTUAL [what]  (bash extended regex)
assert_match() {
    if ! [[ $2 =~ $1 ]]; then
        fail "${3:-value}: '$2' does not match /$1/"
    fi
}

_now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}

# wait_until TIMEOUT_S COMMAND...: runs COMMAND (output discarded) until it
# succeeds; returns 1 when TIMEOUT_S seconds pass first.
wait_until() {
    local timeout=$1
    shift
    local deadline=$(($(_now_ms) + timeout * 1000))
    while true; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if [ "$(_now_ms)" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.1
    done
}

# wait_for TIMEOUT_S WHAT COMMAND...: wait_until, or fail saying WHAT.
wait_for() {
    local timeout=$1 what=$2
    shift 2
    wait_until "$timeout" "$@" || fail "timed out after ${timeout}s: $what"
}

# --- ports ------------------------------------------------------------------

# True when nothing accepts connections on 127.0.0.1:$1.
_port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port: prints a port that nothing listens on and that this test did
# not hand out before, below the kernel's ephemeral range (client sockets
# take their source ports from that range: a port from it can be free when
# checked and taken by an outgoing connection when the server binds).
# Callers retry if a bind still loses the race with another process.
_PORT_LO=10000 _PORT_N=22000
if read -r _eph_lo _eph_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null &&
    [ "${_eph_lo:-0}" -gt 12000 ]; then
    _PORT_N=$((_eph_lo - _PORT_LO))
elif [ -n "${_eph_hi:-}" ] && [ "$_eph_hi" -lt 63000 ]; then
    _PORT_LO=$((_eph_hi + 1)) _PORT_N=$((65000 - _eph_hi))
fi
free_port() {
    local p i
    for i in $(seq 1 200); do
        p=$((_PORT_LO + (RANDOM * 32768 + RANDOM) % _PORT_N))
        case $_PORTS_TAKEN in *" $p "*) continue ;; esac
        if _port_free "$p"; then
            _PORTS_TAKEN="$_PORTS_TAKEN$p "
            echo "$p"
            return 0
        fi
    done
    fail "no free port found"
}

# --- background processes -----------------------------------------------------

# bg NAME COMMAND...: starts COMMAND in the background with stdout and
# stderr in $TEST_TMP/NAME.log; sets BG_PID; it is killed at exit.
bg() {
    local name=$1
    shift
    "$@" >"$TEST_TMP/$name.log" 2>&1 &
    BG_PID=$!
    _BG_PIDS+=("$BG_PID")
}

# wait_pid PID TIMEOUT_S: waits for a child; returns its exit status, or
# 124 (after killing it) when it outlived the deadline.
wait_pid() {
    local pid=$1 timeout=$2
    if ! wait_until "$timeout" _pid_gone "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        return 124
    fi
    local rc=0
    wait "$pid" || rc=$?
    return "$rc"
}

_pid_gone() {
    ! kill -0 "$1" 2>/dev/null || _is_zombie "$1"
}

_is_zombie() {
    local s
    s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$s" = Z ]
}

# --- Mosquitto ----------------------------------------------------------------

_write_mosquitto_conf() {
    local user
    user=$(id -un)
    cat >"$MQTT_DIR/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
# Persistent sessions and their queued QoS 1 messages survive a restart.
persistence true
persistence_location $MQTT_DIR/
autosave_interval 60
# Never truncate a persistent session's queue in a test.
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 0
max_inflight_bytes 0
message_size_limit 0
log_dest file $MQTT_DIR/mosquitto.log
log_type error
log_type warning
log_type notice
log_type information
log_type subscribe
connection_messages true
log_timestamp true
user $user
EOF
}

_mosquitto_launch() {
    mosquitto -c "$MQTT_DIR/mosquitto.conf" >>"$MQTT_DIR/stderr.log" 2>&1 &
    MQTT_PID=$!
    if wait_until 10 _mosquitto_listening; then
        return 0
    fi
    kill -KILL "$MQTT_PID" 2>/dev/null || true
    wait "$MQTT_PID" 2>/dev/null || true
    MQTT_PID=
    return 1
}

_mosquitto_listening() {
    kill -0 "$MQTT_PID" 2>/dev/null && ! _port_free "$MQTT_PORT"
}

# reserve_mosquitto: picks the broker's port and directory without
# starting it (sets MQTT_PORT, MQTT_URL, MQTT_DIR); launch_mosquitto
# starts it there later.
reserve_mosquitto() {
    MQTT_DIR=$TEST_TMP/mqtt
    mkdir -p "$MQTT_DIR"
    MQTT_PORT=$(free_port)
    MQTT_URL=mqtt://127.0.0.1:$MQTT_PORT
}

launch_mosquitto() {
    _write_mosquitto_conf
    _mosquitto_launch || fail "mosquitto did not start on $MQTT_PORT"
    log "mosquitto on $MQTT_PORT (pid $MQTT_PID)"
}

# start_mosquitto: private broker; sets MQTT_PORT, MQTT_URL, MQTT_DIR.
start_mosquitto() {
    MQTT_DIR=$TEST_TMP/mqtt
    mkdir -p "$MQTT_DIR"
    local try
    for try in 1 2 3 4 5; do
        MQTT_PORT=$(free_port)
        _write_mosquitto_conf
        if _mosquitto_launch; then
            MQTT_URL=mqtt://127.0.0.1:$MQTT_PORT
            log "mosquitto on $MQTT_PORT (pid $MQTT_PID)"
            return 0
        fi
        log "mosquitto could not start on $MQTT_PORT, retrying"
    done
    fail "mosquitto did not start"
}

# stop_mosquitto: graceful (SIGTERM: saves the persistence file).
stop_mosquitto() {
    [ -n "$MQTT_PID" ] || return 0
    kill -TERM "$MQTT_PID" 2>/dev/null || true
    wait_pid "$MQTT_PID" 20 || true
    MQTT_PID=
    log "mosquitto stopped"
}

# restart_mosquitto: same port, same persistence.
restart_mosquitto() {
    stop_mosquitto
    local try
    for try in $(seq 1 50); do
        _mosquitto_launch && {
            log "mosquitto restarted on $MQTT_PORT (pid $MQTT_PID)"
            return 0
        }
        sleep 0.2 # the port may linger a moment; retry the same port
    done
    fail "mosquitto did not restart on port $MQTT_PORT"
}

# mqtt_log_count REGEX: lines of the broker log matching REGEX (grep -E).
mqtt_log_count() {
    local n
    n=$(grep -cE -- "$1" "$MQTT_DIR/mosquitto.log" 2>/dev/null) || true
    echo "${n:-0}"
}

# --- PostgreSQL ---------------------------------------------------------------

# Runs a PostgreSQL command as the postgres user when we are root (the
# server refuses to run as root).
_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_pg_start_server() {
    _as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" \
        -w -t 60 start >/dev/null
}

# start_postgres: initdb + start on a free port; creates database $PG_DB
# owned by superuser $PG_USER (trust auth, 127.0.0.1 only). Sets PG_PORT,
# PG_URL.
start_postgres() {
    PG_DIR=$TEST_TMP/pg
    mkdir -p "$PG_DIR/sock"
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$PG_DIR"
    _as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$PG_USER" -A trust \
        -E UTF8 --no-locale --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
        {
            cat "$PG_DIR/initdb.log" >&2
            fail "initdb failed"
        }
    local try
    for try in 1 2 3 4 5; do
        PG_PORT=$(free_port)
        _as_pg tee -a "$PG_DIR/data/postgresql.conf" >/dev/null <<EOF
# spotagent integration tests
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR/sock'
# fsync off: fast, and safe as long as the machine does not crash. Keep
# synchronous_commit on: an immediate shutdown would otherwise lose commits
# the agent was told about (test_pg_restart).
fsync = off
full_page_writes = off
max_connections = 50
shared_buffers = 32MB
log_min_messages = warning
EOF
        if _pg_start_server; then
            break
        fi
        log "postgres could not start on $PG_PORT, retrying"
        PG_PORT=
    done
    [ -n "$PG_PORT" ] || fail "postgres did not start"
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$PG_DB"
    PG_URL="host=127.0.0.1 port=$PG_PORT dbname=$PG_DB user=$PG_USER"
    log "postgres on $PG_PORT"
}

# stop_postgres [MODE]: MODE fast (default) or immediate.
stop_postgres() {
    _as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m "${1:-fast}" -w -t 60 \
        stop >/dev/null
    log "postgres stopped"
}

# restart_postgres [MODE]: stops it (if running) and starts it again on the
# same port and data.
restart_postgres() {
    if [ -f "$PG_DIR/data/postmaster.pid" ]; then
        stop_postgres "${1:-fast}"
    fi
    local try
    for try in $(seq 1 20); do
        _pg_start_server && {
            log "postgres restarted on $PG_PORT"
            return 0
        }
        sleep 0.5
    done
    fail "postgres did not restart on $PG_PORT"
}

# psql_q SQL: runs SQL, prints unaligned tuples-only output.
psql_q() {
    "$PG_BIN/psql" -AtX -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
        -U "$PG_USER" -d "$PG_DB" -f - <<<"$1"
}

# pg_count TABLE [WHERE]: number of rows (fails when the table is missing).
pg_count() {
    psql_q "SELECT count(*) FROM $1${2:+ WHERE $2}"
}

# pg_count_is N TABLE [WHERE]: for wait_until.
pg_count_is() {
    local n
    n=$(pg_count "$2" "${3:-}") && [ "$n" = "$1" ]
}

# pg_count_ge N TABLE [WHERE]: for wait_until.
pg_count_ge() {
    local n
    n=$(pg_count "$2" "${3:-}") && [ "$n" -ge "$1" ]
}

# --- the agent ------------------------------------------------------------------

# start_agent [EXTRA ARGS...]: starts $SPOTAGENT against the test's broker,
# with the PostgreSQL sink when start_postgres ran (unless AGENT_NO_PG=1),
# client id $AGENT_ID and data dir $AGENT_DATA. Waits until the broker saw
# it connect (and, the first time this client id connects, subscribe).
# Sets AGENT_PID, AGENT_STDOUT, AGENT_STDERR. With AGENT_NO_WAIT=1 it
# returns once the process is started (no broker yet, or one expected to
# refuse).
start_agent() {
    [ -x "$SPOTAGENT" ] || fail "agent binary not found: $SPOTAGENT"
    AGENT_RUNS=$((AGENT_RUNS + 1))
    AGENT_STDOUT=$TEST_TMP/agent.$AGENT_RUNS.stdout
    AGENT_STDERR=$TEST_TMP/agent.$AGENT_RUNS.stderr
    local args=(--mqtt-url "$MQTT_URL" --mqtt-client-id "$AGENT_ID"
        --data-dir "$AGENT_DATA" --http-listen off --log-level info)
    if [ -n "$PG_URL" ] && [ "${AGENT_NO_PG:-0}" != 1 ]; then
        args+=(--pg-url "$PG_URL")
    fi
    local id_re=${AGENT_ID//./\\.}
    local conn_before sub_before
    conn_before=$(mqtt_log_count "New client connected from .* as $id_re ")
    sub_before=$(mqtt_log_count ": $id_re [0-2] ")
    # Background jobs of a non-interactive shell ignore SIGINT; give the
    # agent the default disposition, as from a terminal.
    env --default-signal=INT "$SPOTAGENT" "${args[@]}" "$@" \
        >"$AGENT_STDOUT" 2>"$AGENT_STDERR" &
    AGENT_PID=$!
    log "agent started (pid $AGENT_PID, run $AGENT_RUNS)"
    [ "${AGENT_NO_WAIT:-0}" = 1 ] && return 0
    local deadline=$(($(_now_ms) + 30000))
    while true; do
        if ! kill -0 "$AGENT_PID" 2>/dev/null; then
            local rc=0
            wait "$AGENT_PID" || rc=$?
            AGENT_PID=
            fail "agent exited during start-up (exit $rc)"
        fi
        if [ "$(mqtt_log_count "New client connected from .* as $id_re ")" \
            -gt "$conn_before" ]; then
            if [ "$conn_before" -gt 0 ] ||
                [ "$(mqtt_log_count ": $id_re [0-2] ")" -gt "$sub_before" ]; then
                return 0
            fi
        fi
        [ "$(_now_ms)" -lt "$deadline" ] ||
            fail "agent did not connect/subscribe to the broker within 30s"
        sleep 0.1
    done
}

# stop_agent [TIMEOUT_S]: SIGTERM, wait up to TIMEOUT_S (default 30);
# returns the agent's exit code (124 if it had to be killed).
stop_agent() {
    [ -n "$AGENT_PID" ] || return 0
    kill -TERM "$AGENT_PID" 2>/dev/null || true
    local rc=0
    wait_pid "$AGENT_PID" "${1:-30}" || rc=$?
    log "agent stopped (exit $rc)"
    AGENT_PID=
    return "$rc"
}

# kill9_agent: SIGKILL, reaped.
kill9_agent() {
    [ -n "$AGENT_PID" ] || return 0
    kill -KILL "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
    log "agent killed with SIGKILL"
    AGENT_PID=
}

# agent_alive: for assertions that it did not crash.
agent_alive() {
    [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null &&
        ! _is_zombie "$AGENT_PID"
}

# --- publishing -------------------------------------------------------------------

# spotpub ARGS...: runs the publisher against the test broker, in the
# foreground, with its output in $TEST_TMP/spotpub.log (appended).
spotpub() {
    "$TOOLS/spotpub" --url "$MQTT_URL" "$@" >>"$TEST_TMP/spotpub.log" 2>&1
}

# publish_file TOPIC FILE [QOS]
publish_file() {
    spotpub --qos "${3:-1}" --topic "$1" --file "$2" --quiet ||
        fail "publishing $2 on $1 failed"
}

# publish_payload TOPIC STRING [QOS]
publish_payload() {
    spotpub --qos "${3:-1}" --topic "$1" --payload "$2" --quiet ||
        fail "publishing on $1 failed"
}

# hex_of_file FILE: lower-case hex of FILE's bytes, one line (as
# PostgreSQL's encode(x, 'hex')).
hex_of_file() {
    od -An -v -tx1 "$1" | tr -d ' \n'
}

# json_valid STRING: true when STRING is exactly one JSON value. Uses
# perl's core JSON::PP (perl comes with postgresql on Debian), else python3,
# else jq.
json_valid() {
    if command -v perl >/dev/null 2>&1 && perl -MJSON::PP -e 1 2>/dev/null; then
        printf '%s' "$1" |
            perl -MJSON::PP -e 'local $/; JSON::PP->new->decode(<STDIN>)' \
                2>/dev/null
    elif command -v python3 >/dev/null 2>&1; then
        printf '%s' "$1" |
            python3 -c 'import json,sys; json.loads(sys.stdin.read())' \
                2>/dev/null
    else
        printf '%s' "$1" | jq -e . >/dev/null 2>&1
    fi
}

# --- PostgreSQL assertions over the vertical tables (contract §4) -------------

VERTICAL_TABLES=(air_quality noise_level weather crowd_count crowd_event
    device_info device_health)

# _natural_key TABLE: the table's natural key columns.
_natural_key() {
    case $1 in
    crowd_event) echo "apikey, device_id, time_instant, visitor_id" ;;
    *) echo "apikey, device_id, time_instant" ;;
    esac
}

# pg_total_rows: rows in all vertical tables together.
pg_total_rows() {
    local t sql=""
    for t in "${VERTICAL_TABLES[@]}"; do
        sql="$sql${sql:+ + }(SELECT count(*) FROM $t)"
    done
    psql_q "SELECT $sql"
}

# pg_total_is N / pg_total_ge N: for wait_until.
pg_total_is() {
    local n
    n=$(pg_total_rows) && [ "$n" = "$1" ]
}

pg_total_ge() {
    local n
    n=$(pg_total_rows) && [ "$n" -ge "$1" ]
}

# assert_no_duplicates: in every vertical table, count(*) equals the
# number of distinct natural keys.
assert_no_duplicates() {
    local t all distinct
    for t in "${VERTICAL_TABLES[@]}"; do
        all=$(pg_count "$t")
        distinct=$(psql_q "SELECT count(*) FROM (SELECT DISTINCT $(_natural_key "$t") FROM $t) d")
        assert_eq "$all" "$distinct" "distinct natural keys in $t"
    done
}

# wait_total N TIMEOUT_S: waits until the vertical tables hold N rows (fails
# on timeout, or when more than N landed), saying how many landed.
wait_total() {
    local n=$1 timeout=$2
    if ! wait_until "$timeout" pg_total_ge "$n"; then
        fail "expected $n rows within ${timeout}s, have $(pg_total_rows 2>/dev/null || echo '?')"
    fi
    assert_eq "$n" "$(pg_total_rows)" "rows in the vertical tables"
}

# --- the agent's HTTP endpoint (--http-listen) ---------------------------------

# agent_http_port: picks a free port for the agent's endpoint; sets
# AGENT_HTTP_PORT and AGENT_HTTP (base URL). Pass
# --http-listen "127.0.0.1:$AGENT_HTTP_PORT" to start_agent.
agent_http_port() {
    AGENT_HTTP_PORT=$(free_port)
    AGENT_HTTP=http://127.0.0.1:$AGENT_HTTP_PORT
}

# ep_get PATH: GET on the agent's endpoint; sets EP_CODE (000 when it did
# not answer) and EP_BODY.
ep_get() {
    local out=$TEST_TMP/ep.body
    EP_CODE=$(curl -s -o "$out" -w '%{http_code}' --max-time 10 \
        "$AGENT_HTTP$1") || EP_CODE=000
    EP_BODY=$(cat "$out" 2>/dev/null || true)
}

# ep_status_is CODE PATH: for wait_until.
ep_status_is() {
    ep_get "$2"
    [ "$EP_CODE" = "$1" ]
}

# ep_ready_down NAME: /ready is 503 and its "down" list names NAME.
ep_ready_down() {
    ep_get /ready
    [ "$EP_CODE" = 503 ] && [[ $EP_BODY == *'"down":['*"\"$1\""* ]]
}

# ep_metric SERIES: the value of one series of /metrics (e.g.
# 'spotagent_journal_full'), or "absent".
ep_metric() {
    curl -s --max-time 10 "$AGENT_HTTP/metrics" |
        awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? "absent" : v) }'
}

# ep_metric_is VALUE SERIES / ep_metric_ge N SERIES: for wait_until.
ep_metric_is() {
    [ "$(ep_metric "$2")" = "$1" ]
}

ep_metric_ge() {
    local v
    v=$(ep_metric "$2")
    [ "$v" != absent ] && awk -v v="$v" -v n="$1" 'BEGIN { exit !(v >= n) }'
}

# --- expected rejects ---------------------------------------------------------

# reject_case REASON WHAT TOPIC FILE: expect one rejected_message row with
# REASON, TOPIC and FILE's bytes as its payload (the caller publishes).
n_cases=0
CASE_TOPIC=()
CASE_FILE=()
CASE_REASON=()
CASE_WHAT=()
reject_case() {
    CASE_REASON+=("$1")
    CASE_WHAT+=("$2")
    CASE_TOPIC+=("$3")
    CASE_FILE+=("$4")
    n_cases=$((n_cases + 1))
}

# check_reject_cases: every reject_case is one row with its reason and a
# non-empty detail (topics compared byte for byte); fails naming each one
# that is not.
check_reject_cases() {
    local i hex thex row n reason has_detail detail what failures=0
    for i in $(seq 0 $((n_cases - 1))); do
        hex=$(hex_of_file "${CASE_FILE[$i]}")
        printf '%s' "${CASE_TOPIC[$i]}" >"$TEST_TMP/case-topic.bin"
        thex=$(hex_of_file "$TEST_TMP/case-topic.bin")
        row=$(psql_q "SELECT count(*), string_agg(reason, ','),
                             bool_and(coalesce(detail, '') <> ''), max(detail)
                      FROM rejected_message
                      WHERE convert_to(topic, 'UTF8') = decode('$thex', 'hex')
                        AND payload = decode('$hex', 'hex')")
        IFS='|' read -r n reason has_detail detail <<<"$row"
        what="${CASE_WHAT[$i]} (topic ${CASE_TOPIC[$i]:0:120})"
        if [ "$n" != 1 ]; then
            echo "case '$what': expected 1 rejected_message row, found $n" >&2
            failures=$((failures + 1))
        elif [ "$reason" != "${CASE_REASON[$i]}" ]; then
            echo "case '$what': expected reason ${CASE_REASON[$i]}, got $reason (${detail:0:200})" >&2
            failures=$((failures + 1))
        elif [ "$has_detail" != t ]; then
            echo "case '$what': empty detail" >&2
            failures=$((failures + 1))
        else
            log "ok: $what -> $reason: ${detail:0:120}"
        fi
    done
    [ "$failures" -eq 0 ] || fail "$failures of $n_cases reject cases wrong"
}
