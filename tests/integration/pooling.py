#!/usr/bin/python3
"""pooling (issue #10): transaction-mode connection pooling through real clients, in front of
the real topology, with two Sluices of their own (one worker each), stopped with
`sluice.sh stop-check` (exit 0 after SIGTERM, a log free of sanitizer reports and error lines):

  WIDE   on SLUICE_PORT + 640 (admin + 640): every backend, [pool] max_connections = 4,
         min_idle = 2; app2 has pool_mode = "session", and so has a second listener on
         SLUICE_PORT + 642.
  NARROW on SLUICE_PORT + 641 (admin + 641): the primary only, its pool_max_connections = 1
         (over [pool] max_connections = 8) and queue_timeout_ms = 400, so every session
         shares one backend connection; max_client_connections = 8, app2's
         max_connections = 3.

What a backend holds is read from the servers (information_schema.PROCESSLIST, @@server_id,
@@pseudo_thread_id, Com_* counters), never from Sluice's metrics alone.

 1. Multiplexing: 200 PyMySQL clients at once through WIDE, 30 autocommit reads and writes
    each: no error, every write applied, and no server ever had more than 4 of WIDE's
    connections (PROCESSLIST sampled every 20 ms).
 2. No state leaks (NARROW): sessions with different sql_mode, time zone, database,
    character set, user variables and prepared statements (binary protocol, same client ids)
    interleaved on the one backend connection each see only their own; a session without
    settings sees the server's defaults; two users each are who they logged in as.
 3. Pins (NARROW): a transaction, a temporary table, a user lock, LOCK TABLES, an open cursor
    and SQL_CALC_FOUND_ROWS each keep the connection: another session waits and gets error
    1040 after queue_timeout_ms; once released the other session runs, and sees no temporary
    table, lock or cursor of the first.
 4. Sticky answers (WIDE): LAST_INSERT_ID() and SHOW WARNINGS right after a statement answer
    for that statement although another session wrote in between.
 5. Client limits (NARROW): app2's fourth connection gets 1203, the ninth client 1040.
 6. CONNECTION_ID() and KILL (WIDE): CONNECTION_ID() is the id the client was given;
    KILL QUERY of it interrupts its SLEEP, KILL ends it.
 7. Reads balanced per statement (WIDE): one session's 200 reads run on both replicas.
 8. Backend connections killed from the servers (KILL) under 40 busy clients cost at most the
    statements that were running: every client session survives, errors <= kills.
 9. Idle pooled connections killed by the servers are replaced on borrow: no client error.
10. min_idle: WIDE opens its 2 idle primary connections again after the primary killed them.
11. Session mode, for a user and for a listener: the session keeps its own thread, which no
    other session gets; in transaction mode the next session gets the same thread.
"""

import os
import random
import struct
import threading
import time

import pymysql

import itlib
from itlib import (Checks, Daemon, eq, true, env_int, env_str, one, scrape_metrics,
                   metric_delta, sync_replicas, server_counters, selects_served, Raw)

SHARED_PORT = env_int("SLUICE_PORT")
SHARED_ADMIN = env_int("SLUICE_ADMIN_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
SERVERS = {"primary": PRIMARY_PORT, "replica1": env_int("SLUICE_REPLICA1_PORT"),
           "replica2": env_int("SLUICE_REPLICA2_PORT")}
WIDE, WIDE_ADMIN = SHARED_PORT + 640, SHARED_ADMIN + 640
NARROW, NARROW_ADMIN = SHARED_PORT + 641, SHARED_ADMIN + 641
DIR = os.path.join(env_str("SLUICE_IT_DIR"), "pooling")
DB = "sluice_test"


def config(port, admin, backends, pool, extra="", listeners="", app2=""):
    return f"""workers = 1
connect_timeout_ms = 2000
shutdown_grace_ms = 5000
{extra}
[[listeners]]
name = "plain"
address = "127.0.0.1"
port = {port}
{listeners}
{backends}
[[users]]
name = "app"
password = "app"

[[users]]
name = "app2"
password = "app2"
max_connections = 3
{app2}

[pool]
{pool}

[admin]
address = "127.0.0.1"
port = {admin}

[logging]
level = "info"
"""


WIDE_SESSION = SHARED_PORT + 642  # WIDE's second listener: pool_mode = "session"
WIDE_CONFIG = config(WIDE, WIDE_ADMIN, itlib.topology_backends_toml(),
                     "max_connections = 4\nmin_idle = 2\nqueue_timeout_ms = 10000",
                     listeners=f'\n[[listeners]]\nname = "session"\naddress = "127.0.0.1"\n'
                               f'port = {WIDE_SESSION}\npool_mode = "session"\n',
                     app2='pool_mode = "session"')
# The primary's own pool_max_connections (1) overrides [pool] max_connections (8).
NARROW_CONFIG = config(
    NARROW, NARROW_ADMIN,
    f'\n[[backends]]\nname = "primary"\nhost = "127.0.0.1"\nport = {PRIMARY_PORT}\n'
    'role = "primary"\npool_max_connections = 1\n',
    "max_connections = 8\nqueue_timeout_ms = 400", extra="max_client_connections = 8")


def connect(port, user="app", **kw):
    return itlib.connect(port, user=user, **kw)


def direct(port=PRIMARY_PORT):
    return itlib.connect(port)


def setup():
    with direct() as d, d.cursor() as c:
        c.execute("DROP TABLE IF EXISTS pool_t")
        c.execute("DROP TABLE IF EXISTS pool_ai")
        c.execute("CREATE TABLE pool_t (id INT PRIMARY KEY, k INT NOT NULL DEFAULT 0)")
        c.execute("INSERT INTO pool_t (id) VALUES " + ",".join(f"({i})" for i in range(1, 201)))
        c.execute("CREATE TABLE pool_ai (id INT AUTO_INCREMENT PRIMARY KEY, who CHAR(8))")
        sync_replicas(d, lambda p: itlib.connect(p))


class Sampler:
    """Counts the app users' connections on each server every 20 ms (PROCESSLIST, from a
    direct connection of its own) and keeps the highest count."""

    def __init__(self):
        self.peak = {name: 0 for name in SERVERS}
        self.base = self.count_now()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    @staticmethod
    def count(conn):
        return one(conn, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                         "WHERE USER IN ('app', 'app2') AND ID <> CONNECTION_ID()")[0]

    def count_now(self):
        out = {}
        for name, port in SERVERS.items():
            with direct(port) as c:
                out[name] = self.count(c)
        return out

    def run(self):
        conns = {name: direct(port) for name, port in SERVERS.items()}
        try:
            while not self.stop.is_set():
                for name, c in conns.items():
                    self.peak[name] = max(self.peak[name], self.count(c))
                time.sleep(0.02)
        finally:
            for c in conns.values():
                c.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        return False


# ---- 1 ----

def multiplexing():
    errors, done = [], []
    before = one(direct(), "SELECT SUM(k) FROM pool_t")[0]
    start = threading.Barrier(200)

    def client(n):
        try:
            with connect(WIDE) as s, s.cursor() as c:
                start.wait(30)
                rng = random.Random(n)
                writes = 0
                for i in range(30):
                    row = rng.randint(1, 200)
                    if i % 3 == 0:
                        c.execute("UPDATE pool_t SET k = k + 1 WHERE id = %s", (row,))
                        writes += 1
                    else:
                        c.execute("SELECT id FROM pool_t WHERE id = %s", (row,))
                        if c.fetchone() != (row,):
                            errors.append(f"client {n}: wrong row")
                done.append(writes)
        except Exception as e:  # noqa: BLE001 - every failure is counted
            errors.append(f"client {n}: {e!r}")

    with Sampler() as sampler:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    eq(errors[:5], [], "client errors (first 5)")
    eq(len(done), 200, "clients that finished")
    after = one(direct(), "SELECT SUM(k) FROM pool_t")[0]
    eq(int(after) - int(before), sum(done), "writes applied on the primary")
    for name in SERVERS:
        extra = sampler.peak[name] - sampler.base[name]
        true(extra <= 4, f"{name}: at most 4 connections of WIDE's pool at once; the peak was "
             f"{sampler.peak[name]} with {sampler.base[name]} before")
    true(sampler.peak["primary"] > sampler.base["primary"],
         f"the sampler saw WIDE's primary connections ({sampler.peak})")


# ---- 2 ----

def raw_prepare(raw, sql):
    raw.send_packet(b"\x16" + sql.encode(), 0)
    _, p = raw.read_packet()
    true(p[:1] == b"\x00", f"prepare OK for {sql!r}: {p[:16]!r}")
    stmt, ncols, nparams = struct.unpack_from("<IHH", p, 1)
    for _ in range(nparams):
        raw.read_packet()
    if nparams:
        raw.read_packet()  # EOF
    for _ in range(ncols):
        raw.read_packet()
    if ncols:
        raw.read_packet()  # EOF
    return stmt


def raw_execute_rows(raw, stmt, cursor=False):
    """COM_STMT_EXECUTE of a statement without parameters whose one column is a string;
    returns its rows, or ('cursor', status) when a cursor was opened."""
    raw.send_packet(b"\x17" + struct.pack("<IBI", stmt, 1 if cursor else 0, 1), 0)
    _, p = raw.read_packet()
    if p[:1] == b"\xff":
        return ("err", itlib.parse_err(p))
    ncols = p[0]
    for _ in range(ncols):
        raw.read_packet()
    _, eof = raw.read_packet()
    status = struct.unpack_from("<H", eof, 3)[0]
    if cursor:
        return ("cursor", status)
    rows = []
    while True:
        _, p = raw.read_packet()
        if p[:1] == b"\xfe" and len(p) < 9:
            return rows
        n, pos = itlib.lenenc_int(p, 2)  # header byte, one byte of NULL bitmap
        rows.append(p[pos:pos + n].decode())


def raw_fetch(raw, stmt, count):
    """COM_STMT_FETCH; returns (row count, status) of the binary rows of one INT column."""
    raw.send_packet(b"\x1c" + struct.pack("<II", stmt, count), 0)
    rows = 0
    while True:
        _, p = raw.read_packet()
        if p[:1] == b"\xff":
            raise AssertionError(f"fetch: {itlib.parse_err(p)}")
        if p[:1] == b"\xfe" and len(p) < 9:
            return rows, struct.unpack_from("<H", p, 3)[0]
        rows += 1


def no_leaks():
    settings = {
        "a": ("ANSI_QUOTES", "+05:00", "sluice_test", "latin1", "one"),
        "b": ("NO_ENGINE_SUBSTITUTION", "-03:00", "mysql", "utf8mb4", "two"),
    }
    sessions = {}
    for name, (mode, tz, db, cs, v) in settings.items():
        s = connect(NARROW)
        with s.cursor() as c:
            c.execute(f"SET sql_mode = '{mode}'")
            c.execute(f"SET time_zone = '{tz}'")
            c.execute(f"USE {db}")
            c.execute(f"SET NAMES {cs}")
            c.execute(f"SET @v = '{v}'")
        sessions[name] = s
    plain = connect(NARROW)
    defaults = one(direct(), "SELECT @@sql_mode, @@time_zone")
    threads = set()
    try:
        for rnd in range(15):
            for name, s in sessions.items():
                got = one(s, "SELECT @@sql_mode, @@time_zone, DATABASE(), "
                             "@@character_set_client, @v, @@pseudo_thread_id")
                threads.add(got[5])
                eq(got[:5], settings[name], f"round {rnd}: session {name} sees its own settings")
            got = one(plain, "SELECT @@sql_mode, @@time_zone, DATABASE(), @v, "
                             "@@pseudo_thread_id")
            threads.add(got[4])
            eq(got[:4], (defaults[0], defaults[1], DB, None),
               f"round {rnd}: a session without settings sees the defaults")
        eq(len(threads), 1, f"the sessions shared NARROW's one backend connection (threads "
           f"{threads})")
    finally:
        for s in (*sessions.values(), plain):
            s.close()
    # Two users: each is who it logged in as (the one place in the pool goes to each in turn).
    with connect(NARROW) as first, connect(NARROW, user="app2") as second:
        for rnd in range(5):
            eq(one(second, "SELECT CURRENT_USER()")[0], "app2@%", f"round {rnd}: the second user")
            eq(one(first, "SELECT CURRENT_USER(), @v")[0], "app@%", f"round {rnd}: the first user")
    # The same settings in another order are another state: SET NAMES then
    # character_set_client, and the other way round.
    with connect(NARROW) as c1, connect(NARROW) as c2:
        for sql in ("SET NAMES latin1", "SET character_set_client = utf8mb4"):
            one(c1, sql)
        for sql in ("SET character_set_client = utf8mb4", "SET NAMES latin1"):
            one(c2, sql)
        for rnd in range(5):
            eq(one(c1, "SELECT @@character_set_client")[0], "utf8mb4",
               f"round {rnd}: NAMES then character_set_client")
            eq(one(c2, "SELECT @@character_set_client")[0], "latin1",
               f"round {rnd}: character_set_client then NAMES")
    # Prepared statements: two sessions, the same client statement id, different statements,
    # executions interleaved on the one backend connection.
    r1, r2 = Raw(NARROW), Raw(NARROW)
    try:
        r1.login(database=DB)
        r2.login(database=DB)
        s1 = raw_prepare(r1, "SELECT 'first session'")
        s2 = raw_prepare(r2, "SELECT 'second session'")
        eq(s1, s2, "both sessions got the same client statement id")
        for rnd in range(10):
            eq(raw_execute_rows(r1, s1), ["first session"], f"round {rnd}: session 1's statement")
            eq(raw_execute_rows(r2, s2), ["second session"], f"round {rnd}: session 2's statement")
    finally:
        r1.close()
        r2.close()


# ---- 3 ----

def expect_busy(what):
    """Another session on NARROW waits for the connection and gets 1040: at its login (which
    checks the database on the primary) or at its statement."""
    started = time.monotonic()
    try:
        with connect(NARROW) as other:
            started = time.monotonic()
            one(other, "SELECT 1")
    except pymysql.err.OperationalError as e:
        eq(e.args[0], 1040, f"while {what}: another session's error code ({e})")
        waited = time.monotonic() - started
        true(0.3 <= waited < 5, f"while {what}: it waited {waited:.2f} s (queue_timeout 0.4 s)")
        return
    raise AssertionError(f"while {what}: another session ran although the connection was held")


def expect_free(what, sql="SELECT 1", expected=(1,)):
    with connect(NARROW) as other:
        eq(one(other, sql), expected, f"after {what}: another session runs {sql}")


def pins():
    with connect(NARROW) as s, s.cursor() as c:
        expect_free("nothing held")
        c.execute("BEGIN")
        c.execute("UPDATE pool_t SET k = k WHERE id = 1")
        expect_busy("a transaction is open")
        c.execute("COMMIT")
        expect_free("COMMIT")

        c.execute("CREATE TEMPORARY TABLE pool_tmp (a INT)")
        expect_busy("a temporary table exists")
        c.execute("DROP TEMPORARY TABLE pool_tmp")
        expect_free("DROP TEMPORARY TABLE",
                    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'pool_tmp'",
                    (0,))

        c.execute("SELECT GET_LOCK('pool_lock', 0)")
        expect_busy("a user lock is held")
        c.execute("SELECT RELEASE_LOCK('pool_lock')")
        expect_free("RELEASE_LOCK", "SELECT IS_USED_LOCK('pool_lock')", (None,))

        c.execute("LOCK TABLES pool_t READ")
        expect_busy("LOCK TABLES")
        c.execute("UNLOCK TABLES")
        expect_free("UNLOCK TABLES")

        c.execute("SELECT SQL_CALC_FOUND_ROWS id FROM pool_t LIMIT 1")
        c.fetchall()
        expect_busy("SQL_CALC_FOUND_ROWS is pending")
        c.execute("SELECT FOUND_ROWS()")
        eq(c.fetchone(), (200,), "FOUND_ROWS() after SQL_CALC_FOUND_ROWS")
        expect_free("FOUND_ROWS()")

        c.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        expect_busy("SET TRANSACTION waits for the next transaction")
        c.execute("BEGIN")
        c.execute("SELECT k FROM pool_t WHERE id = 1")
        # SERIALIZABLE reads lock what they read: a write to that row now waits.
        with direct() as d, d.cursor() as dc:
            dc.execute("SET SESSION innodb_lock_wait_timeout = 1")
            try:
                dc.execute("UPDATE pool_t SET k = k WHERE id = 1")
                raise AssertionError("a write to the row the SERIALIZABLE transaction read did "
                                     "not wait: SET TRANSACTION did not reach it")
            except pymysql.err.OperationalError as e:
                eq(e.args[0], 1205, f"the write waited for the SERIALIZABLE read's lock ({e})")
        c.execute("COMMIT")
        expect_free("the transaction SET TRANSACTION applied to")

    raw = Raw(NARROW)
    try:
        raw.login(database=DB)
        stmt = raw_prepare(raw, "SELECT id FROM pool_t ORDER BY id")
        kind, status = raw_execute_rows(raw, stmt, cursor=True)
        eq(kind, "cursor", "an execution with a read-only cursor")
        true(status & 0x40, f"the server opened a cursor (status {status:#x})")
        rows, status = raw_fetch(raw, stmt, 150)
        eq(rows, 150, "rows of the first fetch")
        expect_busy("a cursor is open")
        rows, status = raw_fetch(raw, stmt, 100)
        eq(rows, 50, "rows of the last fetch")
        true(status & 0x80, f"the last fetch ended the cursor (status {status:#x})")
        expect_free("the cursor was read to its end")
    finally:
        raw.close()


# ---- 4 ----

def sticky():
    with connect(WIDE) as a, connect(WIDE) as b, a.cursor() as ca, b.cursor() as cb:
        for rnd in range(5):
            ca.execute("INSERT INTO pool_ai (who) VALUES ('a')")
            mine = ca.lastrowid
            cb.execute("INSERT INTO pool_ai (who) VALUES ('b')")
            ca.execute("SELECT LAST_INSERT_ID()")
            eq(ca.fetchone(), (mine,), f"round {rnd}: LAST_INSERT_ID() after another session's "
               "insert")
        ca.execute("SELECT CAST('12abc' AS INT)")
        cb.execute("SELECT 1")
        ca.execute("SHOW WARNINGS")
        warnings = ca.fetchall()
        eq(len(warnings), 1, f"SHOW WARNINGS right after the statement: {warnings}")
        true("12abc" in str(warnings[0]), f"the warning is this session's: {warnings}")


# ---- 5 ----

def limits():
    app2 = [connect(NARROW, user="app2") for _ in range(3)]
    apps = []
    try:
        try:
            connect(NARROW, user="app2").close()
            raise AssertionError("a fourth app2 connection was accepted (max_connections = 3)")
        except pymysql.err.OperationalError as e:
            eq(e.args[0], 1203, f"app2's fourth connection ({e})")
        apps = [connect(NARROW) for _ in range(5)]
        try:
            connect(NARROW).close()
            raise AssertionError("a ninth client was accepted (max_client_connections = 8)")
        except pymysql.err.OperationalError as e:
            eq(e.args[0], 1040, f"the ninth client ({e})")
    finally:
        for s in app2 + apps:
            s.close()
    # Counted down again: the same number connects once Sluice has seen the others close.
    def three_again():
        try:
            again = [connect(NARROW, user="app2") for _ in range(3)]
        except pymysql.err.OperationalError:
            return False
        for s in again:
            s.close()
        return True
    true(itlib.wait_until(three_again, 5), "three app2 sessions again once the others closed")


# ---- 6 ----

def connection_id_and_kill():
    with connect(WIDE) as victim, connect(WIDE) as killer:
        vid = victim.thread_id()
        eq(one(victim, "SELECT CONNECTION_ID()")[0], vid, "CONNECTION_ID() is the client's id")
        result = {}

        def sleeper():
            started = time.monotonic()
            try:
                result["row"] = one(victim, "SELECT SLEEP(5)")
            except pymysql.err.OperationalError as e:
                result["err"] = e.args[0]
            result["took"] = time.monotonic() - started
        t = threading.Thread(target=sleeper)
        t.start()
        time.sleep(0.5)
        with killer.cursor() as c:
            c.execute(f"KILL QUERY {vid}")
        t.join(10)
        true(result.get("took", 99) < 3, f"KILL QUERY interrupted SLEEP(5): {result}")
        true(result.get("row") == (1,) or result.get("err") == 1317, f"interrupted: {result}")
        eq(one(victim, "SELECT 2"), (2,), "the session goes on after KILL QUERY")
        with killer.cursor() as c:
            c.execute(f"KILL {vid}")
        try:
            one(victim, "SELECT 3")
            raise AssertionError("the killed session still answered")
        except pymysql.err.OperationalError as e:
            true(e.args[0] in (2013, 2006, 1927, 0), f"the killed session ended ({e})")


# ---- 7 ----

def balanced():
    before = server_counters()
    with connect(WIDE) as s:
        for _ in range(200):
            one(s, "SELECT id FROM pool_t WHERE id = 7")
    ran = selects_served(before, server_counters())
    true(ran["replica1"] >= 40 and ran["replica2"] >= 40,
         f"one session's 200 reads ran on both replicas: {ran}")


# ---- 8 ----

def app_threads(conn):
    with conn.cursor() as c:
        c.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'app' "
                  "AND ID <> CONNECTION_ID()")
        return [r[0] for r in c.fetchall()]


def killed_mid_run():
    stop = threading.Event()
    errors, lost, ok = [], [], [0]
    kills = [0]

    def client(n):
        rng = random.Random(n)
        try:
            with connect(WIDE) as s, s.cursor() as c:
                while not stop.is_set():
                    row = rng.randint(1, 200)
                    try:
                        if rng.random() < 0.3:
                            c.execute("UPDATE pool_t SET k = k + 1 WHERE id = %s", (row,))
                        else:
                            c.execute("SELECT id, SLEEP(0.002) FROM pool_t WHERE id = %s", (row,))
                            c.fetchall()
                        ok[0] += 1
                    except pymysql.err.OperationalError as e:
                        errors.append(e.args[0])
                        if not s.open:
                            lost.append(n)
                            return
                # After the killing stopped, the session still works.
                for _ in range(5):
                    c.execute("SELECT 1")
                    ok[0] += 1
        except Exception as e:  # noqa: BLE001
            lost.append(f"{n}: {e!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    conns = {name: direct(port) for name, port in SERVERS.items()}
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.25)
            for name, conn in conns.items():
                for tid in app_threads(conn)[:2]:
                    try:
                        with conn.cursor() as c:
                            c.execute(f"KILL {tid}")
                        kills[0] += 1
                    except pymysql.err.OperationalError:
                        pass  # it ended meanwhile
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        for conn in conns.values():
            conn.close()
    eq(lost, [], "client sessions lost")
    true(kills[0] >= 20, f"backend connections killed: {kills[0]}")
    true(len(errors) <= kills[0], f"errors {len(errors)} (codes {sorted(set(errors))}) at most "
         f"one per kill ({kills[0]})")
    true(ok[0] > 500, f"statements that succeeded meanwhile: {ok[0]}")


# ---- 9 ----

def idle_killed():
    m0 = scrape_metrics(WIDE_ADMIN)
    sessions = [connect(WIDE) for _ in range(8)]
    try:
        for s in sessions:
            one(s, "SELECT id FROM pool_t WHERE id = 3")
            with s.cursor() as c:
                c.execute("UPDATE pool_t SET k = k WHERE id = 3")
        killed = 0
        for port in SERVERS.values():
            with direct(port) as conn:
                for tid in app_threads(conn):
                    with conn.cursor() as c:
                        try:
                            c.execute(f"KILL {tid}")
                            killed += 1
                        except pymysql.err.OperationalError:
                            pass
        true(killed >= 3, f"idle pooled connections killed: {killed}")
        time.sleep(0.2)
        for s in sessions:
            for _ in range(3):
                eq(one(s, "SELECT id FROM pool_t WHERE id = 3"), (3,), "a read after the kill")
                with s.cursor() as c:
                    c.execute("UPDATE pool_t SET k = k WHERE id = 3")
    finally:
        for s in sessions:
            s.close()
    m1 = scrape_metrics(WIDE_ADMIN)
    true(metric_delta(m0, m1, "sluice_pool_replaced_total") >= 1,
         "sluice_pool_replaced_total counted replaced connections")


# ---- 10 ----

def min_idle():
    """WIDE has min_idle = 2: with its idle connections killed by the primary, it opens two
    again on its own within its sweep (once a second), before any client asks."""
    with connect(WIDE) as s, s.cursor() as c:
        c.execute("UPDATE pool_t SET k = k WHERE id = 4")  # the primary's pool knows the login
    time.sleep(1.5)
    with direct() as d:
        for tid in app_threads(d):
            with d.cursor() as c:
                try:
                    c.execute(f"KILL {tid}")
                except pymysql.err.OperationalError:
                    pass
        true(itlib.wait_until(lambda: len(app_threads(d)) >= 2, 5),
             f"the primary shows WIDE's 2 idle connections again ({app_threads(d)})")


# ---- 11 ----

def session_modes():
    """A transaction-mode session's primary connection goes back to the pool: the next
    session of the same user gets that thread. A session of app2 (`pool_mode = "session"`)
    or of WIDE's session listener keeps its own thread, which no other session gets, and
    which closes with it."""
    def thread(s):
        # FOR UPDATE: a locking read runs on the primary.
        return one(s, "SELECT @@pseudo_thread_id FROM pool_t WHERE id = 1 FOR UPDATE")[0]

    with connect(WIDE) as s1:
        first = thread(s1)
    with connect(WIDE) as s2:
        eq(thread(s2), first, "transaction mode: the next session borrows the same thread")
    for what, open_session in (("user app2", lambda: connect(WIDE, user="app2")),
                               ("session listener", lambda: connect(WIDE_SESSION))):
        a = open_session()
        try:
            own = thread(a)
            with open_session() as b:
                eq(thread(b) != own, True, f"{what}: another session does not get its thread")
            eq(thread(a), own, f"{what}: the session keeps its thread")
        finally:
            a.close()
        with direct() as d:
            true(itlib.wait_until(lambda: own not in app_threads_of(d, "app", "app2"), 5),
                 f"{what}: its thread closed with the session")


def app_threads_of(conn, *users):
    with conn.cursor() as c:
        c.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER IN (%s) "
                  "AND ID <> CONNECTION_ID()" % ",".join(["%s"] * len(users)), users)
        return [r[0] for r in c.fetchall()]


def main():
    checks = Checks()
    setup()
    with Daemon(DIR, "wide", WIDE_CONFIG, port=WIDE, admin=WIDE_ADMIN) as wide, \
            Daemon(DIR, "narrow", NARROW_CONFIG, port=NARROW, admin=NARROW_ADMIN) as narrow:
        checks.run("1 200 clients on 4 connections per backend", multiplexing)
        checks.run("2 no state leaks between sessions sharing a connection", no_leaks)
        checks.run("3 pins keep the connection, and release it", pins)
        checks.run("4 LAST_INSERT_ID() and SHOW WARNINGS", sticky)
        checks.run("5 client limits", limits)
        checks.run("6 CONNECTION_ID() and KILL", connection_id_and_kill)
        checks.run("7 reads balanced per statement", balanced)
        checks.run("8 backend connections killed mid-run", killed_mid_run)
        checks.run("9 idle pooled connections killed by the servers", idle_killed)
        checks.run("10 min_idle connections opened ahead of use", min_idle)
        checks.run("11 session mode for a user and a listener", session_modes)

        def metrics():
            m = scrape_metrics(NARROW_ADMIN)
            true(metric_delta({}, m, "sluice_pool_queue_timeouts_total") >= 7,
                 "sluice_pool_queue_timeouts_total counted the waits that timed out")
        checks.run("metrics", metrics)
        true(wide.alive() and narrow.alive(), "both daemons are alive")
    checks.finish()


if __name__ == "__main__":
    main()
