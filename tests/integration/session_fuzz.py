#!/usr/bin/python3
"""session_fuzz (issue #7, section 2): a bounded, seeded, grammar-guided fuzzer of whole
sessions. It logs in through the real Sluice to the real topology on raw sockets and sends
command sequences: every command byte 0x00-0xff; valid commands with truncated, over-long or
mangled payloads; prepared statements by valid, stale and unknown ids, with wrong parameter
counts and types, cursors (also on statements whose execution fails) and long data;
COM_RESET_CONNECTION / COM_CHANGE_USER (to app and app2) between prepare and execute and
inside transactions; SQL from a grammar (reads, writes to its own tables in sluice_test,
transactions, SET of session and user variables, USE, temporary tables, GET_LOCK, LOCK
TABLES, HANDLER, multi-statements, stored programs with cursors, SIGNAL, several result sets
and OUT parameters, BEGIN NOT ATOMIC blocks, LOAD DATA LOCAL refused / sent / garbage);
pipelined commands; sockets closed mid-result.

A failure is:
  - a hang: no reply within SLUICE_FUZZ_REPLY_TIMEOUT seconds (default 5) to a command that
    must get one;
  - a session closed by Sluice although every command it got was well formed (closing after
    garbage is allowed: a fresh connection continues);
  - a wrong answer inside a well-formed session: a read of a row the session just wrote that
    does not find it; `@@in_transaction` = 1 reported by a replica outside START TRANSACTION
    READ ONLY;
  - after every batch (SLUICE_FUZZ_BATCH sequences, default 50): the daemon (pid from
    $SLUICE_IT_DIR/sluice.pid) is not alive, or a fresh session gets a wrong answer (a write
    then a read of its value; @@server_id in a transaction is the primary's 1; an autocommit
    @@server_id is a replica's 2 or 3; app2 logs in), or backend connections leak;
  - at the end: the Sluice log written during the run holds "critical", "session ended by
    exception", "AddressSanitizer", "runtime error:" or "not valid MySQL protocol".

When a failure happens the batch's commands are written (as hex, in the regression format
below) to a file named in the output. Files tests/integration/fuzz_regressions/*.txt are
replayed first, each followed by the batch checks.

Environment: SLUICE_FUZZ_SEED (default: random, printed), SLUICE_FUZZ_SECONDS (default 60; 0
replays the regressions only), SLUICE_FUZZ_BATCH (50), SLUICE_FUZZ_REPLY_TIMEOUT (5),
SLUICE_FUZZ_OUT (directory for failure files, default $SLUICE_IT_DIR), SLUICE_FUZZ_EXCLUDE
(comma-separated generators to leave out while a known bug is being fixed, so that the run can
find others; empty in CI: cursor_fail = cursors whose execution fails, proc_cursor = stored
programs with cursors, flush = FLUSH statements, infile_garbage = LOAD DATA LOCAL answered
with bad packets, kill_self = KILL of the session's own id), SLUICE_FUZZ_REGRESSIONS (a glob
instead of fuzz_regressions/*.txt), SLUICE_FUZZ_TRACE (a file: every batch's actions appended),
SLUICE_FUZZ_SLOW (print actions slower than this many seconds), SLUICE_FUZZ_LEAK_SLACK
(backend connections allowed above the count at start, default 0: Sluice has no pool yet),
SLUICE_FUZZ_DIRECT=1 (run against the primary directly, to validate the fuzzer itself: no
daemon checks, commands that would harm a server left out).

Regression format (one action per line; '#' starts a comment):
  login USER PASSWORD CAPS_HEX [DB]      a fresh connection (the previous one is closed)
  HEX [; opt ...]                        one command: its payload, sent as a packet with
                                         sequence id 0; the reply is read
  pipe HEX [; opt] | HEX [; opt] | ...    commands written together, then the replies read
  changeuser USER PASSWORD [DB] [; opt]  COM_CHANGE_USER (scrambled with this connection's nonce)
  raw HEX                                bytes written as they are (bad headers); then the
                                         connection is drained and closed
  close                                  the socket closed by the client
 In a payload the bytes fe ed fa ce become the connection's own id (4 bytes, little-endian)
 and the text SELFID the same id in decimal; fe ed fa c1 becomes the id of the statement
 the connection prepared last. Options: garbage (ill-formed: Sluice may close the session),
 mayclose (well formed but may end the session: COM_QUIT, KILL of itself, a wrong password),
 mayhang (the client left an exchange unfinished: no reply is allowed), infile=refuse|
 data:HEX|garbage:HEX (answer to a LOCAL INFILE request), partial=N (read N bytes of the
 reply, then close), probe (the reply is SELECT @@server_id, @@in_transaction: checked),
 count1 (the reply must be one row whose first value is 1).
"""

import glob
import hashlib
import os
import random
import re
import socket
import struct
import sys
import time

import pymysql

from itlib import Checks, env_int, env_str, HOST, scrape_metrics, metric_value

DIRECT = os.environ.get("SLUICE_FUZZ_DIRECT") == "1"
PORT = env_int("SLUICE_PRIMARY_PORT") if DIRECT else env_int("SLUICE_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
SERVER_PORTS = {"primary": PRIMARY_PORT, "replica1": env_int("SLUICE_REPLICA1_PORT"),
                "replica2": env_int("SLUICE_REPLICA2_PORT")}
IT_DIR = env_str("SLUICE_IT_DIR")
LOG = os.environ.get("SLUICE_LOG", "")
PIDFILE = os.path.join(IT_DIR, "sluice.pid")
SEED = int(os.environ.get("SLUICE_FUZZ_SEED") or random.SystemRandom().randrange(1, 2 ** 32))
SECONDS = float(os.environ.get("SLUICE_FUZZ_SECONDS", "60"))
BATCH = int(os.environ.get("SLUICE_FUZZ_BATCH", "50"))
REPLY_TIMEOUT = float(os.environ.get("SLUICE_FUZZ_REPLY_TIMEOUT", "5"))
OUT_DIR = os.environ.get("SLUICE_FUZZ_OUT") or IT_DIR
EXCLUDE = {x.strip() for x in os.environ.get("SLUICE_FUZZ_EXCLUDE", "").split(",") if x.strip()}
REGRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_regressions")
MAX_FAILURES = 10
# Backend connections of app/app2 allowed above the count at start once no client is connected
# (0 while Sluice has no pool: every session's backends close with it).
LEAK_SLACK = int(os.environ.get("SLUICE_FUZZ_LEAK_SLACK", "0"))
TRACE = os.environ.get("SLUICE_FUZZ_TRACE")  # a file: every action of every batch appended
SLOW_LOG = float(os.environ.get("SLUICE_FUZZ_SLOW", "0"))  # print actions slower than this (s)
USERS = {"app": "app", "app2": "app2"}
DB = "sluice_test"
FIRST_SLUICE_ID = 1 << 30

# capabilities
LONG_PASSWORD, FOUND_ROWS, LONG_FLAG, CONNECT_WITH_DB = 0x1, 0x2, 0x4, 0x8
LOCAL_FILES, PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION = 0x80, 0x200, 0x2000, 0x8000
MULTI_STATEMENTS, MULTI_RESULTS, PS_MULTI_RESULTS, PLUGIN_AUTH = 0x10000, 0x20000, 0x40000, 0x80000
SESSION_TRACK, DEPRECATE_EOF = 0x800000, 0x1000000
BASE_CAPS = LONG_PASSWORD | LONG_FLAG | PROTOCOL_41 | TRANSACTIONS | SECURE_CONNECTION | PLUGIN_AUTH
OPTIONAL_CAPS = (FOUND_ROWS, LOCAL_FILES, MULTI_STATEMENTS, MULTI_RESULTS, PS_MULTI_RESULTS,
                 SESSION_TRACK, DEPRECATE_EOF)

# status flags
ST_IN_TRANS, ST_MORE_RESULTS, ST_CURSOR_EXISTS = 0x1, 0x8, 0x40

COM_QUIT, COM_INIT_DB, COM_QUERY, COM_FIELD_LIST = 0x01, 0x02, 0x03, 0x04
COM_REFRESH, COM_SHUTDOWN, COM_STATISTICS, COM_PROCESS_KILL = 0x07, 0x08, 0x09, 0x0C
COM_DEBUG, COM_PING, COM_CHANGE_USER = 0x0D, 0x0E, 0x11
COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_STMT_SEND_LONG_DATA = 0x16, 0x17, 0x18
COM_STMT_CLOSE, COM_STMT_RESET, COM_SET_OPTION, COM_STMT_FETCH = 0x19, 0x1A, 0x1B, 0x1C
COM_RESET_CONNECTION = 0x1F
# In a payload, replaced when sent by the connection's own id (so a file replays): 4 bytes
# little-endian, and in SQL text as decimal.
SELF_ID = b"\xfe\xed\xfa\xce"
LAST_STMT = b"\xfe\xed\xfa\xc1"  # likewise: the id of the connection's last prepared statement
SELF_ID_TEXT = b"SELFID"
NO_REPLY = {COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE}
# Sent straight to a server they would stop it or its replication: left out when DIRECT.
HARMFUL_DIRECT = {0x05, 0x06, COM_SHUTDOWN, 0x12, 0x13, 0x14, 0x15, 0x1E, 0x0A}


class Hang(Exception):
    pass


class Closed(Exception):
    pass


class Desync(Exception):
    """A reply the fuzzer cannot frame (Sluice's or the fuzzer's fault: see the direct mode)."""


def lenenc(p, pos):
    b = p[pos]
    if b < 0xFB:
        return b, pos + 1
    if b == 0xFC:
        return struct.unpack_from("<H", p, pos + 1)[0], pos + 3
    if b == 0xFD:
        return int.from_bytes(p[pos + 1:pos + 4], "little"), pos + 4
    if b == 0xFE:
        return struct.unpack_from("<Q", p, pos + 1)[0], pos + 9
    raise Desync(f"bad length-encoded integer 0x{b:02x} in {bytes(p[:32]).hex()}")


def lenenc_bytes(data):
    n = len(data)
    if n < 0xFB:
        head = bytes([n])
    elif n < 1 << 16:
        head = b"\xfc" + struct.pack("<H", n)
    elif n < 1 << 24:
        head = b"\xfd" + n.to_bytes(3, "little")
    else:
        head = b"\xfe" + struct.pack("<Q", n)
    return head + data


def scramble(password, nonce):
    if not password:
        return b""
    h1 = hashlib.sha1(password.encode()).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(nonce + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def err_code(p):
    return struct.unpack_from("<H", p, 1)[0] if len(p) >= 3 else None


def ok_status(p):
    """Status flags of an OK packet (0x00, or 0xFE ending a result with DEPRECATE_EOF)."""
    _, pos = lenenc(p, 1)
    _, pos = lenenc(p, pos)
    if pos + 2 > len(p):
        raise Desync(f"short OK packet {bytes(p).hex()}")
    return struct.unpack_from("<H", p, pos)[0]


def eof_status(p):
    if len(p) >= 5:
        return struct.unpack_from("<H", p, 3)[0]
    return 0


def text_row(p, ncols):
    out, pos = [], 0
    for _ in range(ncols):
        if pos >= len(p):
            raise Desync(f"short text row {bytes(p).hex()}")
        if p[pos] == 0xFB:
            out.append(None)
            pos += 1
            continue
        n, pos = lenenc(p, pos)
        out.append(bytes(p[pos:pos + n]).decode("utf-8", "replace"))
        pos += n
    return out


# ----------------------------------------------------------------------------- actions ----

class Cmd:
    """One command. opts: garbage, mayclose, infile, partial, probe, count1."""

    def __init__(self, payload, **opts):
        self.payload = bytes(payload)
        self.opts = opts

    def line(self):
        return self.payload.hex() + opt_text(self.opts)


def opt_text(opts):
    parts = []
    for k, v in opts.items():
        if v is True:
            parts.append(k)
        elif v is not None and v is not False:
            parts.append(f"{k}={v}")
    return (" ; " + " ".join(parts)) if parts else ""


def parse_opts(text):
    opts = {}
    for tok in text.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            opts[k] = int(v) if k == "partial" else v
        else:
            opts[tok] = True
    return opts


def parse_line(line):
    """One regression-file line -> action tuple, or None for blanks and comments."""
    line = line.split("#", 1)[0].strip()
    if not line:
        return None
    word = line.split()[0]
    if word == "login":
        f = line.split()
        return ("login", f[1], f[2], int(f[3], 16), f[4] if len(f) > 4 else None)
    if word == "close":
        return ("close",)
    if word == "raw":
        return ("raw", bytes.fromhex(line[3:].replace(" ", "")))
    if word == "changeuser":
        head, _, opts = line.partition(";")
        f = head.split()
        return ("changeuser", f[1], f[2], f[3] if len(f) > 3 else None, parse_opts(opts))
    if word == "pipe":
        cmds = []
        for part in line[4:].split("|"):
            head, _, opts = part.partition(";")
            cmds.append(Cmd(bytes.fromhex(head.replace(" ", "")), **parse_opts(opts)))
        return ("pipe", cmds)
    head, _, opts = line.partition(";")
    return ("cmd", Cmd(bytes.fromhex(head.replace(" ", "")), **parse_opts(opts)))


def action_line(a):
    kind = a[0]
    if kind == "login":
        return f"login {a[1]} {a[2]} {a[3]:08x}" + (f" {a[4]}" if a[4] else "")
    if kind == "close":
        return "close"
    if kind == "raw":
        return "raw " + a[1].hex()
    if kind == "changeuser":
        return f"changeuser {a[1]} {a[2]}" + (f" {a[3]}" if a[3] else "") + opt_text(a[4])
    if kind == "pipe":
        return "pipe " + " | ".join(c.line() for c in a[1])
    return a[1].line()


# ---------------------------------------------------------------------------- the wire ----

class Conn:
    def __init__(self, user, password, caps, db):
        try:
            self.sock = socket.create_connection((HOST, PORT), timeout=REPLY_TIMEOUT)
        except OSError as e:
            raise Closed(f"cannot connect: {e}") from None
        self.buf = bytearray()
        self.closed = False
        self.last = b""
        self.user = user
        try:
            self._login(user, password, caps, db)
        except BaseException:
            self.close()
            raise

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Hang(f"no bytes for {REPLY_TIMEOUT}s") from None
            except OSError as e:
                raise Closed(f"{type(e).__name__}: {e}") from None
            if not chunk:
                raise Closed("connection closed by Sluice")
            self.buf += chunk

    def read_packet(self):
        """(seq, payload) of one logical packet (0xFFFFFF continuations joined)."""
        payload = bytearray()
        while True:
            self._fill(4)
            n = self.buf[0] | self.buf[1] << 8 | self.buf[2] << 16
            seq = self.buf[3]
            self._fill(4 + n)
            payload += self.buf[4:4 + n]
            del self.buf[:4 + n]
            if n < 0xFFFFFF:
                self.seq = seq
                self.last = payload
                return seq, bytes(payload)

    def read_bytes(self, n):
        """Up to n bytes of whatever comes (for a close mid-result)."""
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except (OSError, socket.timeout):
                return
            if not chunk:
                return
            self.buf += chunk

    @staticmethod
    def frame(payload, seq=0):
        out = bytearray()
        while True:
            part, payload = payload[:0xFFFFFF], payload[0xFFFFFF:]
            out += struct.pack("<I", len(part))[:3] + bytes([seq & 0xFF]) + part
            seq += 1
            if len(part) < 0xFFFFFF:
                return bytes(out), seq

    def write(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Closed(f"write failed: {e}") from None

    def _login(self, user, password, caps, db):
        seq, g = self.read_packet()
        if g[:1] == b"\xff":
            raise Desync(f"greeting is an error: {g[:80]!r}")
        if g[:1] != b"\x0a":
            raise Desync(f"greeting {g[:16].hex()}")
        pos = g.index(b"\0", 1) + 1
        self.thread_id = struct.unpack_from("<I", g, pos)[0]
        pos += 4
        nonce = g[pos:pos + 8]
        pos += 9
        server_caps = struct.unpack_from("<H", g, pos)[0]
        pos += 5
        server_caps |= struct.unpack_from("<H", g, pos)[0] << 16
        pos += 2
        alen = g[pos]
        pos += 11
        nonce += g[pos:pos + max(13, alen - 8)].rstrip(b"\0")
        self.nonce = nonce[:20]
        if db:
            caps |= CONNECT_WITH_DB
        caps &= server_caps
        self.caps = caps
        self.deprecate_eof = bool(caps & DEPRECATE_EOF)
        auth = scramble(password, self.nonce)
        p = struct.pack("<IIB", caps, 1 << 24, 45) + b"\0" * 23 + user.encode() + b"\0"
        p += bytes([len(auth)]) + auth
        if db:
            p += db.encode() + b"\0"
        p += b"mysql_native_password\0"
        data, _ = self.frame(p, seq + 1)
        self.write(data)
        self.login_reply = self._auth_loop(password)

    def _auth_loop(self, password, garbage_auth=False):
        """Reads OK / ERR after credentials, answering auth switch requests."""
        while True:
            seq, p = self.read_packet()
            if p[:1] in (b"\x00", b"\xff"):
                return p
            if p[:1] == b"\xfe":
                plugin_end = p.index(b"\0", 1) if b"\0" in p[1:] else len(p)
                nonce = p[plugin_end + 1:].rstrip(b"\0")[:20]
                answer = os.urandom(20) if garbage_auth else scramble(password, nonce)
                data, _ = self.frame(answer, seq + 1)
                self.write(data)
                continue
            if p[:1] == b"\x01":
                continue  # caching_sha2 "fast auth ok": OK follows
            raise Desync(f"unexpected packet during authentication: {p[:32].hex()}")

    # --- replies ---

    def read_reply(self, cmd):
        """Reads the whole reply to cmd; returns a summary dict. Raises Hang / Closed / Desync."""
        try:
            return self._read_reply(cmd)
        except (struct.error, IndexError, ValueError) as e:
            raise Desync(f"{type(e).__name__}: {e}; last packet {bytes(self.last[:40]).hex()}") from None

    def _read_reply(self, cmd):
        b = cmd.payload[0] if cmd.payload else None
        if b == COM_QUERY:
            return self._results(cmd, binary=False)
        if b == COM_STMT_EXECUTE:
            return self._results(cmd, binary=True)
        if b == COM_STMT_PREPARE:
            return self._prepare_reply()
        if b == COM_STMT_FETCH:
            return self._rows_reply(binary=True)
        if b == COM_FIELD_LIST:
            return self._field_list_reply()
        if b == COM_CHANGE_USER:
            p = self._auth_loop("", garbage_auth=True)
            return {"kind": "ok" if p[:1] == b"\x00" else "err", "code": err_code(p)}
        seq, p = self.read_packet()
        if p[:1] == b"\xff":
            return {"kind": "err", "code": err_code(p)}
        return {"kind": "single", "first": p[:1].hex()}

    def _prepare_reply(self):
        _, p = self.read_packet()
        if p[:1] == b"\xff":
            return {"kind": "err", "code": err_code(p)}
        if p[:1] != b"\x00" or len(p) < 12:
            raise Desync(f"COM_STMT_PREPARE reply {p[:32].hex()}")
        stmt_id, ncols, nparams = struct.unpack_from("<IHH", p, 1)
        for group in (nparams, ncols):
            for _ in range(group):
                self.read_packet()
            if group and not self.deprecate_eof:
                _, e = self.read_packet()
                if e[:1] != b"\xfe":
                    raise Desync(f"expected EOF after prepare definitions, got {e[:16].hex()}")
        return {"kind": "prepare", "id": stmt_id, "params": nparams, "cols": ncols}

    def _field_list_reply(self):
        n = 0
        while True:
            _, p = self.read_packet()
            if p[:1] == b"\xff":
                return {"kind": "err", "code": err_code(p)}
            if p[:1] == b"\xfe" and len(p) < 0xFFFFFF:
                return {"kind": "fields", "count": n}
            n += 1

    def _rows_reply(self, binary, ncols=0):
        rows = []
        while True:
            _, p = self.read_packet()
            if p[:1] == b"\xff":
                return {"kind": "err", "code": err_code(p), "rows": rows}
            if p[:1] == b"\xfe" and (len(p) < 9 or (self.deprecate_eof and len(p) < 0xFFFFFF)):
                status = ok_status(p) if self.deprecate_eof else eof_status(p)
                return {"kind": "rows", "rows": rows, "status": status}
            if not binary and len(rows) < 4:
                rows.append(text_row(p, ncols))
            else:
                rows.append(None)

    def _results(self, cmd, binary):
        """Every result of a query or execute (MORE_RESULTS_EXISTS), LOCAL INFILE answered."""
        results = []
        cursor_req = binary and len(cmd.payload) > 5 and cmd.payload[5] & 1
        while True:
            seq, p = self.read_packet()
            if not p:
                raise Desync("empty packet as the start of a result")
            h = p[0]
            if h == 0xFF:
                results.append({"kind": "err", "code": err_code(p)})
                return {"kind": "results", "results": results}
            if h == 0x00:
                status = ok_status(p)
                results.append({"kind": "ok", "status": status})
                if status & ST_MORE_RESULTS:
                    continue
                return {"kind": "results", "results": results}
            if h == 0xFB and not binary:
                self._answer_infile(cmd.opts.get("infile"), seq)
                continue
            ncols, _ = lenenc(p, 0)
            if ncols == 0 or ncols > 4096:
                raise Desync(f"bad column count in {p[:16].hex()}")
            for _ in range(ncols):
                _, c = self.read_packet()
                if c[:1] in (b"\xff", b"\xfe") or c[:4] != b"\x03def":
                    raise Desync(f"expected a column definition, got {c[:24].hex()}")
            if not self.deprecate_eof:
                _, e = self.read_packet()
                if e[:1] == b"\xff":  # a cursor whose execution failed: metadata, then ERR
                    results.append({"kind": "err", "code": err_code(e)})
                    return {"kind": "results", "results": results}
                if e[:1] != b"\xfe" or len(e) >= 9:
                    raise Desync(f"expected EOF after column definitions, got {e[:16].hex()}")
                # A cursor opened: no rows follow. (CURSOR_EXISTS also shows in the result of
                # a CALL whose procedure has a cursor open: MORE_RESULTS then follows.)
                st = eof_status(e)
                if cursor_req and st & ST_CURSOR_EXISTS and not st & ST_MORE_RESULTS:
                    results.append({"kind": "cursor"})
                    return {"kind": "results", "results": results}
            r = self._rows_reply(binary, ncols)
            results.append(r)
            if r["kind"] == "err":
                return {"kind": "results", "results": results}
            if cursor_req and r["status"] & ST_CURSOR_EXISTS and not r["rows"]:
                r["kind"] = "cursor"
            if not r["status"] & ST_MORE_RESULTS:
                return {"kind": "results", "results": results}

    def _answer_infile(self, how, seq):
        """The client side of LOAD DATA LOCAL: refuse (an empty packet), send data, or garbage."""
        how = how or "refuse"
        out = bytearray()
        seq += 1
        if how.startswith("data:"):
            data = bytes.fromhex(how[5:])
            framed, seq = self.frame(data, seq)
            out += framed
        elif how.startswith("garbage:"):
            out += bytes.fromhex(how[8:])  # raw bytes: headers included, maybe wrong
            seq += 1
        framed, _ = self.frame(b"", seq)
        out += framed
        self.write(bytes(out))


# ---------------------------------------------------------------------------- executor ----

class Failure(Exception):
    pass


class Runner:
    """Executes actions, keeps the current connection, and records every action as a line."""

    def __init__(self):
        self.conn = None
        self.lines = []          # this batch
        self.seq_start = 0       # index in lines of the current sequence's login
        self.garbage = False     # an ill-formed command went to this connection
        self.may_close = False
        self.may_hang = False
        self.last_stmt = 0
        self.tolerated = {"hang": 0, "desync": 0, "closed": 0}
        self.replies = {}
        self.ro_txn = False      # START TRANSACTION READ ONLY was sent on this connection

    def record(self, action):
        if action[0] == "login":
            self.seq_start = len(self.lines)
        self.lines.append(action_line(action))

    def drop(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def sequence_text(self):
        return "\n".join(self.lines[self.seq_start:])

    def run(self, action):
        """Runs one action. Returns the list of replies (one per command). Raises Failure."""
        self.record(action)
        kind = action[0]
        if kind == "login":
            self.drop()
            _, user, password, caps, db = action
            self.garbage = self.may_close = self.may_hang = self.ro_txn = False
            self.last_stmt = 0
            try:
                self.conn = Conn(user, password, caps, db)
            except Hang as e:
                raise Failure(f"login as {user} hangs: {e}") from None
            except (Closed, Desync) as e:
                raise Failure(f"login as {user} failed: {e}") from None
            self.lines[-1] += f"  # connection id {self.conn.thread_id}"
            if self.conn.login_reply[:1] != b"\x00":
                code = err_code(self.conn.login_reply)
                raise Failure(f"login as {user} refused with {code}: {self.conn.login_reply[3:120]!r}")
            return [{"kind": "ok"}]
        if self.conn is None:
            return []
        if kind == "close":
            self.drop()
            return []
        if kind == "raw":
            self.garbage = True
            try:
                self.conn.write(action[1])
                self.conn.sock.settimeout(0.5)
                self.conn.read_bytes(1 << 20)
            except Closed:
                pass
            self.drop()
            return []
        if kind == "changeuser":
            _, user, password, db, opts = action
            return [self._command(self._change_user(user, password, db, opts), changeuser=(user, password))]
        if kind == "pipe":
            cmds = action[1]
            data = b"".join(Conn.frame(self._subst(c.payload))[0] for c in cmds)
            for c in cmds:
                self._note(c)
            try:
                self.conn.write(data)
            except Closed as e:
                self._closed(cmds[0], e)
                return []
            replies = []
            for c in cmds:
                r = self._read(c)
                if r is None:
                    break
                replies.append(r)
            return replies
        return [self._command(action[1])]

    def _change_user(self, user, password, db, opts):
        c = self.conn
        auth = scramble(password, c.nonce)
        p = bytes([COM_CHANGE_USER]) + user.encode() + b"\0" + bytes([len(auth)]) + auth
        p += (db or "").encode() + b"\0" + struct.pack("<H", 45) + b"mysql_native_password\0"
        return Cmd(p, **opts)

    def _subst(self, payload):
        own = self.conn.thread_id
        payload = payload.replace(LAST_STMT, struct.pack("<I", self.last_stmt))
        return payload.replace(SELF_ID, struct.pack("<I", own)).replace(SELF_ID_TEXT, str(own).encode())

    def _note(self, c):
        if c.opts.get("garbage"):
            self.garbage = True
        if c.opts.get("mayclose"):
            self.may_close = True
        if c.opts.get("mayhang"):
            self.may_hang = True
            if self.conn:
                self.conn.sock.settimeout(1.0)  # a wait is allowed here: do not wait long
        if c.payload[:1] == bytes([COM_QUERY]) and re.search(rb"(?i)read\s+only", c.payload):
            self.ro_txn = True

    def _command(self, c, changeuser=None):
        self._note(c)
        try:
            self.conn.write(Conn.frame(self._subst(c.payload))[0])
        except Closed as e:
            self._closed(c, e)
            return None
        if "partial" in c.opts:
            self.conn.sock.settimeout(2)
            self.conn.read_bytes(c.opts["partial"])
            self.drop()
            return None
        if changeuser:
            try:
                p = self.conn._auth_loop(changeuser[1])
            except Hang as e:
                self._hang(c, e)
                return None
            except Closed as e:
                self._closed(c, e)
                return None
            except Desync as e:
                self._desync(c, e)
                return None
            if p[:1] != b"\x00":
                # A server ends the session after a refused COM_CHANGE_USER; Sluice may keep it
                # (mayclose is set for wrong credentials): the next command finds out.
                return {"kind": "err", "code": err_code(p)}
            self.ro_txn = False
            return {"kind": "ok"}
        return self._read(c)

    def _read(self, c):
        if self.conn is None:
            return None
        b = c.payload[0] if c.payload else None
        if b in NO_REPLY:
            return {"kind": "none"}
        if b == COM_QUIT:
            self.drop()
            return None
        try:
            r = self.conn.read_reply(c)
        except Hang as e:
            self._hang(c, e)
            return None
        except Closed as e:
            self._closed(c, e)
            return None
        except Desync as e:
            self._desync(c, e)
            return None
        self._count(r)
        if r["kind"] == "prepare":
            self.last_stmt = r["id"]
        if not self.garbage:
            self._check_answer(c, r)
        return r

    def _count(self, r):
        kinds = [x["kind"] for x in r["results"]] if r["kind"] == "results" else [r["kind"]]
        for k in kinds:
            self.replies[k] = self.replies.get(k, 0) + 1

    def _hang(self, c, e):
        self.drop()
        if c.opts.get("mayhang") or self.may_hang:
            self.tolerated["hang"] += 1  # the client left a packet unfinished or an exchange unanswered
            return
        raise Failure(f"hang: no reply to {describe(c)} within {REPLY_TIMEOUT}s ({e})")

    def _desync(self, c, e):
        self.drop()
        if self.garbage:
            self.tolerated["desync"] += 1
            return
        raise Failure(f"reply to {describe(c)} not understood: {e}")

    def _closed(self, c, e):
        self.drop()
        time.sleep(0.02)
        alive, why = daemon_alive()
        if not alive:
            raise Failure(f"the daemon died after {describe(c)}: {why}")
        if self.garbage or self.may_close:
            self.tolerated["closed"] += 1
            if SLOW_LOG:
                print(f"  closed after {describe(c)}: {e}")
            return
        raise Failure(f"Sluice closed a session of well-formed commands after {describe(c)} ({e})")

    def _check_answer(self, c, r):
        if c.opts.get("probe"):
            res = r.get("results", [])
            if len(res) == 1 and res[0]["kind"] == "rows" and res[0]["rows"]:
                row = res[0]["rows"][0]
                server_id, in_trans = row[0], row[1]
                if not DIRECT and in_trans == "1" and server_id != "1" and not self.ro_txn:
                    raise Failure(f"wrong answer: SELECT @@server_id, @@in_transaction gave "
                                  f"{row} (a replica inside a read-write transaction)")
        if c.opts.get("count1"):
            res = r.get("results", [])
            if len(res) == 1 and res[0]["kind"] == "rows" and res[0]["rows"]:
                if res[0]["rows"][0][0] != "1":
                    raise Failure(f"wrong answer: {c.payload[1:].decode(errors='replace')} gave "
                                  f"{res[0]['rows'][0]} right after the session's own INSERT")


def describe(c):
    p = c.payload
    if not p:
        return "an empty command"
    if p[0] in (COM_QUERY, COM_STMT_PREPARE, COM_INIT_DB):
        return f"command 0x{p[0]:02x} {p[1:120].decode('utf-8', 'replace')!r}"
    return f"command 0x{p[0]:02x} payload {p[:40].hex()}{'...' if len(p) > 40 else ''}"


# ---------------------------------------------------------------------------- grammar ----

TABLES = ["fz_t", "fz_rw", "fz_load"]
SQL_MODES = ["", "ANSI_QUOTES", "NO_BACKSLASH_ESCAPES", "STRICT_ALL_TABLES", "ANSI",
             "TRADITIONAL", "ONLY_FULL_GROUP_BY,NO_ENGINE_SUBSTITUTION"]

CURSOR_BLOCK = ("BEGIN NOT ATOMIC DECLARE v INT; DECLARE c CURSOR FOR SELECT k FROM sluice_test.fz_t "
                "ORDER BY id; OPEN c; FETCH c INTO v; CLOSE c; SELECT v; END")
CURSOR_LOOP_BLOCK = ("BEGIN NOT ATOMIC DECLARE done INT DEFAULT 0; DECLARE v, s INT DEFAULT 0; "
                     "DECLARE c CURSOR FOR SELECT k FROM sluice_test.fz_t; DECLARE CONTINUE HANDLER "
                     "FOR NOT FOUND SET done = 1; OPEN c; l: LOOP FETCH c INTO v; IF done THEN LEAVE l; "
                     "END IF; SET s = s + IFNULL(v, 0); END LOOP; CLOSE c; SELECT s; END")
PROC_BODIES = [
    "BEGIN DECLARE v INT; DECLARE c CURSOR FOR SELECT k FROM sluice_test.fz_t; OPEN c; FETCH c INTO v; "
    "CLOSE c; SELECT v; END",
    "BEGIN SELECT 1; SELECT 2, 'b'; END",
    "BEGIN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'fz dyn'; END",
    "BEGIN SELECT 1; SIGNAL SQLSTATE '45001' SET MESSAGE_TEXT = 'after a result'; END",
    "BEGIN INSERT INTO sluice_test.fz_t (k, v) VALUES (7, 'dyn'); SELECT ROW_COUNT(); END",
    "BEGIN DECLARE EXIT HANDLER FOR SQLEXCEPTION SELECT 'handled'; SELECT * FROM sluice_test.nope; END",
]

SETUP_SQL = [
    "CREATE DATABASE IF NOT EXISTS sluice_test",
    "DROP TABLE IF EXISTS sluice_test.fz_t, sluice_test.fz_rw, sluice_test.fz_load",
    "CREATE TABLE sluice_test.fz_t (id INT AUTO_INCREMENT PRIMARY KEY, k INT, v VARCHAR(100), "
    "b BLOB, d DATETIME) ENGINE=InnoDB",
    "INSERT INTO sluice_test.fz_t (k, v, d) SELECT seq, CONCAT('row', seq), '2024-01-01 00:00:00' "
    "FROM sluice_test.seq_1_to_50",
    "CREATE TABLE sluice_test.fz_rw (id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(64), KEY (tag))",
    "CREATE TABLE sluice_test.fz_load (a INT, b VARCHAR(100))",
    "DROP SEQUENCE IF EXISTS sluice_test.fz_seq",
    "CREATE SEQUENCE sluice_test.fz_seq",
    "DROP PROCEDURE IF EXISTS sluice_test.fz_cur",
    "CREATE PROCEDURE sluice_test.fz_cur() BEGIN DECLARE v INT; DECLARE c CURSOR FOR SELECT k FROM "
    "sluice_test.fz_t ORDER BY id; OPEN c; FETCH c INTO v; CLOSE c; SELECT v; END",
    "DROP PROCEDURE IF EXISTS sluice_test.fz_cur_loop",
    "CREATE PROCEDURE sluice_test.fz_cur_loop() " + CURSOR_LOOP_BLOCK.replace("BEGIN NOT ATOMIC", "BEGIN"),
    "DROP PROCEDURE IF EXISTS sluice_test.fz_sig",
    "CREATE PROCEDURE sluice_test.fz_sig(x INT) BEGIN IF x > 0 THEN SIGNAL SQLSTATE '45000' "
    "SET MESSAGE_TEXT = 'fz signal'; END IF; SELECT x; END",
    "DROP PROCEDURE IF EXISTS sluice_test.fz_multi",
    "CREATE PROCEDURE sluice_test.fz_multi() BEGIN SELECT 1 AS a; SELECT 2 AS b, 'two' AS c; "
    "SELECT id, k FROM sluice_test.fz_t ORDER BY id LIMIT 3; END",
    "DROP PROCEDURE IF EXISTS sluice_test.fz_out",
    "CREATE PROCEDURE sluice_test.fz_out(IN a INT, OUT b INT, INOUT c VARCHAR(64)) BEGIN "
    "SET b = a * 2; SET c = CONCAT(IFNULL(c, ''), 'x'); END",
    "DROP PROCEDURE IF EXISTS sluice_test.fz_setvar",
    "CREATE PROCEDURE sluice_test.fz_setvar(x INT) BEGIN SET @fz_var = x; END",
    "DROP PROCEDURE IF EXISTS sluice_test.fz_write",
    "CREATE PROCEDURE sluice_test.fz_write(x INT) BEGIN INSERT INTO sluice_test.fz_t (k, v) "
    "VALUES (x, 'proc'); SELECT LAST_INSERT_ID(); END",
    "DROP PROCEDURE IF EXISTS sluice_test.fz_cur_sig",
    "CREATE PROCEDURE sluice_test.fz_cur_sig() BEGIN DECLARE v INT; DECLARE c CURSOR FOR SELECT k "
    "FROM sluice_test.fz_t; OPEN c; FETCH c INTO v; CLOSE c; SIGNAL SQLSTATE '45000' "
    "SET MESSAGE_TEXT = 'after a cursor'; END",
    "DROP PROCEDURE IF EXISTS sluice_test.fz_dyn0",
    "DROP PROCEDURE IF EXISTS sluice_test.fz_dyn1",
    "DROP PROCEDURE IF EXISTS sluice_test.fz_dyn2",
]

# (sql, parameter count, generator name)
PREPARED = [
    ("SELECT id, k, v FROM sluice_test.fz_t WHERE id > ? ORDER BY id LIMIT ?", 2, "ps"),
    ("SELECT ?", 1, "ps"),
    ("SELECT ?, ?, ?", 3, "ps"),
    ("INSERT INTO sluice_test.fz_t (k, v) VALUES (?, ?)", 2, "ps"),
    ("UPDATE sluice_test.fz_t SET v = ? WHERE id = ?", 2, "ps"),
    ("DELETE FROM sluice_test.fz_t WHERE id = ? AND id > 50", 1, "ps"),
    ("SELECT seq, REPEAT('p', 50) FROM sluice_test.seq_1_to_2000", 0, "ps"),
    ("SELECT id, b FROM sluice_test.fz_t WHERE id < ?", 1, "ps"),
    ("SELECT NTILE(-1) OVER (ORDER BY id) FROM sluice_test.fz_t", 0, "cursor_fail"),
    ("SELECT 1 / 0, CAST('x' AS SIGNED)", 0, "ps"),
    ("CALL sluice_test.fz_out(?, ?, ?)", 3, "proc"),
    ("CALL sluice_test.fz_multi()", 0, "proc"),
    ("CALL sluice_test.fz_cur()", 0, "proc_cursor"),
    ("CALL sluice_test.fz_sig(?)", 1, "proc"),
    ("SET @fz_p = ?", 1, "ps"),
    ("SET time_zone = ?", 1, "ps"),
    ("SELECT @@server_id, @@in_transaction", 0, "ps"),
    ("DO ?", 1, "ps"),
    ("SELECT * FROM sluice_test.fz_nope", 0, "ps"),
    ("COMMIT", 0, "ps"),
    ("SELECT GET_LOCK('fz', 0)", 0, "ps"),
    ("SELECT NEXTVAL(sluice_test.fz_seq)", 0, "ps"),
    ("SELECT d, ? FROM sluice_test.fz_t WHERE id = 1", 1, "ps"),
]

# binary parameter types: (type, encoder)
TYPES = {
    0x01: lambda r: bytes([r.randrange(256)]),                      # TINY
    0x02: lambda r: struct.pack("<h", r.randrange(-300, 300)),      # SHORT
    0x03: lambda r: struct.pack("<i", r.randrange(-10 ** 6, 10 ** 6)),  # LONG
    0x08: lambda r: struct.pack("<q", r.randrange(-5, 100)),        # LONGLONG
    0x05: lambda r: struct.pack("<d", r.random() * 100),            # DOUBLE
    0x04: lambda r: struct.pack("<f", r.random()),                  # FLOAT
    0xFD: lambda r: lenenc_bytes(r.choice([b"abc", b"+01:00", b"SYSTEM", b"", b"x" * 300,
                                           "\u00e9".encode()])),    # VAR_STRING
    0xFC: lambda r: lenenc_bytes(bytes(r.randrange(256) for _ in range(r.randrange(0, 40)))),
    0x0C: lambda r: bytes([7]) + struct.pack("<HBBBBB", 2024, 1, 2, 3, 4, 5),  # DATETIME
    0x0A: lambda r: bytes([4]) + struct.pack("<HBB", 2024, 2, 29),  # DATE
    0x0B: lambda r: bytes([8, 0]) + struct.pack("<IBBB", 1, 2, 3, 4),  # TIME
    0xF6: lambda r: lenenc_bytes(b"3.14"),                          # NEWDECIMAL
    0x06: lambda r: b"",                                            # NULL type
}


class Generator:
    """Grammar-guided actions. Stateful: it learns statement ids from the replies."""

    def __init__(self, rng):
        self.r = rng
        self.tag_n = 0
        self.reset_conn()

    def reset_conn(self):
        self.prepared = {}   # id -> (sql, params)
        self.closed_ids = []
        self.cursor_ids = []

    def enabled(self, name):
        return name not in EXCLUDE

    # ---- primitives ----

    def rbytes(self, lo, hi):
        return bytes(self.r.randrange(256) for _ in range(self.r.randrange(lo, hi + 1)))

    def mangle(self, p):
        """Truncated, over-long or flipped: always marked garbage."""
        r = self.r
        how = r.randrange(4)
        if how == 0 and len(p) > 1:
            return p[:r.randrange(1, len(p))]
        if how == 1:
            return p + self.rbytes(1, r.choice([8, 64, 2000]))
        if how == 2 and len(p) > 1:
            b = bytearray(p)
            for _ in range(r.randrange(1, 4)):
                b[r.randrange(1, len(b))] = r.randrange(256)
            return bytes(b)
        return p[:1] + self.rbytes(0, 64)

    def tag(self):
        self.tag_n += 1
        return f"t{self.r.randrange(1 << 30):08x}{self.tag_n}"

    # ---- SQL grammar ----

    def n(self):
        return self.r.choice([0, 1, 2, 3, 7, 42, 50, 51, 99, 1000, -1])

    def sql(self):
        r = self.r
        cats = [("read", 30), ("write", 14), ("txn", 10), ("set", 12), ("use", 3), ("temp", 4),
                ("lock", 4), ("multi", 5), ("proc", 8), ("block", 4), ("misc", 6),
                ("ddlproc", 2), ("kill", 2)]
        total = sum(w for _, w in cats)
        x = r.randrange(total)
        for name, w in cats:
            if x < w:
                return getattr(self, "sql_" + name)()
            x -= w
        return "SELECT 1"

    def sql_read(self):
        r, n = self.r, self.n()
        return r.choice([
            f"SELECT id, k, v FROM sluice_test.fz_t WHERE id = {n}",
            "SELECT COUNT(*) FROM sluice_test.fz_t",
            f"SELECT * FROM sluice_test.fz_t ORDER BY id LIMIT {abs(n)}",
            "SELECT 1", f"SELECT {n} + {self.n()}", "SELECT DATABASE(), USER()",
            "SHOW WARNINGS", "SHOW VARIABLES LIKE 'sql_mode'", "SELECT @fz_var, @u1, @u2",
            "SELECT SQL_CALC_FOUND_ROWS * FROM sluice_test.fz_t LIMIT 1", "SELECT FOUND_ROWS()",
            "SELECT LAST_INSERT_ID()", "SELECT CONNECTION_ID()", "SELECT ROW_COUNT()",
            f"SELECT * FROM sluice_test.fz_t WHERE id = {n} FOR UPDATE",
            f"SELECT * FROM sluice_test.fz_t WHERE id = {n} LOCK IN SHARE MODE",
            "SELECT 1 / 0", f"SELECT SLEEP(0.0{abs(n) % 10})", "SELEC 1", "SELECT * FROM fz_t",
            "SELECT * FROM sluice_test.fz_nope", "SELECT 'unterminated",
            f"SELECT seq FROM sluice_test.seq_1_to_{r.choice([1, 10, 1000, 5000])}",
            "SELECT * FROM sluice_test.fz_t WHERE id IS NULL",
            "SELECT @@session.autocommit, @@time_zone, @@sql_mode",
            "SHOW CREATE TABLE sluice_test.fz_t", "SHOW TABLE STATUS FROM sluice_test LIKE 'fz%'",
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'sluice_test'",
            "/* sluice: replica */ SELECT @@server_id", "/* sluice: primary */ SELECT @@server_id",
            "SELECT GROUP_CONCAT(v) FROM sluice_test.fz_t",
            "SELECT NEXTVAL(sluice_test.fz_seq)", "SELECT b FROM sluice_test.fz_t WHERE b IS NOT NULL",
        ] + (["SELECT NTILE(-1) OVER (ORDER BY id) FROM sluice_test.fz_t"]))

    def sql_write(self):
        r, n = self.r, self.n()
        return r.choice([
            f"INSERT INTO sluice_test.fz_t (k, v) VALUES ({n}, 'w{n}')",
            f"INSERT INTO sluice_test.fz_t (k, v, b) VALUES ({n}, REPEAT('z', {abs(n) * 3}), UNHEX('00ff'))",
            f"UPDATE sluice_test.fz_t SET k = k + 1 WHERE id = {n}",
            f"UPDATE sluice_test.fz_t SET v = 'u' WHERE id > {abs(n)} LIMIT 2",
            "DELETE FROM sluice_test.fz_t WHERE id > 60 ORDER BY id LIMIT 3",
            f"REPLACE INTO sluice_test.fz_t (id, k, v) VALUES ({abs(n) % 50 + 1}, {n}, 'r')",
            "INSERT INTO sluice_test.fz_t (id, k) VALUES (1, 1)",  # duplicate key
            f"INSERT INTO sluice_test.fz_t (id, k) VALUES (1, {n}) ON DUPLICATE KEY UPDATE k = VALUES(k)",
            "INSERT INTO sluice_test.fz_t (k, v) SELECT k, v FROM sluice_test.fz_t WHERE id < 3",
            f"INSERT INTO sluice_test.fz_rw (tag) VALUES ('{self.tag()}')",
            "DELETE FROM sluice_test.fz_load LIMIT 50",
        ])

    def sql_txn(self):
        return self.r.choice(["BEGIN", "START TRANSACTION", "START TRANSACTION READ ONLY",
                              "START TRANSACTION WITH CONSISTENT SNAPSHOT", "COMMIT", "ROLLBACK",
                              "COMMIT", "ROLLBACK", "SAVEPOINT s1", "ROLLBACK TO SAVEPOINT s1",
                              "SET autocommit = 0", "SET autocommit = 1", "XA START 'fz'"])

    def sql_set(self):
        r, n = self.r, self.n()
        return r.choice([
            f"SET SESSION sql_mode = '{r.choice(SQL_MODES)}'",
            f"SET time_zone = '+0{abs(n) % 10}:00'", "SET time_zone = 'SYSTEM'",
            "SET NAMES utf8mb4", "SET NAMES latin1", "SET CHARACTER SET utf8mb4",
            f"SET @u1 = {n}", "SET @u2 = 'str'", "SET @u1 = NOW()",
            "SET @u2 = (SELECT COUNT(*) FROM sluice_test.fz_t)",
            "SELECT k INTO @u1 FROM sluice_test.fz_t LIMIT 1", "SELECT @u3 := 5",
            "SET SESSION TRANSACTION ISOLATION LEVEL " + r.choice(
                ["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE", "READ UNCOMMITTED"]),
            f"SET max_statement_time = {r.choice([0, 0, 10, 0.0001])}",
            "SET SESSION group_concat_max_len = 8", "SET sql_auto_is_null = 1",
            f"SET default_storage_engine = {r.choice(['MyISAM', 'InnoDB', 'Aria'])}",
            "SET character_set_results = NULL", "SET @@session.autocommit = 1",
            "SET STATEMENT max_statement_time = 1 FOR SELECT 1",
            "SET SESSION nonexistent_var = 1", "SET @u1 = 1, @u2 = @u1 + 1",
            "SET ROLE NONE",
        ])

    def sql_use(self):
        return self.r.choice(["USE sluice_test", "USE sbtest", "USE fz_nonexistent", "USE mysql",
                              "USE `sluice_test`"])

    def sql_temp(self):
        n = self.r.randrange(3)
        return self.r.choice([
            f"CREATE TEMPORARY TABLE IF NOT EXISTS sluice_test.fz_tmp{n} (a INT)",
            f"INSERT INTO sluice_test.fz_tmp{n} VALUES ({self.n()})",
            f"SELECT * FROM sluice_test.fz_tmp{n}",
            f"DROP TEMPORARY TABLE IF EXISTS sluice_test.fz_tmp{n}",
            f"CREATE TEMPORARY TABLE sluice_test.fz_tmp{n} AS SELECT id, k FROM sluice_test.fz_t LIMIT 5",
        ])

    def sql_lock(self):
        return self.r.choice([
            "SELECT GET_LOCK('fz', 0)", "SELECT RELEASE_LOCK('fz')", "SELECT RELEASE_ALL_LOCKS()",
            "SELECT IS_USED_LOCK('fz')", "LOCK TABLES sluice_test.fz_t READ", "UNLOCK TABLES",
            "LOCK TABLES sluice_test.fz_t WRITE, sluice_test.fz_rw WRITE",
            "HANDLER sluice_test.fz_t OPEN AS fzh", "HANDLER fzh READ FIRST", "HANDLER fzh CLOSE",
        ])

    def sql_multi(self):
        parts = [self.r.choice([self.sql_read, self.sql_write, self.sql_set, self.sql_txn])()
                 for _ in range(self.r.randrange(2, 4))]
        return "; ".join(parts)

    def sql_proc(self):
        choices = ["CALL sluice_test.fz_multi()", f"CALL sluice_test.fz_sig({self.r.randrange(2)})",
                   "CALL sluice_test.fz_out(3, @o1, @o2)", "SELECT @o1, @o2",
                   "CALL sluice_test.fz_setvar(5)", "SELECT @fz_var",
                   f"CALL sluice_test.fz_write({self.n()})", "CALL sluice_test.fz_nope()",
                   "CALL sluice_test.fz_multi(1)", f"CALL sluice_test.fz_dyn{self.r.randrange(3)}()"]
        if self.enabled("proc_cursor"):
            choices += ["CALL sluice_test.fz_cur()", "CALL sluice_test.fz_cur_loop()",
                        "CALL sluice_test.fz_cur_sig()"]
        return self.r.choice(choices)

    def sql_block(self):
        choices = ["BEGIN NOT ATOMIC SELECT 1; SELECT 2; END",
                   "BEGIN NOT ATOMIC SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'block'; END",
                   "BEGIN NOT ATOMIC DECLARE x INT DEFAULT 3; SET @u1 = x; SELECT x; END",
                   "BEGIN NOT ATOMIC INSERT INTO sluice_test.fz_t (k) VALUES (1); SELECT ROW_COUNT(); END",
                   "PREPARE fzs FROM 'SELECT ? + 1'", "SET @pa = 2", "EXECUTE fzs USING @pa",
                   "DEALLOCATE PREPARE fzs", "EXECUTE IMMEDIATE 'SELECT 42'"]
        if self.enabled("proc_cursor"):
            choices += [CURSOR_BLOCK, CURSOR_LOOP_BLOCK]
        return self.r.choice(choices)

    def sql_misc(self):
        return self.r.choice([
            "DO 1", "SHOW PROCESSLIST", "SHOW STATUS LIKE 'Com_select'",
            "SELECT * FROM sluice_test.fz_t INTO OUTFILE '/nonexistent/x'", "ANALYZE TABLE sluice_test.fz_t",
            "SET @x = REPEAT('a', 1000)", "SELECT LENGTH(@x)", "CHECKSUM TABLE sluice_test.fz_t",
            "EXPLAIN SELECT * FROM sluice_test.fz_t", "SHOW ENGINE INNODB STATUS", "",
            "   ", "-- only a comment", "/* */", ";", "SELECT 1;", "SELECT 1; ",
        ] + (["FLUSH STATUS", "FLUSH TABLES sluice_test.fz_load"] if self.enabled("flush") else []))

    def sql_ddlproc(self):
        n = self.r.randrange(3)
        if self.r.randrange(2):
            return f"DROP PROCEDURE IF EXISTS sluice_test.fz_dyn{n}"
        bodies = PROC_BODIES if self.enabled("proc_cursor") else PROC_BODIES[1:]
        return f"CREATE PROCEDURE sluice_test.fz_dyn{n}() {self.r.choice(bodies)}"

    def sql_kill(self):
        own = ["KILL QUERY SELFID", "KILL SELFID"] if self.enabled("kill_self") else []
        return self.r.choice(own + [f"KILL {FIRST_SLUICE_ID + 987654}",
                                    f"KILL QUERY {FIRST_SLUICE_ID + 987654}", "KILL QUERY 999999999"])

    # ---- commands ----

    def query(self, sql=None, **opts):
        sql = self.sql() if sql is None else sql
        if re.match(r"(?i)\s*KILL\s+(\d|SELFID)", sql):
            opts["mayclose"] = True
        return Cmd(bytes([COM_QUERY]) + sql.encode(), **opts)

    def stmt_id(self):
        r = self.r
        x = r.randrange(10)
        if x < 6 and self.prepared:
            return r.choice(sorted(self.prepared))
        if x < 8 and self.closed_ids:
            return r.choice(self.closed_ids)
        return r.choice([0, 1, 2, 99, 0xFFFFFFFF, max(self.prepared or [0]) + 1])

    def prepare(self):
        r = self.r
        pool = [p for p in PREPARED if self.enabled(p[2])]
        sql = r.choice(pool)[0] if r.randrange(10) else self.sql()
        return Cmd(bytes([COM_STMT_PREPARE]) + sql.encode())

    def execute(self):
        r = self.r
        sid = self.stmt_id()
        sql, params = self.prepared.get(sid, ("", r.randrange(3)))
        if not self.enabled("cursor_fail") and "NTILE" in sql:
            sid = 0xFFFFFFF0
        wrong = r.randrange(8) == 0
        count = max(0, params + r.choice([-2, -1, 1, 2])) if wrong else params
        flags = r.choice([0, 0, 1, 1, 2, 4, r.randrange(256)])
        garbage = wrong or flags not in (0, 1)
        p = bytearray([COM_STMT_EXECUTE]) + struct.pack("<IBI", sid, flags, 1)
        if count:
            nulls = bytearray((count + 7) // 8)
            values = bytearray()
            types = bytearray()
            for i in range(count):
                if r.randrange(8) == 0:
                    nulls[i // 8] |= 1 << (i % 8)
                    t = 0x06
                elif r.randrange(20) == 0:
                    t = r.randrange(256)
                    garbage = True
                    values += self.rbytes(0, 9)
                else:
                    t = r.choice(list(TYPES))
                    values += TYPES[t](r)
                types += struct.pack("<H", t | (0x8000 if r.randrange(6) == 0 else 0))
            bound = r.randrange(5) != 0
            p += nulls + bytes([1 if bound else 0]) + (types if bound else b"") + values
        opts = {"garbage": True} if garbage else {}
        if r.randrange(15) == 0:
            return Cmd(self.mangle(bytes(p)), garbage=True)
        return Cmd(bytes(p), **opts)

    def simple(self):
        """A valid command other than COM_QUERY / prepared statements, sometimes mangled."""
        r = self.r
        choices = [
            Cmd(bytes([COM_PING])), Cmd(bytes([COM_STATISTICS])),
            Cmd(bytes([COM_INIT_DB]) + r.choice([b"sluice_test", b"sbtest", b"fz_nope", b"mysql",
                                                 b"", b"x" * 300, b"sluice_test\0x"])),
            Cmd(bytes([COM_FIELD_LIST]) + r.choice([b"fz_t\0", b"fz_t\0%", b"fz_t\0k%", b"fz_nope\0",
                                                    b"fz_t", b"\0"])),
            Cmd(bytes([COM_SET_OPTION]) + struct.pack("<H", r.randrange(2))),
            Cmd(bytes([COM_RESET_CONNECTION])),
            Cmd(bytes([COM_PROCESS_KILL]) + struct.pack("<I", r.choice(
                [FIRST_SLUICE_ID + 987654, 999999999, 0])),),
            Cmd(bytes([COM_REFRESH, r.choice([0x00, 0x04, 0x10, 0x20])])),
            Cmd(bytes([COM_DEBUG])),
            Cmd(bytes([COM_STMT_RESET]) + struct.pack("<I", self.stmt_id())),
            Cmd(bytes([COM_STMT_FETCH]) + struct.pack("<II", self.stmt_id(), r.choice([1, 2, 100, 0]))),
            Cmd(bytes([COM_STMT_SEND_LONG_DATA]) + struct.pack("<IH", self.stmt_id(), r.randrange(4))
                + self.rbytes(0, r.choice([10, 3000]))),
            Cmd(bytes([COM_STMT_CLOSE]) + struct.pack("<I", self.stmt_id())),
        ]
        if self.enabled("kill_self"):
            choices.append(Cmd(bytes([COM_PROCESS_KILL]) + SELF_ID, mayclose=True))
        c = r.choice(choices)
        if r.randrange(6) == 0:
            m = self.mangle(c.payload)
            if m[0] == COM_PROCESS_KILL:
                m = m[:1] + struct.pack("<I", FIRST_SLUICE_ID + 987654) + m[5:]
            if m[0] == COM_REFRESH:
                m = m[:1] + bytes([m[1] & 0x3D]) + m[2:] if len(m) > 1 else m
            c = Cmd(m, garbage=True)
        return c

    def any_byte(self):
        """Every command byte, sane or random payload."""
        r = self.r
        b = r.randrange(256)
        if DIRECT and b in HARMFUL_DIRECT:
            b = COM_PING
        payload = bytes([b]) + (self.rbytes(0, 32) if r.randrange(2) else b"")
        if b == COM_REFRESH and len(payload) > 1:  # never RESET MASTER / SLAVE, never rotate logs
            payload = payload[:1] + bytes([payload[1] & 0x3D]) + payload[2:]
        if b == COM_PROCESS_KILL and len(payload) >= 5:
            payload = payload[:1] + struct.pack("<I", FIRST_SLUICE_ID + 987654) + payload[5:]
        if b == COM_PROCESS_KILL and 1 < len(payload) < 5:
            payload = payload[:1]
        if b == COM_QUERY:
            payload = payload[:1] + b"SELECT 0x" + payload[1:].hex().encode()
        opts = {"garbage": True}
        if b == COM_CHANGE_USER:
            opts["mayhang"] = True  # an auth switch waits for an answer the fuzzer may not give
        if b == COM_QUIT:
            opts["mayclose"] = True
        return Cmd(payload, **opts)

    def change_user(self):
        r = self.r
        user = r.choice(["app", "app", "app2"])
        db = r.choice([None, "sluice_test", "sbtest"])
        if user == "app2" and db == "sbtest":
            db = "sluice_test"
        if r.randrange(12) == 0:
            return ("changeuser", user, "wrong", db, {"mayclose": True})
        if r.randrange(20) == 0:
            return ("changeuser", "fz_nobody", "x", None, {"mayclose": True})
        return ("changeuser", user, USERS[user], db, {})

    def load_data(self):
        r = self.r
        sql = ("LOAD DATA LOCAL INFILE 'fz.csv' INTO TABLE sluice_test.fz_load FIELDS TERMINATED BY ','"
               + r.choice(["", " (a, b)", " IGNORE 1 LINES"]))
        how = r.randrange(4 if self.enabled("infile_garbage") else 3)
        if how == 0:
            infile = "refuse"
        elif how == 1:
            rows = "".join(f"{i},v{i}\n" for i in range(r.randrange(1, 200))).encode()
            infile = "data:" + rows.hex()
        elif how == 2:
            infile = "data:" + self.rbytes(1, 300).hex()
        else:
            # a packet with a wrong sequence id, or a header announcing more than follows
            infile = "garbage:" + r.choice(["05000009" + "3132330a41", "ffffff02" + "00" * 8,
                                            self.rbytes(1, 20).hex()])
            # a header announcing more than follows leaves Sluice and the server waiting
            return Cmd(bytes([COM_QUERY]) + sql.encode(), infile=infile, garbage=True, mayhang=True)
        return Cmd(bytes([COM_QUERY]) + sql.encode(), infile=infile)

    def big(self):
        """A COM_QUERY over 16 MiB: continuation packets."""
        return Cmd(bytes([COM_QUERY]) + b"SELECT LENGTH('" + b"q" * (0xFFFFFF + 100) + b"')")

    def step(self, runner):
        """One action for the current connection."""
        r = self.r
        x = r.randrange(100)
        if x < 34:
            c = self.query()
            if r.randrange(12) == 0 and b"SLEEP" not in c.payload:  # a mangled SLEEP may run long
                c = Cmd(self.mangle(c.payload), garbage=True)
            return ("cmd", c)
        if x < 40:
            return ("cmd", self.query("SELECT @@server_id, @@in_transaction", probe=True))
        if x < 44:
            return "rwcheck"
        if x < 52:
            c = self.prepare()
            if r.randrange(15) == 0:
                c = Cmd(self.mangle(c.payload), garbage=True)
            return ("cmd", c)
        if x < 62:
            return ("cmd", self.execute())
        if x < 66:
            sid = r.choice(self.cursor_ids) if self.cursor_ids else self.stmt_id()
            return ("cmd", Cmd(bytes([COM_STMT_FETCH]) + struct.pack("<II", sid, r.choice([1, 2, 10, 1000]))))
        if x < 76:
            return ("cmd", self.simple())
        if x < 80:
            return ("cmd", self.any_byte())
        if x < 84:
            return self.change_user()
        if x < 86:
            return ("cmd", self.load_data())
        if x < 94:
            cmds = []
            for _ in range(r.randrange(2, 7)):
                y = r.randrange(10)
                if y < 4:
                    cmds.append(self.query())
                elif y < 6:
                    cmds.append(self.simple())
                elif y < 7:
                    cmds.append(self.prepare())
                elif y < 8:
                    cmds.append(self.execute())
                elif y < 9:
                    cmds.append(self.query("SELECT @@server_id, @@in_transaction", probe=True))
                else:
                    cmds.append(self.any_byte())
            return ("pipe", cmds)
        if x < 96 and r.randrange(40) == 0:
            return ("cmd", self.big())
        return "scenario"

    def scenario(self):
        """Resets and user changes between prepare and execute and inside transactions."""
        r = self.r
        pool = [p for p in PREPARED if self.enabled(p[2]) and p[1] == 0]
        sql = r.choice(pool)[0]
        between = r.choice([("cmd", Cmd(bytes([COM_RESET_CONNECTION]))), self.change_user(),
                            ("cmd", self.query("ROLLBACK")), ("cmd", self.query("COMMIT"))])
        kind = r.randrange(3)
        if kind == 0:   # prepare, reset/change user, execute (the id is stale now)
            return [("cmd", Cmd(bytes([COM_STMT_PREPARE]) + sql.encode())), between, "execute_last"]
        if kind == 1:   # inside a transaction
            return [("cmd", self.query(r.choice(["BEGIN", "START TRANSACTION", "SET autocommit = 0"]))),
                    ("cmd", self.query(self.sql_write())),
                    ("cmd", self.query("SELECT @@server_id, @@in_transaction", probe=True)),
                    between,
                    ("cmd", self.query("SELECT @@server_id, @@in_transaction", probe=True)),
                    "rwcheck"]
        # cursor opened, then fetched across a reset / change user
        return [("cmd", Cmd(bytes([COM_STMT_PREPARE]) + b"SELECT seq FROM sluice_test.seq_1_to_100")),
                "execute_last_cursor", "fetch_last", between, "fetch_last"]

    def learn(self, action, replies):
        """Statement ids and session facts from the replies."""
        if action[0] == "login":
            self.reset_conn()
            return
        cmds = action[1] if action[0] == "pipe" else ([action[1]] if action[0] == "cmd" else [])
        if action[0] == "changeuser" and replies and replies[0] and replies[0].get("kind") == "ok":
            self.reset_conn()
        for c, rep in zip(cmds, replies):
            if rep is None or not c.payload:
                continue
            b = c.payload[0]
            if b == COM_STMT_PREPARE and rep.get("kind") == "prepare":
                sql = c.payload[1:].decode("utf-8", "replace")
                self.prepared[rep["id"]] = (sql, rep["params"])
            elif b == COM_STMT_CLOSE and len(c.payload) >= 5:
                sid = struct.unpack_from("<I", c.payload, 1)[0]
                if sid in self.prepared:
                    del self.prepared[sid]
                    self.closed_ids.append(sid)
            elif b == COM_RESET_CONNECTION and rep.get("kind") == "single":
                self.closed_ids += list(self.prepared)
                self.prepared = {}
            elif b == COM_STMT_EXECUTE and len(c.payload) >= 5:
                sid = struct.unpack_from("<I", c.payload, 1)[0]
                res = rep.get("results") or []
                if res and res[-1]["kind"] == "cursor" and sid not in self.cursor_ids:
                    self.cursor_ids.append(sid)
            elif b == COM_QUERY and c.payload[1:] == b"SELECT CONNECTION_ID()":
                pass


# ------------------------------------------------------------------------------ driver ----

def setup():
    conn = pymysql.connect(host=HOST, port=PRIMARY_PORT, user="app", password="app",
                           autocommit=True, connect_timeout=5)
    with conn.cursor() as c:
        for sql in SETUP_SQL:
            c.execute(sql)
    wait_replicas(conn)
    conn.close()


def wait_replicas(primary, timeout=30):
    with primary.cursor() as c:
        c.execute("SELECT @@gtid_binlog_pos")
        pos = c.fetchone()[0]
    for name in ("replica1", "replica2"):
        r = pymysql.connect(host=HOST, port=SERVER_PORTS[name], user="app", password="app",
                            autocommit=True, connect_timeout=5)
        with r.cursor() as c:
            c.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (pos, timeout))
            if c.fetchone()[0] != 0:
                raise AssertionError(f"{name} did not reach the primary's position {pos}")
        r.close()


def daemon_alive():
    if DIRECT:
        return True, ""
    try:
        pid = int(open(PIDFILE).read().strip())
    except (OSError, ValueError) as e:
        return False, f"no pid in {PIDFILE}: {e}"
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return False, f"sluice (pid {pid}) is not running"
    if b"sluice" not in cmdline:
        return False, f"pid {pid} is not a sluice process any more"
    try:
        state = [l for l in open(f"/proc/{pid}/status") if l.startswith("State:")][0]
        if "zombie" in state:
            return False, f"sluice (pid {pid}) exited (zombie)"
    except (OSError, IndexError):
        pass
    return True, ""


def sluice(user="app", **kw):
    return pymysql.connect(host=HOST, port=PORT, user=user, password=USERS[user], autocommit=True,
                           connect_timeout=5, read_timeout=15, write_timeout=15, **kw)


def backend_threads():
    """Connections of app / app2 on each server (what Sluice holds), not counting this one."""
    out = {}
    for name, port in SERVER_PORTS.items():
        c = pymysql.connect(host=HOST, port=port, user="app", password="app", autocommit=True,
                            connect_timeout=5)
        with c.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.processlist WHERE user IN "
                        "('app', 'app2') AND id <> CONNECTION_ID()")
            out[name] = cur.fetchone()[0]
        c.close()
    return out


def replication_problems():
    """Every replica applies the primary's events and has binlogged nothing of its own: a
    statement Sluice sent to a replica that the replica wrote to its binary log (FLUSH, ...)
    gives it a GTID of its own, and gtid_strict_mode then stops its SQL thread for good."""
    problems = []
    for name in ("replica1", "replica2"):
        c = pymysql.connect(host=HOST, port=SERVER_PORTS[name], user="app", password="app",
                            autocommit=True, connect_timeout=5)
        with c.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute("SELECT @@gtid_binlog_pos AS pos, @@server_id AS id")
            row = cur.fetchone()
            own = [g for g in row["pos"].split(",") if g and g.split("-")[1] == str(row["id"])]
            if own:
                problems.append(f"{name} binlogged a statement of its own (GTIDs {own}): "
                                f"Sluice ran a binlogged statement there")
            cur.execute("SHOW SLAVE STATUS")
            st = cur.fetchone()
            if st and st["Slave_SQL_Running"] != "Yes":
                problems.append(f"{name}'s SQL thread stopped: {st['Last_SQL_Error'][:200]}")
        c.close()
    return problems


def processlists():
    """The servers' own view of Sluice's backend threads (for a hang report)."""
    out = []
    for name, port in SERVER_PORTS.items():
        try:
            c = pymysql.connect(host=HOST, port=port, user="app", password="app", autocommit=True,
                                connect_timeout=5)
            with c.cursor() as cur:
                cur.execute("SELECT id, user, command, time, state, LEFT(info, 100) FROM "
                            "information_schema.processlist WHERE user IN ('app', 'app2') AND "
                            "id <> CONNECTION_ID()")
                out += [f"{name}: {row}" for row in cur.fetchall()]
            c.close()
        except pymysql.MySQLError as e:
            out.append(f"{name}: {e}")
    return out


def fresh_session_checks(tagger, baseline):
    """The daemon answers a fresh session right. Returns a list of problems."""
    problems = []
    ok, why = daemon_alive()
    if not ok:
        return [why]
    if not DIRECT:
        problems += replication_problems()
    try:
        c = sluice()
        with c.cursor() as cur:
            tag = tagger()
            cur.execute("INSERT INTO sluice_test.fz_rw (tag) VALUES (%s)", (tag,))
            cur.execute("SELECT COUNT(*) FROM sluice_test.fz_rw WHERE tag = %s", (tag,))
            got = cur.fetchone()[0]
            if got != 1:
                problems.append(f"a fresh session's read of the row it just wrote found {got} rows")
            cur.execute("BEGIN")
            cur.execute("SELECT @@server_id")
            sid = cur.fetchone()[0]
            cur.execute("COMMIT")
            if sid != 1 and not DIRECT:
                problems.append(f"SELECT @@server_id in a transaction gave {sid}, not the primary's 1")
        c.close()
    except Exception as e:  # noqa: BLE001
        problems.append(f"fresh session as app: {type(e).__name__}: {e}")
    if not DIRECT:
        seen = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                c = sluice()
                with c.cursor() as cur:
                    cur.execute("SELECT @@server_id")
                    seen = cur.fetchone()[0]
                c.close()
            except Exception as e:  # noqa: BLE001
                seen = f"{type(e).__name__}: {e}"
            if seen in (2, 3):
                break
            time.sleep(0.25)
        if seen not in (2, 3):
            problems.append(f"an autocommit SELECT @@server_id gave {seen!r} for 5 s, not a replica's 2 or 3")
    try:
        c = sluice("app2")
        with c.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM sluice_test.fz_t WHERE id = 1")
            got = cur.fetchone()[0]
        c.close()
        if got != 1:
            problems.append(f"app2's fresh session: row 1 of fz_t counted {got} times")
    except Exception as e:  # noqa: BLE001
        problems.append(f"fresh session as app2: {type(e).__name__}: {e}")
    if baseline is not None:
        # Pooled (transaction mode, the default): the pools keep idle connections, none lent
        # with no client connected; any thread beyond what they hold is a leak. Their gauges
        # are sampled once a second, hence the wait.
        counts = pooled = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            counts = backend_threads()
            samples = scrape_metrics(env_int("SLUICE_ADMIN_PORT"))
            pooled = {n: metric_value(samples, "sluice_pool_connections", backend=n,
                                      state="idle") for n in counts}
            busy = metric_value(samples, "sluice_pool_connections", state="busy")
            if busy == 0 and all(counts[n] <= baseline[n] + LEAK_SLACK + pooled[n]
                                 for n in counts):
                break
            time.sleep(0.25)
        else:
            problems.append(f"backend connections leak: app/app2 threads per server {counts}, "
                            f"at start {baseline}, idle in Sluice's pools {pooled} (no client "
                            "connected now)")
    return problems


class Fuzz:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.gen = Generator(self.rng)
        self.runner = Runner()
        self.failures = []
        self.sequences = 0
        self.commands = 0
        self.batch = 0
        self.baseline = None

    def tagger(self):
        return self.gen.tag()

    def fail(self, what, batch_lines, failing=None):
        name = os.path.join(OUT_DIR, f"fuzz-failure-{SEED}-{self.batch}-{len(self.failures)}.txt")
        with open(name, "w") as f:
            f.write(f"# session_fuzz failure: {what}\n# seed {SEED} batch {self.batch}\n")
            if what.startswith("hang"):
                f.write("# what the servers were doing then (app/app2 threads):\n")
                f.write("".join(f"#   {l}\n" for l in processlists()))
            if failing:
                f.write("# the failing sequence alone:\n")
                f.write("\n".join("# | " + l for l in failing.splitlines()) + "\n")
            f.write("# every action of the batch (replay: copy to tests/integration/fuzz_regressions/):\n")
            f.write("\n".join(batch_lines) + "\n")
        self.failures.append(what)
        print(f"FAIL - {what}\n       sequence written to {name}", file=sys.stderr)

    def act(self, action):
        """Runs an action; the generator learns from the replies. Returns False on a failure."""
        t0 = time.monotonic()
        try:
            replies = self.runner.run(action)
        finally:
            if SLOW_LOG and time.monotonic() - t0 > SLOW_LOG:
                print(f"  slow ({time.monotonic() - t0:.2f}s): {action_line(action)[:160]}")
        if action[0] == "pipe":
            self.commands += len(action[1])
        elif action[0] in ("cmd", "changeuser"):
            self.commands += 1
        self.gen.learn(action, replies)
        return replies

    def expand(self, item):
        """'rwcheck', 'execute_last' ... into actions, in order, with the replies in between."""
        r = self.rng
        if item == "rwcheck":
            tag = self.gen.tag()
            rep = self.act(("cmd", Cmd(bytes([COM_QUERY]) +
                                       f"INSERT INTO sluice_test.fz_rw (tag) VALUES ('{tag}')".encode())))
            ins_ok = (rep and rep[0] and rep[0].get("results") and
                      rep[0]["results"][-1]["kind"] == "ok")
            sql = f"SELECT COUNT(*) FROM sluice_test.fz_rw WHERE tag = '{tag}'"
            self.act(("cmd", Cmd(bytes([COM_QUERY]) + sql.encode(), **({"count1": True} if ins_ok else {}))))
            return
        if item in ("execute_last", "execute_last_cursor", "fetch_last"):
            ids = sorted(self.gen.prepared) or [max(self.gen.closed_ids or [1])]
            sid = ids[-1]
            if item == "fetch_last":
                p = bytes([COM_STMT_FETCH]) + struct.pack("<II", sid, r.choice([1, 5, 50]))
            else:
                flags = 1 if item == "execute_last_cursor" or r.randrange(2) else 0
                p = bytes([COM_STMT_EXECUTE]) + struct.pack("<IBI", sid, flags, 1)
            self.act(("cmd", Cmd(p)))
            return
        if item == "scenario":
            for sub in self.gen.scenario():
                if self.runner.conn is None:
                    return
                self.expand(sub)
            return
        self.act(item)

    def sequence(self):
        r, g = self.rng, self.gen
        user = "app" if r.randrange(7) else "app2"
        caps = BASE_CAPS
        for cap in OPTIONAL_CAPS:
            if r.randrange(3):
                caps |= cap
        db = r.choice([None, None, "sluice_test", "sbtest" if user == "app" else "sluice_test"])
        self.act(("login", user, USERS[user], caps, db))
        for _ in range(r.randrange(3, 30)):
            if self.runner.conn is None:
                break
            self.expand(g.step(self.runner))
        if self.runner.conn is not None:
            end = r.randrange(10)
            if end < 4:
                self.act(("cmd", Cmd(bytes([COM_QUIT]), mayclose=True)))
            elif end < 7:
                self.act(("close",))
            elif end < 9:
                rows = r.choice([20000, 100000, 300000])
                sql = f"SELECT seq, REPEAT('x', 200) FROM sluice_test.seq_1_to_{rows}"
                if r.randrange(2):
                    sql = "/* sluice: primary */ " + sql
                self.act(("cmd", Cmd(bytes([COM_QUERY]) + sql.encode(),
                                     partial=r.choice([0, 1, 100, 5000, 200000]))))
            else:
                self.act(("raw", r.choice([b"\x01\x00\x00\x05\x0e", b"\x00\x00\x00\x00",
                                           b"\x05\x00\x00\x00\x03SEL", b"\xff\xff"])))
        self.runner.drop()
        self.sequences += 1

    def run_batch(self, deadline):
        self.batch += 1
        self.runner.lines = [f"# batch {self.batch}"]
        for _ in range(BATCH):
            if time.monotonic() > deadline:
                break
            try:
                self.sequence()
            except Failure as e:
                self.fail(str(e), self.runner.lines, self.runner.sequence_text())
                self.runner.drop()
                ok, why = daemon_alive()
                if not ok:
                    self.fail(f"the daemon died: {why}", self.runner.lines)
                    return False
                if len(self.failures) >= MAX_FAILURES:
                    return False
            except Exception as e:  # the fuzzer's own error: keep the sequence, then stop
                self.fail(f"fuzzer error {type(e).__name__}: {e}", self.runner.lines,
                          self.runner.sequence_text())
                raise
        if TRACE:
            with open(TRACE, "a") as f:
                f.write("\n".join(self.runner.lines) + "\n")
        problems = fresh_session_checks(self.tagger, self.baseline)
        if problems:
            self.fail("after batch {}: {}".format(self.batch, "; ".join(problems)), self.runner.lines)
            return False
        return True

    def replay(self, path):
        """A regression file, then the batch checks. Returns a list of problems."""
        problems = []
        runner = Runner()
        with open(path) as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines, 1):
            try:
                action = parse_line(line)
            except (ValueError, IndexError) as e:
                problems.append(f"{path}:{i}: cannot parse: {e}")
                break
            if action is None:
                continue
            try:
                runner.run(action)
            except Failure as e:
                problems.append(f"{os.path.basename(path)}:{i}: {e}")
                runner.drop()
                # the rest of the sequence needs this connection: skip to the next login
                continue
        runner.drop()
        problems += fresh_session_checks(self.tagger, self.baseline)
        return problems


def scan_log(start):
    if not LOG or DIRECT:
        return []
    try:
        with open(LOG, "rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return [f"cannot read {LOG}: {e}"]
    bad = ("critical", "session ended by exception", "AddressSanitizer", "runtime error:",
           "not valid MySQL protocol")
    return [l for l in text.splitlines() if any(b in l for b in bad)]


def main():
    print(f"session_fuzz: seed {SEED} (SLUICE_FUZZ_SEED={SEED} reproduces), {SECONDS:g} s, "
          f"batches of {BATCH}, reply timeout {REPLY_TIMEOUT:g} s, port {PORT}"
          + (f", excluded: {','.join(sorted(EXCLUDE))}" if EXCLUDE else "")
          + (" (DIRECT: against the primary)" if DIRECT else ""), flush=True)
    log_start = os.path.getsize(LOG) if LOG and os.path.exists(LOG) else 0
    checks = Checks()
    fuzz = Fuzz(SEED)

    def check_setup():
        setup()
        fuzz.baseline = backend_threads()
        problems = fresh_session_checks(fuzz.tagger, fuzz.baseline)
        if problems:
            raise AssertionError("before fuzzing: " + "; ".join(problems))

    if not checks.run("set-up: tables and stored programs; the daemon answers right", check_setup):
        checks.finish()

    pattern = os.environ.get("SLUICE_FUZZ_REGRESSIONS") or os.path.join(REGRESSIONS, "*.txt")
    for path in sorted(glob.glob(pattern)):
        def check_regression(path=path):
            problems = fuzz.replay(path)
            if problems:
                raise AssertionError("; ".join(problems))
        checks.run(f"regression {os.path.basename(path)} replays without a failure", check_regression)

    def check_fuzz():
        deadline = time.monotonic() + SECONDS
        t0 = time.monotonic()
        while time.monotonic() < deadline:
            if not fuzz.run_batch(deadline):
                break
        print(f"  {fuzz.sequences} sequences, {fuzz.commands} commands, {fuzz.batch} batches in "
              f"{time.monotonic() - t0:.0f} s (seed {SEED}); after ill-formed input, tolerated: "
              + ", ".join(f"{v} {k}" for k, v in fuzz.runner.tolerated.items())
              + "; replies: " + ", ".join(f"{v} {k}" for k, v in sorted(fuzz.runner.replies.items())))
        if fuzz.failures:
            raise AssertionError(f"{len(fuzz.failures)} failures (seed {SEED}): "
                                 + " | ".join(fuzz.failures[:5]))

    checks.run(f"fuzz for {SECONDS:g} s: no hang, no dropped session, right answers, daemon alive",
               check_fuzz)

    def check_log():
        bad = scan_log(log_start)
        if bad:
            raise AssertionError(f"{len(bad)} bad log lines, first ones:\n  " + "\n  ".join(bad[:10]))

    checks.run("the Sluice log holds no critical line, exception, sanitizer report or protocol error",
               check_log)
    checks.finish()


if __name__ == "__main__":
    main()
