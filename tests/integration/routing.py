#!/usr/bin/python3
"""routing: read/write splitting through Sluice (issue #3), seen from a real client (PyMySQL).

Where a statement ran is read from @@server_id (primary 1, replicas 2 and 3) or, for writes,
from `INSERT ... VALUES (@@server_id)` read back directly on the primary. Checked: autocommit
reads on replicas (one replica per session, both replicas used across sessions), writes on
the primary, transactions and autocommit=0 on the primary, START TRANSACTION READ ONLY on a
replica, pins (temporary table, GET_LOCK, LOCK TABLES, SQL_CALC_FOUND_ROWS), statements that
need the primary (LAST_INSERT_ID(), FOR UPDATE, SELECT ... INTO @v), session state replayed
on the replica (USE, SET NAMES, time_zone, sql_mode, isolation level, user variables), hints
and query rules (tests/fixtures/test.toml.in), statements the lexer cannot read, metrics,
and reads falling back to the primary with both replicas stopped.

SLUICE_IT_DIRECT=1 (validation of this script against the primary itself, never in CTest):
a replica's server_id is not required and metrics are not read.
"""

import time

import pymysql
import pymysql.constants.CLIENT as CLIENT

from itlib import (Checks, eq, true, env_int, wait_until, HOST, DIRECT, expect_replica,
                   scrape_metrics, metric_delta, topology, sync_replicas, server_counters,
                   server_delta, selects_served)

PORT = env_int("SLUICE_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
ADMIN = None if DIRECT else env_int("SLUICE_ADMIN_PORT")
DB = "sluice_test"


def connect(port=PORT, **kw):
    args = dict(host=HOST, port=port, user="app", password="app", database=DB,
                charset="utf8mb4", connect_timeout=5, read_timeout=30, write_timeout=30,
                autocommit=True)
    args.update(kw)
    return pymysql.connect(**args)


def direct(**kw):
    return connect(PRIMARY_PORT, **kw)


def one(conn, sql, args=None):
    with conn.cursor() as c:
        c.execute(sql, args)
        return c.fetchone()


def sid(conn, sql="SELECT @@server_id"):
    return one(conn, sql)[0]


def error_of(conn, sql):
    """(code, message) of the error SQL gets; fails if it succeeds."""
    try:
        with conn.cursor() as c:
            c.execute(sql)
            c.fetchall()
    except pymysql.MySQLError as e:
        return e.args[0], e.args[1] if len(e.args) > 1 else ""
    raise AssertionError(f"{sql!r} succeeded; an error was expected")


def direct_one(sql, args=None):
    with direct() as d:
        return one(d, sql, args)


def primary_row(row_id):
    """(sid, v) of rt_t's row ROW_ID read directly on the primary, None if absent."""
    return direct_one("SELECT sid, v FROM rt_t WHERE id = %s", (row_id,))


def setup():
    with direct() as d, d.cursor() as c:
        c.execute("DROP TABLE IF EXISTS rt_t")
        c.execute("DROP TABLE IF EXISTS rt_other")
        c.execute("CREATE TABLE rt_t (id INT AUTO_INCREMENT PRIMARY KEY, sid INT, v VARCHAR(64))"
                  " ENGINE=InnoDB")
        c.execute("CREATE TABLE rt_other (id INT PRIMARY KEY) ENGINE=InnoDB")
        c.executemany("INSERT INTO rt_t (sid, v) VALUES (0, %s)", [f"seed{i}" for i in range(10)])
        sync_replicas(d, connect)


# ----------------------------------------------------------------------------- checks ----

def test_reads_on_replicas():
    seen = []
    held = []
    try:
        for i in range(10):
            conn = connect()
            held.append(conn)
            first = sid(conn)
            expect_replica(first, f"connection #{i + 1}: autocommit SELECT @@server_id")
            # Pooled (transaction mode, the default): each read goes to a replica, chosen per
            # statement (issue #10), not one replica for the session.
            for _ in range(3):
                expect_replica(sid(conn), f"connection #{i + 1}: later reads on a replica")
            with conn.cursor() as c:
                c.execute("SHOW VARIABLES LIKE 'server_id'")
                expect_replica(int(c.fetchone()[1]), f"connection #{i + 1}: SHOW VARIABLES on a replica")
            eq(one(conn, "SELECT COUNT(*) FROM rt_t WHERE v LIKE 'seed%'")[0], 10,
               f"connection #{i + 1}: table data read on the replica")
            seen.append(first)
    finally:
        for conn in held:
            conn.close()
    print(f"     server_id per connection: {seen}")
    if not DIRECT:
        eq(sorted(set(seen)), [2, 3], "replicas used over 10 connections (round-robin)")


def test_writes_on_primary():
    with connect() as conn, conn.cursor() as c:
        c.execute("INSERT INTO rt_t (sid, v) VALUES (@@server_id, 'w-insert')")
        eq(c.rowcount, 1, "affected rows of the INSERT")
        row_id = c.lastrowid
        true(row_id > 10, f"insert id {row_id} after the 10 seed rows")
        eq(primary_row(row_id), (1, "w-insert"), "row written by INSERT ... VALUES (@@server_id)")
        c.execute("UPDATE rt_t SET sid = @@server_id + 100, v = 'w-update' WHERE id = %s", (row_id,))
        eq(c.rowcount, 1, "affected rows of the UPDATE")
        eq(primary_row(row_id), (101, "w-update"), "row after UPDATE ... SET sid = @@server_id + 100")
        # DDL: app cannot write on a read_only replica (1290), so this succeeding means primary.
        c.execute("DROP TABLE IF EXISTS rt_ddl")
        c.execute("CREATE TABLE rt_ddl (id INT PRIMARY KEY)")
        c.execute("INSERT INTO rt_ddl VALUES (@@server_id)")
        c.execute("REPLACE INTO rt_t (id, sid, v) VALUES (%s, @@server_id, 'w-replace')", (row_id,))
        c.execute("DELETE FROM rt_t WHERE id = %s AND sid <> @@server_id", (row_id,))
        eq(c.rowcount, 0, "DELETE ... WHERE sid <> @@server_id deletes nothing (it ran where sid was written)")
    with direct() as d:
        eq(one(d, "SELECT id FROM rt_ddl"), (1,), "CREATE TABLE + INSERT (@@server_id) on the primary")
        one(d, "DROP TABLE rt_ddl")
    eq(primary_row(row_id), (1, "w-replace"), "REPLACE ... (@@server_id) ran on the primary")


def test_transaction_on_primary():
    with connect() as conn, conn.cursor() as c:
        for begin in ("BEGIN", "START TRANSACTION", "START TRANSACTION READ WRITE"):
            c.execute(begin)
            c.execute("INSERT INTO rt_t (sid, v) VALUES (@@server_id, %s)", (f"trx {begin}",))
            row_id = c.lastrowid
            c.execute("SELECT sid, v, @@server_id FROM rt_t WHERE id = %s", (row_id,))
            eq(c.fetchone(), (1, f"trx {begin}", 1),
               f"{begin}: the transaction reads its own uncommitted row, on the primary")
            eq(primary_row(row_id), None, f"{begin}: the row is not visible outside before COMMIT")
            eq(sid(conn), 1, f"{begin}: SELECT @@server_id inside the transaction")
            c.execute("COMMIT")
            eq(primary_row(row_id), (1, f"trx {begin}"), f"{begin}: the row is on the primary after COMMIT")
            expect_replica(sid(conn), f"{begin}: autocommit read after COMMIT")
        # A transaction that starts with a read is on the primary too.
        c.execute("BEGIN")
        eq(sid(conn), 1, "first statement of BEGIN is a read: on the primary")
        c.execute("INSERT INTO rt_t (sid, v) VALUES (@@server_id, 'rolled back')")
        row_id = c.lastrowid
        c.execute("ROLLBACK")
        eq(primary_row(row_id), None, "ROLLBACK undid the INSERT")
        expect_replica(sid(conn), "autocommit read after ROLLBACK")


def test_read_only_transaction_on_replica():
    with connect() as conn, conn.cursor() as c:
        c.execute("START TRANSACTION READ ONLY")
        first = sid(conn)
        expect_replica(first, "SELECT @@server_id in START TRANSACTION READ ONLY")
        eq(one(conn, "SELECT COUNT(*) FROM rt_t WHERE v LIKE 'seed%'")[0], 10, "table read in the read-only transaction")
        eq(sid(conn), first, "the read-only transaction stays on one replica")
        c.execute("COMMIT")
        expect_replica(sid(conn), "autocommit read after the read-only transaction")
        # A write in a read-only transaction fails and writes nothing, as it would directly
        # (1792); it must not run on the primary outside the transaction. On the replica the
        # server refuses it as read_only (1290) first: either error will do.
        before = direct_one("SELECT COUNT(*) FROM rt_t")[0]
        c.execute("START TRANSACTION READ ONLY")
        code = error_of(conn, "INSERT INTO rt_t (sid, v) VALUES (@@server_id, 'in a read-only trx')")[0]
        true(code in (1792, 1290), f"INSERT inside START TRANSACTION READ ONLY: error {code}, "
                                   "expected 1792 (read-only transaction) or 1290 (read_only server)")
        c.execute("COMMIT")
        eq(direct_one("SELECT COUNT(*) FROM rt_t")[0], before,
           "rows on the primary after the refused INSERT")


def test_autocommit_off():
    with connect() as conn, conn.cursor() as c:
        expect_replica(sid(conn), "read with autocommit=1")
        c.execute("SET autocommit = 0")
        eq(one(conn, "SELECT @@autocommit")[0], 0, "@@autocommit after SET autocommit = 0")
        eq(sid(conn), 1, "read with autocommit=0 (an implicit transaction)")
        c.execute("INSERT INTO rt_t (sid, v) VALUES (@@server_id, 'ac0')")
        row_id = c.lastrowid
        eq(one(conn, "SELECT sid, v FROM rt_t WHERE id = %s", (row_id,)), (1, "ac0"),
           "autocommit=0 reads its own uncommitted row")
        eq(primary_row(row_id), None, "uncommitted row invisible to other sessions")
        c.execute("COMMIT")
        eq(primary_row(row_id), (1, "ac0"), "row on the primary after COMMIT")
        eq(sid(conn), 1, "read after COMMIT with autocommit still 0: a new implicit transaction")
        c.execute("ROLLBACK")
        c.execute("SET autocommit = 1")
        expect_replica(sid(conn), "read after SET autocommit = 1")
    # PyMySQL's autocommit=False sends SET AUTOCOMMIT = 0 at connect.
    with connect(autocommit=False) as conn:
        eq(sid(conn), 1, "read on a connection opened with autocommit=False")
        conn.rollback()
        conn.autocommit(True)
        expect_replica(sid(conn), "read after conn.autocommit(True)")


def test_client_session_tracking_kept():
    """A client that sets its own session_track_system_variables must not switch off the
    GTID reporting Sluice relies on: 300 write-then-read rounds, none stale, and the reads
    answered by replicas (each names its server), not all sent to the primary."""
    with connect() as conn, conn.cursor() as c:
        c.execute("SET session_track_system_variables = 'autocommit'")
        stale, served = 0, {}
        for i in range(300):
            c.execute("INSERT INTO rt_t (sid, v) VALUES (@@server_id, %s)", (f"trk{i}",))
            row_id = c.lastrowid
            v, where = one(conn, "SELECT (SELECT v FROM rt_t WHERE id = %s), @@server_id", (row_id,))
            served[where] = served.get(where, 0) + 1
            if v != f"trk{i}":
                stale += 1
        eq(stale, 0, "stale reads after the client set session_track_system_variables")
        print(f"     reads after a write answered by server_id {served}")
        if not DIRECT:
            on_replicas = served.get(2, 0) + served.get(3, 0)
            true(on_replicas >= 240, f"replicas answered {on_replicas} of 300 reads after a "
                                     f"write ({served}), expected >= 80%")
        expect_replica(sid(conn), "reads still on a replica")


def test_session_state_replayed():
    with connect(database=None) as conn, conn.cursor() as c:
        expect_replica(sid(conn), "first read (no state yet)")
        c.execute("USE sluice_test")
        c.execute("SET NAMES latin1")
        c.execute("SET time_zone = '+05:30'")
        c.execute("SET sql_mode = 'PIPES_AS_CONCAT,ANSI_QUOTES'")
        c.execute("SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        c.execute("SET @a = 5, @s = 'five'")
        c.execute("SELECT @a, @s, @@time_zone, DATABASE(), @@character_set_client, "
                  "@@character_set_results, @@tx_isolation, @@sql_mode, @@server_id")
        row = c.fetchone()
        eq(row[:8], (5, "five", "+05:30", "sluice_test", "latin1", "latin1", "SERIALIZABLE",
                     "PIPES_AS_CONCAT,ANSI_QUOTES"),
           "session state seen by a read")
        expect_replica(row[8], "the read of the session state")
        # The state is in effect, not just readable: sql_mode, time zone, database.
        c.execute("SELECT 'a' || 'b', FROM_UNIXTIME(0), COUNT(*), @@server_id FROM rt_t "
                  "WHERE \"v\" LIKE 'seed%'")
        row = c.fetchone()
        eq(row[:3], ("ab", __import__("datetime").datetime(1970, 1, 1, 5, 30), 10),
           "PIPES_AS_CONCAT, time_zone +05:30, ANSI_QUOTES and the current database in effect")
        expect_replica(row[3], "the read using the session state")
        # Later changes reach the replica too.
        c.execute("SET @a = 6")
        c.execute("SET time_zone = '-03:00'")
        c.execute("SET NAMES utf8mb4")
        c.execute("SET sql_mode = ''")
        c.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        c.execute("USE sbtest")
        c.execute("SELECT @a, @@time_zone, @@character_set_client, @@sql_mode, @@tx_isolation, "
                  "DATABASE(), 'a' || 'b', @@server_id")
        row = c.fetchone()
        eq(row[:7], (6, "-03:00", "utf8mb4", "", "READ-COMMITTED", "sbtest", 0),
           "session state after changing it again")
        expect_replica(row[7], "the read after the second round of changes")
    # COM_INIT_DB (not a USE statement) is session state as well.
    with connect(database=None) as conn:
        conn.select_db("sluice_test")
        row = one(conn, "SELECT DATABASE(), COUNT(*), @@server_id FROM rt_t WHERE v LIKE 'seed%'")
        eq(row[:2], ("sluice_test", 10), "database selected with COM_INIT_DB")
        expect_replica(row[2], "read after COM_INIT_DB")


def test_user_variables_not_reevaluated():
    """A user variable set from an expression holds the primary's value: it is not recomputed
    on the replica (where @@server_id differs). Where the reads go afterwards is Sluice's
    choice (it may keep the session on the primary); the values are not."""
    with connect() as conn, conn.cursor() as c:
        c.execute("SET @from_expr = @@server_id * 10")
        eq(one(conn, "SELECT @from_expr")[0], 10,
           "SET @v = @@server_id * 10 ran on the primary; @v read back")
        c.execute("SELECT @@server_id INTO @into")
        eq(one(conn, "SELECT @into")[0], 1, "SELECT @@server_id INTO @v ran on the primary")
        c.execute("SELECT @assigned := @@server_id")
        eq(c.fetchone()[0], 1, "SELECT @v := @@server_id ran on the primary")
        eq(one(conn, "SELECT @assigned")[0], 1, "@v assigned by SELECT @v := ... read back")


def test_pin_temporary_table():
    with connect() as conn, conn.cursor() as c:
        expect_replica(sid(conn), "read before the temporary table")
        c.execute("CREATE TEMPORARY TABLE rt_tmp (id INT)")
        c.execute("INSERT INTO rt_tmp VALUES (1), (2)")
        c.execute("SELECT COUNT(*), @@server_id FROM rt_tmp")
        eq(c.fetchone(), (2, 1), "the temporary table is read on the primary")
        eq(sid(conn), 1, "any read after CREATE TEMPORARY TABLE")
        c.execute("DROP TEMPORARY TABLE rt_tmp")
        # Counted: once the last one is dropped, the pin ends (issue #10).
        expect_replica(sid(conn), "reads go to replicas again after DROP TEMPORARY TABLE")
    with connect() as conn:
        expect_replica(sid(conn), "a new session is not pinned")


def test_pin_get_lock():
    with connect() as conn, direct() as other:
        expect_replica(sid(conn), "read before GET_LOCK")
        eq(one(conn, "SELECT GET_LOCK('rt_lock', 5)")[0], 1, "GET_LOCK")
        eq(one(other, "SELECT IS_FREE_LOCK('rt_lock')")[0], 0, "the lock is held on the primary")
        eq(one(conn, "SELECT IS_USED_LOCK('rt_lock') = CONNECTION_ID(), @@server_id"), (1, 1),
           "the lock holder's session answers reads while it holds the lock")
        eq(sid(conn), 1, "read while holding a user lock")
        eq(one(conn, "SELECT RELEASE_LOCK('rt_lock')")[0], 1, "RELEASE_LOCK")
        eq(one(other, "SELECT IS_FREE_LOCK('rt_lock')")[0], 1, "the lock is free on the primary")
        expect_replica(sid(conn), "read after RELEASE_LOCK")


def test_pin_lock_tables():
    with connect() as conn, conn.cursor() as c:
        c.execute("LOCK TABLES rt_t READ")
        eq(one(conn, "SELECT COUNT(*) >= 10, @@server_id FROM rt_t"), (1, 1),
           "read of the locked table on the primary")
        # Only the session holding LOCK TABLES refuses a table it did not lock (1100).
        eq(error_of(conn, "SELECT COUNT(*) FROM rt_other")[0], 1100,
           "read of a table not locked with LOCK TABLES")
        c.execute("UNLOCK TABLES")
        expect_replica(sid(conn), "read after UNLOCK TABLES")
        eq(one(conn, "SELECT COUNT(*) FROM rt_other")[0], 0, "table readable after UNLOCK TABLES")


def test_calc_found_rows():
    total = direct_one("SELECT COUNT(*) FROM rt_t")[0]
    with connect() as conn, conn.cursor() as c:
        c.execute("SELECT SQL_CALC_FOUND_ROWS id FROM rt_t ORDER BY id LIMIT 2")
        eq(len(c.fetchall()), 2, "rows of SELECT SQL_CALC_FOUND_ROWS ... LIMIT 2")
        c.execute("SELECT FOUND_ROWS(), @@server_id")
        eq(c.fetchone(), (total, 1), "FOUND_ROWS() after SQL_CALC_FOUND_ROWS, on the primary")
        expect_replica(sid(conn), "read after FOUND_ROWS()")


def test_primary_functions():
    with connect() as conn, conn.cursor() as c:
        c.execute("INSERT INTO rt_t (sid, v) VALUES (@@server_id, 'lii')")
        row_id = c.lastrowid
        c.execute("SELECT LAST_INSERT_ID(), @@server_id")
        eq(c.fetchone(), (row_id, 1), "SELECT LAST_INSERT_ID() answers the insert id, on the primary")
        c.execute("SELECT @@server_id FROM rt_t WHERE id = %s FOR UPDATE", (row_id,))
        eq(c.fetchone(), (1,), "SELECT ... FOR UPDATE on the primary")
        c.execute("SELECT @@server_id FROM rt_t WHERE id = %s LOCK IN SHARE MODE", (row_id,))
        eq(c.fetchone(), (1,), "SELECT ... LOCK IN SHARE MODE on the primary")
        expect_replica(sid(conn), "plain read afterwards (none of these pins the session)")
        # The variables now hold values only the primary has: reading them back must give
        # them, wherever Sluice sends that read (it may keep the session on the primary).
        c.execute("SELECT @@server_id, v INTO @where_into, @v_into FROM rt_t WHERE id = %s", (row_id,))
        eq(one(conn, "SELECT @where_into, @v_into"), (1, "lii"), "SELECT ... INTO @v ran on the primary")


def test_hints():
    with connect() as conn:
        eq(sid(conn, "/* sluice: primary */ SELECT @@server_id"), 1, "/* sluice: primary */ hint")
        expect_replica(sid(conn), "the next read without a hint")
        expect_replica(sid(conn, "/* sluice: replica */ SELECT @@server_id"), "/* sluice: replica */ hint")
        expect_replica(sid(conn, "/* primary */ SELECT @@server_id"), "an ordinary comment is no hint")


def test_rules():
    with connect() as conn:
        eq(one(conn, "SELECT 1 AS sluice_force_primary, @@server_id"), (1, 1),
           "rule force-primary (match_digest sluice_force_primary)")
        expect_replica(sid(conn), "read not matching a rule")
        # The table does not exist: if the statement reached a server, the answer would be 1146.
        code, msg = error_of(conn, "SELECT * FROM sluice_refused_table")
        if DIRECT:
            eq(code, 1146, "SELECT from the missing table directly on the primary")
        else:
            eq((code, msg), (1142, "refused by a Sluice rule (test)"), "rule refuse-test")
        expect_replica(sid(conn), "the connection answers after the refused statement")
        code, msg = error_of(conn, "select *\n  from   sluice_refused_table  where 1 = 1")
        eq(code, 1146 if DIRECT else 1142, "refuse rule, other spacing and keyword case")
        eq(one(conn, "SELECT 'after refusals'")[0], "after refusals", "session usable after refusals")


def test_lexer_choke():
    with connect() as conn, direct() as d:
        for sql in ("SELECT 'abc", "SELECT 1 /* open comment", 'SELECT "x', "SELECT `col"):
            want = error_of(d, sql)
            eq(want[0], 1064, f"{sql!r} directly on the primary (test setup)")
            eq(error_of(conn, sql), want, f"{sql!r}: the server's own syntax error")
            expect_replica(sid(conn), f"the connection answers after {sql!r}")
            eq(one(conn, "SELECT 'still here'")[0], "still here", f"session usable after {sql!r}")


def test_metrics():
    if DIRECT:
        print("     skipped (SLUICE_IT_DIRECT=1)")
        return
    before = scrape_metrics(ADMIN)
    servers_before = server_counters()
    with connect() as conn, conn.cursor() as c:
        for _ in range(6):
            c.execute("SELECT @@server_id")
        for i in range(3):
            c.execute("INSERT INTO rt_t (sid, v) VALUES (@@server_id, %s)", (f"metrics {i}",))
        c.execute("CREATE TABLE rt_metrics (id INT)")
        c.execute("DROP TABLE rt_metrics")
        c.execute("BEGIN")
        c.execute("SELECT 1")
        c.execute("SAVEPOINT sp1")
        c.execute("COMMIT")
        c.execute("START TRANSACTION")
        c.execute("ROLLBACK")
        c.execute("START TRANSACTION READ ONLY")
        c.execute("SELECT 2")
        c.execute("COMMIT")
        c.execute("SET @m = 1")
        c.execute("USE sluice_test")
        c.execute("/* sluice: primary */ SELECT 3")
        c.execute("SELECT 4 AS sluice_force_primary")
        error_of(conn, "SELECT * FROM sluice_refused_table")
        c.execute("SELECT id FROM rt_t LIMIT 1 FOR UPDATE")
        c.execute("SELECT LAST_INSERT_ID()")
        c.execute("SELECT 1/0")
        c.execute("SHOW WARNINGS")
        c.execute("PREPARE rt_s FROM 'SELECT 5'")
        c.execute("EXECUTE rt_s")
        c.execute("DEALLOCATE PREPARE rt_s")
        error_of(conn, "SELECT 'abc")
        c.execute("LOCK TABLES rt_t READ")
        c.execute("SELECT COUNT(*) FROM rt_t")
        c.execute("UNLOCK TABLES")
    with connect(client_flag=CLIENT.MULTI_STATEMENTS) as conn, conn.cursor() as c:
        c.execute("SELECT 6; SELECT 7")
        eq(c.fetchall(), ((6,),), "first result of a multi-statement")
        true(c.nextset(), "second result of a multi-statement")
        eq(c.fetchall(), ((7,),), "second result of a multi-statement")
    after = scrape_metrics(ADMIN)
    servers_after = server_counters()

    def at_least(name, label, value, n):
        d = metric_delta(before, after, name, **{label: value})
        true(d >= n, f'{name}{{{label}="{value}"}} grew by {d:g}, expected >= {n}')
        return d

    for cls, n in [("read", 8), ("write", 3), ("ddl", 2), ("begin", 2), ("begin_read_only", 1),
                   ("commit", 2), ("rollback", 1), ("savepoint", 1), ("session_set", 1),
                   ("use", 1), ("lock_tables", 1), ("unlock_tables", 1), ("prepare_sql", 1)]:
        at_least("sluice_statements_total", "class", cls, n)
    for reason, n in [("read", 6), ("write", 3), ("transaction", 6), ("pin", 1), ("rule", 2),
                      ("hint", 1), ("locking_read", 1), ("primary_function", 1),
                      ("session_command", 2), ("unclassified", 1), ("multi_statement", 1),
                      ("diagnostics", 1)]:
        at_least("sluice_routes_total", "reason", reason, n)
    primary = at_least("sluice_backend_statements_total", "backend", "primary", 20)
    replicas = (metric_delta(before, after, "sluice_backend_statements_total", backend="replica1") +
                metric_delta(before, after, "sluice_backend_statements_total", backend="replica2"))
    true(replicas >= 8, f"replica1 + replica2 statements grew by {replicas:g}, expected >= 8")
    print(f"     backend statements: primary +{primary:g}, replicas +{replicas:g}")
    # The same, from the servers' own counters: the metric must not be the only witness.
    served = selects_served(servers_before, servers_after)
    grew = lambda name, var: server_delta(servers_before, servers_after, name, var)
    print(f"     the servers ran SELECTs: {served}; the primary: Com_insert "
          f"+{grew('primary', 'Com_insert')}, Com_create_table +{grew('primary', 'Com_create_table')}")
    true(served["replica1"] + served["replica2"] >= 8,
         f"the replicas ran {served['replica1'] + served['replica2']} SELECTs, expected >= 8")
    true(served["primary"] >= 7, f"the primary ran {served['primary']} SELECTs, expected >= 7 "
                                 "(transaction, hint, rule, FOR UPDATE, LAST_INSERT_ID(), "
                                 "LOCK TABLES, multi-statement)")
    for var, n in (("Com_insert", 3), ("Com_create_table", 1), ("Com_drop_table", 1),
                   ("Com_lock_tables", 1), ("Com_savepoint", 1)):
        # (not checked on the replicas: their replication applier counts writes too)
        true(grew("primary", var) >= n, f"the primary's {var} grew by {grew('primary', var)}, "
                                        f"expected >= {n}")

    # Reads only: they go to the replicas, not to the primary.
    before = scrape_metrics(ADMIN)
    servers_before = server_counters()
    with connect() as conn, conn.cursor() as c:
        for _ in range(20):
            c.execute("SELECT COUNT(*) FROM rt_t")
    servers_after = server_counters()
    after = scrape_metrics(ADMIN)
    at_least("sluice_statements_total", "class", "read", 20)
    at_least("sluice_routes_total", "reason", "read", 20)
    primary = metric_delta(before, after, "sluice_backend_statements_total", backend="primary")
    r1 = metric_delta(before, after, "sluice_backend_statements_total", backend="replica1")
    r2 = metric_delta(before, after, "sluice_backend_statements_total", backend="replica2")
    true(r1 + r2 >= 20, f"20 reads: replica statements grew by {r1 + r2:g}, expected >= 20")
    true(primary < 5, f"20 reads: primary statements grew by {primary:g}, expected < 5")
    served = selects_served(servers_before, servers_after)
    print(f"     20 reads: the servers ran SELECTs {served}")
    eq(served["replica1"] + served["replica2"], 20, "20 reads: SELECTs the replicas ran")
    eq(served["primary"], 0, "20 reads: SELECTs the primary ran")


def test_no_replica_fallback():
    """Both replicas stopped: reads answer from the primary (reason no_replica); once they are
    back, new sessions read from them again."""
    before = None if DIRECT else scrape_metrics(ADMIN)
    try:
        topology("stop", "replica1")
        topology("stop", "replica2")
        # A new session right away, and sessions until Sluice has noticed (bounded).
        answers = []

        def reads_on_primary():
            with connect() as conn:
                s = sid(conn)
                answers.append(s)
                return s == 1
        true(wait_until(reads_on_primary, 20, step=0.5),
             f"reads with both replicas stopped: server_id answers {answers}")
        with connect() as conn, conn.cursor() as c:
            for _ in range(5):
                eq(sid(conn), 1, "reads with both replicas stopped")
            c.execute("INSERT INTO rt_t (sid, v) VALUES (@@server_id, 'no replica')")
            eq(one(conn, "SELECT sid FROM rt_t WHERE id = %s", (c.lastrowid,)), (1,),
               "read-your-writes with no replica")
        if not DIRECT:
            after = scrape_metrics(ADMIN)
            d = metric_delta(before, after, "sluice_routes_total", reason="no_replica")
            true(d >= 5, f'sluice_routes_total{{reason="no_replica"}} grew by {d:g}, expected >= 5')
    finally:
        # Both restarts are attempted whatever happens; the first failure is reported.
        errors = []
        for args in (("start", "replica1"), ("start", "replica2"), ("wait-sync",)):
            try:
                topology(*args)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        if errors:
            raise errors[0]
    if DIRECT:
        return
    seen = set()

    def replicas_back():
        with connect() as conn:
            seen.add(sid(conn))
        return seen >= {2, 3}
    true(wait_until(replicas_back, 30, step=0.5),
         f"after restarting the replicas, new sessions read from {sorted(seen)}, expected 2 and 3")


def test_replica_lost_mid_session():
    """The replica a session reads from goes away between two reads: the next read is answered
    (by the primary or the other replica) without an error, and so are the ones after it."""
    if DIRECT:
        return
    with connect() as conn, conn.cursor() as c:
        first = sid(conn)
        expect_replica(first, "first read")
        name = {2: "replica1", 3: "replica2"}[first]
        try:
            topology("stop", name)
            for i in range(20):
                s = sid(conn)
                true(s != first, f"read {i} after {name} stopped answered from it ({s})")
            c.execute("INSERT INTO rt_t (sid, v) VALUES (@@server_id, 'replica lost')")
            eq(one(conn, "SELECT sid FROM rt_t WHERE id = %s", (c.lastrowid,)), (1,),
               "read-your-writes after the replica was lost")
        finally:
            topology("start", name)
            topology("wait-sync")


def test_kill():
    """KILL of the id a client was given (the greeting's: pymysql thread_id(), JDBC cancel)
    reaches that session's backend threads, wherever its statement runs; an unknown id gets
    1094; CONNECTION_ID() answers that same id."""
    if DIRECT:
        return
    import threading

    def sleep_in(conn, sql, out):
        t0 = time.monotonic()
        try:
            out["answer"] = one(conn, sql)
        except pymysql.MySQLError as e:
            out["answer"] = ("error", e.args[0])
        out["seconds"] = time.monotonic() - t0

    with connect() as a, connect() as b, connect() as c:
        for sql, killer in (("SELECT SLEEP(10), @@server_id", f"KILL QUERY {a.thread_id()}"),
                            ("/* sluice: primary */ SELECT SLEEP(10)", f"KILL QUERY {a.thread_id()}")):
            out = {}
            th = threading.Thread(target=sleep_in, args=(a, sql, out))
            th.start()
            time.sleep(0.5)
            with b.cursor() as cur:
                cur.execute(killer)
            th.join(15)
            true(out.get("seconds", 99) < 5, f"{sql} interrupted by {killer}: {out}")
            eq(one(a, "SELECT 'alive'"), ("alive",), "the session after KILL QUERY")
        # CONNECTION_ID() is the id the client was given, as on a direct connection (issue
        # #7), and KILL QUERY of it reaches the session wherever its statement runs.
        own_id = one(a, "SELECT CONNECTION_ID()")[0]
        eq(own_id, a.thread_id(), "CONNECTION_ID() is the greeting's id")
        out = {}
        th = threading.Thread(target=sleep_in,
                              args=(a, "/* sluice: primary */ SELECT SLEEP(10)", out))
        th.start()
        time.sleep(0.5)
        with b.cursor() as cur:
            cur.execute(f"KILL QUERY {own_id}")
        th.join(15)
        true(out.get("seconds", 99) < 5, f"KILL QUERY of CONNECTION_ID() interrupted: {out}")
        # COM_PROCESS_KILL ends the session; others are untouched.
        b.kill(a.thread_id())
        time.sleep(0.3)
        try:
            one(a, "SELECT 1")
            raise AssertionError("a killed session still answered")
        except pymysql.MySQLError:
            pass
        eq(one(c, "SELECT 'c alive'"), ("c alive",), "another session after the KILL")
        eq(error_of(b, f"KILL {(1 << 30) + 999999}")[0], 1094, "KILL of an unknown Sluice id")


def main():
    checks = Checks()
    if not checks.run("set-up: tables on the primary, replicas caught up", setup):
        checks.finish()
    checks.run("autocommit reads on a replica, one per session, both replicas used", test_reads_on_replicas)
    checks.run("writes and DDL on the primary", test_writes_on_primary)
    checks.run("transactions on the primary, own uncommitted writes visible", test_transaction_on_primary)
    checks.run("START TRANSACTION READ ONLY on a replica; a write in it fails, writes nothing",
               test_read_only_transaction_on_replica)
    checks.run("autocommit=0 on the primary, autocommit=1 back to replicas", test_autocommit_off)
    checks.run("session state replayed on the replica", test_session_state_replayed)
    checks.run("the client's own session tracking keeps read-your-writes",
               test_client_session_tracking_kept)
    checks.run("user variables set from expressions keep the primary's value",
               test_user_variables_not_reevaluated)
    checks.run("pin: temporary table", test_pin_temporary_table)
    checks.run("pin: GET_LOCK until RELEASE_LOCK", test_pin_get_lock)
    checks.run("pin: LOCK TABLES until UNLOCK TABLES", test_pin_lock_tables)
    checks.run("SQL_CALC_FOUND_ROWS then FOUND_ROWS()", test_calc_found_rows)
    checks.run("LAST_INSERT_ID(), FOR UPDATE, LOCK IN SHARE MODE, SELECT ... INTO on the primary",
               test_primary_functions)
    checks.run("hints", test_hints)
    checks.run("query rules: force-primary and refuse-test", test_rules)
    checks.run("statements the lexer cannot read: the server's 1064, session usable", test_lexer_choke)
    checks.run("metrics: statement classes, backends, route reasons", test_metrics)
    checks.run("KILL [QUERY] of a Sluice connection id", test_kill)
    checks.run("the session's replica lost between reads: no error", test_replica_lost_mid_session)
    checks.run("no replica reachable: reads on the primary; replicas used again after restart",
               test_no_replica_fallback)
    checks.finish()


if __name__ == "__main__":
    main()
