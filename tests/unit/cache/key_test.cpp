// The cache key: every field that changes an answer changes the key, alone and at the
// boundaries of the length-prefixed encoding; equal inputs give equal keys; the hex and Redis
// forms.

#include "sluice/cache/key.hpp"

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

using namespace sluice::cache;

namespace {

const std::uint8_t param_bytes[] = {0x00, 0x01, 0x08, 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0};
const std::uint8_t other_param_bytes[] = {0x00, 0x01, 0x08, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0};
const TableVersion base_tables[] = {{"shop.items", 7}, {"shop.orders", 42}};

KeyInput base() {
    KeyInput in;
    in.protocol = Protocol::mysql;
    in.user = "app";
    in.database = "shop";
    in.statement = "SELECT name FROM items WHERE id = 1";
    in.params = std::nullopt;
    in.charset = "utf8mb4";
    in.collation = "utf8mb4_general_ci";
    in.sql_mode = "STRICT_TRANS_TABLES";
    in.time_zone = "SYSTEM";
    in.shared = false;
    in.tables = base_tables;
    return in;
}

struct Variant {
    const char* what;
    std::function<void(KeyInput&)> change;
};

} // namespace

namespace Catch {
template <> struct StringMaker<Key> {
    static std::string convert(const Key& k) { return k.hex(); }
};
} // namespace Catch

TEST_CASE("each field changed alone, and each length-prefix boundary, gives a different key",
          "[cache][key]") {
    static const TableVersion bumped[] = {{"shop.items", 8}, {"shop.orders", 42}};
    static const TableVersion bumped_second[] = {{"shop.items", 7}, {"shop.orders", 43}};
    static const TableVersion renamed[] = {{"shop.item", 7}, {"shop.orders", 42}};
    static const TableVersion swapped[] = {{"shop.orders", 42}, {"shop.items", 7}};
    static const TableVersion one_table[] = {{"shop.items", 7}};
    static const TableVersion three_tables[] = {
        {"shop.items", 7}, {"shop.orders", 42}, {"shop.users", 1}};
    static const TableVersion empty_name[] = {{"", 0}};
    static const TableVersion split_ab_c[] = {{"ab", 1}, {"c", 1}};
    static const TableVersion split_a_bc[] = {{"a", 1}, {"bc", 1}};

    const std::vector<Variant> variants = {
        {"the base input", [](KeyInput&) {}},
        {"protocol tds", [](KeyInput& in) { in.protocol = Protocol::tds; }},
        {"another user", [](KeyInput& in) { in.user = "app2"; }},
        {"no user", [](KeyInput& in) { in.user = ""; }},
        {"another database", [](KeyInput& in) { in.database = "shop2"; }},
        {"no database", [](KeyInput& in) { in.database = ""; }},
        {"another literal",
         [](KeyInput& in) { in.statement = "SELECT name FROM items WHERE id = 2"; }},
        {"a prepared execution without parameters",
         [](KeyInput& in) { in.params = std::span<const std::uint8_t>{}; }},
        {"a prepared execution with parameters", [](KeyInput& in) { in.params = param_bytes; }},
        {"a prepared execution with another value",
         [](KeyInput& in) { in.params = other_param_bytes; }},
        {"another character set", [](KeyInput& in) { in.charset = "latin1"; }},
        {"another collation", [](KeyInput& in) { in.collation = "utf8mb4_bin"; }},
        {"another sql_mode", [](KeyInput& in) { in.sql_mode = "ANSI_QUOTES"; }},
        {"another time zone", [](KeyInput& in) { in.time_zone = "+00:00"; }},
        {"other settings", [](KeyInput& in) { in.settings = "lc_time_names = 'de_DE'"; }},
        {"shared", [](KeyInput& in) { in.shared = true; }},
        {"first table's version bumped", [](KeyInput& in) { in.tables = bumped; }},
        {"second table's version bumped", [](KeyInput& in) { in.tables = bumped_second; }},
        {"a table renamed", [](KeyInput& in) { in.tables = renamed; }},
        {"tables in another order", [](KeyInput& in) { in.tables = swapped; }},
        {"one table fewer", [](KeyInput& in) { in.tables = one_table; }},
        {"one table more", [](KeyInput& in) { in.tables = three_tables; }},
        {"no tables", [](KeyInput& in) { in.tables = {}; }},
        {"one table with an empty name", [](KeyInput& in) { in.tables = empty_name; }},
        {"tables ab, c", [](KeyInput& in) { in.tables = split_ab_c; }},
        {"tables a, bc", [](KeyInput& in) { in.tables = split_a_bc; }},
        // Adjacent string fields with the same concatenation.
        {"user+database ab|c",
         [](KeyInput& in) {
             in.user = "ab";
             in.database = "c";
         }},
        {"user+database a|bc",
         [](KeyInput& in) {
             in.user = "a";
             in.database = "bc";
         }},
        {"database+statement split differently",
         [](KeyInput& in) {
             in.database = "shopS";
             in.statement = "ELECT name FROM items WHERE id = 1";
         }},
        {"sql_mode+time_zone x|(empty)",
         [](KeyInput& in) {
             in.sql_mode = "x";
             in.time_zone = "";
         }},
        {"sql_mode+time_zone (empty)|x",
         [](KeyInput& in) {
             in.sql_mode = "";
             in.time_zone = "x";
         }},
        {"charset+collation ab|c",
         [](KeyInput& in) {
             in.charset = "ab";
             in.collation = "c";
         }},
        {"charset+collation a|bc",
         [](KeyInput& in) {
             in.charset = "a";
             in.collation = "bc";
         }},
    };

    std::vector<Key> keys;
    for (const auto& v : variants) {
        KeyInput in = base();
        v.change(in);
        keys.push_back(make_key(in));
    }
    for (std::size_t i = 0; i < keys.size(); ++i) {
        for (std::size_t j = i + 1; j < keys.size(); ++j) {
            INFO(variants[i].what << " vs " << variants[j].what);
            CHECK_FALSE(keys[i] == keys[j]);
        }
    }
}

TEST_CASE("equal inputs in different buffers give equal keys", "[cache][key]") {
    const std::string user = "app", db = "shop", sql = "SELECT 1", cs = "utf8mb4";
    const std::string user2 = user, db2 = db, sql2 = sql, cs2 = cs;
    const std::vector<std::uint8_t> params = {1, 2, 3}, params2 = params;
    const std::string t1 = "shop.items", t2 = t1;
    const TableVersion tables[] = {{t1, 3}};
    const TableVersion tables2[] = {{t2, 3}};

    KeyInput a;
    a.user = user;
    a.database = db;
    a.statement = sql;
    a.charset = cs;
    a.params = params;
    a.tables = tables;
    KeyInput b;
    b.user = user2;
    b.database = db2;
    b.statement = sql2;
    b.charset = cs2;
    b.params = params2;
    b.tables = tables2;

    CHECK(make_key(a) == make_key(b));
    CHECK(make_key(base()) == make_key(base()));
}

TEST_CASE("a shared entry leaves the user out of the key, a private one does not", "[cache][key]") {
    KeyInput a = base(), b = base();
    a.user = "alice";
    b.user = "bob";
    CHECK_FALSE(make_key(a) == make_key(b));
    a.shared = b.shared = true;
    CHECK(make_key(a) == make_key(b));
}

TEST_CASE("the key of a fixed input does not change between builds", "[cache][key]") {
    // Proxies of different builds share one Redis: a change here must come with a new
    // key_format in key.cpp, and then this pinned value is updated.
    CHECK(make_key(base()).hex() == "48e83c050d1286ffb697c2dc20f36c04");
    // XXH3_128bits of the 76 bytes 02 01 00, then zeros: format 2, protocol mysql, not
    // shared, empty user, database and statement (8-byte lengths), no params, five empty
    // settings fields, zero tables (checked with libxxhash's XXH3_128bits directly).
    CHECK(make_key(KeyInput{}).hex() == "544e179416b3d41255ec9ef7fba20210");
}

TEST_CASE("hex is 32 lowercase digits, the high half first", "[cache][key]") {
    CHECK(Key{0x0123456789abcdefULL, 0xfedcba9876543210ULL}.hex() ==
          "0123456789abcdeffedcba9876543210");
    CHECK(Key{0, 1}.hex() == "00000000000000000000000000000001");
    CHECK(Key{1, 0}.hex() == "00000000000000010000000000000000");
    CHECK(Key{~0ULL, ~0ULL}.hex() == "ffffffffffffffffffffffffffffffff");
    const std::string h = make_key(base()).hex();
    CHECK(h.size() == 32);
    CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE("redis_key puts the hex digits in a hash tag after the prefix", "[cache][key]") {
    const Key k{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    CHECK(redis_key(k, "sluice:") == "sluice:{0123456789abcdeffedcba9876543210}");
    CHECK(redis_key(k, "") == "{0123456789abcdeffedcba9876543210}");
}

TEST_CASE("redis_prefix_ok refuses prefixes with braces", "[cache][key]") {
    struct Row {
        const char* prefix;
        bool ok;
    };
    const Row rows[] = {
        {"", true},      {"sluice:", true}, {"prod:sluice:", true},
        {"{x}:", false}, {"a{", false},     {"a}", false},
    };
    for (const auto& row : rows) {
        INFO(row.prefix);
        CHECK(redis_prefix_ok(row.prefix) == row.ok);
    }
}

TEST_CASE("keys work in unordered containers, including keys with equal low halves",
          "[cache][key]") {
    std::unordered_set<Key> set;
    set.insert(Key{1, 5});
    set.insert(Key{2, 5});
    set.insert(Key{1, 5});
    CHECK(set.size() == 2);
    CHECK(set.count(Key{2, 5}) == 1);
    CHECK(set.count(Key{3, 5}) == 0);
}
