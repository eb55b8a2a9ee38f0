// tables_read() / tables_written(): statement in, table names and completeness out.

#include "sluice/router/tables.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>

using namespace sluice::router;

namespace {

/// The tables as "schema.table" (or "table"), in order, joined by '|'.
std::string render(const TableRefs& r) {
    std::string s;
    for (const auto& t : r.tables) {
        if (!s.empty()) s += '|';
        if (!t.schema.empty()) s += t.schema + '.';
        s += t.table;
    }
    return s;
}

struct Row {
    std::string_view sql;
    std::string_view tables; ///< render() of the expected result
    bool complete;
};

constexpr bool ok = true, unsure = false;

void check_reads(std::initializer_list<Row> rows, SqlMode mode = {}) {
    for (const auto& row : rows) {
        INFO("sql: " << row.sql);
        const TableRefs r = tables_read(row.sql, mode);
        CHECK(render(r) == row.tables);
        CHECK(r.complete == row.complete);
    }
}

void check_writes(std::initializer_list<Row> rows, SqlMode mode = {}) {
    for (const auto& row : rows) {
        INFO("sql: " << row.sql);
        const TableRefs r = tables_written(row.sql, mode);
        CHECK(render(r) == row.tables);
        CHECK(r.complete == row.complete);
    }
}

} // namespace

TEST_CASE("reads without tables are complete and empty", "[router][tables]") {
    check_reads({
        {"SELECT 1", "", ok},
        {"SELECT 1 FROM DUAL", "", ok},
        {"select now() from dual where 1 = 1", "", ok},
        {"SELECT 1;", "", ok},
        {"SELECT 1 ; ; ", "", ok},
        {"VALUES ROW(1, 2), ROW(3, 4)", "", ok},
        {"VALUES (1, 2)", "", ok},
        {"SELECT 'x FROM y'", "", ok},
        {"SELECT \"FROM y\"", "", ok},
        {"SELECT 1 /* FROM t */", "", ok},
        {"SELECT 1 -- FROM t", "", ok},
        {"SELECT 1 # FROM t", "", ok},
        {"SELECT 1 /*+ FROM t */", "", ok}, // an optimizer hint is a comment
        {"(SELECT 1)", "", ok},
    });
}

TEST_CASE("plain FROM lists, aliases and qualified names", "[router][tables]") {
    check_reads({
        {"SELECT * FROM t", "t", ok},
        {"SELECT * FROM t WHERE id = 1", "t", ok},
        {"select * from T", "t", ok},
        {"SeLeCt * FrOm Db.MyTable", "db.mytable", ok},
        {"SELECT * FROM db.t", "db.t", ok},
        {"SELECT * FROM db . t", "db.t", ok},
        {"SELECT * FROM t AS a", "t", ok},
        {"SELECT * FROM t a", "t", ok},
        {"SELECT * FROM t AS `a b`", "t", ok},
        {"SELECT * FROM t `a`", "t", ok},
        {"SELECT * FROM t data", "t", ok}, // a non-reserved word is an alias
        {"SELECT * FROM t1, t2 AS b, db.t3 c WHERE t1.a = b.a", "t1|t2|db.t3", ok},
        {"SELECT * FROM b.x, a.y, x, b.x, X", "x|a.y|b.x", ok}, // sorted, no duplicates
        {"SELECT t.from, t.select FROM t", "t", ok},            // a name after `.` is no keyword
        {"SELECT * FROM t PARTITION (p0, p1)", "t", ok},
        {"SELECT * FROM t PARTITION (p0) AS a WHERE a.x = 1", "t", ok},
        {"SELECT * FROM t1 FULL JOIN t2", "t1|t2", ok}, // FULL is t1's alias, as in the server
        {"SELECT * FROM t ORDER BY a LIMIT 10 OFFSET 5", "t", ok},
        {"SELECT * FROM t LIMIT ?, ?", "t", ok},
        {"SELECT * FROM t WHERE a = ? AND b IN (?, ?)", "t", ok},
        {"SELECT a INTO @x FROM t", "t", ok},
        {"SELECT a FROM t INTO OUTFILE '/tmp/x' FIELDS TERMINATED BY ','", "t", ok},
        {"SELECT * FROM seq_1_to_10", "seq_1_to_10", ok},
        {"SELECT * FROM `1t`, 1t", "1t", ok},
    });
}

TEST_CASE("quoted names are unquoted and folded to lower case", "[router][tables]") {
    check_reads({
        {"SELECT * FROM `My DB`.`My T`", "my db.my t", ok},
        {"SELECT * FROM `a``b`", "a`b", ok},
        {"SELECT * FROM `db`.t, db.`T`", "db.t", ok},
        {"SELECT * FROM `t`", "t", ok},
        {"SELECT * FROM \"t\"", "", unsure}, // a string without ANSI_QUOTES
        {"SELECT * FROM 't'", "", unsure},
        {"SELECT * FROM `ÄÖ`", "ÄÖ", ok}, // ASCII folding only
    });
    check_reads({{"SELECT * FROM \"S\".\"T\"", "s.t", ok},
                 {"SELECT * FROM \"a\"\"b\"", "a\"b", ok},
                 {"SELECT * FROM `x`, \"y\"", "x|y", ok}},
                SqlMode{.no_backslash_escapes = false, .ansi_quotes = true});
    const TableRefs dotted = tables_read("SELECT * FROM `a.b`.`c.d`", {});
    REQUIRE(dotted.tables.size() == 1);
    CHECK(dotted.tables[0].schema == "a.b");
    CHECK(dotted.tables[0].table == "c.d");
    CHECK(dotted.complete);
}

TEST_CASE("every join form", "[router][tables]") {
    check_reads({
        {"SELECT * FROM t1 JOIN t2 ON t1.a = t2.a", "t1|t2", ok},
        {"SELECT * FROM t1 INNER JOIN t2 ON t1.a = t2.a", "t1|t2", ok},
        {"SELECT * FROM t1 CROSS JOIN t2", "t1|t2", ok},
        {"SELECT * FROM t1 JOIN t2", "t1|t2", ok},
        {"SELECT * FROM t1 LEFT JOIN t2 ON t1.a = t2.a", "t1|t2", ok},
        {"SELECT * FROM t1 LEFT OUTER JOIN t2 ON t1.a = t2.a", "t1|t2", ok},
        {"SELECT * FROM t1 RIGHT JOIN t2 USING (a)", "t1|t2", ok},
        {"SELECT * FROM t1 RIGHT OUTER JOIN t2 USING (a, b)", "t1|t2", ok},
        {"SELECT * FROM t1 NATURAL JOIN t2", "t1|t2", ok},
        {"SELECT * FROM t1 NATURAL INNER JOIN t2", "t1|t2", ok},
        {"SELECT * FROM t1 NATURAL LEFT OUTER JOIN t2", "t1|t2", ok},
        {"SELECT * FROM t1 NATURAL RIGHT JOIN t2", "t1|t2", ok},
        {"SELECT * FROM t1 STRAIGHT_JOIN t2 ON t1.a = t2.a", "t1|t2", ok},
        {"SELECT STRAIGHT_JOIN * FROM t1, t2", "t1|t2", ok},
        {"SELECT * FROM t1 AS a JOIN db.t2 b ON a.x = b.x LEFT JOIN t3 c USING (y) "
         "RIGHT JOIN t4 ON c.z = t4.z WHERE a.q = 1",
         "t1|t3|t4|db.t2", ok},
        {"SELECT * FROM t1 JOIN t2 JOIN t3 ON t2.a = t3.a ON t1.a = t2.a", "t1|t2|t3", ok},
        {"SELECT * FROM t1 JOIN t2 ON (t1.a = t2.a AND t2.b > 1) JOIN t3 ON t3.c = t1.c",
         "t1|t2|t3", ok},
        {"SELECT * FROM t1 JOIN t2 ON LEFT(t1.s, 2) = RIGHT(t2.s, 2) LEFT JOIN t3 ON 1", "t1|t2|t3",
         ok},
        {"SELECT * FROM t1 JOIN t2 ON t1.a = t2.a, t3", "t1|t2|t3", ok},
        {"SELECT * FROM t1 JOIN t2 ON t2.a IN (SELECT a FROM t3) LEFT JOIN t4 ON EXISTS "
         "(SELECT 1 FROM t5 WHERE t5.b = t4.b)",
         "t1|t2|t3|t4|t5", ok},
    });
}

TEST_CASE("parenthesized joins", "[router][tables]") {
    check_reads({
        {"SELECT * FROM (t1 JOIN t2 ON t1.a = t2.a) JOIN t3 USING (b)", "t1|t2|t3", ok},
        {"SELECT * FROM t1 LEFT JOIN (t2, t3) ON t1.a = t2.a AND t1.b = t3.b", "t1|t2|t3", ok},
        {"SELECT * FROM ((t1))", "t1", ok},
        {"SELECT * FROM (t1, (t2 CROSS JOIN (t3 JOIN t4)))", "t1|t2|t3|t4", ok},
        {"SELECT * FROM t1 JOIN (t2 LEFT JOIN t3 ON t2.a = t3.a) ON t1.a = t2.a", "t1|t2|t3", ok},
        {"SELECT * FROM (t1 JOIN t2", "t1|t2", unsure},
        // A derived table first in a parenthesized join reads like a query in parentheses.
        {"SELECT * FROM ((SELECT a FROM t) AS d JOIN u ON d.a = u.a)", "t", unsure},
    });
}

TEST_CASE("index hints", "[router][tables]") {
    check_reads({
        {"SELECT * FROM t USE INDEX (i)", "t", ok},
        {"SELECT * FROM t USE INDEX ()", "t", ok},
        {"SELECT * FROM t FORCE INDEX (PRIMARY) WHERE a = 1", "t", ok},
        {"SELECT * FROM t IGNORE KEY (i1, i2)", "t", ok},
        {"SELECT * FROM t AS a USE INDEX FOR JOIN (i) IGNORE INDEX FOR ORDER BY (j) "
         "FORCE KEY FOR GROUP BY (k), u",
         "t|u", ok},
        {"SELECT * FROM t1 a FORCE INDEX (i) JOIN t2 b USE KEY (j) ON a.x = b.x", "t1|t2", ok},
        {"SELECT * FROM t USE INDEX i", "t", unsure},
    });
}

TEST_CASE("subqueries anywhere are followed", "[router][tables]") {
    check_reads({
        {"SELECT * FROM t WHERE a IN (SELECT b FROM u)", "t|u", ok},
        {"SELECT (SELECT max(x) FROM s) FROM t", "s|t", ok},
        {"SELECT * FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.a = t1.a)", "t1|t2", ok},
        {"SELECT * FROM t1 WHERE NOT EXISTS (SELECT * FROM t2) AND a = (SELECT 1 FROM t3)",
         "t1|t2|t3", ok},
        {"SELECT * FROM t WHERE a > ANY (SELECT b FROM u) OR a < ALL (SELECT c FROM v)", "t|u|v",
         ok},
        {"SELECT * FROM (SELECT a FROM t) AS d", "t", ok},
        {"SELECT * FROM (SELECT a FROM t) d JOIN u ON d.a = u.a", "t|u", ok},
        {"SELECT * FROM (SELECT 1, 2) AS d (a, b)", "", ok},
        {"SELECT * FROM ((SELECT a FROM t) UNION (SELECT a FROM u)) AS d", "t|u", ok},
        {"SELECT * FROM (SELECT * FROM (SELECT * FROM deep) x) y", "deep", ok},
        {"SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.a = t.a) AS l", "t|u", ok},
        {"SELECT * FROM (VALUES ROW(1)) AS v", "", ok},
        {"SELECT * FROM (TABLE t) AS v", "t", ok},
        {"SELECT a, (SELECT COUNT(*) FROM u WHERE u.a = t.a) AS n FROM t HAVING n > "
         "(SELECT 1 FROM v) ORDER BY (SELECT 2 FROM w)",
         "t|u|v|w", ok},
        {"SELECT CASE WHEN a IN (SELECT a FROM u) THEN 1 END FROM t", "t|u", ok},
    });
}

TEST_CASE("set operations, TABLE and parenthesized queries", "[router][tables]") {
    check_reads({
        {"SELECT a FROM t UNION SELECT b FROM u", "t|u", ok},
        {"SELECT a FROM t UNION ALL SELECT b FROM u UNION DISTINCT SELECT c FROM v", "t|u|v", ok},
        {"SELECT a FROM t INTERSECT SELECT a FROM u EXCEPT SELECT a FROM v", "t|u|v", ok},
        {"(SELECT a FROM t) UNION (SELECT b FROM u) ORDER BY 1 LIMIT 3", "t|u", ok},
        {"((SELECT a FROM t))", "t", ok},
        {"TABLE t", "t", ok},
        {"TABLE db.t ORDER BY a LIMIT 1", "db.t", ok},
        {"SELECT * FROM t UNION TABLE u", "t|u", ok},
        {"SELECT * FROM t WHERE a IN (TABLE u)", "t|u", ok},
        {"TABLE ?", "", unsure},
    });
}

TEST_CASE("WITH names are left out where they are in scope", "[router][tables]") {
    check_reads({
        {"WITH c AS (SELECT * FROM t) SELECT * FROM c", "t", ok},
        {"WITH c (x, y) AS (SELECT a, b FROM t) SELECT x FROM c", "t", ok},
        {"WITH c AS (SELECT * FROM t), d AS (SELECT * FROM c JOIN u) SELECT * FROM d", "t|u", ok},
        {"WITH c AS (SELECT * FROM t) SELECT * FROM c WHERE a IN (SELECT a FROM c)", "t", ok},
        {"WITH c AS (SELECT * FROM t) SELECT * FROM c UNION SELECT * FROM c", "t", ok},
        {"WITH c AS (SELECT * FROM t) TABLE c", "t", ok},
        {"WITH `c` AS (SELECT 1) SELECT * FROM c, `c`", "", ok},
        // A plain CTE does not see itself: its body means the table.
        {"WITH c AS (SELECT * FROM c) SELECT * FROM c", "c", ok},
        {"WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) "
         "SELECT * FROM r",
         "", ok},
        {"WITH RECURSIVE r AS (SELECT 1 AS n UNION SELECT n + 1 FROM r) CYCLE n RESTRICT "
         "SELECT * FROM r, t",
         "t", ok},
        {"WITH c AS (SELECT 1) SELECT * FROM db.c", "db.c", ok}, // qualified: a table
        {"WITH c AS (SELECT 1) SELECT * FROM C", "c", ok},       // byte for byte: a table
        {"SELECT * FROM (WITH c AS (SELECT 1) SELECT * FROM c) d, c", "c", ok}, // out of scope
        {"(WITH c AS (SELECT a FROM t) SELECT * FROM c) UNION SELECT * FROM c", "c|t", ok},
        {"SELECT * FROM t WHERE a IN (WITH c AS (SELECT a FROM u) SELECT a FROM c)", "t|u", ok},
        {"SELECT a FROM t GROUP BY a WITH ROLLUP", "t", ok},
        {"WITH c AS (SELECT 1) UPDATE t SET a = 1", "", unsure}, // not a read
        {"WITH c AS SELECT 1", "", unsure},
    });
}

TEST_CASE("FROM inside functions is not a table list", "[router][tables]") {
    check_reads({
        {"SELECT EXTRACT(YEAR FROM d) FROM t", "t", ok},
        {"SELECT SUBSTRING(s FROM 2 FOR 3), TRIM(LEADING 'x' FROM s), TRIM('y' FROM s) FROM t", "t",
         ok},
        {"SELECT EXTRACT(DAY FROM NOW())", "", ok},
        {"SELECT NTH_VALUE(a, 2) FROM FIRST OVER (ORDER BY a) FROM t", "t", ok},
        {"SELECT NTH_VALUE(a, 2) FROM LAST RESPECT NULLS OVER w FROM t WINDOW w AS ()", "t", ok},
        {"SELECT COUNT(*) FROM first", "first", ok}, // tables named first and last
        {"SELECT MAX(a) FROM last AS l", "last", ok},
        {"SELECT (1) FROM first respect", "first", ok},
        {"SELECT ROW_NUMBER() OVER w FROM t WINDOW w AS (PARTITION BY a ORDER BY b)", "t", ok},
        {"SELECT COUNT(*), MAX(a), DATE_FORMAT(d, '%Y'), CAST(a AS DECIMAL(10, 2)), "
         "CONVERT(b, DATETIME(6)), CAST(c AS CHAR(3)), JSON_EXTRACT(j, '$.a'), j->>'$.b', "
         "GROUP_CONCAT(DISTINCT a ORDER BY b SEPARATOR ',') FROM t",
         "t", ok},
        {"SELECT MATCH (a) AGAINST ('x' IN BOOLEAN MODE), CONVERT(s USING utf8mb4) FROM t", "t",
         ok},
    });
}

TEST_CASE("locking and versioned comments", "[router][tables]") {
    check_reads({
        {"SELECT * FROM t FOR UPDATE", "t", ok},
        {"SELECT * FROM t FOR SHARE SKIP LOCKED", "t", ok},
        {"SELECT * FROM t LOCK IN SHARE MODE", "t", ok},
        {"SELECT * FROM t WHERE a = 1 FOR UPDATE NOWAIT", "t", ok},
        {"SELECT * /*!50000 FROM t */", "t", ok}, // a versioned comment is code
        {"SELECT * /*!50000 FROM t */ WHERE 1", "t", ok},
        {"SELECT * FROM t /*!40001 SQL_NO_CACHE */", "t", ok},
        {"SELECT * /*M!100000 FROM t */", "t", ok},
        {"SELECT * FROM t /* , u */ -- , v\n, w # , x", "t|w", ok},
        {"SELECT * FROM t WHERE s = 'a FROM x' AND u = \"JOIN y\"", "t", ok},
    });
}

TEST_CASE("reads the extractor cannot vouch for are incomplete", "[router][tables]") {
    check_reads({
        // Table functions and other things in a table position.
        {"SELECT * FROM JSON_TABLE('[]', '$[*]' COLUMNS (a INT PATH '$')) AS jt", "", unsure},
        {"SELECT * FROM t, JSON_TABLE(t.j, '$[*]' COLUMNS (a INT PATH '$')) AS jt", "t", unsure},
        {"SELECT * FROM t, my_table_function(1)", "t", unsure},
        {"SELECT * FROM { OJ t1 LEFT OUTER JOIN t2 ON t1.a = t2.a }", "", unsure},
        {"SELECT * FROM ?", "", unsure},
        {"SELECT * FROM t, ?", "t", unsure},
        {"SELECT * FROM @t", "", unsure},
        {"SELECT * FROM select", "", unsure},
        {"SELECT * FROM", "", unsure},
        {"SELECT * FROM t1 JOIN", "t1", unsure},
        {"SELECT * FROM t1 LEFT t2", "t1", unsure},
        {"SELECT * FROM t x y", "t", unsure},
        {"SELECT * FROM t1 MINUS SELECT * FROM t2", "t1|t2", unsure},
        {"SELECT * FROM t AS", "t", unsure},
        // MariaDB system versioning.
        {"SELECT * FROM t FOR SYSTEM_TIME AS OF TIMESTAMP '2020-01-01 00:00:00'", "t", unsure},
        {"SELECT * FROM t FOR SYSTEM_TIME ALL", "t", unsure},
        {"SELECT * FROM t AS a FOR SYSTEM_TIME ALL", "t", unsure},
        // Stored functions and sequences read tables the text does not name.
        {"SELECT my_func(a) FROM t", "t", unsure},
        {"SELECT db.f(1)", "", unsure},
        {"SELECT `f`(1)", "", unsure},
        {"SELECT * FROM t WHERE a = f()", "t", unsure},
        {"SELECT NEXT VALUE FOR s", "", unsure},
        {"SELECT PREVIOUS VALUE FOR s", "", unsure},
        {"SELECT NEXTVAL(s), 1", "", unsure},
        {"SELECT LASTVAL(s)", "", unsure},
        {"SELECT SETVAL(s, 10)", "", unsure},
        {"SELECT s.nextval", "", unsure},
        {"SELECT a FROM t PROCEDURE ANALYSE()", "t", unsure},
        // Not one read.
        {"SELECT 1; SELECT 2", "", unsure},
        {"SELECT * FROM t; DELETE FROM u", "t", unsure},
        {"INSERT INTO t VALUES (1)", "", unsure},
        {"UPDATE t SET a = 1", "", unsure},
        {"DELETE FROM t", "", unsure},
        {"SHOW TABLES", "", unsure},
        {"EXPLAIN SELECT * FROM t", "", unsure},
        {"DESCRIBE t", "", unsure},
        {"CALL p()", "", unsure},
        {"HANDLER t READ FIRST", "", unsure},
        {"", "", unsure},
        {"   ", "", unsure},
        {"-- just a comment", "", unsure},
        // Unreadable text and unbalanced parentheses.
        {"SELECT * FROM t WHERE a = 'unterminated", "t", unsure},
        {"SELECT * FROM t /* unterminated", "t", unsure},
        {"SELECT * FROM `t", "", unsure},
        {"SELECT (1", "", unsure},
        {"SELECT 1)", "", unsure},
        {"SELECT * FROM t WHERE a IN (SELECT b FROM u", "t|u", unsure},
        {"SELECT * FROM t1 JOIN t2 ON t1.a = t2.a) JOIN t3", "t1|t2", unsure},
    });
}

TEST_CASE("deep nesting is refused, not followed", "[router][tables]") {
    std::string sql = "SELECT ";
    sql.append(5000, '(');
    sql += "1";
    sql.append(5000, ')');
    CHECK_FALSE(tables_read(sql).complete);
    CHECK_FALSE(tables_written("UPDATE t SET a = " + sql.substr(7)).complete);

    std::string from = "SELECT * FROM ";
    from.append(5000, '(');
    from += "t";
    from.append(5000, ')');
    CHECK_FALSE(tables_read(from).complete);

    // 30 levels are fine.
    std::string ok_depth = "SELECT * FROM ";
    for (int i = 0; i < 30; ++i)
        ok_depth += "(SELECT * FROM ";
    ok_depth += "t";
    for (int i = 0; i < 30; ++i)
        ok_depth += ") AS d" + std::to_string(i);
    const TableRefs r = tables_read(ok_depth);
    CHECK(r.complete);
    CHECK(render(r) == "t");
}

TEST_CASE("INSERT and REPLACE report their target and what they read", "[router][tables]") {
    check_writes({
        {"INSERT INTO t VALUES (1)", "t", ok},
        {"INSERT t VALUES (1)", "t", ok},
        {"insert into Db.T(a, b) values(1, 2)", "db.t", ok},
        {"INSERT LOW_PRIORITY IGNORE INTO db.t (a, b) VALUES (1, 2), (3, 4)", "db.t", ok},
        {"INSERT DELAYED INTO t SET a = 1, b = DEFAULT", "t", ok},
        {"INSERT HIGH_PRIORITY t () VALUES ()", "t", ok},
        {"REPLACE INTO t VALUES (1)", "t", ok},
        {"REPLACE LOW_PRIORITY t SET a = 1", "t", ok},
        {"INSERT INTO t PARTITION (p0) (a) VALUES (1)", "t", ok},
        {"INSERT INTO t SELECT * FROM u", "t|u", ok},
        {"INSERT INTO t (a) SELECT a FROM u JOIN v USING (id) WHERE v.b = 1", "t|u|v", ok},
        {"INSERT INTO t (SELECT * FROM u)", "t|u", ok},
        {"INSERT INTO t (a) (SELECT a FROM u) ", "t|u", ok},
        {"INSERT INTO t TABLE u", "t|u", ok},
        {"INSERT INTO t WITH c AS (SELECT * FROM u) SELECT * FROM c", "t|u", ok},
        {"INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a) + 1", "t", ok},
        {"INSERT INTO t SELECT * FROM u ON DUPLICATE KEY UPDATE a = u.a", "t|u", ok},
        {"INSERT INTO t VALUES (1) AS new (a) ON DUPLICATE KEY UPDATE a = new.a", "t", ok},
        {"INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = (SELECT MAX(b) FROM u)", "t|u", ok},
        {"INSERT INTO t VALUES (1) RETURNING id", "t", ok},
        {"INSERT INTO t VALUES (NOW(), UUID(), ?, CONCAT(?, 'x'))", "t", ok},
        {"INSERT INTO `my db`.`my t` VALUES (1)", "my db.my t", ok},
        {"INSERT INTO ? VALUES (1)", "", unsure},
        {"INSERT INTO t VALUES (my_func(1))", "t", unsure},
        {"INSERT INTO t VALUES (NEXT VALUE FOR s)", "t", unsure},
        {"INSERT INTO t VALUES ('unterminated)", "t", unsure},
    });
}

TEST_CASE("UPDATE reports its whole table-reference list", "[router][tables]") {
    check_writes({
        {"UPDATE t SET a = 1", "t", ok},
        {"UPDATE LOW_PRIORITY IGNORE db.t AS x SET x.a = 1 WHERE x.b = 2 ORDER BY c LIMIT 5",
         "db.t", ok},
        {"UPDATE t1, t2 SET t1.a = t2.a WHERE t1.id = t2.id", "t1|t2", ok},
        {"UPDATE t1 JOIN t2 ON t1.id = t2.id LEFT JOIN t3 USING (id) SET t1.a = t3.b", "t1|t2|t3",
         ok},
        {"UPDATE t1 JOIN (SELECT id FROM u) AS d ON d.id = t1.id SET t1.a = 0", "t1|u", ok},
        {"UPDATE t SET a = (SELECT MAX(b) FROM u)", "t|u", ok},
        {"UPDATE t SET a = 1 WHERE id IN (SELECT id FROM (SELECT id FROM t) AS x)", "t", ok},
        {"UPDATE t SET d = EXTRACT(YEAR FROM NOW())", "t", ok},
        {"UPDATE t FOR PORTION OF p FROM '2020-01-01' TO '2021-01-01' SET a = 1", "t", ok},
        {"WITH c AS (SELECT id FROM u) UPDATE t JOIN c ON t.id = c.id SET t.a = 1", "t|u", ok},
        {"UPDATE t SET a = db.f(a)", "t", unsure},
        {"UPDATE t SET a = 1; UPDATE u SET b = 2", "t", unsure},
        {"UPDATE ? SET a = 1", "", unsure},
    });
}

TEST_CASE("DELETE reports the tables it deletes from, never aliases", "[router][tables]") {
    check_writes({
        {"DELETE FROM t WHERE a = 1", "t", ok},
        {"DELETE FROM t", "t", ok},
        {"DELETE LOW_PRIORITY QUICK IGNORE FROM db.t WHERE a = 1 ORDER BY b LIMIT 10", "db.t", ok},
        {"DELETE FROM t AS a WHERE a.x = 1", "t", ok},
        {"DELETE FROM t PARTITION (p1) WHERE a = 1", "t", ok},
        {"DELETE FROM t WHERE a IN (SELECT a FROM u)", "t|u", ok},
        {"DELETE FROM t RETURNING *", "t", ok},
        {"DELETE FROM t FOR PORTION OF p FROM '2020-01-01' TO '2021-01-01'", "t", ok},
        {"DELETE t1, t2 FROM t1 JOIN t2 ON t1.id = t2.id JOIN t3 ON t3.id = t2.id", "t1|t2|t3", ok},
        {"DELETE a1, a2 FROM t1 AS a1 INNER JOIN t2 AS a2 WHERE a1.id = a2.id", "t1|t2", ok},
        {"DELETE t1.* FROM t1, t2 WHERE t1.id = t2.id", "t1|t2", ok},
        {"DELETE db.t1.*, t2 FROM db.t1, t2", "t2|db.t1", ok},
        {"DELETE FROM a1 USING t1 AS a1 JOIN t2 ON a1.id = t2.id", "t1|t2", ok},
        {"DELETE FROM t1.*, t2.* USING t1, t2 WHERE t1.id = t2.id", "t1|t2", ok},
        {"WITH c AS (SELECT id FROM u) DELETE FROM t WHERE id IN (SELECT id FROM c)", "t|u", ok},
        {"WITH c AS (SELECT id FROM u) DELETE t FROM t JOIN c USING (id)", "t|u", ok},
        {"DELETE t1 WHERE a = 1", "t1", unsure},
        {"DELETE FROM t WHERE a = 'x", "t", unsure},
    });
}

TEST_CASE("LOAD DATA and TRUNCATE report their table", "[router][tables]") {
    check_writes({
        {"LOAD DATA INFILE '/tmp/x' INTO TABLE t", "t", ok},
        {"LOAD DATA LOCAL INFILE 'x.csv' REPLACE INTO TABLE db.t CHARACTER SET utf8mb4 FIELDS "
         "TERMINATED BY ',' LINES TERMINATED BY '\\n' IGNORE 1 LINES (a, @b) SET c = UPPER(@b)",
         "db.t", ok},
        {"LOAD DATA LOW_PRIORITY INFILE 'x' IGNORE INTO TABLE t PARTITION (p)", "t", ok},
        {"LOAD DATA CONCURRENT INFILE 'x' INTO TABLE t CHARACTER SET latin1 (a, b)", "t", ok},
        {"LOAD XML LOCAL INFILE 'x.xml' INTO TABLE t ROWS IDENTIFIED BY '<row>'", "t", ok},
        {"LOAD DATA INFILE 'x' INTO TABLE t SET c = (SELECT MAX(a) FROM u)", "t|u", ok},
        {"LOAD DATA INFILE 'x' INTO TABLE t (a) SET b = my_func(a)", "t", unsure},
        {"LOAD INDEX INTO CACHE t", "", unsure},
        {"TRUNCATE TABLE t", "t", ok},
        {"TRUNCATE db.t", "db.t", ok},
        {"TRUNCATE TABLE t NOWAIT", "t", ok},
        {"TRUNCATE TABLE t WAIT 10", "t", ok},
    });
}

TEST_CASE("DDL reports the tables and views it changes", "[router][tables]") {
    check_writes({
        {"ALTER TABLE t ADD COLUMN c INT", "t", ok},
        {"ALTER TABLE t RENAME TO u", "t|u", ok},
        {"ALTER TABLE db.t RENAME AS db2.u", "db.t|db2.u", ok},
        {"ALTER TABLE t RENAME u", "t|u", ok},
        {"ALTER TABLE t ADD c INT, RENAME TO u, ENGINE = InnoDB", "t|u", ok},
        {"ALTER TABLE t RENAME COLUMN a TO b", "t", ok},
        {"ALTER TABLE t RENAME INDEX i TO j, RENAME KEY k TO l", "t", ok},
        {"ALTER ONLINE IGNORE TABLE t ENGINE = InnoDB", "t", ok},
        {"ALTER TABLE IF EXISTS t ADD c INT", "t", ok},
        {"ALTER TABLE t EXCHANGE PARTITION p WITH TABLE u", "t|u", ok},
        {"ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id)", "t", ok},
        {"ALTER TABLE t ADD PARTITION (PARTITION p3 VALUES LESS THAN (2000))", "t", ok},
        {"ALTER ALGORITHM = MERGE VIEW v AS SELECT * FROM t", "v", ok},
        {"ALTER DEFINER = `root`@`localhost` SQL SECURITY INVOKER VIEW db.v AS SELECT 1", "db.v",
         ok},
        {"DROP TABLE t", "t", ok},
        {"DROP TEMPORARY TABLE IF EXISTS t1, db.t2 CASCADE", "t1|db.t2", ok},
        {"DROP TABLE /*!40005 IF EXISTS */ t", "t", ok},
        {"DROP TABLE t1, t2 WAIT 5", "t1|t2", ok},
        {"DROP VIEW IF EXISTS v1, v2 RESTRICT", "v1|v2", ok},
        {"DROP INDEX i ON t", "t", ok},
        {"DROP INDEX IF EXISTS i ON db.t", "db.t", ok},
        {"RENAME TABLE a TO b", "a|b", ok},
        {"RENAME TABLE a TO b, db.c TO db.d", "a|b|db.c|db.d", ok},
        {"RENAME TABLE IF EXISTS a NOWAIT TO b", "a|b", ok},
        {"RENAME TABLE a WAIT 3 TO b", "a|b", ok},
        {"CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10) DEFAULT 'x', d DATETIME(6))", "t", ok},
        {"CREATE TEMPORARY TABLE IF NOT EXISTS db.t (a INT)", "db.t", ok},
        {"CREATE TABLE /*!32312 IF NOT EXISTS*/ t (a INT)", "t", ok},
        {"CREATE OR REPLACE TABLE t AS SELECT * FROM u", "t", ok},
        {"CREATE TABLE t LIKE u", "t", ok},
        {"CREATE TABLE t SELECT 1 AS a", "t", ok},
        {"CREATE VIEW v AS SELECT * FROM t", "v", ok},
        {"CREATE OR REPLACE ALGORITHM = MERGE DEFINER = `root`@`localhost` SQL SECURITY "
         "INVOKER VIEW db.v (a) AS SELECT a FROM t WITH CHECK OPTION",
         "db.v", ok},
        {"CREATE DEFINER = CURRENT_USER VIEW v AS SELECT 1", "v", ok},
        {"CREATE DEFINER = CURRENT_USER() VIEW v AS SELECT 1", "v", ok},
        {"CREATE DEFINER = 'u'@'h' VIEW v AS SELECT 1", "v", ok},
        {"CREATE VIEW IF NOT EXISTS v AS SELECT 1", "v", ok},
        {"CREATE UNIQUE INDEX i ON t (a)", "t", ok},
        {"CREATE INDEX i USING BTREE ON db.t (a, b)", "db.t", ok},
        {"CREATE OR REPLACE INDEX IF NOT EXISTS i ON t (a)", "t", ok},
    });
}

TEST_CASE("writes the extractor cannot vouch for are incomplete", "[router][tables]") {
    check_writes({
        {"CALL p()", "", unsure},
        {"DO 1", "", unsure},
        {"DO my_func()", "", unsure},
        {"CREATE DATABASE d", "", unsure},
        {"DROP DATABASE d", "", unsure},
        {"DROP SCHEMA IF EXISTS d", "", unsure},
        {"ALTER DATABASE d CHARACTER SET utf8mb4", "", unsure},
        {"CREATE SEQUENCE s", "", unsure},
        {"DROP SEQUENCE s", "", unsure},
        {"BEGIN NOT ATOMIC INSERT INTO t VALUES (1); END", "", unsure},
        {"EXECUTE stmt", "", unsure},
        {"EXECUTE IMMEDIATE 'DELETE FROM t'", "", unsure},
        {"PREPARE s FROM 'DELETE FROM t'", "", unsure},
        {"HANDLER t OPEN", "", unsure},
        {"XA START 'x'", "", unsure},
        {"GRANT SELECT ON db.* TO u", "", unsure},
        {"RENAME USER a TO b", "", unsure},
        {"CREATE PROCEDURE p() CREATE TABLE x (a INT)", "", unsure},
        {"CREATE FUNCTION f() RETURNS INT RETURN (SELECT COUNT(*) FROM t)", "", unsure},
        {"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1", "", unsure},
        {"CREATE DEFINER = `u`@`h` TRIGGER tr AFTER DELETE ON t FOR EACH ROW DELETE FROM u", "",
         unsure},
        {"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t", "", unsure},
        {"SET STATEMENT max_statement_time = 1 FOR UPDATE t SET a = 1", "", unsure},
        {"INSERT INTO t VALUES (1); DELETE FROM u", "t", unsure},
        {"SELECT * FROM t", "", unsure},
        {"SELECT my_writing_func()", "", unsure},
        {"WITH c AS (SELECT 1) SELECT * FROM c", "", unsure},
        {"WITH c AS (SELECT 1) INSERT INTO t SELECT * FROM c", "", unsure},
        {"LOCK TABLES t WRITE", "", unsure},
        {"OPTIMIZE TABLE t", "", unsure},
        {"", "", unsure},
        {"DELETE", "", unsure},
        {"INSERT INTO", "", unsure},
        {"DROP TABLE", "", unsure},
        {"RENAME TABLE a b", "a", unsure},
        {"ALTER TABLE", "", unsure},
        {"TRUNCATE TABLE select", "", unsure},
    });
}

TEST_CASE("a trailing semicolon and comments leave a write complete", "[router][tables]") {
    check_writes({
        {"DELETE FROM t;", "t", ok},
        {"/* sluice: primary */ UPDATE t SET a = 1 -- done\n;", "t", ok},
        {"INSERT INTO t /* , u */ VALUES (1) # , v", "t", ok},
        {"/*!40000 ALTER TABLE t DISABLE KEYS */", "t", ok},
        {"DELETE /*!50000 FROM t */", "t", ok},
    });
}

namespace {

bool sorted_unique_lower(const TableRefs& r) {
    for (std::size_t i = 0; i < r.tables.size(); ++i) {
        if (i > 0 && !(r.tables[i - 1] < r.tables[i])) return false;
        for (const std::string* s : {&r.tables[i].schema, &r.tables[i].table}) {
            for (char c : *s) {
                if (c >= 'A' && c <= 'Z') return false;
            }
        }
    }
    return true;
}

} // namespace

TEST_CASE("random token soup never crashes and keeps the result well formed", "[router][tables]") {
    // clang-format off
    static constexpr std::string_view vocab[] = {
        "SELECT", "FROM", "JOIN", "LEFT", "RIGHT", "INNER", "NATURAL", "ON", "USING", "WHERE",
        "WITH", "RECURSIVE", "AS", "TABLE", "VALUES", "UNION", "(", ")", ",", ";", ".", "*", "t",
        "db", "`q t`", "'s'", "\"d\"", "?", "@v", "1", "INSERT", "INTO", "UPDATE", "SET", "DELETE",
        "USE", "INDEX", "FOR", "JOIN", "PARTITION", "LATERAL", "DUAL", "CREATE", "DROP", "ALTER",
        "RENAME", "TO", "LOAD", "DATA", "INFILE", "TRUNCATE", "VIEW", "IF", "EXISTS", "NEXT",
        "VALUE", "f", "JSON_TABLE", "/*!50000", "*/", "/*", "--", "\n", "EXTRACT", "DEFINER", "=",
        "CYCLE", "RESTRICT", "ORDER", "BY", "IGNORE", "KEY", "STRAIGHT_JOIN", "SYSTEM_TIME",
        "DUPLICATE", "FIRST", "`",
    };
    // clang-format on
    std::mt19937 rng(20240609); // fixed: the same soup every run
    std::uniform_int_distribution<std::size_t> pick(0, std::size(vocab) - 1);
    std::uniform_int_distribution<int> length(0, 40);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int i = 0; i < 20000; ++i) {
        std::string sql;
        const int n = length(rng);
        for (int k = 0; k < n; ++k) {
            sql += vocab[pick(rng)];
            sql += ' ';
        }
        if (i % 8 == 0) { // and some raw bytes
            for (int k = 0; k < n; ++k)
                sql += static_cast<char>(byte(rng));
        }
        INFO("sql: " << sql);
        for (const SqlMode mode :
             {SqlMode{}, SqlMode{.no_backslash_escapes = true, .ansi_quotes = true}}) {
            const TableRefs r = tables_read(sql, mode);
            const TableRefs w = tables_written(sql, mode);
            REQUIRE(sorted_unique_lower(r));
            REQUIRE(sorted_unique_lower(w));
            // The same text gives the same answer.
            const TableRefs again = tables_read(sql, mode);
            REQUIRE(again.tables == r.tables);
            REQUIRE(again.complete == r.complete);
        }
    }
}

TEST_CASE("every prefix of the statements above is read without harm", "[router][tables]") {
    static constexpr std::string_view statements[] = {
        "WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) CYCLE n "
        "RESTRICT SELECT * FROM r JOIN `db`.`t` AS x USE INDEX FOR ORDER BY (i) ON x.a = r.n",
        "SELECT * FROM (t1 JOIN t2 ON t1.a IN (SELECT a FROM t3)) LEFT JOIN (SELECT 1) d (c) "
        "USING (c) WHERE EXTRACT(YEAR FROM d) = 1 /*!50000 FOR UPDATE */",
        "DELETE FROM a1.*, t2 USING t1 AS a1 JOIN t2 PARTITION (p) ON a1.id = t2.id",
        "CREATE OR REPLACE DEFINER = 'u'@'h' SQL SECURITY INVOKER VIEW v (a) AS SELECT 1",
        "LOAD DATA LOCAL INFILE 'x' REPLACE INTO TABLE t CHARACTER SET utf8 (a) SET b = 1",
        "RENAME TABLE IF EXISTS a WAIT 3 TO b, c TO d",
    };
    for (std::string_view full : statements) {
        for (std::size_t len = 0; len <= full.size(); ++len) {
            const std::string cut(full.substr(0, len)); // its own buffer: ASan sees overreads
            INFO("sql: " << cut);
            CHECK(sorted_unique_lower(tables_read(cut)));
            CHECK(sorted_unique_lower(tables_written(cut)));
        }
    }
}
