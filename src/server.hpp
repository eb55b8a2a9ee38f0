#pragma once

#include "sluice/config/config.hpp"
#include "sluice/pool/backend_conn.hpp"
#include "sluice/router/route.hpp"
#include "stats.hpp"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
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
    /// Sessions do not choose this replica before this time (steady clock, ns since its
    /// epoch): it failed a connect, lost a connection or missed a read-your-writes wait.
    std::atomic<std::int64_t> skip_until{0};

    bool skipped(std::chrono::steady_clock::time_point now) const noexcept {
        return now.time_since_epoch().count() < skip_until.load(std::memory_order_relaxed);
    }
    void skip_for(std::chrono::steady_clock::time_point now, std::chrono::milliseconds d) noexcept {
        skip_until.store(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             now.time_since_epoch() + d)
                             .count(),
                         std::memory_order_relaxed);
    }
};

struct Shared {
    explicit Shared(const config::Config& c) : cfg(c) {}
    const config::Config& cfg;
    std::string server_version;
    std::uint32_t server_capabilities = 0; ///< offered to clients (before CLIENT_SSL)
    std::vector<std::unique_ptr<ListenerShared>> listeners;
    std::unique_ptr<asio::ssl::context> backend_tls;
    std::vector<std::unique_ptr<BackendShared>> backends; ///< in config order
    std::size_t primary_index = 0;
    std::vector<std::size_t> replica_indexes;
    std::atomic<std::uint32_t> next_replica{0}; ///< round-robin position over the replicas
    router::RuleSet rules;
    std::atomic<std::uint32_t> next_connection_id{1};
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
};

/// The configured query rules, compiled; the RE2 error text when a pattern does not compile.
std::variant<router::RuleSet, std::string> compile_rules(const config::Config& cfg);

/// Throws std::system_error when something already listens on the listener's address.
void ensure_port_free(const config::Listener& l);

/// One thread, one io_context, its own SO_REUSEPORT acceptors and sessions: shared-nothing.
class Worker {
public:
    Worker(unsigned index, Shared& shared);
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    /// Opens this worker's acceptors (throws std::system_error: the daemon cannot start).
    void listen();
    void start_thread();
    void join();
    /// Stop accepting and end idle sessions; busy ones end after their statement.
    void drain();
    /// End every session now.
    void force_close();

    asio::io_context& io() noexcept { return io_; }
    Shared& shared() noexcept { return shared_; }
    WorkerStats& stats() noexcept { return stats_; }
    unsigned index() const noexcept { return index_; }
    bool draining() const noexcept { return draining_; }

    void add_session(ClientSession* s) { sessions_.insert(s); }
    void remove_session(ClientSession* s) { sessions_.erase(s); }

private:
    asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, ListenerShared& listener);

    unsigned index_;
    Shared& shared_;
    asio::io_context io_{1};
    std::vector<std::pair<tcp::acceptor, ListenerShared*>> acceptors_;
    std::unordered_set<ClientSession*> sessions_;
    WorkerStats stats_;
    bool draining_ = false;
    std::thread thread_;
};

} // namespace sluice
