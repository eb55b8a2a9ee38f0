#!/usr/bin/python3
"""bad_input: clients and backends misbehaving, on raw sockets where the protocol itself is
the input. After every case a second, separate session through Sluice must still answer.

 (a) malformed handshake responses -> ERR 1043, closed; an HTTP request -> closed at once
 (b) a command packet with sequence id != 0 -> ERR 1156, closed
 (c) an unknown command byte -> ERR 1047, and the same session still answers
 (d) a message announcing more than max_packet_size -> ERR 1153 before its body, closed
 (e) a client closing its socket in the middle of a 50 MB result -> Sluice stays up and the
     backend query does not keep running
 (f) max_connections + 1 on the limited listener -> ERR 1040 as the first packet
 (g) a client that sends nothing (or half a packet) -> closed after client_handshake_timeout
 (h) the primary stopped: new logins get 1105 (SQLSTATE 08S01) naming the backend; a connected
     client's next statement gets ERR 1158 or 1105 (08S01) naming the backend at once -- never
     a hang, never a client-library code (2013) -- and its session stays open; after a
     restart logins work again and the connected session's next statement runs (issue #7)
 (i) the backend connection killed in the middle of SELECT SLEEP(5) -> ERR 1158, SQLSTATE
     08S01, naming the backend, at once; the session goes on with a new primary connection
 (j) an empty command packet -> ERR 1047 (08S01) "Unknown command", as the server answers;
     the session goes on
The errors are read as raw bytes (code and SQLSTATE exactly): Sluice never sends the
client-library codes 2003/2013 (README), so no client's own "lost connection" may pass.
 (k) two commands pipelined in one segment -> two answers, in order
 (l) SSLRequest and the TLS ClientHello in one segment (what PyMySQL often does) -> TLS works
"""

import os
import random
import socket
import ssl
import struct
import subprocess
import time
import urllib.request

import pymysql

from itlib import (Checks, Raw, eq, true, env_int, env_str, expect_err_packet, parse_err,
                   raw_select_1, wait_until, HOST, CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION,
                   CLIENT_PLUGIN_AUTH, CLIENT_LONG_PASSWORD)

PORT = env_int("SLUICE_PORT")
TLS_PORT = env_int("SLUICE_TLS_PORT")
LIMITED_PORT = env_int("SLUICE_LIMITED_PORT")
LIMITED_MAX = env_int("SLUICE_LIMITED_MAX")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
SERVER_PORTS = (PRIMARY_PORT, env_int("SLUICE_REPLICA1_PORT"), env_int("SLUICE_REPLICA2_PORT"))
ADMIN_PORT = env_int("SLUICE_ADMIN_PORT")
MAX_PACKET = env_int("SLUICE_MAX_PACKET")
HANDSHAKE_TIMEOUT = env_int("SLUICE_HANDSHAKE_TIMEOUT_MS") / 1000.0
TOPOLOGY = env_str("SLUICE_TOPOLOGY")
CA = env_str("SLUICE_CA")
CLIENT_SSL = 0x800


def second_session(what):
    raw_select_1(PORT, f"second session after {what}")


def connect(port=PORT, **kw):
    args = dict(host=HOST, port=port, user="app", password="app", connect_timeout=5,
                read_timeout=15, write_timeout=15, autocommit=True)
    args.update(kw)
    return pymysql.connect(**args)


def direct():
    return connect(PRIMARY_PORT)


def metric(sample):
    body = urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[1])
    return 0.0


def error_metric(reason):
    return metric(f'sluice_client_errors_total{{reason="{reason}"}}')


# ------------------------------------------------------------------------------- cases ----

def case_a_malformed_handshake():
    rng = random.Random(1043)
    payloads = [bytes(rng.randrange(256) for _ in range(n)) for n in (0, 1, 7, 20, 31)]
    # Well-sized, but without CLIENT_PROTOCOL_41 (HandshakeResponse320 is not supported).
    payloads.append(struct.pack("<IIB", CLIENT_SECURE_CONNECTION, 1 << 24, 45) + b"\0" * 23
                    + b"app\0\0")
    # Protocol 4.1, user name not terminated.
    payloads.append(struct.pack("<IIB", CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION, 1 << 24, 45)
                    + b"\0" * 23 + b"app-without-nul")
    before = error_metric("malformed_packet")
    for i, payload in enumerate(payloads):
        r = Raw(PORT)
        try:
            seq, _ = r.read_packet()
            r.send_packet(payload, seq + 1)
            eseq, _ = expect_err_packet(r, 1043, f"malformed handshake response #{i} ({payload[:8].hex()}...)")
            eq(eseq, seq + 2, f"sequence id of the ERR after handshake response #{i}")
            true(r.closed_by_peer(3), f"connection not closed after ERR 1043 (#{i})")
        finally:
            r.close()
    true(error_metric("malformed_packet") >= before + len(payloads),
         "sluice_client_errors_total{reason=\"malformed_packet\"} did not count the bad handshakes")
    # SSLRequest on a listener without TLS.
    r = Raw(PORT)
    try:
        seq, _ = r.read_packet()
        r.send_packet(struct.pack("<IIB", CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION,
                                  1 << 24, 45) + b"\0" * 23, seq + 1)
        expect_err_packet(r, 1043, "SSLRequest on a listener without TLS")
        true(r.closed_by_peer(3), "connection not closed after SSLRequest without TLS")
    finally:
        r.close()
    # Not MySQL at all: the first 3 bytes announce a 5 MB packet during the handshake.
    r = Raw(PORT)
    try:
        r.read_packet()
        t0 = time.monotonic()
        r.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        true(r.closed_by_peer(HANDSHAKE_TIMEOUT + 3), "HTTP request: connection not closed")
        elapsed = time.monotonic() - t0
        true(elapsed < HANDSHAKE_TIMEOUT * 0.75,
             f"HTTP request: closed only after {elapsed:.2f}s (the handshake timeout), not at once")
    finally:
        r.close()
    second_session("(a)")


def case_b_bad_sequence():
    r = Raw(PORT)
    try:
        r.login()
        eq(r.query("SELECT 1"), ("rows", [("1",)]), "SELECT 1 before the bad packet")
        before = error_metric("bad_sequence")
        r.send_packet(b"\x03SELECT 2", 5)
        eseq, err = expect_err_packet(r, 1156, "COM_QUERY with sequence id 5")
        eq(err[1], "08S01", "SQLSTATE of 1156")
        true(r.closed_by_peer(3), "connection not closed after ERR 1156")
        eq(error_metric("bad_sequence"), before + 1, "bad_sequence error counter")
    finally:
        r.close()
    second_session("(b)")


def case_c_unknown_command():
    r = Raw(PORT)
    try:
        r.login()
        before = metric('sluice_client_errors_total{reason="unknown_command"}')
        for cmd in (0x99, 0xEE, 0x20):
            r.send_packet(bytes([cmd]) + b"junk", 0)
            eseq, err = expect_err_packet(r, 1047, f"unknown command byte 0x{cmd:02x}")
            eq(eseq, 1, f"sequence id of the ERR for 0x{cmd:02x}")
            eq(r.query("SELECT 1"), ("rows", [("1",)]),
               f"the same session answers SELECT 1 after command 0x{cmd:02x}")
        eq(r.query("SELECT CONCAT('still', ' ', 'here')"), ("rows", [("still here",)]),
           "the same session answers again")
        true(metric('sluice_client_errors_total{reason="unknown_command"}') >= before + 3,
             "unknown_command counter did not grow by 3")
    finally:
        r.close()
    second_session("(c)")


def case_d_oversized():
    r = Raw(PORT)
    try:
        r.login()
        eq(r.query("SELECT 1"), ("rows", [("1",)]), "SELECT 1 before the oversized message")
        full = 0xFFFFFF
        n_full = MAX_PACKET // full                       # 4 full packets stay within the limit
        body = b"\x03SELECT '" + b"x" * (full - 9)
        assert len(body) == full
        chunk = b"x" * full
        for i in range(n_full):
            r.sock.sendall(struct.pack("<I", full)[:3] + bytes([i]) + (body if i == 0 else chunk))
        # The next header takes the message over max_packet_size; its body is never sent.
        r.sock.sendall(struct.pack("<I", full)[:3] + bytes([n_full]))
        r.sock.settimeout(15)
        _, err = expect_err_packet(r, 1153, f"message over max_packet_size ({MAX_PACKET})")
        true(r.closed_by_peer(5), "connection not closed after ERR 1153")
    finally:
        r.close()
    # (A single packet holds at most 16 MiB - 1, so only a chain of them can exceed 64 MiB:
    # 4 full packets are 4 bytes under the limit, the 5th header goes over.)
    second_session("(d)")


def case_e_client_gone_mid_result():
    r = Raw(PORT)
    try:
        r.login(database="sluice_test")
        r.send_packet(b"\x03SELECT REPEAT('x', 1000000) FROM seq_1_to_50", 0)
        _, first = r.read_packet()
        eq(first, b"\x01", "column count of the big result")
        got = 0
        while got < 2_000_000:                            # part of the 50 MB result
            got += len(r.sock.recv(65536))
        r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        r.close()                                         # RST, mid-result
    second_session("(e)")
    # The read ran on a replica (read/write splitting) or the primary: look on every server.
    servers = [connect(p) for p in SERVER_PORTS]
    try:
        def gone():
            for conn in servers:
                with conn.cursor() as c:
                    c.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                              "WHERE INFO LIKE 'SELECT REPEAT(%%' AND ID <> CONNECTION_ID()")
                    if c.fetchone()[0] != 0:
                        return False
            return True
        true(wait_until(gone, 10), "a backend still runs the abandoned query after 10 s")
    finally:
        for conn in servers:
            conn.close()


def case_f_too_many_connections():
    held = []
    try:
        for i in range(LIMITED_MAX):
            held.append(connect(LIMITED_PORT))
        for i, conn in enumerate(held):
            with conn.cursor() as c:
                c.execute("SELECT %s", (i,))
                eq(c.fetchone(), (i,), f"held connection #{i}")
        before = error_metric("too_many_connections")
        r = Raw(LIMITED_PORT)
        try:
            seq, p = r.read_packet()
            true(p[:1] == b"\xff", f"connection #{LIMITED_MAX + 1}: expected ERR 1040 as the first "
                                   f"packet, got {p[:16]!r}")
            eq(parse_err(p)[0], 1040, f"connection #{LIMITED_MAX + 1}: error code")
            eq(seq, 0, "sequence id of the 1040 ERR")
            true(r.closed_by_peer(3), "connection not closed after ERR 1040")
        finally:
            r.close()
        eq(error_metric("too_many_connections"), before + 1, "too_many_connections counter")
        # pymysql sees the same
        try:
            connect(LIMITED_PORT)
            raise AssertionError(f"connection #{LIMITED_MAX + 1} accepted")
        except pymysql.err.OperationalError as e:
            eq(e.args[0], 1040, "pymysql error for one connection too many")
        second_session("(f), limit reached on the other listener")
        held.pop().close()

        def one_more():
            try:
                c = connect(LIMITED_PORT)
            except pymysql.err.OperationalError:
                return False
            held.append(c)
            return True
        true(wait_until(one_more, 5), "no connection possible after closing one of the held ones")
    finally:
        for c in held:
            c.close()
    second_session("(f)")


def case_g_handshake_timeout():
    before = error_metric("handshake_timeout")
    for what, send in (("silent client", b""), ("half a packet", b"\x40\x00\x00\x01\x05\x82")):
        r = Raw(PORT)
        try:
            r.read_packet()
            if send:
                r.sock.sendall(send)
            t0 = time.monotonic()
            true(r.closed_by_peer(HANDSHAKE_TIMEOUT + 5), f"{what}: not closed after the handshake timeout")
            elapsed = time.monotonic() - t0
            true(HANDSHAKE_TIMEOUT - 0.3 <= elapsed <= HANDSHAKE_TIMEOUT + 2,
                 f"{what}: closed after {elapsed:.2f}s, expected about {HANDSHAKE_TIMEOUT}s")
        finally:
            r.close()
    eq(error_metric("handshake_timeout"), before + 2, "handshake_timeout counter")
    # A logged-in idle session is not subject to the handshake timeout.
    r = Raw(PORT)
    try:
        r.login()
        time.sleep(HANDSHAKE_TIMEOUT + 0.5)
        eq(r.query("SELECT 1"), ("rows", [("1",)]), "idle logged-in session after the handshake timeout")
    finally:
        r.close()
    second_session("(g)")


def topology(*args):
    t0 = time.monotonic()
    p = subprocess.run(["bash", TOPOLOGY, *args], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"topology.sh {' '.join(args)} failed: {p.stdout}{p.stderr}")
    print(f"     topology.sh {' '.join(args)}: {time.monotonic() - t0:.1f}s")


def expect_backend_lost(r, what, codes=(1158,)):
    """Reads one packet on raw session R: ERR with a code in CODES, SQLSTATE 08S01 and a message
    naming the backend 'primary'; then the session is closed."""
    seq, p = r.read_packet()
    true(p[:1] == b"\xff", f"{what}: expected ERR {codes}, got packet {p[:32]!r}")
    code, state, msg = parse_err(p)
    true(code in codes, f"{what}: error code {code} ({msg!r}), expected one of {codes}")
    eq(state, "08S01", f"{what}: SQLSTATE of {code} ({msg!r})")
    true("'primary'" in msg, f"{what}: the message names the backend: {msg!r}")
    eq(seq, 1, f"{what}: sequence id of the ERR")
    return code, msg


def case_h_backend_down():
    # The hint keeps these reads on the primary (a replica would still answer them).
    survivor = Raw(PORT, timeout=10)
    survivor.login()
    eq(survivor.query("/* sluice: primary */ SELECT 'before stop'"), ("rows", [("before stop",)]),
       "connected client before the stop")
    try:
        topology("stop", "primary")
        before = error_metric("backend_unavailable")
        t0 = time.monotonic()
        try:
            connect()
            raise AssertionError("login succeeded while the primary is down")
        except pymysql.err.OperationalError as e:
            eq(e.args[0], 1105, f"login while the primary is down ({e.args[1]})")
            true("primary" in e.args[1], f"the 1105 message names the backend: {e.args[1]!r}")
        true(time.monotonic() - t0 < 5, "the refused login took more than 5 s")
        eq(error_metric("backend_unavailable"), before + 1, "backend_unavailable counter")
        # Raw: the error comes after the login, in place of the OK: exactly 1105 / 08S01.
        r = Raw(PORT)
        try:
            try:
                r.login()
                raise AssertionError("raw login succeeded while the primary is down")
            except AssertionError as e:
                true("login refused: (1105, '08S01', " in str(e),
                     f"raw login while the primary is down: expected ERR 1105 08S01, got {e}")
        finally:
            r.close()
        t0 = time.monotonic()
        survivor.send_packet(b"\x03/* sluice: primary */ SELECT 'during stop'", 0)
        code, msg = expect_backend_lost(survivor, "connected client's statement during the stop",
                                        codes=(1158, 1105))
        elapsed = time.monotonic() - t0
        true(elapsed < 5, f"the connected client got its error only after {elapsed:.1f}s")
        print(f"     connected client during the stop: ERR {code} 08S01 {msg!r}")
        # Issue #7: nothing of the statement reached a primary, so the session stays open ...
        true(not survivor.closed_by_peer(1), f"session closed after ERR {code}")
        topology("start", "primary")
        # ... and its next statement, once the primary is back, runs on a new connection.
        def survivor_works():
            kind, rows = survivor.query("/* sluice: primary */ SELECT @@server_id, 'after restart'")
            return kind == "rows" and rows == [("1", "after restart")]
        true(wait_until(survivor_works, 10, 0.5),
             "the connected session does not work after the primary restarted")
    finally:
        survivor.close()
        topology("start", "primary")
    def login_works():
        try:
            with connect() as conn, conn.cursor() as c:
                c.execute("/* sluice: primary */ SELECT @@server_id, 'after restart'")
                return c.fetchone() == (1, "after restart")
        except pymysql.err.OperationalError:
            return False
    true(wait_until(login_works, 10, 0.5), "login through sluice does not work after the primary restarted")
    second_session("(h)")


def case_i_backend_killed_mid_query():
    # The hints keep the victim's statements on the primary, whose PROCESSLIST is searched.
    victim = Raw(PORT, timeout=20)
    try:
        victim.login()
        # CONNECTION_ID() is Sluice's id (issue #7): the backend thread is found by its query.
        marker = f"victim_{random.randrange(1 << 30)}"
        victim.send_packet(f"\x03/* sluice: primary */ SELECT SLEEP(5) AS {marker}".encode(), 0)
        with direct() as d, d.cursor() as c:
            def running():
                c.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s "
                          "AND ID <> CONNECTION_ID()", (f"%{marker}%",))
                return [r[0] for r in c.fetchall()]
            true(wait_until(lambda: len(running()) == 1, 3),
                 f"SELECT SLEEP(5) of the victim not in PROCESSLIST: {running()}")
            backend_id = running()[0]
            t0 = time.monotonic()
            c.execute(f"KILL {backend_id}")
        code, msg = expect_backend_lost(victim, "SELECT SLEEP(5) on a killed backend connection")
        elapsed = time.monotonic() - t0
        true(elapsed < 3, f"the error came {elapsed:.1f}s after the KILL")
        print(f"     client got ERR {code} 08S01 {msg!r} {elapsed:.3f}s after the KILL")
        # Nothing of the result had reached the client: the session goes on (issue #7).
        eq(victim.query("/* sluice: primary */ SELECT @@server_id"), ("rows", [("1",)]),
           "the victim's next statement, on a new primary connection")
    finally:
        victim.close()
    second_session("(i)")


def case_j_empty_command():
    r = Raw(PORT)
    try:
        r.login()
        r.send_packet(b"", 0)
        # As MariaDB answers it directly: 1047 "Unknown command", and the session goes on.
        seq, err = expect_err_packet(r, 1047, "empty command packet")
        eq(err[1], "08S01", f"SQLSTATE of the ERR for an empty command packet ({err[2]!r})")
        eq(seq, 1, "sequence id of the ERR for an empty command packet")
        eq(r.query("SELECT 'after'"), ("rows", [("after",)]), "the session after an empty command")
    finally:
        r.close()
    second_session("(j)")


def case_k_pipelined_commands():
    r = Raw(PORT)
    try:
        r.login()
        q1, q2 = b"\x03SELECT 'first'", b"\x03SELECT 'second', 2"
        pkt = lambda p: struct.pack("<I", len(p))[:3] + b"\0" + p
        r.sock.sendall(pkt(q1) + pkt(b"\x0e") + pkt(q2))   # query, ping, query in one segment
        eq(r.read_response(), ("rows", [("first",)]), "first pipelined answer")
        eq(r.read_response()[0], "ok", "pipelined COM_PING answer")
        eq(r.read_response(), ("rows", [("second", "2")]), "second pipelined answer")
    finally:
        r.close()
    second_session("(k)")


def case_l_tls_hello_with_ssl_request():
    ctx = ssl.create_default_context(cafile=CA)
    r = Raw(TLS_PORT)
    try:
        seq, _ = r.read_packet()
        caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
        ssl_request = struct.pack("<IIB", caps, 1 << 24, 45) + b"\0" * 23
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        client_hello = outgoing.read()
        r.sock.sendall(struct.pack("<I", len(ssl_request))[:3] + bytes([seq + 1]) + ssl_request
                       + client_hello)
        r.sock.settimeout(HANDSHAKE_TIMEOUT + 2)
        t0 = time.monotonic()
        try:
            answer = r.sock.recv(5)
        except socket.timeout:
            answer = None
        true(answer is not None and answer[:1] == b"\x16",
             f"no TLS ServerHello for a ClientHello sent together with the SSLRequest "
             f"(got {answer!r} after {time.monotonic() - t0:.2f}s); a MariaDB server answers it")
    finally:
        r.close()
    second_session("(l)")


def main():
    checks = Checks()
    checks.run("(a) malformed handshake response -> 1043, HTTP -> closed", case_a_malformed_handshake)
    checks.run("(b) command with sequence id != 0 -> 1156", case_b_bad_sequence)
    checks.run("(c) unknown command -> 1047, session goes on", case_c_unknown_command)
    checks.run("(d) message over max_packet_size -> 1153", case_d_oversized)
    checks.run("(e) client closes mid-result", case_e_client_gone_mid_result)
    checks.run("(f) one connection over max_connections -> 1040", case_f_too_many_connections)
    checks.run("(g) handshake timeout", case_g_handshake_timeout)
    checks.run("(j) empty command packet -> 1156 08S01", case_j_empty_command)
    checks.run("(k) pipelined commands", case_k_pipelined_commands)
    checks.run("(l) SSLRequest + ClientHello in one segment", case_l_tls_hello_with_ssl_request)
    checks.run("(i) backend connection killed mid-query -> 1158 08S01", case_i_backend_killed_mid_query)
    checks.run("(h) primary stopped and restarted", case_h_backend_down)
    checks.finish()


if __name__ == "__main__":
    main()
