#!/usr/bin/env bash
# sluice_down (CTest fixture cleanup): fails if the shared Sluice died during the tests or
# logged a critical error / an exception that ended a session; then stops it by pid.
#   sluice_down.sh PIDFILE LOGFILE
set -uo pipefail
pf=${1:?usage: sluice_down.sh PIDFILE LOGFILE}
log=${2:?usage: sluice_down.sh PIDFILE LOGFILE}
fixture=$(dirname "${BASH_SOURCE[0]}")/../fixtures/sluice.sh
rc=0
if ! bash "$fixture" status "$pf"; then
    echo "FAIL - sluice died during the tests; last lines of $log:" >&2
    tail -n 40 "$log" >&2
    rc=1
fi
# Only this run's part of the log: from the last start (the line about the primary).
from=$(grep -n -E ' primary .* is |did not answer at start' "$log" 2>/dev/null | tail -n 1 | cut -d: -f1)
if bad=$(tail -n +"${from:-1}" "$log" | grep -E ' (critical|error) |session ended by exception|worker [0-9]+ stopped'); then
    echo "FAIL - sluice logged errors during the tests:" >&2
    echo "$bad" | head -n 20 >&2
    rc=1
fi
bash "$fixture" stop "$pf" || rc=1
exit $rc
