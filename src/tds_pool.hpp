#pragma once
// Pooled SQL Server connections of one worker (issue #11, as #10 for MySQL): idle backend
// connections by backend and login, lent to TDS sessions between transactions. A borrowed
// connection is reset (RESETCONNECTION) and brought to the borrower's settings before use,
// so nothing of one session reaches another.

#include "stats.hpp"
#include "tds_backend.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace sluice::tds {

/// What a pooled connection was logged in with: only the same login may borrow it.
struct PoolKey {
    std::size_t backend = 0;
    std::string user;
    std::string database; ///< the login's initial database
    std::uint32_t tds_version = 0;
    std::uint32_t packet_size = 0;
    bool read_only_intent = false;
    auto tie() const {
        return std::tie(backend, user, database, tds_version, packet_size, read_only_intent);
    }
    bool operator<(const PoolKey& o) const { return tie() < o.tie(); }
};

class TdsPool {
public:
    using clock = std::chrono::steady_clock;
    /// `max_per_backend`: open connections (lent and idle) per backend; `idle_timeout`: an
    /// idle connection older than this is closed by sweep().
    TdsPool(std::size_t max_per_backend, std::chrono::milliseconds idle_timeout)
        : max_(max_per_backend), idle_timeout_(idle_timeout) {}

    /// An idle connection for `key`, or null: the one `owner` returned last if there is one
    /// (it holds that session's state already: no reset), else the most recently returned,
    /// marked to be reset before use.
    std::unique_ptr<TdsBackend> take(const PoolKey& key, std::uint32_t owner) {
        auto it = idle_.find(key);
        if (it == idle_.end() || it->second.empty()) return nullptr;
        auto& list = it->second;
        auto pick = list.end() - 1;
        for (auto e = list.rbegin(); e != list.rend(); ++e) {
            if (e->conn->owner == owner) {
                pick = std::prev(e.base());
                break;
            }
        }
        auto conn = std::move(pick->conn);
        list.erase(pick);
        if (conn->owner != owner) {
            conn->reset_pending = true;
            resets_.add();
        }
        conn->owner = owner;
        count_idle(key.backend, -1);
        ++lent_[key.backend];
        return conn;
    }
    /// Whether a new connection to `backend` fits under the limit (counted as lent if so).
    bool reserve(std::size_t backend) {
        if (open(backend) >= max_) {
            // Make room from another login's idle connections first.
            for (auto& [k, list] : idle_) {
                if (k.backend != backend || list.empty()) continue;
                list.front().conn->stream.close();
                list.erase(list.begin());
                count_idle(backend, -1);
                break;
            }
            if (open(backend) >= max_) return false;
        }
        ++lent_[backend];
        return true;
    }
    /// A lent connection comes back (null: it was closed; the slot is freed).
    void give_back(const PoolKey& key, std::unique_ptr<TdsBackend> conn) {
        if (lent_[key.backend] > 0) --lent_[key.backend];
        if (!conn || closed_) return;
        idle_[key].push_back({std::move(conn), clock::now()});
        count_idle(key.backend, 1);
    }
    /// A lent connection is gone for good (lost, or kept by a session that ends).
    void forget(std::size_t backend) {
        if (lent_[backend] > 0) --lent_[backend];
    }
    /// Closes idle connections past the idle timeout.
    void sweep(clock::time_point now) {
        for (auto& [k, list] : idle_) {
            while (!list.empty() && now - list.front().since > idle_timeout_) {
                list.front().conn->stream.close();
                list.erase(list.begin());
                count_idle(k.backend, -1);
            }
        }
    }
    void close_all() {
        closed_ = true;
        for (auto& [k, list] : idle_)
            for (auto& e : list)
                e.conn->stream.close();
        idle_.clear();
        idle_count_.clear();
        for (auto& g : idle_now_)
            g.set(0);
    }
    std::size_t open(std::size_t backend) const { return lent(backend) + idle(backend); }
    std::size_t lent(std::size_t backend) const {
        auto it = lent_.find(backend);
        return it == lent_.end() ? 0 : it->second;
    }
    std::size_t idle(std::size_t backend) const {
        auto it = idle_count_.find(backend);
        return it == idle_count_.end() ? 0 : it->second;
    }
    /// For the admin thread (the rest of the pool is its worker's only): idle connections
    /// to `backend`, and borrowed connections marked for a reset (another session's).
    std::uint64_t idle_now(std::size_t backend) const noexcept {
        return backend < idle_now_.size() ? idle_now_[backend].get() : 0;
    }
    std::uint64_t resets() const noexcept { return resets_.get(); }

private:
    void count_idle(std::size_t backend, int delta) {
        auto& n = idle_count_[backend];
        n = delta < 0 ? n - 1 : n + 1;
        if (backend < idle_now_.size()) idle_now_[backend].set(n);
    }

    struct Idle {
        std::unique_ptr<TdsBackend> conn;
        clock::time_point since;
    };
    std::size_t max_;
    std::chrono::milliseconds idle_timeout_;
    std::map<PoolKey, std::vector<Idle>> idle_;
    std::map<std::size_t, std::size_t> lent_, idle_count_;
    std::array<Counter, 64> idle_now_{}; ///< idle_count_ mirrored
    Counter resets_;
    bool closed_ = false;
};

} // namespace sluice::tds
