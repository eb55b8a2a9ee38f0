#!/usr/bin/python3
"""pool_load (issue #10): 5,000 concurrent client connections through a Sluice of its own
(SLUICE_PORT + 650, admin + 650; 2 workers, [pool] max_connections = 32 per backend per
worker), opened and driven by the project's load client (tests/tools/mysql_load.py, one
process, asyncio): autocommit point selects and writes (90/10) for 15 s. Checked:

  - every client connected and no statement failed (zero errors of any kind);
  - the writes reached the primary (the sum of the counter column grew by the writes);
  - no server ever had more of the app user's connections than 2 workers x 32 (sampled from
    information_schema.PROCESSLIST every 50 ms by a direct connection of the test's own, and
    Threads_connected read at the peak), so the database sees a steady handful however many
    clients come;
  - the daemon exits 0 after SIGTERM with a clean log (sluice.sh stop-check).

The open-file limit here is about 20,000: 5,000 client sockets in the load client and 5,000
plus the pools in Sluice, each process under it.
"""

import json
import os
import subprocess
import threading
import time

import itlib
from itlib import Checks, Daemon, eq, true, env_int, env_str, one

PORT = env_int("SLUICE_PORT") + 650
ADMIN = env_int("SLUICE_ADMIN_PORT") + 650
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
SERVERS = {"primary": PRIMARY_PORT, "replica1": env_int("SLUICE_REPLICA1_PORT"),
           "replica2": env_int("SLUICE_REPLICA2_PORT")}
DIR = os.path.join(env_str("SLUICE_IT_DIR"), "pool_load")
CLIENTS = int(os.environ.get("SLUICE_POOL_LOAD_CLIENTS", "5000"))
SECONDS = int(os.environ.get("SLUICE_POOL_LOAD_SECONDS", "15"))
WORKERS, POOL_MAX = 2, 32
LOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "mysql_load.py")

CONFIG = f"""workers = {WORKERS}
connect_timeout_ms = 3000
shutdown_grace_ms = 5000

[[listeners]]
name = "plain"
address = "127.0.0.1"
port = {PORT}
max_connections = 12000
{itlib.topology_backends_toml()}
[[users]]
name = "app"
password = "app"

[pool]
max_connections = {POOL_MAX}
queue_timeout_ms = 20000

[admin]
address = "127.0.0.1"
port = {ADMIN}

[logging]
level = "warn"
"""


def direct(port=PRIMARY_PORT):
    return itlib.connect(port)


def app_connections(conn):
    return one(conn, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                     "WHERE USER = 'app' AND ID <> CONNECTION_ID()")[0]


def setup():
    with direct() as d, d.cursor() as c:
        c.execute("DROP TABLE IF EXISTS pool_load_t")
        c.execute("CREATE TABLE pool_load_t (id INT PRIMARY KEY, k INT NOT NULL DEFAULT 0, "
                  "c CHAR(120) NOT NULL DEFAULT '')")
        c.execute("INSERT INTO pool_load_t (id, c) SELECT seq, REPEAT('x', 120) "
                  "FROM seq_1_to_10000")
        itlib.sync_replicas(d, lambda p: itlib.connect(p))


def main():
    checks = Checks()
    setup()
    with Daemon(DIR, "pool_load", CONFIG, port=PORT, admin=ADMIN) as d:
        def load():
            base = {}
            for name, port in SERVERS.items():
                with direct(port) as c:
                    base[name] = app_connections(c)
            before = int(one(direct(), "SELECT SUM(k) FROM pool_load_t")[0])
            peak = dict(base)
            threads_peak = {name: 0 for name in SERVERS}
            stop = threading.Event()

            def sample():
                conns = {name: direct(port) for name, port in SERVERS.items()}
                try:
                    while not stop.is_set():
                        for name, c in conns.items():
                            n = app_connections(c)
                            if n > peak[name]:
                                peak[name] = n
                                threads_peak[name] = int(
                                    one(c, "SHOW GLOBAL STATUS LIKE 'Threads_connected'")[1])
                        time.sleep(0.05)
                finally:
                    for c in conns.values():
                        c.close()

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            out = os.path.join(DIR, "load.json")
            try:
                p = subprocess.run(
                    ["/usr/bin/python3", LOAD, "--port", str(PORT), "--clients", str(CLIENTS),
                     "--duration", str(SECONDS), "--connect-rate", "1000",
                     "--mix", "read=90,write=10",
                     "--read-sql", "SELECT c FROM pool_load_t WHERE id = {id}",
                     "--write-sql", "UPDATE pool_load_t SET k = k + 1 WHERE id = {id}",
                     "--json", out], capture_output=True, text=True, timeout=SECONDS + 180)
            finally:
                stop.set()
                sampler.join(10)
            true(p.returncode == 0, f"mysql_load.py exit {p.returncode}: {p.stderr[-2000:]}")
            with open(out) as f:
                r = json.load(f)
            print(f"     {r['clients_connected']} clients, {r['queries_ok']} statements, "
                  f"{r['qps']:.0f}/s, p99 {r['latency_ms']['p99']:.0f} ms; app connections "
                  f"per server: peak {peak}, before {base}; Threads_connected at the peak "
                  f"{threads_peak}")
            eq(r["clients_connected"], CLIENTS, "clients connected")
            eq(r["connect_errors"], {}, "connect errors")
            eq(r["queries_err"], 0, f"statement errors ({r['errors_by_code']}, "
                                    f"{r['first_errors']})")
            eq(r.get("clients_lost", 0), 0, "client connections lost")
            true(r["queries_ok"] > CLIENTS, f"statements that ran: {r['queries_ok']}")
            writes = int(one(direct(), "SELECT SUM(k) FROM pool_load_t")[0]) - before
            true(writes > 0, f"writes applied on the primary: {writes}")
            for name in SERVERS:
                true(peak[name] - base[name] <= WORKERS * POOL_MAX,
                     f"{name}: at most {WORKERS} x {POOL_MAX} of Sluice's connections at once "
                     f"(peak {peak[name]}, {base[name]} before)")
            true(peak["primary"] > base["primary"], f"the sampler saw the pool's connections "
                 f"({peak})")
        checks.run(f"{CLIENTS} clients on {POOL_MAX} connections per backend per worker", load)
        true(d.alive(), "the daemon is alive")
    checks.finish()


if __name__ == "__main__":
    main()
