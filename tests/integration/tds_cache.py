#!/usr/bin/python3
"""tds_cache (issue #11): the result cache for SQL Server clients, through real clients
(pymssql, pytds) and Sluice in front of the TDS test servers (a primary and two secondaries
replaying one commit log, 400 ms behind: a simulated availability group), with a real
redis-server as the shared L2 of two Sluices.

Whether an answer came from the cache is read from the servers, never from Sluice: a row is
changed directly on the primary (not through Sluice) and the secondaries replay the change;
a read through Sluice that still returns the old value after that ran on no server.

 1. Cache off: the direct change is seen through Sluice once the secondaries have it (the
    baseline: what follows is the cache's doing).
 2. A read a [[cache_rules]] entry matches is answered from the cache: the direct change is
    not seen. A write through Sluice to another table leaves the entry; a write to the table
    (from another connection) invalidates it at once: the next read sees the new row.
 3. sp_executesql (pytds parameters): the parameters are part of the key.
 4. No stale populate: a read right after another client's write may be answered by a
    secondary that has not replayed it, but that answer is not stored: once the secondaries
    have the write, the read sees it (an entry filled from the stale answer would hide it
    for the whole TTL).
 5. Transactions: an UPDATE inside BEGIN TRAN ... COMMIT is seen by another connection's
    cached read right after the COMMIT.
 6. Never cached: GETDATE(), a read inside a transaction, a temporary table, a read no rule
    matches (the direct change is seen each time).
 7. L2: two Sluices share a redis-server. One fills, the other answers from Redis (the
    direct change is not seen through it); a write through the first invalidates the second's
    reads.
 8. Evidence during the read (a Sluice with consistency "eventual"): a slow cached read that
    a secondary begins before replaying another session's write, and that still runs when
    it replays it and the monitor reads its new LSN, is not stored: once the secondaries
    have the write, the read sees it.

Ports: TDS_CACHE_PORT (default SLUICE_PORT + 800) + 0..2 the test servers, + 3..5 Sluice A
(TDS, MySQL, admin), + 6..8 Sluice B, + 9 redis-server. One line per check; exit 0 only if
all passed. Every daemon is stop-checked (exit status and log).
"""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itlib  # noqa: E402
import tdslib  # noqa: E402
from itlib import Checks, Daemon, eq, true, wait_until  # noqa: E402
from tdslib import q  # noqa: E402

import pymssql  # noqa: E402
import pytds  # noqa: E402

BASE = int(os.environ.get("TDS_CACHE_PORT", itlib.env_int("SLUICE_PORT") + 800))
SERVERS = [("primary", BASE, "primary"), ("secondary1", BASE + 1, "secondary"),
           ("secondary2", BASE + 2, "secondary")]
A_TDS, A_MYSQL, A_ADMIN = BASE + 3, BASE + 4, BASE + 5
B_TDS, B_MYSQL, B_ADMIN = BASE + 6, BASE + 7, BASE + 8
REDIS_PORT = BASE + 9
LAG_MS = 400
DIR = tempfile.mkdtemp(prefix="sluice-tds-cache-")

CACHE = """
[cache]
default_ttl_ms = 60000
{redis}
[[cache_rules]]
name = "items"
match_digest = "(?i)FROM items"
ttl_ms = 60000
"""
REDIS = f'key_prefix = "tdsc:"\n[[cache.redis]]\nhost = "127.0.0.1"\nport = {REDIS_PORT}\n'


def config(tds_port, mysql_port, admin_port, cache):
    return tdslib.tds_config(BASE, tds_port, mysql_port, admin_port, itlib.topology_backends_toml(),
                             "[routing]\nmax_lag_ms = 5000\n" + cache)


def ms(port=A_TDS):
    return pymssql.connect(server="127.0.0.1", port=port, user="app", password="app",
                           database="sluice", autocommit=True, login_timeout=10, timeout=30)


def direct(port):
    return pymssql.connect(server="127.0.0.1", port=port, user="app", password="app",
                           database="sluice", autocommit=True, login_timeout=10)


servers = tdslib.TdsServers(DIR, LAG_MS)


def change_directly(item_id, name):
    """Changes a row on the primary, not through Sluice, and waits until both secondaries
    have replayed it (read directly)."""
    p = direct(BASE)
    q(p, f"UPDATE items SET name = '{name}' WHERE id = {item_id}")
    p.close()
    for port in (BASE + 1, BASE + 2):
        def has():
            c = direct(port)
            try:
                return q(c, f"SELECT name FROM items WHERE id = {item_id}")[0][0] == name
            finally:
                c.close()
        true(wait_until(has, 10), f"the secondary on {port} replayed the direct change")
    time.sleep(0.3)  # and the monitor has seen their LSNs


def name_of(conn, item_id):
    return q(conn, f"SELECT name FROM items WHERE id = {item_id}")[0][0]


def check_off():
    c = ms()
    eq(name_of(c, 1), "one", "row 1 through Sluice")
    change_directly(1, "one-direct")
    eq(name_of(c, 1), "one-direct", "without a cache the direct change is seen through Sluice")
    change_directly(1, "one")
    c.close()


def check_hit_and_invalidate():
    c, w = ms(), ms()
    eq(name_of(c, 2), "two", "the first read (fills)")
    change_directly(2, "two-direct")
    for _ in range(3):
        eq(name_of(c, 2), "two", "answered from the cache: the direct change is not seen")
    q(w, "UPDATE other SET v = v + 1")
    eq(name_of(c, 2), "two", "a write to another table leaves the entry")
    q(w, "UPDATE items SET name = 'two-sluice' WHERE id = 2")
    eq(name_of(c, 2), "two-sluice", "a write to items through Sluice invalidates the entry at once")
    eq(name_of(c, 3), "three", "row 3 fills")
    q(w, "INSERT INTO items (name) VALUES ('four')")
    change_directly(3, "three-direct")
    eq(name_of(c, 3), "three-direct", "the INSERT invalidated every read of items")
    c.close()
    w.close()


def check_parameters():
    t = pytds.connect(server="127.0.0.1", port=A_TDS, user="app", password="app",
                      database="sluice", autocommit=True, login_timeout=10)
    cur = t.cursor()
    got = []
    for item_id in (1, 3, 1, 3):
        cur.execute("SELECT name FROM items WHERE id = %s", (item_id,))
        got.append(cur.fetchall()[0][0])
    eq(got, ["one", "three-direct", "one", "three-direct"], "sp_executesql: each parameter its own answer")
    change_directly(1, "one-rpc")
    cur.execute("SELECT name FROM items WHERE id = %s", (1,))
    eq(cur.fetchall()[0][0], "one", "sp_executesql answered from the cache")
    t.close()


def check_no_stale_populate():
    c, w = ms(), ms()
    for i in range(5):
        name = f"fresh-{i}"
        q(w, f"UPDATE items SET name = '{name}' WHERE id = 2")
        name_of(c, 2)  # may be a secondary's old answer (another session's write): not stored
        time.sleep((LAG_MS + 600) / 1000)
        eq(name_of(c, 2), name, "once the secondaries have the write, the read sees it")
    c.close()
    w.close()


def slow_read(n):
    """A cached read (the rule matches FROM items) whose cross join keeps a server busy:
    COUNT(*) over all of it, no early stop."""
    return ("SELECT i.name, COUNT(*) FROM items i, nums a, nums b "
            f"WHERE i.id = 1 AND a.x <= b.x AND a.x < {n} AND b.x < {n} GROUP BY i.name")


def check_evidence_during_read():
    p = direct(BASE)
    q(p, "CREATE TABLE nums (x INT)")
    for start in range(0, 6000, 500):
        q(p, "INSERT INTO nums (x) VALUES " + ", ".join(f"({k})" for k in range(start, start + 500)))
    p.close()
    time.sleep((LAG_MS + 600) / 1000)
    # Sized on a secondary: about LAG + 1.5 s (the cost grows as n squared).
    n, took = 1000, 0.0
    d = direct(BASE + 1)
    for _ in range(4):
        t0 = time.monotonic()
        q(d, slow_read(n))
        took = time.monotonic() - t0
        if took >= LAG_MS / 1000 + 1.0:
            break
        n = min(6000, int(n * ((LAG_MS / 1000 + 1.5) / max(took, 0.05)) ** 0.5) + 1)
    d.close()
    true(took >= LAG_MS / 1000 + 0.6, f"the slow read takes {took:.2f} s with {n} rows")
    c, w = ms(), ms()
    before = q(c, "SELECT name FROM items WHERE id = 1")[0][0]
    q(w, "UPDATE items SET name = 'during-read' WHERE id = 1")
    t0 = time.monotonic()
    got = q(c, slow_read(n))[0][0]
    ran = time.monotonic() - t0
    eq(got, before, "the slow read ran on a secondary that had not replayed the write when it began")
    true(ran >= LAG_MS / 1000 + 0.3, f"it ran for {ran:.2f} s: the secondary replayed the write and "
         "the monitor read its LSN meanwhile")
    time.sleep((LAG_MS + 600) / 1000)
    eq(q(c, slow_read(n))[0][0], "during-read",
       "once the secondaries have the write, the read sees it: the old answer was not stored")
    c.close()
    w.close()


def check_transaction():
    c, w = ms(), ms()
    first = name_of(c, 3)
    cur = w.cursor()
    cur.execute("BEGIN TRANSACTION")
    cur.execute("UPDATE items SET name = 'in-tx' WHERE id = 3")
    during = name_of(c, 3)
    true(during == first, f"the uncommitted change is not seen: {during}")
    cur.execute("COMMIT")
    eq(name_of(c, 3), "in-tx", "the committed change is seen right after the COMMIT")
    c.close()
    w.close()


def check_never_cached_kinds():
    c = ms()
    cur = c.cursor()
    for i in range(2):
        name = f"kinds-{i}"
        change_directly(1, name)
        eq(q(c, "SELECT name, GETDATE() FROM items WHERE id = 1")[0][0], name, "GETDATE() is not cached")
        cur.execute("BEGIN TRANSACTION")
        cur.execute("SELECT name FROM items WHERE id = 1")
        eq(cur.fetchall()[0][0], name, "a read inside a transaction is not cached")
        cur.execute("COMMIT")
        cur.execute("SELECT name INTO #k FROM items WHERE id = 1")
        eq(q(c, "SELECT name FROM #k")[0][0], name, "a temporary table is not cached")
        cur.execute("DROP TABLE #k")
        p = direct(BASE)
        q(p, f"UPDATE other SET v = {100 + i}")
        p.close()
        true(wait_until(lambda: q(c, "SELECT v FROM other")[0][0] == 100 + i, 5),
             "a read no rule matches is not cached")
    c.close()


def check_l2(b):
    a, bc = ms(), ms(B_TDS)
    eq(name_of(a, 3), "in-tx", "Sluice A fills row 3's read")
    time.sleep(0.3)  # the L2 write is in the background
    change_directly(3, "l2-direct")
    eq(name_of(bc, 3), "in-tx", "Sluice B answers from Redis: the direct change is not seen")
    q(a, "UPDATE items SET name = 'l2-sluice' WHERE id = 3")
    true(wait_until(lambda: name_of(bc, 3) == "l2-sluice", 3),
         "a write through Sluice A invalidates Sluice B's entry")
    a.close()
    bc.close()


def redis_cli(*args):
    return subprocess.run(["redis-cli", "-p", str(REDIS_PORT), *args], capture_output=True,
                          text=True, timeout=5).stdout.strip()


def main():
    checks = Checks()
    problems = []
    rdir = os.path.join(DIR, "redis")
    os.makedirs(rdir, exist_ok=True)
    redis_pid = os.path.join(rdir, "redis.pid")
    try:
        for name, port, role in SERVERS:
            servers.start(name, port, role)
        p = direct(BASE)
        q(p, "CREATE TABLE items (id INT IDENTITY(1,1) PRIMARY KEY, name NVARCHAR(100))")
        q(p, "INSERT INTO items (name) VALUES ('one'), ('two'), ('three')")
        q(p, "CREATE TABLE other (v INT)")
        q(p, "INSERT INTO other (v) VALUES (0)")
        p.close()
        time.sleep(1.0)
        with Daemon(DIR, "off", config(A_TDS, A_MYSQL, A_ADMIN, ""), port=A_MYSQL, admin=A_ADMIN):
            time.sleep(1.0)
            checks.run("1 cache off: a direct change is seen through Sluice", check_off)
        subprocess.run(["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--daemonize", "yes", "--pidfile", redis_pid,
                        "--logfile", os.path.join(rdir, "redis.log"), "--dir", rdir],
                       check=True, timeout=10)
        true(wait_until(lambda: redis_cli("PING") == "PONG", 5), "redis-server answers")
        cache = CACHE.format(redis=REDIS)
        with Daemon(DIR, "a", config(A_TDS, A_MYSQL, A_ADMIN, cache), port=A_MYSQL, admin=A_ADMIN):
            time.sleep(1.0)
            checks.run("2 a rule's read from the cache; writes to its table invalidate it",
                       check_hit_and_invalidate)
            checks.run("3 sp_executesql parameters are part of the key", check_parameters)
            checks.run("4 no stale populate from a secondary behind another client's write",
                       check_no_stale_populate)
            checks.run("5 a transaction's write is seen right after its COMMIT", check_transaction)
            checks.run("6 GETDATE(), transactions, temporary tables, no rule: never cached",
                       check_never_cached_kinds)
            with Daemon(DIR, "b", config(B_TDS, B_MYSQL, B_ADMIN, cache), port=B_MYSQL,
                        admin=B_ADMIN) as b:
                time.sleep(1.0)
                checks.run("7 L2: Sluice B answers from Redis; Sluice A's write invalidates it",
                           check_l2, b)
        # `eventual`: a read may run on a secondary behind another session's write.
        eventual = config(A_TDS, A_MYSQL, A_ADMIN, CACHE.format(redis="")).replace(
            "[routing]\n", '[routing]\nconsistency = "eventual"\n')
        with Daemon(DIR, "eventual", eventual, port=A_MYSQL, admin=A_ADMIN):
            time.sleep(1.0)
            checks.run("8 no stale populate from a secondary's LSN that came while the read ran",
                       check_evidence_during_read)
    finally:
        problems = servers.stop_all()
        if os.path.exists(redis_pid):
            with open(redis_pid) as f:
                pid = int(f.read().strip())
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass
    if problems:
        checks.failures.append("test servers")
        print("FAIL - test servers: " + "; ".join(problems), file=sys.stderr)
    checks.finish()


if __name__ == "__main__":
    main()
