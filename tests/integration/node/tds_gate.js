// tds_gate.js: tedious and mssql (npm) against the TDS test server, for
// tests/integration/tds_gate.py.
//
// Usage: node tds_gate.js SPEC.json
// The spec (written by tds_gate.py) lists sessions (driver tedious or mssql; encrypt false, true
// or 'strict'; ports; the SQL and the parameter values of the session) and the extra checks
// (ATTENTION, RESETCONNECTION, multi-packet messages). One JSON line is printed per session and
// per extra with what the server answered; tds_gate.py judges them, so the comparison with the
// values it chose lives in one place. Exits 0 unless the script itself broke.
//
// tests/integration/tds_clients.py runs the same sessions through Sluice, with optional keys:
// tx_where (a query inside the committed transaction), settle_ms (a pause once the rows reached
// the secondary), and the extras 'many' (one prepared handle executed many times between
// writes), 'collide' (two handles with the same number on two backends) and 'readonly'
// (ApplicationIntent=ReadOnly). Every session's output has t0 and t1, the wall clock (whole ms;
// sessions are a few ms apart) around it, for the packet capture.
'use strict';

const fs = require('fs');
let tedious;
let mssql;
try {
    tedious = require('tedious');
    mssql = require('mssql');
} catch (e) {
    console.error(
        `FAIL - cannot load tedious/mssql (${e.message}): run \`npm ci\` in ${__dirname}`);
    process.exit(1);
}
const {Connection, Request, TYPES} = tedious;
// The wall clock, as the packet capture's timestamps are: performance.timeOrigin + now() is the
// monotonic clock from the process's start and ran 5-10 ms behind the capture in CI, putting
// connections into the next session's window. Date.now() has whole milliseconds, so sessions
// are kept SESSION_GAP_MS apart.
const now = () => Date.now();
const SESSION_GAP_MS = 5;

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const ca = spec.ca ? fs.readFileSync(spec.ca) : undefined;

function errorOf(e) {
    if (!e) return null;
    const inner = e.originalError || e;
    const number = inner.number !== undefined
                       ? inner.number
                       : (inner.info && inner.info.number !== undefined ? inner.info.number : null);
    return {
        code : number,
        name : inner.code || e.code || null,
        message : String(inner.message || e)
    };
}

// ---- tedious, callbacks wrapped in promises ----------------------------------------------------
function tediousConfig(port, encrypt, password, extra = {}) {
    const options = {
        ...extra,
        port,
        database : 'sluice',
        encrypt,
        connectTimeout : 5000,
        requestTimeout : 30000,
        rowCollectionOnRequestCompletion : true,
        appName : 'tds_gate.js',
    };
    if (process.env.TDS_GATE_DEBUG) options.debug = {packet : true, token : true};
    if (encrypt) {
        // The certificate is checked against the test CA and the name localhost (make-certs.sh).
        options.trustServerCertificate = false;
        options.cryptoCredentialsDetails = {ca};
        options.serverName = 'localhost';
    }
    return {
        server : '127.0.0.1',
        authentication : {type : 'default', options : {userName : 'app', password}},
        options,
    };
}

function connect(port, encrypt, password = 'app', extra = {}) {
    return new Promise((resolve, reject) => {
        const conn = new Connection(tediousConfig(port, encrypt, password, extra));
        conn.on('error', () => {}); // a closed socket after a test is not this script's failure
        if (process.env.TDS_GATE_DEBUG) conn.on('debug', (m) => console.error(m));
        // tedious's login error has no number; the server's ERROR token (18456) has.
        let serverError = null;
        conn.on('errorMessage', (token) => (serverError = token));
        conn.connect((err) => {
            if (!err) return resolve(conn);
            if (serverError) err.number = serverError.number;
            reject(err);
        });
    });
}

function values(rows) {
    return rows.map((r) =>
                        r.map((c) => (typeof c.value === 'bigint' ? c.value.toString() : c.value)));
}

function exec(conn, sql, params = []) {
    return new Promise((resolve, reject) => {
        const req = new Request(sql, (err, _count, rows) =>
                                         (err ? reject(err) : resolve(values(rows || []))));
        for (const [name, type, value] of params)
            req.addParameter(name, type, value);
        if (params.length)
            conn.execSql(req); // sp_executesql
        else
            conn.execSqlBatch(req); // SQLBatch
    });
}

function tx(conn, what) {
    return new Promise((resolve, reject) => conn[what]((err) => (err ? reject(err) : resolve())));
}

function close(conn) {
    return new Promise((resolve) => {
        conn.on('end', resolve);
        conn.close();
    });
}

// sp_prepare (ends with the 'prepared' event); then execute(args) (sp_execute on the handle) and
// unprepare() (sp_unprepare), each ending with the request's callback.
async function prepare(conn, sql, params) {
    let step;
    const next = () => new Promise((resolve, reject) => (step = {resolve, reject}));
    const req = new Request(sql, (err, _count, rows) =>
                                     (err ? step.reject(err) : step.resolve(values(rows || []))));
    for (const [name, type] of params)
        req.addParameter(name, type);
    req.on('prepared', () => step.resolve());
    let done = next();
    conn.prepare(req);
    await done;
    return {
        handle : req.handle,
        execute : (args) => {
            done = next();
            conn.execute(req, args);
            return done;
        },
        unprepare : () => {
            done = next();
            conn.unprepare(req);
            return done;
        },
    };
}

async function prepared(conn, sql, params) {
    // Twice on the one handle.
    const ps = await prepare(conn, sql, params);
    const args = {};
    for (const [name, , value] of params)
        args[name] = value;
    const results = [];
    for (let i = 0; i < 2; i++)
        results.push(await ps.execute(args));
    await ps.unprepare();
    return results;
}

async function waitReplicated(conn, table) {
    const deadline = Date.now() + 10000;
    for (;;) {
        let rows = [ [ 0 ] ];
        try {
            rows = await exec(conn, `SELECT count(*) FROM ${table} WHERE id = 11`);
        } catch (e) {
            // 208 until the CREATE TABLE has been replayed
        }
        if (Number(rows[0][0]) === 1 || Date.now() > deadline) return;
        await sleep(50);
    }
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

async function tediousSession(run) {
    const out = {label : run.label, t0 : now()};
    await tediousSteps(run, out);
    out.t1 = now();
    return out;
}

async function tediousSteps(run, out) {
    let conn;
    try {
        conn = await connect(run.port, run.encrypt);
    } catch (e) {
        out.connect_error = errorOf(e);
        return;
    }
    const params =
        [ [ 's', TYPES.NVarChar, run.param_s ], [ 'n', TYPES.BigInt, BigInt(run.param_n) ] ];
    try {
        await exec(conn, run.create);
        await exec(conn, run.insert);
        out.rows = await exec(conn, run.select);
        out.param_rows = await exec(conn, run.param_sql_at, params);
        [out.prepared_rows, out.prepared_rows2] = await prepared(conn, run.param_sql_at, params);
        await tx(conn, 'beginTransaction'); // transaction manager requests
        await exec(conn, run.tx_rollback);
        await tx(conn, 'rollbackTransaction');
        await tx(conn, 'beginTransaction');
        await exec(conn, run.tx_commit);
        if (run.tx_where) out.tx_where = await exec(conn, run.tx_where);
        await tx(conn, 'commitTransaction');
        out.tx = await exec(conn, run.tx_check);
        out.env = await exec(conn, run.env);
    } catch (e) {
        out.error = errorOf(e);
    }
    await close(conn);
    try {
        await close(await connect(run.port, run.encrypt, 'wrong'));
        out.bad_password_error = null;
    } catch (e) {
        out.bad_password_error = errorOf(e);
    }
    try {
        const s = await connect(run.secondary_port, run.encrypt);
        await waitReplicated(s, run.table);
        await sleep(run.settle_ms || 0);
        out.secondary_rows = await exec(s, run.select);
        out.secondary_env = await exec(s, run.env);
        try {
            await exec(s, run.secondary_write);
            out.secondary_write_error = null;
        } catch (e) {
            out.secondary_write_error = errorOf(e);
        }
        await close(s);
    } catch (e) {
        out.secondary_error = errorOf(e);
    }
}

// ---- mssql (a pool over tedious) ---------------------------------------------------------------
function mssqlConfig(port, encrypt, password) {
    const c = tediousConfig(port, encrypt, password);
    return {
        server : c.server,
        port,
        user : 'app',
        password,
        database : 'sluice',
        connectionTimeout : 5000,
        requestTimeout : 30000,
        pool : {max : 1, min : 0},
        options : c.options,
    };
}

async function mssqlConnect(port, encrypt, password = 'app') {
    const pool = new mssql.ConnectionPool(mssqlConfig(port, encrypt, password));
    pool.on('error', () => {});
    await pool.connect();
    return pool;
}

async function mq(target, sql, inputs = []) {
    const req = new mssql.Request(target);
    req.arrayRowMode = true;
    for (const [name, type, value] of inputs)
        req.input(name, type, value);
    const r = await req.query(sql);
    return (r.recordset || [])
        .map((row) => row.map((v) => (typeof v === 'bigint' ? v.toString() : v)));
}

async function mssqlSession(run) {
    const out = {label : run.label, t0 : now()};
    await mssqlSteps(run, out);
    out.t1 = now();
    return out;
}

async function mssqlSteps(run, out) {
    let pool;
    try {
        pool = await mssqlConnect(run.port, run.encrypt);
    } catch (e) {
        out.connect_error = errorOf(e);
        return;
    }
    const inputs =
        [ [ 's', mssql.NVarChar(200), run.param_s ], [ 'n', mssql.BigInt, BigInt(run.param_n) ] ];
    try {
        await mq(pool, run.create);
        await mq(pool, run.insert);
        out.rows = await mq(pool, run.select);
        out.param_rows = await mq(pool, run.param_sql_at, inputs);
        const ps = new mssql.PreparedStatement(pool);
        ps.arrayRowMode = true;
        for (const [name, type] of inputs)
            ps.input(name, type);
        await ps.prepare(run.param_sql_at);
        const r = await ps.execute({s : run.param_s, n : BigInt(run.param_n)});
        out.prepared_rows =
            r.recordset.map((row) => row.map((v) => (typeof v === 'bigint' ? v.toString() : v)));
        await ps.unprepare();
        let t = new mssql.Transaction(pool);
        await t.begin();
        await mq(t, run.tx_rollback);
        await t.rollback();
        t = new mssql.Transaction(pool);
        await t.begin();
        await mq(t, run.tx_commit);
        if (run.tx_where) out.tx_where = await mq(t, run.tx_where);
        await t.commit();
        out.tx = await mq(pool, run.tx_check);
        out.env = await mq(pool, run.env);
    } catch (e) {
        out.error = errorOf(e);
    }
    await pool.close();
    try {
        await (await mssqlConnect(run.port, run.encrypt, 'wrong')).close();
        out.bad_password_error = null;
    } catch (e) {
        out.bad_password_error = errorOf(e);
    }
    try {
        const s = await mssqlConnect(run.secondary_port, run.encrypt);
        const deadline = Date.now() + 10000;
        for (;;) {
            let rows = [ [ 0 ] ];
            try {
                rows = await mq(s, `SELECT count(*) FROM ${run.table} WHERE id = 11`);
            } catch (e) {
                // 208 until the CREATE TABLE has been replayed
            }
            if (Number(rows[0][0]) === 1 || Date.now() > deadline) break;
            await sleep(50);
        }
        await sleep(run.settle_ms || 0);
        out.secondary_rows = await mq(s, run.select);
        out.secondary_env = await mq(s, run.env);
        try {
            await mq(s, run.secondary_write);
            out.secondary_write_error = null;
        } catch (e) {
            out.secondary_write_error = errorOf(e);
        }
        await s.close();
    } catch (e) {
        out.secondary_error = errorOf(e);
    }
}

// ---- extras: ATTENTION, RESETCONNECTION, multi-packet messages ---------------------------------
async function cancelLongResult(ex) {
    // A result of ex.rows rows; cancel() (ATTENTION) after the first ex.cancel_after rows arrive.
    const out = {label : ex.label};
    const conn = await connect(ex.port, ex.encrypt);
    let seen = 0;
    const started = Date.now();
    out.error = await new Promise((resolve) => {
        const req = new Request(ex.long_sql, (err) => resolve(errorOf(err)));
        req.on('row', () => {
            seen += 1;
            if (seen === ex.cancel_after) conn.cancel();
        });
        conn.execSqlBatch(req);
    });
    out.rows_seen = seen;
    out.cancel_ms = Date.now() - started;
    out.after = await exec(conn, ex.after_sql);
    // WAITFOR DELAY cancelled while the server waits, before any row
    const t0 = Date.now();
    out.wait_error = await new Promise((resolve) => {
        const req = new Request(ex.wait_sql, (err) => resolve(errorOf(err)));
        conn.execSqlBatch(req);
        setTimeout(() => conn.cancel(), 300);
    });
    out.wait_ms = Date.now() - t0;
    out.after_wait = await exec(conn, ex.after_sql);
    await close(conn);
    return out;
}

async function resetConnection(ex) {
    // reset() sends the next request with RESETCONNECTION: the temp table goes, the session stays.
    const out = {label : ex.label};
    const conn = await connect(ex.port, ex.encrypt);
    await exec(conn, ex.temp_create);
    out.before = await exec(conn, ex.temp_select);
    await new Promise((resolve, reject) => conn.reset((err) => (err ? reject(err) : resolve())));
    try {
        out.after = await exec(conn, ex.temp_select);
    } catch (e) {
        out.after_error = errorOf(e);
    }
    out.still = await exec(conn, ex.after_sql);
    await close(conn);
    return out;
}

async function multiPacket(ex) {
    // A batch and an sp_executesql parameter far larger than the packet size; answers as large.
    const out = {label : ex.label};
    const conn = await connect(ex.port, ex.encrypt);
    await exec(conn, ex.create);
    await exec(conn, ex.insert_batch);
    await exec(conn, ex.insert_param, [ [ 'v', TYPES.NVarChar, ex.big_value ] ]);
    out.rows = await exec(conn, ex.select);
    await close(conn);
    return out;
}

async function manyExecutions(ex) {
    // One handle (a read, so Sluice prepares it where reads go) executed ex.n times; after each
    // execution a write batch and a plain read, which read-your-writes may send elsewhere.
    const out = {label : ex.label, runs : [], plain : []};
    const conn = await connect(ex.port, ex.encrypt);
    const ps = await prepare(conn, ex.sql, [ [ 'i', TYPES.Int ] ]);
    for (let i = 0; i < ex.n; i++) {
        out.runs.push(await ps.execute({i}));
        await exec(conn, ex.write.replace('{i}', String(i)));
        out.plain.push(await exec(conn, ex.plain));
    }
    await ps.unprepare();
    out.after = await exec(conn, ex.plain);
    await close(conn);
    return out;
}

async function collidingHandles(ex) {
    // Handles are numbered by each server: one prepared on a secondary and one on the primary
    // can carry the same number. The test servers number handles per server, so every
    // server's counter is first brought to the same value (directly, not through Sluice);
    // then through Sluice a read is prepared (on a secondary) and a write (on the primary).
    const out = {label : ex.label, direct_ports : []};
    try {
        await collide(ex, out);
    } catch (e) {
        out.failed = errorOf(e); // direct_ports still reach the capture's judge
    }
    return out;
}

async function collide(ex, out) {
    const direct = [];
    for (const port of ex.server_ports) {
        const d = await connect(port, false);
        direct.push(d);
        // The capture tells these connections from Sluice's own to the servers by their ports.
        out.direct_ports.push(d.socket ? d.socket.localPort : null);
    }
    await exec(direct[0], ex.setup);
    const now = [];
    for (const d of direct) {
        const ps = await prepare(d, 'SELECT 1', []);
        now.push(ps.handle);
    }
    const top = Math.max(...now);
    out.top = top; // the next handle of every server is top + 1
    for (let i = 0; i < direct.length; i++)
        for (let h = now[i]; h < top; h++)
            await prepare(direct[i], 'SELECT 1', []);
    for (const d of direct)
        await close(d);
    await sleep(ex.settle_ms);
    const conn = await connect(ex.port, ex.encrypt);
    const read = await prepare(conn, ex.read, []);
    const write = await prepare(conn, ex.write, []);
    out.handles = [ read.handle, write.handle ];
    try {
        out.read = await read.execute({});
    } catch (e) {
        out.read_error = errorOf(e);
    }
    try {
        out.write = await write.execute({});
    } catch (e) {
        out.write_error = errorOf(e);
    }
    await close(conn);
}

async function readOnlyIntent(ex) {
    // ApplicationIntent=ReadOnly: the whole session on secondaries; a write there fails (3906).
    const out = {label : ex.label};
    const conn = await connect(ex.port, ex.encrypt, 'app', {readOnlyIntent : true});
    out.where = await exec(conn, ex.where);
    try {
        await exec(conn, ex.write);
        out.write_error = null;
    } catch (e) {
        out.write_error = errorOf(e);
    }
    out.after = await exec(conn, ex.where);
    await close(conn);
    return out;
}

// One JSON line, written before the next step: process.exit() would cut a pipe's pending output.
function print(obj) {
    return new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + '\n', resolve));
}

async function main() {
    for (const run of spec.runs) {
        const r = run.driver === 'mssql' ? await mssqlSession(run) : await tediousSession(run);
        await print(r);
        await sleep(SESSION_GAP_MS);
    }
    for (const ex of spec.extras || []) {
        let r;
        try {
            if (ex.kind === 'cancel')
                r = await cancelLongResult(ex);
            else if (ex.kind === 'reset')
                r = await resetConnection(ex);
            else if (ex.kind === 'many')
                r = await manyExecutions(ex);
            else if (ex.kind === 'collide')
                r = await collidingHandles(ex);
            else if (ex.kind === 'readonly')
                r = await readOnlyIntent(ex);
            else
                r = await multiPacket(ex);
        } catch (e) {
            r = {label : ex.label, failed : errorOf(e)};
        }
        await print(r);
    }
}

main().then(() => process.exit(0), (e) => {
    console.error(`FAIL - ${e.stack || e}`);
    process.exit(1);
});
