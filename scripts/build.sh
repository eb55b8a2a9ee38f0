#!/usr/bin/env bash
# Configures and builds Sluice with CMake + Ninja into DIR (default: build).
# Extra arguments go to CMake, e.g. scripts/build.sh build-asan -DSLUICE_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
ninja -C "$dir" -j"$(nproc)"
