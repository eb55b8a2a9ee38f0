#pragma once
// What Sluice knows of its backends at one moment (issue #8): an immutable snapshot the monitor
// publishes, and the pure choice of a replica from it. No sockets, no clock, no logging.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::pool {

/// At most this many backends: a session's exclusions are one bit per backend index.
constexpr std::size_t max_backends = 64;

/// What a backend is now (the monitor's finding: `read_only=0` is the primary), whatever its
/// configured role.
enum class Role : std::uint8_t { primary, replica };
/// "primary" or "replica": for `/backends` and the role metric.
const char* role_name(Role r) noexcept;

/// One backend as the monitor last saw it.
struct BackendState {
    Role role = Role::replica;
    bool up = true;          ///< breaker closed and reachable
    bool replicating = true; ///< replication threads running (replicas)
    /// Replication lag; nullopt until measured (counts as fresh, as Sluice did before measuring).
    std::optional<std::chrono::milliseconds> lag;
    std::chrono::microseconds rtt{0}; ///< round-trip time, EWMA (see ewma()); 0: unknown
    std::uint32_t outstanding = 0;    ///< requests sent and not yet answered
    std::uint32_t sessions = 0;       ///< client sessions holding a connection to it
    std::uint32_t weight = 1;         ///< share of reads relative to others; 0 counts as 1
    std::string zone;                 ///< availability zone; empty: none
    std::string gtid_position;        ///< @@gtid_current_pos / @@gtid_executed as read
    bool read_only = false;           ///< @@read_only as the monitor read it
};

/// Immutable once published: the monitor publishes a `std::shared_ptr<const Topology>` and a
/// statement keeps the one it started with.
struct Topology {
    std::uint64_t version = 0; ///< grows with each snapshot the monitor publishes
    /// Index = backend index in config order; at most max_backends.
    std::vector<BackendState> backends;
    /// The backend whose role is primary; nullopt while none is known (failover).
    std::optional<std::size_t> primary;

    /// Indexes of the backends whose role is replica, ascending.
    std::vector<std::size_t> replicas() const;
};

/// What one session asks of the replica it reads from. A view: `zone` must outlive the call.
struct ReplicaRequirements {
    /// The staleness allowed; nullopt: any lag.
    std::optional<std::chrono::milliseconds> max_lag;
    /// The proxy's own zone, preferred when a replica there is eligible; empty: no preference.
    std::string_view zone;
    /// A bit per backend index not to use for this session now (it refused the session's login,
    /// it lagged behind the session's write, a connect just failed).
    std::uint64_t excluded = 0;
    /// Spreads equal choices over the tied replicas (e.g. the session id): consecutive values
    /// take the tied replicas in turn.
    std::uint64_t tiebreak = 0;
    /// The choice is for one statement (a pooled session), not for a session's life: the
    /// tied replicas take turns by the tiebreak in proportion to their weights, instead of
    /// the fewest sessions held (pooled sessions hold none between statements).
    bool per_statement = false;
};

/// Why a backend cannot serve a session's reads; `none`: it can.
enum class Ineligible : std::uint8_t {
    none,
    not_replica,     ///< its role is primary
    down,            ///< breaker open or unreachable
    not_replicating, ///< its replication threads stopped
    too_far_behind,  ///< measured lag above the requirements' max_lag
    excluded,        ///< its bit is set in the requirements' excluded mask
};
/// The enumerator's name ("none", "not_replica", ...): for logs and metric labels.
const char* ineligible_name(Ineligible i) noexcept;

/// Whether backend `index` (in `b`) may serve reads under `req`: the first reason it may not,
/// in the enumerators' order. A lag not measured yet counts as fresh; a lag equal to max_lag
/// is within it. Precondition: index < max_backends.
Ineligible eligibility(const BackendState& b, std::size_t index,
                       const ReplicaRequirements& req) noexcept;

/// The distance-and-load score choose_replica minimises: max(rtt, near_rtt) in µs times
/// (1 + outstanding / weight) (weight 0 counts as 1): the weight is capacity, so a replica of
/// weight 2 carries twice the outstanding load before another looks better, while equally
/// near idle replicas score the same whatever their weights (the tie-break then shares the
/// sessions by weight). Lower is better; always > 0.
double score(const BackendState& b) noexcept;

/// Round trips up to this count as equally near (loopback, one zone): RTT jitter below it
/// does not decide between replicas.
inline constexpr std::chrono::microseconds near_rtt{500};

/// The replica a session should read from, or nullopt when none is eligible. Among eligible
/// replicas: those in `req.zone` when it is set and one of them is eligible, then the lowest
/// score; scores up to 1.5 x the lowest + near_rtt are tied (jitter, not distance). Among
/// the tied, the one with the fewest sessions for its weight ((sessions + 1) / weight, a
/// weighted least-connections), so sessions opened at once spread in proportion to the
/// weights; `req.tiebreak` walks those still equal in index order. Allocates nothing.
/// Precondition: t.backends.size() <= max_backends.
std::optional<std::size_t> choose_replica(const Topology& t,
                                          const ReplicaRequirements& req) noexcept;

/// An exponentially weighted moving average of round-trip times: `old` moved `alpha` of the
/// way towards `sample`, rounded to the microsecond. `old` 0 (unknown) takes the sample as is;
/// the result is at least 1 µs, so a measured value never reads as unknown. Negative samples
/// count as 0. Precondition: 0 < alpha <= 1.
std::chrono::microseconds ewma(std::chrono::microseconds old, std::chrono::microseconds sample,
                               double alpha = 0.2) noexcept;

} // namespace sluice::pool
