#!/usr/bin/python3
"""tds_backend_tls (issue #11): Sluice's connections to SQL Server backends over TLS, against
the project's TDS test servers (tests/fixtures/tds_server.py) started with the test CA's
server certificate and encryption required (--encrypt on, SQL Server's Force Encryption).

What each connection negotiated is read from the servers, never from Sluice: the test
server's sys.dm_exec_connections has a column of its own, sluice_encryption (none, login,
full or strict), for the connection the query runs on.

 1. [[tds_backends]] tls = true with [backend_tls] ca_file (the test CA, hostname verified):
    pymssql through Sluice reads on a secondary and writes on the primary, and the backend
    connection each ran on is fully encrypted; the monitor (FreeTDS db-lib, encryption =
    require in Sluice's own freetds.conf) sees the roles, or no read would reach a secondary.
 2. The same backends without tls = true: once [routing] failover_hold has passed with no
    primary (the monitor cannot probe them either), one connect to the configured primary
    gives the client the reason in a TDS error (10054, "requires encryption"), not a bare
    "failover"; the daemon stays up.
 3. tls = true with a CA that did not sign the servers' certificate: the same, with the
    certificate's refusal ("certificate verify failed").
 4. tls = true, and the monitor cannot log in (a wrong password), so it never names a
    primary: after the hold, the configured primary, which refuses read-intent logins (978,
    as an availability group's primary with ALLOW_CONNECTIONS = READ_WRITE does), is logged
    in to without that intent, and the client's write runs there (@@SERVERNAME).

Ports: TDS_BACKEND_TLS_PORT (default SLUICE_PORT + 840) + 0..2 the test servers, + 3..5
Sluice (TDS, MySQL, admin). One line per check; exit 0 only if all passed.
"""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itlib  # noqa: E402
import tdslib  # noqa: E402
import tds_bad_input as bad  # noqa: E402
from itlib import Checks, Daemon, eq, true  # noqa: E402
from tdslib import q  # noqa: E402

import pymssql  # noqa: E402
import pytds  # noqa: E402

BASE, TDS_PORT, MYSQL_PORT, ADMIN_PORT = tdslib.ports("TDS_BACKEND_TLS_PORT", 840)
DIR = tempfile.mkdtemp(prefix="sluice-tds-backend-tls-")
HERE = os.path.dirname(os.path.abspath(__file__))


def certs_in(work):
    certs = os.path.join(work, "certs")
    subprocess.run(["bash", os.path.join(HERE, "..", "fixtures", "make-certs.sh"), certs],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return certs


def config(tls, ca, monitor_password="monitor"):
    """Sluice in front of the three servers; TLS to them when TLS, verified against CA."""
    backends = tdslib.tds_backends_toml(BASE)
    if tls:
        backends = backends.replace('port = %d\n' % BASE, 'port = %d\ntls = true\n' % BASE)
        for k in (1, 2):
            backends = backends.replace('port = %d\n' % (BASE + k), 'port = %d\ntls = true\n' % (BASE + k))
    text = tdslib.tds_config(BASE, TDS_PORT, MYSQL_PORT, ADMIN_PORT, itlib.topology_backends_toml(),
                             "[routing]\nmax_lag_ms = 5000\nfailover_hold_ms = 1000\n")
    text = text.replace(tdslib.tds_backends_toml(BASE), backends)
    text = text.replace('password = "monitor"', 'password = "%s"' % monitor_password)
    return text + f'\n[backend_tls]\nca_file = "{ca}"\nverify_hostname = true\n'


def ms():
    return pymssql.connect(server="127.0.0.1", port=TDS_PORT, user="app", password="app",
                           database="sluice", autocommit=True, login_timeout=10, timeout=30)


def check_encrypted(ca):
    c = ms()
    reads = {q(c, "SELECT @@SERVERNAME")[0][0] for _ in range(6)}
    true(reads and reads <= {"secondary1", "secondary2"}, f"reads ran on secondaries: {reads}")
    eq(q(c, "INSERT INTO items (name) VALUES ('tls'); SELECT @@SERVERNAME")[0][0], "primary",
       "the write ran on the primary")
    # Each server's own view of its connections (the session still holds its backends):
    # Sluice's and the monitor's, all fully encrypted. pytds speaks TLS with the test CA.
    for offset, name in enumerate(("primary", "secondary1", "secondary2")):
        d = pytds.connect(server="127.0.0.1", port=BASE + offset, user="app", password="app",
                          database="sluice", autocommit=True, login_timeout=10,
                          cafile=os.path.join(os.path.dirname(ca), "ca.pem"), validate_host=False)
        cur = d.cursor()
        cur.execute("SELECT session_id, sluice_encryption FROM sys.dm_exec_connections "
                    "WHERE session_id <> @@SPID")
        rows = cur.fetchall()
        d.close()
        true(rows, f"{name} has connections from Sluice")
        eq(sorted({r[1] for r in rows}), ["full"], f"every other connection to {name} is encrypted: {rows}")
    c.close()


def check_refused(what, reason):
    """A raw TDS login (tds_bad_input's client; pymssql keeps only the first connection's
    server message per process) is refused with Sluice's error naming REASON."""
    t = bad.TdsRaw(TDS_PORT, timeout=15)
    try:
        t.login()
        true(False, f"a session logged in {what}")
    except AssertionError as e:
        text = str(e)
        true("10054" in text and "primary" in text and reason in text.lower(),
             f"the client was told why ({what}): {text[:400]}")
    finally:
        t.close()


def check_blind_monitor():
    c = ms()
    got = q(c, "INSERT INTO items (name) VALUES ('blind'); SELECT @@SERVERNAME")
    eq(got[0][0], "primary", "the write ran on the configured primary")
    c.close()


servers = tdslib.TdsServers(DIR, 100)


def main():
    checks = Checks()
    certs = certs_in(DIR)
    tls_args = ("--encrypt", "on", "--cert", os.path.join(certs, "server.pem"),
                "--key", os.path.join(certs, "server.key"))
    try:
        for name, offset, role in (("primary", 0, "primary"), ("secondary1", 1, "secondary"),
                                   ("secondary2", 2, "secondary")):
            servers.start(name, BASE + offset, role,
                          tls_args + (("--reject-readonly-intent",) if role == "primary" else ()))
        with Daemon(DIR, "tls", config(True, os.path.join(certs, "ca.pem")), port=MYSQL_PORT,
                    admin=ADMIN_PORT):
            time.sleep(1.5)
            c = ms()
            q(c, "CREATE TABLE items (id INT IDENTITY(1,1) PRIMARY KEY, name NVARCHAR(100))")
            c.close()
            time.sleep(1.0)
            checks.run("1 tls = true: every backend connection encrypted, reads and writes split",
                       check_encrypted, os.path.join(certs, "ca.pem"))
        with Daemon(DIR, "plain", config(False, os.path.join(certs, "ca.pem")), port=MYSQL_PORT,
                    admin=ADMIN_PORT):
            time.sleep(1.0)
            checks.run("2 without tls = true a backend that demands encryption is refused with a "
                       "TDS error", check_refused, "without tls = true", "requires encryption")
        other = certs_in(os.path.join(DIR, "other"))
        with Daemon(DIR, "wrongca", config(True, os.path.join(other, "ca.pem")), port=MYSQL_PORT,
                    admin=ADMIN_PORT):
            time.sleep(1.0)
            checks.run("3 a certificate the CA did not sign is refused with a TDS error",
                       check_refused, "with another CA", "certificate verify failed")
        with Daemon(DIR, "blind", config(True, os.path.join(certs, "ca.pem"), "wrong"), port=MYSQL_PORT,
                    admin=ADMIN_PORT):
            checks.run("4 no primary known: the configured primary is logged in to without "
                       "read-only intent", check_blind_monitor)
    finally:
        problems = servers.stop_all()
        if problems:
            checks.failures.append("test servers")
            print("FAIL - test servers: " + "; ".join(problems), file=sys.stderr)
    checks.finish()


if __name__ == "__main__":
    main()
