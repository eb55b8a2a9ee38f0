// rewrite_connection_id(): CONNECTION_ID() becomes the id the client got in its greeting.

#include "sluice/router/rewrite.hpp"

#include <catch2/catch.hpp>

using namespace sluice::router;

TEST_CASE("#7: CONNECTION_ID() becomes the session's own id, keeping the column name",
          "[router][rewrite]") {
    struct Row {
        const char* sql;
        const char* out;
    };
    const Row rows[] = {
        {"SELECT CONNECTION_ID()", "SELECT 1073741825 AS `CONNECTION_ID()`"},
        {"select connection_id()", "select 1073741825 AS `connection_id()`"},
        {"SELECT CONNECTION_ID(), 1", "SELECT 1073741825 AS `CONNECTION_ID()`, 1"},
        {"SELECT 1, CONNECTION_ID() FROM t", "SELECT 1, 1073741825 AS `CONNECTION_ID()` FROM t"},
        {"SELECT CONNECTION_ID() AS id", "SELECT 1073741825 AS id"},
        {"SELECT CONNECTION_ID() id", "SELECT 1073741825 id"},
        {"SELECT CONNECTION_ID() + 1", "SELECT 1073741825 + 1 AS `CONNECTION_ID() + 1`"},
        {"SELECT DISTINCT CONNECTION_ID()", "SELECT DISTINCT 1073741825 AS `CONNECTION_ID()`"},
        {"SELECT CONNECTION_ID() 'id'", "SELECT 1073741825 'id'"},
        {"SELECT CONNECTION_ID() `id`", "SELECT 1073741825 `id`"},
        {"SELECT CONNECTION_ID() IS NOT NULL",
         "SELECT 1073741825 IS NOT NULL AS `CONNECTION_ID() IS NOT NULL`"},
        {"SELECT CASE WHEN CONNECTION_ID() > 0 THEN 1 END",
         "SELECT CASE WHEN 1073741825 > 0 THEN 1 END AS `CASE WHEN CONNECTION_ID() > 0 THEN 1 "
         "END`"},
        {"SELECT t.a, CONNECTION_ID() FROM t",
         "SELECT t.a, 1073741825 AS `CONNECTION_ID()` FROM t"},
        {"SELECT CONNECTION_ID ( )", "SELECT 1073741825 AS `CONNECTION_ID ( )`"},
        {"SELECT * FROM t WHERE id = CONNECTION_ID()", "SELECT * FROM t WHERE id = 1073741825"},
        {"KILL CONNECTION_ID()", "KILL 1073741825"},
        {"SELECT (SELECT CONNECTION_ID())",
         "SELECT (SELECT 1073741825 AS `CONNECTION_ID()`) AS `(SELECT CONNECTION_ID())`"},
        {"SELECT CONNECTION_ID() /* c */ ;", "SELECT 1073741825 AS `CONNECTION_ID()` /* c */ ;"},
        {"SELECT CONNECTION_ID(), CONNECTION_ID()",
         "SELECT 1073741825 AS `CONNECTION_ID()`, 1073741825 AS `CONNECTION_ID()`"},
    };
    for (const auto& row : rows) {
        INFO(row.sql);
        const auto out = rewrite_connection_id(row.sql, {}, 1073741825u);
        REQUIRE(out);
        CHECK(*out == row.out);
    }
}

TEST_CASE("#7: IS_USED_LOCK() names this session's locks by its own id", "[router][rewrite]") {
    CHECK(rewrite_connection_id("SELECT IS_USED_LOCK('a') = CONNECTION_ID()", {}, 9) ==
          "SELECT IF(IS_USED_LOCK('a') <=> CONNECTION_ID(), 9, IS_USED_LOCK('a')) = 9 AS "
          "`IS_USED_LOCK('a') = CONNECTION_ID()`");
    CHECK(rewrite_connection_id("SELECT IS_USED_LOCK('a') IS NOT NULL", {}, 9) ==
          "SELECT IF(IS_USED_LOCK('a') <=> CONNECTION_ID(), 9, IS_USED_LOCK('a')) IS NOT NULL AS "
          "`IS_USED_LOCK('a') IS NOT NULL`");
    CHECK(rewrite_connection_id("SELECT is_used_lock(CONCAT('a', 'b'))", {}, 9) ==
          "SELECT IF(is_used_lock(CONCAT('a', 'b')) <=> CONNECTION_ID(), 9, "
          "is_used_lock(CONCAT('a', 'b'))) AS `is_used_lock(CONCAT('a', 'b'))`");
    CHECK_FALSE(rewrite_connection_id("SELECT IS_USED_LOCK", {}, 9));
    CHECK_FALSE(rewrite_connection_id("SELECT IS_USED_LOCK('a'", {}, 9));
}

TEST_CASE("#7: text that calls no CONNECTION_ID() is left alone", "[router][rewrite]") {
    for (const char* sql :
         {"SELECT 1", "SELECT 'CONNECTION_ID()'", "SELECT /* CONNECTION_ID() */ 1",
          "SELECT db.CONNECTION_ID()", "SELECT `CONNECTION_ID`()", "SELECT CONNECTION_ID",
          "SELECT connection_id_x()", "SELECT 'unterminated CONNECTION_ID()"}) {
        INFO(sql);
        CHECK_FALSE(rewrite_connection_id(sql, {}, 7));
    }
}
