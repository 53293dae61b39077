# Helpers for the tests that talk to the NGSI test server
# (tests/servers/ngsi_server.c), sourced after lib.sh.
#
#   NGSI_SERVER     the server binary (default $TOOLS/../servers/ngsi_server)
#   start_ngsi NAME [ARGS...]   starts it on a free port
#   ngsi METHOD PATH [CURL ARGS...]   one request to it
#   expected_last N START / stored_v2   a spotpub aqo stream's last
#                   measures, expected and as stored

NGSI_SERVER=${NGSI_SERVER:-$TOOLS/../servers/ngsi_server}
[ -x "$NGSI_SERVER" ] ||
    fail "NGSI test server not found: $NGSI_SERVER (build it: make tools)"

NGSI_PID=
NGSI_PORT=
NGSI_URL=
# CA bundle that verifies the server's certificate, when it serves HTTPS
# (start_ngsi NAME --tls-cert C --tls-key K); ngsi passes it to curl.
NGSI_CA=

_ngsi_up_or_dead() {
    [ -s "$1" ] || ! kill -0 "$2" 2>/dev/null
}

# start_ngsi NAME [ARGS...]: the server on a free port (retrying if the bind
# loses a race), requests logged to $TEST_TMP/NAME.requests.log, its output
# in $TEST_TMP/NAME.log; sets NGSI_PID, NGSI_PORT and NGSI_URL (https://
# when ARGS has --tls-cert).
start_ngsi() {
    local name=$1 _try port pf scheme=http
    shift
    [[ " $* " == *" --tls-cert "* ]] && scheme=https
    pf=$TEST_TMP/$name.port
    for _try in 1 2 3 4 5; do
        rm -f "$pf"
        port=$(free_port)
        bg "$name" "$NGSI_SERVER" --port "$port" --port-file "$pf" \
            --log "$TEST_TMP/$name.requests.log" "$@"
        wait_until 10 _ngsi_up_or_dead "$pf" "$BG_PID" || true
        if [ -s "$pf" ]; then
            NGSI_PID=$BG_PID
            NGSI_PORT=$(cat "$pf")
            assert_eq "$port" "$NGSI_PORT" "port in --port-file"
            NGSI_URL=$scheme://127.0.0.1:$NGSI_PORT
            log "$name at $NGSI_URL (pid $NGSI_PID)"
            return 0
        fi
        kill -KILL "$BG_PID" 2>/dev/null || true
        wait "$BG_PID" 2>/dev/null || true
        log "$name could not start on $port, retrying"
    done
    fail "$name did not start: $(tail -n 3 "$TEST_TMP/$name.log" 2>/dev/null)"
}

# ngsi METHOD PATH [CURL ARGS...]: sets ST (HTTP status, or curl-failed)
# and BODY.
ngsi() {
    local method=$1 path=$2 ca=()
    shift 2
    [ -n "$NGSI_CA" ] && ca=(--cacert "$NGSI_CA")
    rm -f "$TEST_TMP/ngsi.body"
    ST=$(curl -sS -o "$TEST_TMP/ngsi.body" -w '%{http_code}' -X "$method" \
        "${ca[@]}" "$@" "$NGSI_URL$path") || ST=curl-failed
    BODY=$(cat "$TEST_TMP/ngsi.body" 2>/dev/null || true)
}

# expected_last N START: "id TimeInstant" of each device's last message of
# a spotpub aqo stream of N messages over $D devices from START, $PERIOD
# minutes apart per device (spotpub's default is 5), sorted.
expected_last() {
    local n=$1 start=$2 d j
    for ((d = 0; d < D; d++)); do
        j=$(((n - 1 - d) / D))
        printf 'urn:ngsi-ld:AirQualityObserved:dev%d %s\n' "$d" \
            "$(date -u -d "@$((start + j * PERIOD * 60))" +%Y-%m-%dT%H:%M:%S.000Z)"
    done | sort
}

# stored_v2: "id TimeInstant" of every AirQualityObserved NGSI-v2 entity
# (default service), sorted; fails when the server does not answer 200.
stored_v2() {
    ngsi GET '/v2/entities?type=AirQualityObserved&limit=1000&attrs=TimeInstant'
    [ "$ST" = 200 ] || return 1
    perl -MJSON::PP -e 'local $/;
        for my $e (@{decode_json(<STDIN>)}) {
            print "$e->{id} $e->{TimeInstant}{value}\n" }' <<<"$BODY" | sort
}
