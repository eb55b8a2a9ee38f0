# lib.sh -- shared helpers for the bash integration tests (sourced, not run).
# Environment (set by CTest, see CMakeLists.txt): SLUICE_HOST, SLUICE_PORT, SLUICE_TLS_PORT,
# SLUICE_SHA2_PORT, SLUICE_PRIMARY_PORT, SLUICE_CA, SLUICE_LOG, ...
set -euo pipefail

: "${SLUICE_HOST:?}" "${SLUICE_PORT:?}" "${SLUICE_PRIMARY_PORT:?}"

failures=0
checks=0
pass() { checks=$((checks + 1)); echo "ok   - $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL - $*" >&2; }

# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
    if [ "$2" == "$3" ]; then pass "$1"; else
        fail "$1: expected [$3], got [$2]"; fi
}
# expect_contains WHAT HAYSTACK NEEDLE
expect_contains() {
    if [[ $2 == *"$3"* ]]; then pass "$1"; else
        fail "$1: expected to contain [$3], got [$2]"; fi
}

need() {
    command -v "$1" >/dev/null || { echo "FAIL - required program '$1' not found" >&2; exit 1; }
}

# Client for Sluice / for the primary directly; -N -B: tab-separated, no headers.
through_sluice() { mariadb --no-defaults --connect-timeout=5 -h"$SLUICE_HOST" -P"$SLUICE_PORT" -uapp -papp -N -B "$@"; }
direct_primary() { mariadb --no-defaults --connect-timeout=5 -h127.0.0.1 -P"$SLUICE_PRIMARY_PORT" -uapp -papp -N -B "$@"; }

# Log lines written by Sluice since this test started (for failure messages).
log_mark=0
[ -n "${SLUICE_LOG:-}" ] && [ -r "$SLUICE_LOG" ] && log_mark=$(wc -l <"$SLUICE_LOG")
log_since_start() { [ -n "${SLUICE_LOG:-}" ] && tail -n +"$((log_mark + 1))" "$SLUICE_LOG" | tail -n 40 || true; }

finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures of $checks checks failed; sluice log during this test:" >&2
        log_since_start >&2
        exit 1
    fi
    echo "all $checks checks passed"
}
