#include "sluice/pool/conn_pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <optional>

namespace {

using namespace sluice::pool;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// A pooled connection over a real loopback socket (its far end stays with the test).
struct Fixture {
    asio::io_context io;
    tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
    std::vector<tcp::socket> far_ends;

    std::unique_ptr<BackendConn>
    conn(std::size_t index, const std::string& key,
         std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now()) {
        tcp::socket s{io};
        s.connect(acceptor.local_endpoint());
        far_ends.push_back(acceptor.accept());
        auto c = std::make_unique<BackendConn>(Transport(std::move(s)),
                                               sluice::protocol::mysql::Greeting{}, 0, 0);
        Carried& carried = c->pool_state();
        carried.pooled = true;
        carried.index = index;
        carried.key = key;
        carried.created = created;
        return c;
    }

    /// Starts acquire() and runs until it waits in the queue (or has its answer): `out` is
    /// set once it ends.
    void start(ConnPool& pool, std::size_t index, const char* key,
               std::optional<ConnPool::Grant>& out) {
        asio::co_spawn(
            io,
            [&pool, index, key, &out]() -> asio::awaitable<void> {
                out = co_await pool.acquire(index, key, std::chrono::seconds(5));
            },
            asio::detached);
        io.restart();
        io.poll();
    }

    /// Runs acquire() to its end (the io_context runs until it has).
    ConnPool::Grant acquire(ConnPool& pool, std::size_t index, const std::string& key,
                            std::chrono::milliseconds timeout) {
        std::optional<ConnPool::Grant> out;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> { out = co_await pool.acquire(index, key, timeout); },
            asio::detached);
        io.restart();
        io.run();
        REQUIRE(out.has_value());
        return std::move(*out);
    }
};

} // namespace

TEST_CASE("StatementCache: newest first, the oldest closed past the bound", "[pool][pool10]") {
    StatementCache cache(2);
    CHECK(cache.add("a", {1, 0}) == 0);
    CHECK(cache.add("b", {2, 1}) == 0);
    REQUIRE(cache.find("a") != nullptr); // a is now the newest
    CHECK(cache.add("c", {3, 0}) == 2);  // b was the oldest: its id comes back to be closed
    CHECK(cache.find("b") == nullptr);
    CHECK(cache.find("a")->id == 1);
    CHECK(cache.find("c")->id == 3);
    CHECK(cache.add("a", {7, 0}) == 1); // prepared again: the older id is closed
    CHECK(cache.find("a")->id == 7);
    CHECK(cache.size() == 2);
    cache.clear();
    CHECK(cache.find("a") == nullptr);
}

TEST_CASE("ConnPool: opens up to max, lends idle ones by key, LIFO", "[pool][pool10]") {
    Fixture f;
    ConnPool pool({PoolLimits{2, 0, 60s, 3600s}});
    auto g1 = f.acquire(pool, 0, "k", 10ms);
    auto g2 = f.acquire(pool, 0, "k", 10ms);
    CHECK((g1.open && g2.open && !g1.conn && !g2.conn));
    CHECK(pool.open(0) == 2);
    // Full, nothing idle: a third waits and times out.
    auto g3 = f.acquire(pool, 0, "k", 20ms);
    CHECK(g3.timed_out);
    CHECK(!g3.conn);
    CHECK(pool.timeouts() == 1);
    // Two returned: the most recent one is lent first.
    auto c1 = f.conn(0, "k");
    auto c2 = f.conn(0, "k");
    BackendConn* second = c2.get();
    const auto now = std::chrono::steady_clock::now();
    pool.release(std::move(c1), now);
    pool.release(std::move(c2), now);
    CHECK(pool.idle(0) == 2);
    auto g4 = f.acquire(pool, 0, "k", 10ms);
    CHECK(g4.conn.get() == second);
    CHECK(pool.idle(0) == 1);
    CHECK(pool.open(0) == 2);
}

TEST_CASE("ConnPool: a returned connection goes to the first waiter of its key", "[pool][pool10]") {
    Fixture f;
    ConnPool pool({PoolLimits{1, 0, 60s, 3600s}});
    REQUIRE(f.acquire(pool, 0, "k", 10ms).open);
    std::optional<ConnPool::Grant> waited;
    f.start(pool, 0, "k", waited); // queued
    CHECK(pool.waiting(0) == 1);
    auto c = f.conn(0, "k");
    BackendConn* raw = c.get();
    pool.release(std::move(c), std::chrono::steady_clock::now());
    f.io.run();
    REQUIRE(waited.has_value());
    CHECK(waited->conn.get() == raw);
    CHECK(pool.waiting(0) == 0);
    CHECK(pool.idle(0) == 0);
}

TEST_CASE("ConnPool: another key's waiter gets the place; forget() frees one", "[pool][pool10]") {
    Fixture f;
    ConnPool pool({PoolLimits{1, 0, 60s, 3600s}});
    REQUIRE(f.acquire(pool, 0, "a", 10ms).open);
    std::optional<ConnPool::Grant> waited;
    f.start(pool, 0, "b", waited);
    // A connection of key a comes back: it is closed and b opens one in its place.
    pool.release(f.conn(0, "a"), std::chrono::steady_clock::now());
    f.io.run();
    REQUIRE(waited.has_value());
    CHECK(waited->open);
    CHECK(!waited->conn);
    CHECK(pool.open(0) == 1);
    // That open failed: forget() gives the place to the next waiter.
    waited.reset();
    f.start(pool, 0, "c", waited);
    pool.forget(0);
    f.io.run();
    REQUIRE(waited.has_value());
    CHECK(waited->open);
    CHECK(pool.open(0) == 1);
}

TEST_CASE("ConnPool: a full pool closes another key's idle connection to make room",
          "[pool][pool10]") {
    Fixture f;
    ConnPool pool({PoolLimits{1, 0, 60s, 3600s}});
    REQUIRE(f.acquire(pool, 0, "a", 10ms).open);
    pool.release(f.conn(0, "a"), std::chrono::steady_clock::now());
    auto g = f.acquire(pool, 0, "b", 10ms);
    CHECK(g.open);
    CHECK(pool.idle(0) == 0);
    CHECK(pool.open(0) == 1);
}

TEST_CASE("ConnPool: idle timeout beyond min_idle, lifetime, dead connections", "[pool][pool10]") {
    Fixture f;
    ConnPool pool({PoolLimits{4, 1, 100ms, 3600s}});
    for (int i = 0; i < 3; ++i)
        REQUIRE(f.acquire(pool, 0, "k", 10ms).open);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i)
        pool.release(f.conn(0, "k"), t0);
    CHECK(pool.idle(0) == 3);
    pool.sweep(t0 + 50ms);
    CHECK(pool.idle(0) == 3);
    pool.sweep(t0 + 200ms);
    CHECK(pool.idle(0) == 1); // min_idle stays
    CHECK(pool.open(0) == 1);
    // Past its lifetime, a returned connection is closed instead of kept.
    ConnPool short_lived({PoolLimits{4, 0, 60s, 1s}});
    REQUIRE(f.acquire(short_lived, 0, "k", 10ms).open);
    short_lived.release(f.conn(0, "k", t0 - 2s), t0);
    CHECK(short_lived.idle(0) == 0);
    CHECK(short_lived.open(0) == 0);
    // Closed by its server while idle: the sweep drops it.
    REQUIRE(f.acquire(short_lived, 0, "k", 10ms).open);
    short_lived.release(f.conn(0, "k"), t0);
    f.far_ends.back().close();
    short_lived.sweep(t0 + 10ms);
    CHECK(short_lived.idle(0) == 0);
}

TEST_CASE("ConnPool: close_all fails waiters; returns after it close", "[pool][pool10]") {
    Fixture f;
    ConnPool pool({PoolLimits{1, 0, 60s, 3600s}});
    REQUIRE(f.acquire(pool, 0, "k", 10ms).open);
    std::optional<ConnPool::Grant> waited;
    f.start(pool, 0, "k", waited);
    pool.close_all();
    f.io.run();
    REQUIRE(waited.has_value());
    CHECK((!waited->conn && !waited->open && !waited->timed_out));
    pool.release(f.conn(0, "k"), std::chrono::steady_clock::now());
    CHECK(pool.idle(0) == 0);
}

TEST_CASE("ConnPool: min_idle opens what a remembered key lacks, within the maximum",
          "[pool][pool10]") {
    Fixture f;
    ConnPool pool({PoolLimits{3, 2, 60s, 3600s}});
    CHECK(pool.to_open().empty()); // no login known yet
    sluice::protocol::mysql::BackendLogin::Options login;
    login.user = "u";
    pool.remember(0, "k", login);
    REQUIRE(f.acquire(pool, 0, "k", 10ms).open); // one lent
    auto want = pool.to_open();
    REQUIRE(want.size() == 2);
    CHECK(want[0].key == "k");
    CHECK(want[0].login.user == "u");
    CHECK(pool.open(0) == 3);
    CHECK(pool.to_open().empty()); // counted while they open
    pool.opened(0, "k");
    pool.release(f.conn(0, "k"), std::chrono::steady_clock::now());
    pool.opened(0, "k");
    pool.forget(0);                    // that open failed
    CHECK(pool.to_open().size() == 1); // one idle, one more wanted
    ConnPool none({PoolLimits{3, 0, 60s, 3600s}});
    none.remember(0, "k", login);
    CHECK(none.to_open().empty()); // min_idle 0: no login kept at all
}
