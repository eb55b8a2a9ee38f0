// JtdsCursors: jTDS (libjtds-java) server cursors, for tests/integration/tds_cursors.py.
//
// Usage: java -cp jtds.jar:DIR JtdsCursors PORT TABLE PAUSE_FILE|- [FETCH_SIZE]
// One session (useCursors=true) on 127.0.0.1:PORT opens two scrollable (TYPE_SCROLL_INSENSITIVE,
// so sp_cursoropen with scrollopt STATIC) cursors over TABLE and moves them: first, next, absolute,
// last, previous, relative. Between two moves it waits until PAUSE_FILE.go exists, after
// creating PAUSE_FILE (so the test can run other sessions then). Each step prints one JSON line
// {"step": ..., "row": [id, name] or null} or {"step": ..., "error": {"code": N, "message": M}};
// after the first cursor is closed, a move on it and a plain query show what the session does
// next. Nothing is judged here: tds_cursors.py compares.
import java.io.File;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

public class JtdsCursors {
    static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof Number) return v.toString();
        StringBuilder b = new StringBuilder("\"");
        for (char c : v.toString().toCharArray()) {
            if (c == '"' || c == '\\')
                b.append('\\').append(c);
            else if (c < 0x20 || c > 0x7e)
                b.append(String.format("\\u%04x", (int)c));
            else
                b.append(c);
        }
        return b.append('"').toString();
    }

    interface Move {
        boolean run() throws SQLException;
    }

    static void step(String name, ResultSet rs, Move m) {
        StringBuilder out = new StringBuilder("{\"step\":" + json(name));
        try {
            if (m.run())
                out.append(",\"row\":[")
                    .append(json(rs.getObject(1)))
                    .append(',')
                    .append(json(rs.getObject(2)))
                    .append(']')
                    .append(",\"columns\":")
                    .append(rs.getMetaData().getColumnCount());
            else
                out.append(",\"row\":null");
        } catch (SQLException e) {
            out.append(",\"error\":{\"code\":")
                .append(e.getErrorCode())
                .append(",\"message\":")
                .append(json(e.getMessage()))
                .append('}');
        }
        System.out.println(out.append('}'));
        System.out.flush();
    }

    // Lets the test run other sessions between two fetches of a cursor.
    static void pause(String file, int n) throws Exception {
        if (file.equals("-")) return;
        File go = new File(file + "." + n + ".go");
        new File(file + "." + n).createNewFile();
        for (int i = 0; i < 600 && !go.exists(); i++)
            Thread.sleep(50);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:jtds:sqlserver://127.0.0.1:" + args[0] +
                     "/sluice;useCursors=true;loginTimeout=5;socketTimeout=30;appName=JtdsCursors";
        String sql = "SELECT id, name FROM " + args[1] + " ORDER BY id";
        String pause = args[2];
        Class.forName("net.sourceforge.jtds.jdbc.Driver"); // jTDS 1.3.1 has no service entry
        try (Connection c = DriverManager.getConnection(url, "app", "app")) {
            Statement s1 =
                c.createStatement(ResultSet.TYPE_SCROLL_INSENSITIVE, ResultSet.CONCUR_READ_ONLY);
            Statement s2 =
                c.createStatement(ResultSet.TYPE_SCROLL_INSENSITIVE, ResultSet.CONCUR_READ_ONLY);
            if (args.length > 3) { // a small fetch buffer: more sp_cursorfetch calls
                s1.setFetchSize(Integer.parseInt(args[3]));
                s2.setFetchSize(Integer.parseInt(args[3]));
            }
            final ResultSet a = s1.executeQuery(sql);
            final ResultSet b = s2.executeQuery(sql);
            System.out.println("{\"step\":\"class\",\"value\":" + json(a.getClass().getName()) +
                               "}");
            step("a.first", a, a::first);
            pause(pause, 1);
            step("a.next", a, a::next);
            step("b.absolute(7)", b, () -> b.absolute(7));
            pause(pause, 2);
            step("a.next", a, a::next);
            step("a.absolute(25)", a, () -> a.absolute(25));
            step("b.next", b, b::next);
            pause(pause, 3);
            step("a.last", a, a::last);
            step("a.previous", a, a::previous);
            step("a.relative(-10)", a, () -> a.relative(-10));
            step("a.absolute(-2)", a, () -> a.absolute(-2));
            step("b.previous", b, b::previous);
            step("a.absolute(51)", a, () -> a.absolute(51));
            a.close();
            step("a.next after close", a, a::next);
            step("b.first", b, b::first);
            b.close();
            try (ResultSet r =
                     c.createStatement().executeQuery("SELECT COUNT(*), 7 FROM " + args[1])) {
                step("plain query after close", r, r::next);
            }
        } catch (SQLException e) {
            System.out.println("{\"step\":\"session\",\"error\":{\"code\":" + e.getErrorCode() +
                               ",\"message\":" + json(e.getMessage()) + "}}");
        }
    }
}
