#!/usr/bin/python3
"""Sluice TDS benchmark (issue #11): point selects from a TDS load client directly to a TDS
test server, through HAProxy (mode tcp, the layer-4 baseline) and through Sluice's TDS
listener, one run on one machine.

What runs: three TDS test servers (tests/fixtures/tds_server.py; SQL Server cannot run
here): a primary and two secondaries replaying one log of commits (lag 0); three Sluice
daemons (workers = 1, a TDS listener, a [tds_monitor]): `sluice` with the primary and both
secondaries as [[tds_backends]], `sluice-one` with the primary and secondary1 only (the
same server as direct and HAProxy: the like-for-like comparison), `sluice-one-session`
the same with [pool] mode = "session" (no per-statement borrowing, so no reset of a
connection another session used); one HAProxy (mode tcp, nbthread 1) in front of
secondary1. A table of --rows rows is created directly
on the primary and read back from both secondaries before any load starts.

The load client is this script: an asyncio client speaking raw TDS 7.4 (PRELOGIN without
encryption, LOGIN7, then SQLBatch messages with ALL_HEADERS), --connections connections,
each sending `SELECT v FROM t WHERE id = <k>` (k uniform over the rows) back to back and
reading each response to its final DONE; every answer is checked (the row's value is in
it, the final DONE carries no error). Each target gets --seconds of load, in --rounds
windows (targets in order, then in reverse order: ABBA), each after a --warmup that is not
counted:

  direct       every connection to secondary1
  haproxy      every connection to HAProxy -> secondary1
  sluice-one-session, sluice-one
               every connection to that Sluice, whose reads all go to secondary1
  sluice       every connection to Sluice, which spreads the reads over both secondaries
  direct-both  half the connections to secondary1, half to secondary2 (the same servers
               Sluice uses, without Sluice)

For each: QPS, latency p50/p99 as the client saw it, the CPU time (utime + stime from
/proc/PID/stat) of the proxy process over the measured window / queries, and of each test
server (where the work ran, measured at the servers). After each Sluice's last window the
same connections send --tag-seconds of `SELECT v, @@SERVERNAME FROM t WHERE id = <k>`: the
servers name themselves in each answer, which tallies where Sluice sent the reads.

The test servers are Python (one GIL each): they, not the proxies, limit the QPS, so the
ratios measure what a proxy adds in front of a slow server, not a proxy's ceiling; the
CPU per query is the figure that tells a proxy's cost.

Usage: bench/tds_bench.py [--seconds 20] [--connections 8] [--rows 10000] [--out FILE]
Needs: build/src/sluice (ninja -C build sluice), haproxy.
Ports: --port (default 24430) + 0..2 the test servers, + 3 HAProxy, + 4 and + 5 sluice's
TDS listener and admin, + 6 and + 7 sluice-one's, + 10 and + 11 sluice-one-session's, + 9
the MySQL backend Sluice's configuration requires (nothing listens there). The whole run
takes about 2.5 minutes.
"""
import argparse
import asyncio
import datetime
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, TICKS, cpu_seconds, wait_port  # noqa: E402

SERVER = os.path.join(ROOT, "tests/fixtures/tds_server.py")
NAMES = ("primary", "secondary1", "secondary2")
USER, PASSWORD = "app", "app"

# --- a minimal TDS 7.4 client (MS-TDS 2.2) ----------------------------------------------
PT_BATCH, PT_REPLY, PT_LOGIN7, PT_PRELOGIN = 1, 4, 16, 18
PACKET = 4096
TDS74 = 0x74000004
TOK_ERROR, TOK_INFO, TOK_LOGINACK, TOK_ENVCHANGE, TOK_DONE = 0xAA, 0xAB, 0xAD, 0xE3, 0xFD
DONE_MORE, DONE_ERROR = 0x01, 0x02
# ALL_HEADERS with one transaction descriptor header (autocommit: descriptor 0, one
# outstanding request), required in SQLBatch from TDS 7.2 on.
ALL_HEADERS = struct.pack("<IIHQI", 22, 18, 2, 0, 1)


class TdsError(Exception):
    pass


def packets(ptype, payload):
    """One message as TDS packets of at most PACKET bytes (EOM on the last)."""
    out, step = bytearray(), PACKET - 8
    chunks = [payload[i:i + step] for i in range(0, len(payload), step)] or [b""]
    for n, chunk in enumerate(chunks):
        status = 0x01 if n == len(chunks) - 1 else 0x00
        out += struct.pack(">BBHHBB", ptype, status, 8 + len(chunk), 0, (n + 1) % 256, 0)
        out += chunk
    return bytes(out)


def prelogin():
    # VERSION, ENCRYPTION = ENCRYPT_NOT_SUP (no TLS at all), INSTOPT, THREADID, MARS off.
    opts = [(0, bytes([1, 0, 0, 0, 0, 0])), (1, b"\x02"), (2, b"\x00"),
            (3, struct.pack(">I", os.getpid())), (4, b"\x00")]
    head, body = bytearray(), bytearray()
    start = 5 * len(opts) + 1
    for token, data in opts:
        head += struct.pack(">BHH", token, start + len(body), len(data))
        body += data
    return bytes(head) + b"\xff" + bytes(body)


def login7(user, password):
    def obfuscate(s):
        return bytes(((b << 4) & 0xF0 | b >> 4) ^ 0xA5 for b in s.encode("utf-16-le"))

    # HostName, UserName, Password, AppName, ServerName, Extension, CltIntName, Language,
    # Database: (offset, length in characters) pairs after the 94-byte fixed part.
    fields = ["tds-bench", user, password, "tds_bench", "127.0.0.1", "", "tds_bench", "", ""]
    fixed = 94
    offsets, data = bytearray(), bytearray()
    for i, value in enumerate(fields):
        raw = obfuscate(value) if i == 2 else value.encode("utf-16-le")
        offsets += struct.pack("<HH", fixed + len(data), len(value))
        data += raw
    tail = (b"\x00" * 6 + struct.pack("<HH", fixed + len(data), 0)  # ClientID, SSPI
            + struct.pack("<HH", fixed + len(data), 0)  # AtchDBFile
            + struct.pack("<HH", fixed + len(data), 0)  # ChangePassword
            + struct.pack("<I", 0))  # cbSSPILong
    # OptionFlags1 0xE0 (USE_DB, INIT_DB_FATAL, SET_LANG), OptionFlags2 0x03 (INIT_LANG_FATAL,
    # ODBC), TypeFlags 0, OptionFlags3 0; time zone 0, LCID 0x0409.
    head = struct.pack("<IIIIIIBBBBiI", 0, TDS74, PACKET, 7, os.getpid(), 0, 0xE0, 0x03, 0, 0,
                       0, 0x0409)
    body = head + offsets + tail
    assert len(body) == fixed, len(body)
    body += data
    return struct.pack("<I", len(body)) + body[4:]


def batch(sql):
    return ALL_HEADERS + sql.encode("utf-16-le")


async def read_message(reader):
    parts = []
    while True:
        head = await reader.readexactly(8)
        ptype, status, length = struct.unpack(">BBH", head[:4])
        if length < 8:
            raise TdsError(f"packet length {length}")
        parts.append(await reader.readexactly(length - 8))
        if status & 0x01:
            return ptype, b"".join(parts)


def scan_login_reply(p):
    """The login reply's tokens: True on LOGINACK, TdsError with the server's error text."""
    i, acked, error = 0, False, None
    while i < len(p):
        tok = p[i]
        if tok in (TOK_ERROR, TOK_INFO, TOK_LOGINACK, TOK_ENVCHANGE):
            (n,) = struct.unpack_from("<H", p, i + 1)
            if tok == TOK_LOGINACK:
                acked = True
            elif tok == TOK_ERROR:
                (chars,) = struct.unpack_from("<H", p, i + 9)
                error = p[i + 11:i + 11 + 2 * chars].decode("utf-16-le", "replace")
            i += 3 + n
        elif tok == TOK_DONE:
            i += 13
        else:
            raise TdsError(f"unexpected token 0x{tok:02x} in the login reply")
    if error or not acked:
        raise TdsError(error or "no LOGINACK")


class Conn:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(packets(PT_PRELOGIN, prelogin()))
        ptype, _ = await read_message(reader)
        if ptype != PT_REPLY:
            raise TdsError(f"PRELOGIN answered with packet type {ptype}")
        writer.write(packets(PT_LOGIN7, login7(USER, PASSWORD)))
        _, reply = await read_message(reader)
        scan_login_reply(reply)
        return cls(reader, writer)

    async def query(self, sql):
        """The whole response; TdsError unless it ends with a final DONE without error."""
        self.writer.write(packets(PT_BATCH, batch(sql)))
        _, p = await read_message(self.reader)
        if len(p) < 13 or p[-13] != TOK_DONE:
            raise TdsError(f"response to {sql!r} does not end with DONE")
        (status,) = struct.unpack_from("<H", p, len(p) - 12)
        if status & (DONE_MORE | DONE_ERROR):
            raise TdsError(f"response to {sql!r}: DONE status 0x{status:x}")
        return p

    def close(self):
        self.writer.close()


def value(k):
    return f"row-{k:08d}"  # fixed width: one row's value is never part of another's


# --- processes -------------------------------------------------------------------------------
class Procs:
    """Everything this benchmark starts, stopped by pid at the end."""

    def __init__(self):
        self.procs = {}

    def start(self, name, argv, port, log):
        p = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.procs[name] = p
        wait_port(port, p, name)
        return p

    def stop_all(self):
        status = {}
        for name, p in reversed(list(self.procs.items())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            status[name] = p.returncode
        return status


def start_servers(procs, d, base):
    log = os.path.join(d, "ag.log")
    for i, name in enumerate(NAMES):
        out = open(os.path.join(d, name + ".err"), "ab")
        procs.start(name, ["/usr/bin/python3", SERVER, "--port", str(base + i), "--name", name,
                           "--role", "primary" if i == 0 else "secondary", "--log", log,
                           "--dir", os.path.join(d, name), "--user", f"{USER}:{PASSWORD}",
                           "--user", "monitor:monitor", "--lag-ms", "0"], base + i, out)


def start_haproxy(procs, d, port, server_port):
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(f"""global
    maxconn 4096
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen tds
    bind 127.0.0.1:{port}
    server secondary1 127.0.0.1:{server_port}
""")
    return procs.start("haproxy", ["haproxy", "-f", cfg, "-db"], port,
                       open(os.path.join(d, "haproxy.log"), "ab"))


# The Sluice daemons: name, the secondaries it has (indexes into NAMES), [pool] mode (None:
# the default, transaction), the offset of its TDS port from --port (its admin: the next).
SLUICES = (("sluice", (1, 2), None, 4), ("sluice-one", (1,), None, 6),
           ("sluice-one-session", (1,), "session", 10))
DEAD = 9  # the offset of the MySQL backend's port: nothing listens there


def sluice_config(base, tds_port, secondaries, pool_mode):
    """workers = 1, a TDS listener on tds_port (admin on the next port), the primary and the
    secondaries (indexes into NAMES)."""
    seconds = "".join(f"""
[[tds_backends]]
name = "{NAMES[i]}"
host = "127.0.0.1"
port = {base + i}
""" for i in secondaries)
    return f"""workers = 1

[[listeners]]
name = "tds"
protocol = "tds"
address = "127.0.0.1"
port = {tds_port}

# Required by the configuration; no MySQL client connects in this benchmark, and nothing
# listens on this port.
[[backends]]
name = "unused"
host = "127.0.0.1"
port = {base + DEAD}
role = "primary"

[[tds_backends]]
name = "primary"
host = "127.0.0.1"
port = {base}
role = "primary"
{seconds}
[tds_monitor]
user = "monitor"
password = "monitor"
interval_ms = 500

[[users]]
name = "{USER}"
password = "{PASSWORD}"

{f'[pool]{chr(10)}mode = "{pool_mode}"{chr(10)}' if pool_mode else ""}
[admin]
address = "127.0.0.1"
port = {tds_port + 1}

[logging]
level = "warn"
"""


def start_sluice(procs, d, name, binary, base, tds_port, secondaries, pool_mode):
    cfg = os.path.join(d, name + ".toml")
    with open(cfg, "w") as f:
        f.write(sluice_config(base, tds_port, secondaries, pool_mode))
    return procs.start(name, [binary, "--config", cfg], tds_port,
                       open(os.path.join(d, name + ".log"), "ab"))


# --- the load ----------------------------------------------------------------------------------
async def create_table(port, rows):
    c = await Conn.open(port)
    await c.query("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(32))")
    step = 500
    for lo in range(1, rows + 1, step):
        vals = ", ".join(f"({k}, '{value(k)}')" for k in range(lo, min(lo + step, rows + 1)))
        await c.query(f"INSERT INTO t (id, v) VALUES {vals}")
    c.close()


async def wait_replicated(ports, rows, timeout=30):
    """Every secondary has the last row (the log is applied in order)."""
    want = value(rows).encode("utf-16-le")
    deadline = time.monotonic() + timeout
    for port in ports:
        c = await Conn.open(port)
        while True:
            p = await c.query(f"SELECT v FROM t WHERE id = {rows}")
            if want in p:
                break
            if time.monotonic() > deadline:
                sys.exit(f"the secondary on {port} did not replicate {rows} rows")
            await asyncio.sleep(0.1)
        c.close()


async def drive(conns, rows, until, lat, tag=None):
    """Each connection sends point selects back to back until `until`; returns errors."""
    errors = []

    async def one(c, rnd):
        while time.perf_counter() < until:
            k = rnd.randint(1, rows)
            t0 = time.perf_counter()
            try:
                if tag is None:
                    p = await c.query(f"SELECT v FROM t WHERE id = {k}")
                else:
                    p = await c.query(f"SELECT v, @@SERVERNAME FROM t WHERE id = {k}")
            except (TdsError, OSError, asyncio.IncompleteReadError) as e:
                errors.append(str(e) or type(e).__name__)
                return
            lat.append(time.perf_counter() - t0)
            if value(k).encode("utf-16-le") not in p:
                errors.append(f"wrong answer for id {k}")
                return
            if tag is not None:
                for name in NAMES:
                    if name.encode("utf-16-le") in p:
                        tag[name] = tag.get(name, 0) + 1

    await asyncio.gather(*(one(c, random.Random(i)) for i, c in enumerate(conns)))
    return errors


def pct(sorted_lat, q):
    return sorted_lat[min(len(sorted_lat) - 1, int(q * len(sorted_lat)))] * 1000


def machine_busy():
    """CPU seconds the whole machine has spent busy (every core, steal included)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / TICKS  # user nice system irq softirq steal


async def run_window(name, ports, proxy, a, pids, acc, seconds, tag):
    """One measured window of one target, added to acc: --connections connections spread
    over ports, logged in, warmed up (not counted), then `seconds` of load; with tag, the
    tagged queries after it (where the reads ran)."""
    conns = [await Conn.open(ports[i % len(ports)]) for i in range(a.connections)]
    acc["errors"] += await drive(conns, a.rows, time.perf_counter() + a.warmup, [])
    cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
    busy0 = machine_busy()
    own0 = time.process_time()
    t0 = time.perf_counter()
    acc["errors"] += await drive(conns, a.rows, t0 + seconds, acc["lat"])
    acc["seconds"] += time.perf_counter() - t0
    for n, p in pids.items():
        acc["cpu"][n] = acc["cpu"].get(n, 0.0) + cpu_seconds(p) - cpu0[n]
    own = time.process_time() - own0
    acc["own"] += own
    # What other work on the machine took in the window: all busy time less this benchmark's.
    ours = own + sum(cpu_seconds(p) - cpu0[n] for n, p in pids.items())
    acc["other"] += max(0.0, machine_busy() - busy0 - ours)
    if tag:
        acc["errors"] += await drive(conns, a.rows, time.perf_counter() + a.tag_seconds, [],
                                     acc["tag"])
    for c in conns:
        c.close()


def summarise(name, proxy, acc):
    lat = sorted(acc["lat"])
    n = len(lat)
    r = {"name": name, "queries": n, "seconds": acc["seconds"], "qps": n / acc["seconds"],
         "p50": pct(lat, 0.50) if n else 0, "p99": pct(lat, 0.99) if n else 0,
         "errors": acc["errors"], "cpu": acc["cpu"], "tag": acc["tag"], "other": acc["other"],
         "client_cpu_us": acc["own"] / n * 1e6 if n else 0,
         "proxy_cpu_us": acc["cpu"][proxy] / n * 1e6 if proxy and n else None}
    print(f"tds_bench: {name}: {r['qps']:.0f} QPS, p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, "
          f"{len(r['errors'])} error(s)" + (f", {proxy} {r['proxy_cpu_us']:.1f} us CPU/query"
                                            if proxy else ""), flush=True)
    return r


def build_info(binary):
    """The binary's mtime and the tree's commit, read from .git without running git."""
    mtime = datetime.datetime.fromtimestamp(os.path.getmtime(binary)).strftime("%Y-%m-%d %H:%M")
    head = "?"
    try:
        with open(os.path.join(ROOT, ".git/HEAD")) as f:
            ref = f.read().strip()
        if ref.startswith("ref: "):
            with open(os.path.join(ROOT, ".git", ref[5:])) as f:
                ref = f.read().strip()
        head = ref[:7]
    except OSError:
        pass
    return f"`{os.path.relpath(binary, ROOT)}` built {mtime}, tree at {head}"


def log_lines(path):
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return [], []
    bad = [l for l in lines if any(w in l for w in (" error ", " critical ", "Sanitizer"))]
    warn = [l for l in lines if " warning " in l]
    return bad, warn


WHERE = {"direct": "secondary1", "haproxy": "HAProxy -> secondary1",
         "sluice-one-session": "Sluice (session pool mode) -> secondary1",
         "sluice-one": "Sluice -> secondary1",
         "sluice": "Sluice -> secondary1 + secondary2",
         "direct-both": "secondary1 / secondary2 (half the connections each)"}
PROXIES = ("haproxy",) + tuple(x[0] for x in SLUICES)


def report(a, results, status, info, load, machine, d):
    by = {r["name"]: r for r in results}
    direct, hap, both = by["direct"], by["haproxy"], by["direct-both"]
    sl, one, ses = by["sluice"], by["sluice-one"], by["sluice-one-session"]

    def q(x, y):
        return f"{x['qps'] / y['qps']:.2f}"

    def c(x, y):
        return f"{x['proxy_cpu_us'] / y['proxy_cpu_us']:.2f}"

    cmd = "bench/tds_bench.py" + (" " + " ".join(a.argv) if a.argv else "")
    order = ", ".join(r["name"] for r in results)
    lines = [
        f"# Sluice TDS benchmark (issue #11), {datetime.datetime.now():%Y-%m-%d %H:%M}", "",
        f"Command: `/usr/bin/python3 {cmd}` (whole run: {a.total:.0f} s)", "",
        f"Machine: {machine}; load average at the start {load}, at the end {a.load_end}. "
        "The three TDS test servers, HAProxy, the Sluice daemons and the load client all on "
        f"one host, over loopback. Sluice: {info}.", "",
        "## What ran", "",
        "- Servers: three `tests/fixtures/tds_server.py` (Python, SQLite underneath, a "
        "thread per connection under one GIL each; SQL Server cannot run here): `primary` "
        "and the secondaries `secondary1`, `secondary2` replaying one log of commits with "
        "`--lag-ms 0`, no TLS. A table `t (id INT PRIMARY KEY, v VARCHAR(32))` of "
        f"{a.rows} rows was created directly on the primary and read back from both "
        "secondaries before the load.",
        "- Sluice: three daemons of the same binary, started together and running "
        "throughout: `sluice` with the primary and both secondaries as `[[tds_backends]]`; "
        "`sluice-one` with the primary and secondary1 only (the server direct and HAProxy "
        "use: like for like); `sluice-one-session`, the same with `[pool] mode = "
        "\"session\"` (each client session keeps its own backend connections) where the "
        "others have the default transaction mode (a session borrows a pooled connection "
        "per statement, and a connection another session used is reset first). Each: "
        "`workers = 1`, a TDS listener (no TLS), `[tds_monitor]` every 500 ms, `[logging] "
        "level = \"warn\"`, and the MySQL `[[backends]]` entry the configuration requires, "
        "on a loopback port nothing listens on.",
        "- HAProxy: `mode tcp`, `nbthread 1`, one server: secondary1.",
        "- Load client: this script, one asyncio process speaking raw TDS 7.4 (PRELOGIN "
        "without encryption, LOGIN7, SQLBatch with ALL_HEADERS), "
        f"{a.connections} connections, each sending `SELECT v FROM t WHERE id = <k>` (k "
        "uniform) back to back and reading every response to its final DONE; every answer "
        f"checked (the row's value in it, no error in the final DONE). {a.seconds:g} s "
        f"measured per target, in {a.rounds} window(s) of {a.seconds / a.rounds:g} s; the "
        f"targets one after the other in the order {order}, the next round in the reverse "
        "order (ABBA: a background load that drifts weighs on every target alike). Before "
        f"each window the connections are opened and logged in, then {a.warmup:g} s of "
        "warm-up, not counted.",
        "- QPS: queries completed in the measured windows / their length. Latency: each "
        "query's round trip as the client saw it. CPU: utime + stime "
        "(`/proc/PID/stat`) of the process over the measured windows / the queries "
        "completed in them.", "",
        "## Results", "",
        "| target | reads run on | QPS | x direct | p50 ms | p99 ms | errors | proxy CPU "
        "us/query | test servers' CPU us/query | load client CPU us/query |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        proxy = f"{r['proxy_cpu_us']:.1f}" if r["proxy_cpu_us"] is not None else "-"
        servers = sum(r["cpu"][n] for n in NAMES) / max(1, r["queries"]) * 1e6
        lines.append(f"| {r['name']} | {WHERE[r['name']]} | {r['qps']:.0f} | {q(r, direct)} | "
                     f"{r['p50']:.2f} | {r['p99']:.2f} | {len(r['errors'])} | {proxy} | "
                     f"{servers:.1f} | {r['client_cpu_us']:.1f} |")
    lines += [
        "",
        f"- **QPS, Sluice / direct: {q(sl, direct)}**, HAProxy / direct: {q(hap, direct)} "
        "(Sluice's reads over two secondaries, direct's and HAProxy's on one). Like for "
        f"like on secondary1 alone: sluice-one / direct {q(one, direct)}, sluice-one-session "
        f"/ direct {q(ses, direct)}; against HAProxy: sluice-one {q(one, hap)}, "
        f"sluice-one-session {q(ses, hap)}. On the same two secondaries: Sluice / "
        f"direct-both {q(sl, both)}.",
        f"- **CPU per query: Sluice {sl['proxy_cpu_us']:.1f} us, HAProxy "
        f"{hap['proxy_cpu_us']:.1f} us** (Sluice / HAProxy {c(sl, hap)}); sluice-one "
        f"{one['proxy_cpu_us']:.1f} us ({c(one, hap)}), sluice-one-session "
        f"{ses['proxy_cpu_us']:.1f} us ({c(ses, hap)}).", "",
        "CPU seconds (utime + stime) of every process over each target's measured windows; "
        "the servers' columns show where the work ran, measured at the servers. Other work "
        "on the machine: its busy time (`/proc/stat`, steal included) less this "
        "benchmark's processes, over the same windows (other sessions' builds and tests "
        "share the machine):", "",
        "| target | seconds | queries | " + " | ".join(NAMES + PROXIES) +
        " | load client | other work on the machine |",
        "|---|---|---|" + "---|" * (len(NAMES) + len(PROXIES) + 2),
    ]
    for r in results:
        lines.append(f"| {r['name']} | {r['seconds']:.1f} | {r['queries']} | " + " | ".join(
            f"{r['cpu'][n]:.2f}" for n in NAMES + PROXIES) +
            f" | {r['client_cpu_us'] * r['queries'] / 1e6:.2f} | {r['other']:.2f} |")
    lines += [
        "", "Where Sluice sent the reads, from the servers: after each Sluice's last window "
        f"the same {a.connections} sessions sent {a.tag_seconds:g} s of "
        "`SELECT v, @@SERVERNAME FROM t WHERE id = <k>`, and each answer names the server "
        "that ran it:", ""]
    for r in results:
        if r["tag"]:
            lines.append(f"- {r['name']}: " +
                         ", ".join(f"{n} {r['tag'].get(n, 0)}" for n in NAMES))
    lines += [
        "", "## What the figures mean", "",
        "- The test servers are Python programs that tokenise and translate every T-SQL "
        "statement to SQLite, a thread per connection under one GIL: a point select costs "
        "a server several times the CPU it costs a proxy, so the servers, not the proxies, "
        "set the QPS. The QPS ratios measure what a proxy adds in front of a slow server "
        "(a hop of latency, the CPU it takes from the two shared cores, and any work it "
        "makes the server do), not a proxy's ceiling; against SQL Server they would differ. "
        "The proxy's CPU per query is the figure that carries over, and the one to compare "
        "with HAProxy's.",
        "- The test servers' column is the work done at the servers per client query. Where "
        "it is higher through Sluice than directly, Sluice made the servers do more than "
        "the client asked (in transaction pool mode: resetting a connection another session "
        "used, with a batch of Sluice's own, before the client's query); on SQL Server a "
        "reset costs far less than this test server's, which opens its SQLite session "
        "afresh, but the extra round trip remains. The servers' cost also changes with how "
        "many of their threads are busy at once (GIL hand-offs on two cores), which is "
        "why direct-both's servers spend less per query than direct's.",
        "- Sluice / direct (the issue's figure) has Sluice's reads on two secondaries "
        "against one: sluice-one and sluice-one-session against direct and HAProxy (the "
        "same server, the same connections) and Sluice against direct-both (the same two "
        "servers) are the like-for-like pairs.",
        "- Everything (load client, servers, proxies) shares two cores, and other work on "
        "the machine (load averages, last column above) takes from them too; through a "
        "proxy three processes take turns on each query instead of two. The load client's "
        "own CPU per query is shown for that reason. A Sluice's CPU includes its TDS "
        "monitor (a probe of each server every 500 ms) over the window; the idle daemons' "
        "columns show what that alone costs.",
        "- One run: QPS differences of 20-30% between targets are within what repeated "
        "short runs of this script showed on this machine; each proxy's CPU per query "
        "varied less.", "",
        "## Exit status and logs", "",
    ]
    for n in NAMES + PROXIES:
        lines.append(f"- {n}: exit status {status.get(n)} after SIGTERM")
    for n in PROXIES[1:]:
        bad, warn = log_lines(os.path.join(d, n + ".log"))
        lines.append(f"- {n}'s log: {len(bad)} error/critical/sanitizer line(s), "
                     f"{len(warn)} warning(s)")
        lines += [f"    - `{l.strip()}`" for l in (bad + warn)[:10]]
    for r in results:
        if r["errors"]:
            lines.append(f"- {r['name']}: {len(r['errors'])} error(s), the first: "
                         f"`{r['errors'][0]}`")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20, help="measured seconds per target")
    ap.add_argument("--rounds", type=int, default=2,
                    help="split --seconds into this many windows per target, run in ABBA order")
    ap.add_argument("--warmup", type=float, default=1, help="seconds before each window")
    ap.add_argument("--tag-seconds", type=float, default=2)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--port", type=int, default=24430, help="first of twelve ports")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/src/sluice"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results/2026-12-02-tds.md"))
    a = ap.parse_args()
    a.argv = sys.argv[1:]
    started = time.monotonic()
    if not os.access(a.binary, os.X_OK):
        sys.exit(f"no Sluice binary at {a.binary}: ninja -C build sluice")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    model = "?"
    with open("/proc/cpuinfo") as f:
        model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    machine = f"{os.cpu_count()} shared cores ({model})"
    base = a.port
    for p in range(base, base + 12):
        try:
            socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
            sys.exit(f"port {p} is in use: choose another --port")
        except OSError:
            pass
    d = tempfile.mkdtemp(prefix="sluice-tds-bench-")
    print(f"tds_bench: files in {d}; load average {load}", flush=True)
    procs = Procs()
    results, status = [], {}
    try:
        start_servers(procs, d, base)
        asyncio.run(create_table(base, a.rows))
        asyncio.run(wait_replicated([base + 1, base + 2], a.rows))
        start_haproxy(procs, d, base + 3, base + 1)
        for name, secondaries, mode, off in SLUICES:
            start_sluice(procs, d, name, a.binary, base, base + off, secondaries, mode)
        time.sleep(1.5)  # the monitor's first probes: Sluice knows the secondaries are up
        pids = {n: p.pid for n, p in procs.procs.items()}
        targets = (("direct", [base + 1], None), ("haproxy", [base + 3], "haproxy"),
                   ("sluice-one-session", [base + 10], "sluice-one-session"),
                   ("sluice-one", [base + 6], "sluice-one"), ("sluice", [base + 4], "sluice"),
                   ("direct-both", [base + 1, base + 2], None))
        acc = {t[0]: {"lat": [], "seconds": 0.0, "cpu": {}, "own": 0.0, "other": 0.0,
                      "errors": [], "tag": {}} for t in targets}
        for rnd in range(a.rounds):
            # ABBA: a load that drifts during the run weighs on every target alike.
            for name, ports, proxy in (targets if rnd % 2 == 0 else targets[::-1]):
                last = rnd == a.rounds - 1 and proxy is not None and proxy.startswith("sluice")
                asyncio.run(run_window(name, ports, proxy, a, pids, acc[name],
                                       a.seconds / a.rounds, last and a.tag_seconds > 0))
                print(f"tds_bench: round {rnd + 1}: {name} done", flush=True)
        results = [summarise(name, proxy, acc[name]) for name, _, proxy in targets]
    finally:
        status = procs.stop_all()
    a.total = time.monotonic() - started
    a.load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = report(a, results, status, build_info(a.binary), load, machine, d)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    print(f"tds_bench: wrote {a.out}")
    stopped = (0, -signal.SIGTERM)  # HAProxy ends on the signal itself
    if any(r["errors"] for r in results) or any(x not in stopped for x in status.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
