# shellcheck shell=bash
#
# Helpers for test_tls.sh and test_deploy_files.sh, sourced after lib.sh:
# a throwaway PKI made with openssl, and private Mosquitto brokers started
# from test copies of the shipped configurations in deploy/mosquitto/ (paths
# moved into the test's directory, the listener moved to a free loopback
# port, logging to a file). Every broker is started with lib.sh's bg, so
# lib.sh's EXIT trap stops it.

DEPLOY=$REPO_ROOT/deploy

# --- PKI ------------------------------------------------------------------

# _pki_key FILE: a P-256 private key (fast to make, supported everywhere).
_pki_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$1" 2>/dev/null
}

# _pki_ca DIR NAME CN: self-signed CA DIR/NAME.pem with key DIR/NAME.key.
_pki_ca() {
    _pki_key "$1/$2.key"
    openssl req -x509 -new -key "$1/$2.key" -out "$1/$2.pem" -days 2 \
        -subj "/CN=$3" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# _pki_cert DIR NAME CN CA EXTENSIONS: DIR/NAME.pem signed by DIR/CA.pem.
_pki_cert() {
    local d=$1 name=$2 cn=$3 ca=$4 ext=$5
    _pki_key "$d/$name.key"
    openssl req -new -key "$d/$name.key" -out "$d/$name.csr" \
        -subj "/CN=$cn" 2>/dev/null
    printf '%b\n' "$ext" >"$d/$name.ext"
    openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.pem" \
        -CAkey "$d/$ca.key" -CAcreateserial -out "$d/$name.pem" -days 2 \
        -extfile "$d/$name.ext" 2>/dev/null
}

# make_pki DIR: a CA ("ca") and, signed by it: server (SAN IP:127.0.0.1,
# DNS:localhost), server-wrongsan (SAN DNS:broker.invalid only), agent
# (CN=spotagent), device (CN=SmartSpot_AQ_1), device2 (CN=SmartSpot_AQ_2);
# plus another CA ("rogue-ca") and rogue-agent (CN=spotagent) signed by it.
make_pki() {
    local d=$1
    mkdir -p "$d"
    local srv='basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth'
    local cli='basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth'
    _pki_ca "$d" ca "spotagent test CA"
    _pki_cert "$d" server localhost ca \
        "$srv\nsubjectAltName=IP:127.0.0.1,DNS:localhost"
    _pki_cert "$d" server-wrongsan broker.invalid ca \
        "$srv\nsubjectAltName=DNS:broker.invalid"
    _pki_cert "$d" agent spotagent ca "$cli"
    _pki_cert "$d" device SmartSpot_AQ_1 ca "$cli"
    _pki_cert "$d" device2 SmartSpot_AQ_2 ca "$cli"
    _pki_ca "$d" rogue-ca "someone else's CA"
    _pki_cert "$d" rogue-agent spotagent rogue-ca "$cli"
    local f
    for f in ca server server-wrongsan agent device device2 rogue-agent; do
        [ -s "$d/$f.pem" ] || fail "openssl did not make $d/$f.pem"
    done
}

# --- brokers from deploy/mosquitto ------------------------------------------

# deploy_mosquitto_conf SRC DIR PORT: writes DIR/mosquitto.conf, a test copy
# of deploy/mosquitto/SRC: /mosquitto/config/ -> DIR/, /mosquitto/data/ ->
# DIR/data/, the listener on 127.0.0.1:PORT, logs (everything) to
# DIR/mosquitto.log, run as the current user. The copy differs from the
# original only in those lines.
deploy_mosquitto_conf() {
    local src=$DEPLOY/mosquitto/$1 dir=$2 port=$3
    [ -f "$src" ] || fail "missing $src"
    mkdir -p "$dir/data"
    sed -e "s#/mosquitto/config/#$dir/#g" \
        -e "s#/mosquitto/data/#$dir/data/#g" \
        -e "s#^listener [0-9][0-9]*\$#listener $port 127.0.0.1#" \
        -e '/^log_dest /d' -e '/^log_type /d' \
        "$src" >"$dir/mosquitto.conf"
    grep -q "^listener $port 127.0.0.1\$" "$dir/mosquitto.conf" ||
        fail "$1: no 'listener N' line to move to port $port"
    cat >>"$dir/mosquitto.conf" <<CONF

# --- test overrides (deploy_lib.sh) ---
log_dest file $dir/mosquitto.log
log_type all
user $(id -un)
CONF
}

# _listening PID PORT: for wait_until.
_listening() {
    kill -0 "$1" 2>/dev/null && ! _port_free "$2"
}

# start_deploy_broker NAME SRC: a broker from deploy/mosquitto/SRC in
# $TEST_TMP/NAME on a free port. Sets BROKER_PORT, BROKER_PID, BROKER_DIR.
# The caller puts the files the config names (certs/, acl, passwd) into
# $TEST_TMP/NAME first, or passes PREPARE=function called with the dir.
start_deploy_broker() {
    local name=$1 src=$2
    BROKER_DIR=$TEST_TMP/$name
    mkdir -p "$BROKER_DIR"
    for _ in 1 2 3 4 5; do
        BROKER_PORT=$(free_port)
        deploy_mosquitto_conf "$src" "$BROKER_DIR" "$BROKER_PORT"
        bg "$name-stderr" mosquitto -c "$BROKER_DIR/mosquitto.conf"
        BROKER_PID=$BG_PID
        if wait_until 10 _listening "$BROKER_PID" "$BROKER_PORT"; then
            log "$name: mosquitto ($src) on $BROKER_PORT (pid $BROKER_PID)"
            return 0
        fi
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            # It exited: a configuration it refuses is a failure, not a race.
            if ! grep -qi "address already in use" \
                "$TEST_TMP/$name-stderr.log" "$BROKER_DIR/mosquitto.log" \
                2>/dev/null; then
                cat "$TEST_TMP/$name-stderr.log" >&2 || true
                tail -n 20 "$BROKER_DIR/mosquitto.log" >&2 2>/dev/null || true
                fail "mosquitto refused deploy/mosquitto/$src"
            fi
        fi
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        log "$name: port $BROKER_PORT lost, retrying"
    done
    fail "mosquitto ($src) did not start"
}

# broker_log_count DIR REGEX: lines of DIR/mosquitto.log matching REGEX.
broker_log_count() {
    local n
    n=$(grep -cE -- "$2" "$1/mosquitto.log" 2>/dev/null) || true
    echo "${n:-0}"
}
