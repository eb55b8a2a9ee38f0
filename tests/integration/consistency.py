#!/usr/bin/python3
"""consistency (issue #8, section 4): read-your-writes across connections, through the shared
test daemon (its default `[routing] consistency` is "global"), with replica1 lagging by
seconds (MASTER_DELAY 2) while replica2 keeps up.

 1. global: ROUNDS rounds of an INSERT on a writer connection, then a SELECT of that row on
    one of READERS other connections (in turn, so some sit on the lagging replica): no read
    misses its row, and most of them are still answered by a replica (server_id 2 or 3, read
    in the same statement), not the primary.
 2. eventual (hint /* sluice: consistency=eventual */ on the SELECT): the same loop does read
    stale rows (so this test can see staleness at all).
 3. session (hint consistency=session): INSERT and SELECT on the same connection: no stale
    read; across connections a session-level read may be stale (not asserted: it depends
    on which replica the reader sits on).
 4. The waits are pipelined: the replicas ran MASTER_GTID_WAIT (their own
    Master_gtid_wait_count grew) during the global rounds.
 5. global, readers at once (replica1 no longer delayed): SHARED_ROUNDS rounds of an INSERT,
    then SHARED_READERS sessions reading that row at the same moment (threads released
    together): no read misses its row, most are answered by replicas, and the replicas ran
    fewer MASTER_GTID_WAIT calls than they answered reads (their own counters): sessions of
    one worker reading from one replica share one wait in flight
    (sluice_causal_waits_total{outcome="shared"} grew).
replica1's delay is removed and the replicas resynchronised at the end.
"""

import os
import threading
import time

import pymysql

from itlib import (Checks, eq, true, env_int, HOST, topology, server_counters, server_delta,
                   scrape_metrics, metric_delta)

PORT = env_int("SLUICE_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
ROUNDS = int(os.environ.get("SLUICE_CONSISTENCY_ROUNDS", "2000"))
READERS = 4
SHARED_READERS = 8
SHARED_ROUNDS = int(os.environ.get("SLUICE_CONSISTENCY_SHARED_ROUNDS", "150"))
ADMIN = env_int("SLUICE_ADMIN_PORT")


def connect(port=PORT):
    return pymysql.connect(host=HOST, port=port, user="app", password="app",
                           database="sluice_test", autocommit=True, connect_timeout=5,
                           read_timeout=30, write_timeout=30)


def setup():
    with connect(PRIMARY_PORT) as d, d.cursor() as c:
        c.execute("DROP TABLE IF EXISTS consistency_t")
        c.execute("CREATE TABLE consistency_t (id BIGINT PRIMARY KEY, v INT NOT NULL)")
    topology("wait-sync")
    topology("lag", "replica1", "2")


def rounds(n, hint, first_id, same_connection=False):
    """(stale reads, reads answered by a replica, reads) over n write-then-read rounds."""
    writer = connect()
    readers = [writer] if same_connection else [connect() for _ in range(READERS)]
    stale = on_replica = 0
    try:
        with writer.cursor() as w:
            for i in range(n):
                key = first_id + i
                w.execute("INSERT INTO consistency_t (id, v) VALUES (%s, %s)", (key, i))
                r = readers[i % len(readers)]
                with r.cursor() as c:
                    c.execute(f"{hint}SELECT (SELECT v FROM consistency_t WHERE id = %s), "
                              "@@server_id", (key,))
                    v, server_id = c.fetchone()
                if v is None:
                    stale += 1
                if server_id in (2, 3):
                    on_replica += 1
    finally:
        for c in set(readers + [writer]):
            c.close()
    return stale, on_replica, n


def check_global():
    before = server_counters()
    start = time.monotonic()
    stale, on_replica, n = rounds(ROUNDS, "", 1_000_000)
    took = time.monotonic() - start
    after = server_counters()
    waits = {name: server_delta(before, after, name, "Master_gtid_wait_count")
             for name in ("replica1", "replica2")}
    print(f"     global: {n} rounds across {READERS} readers in {took:.1f} s: {stale} stale, "
          f"{on_replica} answered by a replica; MASTER_GTID_WAIT calls {waits}")
    eq(stale, 0, "stale reads under global")
    true(on_replica >= n // 2, f"most reads still answered by replicas: {on_replica} of {n}")
    true(sum(waits.values()) > 0, f"the replicas ran the pipelined waits: {waits}")


def check_eventual():
    stale, on_replica, n = rounds(ROUNDS // 4, "/* sluice: consistency=eventual */ ", 2_000_000)
    print(f"     eventual: {n} rounds: {stale} stale, {on_replica} answered by a replica")
    true(stale > 0, f"eventual reads can be stale (replica1 is 2 s behind): {stale} of {n}")


def check_session():
    stale, on_replica, n = rounds(ROUNDS // 4, "/* sluice: consistency=session */ ", 3_000_000,
                                  same_connection=True)
    print(f"     session, same connection: {n} rounds: {stale} stale, {on_replica} answered by a "
          f"replica")
    eq(stale, 0, "stale reads of a session's own writes under session")


def check_shared_waits():
    topology("lag", "replica1", "0")
    topology("wait-sync")
    writer = connect()
    readers = [connect() for _ in range(SHARED_READERS)]
    results = []  # (value read, server_id) per read
    lock = threading.Lock()
    key = [0]
    start = threading.Barrier(SHARED_READERS + 1)
    done = threading.Barrier(SHARED_READERS + 1)
    errors = []

    def reader(conn):
        try:
            for _ in range(SHARED_ROUNDS):
                start.wait()
                with conn.cursor() as c:
                    c.execute("SELECT (SELECT v FROM consistency_t WHERE id = %s), @@server_id",
                              (key[0],))
                    row = c.fetchone()
                with lock:
                    results.append(row)
                done.wait()
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(repr(e))
            start.abort()
            done.abort()

    threads = [threading.Thread(target=reader, args=(r,)) for r in readers]
    before, metrics_before = server_counters(), scrape_metrics(ADMIN)
    try:
        for t in threads:
            t.start()
        with writer.cursor() as w:
            for i in range(SHARED_ROUNDS):
                key[0] = 4_000_000 + i
                w.execute("INSERT INTO consistency_t (id, v) VALUES (%s, %s)", (key[0], i))
                start.wait()  # every reader reads the row now
                done.wait()
    finally:
        for t in threads:
            t.join(60)
        for c in readers + [writer]:
            c.close()
    after, metrics_after = server_counters(), scrape_metrics(ADMIN)
    eq(errors, [], "reader errors")
    stale = sum(1 for v, _ in results if v is None)
    on_replicas = {sid: sum(1 for _, s in results if s == sid) for sid in (1, 2, 3)}
    waits = sum(server_delta(before, after, n, "Master_gtid_wait_count")
                for n in ("replica1", "replica2"))
    shared = metric_delta(metrics_before, metrics_after, "sluice_causal_waits_total",
                          outcome="shared")
    replica_reads = on_replicas[2] + on_replicas[3]
    print(f"     {len(results)} reads ({SHARED_READERS} at once after each of {SHARED_ROUNDS} "
          f"writes): {stale} stale, by server_id {on_replicas}; MASTER_GTID_WAIT calls on the "
          f"replicas {waits}; reads behind another session's wait {shared:g}")
    eq(len(results), SHARED_READERS * SHARED_ROUNDS, "reads done")
    eq(stale, 0, "stale reads with readers at once under global")
    true(replica_reads >= len(results) * 0.8,
         f"reads answered by replicas: {replica_reads} of {len(results)}")
    true(waits < replica_reads, f"fewer waits on the replicas ({waits}) than reads they "
                                f"answered after a write ({replica_reads})")
    true(shared > 0, f'sluice_causal_waits_total{{outcome="shared"}} grew by {shared:g}')


def cleanup():
    topology("lag", "replica1", "0")
    topology("wait-sync")
    with connect(PRIMARY_PORT) as d, d.cursor() as c:
        c.execute("DROP TABLE IF EXISTS consistency_t")


def main():
    checks = Checks()
    try:
        if checks.run("set-up: table, replica1 delayed by 2 s", setup):
            checks.run("1+4. global: writes on one connection, reads on others: 0 stale, "
                       "pipelined waits", check_global)
            checks.run("2. eventual: the same loop reads stale rows", check_eventual)
            checks.run("3. session: a connection's own writes: 0 stale", check_session)
            checks.run("5. global, readers at once: 0 stale, waits shared", check_shared_waits)
    finally:
        checks.run("clean-up: replica1 without delay, replicas in sync", cleanup)
    checks.finish()


if __name__ == "__main__":
    main()
