#!/usr/bin/python3
"""Sluice benchmark: sysbench against the primary directly, through HAProxy (mode tcp, the
layer-4 baseline) and through Sluice, interleaved in one run on one machine.

For each workload (oltp_point_select, oltp_read_only), thread count and prepared-statement
mode it records QPS, p95 latency and the CPU time (utime + stime from /proc/PID/stat) each
proxy process used per 10,000 queries, then writes a Markdown table with the ratios
Sluice/direct and Sluice/HAProxy to bench/results/.

Usage: bench/run.py [--seconds N] [--rounds N] [--threads 4,16] [--out FILE]
Needs: the built daemon (build/src/sluice), and what scripts/install-deps.sh installs.
The topology runs on its own ports and directory (23307-23309, /tmp/sluice-bench-topo).
bench/split.py (read/write splitting over the replicas) reuses this module's functions.
"""
import argparse
import datetime
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOPO_DIR = "/tmp/sluice-bench-topo"
PRIMARY_PORT, REDIS_PORT = 23307, 26380
REPLICA_PORTS = {"replica1": PRIMARY_PORT + 1, "replica2": PRIMARY_PORT + 2}  # topology.sh
HAPROXY_PORT, SLUICE_PORT, SLUICE_ADMIN = 23406, 23033, 23090
TICKS = os.sysconf("SC_CLK_TCK")


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def topo(*args):
    env = dict(os.environ, SLUICE_TOPO_DIR=TOPO_DIR, SLUICE_TOPO_PORT=str(PRIMARY_PORT),
               SLUICE_REDIS_PORT=str(REDIS_PORT))
    sh("bash", os.path.join(ROOT, "tests/fixtures/topology.sh"), *args, env=env)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def wait_port(port, proc, what):
    import socket
    for _ in range(100):
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not listen on {port}")


def start_haproxy(servers=(("primary", PRIMARY_PORT),)):
    """HAProxy in mode tcp on HAPROXY_PORT, round-robin (per connection) over servers."""
    cfg = os.path.join(TOPO_DIR, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(f"""global
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen mysql
    bind 127.0.0.1:{HAPROXY_PORT}
    balance roundrobin
""")
        for name, port in servers:
            f.write(f"    server {name} 127.0.0.1:{port}\n")
    p = subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        wait_port(HAPROXY_PORT, p, "haproxy")
    except SystemExit:
        p.kill()  # did not come up: do not leave it behind
        raise
    return p


def start_sluice(binary, replicas=()):
    """Sluice with the primary and, as role = "replica", the (name, port) pairs in replicas."""
    replica_backends = "".join(f"""
[[backends]]
name = "{name}"
host = "127.0.0.1"
port = {port}
role = "replica"
zone = "a"
""" for name, port in replicas)
    cfg = os.path.join(TOPO_DIR, "sluice-bench.toml")
    with open(cfg, "w") as f:
        f.write(f"""[[listeners]]
name = "mysql"
address = "127.0.0.1"
port = {SLUICE_PORT}

[[backends]]
name = "primary"
host = "127.0.0.1"
port = {PRIMARY_PORT}
role = "primary"
{replica_backends}
[[users]]
name = "app"
password = "app"

[admin]
address = "127.0.0.1"
port = {SLUICE_ADMIN}

[logging]
level = "warn"
""")
    p = subprocess.Popen([binary, "--config", cfg], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(TOPO_DIR, "sluice-bench.log"), "w"))
    try:
        wait_port(SLUICE_PORT, p, "sluice")
    except SystemExit:
        p.kill()  # did not come up: do not leave it behind
        raise
    return p


def sysbench(test, port, threads, ps, seconds, tables, rows, action="run", extra=()):
    cmd = ["sysbench", "--db-driver=mysql", "--mysql-host=127.0.0.1", f"--mysql-port={port}",
           "--mysql-user=app", "--mysql-password=app", "--mysql-db=sbtest",
           f"--tables={tables}", f"--table-size={rows}", f"--threads={threads}",
           f"--time={seconds}", f"--db-ps-mode={ps}", "--report-interval=0", *extra, test, action]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"sysbench failed ({' '.join(cmd)}):\n{out.stdout}\n{out.stderr}")
    return out.stdout


def parse(out):
    q = int(re.search(r"queries:\s+(\d+)", out).group(1))
    qps = float(re.search(r"queries:\s+\d+\s+\(([\d.]+) per sec", out).group(1))
    p95 = float(re.search(r"95th percentile:\s+([\d.]+)", out).group(1))
    errs = int(re.search(r"ignored errors:\s+(\d+)", out).group(1))
    return q, qps, p95, errs


def measure(port, pid, test, threads, ps, a, extra=()):
    """One sysbench run against port; pid is the proxy's (None: direct). Returns
    (queries, qps, p95 ms, proxy CPU s per 10k queries or None, ignored errors)."""
    before = cpu_seconds(pid) if pid else 0.0
    q, qps, p95, errs = parse(sysbench(test, port, threads, ps, a.seconds, a.tables, a.rows,
                                       extra=extra))
    cpu = (cpu_seconds(pid) - before) if pid else None
    return q, qps, p95, (cpu / q * 10000 if cpu is not None else None), errs


def median(samples):
    """The median sample by QPS (first field); of 2 samples, the upper."""
    s = sorted(samples, key=lambda x: x[0])
    return s[len(s) // 2]


def write_results(text, out, suffix=""):
    print(text)
    out = out or os.path.join(ROOT, "bench/results",
                              datetime.datetime.now().strftime("%Y-%m-%d") + suffix + ".md")
    with open(out, "w") as f:
        f.write(text)
    print(f"written to {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3, help="repeat each cell, keep the median")
    ap.add_argument("--threads", default="4,16")
    ap.add_argument("--tests", default="oltp_point_select,oltp_read_only")
    ap.add_argument("--ps", default="auto,disable")
    ap.add_argument("--tables", type=int, default=4)
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/src/sluice"))
    ap.add_argument("--out")
    a = ap.parse_args()

    topo("up")
    haproxy = start_haproxy()
    sluice = start_sluice(a.binary)
    try:
        topo("sql", "primary", "-e", "DROP DATABASE IF EXISTS sbtest; CREATE DATABASE sbtest")
        sysbench("oltp_read_only", PRIMARY_PORT, 4, "disable", 1, a.tables, a.rows, "prepare")
        topo("wait-sync")
        rows = []
        targets = [("direct", PRIMARY_PORT, None), ("haproxy", HAPROXY_PORT, haproxy.pid),
                   ("sluice", SLUICE_PORT, sluice.pid)]
        for test in a.tests.split(","):
            for threads in [int(t) for t in a.threads.split(",")]:
                for ps in a.ps.split(","):
                    cell = {}
                    samples = {name: [] for name, _, _ in targets}
                    for _ in range(a.rounds):
                        for name, port, pid in targets:  # interleaved
                            q, qps, p95, per10k, errs = measure(port, pid, test, threads, ps, a)
                            samples[name].append((qps, p95, per10k, errs))
                            print(f"{test} t={threads} ps={ps} {name}: {qps:.0f} qps p95 "
                                  f"{p95} ms cpu/10k {per10k if per10k is None else round(per10k, 3)}"
                                  f" ignored errors {errs}", flush=True)
                    for name in samples:
                        cell[name] = median(samples[name])
                    rows.append((test, threads, ps, cell))
    finally:
        for p in (sluice, haproxy):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=20)
        topo("down")  # the servers it started, stopped by pid

    lines = [
        f"# Sluice benchmark, {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        "",
        f"sysbench {a.seconds} s per cell, {a.tables} tables x {a.rows} rows, "
        f"{os.cpu_count()} cores shared by sysbench, MariaDB and the proxy; targets run "
        f"interleaved; median of {a.rounds} round(s). CPU = utime+stime of the proxy process "
        f"per 10,000 queries.",
        "",
        "| workload | threads | ps-mode | direct QPS | HAProxy QPS | Sluice QPS | Sluice/direct "
        "| Sluice/HAProxy | p95 ms direct / HAProxy / Sluice | CPU s/10k HAProxy | CPU s/10k Sluice "
        "| CPU Sluice/HAProxy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for test, threads, ps, c in rows:
        d, h, s = c["direct"], c["haproxy"], c["sluice"]
        lines.append(
            f"| {test} | {threads} | {ps} | {d[0]:.0f} | {h[0]:.0f} | {s[0]:.0f} | "
            f"{s[0] / d[0]:.2f} | {s[0] / h[0]:.2f} | {d[1]} / {h[1]} / {s[1]} | "
            f"{h[2]:.3f} | {s[2]:.3f} | {s[2] / h[2]:.2f} |")
    write_results("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    main()
