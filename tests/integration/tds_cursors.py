#!/usr/bin/python3
"""tds_cursors: API server cursors (sp_cursoropen, sp_cursorfetch, sp_cursorclose, ...) through
Sluice's TDS listener, in front of the project's TDS test servers (tests/fixtures/tds_server.py:
a primary and two secondaries; each cursor STATIC over its rows, handles numbered per server
from 180150001 as SQL Server's, every cursor call logged on the server's stderr with the SPID
that ran it). Real clients: jTDS (useCursors=true, TYPE_SCROLL_INSENSITIVE: sp_cursoropen
with scrollopt STATIC, sp_cursorfetch FIRST/ABSOLUTE/INFO with a fetch buffer, sp_cursorclose;
tests/integration/JtdsCursors.java), and tds_bad_input's raw TDS client (the cursor
procedures by id with OUTPUT parameters, to see the handle numbers the client is given: pymssql
loses OUTPUT values that follow a result set).

Ports: TDS_CURSORS_PORT (default SLUICE_PORT + 820) + 0..2 for the test servers, + 3 for
Sluice's TDS listener, + 4 its MySQL listener, + 5 its admin.

 1. Gate: jTDS straight to the test server: two scrollable cursors over a 50-row table moved
    with first/next/absolute/last/previous/relative give the rows read directly; a closed
    cursor cannot be moved; the session goes on.
 2. The same through Sluice with [pool] mode = "transaction", and other sessions (reads and
    a write) run between the fetches: the same rows; every cursor call ran on the primary
    and on one backend connection (one SPID in the primary's log), none on a secondary.
 3. Handles: through Sluice the raw client is given Sluice's numbers 1 and 2 for two cursors
    open at once, whose fetches (their rows under COLMETADATA 0xFFFF, the open's columns) reach
    the primary under its own numbers (18015xxxx, from its log); those numbers are unknown to
    the client's session (8179 from Sluice), as is a closed cursor's; the session goes on.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itlib  # noqa: E402
import tdslib  # noqa: E402
import tds_bad_input as bad  # noqa: E402
from tdslib import direct, q  # noqa: E402
from itlib import Checks, Daemon, eq, true  # noqa: E402

import pymssql  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
JTDS_JAR = "/usr/share/java/jtds.jar"
BASE, TDS_PORT, MYSQL_PORT, ADMIN_PORT = tdslib.ports("TDS_CURSORS_PORT", 820)
DIR = tempfile.mkdtemp(prefix="sluice-tds-cursors-")
ROWS = 50

CONFIG = tdslib.tds_config(BASE, TDS_PORT, MYSQL_PORT, ADMIN_PORT, itlib.topology_backends_toml(),
                           "[routing]\nmax_lag_ms = 5000\n"
                           "[pool]\nmode = \"transaction\"\nmax_connections = 4\n")

FETCH_SIZE = 5  # JtdsCursors' fetch buffer: a fetch every few moves


def want_steps(rows):
    """What JtdsCursors.java must print for ROWS (the table's rows by id)."""
    def at(n):
        return list(rows[n - 1]) if 1 <= n <= len(rows) else None
    n = len(rows)
    return [("a.first", at(1)), ("a.next", at(2)), ("b.absolute(7)", at(7)), ("a.next", at(3)),
            ("a.absolute(25)", at(25)), ("b.next", at(8)), ("a.last", at(n)),
            ("a.previous", at(n - 1)), ("a.relative(-10)", at(n - 11)),
            ("a.absolute(-2)", at(n - 1)), ("b.previous", at(7)), ("a.absolute(51)", at(51))]


def compile_client():
    classes = os.path.join(DIR, "java")
    os.makedirs(classes, exist_ok=True)
    p = subprocess.run(["javac", "-encoding", "UTF-8", "-Xlint:none", "-d", classes, "-cp", JTDS_JAR,
                        os.path.join(HERE, "JtdsCursors.java")], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    eq(p.returncode, 0, "javac JtdsCursors.java: " + p.stdout.decode()[-1000:])
    return classes


def run_client(classes, port, pause="-", between=None):
    """JtdsCursors on PORT; BETWEEN(n) runs at each of its pauses. Its JSON lines, in order."""
    proc = subprocess.Popen(["java", "-Dfile.encoding=UTF-8", "-cp", f"{JTDS_JAR}:{classes}",
                             "JtdsCursors", str(port), "items", pause, str(FETCH_SIZE)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = set()
    deadline = time.monotonic() + 90
    while proc.poll() is None and time.monotonic() < deadline and pause != "-":
        for n in (1, 2, 3):
            if n not in done and os.path.exists(f"{pause}.{n}"):
                done.add(n)
                between(n)
                open(f"{pause}.{n}.go", "w").close()
        time.sleep(0.05)
    out, err = proc.communicate(timeout=max(1, deadline - time.monotonic()))
    lines = [json.loads(x) for x in out.decode("utf-8", "replace").splitlines() if x.startswith("{")]
    true(lines, f"JtdsCursors printed its steps (stderr: {err.decode()[-1500:]})")
    if pause != "-":
        eq(sorted(done), [1, 2, 3], "the test ran other sessions at each of the client's pauses")
    return lines


def judge(lines, rows, where, count=None):
    steps = [x for x in lines if x["step"] not in ("class",)]
    eq(lines[0].get("value"), "net.sourceforge.jtds.jdbc.MSCursorResultSet",
       f"{where}: jTDS made a server cursor result set")
    for (name, want), got in zip(want_steps(rows), steps):
        eq((got["step"], got.get("row"), got.get("error")), (name, want, None), f"{where}: {name}")
        if want is not None:
            eq(got.get("columns"), 2, f"{where}: {name}: ROWSTAT stays hidden")
    tail = {x["step"]: x for x in steps[len(want_steps(rows)):]}
    true("error" in tail.get("a.next after close", {}), f"{where}: a closed cursor cannot move: {tail}")
    eq(tail.get("b.first", {}).get("row"), list(rows[0]), f"{where}: the other cursor still works")
    eq(tail.get("plain query after close", {}).get("row"), [len(rows) if count is None else count, 7],
       f"{where}: the session goes on after the close")


def table_rows():
    p = direct(BASE)
    try:
        return [tuple(r) for r in q(p, "SELECT id, name FROM items ORDER BY id")]
    finally:
        p.close()


def log_mark(name):
    return os.path.getsize(os.path.join(DIR, name + ".err"))


def cursor_calls(name, since):
    """(spid, procedure, first values) of each cursor call NAME's server logged after SINCE."""
    with open(os.path.join(DIR, name + ".err"), errors="replace") as f:
        f.seek(since)
        text = f.read()
    return re.findall(rf"tds_server {name}: spid (\d+) (sp_cursor\w*) ?(.*)", text)


def check_gate(classes, rows):
    judge(run_client(classes, BASE), rows, "direct")


def check_through_sluice(classes, rows):
    marks = {n: log_mark(n) for n in ("primary", "secondary1", "secondary2")}
    seen = []

    def between(n):
        # Other sessions take the pooled connections meanwhile; a write too (a row the cursor,
        # opened before, does not see: it is STATIC).
        for i in range(3):
            c = pymssql.connect(server="127.0.0.1", port=TDS_PORT, user="app", password="app",
                                database="sluice", autocommit=True, login_timeout=10)
            seen.append(q(c, "SELECT @@SPID, @@SERVERNAME")[0])
            if i == 0 and n == 2:
                q(c, "INSERT INTO items (name) VALUES ('between')")
                seen.append(q(c, "SELECT @@SPID, @@SERVERNAME FROM items WITH (UPDLOCK) WHERE id = 1")[0])
            c.close()

    lines = run_client(classes, TDS_PORT, os.path.join(DIR, "pause"), between)
    judge(lines, rows, "through Sluice", len(rows) + 1)  # + the row written at pause 2
    calls = cursor_calls("primary", marks["primary"])
    fetches = [c for c in calls if c[1] == "sp_cursorfetch"]
    true(len(fetches) >= 8, f"the fetches reached the primary: {calls}")
    spids = {c[0] for c in calls}
    eq(len(spids), 1, f"every cursor call ran on one primary connection: {calls}")
    others = [s for s in seen if s[1] == "primary" and str(s[0]) not in spids]
    true(others, f"other sessions ran on other primary connections meanwhile: {seen}")
    for name in ("secondary1", "secondary2"):
        eq(cursor_calls(name, marks[name]), [], f"no cursor call on {name}")
    p = direct(BASE)
    q(p, "DELETE FROM items WHERE name = 'between'")
    p.close()


def raw_rpc(t, proc, params, columns=None):
    """One RPC call by proc id on the raw session T; its parsed answer."""
    t.send(bad.message(bad.PT_RPC, bad.rpc_payload([(proc, params, 0)]), t.packet_size))
    return t.response(columns)


def raw_open(t, sql):
    """sp_cursoropen (id 2) of a STATIC, read-only cursor: (the handle the client got, the
    answer's columns)."""
    out = 1  # fByRefValue: OUTPUT
    r = raw_rpc(t, 2, [bad.rpc_param("", bad.p_int(None), out), bad.rpc_param("", bad.p_nvarchar(sql)),
                       bad.rpc_param("", bad.p_int(8), out), bad.rpc_param("", bad.p_int(1), out),
                       bad.rpc_param("", bad.p_int(None), out)])
    eq(r.errors, [], f"sp_cursoropen {sql}")
    return r.return_values[0], r.columns


def raw_fetch(t, handle, ftype, rownum, nrows, columns):
    r = raw_rpc(t, 7, [bad.rpc_param("", bad.p_int(v)) for v in (handle, ftype, rownum, nrows)],
                columns)
    return r, [tuple(row[:2]) for row in r.rows]


def check_handles(rows):
    """A raw TDS client (tds_bad_input's) opens two cursors through Sluice: it is given Sluice's
    numbers 1 and 2, and its fetches reach the primary under the server's own numbers, which
    the client cannot use (8179 from Sluice; the server would say 16999); a closed cursor's
    number is unknown too, and the session goes on."""
    t = bad.TdsRaw(TDS_PORT)
    t.login()
    mark = log_mark("primary")
    h1, cols1 = raw_open(t, "SELECT id, name FROM items ORDER BY id")
    h2, cols2 = raw_open(t, "SELECT id, name FROM items WHERE id > 40 ORDER BY id")
    eq((h1, h2), (1, 2), "the client was given Sluice's numbers")
    _, got = raw_fetch(t, h1, 0x10, 3, 2, cols1)
    eq(got, rows[2:4], "cursor 1: ABSOLUTE 3, 2 rows")
    _, got = raw_fetch(t, h2, 0x01, 0, 3, cols2)
    eq(got, [r for r in rows if r[0] > 40][:3], "cursor 2: FIRST, 3 rows")
    server = sorted({int(c[2].split()[0]) for c in cursor_calls("primary", mark) if c[1] == "sp_cursorfetch"})
    eq(len(server), 2, f"the primary saw the fetches of two cursors: {server}")
    true(all(h > 1000 for h in server), f"under the server's own numbers, not 1 and 2: {server}")
    for h in server:
        r, _ = raw_fetch(t, h, 0x02, 0, 1, cols1)
        eq(r.error_numbers(), [8179], f"the server's number {h} is unknown to Sluice")
    _, got = raw_fetch(t, h1, 0x08, 0, 1, cols1)
    eq(got, rows[-1:], "cursor 1: LAST")
    r = raw_rpc(t, 9, [bad.rpc_param("", bad.p_int(h1))])
    eq(r.errors, [], "sp_cursorclose of cursor 1")
    r, _ = raw_fetch(t, h1, 0x02, 0, 1, cols1)
    eq(r.error_numbers(), [8179], "a closed cursor's number is unknown to Sluice")
    _, got = raw_fetch(t, h2, 0x02, 0, 1, cols2)
    eq(got, [r for r in rows if r[0] > 40][3:4], "cursor 2 still works")
    eq(t.query("SELECT 42"), [[42]], "the session goes on")
    t.close()


servers = tdslib.TdsServers(DIR, 100)


def main():
    checks = Checks()
    with tdslib.availability_group(servers, BASE, checks):
        p = direct(BASE)
        for i in range(ROWS):
            q(p, f"INSERT INTO items (name) VALUES ('row-{i + 1:02d}')")
        p.close()
        rows = table_rows()
        classes = compile_client()
        checks.run("1 gate: jTDS scrollable cursors straight to the test server", check_gate, classes,
                   rows)
        with Daemon(DIR, "tds", CONFIG, port=MYSQL_PORT, admin=ADMIN_PORT):
            time.sleep(1.0)
            checks.run("2 jTDS cursors through Sluice: rows, primary, one connection",
                       check_through_sluice, classes, rows)
            checks.run("3 handles are Sluice's; a closed one is refused", check_handles, rows)
    checks.finish()


if __name__ == "__main__":
    main()
