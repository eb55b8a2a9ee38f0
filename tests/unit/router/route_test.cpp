#include "sluice/router/route.hpp"

#include <catch2/catch.hpp>

using namespace sluice::router;

namespace {

Classification of(StatementClass cls) {
    Classification c;
    c.cls = cls;
    return c;
}
Classification read() { return of(StatementClass::read); }
Classification with(Classification c, void (*tweak)(Classification&)) {
    tweak(c);
    return c;
}

const RuleSet no_rules;
const SessionView autocommit{false, false, false, "app", "shop"};

RuleSet rules(std::vector<RuleSpec> specs) {
    auto r = RuleSet::compile(std::move(specs));
    REQUIRE(std::holds_alternative<RuleSet>(r));
    return std::move(std::get<RuleSet>(r));
}

} // namespace

TEST_CASE("decide_route sends plain reads to a replica and everything else to the primary",
          "[router]") {
    struct Row {
        const char* what;
        Classification c;
        Destination dest;
        RouteReason reason;
    };
    const std::vector<Row> rows = {
        {"read", read(), Destination::replica, RouteReason::read},
        {"write", of(StatementClass::write), Destination::primary, RouteReason::write},
        {"ddl", of(StatementClass::ddl), Destination::primary, RouteReason::write},
        {"other", of(StatementClass::other), Destination::primary, RouteReason::write},
        {"prepare_sql", of(StatementClass::prepare_sql), Destination::primary, RouteReason::write},
        {"unknown", of(StatementClass::unknown), Destination::primary, RouteReason::unclassified},
        {"begin", of(StatementClass::begin), Destination::primary, RouteReason::transaction},
        {"begin read only", of(StatementClass::begin_read_only), Destination::replica,
         RouteReason::transaction},
        {"commit", of(StatementClass::commit), Destination::primary, RouteReason::transaction},
        {"rollback", of(StatementClass::rollback), Destination::primary, RouteReason::transaction},
        {"savepoint", of(StatementClass::savepoint), Destination::primary,
         RouteReason::transaction},
        {"set", of(StatementClass::session_set), Destination::primary,
         RouteReason::session_command},
        {"use", of(StatementClass::use), Destination::primary, RouteReason::session_command},
        {"lock tables", of(StatementClass::lock_tables), Destination::primary, RouteReason::pin},
        {"unlock tables", of(StatementClass::unlock_tables), Destination::primary,
         RouteReason::pin},
        {"locking read", with(read(), [](Classification& c) { c.flags.locking_read = true; }),
         Destination::primary, RouteReason::locking_read},
        {"select into", with(read(), [](Classification& c) { c.flags.select_into = true; }),
         Destination::primary, RouteReason::primary_function},
        {"last_insert_id", with(read(), [](Classification& c) { c.flags.primary_function = true; }),
         Destination::primary, RouteReason::primary_function},
        {"found_rows", with(read(), [](Classification& c) { c.flags.found_rows = true; }),
         Destination::primary, RouteReason::primary_function},
        {"calc_found_rows", with(read(), [](Classification& c) { c.flags.calc_found_rows = true; }),
         Destination::primary, RouteReason::primary_function},
        {"get_lock", with(read(), [](Classification& c) { c.flags.takes_user_lock = true; }),
         Destination::primary, RouteReason::primary_function},
        {"multi-statement read",
         with(read(), [](Classification& c) { c.flags.multi_statement = true; }),
         Destination::primary, RouteReason::multi_statement},
        {"bad syntax", with(read(), [](Classification& c) { c.flags.bad_syntax = true; }),
         Destination::primary, RouteReason::unclassified},
        {"non-deterministic read is still a read",
         with(read(), [](Classification& c) { c.flags.non_deterministic = true; }),
         Destination::replica, RouteReason::read},
    };
    for (const auto& row : rows) {
        INFO(row.what);
        const Route r = decide_route(row.c, "", autocommit, no_rules, true);
        CHECK(r.destination == row.dest);
        CHECK(r.reason == row.reason);
    }
}

TEST_CASE("decide_route keeps a read-write transaction on the primary", "[router]") {
    const SessionView trx{true, false, false, "app", "shop"};
    const Route r = decide_route(read(), "", trx, no_rules, true);
    CHECK(r.destination == Destination::primary);
    CHECK(r.reason == RouteReason::transaction);
    auto hinted = with(read(), [](Classification& c) { c.hint.target = Hint::Target::replica; });
    CHECK(decide_route(hinted, "", trx, no_rules, true).destination == Destination::primary);
}

TEST_CASE("decide_route keeps reads of a read-only transaction on the replica", "[router]") {
    const SessionView ro{true, true, false, "app", "shop"};
    CHECK(decide_route(read(), "", ro, no_rules, true) ==
          Route{Destination::replica, RouteReason::transaction});
    // The transaction lives there: it ends there, and a write gets the replica's refusal.
    CHECK(decide_route(of(StatementClass::commit), "", ro, no_rules, true) ==
          Route{Destination::replica, RouteReason::transaction});
    CHECK(decide_route(of(StatementClass::write), "", ro, no_rules, true).destination ==
          Destination::replica);
    auto lock = with(read(), [](Classification& c) { c.flags.takes_user_lock = true; });
    CHECK(decide_route(lock, "", ro, no_rules, true) ==
          Route{Destination::primary, RouteReason::pin});
}

TEST_CASE("#7: in a read-only transaction, what could change the replica runs on the primary",
          "[router]") {
    const SessionView ro{true, true, false, "app", "shop"};
    for (const char* sql :
         {"FLUSH STATUS", "ANALYZE TABLE t", "CREATE TABLE t2 (a INT)", "DROP TABLE t",
          "LOCK TABLES t READ", "CALL p()", "SELECT 1; FLUSH STATUS", "EXECUTE s",
          "OPTIMIZE TABLE t", "SET autocommit = 0", "SET @a = 1, autocommit = 1"}) {
        INFO(sql);
        CHECK(decide_route(classify(sql), "", ro, no_rules, true) ==
              Route{Destination::primary, RouteReason::transaction});
    }
    for (const char* sql :
         {"SELECT * FROM t", "INSERT INTO t VALUES (1)", "COMMIT", "ROLLBACK", "SET @a = 1",
          "USE db", "SAVEPOINT s", "CREATE TEMPORARY TABLE t (a INT)"}) {
        INFO(sql);
        CHECK(decide_route(classify(sql), "", ro, no_rules, true) ==
              Route{Destination::replica, RouteReason::transaction});
    }
}

TEST_CASE("decide_route sends diagnostics where the previous statement ran", "[router]") {
    auto warnings = classify("SHOW WARNINGS");
    SessionView after_replica = autocommit;
    after_replica.last_on_replica = true;
    CHECK(decide_route(warnings, "", after_replica, no_rules, true) ==
          Route{Destination::replica, RouteReason::diagnostics});
    CHECK(decide_route(classify("SELECT FOUND_ROWS()"), "", after_replica, no_rules, true) ==
          Route{Destination::replica, RouteReason::diagnostics});
    // After a statement on the primary, or with the replica gone, the primary answers.
    CHECK(decide_route(warnings, "", autocommit, no_rules, true).destination ==
          Destination::primary);
    CHECK(decide_route(warnings, "", after_replica, no_rules, false).destination ==
          Destination::primary);
    // A diagnostics read that also locks stays on the primary.
    CHECK(decide_route(classify("SELECT ROW_COUNT() FROM t FOR UPDATE"), "", after_replica,
                       no_rules, true)
              .destination == Destination::primary);
}

TEST_CASE("decide_route keeps a pinned session on the primary", "[router]") {
    const SessionView pinned{false, false, true, "app", "shop"};
    CHECK(decide_route(read(), "", pinned, no_rules, true) ==
          Route{Destination::primary, RouteReason::pin});
}

TEST_CASE("#7: after a hidden statement, reads of user variables go to the primary", "[router]") {
    SessionView s = autocommit;
    s.user_variables_on_primary = true;
    CHECK(decide_route(classify("SELECT @query"), "", s, no_rules, true) ==
          Route{Destination::primary, RouteReason::pin});
    CHECK(decide_route(classify("SELECT a FROM t"), "", s, no_rules, true).destination ==
          Destination::replica);
    s.user_variables_on_primary = false;
    CHECK(decide_route(classify("SELECT @query"), "", s, no_rules, true).destination ==
          Destination::replica);
}

TEST_CASE("#7: under SQL_AUTO_IS_NULL, IS NULL reads go to the primary", "[router]") {
    SessionView s = autocommit;
    s.auto_is_null = true;
    CHECK(decide_route(classify("SELECT * FROM t WHERE id IS NULL"), "", s, no_rules, true) ==
          Route{Destination::primary, RouteReason::pin});
    CHECK(decide_route(classify("SELECT * FROM t WHERE id IS NOT NULL"), "", s, no_rules, true)
              .destination == Destination::replica);
    s.auto_is_null = false;
    CHECK(decide_route(classify("SELECT * FROM t WHERE id IS NULL"), "", s, no_rules, true)
              .destination == Destination::replica);
}

TEST_CASE("#7: catalog reads go to the primary unless a rule or a replica hint says otherwise",
          "[router]") {
    CHECK(decide_route(classify("SHOW CREATE TABLE t"), "", autocommit, no_rules, true) ==
          Route{Destination::primary, RouteReason::catalog});
    CHECK(decide_route(classify("/* sluice: replica */ SHOW CREATE TABLE t"), "", autocommit,
                       no_rules, true)
              .destination == Destination::replica);
    const RuleSet rs = rules({{"cat", "^SHOW", "", "", Destination::replica, 0, "", {}, {}}});
    CHECK(decide_route(classify("SHOW TABLE STATUS"), "SHOW TABLE STATUS", autocommit, rs, true)
              .destination == Destination::replica);
}

TEST_CASE("decide_route falls back to the primary when no replica is available", "[router]") {
    CHECK(decide_route(read(), "", autocommit, no_rules, false) ==
          Route{Destination::primary, RouteReason::no_replica});
}

TEST_CASE("decide_route follows hints but never sends a write to a replica", "[router]") {
    auto primary_hint =
        with(read(), [](Classification& c) { c.hint.target = Hint::Target::primary; });
    CHECK(decide_route(primary_hint, "", autocommit, no_rules, true) ==
          Route{Destination::primary, RouteReason::hint});

    auto lag = with(read(), [](Classification& c) { c.hint.max_lag_ms = 2000; });
    const Route r = decide_route(lag, "", autocommit, no_rules, true);
    CHECK(r.destination == Destination::replica);
    CHECK(r.reason == RouteReason::hint);
    CHECK(r.max_lag_ms == 2000u);

    auto write = of(StatementClass::write);
    write.hint.target = Hint::Target::replica;
    CHECK(decide_route(write, "", autocommit, no_rules, true) ==
          Route{Destination::primary, RouteReason::write});
}

TEST_CASE("decide_route applies the first matching rule on digest, user and schema", "[router]") {
    const RuleSet rs = rules({
        {"refuse drops", "^DROP ", "", "", Destination::refuse, 1142, "no drops here", {}, {}},
        {"reports to primary", "FROM report_", "", "", Destination::primary, 1105, "", {}, {}},
        {"batch user on replica", "", "batch", "", Destination::replica, 1105, "", 5000, {}},
        {"analytics schema", "", "", "analytics", Destination::primary, 1105, "", {}, {}},
    });
    const auto drop = decide_route(of(StatementClass::ddl), "DROP TABLE t", autocommit, rs, true);
    CHECK(drop.destination == Destination::refuse);
    REQUIRE(drop.rule != nullptr);
    CHECK(drop.rule->error_code == 1142);
    CHECK(drop.rule->error_message == "no drops here");

    const auto rep =
        decide_route(read(), "SELECT * FROM report_daily WHERE id = ?", autocommit, rs, true);
    CHECK(rep.destination == Destination::primary);
    CHECK(rep.reason == RouteReason::rule);

    const SessionView batch{false, false, false, "batch", "shop"};
    const auto b = decide_route(read(), "SELECT ?", batch, rs, true);
    CHECK(b.destination == Destination::replica);
    CHECK(b.reason == RouteReason::rule);
    CHECK(b.max_lag_ms == 5000u);
    // A rule may not send a write to a replica.
    CHECK(decide_route(of(StatementClass::write), "UPDATE t SET a = ?", batch, rs, true)
              .destination == Destination::primary);

    const SessionView analytics{false, false, false, "app", "analytics"};
    CHECK(decide_route(read(), "SELECT ?", analytics, rs, true).destination ==
          Destination::primary);
    CHECK(decide_route(read(), "SELECT ?", autocommit, rs, true) ==
          Route{Destination::replica, RouteReason::read});
}

TEST_CASE("RuleSet refuses a pattern RE2 cannot compile", "[router]") {
    auto r =
        RuleSet::compile({{"bad", "(unclosed", "", "", Destination::primary, 1105, "", {}, {}}});
    REQUIRE(std::holds_alternative<std::string>(r));
    CHECK(std::get<std::string>(r).find("query_rules[0].match_digest") == 0);
}

TEST_CASE("route_reason_name names every reason", "[router]") {
    for (int i = 0; i < static_cast<int>(RouteReason::count_); ++i)
        CHECK(std::string(route_reason_name(static_cast<RouteReason>(i))) != "unknown");
}
