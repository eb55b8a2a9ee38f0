/* ps_client: server-side prepared statements through Sluice with read/write splitting
 * (issue #3), from MariaDB Connector/C (libmariadb), the binary protocol's reference client.
 *
 *   ps_client [HOST PORT]
 *
 * HOST/PORT default to $SLUICE_HOST/$SLUICE_PORT (Sluice). $SLUICE_PRIMARY_PORT,
 * $SLUICE_REPLICA1_PORT and $SLUICE_REPLICA2_PORT reach the servers directly (127.0.0.1), to
 * set up tables and to check what happened. Prints "ok - NAME" or "FAIL - NAME: why" per
 * check and exits 1 if any failed.
 *
 * Checked: a prepared read runs on a replica and a prepared write on the primary (read back
 * directly); a prepared read sees the row the session just inserted (read-your-writes: 200
 * rounds with statements prepared once, 100 with the read prepared after the write; each read
 * names the server that answered it, and at least 80% of them must be replicas: a test where
 * every read after a write went to the primary would prove nothing); a 1 MiB blob sent with
 * mysql_stmt_send_long_data; a read-only cursor with
 * prefetch 2 (COM_STMT_FETCH), on a replica and in a transaction; one statement executed on
 * a replica and then on the primary (and the reverse) with the parameters bound once -- the
 * second COM_STMT_EXECUTE carries no parameter types, so Sluice must supply them to a backend
 * that has not seen them; mysql_stmt_reset (cursor, long data); 200 prepare/execute/close
 * cycles that leave no statement prepared on any server; prepare and execute errors.
 *
 * SLUICE_IT_DIRECT=1 (validation against the primary itself, never in CTest): a replica's
 * server_id is not required.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <mysql.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char* host = "127.0.0.1";
static unsigned sluice_port, primary_port, replica_ports[2];
static int direct_mode;
static char why[2048];
static int checks, failures;

static int fail(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return 0;
}

static void run(const char* name, int (*fn)(void)) {
    why[0] = '\0';
    checks++;
    if (fn()) {
        printf("ok   - %s\n", name);
    } else {
        failures++;
        printf("FAIL - %s: %s\n", name, why[0] ? why : "(no reason given)");
    }
    fflush(stdout);
}

static unsigned env_port(const char* name) {
    const char* v = getenv(name);
    if (v == NULL || atoi(v) <= 0) {
        fprintf(stderr, "FAIL - environment variable %s is not set (run through ctest)\n", name);
        exit(1);
    }
    return (unsigned)atoi(v);
}

static MYSQL* open_conn(const char* h, unsigned port) {
    MYSQL* m = mysql_init(NULL);
    unsigned timeout = 10;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &timeout);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
    if (!mysql_real_connect(m, h, "app", "app", "sluice_test", port, NULL, 0)) {
        fail("connect to %s:%u: %u %s", h, port, mysql_errno(m), mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

static MYSQL* sluice(void) { return open_conn(host, sluice_port); }
static MYSQL* primary(void) { return open_conn("127.0.0.1", primary_port); }

static int sql(MYSQL* m, const char* q) {
    if (mysql_query(m, q)) return fail("%s: %u %s", q, mysql_errno(m), mysql_error(m));
    MYSQL_RES* r = mysql_store_result(m);
    if (r) mysql_free_result(r);
    return 1;
}

/* First column of the first row of a text query as an integer; 0 and a reason on failure. */
static int sql_int(MYSQL* m, const char* q, long long* out) {
    if (mysql_query(m, q)) return fail("%s: %u %s", q, mysql_errno(m), mysql_error(m));
    MYSQL_RES* r = mysql_store_result(m);
    if (!r) return fail("%s: no result set (%u %s)", q, mysql_errno(m), mysql_error(m));
    MYSQL_ROW row = mysql_fetch_row(r);
    int ok = row && row[0];
    if (ok) *out = strtoll(row[0], NULL, 10);
    mysql_free_result(r);
    return ok ? 1 : fail("%s: no row or NULL", q);
}

static int is_replica(long long id, const char* what) {
    if (direct_mode ? (id >= 1 && id <= 3) : (id == 2 || id == 3)) return 1;
    return fail("%s: expected a replica's @@server_id (2 or 3), got %lld", what, id);
}

static int is_primary(long long id, const char* what) {
    return id == 1 ? 1 : fail("%s: expected the primary's @@server_id 1, got %lld", what, id);
}

static MYSQL_STMT* prepare(MYSQL* m, const char* q) {
    MYSQL_STMT* st = mysql_stmt_init(m);
    if (!st) {
        fail("mysql_stmt_init: %s", mysql_error(m));
        return NULL;
    }
    if (mysql_stmt_prepare(st, q, (unsigned long)strlen(q))) {
        fail("prepare %s: %u %s", q, mysql_stmt_errno(st), mysql_stmt_error(st));
        mysql_stmt_close(st);
        return NULL;
    }
    return st;
}

static int stmt_fail(MYSQL_STMT* st, const char* what) {
    return fail("%s: %u %s", what, mysql_stmt_errno(st), mysql_stmt_error(st));
}

static void bind_longlong(MYSQL_BIND* b, long long* v) {
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = v;
}

static void bind_string(MYSQL_BIND* b, char* buf, unsigned long cap, unsigned long* len) {
    memset(b, 0, sizeof *b);
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = buf;
    b->buffer_length = cap;
    b->length = len;
}

/* Executes ST (params already bound) and fetches exactly one row into RESULT binds. */
static int exec_one_row(MYSQL_STMT* st, MYSQL_BIND* result, const char* what) {
    if (mysql_stmt_execute(st)) return stmt_fail(st, what);
    if (result && mysql_stmt_bind_result(st, result)) return stmt_fail(st, what);
    if (mysql_stmt_store_result(st)) return stmt_fail(st, what);
    int rc = mysql_stmt_fetch(st);
    if (rc == MYSQL_NO_DATA) return fail("%s: no row", what);
    if (rc != 0)
        return fail("%s: fetch returned %d (%u %s)", what, rc, mysql_stmt_errno(st),
                    mysql_stmt_error(st));
    if (mysql_stmt_fetch(st) != MYSQL_NO_DATA) return fail("%s: more than one row", what);
    mysql_stmt_free_result(st);
    return 1;
}

/* CRC-32 as MariaDB's CRC32() (zlib's). */
static uint32_t crc32_of(const unsigned char* p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

/* The replicas have applied everything the primary has (tables made directly). */
static int replicas_caught_up(MYSQL* p) {
    char pos[512], q[700];
    if (mysql_query(p, "SELECT @@gtid_binlog_pos"))
        return fail("gtid_binlog_pos: %s", mysql_error(p));
    MYSQL_RES* r = mysql_store_result(p);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    snprintf(pos, sizeof pos, "%s", row && row[0] ? row[0] : "");
    if (r) mysql_free_result(r);
    snprintf(q, sizeof q, "SELECT MASTER_GTID_WAIT('%s', 30)", pos);
    for (int i = 0; i < 2; i++) {
        MYSQL* rep = open_conn("127.0.0.1", replica_ports[i]);
        long long w = -1;
        if (!rep) return 0;
        int ok = sql_int(rep, q, &w);
        mysql_close(rep);
        if (!ok) return 0;
        if (w != 0) return fail("replica%d did not reach the primary's position %s", i + 1, pos);
    }
    return 1;
}

/* Rows other sessions wrote have reached the replicas (no read-your-writes across sessions). */
static int others_rows_replicated(void) {
    MYSQL* p = primary();
    if (!p) return 0;
    int ok = replicas_caught_up(p);
    mysql_close(p);
    return ok;
}

static long long prepared_stmt_count(unsigned port) {
    MYSQL* m = open_conn("127.0.0.1", port);
    long long n = -1;
    if (!m) return -1;
    if (mysql_query(m, "SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'") == 0) {
        MYSQL_RES* r = mysql_store_result(m);
        MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
        if (row && row[1]) n = strtoll(row[1], NULL, 10);
        if (r) mysql_free_result(r);
    }
    mysql_close(m);
    return n;
}

/* ------------------------------------------------------------------------- checks ---- */

static int t_setup(void) {
    MYSQL* p = primary();
    if (!p) return 0;
    int ok = sql(p, "DROP TABLE IF EXISTS ps_t") &&
             sql(p, "CREATE TABLE ps_t (id INT PRIMARY KEY, sid INT, v VARCHAR(64), b LONGBLOB) "
                    "ENGINE=InnoDB") &&
             replicas_caught_up(p);
    mysql_close(p);
    return ok;
}

static int t_select_on_replica(void) {
    MYSQL* s = sluice();
    if (!s) return 0;
    int ok = 0;
    long long id = 0, first = 0;
    MYSQL_BIND res;
    MYSQL_STMT* st = prepare(s, "SELECT @@server_id");
    if (!st) goto out;
    bind_longlong(&res, &id);
    // Pooled (transaction mode, the default): each execution goes to a replica chosen per
    // statement (the nearest; equally near ones in turn), prepared there on demand.
    int other = 0;
    for (int i = 0; i < 6; i++) {
        if (!exec_one_row(st, &res, "execute SELECT @@server_id")) goto out;
        if (!is_replica(id, "prepared SELECT @@server_id in autocommit")) goto out;
        if (i == 0) first = id;
        if (id != first) other = 1;
    }
    printf("     prepared SELECT @@server_id answered by %s\n",
           other ? "both replicas" : "one replica (the nearer)");
    ok = 1;
out:
    if (st) mysql_stmt_close(st);
    mysql_close(s);
    return ok;
}

static int t_insert_on_primary(void) {
    MYSQL* s = sluice();
    MYSQL* p = NULL;
    if (!s) return 0;
    int ok = 0;
    long long id = 1, sid = 0;
    char v[64] = "ps-one";
    unsigned long vlen = 6;
    MYSQL_BIND params[2];
    MYSQL_STMT* st = prepare(s, "INSERT INTO ps_t (id, sid, v) VALUES (?, @@server_id, ?)");
    if (!st) goto out;
    bind_longlong(&params[0], &id);
    bind_string(&params[1], v, sizeof v, &vlen);
    if (mysql_stmt_bind_param(st, params) || mysql_stmt_execute(st)) {
        stmt_fail(st, "execute the prepared INSERT");
        goto out;
    }
    if (mysql_stmt_affected_rows(st) != 1) {
        fail("affected rows %llu, expected 1", (unsigned long long)mysql_stmt_affected_rows(st));
        goto out;
    }
    if (!(p = primary())) goto out;
    if (!sql_int(p, "SELECT sid FROM ps_t WHERE id = 1 AND v = 'ps-one'", &sid)) goto out;
    ok = is_primary(sid, "INSERT ... VALUES (?, @@server_id, ?) read back on the primary");
out:
    if (st) mysql_stmt_close(st);
    if (p) mysql_close(p);
    mysql_close(s);
    return ok;
}

/* At least 80% of the reads after a write were answered by a replica (server_id 2 or 3). */
static int replicas_answered(int on_replica, int rounds, const char* what) {
    printf("     %s: %d of %d reads answered by a replica\n", what, on_replica, rounds);
    if (direct_mode || on_replica * 10 >= rounds * 8) return 1;
    return fail("%s: replicas answered %d of %d reads after a write, expected >= 80%%", what,
                on_replica, rounds);
}

static int t_read_your_writes(void) {
    MYSQL* s = sluice();
    if (!s) return 0;
    int ok = 0, rounds = 200, on_primary = 0, on_replica = 0;
    long long id = 0, sid = 0;
    char v[64], got[64];
    unsigned long vlen = 0, gotlen = 0;
    MYSQL_BIND ins[2], sel[1], res[2];
    MYSQL_STMT* w = prepare(s, "INSERT INTO ps_t (id, sid, v) VALUES (?, @@server_id, ?)");
    MYSQL_STMT* r = prepare(s, "SELECT v, @@server_id FROM ps_t WHERE id = ?");
    if (!w || !r) goto out;
    bind_longlong(&ins[0], &id);
    bind_string(&ins[1], v, sizeof v, &vlen);
    bind_longlong(&sel[0], &id);
    bind_string(&res[0], got, sizeof got, &gotlen);
    bind_longlong(&res[1], &sid);
    if (mysql_stmt_bind_param(w, ins) || mysql_stmt_bind_param(r, sel)) {
        stmt_fail(w, "bind");
        goto out;
    }
    for (int i = 0; i < rounds; i++) {
        id = 1000 + i;
        vlen = (unsigned long)snprintf(v, sizeof v, "ryw-%d", i);
        if (mysql_stmt_execute(w)) {
            stmt_fail(w, "prepared INSERT");
            goto out;
        }
        char what[64];
        snprintf(what, sizeof what, "prepared SELECT of row %lld just inserted", id);
        if (!exec_one_row(r, res, what)) goto out; /* no row = a stale read */
        if (gotlen != vlen || memcmp(got, v, vlen) != 0) {
            fail("%s: got '%.*s', expected '%s'", what, (int)gotlen, got, v);
            goto out;
        }
        on_primary += sid == 1;
        on_replica += sid == 2 || sid == 3;
    }
    printf("     %d rounds with statements prepared once, no stale read; %d reads answered by "
           "the primary\n",
           rounds, on_primary);
    if (!replicas_answered(on_replica, rounds, "statements prepared once")) goto out;
    /* A write, then a read prepared only now: the COM_STMT_PREPARE must not let the read
     * skip the wait for the write. */
    on_replica = 0;
    for (int i = 0; i < 100; i++) {
        char q[160], what[64];
        long long n = -1, where = -1;
        MYSQL_BIND res1[2];
        snprintf(q, sizeof q, "INSERT INTO ps_t (id, sid, v) VALUES (%d, @@server_id, 'text-%d')",
                 3000 + i, i);
        if (!sql(s, q)) goto out;
        snprintf(q, sizeof q,
                 "SELECT COUNT(*), @@server_id FROM ps_t WHERE id = %d AND v = 'text-%d'", 3000 + i,
                 i);
        MYSQL_STMT* fresh = prepare(s, q);
        if (!fresh) goto out;
        bind_longlong(&res1[0], &n);
        bind_longlong(&res1[1], &where);
        snprintf(what, sizeof what, "round %d: read prepared after the write", i);
        int good = exec_one_row(fresh, res1, what);
        mysql_stmt_close(fresh);
        if (!good) goto out;
        if (n != 1) {
            fail("%s: the row just inserted is missing (a stale read on server_id %lld)", what,
                 where);
            goto out;
        }
        on_replica += where == 2 || where == 3;
    }
    printf("     100 rounds of text INSERT then a newly prepared SELECT, no stale read\n");
    if (!replicas_answered(on_replica, 100, "reads prepared after the write")) goto out;
    ok = 1;
out:
    if (w) mysql_stmt_close(w);
    if (r) mysql_stmt_close(r);
    mysql_close(s);
    return ok;
}

static int t_long_data(void) {
    enum { size = 1 << 20, chunk = 64 * 1024 };
    MYSQL* s = sluice();
    MYSQL* p = NULL;
    if (!s) return 0;
    int ok = 0;
    unsigned char* blob = malloc(size);
    unsigned char* back = malloc(size + 1);
    long long id = 2, len = 0, crc = 0;
    unsigned long backlen = 0;
    MYSQL_BIND params[2], sel[1], res[3];
    MYSQL_STMT* ins = NULL;
    MYSQL_STMT* rd = NULL;
    uint32_t x = 0x12345678u;
    for (size_t i = 0; i < size; i++) { /* xorshift: every byte value, NULs included */
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        blob[i] = (unsigned char)x;
    }
    uint32_t want_crc = crc32_of(blob, size);
    if (!(ins = prepare(s, "INSERT INTO ps_t (id, sid, v, b) VALUES (?, 0, 'blob', ?)"))) goto out;
    bind_longlong(&params[0], &id);
    memset(&params[1], 0, sizeof params[1]);
    params[1].buffer_type = MYSQL_TYPE_LONG_BLOB;
    if (mysql_stmt_bind_param(ins, params)) {
        stmt_fail(ins, "bind");
        goto out;
    }
    for (size_t off = 0; off < size; off += chunk) {
        if (mysql_stmt_send_long_data(ins, 1, (const char*)blob + off, chunk)) {
            stmt_fail(ins, "mysql_stmt_send_long_data");
            goto out;
        }
    }
    if (mysql_stmt_execute(ins)) {
        stmt_fail(ins, "execute the INSERT with long data");
        goto out;
    }
    /* Read back through Sluice (a replica, after the causal wait): length, CRC32, bytes. */
    if (!(rd = prepare(s, "SELECT LENGTH(b), CRC32(b), b FROM ps_t WHERE id = ?"))) goto out;
    bind_longlong(&sel[0], &id);
    bind_longlong(&res[0], &len);
    bind_longlong(&res[1], &crc);
    memset(&res[2], 0, sizeof res[2]);
    res[2].buffer_type = MYSQL_TYPE_LONG_BLOB;
    res[2].buffer = back;
    res[2].buffer_length = size + 1;
    res[2].length = &backlen;
    if (mysql_stmt_bind_param(rd, sel)) {
        stmt_fail(rd, "bind");
        goto out;
    }
    if (!exec_one_row(rd, res, "prepared SELECT of the blob")) goto out;
    if (len != size || backlen != size) {
        fail("blob length: server %lld, read back %lu, expected %d", len, backlen, size);
        goto out;
    }
    if ((uint32_t)crc != want_crc) {
        fail("CRC32 of the stored blob %08llx, expected %08x", crc, want_crc);
        goto out;
    }
    if (memcmp(back, blob, size) != 0) {
        fail("blob read back differs from the one sent");
        goto out;
    }
    if (!(p = primary())) goto out;
    if (!sql_int(p, "SELECT CRC32(b) FROM ps_t WHERE id = 2 AND LENGTH(b) = 1048576", &crc))
        goto out;
    if ((uint32_t)crc != want_crc) {
        fail("CRC32 of the blob on the primary %08llx, expected %08x", crc, want_crc);
        goto out;
    }
    ok = 1;
out:
    if (ins) mysql_stmt_close(ins);
    if (rd) mysql_stmt_close(rd);
    if (p) mysql_close(p);
    free(blob);
    free(back);
    mysql_close(s);
    return ok;
}

/* Fetches the 10 rows of the cursor statement; all from one server, checked by WANT. */
static int fetch_cursor_rows(MYSQL_STMT* st, long long from, int want_primary, const char* what) {
    long long seq = 0, sid = 0;
    char name[32];
    unsigned long namelen = 0;
    MYSQL_BIND res[3];
    bind_longlong(&res[0], &seq);
    bind_string(&res[1], name, sizeof name, &namelen);
    bind_longlong(&res[2], &sid);
    if (mysql_stmt_execute(st)) return stmt_fail(st, what);
    if (mysql_stmt_bind_result(st, res)) return stmt_fail(st, what);
    int n = 0, rc;
    while ((rc = mysql_stmt_fetch(st)) == 0) {
        char want[32];
        int wl = snprintf(want, sizeof want, "row-%lld", from + n);
        if (seq != from + n || namelen != (unsigned long)wl || memcmp(name, want, namelen) != 0)
            return fail("%s: row %d is (%lld, '%.*s'), expected (%lld, '%s')", what, n + 1, seq,
                        (int)namelen, name, from + n, want);
        if (want_primary ? !is_primary(sid, what) : !is_replica(sid, what)) return 0;
        n++;
    }
    if (rc != MYSQL_NO_DATA)
        return fail("%s: fetch returned %d (%u %s)", what, rc, mysql_stmt_errno(st),
                    mysql_stmt_error(st));
    if (n != 10) return fail("%s: %d rows, expected 10", what, n);
    mysql_stmt_free_result(st);
    return 1;
}

static int t_cursor(void) {
    MYSQL* s = sluice();
    if (!s) return 0;
    int ok = 0;
    unsigned long type = CURSOR_TYPE_READ_ONLY, prefetch = 2;
    long long from = 1;
    MYSQL_BIND param;
    MYSQL_STMT* st = mysql_stmt_init(s);
    const char* q = "SELECT seq, CONCAT('row-', seq), @@server_id FROM seq_1_to_100 "
                    "WHERE seq >= ? ORDER BY seq LIMIT 10";
    if (mysql_stmt_attr_set(st, STMT_ATTR_CURSOR_TYPE, &type) ||
        mysql_stmt_attr_set(st, STMT_ATTR_PREFETCH_ROWS, &prefetch)) {
        stmt_fail(st, "mysql_stmt_attr_set");
        goto out;
    }
    if (mysql_stmt_prepare(st, q, (unsigned long)strlen(q))) {
        stmt_fail(st, "prepare");
        goto out;
    }
    bind_longlong(&param, &from);
    if (mysql_stmt_bind_param(st, &param)) {
        stmt_fail(st, "bind");
        goto out;
    }
    if (!fetch_cursor_rows(st, 1, 0, "cursor in autocommit (replica)")) goto out;
    from = 41;
    if (!fetch_cursor_rows(st, 41, 0, "cursor executed again, other parameter")) goto out;
    if (!sql(s, "BEGIN")) goto out;
    from = 7;
    if (!fetch_cursor_rows(st, 7, 1, "cursor inside BEGIN (primary)")) goto out;
    if (!sql(s, "COMMIT")) goto out;
    from = 90;
    if (!fetch_cursor_rows(st, 90, 0, "cursor after COMMIT (replica)")) goto out;
    ok = 1;
out:
    mysql_stmt_close(st);
    mysql_close(s);
    return ok;
}

/* One statement, parameters bound once, executed on both kinds of backend in turn. */
static int execute_v_sid(MYSQL_STMT* st, const char* want_v, int want_primary, const char* what) {
    char got[64];
    unsigned long gotlen = 0;
    long long sid = 0;
    MYSQL_BIND res[2];
    bind_string(&res[0], got, sizeof got, &gotlen);
    bind_longlong(&res[1], &sid);
    if (!exec_one_row(st, res, what)) return 0;
    if (gotlen != strlen(want_v) || memcmp(got, want_v, gotlen) != 0)
        return fail("%s: got '%.*s', expected '%s'", what, (int)gotlen, got, want_v);
    return want_primary ? is_primary(sid, what) : is_replica(sid, what);
}

static int t_params_on_both_backends(void) {
    if (!others_rows_replicated()) return 0; /* rows 1 and 2 */
    MYSQL* s = sluice();
    if (!s) return 0;
    int ok = 0;
    const char* q = "SELECT v, @@server_id FROM ps_t WHERE id = ? AND v = ?";
    long long id = 1;
    char v[64] = "ps-one";
    unsigned long vlen = 6;
    MYSQL_BIND params[2];
    MYSQL_STMT* a = prepare(s, q);
    MYSQL_STMT* b = prepare(s, q);
    if (!a || !b) goto out;
    bind_longlong(&params[0], &id);
    bind_string(&params[1], v, sizeof v, &vlen);
    if (mysql_stmt_bind_param(a, params) || mysql_stmt_bind_param(b, params)) {
        stmt_fail(a, "bind");
        goto out;
    }
    /* a: replica first, then the primary with no types in the COM_STMT_EXECUTE. */
    if (!execute_v_sid(a, "ps-one", 0, "a: autocommit execute (replica)")) goto out;
    if (a->send_types_to_server)
        printf(
            "     note: libmariadb resends parameter types; the no-types path is not exercised\n");
    if (!sql(s, "BEGIN")) goto out;
    if (!execute_v_sid(a, "ps-one", 1,
                       "a: same statement inside BEGIN (primary), params not rebound"))
        goto out;
    id = 2; /* new values in the bound buffers, still not rebound */
    strcpy(v, "blob");
    vlen = 4;
    if (!execute_v_sid(a, "blob", 1, "a: inside BEGIN, new parameter values")) goto out;
    if (!sql(s, "COMMIT")) goto out;
    if (!execute_v_sid(a, "blob", 0, "a: after COMMIT (replica again)")) goto out;
    /* b: the primary first, then a replica that has never executed it. */
    id = 1;
    strcpy(v, "ps-one");
    vlen = 6;
    if (!sql(s, "START TRANSACTION")) goto out;
    if (!execute_v_sid(b, "ps-one", 1, "b: first execute inside a transaction (primary)")) goto out;
    if (!sql(s, "COMMIT")) goto out;
    if (!execute_v_sid(b, "ps-one", 0, "b: then in autocommit (replica), params not rebound"))
        goto out;
    id = 2;
    strcpy(v, "blob");
    vlen = 4;
    if (!execute_v_sid(b, "blob", 0, "b: autocommit, new parameter values")) goto out;
    ok = 1;
out:
    if (a) mysql_stmt_close(a);
    if (b) mysql_stmt_close(b);
    mysql_close(s);
    return ok;
}

static int t_reset(void) {
    MYSQL* s = sluice();
    MYSQL* p = NULL;
    if (!s) return 0;
    int ok = 0;
    unsigned long type = CURSOR_TYPE_READ_ONLY, prefetch = 2;
    long long seq = 0, total = 0, id = 3;
    char shortv[16] = "short";
    unsigned long shortlen = 5;
    MYSQL_BIND res, params[2];
    MYSQL_STMT* ins = NULL;
    MYSQL_STMT* st = mysql_stmt_init(s);
    const char* q = "SELECT seq FROM seq_1_to_5";
    /* A cursor read part-way, reset, executed again: all five rows. */
    if (mysql_stmt_attr_set(st, STMT_ATTR_CURSOR_TYPE, &type) ||
        mysql_stmt_attr_set(st, STMT_ATTR_PREFETCH_ROWS, &prefetch) ||
        mysql_stmt_prepare(st, q, (unsigned long)strlen(q))) {
        stmt_fail(st, "prepare the cursor");
        goto out;
    }
    bind_longlong(&res, &seq);
    if (mysql_stmt_execute(st) || mysql_stmt_bind_result(st, &res) || mysql_stmt_fetch(st) ||
        mysql_stmt_fetch(st)) {
        stmt_fail(st, "first two rows of the cursor");
        goto out;
    }
    if (seq != 2) {
        fail("second row of the cursor is %lld", seq);
        goto out;
    }
    if (mysql_stmt_reset(st)) {
        stmt_fail(st, "mysql_stmt_reset of the open cursor");
        goto out;
    }
    if (mysql_stmt_execute(st) || mysql_stmt_bind_result(st, &res)) {
        stmt_fail(st, "execute after mysql_stmt_reset");
        goto out;
    }
    int n = 0, rc;
    while ((rc = mysql_stmt_fetch(st)) == 0) {
        n++;
        total += seq;
    }
    if (rc != MYSQL_NO_DATA || n != 5 || total != 15) {
        fail("after reset: %d rows summing to %lld (rc %d), expected 5 rows summing to 15", n,
             total, rc);
        goto out;
    }
    /* Long data discarded by a reset: the execute uses the bound value. */
    if (!(ins = prepare(s, "INSERT INTO ps_t (id, sid, v, b) VALUES (?, @@server_id, 'reset', ?)")))
        goto out;
    bind_longlong(&params[0], &id);
    memset(&params[1], 0, sizeof params[1]);
    params[1].buffer_type = MYSQL_TYPE_BLOB;
    params[1].buffer = shortv;
    params[1].buffer_length = sizeof shortv;
    params[1].length = &shortlen;
    if (mysql_stmt_bind_param(ins, params) ||
        mysql_stmt_send_long_data(ins, 1, "LONG DATA THE RESET DISCARDS", 28) ||
        mysql_stmt_reset(ins) || mysql_stmt_execute(ins)) {
        stmt_fail(ins, "send_long_data, reset, execute");
        goto out;
    }
    if (!(p = primary())) goto out;
    if (!sql_int(p, "SELECT COUNT(*) FROM ps_t WHERE id = 3 AND b = 'short' AND sid = 1", &total))
        goto out;
    if (total != 1) {
        fail("row 3 on the primary does not hold the bound value 'short' (long data not reset?)");
        goto out;
    }
    ok = 1;
out:
    mysql_stmt_close(st);
    if (ins) mysql_stmt_close(ins);
    if (p) mysql_close(p);
    mysql_close(s);
    return ok;
}

static int t_many_cycles(void) {
    unsigned ports[3] = {primary_port, replica_ports[0], replica_ports[1]};
    const char* names[3] = {"primary", "replica1", "replica2"};
    long long before[3], after[3];
    for (int i = 0; i < 3; i++)
        if ((before[i] = prepared_stmt_count(ports[i])) < 0)
            return fail("Prepared_stmt_count of %s unreadable", names[i]);
    MYSQL* s = sluice();
    if (!s) return 0;
    int ok = 0, cycles = 200;
    for (int i = 0; i < cycles; i++) {
        static const char* qs[3] = {
            "SELECT ? + 1", "INSERT INTO ps_t (id, sid, v) VALUES (?, @@server_id, 'cycle')",
            "SELECT COUNT(*) + 0 * ? FROM ps_t WHERE v = 'cycle'"};
        int kind = i % 3;
        long long param = kind == 1 ? 5000 + i : i, out = -1;
        MYSQL_BIND pb, rb;
        MYSQL_STMT* st = prepare(s, qs[kind]);
        if (!st) {
            char reason[sizeof why];
            snprintf(reason, sizeof reason, "%s", why);
            fail("cycle %d: %s", i, reason);
            goto out;
        }
        bind_longlong(&pb, &param);
        bind_longlong(&rb, &out);
        int good = mysql_stmt_bind_param(st, &pb) == 0;
        if (good && kind == 1) {
            good = mysql_stmt_execute(st) == 0;
        } else if (good) {
            good = exec_one_row(st, &rb, qs[kind]);
            /* kind 2 counts the 'cycle' rows inserted so far: (i + 1) / 3 of them */
            if (good && out != (kind == 0 ? i + 1 : (i + 1) / 3)) {
                fail("cycle %d: %s answered %lld", i, qs[kind], out);
                good = 0;
            }
        }
        if (!good) {
            char reason[sizeof why];
            if (!why[0]) stmt_fail(st, qs[kind]);
            snprintf(reason, sizeof reason, "%s", why);
            fail("cycle %d: %s", i, reason);
            mysql_stmt_close(st);
            goto out;
        }
        if (mysql_stmt_close(st)) {
            fail("cycle %d: mysql_stmt_close: %s", i, mysql_error(s));
            goto out;
        }
    }
    /* COM_STMT_CLOSE has no reply: wait (bounded) for the servers to have closed them. */
    long long one = 0;
    if (!sql_int(s, "SELECT 1", &one)) goto out;
    for (int tries = 0;; tries++) {
        int leaked = 0;
        for (int i = 0; i < 3; i++) {
            after[i] = prepared_stmt_count(ports[i]);
            leaked |= after[i] < 0 || after[i] > before[i] + 2;
        }
        if (!leaked) break;
        if (tries == 30) {
            fail("statements still prepared after %d prepare/execute/close cycles: "
                 "primary %lld -> %lld, replica1 %lld -> %lld, replica2 %lld -> %lld",
                 cycles, before[0], after[0], before[1], after[1], before[2], after[2]);
            goto out;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ok = 1;
out:
    mysql_close(s);
    return ok;
}

static int t_errors(void) {
    if (!others_rows_replicated()) return 0; /* row 1 */
    MYSQL* s = sluice();
    if (!s) return 0;
    int ok = 0;
    long long v = 0, id = 1;
    MYSQL_BIND res, param;
    MYSQL_STMT* st = mysql_stmt_init(s);
    MYSQL_STMT* dup = NULL;
    MYSQL_STMT* good = NULL;
    if (mysql_stmt_prepare(st, "SELEC 1", 7) == 0) {
        fail("prepare of 'SELEC 1' succeeded");
        goto out;
    }
    if (mysql_stmt_errno(st) != 1064) {
        fail("prepare of 'SELEC 1': error %u %s, expected 1064", mysql_stmt_errno(st),
             mysql_stmt_error(st));
        goto out;
    }
    if (!sql_int(s, "SELECT 41 + 1", &v) || v != 42) {
        if (!why[0]) fail("text query after the prepare error answered %lld", v);
        goto out;
    }
    mysql_stmt_close(st);
    st = mysql_stmt_init(s);
    const char* missing = "SELECT * FROM ps_missing_table WHERE id = ?";
    if (mysql_stmt_prepare(st, missing, (unsigned long)strlen(missing)) == 0 ||
        mysql_stmt_errno(st) != 1146) {
        fail("prepare of a SELECT from a missing table: %u %s, expected 1146", mysql_stmt_errno(st),
             mysql_stmt_error(st));
        goto out;
    }
    /* An execute-time error: duplicate key; the statement works again afterwards. */
    if (!(dup = prepare(s, "INSERT INTO ps_t (id, sid, v) VALUES (?, 0, 'dup')"))) goto out;
    bind_longlong(&param, &id);
    if (mysql_stmt_bind_param(dup, &param)) {
        stmt_fail(dup, "bind");
        goto out;
    }
    if (mysql_stmt_execute(dup) == 0 || mysql_stmt_errno(dup) != 1062) {
        fail("execute of a duplicate key: %u %s, expected 1062", mysql_stmt_errno(dup),
             mysql_stmt_error(dup));
        goto out;
    }
    id = 4;
    if (mysql_stmt_execute(dup)) {
        stmt_fail(dup, "the same INSERT with a new key after the 1062");
        goto out;
    }
    if (!(good = prepare(s, "SELECT SUM(id) FROM ps_t WHERE id IN (1, 4)"))) goto out;
    bind_longlong(&res, &v);
    if (!exec_one_row(good, &res, "prepared SELECT after the errors")) goto out;
    if (v != 5) {
        fail("SUM(id) of rows 1 and 4 (4 inserted by this session after its 1062): %lld, "
             "expected 5",
             v);
        goto out;
    }
    ok = 1;
out:
    mysql_stmt_close(st);
    if (dup) mysql_stmt_close(dup);
    if (good) mysql_stmt_close(good);
    mysql_close(s);
    return ok;
}

static int t_cleanup(void) {
    MYSQL* p = primary();
    if (!p) return 0;
    int ok = sql(p, "DROP TABLE IF EXISTS ps_t");
    mysql_close(p);
    return ok;
}

int main(int argc, char** argv) {
    const char* h = getenv("SLUICE_HOST");
    if (h && *h) host = h;
    if (argc == 3) {
        host = argv[1];
        sluice_port = (unsigned)atoi(argv[2]);
    } else if (argc == 1) {
        sluice_port = env_port("SLUICE_PORT");
    } else {
        fprintf(stderr, "usage: ps_client [HOST PORT]\n");
        return 2;
    }
    primary_port = env_port("SLUICE_PRIMARY_PORT");
    replica_ports[0] = env_port("SLUICE_REPLICA1_PORT");
    replica_ports[1] = env_port("SLUICE_REPLICA2_PORT");
    const char* d = getenv("SLUICE_IT_DIRECT");
    direct_mode = d && strcmp(d, "1") == 0;
    printf("     libmariadb %s, Sluice at %s:%u%s\n", mysql_get_client_info(), host, sluice_port,
           direct_mode ? " (SLUICE_IT_DIRECT=1: replica server_ids not required)" : "");

    run("set-up: table ps_t on the primary, replicas caught up", t_setup);
    if (failures) return 1;
    run("prepared SELECT @@server_id runs on a replica", t_select_on_replica);
    run("prepared INSERT ... (?, @@server_id, ?) runs on the primary", t_insert_on_primary);
    run("prepared SELECT sees the row just inserted (200 + 100 rounds)", t_read_your_writes);
    run("1 MiB blob with mysql_stmt_send_long_data, read back", t_long_data);
    run("read-only cursor, prefetch 2: replica, transaction, replica", t_cursor);
    run("parameters bound once, executed on a replica and on the primary",
        t_params_on_both_backends);
    run("mysql_stmt_reset: open cursor, long data", t_reset);
    run("200 prepare/execute/close cycles leave nothing prepared", t_many_cycles);
    run("prepare errors 1064/1146, execute error 1062, session usable", t_errors);
    run("clean-up", t_cleanup);
    if (failures) {
        printf("%d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("all %d checks passed\n", checks);
    return 0;
}
