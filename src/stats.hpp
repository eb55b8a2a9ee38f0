#pragma once
// Per-worker counters. Written only by their worker's thread (a relaxed load + store, no
// locked instruction on the query path), read by the admin thread at scrape time.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace sluice {

class Counter {
public:
    void add(std::uint64_t n = 1) noexcept {
        v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void sub(std::uint64_t n = 1) noexcept {
        v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
    }
    std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }
    /// For gauges mirrored from a structure only its worker may read (the L1's size).
    void set(std::uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> v_{0};
};

/// Query latency buckets, in seconds (Prometheus `le` bounds).
inline constexpr std::array<double, 14> latency_bounds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

/// Failover hold buckets, in seconds.
inline constexpr std::array<double, 9> hold_bounds = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

/// Why a client session ended early; a label of sluice_client_errors_total.
enum class ClientError : std::uint8_t {
    malformed_packet,
    oversized_packet,
    bad_sequence,
    unknown_command,
    auth_failed,
    too_many_connections,
    tls_required,
    handshake_timeout,
    backend_unavailable,
    backend_lost,
    count_
};
const char* client_error_name(ClientError e) noexcept;

/// How a read-your-writes wait on a replica ended; a label of sluice_causal_waits_total.
/// `shared`: a read that needed no wait of its own, another session's answered for it.
enum class CausalWait : std::uint8_t { ok, timeout, error, shared, count_ };

/// The cache layers and what a lookup found; labels of sluice_cache_requests_total.
enum class CacheLayer : std::uint8_t { l1, l2, count_ };
enum class CacheResult : std::uint8_t { hit, miss, bypass, count_ };
/// What bumped table versions; a label of sluice_cache_invalidations_total.
enum class InvalidationSource : std::uint8_t { write, binlog, peer, count_ };

inline constexpr std::size_t statement_classes = 16; // router::StatementClass values
inline constexpr std::size_t route_reasons = 16;     // router::RouteReason values

/// What a TDS session's own ERROR token (its number) counts as in sluice_client_errors_total:
/// 4014 and 8009 (bad bytes, bad RPC), 18456 (login refused, encryption required included),
/// 17809 (a connection limit), 983 and 10054 (no backend could take the request), 8179 (an
/// unknown prepared or cursor handle); anything else is a backend connection lost.
constexpr ClientError tds_client_error(int number) noexcept {
    switch (number) {
    case 4014:
    case 8009:
        return ClientError::malformed_packet;
    case 18456:
        return ClientError::auth_failed;
    case 17809:
        return ClientError::too_many_connections;
    case 983:
    case 10054:
        return ClientError::backend_unavailable;
    case 8179:
        return ClientError::unknown_command;
    default:
        return ClientError::backend_lost;
    }
}

/// Decrements `c` when it goes out of scope (a request in flight, an open connection).
class CounterHold {
public:
    explicit CounterHold(Counter& c) noexcept : c_(&c) { c_->add(); }
    CounterHold(const CounterHold&) = delete;
    CounterHold& operator=(const CounterHold&) = delete;
    ~CounterHold() { c_->sub(); }

private:
    Counter* c_;
};

/// The SQL Server side's counters (TDS listeners, [[tds_backends]] by config index): the same
/// metric families as MySQL's, exported with protocol="tds".
struct TdsStats {
    Counter connections_total, connections_active;
    std::array<Counter, static_cast<std::size_t>(ClientError::count_)> client_errors{};
    /// Requests by the backend that ran them and whether it was the primary then.
    std::array<Counter, 64> to_primary{}, to_secondary{};
    std::array<Counter, 64> reads{};       ///< of them, requests a secondary could have served
    std::array<Counter, 64> outstanding{}; ///< sent and not yet answered
    std::array<Counter, 64> open{};        ///< backend connections open (lent, held or idle)
    Counter backend_connects_total, backend_connect_errors_total;
    void count_error(ClientError e) noexcept { client_errors[static_cast<std::size_t>(e)].add(); }
    /// One request sent to backend `index` (a secondary unless it is the primary now).
    void count_request(std::size_t index, bool primary, bool read) noexcept {
        if (index >= to_primary.size()) return;
        (primary ? to_primary : to_secondary)[index].add();
        if (read) reads[index].add();
    }
};

struct WorkerStats {
    Counter connections_total;
    Counter connections_active;
    Counter tls_connections_total;
    std::array<Counter, 33> commands{}; // by command byte; [32] = unknown
    Counter bytes_from_clients, bytes_to_clients;
    Counter backend_connects_total, backend_connect_errors_total;
    std::array<Counter, static_cast<std::size_t>(ClientError::count_)> client_errors{};
    std::array<Counter, latency_bounds.size() + 1> latency_buckets{}; // last = +Inf
    Counter latency_sum_ns, latency_count;
    // Read/write splitting: statements (COM_QUERY and COM_STMT_EXECUTE) by class, by the
    // backend that ran them, and routing decisions by reason.
    std::array<Counter, statement_classes> statements{};
    std::array<Counter, 64> backend_statements{};  // by index in Shared::backends
    std::array<Counter, 64> backend_reads{};       // statements of class read, by backend
    std::array<Counter, 64> backend_outstanding{}; // sent and not yet answered, by backend
    std::array<Counter, route_reasons> routes{};
    std::array<Counter, static_cast<std::size_t>(CausalWait::count_)> causal_waits{};
    // Time a login or a statement waited for a primary (failover hold).
    std::array<Counter, hold_bounds.size() + 1> hold_buckets{}; // last = +Inf
    Counter hold_sum_ns;
    // Time read-your-writes waits took on replicas (sending the wait to its answer).
    std::array<Counter, latency_bounds.size() + 1> wait_buckets{}; // last = +Inf
    Counter wait_sum_ns;
    // The result cache (issue #9).
    std::array<Counter, 6> cache_requests{}; // layer * 3 + result
    std::array<Counter, 4> cache_bypass{};   // by CacheBypass (cache_layer.hpp)
    std::array<Counter, static_cast<std::size_t>(InvalidationSource::count_)> cache_invalidations{};
    Counter cache_fills;         // results stored after a miss
    Counter cache_uncacheable;   // missed reads whose result could not be stored
    Counter cache_stale_refused; // results not stored: the replica may lack the last write
    Counter l1_bytes, l1_entries, l1_evictions; // gauges of this worker's L1
    Counter redis_errors; // Redis calls that failed (unreachable, late, refused, garbage)
    // Redis round trips (a lookup, a fill, a write's bump), sent to answered.
    std::array<Counter, latency_bounds.size() + 1> redis_buckets{}; // last = +Inf
    Counter redis_sum_ns;
    // Backend connection pools (issue #10).
    Counter pool_timeouts_total; // statements that waited queue_timeout_ms for a connection
    Counter pool_resets_total;   // borrowed connections reset to drop another session's settings
    Counter pool_replaced_total; // idle connections found closed by their server when borrowed
    // Gauges, copied from the worker's ConnPool by its sweep (once a second), by backend.
    std::array<Counter, 64> pool_open{}, pool_idle{}, pool_waiting{};
    TdsStats tds; // connections_total and the rest above are the MySQL side's
    void observe_redis(std::chrono::nanoseconds d) noexcept {
        observe(latency_bounds, redis_buckets, redis_sum_ns, d);
    }

    void count_cache(CacheLayer l, CacheResult r) noexcept {
        cache_requests[static_cast<std::size_t>(l) * 3 + static_cast<std::size_t>(r)].add();
    }

    void observe_hold(std::chrono::nanoseconds d) noexcept {
        observe(hold_bounds, hold_buckets, hold_sum_ns, d);
    }
    void observe_wait(std::chrono::nanoseconds d) noexcept {
        observe(latency_bounds, wait_buckets, wait_sum_ns, d);
    }
    void count_command(std::uint8_t cmd) noexcept { commands[cmd < 32 ? cmd : 32].add(); }
    void count_error(ClientError e) noexcept { client_errors[static_cast<std::size_t>(e)].add(); }
    void observe_latency(std::chrono::nanoseconds d) noexcept {
        observe(latency_bounds, latency_buckets, latency_sum_ns, d);
        latency_count.add();
    }

private:
    /// One sample into a histogram: the first bucket whose bound (seconds) it does not exceed,
    /// else the last (+Inf).
    template <std::size_t N>
    static void observe(const std::array<double, N>& bounds, std::array<Counter, N + 1>& buckets,
                        Counter& sum_ns, std::chrono::nanoseconds d) noexcept {
        const double s = std::chrono::duration<double>(d).count();
        std::size_t i = 0;
        while (i < N && s > bounds[i])
            ++i;
        buckets[i].add();
        sum_ns.add(static_cast<std::uint64_t>(d.count()));
    }
};

} // namespace sluice
