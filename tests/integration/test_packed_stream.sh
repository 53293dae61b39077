#!/usr/bin/env bash
# A publisher that packs many PUBLISH packets into each TCP write (spotpub
# --raw, the bench's lean load generator): at QoS 1 and at QoS 0 every
# message lands exactly once, every vertical in its table, and the agent
# counts as many messages received as were published. It also keeps the
# raw publisher honest: its summary says what the broker took.
source "$(dirname "$0")/lib.sh"

N=7000 # 1,000 per vertical
start_mosquitto
start_postgres
HTTP_PORT=$(free_port)
start_agent --http-listen "127.0.0.1:$HTTP_PORT"

for qos in 1 0; do
    out=$("$TOOLS/spotpub" --raw --url "$MQTT_URL" --qos "$qos" --count "$N" \
        --devices 50 --vertical all --apikey "packed$qos" --inflight 500 --quiet) ||
        fail "spotpub --raw at QoS $qos: $out"
    assert_match "^sent=$N acked=$N " "$out" "raw publisher summary at QoS $qos"
done

total_of() { # APIKEY-PREFIX: rows over the vertical tables
    local t sum=0
    for t in "${VERTICAL_TABLES[@]}"; do
        sum=$((sum + $(pg_count "$t" "apikey LIKE '$1%'")))
    done
    echo "$sum"
}
both_landed() { [ "$(total_of packed1)" -ge "$N" ] && [ "$(total_of packed0)" -ge "$N" ]; }
wait_for 120 "2 x $N rows" both_landed

for qos in 1 0; do
    assert_eq "$N" "$(total_of "packed$qos")" "rows of the QoS $qos stream"
    for t in "${VERTICAL_TABLES[@]}"; do
        assert_eq 1000 "$(pg_count "$t" "apikey LIKE 'packed$qos%'")" "$t rows at QoS $qos"
    done
done
assert_no_duplicates
assert_eq 0 "$(pg_count rejected_message)" "nothing rejected"
received=$(curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" |
    awk '$1 ~ /^spotagent_messages_received_total[{]/ { n += $2 } END { print n + 0 }')
assert_eq $((2 * N)) "$received" "messages received (metrics)"

# Option errors are clear, not silent.
err=$("$TOOLS/spotpub" --raw --url "ws://127.0.0.1:$MQTT_PORT" --quiet 2>&1) &&
    fail "spotpub --raw accepted a ws:// URL"
assert_match "mqtt://host:port" "$err" "raw publisher URL error"
err=$("$TOOLS/spotpub" --raw --qos 2 --url "$MQTT_URL" 2>&1) &&
    fail "spotpub --raw accepted QoS 2"
assert_match "QoS 0 or 1" "$err" "raw publisher QoS error"
