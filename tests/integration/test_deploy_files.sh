#!/usr/bin/env bash
# The deployment files (docker/, deploy/) against the contract, the agent
# and each other. No Docker engine or Kubernetes cluster runs here, so:
#
# 1. check_deploy.py, statically: every SPOTAGENT_* variable is one the
#    agent reads (from `spotagent --help`), ports (8080, 1883/8883, 5432,
#    1026), probe paths (/health, /ready), metric names of the alert rules
#    and the dashboard (contract §5), compose service names and URLs, k8s
#    references (ConfigMap, Secret keys, PVC, selectors), YAML/JSON syntax;
# 2. for real: `spotagent --check-config` on the configuration each
#    deployment gives it (compose environment, k8s ConfigMap, systemd
#    environment file); the Dockerfile's packages exist in apt and cover
#    the shared libraries the binaries need; systemd-analyze verify and
#    security on the unit; every Mosquitto configuration started by the
#    real mosquitto, the password one with its ACL exercised by spotagent
#    (password from a _FILE) and a device, the compose one showing a
#    persistent session keeping more than Mosquitto's default 1000 queued
#    messages; the dashboard's SQL run on the tables the agent created;
#    /health, /ready and /metrics of the running agent (skipped while the
#    agent has no HTTP endpoint).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/deploy_lib.sh"

PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 ||
    fail "python3 is missing (scripts/install-deps.sh installs python3-yaml)"
"$PYTHON" -c 'import yaml' 2>/dev/null ||
    fail "python3 cannot import yaml: install python3-yaml (scripts/install-deps.sh)"

OUT=$TEST_TMP/check
SKIPPED=()
skip() {
    SKIPPED+=("$*")
    log "SKIP: $*"
}

# --- 1. static checks ---------------------------------------------------------
"$SPOTAGENT" --help >"$TEST_TMP/help.txt" || fail "spotagent --help failed"
CONTRACT=${SPOT_CONTRACT:-$REPO_ROOT/../shared/spec/agent-contract.md}
if ! "$PYTHON" "$LIB_DIR/check_deploy.py" --root "$REPO_ROOT" \
    --help-text "$TEST_TMP/help.txt" --contract "$CONTRACT" \
    --out "$OUT" >"$TEST_TMP/check_deploy.out" 2>&1; then
    grep -v '^ok ' "$TEST_TMP/check_deploy.out" >&2
    fail "check_deploy.py found inconsistencies (above)"
fi
log "static checks: $(grep -c '^ok ' "$TEST_TMP/check_deploy.out") passed"
grep '^note ' "$TEST_TMP/check_deploy.out" >&2 || true

# docker compose's own validation, when a Compose is installed: the v2
# plugin, or Debian's docker-compose 1.29, which predates the top-level
# "name:" (checked without that line).
if docker compose version >/dev/null 2>&1; then
    docker compose -f "$REPO_ROOT/docker/docker-compose.yml" config -q \
        >"$TEST_TMP/compose-config.log" 2>&1 ||
        { cat "$TEST_TMP/compose-config.log" >&2; fail "docker compose config refuses docker-compose.yml"; }
    log "docker compose config: docker-compose.yml is valid"
elif command -v docker-compose >/dev/null 2>&1; then
    grep -v '^name: ' "$REPO_ROOT/docker/docker-compose.yml" >"$TEST_TMP/compose.yml"
    docker-compose -f "$TEST_TMP/compose.yml" \
        --project-directory "$REPO_ROOT/docker" config -q \
        >"$TEST_TMP/compose-config.log" 2>&1 ||
        { cat "$TEST_TMP/compose-config.log" >&2; fail "docker-compose config refuses docker-compose.yml"; }
    log "docker-compose $(docker-compose version --short 2>/dev/null) config: valid (without the top-level name:)"
else
    skip "no docker compose installed: compose file checked by check_deploy.py only"
fi

# The fleet's spotsim flags (compose) against spotsim itself, once built.
if [ -x "$REPO_ROOT/build/spotsim" ]; then
    "$REPO_ROOT/build/spotsim" --help >"$TEST_TMP/spotsim-help.txt" 2>&1 || true
    while read -r flag; do
        grep -qE -- "(^|[^a-z-])$flag([^a-z-]|\$)" "$TEST_TMP/spotsim-help.txt" ||
            fail "compose runs spotsim $flag, which spotsim --help does not list"
    done <"$OUT/fleet-flags.txt"
    log "compose: spotsim knows the fleet's flags ($(tr '\n' ' ' <"$OUT/fleet-flags.txt"))"
else
    skip "build/spotsim not built yet: the fleet's flags in docker-compose.yml not checked"
fi

# Kubernetes: kustomize builds the manifests (offline; no cluster here).
if command -v kubectl >/dev/null 2>&1 &&
    kubectl kustomize "$DEPLOY/k8s" >"$TEST_TMP/k8s.yaml" 2>"$TEST_TMP/kustomize.log"; then
    log "kubectl kustomize: $(grep -c '^kind:' "$TEST_TMP/k8s.yaml") objects built"
elif command -v kubectl >/dev/null 2>&1; then
    cat "$TEST_TMP/kustomize.log" >&2
    fail "kubectl kustomize deploy/k8s failed"
else
    skip "kubectl not installed: manifests checked by check_deploy.py only"
fi

# --- 2. the agent accepts each deployment's configuration ---------------------
PKI=$TEST_TMP/pki
make_pki "$PKI"
SECRETS=$TEST_TMP/secrets
mkdir -p "$SECRETS"
printf 'host=127.0.0.1 port=5432 dbname=spot user=spot\n' >"$SECRETS/pg-url"

# check_config WHAT ENV...: spotagent --check-config in a clean environment
# holding only ENV (NAME=VALUE words). The NGSI sinks may not be part of
# this build yet: then the check is repeated without them, and said so.
check_config() {
    local what=$1
    shift
    local out rc=0
    out=$(env -i PATH="$PATH" ASAN_OPTIONS="$ASAN_OPTIONS" "$@" \
        "$SPOTAGENT" --check-config 2>&1) || rc=$?
    if [ "$rc" -ne 0 ] && [[ $out == *"not part of this build"* ]]; then
        skip "$what: the NGSI sinks are not in this build; checked without SPOTAGENT_ORION_URL/NGSI_LD_URL"
        local kept=() a
        for a in "$@"; do
            case $a in SPOTAGENT_ORION_URL=* | SPOTAGENT_NGSI_LD_URL=*) ;;
            *) kept+=("$a") ;; esac
        done
        rc=0
        out=$(env -i PATH="$PATH" ASAN_OPTIONS="$ASAN_OPTIONS" \
            SPOTAGENT_ORION_URL= SPOTAGENT_NGSI_LD_URL= "${kept[@]}" \
            "$SPOTAGENT" --check-config 2>&1) || rc=$?
    fi
    [ "$rc" -eq 0 ] || fail "$what: spotagent --check-config says: $out"
    log "$what: ${out#spotagent: }"
}

# docker compose: the agent's environment (secrets as their files).
mapfile -t compose_env <"$OUT/compose-agent.env"
check_config "compose environment" "${compose_env[@]}"

# Kubernetes: the ConfigMap's file, its TLS paths pointed at test files, the
# Deployment's environment.
"$PYTHON" - "$OUT/k8s-config.json" "$TEST_TMP/k8s-config.json" "$PKI" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
pki = sys.argv[3]
for k, f in (("mqtt_ca", "ca.pem"), ("mqtt_cert", "agent.pem"),
             ("mqtt_key", "agent.key")):
    if k in c:
        c[k] = f"{pki}/{f}"
json.dump(c, open(sys.argv[2], "w"))
PY
printf '' >"$SECRETS/orion-token"
check_config "k8s ConfigMap" SPOTAGENT_CONFIG="$TEST_TMP/k8s-config.json" \
    SPOTAGENT_HTTP_LISTEN=0.0.0.0:8080 \
    SPOTAGENT_MQTT_CLIENT_ID=spotagent-city-1 \
    SPOTAGENT_PG_URL_FILE="$SECRETS/pg-url" \
    SPOTAGENT_ORION_TOKEN_FILE="$SECRETS/orion-token"

# systemd: the environment file, /etc/spotagent/ moved to test files, plus
# what the unit adds (the credential paths).
ETC=$TEST_TMP/etc-spotagent
mkdir -p "$ETC/tls"
cp "$PKI/ca.pem" "$ETC/tls/ca.pem"
cp "$PKI/agent.pem" "$ETC/tls/client.pem"
mapfile -t unit_env < <(grep -E '^SPOTAGENT_[A-Z0-9_]+=' \
    "$DEPLOY/systemd/spotagent.env" | sed "s#/etc/spotagent/#$ETC/#g")
check_config "systemd environment file" "${unit_env[@]}" \
    SPOTAGENT_MQTT_KEY="$PKI/agent.key" SPOTAGENT_PG_URL_FILE="$SECRETS/pg-url"

# --- 3. Dockerfile packages ---------------------------------------------------
if command -v apt-cache >/dev/null 2>&1 &&
    apt-cache show --no-all-versions libc6 >/dev/null 2>&1; then
    mapfile -t pkgs < <(cat "$OUT/runtime-packages.txt" "$OUT/build-packages.txt" |
        grep . | sort -u)
    known=$(apt-cache show --no-all-versions "${pkgs[@]}" 2>/dev/null |
        sed -n 's/^Package: //p' | sort -u) || true
    missing=()
    for p in "${pkgs[@]}"; do
        grep -qx "$p" <<<"$known" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] ||
        fail "Dockerfile installs packages apt does not know: ${missing[*]}"
    log "Dockerfile: all ${#pkgs[@]} packages exist in apt"
else
    skip "apt-cache has no package lists (apt-get update): Dockerfile package names not checked"
fi

# The runtime stage must provide every shared library the binaries need
# (NEEDED entries mapped to their Debian package on this machine, the same
# release as the image).
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)
lib_package() {
    local path
    path=$("$LDCONFIG" -p | awk -v l="$1" '$1 == l && /x86-64|x86_64|64bit/ {print $NF; exit}')
    [ -n "$path" ] || path=$("$LDCONFIG" -p | awk -v l="$1" '$1 == l {print $NF; exit}')
    [ -n "$path" ] || return 1
    local p
    for p in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
        dpkg -S "$p" 2>/dev/null | head -n1 | cut -d: -f1 && return 0
    done
    return 1
}
if command -v readelf >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 &&
    [ -x "$LDCONFIG" ]; then
    checked=0
    for b in spotagent spotsim spotdevice; do
        bin=$REPO_ROOT/build/$b
        [ -x "$bin" ] || continue
        while read -r lib; do
            pkg=$(lib_package "$lib") || fail "$b needs $lib: no package found"
            case $pkg in libc6 | libgcc-s1 | libstdc++6) continue ;; esac
            grep -qx "$pkg" "$OUT/runtime-packages.txt" ||
                fail "$b needs $lib from $pkg, which the Dockerfile's runtime stage does not install"
            checked=$((checked + 1))
        done < <(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
    done
    [ "$checked" -gt 0 ] || skip "no release binary in build/: runtime libraries not checked"
    log "Dockerfile: runtime stage covers the $checked shared libraries of build/spot*"
else
    skip "readelf, dpkg or ldconfig missing: runtime libraries not checked"
fi

# --- 4. systemd unit ----------------------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
    unit=$TEST_TMP/spotagent.service
    real_bin=$REPO_ROOT/build/spotagent
    [ -x "$real_bin" ] || real_bin=$SPOTAGENT
    sed "s#^ExecStart=/usr/local/bin/spotagent#ExecStart=$real_bin#" \
        "$DEPLOY/systemd/spotagent.service" >"$unit"
    (cd "$TEST_TMP" && systemd-analyze verify "$unit") \
        >"$TEST_TMP/systemd-verify.out" 2>&1 || true
    if grep -F "spotagent.service" "$TEST_TMP/systemd-verify.out" >&2; then
        fail "systemd-analyze verify complains about the unit (above)"
    fi
    log "systemd-analyze verify: the unit is clean"
    if systemd-analyze security --offline=yes --threshold=20 "$unit" \
        >"$TEST_TMP/systemd-security.out" 2>&1; then
        log "systemd-analyze security: $(grep -o 'Overall exposure level.*' "$TEST_TMP/systemd-security.out")"
    elif grep -qiE "unrecognized|unknown option" "$TEST_TMP/systemd-security.out"; then
        skip "systemd-analyze security --offline not supported here"
    else
        tail -n 5 "$TEST_TMP/systemd-security.out" >&2
        fail "systemd-analyze security: exposure above 2.0"
    fi
else
    skip "systemd-analyze not installed: unit not verified"
fi

# --- 5. Mosquitto configurations, for real --------------------------------------
# broker_files NAME: certificates, acl (and passwd) for deploy/mosquitto.
broker_files() {
    local d=$TEST_TMP/$1
    mkdir -p "$d/certs"
    cp "$PKI/ca.pem" "$d/certs/ca.pem"
    cp "$PKI/server.pem" "$d/certs/server.pem"
    cp "$PKI/server.key" "$d/certs/server.key"
    cp "$DEPLOY/mosquitto/acl" "$d/acl"
}

# TLS with client certificates: accepted, and a device's publish goes
# through (test_tls.sh runs the agent on it).
broker_files tls
start_deploy_broker tls mosquitto-tls.conf
mosquitto_pub -h 127.0.0.1 -p "$BROKER_PORT" --cafile "$PKI/ca.pem" \
    --cert "$PKI/device.pem" --key "$PKI/device.key" -q 1 \
    -t "/JRI9jTbEKJQS29y3bc8BC6aqo/SmartSpot_AQ_1_AQO/attrs" \
    -f "$VECTORS/aqo.json" >>"$TEST_TMP/mosquitto_pub.log" 2>&1 ||
    fail "mosquitto-tls.conf: a device with a valid certificate cannot publish"
log "mosquitto-tls.conf: accepted; a device publishes with its certificate"

# Compose: accepted, anonymous, and a persistent session keeps 1500 queued
# messages (Mosquitto's default would keep 1000 and drop the rest).
start_deploy_broker compose "$(cat "$OUT/compose-mosquitto.txt")"
COMPOSE_PORT=$BROKER_PORT
COMPOSE_DIR=$BROKER_DIR
qid=itest-queue-$$
mosquitto_sub -h 127.0.0.1 -p "$COMPOSE_PORT" -i "$qid" -c -q 1 -t 'queue/#' \
    -E >>"$TEST_TMP/mosquitto_sub.log" 2>&1 ||
    fail "compose broker: cannot create a persistent session"
seq 1 1500 | mosquitto_pub -h 127.0.0.1 -p "$COMPOSE_PORT" -q 1 \
    -t queue/x -l >>"$TEST_TMP/mosquitto_pub.log" 2>&1 ||
    fail "compose broker: publishing 1500 messages failed"
got=$(timeout 30 mosquitto_sub -h 127.0.0.1 -p "$COMPOSE_PORT" -i "$qid" -c \
    -q 1 -t 'queue/#' -C 1500 -W 20 2>>"$TEST_TMP/mosquitto_sub.log" |
    wc -l) || true
assert_eq 1500 "$got" "messages kept for an offline persistent session"
assert_eq 0 "$(broker_log_count "$COMPOSE_DIR" "Outgoing messages are being dropped")" \
    "'messages dropped' notices of the compose broker"
log "mosquitto-compose.conf: accepted; an offline session kept all 1500 queued messages"

# Passwords + ACL, exercised by the agent (password from a _FILE) with the
# PostgreSQL sink and its HTTP endpoint, and by devices.
broker_files passwd
PW_DIR=$TEST_TMP/passwd
mosquitto_passwd -c -b "$PW_DIR/passwd" spotagent agent-secret
mosquitto_passwd -b "$PW_DIR/passwd" SmartSpot_AQ_1 device-secret
chmod 600 "$PW_DIR/passwd"
start_deploy_broker passwd mosquitto-password.conf
MQTT_DIR=$BROKER_DIR
MQTT_PORT=$BROKER_PORT
MQTT_PID=$BROKER_PID
MQTT_URL=mqtts://127.0.0.1:$BROKER_PORT

start_postgres
printf 'agent-secret\n' >"$SECRETS/mqtt-password"
HTTP_PORT=$(free_port)
SPOTAGENT_MQTT_PASSWORD_FILE=$SECRETS/mqtt-password \
    start_agent --mqtt-ca "$PKI/ca.pem" --mqtt-username spotagent \
    --http-listen "127.0.0.1:$HTTP_PORT"
log "mosquitto-password.conf: the agent logged in with its password file"

# device_pub TOPIC FILE: as SmartSpot_AQ_1 with its password, over TLS.
device_pub() {
    mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" --cafile "$PKI/ca.pem" \
        -u SmartSpot_AQ_1 -P device-secret -q 1 -t "$1" -f "$2" \
        >>"$TEST_TMP/mosquitto_pub.log" 2>&1
}
K=JRI9jTbEKJQS29y3bc8BC6
device_pub "/${K}aqo/SmartSpot_AQ_2_AQO/attrs" "$VECTORS/aqo.json" ||
    fail "publish on another device's topic failed at the client"
device_pub "/OtherApikey42aqo/SmartSpot_AQ_1_AQO/attrs" "$VECTORS/aqo.json" ||
    fail "publish under another apikey failed at the client"
device_pub "/${K}aqo/SmartSpot_AQ_1_AQO/attrs" "$VECTORS/aqo.json" ||
    fail "publish on the device's own topic failed"
# A malformed message of its own (the note's dho example is not JSON).
device_pub "/${K}dho/SmartSpot_AQ_1_DHO/attrs" "$VECTORS/dho.json" ||
    fail "publish of the malformed dho example failed"
if mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" --cafile "$PKI/ca.pem" \
    -u SmartSpot_AQ_1 -P wrong-password -q 1 -t "/${K}aqo/x_AQO/attrs" \
    -m '{}' >>"$TEST_TMP/mosquitto_pub.log" 2>&1; then
    fail "a wrong password was accepted"
fi
wait_for 30 "the device's own measure in air_quality" pg_count_is 1 air_quality
wait_for 30 "the malformed message in rejected_message" pg_count_is 1 rejected_message
assert_eq 1 "$(pg_count air_quality)" "air_quality rows (foreign topics must be denied)"
assert_eq 2 "$(mqtt_log_count "Denied PUBLISH from .*(SmartSpot_AQ_2_AQO|OtherApikey42aqo)")" \
    "publishes the ACL denied"
assert_eq json "$(psql_q "SELECT reason FROM rejected_message")" "rejection reason"
log "acl: own topic stored; another device's topic and another apikey denied; wrong password refused"

# --- 6. the dashboard's SQL on the agent's tables -----------------------------
n=0
for f in "$OUT"/sql/*.sql; do
    # shellcheck disable=SC2016 # Grafana macros, literally
    sql=$(sed -E 's/\$__timeFilter\(([a-z_]+)\)/\1 >= '\''2000-01-01'\''/g' "$f")
    # shellcheck disable=SC2016
    [[ $sql != *'$__'* ]] || fail "$(head -n1 "$f"): a Grafana macro this test cannot expand"
    rows=$(psql_q "$sql") || fail "dashboard SQL failed: $(head -n1 "$f")"
    [ -n "$rows" ] || fail "dashboard SQL returned nothing: $(head -n1 "$f")"
    n=$((n + 1))
done
log "dashboard: $n SQL queries ran on the agent's tables and returned rows"

# --- 7. the running agent's endpoint -------------------------------------------
http_up() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$HTTP_PORT/health"; }
if wait_until 5 http_up; then
    code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$HTTP_PORT$1"; }
    assert_eq 200 "$(code /health)" "GET /health"
    ready_200() { [ "$(code /ready)" = 200 ]; }
    wait_for 15 "GET /ready answering 200 (broker and PostgreSQL up)" ready_200
    curl -fsS --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics" \
        >"$TEST_TMP/metrics.txt" || fail "GET /metrics failed"
    missing=()
    while read -r m; do
        grep -qE "^(# TYPE )?$m(_bucket|_sum|_count)?[ {]" "$TEST_TMP/metrics.txt" ||
            missing+=("$m")
    done <"$OUT/metrics.txt"
    [ ${#missing[@]} -eq 0 ] ||
        fail "/metrics lacks contract metrics used by the alerts and dashboard: ${missing[*]}"
    log "endpoint: /health 200, /ready 200, /metrics has every contract metric"
else
    skip "the agent serves no HTTP endpoint yet (--http-listen): /health, /ready, /metrics not checked live"
fi

stop_agent 30 || fail "agent exited with status $?"

# --- 8. Prometheus rules and queries (promtool: Debian package prometheus) ---
if command -v promtool >/dev/null 2>&1; then
    P=$DEPLOY/prometheus
    promtool check rules "$P/spotagent-alerts.yml" >"$TEST_TMP/promtool.log" 2>&1 ||
        { cat "$TEST_TMP/promtool.log" >&2; fail "promtool check rules failed"; }
    (cd "$P" && promtool test rules spotagent-alerts.test.yml) \
        >>"$TEST_TMP/promtool.log" 2>&1 ||
        { cat "$TEST_TMP/promtool.log" >&2; fail "promtool test rules: the alerts do not behave"; }
    # The dashboard's queries, parsed as recording rules; the scrape
    # configuration (Debian's promtool lacks Kubernetes service discovery:
    # that job is then checked without it).
    "$PYTHON" - "$OUT/dashboard-exprs.txt" "$P" "$TEST_TMP" <<'PY'
import sys, yaml
exprs = [e for e in open(sys.argv[1]).read().split("\n") if e]
rules = [{"record": f"dashboard:q{i}",
          "expr": e.replace("$__rate_interval", "5m").replace("$instance", ".*")}
         for i, e in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]},
               open(f"{sys.argv[3]}/dashboard-rules.yml", "w"))
c = yaml.safe_load(open(f"{sys.argv[2]}/prometheus.yml"))
c["rule_files"] = [f"{sys.argv[2]}/{r}" for r in c.get("rule_files", [])]
yaml.safe_dump(c, open(f"{sys.argv[3]}/prometheus.yml", "w"))
c["scrape_configs"] = [j for j in c["scrape_configs"]
                       if "kubernetes_sd_configs" not in j]
yaml.safe_dump(c, open(f"{sys.argv[3]}/prometheus-nok8s.yml", "w"))
PY
    promtool check rules "$TEST_TMP/dashboard-rules.yml" >>"$TEST_TMP/promtool.log" 2>&1 ||
        { cat "$TEST_TMP/promtool.log" >&2; fail "the dashboard's PromQL does not parse"; }
    if ! promtool check config "$TEST_TMP/prometheus.yml" >"$TEST_TMP/promtool-config.log" 2>&1; then
        if grep -q "kubernetes_sd_configs not found" "$TEST_TMP/promtool-config.log"; then
            skip "this promtool has no Kubernetes service discovery: prometheus.yml checked without job spotagent-k8s"
            promtool check config "$TEST_TMP/prometheus-nok8s.yml" >>"$TEST_TMP/promtool.log" 2>&1 ||
                { cat "$TEST_TMP/promtool.log" >&2; fail "promtool check config failed"; }
        else
            cat "$TEST_TMP/promtool-config.log" >&2
            fail "promtool check config failed"
        fi
    fi
    log "promtool: alert rules valid and unit-tested, dashboard PromQL parses, scrape config valid"
else
    skip "promtool not installed (Debian package prometheus): alert rules and PromQL not checked by Prometheus itself"
fi

if [ ${#SKIPPED[@]} -gt 0 ]; then
    log "skipped parts:"
    printf '  - %s\n' "${SKIPPED[@]}" >&2
fi
log "PASS"
