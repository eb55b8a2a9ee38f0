#include "sluice/pool/topology.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>

namespace sluice::pool {

namespace {

bool bit(std::uint64_t mask, std::size_t index) noexcept {
    return index < max_backends && ((mask >> index) & 1) != 0;
}

// Scores up to this factor of the best, plus near_rtt, are the same choice: round trips
// jitter (a busy host doubles a 0.3 ms ping now and then), and a strict minimum would send
// every new session to whichever replica measured a little less. 5 ms of distance or three
// requests of load are not jitter.
constexpr double tie_factor = 1.5;

} // namespace

const char* role_name(Role r) noexcept {
    switch (r) {
    case Role::primary:
        return "primary";
    case Role::replica:
        return "replica";
    }
    return "?";
}

std::vector<std::size_t> Topology::replicas() const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < backends.size(); ++i) {
        if (backends[i].role == Role::replica) out.push_back(i);
    }
    return out;
}

const char* ineligible_name(Ineligible i) noexcept {
    switch (i) {
    case Ineligible::none:
        return "none";
    case Ineligible::not_replica:
        return "not_replica";
    case Ineligible::down:
        return "down";
    case Ineligible::not_replicating:
        return "not_replicating";
    case Ineligible::too_far_behind:
        return "too_far_behind";
    case Ineligible::excluded:
        return "excluded";
    }
    return "?";
}

Ineligible eligibility(const BackendState& b, std::size_t index,
                       const ReplicaRequirements& req) noexcept {
    assert(index < max_backends); // the excluded mask has one bit per backend
    if (b.role != Role::replica) return Ineligible::not_replica;
    if (!b.up) return Ineligible::down;
    if (!b.replicating) return Ineligible::not_replicating;
    if (req.max_lag && b.lag && *b.lag > *req.max_lag) return Ineligible::too_far_behind;
    if (bit(req.excluded, index)) return Ineligible::excluded;
    return Ineligible::none;
}

double score(const BackendState& b) noexcept {
    // Round trips under near_rtt are jitter on one host or in one zone: equally near.
    const double rtt_us =
        static_cast<double>(std::max<std::int64_t>(b.rtt.count(), near_rtt.count()));
    return rtt_us * (1.0 + static_cast<double>(b.outstanding) /
                               static_cast<double>(std::max<std::uint32_t>(b.weight, 1)));
}

std::optional<std::size_t> choose_replica(const Topology& t,
                                          const ReplicaRequirements& req) noexcept {
    assert(t.backends.size() <= max_backends); // masks below have one bit per backend
    const std::size_t n = std::min(t.backends.size(), max_backends);

    // Candidates as a mask, so that the choice allocates nothing.
    std::uint64_t eligible = 0, in_zone = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const BackendState& b = t.backends[i];
        if (eligibility(b, i, req) != Ineligible::none) continue;
        eligible |= std::uint64_t{1} << i;
        if (!req.zone.empty() && b.zone == req.zone) in_zone |= std::uint64_t{1} << i;
    }
    const std::uint64_t candidates = in_zone != 0 ? in_zone : eligible;
    if (candidates == 0) return std::nullopt;

    double best = 0;
    bool first = true;
    for (std::size_t i = 0; i < n; ++i) {
        if (!bit(candidates, i)) continue;
        const double s = score(t.backends[i]);
        if (first || s < best) best = s;
        first = false;
    }
    std::uint64_t tied = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double band = best * tie_factor + static_cast<double>(near_rtt.count());
        if (bit(candidates, i) && score(t.backends[i]) <= band) tied |= std::uint64_t{1} << i;
    }
    assert(tied != 0); // the best candidate is always within the band
    // Among the tied, the fewest sessions for the weight: (sessions + 1) / weight, compared
    // as cross products so that the comparison is exact.
    auto load_below = [&](std::size_t a, std::size_t b) {
        const BackendState& x = t.backends[a];
        const BackendState& y = t.backends[b];
        return (std::uint64_t{x.sessions} + 1) * std::max<std::uint32_t>(y.weight, 1) <
               (std::uint64_t{y.sessions} + 1) * std::max<std::uint32_t>(x.weight, 1);
    };
    if (req.per_statement) {
        // A weighted round robin without state: consecutive tiebreak values walk the tied
        // replicas, each as many steps as its weight (no catch-up after an outage, as a
        // count of past choices would have).
        std::uint64_t total = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (bit(tied, i)) total += std::max<std::uint32_t>(t.backends[i].weight, 1);
        }
        std::uint64_t step = req.tiebreak % total;
        for (std::size_t i = 0; i < n; ++i) {
            if (!bit(tied, i)) continue;
            const std::uint64_t w = std::max<std::uint32_t>(t.backends[i].weight, 1);
            if (step < w) return i;
            step -= w;
        }
        return std::nullopt; // not reached: step < total
    }
    std::size_t lightest = n;
    for (std::size_t i = 0; i < n; ++i) {
        if (bit(tied, i) && (lightest == n || load_below(i, lightest))) lightest = i;
    }
    std::uint64_t equal = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (bit(tied, i) && !load_below(lightest, i)) equal |= std::uint64_t{1} << i;
    }
    // Those still equal take turns by the tiebreak value.
    std::uint64_t pick = req.tiebreak % static_cast<std::uint64_t>(std::popcount(equal));
    for (std::size_t i = 0; i < n; ++i) {
        if (!bit(equal, i)) continue;
        if (pick == 0) return i;
        --pick;
    }
    return std::nullopt; // not reached: pick < popcount(equal)
}

std::chrono::microseconds ewma(std::chrono::microseconds old, std::chrono::microseconds sample,
                               double alpha) noexcept {
    assert(alpha > 0 && alpha <= 1);
    const auto s = static_cast<double>(std::max<std::int64_t>(sample.count(), 0));
    const double next = old.count() <= 0 ? s
                                         : static_cast<double>(old.count()) +
                                               alpha * (s - static_cast<double>(old.count()));
    return std::chrono::microseconds{std::max<std::int64_t>(std::llround(next), 1)};
}

} // namespace sluice::pool
