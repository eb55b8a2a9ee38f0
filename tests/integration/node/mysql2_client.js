#!/usr/bin/env node
// mysql2_client: node's mysql2 driver (npm, pure JavaScript) through Sluice (issue #7, section 1).
//
// Login, text queries, prepared execute() with parameters of many types (binary protocol),
// connection.reset() (COM_RESET_CONNECTION: state, temporary tables and prepared statements
// gone, CONNECTION_ID() kept, read-your-writes still working, pins dropped), changeUser() to
// app2 and back (CONNECTION_ID() kept, as on a direct connection), a pool running 200 mixed
// statements, LOAD DATA LOCAL INFILE through infileStreamFactory, multi-statements, errors
// after which the connection goes on, and connection.destroy() in the middle of a result.
//
// Where a statement ran is proven by the servers (@@server_id: primary 1, replicas 2 and 3;
// the servers' own processlists), never by Sluice's metrics. Runs on node 18 and later, with
// tests/integration/node/node_modules from `npm ci` (scripts/install-deps.sh runs it).
// Environment as for the Python tests (CTest, or `eval "$(tests/fixtures/stack.sh env NN)"`).
// SLUICE_IT_DIRECT=1 runs it against the primary directly (SLUICE_PORT = the primary's port)
// to validate the test itself; Sluice-only expectations (replica server ids) are then relaxed.
//
// What the node tests share (mysql2, environment, Checks and its exit guard, connections) is in
// itlib.js.
'use strict';

const { Readable } = require('stream');
const {
  mysql, mysqlPromise, DB, DIRECT, PORT, PRIMARY_PORT, REPLICA_PORTS, PRIMARY_ID, REPLICA_IDS,
  Checks, show, eq, truth, expectReplica, expectPrimary, topology,
  options, connect, direct, rows, one, withConn, syncReplicas,
} = require('./itlib');

// ------------------------------------------------------------------------------ checks ----

// Awaits a promise that must reject with MySQL error `errno`; returns the error.
async function expectError(promise, errno, what) {
  let result;
  try {
    result = await promise;
  } catch (e) {
    truth(e.errno === errno,
      `${what}: expected error ${errno}, got ${e.errno} ${e.code} (${e.message})`);
    return e;
  }
  throw new Error(`${what}: expected error ${errno}, got a result ${show(result)}`);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(cond, timeoutMs, stepMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(stepMs || 100);
  }
}

// ------------------------------------------------------------------------------- tests ----

async function testLogin() {
  const primaryVersion = await withConn(await direct(),
    async (d) => d.connection._handshakePacket.serverVersion);
  await withConn(await connect(), async (c) => {
    truth(Number.isInteger(c.threadId) && c.threadId > 0, `thread id from the greeting: ${c.threadId}`);
    if (!DIRECT) {
      truth(c.threadId >= 2 ** 30, `Sluice's own connection ids start at 2^30, got ${c.threadId}`);
    }
    eq(c.connection._handshakePacket.serverVersion, primaryVersion, 'server version in the greeting (the primary\'s, as a direct connection sees it)');
    const r = await one(c, "SELECT 1 + 1 AS two, 'abc' AS s, NULL AS n, CURRENT_USER() AS u, DATABASE() AS db");
    eq(r, { two: 2, s: 'abc', n: null, u: 'app@%', db: DB }, 'first SELECT');
    await c.ping();
    eq((await one(c, 'SELECT CONNECTION_ID() AS id')).id, c.threadId,
      'CONNECTION_ID() = the thread id of the greeting (as on a direct connection)');
  });
}

async function testQuery() {
  await withConn(await connect(), async (c) => {
    await c.query('DROP TABLE IF EXISTS node_text');
    await c.query('CREATE TABLE node_text (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64), ' +
      'd DECIMAL(10,2), t DATETIME)');
    const [ins] = await c.query("INSERT INTO node_text (v, d, t) VALUES ('a', 1.50, '2024-02-29 12:34:56'), " +
      "('b', -2.25, NULL), (?, ?, ?)", ["it's \"quoted\" \\ \u00e9 \u{1F600}", '3.75', new Date(Date.UTC(2001, 0, 2, 3, 4, 5))]);
    eq([ins.affectedRows, ins.insertId], [3, 1], 'INSERT of 3 rows: affected rows, first insert id');
    const [upd] = await c.query("UPDATE node_text SET v = CONCAT(v, '!') WHERE id >= 2");
    eq([upd.affectedRows, upd.changedRows], [2, 2], 'UPDATE affected/changed rows');
    // Read-your-writes: the read after the write sees it (wherever it runs).
    const got = await rows(c, 'SELECT id, v, d, t FROM node_text ORDER BY id');
    eq(got, [
      { id: 1, v: 'a', d: '1.50', t: new Date(Date.UTC(2024, 1, 29, 12, 34, 56)) },
      { id: 2, v: 'b!', d: '-2.25', t: null },
      { id: 3, v: "it's \"quoted\" \\ \u00e9 \u{1F600}!", d: '3.75', t: new Date(Date.UTC(2001, 0, 2, 3, 4, 5)) },
    ], 'rows after INSERT and UPDATE');
    // An autocommit read goes to a replica (once the replicas have the writes: a read right
    // after them may be answered by the primary when a replica is slower than Sluice's
    // causal wait, which read_your_writes.py measures).
    await syncReplicas();
    const s = await one(c, 'SELECT @@server_id AS s, COUNT(*) AS n FROM node_text');
    expectReplica(s.s, 'autocommit SELECT');
    eq(s.n, 3, 'row count read on the replica after the writes');
    // Inside a transaction everything runs on the primary.
    await c.beginTransaction();
    expectPrimary((await one(c, 'SELECT @@server_id AS s')).s, 'SELECT inside a transaction');
    await c.rollback();
  });
}

async function testPrepared() {
  await withConn(await connect(), async (c) => {
    await c.query('DROP TABLE IF EXISTS node_ps');
    await c.query('CREATE TABLE node_ps (id INT PRIMARY KEY, i BIGINT, f DOUBLE, dec_ DECIMAL(20,6), ' +
      's VARCHAR(100), b LONGBLOB, dt DATETIME(3), d DATE, tm TIME, n INT NULL, flag TINYINT)');
    const blobAll = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) blobAll[i] = i;
    const blobBig = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < blobBig.length; i++) blobBig[i] = (i * 131 + (i >> 9)) & 0xff;
    const values = [
      [1, 9007199254740991, 1.5, '12345678901234.123456', 'plain', blobAll,
        new Date(Date.UTC(2020, 11, 31, 23, 59, 58, 123)), '2020-02-29', '-838:59:59', null, true],
      [2, -42, -0.001, '-1.000001', "O'Brien \"q\" \\ \u{1F600}", Buffer.alloc(0),
        new Date(Date.UTC(1970, 0, 1, 0, 0, 1)), '1000-01-01', '00:00:00', 7, false],
      [3, 0, 1e300, '0.000000', '', blobBig,
        new Date(Date.UTC(2038, 0, 19, 3, 14, 7, 999)), '9999-12-31', '12:34:56', null, null],
    ];
    for (const v of values) {
      const [r] = await c.execute('INSERT INTO node_ps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', v);
      eq(r.affectedRows, 1, `prepared INSERT of row ${v[0]}`);
    }
    // A 3 MiB row can take the replicas longer than Sluice's causal wait: let them catch up,
    // so the replica checks below do not depend on replication speed.
    await syncReplicas();
    // Read back through the binary protocol (execute) and the text protocol (query).
    const sql = 'SELECT id, i, f, dec_, s, b, dt, DATE_FORMAT(d, \'%Y-%m-%d\') AS d, ' +
      'CAST(tm AS CHAR) AS tm, n, flag FROM node_ps WHERE id >= ? ORDER BY id';
    const [bin] = await c.execute(sql, [1]);
    const [txt] = await c.query(sql, [1]);
    const expectRow = (v) => ({
      id: v[0], i: v[1], f: v[2], dec_: v[3], s: v[4], b: v[5], dt: v[6], d: v[7], tm: v[8], n: v[9],
      flag: v[10] === null ? null : (v[10] ? 1 : 0),
    });
    eq(bin.length, 3, 'rows read by execute');
    for (let k = 0; k < 3; k++) {
      eq(bin[k], expectRow(values[k]), `execute (binary protocol) row ${k + 1}`);
      eq(txt[k], expectRow(values[k]), `query (text protocol) row ${k + 1}`);
    }
    // The same statement with parameters of other types (mysql2 sends the types each time).
    const [rt] = await c.execute('SELECT ? AS a, ? AS b, ? AS c, @@server_id AS s', [null, 'x', 5]);
    eq([rt[0].a, rt[0].b, Number(rt[0].c)], [null, 'x', 5], 'execute with NULL, string, number');
    expectReplica(rt[0].s, 'prepared autocommit read');
    const [rt2] = await c.execute('SELECT ? AS a, ? AS b, ? AS c, @@server_id AS s', [Buffer.from([0, 255]), null, 2.5]);
    eq([rt2[0].a, rt2[0].b, Number(rt2[0].c)], [Buffer.from([0, 255]), null, 2.5],
      'same statement re-executed with a blob, NULL, a double');
    // A prepared statement object executed many times, then closed; a write prepared statement
    // runs on the primary (its result shows which server answered).
    const stmt = await c.prepare('SELECT COUNT(*) AS n, @@server_id AS s FROM node_ps WHERE id <= ?');
    for (let k = 1; k <= 3; k++) {
      const [r] = await stmt.execute([k]);
      eq(r[0].n, k, `prepared COUNT(*) with id <= ${k}`);
      expectReplica(r[0].s, `prepared read #${k}`);
    }
    await stmt.close();
    const [fu] = await c.execute('SELECT @@server_id AS s FROM node_ps WHERE id = ? FOR UPDATE', [1]);
    expectPrimary(fu[0].s, 'prepared SELECT ... FOR UPDATE');
  });
}

// A client must see the same CONNECTION_ID() for the life of its connection, across changeUser
// and reset, as on a direct connection (issue #7, section 3, first bullet).
async function connectionId(c) {
  return (await one(c, 'SELECT CONNECTION_ID() AS id')).id;
}

// What a direct connection to the primary does: the baseline the Sluice checks compare with.
async function testResetDirect() {
  await withConn(await direct(), async (d) => {
    const id = await connectionId(d);
    await d.query('SET @node_v = 42');
    await d.query('CREATE TEMPORARY TABLE node_tmp_direct (a INT)');
    const stmt = await d.prepare('SELECT ? + 1 AS x');
    await d.reset();
    eq(await connectionId(d), id, 'direct: CONNECTION_ID() after reset');
    eq((await one(d, 'SELECT @node_v AS v')).v, null, 'direct: user variable after reset');
    await expectError(d.query('SELECT * FROM node_tmp_direct'), 1146, 'direct: temporary table after reset');
    await expectError(stmt.execute([1]), 1243, 'direct: prepared statement after reset');
  });
}

async function testResetState() {
  await withConn(await connect(), async (c) => {
    await c.query("SET @node_v = 42, SESSION time_zone = '+03:00', SESSION sql_mode = 'ANSI_QUOTES'");
    await c.query('DROP TEMPORARY TABLE IF EXISTS node_tmp');
    await c.query('CREATE TEMPORARY TABLE node_tmp (a INT)');
    await c.query('INSERT INTO node_tmp VALUES (1), (2)');
    const stmt = await c.prepare('SELECT ? + 1 AS x');
    eq(Number((await stmt.execute([1]))[0][0].x), 2, 'prepared statement before reset');
    eq((await one(c, 'SELECT @node_v AS v, @@session.time_zone AS tz, COUNT(*) AS n FROM node_tmp')),
      { v: 42, tz: '+03:00', n: 2 }, 'state before reset');
    await c.reset();
    const after = await one(c, 'SELECT @node_v AS v, @@session.time_zone AS tz, ' +
      "@@session.sql_mode LIKE '%ANSI_QUOTES%' AS ansi, @@server_id AS s");
    eq([after.v, after.tz, after.ansi], [null, 'SYSTEM', 0],
      'user variable, time_zone and sql_mode (ANSI_QUOTES) after reset');
    // The temporary table pinned the session to the primary; after reset it is gone and the
    // pin with it: the read above went to a replica.
    expectReplica(after.s, 'autocommit read after reset (no temporary-table pin left)');
    await expectError(c.query('SELECT * FROM node_tmp'), 1146, 'temporary table after reset');
    await expectError(stmt.execute([1]), 1243, 'prepared statement (old id) after reset');
    eq(Number((await c.execute('SELECT ? + 1 AS x', [41]))[0][0].x), 42,
      'a statement prepared after reset');
  });
}

// mysql2 asks for CLIENT_IGNORE_SPACE, which the server turns into sql_mode IGNORE_SPACE at
// login; COM_RESET_CONNECTION puts the global sql_mode back. The session after reset must look
// the same wherever Sluice runs its statements.
async function testResetSqlMode() {
  const mode = 'SELECT @@session.sql_mode AS m, @@server_id AS s';
  const want = await withConn(await direct(), async (d) => {
    const before = (await one(d, mode)).m;
    await d.reset();
    return { before, after: (await one(d, mode)).m };
  });
  await withConn(await connect(), async (c) => {
    const before = await one(c, mode);
    expectReplica(before.s, 'read before reset');
    eq(before.m, want.before, 'sql_mode before reset (direct connection: same client flags)');
    await c.reset();
    const after = await one(c, mode);
    expectReplica(after.s, 'read after reset');
    eq(after.m, want.after, 'sql_mode read on a replica after reset (what a direct connection has ' +
      'after reset)');
    const onPrimary = await one(c, mode + ' FROM DUAL WHERE 1 FOR UPDATE');
    eq(onPrimary.m, want.after, 'sql_mode on the primary after reset');
  });
}

async function testResetKeepsId() {
  await withConn(await connect(), async (c) => {
    const thread = c.threadId;
    const id = await connectionId(c);
    await c.reset();
    eq(await connectionId(c), id, 'CONNECTION_ID() after reset (directly it stays the same)');
    eq(c.threadId, thread, 'thread id known to the client');
  });
}

async function testResetReadYourWrites() {
  await withConn(await connect(), async (c) => {
    await c.query('DROP TABLE IF EXISTS node_ryw');
    await c.query('CREATE TABLE node_ryw (id INT PRIMARY KEY, v INT)');
    await syncReplicas();
    // One read from a replica first, so the session has a replica connection to lose.
    expectReplica((await one(c, 'SELECT @@server_id AS s')).s, 'read before reset');
    await c.reset();
    await c.query('INSERT INTO node_ryw VALUES (1, 10)');
    const r = await one(c, 'SELECT @@server_id AS s, (SELECT v FROM node_ryw WHERE id = 1) AS v');
    eq(r.v, 10, 'the read right after the write (after reset) sees it');
    // Where it ran depends on the replicas' speed (the primary answers when the causal wait
    // times out); that Sluice waited is proven by the next test, with replication stopped.
    await syncReplicas();
    const r2 = await one(c, 'SELECT @@server_id AS s, COUNT(*) AS n FROM node_ryw');
    eq(r2.n, 1, 'a following autocommit read');
    expectReplica(r2.s, 'a following autocommit read');
  });
}

// The deterministic form: both replicas' SQL threads are stopped, so only the wait Sluice runs
// for read-your-writes (or the primary answering) can show the row.
async function testResetReadYourWritesStalled() {
  await withConn(await connect(), async (c) => {
    await c.query('DROP TABLE IF EXISTS node_ryw2');
    await c.query('CREATE TABLE node_ryw2 (id INT PRIMARY KEY, v INT)');
    await syncReplicas();
    expectReplica((await one(c, 'SELECT @@server_id AS s')).s, 'read before reset');
    await c.reset();
    topology('stop-sql', 'replica1');
    try {
      topology('stop-sql', 'replica2');
      try {
        for (let k = 1; k <= 3; k++) {
          await c.query('INSERT INTO node_ryw2 VALUES (?, ?)', [k, k * 10]);
          const r = await one(c, 'SELECT @@server_id AS s, (SELECT v FROM node_ryw2 WHERE id = ?) AS v', [k]);
          eq(r.v, k * 10, `write #${k} after reset, replicas stopped: the next read sees it ` +
            `(answered by server_id ${r.s})`);
        }
      } finally {
        topology('start-sql', 'replica2');
      }
    } finally {
      topology('start-sql', 'replica1');
    }
  });
}

async function testChangeUserDirect() {
  await withConn(await direct(), async (d) => {
    const id = await connectionId(d);
    await d.changeUser({ user: 'app2', password: 'app2', database: DB });
    eq((await one(d, 'SELECT CURRENT_USER() AS u')).u, 'app2@%', 'direct: user after changeUser');
    eq(await connectionId(d), id, 'direct: CONNECTION_ID() after changeUser to app2');
    await d.changeUser({ user: 'app', password: 'app', database: DB });
    eq(await connectionId(d), id, 'direct: CONNECTION_ID() after changeUser back');
  });
}

async function testChangeUser() {
  await withConn(await connect(), async (c) => {
    const thread = c.threadId;
    const id = await connectionId(c);
    await c.query('SET @node_cu = 1');
    await c.changeUser({ user: 'app2', password: 'app2', database: DB });
    const p = await one(c, 'SELECT CURRENT_USER() AS u, @node_cu AS v, @@server_id AS s');
    eq([p.u, p.v], ['app2@%', null], 'user and user variable after changeUser to app2');
    expectReplica(p.s, 'autocommit read as app2');
    expectPrimary((await one(c, 'SELECT @@server_id AS s FOR UPDATE')).s, 'locking read as app2');
    eq((await one(c, 'SELECT CURRENT_USER() AS u, @@server_id AS s FOR UPDATE')).u, 'app2@%',
      'the primary\'s session is app2\'s');
    // app2 has no privilege outside sluice_test: the backends say so.
    await expectError(c.query('SELECT COUNT(*) FROM mysql.user'), 1142, 'app2 reading mysql.user');
    await expectError(c.query('CREATE TABLE sbtest.node_denied (a INT)'), 1142, 'app2 creating a table in sbtest');
    eq(c.threadId, thread, 'thread id known to the client');
    const idApp2 = await connectionId(c);
    await c.changeUser({ user: 'app', password: 'app', database: DB });
    eq((await one(c, 'SELECT CURRENT_USER() AS u FROM DUAL WHERE 1 FOR UPDATE')).u, 'app@%',
      'user after changeUser back to app');
    const idBack = await connectionId(c);
    eq([idApp2, idBack], [id, id],
      'CONNECTION_ID() after changeUser to app2 and back (directly it stays the same)');
  });
}

// As after reset: COM_CHANGE_USER gives the session the global sql_mode (the IGNORE_SPACE that
// mysql2's CLIENT_IGNORE_SPACE put there at login is gone), on a direct connection.
async function testChangeUserSqlMode() {
  const mode = 'SELECT @@session.sql_mode AS m, @@server_id AS s';
  const want = await withConn(await direct(), async (d) => {
    await d.changeUser({ user: 'app2', password: 'app2', database: DB });
    return (await one(d, mode)).m;
  });
  await withConn(await connect(), async (c) => {
    await c.changeUser({ user: 'app2', password: 'app2', database: DB });
    const r = await one(c, mode);
    expectReplica(r.s, 'read after changeUser');
    eq(r.m, want, 'sql_mode read on a replica after changeUser (what a direct connection has)');
    eq((await one(c, mode + ' FROM DUAL WHERE 1 FOR UPDATE')).m, want, 'sql_mode on the primary after changeUser');
  });
}

async function testChangeUserWrongPassword() {
  // A refused changeUser gets the server's 1045; a fresh session still works.
  const c = await connect();
  c.on('error', () => {});
  try {
    await expectError(c.changeUser({ user: 'app2', password: 'wrong', database: DB }), 1045,
      'changeUser with a wrong password');
  } finally {
    c.destroy();
  }
  await withConn(await connect(), async (f) => {
    eq((await one(f, 'SELECT 7 AS x')).x, 7, 'fresh session after a refused changeUser');
  });
}

async function testPool() {
  const pool = mysqlPromise.createPool(Object.assign(options(PORT), { connectionLimit: 8, waitForConnections: true }));
  try {
    await pool.query('DROP TABLE IF EXISTS node_pool');
    await pool.query('CREATE TABLE node_pool (id INT AUTO_INCREMENT PRIMARY KEY, k INT, v VARCHAR(32))');
    const served = { primary: 0, replica: 0 };
    const note = (s) => {
      truth([PRIMARY_ID].concat(REPLICA_IDS).includes(s), `unknown @@server_id ${s}`);
      if (s === PRIMARY_ID) served.primary++; else served.replica++;
    };
    let inserts = 0;
    const tasks = [];
    for (let i = 0; i < 200; i++) {
      switch (i % 5) {
        case 0:
          inserts++;
          tasks.push(pool.execute('INSERT INTO node_pool (k, v) VALUES (?, ?)', [i, `v${i}`]).then(([r]) => {
            eq(r.affectedRows, 1, `pool #${i}: prepared INSERT`);
          }));
          break;
        case 1:
          tasks.push(pool.query('SELECT ? AS k, @@server_id AS s', [i]).then(([r]) => {
            eq(r[0].k, i, `pool #${i}: text SELECT`);
            note(r[0].s);
          }));
          break;
        case 2:
          tasks.push(pool.execute('SELECT ? + 1 AS k, @@server_id AS s', [i]).then(([r]) => {
            eq(Number(r[0].k), i + 1, `pool #${i}: prepared SELECT`);
            note(r[0].s);
          }));
          break;
        case 3:
          inserts++;
          tasks.push((async () => {
            const conn = await pool.getConnection();
            try {
              await conn.beginTransaction();
              await conn.query('INSERT INTO node_pool (k, v) VALUES (?, ?)', [i, `t${i}`]);
              const r = await one(conn, 'SELECT @@server_id AS s, COUNT(*) AS n FROM node_pool WHERE k = ?', [i]);
              expectPrimary(r.s, `pool #${i}: read inside a transaction`);
              eq(r.n, 1, `pool #${i}: own insert visible in the transaction`);
              await conn.commit();
            } finally {
              conn.release();
            }
          })());
          break;
        default:
          tasks.push(pool.query('SELECT COUNT(*) AS n, @@server_id AS s FROM node_pool WHERE k < 0').then(([r]) => {
            eq(r[0].n, 0, `pool #${i}: COUNT(*)`);
            note(r[0].s);
          }));
      }
    }
    const results = await Promise.allSettled(tasks);
    const failed = results.filter((r) => r.status === 'rejected');
    truth(failed.length === 0, `${failed.length} of 200 pool statements failed; first: ` +
      (failed.length ? `${failed[0].reason.code || ''} ${failed[0].reason.message}` : ''));
    const n = await one(pool, 'SELECT COUNT(*) AS n, COUNT(DISTINCT k) AS d FROM node_pool');
    eq([n.n, n.d], [inserts, inserts], 'rows inserted by the pool');
    if (!DIRECT) truth(served.replica > 0, `no pool read was served by a replica: ${show(served)}`);
  } finally {
    await pool.end();
  }
}

async function testLoadDataLocal() {
  await withConn(await direct(), async (d) => {
    eq((await one(d, 'SELECT @@local_infile AS l')).l, 1,
      'the primary must have local_infile=ON (topology.sh); it is OFF');
  });
  const count = 20000;
  const lines = [];
  for (let i = 1; i <= count; i++) lines.push(`${i},name-${i},${i % 7 === 0 ? '\\N' : i * 3}`);
  const data = Buffer.from(lines.join('\n') + '\n');
  const chunks = [];
  for (let off = 0; off < data.length; off += 7000) chunks.push(data.subarray(off, off + 7000));
  await withConn(await connect(), async (c) => {
    await c.query('DROP TABLE IF EXISTS node_load');
    await c.query('CREATE TABLE node_load (id INT PRIMARY KEY, name VARCHAR(32), x INT NULL)');
    const asked = [];
    const [r] = await c.query({
      sql: "LOAD DATA LOCAL INFILE 'node-load.csv' INTO TABLE node_load " +
        "FIELDS TERMINATED BY ',' LINES TERMINATED BY '\\n' (id, name, x)",
      infileStreamFactory: (path) => {
        asked.push(path);
        return Readable.from(chunks);
      },
    });
    eq(asked, ['node-load.csv'], 'file name the server asked for');
    eq([r.affectedRows, r.warningStatus], [count, 0], 'LOAD DATA LOCAL affected rows, warnings');
    const sumId = count * (count + 1) / 2;
    const got = await one(c, 'SELECT COUNT(*) AS n, SUM(id) AS s, COUNT(x) AS nx FROM node_load');
    eq([got.n, Number(got.s), got.nx], [count, sumId, count - Math.floor(count / 7)],
      'rows read through Sluice right after LOAD DATA');
    await withConn(await direct(), async (d) => {
      const p = await one(d, 'SELECT COUNT(*) AS n, SUM(id) AS s, MAX(name) AS m FROM node_load');
      eq([p.n, Number(p.s), p.m], [count, sumId, 'name-9999'], 'rows on the primary');
    });
    // An empty file loads nothing; a missing table is the server's error; the session goes on.
    const [e] = await c.query({
      sql: "LOAD DATA LOCAL INFILE 'empty.csv' INTO TABLE node_load FIELDS TERMINATED BY ','",
      infileStreamFactory: () => Readable.from([]),
    });
    eq(e.affectedRows, 0, 'LOAD DATA LOCAL of an empty file');
    await expectError(c.query({
      sql: "LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE node_load_missing",
      infileStreamFactory: () => Readable.from([Buffer.from('1\n')]),
    }), 1146, 'LOAD DATA LOCAL into a missing table');
    eq((await one(c, 'SELECT 5 AS x')).x, 5, 'the session goes on after LOAD DATA');
  });
}

async function testMultiStatement() {
  await withConn(await connect({ multipleStatements: true }), async (c) => {
    await c.query('DROP TABLE IF EXISTS node_multi; CREATE TABLE node_multi (a INT)');
    const [res] = await c.query('SELECT 1 AS a; SELECT @@server_id AS s; ' +
      'INSERT INTO node_multi VALUES (1), (2); SELECT COUNT(*) AS n FROM node_multi');
    truth(Array.isArray(res) && res.length === 4, `4 results expected, got ${show(res)}`);
    eq(res[0], [{ a: 1 }], 'first result set');
    expectPrimary(res[1][0].s, 'a multi-statement query');
    eq(res[2].affectedRows, 2, 'INSERT inside the multi-statement');
    eq(res[3], [{ n: 2 }], 'last result set');
    await expectError(c.query('SELECT 1; SELECT * FROM node_no_such_table; SELECT 3'), 1146,
      'an error in the middle of a multi-statement');
    eq((await one(c, 'SELECT 4 AS x')).x, 4, 'the session goes on after the failed multi-statement');
  });
}

async function testErrors() {
  await withConn(await connect(), async (c) => {
    const id = await connectionId(c);
    const e = await expectError(c.query('SELEC 1'), 1064, 'syntax error');
    eq([e.code, e.sqlState], ['ER_PARSE_ERROR', '42000'], 'syntax error code and SQLSTATE');
    eq((await one(c, 'SELECT 2 AS x')).x, 2, 'query after the syntax error');
    await expectError(c.prepare('SELEC ?'), 1064, 'prepare of a syntax error');
    await c.query('DROP TABLE IF EXISTS node_err');
    await c.query('CREATE TABLE node_err (id INT PRIMARY KEY)');
    await c.execute('INSERT INTO node_err VALUES (?)', [1]);
    await expectError(c.execute('INSERT INTO node_err VALUES (?)', [1]), 1062, 'duplicate key in execute');
    await expectError(c.query('SELECT * FROM node_no_such_table'), 1146, 'missing table');
    eq(Number((await c.execute('SELECT ? * 2 AS x', [21]))[0][0].x), 42, 'execute after the errors');
    eq(await connectionId(c), id, 'same primary session after the errors');
  });
}

// The backend threads on every server running a statement that contains `marker`.
async function threadsRunning(marker) {
  const found = [];
  const ports = Object.assign({ primary: PRIMARY_PORT }, REPLICA_PORTS);
  for (const name of Object.keys(ports)) {
    await withConn(await direct(ports[name]), async (d) => {
      const r = await rows(d, 'SELECT ID AS id FROM information_schema.PROCESSLIST ' +
        'WHERE INFO LIKE ? AND ID <> CONNECTION_ID()', [`%${marker}%`]);
      for (const row of r) found.push({ server: name, port: ports[name], id: row.id });
    });
  }
  return found;
}

// Whether thread `t` still runs the marked statement. Directly it ends with its client;
// through Sluice a pooled connection (issue #10) may instead finish the statement and go back
// to the pool, idle, for other sessions.
async function stillRunning(t, marker) {
  return withConn(await direct(t.port), async (d) =>
    (await one(d, 'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = ? ' +
      'AND INFO LIKE ?', [t.id, `%${marker}%`])).n > 0);
}

// Starts a large result, stops reading after 1000 rows, finds the backend thread serving it
// on the servers, ends the client connection (`how`), and checks that thread goes away.
async function destroyMidResult(sql, marker, how) {
  const c = mysql.createConnection(options(PORT));
  c.on('error', () => {});
  let threads = [];
  let rowsSeen = 0;
  await new Promise((resolve, reject) => {
    let stopped = false;
    const q = c.query(sql);
    q.on('error', (e) => { if (!stopped) reject(e); });
    q.on('end', () => { if (!stopped) reject(new Error(`the whole result arrived (${rowsSeen} rows)`)); });
    q.on('result', () => {
      rowsSeen++;
      if (rowsSeen !== 1000) return;
      stopped = true;
      c.pause();
      threadsRunning(marker).then((t) => {
        threads = t;
        if (how === 'socket') {
          c.stream.destroy();              // abrupt close: unread data makes it a reset
        } else {
          c.destroy();                     // mysql2: ends the socket for writing (FIN) ...
          c.resume();                      // ... and reads on, so the server can finish
        }
        resolve();
      }, reject);
    });
  });
  eq(threads.length, 1, `backend threads running the statement while the client holds it: ${show(threads)}`);
  const gone = await waitUntil(async () => !(await stillRunning(threads[0], marker)), 15000, 200);
  truth(gone, `backend thread ${threads[0].id} on ${threads[0].server} still runs the statement ` +
    `15 s after the client went away (${how})`);
  return threads[0];
}

async function testDestroyMidResult() {
  const tag = `${process.pid}-${Date.now()}`;
  const m1 = `node-destroy-r-${tag}`;
  const t1 = await destroyMidResult(`SELECT /* ${m1} */ seq, REPEAT('x', 200) AS pad FROM seq_1_to_200000`,
    m1, 'destroy');
  if (!DIRECT) truth(t1.server !== 'primary', `the autocommit read ran on ${t1.server}, not a replica`);
  const m2 = `node-destroy-p-${tag}`;
  const t2 = await destroyMidResult(`/* sluice: primary */ SELECT /* ${m2} */ seq, REPEAT('y', 200) AS pad ` +
    'FROM seq_1_to_5000000', m2, 'socket');
  if (!DIRECT) eq(t2.server, 'primary', 'server of the statement with the primary hint');
  // A fresh connection works, on both kinds of backend.
  await withConn(await connect(), async (c) => {
    const r = await one(c, 'SELECT 11 AS x, @@server_id AS s');
    eq(r.x, 11, 'fresh connection after destroy()');
    expectReplica(r.s, 'fresh connection read');
    const [w] = await c.execute('SELECT ? AS x, @@server_id AS s FROM DUAL WHERE 1 FOR UPDATE', ['p']);
    eq(w[0].x, 'p', 'fresh connection, statement on the primary');
  });
}

async function main() {
  const checks = new Checks();
  await checks.run('login: greeting, first query, ping', testLogin);
  await checks.run('text queries, affected rows, insert id, read on a replica', testQuery);
  await checks.run('prepared execute(): every type both ways, NULL, blobs, dates', testPrepared);
  await checks.run('reset on a direct connection (baseline)', testResetDirect);
  await checks.run('reset: user variables, session variables, temp tables, statements gone', testResetState);
  await checks.run('reset: sql_mode as on a direct connection, on replica and primary', testResetSqlMode);
  await checks.run('reset: CONNECTION_ID() unchanged', testResetKeepsId);
  await checks.run('reset: read-your-writes, then reads on a replica', testResetReadYourWrites);
  await checks.run('reset: read-your-writes with both replicas stopped', testResetReadYourWritesStalled);
  await checks.run('changeUser on a direct connection (baseline)', testChangeUserDirect);
  await checks.run('changeUser to app2 and back: user, privileges, CONNECTION_ID()', testChangeUser);
  await checks.run('changeUser: sql_mode as on a direct connection, on replica and primary', testChangeUserSqlMode);
  await checks.run('changeUser with a wrong password', testChangeUserWrongPassword);
  await checks.run('pool: 200 mixed statements', testPool);
  await checks.run('LOAD DATA LOCAL INFILE through infileStreamFactory', testLoadDataLocal);
  await checks.run('multi-statement query', testMultiStatement);
  await checks.run('errors, and the connection goes on', testErrors);
  await checks.run('destroy() mid-result: the statement ends, fresh connection works', testDestroyMidResult);
  checks.finish();
}

main().catch((e) => {
  console.error(`FAIL - unexpected: ${e && e.stack}`);
  process.exit(1);
});
