// itlib: what the node integration tests in this directory (mysql2_client.js, ryw_execute.js)
// share. mysql2 and mysql2/promise (or a FAIL saying how to install them); the stack's
// environment (env(), HOST, PORT, PRIMARY_PORT, REPLICA_PORTS, TOPOLOGY, DB, DIRECT, the server
// ids); Checks, which runs the named checks and exits, and the exit guard: a test that ends with
// status 0 without Checks.finish() (a promise that never settled) fails; show/eq/truth and the
// @@server_id expectations; topology.sh; connections through Sluice and direct to a server
// (options/connect/direct/withConn, rows/one) and syncReplicas().
// configure() sets the few ways the tests print differently (see `style`).
'use strict';

const fs = require('fs');
const util = require('util');
const childProcess = require('child_process');

let mysql;
let mysqlPromise;
try {
  mysql = require('mysql2');
  mysqlPromise = require('mysql2/promise');
} catch (e) {
  console.error(`FAIL - cannot load mysql2 (${e.message}): run \`npm ci\` in ${__dirname} ` +
    '(scripts/install-deps.sh does)');
  process.exit(1);
}

function env(name) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    console.error(`FAIL - environment variable ${name} is not set (run through ctest)`);
    process.exit(1);
  }
  return v;
}

const HOST = process.env.SLUICE_HOST || '127.0.0.1';
const PORT = Number(env('SLUICE_PORT'));
const PRIMARY_PORT = Number(env('SLUICE_PRIMARY_PORT'));
const REPLICA_PORTS = {
  replica1: Number(env('SLUICE_REPLICA1_PORT')),
  replica2: Number(env('SLUICE_REPLICA2_PORT')),
};
const TOPOLOGY = env('SLUICE_TOPOLOGY');
const DB = 'sluice_test';
// SLUICE_IT_DIRECT=1: the test runs against the primary itself (SLUICE_PORT = the primary's
// port) to validate the test; Sluice-only expectations are relaxed by each test.
const DIRECT = process.env.SLUICE_IT_DIRECT === '1';
const PRIMARY_ID = 1;
const REPLICA_IDS = [2, 3];

// How a test prints: show() cuts at showLimit characters (util.inspect's `compact` as given),
// and a failed check prints the 4 stack lines after the message, or with stackFramesOnly the
// first 4 "at ..." lines.
const style = { showLimit: 300, showCompact: 3, stackFramesOnly: false };

function configure(opts) {
  Object.assign(style, opts);
}

// ------------------------------------------------------------------------------ checks ----

let finished = false; // set by Checks.finish() when every check ran and passed

class Checks {
  constructor() {
    this.failures = [];
    this.count = 0;
    this.log = process.env.SLUICE_LOG;
    this.logStart = this.logSize();
  }

  logSize() {
    try {
      return this.log ? fs.statSync(this.log).size : 0;
    } catch (e) {
      return 0;
    }
  }

  logSinceStart() {
    if (!this.log) return '';
    try {
      return fs.readFileSync(this.log).subarray(this.logStart).toString('utf8');
    } catch (e) {
      return '';
    }
  }

  // Runs one check; prints ok or FAIL; returns whether it passed.
  async run(name, fn) {
    this.count++;
    const t0 = process.hrtime.bigint();
    try {
      await fn();
    } catch (e) {
      this.failures.push(name);
      const detail = e && e.code ? ` [${e.code} errno=${e.errno} sqlState=${e.sqlState}]` : '';
      console.error(`FAIL - ${name}: ${e && e.name}: ${e && e.message}${detail}`);
      if (e && e.stack) {
        const lines = e.stack.split('\n');
        const frames = style.stackFramesOnly
          ? lines.filter((l) => /^\s+at /.test(l)).slice(0, 4) : lines.slice(1, 5);
        console.error(frames.join('\n'));
      }
      return false;
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`ok   - ${name} (${secs.toFixed(2)}s)`);
    return true;
  }

  // Exits: 1 (with the Sluice log written during the test) if a check failed, else 0.
  finish() {
    if (this.failures.length) {
      console.error(`\n${this.failures.length} of ${this.count} checks failed: ` +
        this.failures.join(', '));
      const lines = this.logSinceStart().split('\n').filter((l) => l.length);
      console.error('sluice log during this test (last 60 lines):');
      for (const line of lines.slice(-60)) console.error('  ' + line);
      process.exit(1);
    }
    console.log(`all ${this.count} checks passed`);
    finished = true;
    process.exit(0);
  }
}

// Node exits with status 0 when nothing is left to wait for, even in the middle of main() (a
// promise that will never settle, e.g. a connection to a daemon that died): that is a failure.
process.on('exit', (code) => {
  if (code === 0 && !finished) {
    console.error('FAIL - the test stopped before its last check (a promise never settled)');
    process.exitCode = 1;
  }
});

function show(v) {
  let s = util.inspect(v, { depth: 4, breakLength: Infinity, compact: style.showCompact });
  if (s.length > style.showLimit) s = s.slice(0, style.showLimit) + '...';
  return s;
}

function eq(actual, expected, what) {
  if (!util.isDeepStrictEqual(actual, expected)) {
    throw new Error(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

function truth(cond, what) {
  if (!cond) throw new Error(what);
}

// Through Sluice an autocommit read must have been answered by a replica; directly, any server.
function expectReplica(serverId, what) {
  if (DIRECT) {
    truth([PRIMARY_ID].concat(REPLICA_IDS).includes(serverId), `${what}: @@server_id ${serverId}`);
    return;
  }
  truth(REPLICA_IDS.includes(serverId),
    `${what}: expected a replica's @@server_id ${show(REPLICA_IDS)}, got ${show(serverId)}`);
}

function expectPrimary(serverId, what) {
  eq(serverId, PRIMARY_ID, `${what}: @@server_id (the primary is 1)`);
}

// tests/fixtures/topology.sh with `args` (stop-sql replica1, wait-sync, ...); its output.
function topology(...args) {
  try {
    return childProcess.execFileSync('bash', [TOPOLOGY].concat(args),
      { encoding: 'utf8', timeout: 120000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`topology.sh ${args.join(' ')} failed: ${(e.stdout || '') + (e.stderr || '')}`);
  }
}

// -------------------------------------------------------------------------- connections ----

function options(port, extra) {
  return Object.assign({
    host: HOST,
    port,
    user: 'app',
    password: 'app',
    database: DB,
    charset: 'UTF8MB4_GENERAL_CI',
    connectTimeout: 5000,
    timezone: 'Z',
    supportBigNumbers: true,
    bigNumberStrings: false,
  }, extra || {});
}

// A promise connection through Sluice.
function connect(extra) {
  return mysqlPromise.createConnection(options(PORT, extra));
}

// A promise connection straight to a server (the primary by default).
function direct(port, extra) {
  return mysqlPromise.createConnection(options(port || PRIMARY_PORT, extra));
}

async function rows(conn, sql, params) {
  const [r] = await conn.query(sql, params);
  return r;
}

async function one(conn, sql, params) {
  const r = await rows(conn, sql, params);
  truth(Array.isArray(r) && r.length === 1, `${sql}: expected one row, got ${show(r)}`);
  return r[0];
}

// fn(conn), then the connection ended (destroyed if ending fails).
async function withConn(conn, fn) {
  try {
    return await fn(conn);
  } finally {
    try {
      await conn.end();
    } catch (e) {
      conn.destroy();
    }
  }
}

// Every replica has applied the primary's current binlog position: set-up done directly on the
// primary is visible on the replicas before a check relies on it.
async function syncReplicas() {
  await withConn(await direct(PRIMARY_PORT), async (p) => {
    const pos = (await one(p, 'SELECT @@gtid_binlog_pos AS pos')).pos;
    for (const name of Object.keys(REPLICA_PORTS)) {
      await withConn(await direct(REPLICA_PORTS[name]), async (r) => {
        const w = (await one(r, 'SELECT MASTER_GTID_WAIT(?, 30) AS w', [pos])).w;
        eq(w, 0, `${name} reached the primary's position ${pos} within 30 s`);
      });
    }
  });
}

module.exports = {
  mysql,
  mysqlPromise,
  env,
  HOST,
  PORT,
  PRIMARY_PORT,
  REPLICA_PORTS,
  TOPOLOGY,
  DB,
  DIRECT,
  PRIMARY_ID,
  REPLICA_IDS,
  configure,
  Checks,
  show,
  eq,
  truth,
  expectReplica,
  expectPrimary,
  topology,
  options,
  connect,
  direct,
  rows,
  one,
  withConn,
  syncReplicas,
};
