// classify(): /* sluice: ... */ routing hints in leading comments.

#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice::router;
using Target = Hint::Target;

namespace {

Hint hint(Target t, std::optional<std::uint32_t> lag = std::nullopt) {
    Hint h;
    h.target = t;
    h.max_lag_ms = lag;
    return h;
}

struct HintRow {
    std::string_view sql;
    Hint want;
};

void check_rows(std::initializer_list<HintRow> rows) {
    for (const auto& row : rows) {
        INFO("sql: " << row.sql);
        const Hint got = classify(row.sql).hint;
        INFO("got target " << static_cast<int>(got.target) << " lag "
                           << (got.max_lag_ms ? std::to_string(*got.max_lag_ms) : "none"));
        CHECK(got == row.want);
    }
}

} // namespace

TEST_CASE("a leading sluice comment names the target", "[router][hint]") {
    check_rows({
        {"/* sluice: primary */ SELECT 1", hint(Target::primary)},
        {"/* sluice: replica */ SELECT 1", hint(Target::replica)},
        {"/*sluice:primary*/SELECT 1", hint(Target::primary)},
        {"/*sluice:replica*/ SELECT 1", hint(Target::replica)},
        {"/* SLUICE: PRIMARY */ SELECT 1", hint(Target::primary)},
        {"/* Sluice : Replica */ SELECT 1", hint(Target::replica)},
        {"/*\n  sluice:\n  primary\n*/ SELECT 1", hint(Target::primary)},
        {"SELECT 1", hint(Target::none)},
    });
}

TEST_CASE("max_lag takes milliseconds, seconds or a plain number of seconds", "[router][hint]") {
    check_rows({
        {"/* sluice: max_lag=2s */ SELECT 1", hint(Target::none, 2000)},
        {"/* sluice: max_lag=500ms */ SELECT 1", hint(Target::none, 500)},
        {"/* sluice: max_lag=3 */ SELECT 1", hint(Target::none, 3000)},
        {"/* sluice: max_lag = 2S */ SELECT 1", hint(Target::none, 2000)},
        {"/* sluice: MAX_LAG=250MS */ SELECT 1", hint(Target::none, 250)},
        {"/* sluice: max_lag=0 */ SELECT 1", hint(Target::none, 0)},
        {"/* sluice: max_lag=4294967s */ SELECT 1", hint(Target::none, 4294967000u)},
        {"/* sluice: max_lag=4294967295ms */ SELECT 1", hint(Target::none, 4294967295u)},
    });
}

TEST_CASE("hint items combine with commas or spaces", "[router][hint]") {
    check_rows({
        {"/* sluice: replica, max_lag=500ms */ SELECT 1", hint(Target::replica, 500)},
        {"/* sluice: replica max_lag=500ms */ SELECT 1", hint(Target::replica, 500)},
        {"/* sluice: max_lag=1s,replica */ SELECT 1", hint(Target::replica, 1000)},
        {"/*sluice:replica,max_lag=0*/SELECT 1", hint(Target::replica, 0)},
        {"/* sluice: , replica ,, */ SELECT 1", hint(Target::replica)},
    });
}

TEST_CASE("primary beats replica, a later max_lag replaces an earlier one", "[router][hint]") {
    check_rows({
        {"/* sluice: primary, replica */ SELECT 1", hint(Target::primary)},
        {"/* sluice: replica, primary */ SELECT 1", hint(Target::primary)},
        {"/* sluice: primary */ /* sluice: replica */ SELECT 1", hint(Target::primary)},
        {"/* sluice: replica */ /* sluice: primary */ SELECT 1", hint(Target::primary)},
        {"/* sluice: replica */ /* sluice: max_lag=1s */ SELECT 1", hint(Target::replica, 1000)},
        {"/* sluice: max_lag=1s */ /* sluice: max_lag=2s */ SELECT 1", hint(Target::none, 2000)},
        {"/* sluice: max_lag=1s, max_lag=3s */ SELECT 1", hint(Target::none, 3000)},
    });
}

TEST_CASE("every comment style before the first token may carry a hint", "[router][hint]") {
    check_rows({
        {"-- sluice: replica\nSELECT 1", hint(Target::replica)},
        {"--\tsluice: replica\nSELECT 1", hint(Target::replica)},
        {"# sluice: primary\nSELECT 1", hint(Target::primary)},
        {"#sluice:replica\nSELECT 1", hint(Target::replica)},
        {"/*+ sluice: primary */ SELECT 1", hint(Target::primary)},
        {"/* app=shop */ /* sluice: replica */ SELECT 1", hint(Target::replica)},
        {"\n  /* sluice: replica */\n SELECT 1", hint(Target::replica)},
        {"/* sluice: primary */", hint(Target::primary)}, // nothing else: still read
    });
}

TEST_CASE("a hint after the first token is ignored", "[router][hint]") {
    check_rows({
        {"SELECT /* sluice: primary */ 1", hint(Target::none)},
        {"SELECT 1 /* sluice: primary */", hint(Target::none)},
        {"SELECT 1; /* sluice: primary */ SELECT 2", hint(Target::none)},
        {"SELECT 1 -- sluice: primary", hint(Target::none)},
        {"/*!40101 SELECT 1 */ /* sluice: primary */", hint(Target::none)},
        {"/*! sluice: primary */ SELECT 1", hint(Target::none)}, // versioned: code
    });
}

TEST_CASE("a malformed hint is ignored as a whole, never a failure", "[router][hint]") {
    check_rows({
        {"/* sluice: max_lag=abc */ SELECT 1", hint(Target::none)},
        {"/* sluice: replica, max_lag=abc */ SELECT 1", hint(Target::none)},
        {"/* sluice: max_lag=2h */ SELECT 1", hint(Target::none)},
        {"/* sluice: max_lag= */ SELECT 1", hint(Target::none)},
        {"/* sluice: max_lag */ SELECT 1", hint(Target::none)},
        {"/* sluice: max_lag=-1 */ SELECT 1", hint(Target::none)},
        {"/* sluice: max_lag=1.5s */ SELECT 1", hint(Target::none)},
        {"/* sluice: max_lag=2s5 */ SELECT 1", hint(Target::none)},
        {"/* sluice: max_lag=4294968s */ SELECT 1", hint(Target::none)},
        {"/* sluice: max_lag=99999999999 */ SELECT 1", hint(Target::none)},
        {"/* sluice: replica, bogus */ SELECT 1", hint(Target::none)},
        {"/* sluice: replicax */ SELECT 1", hint(Target::none)},
        {"/* sluice: */ SELECT 1", hint(Target::none)},
        {"/* sluice primary */ SELECT 1", hint(Target::none)},
        {"/* sluicer: primary */ SELECT 1", hint(Target::none)},
        {"/* other: primary */ SELECT 1", hint(Target::none)},
        {"/* primary */ SELECT 1", hint(Target::none)},
        {"/* sluice: primary; */ SELECT 1", hint(Target::none)},
    });
    const auto c = classify("/* sluice: max_lag=abc */ SELECT 1");
    CHECK(c.cls == StatementClass::read);
    CHECK_FALSE(c.flags.bad_syntax);
}

TEST_CASE("a good hint survives a malformed one beside it", "[router][hint]") {
    check_rows({
        {"/* sluice: replica */ /* sluice: max_lag=abc */ SELECT 1", hint(Target::replica)},
        {"/* sluice: bogus */ /* sluice: max_lag=2s */ SELECT 1", hint(Target::none, 2000)},
    });
}

TEST_CASE("#8: consistency=eventual|session|global in a hint", "[router][hint]") {
    auto with = [](Consistency c, Target t = Target::none) {
        Hint h = hint(t);
        h.consistency = c;
        return h;
    };
    check_rows({
        {"/* sluice: consistency=eventual */ SELECT 1", with(Consistency::eventual)},
        {"/* sluice: consistency = Session */ SELECT 1", with(Consistency::session)},
        {"/* sluice: replica, consistency=global */ SELECT 1",
         with(Consistency::global, Target::replica)},
        {"/* sluice: consistency=fleet */ SELECT 1", with(Consistency::fleet)},
        {"/* sluice: consistency=strong */ SELECT 1", hint(Target::none)},
        {"/* sluice: consistency */ SELECT 1", hint(Target::none)},
        {"/* sluice: consistency=eventualx */ SELECT 1", hint(Target::none)},
    });
}

TEST_CASE("#9: cache, ttl=... and nocache in a hint", "[router][hint]") {
    auto cached = [](std::optional<std::uint32_t> ttl, Target t = Target::none) {
        Hint h = hint(t);
        h.cache = Hint::Cache::cache;
        h.cache_ttl_ms = ttl;
        return h;
    };
    Hint off = hint(Target::none);
    off.cache = Hint::Cache::nocache;
    check_rows({
        {"/* sluice: cache */ SELECT 1", cached(std::nullopt)},
        {"/* sluice: cache ttl=60s */ SELECT 1", cached(60000)},
        {"/* sluice: ttl=250ms */ SELECT 1", cached(250)},
        {"/* sluice: replica, cache, ttl=5 */ SELECT 1", cached(5000, Target::replica)},
        {"/* sluice: nocache */ SELECT 1", off},
        {"/* sluice: cache nocache ttl=5s */ SELECT 1", off},
        {"/* sluice: nocache */ /* sluice: cache ttl=5s */ SELECT 1", off},
        {"/* sluice: cache */ /* sluice: nocache */ SELECT 1", off},
        {"/* sluice: cache ttl */ SELECT 1", hint(Target::none)},
        {"/* sluice: cache ttl=5m */ SELECT 1", hint(Target::none)},
        {"/* sluice: cachex */ SELECT 1", hint(Target::none)},
    });
}

TEST_CASE("#9: the statement without its leading comments", "[router][hint]") {
    using sluice::router::without_leading_comments;
    CHECK(without_leading_comments("/* sluice: cache */ SELECT 1") == "SELECT 1");
    CHECK(without_leading_comments("  /* a */ /*+ b */\n# c\n-- d\nSELECT 1") == "SELECT 1");
    CHECK(without_leading_comments("/*!40101 SELECT */ 1") == "/*!40101 SELECT */ 1");
    CHECK(without_leading_comments("/*M!100000 SELECT */ 1") == "/*M!100000 SELECT */ 1");
    CHECK(without_leading_comments("/* open SELECT 1") == "/* open SELECT 1");
    CHECK(without_leading_comments("--1 SELECT") == "--1 SELECT");
    CHECK(without_leading_comments("-- only") == "");
    CHECK(without_leading_comments("SELECT 1 /* x */") == "SELECT 1 /* x */");
    CHECK(without_leading_comments("") == "");
}
