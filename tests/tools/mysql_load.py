#!/usr/bin/python3
"""mysql_load.py -- many concurrent MySQL client connections from one process (issue #10).

Holds thousands of client connections (5,000 to 10,000) from ONE Python process, using only the
standard library: asyncio Protocols on raw sockets and the MySQL client/server protocol written
by hand. A client library (pymysql) costs too much memory and CPU per connection for that, and
the load client shares two cores with the proxy and the servers it measures, so every
connection here is one small Protocol object plus one task, and a statement costs one write,
one future and one wake-up.

Phases: optional --setup (one connection); opening (clients connect at --connect-rate and log
in, then wait); the measured phase (all clients start together and run statements for
--duration seconds, or with --idle stay idle and probe with SELECT 1 at the start and the end);
a grace period for statements still running; COM_QUIT. A hard deadline (duration + opening
time + 30 s) ends whatever is left, so the program always ends.

Exit status 0 when it ran, even with errors (the caller asserts on the JSON); 1 when --setup
failed; 2 on bad arguments.

    /usr/bin/python3 tests/tools/mysql_load.py --port 23033 --clients 2000 --duration 10 \\
        --mix read=90,write=10 --setup --json /tmp/load.json
"""

import argparse
import asyncio
import gc
import hashlib
import json
import os
import random
import resource
import struct
import sys
import threading
import time

CLIENT_LONG_PASSWORD = 0x1
CLIENT_LONG_FLAG = 0x4
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_MULTI_RESULTS = 0x20000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_DEPRECATE_EOF = 0x1000000
SERVER_MORE_RESULTS_EXISTS = 0x0008

COM_QUIT = b"\x01"
COM_QUERY = 0x03
MAX_PAYLOAD = 0xFFFFFF
# Load responses are a few hundred bytes; this bounds what one connection buffers (a payload
# over 16 MiB, split in several packets, still fits) so a broken peer cannot exhaust memory.
MAX_RESPONSE = 64 << 20

# Parser states of a COM_QUERY response (text protocol).
ST_FIRST, ST_COLDEFS, ST_COLEOF, ST_ROWS = range(4)


class ProtocolError(Exception):
    """The peer sent something this client does not understand."""


class ServerError(Exception):
    """An ERR packet during the connection phase."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def native_scramble(password, nonce):
    """mysql_native_password: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw)))."""
    if not password:
        return b""
    h1 = hashlib.sha1(password).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(nonce + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def lenenc(p, pos):
    """(value, next position) of a length-encoded integer; value None for 0xFB (NULL)."""
    b = p[pos]
    if b < 0xFB:
        return b, pos + 1
    if b == 0xFB:
        return None, pos + 1
    if b == 0xFC:
        return p[pos + 1] | p[pos + 2] << 8, pos + 3
    if b == 0xFD:
        return int.from_bytes(p[pos + 1:pos + 4], "little"), pos + 4
    return int.from_bytes(p[pos + 1:pos + 9], "little"), pos + 9


def parse_err(p):
    """(code, message) of an ERR payload (protocol 4.1: the SQL state follows a '#')."""
    if len(p) < 3:
        return 0, "short ERR packet"
    code = p[1] | p[2] << 8
    if p[3:4] == b"#":
        return code, bytes(p[9:]).decode("utf-8", "replace")
    return code, bytes(p[3:]).decode("utf-8", "replace")


def ok_status(p):
    """Status flags of an OK payload (0x00 or, with DEPRECATE_EOF, 0xFE header)."""
    _, pos = lenenc(p, 1)  # affected rows
    _, pos = lenenc(p, pos)  # last insert id
    return p[pos] | p[pos + 1] << 8 if pos + 1 < len(p) else 0


def packet(payload, seq):
    """One wire packet; payloads here are far below 16 MiB except setup INSERTs, see send()."""
    return len(payload).to_bytes(3, "little") + bytes((seq & 0xFF,)) + payload


class Conn(asyncio.Protocol):
    """One client connection. Reassembles packets in data_received and, for a statement,
    parses the whole response there, so the client task wakes once per statement.

    A result is ("ok", affected_rows), ("err", (code, message)) or ("rows", rows), rows being
    a row count or, with keep_rows, a list of tuples of str/None."""

    __slots__ = ("transport", "buf", "waiter", "mode", "deprecate_eof", "keep_rows", "state",
                 "cols_left", "rows", "result", "lost", "partial", "packets")

    def __init__(self):
        self.transport = None
        self.buf = bytearray()
        self.waiter = None
        self.mode = 0  # 0: the waiter wants one packet; 1: a whole COM_QUERY response
        self.deprecate_eof = False
        self.keep_rows = False
        self.state = ST_FIRST
        self.cols_left = 0
        self.rows = 0
        self.result = None
        self.lost = None
        self.partial = None  # payload so far of a packet split at 16 MiB
        self.packets = []  # packets received while the waiter wants one at a time

    # ---- asyncio callbacks
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        try:
            self._drain()
        except (ProtocolError, IndexError, ValueError) as e:
            self._fail(ProtocolError(f"bad packet from server: {e}"))
            self.transport.abort()

    def connection_lost(self, exc):
        self.lost = exc if exc is not None else ConnectionError("connection closed by server")
        self._fail(self.lost)

    def _fail(self, exc):
        w = self.waiter
        self.waiter = None
        if w is not None and not w.done():
            w.set_exception(exc)

    # ---- packet reassembly
    def _drain(self):
        buf = self.buf
        n = len(buf)
        pos = 0
        while n - pos >= 4:
            ln = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            if n - pos - 4 < ln:
                if ln > MAX_RESPONSE:
                    raise ProtocolError(f"packet of {ln} bytes announced")
                break
            start = pos + 4
            pos = start + ln
            if ln == MAX_PAYLOAD or self.partial is not None:
                # A payload of exactly 0xFFFFFF bytes continues in the next packet.
                self.partial = (self.partial or b"") + bytes(buf[start:pos])
                if len(self.partial) > MAX_RESPONSE:
                    raise ProtocolError("packet over 64 MiB")
                if ln == MAX_PAYLOAD:
                    continue
                payload, self.partial = self.partial, None
                self._packet(buf[start - 1], payload, 0, len(payload))
            else:
                self._packet(buf[start - 1], buf, start, ln)
        if pos:
            del buf[:pos]
        if len(buf) > MAX_RESPONSE:
            raise ProtocolError("unparsed data over 64 MiB")

    def _packet(self, seq, buf, start, ln):
        """One logical packet: payload is buf[start:start + ln] (not copied unless needed)."""
        if self.mode == 0 or self.waiter is None:
            # Connection phase, or data nobody asked for (say an ERR before an idle
            # disconnect): queue it; the next reader sees it first.
            self.packets.append((seq, bytes(buf[start:start + ln])))
            w = self.waiter
            if self.mode == 0 and w is not None:
                self.waiter = None
                if not w.done():
                    w.set_result(self.packets.pop(0))
            return
        self._response_packet(buf[start] if ln else -1, buf, start, ln)

    def _response_packet(self, first, buf, start, ln):
        state = self.state
        if state == ST_ROWS:
            if first == 0xFE and (ln < 9 or (self.deprecate_eof and ln < MAX_PAYLOAD)):
                p = bytes(buf[start:start + ln])
                status = ok_status(p) if self.deprecate_eof else (p[3] | p[4] << 8 if ln >= 5 else 0)
                self._result_done(("rows", self.rows), status)
            elif first == 0xFF:
                self._finish(("err", parse_err(bytes(buf[start:start + ln]))))
            elif self.keep_rows:
                self.rows.append(self._text_row(bytes(buf[start:start + ln])))
            else:
                self.rows += 1
        elif state == ST_COLDEFS:
            self.cols_left -= 1
            if self.cols_left == 0:
                self.state = ST_ROWS if self.deprecate_eof else ST_COLEOF
        elif state == ST_COLEOF:
            if first != 0xFE:
                raise ProtocolError(f"EOF expected after column definitions, got 0x{first:02x}")
            self.state = ST_ROWS
        else:  # ST_FIRST
            p = bytes(buf[start:start + ln])
            if first == 0x00:
                affected, pos = lenenc(p, 1)
                _, pos = lenenc(p, pos)  # last insert id
                status = p[pos] | p[pos + 1] << 8 if pos + 1 < ln else 0
                self._result_done(("ok", affected), status)
            elif first == 0xFF:
                self._finish(("err", parse_err(p)))
            elif first == 0xFB:
                raise ProtocolError("LOCAL INFILE request (not supported)")
            elif first == -1:
                raise ProtocolError("empty packet where a response was expected")
            else:
                ncols, _ = lenenc(p, 0)
                if not ncols:
                    raise ProtocolError("result set with no columns")
                self.cols_left = ncols
                self.rows = [] if self.keep_rows else 0
                self.state = ST_COLDEFS

    @staticmethod
    def _text_row(p):
        out = []
        pos = 0
        while pos < len(p):
            n, pos = lenenc(p, pos)
            if n is None:
                out.append(None)
            else:
                out.append(p[pos:pos + n].decode("utf-8", "replace"))
                pos += n
        return tuple(out)

    def _result_done(self, result, status):
        if status & SERVER_MORE_RESULTS_EXISTS:
            # Multi-results (CALL): parse on; an ERR ends the response.
            if result[0] == "rows":
                self.result = result
            self.state = ST_FIRST
            return
        if result[0] == "ok" and self.result is not None:
            result = self.result  # a CALL's closing OK: its last result set says more
        self._finish(result)

    def _finish(self, result):
        self.state = ST_FIRST
        self.mode = 0
        w = self.waiter
        self.waiter = None
        if w is not None and not w.done():
            w.set_result(result)

    # ---- called by the client task
    def read_packet(self):
        """Future of the next (seq, payload)."""
        fut = asyncio.get_running_loop().create_future()
        if self.packets:
            fut.set_result(self.packets.pop(0))
        elif self.lost is not None:
            fut.set_exception(self.lost)
        else:
            self.waiter = fut
        return fut

    def send(self, payload, seq):
        if len(payload) < MAX_PAYLOAD:
            self.transport.write(packet(payload, seq))
            return
        while True:  # split at 16 MiB; an exact multiple ends with an empty packet
            chunk, payload = payload[:MAX_PAYLOAD], payload[MAX_PAYLOAD:]
            self.transport.write(packet(chunk, seq))
            seq += 1
            if len(chunk) < MAX_PAYLOAD:
                return

    def query(self, sql, keep_rows=False):
        """Sends COM_QUERY; a future of the whole response."""
        fut = asyncio.get_running_loop().create_future()
        if self.lost is not None:
            fut.set_exception(self.lost)
            return fut
        self.keep_rows = keep_rows
        self.state = ST_FIRST
        self.result = None
        self.send(bytes((COM_QUERY,)) + sql, 0)
        self.waiter = fut
        self.mode = 1
        if self.packets:  # unsolicited packets that arrived while idle answer this first
            queued, self.packets = self.packets, []
            while queued and not fut.done():
                _, p = queued.pop(0)
                self._response_packet(p[0] if p else -1, p, 0, len(p))
            self.packets = queued + self.packets
        return fut

    def quit(self):
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.write(packet(COM_QUIT, 0))
            finally:
                self.transport.close()

    def abort(self):
        if self.transport is not None:
            self.transport.abort()


async def login(conn, user, password, database):
    """Greeting (protocol 10), HandshakeResponse41 with mysql_native_password, an optional
    AuthSwitchRequest to mysql_native_password, then OK. Raises ServerError/ProtocolError."""
    seq, g = await conn.read_packet()
    if g[:1] == b"\xff":
        raise ServerError(*parse_err(g))
    if not g or g[0] != 10:
        raise ProtocolError(f"protocol 10 greeting expected, got {g[:8]!r}")
    pos = g.index(b"\0", 1) + 1 + 4  # server version, connection id
    nonce = g[pos:pos + 8]
    pos += 8 + 1  # auth data part 1, filler
    caps = g[pos] | g[pos + 1] << 8
    pos += 2 + 1 + 2  # capabilities (low), charset, status
    if pos + 2 <= len(g):
        caps |= (g[pos] | g[pos + 1] << 8) << 16
        pos += 2
        auth_len = g[pos]
        pos += 1 + 10  # reserved (MariaDB's extended capabilities live here; unused)
        if caps & CLIENT_SECURE_CONNECTION:
            rest = max(13, auth_len - 8)
            nonce += g[pos:pos + rest].rstrip(b"\0")
    if not caps & CLIENT_PROTOCOL_41:
        raise ProtocolError("server does not speak protocol 4.1")
    want = (CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS |
            CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_MULTI_RESULTS)
    if database:
        want |= CLIENT_CONNECT_WITH_DB
    client_caps = want & caps
    conn.deprecate_eof = bool(client_caps & CLIENT_DEPRECATE_EOF)  # never asked for: False
    pw = password.encode()
    scramble = native_scramble(pw, nonce[:20])
    payload = struct.pack("<IIB", client_caps, 1 << 24, 45) + b"\0" * 23
    payload += user.encode() + b"\0" + bytes((len(scramble),)) + scramble
    if client_caps & CLIENT_CONNECT_WITH_DB:
        payload += database.encode() + b"\0"
    if client_caps & CLIENT_PLUGIN_AUTH:
        payload += b"mysql_native_password\0"
    conn.send(payload, seq + 1)
    switched = False
    while True:
        seq, r = await conn.read_packet()
        first = r[0] if r else -1
        if first == 0x00:
            return
        if first == 0xFF:
            raise ServerError(*parse_err(r))
        if first == 0xFE and not switched:
            # AuthSwitchRequest: plugin name NUL, then its data (the new nonce, NUL-ended).
            end = r.index(b"\0", 1)
            plugin = r[1:end].decode("ascii", "replace")
            if plugin != "mysql_native_password":
                raise ProtocolError(f"server switched to unsupported auth plugin {plugin}")
            new_nonce = r[end + 1:].rstrip(b"\0")
            conn.send(native_scramble(pw, new_nonce[:20]), seq + 1)
            switched = True
            continue
        raise ProtocolError(f"unexpected packet during login: {r[:16]!r}")


def parse_mix(text):
    weights = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in ("read", "write"):
            raise ValueError(f"--mix: expected read=W,write=W, got {part!r}")
        w = float(value)
        if w < 0:
            raise ValueError(f"--mix: negative weight {part!r}")
        weights[name] = w
    total = weights.get("read", 0.0) + weights.get("write", 0.0)
    if total <= 0:
        raise ValueError("--mix: weights sum to zero")
    return weights.get("read", 0.0) / total  # share of reads


class Stats:
    def __init__(self, args):
        self.args = args
        self.connected = 0
        self.connect_errors = {}
        self.queries_ok = 0
        self.queries_err = 0
        self.in_window = 0
        self.errors_by_code = {}
        self.first_errors = []
        self.latencies = []
        self.clients_lost = 0
        self.clients_stuck = 0
        self.idle_alive = 0
        self.deadline_hit = False
        self.setup = None
        self.t_open = self.t_start = self.t_end = self.t_done = None

    def note_error(self, phase, key, message):
        if len(self.first_errors) < 5:
            self.first_errors.append({"phase": phase, "code": key, "message": message[:300]})

    def connect_error(self, key, message):
        self.connect_errors[key] = self.connect_errors.get(key, 0) + 1
        self.note_error("connect", key, message)

    def query_error(self, key, message):
        self.queries_err += 1
        self.errors_by_code[key] = self.errors_by_code.get(key, 0) + 1
        self.note_error("query", key, message)


def exc_key(e):
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class Runner:
    def __init__(self, args, stats):
        self.a = args
        self.s = stats
        self.conns = set()
        self.tasks = []
        self.start = asyncio.Event()
        self.stop = asyncio.Event()
        self.running = False
        self.pending_connects = 0
        self.launched_all = False
        self.window_end_perf = float("inf")
        self.opened = asyncio.Event()
        self.read_share = parse_mix(args.mix)
        self.read_sql = args.read_sql or "SELECT c FROM sbtest1 WHERE id = {id}"
        self.write_sql = args.write_sql or "UPDATE sbtest1 SET k = k + 1 WHERE id = {id}"

    async def connect(self):
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(Conn, self.a.host, self.a.port)
        try:
            await login(conn, self.a.user, self.a.password, self.a.database)
        except BaseException:
            conn.abort()
            raise
        return conn

    # ---- setup: one connection, before anything else
    async def setup(self):
        conn = await asyncio.wait_for(self.connect(), self.a.connect_timeout)
        try:
            async def q(sql):
                r = await asyncio.wait_for(conn.query(sql.encode(), keep_rows=True), 60)
                if r[0] == "err":
                    raise ServerError(*r[1])
                return r

            await q("CREATE TABLE IF NOT EXISTS sbtest1 (id INT PRIMARY KEY, k INT NOT NULL "
                    "DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '')")
            r = await q("SELECT COUNT(*) FROM sbtest1")
            have = int(r[1][0][0])
            inserted = 0
            if have < self.a.table_size:
                # INSERT IGNORE fills the gaps whatever ids exist already.
                batch = 500
                for lo in range(1, self.a.table_size + 1, batch):
                    hi = min(lo + batch, self.a.table_size + 1)
                    values = ",".join(f"({i},{i % 1000},'{(str(i) + '-') * 10}')" for i in range(lo, hi))
                    r = await q(f"INSERT IGNORE INTO sbtest1 (id, k, c) VALUES {values}")
                    inserted += r[1]
            self.s.setup = {"rows_before": have, "rows_inserted": inserted}
        finally:
            conn.quit()

    # ---- one client
    async def client(self, idx):
        s = self.s
        a = self.a
        try:
            conn = await asyncio.wait_for(self.connect(), a.connect_timeout)
        except ServerError as e:
            s.connect_error(str(e.code), e.message)
            return
        except (OSError, ProtocolError, asyncio.TimeoutError, ValueError, IndexError) as e:
            if isinstance(e, asyncio.TimeoutError):
                s.connect_error("timeout", f"connect and login took over {a.connect_timeout} s")
            else:
                s.connect_error(exc_key(e), exc_key(e))
            return
        finally:
            self.pending_connects -= 1
            if self.pending_connects == 0 and self.launched_all:
                self.opened.set()
        s.connected += 1
        self.conns.add(conn)
        try:
            if a.idle:
                await self.idle_client(conn)
            else:
                await self.start.wait()
                await self.busy_client(conn)
        except (OSError, ProtocolError, ValueError, IndexError) as e:
            s.clients_lost += 1
            s.query_error(type(e).__name__, exc_key(e))
        finally:
            self.conns.discard(conn)
            conn.quit()

    async def timed(self, conn, sql, keep_rows=False):
        t0 = time.perf_counter()
        r = await conn.query(sql, keep_rows)
        t1 = time.perf_counter()
        self.s.latencies.append(t1 - t0)
        if t1 <= self.window_end_perf:
            self.s.in_window += 1
        if r[0] == "err":
            code, msg = r[1]
            self.s.query_error(str(code), msg)
        else:
            self.s.queries_ok += 1
        return r

    async def busy_client(self, conn):
        rnd = random.random
        rint = random.randint
        size = self.a.table_size
        share = self.read_share
        rsql, wsql = self.read_sql, self.write_sql
        think = self.a.think_ms / 1000.0
        while self.running:
            i = str(rint(1, size))
            sql = rsql.replace("{id}", i) if rnd() < share else wsql.replace("{id}", i)
            await self.timed(conn, sql.encode())
            if think and self.running:
                await asyncio.sleep(think)

    async def idle_client(self, conn):
        r = await self.timed(conn, b"SELECT 1", keep_rows=True)
        await self.start.wait()
        await self.stop.wait()
        if r != ("rows", [("1",)]):
            return
        r = await self.timed(conn, b"SELECT 1", keep_rows=True)
        if r == ("rows", [("1",)]):
            self.s.idle_alive += 1

    # ---- the phases
    async def run(self):
        a, s = self.a, self.s
        if a.setup:
            await self.setup()
        self.launched_all = False
        s.t_open = time.monotonic()
        loop = asyncio.get_running_loop()
        self.window_end_perf = float("inf")
        for i in range(a.clients):
            if a.connect_rate > 0:
                delay = s.t_open + i / a.connect_rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            self.pending_connects += 1
            self.tasks.append(loop.create_task(self.client(i)))
        self.launched_all = True
        if self.pending_connects == 0:
            self.opened.set()
        await self.opened.wait()
        # Everyone still connected starts together: the measured phase is the same length
        # for every client and the opening's cost is not in the figures.
        s.t_start = time.monotonic()
        self.window_end_perf = time.perf_counter() + a.duration
        self.running = True
        self.start.set()
        await asyncio.sleep(a.duration)
        self.running = False
        s.t_end = time.monotonic()
        self.stop.set()
        # Grace: statements in flight finish (idle clients probe) before the connections close.
        live = [t for t in self.tasks if not t.done()]
        if live:
            _, still = await asyncio.wait(live, timeout=a.grace)
            s.clients_stuck = len(still)
            for _ in still:  # a statement without an answer is an error the caller must see
                s.query_error("no_answer", f"no answer {a.grace} s after the measured phase")
        s.t_done = time.monotonic()

    async def teardown(self):
        for conn in list(self.conns):
            conn.abort()
        live = [t for t in self.tasks if not t.done()]
        for t in live:
            t.cancel()
        if live:
            await asyncio.wait(live, timeout=5)


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[k]


def report(stats, wall):
    a = stats.args
    lat = sorted(stats.latencies)
    window = (stats.t_end - stats.t_start) if stats.t_end and stats.t_start else None
    ms = (lambda v: round(v * 1000.0, 3) if v is not None else None)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "clients_requested": a.clients,
        "clients_connected": stats.connected,
        "connect_errors": stats.connect_errors,
        "queries_ok": stats.queries_ok,
        "queries_err": stats.queries_err,
        "errors_by_code": stats.errors_by_code,
        "first_errors": stats.first_errors,
        "qps": round(stats.in_window / window, 1) if window and not a.idle else None,
        "latency_ms": {
            "p50": ms(percentile(lat, 0.50)),
            "p95": ms(percentile(lat, 0.95)),
            "p99": ms(percentile(lat, 0.99)),
            "max": ms(lat[-1] if lat else None),
        },
        "duration_s": round(window, 3) if window else None,
        "open_s": round(stats.t_start - stats.t_open, 3) if stats.t_start and stats.t_open else None,
        "clients_lost": stats.clients_lost,
        "clients_stuck": stats.clients_stuck,
        "deadline_hit": stats.deadline_hit,
        "idle": a.idle,
        "idle_alive": stats.idle_alive if a.idle else None,
        "setup": stats.setup,
        "wall_s": round(wall, 3),
        "client_cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
        "client_maxrss_mb": round(ru.ru_maxrss / 1024.0, 1),
    }
    return out


def summary(r):
    lat = r["latency_ms"]
    lines = [
        f"clients {r['clients_connected']}/{r['clients_requested']} connected"
        f" (open {r['open_s']} s), connect errors {sum(r['connect_errors'].values())}"
        f"{' ' + json.dumps(r['connect_errors']) if r['connect_errors'] else ''}",
        f"queries ok {r['queries_ok']} err {r['queries_err']}"
        f"{' ' + json.dumps(r['errors_by_code']) if r['errors_by_code'] else ''}"
        f", qps {r['qps']} over {r['duration_s']} s",
        f"latency ms p50 {lat['p50']} p95 {lat['p95']} p99 {lat['p99']} max {lat['max']}",
        f"lost {r['clients_lost']} stuck {r['clients_stuck']} deadline_hit {r['deadline_hit']}"
        f"{' idle_alive ' + str(r['idle_alive']) if r['idle'] else ''}",
        f"wall {r['wall_s']} s, client cpu {r['client_cpu_s']} s, maxrss {r['client_maxrss_mb']} MB",
    ]
    seen = set()
    for e in r["first_errors"]:
        line = f"  {e['phase']} error " + (e["code"] if e["code"] == e["message"] else f"{e['code']}: {e['message']}")
        if line not in seen:
            seen.add(line)
            lines.append(line[:200])
    return "\n".join(lines)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Many concurrent MySQL client connections from one process.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="app")
    p.add_argument("--password", default="app")
    p.add_argument("--database", default="sluice_test", help="'' for none")
    p.add_argument("--clients", type=int, default=100, help="concurrent connections")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of the measured phase")
    p.add_argument("--connect-rate", type=float, default=500.0,
                   help="new connections per second while opening (0: as fast as possible)")
    p.add_argument("--connect-timeout", type=float, default=10.0,
                   help="seconds for one connect + login")
    p.add_argument("--grace", type=float, default=10.0,
                   help="seconds statements still running at the end may take")
    p.add_argument("--think-ms", type=float, default=0.0, help="pause between a client's statements")
    p.add_argument("--idle", action="store_true",
                   help="connect, SELECT 1, stay idle for the duration, SELECT 1 again")
    p.add_argument("--mix", default="read=90,write=10", help="weights, e.g. read=90,write=10")
    p.add_argument("--read-sql", help="read statement, {id} replaced by a random id")
    p.add_argument("--write-sql", help="write statement, {id} replaced by a random id")
    p.add_argument("--table-size", type=int, default=10000)
    p.add_argument("--setup", action="store_true",
                   help="create sbtest1 and fill it with --table-size rows first")
    p.add_argument("--json", help="write the results to this file")
    p.add_argument("--seed", type=int, help="random seed (ids and the read/write choice)")
    a = p.parse_args(argv)
    if not 0 < a.port < 65536:
        p.error("--port out of range")
    if a.clients < 1:
        p.error("--clients must be at least 1")
    if a.duration < 0 or a.connect_rate < 0 or a.think_ms < 0 or a.grace < 0:
        p.error("--duration, --connect-rate, --think-ms and --grace must not be negative")
    if a.connect_timeout <= 0:
        p.error("--connect-timeout must be positive")
    if a.table_size < 1:
        p.error("--table-size must be at least 1")
    try:
        parse_mix(a.mix)
    except ValueError as e:
        p.error(str(e))
    return a


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and want > soft:
        print(f"mysql_load: warning: {want} descriptors wanted, open-file limit is {soft}",
              file=sys.stderr)


def hard_deadline(a):
    """Seconds after which whatever is left is ended: the measured phase, the opening (launch
    time plus one connect timeout), and 30 s for setup and the grace period."""
    opening = a.clients / a.connect_rate if a.connect_rate > 0 else 0.0
    return a.duration + opening + a.connect_timeout + 30.0


async def amain(a, stats):
    runner = Runner(a, stats)
    try:
        await asyncio.wait_for(runner.run(), timeout=hard_deadline(a))
    except asyncio.TimeoutError:
        stats.deadline_hit = True
    finally:
        await runner.teardown()


def write_json(path, result):
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


def main(argv):
    a = parse_args(argv)
    if a.seed is not None:
        random.seed(a.seed)
    raise_nofile(a.clients + 64)
    # Many small long-lived objects, few cycles: the cyclic collector would only burn the
    # CPU the proxy under test needs.
    gc.freeze()
    gc.set_threshold(200000, 50, 100)
    # Last resort if the event loop itself wedges (exit status 3, no JSON): the asyncio
    # deadline normally ends the run 30 s earlier.
    watchdog = threading.Timer(hard_deadline(a) + 30.0, lambda: os._exit(3))
    watchdog.daemon = True
    watchdog.start()
    stats = Stats(a)
    t0 = time.monotonic()
    try:
        asyncio.run(amain(a, stats))
    except (OSError, ServerError, ProtocolError, asyncio.TimeoutError, ValueError, IndexError) as e:
        # Only --setup lets an error out of run(): the run did not happen.
        print(f"mysql_load: setup failed: {exc_key(e)}", file=sys.stderr)
        stats.setup = {"error": exc_key(e)}
        result = report(stats, time.monotonic() - t0)
        write_json(a.json, result)
        return 1
    if a.setup and stats.setup is None:  # the deadline ended --setup
        print("mysql_load: setup failed: hard deadline reached", file=sys.stderr)
        stats.setup = {"error": "hard deadline reached"}
        result = report(stats, time.monotonic() - t0)
        write_json(a.json, result)
        return 1
    result = report(stats, time.monotonic() - t0)
    write_json(a.json, result)
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
