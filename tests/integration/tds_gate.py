#!/usr/bin/env python3
"""tds_gate.py -- the gate of the TDS test server (tests/fixtures/tds_server.py, issue #11).

Before the test server may stand in for SQL Server, real TDS clients must use it directly under
each encryption mode they support. This test starts its own servers, in three pairs (a primary
and a secondary sharing one replication log): --encrypt off, --encrypt on (forced) and
--encrypt not_supported (no certificate). Through every client it runs one session: log in
(app/app, database sluice), create a table, insert rows with values chosen at random here (a
non-ASCII string with a quote, NULLs, large ints, floats), read them back (also straight from the
primary's SQLite file: results are computed, not canned), a parameterised query where the client
has one, a transaction rolled back and one committed, @@SERVERNAME and the negotiated encryption
and TDS version (sys.dm_exec_connections), a wrong password (18456), then on the secondary the
replicated rows and a write refused (3906). A client whose mode the server must refuse (MS-TDS
2.2.6.5) must fail to connect, nothing else.

Clients: FreeTDS tsql and bsqldb, isql (unixODBC + tdsodbc), pymssql, pyodbc (tdsodbc), pytds
(python3-tds, its own TDS code), jTDS (JtdsGate.java, compiled here), tedious and mssql from npm
(node/tds_gate.js, also TDS 8.0 strict). Then ATTENTION (pymssql, pytds and tedious cancel a long
result, the connection works afterwards), RESETCONNECTION (tedious reset() drops a temp table),
multi-packet requests and responses (pytds, tedious). The traffic of the not_supported pair is
captured with tcpdump and dissected with tshark: TDS decoded, no malformed frame.

The negotiated encryption is not taken on trust: every session reads sys.dm_exec_connections
(encrypt_option, protocol_version, and the server's own sluice_encryption: none, login, full or
strict) and it must match MS-TDS's table for the client's PRELOGIN value and the server's mode.

A Python traceback on a server's stderr, or a server not exiting 0 on SIGTERM, fails the test.
One client failure is known and reported, not failed: jTDS 1.3.1's login-only TLS (ssl=request
against --encrypt off) on OpenJDK 17, where the client closes its own socket after LOGIN7 (see
jtds_matrix).

Environment: TDS_GATE_PORT (base port, default 14400; uses +0..+5), TDS_GATE_SEED (random seed,
printed), TDS_GATE_KEEP=1 keeps the work directory, SLUICE_NODE (node binary). Needs root or
capture capabilities for tcpdump. One line per check; exit 0 only if all passed.
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SERVER = os.path.join(ROOT, "tests", "fixtures", "tds_server.py")
MAKE_CERTS = os.path.join(ROOT, "tests", "fixtures", "make-certs.sh")
PYTHON = "/usr/bin/python3"
TDSODBC = "/usr/lib/x86_64-linux-gnu/odbc/libtdsodbc.so"
JTDS_JAR = "/usr/share/java/jtds.jar"
NODE = os.environ.get("SLUICE_NODE", "node")  # CTest passes SLUICE_TEST_NODE

BASE = int(os.environ.get("TDS_GATE_PORT", "14400"))
SEED = int(os.environ.get("TDS_GATE_SEED", str(random.SystemRandom().randrange(1 << 31))))
rnd = random.Random(SEED)

# PRELOGIN ENCRYPTION values (MS-TDS 2.2.6.5).
E_OFF, E_ON, E_NOT_SUP, E_REQ = 0, 1, 2, 3
TDS71, TDS74 = 0x71000001, 0x74000004


def outcome(client_value, server_mode):
    """What the connection must be, from MS-TDS 2.2.6.5's table: plain, login, full or refused."""
    if client_value == "strict":
        return "refused" if server_mode == "not_supported" else "strict"
    if server_mode == "off":
        return {E_OFF: "login", E_ON: "full", E_NOT_SUP: "plain", E_REQ: "full"}[client_value]
    if server_mode == "on":
        return "refused" if client_value == E_NOT_SUP else "full"
    return "refused" if client_value in (E_ON, E_REQ) else "plain"


# --- reporting ---------------------------------------------------------------------------------
class Checks:
    def __init__(self):
        self.failures, self.count = [], 0

    def run(self, name, fn, *args):
        self.count += 1
        t0 = time.monotonic()
        try:
            note = fn(*args)
        except Exception as e:  # noqa: BLE001 -- any failure is a check failure
            self.failures.append(name)
            print("FAIL - %s: %s: %s" % (name, type(e).__name__, e), flush=True)
            traceback.print_exc(limit=3, file=sys.stderr)
            return False
        extra = " [%s]" % note if note else ""
        print("ok   - %s (%.2fs)%s" % (name, time.monotonic() - t0, extra), flush=True)
        return True


class Fail(Exception):
    pass


class Terminated(BaseException):
    """SIGTERM (ctest's timeout): not a check's failure; ends the run, servers stopped."""


def expect(cond, what):
    if not cond:
        raise Fail(what)


# --- servers -----------------------------------------------------------------------------------
def free_port(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of an earlier run is fine
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class TdsServer:
    """One test server; EXTRA: more command-line arguments (tds_clients.py: --user, --lag-ms)."""

    def __init__(self, work, name, port, role, log, encrypt, certs, extra=()):
        self.name, self.port, self.role, self.encrypt = name, port, role, encrypt
        self.dir = os.path.join(work, name)
        self.stderr_path = os.path.join(work, name + ".stderr")
        self.db = os.path.join(self.dir, "data.sqlite")
        cmd = [PYTHON, SERVER, "--port", str(port), "--name", name, "--role", role, "--log", log,
               "--dir", self.dir, "--user", "app:app", "--encrypt", encrypt]
        if certs:
            cmd += ["--cert", os.path.join(certs, "server.pem"), "--key", os.path.join(certs, "server.key")]
        cmd += list(extra)
        self.err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.err, stderr=self.err, stdin=subprocess.DEVNULL)

    def wait_ready(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Fail("%s exited with %s: %s" % (self.name, self.proc.returncode, self.stderr()))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise Fail("%s not listening on %d" % (self.name, self.port))

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.err.close()
        return self.proc.returncode

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Group:
    """A primary and a secondary sharing one replication log, under one --encrypt setting."""

    def __init__(self, work, mode, port, certs):
        self.mode = mode
        log = os.path.join(work, "ag-%s.log" % mode)
        self.primary = TdsServer(work, "p_" + mode, port, "primary", log, mode, certs)
        self.secondary = TdsServer(work, "s_" + mode, port + 1, "secondary", log, mode, certs)


def sqlite_rows(db, sql, args=()):
    conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def wait_replicated(group, table, row_id):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if sqlite_rows(group.secondary.db, "SELECT count(*) FROM %s WHERE id = ?" % table, (row_id,))[0][0]:
                return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    raise Fail("row %d of %s never reached %s" % (row_id, table, group.secondary.name))


# --- what every session does ---------------------------------------------------------------------
WORDS = ["alpha", "bravo", "delta", "kilo", "oscar", "tango", "zulu", "quebec"]
NON_ASCII = ["Grüße", "Ωμέγα", "日本語", "Ñandú", "Łódź", "Ελλάδα", "ça-va", "Smørrebrød"]


def sql_str(s):
    return "N'" + s.replace("'", "''") + "'"


def sql_num(v):
    return "NULL" if v is None else repr(v)


class Plan:
    """One session's table and random rows; the SQL every client sends; the expected answers."""

    def __init__(self, client, label):
        self.table = re.sub(r"\W", "_", "g_%s_%s" % (client, label)).lower()
        s1 = "%s %s 'q' %s-%d" % (rnd.choice(NON_ASCII), rnd.choice(NON_ASCII), rnd.choice(WORDS),
                                  rnd.randrange(10**6))
        s3 = "%s-%d" % (rnd.choice(WORDS), rnd.randrange(10**6))
        n1 = rnd.randrange(2**40, 2**62)
        n2 = -rnd.randrange(2**33, 2**62)
        # Binary fractions with short mantissas: the test server's SQLite (3.40) reads some
        # 17-digit literals one ulp off (9 in 100,000 random doubles), which once failed a
        # tedious session in CI; these read back exactly (0 in 200,000 each).
        f1 = rnd.randrange(-(1 << 40), 1 << 40) / 1024.0
        f3 = rnd.randrange(1, 1 << 24) / (1 << rnd.randrange(17, 55))
        self.rows = [(1, s1, n1, f1), (2, None, n2, None), (3, s3, None, f3)]
        self.create = "CREATE TABLE %s (id INT NOT NULL PRIMARY KEY, s NVARCHAR(200) NULL, " \
                      "n BIGINT NULL, f FLOAT NULL)" % self.table
        self.insert = "INSERT INTO %s (id, s, n, f) VALUES " % self.table + ", ".join(
            "(%d, %s, %s, %s)" % (i, "NULL" if s is None else sql_str(s), sql_num(n), sql_num(f))
            for i, s, n, f in self.rows)
        self.select = "SELECT 'rows', id, s, n, f FROM %s ORDER BY id" % self.table
        # Parameterised: rows 1 (by the non-ASCII string) and 2 (by the bigint).
        self.param_s, self.param_n = s1, n2
        self.param_rows = self.rows[:2]
        self.tx_rollback = "INSERT INTO %s (id, s) VALUES (10, N'rolled back')" % self.table
        self.tx_commit = "INSERT INTO %s (id, s) VALUES (11, N'committed')" % self.table
        self.tx_check = "SELECT 'tx', id FROM %s WHERE id >= 10 ORDER BY id" % self.table
        self.env = "SELECT 'env', @@SERVERNAME, encrypt_option, protocol_version, sluice_encryption " \
                   "FROM sys.dm_exec_connections WHERE session_id = @@SPID"
        self.secondary_write = "INSERT INTO %s (id, s) VALUES (99, N'on a secondary')" % self.table
        self.after_rows = self.rows + [(11, "committed", None, None)]

    def spec(self):
        """What the Java and Node programs are given."""
        return {"table": self.table, "create": self.create, "insert": self.insert,
                "select": self.select, "param_s": self.param_s, "param_n": str(self.param_n),
                "param_sql_at": "SELECT 'rows', id, s, n, f FROM %s WHERE s = @s OR n = @n ORDER BY id" % self.table,
                "param_sql_q": "SELECT 'rows', id, s, n, f FROM %s WHERE s = ? OR n = ? ORDER BY id" % self.table,
                "tx_rollback": self.tx_rollback, "tx_commit": self.tx_commit, "tx_check": self.tx_check,
                "env": self.env, "secondary_write": self.secondary_write}


def norm_rows(rows):
    out = []
    for r in rows:
        r = list(r)
        if r and r[0] in ("rows", "tx", "env"):
            r = r[1:]
        i, s, n, f = (list(r) + [None] * 4)[:4]
        out.append((int(i), None if s in (None, "NULL", "") else s, None if n in (None, "NULL", "") else int(n),
                    None if f in (None, "NULL", "") else float(f)))
    return out


def same_rows(got, want, what):
    g, w = norm_rows(got), norm_rows(want)
    expect(g == w, "%s: got %r, want %r" % (what, g, w))


def check_sqlite(group, plan):
    got = sqlite_rows(group.primary.db, "SELECT id, s, n, f FROM %s ORDER BY id" % plan.table)
    same_rows(got, plan.after_rows, "rows in the primary's SQLite file")


def check_env(env, server, result, want_tds=None):
    """env = ('env', name, encrypt_option, protocol_version, sluice_encryption) as the client read
    it; sluice_encryption is the server's own record of the negotiation (none, login, full, strict)."""
    name, enc, ver, tls = env[-4], env[-3], int(env[-2]), env[-1]
    expect(name == server.name, "@@SERVERNAME is %r, want %r" % (name, server.name))
    want_enc = "TRUE" if result in ("full", "strict") else "FALSE"
    expect(enc == want_enc, "encrypt_option %s, want %s for %s" % (enc, want_enc, result))
    want_tls = {"plain": "none"}.get(result, result)
    expect(tls == want_tls, "the server negotiated %s, want %s" % (tls, want_tls))
    if want_tds is not None:
        expect(ver == want_tds, "protocol_version 0x%08x, want 0x%08x" % (ver, want_tds))
    return "%s, TDS 0x%08x" % (result, ver)


# isql prints the server's message without its number.
MESSAGES = {18456: "Login failed for user 'app'.", 3906: "because the database is read-only."}


def error_has(text, number, by_text=False):
    if by_text and MESSAGES[number] in text:
        return True
    return re.search(r"(?<!\d)%d(?!\d)" % number, text) is not None


# --- FreeTDS configuration shared by tsql, bsqldb, isql, pymssql and pyodbc -------------------------
FREETDS_MODES = {"off": E_NOT_SUP, "request": E_OFF, "require": E_ON}  # login.c 1319-1337


def write_freetds_conf(work, targets, certs):
    """freetds.conf and odbc.ini with an entry per target (role, mode, port), client encryption
    setting and TDS version, named as entry() names them."""
    conf = os.path.join(work, "freetds.conf")
    odbc_dir = os.path.join(work, "odbc")
    os.makedirs(odbc_dir, exist_ok=True)
    lines = ["[global]", "  tds version = 7.4", "  client charset = UTF-8",
             "  ca file = %s" % os.path.join(certs, "ca.pem"), "  connect timeout = 5", ""]
    odbc = []
    for role, mode, port in targets:
        for enc in FREETDS_MODES:
            for ver in ("7.4", "7.1", "7.2", "7.3"):
                name = "%s_%s_%s_%s" % (role, mode, enc, ver.replace(".", ""))
                lines += ["[%s]" % name, "  host = 127.0.0.1", "  port = %d" % port,
                          "  encryption = %s" % enc, "  tds version = %s" % ver, ""]
                odbc += ["[%s]" % name, "Driver = FreeTDS", "Servername = %s" % name,
                         "Database = sluice", ""]
    with open(conf, "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(odbc_dir, "odbcinst.ini"), "w") as f:
        f.write("[FreeTDS]\nDescription = FreeTDS (tdsodbc)\nDriver = %s\n" % TDSODBC)
    with open(os.path.join(odbc_dir, "odbc.ini"), "w") as f:
        f.write("\n".join(odbc))
    os.environ["FREETDSCONF"] = conf
    os.environ["ODBCSYSINI"] = odbc_dir
    os.environ["ODBCINI"] = os.path.join(odbc_dir, "odbc.ini")


def entry(role, group, enc, ver="7.4"):
    return "%s_%s_%s_%s" % (role, group.mode, enc, ver.replace(".", ""))


TDS_OF = {"7.1": TDS71, "7.2": 0x72090002, "7.3": 0x730B0003, "7.4": TDS74}


# --- command-line clients: one process runs the whole script --------------------------------------
class Cli:
    """tsql / bsqldb / isql: the session is a script; rows are tagged ('rows', 'tx', 'env')."""

    def __init__(self, name):
        self.name = name

    def run(self, srv_entry, statements, password="app", work=None):
        if self.name == "tsql":
            cmd = ["tsql", "-S", srv_entry, "-U", "app", "-P", password, "-D", "sluice", "-o", "fhq"]
            script = "".join(s + "\ngo\n" for s in statements) + "exit\n"
        elif self.name == "bsqldb":
            cmd = ["bsqldb", "-S", srv_entry, "-U", "app", "-P", password, "-D", "sluice", "-t", "|"]
            script = "".join(s + "\ngo\n" for s in statements)
        else:
            cmd = ["isql", "-b", "-v", "-d|", srv_entry, "app", password]
            script = "".join(s + "\n" for s in statements)
        p = subprocess.run(cmd, input=script.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        sep = "\t" if self.name == "tsql" else "|"
        tagged = {}
        for line in out.splitlines():
            parts = line.split(sep)
            if parts[0] in ("rows", "tx", "env"):
                tagged.setdefault(parts[0], []).append(parts)
        return tagged, out + err


def cli_session(cli, group, enc, ver, checks, label):
    result = outcome(FREETDS_MODES[enc], group.mode)
    plan = Plan(cli.name, label)

    def primary():
        tagged, text = cli.run(entry("p", group, enc, ver), [
            plan.create, plan.insert, plan.select, "BEGIN TRANSACTION", plan.tx_rollback,
            "ROLLBACK TRANSACTION", "BEGIN TRAN", plan.tx_commit, "COMMIT TRAN", plan.tx_check, plan.env])
        if result == "refused":
            expect(not tagged, "connected although the server must refuse: %s" % text[-300:])
            return "refused: " + (text.strip().splitlines() or ["no output"])[-1][:80]
        expect("env" in tagged, "no session: %s" % text[-600:])
        same_rows(tagged.get("rows", []), plan.rows, "rows read back")
        expect([int(r[1]) for r in tagged.get("tx", [])] == [11], "after rollback+commit: %r" % tagged.get("tx"))
        check_sqlite(group, plan)
        return check_env(tagged["env"][0], group.primary, result, TDS_OF[ver])

    if not checks.run("%s %s: session on the primary" % (cli.name, label), primary) or result == "refused":
        return

    def bad_password():
        tagged, text = cli.run(entry("p", group, enc, ver), ["SELECT 'env', 1, 2, 3"], password="wrong")
        expect(not tagged and error_has(text, 18456, cli.name == "isql"),
               "wrong password not refused with 18456: %s" % text[-300:])

    checks.run("%s %s: wrong password refused (18456)" % (cli.name, label), bad_password)

    def secondary():
        wait_replicated(group, plan.table, 11)
        tagged, text = cli.run(entry("s", group, enc, ver), [plan.select, plan.env, plan.secondary_write])
        same_rows(tagged.get("rows", []), plan.after_rows, "rows on the secondary")
        expect(error_has(text, 3906, cli.name == "isql"),
               "write on the secondary not refused with 3906: %s" % text[-300:])
        return check_env(tagged["env"][0], group.secondary, result, TDS_OF[ver])

    checks.run("%s %s: secondary reads, refuses a write (3906)" % (cli.name, label), secondary)


# --- Python DB-API clients: the session step by step, transactions through the client's API ---------
class DbApi:
    """pytds, pymssql or pyodbc. `mode` is the client's own encryption setting."""

    def __init__(self, name, certs):
        self.name, self.certs = name, certs

    def prelogin_value(self, mode):
        if self.name == "pytds":
            return {"plain": E_NOT_SUP, "login": E_OFF, "full": E_ON}[mode]
        return FREETDS_MODES[mode]

    def connect(self, srv, group, role, mode, password="app", ver="7.4", autocommit=False):
        if self.name == "pytds":
            import pytds
            kw = {}
            if mode != "plain":
                kw = {"cafile": os.path.join(self.certs, "ca.pem"), "validate_host": True,
                      "enc_login_only": mode == "login"}
            return pytds.connect(server="localhost", port=srv.port, user="app", password=password,
                                 database="sluice", autocommit=autocommit, login_timeout=5, timeout=20, **kw)
        if self.name == "pymssql":
            import pymssql
            # pymssql passes its own port (default 1433) over freetds.conf's; 7.4 is the entry's.
            return pymssql.connect(server=entry(role, group, mode, ver), port=str(srv.port), user="app",
                                   password=password, database="sluice", autocommit=autocommit, login_timeout=5,
                                   timeout=20, tds_version=None if ver == "7.4" else ver)
        import pyodbc
        return pyodbc.connect("DSN=%s;UID=app;PWD=%s" % (entry(role, group, mode, ver), password),
                              autocommit=autocommit, timeout=5)

    def param_query(self, conn, plan):
        if self.name == "pytds":  # sp_executesql
            cur = conn.cursor()
            cur.execute("SELECT 'rows', id, s, n, f FROM %s WHERE s = %%(s)s OR n = %%(n)s ORDER BY id"
                        % plan.table, {"s": plan.param_s, "n": plan.param_n})
            return cur.fetchall()
        if self.name == "pyodbc":  # tdsodbc: sp_executesql / sp_prepexec
            cur = conn.cursor()
            cur.execute("SELECT 'rows', id, s, n, f FROM %s WHERE s = ? OR n = ? ORDER BY id" % plan.table,
                        plan.param_s, plan.param_n)
            return [tuple(r) for r in cur.fetchall()]
        # pymssql's cursor quotes parameters into the text; an RPC needs db-lib's dbrpc* calls.
        from pymssql import _mssql
        m = conn._conn
        proc = m.init_procedure("sp_executesql")
        proc.bind("SELECT 'rows', id, s, n, f FROM %s WHERE s = @s OR n = @n ORDER BY id" % plan.table,
                  _mssql.SQLVARCHAR, "@stmt")
        proc.bind("@s nvarchar(200), @n bigint", _mssql.SQLVARCHAR, "@params")
        proc.bind(plan.rows[2][1], _mssql.SQLVARCHAR, "@s")  # varchar: the server's code page (ASCII)
        proc.bind(plan.param_n, _mssql.SQLINT8, "@n")
        proc.execute()
        rows = [tuple(r[i] for i in range(5)) for r in m]
        m.cancel()
        return rows

    def param_expected(self, plan):
        return [plan.rows[1], plan.rows[2]] if self.name == "pymssql" else plan.param_rows


def error_number(e):
    for attr in ("msg_no", "number"):
        v = getattr(e, attr, None)
        if isinstance(v, int):
            return v
    if e.args and isinstance(e.args[0], int):
        return e.args[0]
    return None


def expect_error(e, number, what):
    """The server's error number and its message (pymssql's number can be stale: it keeps the
    last server message's, so the text is checked as well)."""
    args = [a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in getattr(e, "args", ())]
    text = "%s %s" % (e, " ".join(args))
    expect(error_number(e) == number or error_has(text, number), "%s: want error %d, got %s" % (what, number, text))
    expect(MESSAGES[number] in text, "%s: want the message %r, got %s" % (what, MESSAGES[number], text))


def pymssql_bad_password(server, port, ver):
    """pymssql logging in to SERVER (a freetds.conf entry) on PORT with a wrong password must get
    18456 and its message. pymssql keeps the last server message in process-wide state: only a
    fresh process shows what this login attempt was answered."""
    code = ("import pymssql\ntry:\n    pymssql.connect(server=%r, port=%r, user='app', password='wrong', "
            "database='sluice', login_timeout=5%s)\nexcept Exception as e:\n    print(repr(e.args))\n"
            "else:\n    print('CONNECTED')\n" % (server, str(port), "" if ver == "7.4" else ", tds_version=%r" % ver))
    p = subprocess.run([PYTHON, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    text = p.stdout.decode("utf-8", "replace")
    expect("CONNECTED" not in text, "logged in with a wrong password")
    expect(text.startswith("((18456,") and MESSAGES[18456] in text, "want 18456 and its message: %s" % text)


def dbapi_connect(connect, result):
    """CONNECT() for a session whose outcome must be RESULT: (the connection, None), or (None, a
    note) when it was refused as it had to be."""
    try:
        return connect(), None
    except Exception as e:  # noqa: BLE001 -- a refusal is what is expected here
        if result == "refused":
            return None, ("refused: %s" % str(e).splitlines()[0][:100] if str(e) else type(e).__name__)
        raise


def dbapi_fill(client, conn, plan):
    """A DB-API session's first steps: the table made, the rows inserted and read back, the
    parameterised query. Returns the rows read back."""
    cur = conn.cursor()
    cur.execute(plan.create)
    cur.execute(plan.insert)
    conn.commit()
    cur.execute(plan.select)
    rows = cur.fetchall()
    same_rows(rows, plan.rows, "rows read back")
    same_rows(client.param_query(conn, plan), client.param_expected(plan), "parameterised query")
    return rows


def dbapi_session(client, group, mode, checks, label, ver="7.4"):
    result = outcome(client.prelogin_value(mode), group.mode)
    plan = Plan(client.name, label)
    want_tds = TDS_OF[ver]

    def primary():
        conn, refused = dbapi_connect(lambda: client.connect(group.primary, group, "p", mode, ver=ver),
                                      result)
        if conn is None:
            return refused
        try:
            expect(result != "refused", "connected although the server must refuse")
            dbapi_fill(client, conn, plan)
            cur = conn.cursor()
            cur.execute(plan.tx_rollback)
            conn.rollback()
            cur.execute(plan.tx_commit)
            conn.commit()
            cur.execute(plan.tx_check)
            expect([int(r[1]) for r in cur.fetchall()] == [11], "after rollback and commit")
            check_sqlite(group, plan)
            cur.execute(plan.env)
            env = cur.fetchall()[0]
            conn.commit()
            return check_env(env, group.primary, result, want_tds)
        finally:
            conn.close()

    if not checks.run("%s %s: session on the primary" % (client.name, label), primary) or result == "refused":
        return

    def bad_password():
        if client.name == "pymssql":
            return pymssql_bad_password(entry("p", group, mode, ver), group.primary.port, ver)
        try:
            client.connect(group.primary, group, "p", mode, password="wrong", ver=ver).close()
        except Exception as e:  # noqa: BLE001
            expect_error(e, 18456, "wrong password")
            return
        raise Fail("logged in with a wrong password")

    checks.run("%s %s: wrong password refused (18456)" % (client.name, label), bad_password)

    def secondary():
        wait_replicated(group, plan.table, 11)
        conn = client.connect(group.secondary, group, "s", mode, ver=ver)
        try:
            cur = conn.cursor()
            cur.execute(plan.select)
            same_rows(cur.fetchall(), plan.after_rows, "rows on the secondary")
            cur.execute(plan.env)
            note = check_env(cur.fetchall()[0], group.secondary, result, want_tds)
            try:
                cur.execute(plan.secondary_write)
                conn.commit()
            except Exception as e:  # noqa: BLE001
                expect_error(e, 3906, "write on the secondary")
                return note
            raise Fail("a write on the secondary succeeded")
        finally:
            conn.close()

    checks.run("%s %s: secondary reads, refuses a write (3906)" % (client.name, label), secondary)


# --- jTDS and node: a program runs every session and prints what it saw; judged here --------------
def judge(client, label, res, plan, group, result, want_tds, checks, param_rows=True, known=None):
    """res: one JSON object printed by JtdsGate.java or node/tds_gate.js for one session.
    known(error) names a client-side failure that is not the server's (or None)."""
    known = known or (lambda err: None)

    def primary():
        if result == "refused":
            return judge_refused(res, "the server")
        judge_rows(res, plan, param_rows)
        check_sqlite(group, plan)
        return check_env(res["env"][0], group.primary, result, want_tds)

    if not checks.run("%s %s: session on the primary" % (client, label), primary) or result == "refused":
        return

    checks.run("%s %s: wrong password refused (18456)" % (client, label), judge_bad_password, client, res, known)

    def secondary():
        if known(res.get("secondary_error")):
            return known(res["secondary_error"])
        expect("secondary_error" not in res, "secondary session failed: %r" % res.get("secondary_error"))
        same_rows(res["secondary_rows"], plan.after_rows, "rows on the secondary")
        err = res.get("secondary_write_error")
        expect(err and (err.get("code") == 3906 or error_has(str(err), 3906)), "write not refused with 3906: %r" % err)
        return check_env(res["secondary_env"][0], group.secondary, result, want_tds)

    checks.run("%s %s: secondary reads, refuses a write (3906)" % (client, label), secondary)


def judge_refused(res, who):
    """A session the server (WHO) must refuse: the program could not connect."""
    expect("connect_error" in res, "connected although %s must refuse: %r" % (who, res))
    return "refused: %s" % str(res["connect_error"].get("message", ""))[:100]


def judge_rows(res, plan, param_rows=True):
    """The session's rows read back, its parameterised queries, its transactions."""
    expect("connect_error" not in res and "error" not in res, "session failed: %r" % res)
    same_rows(res["rows"], plan.rows, "rows read back")
    if param_rows:
        for key in ("param_rows", "param_rows2", "prepared_rows", "prepared_rows2"):
            if key in res:
                same_rows(res[key], plan.param_rows, "parameterised query (%s)" % key)
    expect([int(r[1]) for r in res["tx"]] == [11], "after rollback and commit: %r" % res["tx"])


def judge_bad_password(client, res, known):
    err = res.get("bad_password_error")
    expect(err, "logged in with a wrong password")
    if known(err):
        return known(err)
    expect(MESSAGES[18456] in str(err.get("message")), "message: %r" % err)
    if client == "mssql":  # mssql's ConnectionError keeps tedious's ELOGIN, not the number
        expect(err.get("code") == 18456 or err.get("name") == "ELOGIN", "want 18456: %r" % err)
        return "ELOGIN, %s" % err.get("message")
    expect(err.get("code") == 18456, "want 18456: %r" % err)


def run_json(cmd, timeout, cwd=None):
    """Runs JtdsGate.java or node/tds_gate.js: (the finished process, the JSON object it printed
    for each session, by label)."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, cwd=cwd)
    results = {}
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            results[r["label"]] = r
    return p, results


JTDS_MODES = {"off": E_NOT_SUP, "request": E_OFF, "require": E_ON}  # jTDS TdsCore.sendPreLoginPacket


def java_props(d):
    out = []
    for k, v in d.items():
        v = str(v).replace("\\", "\\\\")
        out.append("%s=%s" % (k, "".join(c if ord(c) < 128 else "\\u%04x" % ord(c) for c in v)))
    return "\n".join(out) + "\n"


def compile_jtds(classes):
    """JtdsGate.java into CLASSES."""
    expect(os.path.exists(JTDS_JAR), "%s missing (apt install libjtds-java)" % JTDS_JAR)
    p = subprocess.run(["javac", "-encoding", "UTF-8", "-Xlint:none", "-d", classes, "-cp", JTDS_JAR,
                        os.path.join(HERE, "JtdsGate.java")], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    expect(p.returncode == 0, "javac: %s" % p.stdout.decode()[-1000:])


def run_jtds(work, classes, props):
    """JtdsGate.java on PROPS (its runs, java_props): as run_json."""
    spec = os.path.join(work, "jtds.properties")
    with open(spec, "w", encoding="utf-8") as f:
        f.write(java_props(props))
    return run_json(["java", "-Dfile.encoding=UTF-8", "-cp", "%s:%s" % (JTDS_JAR, classes), "JtdsGate", spec], 120)


def jtds_login_only_known(err):
    # jTDS 1.3.1 ends login-only TLS with SSLSocket.close(); OpenJDK 17 then closes the
    # layered streams, which are the TCP socket's (javax.net.debug: "SSLSocket duplex close
    # failed"). Whether jTDS reads the login answer first is a race inside the client: it
    # fails with "Socket closed" or reads an end of stream ("DB server closed connection")
    # most times, and works sometimes. Not the server's doing.
    msg = str((err or {}).get("message", ""))
    if msg in ("I/O Error: Socket closed", "I/O Error: DB server closed connection."):
        return "known jTDS 1.3.1 / OpenJDK 17 login-only TLS failure in the client: " + msg
    return None


def jtds_matrix(checks, groups, work):
    classes = os.path.join(work, "java")
    os.makedirs(classes, exist_ok=True)
    if not checks.run("jTDS: JtdsGate.java compiles", compile_jtds, classes):
        return
    runs, props = [], {}
    for g in groups.values():
        for ssl in JTDS_MODES:
            label = "server=%s ssl=%s" % (g.mode, ssl)
            plan = Plan("jtds", label)
            pre = "run.%d." % len(runs)
            props.update({pre + k: v for k, v in plan.spec().items()})
            props.update({pre + "label": label, pre + "port": g.primary.port,
                          pre + "secondary_port": g.secondary.port, pre + "ssl": ssl, pre + "tds": "8.0"})
            runs.append((label, plan, g, outcome(JTDS_MODES[ssl], g.mode)))
    props["runs"] = len(runs)
    p, results = run_jtds(work, classes, props)
    for label, plan, g, result in runs:
        res = results.get(label, {})
        known = jtds_login_only_known if result == "login" else None
        if known and known(res.get("connect_error")):
            checks.run("jTDS %s: session on the primary" % label, known, res["connect_error"])
            continue
        if label not in results:
            checks.run("jTDS %s: session on the primary" % label, lambda: expect(
                False, "no result; exit %d: %s" % (p.returncode, p.stderr.decode()[-1500:])))
            continue
        judge("jTDS", label, results[label], plan, g, result, TDS71, checks, known=known)


NODE_MODES = {"false": E_NOT_SUP, "true": E_ON, "strict": "strict"}  # tedious prelogin-payload.ts


def random_text(n):
    alphabet = "abcdefghijklmnopqrstuvwxyzÄÖÜßéèçΩπλжщ日本語"
    return "".join(rnd.choice(alphabet) for _ in range(n))


def long_result_sql(n):
    # A recursive CTE: SQLite computes n rows of ~100 bytes each, streamed as they come.
    return ("WITH n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
            "SELECT i, N'%s' AS pad FROM n" % (n, "x" * 40))


def node_extras(tag, port, enc, table):
    """tedious's extra runs against PORT: ATTENTION, RESETCONNECTION and multi-packet messages (in
    TABLE); (the runs, what each must give by label). judge_node_extra judges them."""
    after = rnd.randrange(10**9)
    v = rnd.randrange(10**9)
    batch_value, param_value = random_text(20000), random_text(30000)
    extras = [{"kind": "cancel", "label": "cancel " + tag, "port": port, "encrypt": enc,
               "long_sql": long_result_sql(LONG_ROWS), "cancel_after": 100,
               "wait_sql": "WAITFOR DELAY '00:00:05'", "after_sql": "SELECT 'after', %d" % after},
              {"kind": "reset", "label": "reset " + tag, "port": port, "encrypt": enc,
               "temp_create": "CREATE TABLE #gate_tmp (v INT); INSERT INTO #gate_tmp (v) VALUES (%d)" % v,
               "temp_select": "SELECT v FROM #gate_tmp", "after_sql": "SELECT 'after', %d" % after},
              {"kind": "multi", "label": "multi " + tag, "port": port, "encrypt": enc,
               "create": "CREATE TABLE %s (id INT, v NVARCHAR(MAX))" % table,
               "insert_batch": "INSERT INTO %s (id, v) VALUES (1, %s)" % (table, sql_str(batch_value)),
               "insert_param": "INSERT INTO %s (id, v) VALUES (2, @v)" % table, "big_value": param_value,
               "select": "SELECT id, v FROM %s ORDER BY id" % table}]
    want = {"cancel " + tag: after, "reset " + tag: (v, after), "multi " + tag: [[1, batch_value], [2, param_value]]}
    return extras, want


NODE_EXTRAS = {"cancel": "ATTENTION: cancel() of a long result and of a WAITFOR, then a query",
               "reset": "RESETCONNECTION: reset() drops a temp table",
               "multi": "multi-packet batch, RPC parameter and response"}


def judge_node_extra(ex, res, want, problem):
    """One of node_extras' runs: RES what node/tds_gate.js printed (None: nothing, see PROBLEM)."""
    expect(res is not None, problem)
    expect("failed" not in res, "failed: %r" % res.get("failed"))
    if ex["kind"] == "cancel":
        expect(res["error"] and res["error"]["name"] == "ECANCEL", "not cancelled: %r" % res["error"])
        expect(100 <= res["rows_seen"] < LONG_ROWS, "rows before the cancel: %d" % res["rows_seen"])
        expect(res["after"] == [["after", want]], "query after the cancel: %r" % res["after"])
        expect(res["wait_error"] and res["wait_error"]["name"] == "ECANCEL",
               "WAITFOR not cancelled: %r" % res["wait_error"])
        expect(res["wait_ms"] < 3000, "WAITFOR DELAY '00:00:05' cancelled after %d ms" % res["wait_ms"])
        expect(res["after_wait"] == [["after", want]], "after the WAITFOR: %r" % res["after_wait"])
        return "%d rows read of %s before ATTENTION took effect in %d ms; WAITFOR cut at %d ms" % (
            res["rows_seen"], "{:,}".format(LONG_ROWS), res["cancel_ms"], res["wait_ms"])
    if ex["kind"] == "reset":
        v, after = want
        expect(res["before"] == [[v]], "temp table before reset: %r" % res["before"])
        expect("after" not in res and res.get("after_error", {}).get("code") == 208,
               "temp table after RESETCONNECTION: %r" % (res.get("after") or res.get("after_error")))
        expect(res["still"] == [["after", after]], "session after the reset: %r" % res["still"])
        return "#gate_tmp gone: %s" % res["after_error"]["message"]
    got = res["rows"]
    expect([r[0] for r in got] == [1, 2] and got == want,
           "large values differ (lengths %r)" % [len(r[1] or "") for r in got])
    return "20,000- and 30,000-character values in, the same out"


def run_node(work, spec):
    """node/tds_gate.js on SPEC (written to WORK/node-spec.json): as run_json, and what to say
    of a run it printed nothing for."""
    path = os.path.join(work, "node-spec.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    node_dir = os.path.join(HERE, "node")
    p, results = run_json([NODE, os.path.join(node_dir, "tds_gate.js"), path], 150, cwd=node_dir)
    return results, "node exited %d: %s" % (p.returncode, p.stderr.decode("utf-8", "replace")[-1500:])


def node_matrix(checks, groups, work, certs):
    runs, plans = [], {}
    for driver in ("tedious", "mssql"):
        for g in groups.values():
            for enc in NODE_MODES:
                label = "server=%s encrypt=%s" % (g.mode, enc)
                plan = Plan(driver, label)
                run = dict(plan.spec(), label="%s %s" % (driver, label), driver=driver,
                           port=g.primary.port, secondary_port=g.secondary.port,
                           encrypt={"false": False, "true": True, "strict": "strict"}[enc])
                runs.append(run)
                plans[run["label"]] = (driver, label, plan, g, outcome(NODE_MODES[enc], g.mode))
    extras, expect_extra = [], {}
    for g, enc in ((groups["not_supported"], False), (groups["off"], True)):
        more, want = node_extras("server=%s encrypt=%s" % (g.mode, str(enc).lower()), g.primary.port, enc,
                                 "g_tedious_multi_" + g.mode)
        extras += more
        expect_extra.update(want)
    results, problem = run_node(work, {"ca": os.path.join(certs, "ca.pem"), "runs": runs, "extras": extras})
    for run in runs:
        driver, label, plan, g, result = plans[run["label"]]
        if run["label"] not in results:
            checks.run("%s %s: session on the primary" % (driver, label), lambda: expect(False, problem))
            continue
        judge(driver, label, results[run["label"]], plan, g, result, TDS74, checks)
    for ex in extras:
        name = ex["label"]
        checks.run("tedious %s (%s)" % (NODE_EXTRAS[ex["kind"]], name.split(" ", 1)[1]), judge_node_extra, ex,
                   results.get(name), expect_extra[name], problem)


# --- ATTENTION and large messages from the Python clients ----------------------------------------
# Each takes the port to use (tds_clients.py points them at Sluice) and returns its note.
LONG_ROWS = 2000000


def pymssql_cancel(server, port):
    """SERVER: the freetds.conf entry (or host) pymssql connects to, on PORT."""
    import pymssql
    conn = pymssql.connect(server=server, port=str(port), user="app", password="app", database="sluice",
                           autocommit=True, login_timeout=5)
    try:
        cur = conn.cursor()
        t0 = time.monotonic()
        cur.execute(long_result_sql(LONG_ROWS))
        rows = cur.fetchmany(100)
        expect([r[0] for r in rows] == list(range(1, 101)), "first rows: %r" % rows[:3])
        conn._conn.cancel()  # dbcancel(): ATTENTION, then reads up to DONE_ATTN
        took = time.monotonic() - t0
        want = rnd.randrange(10**9)
        cur.execute("SELECT %d" % want)
        expect(cur.fetchall() == [(want,)], "query after the cancel")
        return "cancelled after 100 of %d rows in %.2fs" % (LONG_ROWS, took)
    finally:
        conn.close()


def pytds_cancel(port):
    import pytds
    conn = pytds.connect(server="127.0.0.1", port=port, user="app", password="app",
                         database="sluice", autocommit=True, login_timeout=5, timeout=20)
    try:
        cur = conn.cursor()
        t0 = time.monotonic()
        cur.execute(long_result_sql(LONG_ROWS))
        expect(len(cur.fetchmany(100)) == 100, "first rows")
        cur.cancel()
        took = time.monotonic() - t0
        want = rnd.randrange(10**9)
        cur.execute("SELECT %d" % want)
        expect(cur.fetchall() == [(want,)], "query after the cancel")
        return "cancelled after 100 of %d rows in %.2fs" % (LONG_ROWS, took)
    finally:
        conn.close()


def pytds_multi(port, table, cafile=None):
    """A batch, an sp_executesql parameter and a response far larger than a packet; TLS (full,
    the certificate checked against CAFILE) when CAFILE is given."""
    import pytds
    kw = {} if cafile is None else {"cafile": cafile}
    conn = pytds.connect(server="localhost", port=port, user="app", password="app",
                         database="sluice", autocommit=True, login_timeout=5, timeout=20, **kw)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE %s (id INT, v NVARCHAR(MAX))" % table)
        big1, big2 = random_text(50000), random_text(70000)
        cur.execute("INSERT INTO %s (id, v) VALUES (1, %s)" % (table, sql_str(big1)))  # batch
        cur.execute("INSERT INTO %s (id, v) VALUES (2, %%s)" % table, (big2,))  # sp_executesql
        cur.execute("SELECT id, v FROM %s ORDER BY id" % table)
        got = cur.fetchall()
        expect([tuple(r) for r in got] == [(1, big1), (2, big2)], "large values differ")
        return "50,000 and 70,000 characters through 4,096-byte packets"
    finally:
        conn.close()


def pytds_long_response(port):
    # More than 256 packets in one message: PacketID wraps (modulo 256, MS-TDS 2.2.3.1.5).
    import pytds
    rows = rnd.randrange(30000, 40000)
    conn = pytds.connect(server="127.0.0.1", port=port, user="app", password="app",
                         database="sluice", autocommit=True, login_timeout=5, timeout=30)
    try:
        cur = conn.cursor()
        cur.execute(long_result_sql(rows))
        got = cur.fetchall()
        expect(len(got) == rows and sum(r[0] for r in got) == rows * (rows + 1) // 2,
               "%d rows, want %d" % (len(got), rows))
        return "%d rows, about %d packets of 4,096 bytes" % (rows, rows * 95 // 4088)
    finally:
        conn.close()


def python_extras(checks, groups, certs):
    g = groups["not_supported"]  # plaintext: the capture sees the ATTENTION and the large packets
    checks.run("pymssql ATTENTION: cancel() of a long result, then a query (server=not_supported)",
               pymssql_cancel, entry("p", g, "off"), g.primary.port)
    checks.run("pytds ATTENTION: cancel() of a long result, then a query (server=not_supported)", pytds_cancel,
               g.primary.port)
    checks.run("pytds response of more than 256 packets (server=not_supported)", pytds_long_response,
               g.primary.port)
    checks.run("pytds multi-packet batch, RPC parameter and response (server=not_supported, plain)",
               pytds_multi, g.primary.port, "g_pytds_multi_plain")
    checks.run("pytds multi-packet batch, RPC parameter and response (server=on, full TLS)", pytds_multi,
               groups["on"].primary.port, "g_pytds_multi_full", os.path.join(certs, "ca.pem"))


# --- main ---------------------------------------------------------------------------------------
def freetds_matrix(checks, groups):
    for name in ("tsql", "bsqldb", "isql"):
        cli = Cli(name)
        for g in groups.values():
            for enc in FREETDS_MODES:
                cli_session(cli, g, enc, "7.4", checks, "server=%s client=%s" % (g.mode, enc))
    # Older TDS versions (no ALL_HEADERS before 7.2, 4-byte DONE counts in 7.1), plain and login-only.
    for ver in ("7.1", "7.2", "7.3"):
        for enc in ("off", "request"):
            cli_session(Cli("tsql"), groups["off"], enc, ver, checks, "server=off client=%s tds=%s" % (enc, ver))


def dbapi_matrix(checks, groups, certs):
    for name, modes in (("pymssql", FREETDS_MODES), ("pyodbc", FREETDS_MODES),
                        ("pytds", ("plain", "login", "full"))):
        client = DbApi(name, certs)
        for g in groups.values():
            for mode in modes:
                dbapi_session(client, g, mode, checks, "server=%s client=%s" % (g.mode, mode))
    dbapi_session(DbApi("pymssql", certs), groups["off"], "request", checks, "server=off client=request tds=7.1",
                  ver="7.1")


def prepare(work, ports, env):
    """What a gate needs first (tds_clients.py's too): the client programs and the capture tools,
    PORTS free (else: set ENV), the test CA's certificates in WORK/certs (returned)."""
    missing = [t for t in ("tsql", "bsqldb", "isql", "java", "javac", NODE, "tcpdump", "tshark")
               if shutil.which(t) is None]
    expect(not missing, "missing tools: %s (Debian: freetds-bin, unixodbc, default-jdk, nodejs, "
           "tcpdump, tshark)" % " ".join(missing))
    taken = [p for p in ports if not free_port(p)]
    expect(not taken, "ports in use: %s (set %s)" % (taken, env))
    certs = os.path.join(work, "certs")
    subprocess.run(["bash", MAKE_CERTS, certs], check=True, stdout=subprocess.DEVNULL)
    return certs


def stop_servers(servers, checks):
    """Each server stopped by pid, one check each: exit status 0, no traceback on stderr."""
    for s in servers:
        rc = s.stop()
        text = s.stderr()
        checks.count += 1
        if rc != 0 or "Traceback" in text:
            checks.failures.append(s.name)
            print("FAIL - server %s: exit status %s; stderr:\n%s" % (s.name, rc, text[-4000:]), flush=True)
        else:
            print("ok   - server %s exited 0, no traceback on stderr" % s.name, flush=True)


def ended_early(checks, e):
    """A run ended by SIGTERM (ctest's timeout: Terminated) or by a failure outside the checks."""
    if isinstance(e, Terminated):
        checks.failures.append("terminated")
        print("FAIL - terminated by SIGTERM", flush=True)
        return
    checks.failures.append("setup")
    print("FAIL - setup: %s: %s" % (type(e).__name__, e), flush=True)
    traceback.print_exc(file=sys.stderr)


def finish(checks, seed, work, remove):
    """The last line and the exit status; WORK removed after a run with no failure if REMOVE."""
    if checks.failures:
        print("%d of %d checks failed: %s (seed %d; work directory kept: %s)" % (
            len(checks.failures), checks.count, ", ".join(checks.failures), seed, work), flush=True)
        return 1
    print("all %d checks passed" % checks.count, flush=True)
    if remove:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def main():
    # ctest's timeout sends SIGTERM: leave through `finally`, which stops the servers.
    def terminated(*_):
        raise Terminated()

    signal.signal(signal.SIGTERM, terminated)
    checks = Checks()
    work = tempfile.mkdtemp(prefix="tds-gate-")
    print("# seed %d (TDS_GATE_SEED), ports %d-%d, work directory %s" % (SEED, BASE, BASE + 5, work), flush=True)
    servers = []
    capture = None
    ok = False
    try:
        certs = prepare(work, range(BASE, BASE + 6), "TDS_GATE_PORT")
        groups = {"off": Group(work, "off", BASE, certs), "on": Group(work, "on", BASE + 2, certs),
                  "not_supported": Group(work, "not_supported", BASE + 4, None)}
        for g in groups.values():
            servers += [g.primary, g.secondary]
        for s in servers:
            s.wait_ready()
        write_freetds_conf(work, [(role, g.mode, srv.port) for g in groups.values()
                                  for role, srv in (("p", g.primary), ("s", g.secondary))], certs)
        ns = groups["not_supported"]
        capture = Capture(work, [ns.primary.port, ns.secondary.port])
        freetds_matrix(checks, groups)
        dbapi_matrix(checks, groups, certs)
        jtds_matrix(checks, groups, work)
        node_matrix(checks, groups, work, certs)
        python_extras(checks, groups, certs)
        capture.stop()
        checks.run("tshark: the plaintext sessions dissect as TDS, no malformed frame", capture.dissect)
        ok = True
    except (Terminated, Exception) as e:  # noqa: BLE001
        ended_early(checks, e)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the servers are stopped whatever comes
        if capture:
            capture.stop()
        stop_servers(servers, checks)
    return finish(checks, SEED, work, ok and os.environ.get("TDS_GATE_KEEP") != "1")


# --- capture and dissection ----------------------------------------------------------------------
PROC_IDS = {"10": "sp_executesql", "11": "sp_prepare", "12": "sp_execute", "13": "sp_prepexec",
            "15": "sp_unprepare"}  # MS-TDS 2.2.6.6 ProcIDs


SEQUENCE = "33554432"  # expert group PI_SEQUENCE (0x02000000): TCP's notes, nothing about TDS
PACKET_TYPES = (("18", "PRELOGIN"), ("16", "LOGIN7"), ("1", "SQL batch"), ("3", "RPC"), ("4", "response"),
                ("6", "ATTENTION"), ("14", "transaction manager request"))


def tshark_fields(pcap, filt, names, opts=()):
    cmd = ["tshark", "-n", "-r", pcap] + list(opts) + ["-Y", filt, "-T", "fields", "-E", "aggregator=|"]
    cmd += [x for n in names for x in ("-e", n)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    expect(p.returncode == 0, "tshark failed: %s" % p.stderr.decode()[-500:])
    return [line.split("\t") for line in p.stdout.decode("utf-8", "replace").splitlines()]


def tds_fields(pcap, ports):
    """fields(filter, *names, opts=()): tshark's fields of PCAP's frames, TCP PORTS read as TDS."""
    decode = []
    for p in ports:
        decode += ["-d", "tcp.port==%d,tds" % p]
    return lambda filt, *names, opts=(): tshark_fields(pcap, filt, names, opts=tuple(decode) + tuple(opts))


def packet_types(fields, filt, side=""):
    """The TDS packets of FILT by type: every type the gates' sessions send must be among them."""
    seen = {}
    for (t,) in fields(filt, "tds.type"):
        for x in t.split("|"):
            seen[x] = seen.get(x, 0) + 1
    for t, what in PACKET_TYPES:
        expect(seen.get(t, 0) > 0, "%sno %s packet decoded (types seen: %r)" % (side, what, seen))
    return seen


def check_answering(fields, bad, answering, what, tcp_notes):
    """BAD: the (frame, stream, message) tshark complains about in the answering side's frames
    (ANSWERING, a filter): none may be left but those past a PacketID wrap, counted in TCP_NOTES.
    tshark 4.0 reassembles a message with fragment number PacketID - 1, so a message of more
    than 256 packets (a long result while a slow client reads: PacketID wraps, "modulo 256"
    in MS-TDS 2.2.3.1.5) breaks its reassembly at the wrap. Such frames are checked again
    packet by packet (tds.defragment off), where they must dissect cleanly."""
    wrap_at = {}
    for row in fields("tds.packet_number == 255 && (%s)" % answering, "tcp.stream", "frame.number"):
        wrap_at.setdefault(row[0], int(row[1]))
    wrapped = [b for b in bad if b[1] in wrap_at and int(b[0]) >= wrap_at[b[1]]]
    bad = [b for b in bad if b not in wrapped]
    expect(not bad, "%d %s frames with TDS warnings or malformed: %s" % (len(bad), what, bad[:10]))
    if wrapped:
        again = []
        for row in fields("(_ws.malformed || _ws.expert.severity >= warning) && (%s) && tcp.stream in {%s}"
                          % (answering, ", ".join(sorted(wrap_at))), "frame.number", "_ws.expert.group",
                          "_ws.expert.message", opts=("-o", "tds.defragment:FALSE")):
            row += [""] * (3 - len(row))
            again += [(row[0], m) for g, m in zip(row[1].split("|"), row[2].split("|")) if g != SEQUENCE]
        expect(not again, "%s frames malformed packet by packet: %s" % (what, again[:10]))
        tcp_notes["tshark reassembly past PacketID 255, clean packet by packet"] = len(wrapped)


def rpc_counts(fields, filt):
    """The RPCs of FILT by procedure name (or id)."""
    procs = {}
    for row in fields(filt, "tds.rpc.proc_id", "tds.rpc.name"):
        for x in [v for v in row if v]:
            for name in x.split("|"):
                name = PROC_IDS.get(name, name)
                procs[name] = procs.get(name, 0) + 1
    return procs


def counts(d):
    return "; ".join("%d x %s" % (n, k) for k, n in sorted(d.items())) or "none"


class Capture:
    def __init__(self, work, ports):
        self.ports, self.file = ports, os.path.join(work, "plaintext.pcap")
        self.log = open(os.path.join(work, "tcpdump.stderr"), "w+b")
        filt = " or ".join("tcp port %d" % p for p in ports)
        self.proc = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-s", "0", "-w", self.file, filt],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 10
        while time.time() < deadline:  # tcpdump says "listening on lo" once it captures
            self.log.seek(0)
            if b"listening on" in self.log.read():
                return
            expect(self.proc.poll() is None, "tcpdump exited: %s" % self.text())
            time.sleep(0.05)
        raise Fail("tcpdump did not start: %s" % self.text())

    def text(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            time.sleep(0.3)  # the last segments
            os.kill(self.proc.pid, signal.SIGINT)
            self.proc.wait(10)

    def dissect(self):
        fields = tds_fields(self.file, self.ports)
        types = packet_types(fields, "tds.type")
        # What the server sends must dissect cleanly. TCP's own notes (expert group Sequence:
        # resets of refused connections, full windows while a client reads a long result slowly)
        # say nothing about TDS and are only counted. Frames the clients send are theirs: tshark
        # 4.0 misreads some (FreeTDS's LOGIN7 FeatureExt as GSS-API, tdsodbc's NTEXT RPC
        # parameters); they are counted by client library in the note, not failed.
        server_side = " || ".join("tcp.srcport == %d" % p for p in self.ports)
        library = {}
        for row in fields("tds.type == 16", "tcp.stream", "tds.7login.libraryname"):
            library[row[0]] = row[1] if len(row) > 1 and row[1] else "no library name (tdsodbc)"
        bad, tcp_notes, client = [], {}, {}
        for row in fields("_ws.malformed || _ws.expert.severity >= warning", "frame.number", "tcp.stream",
                          "tcp.srcport", "_ws.expert.group", "_ws.expert.message"):
            row += [""] * (5 - len(row))
            frame, stream, sport, groups_, messages = row[:5]
            for group, message in zip(groups_.split("|"), messages.split("|")):
                if group == SEQUENCE:
                    tcp_notes[message] = tcp_notes.get(message, 0) + 1
                elif int(sport) in self.ports:
                    bad.append((frame, stream, message))
                else:
                    key = "%s: %s" % (library.get(stream, "?"), message)
                    client[key] = client.get(key, 0) + 1
        check_answering(fields, bad, server_side, "server", tcp_notes)
        no_prelogin = sum(1 for row in fields("tds.type == 16 && tcp.len > 0", "tcp.stream")
                          if row[0] not in self.prelogin_streams(fields))
        return ("TDS packets by type: %s; RPCs (by id or name): %s; sessions opening with LOGIN7, no "
                "PRELOGIN: %d; client frames tshark complains about: %s; TCP notes: %s" % (
                    ", ".join("%s=%d" % kv for kv in sorted(types.items())), counts(rpc_counts(fields, "tds.rpc")),
                    no_prelogin, counts(client), counts(tcp_notes)))

    def prelogin_streams(self, fields):
        if not hasattr(self, "_prelogin"):
            self._prelogin = {row[0] for row in fields("tds.type == 18", "tcp.stream")}
        return self._prelogin


if __name__ == "__main__":
    sys.exit(main())
