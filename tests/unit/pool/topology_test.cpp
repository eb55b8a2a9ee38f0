#include "sluice/pool/topology.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>

using namespace sluice::pool;
using namespace std::chrono_literals;

namespace {

BackendState primary() {
    BackendState b;
    b.role = Role::primary;
    return b;
}

BackendState replica(std::string zone = "") {
    BackendState b;
    b.role = Role::replica;
    b.zone = std::move(zone);
    return b;
}

BackendState with(BackendState b, void (*tweak)(BackendState&)) {
    tweak(b);
    return b;
}

// Backend 0 is the primary, as in the usual config; the rest are as given.
Topology topology(std::vector<BackendState> replicas) {
    Topology t;
    t.version = 1;
    t.backends.push_back(primary());
    t.primary = 0;
    for (auto& r : replicas)
        t.backends.push_back(std::move(r));
    return t;
}

ReplicaRequirements tiebreak(std::uint64_t n) {
    ReplicaRequirements req;
    req.tiebreak = n;
    return req;
}

// The index chosen for each tiebreak value 0 .. n-1.
std::vector<std::optional<std::size_t>> choices(const Topology& t, ReplicaRequirements req,
                                                std::uint64_t n) {
    std::vector<std::optional<std::size_t>> out;
    for (std::uint64_t i = 0; i < n; ++i) {
        req.tiebreak = i;
        out.push_back(choose_replica(t, req));
    }
    return out;
}

using Choices = std::vector<std::optional<std::size_t>>;

} // namespace

TEST_CASE("eligibility names the first reason a backend cannot serve a session's reads", "[pool]") {
    ReplicaRequirements strict;
    strict.max_lag = 1000ms;
    strict.excluded = std::uint64_t{1} << 3;
    struct Row {
        const char* what;
        BackendState b;
        std::size_t index;
        Ineligible expected;
    };
    const std::vector<Row> rows = {
        {"a fresh replica that is up", replica(), 1, Ineligible::none},
        {"the primary", primary(), 0, Ineligible::not_replica},
        {"a primary that is also down", with(primary(), [](BackendState& b) { b.up = false; }), 0,
         Ineligible::not_replica},
        {"a replica whose breaker is open", with(replica(), [](BackendState& b) { b.up = false; }),
         1, Ineligible::down},
        {"a down replica that also stopped replicating",
         with(replica(),
              [](BackendState& b) {
                  b.up = false;
                  b.replicating = false;
              }),
         1, Ineligible::down},
        {"a replica whose threads stopped",
         with(replica(), [](BackendState& b) { b.replicating = false; }), 1,
         Ineligible::not_replicating},
        {"a replica 2 s behind", with(replica(), [](BackendState& b) { b.lag = 2000ms; }), 1,
         Ineligible::too_far_behind},
        {"an excluded replica", replica(), 3, Ineligible::excluded},
        {"an excluded replica that is also behind",
         with(replica(), [](BackendState& b) { b.lag = 2000ms; }), 3, Ineligible::too_far_behind},
        {"the backend at the last index", replica(), 63, Ineligible::none},
    };
    for (const auto& row : rows) {
        INFO(row.what);
        CHECK(eligibility(row.b, row.index, strict) == row.expected);
    }
}

TEST_CASE("a lag not yet measured counts as fresh and a measured one is held to max_lag",
          "[pool]") {
    struct Row {
        std::optional<std::chrono::milliseconds> lag;
        std::optional<std::chrono::milliseconds> max_lag;
        Ineligible expected;
    };
    const std::vector<Row> rows = {
        {std::nullopt, 1000ms, Ineligible::none},
        {std::nullopt, 0ms, Ineligible::none},
        {std::nullopt, std::nullopt, Ineligible::none},
        {0ms, 0ms, Ineligible::none},
        {999ms, 1000ms, Ineligible::none},
        {1000ms, 1000ms, Ineligible::none},
        {1001ms, 1000ms, Ineligible::too_far_behind},
        {1ms, 0ms, Ineligible::too_far_behind},
        {3600000ms, std::nullopt, Ineligible::none},
    };
    for (const auto& row : rows) {
        INFO("lag " << (row.lag ? row.lag->count() : -1) << " ms, max_lag "
                    << (row.max_lag ? row.max_lag->count() : -1) << " ms");
        BackendState b = replica();
        b.lag = row.lag;
        ReplicaRequirements req;
        req.max_lag = row.max_lag;
        CHECK(eligibility(b, 1, req) == row.expected);
        // choose_replica follows eligibility.
        const auto chosen = choose_replica(topology({b}), req);
        CHECK(chosen ==
              (row.expected == Ineligible::none ? std::optional<std::size_t>{1} : std::nullopt));
    }
}

TEST_CASE("choose_replica returns nothing when no replica is eligible", "[pool]") {
    CHECK_FALSE(choose_replica(Topology{}, {}).has_value());
    CHECK_FALSE(choose_replica(topology({}), {}).has_value());

    Topology none_up = topology({with(replica(), [](BackendState& b) { b.up = false; }),
                                 with(replica(), [](BackendState& b) { b.replicating = false; }),
                                 with(replica(), [](BackendState& b) { b.lag = 9000ms; })});
    ReplicaRequirements req;
    req.max_lag = 5000ms;
    CHECK(choices(none_up, req, 4) == Choices(4, std::nullopt));
    // The primary is up and fresh, and still not a replica.
    CHECK(none_up.backends[0].up);

    Topology all_excluded = topology({replica(), replica()});
    req.excluded = 0b110;
    CHECK(choices(all_excluded, req, 4) == Choices(4, std::nullopt));
}

TEST_CASE("choose_replica never chooses the primary, however good its score", "[pool]") {
    Topology t = topology({with(replica(), [](BackendState& b) {
        b.rtt = 5000us;
        b.outstanding = 40;
    })});
    t.backends[0].weight = 100; // the primary's score is far the best
    t.backends[0].zone = "a";
    ReplicaRequirements req;
    req.zone = "a";
    CHECK(choices(t, req, 5) == Choices(5, std::size_t{1}));

    // Wherever the primary sits in the config.
    Topology later;
    later.backends = {replica(), replica(), primary()};
    later.primary = 2;
    CHECK(choices(later, {}, 4) == Choices{0, 1, 0, 1});
    // A topology with only primaries (two nodes both read_only=0 during a failover).
    Topology primaries;
    primaries.backends = {primary(), primary()};
    CHECK(choices(primaries, {}, 3) == Choices(3, std::nullopt));
}

TEST_CASE("score grows with rtt and outstanding requests", "[pool]") {
    struct Row {
        std::int64_t rtt_us;
        std::uint32_t outstanding;
        std::uint32_t weight;
        double expected;
    };
    // Round trips under near_rtt (500 us) count as 500 us; the weight divides the load, not the
    // distance (0 counts as 1).
    const std::vector<Row> rows = {
        {0, 0, 1, 500.0},    {99, 0, 1, 500.0},   {499, 0, 1, 500.0},  {999, 0, 1, 999.0},
        {999, 1, 1, 1998.0}, {999, 3, 1, 3996.0}, {999, 1, 2, 1498.5}, {999, 1, 4, 1248.75},
        {0, 0, 0, 500.0},    {999, 0, 0, 999.0},  {-50, 0, 1, 500.0},  {2000, 9, 5, 5600.0},
        {99, 1, 1, 1000.0},  {999, 0, 4, 999.0},
    };
    for (const auto& row : rows) {
        INFO("rtt " << row.rtt_us << " us, outstanding " << row.outstanding << ", weight "
                    << row.weight);
        BackendState b = replica();
        b.rtt = std::chrono::microseconds{row.rtt_us};
        b.outstanding = row.outstanding;
        b.weight = row.weight;
        CHECK(score(b) == Approx(row.expected));
    }
}

TEST_CASE("choose_replica takes the replica with the lowest score", "[pool]") {
    struct Row {
        const char* what;
        BackendState a; // index 1
        BackendState b; // index 2
        std::size_t expected;
    };
    auto make = [](std::int64_t rtt_us, std::uint32_t outstanding, std::uint32_t weight) {
        BackendState r = replica();
        r.rtt = std::chrono::microseconds{rtt_us};
        r.outstanding = outstanding;
        r.weight = weight;
        return r;
    };
    const std::vector<Row> rows = {
        {"the nearer one", make(300, 0, 1), make(5300, 0, 1), 1},
        {"the nearer one, second in order", make(5300, 0, 1), make(300, 0, 1), 2},
        {"the less loaded one", make(500, 4, 1), make(500, 1, 1), 2},
        {"distance against load: 1 ms busy beats 5 ms idle", make(999, 2, 1), make(4999, 0, 1), 1},
        {"distance against load: 1 ms very busy loses to 5 ms idle", make(999, 9, 1),
         make(4999, 0, 1), 2},
        {"weight does not make up for distance", make(999, 0, 1), make(2999, 0, 4), 1},
        {"a heavier replica takes more load before another looks better", make(2000, 3, 4),
         make(2000, 2, 1), 1},
    };
    for (const auto& row : rows) {
        INFO(row.what);
        const Topology t = topology({row.a, row.b});
        // Not a tie: every tiebreak value gives the same answer.
        CHECK(choices(t, {}, 4) == Choices(4, row.expected));
    }
}

TEST_CASE("scores up to 1.5 x the best + 500 are tied and beyond it are not", "[pool]") {
    auto at = [](std::int64_t rtt_us) {
        BackendState r = replica();
        r.rtt = std::chrono::microseconds{rtt_us};
        return r;
    };
    // Best 1000: the band ends at 2000.
    CHECK(choices(topology({at(1000), at(2000)}), {}, 4) == Choices{1, 2, 1, 2});
    CHECK(choices(topology({at(2000), at(1000)}), {}, 4) == Choices{1, 2, 1, 2});
    CHECK(choices(topology({at(1000), at(2001)}), {}, 4) == Choices(4, std::size_t{1}));
    CHECK(choices(topology({at(2001), at(1000)}), {}, 4) == Choices(4, std::size_t{2}));
    // The band is measured from the best, not chained: 1000, 2000, 3000.
    CHECK(choices(topology({at(1000), at(2000), at(3000)}), {}, 4) == Choices{1, 2, 1, 2});
}

// Sessions opened one after another, each holding its replica: what each chose.
Choices opened(Topology t, std::uint64_t n) {
    Choices out;
    for (std::uint64_t i = 0; i < n; ++i) {
        const auto c = choose_replica(t, tiebreak(i));
        out.push_back(c);
        if (c) ++t.backends[*c].sessions;
    }
    return out;
}

TEST_CASE("#8: equally near replicas stay tied whatever their weights and round trips", "[pool]") {
    // A loaded host: both replicas 3 ms away. Weights 3 and 1 still share the sessions (a
    // distance divided by weight would leave the lighter one outside the tie band).
    auto at = [](std::int64_t rtt_us, std::uint32_t w) {
        BackendState r = replica();
        r.rtt = std::chrono::microseconds{rtt_us};
        r.weight = w;
        return r;
    };
    const Choices c = opened(topology({at(3000, 3), at(3000, 1)}), 8);
    CHECK(std::count(c.begin(), c.end(), std::optional<std::size_t>{1}) == 6);
}

TEST_CASE("weights share the sessions among equally near replicas", "[pool]") {
    auto weighted = [](std::uint32_t w) {
        BackendState r = replica();
        r.weight = w;
        return r;
    };
    // (sessions + 1) / weight: 1/1 against 1/3, 2/3, 3/3 (equal: the tiebreak), ...
    CHECK(opened(topology({weighted(1), weighted(3)}), 8) == Choices{2, 2, 1, 2, 2, 2, 1, 2});
    CHECK(opened(topology({weighted(0), weighted(1)}), 4) == Choices{1, 2, 1, 2});
}

TEST_CASE("#8: tied replicas take new sessions by the fewest sessions held, not by turns",
          "[pool]") {
    Topology t = topology({replica(), replica(), replica()});
    t.backends[1].sessions = 5;
    t.backends[3].sessions = 2;
    // Whatever the tiebreak value: replica 2 holds none.
    CHECK(choices(t, {}, 4) == Choices(4, std::size_t{2}));
    // Sixteen sessions opened at once onto an empty pair split evenly.
    const Choices c = opened(topology({replica(), replica()}), 16);
    CHECK(std::count(c.begin(), c.end(), std::optional<std::size_t>{1}) == 8);
    // Not tied: the far one gets none however many sessions the near one holds.
    Topology far = topology({replica(), replica()});
    far.backends[1].rtt = 10000us;
    far.backends[2].sessions = 100;
    CHECK(choices(far, {}, 4) == Choices(4, std::size_t{2}));
}

TEST_CASE("consecutive tiebreak values take tied replicas in turn, as round robin did", "[pool]") {
    SECTION("two replicas, nothing measured") {
        CHECK(choices(topology({replica(), replica()}), {}, 6) == Choices{1, 2, 1, 2, 1, 2});
    }
    SECTION("three replicas, nothing measured") {
        CHECK(choices(topology({replica(), replica(), replica()}), {}, 7) ==
              Choices{1, 2, 3, 1, 2, 3, 1});
    }
    SECTION("three tied replicas beside a slower one") {
        auto at = [](std::int64_t rtt_us) {
            BackendState r = replica();
            r.rtt = std::chrono::microseconds{rtt_us};
            return r;
        };
        CHECK(choices(topology({at(400), at(5000), at(400), at(401)}), {}, 6) ==
              Choices{1, 3, 4, 1, 3, 4});
    }
    SECTION("large tiebreak values such as session ids") {
        const Topology t = topology({replica(), replica()});
        CHECK(choose_replica(t, tiebreak((1u << 30) + 0)) == 1u);
        CHECK(choose_replica(t, tiebreak((1u << 30) + 1)) == 2u);
        CHECK(choose_replica(t, tiebreak(~std::uint64_t{0})) == 2u);
    }
    SECTION("each tied replica gets its share") {
        const Topology t = topology({replica(), replica(), replica()});
        std::map<std::size_t, int> count;
        for (std::uint64_t id = 1000; id < 1300; ++id)
            ++count[*choose_replica(t, tiebreak(id))];
        CHECK(count == std::map<std::size_t, int>{{1, 100}, {2, 100}, {3, 100}});
    }
}

TEST_CASE("choose_replica prefers the proxy's own zone while a replica there is eligible",
          "[pool]") {
    auto far_in = [](std::string zone) {
        BackendState r = replica(std::move(zone));
        r.rtt = 3000us;
        return r;
    };
    auto near_in = [](std::string zone) {
        BackendState r = replica(std::move(zone));
        r.rtt = 200us;
        return r;
    };
    ReplicaRequirements in_a;
    in_a.zone = "a";

    SECTION("the own zone wins over a better score elsewhere") {
        const Topology t = topology({near_in("b"), far_in("a")});
        CHECK(choices(t, in_a, 4) == Choices(4, std::size_t{2}));
    }
    SECTION("within the own zone the score decides, and ties alternate") {
        const Topology t = topology({far_in("a"), near_in("b"), near_in("a"), near_in("a")});
        CHECK(choices(t, in_a, 4) == Choices{3, 4, 3, 4});
    }
    SECTION("none eligible in the own zone: the other zones by score") {
        Topology t = topology({far_in("a"), near_in("b"), far_in("c")});
        t.backends[1].up = false;
        CHECK(choices(t, in_a, 4) == Choices(4, std::size_t{2}));
        in_a.excluded = std::uint64_t{1} << 1;
        t.backends[1].up = true;
        CHECK(choices(t, in_a, 4) == Choices(4, std::size_t{2}));
        in_a.excluded = 0;
        CHECK(choices(t, in_a, 4) == Choices(4, std::size_t{1}));
    }
    SECTION("no replica in the own zone at all: the others by score") {
        const Topology t = topology({far_in("b"), near_in("c")});
        CHECK(choices(t, in_a, 4) == Choices(4, std::size_t{2}));
    }
    SECTION("no own zone: no preference") {
        const Topology t = topology({near_in("b"), far_in("a")});
        CHECK(choices(t, {}, 4) == Choices(4, std::size_t{1}));
    }
    SECTION("a replica without a zone is not in the own zone") {
        const Topology t = topology({near_in(""), far_in("a")});
        CHECK(choices(t, in_a, 4) == Choices(4, std::size_t{2}));
    }
    SECTION("a primary in the own zone does not hide the other zones") {
        Topology t = topology({near_in("b")});
        t.backends[0].zone = "a";
        CHECK(choices(t, in_a, 4) == Choices(4, std::size_t{1}));
    }
}

TEST_CASE("choose_replica skips excluded replicas and shares the choice among the rest", "[pool]") {
    const Topology t = topology({replica(), replica(), replica()});
    struct Row {
        std::uint64_t excluded;
        Choices expected;
    };
    const std::vector<Row> rows = {
        {0, {1, 2, 3, 1}},
        {0b0010, {2, 3, 2, 3}},
        {0b0100, {1, 3, 1, 3}},
        {0b1010, {2, 2, 2, 2}},
        {0b1110, Choices(4, std::nullopt)},
        {0b0001, {1, 2, 3, 1}}, // the primary's bit changes nothing
        {~std::uint64_t{0} << 4, {1, 2, 3, 1}},
    };
    for (const auto& row : rows) {
        INFO("excluded " << row.excluded);
        ReplicaRequirements req;
        req.excluded = row.excluded;
        CHECK(choices(t, req, 4) == row.expected);
    }
}

TEST_CASE("choose_replica handles the full 64 backends", "[pool]") {
    Topology t = topology(std::vector<BackendState>(63, replica()));
    REQUIRE(t.backends.size() == max_backends);
    ReplicaRequirements req;
    req.excluded = ~std::uint64_t{0} >> 1; // all but the last
    CHECK(choose_replica(t, req) == 63u);
    req.excluded = 0;
    req.tiebreak = 62;
    CHECK(choose_replica(t, req) == 63u);
}

TEST_CASE("Topology::replicas lists the replicas' indexes in config order", "[pool]") {
    Topology t;
    t.backends = {replica(), primary(), replica(), replica()};
    t.primary = 1;
    CHECK(t.replicas() == std::vector<std::size_t>{0, 2, 3});
    CHECK(Topology{}.replicas().empty());
}

TEST_CASE("ewma takes the first sample as is and then moves a share of the way", "[pool]") {
    struct Row {
        std::int64_t old_us, sample_us;
        double alpha;
        std::int64_t expected_us;
    };
    const std::vector<Row> rows = {
        {0, 500, 0.2, 500}, // first sample
        {0, 0, 0.2, 1},     // a measured value is never "unknown"
        {0, -3, 0.2, 1},    // a negative sample counts as 0
        {1000, 2000, 0.2, 1200}, {1000, 0, 0.2, 800},     {1000, 1000, 0.2, 1000},
        {1000, 2000, 1.0, 2000}, {1000, 2000, 0.5, 1500}, {10, 13, 0.2, 11}, // 10.6 rounds up
        {2, 0, 0.2, 2},                                                      // 1.6 rounds to 2
        {1, 0, 0.5, 1}, // 0.5 rounds to 1, and never below it
    };
    for (const auto& row : rows) {
        INFO("old " << row.old_us << " sample " << row.sample_us << " alpha " << row.alpha);
        CHECK(ewma(std::chrono::microseconds{row.old_us}, std::chrono::microseconds{row.sample_us},
                   row.alpha)
                  .count() == row.expected_us);
    }
    // The default alpha is 0.2, and a steady sample is converged on.
    CHECK(ewma(1000us, 2000us) == 1200us);
    std::chrono::microseconds e{100};
    for (int i = 0; i < 100; ++i)
        e = ewma(e, 5000us);
    CHECK(e.count() >= 4995);
    CHECK(e.count() <= 5000);
}

TEST_CASE("role and ineligibility names are the enumerators' names", "[pool]") {
    CHECK(std::string{role_name(Role::primary)} == "primary");
    CHECK(std::string{role_name(Role::replica)} == "replica");
    CHECK(std::string{ineligible_name(Ineligible::none)} == "none");
    CHECK(std::string{ineligible_name(Ineligible::not_replica)} == "not_replica");
    CHECK(std::string{ineligible_name(Ineligible::down)} == "down");
    CHECK(std::string{ineligible_name(Ineligible::not_replicating)} == "not_replicating");
    CHECK(std::string{ineligible_name(Ineligible::too_far_behind)} == "too_far_behind");
    CHECK(std::string{ineligible_name(Ineligible::excluded)} == "excluded");
}

TEST_CASE("#8: replicas nearer than near_rtt tie, so RTT jitter does not herd sessions", "[pool]") {
    auto at = [](std::int64_t rtt_us) {
        BackendState r = replica();
        r.rtt = std::chrono::microseconds{rtt_us};
        return r;
    };
    // 150 us and 320 us on loopback: equally near.
    CHECK(choices(topology({at(150), at(320)}), {}, 4) == Choices{1, 2, 1, 2});
    // Unmeasured and measured alike.
    CHECK(choices(topology({at(0), at(200)}), {}, 4) == Choices{1, 2, 1, 2});
    // 5 ms behind a relay against loopback: the near one.
    CHECK(choices(topology({at(10200), at(180)}), {}, 4) == Choices(4, std::size_t{2}));
}

TEST_CASE("#10: per statement, tied replicas take turns in proportion to their weights", "[pool]") {
    auto weighted = [](std::uint32_t w, std::uint32_t sessions) {
        BackendState r = replica();
        r.weight = w;
        r.sessions = sessions;
        return r;
    };
    // Sessions held do not count (pooled sessions hold none between statements); weights do:
    // eight consecutive statements on weights 3:1 go 6 and 2, without a run of catch-up.
    Topology t = topology({weighted(3, 0), weighted(1, 50)});
    Choices c;
    for (std::uint64_t i = 0; i < 8; ++i) {
        ReplicaRequirements req;
        req.tiebreak = i;
        req.per_statement = true;
        c.push_back(choose_replica(t, req));
    }
    CHECK(c == Choices{1, 1, 1, 2, 1, 1, 1, 2});
    // Not tied: the nearer takes every statement.
    t.backends[2].rtt = 10000us;
    ReplicaRequirements req;
    req.per_statement = true;
    req.tiebreak = 3;
    CHECK(choose_replica(t, req) == std::optional<std::size_t>{1});
}
