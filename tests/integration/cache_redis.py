#!/usr/bin/python3
"""cache_redis (issue #9): the Redis L2 through real clients and a real redis-server, with
Sluices of their own on SLUICE_PORT + 610.. (admin SLUICE_ADMIN_PORT + 610..). Config, pid
files and logs in $SLUICE_IT_DIR/cache_redis/; every daemon is stopped with `sluice.sh
stop-check` (exit 0 after SIGTERM, a log free of sanitizer reports and error lines), every
redis-server this test starts is stopped by pid, also when a check fails.

Where a read was answered is read from the servers (their SELECT counters, see cache.py).
The daemons run 2 workers with `l1_max_bytes = 0` (no L1): every hit is an L2 hit.

 1. L2 hits: one read fills Redis; 24 reads from 12 other sessions (both workers) run no
    SELECT, and Redis holds the entry under the configured prefix.
 2. Invalidation: 100 rounds of UPDATE then the same read at once, in two sessions: always
    the new value.
 3. Redis stopped in the middle of a run of 4 sessions writing and reading their own rows
    (and a hinted read each round): zero errors and zero wrong answers while Redis is down;
    the reads bypass the cache (their SELECTs reach the servers); Redis started again:
    caching resumes by itself within 5 s; the log says so once each way (not per query).
 4. A full Redis (maxmemory 2 MB, allkeys-lru): 1,500 distinct cached reads of 2 KB each,
    zero errors, right answers, and Redis evicted keys.
 5. sysbench oltp_point_select (prepared statements, a [[cache_rules]] entry) for 8 s with
    Redis stopped after 2 s and started after 5 s: exit 0, zero errors; point selects are
    cached again afterwards.
 6. TLS and AUTH: a redis-server of this test's own with only a TLS port and an ACL user;
    a Sluice reaching it with `tls = true`, `tls_ca_file`, `user` and `password`: L2 hits;
    and a Sluice with a wrong password: reads still answered, bypassing the cache.
 8. Two Sluices sharing the Redis, the second with an L1: after a write through the first, the
    second's reads: `fleet` ones (versions read from Redis first) never old; `global` ones
    through the subscription's invalidations (counted as `peer`), at most 1% old.
 9. A three-master Redis Cluster (tests/fixtures/redis_cluster.sh) as the L2: hits,
    invalidation, and the slots of a cached entry and of the versions migrated to other
    masters while 4 sessions write and read: zero errors, zero wrong answers, hits after.
10. Regions: a Sluice in region "a" with a second Redis in region "b": entries are filled
    in a only; every write's bump reaches both.
 7. consistency = "fleet": two Sluices sharing the Redis, replica1's SQL thread stopped; a
    write through one, reads through the other at once: fleet reads never miss it (eventual
    reads there do, which shows the lag is real).
"""

import os
import subprocess
import threading
import time

import itlib
from itlib import (Checks, Daemon, eq, true, env_int, env_str, topology, one,
                   selects_during as served, topology_backends_toml, scrape_metrics,
                   metric_delta, sync_replicas, wait_until)

SHARED_PORT = env_int("SLUICE_PORT")
SHARED_ADMIN = env_int("SLUICE_ADMIN_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
REDIS_PORT = env_int("SLUICE_REDIS_PORT")
TLS_REDIS_PORT = SHARED_PORT + 619
DIR = os.path.join(env_str("SLUICE_IT_DIR"), "cache_redis")
CERTS = os.path.join(env_str("SLUICE_TOPO_DIR"), "certs")
HINT = "/* sluice: cache ttl=60s */ "


def port(offset):
    return SHARED_PORT + offset


def admin(offset):
    return SHARED_ADMIN + offset


def config(offset, redis, prefix="it:", l1=0):
    return f"""workers = 2
connect_timeout_ms = 1000
shutdown_grace_ms = 5000

[[listeners]]
name = "plain"
address = "127.0.0.1"
port = {port(offset)}
{topology_backends_toml()}
[[users]]
name = "app"
password = "app"

[monitor]
user = "sluice_monitor"
password = "monitor"
interval_ms = 250

[cache]
l1_max_bytes = {l1}
key_prefix = "{prefix}"

[[cache.redis]]
{redis}
[[cache_rules]]
name = "sysbench point selects"
match_digest = "FROM sbtest1 WHERE id = \\\\?"

[admin]
address = "127.0.0.1"
port = {admin(offset)}

[logging]
level = "info"
"""


def plain_redis():
    return f'host = "127.0.0.1"\nport = {REDIS_PORT}\ncommand_timeout_ms = 100\n'


def redis_cli(*args, p=REDIS_PORT):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(p), *args],
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def connect(p, **kw):
    return itlib.connect(p, **kw)


def setup():
    with itlib.connect(PRIMARY_PORT) as d, d.cursor() as c:
        c.execute("DROP TABLE IF EXISTS cr_t")
        c.execute("CREATE TABLE cr_t (id INT PRIMARY KEY, v INT NOT NULL, pad TEXT)")
        c.execute("INSERT INTO cr_t (id, v) VALUES (1, 0), (2, 0), (10, 0), (11, 0), (12, 0), "
                  "(13, 0)")
        c.execute("DROP TABLE IF EXISTS cr_big")
        c.execute("CREATE TABLE cr_big (id INT PRIMARY KEY, pad TEXT NOT NULL)")
        c.execute("INSERT INTO cr_big SELECT seq, REPEAT(CHAR(65 + seq % 26), 2000) "
                  "FROM seq_1_to_1500")
        sync_replicas(d, lambda p: itlib.connect(p))


def l2_hits(p):
    q = HINT + "SELECT id, v FROM cr_t WHERE id = 1"
    with connect(p) as s:
        first, ran = served(lambda: one(s, q))
        eq(first, (1, 0), "first read")
        eq(ran, 1, "the first read ran on a server")
    entry = "it:{" + "?" * 32 + "}"
    true(wait_until(lambda: redis_cli("--scan", "--pattern", entry) != "", 3),
         "Redis holds an entry under the prefix it: (it:{32 hex digits})")
    sessions = [connect(p) for _ in range(12)]
    try:
        rows, ran = served(lambda: [one(s, q) for s in sessions for _ in range(2)])
    finally:
        for s in sessions:
            s.close()
    eq(rows, [(1, 0)] * 24, "24 reads from 12 sessions")
    eq(ran, 0, "SELECTs the servers ran for 24 reads answered from Redis")


def invalidation(p):
    q = HINT + "SELECT v FROM cr_t WHERE id = 2"
    with connect(p) as w, connect(p) as other:
        bad = []
        for i in range(1, 101):
            with w.cursor() as c:
                c.execute("UPDATE cr_t SET v = %s WHERE id = 2", (i,))
            got = (one(w, q)[0], one(other, q)[0])
            if got != (i, i):
                bad.append((i, got))
        eq(bad, [], "rounds whose reads after an UPDATE did not return its value")


def redis_down(d, p):
    stop = threading.Event()
    errors, wrong, rounds = [], [], [0]

    def worker(n):
        row = 10 + n
        try:
            with connect(p) as s:
                i = 0
                while not stop.is_set():
                    i += 1
                    with s.cursor() as c:
                        c.execute("UPDATE cr_t SET v = %s WHERE id = %s", (i, row))
                    got = one(s, HINT + "SELECT v FROM cr_t WHERE id = %s", (row,))[0]
                    if got != i:
                        wrong.append((row, i, got))
                    one(s, HINT + "SELECT v FROM cr_t WHERE id = 1")
                    rounds[0] += 1
        except Exception as e:  # noqa: BLE001 - any client error is what this counts
            errors.append(f"session {n}: {e!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        topology("stop", "redis")
        time.sleep(0.3)
        down_rounds = rounds[0]
        _, ran = served(lambda: time.sleep(1.5))
        true(rounds[0] > down_rounds, "sessions kept running with Redis down")
        true(ran > 0, f"with Redis down reads reach the servers ({ran} SELECTs)")
        topology("start", "redis")
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    eq(errors, [], "client errors while Redis was stopped and started")
    eq(wrong, [], "wrong answers while Redis was stopped and started")
    q = HINT + "SELECT v, id FROM cr_t WHERE id = 1"

    def resumed():
        with connect(p) as s:
            one(s, q)
            time.sleep(0.1)
            _, ran = served(lambda: [one(s, q) for _ in range(5)])
            return ran == 0
    true(wait_until(resumed, 5, step=0.3), "caching resumed within 5 s of Redis coming back")
    log = d.log_text()
    eq(log.count("Redis does not answer"), 1, "log lines saying Redis does not answer")
    eq(log.count("caching resumes"), 1, "log lines saying caching resumes")


def full_redis(p):
    redis_cli("CONFIG", "SET", "maxmemory", "2mb")
    redis_cli("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    before = int(redis_cli("INFO", "stats").split("evicted_keys:")[1].split()[0])
    try:
        wrong = []
        with connect(p) as s:
            for i in range(1, 1501):
                got = one(s, HINT + "SELECT pad FROM cr_big WHERE id = %s", (i,))[0]
                if got != chr(65 + i % 26) * 2000:
                    wrong.append(i)
        eq(wrong, [], "wrong answers with a full Redis")
        after = int(redis_cli("INFO", "stats").split("evicted_keys:")[1].split()[0])
        true(after > before, f"Redis evicted keys ({after - before})")
    finally:
        redis_cli("CONFIG", "SET", "maxmemory", "0")
        redis_cli("CONFIG", "SET", "maxmemory-policy", "noeviction")


def sysbench_redis_down(p):
    """sysbench oltp_point_select (prepared statements) through the cache rule, 4 threads,
    8 s; Redis stopped after 2 s and started after 5 s: sysbench ends with zero errors, and
    afterwards point selects are cached again."""
    common = ["sysbench", "oltp_point_select", "--db-driver=mysql", "--mysql-user=app",
              "--mysql-password=app", "--mysql-db=sbtest", "--tables=1", "--table-size=1000"]
    with itlib.connect(PRIMARY_PORT, database=None) as d, d.cursor() as c:
        c.execute("CREATE DATABASE IF NOT EXISTS sbtest")
    subprocess.run(common + ["--mysql-host=127.0.0.1", f"--mysql-port={PRIMARY_PORT}", "cleanup"],
                   capture_output=True, timeout=60)
    prep = subprocess.run(common + ["--mysql-host=127.0.0.1", f"--mysql-port={PRIMARY_PORT}",
                                    "prepare"], capture_output=True, text=True, timeout=120)
    true(prep.returncode == 0, f"sysbench prepare: {prep.stdout[-500:]} {prep.stderr[-500:]}")
    with itlib.connect(PRIMARY_PORT) as d:
        sync_replicas(d, lambda p2: itlib.connect(p2))
    run = subprocess.Popen(common + ["--mysql-host=127.0.0.1", f"--mysql-port={p}", "--threads=4",
                                     "--time=8", "--db-ps-mode=auto", "run"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(2)
        topology("stop", "redis")
        time.sleep(3)
        topology("start", "redis")
        out, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    eq(run.returncode, 0, f"sysbench exit status (output: {out[-800:]})")
    errors = [l for l in out.splitlines() if l.strip().startswith("ignored errors:")]
    true(errors and errors[0].split()[2] == "0", f"sysbench ignored errors: {errors}")
    true("FATAL" not in out, f"no FATAL in sysbench output: {out[-800:]}")
    q = "SELECT c FROM sbtest1 WHERE id = 17"

    def resumed():
        with connect(p, database="sbtest") as s:
            one(s, q)
            time.sleep(0.1)
            _, ran = served(lambda: [one(s, q) for _ in range(5)])
            return ran == 0
    true(wait_until(resumed, 5, step=0.3), "point selects are cached again after Redis came back")


def fleet(pa, pb):
    """Two Sluices sharing the Redis; replica1's SQL thread stopped. A session on A writes, a
    session on B reads at once (no cache): under `consistency=fleet` never the old value;
    under `eventual` some reads are old (the replicas B reads are behind, so a fleet read
    that did not wait for A's write would be old too: the check can fail). (`global` reads
    on B also learn of A's writes, from the bumps B's subscription receives, but only a
    moment later: not checked here.)"""
    topology("stop-sql", "replica1")
    try:
        stale_fleet, stale_global = [], 0
        with connect(pa) as w, connect(pb) as r1, connect(pb) as r2, connect(pb) as r3:
            readers = (r1, r2, r3)
            for i in range(1, 201):
                with w.cursor() as c:
                    c.execute("UPDATE cr_t SET v = %s WHERE id = 1", (5000 + i,))
                for r in readers:
                    if one(r, "/* sluice: consistency=eventual */ SELECT v FROM cr_t "
                              "WHERE id = 1")[0] != 5000 + i:
                        stale_global += 1
                    got = one(r, "/* sluice: consistency=fleet */ SELECT v FROM cr_t WHERE id = 1")[0]
                    if got != 5000 + i:
                        stale_fleet.append((i, got))
        eq(stale_fleet, [], "fleet reads on B that missed A's write")
        true(stale_global > 0, f"eventual reads on B missed A's write {stale_global} times (the "
             "lag was real, so the fleet check could fail)")
    finally:
        topology("start-sql", "replica1")
        with itlib.connect(PRIMARY_PORT) as d:
            sync_replicas(d, lambda p2: itlib.connect(p2))


def two_sluices(pa, pb, admin_b):
    """Sluices A and B sharing the Redis, each with its L1. B's sessions read (filling B's
    L1), a session on A updates, and B's sessions read again at once: under `fleet` (B reads
    the versions from Redis first) never the old value; under `global` B learns of A's bump
    through its subscription, a moment later: counted (bumps arrived as `peer`
    invalidations), and at most 1% old values."""
    q_fleet = "/* sluice: cache ttl=60s, consistency=fleet */ SELECT v FROM cr_t WHERE id = 2"
    q_global = "/* sluice: cache ttl=60s */ SELECT v, id FROM cr_t WHERE id = 2"
    m0 = scrape_metrics(admin_b)
    stale_fleet, stale_global = [], 0
    with connect(pa) as w, connect(pb) as b1, connect(pb) as b2:
        for i in range(1, 201):
            for r in (b1, b2):
                one(r, q_fleet)
                one(r, q_global)
            with w.cursor() as c:
                c.execute("UPDATE cr_t SET v = %s WHERE id = 2", (9000 + i,))
            for r in (b1, b2):
                got = one(r, q_fleet)[0]
                if got != 9000 + i:
                    stale_fleet.append((i, got))
                if one(r, q_global)[0] != 9000 + i:
                    stale_global += 1
    m1 = scrape_metrics(admin_b)
    eq(stale_fleet, [], "fleet reads through B that missed A's write")
    peer = metric_delta(m0, m1, "sluice_cache_invalidations_total", source="peer")
    true(peer >= 200, f"B adopted A's bumps from the subscription ({peer} peer invalidations)")
    true(stale_global <= 4, f"global reads through B right after A's write: {stale_global} of "
         "400 old (the subscription's delay)")


REGION_REDIS_PORT = SHARED_PORT + 623


def regions():
    """Two regions: the Sluice's own (region "a": the topology's Redis) and region "b" (a
    redis-server of this test's own). Reads fill only region a; every write's bump reaches
    both (the table's version grows in each Redis's versions hash)."""
    rdir = os.path.join(DIR, "region-b")
    os.makedirs(rdir, exist_ok=True)
    pidfile = os.path.join(rdir, "redis.pid")
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    subprocess.run(["redis-server", "--port", str(REGION_REDIS_PORT), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "yes", "--pidfile", pidfile,
                    "--logfile", os.path.join(rdir, "redis.log"), "--dir", rdir],
                   check=True, timeout=10)
    true(wait_until(lambda: redis_cli("PING", p=REGION_REDIS_PORT) == "PONG", 5),
         "region b's redis-server answers")
    try:
        redis = (f'host = "127.0.0.1"\nport = {REDIS_PORT}\nregion = "a"\n\n'
                 f'[[cache.redis]]\nhost = "127.0.0.1"\nport = {REGION_REDIS_PORT}\n'
                 f'region = "b"\n')
        text = config(616, redis, prefix="rg:").replace("[cache]\n", '[cache]\nregion = "a"\n', 1)
        with Daemon(DIR, "regions", text, port=port(616), admin=admin(616), wait_snapshot=True):
            field = "sluice_test.cr_t"

            def version(p):
                v = redis_cli("HGET", "rg:{meta}versions", field, p=p)
                return int(v) if v else 0
            before = (version(REDIS_PORT), version(REGION_REDIS_PORT))
            with connect(port(616)) as s:
                for i in range(5):
                    with s.cursor() as c:
                        c.execute("UPDATE cr_t SET v = v + 1 WHERE id = 2")
                    one(s, HINT + "SELECT v FROM cr_t WHERE id = 2")
            true(wait_until(lambda: version(REGION_REDIS_PORT) >= before[1] + 5, 3),
                 f"region b's versions grew by 5: {before[1]} -> {version(REGION_REDIS_PORT)}")
            true(version(REDIS_PORT) >= before[0] + 5,
                 f"region a's versions grew by 5: {before[0]} -> {version(REDIS_PORT)}")
            entry = "rg:{" + "?" * 32 + "}"
            true(wait_until(lambda: redis_cli("--scan", "--pattern", entry) != "", 3),
                 "entries are filled in region a")
            eq(redis_cli("--scan", "--pattern", entry, p=REGION_REDIS_PORT), "",
               "no entry is filled in region b")
    finally:
        try:
            with open(pidfile) as f:
                os.kill(int(f.read().strip()), 15)
        except (OSError, ValueError):
            pass


CLUSTER_PORT = SHARED_PORT + 620  # +620, +621, +622 (buses +10000)


def cluster_sh(*args):
    p = subprocess.run(["bash", os.path.join(os.path.dirname(env_str("SLUICE_FIXTURE")),
                                             "redis_cluster.sh"), *args],
                       capture_output=True, text=True, timeout=120)
    true(p.returncode == 0, f"redis_cluster.sh {' '.join(args)}: {(p.stdout + p.stderr)[-1500:]}")
    return p.stdout


def cluster():
    """A three-master Redis Cluster (tests/fixtures/redis_cluster.sh) as the L2 (`cluster =
    true`, one seed): L2 hits, invalidation across slots (the versions' slot and the entries'
    slots differ), then, while 4 sessions write and read their rows, the slot of a cached
    entry and the versions' slot are migrated to other masters: zero errors, zero wrong
    answers, and afterwards reads are answered from the cluster again."""
    cdir = os.path.join(DIR, "cluster")
    cluster_sh("stop", cdir) if os.path.exists(os.path.join(cdir, "settings")) else None
    cluster_sh("start", cdir, str(CLUSTER_PORT))
    try:
        redis = f'host = "127.0.0.1"\nport = {CLUSTER_PORT}\ncluster = true\n'
        with Daemon(DIR, "cluster", config(615, redis, prefix="ct:"), port=port(615),
                    admin=admin(615), wait_snapshot=True):
            p = port(615)
            q = HINT + "SELECT id, v FROM cr_t WHERE id = 1"

            def cached():
                with connect(p) as s:
                    one(s, q)
                    time.sleep(0.2)
                    _, ran = served(lambda: [one(s, q) for _ in range(5)])
                    return ran == 0
            true(wait_until(cached, 5, step=0.3), "L2 hits from the cluster")
            invalidation(p)
            # Where the entries and the versions live.
            keys = []
            for node in range(3):
                out = redis_cli("--scan", "--pattern", "ct:*", p=CLUSTER_PORT + node)
                keys += [(k, CLUSTER_PORT + node) for k in out.split() if k]
            true(any(k.startswith("ct:{meta}") for k, _ in keys), f"versions in the cluster: {keys}")
            moves = []
            for k, owner in keys[:1] + [kk for kk in keys if kk[0].startswith("ct:{meta}")][:1]:
                slot = redis_cli("CLUSTER", "KEYSLOT", k, p=owner)
                target = CLUSTER_PORT + (owner - CLUSTER_PORT + 1) % 3
                moves.append((slot, target))
            stop = threading.Event()
            errors, wrong = [], []

            def worker(n):
                row = 10 + n
                try:
                    with connect(p) as s:
                        i = 0
                        while not stop.is_set():
                            i += 1
                            with s.cursor() as c:
                                c.execute("UPDATE cr_t SET v = %s WHERE id = %s", (i, row))
                            got = one(s, HINT + "SELECT v FROM cr_t WHERE id = %s", (row,))[0]
                            if got != i:
                                wrong.append((row, i, got))
                            one(s, q)
                except Exception as e:  # noqa: BLE001
                    errors.append(f"session {n}: {e!r}")
            threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
            for t in threads:
                t.start()
            try:
                time.sleep(0.5)
                for slot, target in moves:
                    cluster_sh("migrate", cdir, slot, str(target))
                time.sleep(0.5)
            finally:
                stop.set()
                for t in threads:
                    t.join(60)
            eq(errors, [], "client errors while slots migrated")
            eq(wrong, [], "wrong answers while slots migrated")
            true(wait_until(cached, 5, step=0.3), "L2 hits from the cluster after the migrations")
    finally:
        cluster_sh("stop", cdir)


class TlsRedis:
    """A redis-server with only a TLS port and an ACL user `sluice` / `s3cret`."""

    def __init__(self):
        self.dir = os.path.join(DIR, "tls-redis")
        os.makedirs(self.dir, exist_ok=True)
        self.pidfile = os.path.join(self.dir, "redis.pid")

    def __enter__(self):
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        subprocess.run(
            ["redis-server", "--port", "0", "--tls-port", str(TLS_REDIS_PORT),
             "--bind", "127.0.0.1", "--tls-cert-file", os.path.join(CERTS, "server.pem"),
             "--tls-key-file", os.path.join(CERTS, "server.key"),
             "--tls-ca-cert-file", os.path.join(CERTS, "ca.pem"), "--tls-auth-clients", "no",
             "--save", "", "--appendonly", "no", "--daemonize", "yes",
             "--pidfile", self.pidfile, "--logfile", os.path.join(self.dir, "redis.log"),
             "--dir", self.dir, "--user", "default", "off",
             "--user", "sluice", "on", ">s3cret", "~*", "&*", "+@all"],
            check=True, timeout=10)
        true(wait_until(lambda: os.path.exists(self.pidfile), 5), "TLS redis-server started")
        return self

    def __exit__(self, *exc):
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().strip())
            os.kill(pid, 15)
            wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 5)
        except (OSError, ValueError):
            pass


def tls_and_auth():
    redis = (f'host = "127.0.0.1"\nport = {TLS_REDIS_PORT}\ntls = true\n'
             f'tls_ca_file = "{os.path.join(CERTS, "ca.pem")}"\ntls_server_name = "localhost"\n'
             f'user = "sluice"\n')
    q = HINT + "SELECT id, v FROM cr_t WHERE id = 1"
    with TlsRedis():
        with Daemon(DIR, "tls", config(612, redis + 'password = "s3cret"\n'), port=port(612),
                    admin=admin(612), wait_snapshot=True):
            def cached():
                with connect(port(612)) as s:
                    one(s, q)
                    time.sleep(0.2)
                    _, ran = served(lambda: [one(s, q) for _ in range(5)])
                    return ran == 0
            true(wait_until(cached, 5, step=0.3), "L2 hits through Redis over TLS with AUTH")
        with Daemon(DIR, "badauth", config(613, redis + 'password = "wrong"\n'), port=port(613),
                    admin=admin(613), wait_snapshot=True) as bad:
            with connect(port(613)) as s:
                rows, ran = served(lambda: [one(s, q) for _ in range(5)])
            with itlib.connect(PRIMARY_PORT) as d:
                want = one(d, "SELECT id, v FROM cr_t WHERE id = 1")
            eq(rows, [want] * 5, "answers with a Redis that refuses the password")
            eq(ran, 5, "reads bypass the cache when Redis refuses the password")
            m = scrape_metrics(admin(613))
            true(itlib.metric_value(m, "sluice_cache_bypass_total", reason="redis") >= 5,
                 "sluice_cache_bypass_total{reason=redis} counts them")
            true("Redis does not answer" in bad.log_text(), "the log says Redis does not answer")


def main():
    checks = Checks()
    setup()
    redis_cli("FLUSHALL")
    with Daemon(DIR, "l2", config(610, plain_redis()), port=port(610), admin=admin(610),
                wait_snapshot=True) as d:
        checks.run("1 L2 hits", l2_hits, port(610))
        checks.run("2 invalidation", invalidation, port(610))
        checks.run("3 Redis stopped and started under load", redis_down, d, port(610))
        checks.run("4 a full Redis", full_redis, port(610))
        checks.run("5 sysbench with Redis stopped and started", sysbench_redis_down, port(610))
        with Daemon(DIR, "l2b", config(611, plain_redis()), port=port(611), admin=admin(611),
                    wait_snapshot=True) as b:
            checks.run("7 consistency fleet across two Sluices", fleet, port(610), port(611))
        with Daemon(DIR, "l1b", config(614, plain_redis(), l1=16 << 20), port=port(614),
                    admin=admin(614), wait_snapshot=True) as b:
            checks.run("8 two Sluices with L1 sharing a Redis", two_sluices, port(610),
                       port(614), admin(614))
            true(b.alive(), "the L1 daemon is alive")
            true(b.alive(), "the second daemon is alive")
        true(d.alive(), "the daemon is alive")
    checks.run("6 TLS and AUTH", tls_and_auth)
    checks.run("9 a three-master Redis Cluster with slots migrated", cluster)
    checks.run("10 regions", regions)
    checks.finish()


if __name__ == "__main__":
    main()
