"""Helpers for the TDS integration tests: the project's TDS test servers
(tests/fixtures/tds_server.py) as a simulated availability group, started and stopped by pid,
and client shortcuts."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys

from itlib import env_int, true, wait_until

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                      "tds_server.py")


def ports(env, offset):
    """A TDS test's ports: BASE (from ENV, else SLUICE_PORT + OFFSET) and BASE + 1, + 2 for its
    test servers, then Sluice's TDS listener, MySQL listener and admin: BASE + 3, + 4, + 5."""
    base = int(os.environ.get(env, env_int("SLUICE_PORT") + offset))
    return base, base + 3, base + 4, base + 5


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class TdsServers:
    """Test servers sharing one commit log in DIRECTORY; each with a control file."""

    def __init__(self, directory, lag_ms):
        self.dir, self.lag_ms = directory, lag_ms
        self.procs = {}

    def start(self, name, port, role, extra=()):
        """EXTRA: more tds_server.py arguments (--encrypt on --cert ... --key ...)."""
        d = os.path.join(self.dir, name)
        os.makedirs(d, exist_ok=True)
        ctl = os.path.join(self.dir, name + ".json")
        if not os.path.exists(ctl):
            with open(ctl, "w") as f:
                json.dump({}, f)
        err = open(os.path.join(self.dir, name + ".err"), "ab")
        p = subprocess.Popen(["/usr/bin/python3", SERVER, "--port", str(port), "--name", name,
                              "--role", role, "--log", os.path.join(self.dir, "ag.log"),
                              "--dir", d, "--user", "app:app", "--user", "app2:app2",
                              "--user", "monitor:monitor", "--lag-ms", str(self.lag_ms),
                              "--control", ctl, *extra],
                             stdout=err, stderr=err)
        self.procs[name] = p
        true(wait_until(lambda: port_open(port), 10), f"test server {name} listens on {port}")

    def control(self, name, **values):
        path = os.path.join(self.dir, name + ".json")
        with open(path) as f:
            ctl = json.load(f)
        ctl.update(values)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(ctl, f)
        os.replace(tmp, path)

    def kill(self, name):
        p = self.procs[name]
        p.send_signal(signal.SIGKILL)
        p.wait(10)

    def stop_all(self):
        """Stops every server by pid; returns the problems seen (tracebacks, no exit)."""
        problems = []
        for name, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    problems.append(f"{name} did not stop on SIGTERM")
            with open(os.path.join(self.dir, name + ".err"), errors="replace") as f:
                text = f.read()
            if "Traceback" in text:
                problems.append(f"{name} raised:\n{text[-2000:]}")
        return problems


def q(conn, sql, params=None):
    """Runs SQL on a DB-API connection; the rows when it returned some."""
    cur = conn.cursor()
    if params is not None:
        cur.execute(sql, params)
    else:
        cur.execute(sql)
    rows = cur.fetchall() if cur.description else []
    cur.close()
    return rows


def direct(port):
    """A pymssql session straight to the test server on PORT, not through Sluice."""
    import pymssql
    return pymssql.connect(server="127.0.0.1", port=port, user="app", password="app",
                           database="sluice", autocommit=True, login_timeout=10)


@contextlib.contextmanager
def availability_group(servers, base, checks):
    """SERVERS (TdsServers) as a primary and two secondaries on BASE..BASE+2 with an empty
    table `items`; stopped by pid when the block ends, their problems a failed check."""
    try:
        for name, offset, role in (("primary", 0, "primary"), ("secondary1", 1, "secondary"),
                                   ("secondary2", 2, "secondary")):
            servers.start(name, base + offset, role)
        p = direct(base)
        q(p, "CREATE TABLE items (id INT IDENTITY(1,1) PRIMARY KEY, name NVARCHAR(100))")
        p.close()
        yield
    finally:
        problems = servers.stop_all()
        if problems:
            checks.failures.append("test servers")
            print("FAIL - test servers: " + "; ".join(problems), file=sys.stderr)


def tds_backends_toml(base):
    """[[tds_backends]] for the primary and two secondaries on BASE..BASE+2, and [tds_monitor]."""
    return f"""[[tds_backends]]
name = "primary"
host = "127.0.0.1"
port = {base}
role = "primary"
[[tds_backends]]
name = "secondary1"
host = "127.0.0.1"
port = {base + 1}
[[tds_backends]]
name = "secondary2"
host = "127.0.0.1"
port = {base + 2}
[tds_monitor]
user = "monitor"
password = "monitor"
interval_ms = 100
timeout_ms = 1000
failures_to_open = 2"""


def tds_config(base, tds_port, mysql_port, admin_port, backends_toml, extra=""):
    """A Sluice config with a TDS listener in front of test servers on BASE..BASE+2."""
    return f"""
workers = 1
[[listeners]]
name = "mysql"
address = "127.0.0.1"
port = {mysql_port}
[[listeners]]
name = "tds"
protocol = "tds"
address = "127.0.0.1"
port = {tds_port}
{backends_toml}
{tds_backends_toml(base)}
[[users]]
name = "app"
password = "app"
[[users]]
name = "app2"
password = "app2"
[admin]
port = {admin_port}
{extra}
"""
