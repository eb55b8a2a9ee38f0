#!/usr/bin/env bash
# Installs every Debian package Sluice needs to build, test, benchmark and run its demo.
# Idempotent: packages already present are skipped by apt. Never starts system services.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
    # build
    cmake ninja-build g++ ccache pkg-config clang libclang-rt-14-dev clang-format clang-tidy
    libboost1.81-dev libssl-dev libmariadb-dev freetds-dev libhiredis-dev libspdlog-dev
    prometheus-cpp-dev libtomlplusplus-dev catch2 libre2-dev libxxhash-dev
    # real servers and clients for tests, demo and benchmarks
    mariadb-server mariadb-client redis-server sysbench haproxy openssl procps
    python3 python3-pymysql python3-mysqldb freetds-bin
    libmariadb-java default-jdk-headless php-cli php-mysql curl
    # TDS clients for the TDS test server's gate and the TDS tests; tshark dissects captures
    tdsodbc unixodbc python3-pymssql python3-tds python3-openssl python3-pyodbc libjtds-java
    tshark tcpdump
)
# Node.js for tests/integration/node (mysql2 from npm): Debian's nodejs (18) and npm only
# when there is no node / npm on PATH already (the test runs on node 18 and later).
if ! command -v node >/dev/null 2>&1; then PACKAGES+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then PACKAGES+=(npm); fi

# tests/integration/node/node_modules from package-lock.json. npm ci only when the lock file
# changed since the last successful install (a stamp inside node_modules), so a second run,
# or an offline one after the first, touches neither node_modules nor the network.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
node_deps() {
    local dir=$REPO/tests/integration/node want stamp
    want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    stamp=$dir/node_modules/.sluice-lock.sha256
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        echo "install-deps: tests/integration/node/node_modules matches package-lock.json"
        return 0
    fi
    echo "install-deps: npm ci in tests/integration/node"
    (cd "$dir" && npm ci --no-audit --no-fund)
    echo "$want" >"$stamp"
}

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages present"
    node_deps
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
# Package scripts must not start mariadb or redis as system services: the project runs its
# own instances on loopback ports. policy-rc.d (exit 101) is Debian's documented switch.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
node_deps
