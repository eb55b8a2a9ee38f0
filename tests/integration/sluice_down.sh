#!/usr/bin/env bash
# sluice_down (CTest fixture cleanup of the shared Sluice): stops the daemon and fails if it
# died during the tests, did not exit 0 after SIGTERM, or logged (this run, read after it
# stopped, so leak reports at exit count) a sanitizer report, a critical or error line, a
# session ended by an exception or a stopped worker: tests/fixtures/sluice.sh stop-check.
#   sluice_down.sh PIDFILE LOGFILE
set -uo pipefail
pf=${1:?usage: sluice_down.sh PIDFILE LOGFILE}
log=${2:?usage: sluice_down.sh PIDFILE LOGFILE}
exec bash "$(dirname "${BASH_SOURCE[0]}")/../fixtures/sluice.sh" stop-check "$pf" "$log"
