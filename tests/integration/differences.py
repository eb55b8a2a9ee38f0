#!/usr/bin/python3
"""differences: where a client sees a difference between a direct connection to the primary
and a connection through Sluice, and where one session hurts the others (issue #7, section 3).

One named check per bullet of the issue (a letter per bullet, as in the issue's order of the
brief): where it applies, the same thing runs directly against the primary
(SLUICE_PRIMARY_PORT) and through Sluice (SLUICE_PORT), and what the client sees is compared.
Where a statement ran is proven by the servers themselves: @@server_id (primary 1, replicas 2
and 3) or the servers' own status counters read directly from each server; never by Sluice's
metrics. Clients: PyMySQL, MySQLdb (libmariadb) and a raw-socket client (for
COM_RESET_CONNECTION, cursors, the binary protocol and commands larger than 16 MiB).

  a  COM_CHANGE_USER and COM_RESET_CONNECTION keep CONNECTION_ID()
  b  a cursor (CURSOR_TYPE_READ_ONLY) whose execution fails: the server's error, session goes on
  c  stored programs: cursors in a procedure and in BEGIN NOT ATOMIC, SIGNAL, several result
     sets, OUT parameters through the binary protocol (SERVER_PS_OUT_PARAMS)
  d  user variables set where Sluice cannot see (CALL, compound block, PREPARE/EXECUTE)
  e  catalog reads (SHOW CREATE TABLE, SHOW TABLE STATUS, SHOW INDEX, information_schema)
     answered by the primary
  f  SQL_AUTO_IS_NULL finds the row just inserted
  g  read-your-writes after COM_RESET_CONNECTION, and reads still reaching replicas
  h  a prepared SET time_zone = ? replayed with its value
  i  KILL of a session that never read from a replica; KILL QUERY after COM_CHANGE_USER
  j  an idle session whose primary restarted (outside and inside a transaction)
  k  a slow reader and a query a replica refuses with 1153 do not take the replica out of
     rotation for other sessions
  l  a write over the primary's max_allowed_packet gets the server's 1153; memory held for
     4 concurrent 60 MiB statements
  m  MARIADB_CLIENT_STMT_BULK_OPERATIONS advertised as the primary does (the Connector/J
     batch itself is connectorj_bulk.sh / BulkTest.java)

Tables and procedures are named diff_* in sluice_test and dropped at the end. Server globals
changed for a check (net_write_timeout, max_allowed_packet on replicas or primary) are
restored in a finally block. The checks that restart or pause servers (g, j, k) run last.
By hand, DIFF_ONLY=a,c runs only the checks of those letters.
"""

import os
import socket
import struct
import threading
import time

import MySQLdb
import pymysql

from itlib import (text_row, Checks, eq, true, env_int, env_str, HOST, PRIMARY_ID, REPLICA_IDS, topology,
                   sync_replicas, native_scramble, lenenc_int, parse_err, wait_until)

PORT = env_int("SLUICE_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
REPLICA_PORTS = {"replica1": env_int("SLUICE_REPLICA1_PORT"),
                 "replica2": env_int("SLUICE_REPLICA2_PORT")}
SERVER_PORTS = {"primary": PRIMARY_PORT, **REPLICA_PORTS}
SLUICE_MAX_PACKET = env_int("SLUICE_MAX_PACKET")
DB = "sluice_test"
MiB = 1 << 20
# The 70 MiB, unless Sluice's own max_packet_size (64 MiB in the test configuration)
# refuses that before any server sees it: then just under Sluice's limit, still far over the
# server limit set for the check.
BIG = min(70 * MiB, SLUICE_MAX_PACKET - MiB)
SERVER_LIMIT = 32 * MiB   # max_allowed_packet set on the server that must refuse BIG

WHERE = {"direct": PRIMARY_PORT, "sluice": PORT}


# ---------------------------------------------------------------------- client helpers ----

def connect(port=PORT, **kw):
    args = dict(host=HOST, port=port, user="app", password="app", database=DB,
                charset="utf8mb4", connect_timeout=5, read_timeout=60, write_timeout=60,
                autocommit=True)
    args.update(kw)
    return pymysql.connect(**args)


def mconnect(port=PORT, user="app", password="app"):
    return MySQLdb.connect(host=HOST, port=port, user=user, passwd=password, db=DB,
                           connect_timeout=5, autocommit=True)


def one(conn, sql, args=None):
    with conn.cursor() as c:
        c.execute(sql, args)
        return c.fetchone()


def rows(conn, sql, args=None):
    with conn.cursor() as c:
        c.execute(sql, args)
        return c.fetchall()


def all_results(conn, sql):
    """Every result set of SQL (CALL, compound blocks) as a list of row tuples; an error is
    returned as ('error', code) in place of the result it interrupted."""
    out = []
    with conn.cursor() as c:
        try:
            c.execute(sql)
            while True:
                out.append(tuple(c.fetchall()) if c.description else ("ok", c.rowcount))
                if not c.nextset():
                    break
        except pymysql.MySQLError as e:
            out.append(("error", e.args[0]))
    return out


def server_status(name, variable):
    """A global status counter read directly from one server."""
    with connect(SERVER_PORTS[name]) as c:
        return int(one(c, "SHOW GLOBAL STATUS LIKE %s", (variable,))[1])


def counters(variable):
    return {name: server_status(name, variable) for name in SERVER_PORTS}


def counter_delta(before, after):
    return {name: after[name] - before[name] for name in before}


def set_global(servers, sql):
    for name in servers:
        topology("sql", name, "-e", sql)


def expect_replica(server_id, what):
    true(int(server_id) in REPLICA_IDS,
         f"{what}: expected a replica's @@server_id {REPLICA_IDS}, got {server_id!r}")


def log_since(offset):
    log = os.environ.get("SLUICE_LOG")
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except (OSError, TypeError):
        return ""


def log_offset():
    try:
        return os.path.getsize(os.environ.get("SLUICE_LOG", ""))
    except OSError:
        return 0


def fresh_server_ids(n=12):
    """@@server_id of an autocommit read in N fresh sessions through Sluice, held open
    together (each session picks its replica in turn)."""
    held, ids = [], []
    try:
        for _ in range(n):
            c = connect()
            held.append(c)
            ids.append(int(one(c, "SELECT @@server_id")[0]))
    finally:
        for c in held:
            c.close()
    return ids


# ------------------------------------------------------------------ raw protocol client ----

CLIENT_LONG_PASSWORD = 0x1
CLIENT_LONG_FLAG = 0x4
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_MULTI_STATEMENTS = 0x10000
CLIENT_MULTI_RESULTS = 0x20000
CLIENT_PS_MULTI_RESULTS = 0x40000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_DEPRECATE_EOF = 0x1000000
MARIADB_CLIENT_STMT_BULK_OPERATIONS = 1 << 2   # in the MariaDB extended capabilities

SERVER_STATUS_IN_TRANS = 0x1
SERVER_STATUS_AUTOCOMMIT = 0x2
SERVER_MORE_RESULTS_EXISTS = 0x8
SERVER_STATUS_CURSOR_EXISTS = 0x40
SERVER_STATUS_LAST_ROW_SENT = 0x80
SERVER_PS_OUT_PARAMS = 0x1000
# Status bits a client acts on; the others (index use, session state changed) may
# legitimately differ between a replica and the primary.
STATUS_MASK = (SERVER_STATUS_IN_TRANS | SERVER_STATUS_AUTOCOMMIT | SERVER_MORE_RESULTS_EXISTS |
               SERVER_STATUS_CURSOR_EXISTS | SERVER_STATUS_LAST_ROW_SENT | SERVER_PS_OUT_PARAMS)

MYSQL_TYPE_LONGLONG = 0x08
MYSQL_TYPE_VAR_STRING = 0xFD

MAX_PAYLOAD = 0xFFFFFF


class Raw:
    """A MySQL client on a raw socket: native-password login, COM_QUERY and the binary
    protocol, responses decoded into comparable tuples, commands of any size."""

    def __init__(self, port, deprecate_eof=False, timeout=30.0, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        self.buf = bytearray()
        self.pos = 0
        self.deprecate_eof = deprecate_eof

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def recv_exact(self, n):
        while len(self.buf) - self.pos < n:
            if self.pos:
                del self.buf[:self.pos]
                self.pos = 0
            chunk = self.sock.recv(max(1 << 20, n - len(self.buf)))
            if not chunk:
                raise ConnectionError(f"connection closed by peer (wanted {n} bytes, have "
                                      f"{len(self.buf) - self.pos})")
            self.buf += chunk
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def read_packet(self):
        """One logical packet (continuations joined): (seq, payload)."""
        payload, seq = b"", 0
        while True:
            hdr = self.recv_exact(4)
            length = int.from_bytes(hdr[:3], "little")
            payload += self.recv_exact(length)
            seq = hdr[3]
            if length < MAX_PAYLOAD:
                return seq, payload

    def send_command(self, payload):
        """Sends a command of any size (split at 0xFFFFFF as the protocol says)."""
        out, seq, pos = [], 0, 0
        while True:
            chunk = payload[pos:pos + MAX_PAYLOAD]
            out.append(len(chunk).to_bytes(3, "little") + bytes([seq & 0xFF]) + chunk)
            pos += len(chunk)
            seq += 1
            if len(chunk) < MAX_PAYLOAD:
                break
        self.sock.sendall(b"".join(out))

    def login(self, user="app", password="app", database=DB):
        seq, greeting = self.read_packet()
        if greeting[:1] == b"\xff":
            raise AssertionError(f"greeting is an error: {parse_err(greeting)}")
        true(greeting[0] == 10, f"protocol version 10 expected, greeting starts {greeting[:8]!r}")
        pos = greeting.index(b"\0", 1) + 1
        self.server_version = greeting[1:pos - 1].decode()
        self.greeting_id = struct.unpack_from("<I", greeting, pos)[0]
        pos += 4
        nonce = greeting[pos:pos + 8]
        pos += 8 + 1
        caps = struct.unpack_from("<H", greeting, pos)[0]
        pos += 2 + 1 + 2
        caps |= struct.unpack_from("<H", greeting, pos)[0] << 16
        pos += 2
        auth_len = greeting[pos]
        pos += 1
        # MariaDB: without CLIENT_LONG_PASSWORD in the server's capabilities, the last 4 of
        # the 10 reserved bytes carry the extended (MariaDB) capabilities.
        self.mariadb_caps = 0 if caps & CLIENT_LONG_PASSWORD else \
            struct.unpack_from("<I", greeting, pos + 6)[0]
        pos += 10
        nonce += greeting[pos:pos + max(13, auth_len - 8)].rstrip(b"\0")
        self.server_caps = caps
        want = (CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_PROTOCOL_41 |
                CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH |
                CLIENT_MULTI_RESULTS | CLIENT_PS_MULTI_RESULTS | CLIENT_MULTI_STATEMENTS)
        if self.deprecate_eof:
            want |= CLIENT_DEPRECATE_EOF
        if database:
            want |= CLIENT_CONNECT_WITH_DB
        self.caps = want & caps
        true(bool(self.caps & CLIENT_DEPRECATE_EOF) == self.deprecate_eof,
             "server offers CLIENT_DEPRECATE_EOF")
        scramble = native_scramble(password.encode(), nonce[:20])
        payload = struct.pack("<IIB", self.caps, 1 << 24, 45) + b"\0" * 23
        payload += user.encode() + b"\0" + bytes([len(scramble)]) + scramble
        if database:
            payload += database.encode() + b"\0"
        payload += b"mysql_native_password\0"
        self.sock.sendall(len(payload).to_bytes(3, "little") + bytes([seq + 1]) + payload)
        _, reply = self.read_packet()
        if reply[:1] == b"\xff":
            raise AssertionError(f"login refused: {parse_err(reply)}")
        true(reply[:1] == b"\x00", f"expected OK after login, got {reply[:16]!r}")
        return self

    # ---- responses ----

    def _ok(self, p):
        affected, pos = lenenc_int(p, 1)
        last_id, pos = lenenc_int(p, pos)
        status, warnings = struct.unpack_from("<HH", p, pos)
        return affected, last_id, status, warnings

    def _eof_status(self, p):
        """Status of an EOF (or, with DEPRECATE_EOF, an OK with the 0xFE header)."""
        if self.deprecate_eof:
            return self._ok(p)[2]
        return struct.unpack_from("<H", p, 3)[0]

    def read_results(self, keep_rows=True, cursor=False):
        """Every result of one command until no SERVER_MORE_RESULTS_EXISTS: a list of
        ('ok', affected, last_id, status, warnings) / ('err', code, state, message) /
        ('rows', column names, row payloads (hex), status of the terminator)."""
        out = []
        while True:
            _, p = self.read_packet()
            if p[:1] == b"\xff":
                out.append(("err",) + parse_err(p))
                return out
            if p[:1] == b"\x00":
                affected, last_id, status, warnings = self._ok(p)
                out.append(("ok", affected, last_id, status & STATUS_MASK, warnings))
                if status & SERVER_MORE_RESULTS_EXISTS:
                    continue
                return out
            ncols, _ = lenenc_int(p, 0)
            names = []
            for _ in range(ncols):
                _, col = self.read_packet()
                pos = 0
                for _ in range(4):                    # catalog, schema, table, org_table
                    n, pos = lenenc_int(col, pos)
                    pos += n
                n, pos = lenenc_int(col, pos)
                names.append(col[pos:pos + n].decode())
            status, data = None, []
            if not self.deprecate_eof:
                _, p = self.read_packet()
                if p[:1] == b"\xff":
                    out.append(("rows", tuple(names), (), None))
                    out.append(("err",) + parse_err(p))
                    return out
                true(p[:1] == b"\xfe", f"expected EOF after column definitions, got {p[:8]!r}")
                status = self._eof_status(p)
                # A cursor opened by COM_STMT_EXECUTE: rows come by COM_STMT_FETCH. (Stored
                # programs with a cursor leave the flag set in text result sets too: there
                # it means nothing.)
                # A CALL executed with CURSOR_TYPE_READ_ONLY opens no cursor: its EOF says
                # CURSOR_EXISTS | MORE_RESULTS_EXISTS and the rows follow.
                if (cursor and status & SERVER_STATUS_CURSOR_EXISTS
                        and not status & SERVER_MORE_RESULTS_EXISTS):
                    out.append(("rows", tuple(names), (), status & STATUS_MASK))
                    if status & SERVER_MORE_RESULTS_EXISTS:
                        continue
                    return out
            while True:
                _, p = self.read_packet()
                if p[:1] == b"\xff":
                    out.append(("rows", tuple(names), tuple(data), None))
                    out.append(("err",) + parse_err(p))
                    return out
                if p[:1] == b"\xfe" and len(p) < MAX_PAYLOAD and (self.deprecate_eof or len(p) < 9):
                    status = self._eof_status(p)
                    break
                data.append(p.hex() if keep_rows else None)
            out.append(("rows", tuple(names), tuple(data), status & STATUS_MASK))
            if not status & SERVER_MORE_RESULTS_EXISTS:
                return out

    def query(self, sql):
        self.send_command(b"\x03" + (sql.encode() if isinstance(sql, str) else sql))
        return self.read_results()

    def scalar_rows(self, sql):
        """Text rows of a one-result query, decoded as tuples of str|None."""
        res = self.query(sql)
        true(len(res) == 1 and res[0][0] == "rows", f"{sql!r}: expected one result set, got {res!r}")
        return [text_row(bytes.fromhex(h), len(res[0][1])) for h in res[0][2]]

    def reset_connection(self):
        self.send_command(b"\x1f")
        return self.read_results()

    def prepare(self, sql):
        """COM_STMT_PREPARE: (statement id, columns, params) or ('err', ...)."""
        self.send_command(b"\x16" + sql.encode())
        _, p = self.read_packet()
        if p[:1] == b"\xff":
            return ("err",) + parse_err(p)
        stmt_id, ncols, nparams = struct.unpack_from("<IHH", p, 1)
        for count in (nparams, ncols):
            for _ in range(count):
                self.read_packet()
            if count and not self.deprecate_eof:
                self.read_packet()
        return stmt_id, ncols, nparams

    def execute(self, stmt_id, params=(), flags=0):
        """COM_STMT_EXECUTE with PARAMS as (type, bytes|None) pairs."""
        body = b"\x17" + struct.pack("<IBI", stmt_id, flags, 1)
        if params:
            bitmap = bytearray((len(params) + 7) // 8)
            for i, (_, v) in enumerate(params):
                if v is None:
                    bitmap[i // 8] |= 1 << (i % 8)
            body += bytes(bitmap) + b"\x01"
            body += b"".join(struct.pack("<BB", t, 0) for t, _ in params)
            for t, v in params:
                if v is None:
                    continue
                body += struct.pack("<q", v) if t == MYSQL_TYPE_LONGLONG else bytes([len(v)]) + v
        self.send_command(body)
        return self.read_results(cursor=bool(flags & 1))

    def close_stmt(self, stmt_id):
        self.send_command(b"\x19" + struct.pack("<I", stmt_id))


def raw(port, deprecate_eof=False, **kw):
    return Raw(port, deprecate_eof, **kw).login()


def lstr(s):
    return (MYSQL_TYPE_VAR_STRING, s.encode())


def llong(v):
    return (MYSQL_TYPE_LONGLONG, v)


def both_ways(fn, what):
    """Runs FN(port, deprecate_eof) directly and through Sluice, in both EOF modes; the
    responses must be the same. Returns Sluice's."""
    out = {}
    for deof in (False, True):
        mode = "DEPRECATE_EOF " + ("on" if deof else "off")
        got = {}
        for where, port in WHERE.items():
            try:
                got[where] = fn(port, deof)
            except (OSError, ConnectionError) as e:
                raise AssertionError(f"{what} ({where}, {mode}): {type(e).__name__}: {e}") from e
        eq(got["sluice"], got["direct"], f"{what} ({mode}): through Sluice vs directly")
        out[deof] = got["sluice"]
    return out


def still_alive(r, what):
    """The session answers a plain query after what came before."""
    eq(r.scalar_rows("SELECT 'alive'"), [("alive",)], f"{what}: the session goes on")


# ------------------------------------------------------------------------------ setup ----

PROCEDURES = {
    "diff_pc": "BEGIN DECLARE v INT; DECLARE c CURSOR FOR SELECT a FROM diff_t1 ORDER BY a; "
               "OPEN c; FETCH c INTO v; CLOSE c; SELECT v; END",
    "diff_p1": "BEGIN SET @query = 'x'; END",
    "diff_psig": "BEGIN SELECT 'before' AS b; SIGNAL SQLSTATE '45000' "
                 "SET MESSAGE_TEXT = 'diff signal', MYSQL_ERRNO = 1644; END",
    "diff_psig0": "BEGIN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'diff signal only'; END",
    "diff_pmulti": "BEGIN SELECT a FROM diff_t1 ORDER BY a; SELECT 'two' AS s, 2 AS n; "
                   "SELECT COUNT(*) AS c FROM diff_t1; END",
}
PROCEDURE_ARGS = {"diff_pout": "(IN a INT, OUT b INT, INOUT c VARCHAR(20))"}
PROCEDURES["diff_pout"] = "BEGIN SET b = a * 6; SET c = CONCAT(c, '-', a); SELECT a AS inside; END"


def setup():
    with connect(PRIMARY_PORT) as d, d.cursor() as c:
        cleanup_objects(c)
        c.execute("CREATE TABLE diff_t1 (a INT) ENGINE=InnoDB")
        c.execute("INSERT INTO diff_t1 VALUES (3), (1), (4), (5), (2)")
        for t in ("diff_f", "diff_g", "diff_j", "diff_big"):
            c.execute(f"CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64), "
                      "db VARCHAR(64), b LONGBLOB) ENGINE=InnoDB")
        for name, body in PROCEDURES.items():
            c.execute(f"CREATE PROCEDURE {name}{PROCEDURE_ARGS.get(name, '()')} {body}")
        sync_replicas(d, connect)


def cleanup_objects(c):
    for t in ("diff_t1", "diff_f", "diff_g", "diff_j", "diff_big", "diff_e"):
        c.execute(f"DROP TABLE IF EXISTS {t}")
    for name in PROCEDURES:
        c.execute(f"DROP PROCEDURE IF EXISTS {name}")


def cleanup():
    try:
        with connect(PRIMARY_PORT) as d, d.cursor() as c:
            cleanup_objects(c)
    except pymysql.MySQLError as e:
        print(f"     cleanup: {e}")


# ------------------------------------------------------------------------------ a ----

def test_a_change_user_keeps_connection_id():
    """MySQLdb's change_user (COM_CHANGE_USER), to the second user and back: directly
    CONNECTION_ID() keeps its value; through Sluice too, and so does the id the client got in
    the greeting (thread_id())."""
    seen = {}
    for where, port in WHERE.items():
        conn = mconnect(port)
        try:
            def cid():
                cur = conn.cursor()
                cur.execute("SELECT CONNECTION_ID()")
                return int(cur.fetchone()[0])
            ids, threads = [cid()], [conn.thread_id()]
            conn.change_user("app2", "app2", DB)
            ids.append(cid())
            threads.append(conn.thread_id())
            cur = conn.cursor()
            cur.execute("SELECT CURRENT_USER()")
            eq(cur.fetchone()[0], "app2@%", f"{where}: CURRENT_USER() after change_user")
            conn.change_user("app", "app", DB)
            ids.append(cid())
            threads.append(conn.thread_id())
        finally:
            conn.close()
        seen[where] = ids
        eq(len(set(threads)), 1, f"{where}: thread_id() across change_user {threads}")
        eq(len(set(ids)), 1, f"{where}: CONNECTION_ID() before / after change_user to app2 / "
                              f"after change_user back to app {ids}")
    print(f"     CONNECTION_ID() sequences: {seen}")


def test_a_reset_connection_keeps_connection_id():
    """COM_RESET_CONNECTION (raw bytes 01 00 00 00 1f): CONNECTION_ID() keeps its value."""
    seen = {}
    for where, port in WHERE.items():
        r = raw(port)
        try:
            ids = [r.scalar_rows("SELECT CONNECTION_ID()")[0][0]]
            for i in range(2):
                res = r.reset_connection()
                eq([x[0] for x in res], ["ok"], f"{where}: reply to COM_RESET_CONNECTION #{i + 1}")
                ids.append(r.scalar_rows("SELECT CONNECTION_ID()")[0][0])
        finally:
            r.close()
        seen[where] = ids
        eq(len(set(ids)), 1, f"{where}: CONNECTION_ID() before and after two resets {ids}")
    print(f"     CONNECTION_ID() sequences: {seen}")


# ------------------------------------------------------------------------------ b ----

def test_b_cursor_execute_error():
    """COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY of a statement that fails when it runs
    (NTILE(-1): 4024): the server's error reaches the client, and the session goes on (the
    same statement executed again without a cursor, then a plain query)."""
    sql = "SELECT NTILE(-1) OVER (ORDER BY a) FROM diff_t1"

    def run(port, deof):
        r = raw(port, deof)
        try:
            prep = r.prepare(sql)
            true(prep[0] != "err", f"prepare {sql!r}: {prep}")
            sid = prep[0]
            first = r.execute(sid, flags=1)
            again = r.execute(sid, flags=0)
            r.close_stmt(sid)
            still_alive(r, "after the failed cursor")
            return first, again
        finally:
            r.close()

    out = both_ways(run, "cursor execute that fails")
    for deof, (first, again) in out.items():
        eq(first[-1][:2], ("err", 4024), f"DEPRECATE_EOF {deof}: last result of the cursor execute")
        eq(again[-1][:2], ("err", 4024), f"DEPRECATE_EOF {deof}: the same execute without a cursor")


# ------------------------------------------------------------------------------ c ----

def text_program(sql):
    """COM_QUERY SQL in both EOF modes, directly and through Sluice: the same results, and the
    session goes on."""
    def run(port, deof):
        r = raw(port, deof)
        try:
            res = r.query(sql)
            still_alive(r, sql)
            return res
        finally:
            r.close()
    return both_ways(run, sql)


def test_c_call_procedure_with_cursor():
    out = text_program("CALL diff_pc()")
    res = out[False]
    eq([x[0] for x in res], ["rows", "ok"], "CALL diff_pc(): a result set, then the CALL's OK")
    eq(res[0][1:3], (("v",), (bytes([1]).hex() + b"1".hex(),)), "CALL diff_pc(): v = 1")
    # The same through PyMySQL, and prepared (binary protocol).
    for where, port in WHERE.items():
        with connect(port) as c:
            eq(all_results(c, "CALL diff_pc()"), [((1,),), ("ok", 0)], f"{where}: PyMySQL CALL diff_pc()")
            eq(one(c, "SELECT 'alive'"), ("alive",), f"{where}: PyMySQL session after CALL")

    def prepared(port, deof):
        r = raw(port, deof)
        try:
            prep = r.prepare("CALL diff_pc()")
            true(prep[0] != "err", f"prepare CALL diff_pc(): {prep}")
            res = r.execute(prep[0])
            res2 = r.execute(prep[0])
            # CURSOR_TYPE_READ_ONLY on a CALL: the server opens no cursor and sends the rows,
            # after an EOF that carries CURSOR_EXISTS (left by the procedure's own cursor).
            res3 = r.execute(prep[0], flags=1)
            r.close_stmt(prep[0])
            still_alive(r, "prepared CALL diff_pc()")
            return res, res2, res3
        finally:
            r.close()
    out = both_ways(prepared, "prepared CALL diff_pc() executed twice, then with a cursor flag")
    for deof, res in out.items():
        eq([x[0] for x in res[2]], ["rows", "ok"], f"DEPRECATE_EOF {deof}: CALL executed with "
                                                   "CURSOR_TYPE_READ_ONLY: results")
        eq(len(res[2][0][2]), 1, f"DEPRECATE_EOF {deof}: CALL with a cursor flag: rows sent")


def test_c_anonymous_block_with_cursor():
    sql = ("BEGIN NOT ATOMIC DECLARE v INT; DECLARE c CURSOR FOR SELECT a FROM diff_t1 ORDER BY a; "
           "OPEN c; FETCH c INTO v; CLOSE c; SELECT v; END")
    out = text_program(sql)
    eq([x[0] for x in out[False]], ["rows", "ok"], "BEGIN NOT ATOMIC with a cursor: results")
    for where, port in WHERE.items():
        with connect(port) as c:
            eq(all_results(c, sql), [((1,),), ("ok", 0)], f"{where}: PyMySQL BEGIN NOT ATOMIC")


def test_c_signal_in_procedure():
    out = text_program("CALL diff_psig()")
    eq([x[0] for x in out[False]], ["rows", "err"], "CALL diff_psig(): a result set, then the SIGNAL")
    eq(out[False][-1][1:3], (1644, "45000"), "CALL diff_psig(): the SIGNAL's error")
    out = text_program("CALL diff_psig0()")
    eq(out[True][-1][1:], (1644, "45000", "diff signal only"), "CALL diff_psig0(): the SIGNAL's error")
    text_program("BEGIN NOT ATOMIC SELECT 1 AS one; SIGNAL SQLSTATE '45000' "
                 "SET MESSAGE_TEXT = 'block signal'; END")


def test_c_procedure_several_result_sets():
    out = text_program("CALL diff_pmulti()")
    eq([x[0] for x in out[False]], ["rows", "rows", "rows", "ok"], "CALL diff_pmulti(): results")
    eq(len(out[True][0][2]), 5, "CALL diff_pmulti(): rows of the first result")
    for where, port in WHERE.items():
        with connect(port) as c:
            eq(all_results(c, "CALL diff_pmulti()"),
               [((1,), (2,), (3,), (4,), (5,)), (("two", 2),), ((5,),), ("ok", 0)],
               f"{where}: PyMySQL CALL diff_pmulti()")


def test_c_out_params_binary_protocol():
    """A prepared CALL with OUT and INOUT parameters: MariaDB sends the procedure's result
    set, then one with SERVER_PS_OUT_PARAMS carrying the parameters, then OK."""
    def run(port, deof):
        r = raw(port, deof)
        try:
            prep = r.prepare("CALL diff_pout(?, ?, ?)")
            true(prep[0] != "err", f"prepare: {prep}")
            eq(prep[2], 3, "parameters of the prepared CALL")
            res = r.execute(prep[0], [llong(7), (MYSQL_TYPE_LONGLONG, None), lstr("io")])
            r.close_stmt(prep[0])
            still_alive(r, "prepared CALL with OUT parameters")
            return res
        finally:
            r.close()
    out = both_ways(run, "prepared CALL diff_pout(?, ?, ?)")
    for deof, res in out.items():
        eq([x[0] for x in res], ["rows", "rows", "ok"], f"DEPRECATE_EOF {deof}: results")
        true(res[1][3] & SERVER_PS_OUT_PARAMS, f"DEPRECATE_EOF {deof}: second result has "
                                                f"SERVER_PS_OUT_PARAMS: {res[1]!r}")
        eq(res[1][1], ("b", "c"), f"DEPRECATE_EOF {deof}: OUT parameter columns")


# ------------------------------------------------------------------------------ d ----

def user_variable_after(setup_sql, variable, expected):
    for where, port in WHERE.items():
        with connect(port) as c:
            with c.cursor() as cur:
                cur.execute(f"SET {variable} = 'old'")
                for sql in setup_sql:
                    cur.execute(sql)
                    while cur.nextset():
                        pass
            eq(one(c, f"SELECT {variable}"), (expected,), f"{where}: SELECT {variable} after "
                                                           f"{'; '.join(setup_sql)}")
            if where == "sluice":
                # Only reads of user variables need the primary: others still reach a replica.
                expect_replica(one(c, "SELECT @@server_id")[0],
                               f"a read without user variables after {setup_sql[-1]}")


def test_d_call_sets_user_variable():
    user_variable_after(["CALL diff_p1()"], "@query", "x")


def test_d_compound_block_sets_user_variable():
    user_variable_after(["BEGIN NOT ATOMIC SET @diff_q2 = 'y'; END"], "@diff_q2", "y")


def test_d_prepare_execute_sets_user_variable():
    user_variable_after(["PREPARE diff_s FROM 'SET @diff_q3 = ''z'''", "EXECUTE diff_s",
                         "DEALLOCATE PREPARE diff_s"], "@diff_q3", "z")


# ------------------------------------------------------------------------------ e ----

E_STATE = {}


def e_setup():
    """SET DEFAULT_STORAGE_ENGINE=MyISAM; CREATE TABLE through Sluice: the primary's table is
    MyISAM, the replicas' (the DDL replicates without its engine) are not."""
    if E_STATE:
        return E_STATE
    with connect(PRIMARY_PORT) as d:
        with d.cursor() as c:
            c.execute("DROP TABLE IF EXISTS diff_e")
        sync_replicas(d, connect)
    s = connect()
    with s.cursor() as c:
        c.execute("SET DEFAULT_STORAGE_ENGINE=MyISAM")
        c.execute("CREATE TABLE diff_e (a INT, KEY ka (a))")
        c.execute("INSERT INTO diff_e VALUES (1), (2)")
    with connect(PRIMARY_PORT) as d:
        sync_replicas(d, connect)
        E_STATE["direct_create"] = one(d, "SHOW CREATE TABLE diff_e")[1]
    engines = {}
    for name, port in SERVER_PORTS.items():
        with connect(port) as c:
            engines[name] = one(c, "SELECT ENGINE FROM information_schema.TABLES "
                                   "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'diff_e'", (DB,))[0]
    print(f"     diff_e's engine on each server: {engines}")
    eq(engines["primary"], "MyISAM", "engine of diff_e on the primary")
    E_STATE["engines"] = engines
    E_STATE["session"] = s
    return E_STATE


def catalog_read(sql, counter, check_result):
    """SQL through Sluice, in the session that ran the DDL and in a fresh one: the result is
    the primary's (CHECK_RESULT), and the servers' COUNTER moved on the primary only."""
    st = e_setup()
    before = counters(counter)
    results = []
    for label, conn in (("the DDL's session", st["session"]), ("a fresh session", None)):
        c = conn or connect()
        try:
            got = rows(c, sql)
        finally:
            if conn is None:
                c.close()
        check_result(got, label)
        results.append(got)
    delta = counter_delta(before, counters(counter))
    eq(delta, {"primary": 2, "replica1": 0, "replica2": 0},
       f"{counter} on each server (read directly) after {sql!r} twice through Sluice")
    return results


def test_e_show_create_table():
    def check(got, label):
        true("ENGINE=MyISAM" in got[0][1], f"{label}: SHOW CREATE TABLE says "
                                            f"{got[0][1].split(')')[-1].strip()!r}, not ENGINE=MyISAM")
        eq(got[0][1], E_STATE["direct_create"], f"{label}: SHOW CREATE TABLE as directly")
    catalog_read("SHOW CREATE TABLE diff_e", "Com_show_create_table", check)


def test_e_show_table_status():
    def check(got, label):
        eq(got[0][1], "MyISAM", f"{label}: Engine of SHOW TABLE STATUS")
    catalog_read("SHOW TABLE STATUS LIKE 'diff_e'", "Com_show_table_status", check)


def test_e_show_index():
    e_setup()
    with connect(PRIMARY_PORT) as d:
        direct = [r[:5] for r in rows(d, "SHOW INDEX FROM diff_e")]

    def check(got, label):
        eq([r[:5] for r in got], direct, f"{label}: SHOW INDEX as directly")
    catalog_read("SHOW INDEX FROM diff_e", "Com_show_keys", check)


def test_e_information_schema():
    st = e_setup()
    sql = ("SELECT ENGINE, @@server_id FROM information_schema.TABLES "
           "WHERE TABLE_SCHEMA = 'sluice_test' AND TABLE_NAME = 'diff_e'")
    for label, c in (("the DDL's session", st["session"]), ("a fresh session", None)):
        conn = c or connect()
        try:
            eq(one(conn, sql), ("MyISAM", PRIMARY_ID), f"{label}: information_schema.TABLES "
                                                       "(ENGINE, @@server_id)")
        finally:
            if c is None:
                conn.close()


# ------------------------------------------------------------------------------ n ----

def test_n_read_only_transaction():
    """Inside START TRANSACTION READ ONLY: a temporary table is refused (1792), DDL commits the
    transaction implicitly and runs, the session is then out of the transaction and can write;
    as directly. (The session fuzzer found FLUSH there breaking a replica's replication.)"""
    seen = {}
    for where, port in WHERE.items():
        with connect(port, autocommit=True) as c, c.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS diff_n")
            out = []
            for q in ("START TRANSACTION READ ONLY", "CREATE TEMPORARY TABLE diff_n_tmp (a INT)",
                      "CREATE TABLE diff_n (a INT)", "SELECT @@in_transaction",
                      "INSERT INTO diff_n VALUES (1)", "SELECT COUNT(*) FROM diff_n",
                      "START TRANSACTION READ ONLY", "FLUSH STATUS", "SELECT @@in_transaction",
                      "DROP TABLE diff_n"):
                try:
                    cur.execute(q)
                    out.append((q, cur.fetchall()))
                except pymysql.MySQLError as e:
                    out.append((q, e.args[0]))
            seen[where] = out
    eq(seen["sluice"], seen["direct"], "statements in and after a read-only transaction")
    # A statement run on a replica that writes its binary log gives it a GTID of its own
    # (server_id 2 or 3), and its replication stops at the primary's next event.
    for name, port in REPLICA_PORTS.items():
        with connect(port) as r:
            pos = one(r, "SELECT @@gtid_binlog_pos")[0] or ""
            own = [g for g in pos.split(",") if g and g.split("-")[1] != str(PRIMARY_ID)]
            eq(own, [], f"{name}'s own GTIDs after FLUSH in a read-only transaction through Sluice")


# ------------------------------------------------------------------------------ f ----

def test_f_sql_auto_is_null():
    for where, port in WHERE.items():
        with connect(port) as c, c.cursor() as cur:
            cur.execute("SET SQL_AUTO_IS_NULL=1")
            cur.execute("INSERT INTO diff_f (v) VALUES (%s)", (f"f-{where}",))
            new_id = cur.lastrowid
            cur.execute("SELECT id, v FROM diff_f WHERE id IS NULL")
            eq(cur.fetchall(), ((new_id, f"f-{where}"),),
               f"{where}: SELECT ... WHERE id IS NULL right after the INSERT")


# ------------------------------------------------------------------------------ h ----

def test_h_prepared_set_time_zone():
    got = {}
    offset = log_offset()
    for where, port in WHERE.items():
        r = raw(port)
        try:
            prep = r.prepare("SET time_zone = ?")
            true(prep[0] != "err", f"{where}: prepare: {prep}")
            res = r.execute(prep[0], [lstr("+05:00")])
            eq([x[0] for x in res], ["ok"], f"{where}: execute of SET time_zone = ? ({res})")
            got[where] = r.scalar_rows("SELECT @@time_zone, @@server_id")
            r.close_stmt(prep[0])
        finally:
            r.close()
    eq(got["direct"], [("+05:00", str(PRIMARY_ID))], "directly: SELECT @@time_zone, @@server_id")
    # The value lives in the execute's binary parameters, not in the text: Sluice does not
    # replay `SET time_zone = ?` (the "?" would be a syntax error on a replica) but keeps the
    # session on the primary, which has the value (README: known differences).
    eq(got["sluice"][0], ("+05:00", str(PRIMARY_ID)),
       "through Sluice: @@time_zone after the prepared SET, read where it was set")
    # Replayed as text, `SET time_zone = ?` fails on the replica, and Sluice says so in its log.
    refused = [l for l in log_since(offset).splitlines() if "cannot take the session's state" in l]
    eq(refused, [], "Sluice log lines about a state replay a replica refused")


# ------------------------------------------------------------------------------ i ----

def test_i_kill_session_without_replica_reads():
    """KILL <id from the greeting> of a session that only wrote (never read from a replica):
    the killer gets OK, the victim's next statement fails; directly, the victim's thread ends.
    Through Sluice the session holds no backend thread between statements (transaction-mode
    pooling, issue #10): its pooled connection serves others and stays."""
    def app_threads():
        with connect(PRIMARY_PORT) as d:
            return {r[0] for r in rows(d, "SELECT ID FROM information_schema.PROCESSLIST "
                                          "WHERE USER = 'app' AND ID <> CONNECTION_ID()")}

    for where, port in WHERE.items():
        before = app_threads()
        victim = connect(port)
        with victim.cursor() as c:
            c.execute("INSERT INTO diff_f (v) VALUES ('i-victim')")
        # CONNECTION_ID() through Sluice is Sluice's own id: the victim's primary thread is
        # the one thread of user app that its login added.
        added = app_threads() - before
        pooled = where != "direct"
        if not pooled:
            eq(len(added), 1, f"{where}: threads on the primary added by the victim's login "
                              f"({added})")
        primary_thread = added.pop() if added else None
        target = victim.thread_id()
        with connect(port) as killer, killer.cursor() as c:
            try:
                c.execute(f"KILL {target}")
            except pymysql.MySQLError as e:
                raise AssertionError(f"{where}: KILL {target} of a session that never read from "
                                     f"a replica: {e.args}") from e
        if primary_thread is not None and not pooled:
            with connect(PRIMARY_PORT) as d:
                true(wait_until(lambda: one(d, "SELECT COUNT(*) FROM information_schema."
                                               "PROCESSLIST WHERE ID = %s",
                                            (primary_thread,))[0] == 0, 5),
                     f"{where}: the victim's primary thread {primary_thread} is gone after KILL")
        try:
            one(victim, "SELECT 1")
            raise AssertionError(f"{where}: the killed session still answers")
        except pymysql.MySQLError:
            pass
        finally:
            try:
                victim.close()
            except pymysql.Error:
                pass


def test_i_kill_query_after_change_user():
    """After COM_CHANGE_USER, KILL QUERY <id from the greeting> interrupts the statement the
    session's current primary thread runs (a SLEEP the hint keeps on the primary)."""
    outcome = {}
    for where, port in WHERE.items():
        victim = mconnect(port)
        try:
            cur = victim.cursor()
            cur.execute("SELECT @@server_id")      # through Sluice: opens the replica connection
            cur.fetchall()
            victim.change_user("app", "app", DB)
            target = victim.thread_id()
            result = {}

            def sleeper():
                t0 = time.monotonic()
                try:
                    c2 = victim.cursor()
                    c2.execute("/* sluice: primary */ SELECT SLEEP(20)")
                    result["value"] = c2.fetchall()
                except MySQLdb.MySQLError as e:
                    result["error"] = e.args[0]
                result["seconds"] = time.monotonic() - t0
            t = threading.Thread(target=sleeper)
            t.start()
            with connect(PRIMARY_PORT) as d:
                true(wait_until(lambda: one(d, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                                               "WHERE INFO LIKE %s", ("%SELECT SLEEP(20)",))[0] >= 1, 5),
                     f"{where}: the SLEEP runs on the primary")
            with connect(port) as killer, killer.cursor() as c:
                c.execute(f"KILL QUERY {target}")
            t.join(30)
            true(result.get("seconds", 99) < 10, f"{where}: KILL QUERY interrupted the SLEEP: {result}")
            outcome[where] = {k: v for k, v in result.items() if k != "seconds"}
            cur = victim.cursor()
            cur.execute("SELECT 'alive'")
            eq(cur.fetchall(), (("alive",),), f"{where}: the session after KILL QUERY")
        finally:
            victim.close()
    eq(outcome["sluice"], outcome["direct"], "what the interrupted statement returned")


# ------------------------------------------------------------------------------ m ----

def test_m_greeting_advertises_bulk():
    got = {}
    for where, port in WHERE.items():
        r = Raw(port)
        try:
            r.login()
            got[where] = bool(r.mariadb_caps & MARIADB_CLIENT_STMT_BULK_OPERATIONS)
        finally:
            r.close()
    true(got["direct"], "the primary advertises MARIADB_CLIENT_STMT_BULK_OPERATIONS")
    eq(got["sluice"], got["direct"], "MARIADB_CLIENT_STMT_BULK_OPERATIONS in Sluice's greeting")


# ------------------------------------------------------------------------------ l ----

def send_big(r, payload, results):
    """Sends PAYLOAD on a thread (a server may answer before it has read it all)."""
    def run():
        try:
            r.send_command(payload)
            results["sent"] = True
        except OSError as e:
            results["send_error"] = f"{type(e).__name__}: {e}"
    t = threading.Thread(target=run)
    t.start()
    return t


def big_statement(sql_head, size, tail="')"):
    return sql_head.encode() + b"x" * size + tail.encode()


def test_l_oversized_write_gets_server_error():
    """A write larger than the primary's max_allowed_packet (but under Sluice's own
    max_packet_size): the client gets the server's 1153 and the session goes on."""
    set_global(["primary"], f"SET GLOBAL max_allowed_packet = {SERVER_LIMIT}")
    try:
        # A pooled connection keeps the session value it was opened with (as on any pooler):
        # the idle ones are killed, so Sluice's next is opened under the new limit.
        with connect(PRIMARY_PORT) as d:
            for (tid,) in rows(d, "SELECT ID FROM information_schema.PROCESSLIST WHERE "
                                  "USER = 'app' AND COMMAND = 'Sleep' AND ID <> CONNECTION_ID()"):
                try:
                    with d.cursor() as c:
                        c.execute(f"KILL {tid}")
                except pymysql.MySQLError:
                    pass  # ended meanwhile
        seen = {}
        for where, port in WHERE.items():
            r = raw(port, timeout=60)
            try:
                sent = {}
                t = send_big(r, b"\x03" + big_statement("INSERT INTO diff_big (v, b) VALUES ('l', '", BIG), sent)
                try:
                    res = r.read_results()
                except (OSError, ConnectionError) as e:
                    res = [("closed", f"{type(e).__name__}: {e}")]
                t.join(60)
                try:
                    after = r.scalar_rows("SELECT 'alive'")
                except (OSError, ConnectionError, AssertionError) as e:
                    after = f"{type(e).__name__}: {e}"
                seen[where] = (res, after)
            finally:
                r.close()
        print(f"     {BIG // MiB} MiB INSERT with the primary's max_allowed_packet at "
              f"{SERVER_LIMIT // MiB} MiB: directly {seen['direct']}; through Sluice {seen['sluice']}")
        res, after = seen["sluice"]
        eq(res[0][:2], ("err", 1153), "through Sluice: the reply to the oversized INSERT")
        eq(after, [("alive",)], "through Sluice: the session after the server's 1153")
        with connect(PRIMARY_PORT) as d:
            eq(one(d, "SELECT COUNT(*) FROM diff_big WHERE v = 'l'")[0], 0, "rows written")
    finally:
        set_global(["primary"], "SET GLOBAL max_allowed_packet = 1073741824")


def rss_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def sanitized(pid):
    """True if the daemon's binary is built with AddressSanitizer."""
    with open(f"/proc/{pid}/exe", "rb") as f:
        return b"__asan_init" in f.read()


def test_l_concurrent_large_statements_memory():
    """4 clients each send a 60 MiB statement at once: Sluice's peak RSS (VmHWM, reset through
    /proc/PID/clear_refs before) grows by no more than 1.5x the statement size per client (a
    statement is streamed, or held at most once)."""
    pid = int(open(os.path.join(env_str("SLUICE_IT_DIR"), "sluice.pid")).read().split()[0])
    size = 60 * MiB
    with open(f"/proc/{pid}/clear_refs", "w") as f:   # resets VmHWM to the current RSS
        f.write("5")
    base = rss_kib(pid)
    results = [None] * 4

    def client(i):
        try:
            r = raw(PORT, timeout=120)
            try:
                results[i] = r.scalar_rows(big_statement("SELECT LENGTH('", size))
            finally:
                r.close()
        except Exception as e:  # noqa: BLE001 -- reported below
            results[i] = f"{type(e).__name__}: {e}"
    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    peak = rss_kib(pid)
    growth = (peak["VmHWM"] - base["VmRSS"]) * 1024
    print(f"     Sluice RSS before {base['VmRSS'] // 1024} MiB, peak during 4 x {size // MiB} MiB "
          f"statements {peak['VmHWM'] // 1024} MiB (growth {growth / MiB:.0f} MiB = "
          f"{growth / (4 * size):.2f} x the statement size per client), RSS after {peak['VmRSS'] // 1024} MiB")
    eq(results, [[(str(size),)]] * 4, "each client's SELECT LENGTH(...) answer")
    if sanitized(pid):
        print("     the daemon is built with AddressSanitizer (quarantine and redzones hold freed "
              "memory): numbers above are not held to the bound")
        return
    # Streamed, a statement costs Sluice a few buffers; held once, about its size. 1.5x per
    # client leaves room for the allocator; today's ~2-2.3x (a statement held whole more than
    # once) fails it.
    limit = int(4 * 1.5 * size)
    true(growth <= limit, f"Sluice's peak RSS grew by {growth / MiB:.0f} MiB for 4 x "
                          f"{size // MiB} MiB statements; at most {limit // MiB} MiB "
                          "(1.5x each) expected")


# ------------------------------------------------------------------------------ g ----

def test_g_read_your_writes_after_reset():
    """4 raw sessions through Sluice, each reset (COM_RESET_CONNECTION) at the start and
    after every 40 rounds; 200 rounds of INSERT then an immediate SELECT of the row on the
    same connection, with replica1's SQL thread stopped for the middle 100 rounds."""
    sessions = []
    try:
        for _ in range(4):
            r = raw(PORT)
            sessions.append(r)
            eq([x[0] for x in r.reset_connection()], ["ok"], "COM_RESET_CONNECTION reply")
        first = [int(r.scalar_rows("SELECT @@server_id")[0][0]) for r in sessions]
        print(f"     first read of each session after its reset: server_id {first}")
        true(2 in first, f"a session reads from replica1 (server_id 2): {first}")
        misses, errors, stopped = [], [], False
        try:
            for n in range(200):
                r = sessions[n % 4]
                if n == 50:
                    topology("stop-sql", "replica1")
                    stopped = True
                if n == 150:
                    topology("start-sql", "replica1")
                    stopped = False
                if n and n % 40 == 0:
                    for s in sessions:
                        s.reset_connection()
                v = f"g-{os.getpid()}-{n}"
                res = r.query(f"INSERT INTO diff_g (v) VALUES ('{v}')")
                if res[0][0] != "ok":
                    errors.append((n, res))
                    continue
                got = r.scalar_rows(f"SELECT COUNT(*), @@server_id FROM diff_g WHERE v = '{v}'")
                if got[0][0] != "1":
                    misses.append((n, got[0][1]))
        finally:
            if stopped:
                topology("start-sql", "replica1")
        eq(errors[:3], [], f"errors in 200 rounds ({len(errors)} in all)")
        eq(misses[:5], [], f"reads that missed the session's own write (round, server_id): "
                           f"{len(misses)} of 200")
    finally:
        for r in sessions:
            r.close()
        with connect(PRIMARY_PORT) as d:
            sync_replicas(d, connect)


def test_g_reads_reach_replicas_after_reset():
    r = raw(PORT)
    try:
        r.reset_connection()
        expect_replica(r.scalar_rows("SELECT @@server_id")[0][0], "first read after a reset")
        res = r.query("INSERT INTO diff_g (v) VALUES ('g-probe')")
        eq(res[0][0], "ok", f"INSERT after the reset: {res}")
        eq(r.scalar_rows("SELECT COUNT(*) FROM diff_g WHERE v = 'g-probe'"), [("1",)],
           "the row read right after the write")
        with connect(PRIMARY_PORT) as d:
            sync_replicas(d, connect)
        r.reset_connection()
        expect_replica(r.scalar_rows("SELECT @@server_id")[0][0],
                       "a read after a second reset, no write pending")
    finally:
        r.close()


# ------------------------------------------------------------------------------ k ----

def replicas_in_rotation_before(what):
    """Lets an earlier check's skip window (replica_retry_ms, 2 s in the test configuration)
    expire, then checks that fresh sessions read from both replicas."""
    time.sleep(2.5)
    ids = fresh_server_ids()
    eq(sorted(set(ids)), sorted(REPLICA_IDS), f"{what}: replicas fresh sessions read from "
                                              f"before ({ids})")


def probe_replica_in_rotation(server_id, offset, what):
    ids = fresh_server_ids()
    print(f"     {what}: fresh sessions read from server_id {ids}")
    true(server_id in ids, f"{what}: no fresh session read from server_id {server_id} ({ids})")
    skipped = [l for l in log_since(offset).splitlines() if "skipped for" in l]
    eq(skipped, [], f"{what}: Sluice log lines taking a replica out of rotation")


def test_k_slow_reader_does_not_skip_replica():
    """A client starts a large result on a replica and stops reading until the replica's
    net_write_timeout (2 s for the test) cuts the connection; then other sessions still read
    from that replica."""
    set_global(REPLICA_PORTS, "SET GLOBAL net_write_timeout = 2")
    try:
        replicas_in_rotation_before("slow reader")
        offset = log_offset()
        r = raw(PORT, rcvbuf=4096, timeout=60)
        try:
            victim = int(r.scalar_rows("SELECT @@server_id")[0][0])
            expect_replica(victim, "the slow client's first read")
            r.send_command(b"\x03SELECT REPEAT('x', 1000), seq FROM seq_1_to_300000")
            time.sleep(8)                       # not reading: the replica's write times out
            t0 = time.monotonic()
            try:
                res = r.read_results(keep_rows=False)
                res = [x if x[0] != "rows" else ("rows", x[1], f"{len(x[2])} rows", x[3]) for x in res]
            except (OSError, ConnectionError) as e:
                res = f"{type(e).__name__}: {e}"
            print(f"     slow client, after {time.monotonic() - t0:.1f}s of reading again: {res}")
        finally:
            r.close()
        probe_replica_in_rotation(victim, offset, "after a slow client's replica connection was cut")
    finally:
        set_global(REPLICA_PORTS, "SET GLOBAL net_write_timeout = 60")


def test_k_replica_1153_does_not_skip_replica():
    """A read larger than the replicas' max_allowed_packet (32 MiB for the test): the replica
    refuses it with 1153; other sessions still read from that replica."""
    set_global(REPLICA_PORTS, f"SET GLOBAL max_allowed_packet = {SERVER_LIMIT}")
    try:
        replicas_in_rotation_before("replica 1153")
        offset = log_offset()
        r = raw(PORT, timeout=60)
        try:
            victim = int(r.scalar_rows("SELECT @@server_id")[0][0])
            expect_replica(victim, "the big query's session: first read")
            sent = {}
            t = send_big(r, b"\x03" + big_statement("SELECT LENGTH('", BIG), sent)
            try:
                res = r.read_results()
            except (OSError, ConnectionError) as e:
                res = f"{type(e).__name__}: {e}"
            print(f"     {BIG // MiB} MiB read with the replicas' max_allowed_packet at "
                  f"{SERVER_LIMIT // MiB} MiB: the client got {res}")
            probe_replica_in_rotation(victim, offset, f"after a {BIG // MiB} MiB read refused by a replica")
        finally:
            r.close()
            t.join(60)
    finally:
        set_global(REPLICA_PORTS, "SET GLOBAL max_allowed_packet = 1073741824")


# ------------------------------------------------------------------------------ j ----

J_STATE = {}


def j_restart():
    """Two idle sessions through Sluice (one with a SET @v and a USE, one inside a
    transaction), then the primary is stopped and started again."""
    if J_STATE:
        return J_STATE
    plain = connect(database=None)
    with plain.cursor() as c:
        c.execute(f"USE {DB}")
        c.execute("SET @diff_v = 'kept'")
        c.execute("INSERT INTO diff_j (v, db) VALUES ('before', DATABASE())")
    in_trx = connect()
    with in_trx.cursor() as c:
        c.execute("BEGIN")
        c.execute("INSERT INTO diff_j (v, db) VALUES ('in-trx', DATABASE())")
    topology("stop", "primary")
    topology("start", "primary")
    J_STATE.update(plain=plain, in_trx=in_trx)
    return J_STATE


def test_j_idle_session_after_primary_restart():
    st = j_restart()
    conn = st["plain"]
    try:
        with conn.cursor() as c:
            c.execute("INSERT INTO diff_j (v, db) VALUES (@diff_v, DATABASE())")
    except pymysql.MySQLError as e:
        raise AssertionError(f"first statement after the primary restarted: {e.args}") from e
    with connect(PRIMARY_PORT) as d:
        eq(rows(d, "SELECT v, db FROM diff_j WHERE v <> 'before' AND v <> 'in-trx'"),
           (("kept", DB),), "row written after the restart (user variable and USE replayed)")
    eq(one(conn, "SELECT @diff_v, DATABASE()"), ("kept", DB), "session state read back")
    conn.close()


def test_j_transaction_after_primary_restart():
    st = j_restart()
    conn = st["in_trx"]
    try:
        with conn.cursor() as c:
            c.execute("INSERT INTO diff_j (v, db) VALUES ('in-trx-2', DATABASE())")
        raise AssertionError("a statement of a transaction whose primary restarted succeeded")
    except pymysql.MySQLError as e:
        print(f"     in a transaction after the restart: {e.args}")
        true(isinstance(e.args[0], int) and e.args[0] < 2000,
             f"a server-style error (not a client library's lost connection): {e.args}")
    try:
        with conn.cursor() as c:
            c.execute("ROLLBACK")
        eq(one(conn, "SELECT 'alive'"), ("alive",), "the session after the error")
    except pymysql.MySQLError as e:
        raise AssertionError(f"the session is not usable after the error: {e.args}") from e
    with connect(PRIMARY_PORT) as d:
        eq(one(d, "SELECT COUNT(*) FROM diff_j WHERE v LIKE 'in-trx%'")[0], 0,
           "nothing of the interrupted transaction was committed")
    conn.close()


# ------------------------------------------------------------------------------ main ----

class Selected:
    """DIFF_ONLY=a,c (by hand, never in CTest): runs only the checks of those letters."""

    def __init__(self, checks):
        self.checks = checks
        only = os.environ.get("DIFF_ONLY")
        self.letters = set(only.split(",")) if only else None

    def run(self, name, fn):
        if self.letters is None or name.split(":")[0] in self.letters:
            self.checks.run(name, fn)


def main():
    all_checks = Checks()
    checks = Selected(all_checks)
    setup()
    try:
        checks.run("a: COM_CHANGE_USER keeps CONNECTION_ID() (MySQLdb change_user)",
                   test_a_change_user_keeps_connection_id)
        checks.run("b: a cursor execute that fails gets the server's error, session goes on",
                   test_b_cursor_execute_error)
        checks.run("c: CALL of a procedure with a cursor", test_c_call_procedure_with_cursor)
        checks.run("c: BEGIN NOT ATOMIC with a cursor", test_c_anonymous_block_with_cursor)
        checks.run("c: SIGNAL in a procedure and a block", test_c_signal_in_procedure)
        checks.run("c: a procedure with several result sets", test_c_procedure_several_result_sets)
        checks.run("c: OUT parameters through the binary protocol", test_c_out_params_binary_protocol)
        checks.run("d: a user variable set by CALL", test_d_call_sets_user_variable)
        checks.run("d: a user variable set by BEGIN NOT ATOMIC", test_d_compound_block_sets_user_variable)
        checks.run("d: a user variable set by PREPARE/EXECUTE", test_d_prepare_execute_sets_user_variable)
        checks.run("e: SHOW CREATE TABLE answered by the primary", test_e_show_create_table)
        checks.run("e: SHOW TABLE STATUS answered by the primary", test_e_show_table_status)
        checks.run("e: SHOW INDEX answered by the primary", test_e_show_index)
        checks.run("e: information_schema.TABLES answered by the primary", test_e_information_schema)
        checks.run("f: SQL_AUTO_IS_NULL finds the row just inserted", test_f_sql_auto_is_null)
        checks.run("n: a read-only transaction: temporary table, DDL, FLUSH as directly",
                   test_n_read_only_transaction)
        checks.run("h: a prepared SET time_zone = ? is never replayed with its ?",
                   test_h_prepared_set_time_zone)
        checks.run("i: KILL of a session that never read from a replica",
                   test_i_kill_session_without_replica_reads)
        checks.run("i: KILL QUERY after COM_CHANGE_USER reaches the current backend thread",
                   test_i_kill_query_after_change_user)
        checks.run("m: MARIADB_CLIENT_STMT_BULK_OPERATIONS advertised as the primary does",
                   test_m_greeting_advertises_bulk)
        checks.run("l: a write over the primary's max_allowed_packet gets its 1153",
                   test_l_oversized_write_gets_server_error)
        checks.run("l: 4 concurrent 60 MiB statements: Sluice's memory",
                   test_l_concurrent_large_statements_memory)
        # COM_RESET_CONNECTION used to crash the daemon: these run after the others.
        checks.run("a: COM_RESET_CONNECTION keeps CONNECTION_ID()",
                   test_a_reset_connection_keeps_connection_id)
        checks.run("g: read-your-writes after COM_RESET_CONNECTION (replica1 paused)",
                   test_g_read_your_writes_after_reset)
        checks.run("g: reads reach replicas after COM_RESET_CONNECTION", test_g_reads_reach_replicas_after_reset)
        checks.run("k: a slow reader does not take its replica out of rotation",
                   test_k_slow_reader_does_not_skip_replica)
        checks.run("k: a read a replica refuses with 1153 does not take it out of rotation",
                   test_k_replica_1153_does_not_skip_replica)
        checks.run("j: an idle session runs its next statement after the primary restarted",
                   test_j_idle_session_after_primary_restart)
        checks.run("j: in a transaction after the primary restarted: a clear error, session usable",
                   test_j_transaction_after_primary_restart)
    finally:
        for key in ("session",):
            if key in E_STATE:
                E_STATE[key].close()
        cleanup()
    all_checks.finish()


if __name__ == "__main__":
    main()
