"""Shared helpers for the Python integration tests (run with Debian's /usr/bin/python3).

Every test is a list of named checks; a check that raises or whose assertion fails is
reported with its message, the remaining checks still run, and the process exits 1 with the
Sluice log lines written during the test. Environment comes from CTest (CMakeLists.txt).
"""

import os
import re
import socket
import struct
import subprocess
import sys
import time
import traceback
import hashlib
import urllib.request

HOST = os.environ.get("SLUICE_HOST", "127.0.0.1")


def env_int(name):
    value = os.environ.get(name)
    if value is None:
        print(f"FAIL - environment variable {name} is not set (run through ctest)", file=sys.stderr)
        sys.exit(1)
    return int(value)


def env_str(name):
    value = os.environ.get(name)
    if value is None:
        print(f"FAIL - environment variable {name} is not set (run through ctest)", file=sys.stderr)
        sys.exit(1)
    return value


class Checks:
    """Runs named check functions, collects failures."""

    def __init__(self):
        self.failures = []
        self.count = 0
        self.log = os.environ.get("SLUICE_LOG")
        self.log_start = self._log_size()

    def _log_size(self):
        try:
            return os.path.getsize(self.log) if self.log else 0
        except OSError:
            return 0

    def log_since_start(self):
        if not self.log:
            return ""
        try:
            with open(self.log, "rb") as f:
                f.seek(self.log_start)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def run(self, name, fn, *args):
        self.count += 1
        t0 = time.monotonic()
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 -- any failure is a test failure
            self.failures.append(name)
            print(f"FAIL - {name}: {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc(limit=4, file=sys.stderr)
            return False
        print(f"ok   - {name} ({time.monotonic() - t0:.2f}s)")
        return True

    def finish(self):
        if self.failures:
            print(f"\n{len(self.failures)} of {self.count} checks failed: {', '.join(self.failures)}",
                  file=sys.stderr)
            lines = self.log_since_start().splitlines()
            print("sluice log during this test (last 60 lines):", file=sys.stderr)
            for line in lines[-60:]:
                print("  " + line, file=sys.stderr)
            sys.exit(1)
        print(f"all {self.count} checks passed")
        sys.exit(0)


def eq(actual, expected, what):
    if actual != expected:
        a, e = repr(actual), repr(expected)
        if len(a) > 300:
            a = a[:300] + "..."
        if len(e) > 300:
            e = e[:300] + "..."
        raise AssertionError(f"{what}: expected {e}, got {a}")


def true(cond, what):
    if not cond:
        raise AssertionError(what)


# ---------------------------------------------------------------- raw MySQL protocol ----

CLIENT_LONG_PASSWORD = 0x1
CLIENT_FOUND_ROWS = 0x2
CLIENT_LONG_FLAG = 0x4
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_MULTI_STATEMENTS = 0x10000
CLIENT_MULTI_RESULTS = 0x20000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_DEPRECATE_EOF = 0x1000000


class Raw:
    """A MySQL client on a raw socket: just enough protocol to log in (native password) and
    to send well- or ill-formed packets."""

    def __init__(self, port, host=HOST, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError(f"connection closed by peer (wanted {n} bytes, have {len(self.buf)})")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_packet(self):
        """Returns (seq, payload) of one physical packet."""
        hdr = self.recv_exact(4)
        length = hdr[0] | hdr[1] << 8 | hdr[2] << 16
        return hdr[3], self.recv_exact(length)

    def send_packet(self, payload, seq):
        self.sock.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload)

    def closed_by_peer(self, timeout=5.0):
        """True if the peer closes the connection (EOF or reset) within timeout; unread
        buffered data is discarded."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return False

    def login(self, user="app", password="app", database=None, caps_extra=0):
        seq, greeting = self.read_packet()
        if greeting[:1] == b"\xff":
            raise AssertionError(f"greeting is an error: {parse_err(greeting)}")
        true(greeting[0] == 10, f"protocol version 10 expected, greeting starts {greeting[:8]!r}")
        pos = greeting.index(b"\0", 1) + 1          # server version
        pos += 4                                      # connection id
        nonce = greeting[pos:pos + 8]
        pos += 8 + 1                                  # filler
        caps = struct.unpack_from("<H", greeting, pos)[0]
        pos += 2 + 1 + 2                              # caps low, charset, status
        caps |= struct.unpack_from("<H", greeting, pos)[0] << 16
        pos += 2
        auth_len = greeting[pos]
        pos += 1 + 10                                 # reserved
        rest = max(13, auth_len - 8)
        nonce += greeting[pos:pos + rest].rstrip(b"\0")
        self.server_caps = caps
        client_caps = (CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_PROTOCOL_41 |
                       CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH |
                       CLIENT_MULTI_RESULTS | caps_extra)
        if database:
            client_caps |= CLIENT_CONNECT_WITH_DB
        client_caps &= caps
        scramble = native_scramble(password.encode(), nonce[:20])
        payload = struct.pack("<IIB", client_caps, 1 << 24, 45) + b"\0" * 23
        payload += user.encode() + b"\0" + bytes([len(scramble)]) + scramble
        if database:
            payload += database.encode() + b"\0"
        payload += b"mysql_native_password\0"
        self.send_packet(payload, seq + 1)
        seq, reply = self.read_packet()
        if reply[:1] == b"\xff":
            raise AssertionError(f"login refused: {parse_err(reply)}")
        true(reply[:1] == b"\x00", f"expected OK after login, got {reply[:16]!r}")
        self.caps = client_caps

    def query(self, sql):
        """COM_QUERY; returns ('ok', payload) / ('err', (code, state, msg)) /
        ('rows', [tuple of str|None, ...])."""
        self.send_packet(b"\x03" + sql.encode(), 0)
        return self.read_response()

    def read_response(self):
        _, p = self.read_packet()
        if p[:1] == b"\xff":
            return "err", parse_err(p)
        if p[:1] == b"\x00":
            return "ok", p
        ncols, _ = lenenc_int(p, 0)
        for _ in range(ncols):
            self.read_packet()
        _, p = self.read_packet()                    # EOF (no DEPRECATE_EOF requested)
        true(p[:1] == b"\xfe", f"expected EOF after column definitions, got {p[:8]!r}")
        rows = []
        while True:
            _, p = self.read_packet()
            if p[:1] == b"\xfe" and len(p) < 9:
                return "rows", rows
            if p[:1] == b"\xff":
                return "err", parse_err(p)
            rows.append(text_row(p, ncols))


def text_row(p, ncols):
    """A text-protocol row payload as a tuple of str|None."""
    row, pos = [], 0
    for _ in range(ncols):
        if p[pos] == 0xFB:
            row.append(None)
            pos += 1
        else:
            n, pos = lenenc_int(p, pos)
            row.append(p[pos:pos + n].decode())
            pos += n
    return tuple(row)


def native_scramble(password, nonce):
    if not password:
        return b""
    h1 = hashlib.sha1(password).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(nonce + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def lenenc_int(p, pos):
    b = p[pos]
    if b < 0xFB:
        return b, pos + 1
    if b == 0xFC:
        return struct.unpack_from("<H", p, pos + 1)[0], pos + 3
    if b == 0xFD:
        return int.from_bytes(p[pos + 1:pos + 4], "little"), pos + 4
    return struct.unpack_from("<Q", p, pos + 1)[0], pos + 9


def parse_err(p):
    """(code, sql_state, message) of an ERR payload."""
    true(p[:1] == b"\xff", f"not an ERR packet: {p[:16]!r}")
    code = struct.unpack_from("<H", p, 1)[0]
    if p[3:4] == b"#":
        return code, p[4:9].decode(), p[9:].decode("utf-8", "replace")
    return code, "", p[3:].decode("utf-8", "replace")


def expect_err_packet(raw, code, what):
    """Reads one packet, asserts it is ERR with code; returns (seq, (code, state, message))."""
    seq, p = raw.read_packet()
    true(p[:1] == b"\xff", f"{what}: expected ERR {code}, got packet {p[:32]!r}")
    err = parse_err(p)
    eq(err[0], code, f"{what}: error code (message {err[2]!r})")
    return seq, err


def raw_select_1(port, what="second session", sessions=8):
    """Logs in on fresh raw connections and checks SELECT 1 answers 1 on each. Several
    sessions, held open together: the kernel spreads them over the workers (SO_REUSEPORT), so
    the worker that served the bad session is almost surely among them (1 - 2^-8 with 2)."""
    held = []
    try:
        for i in range(sessions):
            r = Raw(port, timeout=5)
            held.append(r)
            try:
                r.login()
                kind, rows = r.query(f"SELECT {i + 1}")
            except (OSError, AssertionError) as e:
                raise AssertionError(f"{what} #{i + 1}: {type(e).__name__}: {e}") from e
            eq((kind, rows), ("rows", [(str(i + 1),)]), f"{what} #{i + 1}: SELECT {i + 1}")
    finally:
        for r in held:
            r.close()


def wait_until(cond, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


# ------------------------------------------------------- read/write splitting helpers ----

# SLUICE_IT_DIRECT=1: the test runs against the primary directly (SLUICE_PORT = the primary),
# to validate the test itself without Sluice. Checks of Sluice-only behaviour (a replica's
# server_id, metrics) are then skipped. CTest never sets it.
DIRECT = os.environ.get("SLUICE_IT_DIRECT") == "1"
PRIMARY_ID = 1
REPLICA_IDS = (2, 3)


def expect_replica(server_id, what):
    """A statement Sluice must have sent to a replica answered @@server_id = server_id."""
    if DIRECT:
        true(server_id in (PRIMARY_ID,) + REPLICA_IDS, f"{what}: @@server_id {server_id!r}")
        return
    true(server_id in REPLICA_IDS,
         f"{what}: expected a replica's @@server_id {REPLICA_IDS}, got {server_id!r}")


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape_metrics(admin_port):
    """Every sample on Sluice's /metrics as a list of (name, {label: value}, value)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as r:
        eq(r.status, 200, "GET /metrics status")
        body = r.read().decode()
    out = []
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        true(m is not None, f"not a Prometheus sample line: {line!r}")
        labels = dict(_LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def metric_value(samples, name, **labels):
    """Sum of the samples of NAME whose labels include LABELS (other labels, e.g. a worker
    label, are summed over); 0 if there is none yet (Sluice lists a series once seen)."""
    return sum(v for n, l, v in samples
               if n == name and all(l.get(k) == want for k, want in labels.items()))


def metric_delta(before, after, name, **labels):
    return metric_value(after, name, **labels) - metric_value(before, name, **labels)


def topology(*args, timeout=120):
    """Runs tests/fixtures/topology.sh (SLUICE_TOPOLOGY) with the CTest environment; fails
    with its output if it fails."""
    script = env_str("SLUICE_TOPOLOGY")
    p = subprocess.run(["bash", script, *args], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"topology.sh {' '.join(args)} exited {p.returncode}: "
                             f"{(p.stdout + p.stderr).strip()[-2000:]}")
    return p.stdout


def replica_ports():
    """The test replicas' ports by name (CTest's environment)."""
    return {"replica1": env_int("SLUICE_REPLICA1_PORT"),
            "replica2": env_int("SLUICE_REPLICA2_PORT")}


def sync_replicas(primary_conn, connect):
    """wait_replicas_caught_up over fresh connections to each replica, `connect(port)`."""
    replicas = {n: connect(p) for n, p in replica_ports().items()}
    try:
        wait_replicas_caught_up(primary_conn, replicas)
    finally:
        for r in replicas.values():
            r.close()


def wait_replicas_caught_up(primary_conn, replica_conns, timeout=30):
    """Every replica has applied the primary's current binlog position (MASTER_GTID_WAIT):
    set-up done directly on the primary is visible on the replicas before a test starts."""
    with primary_conn.cursor() as c:
        c.execute("SELECT @@gtid_binlog_pos")
        pos = c.fetchone()[0]
    for name, conn in replica_conns.items():
        with conn.cursor() as c:
            c.execute("SELECT MASTER_GTID_WAIT(%s, %s)", (pos, timeout))
            eq(c.fetchone()[0], 0, f"{name} reached the primary's position {pos!r} within {timeout}s")


# ------------------------------------------------ where statements ran, from the servers ----

SERVER_NAMES = ("primary", "replica1", "replica2")
SERVER_IDS = {"primary": PRIMARY_ID, "replica1": 2, "replica2": 3}


def server_ports():
    """The test servers' ports by name (CTest's environment)."""
    return {"primary": env_int("SLUICE_PRIMARY_PORT"), **replica_ports()}


def server_counters():
    """{server name: {status variable: int}}: SHOW GLOBAL STATUS read directly on each server
    (Com_* counters, Questions, Master_gtid_wait_count). Reading them runs no SELECT."""
    import pymysql
    out = {}
    for name, port in server_ports().items():
        conn = pymysql.connect(host="127.0.0.1", port=port, user="app", password="app",
                               connect_timeout=5, read_timeout=30, autocommit=True)
        try:
            with conn.cursor() as c:
                c.execute("SHOW GLOBAL STATUS WHERE Variable_name LIKE 'Com\\_%' OR Variable_name "
                          "IN ('Questions', 'Master_gtid_wait_count')")
                out[name] = {k: int(v) for k, v in c.fetchall()}
        finally:
            conn.close()
    for name, counters in out.items():
        true("Com_select" in counters and "Master_gtid_wait_count" in counters,
             f"{name}: Com_select / Master_gtid_wait_count missing from SHOW GLOBAL STATUS")
    return out


def server_delta(before, after, name, variable):
    """How much a server's own counter grew between two server_counters() snapshots."""
    return after[name][variable] - before[name][variable]


def selects_served(before, after):
    """{server name: SELECTs it ran between two server_counters() snapshots}, as the servers
    count them (Com_select), without Sluice's read-your-writes waits (SELECT
    MASTER_GTID_WAIT(...), which each server counts in Master_gtid_wait_count too)."""
    return {name: server_delta(before, after, name, "Com_select")
            - server_delta(before, after, name, "Master_gtid_wait_count")
            for name in SERVER_NAMES}


def selects_during(fn):
    """Runs fn(); returns (its result, the SELECTs all three servers ran meanwhile, by their
    own counters): 0 for reads a cache answered."""
    before = server_counters()
    result = fn()
    after = server_counters()
    return result, sum(selects_served(before, after).values())


def one(conn, sql, args=None):
    """The first row of `sql` on a PyMySQL connection."""
    with conn.cursor() as c:
        c.execute(sql, args)
        return c.fetchone()


def topology_backends_toml():
    """[[backends]] for the test topology's primary, replica1 and replica2 (CTest's ports)."""
    out = ""
    for name, var, role in (("primary", "SLUICE_PRIMARY_PORT", "primary"),
                            ("replica1", "SLUICE_REPLICA1_PORT", "replica"),
                            ("replica2", "SLUICE_REPLICA2_PORT", "replica")):
        out += (f'\n[[backends]]\nname = "{name}"\nhost = "127.0.0.1"\n'
                f'port = {env_int(var)}\nrole = "{role}"\n')
    return out


# ------------------------------------------------------ caching_sha2_password, raw ----

def sha2_scramble(password, nonce):
    """caching_sha2_password's fast-path token: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce)."""
    if not password:
        return b""
    h1 = hashlib.sha256(password).digest()
    h3 = hashlib.sha256(hashlib.sha256(h1).digest() + nonce).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def sha2_login(port, user, password, ca=None, timeout=10.0):
    """Logs in with caching_sha2_password on a raw socket (over TLS, verified with CA, if CA is
    given) and returns (Raw, path): path is "full" if the server asked for the password
    (AuthMoreData 0x04, perform_full_authentication: a cold cache), "fast" if it answered
    0x03 (fast_auth_success). Raises AssertionError with the ERR if the login is refused."""
    import ssl
    r = Raw(port, timeout=timeout)
    try:
        seq, greeting = r.read_packet()
        true(greeting[:1] == b"\x0a", f"greeting: {greeting[:16]!r}")
        pos = greeting.index(b"\0", 1) + 1 + 4
        nonce = greeting[pos:pos + 8]
        pos += 8 + 1
        caps = struct.unpack_from("<H", greeting, pos)[0]
        pos += 2 + 1 + 2
        caps |= struct.unpack_from("<H", greeting, pos)[0] << 16
        pos += 2
        auth_len = greeting[pos]
        pos += 1 + 10
        nonce += greeting[pos:pos + max(13, auth_len - 8)].rstrip(b"\0")
        client_caps = (CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_PROTOCOL_41 |
                       CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH |
                       CLIENT_MULTI_RESULTS) & caps
        head = lambda c: struct.pack("<IIB", c, 1 << 24, 45) + b"\0" * 23
        if ca:
            CLIENT_SSL = 0x800
            true(caps & CLIENT_SSL, "the listener offers no TLS")
            client_caps |= CLIENT_SSL
            seq += 1
            r.send_packet(head(client_caps), seq)
            ctx = ssl.create_default_context(cafile=ca)
            ctx.check_hostname = False
            r.sock = ctx.wrap_socket(r.sock)
        token = sha2_scramble(password.encode(), nonce[:20])
        seq += 1
        r.send_packet(head(client_caps) + user.encode() + b"\0" + bytes([len(token)]) + token
                      + b"caching_sha2_password\0", seq)
        seq, reply = r.read_packet()
        if reply[:1] == b"\xff":
            raise AssertionError(f"login refused: {parse_err(reply)}")
        true(reply[:1] == b"\x01" and len(reply) == 2,
             f"expected AuthMoreData (0x01 0x03/0x04) after the caching_sha2 token, got {reply[:16]!r}")
        if reply[1] == 0x04:
            path = "full"
            true(ca is not None, "the server asked for the cleartext password without TLS")
            r.send_packet(password.encode() + b"\0", seq + 1)
        else:
            eq(reply[1], 0x03, "AuthMoreData status byte (0x03 fast_auth_success)")
            path = "fast"
        _, ok = r.read_packet()
        if ok[:1] == b"\xff":
            raise AssertionError(f"login refused after the {path} path: {parse_err(ok)}")
        true(ok[:1] == b"\x00", f"expected OK after the {path} path, got {ok[:16]!r}")
        r.caps = client_caps
        return r, path
    except BaseException:
        r.close()
        raise


# ------------------------------------------------------ daemons a test starts itself ----

def fixture(*args, port=None, env=None, timeout=60):
    """tests/fixtures/sluice.sh (SLUICE_FIXTURE) with ARGS: start / stop-check / check-log. PORT,
    if given, is the SLUICE_PORT `start` waits on (else the config's first listener); ENV adds
    variables (the daemon inherits them). Returns the CompletedProcess."""
    run_env = dict(os.environ)
    if port is not None:
        run_env["SLUICE_PORT"] = str(port)
    if env:
        run_env.update(env)
    return subprocess.run(["bash", env_str("SLUICE_FIXTURE"), *args], capture_output=True,
                          text=True, timeout=timeout, env=run_env)


def connect(port, user="app", password=None, database="sluice_test", **kw):
    """A PyMySQL connection (autocommit, 5 s to connect, 30 s per read or write; KW overrides).
    The password defaults to the user's name (the topology's app/app, app2/app2)."""
    import pymysql
    args = dict(host=HOST, port=port, user=user, password=user if password is None else password,
                database=database, charset="utf8mb4", autocommit=True, connect_timeout=5,
                read_timeout=30, write_timeout=30)
    args.update(kw)
    return pymysql.connect(**args)


def fetch_backends(admin_port):
    """GET /backends of the Sluice whose admin listens on ADMIN_PORT, as the parsed JSON."""
    import json
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/backends", timeout=5) as r:
        eq(r.status, 200, "GET /backends status")
        return json.loads(r.read().decode())


def by_name(doc):
    """The entries of a /backends document by backend name."""
    return {b["name"]: b for b in doc["backends"]}


class Daemon:
    """A Sluice a test starts with a config of its own: DIRECTORY/NAME.toml (written here),
    NAME.pid and NAME.log. `start` runs `sluice.sh start` (it waits for the MySQL port: PORT,
    else the config's first listener), `stop_check` runs `sluice.sh stop-check` (SIGTERM by pid,
    exit status 0, a log of this run free of sanitizer reports and error lines).

    As a context manager: started on entry (and, with ADMIN and wait_snapshot, until /backends
    shows the monitor's first snapshot), stop-checked on exit, also when the body failed (then
    both problems are reported). ENV: variables the daemon gets in its environment."""

    def __init__(self, directory, name, text, port=None, admin=None, env=None,
                 wait_snapshot=False):
        os.makedirs(directory, exist_ok=True)
        self.name, self.port, self.admin, self.env = name, port, admin, env
        self.wait_snapshot = wait_snapshot
        self.config = os.path.join(directory, f"{name}.toml")
        self.pidfile = os.path.join(directory, f"{name}.pid")
        self.log = os.path.join(directory, f"{name}.log")
        self.pid = None
        self.offset = 0
        with open(self.config, "w") as f:
            f.write(text)

    def start(self):
        p = fixture("start", self.config, self.pidfile, self.log, port=self.port, env=self.env)
        true(p.returncode == 0, f"sluice.sh start {self.name}: {(p.stdout + p.stderr).strip()[-2000:]}")
        with open(self.pidfile) as f:
            self.pid = int(f.read().strip())
        with open(self.pidfile + ".log-offset") as f:
            self.offset = int(f.read().strip())

    def wait_first_snapshot(self, timeout=10):
        """Until /backends shows the monitor's first snapshot (every backend probed once)."""
        true(wait_until(lambda: self.backends()["topology_version"] >= 1, timeout),
             f"{self.name}: the monitor published a first snapshot within {timeout} s")

    def alive(self):
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def exit_status(self):
        """The status the fixture's wrapper recorded when the daemon ended, or None."""
        try:
            with open(self.pidfile + ".status") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def log_text(self):
        """This run's part of the log."""
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            return f.read().decode("utf-8", "replace")

    def stop_check(self):
        """sluice.sh stop-check: (ok, output)."""
        p = fixture("stop-check", self.pidfile, self.log)
        return p.returncode == 0, (p.stdout + p.stderr).strip()

    def check_log(self):
        """sluice.sh check-log on this run's part of the log (for a daemon that ended itself)."""
        p = fixture("check-log", self.log, str(self.offset))
        true(p.returncode == 0, f"{self.name}: {(p.stdout + p.stderr).strip()[-2000:]}")

    def backends(self):
        """GET /backends (the parsed JSON); needs ADMIN."""
        return fetch_backends(self.admin)

    def entries(self):
        """/backends entries by backend name."""
        return by_name(self.backends())

    def __enter__(self):
        self.start()
        if self.wait_snapshot:
            try:
                self.wait_first_snapshot()
            except BaseException as e:
                self.__exit__(type(e), e, None)
                raise
        return self

    def __exit__(self, exc_type, exc, tb):
        ok, out = self.stop_check()
        if exc is not None:
            if not ok:
                raise AssertionError(f"{exc}; and stop-check of {self.name} failed: "
                                     f"{out[-1500:]}") from exc
            return False
        true(ok, f"stop-check of {self.name}: {out[-2000:]}")
        return False


def relay(directory, *args):
    """tests/fixtures/relay.sh (beside SLUICE_FIXTURE) with ARGS, its files in DIRECTORY: start
    NAME LISTEN_PORT TARGET_PORT [DELAY_MS] [MODE] / set NAME KEY=VALUE... / stop NAME. Fails
    with its output if it fails; returns its stdout (start: the port)."""
    script = os.path.join(os.path.dirname(env_str("SLUICE_FIXTURE")), "relay.sh")
    p = subprocess.run(["bash", script, *args], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, SLUICE_RELAY_DIR=directory))
    true(p.returncode == 0, f"relay.sh {' '.join(args)}: {(p.stdout + p.stderr).strip()[-1500:]}")
    return p.stdout.strip()
