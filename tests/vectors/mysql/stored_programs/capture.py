#!/usr/bin/python3
"""Captures the responses MariaDB sends for stored programs (issue #7, section 3): cursors in
procedures and anonymous blocks, SIGNAL, several result sets, OUT parameters through the
binary protocol. Golden vectors for the response scanner's table tests.

Run against the primary directly, never through Sluice:

    eval "$(tests/fixtures/stack.sh env NN)"       # or: eval "$(tests/fixtures/topology.sh env)"
    /usr/bin/python3 tests/vectors/mysql/stored_programs/capture.py

It connects to 127.0.0.1:$SLUICE_TOPO_PORT (default 3307) as app/app, database sluice_test.
Same file format as ../capture.py: one packet per line, hex, the 4-byte header included; '#'
lines are comments (what the command was, the server version, the client's capabilities, the
procedure's definition). Each vector is captured twice: eof_* without and deof_* with
CLIENT_DEPRECATE_EOF. A file holds the server's whole response to one command: the reader
below follows it packet by packet to its end (SERVER_MORE_RESULTS_EXISTS, ERR, and a cursor
only where the execute asked for one), so no timing decides where it stops.

The procedures (vec_sp_*) are created for the run and dropped at its end; they read a
TEMPORARY table, so nothing else is left on the server.
"""
import hashlib
import os
import socket
import struct
import sys

HOST, PORT = "127.0.0.1", int(os.environ.get("SLUICE_TOPO_PORT", "3307"))
OUT = os.path.dirname(os.path.abspath(__file__))

# LONG_PASSWORD | LONG_FLAG | CONNECT_WITH_DB | LOCAL_FILES | PROTOCOL_41 | TRANSACTIONS |
# SECURE_CONNECTION | MULTI_STATEMENTS | MULTI_RESULTS | PS_MULTI_RESULTS | PLUGIN_AUTH
# (+ DEPRECATE_EOF): what ../capture.py's own client asks for.
CAPS = 0x1 | 0x4 | 0x8 | 0x80 | 0x200 | 0x2000 | 0x8000 | 0x10000 | 0x20000 | 0x40000 | 0x80000
DEPRECATE_EOF = 0x1000000
MORE_RESULTS = 0x8
CURSOR_EXISTS = 0x40

PROCEDURES = {
    "vec_sp_cursor": "() BEGIN DECLARE v INT; DECLARE c CURSOR FOR SELECT id FROM vec_t ORDER BY id; "
                     "OPEN c; FETCH c INTO v; CLOSE c; SELECT v; END",
    "vec_sp_cursor_loop": "() BEGIN DECLARE done INT DEFAULT 0; DECLARE v, total INT DEFAULT 0; "
                          "DECLARE c CURSOR FOR SELECT id FROM vec_t ORDER BY id; "
                          "DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1; OPEN c; "
                          "l: LOOP FETCH c INTO v; IF done THEN LEAVE l; END IF; "
                          "SET total = total + v; END LOOP; CLOSE c; SELECT total; "
                          "SELECT id, name FROM vec_t ORDER BY id; END",
    "vec_sp_cursor_not_found": "() BEGIN DECLARE v INT; DECLARE c CURSOR FOR SELECT id FROM vec_t "
                               "WHERE id < 0; OPEN c; FETCH c INTO v; CLOSE c; SELECT v; END",
    "vec_sp_signal": "() BEGIN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'vec signal', "
                     "MYSQL_ERRNO = 1644; END",
    "vec_sp_select_signal": "() BEGIN SELECT id FROM vec_t WHERE id = 1; SIGNAL SQLSTATE '45000' "
                            "SET MESSAGE_TEXT = 'vec signal after rows'; END",
    "vec_sp_multi": "() BEGIN SELECT id FROM vec_t ORDER BY id; SELECT 'two' AS s, 2 AS n; "
                    "SELECT COUNT(*) AS c FROM vec_t; END",
    "vec_sp_out": "(IN a INT, OUT b INT, INOUT c VARCHAR(20)) BEGIN SET b = a * 6; "
                  "SET c = CONCAT(c, '-', a); SELECT a AS inside; END",
    "vec_sp_out_only": "(OUT b INT) BEGIN SET b = 42; END",
    "vec_sp_dml": "() BEGIN UPDATE vec_t SET score = score + 1 WHERE id <= 2; "
                  "INSERT INTO vec_t VALUES (9, 'iota', 0); DELETE FROM vec_t WHERE id = 9; END",
    "vec_sp_warning": "() BEGIN DECLARE v TINYINT; SET v = 300; SELECT v; END",
}


def pkt(seq, payload):
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


def sha1(b):
    return hashlib.sha1(b).digest()


def lenenc(p, pos):
    b = p[pos]
    if b < 0xFB:
        return b, pos + 1
    if b == 0xFC:
        return int.from_bytes(p[pos + 1:pos + 3], "little"), pos + 3
    if b == 0xFD:
        return int.from_bytes(p[pos + 1:pos + 4], "little"), pos + 4
    return int.from_bytes(p[pos + 1:pos + 9], "little"), pos + 9


class Client:
    def __init__(self, deprecate_eof):
        self.deof = deprecate_eof
        self.s = socket.create_connection((HOST, PORT), timeout=10)
        self.buf = b""
        g = self.packet()[4:]
        self.version = g[1:g.index(b"\0", 1)].decode().removeprefix("5.5.5-")
        i = g.index(b"\0", 1) + 1
        nonce = g[i + 4:i + 12] + g[i + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10:][:12]
        s1 = sha1(b"app")
        scramble = bytes(a ^ b for a, b in zip(s1, sha1(nonce + sha1(s1))))
        self.caps = CAPS | (DEPRECATE_EOF if deprecate_eof else 0)
        hr = struct.pack("<IIB", self.caps, 1 << 24, 45) + b"\0" * 23 + b"app\0" + \
            bytes([len(scramble)]) + scramble + b"sluice_test\0mysql_native_password\0"
        self.s.sendall(pkt(1, hr))
        ok = self.packet()
        assert ok[4] == 0, ok.hex()

    def packet(self):
        """One physical packet, header included."""
        while True:
            if len(self.buf) >= 4:
                n = int.from_bytes(self.buf[:3], "little")
                if len(self.buf) >= 4 + n:
                    p, self.buf = self.buf[:4 + n], self.buf[4 + n:]
                    return p
            d = self.s.recv(1 << 16)
            if not d:
                raise ConnectionError("server closed the connection")
            self.buf += d

    def eof_status(self, body):
        if self.deof:            # OK packet with the 0xFE header
            _, pos = lenenc(body, 1)
            _, pos = lenenc(body, pos)
            return int.from_bytes(body[pos:pos + 2], "little")
        return int.from_bytes(body[3:5], "little")

    def response(self, cursor=False):
        """Every packet of one command's response, to its end."""
        out = []

        def nxt():
            p = self.packet()
            out.append(p)
            return p[4:]
        while True:
            b = nxt()
            if b[0] == 0xFF:
                return out
            if b[0] == 0x00:
                _, pos = lenenc(b, 1)
                _, pos = lenenc(b, pos)
                if int.from_bytes(b[pos:pos + 2], "little") & MORE_RESULTS:
                    continue
                return out
            ncols, _ = lenenc(b, 0)
            for _ in range(ncols):
                nxt()
            status = None
            if not self.deof:
                b = nxt()
                if b[0] == 0xFF:
                    return out
                status = self.eof_status(b)
            # A cursor opened by the execute: no rows follow. The flag alone does not say so:
            # stored programs leave it set, and a CALL executed with CURSOR_TYPE_READ_ONLY
            # sends its rows with CURSOR_EXISTS | MORE_RESULTS in the EOF before them.
            opened = cursor and status is not None and status & CURSOR_EXISTS and \
                not status & MORE_RESULTS
            if not opened:
                while True:
                    b = nxt()
                    if b[0] == 0xFF:
                        return out
                    if b[0] == 0xFE and len(b) < (0xFFFFFF if self.deof else 9):
                        status = self.eof_status(b)
                        break
            if not status & MORE_RESULTS:
                return out

    def command(self, payload, cursor=False):
        self.s.sendall(pkt(0, payload))
        return self.response(cursor)

    def query(self, sql):
        return self.command(b"\x03" + sql.encode())

    def prepare(self, sql):
        self.s.sendall(pkt(0, b"\x16" + sql.encode()))
        first = self.packet()
        out = [first]
        if first[4] == 0xFF:
            return None, out
        stmt_id, ncols, nparams = struct.unpack_from("<IHH", first, 5)
        for count in (nparams, ncols):
            for _ in range(count):
                out.append(self.packet())
            if count and not self.deof:
                out.append(self.packet())
        return stmt_id, out


def execute_payload(stmt_id, flags, params):
    """COM_STMT_EXECUTE; PARAMS: ints (LONGLONG), bytes (VAR_STRING) or None (NULL, typed
    LONGLONG)."""
    body = b"\x17" + struct.pack("<IBI", stmt_id, flags, 1)
    if params:
        bitmap = bytearray((len(params) + 7) // 8)
        for i, p in enumerate(params):
            if p is None:
                bitmap[i // 8] |= 1 << (i % 8)
        body += bytes(bitmap) + b"\x01"
        body += b"".join(b"\xfd\x00" if isinstance(p, bytes) else b"\x08\x00" for p in params)
        for p in params:
            if isinstance(p, int):
                body += struct.pack("<q", p)
            elif isinstance(p, bytes):
                body += bytes([len(p)]) + p
    return body


def write_vector(name, packets, what, c, extra=()):
    mode = "on" if c.deof else "off"
    with open(os.path.join(OUT, name + ".hex"), "w") as f:
        f.write(f"# {what}\n")
        f.write(f"# Captured from MariaDB {c.version} (tests/fixtures/topology.sh primary), directly\n")
        f.write(f"# by tests/vectors/mysql/stored_programs/capture.py: client capabilities "
                f"0x{c.caps:08x} (CLIENT_DEPRECATE_EOF {mode})\n")
        for line in extra:
            f.write(f"# {line}\n")
        for p in packets:
            f.write(p.hex() + "\n")


def defn(name):
    return f"procedure: CREATE PROCEDURE {name}{PROCEDURES[name]}"


def capture(prefix, deof):
    c = Client(deof)
    c.query("CREATE TEMPORARY TABLE vec_t (id INT PRIMARY KEY, name VARCHAR(20), score DOUBLE NULL)")
    c.query("INSERT INTO vec_t VALUES (1,'alpha',1.5),(2,'beta',NULL),(3,'gamma',-2.25)")

    def q(name, sql, extra=()):
        write_vector(prefix + name, c.query(sql), f"COM_QUERY {sql!r}", c, extra)

    def call(name, proc, args="()"):
        q(name, f"CALL {proc}{args}", [defn(proc)])

    call("call_cursor", "vec_sp_cursor")
    call("call_cursor_loop", "vec_sp_cursor_loop")
    call("call_cursor_not_found", "vec_sp_cursor_not_found")
    q("compound_cursor", "BEGIN NOT ATOMIC DECLARE v INT; DECLARE c CURSOR FOR SELECT id FROM "
      "vec_t ORDER BY id; OPEN c; FETCH c INTO v; CLOSE c; SELECT v; END")
    q("compound_cursor_rows_after", "BEGIN NOT ATOMIC DECLARE v INT; DECLARE c CURSOR FOR SELECT "
      "id FROM vec_t ORDER BY id; OPEN c; FETCH c INTO v; SELECT v; SELECT id, name FROM vec_t "
      "ORDER BY id; CLOSE c; END")
    call("call_signal", "vec_sp_signal")
    call("call_select_then_signal", "vec_sp_select_signal")
    q("compound_signal", "BEGIN NOT ATOMIC SELECT 1 AS one; SIGNAL SQLSTATE '45000' "
      "SET MESSAGE_TEXT = 'block signal'; END")
    call("call_multi_results", "vec_sp_multi")
    call("call_out_text", "vec_sp_out", "(7, @vec_b, @vec_c)")
    call("call_dml", "vec_sp_dml")
    call("call_warning", "vec_sp_warning")
    q("call_then_select", "CALL vec_sp_cursor(); SELECT 'after' AS a",
      [defn("vec_sp_cursor"), "a multi-statement: the CALL's results, then the SELECT's"])

    def prepared(name, sql, params, flags=0, times=1, proc=None):
        sid, prep = c.prepare(sql)
        extra = [defn(proc)] if proc else []
        write_vector(prefix + "prepare_" + name, prep, f"COM_STMT_PREPARE {sql!r}", c, extra)
        assert sid is not None, f"prepare of {sql!r} failed"
        shown = ", ".join("NULL" if p is None else repr(p) for p in params)
        for i in range(times):
            suffix = "" if times == 1 else f"_{i + 1}"
            write_vector(prefix + "execute_" + name + suffix,
                         c.command(execute_payload(sid, flags, params), cursor=bool(flags & 1)),
                         f"COM_STMT_EXECUTE of {sql!r} with ({shown}), flags {flags}"
                         + (f", execution {i + 1} of {times}" if times > 1 else ""), c, extra)
        c.s.sendall(pkt(0, b"\x19" + struct.pack("<I", sid)))

    prepared("call_out", "CALL vec_sp_out(?, ?, ?)", [7, None, b"io"], proc="vec_sp_out")
    prepared("call_out_only", "CALL vec_sp_out_only(?)", [None], proc="vec_sp_out_only")
    prepared("call_multi", "CALL vec_sp_multi()", [], proc="vec_sp_multi")
    prepared("call_cursor", "CALL vec_sp_cursor()", [], times=2, proc="vec_sp_cursor")
    prepared("call_cursor_flag", "CALL vec_sp_cursor()", [], flags=1, proc="vec_sp_cursor")
    prepared("call_select_then_signal", "CALL vec_sp_select_signal()", [], proc="vec_sp_select_signal")
    # The session still answers after all of the above.
    write_vector(prefix + "ping_after", c.command(b"\x0e"), "COM_PING after the stored programs", c)
    c.s.close()


def main():
    admin = Client(False)
    for name, body in PROCEDURES.items():
        admin.query(f"DROP PROCEDURE IF EXISTS {name}")
        r = admin.query(f"CREATE PROCEDURE {name}{body}")
        assert r[-1][4] == 0, f"CREATE PROCEDURE {name}: {r[-1][4:].hex()}"
    try:
        capture("eof_", False)
        capture("deof_", True)
    finally:
        for name in PROCEDURES:
            admin.query(f"DROP PROCEDURE IF EXISTS {name}")
        admin.s.close()


if __name__ == "__main__":
    sys.exit(main())
