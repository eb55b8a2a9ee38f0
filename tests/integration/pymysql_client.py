#!/usr/bin/python3
"""pymysql_client: PyMySQL (pure-Python client, text protocol) through Sluice.

Text and parametrised queries, a 20 MiB BLOB both ways (multi-packet commands and rows),
commands and rows of exactly 16 MiB - 1 bytes, LOAD DATA LOCAL INFILE, rollback, COM_PING, COM_INIT_DB, caching_sha2_password with and
without TLS, a 100k-row result (buffered and streamed), utf8mb4, a CALL with two result sets.
"""

import os
import ssl
import tempfile
import hashlib

import pymysql
import pymysql.cursors

from itlib import Checks, eq, true, env_int, env_str, HOST

PORT = env_int("SLUICE_PORT")
SHA2_PORT = env_int("SLUICE_SHA2_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
CA = env_str("SLUICE_CA")
DB = "sluice_test"


def connect(port=PORT, **kw):
    args = dict(host=HOST, port=port, user="app", password="app", database=DB,
                charset="utf8mb4", connect_timeout=5, read_timeout=60, write_timeout=60,
                max_allowed_packet=64 * 1024 * 1024, autocommit=True)
    args.update(kw)
    return pymysql.connect(**args)


def direct(**kw):
    return connect(PRIMARY_PORT, **kw)


def one(conn, sql, args=None):
    with conn.cursor() as c:
        c.execute(sql, args)
        return c.fetchone()


def test_text_queries():
    with connect() as conn:
        eq(one(conn, "SELECT 1 + 1, 'abc', NULL, 2.5, CAST(-3 AS SIGNED)"),
           (2, "abc", None, __import__("decimal").Decimal("2.5"), -3), "text SELECT")
        # An autocommit read goes to a replica (read/write splitting): server_id 2 or 3.
        server_id = one(conn, "SELECT @@server_id")[0]
        true(server_id in (2, 3), f"@@server_id through sluice: expected a replica's, got {server_id}")
        with conn.cursor() as c:
            c.execute("DROP TABLE IF EXISTS py_text")
            c.execute("CREATE TABLE py_text (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64))")
            c.execute("INSERT INTO py_text (v) VALUES ('a'), ('b'), ('c')")
            eq(c.rowcount, 3, "affected rows of a 3-row INSERT")
            eq(c.lastrowid, 1, "last insert id of the first auto-increment row")
            c.execute("UPDATE py_text SET v = 'z' WHERE id >= 2")
            eq(c.rowcount, 2, "affected rows of UPDATE")
            c.execute("SELECT id, v FROM py_text ORDER BY id")
            eq(c.fetchall(), ((1, "a"), (2, "z"), (3, "z")), "rows after UPDATE")
        # A server error reaches the client with its code; the session keeps working.
        thread_id = one(conn, "SELECT CONNECTION_ID()")[0]
        try:
            one(conn, "SELECT * FROM no_such_table_py")
            raise AssertionError("SELECT from a missing table did not fail")
        except pymysql.err.ProgrammingError as e:
            eq(e.args[0], 1146, "error code for a missing table")
        eq(one(conn, "SELECT CONNECTION_ID()")[0], thread_id, "same backend session after the error")
        one(conn, "DROP TABLE py_text")


def test_parametrised():
    tricky = ["O'Brien", 'say "hi"', "back\\slash", "nul\0byte", "percent %s %%", ""]
    with connect() as conn, conn.cursor() as c:
        c.execute("DROP TABLE IF EXISTS py_params")
        c.execute("CREATE TABLE py_params (id INT PRIMARY KEY, s VARCHAR(64), n BIGINT, f DOUBLE)")
        rows = [(i, s, -(2 ** 62) + i, i / 3) for i, s in enumerate(tricky)]
        eq(c.executemany("INSERT INTO py_params VALUES (%s, %s, %s, %s)", rows), len(rows),
           "executemany affected rows")
        c.execute("SELECT id, s, n, f FROM py_params WHERE id >= %s ORDER BY id", (0,))
        eq([tuple(r) for r in c.fetchall()], rows, "parametrised rows round trip")
        c.execute("SELECT id FROM py_params WHERE s = %(s)s", {"s": "O'Brien"})
        eq(c.fetchall(), ((0,),), "named parameter with a quote")
        c.execute("DROP TABLE py_params")


def test_blob_20mib():
    data = os.urandom(20 * 1024 * 1024)
    with connect() as conn, conn.cursor() as c:
        c.execute("DROP TABLE IF EXISTS py_blob")
        c.execute("CREATE TABLE py_blob (id INT PRIMARY KEY, b LONGBLOB)")
        c.execute("INSERT INTO py_blob VALUES (1, %s)", (data,))
        c.execute("SELECT LENGTH(b), SHA1(b) FROM py_blob WHERE id = 1")
        eq(c.fetchone(), (len(data), hashlib.sha1(data).hexdigest()),
           "server-side length and SHA1 of the 20 MiB blob")
        c.execute("SELECT b FROM py_blob WHERE id = 1")
        back = c.fetchone()[0]
        eq(len(back), len(data), "length of the blob read back")
        true(back == data, "blob read back differs from the one written")
        c.execute("SELECT 'after blob'")
        eq(c.fetchone(), ("after blob",), "the session answers after the blob")
        c.execute("DROP TABLE py_blob")


def test_packet_boundaries():
    """Commands and rows of exactly 16 MiB - 1 bytes need an empty continuation packet."""
    full = 0xFFFFFF
    with connect() as conn, conn.cursor() as c:
        # COM_QUERY payload = 1 command byte + the SQL text.
        head, tail = "SELECT LENGTH('", "')"
        for delta in (-1, 0, 1):
            k = full - 1 - len(head) - len(tail) + delta
            c.execute(head + "y" * k + tail)
            eq(c.fetchone(), (k,), f"COM_QUERY payload of 0xFFFFFF{delta:+d} bytes")
        # A text row holding one string of n bytes: payload = 4-byte length prefix + n.
        for delta in (-1, 0, 1):
            n = full - 4 + delta
            c.execute("SELECT REPEAT('z', %s)", (n,))
            v = c.fetchone()[0]
            eq(len(v), n, f"row payload of 0xFFFFFF{delta:+d} bytes")
            true(v == "z" * n, "row contents differ")
        c.execute("SELECT 'after boundaries'")
        eq(c.fetchone(), ("after boundaries",), "the session answers after the boundary cases")


def test_load_data_local():
    with direct() as d:
        eq(one(d, "SELECT @@local_infile")[0], 1,
           "the primary must have local_infile=ON (topology.sh); it is OFF")
    lines = [f"{i}\tname {i}\t{'é' if i % 2 else 'x'}{i * 7}\n" for i in range(1, 5001)]
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".tsv", delete=False) as f:
        f.writelines(lines)
        path = f.name
    try:
        with connect(local_infile=True) as conn, conn.cursor() as c:
            c.execute("DROP TABLE IF EXISTS py_infile")
            c.execute("CREATE TABLE py_infile (id INT PRIMARY KEY, name VARCHAR(32), v VARCHAR(32))")
            n = c.execute(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE py_infile "
                          "CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t'")
            eq(n, 5000, "rows reported by LOAD DATA LOCAL INFILE")
            c.execute("SELECT COUNT(*), SUM(id), MIN(name), MAX(id) FROM py_infile")
            eq(c.fetchone(), (5000, 5000 * 5001 // 2, "name 1", 5000), "loaded rows")
            c.execute("SELECT id, name, v FROM py_infile WHERE id IN (1, 2, 4999) ORDER BY id")
            eq(c.fetchall(), ((1, "name 1", "é7"), (2, "name 2", "x14"), (4999, "name 4999", "é34993")),
               "loaded contents")
            c.execute("SELECT 'after infile'")
            eq(c.fetchone(), ("after infile",), "the session answers after LOAD DATA")
            # The client cannot read the file: it answers the request with an empty packet.
            try:
                c.execute("LOAD DATA LOCAL INFILE '/nonexistent/sluice.tsv' INTO TABLE py_infile")
                raise AssertionError("LOAD DATA LOCAL of a missing file succeeded")
            except pymysql.err.OperationalError as e:
                true(e.args[0] in (1017, 2000, 2), f"LOAD DATA LOCAL of a missing file: {e!r}")
            c.execute("SELECT COUNT(*) FROM py_infile")
            eq(c.fetchone(), (5000,), "the session answers after a failed LOAD DATA LOCAL")
            c.execute("DROP TABLE py_infile")
    finally:
        os.unlink(path)


def test_rollback():
    with connect() as setup:
        one(setup, "DROP TABLE IF EXISTS py_tx")
        one(setup, "CREATE TABLE py_tx (id INT PRIMARY KEY) ENGINE=InnoDB")
    with connect(autocommit=False) as conn:
        with conn.cursor() as c:
            c.execute("INSERT INTO py_tx VALUES (1), (2)")
            c.execute("SELECT COUNT(*) FROM py_tx")
            eq(c.fetchone(), (2,), "rows visible inside the transaction")
            eq(one(direct(), "SELECT COUNT(*) FROM sluice_test.py_tx"), (0,),
               "uncommitted rows invisible to another session")
        conn.rollback()
        eq(one(conn, "SELECT COUNT(*) FROM py_tx"), (0,), "rows after ROLLBACK (same session)")
        one(conn, "INSERT INTO py_tx VALUES (3)")
        conn.commit()
    eq(one(direct(), "SELECT GROUP_CONCAT(id) FROM sluice_test.py_tx"), ("3",),
       "only the committed row is on the primary")
    with connect() as conn:
        one(conn, "DROP TABLE py_tx")


def test_ping_and_select_db():
    with connect(database=None) as conn:
        eq(one(conn, "SELECT DATABASE()"), (None,), "no database at connect")
        conn.ping(reconnect=False)
        conn.select_db(DB)
        eq(one(conn, "SELECT DATABASE()"), (DB,), "COM_INIT_DB switched the database")
        try:
            conn.select_db("no_such_db_py")
            raise AssertionError("COM_INIT_DB to a missing database did not fail")
        except pymysql.err.OperationalError as e:
            eq(e.args[0], 1049, "COM_INIT_DB to a missing database")
        eq(one(conn, "SELECT DATABASE()"), (DB,), "database unchanged after the failed COM_INIT_DB")
        for _ in range(3):
            conn.ping(reconnect=False)
        eq(one(conn, "SELECT 'pong'"), ("pong",), "queries after COM_PING")


def test_sha2_tls():
    with connect(SHA2_PORT, ssl={"ca": CA}) as conn:
        true(isinstance(conn._sock, ssl.SSLSocket), "connection to the sha2 port is not TLS")
        true(conn._sock.version() in ("TLSv1.2", "TLSv1.3"), f"TLS version {conn._sock.version()}")
        eq(one(conn, "SELECT CURRENT_USER(), 6 * 7"), ("app@%", 42), "query over TLS on the sha2 port")
    # Large results and commands over TLS (many TLS records each way).
    with connect(SHA2_PORT, ssl={"ca": CA}) as conn, conn.cursor() as c:
        data = os.urandom(5 * 1024 * 1024)
        # Aliases: an unnamed column is named after its expression, random bytes included.
        c.execute("SELECT %s = %s AS same, LENGTH(%s) AS len", (data, data, data))
        eq(c.fetchone(), (1, len(data)), "5 MiB parameter over TLS")
        c.execute("SELECT SHA1(REPEAT('t', 3000000)), REPEAT('t', 3000000)")
        sha, big = c.fetchone()
        eq((sha, len(big)), (hashlib.sha1(b"t" * 3000000).hexdigest(), 3000000), "3 MB value over TLS")
        eq(c.execute("SELECT seq FROM sluice_test.seq_1_to_50000"), 50000, "50k rows over TLS")
    # Again: now the cache is warm, the fast path is taken. Several logins, as PyMySQL's
    # ClientHello often arrives in the same segment as its SSLRequest.
    for i in range(10):
        with connect(SHA2_PORT, ssl={"ca": CA}) as conn:
            eq(one(conn, "SELECT 'warm'"), ("warm",), f"TLS login #{i + 2} on the sha2 port")
    try:
        connect(SHA2_PORT, ssl={"ca": CA}, password="wrong")
        raise AssertionError("wrong password accepted on the sha2 port")
    except pymysql.err.OperationalError as e:
        eq(e.args[0], 1045, "wrong password over TLS on the sha2 port")


def test_sha2_plain():
    with connect(SHA2_PORT) as conn:
        true(not isinstance(conn._sock, ssl.SSLSocket), "plain connection unexpectedly TLS")
        eq(one(conn, "SELECT 'fast path', @@server_id > 0"), ("fast path", 1),
           "caching_sha2 without TLS")
    try:
        connect(SHA2_PORT, password="wrong")
        raise AssertionError("wrong password accepted on the sha2 port without TLS")
    except pymysql.err.OperationalError as e:
        eq(e.args[0], 1045, "wrong password without TLS on the sha2 port")


def test_many_rows():
    with connect() as conn:
        with conn.cursor() as c:
            n = c.execute("SELECT seq, CONCAT('row-', seq) FROM seq_1_to_100000")
            eq(n, 100000, "row count of a buffered 100k-row result")
            rows = c.fetchall()
            eq(len(rows), 100000, "rows fetched")
            eq(sum(r[0] for r in rows), 100000 * 100001 // 2, "sum of seq")
            eq(rows[-1], (100000, "row-100000"), "last row")
        with conn.cursor(pymysql.cursors.SSCursor) as c:
            c.execute("SELECT seq FROM seq_1_to_100000")
            count = total = 0
            for (v,) in c:
                count += 1
                total += v
            eq((count, total), (100000, 100000 * 100001 // 2), "streamed 100k rows (SSCursor)")
        eq(one(conn, "SELECT 'after 100k'"), ("after 100k",), "the session answers after 100k rows")


def test_unicode():
    samples = ["😀🎉 emoji", "Grüße ünïcødé", "漢字かなカナ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "Ω≈ç√∫"]
    with connect() as conn, conn.cursor() as c:
        c.execute("DROP TABLE IF EXISTS py_utf8")
        c.execute("CREATE TABLE py_utf8 (id INT PRIMARY KEY, s VARCHAR(64)) CHARACTER SET utf8mb4")
        c.executemany("INSERT INTO py_utf8 VALUES (%s, %s)", list(enumerate(samples)))
        c.execute("SELECT s, CHAR_LENGTH(s), LENGTH(s) FROM py_utf8 ORDER BY id")
        eq([tuple(r) for r in c.fetchall()],
           [(s, len(s), len(s.encode("utf-8"))) for s in samples], "utf8mb4 round trip")
        c.execute("SELECT HEX(s) FROM py_utf8 WHERE id = 0")
        eq(c.fetchone()[0], samples[0].encode("utf-8").hex().upper(), "emoji bytes stored on the server")
        c.execute("SELECT id FROM py_utf8 WHERE s = %s", ("😀🎉 emoji",))
        eq(c.fetchall(), ((0,),), "emoji in a WHERE parameter")
        c.execute("DROP TABLE py_utf8")


def test_call_two_results():
    with connect() as conn, conn.cursor() as c:
        c.execute("DROP PROCEDURE IF EXISTS py_two")
        c.execute("CREATE PROCEDURE py_two(IN n INT) BEGIN "
                  "SELECT n AS a, 'first' AS b; "
                  "SELECT seq, seq * n FROM seq_1_to_3; END")
        c.execute("CALL py_two(10)")
        eq(c.fetchall(), ((10, "first"),), "first result set of CALL")
        true(c.nextset(), "CALL has a second result set")
        eq(c.fetchall(), ((1, 10), (2, 20), (3, 30)), "second result set of CALL")
        c.nextset()   # the final OK of the CALL
        eq(c.fetchall(), (), "no third result set")
        c.execute("SELECT 'after call'")
        eq(c.fetchone(), ("after call",), "the session answers after CALL")
        c.execute("DROP PROCEDURE py_two")


def main():
    checks = Checks()
    checks.run("text queries, affected rows, insert id, server error 1146", test_text_queries)
    checks.run("parametrised queries", test_parametrised)
    checks.run("20 MiB BLOB insert and select", test_blob_20mib)
    checks.run("16 MiB packet boundaries, both directions", test_packet_boundaries)
    checks.run("LOAD DATA LOCAL INFILE", test_load_data_local)
    checks.run("autocommit off + rollback", test_rollback)
    checks.run("COM_PING and COM_INIT_DB", test_ping_and_select_db)
    checks.run("caching_sha2_password with TLS", test_sha2_tls)
    checks.run("caching_sha2_password without TLS", test_sha2_plain)
    checks.run("100k-row result", test_many_rows)
    checks.run("utf8mb4 round trip", test_unicode)
    checks.run("CALL with two result sets", test_call_two_results)
    checks.finish()


if __name__ == "__main__":
    main()
