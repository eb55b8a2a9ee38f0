#!/usr/bin/python3
"""raw_commands: commands that no client library sends (or sends only one way), written as
raw packets after a mysql_native_password login (itlib.Raw), through Sluice and, where the
answer is the server's, directly to the primary for comparison (issue #7, section 1).

 (a) COM_SHUTDOWN, COM_BINLOG_DUMP, COM_REGISTER_SLAVE, COM_BINLOG_DUMP_GTID, COM_DAEMON,
     COM_TIME and unknown bytes -> ERR 1047, and the same session answers a query after it;
     the primary is still up and runs no binlog dump for the test user
 (b) COM_RESET_CONNECTION as the 5 bytes 01 00 00 00 1f -> OK; user variables and prepared
     statements gone (as directly); 20 resets pipelined; the daemon stays up
 (c) COM_SET_OPTION: 0 and 1 answered as directly, a bad value gets the server's error
 (d) COM_FIELD_LIST: same columns as directly; a missing table gets the server's 1146
 (e) COM_STMT_EXECUTE / FETCH / RESET of a closed statement id, COM_STMT_FETCH without a
     cursor: the same errors as directly
 (f) COM_PING, COM_INIT_DB (good and missing database), COM_QUIT
 (g) LOAD DATA LOCAL answered with a file packet of a wrong sequence id: the server's own
     ERR 1156 (same bytes as directly); through Sluice the session then closes, and the
     primary connection that was mid-LOAD is closed (no thread left on the primary)
After the cases, fresh sessions through Sluice still answer.
"""

import os
import struct
import time

import pymysql

from itlib import (Checks, Raw, eq, true, env_int, env_str, lenenc_int, parse_err,
                   raw_select_1)

PORT = env_int("SLUICE_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
IT_DIR = env_str("SLUICE_IT_DIR")
SIDES = (("direct", PRIMARY_PORT), ("sluice", PORT))

COM_FIELD_LIST = 0x04
COM_STMT_PREPARE = 0x16
COM_STMT_EXECUTE = 0x17
COM_STMT_CLOSE = 0x19
COM_STMT_RESET = 0x1a
COM_SET_OPTION = 0x1b
COM_STMT_FETCH = 0x1c


def direct_conn():
    return pymysql.connect(host="127.0.0.1", port=PRIMARY_PORT, user="app", password="app",
                           database="sluice_test", autocommit=True, connect_timeout=5,
                           read_timeout=15)


def login(port, database="sluice_test"):
    r = Raw(port)
    r.login(database=database)
    return r


def reply(r):
    """One response packet: ('ok' | 'eof' | 'err' | 'other', payload or (code, state, msg))."""
    seq, p = r.read_packet()
    if p[:1] == b"\xff":
        return "err", parse_err(p), seq
    if p[:1] == b"\x00":
        return "ok", p, seq
    if p[:1] == b"\xfe" and len(p) < 9:
        return "eof", p, seq
    return "other", p, seq


def command(r, payload):
    r.send_packet(payload, 0)
    return reply(r)


def expect_usable(r, what, n=7):
    kind, rows = r.query(f"SELECT {n} + 1")
    eq((kind, rows), ("rows", [(str(n + 1),)]), f"{what}: a query on the same session")


def daemon_alive():
    """Sluice's pid (from the fixture's pid file) is still running."""
    path = os.path.join(IT_DIR, "sluice.pid")
    with open(path) as f:
        pid = int(f.read().strip())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise AssertionError(f"the Sluice daemon (pid {pid} from {path}) is gone")


def setup():
    c = direct_conn()
    try:
        with c.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS raw_fields")
            cur.execute("CREATE TABLE raw_fields (id INT PRIMARY KEY, name VARCHAR(30) NOT NULL, "
                        "amount DECIMAL(8,2), created DATETIME, note TEXT)")
            cur.execute("SELECT @@gtid_binlog_pos")
            pos = cur.fetchone()[0]
    finally:
        c.close()
    for port in (env_int("SLUICE_REPLICA1_PORT"), env_int("SLUICE_REPLICA2_PORT")):
        rc = pymysql.connect(host="127.0.0.1", port=port, user="app", password="app")
        try:
            with rc.cursor() as cur:
                cur.execute("SELECT MASTER_GTID_WAIT(%s, 30)", (pos,))
                eq(cur.fetchone()[0], 0, f"replica on {port} caught up with {pos}")
        finally:
            rc.close()


# ---- (a) refused commands ----

REFUSED = [
    ("COM_SHUTDOWN", b"\x08\x00"),
    ("COM_BINLOG_DUMP", b"\x12" + struct.pack("<IHI", 4, 0, 4242) + b"mysql-bin.000001"),
    ("COM_REGISTER_SLAVE", b"\x15" + struct.pack("<I", 4243) + b"\x00\x00\x00" +
     struct.pack("<HII", 3306, 0, 0)),
    ("COM_BINLOG_DUMP_GTID", b"\x1e" + struct.pack("<HII", 0, 4244, 0) +
     struct.pack("<QI", 4, 0)),
    ("COM_DAEMON", b"\x1d"),
    ("COM_TIME", b"\x0f"),
    ("unknown command 0xee", b"\xee\x01\x02"),
    ("unknown command 0x40", b"\x40"),
]
# Safe to send to the primary itself for comparison (the others would stop it or make the
# session a replication stream).
SAFE_TO_COMPARE = {"COM_DAEMON", "COM_TIME", "unknown command 0xee", "unknown command 0x40"}


def case_a_refused(name, payload):
    r = login(PORT)
    try:
        kind, body, seq = command(r, payload)
        true(kind == "err", f"{name}: expected ERR 1047, got {kind} {body!r:.80}")
        eq(body[0], 1047, f"{name}: error code (message {body[2]!r})")
        eq(seq, 1, f"{name}: sequence id of the ERR")
        expect_usable(r, f"after {name}")
    finally:
        r.close()
    if name in SAFE_TO_COMPARE:
        d = login(PRIMARY_PORT)
        try:
            dkind, dbody, _ = command(d, payload)
        finally:
            d.close()
        eq((dkind, dbody[:2]), (kind, body[:2]), f"{name}: (kind, code, SQLSTATE) direct vs Sluice")
    # Nothing reached the primary: it runs, and no binlog dump or replica registration of
    # the test user exists there.
    c = direct_conn()
    try:
        with c.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                        "WHERE USER = 'app' AND COMMAND LIKE 'Binlog Dump%'")
            eq(cur.fetchone()[0], 0, f"{name}: binlog dump threads of user app on the primary")
            cur.execute("SHOW SLAVE HOSTS")
            ids = [row[0] for row in cur.fetchall()]
            true(not {4242, 4243, 4244} & set(ids),
                 f"{name}: the primary lists a replica registered by the test: {ids}")
    finally:
        c.close()
    daemon_alive()


# ---- (b) COM_RESET_CONNECTION ----

def prepare(r, sql):
    """COM_STMT_PREPARE; returns the statement id (reads the whole response, no DEPRECATE_EOF)."""
    r.send_packet(bytes([COM_STMT_PREPARE]) + sql.encode(), 0)
    _, p = r.read_packet()
    if p[:1] == b"\xff":
        raise AssertionError(f"prepare {sql!r}: {parse_err(p)}")
    true(p[:1] == b"\x00", f"prepare {sql!r}: unexpected {p[:16]!r}")
    stmt_id, ncols, nparams = struct.unpack_from("<IHH", p, 1)
    for count in (nparams, ncols):
        if count:
            for _ in range(count):
                r.read_packet()
            _, eof = r.read_packet()
            true(eof[:1] == b"\xfe", f"prepare {sql!r}: expected EOF, got {eof[:8]!r}")
    return stmt_id


def execute_one_longlong(stmt_id, value, cursor=0):
    """COM_STMT_EXECUTE payload for a statement with one BIGINT parameter."""
    return (struct.pack("<BIBI", COM_STMT_EXECUTE, stmt_id, cursor, 1) + b"\x00\x01" +
            struct.pack("<Hq", 0x08, value))


def read_result_or_err(r):
    """A binary or text result set (rows counted) or an ERR; ('rows', n) / ('err', err) /
    ('ok', payload)."""
    _, p = r.read_packet()
    if p[:1] == b"\xff":
        return "err", parse_err(p)
    if p[:1] == b"\x00":
        return "ok", p
    ncols, _ = lenenc_int(p, 0)
    for _ in range(ncols):
        r.read_packet()
    r.read_packet()                                       # EOF after the columns
    n = 0
    while True:
        _, p = r.read_packet()
        if p[:1] == b"\xfe" and len(p) < 9:
            return "rows", n
        if p[:1] == b"\xff":
            return "err", parse_err(p)
        n += 1


def reset_scenario(port):
    r = login(port)
    try:
        eq(r.query("SET @raw_v = 5")[0], "ok", "SET @raw_v")
        stmt = prepare(r, "SELECT ? + 1")
        r.send_packet(execute_one_longlong(stmt, 41), 0)
        eq(read_result_or_err(r), ("rows", 1), "execute before the reset")
        kind, body, seq = command(r, b"\x1f")
        true(kind == "ok", f"COM_RESET_CONNECTION: expected OK, got {kind} {body!r:.120}")
        eq(seq, 1, "sequence id of the reset's OK")
        after_var = r.query("SELECT @raw_v IS NULL, 1")
        r.send_packet(execute_one_longlong(stmt, 41), 0)
        old = read_result_or_err(r)
        if old[0] == "err":
            old = ("err", old[1][:2])
        again = prepare(r, "SELECT ? + 2")
        r.send_packet(execute_one_longlong(again, 40), 0)
        new = read_result_or_err(r)
        return after_var, old, new
    finally:
        r.close()


def case_b_reset_connection():
    d = reset_scenario(PRIMARY_PORT)
    s = reset_scenario(PORT)
    eq(d[0], ("rows", [("1", "1")]), "direct: @raw_v after the reset")
    eq(s, d, "(user variable, old statement id, new statement) after COM_RESET_CONNECTION: "
             "sluice vs direct")
    true(d[1][0] == "err" and d[1][1][0] == 1243,
         f"direct: the old statement id after the reset: {d[1]}")
    daemon_alive()


def case_b_reset_minimal():
    """Exactly the 5 bytes of the crash report, right after login."""
    r = login(PORT)
    try:
        r.sock.sendall(bytes([0x01, 0x00, 0x00, 0x00, 0x1f]))
        kind, body, _ = reply(r)
        true(kind == "ok", f"expected OK, got {kind} {body!r:.120}")
        expect_usable(r, "after the raw reset")
    finally:
        r.close()
    daemon_alive()
    raw_select_1(PORT, "fresh session after the raw COM_RESET_CONNECTION")


def case_b_reset_pipelined():
    """20 resets in one write, each with a query behind it: 40 answers in order."""
    r = login(PORT)
    try:
        wire = b""
        for i in range(20):
            wire += bytes([1, 0, 0, 0, 0x1f])
            q = f"SELECT {i}".encode()
            wire += struct.pack("<I", len(q) + 1)[:3] + b"\x00" + b"\x03" + q
        r.sock.sendall(wire)
        for i in range(20):
            kind, body, _ = reply(r)
            true(kind == "ok", f"reset #{i + 1}: expected OK, got {kind} {body!r:.120}")
            eq(r.read_response(), ("rows", [(str(i),)]), f"SELECT {i} after reset #{i + 1}")
    finally:
        r.close()
    daemon_alive()


# ---- (c) COM_SET_OPTION ----

def set_option_scenario(port):
    r = login(port)
    try:
        out = []
        for value in (1, 0, 2, 0xffff):                               # ON, OFF, bad, bad
            kind, body, _ = command(r, struct.pack("<BH", COM_SET_OPTION, value))
            out.append((value, kind, body[:2] if kind == "err" else None))
        kind, body, _ = command(r, bytes([COM_SET_OPTION]))           # no option value
        out.append(("none", kind, body[:2] if kind == "err" else None))
        expect_usable(r, "after COM_SET_OPTION")
        return out
    finally:
        r.close()


def case_c_set_option():
    d = set_option_scenario(PRIMARY_PORT)
    s = set_option_scenario(PORT)
    print(f"     COM_SET_OPTION direct: {d}")
    print(f"     COM_SET_OPTION sluice: {s}")
    true(any(k == "err" for _, k, _ in d[2:4]), f"direct: a bad option value was accepted: {d}")
    eq(s, d, "COM_SET_OPTION 1, 0, 2, 0xffff, no value: sluice vs direct")


# ---- (d) COM_FIELD_LIST ----

def field_list(port, table):
    r = login(port)
    try:
        r.send_packet(bytes([COM_FIELD_LIST]) + table.encode() + b"\x00", 0)
        names = []
        while True:
            _, p = r.read_packet()
            if p[:1] == b"\xff":
                result = ("err", parse_err(p)[:2])
                break
            if p[:1] == b"\xfe" and len(p) < 9:
                result = ("fields", names)
                break
            pos = 0
            for _ in range(4):                        # catalog, schema, table, org_table
                n, pos = lenenc_int(p, pos)
                pos += n
            n, pos = lenenc_int(p, pos)
            names.append(p[pos:pos + n].decode())
        expect_usable(r, f"after COM_FIELD_LIST {table}")
        return result
    finally:
        r.close()


def case_d_field_list():
    for table in ("raw_fields", "raw_no_such_table"):
        d = field_list(PRIMARY_PORT, table)
        s = field_list(PORT, table)
        eq(s, d, f"COM_FIELD_LIST {table}: sluice vs direct")
    eq(d, ("err", (1146, "42S02")), "COM_FIELD_LIST of a missing table, direct")
    eq(field_list(PRIMARY_PORT, "raw_fields"),
       ("fields", ["id", "name", "amount", "created", "note"]), "COM_FIELD_LIST raw_fields, direct")


# ---- (e) statements that do not exist (any more) ----

def closed_statement_scenario(port):
    r = login(port)
    try:
        out = []
        stmt = prepare(r, "SELECT ? + 3")
        r.send_packet(struct.pack("<BI", COM_STMT_CLOSE, stmt), 0)      # no answer
        r.send_packet(execute_one_longlong(stmt, 1), 0)
        kind, body = read_result_or_err(r)
        out.append(("execute closed", kind, body[:2] if kind == "err" else body))
        r.send_packet(struct.pack("<BII", COM_STMT_FETCH, stmt, 5), 0)
        kind, body, _ = reply(r)
        out.append(("fetch closed", kind, body[:2] if kind == "err" else None))
        r.send_packet(struct.pack("<BI", COM_STMT_RESET, stmt), 0)
        kind, body, _ = reply(r)
        out.append(("reset closed", kind, body[:2] if kind == "err" else None))
        r.send_packet(struct.pack("<BI", COM_STMT_CLOSE, stmt), 0)      # closed twice: no answer
        # A statement executed without a cursor, then fetched.
        live = prepare(r, "SELECT ? + 4")
        r.send_packet(execute_one_longlong(live, 1), 0)
        eq(read_result_or_err(r), ("rows", 1), "execute without a cursor")
        r.send_packet(struct.pack("<BII", COM_STMT_FETCH, live, 5), 0)
        kind, body, _ = reply(r)
        out.append(("fetch without cursor", kind, body[:2] if kind == "err" else None))
        expect_usable(r, "after the statement errors")
        return out
    finally:
        r.close()


def case_e_closed_statements():
    d = closed_statement_scenario(PRIMARY_PORT)
    s = closed_statement_scenario(PORT)
    print(f"     closed statements direct: {d}")
    print(f"     closed statements sluice: {s}")
    eq(d[0][1:], ("err", (1243, "HY000")), "direct: execute of a closed statement")
    eq(s, d, "execute/fetch/reset of a closed statement, fetch without a cursor: sluice vs direct")


# ---- (f) COM_PING, COM_INIT_DB, COM_QUIT ----

def init_db_scenario(port):
    r = login(port)
    try:
        out = [command(r, b"\x0e")[0]]                                  # COM_PING
        out.append(command(r, b"\x02sbtest")[0])
        out.append(r.query("SELECT DATABASE()"))
        kind, body, _ = command(r, b"\x02raw_no_such_db")
        out.append((kind, body[:2] if kind == "err" else None))
        out.append(r.query("SELECT DATABASE()"))
        r.send_packet(b"\x01", 0)                                       # COM_QUIT
        out.append(r.closed_by_peer(5))
        return out
    finally:
        r.close()


def case_f_ping_init_db_quit():
    d = init_db_scenario(PRIMARY_PORT)
    s = init_db_scenario(PORT)
    eq(d, ["ok", "ok", ("rows", [("sbtest",)]), ("err", (1049, "42000")),
           ("rows", [("sbtest",)]), True], "direct: ping, init_db, missing db, quit")
    eq(s, d, "ping, init_db, missing db, quit: sluice vs direct")


CLIENT_LOCAL_FILES = 0x80
LOAD_LOCAL = (b"\x03LOAD DATA LOCAL INFILE 'raw.csv' INTO TABLE sluice_test.raw_fields "
              b"FIELDS TERMINATED BY ','")


def infile_out_of_order(port):
    r = Raw(port)
    try:
        r.login(database="sluice_test", caps_extra=CLIENT_LOCAL_FILES)
        r.send_packet(LOAD_LOCAL, 0)
        seq, p = r.read_packet()
        eq((seq, p[:1]), (1, b"\xfb"), "the server asks for the file")
        r.send_packet(b"9,x\n", 9)  # the file's first packet must have sequence id 2
        seq, p = r.read_packet()
        eq(p[:1], b"\xff", f"an ERR answers the packet out of order (got {p[:40]!r})")
        return seq, parse_err(p), r.closed_by_peer(timeout=1.0)
    finally:
        r.close()


def load_threads():
    c = direct_conn()
    try:
        with c.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                        "WHERE INFO LIKE 'LOAD DATA LOCAL INFILE ''raw.csv''%'")
            return cur.fetchone()[0]
    finally:
        c.close()


def case_g_infile_out_of_order():
    seq_d, err_d, _ = infile_out_of_order(PRIMARY_PORT)
    eq((seq_d, err_d[:2]), (2, (1156, "08S01")), "directly: ERR 1156 at sequence id 2")
    seq_s, err_s, closed = infile_out_of_order(PORT)
    eq((seq_s, err_s), (seq_d, err_d), "through Sluice: the server's own ERR, same bytes")
    true(closed, "through Sluice: the session closes after it")
    daemon_alive()
    # The direct connection above may linger in the server a moment; Sluice's must go too.
    for _ in range(50):
        if load_threads() == 0:
            break
        time.sleep(0.1)
    eq(load_threads(), 0, "no LOAD DATA LOCAL left running on the primary")


def cleanup():
    c = direct_conn()
    try:
        with c.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS raw_fields")
    finally:
        c.close()


def main():
    checks = Checks()
    if not checks.run("set-up: table raw_fields, replicas caught up", setup):
        checks.finish()
    for name, payload in REFUSED:
        checks.run(f"(a) {name} -> 1047, session usable", case_a_refused, name, payload)
    checks.run("(b) COM_RESET_CONNECTION: 5 raw bytes after login -> OK, daemon up",
               case_b_reset_minimal)
    checks.run("(b) COM_RESET_CONNECTION: variables and statements gone as directly",
               case_b_reset_connection)
    checks.run("(b) COM_RESET_CONNECTION: 20 pipelined, each with a query", case_b_reset_pipelined)
    checks.run("(c) COM_SET_OPTION: good and bad values as directly", case_c_set_option)
    checks.run("(d) COM_FIELD_LIST: columns and missing table as directly", case_d_field_list)
    checks.run("(e) closed statement ids, fetch without cursor: errors as directly",
               case_e_closed_statements)
    checks.run("(f) COM_PING, COM_INIT_DB, COM_QUIT as directly", case_f_ping_init_db_quit)
    checks.run("(g) LOAD DATA LOCAL file packet out of order: 1156, session and its backend "
               "closed", case_g_infile_out_of_order)
    checks.run("fresh sessions still answer", raw_select_1, PORT, "fresh session at the end")
    checks.run("clean-up", cleanup)
    checks.finish()


if __name__ == "__main__":
    main()
