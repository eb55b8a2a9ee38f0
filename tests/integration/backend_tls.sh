#!/usr/bin/env bash
# Sluice -> backend over TLS: a second Sluice with `tls = true` on the primary and the
# topology's CA in [backend_tls] (hostname verified) logs in over TLS, which the backend
# session itself reports; a CA that did not sign the server's certificate is refused.
# Each daemon is stopped with tests/fixtures/sluice.sh stop-check: it must exit 0 after
# SIGTERM and log no sanitizer report and no critical/error line.
source "$(dirname "$0")/lib.sh"
need mariadb
need openssl
: "${SLUICE_IT_DIR:?}" "${SLUICE_FIXTURE:?}" "${SLUICE_BIN:?}" "${SLUICE_CA:?}"

# Its own ports, 200 above the shared daemon's (16233 / 16290 under CTest).
: "${SLUICE_ADMIN_PORT:?}"
port=$((SLUICE_PORT + 200))
admin=$((SLUICE_ADMIN_PORT + 200))
dir=$SLUICE_IT_DIR/backend_tls
mkdir -p "$dir"

write_config() { # CA_FILE
    cat >"$dir/sluice.toml" <<TOML
[[listeners]]
name = "mysql"
port = $port

[[backends]]
name = "primary"
host = "127.0.0.1"
port = $SLUICE_PRIMARY_PORT
role = "primary"
tls = true

[backend_tls]
ca_file = "$1"
verify_hostname = true

[[users]]
name = "app"
password = "app"

[admin]
port = $admin
TOML
}
through() { mariadb --no-defaults --connect-timeout=5 -h127.0.0.1 -P"$port" -uapp -papp -N -B "$@"; }
start() { SLUICE_PORT=$port bash "$SLUICE_FIXTURE" start "$dir/sluice.toml" "$dir/sluice.pid" "$dir/sluice.log" >/dev/null; }
# stop_check WHAT: the daemon still runs, exits 0 after SIGTERM, logged nothing bad.
stop_check() {
    local out
    if out=$(bash "$SLUICE_FIXTURE" stop-check "$dir/sluice.pid" "$dir/sluice.log" 2>&1); then
        pass "$1: the daemon exited 0 after SIGTERM, its log is clean"
    else
        fail "$1: $out"
    fi
}
# Only if the script stops early (a failed start): the daemon is not left running.
abandon() { bash "$SLUICE_FIXTURE" stop "$dir/sluice.pid" >/dev/null 2>&1 || true; }
trap abandon EXIT

# 1. The right CA: the backend session is encrypted.
write_config "$SLUICE_CA"
start
cipher=$(through -e "SHOW SESSION STATUS LIKE 'Ssl_cipher'" 2>&1 | cut -f2)
if [ -n "$cipher" ] && [[ $cipher != *ERROR* ]]; then pass "backend session uses TLS ($cipher)"; else
    fail "backend session is not encrypted: [$cipher]"; fi
expect_eq "queries work over the TLS backend" "$(through -e 'SELECT 6*7' 2>&1)" "42"
version=$(through -e "SHOW SESSION STATUS LIKE 'Ssl_version'" 2>&1 | cut -f2)
expect_contains "backend TLS version" "$version" "TLSv1."
stop_check "verified CA"

# 2. A CA that did not sign the backend's certificate: the login is refused, not downgraded.
other=$dir/other-ca
rm -rf "$other"
bash "$(dirname "$0")/../fixtures/make-certs.sh" "$other" >/dev/null
write_config "$other/ca.pem"
start
out=$(through -e 'SELECT 1' 2>&1 || true)
expect_contains "an untrusted backend certificate refuses the login" "$out" "ERROR 1105"
expect_contains "the error names the backend" "$out" "'primary'"
stop_check "untrusted CA"
finish
