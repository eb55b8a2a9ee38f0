#!/usr/bin/python3
"""metrics: the admin HTTP endpoint -- /healthz, and /metrics counters that move as they should
when clients log in, run queries and fail to log in."""

import re
import urllib.error
import urllib.request

import pymysql

from itlib import Checks, eq, true, env_int, wait_until, HOST

PORT = env_int("SLUICE_PORT")
ADMIN = env_int("SLUICE_ADMIN_PORT")
BASE = f"http://127.0.0.1:{ADMIN}"

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def get(path):
    try:
        with urllib.request.urlopen(BASE + path, timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def scrape():
    """{'name{labels}': value} of every sample on /metrics."""
    status, ctype, body = get("/metrics")
    eq(status, 200, "GET /metrics status")
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        true(m is not None, f"not a Prometheus sample line: {line!r}")
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def connect(**kw):
    args = dict(host=HOST, port=PORT, user="app", password="app", connect_timeout=5,
                autocommit=True)
    args.update(kw)
    return pymysql.connect(**args)


def test_healthz():
    status, ctype, body = get("/healthz")
    eq(status, 200, "GET /healthz status")
    eq(body.strip(), "ok", "GET /healthz body")
    status, _, _ = get("/no-such-page")
    eq(status, 404, "GET of an unknown path")


def test_exposition_format():
    # Sluice lists a command's series once it has been seen: make sure a query was.
    with connect() as conn, conn.cursor() as c:
        c.execute("SELECT 1")
    status, ctype, body = get("/metrics")
    eq(status, 200, "GET /metrics status")
    true(ctype.startswith("text/plain"), f"Content-Type {ctype!r}")
    for family, kind in [("sluice_client_connections_total", "counter"),
                         ("sluice_client_commands_total", "counter"),
                         ("sluice_client_errors_total", "counter"),
                         ("sluice_query_duration_seconds", "histogram")]:
        true(f"# TYPE {family} {kind}" in body, f"missing '# TYPE {family} {kind}'")
    m = scrape()
    for name in ["sluice_client_connections_total", 'sluice_client_commands_total{command="query"}',
                 'sluice_client_errors_total{reason="auth_failed"}',
                 "sluice_query_duration_seconds_count", "sluice_query_duration_seconds_sum"]:
        true(name in m, f"sample {name} missing from /metrics")
    buckets = sorted(((float(re.search(r'le="([^"]+)"', k).group(1)), v)
                      for k, v in m.items() if k.startswith("sluice_query_duration_seconds_bucket")),
                     key=lambda b: b[0])
    true(len(buckets) >= 2, "sluice_query_duration_seconds_bucket samples missing")
    true(buckets[-1][0] == float("inf"), "no le=\"+Inf\" bucket")
    for (lo, a), (hi, b) in zip(buckets, buckets[1:]):
        true(a <= b, f"histogram buckets not cumulative: le={lo} {a} > le={hi} {b}")
    eq(buckets[-1][1], m["sluice_query_duration_seconds_count"], "+Inf bucket = _count")


def test_query_counters():
    n = 25
    before = scrape()
    conn = connect()
    try:
        mid = scrape()
        true(mid["sluice_client_connections_active"] >= 1, "connections_active with a session open")
        with conn.cursor() as c:
            for i in range(n):
                c.execute("SELECT %s", (i,))
                eq(c.fetchone(), (i,), "query result")
        slow_before = scrape()
        with conn.cursor() as c:
            c.execute("SELECT SLEEP(0.3)")
        # Sluice records the latency just after the last byte went out: allow it a moment.
        le_05 = 'sluice_query_duration_seconds_bucket{le="0.5"}'
        wait_until(lambda: scrape()[le_05] > slow_before[le_05], 2.0)
        slow_after = scrape()
    finally:
        conn.close()
    after = scrape()
    q = 'sluice_client_commands_total{command="query"}'
    dq = after[q] - before.get(q, 0)
    true(n <= dq <= n + 5, f"{q} grew by {dq} for {n + 1} queries (expected {n + 1}..{n + 5})")
    d_conn = after["sluice_client_connections_total"] - before["sluice_client_connections_total"]
    true(d_conn >= 1, f"sluice_client_connections_total grew by {d_conn} after a login")
    d_count = after["sluice_query_duration_seconds_count"] - before["sluice_query_duration_seconds_count"]
    true(d_count >= n, f"sluice_query_duration_seconds_count grew by {d_count} for {n} queries")
    # The 0.3 s query lands in a bucket above 0.25 s: the count of the le=0.25 bucket stays.
    le = lambda m, bound: m[f'sluice_query_duration_seconds_bucket{{le="{bound}"}}']
    eq(le(slow_after, "0.25") - le(slow_before, "0.25"), 0.0, "a 0.3 s query is not counted <= 0.25 s")
    eq(le(slow_after, "0.5") - le(slow_before, "0.5"), 1.0, "a 0.3 s query is counted <= 0.5 s")
    d_sum = slow_after["sluice_query_duration_seconds_sum"] - slow_before["sluice_query_duration_seconds_sum"]
    true(0.29 <= d_sum <= 1.0, f"sluice_query_duration_seconds_sum grew by {d_sum} for a 0.3 s query")
    qp = 'sluice_client_commands_total{command="ping"}'
    before_ping = scrape().get(qp, 0)
    conn = connect()
    try:
        for _ in range(3):
            conn.ping(reconnect=False)
    finally:
        conn.close()
    eq(scrape().get(qp, 0) - before_ping, 3.0, "ping commands counted")


def test_auth_failed_counter():
    key = 'sluice_client_errors_total{reason="auth_failed"}'
    before = scrape()[key]
    try:
        connect(password="definitely-wrong")
        raise AssertionError("wrong password accepted")
    except pymysql.err.OperationalError as e:
        eq(e.args[0], 1045, "wrong password error code")
    eq(scrape()[key] - before, 1.0, f"{key} after one wrong-password login")
    conn = connect()
    conn.close()
    eq(scrape()[key] - before, 1.0, f"{key} unchanged by a good login")


def main():
    checks = Checks()
    checks.run("/healthz", test_healthz)
    checks.run("/metrics exposition format and histogram", test_exposition_format)
    checks.run("query, connection and latency counters move", test_query_counters)
    checks.run("auth_failed counter", test_auth_failed_counter)
    checks.finish()


if __name__ == "__main__":
    main()
