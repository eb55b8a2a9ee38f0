#!/usr/bin/python3
"""tds_session_fuzz (issue #11): the session-level fuzzer for TDS. Several concurrent raw TDS
sessions (plain, TLS inside PRELOGIN, login-only TLS, TDS 8.0; transaction pooling, the
default, and pool_mode = "session") send random sequences of valid and mutated requests
through a Sluice of this test to three TDS test servers (tests/fixtures/tds_server.py, a
primary and two secondaries 30 ms behind):

  * SQLBatch of random SELECT / INSERT / UPDATE / DELETE / BEGIN TRAN / COMMIT / ROLLBACK /
    SET / temp-table statements, some with RESETCONNECTION or RESETCONNECTIONSKIPTRAN;
  * RPC: sp_executesql with parameters of random types (int, bigint, float, bit, nvarchar,
    nvarchar(max), varbinary, decimal, NULLs), sp_prepexec / sp_execute / sp_unprepare;
  * transaction manager requests (begin, commit, rollback);
  * ATTENTION at a random moment after a request (a long result, a WAITFOR, or a short one);
  * mutations of otherwise valid messages (bytes flipped, cut short, lengths and types
    changed, bytes inserted, a header split over writes) and of PRELOGIN / LOGIN7; after a
    mutation anything but a crash is fine, and the session is dropped.

Every valid batch starts with SELECT '<tag>': its answer must carry that tag first (no answer
of an earlier request, no stray attention acknowledgement), be a well-formed token stream that
ends in a final DONE, arrive within 30 s, and hold no error Sluice makes for bad input (4014,
8009) or a lost backend (10054). A pymssql session runs beside them. After the run: the daemon
is alive, a fresh pymssql session works, and sluice.sh stop-check passes (exit status 0 on
SIGTERM, no sanitizer report, no error line in the log).

Environment: TDS_FUZZ_SEED (printed; random if unset), TDS_FUZZ_SECONDS (default 40),
TDS_FUZZ_SESSIONS (concurrent raw sessions, default 6), TDS_FUZZ_PORT (base port, default
14620: +0..+2 test servers, +3 Sluice's MySQL listener, +4 its TDS listener, +5 its admin,
+6 its TLS TDS listener, +7 its session-pooled TDS listener), SLUICE_FIXTURE, SLUICE_BIN,
SLUICE_IT_DIR as for tds_bad_input.py (whose raw TDS helpers this test uses);
TDS_FUZZ_DEBUG=N,M prints a session's last steps whenever it gets error N or M. One line
per check; exit 0 only if all passed.
"""

import os
import random
import re
import socket
import struct
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from itlib import Checks, Daemon, eq, true  # noqa: E402
from tds_bad_input import (  # noqa: E402
    BadStream, ENCRYPT_NOT_SUP, ENCRYPT_OFF, ENCRYPT_ON, PT_ATTENTION, PT_BATCH, PT_LOGIN7,
    PT_PRELOGIN, PT_RPC, PT_TM, ST_RESET, ST_RESET_SKIPTRAN, TdsRaw, TdsServers, batch_payload,
    executesql, header, login7_payload, make_certs, message, ms_connect, ms_query, p_bit,
    p_decimal, p_float, p_int, p_nvarchar, p_varbinary, parse_tokens, port_free,
    prelogin_payload, rpc_param, rpc_payload, sluice_config, tm_payload, work_dir)

SEED = int(os.environ.get("TDS_FUZZ_SEED") or random.SystemRandom().randrange(1 << 31))
SECONDS = float(os.environ.get("TDS_FUZZ_SECONDS", "40"))
SESSIONS = int(os.environ.get("TDS_FUZZ_SESSIONS", "6"))
BASE = int(os.environ.get("TDS_FUZZ_PORT", "14620"))
MYSQL_PORT, TDS_PORT, ADMIN_PORT, TLS_PORT = BASE + 3, BASE + 4, BASE + 5, BASE + 6
SESSION_POOL_PORT = BASE + 7
REQUEST_TIMEOUT = 30.0  # a writer may wait for SQLite's lock (10 s busy timeout) meanwhile
SLUICE_ERRORS = {4014: "bad input", 8009: "bad RPC", 10054: "backend lost"}
ROWS = 120  # rows in table fz at the start
DEFAULT_TEXTSIZE = 2147483647  # @@TEXTSIZE after a login or a reset (the test server's)
DEBUG_ERRORS = {int(x) for x in os.environ.get("TDS_FUZZ_DEBUG", "").split(",") if x}


class Failure(Exception):
    """Something Sluice must never do to a valid request."""


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.failures = []
        self.examples = {}

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def example(self, number, text):
        with self.lock:
            self.examples.setdefault(number, text)

    def fail(self, text):
        with self.lock:
            self.failures.append(text)


# --- what the sessions send ----------------------------------------------------------------------
WORDS = ["alpha", "bravo", "Grüße", "日本", "it's", "x" * 60, "", "NULL", "Ωμέγα", "--", "/*"]


def sql_str(s):
    return "N'" + s.replace("'", "''") + "'"


class Session:
    """One raw TDS session's random life. `log` keeps what it did (for the failure report)."""

    def __init__(self, index, rng, stats, deadline):
        self.index, self.rng, self.stats, self.deadline = index, rng, stats, deadline
        self.t = None
        self.n = 0
        self.in_tran = False
        self.temp = False
        self.handles = []
        self.log = []
        self.textsize = DEFAULT_TEXTSIZE  # the session's SET TEXTSIZE; None: not known

    # --- statements
    def row_id(self):
        return self.rng.randrange(1, 4 * ROWS)

    def statement(self):
        r, rng = self.rng.random(), self.rng
        if r < 0.25:
            return rng.choice([
                "SELECT COUNT(*) AS c FROM fz",
                "SELECT id, s, n, f FROM fz WHERE id > %d ORDER BY id" % self.row_id(),
                "SELECT TOP %d id, s FROM fz ORDER BY id" % rng.randrange(1, 50),
                "SELECT id FROM fz WHERE s LIKE N'%s%%'" % rng.choice("abgxi"),
                "SELECT COALESCE(s, N'none') AS s, n * 2 AS n2 FROM fz WHERE id = %d"
                % self.row_id(),
                "SELECT @@SERVERNAME AS s, @@TRANCOUNT AS t",
                "SELECT * FROM fz WITH (NOLOCK) WHERE id < %d" % self.row_id(),
                "SELECT %s AS w, %d AS i, %r AS f" % (sql_str(rng.choice(WORDS)),
                                                      rng.randrange(-2**31, 2**31),
                                                      rng.uniform(-1e6, 1e6)),
            ])
        if r < 0.45:
            i = self.row_id()
            return rng.choice([
                "INSERT INTO fz (id, s, n, f) VALUES (%d, %s, %d, %r)" % (
                    i, sql_str(rng.choice(WORDS)), rng.randrange(-2**62, 2**62), rng.random()),
                "UPDATE fz SET n = n + 1, s = %s WHERE id = %d" % (sql_str(rng.choice(WORDS)), i),
                "DELETE FROM fz WHERE id = %d" % i,
            ])
        if r < 0.6:
            return rng.choice(["SET NOCOUNT ON", "SET NOCOUNT OFF",
                               "SET DATEFIRST %d" % rng.randrange(1, 8),
                               "SET TEXTSIZE %d" % rng.randrange(1000, 100000),
                               "SET ANSI_NULLS ON",
                               "SET LOCK_TIMEOUT %d" % rng.randrange(100, 5000),
                               "SET TEXTSIZE %d" % rng.randrange(1000, 100000),
                               "SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "USE sluice"])
        if r < 0.7 and self.temp:
            return rng.choice(["INSERT INTO #t%d VALUES (%d)" % (self.index, rng.randrange(100)),
                               "SELECT x FROM #t%d" % self.index])
        if r < 0.8:
            return "WAITFOR DELAY '00:00:00.0%d'" % rng.randrange(10)
        return "SELECT %d AS k" % rng.randrange(1000)

    def batch_text(self):
        self.n += 1
        tag = "tag-%d-%d" % (self.index, self.n)
        stmts = ["SELECT '%s' AS tag" % tag]
        r = self.rng.random()
        if self.in_tran:
            # An open transaction ends soon (SQLite's one writer blocks the other sessions).
            stmts += [self.statement(), self.rng.choice(["COMMIT", "ROLLBACK", "COMMIT TRAN"])]
            self.in_tran = False
        elif r < 0.15:
            stmts += ["BEGIN TRAN", self.statement(), self.statement(),
                      self.rng.choice(["COMMIT", "ROLLBACK"])]
        elif r < 0.22:
            stmts += ["BEGIN TRANSACTION", self.statement()]
            self.in_tran = True
        else:
            stmts += [self.statement() for _ in range(self.rng.randrange(0, 4))]
        sep = self.rng.choice(["; ", "\n", ";\n"])
        return tag, sep.join(stmts)

    def temp_table(self):
        """A temporary table made outside any transaction (a rollback would drop it), then
        used by later requests: Sluice keeps the session where it lives."""
        self.n += 1
        tag = "tag-%d-%d" % (self.index, self.n)
        if not self.temp:
            text = "SELECT '%s' AS tag; CREATE TABLE #t%d (x INT)" % (tag, self.index)
        else:
            text = ("SELECT '%s' AS tag; INSERT INTO #t%d VALUES (%d); "
                    "SELECT COUNT(*) AS c FROM #t%d"
                    % (tag, self.index, self.rng.randrange(100), self.index))
        return tag, text

    def rpc(self):
        self.n += 1
        tag = "tag-%d-%d" % (self.index, self.n)
        rng = self.rng
        def pick(*values):
            return rng.choice(values)

        kinds = [("int", lambda: p_int(pick(None, 0, -1, 2**31 - 1, rng.randrange(-2**31, 2**31)))),
                 ("bigint", lambda: p_int(pick(None, rng.randrange(-2**63, 2**63)), 8)),
                 ("float", lambda: p_float(pick(None, 0.0, rng.uniform(-1e9, 1e9)))),
                 ("bit", lambda: p_bit(pick(None, 0, 1))),
                 ("nvarchar(4000)", lambda: p_nvarchar(pick(None, rng.choice(WORDS)))),
                 ("nvarchar(max)",
                  lambda: p_nvarchar(pick(None, "m" * rng.randrange(9000)), "max")),
                 ("varbinary(8000)",
                  lambda: p_varbinary(pick(None, rng.randbytes(rng.randrange(50))))),
                 ("decimal(18,4)", lambda: p_decimal(pick(None, round(rng.uniform(-1e6, 1e6), 4))))]
        params = []
        for i in range(rng.randrange(0, 5)):
            name, make = rng.choice(kinds)
            params.append(("@p%d" % i, make(), name))
        cols = ", ".join("@p%d AS c%d" % (i, i) for i in range(len(params)))
        if rng.random() < 0.2 and params and params[0][2] in ("int", "bigint"):
            sql = "INSERT INTO fz (id, n) VALUES (%d, @p0)" % self.row_id()
            return None, executesql(sql, params)
        sql = "SELECT '%s' AS tag%s" % (tag, (", " + cols) if cols else "")
        return tag, executesql(sql, params)

    def prepared(self):
        """sp_prepexec, or sp_execute / sp_unprepare of a handle this session holds."""
        rng = self.rng
        self.n += 1
        tag = "tag-%d-%d" % (self.index, self.n)
        if self.handles and rng.random() < 0.6:
            h = rng.choice(self.handles)
            if rng.random() < 0.3:
                self.handles.remove(h)
                return None, rpc_payload([(15, [rpc_param("", p_int(h))], 0)])
            return None, rpc_payload([(12, [rpc_param("", p_int(h)),
                                            rpc_param("@a", p_int(rng.randrange(100)))], 0)])
        body = rpc_payload([(13, [rpc_param("@handle", p_int(None), status=1),
                                  rpc_param("", p_nvarchar("@a int")),
                                  rpc_param("", p_nvarchar("SELECT '%s' AS tag, @a + 1 AS r"
                                                           % tag)),
                                  rpc_param("@a", p_int(rng.randrange(100)))], 0)])
        return ("prepexec", tag), body

    def tm(self):
        if not self.in_tran and self.rng.random() < 0.5:
            self.in_tran = True
            return tm_payload(5, b"\x00\x00")
        self.in_tran = False
        return tm_payload(self.rng.choice([7, 8]), b"\x00\x00")

    # --- the wire
    def connect(self):
        mode = self.rng.choice(["plain"] * 4 + ["session pool", "full", "login-only", "strict"])
        port = {"plain": TDS_PORT, "session pool": SESSION_POOL_PORT}.get(mode, TLS_PORT)
        size = self.rng.choice([512, 1024, 4096, 4096, 8000, 32767])
        self.log.append("connect %s packet size %d" % (mode, size))
        self.t = TdsRaw(port, timeout=REQUEST_TIMEOUT, strict=mode == "strict")
        encrypt = {"full": ENCRYPT_ON, "login-only": ENCRYPT_OFF}.get(mode, ENCRYPT_NOT_SUP)
        try:
            self.t.login(packet_size=size, encrypt=encrypt, app="tds_session_fuzz")
        except (AssertionError, OSError, BadStream) as e:
            raise Failure("login (%s): %s: %s" % (mode, type(e).__name__, e))
        self.in_tran = self.temp = False
        self.handles = []
        self.textsize = DEFAULT_TEXTSIZE
        self.stats.add("logins " + mode)

    def drop(self):
        if self.t:
            self.t.close()
        self.t = None

    def send(self, data):
        """Usually at once; sometimes in small pieces with pauses, headers split (Sluice
        assembles packets from whatever reads bring)."""
        if self.rng.random() < 0.1 and len(data) > 1:
            pos = 0
            while pos < len(data):
                n = self.rng.choice([1, 3, 7, 8, 9, 100, 1000])
                self.t.send(data[pos:pos + n])
                pos += n
                time.sleep(self.rng.choice([0, 0, 0.001, 0.005]))
            self.stats.add("sent in pieces")
            return
        self.t.send(data)

    def valid(self, ptype, payload, tag, status=0, what=""):
        """Sends a valid request, checks its answer."""
        self.send(message(ptype, payload, self.t.packet_size, status))
        try:
            r = self.t.response()
        except socket.timeout:
            raise Failure("%s: no answer within %.0f s" % (what, REQUEST_TIMEOUT))
        except (ConnectionError, OSError) as e:
            raise Failure("%s: the connection ended: %s" % (what, e))
        except BadStream as e:
            raise Failure("%s: a token stream that does not parse: %s" % (what, e))
        self.check(r, tag, what)
        return r

    def check(self, r, tag, what):
        if not r.final:
            raise Failure("%s: the answer does not end in a final DONE: %r" % (what, r))
        for number, severity, text in r.errors:
            self.stats.add("error %d" % number)
            self.stats.example(number, "%s -> %s" % (what, text))
            if number in DEBUG_ERRORS:
                print("     session %d got error %d (%s) after:\n       %s"
                      % (self.index, number, text, "\n       ".join(self.log[-12:])), flush=True)
            if number in SLUICE_ERRORS or severity >= 20:
                raise Failure("%s: error %d (%s) for a valid request: %s"
                              % (what, number, SLUICE_ERRORS.get(number, "fatal"), text))
        if r.attention_ack:
            raise Failure("%s: an attention acknowledgement in the answer: %r" % (what, r))
        if isinstance(tag, str):
            rows = r.rows
            if not rows or rows[0][0] != tag:
                if r.errors:
                    return  # the batch failed before its first statement ran
                raise Failure("%s: the first row is %r, expected the tag %r (an answer of "
                              "another request?)" % (what, rows[:1], tag))

    def attention(self):
        """A request, then ATTENTION after a random pause: read up to the acknowledgement."""
        rng = self.rng
        self.n += 1
        tag = "tag-%d-%d" % (self.index, self.n)
        sql = rng.choice(["SELECT '%s' AS tag; SELECT a.id, a.s, b.id, b.n FROM fz a "
                          "CROSS JOIN fz b" % tag,
                          "SELECT '%s' AS tag; WAITFOR DELAY '00:00:00.3'" % tag,
                          "SELECT '%s' AS tag" % tag])
        self.log.append("attention after: %s" % sql[:80])
        self.t.send(message(PT_BATCH, batch_payload(sql), self.t.packet_size))
        time.sleep(rng.choice([0, 0, 0.001, 0.005, 0.02, 0.1]))
        self.t.send(header(PT_ATTENTION, 8))
        t0 = time.monotonic()
        while True:
            try:
                mtype, payload = self.t.read_message()
                r = parse_tokens(payload)
            except socket.timeout:
                raise Failure("ATTENTION: no acknowledgement within %.0f s" % REQUEST_TIMEOUT)
            except (ConnectionError, OSError) as e:
                raise Failure("ATTENTION: the connection ended: %s" % e)
            except BadStream as e:
                raise Failure("ATTENTION: a token stream that does not parse: %s" % e)
            for number, severity, text in r.errors:
                if number in SLUICE_ERRORS or severity >= 20:
                    raise Failure("ATTENTION: error %d: %s" % (number, text))
            if r.attention_ack:
                break
            if time.monotonic() - t0 > REQUEST_TIMEOUT:
                raise Failure("ATTENTION: no acknowledgement")
        # An explicit transaction survives a cancel; this one had none of its own.
        self.stats.add("attentions")

    def mutated(self):
        """A valid message, broken; anything but a crash may follow. The session ends."""
        rng = self.rng
        kind = rng.random()
        if kind < 0.5:
            _, text = self.batch_text()
            data = bytearray(message(PT_BATCH, batch_payload(text), self.t.packet_size))
        elif kind < 0.8:
            _, body = self.rpc()
            data = bytearray(message(PT_RPC, body, self.t.packet_size))
        else:
            data = bytearray(message(PT_TM, self.tm(), self.t.packet_size))
        how = []
        for _ in range(rng.randrange(1, 4)):
            m = rng.randrange(8)
            if m == 0 and data:                                     # flip bytes
                for _ in range(rng.randrange(1, 6)):
                    i = rng.randrange(len(data))
                    data[i] ^= 1 << rng.randrange(8)
                how.append("flip")
            elif m == 1 and len(data) > 1:                          # cut short
                data = data[:rng.randrange(1, len(data))]
                how.append("cut")
            elif m == 2:                                            # a packet length changed
                length = rng.choice([0, 7, 8, 9, rng.randrange(0x10000),
                                     (len(data) + rng.randrange(-20, 20)) & 0xFFFF])
                data[2:4] = struct.pack(">H", length)
                how.append("length")
            elif m == 3:                                            # the type changed
                data[0] = rng.choice([0, 2, 5, 6, 7, 0x10, 0x11, 0x12, 0xFF, rng.randrange(256)])
                how.append("type")
            elif m == 4 and len(data) > 1:                          # status bits changed
                data[1] = rng.randrange(256)
                how.append("status")
            elif m == 5:                                            # bytes inserted
                i = rng.randrange(len(data) + 1)
                data[i:i] = rng.randbytes(rng.randrange(1, 64))
                how.append("insert")
            elif m == 6 and len(data) > 8:                          # a payload byte set
                data[rng.randrange(8, len(data))] = rng.choice([0, 0xFF, 0x80, 0x7F])
                how.append("byte")
            else:                                                   # the ALL_HEADERS length
                if len(data) > 12:
                    data[8:12] = struct.pack("<I", rng.choice([0, 4, 21, 23, 0xFFFFFFFF]))
                how.append("all_headers")
        self.log.append("mutated (%s) %d bytes" % ("+".join(how), len(data)))
        split = rng.random() < 0.3 and len(data) > 4
        try:
            if split:                                               # a header over two writes
                self.t.send(bytes(data[:3]))
                time.sleep(0.01)
                self.t.send(bytes(data[3:]))
            else:
                self.t.send(bytes(data))
            self.t.sock.settimeout(0.5)
            self.t.response()
        except (socket.timeout, ConnectionError, OSError, BadStream, IndexError, struct.error,
                UnicodeDecodeError, ValueError):
            pass
        self.stats.add("mutations")
        self.drop()

    def mutated_login(self):
        """A PRELOGIN or LOGIN7 broken, on a fresh connection."""
        rng = self.rng
        t = TdsRaw(TDS_PORT, timeout=3)
        try:
            if rng.random() < 0.4:
                data = bytearray(message(PT_PRELOGIN, prelogin_payload()))
            else:
                t.prelogin()
                data = bytearray(message(PT_LOGIN7, login7_payload(app="fuzz")))
            for _ in range(rng.randrange(1, 6)):
                i = rng.randrange(len(data))
                if rng.random() < 0.2:
                    data = data[:i]
                else:
                    data[i] = rng.randrange(256)
            if data:
                t.send(bytes(data))
            t.response()
        except (socket.timeout, ConnectionError, OSError, BadStream, AssertionError, IndexError,
                struct.error, UnicodeDecodeError, ValueError):
            pass
        finally:
            t.close()
        self.stats.add("mutated logins")

    def step(self):
        rng = self.rng
        r = rng.random()
        if r < 0.05 and not self.in_tran:
            tag, text = self.temp_table()
            self.log.append("batch: %s" % text)
            r = self.valid(PT_BATCH, batch_payload(text), tag, what="batch %r" % text)
            if 208 in r.error_numbers():
                raise Failure("the session's temporary table is gone (another backend?): %r"
                              % r.errors)
            self.temp = self.temp or not r.errors
            self.stats.add("temp table batches")
        elif r < 0.11:
            # The session's own settings, wherever the read runs (Sluice replays them on a
            # secondary) and whatever pooled connection serves it (reset for it).
            self.n += 1
            tag = "tag-%d-%d" % (self.index, self.n)
            text = "SELECT '%s' AS tag, @@TEXTSIZE AS ts, @@SERVERNAME AS s" % tag
            self.log.append("batch: %s" % text)
            r = self.valid(PT_BATCH, batch_payload(text), tag, what="@@TEXTSIZE")
            if self.textsize is not None and not r.errors and r.rows[0][1] != self.textsize:
                raise Failure("@@TEXTSIZE on %s is %r, the session set %r (a setting not "
                              "replayed, or one of another session)"
                              % (r.rows[0][2], r.rows[0][1], self.textsize))
            self.stats.add("settings checked")
        elif r < 0.40:
            status = 0
            if rng.random() < 0.08:
                status = rng.choice([ST_RESET, ST_RESET_SKIPTRAN])
                self.temp = False
                self.handles = []
                self.textsize = DEFAULT_TEXTSIZE
                if status == ST_RESET:
                    self.in_tran = False
            tag, text = self.batch_text()
            self.log.append("batch%s: %s" % (" reset %#x" % status if status else "", text[:120]))
            r = self.valid(PT_BATCH, batch_payload(text), tag, status, "batch %r" % text[:80])
            self.stats.add("batches")
            sets = re.findall(r"SET TEXTSIZE (\d+)", text)
            if sets:
                self.textsize = None if r.errors else int(sets[-1])
            if r.errors and ("BEGIN" in text or self.in_tran):
                # A batch stops at its first error, maybe before its COMMIT: the transaction
                # (and SQLite's one write lock) must not outlive it.
                self.n += 1
                tag = "tag-%d-%d" % (self.index, self.n)
                self.log.append("batch: ROLLBACK")
                self.valid(PT_BATCH, batch_payload("SELECT '%s' AS tag; ROLLBACK" % tag), tag,
                           what="ROLLBACK after an error")
                self.in_tran = False
        elif r < 0.55:
            tag, body = self.rpc()
            status = 0
            if rng.random() < 0.05:
                status = ST_RESET
                self.temp = self.in_tran = False
                self.handles = []
                self.textsize = DEFAULT_TEXTSIZE
            self.log.append("rpc sp_executesql %d bytes%s"
                            % (len(body), " reset" if status else ""))
            self.valid(PT_RPC, body, tag, status, what="sp_executesql")
            self.stats.add("rpcs")
        elif r < 0.62:
            tag, body = self.prepared()
            self.log.append("rpc prepared %r" % (tag,))
            resp = self.valid(PT_RPC, body, tag[1] if tag else None, what="prepared %r" % (tag,))
            if tag and resp.return_values and isinstance(resp.return_values[0], int):
                self.handles.append(resp.return_values[0])
            self.stats.add("prepared")
        elif r < 0.68:
            body = self.tm()
            self.log.append("tm %d" % struct.unpack("<H", body[22:24])[0])
            self.valid(PT_TM, body, None, what="TM request")
            self.stats.add("tm requests")
        elif r < 0.78:
            self.attention()
        elif r < 0.90:
            self.mutated()
        elif r < 0.95:
            self.mutated_login()
        else:
            self.log.append("close")
            self.drop()

    def run(self):
        try:
            while time.monotonic() < self.deadline:
                if self.t is None:
                    self.connect()
                self.step()
        except Failure as e:
            self.stats.fail("session %d: %s\n      last steps: %s"
                            % (self.index, e, "\n        ".join(self.log[-8:])))
        except Exception as e:  # noqa: BLE001 -- a bug of this test, reported as a failure
            self.stats.fail("session %d: %s: %s\n%s" % (self.index, type(e).__name__, e,
                                                         traceback.format_exc(limit=6)))
        finally:
            self.drop()


def pymssql_loop(port, deadline, stats):
    """A pymssql session beside the raw ones: reads, writes, a transaction."""
    try:
        conn = ms_connect(port, timeout=int(REQUEST_TIMEOUT))
        i = 0
        while time.monotonic() < deadline:
            i += 1
            eq(ms_query(conn, "SELECT %d AS i" % i), [(i,)], "pymssql SELECT")
            ms_query(conn, "SELECT COUNT(*) AS c FROM fz")
            if i % 5 == 0:
                cur = conn.cursor()
                cur.execute("BEGIN TRAN")
                cur.execute("UPDATE fz SET n = %d WHERE id = %d", (i, i % ROWS + 1))
                cur.execute("COMMIT")
                cur.close()
            stats.add("pymssql queries")
            time.sleep(0.05)
        conn.close()
    except Exception as e:  # noqa: BLE001
        stats.fail("pymssql session: %s: %s" % (type(e).__name__, e))


def seed_table():
    conn = ms_connect(BASE)  # the primary directly
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE fz (id INT NOT NULL PRIMARY KEY, s NVARCHAR(100) NULL, "
                    "n BIGINT NULL, f FLOAT NULL)")
        for start in range(1, ROWS + 1, 40):
            cur.execute("INSERT INTO fz (id, s, n, f) VALUES " + ", ".join(
                "(%d, N'%s', %d, %d.5)" % (i, WORDS[i % 5].replace("'", "''"), i * 7, i)
                for i in range(start, min(start + 40, ROWS + 1))))
        cur.close()
    finally:
        conn.close()


def main():
    print("tds_session_fuzz: seed %d (TDS_FUZZ_SEED=%d reruns it), %d sessions, %.0f s"
          % (SEED, SEED, SESSIONS, SECONDS), flush=True)
    work = work_dir("sluice-tds-fuzz-")
    checks = Checks()
    servers = TdsServers(work, BASE, lag_ms=30)
    stats = Stats()
    try:
        for p in (MYSQL_PORT, TDS_PORT, ADMIN_PORT, TLS_PORT, SESSION_POOL_PORT):
            true(port_free(p), "port %d is taken (set TDS_FUZZ_PORT)" % p)
        servers.start()
        seed_table()
        cfg = sluice_config(MYSQL_PORT, TDS_PORT, ADMIN_PORT,
                            [("primary", BASE, "primary"), ("secondary1", BASE + 1, "secondary"),
                             ("secondary2", BASE + 2, "secondary")],
                            workers=2, tls_port=TLS_PORT, certs=make_certs(work),
                            session_pool_port=SESSION_POOL_PORT)
        daemon = Daemon(work, "sluice", cfg, port=MYSQL_PORT)
        checks.log = daemon.log
        with daemon:
            checks.log_start = daemon.offset

            def fuzz():
                deadline = time.monotonic() + SECONDS
                threads = [threading.Thread(target=Session(i, random.Random(SEED * 1000 + i),
                                                           stats, deadline).run)
                           for i in range(SESSIONS)]
                threads.append(threading.Thread(target=pymssql_loop,
                                                args=(TDS_PORT, deadline, stats)))
                for th in threads:
                    th.start()
                for th in threads:
                    th.join(SECONDS + 4 * REQUEST_TIMEOUT)
                true(not any(th.is_alive() for th in threads), "a session thread never ended")
                print("     " + ", ".join("%s %d" % kv for kv in sorted(stats.counts.items())))
                for number, text in sorted(stats.examples.items()):
                    print("     error %d, e.g. %s" % (number, text[:200]))
                true(not stats.failures, "%d failure(s):\n    %s"
                     % (len(stats.failures), "\n    ".join(stats.failures[:10])))
                true(stats.counts.get("batches", 0) > 0 and stats.counts.get("mutations", 0) > 0,
                     "the sessions did almost nothing: %r" % stats.counts)

            checks.run("random valid and mutated requests, %d sessions, seed %d" % (SESSIONS, SEED),
                       fuzz)

            def after():
                true(daemon.alive(), "the daemon is not running any more")
                conn = ms_connect(TDS_PORT)
                try:
                    eq(ms_query(conn, "SELECT 'after' AS a"), [("after",)],
                       "a fresh pymssql session")
                    true(ms_query(conn, "SELECT COUNT(*) AS c FROM fz")[0][0] > 0, "rows in fz")
                finally:
                    conn.close()

            checks.run("after the run: the daemon alive, a fresh pymssql session works", after)
    except Exception as e:  # noqa: BLE001 -- set-up or stop-check failure
        checks.count += 1
        checks.failures.append("set-up / stop-check")
        print("FAIL - set-up / stop-check (seed %d): %s: %s" % (SEED, type(e).__name__, e),
              file=sys.stderr)
    else:
        checks.count += 1
        print("ok   - stop-check: exit status 0 on SIGTERM, a clean log")
    finally:
        servers.stop_counted(checks)
    if checks.failures:
        print("seed %d (TDS_FUZZ_SEED=%d reruns it)" % (SEED, SEED), file=sys.stderr)
    checks.finish()


if __name__ == "__main__":
    main()
