// digest(): normalized text and its hash.

#include "statement_table.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <xxhash.h>

using namespace sluice::router;
using namespace sluice::router::test;

namespace {

struct DigestRow {
    std::string_view sql;
    std::string_view want;
};

void check_rows(std::initializer_list<DigestRow> rows) {
    for (const auto& row : rows) {
        INFO("sql: " << row.sql);
        CHECK(digest(row.sql).text == row.want);
    }
}

} // namespace

TEST_CASE("literals become ? and keywords upper case", "[router][digest]") {
    check_rows({
        {"SELECT * FROM t WHERE id = 5 AND name='x'", "SELECT * FROM t WHERE id = ? AND name = ?"},
        {"select * from t where id=5", "SELECT * FROM t WHERE id = ?"},
        {"SELECT c FROM sbtest1 WHERE id=5012", "SELECT c FROM sbtest1 WHERE id = ?"},
        {"UPDATE sbtest4 SET k=k+1 WHERE id=5012", "UPDATE sbtest4 SET k = k + ? WHERE id = ?"},
        {"SELECT N'x', _utf8mb4'y', X'41', 0x41, b'1', 0b1, 1e3, .5, 1.5",
         "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?"},
        {"SELECT \"double\"", "SELECT ?"},
        {"SELECT ?", "SELECT ?"},
        {"SELECT 'a' 'b' 'c'", "SELECT ?"}, // one string in pieces
        {"SELECT ? 'b'", "SELECT ? ?"},
        {"SELECT _utf8mb4 'x'", "SELECT _utf8mb4 ?"}, // an introducer apart from its string
        {"SELECT DATE '2020-01-01', TIMESTAMP '2020-01-01 00:00:00'", "SELECT DATE ?, TIMESTAMP ?"},
    });
}

TEST_CASE("NULL, TRUE and FALSE stay keywords", "[router][digest]") {
    check_rows({
        {"SELECT null, true, False", "SELECT NULL, TRUE, FALSE"},
        {"SELECT * FROM t WHERE a IS NOT NULL", "SELECT * FROM t WHERE a IS NOT NULL"},
        {"SELECT NULL - 1", "SELECT NULL - ?"}, // binary minus after an operand keyword
    });
}

TEST_CASE("IN lists of literals collapse to IN (...)", "[router][digest]") {
    check_rows({
        {"SELECT a FROM t WHERE b IN (1,2,3)", "SELECT a FROM t WHERE b IN (...)"},
        {"SELECT a FROM t WHERE b IN (?, ?)", "SELECT a FROM t WHERE b IN (...)"},
        {"SELECT a FROM t WHERE b IN (?)", "SELECT a FROM t WHERE b IN (...)"},
        {"SELECT a FROM t WHERE b in('x', 'y')", "SELECT a FROM t WHERE b IN (...)"},
        {"SELECT a FROM t WHERE b NOT IN ('x', 'y')", "SELECT a FROM t WHERE b NOT IN (...)"},
        {"SELECT a FROM t WHERE b IN (-1, +2, 'x' 'y', NULL, TRUE)",
         "SELECT a FROM t WHERE b IN (...)"},
        {"SELECT a FROM t WHERE (b, c) IN ((1, 2), (3, 4))",
         "SELECT a FROM t WHERE (b, c) IN (...)"},
        {"SELECT a FROM t WHERE b IN ( /* c */ 1 , 2 )", "SELECT a FROM t WHERE b IN (...)"},
        {"SELECT a FROM t WHERE b IN (SELECT c FROM u)",
         "SELECT a FROM t WHERE b IN (SELECT c FROM u)"},
        {"SELECT a FROM t WHERE b IN (1, c)", "SELECT a FROM t WHERE b IN (?, c)"},
        {"SELECT a FROM t WHERE b IN (1, NOW())", "SELECT a FROM t WHERE b IN (?, NOW())"},
        {"SELECT a FROM t WHERE b IN ()", "SELECT a FROM t WHERE b IN ()"},
        {"SELECT a FROM t WHERE b IN ((1), ())", "SELECT a FROM t WHERE b IN ((?), ())"},
        {"SELECT a FROM t WHERE t.in (1)", "SELECT a FROM t WHERE t.in(?)"}, // a qualified name
    });
    CHECK(digest("SELECT * FROM t WHERE id IN (1,2,3)").hash ==
          digest("SELECT * FROM t WHERE id IN (4, 5)").hash);
}

TEST_CASE("a unary sign goes into the literal after it", "[router][digest]") {
    check_rows({
        {"SELECT -5", "SELECT ?"},
        {"SELECT a-5", "SELECT a - ?"},
        {"SELECT a - -5", "SELECT a - ?"},
        {"SELECT a--5", "SELECT a - ?"},
        {"SELECT (-5)", "SELECT (?)"},
        {"SELECT 1, -5", "SELECT ?, ?"},
        {"SELECT * FROM t WHERE a = -5", "SELECT * FROM t WHERE a = ?"},
        {"SELECT - - 5", "SELECT ?"},
        {"SELECT +5", "SELECT ?"},
        {"SELECT -'5'", "SELECT ?"},
        {"SELECT -?", "SELECT ?"},
        {"SELECT 1 - 2", "SELECT ? - ?"},
        {"SELECT -a", "SELECT -a"},
        {"SELECT - - a", "SELECT - -a"},
        {"SELECT - (1)", "SELECT -(?)"},
        {"SELECT !5", "SELECT !?"},
        {"SELECT !-5", "SELECT !?"},
        {"SELECT ~a", "SELECT ~a"},
        {"SELECT a FROM t WHERE b = 1 AND -c > 2", "SELECT a FROM t WHERE b = ? AND -c > ?"},
        {"SELECT CASE WHEN a THEN -1 ELSE -2 END - 3", "SELECT CASE WHEN a THEN ? ELSE ? END - ?"},
    });
}

TEST_CASE("spacing is fixed whatever the text had", "[router][digest]") {
    check_rows({
        {"SELECT a=b", "SELECT a = b"},
        {"SELECT a = b", "SELECT a = b"},
        {"SELECT  a\t=\n\nb", "SELECT a = b"},
        {"SELECT f ( x )", "SELECT f(x)"},
        {"SELECT COUNT( * ) FROM t", "SELECT COUNT(*) FROM t"},
        {"select count (*) from t", "SELECT COUNT(*) FROM t"},
        {"SELECT t . a FROM t", "SELECT t.a FROM t"},
        {"SELECT t.* FROM t", "SELECT t.* FROM t"},
        {"SELECT a,b , c", "SELECT a, b, c"},
        {"SELECT 1 ;", "SELECT ?"},
        {"SELECT (a+b)*c", "SELECT (a + b) * c"},
        {"SELECT a<=>b, a<>b, a!=b, a>=b, a->>'$.x'",
         "SELECT a <=> b, a <> b, a != b, a >= b, a ->> ?"},
        {"INSERT INTO t(a, b) VALUES (1, 'x')", "INSERT INTO t(a, b) VALUES (?, ?)"},
        {"INSERT INTO t (a) VALUES(1)", "INSERT INTO t(a) VALUES (?)"},
        {"SELECT * FROM t WHERE EXISTS(SELECT 1)", "SELECT * FROM t WHERE EXISTS (SELECT ?)"},
        {"SELECT IF(a, 1, 2), CHAR(65), LEFT(s, 2)", "SELECT IF(a, ?, ?), CHAR(?), LEFT(s, ?)"},
        {"SELECT `a`(1)", "SELECT `a`(?)"},
        {"SELECT @a:=1", "SELECT @a := ?"},
        {"SELECT @a . b", "SELECT @a .b"}, // @a.b would be one variable
    });
}

TEST_CASE("comments go, versioned comments leave their contents", "[router][digest]") {
    check_rows({
        {"/* c */ select 1", "SELECT ?"},
        {"SELECT 1 -- trailing", "SELECT ?"},
        {"SELECT 1 # trailing", "SELECT ?"},
        {"SELECT/**/1", "SELECT ?"},
        {"SELECT /*+ MAX_EXECUTION_TIME(1) */ 1", "SELECT ?"},
        {"/*!40101 SELECT 1 */", "SELECT ?"},
        {"SELECT 1 /*!50000 FOR UPDATE */", "SELECT ? FOR UPDATE"},
        {"/*M!100100 SET NAMES utf8 */", "SET NAMES utf8"},
        {"SELECT 1 --1", "SELECT ? - ?"}, // not a comment: 1 - -1
        {"", ""},
        {"  /* only a comment */ ", ""},
    });
}

TEST_CASE("identifiers stay as written, keywords do not", "[router][digest]") {
    check_rows({
        {"SELECT MyCol FROM MyTable", "SELECT MyCol FROM MyTable"},
        {"select `a``b` from `T`", "SELECT `a``b` FROM `T`"},
        {"SELECT t.select FROM t", "SELECT t.select FROM t"},
        {"select status, name from t", "SELECT status, name FROM t"},
        {"select now() from t", "SELECT NOW() FROM t"},
        {"select now from t", "SELECT now FROM t"},
        {"select Count(a) from t", "SELECT COUNT(a) FROM t"},
        {"INSERT INTO count(a) VALUES (1)", "INSERT INTO count(a) VALUES (?)"},
        {"SELECT db.now() FROM t", "SELECT db.now() FROM t"},
        {"SELECT @A, @@Session.Sql_Mode", "SELECT @A, @@Session.Sql_Mode"},
        {"begin", "BEGIN"},
        {"start transaction read only", "START TRANSACTION READ ONLY"},
        {"commit work", "COMMIT WORK"},
        {"show tables", "SHOW TABLES"},
        {"set session transaction isolation level read committed",
         "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"},
        {"select * from t for update", "SELECT * FROM t FOR UPDATE"},
        {"select * from t lock in share mode", "SELECT * FROM t LOCK IN SHARE MODE"},
    });
}

TEST_CASE("statements and account names", "[router][digest]") {
    check_rows({
        {"SELECT 1; SELECT 2;", "SELECT ?; SELECT ?"},
        {";;SELECT 1;;;SELECT 2", "SELECT ?; SELECT ?"},
        {"CREATE USER 'u'@'h' IDENTIFIED BY 'p'", "CREATE USER ? @ ? IDENTIFIED BY ?"},
        {"GRANT SELECT ON db.* TO `u`@`%`", "GRANT SELECT ON db.* TO `u` @ `%`"},
    });
}

TEST_CASE("the hash is XXH3-64 of the digest text", "[router][digest]") {
    for (std::string_view sql : {"SELECT 1", "", "SELECT * FROM t WHERE a IN (1, 2)"}) {
        const Digest d = digest(sql);
        CHECK(d.hash == XXH3_64bits(d.text.data(), d.text.size()));
    }
    CHECK(digest("SELECT * FROM t WHERE id = 1").hash == digest("select * from t where id=2").hash);
    CHECK(digest("SELECT * FROM t WHERE id = 1").hash !=
          digest("SELECT * FROM u WHERE id = 1").hash);
}

TEST_CASE("a digest of a digest is the same digest", "[router][digest]") {
    std::size_t checked = 0;
    for (const auto& row : table::k_rows) {
        if (classify(row.sql).flags.bad_syntax) continue;
        INFO("sql: " << row.sql);
        const std::string once = digest(row.sql).text;
        CHECK(digest(once).text == once);
        ++checked;
    }
    CHECK(checked > 400);
}

TEST_CASE("odd texts digest to something that digests to itself", "[router][digest]") {
    // Glue that could turn into other tokens if spacing were careless.
    for (std::string_view sql :
         {"SELECT - -", "SELECT ( . 1a", "SELECT t. 1", "SELECT t.1",
          "SELECT ! =", "SELECT < =", "SELECT a . @b", "SELECT x@.y", "SELECT ( @ a )",
          "SELECT / *", "SELECT (/ *)", "SELECT - -- x\n", "SELECT @a .b", "SELECT @@x . y",
          "SELECT t.1e5", "SELECT `t`.1", "SELECT ?.5", "SELECT 1 . a", "SELECT (- 'x' 'y')"}) {
        INFO("sql: " << sql);
        const std::string once = digest(sql).text;
        INFO("once: " << once);
        CHECK(digest(once).text == once);
    }
}

TEST_CASE("a digest of text that does not lex still comes out", "[router][digest]") {
    CHECK(digest("SELECT 'unterminated").text == "SELECT ?");
    CHECK(digest("SELECT `unterminated").text == "SELECT `unterminated");
    CHECK(digest("SELECT 1 /* unterminated").text == "SELECT ?");
}

TEST_CASE("ANSI_QUOTES keeps double-quoted names in the digest", "[router][digest]") {
    const SqlMode ansi{.no_backslash_escapes = false, .ansi_quotes = true};
    CHECK(digest("SELECT \"a\" FROM \"t\" WHERE b = 'x'", ansi).text ==
          "SELECT \"a\" FROM \"t\" WHERE b = ?");
    const SqlMode nbe{.no_backslash_escapes = true, .ansi_quotes = false};
    CHECK(digest("SELECT 'a\\' FROM t", nbe).text == "SELECT ? FROM t");
}
