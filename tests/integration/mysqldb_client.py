#!/usr/bin/python3
"""mysqldb_client: MySQLdb (mysqlclient on MariaDB Connector/C) through Sluice.

Queries, executemany, callproc, multi-statement results with nextset, COM_PING, COM_INIT_DB,
COM_CHANGE_USER, COM_STATISTICS, COM_SET_OPTION, TLS (on the require_tls listener, so a
success proves the client side is encrypted), get_server_info.

The connections run with autocommit on, as applications usually do, so reads take the replica
connection: where a read ran is read from @@server_id in the same statement (replicas 2 and
3, primary 1). One check keeps MySQLdb's own default, autocommit off: everything is then one
transaction on the primary until commit.
"""

import urllib.request

import MySQLdb
import MySQLdb.cursors
from MySQLdb.constants import CLIENT

from itlib import Checks, eq, true, env_int, env_str, HOST

PORT = env_int("SLUICE_PORT")
TLS_PORT = env_int("SLUICE_TLS_PORT")
SHA2_PORT = env_int("SLUICE_SHA2_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
ADMIN_PORT = env_int("SLUICE_ADMIN_PORT")
CA = env_str("SLUICE_CA")
DB = "sluice_test"
# COM_SET_OPTION values (mysql_com.h enum_mysql_set_option)
MULTI_STATEMENTS_ON, MULTI_STATEMENTS_OFF = 0, 1


def connect(port=PORT, **kw):
    args = dict(host=HOST, port=port, user="app", passwd="app", db=DB, charset="utf8mb4",
                connect_timeout=5, read_timeout=30, write_timeout=30, autocommit=True,
                client_flag=CLIENT.MULTI_STATEMENTS | CLIENT.MULTI_RESULTS)
    args.update(kw)
    return MySQLdb.connect(**args)


def one(conn, sql, args=None):
    c = conn.cursor()
    try:
        c.execute(sql, args)
        return c.fetchone()
    finally:
        c.close()


def metric(name):
    body = urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} not in /metrics")


def expect_replica(server_id, what):
    true(server_id in (2, 3), f"{what}: expected a replica's @@server_id (2 or 3), got {server_id!r}")


def direct_primary():
    return MySQLdb.connect(host="127.0.0.1", port=PRIMARY_PORT, user="app", passwd="app", db=DB,
                           autocommit=True)


def test_query_and_executemany():
    conn = connect()
    try:
        eq(conn.get_autocommit(), True, "autocommit of the connection")
        expect_replica(one(conn, "SELECT @@server_id")[0], "autocommit SELECT @@server_id")
        c = conn.cursor()
        c.execute("DROP TABLE IF EXISTS mdb_t")
        c.execute("CREATE TABLE mdb_t (id INT PRIMARY KEY, name VARCHAR(32), score DOUBLE)")
        rows = [(i, f"n{i}'q", i * 1.5) for i in range(1, 201)]
        n = c.executemany("INSERT INTO mdb_t VALUES (%s, %s, %s)", rows)
        eq(n, 200, "executemany affected rows")
        # Read right after the writes, on a replica (read-your-writes), which names itself.
        eq(c.execute("SELECT id, name, score, @@server_id FROM mdb_t ORDER BY id"), 200, "rows selected")
        got = list(c.fetchall())
        eq([r[:3] for r in got], rows, "rows read back")
        expect_replica(got[0][3], "the read of the rows just written")
        c.execute("SELECT COUNT(*), SUM(score), @@server_id FROM mdb_t WHERE name LIKE %s", ("n1%",))
        count, total, where = c.fetchone()
        eq((count, total), (111, sum(r[2] for r in rows if r[1].startswith("n1"))), "filtered aggregate")
        expect_replica(where, "the aggregate read")
        try:
            c.execute("INSERT INTO mdb_t VALUES (1, 'dup', 0)")
            raise AssertionError("duplicate key accepted")
        except MySQLdb.IntegrityError as e:
            eq(e.args[0], 1062, "duplicate key error code")
        eq(one(conn, "SELECT 'after error'"), ("after error",), "the session answers after the error")
        c.execute("DROP TABLE mdb_t")
        c.close()
    finally:
        conn.close()


def test_autocommit_off():
    """MySQLdb's default, autocommit off: an implicit transaction on the primary, invisible to
    others until commit(); rollback() undoes; back on a replica once autocommit is on."""
    conn = connect(autocommit=False)
    d = direct_primary()
    try:
        eq(conn.get_autocommit(), False, "autocommit of the connection")
        eq(one(conn, "SELECT @@server_id, @@autocommit"), (1, 0),
           "SELECT @@server_id with autocommit off: on the primary")
        one(d, "DROP TABLE IF EXISTS mdb_ac")
        one(d, "CREATE TABLE mdb_ac (id INT PRIMARY KEY, sid INT)")
        c = conn.cursor()
        c.execute("INSERT INTO mdb_ac VALUES (1, @@server_id)")
        eq(one(conn, "SELECT sid, @@server_id FROM mdb_ac WHERE id = 1"), (1, 1),
           "the transaction reads its own row, on the primary")
        eq(one(d, "SELECT COUNT(*) FROM mdb_ac"), (0,), "the row is invisible outside before commit")
        conn.commit()
        eq(one(d, "SELECT id, sid FROM mdb_ac"), ((1, 1)), "the row on the primary after commit")
        c.execute("INSERT INTO mdb_ac VALUES (2, @@server_id)")
        conn.rollback()
        eq(one(d, "SELECT COUNT(*) FROM mdb_ac"), (1,), "rollback() undid the second INSERT")
        eq(one(conn, "SELECT @@server_id")[0], 1, "a read after commit with autocommit off")
        conn.rollback()
        conn.autocommit(True)
        row = one(conn, "SELECT COUNT(*), @@server_id FROM mdb_ac")
        eq(row[0], 1, "rows read after autocommit(True)")
        expect_replica(row[1], "a read after autocommit(True)")
        c.close()
        one(d, "DROP TABLE mdb_ac")
    finally:
        conn.close()
        d.close()


def test_callproc():
    conn = connect()
    try:
        c = conn.cursor()
        c.execute("DROP PROCEDURE IF EXISTS mdb_proc")
        c.execute("CREATE PROCEDURE mdb_proc(IN a INT, INOUT b INT, OUT s VARCHAR(20)) BEGIN "
                  "SET b = a + b; SET s = CONCAT('sum=', b); "
                  "SELECT a AS x, b AS y; SELECT seq FROM seq_1_to_4; END")
        c.callproc("mdb_proc", (5, 7, None))
        eq(c.fetchall(), ((5, 12),), "first result set of callproc")
        true(c.nextset(), "callproc has a second result set")
        eq(c.fetchall(), ((1,), (2,), (3,), (4,)), "second result set of callproc")
        while c.nextset():
            pass
        # The procedure set the OUT variables on the primary: wherever Sluice sends this read,
        # it must see them (issue #7: user variables are unknown after a CALL).
        c.execute("SELECT @_mdb_proc_0, @_mdb_proc_1, @_mdb_proc_2, @@server_id")
        row = c.fetchone()
        eq(row[:3], (5, 12, "sum=12"), f"IN/INOUT/OUT parameters after callproc (read on "
                                       f"server_id {row[3]})")
        c.execute("DROP PROCEDURE mdb_proc")
        c.close()
    finally:
        conn.close()


def test_multi_statement_nextset():
    conn = connect()
    try:
        c = conn.cursor()
        c.execute("SELECT 1 AS a; SELECT 'two', 2; DO 0; SELECT seq FROM seq_1_to_3")
        sets = [c.fetchall()]
        while c.nextset():
            sets.append(c.fetchall())
        eq(sets, [((1,),), (("two", 2),), (), ((1,), (2,), (3,))], "results of a multi-statement")
        # An error in the middle ends the batch; the session keeps working.
        c.execute("SELECT 'before'; SELECT * FROM no_such_mdb; SELECT 'never'")
        eq(c.fetchall(), (("before",),), "result before the failing statement")
        try:
            c.nextset()
            raise AssertionError("the failing statement in a multi-statement did not raise")
        except MySQLdb.ProgrammingError as e:
            eq(e.args[0], 1146, "error code inside a multi-statement")
        eq(one(conn, "SELECT 'after batch'"), ("after batch",), "the session answers after the batch")
        c.close()
    finally:
        conn.close()


def test_ping_select_db_stat():
    conn = connect(db="")
    try:
        conn.ping()
        eq(one(conn, "SELECT DATABASE()"), (None,), "no database at connect")
        conn.select_db(DB)
        eq(one(conn, "SELECT DATABASE()"), (DB,), "COM_INIT_DB")
        try:
            conn.select_db("no_such_db_mdb")
            raise AssertionError("COM_INIT_DB to a missing database accepted")
        except MySQLdb.OperationalError as e:
            eq(e.args[0], 1049, "COM_INIT_DB to a missing database")
        stat = conn.stat()
        true("Uptime" in stat and "Threads" in stat, f"COM_STATISTICS answer: {stat!r}")
        conn.ping()
        info = conn.get_server_info()
        d = direct_primary()
        try:
            eq(info, d.get_server_info(), "get_server_info() through sluice = the primary's")
            eq(one(conn, "SELECT VERSION()")[0], one(d, "SELECT VERSION()")[0],
               "SELECT VERSION() through sluice = the primary's")
        finally:
            d.close()
    finally:
        conn.close()


def test_set_option():
    conn = connect()
    try:
        conn.set_server_option(MULTI_STATEMENTS_OFF)
        c = conn.cursor()
        try:
            c.execute("SELECT 1; SELECT 2")
            raise AssertionError("multi-statement accepted with MULTI_STATEMENTS_OFF")
        except MySQLdb.ProgrammingError as e:
            eq(e.args[0], 1064, "multi-statement refused after COM_SET_OPTION off")
        conn.set_server_option(MULTI_STATEMENTS_ON)
        c.execute("SELECT 1; SELECT 2")
        sets = [c.fetchall()]
        while c.nextset():
            sets.append(c.fetchall())
        eq(sets, [((1,),), ((2,),)], "multi-statement after COM_SET_OPTION on")
        c.close()
    finally:
        conn.close()


def test_change_user():
    conn = connect()
    try:
        one(conn, "SET @marker = 'before'")
        before = one(conn, "SELECT CONNECTION_ID()")[0]
        conn.change_user("app", "app", "mysql")
        eq(one(conn, "SELECT @marker, DATABASE(), CURRENT_USER()"), (None, "mysql", "app@%"),
           "fresh session after COM_CHANGE_USER")
        conn.change_user("app", "app", DB)
        eq(one(conn, "SELECT DATABASE()"), (DB,), "second COM_CHANGE_USER")
        try:
            conn.change_user("app", "wrong", DB)
            raise AssertionError("COM_CHANGE_USER with a wrong password accepted")
        except MySQLdb.OperationalError as e:
            eq(e.args[0], 1045, "COM_CHANGE_USER with a wrong password")
    finally:
        try:
            conn.close()
        except MySQLdb.Error:
            pass
    # On the caching_sha2_password listener, plain and over TLS.
    for ssl in (None, {"ca": CA}):
        kw = {"ssl": ssl} if ssl else {}
        conn = connect(SHA2_PORT, **kw)
        try:
            conn.change_user("app", "app", "mysql")
            eq(one(conn, "SELECT DATABASE(), CURRENT_USER()"), ("mysql", "app@%"),
               f"COM_CHANGE_USER on the sha2 port (TLS: {bool(ssl)})")
        finally:
            conn.close()
    # The failure closed that session only.
    c2 = connect()
    eq(one(c2, "SELECT 1"), (1,), "a new session after the refused change_user")
    c2.close()


def test_tls():
    before = metric("sluice_client_tls_connections_total")
    conn = connect(TLS_PORT, ssl={"ca": CA})
    try:
        eq(one(conn, "SELECT 'tls', 6 * 7"), ("tls", 42), "query on the require_tls port")
        conn.ping()
        conn.select_db("mysql")
        eq(one(conn, "SELECT DATABASE()"), ("mysql",), "COM_INIT_DB over TLS")
    finally:
        conn.close()
    true(metric("sluice_client_tls_connections_total") >= before + 1,
         "sluice_client_tls_connections_total did not grow after a TLS login")
    try:
        connect(TLS_PORT)
        raise AssertionError("plain login accepted on the require_tls port")
    except MySQLdb.OperationalError as e:
        eq(e.args[0], 3159, "plain login on the require_tls port")


def main():
    checks = Checks()
    checks.run("autocommit on: reads on a replica, executemany, duplicate key",
               test_query_and_executemany)
    checks.run("autocommit off: a transaction on the primary until commit", test_autocommit_off)
    checks.run("callproc with two result sets and OUT parameters", test_callproc)
    checks.run("multi-statement results with nextset", test_multi_statement_nextset)
    checks.run("ping, select_db, stat, get_server_info", test_ping_select_db_stat)
    checks.run("COM_SET_OPTION multi statements off/on", test_set_option)
    checks.run("COM_CHANGE_USER", test_change_user)
    checks.run("TLS with ssl={'ca': ...}", test_tls)
    checks.finish()


if __name__ == "__main__":
    main()
