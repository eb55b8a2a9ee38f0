// classify(): the hand-written statement table, plus properties every statement must have.

#include "statement_table.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <set>
#include <string>

using namespace sluice::router;
using namespace sluice::router::test;
using table::k_rows;

TEST_CASE("the statement table holds at least 400 distinct statements", "[router][classify]") {
    std::set<std::string_view> seen;
    for (const auto& row : k_rows) {
        INFO(row.sql);
        CHECK(seen.insert(row.sql).second);
    }
    CHECK(seen.size() >= 400);
}

TEST_CASE("every statement in the table gets its class, flags and autocommit route",
          "[router][classify]") {
    for (const auto& row : k_rows) {
        INFO("sql: " << row.sql);
        const Classification c = classify(row.sql);
        CHECK(c.cls == row.cls);
        CHECK(flag_letters(c.flags) == canonical_letters(row.flags));
        CHECK(autocommit_route(c) == row.route);
    }
}

TEST_CASE("the route rule sends reads to replicas only when nothing in them needs the primary",
          "[router][classify]") {
    Classification c;
    c.cls = StatementClass::read;
    CHECK(autocommit_route(c) == Where::replica);
    c.flags.calc_found_rows = true; // FOUND_ROWS() must run where this ran: the primary
    CHECK(autocommit_route(c) == Where::primary);
    c.flags.calc_found_rows = false;
    c.flags.select_into = true;
    CHECK(autocommit_route(c) == Where::primary);
    c.hint.target = Hint::Target::replica; // a hint never sends an unsafe read to a replica
    CHECK(autocommit_route(c) == Where::primary);
    c.flags.select_into = false;
    CHECK(autocommit_route(c) == Where::replica);
    c.cls = StatementClass::write;
    CHECK(autocommit_route(c) == Where::primary);
    c.cls = StatementClass::begin_read_only;
    c.hint.target = Hint::Target::primary;
    CHECK(autocommit_route(c) == Where::primary);
}

TEST_CASE("classify never reads past the end of any prefix of any table statement",
          "[router][classify]") {
    // Each prefix is copied into a buffer of exactly its size, so a read past the end is a
    // heap overflow under AddressSanitizer.
    std::size_t prefixes = 0;
    for (const auto& row : k_rows) {
        for (std::size_t len = 0; len <= row.sql.size(); ++len) {
            auto buf = std::make_unique<char[]>(len == 0 ? 1 : len);
            std::copy_n(row.sql.data(), len, buf.get());
            const std::string_view cut{buf.get(), len};
            const Classification c = classify(cut);
            (void)digest(cut);
            // Whatever a cut makes of the text, an unreadable one never leaves the primary.
            if (c.flags.bad_syntax) CHECK(c.cls == StatementClass::unknown);
            ++prefixes;
        }
    }
    CHECK(prefixes > 10000);
}

TEST_CASE("classify gives the same answer twice", "[router][classify]") {
    for (const auto& row : k_rows) {
        INFO(row.sql);
        const Classification a = classify(row.sql);
        const Classification b = classify(row.sql);
        CHECK(a.cls == b.cls);
        CHECK(flag_letters(a.flags) == flag_letters(b.flags));
        CHECK(a.hint == b.hint);
        CHECK(a.session_changes == b.session_changes);
        CHECK(a.use_database == b.use_database);
    }
}

TEST_CASE("a bad-syntax statement is always unknown", "[router][classify]") {
    for (const auto& row : k_rows) {
        const Classification c = classify(row.sql);
        if (!c.flags.bad_syntax) continue;
        INFO(row.sql);
        CHECK(c.cls == StatementClass::unknown);
    }
}

TEST_CASE("NO_BACKSLASH_ESCAPES changes where strings end", "[router][classify]") {
    const SqlMode nbe{.no_backslash_escapes = true, .ansi_quotes = false};
    // With the mode, '\' is a whole string and FOR UPDATE is code.
    const auto c = classify("SELECT 'a\\' FOR UPDATE", nbe);
    CHECK(c.cls == StatementClass::read);
    CHECK(c.flags.locking_read);
    CHECK_FALSE(c.flags.bad_syntax);
    // Without it the same text is an unterminated string: primary either way.
    CHECK(classify("SELECT 'a\\' FOR UPDATE").flags.bad_syntax);
    // The text that would hide a write from a lexer that did not know the mode.
    const auto hidden = classify("SELECT '\\'; UPDATE t SET a = 1; -- '", nbe);
    CHECK(hidden.cls == StatementClass::write);
    CHECK(hidden.flags.multi_statement);
    CHECK(classify("SELECT '\\'; UPDATE t SET a = 1; -- '").cls == StatementClass::read);
}

TEST_CASE("ANSI_QUOTES makes double-quoted text a name", "[router][classify]") {
    const SqlMode ansi{.no_backslash_escapes = false, .ansi_quotes = true};
    const auto c = classify("SELECT \"for\", \"update\" FROM \"t\"", ansi);
    CHECK(c.cls == StatementClass::read);
    CHECK_FALSE(c.flags.locking_read);
    const auto u = classify("SELECT \"a\\\" FROM t", ansi); // no escapes in names
    CHECK(u.cls == StatementClass::read);
    CHECK_FALSE(u.flags.bad_syntax);
    CHECK(classify("SELECT _utf8mb4\"x\" FOR UPDATE", ansi).flags.locking_read);
}

TEST_CASE("a very long statement is classified in one pass", "[router][classify]") {
    std::string sql = "SELECT * FROM t WHERE id IN (";
    for (int i = 0; i < 200000; ++i)
        sql += "1,";
    sql += "2) FOR UPDATE";
    const auto c = classify(sql);
    CHECK(c.cls == StatementClass::read);
    CHECK(c.flags.locking_read);
    const auto d = digest(sql);
    CHECK(d.text == "SELECT * FROM t WHERE id IN (...) FOR UPDATE");
}

TEST_CASE("deep parentheses and long statement chains do not exhaust the stack",
          "[router][classify]") {
    std::string deep(100000, '(');
    deep += "SELECT 1";
    CHECK(classify(deep).cls == StatementClass::read);
    std::string chain;
    for (int i = 0; i < 2000; ++i)
        chain += "SET STATEMENT a=1 FOR ";
    chain += "SELECT 1";
    CHECK(classify(chain).cls == StatementClass::unknown); // nesting beyond 4 is refused
    std::string many;
    for (int i = 0; i < 20000; ++i)
        many += "SELECT 1;";
    const auto c = classify(many);
    CHECK(c.cls == StatementClass::read);
    CHECK(c.flags.multi_statement);
}
