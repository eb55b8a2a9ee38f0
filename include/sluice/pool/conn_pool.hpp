#pragma once

#include "sluice/pool/backend_conn.hpp"
#include "sluice/protocol/mysql/auth.hpp"

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::pool {

/// Prepared statements open on one backend connection, by what they were prepared from
/// (the caller's key: statement text and the settings that shape its parse), oldest first out
/// past `max` (issue #10: prepared on demand, cached per connection with a bound).
class StatementCache {
public:
    struct Entry {
        std::uint32_t id = 0; ///< the backend's statement id
        std::uint16_t params = 0;
    };
    explicit StatementCache(std::size_t max = 64) : max_(max) {}
    void set_max(std::size_t max) noexcept { max_ = max; }
    /// The statement prepared from `key`, made the newest; null when not here.
    const Entry* find(const std::string& key);
    /// Records a statement; returns the backend id of the one it pushed out (to be closed
    /// there), or 0.
    std::uint32_t add(const std::string& key, Entry e);
    void clear() noexcept {
        order_.clear();
        map_.clear();
    }
    std::size_t size() const noexcept { return map_.size(); }

private:
    std::size_t max_;
    std::list<std::pair<std::string, Entry>> order_; ///< newest first
    std::unordered_map<std::string_view, std::list<std::pair<std::string, Entry>>::iterator> map_;
};

/// What a pooled connection carries from one borrower to the next: what it is, the session
/// state it has, and its prepared statements.
struct Carried {
    bool pooled = false;   ///< counted by a ConnPool (transaction mode)
    std::size_t index = 0; ///< the backend, in config order
    std::string key;       ///< its pool: who logged in, with which options
    /// Changes whenever its server-side prepared statements are gone (a reset): a session's
    /// record of a statement there is valid only at the same generation.
    std::uint32_t generation = 0;
    std::string database;   ///< its current database
    std::string state;      ///< the session settings it has, in order; empty: none
    bool set_up = false;    ///< its first borrower switched on what Sluice needs
    bool prewarmed = false; ///< opened by the pool for min_idle: `database` is its login's
    bool mariadb = true;
    bool tracks_gtid = false;
    bool strip_tracking = false;
    std::chrono::steady_clock::time_point created{};
    std::chrono::steady_clock::time_point idle_since{};
    StatementCache statements;
};

/// How many connections one backend may have, per worker.
struct PoolLimits {
    std::uint32_t max = 32;
    std::uint32_t min_idle = 0;
    std::chrono::milliseconds idle_timeout{60000};
    std::chrono::milliseconds max_lifetime{3600000};
};

/// One worker's pools of logged-in backend connections (issue #10): per backend and per
/// key (the user and the login options that shape responses), at most `max` per backend
/// open at once over all keys, lent to one session at a time. Single-threaded: the worker's.
/// Borrowers that find every connection busy queue (first come, first served) until one is
/// returned or their timeout passes.
class ConnPool {
public:
    explicit ConnPool(std::vector<PoolLimits> limits);
    ConnPool(const ConnPool&) = delete;
    ConnPool& operator=(const ConnPool&) = delete;
    ~ConnPool();

    /// What acquire() gives: an idle connection of the key; or the right to open one (its
    /// place is counted: give it back with forget() if the open fails); or neither (the wait
    /// timed out, or the pool is closing).
    struct Grant {
        std::unique_ptr<BackendConn> conn;
        bool open = false;
        bool timed_out = false;
    };
    asio::awaitable<Grant> acquire(std::size_t index, const std::string& key,
                                   std::chrono::milliseconds timeout);
    /// A borrowed connection comes back, able to serve its next borrower (no transaction,
    /// no session-only state): kept idle or handed to the first waiter.
    void release(std::unique_ptr<BackendConn> conn, std::chrono::steady_clock::time_point now);
    /// A counted connection is gone (closed by its borrower, or an open that failed): its
    /// place goes to the first waiter.
    void forget(std::size_t index) noexcept;
    /// Closes idle connections past their idle timeout (beyond min_idle) or their lifetime.
    void sweep(std::chrono::steady_clock::time_point now);
    /// Closes every idle connection and fails every waiter (shutdown).
    void close_all() noexcept;

    /// For min_idle: how to log in for `key` on backend `index`, from a session that opened a
    /// connection of it (kept only when the backend has a min_idle).
    void remember(std::size_t index, const std::string& key,
                  const protocol::mysql::BackendLogin::Options& login);
    /// A connection the pool wants opened ahead of use (its place is counted: give it back
    /// with release() once open, or forget() if the open fails; opened() either way).
    struct Opening {
        std::size_t index = 0;
        std::string key;
        protocol::mysql::BackendLogin::Options login;
    };
    /// Keys below their min_idle, as many opens as they lack and the maximum allows.
    std::vector<Opening> to_open();
    /// One of to_open()'s opens ended.
    void opened(std::size_t index, const std::string& key) noexcept;

    std::uint32_t open(std::size_t index) const noexcept { return backends_[index].open; }
    std::uint32_t idle(std::size_t index) const noexcept { return backends_[index].idle; }
    std::size_t waiting(std::size_t index) const noexcept { return backends_[index].queue.size(); }
    std::uint64_t timeouts() const noexcept { return timeouts_; }
    std::size_t backends() const noexcept { return backends_.size(); }

    struct Waiter; // a borrower in the queue (conn_pool.cpp)

private:
    struct PerBackend {
        PoolLimits limits;
        std::uint32_t open = 0; ///< idle, lent and being opened
        std::uint32_t idle = 0;
        std::unordered_map<std::string, std::vector<std::unique_ptr<BackendConn>>> idle_by_key;
        std::deque<Waiter*> queue;
        std::unordered_map<std::string, protocol::mysql::BackendLogin::Options> logins;
        std::unordered_map<std::string, std::uint32_t> opening; ///< by key, for min_idle
    };
    /// Closes one idle connection of another key to make room; false when there is none.
    bool evict_other(PerBackend& b, const std::string& key) noexcept;
    /// Gives a freed place to the first waiter: true when one took it.
    bool grant_open(PerBackend& b) noexcept;
    void retire(PerBackend& b, std::unique_ptr<BackendConn> conn) noexcept;

    std::vector<PerBackend> backends_;
    std::uint64_t timeouts_ = 0;
    bool closing_ = false;

public:
    /// Used by Waiter's cleanup.
    void unqueue(std::size_t index, Waiter* w) noexcept;
};

} // namespace sluice::pool
