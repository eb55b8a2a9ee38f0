#!/usr/bin/python3
"""cache (issue #9): the result cache through real clients, in front of the real topology,
with a Sluice of its own ([cache], [[cache_rules]], [monitor]) on SLUICE_PORT + 600 (admin
SLUICE_ADMIN_PORT + 600). Config, pid file and log in $SLUICE_IT_DIR/cache/; the daemon is
stopped with `sluice.sh stop-check` (exit 0 after SIGTERM, a log free of sanitizer reports
and error lines), also when a check fails.

Whether a read was answered from the cache or by a server is read from the servers: the
SELECTs each one ran (Com_select less Sluice's MASTER_GTID_WAIT calls, itlib.selects_served),
never from Sluice's metrics alone. The tests run serially, so no other client reads.

 1. Hit and miss: a hinted read (`/* sluice: cache ttl=60s */`) runs on a replica once, then
    20 more runs run on no server and return the same row.
 2. Invalidation by a write through Sluice: 100 rounds of UPDATE then the same hinted read
    at once, in the same session and in another session: every read returns the new value,
    and the second read of each round is a hit (the servers ran one SELECT per round).
 3. [[cache_rules]]: a rule matching a digest caches without a hint; `ttl_ms = 0` in an
    earlier rule keeps its reads out; /* sluice: nocache */ beats a rule.
 4. TTL: `ttl=300ms` hits at once, and misses after 500 ms.
 5. Never cached: NOW(), RAND(), a user variable, FOR UPDATE, inside BEGIN ... COMMIT, a
    multi-table read whose tables the router cannot name (a table function), a result that
    carries a warning (served each time).
 6. Users: the same statement by two users is two entries; a rule with `shared = true` makes
    it one.
 7. Size limit: a row larger than max_result_bytes is served whole, and never cached.
 8. Settings: the same statement under two time zones is two entries (CONVERT_TZ results
    differ, so a mixed-up entry would show).
 9. No stale populate: replica1's SQL thread stopped; 2,000 rounds of UPDATE through Sluice,
    then `consistency=eventual` reads (which may read the stopped replica and see the old
    value: allowed for them), then two `global` reads (the default) of the same statement:
    they must never return an old value from the cache. Checked also that eventual reads did see
    old values (the lag was real) and that cache hits happened.
10. Transactions: a write inside BEGIN ... COMMIT invalidates when it commits; another
    session's cached read does not return the pre-commit value after COMMIT's OK.
13. Evidence during the read: replicas delayed by MASTER_DELAY; an UPDATE through Sluice,
    then a slow `eventual` read that a replica starts before applying it, and that is still
    running when the replica applies it and the monitor reads its new position. Its (old)
    answer must not be stored: a `global` read of the same statement returns the new value.
"""

import os
import threading
import time

import pymysql

import itlib
from itlib import (Checks, Daemon, eq, true, env_int, env_str, topology, one,
                   selects_during as served, topology_backends_toml, scrape_metrics,
                   metric_delta, sync_replicas, wait_until)

SHARED_PORT = env_int("SLUICE_PORT")
SHARED_ADMIN = env_int("SLUICE_ADMIN_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
PORT = SHARED_PORT + 600
ADMIN = SHARED_ADMIN + 600
DIR = os.path.join(env_str("SLUICE_IT_DIR"), "cache")
DB = "sluice_test"
MAX_RESULT = 4096


# One worker: its L1 is the whole cache, so counts are exact (L2 is what workers share).
CONFIG = f"""workers = 1
connect_timeout_ms = 1000
shutdown_grace_ms = 5000

[[listeners]]
name = "plain"
address = "127.0.0.1"
port = {PORT}
{topology_backends_toml()}
[[users]]
name = "app"
password = "app"

[[users]]
name = "app2"
password = "app2"

[monitor]
user = "sluice_monitor"
password = "monitor"
interval_ms = 250

[cache]
default_ttl_ms = 60000
max_result_bytes = {MAX_RESULT}

[cache.binlog]

[[cache_rules]]
name = "never"
match_digest = "cache_rule_t WHERE id = \\\\? AND \\\\? = \\\\?"
ttl_ms = 0

[[cache_rules]]
name = "rule"
match_digest = "FROM cache_rule_t"
ttl_ms = 60000

[[cache_rules]]
name = "shared"
match_digest = "FROM cache_shared_t"
shared = true

[admin]
address = "127.0.0.1"
port = {ADMIN}

[logging]
level = "info"
"""


def connect(user="app", **kw):
    return itlib.connect(PORT, user=user, **kw)


def direct():
    return itlib.connect(PRIMARY_PORT)


def setup():
    with direct() as d, d.cursor() as c:
        for t in ("cache_t", "cache_rule_t", "cache_shared_t", "cache_big_t", "cache_tz_t"):
            c.execute(f"DROP TABLE IF EXISTS {t}")
        c.execute("CREATE TABLE cache_t (id INT PRIMARY KEY, v INT NOT NULL)")
        c.execute("INSERT INTO cache_t VALUES (1, 0), (2, 0)")
        c.execute("CREATE TABLE cache_rule_t (id INT PRIMARY KEY, v INT NOT NULL)")
        c.execute("INSERT INTO cache_rule_t VALUES (1, 10)")
        c.execute("CREATE TABLE cache_shared_t (id INT PRIMARY KEY, v INT NOT NULL)")
        c.execute("INSERT INTO cache_shared_t VALUES (1, 20)")
        c.execute("CREATE TABLE cache_big_t (id INT PRIMARY KEY, v TEXT NOT NULL)")
        c.execute("INSERT INTO cache_big_t VALUES (1, REPEAT('x', %s))", (MAX_RESULT * 3,))
        c.execute("CREATE TABLE cache_tz_t (id INT PRIMARY KEY, t TIMESTAMP NOT NULL)")
        c.execute("INSERT INTO cache_tz_t VALUES (1, '2026-01-01 12:00:00')")
        sync_replicas(d, lambda p: itlib.connect(p))


HINT = "/* sluice: cache ttl=60s */ "


def hit_and_miss():
    with connect() as s:
        q = HINT + "SELECT id, v FROM cache_t WHERE id = 1"
        first, ran = served(lambda: one(s, q))
        eq(first, (1, 0), "first read")
        eq(ran, 1, "SELECTs the servers ran for the first (missed) read")
        rows, ran = served(lambda: [one(s, q) for _ in range(20)])
        eq(rows, [(1, 0)] * 20, "20 cached reads")
        eq(ran, 0, "SELECTs the servers ran for 20 cached reads")
        # Other sessions of the same user share the entry.
        others = [connect() for _ in range(6)]
        try:
            rows, ran = served(lambda: [one(o, q) for o in others for _ in range(3)])
        finally:
            for o in others:
                o.close()
        eq(rows, [(1, 0)] * 18, "other sessions' reads")
        eq(ran, 0, "SELECTs for 18 reads by 6 other sessions of the same user")


def invalidation():
    q = HINT + "SELECT v FROM cache_t WHERE id = 2"
    with connect() as w, connect() as other:
        def rounds():
            bad = []
            for i in range(1, 101):
                with w.cursor() as c:
                    c.execute("UPDATE cache_t SET v = %s WHERE id = 2", (i,))
                a = one(w, q)[0]
                b = one(other, q)[0]
                c2 = one(w, q)[0]
                if (a, b, c2) != (i, i, i):
                    bad.append((i, a, b, c2))
            return bad
        bad, ran = served(rounds)
        eq(bad, [], "rounds whose reads after an UPDATE did not return its value")
        # The first read after each write fills, the two others hit: one SELECT per round (a
        # few more if a fill was refused for a replica not yet known to have the write:
        # allowed, but not for most rounds).
        true(100 <= ran <= 120, f"servers ran {ran} SELECTs for 300 reads in 100 rounds "
             "(expected about 100: one fill per write)")


def rules():
    with connect() as s:
        q = "SELECT v FROM cache_rule_t WHERE id = 1"
        _, ran = served(lambda: [one(s, q) for _ in range(10)])
        eq(ran, 1, "a [[cache_rules]] match: 10 reads, SELECTs the servers ran")
        q0 = "SELECT v FROM cache_rule_t WHERE id = 1 AND 1 = 1"
        _, ran = served(lambda: [one(s, q0) for _ in range(5)])
        eq(ran, 5, "a rule with ttl_ms = 0 first: 5 reads, SELECTs the servers ran")
        qn = "/* sluice: nocache */ SELECT v FROM cache_rule_t WHERE id = 1"
        _, ran = served(lambda: [one(s, qn) for _ in range(5)])
        eq(ran, 5, "/* sluice: nocache */ beats the rule: SELECTs the servers ran")


def ttl():
    with connect() as s:
        q = "/* sluice: cache ttl=300ms */ SELECT v, id FROM cache_t WHERE id = 1"
        _, ran = served(lambda: [one(s, q) for _ in range(3)])
        eq(ran, 1, "ttl=300ms: 3 reads at once, SELECTs the servers ran")
        time.sleep(0.5)
        _, ran = served(lambda: one(s, q))
        eq(ran, 1, "ttl=300ms: a read 500 ms later runs again")


def never_cached():
    with connect() as s:
        for sql in ("SELECT v, NOW() FROM cache_t WHERE id = 1",
                    "SELECT v, RAND() FROM cache_t WHERE id = 1",
                    "SELECT v, @nothing FROM cache_t WHERE id = 1",
                    "SELECT v FROM cache_t WHERE id = 1 FOR UPDATE",
                    "SELECT v FROM cache_t, JSON_TABLE('[1]', '$[*]' COLUMNS (x INT PATH '$')) j "
                    "WHERE id = 1"):
            _, ran = served(lambda: [one(s, HINT + sql) for _ in range(3)])
            eq(ran, 3, f"never cached: {sql!r} x3, SELECTs the servers ran")
        # A result with a warning (a string compared as a number) is served, never stored.
        rows, ran = served(lambda: [one(s, HINT + "SELECT v FROM cache_t WHERE id = 1 AND "
                                         "'1x' = 1") for _ in range(3)])
        eq(ran, 3, "a result with a warning x3: SELECTs the servers ran")
        true(all(r is not None for r in rows), f"the reads with a warning answered: {rows}")

        def in_trx():
            s.begin()
            rows = [one(s, HINT + "SELECT v FROM cache_t WHERE id = 1") for _ in range(3)]
            s.commit()
            return rows
        _, ran = served(in_trx)
        eq(ran, 3, "never cached inside BEGIN ... COMMIT: SELECTs the servers ran")


def users():
    q = HINT + "SELECT v, id FROM cache_t WHERE id = 2"
    with connect("app") as a, connect("app2") as b:
        _, ran = served(lambda: (one(a, q), one(a, q)))
        eq(ran, 1, "user app: a fill then a hit")
        _, ran = served(lambda: (one(b, q), one(b, q)))
        eq(ran, 1, "user app2 does not get app's entry: a fill then a hit")
        qs = "SELECT v FROM cache_shared_t WHERE id = 1"
        _, ran = served(lambda: (one(a, qs), one(b, qs), one(a, qs), one(b, qs)))
        eq(ran, 1, "a shared rule: one entry for both users")


def size_limit():
    with connect() as s:
        q = HINT + "SELECT v FROM cache_big_t WHERE id = 1"
        rows, ran = served(lambda: [one(s, q) for _ in range(3)])
        eq([len(r[0]) for r in rows], [MAX_RESULT * 3] * 3, "large rows served whole")
        eq(ran, 3, "a result over max_result_bytes is never cached: SELECTs the servers ran")


def settings():
    # A TIMESTAMP is shown in the session's time zone.
    q = HINT + "SELECT CAST(t AS CHAR) FROM cache_tz_t WHERE id = 1"
    with connect() as a, connect() as b:
        with a.cursor() as c:
            c.execute("SET time_zone = '+00:00'")
        with b.cursor() as c:
            c.execute("SET time_zone = '+05:00'")
        ra = [one(a, q)[0] for _ in range(2)]
        rb = [one(b, q)[0] for _ in range(2)]
        true(ra[0] == ra[1] and rb[0] == rb[1], f"repeatable: {ra} {rb}")
        true(ra[0] != rb[0], f"two time zones give two answers, not one cached entry: "
             f"{ra[0]!r} vs {rb[0]!r}")


def stale_evidence():
    """For a failure's reader: each server's value and applied GTIDs, and what Sluice's
    /backends said, right after a stale read."""
    out = {}
    for name, port in itlib.server_ports().items():
        with itlib.connect(port) as c, c.cursor() as cur:
            cur.execute("SELECT v, @@gtid_current_pos, @@gtid_slave_pos FROM cache_t WHERE id = 1")
            out[name] = cur.fetchone()
    out["sluice"] = {b["name"]: (b.get("state"), b.get("gtid"), b.get("lag_ms"))
                     for b in itlib.fetch_backends(ADMIN).get("backends", [])}
    return out


def stale_populate():
    q_ev = "/* sluice: cache ttl=60s, consistency=eventual */ SELECT v FROM cache_t WHERE id = 1"
    q_gl = "/* sluice: cache ttl=60s */ SELECT v FROM cache_t WHERE id = 1"
    topology("stop-sql", "replica1")
    try:
        eventual_old = 0
        global_stale = []
        seen = []
        readers = [connect() for _ in range(4)]
        reads = 0
        try:
            def rounds():
                nonlocal eventual_old, reads
                with connect() as w:
                    for i in range(1, 2001):
                        with w.cursor() as c:
                            c.execute("UPDATE cache_t SET v = %s WHERE id = 1", (1000 + i,))
                        for r in readers:
                            if one(r, q_ev)[0] != 1000 + i:
                                eventual_old += 1
                        # Two global reads: the second finds what the first filled.
                        for r in (readers[i % 4], readers[(i + 1) % 4]):
                            got = one(r, q_gl)[0]
                            if got != 1000 + i:
                                global_stale.append((i, got))
                                if len(global_stale) == 1:
                                    seen.append(stale_evidence())
                        reads += 6
            _, ran = served(rounds)
        finally:
            for r in readers:
                r.close()
        true(reads - ran >= 1500, f"{reads} reads, {ran} SELECTs on the servers: at least 1500 "
             "answered from the cache (else this check proves little)")
        eq(global_stale, [], f"global reads that got an old value (stale populate); at the first: "
           f"{seen}")
        true(eventual_old > 0, f"eventual reads saw old values {eventual_old} times: the lag was "
             "real (else this check proves nothing)")
    finally:
        topology("start-sql", "replica1")
        with direct() as d:
            sync_replicas(d, lambda p: itlib.connect(p))


SLOW_ROWS = 600
DELAY_S = 1


def slow_read(n):
    """A cacheable read (named tables only, deterministic) whose join makes a replica work for
    a while: COUNT(*) over the whole cross join, so no early stop."""
    return ("SELECT t.v, COUNT(*) FROM cache_slow_t t, cache_slow_n a, cache_slow_n b "
            f"WHERE t.id = 1 AND a.x <= b.x AND a.x < {n} AND b.x < {n} GROUP BY t.v")


def evidence_during_read():
    """Both replicas MASTER_DELAY=1: an UPDATE through Sluice, then at once a slow `eventual`
    read (cached) that a replica starts before it applies the UPDATE. While the read runs the
    replica applies it and the monitor reads the new position. The read returns the old value
    (its snapshot is older); it must not be stored under the new versions: a `global` read of
    the same statement after the delay is gone returns the new value. The slow read is sized
    first (directly on a replica) to run for about DELAY_S + 2 s."""
    with direct() as d, d.cursor() as c:
        for t in ("cache_slow_t", "cache_slow_n"):
            c.execute(f"DROP TABLE IF EXISTS {t}")
        c.execute("CREATE TABLE cache_slow_t (id INT PRIMARY KEY, v INT NOT NULL)")
        c.execute("INSERT INTO cache_slow_t VALUES (1, 1)")
        c.execute("CREATE TABLE cache_slow_n (x INT NOT NULL)")
        c.execute("INSERT INTO cache_slow_n (x) SELECT seq FROM seq_0_to_19999")
        sync_replicas(d, lambda p: itlib.connect(p))
    # Size it: the join's cost grows as n squared.
    n, took = SLOW_ROWS, 0.0
    with itlib.connect(itlib.replica_ports()["replica1"]) as r, r.cursor() as c:
        for _ in range(4):
            t0 = time.monotonic()
            c.execute(slow_read(n))
            c.fetchall()
            took = time.monotonic() - t0
            if took >= DELAY_S + 1.5:
                break
            n = min(20000, int(n * ((DELAY_S + 2.0) / max(took, 0.05)) ** 0.5) + 1)
    true(took >= DELAY_S + 1.0, f"the slow read takes {took:.2f} s with {n} rows (needs > {DELAY_S + 1} s)")
    q_ev = "/* sluice: cache ttl=60s, consistency=eventual */ " + slow_read(n)
    q_gl = "/* sluice: cache ttl=60s */ " + slow_read(n)
    for name in ("replica1", "replica2"):
        topology("lag", name, str(DELAY_S))
    try:
        # Both back in rotation (STOP/START SLAVE may have shown them stopped for a moment).
        true(wait_until(lambda: all(b["state"] == "up" for b in itlib.fetch_backends(ADMIN)["backends"]
                                    if b["name"] != "primary"), 10),
             f"both delayed replicas in rotation: {itlib.fetch_backends(ADMIN)['backends']}")
        with connect() as w, connect() as r:
            with w.cursor() as c:
                c.execute("UPDATE cache_slow_t SET v = 2 WHERE id = 1")
            t0 = time.monotonic()
            old = one(r, q_ev)[0]
            ran = time.monotonic() - t0
        true(old == 1, f"the eventual read ran on a delayed replica before it applied the write: {old}")
        true(ran >= DELAY_S + 0.5, f"the read ran for {ran:.2f} s: longer than the delay and a monitor "
             "interval, so the replica's new position was read while it ran")
    finally:
        for name in ("replica1", "replica2"):
            topology("lag", name, "0")
    with direct() as d:
        sync_replicas(d, lambda p: itlib.connect(p))
    with connect() as r:
        eq(one(r, q_gl)[0], 2, "a global read after the write: the old answer was not stored")


def transaction_commit():
    q = HINT + "SELECT v FROM cache_t WHERE id = 2"
    with connect() as w, connect() as r:
        eq(one(r, q)[0], one(r, q)[0], "warm")
        w.begin()
        with w.cursor() as c:
            c.execute("UPDATE cache_t SET v = 5000 WHERE id = 2")
        before = one(r, q)[0]
        true(before != 5000, f"the uncommitted value is not visible: {before}")
        w.commit()
        eq(one(r, q)[0], 5000, "after COMMIT's OK another session reads the committed value")


def prepared():
    """mysql2 execute() (node): the same statement with parameters 1, 2, '1' and 1.0, three
    executions each. Each distinct bound value (and type) fills once and then hits; 1 and 2
    never share an entry (their rows differ)."""
    with direct() as d, d.cursor() as c:
        c.execute("UPDATE cache_t SET v = 111 WHERE id = 1")
        c.execute("UPDATE cache_t SET v = 222 WHERE id = 2")
        sync_replicas(d, lambda p: itlib.connect(p))
    import json
    import subprocess

    def run():
        p = subprocess.run([os.environ.get("SLUICE_NODE", "node"),
                            os.path.join(os.path.dirname(__file__), "node", "cache_execute.js")],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "SLUICE_CACHE_PORT": str(PORT)})
        true(p.returncode == 0, f"cache_execute.js: {p.stderr.strip()[-2000:]}")
        return json.loads(p.stdout.strip().splitlines()[-1])
    out, ran = served(run)
    eq(out["number:1"], [[[1, 111]]] * 3, "execute(1) x3")
    eq(out["number:2"], [[[2, 222]]] * 3, "execute(2) x3: never the entry of 1")
    eq(out["string:1"], [[[1, 111]]] * 3, "execute('1') x3")
    # 1 and 1.0 are the same JavaScript number: one entry. Fills: 1, 2 and '1' (a string
    # parameter is another type on the wire, so another key): 3 SELECTs for 12 executions.
    eq(ran, 3, "SELECTs the servers ran for 12 executions of 3 distinct bound parameters")


def binlog():
    """Writes made directly on the primary (not through Sluice), seen through the binary
    log: 20 UPDATEs, each followed by polling the cached read through Sluice until it
    returns the new value: every delay under 1 s. Then a trigger: an INSERT into cache_t
    fires a trigger that writes cache_audit; a cached read of cache_audit sees it."""
    q = HINT + "SELECT v FROM cache_t WHERE id = 1"
    delays = []
    with connect() as s, direct() as d:
        for i in range(1, 21):
            one(s, q)
            one(s, q)  # cached now
            with d.cursor() as c:
                c.execute("UPDATE cache_t SET v = %s WHERE id = 1", (7000 + i,))
            t0 = time.monotonic()
            while one(s, q)[0] != 7000 + i:
                if time.monotonic() - t0 > 5:
                    break
                time.sleep(0.002)
            delays.append(time.monotonic() - t0)
        true(max(delays) < 1.0, f"delays from a direct UPDATE to the new value through the "
             f"cache (s): max {max(delays):.3f}, median {sorted(delays)[10]:.3f}")
        with d.cursor() as c:
            c.execute("DROP TABLE IF EXISTS cache_audit")
            c.execute("CREATE TABLE cache_audit (n INT NOT NULL)")
            c.execute("INSERT INTO cache_audit VALUES (0)")
            c.execute("DROP TRIGGER IF EXISTS cache_t_audit")
            c.execute("CREATE TRIGGER cache_t_audit AFTER INSERT ON cache_t FOR EACH ROW "
                      "UPDATE cache_audit SET n = n + 1")
        qa = HINT + "SELECT n FROM cache_audit"
        t0 = time.monotonic()
        while one(s, qa)[0] != 0 and time.monotonic() - t0 < 5:
            time.sleep(0.01)
        eq(one(s, qa)[0], 0, "the audit table through the cache")
        # Through Sluice: Sluice bumps cache_t, the binary log shows cache_audit too.
        with s.cursor() as c:
            c.execute("INSERT INTO cache_t VALUES (99, 0)")
        t0 = time.monotonic()
        while one(s, qa)[0] != 1 and time.monotonic() - t0 < 5:
            time.sleep(0.002)
        took = time.monotonic() - t0
        eq(one(s, qa)[0], 1, "a trigger's write, seen through the cache")
        true(took < 1.0, f"a trigger's write invalidated within 1 s ({took:.3f} s)")
        with d.cursor() as c:
            c.execute("DROP TRIGGER cache_t_audit")
            c.execute("DELETE FROM cache_t WHERE id = 99")


def main():
    checks = Checks()
    setup()
    with Daemon(DIR, "cache", CONFIG, port=PORT, admin=ADMIN, wait_snapshot=True) as d:
        # The binary log follower starts with the first snapshot; its start bumps every table
        # (what happened before it is unknown), which would empty check 1's entry mid-check.
        true(wait_until(lambda: itlib.metric_value(scrape_metrics(ADMIN),
                                                   "sluice_cache_binlog_up") == 1.0, 10),
             "the cache follows the binary log before the checks")
        m0 = scrape_metrics(ADMIN)
        checks.run("1 hit and miss", hit_and_miss)
        checks.run("2 invalidation by writes through Sluice", invalidation)
        checks.run("3 cache rules", rules)
        checks.run("4 TTL", ttl)
        checks.run("5 never cached", never_cached)
        checks.run("6 users", users)
        checks.run("7 size limit", size_limit)
        checks.run("8 settings in the key", settings)
        checks.run("9 no stale populate", stale_populate)
        checks.run("10 transaction commit", transaction_commit)
        checks.run("11 prepared statements per bound parameters", prepared)
        checks.run("12 writes around Sluice (binary log)", binlog)
        checks.run("13 no stale populate from evidence that came while the read ran",
                   evidence_during_read)
        m1 = scrape_metrics(ADMIN)

        def metrics():
            hits = metric_delta(m0, m1, "sluice_cache_requests_total", layer="l1", result="hit")
            true(hits >= 20, f"sluice_cache_requests_total{{l1,hit}} grew by {hits}")
            inv = metric_delta(m0, m1, "sluice_cache_invalidations_total", source="write")
            true(inv >= 100, f"sluice_cache_invalidations_total{{write}} grew by {inv}")
        checks.run("metrics", metrics)

        def admin_view():
            import json
            import urllib.request
            with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/cache", timeout=5) as r:
                doc = json.loads(r.read().decode())
            true(doc["enabled"] and doc["usable"], f"GET /cache: enabled and usable: {doc}")
            true(doc["l1"]["hits"] >= 20 and doc["l1"]["entries"] >= 1,
                 f"GET /cache l1: {doc['l1']}")
            texts = [h["digest"] for h in doc["hottest"]]
            true(any("FROM cache_t WHERE id = ?" in t for t in texts),
                 f"GET /cache hottest digests name the hot read: {texts}")
            true(not any("id = 1" in t or "id = 2" in t for t in texts),
                 f"GET /cache shows digests, never literal values: {texts}")
        checks.run("GET /cache", admin_view)
        true(d.alive(), "the daemon is alive")
    checks.finish()


if __name__ == "__main__":
    main()
