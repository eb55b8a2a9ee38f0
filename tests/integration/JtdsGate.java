// JtdsGate: jTDS (libjtds-java) against the TDS test server, for tests/integration/tds_gate.py.
//
// Usage: java -cp jtds.jar:DIR JtdsGate SPEC.properties
// The spec (UTF-8 properties, written by tds_gate.py) lists runs: run.N.label, .port,
// .secondary_port, .ssl (off, request, require), .tds (jTDS's name: 8.0 is TDS 7.1) and the SQL of
// the session. For each run one JSON line is printed with what the server answered; tds_gate.py
// compares it with the values it chose. Nothing is judged here, so the comparison lives in one
// place.
//
// Optional keys (tests/integration/tds_clients.py, the same sessions through Sluice): .tx_where,
// a query run inside the committed transaction; .settle_ms, a pause once the rows reached the
// secondary (Sluice may send the next read to either secondary); .many_sql (one int parameter),
// .many_n, .many_write and .many_plain: a PreparedStatement executed many_n times in the second
// session, each execution followed by the write (its "{i}" replaced) and the plain query. Each
// run's output has t0_us and t1_us, the wall clock (microseconds) around it, for the packet
// capture.
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class JtdsGate {
    static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof Number) return v.toString();
        if (v instanceof List) {
            StringBuilder b = new StringBuilder("[");
            for (Object x : (List<?>)v) {
                if (b.length() > 1) b.append(',');
                b.append(json(x));
            }
            return b.append(']').toString();
        }
        String s = v.toString();
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\')
                b.append('\\').append(c);
            else if (c < 0x20 || c > 0x7e)
                b.append(String.format("\\u%04x", (int)c));
            else
                b.append(c);
        }
        return b.append('"').toString();
    }

    static List<Object> rows(ResultSet rs) throws SQLException {
        List<Object> out = new ArrayList<>();
        ResultSetMetaData md = rs.getMetaData();
        while (rs.next()) {
            List<Object> row = new ArrayList<>();
            for (int i = 1; i <= md.getColumnCount(); i++)
                row.add(rs.getObject(i));
            out.add(row);
        }
        rs.close();
        return out;
    }

    static List<Object> query(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            return rows(st.executeQuery(sql));
        }
    }

    static void exec(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }

    static String error(SQLException e) {
        return "{\"code\":" + e.getErrorCode() + ",\"message\":" + json(e.getMessage()) + "}";
    }

    static Connection connect(Properties spec, String p, String port, String password)
        throws SQLException {
        String url = "jdbc:jtds:sqlserver://127.0.0.1:" + port +
                     "/sluice;ssl=" + spec.getProperty(p + "ssl") +
                     ";tds=" + spec.getProperty(p + "tds") +
                     ";loginTimeout=5;socketTimeout=30;appName=JtdsGate";
        return DriverManager.getConnection(url, "app", password);
    }

    static String run(Properties spec, String p) {
        final long t0 = micros();
        StringBuilder out = new StringBuilder("{\"label\":" + json(spec.getProperty(p + "label")));
        out.append(",\"t0_us\":").append(t0);
        out.append(body(spec, p));
        return out.append(",\"t1_us\":").append(micros()).append('}').toString();
    }

    // Sessions follow each other closely: milliseconds would not tell them apart.
    static long micros() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1000000L + now.getNano() / 1000;
    }

    static String body(Properties spec, String p) {
        StringBuilder out = new StringBuilder();
        String port = spec.getProperty(p + "port");
        Connection c;
        try {
            c = connect(spec, p, port, "app");
        } catch (SQLException e) {
            return out.append(",\"connect_error\":").append(error(e)).toString();
        }
        try {
            exec(c, spec.getProperty(p + "create"));
            exec(c, spec.getProperty(p + "insert"));
            out.append(",\"rows\":").append(json(query(c, spec.getProperty(p + "select"))));
            // PreparedStatement: jTDS's default prepareSQL=3 goes through sp_prepare/sp_execute.
            try (PreparedStatement ps = c.prepareStatement(spec.getProperty(p + "param_sql_q"))) {
                ps.setString(1, spec.getProperty(p + "param_s"));
                ps.setLong(2, Long.parseLong(spec.getProperty(p + "param_n")));
                out.append(",\"param_rows\":").append(json(rows(ps.executeQuery())));
                // Twice: the second execution reuses the prepared handle.
                out.append(",\"param_rows2\":").append(json(rows(ps.executeQuery())));
            }
            c.setAutoCommit(false);
            exec(c, spec.getProperty(p + "tx_rollback"));
            c.rollback();
            exec(c, spec.getProperty(p + "tx_commit"));
            if (spec.getProperty(p + "tx_where") != null)
                out.append(",\"tx_where\":")
                    .append(json(query(c, spec.getProperty(p + "tx_where"))));
            c.commit();
            c.setAutoCommit(true);
            out.append(",\"tx\":").append(json(query(c, spec.getProperty(p + "tx_check"))));
            out.append(",\"env\":").append(json(query(c, spec.getProperty(p + "env"))));
        } catch (SQLException e) {
            out.append(",\"error\":").append(error(e));
        } finally {
            try {
                c.close();
            } catch (SQLException e) {
                out.append(",\"close_error\":").append(error(e));
            }
        }
        try {
            connect(spec, p, port, "wrong").close();
            out.append(",\"bad_password_error\":null");
        } catch (SQLException e) {
            out.append(",\"bad_password_error\":").append(error(e));
        }
        try (Connection s = connect(spec, p, spec.getProperty(p + "secondary_port"), "app")) {
            String table = spec.getProperty(p + "table");
            long deadline = System.currentTimeMillis() + 10000;
            while (System.currentTimeMillis() < deadline) {
                try {
                    if (query(s, "SELECT count(*) FROM " + table + " WHERE id = 11")
                            .toString()
                            .equals("[[1]]"))
                        break;
                } catch (SQLException e) {
                    // 208 until the CREATE TABLE has been replayed
                }
                Thread.sleep(50);
            }
            Thread.sleep(Long.parseLong(spec.getProperty(p + "settle_ms", "0")));
            out.append(",\"secondary_rows\":")
                .append(json(query(s, spec.getProperty(p + "select"))));
            out.append(",\"secondary_env\":").append(json(query(s, spec.getProperty(p + "env"))));
            if (spec.getProperty(p + "many_sql") != null) many(spec, p, s, out);
            try {
                exec(s, spec.getProperty(p + "secondary_write"));
                out.append(",\"secondary_write_error\":null");
            } catch (SQLException e) {
                out.append(",\"secondary_write_error\":").append(error(e));
            }
        } catch (SQLException e) {
            out.append(",\"secondary_error\":").append(error(e));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return out.toString();
    }

    // jTDS prepares on the first execution (sp_prepare, then sp_execute on the handle).
    static void many(Properties spec, String p, Connection s, StringBuilder out)
        throws SQLException {
        List<Object> runs = new ArrayList<>();
        List<Object> plain = new ArrayList<>();
        int n = Integer.parseInt(spec.getProperty(p + "many_n"));
        try (PreparedStatement ps = s.prepareStatement(spec.getProperty(p + "many_sql"))) {
            for (int i = 0; i < n; i++) {
                ps.setInt(1, i);
                runs.add(rows(ps.executeQuery()));
                exec(s, spec.getProperty(p + "many_write").replace("{i}", Integer.toString(i)));
                plain.add(query(s, spec.getProperty(p + "many_plain")));
            }
        }
        out.append(",\"many_runs\":").append(json(runs));
        out.append(",\"many_plain\":").append(json(plain));
    }

    public static void main(String[] args) throws Exception {
        Class.forName("net.sourceforge.jtds.jdbc.Driver");
        Properties spec = new Properties();
        try (InputStreamReader r =
                 new InputStreamReader(new FileInputStream(args[0]), StandardCharsets.UTF_8)) {
            spec.load(r);
        }
        int n = Integer.parseInt(spec.getProperty("runs"));
        for (int i = 0; i < n; i++)
            System.out.println(run(spec, "run." + i + "."));
    }
}
