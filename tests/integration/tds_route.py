#!/usr/bin/python3
"""tds_route (issue #11): a SQL Server backend that answers Sluice's login with a routing
ENVCHANGE (MS-TDS 2.2.7.9 type 20: an availability group listener's read-only routing, Azure
SQL's gateway under the Redirect policy). Sluice follows it itself, as a client would, at
most 4 redirections, and never lets a client see the routing token. The backends are the
project's TDS test servers (tests/fixtures/tds_server.py), which route as SQL Server does
when their control file says `route_to` / `route_readonly_to` (or with --route-to).

Ports: TDS_ROUTE_PORT (default SLUICE_PORT + 780) + 0 primary, + 1 gateway1 (Sluice's
"secondary1": it routes every login to node1), + 2 secondary2, + 3 node1 (the secondary
gateway1 routes to), + 4 loop (routes every login back to the primary), + 5 gateway-flag
(started with --route-to node1; only for the direct checks), + 6 Sluice's TDS listener, + 7
its MySQL listener, + 8 its admin.

 1. The test server routes as real clients expect: pymssql (FreeTDS) and pytds straight to
    a routing server land on node1; a raw login sees the routing ENVCHANGE (the detector's
    positive control) and, staying, is told to leave (error 50000).
 2. Through Sluice, pymssql and pytds reads that go to secondary1 run on node1 (@@SERVERNAME
    from the server), never on gateway1; writes on the primary. The client side never holds
    a routing ENVCHANGE: a raw TDS login through Sluice parses the whole login reply, and
    tshark (an independent dissector) sees ENVCHANGE 20 from gateway1 and none from Sluice.
    gateway1 logged routed logins and no client that stayed.
 3. Routing switched off and on while running (control file): new connections reach
    gateway1 itself while off, node1 again when on.
 4. The monitor follows the routing too: secondary1's lag is node1's (node1 60 s behind
    takes secondary1 out of reads; gateway1's own reported lag does not); the primary is
    still the configured one, no failover, no backend marked down.
 5. A routing loop (the primary routes read-intent logins to `loop`, which routes back;
    both secondaries out of reads, so a read-intent login falls to the primary with its
    flag): a read-intent client (raw TDS, and pyodbc with ApplicationIntent=ReadOnly) gets a
    TDS error naming the redirections at once, after one attempt that followed exactly 4 of
    them (3 routed logins at the primary, 2 at `loop`), not after waiting out the failover
    hold; Sluice stays up; a session opened before and a new one keep working; the monitor
    moved no role; once the routing is off, read-intent logins work again.

The monitor (FreeTDS, no read intent) is routed by gateway1 like any client; it is never
routed by the primary's read-only routing, as with SQL Server.
"""

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itlib  # noqa: E402
import tdslib  # noqa: E402
from tdslib import q  # noqa: E402
from itlib import Checks, Daemon, eq, true, wait_until  # noqa: E402

import pymssql  # noqa: E402
import pytds  # noqa: E402

BASE = int(os.environ.get("TDS_ROUTE_PORT", itlib.env_int("SLUICE_PORT") + 780))
PRIMARY, GATEWAY1, SECONDARY2, NODE1, LOOP, GATEWAY_FLAG = range(BASE, BASE + 6)
TDS_PORT, MYSQL_PORT, ADMIN_PORT = BASE + 6, BASE + 7, BASE + 8
LAG_MS = 100
DIR = tempfile.mkdtemp(prefix="sluice-tds-route-")
HOST = "127.0.0.1"

# Session pooling: each client session logs in to its backends anew, so each follows the
# routing as it is at that moment (transaction pooling would hand out connections routed
# earlier). failover_hold_ms and the client handshake timeout keep their defaults (30 s,
# 10 s): a routing loop must not be waited out as a failover.
CONFIG = tdslib.tds_config(BASE, TDS_PORT, MYSQL_PORT, ADMIN_PORT, itlib.topology_backends_toml(),
                           "[routing]\nmax_lag_ms = 5000\n[pool]\nmode = \"session\"\n")

servers = tdslib.TdsServers(DIR, LAG_MS)
daemon = None


# --- a raw TDS client: what a client receives, byte for byte -----------------------------------
TDS74 = 0x74000004
READ_ONLY_INTENT = 0x20  # LOGIN7 TypeFlags fReadOnlyIntent (MS-TDS 2.2.6.4)


def ucs2(s):
    return s.encode("utf-16-le")


class RawTds:
    """PRELOGIN (no encryption), LOGIN7 (TDS 7.4), SQLBatch; replies kept as bytes."""

    def __init__(self, port, timeout=20):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)

    def close(self):
        self.sock.close()

    def send(self, ptype, payload):
        self.sock.sendall(struct.pack(">BBHHBB", ptype, 1, len(payload) + 8, 0, 1, 0) + payload)

    def _exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            out += chunk
        return out

    def read(self):
        """One whole message: its packets' payloads joined."""
        payload = b""
        while True:
            head = self._exact(8)
            payload += self._exact(struct.unpack(">H", head[2:4])[0] - 8)
            if head[1] & 1:
                return payload

    def login(self, user="app", password="app", database="sluice", type_flags=0):
        """PRELOGIN then LOGIN7; returns the parsed login reply (see parse_tokens)."""
        opts = [(0, bytes([16, 0, 0, 0, 0, 0])), (1, b"\x02")]  # VERSION, ENCRYPT_NOT_SUP
        head_len = 5 * len(opts) + 1
        head, body = b"", b""
        for token, data in opts:
            head += struct.pack(">BHH", token, head_len + len(body), len(data))
            body += data
        self.send(18, head + b"\xff" + body)
        self.read()
        pw = bytes((((b << 4) & 0xF0) | (b >> 4)) ^ 0xA5 for b in ucs2(password))
        fields = [ucs2("route-test"), ucs2(user), pw, ucs2("tds_route raw"), ucs2(HOST), b"",
                  ucs2("raw"), b"", ucs2(database)]
        fixed = 94
        table, data = b"", b""
        for f in fields:
            table += struct.pack("<HH", fixed + len(data), len(f) // 2)
            data += f
        table += b"\x00" * 6  # ClientID
        for _ in range(3):  # SSPI, AtchDBFile, ChangePassword: empty
            table += struct.pack("<HH", fixed + len(data), 0)
        table += struct.pack("<I", 0)  # cbSSPILong
        # OptionFlags1 0xE0 (fUseDB, fDatabase fatal, fSetLang), OptionFlags2 0x03 (fLanguage
        # fatal, fODBC), as FreeTDS sends them.
        top = struct.pack("<IIIIIBBBBiI", TDS74, 4096, 0x07000000, os.getpid(), 0, 0xE0, 0x03,
                          type_flags, 0, 0, 0x409)
        record = top + table
        eq(len(record) + 4, fixed, "the raw LOGIN7's fixed part")
        self.send(16, struct.pack("<I", fixed + len(data)) + record + data)
        return parse_tokens(self.read())

    def batch(self, sql):
        headers = struct.pack("<IIHQI", 22, 18, 2, 0, 1)  # ALL_HEADERS: transaction descriptor
        self.send(1, headers + ucs2(sql))
        return self.read()


def parse_tokens(p):
    """The tokens of a login reply: ENVCHANGE types, routing targets, errors, LOGINACK."""
    out = {"env": [], "routes": [], "errors": [], "loginack": False}
    i = 0
    while i < len(p):
        t = p[i]
        i += 1
        if t in (0xFD, 0xFE, 0xFF):  # DONE, DONEPROC, DONEINPROC (TDS 7.2+)
            i += 12
            continue
        if t == 0xAE:  # FEATUREEXTACK: (FeatureId, DWORD length, data)... 0xFF
            while p[i] != 0xFF:
                i += 5 + struct.unpack("<I", p[i + 1:i + 5])[0]
            i += 1
            continue
        if t not in (0xE3, 0xAA, 0xAB, 0xAD):
            raise AssertionError(f"unexpected token {t:#x} at {i - 1} in a login reply: {p.hex()}")
        n = struct.unpack("<H", p[i:i + 2])[0]
        body = p[i + 2:i + 2 + n]
        true(len(body) == n, f"token {t:#x} at {i - 1} is cut short")
        i += 2 + n
        if t == 0xE3:
            out["env"].append(body[0])
            if body[0] == 20:  # RoutingDataValueLength, Protocol, port, US_VARCHAR server
                port = struct.unpack("<H", body[4:6])[0]
                chars = struct.unpack("<H", body[6:8])[0]
                out["routes"].append((body[3], port, body[8:8 + 2 * chars].decode("utf-16-le")))
        elif t == 0xAA:
            number = struct.unpack("<i", body[0:4])[0]
            chars = struct.unpack("<H", body[6:8])[0]
            out["errors"].append((number, body[8:8 + 2 * chars].decode("utf-16-le")))
        elif t == 0xAD:
            out["loginack"] = True
    return out


# --- helpers ----------------------------------------------------------------------------------
def ms(port=TDS_PORT, **kw):
    return pymssql.connect(server=HOST, port=port, user="app", password="app", database="sluice",
                           autocommit=True, login_timeout=10, timeout=30, **kw)


def tds(port=TDS_PORT, **kw):
    return pytds.connect(server=HOST, port=port, user="app", password="app", database="sluice",
                         autocommit=True, login_timeout=10, **kw)


def server_of(conn, sql="SELECT @@SERVERNAME"):
    return q(conn, sql)[0][-1]


def reads(n=8, connect=ms):
    """Where N new sessions' first read ran."""
    seen = []
    for _ in range(n):
        c = connect()
        seen.append(server_of(c))
        c.close()
    return set(seen)


def err_text(name):
    with open(os.path.join(DIR, name + ".err"), errors="replace") as f:
        return f.read()


def count(name, pattern):
    return len(re.findall(pattern, err_text(name)))


def start_flag_server():
    """gateway-flag: routing from the command line (--route-to), not the control file."""
    name = "gateway-flag"
    d = os.path.join(DIR, name)
    os.makedirs(d, exist_ok=True)
    err = open(os.path.join(DIR, name + ".err"), "ab")
    p = subprocess.Popen(["/usr/bin/python3", tdslib.SERVER, "--port", str(GATEWAY_FLAG),
                          "--name", name, "--role", "secondary", "--log",
                          os.path.join(DIR, "ag.log"), "--dir", d, "--user", "app:app",
                          "--route-to", f"{HOST}:{NODE1}"], stdout=err, stderr=err)
    servers.procs[name] = p  # stopped (and its stderr checked) with the others
    true(wait_until(lambda: tdslib.port_open(GATEWAY_FLAG), 10), f"{name} listens")


def write_control(name, **values):
    """The control file before the server starts (TdsServers.control needs it to exist)."""
    import json
    with open(os.path.join(DIR, name + ".json"), "w") as f:
        json.dump(values, f)


class Capture:
    """tcpdump on lo for PORTS, read back with tshark."""

    def __init__(self, ports):
        self.ports, self.file = ports, os.path.join(DIR, "route.pcap")
        self.log = open(os.path.join(DIR, "tcpdump.err"), "w+b")
        filt = " or ".join(f"tcp port {p}" for p in ports)
        self.proc = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-s", "0", "-w", self.file,
                                      filt], stdout=subprocess.DEVNULL, stderr=self.log)

        def listening():
            self.log.seek(0)
            return b"listening on" in self.log.read() or self.proc.poll() is not None
        true(wait_until(listening, 10, 0.05) and self.proc.poll() is None,
             f"tcpdump runs: {self.text()}")

    def text(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace").strip()

    def stop(self):
        if self.proc.poll() is None:
            time.sleep(1.0)  # the last segments reach the file
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(10)

    def envchange_types(self):
        """{server port: set of ENVCHANGE types in frames it sent}."""
        cmd = ["tshark", "-n", "-r", self.file]
        for p in self.ports:
            cmd += ["-d", f"tcp.port=={p},tds"]
        cmd += ["-Y", "tds.envchange.type", "-T", "fields", "-e", "tcp.srcport", "-e",
                "tds.envchange.type", "-E", "aggregator=,"]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        eq(r.returncode, 0, f"tshark: {r.stderr.decode()[-500:]}")
        out = {}
        for line in r.stdout.decode().splitlines():
            port, types = line.split("\t")
            out.setdefault(int(port), set()).update(int(x) for x in types.split(",") if x)
        return out


# --- checks -----------------------------------------------------------------------------------
def check_direct():
    for name, connect in (("pymssql", ms), ("pytds", tds)):
        c = connect(GATEWAY_FLAG)
        eq(server_of(c), "node1", f"{name} straight to a --route-to server follows the routing")
        c.close()
    before = count("gateway1", "stayed after routing")
    raw = RawTds(GATEWAY1)
    reply = raw.login()
    true(reply["loginack"] and not reply["errors"], f"a routed login succeeds: {reply}")
    eq(reply["routes"], [(0, NODE1, HOST)], "the routing ENVCHANGE: TCP, node1's port and host")
    true(reply["env"].index(20) == len(reply["env"]) - 1, f"routing is the last ENVCHANGE: {reply}")
    # A client that stays is told to leave.
    answer = parse_tokens(raw.batch("SELECT @@SERVERNAME"))
    eq([e[0] for e in answer["errors"]], [50000], "a request after routing is refused")
    raw.close()
    true(wait_until(lambda: count("gateway1", "stayed after routing") == before + 1, 5),
         "gateway1 logged the client that stayed")


def check_through_sluice():
    gw_routed = count("gateway1", r"routed login of 'app'")
    stayed = count("gateway1", "stayed after routing")
    cap = Capture([TDS_PORT, GATEWAY1])
    try:
        for name, connect in (("pymssql", ms), ("pytds", tds)):
            seen = set()
            for _ in range(12):
                seen |= reads(1, connect)
                if "node1" in seen and "secondary2" in seen:
                    break
            true(seen <= {"node1", "secondary2"}, f"{name}: reads ran on node1 and secondary2 "
                 f"only (never gateway1 or the primary): {seen}")
            eq("node1" in seen, True, f"{name}: secondary1's reads ran on node1")
        c = ms()
        eq(q(c, "INSERT INTO items (name) VALUES ('routed'); SELECT @@SERVERNAME")[0][0],
           "primary", "a write ran on the primary")
        c.close()
        t = tds()
        cur = t.cursor()
        cur.execute("SELECT @@SERVERNAME WHERE 1 = %s", (1,))
        where = cur.fetchall()[0][0]
        # Right after the write, read-your-writes may keep it on the primary.
        true(where in ("node1", "secondary2", "primary"), f"a pytds parameterised read: {where}")
        t.close()
        # The raw client's view: the whole login reply, parsed.
        for flags in (0, READ_ONLY_INTENT):
            raw = RawTds(TDS_PORT)
            reply = raw.login(type_flags=flags)
            true(reply["loginack"] and not reply["errors"], f"a raw login through Sluice: {reply}")
            true(20 not in reply["env"] and 21 not in reply["env"] and not reply["routes"],
                 f"no routing ENVCHANGE reaches the client (flags {flags:#x}): {reply['env']}")
            answer = raw.batch("SELECT @@SERVERNAME")
            true(any(ucs2(n) in answer for n in ("node1", "secondary2", "primary")),
                 f"the raw session runs a query: {answer!r}")
            true(ucs2("gateway1") not in answer, "never on gateway1")
            raw.close()
    finally:
        cap.stop()
    types = cap.envchange_types()
    true(20 in types.get(GATEWAY1, set()), f"tshark: gateway1 sent ENVCHANGE 20 to Sluice: {types}")
    sluice_types = types.get(TDS_PORT, set())
    true(sluice_types and not sluice_types & {20, 21},
         f"tshark: Sluice's answers carry ENVCHANGEs, none of type 20/21: {sluice_types}")
    true(count("gateway1", r"routed login of 'app'") > gw_routed,
         "gateway1 routed Sluice's logins (its log)")
    eq(count("gateway1", "stayed after routing"), stayed,
       "no connection of Sluice's stayed on gateway1 after routing")
    eq(count("node1", "routed login"), 0, "node1 itself routes nothing")


def check_switch():
    servers.control("gateway1", route_to=None)
    time.sleep(0.2)
    seen = set()
    for _ in range(12):
        seen |= reads(1)
        if "gateway1" in seen:
            break
    true("gateway1" in seen and "node1" not in seen,
         f"routing off: new connections to secondary1 reach gateway1 itself: {seen}")
    servers.control("gateway1", route_to=f"{HOST}:{NODE1}")
    time.sleep(0.2)
    seen = set()
    for _ in range(12):
        seen |= reads(1)
        if "node1" in seen:
            break
    true("node1" in seen and "gateway1" not in seen, f"routing on again: node1: {seen}")


def check_monitor():
    servers.control("node1", secondary_lag_seconds=60)
    time.sleep(0.6)
    eq(reads(8), {"secondary2"}, "node1 60 s behind: secondary1 gets no reads (the monitor "
       "reads node1 through the routing)")
    servers.control("node1", secondary_lag_seconds=None)
    servers.control("gateway1", secondary_lag_seconds=60)
    time.sleep(0.6)
    seen = set()
    for _ in range(12):
        seen |= reads(1)
        if "node1" in seen:
            break
    true("node1" in seen, f"gateway1's own reported lag does not matter: {seen}")
    servers.control("gateway1", secondary_lag_seconds=None)
    log = daemon.log_text()
    true("tds monitor: the primary is primary" in log, "the monitor found the configured primary")
    for bad in ("primary is now", "is down after", "no SQL Server backend takes writes"):
        true(bad not in log, f"no '{bad}' in Sluice's log")


def check_loop():
    before = daemon.log_text().count("more than 4 routing redirections")
    # Both secondaries out of reads: a read-intent login falls to the primary, with the flag.
    servers.control("node1", secondary_lag_seconds=60)
    servers.control("secondary2", secondary_lag_seconds=60)
    time.sleep(0.6)
    eq(reads(3), {"primary"}, "both secondaries are out of reads")
    kept = ms()
    eq(server_of(kept), "primary", "a session opened before the loop")
    servers.control("loop", route_to=f"{HOST}:{PRIMARY}")
    servers.control("primary", route_readonly_to=f"{HOST}:{LOOP}")
    time.sleep(0.2)
    p0, l0 = count("primary", "routed login"), count("loop", "routed login")
    raw = RawTds(TDS_PORT, timeout=30)
    t0 = time.monotonic()
    reply = raw.login(type_flags=READ_ONLY_INTENT)
    waited = time.monotonic() - t0
    raw.close()
    true(not reply["loginack"] and reply["errors"], f"the looping login fails: {reply}")
    number, text = reply["errors"][0]
    true("routing redirections" in text and "primary" in text,
         f"a clear TDS error (error {number}): {text}")
    true(waited < 5, f"the error came at once, not after a failover hold ({waited:.1f} s)")

    def hops():
        return count("primary", "routed login") - p0, count("loop", "routed login") - l0

    # The servers log a routed login just after sending it: the last line may trail a little.
    wait_until(lambda: hops() == (3, 2), 2)
    p1, l1 = hops()
    eq((p1, l1), (3, 2), "routed logins at the primary and at loop: one attempt, which "
       "followed 4 redirections (primary, loop, primary, loop, primary) and stopped")
    # A real client with ApplicationIntent=ReadOnly (FreeTDS ODBC sets fReadOnlyIntent).
    import pyodbc
    try:
        pyodbc.connect("DRIVER=/usr/lib/x86_64-linux-gnu/odbc/libtdsodbc.so;SERVER=127.0.0.1;"
                       f"PORT={TDS_PORT};UID=app;PWD=app;DATABASE=sluice;TDS_Version=7.4;"
                       "ApplicationIntent=ReadOnly", autocommit=True, timeout=30)
        raise AssertionError("a read-intent pyodbc login succeeded through the loop")
    except pyodbc.Error as e:
        true("routing redirections" in str(e), f"pyodbc gets the error: {e}")
    true(daemon.alive(), "Sluice is still running")
    true(daemon.log_text().count("more than 4 routing redirections") > before,
         "Sluice's log names the loop")
    eq(q(kept, "INSERT INTO items (name) VALUES ('during-loop'); SELECT @@SERVERNAME")[0][0],
       "primary", "the session opened before still writes on the primary")
    kept.close()
    c = ms()
    eq(server_of(c), "primary", "a new session (no read intent) works meanwhile")
    c.close()
    servers.control("primary", route_readonly_to=None)
    servers.control("node1", secondary_lag_seconds=None)
    servers.control("secondary2", secondary_lag_seconds=None)
    time.sleep(0.6)
    raw = RawTds(TDS_PORT)
    reply = raw.login(type_flags=READ_ONLY_INTENT)
    true(reply["loginack"] and not reply["errors"], f"routing off: read intent logs in: {reply}")
    answer = raw.batch("SELECT @@SERVERNAME")
    true(ucs2("node1") in answer or ucs2("secondary2") in answer,
         f"and reads on a secondary: {answer!r}")
    raw.close()
    log = daemon.log_text()
    for bad in ("primary is now", "is down after"):
        true(bad not in log, f"the loop moved no role: no '{bad}' in Sluice's log")


def main():
    global daemon
    checks = Checks()
    problems = []
    try:
        write_control("gateway1", route_to=f"{HOST}:{NODE1}")
        for name, port, role in (("primary", PRIMARY, "primary"),
                                 ("gateway1", GATEWAY1, "secondary"),
                                 ("secondary2", SECONDARY2, "secondary"),
                                 ("node1", NODE1, "secondary"), ("loop", LOOP, "secondary")):
            servers.start(name, port, role)
        start_flag_server()
        p = pymssql.connect(server=HOST, port=PRIMARY, user="app", password="app",
                            database="sluice", autocommit=True, login_timeout=10)
        q(p, "CREATE TABLE items (id INT IDENTITY(1,1) PRIMARY KEY, name NVARCHAR(100))")
        p.close()
        daemon = Daemon(DIR, "route", CONFIG, port=MYSQL_PORT, admin=ADMIN_PORT)
        with daemon:
            time.sleep(1.0)
            checks.run("1 the test server routes as clients expect", check_direct)
            checks.run("2 through Sluice: queries on the routed-to server, no routing token "
                       "for the client", check_through_sluice)
            checks.run("3 routing switched off and on while running", check_switch)
            checks.run("4 the monitor sees the routed-to server's role and lag", check_monitor)
            checks.run("5 a routing loop: a clear error after 4 redirections, Sluice stays up",
                       check_loop)
    finally:
        problems = servers.stop_all()
    if problems:
        checks.failures.append("test servers")
        print("FAIL - test servers: " + "; ".join(problems), file=sys.stderr)
    checks.finish()


if __name__ == "__main__":
    main()
