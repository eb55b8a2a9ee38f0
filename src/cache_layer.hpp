#pragma once
// The result cache as the daemon runs it (issue #9, DESIGN.md "Caching contract"): the
// process-wide table versions and rules, and each worker's L1 and single flight. The
// session side (what is cached, replay, fill, bumps) is in mysql_cache.cpp.

#include "sluice/cache/binlog.hpp"
#include "sluice/cache/key.hpp"
#include "sluice/cache/l1.hpp"
#include "sluice/cache/redis_cluster.hpp"
#include "sluice/cache/redis_conn.hpp"
#include "sluice/cache/redis_sub.hpp"
#include "sluice/cache/versions.hpp"
#include "sluice/router/route.hpp"
#include "stats.hpp"

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice {

namespace asio = boost::asio;

/// One [[cache.redis]] server as every worker reaches it.
struct RedisTarget {
    cache::RedisEndpoint endpoint;
    std::unique_ptr<asio::ssl::context> tls; ///< null without TLS
    bool own = false;     ///< this Sluice's region: reads and fills go there (bumps go everywhere)
    bool cluster = false; ///< a Redis Cluster seed
};

/// One [[cache.redis]] as a worker reaches it: one pipelined connection, or a Redis
/// Cluster's masters (each call goes to the node that owns its key's slot).
class RedisLink {
public:
    RedisLink(const asio::any_io_executor& executor, const RedisTarget& target);
    /// Runs `commands`, all for keys in `key`'s slot (hash tags), and returns the replies.
    asio::awaitable<result<std::vector<cache::Reply>>>
    run(std::string_view key, std::span<const std::uint8_t> commands, std::size_t replies);
    void close() noexcept;
    /// The server's text of the last AUTH refusal, if any.
    std::string last_error() const;

private:
    std::unique_ptr<cache::RedisConn> conn_;
    std::unique_ptr<cache::RedisCluster> cluster_;
};

class AckedWrites; // server.hpp

/// What every worker shares.
///
/// With Redis, table versions are Redis's (a hash field per table, HINCRBY'd by every
/// write of every Sluice sharing it, PUBLISHed so the others adopt the new value at once):
/// keys agree across processes, so L2 entries are shared. A version is only ever taken from
/// Redis, never counted locally, so two processes can never give one number to two different
/// states of a table. When Redis cannot be reached for a write's bump, the versions are
/// `diverged`: the cache is bypassed until a resync moves all_tables to a new value (every
/// older key unreachable at once) and reads the versions back. `trusted` says the versions
/// were read from Redis since this process started (later also: since its subscription to
/// the bumps of other processes last came back).
struct CacheShared {
private:
    std::mutex recent_mutex_;
    std::unordered_map<std::string, std::vector<std::string>> recent_;
    std::vector<std::string> recent_order_; ///< a ring of the keys of recent_
    std::size_t recent_next_ = 0;

public:
    bool enabled = false;
    router::RuleSet rules; ///< [[cache_rules]], with their TTLs
    cache::TableVersions versions;
    std::vector<RedisTarget> redis; ///< empty: L1 only
    std::string prefix;             ///< [cache] key_prefix
    std::string versions_key;       ///< the Redis hash of table versions
    std::string gtids_key;          ///< newest GTID per domain of any Sluice's write (fleet)
    std::string channel;            ///< where bumps are published
    std::string origin;             ///< this process's id in the messages it publishes
    std::atomic<bool> trusted{true};
    std::atomic<bool> diverged{false};
    /// A bump could not go through Redis since the last resync began: resync (again).
    std::atomic<bool> resync_wanted{false};
    /// Whether the log last said Redis is down: one line per change of state, not per query.
    std::atomic<bool> down_logged{false};
    /// [cache.binlog]: whether the follower streams the primary's binary log now.
    std::atomic<bool> binlog_up{false};
    /// Writes through Sluice whose bumps were made at their OK, by GTID, so that the binary
    /// log follower does not bump the same tables again a moment later (which would throw
    /// away what was filled in between): the newest 4,096. Any thread.
    void bumped_at_ok(std::string_view gtid, std::vector<std::string> tables);
    /// Whether every table of `change` was bumped at its OK (and it names no unknown tables).
    bool already_bumped(const cache::BinlogChange& change);
    /// Seconds between the last transaction's commit on the primary and its bump here.
    std::atomic<std::int64_t> binlog_lag_s{0};
    bool binlog = false; ///< [cache.binlog]: bumped_at_ok() is worth recording
    std::size_t own_index() const noexcept {
        for (std::size_t i = 0; i < redis.size(); ++i)
            if (redis[i].own) return i;
        return redis.size();
    }
    std::size_t versions_size() const { return versions.size(); }
    /// Whether lookups and fills may use the cache now.
    bool usable() const noexcept {
        return redis.empty() || (trusted.load(std::memory_order_acquire) &&
                                 !diverged.load(std::memory_order_acquire) &&
                                 !resync_wanted.load(std::memory_order_acquire));
    }
};

/// Why a read was not looked up in the cache; labels of sluice_cache_bypass_total. Reads no
/// rule or hint asks to cache are not counted.
enum class CacheBypass : std::uint8_t {
    not_deterministic, ///< NOW(), RAND(), user variables, locking reads ...
    primary,           ///< it runs on the primary: a transaction, a pin, a rule or hint
    redis,             ///< Redis unreachable: table versions cannot be confirmed
    tables_unknown,    ///< the statement's tables could not all be named
    count_
};
const char* cache_bypass_name(CacheBypass b) noexcept;

/// Whether a hint or a [[cache_rules]] entry asks to cache a read, for how long, and whether
/// its entry is shared between users.
struct CacheChoice {
    std::chrono::milliseconds ttl{0};
    bool shared = false;
};
/// The read's choice (MySQL's and TDS's alike): its hint first, else the first rule matching
/// its digest, user and database; nullopt when neither asks. DIGEST() is called only when
/// rules must be matched (a digest costs a pass over the text).
template <typename Digest>
std::optional<CacheChoice>
cache_choice(const CacheShared& cs, std::chrono::milliseconds default_ttl, const router::Hint& hint,
             Digest&& digest, std::string_view user, std::string_view database) {
    if (hint.cache == router::Hint::Cache::cache)
        return CacheChoice{
            hint.cache_ttl_ms ? std::chrono::milliseconds(*hint.cache_ttl_ms) : default_ttl, false};
    if (cs.rules.empty()) return std::nullopt;
    const router::RuleSpec* rule = cs.rules.match(digest(), user, database);
    if (rule == nullptr || rule->cache_ttl_ms == 0) return std::nullopt;
    return CacheChoice{std::chrono::milliseconds(rule->cache_ttl_ms), rule->cache_shared};
}
/// A read a rule or hint asks to cache that is not: counted by reason.
inline void count_cache_bypass(WorkerStats& st, CacheBypass why) {
    st.cache_bypass[static_cast<std::size_t>(why)].add();
    st.count_cache(CacheLayer::l1, CacheResult::bypass);
}

/// What a TDS write's bump carries where a MySQL write's carries its GTID: this tag, then
/// the write's commit LSN (empty outside an availability group).
inline constexpr std::string_view tds_write_tag = "tds:";

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

    /// GET /cache's hottest digests: lookups per digest text (the first 1,024 digests this
    /// worker saw; any thread may read them).
    struct DigestCount {
        std::string text;
        std::uint64_t hits = 0;
        std::uint64_t misses = 0;
    };
    void count_digest(const std::string& text, bool hit);
    std::vector<DigestCount> digests() const;

    // ---- Redis (cache_redis.cpp) ----
    /// Makes this worker's connections (none are opened before first use). With
    /// `resync_needs` (one worker's), this worker keeps the process's versions in step with
    /// Redis; after versions were lost, results must reflect the watermark version it gives
    /// (the primary's position as last read) to be cached.
    void start(const asio::any_io_executor& executor, WorkerStats& stats,
               std::function<std::uint64_t()> resync_needs, AckedWrites* acked);
    /// Closes the connections and stops the sync: the worker's io_context can end.
    void stop() noexcept;
    bool has_l2() const noexcept { return own_ != nullptr; }
    /// An L2 lookup: the entry and when it expires, nullptr on a miss, nullopt when Redis
    /// did not answer (counted; the read runs as if there were no cache).
    struct L2Entry {
        cache::L1::Value value;
        std::chrono::steady_clock::time_point expires;
    };
    asio::awaitable<std::optional<L2Entry>> l2_get(const cache::Key& key);
    /// Stores an entry in L2 in the background (the client has its answer already).
    void l2_put(const cache::Key& key, cache::L1::Value blob, std::chrono::milliseconds ttl);
    /// A write's bump: HINCRBY of every table (or all_tables) in the own region's Redis and
    /// PUBLISH of the new versions, in one round trip, awaited (the write's answer waits for
    /// it); the other regions' in the background. Adopts the new versions with `needs`.
    /// Without Redis: counted locally. Redis unreachable: the versions are diverged.
    /// Another Sluice's TDS write reached this one (its bump's message): `lsn` its commit
    /// LSN. Set by the worker (TDS read-your-writes and cache fills); any thread.
    std::function<void(std::string_view lsn)> tds_peer_write;
    asio::awaitable<void> bump(std::span<cache::TableState* const> tables, bool all,
                               std::uint64_t needs, std::string_view gtid,
                               InvalidationSource source = InvalidationSource::write);
    /// A transaction the binary log follower saw (any client's, triggers included): its
    /// tables bumped like a write through Sluice. Runs on this worker (post it here).
    void binlog_change(cache::BinlogChange change, AckedWrites& acked);
    /// consistency "fleet": the newest GTID per replication domain that any Sluice's write
    /// recorded in the own region's Redis, folded into `acked` (one round trip). Without
    /// Redis, or when it does not answer, `acked` stays as it is (the read is `global`).
    asio::awaitable<void> pull_fleet(AckedWrites& acked);
    /// pull_fleet() and the Redis versions of `tables` (qualified names) and all_tables,
    /// adopted, in one round trip; false when Redis did not answer.
    asio::awaitable<bool> refresh_fleet(std::span<const std::string> tables, AckedWrites& acked);

private:
    /// A bump another Sluice published: its versions adopted, its GTID acknowledged.
    void peer_message(std::string_view payload);
    asio::awaitable<void> binlog_bump(cache::BinlogChange change, std::uint64_t needs);
    asio::awaitable<void> sync_loop();
    asio::awaitable<bool> resync();
    asio::awaitable<void> put_detached(std::string key, cache::L1::Value blob,
                                       std::chrono::milliseconds ttl);
    asio::awaitable<void> bump_elsewhere(std::size_t target, std::vector<std::uint8_t> cmd);

    CacheShared& shared_;
    cache::L1 l1_;
    WorkerStats* stats_ = nullptr;
    std::vector<std::unique_ptr<RedisLink>> redis_;
    RedisLink* own_ = nullptr;
    mutable std::mutex digests_mutex_;
    std::unordered_map<std::string, DigestCount> digests_;
    std::unique_ptr<asio::steady_timer> sync_timer_;
    std::unique_ptr<cache::RedisSubscriber> subscriber_;
    AckedWrites* acked_ = nullptr; ///< the sync worker's: peers' GTIDs join the watermark
    asio::any_io_executor executor_;
    std::function<std::uint64_t()> resync_needs_;
    std::string last_error_; ///< why the last resync failed, for the log
    bool stopped_ = false;
    std::vector<std::uint8_t> cmd_;
    std::vector<std::string_view> args_;
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
