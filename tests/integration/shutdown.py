#!/usr/bin/python3
"""shutdown: SIGTERM handling, on a Sluice of its own (config sluice-shutdown.toml in the build
tree: ports 16133 / admin 16190, shutdown_grace_ms 5000), started and stopped by this test.

1. A running SELECT SLEEP(2) completes after SIGTERM; an idle session is closed at once; new
   connections are refused; /healthz says 503 meanwhile; the process exits 0 soon after the
   query, well within the grace period.
2. A query longer than the grace period: its session is closed when the grace period ends and
   the process still exits 0.
Each daemon's log of its run is read after it exited with tests/fixtures/sluice.sh check-log:
no sanitizer report, no critical/error line (the one list every test's daemon is held to).
"""

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pymysql

from itlib import Checks, Raw, eq, true, env_str, wait_until, HOST

IT_DIR = env_str("SLUICE_IT_DIR")
BIN = env_str("SLUICE_BIN")
FIXTURE = env_str("SLUICE_FIXTURE")
CONFIG = os.path.join(IT_DIR, "sluice-shutdown.toml")
LOG = os.path.join(IT_DIR, "sluice-shutdown.log")


def config_value(key, section_marker=None):
    """First `key = N` in the rendered config (after section_marker if given)."""
    seen = section_marker is None
    with open(CONFIG) as f:
        for line in f:
            s = line.strip()
            if section_marker and s.startswith(section_marker):
                seen = True
            if seen and s.split("=")[0].strip() == key:
                return int(s.split("=")[1].split("#")[0].strip())
    raise AssertionError(f"{key} not found in {CONFIG}")


PORT = config_value("port", "[[listeners]]")
ADMIN = config_value("port", "[admin]")
GRACE = config_value("shutdown_grace_ms") / 1000.0


def refused(port):
    try:
        s = socket.create_connection((HOST, port), timeout=1)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


def answers(port):
    try:
        r = Raw(port, timeout=1)
    except OSError:
        return False
    try:
        _, p = r.read_packet()
        return p[:1] == b"\x0a"
    except OSError:
        return False
    finally:
        r.close()


def healthz():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/healthz", timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class Daemon:
    def __init__(self):
        true(os.access(BIN, os.X_OK), f"sluice binary {BIN} not found")
        true(refused(PORT), f"port {PORT} is already in use")
        self.log = open(LOG, "ab")
        self.log_start = self.log.tell()
        self.proc = subprocess.Popen([BIN, "--config", CONFIG], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        if not wait_until(lambda: answers(PORT) or self.proc.poll() is not None, 10):
            raise AssertionError(f"sluice did not answer on {PORT} within 10 s\n{self.log_text()}")
        if self.proc.poll() is not None:
            raise AssertionError(f"sluice exited with {self.proc.returncode} at start\n{self.log_text()}")

    def log_text(self):
        self.log.flush()
        with open(LOG, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode("utf-8", "replace")

    def check_log(self):
        """tests/fixtures/sluice.sh check-log on this run's part of the log (after the exit:
        leak reports are written at exit)."""
        true(self.proc.poll() is not None, "check_log before the daemon exited")
        self.log.flush()
        p = subprocess.run(["bash", FIXTURE, "check-log", LOG, str(self.log_start)],
                           capture_output=True, text=True, timeout=30)
        true(p.returncode == 0, f"sluice's log of this run: {(p.stdout + p.stderr).strip()}")

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def connect(**kw):
    args = dict(host=HOST, port=PORT, user="app", password="app", connect_timeout=5,
                read_timeout=30, autocommit=True)
    args.update(kw)
    return pymysql.connect(**args)


def start_query(conn, sql):
    out = {}

    def run():
        t0 = time.monotonic()
        try:
            with conn.cursor() as c:
                c.execute(sql)
                out["rows"] = c.fetchall()
        except Exception as e:  # noqa: BLE001
            out["error"] = e
        out["done"] = time.monotonic()
        out["elapsed"] = out["done"] - t0

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, out


def test_graceful():
    d = Daemon()
    try:
        idle = Raw(PORT)
        idle.login()
        eq(idle.query("SELECT 1"), ("rows", [("1",)]), "idle session answers before the signal")
        busy = connect()
        # CONNECTION_ID() is Sluice's own id (issue #7): the backend thread is found by its text.
        th, out = start_query(busy, "SELECT SLEEP(2), 'done' AS busy_marker")
        with connect() as watcher, watcher.cursor() as c:
            def running():
                c.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                          "WHERE INFO LIKE 'SELECT SLEEP(2), ''done'' AS busy_marker%%'")
                return c.fetchone()[0] == 1
            true(wait_until(running, 3), "SELECT SLEEP(2) is not running on the backend")
        eq(healthz(), 200, "/healthz before the signal")

        t_signal = time.monotonic()
        d.terminate()
        true(idle.closed_by_peer(1.0), "the idle session was not closed within 1 s of SIGTERM")
        t_idle = time.monotonic() - t_signal
        true(wait_until(lambda: refused(PORT), 1.0), "new connections still accepted 1 s after SIGTERM")
        eq(healthz(), 503, "/healthz while draining")
        th.join(10)
        true(not th.is_alive(), "the running query did not finish")
        true("error" not in out, f"the running query failed after SIGTERM: {out.get('error')!r}")
        eq(out.get("rows"), ((0, "done"),), "result of the query running during SIGTERM")
        rc = d.wait(GRACE + 2)
        t_exit = time.monotonic() - t_signal
        true(rc is not None, f"sluice still running {GRACE + 2:.0f}s after SIGTERM")
        eq(rc, 0, "exit status after SIGTERM")
        true(t_exit < GRACE, f"exit took {t_exit:.2f}s, not before the {GRACE}s grace period ended")
        print(f"     idle closed after {t_idle:.2f}s, query finished after "
              f"{out['done'] - t_signal:.2f}s, process exited after {t_exit:.2f}s")
        log = d.log_text()
        true("draining" in log and "stopped" in log, f"log lacks 'draining'/'stopped':\n{log}")
        d.check_log()
        try:
            busy.close()
        except Exception:  # noqa: BLE001
            pass
        idle.close()
    except BaseException:
        print(d.log_text()[-4000:])
        raise
    finally:
        d.kill()


def test_grace_period_over():
    d = Daemon()
    try:
        busy = connect()
        th, out = start_query(busy, "SELECT SLEEP(15)")
        time.sleep(0.5)
        t_signal = time.monotonic()
        d.terminate()
        th.join(GRACE + 5)
        true(not th.is_alive(), f"a query longer than the grace period still runs {GRACE + 5:.0f}s after SIGTERM")
        true("error" in out, f"a query cut by the grace period returned {out.get('rows')}")
        cut = out["done"] - t_signal
        true(GRACE - 0.5 <= cut <= GRACE + 2, f"the long query was cut after {cut:.2f}s, grace is {GRACE}s")
        rc = d.wait(5)
        eq(rc, 0, "exit status after the grace period")
        print(f"     long query cut after {cut:.2f}s with {out['error']!r}")
        true("grace period over" in d.log_text(), "log lacks 'grace period over'")
        d.check_log()
    except BaseException:
        print(d.log_text()[-4000:])
        raise
    finally:
        d.kill()


def main():
    checks = Checks()
    checks.run("SIGTERM: running query completes, idle closed, new refused, exit 0", test_graceful)
    checks.run("SIGTERM: a query longer than the grace period is cut, exit 0", test_grace_period_over)
    checks.finish()


if __name__ == "__main__":
    main()
