#!/usr/bin/python3
"""readme_claims_daemon: README claims (issue #7, section 4) that need Sluice daemons with
configs of their own. Each daemon runs on SLUICE_PORT + 400 (admin SLUICE_ADMIN_PORT + 400:
16433 / 16490 under CTest), one at a time, config, pid file and log in
$SLUICE_IT_DIR/readme_claims/; every daemon that should still run at the end of its check is
ended with `tests/fixtures/sluice.sh stop-check` (it must exit 0 after SIGTERM with a clean
log), the ones a check stops itself are held to their recorded exit status and to
`sluice.sh check-log`. Other ports: a second instance's admin on SLUICE_ADMIN_PORT + 401
(16491), a foreign listener on SLUICE_PORT + 401 (16434), a TCP relay to the primary on
127.0.0.2:SLUICE_PORT + 402 (16435). SLUICE_RC_PORT / SLUICE_RC_ADMIN_PORT (never set by
CTest) move them all, for a private stack whose ports lie in the kernel's ephemeral range.

Where a statement ran is read from the servers: @@server_id in the statement, or the
servers' own status counters (Master_gtid_wait_*, Aborted_connects) read directly.

 1. [routing] read_your_writes = false: with both replicas' SQL threads stopped, a read right
    after an INSERT on the same connection is answered stale by a replica, and no
    MASTER_GTID_WAIT runs on the replicas; the shared daemon (default true) answers the same
    read from the primary with the row.
 2. causal_read_timeout_ms (consistency "session"): 50 -> each read after a write waits ~50 ms on the replica (the
    replica's own Master_gtid_wait_time), then the primary answers with the row; 1500 -> the
    read takes ~1.5 s (the key is read, not the default 100).
 3. replica_retry_ms = 1000: a stopped replica is skipped by new sessions and used again
    after it is back and the time is over; attempts on a replica that drops every
    connection (a listener on its port that accepts and closes, recording when) come about
    1 s apart while sessions keep reading; a replica refusing the login (account locked
    there) is skipped by every session for that time, not tried by each (README: "a replica
    that refuses a new connection (down, login refused) is skipped by every session's new
    choices for replica_retry_ms").
 4. Query rules by `user` (app2 -> primary) and by `schema` (sbtest -> refuse 1142).
 5. Exit 1 on a taken port (another Sluice; another program on the listener port and on the
    admin port, the error naming the port) and on a certificate that cannot be used (a
    readable file that holds no certificate / key / CA; a certificate of mode 000, read by a
    daemon running as nobody when the test runs as root; a directory in its place): the
    daemon never starts half-configured.
 6. A second SIGTERM closes everything at once: a session in SELECT SLEEP(20) under
    shutdown_grace_ms = 30000 is cut within ~2 s of it, exit status 0.
 7. SIGHUP is logged ("reload is not supported yet; ignored") and changes nothing; SIGPIPE
    is ignored; sessions old and new keep working; exit 0 at the end.
 8. Backend TLS with a client certificate (a user REQUIRE X509 on the primary logs in through
    Sluice only when [backend_tls] has the certificate) and with a hostname mismatch
    (verify_hostname = true refuses a backend whose certificate does not name the host it
    was reached by, 1105 naming it; false lets it through, still over TLS).
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pymysql

import itlib
from itlib import (Checks, Daemon, eq, true, env_int, env_str, REPLICA_IDS, expect_replica,
                   topology, wait_until)

SHARED_PORT = env_int("SLUICE_PORT")
# SLUICE_RC_PORT / SLUICE_RC_ADMIN_PORT (never set by CTest) move this test's daemons, e.g.
# below 32768 when a private stack's ports lie in the kernel's ephemeral range, where other
# stacks' client sockets can hold them.
PORT = int(os.environ.get("SLUICE_RC_PORT") or SHARED_PORT + 400)
ADMIN = int(os.environ.get("SLUICE_RC_ADMIN_PORT") or env_int("SLUICE_ADMIN_PORT") + 400)
ADMIN2 = ADMIN + 1
FOREIGN_PORT = PORT + 1
RELAY_PORT = PORT + 2
RELAY_HOST = "127.0.0.2"
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
REPLICA1_PORT = env_int("SLUICE_REPLICA1_PORT")
REPLICA2_PORT = env_int("SLUICE_REPLICA2_PORT")
BIN = env_str("SLUICE_BIN")
CA = env_str("SLUICE_CA")
CA_KEY = os.path.join(os.path.dirname(CA), "ca.key")
SERVER_CERT = os.path.join(os.path.dirname(CA), "server.pem")
SERVER_KEY = os.path.join(os.path.dirname(CA), "server.key")
DIR = os.path.join(env_str("SLUICE_IT_DIR"), "readme_claims")
DB = "sluice_test"
X509_USER, X509_PASSWORD = "rc_x509", "rc_x509_pw"


# -------------------------------------------------------------------------- helpers ----

def connect(port=PORT, **kw):
    return itlib.connect(port, **kw)


def one(conn, sql, args=None):
    with conn.cursor() as c:
        c.execute(sql, args)
        return c.fetchone()


def error_of(fn):
    """(code, message) of the pymysql error FN raises; fails if it raises none."""
    try:
        fn()
    except pymysql.MySQLError as e:
        return e.args[0], e.args[1] if len(e.args) > 1 else ""
    raise AssertionError("no error; one was expected")


def status(port, *names):
    """{name: int} of SHOW GLOBAL STATUS read directly on the server at PORT."""
    conn = connect(port, database=None)
    try:
        with conn.cursor() as c:
            c.execute("SHOW GLOBAL STATUS WHERE Variable_name IN (%s)" % ",".join(["%s"] * len(names)),
                      names)
            out = {k: int(v) for k, v in c.fetchall()}
    finally:
        conn.close()
    eq(sorted(out), sorted(names), f"status variables of the server on {port}")
    return out


def admin_status(server, *names):
    """{name: int} of SHOW GLOBAL STATUS on SERVER, read as the topology's admin account over
    its unix socket (works while app is locked out there)."""
    out = {}
    quoted = ",".join(f"'{n}'" for n in names)
    for line in server_sql(server, f"SHOW GLOBAL STATUS WHERE Variable_name IN ({quoted})").splitlines():
        k, v = line.split("\t")
        out[k] = int(v)
    eq(sorted(out), sorted(names), f"status variables of {server}")
    return out


def replicas_status(*names):
    return {"replica1": status(REPLICA1_PORT, *names), "replica2": status(REPLICA2_PORT, *names)}


def replicas_delta(before, after, name):
    return {r: after[r][name] - before[r][name] for r in before}


def server_sql(server, sql):
    """SQL as the topology's admin account over SERVER's unix socket."""
    return topology("sql", server, "-N", "-B", "-e", sql)


def sync():
    topology("wait-sync")


def backends_toml(replicas=True):
    out = f"""
[[backends]]
name = "primary"
host = "127.0.0.1"
port = {PRIMARY_PORT}
role = "primary"
"""
    if replicas:
        for name, port in (("replica1", REPLICA1_PORT), ("replica2", REPLICA2_PORT)):
            out += f"""
[[backends]]
name = "{name}"
host = "127.0.0.1"
port = {port}
role = "replica"
"""
    return out


def config_text(extra="", backends=None, port=PORT, admin=ADMIN, grace_ms=10000, users=None,
                listener_extra=""):
    users = users or [("app", "app"), ("app2", "app2")]
    text = f"""workers = 2
connect_timeout_ms = 3000
client_handshake_timeout_ms = 5000
shutdown_grace_ms = {grace_ms}

[[listeners]]
name = "plain"
address = "127.0.0.1"
port = {port}
{listener_extra}
{backends if backends is not None else backends_toml()}
"""
    for name, password in users:
        text += f'\n[[users]]\nname = "{name}"\npassword = "{password}"\n'
    text += f"""
{extra}

[admin]
address = "127.0.0.1"
port = {admin}

[logging]
level = "info"
"""
    return text


def daemon(name, text):
    """One Sluice of this test on PORT: config, pid file and log named after it in DIR."""
    return Daemon(DIR, name, text, port=PORT)


def running(name, text):
    """Daemon NAME as a context manager: started; at the end stop-check must pass (exit 0
    after SIGTERM, clean log), also when the body failed (then both problems are reported)."""
    return daemon(name, text)


@contextlib.contextmanager
def sql_threads_stopped():
    topology("stop-sql", "replica1")
    try:
        topology("stop-sql", "replica2")
        yield
    finally:
        topology("start-sql", "replica1")
        topology("start-sql", "replica2")
        sync()


def setup():
    with connect(PRIMARY_PORT) as d, d.cursor() as c:
        c.execute("DROP TABLE IF EXISTS rc_ryw")
        c.execute("CREATE TABLE rc_ryw (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
    sync()


def insert_then_read(s, i):
    """INSERT a row, then at once read it back with @@server_id in the same statement:
    (server_id, rows found, seconds the read took)."""
    with s.cursor() as c:
        c.execute("INSERT INTO rc_ryw (v) VALUES (%s)", (i,))
        row_id = c.lastrowid
        t0 = time.monotonic()
        c.execute("SELECT @@server_id, (SELECT COUNT(*) FROM rc_ryw WHERE id = %s)", (row_id,))
        sid, n = c.fetchone()
        return sid, n, time.monotonic() - t0


# ---------------------------------------------------------------- 1-3. [routing] ----

def check_read_your_writes_off():
    names = ("Master_gtid_wait_count",)
    with sql_threads_stopped():
        with running("ryw_off", config_text("[routing]\nread_your_writes = false\n")):
            before = replicas_status(*names)
            stale_on_replica, results = 0, []
            with connect() as s:
                for i in range(50):
                    sid, n, _ = insert_then_read(s, i)
                    results.append((sid, n))
                    if n == 0 and sid in REPLICA_IDS:
                        stale_on_replica += 1
            after = replicas_status(*names)
            true(stale_on_replica >= 1,
                 f"read_your_writes = false: no stale read from a replica in 50 rounds "
                 f"(server_id, rows): {results[:10]}")
            eq(replicas_delta(before, after, "Master_gtid_wait_count"), {"replica1": 0, "replica2": 0},
               "MASTER_GTID_WAITs run on the replicas with read_your_writes = false")
        # The shared daemon (read_your_writes at its default, true) waits, then the primary answers.
        with connect(SHARED_PORT) as s:
            got = [insert_then_read(s, 100 + i)[:2] for i in range(3)]
        eq(got, [(1, 1)] * 3, "the shared daemon (read_your_writes default): read after write")


def check_causal_read_timeout():
    names = ("Master_gtid_wait_count", "Master_gtid_wait_timeouts", "Master_gtid_wait_time")
    with sql_threads_stopped():
        # The session level: each session waits for its own write only (under the default,
        # global, a fresh session's first read would also wait for the earlier sessions').
        with running("causal_50", config_text("[routing]\nconsistency = \"session\"\n"
                                              "causal_read_timeout_ms = 50\n")):
            before = replicas_status(*names)
            results = []
            for i in range(4):
                with connect() as s:
                    expect_replica(one(s, "SELECT @@server_id")[0], f"session {i + 1}: first read")
                    results.append(insert_then_read(s, i))
            after = replicas_status(*names)
            eq([r[:2] for r in results], [(1, 1)] * 4,
               "causal_read_timeout_ms = 50: (server_id, rows) of each read after a write")
            timeouts = sum(replicas_delta(before, after, "Master_gtid_wait_timeouts").values())
            eq(timeouts, 4, "MASTER_GTID_WAIT timeouts on the replicas (one per read after a write)")
            waited_us = sum(replicas_delta(before, after, "Master_gtid_wait_time").values())
            per_wait_ms = waited_us / 1000 / timeouts
            true(40 <= per_wait_ms <= 90,
                 f"the replicas waited {per_wait_ms:.1f} ms per read-your-writes wait "
                 f"(causal_read_timeout_ms = 50; the default would be 100)")
            slowest = max(r[2] for r in results)
            true(slowest < 0.05 + 0.45, f"slowest read after a write took {slowest:.3f} s "
                 f"(causal_read_timeout_ms = 50 + 0.45 s slack)")
        with running("causal_1500", config_text("[routing]\nconsistency = \"session\"\n"
                                                "causal_read_timeout_ms = 1500\n")):
            with connect() as s:
                expect_replica(one(s, "SELECT @@server_id")[0], "first read")
                sid, n, took = insert_then_read(s, 0)
            eq((sid, n), (1, 1), "causal_read_timeout_ms = 1500: (server_id, rows) after the wait")
            true(1.45 <= took <= 1.5 + 1.0,
                 f"the read after a write took {took:.3f} s (causal_read_timeout_ms = 1500)")


def session_read():
    with connect() as s:
        return one(s, "SELECT @@server_id")[0]


def check_replica_retry_stopped():
    """replica1 stopped: new sessions read on replica2; once it is back and
    replica_retry_ms = 1000 has passed, new sessions read on it again."""
    with running("retry_1000", config_text("[routing]\nreplica_retry_ms = 1000\n")):
        topology("stop", "replica1")
        try:
            served = [session_read() for _ in range(6)]
            eq(served, [3] * 6, "reads of 6 new sessions with replica1 stopped")
        finally:
            topology("start", "replica1")
            sync()
        time.sleep(1.2)
        served = [session_read() for _ in range(6)]
        true(2 in served, f"reads of 6 new sessions 1.2 s after replica1 is back: {served}")


class DroppingListener:
    """Listens on a stopped replica's port, accepts each connection and closes it at once,
    recording when: the moments Sluice tried that replica."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.times = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.times.append(time.monotonic())
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def check_replica_retry_interval():
    """While sessions keep reading, a replica that drops every connection is tried about once
    per replica_retry_ms (1000), not once per session and not every 2000 ms (the default)."""
    with running("retry_interval", config_text("[routing]\nreplica_retry_ms = 1000\n")):
        topology("stop", "replica1")
        listener = DroppingListener(REPLICA1_PORT)
        try:
            served = []
            end = time.monotonic() + 4.6
            while time.monotonic() < end:
                served.append(session_read())
                time.sleep(0.05)
        finally:
            listener.close()
            topology("start", "replica1")
            sync()
        eq(set(served), {3}, f"reads of {len(served)} sessions while replica1 drops connections")
        t = listener.times
        gaps = [round(b - a, 2) for a, b in zip(t, t[1:])]
        true(len(t) >= 4, f"Sluice tried replica1 {len(t)} times in 4.6 s of sessions "
             f"(replica_retry_ms = 1000: expected 4 or more); gaps {gaps}")
        true(all(0.95 <= g <= 1.6 for g in gaps),
             f"gaps between Sluice's attempts on replica1: {gaps} s (replica_retry_ms = 1000)")


def check_replica_login_refused_skipped():
    """README: a replica that refuses a session's login (its user locked there) is skipped by
    that session, which tries the other replicas. app is locked on replica1 only (not
    replicated): 6 new sessions read, each from replica2, never from the primary; replica1
    saw their refused logins (a lock on one user is no reason to skip it for everyone)."""
    names = ("Aborted_connects", "Access_denied_errors")
    with running("retry_refused", config_text("[routing]\nreplica_retry_ms = 1000\n")):
        server_sql("replica1", "SET sql_log_bin = 0; ALTER USER 'app'@'%' ACCOUNT LOCK")
        try:
            before = admin_status("replica1", *names)
            t0 = time.monotonic()
            served = [session_read() for _ in range(6)]
            took = time.monotonic() - t0
            after = admin_status("replica1", *names)
        finally:
            server_sql("replica1", "SET sql_log_bin = 0; ALTER USER 'app'@'%' ACCOUNT UNLOCK")
        refused = after["Aborted_connects"] - before["Aborted_connects"]
        true(refused >= 1, f"replica1 refused no login of the 6 sessions ({refused}): the test "
             f"did not exercise a refusal; reads served by {served} in {took:.2f} s")
        eq(served, [3] * 6, "reads of the 6 sessions (replica2, the replica that let them in)")


# --------------------------------------------------------------- 4. query rules ----

def check_rules_user_schema():
    rules = """
[[query_rules]]
name = "app2-on-primary"
user = "app2"
route = "primary"

[[query_rules]]
name = "no-sbtest"
schema = "sbtest"
route = "refuse"
error_code = 1142
error_message = "sbtest is closed by a Sluice rule (readme_claims)"
"""
    with running("rules", config_text(rules)):
        with connect(user="app2", password="app2") as s:
            got = [one(s, "SELECT @@server_id")[0] for _ in range(3)]
            eq(got, [1, 1, 1], "reads by app2 (rule user = app2 -> primary)")
        with connect() as s:
            expect_replica(one(s, "SELECT @@server_id")[0], "a read by app in sluice_test")
            with s.cursor() as c:
                c.execute("USE sbtest")
            code, msg = error_of(lambda: one(s, "SELECT @@server_id"))
            eq((code, msg), (1142, "sbtest is closed by a Sluice rule (readme_claims)"),
               "a read by app in sbtest (rule schema = sbtest -> refuse)")
            s.select_db(DB)
            expect_replica(one(s, "SELECT @@server_id")[0], "the same session back in sluice_test")
        with connect(database="sbtest") as s:
            code, msg = error_of(lambda: one(s, "SELECT 1"))
            eq(code, 1142, f"a read by app logged in to sbtest ({msg!r})")
        with connect(user="app2", password="app2") as s:
            eq(one(s, "SELECT COUNT(*) FROM rc_ryw WHERE id < 0"), (0,), "app2's table read runs")


# ------------------------------------------------------------- 5. exit status 1 ----

def run_binary(config, user_ids=None):
    """Runs sluice --config CONFIG in the foreground (it must refuse to start):
    (exit status, stderr)."""
    cmd = [BIN, "--config", config]
    if user_ids is not None:
        cmd = ["setpriv", f"--reuid={user_ids}", f"--regid={user_ids}", "--clear-groups"] + cmd
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"sluice --config {config} did not exit within 10 s "
                             f"(it started: {e.stderr!r})") from e
    return p.returncode, p.stderr


def listening_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(4)
    return s


def check_exit_port_taken_by_sluice():
    with running("port_owner", config_text()) as d:
        second = os.path.join(DIR, "port_second.toml")
        with open(second, "w") as f:
            f.write(config_text(admin=ADMIN2))
        rc, err = run_binary(second)
        eq(rc, 1, f"a second Sluice on the same port: exit status (stderr {err[-400:]!r})")
        true(str(PORT) in err and "cannot start" in err,
             f"the second Sluice says why, naming port {PORT}: {err[-400:]!r}")
        with connect() as s:
            expect_replica(one(s, "SELECT @@server_id")[0], "the first Sluice still serves")
        true(d.alive(), "the first Sluice still runs")


def check_exit_port_taken_by_program(which):
    """A plain listening socket (another program) on the listener or the admin port."""
    port = FOREIGN_PORT if which == "listener" else ADMIN
    foreign = listening_socket(port)
    try:
        cfg = os.path.join(DIR, f"port_foreign_{which}.toml")
        with open(cfg, "w") as f:
            f.write(config_text(port=FOREIGN_PORT))
        rc, err = run_binary(cfg)
    finally:
        foreign.close()
    eq(rc, 1, f"{which} port {port} held by another program: exit status (stderr {err[-400:]!r})")
    true("cannot start" in err and str(port) in err,
         f"the error says which port is taken ({port}): {err.strip()[-400:]!r}")


def bad_cert_dir():
    certs = os.path.join(DIR, "badcerts")
    shutil.rmtree(certs, ignore_errors=True)
    os.makedirs(certs)
    os.chmod(certs, 0o755)
    garbage = os.path.join(certs, "garbage.pem")
    with open(garbage, "wb") as f:
        f.write(os.urandom(700))
    os.chmod(garbage, 0o644)
    return certs, garbage


def listener_tls(cert, key=SERVER_KEY):
    return f'tls = {{ cert_file = "{cert}", key_file = "{key}" }}'


def refuses_to_start(cases, user_ids=None):
    """{what: config text}: runs each; returns {what: (exit status, stderr)}."""
    certs = os.path.join(DIR, "badcerts")
    out = {}
    for what, text in cases.items():
        cfg = os.path.join(certs, what.replace(" ", "_").replace("(", "").replace(")", "") + ".toml")
        with open(cfg, "w") as f:
            f.write(text)
        os.chmod(cfg, 0o644)
        out[what] = run_binary(cfg, user_ids)
        rc, err = out[what]
        print(f"     {what}: exit {rc}: {err.strip()[-220:]!r}")
    return out


def expect_exit(results, want):
    problems = [f"{what}: exit {rc} (README: {want}), stderr {err.strip()[-220:]!r}"
                for what, (rc, err) in results.items() if rc != want]
    true(not problems, "; ".join(problems))


def check_exit_not_a_certificate():
    """Files that exist and can be read but hold no certificate / key: exit 1 at start."""
    _, garbage = bad_cert_dir()
    expect_exit(refuses_to_start({
        "listener cert_file is not a certificate": config_text(listener_extra=listener_tls(garbage)),
        "listener key_file is not a key": config_text(listener_extra=listener_tls(SERVER_CERT, garbage)),
        "backend_tls ca_file is not a certificate": config_text(
            f'[backend_tls]\nca_file = "{garbage}"\n',
            backends=backends_toml(False).replace('role = "primary"', 'role = "primary"\ntls = true')),
    }), 1)


def check_exit_unreadable_certificate():
    """README: TLS files that are "missing, unreadable, not a regular file" are refused by the
    configuration check (exit 2, file:line). A certificate of mode 000 (the daemon then runs
    as nobody when the test runs as root: root reads any file) and a directory in its place."""
    certs, _ = bad_cert_dir()
    unreadable = os.path.join(certs, "unreadable.pem")
    shutil.copy(SERVER_CERT, unreadable)
    os.chmod(unreadable, 0)
    key = os.path.join(certs, "readable.key")
    shutil.copy(SERVER_KEY, key)
    os.chmod(key, 0o644)
    user_ids = "65534" if os.geteuid() == 0 else None
    if user_ids:
        probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "sh", "-c", f'test -x "{BIN}" && test -r "{os.path.join(certs, "garbage.pem")}"'],
                               capture_output=True, text=True, timeout=10)
        true(probe.returncode == 0, f"user nobody cannot run {BIN} or read files in {certs} "
             f"(the parent directories must be world-searchable): {probe.stderr.strip()}")
    results = refuses_to_start({
        "listener cert_file unreadable (mode 000)": config_text(listener_extra=listener_tls(unreadable, key)),
        "listener cert_file is a directory": config_text(listener_extra=listener_tls(certs, key)),
    }, user_ids=user_ids)
    expect_exit(results, 2)


# ---------------------------------------------------------------- 6-7. signals ----

def sleeping_somewhere(sql):
    """True if SQL (a statement of this test, with its own token) runs on one of the servers."""
    for port in (REPLICA1_PORT, REPLICA2_PORT, PRIMARY_PORT):
        with connect(port, database=None) as c:
            if one(c, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                      "AND INFO = %s", (sql,))[0]:
                return True
    return False


def second_signal(name, session_state):
    """SELECT SLEEP(20) runs (on a replica) in a session of a daemon with a 30 s grace period;
    SIGTERM, 1.5 s later a second SIGTERM: the daemon must exit 0 within ~2 s and the client's
    connection be closed. SESSION_STATE: the client is PyMySQL with autocommit=True (it sends
    SET AUTOCOMMIT = 1 after login: state replayed on the replica); otherwise autocommit=None
    (nothing sent after login)."""
    d = daemon(name, config_text(grace_ms=30000))
    d.start()
    conn = None
    try:
        outcome = {}
        conn = connect(read_timeout=60, autocommit=True if session_state else None)
        sql = f"SELECT SLEEP(20), @@server_id, '{name}-{os.getpid()}-{time.time_ns()}'"

        def sleeper():
            try:
                outcome["result"] = one(conn, sql)
            except pymysql.MySQLError as e:
                outcome["error"] = e.args
            outcome["at"] = time.monotonic()

        th = threading.Thread(target=sleeper, daemon=True)
        th.start()
        true(wait_until(lambda: sleeping_somewhere(sql), 5), f"{sql} is not running on any server")
        os.kill(d.pid, signal.SIGTERM)
        time.sleep(1.5)
        true(d.alive(), "after one SIGTERM the daemon waits for the running statement (grace 30 s)")
        true(th.is_alive(), f"after one SIGTERM the statement still runs ({outcome})")
        t2 = time.monotonic()
        os.kill(d.pid, signal.SIGTERM)
        th.join(3)
        true(not th.is_alive(), "the client still waits 3 s after the second SIGTERM")
        true("error" in outcome, f"the client's statement ended without an error: {outcome}")
        true(outcome["at"] - t2 <= 2.5,
             f"the client's connection was closed {outcome['at'] - t2:.2f} s after the second signal")
        exited = wait_until(lambda: not d.alive(), 2.5)
        log = d.log_text()
        true(exited, "the daemon still runs 2.5 s after the second SIGTERM (the client's "
             f"connection was closed: {outcome['error']}); its log: {log[-700:]}")
        true(wait_until(lambda: d.exit_status() is not None, 5), "no exit status recorded")
        eq(d.exit_status(), 0, "exit status after the second signal")
        true("second signal" in log, f"no 'second signal' line in the log: {log[-1000:]}")
        print(f"     {name}: exited {time.monotonic() - t2:.2f} s after the second SIGTERM; "
              f"client got {outcome['error']}")
        d.check_log()
    finally:
        if d.alive():
            os.kill(d.pid, signal.SIGKILL)
            wait_until(lambda: not d.alive(), 5)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def check_sighup_sigpipe():
    with running("signals", config_text()) as d:
        old = connect()
        try:
            expect_replica(one(old, "SELECT @@server_id")[0], "a session opened before the signals")
            for n in (1, 2):
                os.kill(d.pid, signal.SIGHUP)
                true(wait_until(lambda: d.log_text().count("reload is not supported yet; ignored") >= n, 5),
                     f"SIGHUP #{n} not logged: {d.log_text()[-800:]}")
                true(d.alive(), f"the daemon died on SIGHUP #{n}")
                expect_replica(one(old, "SELECT @@server_id")[0], f"the old session after SIGHUP #{n}")
                with connect() as s:
                    expect_replica(one(s, "SELECT @@server_id")[0], f"a new session after SIGHUP #{n}")
            os.kill(d.pid, signal.SIGPIPE)
            time.sleep(0.5)
            true(d.alive(), "the daemon died on SIGPIPE")
            eq(one(old, "SELECT 6 * 7")[0], 42, "the old session after SIGPIPE")
            with connect() as s:
                expect_replica(one(s, "SELECT @@server_id")[0], "a new session after SIGPIPE")
            with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/healthz", timeout=5) as r:
                eq(r.status, 200, "/healthz after SIGHUP and SIGPIPE (not draining)")
        finally:
            old.close()


# ---------------------------------------------------------------- 8. backend TLS ----

def make_client_cert():
    """A client certificate signed by the topology's CA (clientAuth), in DIR/x509."""
    d = os.path.join(DIR, "x509")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    ext = os.path.join(d, "client.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints = critical, CA:FALSE\n"
                "keyUsage = critical, digitalSignature, keyEncipherment\n"
                "extendedKeyUsage = clientAuth\n")
    key, csr, pem = (os.path.join(d, n) for n in ("client.key", "client.csr", "client.pem"))

    def openssl(*args):
        p = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
        true(p.returncode == 0, f"openssl {' '.join(args[:2])}: {p.stderr.strip()[-500:]}")

    openssl("genrsa", "-out", key, "2048")
    openssl("req", "-new", "-key", key, "-subj", "/O=Sluice test/CN=readme-claims-client", "-out", csr)
    openssl("x509", "-req", "-sha256", "-in", csr, "-CA", CA, "-CAkey", CA_KEY, "-set_serial",
            str(int.from_bytes(os.urandom(8), "big")), "-days", "2", "-extfile", ext, "-out", pem)
    openssl("verify", "-CAfile", CA, pem)
    return pem, key


def tls_backend_config(cert=None, key=None, host="127.0.0.1", port=PRIMARY_PORT, verify=True):
    backends = f"""
[[backends]]
name = "primary"
host = "{host}"
port = {port}
role = "primary"
tls = true
"""
    tls = f'[backend_tls]\nca_file = "{CA}"\nverify_hostname = {"true" if verify else "false"}\n'
    if cert:
        tls += f'cert_file = "{cert}"\nkey_file = "{key}"\n'
    return config_text(tls, backends=backends, users=[("app", "app"), (X509_USER, X509_PASSWORD)])


def session_cipher(port=PORT, **kw):
    with connect(port, **kw) as s:
        cipher = one(s, "SHOW SESSION STATUS LIKE 'Ssl_cipher'")[1]
        user = one(s, "SELECT CURRENT_USER()")[0]
    return cipher, user


def check_backend_tls_client_cert():
    cert, key = make_client_cert()
    server_sql("primary", f"DROP USER IF EXISTS '{X509_USER}'@'%'; "
                          f"CREATE USER '{X509_USER}'@'%' IDENTIFIED BY '{X509_PASSWORD}' REQUIRE X509; "
                          f"GRANT SELECT ON {DB}.* TO '{X509_USER}'@'%'")
    try:
        # Directly, without a certificate, the server refuses the user: the REQUIRE X509 bites.
        code, _ = error_of(lambda: connect(PRIMARY_PORT, user=X509_USER, password=X509_PASSWORD,
                                           ssl={"ca": CA}).close())
        eq(code, 1045, "the X509 user directly over TLS without a client certificate")
        with running("tls_client_cert", tls_backend_config(cert, key)):
            cipher, user = session_cipher(user=X509_USER, password=X509_PASSWORD)
            true(cipher, "the X509 user's backend session has no Ssl_cipher")
            eq(user, f"{X509_USER}@%", "CURRENT_USER() of the X509 user through Sluice")
            cipher, user = session_cipher()
            true(cipher, "app's backend session (with the client certificate) has no Ssl_cipher")
        with running("tls_no_client_cert", tls_backend_config()):
            code, msg = error_of(lambda: connect(user=X509_USER, password=X509_PASSWORD).close())
            eq(code, 1045, f"the X509 user through Sluice without a client certificate ({msg!r})")
            cipher, user = session_cipher()
            true(cipher and user == "app@%", "app over the backend TLS without a client certificate")
    finally:
        server_sql("primary", f"DROP USER IF EXISTS '{X509_USER}'@'%'")


class Relay:
    """A TCP relay from RELAY_HOST:RELAY_PORT to the primary (bytes unchanged), so the primary
    is reached under a name its certificate does not carry (it names 127.0.0.1 and
    localhost)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((RELAY_HOST, RELAY_PORT))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @staticmethod
    def pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(None)
            u = socket.create_connection(("127.0.0.1", PRIMARY_PORT))
            threading.Thread(target=self.pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c), daemon=True).start()

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def check_backend_tls_hostname():
    relay = Relay()
    try:
        # The relay itself is transparent: directly through it, with TLS and no name check.
        with connect(RELAY_PORT, host=RELAY_HOST, ssl={"ca": CA, "check_hostname": False}) as s:
            eq(one(s, "SELECT @@server_id")[0], 1, "the primary through the relay")
        with running("tls_hostname_verify",
                     tls_backend_config(host=RELAY_HOST, port=RELAY_PORT, verify=True)):
            code, msg = error_of(lambda: connect().close())
            eq(code, 1105, f"verify_hostname = true, backend reached as {RELAY_HOST}: error ({msg!r})")
            true("'primary'" in msg, f"the error names the backend: {msg!r}")
        with running("tls_hostname_noverify",
                     tls_backend_config(host=RELAY_HOST, port=RELAY_PORT, verify=False)):
            cipher, user = session_cipher()
            true(cipher, "verify_hostname = false: the backend session is still TLS")
            eq(user, "app@%", "verify_hostname = false: CURRENT_USER()")
    finally:
        relay.close()


def main():
    checks = Checks()
    checks.log = None                 # the shared daemon's log is not this test's
    if not checks.run("setup (table rc_ryw; replicas in sync)", setup):
        checks.finish()
    checks.run("read_your_writes = false: reads after writes may be stale, no GTID waits",
               check_read_your_writes_off)
    checks.run("causal_read_timeout_ms bounds the wait, then the primary answers",
               check_causal_read_timeout)
    checks.run("replica_retry_ms: a stopped replica skipped, used again after it is back",
               check_replica_retry_stopped)
    checks.run("replica_retry_ms: a replica dropping connections is tried once per period",
               check_replica_retry_interval)
    checks.run("a replica refusing a session's login: that session reads from another replica",
               check_replica_login_refused_skipped)
    checks.run("query rules by user and by schema", check_rules_user_schema)
    checks.run("exit 1 when another Sluice has the port", check_exit_port_taken_by_sluice)
    checks.run("exit 1 when another program has the listener port, naming it",
               check_exit_port_taken_by_program, "listener")
    checks.run("exit 1 when another program has the admin port, naming it",
               check_exit_port_taken_by_program, "admin")
    checks.run("exit 1 on a certificate or key file that holds none", check_exit_not_a_certificate)
    checks.run("exit 2 (configuration) on a certificate that cannot be read (mode 000, directory)",
               check_exit_unreadable_certificate)
    checks.run("a second SIGTERM closes everything at once, exit 0 (PyMySQL autocommit=None)",
               second_signal, "second_signal", False)
    checks.run("a second SIGTERM closes everything at once, exit 0 (PyMySQL autocommit=True)",
               second_signal, "second_signal_state", True)
    checks.run("SIGHUP logged and ignored, SIGPIPE ignored", check_sighup_sigpipe)
    checks.run("backend TLS with a client certificate (REQUIRE X509)", check_backend_tls_client_cert)
    checks.run("backend TLS hostname verification", check_backend_tls_hostname)
    checks.finish()


if __name__ == "__main__":
    main()
