#!/usr/bin/env bash
# Installs the Debian 12 packages spotagent needs to build, test and demo.
# Idempotent: does nothing when every package is already installed.
# Used by `make demo`, `make check` and .ci/run. Runs apt-get as root, or
# through sudo when not root.
set -euo pipefail

packages=(
    build-essential pkg-config
    libpaho-mqtt-dev libyajl-dev libpq-dev libcriterion-dev
    libssl-dev libcurl4-openssl-dev libmicrohttpd-dev zlib1g-dev
    mosquitto mosquitto-clients
    postgresql postgresql-client
    openssl curl procps iproute2 # iproute2: test_websockets network namespace
    python3 python3-yaml      # deploy-file consistency test
    chromium fonts-liberation # status page test (headless screenshot)
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
# The postgresql package would start a system cluster on 5432; tests start
# their own private servers, so keep the system one from being started.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
    trap '"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
