#include "cache_layer.hpp"

#include <algorithm>

namespace sluice {

const char* cache_bypass_name(CacheBypass b) noexcept {
    switch (b) {
    case CacheBypass::not_deterministic:
        return "not_deterministic";
    case CacheBypass::primary:
        return "primary";
    case CacheBypass::redis:
        return "redis";
    case CacheBypass::tables_unknown:
        return "tables_unknown";
    case CacheBypass::count_:
        break;
    }
    return "unknown";
}

void CacheShared::bumped_at_ok(std::string_view gtid, std::vector<std::string> tables) {
    static constexpr std::size_t keep = 4096;
    const std::lock_guard lock(recent_mutex_);
    if (recent_order_.size() < keep) {
        recent_order_.emplace_back(gtid);
    } else {
        recent_.erase(recent_order_[recent_next_]);
        recent_order_[recent_next_] = std::string(gtid);
        recent_next_ = (recent_next_ + 1) % keep;
    }
    recent_[std::string(gtid)] = std::move(tables);
}

bool CacheShared::already_bumped(const cache::BinlogChange& change) {
    if (change.all || change.gtid.empty()) return false;
    const std::lock_guard lock(recent_mutex_);
    auto it = recent_.find(change.gtid);
    if (it == recent_.end()) return false;
    const auto& done = it->second;
    return std::all_of(change.tables.begin(), change.tables.end(), [&](const std::string& t) {
        return std::find(done.begin(), done.end(), t) != done.end();
    });
}

cache::TableState& WorkerCache::version(std::string_view name) {
    // Only the first lookup of a table in this worker takes the shared lock.
    auto it = versions_.find(name);
    if (it == versions_.end())
        it = versions_.emplace(std::string(name), &shared_.versions.table(name)).first;
    return *it->second;
}

void WorkerCache::count_digest(const std::string& text, bool hit) {
    static constexpr std::size_t max_digests = 1024;
    const std::lock_guard lock(digests_mutex_); // uncontended but for a scrape
    auto it = digests_.find(text);
    if (it == digests_.end()) {
        if (digests_.size() >= max_digests) return;
        it = digests_.emplace(text, DigestCount{text, 0, 0}).first;
    }
    ++(hit ? it->second.hits : it->second.misses);
}

std::vector<WorkerCache::DigestCount> WorkerCache::digests() const {
    const std::lock_guard lock(digests_mutex_);
    std::vector<DigestCount> out;
    out.reserve(digests_.size());
    for (const auto& [text, c] : digests_)
        out.push_back(c);
    return out;
}

void WorkerCache::fill_finished(const cache::Key& key) noexcept {
    auto it = fills_.find(key);
    if (it == fills_.end()) return;
    for (asio::steady_timer* t : it->second)
        t->cancel();
    fills_.erase(it);
}

void WorkerCache::park(const cache::Key& key, asio::steady_timer* timer) {
    auto it = fills_.find(key);
    if (it != fills_.end()) it->second.push_back(timer);
}

void WorkerCache::unpark(const cache::Key& key, asio::steady_timer* timer) noexcept {
    auto it = fills_.find(key);
    if (it == fills_.end()) return;
    auto& v = it->second;
    v.erase(std::remove(v.begin(), v.end(), timer), v.end());
}

} // namespace sluice
