#!/usr/bin/env bash
# check_config: the command line -- --check-config on the sample and on broken configs,
# --version, --help, bad arguments. Needs no servers. Every run's stderr is read with
# tests/fixtures/sluice.sh check-log: no sanitizer report (leaks at exit included).
set -euo pipefail
: "${SLUICE_BIN:?}" "${SLUICE_EXAMPLE_CONFIG:?}"
SLUICE_HOST=${SLUICE_HOST:-127.0.0.1} SLUICE_PORT=${SLUICE_PORT:-0} SLUICE_PRIMARY_PORT=${SLUICE_PRIMARY_PORT:-0}
SLUICE_LOG=
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -x "$SLUICE_BIN" ] || { echo "FAIL - sluice binary $SLUICE_BIN not found" >&2; exit 1; }
fixture=${SLUICE_FIXTURE:-$(dirname "${BASH_SOURCE[0]}")/../fixtures/sluice.sh}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run_sluice ARGS...: sets out (stdout), err (stderr), rc.
run_sluice() {
    rc=0
    "$SLUICE_BIN" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    out=$(<"$tmp/out")
    err=$(<"$tmp/err")
    local bad
    if ! bad=$(bash "$fixture" check-log "$tmp/err" 2>&1); then fail "sluice $*: stderr: $bad"; fi
}

run_sluice --check-config "$SLUICE_EXAMPLE_CONFIG"
expect_eq "--check-config on sluice.example.toml exits 0 (stderr: $err)" "$rc" 0
expect_eq "--check-config prints FILE: ok" "$out" "$SLUICE_EXAMPLE_CONFIG: ok"

# The sample with an unknown key inserted as line 3: everything else is valid.
sed '3i bogus_key = 1' "$SLUICE_EXAMPLE_CONFIG" >"$tmp/unknown.toml"
expect_eq "test setup: line 3 is the unknown key" "$(sed -n 3p "$tmp/unknown.toml")" "bogus_key = 1"
run_sluice --check-config "$tmp/unknown.toml"
expect_eq "unknown key: exit 2" "$rc" 2
expect_eq "unknown key: FILE:3: names the key" "$err" "$tmp/unknown.toml:3: bogus_key: unknown key"
expect_eq "unknown key: nothing on stdout" "$out" ""

# An out-of-range value: the line of the key, the path of the key.
line=$(grep -n '^port = 6033' "$SLUICE_EXAMPLE_CONFIG" | cut -d: -f1)
sed 's/^port = 6033$/port = 70000/' "$SLUICE_EXAMPLE_CONFIG" >"$tmp/range.toml"
run_sluice --check-config "$tmp/range.toml"
expect_eq "port out of range: exit 2" "$rc" 2
expect_contains "port out of range: FILE:LINE: listeners[0].port" "$err" "$tmp/range.toml:$line: listeners[0].port"

# A TOML syntax error.
printf 'workers = 1\nmax_packet_size = = 3\n' >"$tmp/syntax.toml"
run_sluice --check-config "$tmp/syntax.toml"
expect_eq "syntax error: exit 2" "$rc" 2
expect_contains "syntax error: FILE:2:" "$err" "$tmp/syntax.toml:2:"

# A missing file.
run_sluice --check-config "$tmp/missing.toml"
expect_eq "missing file: exit 2" "$rc" 2
expect_contains "missing file: named" "$err" "$tmp/missing.toml"

# --config with a broken file does not start either.
run_sluice --config "$tmp/unknown.toml"
expect_eq "--config with a broken file: exit 2" "$rc" 2

run_sluice --version
expect_eq "--version exits 0" "$rc" 0
if [[ $out =~ ^sluice\ [0-9]+\.[0-9]+\.[0-9]+ ]]; then pass "--version prints 'sluice X.Y.Z' ($out)"; else
    fail "--version prints 'sluice X.Y.Z', got [$out]"; fi
run_sluice -V
expect_eq "-V exits 0" "$rc" 0
run_sluice --help
expect_eq "--help exits 0" "$rc" 0
expect_contains "--help shows the usage" "$out" "Usage: sluice --config FILE"
expect_contains "--help mentions --check-config" "$out" "--check-config FILE"
run_sluice --no-such-option
expect_eq "unknown option exits 2" "$rc" 2
expect_contains "unknown option is named" "$err" "--no-such-option"
run_sluice
expect_eq "no arguments exits 2" "$rc" 2

finish
