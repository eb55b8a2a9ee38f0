#!/usr/bin/python3
"""Sluice connection-pooling benchmark (issue #10, "Benchmark"): in one run on one machine, on
the bench topology of bench/run.py (primary 23307, replicas 23308/23309, /tmp/sluice-bench-topo):

1. Many clients: tests/tools/mysql_load.py with --clients (1,000) concurrent connections,
   autocommit `SELECT c FROM sbtest1 WHERE id = {id}` (read=100) and, as a second cell,
   read=90,write=10 with `UPDATE sbtest1 SET k = k + 1 WHERE id = {id}`; each cell directly
   against the primary (no Sluice running) and then through a Sluice started for that run
   (workers = 2, [pool] max_connections = 32 per backend per worker, transaction mode, the
   primary and both replicas as backends, [monitor]). Per run: QPS, p50/p99 latency, errors,
   the peak number of app connections on each server (`information_schema.PROCESSLIST`,
   sampled every 100 ms on a direct connection of its own, which is not counted) and Sluice's
   CPU per statement (utime + stime of the process from /proc/PID/stat over the load client's
   run, opening included / the statements the load client completed).
2. Idle clients: a fresh Sluice (same configuration); mysql_load.py --idle with --idle-clients
   (10,000) connections opened at 1,000/s, idle for 15 s. Sluice's VmRSS before the clients
   connect (baseline) and every 0.5 s until they have gone; peak (sampled, and VmHWM),
   (peak - baseline) / clients in KiB per idle client. Goal: under 200 MiB in total.
3. bench/run.py's 16-thread oltp_point_select cells, --ps disable (sysbench direct vs HAProxy
   vs Sluice), run as a subprocess: its table goes into this file.

Every Sluice is stopped by pid with SIGTERM; its exit status and its log (error/critical
lines, sanitizer reports; run.py's Sluice: its log) are reported. Results: Markdown in
bench/results/YYYY-MM-DD-pool.md (or --out FILE), printed as well; a rerun overwrites it. Exit
status 1 when a Sluice exited other than 0 or logged an error, else 0.

Usage: bench/pool_bench.py [--seconds 20] [--clients 1000] [--idle-clients 10000]
                           [--parts 1,2,3] [--binary build/src/sluice] [--out FILE]
                           [--cells 2] [--run-seconds 10] [--run-rounds 3]
Needs what bench/run.py and bench/monitor_bench.py need. Stops everything it started (by
pid) and leaves the bench topology down, as bench/run.py does.
"""
import argparse
import datetime
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from cache_bench import machine
from monitor_bench import DETAILS, SERVERS, connect, ensure_monitor_user, log, restore_primary
from run import (PRIMARY_PORT, REPLICA_PORTS, ROOT, TOPO_DIR, cpu_seconds, sysbench, topo,
                 wait_port, write_results)
from split import build_info

LOAD = os.path.join(ROOT, "tests/tools/mysql_load.py")
PYTHON = "/usr/bin/python3"
# This script's Sluice (one at a time): free of run.py's (23033/23090) and monitor_bench's
# (23040.., 23095..) ports, so a leftover daemon of another bench cannot be measured instead.
POOL_PORT, POOL_ADMIN = 23060, 23092
WORKERS, POOL_MAX, LISTENER_MAX = 2, 32, 12000
TABLE_SIZE = 10000
READ_SQL = "SELECT c FROM sbtest1 WHERE id = {id}"
WRITE_SQL = "UPDATE sbtest1 SET k = k + 1 WHERE id = {id}"
CELLS = [("read=100", "point selects"), ("read=90,write=10", "90% point selects, 10% UPDATEs")]
NOFILE = 20000  # Sluice's open-file limit (soft, capped at the hard one): 10,000 clients + pools
SAMPLE_S = 0.1  # connection counts
RSS_SAMPLE_S = 0.5
IDLE_SECONDS, IDLE_RATE = 15, 1000
GOAL_MIB = 200
BACKENDS = [("primary", PRIMARY_PORT, "primary")] + [
    (name, port, "replica") for name, port in sorted(REPLICA_PORTS.items())]
# What in a daemon's log is a finding: an error or critical line, or a sanitizer's report.
BAD_LINE = re.compile(r"^\S+ (error|critical) |AddressSanitizer|LeakSanitizer|"
                      r"UndefinedBehaviorSanitizer|ThreadSanitizer|runtime error:")
WARN_LINE = re.compile(r"^\S+ (warn|warning) ")
DAEMONS = []  # (name, exit status, error lines, warning lines) of every Sluice stopped


def raise_nofile():
    """preexec_fn: the child's open-file limit up to NOFILE (the hard limit if lower)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def port_free(port):
    with socket.socket() as s:
        # As a listener binds (Asio sets SO_REUSEADDR): the last run's TIME_WAIT sockets
        # on the port do not count, a listening socket does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def proc_status(pid, key):
    """A kB field of /proc/PID/status (VmRSS, VmHWM) in KiB; None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def fd_limit(pid):
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return line.split()[3]
    except OSError:
        pass
    return "?"


def scan_log(path):
    """(error/critical/sanitizer lines, warning lines) of a daemon's log."""
    bad, warn = [], []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if BAD_LINE.search(line):
                    bad.append(line.rstrip())
                elif WARN_LINE.search(line):
                    warn.append(line.rstrip())
    except OSError as e:
        bad.append(f"(log not readable: {e})")
    return bad, warn


# --------------------------------------------------------------------------- Sluice ----

class Sluice:
    """One Sluice of this script: the part 1/2 configuration, its own config and log."""

    def __init__(self, binary, name):
        for p in (POOL_PORT, POOL_ADMIN):
            if not port_free(p):
                raise RuntimeError(f"port {p} is taken (a Sluice left over?): not starting")
        self.name = name
        self.config = os.path.join(TOPO_DIR, f"pool-bench-{name}.toml")
        self.log = os.path.join(TOPO_DIR, f"pool-bench-{name}.log")
        text = f"""workers = {WORKERS}
shutdown_grace_ms = 5000

[[listeners]]
name = "mysql"
address = "127.0.0.1"
port = {POOL_PORT}
max_connections = {LISTENER_MAX}
"""
        for bname, bport, role in BACKENDS:
            text += f"""
[[backends]]
name = "{bname}"
host = "127.0.0.1"
port = {bport}
role = "{role}"
"""
        text += f"""
[[users]]
name = "app"
password = "app"

[pool]
mode = "transaction"
max_connections = {POOL_MAX}
queue_timeout_ms = 30000

[monitor]
user = "sluice_monitor"
password = "monitor"
interval_ms = 500
timeout_ms = 1000

[admin]
address = "127.0.0.1"
port = {POOL_ADMIN}

[logging]
level = "warn"
"""
        with open(self.config, "w") as f:
            f.write(text)
        with open(self.log, "w") as logf:
            self.proc = subprocess.Popen([binary, "--config", self.config], stdout=logf,
                                         stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
        self.rc = None
        try:
            wait_port(POOL_PORT, self.proc, f"sluice {name}")
            deadline = time.monotonic() + 15
            while self.doc()["topology_version"] < 1:  # the monitor's first snapshot
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sluice {name}: no monitor snapshot within 15 s")
                time.sleep(0.1)
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise
        self.nofile = fd_limit(self.pid)

    @property
    def pid(self):
        return self.proc.pid

    def doc(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{POOL_ADMIN}/backends", timeout=5) as r:
            return json.loads(r.read().decode())

    def metrics(self):
        """{(name, frozenset(labels)): value} of /metrics; {} if it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{POOL_ADMIN}/metrics",
                                        timeout=10) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            m = re.match(r'^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$', line)
            if m:
                labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
                out[(m.group(1), labels)] = float(m.group(3))
        return out

    def stop(self):
        """SIGTERM, bounded wait, SIGKILL as last resort; records the exit status and the
        log's findings in DAEMONS (once)."""
        if self.rc is not None:
            return self.rc
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.rc = "killed after 30 s (no exit on SIGTERM)"
        bad, warn = scan_log(self.log)
        DAEMONS.append((self.name, self.rc, bad, warn))
        if self.rc != 0 or bad:
            log(f"WARNING: sluice {self.name} exited with {self.rc}, {len(bad)} error line(s) "
                "in its log", detail=True)
        return self.rc


def pool_counts(m):
    """{backend: (busy, idle)} of sluice_pool_connections, and the statements each backend
    ran (sluice_backend_statements_total)."""
    out = {}
    for name, _, _ in BACKENDS:
        busy = m.get(("sluice_pool_connections",
                      frozenset({("backend", name), ("state", "busy")})), 0.0)
        idle = m.get(("sluice_pool_connections",
                      frozenset({("backend", name), ("state", "idle")})), 0.0)
        stmts = m.get(("sluice_backend_statements_total", frozenset({("backend", name)})), 0.0)
        out[name] = (busy, idle, stmts)
    return out


def metric(m, name):
    return m.get((name, frozenset()), 0.0)


# ------------------------------------------------------------------- samplers, load ----

class ConnSampler(threading.Thread):
    """Every SAMPLE_S: the app connections on each server (its own connection left out)."""

    QUERY = ("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
             "WHERE USER = 'app' AND ID <> CONNECTION_ID()")

    def __init__(self):
        super().__init__(daemon=True)
        self.conns = {name: connect(port) for name, port in SERVERS}
        self.samples = {name: [] for name, _ in SERVERS}
        self.errors = 0
        self.halt = threading.Event()

    def count(self, name):
        with self.conns[name].cursor() as cur:
            cur.execute(self.QUERY)
            return int(cur.fetchone()[0])

    def run(self):
        next_t = time.monotonic()
        while not self.halt.is_set():
            for name, _ in SERVERS:
                try:
                    self.samples[name].append(self.count(name))
                except Exception:  # counted and reported; the run goes on
                    self.errors += 1
            next_t += SAMPLE_S
            self.halt.wait(max(0.0, next_t - time.monotonic()))

    def finish(self):
        self.halt.set()
        self.join(timeout=10)
        for c in self.conns.values():
            try:
                c.close()
            except Exception:
                pass
        return {name: {"peak": max(v) if v else None,
                       "median": statistics.median(v) if v else None, "n": len(v)}
                for name, v in self.samples.items()}


class Load:
    """tests/tools/mysql_load.py as a child process, its JSON read when it ends."""

    def __init__(self, port, clients, seconds, mix="read=100", idle=False, connect_rate=500):
        self.json = tempfile.NamedTemporaryFile(prefix="pool-bench-", suffix=".json",
                                                delete=False).name
        self.cmd = [PYTHON, LOAD, "--port", str(port), "--database", "sbtest", "--clients",
                    str(clients), "--duration", str(seconds), "--connect-rate",
                    str(connect_rate), "--table-size", str(TABLE_SIZE), "--seed", "1",
                    "--json", self.json]
        if idle:
            self.cmd.append("--idle")
        else:
            self.cmd += ["--mix", mix, "--read-sql", READ_SQL, "--write-sql", WRITE_SQL]
        # mysql_load's own hard deadline, plus a margin: then it is killed.
        opening = clients / connect_rate if connect_rate else 0
        self.deadline = time.monotonic() + seconds + opening + 10 + 30 + 60
        self.out = None
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, preexec_fn=raise_nofile)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        self.out = self.proc.stdout.read()

    def running(self):
        return self.proc.poll() is None

    def wait(self):
        """The JSON result, with 'exit' and 'output' added; an 'error' key if it failed."""
        try:
            rc = self.proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            rc = "killed (past its deadline)"
        self.reader.join(timeout=10)
        r = {}
        try:
            with open(self.json) as f:
                r = json.load(f)
        except (OSError, ValueError) as e:
            r = {"error": f"no JSON from mysql_load.py (exit {rc}): {e}"}
        finally:
            try:
                os.unlink(self.json)
            except OSError:
                pass
        r["exit"] = rc
        r["output"] = (self.out or "").strip()
        if rc != 0 and "error" not in r:
            r["error"] = f"mysql_load.py exited with {rc}"
        return r

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def check_primary(clients):
    """The primary's max_connections raised to let the direct run's clients in; returns
    (max_connections before, after, open_files_limit)."""
    c = connect(PRIMARY_PORT)
    try:
        with c.cursor() as cur:
            cur.execute("SELECT @@max_connections, @@open_files_limit")
            before, files = cur.fetchone()
            after = before
            want = max(2000, clients + 100)
            if before < want:
                cur.execute(f"SET GLOBAL max_connections = {want}")
                after = want
    finally:
        c.close()
    return int(before), int(after), int(files)


# ------------------------------------------------------------------ 1. many clients ----

def one_run(a, target, mix, procs):
    """One mysql_load run of a cell against 'direct' or 'sluice' (a Sluice started for it)."""
    s = None
    if target == "sluice":
        s = Sluice(a.binary, f"clients-{mix.replace('=', '').replace(',', '-')}")
        procs.append(s)
    port = POOL_PORT if s else PRIMARY_PORT
    sampler = ConnSampler()
    m0 = s.metrics() if s else None
    cpu0 = cpu_seconds(s.pid) if s else None
    sampler.start()
    load = Load(port, a.clients, a.seconds, mix)
    procs.append(load)
    r = load.wait()
    procs.remove(load)
    cpu = cpu_seconds(s.pid) - cpu0 if s else None
    conns = sampler.finish()
    r["conns"] = conns
    r["sampler_errors"] = sampler.errors
    done = (r.get("queries_ok") or 0) + (r.get("queries_err") or 0)
    r["cpu_s"] = cpu
    r["cpu_us"] = cpu / done * 1e6 if cpu is not None and done else None
    if s:
        m1 = s.metrics()
        p0, p1 = pool_counts(m0), pool_counts(m1)
        r["pool_end"] = {n: p1[n][:2] for n in p1}
        r["backend_stmts"] = {n: p1[n][2] - p0[n][2] for n in p1}
        r["pool_timeouts"] = (metric(m1, "sluice_pool_queue_timeouts_total") -
                              metric(m0, "sluice_pool_queue_timeouts_total"))
        r["backend_connects"] = (metric(m1, "sluice_backend_connects_total") -
                                 metric(m0, "sluice_backend_connects_total"))
        r["rss_hwm_kib"] = proc_status(s.pid, "VmHWM")
        r["sluice_rc"] = s.stop()
        procs.remove(s)
    lat = r.get("latency_ms") or {}
    log(f"part 1 {mix} {target}: {r.get('error') or ''}connected "
        f"{r.get('clients_connected')}/{a.clients} (open {r.get('open_s')} s), ok "
        f"{r.get('queries_ok')} err {r.get('queries_err')} {r.get('errors_by_code') or ''}, "
        f"qps {r.get('qps')}, p50/p95/p99/max {lat.get('p50')}/{lat.get('p95')}/"
        f"{lat.get('p99')}/{lat.get('max')} ms; app connections peak "
        + ", ".join(f"{n} {c['peak']}" for n, c in conns.items())
        + f" ({conns['primary']['n']} samples, {sampler.errors} sampling errors); load client "
        f"CPU {r.get('client_cpu_s')} s"
        + (f"; Sluice CPU {cpu:.2f} s = {fmt(r['cpu_us'], '.1f')} us/statement, backend "
           f"statements {r['backend_stmts']}, pool at the end (busy, idle) {r['pool_end']}, "
           f"queue timeouts {r['pool_timeouts']:.0f}, backend connects "
           f"{r['backend_connects']:.0f}, VmHWM {r['rss_hwm_kib']} KiB, exit {r['sluice_rc']}"
           if s else ""), detail=True)
    if r.get("first_errors"):
        log(f"part 1 {mix} {target}: first errors {r['first_errors'][:3]}", detail=True)
    return r


def part_clients(a, procs):
    before, after, files = check_primary(a.clients)
    log(f"part 1: primary max_connections {before} -> {after}, open_files_limit {files}",
        detail=True)
    results = {}
    for mix, _ in CELLS[:a.cells]:
        for target in ("direct", "sluice"):
            results[(mix, target)] = one_run(a, target, mix, procs)
    return {"max_conn": (before, after, files), "runs": results}


# ------------------------------------------------------------------- 2. idle memory ----

def part_idle(a, procs):
    s = Sluice(a.binary, "idle")
    procs.append(s)
    time.sleep(1)  # settled after start (monitor's first rounds)
    base = proc_status(s.pid, "VmRSS")
    samples = []  # (seconds since start, VmRSS KiB)
    t0 = time.monotonic()
    load = Load(POOL_PORT, a.idle_clients, IDLE_SECONDS, idle=True, connect_rate=IDLE_RATE)
    procs.append(load)
    active_peak = 0.0
    next_metrics = t0 + 2
    while load.running():
        rss = proc_status(s.pid, "VmRSS")
        if rss is not None:
            samples.append((time.monotonic() - t0, rss))
        if time.monotonic() >= next_metrics:  # how many clients Sluice holds, every 2 s
            active_peak = max(active_peak,
                              metric(s.metrics(), "sluice_client_connections_active"))
            next_metrics += 2
        time.sleep(RSS_SAMPLE_S)
    r = load.wait()
    exited = time.monotonic() - t0
    procs.remove(load)
    time.sleep(2)
    after = proc_status(s.pid, "VmRSS")
    hwm = proc_status(s.pid, "VmHWM")
    pools = pool_counts(s.metrics())
    r["sluice_rc"] = s.stop()
    procs.remove(s)
    # The idle phase on this script's clock: mysql_load's own times are relative to its start
    # (wall_s: from its start to its end), which came `exited - wall_s` after t0 (the
    # interpreter's start-up). From all clients connected to the end of the idle time, less
    # one sample: the closing SELECT 1 of every client and the disconnects come after it.
    idle_from = idle_to = None
    if r.get("wall_s") and r.get("open_s") is not None and r.get("duration_s"):
        off = max(0.0, exited - r["wall_s"])
        idle_from = off + r["open_s"]
        idle_to = idle_from + r["duration_s"] - RSS_SAMPLE_S
    in_idle = [v for t, v in samples if idle_from is not None and idle_from <= t <= idle_to]
    peak = max(in_idle, default=None)
    peak_all = max((v for _, v in samples), default=None)
    r.update({"base_kib": base, "peak_kib": peak, "peak_all_kib": peak_all, "hwm_kib": hwm,
              "after_kib": after, "samples": samples, "idle_samples": len(in_idle),
              "active_peak": active_peak, "nofile": s.nofile,
              "pool_end": {n: v[:2] for n, v in pools.items()}})
    per = (peak - base) / a.idle_clients if peak is not None and base is not None else None
    r["per_client_kib"] = per
    series = " ".join(f"{t:.0f}s:{v / 1024:.0f}" for i, (t, v) in enumerate(samples)
                      if i % 4 == 0 or i == len(samples) - 1)
    log(f"part 2: {r.get('error') or ''}{r.get('clients_connected')}/{a.idle_clients} idle "
        f"clients connected (open {r.get('open_s')} s), alive at the end "
        f"{r.get('idle_alive')}, connect errors {r.get('connect_errors')}, statement errors "
        f"{r.get('queries_err')}; Sluice (nofile {s.nofile}) VmRSS baseline {base} KiB, peak "
        f"while idle {peak} KiB ({len(in_idle)} samples from {fmt(idle_from, '.1f')} s to "
        f"{fmt(idle_to, '.1f')} s), peak of all {len(samples)} samples {peak_all} KiB, VmHWM "
        f"{hwm} KiB, 2 s after the clients left {after} KiB; {fmt(per, '.2f')} KiB per idle "
        f"client; VmRSS MiB every 2 s from the load client's start: {series}; client connections active "
        f"(peak of /metrics every 2 s) {active_peak:.0f}; pools at the end {r['pool_end']}; "
        f"exit {r['sluice_rc']}", detail=True)
    return r


# -------------------------------------------------------------------- 3. bench/run.py ----

def part_run(a):
    """bench/run.py's 16-thread point-select cells; (command, its Markdown or None, exit)."""
    out = tempfile.NamedTemporaryFile(prefix="pool-bench-run-", suffix=".md", delete=False).name
    cmd = [PYTHON, os.path.join(ROOT, "bench/run.py"), "--threads", "16", "--tests",
           "oltp_point_select", "--ps", "disable", "--rounds", str(a.run_rounds), "--seconds",
           str(a.run_seconds), "--binary", a.binary, "--out", out]
    shown = "bench/run.py " + " ".join(cmd[2:-2])
    log(f"part 3: {shown}")
    started = time.time()
    rc = subprocess.run(cmd, cwd=ROOT).returncode
    text = None
    try:
        with open(out) as f:
            text = f.read()
    except OSError:
        pass
    finally:
        try:
            os.unlink(out)
        except OSError:
            pass
    # run.py's Sluice: run.py does not check its exit status (it waits for it after SIGTERM);
    # its log (stderr) is checked here, as this script's own daemons' are.
    run_log = os.path.join(TOPO_DIR, "sluice-bench.log")
    if os.path.exists(run_log) and os.path.getmtime(run_log) >= started:
        bad, warn = scan_log(run_log)
        DAEMONS.append(("bench/run.py's Sluice", "not checked by run.py", bad, warn))
    log(f"part 3: bench/run.py exited with {rc}", detail=True)
    return shown, text, rc


# ------------------------------------------------------------------------- report ----

def fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


def report(a, cmdline, started, host, built, clients, idle, run3):
    lines = [
        f"# Sluice connection-pooling benchmark (issue #10), {started:%Y-%m-%d %H:%M}",
        "",
        f"Command: `{cmdline}`",
        "",
        f"Machine: {host}. {built}.",
        "",
        f"Sluice for parts 1 and 2: `workers = {WORKERS}`, a listener with `max_connections = "
        f"{LISTENER_MAX}`, backends primary (23307, role primary) and replica1/replica2 (23308/"
        f"23309, role replica), `[pool] mode = \"transaction\"`, `max_connections = {POOL_MAX}` "
        f"(per backend per worker: at most {WORKERS * POOL_MAX} connections to each server), "
        "`queue_timeout_ms = 30000`, `[monitor]` every 500 ms, `[logging] level = \"warn\"`; "
        "open-file limit raised to "
        f"{NOFILE} (or the hard limit). A fresh Sluice for every run, stopped with SIGTERM "
        "after it.",
        "",
    ]
    if clients:
        before, after, files = clients["max_conn"]
        lines += [
            f"## 1. {a.clients} concurrent clients",
            "",
            f"`tests/tools/mysql_load.py --clients {a.clients} --duration {a.seconds}` "
            "(connections opened at 500/s, then all start together; autocommit statements "
            f"back to back, ids uniform over {TABLE_SIZE} rows of `sbtest.sbtest1`): "
            f"`{READ_SQL}`, and for the write cell `{WRITE_SQL}`. One run per target, direct "
            "first (no Sluice running), then through Sluice. **Directly, every statement "
            "runs on the primary; through Sluice the reads go to the two replicas and only "
            "the writes to the primary**, so Sluice's runs have three servers' worth of "
            f"MariaDB behind them. The primary's `max_connections` was {before}"
            + (f", set to {after} for the run" if after != before else "")
            + f" (`open_files_limit` {files}).",
            "",
            "QPS: statements completed in the measured window / its length; latency: every "
            "statement's round trip as the load client saw it. App connections: peak of "
            "`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='app'` on each "
            f"server, every {int(SAMPLE_S * 1000)} ms during the load client's run (its own "
            "sampling connection left out). Sluice CPU: utime + stime of the Sluice process "
            "from the load client's start to its end (opening the connections included) / "
            "the statements it completed (ok + errors).",
            "",
            "| workload | target | connected | QPS | p50 ms | p99 ms | max ms | errors "
            "| app connections primary / replica1 / replica2 (peak) | Sluice CPU us/statement "
            "| queue timeouts |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for mix, label in CELLS[:a.cells]:
            for target in ("direct", "sluice"):
                r = clients["runs"][(mix, target)]
                lat = r.get("latency_ms") or {}
                errs = (r.get("queries_err") or 0) + sum((r.get("connect_errors") or {}).values())
                conns = " / ".join(str(r["conns"][n]["peak"]) for n, _ in SERVERS)
                lines.append(
                    f"| {label} | {'Sluice' if target == 'sluice' else 'direct'} | "
                    f"{r.get('clients_connected')}/{a.clients} | {fmt(r.get('qps'), '.0f')} | "
                    f"{fmt(lat.get('p50'))} | {fmt(lat.get('p99'))} | {fmt(lat.get('max'))} | "
                    f"{errs} | {conns} | {fmt(r.get('cpu_us'), '.1f')} | "
                    f"{fmt(r.get('pool_timeouts'), '.0f')} |")
        lines.append("")
        for (mix, target), r in clients["runs"].items():
            if r.get("error") or r.get("errors_by_code") or r.get("connect_errors"):
                lines.append(f"- {mix} {target}: {r.get('error') or ''} connect errors "
                             f"{r.get('connect_errors')}, statement errors "
                             f"{r.get('errors_by_code')}, first: "
                             f"{(r.get('first_errors') or [])[:2]}")
        lines += [
            "",
            "Through Sluice, statements per backend over the run (sluice_backend_statements_"
            "total): "
            + "; ".join(f"{mix}: " + ", ".join(f"{n} {v:.0f}" for n, v in
                                                clients["runs"][(mix, 'sluice')]
                                                .get("backend_stmts", {}).items())
                        for mix, _ in CELLS[:a.cells]) + ".",
            "",
        ]
    if idle:
        r = idle
        per = r["per_client_kib"]

        def goal(kib):
            return "-" if kib is None else ("met" if kib < GOAL_MIB * 1024 else "not met")

        lines += [
            f"## 2. Resident memory with {a.idle_clients} idle clients",
            "",
            f"`tests/tools/mysql_load.py --idle --clients {a.idle_clients} --duration "
            f"{IDLE_SECONDS} --connect-rate {IDLE_RATE}`: each client logs in, runs `SELECT 1`, "
            "stays idle, and runs `SELECT 1` again at the end. Sluice's VmRSS "
            "(/proc/PID/status) 1 s after it started (baseline, before any client) and every "
            f"{RSS_SAMPLE_S} s until the load client ended. *Idle*: the peak of the samples "
            "taken while every client was connected and idle (from the end of the opening to "
            "the end of the idle time, per the load client's own timings); per idle client = "
            f"(idle peak - baseline) / {a.idle_clients}. *Whole run*: VmHWM, the kernel's own "
            "peak, which includes the opening and the closing burst (every client's last "
            "`SELECT 1` and its disconnect at the same moment). Sluice's open-file limit: "
            f"{r['nofile']}.",
            "",
            "| clients connected | alive at the end | errors | baseline RSS MiB "
            "| idle peak RSS MiB | KiB per idle client | whole-run peak (VmHWM) MiB "
            "| RSS 2 s after they left MiB | goal under 200 MiB: idle / whole run |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {r.get('clients_connected')}/{a.idle_clients} | {r.get('idle_alive')} | "
            f"{(r.get('queries_err') or 0) + sum((r.get('connect_errors') or {}).values())} | "
            f"{mib(r['base_kib'])} | {mib(r['peak_kib'])} ({r['idle_samples']} samples) | "
            f"{fmt(per, '.2f')} | {mib(r['hwm_kib'])} | {mib(r['after_kib'])} | "
            f"**{goal(r['peak_kib'])} / {goal(r['hwm_kib'])}** |",
            "",
        ]
        if r.get("error") or r.get("first_errors"):
            lines += [f"Errors: {r.get('error') or ''} {(r.get('first_errors') or [])[:3]}", ""]
    if run3:
        shown, text, rc = run3
        lines += ["## 3. bench/run.py, 16 threads, oltp_point_select", "",
                  f"`{shown}` (exit status {rc}). run.py's own topology use: sysbench "
                  "against the primary directly, through HAProxy (mode tcp, primary only) and "
                  "through a Sluice with the primary only, default workers (one per core) and "
                  "default `[pool]` (transaction mode, 32 per backend per worker):", ""]
        if text:
            body = text.splitlines()
            if body and body[0].startswith("# "):
                body = body[1:]
            while body and not body[0].strip():
                body = body[1:]
            lines += body + [""]
        else:
            lines += ["**No result**: bench/run.py wrote no table (see its output above).", ""]
    lines += ["## Sluice's exit status and logs", ""]
    if not DAEMONS:
        lines += ["No Sluice of parts 1-2 ran.", ""]
    for name, rc, bad, warn in DAEMONS:
        text = (f"- `{name}`: exit status {rc}; {len(bad)} error/critical/sanitizer line(s), "
                f"{len(warn)} warning(s)")
        lines.append(text + ("" if bad or warn else "."))
        for l in (bad[:5] + warn[:3]):
            lines.append(f"    - `{l[:300]}`")
    lines += ["", "## What this shows", "", "_(to be written)_", "",
              "## Per run", "", "The script's own log lines, in the order they ran.", "",
              "```"] + DETAILS + ["```", ""]
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=20, help="part 1: measured seconds per run")
    ap.add_argument("--clients", type=int, default=1000, help="part 1: concurrent clients")
    ap.add_argument("--idle-clients", type=int, default=10000, help="part 2: idle clients")
    ap.add_argument("--cells", type=int, default=2, choices=(1, 2),
                    help="part 1: 1 = read=100 only, 2 = and read=90,write=10")
    ap.add_argument("--run-seconds", type=int, default=10, help="part 3: run.py --seconds")
    ap.add_argument("--run-rounds", type=int, default=3, help="part 3: run.py --rounds")
    ap.add_argument("--parts", default="1,2,3")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/src/sluice"))
    ap.add_argument("--out")
    a = ap.parse_args()
    a.binary = os.path.abspath(a.binary)
    parts = set(a.parts.split(","))
    cmdline = " ".join(["bench/pool_bench.py"] + sys.argv[1:])
    started = datetime.datetime.now()
    t0 = time.monotonic()
    built = build_info(a.binary)
    host = machine()
    procs = []
    clients = idle = run3 = None
    if parts & {"1", "2"}:
        try:
            topo("up")
            ensure_monitor_user()
            restore_primary()  # a run that stopped half-way may have left replica1 the primary
            topo("sql", "primary", "-e",
                 "DROP DATABASE IF EXISTS sbtest; CREATE DATABASE sbtest")
            sysbench("oltp_point_select", PRIMARY_PORT, 1, "disable", 1, 1, TABLE_SIZE,
                     "prepare")
            topo("wait-sync")  # the replicas have the table before anything reads it
            if "1" in parts:
                log(f"part 1: {a.clients} clients")
                clients = part_clients(a, procs)
            if "2" in parts:
                log(f"part 2: {a.idle_clients} idle clients")
                idle = part_idle(a, procs)
        finally:
            for p in reversed(procs):
                p.stop()  # load clients first (started last), then Sluice
            topo("down")  # as bench/run.py leaves it
    if "3" in parts:
        run3 = part_run(a)
    lines = report(a, cmdline, started, host, built, clients, idle, run3)
    lines += [f"Whole run: {(time.monotonic() - t0) / 60:.1f} min.", ""]
    write_results("\n".join(lines), a.out, "-pool")
    bad = [d for d in DAEMONS if d[1] not in (0, "not checked by run.py") or d[2]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
