<?php
// php_client: PHP's pdo_mysql and mysqli (Debian's php-cli and php-mysql, both on mysqlnd)
// through Sluice (issue #7, sections 1 and 3).
//
// pdo_mysql with server-side prepares (PDO::ATTR_EMULATE_PREPARES = false: real COM_STMT_*,
// counted on the servers), a transaction, errors, lastInsertId. mysqli: bind_param /
// send_long_data / get_result, a read-only cursor (COM_STMT_FETCH) and a cursor whose execution
// fails, change_user to app2 and back (CONNECTION_ID() kept, as on a direct connection), a
// persistent connection reused (mysqlnd sends COM_CHANGE_USER), LOAD DATA LOCAL INFILE with
// MYSQLI_OPT_LOCAL_INFILE (and refused without it), stat() (COM_STATISTICS), kill()
// (COM_PROCESS_KILL) of Sluice's own connection id, multi_query (COM_SET_OPTION + several
// result sets).
//
// mysqlnd (PHP 8.2) asks for neither CLIENT_SESSION_TRACK nor CLIENT_DEPRECATE_EOF, and has
// no call that sends COM_RESET_CONNECTION; its persistent-connection cleanup is
// COM_CHANGE_USER. So Sluice rewrites the primary's OK packets for it (no session-track data).
//
// Where a statement ran is proven by the servers (@@server_id: primary 1, replicas 2 and 3;
// their Com_stmt_* counters and processlists), never by Sluice's metrics. Environment as for
// the Python tests (CTest, or `eval "$(tests/fixtures/stack.sh env NN)"`); run with `php`.
// SLUICE_IT_DIRECT=1 runs it against the primary directly (SLUICE_PORT = the primary's port)
// to validate the test itself; Sluice-only expectations are then relaxed.

declare(strict_types=1);

if (!extension_loaded('mysqli') || !extension_loaded('pdo_mysql')) {
    fwrite(STDERR, "FAIL - php needs the mysqli and pdo_mysql extensions (Debian's php-mysql)\n");
    exit(1);
}

function env_str(string $name): string
{
    $v = getenv($name);
    if ($v === false || $v === '') {
        fwrite(STDERR, "FAIL - environment variable $name is not set (run through ctest)\n");
        exit(1);
    }
    return $v;
}

define('HOST', getenv('SLUICE_HOST') ?: '127.0.0.1');
define('PORT', (int) env_str('SLUICE_PORT'));
define('PRIMARY_PORT', (int) env_str('SLUICE_PRIMARY_PORT'));
define('REPLICA_PORTS', [
    'replica1' => (int) env_str('SLUICE_REPLICA1_PORT'),
    'replica2' => (int) env_str('SLUICE_REPLICA2_PORT'),
]);
define('SERVER_PORTS', ['primary' => PRIMARY_PORT] + REPLICA_PORTS);
define('DB', 'sluice_test');
define('DIRECT', getenv('SLUICE_IT_DIRECT') === '1');
define('PRIMARY_ID', 1);
define('REPLICA_IDS', [2, 3]);

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);

// mysqlnd honours MYSQLI_OPT_LOCAL_INFILE only when the php.ini switch
// mysqli.allow_local_infile (PHP_INI_SYSTEM, Off in Debian's php.ini) is on: run again with it.
if (ini_get('mysqli.allow_local_infile') !== '1') {
    if (getenv('SLUICE_PHP_REEXEC') === '1') {
        fwrite(STDERR, "FAIL - mysqli.allow_local_infile is still off after -d mysqli.allow_local_infile=1\n");
        exit(1);
    }
    putenv('SLUICE_PHP_REEXEC=1');
    $child = proc_open([PHP_BINARY, '-d', 'mysqli.allow_local_infile=1', __FILE__], [STDIN, STDOUT, STDERR], $pipes);
    exit($child === false ? 1 : proc_close($child));
}

// ------------------------------------------------------------------------------ checks ----

final class Checks
{
    private array $failures = [];
    private int $count = 0;
    private ?string $log;
    private int $logStart;

    public function __construct()
    {
        $log = getenv('SLUICE_LOG');
        $this->log = $log === false ? null : $log;
        $this->logStart = $this->logSize();
    }

    private function logSize(): int
    {
        if ($this->log === null) {
            return 0;
        }
        clearstatcache();
        $size = @filesize($this->log);
        return $size === false ? 0 : $size;
    }

    public function run(string $name, callable $fn): bool
    {
        $this->count++;
        $t0 = microtime(true);
        try {
            $fn();
        } catch (Throwable $e) {
            $this->failures[] = $name;
            fwrite(STDERR, sprintf("FAIL - %s: %s: %s (code %s)\n  at %s:%d\n", $name, get_class($e),
                $e->getMessage(), (string) $e->getCode(), basename($e->getFile()), $e->getLine()));
            foreach (array_slice($e->getTrace(), 0, 3) as $f) {
                if (isset($f['line'])) {
                    fwrite(STDERR, sprintf("  from %s:%d %s()\n", basename($f['file'] ?? '?'), $f['line'],
                        $f['function']));
                }
            }
            return false;
        }
        printf("ok   - %s (%.2fs)\n", $name, microtime(true) - $t0);
        return true;
    }

    public function finish(): void
    {
        if ($this->failures) {
            fwrite(STDERR, sprintf("\n%d of %d checks failed: %s\n", count($this->failures), $this->count,
                implode(', ', $this->failures)));
            $text = '';
            if ($this->log !== null && ($f = @fopen($this->log, 'rb')) !== false) {
                fseek($f, $this->logStart);
                $text = (string) stream_get_contents($f);
                fclose($f);
            }
            fwrite(STDERR, "sluice log during this test (last 60 lines):\n");
            $lines = array_filter(explode("\n", $text), fn ($l) => $l !== '');
            foreach (array_slice($lines, -60) as $line) {
                fwrite(STDERR, "  $line\n");
            }
            exit(1);
        }
        printf("all %d checks passed\n", $this->count);
        exit(0);
    }
}

function show($v): string
{
    $s = var_export($v, true);
    $s = preg_replace('/\s+/', ' ', $s);
    return strlen($s) > 300 ? substr($s, 0, 300) . '...' : $s;
}

function eq($actual, $expected, string $what): void
{
    if ($actual !== $expected) {
        throw new RuntimeException("$what: expected " . show($expected) . ', got ' . show($actual));
    }
}

function truth(bool $cond, string $what): void
{
    if (!$cond) {
        throw new RuntimeException($what);
    }
}

function expect_replica($serverId, string $what): void
{
    if (DIRECT) {
        truth(in_array($serverId, array_merge([PRIMARY_ID], REPLICA_IDS), true), "$what: @@server_id " . show($serverId));
        return;
    }
    truth(in_array($serverId, REPLICA_IDS, true),
        "$what: expected a replica's @@server_id (2, 3), got " . show($serverId));
}

function expect_primary($serverId, string $what): void
{
    eq($serverId, PRIMARY_ID, "$what: @@server_id (the primary is 1)");
}

// Runs $fn, which must throw a mysqli_sql_exception with error $code; returns it.
function expect_mysqli_error(callable $fn, int $code, string $what): mysqli_sql_exception
{
    try {
        $r = $fn();
    } catch (mysqli_sql_exception $e) {
        eq($e->getCode(), $code, "$what: error code (message " . show($e->getMessage()) . ')');
        return $e;
    }
    throw new RuntimeException("$what: expected error $code, got " . show($r));
}

function expect_pdo_error(callable $fn, int $code, string $what): PDOException
{
    try {
        $r = $fn();
    } catch (PDOException $e) {
        $info = $e->errorInfo ?? [];
        eq($info[1] ?? null, $code, "$what: driver error code (message " . show($e->getMessage()) . ')');
        return $e;
    }
    throw new RuntimeException("$what: expected error $code, got " . show($r));
}

function wait_until(callable $cond, float $timeout, float $step = 0.1): bool
{
    $deadline = microtime(true) + $timeout;
    while (true) {
        if ($cond()) {
            return true;
        }
        if (microtime(true) >= $deadline) {
            return false;
        }
        usleep((int) ($step * 1e6));
    }
}

// -------------------------------------------------------------------------- connections ----

function my(int $port = PORT, string $user = 'app', string $password = 'app', array $opts = [],
            string $host = HOST): mysqli
{
    $m = mysqli_init();
    $m->options(MYSQLI_OPT_CONNECT_TIMEOUT, 5);
    $m->options(MYSQLI_OPT_READ_TIMEOUT, 60);
    foreach ($opts as $k => $v) {
        $m->options($k, $v);
    }
    $m->real_connect($host, $user, $password, DB, $port);
    $m->set_charset('utf8mb4');
    return $m;
}

function direct(string $user = 'app', string $password = 'app', array $opts = []): mysqli
{
    return my(PRIMARY_PORT, $user, $password, $opts);
}

function pdo(int $port = PORT, array $extra = []): PDO
{
    return new PDO(sprintf('mysql:host=%s;port=%d;dbname=%s;charset=utf8mb4', HOST, $port, DB), 'app', 'app',
        $extra + [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_EMULATE_PREPARES => false,
            PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
            PDO::ATTR_TIMEOUT => 5,
        ]);
}

// First row of a query as an associative array.
function row(mysqli $m, string $sql): array
{
    $r = $m->query($sql);
    truth($r instanceof mysqli_result, "$sql: expected a result set");
    $row = $r->fetch_assoc();
    $r->free();
    truth(is_array($row), "$sql: expected a row");
    return $row;
}

function connection_id(mysqli $m): int
{
    return (int) row($m, 'SELECT CONNECTION_ID() AS id')['id'];
}

// The primary's thread serving this session, found in the primary's own processlist (the
// statement looks for itself; inside a transaction it runs on the primary). Not CONNECTION_ID(),
// which through Sluice is Sluice's id.
function primary_thread(mysqli $m): int
{
    $mark = 'sluice-self-' . bin2hex(random_bytes(6));
    $m->begin_transaction();
    try {
        $r = row($m, "SELECT ID AS id, @@server_id AS s FROM information_schema.PROCESSLIST WHERE INFO LIKE '%$mark%'");
    } finally {
        $m->commit();
    }
    expect_primary((int) $r['s'], 'processlist read inside a transaction');
    return (int) $r['id'];
}

// A global status counter read directly from one server.
function server_status(int $port, string $name): int
{
    $d = my($port);
    try {
        $r = $d->query("SHOW GLOBAL STATUS LIKE '" . $d->real_escape_string($name) . "'")->fetch_row();
        return (int) $r[1];
    } finally {
        $d->close();
    }
}

// [server name => [counter => value]] for every server.
function counters(array $names): array
{
    $out = [];
    foreach (SERVER_PORTS as $server => $port) {
        foreach ($names as $n) {
            $out[$server][$n] = server_status($port, $n);
        }
    }
    return $out;
}

function counter_delta(array $before, array $after, string $name): array
{
    $d = [];
    foreach ($after as $server => $vals) {
        $d[$server] = $vals[$name] - $before[$server][$name];
    }
    return $d;
}

// True while the thread `id` exists on the server at `port`.
function thread_alive(int $port, int $id): bool
{
    $d = my($port);
    try {
        return (int) $d->query("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = $id")
            ->fetch_row()[0] > 0;
    } finally {
        $d->close();
    }
}

// Every replica has applied the primary's current binlog position.
function sync_replicas(): void
{
    $p = direct();
    $pos = row($p, 'SELECT @@gtid_binlog_pos AS pos')['pos'];
    $p->close();
    foreach (REPLICA_PORTS as $name => $port) {
        $r = my($port);
        $w = row($r, "SELECT MASTER_GTID_WAIT('" . $r->real_escape_string($pos) . "', 30) AS w")['w'];
        $r->close();
        eq((int) $w, 0, "$name reached the primary's position $pos within 30 s");
    }
}

// ------------------------------------------------------------------------ pdo_mysql tests ----

function test_pdo_connect(): void
{
    $p = pdo();
    eq((bool) $p->getAttribute(PDO::ATTR_EMULATE_PREPARES), false, 'emulated prepares are off');
    $r = $p->query("SELECT 1 + 1 AS two, 'abc' AS s, NULL AS n, CURRENT_USER() AS u, @@server_id AS sid")->fetch();
    eq([$r['two'], $r['s'], $r['n'], $r['u']], [2, 'abc', null, 'app@%'], 'first SELECT');
    expect_replica($r['sid'], 'autocommit read through PDO');
    $v = $p->getAttribute(PDO::ATTR_SERVER_VERSION);
    $d = pdo(PRIMARY_PORT);
    eq($v, $d->getAttribute(PDO::ATTR_SERVER_VERSION), 'server version (as a direct connection sees it)');
}

function test_pdo_prepared(): void
{
    $p = pdo();
    $p->exec('DROP TABLE IF EXISTS php_pdo');
    $p->exec('CREATE TABLE php_pdo (id INT PRIMARY KEY, i BIGINT, f DOUBLE, s VARCHAR(100), b MEDIUMBLOB, ' .
        'd DATETIME(6), n INT NULL)');
    $allBytes = '';
    for ($i = 0; $i < 256; $i++) {
        $allBytes .= chr($i);
    }
    $rows = [
        [1, PHP_INT_MAX, 1.5, "O'Brien \"q\" \\ \u{1F600}", $allBytes, '2024-02-29 12:34:56.123456', null],
        [2, PHP_INT_MIN, -0.25, '', '', '1000-01-01 00:00:00.000000', 7],
        [3, 0, 1e300, 'plain', str_repeat("\0\xff", 40000), '9999-12-31 23:59:59.999999', null],
    ];
    $names = ['Com_stmt_prepare', 'Com_stmt_execute'];
    $before = counters($names);
    $ins = $p->prepare('INSERT INTO php_pdo VALUES (?, ?, ?, ?, ?, ?, ?)');
    foreach ($rows as $v) {
        $ins->bindValue(1, $v[0], PDO::PARAM_INT);
        $ins->bindValue(2, $v[1], PDO::PARAM_INT);
        $ins->bindValue(3, (string) $v[2], PDO::PARAM_STR);
        $ins->bindValue(4, $v[3], PDO::PARAM_STR);
        $ins->bindValue(5, $v[4], PDO::PARAM_LOB);
        $ins->bindValue(6, $v[5], PDO::PARAM_STR);
        $ins->bindValue(7, $v[6], $v[6] === null ? PDO::PARAM_NULL : PDO::PARAM_INT);
        $ins->execute();
        eq($ins->rowCount(), 1, "prepared INSERT of row {$v[0]}");
    }
    $sel = $p->prepare('SELECT id, i, f, s, b, d, n, @@server_id AS sid FROM php_pdo WHERE id >= ? ORDER BY id');
    $sel->execute([1]);
    $got = $sel->fetchAll();
    eq(count($got), 3, 'rows read back by a prepared SELECT');
    foreach ($rows as $k => $v) {
        $g = $got[$k];
        eq([$g['id'], $g['i'], $g['f'], $g['s'], $g['b'], $g['d'], $g['n']], $v,
            "row {$v[0]} read back through the binary protocol (native types)");
    }
    expect_replica($got[0]['sid'], 'prepared autocommit read');
    $after = counters($names);
    $exec = counter_delta($before, $after, 'Com_stmt_execute');
    $prep = counter_delta($before, $after, 'Com_stmt_prepare');
    truth($exec['primary'] >= 3, 'the primary ran the 3 prepared INSERTs as COM_STMT_EXECUTE: ' . show($exec));
    truth(array_sum($exec) >= 4, 'the servers counted 4 COM_STMT_EXECUTE: ' . show($exec));
    truth(array_sum($prep) >= 2, 'the servers counted 2 COM_STMT_PREPARE: ' . show($prep));
    if (!DIRECT) {
        truth($exec['replica1'] + $exec['replica2'] >= 1, 'the prepared SELECT ran on a replica: ' . show($exec));
    }
}

function test_pdo_transaction(): void
{
    $p = pdo();
    $p->exec('DROP TABLE IF EXISTS php_pdo_tx');
    $p->exec('CREATE TABLE php_pdo_tx (id INT PRIMARY KEY, v VARCHAR(10))');
    truth($p->beginTransaction(), 'beginTransaction');
    truth($p->inTransaction(), 'inTransaction after begin');
    $p->prepare('INSERT INTO php_pdo_tx VALUES (?, ?)')->execute([1, 'rolled']);
    $r = $p->query('SELECT @@server_id AS s, COUNT(*) AS n FROM php_pdo_tx')->fetch();
    expect_primary($r['s'], 'read inside a transaction');
    eq($r['n'], 1, 'own insert visible inside the transaction');
    truth($p->rollBack(), 'rollBack');
    eq($p->query('SELECT COUNT(*) AS n FROM php_pdo_tx')->fetch()['n'], 0, 'rows after rollback');
    $p->beginTransaction();
    $st = $p->prepare('INSERT INTO php_pdo_tx VALUES (?, ?)');
    $st->execute([2, 'kept']);
    $st->execute([3, 'kept']);
    truth($p->commit(), 'commit');
    truth(!$p->inTransaction(), 'not in a transaction after commit');
    $r = $p->query('SELECT @@server_id AS s, COUNT(*) AS n FROM php_pdo_tx')->fetch();
    eq($r['n'], 2, 'the read after commit sees both rows');
    expect_replica($r['s'], 'the read after commit');
    $d = pdo(PRIMARY_PORT);
    eq($d->query('SELECT COUNT(*) AS n FROM php_pdo_tx')->fetch()['n'], 2, 'rows on the primary');
}

function test_pdo_errors(): void
{
    $p = pdo();
    $id = (int) $p->query('SELECT CONNECTION_ID() AS c')->fetch()['c'];
    $e = expect_pdo_error(fn () => $p->exec('SELEC 1'), 1064, 'syntax error');
    eq($e->errorInfo[0], '42000', 'syntax error SQLSTATE');
    eq($p->query('SELECT 2 AS x')->fetch()['x'], 2, 'query after the syntax error');
    expect_pdo_error(fn () => $p->prepare('SELEC ?'), 1064, 'server-side prepare of a syntax error');
    $p->exec('DROP TABLE IF EXISTS php_pdo_err');
    $p->exec('CREATE TABLE php_pdo_err (id INT PRIMARY KEY)');
    $st = $p->prepare('INSERT INTO php_pdo_err VALUES (?)');
    $st->execute([1]);
    $e = expect_pdo_error(fn () => $st->execute([1]), 1062, 'duplicate key in a prepared INSERT');
    eq($e->errorInfo[0], '23000', 'duplicate key SQLSTATE');
    $st->execute([2]);
    expect_pdo_error(fn () => $p->query('SELECT * FROM php_no_such_table'), 1146, 'missing table');
    $q = $p->prepare('SELECT ? * 2 AS x');
    $q->execute([21]);
    eq((int) $q->fetch()['x'], 42, 'prepared statement after the errors');
    eq((int) $p->query('SELECT CONNECTION_ID() AS c')->fetch()['c'], $id, 'same primary session after the errors');
}

function test_pdo_last_insert_id(): void
{
    $p = pdo();
    $p->exec('DROP TABLE IF EXISTS php_pdo_ai');
    $p->exec('CREATE TABLE php_pdo_ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT) AUTO_INCREMENT = 100');
    $p->exec('INSERT INTO php_pdo_ai (v) VALUES (1)');
    eq($p->lastInsertId(), '100', 'lastInsertId after exec');
    $st = $p->prepare('INSERT INTO php_pdo_ai (v) VALUES (?), (?), (?)');
    $st->execute([2, 3, 4]);
    eq($p->lastInsertId(), '101', 'lastInsertId after a prepared 3-row INSERT (its first id)');
    eq((int) $p->query('SELECT LAST_INSERT_ID() AS l')->fetch()['l'], 101, 'LAST_INSERT_ID() on the server');
    $p->exec('UPDATE php_pdo_ai SET v = v + 1 WHERE id = 100');
    eq($p->lastInsertId(), '0', 'lastInsertId after an UPDATE (the OK packet says 0)');
    $p->exec("INSERT INTO php_pdo_ai (id, v) VALUES (500, 5)");
    eq($p->lastInsertId(), '500', 'lastInsertId after an explicit id');
}

// --------------------------------------------------------------------------- mysqli tests ----

function test_mysqli_prepared(): void
{
    $m = my();
    $m->query('DROP TABLE IF EXISTS php_my_ps');
    $m->query('CREATE TABLE php_my_ps (id INT PRIMARY KEY, f DOUBLE, s VARCHAR(100), b LONGBLOB, n INT NULL)');
    $names = ['Com_stmt_execute', 'Com_stmt_send_long_data'];
    $before = counters($names);
    $st = $m->prepare('INSERT INTO php_my_ps VALUES (?, ?, ?, ?, ?)');
    $id = 0;
    $f = 0.0;
    $s = '';
    $b = null;
    $n = null;
    $st->bind_param('idsbi', $id, $f, $s, $b, $n);
    $blobs = [];
    for ($k = 1; $k <= 3; $k++) {
        $id = $k;
        $f = $k / 4;
        $s = str_repeat("\u{e9}'\"", $k);
        $n = $k === 2 ? null : $k * 10;
        $blob = '';
        for ($i = 0; $i < 300000 * $k; $i++) {
            $blob .= chr(($i * 7 + $k) & 0xff);
        }
        $blobs[$k] = $blob;
        foreach (str_split($blob, 65536) as $chunk) {
            $st->send_long_data(3, $chunk);
        }
        $st->execute();
        eq($st->affected_rows, 1, "prepared INSERT of row $k");
    }
    $st->close();
    $after = counters($names);
    $ld = counter_delta($before, $after, 'Com_stmt_send_long_data');
    truth($ld['primary'] >= 3, 'the primary received COM_STMT_SEND_LONG_DATA: ' . show($ld));

    $q = $m->prepare('SELECT id, f, s, b, n, @@server_id AS sid FROM php_my_ps WHERE id >= ? AND s <> ? ORDER BY id');
    $min = 1;
    $not = 'x';
    $q->bind_param('is', $min, $not);
    $q->execute();
    $got = $q->get_result()->fetch_all(MYSQLI_ASSOC);
    eq(count($got), 3, 'rows read back');
    foreach ($got as $k => $g) {
        $i = $k + 1;
        eq([$g['id'], $g['f'], $g['s'], $g['b'] === $blobs[$i], $g['n']],
            [$i, $i / 4, str_repeat("\u{e9}'\"", $i), true, $i === 2 ? null : $i * 10], "row $i read back");
        expect_replica($g['sid'], "prepared read, row $i");
    }
    $min = 3;                                  // the same statement with new bound values
    $q->execute();
    eq(array_column($q->get_result()->fetch_all(MYSQLI_ASSOC), 'id'), [3], 'the statement re-executed');
    $q->close();
}

function test_mysqli_cursor(): void
{
    $m = my();
    $before = counters(['Com_stmt_fetch']);
    $st = $m->prepare('SELECT seq, @@server_id FROM seq_1_to_5000 WHERE seq <= ?');
    $st->attr_set(MYSQLI_STMT_ATTR_CURSOR_TYPE, MYSQLI_CURSOR_TYPE_READ_ONLY);
    $limit = 3000;
    $st->bind_param('i', $limit);
    foreach ([3000, 1200] as $round => $lim) {
        $limit = $lim;
        $st->execute();
        $seq = 0;
        $sid = 0;
        $st->bind_result($seq, $sid);
        $n = 0;
        $servers = [];
        while ($st->fetch()) {
            $n++;
            eq($seq, $n, "cursor row $n (execution " . ($round + 1) . ')');
            $servers[$sid] = true;
        }
        eq($n, $lim, 'rows fetched through the cursor');
        eq(count($servers), 1, 'one server answered the cursor');
        expect_replica(array_key_first($servers), 'cursor on an autocommit read');
        $st->free_result();
    }
    $st->close();
    $fetch = counter_delta($before, counters(['Com_stmt_fetch']), 'Com_stmt_fetch');
    truth(array_sum($fetch) >= 2, 'the servers counted COM_STMT_FETCH: ' . show($fetch));
    if (!DIRECT) {
        truth($fetch['replica1'] + $fetch['replica2'] >= 2, 'the fetches ran on a replica: ' . show($fetch));
    }
    // A cursor inside a transaction runs on the primary.
    $m->begin_transaction();
    $st = $m->prepare('SELECT seq, @@server_id FROM seq_1_to_10');
    $st->attr_set(MYSQLI_STMT_ATTR_CURSOR_TYPE, MYSQLI_CURSOR_TYPE_READ_ONLY);
    $st->execute();
    $seq = 0;
    $sid = 0;
    $st->bind_result($seq, $sid);
    $n = 0;
    while ($st->fetch()) {
        $n++;
        expect_primary($sid, 'cursor inside a transaction');
    }
    eq($n, 10, 'rows of the cursor inside a transaction');
    $st->close();
    $m->commit();
}

// Issue #7, section 3: a cursor whose execution fails on the server (NTILE(-1): 4024). Directly,
// the server answers the execute with a column count, the column definitions and then ERR 4024
// (no EOF); mysqlnd waits for the EOF until its read timeout (3 s here), then execute() returns
// true and the session goes on once the statement is closed (a fetch() would hang or crash PHP:
// mysqlnd's own bug, directly too, so none is sent). Through Sluice the same is expected, or the
// server's 4024 reaching the client; never a lost session.
function cursor_failure(mysqli $m, string $what): void
{
    $st = $m->prepare('SELECT NTILE(-1) OVER (ORDER BY a) FROM php_ntile');
    $st->attr_set(MYSQLI_STMT_ATTR_CURSOR_TYPE, MYSQLI_CURSOR_TYPE_READ_ONLY);
    try {
        $r = $st->execute();
    } catch (mysqli_sql_exception $e) {
        $r = $e->getCode() . ' ' . $e->getMessage();
        truth($e->getCode() === 4024, "$what: executing a failing cursor: expected true (as directly) or the " .
            "server's error 4024, got $r");
    }
    truth($r === true || is_string($r), "$what: execute() of a failing cursor returned " . show($r));
    $st->close();
    eq((int) row($m, 'SELECT 5 AS x')['x'], 5, "$what: the session goes on");
    $st = $m->prepare('SELECT a FROM php_ntile ORDER BY a');
    $st->attr_set(MYSQLI_STMT_ATTR_CURSOR_TYPE, MYSQLI_CURSOR_TYPE_READ_ONLY);
    $st->execute();
    $a = 0;
    $st->bind_result($a);
    $seen = [];
    while ($st->fetch()) {
        $seen[] = $a;
    }
    eq($seen, [1, 2, 3], "$what: a cursor after the failed one");
    $st->close();
}

function test_mysqli_cursor_failure(): void
{
    $short = [MYSQLI_OPT_READ_TIMEOUT => 3];
    $d = direct('app', 'app', $short);
    $d->query('DROP TABLE IF EXISTS php_ntile');
    $d->query('CREATE TABLE php_ntile (a INT)');
    $d->query('INSERT INTO php_ntile VALUES (1), (2), (3)');
    sync_replicas();
    cursor_failure($d, 'direct');
    $d->close();
    $m = my(PORT, 'app', 'app', $short);
    cursor_failure($m, 'through sluice');
    $m->close();
    $m = my(PORT, 'app', 'app', $short);
    $m->begin_transaction();                   // the same on the primary
    cursor_failure($m, 'through sluice, in a transaction');
    $m->commit();
}

function change_user_ids(mysqli $m, string $what): array
{
    $ids = [connection_id($m)];
    $m->query('SET @php_cu = 1');
    truth($m->change_user('app2', 'app2', DB), "$what: change_user to app2");
    $r = row($m, 'SELECT CURRENT_USER() AS u, @php_cu AS v');
    eq([$r['u'], $r['v']], ['app2@%', null], "$what: user and user variable after change_user");
    $ids[] = connection_id($m);
    truth($m->change_user('app', 'app', DB), "$what: change_user back to app");
    eq(row($m, 'SELECT CURRENT_USER() AS u FROM DUAL WHERE 1 FOR UPDATE')['u'], 'app@%',
        "$what: user after change_user back");
    $ids[] = connection_id($m);
    return $ids;
}

function test_mysqli_change_user_direct(): void
{
    $d = direct();
    $ids = change_user_ids($d, 'direct');
    eq($ids, [$d->thread_id, $d->thread_id, $d->thread_id],
        'direct: CONNECTION_ID() before, as app2, back as app = the greeting\'s thread id');
}

function test_mysqli_change_user(): void
{
    $m = my();
    $thread = $m->thread_id;
    expect_replica((int) row($m, 'SELECT @@server_id AS s')['s'], 'read before change_user');
    $ids = change_user_ids($m, 'through sluice');
    // As app2 the backends enforce app2's privileges.
    $m->change_user('app2', 'app2', DB);
    $r = row($m, 'SELECT CURRENT_USER() AS u, @@server_id AS s');
    eq($r['u'], 'app2@%', 'user of the replica session after change_user');
    expect_replica((int) $r['s'], 'autocommit read as app2');
    expect_mysqli_error(fn () => $m->query('SELECT COUNT(*) FROM mysql.user'), 1142, 'app2 reading mysql.user');
    $m->change_user('app', 'app', DB);
    eq($m->thread_id, $thread, 'thread id known to the client');
    eq($ids, [$ids[0], $ids[0], $ids[0]],
        'CONNECTION_ID() before, as app2, back as app (directly it stays the same)');
    eq($ids[0], $thread, 'CONNECTION_ID() = the thread id of the greeting (as directly)');
}

// mysqlnd cleans a reused persistent connection with COM_CHANGE_USER (same user).
function persistent_reuse(int $port, string $what): void
{
    $a = my($port, 'app', 'app', [], 'p:' . HOST);
    $id = connection_id($a);
    $a->query('SET @php_p = 5');
    $a->query('DROP TEMPORARY TABLE IF EXISTS php_ptmp');
    $a->query('CREATE TEMPORARY TABLE php_ptmp (a INT)');
    $a->close();
    $b = my($port, 'app', 'app', [], 'p:' . HOST);
    eq(row($b, 'SELECT @php_p AS v')['v'], null, "$what: user variable on the reused connection");
    expect_mysqli_error(fn () => $b->query('SELECT * FROM php_ptmp'), 1146, "$what: temporary table on the reused connection");
    eq(connection_id($b), $id, "$what: CONNECTION_ID() of the reused persistent connection");
    $b->close();
}

function test_mysqli_persistent(): void
{
    persistent_reuse(PRIMARY_PORT, 'direct');
    persistent_reuse(PORT, 'through sluice');
}

function test_mysqli_load_data(): void
{
    $d = direct();
    eq((int) row($d, 'SELECT @@local_infile AS l')['l'], 1, 'the primary must have local_infile=ON (topology.sh); it is OFF');
    $d->close();
    $count = 10000;
    $file = tempnam(sys_get_temp_dir(), 'sluice-php-load-');
    try {
        $lines = '';
        for ($i = 1; $i <= $count; $i++) {
            $lines .= $i . "\tname-$i\t" . ($i % 5 === 0 ? '\\N' : (string) ($i * 2)) . "\n";
        }
        file_put_contents($file, $lines);
        $m = my(PORT, 'app', 'app', [MYSQLI_OPT_LOCAL_INFILE => 1]);
        $m->query('DROP TABLE IF EXISTS php_load');
        $m->query('CREATE TABLE php_load (id INT PRIMARY KEY, name VARCHAR(32), x INT NULL)');
        $m->query("LOAD DATA LOCAL INFILE '" . $m->real_escape_string($file) . "' INTO TABLE php_load (id, name, x)");
        eq([$m->affected_rows, $m->warning_count], [$count, 0], 'LOAD DATA LOCAL affected rows, warnings');
        $r = row($m, 'SELECT COUNT(*) AS n, SUM(id) AS s, COUNT(x) AS nx FROM php_load');
        eq([(int) $r['n'], (int) $r['s'], (int) $r['nx']], [$count, $count * ($count + 1) / 2, $count - $count / 5],
            'rows read through Sluice right after LOAD DATA');
        $p = direct();
        eq((int) row($p, 'SELECT COUNT(*) AS n FROM php_load')['n'], $count, 'rows on the primary');
        $p->close();
        eq((int) row($m, 'SELECT 6 AS x')['x'], 6, 'the session goes on after LOAD DATA');
        $m->close();
        // PDO: with PDO::MYSQL_ATTR_LOCAL_INFILE the file is sent; without it mysqlnd refuses
        // (an empty reply to the server's request), the client gets 2068 and the session goes on.
        $p = pdo(PORT, [PDO::MYSQL_ATTR_LOCAL_INFILE => true]);
        $p->exec('DELETE FROM php_load');
        eq($p->exec("LOAD DATA LOCAL INFILE " . $p->quote($file) . " INTO TABLE php_load (id, name, x)"), $count,
            'PDO LOAD DATA LOCAL affected rows');
        $p = null;
        foreach (['direct' => PRIMARY_PORT, 'through sluice' => PORT] as $what => $port) {
            $p = pdo($port);
            expect_pdo_error(fn () => $p->exec("LOAD DATA LOCAL INFILE " . $p->quote($file) .
                " INTO TABLE php_load (id, name, x)"), 2068, "$what: PDO LOAD DATA LOCAL without MYSQL_ATTR_LOCAL_INFILE");
            eq($p->query('SELECT 7 AS x')->fetch()['x'], 7, "$what: the session goes on after the refused LOAD DATA LOCAL");
            $p = null;
        }
    } finally {
        @unlink($file);
    }
}

function test_mysqli_stat(): void
{
    $m = my();
    $id = connection_id($m);
    $s = $m->stat();
    truth(is_string($s) && preg_match('/^Uptime: \d+\s+Threads: \d+\s+Questions: \d+\s+Slow queries: \d+\s+Opens: \d+\s+' .
        '.*Open tables: \d+\s+Queries per second avg: [0-9.]+/', $s) === 1, 'COM_STATISTICS answer: ' . show($s));
    eq((int) row($m, 'SELECT 8 AS x')['x'], 8, 'the session goes on after stat()');
    eq(connection_id($m), $id, 'same primary session after stat()');
    truth(is_string($m->stat()), 'a second stat()');
}

// Kills $victim's Sluice connection id (what mysqli::$thread_id holds) from $killer, checks
// that the primary thread serving it goes away and that the victim's next query fails.
function kill_and_check(mysqli $victim, string $what): void
{
    $sluiceId = $victim->thread_id;
    if (!DIRECT) {
        truth($sluiceId >= (1 << 30), "$what: Sluice's own connection ids start at 2^30, got $sluiceId");
    }
    $primaryThread = primary_thread($victim);
    $killer = my();
    truth($killer->kill($sluiceId), "$what: kill() returned false");
    eq((int) row($killer, 'SELECT 9 AS x')['x'], 9, "$what: the killer's session goes on");
    $killer->close();
    if (DIRECT) {
        truth(wait_until(fn () => !thread_alive(PRIMARY_PORT, $primaryThread), 10),
            "$what: the primary thread $primaryThread serving the killed session still exists after 10 s");
    }
    // Through Sluice (transaction-mode pooling, issue #10) an idle session holds no backend
    // thread: the one that served it is a pooled connection, which stays for other sessions;
    // the KILL ends the client's session, as the checks below show.
    try {
        $victim->query('SELECT 1');
        throw new RuntimeException("$what: the killed session still answers");
    } catch (mysqli_sql_exception $e) {
        truth(in_array($e->getCode(), [2006, 2013, 1927], true),
            "$what: the killed session's next query: expected a lost connection, got {$e->getCode()} {$e->getMessage()}");
    }
    $f = my();
    eq((int) row($f, 'SELECT 10 AS x')['x'], 10, "$what: a fresh session works");
    $f->close();
}

function test_mysqli_kill_primary_only(): void
{
    $v = my();                                 // never reads from a replica
    kill_and_check($v, 'session that only used the primary');
}

// The issue's case: change_user after a replica read, then nothing but the primary.
function test_mysqli_kill_after_change_user_primary(): void
{
    $v = my();
    expect_replica((int) row($v, 'SELECT @@server_id AS s')['s'], 'read before change_user');
    $v->change_user('app2', 'app2', DB);
    $v->change_user('app', 'app', DB);
    kill_and_check($v, 'session after change_user, no replica read since');
}

// KILL QUERY <id> (text, from another session) of a statement running on the primary, after
// change_user: the statement is interrupted (1317) within seconds and the session goes on.
// Directly the id is the server's thread id; through Sluice it is Sluice's (thread_id).
function kill_query_after_change_user(int $port, string $what): void
{
    $v = my($port);
    $sid = (int) row($v, 'SELECT @@server_id AS s')['s'];
    if ($port === PORT) {
        expect_replica($sid, "$what: read before change_user");
    }
    $v->change_user('app2', 'app2', DB);
    $v->change_user('app', 'app', DB);
    $id = $v->thread_id;
    $v->query('SELECT SLEEP(20) AS s, @@server_id AS sid FROM DUAL WHERE 1 FOR UPDATE', MYSQLI_ASYNC);
    usleep(300000);
    $killer = my($port);
    $killer->query("KILL QUERY $id");
    $t0 = microtime(true);
    $done = false;
    $outcome = null;
    while (!$done && microtime(true) - $t0 < 15) {
        $links = $errors = $rejects = [$v];
        if (mysqli::poll($links, $errors, $rejects, 1) > 0) {
            $done = true;
            try {
                $r = $v->reap_async_query();
                $outcome = $r instanceof mysqli_result ? $r->fetch_assoc() : $r;
            } catch (mysqli_sql_exception $e) {
                $outcome = $e->getCode();
            }
        }
    }
    truth($done, "$what: the statement was not interrupted within 15 s");
    truth($outcome === 1317 || (is_array($outcome) && $outcome['s'] === '1'),
        "$what: the killed SLEEP: expected error 1317 or SLEEP() = 1, got " . show($outcome));
    eq((int) row($v, 'SELECT 14 AS x')['x'], 14, "$what: the session goes on after KILL QUERY");
    $killer->close();
    $v->close();
}

function test_mysqli_kill_query_after_change_user(): void
{
    kill_query_after_change_user(PRIMARY_PORT, 'direct');
    kill_query_after_change_user(PORT, 'through sluice');
}

function test_mysqli_kill_after_change_user(): void
{
    $v = my();
    expect_replica((int) row($v, 'SELECT @@server_id AS s')['s'], 'read before change_user');
    $v->change_user('app2', 'app2', DB);
    $v->change_user('app', 'app', DB);
    expect_replica((int) row($v, 'SELECT @@server_id AS s')['s'], 'read after change_user');
    kill_and_check($v, 'session after change_user');
}

function test_mysqli_kill_privilege(): void
{
    $victim = my();
    expect_replica((int) row($victim, 'SELECT @@server_id AS s')['s'], 'victim read from a replica');
    $killer = my(PORT, 'app2', 'app2');
    expect_mysqli_error(fn () => $killer->kill($victim->thread_id), 1095, "app2 killing app's session");
    eq((int) row($victim, 'SELECT 11 AS x')['x'], 11, 'the victim lives');
    eq((int) row($killer, 'SELECT 12 AS x')['x'], 12, "the refused killer's session goes on");
}

function test_mysqli_multi_query(): void
{
    $m = my();
    $m->query('DROP TABLE IF EXISTS php_multi');
    $m->query('CREATE TABLE php_multi (a INT)');
    truth($m->multi_query('SELECT 1 AS a; SELECT @@server_id AS s; INSERT INTO php_multi VALUES (1), (2); ' .
        'SELECT COUNT(*) AS n FROM php_multi'), 'multi_query');
    $results = [];
    do {
        $r = $m->store_result();
        $results[] = $r === false ? ['affected' => $m->affected_rows] : $r->fetch_all(MYSQLI_ASSOC);
        if ($r !== false) {
            $r->free();
        }
    } while ($m->more_results() && $m->next_result());
    eq(count($results), 4, 'result count of the multi-statement');
    eq($results[0], [['a' => '1']], 'first result set (text protocol: strings)');
    expect_primary((int) $results[1][0]['s'], 'a multi-statement');
    eq($results[2], ['affected' => 2], 'INSERT inside the multi-statement');
    eq($results[3], [['n' => '2']], 'last result set');
    // mysqlnd turned multi-statements off again (COM_SET_OPTION): as on a direct connection,
    // a plain query with two statements is a syntax error.
    expect_mysqli_error(fn () => $m->query('SELECT 1; SELECT 2'), 1064, 'two statements in query() after multi_query');
    truth($m->multi_query('SELECT 1; SELECT * FROM php_no_such_table; SELECT 3'), 'multi_query with an error');
    $first = $m->store_result();
    eq($first->fetch_all(MYSQLI_NUM), [['1']], 'result before the failing statement');
    $first->free();
    expect_mysqli_error(fn () => $m->next_result(), 1146, 'the failing statement of the multi-statement');
    eq((int) row($m, 'SELECT 13 AS x')['x'], 13, 'the session goes on after the failed multi-statement');
}

$c = new Checks();
$c->run('pdo: connect, query, autocommit read on a replica', 'test_pdo_connect');
$c->run('pdo: server-side prepared statements, every type, COM_STMT_* on the servers', 'test_pdo_prepared');
$c->run('pdo: transaction rolled back and committed', 'test_pdo_transaction');
$c->run('pdo: errors, and the connection goes on', 'test_pdo_errors');
$c->run('pdo: lastInsertId', 'test_pdo_last_insert_id');
$c->run('mysqli: bind_param / send_long_data / get_result', 'test_mysqli_prepared');
$c->run('mysqli: read-only cursor (COM_STMT_FETCH) on a replica and in a transaction', 'test_mysqli_cursor');
$c->run('mysqli: a cursor whose execution fails (4024), as on a direct connection', 'test_mysqli_cursor_failure');
$c->run('mysqli: change_user on a direct connection (baseline)', 'test_mysqli_change_user_direct');
$c->run('mysqli: change_user to app2 and back keeps CONNECTION_ID()', 'test_mysqli_change_user');
$c->run('mysqli: persistent connection reused (COM_CHANGE_USER), as on a direct connection', 'test_mysqli_persistent');
$c->run('mysqli and pdo: LOAD DATA LOCAL INFILE, and refused by the client', 'test_mysqli_load_data');
$c->run('mysqli: stat() (COM_STATISTICS)', 'test_mysqli_stat');
$c->run('mysqli: kill() of a session that only used the primary', 'test_mysqli_kill_primary_only');
$c->run('mysqli: kill() of a session after change_user (primary only since)', 'test_mysqli_kill_after_change_user_primary');
$c->run('mysqli: kill() of a session after change_user and replica reads', 'test_mysqli_kill_after_change_user');
$c->run('mysqli: KILL QUERY of a running statement after change_user', 'test_mysqli_kill_query_after_change_user');
$c->run("mysqli: kill() of app's session by app2 is refused", 'test_mysqli_kill_privilege');
$c->run('mysqli: multi_query (COM_SET_OPTION), error in the middle', 'test_mysqli_multi_query');
$c->finish();
