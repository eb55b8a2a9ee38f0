// The result cache in a MySQL session (issue #9, DESIGN.md "Caching contract"): which reads
// are cached and under which key, answers replayed from the cache, results captured and
// filled after a miss, and the table versions every write bumps before its answer leaves.

#include "mysql_session.hpp"
#include "sluice/protocol/mysql/packet.hpp"
#include "sluice/router/consistency.hpp"
#include "sluice/router/tables.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace sluice {

namespace mysql = protocol::mysql;
using router::StatementClass;

namespace {

constexpr std::uint64_t primary_only = ~std::uint64_t{0};

/// `schema.table`, lower-case, with `database` for an unqualified name; empty when there is
/// no database to qualify it with.
std::string qualified(const router::TableName& t, std::string_view database) {
    std::string out;
    if (!t.schema.empty()) {
        out = t.schema;
    } else {
        if (database.empty()) return out;
        out.reserve(database.size() + 1 + t.table.size());
        for (const char ch : database)
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    out += '.';
    out += t.table;
    return out;
}

/// Flags that make a read's answer depend on more than its text, its tables and the
/// session's settings.
bool deterministic(const router::StatementFlags& f, bool auto_is_null) noexcept {
    return !(f.multi_statement || f.non_deterministic || f.locking_read || f.select_into ||
             f.primary_function || f.reads_diagnostics || f.reads_catalog || f.bad_syntax ||
             f.calc_found_rows || f.assigns_user_variable || f.reads_user_variable ||
             (f.tests_is_null && auto_is_null));
}

} // namespace

const std::string& MysqlSession::cache_settings() {
    // Every tracked assignment except user variables (a read of one is not deterministic,
    // so no cached read depends on them) and next-transaction settings; the login's
    // character set; MariaDB's extended metadata, which changes column definitions.
    if (settings_version_ == state_.version() && !settings_.empty()) return settings_;
    settings_.clear();
    settings_ += std::to_string(state_.charset());
    settings_ += client_ext_caps_ & mysql::mariadb_cap::extended_types ? "x" : "-";
    for (const router::Assignment& a : state_.assignments()) {
        if (a.standalone || a.key.starts_with('@')) continue;
        settings_ += '\n';
        settings_ += a.text;
    }
    settings_version_ = state_.version();
    return settings_;
}

bool MysqlSession::plan_read(const router::Classification& c, std::string_view sql,
                             std::string& digest,
                             std::optional<std::span<const std::uint8_t>> params) {
    cache_plan_.active = false;
    CacheShared& cs = worker_.shared().cache;
    if (!cs.enabled || c.cls != StatementClass::read ||
        c.hint.cache == router::Hint::Cache::nocache)
        return false;
    const auto choice = cache_choice(
        cs, worker_.shared().cfg.cache.default_ttl, c.hint,
        [&]() -> const std::string& {
            if (digest.empty()) digest = router::digest(sql, state_.sql_mode()).text;
            return digest;
        },
        user_, state_.database());
    if (!choice) return false;
    // A read a rule or hint asks to cache: from here on, one that is not is counted.
    auto bypass = [this](CacheBypass why) {
        count_cache_bypass(worker_.stats(), why);
        return false;
    };
    if (!deterministic(c.flags, state_.auto_is_null()))
        return bypass(CacheBypass::not_deterministic);
    if (!cs.usable()) return bypass(CacheBypass::redis);
    const router::SessionView v = view();
    const router::Route route = router::decide_route(c, digest, v, worker_.shared().rules, true);
    if (route.destination != router::Destination::replica) return bypass(CacheBypass::primary);

    const router::TableRefs refs = router::tables_read(sql, state_.sql_mode());
    if (!refs.complete) return bypass(CacheBypass::tables_unknown);
    WorkerCache& wc = worker_.cache();
    names_.clear();
    for (const router::TableName& t : refs.tables) {
        names_.push_back(qualified(t, state_.database()));
        if (names_.back().empty()) return bypass(CacheBypass::tables_unknown);
    }
    std::sort(names_.begin(), names_.end());
    names_.erase(std::unique(names_.begin(), names_.end()), names_.end());
    table_versions_.clear();
    std::uint64_t needs = 0;
    auto add = [&](std::string_view name, const cache::TableState& tv) {
        // version() before needs(): see cache::TableState.
        table_versions_.push_back({name, tv.version()});
        needs = std::max(needs, tv.needs());
    };
    add(cache::all_tables, worker_.shared().cache.versions.all());
    for (const std::string& name : names_)
        add(name, wc.version(name));

    cache::KeyInput in;
    in.protocol = cache::Protocol::mysql;
    in.user = user_;
    in.shared = choice->shared;
    in.database = state_.database();
    // Hints are not part of the statement: a hinted read and the same read matched by a rule
    // share their entry, whatever TTL or consistency each asked for.
    in.statement = router::without_leading_comments(sql);
    in.settings = cache_settings();
    in.params = params;
    in.tables = table_versions_;
    cache_plan_.key = cache::make_key(in);
    // For GET /cache's hottest digests (literals folded: no parameters leave the process).
    if (digest.empty()) digest = router::digest(sql, state_.sql_mode()).text;
    cache_plan_.digest = &digest;
    cache_plan_.ttl = choice->ttl;
    cache_plan_.needs = needs;
    cache_plan_.fleet = consistency_for(c, route) == router::Consistency::fleet;
    cache_plan_.reflects = false; // until proven_before_send()
    cache_plan_.active = true;
    return true;
}

asio::awaitable<bool>
MysqlSession::plan_cached_read(const router::Classification& c, std::string_view sql,
                               std::string& digest,
                               std::optional<std::span<const std::uint8_t>> params) {
    if (!plan_read(c, sql, digest, params)) co_return false;
    if (!cache_plan_.fleet || !worker_.cache().has_l2()) co_return true;
    // Another Sluice's bump reaches this one's versions through its subscription, a moment
    // later; a fleet read does not wait for that moment.
    const bool fresh = co_await worker_.cache().refresh_fleet(names_, worker_.shared().acked);
    if (!fresh) co_return true;
    co_return plan_read(c, sql, digest, params);
}

asio::awaitable<std::optional<bool>> MysqlSession::serve_cached(std::uint8_t seq) {
    WorkerCache& wc = worker_.cache();
    const cache::Key key = cache_plan_.key;
    auto now = std::chrono::steady_clock::now();
    cache::L1::Value value = wc.l1().get(key, now);
    if (!value && wc.filling(key)) {
        // Single flight: another session of this worker is running this read to fill it.
        asio::steady_timer timer{co_await asio::this_coro::executor};
        timer.expires_after(worker_.shared().cfg.routing.causal_read_timeout +
                            std::chrono::seconds(1));
        wc.park(key, &timer);
        const auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        wc.unpark(key, &timer);
        (void)ec;
        if (closed_) co_return false;
        now = std::chrono::steady_clock::now();
        value = wc.l1().get(key, now);
    }
    WorkerStats& st = worker_.stats();
    CacheLayer layer = CacheLayer::l1;
    if (!value) {
        st.count_cache(CacheLayer::l1, CacheResult::miss);
        if (!wc.has_l2()) {
            wc.count_digest(*cache_plan_.digest, false);
            co_return std::nullopt;
        }
        const auto entry = co_await wc.l2_get(key);
        if (closed_) co_return false;
        if (!entry) {
            st.count_cache(CacheLayer::l2, CacheResult::bypass);
            wc.count_digest(*cache_plan_.digest, false);
            co_return std::nullopt;
        }
        if (!entry->value) {
            st.count_cache(CacheLayer::l2, CacheResult::miss);
            wc.count_digest(*cache_plan_.digest, false);
            co_return std::nullopt;
        }
        value = entry->value;
        layer = CacheLayer::l2;
        // The entry answers this read's key; L1 keeps it under that same key.
        wc.l1().put(key, value, entry->expires);
    }
    out_.clear();
    const auto& p = backends_[primary_slot];
    const std::uint16_t status = p.conn ? p.conn->status() : mysql::status::autocommit;
    const auto replayed =
        mysql::replay(*value, (client_caps_ & mysql::cap::deprecate_eof) != 0, seq, out_, status);
    if (!replayed) {
        // Only Sluice writes these blobs: a damaged one is dropped and the read runs.
        spdlog::warn("{} a cached result did not replay ({}): dropped", prefix(),
                     replayed.error().message());
        wc.l1().erase(key);
        co_return std::nullopt;
    }
    st.count_cache(layer, CacheResult::hit);
    wc.count_digest(*cache_plan_.digest, true);
    const auto ec = co_await client_.write_all(asio::buffer(out_));
    worker_.stats().bytes_to_clients.add(out_.size());
    co_return !ec;
}

bool MysqlSession::replica_reflects(std::size_t index, std::uint64_t needs) const {
    if (needs == 0) return true;
    if (needs == primary_only) return false;
    AckedWrites& acked = worker_.shared().acked;
    if (acked.known_applied(index, needs)) return true;
    // The monitor's last reading of the replica's position counts too.
    const auto& topology = worker_.topology();
    if (index >= topology.backends.size()) return false;
    auto [text, version] = acked.position();
    if (version < needs ||
        router::freshness(text, topology.backends[index].gtid_position) != router::Freshness::fresh)
        return false;
    acked.confirm(index, version);
    return true;
}

void MysqlSession::proven_before_send() noexcept {
    if (!cache_plan_.active) return;
    try {
        cache_plan_.reflects = replica_reflects(backends_[replica_slot].index, cache_plan_.needs);
    } catch (const std::exception&) {
        cache_plan_.reflects = false; // AckedWrites::position() could not copy its text
    }
}

void MysqlSession::fill_cache(Slot slot) {
    if (!cache_plan_.active) return;
    cache_plan_.active = false;
    auto blob = capture_.finish();
    WorkerStats& st = worker_.stats();
    if (!blob) {
        st.cache_uncacheable.add();
        spdlog::debug("{} result not cached: {}", prefix(), blob.error().message());
        return;
    }
    if (slot == replica_slot && !cache_plan_.reflects) {
        // No stale populate: the replica may not have applied the write that last bumped
        // these tables when it ran the read, and its answer is not stored under a version it
        // may not reflect. (Evidence that came while the read ran, a monitor's reading or
        // another session's wait, does not count: the CI run on 9ec4350 stored an answer one
        // write old that way.)
        st.cache_stale_refused.add();
        return;
    }
    WorkerCache& wc = worker_.cache();
    cache::L1& l1 = wc.l1();
    const auto now = std::chrono::steady_clock::now();
    auto value = std::make_shared<const std::string>(std::move(*blob));
    l1.put(cache_plan_.key, value, now + cache_plan_.ttl);
    wc.l2_put(cache_plan_.key, std::move(value), cache_plan_.ttl);
    st.cache_fills.add();
    st.l1_bytes.set(l1.bytes());
    st.l1_entries.set(l1.size());
    st.l1_evictions.set(l1.evictions());
}

void MysqlSession::plan_write(const router::Classification& c, std::string_view sql) {
    if (!worker_.shared().cache.enabled) return;
    switch (c.cls) {
    case StatementClass::write:
    case StatementClass::ddl:
    case StatementClass::unknown:
    case StatementClass::prepare_sql:
        break;
    default:
        return;
    }
    bump_.clear();
    bump_all_ = false;
    bump_pending_ = true;
    const router::TableRefs refs = c.cls == StatementClass::prepare_sql
                                       ? router::TableRefs{}
                                       : router::tables_written(sql, state_.sql_mode());
    if (!refs.complete) {
        bump_all_ = true;
        return;
    }
    WorkerCache& wc = worker_.cache();
    for (const router::TableName& t : refs.tables) {
        const std::string name = qualified(t, state_.database());
        if (name.empty()) {
            bump_all_ = true;
            return;
        }
        bump_.push_back(&wc.version(name));
    }
}

bool MysqlSession::collect_bumps(bool has_status, std::uint16_t status) {
    if (!bump_pending_ && trx_written_.empty() && !trx_written_all_) return false;
    // SERVER_STATUS_IN_TRANS alone: with autocommit=0 it clears at each COMMIT.
    const auto& p = backends_[primary_slot];
    const std::uint16_t st = has_status ? status : p.conn ? p.conn->status() : 0;
    const bool in_trx = (st & mysql::status::in_trans) != 0;
    bumping_.clear();
    bumping_all_ = false;
    if (bump_pending_) {
        bump_pending_ = false;
        bumping_ = bump_;
        bumping_all_ = bump_all_;
        if (in_trx) {
            // Others see the transaction's writes at its commit: bumped again then.
            trx_written_.insert(trx_written_.end(), bump_.begin(), bump_.end());
            trx_written_all_ = trx_written_all_ || bump_all_;
        }
    }
    if (!in_trx && (trx_written_all_ || !trx_written_.empty())) {
        bumping_.insert(bumping_.end(), trx_written_.begin(), trx_written_.end());
        bumping_all_ = bumping_all_ || trx_written_all_;
        trx_written_.clear();
        trx_written_all_ = false;
    }
    std::sort(bumping_.begin(), bumping_.end());
    bumping_.erase(std::unique(bumping_.begin(), bumping_.end()), bumping_.end());
    return bumping_all_ || !bumping_.empty();
}

asio::awaitable<void> MysqlSession::bump_collected() {
    // What a result must reflect to be cached under the new versions: this write, known by
    // the watermark version its OK advanced (acknowledged() ran before this), or, when the
    // primary reports no GTIDs, nothing a replica can prove: the primary's answers only.
    const bool tracked = backends_[primary_slot].tracks_gtid;
    const std::uint64_t needs = tracked ? worker_.shared().acked.version() : primary_only;
    CacheShared& cs = worker_.shared().cache;
    if (cs.binlog && tracked && !bumping_all_ && !last_gtid_.empty()) {
        std::vector<std::string> names;
        names.reserve(bumping_.size());
        for (const cache::TableState* t : bumping_)
            names.push_back(t->name());
        cs.bumped_at_ok(last_gtid_, std::move(names));
    }
    co_await worker_.cache().bump(bumping_, bumping_all_, needs,
                                  tracked ? std::string_view(last_gtid_) : std::string_view());
}

} // namespace sluice
