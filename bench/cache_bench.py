#!/usr/bin/python3
"""Sluice result-cache benchmark (issue #9, "Benchmark"): in one run on one machine, on the
bench topology of bench/run.py (ports 23307-23309, Redis on run.REDIS_PORT,
/tmp/sluice-bench-topo):

1. Hits: sysbench oltp_point_select on one small table (a hot set: --table-size rows, 1000 by
   default), --threads, --db-ps-mode=--ps, against five targets interleaved round after round:
   the primary directly; HAProxy (mode tcp to the primary: the layer-4 baseline for CPU per
   query); Sluice without a [cache] section; Sluice with the cache, a [[cache_rules]] entry
   matching the point select's digest and L1 on (hits from the worker's memory); the same
   with l1_max_bytes = 0 (every hit from Redis, L2). Each Sluice has the primary and both
   replicas as backends and [monitor] as in bench/monitor_bench.py (its Sluice class: own
   config, port and admin port; workers left at the default, one per core). Every target
   first gets one warm-up run (--warmup seconds, not counted) so that the measured runs of
   the cached targets are hit-dominated. Per target: QPS, p50 and p99 latency (computed from
   sysbench's --histogram=on output: sysbench itself prints one percentile, its p95, which
   is kept as a cross-check), each proxy's CPU per query (utime + stime of the process from
   /proc/PID/stat over the run / the queries sysbench reported), the cache's lookups by layer
   and result from Sluice's /metrics (sluice_cache_requests_total), and the SELECTs the three
   servers ran (Com_select deltas read directly on each server's port), so that the hit ratio
   Sluice reports is checked against what the servers did.
2. Write-to-invalidation delay for writes made around Sluice: a Sluice with the cache (L1 on)
   and BINLOG_CONFIG in its [cache] section (the binlog follower). A writer UPDATEs one row
   directly on the primary; a reader polls the cached read of that row through Sluice every
   1 ms (and each replica directly, until it has the row) until Sluice returns the new value.
   The delay from the UPDATE's OK to the first read through Sluice that returns the new
   value, over --writes writes: median, p99, max. If the daemon refuses BINLOG_CONFIG (a
   daemon without the follower: unknown key), the part reports "not available".

Results: Markdown in bench/results/YYYY-MM-DD-cache.md (or --out FILE); a rerun overwrites it.

Usage: bench/cache_bench.py [--seconds 10] [--rounds 3] [--threads 16] [--table-size 1000]
                            [--ps auto] [--warmup 3] [--writes 50] [--parts 1,2]
                            [--binary build/src/sluice] [--out FILE]
Needs what bench/monitor_bench.py needs. Stops everything it started (by pid) and the bench
topology when done.
"""
import argparse
import collections
import datetime
import json
import os
import random
import re
import sys
import time
import urllib.request

from monitor_bench import (DETAILS, SERVERS, Sluice, connect, counters, ensure_monitor_user,
                           log, log_findings, reads_delta, restore_primary)
from run import (HAPROXY_PORT, PRIMARY_PORT, REDIS_PORT, REPLICA_PORTS, TOPO_DIR, cpu_seconds,
                 median, parse, start_haproxy, sysbench, topo, write_results)
from split import build_info, stop

# The [[cache_rules]] match_digest (a TOML literal string: no escapes). sysbench's point select
# is `SELECT c FROM sbtest1 WHERE id=?`; the router's digest of it (and of the text form with
# a literal) is `SELECT c FROM sbtest1 WHERE id = ?`.
CACHE_RULE = r"FROM sbtest1 WHERE id = \?"
RULE_TTL_MS = 3_600_000  # an hour: no entry expires during the run; only writes invalidate
# Put in the [cache] section of part 2's daemon (after [cache]'s own keys, before
# [[cache.redis]]: a bare key lands in [cache], a `[cache.binlog]` header starts its own
# table) to turn the binlog follower on. Adjust to the follower's real keys; the bench
# topology's account with REPLICATION SLAVE is repl/repl, and its servers use server_id 1-3.
BINLOG_CONFIG = """[cache.binlog]"""
WRITE_TIMEOUT_S = 5.0  # part 2: a write not seen through Sluice by then counts as a timeout
# Sluice daemons of this script: monitor_bench.Sluice ports SLUICE_BASE + index (23040..).
INDEX = {"nocache": 0, "l1": 1, "l2": 2, "binlog": 3}
BACKENDS = [("primary", PRIMARY_PORT, "primary")] + [
    (name, port, "replica") for name, port in sorted(REPLICA_PORTS.items())]
READ_ROW = "SELECT c FROM sbtest1 WHERE id = 1"  # part 2's read: the rule's digest
CACHE_KEYS = [(layer, result) for layer in ("l1", "l2") for result in ("hit", "miss", "bypass")]


def cache_sections(l1_max_bytes, prefix, extra=""):
    """[cache] with the bench topology's Redis and the point-select rule, as TOML.
    monitor_bench.Sluice writes its `routing` text under [routing], before [admin]: these
    sections follow [routing]'s (empty) body. Each daemon has its own key prefix, so that no
    daemon answers from entries another one filled."""
    return f"""
[cache]
l1_max_bytes = {l1_max_bytes}
key_prefix = "{prefix}"
{extra}

[[cache.redis]]
host = "127.0.0.1"
port = {REDIS_PORT}

[[cache_rules]]
name = "point-select"
match_digest = '{CACHE_RULE}'
ttl_ms = {RULE_TTL_MS}
"""


def cache_counts(s):
    """Sluice's cache counters: lookups by (layer, result), fills, and why fills or reads did
    not use the cache."""
    m = s.metrics()
    out = {f"{layer}_{result}": m.get(("sluice_cache_requests_total",
                                       frozenset({("layer", layer), ("result", result)})), 0.0)
           for layer, result in CACHE_KEYS}
    for key, name in (("fills", "sluice_cache_fills_total"),
                      ("uncacheable", "sluice_cache_uncacheable_total"),
                      ("stale_refused", "sluice_cache_stale_fill_refused_total"),
                      ("redis_errors", "sluice_cache_redis_errors_total")):
        out[key] = m.get((name, frozenset()), 0.0)
    out["binlog_inv"] = m.get(("sluice_cache_invalidations_total",
                               frozenset({("source", "binlog")})), 0.0)
    out["redis_s"] = m.get(("sluice_cache_redis_seconds_sum", frozenset()), 0.0)
    out["redis_n"] = m.get(("sluice_cache_redis_seconds_count", frozenset()), 0.0)
    return out


def cache_view(s):
    with urllib.request.urlopen(f"http://127.0.0.1:{s.admin}/cache", timeout=5) as r:
        return json.loads(r.read().decode())


def histogram(out):
    """[(value ms, count)] of sysbench's --histogram=on output."""
    return [(float(v), int(n)) for v, n in
            re.findall(r"^\s*([0-9.]+)\s+\|\**\s*(\d+)\s*$", out, re.M)]


def percentile(hist, p):
    """The value of the first bucket at which p% of the events are counted (as sysbench
    computes its own percentile); None without events."""
    total = sum(n for _, n in hist)
    if not total:
        return None
    need, seen = p / 100 * total, 0
    for v, n in hist:
        seen += n
        if seen >= need:
            return v
    return hist[-1][0]


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")),
                         "?")
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} shared cores ({model}), load average at the start {load}; the "
            "three MariaDB servers, Redis, sysbench and the proxies all on one host, over "
            "loopback")


# ------------------------------------------------------------------------------ 1. hits ----

def run_target(target, a, seconds):
    """One sysbench run against a target (name, port, pid or None, Sluice or None, cached).
    Returns a dict of what it measured."""
    name, port, pid, s, cached = target
    before = counters()
    c0 = cache_counts(s) if cached else None
    t0 = cpu_seconds(pid) if pid else None  # the window holds sysbench only
    out = sysbench("oltp_point_select", port, a.threads, a.ps, seconds, 1, a.table_size,
                   extra=("--histogram=on",))
    cpu = cpu_seconds(pid) - t0 if pid else None
    c1 = cache_counts(s) if cached else None
    d = reads_delta(before, counters())
    q, qps, p95, errs = parse(out)
    hist = histogram(out)
    r = {"q": q, "qps": qps, "p95": p95, "errs": errs, "p50": percentile(hist, 50),
         "p99": percentile(hist, 99), "hp95": percentile(hist, 95),
         "cpu_us": cpu / q * 1e6 if cpu is not None and q else None,
         "selects": {n: d[n][0] for n, _ in SERVERS},
         "cache": {k: c1[k] - c0[k] for k in c1} if cached else None}
    return r


def describe(name, r):
    sel = r["selects"]
    cpu = "-" if r["cpu_us"] is None else f"{r['cpu_us']:.1f}"
    text = (f"{name}: {r['qps']:.0f} qps, p50/p95/p99 {r['p50']}/{r['p95']}/{r['p99']} ms "
            f"(histogram p95 {r['hp95']}), CPU {cpu} us/query, ignored errors {r['errs']}; "
            f"SELECTs on the servers {' / '.join(f'{n} {sel[n]}' for n, _ in SERVERS)} for "
            f"{r['q']} queries")
    c = r["cache"]
    if c:
        text += ("; cache " + ", ".join(f"{l}_{x} {int(c[f'{l}_{x}'])}" for l, x in CACHE_KEYS) +
                 f", fills {int(c['fills'])}, uncacheable {int(c['uncacheable'])}, stale fills "
                 f"refused {int(c['stale_refused'])}, Redis calls {int(c['redis_n'])} (mean "
                 f"{fmt(1000 * c['redis_s'] / c['redis_n'] if c['redis_n'] else None)} ms), "
                 f"Redis errors {int(c['redis_errors'])}")
    return text


def part_hits(a, procs):
    haproxy = start_haproxy()  # mode tcp, the primary only
    procs.append(haproxy)
    targets = [("direct", PRIMARY_PORT, None, None, False),
               ("haproxy", HAPROXY_PORT, haproxy.pid, None, False)]
    for key, sections in (("nocache", ""),
                          ("l1", cache_sections(64 << 20, "sluicebench-l1:")),
                          ("l2", cache_sections(0, "sluicebench-l2:"))):
        s = Sluice(a.binary, f"cache-{key}", INDEX[key], BACKENDS, routing=sections)
        procs.append(s)
        targets.append((key, s.port, s.pid, s, bool(sections)))
    for t in targets:  # warm-up: fills the caches (and Sluice's pools); not counted
        r = run_target(t, a, a.warmup)
        log(f"part 1 warm-up {describe(t[0], r)}", detail=True)
    samples = {t[0]: [] for t in targets}
    runs = {t[0]: [] for t in targets}
    for rnd in range(a.rounds):
        for t in targets:  # interleaved
            r = run_target(t, a, a.seconds)
            runs[t[0]].append(r)
            samples[t[0]].append((r["qps"], r["p50"], r["p99"], r["p95"], r["cpu_us"],
                                  r["errs"]))
            log(f"part 1 round {rnd + 1} {describe(t[0], r)}", detail=True)
    views = {}
    for name, _, _, s, cached in targets:
        if cached:
            v = cache_view(s)
            views[name] = v
            log(f"part 1 GET /cache of {name}: usable {v.get('usable')}, hottest "
                f"{[(h['digest'], h['hits'], h['misses']) for h in v.get('hottest', [])[:3]]}",
                detail=True)
    for name, _, _, s, _ in reversed(targets):
        if s:
            s.stop()
            procs.remove(s)
    stop([haproxy])
    procs.remove(haproxy)
    return samples, runs, views


# ------------------------------------------------------- 2. write-to-invalidation delay ----

def log_tail(path, n=3):
    try:
        with open(path) as f:
            return " | ".join(l.strip() for l in f.readlines()[-n:]) or "(empty)"
    except OSError:
        return "(no log)"


def nearest_rank(sorted_values, p):
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * p // 100) - 1))
    return sorted_values[int(k)]


def part_invalidation(a, procs):
    try:
        s = Sluice(a.binary, "cache-binlog", INDEX["binlog"], BACKENDS,
                   routing=cache_sections(64 << 20, "sluicebench-binlog:", BINLOG_CONFIG))
    except SystemExit as e:  # monitor_bench's wait_port: the daemon exited (its config refused)
        why = log_tail(os.path.join(TOPO_DIR, "monitor-bench-cache-binlog.log"))
        log(f"part 2: not available: {e}; the daemon's log: {why}", detail=True)
        return {"available": False, "why": f"{e}: {why}"}
    procs.append(s)
    result = {"available": True, "rows": [], "aborted": None}
    writer = connect(PRIMARY_PORT, database="sbtest")  # around Sluice
    reader = connect(s.port, database="sbtest")
    replicas = {n: connect(p, database="sbtest") for n, p in sorted(REPLICA_PORTS.items())}

    def read(conn):
        with conn.cursor() as cur:
            cur.execute(READ_ROW)
            return cur.fetchone()[0]

    try:
        current = read(reader)  # a miss: fills the entry
        read(reader)
        c0 = cache_counts(s)
        timeouts_in_a_row = 0
        for i in range(1, a.writes + 1):
            time.sleep(0.05 + 0.05 * random.random())  # off the monitor's beat
            if read(reader) != current:
                raise RuntimeError(f"write {i}: Sluice did not return the previous value")
            new = f"cache-bench-{i}-{random.randrange(1 << 30)}"
            t_send = time.monotonic()
            with writer.cursor() as cur:
                cur.execute("UPDATE sbtest1 SET c = %s WHERE id = 1", (new,))
            t_ok = time.monotonic()
            pending = dict(replicas)
            seen_on = {}
            old_reads, delay = 0, None
            while True:
                v = read(reader)
                now = time.monotonic()
                if v == new:
                    delay = now - t_ok
                    break
                old_reads += 1
                if now - t_ok > WRITE_TIMEOUT_S:
                    break
                for n, conn in list(pending.items()):
                    if read(conn) == new:
                        seen_on[n] = time.monotonic() - t_ok
                        del pending[n]
                time.sleep(0.001)
            row = {"write": i, "commit_ms": 1000 * (t_ok - t_send),
                   "delay_ms": None if delay is None else 1000 * delay, "old_reads": old_reads,
                   "replicas_ms": {n: 1000 * x for n, x in seen_on.items()}}
            result["rows"].append(row)
            log(f"part 2 write {i}: UPDATE took {row['commit_ms']:.2f} ms; Sluice returned the "
                f"new value {'never (timeout)' if delay is None else f'{1000 * delay:.2f} ms'}"
                f" after its OK ({old_reads} reads returned the old value); replicas had it "
                f"(while polled) after "
                f"{', '.join(f'{n} {x:.2f}' for n, x in sorted(row['replicas_ms'].items()))} ms",
                detail=True)
            if delay is None:
                timeouts_in_a_row += 1
                if timeouts_in_a_row == 3:
                    result["aborted"] = (f"3 writes in a row not seen through Sluice within "
                                         f"{WRITE_TIMEOUT_S:.0f} s; log: {log_tail(s.log)}")
                    log(f"part 2: aborted: {result['aborted']}", detail=True)
                    break
                current = read(reader)
            else:
                timeouts_in_a_row = 0
                current = new
        c1 = cache_counts(s)
        result["cache"] = {k: c1[k] - c0[k] for k in c1}
        log(f"part 2 cache counters over the writes: {result['cache']}", detail=True)
    finally:
        for conn in [writer, reader, *replicas.values()]:
            conn.close()
        s.stop()
        procs.remove(s)
    return result


# ----------------------------------------------------------------------------- report ----

def fmt(x, spec=".3f"):
    return "-" if x is None else format(x, spec)


def report(a, cmdline, started, host, built, hits, inval):
    lines = [
        f"# Sluice result-cache benchmark (issue #9), {started.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"Command: `{cmdline}`",
        "",
        f"Machine: {host}. {built}.",
        "",
    ]
    if hits:
        samples, runs, views = hits
        med = {name: median(v) for name, v in samples.items()}
        h = med["haproxy"]
        lines += [
            "## 1. Hits",
            "",
            f"sysbench `oltp_point_select`, 1 table x {a.table_size} rows, {a.threads} threads, "
            f"`--db-ps-mode={a.ps}`, {a.seconds} s per run; targets interleaved, median of "
            f"{a.rounds} round(s) by QPS (p50, p99 and CPU are that round's), after one "
            f"{a.warmup} s warm-up run per target. *direct*: the primary. *HAProxy*: mode tcp "
            "to the primary. *Sluice*: primary + replica1 + replica2, `[monitor]` (500 ms), "
            "workers = one per core; *no cache*: no `[cache]`; *L1*: `[cache]` with the bench "
            f"topology's Redis and a `[[cache_rules]]` entry `match_digest = '{CACHE_RULE}'`, "
            f"`ttl_ms = {RULE_TTL_MS}`; *L2 only*: the same with `l1_max_bytes = 0` (every hit "
            "from Redis). p50/p99 from sysbench's `--histogram=on` buckets (about 2% wide); "
            "p95 is sysbench's own. CPU = utime+stime of the proxy process over the run / "
            "queries.",
            "",
            "| target | QPS | vs direct | p50 ms | p99 ms | p95 ms (sysbench) | CPU us/query "
            "| CPU vs HAProxy | ignored errors |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        names = {"direct": "direct", "haproxy": "HAProxy", "nocache": "Sluice, no cache",
                 "l1": "Sluice, L1 hits", "l2": "Sluice, L2 hits (L1 off)"}
        d = med["direct"]
        for key, label in names.items():
            qps, p50, p99, p95, cpu, errs = med[key]
            lines.append(
                f"| {label} | {qps:.0f} | {qps / d[0]:.2f} | {fmt(p50)} | {fmt(p99)} | {p95} | "
                f"{fmt(cpu, '.1f')} | {fmt(cpu / h[4] if cpu and h[4] else None, '.2f')} | "
                f"{errs} |")
        lines += [
            "",
            "Hits checked against the servers, summed over the measured rounds: Sluice's "
            "lookups (`sluice_cache_requests_total`, layer/result) and the SELECTs the three "
            "servers ran (Com_select deltas read on each server's own port; MariaDB counts an "
            "executed prepared SELECT there too). A hit-dominated run has SELECTs on the "
            "servers close to Sluice's misses and far below the queries. Redis: calls the "
            "cache made (`sluice_cache_redis_seconds`: GETs on L1 misses, SETs of fills) and "
            "those that failed (`sluice_cache_redis_errors_total`: a late reply, over "
            "`command_timeout_ms`, fails every call in flight on that connection; a failed GET "
            "is a bypass: the read runs on a server).",
            "",
            "| target | sysbench queries | lookups | L1 hit / miss | L2 hit / miss | bypass "
            "| served from cache | Sluice misses | SELECTs primary / replica1 / replica2 "
            "| SELECTs / queries | Redis calls (mean ms) | Redis errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for key, label in names.items():
            q = sum(r["q"] for r in runs[key])
            sel = {n: sum(r["selects"][n] for r in runs[key]) for n, _ in SERVERS}
            st = sum(sel.values())
            sels = " / ".join(str(sel[n]) for n, _ in SERVERS)
            if runs[key][0]["cache"] is None:
                lines.append(f"| {label} | {q} | - | - | - | - | - | - | {sels} | "
                             f"{st / q:.3f} | - | - |")
                continue
            c = collections.Counter()
            for r in runs[key]:
                c.update(r["cache"])
            lookups = c["l1_hit"] + c["l1_miss"] + c["l1_bypass"]
            served = c["l1_hit"] + c["l2_hit"]
            lines.append(
                f"| {label} | {q} | {lookups:.0f} | {c['l1_hit']:.0f} / {c['l1_miss']:.0f} | "
                f"{c['l2_hit']:.0f} / {c['l2_miss']:.0f} | {c['l1_bypass'] + c['l2_bypass']:.0f}"
                f" | {fmt(100 * served / lookups if lookups else None, '.2f')}% | "
                f"{lookups - served:.0f} | {sels} | {st / q:.4f} | {c['redis_n']:.0f} ("
                f"{fmt(1000 * c['redis_s'] / c['redis_n'] if c['redis_n'] else None)}) | "
                f"{c['redis_errors']:.0f} |")
        l1, l2, nc = med["l1"], med["l2"], med["nocache"]

        def goal(ok):
            return "met" if ok else "not met"

        lines += [
            "",
            f"Goals (issue #9): L1-hit QPS at least 2x direct: **{l1[0] / d[0]:.2f}x, "
            f"{goal(l1[0] >= 2 * d[0])}**; at least 3x Sluice without cache: "
            f"**{l1[0] / nc[0]:.2f}x, {goal(l1[0] >= 3 * nc[0])}**; L2-hit QPS above direct: "
            f"**{l2[0] / d[0]:.2f}x, {goal(l2[0] > d[0])}**. Hit latency p50 / p99: L1 "
            f"{fmt(l1[1])} / {fmt(l1[2])} ms, L2 {fmt(l2[1])} / {fmt(l2[2])} ms (direct "
            f"{fmt(d[1])} / {fmt(d[2])} ms). Sluice CPU per query: no cache {fmt(nc[4], '.1f')}"
            f" us, L1 hits {fmt(l1[4], '.1f')} us, L2 hits {fmt(l2[4], '.1f')} us; HAProxy "
            f"{fmt(h[4], '.1f')} us.",
            "",
        ]
        for name, v in views.items():
            hot = v.get("hottest") or []
            if hot:
                lines.append(f"GET /cache of the {names[name]} daemon: hottest digest "
                             f"`{hot[0]['digest']}` ({hot[0]['hits']} hits, "
                             f"{hot[0]['misses']} misses since start, warm-up included).")
        lines.append("")
    if inval:
        lines += ["## 2. Write-to-invalidation delay (writes made around Sluice)", ""]
        if not inval["available"]:
            lines += [
                "**Not available**: the daemon did not start with the binlog follower's "
                f"configuration (`{BINLOG_CONFIG}` in `[cache]`, the constant BINLOG_CONFIG at "
                f"the top of bench/cache_bench.py): {inval['why']}",
                "",
            ]
        else:
            rows = inval["rows"]
            delays = sorted(r["delay_ms"] for r in rows if r["delay_ms"] is not None)
            timeouts = sum(1 for r in rows if r["delay_ms"] is None)
            commits = sorted(r["commit_ms"] for r in rows)
            olds = sorted(r["old_reads"] for r in rows)
            rep = {n: sorted(r["replicas_ms"][n] for r in rows if n in r["replicas_ms"])
                   for n in sorted(REPLICA_PORTS)}
            c = inval.get("cache", {})
            lines += [
                f"A Sluice with the cache (L1 on) and `{BINLOG_CONFIG}` in `[cache]`. A writer "
                "(pymysql, directly on the primary, not through Sluice) runs `UPDATE sbtest1 "
                "SET c = <new> WHERE id = 1` every 50-100 ms; a reader (one pymysql connection "
                f"through Sluice) runs `{READ_ROW}` (cached by the rule; filled before the "
                "first write) every 1 ms from the UPDATE's OK until it returns the new value, "
                "and between its reads reads the row on each replica directly until that "
                "replica has it. Delay = the UPDATE's OK to the end of the first read through "
                "Sluice that returned the new value (so it includes one read and up to about "
                "1.5 ms of polling). No other load.",
                "",
                "| writes | seen | timeouts (> "
                f"{WRITE_TIMEOUT_S:.0f} s) | delay ms min / median / p99 / max | old values "
                "read per write (median / max) | UPDATE ms (median) | replica1 / replica2 had "
                "it, ms (median) |",
                "|---|---|---|---|---|---|---|",
                f"| {len(rows)} | {len(delays)} | {timeouts} | "
                + (f"{delays[0]:.2f} / {nearest_rank(delays, 50):.2f} / "
                   f"{nearest_rank(delays, 99):.2f} / {delays[-1]:.2f}" if delays else "-")
                + f" | {fmt(nearest_rank(olds, 50), 'd')} / {fmt(olds[-1] if olds else None, 'd')}"
                f" | {fmt(nearest_rank(commits, 50), '.2f')} | "
                + " / ".join(fmt(nearest_rank(v, 50), ".2f") for v in rep.values()) + " |",
                "",
                f"Over the writes, Sluice counted {c.get('binlog_inv', 0):.0f} binlog "
                f"invalidations (`sluice_cache_invalidations_total{{source=\"binlog\"}}`), "
                f"L1 {c.get('l1_hit', 0):.0f} hits / {c.get('l1_miss', 0):.0f} misses, L2 "
                f"{c.get('l2_hit', 0):.0f} hits / {c.get('l2_miss', 0):.0f} misses, "
                f"{c.get('fills', 0):.0f} fills, {c.get('stale_refused', 0):.0f} stale fills "
                "refused.",
                "",
            ]
            if inval["aborted"]:
                lines += [f"**Aborted**: {inval['aborted']}", ""]
    lines += ["## What this shows", "", "_(to be written)_", ""]
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--table-size", type=int, default=1000)
    ap.add_argument("--ps", default="auto", help="sysbench --db-ps-mode")
    ap.add_argument("--warmup", type=int, default=3, help="seconds of the warm-up run")
    ap.add_argument("--writes", type=int, default=50, help="part 2: writes measured")
    ap.add_argument("--parts", default="1,2")
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "build/src/sluice"))
    ap.add_argument("--out")
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    cmdline = " ".join(["bench/cache_bench.py"] + sys.argv[1:])
    started = datetime.datetime.now()
    t0 = time.monotonic()
    built = build_info(a.binary)
    host = machine()
    procs = []
    hits = inval = None
    try:
        topo("up")
        ensure_monitor_user()
        restore_primary()  # a run that stopped half-way may have left replica1 the primary
        topo("sql", "redis", "FLUSHALL")  # no entries of an earlier run
        topo("sql", "primary", "-e", "DROP DATABASE IF EXISTS sbtest; CREATE DATABASE sbtest")
        sysbench("oltp_point_select", PRIMARY_PORT, 1, "disable", 1, 1, a.table_size, "prepare")
        topo("wait-sync")
        if "1" in parts:
            log("part 1: hits")
            hits = part_hits(a, procs)
        if "2" in parts:
            log("part 2: write-to-invalidation delay")
            # A bench topology made before the follower existed lacks this grant (the
            # fixture gives it when it creates the servers).
            topo("sql", "primary", "-e",
                 "GRANT REPLICATION SLAVE ON *.* TO 'sluice_monitor'@'%'")
            inval = part_invalidation(a, procs)
    finally:
        for p in list(procs):
            if isinstance(p, Sluice):
                p.stop()
            else:
                stop([p])
        topo("down")
    took = time.monotonic() - t0
    lines = report(a, cmdline, started, host, built, hits, inval)
    findings = log_findings()
    lines += ["## Sluice's logs", ""]
    if findings:
        for name, n, sample in findings:
            lines.append(f"`{name}`: {n} warning/error line(s), the first:")
            lines += ["", "```"] + sample + ["```", ""]
    else:
        lines += ["No warning or error line in any daemon's log.", ""]
    lines += ["## Per run", "", "The script's own log lines for each run, in the order they ran "
              "(warm-up runs included, marked).", "", "```"] + DETAILS + [
              "```", "", f"Whole run: {took / 60:.1f} min.", ""]
    write_results("\n".join(lines), a.out, "-cache")


if __name__ == "__main__":
    sys.exit(main())
