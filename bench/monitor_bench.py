#!/usr/bin/python3
"""Sluice monitor benchmark (issue #8, "Benchmark"): in one run on one machine, on the bench
topology of bench/run.py (ports 23307-23309, /tmp/sluice-bench-topo):

1. Near replica share: a Sluice with [monitor] (interval 500 ms) reaches each replica through a
   delay relay of its own (tests/fixtures/relay.sh: replica1 0 ms, replica2 5 ms one-way, so
   the relay's own cost is the same on both sides). sysbench oltp_read_only --skip_trx=on,
   16 threads, through Sluice; the share of reads each server executed (Com_select deltas read
   on each server's own port). Then the delays are swapped (`relay.sh set`), the script waits
   until /backends shows the RTTs swapped, and runs again. The two layouts alternate, round
   after round.
2. Write-resume after promotion: a Sluice with [monitor] (interval 500 ms, then 250 ms) and a
   writer (pymysql, an INSERT every 5 ms through Sluice). The primary is stopped, replica1
   promoted at once (`topology.sh promote replica1`), and replica1's @@read_only polled
   directly every 5 ms: the time from read_only = 0 to the writer's first successful write
   after it, and the writer's pause (the longest gap between two successful writes). Then the
   old primary is started again and promoted back with the writer still running (a planned
   switchover: measured the same way, polling the primary). REPS repetitions per interval.
3. Consistency levels: an autocommit workload of 9 point selects and 1 UPDATE per event (a
   sysbench Lua script generated at run time), 16 threads, through three Sluice daemons with
   [monitor] and `[routing] consistency` = eventual, session, global, and through HAProxy
   (mode tcp to the primary only: HAProxy cannot split reads from writes) as the CPU
   baseline, interleaved round after round. QPS, the share of reads the replicas answered,
   the pipelined MASTER_GTID_WAIT calls and their outcomes, and each proxy's CPU per query.

The parts run in the order 1, 3, 2: the failovers last, so that parts 1 and 3 measure the
original layout. Results: Markdown in bench/results/YYYY-MM-DD-monitor.md (or --out FILE);
a rerun overwrites the file.

Usage: bench/monitor_bench.py [--seconds 10] [--rounds 3] [--reps 3] [--threads 16]
                              [--binary build/src/sluice] [--out FILE] [--parts 1,2,3]
Needs what bench/run.py needs, plus pymysql for /usr/bin/python3. Stops everything it
started (by pid) and the bench topology when done.
"""
import argparse
import collections
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pymysql

from run import (HAPROXY_PORT, PRIMARY_PORT, REDIS_PORT, REPLICA_PORTS, ROOT, TOPO_DIR,
                 cpu_seconds, median, parse, start_haproxy, sysbench, topo, wait_port,
                 write_results)
from split import build_info, stop

SERVERS = [("primary", PRIMARY_PORT)] + sorted(REPLICA_PORTS.items())
R1, R2 = REPLICA_PORTS["replica1"], REPLICA_PORTS["replica2"]
RELAY_SH = os.path.join(ROOT, "tests/fixtures/relay.sh")
RELAY_DIR = os.path.join(TOPO_DIR, "relays")
RELAY_PORTS = {"relay1": 23411, "relay2": 23412}  # in front of replica1, replica2
SLUICE_BASE, ADMIN_BASE = 23040, 23095  # daemons of this script: base + i
FAR_MS = 5
ALL_LOGS = []  # (what, log path) of every daemon started
DETAILS = []  # the per-cell log lines, repeated at the end of the results

LUA = r"""
-- 9 autocommit point selects and 1 autocommit UPDATE per event on the sbtest tables
sysbench.cmdline.options = {
  tables = {"Number of tables", 4},
  table_size = {"Rows per table", 10000},
}
function thread_init()
  drv = sysbench.sql.driver()
  con = drv:connect()
end
function thread_done()
  con:disconnect()
end
function event()
  for i = 1, 9 do
    con:query(string.format("SELECT c FROM sbtest%d WHERE id = %d",
      sysbench.rand.uniform(1, sysbench.opt.tables),
      sysbench.rand.default(1, sysbench.opt.table_size)))
  end
  con:query(string.format("UPDATE sbtest%d SET k = k + 1 WHERE id = %d",
    sysbench.rand.uniform(1, sysbench.opt.tables),
    sysbench.rand.default(1, sysbench.opt.table_size)))
end
"""


def log(msg, detail=False):
    line = f"[{datetime.datetime.now().strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    if detail:
        DETAILS.append(line)


# ------------------------------------------------------------------ servers and counters ----

def connect(port, **kw):
    return pymysql.connect(host="127.0.0.1", port=port, user="app", password="app",
                           autocommit=True, connect_timeout=5, read_timeout=60,
                           write_timeout=60, **kw)


def counters():
    """{server: (Com_select, Master_gtid_wait_count)}, read directly on each server (SHOW
    GLOBAL STATUS runs no SELECT)."""
    out = {}
    for name, port in SERVERS:
        c = connect(port)
        try:
            with c.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN "
                            "('Com_select', 'Master_gtid_wait_count')")
                v = dict(cur.fetchall())
            out[name] = (int(v["Com_select"]), int(v["Master_gtid_wait_count"]))
        finally:
            c.close()
    return out


def reads_delta(before, after):
    """{server: (SELECTs of clients, MASTER_GTID_WAIT calls)} between two counters()."""
    out = {}
    for name, _ in SERVERS:
        waits = after[name][1] - before[name][1]
        out[name] = (after[name][0] - before[name][0] - waits, waits)
    return out


def current_primary():
    try:
        with open(os.path.join(TOPO_DIR, "current-primary")) as f:
            return f.read().strip()
    except OSError:
        return "primary"


def running(name):
    try:
        with open(os.path.join(TOPO_DIR, name, "mysqld.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def ensure_monitor_user():
    """topology.sh `up` creates the monitor's account on a new topology; a bench topology
    created before issue #8 lacks it (the same statements, idempotent)."""
    topo("sql", current_primary(), "-e", """
CREATE USER IF NOT EXISTS 'sluice_monitor'@'%' IDENTIFIED VIA mysql_native_password
    USING PASSWORD('monitor');
GRANT BINLOG MONITOR, SLAVE MONITOR ON *.* TO 'sluice_monitor'@'%';
GRANT CREATE, INSERT, UPDATE, DELETE, SELECT ON sluice.* TO 'sluice_monitor'@'%';""")


def restore_primary():
    """The original layout: `primary` running and the primary."""
    if not running("primary"):
        topo("start", "primary")
    if current_primary() != "primary":
        topo("promote", "primary")
    topo("wait-sync")


# --------------------------------------------------------------------------- relays ----

def relay(*args):
    p = subprocess.run(["bash", RELAY_SH, *args], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, SLUICE_RELAY_DIR=RELAY_DIR))
    if p.returncode != 0:
        raise RuntimeError(f"relay.sh {' '.join(args)}: {(p.stdout + p.stderr).strip()[-1500:]}")
    return p.stdout.strip()


# --------------------------------------------------------------------------- Sluice ----

class Sluice:
    """A Sluice daemon of this script: its own config, log, port and admin port."""

    def __init__(self, binary, name, index, backends, interval_ms=500, routing="",
                 level="warn"):
        self.name, self.port, self.admin = name, SLUICE_BASE + index, ADMIN_BASE + index
        self.config = os.path.join(TOPO_DIR, f"monitor-bench-{name}.toml")
        self.log = os.path.join(TOPO_DIR, f"monitor-bench-{name}.log")
        timeout_ms = max(500, 2 * interval_ms)
        text = f"""connect_timeout_ms = 1000
shutdown_grace_ms = 5000

[[listeners]]
name = "mysql"
address = "127.0.0.1"
port = {self.port}
"""
        for bname, bport, role in backends:
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

[monitor]
user = "sluice_monitor"
password = "monitor"
interval_ms = {interval_ms}
timeout_ms = {timeout_ms}

[routing]
{routing}

[admin]
address = "127.0.0.1"
port = {self.admin}

[logging]
level = "{level}"
"""
        with open(self.config, "w") as f:
            f.write(text)
        self.proc = subprocess.Popen([binary, "--config", self.config],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        ALL_LOGS.append((name, self.log))
        try:
            wait_port(self.port, self.proc, f"sluice {name}")
            deadline = time.monotonic() + 15
            while self.doc()["topology_version"] < 1:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sluice {name}: no monitor snapshot within 15 s")
                time.sleep(0.1)
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise

    @property
    def pid(self):
        return self.proc.pid

    def doc(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/backends", timeout=5) as r:
            return json.loads(r.read().decode())

    def backends(self):
        return {b["name"]: b for b in self.doc()["backends"]}

    def metrics(self):
        """{(name, frozenset(labels)): value} of /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r'^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$', line)
            if m:
                labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
                out[(m.group(1), labels)] = float(m.group(3))
        return out

    def causal_waits(self):
        m = self.metrics()
        out = {o: m.get(("sluice_causal_waits_total", frozenset({("outcome", o)})), 0.0)
               for o in ("ok", "timeout", "error", "shared")}
        # How long the waits took (sending the wait to its answer): sluice_causal_wait_seconds.
        out["wait_s"] = m.get(("sluice_causal_wait_seconds_sum", frozenset()), 0.0)
        out["wait_n"] = m.get(("sluice_causal_wait_seconds_count", frozenset()), 0.0)
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if rc != 0:
            log(f"WARNING: sluice {self.name} exited with {rc}")
        return rc


def wait_until(pred, timeout, step=0.1):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred():
            return time.monotonic() - start
        time.sleep(step)
    return None


# -------------------------------------------------------------- 1. near replica share ----

def part_near(a, procs):
    r1 = relay("start", "relay1", str(RELAY_PORTS["relay1"]), str(R1), "0")
    r2 = relay("start", "relay2", str(RELAY_PORTS["relay2"]), str(R2), str(FAR_MS))
    s = Sluice(a.binary, "near", 0, [("primary", PRIMARY_PORT, "primary"),
                                     ("replica1", int(r1), "replica"),
                                     ("replica2", int(r2), "replica")])
    procs.append(s)
    layouts = [("replica1", "replica2"), ("replica2", "replica1")]  # (near, far)
    samples = {near: [] for near, _ in layouts}
    reads = {near: collections.Counter() for near, _ in layouts}
    queries = dict.fromkeys(samples, 0)
    rtts, settle = {near: [] for near, _ in layouts}, []
    current = "replica1"

    def set_layout(near):
        nonlocal current
        far = "replica2" if near == "replica1" else "replica1"
        relay("set", "relay1" if near == "replica1" else "relay2", "delay_ms=0")
        relay("set", "relay1" if far == "replica1" else "relay2", f"delay_ms={FAR_MS}")

        def swapped():
            b = s.backends()
            return (b[far]["rtt_ms"] or 0) > (b[near]["rtt_ms"] or 0) + FAR_MS
        took = wait_until(swapped, 30)
        if took is None:
            raise RuntimeError(f"/backends did not show {near} nearer within 30 s: {s.backends()}")
        current = near
        return took

    took = set_layout("replica1")
    log(f"part 1: replica1 near, RTTs settled after {took:.1f} s")
    for rnd in range(a.rounds):
        for near, far in layouts:
            if current != near:
                took = set_layout(near)
                settle.append(took)
                log(f"part 1: delays swapped, /backends showed it after {took:.1f} s")
            b = s.backends()
            rtts[near].append((b[near]["rtt_ms"], b[far]["rtt_ms"]))
            before = counters()
            t0 = cpu_seconds(s.pid)
            out = sysbench("oltp_read_only", s.port, a.threads, "disable", a.seconds, a.tables,
                           a.rows, extra=("--skip_trx=on",))
            cpu = cpu_seconds(s.pid) - t0
            d = reads_delta(before, counters())
            q, qps, p95, errs = parse(out)
            for name, _ in SERVERS:
                reads[near][name] += d[name][0]
            queries[near] += q
            samples[near].append((qps, p95, cpu / q * 10000, errs))
            total = sum(v[0] for v in d.values()) or 1
            log(f"part 1 round {rnd + 1} near={near}: {qps:.0f} qps, reads " +
                " / ".join(f"{n} {100 * d[n][0] / total:.1f}%" for n, _ in SERVERS) +
                f" (Com_select {total}, sysbench queries {q}), RTT near/far "
                f"{rtts[near][-1][0]} / {rtts[near][-1][1]} ms", detail=True)
    s.stop()
    procs.remove(s)
    relay("stop", "relay1")
    relay("stop", "relay2")
    return {"samples": samples, "reads": reads, "queries": queries, "rtts": rtts,
            "settle": settle}


# ------------------------------------------------------------- 2. write-resume ----

class Client(threading.Thread):
    """One connection through Sluice running SQL every 5 ms; records the time of each success
    and each error (MySQL error code)."""

    def __init__(self, port, sql):
        super().__init__(daemon=True)
        self.port, self.sql = port, sql
        self.halt = threading.Event()
        self.ok, self.errors, self.drops = [], [], 0
        self.conn = connect(port, database="sbtest")

    def run(self):
        n = 0
        while not self.halt.is_set():
            n += 1
            try:
                with self.conn.cursor() as cur:
                    cur.execute(self.sql.format(n=n))
                    cur.fetchall()
                self.ok.append(time.monotonic())
            except pymysql.err.OperationalError as e:
                self.errors.append((time.monotonic(), e.args[0] if e.args else None))
                if e.args and e.args[0] in (2006, 2013, 2014):  # the client's connection died
                    self.drops += 1
                    try:
                        self.conn = connect(self.port, database="sbtest")
                    except pymysql.err.Error:
                        time.sleep(0.05)
            except pymysql.err.Error as e:
                self.errors.append((time.monotonic(), e.args[0] if e.args else None))
            time.sleep(0.005)


def poll_writable(port, timeout=120):
    """Polls @@read_only on port every 5 ms (reconnecting as needed) in a thread; returns
    (thread, result dict): result['at'] = first time it read 0."""
    result = {}

    def run():
        deadline = time.monotonic() + timeout
        c = None
        while time.monotonic() < deadline and "stop" not in result:
            try:
                if c is None:
                    c = connect(port)
                with c.cursor() as cur:
                    cur.execute("SELECT @@read_only")
                    if cur.fetchone()[0] == 0:
                        result["at"] = time.monotonic()
                        break
            except pymysql.err.Error:
                c = None
            time.sleep(0.005)
        if c is not None:
            c.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def first_after(client, t, timeout=60):
    """Time of the client's first success after t (waits up to timeout), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        after = [x for x in list(client.ok) if x > t]
        if after:
            return after[0]
        time.sleep(0.01)
    return None


def pause(client, start, end):
    """(longest gap between the client's consecutive successes around [start, end], error
    codes it got in [start, end])."""
    ok = sorted(list(client.ok))
    before = [x for x in ok if x <= start]
    after = [x for x in ok if x > end]
    points = before[-1:] + [x for x in ok if start < x <= end] + after[:1]
    gap = max((y - x for x, y in zip(points, points[1:])), default=None)
    errs = collections.Counter(code for x, code in list(client.errors) if start <= x <= end)
    return gap, errs


def episode(kind, interval, rep, writer, reader, start, writable_at):
    first = first_after(writer, writable_at)
    row = {"event": kind, "interval": interval, "rep": rep, "to_writable": writable_at - start,
           "resume": None if first is None else first - writable_at}
    end = first if first is not None else time.monotonic()
    row["w_gap"], row["w_errs"] = pause(writer, start, end)
    time.sleep(0.1)  # the reader's next success after the window
    row["r_gap"], row["r_errs"] = pause(reader, start, end)
    log(f"part 2 interval {interval} rep {rep} {kind}: ->read_only=0 {row['to_writable']:.2f} s, "
        f"read_only=0->first write "
        f"{'-' if first is None else round(row['resume'] * 1000)} ms, writer pause "
        f"{row['w_gap']} s errors {dict(row['w_errs'])}; reader pause {row['r_gap']} s errors "
        f"{dict(row['r_errs'])}", detail=True)
    return row


def part_failover(a, procs):
    c = connect(PRIMARY_PORT)
    with c.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS sbtest.failover_writes "
                    "(id BIGINT AUTO_INCREMENT PRIMARY KEY, n INT)")
    c.close()
    topo("wait-sync")
    rows, summaries = [], []
    for idx, interval in enumerate((500, 250)):
        s = Sluice(a.binary, f"failover{interval}", 1 + idx,
                   [("primary", PRIMARY_PORT, "primary"), ("replica1", R1, "replica"),
                    ("replica2", R2, "replica")],
                   interval_ms=interval, routing="failover_hold_ms = 30000", level="info")
        procs.append(s)
        writer = Client(s.port, "INSERT INTO failover_writes (n) VALUES ({n})")
        reader = Client(s.port, "/* sluice: consistency=eventual */ "
                                "SELECT n FROM failover_writes ORDER BY id DESC LIMIT 1")
        writer.start()
        reader.start()
        try:
            for rep in range(1, a.reps + 1):
                time.sleep(1.0)
                # failover: the primary stops, replica1 is promoted at once
                watcher, res = poll_writable(R1)
                t_stop = time.monotonic()
                topo("stop", "primary")
                topo("promote", "replica1")
                watcher.join(60)
                if "at" not in res:
                    raise RuntimeError("replica1 never showed read_only = 0")
                row = episode("failover", interval, rep, writer, reader, t_stop, res["at"])
                rows.append(row)
                if row["resume"] is None:
                    raise RuntimeError(f"no write succeeded through Sluice after the promotion; "
                                       f"/backends {s.backends()}")
                # the old primary back (the fixture makes it a replica of replica1), then
                # promoted back with both up: a planned switchover
                topo("start", "primary")
                if wait_until(lambda: s.backends()["primary"]["state"] == "up", 20) is None:
                    log(f"WARNING: Sluice did not see the old primary up within 20 s: "
                        f"{s.backends()['primary']}")
                time.sleep(1.0)
                watcher, res = poll_writable(PRIMARY_PORT)
                t_sw = time.monotonic()
                topo("promote", "primary")
                watcher.join(60)
                if "at" not in res:
                    raise RuntimeError("primary never showed read_only = 0 after promote primary")
                row = episode("switch back", interval, rep, writer, reader, t_sw, res["at"])
                rows.append(row)
                if row["resume"] is None:
                    raise RuntimeError(f"no write through Sluice after the switch back; "
                                       f"/backends {s.backends()}")
                topo("wait-sync")
        finally:
            for cl in (writer, reader):
                cl.halt.set()
                cl.join(30)
            m = s.metrics() if s.proc.poll() is None else {}
            failovers = m.get(("sluice_failovers_total", frozenset()), None)
            summ = {"interval": interval, "failovers": failovers}
            for name, cl in (("writer", writer), ("reader", reader)):
                summ[name] = (len(cl.ok), len(cl.errors), cl.drops)
            log(f"part 2 interval {interval}: {summ}")
            summaries.append(summ)
            s.stop()
            procs.remove(s)
    return rows, summaries


# ------------------------------------------------------------ 3. consistency levels ----

def part_consistency(a, procs, lua):
    haproxy = start_haproxy()  # mode tcp, the primary only
    procs.append(haproxy)
    targets = [("haproxy", HAPROXY_PORT, haproxy.pid, None)]
    for i, level in enumerate(("eventual", "session", "global")):
        s = Sluice(a.binary, level, 3 + i, [("primary", PRIMARY_PORT, "primary"),
                                            ("replica1", R1, "replica"),
                                            ("replica2", R2, "replica")],
                   routing=f'consistency = "{level}"')
        procs.append(s)
        targets.append((level, s.port, s.pid, s))
    samples = {name: [] for name, *_ in targets}
    sums = {name: collections.Counter() for name, *_ in targets}
    for rnd in range(a.rounds):
        for name, port, pid, s in targets:  # interleaved
            before = counters()
            w0 = s.causal_waits() if s else None
            c0 = cpu_seconds(pid)
            out = sysbench(lua, port, a.threads, "disable", a.seconds, a.tables, a.rows)
            cpu = cpu_seconds(pid) - c0
            d = reads_delta(before, counters())
            w1 = s.causal_waits() if s else None
            q, qps, p95, errs = parse(out)
            sb_reads = int(re.search(r"read:\s+(\d+)", out).group(1))
            fallback = (w1["timeout"] - w0["timeout"] + w1["error"] - w0["error"]) if s else 0
            rep_sel = d["replica1"][0] + d["replica2"][0]
            answered_rep = rep_sel - fallback
            answered = rep_sel + d["primary"][0] - fallback
            c = sums[name]
            c["queries"] += q
            c["cpu"] += cpu
            c["sb_reads"] += sb_reads
            c["rep_answered"] += answered_rep
            c["answered"] += answered
            c["waits"] += d["replica1"][1] + d["replica2"][1]
            c["r1"] += d["replica1"][0]
            c["r2"] += d["replica2"][0]
            if s:
                for o in ("ok", "timeout", "error", "shared", "wait_s", "wait_n"):
                    c["w_" + o] += w1[o] - w0[o]
            samples[name].append((qps, p95, cpu / q * 10000, errs))
            outcomes = {o: w1[o] - w0[o] for o in w1} if s else None
            log(f"part 3 round {rnd + 1} {name}: {qps:.0f} qps p95 {p95} ms, cpu/10k "
                f"{cpu / q * 10000:.3f}, reads on replicas "
                f"{100 * answered_rep / max(answered, 1):.1f}% (primary {d['primary'][0]}, "
                f"replica1 {d['replica1'][0]}, replica2 {d['replica2'][0]}, sysbench reads "
                f"{sb_reads}), MASTER_GTID_WAIT {d['replica1'][1] + d['replica2'][1]}, waits "
                f"{outcomes}, ignored errors {errs}", detail=True)
    for name, port, pid, s in reversed(targets):
        if s:
            s.stop()
            procs.remove(s)
    return samples, sums


# ----------------------------------------------------------------------------- report ----

def fmt_gap(g):
    return "-" if g is None else f"{g:.2f}"


def fmt_errs(errs):
    return ", ".join(f"{k} x{v}" for k, v in sorted(errs.items())) if errs else "none"


def monitor_excerpt():
    """The failover250 daemon's `monitor:` lines up to its second change of primary."""
    path = os.path.join(TOPO_DIR, "monitor-bench-failover250.log")
    out, changes = [], 0
    try:
        with open(path) as f:
            for line in f:
                if " monitor: " in line:
                    out.append(line.rstrip())
                    if "the primary is now" in line:
                        changes += 1
                        if changes == 2:
                            break
    except OSError:
        pass
    return out


def log_findings():
    """warning/error lines of every daemon's log (first few each); the failover daemons'
    monitor lines are expected there (a backend down, a new primary) and left out."""
    out = []
    for name, path in ALL_LOGS:
        try:
            with open(path) as f:
                lines = [l.rstrip() for l in f
                         if re.search(r"^\S+ (warn|warning|error|critical) ", l)]
        except OSError:
            continue
        if name.startswith("failover"):
            lines = [l for l in lines if " monitor: " not in l]
        if lines:
            out.append((name, len(lines), lines[:8]))
    return out


def report(a, cmdline, started, built, near, fail, cons):
    lines = [
        f"# Sluice monitor benchmark (issue #8), {started.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"Command: `{cmdline}`",
        "",
        f"Machine: {os.cpu_count()} shared cores (a VM); the three MariaDB servers, sysbench, "
        "the proxies, the delay relays and the Python clients all on one host, over loopback. "
        f"{built}. sysbench {a.seconds} s per cell, {a.tables} tables x {a.rows} rows, "
        f"{a.threads} threads, text protocol (`--db-ps-mode=disable`); cells interleaved, "
        f"median of {a.rounds} round(s) by QPS. CPU = utime+stime of the proxy process "
        "(all its threads, the monitor's included) per 10,000 queries.",
        "",
    ]
    if near:
        lines += [
            "## 1. Near replica share",
            "",
            "Sluice with `[monitor]` (interval 500 ms) reaching each replica through its own "
            f"delay relay (`tests/fixtures/relay.sh`): near 0 ms, far {FAR_MS} ms one-way; "
            "`oltp_read_only --skip_trx=on` through Sluice. Reads per server: Com_select delta "
            "on each server's own port, summed over the rounds. Between cells the delays are "
            "swapped with `relay.sh set` and the cell waits until /backends shows the far "
            f"replica's RTT more than {FAR_MS} ms above the near one's "
            f"(took {', '.join(f'{x:.1f}' for x in near['settle'])} s).",
            "",
            "| near replica | QPS | p95 ms | CPU s/10k Sluice | reads primary / replica1 / "
            "replica2 | near share | RTT near / far ms (/backends, before each cell) |",
            "|---|---|---|---|---|---|---|",
        ]
        for n in ("replica1", "replica2"):
            med = median(near["samples"][n])
            r = near["reads"][n]
            t = sum(r.values()) or 1
            rtt = "; ".join(f"{x} / {y}" for x, y in near["rtts"][n])
            lines.append(f"| {n} | {med[0]:.0f} | {med[1]} | {med[2]:.3f} | "
                         f"{r['primary']} / {r['replica1']} / {r['replica2']} | "
                         f"{100 * r[n] / t:.1f}% | {rtt} |")
        lines.append("")
    if fail:
        lines += [
            "## 2. Write-resume after promotion",
            "",
            "Sluice with `[monitor]` (interval 500 ms, then 250 ms; probe timeout 1000 / 500 "
            "ms; `failures_to_open` 2; `failover_hold_ms` 30000) and a writer: one pymysql "
            "connection through Sluice, an INSERT every 5 ms. **Failover:** `topology.sh stop "
            "primary` (SIGTERM, waits for the exit), then at once `topology.sh promote "
            "replica1`. **Switch back:** the old primary started again (a replica of "
            "replica1), then `topology.sh promote primary` with both up (the fixture sets "
            "replica1 read_only first, waits for the primary to catch up, then sets it "
            "writable). The new primary's `@@read_only` is polled directly every 5 ms. "
            "*read_only=0 -> first write*: from the first poll that read 0 to the end of the "
            "writer's first successful INSERT after it (Sluice's share of the outage). *Writer "
            "pause*: the longest gap between two successful INSERTs from the stop (or the "
            "promote) to that write (what the application saw). *Errors*: MySQL error codes the "
            "writer got in that window. *Reader*: a second connection through Sluice running "
            "`/* sluice: consistency=eventual */ SELECT n FROM failover_writes ORDER BY id DESC "
            "LIMIT 1` every 5 ms: its longest gap between two successful reads across the same "
            "window, and its errors in it.",
            "",
            "| event | interval ms | rep | stop/promote -> read_only=0 s | read_only=0 -> first "
            "write ms | writer pause s | writer errors | reader pause s | reader errors |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        rows, summaries = fail
        per = collections.defaultdict(list)
        for r in rows:
            per[(r["event"], r["interval"])].append(r["resume"])
            lines.append(
                f"| {r['event']} | {r['interval']} | {r['rep']} | {r['to_writable']:.2f} | "
                f"{'-' if r['resume'] is None else round(r['resume'] * 1000)} | "
                f"{fmt_gap(r['w_gap'])} | {fmt_errs(r['w_errs'])} | {fmt_gap(r['r_gap'])} | "
                f"{fmt_errs(r['r_errs'])} |")
        lines += ["", "| event | interval ms | read_only=0 -> first write ms: min / median / max "
                  "|", "|---|---|---|"]
        for (ev, interval), v in per.items():
            v = sorted(x for x in v if x is not None)
            if v:
                lines.append(f"| {ev} | {interval} | {v[0] * 1000:.0f} / "
                             f"{v[len(v) // 2] * 1000:.0f} / {v[-1] * 1000:.0f} |")
        lines.append("")
        for m in summaries:
            f = m["failovers"]
            lines.append(
                f"Interval {m['interval']} ms, whole run: the writer {m['writer'][0]} INSERTs "
                f"succeeded, {m['writer'][1]} failed, {m['writer'][2]} client connections "
                f"dropped; the reader {m['reader'][0]} / {m['reader'][1]} / {m['reader'][2]}; "
                f"`sluice_failovers_total` {'?' if f is None else int(f)}.")
        lines.append("")
        excerpt = monitor_excerpt()
        if excerpt:
            lines += ["The monitor's log lines over the first failover and switch back "
                      "(interval 250 ms):", "", "```"] + excerpt + ["```", ""]
    if cons:
        samples, sums = cons
        ev = median(samples["eventual"])[0] if samples.get("eventual") else None
        lines += [
            "## 3. Consistency levels",
            "",
            f"An autocommit workload through each target, {a.threads} threads: each sysbench "
            "event runs 9 point selects (`SELECT c FROM sbtestN WHERE id = ?`) and 1 `UPDATE "
            "sbtestN SET k = k + 1 WHERE id = ?`, each its own autocommit statement (a Lua "
            "script the benchmark writes to a temporary directory). Three Sluice daemons with "
            "`[monitor]` (500 ms) and `[routing] consistency` = eventual / session / global "
            "(`causal_read_timeout_ms` 100, the default), and HAProxy in mode tcp to the "
            "primary only (HAProxy cannot split reads from writes: it is here as the CPU "
            "baseline, and all its reads run on the primary). *Reads on replicas*: SELECTs the "
            "replicas answered / all SELECTs answered, from Com_select deltas on each server "
            "minus the MASTER_GTID_WAIT calls (`Master_gtid_wait_count`), minus the reads a "
            "replica ran whose wait failed (Sluice's `sluice_causal_waits_total` timeout + "
            "error: the primary answered those again); *counted / sysbench* checks that count "
            "against the reads sysbench sent. Sums over the rounds; QPS, p95 and CPU are the "
            "median round.",
            "",
            "| target | QPS | vs eventual | p95 ms | CPU s/10k queries | CPU vs HAProxy | reads on "
            "replicas | SELECTs replica1 / replica2 | counted / sysbench reads "
            "| MASTER_GTID_WAIT per read | waits ok / timeout / error / shared | mean wait ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        h = median(samples["haproxy"])
        for name in ("haproxy", "eventual", "session", "global"):
            med = median(samples[name])
            c = sums[name]
            share = 100 * c["rep_answered"] / c["answered"] if c["answered"] else 0.0
            waits = (f"{int(c['w_ok'])} / {int(c['w_timeout'])} / {int(c['w_error'])} / "
                     f"{int(c['w_shared'])}" if name != "haproxy" else "-")
            mean_wait = (f"{1000 * c['w_wait_s'] / c['w_wait_n']:.2f}" if c["w_wait_n"]
                         else "-")
            lines.append(
                f"| {name if name == 'haproxy' else 'Sluice ' + name} | {med[0]:.0f} | "
                f"{med[0] / ev:.2f} | {med[1]} | {med[2]:.3f} | {med[2] / h[2]:.2f} | "
                f"{share:.1f}% | {c['r1']} / {c['r2']} | {c['answered'] / c['sb_reads']:.3f} | "
                f"{c['waits'] / c['sb_reads']:.3f} | {waits} | {mean_wait} |")
        # What a read-your-writes wait costs a client: each sysbench event (9 reads, 1 write)
        # of a thread takes threads / events-per-second; under `session` one read per event
        # waits for the thread's own write to reach a replica.
        def event_ms(name):
            return 1000 * a.threads / (median(samples[name])[0] / 10)

        def cpu_us_per_event(name):
            return median(samples[name])[2] / 10000 * 1e6 * 10

        s_c = sums["session"]
        s_wait = 1000 * s_c["w_wait_s"] / s_c["w_wait_n"] if s_c["w_wait_n"] else 0.0
        lines += [
            "",
            f"A thread's sysbench event (9 reads, 1 write) took {event_ms('eventual'):.1f} ms "
            f"under `eventual` and {event_ms('session'):.1f} ms under `session` (threads / "
            f"events per second), where one read per event waits for the thread's own write to "
            f"reach a replica: {s_wait:.2f} ms on average (`sluice_causal_wait_seconds`: the "
            f"replica's replication delay under this load, plus a round trip). Sluice's own CPU "
            f"per event: {cpu_us_per_event('eventual'):.0f} us under `eventual`, "
            f"{cpu_us_per_event('session'):.0f} us under `session`, "
            f"{cpu_us_per_event('global'):.0f} us under `global`.",
        ]
        g = sums["global"]
        gshare = 100 * g["rep_answered"] / g["answered"] if g["answered"] else 0.0
        gq = median(samples["global"])[0] / ev
        lines += [
            "",
            f"Goals (issue #8): under `global` at least 90% of reads on replicas: "
            f"**{gshare:.1f}%, {'met' if gshare >= 90 else 'not met'}**; QPS at least 0.9x "
            f"of `eventual`: **{gq:.2f}x, {'met' if gq >= 0.9 else 'not met'}**.",
            "",
        ]
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3, help="failovers per monitor interval")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--tables", type=int, default=4)
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--parts", default="1,2,3")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/src/sluice"))
    ap.add_argument("--out")
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    cmdline = " ".join(["bench/monitor_bench.py"] + sys.argv[1:])
    started = datetime.datetime.now()
    t0 = time.monotonic()
    built = build_info(a.binary)
    procs = []
    near = fail = cons = None
    tmp = tempfile.TemporaryDirectory(prefix="sluice-monitor-bench-")
    lua = os.path.join(tmp.name, "rw_9_1.lua")
    with open(lua, "w") as f:
        f.write(LUA)
    try:
        topo("up")
        ensure_monitor_user()
        restore_primary()  # a run that stopped half-way may have left replica1 the primary
        topo("sql", "primary", "-e", "DROP DATABASE IF EXISTS sbtest; CREATE DATABASE sbtest")
        sysbench("oltp_read_only", PRIMARY_PORT, 4, "disable", 1, a.tables, a.rows, "prepare")
        topo("wait-sync")
        if "1" in parts:
            log("part 1: near replica share")
            near = part_near(a, procs)
        if "3" in parts:
            log("part 3: consistency levels")
            cons = part_consistency(a, procs, lua)
        if "2" in parts:
            log("part 2: write-resume after promotion")
            fail = part_failover(a, procs)
    finally:
        for p in list(procs):
            if isinstance(p, Sluice):
                p.stop()
            else:
                stop([p])
        try:
            relay("stop-all")
        except Exception as e:  # reported, the rest of the clean-up goes on
            log(f"relay stop-all: {e}")
        try:
            restore_primary()
        finally:
            topo("down")
            tmp.cleanup()
    took = time.monotonic() - t0
    lines = report(a, cmdline, started, built, near, fail, cons)
    findings = log_findings()
    lines += ["## Sluice's logs", ""]
    if findings:
        for name, n, sample in findings:
            lines.append(f"`{name}`: {n} warning/error line(s), the first:")
            lines += ["", "```"] + sample + ["```", ""]
    else:
        lines += ["No warning or error line in any daemon's log (beyond the failover "
                  "daemons' monitor lines, shown above).", ""]
    lines += ["## Per cell", "", "The script's own log lines for each cell, in the order they "
              "ran (Com_select deltas per server; part 3: SELECTs minus MASTER_GTID_WAIT calls).",
              "", "```"] + DETAILS + ["```", "", f"Whole run: {took / 60:.1f} min.", ""]
    write_results("\n".join(lines), a.out, "-monitor")


if __name__ == "__main__":
    sys.exit(main())
