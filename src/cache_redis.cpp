// The cache's Redis side in a worker (issue #9 "Layers", "Invalidation", "Faults"): L2 lookups
// and fills, the table-version bumps of writes, and keeping the process's versions in step
// with Redis. See CacheShared for why versions only ever come from Redis.

#include "cache_layer.hpp"
#include "server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <chrono>
#include <spdlog/spdlog.h>

namespace sluice {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// HINCRBY of each table in ARGV[4..], then one PUBLISH of "origin gtid" (ARGV[2]) followed
/// by a "name version" line per table: the new versions reach the other processes in the
/// same round trip that makes them. The write's GTID (ARGV[3], MariaDB domain-server-seq)
/// becomes its domain's entry in KEYS[2] when its sequence number is higher (consistency
/// "fleet"). Both keys share a hash tag: one slot in Redis Cluster.
constexpr std::string_view bump_script =
    "local msg = ARGV[2] local out = {} "
    "for i = 4, #ARGV do "
    "local v = redis.call('HINCRBY', KEYS[1], ARGV[i], 1) "
    "out[#out + 1] = v msg = msg .. '\\n' .. ARGV[i] .. ' ' .. v end "
    "local d, n = string.match(ARGV[3], '^(%d+)%-%d+%-(%d+)$') "
    "if d then local cur = redis.call('HGET', KEYS[2], d) "
    "local cn = cur and string.match(cur, '%-(%d+)$') "
    "if not cn or tonumber(cn) < tonumber(n) then redis.call('HSET', KEYS[2], d, ARGV[3]) end end "
    "redis.call('PUBLISH', ARGV[1], msg) return out";

/// An L2 value: the expiry (Unix milliseconds, 8 bytes little-endian) then the blob, so an
/// entry copied into L1 expires when its Redis key does.
constexpr std::size_t expiry_bytes = 8;

std::int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
    std::uint64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

} // namespace

RedisLink::RedisLink(const asio::any_io_executor& executor, const RedisTarget& target) {
    if (target.cluster)
        cluster_ = std::make_unique<cache::RedisCluster>(
            executor, std::vector<cache::RedisEndpoint>{target.endpoint}, target.tls.get());
    else
        conn_ = std::make_unique<cache::RedisConn>(executor, target.endpoint, target.tls.get());
}

asio::awaitable<result<std::vector<cache::Reply>>>
RedisLink::run(std::string_view key, std::span<const std::uint8_t> commands, std::size_t replies) {
    if (conn_) {
        auto r = co_await conn_->run(commands, replies); // copied before it suspends
        co_return r;
    }
    // A cluster sends them again after a redirection: they live in this frame until then.
    const std::vector<std::uint8_t> copy(commands.begin(), commands.end());
    auto r = co_await cluster_->run(cache::key_slot(key), copy, replies);
    co_return r;
}

void RedisLink::close() noexcept {
    if (conn_) conn_->close();
    if (cluster_) cluster_->close();
}

std::string RedisLink::last_error() const { return conn_ ? conn_->last_error() : std::string(); }

void WorkerCache::start(const asio::any_io_executor& executor, WorkerStats& stats,
                        std::function<std::uint64_t()> resync_needs, AckedWrites* acked) {
    stats_ = &stats;
    acked_ = acked;
    executor_ = executor;
    const bool sync = static_cast<bool>(resync_needs);
    resync_needs_ = std::move(resync_needs);
    for (RedisTarget& t : shared_.redis) {
        redis_.push_back(std::make_unique<RedisLink>(executor, t));
        if (t.own && own_ == nullptr) own_ = redis_.back().get();
    }
    if (sync && own_ != nullptr) {
        sync_timer_ = std::make_unique<asio::steady_timer>(executor);
        asio::co_spawn(executor, sync_loop(), asio::detached);
        // Other Sluices' bumps. While the subscription is down their bumps are unseen: the
        // versions are not trusted, and each time it is back they are read again.
        RedisTarget& own = shared_.redis[shared_.own_index()];
        cache::SubscriberCallbacks cb;
        cb.message = [this](std::string_view, std::string_view payload) { peer_message(payload); };
        cb.subscribed = [this] {
            shared_.trusted.store(false, std::memory_order_release);
            if (sync_timer_) sync_timer_->cancel(); // resync now
        };
        cb.down = [this](error_code ec) {
            shared_.trusted.store(false, std::memory_order_release);
            if (!shared_.down_logged.exchange(true))
                spdlog::warn("cache: Redis does not answer (subscription: {}): reads bypass the "
                             "cache",
                             ec.message());
        };
        subscriber_ = std::make_unique<cache::RedisSubscriber>(
            executor, own.endpoint, own.tls.get(), std::vector<std::string>{shared_.channel},
            std::move(cb));
        subscriber_->start();
    }
}

void WorkerCache::stop() noexcept {
    stopped_ = true;
    if (sync_timer_) sync_timer_->cancel();
    if (subscriber_) subscriber_->close();
    for (auto& c : redis_)
        c->close();
}

asio::awaitable<std::optional<WorkerCache::L2Entry>> WorkerCache::l2_get(const cache::Key& key) {
    cmd_.clear();
    const std::string rkey = cache::redis_key(key, shared_.prefix);
    cache::write_command(cmd_, {"GET", rkey});
    const auto sent = std::chrono::steady_clock::now();
    auto reply = co_await own_->run(rkey, cmd_, 1);
    stats_->observe_redis(std::chrono::steady_clock::now() - sent);
    if (!reply || (*reply)[0].kind == cache::ReplyKind::error) {
        stats_->redis_errors.add();
        co_return std::nullopt;
    }
    cache::Reply& r = (*reply)[0];
    if (r.kind != cache::ReplyKind::bulk || r.str.size() < expiry_bytes) co_return L2Entry{};
    std::int64_t expiry = 0;
    for (std::size_t i = 0; i < expiry_bytes; ++i)
        expiry |= static_cast<std::int64_t>(static_cast<unsigned char>(r.str[i])) << (8 * i);
    const std::int64_t left = expiry - unix_ms();
    if (left <= 0) co_return L2Entry{};
    r.str.erase(0, expiry_bytes);
    co_return L2Entry{std::make_shared<const std::string>(std::move(r.str)),
                      std::chrono::steady_clock::now() + std::chrono::milliseconds(left)};
}

void WorkerCache::l2_put(const cache::Key& key, cache::L1::Value blob,
                         std::chrono::milliseconds ttl) {
    if (own_ == nullptr) return;
    asio::co_spawn(executor_,
                   put_detached(cache::redis_key(key, shared_.prefix), std::move(blob), ttl),
                   asio::detached);
}

asio::awaitable<void> WorkerCache::put_detached(std::string key, cache::L1::Value blob,
                                                std::chrono::milliseconds ttl) {
    std::string value(expiry_bytes, '\0');
    const std::int64_t expiry = unix_ms() + ttl.count();
    for (std::size_t i = 0; i < expiry_bytes; ++i)
        value[i] = static_cast<char>((expiry >> (8 * i)) & 0xff);
    value += *blob;
    std::vector<std::uint8_t> cmd;
    const std::string px = std::to_string(ttl.count());
    cache::write_command(cmd, {"SET", key, value, "PX", px});
    const auto sent = std::chrono::steady_clock::now();
    auto reply = co_await own_->run(key, cmd, 1);
    if (stopped_) co_return;
    stats_->observe_redis(std::chrono::steady_clock::now() - sent);
    if (!reply || (*reply)[0].kind == cache::ReplyKind::error) stats_->redis_errors.add();
}

asio::awaitable<void> WorkerCache::bump(std::span<cache::TableState* const> tables, bool all,
                                        std::uint64_t needs, std::string_view gtid,
                                        InvalidationSource source) {
    const std::size_t n = all ? 1 : tables.size();
    if (n == 0) co_return;
    auto& counted = stats_->cache_invalidations[static_cast<std::size_t>(source)];
    counted.add(n);
    if (own_ == nullptr) {
        // L1 only: this process is the only holder of the versions.
        if (all) {
            shared_.versions.all().bump(needs);
        } else {
            for (cache::TableState* t : tables)
                t->bump(needs);
        }
        co_return;
    }
    if (shared_.diverged.load(std::memory_order_acquire)) {
        // Lookups are bypassed until the resync, which moves all_tables: nothing to do but
        // make sure a resync comes after this write.
        shared_.resync_wanted.store(true, std::memory_order_release);
        co_return;
    }
    const std::string head = shared_.origin + " " + std::string(gtid);
    args_.clear();
    // One push_back each: GCC 12 warns (stringop-overflow) about an initializer-list insert
    // inlined into this coroutine.
    for (const std::string_view a :
         {std::string_view("EVAL"), bump_script, std::string_view("2"),
          std::string_view(shared_.versions_key), std::string_view(shared_.gtids_key),
          std::string_view(shared_.channel), std::string_view(head), gtid})
        args_.push_back(a);
    if (all) {
        args_.push_back(cache::all_tables);
    } else {
        for (cache::TableState* t : tables)
            args_.push_back(t->name());
    }
    cmd_.clear();
    cache::write_command(cmd_, std::span<const std::string_view>(args_));
    for (std::size_t i = 0; i < redis_.size(); ++i) {
        if (redis_[i].get() != own_)
            asio::co_spawn(executor_, bump_elsewhere(i, cmd_), asio::detached);
    }
    const auto sent = std::chrono::steady_clock::now();
    auto reply = co_await own_->run(shared_.versions_key, cmd_, 1);
    stats_->observe_redis(std::chrono::steady_clock::now() - sent);
    const bool ok =
        reply && (*reply)[0].kind == cache::ReplyKind::array && (*reply)[0].elements.size() == n;
    if (!ok) {
        stats_->redis_errors.add();
        shared_.resync_wanted.store(true, std::memory_order_release);
        shared_.diverged.store(true, std::memory_order_release);
        if (!shared_.down_logged.exchange(true))
            spdlog::warn("cache: Redis does not answer (a write's table versions could not be "
                         "bumped: {}): reads bypass the cache",
                         reply ? "unexpected reply" : reply.error().message());
        co_return;
    }
    const auto& values = (*reply)[0].elements;
    for (std::size_t i = 0; i < n; ++i) {
        cache::TableState& t = all ? shared_.versions.all() : *tables[i];
        if (values[i].kind == cache::ReplyKind::integer && values[i].integer > 0)
            t.raise_to(static_cast<std::uint64_t>(values[i].integer), needs);
    }
}

void WorkerCache::peer_message(std::string_view payload) {
    // "origin gtid" then "name version" lines (bump_script).
    const auto line_end = payload.find('\n');
    const std::string_view head = payload.substr(0, line_end);
    const auto space = head.find(' ');
    if (head.substr(0, space) == shared_.origin) return; // this process's own bump
    const std::string_view gtid = space == std::string_view::npos ? "" : head.substr(space + 1);
    std::uint64_t needs = ~std::uint64_t{0};
    if (gtid.starts_with(tds_write_tag)) {
        // A TDS write: its commit LSN (empty outside an availability group), which a
        // secondary must have redone before its answers are stored.
        if (tds_peer_write) tds_peer_write(gtid.substr(tds_write_tag.size()));
    } else if (!gtid.empty() && acked_ != nullptr) {
        // A replica's result reflects that write only once it has applied its GTID.
        acked_->acknowledge(gtid);
        needs = acked_->version();
    }
    std::size_t pos = line_end == std::string_view::npos ? payload.size() : line_end + 1;
    std::uint64_t count = 0;
    while (pos < payload.size()) {
        auto end = payload.find('\n', pos);
        if (end == std::string_view::npos) end = payload.size();
        const std::string_view line = payload.substr(pos, end - pos);
        pos = end + 1;
        const auto sp = line.rfind(' ');
        if (sp == std::string_view::npos) continue;
        const auto v = to_u64(line.substr(sp + 1));
        if (!v) continue;
        const std::string_view name = line.substr(0, sp);
        cache::TableState& t = name == cache::all_tables ? shared_.versions.all() : version(name);
        t.raise_to(*v, needs);
        ++count;
    }
    stats_->cache_invalidations[static_cast<std::size_t>(InvalidationSource::peer)].add(count);
}

void WorkerCache::binlog_change(cache::BinlogChange change, AckedWrites& acked) {
    // A write through Sluice, bumped at its OK already: bumping again would only discard
    // what was filled since (a trigger's or cascade's other tables do bump).
    if (shared_.already_bumped(change)) return;
    std::uint64_t needs = ~std::uint64_t{0};
    if (!change.gtid.empty()) {
        acked.acknowledge(change.gtid);
        needs = acked.version();
    }
    asio::co_spawn(executor_, binlog_bump(std::move(change), needs), asio::detached);
}

asio::awaitable<void> WorkerCache::binlog_bump(cache::BinlogChange change, std::uint64_t needs) {
    std::vector<cache::TableState*> tables;
    for (const std::string& name : change.tables)
        tables.push_back(&version(name));
    co_await bump(tables, change.all, needs, change.gtid, InvalidationSource::binlog);
}

asio::awaitable<bool> WorkerCache::refresh_fleet(std::span<const std::string> tables,
                                                 AckedWrites& acked) {
    if (own_ == nullptr) co_return false;
    std::vector<std::uint8_t> cmd;
    cache::write_command(cmd, {"HVALS", shared_.gtids_key});
    std::vector<std::string_view> args{"HMGET", shared_.versions_key, cache::all_tables};
    for (const std::string& t : tables)
        args.push_back(t);
    cache::write_command(cmd, std::span<const std::string_view>(args));
    const auto sent = std::chrono::steady_clock::now();
    auto reply = co_await own_->run(shared_.versions_key, cmd, 2);
    stats_->observe_redis(std::chrono::steady_clock::now() - sent);
    if (!reply || (*reply)[0].kind != cache::ReplyKind::array ||
        (*reply)[1].kind != cache::ReplyKind::array ||
        (*reply)[1].elements.size() != tables.size() + 1) {
        stats_->redis_errors.add();
        co_return false;
    }
    std::string position;
    for (const cache::Reply& r : (*reply)[0].elements) {
        if (r.kind != cache::ReplyKind::bulk) continue;
        if (!position.empty()) position += ',';
        position += r.str;
    }
    if (!position.empty()) acked.acknowledge(position);
    // The script records a write's GTID with its bumps: every version read here belongs to
    // a write the watermark now holds.
    const std::uint64_t needs = acked.version();
    const auto& values = (*reply)[1].elements;
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (values[i].kind != cache::ReplyKind::bulk) continue; // never bumped
        const auto v = to_u64(values[i].str);
        if (!v) continue;
        cache::TableState& t = i == 0 ? shared_.versions.all() : version(tables[i - 1]);
        t.raise_to(*v, needs);
    }
    co_return true;
}

asio::awaitable<void> WorkerCache::pull_fleet(AckedWrites& acked) {
    if (own_ == nullptr) co_return;
    std::vector<std::uint8_t> cmd;
    cache::write_command(cmd, {"HVALS", shared_.gtids_key});
    const auto sent = std::chrono::steady_clock::now();
    auto reply = co_await own_->run(shared_.gtids_key, cmd, 1);
    stats_->observe_redis(std::chrono::steady_clock::now() - sent);
    if (!reply || (*reply)[0].kind != cache::ReplyKind::array) {
        stats_->redis_errors.add();
        co_return;
    }
    std::string position;
    for (const cache::Reply& r : (*reply)[0].elements) {
        if (r.kind != cache::ReplyKind::bulk) continue;
        if (!position.empty()) position += ',';
        position += r.str;
    }
    if (!position.empty()) acked.acknowledge(position);
}

asio::awaitable<void> WorkerCache::bump_elsewhere(std::size_t target,
                                                  std::vector<std::uint8_t> cmd) {
    // Another region's Redis: its Sluices adopt the versions from the message. A failure is
    // counted; that region is then stale for these tables until their TTL (README).
    auto reply = co_await redis_[target]->run(shared_.versions_key, cmd, 1);
    if (stopped_) co_return;
    if (!reply || (*reply)[0].kind == cache::ReplyKind::error) stats_->redis_errors.add();
}

asio::awaitable<void> WorkerCache::sync_loop() {
    while (!stopped_) {
        const bool wanted = !shared_.trusted.load(std::memory_order_acquire) ||
                            shared_.diverged.load(std::memory_order_acquire) ||
                            shared_.resync_wanted.load(std::memory_order_acquire);
        bool ok = true;
        if (wanted) {
            ok = co_await resync();
            if (stopped_) co_return;
            if (ok && shared_.usable() && shared_.down_logged.exchange(false))
                spdlog::info("cache: Redis answers again: caching resumes");
            if (!ok && !shared_.down_logged.exchange(true))
                spdlog::warn("cache: Redis does not answer ({}): reads bypass the cache",
                             last_error_);
        }
        sync_timer_->expires_after(std::chrono::milliseconds(ok ? 100 : 250));
        const auto [ec] = co_await sync_timer_->async_wait(use_tuple);
        (void)ec;
    }
}

asio::awaitable<bool> WorkerCache::resync() {
    // After versions were lost (a bump that did not reach Redis), all_tables moves first:
    // every key made before becomes unreachable, so the versions read back may be lower
    // than the ones this process held.
    // Both read: a short-circuit would leave the flag set and resync for ever.
    const bool flagged = shared_.resync_wanted.exchange(false, std::memory_order_acq_rel);
    const bool lost = shared_.diverged.load(std::memory_order_acquire) || flagged;
    std::vector<std::uint8_t> cmd;
    if (lost) cache::write_command(cmd, {"HINCRBY", shared_.versions_key, cache::all_tables, "1"});
    cache::write_command(cmd, {"HGETALL", shared_.versions_key});
    auto reply = co_await own_->run(shared_.versions_key, cmd, lost ? 2 : 1);
    if (!reply || reply->back().kind != cache::ReplyKind::array) {
        last_error_ = !reply                                          ? reply.error().message()
                      : reply->back().kind == cache::ReplyKind::error ? reply->back().str
                                                                      : "unexpected reply";
        if (!reply && !own_->last_error().empty()) last_error_ = own_->last_error();
        if (lost) shared_.resync_wanted.store(true, std::memory_order_release);
        shared_.diverged.store(true, std::memory_order_release);
        co_return false;
    }
    std::unordered_map<std::string_view, std::uint64_t> found;
    const auto& fields = reply->back().elements;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (auto v = to_u64(fields[i + 1].str)) found[fields[i].str] = *v;
    }
    // What results must reflect from now on: writes of other processes during the outage
    // are unknown here; the primary's position (the monitor's last reading) covers them.
    const std::uint64_t needs = resync_needs_();
    cache::TableState& all = shared_.versions.all();
    // Tables this process has not met yet start at Redis's versions, not at 0: a Sluice that
    // starts after others have written shares their L2 entries at once (at 0 its keys would
    // differ from theirs until each table's next bump).
    for (const auto& [name, v] : found) {
        if (name != cache::all_tables) shared_.versions.table(name);
    }
    shared_.versions.for_each([&](cache::TableState& t) {
        if (&t == &all) return;
        auto it = found.find(t.name());
        const std::uint64_t v = it == found.end() ? 0 : it->second;
        // A version another Sluice moved while this one was not listening: its writes are
        // known only by the primary's position.
        if (lost)
            t.reset_to(v, needs);
        else if (v > t.version())
            t.raise_to(v, needs);
    });
    // all_tables last: a lookup reads it first, so one that sees the new value sees the
    // tables' new values too.
    auto it = found.find(cache::all_tables);
    const std::uint64_t epoch = it == found.end() ? 0 : it->second;
    if (lost)
        all.reset_to(epoch, needs);
    else if (epoch > all.version())
        all.raise_to(epoch, needs);
    if (shared_.resync_wanted.load(std::memory_order_acquire)) co_return true; // again soon
    shared_.diverged.store(false, std::memory_order_release);
    shared_.trusted.store(true, std::memory_order_release);
    co_return true;
}

} // namespace sluice
