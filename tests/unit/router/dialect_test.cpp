// The MySQL dialect: the SQL text Sluice sends itself, and the KILL statements it answers.

#include "sluice/router/dialect.hpp"

#include <catch2/catch.hpp>

using namespace sluice::router;
namespace dialect = sluice::router::mysql_dialect;

TEST_CASE("quote_string doubles quotes and escapes backslashes", "[router][dialect]") {
    CHECK(dialect::quote_string("0-1-5") == "'0-1-5'");
    CHECK(dialect::quote_string("a'b\\c") == "'a''b\\\\c'");
    CHECK(dialect::quote_string("") == "''");
}

TEST_CASE("replay_statements runs standalone SETs first, then one SET of the rest",
          "[router][dialect]") {
    ReplayPlan plan;
    CHECK(dialect::replay_statements(plan).empty());
    plan.standalone = {"SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", "ROLE r"};
    plan.combined = {"@a = 1", "NAMES utf8mb4"};
    CHECK(dialect::replay_statements(plan) ==
          std::vector<std::string>{"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                                   "SET ROLE r", "SET @a = 1, NAMES utf8mb4"});
}

TEST_CASE("the causal wait names the server's own function and the timeout in seconds",
          "[router][dialect]") {
    using std::chrono::milliseconds;
    CHECK(dialect::causal_wait("0-1-42", milliseconds(100), true) ==
          "SELECT MASTER_GTID_WAIT('0-1-42', 0.100)");
    CHECK(dialect::causal_wait("u:3", milliseconds(2500), false) ==
          "SELECT WAIT_FOR_EXECUTED_GTID_SET('u:3', 2.500)");
}

TEST_CASE("GTID tracking keeps the client's own tracked variables on MariaDB",
          "[router][dialect]") {
    CHECK(dialect::track_gtids(true).find("CONCAT_WS") != std::string_view::npos);
    CHECK(dialect::track_gtids(true).find("last_gtid") != std::string_view::npos);
    CHECK(dialect::track_gtids(false) == "SET session_track_gtids = OWN_GTID");
    CHECK(dialect::kill(true, 12) == "KILL QUERY 12");
    CHECK(dialect::kill(false, 7) == "KILL CONNECTION 7");
    CHECK(dialect::commit() == "COMMIT");
}

TEST_CASE("parse_kill reads the plain KILL forms and leaves the rest to the server",
          "[router][dialect]") {
    struct Row {
        const char* sql;
        bool parsed;
        bool query;
        std::uint64_t target;
    };
    const Row rows[] = {
        {"KILL 1073741830", true, false, 1073741830},
        {"kill connection 5", true, false, 5},
        {"KILL QUERY 9", true, true, 9},
        {"KILL HARD QUERY ID 9;", true, true, 9},
        {"  KILL SOFT CONNECTION 12 ; ", true, false, 12},
        {"KILL USER app", false, false, 0},
        {"KILL 1+1", false, false, 0},
        {"KILL /* c */ 5", false, false, 0},
        {"KILL", false, false, 0},
        {"KILL 12345678901", false, false, 0},
        {"SELECT 1", false, false, 0},
        {"KILL QUERY 1 2", false, false, 0},
    };
    for (const Row& r : rows) {
        INFO(r.sql);
        auto k = dialect::parse_kill(r.sql);
        REQUIRE(k.has_value() == r.parsed);
        if (!k) continue;
        CHECK(k->query == r.query);
        CHECK(k->target == r.target);
    }
}
