#!/usr/bin/python3
"""readme_claims: README claims no other test exercised (issue #7, section 4), against the
shared Sluice of the integration suite (tests/fixtures/test.toml.in: workers = 2, logging at
info, replica_retry_ms at its default).

Where a statement ran is read from the servers themselves: `@@server_id` in the statement
(primary 1, replicas 2 and 3) or the servers' own counters (SHOW GLOBAL STATUS read directly
on each server: Com_ha_open / Com_ha_read / Com_ha_close, Com_select, Questions).

1. End-to-end routing of what README's *Read/write splitting* sends to the primary: HANDLER
   OPEN / READ / CLOSE (and the pin until CLOSE), sequences (NEXTVAL, NEXT VALUE FOR,
   LASTVAL, PREVIOUS VALUE FOR, SETVAL), SELECT ... FOR UPDATE / LOCK IN SHARE MODE / FOR
   SHARE (MariaDB 10.11 answers FOR SHARE with its own 1064: counted where it was parsed),
   CALL of a procedure that selects @@server_id.
2. "A replica that refuses the replay (a database it lacks) is left for the primary until
   the state changes": a database made on the primary only (sql_log_bin = 0); USE of it
   (COM_QUERY and COM_INIT_DB, and as the login database) sends reads to the primary without
   an error; USE sluice_test sends them to a replica again.
3. The byte, connect, build and worker metrics of README's Observability table.
4. "No passwords or query text at info": literals of statements (reads, writes, refused by a
   rule, failing on the server, unterminated, prepared, SET @v) and passwords (a wrong one,
   also sent in the clear as mysql_clear_password data; a refused and an accepted
   COM_CHANGE_USER) never appear in the Sluice log ($SLUICE_LOG) written during the test,
   while that log does hold this test's session lines.
"""

import os
import secrets
import struct
import subprocess
import time
import tomllib

import MySQLdb
import pymysql

from itlib import (Checks, Raw, eq, true, env_int, env_str, HOST, expect_replica,
                   native_scramble, parse_err, scrape_metrics, metric_value, metric_delta,
                   topology, sync_replicas, server_counters, server_delta, wait_until,
                   CLIENT_LONG_PASSWORD, CLIENT_LONG_FLAG, CLIENT_PROTOCOL_41,
                   CLIENT_TRANSACTIONS, CLIENT_SECURE_CONNECTION, CLIENT_PLUGIN_AUTH,
                   CLIENT_MULTI_RESULTS)

PORT = env_int("SLUICE_PORT")
ADMIN = env_int("SLUICE_ADMIN_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
BIN = env_str("SLUICE_BIN")
CONFIG = os.path.join(env_str("SLUICE_IT_DIR"), "sluice-test.toml")
DB = "sluice_test"
PRIMARY_ONLY_DB = "rc_primary_only"
MARK = secrets.token_hex(6)          # this run's markers: nothing else ever logs them


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


def rows(conn, sql):
    with conn.cursor() as c:
        c.execute(sql)
        return c.fetchall()


def error_of(conn, sql):
    """(code, message) of the error SQL gets; fails if it succeeds."""
    try:
        with conn.cursor() as c:
            c.execute(sql)
            c.fetchall()
    except pymysql.MySQLError as e:
        return e.args[0], e.args[1] if len(e.args) > 1 else ""
    raise AssertionError(f"{sql!r} succeeded; an error was expected")


def sync():
    with direct() as d:
        sync_replicas(d, lambda port: connect(port))


def setup():
    with direct() as d, d.cursor() as c:
        c.execute("DROP TABLE IF EXISTS rc_handler")
        c.execute("CREATE TABLE rc_handler (id INT PRIMARY KEY, v VARCHAR(20))")
        c.execute("INSERT INTO rc_handler VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        c.execute("DROP TABLE IF EXISTS rc_lock")
        c.execute("CREATE TABLE rc_lock (id INT PRIMARY KEY, v INT)")
        c.execute("INSERT INTO rc_lock VALUES (1, 10)")
        c.execute("DROP TABLE IF EXISTS rc_log")
        c.execute("CREATE TABLE rc_log (v VARCHAR(100))")
        c.execute("DROP SEQUENCE IF EXISTS rc_seq")
        c.execute("DROP PROCEDURE IF EXISTS rc_where")
        c.execute(f"DROP DATABASE IF EXISTS {PRIMARY_ONLY_DB}")
    sync()


# ------------------------------------------------------------------- 1. routing ----

def check_handler():
    """HANDLER OPEN / READ / CLOSE run on the primary (the servers' Com_ha_* counters), and the
    session stays there until CLOSE (README: open HANDLERs pin)."""
    with connect() as s:
        expect_replica(one(s, "SELECT @@server_id")[0], "a read before HANDLER OPEN")
        before = server_counters()
        with s.cursor() as c:
            c.execute("HANDLER rc_handler OPEN")
            c.execute("HANDLER rc_handler READ `PRIMARY` FIRST")
            eq(c.fetchall(), ((1, "a"),), "HANDLER READ FIRST")
        eq(one(s, "SELECT @@server_id")[0], 1, "SELECT @@server_id while the HANDLER is open")
        with s.cursor() as c:
            c.execute("HANDLER rc_handler READ `PRIMARY` NEXT")
            eq(c.fetchall(), ((2, "b"),), "HANDLER READ NEXT after a SELECT (same handler)")
            c.execute("HANDLER rc_handler CLOSE")
        after = server_counters()
        for name, want in (("primary", 1), ("replica1", 0), ("replica2", 0)):
            eq(server_delta(before, after, name, "Com_ha_open"), want, f"{name}: Com_ha_open grew")
            eq(server_delta(before, after, name, "Com_ha_read"), 2 * want, f"{name}: Com_ha_read grew")
            eq(server_delta(before, after, name, "Com_ha_close"), want, f"{name}: Com_ha_close grew")
        eq(server_delta(before, after, "primary", "Com_select"), 1,
           "primary: Com_select grew by the one SELECT @@server_id of the pinned session")
        expect_replica(one(s, "SELECT @@server_id")[0], "a read after HANDLER CLOSE")


def check_sequences():
    with connect() as s:
        with s.cursor() as c:
            c.execute("CREATE SEQUENCE rc_seq")
        sync()   # the replicas have the sequence too: a wrong route would answer, not fail
        expect_replica(one(s, "SELECT @@server_id")[0], "a read beside the sequence statements")
        eq(one(s, "SELECT NEXTVAL(rc_seq), @@server_id"), (1, 1), "SELECT NEXTVAL(s), @@server_id")
        eq(one(s, "SELECT NEXT VALUE FOR rc_seq, @@server_id"), (2, 1),
           "SELECT NEXT VALUE FOR s, @@server_id")
        eq(one(s, "SELECT LASTVAL(rc_seq), @@server_id"), (2, 1),
           "SELECT LASTVAL(s), @@server_id (the session's last value lives on the primary)")
        eq(one(s, "SELECT PREVIOUS VALUE FOR rc_seq, @@server_id"), (2, 1),
           "SELECT PREVIOUS VALUE FOR s, @@server_id")
        eq(one(s, "SELECT SETVAL(rc_seq, 100), @@server_id"), (100, 1), "SELECT SETVAL(s, 100), @@server_id")
        before = server_counters()
        eq(one(s, "SELECT NEXTVAL(rc_seq)"), (101,), "SELECT NEXTVAL(s) after SETVAL 100")
        after = server_counters()
        eq({n: server_delta(before, after, n, "Com_select") for n in ("primary", "replica1", "replica2")},
           {"primary": 1, "replica1": 0, "replica2": 0}, "Com_select of SELECT NEXTVAL(s) per server")
        with direct() as d:
            eq(one(d, "SELECT NEXTVAL(rc_seq)"), (102,), "the primary's own sequence moved on")
        with s.cursor() as c:
            c.execute("DROP SEQUENCE rc_seq")


def check_locking_reads():
    with connect() as s:
        expect_replica(one(s, "SELECT @@server_id")[0], "a plain read")
        eq(one(s, "SELECT @@server_id, v FROM rc_lock WHERE id = 1 FOR UPDATE"), (1, 10),
           "SELECT ... FOR UPDATE")
        eq(one(s, "SELECT @@server_id, v FROM rc_lock WHERE id = 1 LOCK IN SHARE MODE"), (1, 10),
           "SELECT ... LOCK IN SHARE MODE")
        eq(one(s, "SELECT @@server_id FROM rc_lock WHERE id = 1 FOR UPDATE NOWAIT"), (1,),
           "SELECT ... FOR UPDATE NOWAIT")
        # MariaDB 10.11 has no FOR SHARE (MySQL 8 syntax): the server that parsed it answers
        # 1064. Questions counts every statement a server received; reading the counters adds
        # the same to each server, measured first with nothing in between.
        q = ("primary", "replica1", "replica2")
        base0 = server_counters()
        base1 = server_counters()
        before = server_counters()
        code, msg = error_of(s, "SELECT @@server_id FROM rc_lock WHERE id = 1 FOR SHARE")
        after = server_counters()
        eq(code, 1064, f"SELECT ... FOR SHARE on MariaDB: the server's syntax error ({msg!r})")
        eq({n: server_delta(before, after, n, "Questions") - server_delta(base0, base1, n, "Questions")
            for n in q}, {"primary": 1, "replica1": 0, "replica2": 0},
           "statements each server received for SELECT ... FOR SHARE (Questions)")
        expect_replica(one(s, "SELECT @@server_id")[0], "a plain read after the locking reads")


def check_call():
    with connect() as s:
        with s.cursor() as c:
            c.execute("CREATE PROCEDURE rc_where() SELECT @@server_id AS sid")
        sync()
        expect_replica(one(s, "SELECT @@server_id")[0], "a plain read")
        with s.cursor() as c:
            c.execute("CALL rc_where()")
            eq(c.fetchall(), ((1,),), "CALL rc_where() (SELECT @@server_id inside)")
            while c.nextset():
                pass
        with s.cursor() as c:
            c.execute("DROP PROCEDURE rc_where")


# --------------------------------------------------- 2. a replica refusing the replay ----

def check_replay_refused():
    """A database only the primary has: reads of a session using it go to the primary."""
    with direct() as d, d.cursor() as c:
        c.execute("SET sql_log_bin = 0")
        c.execute(f"CREATE DATABASE {PRIMARY_ONLY_DB}")
        c.execute(f"CREATE TABLE {PRIMARY_ONLY_DB}.t (a INT)")
        c.execute(f"INSERT INTO {PRIMARY_ONLY_DB}.t VALUES (1), (2), (3)")
        c.execute("SET sql_log_bin = 1")
    try:
        for name, port in (("replica1", env_int("SLUICE_REPLICA1_PORT")),
                           ("replica2", env_int("SLUICE_REPLICA2_PORT"))):
            with connect(port, database=None) as r:
                eq(one(r, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                       (PRIMARY_ONLY_DB,)), (0,), f"{name} lacks {PRIMARY_ONLY_DB} (test set-up)")
        # (a) a session that already reads on a replica, then USE (COM_QUERY).
        with connect() as s:
            expect_replica(one(s, "SELECT @@server_id")[0], "(a) read before USE")
            with s.cursor() as c:
                c.execute(f"USE {PRIMARY_ONLY_DB}")
            for i in range(3):
                eq(one(s, "SELECT @@server_id, COUNT(*) FROM t"), (1, 3),
                   f"(a) autocommit read #{i + 1} after USE {PRIMARY_ONLY_DB}")
            with s.cursor() as c:
                c.execute(f"USE {DB}")
            expect_replica(one(s, "SELECT @@server_id")[0], f"(a) read after USE {DB}")
        # (b) COM_INIT_DB (select_db) as the first thing, before any read.
        with connect() as s:
            s.select_db(PRIMARY_ONLY_DB)
            eq(one(s, "SELECT @@server_id, COUNT(*) FROM t"), (1, 3), "(b) read after COM_INIT_DB")
            s.select_db(DB)
            expect_replica(one(s, "SELECT @@server_id")[0], f"(b) read after COM_INIT_DB {DB}")
        # (c) the database named at login.
        with connect(database=PRIMARY_ONLY_DB) as s:
            eq(one(s, "SELECT @@server_id, COUNT(*) FROM t"), (1, 3), "(c) read in the login database")
            eq(one(s, "SELECT @@server_id, DATABASE()"), (1, PRIMARY_ONLY_DB), "(c) second read")
            s.select_db(DB)
            expect_replica(one(s, "SELECT @@server_id")[0], f"(c) read after COM_INIT_DB {DB}")
    finally:
        with direct() as d, d.cursor() as c:
            c.execute("SET sql_log_bin = 0")
            c.execute(f"DROP DATABASE IF EXISTS {PRIMARY_ONLY_DB}")
            c.execute("SET sql_log_bin = 1")


# ------------------------------------------------------------------------ 3. metrics ----

def check_byte_metrics():
    big_in = 300_000
    big_out = 500_000
    with connect() as s:
        m0 = scrape_metrics(ADMIN)
        sql = "SELECT LENGTH('" + "q" * big_in + "')"
        eq(one(s, sql), (big_in,), "a 300 kB query")
        m1 = scrape_metrics(ADMIN)
        got_in = metric_delta(m0, m1, "sluice_client_bytes_received_total")
        true(len(sql) <= got_in <= len(sql) + 4096,
             f"sluice_client_bytes_received_total grew by {got_in} for a {len(sql)}-byte query "
             f"(expected at least its size, at most 4 KiB more)")
        got_out_small = metric_delta(m0, m1, "sluice_client_bytes_sent_total")
        true(got_out_small < 4096, f"a 1-row, 1-int result counted {got_out_small} bytes sent")
        r = one(s, f"SELECT REPEAT('r', {big_out})")[0]
        eq(len(r), big_out, "a 500 kB result")
        m2 = scrape_metrics(ADMIN)
        got_out = metric_delta(m1, m2, "sluice_client_bytes_sent_total")
        true(big_out <= got_out <= big_out + 4096,
             f"sluice_client_bytes_sent_total grew by {got_out} for a {big_out}-byte result "
             f"(expected at least its size, at most 4 KiB more)")


def check_connect_metrics():
    """Pooled (transaction mode, the default; 2 workers): with the servers' idle app
    connections killed first, 20 sessions one after another, each a login and 3 reads, make
    the pools open connections again, but at most one per backend per worker."""
    for name, port in (("primary", env_int("SLUICE_PRIMARY_PORT")),
                       ("replica1", env_int("SLUICE_REPLICA1_PORT")),
                       ("replica2", env_int("SLUICE_REPLICA2_PORT"))):
        with pymysql.connect(host=HOST, port=port, user="app", password="app",
                             autocommit=True) as d, d.cursor() as c:
            c.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'app' "
                      "AND COMMAND = 'Sleep' AND ID <> CONNECTION_ID()")
            for (tid,) in c.fetchall():
                try:
                    c.execute(f"KILL {tid}")
                except pymysql.MySQLError:
                    pass  # ended meanwhile
    m0 = scrape_metrics(ADMIN)
    for i in range(20):
        with connect() as s:
            for _ in range(3):
                expect_replica(one(s, "SELECT @@server_id")[0], f"session {i}: a read")
    m1 = scrape_metrics(ADMIN)
    opened = metric_delta(m0, m1, "sluice_backend_connects_total")
    true(1 <= opened <= 6, f"sluice_backend_connects_total grew by {opened} for 20 sessions "
         "(at least one connection opened, at most one per backend and worker)")
    eq(metric_delta(m0, m1, "sluice_backend_connect_errors_total"), 0,
       "sluice_backend_connect_errors_total with every server up")


def check_connect_error_metric():
    """replica2 stopped: sessions' reads try it (round robin), fail to connect, read on
    replica1; the error counter grows."""
    topology("stop", "replica2")
    try:
        m0 = scrape_metrics(ADMIN)
        served = []
        # A skip of replica2 left by an earlier failure (replica_retry_ms) delays the attempt.
        deadline = time.monotonic() + 10
        while True:
            with connect() as s:
                served.append(one(s, "SELECT @@server_id")[0])
            m1 = scrape_metrics(ADMIN)
            errors = metric_delta(m0, m1, "sluice_backend_connect_errors_total")
            if (errors >= 1 and len(served) >= 4) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        eq(set(served), {2}, f"reads of {len(served)} new sessions with replica2 stopped (replica1 only)")
        true(errors >= 1, f"sluice_backend_connect_errors_total grew by {errors} while "
             f"{len(served)} sessions' reads met a stopped replica2 over 10 s (expected at least 1)")
    finally:
        topology("start", "replica2")
        topology("wait-sync")
    # Leave the shared daemon as found: replica2 back in rotation (skipped for
    # replica_retry_ms after the last failed attempt) before the next test runs.
    def replica2_used():
        with connect() as s:
            return one(s, "SELECT @@server_id")[0] == 3
    true(wait_until(replica2_used, 10, step=0.2), "replica2 is not used again 10 s after its restart")


def check_build_and_workers():
    out = subprocess.run([BIN, "--version"], capture_output=True, text=True, timeout=10)
    eq(out.returncode, 0, "sluice --version exit status")
    words = out.stdout.split()
    true(len(words) == 2 and words[0] == "sluice", f"sluice --version printed {out.stdout!r}")
    with direct() as d:
        primary_greeting_version = d.server_version
    m = scrape_metrics(ADMIN)
    infos = [(labels, v) for n, labels, v in m if n == "sluice_build_info"]
    eq(len(infos), 1, "one sluice_build_info sample")
    labels, value = infos[0]
    eq(value, 1.0, "sluice_build_info value")
    eq(labels.get("version"), words[1], "sluice_build_info version label vs sluice --version")
    eq(labels.get("server_version"), primary_greeting_version,
       "sluice_build_info server_version label vs the primary's own greeting")
    with connect() as s:
        eq(s.server_version, primary_greeting_version, "the version in Sluice's greeting")
    with open(CONFIG, "rb") as f:
        workers = tomllib.load(f)["workers"]
    true(workers > 0, f"the shared config sets workers explicitly ({workers})")
    eq(metric_value(m, "sluice_workers"), float(workers), f"sluice_workers vs workers = {workers} in {CONFIG}")


# ------------------------------------------------------ 4. no secrets in the info log ----

def clear_password_login(user, password):
    """A raw login that sends PASSWORD in the clear (plugin mysql_clear_password); answers the
    auth switch Sluice sends with the native scramble of the same password. Returns the final
    reply: ('ok', None) or ('err', (code, state, message))."""
    r = Raw(PORT)
    try:
        seq, g = r.read_packet()
        pos = g.index(b"\0", 1) + 1 + 4 + 8 + 1
        caps = struct.unpack_from("<H", g, pos)[0]
        caps |= struct.unpack_from("<H", g, pos + 5)[0] << 16
        client_caps = (CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_PROTOCOL_41 |
                       CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH |
                       CLIENT_MULTI_RESULTS) & caps
        data = password.encode() + b"\0"
        payload = (struct.pack("<IIB", client_caps, 1 << 24, 45) + b"\0" * 23 + user.encode() + b"\0"
                   + bytes([len(data)]) + data + b"mysql_clear_password\0")
        r.send_packet(payload, seq + 1)
        seq, reply = r.read_packet()
        if reply[:1] == b"\xfe":                              # auth switch request
            plugin_end = reply.index(b"\0", 1)
            plugin = reply[1:plugin_end].decode()
            nonce = reply[plugin_end + 1:].rstrip(b"\0")
            eq(plugin, "mysql_native_password", "the plugin of Sluice's auth switch")
            r.send_packet(native_scramble(password.encode(), nonce[:20]), seq + 1)
            seq, reply = r.read_packet()
        if reply[:1] == b"\xff":
            return "err", parse_err(reply)
        true(reply[:1] == b"\x00", f"expected OK or ERR after the login, got {reply[:16]!r}")
        return "ok", None
    finally:
        r.close()


def prepare_raw(sql):
    """COM_STMT_PREPARE of SQL on a raw session; returns the first reply byte."""
    r = Raw(PORT)
    try:
        r.login(database=DB)
        r.send_packet(b"\x16" + sql.encode(), 0)
        _, p = r.read_packet()
        return p[:1]
    finally:
        r.close()


def check_no_secrets_logged(checks):
    secrets_ = {
        "read literal": f"secret_read_{MARK}",
        "written literal": f"secret_write_{MARK}",
        "literal of a failing statement": f"secret_fail_{MARK}",
        "literal of a syntax error": f"secret_syntax_{MARK}",
        "literal of an unterminated string": f"secret_unterminated_{MARK}",
        "literal of a rule-refused statement": f"secret_refused_{MARK}",
        "literal of a prepared statement": f"secret_prepared_{MARK}",
        "user variable value": f"secret_uservar_{MARK}",
        "wrong password": f"wrongpw_{MARK}",
        "wrong password sent in the clear": f"wrongpw_clear_{MARK}",
        "wrong change_user password": f"wrongpw_cu_{MARK}",
    }
    with connect() as s:
        eq(one(s, f"SELECT '{secrets_['read literal']}'"), (secrets_["read literal"],), "read")
        with s.cursor() as c:
            c.execute("INSERT INTO rc_log VALUES (%s)", (secrets_["written literal"],))
            c.execute(f"SET @rc_v = '{secrets_['user variable value']}'")
        eq(one(s, "SELECT @rc_v")[0], secrets_["user variable value"], "user variable read back")
        eq(error_of(s, f"SELECT '{secrets_['literal of a failing statement']}' FROM rc_no_such_table")[0],
           1146, "a statement on a missing table")
        eq(error_of(s, f"SELECT '{secrets_['literal of a syntax error']}' FROM FROM")[0], 1064,
           "a syntax error")
        eq(error_of(s, f"SELECT '{secrets_['literal of an unterminated string']}")[0], 1064,
           "an unterminated string")
        eq(error_of(s, f"SELECT '{secrets_['literal of a rule-refused statement']}' FROM "
                       "sluice_refused_table")[0], 1142, "a statement a query rule refuses")
    eq(prepare_raw(f"SELECT ? , '{secrets_['literal of a prepared statement']}'"), b"\x00",
       "COM_STMT_PREPARE answered OK")
    try:
        connect(password=secrets_["wrong password"])
        raise AssertionError("a login with a wrong password succeeded")
    except pymysql.err.OperationalError as e:
        eq(e.args[0], 1045, "wrong password: error code")
    kind, err = clear_password_login("app", secrets_["wrong password sent in the clear"])
    eq((kind, err[0] if err else None), ("err", 1045), "wrong password sent as mysql_clear_password")
    eq(clear_password_login("app", "app")[0], "ok", "the right password sent as mysql_clear_password")
    unknown_user = f"rc_user_{MARK}"
    try:
        connect(user=unknown_user, password="x")
        raise AssertionError("a login of an unknown user succeeded")
    except pymysql.err.OperationalError as e:
        eq(e.args[0], 1045, "unknown user: error code")
    m = MySQLdb.connect(host=HOST, port=PORT, user="app", password="app", database=DB,
                        connect_timeout=5)
    try:
        try:
            m.change_user("app2", secrets_["wrong change_user password"], DB)
            raise AssertionError("COM_CHANGE_USER with a wrong password succeeded")
        except MySQLdb.OperationalError as e:
            eq(e.args[0], 1045, "refused COM_CHANGE_USER: error code")
        m.change_user("app2", "app2", DB)
        c = m.cursor()
        c.execute("SELECT CURRENT_USER()")
        eq(c.fetchone(), ("app2@%",), "CURRENT_USER() after COM_CHANGE_USER to app2")
    finally:
        m.close()
    # The lines of this test's sessions are in the log (the scan reads the right file; the
    # close lines are written when the sessions end, just now).
    ok = wait_until(lambda: unknown_user in checks.log_since_start(), 5)
    log = checks.log_since_start()
    true(ok, f"the Sluice log {checks.log} has no line naming the refused user {unknown_user} "
         f"(login refused): is it the daemon's log?")
    true(" info " in log, "the log written during this test has info lines")
    leaked = {what: s for what, s in secrets_.items() if s in log}
    lines = [line for line in log.splitlines() if MARK in line and unknown_user not in line]
    true(not leaked, f"the info log holds {sorted(leaked)}: " + " | ".join(lines[:5]))


def main():
    checks = Checks()
    if not checks.run("setup (tables, sequence and procedure dropped; replicas in sync)", setup):
        checks.finish()
    checks.run("HANDLER OPEN/READ/CLOSE run on the primary and pin until CLOSE", check_handler)
    checks.run("sequences (NEXTVAL, NEXT VALUE FOR, LASTVAL, PREVIOUS VALUE FOR, SETVAL) on the primary",
               check_sequences)
    checks.run("FOR UPDATE / LOCK IN SHARE MODE / FOR SHARE on the primary", check_locking_reads)
    checks.run("CALL on the primary", check_call)
    checks.run("a replica that refuses the replay (a database it lacks) is left for the primary",
               check_replay_refused)
    checks.run("client byte metrics grow by at least the bytes of a big query and result",
               check_byte_metrics)
    checks.run("backend connect metric: pooled connections opened once, reused",
               check_connect_metrics)
    checks.run("backend connect error metric grows with a replica stopped", check_connect_error_metric)
    checks.run("sluice_build_info and sluice_workers", check_build_and_workers)
    checks.run("no passwords or query text in the info log", check_no_secrets_logged, checks)
    checks.finish()


if __name__ == "__main__":
    main()
