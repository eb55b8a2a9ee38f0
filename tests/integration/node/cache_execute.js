// cache_execute: prepared statements through Sluice's result cache (issue #9), with mysql2's
// execute() (COM_STMT_PREPARE, then COM_STMT_EXECUTE with bound parameters). Run by
// tests/integration/cache.py against its own daemon (SLUICE_CACHE_PORT); it prints one JSON
// line with the rows each execution returned, and cache.py checks them against the servers'
// own SELECT counters. Parameters of several types, each value executed three times.
'use strict';

const mysql = require('mysql2/promise');

async function main() {
  const port = Number(process.env.SLUICE_CACHE_PORT);
  const conn = await mysql.createConnection({
    host: '127.0.0.1', port, user: 'app', password: 'app', database: 'sluice_test',
  });
  const out = {};
  try {
    const sql = '/* sluice: cache ttl=60s */ SELECT id, v FROM cache_t WHERE id = ?';
    for (const value of [1, 2, '1', 1.0]) {
      const key = `${typeof value}:${value}`;
      out[key] = [];
      for (let i = 0; i < 3; ++i) {
        const [rows] = await conn.execute(sql, [value]);
        out[key].push(rows.map((r) => [r.id, r.v]));
      }
    }
  } finally {
    await conn.end();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(`cache_execute: ${e.stack || e}\n`);
  process.exit(1);
});
