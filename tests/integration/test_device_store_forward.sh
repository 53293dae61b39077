#!/usr/bin/env bash
# Store and forward over a real Mosquitto. spotdevice measures every
# simulated minute (x600: one period per 0.1 s) while a subscriber with a
# persistent session records what arrives, in arrival order.
#  1. The broker is stopped for a while and restarted: the device keeps
#     measuring into its spool, its client status (resource 17) goes false
#     and back to true, and every period measured meanwhile arrives.
#  2. The broker is stopped again and the device is killed (SIGKILL) with
#     messages queued; a new device process on the same spool, started
#     while the broker is still down, sends them once the broker is back,
#     before its own; SIGTERM then flushes and exits 0.
# Checks: per topic, TimeInstants arrive in order (first occurrences; QoS 1
# may repeat what was in flight at a loss), with no hole from the first
# period to the last one measured, and nothing measured is missing.
source "$(dirname "$0")/lib.sh"

# beside the tools of the same build (make check: build/)
SPOTDEVICE=${SPOTDEVICE:-${TOOLS%/tools}/spotdevice}
[ -x "$SPOTDEVICE" ] || fail "spotdevice not found: $SPOTDEVICE"

S1=2026-01-05T00:00:00Z
S2=2026-01-06T00:00:00Z
SUB_ID=sfsub-$$

# status FILE KEY: one field of a --status file (booleans as 1 / 0).
status() {
    perl -MJSON::PP -e 'local $/; my $j = decode_json(<STDIN>);
        my $v = $j->{$ARGV[0]};
        print defined $v ? (ref $v ? ($v ? 1 : 0) : $v) : "null"' \
        "$2" <"$1" 2>/dev/null
}
status_is() { [ "$(status "$1" "$2")" = "$3" ]; }
status_ge() {
    local v
    v=$(status "$1" "$2") && [ -n "$v" ] && [ "$v" -ge "$3" ]
}

write_config() {
    cat >"$TEST_TMP/device.json" <<EOF
{
  "mqtt_client": {
    "enable": true, "transport": 1, "server": "mqtt://127.0.0.1",
    "port": $MQTT_PORT, "keep_alive": 20, "qos": 1,
    "topic_prefix": "/sfKey/dev1"
  },
  "device": {
    "serial_number": "SF-1", "period_min": 1, "seed": 3,
    "spool_dir": "$TEST_TMP/spool", "fsync_interval_ms": 100,
    "publish_window": 20
  },
  "sensors": {"aqo": {}, "nlo": {}, "dho": {}, "cfe": {}}
}
EOF
}

start_device() { # NAME START
    bg "$1" "$SPOTDEVICE" --config "$TEST_TMP/device.json" --speed 600 \
        --start "$2" --status "$TEST_TMP/$1.status" --log-level info
    DEV_PID=$BG_PID
}

start_mosquitto
write_config
"$SPOTDEVICE" --config "$TEST_TMP/device.json" --check-config >/dev/null ||
    fail "configuration rejected"

bg sub stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -i "$SUB_ID" -c -q 1 \
    -t '/+/+/attrs' -v
SUB_PID=$BG_PID
subscribed() { [ "$(mqtt_log_count "$SUB_ID 1 /\\+/\\+/attrs")" -gt 0 ]; }
wait_for 10 "the subscriber to subscribe" subscribed

# --- 1. broker outage ----------------------------------------------------------
start_device dev1 "$S1"
ST=$TEST_TMP/dev1.status
wait_for 20 "device connected and measuring" status_ge "$ST" periods 5
wait_for 10 "client status true" status_is "$ST" client_status 1
stop_mosquitto
wait_for 10 "client status false once the broker is gone" \
    status_is "$ST" client_status 0
p=$(status "$ST" periods)
wait_for 20 "25 periods measured while the broker is down" \
    status_ge "$ST" periods $((p + 25))
status_ge "$ST" queued 25 || fail "nothing queued during the outage"
restart_mosquitto
wait_for 30 "reconnected" status_is "$ST" client_status 1
m=$(status "$ST" messages)
wait_for 30 "the backlog sent" status_ge "$ST" acknowledged "$m"

# --- 2. killed with messages queued, restarted on the same spool ---------------
stop_mosquitto
wait_for 10 "client status false" status_is "$ST" client_status 0
p=$(status "$ST" periods)
wait_for 20 "10 more periods queued" status_ge "$ST" periods $((p + 10))
# Everything up to the status file's last TimeInstant is in the spool.
L1=$(status "$ST" last_time_instant)
kill -KILL "$DEV_PID"
wait "$DEV_PID" 2>/dev/null || true
log "device killed with $(status "$ST" queued) messages queued (last $L1)"

start_device dev2 "$S2"
ST2=$TEST_TMP/dev2.status
wait_for 20 "the new process measuring" status_ge "$ST2" periods 5
status_ge "$ST2" recovered 10 || fail "the queued messages were not found"
restart_mosquitto
wait_for 30 "second process connected" status_is "$ST2" client_status 1
m=$(($(status "$ST2" messages) + $(status "$ST2" recovered)))
wait_for 30 "everything sent" status_ge "$ST2" acknowledged "$m"
kill -TERM "$DEV_PID"
rc=0
wait_pid "$DEV_PID" 30 || rc=$?
assert_eq 0 "$rc" "spotdevice exit status after SIGTERM"
P2=$(status "$ST2" periods)
L2=$(status "$ST2" last_time_instant)
status_is "$ST2" queued 0 || fail "messages left queued after SIGTERM"

# Wait until the subscriber has the last period of every vertical topic.
have_last() {
    local t
    for t in "/sfKeyaqo/dev1_AQO/attrs" "/sfKeynlo/dev1_NLO/attrs" \
        "/sfKeydho/dev1_DHO/attrs"; do
        grep -F "$t " "$TEST_TMP/sub.log" | grep -qF "\"TimeInstant\":\"$L2\"" ||
            return 1
    done
}
wait_for 30 "the subscriber to receive the last period" have_last
kill -TERM "$SUB_PID" 2>/dev/null || true

# --- checks ------------------------------------------------------------------------
perl -MJSON::PP -MTime::Local -e '
    my ($s1, $l1, $s2, $l2, $p2) = @ARGV[0 .. 4];
    sub t { my ($y, $mo, $d, $h, $mi, $s) = $_[0] =~ /(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z/
                or die "bad time $_[0]\n";
            return timegm($s, $mi, $h, $d, $mo - 1, $y); }
    my (%seen, %last, %times, $bad);
    open my $f, "<", $ARGV[5] or die;
    while (<$f>) {
        chomp;
        my ($topic, $payload) = split / /, $_, 2;
        my $j = decode_json($payload);
        my $ti = t($j->{TimeInstant});
        my $key = "$topic $ti " . ($j->{visitorId} // "");
        next if $seen{$key}++;          # a QoS 1 repeat
        if (defined $last{$topic} && $ti < $last{$topic}) {
            print STDERR "out of order on $topic: $j->{TimeInstant} after ",
                scalar gmtime($last{$topic}), "\n";
            $bad = 1;
        }
        $last{$topic} = $ti;
        $times{$topic}{$ti} = 1 unless $topic =~ /cfe/;
    }
    my ($S1, $L1, $S2, $L2) = (t($s1), t($l1), t($s2), t($l2));
    for my $topic (sort keys %times) {
        my @ts = sort { $a <=> $b } keys %{ $times{$topic} };
        my @one = grep { $_ < $S2 } @ts;
        my @two = grep { $_ >= $S2 } @ts;
        # process 1: from the first period, without a hole, at least to L1
        if ($one[0] != $S1 || $one[-1] < $L1 ||
            @one != ($one[-1] - $S1) / 60 + 1) {
            printf STDERR "%s: process 1 sent %d periods from %s to %s; want " .
                "every minute from %s to at least %s\n", $topic, scalar @one,
                scalar gmtime($one[0]), scalar gmtime($one[-1]), $s1, $l1;
            $bad = 1;
        }
        # process 2: every period it measured
        if (@two != $p2 || $two[0] != $S2 || $two[-1] != $L2) {
            printf STDERR "%s: process 2: %d periods received, %d measured\n",
                $topic, scalar @two, $p2;
            $bad = 1;
        }
        printf STDERR "%s: %d + %d periods, in order, no hole\n", $topic,
            scalar @one, scalar @two;
    }
    die "no vertical topic received\n" unless %times;
    exit($bad ? 1 : 0);
' "$S1" "$L1" "$S2" "$L2" "$P2" "$TEST_TMP/sub.log" ||
    fail "store and forward lost or reordered messages (see above)"
log "store and forward: ok"
