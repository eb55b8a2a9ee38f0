// The L1 LRU: hits and misses, LRU order under pressure, exact byte accounting, replacement,
// expiry at the expiry instant, oversize refusal, clear, and the counters. Time is passed in.

#include "sluice/cache/l1.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace sluice::cache;
using namespace std::chrono_literals;

namespace {

// An arbitrary steady-clock instant: tests pass time in and never read the clock.
const L1::time_point t0 = L1::time_point{} + 3600s;
const L1::time_point later = t0 + 300s;

L1::Value blob(std::size_t size, char fill = 'x') {
    return std::make_shared<const std::string>(size, fill);
}

Key key(std::uint64_t n) { return Key{0x5eed, n}; }

constexpr std::size_t cost(std::size_t blob_size) { return blob_size + L1::entry_overhead; }

} // namespace

TEST_CASE("an empty cache misses, a stored entry hits with the same blob", "[cache][l1]") {
    L1 l1{L1::default_max_bytes};
    CHECK(l1.get(key(1), t0) == nullptr);
    const auto v = blob(10);
    CHECK(l1.put(key(1), v, later));
    CHECK(l1.get(key(1), t0) == v);
    CHECK(l1.get(key(2), t0) == nullptr);
    CHECK(l1.size() == 1);
    CHECK(l1.max_bytes() == 64u * 1024 * 1024);
}

TEST_CASE("keys that differ only in their high half are different entries", "[cache][l1]") {
    L1 l1{L1::default_max_bytes};
    const auto a = blob(1, 'a'), b = blob(1, 'b');
    CHECK(l1.put(Key{1, 9}, a, later));
    CHECK(l1.put(Key{2, 9}, b, later));
    CHECK(l1.get(Key{1, 9}, t0) == a);
    CHECK(l1.get(Key{2, 9}, t0) == b);
    CHECK(l1.size() == 2);
}

TEST_CASE("under pressure the least recently used entry goes first, and a get protects one",
          "[cache][l1]") {
    // Room for exactly eight entries of 100 bytes.
    L1 l1{8 * cost(100)};
    for (std::uint64_t i = 0; i < 8; ++i)
        REQUIRE(l1.put(key(i), blob(100), later));
    CHECK(l1.bytes() == l1.max_bytes());
    CHECK(l1.evictions() == 0);

    REQUIRE(l1.get(key(0), t0) != nullptr); // 0 is now the most recently used
    REQUIRE(l1.put(key(8), blob(100), later));
    CHECK(l1.evictions() == 1);
    CHECK(l1.get(key(1), t0) == nullptr); // the oldest untouched one went
    CHECK(l1.get(key(0), t0) != nullptr);

    // Order now, least recent first: 2 3 4 5 6 7 8 0. Two more puts push out 2 and 3.
    REQUIRE(l1.put(key(9), blob(100), later));
    REQUIRE(l1.put(key(10), blob(100), later));
    CHECK(l1.evictions() == 3);
    for (std::uint64_t gone : {1, 2, 3}) {
        INFO("key " << gone);
        CHECK(l1.get(key(gone), t0) == nullptr);
    }
    for (std::uint64_t kept : {0, 4, 5, 6, 7, 8, 9, 10}) {
        INFO("key " << kept);
        CHECK(l1.get(key(kept), t0) != nullptr);
    }
    CHECK(l1.size() == 8);
    CHECK(l1.bytes() == l1.max_bytes());
}

TEST_CASE("a put evicts as many entries as it needs room for, and no more", "[cache][l1]") {
    // Entries with empty blobs cost entry_overhead each: 16 of them fill the cache.
    L1 l1{16 * L1::entry_overhead};
    for (std::uint64_t i = 0; i < 16; ++i)
        REQUIRE(l1.put(key(i), blob(0), later));
    REQUIRE(l1.bytes() == l1.max_bytes());
    // The largest entry allowed (max_bytes / 8) costs two empty entries' room.
    REQUIRE(l1.put(key(100), blob(l1.max_bytes() / 8 - L1::entry_overhead), later));
    CHECK(l1.evictions() == 2);
    CHECK(l1.size() == 15);
    CHECK(l1.get(key(0), t0) == nullptr);
    CHECK(l1.get(key(1), t0) == nullptr);
    CHECK(l1.get(key(2), t0) != nullptr);
    CHECK(l1.bytes() == l1.max_bytes());
}

TEST_CASE("bytes is the sum of blob sizes plus the per-entry overhead", "[cache][l1]") {
    L1 l1{L1::default_max_bytes};
    CHECK(l1.bytes() == 0);
    const std::vector<std::size_t> sizes = {0, 1, 100, 4096, 65536};
    std::size_t expected = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        REQUIRE(l1.put(key(i), blob(sizes[i]), later));
        expected += cost(sizes[i]);
        CHECK(l1.bytes() == expected);
    }
    l1.erase(key(2));
    expected -= cost(100);
    CHECK(l1.bytes() == expected);
    l1.erase(key(2)); // already gone: nothing changes
    l1.erase(key(999));
    CHECK(l1.bytes() == expected);
    CHECK(l1.size() == sizes.size() - 1);
    CHECK(l1.evictions() == 0);
    CHECK(l1.expirations() == 0);
}

TEST_CASE("a put under an existing key replaces its value, size and expiry", "[cache][l1]") {
    L1 l1{L1::default_max_bytes};
    REQUIRE(l1.put(key(1), blob(10, 'a'), t0 + 1s));
    REQUIRE(l1.put(key(2), blob(20), later));
    const auto replacement = blob(1000, 'b');
    CHECK(l1.put(key(1), replacement, later));
    CHECK(l1.size() == 2);
    CHECK(l1.bytes() == cost(1000) + cost(20));
    CHECK(l1.get(key(1), t0 + 2s) == replacement); // the old expiry no longer applies
    CHECK(l1.evictions() == 0);
}

TEST_CASE("a replaced entry becomes the most recently used", "[cache][l1]") {
    L1 l1{8 * cost(100)};
    for (std::uint64_t i = 0; i < 8; ++i)
        REQUIRE(l1.put(key(i), blob(100), later));
    REQUIRE(l1.put(key(0), blob(100, 'y'), later));
    REQUIRE(l1.put(key(8), blob(100), later));
    CHECK(l1.get(key(0), t0) != nullptr);
    CHECK(l1.get(key(1), t0) == nullptr);
}

TEST_CASE("an entry is expired from its expiry instant on", "[cache][l1]") {
    struct Row {
        L1::time_point now;
        bool hit;
    };
    const L1::time_point expires = t0 + 10s;
    const std::vector<Row> rows = {
        {t0, true},
        {expires - 1ns, true},
        {expires, false},
        {expires + 1ns, false},
        {expires + 3600s, false},
    };
    for (const auto& row : rows) {
        INFO((row.now - t0).count() << " ns after t0");
        L1 l1{L1::default_max_bytes};
        REQUIRE(l1.put(key(1), blob(10), expires));
        CHECK((l1.get(key(1), row.now) != nullptr) == row.hit);
        CHECK(l1.expirations() == (row.hit ? 0u : 1u));
        CHECK(l1.size() == (row.hit ? 1u : 0u));
        CHECK(l1.bytes() == (row.hit ? cost(10) : 0u));
    }
}

TEST_CASE("an expired entry is removed at the first get and then is a plain miss", "[cache][l1]") {
    L1 l1{L1::default_max_bytes};
    REQUIRE(l1.put(key(1), blob(10), t0));
    REQUIRE(l1.put(key(2), blob(10), later));
    CHECK(l1.get(key(1), t0) == nullptr);
    CHECK(l1.get(key(1), t0) == nullptr);
    CHECK(l1.expirations() == 1);
    CHECK(l1.get(key(2), t0) != nullptr);
    CHECK(l1.evictions() == 0);
}

TEST_CASE("an entry larger than an eighth of the bound is refused", "[cache][l1]") {
    L1 l1{8 * cost(100)};
    const std::size_t largest = l1.max_bytes() / 8 - L1::entry_overhead; // 100
    for (std::uint64_t i = 0; i < 4; ++i)
        REQUIRE(l1.put(key(i), blob(10), later));
    const std::size_t before = l1.bytes();

    CHECK_FALSE(l1.put(key(50), blob(largest + 1), later));
    CHECK(l1.get(key(50), t0) == nullptr);
    CHECK(l1.bytes() == before);
    CHECK(l1.size() == 4);
    CHECK(l1.evictions() == 0);

    CHECK(l1.put(key(51), blob(largest), later));
    CHECK(l1.bytes() == before + cost(largest));
}

TEST_CASE("a refused put leaves its key without an entry", "[cache][l1]") {
    L1 l1{8 * cost(100)};
    REQUIRE(l1.put(key(1), blob(10), later));
    CHECK_FALSE(l1.put(key(1), blob(101), later));
    CHECK(l1.get(key(1), t0) == nullptr);
    CHECK(l1.bytes() == 0);
    REQUIRE(l1.put(key(2), blob(10), later));
    CHECK_FALSE(l1.put(key(2), nullptr, later));
    CHECK(l1.get(key(2), t0) == nullptr);
    CHECK(l1.size() == 0);
}

TEST_CASE("a bound too small for any entry stores nothing", "[cache][l1]") {
    for (std::size_t max : {std::size_t{0}, 8 * L1::entry_overhead - 1}) {
        INFO("max_bytes " << max);
        L1 l1{max};
        CHECK_FALSE(l1.put(key(1), blob(0), later));
        CHECK(l1.size() == 0);
        CHECK(l1.bytes() == 0);
    }
    L1 just_enough{8 * L1::entry_overhead};
    CHECK(just_enough.put(key(1), blob(0), later));
}

TEST_CASE("a blob handed out outlives its eviction", "[cache][l1]") {
    L1 l1{8 * cost(100)};
    REQUIRE(l1.put(key(0), blob(100, 'z'), later));
    const auto held = l1.get(key(0), t0);
    for (std::uint64_t i = 1; i <= 8; ++i)
        REQUIRE(l1.put(key(i), blob(100), later));
    CHECK(l1.get(key(0), t0) == nullptr);
    REQUIRE(held != nullptr);
    CHECK(*held == std::string(100, 'z'));
}

TEST_CASE("clear empties the cache and keeps the counters", "[cache][l1]") {
    L1 l1{8 * cost(100)};
    for (std::uint64_t i = 0; i < 9; ++i)
        REQUIRE(l1.put(key(i), blob(100), t0 + 1s));
    REQUIRE(l1.get(key(8), t0 + 1s) == nullptr);
    REQUIRE(l1.evictions() == 1);
    REQUIRE(l1.expirations() == 1);

    l1.clear();
    CHECK(l1.size() == 0);
    CHECK(l1.bytes() == 0);
    CHECK(l1.get(key(7), t0) == nullptr);
    CHECK(l1.evictions() == 1);
    CHECK(l1.expirations() == 1);
    // Still usable, with the full bound.
    for (std::uint64_t i = 0; i < 8; ++i)
        REQUIRE(l1.put(key(i), blob(100), later));
    CHECK(l1.evictions() == 1);
    CHECK(l1.bytes() == l1.max_bytes());
}

TEST_CASE("evicting an expired entry for room counts as an eviction, not an expiration",
          "[cache][l1]") {
    L1 l1{8 * cost(100)};
    REQUIRE(l1.put(key(0), blob(100), t0)); // already expired at any later get
    for (std::uint64_t i = 1; i <= 8; ++i)
        REQUIRE(l1.put(key(i), blob(100), later));
    CHECK(l1.evictions() == 1);
    CHECK(l1.expirations() == 0);
    CHECK(l1.get(key(0), t0 + 1s) == nullptr);
    CHECK(l1.expirations() == 0);
}
