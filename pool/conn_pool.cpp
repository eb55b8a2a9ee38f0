// One worker's backend connection pools (issue #10): idle connections per backend and key,
// a per-backend maximum over all keys, and a first-come first-served queue with a timeout
// for borrowers that find every connection busy.

#include "sluice/pool/conn_pool.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::pool {

// ---- StatementCache ----

const StatementCache::Entry* StatementCache::find(const std::string& key) {
    const auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->second;
}

std::uint32_t StatementCache::add(const std::string& key, Entry e) {
    if (const auto it = map_.find(key); it != map_.end()) {
        // Prepared again (a borrower did not know it was here): the newer id stays, the
        // older one is closed.
        const std::uint32_t old = it->second->second.id;
        it->second->second = e;
        order_.splice(order_.begin(), order_, it->second);
        return old == e.id ? 0 : old;
    }
    order_.emplace_front(key, e);
    map_.emplace(order_.front().first, order_.begin());
    if (map_.size() <= max_) return 0;
    const std::uint32_t evicted = order_.back().second.id;
    map_.erase(order_.back().first);
    order_.pop_back();
    return evicted;
}

// ---- ConnPool ----

/// A borrower waiting for a connection: on the coroutine's frame, in the backend's queue
/// until served or timed out.
struct ConnPool::Waiter {
    std::string_view key;
    asio::steady_timer* timer = nullptr;
    std::unique_ptr<BackendConn> handed; ///< a connection of its key, given by release()
    bool open = false;                   ///< or the right to open one
    bool served = false;
};

ConnPool::ConnPool(std::vector<PoolLimits> limits) : backends_(limits.size()) {
    for (std::size_t i = 0; i < limits.size(); ++i)
        backends_[i].limits = limits[i];
}

ConnPool::~ConnPool() { close_all(); }

void ConnPool::retire(PerBackend& b, std::unique_ptr<BackendConn> conn) noexcept {
    conn->close();
    conn.reset();
    --b.open;
    if (!grant_open(b)) return;
    ++b.open; // the waiter that took the place opens a connection in it
}

bool ConnPool::grant_open(PerBackend& b) noexcept {
    if (b.queue.empty()) return false;
    Waiter* w = b.queue.front();
    b.queue.pop_front();
    w->open = true;
    w->served = true;
    w->timer->cancel();
    return true;
}

bool ConnPool::evict_other(PerBackend& b, const std::string& key) noexcept {
    // The key with the most idle connections gives its oldest one.
    std::vector<std::unique_ptr<BackendConn>>* victim = nullptr;
    for (auto& [k, list] : b.idle_by_key) {
        if (k == key || list.empty()) continue;
        if (!victim || list.size() > victim->size()) victim = &list;
    }
    if (!victim) return false;
    victim->front()->close();
    victim->erase(victim->begin());
    --b.idle;
    return true; // its place is the caller's now: `open` stays as it is
}

asio::awaitable<ConnPool::Grant> ConnPool::acquire(std::size_t index, const std::string& key,
                                                   std::chrono::milliseconds timeout) {
    PerBackend& b = backends_[index];
    Grant g;
    if (closing_) co_return g;
    if (const auto it = b.idle_by_key.find(key); it != b.idle_by_key.end() && !it->second.empty()) {
        // The most recently returned one: warm, and the others may time out.
        g.conn = std::move(it->second.back());
        it->second.pop_back();
        --b.idle;
        co_return g;
    }
    if (b.open < b.limits.max) {
        ++b.open;
        g.open = true;
        co_return g;
    }
    if (evict_other(b, key)) {
        g.open = true;
        co_return g;
    }
    asio::steady_timer timer{co_await asio::this_coro::executor};
    timer.expires_after(timeout);
    Waiter w;
    w.key = key;
    w.timer = &timer;
    b.queue.push_back(&w);
    // However the wait ends (served, timed out, or the session's coroutine destroyed), the
    // waiter leaves the queue, and what it was given and did not take goes back.
    struct Cleanup {
        ConnPool& pool;
        std::size_t index;
        Waiter& w;
        bool taken = false;
        ~Cleanup() {
            if (taken) return;
            if (!w.served) {
                pool.unqueue(index, &w);
            } else if (w.handed) {
                pool.release(std::move(w.handed), std::chrono::steady_clock::now());
            } else if (w.open) {
                pool.forget(index);
            }
        }
    } cleanup{*this, index, w};
    const auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)ec; // cancelled: served (or closing); expired: the timeout
    if (w.served) {
        cleanup.taken = true;
        g.conn = std::move(w.handed);
        g.open = w.open;
        co_return g;
    }
    if (!closing_) {
        ++timeouts_;
        g.timed_out = true;
    }
    co_return g;
}

void ConnPool::unqueue(std::size_t index, Waiter* w) noexcept {
    auto& q = backends_[index].queue;
    q.erase(std::remove(q.begin(), q.end(), w), q.end());
}

void ConnPool::release(std::unique_ptr<BackendConn> conn,
                       std::chrono::steady_clock::time_point now) {
    Carried& c = conn->pool_state();
    PerBackend& b = backends_[c.index];
    if (closing_ || now - c.created >= b.limits.max_lifetime) {
        retire(b, std::move(conn));
        return;
    }
    // The first waiter of the same key takes it as it is; one of another key gets its place
    // (this connection is closed to make it).
    for (auto it = b.queue.begin(); it != b.queue.end(); ++it) {
        Waiter* w = *it;
        if (w->key != c.key) continue;
        b.queue.erase(it);
        w->handed = std::move(conn);
        w->served = true;
        w->timer->cancel();
        return;
    }
    if (!b.queue.empty()) {
        retire(b, std::move(conn));
        return;
    }
    c.idle_since = now;
    b.idle_by_key[c.key].push_back(std::move(conn));
    ++b.idle;
}

void ConnPool::forget(std::size_t index) noexcept {
    PerBackend& b = backends_[index];
    if (b.open > 0) --b.open;
    if (grant_open(b)) ++b.open;
}

void ConnPool::sweep(std::chrono::steady_clock::time_point now) {
    for (PerBackend& b : backends_) {
        for (auto& [key, list] : b.idle_by_key) {
            // Oldest returned first; the newest min_idle stay past their idle timeout.
            std::size_t alive = list.size();
            for (auto& conn : list) {
                const Carried& c = *conn->carried;
                const bool expired = now - c.created >= b.limits.max_lifetime;
                const bool idle_too_long =
                    now - c.idle_since >= b.limits.idle_timeout && alive > b.limits.min_idle;
                if (expired || idle_too_long || conn->transport().peer_gone()) {
                    conn->close();
                    conn.reset();
                    --alive;
                    --b.idle;
                    --b.open;
                }
            }
            std::erase_if(list, [](const auto& p) { return !p; });
        }
        std::erase_if(b.idle_by_key, [](const auto& kv) { return kv.second.empty(); });
        while (b.open < b.limits.max && grant_open(b))
            ++b.open;
    }
}

void ConnPool::remember(std::size_t index, const std::string& key,
                        const protocol::mysql::BackendLogin::Options& login) {
    PerBackend& b = backends_[index];
    if (b.limits.min_idle == 0 || b.logins.contains(key)) return;
    b.logins.emplace(key, login);
}

std::vector<ConnPool::Opening> ConnPool::to_open() {
    std::vector<Opening> out;
    if (closing_) return out;
    for (std::size_t i = 0; i < backends_.size(); ++i) {
        PerBackend& b = backends_[i];
        for (const auto& [key, login] : b.logins) {
            const auto it = b.idle_by_key.find(key);
            std::uint32_t have =
                it == b.idle_by_key.end() ? 0 : static_cast<std::uint32_t>(it->second.size());
            std::uint32_t& opening = b.opening[key];
            have += opening;
            // Waiters first: a free place goes to them, not to an idle connection.
            while (have < b.limits.min_idle && b.open < b.limits.max && b.queue.empty()) {
                ++b.open;
                ++opening;
                ++have;
                out.push_back({i, key, login});
            }
        }
    }
    return out;
}

void ConnPool::opened(std::size_t index, const std::string& key) noexcept {
    auto& opening = backends_[index].opening;
    if (const auto it = opening.find(key); it != opening.end() && it->second > 0) --it->second;
}

void ConnPool::close_all() noexcept {
    closing_ = true;
    for (PerBackend& b : backends_) {
        for (auto& [key, list] : b.idle_by_key) {
            for (auto& conn : list)
                conn->close();
            b.open -= static_cast<std::uint32_t>(list.size());
        }
        b.idle_by_key.clear();
        b.idle = 0;
        while (!b.queue.empty()) {
            Waiter* w = b.queue.front();
            b.queue.pop_front();
            w->served = false;
            w->timer->cancel();
        }
    }
}

} // namespace sluice::pool
