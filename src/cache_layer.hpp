#pragma once
// The result cache as the daemon runs it (issue #9, DESIGN.md "Caching contract"): the
// process-wide table versions and rules, and each worker's L1 and single flight. The
// session side (what is cached, replay, fill, bumps) is in mysql_cache.cpp.

#include "sluice/cache/key.hpp"
#include "sluice/cache/l1.hpp"
#include "sluice/cache/versions.hpp"
#include "sluice/router/route.hpp"
#include "stats.hpp"

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice {

namespace asio = boost::asio;

/// What every worker shares.
struct CacheShared {
    bool enabled = false;
    router::RuleSet rules; ///< [[cache_rules]], with their TTLs
    cache::TableVersions versions;
};

/// Why a read was not looked up in the cache; labels of sluice_cache_bypass_total. Reads no
/// rule or hint asks to cache are not counted.
enum class CacheBypass : std::uint8_t {
    not_deterministic, ///< NOW(), RAND(), user variables, locking reads ...
    primary,           ///< it runs on the primary: a transaction, a pin, a rule or hint
    tables_unknown,    ///< the statement's tables could not all be named
    count_
};
const char* cache_bypass_name(CacheBypass b) noexcept;

/// A worker's part of the cache. Its thread only.
class WorkerCache {
public:
    WorkerCache(CacheShared& shared, std::size_t l1_max_bytes)
        : shared_(shared), l1_(l1_max_bytes) {}
    WorkerCache(const WorkerCache&) = delete;
    WorkerCache& operator=(const WorkerCache&) = delete;

    CacheShared& shared() noexcept { return shared_; }
    cache::L1& l1() noexcept { return l1_; }
    /// The version of `name` (a qualified lower-case table name), through this worker's own
    /// map: the shared lock is taken once per table and worker.
    cache::TableState& version(std::string_view name);

    /// Single flight: while one session of this worker runs a missed read to fill `key`,
    /// others that miss on it park until it is done, then look again.
    bool filling(const cache::Key& key) const { return fills_.contains(key); }
    void fill_started(const cache::Key& key) { fills_.try_emplace(key); }
    void fill_finished(const cache::Key& key) noexcept;
    void park(const cache::Key& key, asio::steady_timer* timer);
    void unpark(const cache::Key& key, asio::steady_timer* timer) noexcept;

private:
    CacheShared& shared_;
    cache::L1 l1_;
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::unordered_map<std::string, cache::TableState*, NameHash, std::equal_to<>> versions_;
    std::unordered_map<cache::Key, std::vector<asio::steady_timer*>> fills_;
};

/// Ends a fill however the session's read ends (its coroutine destroyed included).
class FillFlight {
public:
    FillFlight() = default;
    FillFlight(const FillFlight&) = delete;
    FillFlight& operator=(const FillFlight&) = delete;
    ~FillFlight() { finish(); }
    void start(WorkerCache& c, const cache::Key& key) {
        finish();
        c.fill_started(key);
        cache_ = &c;
        key_ = key;
    }
    void finish() noexcept {
        if (cache_) cache_->fill_finished(key_);
        cache_ = nullptr;
    }

private:
    WorkerCache* cache_ = nullptr;
    cache::Key key_;
};

} // namespace sluice
