#!/usr/bin/python3
"""tds_bad_input (issue #11): SQL Server clients and backends misbehaving, on raw sockets
speaking TDS (a client-side packet builder and token parser of its own over the test server's
primitives and token builder, nothing from the C++ codec), through a Sluice
of its own in front of three TDS test servers (tests/fixtures/tds_server.py: a primary and two
secondaries sharing one replication log). Bad input from a client gets a TDS ERROR token
(0xAA in a tabular result) or a clean close, never crashes the daemon, and never disturbs
another session: a pymssql session opened before the first bad input runs a query after every
case, and so does a fresh one.

 (a) truncated packets: a header promising more than is sent (before PRELOGIN, in LOGIN7, in
     a request after login), half a header; then the client closes
 (b) a client that sends nothing, half a PRELOGIN, only a PRELOGIN, or an empty PRELOGIN in
     place of a TLS ClientHello, and keeps its socket open -> closed after
     client_handshake_timeout_ms (as MySQL clients are); a logged-in idle session is not
 (c) a packet length under 8 -> ERROR, closed (before and after login)
 (d) a packet longer than the packet size -> ERROR, closed (before login: 4096, after a
     login with packet size 512); multi-packet messages within it are fine
 (e) a message over 64 MiB in 4 KiB packets -> ERROR as soon as the header announcing too
     much arrives, closed
 (f) a packet of another type inside a multi-packet message -> ERROR, closed
 (g) PRELOGIN with an option pointing outside the packet, with no terminator, truncated
     option table, empty; an SQLBatch before login -> ERROR, closed
 (h) LOGIN7 with offsets pointing outside the packet (0xFFFF), a wrong Length field, too
     short -> ERROR, closed; a wrong password, an unknown user, an empty password -> error
     18456; LOGIN7 without PRELOGIN (as jTDS sends it) is fine
 (i) after a raw login: an SQLBatch with an odd byte count, with ALL_HEADERS lengths that do
     not fit -> ERROR; an RPC with a truncated parameter -> error 8009 and the session goes
     on; unknown packet types, LOGIN7 / PRELOGIN after login, TM requests of unknown types
     -> ERROR (more in (p))
 (j) TLS: encryption asked of a listener without a certificate; garbage or a cut ClientHello
     inside PRELOGIN; TDS 8.0 garbage; under TLS (full, login-only, TDS 8.0) a packet length
     4, a LOGIN7 at 0xFFFF, a record that does not decrypt -> ERROR or closed
 (k) TDS 8.0: the client's first message in the TCP segment of its TLS Finished is answered
 (l) TDS 7.x TLS inside PRELOGIN, a resumed session: the LOGIN7 record in the segment of the
     client's last handshake message -> logged in
 (m) a bad request the primary answers with a fatal error (severity 20) and then closes its
     connection: the next client's login and the same session's next request work (the
     connection is not handed out by the pool)
 (n) a backend answering with a token Sluice does not know (a fake TDS backend of this test,
     a secondary of a second Sluice): as the first token, after a row in the same packet, in
     the second packet of a response; a backend closing mid-response -> the client gets an
     ERROR (or, once part of the answer reached it, a clean close); the daemon keeps serving
 (o) the fake secondary answers a fatal error and ends that connection only when the next
     message comes: the next client's read there must not get that connection
 (p) message types Sluice does not run (bulk load data, unknown types, PRELOGIN / LOGIN7 /
     SSPI after the login) -> ERROR 4014 of severity 16 and the session goes on; none reaches
     a backend (the transaction's connection keeps its session id and its transaction; the
     primary test server, which numbers its connections, was asked for none)
 (q) the packet size counts the 8-byte header (MS-TDS 2.2.3.1.3): a packet of exactly the
     negotiated 512 bytes is run, one of 513 -> ERROR, closed; before the login 4096 and 4097
 (r) a backend breaking the protocol (the fake secondary) before any of its answer reached
     the client -> error 50000 "... sent a malformed response: ...", severity 16, the session
     goes on; a connection closed before the answer -> still 10054
 (s) the same after whole rows were relayed -> the rows, a severity-20 ERROR (50000, or
     10054 for a closed connection) and a DONE_ERROR, then the close; after a row cut in two
     -> the close alone
Each daemon is stopped at the end with sluice.sh stop-check: exit status 0 on SIGTERM, a log
free of sanitizer reports and error lines.

Environment: TDS_BAD_PORT (base port, default 14600: +0..+2 test servers, +3 Sluice's MySQL
listener, +4 its TDS listener, +5 its admin, +6 the fake backend, +7..+9 the second Sluice,
+10 the first Sluice's TLS TDS listener),
SLUICE_FIXTURE, SLUICE_BIN (CTest sets them), SLUICE_IT_DIR (work files; else a temporary
directory). One line per check; exit 0 only if all passed.

The raw TDS helpers (TdsRaw, the message builders, the token parser, TdsServers, the config)
are imported by tds_session_fuzz.py.
"""

import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "fixtures", "tds_server.py")
PYTHON = "/usr/bin/python3"
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(SERVER))
from itlib import Checks, Daemon, eq, true, wait_until  # noqa: E402
from tdslib import port_open, q as ms_query  # noqa: E402,F401 -- ms_query: tds_session_fuzz
# The test server's TDS constants, string encodings, request reader, TYPE_INFO reader and
# token builder: written from MS-TDS apart from Sluice, they are this test's reference too.
from tds_server import (  # noqa: E402,F401 -- ENCRYPT_*, ST_RESET*: tds_session_fuzz
    BYTELEN, COLLATION, DONE_ATTN, DONE_COUNT, DONE_ERROR, DONE_MORE, ENCRYPT_NOT_SUP, ENCRYPT_OFF,
    ENCRYPT_ON, FIXED, PT_ATTENTION, PT_BATCH, PT_BULK, PT_LOGIN7, PT_PRELOGIN, PT_REPLY, PT_RPC,
    PT_TM, ST_EOM, ST_RESET, ST_RESET_SKIPTRAN, TDS74, USHORTLEN, Reader, SqlError, Tokens,
    b_varchar, colmetadata, encode_value, read_typeinfo, ucs2, us_varchar)
from tds_server import read_value as read_param_value  # noqa: E402

MAX_MESSAGE = 64 << 20  # Sluice's limit on an assembled client message


def header(ptype, length, status=ST_EOM, spid=0, packet_id=1):
    return struct.pack(">BBHHBB", ptype, status, length, spid, packet_id, 0)


def packet(ptype, payload, status=ST_EOM, length=None, packet_id=1):
    """One packet; LENGTH overrides the header's length field (to lie about it)."""
    return header(ptype, len(payload) + 8 if length is None else length, status,
                  packet_id=packet_id) + payload


def message(ptype, payload, packet_size=4096, first_status=0):
    """PAYLOAD as packets of at most PACKET_SIZE bytes, EOM on the last."""
    room = packet_size - 8
    out, pos, pid = bytearray(), 0, 1
    while True:
        chunk = payload[pos:pos + room]
        pos += len(chunk)
        last = pos >= len(payload)
        status = (first_status if pid == 1 else 0) | (ST_EOM if last else 0)
        out += header(ptype, len(chunk) + 8, status, packet_id=pid % 256) + chunk
        pid += 1
        if last:
            return bytes(out)


# --- client messages ------------------------------------------------------------------------------
def prelogin_payload(options=None, terminator=True, encryption=ENCRYPT_NOT_SUP):
    """PRELOGIN: OPTIONS as [(token, data)]; offsets computed."""
    if options is None:
        options = [(0, bytes([11, 0, 0, 0, 0, 0])), (1, bytes([encryption])), (2, b"\x00"),
                   (3, struct.pack("<I", os.getpid())), (4, b"\x00")]
    head_len = 5 * len(options) + (1 if terminator else 0)
    head, body = bytearray(), bytearray()
    for token, data in options:
        head += struct.pack(">BHH", token, head_len + len(body), len(data))
        body += data
    return bytes(head) + (b"\xff" if terminator else b"") + bytes(body)


def prelogin_option(payload, token):
    """The data of option TOKEN in a PRELOGIN payload, or None."""
    i = 0
    while i + 5 <= len(payload) and payload[i] != 0xFF:
        off, n = struct.unpack(">HH", payload[i + 1:i + 5])
        if payload[i] == token:
            return payload[off:off + n]
        i += 5
    return None


def tls_client_context(tds7=True):
    """TLS as TDS 7.x clients use it inside PRELOGIN (up to 1.2; TDS 8.0: any), the
    certificate unchecked."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tds7:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def tls8_handshake(sock):
    """TDS 8.0: the client's TLS handshake (ALPN tds/8.0) on SOCK before any TDS byte. Returns
    (SSLObject, incoming BIO, outgoing BIO), the client's Finished not sent yet: it is in the
    outgoing BIO, for the caller to send alone or with a first message."""
    ctx = tls_client_context(tds7=False)
    ctx.set_alpn_protocols(["tds/8.0"])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out)
    while True:
        try:
            obj.do_handshake()
            return obj, inc, out
        except ssl.SSLWantReadError:
            data = out.read()
            if data:
                sock.sendall(data)
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed during the TLS handshake")
            inc.write(chunk)


def obfuscate(password):
    return bytes((((b << 4) & 0xF0) | (b >> 4)) ^ 0xA5 for b in ucs2(password))


def login7_payload(user="app", password="app", database="sluice", app="tds_bad_input",
                   packet_size=4096, tds_version=TDS74, type_flags=0, spans=None, length=None):
    """LOGIN7 (MS-TDS 2.2.6.4) for SQL authentication. SPANS: {field index: (offset, count)}
    overrides table entries (0 HostName .. 8 Database); LENGTH overrides the Length field."""
    fixed = 94
    texts = ["tds-bad-host", user, None, app, "sluice", None, "raw-python", "", database]
    data, table = bytearray(), []
    for i, t in enumerate(texts):
        if i == 2:
            raw = obfuscate(password)
        elif t is None:
            raw = b""
        else:
            raw = ucs2(t)
        table.append((fixed + len(data), len(raw) // 2))
        data += raw
    for i, span in (spans or {}).items():
        table[i] = span
    body = bytearray()
    body += struct.pack("<IIIII", tds_version, packet_size, 7, os.getpid(), 0)
    body += bytes([0xE0, 0x03, type_flags, 0x00]) + struct.pack("<iI", 0, 0x0409)
    for off, n in table:
        body += struct.pack("<HH", off, n)
    body += b"\x00\x11\x22\x33\x44\x55"                       # ClientID
    end = fixed + len(data)
    body += struct.pack("<HH", end, 0) + struct.pack("<HH", end, 0)  # SSPI, AtchDBFile
    body += struct.pack("<HH", end, 0) + struct.pack("<I", 0)        # ChangePassword, cbSSPILong
    total = 4 + len(body) + len(data)
    assert 4 + len(body) == fixed
    return struct.pack("<I", total if length is None else length) + bytes(body) + bytes(data)


def all_headers(descriptor=0, outstanding=1, total=None, header_len=18):
    """ALL_HEADERS with one transaction descriptor header; TOTAL / HEADER_LEN override."""
    h = struct.pack("<IH", header_len, 2) + struct.pack("<QI", descriptor, outstanding)
    return struct.pack("<I", 4 + len(h) if total is None else total) + h


def batch_payload(sql, headers=None):
    return (all_headers() if headers is None else headers) + ucs2(sql)


# RPC parameter types: (TYPE_INFO, value bytes) builders.
def p_int(v, size=4):
    ti = bytes([0x26, size])
    if v is None:
        return ti, b"\x00"
    return ti, bytes([size]) + v.to_bytes(size, "little", signed=True)


def p_float(v):
    return b"\x6d\x08", b"\x00" if v is None else b"\x08" + struct.pack("<d", v)


def p_bit(v):
    return b"\x68\x01", b"\x00" if v is None else b"\x01" + bytes([1 if v else 0])


def p_nvarchar(v, max_chars=4000):
    if max_chars == "max" or (v is not None and len(v) > 4000):
        ti = b"\xe7\xff\xff" + COLLATION
        if v is None:
            return ti, b"\xff" * 8
        raw = ucs2(v)
        chunk = struct.pack("<I", len(raw)) + raw if raw else b""
        return ti, struct.pack("<Q", len(raw)) + chunk + b"\x00\x00\x00\x00"
    ti = b"\xe7" + struct.pack("<H", max_chars * 2) + COLLATION
    if v is None:
        return ti, b"\xff\xff"
    raw = ucs2(v)
    return ti, struct.pack("<H", len(raw)) + raw


def p_varbinary(v, max_len=8000):
    ti = b"\xa5" + struct.pack("<H", max_len)
    if v is None:
        return ti, b"\xff\xff"
    return ti, struct.pack("<H", len(v)) + v


def p_decimal(v, precision=18, scale=4):
    ti = bytes([0x6A, 17, precision, scale])
    if v is None:
        return ti, b"\x00"
    mag = abs(int(round(v * 10 ** scale)))
    return ti, bytes([17, 1 if v >= 0 else 0]) + mag.to_bytes(16, "little")


def rpc_param(name, typed, status=0):
    ti, value = typed
    return b_varchar(name) + bytes([status]) + ti + value


def rpc_payload(calls, headers=None):
    """CALLS: [(proc: int id or str name, [param bytes], option flags)], joined by 0xFF."""
    out = bytearray(all_headers() if headers is None else headers)
    for i, (proc, params, flags) in enumerate(calls):
        if i:
            out += b"\xff"
        if isinstance(proc, int):
            out += struct.pack("<HH", 0xFFFF, proc)
        else:
            out += us_varchar(proc)
        out += struct.pack("<H", flags)
        for p in params:
            out += p
    return bytes(out)


def executesql(sql, params=()):
    """sp_executesql (proc id 10): PARAMS as [(name, typed, sql type)]."""
    decl = ", ".join("%s %s" % (n, t) for n, _, t in params)
    ps = [rpc_param("", p_nvarchar(sql)), rpc_param("", p_nvarchar(decl))]
    ps += [rpc_param(n, typed) for n, typed, _ in params]
    return rpc_payload([(10, ps, 0)])


def tm_payload(kind, rest=b""):
    return all_headers() + struct.pack("<H", kind) + rest


# --- responses ------------------------------------------------------------------------------------
class BadStream(Exception):
    """The server sent a token stream this parser cannot read."""


LONG_LEN = {0x22, 0x23, 0x63}


class Cursor(Reader):
    """The test server's reader over a response: what it cannot read is BadStream here, and
    strings with broken UTF-16 are read, not refused."""

    def take(self, n):
        if self.p + n > len(self.d):
            raise BadStream("token stream truncated: %d bytes wanted at %d of %d"
                            % (n, self.p, len(self.d)))
        return super().take(n)

    def bvarchar(self):
        return self.take(self.u8() * 2).decode("utf-16-le", "replace")

    def usvarchar(self):
        return self.take(self.u16() * 2).decode("utf-16-le", "replace")


def read_type(c):
    """TYPE_INFO: the same in a response's COLMETADATA as in an RPC parameter."""
    try:
        return read_typeinfo(c)
    except SqlError as e:
        raise BadStream("unreadable TYPE_INFO: %s" % e)


def read_value(c, ti):
    """A value of a ROW or a RETURNVALUE. INTN, BITN and FLTN as the test server reads them in
    an RPC parameter, and the bytes of the USHORT-length types (PLP when max is 0xFFFF) as it
    reads a VARBINARY parameter; the other types raw (the server decodes them, and text types
    carry a text pointer in a response)."""
    t = ti["type"]
    if t in (0x26, 0x68, 0x6D):
        return read_param_value(c, ti)
    if t in USHORTLEN:
        raw = read_param_value(c, {"type": 0xA5, "max": ti["max"]})
        if raw is None:
            return None
        return raw.decode("utf-16-le", "replace") if t in (0xE7, 0xEF) else raw
    if t in FIXED:
        raw = c.take(ti["len"])
        if t in (0x30, 0x32, 0x34, 0x38, 0x7F):
            return int.from_bytes(raw, "little", signed=t != 0x30)
        if t == 0x3E:
            return struct.unpack("<d", raw)[0]
        return raw
    if t == 0x28 or t in (0x29, 0x2A, 0x2B) or t in BYTELEN:
        n = c.u8()
        if n == 0 or (n == 0xFF and t in (0x2F, 0x27, 0x2D, 0x25)):
            return None
        return c.take(n)
    if t in LONG_LEN:
        n = c.u8()
        if n == 0:
            return None
        c.take(n + 8)
        raw = c.take(c.u32())
        return raw.decode("utf-16-le", "replace") if t == 0x63 else raw
    raise BadStream("value of type 0x%02X" % t)


class Response:
    """What a token stream said: errors [(number, severity, message)], infos, result sets
    (rows as lists), DONE tokens [(token, status, count)], ENVCHANGE types, return values."""

    def __init__(self):
        self.errors, self.infos, self.results, self.dones = [], [], [], []
        self.envs, self.return_status, self.tokens, self.return_values = [], [], [], []
        self.packet_size = None
        self.columns = None  # the last result set's, for a later COLMETADATA 0xFFFF

    @property
    def rows(self):
        return [r for rs in self.results for r in rs]

    @property
    def attention_ack(self):
        return any(s & DONE_ATTN for _, s, _ in self.dones)

    @property
    def final(self):
        return bool(self.dones) and not self.dones[-1][1] & DONE_MORE

    def error_numbers(self):
        return [e[0] for e in self.errors]

    def __repr__(self):
        return "Response(errors=%r, rows=%r, dones=%r)" % (self.errors, self.rows[:5], self.dones)


def parse_tokens(data, resp=None, columns=None):
    """Walks a whole tabular result (TDS 7.2+); raises BadStream on what it cannot read.
    COLUMNS: what a COLMETADATA 0xFFFF (NoMetaData: a cursor fetch) stands for."""
    resp = resp or Response()
    c, cols = Cursor(data), columns
    while c.p < len(data):
        tok = c.u8()
        resp.tokens.append(tok)
        if tok == 0x81:
            n = c.u16()
            if n != 0xFFFF or cols is None:
                cols = []
            if n != 0xFFFF:
                for _ in range(n):
                    c.u32()
                    c.u16()
                    ti = read_type(c)
                    if ti["type"] in LONG_LEN:
                        for _ in range(c.u8()):
                            c.usvarchar()
                    ti["name"] = c.bvarchar()
                    cols.append(ti)
            resp.results.append([])
        elif tok in (0xD1, 0xD2):
            if cols is None:
                raise BadStream("ROW without COLMETADATA")
            nulls = c.take((len(cols) + 7) // 8) if tok == 0xD2 else b""
            row = []
            for i, ti in enumerate(cols):
                if tok == 0xD2 and nulls[i // 8] >> (i % 8) & 1:
                    row.append(None)
                else:
                    row.append(read_value(c, ti))
            resp.results[-1].append(row)
        elif tok in (0xAA, 0xAB):
            body = Cursor(c.take(c.u16()))
            number, state, severity = struct.unpack("<iBB", body.take(6))
            text = body.usvarchar()
            (resp.errors if tok == 0xAA else resp.infos).append((number, severity, text))
        elif tok == 0xE3:
            body = c.take(c.u16())
            resp.envs.append(body[0] if body else None)
            if body[:1] == b"\x04" and len(body) > 2:
                resp.packet_size = int(body[2:2 + 2 * body[1]].decode("utf-16-le", "replace"))
        elif tok in (0xAD, 0xA9, 0xA5, 0xA4, 0xED):
            c.take(c.u16())
        elif tok == 0xEE:
            c.take(c.u32())
        elif tok == 0xAE:
            while c.u8() != 0xFF:
                c.take(c.u32())
        elif tok == 0x79:
            resp.return_status.append(struct.unpack("<i", c.take(4))[0])
        elif tok == 0xAC:
            c.u16()
            c.bvarchar()
            c.u8()
            c.u32()
            c.u16()
            resp.return_values.append(read_value(c, read_type(c)))
        elif tok in (0xFD, 0xFE, 0xFF):
            status, _cmd, count = struct.unpack("<HHQ", c.take(12))
            resp.dones.append((tok, status, count))
        else:
            raise BadStream("unknown token 0x%02X at offset %d" % (tok, c.p - 1))
    resp.columns = cols
    return resp


# --- a raw TDS client -----------------------------------------------------------------------------
class TdsRaw:
    """A SQL Server client on a raw socket: just enough protocol to log in (SQL
    authentication, no encryption) and to send well- or ill-formed packets."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, strict=False):
        """STRICT: TDS 8.0, a TLS handshake (ALPN tds/8.0) before any TDS byte."""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.packet_size = 4096
        self.tls = None  # (SSLObject, incoming BIO, outgoing BIO): TLS inside PRELOGIN (7.x)
        if strict:
            obj, inc, out = tls8_handshake(self.sock)
            self.sock.sendall(out.read())
            # The first TDS message in a segment of its own, not with the TLS Finished: check
            # (k) tests that case alone.
            time.sleep(0.05)
            self.tls = (obj, inc, out)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if self.tls is None:
            self.sock.sendall(data)
            return
        obj, _, out = self.tls
        view = memoryview(data)
        while view:
            n = obj.write(view)
            view = view[n:]
        self.sock.sendall(out.read())

    def send_raw(self, data):
        """Bytes on the socket as they are, even under TLS."""
        self.sock.sendall(data)

    def _recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by peer (have %d bytes)" % len(self.buf))
        if self.tls is None:
            self.buf += chunk
            return
        obj, inc, _ = self.tls
        inc.write(chunk)
        while True:
            try:
                plain = obj.read(65536)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLZeroReturnError:
                raise ConnectionError("TLS closed by peer")
            except ssl.SSLError as e:
                raise ConnectionError("TLS error from the peer's bytes: %s" % e)
            if not plain:
                return
            self.buf += plain

    def recv_exact(self, n):
        while len(self.buf) < n:
            self._recv()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def start_tls(self):
        """TDS 7.x: the TLS handshake inside PRELOGIN messages, after a PRELOGIN whose
        ENCRYPTION the server answered with 0 (login only), 1 or 3 (everything)."""
        obj_in, obj_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = tls_client_context().wrap_bio(obj_in, obj_out)
        while True:
            try:
                obj.do_handshake()
                finished = True
            except ssl.SSLWantReadError:
                finished = False
            data = obj_out.read()
            if data:
                self.send_raw(message(PT_PRELOGIN, data))
            if finished:
                break
            _, payload = self.read_message()
            obj_in.write(payload)
        self.tls = (obj, obj_in, obj_out)

    def read_message(self):
        """(type, payload) of one whole message (packets up to END_OF_MESSAGE)."""
        parts, mtype = [], None
        while True:
            h = self.recv_exact(8)
            ptype, status, length = h[0], h[1], struct.unpack(">H", h[2:4])[0]
            if length < 8:
                raise BadStream("packet length %d from the server" % length)
            if mtype is None:
                mtype = ptype
            parts.append(self.recv_exact(length - 8))
            if status & ST_EOM:
                return mtype, b"".join(parts)

    def response(self, columns=None):
        """The next tabular result, parsed (COLUMNS: see parse_tokens)."""
        mtype, payload = self.read_message()
        if mtype != PT_REPLY:
            raise BadStream("message type %d from the server" % mtype)
        return parse_tokens(payload, columns=columns)

    def prelogin(self, payload=None):
        self.send(message(PT_PRELOGIN, prelogin_payload() if payload is None else payload))
        mtype, reply = self.read_message()
        true(mtype == PT_REPLY, "PRELOGIN answered with message type %d" % mtype)
        return reply

    def login(self, user="app", password="app", database="sluice", packet_size=4096,
              prelogin=True, encrypt=ENCRYPT_NOT_SUP, **kw):
        """PRELOGIN and LOGIN7; raises AssertionError with the server's errors when the login
        is refused. ENCRYPT: the PRELOGIN ENCRYPTION value; with 0 (off) and a server that
        supports TLS, the LOGIN7 travels under TLS and the rest in the clear; with 1 (on),
        everything is under TLS."""
        mode = None
        if prelogin:
            reply = self.prelogin(prelogin_payload(encryption=encrypt))
            server = prelogin_option(reply, 1)
            if server in (b"\x00", b"\x01", b"\x03") and encrypt != ENCRYPT_NOT_SUP:
                mode = "login" if server == b"\x00" and encrypt == ENCRYPT_OFF else "full"
                self.start_tls()
        self.send(message(PT_LOGIN7, login7_payload(user, password, database,
                                                    packet_size=packet_size, **kw)))
        if mode == "login":
            self.tls = None
        r = self.response()
        if r.errors or 0xAD not in r.tokens:
            raise AssertionError("login refused: %r" % (r.errors,))
        self.packet_size = r.packet_size or 4096
        return r

    def request(self, ptype, payload, status=0):
        self.send(message(ptype, payload, self.packet_size, status))
        return self.response()

    def batch(self, sql, status=0):
        return self.request(PT_BATCH, batch_payload(sql), status)

    def query(self, sql):
        """Rows of SQL; fails on an error."""
        r = self.batch(sql)
        true(not r.errors, "%s: errors %r" % (sql, r.errors))
        return r.rows

    def error_or_close(self, timeout=10.0):
        """After bad input: ('error', Response) when a tabular result with an ERROR token
        came, ('closed', None) when the server closed without one, ('response', Response)
        for an answer without error. Fails on silence (a hang)."""
        self.sock.settimeout(timeout)
        try:
            r = self.response()
        except (ConnectionError, ConnectionResetError, BrokenPipeError):
            return "closed", None
        except socket.timeout:
            raise AssertionError("no answer and no close within %.0f s" % timeout)
        return ("error" if r.errors else "response"), r

    def closed_by_peer(self, timeout=5.0):
        """True if the peer closes (EOF or reset) within TIMEOUT; data is discarded."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return False


def expect_error_then_close(t, what, numbers=None, close=True, timeout=10.0):
    """The next thing on raw session T is a tabular result with an ERROR token (its number
    in NUMBERS, if given), then (with CLOSE) the connection ends. Returns the Response."""
    kind, r = t.error_or_close(timeout)
    true(kind == "error", "%s: expected a TDS ERROR token, got %s %r" % (what, kind, r))
    if numbers is not None:
        true(any(n in numbers for n in r.error_numbers()),
             "%s: error numbers %r, expected one of %r" % (what, r.errors, numbers))
    if close:
        true(t.closed_by_peer(5), "%s: the connection stays open after error %r" % (what, r.errors))
    return r


# --- the test servers, the daemon's config --------------------------------------------------------
def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class TdsServers:
    """Three TDS test servers (primary, secondary1, secondary2) sharing one --log, users
    app/app and monitor/monitor. stop() ends them by pid and reports tracebacks."""

    NAMES = (("primary", 0, "primary"), ("secondary1", 1, "secondary"),
             ("secondary2", 2, "secondary"))

    def __init__(self, work, base, lag_ms=0):
        self.work, self.base, self.lag_ms = work, base, lag_ms
        self.procs = {}

    def start(self):
        for name, off, role in self.NAMES:
            port = self.base + off
            true(port_free(port), "port %d for test server %s is taken" % (port, name))
            d = os.path.join(self.work, name)
            os.makedirs(d, exist_ok=True)
            err = open(os.path.join(self.work, name + ".err"), "ab")
            self.procs[name] = subprocess.Popen(
                [PYTHON, SERVER, "--port", str(port), "--name", name, "--role", role, "--log",
                 os.path.join(self.work, "ag.log"), "--dir", d, "--user", "app:app", "--user",
                 "monitor:monitor", "--lag-ms", str(self.lag_ms)],
                stdout=err, stderr=err, stdin=subprocess.DEVNULL)
            err.close()
        for name, off, _ in self.NAMES:
            true(wait_until(lambda: port_open(self.base + off), 10),
                 "test server %s listens on %d" % (name, self.base + off))

    def alive(self):
        return all(p.poll() is None for p in self.procs.values())

    def stderr(self, name):
        with open(os.path.join(self.work, name + ".err"), errors="replace") as f:
            return f.read()

    def stop(self):
        """Problems: a server that died, did not stop on SIGTERM, or printed a traceback."""
        problems = []
        for name, p in self.procs.items():
            if p.poll() is not None:
                problems.append("test server %s died (exit %s)" % (name, p.returncode))
            else:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    problems.append("test server %s did not stop on SIGTERM" % name)
            text = self.stderr(name)
            if "Traceback" in text:
                problems.append("test server %s printed a traceback:\n%s" % (name, text[-3000:]))
        return problems

    def stop_counted(self, checks):
        """stop() as one more of CHECKS: the servers ran to the end, stopped on SIGTERM, printed
        no traceback."""
        problems = self.stop()
        checks.count += 1
        if problems:
            checks.failures.append("test servers")
            print("FAIL - test servers: %s" % "; ".join(problems), file=sys.stderr)
        else:
            print("ok   - test servers alive, stopped on SIGTERM, no traceback")


def sluice_config(mysql_port, tds_port, admin_port, tds_backends, monitor=True, workers=1,
                  tls_port=None, certs=None, session_pool_port=None):
    """A Sluice with a MySQL listener (sluice.sh waits for it) whose one MySQL backend is a
    dead loopback port (a warning only), a TDS listener without TLS, and TDS_BACKENDS
    [(name, port, role)]; with TLS_PORT, a second TDS listener with the certificate in
    CERTS (make_certs); with SESSION_POOL_PORT, a third TDS listener with pool_mode =
    "session" (the others pool per transaction, the default)."""
    text = """
workers = %d
client_handshake_timeout_ms = 3000
[[listeners]]
name = "mysql"
address = "127.0.0.1"
port = %d
[[listeners]]
name = "tds"
protocol = "tds"
address = "127.0.0.1"
port = %d
[[backends]]
name = "mysql-unused"
host = "127.0.0.1"
port = 1
role = "primary"
""" % (workers, mysql_port, tds_port)
    if tls_port:
        text += ('[[listeners]]\nname = "tds-tls"\nprotocol = "tds"\naddress = "127.0.0.1"\n'
                 'port = %d\ntls = { cert_file = "%s/server.pem", key_file = "%s/server.key" }\n'
                 % (tls_port, certs, certs))
    if session_pool_port:
        text += ('[[listeners]]\nname = "tds-session-pool"\nprotocol = "tds"\n'
                 'address = "127.0.0.1"\nport = %d\npool_mode = "session"\n' % session_pool_port)
    for name, port, role in tds_backends:
        text += '[[tds_backends]]\nname = "%s"\nhost = "127.0.0.1"\nport = %d\n' % (name, port)
        if role == "primary":
            text += 'role = "primary"\n'
    if monitor:
        text += ('[tds_monitor]\nuser = "monitor"\npassword = "monitor"\ninterval_ms = 200\n'
                 'timeout_ms = 2000\n')
    text += ('[routing]\nmax_lag_ms = 5000\nfailover_hold_ms = 3000\n'
             '[[users]]\nname = "app"\npassword = "app"\n'
             '[admin]\naddress = "127.0.0.1"\nport = %d\n[logging]\nlevel = "debug"\n' % admin_port)
    return text


def make_certs(work):
    """tests/fixtures/make-certs.sh into WORK/certs; returns the directory."""
    certs = os.path.join(work, "certs")
    subprocess.run(["bash", os.path.join(HERE, "..", "fixtures", "make-certs.sh"), certs],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return certs


def work_dir(prefix):
    base = os.environ.get("SLUICE_IT_DIR")
    if base:
        os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=base or None)


def ms_connect(port, **kw):
    import pymssql
    args = dict(server="127.0.0.1", port=port, user="app", password="app", database="sluice",
                autocommit=True, login_timeout=10, timeout=20)
    args.update(kw)
    return pymssql.connect(**args)


# --- a fake TDS backend: logs in properly, answers some batches with tokens nobody knows ----------
def fake_login_reply(packet_size):
    """The test server's login reply, token for token (tds_server.py Session.login)."""
    t = Tokens(TDS74)
    t.env_str(1, "sluice", "master")
    t.info(5701, "Changed database context to 'sluice'.", "fake", state=2)
    t.env_bytes(7, COLLATION)
    t.env_str(2, "us_english")
    t.info(5703, "Changed language setting to us_english.", "fake")
    t.loginack(TDS74)
    t.env_str(4, str(packet_size), "4096")
    t.done(0xFD, 0)
    return bytes(t.out)


def done(token, status, count=0):
    t = Tokens(TDS74)
    t.done(token, status, count=count)
    return bytes(t.out)


def int_result(values, name="v"):
    """COLMETADATA (one INT column) and a ROW per value."""
    out = bytearray(colmetadata([name], [("int", 4)], TDS74))
    for v in values:
        out += b"\xd1" + encode_value(v, "int", 4, TDS74)
    return bytes(out)


class Doomed(Exception):
    """The fake backend sent a fatal error: the connection is to end."""


class FakeBackend:
    """A TDS server on PORT that logs clients in (any user) and answers a batch by its text:
    'unknown_first' -> token 0x01 first; 'unknown_after_row' -> a result row, then 0x01 in
    the same packet; 'unknown_second_packet' -> a first packet full of rows, 0x01 in the
    second; 'close_mid_response' -> a first packet of rows, then the connection closed;
    'fatal_then_close' -> a severity-20 error, then the connection closed when the next message
    comes; 'rows_then_unknown' -> a packet of three whole rows (no EOM), half a second later a
    packet with token 0x01; 'row_cut_then_unknown' -> the same with the first packet ending
    inside a row; 'rows_then_close' -> the packet of whole rows, half a second later the
    connection closed; 'close_at_once' -> the connection closed unanswered; 'SELECT <number>
    ...' -> that number in one INT row; anything else -> one INT row (1). Unknown tokens follow
    with junk and a DONE, as a confused server might send them."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.stopping = False
        self.batches = []
        self.errors = []
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping = True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()

    def accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.stopping:
                conn.close()
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    @staticmethod
    def read_message(conn, buf):
        parts, mtype, status0 = [], None, 0
        while True:
            while len(buf) < 8:
                chunk = conn.recv(65536)
                if not chunk:
                    raise ConnectionError
                buf += chunk
            ptype, status, length = buf[0], buf[1], struct.unpack(">H", buf[2:4])[0]
            while len(buf) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    raise ConnectionError
                buf += chunk
            if mtype is None:
                mtype, status0 = ptype, status
            parts.append(bytes(buf[8:length]))
            del buf[:length]
            if status & ST_EOM:
                return mtype, status0, b"".join(parts)

    def serve(self, conn):
        buf = bytearray()
        size = 4096
        try:
            mtype, _, payload = self.read_message(conn, buf)
            if mtype == PT_PRELOGIN:
                reply = prelogin_payload([(0, bytes([15, 0, 7, 208, 0, 0])), (1, b"\x02"),
                                          (2, b"\x00"), (3, b""), (4, b"\x00")])
                conn.sendall(message(PT_REPLY, reply))
                mtype, _, payload = self.read_message(conn, buf)
            if mtype != PT_LOGIN7:
                return
            asked = struct.unpack("<I", payload[8:12])[0] or 4096
            size = max(512, min(32767, asked))
            conn.sendall(message(PT_REPLY, fake_login_reply(size)))
            while True:
                mtype, _, payload = self.read_message(conn, buf)
                if mtype == PT_ATTENTION:
                    conn.sendall(message(PT_REPLY, done(0xFD, DONE_ATTN), size))
                    continue
                text = ""
                if mtype == PT_BATCH:
                    total = struct.unpack("<I", payload[:4])[0] if len(payload) >= 4 else 0
                    text = payload[total if 4 <= total <= len(payload) else 0:].decode(
                        "utf-16-le", "replace")
                self.batches.append(text)
                self.answer(conn, text, size)
        except Doomed:
            # The connection ends when the next message comes, unanswered.
            try:
                conn.settimeout(30)
                conn.recv(65536)
            except OSError:
                pass
        except (ConnectionError, OSError):
            pass
        except Exception as e:  # noqa: BLE001 -- reported by the test
            self.errors.append(repr(e))
        finally:
            conn.close()

    def answer(self, conn, text, size):
        junk = b"\x01\x02\x03\x04\x05\x06\x07\x08" + done(0xFD, 0)
        if "fatal_then_close" in text:
            t = Tokens(TDS74)
            t.error(SqlError(4014, "fatal, as the fake backend wants it", severity=20), "fake")
            t.done(0xFD, DONE_ERROR)
            conn.sendall(message(PT_REPLY, bytes(t.out), size))
            raise Doomed
        if "close_at_once" in text:
            conn.shutdown(socket.SHUT_RDWR)
            raise ConnectionError
        if any(m in text for m in ("rows_then_unknown", "row_cut_then_unknown",
                                   "rows_then_close")):
            # The pause makes Sluice relay the first packet before the rest comes.
            rows = int_result([1, 2, 3])
            cut = len(rows) - 2 if "row_cut" in text else len(rows)
            conn.sendall(packet(PT_REPLY, rows[:cut], status=0))
            time.sleep(0.5)
            if "close" in text:
                conn.shutdown(socket.SHUT_RDWR)
                raise ConnectionError
            conn.sendall(packet(PT_REPLY, rows[cut:] + junk, packet_id=2))
        elif "unknown_first" in text:
            conn.sendall(message(PT_REPLY, junk, size))
        elif "unknown_after_row" in text:
            conn.sendall(message(PT_REPLY, int_result([7]) + junk, size))
        elif "unknown_second_packet" in text or "close_mid_response" in text:
            rows = int_result(list(range(2 * size // 5)))
            first = rows[:size - 8]
            conn.sendall(packet(PT_REPLY, first, status=0))
            if "close_mid_response" in text:
                conn.shutdown(socket.SHUT_RDWR)
                raise ConnectionError
            conn.sendall(packet(PT_REPLY, b"\x01\x01\x01\x01" + done(0xFD, 0), packet_id=2))
        else:
            # SELECT <number> answers that number (the survivors' queries), the rest 1.
            m = re.match(r"\s*SELECT (\d+)", text)
            value = int(m.group(1)) if m else 1
            conn.sendall(message(PT_REPLY, int_result([value]) + done(0xFD, DONE_COUNT, 1), size))


# ==================================================================================================
BASE = int(os.environ.get("TDS_BAD_PORT", "14600"))
TEST_PORTS = (BASE, BASE + 1, BASE + 2)
MYSQL_PORT, TDS_PORT, ADMIN_PORT, FAKE_PORT = BASE + 3, BASE + 4, BASE + 5, BASE + 6
B_MYSQL_PORT, B_TDS_PORT, B_ADMIN_PORT = BASE + 7, BASE + 8, BASE + 9
TLS_PORT = BASE + 10


class Survivors:
    """A pymssql session opened before the first bad input: after every case it runs a query
    (and a fresh session does too); the daemon must still run."""

    def __init__(self, daemon, port):
        self.daemon, self.port = daemon, port
        self.conn = ms_connect(port)
        self.n = 0

    def check(self, what):
        self.n += 1
        true(self.daemon.alive(), "%s: the daemon is not running any more" % what)
        try:
            rows = ms_query(self.conn, "SELECT %d AS n, @@SERVERNAME AS s" % self.n)
        except Exception as e:  # noqa: BLE001 -- reported as the check's failure
            raise AssertionError("%s: the pymssql session opened before it failed: %s: %s"
                                 % (what, type(e).__name__, e))
        eq(rows[0][0], self.n, "%s: the session opened before it answers" % what)
        try:
            fresh = ms_connect(self.port)
            try:
                eq(ms_query(fresh, "SELECT %d AS f" % (1000 + self.n))[0][0], 1000 + self.n,
                   "%s: a fresh pymssql session" % what)
            finally:
                fresh.close()
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001
            raise AssertionError("%s: a fresh pymssql session failed: %s: %s"
                                 % (what, type(e).__name__, e))


def raw_session(port=None, **kw):
    t = TdsRaw(port or TDS_PORT)
    t.login(**kw)
    return t


def case_a_truncated(sv):
    # Before PRELOGIN: a header promising 200 bytes, 20 sent, then the client closes.
    for what, data in (("PRELOGIN promising 200 bytes, 20 sent",
                        packet(PT_PRELOGIN, prelogin_payload(), length=200)[:20]),
                       ("half a header", b"\x12\x01\x00")):
        t = TdsRaw(TDS_PORT)
        t.send(data)
        t.sock.shutdown(socket.SHUT_WR)
        kind, r = t.error_or_close(10)
        true(kind in ("closed", "error"), "%s: %s %r" % (what, kind, r))
        t.close()
        sv.check(what)
    # LOGIN7 cut short after a good PRELOGIN.
    t = TdsRaw(TDS_PORT)
    t.prelogin()
    login = message(PT_LOGIN7, login7_payload())
    t.send(login[:-30])
    t.sock.shutdown(socket.SHUT_WR)
    kind, r = t.error_or_close(10)
    true(kind in ("closed", "error"), "LOGIN7 cut short: %s %r" % (kind, r))
    t.close()
    sv.check("LOGIN7 cut short")
    # A request after login: the header promises 1000 bytes, 100 come, then the close.
    t = raw_session()
    t.send(packet(PT_BATCH, batch_payload("SELECT 1 AS x"), length=1000))
    t.sock.shutdown(socket.SHUT_WR)
    kind, r = t.error_or_close(10)
    true(kind in ("closed", "error"), "SQLBatch cut short: %s %r" % (kind, r))
    t.close()
    sv.check("SQLBatch cut short after login")


def case_b_handshake_timeout(sv):
    # A client that connects and sends nothing, or half a PRELOGIN, and keeps its socket
    # open: closed after client_handshake_timeout_ms (3000 here), as MySQL clients are -- a
    # login that never finishes must not hold a connection forever.
    for what, data in (("nothing sent", b""),
                       ("half a PRELOGIN",
                        packet(PT_PRELOGIN, prelogin_payload(), length=200)[:20]),
                       ("PRELOGIN, then nothing", message(PT_PRELOGIN, prelogin_payload())),
                       ("ENCRYPT_ON, then an empty PRELOGIN in place of a ClientHello", "tls")):
        t = TdsRaw(TDS_PORT if data != "tls" else TLS_PORT)
        try:
            if data == "tls":
                t.prelogin(prelogin_payload(encryption=ENCRYPT_ON))
                t.send(message(PT_PRELOGIN, b""))
            elif data:
                t.send(data)
            t0 = time.monotonic()
            true(t.closed_by_peer(8), "%s, the socket kept open: not closed within 8 s "
                 "(client_handshake_timeout_ms = 3000)" % what)
            elapsed = time.monotonic() - t0
            true(elapsed > 2, "%s: closed after %.1f s, before the handshake timeout"
                 % (what, elapsed))
        finally:
            t.close()
        sv.check(what + ", held open")
    # A logged-in idle session is not subject to it.
    t = raw_session()
    try:
        time.sleep(3.5)
        eq(t.query("SELECT 'idle' AS i"), [["idle"]], "an idle logged-in session after 3.5 s")
    finally:
        t.close()


def case_c_short_length(sv):
    for length in (0, 4, 7):
        t = TdsRaw(TDS_PORT)
        try:
            t.send(header(PT_PRELOGIN, length) + prelogin_payload())
            expect_error_then_close(t, "PRELOGIN packet length %d" % length, (4014,))
        finally:
            t.close()
        sv.check("packet length %d before login" % length)
    t = raw_session()
    try:
        t.send(header(PT_BATCH, 5) + batch_payload("SELECT 1"))
        expect_error_then_close(t, "SQLBatch packet length 5", (4014,))
    finally:
        t.close()
    sv.check("packet length 5 after login")


def case_d_oversized_packet(sv):
    # Before login the packet size is 4096.
    t = TdsRaw(TDS_PORT)
    try:
        t.send(header(PT_PRELOGIN, 0xFFFF))
        expect_error_then_close(t, "PRELOGIN packet of 65535 bytes", (4014,))
    finally:
        t.close()
    sv.check("65535-byte packet before login")
    t = TdsRaw(TDS_PORT)
    try:
        t.send(header(PT_PRELOGIN, 8192) + b"\0" * 8184)
        expect_error_then_close(t, "PRELOGIN packet of 8192 bytes", (4014,))
    finally:
        t.close()
    sv.check("8192-byte packet before login")
    # After a login with packet size 512: a packet of 1024 bytes.
    t = raw_session(packet_size=512)
    try:
        eq(t.query("SELECT 'small' AS s"), [["small"]], "query with packet size 512")
        sql = "SELECT '%s' AS s" % ("y" * 400)
        payload = batch_payload(sql)
        t.send(packet(PT_BATCH, payload))
        expect_error_then_close(t, "a %d-byte packet after negotiating 512" % (len(payload) + 8),
                                (4014,))
    finally:
        t.close()
    sv.check("packet over the negotiated size")
    # Multi-packet messages within the size are fine.
    t = raw_session(packet_size=512)
    try:
        s = "z" * 3000
        eq(t.query("SELECT '%s' AS s" % s), [[s]], "a 6 KB batch in 512-byte packets")
    finally:
        t.close()


def case_e_oversized_message(sv):
    t = raw_session()
    try:
        room = 4096 - 8
        n_full = MAX_MESSAGE // room          # these stay within the limit ...
        first = batch_payload("SELECT 1 --")
        body = first + b"-" * (room - len(first))
        chunk = b"-" * room
        block = b"".join(packet(PT_BATCH, chunk, status=0, packet_id=(i + 2) % 256)
                         for i in range(256))
        t.send(packet(PT_BATCH, body, status=0))
        sent = 1
        while sent + 256 <= n_full:
            t.send(block)
            sent += 256
        while sent < n_full:
            t.send(packet(PT_BATCH, chunk, status=0, packet_id=(sent + 1) % 256))
            sent += 1
        # ... the next header takes the message over 64 MiB; its body is never sent.
        t.send(header(PT_BATCH, 4096, status=0, packet_id=(sent + 1) % 256))
        expect_error_then_close(t, "a message over 64 MiB", (4014,), timeout=20)
    finally:
        t.close()
    sv.check("message over 64 MiB")


def case_f_type_switch(sv):
    t = raw_session()
    try:
        payload = batch_payload("SELECT 'a' AS a")
        t.send(packet(PT_BATCH, payload[:10], status=0)
               + packet(PT_RPC, payload[10:], packet_id=2))
        expect_error_then_close(t, "an RPC packet inside an SQLBatch message", (4014,))
    finally:
        t.close()
    sv.check("packet type changing inside a message")
    t = TdsRaw(TDS_PORT)
    try:
        p = prelogin_payload()
        t.send(packet(PT_PRELOGIN, p[:8], status=0) + packet(PT_LOGIN7, p[8:], packet_id=2))
        expect_error_then_close(t, "a LOGIN7 packet inside a PRELOGIN message", (4014,))
    finally:
        t.close()
    sv.check("packet type changing inside PRELOGIN")


def case_g_prelogin(sv):
    good = prelogin_payload()
    bad = {
        "VERSION pointing outside the packet": struct.pack(">BHH", 0, 0x1000, 6) + b"\xff",
        "ENCRYPTION longer than the packet": struct.pack(">BHH", 1, 6, 0x0100) + b"\xff\x02",
        "offset 0xFFFF": struct.pack(">BHH", 0, 0xFFFF, 0xFFFF) + b"\xff",
        "no terminator": good.replace(b"\xff", b"", 1)[:25],
        "option table truncated": struct.pack(">BHH", 0, 11, 6)[:3],
        "empty": b"",
    }
    for what, payload in bad.items():
        t = TdsRaw(TDS_PORT)
        try:
            t.send(message(PT_PRELOGIN, payload))
            expect_error_then_close(t, "PRELOGIN, " + what, (4014,))
        finally:
            t.close()
        sv.check("PRELOGIN, " + what)
    # Something else than PRELOGIN or LOGIN7 first.
    t = TdsRaw(TDS_PORT)
    try:
        t.send(message(PT_BATCH, batch_payload("SELECT 1")))
        expect_error_then_close(t, "an SQLBatch before login", (4014,))
    finally:
        t.close()
    sv.check("SQLBatch before login")


def case_h_login7(sv):
    variants = {
        "UserName at offset 0xFFFF": dict(spans={1: (0xFFFF, 3)}),
        "Database at 0xFFFF, 0xFFFF characters": dict(spans={8: (0xFFFF, 0xFFFF)}),
        "HostName past the end": dict(spans={0: (94, 500)}),
        "AppName inside the fixed part": dict(spans={3: (10, 4)}),
        "Length field 10 bytes over": "over",
        "Length field 10 bytes short": "short",
        "Length field 0": "zero",
    }
    for what, v in variants.items():
        if isinstance(v, dict):
            payload = login7_payload(**v)
        else:
            n = len(login7_payload())
            payload = login7_payload(length={"over": n + 10, "short": n - 10, "zero": 0}[v])
        t = TdsRaw(TDS_PORT)
        try:
            t.prelogin()
            t.send(message(PT_LOGIN7, payload))
            expect_error_then_close(t, "LOGIN7, " + what, (4014,))
        finally:
            t.close()
        sv.check("LOGIN7, " + what)
    for n in (0, 4, 50, 93):
        t = TdsRaw(TDS_PORT)
        try:
            t.prelogin()
            short = login7_payload()[:n]
            if n >= 4:
                short = struct.pack("<I", n) + short[4:]
            t.send(message(PT_LOGIN7, short))
            expect_error_then_close(t, "LOGIN7 of %d bytes" % n, (4014,))
        finally:
            t.close()
        sv.check("LOGIN7 of %d bytes" % n)
    for what, user, password in (("wrong password", "app", "not-app"),
                                 ("unknown user", "nobody", "app"),
                                 ("empty password", "app", "")):
        t = TdsRaw(TDS_PORT)
        try:
            t.prelogin()
            t.send(message(PT_LOGIN7, login7_payload(user, password)))
            r = expect_error_then_close(t, "LOGIN7, " + what, (18456,))
            true(0xAD not in r.tokens, "%s: a LOGINACK came with the error" % what)
        finally:
            t.close()
        sv.check("LOGIN7, " + what)
    # LOGIN7 without PRELOGIN (jTDS does it): a login.
    t = TdsRaw(TDS_PORT)
    try:
        t.login(prelogin=False)
        eq(t.query("SELECT 'no prelogin' AS p"), [["no prelogin"]], "LOGIN7 without PRELOGIN")
    finally:
        t.close()


def case_i_after_login(sv):
    # An SQLBatch with an odd number of text bytes.
    t = raw_session()
    try:
        t.send(message(PT_BATCH, batch_payload("SELECT 1") + b"\x20"))
        expect_error_then_close(t, "SQLBatch with an odd byte count", (4014,), close=False)
    finally:
        t.close()
    sv.check("SQLBatch, odd byte count")
    # ALL_HEADERS lengths that do not fit.
    for what, hdr in (("inner header longer than ALL_HEADERS", all_headers(header_len=40)),
                      ("inner header length 2", all_headers(header_len=2)),
                      ("ALL_HEADERS longer than the message", all_headers(total=0x7FFFFFF0)),
                      ("ALL_HEADERS length 2", all_headers(total=2))):
        t = raw_session()
        try:
            t.send(message(PT_BATCH, batch_payload("SELECT 2 AS b", headers=hdr)))
            expect_error_then_close(t, "SQLBatch, " + what, close=False)
        finally:
            t.close()
        sv.check("SQLBatch, " + what)
    # An RPC with a truncated parameter: error 8009, and the session goes on.
    t = raw_session()
    try:
        good = executesql("SELECT @a AS a", [("@a", p_int(5), "int")])
        eq(t.request(PT_RPC, good).rows, [[5]], "sp_executesql before the truncated one")
        for cut in (1, 3, 7):
            r = t.request(PT_RPC, good[:-cut])
            true(8009 in r.error_numbers() or any(e[1] >= 20 for e in r.errors),
                 "RPC cut by %d bytes: expected error 8009, got %r" % (cut, r))
            eq(t.request(PT_RPC, good).rows, [[5]], "the same session after an RPC cut by %d" % cut)
        # A parameter announcing a 4000-character NVARCHAR of which 10 bytes come.
        bad = rpc_payload([(10, [rpc_param("", p_nvarchar("SELECT 1")),
                                 b"\x00\x00\xe7\x40\x1f" + COLLATION + b"\x40\x1f" + b"x" * 10],
                              0)])
        r = t.request(PT_RPC, bad)
        true(r.errors, "RPC with a value longer than the message: no error (%r)" % r)
        eq(t.query("SELECT 'after rpc' AS r"), [["after rpc"]], "the same session after bad RPCs")
    finally:
        t.close()
    sv.check("RPC, truncated parameter")
    # Unknown packet types, LOGIN7 and PRELOGIN after login.
    for ptype in (0x05, 0x09, 0x0B, 0x2A, 0xFF, PT_LOGIN7, PT_PRELOGIN):
        t = raw_session()
        try:
            t.send(message(ptype, b"\x01\x02\x03\x04"))
            expect_error_then_close(t, "packet type 0x%02X after login" % ptype, close=False)
        finally:
            t.close()
        sv.check("packet type 0x%02X after login" % ptype)
    # A transaction manager request of an unknown type.
    for kind in (0x63, 0xFFFF, 3):
        t = raw_session()
        try:
            t.send(message(PT_TM, tm_payload(kind, b"\x00\x00")))
            expect_error_then_close(t, "TM request type %d" % kind, close=False)
        finally:
            t.close()
        sv.check("TM request type %d" % kind)
    # After an error Sluice answered itself, the session's next request works (8009 above);
    # after a backend's fatal error (unknown type), the next request gets an answer too --
    # an error or rows, not a hang.
    t = raw_session()
    try:
        t.send(message(0x0B, b"\x01\x02\x03\x04"))
        kind, r = t.error_or_close(10)
        if kind != "closed":
            t.sock.settimeout(10)
            try:
                r2 = t.batch("SELECT 'next' AS n")
                true(r2.rows == [["next"]] or r2.errors, "the request after: %r" % r2)
            except (ConnectionError, OSError):
                pass
    finally:
        t.close()
    sv.check("the request after an unknown packet type")


def case_n_unknown_tokens(sv, fake):
    eq(ms_query(sv.conn, "SELECT 1 AS v"), [(1,)], "a read through the fake secondary")
    for marker, may_close in (("unknown_first", False), ("unknown_after_row", False),
                              ("unknown_second_packet", True), ("close_mid_response", True)):
        t = raw_session(B_TDS_PORT)
        try:
            t.sock.settimeout(15)
            t.send(message(PT_BATCH, batch_payload("SELECT '%s' AS m" % marker)))
            kind, r = t.error_or_close(15)
            # Once part of the answer reached the client, a close is all Sluice can do.
            true(kind == "error" or (may_close and kind == "closed"),
                 "%s: expected a TDS error%s, got %s %r"
                 % (marker, " or a close" if may_close else "", kind, r))
            if kind == "error":
                # The session goes on (Sluice drops the broken backend connection).
                try:
                    r2 = t.batch("SELECT 'again' AS a")
                    true(r2.rows or r2.errors, "%s: the request after: %r" % (marker, r2))
                except (ConnectionError, OSError, BadStream):
                    pass
        finally:
            t.close()
        sv.check("unknown token from a backend (%s)" % marker)
        # The real primary serves the same session meanwhile.
        rows = ms_query(sv.conn, "SELECT @@IDENTITY AS i, @@SERVERNAME AS s")
        eq(rows[0][1], "primary", "a read for the primary after %s" % marker)
    true(any("unknown_first" in b for b in fake.batches),
         "the fake backend never got the bad requests (routing?): %r" % fake.batches[-5:])
    true(not fake.errors, "the fake backend failed: %r" % fake.errors)


def case_o_fatal_then_close(sv, fake):
    # The fake secondary answers 'fatal_then_close' with a severity-20 error and closes that
    # connection when anything more comes (as a server that ends a connection after a fatal
    # error, its FIN still on the way). The next client's read on that secondary must not
    # get the doomed connection from the pool: its valid request must succeed.
    failures = []
    for i in range(5):
        a = raw_session(B_TDS_PORT)
        try:
            a.send(message(PT_BATCH, batch_payload("SELECT 'fatal_then_close' AS m")))
            kind, r = a.error_or_close(10)
            true(kind == "error", "fatal_then_close: %s %r" % (kind, r))
        finally:
            a.close()
        b = raw_session(B_TDS_PORT)
        try:
            r = b.batch("SELECT %d AS n" % (500 + i))
            if r.errors or r.rows != [[500 + i]]:
                failures.append(r.errors or r.rows)
        except (OSError, BadStream) as e:
            failures.append(repr(e))
        finally:
            b.close()
    true(not failures, "%d of 5 reads right after another client's fatal error failed: %r"
         % (len(failures), failures[:2]))
    sv.check("after fatal_then_close")


def case_j_tls(sv):
    # Encryption asked of a listener without a certificate: refused after the PRELOGIN reply.
    t = TdsRaw(TDS_PORT)
    try:
        reply = t.prelogin(prelogin_payload(encryption=ENCRYPT_ON))
        eq(prelogin_option(reply, 1), b"\x02", "ENCRYPTION a listener without TLS answers")
        true(t.closed_by_peer(5), "ENCRYPT_ON to a listener without TLS: not closed")
    finally:
        t.close()
    sv.check("encryption asked of a listener without TLS")
    # Not a TLS handshake inside PRELOGIN after ENCRYPT_ON.
    for what, data in (("garbage instead of a ClientHello",
                        message(PT_PRELOGIN, b"\x16\x03\x01" + b"\xee" * 300)),
                       ("a ClientHello cut short, then close", None)):
        t = TdsRaw(TLS_PORT)
        try:
            reply = t.prelogin(prelogin_payload(encryption=ENCRYPT_ON))
            eq(prelogin_option(reply, 1), b"\x01", "ENCRYPTION the TLS listener answers")
            if data is None:
                outgoing = ssl.MemoryBIO()
                obj = tls_client_context().wrap_bio(ssl.MemoryBIO(), outgoing)
                try:
                    obj.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                hello = outgoing.read()
                data = packet(PT_PRELOGIN, hello)[:8 + len(hello) // 2]
            t.send(data)
            if what.endswith("then close"):
                t.sock.shutdown(socket.SHUT_WR)
            t.sock.settimeout(10)
            try:
                mtype, payload = t.read_message()
                # A TLS alert wrapped in PRELOGIN (0x12), then the close.
                true(mtype == PT_PRELOGIN and payload[:1] == b"\x15",
                     "%s: a message of type %d: %r" % (what, mtype, payload[:32]))
                true(t.closed_by_peer(5), "%s: not closed after the TLS alert" % what)
            except socket.timeout:
                raise AssertionError("%s: no answer and no close within 10 s" % what)
            except (ConnectionError, OSError):
                pass                                     # closed at once
        finally:
            t.close()
        sv.check("TLS: " + what)
    # TDS 8.0: a first byte 0x16 and no TLS after it; TLS first on the listener without TLS.
    for port, what in ((TLS_PORT, "0x16 then garbage"),
                       (TDS_PORT, "0x16 on a listener without TLS")):
        t = TdsRaw(port)
        try:
            t.send(b"\x16\x03\x01\x00\x30" + b"\xab" * 48)
            kind, r = t.error_or_close(10)
            true(kind == "closed", "%s: %s %r" % (what, kind, r))
        finally:
            t.close()
        sv.check("TDS 8.0: " + what)
    # Under TLS (full, login-only, TDS 8.0): logins work; bad LOGIN7 / packets get an ERROR
    # through TLS; bytes that are not TLS records end the connection.
    for mode, kw in (("full", dict(encrypt=ENCRYPT_ON)), ("login-only", dict(encrypt=ENCRYPT_OFF)),
                     ("TDS 8.0", dict())):
        strict = mode == "TDS 8.0"
        t = TdsRaw(TLS_PORT, strict=strict)
        try:
            t.login(**kw)
            eq(t.query("SELECT '%s' AS m" % mode), [[mode]], "a query, TLS %s" % mode)
            t.send(header(PT_BATCH, 4) + b"\x00" * 8)
            expect_error_then_close(t, "TLS %s: packet length 4" % mode, (4014,))
        finally:
            t.close()
        sv.check("TLS %s: packet length 4" % mode)
        t = TdsRaw(TLS_PORT, strict=strict)
        try:
            if strict:
                t.prelogin()
            else:
                t.prelogin(prelogin_payload(encryption=kw["encrypt"]))
                t.start_tls()
            t.send(message(PT_LOGIN7, login7_payload(spans={1: (0xFFFF, 3)})))
            if mode == "login-only":
                t.tls = None
            expect_error_then_close(t, "TLS %s: LOGIN7 with UserName at 0xFFFF" % mode, (4014,))
        finally:
            t.close()
        sv.check("TLS %s: LOGIN7 at 0xFFFF" % mode)
        if mode != "login-only":
            t = TdsRaw(TLS_PORT, strict=strict)
            try:
                t.login(**kw)
                t.send_raw(b"\x17\x03\x03\x00\x20" + b"\x99" * 32)
                kind, r = t.error_or_close(10)
                true(kind == "closed", "TLS %s: a record that does not decrypt: %s %r"
                     % (mode, kind, r))
            finally:
                t.close()
            sv.check("TLS %s: a record that does not decrypt" % mode)


# Not bad input, but what (j) ran into: a client's first TLS record in the same segment as its
# last handshake message.
def case_k_tls8_first_message_with_finished(sv):
    tls8_first_message_with_finished()
    sv.check("TDS 8.0: PRELOGIN with the client's Finished")


def case_l_tls7_login_with_finished(sv):
    tls7_login_with_resumed_finished()
    sv.check("TDS 7.x TLS: LOGIN7 with the client's Finished (resumed session)")


def tls8_first_message_with_finished():
    """TDS 8.0: the client's Finished and its PRELOGIN in one segment (TLS 1.3 lets a client
    send data right after its Finished): the PRELOGIN must be answered."""
    s = socket.create_connection(("127.0.0.1", TLS_PORT), timeout=5)
    try:
        obj, inc, out = tls8_handshake(s)
        finished = out.read()
        obj.write(message(PT_PRELOGIN, prelogin_payload()))
        s.sendall(finished + out.read())
        plain = b""
        while len(plain) < 8:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                raise AssertionError("TDS 8.0: a PRELOGIN sent in the segment of the client's "
                                     "TLS Finished got no answer within 5 s")
            true(chunk, "TDS 8.0: closed after PRELOGIN with Finished")
            inc.write(chunk)
            try:
                plain += obj.read(65536)
            except ssl.SSLWantReadError:
                pass
        eq(plain[0], PT_REPLY, "TDS 8.0: the PRELOGIN answer's type")
    finally:
        s.close()


def tls7_login_with_resumed_finished():
    """TDS 7.x, TLS inside PRELOGIN, a resumed TLS 1.2 session (the client's Finished comes
    last) with the LOGIN7 record in the same segment as that last PRELOGIN message."""
    ctx = tls_client_context()
    session = None
    for attempt in ("full", "resumed"):
        t = TdsRaw(TLS_PORT)
        try:
            t.prelogin(prelogin_payload(encryption=ENCRYPT_ON))
            inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = ctx.wrap_bio(inc, out, session=session)
            while True:
                try:
                    obj.do_handshake()
                    last = out.read()
                    break
                except ssl.SSLWantReadError:
                    data = out.read()
                    if data:
                        t.send_raw(message(PT_PRELOGIN, data))
                    _, payload = t.read_message()
                    inc.write(payload)
            t.tls = (obj, inc, out)
            obj.write(message(PT_LOGIN7, login7_payload()))
            login = out.read()
            t.send_raw((message(PT_PRELOGIN, last) if last else b"") + login)
            try:
                r = t.response()
            except (ConnectionError, OSError) as e:
                raise AssertionError("TLS %s session (reused: %s), LOGIN7 in the segment of the "
                                     "client's last handshake message: %s"
                                     % (attempt, obj.session_reused, e))
            true(0xAD in r.tokens and not r.errors, "TLS %s session: login %r" % (attempt, r))
            session = obj.session
        finally:
            t.close()


def case_m_pool_after_fatal(sv):
    # A client's bad request that the backend answers with a fatal error (severity 20) and
    # then closes its connection (a TM request of an unknown type; bulk load data no longer
    # reaches a backend, see (p)): with transaction pooling (the default), that connection
    # must not reach the next client (it would get a "could not reset" error instead of a
    # login), nor the next request of the same session.
    failures = []
    for i in range(10):
        for what, ptype, body in (("bulk load junk", PT_BULK, b"\x01\x02\x03\x04"),
                                  ("TM request type 99", PT_TM, tm_payload(99, b"\x00\x00"))):
            a = raw_session()
            try:
                a.send(message(ptype, body))
                kind, r = a.error_or_close(10)
                true(kind in ("error", "closed"), "%s: %s %r" % (what, kind, r))
            finally:
                a.close()
            b = TdsRaw(TDS_PORT)
            try:
                b.login()
                eq(b.query("SELECT @@IDENTITY AS i, 'next' AS n")[0][1], "next",
                   "the next client's first request")
            except (AssertionError, OSError, BadStream) as e:
                failures.append("after %s: %s" % (what, e))
            finally:
                b.close()
    true(not failures, "%d of 20 logins right after another client's bad request failed, e.g. %s"
         % (len(failures), failures[:1]))
    t = raw_session()
    try:
        for i in range(5):
            t.send(message(PT_BULK, b"\x01\x02\x03\x04"))
            kind, r = t.error_or_close(10)
            true(kind == "error", "bulk load junk #%d: %s %r" % (i, kind, r))
            r = t.batch("SELECT @@IDENTITY AS i, 'same' AS s")
            true(not r.errors and r.rows and r.rows[0][1] == "same",
                 "the same session's next request after bulk load junk #%d: %r" % (i, r))
    finally:
        t.close()
    sv.check("after fatal backend errors")


def primary_spid():
    """The session id of a new connection straight to the primary test server, which numbers
    its logins one after another: a counter of the connections it was asked for."""
    conn = ms_connect(BASE)
    try:
        return ms_query(conn, "SELECT @@SPID AS s")[0][0]
    finally:
        conn.close()


def case_p_unsupported_messages(sv):
    # Message types Sluice does not run (bulk load data, an unknown type, PRELOGIN / LOGIN7 /
    # SSPI after the login, a pre-TDS7 login) are answered by Sluice with error 4014, severity
    # 16 (the packets framed them whole: the stream is in step), and never reach a backend: a
    # server ends its connection over them, and the session's transaction with it. Proof: the
    # transaction's connection keeps its session id and its transaction, and the primary was
    # asked for no connection meanwhile.
    before = primary_spid()
    t = raw_session()
    try:
        t.query("BEGIN TRANSACTION")
        spid, count = t.query("SELECT @@SPID AS s, @@TRANCOUNT AS c")[0]
        eq(count, 1, "@@TRANCOUNT after BEGIN TRANSACTION")
        for what, ptype, payload in (("bulk load data", PT_BULK, b"\x01\x02\x03\x04"),
                                     ("packet type 0x55", 0x55, b"\x01\x02\x03\x04"),
                                     ("LOGIN7 after the login", PT_LOGIN7, login7_payload()),
                                     ("PRELOGIN after the login", PT_PRELOGIN,
                                      prelogin_payload()),
                                     ("SSPI", 17, b"\x60\x28"),
                                     ("a pre-TDS7 login", 2, b"\x00" * 32)):
            t.send(message(ptype, payload))
            r = expect_error_then_close(t, what, (4014,), close=False)
            eq(t.query("SELECT @@SPID AS s, @@TRANCOUNT AS c"), [[spid, 1]],
               "%s: the transaction's backend connection (session id, @@TRANCOUNT) after it"
               % what)
            true(all(e[1] == 16 for e in r.errors) and r.final,
                 "%s: expected severity 16 and a final DONE, got %r" % (what, r))
            true(any("does not support" in e[2] for e in r.errors),
                 "%s: not Sluice's own error: %r" % (what, r.errors))
        t.query("ROLLBACK")
    finally:
        t.close()
    after = primary_spid()
    eq(after, max(before, spid) + 1,
       "the primary's next session id (connections it was asked for; before: %d, the "
       "transaction's: %d)" % (before, spid))
    sv.check("unsupported message types")


def case_q_packet_size_counts_header(sv):
    # MS-TDS 2.2.3.1.3: Length counts the 8-byte header, and the negotiated packet size is the
    # largest Length: a packet of exactly the size is fine, one byte more is refused.
    t = raw_session(packet_size=512)
    try:
        eq(t.packet_size, 512, "the negotiated packet size")
        s = "p" * 227
        payload = batch_payload("SELECT '%s' AS s" % s)
        eq(len(payload) + 8, 512, "the test's packet length")
        t.send(packet(PT_BATCH, payload))
        eq(t.response().rows, [[s]], "a packet of exactly the negotiated 512 bytes")
        payload = batch_payload("SELECT '%s' AS s" % (s + "q"))
        t.send(packet(PT_BATCH, payload[:505], status=0)
               + packet(PT_BATCH, payload[505:], packet_id=2))
        r = expect_error_then_close(t, "a packet of 513 bytes after negotiating 512", (4014,))
        true(any("larger" in e[2] for e in r.errors), "513 bytes: %r" % r.errors)
    finally:
        t.close()
    sv.check("a packet one byte over the negotiated size")
    # Before the login: 4096.
    big = prelogin_payload([(0, bytes([11, 0, 0, 0, 0, 0])), (1, bytes([ENCRYPT_NOT_SUP])),
                            (2, b"i" * 4200 + b"\x00"), (3, struct.pack("<I", 1)), (4, b"\x00")])
    wire = message(PT_PRELOGIN, big)
    eq(struct.unpack(">H", wire[2:4])[0], 4096, "the first PRELOGIN packet's length")
    t = TdsRaw(TDS_PORT)
    try:
        t.send(wire)
        mtype, _ = t.read_message()
        eq(mtype, PT_REPLY, "a PRELOGIN in packets of exactly 4096 bytes: answered")
        t.login(prelogin=False)
        eq(t.query("SELECT 'big prelogin' AS p"), [["big prelogin"]], "after it, a login")
    finally:
        t.close()
    t = TdsRaw(TDS_PORT)
    try:
        t.send(header(PT_PRELOGIN, 4097) + b"\0" * 4089)
        r = expect_error_then_close(t, "a PRELOGIN packet of 4097 bytes", (4014,))
        true(any("larger" in e[2] for e in r.errors), "4097 bytes: %r" % r.errors)
    finally:
        t.close()
    sv.check("a packet of 4097 bytes before the login")


def case_r_backend_protocol_errors(sv, fake):
    # A backend that breaks the protocol before any of its answer reached the client is not a
    # lost connection: error 50000 naming the backend and the codec's error, severity 16, and
    # the session goes on. A connection closed before the answer is still 10054.
    for marker in ("unknown_first", "unknown_after_row", "close_at_once"):
        t = raw_session(B_TDS_PORT)
        try:
            t.sock.settimeout(15)
            t.send(message(PT_BATCH, batch_payload("SELECT '%s' AS m" % marker)))
            lost = marker == "close_at_once"
            r = expect_error_then_close(t, marker, (10054,) if lost else (50000,), close=False)
            true(all(e[1] == 16 for e in r.errors) and r.final and r.dones[-1][1] & DONE_ERROR,
                 "%s: severity 16, a final DONE with DONE_ERROR: %r" % (marker, r))
            if not lost:
                text = r.errors[0][2]
                true("fake sent a malformed response" in text and "0x01" in text,
                     "%s: the error does not say what happened: %r" % (marker, text))
            r2 = t.batch("SELECT 'again' AS a")
            true(r2.rows == [[1]] and not r2.errors, "%s: the request after it: %r"
                 % (marker, r2))
        finally:
            t.close()
        sv.check("backend protocol error (%s)" % marker)
    true(not fake.errors, "the fake backend failed: %r" % fake.errors)


def case_s_backend_breaks_mid_answer(sv, fake):
    # After part of the answer (whole rows) reached the client: the rows, then a fatal ERROR
    # (50000 for a protocol error, 10054 for a lost connection) and a DONE with DONE_ERROR,
    # then the close. Inside a row only the close is left (anything more would be read as
    # the rest of the row).
    for marker, number in (("rows_then_unknown", 50000), ("rows_then_close", 10054),
                           ("row_cut_then_unknown", None)):
        t = raw_session(B_TDS_PORT)
        try:
            t.sock.settimeout(15)
            t.send(message(PT_BATCH, batch_payload("SELECT '%s' AS m" % marker)))
            kind, r = t.error_or_close(15)
            if number is None:
                true(kind == "closed", "%s: a row cut in two can only be closed: %s %r"
                     % (marker, kind, r))
            else:
                true(kind == "error", "%s: expected the rows and an ERROR, got %s %r"
                     % (marker, kind, r))
                eq(r.rows, [[1], [2], [3]], "%s: the rows relayed before it" % marker)
                eq([(e[0], e[1]) for e in r.errors], [(number, 20)], "%s: the error" % marker)
                true(r.final and r.dones[-1][1] & DONE_ERROR,
                     "%s: a final DONE with DONE_ERROR: %r" % (marker, r.dones))
                true("fake" in r.errors[0][2], "%s: the backend unnamed: %r"
                     % (marker, r.errors))
                true(t.closed_by_peer(5), "%s: the session stays open" % marker)
        finally:
            t.close()
        sv.check("backend protocol error (%s)" % marker)
    true(not fake.errors, "the fake backend failed: %r" % fake.errors)


WORK = None


def main():
    global WORK
    WORK = work_dir("sluice-tds-bad-")
    checks = Checks()
    servers = TdsServers(WORK, BASE)
    fake = None
    try:
        for p in (MYSQL_PORT, TDS_PORT, ADMIN_PORT, FAKE_PORT, B_MYSQL_PORT, B_TDS_PORT,
                  B_ADMIN_PORT, TLS_PORT):
            true(port_free(p), "port %d is taken (set TDS_BAD_PORT)" % p)
        servers.start()
        fake = FakeBackend(FAKE_PORT)
        cfg = sluice_config(MYSQL_PORT, TDS_PORT, ADMIN_PORT,
                            [("primary", BASE, "primary"), ("secondary1", BASE + 1, "secondary"),
                             ("secondary2", BASE + 2, "secondary")],
                            tls_port=TLS_PORT, certs=make_certs(WORK))
        daemon = Daemon(WORK, "sluice", cfg, port=MYSQL_PORT)
        checks.log = daemon.log
        with daemon:
            checks.log_start = daemon.offset
            sv = Survivors(daemon, TDS_PORT)
            checks.run("(a) truncated packets, then close", case_a_truncated, sv)
            checks.run("(b) a login held half-sent -> closed after the handshake timeout",
                       case_b_handshake_timeout, sv)
            checks.run("(c) packet length < 8 -> ERROR", case_c_short_length, sv)
            checks.run("(d) packet over the packet size -> ERROR", case_d_oversized_packet, sv)
            checks.run("(e) message over 64 MiB -> ERROR", case_e_oversized_message, sv)
            checks.run("(f) another packet type inside a message -> ERROR", case_f_type_switch, sv)
            checks.run("(g) malformed PRELOGIN -> ERROR", case_g_prelogin, sv)
            checks.run("(h) malformed LOGIN7, wrong password -> ERROR", case_h_login7, sv)
            checks.run("(i) bad requests after login -> ERROR", case_i_after_login, sv)
            checks.run("(j) bad input around TLS (in PRELOGIN, TDS 8.0, login-only)",
                       case_j_tls, sv)
            checks.run("(k) TDS 8.0: PRELOGIN in the segment of the client's TLS Finished",
                       case_k_tls8_first_message_with_finished, sv)
            checks.run("(l) TDS 7.x TLS, resumed session: LOGIN7 in the segment of the "
                       "client's Finished", case_l_tls7_login_with_finished, sv)
            checks.run("(m) a backend connection ended by a fatal error is not reused",
                       case_m_pool_after_fatal, sv)
            checks.run("(p) unsupported message types -> ERROR 4014, severity 16, never sent "
                       "to a backend", case_p_unsupported_messages, sv)
            checks.run("(q) the packet size counts the header: exactly it is fine, one byte "
                       "more -> ERROR", case_q_packet_size_counts_header, sv)
            cfg_b = sluice_config(B_MYSQL_PORT, B_TDS_PORT, B_ADMIN_PORT,
                                  [("primary", BASE, "primary"), ("fake", FAKE_PORT, "secondary")],
                                  monitor=False)
            with Daemon(WORK, "sluice-fake", cfg_b, port=B_MYSQL_PORT) as daemon_b:
                sv_b = Survivors(daemon_b, B_TDS_PORT)
                checks.run("(n) unknown tokens from a backend -> ERROR (second daemon)",
                           case_n_unknown_tokens, sv_b, fake)
                checks.run("(o) a pooled connection the backend ends after a fatal error is "
                           "not handed to the next client (second daemon)",
                           case_o_fatal_then_close, sv_b, fake)
                checks.run("(r) a backend breaking the protocol before its answer: reported "
                           "as such, the session goes on (second daemon)",
                           case_r_backend_protocol_errors, sv_b, fake)
                checks.run("(s) a backend breaking off after whole rows: an ERROR and "
                           "DONE_ERROR after them, then the close (second daemon)",
                           case_s_backend_breaks_mid_answer, sv_b, fake)
                sv_b.conn.close()
            checks.run("the first daemon's session opened at the start still answers",
                       sv.check, "the end")
            sv.conn.close()
    except Exception as e:  # noqa: BLE001 -- set-up or stop-check failure
        checks.count += 1
        checks.failures.append("set-up / stop-check")
        print("FAIL - set-up / stop-check: %s: %s" % (type(e).__name__, e), file=sys.stderr)
    else:
        checks.count += 1
        print("ok   - stop-check of both daemons: exit status 0 on SIGTERM, clean logs")
    finally:
        if fake:
            fake.stop()
        servers.stop_counted(checks)
    checks.finish()


if __name__ == "__main__":
    main()
