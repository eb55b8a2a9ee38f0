#!/usr/bin/python3
"""monitor_claims: README claims of *The monitor*, *Failover* and *Read/write splitting* that no
other test exercised through a real client, each with a Sluice daemon of its own ([monitor],
interval 250 ms) in front of the real topology. Ports (relative to SLUICE_PORT, admin relative
to SLUICE_ADMIN_PORT, as in `monitor`): +520..+529 (16553-16562 / 16610-16619 under CTest).
Config, pid file and log of each daemon, and the relays' files, in $SLUICE_IT_DIR/monitor_claims/.
Every daemon is stopped with `sluice.sh stop-check` (exit 0 after SIGTERM, a log free of
sanitizer reports and error lines), every relay with `relay.sh stop`, by pid, also when a
check fails. Where a statement ran is read from the servers (@@server_id in the statement,
rows read directly on the primary), never from Sluice's metrics.

 a. The failover hold expires (port +520; the primary reached through a delay relay on +521,
    [routing] failover_hold_ms = 1500). A session logs in and writes; the relay is restarted
    in refuse-after-accept mode (every connection to the primary closed, new ones refused:
    the shared topology's primary keeps running). Once /backends shows the primary down:
    the session's autocommit read answers at once from a replica (@@server_id 2 or 3); its
    INSERT, sent at once after that read, waits about the hold, then fails with 1105 "Sluice
    knows no primary: ... (waited 1500 ms, failover_hold_ms): the statement did not run"; it
    reads on, and a second INSERT is held and fails the same way; neither ran (no row on the
    primary); a new login waits the hold, then is refused with 1105 "Sluice knows no primary:
    ...". The relay back in relay mode: the same session and a new one write again, on
    server_id 1.
 b. `heartbeat_table = ""` (port +522). A daemon with the default heartbeat first, to show
    the method sees a daemon's row: a new id in sluice.heartbeat on the primary. Then the one
    without: replica1 delayed 2 s (MASTER_DELAY) under writes; /backends reports its lag_ms
    in whole seconds, at least 1000 (Seconds_Behind_Master), replica2's too; no new id in
    sluice.heartbeat while it runs.
 c. `breaker_open` (port +524, replica_retry_ms 4000): Sluice in zone "b", replica2 in zone
    "b" behind a relay (+525), replica1 in zone "a". New sessions read on replica2; then the
    relay refuses new connections (the monitor's open connection keeps working): a new
    session reads on replica1, /backends shows replica2 `breaker_open` (not down: the monitor
    still reaches it), further sessions read on replica1 without trying replica2 (the relay
    saw one refused connection for all of them); after replica_retry_ms it is `up` again,
    and with the relay relaying again sessions read on replica2.
 d. Weights among equally near replicas (port +526): replica1 weight 3, replica2 weight 1,
    both direct, one zone: of 40 sessions, held open, each reading once, replica1 answers
    60% to 90% (by @@server_id).
 e. `[monitor] password_env` (port +528): with the variable set in the daemon's environment
    (not in the file) the probes get through (monitored, every backend up, RTTs measured);
    set to a wrong password, every backend is down (the variable's value is what is used);
    unset, `sluice --config` exits 2 at once, naming the file, the key and the variable.
"""

import os
import subprocess
import threading
import time

import pymysql

import itlib
from itlib import Checks, Daemon, eq, true, env_int, env_str, wait_until, topology, by_name

SHARED_PORT = env_int("SLUICE_PORT")
SHARED_ADMIN = env_int("SLUICE_ADMIN_PORT")
PRIMARY_PORT = env_int("SLUICE_PRIMARY_PORT")
REPLICA1_PORT = env_int("SLUICE_REPLICA1_PORT")
REPLICA2_PORT = env_int("SLUICE_REPLICA2_PORT")
BIN = env_str("SLUICE_BIN")
DIR = os.path.join(env_str("SLUICE_IT_DIR"), "monitor_claims")
INTERVAL_MS = 250
HOLD_MS = 1500
RETRY_MS = 4000
PASSWORD_VAR = "SLUICE_MC_MONITOR_PASSWORD"


def port(offset):
    return SHARED_PORT + offset


def admin(offset):
    return SHARED_ADMIN + offset


def connect(p, **kw):
    return itlib.connect(p, **kw)


def direct(p):
    return itlib.connect(p, database=None)


def one(conn, sql, args=None):
    with conn.cursor() as c:
        c.execute(sql, args)
        return c.fetchone()


def relay(*args):
    return itlib.relay(DIR, *args)


def backend(name, p, role="replica", zone="", weight=1):
    text = f'\n[[backends]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {p}\nrole = "{role}"\n'
    if zone:
        text += f'zone = "{zone}"\n'
    if weight != 1:
        text += f"weight = {weight}\n"
    return text


def config_text(offset, backends, monitor_extra="", routing="", zone="",
                password='password = "monitor"'):
    """A daemon on port(offset) / admin(offset) with [monitor] (interval 250 ms)."""
    head = f'zone = "{zone}"\n' if zone else ""
    return f"""workers = 2
connect_timeout_ms = 1000
client_handshake_timeout_ms = 5000
shutdown_grace_ms = 5000
{head}
[[listeners]]
name = "plain"
address = "127.0.0.1"
port = {port(offset)}
{''.join(backends)}
[[users]]
name = "app"
password = "app"

[monitor]
user = "sluice_monitor"
{password}
interval_ms = {INTERVAL_MS}
timeout_ms = 1000
{monitor_extra}
[routing]
{routing}

[admin]
address = "127.0.0.1"
port = {admin(offset)}

[logging]
level = "info"
"""


def daemon(name, offset, text, env=None):
    return Daemon(DIR, name, text, port=port(offset), admin=admin(offset), env=env,
                  wait_snapshot=True)


def direct_backends(primary_port=PRIMARY_PORT, zones=("", "", ""), weights=(1, 1)):
    return [backend("primary", primary_port, "primary", zones[0]),
            backend("replica1", REPLICA1_PORT, zone=zones[1], weight=weights[0]),
            backend("replica2", REPLICA2_PORT, zone=zones[2], weight=weights[1])]


def primary_server_id(conn):
    """@@server_id of the primary as the session sees it: inside a transaction."""
    with conn.cursor() as c:
        c.execute("BEGIN")
        c.execute("SELECT @@server_id")
        sid = c.fetchone()[0]
        c.execute("COMMIT")
    return sid


def error_of(fn):
    """(code, message, seconds) of the pymysql error FN raises; fails if it raises none."""
    t0 = time.monotonic()
    try:
        fn()
    except pymysql.MySQLError as e:
        return e.args[0], (e.args[1] if len(e.args) > 1 else ""), time.monotonic() - t0
    raise AssertionError(f"no error after {time.monotonic() - t0:.2f} s; one was expected")


def setup():
    with direct(PRIMARY_PORT) as c, c.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS sluice_test.mc_writes "
                    "(id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(64), v INT)")
    topology("wait-sync")


def rows_tagged(tag):
    with direct(PRIMARY_PORT) as c:
        return one(c, "SELECT COUNT(*) FROM sluice_test.mc_writes WHERE tag = %s", (tag,))[0]


# ------------------------------------------------------------------ a. hold expiry ----

def check_hold_expiry():
    """Would catch: a write that fails at once (no hold) or waits longer than the hold
    (the key not read: the default is 30 s), a held write that ran anyway, a write that
    succeeds with no primary, reads held with the writes, a login not held, writes that do
    not come back once the primary is reachable again."""
    relay_port = port(521)
    relay("start", "mc_primary", str(relay_port), str(PRIMARY_PORT), "0")
    tag = f"hold-{os.getpid()}-{time.time_ns()}"
    try:
        text = config_text(520, direct_backends(primary_port=relay_port),
                           routing=f"failover_hold_ms = {HOLD_MS}")
        with daemon("hold", 520, text) as d:
            true(wait_until(lambda: d.entries()["primary"]["role"] == "primary" and
                            d.entries()["primary"]["state"] == "up", 10),
                 f"the primary (through the relay) is up: {d.entries()}")
            s = connect(d.port, read_timeout=30)
            try:
                with s.cursor() as c:
                    c.execute("INSERT INTO mc_writes (tag, v) VALUES (%s, 1)", (tag,))
                itlib.expect_replica(one(s, "SELECT @@server_id")[0], "a read before the outage")
                # Every connection through the relay closed, new ones refused.
                relay("start", "mc_primary", str(relay_port), str(PRIMARY_PORT), "0",
                      "refuse-after-accept")
                t_out = time.monotonic()
                true(wait_until(lambda: d.entries()["primary"]["state"] == "down", 5, 0.02),
                     f"the monitor sees the primary down: {d.entries()}")
                entries = d.entries()
                eq([n for n, e in entries.items() if e["role"] == "primary"], [],
                   f"no backend takes writes: {entries}")
                print(f"     primary down in /backends {time.monotonic() - t_out:.2f} s after the "
                      f"relay started refusing")
                t0 = time.monotonic()
                sid = one(s, "SELECT @@server_id")[0]
                read_took = time.monotonic() - t0
                itlib.expect_replica(sid, "an autocommit read with no primary reachable")
                true(read_took < HOLD_MS / 2000,
                     f"the read took {read_took:.2f} s: not held (failover_hold_ms {HOLD_MS})")
                # The write goes at once after the read: the session was busy, but its primary
                # connection was not (unused since before the outage), so Sluice checks it
                # before use and holds the write instead of sending it into a dead connection
                # (which failed at once with 1158 before the per-connection check).
                code, msg, took = error_of(lambda: s.cursor().execute(
                    "INSERT INTO mc_writes (tag, v) VALUES (%s, 2)", (tag,)))
                print(f"     read on server {sid} in {read_took * 1000:.1f} ms; write failed after "
                      f"{took:.2f} s: {code} {msg!r}")
                # The error of a statement whose hold ran out: it says it did not run.
                eq((code, msg), (1105, "Sluice knows no primary: no backend is up with "
                                 f"read_only=0 (waited {HOLD_MS} ms, failover_hold_ms): the "
                                 "statement did not run"), "the held write's error")
                true(HOLD_MS / 1000 - 0.05 <= took <= HOLD_MS / 1000 + 1.0,
                     f"the write failed {took:.2f} s after it was sent (failover_hold_ms {HOLD_MS})")
                # The session goes on: a read at once, then a write at once (busy now, but its
                # dead connection is gone: held again).
                itlib.expect_replica(one(s, "SELECT @@server_id")[0],
                                     "the session reads on after its write failed")
                code, msg, took = error_of(lambda: s.cursor().execute(
                    "INSERT INTO mc_writes (tag, v) VALUES (%s, 2)", (tag,)))
                eq(code, 1105, f"the second held write's error ({msg!r})")
                true(msg.endswith("the statement did not run"),
                     f"the second held write's error says it did not run: {msg!r}")
                true(HOLD_MS / 1000 - 0.05 <= took <= HOLD_MS / 1000 + 1.0,
                     f"the second write failed {took:.2f} s after it was sent")
                code, msg, took = error_of(lambda: connect(d.port).close())
                print(f"     a new login failed after {took:.2f} s: {code} {msg!r}")
                eq(code, 1105, f"a login with no primary: error code ({msg!r})")
                eq(msg, "Sluice knows no primary: no backend is up with read_only=0 "
                   f"(waited {HOLD_MS} ms, failover_hold_ms)", "the login error")
                true(HOLD_MS / 1000 - 0.05 <= took <= HOLD_MS / 1000 + 1.5,
                     f"the login failed {took:.2f} s after it started (failover_hold_ms {HOLD_MS})")
                eq(rows_tagged(tag), 1, "rows on the primary: the held writes did not run")
                relay("set", "mc_primary", "mode=relay")
                true(wait_until(lambda: d.entries()["primary"]["role"] == "primary" and
                                d.entries()["primary"]["state"] == "up", 10),
                     f"the primary is back in /backends: {d.entries()}")
                with s.cursor() as c:
                    c.execute("INSERT INTO mc_writes (tag, v) VALUES (%s, 3)", (tag,))
                eq(primary_server_id(s), 1, "the session's writes run on server 1 again")
                with connect(d.port) as s2:
                    with s2.cursor() as c:
                        c.execute("INSERT INTO mc_writes (tag, v) VALUES (%s, 4)", (tag,))
                    eq(primary_server_id(s2), 1, "a new session writes on server 1")
                eq(rows_tagged(tag), 3, "rows on the primary after the relay is back")
            finally:
                s.close()
    finally:
        relay("stop", "mc_primary")


# ---------------------------------------------------------- b. heartbeat_table = "" ----

def heartbeat_ids():
    """The ids (one per Sluice process) in sluice.heartbeat on the primary; empty if there is
    no such table yet."""
    with direct(PRIMARY_PORT) as c:
        try:
            with c.cursor() as cur:
                cur.execute("SELECT id FROM sluice.heartbeat")
                return {r[0] for r in cur.fetchall()}
        except pymysql.err.ProgrammingError as e:
            if e.args[0] == 1146:  # no such table
                return set()
            raise


class DirectWriter:
    """Inserts a row directly on the primary every 50 ms until stopped: replication has work
    (Seconds_Behind_Master moves only while events arrive)."""

    def __init__(self, tag):
        self.tag, self.stop, self.error, self.count = tag, threading.Event(), None, 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        try:
            with direct(PRIMARY_PORT) as c, c.cursor() as cur:
                while not self.stop.is_set():
                    cur.execute("INSERT INTO sluice_test.mc_writes (tag, v) VALUES (%s, %s)",
                                (self.tag, self.count))
                    self.count += 1
                    time.sleep(0.05)
        except Exception as e:  # reported at the end
            self.error = e

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        true(self.error is None, f"the direct writer failed: {self.error!r}")


def check_no_heartbeat():
    """Would catch: heartbeat_table = "" ignored (a heartbeat row of the daemon's own on the
    primary), no lag at all without a heartbeat (lag_ms null), a lag that is not
    Seconds_Behind_Master's (not whole seconds, or 0 with replica1 2 s behind)."""
    # The method: a daemon with the default heartbeat adds a row of its own.
    before = heartbeat_ids()
    with daemon("heartbeat_default", 522, config_text(522, direct_backends())):
        true(wait_until(lambda: heartbeat_ids() - before, 5),
             "a daemon with the default heartbeat_table wrote a row on the primary")
        control = heartbeat_ids() - before
    with direct(PRIMARY_PORT) as c, c.cursor() as cur:
        for i in control:  # that daemon's row, no use to anyone now
            cur.execute("DELETE FROM sluice.heartbeat WHERE id = %s", (i,))
    before = heartbeat_ids()
    text = config_text(522, direct_backends(), monitor_extra='heartbeat_table = ""\n')
    with daemon("heartbeat_none", 522, text) as d:
        topology("lag", "replica1", "2")
        try:
            with DirectWriter(f"hb-{os.getpid()}"):
                seen = []

                def lagging():
                    e = d.entries()["replica1"]
                    seen.append(e["lag_ms"])
                    return e["lag_ms"] is not None and e["lag_ms"] >= 1000

                true(wait_until(lagging, 15, 0.1),
                     f"replica1 (MASTER_DELAY 2 s) shown at least 1000 ms behind; lag_ms seen "
                     f"{sorted(set(x for x in seen if x is not None))[-10:]}")
                entries = d.entries()
                print(f"     heartbeat_table = \"\": lag_ms replica1 {entries['replica1']['lag_ms']}, "
                      f"replica2 {entries['replica2']['lag_ms']}; lag_ms values seen "
                      f"{sorted(set(seen), key=lambda x: (x is None, x))}")
                for name in ("replica1", "replica2"):
                    lag = entries[name]["lag_ms"]
                    true(lag is not None, f"{name}: lag_ms reported without a heartbeat")
                    eq(lag % 1000, 0, f"{name}: lag_ms {lag} is whole seconds (Seconds_Behind_Master)")
                    eq(entries[name]["replicating"], True, f"{name} replicating")
                true(all(x is None or x % 1000 == 0 for x in seen),
                     f"every replica1 lag_ms seen is whole seconds: {seen}")
                eq(heartbeat_ids() - before, set(),
                   "new heartbeat rows on the primary while the daemon with heartbeat_table = \"\" "
                   f"ran ({len(seen)} polls, interval {INTERVAL_MS} ms)")
        finally:
            topology("lag", "replica1", "0")
            topology("wait-sync")


# ---------------------------------------------------------------- c. breaker_open ----

def refused_connections():
    with open(os.path.join(DIR, "mc_replica2.log")) as f:
        return sum(1 for line in f if " open refuse-after-accept " in line)


def session_read(p):
    with connect(p) as s:
        return one(s, "SELECT @@server_id")[0]


def check_breaker_open():
    """Would catch: `breaker_open` never reported (a refusing replica shown up, or down
    although the monitor reaches it), a session's failed connect not shared (every new
    session trying the refusing replica again), reads failing or going to the primary, a
    breaker that never lets the replica back."""
    relay_port = port(525)
    relay("start", "mc_replica2", str(relay_port), str(REPLICA2_PORT), "0")
    try:
        backends = [backend("primary", PRIMARY_PORT, "primary", "a"),
                    backend("replica1", REPLICA1_PORT, zone="a"),
                    backend("replica2", relay_port, zone="b")]
        # Session mode: every new session opens its own replica connection, which is what the
        # breaker is about (pooled sessions reuse connections already open, even to a replica
        # that now refuses new ones; the breaker works the same for the pool's opens).
        text = config_text(524, backends, zone="b", routing=f"replica_retry_ms = {RETRY_MS}")
        text += '\n[pool]\nmode = "session"\n'
        with daemon("breaker", 524, text) as d:
            true(wait_until(lambda: d.entries()["replica2"]["state"] == "up", 10),
                 f"replica2 (through the relay) is up: {d.entries()}")
            eq([session_read(d.port) for _ in range(3)], [3, 3, 3],
               "new sessions read on replica2, Sluice's own zone")
            relay("set", "mc_replica2", "mode=refuse-after-accept")
            refused0 = refused_connections()
            eq(session_read(d.port), 2, "a new session, replica2 refusing: read on replica1")
            t_open = time.monotonic()
            doc = d.backends()
            entries = by_name(doc)
            print(f"     replica2 refusing: /backends state {entries['replica2']['state']}, "
                  f"replica1 {entries['replica1']['state']}")
            eq(entries["replica2"]["state"], "breaker_open", f"/backends replica2: {entries['replica2']}")
            eq(entries["replica1"]["state"], "up", "/backends replica1")
            reads = [session_read(d.port) for _ in range(5)]
            eq(reads, [2] * 5, "reads of 5 more new sessions while replica2's breaker is open")
            refused = refused_connections() - refused0
            eq(refused, 1, "connections replica2's relay refused for the 6 sessions (one: the "
               "breaker is shared, the others skipped it)")
            v0 = doc["topology_version"]
            time.sleep(0.6)
            doc = d.backends()
            true(doc["topology_version"] > v0, "the monitor still publishes snapshots")
            eq(by_name(doc)["replica2"]["state"], "breaker_open",
               "replica2 is still breaker_open (its probes succeed: not down)")
            back = wait_until(lambda: d.entries()["replica2"]["state"] == "up",
                              RETRY_MS / 1000 + 2, 0.05)
            took = time.monotonic() - t_open
            true(back, f"replica2 shown up again within replica_retry_ms + 2 s: {d.entries()}")
            print(f"     breaker_open for {took:.2f} s (replica_retry_ms {RETRY_MS})")
            true(took >= RETRY_MS / 1000 - 0.5, f"replica2 was breaker_open {took:.2f} s only "
                 f"(replica_retry_ms {RETRY_MS})")
            relay("set", "mc_replica2", "mode=relay")
            eq([session_read(d.port) for _ in range(3)], [3, 3, 3],
               "new sessions read on replica2 again once it accepts connections")
    finally:
        relay("stop", "mc_replica2")


# ------------------------------------------------------------------------ d. weights ----

def check_weights():
    """Would catch: weights ignored among tied replicas (about 50%), or a weight that takes
    every session (100%: e.g. a least-connections choice that counts no open session)."""
    text = config_text(526, direct_backends(weights=(3, 1)))
    with daemon("weights", 526, text) as d:
        true(wait_until(lambda: all(d.entries()[n]["rtt_ms"] for n in ("replica1", "replica2")), 5),
             f"both replicas' RTTs measured: {d.entries()}")
        entries = d.entries()
        conns, ids = [], []
        try:
            for _ in range(40):
                c = connect(d.port)
                conns.append(c)
                ids.append(one(c, "SELECT @@server_id")[0])
        finally:
            for c in conns:
                c.close()
        share = ids.count(2) / len(ids)
        print(f"     weights 3:1, RTT {entries['replica1']['rtt_ms']} / {entries['replica2']['rtt_ms']} "
              f"ms: replica1 {ids.count(2)}, replica2 {ids.count(3)}, primary {ids.count(1)} of 40")
        eq(ids.count(1), 0, "reads answered by the primary")
        true(0.6 <= share <= 0.9, f"replica1's share of 40 sessions with weights 3:1: {share:.0%}")


# ---------------------------------------------------------------- e. password_env ----

def run_binary(config, env):
    """sluice --config CONFIG in the foreground with ENV (it must refuse to start):
    (exit status, stderr). A daemon that starts after all is killed after 10 s."""
    try:
        p = subprocess.run([BIN, "--config", config], capture_output=True, text=True, timeout=10,
                           env=env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"sluice --config {config} did not exit within 10 s "
                             f"(it started: {e.stderr!r})") from e
    return p.returncode, p.stderr


def check_password_env():
    """Would catch: password_env not read for [monitor] (probes refused: backends down; or a
    start refused although the variable is set), the value ignored (backends up with a wrong
    password), a daemon that starts without the variable, or a message that does not name it."""
    text = config_text(528, direct_backends(), password=f'password_env = "{PASSWORD_VAR}"')
    section = text.split("[monitor]")[1].split("[routing]")[0]
    true("password =" not in section and PASSWORD_VAR in section,
         f"the [monitor] section names the variable and holds no password: {section!r}")
    with daemon("password_env", 528, text, env={PASSWORD_VAR: "monitor"}) as d:
        true(wait_until(lambda: all(e["state"] == "up" for e in d.entries().values()), 5),
             f"every backend up with the password from {PASSWORD_VAR}: {d.entries()}")
        entries = d.entries()
        for name, e in entries.items():
            eq(e["monitored"], True, f"{name}: monitored")
            true(e["rtt_ms"] is not None and e["rtt_ms"] > 0, f"{name}: RTT measured ({e['rtt_ms']})")
        eq(entries["primary"]["role"], "primary", "the primary found by its probe (read_only = 0)")
        print(f"     {PASSWORD_VAR} set: {[(n, e['state'], e['rtt_ms']) for n, e in entries.items()]}")
    with daemon("password_env_wrong", 528, text, env={PASSWORD_VAR: "not-the-password"}) as d:
        time.sleep(3 * INTERVAL_MS / 1000)
        entries = d.entries()
        print(f"     {PASSWORD_VAR} wrong: {[(n, e['state']) for n, e in entries.items()]}")
        eq({n: e["state"] for n, e in entries.items()},
           {"primary": "down", "replica1": "down", "replica2": "down"},
           f"states with a wrong password in {PASSWORD_VAR}")
    env = {k: v for k, v in os.environ.items() if k != PASSWORD_VAR}
    config = os.path.join(DIR, "password_env.toml")  # written by the daemon above
    rc, err = run_binary(config, env)
    print(f"     {PASSWORD_VAR} unset: exit {rc}: {err.strip()[-300:]!r}")
    eq(rc, 2, f"exit status with {PASSWORD_VAR} unset (stderr {err.strip()[-300:]!r})")
    true(f"environment variable {PASSWORD_VAR} is not set" in err and "password_env" in err
         and config in err, f"the message names the file, the key and the variable: {err!r}")


def main():
    checks = Checks()
    checks.log = None  # the shared daemon's log is not this test's
    os.makedirs(DIR, exist_ok=True)
    if not checks.run("set-up: table mc_writes, replicas in sync", setup):
        checks.finish()
    checks.run("a. failover_hold_ms: with no primary a write waits the hold, then fails; reads "
               "go on; writes come back", check_hold_expiry)
    checks.run("b. heartbeat_table = \"\": lag from Seconds_Behind_Master, no heartbeat row",
               check_no_heartbeat)
    checks.run("c. /backends breaker_open: a replica refusing sessions' connections is skipped "
               "by all for replica_retry_ms", check_breaker_open)
    checks.run("d. weights 3:1 among equally near replicas", check_weights)
    checks.run("e. [monitor] password_env: set, wrong, unset", check_password_env)
    checks.finish()


if __name__ == "__main__":
    main()
