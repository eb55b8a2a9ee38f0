#!/usr/bin/python3
"""failover (issue #8, section 5): a Sluice with [monitor] (SLUICE_PORT + 510, admin + 510;
interval 250 ms, failover_hold_ms 30000) in front of the real topology, while a writer and a
reader client run and four idle sessions wait:

 1. The primary is stopped, then replica1 promoted (tests/fixtures/topology.sh promote):
    no client connection is dropped (the writer's, the reader's and the idle sessions' own
    connections go on; the writer may get an error only for statements sent while no primary
    answered), reads keep succeeding while no primary is reachable (the replicas, their I/O
    threads "Connecting", stay in rotation), writes held during the failover complete on the
    new primary (its @@server_id,
    read inside a transaction through Sluice, is replica1's 2), and the time from the moment
    replica1 accepts writes (@@read_only = 0, polled directly) to the writer's first
    successful write is printed. /backends names replica1 the primary;
    sluice_failovers_total is 1 and sluice_write_hold_seconds counted the held requests.
 2. The old primary is started again (the fixture makes it a replica of replica1): the
    monitor sees it read_only and replicating, and it serves reads again.
 3. `primary` is promoted back (a switchover: the fixture's own promote, with both up) under
    a writer, and Sluice follows: writes go to server_id 1 again, and no write refused as
    read-only (1290) by the outgoing primary reaches the writer: it waits and runs on the
    new one.
The daemon must exit 0 after SIGTERM with a clean log.
"""

import os
import threading
import time

import pymysql

import itlib
from itlib import (Checks, Daemon, eq, true, env_int, env_str, wait_until, topology,
                   server_counters, selects_served, scrape_metrics, metric_value, fetch_backends,
                   by_name)

SHARED_PORT = env_int("SLUICE_PORT")
PORT = SHARED_PORT + 510
ADMIN = env_int("SLUICE_ADMIN_PORT") + 510
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
REPLICA1_PORT = env_int("SLUICE_REPLICA1_PORT")
REPLICA2_PORT = env_int("SLUICE_REPLICA2_PORT")
DIR = os.path.join(env_str("SLUICE_IT_DIR"), "failover")

CONFIG = f"""workers = 2
connect_timeout_ms = 1000
shutdown_grace_ms = 5000

[[listeners]]
name = "plain"
address = "127.0.0.1"
port = {PORT}

[[backends]]
name = "primary"
host = "127.0.0.1"
port = {PRIMARY_PORT}
role = "primary"

[[backends]]
name = "replica1"
host = "127.0.0.1"
port = {REPLICA1_PORT}
role = "replica"

[[backends]]
name = "replica2"
host = "127.0.0.1"
port = {REPLICA2_PORT}
role = "replica"

[[users]]
name = "app"
password = "app"

[monitor]
user = "sluice_monitor"
password = "monitor"
interval_ms = 250
timeout_ms = 500

[routing]
failover_hold_ms = 30000

[admin]
address = "127.0.0.1"
port = {ADMIN}

[logging]
level = "info"
"""

DAEMON = Daemon(DIR, "failover", CONFIG, port=PORT, admin=ADMIN)


def backends():
    return by_name(fetch_backends(ADMIN))


def connect(port=PORT):
    return itlib.connect(port, read_timeout=60, write_timeout=60)


def primary_server_id():
    """@@server_id of the primary as Sluice sees it: inside a transaction."""
    c = connect()
    try:
        with c.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT @@server_id")
            sid = cur.fetchone()[0]
            cur.execute("COMMIT")
        return sid
    finally:
        c.close()


class Client(threading.Thread):
    """One connection running a statement in a loop; records each outcome with its time."""

    def __init__(self, sql):
        super().__init__(daemon=True)
        self.sql = sql
        self.stop = threading.Event()
        self.ok = []      # times of successes
        self.errors = []  # (time, error)
        self.conn = connect()
        self.fatal = None

    def run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                with self.conn.cursor() as cur:
                    cur.execute(self.sql.format(n=n))
                    cur.fetchall()
                self.ok.append(time.monotonic())
            except pymysql.err.OperationalError as e:
                if e.args and e.args[0] in (2006, 2013, 2014):  # the client's own: dropped
                    self.fatal = e
                    return
                self.errors.append((time.monotonic(), e.args))
            time.sleep(0.01)


def setup():
    with connect(PRIMARY_PORT) as d, d.cursor() as c:
        c.execute("CREATE TABLE IF NOT EXISTS failover_t (id INT AUTO_INCREMENT PRIMARY KEY, "
                  "n INT)")
    topology("wait-sync")
    DAEMON.start()
    true(wait_until(lambda: backends()["primary"]["role"] == "primary", 10), "a first snapshot")


STATE = {}


def check_failover():
    writer = Client("INSERT INTO failover_t (n) VALUES ({n})")
    reader = Client("SELECT COUNT(*) FROM failover_t")
    idle = [connect() for _ in range(4)]
    for c in idle:
        with c.cursor() as cur:
            cur.execute("INSERT INTO failover_t (n) VALUES (-1)")
            cur.execute("SELECT COUNT(*) FROM failover_t")
    writer.start()
    reader.start()
    time.sleep(1.0)
    eq(primary_server_id(), 1, "before: the primary's @@server_id through Sluice")
    before_metrics = scrape_metrics(ADMIN)

    promoted = {}

    def watch_read_only():
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                c = pymysql.connect(host="127.0.0.1", port=REPLICA1_PORT, user="app",
                                    password="app", connect_timeout=2)
                with c.cursor() as cur:
                    cur.execute("SELECT @@read_only")
                    if cur.fetchone()[0] == 0:
                        promoted["at"] = time.monotonic()
                        c.close()
                        return
                c.close()
            except pymysql.err.Error:
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=watch_read_only, daemon=True)
    watcher.start()
    topology("stop", "primary")
    stopped_at = time.monotonic()
    time.sleep(1.0)  # the monitor sees the primary gone; writes are held meanwhile
    topology("promote", "replica1")
    watcher.join(60)
    true("at" in promoted, "replica1 accepted writes (@@read_only = 0)")
    true(wait_until(lambda: any(t > promoted["at"] for t in writer.ok), 30),
         "the writer wrote again after the promotion")
    resumed = min(t for t in writer.ok if t > promoted["at"]) - promoted["at"]
    gap = min(t for t in writer.ok if t > stopped_at) - stopped_at
    STATE["resume"] = resumed
    print(f"     first write {resumed * 1000:.0f} ms after replica1 accepted writes "
          f"(writes paused {gap:.2f} s from the primary's stop); writer errors "
          f"{[e for _, e in writer.errors]}")
    time.sleep(0.5)
    writer.stop.set()
    reader.stop.set()
    writer.join(30)
    reader.join(30)
    eq(writer.fatal, None, "the writer's connection was not dropped")
    eq(reader.fatal, None, "the reader's connection was not dropped")
    true(len(writer.errors) <= 2,
         f"the writer got an error only for what was in flight when the primary stopped: "
         f"{writer.errors}")
    # A read that had to go to the primary (its consistency wait timed out) when the primary
    # died gets the same error as a write in flight; reads on replicas go on.
    true(len(reader.errors) <= 1, f"the reader's errors: {reader.errors}")
    true(any(stopped_at < t < promoted["at"] for t in reader.ok),
         "the reader kept reading while no primary was reachable")
    eq(primary_server_id(), 2, "after: the primary through Sluice is replica1")
    for i, c in enumerate(idle):
        with c.cursor() as cur:
            cur.execute("INSERT INTO failover_t (n) VALUES (-2)")
            cur.execute("SELECT COUNT(*) FROM failover_t")
            true(cur.fetchone()[0] > 0, f"idle session {i}: write and read after the failover")
        c.close()
    b = backends()
    eq((b["replica1"]["role"], b["replica1"]["state"]), ("primary", "up"), "/backends: replica1")
    eq(b["primary"]["state"], "down", "/backends: the old primary")
    after_metrics = scrape_metrics(ADMIN)
    eq(metric_value(after_metrics, "sluice_failovers_total"), 1.0, "sluice_failovers_total")
    held = (metric_value(after_metrics, "sluice_write_hold_seconds_count") -
            metric_value(before_metrics, "sluice_write_hold_seconds_count"))
    true(held >= 1, f"sluice_write_hold_seconds counted held requests ({held:g})")


def check_old_primary_returns():
    topology("start", "primary")
    true(wait_until(lambda: backends()["primary"]["state"] == "up" and
                    backends()["primary"]["role"] == "replica", 20),
         f"the old primary is back as a replica: {backends()['primary']}")
    before = server_counters()
    conns = []
    for _ in range(12):
        c = connect()
        conns.append(c)
        with c.cursor() as cur:
            cur.execute("/* sluice: consistency=eventual */ SELECT COUNT(*) FROM failover_t")
            cur.fetchall()
    after = server_counters()
    for c in conns:
        c.close()
    served = selects_served(before, after)
    true(served["primary"] > 0, f"the old primary serves reads as a replica: {served}")
    eq(served["replica1"], 0, f"the new primary serves no reads: {served}")


def restore():
    try:
        if primary_server_id() != 1:
            # A switchover with both up: the fixture makes replica1 read-only first, then
            # promotes primary. Writes refused as read-only meanwhile wait and run there.
            writer = Client("INSERT INTO failover_t (n) VALUES ({n})")
            writer.start()
            time.sleep(0.3)
            topology("promote", "primary")
            true(wait_until(lambda: backends()["primary"]["role"] == "primary", 20),
                 "Sluice follows the switch back")
            time.sleep(0.5)
            writer.stop.set()
            writer.join(30)
            eq(primary_server_id(), 1, "the primary is server 1 again")
            eq(writer.fatal, None, "the writer's connection during the switch back")
            print(f"     switch back: writer errors {[e for _, e in writer.errors]}")
            eq([e for _, e in writer.errors if e and e[0] == 1290], [],
               "no write refused as read-only reached the writer during the switchover")
    finally:
        ok, out = DAEMON.stop_check()
        topology("wait-sync")
        true(ok, f"stop-check: {out[-2000:]}")


def main():
    checks = Checks()
    try:
        if checks.run("set-up: a Sluice with [monitor] and failover_hold_ms", setup):
            checks.run("1. primary stopped, replica1 promoted: no connection dropped, held writes "
                       "complete on the new primary", check_failover)
            checks.run("2. the old primary returns as a replica and serves reads",
                       check_old_primary_returns)
    finally:
        checks.run("3. switch back to the original primary; the daemon exits 0 with a clean log",
                   restore)
    checks.finish()


if __name__ == "__main__":
    main()
