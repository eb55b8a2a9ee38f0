#!/usr/bin/python3
"""tds_admin (issue #11): what the admin server says of the SQL Server side, checked against
what the project's TDS test servers (tests/fixtures/tds_server.py, a simulated availability
group) say themselves: where a request ran is its @@SERVERNAME, a role is the one written
in the server's control file, the connections Sluice holds are the server's
sys.dm_exec_connections. Real clients: pymssql (FreeTDS) and pytds.

Ports: TDS_ADMIN_PORT (default SLUICE_PORT + 760) + 0..2 for the test servers, + 3 Sluice's
TDS listener, + 4 its MySQL listener (nothing behind it: the fixture waits for its greeting),
+ 5 its admin, + 6 a second TDS listener with max_connections = 3, + 7..9 a second Sluice's
TDS, MySQL and admin listeners (check 7).

 1. Metrics of requests: N reads through Sluice ran on the secondaries (@@SERVERNAME), and
    sluice_backend_statements_total{protocol="tds",destination="secondary"} grew by N, per
    backend exactly as many as ran there; M writes ran on the primary and its
    destination="primary" series grew by M plus each login's SET batches (measured first:
    a login alone adds them on the primary and nowhere else); /backends' reads and
    statements agree. The MySQL series did not move.
 2. Client connections: sluice_client_connections_active{protocol="tds"} follows the open
    pymssql connections, _total counts them; a wrong password counts auth_failed for tds
    only.
 3. Backend connections: sluice_pool_connections{protocol="tds"} (idle + busy) per backend is
    the number of Sluice's connections each server lists (sys.dm_exec_connections, minus the
    observer's and the monitor's); a connection handed from one session to the next (the
    same @@SPID) was counted in sluice_pool_resets_total{protocol="tds"}; outstanding
    shows a request while it runs (WAITFOR).
 4. GET /backends lists the 3 [[tds_backends]] with protocol "tds", the roles of the control
    files, up, LSNs and RTT, beside the MySQL entries whose fields are all still there; a
    secondary whose control file reports 60 s of lag is "lagging" with lag_ms 60000 (and
    sluice_backend_lag_seconds 60); a killed secondary is "down" (sluice_backend_up 0) while
    reads go on on the other; restarted, it is up again.
 5. Connection limits: the listener with max_connections = 3 refuses a 4th client with
    17809 (a TDS ERROR at login) while its 3 sessions and the other listener's go on; once
    one closes, a new client gets in. app2 (max_connections = 2) is refused a 3rd session
    with 17809 naming the user's limit. too_many_connections{protocol="tds"} counted both.
 6. A switchover written in the control files (primary demoted, secondary1 promoted):
    /backends and sluice_backend_role show the new roles, a write runs on secondary1
    (@@SERVERNAME) and is counted as destination="primary" for it, and
    sluice_failovers_total{protocol="tds"} grew.
 7. The process-wide limit: a second Sluice with max_client_connections = 2 and one TCP
    connection open on its MySQL listener (counted over both protocols) takes one TDS
    session, refuses the next with 17809 naming max_client_connections, and takes one again
    once the MySQL connection closed.
"""

import json
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itlib  # noqa: E402
import tdslib  # noqa: E402
from tdslib import direct, q  # noqa: E402
from itlib import Checks, Daemon, eq, true, wait_until  # noqa: E402

import pymssql  # noqa: E402
import pytds  # noqa: E402

BASE = int(os.environ.get("TDS_ADMIN_PORT", itlib.env_int("SLUICE_PORT") + 760))
SERVERS = [("primary", BASE, "primary"), ("secondary1", BASE + 1, "secondary"),
           ("secondary2", BASE + 2, "secondary")]
PORT_OF = {name: port for name, port, _ in SERVERS}
TDS_PORT, MYSQL_PORT, ADMIN_PORT, LIMITED_PORT = BASE + 3, BASE + 4, BASE + 5, BASE + 6
LISTENER_LIMIT, USER_LIMIT = 3, 2
TOTAL_TDS, TOTAL_MYSQL, TOTAL_ADMIN, TOTAL_LIMIT = BASE + 7, BASE + 8, BASE + 9, 2
LAG_MS = 100
DIR = tempfile.mkdtemp(prefix="sluice-tds-admin-")
SECONDARIES = ("secondary1", "secondary2")
TDS = {"protocol": "tds"}

CONFIG = tdslib.tds_config(
    BASE, TDS_PORT, MYSQL_PORT, ADMIN_PORT, itlib.topology_backends_toml(),
    "[routing]\nmax_lag_ms = 5000\nfailover_hold_ms = 15000\n"
    f'[[listeners]]\nname = "tds_limited"\nprotocol = "tds"\naddress = "127.0.0.1"\n'
    f"port = {LIMITED_PORT}\nmax_connections = {LISTENER_LIMIT}\n")
_APP2 = 'name = "app2"\npassword = "app2"\n'
assert _APP2 in CONFIG
CONFIG = CONFIG.replace(_APP2, _APP2 + f"max_connections = {USER_LIMIT}\n")


def ms(port=TDS_PORT, user="app", password="app"):
    return pymssql.connect(server="127.0.0.1", port=port, user=user, password=password,
                           database="sluice", autocommit=True, login_timeout=10, timeout=30)


def server_of(conn, sql="SELECT @@SERVERNAME"):
    return q(conn, sql)[0][-1]


def scrape(port=ADMIN_PORT):
    return itlib.scrape_metrics(port)


def value(samples, name, **labels):
    return itlib.metric_value(samples, name, **labels)


def mysql_only(samples, name):
    """The series of NAME without a protocol label: the MySQL side's."""
    return sum(v for n, l, v in samples if n == name and "protocol" not in l)


def backends_doc():
    with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/backends", timeout=5) as r:
        eq(r.status, 200, "GET /backends status")
        return json.loads(r.read().decode())


def tds_entries(doc=None):
    doc = doc or backends_doc()
    return {b["name"]: b for b in doc["backends"] if b.get("protocol") == "tds"}


def wait_caught_up():
    """Until both secondaries have every write (their own data, read directly), and the
    monitor has seen their LSNs."""
    p = direct(PORT_OF["primary"] if servers.primary == "primary" else PORT_OF["secondary1"])
    want = q(p, "SELECT COUNT(*) FROM items")[0][0]
    p.close()
    for name in [n for n, _, _ in SERVERS if n != servers.primary and n in servers.alive()]:
        def has(port=PORT_OF[name]):
            c = direct(port)
            try:
                return q(c, "SELECT COUNT(*) FROM items")[0][0] == want
            finally:
                c.close()
        true(wait_until(has, 10), f"{name} caught up")
    time.sleep(0.3)


def login_requests():
    """What a pymssql login costs on the primary: its SET batches (session settings, which run
    where the session is, then are replayed elsewhere), counted as primary requests."""
    before = scrape()
    ms().close()
    after = scrape()
    k = itlib.metric_delta(before, after, "sluice_backend_statements_total", backend="primary",
                           destination="primary", **TDS)
    eq(itlib.metric_delta(before, after, "sluice_backend_statements_total", **TDS), k,
       "a login's own requests all ran on the primary")
    return k


def check_request_metrics():
    wait_caught_up()
    n, m = 12, 4
    k = login_requests()
    before = scrape()
    ran = {}
    for i in range(n):
        # A session each: the replica choice spreads sessions over both secondaries.
        c = ms()
        where = server_of(c, f"SELECT {i}, @@SERVERNAME")
        ran[where] = ran.get(where, 0) + 1
        c.close()
    true(set(ran) <= set(SECONDARIES), f"the reads ran on secondaries only: {ran}")
    w = ms()
    for i in range(m):
        got = q(w, f"INSERT INTO items (name) VALUES ('metric-{i}'); SELECT @@SERVERNAME")
        eq(got[0][0], "primary", "a write ran on the primary")
    w.close()
    after = scrape()

    def d(**labels):
        return itlib.metric_delta(before, after, "sluice_backend_statements_total",
                                  protocol="tds", **labels)
    eq(d(destination="secondary"), float(n), "secondary requests counted (all backends)")
    for name in SECONDARIES:
        eq(d(backend=name, destination="secondary"), float(ran.get(name, 0)),
           f"secondary requests counted for {name} (ran there: {ran.get(name, 0)})")
        eq(d(backend=name, destination="primary"), 0.0, f"no primary request on {name}")
    eq(d(backend="primary", destination="primary"), m + k * (n + 1),
       f"the writes counted on the primary (and each login's {k:g} SET batches)")
    eq(d(backend="primary", destination="secondary"), 0.0, "nothing counted as secondary there")
    eq(mysql_only(after, "sluice_backend_statements_total")
       - mysql_only(before, "sluice_backend_statements_total"), 0.0,
       "the MySQL backends' series did not move")
    e = tds_entries()
    total = sum(e[name]["statements"] for name in SECONDARIES)
    true(total >= n, f"/backends statements of the secondaries ({total}) count the {n} reads")
    true(all(e[name]["reads"] == e[name]["statements"] for name in SECONDARIES),
         f"every request on a secondary was a read: {e}")
    true(e["primary"]["statements"] >= m + k * (n + 1), "/backends statements of the primary")


def check_client_metrics():
    # Check 1's connections are closed, and Sluice has seen them go (else one ending now
    # would be taken off the count below).
    true(wait_until(lambda: value(scrape(), "sluice_client_connections_active", **TDS) == 0, 5),
         "no TDS client connection open before the check")
    before = scrape()
    mysql_before = mysql_only(before, "sluice_client_connections_total")
    conns = [ms() for _ in range(3)]
    mid = scrape()
    eq(value(mid, "sluice_client_connections_active", **TDS)
       - value(before, "sluice_client_connections_active", **TDS), 3.0,
       "3 pymssql connections open: active{protocol=tds} + 3")
    eq(itlib.metric_delta(before, mid, "sluice_client_connections_total", **TDS), 3.0,
       "total{protocol=tds} + 3")
    for c in conns:
        c.close()
    true(wait_until(lambda: value(scrape(), "sluice_client_connections_active", **TDS)
                    == value(before, "sluice_client_connections_active", **TDS), 5),
         "active{protocol=tds} back down once they closed")
    key = dict(reason="auth_failed", **TDS)
    a0 = value(scrape(), "sluice_client_errors_total", **key)
    m0 = mysql_only(scrape(), "sluice_client_errors_total")
    try:
        ms(password="wrong")
        raise AssertionError("a wrong password was accepted")
    except pymssql.OperationalError as e:
        true("18456" in str(e), f"18456 for a wrong password: {e}")
    after = scrape()
    eq(value(after, "sluice_client_errors_total", **key) - a0, 1.0, "auth_failed{protocol=tds} + 1")
    eq(mysql_only(after, "sluice_client_errors_total") - m0, 0.0, "MySQL's error series unchanged")
    eq(mysql_only(after, "sluice_client_connections_total"), mysql_before,
       "MySQL's connection counter unchanged by TDS clients")


def sluice_connections(observer):
    """Connections on a server other than the observer's own and the monitor's."""
    return q(observer, "SELECT COUNT(*) FROM sys.dm_exec_connections")[0][0] - 2


def check_backend_connections():
    wait_caught_up()
    # Sequential sessions: each reads once; a pooled connection handed to the next session
    # shows the same @@SPID, and was reset for it.
    seen, handovers = set(), 0
    r0 = value(scrape(), "sluice_pool_resets_total", **TDS)
    for i in range(8):
        c = ms()
        server, spid = q(c, f"SELECT {i}, @@SERVERNAME, @@SPID")[0][1:]
        if (server, spid) in seen:
            handovers += 1
        seen.add((server, spid))
        c.close()
    resets = value(scrape(), "sluice_pool_resets_total", **TDS) - r0
    true(handovers >= 1, f"some connection served two sessions: {sorted(seen)}")
    # Logins borrow a primary connection too (reset when it was another session's).
    true(handovers <= resets <= handovers + 8,
         f"resets{{protocol=tds}} grew by {resets} for {handovers} hand-overs seen on secondaries")
    observers = {name: direct(PORT_OF[name]) for name, _, _ in SERVERS}
    try:
        def agree():
            s = scrape()
            got = {name: value(s, "sluice_pool_connections", backend=name, **TDS)
                   for name in observers}
            want = {name: sluice_connections(o) for name, o in observers.items()}
            agree.last = (got, want)
            return all(got[k] == want[k] for k in got)
        true(wait_until(agree, 10), f"open connections per backend (Sluice, servers): "
             f"{getattr(agree, 'last', None)}")
        s = scrape()
        idle = sum(value(s, "sluice_pool_connections", backend=n, state="idle", **TDS)
                   for n in observers)
        true(idle >= 2, f"idle pooled connections after the sessions closed: {idle}")
        # A request in flight is outstanding on its backend.
        c = ms()
        box = {}
        t = threading.Thread(target=lambda: box.update(
            r=q(c, "WAITFOR DELAY '00:00:01'; SELECT @@SERVERNAME")))
        t.start()
        busy = {}
        true(wait_until(lambda: busy.update(
            {k: v["outstanding"] for k, v in tds_entries().items() if v["outstanding"]})
            or bool(busy), 0.9, step=0.05), "a running request shows as outstanding")
        t.join()
        where = box["r"][0][0]
        eq(list(busy), [where], f"outstanding on the backend that ran it ({where})")
        c.close()
        eq(sum(v["outstanding"] for v in tds_entries().values()), 0, "nothing outstanding after")
    finally:
        for o in observers.values():
            o.close()


def check_backends_view():
    doc = backends_doc()
    true(doc.get("tds_monitor") is True and doc.get("tds_topology_version", 0) >= 1,
         f"the TDS monitor's snapshot is shown: {doc.get('tds_monitor')}, "
         f"{doc.get('tds_topology_version')}")
    mysql = [b for b in doc["backends"] if b.get("protocol") == "mysql"]
    eq(sorted(b["name"] for b in mysql), ["primary", "replica1", "replica2"],
       "the MySQL entries are still listed")
    fields = {"name", "role", "state", "monitored", "replicating", "read_only", "lag_ms",
              "rtt_ms", "zone", "gtid", "outstanding", "sessions", "reads", "statements"}
    for b in mysql:
        true(fields <= set(b), f"MySQL entry {b['name']} keeps its fields: {sorted(b)}")
    tds = tds_entries(doc)
    eq(len([b for b in doc["backends"] if b.get("protocol") == "tds"]), 3, "3 TDS entries")
    for name, _, role in SERVERS:
        b = tds[name]
        eq(b["role"], role, f"{name}'s role (its control file: {role})")
        eq(b["state"], "up", f"{name} is up")
        true(fields <= set(b), f"TDS entry {name} has the MySQL entries' fields: {sorted(b)}")
        true(b["monitored"] and b["rtt_ms"] is not None and b["rtt_ms"] > 0,
             f"{name}: monitored, RTT measured: {b}")
        true(b["lsn"].isdigit(), f"{name}: an LSN ({b['lsn']!r})")
        eq(b["read_only"], role != "primary", f"{name}: read_only")
    # The LSNs are the servers' own (last_commit_lsn, last_redone_lsn), read directly.
    p = direct(PORT_OF["primary"])
    lsn = q(p, "SELECT CAST(MAX(last_commit_lsn) AS nvarchar(40)) "
               "FROM sys.dm_hadr_database_replica_states WHERE is_local = 1")[0][0]
    p.close()
    true(wait_until(lambda: tds_entries()["primary"]["lsn"] == str(lsn), 3),
         f"the primary's LSN is its last_commit_lsn ({lsn})")
    s = scrape()
    for name, _, role in SERVERS:
        eq(value(s, "sluice_backend_up", backend=name, **TDS), 1.0, f"sluice_backend_up {name}")
        eq(value(s, "sluice_backend_role", backend=name, role=role, **TDS), 1.0,
           f"sluice_backend_role {name} {role}")
        true(value(s, "sluice_backend_rtt_seconds", backend=name, **TDS) > 0, f"rtt {name}")
    # Lag, as the control file makes the server report it.
    servers.control("secondary1", secondary_lag_seconds=60)
    true(wait_until(lambda: tds_entries()["secondary1"]["lag_ms"] == 60000.0, 5),
         "secondary1 reports 60 s of lag")
    eq(tds_entries()["secondary1"]["state"], "lagging", "over max_lag_ms: lagging")
    eq(value(scrape(), "sluice_backend_lag_seconds", backend="secondary1", **TDS), 60.0,
       "sluice_backend_lag_seconds secondary1")
    for _ in range(4):
        c = ms()
        eq(server_of(c), "secondary2", "reads avoid the lagging secondary")
        c.close()
    servers.control("secondary1", secondary_lag_seconds=None)
    true(wait_until(lambda: tds_entries()["secondary1"]["state"] == "up", 5),
         "secondary1 back within max_lag_ms")
    # Down: the server is killed.
    servers.kill("secondary2")
    true(wait_until(lambda: tds_entries()["secondary2"]["state"] == "down", 10),
         "a killed secondary is down")
    eq(value(scrape(), "sluice_backend_up", backend="secondary2", **TDS), 0.0,
       "sluice_backend_up secondary2 = 0")
    for _ in range(3):
        c = ms()
        eq(server_of(c), "secondary1", "reads go to the other secondary")
        c.close()
    servers.start("secondary2", PORT_OF["secondary2"], "secondary")
    true(wait_until(lambda: tds_entries()["secondary2"]["state"] == "up", 10),
         "restarted, it is up again")


TOO_MANY = dict(reason="too_many_connections", **TDS)


def refusals():
    return value(scrape(), "sluice_client_errors_total", **TOO_MANY)


def refused(port, user, what):
    """A pymssql and a pytds login on PORT as USER: both must be refused with 17809 (the
    ERROR token of the login reply), each refusal counted; returns the message pytds read."""
    e0 = refusals()
    try:
        ms(port, user=user, password=user).close()
        raise AssertionError(f"{what}: the pymssql login was accepted")
    except pymssql.OperationalError as e:
        code = e.args[0][0] if isinstance(e.args[0], tuple) else e.args[0]
        eq(code, 17809, f"{what}: pymssql sees 17809 ({e})")
    # Clients try a refused login again (FreeTDS once more; pytds, as Microsoft's retry
    # advice says, until its login timeout): at least one refusal each.
    e1 = refusals()
    true(e1 >= e0 + 1, f"{what}: too_many_connections{{protocol=tds}} counted pymssql's")
    try:
        pytds.connect(server="127.0.0.1", port=port, user=user, password=user,
                      database="sluice", autocommit=True, login_timeout=1).close()
        raise AssertionError(f"{what}: the pytds login was accepted")
    except pytds.OperationalError as e:
        eq(e.msg_no, 17809, f"{what}: pytds sees 17809 ({e})")
        true(refusals() >= e1 + 1, f"{what}: too_many_connections{{protocol=tds}} counted pytds'")
        return e.message


def check_limits():
    held = [ms(LIMITED_PORT) for _ in range(LISTENER_LIMIT)]
    other = ms()
    text = refused(LIMITED_PORT, "app", f"client {LISTENER_LIMIT + 1} of the listener")
    true("tds_limited's max_connections" in text, f"the message names the limit: {text}")
    for c in held + [other]:
        true(server_of(c) in ("primary",) + SECONDARIES, "the sessions in the limit keep working")
    held.pop().close()
    time.sleep(0.2)  # Sluice sees the close
    e0 = refusals()
    true(_login_ok(LIMITED_PORT), "once one closed, a new client gets in")
    eq(refusals(), e0, "that login was not refused")
    # A user's own limit, on the unlimited listener.
    mine = [ms(user="app2", password="app2") for _ in range(USER_LIMIT)]
    text = refused(TDS_PORT, "app2", f"app2's session {USER_LIMIT + 1}")
    true("user app2's max_connections" in text, f"the message names the user's limit: {text}")
    for c in mine:
        true(server_of(c) in ("primary",) + SECONDARIES, "app2's sessions keep working")
    mine.pop().close()
    time.sleep(0.2)
    e0 = refusals()
    true(_login_ok(TDS_PORT, "app2"), "app2 gets in again after a close")
    eq(refusals(), e0, "that login was not refused")
    for c in held + mine + [other]:
        c.close()


def check_total_limit():
    config = tdslib.tds_config(BASE, TOTAL_TDS, TOTAL_MYSQL, TOTAL_ADMIN, itlib.topology_backends_toml(),
                               "[routing]\nmax_lag_ms = 5000\n")
    config = f"max_client_connections = {TOTAL_LIMIT}\n" + config
    with Daemon(os.path.join(DIR, "total"), "tds-admin-total", config, port=TOTAL_MYSQL,
                admin=TOTAL_ADMIN) as d:
        true(wait_until(lambda: json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{TOTAL_ADMIN}/backends", timeout=5).read()).get(
            "tds_topology_version", 0) >= 1, 10), "the second Sluice's TDS monitor's first snapshot")
        # A MySQL client counts: the connection is counted when accepted, before its login.
        mysql_client = socket.create_connection(("127.0.0.1", TOTAL_MYSQL), timeout=5)
        mysql_client.recv(1)  # Sluice's greeting: it has accepted and counted the connection
        first = ms(TOTAL_TDS)
        e0 = value(scrape(TOTAL_ADMIN), "sluice_client_errors_total", **TOO_MANY)
        try:
            pytds.connect(server="127.0.0.1", port=TOTAL_TDS, user="app", password="app",
                          database="sluice", autocommit=True, login_timeout=1).close()
            raise AssertionError("the third client of the process was accepted")
        except pytds.OperationalError as e:
            eq(e.msg_no, 17809, f"pytds sees 17809 ({e})")
            true("max_client_connections" in e.message, f"the message names the limit: {e.message}")
        true(value(scrape(TOTAL_ADMIN), "sluice_client_errors_total", **TOO_MANY) >= e0 + 1,
             "too_many_connections{protocol=tds} counted the refusal")
        true(server_of(first) in ("primary",) + SECONDARIES, "the session within the limit works")
        mysql_client.close()
        time.sleep(0.2)  # Sluice sees the close
        true(_login_ok(TOTAL_TDS), "once the MySQL connection closed, a TDS client gets in")
        first.close()
        true(d.alive(), "the second Sluice is alive")


def _login_ok(port, user="app"):
    try:
        c = ms(port, user=user, password=user)
    except pymssql.OperationalError:
        return False
    q(c, "SELECT 1")
    c.close()
    return True


def check_switchover():
    wait_caught_up()
    k = login_requests()
    f0 = value(scrape(), "sluice_failovers_total", **TDS)
    before = scrape()
    servers.control("primary", role="secondary")
    servers.control("secondary1", role="primary")
    servers.primary = "secondary1"
    want = {"primary": "secondary", "secondary1": "primary", "secondary2": "secondary"}

    def roles():
        return {k: v["role"] for k, v in tds_entries().items()}
    true(wait_until(lambda: roles() == want, 10), f"/backends shows the new roles: {roles()}")
    s = scrape()
    for name, role in want.items():
        eq(value(s, "sluice_backend_role", backend=name, role=role, **TDS), 1.0,
           f"sluice_backend_role {name} {role}")
    c = ms()
    got = q(c, "INSERT INTO items (name) VALUES ('switched'); SELECT @@SERVERNAME")
    eq(got[0][0], "secondary1", "the write ran on the promoted secondary1")
    c.close()
    after = scrape()
    eq(itlib.metric_delta(before, after, "sluice_backend_statements_total", backend="secondary1",
                          destination="primary", **TDS), 1 + k,
       "the write (and the login's SET batches) counted as destination primary on secondary1")
    true(value(after, "sluice_failovers_total", **TDS) >= f0 + 1, "sluice_failovers_total{tds}")


class Servers(tdslib.TdsServers):
    """TdsServers that remember which servers run and which is primary."""

    primary = "primary"

    def alive(self):
        return [n for n, p in self.procs.items() if p.poll() is None]


servers = Servers(DIR, LAG_MS)


def main():
    checks = Checks()
    with tdslib.availability_group(servers, BASE, checks):
        with Daemon(DIR, "tds-admin", CONFIG, port=MYSQL_PORT, admin=ADMIN_PORT):
            true(wait_until(lambda: backends_doc().get("tds_topology_version", 0) >= 1, 10),
                 "the TDS monitor's first snapshot")
            time.sleep(0.5)
            checks.run("1 requests per backend and destination, proven by @@SERVERNAME",
                       check_request_metrics)
            checks.run("2 client connections and errors, protocol tds", check_client_metrics)
            checks.run("3 backend connections: open, idle, resets, outstanding",
                       check_backend_connections)
            checks.run("4 /backends: TDS entries, roles, lag, down", check_backends_view)
            checks.run("5 connection limits: 17809, others untouched", check_limits)
            checks.run("6 a switchover: roles, destination, failovers", check_switchover)
        checks.run("7 max_client_connections over both protocols: 17809", check_total_limit)
    checks.finish()


if __name__ == "__main__":
    main()
