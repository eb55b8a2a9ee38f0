#pragma once
// The worker's client for a Redis Cluster L2 (issue #9; e.g. AWS ElastiCache in cluster mode):
// one RedisConn per node, a map from hash slot to master from CLUSTER SLOTS, and the
// redirections of the Redis Cluster specification (MOVED, ASK). Single-threaded like
// RedisConn: the object and every call on it belong to the thread running its executor.

#include "sluice/cache/redis_conn.hpp"
#include "sluice/cache/resp.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::cache {

/// The number of hash slots of a Redis Cluster.
inline constexpr std::size_t cluster_slots = 16384;

/// Why a RedisCluster call failed, beside the errors of the node's RedisConn.
enum class cluster_errc {
    no_slot_map = 1, ///< no node answered CLUSTER SLOTS (yet): the slot map is unknown
    slot_unassigned, ///< no master serves this slot in the current map
    bad_slot_map,    ///< a CLUSTER SLOTS reply that does not follow the specification
};

/// The category of cluster_errc; name() is "sluice.redis_cluster".
const boost::system::error_category& cluster_category() noexcept;
inline boost::system::error_code make_error_code(cluster_errc e) noexcept {
    return {static_cast<int>(e), cluster_category()};
}

/// One entry of CLUSTER SLOTS: slots first..last (inclusive) are served by the master at
/// host:port.
struct ClusterSlotRange {
    std::uint16_t first = 0;
    std::uint16_t last = 0;
    std::string host;
    std::uint16_t port = 0;
    bool operator==(const ClusterSlotRange&) const = default;
};

/// Reads a CLUSTER SLOTS reply (Redis Cluster specification; the command's reference):
/// an array of [first, last, [host, port, node id, ...], replicas...]. Only the master (the
/// first node) is kept. A master whose host is empty (Redis 7: its endpoint is the address the
/// reply came from) gets `queried_host`; a range whose host is "?" (endpoint unknown) is
/// left out. cluster_errc::bad_slot_map for anything else the specification does not allow
/// (a slot not below 16384, first > last, a port not from 1 to 65535, missing fields).
result<std::vector<ClusterSlotRange>> parse_cluster_slots(const Reply& reply,
                                                          std::string_view queried_host);

/// Tuning of a RedisCluster.
struct ClusterOptions {
    /// The shortest time between two CLUSTER SLOTS fetches: a burst of MOVED replies or of
    /// failed calls (a node down) costs one fetch, not one per call. A MOVED updates its own
    /// slot at once, so the full map can wait; while a node is down, each worker asks once
    /// per interval until a failover has given its slots a new master.
    std::chrono::milliseconds min_refresh_interval{1000};
    /// Bounds on what one reply may ask a node's reader to hold.
    ReaderLimits limits{};
};

/// What happened on one RedisCluster, for metrics (counters only grow).
struct ClusterStats {
    std::uint64_t calls = 0;             ///< run() calls
    std::uint64_t failed_calls = 0;      ///< run() calls that ended in an error
    std::uint64_t moved = 0;             ///< MOVED redirections followed
    std::uint64_t ask = 0;               ///< ASK redirections followed
    std::uint64_t redirect_failures = 0; ///< of the followed ones, those whose node then failed
    std::uint64_t refreshes = 0;         ///< slot maps fetched
    std::uint64_t refresh_failures = 0;  ///< fetches for which no node answered
};

/// A per-worker client of one Redis Cluster.
///
/// The slot map is fetched (CLUSTER SLOTS) on the first call, from the seeds and then from
/// any node known, and fetched again, no more often than min_refresh_interval, after a MOVED
/// and after a node failed a call. Each master gets one RedisConn, made when the map first
/// names it and kept for the object's life; a call runs on the connection of the slot's
/// master, pipelined with every other call to that node.
///
/// Redirections (specification, "Redirection and resharding") are followed once, per
/// command: the commands of a call whose replies are MOVED go to the node named (and the
/// slot's entry in the map points there at once); those answered ASK go to the node named,
/// each after an ASKING, leaving the map as it is. The other commands' replies are kept, so
/// no command runs twice. A redirection that the retry meets again is handed back as the
/// error reply it is.
///
/// Every node gets the first seed's settings (TLS, AUTH, timeouts, backoff) with the host
/// and port from CLUSTER SLOTS; the TLS name (SNI, verification) is the node's host, not the
/// seed's tls_server_name.
class RedisCluster {
public:
    /// Makes nothing yet. `seeds` must not be empty: the nodes (or the configuration endpoint)
    /// asked for the first slot map. `tls` must outlive this object and is used when the seed
    /// says tls.
    RedisCluster(asio::any_io_executor executor, std::vector<RedisEndpoint> seeds,
                 asio::ssl::context* tls, ClusterOptions options = {});
    /// close().
    ~RedisCluster();
    RedisCluster(const RedisCluster&) = delete;
    RedisCluster& operator=(const RedisCluster&) = delete;

    /// Runs `commands` (made by write_command; one or more, all for keys of `slot`, which the
    /// caller guarantees with a hash tag) on the master owning `slot` and returns their
    /// `replies` replies in order. Unlike RedisConn::run, `commands` must stay valid until
    /// the call returns (a redirection sends them again), as it does in
    /// `co_await cluster.run(...)`. Errors: cluster_errc (no slot map yet, an unassigned
    /// slot), the node's RedisConn errors (a node down fails the call at once: the daemon
    /// bypasses the cache), redis_errc::closed after close(), asio::error::invalid_argument
    /// for a slot not below 16384, no commands or no replies. Never throws for these.
    asio::awaitable<result<std::vector<Reply>>> run(std::uint16_t slot, Bytes commands,
                                                    std::size_t replies);

    /// Closes every node's connection: pending calls fail with redis_errc::closed, and so does
    /// every later one.
    void close() noexcept;

    const ClusterStats& stats() const noexcept;
    /// The endpoint of the master serving `slot` in the current map; null before the first
    /// map or for an unassigned slot. Valid as long as this object.
    const RedisEndpoint* owner(std::uint16_t slot) const noexcept;
    /// The connection to the node at host:port, if the map ever named it (or it is a seed);
    /// for its health and stats.
    const RedisConn* node(std::string_view host, std::uint16_t port) const noexcept;

private:
    struct Impl;
    struct Node;
    // Shared with running calls and the refresher, which may outlive this object.
    std::shared_ptr<Impl> impl_;
};

} // namespace sluice::cache

template <>
struct boost::system::is_error_code_enum<sluice::cache::cluster_errc> : std::true_type {};
