// classify(): session changes (SET, USE) with their exact names and replay texts.

#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace sluice::router;
using namespace sluice::router::test;
using Kind = SessionChange::Kind;

namespace {

SessionChange change(Kind kind, std::string name, std::string text, bool constant = true,
                     bool value_bool = false) {
    SessionChange c;
    c.kind = kind;
    c.name = std::move(name);
    c.text = std::move(text);
    c.value_bool = value_bool;
    c.value_is_constant = constant;
    return c;
}

std::string describe(const std::vector<SessionChange>& changes) {
    std::string s;
    for (const auto& c : changes) {
        s += "{kind " + std::to_string(static_cast<int>(c.kind)) + ", '" + c.name + "', '" +
             c.text + "', bool " + (c.value_bool ? "1" : "0") + ", constant " +
             (c.value_is_constant ? "1" : "0") + "} ";
    }
    return s;
}

void check_changes(std::string_view sql, const std::vector<SessionChange>& want) {
    INFO("sql: " << sql);
    const Classification c = classify(sql);
    INFO("got:  " << describe(c.session_changes));
    INFO("want: " << describe(want));
    CHECK(c.session_changes == want);
}

} // namespace

TEST_CASE("SET autocommit records the new value", "[router][session]") {
    check_changes("SET autocommit=0", {change(Kind::autocommit, "autocommit", "autocommit = 0")});
    check_changes("SET autocommit = 1",
                  {change(Kind::autocommit, "autocommit", "autocommit = 1", true, true)});
    check_changes("SET @@autocommit = ON",
                  {change(Kind::autocommit, "autocommit", "autocommit = ON", true, true)});
    check_changes("set session AUTOCOMMIT = off",
                  {change(Kind::autocommit, "autocommit", "autocommit = off")});
    check_changes("SET @@session.autocommit = true",
                  {change(Kind::autocommit, "autocommit", "autocommit = true", true, true)});
    check_changes("SET LOCAL autocommit = 'ON'",
                  {change(Kind::autocommit, "autocommit", "autocommit = 'ON'", true, true)});
    check_changes("SET autocommit = 'off'",
                  {change(Kind::autocommit, "autocommit", "autocommit = 'off'")});
}

TEST_CASE("an autocommit value that is not a literal reads as off", "[router][session]") {
    check_changes("SET autocommit = @x",
                  {change(Kind::autocommit, "autocommit", "autocommit = @x", false, false)});
    check_changes("SET autocommit = DEFAULT",
                  {change(Kind::autocommit, "autocommit", "autocommit = DEFAULT", true, false)});
    check_changes("SET autocommit = 1 - 1",
                  {change(Kind::autocommit, "autocommit", "autocommit = 1 - 1", false, false)});
}

TEST_CASE("SET GLOBAL autocommit is not a session change", "[router][session]") {
    const auto c = classify("SET GLOBAL autocommit = 0");
    CHECK(c.session_changes.empty());
    CHECK(c.global_set);
    CHECK(c.cls == StatementClass::other);
}

TEST_CASE("one SET may assign several variables of different kinds", "[router][session]") {
    check_changes("SET SESSION sql_mode='ANSI', @a=1, time_zone='+00:00'",
                  {change(Kind::system_variable, "sql_mode", "sql_mode = 'ANSI'"),
                   change(Kind::user_variable, "a", "@a = 1"),
                   change(Kind::system_variable, "time_zone", "time_zone = '+00:00'")});
    check_changes("SET NAMES utf8, autocommit = 0",
                  {change(Kind::names, "names", "NAMES utf8"),
                   change(Kind::autocommit, "autocommit", "autocommit = 0")});
    check_changes("SET foreign_key_checks = 0, unique_checks = 0",
                  {change(Kind::system_variable, "foreign_key_checks", "foreign_key_checks = 0"),
                   change(Kind::system_variable, "unique_checks", "unique_checks = 0")});
}

TEST_CASE("system variable names lose their scope prefix and their case", "[router][session]") {
    check_changes("SET @@SESSION.SQL_MODE = 'x'",
                  {change(Kind::system_variable, "sql_mode", "sql_mode = 'x'")});
    check_changes("SET @@local.wait_timeout = 10",
                  {change(Kind::system_variable, "wait_timeout", "wait_timeout = 10")});
    check_changes("SET LOCAL Time_Zone = 'UTC'",
                  {change(Kind::system_variable, "time_zone", "time_zone = 'UTC'")});
    check_changes("SET keycache1.key_cache_block_size = 1024",
                  {change(Kind::system_variable, "keycache1.key_cache_block_size",
                          "keycache1.key_cache_block_size = 1024")});
    check_changes("SET `sql_mode` = ''",
                  {change(Kind::system_variable, "sql_mode", "sql_mode = ''")});
}

TEST_CASE("a scope keyword holds for the assignments after it, a @@ prefix only for its own",
          "[router][session]") {
    // Checked on MariaDB 10.11.
    const auto all_global = classify("SET GLOBAL a = 1, b = 2");
    CHECK(all_global.session_changes.empty());
    CHECK(all_global.global_set);
    check_changes("SET GLOBAL a = 1, SESSION b = 2", {change(Kind::system_variable, "b", "b = 2")});
    check_changes("SET GLOBAL a = 1, @@b = 2", {change(Kind::system_variable, "b", "b = 2")});
    check_changes("SET GLOBAL a = 1, @@session.b = 2, c = 3",
                  {change(Kind::system_variable, "b", "b = 2")});
    check_changes("SET GLOBAL a = 1, @u = 1, c = 3", {change(Kind::user_variable, "u", "@u = 1")});
    check_changes("SET @@global.a = 1, b = 2", {change(Kind::system_variable, "b", "b = 2")});
    check_changes("SET PERSIST a = 1, LOCAL b = 2", {change(Kind::system_variable, "b", "b = 2")});
    const auto mixed = classify("SET GLOBAL a = 1, SESSION b = 2");
    CHECK(mixed.cls == StatementClass::session_set);
    CHECK(mixed.global_set);
}

TEST_CASE("NAMES and CHARACTER SET keep their whole clause", "[router][session]") {
    check_changes("SET NAMES utf8mb4 COLLATE utf8mb4_bin",
                  {change(Kind::names, "names", "NAMES utf8mb4 COLLATE utf8mb4_bin")});
    check_changes("SET NAMES 'latin1'", {change(Kind::names, "names", "NAMES 'latin1'")});
    check_changes("set names default", {change(Kind::names, "names", "NAMES default")});
    check_changes("SET CHARACTER SET latin1",
                  {change(Kind::character_set, "character_set", "CHARACTER SET latin1")});
    check_changes("SET CHARSET utf8",
                  {change(Kind::character_set, "character_set", "CHARACTER SET utf8")});
    check_changes("/*!40101 SET NAMES utf8mb4 */", {change(Kind::names, "names", "NAMES utf8mb4")});
    check_changes("SET GLOBAL a = 1, NAMES latin1", {change(Kind::names, "names", "NAMES latin1")});
}

TEST_CASE("SET TRANSACTION is for the next transaction, SET SESSION TRANSACTION for the session",
          "[router][session]") {
    check_changes("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                  {change(Kind::transaction_isolation, "transaction_isolation",
                          "SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")});
    check_changes("SET LOCAL TRANSACTION READ ONLY",
                  {change(Kind::transaction_isolation, "transaction_read_only",
                          "SESSION TRANSACTION READ ONLY")});
    check_changes(
        "SET TRANSACTION READ ONLY",
        {change(Kind::transaction_next, "transaction_read_only", "TRANSACTION READ ONLY")});
    check_changes("set transaction isolation level repeatable read",
                  {change(Kind::transaction_next, "transaction_isolation",
                          "TRANSACTION isolation level repeatable read")});
    check_changes("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED, READ ONLY",
                  {change(Kind::transaction_isolation, "transaction_isolation",
                          "SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"),
                   change(Kind::transaction_isolation, "transaction_read_only",
                          "SESSION TRANSACTION READ ONLY")});
    const auto g = classify("SET GLOBAL TRANSACTION ISOLATION LEVEL SERIALIZABLE");
    CHECK(g.session_changes.empty());
    CHECK(g.global_set);
    CHECK(g.cls == StatementClass::other);
    CHECK(classify("SET TRANSACTION BOGUS").cls == StatementClass::unknown);
}

TEST_CASE("user variables keep their value as SQL text", "[router][session]") {
    check_changes("SET @a := 1", {change(Kind::user_variable, "a", "@a = 1")});
    check_changes("SET @A = 'x'", {change(Kind::user_variable, "a", "@a = 'x'")});
    check_changes("SET @a = -1", {change(Kind::user_variable, "a", "@a = -1")});
    check_changes("SET @a = NULL", {change(Kind::user_variable, "a", "@a = NULL")});
    check_changes("SET @a = (SELECT max(id) FROM t)",
                  {change(Kind::user_variable, "a", "@a = (SELECT max(id) FROM t)", false)});
    check_changes("SET @a = 1, @b = CONCAT('x', 'y')",
                  {change(Kind::user_variable, "a", "@a = 1"),
                   change(Kind::user_variable, "b", "@b = CONCAT('x', 'y')", false)});
    check_changes("SET @a = @a + 1", {change(Kind::user_variable, "a", "@a = @a + 1", false)});
    check_changes("SET @a = NOW()", {change(Kind::user_variable, "a", "@a = NOW()", false)});
    check_changes("SET @a = CURRENT_TIMESTAMP",
                  {change(Kind::user_variable, "a", "@a = CURRENT_TIMESTAMP", false)});
    check_changes("SET @old = @@sql_mode",
                  {change(Kind::user_variable, "old", "@old = @@sql_mode", false)});
}

TEST_CASE("values are kept as written, comments dropped and space runs made one",
          "[router][session]") {
    check_changes("SET @a=1+2", {change(Kind::user_variable, "a", "@a = 1+2", false)});
    check_changes("SET @a =   1 +\n\t2  ", {change(Kind::user_variable, "a", "@a = 1 + 2", false)});
    check_changes("SET sql_mode = /* c */ 'ANSI' -- trailing",
                  {change(Kind::system_variable, "sql_mode", "sql_mode = 'ANSI'")});
    check_changes("SET @a = /*!40101 1 */ + 2",
                  {change(Kind::user_variable, "a", "@a = 1 + 2", false)});
    check_changes("SET @a = f(1, (2), 3), @b = 4",
                  {change(Kind::user_variable, "a", "@a = f(1, (2), 3)", false),
                   change(Kind::user_variable, "b", "@b = 4")});
}

TEST_CASE("quoted user variable names are unquoted in name and quoted again in text",
          "[router][session]") {
    check_changes("SET @`my var` = 'x'",
                  {change(Kind::user_variable, "my var", "@`my var` = 'x'")});
    check_changes("SET @'q' = 1", {change(Kind::user_variable, "q", "@q = 1")});
    check_changes("SET @\"a`b\" = 1", {change(Kind::user_variable, "a`b", "@`a``b` = 1")});
    check_changes("SET @a.b = 1", {change(Kind::user_variable, "a.b", "@a.b = 1")});
}

TEST_CASE("SET ROLE is replayed, SET DEFAULT ROLE and SET PASSWORD are not", "[router][session]") {
    check_changes("SET ROLE r", {change(Kind::role, "role", "ROLE r")});
    check_changes("SET ROLE NONE", {change(Kind::role, "role", "ROLE NONE")});
    CHECK(classify("SET DEFAULT ROLE r FOR u").session_changes.empty());
    for (std::string_view sql : {"SET PASSWORD = PASSWORD('secret')",
                                 "SET PASSWORD FOR 'u'@'%' = 'secret'", "set password='secret'"}) {
        INFO(sql);
        const auto c = classify(sql);
        CHECK(c.session_changes.empty());
        CHECK(c.cls == StatementClass::other);
    }
}

TEST_CASE("SET STATEMENT ... FOR changes nothing beyond its statement", "[router][session]") {
    const auto c = classify("SET STATEMENT max_statement_time = 1, @x = 2 FOR SELECT 1");
    CHECK(c.session_changes.empty());
    CHECK(c.cls == StatementClass::read);
}

TEST_CASE("a statement that fails to lex records no changes, the ones before it do",
          "[router][session]") {
    check_changes("SET @a = 'unterminated", {});
    check_changes("SET @a = 1; SELECT 'x", {change(Kind::user_variable, "a", "@a = 1")});
    check_changes("SET @a = 1; SET @b = 'x", {change(Kind::user_variable, "a", "@a = 1")});
    check_changes("SET @a = 1; SET @b = 2", {change(Kind::user_variable, "a", "@a = 1"),
                                             change(Kind::user_variable, "b", "@b = 2")});
    const auto u = classify("USE db; SELECT 'x");
    CHECK(u.use_database == "db");
    CHECK(classify("USE db 'x").use_database.empty());
}

TEST_CASE("malformed SET statements are unknown and record nothing", "[router][session]") {
    for (std::string_view sql :
         {"SET", "SET a", "SET a 1", "SET = 1", "SET @a", "SET @a =", "SET @a = 1,", "SET 1 = 2"}) {
        INFO(sql);
        const auto c = classify(sql);
        CHECK(c.cls == StatementClass::unknown);
    }
}

TEST_CASE("USE names the database, unquoted", "[router][session]") {
    CHECK(classify("USE db").use_database == "db");
    CHECK(classify("use Db").use_database == "Db");
    CHECK(classify("USE `my db`").use_database == "my db");
    CHECK(classify("USE `a``b`").use_database == "a`b");
    CHECK(classify("USE db;").use_database == "db");
    CHECK(classify("/* x */ USE db -- y").use_database == "db");
    CHECK(classify("USE a; USE b").use_database == "b");
    CHECK(classify("SELECT 1").use_database.empty());
    const auto c = classify("USE db");
    CHECK(c.cls == StatementClass::use);
    CHECK(c.session_changes.empty());
}

TEST_CASE("session changes of a multi-statement text are all kept", "[router][session]") {
    const auto c = classify("SET autocommit = 0; USE db; SET NAMES utf8mb4; SELECT 1");
    CHECK(c.flags.multi_statement);
    CHECK(c.use_database == "db");
    CHECK(c.session_changes ==
          std::vector<SessionChange>{change(Kind::autocommit, "autocommit", "autocommit = 0"),
                                     change(Kind::names, "names", "NAMES utf8mb4")});
}
