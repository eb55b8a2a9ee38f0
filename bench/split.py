#!/usr/bin/python3
"""Sluice read/write-split benchmark: sysbench reads against the primary directly, through
HAProxy balancing over the two replicas (mode tcp, roundrobin: the layer-4 baseline for CPU
per query) and through Sluice configured with the primary and the two replicas
(role = "replica"), so that Sluice spreads the reads over the replicas. The three targets run
interleaved, round after round, in one run on one machine.

The workload is sysbench oltp_read_only --skip_trx=on (no BEGIN/COMMIT, so every query is a
plain read that Sluice may send to a replica); --tests takes other sysbench tests.

For each thread count and prepared-statement mode it reports, like bench/run.py, QPS, p95
latency and each proxy's CPU time (utime + stime from /proc/PID/stat) per 10,000 queries
(median of the rounds by QPS), plus the share of reads each server executed during the Sluice
runs: the delta of Com_select on primary, replica1 and replica2, read directly on each
server's port before and after every Sluice run and summed over the rounds. MariaDB counts an
executed prepared SELECT in both Com_select and Com_stmt_execute, so Com_select alone counts
the reads in both ps modes; two cross-checks go with it: Com_select summed over the servers /
the queries sysbench reported (about 1.00; above it = queries Sluice issues itself, e.g.
health checks, or reads a server ran that sysbench did not send), and Com_stmt_execute /
Com_select (1.00 with --db-ps-mode=auto if prepared statements reach the servers as
COM_STMT_EXECUTE, 0.00 with disable). The shares for direct and HAProxy runs are printed in
the log only (direct: primary 100%; HAProxy: about half on each replica).

Results: a Markdown table in bench/results/YYYY-MM-DD-split.md (or --out FILE).

Usage: bench/split.py [--seconds N] [--rounds N] [--threads 4,16] [--ps auto,disable]
                      [--binary build/src/sluice] [--out FILE]
If the Sluice binary does not exist, only the direct and HAProxy targets run.
Needs what bench/run.py needs; uses its topology (ports 23307-23309, /tmp/sluice-bench-topo),
proxy ports and functions. Stops the proxies and the topology when done.
"""
import argparse
import datetime
import os
import signal
import subprocess
import sys

from run import (HAPROXY_PORT, PRIMARY_PORT, REPLICA_PORTS, ROOT, SLUICE_PORT, median,
                 measure, start_haproxy, start_sluice, sysbench, topo, write_results)

SERVERS = [("primary", PRIMARY_PORT)] + sorted(REPLICA_PORTS.items())
REPLICAS = sorted(REPLICA_PORTS.items())
COUNTERS = ("Com_select", "Com_stmt_execute")
EXTRA = ("--skip_trx=on",)


def counters(port):
    """Com_select and Com_stmt_execute of the server on port (SHOW GLOBAL STATUS does not
    count in Com_select, and the mariadb CLI in batch mode sends no query of its own)."""
    out = subprocess.run(
        ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{port}", "-uapp", "-papp", "-N", "-B",
         "-e", "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select', 'Com_stmt_execute')"],
        check=True, capture_output=True, text=True).stdout
    values = dict(line.split("\t") for line in out.splitlines())
    return {k: int(values[k]) for k in COUNTERS}


def snapshot():
    return {name: counters(port) for name, port in SERVERS}


def zero():
    return {name: dict.fromkeys(COUNTERS, 0) for name, _ in SERVERS}


def delta(before, after):
    return {name: {k: after[name][k] - before[name][k] for k in COUNTERS} for name, _ in SERVERS}


def accumulate(acc, d):
    for name, _ in SERVERS:
        for k in COUNTERS:
            acc[name][k] += d[name][k]


def total(reads, k="Com_select"):
    return sum(reads[name][k] for name, _ in SERVERS)


def shares(reads):
    """'primary 1% / replica1 49% / replica2 50%' by Com_select."""
    t = total(reads)
    if not t:
        return "no reads counted"
    return " / ".join(f"{name} {100 * reads[name]['Com_select'] / t:.0f}%" for name, _ in SERVERS)


def stop(procs):
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def build_info(binary):
    """Which Sluice was measured: the binary's mtime and the tree's commit."""
    git = ["git", "-C", ROOT]
    head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "?"
    dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    mtime = datetime.datetime.fromtimestamp(os.path.getmtime(binary)).strftime("%Y-%m-%d %H:%M")
    return (f"`{os.path.relpath(binary, ROOT)}` built {mtime}, tree at {head}"
            + (" with uncommitted changes" if dirty else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3, help="repeat each cell, keep the median")
    ap.add_argument("--threads", default="4,16")
    ap.add_argument("--tests", default="oltp_read_only")
    ap.add_argument("--ps", default="auto,disable")
    ap.add_argument("--tables", type=int, default=4)
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/src/sluice"))
    ap.add_argument("--out")
    a = ap.parse_args()
    with_sluice = os.path.isfile(a.binary) and os.access(a.binary, os.X_OK)
    if not with_sluice:
        print(f"warning: {a.binary} not found: running direct and HAProxy only", flush=True)
    built = build_info(a.binary) if with_sluice else None

    procs, rows = [], []
    try:
        topo("up")
        haproxy = start_haproxy(REPLICAS)
        procs.append(haproxy)
        targets = [("direct", PRIMARY_PORT, None), ("haproxy", HAPROXY_PORT, haproxy.pid)]
        if with_sluice:
            sluice = start_sluice(a.binary, REPLICAS)
            procs.append(sluice)
            targets.append(("sluice", SLUICE_PORT, sluice.pid))
        topo("sql", "primary", "-e", "DROP DATABASE IF EXISTS sbtest; CREATE DATABASE sbtest")
        sysbench("oltp_read_only", PRIMARY_PORT, 4, "disable", 1, a.tables, a.rows, "prepare")
        topo("wait-sync")  # the replicas have the tables before anything reads them
        for test in a.tests.split(","):
            for threads in [int(t) for t in a.threads.split(",")]:
                for ps in a.ps.split(","):
                    samples = {name: [] for name, _, _ in targets}
                    reads = {name: zero() for name, _, _ in targets}  # summed over rounds
                    queries = dict.fromkeys(samples, 0)
                    for _ in range(a.rounds):
                        for name, port, pid in targets:  # interleaved
                            before = snapshot()
                            q, qps, p95, per10k, errs = measure(port, pid, test, threads, ps, a,
                                                                EXTRA)
                            run_reads = delta(before, snapshot())
                            accumulate(reads[name], run_reads)
                            queries[name] += q
                            samples[name].append((qps, p95, per10k, errs))
                            print(f"{test} t={threads} ps={ps} {name}: {qps:.0f} qps p95 {p95} ms "
                                  f"cpu/10k {per10k if per10k is None else round(per10k, 3)} "
                                  f"ignored errors {errs}; reads {shares(run_reads)} "
                                  f"(Com_select {total(run_reads)}, Com_stmt_execute "
                                  f"{total(run_reads, 'Com_stmt_execute')}, sysbench queries {q})",
                                  flush=True)
                    cell = {name: median(samples[name]) for name in samples}
                    rows.append((test, threads, ps, cell, reads, queries))
    finally:
        stop(procs)
        topo("down")

    def f(x, fmt):
        return "-" if x is None else format(x, fmt)

    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        f"# Sluice read/write-split benchmark, {now}",
        "",
        f"sysbench `--skip_trx=on`, {a.seconds} s per cell, {a.tables} tables x {a.rows} rows, "
        f"{os.cpu_count()} cores shared by sysbench, the three MariaDB servers and the proxy; "
        f"targets run interleaved; median of {a.rounds} round(s). Direct = the primary. HAProxy "
        f"= mode tcp, balance roundrobin over replica1 and replica2. Sluice = primary + "
        f"replica1 + replica2 (role = \"replica\") in its config"
        + (f"; {built}." if built else f"; not run ({a.binary} not found).")
        + " CPU = utime+stime of the proxy process per 10,000 queries.",
        "",
        "Reads per server: delta of Com_select on each server around each Sluice run, summed over "
        "the rounds. Counted/queries = Com_select of the three servers / queries sysbench "
        "reported (above 1.00: queries Sluice sent on its own). stmt_execute/select = "
        "Com_stmt_execute / Com_select (1.00 when prepared statements reach the servers as "
        "such).",
        "",
        "| workload | threads | ps-mode | direct QPS | HAProxy QPS | Sluice QPS | Sluice/direct "
        "| Sluice/HAProxy | p95 ms direct / HAProxy / Sluice | CPU s/10k HAProxy "
        "| CPU s/10k Sluice | CPU Sluice/HAProxy | Sluice reads per server | counted/queries "
        "| stmt_execute/select |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for test, threads, ps, c, reads, queries in rows:
        d, h = c["direct"], c["haproxy"]
        s = c.get("sluice")
        if s:
            r = reads["sluice"]
            sel = total(r)
            sl = (f"{s[0]:.0f} | {s[0] / d[0]:.2f} | {s[0] / h[0]:.2f} | "
                  f"{d[1]} / {h[1]} / {s[1]} | {h[2]:.3f} | {s[2]:.3f} | {s[2] / h[2]:.2f} | "
                  f"{shares(r)} | "
                  f"{f(sel / queries['sluice'] if queries['sluice'] else None, '.2f')} | "
                  f"{f(total(r, 'Com_stmt_execute') / sel if sel else None, '.2f')}")
        else:
            sl = f"- | - | - | {d[1]} / {h[1]} / - | {h[2]:.3f} | - | - | - | - | -"
        lines.append(f"| {test} | {threads} | {ps} | {d[0]:.0f} | {h[0]:.0f} | {sl} |")
    write_results("\n".join(lines) + "\n", a.out, "-split")


if __name__ == "__main__":
    sys.exit(main())
