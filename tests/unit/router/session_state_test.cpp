// SessionState: what statements change, the versions backends replay from, and the pins
// (issue #8 section 1: the session's state as a pure type). Statements are classified by
// the real classify(), as the session does.

#include "sluice/router/session_state.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace sluice::router;

namespace {

/// Applies statements as if each ran and succeeded.
Applied run(SessionState& s, std::string_view sql) { return s.apply(classify(sql, s.sql_mode())); }

std::vector<std::string> texts(const std::vector<std::string_view>& v) {
    return {v.begin(), v.end()};
}

} // namespace

TEST_CASE("a fresh session has nothing to replay beyond its login database", "[router][state]") {
    SessionState s;
    s.start("shop", 45);
    CHECK(s.version() == 1);
    CHECK(s.replay_since(0, "shop").empty());
    auto plan = s.replay_since(0, "other");
    CHECK(plan.database == "shop");
    CHECK(plan.standalone.empty());
    CHECK(plan.combined.empty());
    CHECK_FALSE(s.pinned());
}

TEST_CASE("each SET moves the version and a backend behind gets only what changed since",
          "[router][state]") {
    SessionState s;
    s.start("", 45);
    CHECK(run(s, "SET @a = 1").state_changed);
    const auto v1 = s.version();
    CHECK(v1 == 2);
    run(s, "SET NAMES utf8mb4");
    run(s, "SET SESSION sql_mode = 'ANSI'");
    CHECK(s.version() == 4);
    CHECK(texts(s.replay_since(0, "").combined) ==
          std::vector<std::string>{"@a = 1", "NAMES utf8mb4", "sql_mode = 'ANSI'"});
    CHECK(texts(s.replay_since(v1, "").combined) ==
          std::vector<std::string>{"NAMES utf8mb4", "sql_mode = 'ANSI'"});
    CHECK(s.replay_since(s.version(), "").empty());
}

TEST_CASE("a variable set again replaces the earlier assignment and moves to the end",
          "[router][state]") {
    SessionState s;
    run(s, "SET @a = 1");
    run(s, "SET @b = 2");
    run(s, "SET @a = 3");
    CHECK(texts(s.replay_since(0, "").combined) == std::vector<std::string>{"@b = 2", "@a = 3"});
}

TEST_CASE("SET TRANSACTION ISOLATION and SET ROLE replay as statements of their own",
          "[router][state]") {
    SessionState s;
    run(s, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
    run(s, "SET @x = 'y'");
    auto plan = s.replay_since(0, "");
    REQUIRE(plan.standalone.size() == 1);
    CHECK(plan.standalone[0].find("READ COMMITTED") != std::string_view::npos);
    CHECK(texts(plan.combined) == std::vector<std::string>{"@x = 'y'"});
}

TEST_CASE("what the session does not replay leaves the version alone", "[router][state]") {
    SessionState s;
    for (std::string_view sql :
         {"SET autocommit = 0", "SET TRANSACTION READ ONLY", "SET GLOBAL max_connections = 10",
          "SELECT 1", "INSERT INTO t VALUES (1)"}) {
        INFO(sql);
        CHECK_FALSE(run(s, sql).state_changed);
        CHECK(s.version() == 1);
    }
}

TEST_CASE("USE changes the database that every other backend must switch to", "[router][state]") {
    SessionState s;
    s.start("a", 45);
    auto applied = run(s, "USE b");
    CHECK(applied.database_changed);
    CHECK(applied.state_changed);
    CHECK(s.database() == "b");
    CHECK(s.replay_since(0, "a").database == "b");
    CHECK(s.replay_since(0, "b").database.empty());
}

TEST_CASE("pins keep the session on the primary until their state is gone", "[router][state]") {
    struct Row {
        const char* take;
        const char* release; // nullptr: only a reset releases it
    };
    const Row rows[] = {
        {"CREATE TEMPORARY TABLE t (a INT)", nullptr},
        {"SELECT GET_LOCK('x', 1)", "SELECT RELEASE_LOCK('x')"},
        {"LOCK TABLES t READ", "UNLOCK TABLES"},
        {"SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", "SELECT FOUND_ROWS()"},
        {"HANDLER t OPEN", "HANDLER t CLOSE"},
        {"SET @v = NOW()", nullptr},
        {"SELECT @v := 1", nullptr},
        {"SET NAMES sjis", nullptr},
    };
    for (const Row& r : rows) {
        INFO(r.take);
        SessionState s;
        run(s, r.take);
        CHECK(s.pinned());
        if (r.release) {
            run(s, r.release);
            CHECK_FALSE(s.pinned());
        }
        s.reset();
        CHECK_FALSE(s.pinned());
    }
}

TEST_CASE("user locks are counted: two taken need two releases", "[router][state]") {
    SessionState s;
    run(s, "SELECT GET_LOCK('a', 1)");
    run(s, "SELECT GET_LOCK('b', 1)");
    run(s, "SELECT RELEASE_LOCK('a')");
    CHECK(s.pinned());
    run(s, "SELECT RELEASE_LOCK('b')");
    CHECK_FALSE(s.pinned());
    run(s, "SELECT RELEASE_LOCK('c')"); // never below zero
    run(s, "SELECT GET_LOCK('d', 1)");
    CHECK(s.pinned());
}

TEST_CASE("a prepared SET of a placeholder cannot be replayed: the session stays on the primary",
          "[router][state]") {
    SessionState s;
    auto applied = run(s, "SET @a = ?");
    CHECK_FALSE(applied.state_changed);
    CHECK(s.pins().unreplayable_variable);
    CHECK(s.pinned());
    CHECK(s.replay_since(0, "").empty());
}

TEST_CASE("a character set whose bytes may hold a backslash pins, by name or by login collation",
          "[router][state]") {
    CHECK(lexer_unsafe_charset("big5"));
    CHECK(lexer_unsafe_charset("'SJIS'"));
    CHECK(lexer_unsafe_charset("NAMES gb18030"));
    CHECK_FALSE(lexer_unsafe_charset("utf8mb4"));
    CHECK(lexer_unsafe_charset(std::uint8_t{13}));
    CHECK_FALSE(lexer_unsafe_charset(std::uint8_t{45}));
    SessionState s;
    s.start("", 95); // cp932
    CHECK(s.pinned());
    s.reset(); // the login's character set stays: still pinned
    CHECK(s.pinned());
    SessionState t;
    run(t, "SET character_set_client = gbk");
    CHECK(t.pinned());
}

TEST_CASE("sql_mode ANSI makes double quotes identifiers for later classification",
          "[router][state]") {
    SessionState s;
    CHECK_FALSE(s.sql_mode().ansi_quotes);
    run(s, "SET sql_mode = 'ANSI_QUOTES'");
    CHECK(s.sql_mode().ansi_quotes);
    run(s, "SET sql_mode = ''");
    CHECK_FALSE(s.sql_mode().ansi_quotes);
    s.set_no_backslash_escapes(true);
    CHECK(s.sql_mode().no_backslash_escapes);
    s.reset();
    CHECK_FALSE(s.sql_mode().no_backslash_escapes);
}

TEST_CASE("SQL_AUTO_IS_NULL is followed through its spellings", "[router][state]") {
    const std::pair<const char*, bool> rows[] = {
        {"SET sql_auto_is_null = 1", true},        {"SET sql_auto_is_null = ON", true},
        {"SET sql_auto_is_null = 'on'", true},     {"SET SESSION sql_auto_is_null = true", true},
        {"SET sql_auto_is_null = 0", false},       {"SET sql_auto_is_null = OFF", false},
        {"SET sql_auto_is_null = DEFAULT", false},
    };
    for (const auto& [sql, on] : rows) {
        INFO(sql);
        SessionState s;
        run(s, sql);
        CHECK(s.auto_is_null() == on);
    }
}

TEST_CASE("changing session tracking says the GTID tracking must be added again",
          "[router][state]") {
    SessionState s;
    CHECK(run(s, "SET session_track_system_variables = 'autocommit'").tracking_changed);
    CHECK(run(s, "SET session_track_gtids = OFF").tracking_changed);
    CHECK_FALSE(run(s, "SET @a = 1").tracking_changed);
}

TEST_CASE("a CALL hides user variables until reset; losing the primary forgets its pins",
          "[router][state]") {
    SessionState s;
    s.hide_user_variables();
    CHECK(s.holds_primary_only_state());
    run(s, "CREATE TEMPORARY TABLE t (a INT)");
    run(s, "SET @keep = 5");
    s.forget_primary_state();
    CHECK_FALSE(s.holds_primary_only_state());
    CHECK_FALSE(s.pinned());
    // The assignments stay: the next connection gets them.
    CHECK(texts(s.replay_since(0, "").combined) == std::vector<std::string>{"@keep = 5"});
}

TEST_CASE("reset forgets assignments and moves the version so every backend resyncs",
          "[router][state]") {
    SessionState s;
    s.start("db", 45);
    run(s, "SET @a = 1");
    const auto before = s.version();
    s.reset();
    CHECK(s.version() == before + 1);
    CHECK(s.assignments().empty());
    CHECK(s.database() == "db");
    CHECK(s.replay_since(0, "db").empty());
}
