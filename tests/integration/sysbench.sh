#!/usr/bin/env bash
# sysbench_ps / sysbench_no_ps: sysbench oltp_read_write through Sluice for a few seconds.
#   sysbench.sh auto|disable     (--db-ps-mode: server-side prepared statements or text)
# Tables are prepared directly on the primary (faster) and dropped at the end. Passes when
# sysbench exits 0 without FATAL, ran queries, with zero errors (the few it ignores must be
# deadlocks the primary itself counted, as on a direct connection) and zero
# reconnects, the servers themselves executed the prepared statements (auto: their
# Com_stmt_execute, read directly on each server, grew by about the queries sysbench made) or
# none (disable), and Sluice counted the client's COM_STMT_EXECUTEs or COM_QUERYs. A metric
# Sluice does not expose fails the test (a series not listed yet is 0 only when its family
# is on /metrics: Sluice lists a labelled series once it has been seen).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need sysbench
need curl
mode=${1:?usage: sysbench.sh auto|disable}
case $mode in auto | disable) ;; *) echo "usage: sysbench.sh auto|disable" >&2; exit 2 ;; esac
: "${SLUICE_ADMIN_PORT:?}" "${SLUICE_REPLICA1_PORT:?}" "${SLUICE_REPLICA2_PORT:?}"
TABLES=${SYSBENCH_TABLES:-4}
TABLE_SIZE=${SYSBENCH_TABLE_SIZE:-10000}
SECONDS_RUN=${SYSBENCH_TIME:-15}
THREADS=${SYSBENCH_THREADS:-4}

common=(oltp_read_write --db-driver=mysql --mysql-user=app --mysql-password=app --mysql-db=sbtest
        --tables="$TABLES" --table-size="$TABLE_SIZE")
direct=(--mysql-host=127.0.0.1 --mysql-port="$SLUICE_PRIMARY_PORT")

# metric 'NAME{LABELS}': its value; 0 if the series is not listed but its family's # TYPE line
# is; "missing" if the family is not there or /metrics does not answer.
metric() {
    local body
    body=$(curl -sf --max-time 5 "http://127.0.0.1:$SLUICE_ADMIN_PORT/metrics") || { echo missing; return; }
    awk -v k="$1" '
        BEGIN { fam = k; sub(/\{.*/, "", fam) }
        index($0, k " ") == 1 { v = $2; found = 1 }
        $1 == "#" && $2 == "TYPE" && $3 == fam { family = 1 }
        END { print found ? v : (family ? 0 : "missing") }' <<<"$body"
}
# expect_metric WHAT VALUE: VALUE is a number (not "missing").
expect_metric() {
    if [[ $2 =~ ^[0-9]+(\.[0-9]+)?(e\+?[0-9]+)?$ ]]; then pass "$1 on /metrics ($2)"; else
        fail "$1: not on /metrics ($2)"; fi
}
# Executed prepared statements as each server counts them (read directly on the servers).
server_executes() {
    local p sum=0 v
    for p in "$SLUICE_PRIMARY_PORT" "$SLUICE_REPLICA1_PORT" "$SLUICE_REPLICA2_PORT"; do
        v=$(mariadb --no-defaults --connect-timeout=5 -h127.0.0.1 -P"$p" -uapp -papp -N -B -e \
            "SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'" | cut -f2)
        [[ $v =~ ^[0-9]+$ ]] || { echo missing; return; }
        sum=$((sum + v))
    done
    echo "$sum"
}

# InnoDB deadlocks the primary itself reported (SHOW GLOBAL STATUS, read directly).
deadlocks() {
    mariadb --no-defaults --connect-timeout=5 -h127.0.0.1 -P"$SLUICE_PRIMARY_PORT" -uapp -papp -N -B \
        -e "SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'" | cut -f2
}

cleanup() { sysbench "${common[@]}" "${direct[@]}" cleanup >/dev/null 2>&1 || true; }
trap cleanup EXIT

direct_primary -e 'CREATE DATABASE IF NOT EXISTS sbtest'
cleanup
if ! prep=$(sysbench "${common[@]}" "${direct[@]}" --threads="$TABLES" prepare 2>&1); then
    echo "$prep" >&2
    echo "FAIL - sysbench prepare on the primary failed" >&2
    exit 1
fi

exec0=$(metric 'sluice_client_commands_total{command="stmt_execute"}')
query0=$(metric 'sluice_client_commands_total{command="query"}')
sexec0=$(server_executes)
dl0=$(deadlocks)
rc=0
out=$(sysbench "${common[@]}" --mysql-host="$SLUICE_HOST" --mysql-port="$SLUICE_PORT" \
    --threads="$THREADS" --time="$SECONDS_RUN" --db-ps-mode="$mode" \
    --report-interval=5 run 2>&1) || rc=$?
echo "$out"
exec1=$(metric 'sluice_client_commands_total{command="stmt_execute"}')
query1=$(metric 'sluice_client_commands_total{command="query"}')
sexec1=$(server_executes)
dl1=$(deadlocks)
for v in exec0 exec1 query0 query1; do expect_metric "$v" "${!v}"; done
for v in sexec0 sexec1; do
    if [[ ${!v} =~ ^[0-9]+$ ]]; then pass "$v: Com_stmt_execute read on the three servers"; else
        fail "$v: Com_stmt_execute not readable on every server"; fi
done

expect_eq "sysbench run exits 0" "$rc" 0
if grep -q FATAL <<<"$out"; then fail "sysbench printed FATAL: $(grep -m3 FATAL <<<"$out")"; else
    pass "no FATAL in the sysbench output"; fi
queries=$(awk '/^ +queries:/ { print $2 }' <<<"$out")
transactions=$(awk '/^ +transactions:/ { print $2 }' <<<"$out")
ignored=$(awk '/^ +ignored errors:/ { print $3 }' <<<"$out")
reconnects=$(awk '/^ +reconnects:/ { print $2 }' <<<"$out")
echo "queries=$queries transactions=$transactions ignored_errors=$ignored reconnects=$reconnects"
if [[ $queries =~ ^[0-9]+$ ]] && [ "$queries" -gt 0 ]; then pass "queries: $queries > 0"; else
    fail "queries: expected a number > 0, got [$queries]"; fi
if [[ $transactions =~ ^[0-9]+$ ]] && [ "$transactions" -gt 0 ]; then pass "transactions: $transactions > 0"; else
    fail "transactions: expected a number > 0, got [$transactions]"; fi
# sysbench retries a transaction after the errors it ignores (1213 deadlock, 1205 lock wait
# timeout, 1020): concurrent oltp_read_write transactions deadlock on a direct connection too.
# Each one it ignored must be a deadlock the primary itself counted; anything else is an error.
if [[ $dl0 =~ ^[0-9]+$ && $dl1 =~ ^[0-9]+$ && $ignored =~ ^[0-9]+$ ]]; then
    if [ "$ignored" -le $((dl1 - dl0)) ]; then
        pass "ignored errors ($ignored) are the primary's own deadlocks ($((dl1 - dl0)))"
    else
        fail "sysbench ignored $ignored errors, the primary counted $((dl1 - dl0)) deadlocks"
    fi
else
    fail "ignored errors or Innodb_deadlocks not readable: [$ignored] [$dl0] [$dl1]"
fi
expect_eq "reconnects" "$reconnects" 0

# What crossed Sluice: oltp_read_write has 18 statements per transaction.
executes=$(awk -v a="$exec0" -v b="$exec1" 'BEGIN { print int(b - a) }')
texts=$(awk -v a="$query0" -v b="$query1" 'BEGIN { print int(b - a) }')
sexecs=$(awk -v a="$sexec0" -v b="$sexec1" 'BEGIN { print int(b - a) }')
echo "sluice counted: stmt_execute +$executes, query +$texts; the servers executed $sexecs prepared statements"
if [ "$mode" = auto ]; then
    if [[ $queries =~ ^[0-9]+$ ]] && [ "$sexecs" -ge $((queries * 9 / 10)) ]; then
        pass "--db-ps-mode=auto: the servers executed $sexecs prepared statements for $queries queries"
    else
        fail "--db-ps-mode=auto: expected about $queries COM_STMT_EXECUTE on the servers, they counted $sexecs"
    fi
    if [[ $queries =~ ^[0-9]+$ ]] && [ "$executes" -ge $((queries * 9 / 10)) ]; then
        pass "--db-ps-mode=auto: sluice relayed $executes COM_STMT_EXECUTE for $queries queries"
    else
        fail "--db-ps-mode=auto: expected about $queries COM_STMT_EXECUTE through sluice, counted $executes"
    fi
else
    expect_eq "--db-ps-mode=disable: no COM_STMT_EXECUTE through sluice" "$executes" 0
    expect_eq "--db-ps-mode=disable: no COM_STMT_EXECUTE on the servers" "$sexecs" 0
    if [[ $queries =~ ^[0-9]+$ ]] && [ "$texts" -ge "$queries" ]; then
        pass "--db-ps-mode=disable: sluice relayed $texts COM_QUERY for $queries queries"
    else
        fail "--db-ps-mode=disable: expected >= $queries COM_QUERY through sluice, counted $texts"
    fi
fi
finish
