#!/usr/bin/env bash
# sysbench_split_ps / sysbench_split_no_ps: read/write splitting under load (issue #3).
#   sysbench_split.sh auto|disable     (--db-ps-mode: server-side prepared statements or text)
# sysbench oltp_read_only --skip_trx=on (autocommit reads only) through Sluice for a few
# seconds. Each server's SELECT counters (SHOW GLOBAL STATUS, read directly on the server)
# before and after tell where the reads ran. Passes when sysbench exits 0 without FATAL,
# errors or reconnects, ran queries, the three servers together counted at least the reads
# sysbench made, the replicas served >= 90% of them and each replica some.
# Tables are prepared directly on the primary, the replicas synchronised (topology.sh
# wait-sync) before the run, and the tables dropped at the end.
# SLUICE_IT_DIRECT=1 (validation of this script against the primary itself, never in CTest):
# the replica share is printed, not required.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need sysbench
mode=${1:?usage: sysbench_split.sh auto|disable}
case $mode in auto | disable) ;; *) echo "usage: sysbench_split.sh auto|disable" >&2; exit 2 ;; esac
: "${SLUICE_REPLICA1_PORT:?}" "${SLUICE_REPLICA2_PORT:?}" "${SLUICE_TOPOLOGY:?}"
TABLES=${SYSBENCH_TABLES:-2}
TABLE_SIZE=${SYSBENCH_TABLE_SIZE:-10000}
SECONDS_RUN=${SYSBENCH_TIME:-10}
THREADS=${SYSBENCH_THREADS:-4}
direct_mode=${SLUICE_IT_DIRECT:-0}

common=(oltp_read_only --db-driver=mysql --mysql-user=app --mysql-password=app --mysql-db=sbtest
        --tables="$TABLES" --table-size="$TABLE_SIZE")
direct=(--mysql-host=127.0.0.1 --mysql-port="$SLUICE_PRIMARY_PORT")
names=(primary replica1 replica2)
ports=("$SLUICE_PRIMARY_PORT" "$SLUICE_REPLICA1_PORT" "$SLUICE_REPLICA2_PORT")

# Executed statements that read, as the server counts them: Com_select counts text SELECTs and
# executed prepared SELECTs; Com_stmt_execute is printed too.
# counters PORT -> "com_select com_stmt_execute"
counters() {
    mariadb --no-defaults --connect-timeout=5 -h127.0.0.1 -P"$1" -uapp -papp -N -B -e \
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select', 'Com_stmt_execute')" |
        awk '$1 == "Com_select" { s = $2 } $1 == "Com_stmt_execute" { e = $2 } END { print s + 0, e + 0 }'
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
if ! sync_out=$(bash "$SLUICE_TOPOLOGY" wait-sync 2>&1); then
    echo "$sync_out" >&2
    echo "FAIL - the replicas did not catch up with the prepared tables" >&2
    exit 1
fi

declare -a sel0 exe0 sel1 exe1
for i in 0 1 2; do read -r "sel0[$i]" "exe0[$i]" < <(counters "${ports[i]}"); done
rc=0
out=$(sysbench "${common[@]}" --mysql-host="$SLUICE_HOST" --mysql-port="$SLUICE_PORT" \
    --threads="$THREADS" --time="$SECONDS_RUN" --db-ps-mode="$mode" --skip_trx=on \
    --report-interval=5 run 2>&1) || rc=$?
for i in 0 1 2; do read -r "sel1[$i]" "exe1[$i]" < <(counters "${ports[i]}"); done
echo "$out"

expect_eq "sysbench run exits 0" "$rc" 0
if grep -q FATAL <<<"$out"; then fail "sysbench printed FATAL: $(grep -m3 FATAL <<<"$out")"; else
    pass "no FATAL in the sysbench output"; fi
reads=$(awk '/^ +read:/ { print $2 }' <<<"$out")
writes=$(awk '/^ +write:/ { print $2 }' <<<"$out")
queries=$(awk '/^ +queries:/ { print $2 }' <<<"$out")
errors=$(awk '/^ +ignored errors:/ { print $3 }' <<<"$out")
reconnects=$(awk '/^ +reconnects:/ { print $2 }' <<<"$out")
echo "sysbench: reads=$reads writes=$writes queries=$queries ignored_errors=$errors reconnects=$reconnects"
if [[ $queries =~ ^[0-9]+$ ]] && [ "$queries" -gt 0 ]; then pass "queries: $queries > 0"; else
    fail "queries: expected a number > 0, got [$queries]"; fi
expect_eq "writes (oltp_read_only)" "$writes" 0
expect_eq "errors" "$errors" 0
expect_eq "reconnects" "$reconnects" 0

declare -a sel exe
total=0
for i in 0 1 2; do
    sel[i]=$((sel1[i] - sel0[i]))
    exe[i]=$((exe1[i] - exe0[i]))
    total=$((total + sel[i]))
    echo "${names[i]}: Com_select +${sel[i]}, Com_stmt_execute +${exe[i]}"
done
replicas=$((sel[1] + sel[2]))
if [[ $reads =~ ^[0-9]+$ ]] && [ "$reads" -gt 0 ] && [ "$total" -ge "$reads" ]; then
    pass "the servers counted $total SELECTs for sysbench's $reads reads"
else
    fail "the servers counted $total SELECTs (Com_select), sysbench made [$reads] reads"
fi
if [ "$mode" = auto ]; then
    executes=$((exe[0] + exe[1] + exe[2]))
    if [[ $reads =~ ^[0-9]+$ ]] && [ "$executes" -ge "$reads" ]; then
        pass "--db-ps-mode=auto: the servers executed $executes prepared statements for $reads reads"
    else
        fail "--db-ps-mode=auto: expected >= [$reads] COM_STMT_EXECUTE on the servers, counted $executes"
    fi
else
    expect_eq "--db-ps-mode=disable: no COM_STMT_EXECUTE on any server" \
        "$((exe[0] + exe[1] + exe[2]))" 0
fi
share=$(awk -v r="$replicas" -v t="$total" 'BEGIN { printf "%.1f", t ? 100 * r / t : 0 }')
echo "replicas served $replicas of $total SELECTs ($share%)"
if [ "$direct_mode" = 1 ]; then
    echo "skip - replica share (SLUICE_IT_DIRECT=1)"
else
    if [ "$total" -gt 0 ] && [ $((replicas * 10)) -ge $((total * 9)) ]; then
        pass "replicas served $share% (>= 90%) of the SELECTs"
    else
        fail "replicas served $replicas of $total SELECTs ($share%), expected >= 90%"
    fi
    for i in 1 2; do
        if [ "${sel[i]}" -gt $((total / 10)) ]; then
            pass "${names[i]} served ${sel[i]} SELECTs (> 10% of all)"
        else
            fail "${names[i]} served ${sel[i]} of $total SELECTs, expected > 10%"
        fi
    done
fi
finish
