#!/usr/bin/env bash
# The data directory in trouble.
#  1. Start-up: a data dir that cannot be created (a path through a
#     regular file), one the agent may not write (run as "nobody" when we
#     are root), and one on a full file system: each is a clear one-line
#     error naming the path and the reason, exit status 1, no crash.
#  2. At run time, the file system fills up (a 2 MB tmpfs, PostgreSQL down,
#     more published than fits): the agent stops taking messages (the
#     broker keeps them), stays up, /ready names "journal"; once
#     PostgreSQL is back the sink drains the journal, space comes back,
#     intake resumes by itself and every message lands exactly once. A
#     SIGTERM while the disk is full exits promptly.
# The tmpfs parts need mount(2) (root in a privileged environment); where
# mounting is refused they are skipped, saying so.
source "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || fail "curl is not installed"

start_mosquitto
start_postgres

# start_fails WHAT WANT ARGS...: the agent exits 1 within 30 s, its
# stderr says WANT (a grep -E pattern), no sanitizer report.
start_fails() {
    local what=$1 want=$2
    shift 2
    local err=$TEST_TMP/startfail.err rc=0
    timeout 30 "$@" --mqtt-url "$MQTT_URL" --pg-url "$PG_URL" \
        --http-listen off --mqtt-client-id "$AGENT_ID-x" \
        >/dev/null 2>"$err" || rc=$?
    [ "$rc" = 1 ] || fail "$what: exit status $rc, want 1: $(tail -n 5 "$err")"
    grep -qE -- "$want" "$err" ||
        fail "$what: stderr does not say /$want/: $(tail -n 5 "$err")"
    ! grep -q "Sanitizer\|runtime error" "$err" ||
        fail "$what: sanitizer report: $(cat "$err")"
    log "ok: $what: $(grep -E -- "$want" "$err" | head -n 1)"
}

# --- 1. start-up ----------------------------------------------------------------
touch "$TEST_TMP/a-file"
start_fails "data dir below a regular file" \
    "cannot create $TEST_TMP/a-file/sub: Not a directory" \
    "$SPOTAGENT" --data-dir "$TEST_TMP/a-file/sub"

RO=$TEST_TMP/readonly
mkdir -p "$RO"
if [ "$(id -u)" -eq 0 ]; then
    # root writes anywhere: run the agent as an unprivileged user
    chmod 755 "$RO"
    start_fails "data dir not writable" \
        "$RO/journal.*Permission denied" \
        runuser -u nobody -- "$SPOTAGENT" --data-dir "$RO"
else
    chmod 555 "$RO"
    start_fails "data dir not writable" "$RO/journal.*Permission denied" \
        "$SPOTAGENT" --data-dir "$RO"
fi

SMALL=$TEST_TMP/small
mkdir -p "$SMALL"
if ! mount -t tmpfs -o size=2m,mode=0755 tmpfs "$SMALL" 2>"$TEST_TMP/mount.err"; then
    log "SKIPPED the full file system parts: cannot mount a tmpfs ($(cat "$TEST_TMP/mount.err"))"
    exit 0
fi
at_exit 'umount -l "$SMALL" 2>/dev/null' 

dd if=/dev/zero of="$SMALL/fill" bs=64k 2>/dev/null || true
start_fails "full file system" "No space left on device" \
    "$SPOTAGENT" --data-dir "$SMALL/agent"
rm -rf "$SMALL/fill" "$SMALL/agent"

# --- 2. the file system fills up at run time -------------------------------------
AGENT_DATA=$SMALL/agent
agent_http_port
AGENT_ARGS=(--journal-max-mb 64 --http-listen "127.0.0.1:$AGENT_HTTP_PORT")
start_agent "${AGENT_ARGS[@]}"
spotpub --qos 1 --count 50 --devices 2 --vertical aqo --apikey warmkey \
    --quiet || fail "spotpub warm-up failed"
wait_total 50 60

stop_postgres
N=12000 # ~3 MB of journal records on a 2 MB file system
bg pub "$TOOLS/spotpub" --url "$MQTT_URL" --qos 1 --count "$N" --devices 8 \
    --vertical aqo --apikey diskkey --start 1700000000 --inflight 200
pub=$BG_PID
wait_pid "$pub" 120 || fail "spotpub failed (exit $?): $(cat "$TEST_TMP/pub.log")"
wait_for 60 "/ready names journal (disk full)" ep_ready_down journal
log "/ready with a full disk: $EP_BODY"
grep -q "No space left on device" "$AGENT_STDERR" ||
    fail "the disk-full error is not logged"
agent_alive || fail "agent died when the disk filled up"
ep_status_is 200 /health || fail "/health is $EP_CODE with a full disk"

# SIGTERM while the disk is full: prompt, and nothing it acknowledged is
# lost (checked by the final count).
t0=$SECONDS
rc=0
stop_agent 30 || rc=$?
log "SIGTERM with a full disk: exit $rc after $((SECONDS - t0)) s"
[ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "exit status $rc after SIGTERM with a full disk"
[ $((SECONDS - t0)) -le 20 ] || fail "SIGTERM took $((SECONDS - t0)) s"

# Back up, still full; then PostgreSQL returns: intake resumes by itself.
start_agent "${AGENT_ARGS[@]}"
restart_postgres
wait_total $((N + 50)) 180
assert_no_duplicates
assert_eq 0 "$(pg_count rejected_message)" "rejected messages"
wait_for 30 "/ready says ready again" ep_status_is 200 /ready

agent_alive || fail "agent died"
stop_agent || fail "agent exited with status $?"
