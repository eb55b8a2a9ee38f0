#!/usr/bin/env node
// ryw_execute: read-your-writes for prepared statements run with the binary protocol
// (COM_STMT_EXECUTE, mysql2's connection.execute()). Sluice writes the read-your-writes wait
// (MASTER_GTID_WAIT) and the execute to the replica in one write: if the wait succeeds the
// execute's answer goes to the client; if it times out (causal_read_timeout_ms) that answer is
// dropped and the primary runs the execute. The client never sees a stale row or an error.
//
// Phase 1 (replicas in sync): S sessions through Sluice, each R rounds of a prepared INSERT
// and, at once, a prepared SELECT of that row (hint consistency=session). No read is stale; at
// least MIN_REPLICA_SHARE of them are answered by a replica (@@server_id 2 or 3, in the same
// statement); the replicas' own Master_gtid_wait_count and Com_stmt_execute grew (the waits
// and the executes ran there).
//
// Phase 2 (replica1's SQL thread stopped, topology.sh stop-sql): the same with fresh sessions.
// No stale read, no error; replica1 answers no read after a write (it has none of the rows);
// every session that reads from replica1 gets reads answered by the primary (server_id 1, with
// the row): the timed-out waits. Server-side proof of the pipelining: replica1's own
// Master_gtid_wait_timeouts grew, and its Com_stmt_execute grew by at least as much -- the
// execute sent behind each timed-out wait ran there and its answer was dropped (a wait first,
// execute after, would not have sent it to replica1 at all). sluice_causal_waits_total
// {outcome="timeout"} on the admin port is a secondary sanity check only.
// replica1's SQL thread is always restarted and the replicas resynchronised (wait-sync).
//
// Reads name the server that answered in the same statement:
//   SELECT (SELECT v FROM t WHERE id = ?) AS v, @@server_id AS s
// so a missing row still says which server answered it (v is NULL).
//
// Environment as for the other integration tests (CTest, or
// `eval "$(tests/fixtures/stack.sh env NN)"`). SLUICE_IT_DIRECT=1 runs it against the primary
// directly (SLUICE_PORT = the primary's port) to validate the test itself; replica, server-side
// counter and metric expectations are then not checked.
// SLUICE_RYW_SESSIONS / SLUICE_RYW_ROUNDS override S (6) and R (150); SLUICE_RYW_CONSISTENCY
// (default session) the level in the reads' hint: `eventual` must make the test fail.
//
// What the node tests share (mysql2, environment, Checks and its exit guard, connections) is in
// itlib.js.
'use strict';

const http = require('http');
const {
  env, DIRECT, PRIMARY_PORT, REPLICA_PORTS, PRIMARY_ID, REPLICA_IDS, configure,
  Checks, show, eq, truth, topology, connect, direct, withConn, one, syncReplicas,
} = require('./itlib');

// As this test has always printed: longer, compact values; only the "at ..." lines of a stack.
configure({ showLimit: 400, showCompact: true, stackFramesOnly: true });

const ADMIN_PORT = DIRECT ? null : Number(env('SLUICE_ADMIN_PORT'));
const TABLE = 'ryw_exec';
const REPLICA1_ID = 2;
const SESSIONS = Number(process.env.SLUICE_RYW_SESSIONS || 6);
const ROUNDS = Number(process.env.SLUICE_RYW_ROUNDS || 150);
const MIN_REPLICA_SHARE = 0.8;
const PHASE_TIMEOUT_MS = 120000;
// SLUICE_RYW_CONSISTENCY=eventual validates the test itself: the stale-read checks must then fail.
const CONSISTENCY = process.env.SLUICE_RYW_CONSISTENCY || 'session';
const HINT = `/* sluice: consistency=${CONSISTENCY} */ `;
const INSERT_SQL = `INSERT INTO ${TABLE} (id, v) VALUES (?, ?)`;
const SELECT_SQL = `${HINT}SELECT (SELECT v FROM ${TABLE} WHERE id = ?) AS v, @@server_id AS s`;

// ------------------------------------------------------------------------------ checks ----

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// -------------------------------------------------------------------------- connections ----

// The replicas' own counters (SHOW GLOBAL STATUS), read directly on each replica.
const COUNTERS = ['Master_gtid_wait_count', 'Master_gtid_wait_timeouts', 'Com_stmt_execute'];

async function replicaCounters() {
  const out = {};
  for (const name of Object.keys(REPLICA_PORTS)) {
    out[name] = await withConn(await direct(REPLICA_PORTS[name]), async (d) => {
      const [r] = await d.query('SHOW GLOBAL STATUS WHERE Variable_name IN (?)', [COUNTERS]);
      const vals = {};
      for (const row of r) vals[row.Variable_name] = Number(row.Value);
      for (const c of COUNTERS) truth(Number.isFinite(vals[c]), `${name}: SHOW GLOBAL STATUS has no ${c}`);
      return vals;
    });
  }
  return out;
}

function counterDelta(before, after) {
  const out = {};
  for (const name of Object.keys(after)) {
    out[name] = {};
    for (const c of COUNTERS) out[name][c] = after[name][c] - before[name][c];
  }
  return out;
}

// sluice_causal_waits_total{outcome="..."} on the admin port (summed over any other labels).
function causalWaits() {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: ADMIN_PORT, path: '/metrics', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET /metrics: status ${res.statusCode}`));
          return;
        }
        const out = { ok: 0, timeout: 0, error: 0 };
        for (const line of body.split('\n')) {
          const m = /^sluice_causal_waits_total\{([^}]*)\}\s+(\S+)$/.exec(line);
          if (!m) continue;
          const o = /outcome="([^"]*)"/.exec(m[1]);
          if (o) out[o[1]] = (out[o[1]] || 0) + Number(m[2]);
        }
        resolve(out);
      });
    });
    req.on('timeout', () => req.destroy(new Error('GET /metrics timed out')));
    req.on('error', reject);
  });
}

async function sqlThreadRunning(name) {
  return withConn(await direct(REPLICA_PORTS[name]), async (d) =>
    (await one(d, 'SHOW SLAVE STATUS')).Slave_SQL_Running);
}

// --------------------------------------------------------------------------- sessions ----

// One client session: a read before any write (the replica the session reads from), then
// ROUNDS x (prepared INSERT of a row, prepared SELECT of it at once).
async function runSession(phase, number) {
  const st = {
    number, firstServer: null, rounds: 0, stale: [], errors: [], served: {}, latency: [],
  };
  const base = phase * 1000000 + number * 10000;
  let c;
  try {
    c = await connect();
  } catch (e) {
    st.errors.push(`connect: ${e.code || e.name}: ${e.message}`);
    return st;
  }
  st.conn = c;
  try {
    st.firstServer = Number((await one(c, `${HINT}SELECT @@server_id AS s`)).s);
    for (let i = 0; i < ROUNDS; i++) {
      const id = base + i;
      const value = `p${phase}-s${number}-r${i}`;
      let got;
      try {
        const [ins] = await c.execute(INSERT_SQL, [id, value]);
        truth(ins.affectedRows === 1, `INSERT affected ${ins.affectedRows} rows`);
        const t0 = process.hrtime.bigint();
        [got] = await c.execute(SELECT_SQL, [id]);
        st.latency.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (e) {
        st.errors.push(`round ${i}: ${e.code || e.name} errno=${e.errno}: ${e.message}`);
        return st;
      }
      st.rounds++;
      const server = Array.isArray(got) && got.length === 1 ? Number(got[0].s) : null;
      st.served[server] = (st.served[server] || 0) + 1;
      if (server === null || got[0].v !== value) st.stale.push({ id, want: value, got });
    }
  } catch (e) {
    st.errors.push(`${e.code || e.name}: ${e.message}`);
  } finally {
    st.conn = null;
    try {
      await c.end();
    } catch (e) {
      c.destroy();
    }
  }
  return st;
}

function percentile(values, p) {
  if (!values.length) return NaN;
  const s = values.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

function servedBy(sessions) {
  const out = {};
  for (const s of sessions) {
    for (const [k, n] of Object.entries(s.served)) out[k] = (out[k] || 0) + n;
  }
  return out;
}

async function runPhase(phase, label) {
  const t0 = Date.now();
  const pending = [];
  for (let n = 0; n < SESSIONS; n++) pending.push(runSession(phase, n));
  const sessions = await withTimeout(Promise.all(pending), PHASE_TIMEOUT_MS, label);
  const secs = (Date.now() - t0) / 1000;
  const rounds = sessions.reduce((a, s) => a + s.rounds, 0);
  console.log(`     ${label}: ${rounds} rounds in ${secs.toFixed(2)}s, ${SESSIONS} sessions`);
  const groups = {};
  for (const s of sessions) (groups[s.firstServer] = groups[s.firstServer] || []).push(s);
  for (const [server, group] of Object.entries(groups)) {
    const lat = group.flatMap((s) => s.latency);
    const served = servedBy(group);
    console.log(`       sessions first on server_id ${server}: ${group.length} (${group.map((s) => s.number).join(',')}), ` +
      `reads answered by server_id ${show(served)}, read latency p50 ${percentile(lat, 0.5).toFixed(2)} ms, ` +
      `p99 ${percentile(lat, 0.99).toFixed(2)} ms, max ${Math.max(...lat).toFixed(2)} ms`);
  }
  console.log(`     ${label}: reads after a write answered by server_id ${show(servedBy(sessions))}`);
  return sessions;
}

function checkSessions(sessions, label) {
  const errors = sessions.flatMap((s) => s.errors.map((e) => `session ${s.number}: ${e}`));
  eq(errors.slice(0, 5), [], `${label}: errors (${errors.length} in all)`);
  eq(sessions.reduce((a, s) => a + s.rounds, 0), SESSIONS * ROUNDS, `${label}: rounds completed`);
  const stale = sessions.flatMap((s) => s.stale.map((x) => Object.assign({ session: s.number, first: s.firstServer }, x)));
  eq(stale.slice(0, 5), [], `${label}: stale reads (${stale.length} in all)`);
}

// ------------------------------------------------------------------------------- tests ----

async function setup() {
  await withConn(await direct(PRIMARY_PORT), async (d) => {
    await d.query(`DROP TABLE IF EXISTS ${TABLE}`);
    await d.query(`CREATE TABLE ${TABLE} (id BIGINT PRIMARY KEY, v VARCHAR(64) NOT NULL) ENGINE=InnoDB`);
  });
  await syncReplicas();
  for (const name of Object.keys(REPLICA_PORTS)) {
    eq(await sqlThreadRunning(name), 'Yes', `${name}'s SQL thread at the start`);
  }
}

async function testInSync() {
  // The sessions spread over equally near replicas. A worker scores a replica by its own
  // reads' round trips for 1 s after the last one (README, "Read/write splitting"): a slow read of
  // the test before could still make one replica look far. Past that second they are equal.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const counters0 = DIRECT ? null : await replicaCounters();
  const metrics0 = DIRECT ? null : await causalWaits();
  const sessions = await runPhase(1, 'replicas in sync');
  checkSessions(sessions, 'replicas in sync');
  const served = servedBy(sessions);
  const total = Object.values(served).reduce((a, n) => a + n, 0);
  const onReplicas = REPLICA_IDS.reduce((a, id) => a + (served[id] || 0), 0);
  if (DIRECT) return;
  const d = counterDelta(counters0, await replicaCounters());
  const m1 = await causalWaits();
  console.log(`     replicas' own counters grew by ${show(d)}`);
  console.log(`     sluice_causal_waits_total grew by ok +${m1.ok - metrics0.ok}, ` +
    `timeout +${m1.timeout - metrics0.timeout}, error +${m1.error - metrics0.error}`);
  eq([...new Set(sessions.map((s) => s.firstServer))].sort(), REPLICA_IDS,
    'replicas the sessions read from (first read, before any write)');
  truth(onReplicas >= MIN_REPLICA_SHARE * total,
    `the replicas answered ${onReplicas} of ${total} reads after a write (${show(served)}); ` +
    `expected >= ${MIN_REPLICA_SHARE * 100}%: the executes did not wait on the replicas`);
  for (const id of REPLICA_IDS) {
    truth((served[id] || 0) > 0, `server_id ${id} answered no read after a write (${show(served)})`);
  }
  const waits = d.replica1.Master_gtid_wait_count + d.replica2.Master_gtid_wait_count;
  for (const [name, id] of [['replica1', 2], ['replica2', 3]]) {
    truth(d[name].Master_gtid_wait_count > 0,
      `${name}'s Master_gtid_wait_count did not grow (${show(d[name])}) although it answered ` +
      `${served[id] || 0} reads after a write`);
    // Every read a replica answered was a COM_STMT_EXECUTE there (the binary protocol reached it).
    truth(d[name].Com_stmt_execute >= (served[id] || 0),
      `${name}'s Com_stmt_execute grew by ${d[name].Com_stmt_execute}, less than the ` +
      `${served[id] || 0} reads it answered`);
  }
  // Under consistency=session nearly every read right after the session's own write needs a
  // wait (the monitor rarely has read a position that new); half is a safe floor.
  truth(waits >= 0.5 * onReplicas,
    `the replicas ran ${waits} MASTER_GTID_WAITs for ${onReplicas} reads after a write they answered`);
  eq(m1.error - metrics0.error, 0, 'sluice_causal_waits_total{outcome="error"} growth');
}

async function testReplica1Stopped() {
  const counters0 = DIRECT ? null : await replicaCounters();
  const metrics0 = DIRECT ? null : await causalWaits();
  topology('stop-sql', 'replica1');
  eq(await sqlThreadRunning('replica1'), 'No', "replica1's SQL thread after stop-sql");
  const sessions = await runPhase(2, 'replica1 SQL thread stopped');
  // The lag was real: replica1 has none of this phase's rows.
  await withConn(await direct(REPLICA_PORTS.replica1), async (r) => {
    eq(Number((await one(r, `SELECT COUNT(*) AS n FROM ${TABLE} WHERE id >= 2000000`)).n), 0,
      'rows of phase 2 on replica1 (its SQL thread is stopped)');
  });
  checkSessions(sessions, 'replica1 SQL thread stopped');
  const served = servedBy(sessions);
  // replica1 has none of the rows: any read it answered would have been stale (checked above
  // too, but said plainly here).
  eq(served[REPLICA1_ID] || 0, 0, 'reads after a write answered by replica1 (it has none of the rows)');
  if (DIRECT) return;
  const d = counterDelta(counters0, await replicaCounters());
  const m1 = await causalWaits();
  const onReplica1 = sessions.filter((s) => s.firstServer === REPLICA1_ID);
  const primaryReads = served[PRIMARY_ID] || 0;
  console.log(`     replicas' own counters grew by ${show(d)}`);
  console.log(`     sluice_causal_waits_total grew by ok +${m1.ok - metrics0.ok}, ` +
    `timeout +${m1.timeout - metrics0.timeout}, error +${m1.error - metrics0.error}`);
  console.log(`     ${onReplica1.length} sessions first on replica1 (${onReplica1.map((s) => s.number).join(',')}); ` +
    `the primary answered ${primaryReads} reads after a write`);
  truth(onReplica1.length > 0,
    `no session read from replica1 in phase 2 (first reads on ${show(sessions.map((s) => s.firstServer))})`);
  // The real proof that waits timed out and the primary ran the execute: every session that sat
  // on replica1 had reads answered by the primary, with the row (no stale read, checked above).
  for (const s of onReplica1) {
    truth((s.served[PRIMARY_ID] || 0) > 0,
      `session ${s.number} sat on replica1 but no read was answered by the primary (${show(s.served)})`);
  }
  // Server side: replica1's waits timed out, and the execute written behind each of them ran
  // there (its answer dropped): the wait and the execute went in one write.
  truth(d.replica1.Master_gtid_wait_timeouts >= 1,
    `replica1's Master_gtid_wait_timeouts grew by ${d.replica1.Master_gtid_wait_timeouts}`);
  truth(d.replica1.Com_stmt_execute >= d.replica1.Master_gtid_wait_timeouts,
    `replica1 ran ${d.replica1.Com_stmt_execute} COM_STMT_EXECUTEs for ` +
    `${d.replica1.Master_gtid_wait_timeouts} timed-out waits: the execute was not sent with the ` +
    'wait (not pipelined)');
  truth(primaryReads >= 1, 'the primary answered no read after a write');
  // Secondary sanity check only: Sluice's own count of timed-out waits.
  truth(m1.timeout - metrics0.timeout >= 1,
    `sluice_causal_waits_total{outcome="timeout"} grew by ${m1.timeout - metrics0.timeout}`);
  eq(m1.error - metrics0.error, 0, 'sluice_causal_waits_total{outcome="error"} growth');
}

// Always run (also after a failure): replica1 replicating again, both replicas caught up.
async function restoreReplica1() {
  topology('start-sql', 'replica1');
  topology('wait-sync');
  eq(await sqlThreadRunning('replica1'), 'Yes', "replica1's SQL thread after start-sql");
  await syncReplicas();
}

async function testCaughtUp(phasesRun) {
  await withConn(await direct(REPLICA_PORTS.replica1), async (r) => {
    eq(Number((await one(r, `SELECT COUNT(*) AS n FROM ${TABLE}`)).n), phasesRun * SESSIONS * ROUNDS,
      'rows on replica1 after start-sql + wait-sync');
  });
}

async function main() {
  const checks = new Checks();
  console.log(`     ${SESSIONS} sessions x ${ROUNDS} rounds per phase, reads hinted consistency=${CONSISTENCY}` + (DIRECT ? ' (SLUICE_IT_DIRECT: the primary itself)' : ''));
  if (!await checks.run(`set-up: table ${TABLE} on the primary, replicas caught up`, setup)) {
    checks.finish();
  }
  try {
    await checks.run(`${SESSIONS} x ${ROUNDS} prepared INSERT + SELECT, replicas in sync: no stale ` +
      'read, the replicas answer and ran the waits', testInSync);
    await checks.run(`${SESSIONS} x ${ROUNDS} prepared INSERT + SELECT, replica1 SQL thread stopped: ` +
      'no stale read, no error, the primary answers for replica1', testReplica1Stopped);
  } finally {
    await checks.run('replica1 SQL thread started again, replicas caught up (wait-sync)', restoreReplica1);
  }
  await checks.run('replica1 has every row after catching up', () => testCaughtUp(2));
  await checks.run(`drop ${TABLE}`, async () => {
    await withConn(await direct(PRIMARY_PORT), (d) => d.query(`DROP TABLE IF EXISTS ${TABLE}`));
    await syncReplicas();
  });
  checks.finish();
}

main().catch((e) => {
  console.error(`FAIL - unexpected: ${e && e.stack}`);
  // Leave the topology as found, whatever happened.
  try {
    topology('start-sql', 'replica1');
    topology('wait-sync');
  } catch (e2) {
    console.error(`FAIL - restoring replica1: ${e2.message}`);
  }
  process.exit(1);
});
