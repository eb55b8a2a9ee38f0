#!/usr/bin/python3
"""same_script: one script of statements, run directly on the primary and then through
Sluice (which splits reads to replicas, issue #3); every answer must be the same -- rows,
column names, affected rows, insert ids, warning counts, errors.

The script leans on what splitting can get wrong: reads right after writes and DDL, user
variables (constant, computed, SELECT ... INTO, :=), LAST_INSERT_ID(), SQL_CALC_FOUND_ROWS +
FOUND_ROWS(), user locks, SET NAMES, USE, time zones, sql_mode (ANSI_QUOTES,
PIPES_AS_CONCAT, NO_BACKSLASH_ESCAPES, strict), ROW_COUNT(), SHOW WARNINGS / ERRORS after
reads and writes, transactions with savepoints, autocommit=0, READ ONLY transactions, LOCK
TABLES, SQL PREPARE/EXECUTE, temporary tables (also shadowing a real table), multi-statements,
and a fresh session that must not inherit any of it. It runs twice: with PyMySQL's default
capabilities and with CLIENT_FOUND_ROWS (what Connector/J sets), which changes affected rows.
Each run starts from dropped tables. Nothing whose answer legitimately differs (server_id,
connection ids, clocks) is asked. The script is cut into sessions so that statements which
may keep a session on the primary (user variables from expressions, temporary tables) do not
hide the rest from the replicas; through Sluice, the replicas must have run a good share of
it, as the replicas themselves count it (their Com_select, read directly on each server,
without Sluice's read-your-writes waits, which they count in Master_gtid_wait_count).

Statements marked with an error code must fail with it (checked on both runs, so a broken
script does not pass unnoticed); any other error fails the test too if the direct run gets it.
"""

import difflib

import pymysql
import pymysql.constants.CLIENT as CLIENT

from itlib import (Checks, eq, true, env_int, HOST, DIRECT, sync_replicas, server_counters,
                   selects_served)

PORT = env_int("SLUICE_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
TABLES = ("ss_items", "ss_auto", "ss_ts")
# Through Sluice, the replicas must have run at least this many SELECTs of one run (most of
# the reads of the script are free to go there), or the comparison proves little.
MIN_REPLICA_SELECTS = 35

DATA = [
    # Run first: creates and fills the tables.
    "SELECT DATABASE()",
    "USE sluice_test",
    "SELECT DATABASE()",
    # DDL then reads at once: the replica must have the table.
    "CREATE TABLE ss_items (id INT PRIMARY KEY, name VARCHAR(32) CHARACTER SET utf8mb4, "
    "price DECIMAL(10,2), qty INT NOT NULL DEFAULT 0) ENGINE=InnoDB",
    "SHOW TABLES LIKE 'ss\\_items'",
    "SELECT COUNT(*) FROM ss_items",
    "INSERT INTO ss_items VALUES (1,'apple',1.50,10),(2,'pear',2.25,0),(3,'plum',0.99,5),"
    "(4,'fig',3.10,7),(5,'kiwi',0.45,3),(6,'lime',0.30,0),(7,'date',4.00,2),(8,'nut',0.10,100),"
    "(9,'melon',2.80,1),(10,'grape',1.99,12)",
    "SELECT * FROM ss_items ORDER BY id",
    "SELECT COUNT(*), SUM(price), MAX(name), SUM(qty) FROM ss_items",
    # ROW_COUNT() after writes; the second UPDATE matches 5 rows and changes none.
    "UPDATE ss_items SET qty = qty + 1 WHERE id <= 3",
    "SELECT ROW_COUNT()",
    "UPDATE ss_items SET qty = qty WHERE id <= 5",
    "SELECT ROW_COUNT()",
    "DELETE FROM ss_items WHERE id = 10",
    "SELECT ROW_COUNT()",
    "SELECT COUNT(*), SUM(qty) FROM ss_items",
    # LAST_INSERT_ID().
    "CREATE TABLE ss_auto (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB",
    "INSERT INTO ss_auto (v) VALUES ('a')",
    "SELECT LAST_INSERT_ID()",
    "INSERT INTO ss_auto (v) VALUES ('b'), ('c')",
    "SELECT LAST_INSERT_ID()",
    "SELECT id, v FROM ss_auto ORDER BY id",
    "SELECT LAST_INSERT_ID(100)",
    "SELECT LAST_INSERT_ID()",
    "INSERT INTO ss_auto (id, v) VALUES (50, 'explicit')",
    "SELECT LAST_INSERT_ID()",
    "SELECT LAST_INSERT_ID() + 1, COUNT(*) FROM ss_auto",
    # SQL_CALC_FOUND_ROWS + FOUND_ROWS().
    "SELECT SQL_CALC_FOUND_ROWS id, name FROM ss_items WHERE price > 0.5 ORDER BY id LIMIT 3",
    "SELECT FOUND_ROWS()",
    # User locks: IS_FREE_LOCK / RELEASE_LOCK answers (IS_USED_LOCK is a connection id).
    "SELECT GET_LOCK('ss_lock', 5)",
    "SELECT IS_FREE_LOCK('ss_lock'), IS_USED_LOCK('ss_lock') IS NOT NULL",
    "SELECT GET_LOCK('ss_lock2', 5), RELEASE_LOCK('ss_lock2')",
    "SELECT COUNT(*) FROM ss_items",
    "SELECT RELEASE_LOCK('ss_lock')",
    "SELECT IS_FREE_LOCK('ss_lock')",
    "SELECT RELEASE_LOCK('ss_lock')",
    # Errors leave the session usable.
    ("SELECT * FROM ss_missing", 1146),
    "SHOW ERRORS",
    "SHOW COUNT(*) ERRORS",
    ("INSERT INTO ss_items (id, name, price) VALUES (1, 'dup', 1)", 1062),
    "SELECT 'after the duplicate key'",
    # SHOW reads, session variables included.
    "SHOW CREATE TABLE ss_auto",
    "SHOW COLUMNS FROM ss_items",
    "SELECT * FROM ss_items ORDER BY id",
]

# Session state that Sluice replays on the replica; nothing here keeps the session on the
# primary.
STATE = [
    # User variables set to constants.
    "SET @x = 10, @s = 'hello'",
    "SELECT @x + 1, CONCAT(@s, ' world')",
    # SET NAMES: PyMySQL keeps sending UTF-8, which the server now reads as latin1.
    "SET NAMES latin1",
    "SELECT @@character_set_client, @@character_set_connection, @@character_set_results",
    "SELECT HEX('é'), LENGTH('é'), CHAR_LENGTH('é'), HEX(CONVERT('é' USING utf8mb4))",
    "INSERT INTO ss_items (id, name, price) VALUES (20, 'é', 0)",
    "SELECT HEX(name), CHAR_LENGTH(name) FROM ss_items WHERE id = 20",
    "SET NAMES utf8mb4",
    "SELECT @@character_set_client, HEX('é')",
    "INSERT INTO ss_items (id, name, price) VALUES (21, 'Grüße 😀 漢字', 0)",
    "SELECT id, name, HEX(name), CHAR_LENGTH(name) FROM ss_items WHERE id IN (20, 21) ORDER BY id",
    "SELECT id FROM ss_items WHERE name = 'Grüße 😀 漢字'",
    # Time zones (offsets: the servers have no time zone tables).
    "SET time_zone = '+05:30'",
    "SELECT @@time_zone, FROM_UNIXTIME(86400), UNIX_TIMESTAMP('1970-01-02 05:30:00')",
    "SELECT CONVERT_TZ('2024-01-01 00:00:00', @@session.time_zone, '+00:00')",
    "CREATE TABLE ss_ts (id INT PRIMARY KEY, ts TIMESTAMP NULL) ENGINE=InnoDB",
    "INSERT INTO ss_ts VALUES (1, '2024-06-01 12:00:00')",
    "SELECT ts, UNIX_TIMESTAMP(ts) FROM ss_ts",
    "SET time_zone = '-08:00'",
    "SELECT ts, UNIX_TIMESTAMP(ts), @@time_zone FROM ss_ts",
    "SET time_zone = '+00:00'",
    "SELECT ts FROM ss_ts",
    # sql_mode changes how statements read.
    "SET sql_mode = 'ANSI_QUOTES'",
    'SELECT "name", "qty" + 1 FROM ss_items WHERE id = 1',
    "SELECT 'it''s', 'a' || 'b'",
    "SET sql_mode = 'PIPES_AS_CONCAT'",
    "SELECT 'a' || 'b', \"c\"",
    "SET sql_mode = 'NO_BACKSLASH_ESCAPES'",
    "SELECT 'a\\b', LENGTH('a\\b'), 'x\\', 'after'",
    "SET sql_mode = ''",
    "SELECT 'a' || 'b', 'a\\tb'",
    "INSERT INTO ss_items (id, name, price) VALUES (30, REPEAT('x', 40), 1)",
    "SHOW WARNINGS",
    "SELECT @@warning_count",
    "SET sql_mode = 'STRICT_ALL_TABLES'",
    ("INSERT INTO ss_items (id, name, price) VALUES (31, REPEAT('x', 40), 1)", 1406),
    "SHOW WARNINGS",
    "SET sql_mode = DEFAULT",
    "SELECT @@sql_mode",
    # Warnings and errors of reads.
    "SELECT 1/0",
    "SHOW WARNINGS",
    "SELECT CAST('12abc' AS SIGNED), CAST('x' AS DOUBLE)",
    "SHOW COUNT(*) WARNINGS",
    "SHOW WARNINGS",
    "SELECT @@warning_count",
    # Isolation level.
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SELECT @@tx_isolation",
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "SHOW SESSION VARIABLES LIKE 'time_zone'",
    "SHOW SESSION VARIABLES LIKE 'character_set_client'",
]

TRANSACTIONS = [
    # Read-after-write inside a transaction, savepoints.
    "BEGIN",
    "UPDATE ss_items SET price = price + 1 WHERE id = 1",
    "SELECT price FROM ss_items WHERE id = 1",
    "INSERT INTO ss_items (id, name, price) VALUES (40, 'trx', 1)",
    "SELECT COUNT(*) FROM ss_items",
    "SAVEPOINT sp1",
    "DELETE FROM ss_items WHERE id = 40",
    "SELECT COUNT(*) FROM ss_items",
    "ROLLBACK TO SAVEPOINT sp1",
    "SELECT COUNT(*) FROM ss_items",
    "COMMIT",
    "SELECT price FROM ss_items WHERE id = 1",
    "SELECT COUNT(*) FROM ss_items",
    "BEGIN",
    "DELETE FROM ss_items WHERE id > 5",
    "SELECT COUNT(*) FROM ss_items",
    "ROLLBACK",
    "SELECT COUNT(*) FROM ss_items",
    # autocommit=0.
    "SET autocommit = 0",
    "INSERT INTO ss_items (id, name, price) VALUES (41, 'ac0', 1)",
    "SELECT name FROM ss_items WHERE id = 41",
    "ROLLBACK",
    "SELECT name FROM ss_items WHERE id = 41",
    "INSERT INTO ss_items (id, name, price) VALUES (42, 'ac0 kept', 1)",
    "COMMIT",
    "SET autocommit = 1",
    "SELECT @@autocommit, name FROM ss_items WHERE id = 42",
    # A READ ONLY transaction (on a replica through Sluice). A write in it fails with 1792
    # directly but 1290 (read_only server) on a replica: routing.py checks it writes nothing.
    "START TRANSACTION READ ONLY",
    "SELECT COUNT(*), SUM(qty) FROM ss_items",
    "SELECT name FROM ss_items WHERE id = 42",
    "COMMIT",
    # LOCK TABLES.
    "LOCK TABLES ss_items READ",
    "SELECT COUNT(*) FROM ss_items",
    ("SELECT COUNT(*) FROM ss_auto", 1100),
    "UNLOCK TABLES",
    "SELECT COUNT(*) FROM ss_auto",
]

# User variables given values only the primary has (Sluice may keep such a session on the
# primary from here on), SQL prepared statements.
VARIABLES = [
    "SET @x = 10, @s = 'hello'",
    "SET @x = @x * 2",
    "SELECT @x",
    "SELECT COUNT(*) INTO @cnt FROM ss_items",
    "SELECT @cnt",
    "SET @maxp = (SELECT MAX(price) FROM ss_items)",
    "SELECT @maxp",
    "SELECT @y := 5, @y + 1",
    "SELECT @y, @x, @s",
    "SELECT @undefined_variable",
    # SQL prepared statements.
    "PREPARE ss_stmt FROM 'SELECT name FROM ss_items WHERE id = ?'",
    "SET @pid = 3",
    "EXECUTE ss_stmt USING @pid",
    "SET @pid = 4",
    "EXECUTE ss_stmt USING @pid",
    "DEALLOCATE PREPARE ss_stmt",
    ("EXECUTE ss_stmt USING @pid", 1243),
]

TEMPORARY = [
    "CREATE TEMPORARY TABLE ss_tmp (k INT PRIMARY KEY, v VARCHAR(10))",
    "INSERT INTO ss_tmp VALUES (1, 'x'), (2, 'y')",
    "SELECT * FROM ss_tmp ORDER BY k",
    # A temporary table shadows the real one of the same name.
    "CREATE TEMPORARY TABLE ss_items (id INT)",
    "INSERT INTO ss_items VALUES (999)",
    "SELECT * FROM ss_items",
    "DROP TEMPORARY TABLE ss_items",
    "SELECT COUNT(*) FROM ss_items",
    "UPDATE ss_tmp SET v = 'z' WHERE k = 2",
    "SELECT ROW_COUNT()",
    "SELECT * FROM ss_tmp ORDER BY k",
    "DROP TEMPORARY TABLE ss_tmp",
    ("SELECT * FROM ss_tmp", 1146),
    "SELECT COUNT(*) FROM ss_items",
]

MULTI = [
    "INSERT INTO ss_auto (v) VALUES ('m1'); SELECT LAST_INSERT_ID(); SELECT COUNT(*) FROM ss_auto",
    "SET @m = 7; SELECT @m * 2",
    "SELECT @m",
]

# After the sessions above have ended: a new session starts from the defaults.
FRESH = [
    "SELECT DATABASE(), @x, @s, @cnt, @m, @@time_zone, @@sql_mode, @@character_set_client, "
    "@@autocommit, @@tx_isolation, @@warning_count",
    "SELECT IS_FREE_LOCK('ss_lock')",
    ("SELECT * FROM sluice_test.ss_tmp", 1146),
    "SELECT COUNT(*) FROM sluice_test.ss_items",
]

SESSIONS = [
    ("data", dict(database="sbtest"), DATA),
    ("state", {}, STATE),
    ("transactions", {}, TRANSACTIONS),
    ("variables", {}, VARIABLES),
    ("temporary", {}, TEMPORARY),
    ("multi", dict(client_flag=CLIENT.MULTI_STATEMENTS), MULTI),
    ("fresh", dict(database=None), FRESH),
]


def connect(port, client_flag=0, **kw):
    args = dict(host=HOST, port=port, user="app", password="app", database="sluice_test",
                charset="utf8mb4", connect_timeout=5, read_timeout=30, write_timeout=30,
                autocommit=True, client_flag=client_flag)
    args.update(kw)
    return pymysql.connect(**args)


def fresh_tables():
    """Drops the script's tables on the primary; the replicas have applied it."""
    with connect(PRIMARY_PORT) as d, d.cursor() as c:
        for t in TABLES:
            c.execute(f"DROP TABLE IF EXISTS {t}")
        sync_replicas(d, connect)


def answer(cursor, sql):
    """What a client sees of one statement: every result (column names, rows, affected rows,
    insert id, warnings, the OK's info message, the in-transaction flag), or the error."""
    try:
        cursor.execute(sql)
    except pymysql.MySQLError as e:
        return [("error", e.args[0], e.args[1] if len(e.args) > 1 else "")]
    results = []
    while True:
        res = cursor._result
        results.append((
            "ok",
            tuple(d[0] for d in cursor.description) if cursor.description else None,
            cursor.fetchall() if cursor.description else None,
            cursor.rowcount,
            cursor.lastrowid,
            res.warning_count if res is not None else None,
            # The OK packet's info as PyMySQL reads it: Sluice rewrites the primary's OKs for
            # clients without session tracking, and must give the server's exact bytes.
            res.message if res is not None else None,
            # SERVER_STATUS_IN_TRANS of an OK (PyMySQL keeps no status for result sets)
            res.server_status & 0x0001 if res is not None and res.server_status is not None
            else None,
        ))
        try:
            if not cursor.nextset():
                break
        except pymysql.MySQLError as e:
            results.append(("error", e.args[0], e.args[1] if len(e.args) > 1 else ""))
            break
    return results


def run_script(port, extra_flag):
    """Runs every session on PORT; returns ([(statement, answer lines)], problems)."""
    fresh_tables()
    transcript, problems = [], []
    for name, kw, statements in SESSIONS:
        kw = dict(kw)
        kw["client_flag"] = kw.get("client_flag", 0) | extra_flag
        conn = connect(port, **kw)
        try:
            with conn.cursor() as c:
                for item in statements:
                    sql, want_error = (item, None) if isinstance(item, str) else item
                    got = answer(c, sql)
                    transcript.append((f"[{name}] {sql}", [f"    -> {r!r}" for r in got]))
                    errors = [r[1] for r in got if r[0] == "error"]
                    if want_error is not None and errors != [want_error]:
                        problems.append(f"[{name}] {sql!r}: expected error {want_error}, got {got!r}")
                    elif want_error is None and errors:
                        problems.append(f"[{name}] {sql!r}: unexpected error {got!r}")
        finally:
            conn.close()
    return transcript, problems


def flatten(transcript):
    return [line for stmt, answers in transcript for line in [stmt] + answers]


def compare(extra_flag, label):
    direct, direct_problems = run_script(PRIMARY_PORT, extra_flag)
    eq(direct_problems, [], f"{label}: the script run directly on the primary (test setup)")
    before = server_counters()
    sluice, sluice_problems = run_script(PORT, extra_flag)
    served = selects_served(before, server_counters())
    replicas = None if DIRECT else served["replica1"] + served["replica2"]
    eq(len(sluice), len(direct), f"{label}: statements run")
    differing = [stmt for (stmt, a), (_, b) in zip(direct, sluice) if a != b]
    direct_lines, sluice_lines = flatten(direct), flatten(sluice)
    if differing:
        diff = list(difflib.unified_diff(direct_lines, sluice_lines, "directly on the primary",
                                         "through Sluice", lineterm="", n=3))
        print(f"     {label}: answers differ:")
        for line in diff[:200]:
            print("       " + line)
        if len(diff) > 200:
            print(f"       ... {len(diff) - 200} more diff lines")
        raise AssertionError(f"{label}: {len(differing)} of {len(direct)} statements answered "
                             f"differently through Sluice (diff above), the first: {differing[0]}")
    true(not sluice_problems, f"{label}: {sluice_problems[:3]}")
    print(f"     {label}: {len(direct)} statements, {len(direct_lines)} transcript lines, identical;"
          f" SELECTs run by the servers: {served}")
    if replicas is not None:
        true(replicas >= MIN_REPLICA_SELECTS,
             f"{label}: the replicas ran only {replicas} SELECTs through Sluice (expected >= "
             f"{MIN_REPLICA_SELECTS}): the script barely tests splitting")


def cleanup():
    with connect(PRIMARY_PORT) as d, d.cursor() as c:
        for t in TABLES:
            c.execute(f"DROP TABLE IF EXISTS {t}")


def main():
    checks = Checks()
    checks.run("same answers directly and through Sluice (PyMySQL default capabilities)",
               compare, 0, "default capabilities")
    checks.run("same answers directly and through Sluice (CLIENT_FOUND_ROWS)",
               compare, CLIENT.FOUND_ROWS, "CLIENT_FOUND_ROWS")
    cleanup()
    checks.finish()


if __name__ == "__main__":
    main()
