#!/usr/bin/python3
"""read_your_writes: after an autocommit write, the same session's next read sees it, even
though reads go to replicas (issue #3: Sluice waits with MASTER_GTID_WAIT for the write's
GTID on the session's replica, bounded; on timeout the primary answers).

Phase 1: CONNECTIONS sessions (spread over both replicas) each run ROUNDS rounds of
`INSERT` then an immediate `SELECT` of that row; no read may miss its row. Phase 2: the same
with replica1's SQL thread stopped (topology.sh stop-sql replica1), so replica1 never catches
up: still no stale read and no error, and sluice_causal_waits_total{outcome="timeout"} grew.
The SQL thread is always restarted and the replicas resynchronised at the end.

Every read names the server that answered it in the same statement (`SELECT (SELECT v ...),
@@server_id`): a test that passed because every read after a write went to the primary would
prove nothing, so the reads after writes must still reach the replicas -- in phase 1 at least
MIN_REPLICA_SHARE of them and on both replicas, in phase 2 at least MIN_REPLICA_SHARE_LAGGING
of them (replica2's sessions, and replica1's once they moved on).

The reads carry /* sluice: consistency=session */: this test is about a session reading its
own writes (the shared daemon's default, "global", would also make every session wait for
the other sessions' writes; tests/integration/consistency.py covers that level).

SLUICE_IT_DIRECT=1 (validation of this script against the primary itself, never in CTest):
which replica a session uses and the metrics are not checked.
"""

import os
import statistics
import threading
import time

import pymysql

from itlib import (Checks, eq, true, env_int, HOST, DIRECT, expect_replica, scrape_metrics,
                   metric_delta, topology, replica_ports, sync_replicas)

PORT = env_int("SLUICE_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
REPLICA_PORTS = replica_ports()
ADMIN = None if DIRECT else env_int("SLUICE_ADMIN_PORT")
DB = "sluice_test"
SESSION = "/* sluice: consistency=session */ "
# 2,000 rounds per phase. Eight sessions rather than four: in phase 2 each round of a session
# on the stopped replica costs one causal-wait timeout, and the sessions run in parallel.
CONNECTIONS = int(os.environ.get("SLUICE_RYW_CONNECTIONS", "8"))
ROUNDS = int(os.environ.get("SLUICE_RYW_ROUNDS", "250"))
# Share of the reads after writes the replicas (server_id 2, 3) must have answered. With the
# replicas in sync a wait almost never times out (and a session that timed out reads
# elsewhere only for replica_retry_ms); with replica1 stopped, about half the sessions sit on
# replica2 from the start.
MIN_REPLICA_SHARE = 0.8
MIN_REPLICA_SHARE_LAGGING = 0.6


def connect(port=PORT, **kw):
    args = dict(host=HOST, port=port, user="app", password="app", database=DB,
                charset="utf8mb4", connect_timeout=5, read_timeout=30, write_timeout=30,
                autocommit=True)
    args.update(kw)
    return pymysql.connect(**args)


def setup():
    with connect(PRIMARY_PORT) as d, d.cursor() as c:
        c.execute("DROP TABLE IF EXISTS ryw_t")
        c.execute("CREATE TABLE ryw_t (id BIGINT PRIMARY KEY, session INT NOT NULL, "
                  "v VARCHAR(40) NOT NULL) ENGINE=InnoDB")
        sync_replicas(d, connect)


class Session(threading.Thread):
    """One client session: ROUNDS x (INSERT a row, SELECT it at once)."""

    def __init__(self, phase, number):
        super().__init__(name=f"phase{phase}-session{number}")
        self.base = phase * 1_000_000 + number * 10_000
        self.number = number
        self.server_id = None
        self.rounds = 0
        self.stale = []          # ids whose immediate read did not return the written row
        self.errors = []         # "round N: error" strings
        self.read_latency = []   # seconds per SELECT
        self.served = {}         # server_id -> reads after a write it answered

    def run(self):
        try:
            conn = connect()
        except Exception as e:  # noqa: BLE001 -- reported by the check
            self.errors.append(f"connect: {type(e).__name__}: {e}")
            return
        try:
            with conn.cursor() as c:
                # A read before any write: the replica this session reads from.
                c.execute(SESSION + "SELECT @@server_id")
                self.server_id = c.fetchone()[0]
                for i in range(ROUNDS):
                    row_id = self.base + i
                    value = f"s{self.number}-r{i}-{row_id}"
                    try:
                        c.execute("INSERT INTO ryw_t (id, session, v) VALUES (%s, %s, %s)",
                                  (row_id, self.number, value))
                        t0 = time.perf_counter()
                        # The row (NULL if missing) and the server that answered, in one
                        # statement.
                        c.execute(SESSION + "SELECT (SELECT v FROM ryw_t WHERE id = %s), "
                                  "@@server_id", (row_id,))
                        got = c.fetchall()
                        self.read_latency.append(time.perf_counter() - t0)
                    except Exception as e:  # noqa: BLE001 -- counted, the session stops
                        self.errors.append(f"round {i}: {type(e).__name__}: {e}")
                        return
                    self.rounds += 1
                    served_by = got[0][1] if len(got) == 1 else None
                    self.served[served_by] = self.served.get(served_by, 0) + 1
                    if len(got) != 1 or got[0][0] != value:
                        self.stale.append((row_id, got))
        finally:
            conn.close()


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def run_phase(phase, label):
    """Runs CONNECTIONS sessions in parallel; returns them, prints timings."""
    sessions = [Session(phase, n) for n in range(CONNECTIONS)]
    t0 = time.monotonic()
    for s in sessions:
        s.start()
    for s in sessions:
        s.join(timeout=240)
        true(not s.is_alive(), f"{label}: session {s.number} still running after 240 s")
    elapsed = time.monotonic() - t0
    rounds = sum(s.rounds for s in sessions)
    print(f"     {label}: {rounds} rounds in {elapsed:.2f}s ({rounds / elapsed:.0f} rounds/s), "
          f"{CONNECTIONS} sessions")
    by_server = {}
    for s in sessions:
        by_server.setdefault(s.server_id, []).append(s)
    for server_id, group in sorted(by_server.items(), key=lambda kv: str(kv[0])):
        lat = [x for s in group for x in s.read_latency]
        print(f"       server_id {server_id}: {len(group)} sessions, {len(lat)} reads, read latency "
              f"p50 {percentile(lat, 0.5) * 1000:.2f} ms, p99 {percentile(lat, 0.99) * 1000:.2f} ms, "
              f"max {max(lat, default=float('nan')) * 1000:.2f} ms"
              + (f", mean {statistics.mean(lat) * 1000:.2f} ms" if lat else ""))
    return sessions


def served_by(sessions):
    """{server_id: reads after a write it answered} over SESSIONS."""
    out = {}
    for s in sessions:
        for server_id, n in s.served.items():
            out[server_id] = out.get(server_id, 0) + n
    return out


def check_replicas_served(sessions, label, min_share, both_replicas):
    """The reads after writes reached the replicas, as the servers answered."""
    served = served_by(sessions)
    total = sum(served.values())
    on_replicas = sum(n for server_id, n in served.items() if server_id in (2, 3))
    print(f"     {label}: reads after a write answered by server_id "
          f"{dict(sorted(served.items(), key=lambda kv: str(kv[0])))}")
    if DIRECT:
        return
    true(total > 0 and on_replicas >= min_share * total,
         f"{label}: the replicas answered {on_replicas} of {total} reads after a write "
         f"(by server_id: {served}); expected >= {min_share:.0%}")
    if both_replicas:
        for server_id in (2, 3):
            true(served.get(server_id, 0) > 0,
                 f"{label}: server_id {server_id} answered no read after a write ({served})")


def check_sessions(sessions, label, both_replicas):
    errors = [f"session {s.number}: {e}" for s in sessions for e in s.errors]
    stale = [(s.number, s.server_id, row) for s in sessions for row in s.stale]
    eq(errors[:5], [], f"{label}: errors ({len(errors)} in all)")
    eq(sum(s.rounds for s in sessions), CONNECTIONS * ROUNDS, f"{label}: rounds completed")
    eq(stale[:5], [], f"{label}: stale reads (session, server_id, (id, rows read)) -- "
                      f"{len(stale)} in all")
    for s in sessions:
        expect_replica(s.server_id, f"{label}: session {s.number}'s first read")
    if both_replicas and not DIRECT:
        eq(sorted({s.server_id for s in sessions}), [2, 3], f"{label}: replicas used by the sessions")


def causal(before, after, outcome):
    return metric_delta(before, after, "sluice_causal_waits_total", outcome=outcome)


def test_replicas_in_sync():
    before = None if DIRECT else scrape_metrics(ADMIN)
    sessions = run_phase(1, "replicas in sync")
    check_sessions(sessions, "replicas in sync", both_replicas=True)
    check_replicas_served(sessions, "replicas in sync", MIN_REPLICA_SHARE, both_replicas=True)
    if DIRECT:
        return
    after = scrape_metrics(ADMIN)
    ok, timeout, error = (causal(before, after, o) for o in ("ok", "timeout", "error"))
    print(f"     causal waits: ok +{ok:g}, timeout +{timeout:g}, error +{error:g}")
    true(ok >= 1, f'sluice_causal_waits_total{{outcome="ok"}} grew by {ok:g}: no read waited '
                  "for its write on a replica")
    eq(error, 0, 'sluice_causal_waits_total{outcome="error"} growth')
    # Every wait answered is timed in sluice_causal_wait_seconds.
    timed = metric_delta(before, after, "sluice_causal_wait_seconds_count")
    waited_s = metric_delta(before, after, "sluice_causal_wait_seconds_sum")
    print(f"     sluice_causal_wait_seconds: +{timed:g} waits, mean "
          f"{1000 * waited_s / max(timed, 1):.2f} ms")
    eq(timed, ok + timeout, "sluice_causal_wait_seconds_count growth = waits ok + timeout")
    true(0 < waited_s < timed * 1.0, f"sluice_causal_wait_seconds_sum grew by {waited_s:.4f} s "
                                     "(more than 0, under 1 s per wait)")


def sql_thread_running(name):
    with connect(REPLICA_PORTS[name]) as r, r.cursor(pymysql.cursors.DictCursor) as c:
        c.execute("SHOW SLAVE STATUS")
        return c.fetchone()["Slave_SQL_Running"]


def test_replica1_stopped():
    before = None if DIRECT else scrape_metrics(ADMIN)
    try:
        topology("stop-sql", "replica1")
        eq(sql_thread_running("replica1"), "No", "replica1's SQL thread after stop-sql")
        sessions = run_phase(2, "replica1 SQL thread stopped")
        # The lag was real: replica1 has none of this phase's rows.
        with connect(REPLICA_PORTS["replica1"]) as r:
            with r.cursor() as c:
                c.execute("SELECT COUNT(*) FROM ryw_t WHERE id >= 2000000")
                eq(c.fetchone()[0], 0, "rows of phase 2 on replica1 (its SQL thread is stopped)")
        # Here only sessions on replica1 matter (checked below), wherever the others went.
        check_sessions(sessions, "replica1 SQL thread stopped", both_replicas=False)
        check_replicas_served(sessions, "replica1 SQL thread stopped", MIN_REPLICA_SHARE_LAGGING,
                              both_replicas=False)
        on_replica1 = [s.number for s in sessions if s.server_id == 2]
        if not DIRECT:
            true(on_replica1, "no session read from replica1 in phase 2")
            after = scrape_metrics(ADMIN)
            ok, timeout, error = (causal(before, after, o) for o in ("ok", "timeout", "error"))
            print(f"     causal waits: ok +{ok:g}, timeout +{timeout:g}, error +{error:g} "
                  f"({len(on_replica1)} sessions on replica1)")
            true(timeout >= 1, f'sluice_causal_waits_total{{outcome="timeout"}} grew by {timeout:g} '
                               "with replica1's SQL thread stopped")
            eq(error, 0, 'sluice_causal_waits_total{outcome="error"} growth')
            check_timeout_moves_only_its_session()
    finally:
        errors = []
        for args in (("start-sql", "replica1"), ("wait-sync",)):
            try:
                topology(*args)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        if errors:
            raise errors[0]


def check_timeout_moves_only_its_session():
    """A timed-out wait sends that session elsewhere, not everyone: right after one, fresh
    sessions that have not written still read from replica1 (round robin gives it some)."""
    before = scrape_metrics(ADMIN)
    timed_out = False
    try:
        for i in range(8):  # new writers until one lands on replica1 and its wait times out
            with connect() as w, w.cursor() as c:
                c.execute("INSERT INTO ryw_t (id, session, v) VALUES (%s, 99, 'lag')",
                          (3000000 + i,))
                c.execute(SESSION + "SELECT v FROM ryw_t WHERE id = %s", (3000000 + i,))
                eq(c.fetchone(), ("lag",), "the writer reads its own row")
            if causal(before, scrape_metrics(ADMIN), "timeout") >= 1:
                timed_out = True
                break
        true(timed_out, "no writer's wait timed out on replica1 in 8 sessions")
        readers = []
        for _ in range(4):
            with connect() as r, r.cursor() as c:
                c.execute(SESSION + "SELECT @@server_id")
                readers.append(c.fetchone()[0])
        true(2 in readers, f"fresh sessions right after another session's timeout read from "
                           f"server_ids {readers}: replica1 (2) was avoided by everyone")
    finally:
        with connect(PRIMARY_PORT) as d, d.cursor() as c:
            c.execute("DELETE FROM ryw_t WHERE id >= 3000000")


def test_replica1_caught_up():
    eq(sql_thread_running("replica1"), "Yes", "replica1's SQL thread after start-sql")
    with connect(REPLICA_PORTS["replica1"]) as r, r.cursor() as c:
        c.execute("SELECT COUNT(*) FROM ryw_t")
        eq(c.fetchone()[0], 2 * CONNECTIONS * ROUNDS, "rows on replica1 after wait-sync")


def main():
    checks = Checks()
    if not checks.run("set-up: table on the primary, replicas caught up", setup):
        checks.finish()
    checks.run(f"{CONNECTIONS} x {ROUNDS} INSERT + SELECT, replicas in sync: no stale read, the "
               "replicas answer the reads after writes",
               test_replicas_in_sync)
    checks.run(f"{CONNECTIONS} x {ROUNDS} INSERT + SELECT, replica1 SQL thread stopped: no stale "
               "read, no error, causal waits time out", test_replica1_stopped)
    checks.run("replica1 replicating again after start-sql + wait-sync", test_replica1_caught_up)
    with connect(PRIMARY_PORT) as d, d.cursor() as c:
        c.execute("DROP TABLE IF EXISTS ryw_t")
    checks.finish()


if __name__ == "__main__":
    main()
