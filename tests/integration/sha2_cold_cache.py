#!/usr/bin/python3
"""sha2_cold_cache: caching_sha2_password's two paths, on a Sluice of its own, so the cache
is cold whatever ran before (on the shared daemon any earlier login of the user, on any
listener, warms it: the test would depend on the order of the tests).

Sluice (ports SLUICE_PORT + 300, admin SLUICE_ADMIN_PORT + 300; started and stopped with
tests/fixtures/sluice.sh, stop-check at the end: exit 0, clean log) has one caching_sha2
listener with TLS offered, the primary, users app and app2. On raw sockets, reading the
AuthMoreData byte the server sends:
 1. app's first login over TLS: the full path (0x04, the password in the clear inside TLS);
 2. app's second login over TLS: the fast path (0x03);
 3. app2's first login without TLS: the fast path (Sluice holds the password, no RSA);
 4. app2's first login over TLS after it: the fast path (the plain login warmed the cache);
 5. a wrong password, cold or warm: 1045 (28000) before any path.
Each session then answers SELECT CURRENT_USER().
"""

import os
import subprocess

from itlib import Checks, eq, true, env_int, env_str, sha2_login

PORT = env_int("SLUICE_PORT") + 300
ADMIN = env_int("SLUICE_ADMIN_PORT") + 300
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
CA = env_str("SLUICE_CA")
CERT_DIR = os.path.dirname(CA)
FIXTURE = env_str("SLUICE_FIXTURE")
DIR = os.path.join(env_str("SLUICE_IT_DIR"), "sha2_cold_cache")
CONFIG, PIDFILE, LOG = (os.path.join(DIR, f) for f in ("sluice.toml", "sluice.pid", "sluice.log"))


def fixture(*args):
    return subprocess.run(["bash", FIXTURE, *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, SLUICE_PORT=str(PORT)))


def start():
    os.makedirs(DIR, exist_ok=True)
    with open(CONFIG, "w") as f:
        f.write(f"""workers = 2
[[listeners]]
name = "sha2"
address = "127.0.0.1"
port = {PORT}
auth_plugin = "caching_sha2_password"
require_tls = false
tls = {{ cert_file = "{CERT_DIR}/server.pem", key_file = "{CERT_DIR}/server.key" }}

[[backends]]
name = "primary"
host = "127.0.0.1"
port = {PRIMARY_PORT}
role = "primary"

[[users]]
name = "app"
password = "app"

[[users]]
name = "app2"
password = "app2"

[admin]
address = "127.0.0.1"
port = {ADMIN}
""")
    p = fixture("start", CONFIG, PIDFILE, LOG)
    true(p.returncode == 0, f"sluice.sh start: {(p.stdout + p.stderr).strip()}")


def login(user, password, tls, want_path, what):
    r, path = sha2_login(PORT, user, password, ca=CA if tls else None)
    try:
        eq(path, want_path, f"{what}: caching_sha2 path")
        eq(r.query("SELECT CURRENT_USER()"), ("rows", [(f"{user}@%",)]), f"{what}: CURRENT_USER()")
    finally:
        r.close()


def refused(user, password, tls, what):
    try:
        r, path = sha2_login(PORT, user, password, ca=CA if tls else None)
        r.close()
        raise AssertionError(f"{what}: login accepted ({path} path)")
    except AssertionError as e:
        true("login refused: (1045, '28000', " in str(e), f"{what}: expected ERR 1045 28000, got {e}")


def main():
    checks = Checks()
    checks.log = LOG
    checks.log_start = os.path.getsize(LOG) if os.path.exists(LOG) else 0
    if not checks.run("set-up: a Sluice of its own (cold cache)", start):
        checks.finish()
    try:
        checks.run("a wrong password over TLS on a cold cache: 1045", refused, "app", "wrong", True,
                   "wrong password, cold")
        checks.run("app's first login over TLS: the full path (0x04)", login, "app", "app", True,
                   "full", "app over TLS, cold")
        checks.run("app's second login over TLS: the fast path (0x03)", login, "app", "app", True,
                   "fast", "app over TLS, warm")
        checks.run("a wrong password over TLS on a warm cache: 1045", refused, "app", "wrong", True,
                   "wrong password, warm")
        checks.run("app2's first login without TLS: the fast path", login, "app2", "app2", False,
                   "fast", "app2 plain, cold")
        checks.run("app2 over TLS after its plain login: the fast path", login, "app2", "app2",
                   True, "fast", "app2 over TLS after a plain login")
    finally:
        def stop_check():
            p = fixture("stop-check", PIDFILE, LOG)
            true(p.returncode == 0, (p.stdout + p.stderr).strip())
        checks.run("the daemon exits 0 after SIGTERM, its log is clean (sluice.sh stop-check)",
                   stop_check)
    checks.finish()


if __name__ == "__main__":
    main()
