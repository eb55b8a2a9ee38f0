// connectorj_bulk: MariaDB Connector/J (Debian's libmariadb-java, 2.7.x) batches with
// useBulkStmts=true, which Connector/J sends as one COM_STMT_BULK_EXECUTE when the server
// advertises MARIADB_CLIENT_STMT_BULK_OPERATIONS (issue #7, section 3).
//
// First directly against the primary, to show what bulk execution looks like in the server's
// own counters (a 1,000-row batch: Com_stmt_execute and Com_insert grow by 1, where 1,000
// single executes would grow them by 1,000); then the same batch through Sluice, with
// client-side and with server-side prepared statements: the rows land on the primary, its
// counters show bulk execution, and the replicas ran none of it (their Com_stmt_execute
// does not move). Counters are read directly from each server, never from Sluice.
//
// Compiled and run by connectorj_bulk.sh. Environment: SLUICE_HOST, SLUICE_PORT,
// SLUICE_PRIMARY_PORT, SLUICE_REPLICA1_PORT, SLUICE_REPLICA2_PORT.

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

public final class BulkTest {
    static final String HOST = env("SLUICE_HOST");
    static final int PORT = Integer.parseInt(env("SLUICE_PORT"));
    static final int PRIMARY_PORT = Integer.parseInt(env("SLUICE_PRIMARY_PORT"));
    static final int REPLICA1_PORT = Integer.parseInt(env("SLUICE_REPLICA1_PORT"));
    static final int REPLICA2_PORT = Integer.parseInt(env("SLUICE_REPLICA2_PORT"));
    static final int ROWS = 1000;
    // A bulk batch is one execute; 1,000 rows as single executes (or text INSERTs) would move
    // the counters by 1,000. Anything up to this is bulk execution (Connector/J may split a
    // batch by its max_allowed_packet, and the counter readers' own statements add none).
    static final long BULK_MAX = 10;

    static int checks = 0;
    static final List<String> failures = new ArrayList<>();

    static String env(String name) {
        String v = System.getenv(name);
        if (v == null) {
            System.err.println("FAIL - environment variable " + name + " is not set (run through ctest)");
            System.exit(1);
        }
        return v;
    }

    static final class Failure extends RuntimeException {
        Failure(String m) { super(m); }
    }

    static void eq(Object actual, Object expected, String what) {
        if (!Objects.equals(actual, expected))
            throw new Failure(what + ": expected [" + expected + "], got [" + actual + "]");
    }

    static void check(boolean cond, String what) {
        if (!cond) throw new Failure(what);
    }

    interface Body { void run() throws Exception; }

    static void run(String name, Body body) {
        checks++;
        long t0 = System.nanoTime();
        try {
            body.run();
            System.out.printf("ok   - %s (%.2fs)%n", name, (System.nanoTime() - t0) / 1e9);
        } catch (Throwable e) {
            failures.add(name);
            System.err.println("FAIL - " + name + ": " + e);
            if (e instanceof SQLException) {
                SQLException s = (SQLException) e;
                System.err.println("       SQLState " + s.getSQLState() + ", error code " + s.getErrorCode());
            }
            if (!(e instanceof Failure)) e.printStackTrace();
        }
    }

    static Connection connect(int port, String options) throws SQLException {
        return DriverManager.getConnection("jdbc:mariadb://" + HOST + ":" + port
            + "/sluice_test?user=app&password=app&connectTimeout=5000&socketTimeout=60000"
            + (options.isEmpty() ? "" : "&" + options));
    }

    static void exec(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    static long status(int port, String variable) throws SQLException {
        // Text protocol, no server-side statement: reading the counter does not move it.
        try (Connection c = connect(port, "useServerPrepStmts=false");
             Statement s = c.createStatement();
             ResultSet rs = s.executeQuery("SHOW GLOBAL STATUS LIKE '" + variable + "'")) {
            check(rs.next(), "no status variable " + variable);
            return rs.getLong(2);
        }
    }

    static final String[] COUNTERS = {"Com_stmt_execute", "Com_insert", "Com_stmt_prepare"};

    /** {server/counter: value}, read directly from each server. */
    static Map<String, Long> counters() throws SQLException {
        Map<String, Long> out = new LinkedHashMap<>();
        int[] ports = {PRIMARY_PORT, REPLICA1_PORT, REPLICA2_PORT};
        String[] names = {"primary", "replica1", "replica2"};
        for (int i = 0; i < ports.length; i++)
            for (String v : COUNTERS) out.put(names[i] + "/" + v, status(ports[i], v));
        return out;
    }

    static Map<String, Long> delta(Map<String, Long> before, Map<String, Long> after) {
        Map<String, Long> out = new LinkedHashMap<>();
        for (String k : before.keySet()) out.put(k, after.get(k) - before.get(k));
        return out;
    }

    static void resetTable(String table) throws SQLException {
        try (Connection d = connect(PRIMARY_PORT, "")) {
            exec(d, "DROP TABLE IF EXISTS " + table);
            exec(d, "CREATE TABLE " + table + " (id INT PRIMARY KEY, v VARCHAR(32), n BIGINT) ENGINE=InnoDB");
        }
    }

    /** The 1,000-row batch on PORT; returns the counter deltas it caused. */
    static Map<String, Long> batch(int port, String options, String table) throws Exception {
        resetTable(table);
        Map<String, Long> before;
        int[] result;
        try (Connection c = connect(port, options)) {
            exec(c, "SELECT 1");                       // log-in done before counting
            before = counters();
            try (PreparedStatement p = c.prepareStatement(
                     "INSERT INTO " + table + " (id, v, n) VALUES (?, ?, ?)")) {
                for (int i = 1; i <= ROWS; i++) {
                    p.setInt(1, i);
                    p.setString(2, "bulk-" + i);
                    p.setLong(3, (long) i * 1_000_003L);
                    p.addBatch();
                }
                result = p.executeBatch();
            }
            Map<String, Long> d = delta(before, counters());
            eq(result.length, ROWS, "executeBatch() result count");
            // The session goes on after the batch.
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT 'alive'")) {
                check(rs.next(), "no row for SELECT 'alive'");
                eq(rs.getString(1), "alive", "the session after the batch");
            }
            // The rows, read directly on the primary.
            try (Connection direct = connect(PRIMARY_PORT, "");
                 Statement s = direct.createStatement();
                 ResultSet rs = s.executeQuery("SELECT COUNT(*), SUM(id), SUM(n), "
                     + "SUM(v = CONCAT('bulk-', id)) FROM " + table)) {
                check(rs.next(), "no row for the count");
                eq(rs.getLong(1), (long) ROWS, "rows on the primary");
                eq(rs.getLong(2), (long) ROWS * (ROWS + 1) / 2, "SUM(id) on the primary");
                eq(rs.getLong(3), (long) ROWS * (ROWS + 1) / 2 * 1_000_003L, "SUM(n) on the primary");
                eq(rs.getLong(4), (long) ROWS, "rows whose v matches their id");
            }
            System.out.println("     " + (port == PRIMARY_PORT ? "directly" : "through Sluice")
                               + " [" + options + "]: counter deltas " + d
                               + ", executeBatch()[0] = " + result[0]);
            return d;
        } finally {
            try (Connection d = connect(PRIMARY_PORT, "")) {
                exec(d, "DROP TABLE IF EXISTS " + table);
            }
        }
    }

    static void expectBulk(Map<String, Long> d, String where) {
        long exec = d.get("primary/Com_stmt_execute");
        long insert = d.get("primary/Com_insert");
        check(exec >= 1 && exec <= BULK_MAX, where + ": the primary's Com_stmt_execute grew by " + exec
              + " for a " + ROWS + "-row batch (bulk execution: 1 to " + BULK_MAX + "; " + ROWS
              + " means one execute per row, 0 means no prepared execution on the primary)");
        check(insert >= 1 && insert <= BULK_MAX, where + ": the primary's Com_insert grew by " + insert
              + " (bulk execution: 1 to " + BULK_MAX + ")");
    }

    static void expectNotOnReplicas(Map<String, Long> d, String where) {
        eq(d.get("replica1/Com_stmt_execute"), 0L, where + ": replica1's Com_stmt_execute");
        eq(d.get("replica2/Com_stmt_execute"), 0L, where + ": replica2's Com_stmt_execute");
    }

    public static void main(String[] args) throws Exception {
        run("directly: a useBulkStmts batch is bulk-executed (what the primary's counters show)", () -> {
            Map<String, Long> d = batch(PRIMARY_PORT, "useBulkStmts=true", "diff_bulk_direct");
            expectBulk(d, "directly");
        });
        run("through Sluice: useBulkStmts batch, client-side prepared statements", () -> {
            Map<String, Long> d = batch(PORT, "useBulkStmts=true", "diff_bulk_client");
            expectBulk(d, "through Sluice");
            expectNotOnReplicas(d, "through Sluice");
        });
        run("through Sluice: useBulkStmts batch, server-side prepared statements", () -> {
            Map<String, Long> d = batch(PORT, "useBulkStmts=true&useServerPrepStmts=true", "diff_bulk_server");
            expectBulk(d, "through Sluice");
            expectNotOnReplicas(d, "through Sluice");
        });
        run("through Sluice: useBulkStmts batch inside a transaction, rolled back", () -> {
            resetTable("diff_bulk_trx");
            try (Connection c = connect(PORT, "useBulkStmts=true")) {
                c.setAutoCommit(false);
                try (PreparedStatement p = c.prepareStatement(
                         "INSERT INTO diff_bulk_trx (id, v, n) VALUES (?, ?, ?)")) {
                    for (int i = 1; i <= ROWS; i++) {
                        p.setInt(1, i);
                        p.setString(2, "trx-" + i);
                        p.setLong(3, i);
                        p.addBatch();
                    }
                    eq(p.executeBatch().length, ROWS, "executeBatch() result count");
                }
                try (Statement s = c.createStatement();
                     ResultSet rs = s.executeQuery("SELECT COUNT(*) FROM diff_bulk_trx")) {
                    check(rs.next(), "no row for the count");
                    eq(rs.getLong(1), (long) ROWS, "rows seen inside the transaction");
                }
                c.rollback();
                c.setAutoCommit(true);
            }
            try (Connection d = connect(PRIMARY_PORT, "");
                 Statement s = d.createStatement();
                 ResultSet rs = s.executeQuery("SELECT COUNT(*) FROM diff_bulk_trx")) {
                check(rs.next(), "no row for the count");
                eq(rs.getLong(1), 0L, "rows on the primary after ROLLBACK");
            } finally {
                try (Connection d = connect(PRIMARY_PORT, "")) {
                    exec(d, "DROP TABLE IF EXISTS diff_bulk_trx");
                }
            }
        });
        if (!failures.isEmpty()) {
            System.err.println("\n" + failures.size() + " of " + checks + " checks failed: "
                               + String.join(", ", failures));
            System.exit(1);
        }
        System.out.println("all " + checks + " checks passed");
    }
}
