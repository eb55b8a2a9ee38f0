// RedisCluster against a real three-master Redis Cluster that each test starts with
// tests/fixtures/redis_cluster.sh on free loopback ports and stops by pid, plus the pure
// CLUSTER SLOTS parser.

#include "redis_server.hpp"
#include "sluice/cache/redis_cluster.hpp"

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace sluice;
using namespace sluice::cache;
using namespace sluice::cache::test;

// How Catch prints slot maps when a check fails.
namespace sluice::cache {
std::ostream& operator<<(std::ostream& os, const ClusterSlotRange& r) {
    return os << r.first << '-' << r.last << '@' << r.host << ':' << r.port;
}
std::ostream& operator<<(std::ostream& os, const std::vector<ClusterSlotRange>& ranges) {
    for (const auto& r : ranges)
        os << r << ' ';
    return os;
}
} // namespace sluice::cache

namespace {

Reply array(std::vector<Reply> elements) {
    return Reply{ReplyKind::array, {}, 0, std::move(elements)};
}

/// One CLUSTER SLOTS entry with a master and no replica.
Reply slots_entry(std::int64_t first, std::int64_t last, std::string host, std::int64_t port) {
    return array({integer(first), integer(last),
                  array({bulk(std::move(host)), integer(port), bulk("0123abcd"), array({})})});
}

bool bindable(std::uint16_t port) {
    asio::io_context io;
    tcp::acceptor a{io};
    error_code ec;
    a.open(tcp::v4(), ec);
    if (!ec) a.bind(tcp::endpoint{asio::ip::make_address(loopback), port}, ec);
    return !ec;
}

const std::string script = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/redis_cluster.sh";

/// A three-master cluster from the fixture script on 127.0.0.1:base, +1, +2 (bus ports
/// +10000), stopped by the destructor.
class Cluster {
public:
    /// `env`: variable assignments put before the script (password, TLS directory).
    explicit Cluster(std::string env = {}) : env_(std::move(env)) {
        char tmpl[] = "/tmp/sluice-redis-cluster.XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir_ = tmpl;
        std::mt19937 pick{std::random_device{}()};
        // Another program may take a port between the check and the start: try another.
        for (int attempt = 0; attempt < 5 && base_ == 0; ++attempt) {
            const auto base = static_cast<std::uint16_t>(20000 + pick() % 9000);
            bool free = true;
            for (int i = 0; i < 3; ++i)
                free = free && bindable(static_cast<std::uint16_t>(base + i)) &&
                       bindable(static_cast<std::uint16_t>(base + i + 10000));
            if (!free) continue;
            if (sh("start " + dir_.string() + " " + std::to_string(base)) == 0)
                base_ = base;
            else
                sh("stop " + dir_.string());
        }
        REQUIRE(base_ != 0);
    }
    ~Cluster() {
        sh("stop " + dir_.string());
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    Cluster(const Cluster&) = delete;
    Cluster& operator=(const Cluster&) = delete;

    std::uint16_t port(int node) const { return static_cast<std::uint16_t>(base_ + node); }

    /// SIGKILLs one node, by the pid in its pid file, and waits until it is gone.
    void kill(int node) const {
        std::ifstream in{dir_ / ("redis-" + std::to_string(port(node)) + ".pid")};
        pid_t pid = 0;
        in >> pid;
        REQUIRE(pid > 0);
        ::kill(pid, SIGKILL);
        const auto give_up = Clock::now() + 5s;
        while (accepts_connections(port(node))) {
            REQUIRE(Clock::now() < give_up);
            std::this_thread::sleep_for(5ms);
        }
    }

    /// The fixture's `migrate`; its exit status. Callable from any thread.
    int migrate(std::uint16_t slot, int target, const std::string& knobs = {}) const {
        return sh("migrate " + dir_.string() + " " + std::to_string(slot) + " " +
                      std::to_string(port(target)),
                  knobs);
    }

private:
    int sh(const std::string& args, const std::string& knobs = {}) const {
        const std::string cmd = env_ + " " + knobs + " " + script + " " + args + " >/dev/null";
        return std::system(cmd.c_str());
    }

    std::string env_;
    std::filesystem::path dir_;
    std::uint16_t base_ = 0;
};

/// One plaintext cluster for the tests that leave it usable (they use keys of their own),
/// started on first use and stopped when the program exits: each start costs seconds.
const Cluster& shared_cluster() {
    static const Cluster cluster;
    return cluster;
}

RedisEndpoint cluster_endpoint(std::uint16_t port) {
    RedisEndpoint ep = endpoint_for(port);
    // A loaded test machine (1000 callers, redis-cli processes) must not make this flaky.
    ep.connect_timeout = 2s;
    ep.command_timeout = 2s;
    ep.backoff_min = 50ms;
    return ep;
}

/// One call, one command.
asio::awaitable<result<Reply>> call(RedisCluster& c, std::string_view key,
                                    std::vector<std::uint8_t> bytes) {
    auto r = co_await c.run(key_slot(key), bytes, 1);
    if (!r) co_return r.error();
    co_return std::move(r->front());
}

/// Counts outcomes of many calls; wakes `all_done` when the last caller ends.
struct Tally {
    int running = 0;
    int right = 0;
    int wrong = 0; // a reply that is not what the key holds: must never happen
    int failed = 0;
    std::vector<std::string> examples;
    asio::steady_timer* all_done = nullptr;

    void note_wrong(std::string what) {
        ++wrong;
        if (examples.size() < 5) examples.push_back(std::move(what));
    }
    void ended() {
        if (--running == 0) all_done->cancel();
    }
};

/// SET key value then GET key: in one call (a two-command pipeline) or in two.
asio::awaitable<void> set_then_get(RedisCluster& c, Tally& t, std::string key, std::string value,
                                   bool pipelined) {
    if (pipelined) {
        std::vector<std::uint8_t> bytes;
        write_command(bytes, {"SET", key, value});
        write_command(bytes, {"GET", key});
        auto r = co_await c.run(key_slot(key), bytes, 2);
        if (!r) {
            ++t.failed;
        } else if ((*r)[0] == status("OK") && (*r)[1] == bulk(value)) {
            ++t.right;
        } else if ((*r)[0].kind == ReplyKind::error || (*r)[1].kind == ReplyKind::error) {
            ++t.failed; // an error reply: a miss for the cache, not a wrong value
        } else {
            t.note_wrong(key + ": " + (*r)[1].str);
        }
        co_return;
    }
    auto set = co_await call(c, key, cmd("SET", key, value));
    auto get = co_await call(c, key, cmd("GET", key));
    if (!set || !get) {
        ++t.failed;
    } else if (*set == status("OK") && *get == bulk(value)) {
        ++t.right;
    } else if (set->kind == ReplyKind::error || get->kind == ReplyKind::error) {
        ++t.failed;
    } else {
        t.note_wrong(key + ": " + get->str);
    }
}

} // namespace

TEST_CASE("parse_cluster_slots reads masters, fills in an empty host and skips unknown ones",
          "[cache][redis][cluster]") {
    Reply with_replica = slots_entry(0, 5460, "10.0.0.1", 6379);
    with_replica.elements.push_back(array({bulk("10.0.0.9"), integer(6379), bulk("ffff")}));
    const Reply reply = array({with_replica, slots_entry(5461, 10922, "", 6380),
                               slots_entry(10923, 16000, "?", 6381),
                               slots_entry(16001, 16383, "node-3.example", 7000)});
    auto ranges = parse_cluster_slots(reply, "10.0.0.2");
    REQUIRE(ranges);
    const std::vector<ClusterSlotRange> expected{{0, 5460, "10.0.0.1", 6379},
                                                 {5461, 10922, "10.0.0.2", 6380},
                                                 {16001, 16383, "node-3.example", 7000}};
    CHECK(*ranges == expected);

    auto none = parse_cluster_slots(array({}), "h");
    REQUIRE(none);
    CHECK(none->empty());
}

TEST_CASE("parse_cluster_slots refuses what the specification does not allow",
          "[cache][redis][cluster]") {
    Reply no_master = array({integer(0), integer(1)});
    Reply short_master = array({integer(0), integer(1), array({bulk("h")})});
    Reply port_as_bulk = array({integer(0), integer(1), array({bulk("h"), bulk("6379")})});
    const Reply bad[] = {
        bulk("not an array"),
        Reply{ReplyKind::error, "ERR This instance has cluster support disabled", 0, {}},
        array({bulk("entry")}),
        array({no_master}),
        array({short_master}),
        array({port_as_bulk}),
        array({slots_entry(0, 16384, "h", 1)}),
        array({slots_entry(-1, 5, "h", 1)}),
        array({slots_entry(9, 5, "h", 1)}),
        array({slots_entry(0, 5, "h", 0)}),
        array({slots_entry(0, 5, "h", 65536)}),
    };
    for (const Reply& r : bad) {
        INFO(r);
        auto ranges = parse_cluster_slots(r, "h");
        REQUIRE_FALSE(ranges);
        CHECK(ranges.error() == cluster_errc::bad_slot_map);
    }
}

TEST_CASE("RedisCluster finds the masters from a seed and spreads keys over all three",
          "[cache][redis][cluster]") {
    const Cluster& cluster = shared_cluster();
    run_async([](const Cluster& cl) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        // The first seed is dead: the second answers.
        RedisCluster c{ex, {cluster_endpoint(free_port()), cluster_endpoint(cl.port(1))}, nullptr};
        CHECK(c.owner(0) == nullptr);
        Tally t;
        asio::steady_timer all_done{ex, Clock::time_point::max()};
        t.all_done = &all_done;
        t.running = 300;
        auto one = [&](int i) -> asio::awaitable<void> {
            // Named: GCC 12 destroys a temporary argument of a co_awaited call twice.
            const std::string k = "key:" + std::to_string(i);
            const std::string v = "value " + std::to_string(i);
            co_await set_then_get(c, t, k, v, i % 2 == 0);
            t.ended();
        };
        for (int i = 0; i < 300; ++i)
            asio::co_spawn(ex, one(i), asio::detached);
        co_await all_done.async_wait(use_tuple);
        CHECK(t.right == 300);
        CHECK(t.wrong == 0);
        CHECK(t.failed == 0);
        // All 300 waited for one fetch of the map.
        CHECK(c.stats().refreshes == 1);
        CHECK(c.stats().moved == 0);
        CHECK(c.stats().ask == 0);
        REQUIRE(c.owner(0) != nullptr);
        CHECK(c.owner(0)->port == cl.port(0));
        CHECK(c.owner(8000)->port == cl.port(1));
        CHECK(c.owner(16383)->port == cl.port(2));
        for (int n = 0; n < 3; ++n) {
            const RedisConn* conn = c.node(loopback, cl.port(n));
            REQUIRE(conn != nullptr);
            CHECK(conn->stats().calls > 50); // ~1/3 of 450 calls each
        }
    }(cluster));
}

TEST_CASE("RedisCluster speaks TLS and logs in on every node", "[cache][redis][cluster][tls]") {
    Cluster cluster{"REDIS_CLUSTER_PASSWORD=cluster-pw REDIS_CLUSTER_TLS_DIR=" +
                    cert_dir().string()};
    run_async([](const Cluster& cl) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        RedisEndpoint seed = cluster_endpoint(cl.port(0));
        seed.tls = true;
        seed.tls_ca_file = (cert_dir() / "ca.pem").string();
        seed.tls_server_name = "localhost"; // the seed only; nodes are verified by address
        seed.password = "cluster-pw";
        auto ctx = make_tls_context(seed);
        REQUIRE(ctx.has_value());
        RedisCluster c{ex, {seed}, &*ctx};
        for (int i = 0; i < 30; ++i) {
            const std::string key = "tls:" + std::to_string(i);
            auto set = co_await call(c, key, cmd("SET", key, "v"));
            REQUIRE(set);
            CHECK(*set == status("OK"));
            auto get = co_await call(c, key, cmd("GET", key));
            REQUIRE(get);
            CHECK(*get == bulk("v"));
        }
        for (int n = 0; n < 3; ++n) {
            const RedisConn* conn = c.node(loopback, cl.port(n));
            REQUIRE(conn != nullptr);
            CHECK(conn->up());
        }
        CHECK(c.stats().failed_calls == 0);
    }(cluster));
}

TEST_CASE("RedisCluster follows ASK and MOVED while a slot migrates under 1,000 concurrent "
          "callers, and never returns a wrong value",
          "[cache][redis][cluster]") {
    const Cluster& cluster = shared_cluster();
    // A hash tag in the third node's slots (10923-16383), to move to the first.
    std::string hash_tag;
    for (int i = 0; hash_tag.empty(); ++i)
        if (key_slot("m" + std::to_string(i)) > 11000) hash_tag = "m" + std::to_string(i);
    run_async([](const Cluster& cl, std::string tag) -> asio::awaitable<void> {
        const std::uint16_t slot = key_slot(tag);
        auto ex = co_await asio::this_coro::executor;
        RedisCluster c{ex, {cluster_endpoint(cl.port(0))}, nullptr};
        constexpr int callers = 1000;
        auto key = [&](int i) { return "{" + tag + "}:" + std::to_string(i); };

        // The keys exist on the source before the migration starts.
        for (int i = 0; i < callers; i += 100) {
            std::vector<std::uint8_t> bytes;
            for (int k = i; k < i + 100; ++k)
                write_command(bytes, {"SET", key(k), "initial"});
            auto r = co_await c.run(slot, bytes, 100);
            REQUIRE(r);
        }
        REQUIRE(c.owner(slot)->port == cl.port(2));

        // The migration runs on another thread; callers go on until it is over.
        std::atomic<bool> migrated{false};
        int migrate_status = -1;
        std::thread mover{[&] {
            migrate_status = cl.migrate(
                slot, 0, "REDIS_CLUSTER_MIGRATE_BATCH=50 REDIS_CLUSTER_MIGRATE_PAUSE=0.02");
            migrated = true;
        }};
        Tally t;
        asio::steady_timer all_done{ex, Clock::time_point::max()};
        t.all_done = &all_done;
        t.running = callers;
        int rounds = 0;
        auto caller = [&](int i) -> asio::awaitable<void> {
            for (int round = 0;; ++round) {
                const bool last = migrated; // one more round after the migration
                const std::string k = key(i);
                const std::string v = std::to_string(i) + ":" + std::to_string(round);
                co_await set_then_get(c, t, k, v, i % 2 == 0);
                if (i == 0) rounds = round + 1;
                if (last || round > 500) break;
                co_await sleep_for(10ms);
            }
            t.ended();
        };
        for (int i = 0; i < callers; ++i)
            asio::co_spawn(ex, caller(i), asio::detached);
        co_await all_done.async_wait(use_tuple);
        mover.join();
        REQUIRE(migrate_status == 0);
        INFO("rounds " << rounds << ", right " << t.right << ", failed " << t.failed << ", moved "
                       << c.stats().moved << ", ask " << c.stats().ask << ", refreshes "
                       << c.stats().refreshes);
        for (const auto& e : t.examples)
            UNSCOPED_INFO("wrong: " << e);
        CHECK(t.wrong == 0);
        CHECK(t.failed == 0);
        CHECK(rounds >= 3); // the callers did overlap the migration
        CHECK(c.stats().ask + c.stats().moved > 0);

        // Afterwards: the map names the new owner, and calls go there without a redirection.
        REQUIRE(c.owner(slot) != nullptr);
        CHECK(c.owner(slot)->port == cl.port(0));
        const auto redirects = c.stats().ask + c.stats().moved;
        const auto to_target = c.node(loopback, cl.port(0))->stats().calls;
        const auto to_source = c.node(loopback, cl.port(2))->stats().calls;
        for (int i = 0; i < callers; ++i) {
            auto get = co_await call(c, key(i), cmd("GET", key(i)));
            REQUIRE(get);
            CHECK(get->kind == ReplyKind::bulk);
        }
        CHECK(c.stats().ask + c.stats().moved == redirects);
        CHECK(c.node(loopback, cl.port(0))->stats().calls >= to_target + callers);
        CHECK(c.node(loopback, cl.port(2))->stats().calls <= to_source + 1); // a late refresh
    }(cluster, hash_tag));
}

TEST_CASE("RedisCluster fails calls for a killed node's slots at once and serves the others",
          "[cache][redis][cluster]") {
    Cluster cluster;
    run_async([](const Cluster& cl) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        ClusterOptions options;
        options.min_refresh_interval = 100ms;
        RedisCluster c{ex, {cluster_endpoint(cl.port(0))}, nullptr, options};
        // Keys on each node.
        std::vector<std::string> keys[3];
        for (int i = 0; keys[0].size() < 10 || keys[1].size() < 10 || keys[2].size() < 10; ++i) {
            std::string key = "k" + std::to_string(i);
            const std::uint16_t s = key_slot(key);
            keys[s <= 5460 ? 0 : s <= 10922 ? 1 : 2].push_back(std::move(key));
        }
        for (const auto& node_keys : keys)
            for (const std::string& key : node_keys) {
                auto set = co_await call(c, key, cmd("SET", key, "v"));
                REQUIRE(set);
            }
        const auto refreshes = c.stats().refreshes;

        cl.kill(1);
        for (int round = 0; round < 5; ++round) {
            for (const std::string& key : keys[1]) {
                const auto t0 = Clock::now();
                auto get = co_await call(c, key, cmd("GET", key));
                CHECK_FALSE(get);
                CHECK(ms(Clock::now() - t0) < 100);
            }
            for (int n : {0, 2})
                for (const std::string& key : keys[n]) {
                    auto get = co_await call(c, key, cmd("GET", key));
                    REQUIRE(get);
                    CHECK(*get == bulk("v"));
                }
            co_await sleep_for(100ms);
        }
        // The failures asked for new maps (rate-limited), which the live nodes gave.
        CHECK(c.stats().refreshes > refreshes);
        CHECK(c.stats().refreshes <= refreshes + 7); // 5 rounds, 100 ms apart
        CHECK(c.stats().refresh_failures == 0);
        CHECK(c.owner(8000)->port == cl.port(1)); // no replica took over
        CHECK_FALSE(c.node(loopback, cl.port(1))->up());
    }(cluster));
}

TEST_CASE("RedisCluster without any live seed fails calls promptly", "[cache][redis][cluster]") {
    run_async([]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        ClusterOptions options;
        options.min_refresh_interval = 100ms;
        RedisCluster c{
            ex, {cluster_endpoint(free_port()), cluster_endpoint(free_port())}, nullptr, options};
        const auto t0 = Clock::now();
        auto first = co_await call(c, "k", cmd("GET", "k"));
        REQUIRE_FALSE(first);
        CHECK(first.error() == asio::error::connection_refused);
        // Within the refresh interval: refused without trying.
        auto second = co_await call(c, "k", cmd("GET", "k"));
        REQUIRE_FALSE(second);
        CHECK(ms(Clock::now() - t0) < 50);
        CHECK(c.stats().refresh_failures == 1);
        CHECK(c.stats().failed_calls == 2);

        // A server that is not a cluster.
        RedisServer plain;
        RedisCluster p{ex, {cluster_endpoint(plain.port())}, nullptr};
        auto r = co_await call(p, "k", cmd("GET", "k"));
        REQUIRE_FALSE(r);
        CHECK(r.error() == cluster_errc::bad_slot_map);

        c.close();
        auto closed = co_await call(c, "k", cmd("GET", "k"));
        REQUIRE_FALSE(closed);
        CHECK(closed.error() == redis_errc::closed);
    }());
}

TEST_CASE("RedisCluster::close fails the calls in flight", "[cache][redis][cluster]") {
    const Cluster& cluster = shared_cluster();
    run_async([](const Cluster& cl) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        RedisCluster c{ex, {cluster_endpoint(cl.port(0))}, nullptr};
        auto warm = co_await call(c, "k", cmd("SET", "k", "v"));
        REQUIRE(warm);
        auto closer = [&]() -> asio::awaitable<void> {
            co_await sleep_for(30ms);
            c.close();
        };
        asio::co_spawn(ex, closer(), asio::detached);
        const auto t0 = Clock::now();
        auto blocked = co_await call(c, "list", cmd("BLPOP", "list", "1"));
        REQUIRE_FALSE(blocked);
        CHECK(blocked.error() == redis_errc::closed);
        CHECK(ms(Clock::now() - t0) < 500);
    }(cluster));
}
