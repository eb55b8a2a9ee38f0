#!/usr/bin/env bash
# cli_basic: the mariadb command-line client through Sluice -- login, a write/read roundtrip,
# routing (reads to a replica, transactions to the primary), USE, multi-statements, server
# errors, refused logins, TLS.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need mariadb
: "${SLUICE_TLS_PORT:?}" "${SLUICE_SHA2_PORT:?}" "${SLUICE_CA:?}"

# run VAR_OUT VAR_RC cmd...: captures stdout+stderr and the exit status without tripping set -e.
run() {
    local __out=$1 __rc=$2 __o __r
    shift 2
    __o=$("$@" 2>&1) && __r=0 || __r=$?
    printf -v "$__out" '%s' "$__o"
    printf -v "$__rc" '%s' "$__r"
}

# --- login and routing ---
primary_id=$(direct_primary -e 'SELECT @@server_id')
[ -n "$primary_id" ] || { echo "FAIL - cannot read @@server_id from the primary on $SLUICE_PRIMARY_PORT" >&2; exit 1; }
run out rc through_sluice -e 'SELECT @@server_id'
expect_eq "login through sluice exits 0" "$rc" 0
# An autocommit read goes to a replica (read/write splitting; server_ids: tests/fixtures/topology.sh).
case $out in
    2 | 3) pass "SELECT @@server_id through sluice is a replica's ($out)" ;;
    *) fail "SELECT @@server_id through sluice: expected a replica's (2 or 3), got [$out]" ;;
esac
run out rc through_sluice -e 'BEGIN; SELECT @@server_id; COMMIT'
expect_eq "SELECT @@server_id inside BEGIN is the primary's" "$out" "$primary_id"

# --- write/read roundtrip ---
run out rc through_sluice -e "
    CREATE DATABASE IF NOT EXISTS sluice_test;
    DROP TABLE IF EXISTS sluice_test.cli_basic;
    CREATE TABLE sluice_test.cli_basic (id INT PRIMARY KEY, name VARCHAR(32), amount DECIMAL(8,2));
    INSERT INTO sluice_test.cli_basic VALUES (1, 'alpha', 1.50), (2, 'beta', -7.25), (3, NULL, 0);
    SELECT id, IFNULL(name, 'NULL'), amount FROM sluice_test.cli_basic ORDER BY id"
expect_eq "CREATE/INSERT/SELECT roundtrip exits 0" "$rc" 0
expect_eq "SELECT returns the inserted rows" "$out" $'1\talpha\t1.50\n2\tbeta\t-7.25\n3\tNULL\t0.00'
expect_eq "the rows are on the primary" \
    "$(direct_primary -e 'SELECT COUNT(*), SUM(amount) FROM sluice_test.cli_basic')" $'3\t-5.75'
run out rc through_sluice -e "UPDATE sluice_test.cli_basic SET name = 'gamma' WHERE id = 3; SELECT ROW_COUNT()"
expect_eq "UPDATE reports one affected row" "$out" 1

# --- USE (COM_INIT_DB) and a database given at connect ---
run out rc through_sluice -e 'USE sluice_test; SELECT DATABASE(); SELECT name FROM cli_basic WHERE id = 2'
expect_eq "USE switches the database" "$out" $'sluice_test\nbeta'
run out rc through_sluice sluice_test -e 'SELECT DATABASE(), COUNT(*) FROM cli_basic'
expect_eq "database given at connect" "$out" $'sluice_test\t3'

# --- one COM_QUERY holding two statements: both result sets come back ---
run out rc bash -c 'printf "DELIMITER //\nSELECT 1 AS a; SELECT 2 AS b//\nSELECT 3//\n" |
    mariadb --no-defaults -h"$SLUICE_HOST" -P"$SLUICE_PORT" -uapp -papp -N -B'
expect_eq "multi-statement SELECT 1; SELECT 2 gives both results, then the session goes on" \
    "$out" $'1\n2\n3'

# --- a server error comes back as sent and the session survives it ---
# (statements on stdin: with -e the client stops at the first error even with --force)
sql_force() { printf '%s\n' "$1" | through_sluice --force; }
run out rc sql_force "SELECT CONNECTION_ID() INTO @before;
SELECT * FROM sluice_test.no_such_table;
SELECT CONNECTION_ID() = @before, 'still here';"
expect_contains "missing table gives ERROR 1146 (42S02)" "$out" "ERROR 1146 (42S02)"
expect_contains "missing table error names the table" "$out" "sluice_test.no_such_table"
expect_contains "the same session answers after the error" "$out" $'1\tstill here'
run out rc sql_force "SELEC broken;
SELECT 'after syntax error';"
expect_contains "syntax error gives ERROR 1064" "$out" "ERROR 1064 (42000)"
expect_contains "the session answers after a syntax error" "$out" "after syntax error"

# --- refused logins ---
run out rc mariadb --no-defaults -h"$SLUICE_HOST" -P"$SLUICE_PORT" -uapp -pwrong -e 'SELECT 1'
expect_eq "wrong password exits non-zero" "$([ "$rc" -ne 0 ] && echo yes)" yes
expect_contains "wrong password gives ERROR 1045 (28000)" "$out" "ERROR 1045 (28000)"
run out rc mariadb --no-defaults -h"$SLUICE_HOST" -P"$SLUICE_PORT" -unobody -papp -e 'SELECT 1'
expect_contains "unknown user gives ERROR 1045 (28000)" "$out" "ERROR 1045 (28000)"
run out rc through_sluice no_such_db_xyz -e 'SELECT 1'
expect_contains "unknown database at connect gives ERROR 1049 (42000)" "$out" "ERROR 1049 (42000)"
expect_contains "unknown database error names it" "$out" "no_such_db_xyz"

# --- TLS ---
tls_cli() {
    mariadb --no-defaults --connect-timeout=5 -h"$SLUICE_HOST" -P"$1" -uapp -papp \
        --ssl --ssl-ca="$SLUICE_CA" --ssl-verify-server-cert "${@:2}"
}
# Several logins: the client's ClientHello may or may not share a segment with its SSLRequest.
for i in 1 2 3 4 5; do
    run out rc tls_cli "$SLUICE_TLS_PORT" -e 'status'
    expect_eq "TLS login #$i on the require_tls port (CA verified) exits 0" "$rc" 0
    expect_contains "client side of the TLS port is encrypted (#$i)" "$out" "Cipher in use is"
done
run out rc tls_cli "$SLUICE_TLS_PORT" -N -B -e 'SELECT @@server_id, 40 + 2'
case $out in
    [23]$'\t'42) pass "read over TLS answered by a replica ($out)" ;;
    *) fail "read over TLS: expected a replica's server_id (2 or 3) and 42, got [$out]" ;;
esac
run out rc tls_cli "$SLUICE_TLS_PORT" -N -B -e 'BEGIN; SELECT @@server_id, 40 + 2; COMMIT'
expect_eq "query over TLS inside BEGIN reaches the primary" "$out" "$primary_id"$'\t42'
run out rc mariadb --no-defaults --connect-timeout=5 -h"$SLUICE_HOST" -P"$SLUICE_TLS_PORT" \
    -uapp -papp --skip-ssl -e 'SELECT 1'
expect_contains "require_tls port refuses a plain client with ERROR 3159" "$out" "ERROR 3159"
run out rc mariadb --no-defaults --connect-timeout=5 -h"$SLUICE_HOST" -P"$SLUICE_PORT" \
    -uapp -papp --ssl --ssl-ca="$SLUICE_CA" --ssl-verify-server-cert -e 'SELECT 1'
expect_eq "--ssl-verify-server-cert on a listener without TLS fails" "$([ "$rc" -ne 0 ] && echo yes)" yes
expect_contains "... because the listener offers no TLS" "$out" "server does not support it"

# --- caching_sha2_password listener, with and without TLS ---
run out rc mariadb --no-defaults --connect-timeout=5 -h"$SLUICE_HOST" -P"$SLUICE_SHA2_PORT" \
    -uapp -papp --skip-ssl -N -B -e 'SELECT CURRENT_USER(), 7 * 6'
expect_eq "caching_sha2 login without TLS" "$out" $'app@%\t42'
run out rc tls_cli "$SLUICE_SHA2_PORT" -N -B -e 'SELECT 6 * 7'
expect_eq "caching_sha2 login with TLS" "$out" 42
run out rc tls_cli "$SLUICE_SHA2_PORT" -e 'status'
expect_contains "sha2 port with --ssl is encrypted" "$out" "Cipher in use is"
run out rc mariadb --no-defaults --connect-timeout=5 -h"$SLUICE_HOST" -P"$SLUICE_SHA2_PORT" \
    -uapp -pwrong --skip-ssl -e 'SELECT 1'
expect_contains "caching_sha2 wrong password gives ERROR 1045" "$out" "ERROR 1045 (28000)"

through_sluice -e 'DROP TABLE IF EXISTS sluice_test.cli_basic' || true
finish
