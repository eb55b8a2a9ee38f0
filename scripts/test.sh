#!/usr/bin/env bash
# Quick start 2: installs what is needed, builds, and runs every test: unit tests, the
# integration suite against real MariaDB/Redis servers and real clients, the fuzz targets
# (clang + libFuzzer), the integration suite against a clang build of the daemon, then the
# unit and integration suites again under AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
section() { printf '\n=== %s (%ds)\n' "$1" $(($(date +%s) - start)); }

section "dependencies"
bash scripts/install-deps.sh

section "build (RelWithDebInfo, warnings as errors)"
bash scripts/build.sh build
section "unit and integration tests"
(cd build && ctest -L 'unit|integration' --output-on-failure --timeout 600)

section "fuzz targets (clang, libFuzzer, ${SLUICE_FUZZ_SECONDS:-20} s each)"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
    -DSLUICE_FUZZ_SECONDS="${SLUICE_FUZZ_SECONDS:-20}" >/dev/null
ninja -C build-fuzz -j"$(nproc)" fuzz_all
(cd build-fuzz && ctest -L fuzz --output-on-failure)

# A second compiler's daemon through the same real-client suite: GCC 12.2 miscompiles some
# coroutines (PR106188, the COM_RESET_CONNECTION crash of issue #7); clang does not share
# its bugs. scripts/check-coroutines.py (the lint_coroutines test) refuses the known shape.
section "integration tests against the daemon built with clang"
ninja -C build-fuzz -j"$(nproc)" sluice ps_client commands_client
(cd build-fuzz && ctest -L integration --output-on-failure --timeout 600)

section "unit and integration tests under ASan + UBSan"
bash scripts/build.sh build-asan -DSLUICE_SANITIZE=ON
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest -L 'unit|integration' --output-on-failure --timeout 900)

section "all tests passed"
