#!/usr/bin/python3
"""Captures the golden MySQL protocol vectors in this folder from a real MariaDB.

Needs the fixture topology (tests/fixtures/topology.sh up: MariaDB primary on 127.0.0.1:3307,
user app/app, database sluice_test). Writes *.hex files: one packet per line, hex, the 4-byte
header included; '#' lines are comments. Two sources:

  cli_*   the real `mariadb` CLI talking to the server through a recording relay
          (it does not ask for CLIENT_DEPRECATE_EOF);
  eof_*, deof_*   this script's own small client, without / with CLIENT_DEPRECATE_EOF,
          for the commands the CLI cannot send (prepared statements, cursors, FETCH,
          FIELD_LIST, LOCAL INFILE).

Only a TEMPORARY table is created, so nothing is left on the shared server.
"""
import hashlib
import os
import socket
import struct
import subprocess
import sys
import threading

HOST, PORT = "127.0.0.1", int(os.environ.get("SLUICE_TOPO_PORT", "3307"))
OUT = os.path.dirname(os.path.abspath(__file__))
VERSION = ""


def packets(b):
    out, i = [], 0
    while i + 4 <= len(b):
        n = int.from_bytes(b[i:i + 3], "little")
        out.append(b[i:i + 4 + n])
        i += 4 + n
    assert i == len(b), "partial packet"
    return out


def write_vector(name, data, what, source):
    with open(os.path.join(OUT, name + ".hex"), "w") as f:
        f.write(f"# {what}\n")
        f.write(f"# Captured from MariaDB {VERSION} (tests/fixtures/topology.sh primary)\n")
        f.write(f"# by tests/vectors/mysql/capture.py: {source}\n")
        for p in packets(data):
            f.write(p.hex() + "\n")


def recv_idle(s, idle=0.4):
    s.settimeout(idle)
    out = b""
    while True:
        try:
            d = s.recv(1 << 20)
        except socket.timeout:
            return out
        if not d:
            return out
        out += d


def pkt(seq, payload):
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


def sha1(b):
    return hashlib.sha1(b).digest()


# ---- the mariadb CLI through a recording relay ----

def relay_capture():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    log = []  # (direction, bytes)

    def run():
        c, _ = ls.accept()
        s = socket.create_connection((HOST, PORT))
        import select
        while True:
            r, _, _ = select.select([c, s], [], [])
            for src in r:
                d = src.recv(1 << 20)
                if not d:
                    c.close()
                    s.close()
                    return
                (s if src is c else c).sendall(d)
                log.append(("C" if src is c else "S", d))

    t = threading.Thread(target=run)
    t.start()
    script = (
        "CREATE TEMPORARY TABLE vec_t (id INT PRIMARY KEY, name VARCHAR(20), score DOUBLE NULL);\n"
        "INSERT INTO vec_t VALUES (1,'alpha',1.5),(2,'beta',NULL),(3,'gamma',-2.25);\n"
        "SELECT id, name, score FROM vec_t ORDER BY id;\n"
        "delimiter //\n"
        "SELECT 1; SELECT 2//\n"
        "delimiter ;\n"
        "SELECT * FROM no_such_table;\n")
    subprocess.run(["mariadb", "-h127.0.0.1", f"-P{port}", "-uapp", "-papp", "--skip-ssl",
                    "-Dsluice_test", "--force"], input=script.encode(), capture_output=True)
    t.join()
    # Merge consecutive chunks of one direction, then pair each client message with the
    # server bytes that follow it.
    merged = []
    for d, b in log:
        if merged and merged[-1][0] == d:
            merged[-1] = (d, merged[-1][1] + b)
        else:
            merged.append((d, b))
    return merged


# ---- our own client ----

class Client:
    def __init__(self, deprecate_eof):
        self.s = socket.create_connection((HOST, PORT))
        g = recv_idle(self.s)
        p = g[4:]
        i = p.index(b"\0", 1) + 1
        nonce = p[i + 4:i + 12] + p[i + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10:][:12]
        s1 = sha1(b"app")
        scramble = bytes(a ^ b for a, b in zip(s1, sha1(nonce + sha1(s1))))
        # LONG_PASSWORD | LONG_FLAG | CONNECT_WITH_DB | LOCAL_FILES | PROTOCOL_41 |
        # TRANSACTIONS | SECURE_CONNECTION | MULTI_STATEMENTS | MULTI_RESULTS |
        # PS_MULTI_RESULTS | PLUGIN_AUTH (+ DEPRECATE_EOF)
        caps = 0x1 | 0x4 | 0x8 | 0x80 | 0x200 | 0x2000 | 0x8000 | 0x10000 | 0x20000 | \
            0x40000 | 0x80000 | (0x1000000 if deprecate_eof else 0)
        hr = struct.pack("<IIB", caps, 1 << 24, 45) + b"\0" * 23 + b"app\0" + \
            bytes([len(scramble)]) + scramble + b"sluice_test\0mysql_native_password\0"
        self.s.sendall(pkt(1, hr))
        ok = recv_idle(self.s)
        assert ok[4] == 0, ok.hex()

    def command(self, payload):
        self.s.sendall(pkt(0, payload))
        return recv_idle(self.s)

    def query(self, sql):
        return self.command(b"\x03" + sql.encode())


def stmt_id(prepare_response):
    return int.from_bytes(prepare_response[5:9], "little")


def capture_client(prefix, deprecate_eof):
    mode = "CLIENT_DEPRECATE_EOF " + ("on" if deprecate_eof else "off")
    src = "this script's client, " + mode
    c = Client(deprecate_eof)
    c.query("CREATE TEMPORARY TABLE vec_t (id INT PRIMARY KEY, name VARCHAR(20), score DOUBLE NULL)")
    c.query("INSERT INTO vec_t VALUES (1,'alpha',1.5),(2,'beta',NULL),(3,'gamma',-2.25)")

    def q(name, sql):
        write_vector(prefix + name, c.query(sql), f"COM_QUERY {sql!r}", src)

    q("select_rows", "SELECT id, name, score FROM vec_t ORDER BY id")
    q("select_null_first", "SELECT NULL AS n, 'x' AS s")
    q("multi_statement", "SELECT 1; SELECT 2")
    q("multi_statement_error", "SELECT 1; SELECT * FROM no_such_table")
    q("multi_dml", "UPDATE vec_t SET score = 0 WHERE id = 3; DELETE FROM vec_t WHERE id = 99")
    q("compound", "BEGIN NOT ATOMIC SELECT id FROM vec_t WHERE id = 1; "
      "SELECT name FROM vec_t WHERE id = 2; END")
    q("insert", "INSERT INTO vec_t VALUES (4,'delta',0.5)")
    q("error", "SELECT * FROM no_such_table")
    q("error_mid_rows", "SELECT id, IF(id < 3, 0, (SELECT name FROM vec_t)) FROM vec_t ORDER BY id")
    # Stored programs with a cursor: the server leaves SERVER_STATUS_CURSOR_EXISTS in the
    # flags of the result sets that follow, which are still sent whole (issue #7).
    q("compound_cursor", "BEGIN NOT ATOMIC DECLARE v INT; DECLARE c CURSOR FOR "
      "SELECT id FROM vec_t ORDER BY id; OPEN c; FETCH c INTO v; CLOSE c; SELECT v; END")
    c.query("CREATE OR REPLACE PROCEDURE vec_pc() BEGIN DECLARE v INT; DECLARE c CURSOR FOR "
            "SELECT id FROM vec_t ORDER BY id; OPEN c; FETCH c INTO v; CLOSE c; SELECT v; END")
    q("call_cursor", "CALL vec_pc()")
    c.query("DROP PROCEDURE vec_pc")
    q("begin", "BEGIN")
    q("select_in_trans", "SELECT id FROM vec_t WHERE id = 1")
    q("commit", "COMMIT")

    # LOCAL INFILE: the request, then (after the file and an empty packet) the result.
    sql = "LOAD DATA LOCAL INFILE 'vec.csv' INTO TABLE vec_t FIELDS TERMINATED BY ','"
    write_vector(prefix + "local_infile_request", c.query(sql), f"COM_QUERY {sql!r}", src)
    c.s.sendall(pkt(2, b"5,epsilon,1\n6,zeta,2\n") + pkt(3, b""))
    write_vector(prefix + "local_infile_result", recv_idle(c.s),
                 "the reply after the LOCAL INFILE data and its empty packet", src)

    def prepare(name, sql):
        r = c.command(b"\x16" + sql.encode())
        write_vector(prefix + name, r, f"COM_STMT_PREPARE {sql!r}", src)
        return stmt_id(r)

    sel = prepare("prepare_params_columns", "SELECT ?, name FROM vec_t WHERE id > ?")
    ins = prepare("prepare_params_only", "INSERT INTO vec_t (id, name) VALUES (?, ?)")
    cur = prepare("prepare_columns_only", "SELECT id, name FROM vec_t ORDER BY id")
    prepare("prepare_none", "DO 1")
    prepare("prepare_error", "SELEC bad")

    # COM_STMT_EXECUTE: stmt_id, flags, iteration_count=1, NULL bitmap, new_params_bound=1,
    # types (MYSQL_TYPE_LONGLONG / MYSQL_TYPE_VAR_STRING), values.
    def execute(name, sid, flags, params, what):
        body = b"\x17" + struct.pack("<IBI", sid, flags, 1)
        if params:
            body += b"\x00" * ((len(params) + 7) // 8) + b"\x01"
            for p in params:
                body += b"\x08\x00" if isinstance(p, int) else b"\xfd\x00"
            for p in params:
                body += struct.pack("<q", p) if isinstance(p, int) else bytes([len(p)]) + p
        write_vector(prefix + name, c.command(body), what, src)

    execute("execute_binary_rows", sel, 0, [7, 1], "COM_STMT_EXECUTE of " +
            "'SELECT ?, name FROM vec_t WHERE id > ?' with (7, 1): binary rows")
    execute("execute_ok", ins, 0, [10, b"kappa"], "COM_STMT_EXECUTE of the INSERT: OK")
    execute("execute_cursor", cur, 1, [], "COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY of " +
            "'SELECT id, name FROM vec_t ORDER BY id'")
    bad = prepare("prepare_failing", "SELECT NTILE(-1) OVER (ORDER BY id) FROM vec_t")
    execute("execute_cursor_error", bad, 1, [], "COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY " +
            "of a statement that fails when it runs: column definitions, then the ERR")
    write_vector(prefix + "fetch_some", c.command(b"\x1c" + struct.pack("<II", cur, 2)),
                 "COM_STMT_FETCH of 2 rows from the cursor", src)
    write_vector(prefix + "fetch_rest", c.command(b"\x1c" + struct.pack("<II", cur, 100)),
                 "COM_STMT_FETCH of the remaining rows from the cursor", src)
    write_vector(prefix + "field_list", c.command(b"\x04vec_t\x00"),
                 "COM_FIELD_LIST 'vec_t'", src)
    write_vector(prefix + "ping", c.command(b"\x0e"), "COM_PING", src)
    write_vector(prefix + "statistics", c.command(b"\x09"), "COM_STATISTICS", src)
    write_vector(prefix + "init_db_error", c.command(b"\x02no_such_db"),
                 "COM_INIT_DB 'no_such_db'", src)


def capture_auth_switch():
    """A client that names caching_sha2_password for a mysql_native_password account: the
    server answers with an AuthSwitchRequest carrying a new nonce."""
    src = "this script's client naming caching_sha2_password for user app (password app)"
    s = socket.create_connection((HOST, PORT))
    greeting = recv_idle(s)
    p = greeting[4:]
    i = p.index(b"\0", 1) + 1
    nonce = p[i + 4:i + 12] + p[i + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10:][:12]
    p1 = hashlib.sha256(b"app").digest()
    p3 = hashlib.sha256(hashlib.sha256(p1).digest() + nonce).digest()
    scramble = bytes(a ^ b for a, b in zip(p1, p3))
    caps = 0x1 | 0x200 | 0x2000 | 0x8000 | 0x80000
    hr = struct.pack("<IIB", caps, 1 << 24, 45) + b"\0" * 23 + b"app\0" + \
        bytes([len(scramble)]) + scramble + b"caching_sha2_password\0"
    s.sendall(pkt(1, hr))
    switch = recv_idle(s)
    assert switch[4] == 0xFE, switch.hex()
    body = switch[4:]
    new_nonce = body[body.index(b"\0") + 1:-1]
    s1 = sha1(b"app")
    reply = pkt(3, bytes(a ^ b for a, b in zip(s1, sha1(new_nonce + sha1(s1)))))
    s.sendall(reply)
    ok = recv_idle(s)
    s.close()
    write_vector("switch_greeting", greeting, "Protocol::HandshakeV10", src)
    write_vector("switch_response", pkt(1, hr), "the client's HandshakeResponse41", src)
    write_vector("switch_request", switch, "Protocol::AuthSwitchRequest from the server", src)
    write_vector("switch_reply", reply, "the client's mysql_native_password reply", src)
    write_vector("switch_ok", ok, "the server's OK", src)


def main():
    global VERSION
    s = socket.create_connection((HOST, PORT))
    g = recv_idle(s)
    s.close()
    VERSION = g[5:g.index(b"\0", 5)].decode().removeprefix("5.5.5-")
    msgs = relay_capture()
    assert msgs[0][0] == "S" and msgs[1][0] == "C" and msgs[2][0] == "S"
    src = "the mariadb CLI through a recording relay (CLIENT_DEPRECATE_EOF off)"
    write_vector("cli_greeting", msgs[0][1], "Protocol::HandshakeV10 as sent to the mariadb CLI", src)
    write_vector("cli_handshake_response", msgs[1][1],
                 "HandshakeResponse41 sent by the mariadb CLI (user app, password app)", src)
    write_vector("cli_handshake_ok", msgs[2][1], "the server's OK to that response", src)
    names = ["create_temporary", "insert", "select_rows", "multi_statement", "error"]
    pairs = [(msgs[i][1], msgs[i + 1][1]) for i in range(3, len(msgs) - 1, 2)]
    for name, (cmd, resp) in zip(names, pairs):
        write_vector("cli_" + name, resp, "COM_QUERY " + repr(packets(cmd)[0][5:].decode()), src)
    capture_client("eof_", False)
    capture_client("deof_", True)
    capture_auth_switch()


if __name__ == "__main__":
    sys.exit(main())
