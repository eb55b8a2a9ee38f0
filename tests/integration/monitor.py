#!/usr/bin/python3
"""monitor (issue #8, sections 2, 3 and 6): a Sluice with [monitor] in front of the real
topology, plus a fourth backend `hang` behind a delay relay in blackhole mode (it accepts and
never answers), runs on SLUICE_PORT + 500 (admin SLUICE_ADMIN_PORT + 500; the relay on
SLUICE_PORT + 501). Config, pid file and log in $SLUICE_IT_DIR/monitor/; the daemon must exit 0
after SIGTERM with a clean log (sluice.sh stop-check).

Where reads ran is read from the servers (Com_select minus MASTER_GTID_WAIT calls, read
directly on each server; the monitor's probes run no SELECT, which check 2 proves).

 1. /backends answers JSON with name, role, state, lag_ms, rtt_ms, zone, gtid, outstanding,
    reads for every backend: the three servers up (measured RTT, sub-second lag, their GTID
    position), `hang` down; the topology version keeps growing although `hang`'s probes
    never answer (a hanging probe delays no other); /metrics has sluice_backend_up / _role /
    _lag_seconds / _rtt_seconds.
 2. The heartbeat row exists on the primary (sluice.heartbeat) and on both replicas, and an
    idle second of monitoring adds no Com_select on any server.
 3. Lag: with writes running, replica1's SQL thread is stopped: within two monitor intervals
    (plus scheduling slack) /backends says replica1 is lagging and not replicating; from then
    on no read of any session (sessions that held replica1, and new ones) reaches replica1;
    replica2 serves them. SQL thread started again: replica1 is up and serves reads again.
 4. max_lag: replica1 delayed by 3 s (MASTER_DELAY) with writes running: its measured lag
    passes [routing] max_lag_ms = 1000, reads avoid it; a hint (max_lag=20s), a user (app2:
    max_lag_ms 20000) and a query rule (max_lag_ms 20000), each with consistency eventual,
    let reads go there again, as the client sees from @@server_id.
 5. Hanging backend: no session ever chose `hang` (its own relay saw no client connection
    but the monitor's) and reads never waited for it.
 6. Distance: a second daemon (SLUICE_PORT + 502, admin + 502) reaches each replica through a
    relay of its own (SLUICE_PORT + 503, + 504), one adding 5 ms each way: at least 90% of 40
    new sessions read from the near replica; the delays swapped, the split follows.
 7. Zones: a third daemon (SLUICE_PORT + 505, admin + 505) in zone "b" with replica2 in zone
    "b" and replica1 in "a", both direct: replica2 takes the reads.
"""

import os
import threading
import time

import itlib
from itlib import (Checks, Daemon, eq, true, env_int, env_str, wait_until, topology,
                   server_counters, selects_served, scrape_metrics, metric_value, fetch_backends,
                   by_name)

SHARED_PORT = env_int("SLUICE_PORT")
PORT = SHARED_PORT + 500
ADMIN = env_int("SLUICE_ADMIN_PORT") + 500
RELAY_PORT = SHARED_PORT + 501
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
REPLICA1_PORT = env_int("SLUICE_REPLICA1_PORT")
REPLICA2_PORT = env_int("SLUICE_REPLICA2_PORT")
DIR = os.path.join(env_str("SLUICE_IT_DIR"), "monitor")
INTERVAL_MS = 500

CONFIG = f"""workers = 2
connect_timeout_ms = 1000
client_handshake_timeout_ms = 5000
shutdown_grace_ms = 5000
zone = "a"

[[listeners]]
name = "plain"
address = "127.0.0.1"
port = {PORT}

[[backends]]
name = "primary"
host = "127.0.0.1"
port = {PRIMARY_PORT}
role = "primary"
zone = "a"

[[backends]]
name = "replica1"
host = "127.0.0.1"
port = {REPLICA1_PORT}
role = "replica"
zone = "a"

[[backends]]
name = "replica2"
host = "127.0.0.1"
port = {REPLICA2_PORT}
role = "replica"
zone = "a"

[[backends]]
name = "hang"
host = "127.0.0.1"
port = {RELAY_PORT}
role = "replica"
zone = "a"

[[users]]
name = "app"
password = "app"

# Its own staleness: reads may come from a replica up to 20 s behind, unchecked.
[[users]]
name = "app2"
password = "app2"
max_lag_ms = 20000
consistency = "eventual"

[[query_rules]]
name = "lag-ok"
match_digest = "monitor_rule_lag_ok"
route = "replica"
max_lag_ms = 20000
consistency = "eventual"

[monitor]
user = "sluice_monitor"
password = "monitor"
interval_ms = {INTERVAL_MS}
timeout_ms = 1000

[routing]
max_lag_ms = 1000

[admin]
address = "127.0.0.1"
port = {ADMIN}

[logging]
level = "info"
"""


def relay(*args):
    return itlib.relay(DIR, *args)


def backends():
    return fetch_backends(ADMIN)


def connect(port=PORT, user="app"):
    return itlib.connect(port, user)


def direct(port):
    return itlib.connect(port, database=None)


class Writer:
    """Inserts rows through Sluice until stopped: replication has work to do."""

    def __init__(self):
        self.stop = threading.Event()
        self.count = 0
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        try:
            c = connect()
            with c.cursor() as cur:
                while not self.stop.is_set():
                    cur.execute("INSERT INTO monitor_writes (v) VALUES (%s)", (self.count,))
                    self.count += 1
                    time.sleep(0.01)
            c.close()
        except Exception as e:  # reported by the check that stops it
            self.error = e

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        true(self.error is None, f"the writer failed: {self.error!r}")
        true(self.count > 0, "the writer wrote")


def read_rounds(sessions, rounds, sql="SELECT id FROM monitor_writes ORDER BY id DESC LIMIT 1"):
    for _ in range(rounds):
        for c in sessions:
            with c.cursor() as cur:
                cur.execute(sql)
                cur.fetchall()


DAEMON = Daemon(DIR, "monitor", CONFIG, port=PORT, admin=ADMIN)


def setup():
    c = direct(PRIMARY_PORT)
    with c.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS sluice_test.monitor_writes "
                    "(id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    c.close()
    topology("wait-sync")
    relay("start", "hang", str(RELAY_PORT), str(REPLICA2_PORT), "0", "blackhole")
    DAEMON.start()
    # The first snapshot comes once every backend was probed (hang: after its timeout).
    DAEMON.wait_first_snapshot()


def check_backends_json():
    first = backends()
    eq(first["monitor"], True, "/backends says the monitor runs")
    b = by_name(first)
    eq(sorted(b), ["hang", "primary", "replica1", "replica2"], "one entry per backend")
    for name, entry in b.items():
        for key in ("name", "role", "state", "lag_ms", "rtt_ms", "zone", "gtid", "outstanding",
                    "sessions", "reads"):
            true(key in entry, f"{name}: /backends has {key}")
    eq((b["primary"]["role"], b["primary"]["state"]), ("primary", "up"), "the primary is up")
    for name in ("replica1", "replica2"):
        e = b[name]
        eq((e["role"], e["state"], e["replicating"]), ("replica", "up", True), f"{name} is up")
        true(e["rtt_ms"] is not None and 0 < e["rtt_ms"] < 500, f"{name}: measured RTT {e['rtt_ms']}")
        true(e["lag_ms"] is not None and 0 <= e["lag_ms"] < 1000,
             f"{name}: sub-second lag measured ({e['lag_ms']})")
        true(e["gtid"].startswith("0-1-"), f"{name}: GTID position {e['gtid']!r}")
        eq(e["zone"], "a", f"{name}: zone")
    eq(b["hang"]["state"], "down", "the backend that never answers is down")
    print(f"     primary gtid {b['primary']['gtid']}, replica1 lag {b['replica1']['lag_ms']} ms "
          f"rtt {b['replica1']['rtt_ms']} ms")
    # The hanging probe holds only itself: snapshots keep coming every interval.
    v0 = first["topology_version"]
    time.sleep(2.0)
    v1 = backends()["topology_version"]
    true(v1 - v0 >= 4, f"snapshots in 2 s with a hanging backend: {v1 - v0} (>= 4 expected)")
    # `sessions`: the sessions holding a replica connection there, across workers. Pooled
    # (transaction mode, the default), a session holds one only while it uses it: here a
    # read-only transaction, which lives on its replica until it ends.
    held = [connect() for _ in range(3)]
    try:
        for c in held:
            with c.cursor() as cur:
                cur.execute("START TRANSACTION READ ONLY")
                cur.execute("SELECT 1")
                cur.fetchall()
        b = by_name(backends())
        eq(b["replica1"]["sessions"] + b["replica2"]["sessions"], 3,
           f"/backends sessions while 3 sessions hold a replica: {b}")
        eq(b["primary"]["sessions"], 0, "/backends sessions of the primary")
    finally:
        for c in held:
            c.close()
    true(wait_until(lambda: sum(e["sessions"] for e in by_name(backends()).values()) == 0, 5),
         f"/backends sessions back to 0 once they closed: {by_name(backends())}")
    samples = scrape_metrics(ADMIN)
    eq(metric_value(samples, "sluice_backend_up", backend="replica1"), 1.0, "sluice_backend_up replica1")
    eq(metric_value(samples, "sluice_backend_up", backend="hang"), 0.0, "sluice_backend_up hang")
    eq(metric_value(samples, "sluice_backend_role", backend="primary", role="primary"), 1.0,
       "sluice_backend_role primary")
    true(any(n == "sluice_backend_lag_seconds" and l.get("backend") == "replica2"
             for n, l, _ in samples), "sluice_backend_lag_seconds for replica2")
    true(metric_value(samples, "sluice_backend_rtt_seconds", backend="replica1") > 0,
         "sluice_backend_rtt_seconds replica1")


def check_heartbeat_no_selects():
    for port, name in ((PRIMARY_PORT, "primary"), (REPLICA1_PORT, "replica1"),
                       (REPLICA2_PORT, "replica2")):
        c = direct(port)
        with c.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM sluice.heartbeat")
            n = cur.fetchone()[0]
        c.close()
        true(n >= 1, f"{name}: the heartbeat row is there ({n})")
    before = server_counters()
    time.sleep(1.5)
    after = server_counters()
    served = selects_served(before, after)
    # server_counters itself runs SHOW GLOBAL STATUS, no SELECT.
    eq(served, {"primary": 0, "replica1": 0, "replica2": 0},
       "SELECTs the servers ran during 1.5 s of monitoring")


def detected(name, states, timeout):
    """Seconds until /backends shows NAME in one of STATES (polled every 20 ms), or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if by_name(backends())[name]["state"] in states:
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def check_lag_sql_thread():
    held = [connect() for _ in range(6)]
    read_rounds(held, 2)  # each session now holds a replica connection
    with Writer():
        time.sleep(0.5)
        topology("stop-sql", "replica1")
        try:
            took = detected("replica1", ("lagging",), 5)
            true(took is not None, "replica1 shown lagging within 5 s of its SQL thread stopping")
            print(f"     replica1 out of rotation {took * 1000:.0f} ms after STOP SLAVE SQL_THREAD "
                  f"(interval {INTERVAL_MS} ms)")
            true(took <= 2 * INTERVAL_MS / 1000 + 0.5,
                 f"out of rotation within two intervals (+0.5 s slack): {took:.2f} s")
            entry = by_name(backends())["replica1"]
            eq(entry["replicating"], False, "/backends: replica1 not replicating")
            fresh = [connect() for _ in range(6)]
            before = server_counters()
            read_rounds(held + fresh, 5)
            after = server_counters()
            served = selects_served(before, after)
            eq(served["replica1"], 0, "reads on replica1 while its SQL thread is stopped")
            eq(served["replica2"], 60, "reads replica2 served (12 sessions x 5)")
            for c in fresh:
                c.close()
        finally:
            topology("start-sql", "replica1")
    took = detected("replica1", ("up",), 5)
    true(took is not None, "replica1 up again within 5 s of its SQL thread starting")
    fresh = [connect() for _ in range(8)]
    before = server_counters()
    read_rounds(held + fresh, 5)
    after = server_counters()
    served = selects_served(before, after)
    true(served["replica1"] > 0, f"replica1 serves reads again: {served}; /backends {backends()}")
    eq(served["primary"], 0, f"no read went to the primary: {served}")
    for c in held + fresh:
        c.close()


def check_max_lag():
    topology("lag", "replica1", "3")
    try:
        with Writer():
            took = detected("replica1", ("lagging",), 10)
            true(took is not None, "replica1 (MASTER_DELAY 3 s) shown lagging")
            entry = by_name(backends())["replica1"]
            true(entry["replicating"] and entry["lag_ms"] > 1000,
                 f"replicating, measured lag over max_lag_ms 1000: {entry}")
            print(f"     replica1 with MASTER_DELAY 3 s: lag {entry['lag_ms']} ms, state "
                  f"{entry['state']}")
            sessions = [connect() for _ in range(8)]
            before = server_counters()
            read_rounds(sessions, 3)
            after = server_counters()
            eq(selects_served(before, after)["replica1"], 0, "default max_lag: no read on replica1")
            # Staleness allowed by a hint, a user and a rule: replica1 answers some reads (the
            # client sees its @@server_id 2). Each also says consistency=eventual: under the
            # default, global, the writer's writes would send those reads to the primary.
            cases = (
                ("hint", "app", "/* sluice: max_lag=20s, consistency=eventual */ "
                 "SELECT COUNT(*), @@server_id FROM monitor_writes"),
                ("user app2", "app2", "SELECT COUNT(*), @@server_id FROM monitor_writes"),
                ("rule lag-ok", "app", "SELECT COUNT(*) AS monitor_rule_lag_ok, @@server_id "
                 "FROM monitor_writes"),
            )
            for what, user, sql in cases:
                conns = [connect(user=user) for _ in range(8)]
                ids = []
                for _ in range(3):
                    for c in conns:
                        with c.cursor() as cur:
                            cur.execute(sql)
                            ids.append(cur.fetchone()[1])
                for c in conns:
                    c.close()
                true(2 in ids, f"max_lag 20 s by {what}: replica1 (server_id 2) answers some reads: "
                     f"{sorted(set(ids))}; /backends {backends()}")
            for c in sessions:
                c.close()
    finally:
        topology("lag", "replica1", "0")
    true(detected("replica1", ("up",), 15) is not None, "replica1 back within 15 s")


def check_hang_never_chosen():
    log = os.path.join(DIR, "hang.log")
    with open(log) as f:
        opens = [line for line in f if " open " in line]
    # The monitor reconnects after each timed-out probe: every connection is its own.
    samples = scrape_metrics(ADMIN)
    eq(metric_value(samples, "sluice_backend_statements_total", backend="hang"), 0.0,
       "statements sent to hang")
    true(len(opens) >= 2, f"the monitor kept probing hang ({len(opens)} connections)")
    eq(by_name(backends())["hang"]["reads"], 0, "/backends: reads on hang")


def small_config(port, admin, replica1_port, replica2_port, zone="", zones=("a", "a")):
    text = CONFIG.replace(f"port = {PORT}\n", f"port = {port}\n", 1)
    text = text.replace(f"port = {ADMIN}\n", f"port = {admin}\n")
    text = text.replace(f"port = {REPLICA1_PORT}\nrole = \"replica\"\nzone = \"a\"",
                        f"port = {replica1_port}\nrole = \"replica\"\nzone = \"{zones[0]}\"")
    text = text.replace(f"port = {REPLICA2_PORT}\nrole = \"replica\"\nzone = \"a\"",
                        f"port = {replica2_port}\nrole = \"replica\"\nzone = \"{zones[1]}\"")
    text = text.replace('zone = "a"\n\n[[listeners]]', f'zone = "{zone}"\n\n[[listeners]]')
    # No hanging backend here.
    start = text.index('[[backends]]\nname = "hang"')
    end = text.index("[[users]]")
    return text[:start] + text[end:]


def extra(name, text, port, admin):
    """Another daemon of this test, stopped with stop-check at the end of its check."""
    return Daemon(DIR, name, text, port=port, admin=admin, wait_snapshot=True)


def split(port, sessions=40):
    """Reads served per replica when `sessions` new sessions each read once."""
    before = server_counters()
    conns = []
    for _ in range(sessions):
        c = connect(port)
        conns.append(c)
        with c.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM monitor_writes")
            cur.fetchall()
    after = server_counters()
    for c in conns:
        c.close()
    return selects_served(before, after)


def check_distance():
    near, far = SHARED_PORT + 503, SHARED_PORT + 504
    relay("start", "near", str(near), str(REPLICA1_PORT), "0")
    relay("start", "far", str(far), str(REPLICA2_PORT), "5")
    try:
        with extra("distance", small_config(SHARED_PORT + 502, ADMIN + 2, near, far),
                   SHARED_PORT + 502, ADMIN + 2) as d:
            # The RTT average settles within a few probes.
            true(wait_until(lambda: (d.entries()["replica2"]["rtt_ms"] or 0) >
                            (d.entries()["replica1"]["rtt_ms"] or 0) + 5, 15),
                 f"replica2's RTT shows the 5 ms relay: {d.entries()}")
            reads = split(d.port)
            print(f"     replica2 5 ms away: reads {reads}")
            true(reads["replica1"] >= 36, f"at least 90% of 40 reads on the near replica: {reads}")
            relay("set", "near", "delay_ms=5")
            relay("set", "far", "delay_ms=0")
            true(wait_until(lambda: (d.entries()["replica1"]["rtt_ms"] or 0) >
                            (d.entries()["replica2"]["rtt_ms"] or 0) + 5, 20),
                 f"the RTTs follow the swap: {d.entries()}")
            reads = split(d.port)
            print(f"     delays swapped: reads {reads}")
            true(reads["replica2"] >= 36, f"at least 90% of 40 reads on the now near replica: {reads}")
    finally:
        relay("stop", "near")
        relay("stop", "far")


def check_zones():
    text = small_config(SHARED_PORT + 505, ADMIN + 5, REPLICA1_PORT, REPLICA2_PORT, zone="b",
                        zones=("a", "b"))
    with extra("zones", text, SHARED_PORT + 505, ADMIN + 5) as d:
        reads = split(d.port)
        print(f"     Sluice in zone b, replica2 in zone b: reads {reads}")
        eq(reads, {"primary": 0, "replica1": 0, "replica2": 40}, "reads per server")


def teardown():
    ok, out = DAEMON.stop_check()
    relay("stop", "hang")
    true(ok, f"stop-check: {out[-2000:]}")


def main():
    checks = Checks()
    try:
        if checks.run("set-up: a Sluice with [monitor] and a backend that never answers", setup):
            checks.run("1. /backends and the sluice_backend_* metrics; a hanging probe delays no "
                       "other", check_backends_json)
            checks.run("2. the heartbeat row on every server; the probes run no SELECT",
                       check_heartbeat_no_selects)
            checks.run("3. a replica whose SQL thread stops is out of rotation within two "
                       "intervals, for every session, and comes back", check_lag_sql_thread)
            checks.run("4. max_lag_ms: a delayed replica is avoided; a hint, a user or a rule allows it",
                       check_max_lag)
            checks.run("5. the hanging backend was never chosen", check_hang_never_chosen)
            checks.run("6. distance: the near replica takes the reads, and the split follows a "
                       "swap", check_distance)
            checks.run("7. zones: the own-zone replica takes the reads", check_zones)
    finally:
        checks.run("the daemon exits 0 after SIGTERM with a clean log", teardown)
    checks.finish()


if __name__ == "__main__":
    main()
