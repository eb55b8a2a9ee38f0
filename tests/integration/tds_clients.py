#!/usr/bin/python3
"""tds_clients (issue #11): the real SQL Server clients of the TDS test server's gate
(tds_gate.py), pointed at Sluice's TDS listeners in front of a primary and two secondaries
(tests/fixtures/tds_server.py, a simulated availability group replaying one commit log).

Sluice has three TDS listeners, one per way a SQL Server offers encryption in PRELOGIN
(MS-TDS 2.2.6.5): no certificate (not_supported), the test CA's certificate (off: the client
chooses login-only or full TLS, TDS 8.0 strict works) and require_tls (on). Sluice talks to the
servers in plaintext. Every client runs, under every encryption setting it has against every
listener, the gate's session: log in, create a table, insert random rows (non-ASCII text with a
quote, NULLs, large ints, floats), read them back, a parameterised query, a transaction rolled
back and one committed, and a wrong password refused with 18456 (Sluice checks passwords itself
against [[users]]); a refusal the table demands must happen, nothing else.

Where a statement ran is read from the servers, never from Sluice: @@SERVERNAME in the same
batch or request, rows in the primary's SQLite file (only the primary takes writes: the
secondaries refuse them with 3906). Writes and everything inside a transaction run on the
primary; a second session reads the replicated rows on a secondary and its write lands on the
primary. Then: a prepared handle executed many times between writes keeps running where it was
prepared (jTDS and tedious: sp_prepare once, sp_execute after; pyodbc, whose tdsodbc prepares
per execution: sp_prepexec and sp_unprepare); two handles of the same number on two backends
(tedious; the test servers number handles per server, as SQL Server does per connection); a
read right after a COMMIT that isql sends in sp_prepexec sees the commit (secondaries 400 ms
behind); RESETCONNECTION from tedious reset() drops a temp table; ATTENTION in the middle of a
long result (pymssql, pytds, tedious), the connection works afterwards; multi-packet requests
and responses (pytds, tedious; plain and full TLS); ApplicationIntent=ReadOnly (tedious: reads
on a secondary, a write refused with 3906).

The encryption each session negotiated is read from the wire: every connection a session
opened (by its SYN's time) must show the TLS MS-TDS's table gives for the client's setting and
the listener (none, login-only: TLS inside PRELOGIN and the login answer in clear, full, or
TDS 8.0 strict). tshark dissects both sides of Sluice in plaintext (clients <-> the plain
listener, Sluice <-> the servers): TDS decoded on each, no malformed frame from a responder,
Sluice's own LOGIN7s clean.

Ports: TDS_CLIENTS_PORT (default SLUICE_PORT + 720) + 0..2 the test servers, + 3..5 Sluice's
TDS listeners (plain, TLS, TLS required), + 6 its MySQL listener, + 7 its admin. TDS_CLIENTS_SEED
(printed) repeats a run; TDS_CLIENTS_KEEP=1 keeps the work directory; TDS_CLIENTS_LOG_LEVEL
(default info) is Sluice's. tcpdump needs root or capture capabilities. One line per check;
exit 0 only if all passed.
"""

import json
import os
import random
import signal
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import itlib  # noqa: E402
import tds_gate as gate  # noqa: E402
import tdslib  # noqa: E402
from tds_gate import Fail, expect, same_rows  # noqa: E402

BASE = int(os.environ.get("TDS_CLIENTS_PORT") or itlib.env_int("SLUICE_PORT") + 720)
PRIMARY, SECONDARY1, SECONDARY2 = BASE, BASE + 1, BASE + 2
LISTENERS = {"not_supported": BASE + 3, "off": BASE + 4, "on": BASE + 5}
MYSQL_PORT, ADMIN_PORT = BASE + 6, BASE + 7
SEED = int(os.environ.get("TDS_CLIENTS_SEED", str(random.SystemRandom().randrange(1 << 31))))
gate.rnd.seed(SEED)  # the gate's Plan and random values draw from it
rnd = gate.rnd
SECONDARIES = ("secondary1", "secondary2")
MANY = 12  # executions of one prepared handle
SETTLE_MS = 150  # after the rows reached a secondary, until the other has them too
# What a session's connections must show on the wire, by MS-TDS's outcome.
ON_WIRE = {"plain": "none", "refused": "none", "login": "login", "full": "full", "strict": "strict"}


class Listener:
    """One of Sluice's TDS listeners; `mode` is what its PRELOGIN offers, as for a server in
    tds_gate.outcome(). DbApi.connect and entry() read .port and .mode."""

    def __init__(self, mode):
        self.mode, self.port = mode, LISTENERS[mode]


class Servers:
    def __init__(self, work):
        log = os.path.join(work, "ag.log")
        extra = ["--user", "monitor:monitor", "--lag-ms", "0"]
        self.controls = {}
        for name in SECONDARIES:
            self.controls[name] = os.path.join(work, name + ".control.json")
            self.control(name, lag_ms=0)
        self.primary = gate.TdsServer(work, "primary", PRIMARY, "primary", log, "not_supported", None, extra)
        self.secondaries = [gate.TdsServer(work, name, port, "secondary", log, "not_supported", None,
                                           extra + ["--control", self.controls[name]])
                            for name, port in (("secondary1", SECONDARY1), ("secondary2", SECONDARY2))]
        self.all = [self.primary] + self.secondaries

    def control(self, name, **values):
        """The test server's control file (re-read within 20 ms): lag_ms and the like."""
        tmp = self.controls[name] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(values, f)
        os.replace(tmp, self.controls[name])


def sluice_config(certs):
    tls = 'tls = {{ cert_file = "{0}/server.pem", key_file = "{0}/server.key" }}'.format(certs)
    return f"""
workers = 1
[logging]
level = "{os.environ.get('TDS_CLIENTS_LOG_LEVEL', 'info')}"
[[listeners]]
name = "mysql"
address = "127.0.0.1"
port = {MYSQL_PORT}
[[listeners]]
name = "tds_plain"
protocol = "tds"
address = "127.0.0.1"
port = {LISTENERS["not_supported"]}
[[listeners]]
name = "tds_tls"
protocol = "tds"
address = "127.0.0.1"
port = {LISTENERS["off"]}
{tls}
[[listeners]]
name = "tds_tls_required"
protocol = "tds"
address = "127.0.0.1"
port = {LISTENERS["on"]}
require_tls = true
{tls}
{itlib.topology_backends_toml()}
{tdslib.tds_backends_toml(PRIMARY)}
[routing]
consistency = "session"
max_lag_ms = 5000
failover_hold_ms = 3000
[[users]]
name = "app"
password = "app"
[admin]
port = {ADMIN_PORT}
"""


# --- what every session does, and where it must have run ---------------------------------------------
class Plan(gate.Plan):
    """The gate's session with @@SERVERNAME beside the rows, a read inside the committed
    transaction, and a write in the second (read) session that must land on the primary."""

    def __init__(self, client, label):
        super().__init__(client, label)
        self.select = "SELECT 'rows', id, s, n, f, @@SERVERNAME FROM %s ORDER BY id" % self.table
        self.tx_where = "SELECT 'env', @@SERVERNAME, 'in the transaction'"
        self.env = "SELECT 'env', @@SERVERNAME, 'after'"
        self.tx_check = "SELECT 'tx', id, @@SERVERNAME FROM %s WHERE id >= 10 ORDER BY id" % self.table
        self.secondary_write = "INSERT INTO %s (id, s) VALUES (99, N'from a read session')" % self.table
        self.final_rows = self.after_rows + [(99, "from a read session", None, None)]
        self.many = False  # many_spec(): the read session executes one handle MANY times

    def spec(self):
        return dict(super().spec(), tx_where=self.tx_where, settle_ms=SETTLE_MS)


def servers_of(rows):
    """@@SERVERNAME, the last column of each row."""
    return sorted({r[-1] for r in rows})


def check_primary_file(servers, plan, rows, below):
    """The writes are in the primary's own SQLite file: they ran there (secondaries refuse them).
    Rows from id BELOW on are another step's."""
    got = gate.sqlite_rows(servers.primary.db, "SELECT id, s, n, f FROM %s WHERE id < ? ORDER BY id"
                           % plan.table, (below,))
    same_rows(got, rows, "rows in the primary's SQLite file")


def wait_replicated(servers, table, row_id):
    for s in servers.secondaries:
        gate.wait_replicated(types.SimpleNamespace(secondary=s), table, row_id)


class Windows:
    """When each session ran and on which listener: the connections it opened are found in
    the capture by their SYN's time, and must show the TLS MS-TDS's table gives."""

    def __init__(self):
        self.items = []

    def add(self, client, label, port, t0, t1, result, also=()):
        """ALSO: what else a connection may show (a client that fails in its own way)."""
        self.items.append((client, label, port, t0, t1, (ON_WIRE[result],) + tuple(also)))

    def timed(self, client, label, port, result, fn):
        t0 = time.time()
        try:
            return fn()
        finally:
            self.add(client, label, port, t0, time.time(), result)


# --- FreeTDS command-line clients: tsql, bsqldb, isql ------------------------------------------------
def cli_session(cli, servers, listener, enc, ver, checks, windows):
    label = "listener=%s client=%s%s" % (listener.mode, enc, "" if ver == "7.4" else " tds=" + ver)
    result = gate.outcome(gate.FREETDS_MODES[enc], listener.mode)
    plan = Plan(cli.name, label)
    name = gate.entry("p", listener, enc, ver)

    def session():
        tagged, text = cli.run(name, [
            plan.create, plan.insert, plan.select, "BEGIN TRANSACTION", plan.tx_rollback, "ROLLBACK TRANSACTION",
            "BEGIN TRAN", plan.tx_commit, plan.tx_where, "COMMIT TRAN", plan.tx_check, plan.env])
        if result == "refused":
            expect(not tagged, "connected although Sluice must refuse: %s" % text[-300:])
            return "refused: " + (text.strip().splitlines() or ["no output"])[-1][:80]
        expect(len(tagged.get("env", [])) == 2, "no session: %s" % text[-600:])
        same_rows(tagged.get("rows", []), plan.rows, "rows read back")
        expect([int(r[1]) for r in tagged.get("tx", [])] == [11], "after rollback+commit: %r; output: %s" % (
            tagged.get("tx"), text[-1500:]))
        where, after = tagged["env"][0][1], tagged["env"][1][1]
        expect(where == "primary", "a read inside the transaction ran on %s" % where)
        check_primary_file(servers, plan, plan.after_rows, 99)
        return "%s; read back on %s, later read on %s" % (result, "/".join(servers_of(tagged["rows"])), after)

    ok = checks.run("%s %s: session through Sluice" % (cli.name, label),
                    lambda: windows.timed(cli.name, label, listener.port, result, session))
    if not ok or result == "refused":
        return

    def bad_password():
        tagged, text = cli.run(name, ["SELECT 'env', 1, 2"], password="wrong")
        expect(not tagged and gate.error_has(text, 18456, cli.name == "isql"),
               "wrong password not refused with 18456: %s" % text[-300:])

    checks.run("%s %s: wrong password refused (18456)" % (cli.name, label),
               lambda: windows.timed(cli.name, label, listener.port, result, bad_password))

    def read_session():
        wait_replicated(servers, plan.table, 11)
        tagged, text = cli.run(name, [plan.select, plan.env, plan.secondary_write])
        same_rows(tagged.get("rows", []), plan.after_rows, "rows read in a new session: %s" % text[-300:])
        where = servers_of(tagged["rows"]) + [tagged["env"][0][1]]
        expect(set(where) <= set(SECONDARIES), "reads of a new session ran on %s" % where)
        check_primary_file(servers, plan, plan.final_rows, 1000)
        return "reads on %s, the write on the primary" % "/".join(sorted(set(where)))

    checks.run("%s %s: a new session reads on a secondary, writes on the primary" % (cli.name, label),
               lambda: windows.timed(cli.name, label, listener.port, result, read_session))


def isql_read_after_commit(servers, listener):
    """tdsodbc sends every statement of isql in sp_prepexec, COMMIT TRAN too: the read right
    after it must see the commit, although the secondaries are 400 ms behind."""
    table = "c_isql_ryw"
    cli = gate.Cli("isql")
    name = gate.entry("p", listener, "off")
    for s in SECONDARIES:
        servers.control(s, lag_ms=400)
    try:
        time.sleep(0.1)
        _, text = cli.run(name, ["CREATE TABLE %s (id INT)" % table, "INSERT INTO %s (id) VALUES (1)" % table])
        wait_replicated(servers, table, 1)
        time.sleep(0.3)  # the monitor has seen the secondaries at the INSERT's LSN
        tagged, text = cli.run(name, ["BEGIN TRAN", "INSERT INTO %s (id) VALUES (2)" % table, "COMMIT TRAN",
                                      "SELECT 'env', COUNT(*), @@SERVERNAME FROM %s" % table])
        got = tagged.get("env", [[None, None, None]])[0]
        expect(got[1] == "2", "the read after COMMIT TRAN (in sp_prepexec) saw %s rows of 2, on %s: %s" % (
            got[1], got[2], text[-300:]))
        return "2 rows, read on %s" % got[2]
    finally:
        for s in SECONDARIES:
            servers.control(s, lag_ms=0)


def freetds_matrix(checks, servers, listeners, windows):
    for name in ("tsql", "bsqldb", "isql"):
        cli = gate.Cli(name)
        for listener in listeners:
            for enc in gate.FREETDS_MODES:
                cli_session(cli, servers, listener, enc, "7.4", checks, windows)
    # Older TDS versions (no ALL_HEADERS before 7.2, 4-byte DONE counts in 7.1): Sluice logs in to
    # the servers with the client's version.
    for ver in ("7.1", "7.2", "7.3"):
        for listener, enc in ((listeners[0], "off"), (listeners[1], "request")):
            cli_session(gate.Cli("tsql"), servers, listener, enc, ver, checks, windows)
    checks.run("isql read-your-writes: a read right after COMMIT TRAN sent in sp_prepexec (listener=not_supported)",
               isql_read_after_commit, servers, listeners[0])


# --- Python DB-API clients: pymssql, pyodbc, pytds -----------------------------------------------------
def dbapi_session(client, servers, listener, mode, checks, windows, ver="7.4"):
    label = "listener=%s client=%s%s" % (listener.mode, mode, "" if ver == "7.4" else " tds=" + ver)
    result = gate.outcome(client.prelogin_value(mode), listener.mode)
    plan = Plan(client.name, label)

    def session():
        conn, refused = gate.dbapi_connect(lambda: client.connect(listener, listener, "p", mode, ver=ver), result)
        if conn is None:
            return refused
        try:
            expect(result != "refused", "connected although Sluice must refuse")
            rows = gate.dbapi_fill(client, conn, plan)
            cur = conn.cursor()
            cur.execute(plan.tx_rollback)
            conn.rollback()
            cur.execute(plan.tx_commit)
            cur.execute(plan.tx_where)
            where = cur.fetchall()[0][1]
            conn.commit()
            expect(where == "primary", "a read inside the transaction ran on %s" % where)
            cur.execute(plan.tx_check)
            expect([int(r[1]) for r in cur.fetchall()] == [11], "after rollback and commit")
            check_primary_file(servers, plan, plan.after_rows, 99)
            cur.execute(plan.env)
            after = cur.fetchall()[0][1]
            conn.commit()
            return "%s; read back on %s, later read on %s" % (result, "/".join(servers_of(rows)), after)
        finally:
            conn.close()

    ok = checks.run("%s %s: session through Sluice" % (client.name, label),
                    lambda: windows.timed(client.name, label, listener.port, result, session))
    if not ok or result == "refused":
        return

    def bad_password():
        if client.name == "pymssql":
            return gate.pymssql_bad_password(gate.entry("p", listener, mode, ver), listener.port, ver)
        try:
            client.connect(listener, listener, "p", mode, password="wrong", ver=ver).close()
        except Exception as e:  # noqa: BLE001
            gate.expect_error(e, 18456, "wrong password")
            return
        raise Fail("logged in with a wrong password")

    checks.run("%s %s: wrong password refused (18456)" % (client.name, label),
               lambda: windows.timed(client.name, label, listener.port, result, bad_password))

    def read_session():
        wait_replicated(servers, plan.table, 11)
        conn = client.connect(listener, listener, "p", mode, ver=ver, autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute(plan.select)
            rows = cur.fetchall()
            same_rows(rows, plan.after_rows, "rows read in a new session")
            cur.execute(plan.env)
            where = servers_of(rows) + [cur.fetchall()[0][1]]
            expect(set(where) <= set(SECONDARIES), "reads of a new session ran on %s" % where)
            cur.execute(plan.secondary_write)
            check_primary_file(servers, plan, plan.final_rows, 1000)
            return "reads on %s, the write on the primary" % "/".join(sorted(set(where)))
        finally:
            conn.close()

    checks.run("%s %s: a new session reads on a secondary, writes on the primary" % (client.name, label),
               lambda: windows.timed(client.name, label, listener.port, result, read_session))


def dbapi_matrix(checks, servers, listeners, certs, windows):
    for name, modes in (("pymssql", gate.FREETDS_MODES), ("pyodbc", gate.FREETDS_MODES),
                        ("pytds", ("plain", "login", "full"))):
        client = gate.DbApi(name, certs)
        for listener in listeners:
            for mode in modes:
                dbapi_session(client, servers, listener, mode, checks, windows)
    dbapi_session(gate.DbApi("pymssql", certs), servers, listeners[1], "request", checks, windows, ver="7.1")


# --- jTDS and node: a program runs every session and prints what it saw; judged here -------------------
def judge(client, label, res, plan, servers, result, checks, known=None):
    """res: one JSON object printed by JtdsGate.java or node/tds_gate.js for one session.
    known(error) names a client-side failure that is not Sluice's (or None)."""
    known = known or (lambda err: None)

    def session():
        if result == "refused":
            return gate.judge_refused(res, "Sluice")
        gate.judge_rows(res, plan)
        where = res["tx_where"][0][1]
        expect(where == "primary", "a read inside the transaction ran on %s" % where)
        check_primary_file(servers, plan, plan.after_rows, 99)
        return "%s; read back on %s, later read on %s" % (result, "/".join(servers_of(res["rows"])),
                                                          res["env"][0][1])

    if not checks.run("%s %s: session through Sluice" % (client, label), session) or result == "refused":
        return

    checks.run("%s %s: wrong password refused (18456)" % (client, label), gate.judge_bad_password, client, res,
               known)

    def read_session():
        if known(res.get("secondary_error")):
            return known(res["secondary_error"])
        expect("secondary_error" not in res, "the read session failed: %r" % res.get("secondary_error"))
        same_rows(res["secondary_rows"], plan.after_rows, "rows read in a new session")
        where = servers_of(res["secondary_rows"]) + [res["secondary_env"][0][1]]
        expect(set(where) <= set(SECONDARIES), "reads of a new session ran on %s" % where)
        expect(res.get("secondary_write_error", "missing") is None,
               "the write of the read session failed: %r" % res.get("secondary_write_error"))
        check_primary_file(servers, plan, plan.final_rows, 1000)
        note = "reads on %s, the write on the primary" % "/".join(sorted(set(where)))
        if "many_runs" in res:
            note += "; " + judge_many(res["many_runs"], res["many_plain"], "sp_prepare once, then sp_execute")
            many = gate.sqlite_rows(servers.primary.db, "SELECT count(*) FROM %s WHERE id >= 1000" % plan.table)
            expect(many[0][0] == MANY, "%d writes between the executions on the primary, want %d" % (
                many[0][0], MANY))
        return note

    checks.run("%s %s: a new session reads on a secondary, writes on the primary%s" % (
        client, label, ", one handle executed %d times between writes" % MANY if plan.many else ""), read_session)


def judge_many(runs, plain, how):
    """runs: each execution's rows [['many', i, server]]; plain: the plain read after each write.
    Every execution ran where the handle was made: one secondary (a read, prepared before the
    session wrote anything), whatever read-your-writes did with the plain reads."""
    got = [(int(r[0][1]), r[0][2]) for r in runs]
    expect([i for i, _ in got] == list(range(len(runs))) and len(runs) == MANY, "executions: %r" % got)
    where = {s for _, s in got}
    expect(len(where) == 1 and where <= set(SECONDARIES), "the handle's executions ran on %s" % sorted(where))
    counts = {}
    for rows in plain:
        counts[rows[0][-1]] = counts.get(rows[0][-1], 0) + 1
    return "%s: all %d executions on %s; plain reads after each write: %s" % (
        how, len(runs), where.pop(), ", ".join("%s x%d" % kv for kv in sorted(counts.items())))


def many_spec(plan):
    plan.many = True
    return {"many_sql": "SELECT 'many', ?, @@SERVERNAME", "many_n": MANY,
            "many_write": "INSERT INTO %s (id, s) VALUES (1000 + {i}, N'many')" % plan.table,
            "many_plain": "SELECT 'plain', @@SERVERNAME"}


def jtds_matrix(checks, servers, listeners, work, windows):
    classes = os.path.join(work, "java")
    os.makedirs(classes, exist_ok=True)
    if not checks.run("jTDS: JtdsGate.java compiles", gate.compile_jtds, classes):
        return
    runs, props = [], {}
    for listener in listeners:
        for ssl in gate.JTDS_MODES:
            label = "listener=%s ssl=%s" % (listener.mode, ssl)
            plan = Plan("jtds", label)
            pre = "run.%d." % len(runs)
            spec = dict(plan.spec(), label=label, port=listener.port, secondary_port=listener.port, ssl=ssl,
                        tds="8.0", **many_spec(plan))
            props.update({pre + k: v for k, v in spec.items()})
            runs.append((label, plan, listener, gate.outcome(gate.JTDS_MODES[ssl], listener.mode)))
    props["runs"] = len(runs)
    p, results = gate.run_jtds(work, classes, props)
    for label, plan, listener, result in runs:
        res = results.get(label)
        if res is None:
            checks.run("jTDS %s: session through Sluice" % label, lambda: expect(
                False, "no result; exit %d: %s" % (p.returncode, p.stderr.decode()[-1500:])))
            continue
        known = gate.jtds_login_only_known if result == "login" else None
        if known and known(res.get("connect_error")):
            checks.run("jTDS %s: session through Sluice" % label, known, res["connect_error"])
            continue
        # jTDS's own login-only failure can close the socket before Sluice's answer to LOGIN7.
        windows.add("jTDS", label, listener.port, res["t0_us"] / 1e6, res["t1_us"] / 1e6, result,
                    also=("handshake only",) if known else ())
        judge("jTDS", label, res, plan, servers, result, checks, known=known)


def node_matrix(checks, servers, listeners, work, certs, windows):
    runs, plans = [], {}
    for driver in ("tedious", "mssql"):
        for listener in listeners:
            for enc in gate.NODE_MODES:
                label = "listener=%s encrypt=%s" % (listener.mode, enc)
                plan = Plan(driver, label)
                run = dict(plan.spec(), label="%s %s" % (driver, label), driver=driver, port=listener.port,
                           secondary_port=listener.port,
                           encrypt={"false": False, "true": True, "strict": "strict"}[enc])
                runs.append(run)
                plans[run["label"]] = (driver, label, plan, listener,
                                       gate.outcome(gate.NODE_MODES[enc], listener.mode))
    extras, want = [], {}
    plain, tls = listeners[0], listeners[1]
    for listener, enc in ((plain, False), (tls, True)):
        tag = "listener=%s encrypt=%s" % (listener.mode, str(enc).lower())
        more, wanted = gate.node_extras(tag, listener.port, enc, "c_tedious_multi_" + listener.mode)
        extras += more
        want.update(wanted)
        extras.append({"kind": "many", "label": "many " + tag, "port": listener.port, "encrypt": enc, "n": MANY,
                       "sql": "SELECT 'many', @i, @@SERVERNAME",
                       "write": "INSERT INTO c_tedious_many (id, tag) VALUES ({i}, N'%s')" % tag,
                       "plain": "SELECT 'plain', @@SERVERNAME"})
    extras.append({"kind": "collide", "label": "collide", "port": plain.port, "encrypt": False,
                   "server_ports": [PRIMARY, SECONDARY1, SECONDARY2], "settle_ms": 300,
                   "setup": "CREATE TABLE c_collide (id INT)",
                   "read": "SELECT 'read', @@SERVERNAME",
                   "write": "INSERT INTO c_collide (id) VALUES (1); SELECT 'write', @@SERVERNAME"})
    extras.append({"kind": "readonly", "label": "readonly", "port": plain.port, "encrypt": False,
                   "where": "SELECT 'where', @@SERVERNAME",
                   "write": "INSERT INTO c_tedious_many (id, tag) VALUES (-1, N'read-only intent')"})
    results, problem = gate.run_node(work, {"ca": os.path.join(certs, "ca.pem"), "runs": runs, "extras": extras})
    for run in runs:
        driver, label, plan, listener, result = plans[run["label"]]
        res = results.get(run["label"])
        if res is None:
            checks.run("%s %s: session through Sluice" % (driver, label), lambda: expect(False, problem))
            continue
        # Whole milliseconds (node's wall clock): t1 is rounded up; the sessions are 5 ms apart.
        windows.add(driver, label, listener.port, res["t0"] / 1000.0, (res["t1"] + 1) / 1000.0, result)
        judge(driver, label, res, plan, servers, result, checks)
    for ex in extras:
        name, res = ex["label"], results.get(ex["label"])
        what = dict(gate.NODE_EXTRAS, **{
                "many": "one prepared handle executed %d times between writes" % MANY,
                "collide": "two prepared handles with the same number, one on a secondary, one on the primary",
                "readonly": "ApplicationIntent=ReadOnly: reads on a secondary, a write refused (3906)"})[ex["kind"]]
        where = name.split(" ", 1)[1] if " " in name else "listener=not_supported encrypt=false"
        checks.run("tedious %s (%s)" % (what, where), judge_extra, ex, res, want.get(name), servers, problem)
    return set((results.get("collide") or {}).get("direct_ports") or [])


def judge_extra(ex, res, want, servers, problem):
    kind = ex["kind"]
    if kind in gate.NODE_EXTRAS:
        return gate.judge_node_extra(ex, res, want, problem)
    expect(res is not None, problem)
    expect("failed" not in res, "failed: %r" % res.get("failed"))
    if kind == "many":
        note = judge_many(res["runs"], res["plain"], "sp_prepare once, sp_execute %d times" % MANY)
        tag = ex["write"].rsplit("N'", 1)[1].rstrip("')")
        ids = gate.sqlite_rows(servers.primary.db, "SELECT id FROM c_tedious_many WHERE tag = ? ORDER BY id", (tag,))
        expect([r[0] for r in ids] == list(range(MANY)), "the writes between the executions: %r" % ids)
        return note
    if kind == "collide":
        # Both servers answered handle top + 1; the client sees Sluice's own numbers, which
        # differ.
        hr, hw = res["handles"]
        expect(hr != hw, "the client was given handle %d twice (a secondary and the primary both made %d)"
               % (hr, res["top"] + 1))
        written = gate.sqlite_rows(servers.primary.db, "SELECT count(*) FROM c_collide")[0][0]
        read = res.get("read") or res.get("read_error")
        expect(res.get("read") and res["read"][0][0] == "read" and res["read"][0][1] in SECONDARIES,
               "executing the read's handle %d gave %r (a secondary and the primary both made handle %d)"
               % (hr, read, res["top"] + 1))
        expect(res.get("write") == [["write", "primary"]], "executing the write's handle: %r" % (
            res.get("write") or res.get("write_error")))
        expect(written == 1, "the INSERT ran %d times, once executed" % written)
        return "handles %d and %d (both servers made %d): the read on %s, the write on the primary" % (
            hr, hw, res["top"] + 1, res["read"][0][1])
    expect(res["where"][0][1] in SECONDARIES and res["after"][0][1] in SECONDARIES,
           "a read-only intent session read on %r, %r" % (res["where"], res["after"]))
    err = res.get("write_error")
    expect(err and err.get("code") == 3906 and gate.MESSAGES[3906] in err.get("message", ""),
           "the write was not refused with 3906: %r" % err)
    return "reads on %s, the write: %s" % (res["where"][0][1], err["message"])


# --- the Python clients' ATTENTION, multi-packet messages and prepared statements ------------------
def python_extras(checks, servers, listeners, certs):
    plain, tls = listeners[0].port, listeners[1].port
    checks.run("pymssql ATTENTION: cancel() of a long result, then a query (listener=not_supported)",
               gate.pymssql_cancel, "127.0.0.1", plain)
    checks.run("pytds ATTENTION: cancel() of a long result, then a query (listener=not_supported)",
               gate.pytds_cancel, plain)
    checks.run("pytds response of more than 256 packets (listener=not_supported)", gate.pytds_long_response, plain)
    checks.run("pytds multi-packet batch, RPC parameter and response (listener=not_supported, plain)",
               gate.pytds_multi, plain, "c_pytds_multi_plain")
    checks.run("pytds multi-packet batch, RPC parameter and response (listener=off, full TLS)",
               gate.pytds_multi, tls, "c_pytds_multi_full", os.path.join(certs, "ca.pem"))

    def pyodbc_many():
        # tdsodbc prepares per execution (sp_prepexec, then sp_unprepare on the handle, which
        # must reach the backend that made it): each execution runs where it was prepared.
        import pyodbc
        conn = pyodbc.connect("DSN=%s;UID=app;PWD=app" % gate.entry("p", listeners[0], "off"), autocommit=True,
                              timeout=5)
        try:
            reads, writes = conn.cursor(), conn.cursor()
            writes.execute("CREATE TABLE c_pyodbc_many (id INT)")
            time.sleep(0.3)  # the monitor sees the secondaries have it: reads leave the primary
            runs, plain = [], []
            for i in range(MANY):
                reads.execute("SELECT 'many', ?, @@SERVERNAME", i)
                runs.append([tuple(r) for r in reads.fetchall()])
                writes.execute("INSERT INTO c_pyodbc_many (id) VALUES (?)", i)
                writes.execute("SELECT 'plain', @@SERVERNAME")
                plain.append([tuple(r) for r in writes.fetchall()])
            got = [(int(r[0][1]), r[0][2]) for r in runs]
            expect([i for i, _ in got] == list(range(MANY)), "executions: %r" % got)
            ids = gate.sqlite_rows(servers.primary.db, "SELECT id FROM c_pyodbc_many ORDER BY id")
            expect([r[0] for r in ids] == list(range(MANY)), "the writes: %r" % ids)
            counts = {}
            for _, s in got:
                counts[s] = counts.get(s, 0) + 1
            return "sp_prepexec + sp_unprepare per execution, ran on %s" % ", ".join(
                "%s x%d" % kv for kv in sorted(counts.items()))
        finally:
            conn.close()

    checks.run("pyodbc a prepared read executed %d times between writes (listener=not_supported)" % MANY,
               pyodbc_many)


# --- the wire: which TLS each session negotiated; tshark on both sides of Sluice ---------------------
def is_tls_record(b, p):
    return p + 5 <= len(b) and b[p] in (0x14, 0x15, 0x16, 0x17) and b[p + 1] == 3


def tls_on_wire(c2s, s2c):
    """What one connection's first bytes show: none, login (the TLS handshake inside PRELOGIN
    packets, then the login answer in clear), full (then TLS records only) or strict (TLS first)."""
    if c2s[:1] == b"\x16":
        return "strict" if s2c[:1] == b"\x16" else "none"
    p, wrapped, records = 0, False, False
    while p + 8 <= len(s2c):
        if wrapped and is_tls_record(s2c, p):
            records = True
            p += 5 + int.from_bytes(s2c[p + 3:p + 5], "big")
            continue
        ptype, length = s2c[p], int.from_bytes(s2c[p + 2:p + 4], "big")
        if length < 8:
            return "unreadable"
        if ptype == 0x12 and is_tls_record(s2c, p + 8):
            wrapped = True
        elif wrapped and ptype == 0x04:
            return "login"
        p += length
    return ("full" if records else "handshake only") if wrapped else "none"


def check_encryption(pcap, windows, checks):
    """Per client, from the capture: the TLS of every connection in each session's window."""
    ports = sorted(LISTENERS.values())
    in_ports = "{%s}" % ", ".join(map(str, ports))
    rows = gate.tshark_fields(pcap, "tcp.port in %s && ((tcp.flags.syn == 1 && tcp.flags.ack == 0) || "
                         "(tcp.len > 0 && tcp.seq < 16384))" % in_ports,
                         ["tcp.stream", "frame.time_epoch", "tcp.srcport", "tcp.dstport", "tcp.seq", "tcp.payload",
                          "tcp.flags.syn"], opts=("-o", "tcp.desegment_tcp_streams:FALSE"))
    syn, data = {}, {}
    for row in rows:
        stream, t, sport, dport, seq, payload, flag = (row + [""] * 7)[:7]
        if flag in ("1", "True"):
            syn[stream] = (float(t), int(dport))
            continue
        if not payload:
            continue
        key = (stream, "c2s" if int(dport) in ports else "s2c")
        data.setdefault(key, {})[int(seq)] = bytes.fromhex(payload.replace(":", ""))
    flows = {}
    for (stream, way), parts in data.items():
        b = bytearray()
        for seq in sorted(parts):
            if seq == len(b) + 1:  # relative sequence numbers: the first byte after the SYN is 1
                b += parts[seq]
            elif seq > len(b) + 1:
                break  # a gap: what came before it is enough
        flows.setdefault(stream, {})[way] = bytes(b)
    with open(os.path.join(os.path.dirname(pcap), "wire.json"), "w") as f:  # for a failure's reader
        json.dump({"windows": windows.items, "connections": {
            s: [t, port, tls_on_wire(flows.get(s, {}).get("c2s", b""), flows.get(s, {}).get("s2c", b""))]
            for s, (t, port) in syn.items()}}, f, indent=0)
    by_client = {}
    starts = sorted((w[3], w[2]) for w in windows.items)
    for client, label, port, t0, t1, want in windows.items:
        # Sessions follow each other within a millisecond: a connection belongs to the last
        # session that started before its SYN.
        nxt = min([t for t, _ in starts if t > t0] + [t1 + 1])
        mine = [s for s, (t, dport) in syn.items() if dport == port and t0 <= t < min(t1 + 0.0005, nxt)]
        got = [tls_on_wire(flows.get(s, {}).get("c2s", b""), flows.get(s, {}).get("s2c", b"")) for s in mine]
        entry = by_client.setdefault(client, {"bad": [], "seen": {}})
        if not mine or any(g not in want for g in got):
            entry["bad"].append("%s: want %s on every connection, got %s" % (
                label, " or ".join(want), got or "no connection"))
        for g in got:
            entry["seen"][g] = entry["seen"].get(g, 0) + 1
    for client, entry in by_client.items():
        def verdict(entry=entry):
            expect(not entry["bad"], "; ".join(entry["bad"][:6]))
            return "connections: %s" % ", ".join("%s %d" % kv for kv in sorted(entry["seen"].items()))
        checks.run("%s: every connection negotiated on the wire what MS-TDS's table says" % client, verdict)


def dissect_both_sides(pcap, direct_ports):
    """Clients <-> Sluice's plain listener and Sluice <-> the servers, dissected as TDS.
    DIRECT_PORTS: the client ports of the test's own connections to the servers."""
    front = LISTENERS["not_supported"]
    backs = [PRIMARY, SECONDARY1, SECONDARY2]
    ports = [front] + backs
    fields = gate.tds_fields(pcap, ports)
    side = {"front": "tcp.port == %d" % front, "back": "tcp.port in {%s}" % ", ".join(map(str, backs))}
    types = {name: gate.packet_types(fields, "tds.type && %s" % filt, "%s side: " % name)
             for name, filt in side.items()}
    # Who sent a frame: Sluice to its clients and the servers to Sluice answer (their frames must
    # dissect cleanly); clients to Sluice and Sluice to the servers ask. Sluice forwards the
    # clients' requests untouched, so tshark's complaints about the clients' own frames (tds_gate:
    # FreeTDS's LOGIN7 FeatureExt read as GSS-API, tdsodbc's NTEXT RPC parameters) recur in the
    # RPCs Sluice forwards to the servers and are counted; everything else Sluice writes to the
    # servers (its LOGIN7, its own batches: replayed settings, resets, LSN queries) must be clean.
    # (Pooled backend connections serve many clients: on the servers' side a LOGIN7's library
    # name is not the sender of the requests after it.)
    answering = " || ".join("tcp.srcport == %d" % p for p in ports)
    login = {}
    for row in fields("tds.type == 16 && (%s)" % " || ".join("tcp.port == %d" % p for p in ports), "tcp.stream",
                      "tds.7login.libraryname", "tds.7login.username", "tcp.srcport"):
        row += [""] * (4 - len(row))
        who = "the monitor" if row[2] == "monitor" else "the test" if int(row[3]) in direct_ports else "Sluice"
        login[row[0]] = (row[1] or "no library name (tdsodbc)", who)
    bad, own, asked, tcp_notes = [], [], {}, {}
    port_filter = " || ".join("tcp.port == %d" % p for p in ports)
    for row in fields("(_ws.malformed || _ws.expert.severity >= warning) && (%s)" % port_filter,
                      "frame.number", "tcp.stream", "tcp.srcport", "tcp.dstport", "tds.type", "_ws.expert.group",
                      "_ws.expert.message"):
        row += [""] * (7 - len(row))
        frame, stream, sport, dport, ptype, groups_, messages = row[:7]
        for group, message in zip(groups_.split("|"), messages.split("|")):
            if group == gate.SEQUENCE:
                tcp_notes[message] = tcp_notes.get(message, 0) + 1
            elif int(sport) in ports:
                bad.append((frame, stream, message))
            else:
                lib, who = login.get(stream, ("?", "?"))
                if int(dport) == front:
                    key = "to Sluice (%s): %s" % (lib, message)
                else:
                    if who == "Sluice" and set(ptype.split("|")) - {"3"}:
                        own.append((frame, stream, "type " + ptype, message))
                    key = "to the servers from %s: %s" % (who, message)
                asked[key] = asked.get(key, 0) + 1
    expect(not own, "%d frames Sluice wrote to the servers (not forwarded RPCs) with TDS warnings or malformed: %s"
           % (len(own), own[:10]))
    gate.check_answering(fields, bad, answering, "answering", tcp_notes)
    procs = gate.rpc_counts(fields, "tds.rpc && tcp.dstport in {%s}" % ", ".join(map(str, backs)))
    return ("TDS packets by type, clients' side: %s; servers' side: %s; RPCs reaching the servers: %s; "
            "frames of the asking side tshark complains about: %s; TCP notes: %s" % (
                ", ".join("%s=%d" % kv for kv in sorted(types["front"].items())),
                ", ".join("%s=%d" % kv for kv in sorted(types["back"].items())), gate.counts(procs),
                gate.counts(asked), gate.counts(tcp_notes)))


# --- main ----------------------------------------------------------------------------------------
def wait_monitor():
    """Until Sluice's monitor has probed the servers: a new session's read lands on a secondary."""
    import pytds
    deadline = time.time() + 15
    while True:
        try:
            with pytds.connect(server="127.0.0.1", port=LISTENERS["not_supported"], user="app", password="app",
                               database="sluice", autocommit=True, login_timeout=5) as conn:
                cur = conn.cursor()
                cur.execute("SELECT @@SERVERNAME")
                if cur.fetchall()[0][0] in SECONDARIES:
                    cur.execute("CREATE TABLE c_tedious_many (id INT, tag NVARCHAR(100))")
                    return
        except Exception as e:  # noqa: BLE001 -- retried until the deadline
            why = e
        else:
            why = "reads still on the primary"
        expect(time.time() < deadline, "Sluice's monitor never sent a read to a secondary: %s" % why)
        time.sleep(0.1)


def main():
    def terminated(*_):
        raise gate.Terminated()

    signal.signal(signal.SIGTERM, terminated)
    checks = gate.Checks()
    work = tempfile.mkdtemp(prefix="tds-clients-")
    print("# seed %d (TDS_CLIENTS_SEED), ports %d-%d, work directory %s" % (SEED, BASE, BASE + 7, work), flush=True)
    servers, daemon, capture, ok = None, None, None, False
    try:
        certs = gate.prepare(work, range(BASE, BASE + 8), "TDS_CLIENTS_PORT")
        servers = Servers(work)
        for s in servers.all:
            s.wait_ready()
        listeners = [Listener(m) for m in ("not_supported", "off", "on")]
        gate.write_freetds_conf(work, [("p", listener.mode, listener.port) for listener in listeners], certs)
        capture = gate.Capture(work, list(LISTENERS.values()) + [PRIMARY, SECONDARY1, SECONDARY2])
        daemon = itlib.Daemon(work, "sluice", sluice_config(certs), port=MYSQL_PORT, admin=ADMIN_PORT)
        daemon.start()
        wait_monitor()
        windows = Windows()
        freetds_matrix(checks, servers, listeners, windows)
        dbapi_matrix(checks, servers, listeners, certs, windows)
        jtds_matrix(checks, servers, listeners, work, windows)
        direct_ports = node_matrix(checks, servers, listeners, work, certs, windows)
        python_extras(checks, servers, listeners, certs)
        capture.stop()
        check_encryption(capture.file, windows, checks)
        checks.run("tshark: both sides of Sluice dissect as TDS, no malformed frame", dissect_both_sides,
                   capture.file, direct_ports)
        ok = True
    except (gate.Terminated, Exception) as e:  # noqa: BLE001
        gate.ended_early(checks, e)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # everything is stopped whatever comes
        if capture:
            capture.stop()
        log = ""
        if daemon and daemon.pid:
            good, out = daemon.stop_check()
            log = daemon.log_text()
            checks.count += 1
            if good:
                print("ok   - sluice stopped cleanly, its log free of errors", flush=True)
            else:
                checks.failures.append("sluice")
                print("FAIL - sluice stop-check: %s" % out[-3000:], flush=True)
        gate.stop_servers(servers.all if servers else [], checks)
    if checks.failures:
        print("sluice log (last 60 lines):\n  " + "\n  ".join(log.splitlines()[-60:]), flush=True)
    return gate.finish(checks, SEED, work, ok and os.environ.get("TDS_CLIENTS_KEEP") != "1")


if __name__ == "__main__":
    sys.exit(main())
