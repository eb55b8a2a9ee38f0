#pragma once

#include "cache_layer.hpp"
#include "sluice/config/config.hpp"
#include "sluice/pool/backend_conn.hpp"
#include "sluice/pool/breaker.hpp"
#include "sluice/pool/conn_pool.hpp"
#include "sluice/pool/monitor.hpp"
#include "sluice/pool/round_trip.hpp"
#include "sluice/pool/tds_monitor.hpp"
#include "sluice/pool/topology.hpp"
#include "sluice/protocol/mysql/gtid.hpp"
#include "sluice/router/route.hpp"
#include "stats.hpp"
#include "tds_pool.hpp"

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

namespace sluice {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// What every worker reads and nothing changes after start (the atomics aside).
struct ListenerShared {
    const config::Listener* cfg = nullptr;
    std::unique_ptr<asio::ssl::context> tls; ///< null without TLS
    std::atomic<std::uint32_t> connections{0};
};

/// Remembers who logged in with caching_sha2_password, as a MySQL 8 server's cache does:
/// a user's first login over TLS after start takes the full-authentication path.
class AuthCache {
public:
    bool contains(std::string_view user) const;
    void insert(std::string_view user);

private:
    mutable std::mutex mutex_;
    std::set<std::string, std::less<>> users_;
};

/// One configured backend as every worker sees it.
struct BackendShared {
    pool::BackendEndpoint endpoint;
    bool replica = false;
};

/// One configured SQL Server backend ([[tds_backends]]).
struct TdsBackendShared {
    std::string name;
    std::string host;
    std::uint16_t port = 1433;
    asio::ssl::context* tls = nullptr; ///< non-null: encrypt the whole connection
};

class Worker;

/// Every write whose OK this Sluice relayed to a client, as the newest GTID per replication
/// stream (consistency "global": a read must see all of it). Updated once per write (a mutex);
/// read through a version number, so a session copies the text only when it changed.
/// Per backend, the newest version known applied there (a wait that succeeded, the
/// monitor's position): a read whose version a replica is known to have needs no wait, and
/// that check is two atomic loads.
class AckedWrites {
public:
    /// Backend `index` has applied every write up to `version`.
    void confirm(std::size_t index, std::uint64_t version) noexcept {
        if (index >= applied_.size()) return;
        auto& a = applied_[index];
        std::uint64_t seen = a.load(std::memory_order_relaxed);
        while (seen < version &&
               !a.compare_exchange_weak(seen, version, std::memory_order_relaxed)) {
        }
    }
    /// Whether backend `index` is known to have applied every write up to `version`.
    bool known_applied(std::size_t index, std::uint64_t version) const noexcept {
        return version == 0 || (index < applied_.size() &&
                                applied_[index].load(std::memory_order_relaxed) >= version);
    }
    /// Forget what backend `index` was known to have (it went down: a server restored from
    /// an older copy would not have it).
    void forget(std::size_t index) noexcept {
        if (index < applied_.size()) applied_[index].store(0, std::memory_order_relaxed);
    }

    void acknowledge(std::string_view gtid) {
        const std::lock_guard lock(mutex_);
        if (watermark_.advance(gtid)) version_.fetch_add(1, std::memory_order_release);
    }
    std::uint64_t version() const noexcept { return version_.load(std::memory_order_acquire); }
    /// The watermark's text and the version it belongs to.
    std::pair<std::string, std::uint64_t> position() const {
        const std::lock_guard lock(mutex_);
        return {watermark_.text(), version_.load(std::memory_order_relaxed)};
    }

private:
    mutable std::mutex mutex_;
    protocol::mysql::GtidWatermark watermark_;
    std::atomic<std::uint64_t> version_{0};
    std::array<std::atomic<std::uint64_t>, pool::max_backends> applied_{};
};

/// One session's connection to a backend, counted in Shared::sessions_on while it is held:
/// the replica choice spreads new sessions by it.
class SessionHold {
public:
    SessionHold() = default;
    SessionHold(const SessionHold&) = delete;
    SessionHold& operator=(const SessionHold&) = delete;
    ~SessionHold() { release(); }
    void hold(std::atomic<std::uint32_t>& count) noexcept {
        release();
        count.fetch_add(1, std::memory_order_relaxed);
        count_ = &count;
    }
    void release() noexcept {
        if (count_) count_->fetch_sub(1, std::memory_order_relaxed);
        count_ = nullptr;
    }

private:
    std::atomic<std::uint32_t>* count_ = nullptr;
};

/// Sluice's own connection ids (the greeting's: what mysql_thread_id() returns and JDBC's
/// cancel() sends to KILL) and the backend threads behind each session, so that a KILL of a
/// Sluice id reaches the right backend threads instead of whatever thread has that number.
/// Sluice ids start at `first_id`, above the thread ids servers hand out in practice, so a
/// smaller KILL target is a backend thread id (from CONNECTION_ID(), which runs on the
/// primary) and goes to the primary unchanged.
class SessionRegistry {
public:
    static constexpr std::uint32_t first_id = 1u << 30;
    struct Threads {
        Worker* worker = nullptr;
        std::uint32_t primary = 0; ///< thread id on the primary; 0: none
        std::size_t replica_index = 0;
        std::uint32_t replica = 0; ///< thread id on backends[replica_index]; 0: none
        std::string user;          ///< who the session is logged in as
    };
    void set(std::uint32_t id, const Threads& t);
    void erase(std::uint32_t id) noexcept;
    std::optional<Threads> find(std::uint32_t id) const;

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::uint32_t, Threads> map_;
};

struct Shared {
    explicit Shared(const config::Config& c) : cfg(c), user_clients(c.users.size()) {}
    const config::Config& cfg;
    /// Client connections now: over all listeners, and per [[users]] entry (config order).
    std::atomic<std::uint32_t> clients{0};
    std::deque<std::atomic<std::uint32_t>> user_clients;
    std::string server_version;
    std::uint32_t server_capabilities = 0;     ///< offered to clients (before CLIENT_SSL)
    std::uint32_t server_ext_capabilities = 0; ///< MariaDB extended ones offered to clients
    std::vector<std::unique_ptr<ListenerShared>> listeners;
    std::unique_ptr<asio::ssl::context> backend_tls;
    std::vector<std::unique_ptr<BackendShared>> backends; ///< in config order
    std::size_t primary_index = 0;
    std::vector<std::size_t> replica_indexes;
    /// Role, health, lag and latency of every backend, in config order. From the config
    /// until the monitor publishes measured snapshots.
    std::shared_ptr<const pool::Topology> topology;
    /// A connect that failed keeps every session off that backend for
    /// `[routing] replica_retry_ms` (created once the backends are known).
    std::unique_ptr<pool::BreakerBoard> breakers;
    /// The monitor ([monitor] configured): its snapshots reach every worker.
    std::unique_ptr<pool::Monitor> monitor;
    AckedWrites acked;
    /// Sessions holding a replica connection, by backend index, across workers.
    std::array<std::atomic<std::uint32_t>, pool::max_backends> sessions_on{};
    /// Primary connections report each write's GTID: some reads need it (a consistency
    /// other than eventual anywhere in the config) and there are replicas to read from.
    bool track_gtids = false;

    /// The newest snapshot (the monitor's, else the configured one): for the admin server.
    std::shared_ptr<const pool::Topology> current_topology() const {
        if (monitor) {
            if (auto t = monitor->latest()) return t;
        }
        return topology;
    }
    /// SQL Server backends ([[tds_backends]]), their snapshot (from the config until the
    /// TDS monitor publishes) and monitor.
    std::vector<TdsBackendShared> tds_backends;
    std::shared_ptr<const pool::Topology> tds_topology;
    std::unique_ptr<pool::TdsMonitor> tds_monitor;
    /// Consistency `global` for TDS: the newest commit LSN among the writes whose answer
    /// any TDS client of this Sluice got, and when the last such write was acknowledged
    /// (the time bound where the servers report no LSN).
    struct TdsAcked {
        mutable std::mutex mutex;
        std::string lsn;
        std::chrono::steady_clock::time_point at{};
    } tds_acked;
    std::shared_ptr<const pool::Topology> current_tds_topology() const {
        if (tds_monitor) {
            if (auto t = tds_monitor->latest()) return t;
        }
        return tds_topology;
    }
    router::RuleSet rules;
    CacheShared cache;
    std::atomic<std::uint32_t> next_connection_id{SessionRegistry::first_id};
    SessionRegistry sessions;
    AuthCache auth_cache;

    const pool::BackendEndpoint& primary() const noexcept {
        return backends[primary_index]->endpoint;
    }
};

/// What a worker needs from any client session, whatever its protocol (MySQL now, TDS next).
class ClientSession {
public:
    virtual ~ClientSession() = default;
    /// Drain: close now if waiting for the client's next request; else after the current one.
    virtual void close_if_idle() noexcept = 0;
    /// Close both sides now; pending operations are cancelled.
    virtual void force_close() noexcept = 0;
    /// The connection id the client was given.
    virtual std::uint32_t id() const noexcept = 0;
    /// KILL CONNECTION from another session: close now.
    virtual void kill() noexcept = 0;
    /// The worker's sweep, once a second: a session whose request has run for a while
    /// checks whether its client has gone (closed its socket), and if so closes, as a server
    /// would: nothing else reads the client's socket while a backend works.
    virtual void check_client(std::chrono::steady_clock::time_point now) noexcept = 0;
};

/// The config's consistency level as the router names it.
router::Consistency to_router(config::Consistency c) noexcept;

/// The configured query rules, compiled; the RE2 error text when a pattern does not compile.
std::variant<router::RuleSet, std::string> compile_rules(const config::Config& cfg);
/// The same for [[cache_rules]].
std::variant<router::RuleSet, std::string> compile_cache_rules(const config::Config& cfg);

/// Throws std::system_error when something already listens on the listener's address.
void ensure_port_free(const config::Listener& l);

/// One thread, one io_context, its own SO_REUSEPORT acceptors and sessions: shared-nothing.
class Worker {
public:
    Worker(unsigned index, Shared& shared);
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    /// Closes the pool's idle connections while io_ still exists (their sockets belong to it);
    /// sessions io_ destroys after give theirs back to a closed pool, which closes them.
    ~Worker() {
        pool_.close_all();
        tds_pool_.close_all();
    }

    /// Opens this worker's acceptors (throws std::system_error: the daemon cannot start).
    void listen();
    void start_thread();
    void join();
    /// Stop accepting and end idle sessions; busy ones end after their statement.
    void drain();
    /// End every session now.
    void force_close();
    /// KILL CONNECTION: ends the session with this id if it is one of this worker's (any
    /// thread may call it; the work runs on the worker's thread).
    void kill_session(std::uint32_t id);

    asio::io_context& io() noexcept { return io_; }
    Shared& shared() noexcept { return shared_; }
    WorkerStats& stats() noexcept { return stats_; }
    WorkerCache& cache() noexcept { return cache_; }
    /// Backend connection pools of this worker (transaction mode).
    pool::ConnPool& pool() noexcept { return pool_; }
    /// Pooled SQL Server connections of this worker.
    tds::TdsPool& tds_pool() noexcept { return tds_pool_; }
    /// A number no backend connection of this worker had: its prepared statements' identity.
    std::uint32_t next_generation() noexcept { return ++generation_; }
    unsigned index() const noexcept { return index_; }
    bool draining() const noexcept { return draining_; }
    /// The topology this worker routes by (its thread only): the monitor posts each new
    /// snapshot; a statement keeps the one it started with.
    const pool::Topology& topology() const noexcept { return *topology_; }
    void set_topology(std::shared_ptr<const pool::Topology> t);
    /// The same for the SQL Server backends. Hold the pointer across a co_await: a new
    /// snapshot replaces the old one.
    std::shared_ptr<const pool::Topology> tds_topology_ptr() const noexcept {
        return tds_topology_;
    }
    const pool::Topology& tds_topology() const noexcept { return *tds_topology_; }
    void set_tds_topology(std::shared_ptr<const pool::Topology> t) { tds_topology_ = std::move(t); }
    /// The snapshot with what this worker knows now laid over it, for choosing a replica:
    /// its own outstanding statements per backend, the sessions every worker holds there,
    /// and the round trips its own queries measured while recent (RoundTrip).
    const pool::Topology& routing_topology();
    /// Read-your-writes waits under `global`, shared within this worker: while one session's
    /// wait for watermark version v is in flight on a replica, another session's read that
    /// needs no more than v parks until that wait answers, then reads without a wait of its
    /// own (one MASTER_GTID_WAIT on the replica and one wake-up in Sluice fewer per read).
    /// The highest version a wait in flight on backend `index` waits for; 0: none.
    std::uint64_t wait_in_flight(std::size_t index) const noexcept {
        return index < gates_.size() ? gates_[index].in_flight : 0;
    }
    /// A session sent a wait for `version` on backend `index`.
    void wait_started(std::size_t index, std::uint64_t version) noexcept;
    /// That wait answered (or failed): parked sessions wake up and look again.
    void wait_finished(std::size_t index, std::uint64_t version) noexcept;
    /// `timer` (a parked session's) is cancelled when a wait on backend `index` finishes.
    void park(std::size_t index, asio::steady_timer* timer);
    void unpark(std::size_t index, asio::steady_timer* timer) noexcept;
    /// A read's round trip on backend `index` (request written to the end of its answer).
    void observe_round_trip(std::size_t index, std::chrono::microseconds rt,
                            std::chrono::steady_clock::time_point now) noexcept {
        if (index < round_trips_.size()) round_trips_[index].query(rt, now);
    }

    void add_session(ClientSession* s) { sessions_.insert(s); }
    void remove_session(ClientSession* s) {
        sessions_.erase(s);
        // The sweep's timer is the last work of a drained worker: its io_context ends now.
        if (draining_ && sessions_.empty()) {
            sweep_timer_.cancel();
            cache_.stop(); // its Redis connections and sync loop end too
        }
    }

private:
    asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, ListenerShared& listener);
    /// Once a second: ClientSession::check_client on every session.
    asio::awaitable<void> sweep();

    unsigned index_;
    Shared& shared_;
    // Before io_: sessions (coroutine frames io_ destroys last) give connections back to it.
    pool::ConnPool pool_;
    tds::TdsPool tds_pool_;
    std::uint32_t generation_ = 0;
    asio::io_context io_{1};
    std::vector<std::pair<tcp::acceptor, ListenerShared*>> acceptors_;
    std::unordered_set<ClientSession*> sessions_;
    asio::steady_timer sweep_timer_{io_};
    WorkerStats stats_;
    WorkerCache cache_;
    std::shared_ptr<const pool::Topology> topology_;
    std::shared_ptr<const pool::Topology> tds_topology_;
    pool::Topology routing_view_;    ///< topology_ copied, with the overlays of routing_topology()
    bool routing_view_stale_ = true; ///< a new snapshot came since routing_view_ was copied
    std::array<pool::RoundTrip, pool::max_backends> round_trips_{};
    struct WaitGate {
        std::uint64_t in_flight = 0;
        std::vector<asio::steady_timer*> parked;
    };
    std::array<WaitGate, pool::max_backends> gates_{};
    bool draining_ = false;
    std::thread thread_;
};

/// One session's read-your-writes wait in its worker's gate (Worker::wait_started): finished
/// once, by finish() as soon as the wait answered, else when it goes out of scope (a lost
/// connection, a session closed mid-wait). Version 0 (not `global`): nothing is shared.
class SharedWait {
public:
    SharedWait(Worker& w, std::size_t index, std::uint64_t version) noexcept
        : worker_(w), index_(index), version_(version) {
        if (version_ != 0) worker_.wait_started(index_, version_);
    }
    SharedWait(const SharedWait&) = delete;
    SharedWait& operator=(const SharedWait&) = delete;
    ~SharedWait() { finish(); }
    void finish() noexcept {
        if (version_ != 0) worker_.wait_finished(index_, version_);
        version_ = 0;
    }

private:
    Worker& worker_;
    std::size_t index_;
    std::uint64_t version_;
};

} // namespace sluice
