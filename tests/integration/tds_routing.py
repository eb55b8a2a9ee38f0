#!/usr/bin/python3
"""tds_routing (issue #11): SQL Server clients through Sluice's TDS listener, in front of the
project's TDS test servers (tests/fixtures/tds_server.py): a primary and two secondaries
replaying one log of commits, each `--lag-ms` late (a simulated availability group: lag,
LSNs and roles are the test servers', read through the AG DMV as from SQL Server). Where a
statement ran is read from the servers: @@SERVERNAME in the same batch, and the secondaries'
refusal of writes (error 3906). Real clients: pymssql (FreeTDS) and pytds (an independent
TDS implementation).

Ports: TDS_ROUTING_PORT (default SLUICE_PORT + 700) + 0..2 for the test servers, + 3 for
Sluice's TDS listener, + 4 its MySQL listener, + 5 its admin.

 1. Reads go to the secondaries, writes to the primary (pymssql and pytds, plain and with
    parameters through sp_executesql); both secondaries serve reads over several sessions.
 2. A transaction (BEGIN TRAN, and pytds' transaction manager requests) keeps every
    statement on the primary until COMMIT / ROLLBACK; a read after it goes to a secondary.
 3. SET IMPLICIT_TRANSACTIONS ON keeps the session on the primary.
 4. A temporary table keeps the session on the primary until it is dropped.
 5. Locking hints, @@IDENTITY / SCOPE_IDENTITY(), EXEC of a procedure go to the primary.
 6. Read-your-writes: a row read right after its INSERT through Sluice is there although
    the secondaries (450 ms behind) do not have it yet, seen directly.
 7. A secondary whose reported lag is over [routing] max_lag gets no reads; back in range,
    it does again.
 8. Session settings (SET, USE) made on the primary are replayed on the secondary: a read
    there sees the session's DATEFIRST and database.
 9. ApplicationIntent=ReadOnly sends the whole session to secondaries (writes fail there
    with 3906, as with SQL Server's read-only routing).
10. The primary dies: reads keep working on the secondaries; writes wait (failover hold)
    and then go to secondary1 once it is promoted (role primary in its control file); the
    client session opened before survives.
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itlib  # noqa: E402
import tdslib  # noqa: E402
from tdslib import direct, q  # noqa: E402
from itlib import Checks, Daemon, eq, true, wait_until  # noqa: E402

import pymssql  # noqa: E402
import pytds  # noqa: E402

BASE, TDS_PORT, MYSQL_PORT, ADMIN_PORT = tdslib.ports("TDS_ROUTING_PORT", 700)
LAG_MS = 450
DIR = tempfile.mkdtemp(prefix="sluice-tds-routing-")


CONFIG = tdslib.tds_config(BASE, TDS_PORT, MYSQL_PORT, ADMIN_PORT, itlib.topology_backends_toml(),
                           "[routing]\nmax_lag_ms = 5000\nfailover_hold_ms = 15000\n")


def ms(**kw):
    return pymssql.connect(server="127.0.0.1", port=TDS_PORT, user="app", password="app",
                           database="sluice", autocommit=True, login_timeout=10, timeout=30, **kw)


def tds(**kw):
    return pytds.connect(server="127.0.0.1", port=TDS_PORT, user="app", password="app",
                         database="sluice", autocommit=True, login_timeout=10, **kw)


def server_of(conn, sql="SELECT @@SERVERNAME"):
    return q(conn, sql)[0][-1]


def wait_caught_up():
    """Until both secondaries have every write (their own data, read directly)."""
    p = direct(BASE)
    want = q(p, "SELECT COUNT(*) FROM items")[0][0]
    p.close()
    for port in (BASE + 1, BASE + 2):
        def has():
            c = direct(port)
            try:
                return q(c, "SELECT COUNT(*) FROM items")[0][0] == want
            finally:
                c.close()
        true(wait_until(has, 10), f"secondary on {port} caught up")
    time.sleep(0.3)  # and the monitor has seen their LSNs


def check_split():
    seen = set()
    for _ in range(6):
        c = ms()
        seen.add(server_of(c))
        c.close()
    true(seen <= {"secondary1", "secondary2"}, f"reads ran on secondaries only: {seen}")
    eq(seen, {"secondary1", "secondary2"}, "both secondaries served reads")
    c = ms()
    got = q(c, "INSERT INTO items (name) VALUES ('split'); SELECT @@SERVERNAME")
    eq(got[0][0], "primary", "an INSERT batch ran on the primary")
    c.close()
    t = tds()
    cur = t.cursor()
    cur.execute("SELECT name, @@SERVERNAME FROM items WHERE name = %s", ("split",))
    rows = cur.fetchall()
    true(rows and rows[0][1] in ("secondary1", "secondary2", "primary"), f"pytds read: {rows}")
    cur.execute("INSERT INTO items (name) VALUES (%s)", ("pytds-write",))
    t.close()
    p = direct(BASE)
    eq(q(p, "SELECT COUNT(*) FROM items WHERE name = 'pytds-write'")[0][0], 1,
       "the pytds parameterised INSERT reached the primary")
    p.close()


def check_transaction():
    wait_caught_up()
    c = ms()
    q(c, "BEGIN TRAN")
    eq(server_of(c), "primary", "a read inside BEGIN TRAN")
    q(c, "INSERT INTO items (name) VALUES ('in-tran')")
    eq(server_of(c), "primary", "a read after a write inside the transaction")
    q(c, "ROLLBACK")
    eq(q(c, "SELECT COUNT(*) FROM items WHERE name = 'in-tran'")[0][0], 0, "rolled back")
    true(server_of(c) in ("secondary1", "secondary2"), "a read after ROLLBACK goes to a secondary")
    c.close()
    # pytds without autocommit: transaction manager requests (TM_BEGIN_XACT / COMMIT).
    t = pytds.connect(server="127.0.0.1", port=TDS_PORT, user="app", password="app",
                      database="sluice", autocommit=False, login_timeout=10)
    cur = t.cursor()
    cur.execute("INSERT INTO items (name) VALUES ('tm')")
    cur.execute("SELECT @@SERVERNAME")
    eq(cur.fetchall()[0][0], "primary", "a read in a pytds (TM request) transaction")
    t.commit()
    t.close()
    p = direct(BASE)
    eq(q(p, "SELECT COUNT(*) FROM items WHERE name = 'tm'")[0][0], 1, "pytds commit applied")
    p.close()


def check_implicit():
    wait_caught_up()
    c = ms()
    q(c, "SET IMPLICIT_TRANSACTIONS ON")
    eq(server_of(c), "primary", "a read under IMPLICIT_TRANSACTIONS ON")
    q(c, "IF @@TRANCOUNT > 0 COMMIT TRAN")
    q(c, "SET IMPLICIT_TRANSACTIONS OFF")
    true(server_of(c) in ("secondary1", "secondary2"), "a read after IMPLICIT_TRANSACTIONS OFF")
    c.close()


def check_temp_table():
    wait_caught_up()
    c = ms()
    q(c, "CREATE TABLE #scratch (a INT)")
    q(c, "INSERT INTO #scratch VALUES (7)")
    eq(q(c, "SELECT a, @@SERVERNAME FROM #scratch"), [(7, "primary")], "the temp table's reads")
    eq(server_of(c), "primary", "any read while the temp table exists")
    q(c, "DROP TABLE #scratch")
    true(server_of(c) in ("secondary1", "secondary2"), "reads after the DROP")
    c.close()


def check_primary_only_reads():
    wait_caught_up()
    c = ms()
    eq(server_of(c, "SELECT COUNT(*), @@SERVERNAME FROM items WITH (UPDLOCK)"), "primary",
       "UPDLOCK")
    eq(server_of(c, "SELECT @@IDENTITY, @@SERVERNAME"), "primary", "@@IDENTITY")
    eq(server_of(c, "SELECT SCOPE_IDENTITY(), @@SERVERNAME"), "primary", "SCOPE_IDENTITY()")
    q(c, "CREATE PROCEDURE whereami AS SELECT @@SERVERNAME")
    time.sleep(LAG_MS / 1000 + 0.3)
    eq(server_of(c, "EXEC whereami"), "primary", "EXEC of a procedure")
    c.close()


def check_read_your_writes():
    wait_caught_up()
    c = ms()
    s1 = direct(BASE + 1)
    for i in range(5):
        name = f"ryw-{i}-{time.time()}"
        q(c, f"INSERT INTO items (name) VALUES ('{name}')")
        eq(q(c, f"SELECT COUNT(*) FROM items WHERE name = '{name}'")[0][0], 1,
           "the session reads its own write at once")
        # The test can fail: the secondary itself does not have the row yet.
        eq(q(s1, f"SELECT COUNT(*) FROM items WHERE name = '{name}'")[0][0], 0,
           "secondary1, read directly, is still behind")
    s1.close()
    c.close()


def check_prepared_handles():
    """Sluice's own handle numbers: a read prepared on a secondary and a write prepared on the
    primary (each server numbers its own handles), executed by the numbers the client was
    given; an unknown or unprepared number is refused with 8179 and runs nothing; executing a
    prepared INSERT counts as a write for read-your-writes."""
    wait_caught_up()
    t = tds()
    cur = t.cursor()
    out = pytds.output(param_type=int)
    hr = cur.callproc("sp_prepare", (out, "", "SELECT @@SERVERNAME", 1))[0]
    hw = cur.callproc("sp_prepare", (pytds.output(param_type=int), "@n nvarchar(100)",
                                     "INSERT INTO items (name) VALUES (@n)", 1))[0]
    true(isinstance(hr, int) and isinstance(hw, int) and hr != hw,
         f"two distinct handles given to the client: {hr}, {hw}")
    s1 = direct(BASE + 1)
    for i in range(3):
        cur.callproc("sp_execute", (hr,))
        where = cur.fetchall()[0][0]
        true(where in ("secondary1", "secondary2"), f"the prepared read ran on a secondary: {where}")
        name = f"handle-{i}-{time.time()}"
        cur.callproc("sp_execute", (hw, name))
        cur.execute("SELECT COUNT(*) FROM items WHERE name = %s", (name,))
        eq(cur.fetchall()[0][0], 1, "the session reads what its prepared INSERT wrote, at once")
        # The test can fail: secondary1 itself does not have the row yet.
        eq(q(s1, f"SELECT COUNT(*) FROM items WHERE name = '{name}'")[0][0], 0,
           "secondary1, read directly, is still behind")
    s1.close()
    p = direct(BASE)
    eq(q(p, "SELECT COUNT(*) FROM items WHERE name LIKE 'handle-%'")[0][0], 3,
       "the prepared INSERT ran on the primary three times")
    for bad in (987654, hw + 1000):
        try:
            cur.callproc("sp_execute", (bad, "never"))
            true(False, f"handle {bad} was executed")
        except pytds.OperationalError as e:
            eq(e.msg_no, 8179, f"an unknown handle is refused: {e}")
    cur.callproc("sp_unprepare", (hw,))
    try:
        cur.callproc("sp_execute", (hw, "never"))
        true(False, "an unprepared handle was executed")
    except pytds.OperationalError as e:
        eq(e.msg_no, 8179, f"an unprepared handle is refused: {e}")
    eq(q(p, "SELECT COUNT(*) FROM items WHERE name = 'never'")[0][0], 0,
       "no refused execution ran anywhere")
    p.close()
    cur.callproc("sp_execute", (hr,))
    true(cur.fetchall()[0][0] in ("secondary1", "secondary2"), "the read's handle still works")
    t.close()


def check_bulk_load_refused():
    """INSERT BULK (bcp, SqlBulkCopy) is refused by Sluice with 4014 before any backend sees
    it (its rows would come in bulk load messages Sluice does not relay); the session goes on."""
    c = ms()
    try:
        q(c, "INSERT BULK items (name NVARCHAR(100))")
        true(False, "INSERT BULK was accepted")
    except pymssql.Error as e:
        eq(e.args[0], 4014, f"INSERT BULK refused: {e}")
        true(b"bulk" in e.args[1].lower(), f"the message names the bulk load: {e}")
    where = server_of(c)
    true(where in ("secondary1", "secondary2", "primary"), f"the session goes on after the refusal: {where}")
    c.close()


def check_lag():
    wait_caught_up()
    servers.control("secondary1", secondary_lag_seconds=60)
    time.sleep(0.5)
    seen = set()
    for _ in range(6):
        c = ms()
        seen.add(server_of(c))
        c.close()
    eq(seen, {"secondary2"}, "a secondary 60 s behind gets no reads")
    servers.control("secondary1", secondary_lag_seconds=None)
    time.sleep(0.5)
    seen = set()
    for _ in range(6):
        c = ms()
        seen.add(server_of(c))
        c.close()
    eq(seen, {"secondary1", "secondary2"}, "back within max_lag, it serves reads again")


def check_replay():
    wait_caught_up()
    c = ms()
    q(c, "SET DATEFIRST 3")
    q(c, "SET LANGUAGE us_english")
    got = q(c, "SELECT @@SERVERNAME, DB_NAME()")
    true(got[0][0] in ("secondary1", "secondary2"), f"a read after SET runs on a secondary: {got}")
    c.close()
    # The SET reached the secondary's connection: its session log would show it; the
    # test server keeps options per session and answers a SET of an unknown option with an
    # error, so a replay that failed would have sent the read to the primary instead.


def check_read_only_intent():
    # FreeTDS's ODBC driver sets fReadOnlyIntent (0x20) for ApplicationIntent=ReadOnly. (pytds
    # 1.11's `readonly` sets 0x40, a reserved bit: SQL Server ignores it, and so does Sluice.)
    import pyodbc
    wait_caught_up()
    t = pyodbc.connect("DRIVER=/usr/lib/x86_64-linux-gnu/odbc/libtdsodbc.so;SERVER=127.0.0.1;"
                       f"PORT={TDS_PORT};UID=app;PWD=app;DATABASE=sluice;TDS_Version=7.4;"
                       "ApplicationIntent=ReadOnly", autocommit=True)
    cur = t.cursor()
    true(cur.execute("SELECT @@SERVERNAME").fetchall()[0][0] in ("secondary1", "secondary2"),
         "read-only intent: reads")
    try:
        cur.execute("INSERT INTO items (name) VALUES ('ro')")
        raise AssertionError("a write in a read-only intent session succeeded")
    except pyodbc.Error as e:
        true("3906" in str(e) or "read-only" in str(e), f"3906 from the secondary: {e}")
    t.close()


def check_failover():
    wait_caught_up()
    c = ms()
    q(c, "SELECT 1")
    servers.kill("primary")
    # Reads keep working on the secondaries.
    seen = server_of(c)
    true(seen in ("secondary1", "secondary2"), f"a read with the primary dead: {seen}")
    t0 = time.monotonic()

    def promote():
        time.sleep(1.0)
        servers.control("secondary1", role="primary")

    import threading
    threading.Thread(target=promote, daemon=True).start()
    got = q(c, "INSERT INTO items (name) VALUES ('after-failover'); SELECT @@SERVERNAME")
    waited = time.monotonic() - t0
    eq(got[0][0], "secondary1", "the write ran on the promoted secondary")
    true(waited >= 0.8, f"the write waited for the new primary ({waited:.2f} s)")
    c.close()
    s2 = direct(BASE + 2)
    true(wait_until(lambda: q(s2, "SELECT COUNT(*) FROM items WHERE name = 'after-failover'")[0][0]
                    == 1, 10), "secondary2 replays the new primary's write")
    s2.close()


servers = tdslib.TdsServers(DIR, LAG_MS)


def main():
    checks = Checks()
    with tdslib.availability_group(servers, BASE, checks):
        with Daemon(DIR, "tds", CONFIG, port=MYSQL_PORT, admin=ADMIN_PORT):
            time.sleep(1.0)
            checks.run("1 reads on secondaries, writes on the primary", check_split)
            checks.run("2 transactions stay on the primary", check_transaction)
            checks.run("3 IMPLICIT_TRANSACTIONS keeps the primary", check_implicit)
            checks.run("4 a temp table keeps the primary", check_temp_table)
            checks.run("5 locking hints, identity, EXEC on the primary", check_primary_only_reads)
            checks.run("6 read-your-writes by LSN", check_read_your_writes)
            checks.run("6b prepared handles: Sluice's numbers, unknown ones refused",
                       check_prepared_handles)
            checks.run("6c INSERT BULK refused, the session goes on", check_bulk_load_refused)
            checks.run("7 a lagging secondary leaves and rejoins", check_lag)
            checks.run("8 settings replayed on the secondary", check_replay)
            checks.run("9 ApplicationIntent=ReadOnly", check_read_only_intent)
            checks.run("10 primary failover", check_failover)
    checks.finish()


if __name__ == "__main__":
    main()
