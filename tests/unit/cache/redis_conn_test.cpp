// RedisConn against real redis-server processes (/usr/bin/redis-server), each started by its
// test on a free loopback port with no persistence and stopped by pid, plus a few in-process
// fake servers for what a real one never sends (bytes that are not RESP, unasked replies,
// silence).

#include "redis_server.hpp"
#include "sluice/cache/redis_conn.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::cache;
using namespace sluice::cache::test;
using namespace boost::asio::experimental::awaitable_operators;

TEST_CASE("RedisConn connects on first use and round-trips SET and GET", "[cache][redis]") {
    RedisServer server;
    run_async([](std::uint16_t port) -> asio::awaitable<void> {
        RedisConn conn{co_await asio::this_coro::executor, endpoint_for(port), nullptr};
        CHECK(conn.health() == RedisHealth::unknown);
        CHECK(conn.transitions() == 0);

        auto set = co_await call(conn, cmd("SET", "greeting", std::string_view("hi\r\n\0!", 6)));
        REQUIRE(set);
        CHECK(*set == status("OK"));
        auto get = co_await call(conn, cmd("GET", "greeting"));
        REQUIRE(get);
        CHECK(*get == bulk(std::string("hi\r\n\0!", 6)));
        auto missing = co_await call(conn, cmd("GET", "nothing-here"));
        REQUIRE(missing);
        CHECK(missing->kind == ReplyKind::nil);

        CHECK(conn.up());
        CHECK(conn.transitions() == 1);
        CHECK(conn.stats().connects == 1);
        CHECK(conn.stats().calls == 3);
        CHECK(conn.stats().failed_calls == 0);
    }(server.port()));
}

TEST_CASE("RedisConn returns the 100 replies of a 100-command pipeline in order",
          "[cache][redis]") {
    RedisServer server;
    run_async([](std::uint16_t port) -> asio::awaitable<void> {
        RedisConn conn{co_await asio::this_coro::executor, endpoint_for(port), nullptr};
        std::vector<std::uint8_t> pipeline;
        for (int i = 0; i < 50; ++i)
            write_command(pipeline, {"INCR", "counter"});
        for (int i = 0; i < 50; ++i) {
            const std::string key = "k" + std::to_string(i);
            write_command(pipeline, {"SET", key, "v" + std::to_string(i)});
        }
        auto replies = co_await conn.run(pipeline, 100);
        REQUIRE(replies);
        REQUIRE(replies->size() == 100);
        for (int i = 0; i < 50; ++i)
            CHECK((*replies)[static_cast<std::size_t>(i)] == integer(i + 1));
        for (std::size_t i = 50; i < 100; ++i)
            CHECK((*replies)[i] == status("OK"));

        std::vector<std::uint8_t> gets;
        for (int i = 49; i >= 0; --i)
            write_command(gets, {"GET", "k" + std::to_string(i)});
        auto values = co_await conn.run(gets, 50);
        REQUIRE(values);
        for (std::size_t i = 0; i < 50; ++i)
            CHECK((*values)[i] == bulk("v" + std::to_string(49 - i)));
    }(server.port()));
}

namespace {

struct Crowd {
    int running = 0;
    int matched = 0;
    int failed = 0;
    asio::steady_timer* all_done = nullptr;
};

asio::awaitable<void> set_and_get(RedisConn& conn, Crowd& crowd, int i) {
    const std::string key = "key:" + std::to_string(i);
    const std::string value = "value of caller " + std::to_string(i);
    // Even callers send SET and GET in one call; odd ones in two, so the queue mixes both.
    bool ok = false;
    if (i % 2 == 0) {
        std::vector<std::uint8_t> bytes;
        write_command(bytes, {"SET", key, value});
        write_command(bytes, {"GET", key});
        auto r = co_await conn.run(bytes, 2);
        ok = r && r->size() == 2 && (*r)[0] == status("OK") && (*r)[1] == bulk(value);
    } else {
        auto set = co_await call(conn, cmd("SET", key, value));
        auto get = co_await call(conn, cmd("GET", key));
        ok = set && *set == status("OK") && get && *get == bulk(value);
    }
    ++(ok ? crowd.matched : crowd.failed);
    if (--crowd.running == 0) crowd.all_done->cancel();
}

} // namespace

TEST_CASE("RedisConn hands each of 200 concurrent callers its own replies", "[cache][redis]") {
    RedisServer server;
    run_async([](std::uint16_t port) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        RedisEndpoint ep = endpoint_for(port);
        ep.command_timeout = 2s; // a loaded test machine must not make this flaky
        RedisConn conn{ex, ep, nullptr};
        Crowd crowd;
        asio::steady_timer all_done{ex, Clock::time_point::max()};
        crowd.all_done = &all_done;
        crowd.running = 200;
        for (int i = 0; i < 200; ++i)
            asio::co_spawn(ex, set_and_get(conn, crowd, i), asio::detached);
        co_await all_done.async_wait(use_tuple);
        CHECK(crowd.matched == 200);
        CHECK(crowd.failed == 0);
        // All of them queued while the one connection was being made.
        CHECK(conn.stats().connects == 1);
        CHECK(conn.stats().calls == 300);
        // Pipelined: the 200 first requests went out together (queued while connecting), the
        // odd callers' GETs in a few writes more; not one write per call.
        CHECK(conn.stats().writes < 20);
    }(server.port()));
}

TEST_CASE("RedisConn keeps the connection after an error reply", "[cache][redis]") {
    RedisServer server;
    run_async([](std::uint16_t port) -> asio::awaitable<void> {
        RedisEndpoint ep = endpoint_for(port);
        ep.host = "localhost"; // a name: resolved (::1 may come first and be refused)
        RedisConn conn{co_await asio::this_coro::executor, ep, nullptr};
        auto set = co_await call(conn, cmd("SET", "word", "not a number"));
        REQUIRE(set);
        auto incr = co_await call(conn, cmd("INCR", "word"));
        REQUIRE(incr);
        CHECK(incr->kind == ReplyKind::error);
        CHECK(incr->str.starts_with("ERR"));
        auto ping = co_await call(conn, cmd("PING"));
        REQUIRE(ping);
        CHECK(*ping == status("PONG"));
        CHECK(conn.up());
        CHECK(conn.stats().connects == 1);
        CHECK(conn.stats().failed_calls == 0);
    }(server.port()));
}

TEST_CASE("RedisConn logs in as an ACL user or with the default user's password, and a "
          "refused AUTH fails with the server's words",
          "[cache][redis]") {
    RedisServer server{
        {"--requirepass", "default-pw", "--user", "alice", "on", ">alice-pw", "~*", "&*", "+@all"}};
    run_async([](std::uint16_t port) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        {
            RedisEndpoint ep = endpoint_for(port);
            ep.user = "alice";
            ep.password = "alice-pw";
            RedisConn conn{ex, ep, nullptr};
            auto who = co_await call(conn, cmd("ACL", "WHOAMI"));
            REQUIRE(who);
            CHECK(*who == bulk("alice"));
        }
        {
            RedisEndpoint ep = endpoint_for(port);
            ep.password = "default-pw";
            RedisConn conn{ex, ep, nullptr};
            auto who = co_await call(conn, cmd("ACL", "WHOAMI"));
            REQUIRE(who);
            CHECK(*who == bulk("default"));
        }
        {
            RedisEndpoint ep = endpoint_for(port);
            ep.user = "alice";
            ep.password = "wrong";
            RedisConn conn{ex, ep, nullptr};
            // Two calls queued behind the AUTH: both fail with the refusal.
            std::vector<error_code> errors;
            auto second = [&]() -> asio::awaitable<void> {
                auto r = co_await call(conn, cmd("PING"));
                errors.push_back(r ? error_code{} : r.error());
            };
            asio::co_spawn(ex, second(), asio::detached);
            auto r = co_await call(conn, cmd("PING"));
            REQUIRE_FALSE(r);
            CHECK(r.error() == redis_errc::auth_refused);
            co_await sleep_for(1ms);
            REQUIRE(errors.size() == 1);
            CHECK(errors[0] == redis_errc::auth_refused);
            CHECK(conn.last_error().starts_with("WRONGPASS"));
            CHECK(conn.health() == RedisHealth::down);
            CHECK(conn.stats().connect_failures == 1);
            auto again = co_await call(conn, cmd("PING"));
            REQUIRE_FALSE(again);
            CHECK(again.error() == redis_errc::unavailable);
        }
        {
            // No password: the server answers NOAUTH, an ordinary error reply.
            RedisConn conn{ex, endpoint_for(port), nullptr};
            auto r = co_await call(conn, cmd("GET", "x"));
            REQUIRE(r);
            CHECK(r->kind == ReplyKind::error);
            CHECK(r->str.starts_with("NOAUTH"));
            CHECK(conn.up());
        }
    }(server.port()));
}

TEST_CASE("RedisConn speaks TLS, verifying the server's certificate and name",
          "[cache][redis][tls]") {
    RedisServer server{{}, true};
    run_async([](std::uint16_t port) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        RedisEndpoint ep = endpoint_for(port);
        ep.tls = true;
        ep.tls_ca_file = (cert_dir() / "ca.pem").string();
        ep.connect_timeout = 2s; // a handshake on a loaded machine
        auto ctx = make_tls_context(ep);
        REQUIRE(ctx.has_value());
        {
            ep.tls_server_name = "localhost"; // SNI and verified name
            RedisConn conn{ex, ep, &*ctx};
            auto set = co_await call(conn, cmd("SET", "over", "tls"));
            REQUIRE(set);
            CHECK(*set == status("OK"));
            auto get = co_await call(conn, cmd("GET", "over"));
            REQUIRE(get);
            CHECK(*get == bulk("tls"));
        }
        {
            ep.tls_server_name.clear(); // the address itself, in the certificate's IP SAN
            RedisConn conn{ex, ep, &*ctx};
            auto ping = co_await call(conn, cmd("PING"));
            REQUIRE(ping);
            CHECK(*ping == status("PONG"));
        }
        {
            ep.tls_server_name = "redis.example"; // not in the certificate
            RedisConn conn{ex, ep, &*ctx};
            auto ping = co_await call(conn, cmd("PING"));
            REQUIRE_FALSE(ping);
            CHECK(ping.error().category() == asio::error::get_ssl_category());
            CHECK(conn.health() == RedisHealth::down);
        }
        {
            RedisEndpoint insecure = ep; // the same wrong name, unverified
            insecure.tls_verify = false;
            auto loose = make_tls_context(insecure);
            REQUIRE(loose.has_value());
            RedisConn conn{ex, insecure, &*loose};
            auto ping = co_await call(conn, cmd("PING"));
            REQUIRE(ping);
            CHECK(*ping == status("PONG"));
        }
        {
            RedisConn conn{ex, ep, nullptr}; // TLS asked for, no context given
            auto ping = co_await call(conn, cmd("PING"));
            REQUIRE_FALSE(ping);
            CHECK(ping.error() == asio::error::invalid_argument);
        }
    }(server.port()));
}

TEST_CASE("RedisConn fails every call in flight when a reply is late, backs off, then "
          "reconnects to the recovered server",
          "[cache][redis]") {
    RedisServer server;
    run_async([](RedisServer& redis) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        RedisEndpoint ep = endpoint_for(redis.port());
        ep.command_timeout = 100ms;
        ep.backoff_min = 150ms;
        RedisConn conn{ex, ep, nullptr};
        auto ping = co_await call(conn, cmd("PING"));
        REQUIRE(ping);

        redis.pause();
        error_code other;
        auto second = [&]() -> asio::awaitable<void> {
            auto r = co_await call(conn, cmd("GET", "x"));
            other = r ? error_code{} : r.error();
        };
        asio::co_spawn(ex, second(), asio::detached);
        const auto t0 = Clock::now();
        auto late = co_await call(conn, cmd("PING"));
        const auto waited = Clock::now() - t0;
        REQUIRE_FALSE(late);
        CHECK(late.error() == redis_errc::timeout);
        CHECK(waited >= 100ms);
        CHECK(ms(waited) < 250);
        co_await sleep_for(1ms);
        CHECK(other == redis_errc::timeout);
        CHECK(conn.stats().timeouts == 1);
        CHECK(conn.health() == RedisHealth::down);

        // During the backoff: refused at once, without touching the network.
        const auto t1 = Clock::now();
        auto refused = co_await call(conn, cmd("PING"));
        REQUIRE_FALSE(refused);
        CHECK(refused.error() == redis_errc::unavailable);
        CHECK(ms(Clock::now() - t1) < 20);
        CHECK(conn.stats().connects + conn.stats().connect_failures == 1);

        redis.resume();
        co_await sleep_for(160ms);
        auto back = co_await call(conn, cmd("PING"));
        REQUIRE(back);
        CHECK(*back == status("PONG"));
        CHECK(conn.up());
        CHECK(conn.stats().connects == 2);
        CHECK(conn.transitions() == 3); // up, down, up
    }(server));
}

TEST_CASE("RedisConn fails fast while a killed server is away, doubling its backoff, and "
          "works again after a restart without being made anew",
          "[cache][redis]") {
    RedisServer server;
    run_async([](RedisServer& redis) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        RedisEndpoint ep = endpoint_for(redis.port());
        ep.backoff_min = 100ms;
        ep.backoff_max = 1s;
        RedisConn conn{ex, ep, nullptr};
        std::vector<std::pair<RedisHealth, error_code>> changes;
        conn.on_health_change([&](RedisHealth h, error_code why) { changes.emplace_back(h, why); });
        auto set = co_await call(conn, cmd("SET", "k", "v"));
        REQUIRE(set);

        redis.kill();
        co_await sleep_for(20ms); // the reader sees the end of the stream
        CHECK(conn.health() == RedisHealth::down);
        REQUIRE(changes.size() == 2);
        CHECK(changes[1].second == asio::error::eof);

        // Closed while idle: the next call tries at once (and is refused: nothing listens).
        auto first = co_await call(conn, cmd("GET", "k"));
        REQUIRE_FALSE(first);
        CHECK(first.error() == asio::error::connection_refused);
        auto fast = co_await call(conn, cmd("GET", "k"));
        REQUIRE_FALSE(fast);
        CHECK(fast.error() == redis_errc::unavailable);

        co_await sleep_for(110ms); // past the first backoff (100 ms): another attempt
        auto second = co_await call(conn, cmd("GET", "k"));
        REQUIRE_FALSE(second);
        CHECK(second.error() == asio::error::connection_refused);
        co_await sleep_for(110ms); // inside the second backoff (200 ms)
        auto still = co_await call(conn, cmd("GET", "k"));
        REQUIRE_FALSE(still);
        CHECK(still.error() == redis_errc::unavailable);
        CHECK(conn.stats().connect_failures == 2);
        CHECK(conn.stats().unavailable == 2);

        redis.start();
        co_await sleep_for(100ms); // the second backoff is over
        auto back = co_await call(conn, cmd("SET", "k", "again"));
        REQUIRE(back);
        CHECK(*back == status("OK"));
        CHECK(conn.up());
        // One line per change for the daemon: up, down, up; repeated failures are no change.
        CHECK(conn.transitions() == 3);
        REQUIRE(changes.size() == 3);
        CHECK(changes[0].first == RedisHealth::up);
        CHECK(changes[1].first == RedisHealth::down);
        CHECK(changes[2].first == RedisHealth::up);
    }(server));
}

TEST_CASE("RedisConn drops a connection whose server sends bytes that are not RESP",
          "[cache][redis]") {
    run_async([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        FakeServer fake{ex};
        asio::co_spawn(ex, serve_once(fake, "hello, this is not RESP\r\n"), asio::detached);
        RedisConn conn{ex, endpoint_for(fake.port()), nullptr};
        auto r = co_await call(conn, cmd("PING"));
        REQUIRE_FALSE(r);
        CHECK(r.error() == cache_errc::malformed);
        CHECK(conn.stats().protocol_errors == 1);
        CHECK(conn.health() == RedisHealth::down);
        auto next = co_await call(conn, cmd("PING"));
        REQUIRE_FALSE(next);
        CHECK(next.error() == redis_errc::unavailable);
    }());
}

TEST_CASE("RedisConn refuses a reply larger than its limits", "[cache][redis]") {
    run_async([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        FakeServer fake{ex};
        asio::co_spawn(ex, serve_once(fake, "$1000000\r\nxx"), asio::detached);
        RedisConn conn{ex, endpoint_for(fake.port()), nullptr, ReaderLimits{.max_bulk = 4096}};
        auto r = co_await call(conn, cmd("GET", "big"));
        REQUIRE_FALSE(r);
        CHECK(r.error() == cache_errc::oversized);
    }());
}

TEST_CASE("RedisConn drops a connection that answers more than was asked", "[cache][redis]") {
    run_async([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        FakeServer fake{ex};
        asio::co_spawn(ex, serve_once(fake, "+OK\r\n+OK\r\n"), asio::detached);
        RedisConn conn{ex, endpoint_for(fake.port()), nullptr};
        auto r = co_await call(conn, cmd("PING"));
        REQUIRE(r); // the first reply is this call's
        CHECK(*r == status("OK"));
        co_await sleep_for(1ms);
        CHECK(conn.stats().protocol_errors == 1);
        CHECK(conn.health() == RedisHealth::down);
    }());
}

TEST_CASE("RedisConn times out a connect that does not finish", "[cache][redis]") {
    run_async([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        FakeServer fake{ex}; // accepts, then never answers the TLS handshake
        asio::co_spawn(ex, serve_once(fake, ""), asio::detached);
        RedisEndpoint ep = endpoint_for(fake.port());
        ep.tls = true;
        ep.connect_timeout = 100ms;
        auto ctx = make_tls_context(ep);
        REQUIRE(ctx.has_value());
        RedisConn conn{ex, ep, &*ctx};
        const auto t0 = Clock::now();
        auto r = co_await call(conn, cmd("PING"));
        REQUIRE_FALSE(r);
        CHECK(r.error() == redis_errc::connect_timeout);
        CHECK(ms(Clock::now() - t0) < 250);
        CHECK(conn.stats().connect_failures == 1);
    }());
}

TEST_CASE("RedisConn::close fails pending calls at once, and every later one", "[cache][redis]") {
    run_async([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        FakeServer fake{ex}; // never answers
        asio::co_spawn(ex, serve_once(fake, ""), asio::detached);
        RedisEndpoint ep = endpoint_for(fake.port());
        ep.command_timeout = 5s;
        RedisConn conn{ex, ep, nullptr};
        error_code other;
        auto second = [&]() -> asio::awaitable<void> {
            auto r = co_await call(conn, cmd("GET", "x"));
            other = r ? error_code{} : r.error();
        };
        asio::co_spawn(ex, second(), asio::detached);
        auto closer = [&]() -> asio::awaitable<void> {
            co_await sleep_for(30ms);
            conn.close();
        };
        asio::co_spawn(ex, closer(), asio::detached);
        const auto t0 = Clock::now();
        auto r = co_await call(conn, cmd("PING"));
        REQUIRE_FALSE(r);
        CHECK(r.error() == redis_errc::closed);
        CHECK(ms(Clock::now() - t0) < 100);
        co_await sleep_for(1ms);
        CHECK(other == redis_errc::closed);
        auto later = co_await call(conn, cmd("PING"));
        REQUIRE_FALSE(later);
        CHECK(later.error() == redis_errc::closed);
        CHECK_FALSE(conn.up());
    }());
}

TEST_CASE("RedisConn reads and drops the replies of a cancelled caller", "[cache][redis]") {
    RedisServer server;
    run_async([](std::uint16_t port) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        RedisEndpoint ep = endpoint_for(port);
        ep.command_timeout = 2s;
        RedisConn conn{ex, ep, nullptr};
        // BLPOP blocks the connection for 200 ms; the caller gives up after 30.
        asio::steady_timer give_up{ex, 30ms};
        auto raced = co_await (call(conn, cmd("BLPOP", "empty-list", "0.2")) ||
                               give_up.async_wait(use_tuple));
        CHECK(raced.index() == 1);
        // This reply comes after BLPOP's nil, which must not be taken for it.
        auto ping = co_await call(conn, cmd("PING"));
        REQUIRE(ping);
        CHECK(*ping == status("PONG"));
        CHECK(conn.stats().failed_calls == 1);
        CHECK(conn.up());
    }(server.port()));
}
