#!/usr/bin/env bash
# Quick start 1: installs what is needed, builds, starts a local demo topology (a MariaDB
# primary with two GTID replicas and a redis-server, on loopback, as the current user; and
# three TDS test servers standing in for a SQL Server availability group) and Sluice in
# front of it with sluice.example.toml (MySQL on 6033, TDS on 11433).
#   scripts/demo.sh          start everything (again: a no-op for what already runs)
#   scripts/demo.sh stop     stop Sluice and the topology
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export SLUICE_TOPO_DIR=${SLUICE_TOPO_DIR:-/tmp/sluice-topo-$(id -u)}
pidfile=$SLUICE_TOPO_DIR/sluice.pid
logfile=$SLUICE_TOPO_DIR/sluice.log

if [ "${1:-}" = "stop" ]; then
    bash tests/fixtures/sluice.sh stop "$pidfile" || true
    bash tests/fixtures/tds_topology.sh down
    bash tests/fixtures/topology.sh down
    exit 0
fi

bash scripts/install-deps.sh
bash scripts/build.sh build
bash tests/fixtures/topology.sh up
bash tests/fixtures/tds_topology.sh up
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "demo: sluice already running (pid $(cat "$pidfile"))"
else
    SLUICE_BIN=$root/build/src/sluice SLUICE_PORT=6033 \
        bash tests/fixtures/sluice.sh start "$root/sluice.example.toml" "$pidfile" "$logfile"
fi
cat <<MSG

Sluice is running (pid $(cat "$pidfile"), log $logfile) in front of
a MariaDB primary on 3307 and replicas on 3308 and 3309, and of a simulated SQL Server
availability group (TDS test servers: primary on 11434, secondaries on 11435 and 11436).

  Connect:   mariadb -h127.0.0.1 -P6033 -uapp -papp
  SQL Server clients:  tsql -H 127.0.0.1 -p 11433 -U app -P app
  Metrics:   curl http://127.0.0.1:6090/metrics
  Stop:      scripts/demo.sh stop
MSG
