#!/usr/bin/python3
"""tds_pooling (issue #11): transaction-mode pooling of SQL Server connections, through real
clients (pymssql, pytds) and Sluice's TDS listener, in front of the TDS test servers. What a
backend holds is read from the servers (sys.dm_exec_connections, @@SPID, @@TEXTSIZE), not
from Sluice.

Ports: TDS_POOLING_PORT (default SLUICE_PORT + 740) + 0..2 test servers, + 3 Sluice TDS
(pool max_connections = 2, queue_timeout_ms = 600), + 4 its MySQL listener, + 5 admin.

 1. Multiplexing: 30 clients at once, 15 reads and writes each: no error, every write
    applied, and no server ever had more than 2 of Sluice's connections (sampled).
 2. Hand-over resets: a session's SET TEXTSIZE does not reach the next session that gets
    the same backend connection (same @@SPID), which sees the server's default.
 3. A temporary table pins: while one session has #t, its connection is its own; the next
    session on that backend gets another connection, without #t.
 4. A transaction holds its connection: with both primary connections in transactions, a
    third session's write waits and fails after queue_timeout_ms; after COMMIT it runs.
 The hand-over check reads with /* sluice: primary */ so that both sessions' reads run on
 the primary's connections.
"""

import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itlib  # noqa: E402
import tdslib  # noqa: E402
from itlib import Checks, Daemon, eq, true  # noqa: E402
from tdslib import direct, q  # noqa: E402

import pymssql  # noqa: E402
import pytds  # noqa: E402

BASE, TDS_PORT, MYSQL_PORT, ADMIN_PORT = tdslib.ports("TDS_POOLING_PORT", 740)
MAX = 2
DIR = tempfile.mkdtemp(prefix="sluice-tds-pooling-")
CONFIG = tdslib.tds_config(BASE, TDS_PORT, MYSQL_PORT, ADMIN_PORT, itlib.topology_backends_toml(),
                           f"[pool]\nmode = \"transaction\"\nmax_connections = {MAX}\n"
                           "queue_timeout_ms = 600\n")
servers = tdslib.TdsServers(DIR, 100)


def ms(user="app"):
    return pymssql.connect(server="127.0.0.1", port=TDS_PORT, user=user, password=user,
                           database="sluice", autocommit=True, login_timeout=10, timeout=30)


def sluice_connections(observer):
    """Sessions on a server other than the observer's own and the monitor's."""
    rows = q(observer, "SELECT COUNT(*) FROM sys.dm_exec_connections")
    return rows[0][0] - 2


def check_multiplexing():
    observers = {port: direct(port) for port in (BASE, BASE + 1, BASE + 2)}
    peak = {port: 0 for port in observers}
    errors = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for port, o in observers.items():
                peak[port] = max(peak[port], sluice_connections(o))
            time.sleep(0.02)

    def client(i):
        try:
            c = ms()
            for j in range(15):
                if j % 3 == 0:
                    q(c, f"INSERT INTO items (name) VALUES ('mx-{i}-{j}')")
                else:
                    q(c, "SELECT COUNT(*) FROM items")
            c.close()
        except Exception as e:  # noqa: BLE001 -- every failure counts
            errors.append(f"client {i}: {e}")

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    sampler.join()
    eq(errors, [], "errors of 30 clients")
    p = direct(BASE)
    eq(q(p, "SELECT COUNT(*) FROM items WHERE name LIKE 'mx-%'")[0][0], 30 * 5,
       "every write applied")
    p.close()
    for port, n in peak.items():
        true(n <= MAX, f"server on {port} had at most {MAX} of Sluice's connections (peak {n})")
    true(peak[BASE] >= 1, "the primary served the clients through the pool")
    for o in observers.values():
        o.close()


def check_reset_on_hand_over():
    # Primary only (writes): the pool lends the same connection to one session after another.
    a = ms()
    q(a, "SET TEXTSIZE 1234")
    spid_a, size_a = q(a, "/* sluice: primary */ SELECT @@SPID, @@TEXTSIZE")[0]
    eq(size_a, 1234, "the session sees its own TEXTSIZE")
    a.close()
    time.sleep(0.2)
    b = pytds.connect(server="127.0.0.1", port=TDS_PORT, user="app", password="app",
                      database="sluice", autocommit=True, login_timeout=10)
    cur = b.cursor()
    spids = set()
    sizes = set()
    for _ in range(4):
        cur.execute("/* sluice: primary */ SELECT @@SPID, @@TEXTSIZE")
        spid, size = cur.fetchall()[0]
        spids.add(spid)
        sizes.add(size)
    b.close()
    true(spid_a in spids, f"the next session got the same backend connection ({spid_a} in {spids})")
    true(1234 not in sizes, f"the first session's TEXTSIZE did not leak: {sizes}")


def check_temp_table_pin():
    a = ms()
    q(a, "CREATE TABLE #mine (v INT)")
    q(a, "INSERT INTO #mine VALUES (1)")
    spid_a = q(a, "SELECT @@SPID FROM #mine")[0][0]
    b = ms()
    spid_b = q(b, "INSERT INTO items (name) VALUES ('t'); SELECT @@SPID")[0][0]
    true(spid_b != spid_a, "another session does not get the connection holding #mine")
    try:
        q(b, "SELECT v FROM #mine")
        raise AssertionError("another session saw #mine")
    except pymssql.Error as e:
        true("208" in str(e) or "Invalid object" in str(e), f"208 for #mine: {e}")
    eq(q(a, "SELECT v FROM #mine"), [(1,)], "the owner still has #mine")
    a.close()
    b.close()


def check_transaction_holds():
    a, b, c = ms(), ms(), ms()
    q(a, "BEGIN TRAN")
    q(a, "INSERT INTO items (name) VALUES ('tx-a')")
    # (The test servers' SQLite takes one writer at a time: b's transaction only reads.)
    q(b, "BEGIN TRAN")
    q(b, "SELECT COUNT(*) FROM items")
    t0 = time.monotonic()
    try:
        q(c, "INSERT INTO items (name) VALUES ('tx-c')")
        raise AssertionError("a third write ran with both primary connections in transactions")
    except pymssql.Error as e:
        waited = time.monotonic() - t0
        true("exhausted" in str(e), f"pool exhausted: {e}")
        true(waited >= 0.5, f"it waited queue_timeout_ms first ({waited:.2f} s)")
    q(a, "COMMIT")
    q(c, "INSERT INTO items (name) VALUES ('tx-c')")
    q(b, "ROLLBACK")
    p = direct(BASE)
    eq(q(p, "SELECT name FROM items WHERE name LIKE 'tx-%' ORDER BY name"), [("tx-a",), ("tx-c",)],
       "the committed write and the one that waited")
    p.close()
    for x in (a, b, c):
        x.close()


def main():
    checks = Checks()
    with tdslib.availability_group(servers, BASE, checks):
        with Daemon(DIR, "tdspool", CONFIG, port=MYSQL_PORT, admin=ADMIN_PORT):
            time.sleep(1.0)
            checks.run("1 multiplexing", check_multiplexing)
            checks.run("2 a hand-over resets the connection", check_reset_on_hand_over)
            checks.run("3 a temp table pins its connection", check_temp_table_pin)
            checks.run("4 a transaction holds its connection", check_transaction_holds)
    checks.finish()


if __name__ == "__main__":
    main()
