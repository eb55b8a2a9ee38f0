// RedisSubscriber against real redis-server processes (started by each test on a free
// loopback port, stopped by pid, see redis_server.hpp), with a RedisConn publishing, plus
// in-process fake servers for what a real one never sends.

#include "redis_server.hpp"
#include "sluice/cache/redis_sub.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

using namespace sluice;
using namespace sluice::cache;
using namespace sluice::cache::test;

namespace {

/// What the callbacks saw.
struct Seen {
    std::vector<std::pair<std::string, std::string>> messages;
    int subscribed = 0;
    std::vector<error_code> downs;

    SubscriberCallbacks callbacks() {
        return {
            [this](std::string_view channel, std::string_view payload) {
                messages.emplace_back(channel, payload);
            },
            [this] { ++subscribed; },
            [this](error_code ec) { downs.push_back(ec); },
        };
    }
};

/// Polls `done` every 5 ms until it holds or `limit` has passed; whether it held.
asio::awaitable<bool> wait_until(std::function<bool()> done, Clock::duration limit) {
    const auto give_up = Clock::now() + limit;
    while (!done()) {
        if (Clock::now() >= give_up) co_return false;
        co_await sleep_for(5ms);
    }
    co_return true;
}

/// PUBLISH through `conn`; the number of subscribers that got it, or -1 on failure.
asio::awaitable<std::int64_t> publish(RedisConn& conn, std::string channel, std::string payload) {
    auto r = co_await call(conn, cmd("PUBLISH", channel, payload));
    co_return r && r->kind == ReplyKind::integer ? r->integer : -1;
}

RedisEndpoint quick_endpoint(std::uint16_t port) {
    RedisEndpoint ep = endpoint_for(port);
    ep.backoff_min = 50ms;
    ep.backoff_max = 200ms;
    ep.connect_timeout = 1s; // a loaded test machine must not make this flaky
    ep.command_timeout = 1s;
    return ep;
}

} // namespace

TEST_CASE("RedisSubscriber delivers every published message, in order, on every channel",
          "[cache][redis]") {
    RedisServer server;
    run_async([](std::uint16_t port) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        Seen seen;
        RedisSubscriber sub{
            ex, quick_endpoint(port), nullptr, {"inv:a", "inv:b"}, seen.callbacks()};
        CHECK_FALSE(sub.up());
        sub.start();
        const bool subscribed = co_await wait_until([&] { return sub.up(); }, 2s);
        REQUIRE(subscribed);
        CHECK(seen.subscribed == 1);

        RedisConn pub{ex, quick_endpoint(port), nullptr};
        std::vector<std::pair<std::string, std::string>> sent;
        for (int i = 0; i < 300; ++i) {
            std::string channel = i % 3 == 0 ? "inv:b" : "inv:a";
            std::string payload = "table " + std::to_string(i);
            if (i == 7) payload = std::string("bin\0\r\n", 6); // binary-safe
            if (i == 8) payload.clear();
            const auto receivers = co_await publish(pub, channel, payload);
            CHECK(receivers == 1);
            sent.emplace_back(std::move(channel), std::move(payload));
        }
        // Not subscribed: not delivered.
        const auto receivers = co_await publish(pub, "inv:c", "elsewhere");
        CHECK(receivers == 0);
        const bool all = co_await wait_until([&] { return seen.messages.size() >= 300; }, 2s);
        REQUIRE(all);
        CHECK(seen.messages == sent);
        CHECK(sub.stats().messages == 300);
        CHECK(seen.downs.empty());
        CHECK(sub.stats().subscriptions == 1);
    }(server.port()));
}

TEST_CASE("RedisSubscriber subscribes again after the server was killed and restarted, and "
          "reports the outage once",
          "[cache][redis]") {
    RedisServer server;
    run_async([](RedisServer& redis) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        Seen seen;
        RedisSubscriber sub{ex, quick_endpoint(redis.port()), nullptr, {"inv"}, seen.callbacks()};
        sub.start();
        const bool subscribed = co_await wait_until([&] { return seen.subscribed == 1; }, 2s);
        REQUIRE(subscribed);

        redis.kill();
        const bool noticed = co_await wait_until([&] { return !seen.downs.empty(); }, 1s);
        REQUIRE(noticed);
        CHECK_FALSE(sub.up());
        CHECK(seen.downs[0] == asio::error::eof);
        // Several attempts fail (connection refused) while the server is away.
        co_await sleep_for(400ms);
        CHECK(sub.stats().connect_failures >= 2);
        CHECK(seen.downs.size() == 1);

        redis.start();
        const bool again = co_await wait_until([&] { return seen.subscribed == 2; }, 2s);
        REQUIRE(again);
        CHECK(sub.up());
        RedisConn pub{ex, quick_endpoint(redis.port()), nullptr};
        const auto receivers = co_await publish(pub, "inv", "after the restart");
        CHECK(receivers == 1);
        const bool got = co_await wait_until([&] { return seen.messages.size() == 1; }, 1s);
        REQUIRE(got);
        CHECK(seen.messages[0].second == "after the restart");
        CHECK(seen.downs.size() == 1);
        CHECK(sub.stats().drops == 1);
        CHECK(sub.stats().subscriptions == 2);
    }(server));
}

TEST_CASE("RedisSubscriber notices a stopped server within two seconds by its PINGs",
          "[cache][redis]") {
    RedisServer server;
    run_async([](RedisServer& redis) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        Seen seen;
        RedisEndpoint ep = quick_endpoint(redis.port());
        // 1 s PINGs, 1 s to answer: the defaults.
        RedisSubscriber sub{ex, ep, nullptr, {"inv"}, seen.callbacks()};
        sub.start();
        const bool subscribed = co_await wait_until([&] { return sub.up(); }, 2s);
        REQUIRE(subscribed);
        // A PING or two answered: a live server is not taken for dead.
        co_await sleep_for(1200ms);
        CHECK(sub.up());
        CHECK(sub.stats().pings >= 1);
        CHECK(seen.downs.empty());

        redis.pause();
        const auto t0 = Clock::now();
        const bool noticed = co_await wait_until([&] { return !seen.downs.empty(); }, 3s);
        const auto took = Clock::now() - t0;
        redis.resume();
        REQUIRE(noticed);
        CHECK(seen.downs[0] == redis_errc::timeout);
        CHECK(ms(took) <= 2100);
        CHECK(sub.stats().timeouts == 1);

        const bool again = co_await wait_until([&] { return seen.subscribed == 2; }, 2s);
        CHECK(again);
    }(server));
}

TEST_CASE("RedisSubscriber speaks TLS and logs in, and reports a refused AUTH or SUBSCRIBE "
          "with the server's words",
          "[cache][redis][tls]") {
    RedisServer server{{"--requirepass", "default-pw", "--user", "alice", "on", ">alice-pw", "~*",
                        "&*", "+@all", "--user", "bob", "on", ">bob-pw", "~*", "resetchannels",
                        "+@all"},
                       true};
    run_async([](std::uint16_t port) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        RedisEndpoint ep = quick_endpoint(port);
        ep.tls = true;
        ep.tls_ca_file = (cert_dir() / "ca.pem").string();
        ep.tls_server_name = "localhost";
        ep.connect_timeout = 2s; // a handshake on a loaded machine
        auto ctx = make_tls_context(ep);
        REQUIRE(ctx.has_value());
        {
            ep.user = "alice";
            ep.password = "alice-pw";
            Seen seen;
            RedisSubscriber sub{ex, ep, &*ctx, {"inv"}, seen.callbacks()};
            sub.start();
            const bool subscribed = co_await wait_until([&] { return sub.up(); }, 3s);
            REQUIRE(subscribed);
            RedisConn pub{ex, ep, &*ctx};
            const auto receivers = co_await publish(pub, "inv", "over tls");
            CHECK(receivers == 1);
            const bool got = co_await wait_until([&] { return !seen.messages.empty(); }, 1s);
            REQUIRE(got);
            CHECK(seen.messages[0] == std::pair<std::string, std::string>{"inv", "over tls"});
        }
        {
            ep.user.clear();
            ep.password = "default-pw";
            Seen seen;
            RedisSubscriber sub{ex, ep, &*ctx, {"inv"}, seen.callbacks()};
            sub.start();
            const bool subscribed = co_await wait_until([&] { return sub.up(); }, 3s);
            CHECK(subscribed);
        }
        {
            ep.user = "alice";
            ep.password = "wrong";
            Seen seen;
            RedisSubscriber sub{ex, ep, &*ctx, {"inv"}, seen.callbacks()};
            sub.start();
            const bool failed = co_await wait_until([&] { return !seen.downs.empty(); }, 3s);
            REQUIRE(failed);
            CHECK(seen.downs[0] == redis_errc::auth_refused);
            CHECK(sub.last_error().starts_with("WRONGPASS"));
            CHECK(seen.subscribed == 0);
        }
        {
            ep.user = "bob"; // may use no channel at all
            ep.password = "bob-pw";
            Seen seen;
            RedisSubscriber sub{ex, ep, &*ctx, {"inv"}, seen.callbacks()};
            sub.start();
            const bool failed = co_await wait_until([&] { return !seen.downs.empty(); }, 3s);
            REQUIRE(failed);
            CHECK(seen.downs[0] == redis_errc::unexpected_reply);
            CHECK(sub.last_error().starts_with("NOPERM"));
        }
        {
            ep.user.clear();
            ep.password = "default-pw";
            ep.tls_server_name = "redis.example"; // not in the certificate
            Seen seen;
            RedisSubscriber sub{ex, ep, &*ctx, {"inv"}, seen.callbacks()};
            sub.start();
            const bool failed = co_await wait_until([&] { return !seen.downs.empty(); }, 3s);
            REQUIRE(failed);
            CHECK(seen.downs[0].category() == asio::error::get_ssl_category());
        }
    }(server.port()));
}

TEST_CASE("RedisSubscriber::close stops it at once, subscribed, connecting or waiting",
          "[cache][redis]") {
    RedisServer server;
    run_async([](std::uint16_t port) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        {
            Seen seen;
            RedisSubscriber sub{ex, quick_endpoint(port), nullptr, {"inv"}, seen.callbacks()};
            sub.start();
            const bool subscribed = co_await wait_until([&] { return sub.up(); }, 2s);
            REQUIRE(subscribed);
            sub.close();
            CHECK_FALSE(sub.up());
            RedisConn pub{ex, quick_endpoint(port), nullptr};
            co_await sleep_for(20ms); // the server sees the subscriber go
            const auto receivers = co_await publish(pub, "inv", "nobody listens");
            CHECK(receivers == 0);
            CHECK(seen.downs.empty()); // closing is not an outage
            sub.start();               // does nothing after close()
            co_await sleep_for(50ms);
            CHECK(seen.subscribed == 1);
        }
        {
            // Waiting out a long backoff after a refused connect.
            Seen seen;
            RedisEndpoint ep = quick_endpoint(free_port());
            ep.backoff_min = 60s;
            RedisSubscriber sub{ex, ep, nullptr, {"inv"}, seen.callbacks()};
            sub.start();
            const bool failed = co_await wait_until([&] { return !seen.downs.empty(); }, 1s);
            REQUIRE(failed);
            CHECK(seen.downs[0] == asio::error::connection_refused);
            sub.close();
        }
        {
            // Closed from inside its own message callback: nothing more is delivered.
            int delivered = 0;
            RedisSubscriber* self = nullptr;
            SubscriberCallbacks cbs;
            cbs.message = [&](std::string_view, std::string_view) {
                ++delivered;
                self->close();
            };
            RedisSubscriber sub{ex, quick_endpoint(port), nullptr, {"inv"}, std::move(cbs)};
            self = &sub;
            sub.start();
            const bool subscribed = co_await wait_until([&] { return sub.up(); }, 2s);
            REQUIRE(subscribed);
            // Two messages in one pipeline: likely in one read, the second must not be
            // handed over.
            RedisConn pub{ex, quick_endpoint(port), nullptr};
            std::vector<std::uint8_t> two;
            write_command(two, {"PUBLISH", "inv", "one"});
            write_command(two, {"PUBLISH", "inv", "two"});
            auto r = co_await pub.run(two, 2);
            REQUIRE(r);
            co_await sleep_for(50ms);
            CHECK(delivered == 1);
            CHECK_FALSE(sub.up());
        }
        // run_async checks that every coroutine, the subscribers' included, has ended.
    }(server.port()));
}

TEST_CASE("RedisSubscriber drops a connection whose server sends garbage, a reply that is not a "
          "push, or nothing",
          "[cache][redis]") {
    run_async([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        const std::pair<std::string, error_code> cases[] = {
            {"hello, this is not RESP\r\n", cache_errc::malformed},
            {"+OK\r\n", redis_errc::unexpected_reply},
            {"*3\r\n$7\r\nmessage\r\n$3\r\ninv\r\n:5\r\n", redis_errc::unexpected_reply},
            {"$99999999999\r\n", cache_errc::oversized},
            {"", redis_errc::timeout},
        };
        for (const auto& [answer, expected] : cases) {
            INFO("answer: " << answer);
            FakeServer fake{ex};
            asio::co_spawn(ex, serve_once(fake, answer), asio::detached);
            Seen seen;
            RedisEndpoint ep = quick_endpoint(fake.port());
            SubscriberOptions options;
            options.reply_timeout = 200ms;
            options.limits.max_bulk = 1 << 20;
            RedisSubscriber sub{ex, ep, nullptr, {"inv"}, seen.callbacks(), options};
            sub.start();
            const bool failed = co_await wait_until([&] { return !seen.downs.empty(); }, 2s);
            REQUIRE(failed);
            CHECK(seen.downs[0] == expected);
            CHECK(seen.subscribed == 0);
            CHECK(seen.messages.empty());
            CHECK_FALSE(sub.up());
            // The fake accepted once: later attempts are refused, and not reported again.
            co_await sleep_for(120ms);
            CHECK(seen.downs.size() == 1);
            CHECK(sub.stats().connect_failures >= 2);
        }
    }());
}

TEST_CASE("RedisSubscriber with no channels reports down and does nothing", "[cache][redis]") {
    run_async([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        Seen seen;
        RedisSubscriber sub{ex, endpoint_for(1), nullptr, {}, seen.callbacks()};
        sub.start();
        REQUIRE(seen.downs.size() == 1);
        CHECK(seen.downs[0] == asio::error::invalid_argument);
        co_return;
    }());
}
