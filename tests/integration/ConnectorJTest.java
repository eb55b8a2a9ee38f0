// connectorj_client: MariaDB Connector/J (Debian's libmariadb-java, 2.7.x) through Sluice.
//
// Both with client-side (useServerPrepStmts=false, the 2.x default) and server-side prepared
// statements (COM_STMT_PREPARE/EXECUTE/SEND_LONG_DATA/CLOSE): Statement, PreparedStatement,
// batches, generated keys, a streamed 10k-row result (setFetchSize: Connector/J 2.x has no
// cursor fetch option, it streams), transactions, a 5 MiB BLOB, CallableStatement with OUT
// parameters and a result set, isValid (COM_PING), server errors; then TLS (useSsl +
// serverSslCert = the test CA) and the caching_sha2_password listener.
//
// Compiled and run by connectorj.sh. Environment: SLUICE_HOST, SLUICE_PORT, SLUICE_TLS_PORT,
// SLUICE_SHA2_PORT, SLUICE_PRIMARY_PORT, SLUICE_ADMIN_PORT, SLUICE_CA.

import java.io.ByteArrayInputStream;
import java.math.BigDecimal;
import java.sql.CallableStatement;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.sql.Types;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Random;

public final class ConnectorJTest {
    static final String HOST = env("SLUICE_HOST");
    static final int PORT = Integer.parseInt(env("SLUICE_PORT"));
    static final int TLS_PORT = Integer.parseInt(env("SLUICE_TLS_PORT"));
    static final int SHA2_PORT = Integer.parseInt(env("SLUICE_SHA2_PORT"));
    static final int PRIMARY_PORT = Integer.parseInt(env("SLUICE_PRIMARY_PORT"));
    static final String CA = env("SLUICE_CA");
    static final int ADMIN_PORT = Integer.parseInt(env("SLUICE_ADMIN_PORT"));

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

    static String url(int port, String options) {
        return "jdbc:mariadb://" + HOST + ":" + port + "/sluice_test?user=app&password=app"
               + "&connectTimeout=5000&socketTimeout=60000" + (options.isEmpty() ? "" : "&" + options);
    }

    static long scalarLong(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            check(rs.next(), "no row for " + sql);
            return rs.getLong(1);
        }
    }

    static String scalarString(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            check(rs.next(), "no row for " + sql);
            return rs.getString(1);
        }
    }

    static void exec(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    static long primaryServerId;
    static String primaryVersion;

    /**
     * sluice_client_commands_total{command="NAME"} from the admin /metrics page. A series Sluice
     * has not listed yet (it lists one once the command has been seen) is 0 only when the
     * family's "# TYPE" line is there; a missing family or an unreadable page fails.
     */
    static double commandCount(String name) throws Exception {
        java.net.HttpURLConnection h = (java.net.HttpURLConnection)
            new java.net.URL("http://127.0.0.1:" + ADMIN_PORT + "/metrics").openConnection();
        h.setConnectTimeout(5000);
        h.setReadTimeout(5000);
        String prefix = "sluice_client_commands_total{command=\"" + name + "\"} ";
        boolean family = false;
        try (java.io.BufferedReader r = new java.io.BufferedReader(
                 new java.io.InputStreamReader(h.getInputStream(), java.nio.charset.StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                if (line.startsWith(prefix)) return Double.parseDouble(line.substring(prefix.length()).trim());
                if (line.equals("# TYPE sluice_client_commands_total counter")) family = true;
            }
        }
        if (!family) throw new Failure("sluice_client_commands_total is not on /metrics");
        return 0;
    }

    /** Runs a suite and checks (from Sluice's metrics) whether it used COM_STMT_* commands. */
    static void suiteWithProtocolCheck(String mode, String options, boolean serverPrepare) throws Exception {
        double prepare0 = commandCount("stmt_prepare"), execute0 = commandCount("stmt_execute");
        double longData0 = commandCount("stmt_send_long_data");
        suite(mode, options);
        run("[" + mode + "] protocol used, as counted by sluice", () -> {
            double prepared = commandCount("stmt_prepare") - prepare0;
            double executed = commandCount("stmt_execute") - execute0;
            double longData = commandCount("stmt_send_long_data") - longData0;
            if (serverPrepare) {
                check(prepared >= 10, "expected >= 10 COM_STMT_PREPARE, sluice counted " + prepared);
                check(executed >= 500, "expected >= 500 COM_STMT_EXECUTE (the batch), sluice counted " + executed);
                check(longData >= 1, "expected COM_STMT_SEND_LONG_DATA for setBinaryStream, sluice counted " + longData);
            } else {
                // (the CallableStatement with OUT parameters is prepared on the server anyway)
                check(prepared <= 2, "COM_STMT_PREPARE with client-side prepare: " + prepared);
                check(executed <= 2, "COM_STMT_EXECUTE with client-side prepare (the batch must be text): " + executed);
            }
        });
    }

    static void suite(String mode, String options) {
        final String t = "cj_" + (options.contains("useServerPrepStmts=true") ? "ps" : "text");
        String p = "[" + mode + "] ";

        run(p + "Statement: routing, DDL, DML", () -> {
            try (Connection c = DriverManager.getConnection(url(PORT, options))) {
                long readId = scalarLong(c, "SELECT @@server_id");
                // An autocommit read goes to a replica (read/write splitting): server_id 2 or 3.
                check(readId == 2 || readId == 3, "@@server_id of an autocommit read through sluice: " + readId);
                exec(c, "DROP TABLE IF EXISTS " + t);
                exec(c, "CREATE TABLE " + t + " (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64),"
                        + " amount DECIMAL(10,2), created DATETIME(3), data LONGBLOB) ENGINE=InnoDB");
                try (Statement s = c.createStatement()) {
                    eq(s.executeUpdate("INSERT INTO " + t + " (name, amount) VALUES ('a', 1.25), ('b', NULL)"),
                       2, "rows inserted by Statement");
                    eq(s.executeUpdate("UPDATE " + t + " SET amount = 9.5 WHERE amount IS NULL"), 1, "rows updated");
                    try (ResultSet rs = s.executeQuery("SELECT name, amount FROM " + t + " ORDER BY id")) {
                        check(rs.next(), "first row");
                        eq(rs.getString(1), "a", "name 1");
                        eq(rs.getBigDecimal(2), new BigDecimal("1.25"), "amount 1");
                        check(rs.next(), "second row");
                        eq(rs.getBigDecimal(2), new BigDecimal("9.50"), "amount 2");
                        check(!rs.next(), "only two rows");
                    }
                }
            }
        });

        run(p + "PreparedStatement with parameters, reused, getGeneratedKeys", () -> {
            try (Connection c = DriverManager.getConnection(url(PORT, options))) {
                exec(c, "TRUNCATE TABLE " + t);
                Timestamp ts = Timestamp.valueOf("2024-02-29 23:59:58.125");
                List<Long> keys = new ArrayList<>();
                try (PreparedStatement ps = c.prepareStatement(
                        "INSERT INTO " + t + " (name, amount, created) VALUES (?, ?, ?)",
                        Statement.RETURN_GENERATED_KEYS)) {
                    String[] names = {"O'Brien", "say \"hi\"", "back\\slash", "emoji 😀", null};
                    for (int i = 0; i < names.length; i++) {
                        ps.setString(1, names[i]);
                        ps.setBigDecimal(2, new BigDecimal(i + ".50"));
                        ps.setTimestamp(3, ts);
                        eq(ps.executeUpdate(), 1, "executeUpdate #" + i);
                        try (ResultSet k = ps.getGeneratedKeys()) {
                            check(k.next(), "generated key #" + i);
                            keys.add(k.getLong(1));
                        }
                    }
                    for (int i = 1; i < keys.size(); i++)
                        eq(keys.get(i), keys.get(0) + i, "consecutive generated keys");
                    try (PreparedStatement q = c.prepareStatement(
                            "SELECT id, name, amount, created FROM " + t + " WHERE id >= ? AND (name = ? OR ? IS NULL) ORDER BY id")) {
                        for (int i = 0; i < names.length; i++) {
                            q.setLong(1, keys.get(0));
                            q.setString(2, names[i]);
                            q.setString(3, names[i]);
                            try (ResultSet rs = q.executeQuery()) {
                                check(rs.next(), "row for name " + names[i]);
                                if (names[i] != null) {
                                    eq(rs.getLong(1), keys.get(i), "id for " + names[i]);
                                    eq(rs.getString(2), names[i], "name round trip");
                                    eq(rs.getBigDecimal(3), new BigDecimal(i + ".50"), "decimal round trip");
                                    eq(rs.getTimestamp(4), ts, "timestamp round trip");
                                }
                            }
                        }
                    }
                }
                eq(scalarLong(c, "SELECT COUNT(*) FROM " + t + " WHERE name IS NULL"), 1L, "NULL parameter stored as NULL");
            }
        });

        run(p + "batch insert with executeBatch and generated keys", () -> {
            try (Connection c = DriverManager.getConnection(url(PORT, options))) {
                exec(c, "TRUNCATE TABLE " + t);
                int n = 500;
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " (name, amount) VALUES (?, ?)")) {
                    for (int i = 0; i < n; i++) {
                        ps.setString(1, "batch-" + i);
                        ps.setInt(2, i);
                        ps.addBatch();
                    }
                    int[] counts = ps.executeBatch();
                    eq(counts.length, n, "executeBatch result length");
                    for (int v : counts)
                        check(v == 1 || v == Statement.SUCCESS_NO_INFO, "batch count " + v + " in " + Arrays.toString(counts));
                }
                eq(scalarLong(c, "SELECT COUNT(*) FROM " + t), (long) n, "rows after batch");
                eq(scalarLong(c, "SELECT SUM(amount) FROM " + t), (long) n * (n - 1) / 2, "sum after batch");
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " (name) VALUES (?)",
                                                               Statement.RETURN_GENERATED_KEYS)) {
                    for (int i = 0; i < 20; i++) {
                        ps.setString(1, "k" + i);
                        ps.addBatch();
                    }
                    eq(ps.executeBatch().length, 20, "batch with generated keys");
                    List<Long> keys = new ArrayList<>();
                    try (ResultSet k = ps.getGeneratedKeys()) {
                        while (k.next()) keys.add(k.getLong(1));
                    }
                    eq(keys.size(), 20, "generated keys of a batch");
                    eq(scalarLong(c, "SELECT MIN(id) FROM " + t + " WHERE name LIKE 'k%'"), keys.get(0), "first batch key");
                }
                try (Statement s = c.createStatement()) {
                    s.addBatch("UPDATE " + t + " SET amount = amount + 1 WHERE name = 'batch-1'");
                    s.addBatch("UPDATE " + t + " SET amount = amount + 1 WHERE name LIKE 'k%'");
                    s.addBatch("DELETE FROM " + t + " WHERE name = 'batch-2'");
                    eq(Arrays.toString(s.executeBatch()), "[1, 20, 1]", "Statement batch counts");
                }
            }
        });

        run(p + "10k-row result streamed with setFetchSize", () -> {
            try (Connection c = DriverManager.getConnection(url(PORT, options))) {
                for (int fetch : new int[] {0, 100, 1}) {
                    try (PreparedStatement ps = c.prepareStatement(
                            "SELECT seq, CONCAT('r', seq) FROM seq_1_to_10000 WHERE seq > ?")) {
                        ps.setFetchSize(fetch);
                        ps.setInt(1, 0);
                        long count = 0, sum = 0;
                        try (ResultSet rs = ps.executeQuery()) {
                            while (rs.next()) {
                                count++;
                                sum += rs.getLong(1);
                                if (count == 10000) eq(rs.getString(2), "r10000", "last row");
                            }
                        }
                        eq(count, 10000L, "rows with fetch size " + fetch);
                        eq(sum, 10000L * 10001 / 2, "sum with fetch size " + fetch);
                    }
                }
                // Abandon a streamed result after a few rows: the driver must skip the rest.
                try (Statement s = c.createStatement()) {
                    s.setFetchSize(10);
                    try (ResultSet rs = s.executeQuery("SELECT seq FROM seq_1_to_10000")) {
                        for (int i = 1; i <= 5; i++) {
                            check(rs.next(), "streamed row " + i);
                            eq(rs.getLong(1), (long) i, "streamed row value");
                        }
                    }
                }
                eq(scalarString(c, "SELECT 'after streaming'"), "after streaming", "query after an abandoned stream");
            }
        });

        run(p + "transactions: rollback and commit", () -> {
            try (Connection c = DriverManager.getConnection(url(PORT, options));
                 Connection d = DriverManager.getConnection(
                     "jdbc:mariadb://127.0.0.1:" + PRIMARY_PORT + "/sluice_test?user=app&password=app")) {
                exec(c, "TRUNCATE TABLE " + t);
                c.setAutoCommit(false);
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " (name) VALUES (?)")) {
                    ps.setString(1, "rolled back");
                    ps.executeUpdate();
                    eq(scalarLong(c, "SELECT COUNT(*) FROM " + t), 1L, "row visible in the transaction");
                    eq(scalarLong(d, "SELECT COUNT(*) FROM " + t), 0L, "row invisible outside before commit");
                    eq(scalarLong(c, "SELECT @@server_id"), primaryServerId, "@@server_id inside a transaction");
                    c.rollback();
                    eq(scalarLong(c, "SELECT COUNT(*) FROM " + t), 0L, "no row after rollback");
                    ps.setString(1, "committed");
                    ps.executeUpdate();
                    c.commit();
                }
                c.setAutoCommit(true);
                eq(scalarString(d, "SELECT GROUP_CONCAT(name) FROM " + t), "committed", "committed row on the primary");
            }
        });

        run(p + "5 MiB BLOB with setBytes and setBinaryStream", () -> {
            byte[] data = new byte[5 * 1024 * 1024];
            new Random(42).nextBytes(data);
            try (Connection c = DriverManager.getConnection(url(PORT, options))) {
                exec(c, "TRUNCATE TABLE " + t);
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " (id, data) VALUES (?, ?)")) {
                    ps.setLong(1, 1);
                    ps.setBytes(2, data);
                    eq(ps.executeUpdate(), 1, "insert blob with setBytes");
                    ps.setLong(1, 2);
                    ps.setBinaryStream(2, new ByteArrayInputStream(data), data.length);
                    eq(ps.executeUpdate(), 1, "insert blob with setBinaryStream");
                }
                try (PreparedStatement ps = c.prepareStatement("SELECT data, LENGTH(data) FROM " + t + " WHERE id = ?")) {
                    for (long id = 1; id <= 2; id++) {
                        ps.setLong(1, id);
                        try (ResultSet rs = ps.executeQuery()) {
                            check(rs.next(), "blob row " + id);
                            eq(rs.getLong(2), (long) data.length, "server-side blob length, row " + id);
                            check(Arrays.equals(rs.getBytes(1), data), "blob bytes differ, row " + id);
                        }
                    }
                }
            }
        });

        run(p + "CallableStatement with IN/OUT/INOUT and a result set", () -> {
            try (Connection c = DriverManager.getConnection(url(PORT, options))) {
                exec(c, "DROP PROCEDURE IF EXISTS " + t + "_proc");
                exec(c, "CREATE PROCEDURE " + t + "_proc(IN a INT, OUT b INT, INOUT s VARCHAR(32)) BEGIN "
                        + "SET b = a * 2; SET s = CONCAT(s, '-', a); SELECT seq FROM seq_1_to_3; END");
                try (CallableStatement cs = c.prepareCall("{call " + t + "_proc(?, ?, ?)}")) {
                    cs.setInt(1, 21);
                    cs.registerOutParameter(2, Types.INTEGER);
                    cs.setString(3, "x");
                    cs.registerOutParameter(3, Types.VARCHAR);
                    check(cs.execute(), "CALL returns a result set first");
                    long sum = 0;
                    try (ResultSet rs = cs.getResultSet()) {
                        while (rs.next()) sum += rs.getLong(1);
                    }
                    eq(sum, 6L, "procedure result set");
                    eq(cs.getInt(2), 42, "OUT parameter");
                    eq(cs.getString(3), "x-21", "INOUT parameter");
                }
                eq(scalarString(c, "SELECT 'after call'"), "after call", "query after CALL");
                exec(c, "DROP PROCEDURE " + t + "_proc");
            }
        });

        run(p + "isValid (COM_PING), server errors, metadata", () -> {
            try (Connection c = DriverManager.getConnection(url(PORT, options))) {
                check(c.isValid(2), "isValid");
                try (PreparedStatement ps = c.prepareStatement("SELECT * FROM no_such_table_cj WHERE a = ?")) {
                    ps.setInt(1, 1);
                    ps.executeQuery();
                    throw new Failure("SELECT from a missing table did not fail");
                } catch (SQLException e) {
                    eq(e.getErrorCode(), 1146, "error code of a missing table (" + e.getMessage() + ")");
                    eq(e.getSQLState(), "42S02", "SQLState of a missing table");
                }
                check(c.isValid(2), "isValid after an error");
                DatabaseMetaData md = c.getMetaData();
                eq(md.getDatabaseProductVersion(), primaryVersion,
                   "server version through sluice = the primary's, read directly");
                try (ResultSet rs = md.getColumns("sluice_test", null, t, "amount")) {
                    check(rs.next(), "metadata for column amount");
                    eq(rs.getString("TYPE_NAME"), "DECIMAL", "column type from metadata");
                }
                exec(c, "DROP TABLE " + t);
            }
        });
    }

    public static void main(String[] args) throws Exception {
        System.out.println("Connector/J " + new org.mariadb.jdbc.Driver().getMajorVersion() + "."
                           + new org.mariadb.jdbc.Driver().getMinorVersion()
                           + ", Java " + System.getProperty("java.version"));
        try (Connection d = DriverManager.getConnection(
                 "jdbc:mariadb://127.0.0.1:" + PRIMARY_PORT + "/?user=app&password=app")) {
            primaryServerId = scalarLong(d, "SELECT @@server_id");
            primaryVersion = d.getMetaData().getDatabaseProductVersion();
        } catch (SQLException e) {
            System.err.println("FAIL - cannot reach the primary on " + PRIMARY_PORT + ": " + e);
            System.exit(1);
        }

        suiteWithProtocolCheck("client-side prepare", "useServerPrepStmts=false", false);
        suiteWithProtocolCheck("server-side prepare", "useServerPrepStmts=true", true);

        run("TLS on the require_tls port (useSsl, serverSslCert = test CA)", () -> {
            try (Connection c = DriverManager.getConnection(
                     url(TLS_PORT, "useSsl=true&serverSslCert=" + CA + "&useServerPrepStmts=true"))) {
                long readId = scalarLong(c, "SELECT @@server_id");
                check(readId == 2 || readId == 3, "@@server_id of an autocommit read over TLS: " + readId);
                try (PreparedStatement ps = c.prepareStatement("SELECT ? * 2")) {
                    ps.setInt(1, 21);
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next(), "row");
                        eq(rs.getInt(1), 42, "prepared statement over TLS");
                    }
                }
                check(c.isValid(2), "isValid over TLS");
            }
        });

        run("require_tls port refuses a plain connection with 3159", () -> {
            try (Connection c = DriverManager.getConnection(url(TLS_PORT, ""))) {
                throw new Failure("plain connection accepted on the require_tls port");
            } catch (SQLException e) {
                eq(e.getErrorCode(), 3159, "error code (" + e.getMessage() + ")");
            }
        });

        run("caching_sha2_password listener, with and without TLS", () -> {
            try (Connection c = DriverManager.getConnection(url(SHA2_PORT, ""))) {
                eq(scalarString(c, "SELECT CURRENT_USER()"), "app@%", "plain login on the sha2 port");
            }
            try (Connection c = DriverManager.getConnection(url(SHA2_PORT, "useSsl=true&serverSslCert=" + CA))) {
                eq(scalarString(c, "SELECT 'sha2 tls'"), "sha2 tls", "TLS login on the sha2 port");
            }
            try (Connection c = DriverManager.getConnection(
                     "jdbc:mariadb://" + HOST + ":" + SHA2_PORT + "/?user=app&password=wrong")) {
                throw new Failure("wrong password accepted on the sha2 port");
            } catch (SQLException e) {
                eq(e.getErrorCode(), 1045, "wrong password on the sha2 port (" + e.getMessage() + ")");
            }
        });

        if (!failures.isEmpty()) {
            System.err.println(failures.size() + " of " + checks + " checks failed: " + failures);
            System.exit(1);
        }
        System.out.println("all " + checks + " checks passed");
    }
}
