"""Helpers for the TDS integration tests: the project's TDS test servers
(tests/fixtures/tds_server.py) as a simulated availability group, started and stopped by pid,
and client shortcuts."""

import json
import os
import signal
import socket
import subprocess

from itlib import true, wait_until

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                      "tds_server.py")


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

    def start(self, name, port, role):
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
                              "--control", ctl],
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
[[tds_backends]]
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
failures_to_open = 2
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
