// The result cache in a TDS session (issue #11, DESIGN.md "Caching contract"): the same
// layer, versions and rules as MySQL's (mysql_cache.cpp), with TDS's own key, payloads and
// table names. A cached answer is the token stream a backend sent (packet headers removed),
// replayed in packets of the client's size. Table versions are named `tds:<db>.<table>`
// (SQL Server's tables are not the MySQL backends' tables), and `tds:*` stands for "any
// TDS table" when a write's tables are unknown (EXEC of a procedure).
//
// Freshness: SQL Server has no GTID, so an answer from a secondary is stored only when the
// monitor has seen that secondary redo the newest commit LSN of any TDS write through this
// Sluice (or, outside an availability group, when its lag is shorter than the time since
// that write). Writes that do not pass through Sluice are not seen (no binary log to
// follow): the TTL bounds them.

#include "sluice/pool/tds_monitor.hpp"
#include "sluice/protocol/tds/packet.hpp"
#include "sluice/router/tsql.hpp"
#include "tds_session.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace sluice {

namespace ptds = protocol::tds;
using clock = std::chrono::steady_clock;

namespace {

/// `tds:<db>.<table>`: a three-part name's database, else the session's.
std::string version_name(const router::TableName& t, std::string_view database) {
    std::string out = "tds:";
    if (!t.schema.empty()) {
        out += t.schema;
    } else {
        for (const char ch : database)
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    out += '.';
    out += t.table;
    return out;
}

constexpr std::string_view any_tds_table = "tds:*";

} // namespace

std::string TdsSession::cache_settings() const {
    // What changes an answer's bytes besides the statement: the TDS version (token layouts),
    // the login's language, and every SET the session made (replayed as text).
    std::string out = std::to_string(tds_version_);
    out += '\n';
    out += login_.language;
    const auto plan = state_.replay_since(0, std::string_view{});
    out += '\n';
    out += router::tsql::replay_batch(plan);
    return out;
}

bool TdsSession::plan_read(const router::Classification& c, std::string_view text,
                           std::optional<Bytes> params) {
    cache_plan_.active = false;
    CacheShared& cs = worker_.shared().cache;
    if (!cs.enabled || c.cls != router::StatementClass::read ||
        c.hint.cache == router::Hint::Cache::nocache)
        return false;
    std::string digest;
    const auto choice = cache_choice(
        cs, worker_.shared().cfg.cache.default_ttl, c.hint,
        [&]() -> const std::string& {
            digest = router::tsql::digest(text);
            return digest;
        },
        login_.user_name, state_.database());
    if (!choice) return false;
    auto bypass = [this](CacheBypass why) {
        count_cache_bypass(worker_.stats(), why);
        return false;
    };
    const auto& f = c.flags;
    if (f.multi_statement || f.non_deterministic || f.locking_read || f.select_into ||
        f.primary_function || f.reads_diagnostics || f.reads_catalog || f.bad_syntax ||
        f.runs_hidden_statements || f.creates_temp_table || f.opens_handler ||
        (f.reads_user_variable && !params))
        return bypass(CacheBypass::not_deterministic);
    if (!cs.usable()) return bypass(CacheBypass::redis);
    const router::TableRefs refs = router::tsql::tables_read(text);
    if (!refs.complete) return bypass(CacheBypass::tables_unknown);

    WorkerCache& wc = worker_.cache();
    std::vector<std::string> names;
    names.reserve(refs.tables.size());
    for (const router::TableName& t : refs.tables)
        names.push_back(version_name(t, state_.database()));
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    std::vector<cache::TableVersion> versions;
    versions.push_back({cache::all_tables, cs.versions.all().version()});
    versions.push_back({any_tds_table, wc.version(any_tds_table).version()});
    for (const std::string& name : names)
        versions.push_back({name, wc.version(name).version()});

    const std::string settings = cache_settings();
    cache::KeyInput in;
    in.protocol = cache::Protocol::tds;
    in.user = login_.user_name;
    in.shared = choice->shared;
    in.database = state_.database();
    in.statement = text;
    in.settings = settings;
    in.params = params;
    in.tables = versions;
    cache_plan_.key = cache::make_key(in);
    cache_plan_.ttl = choice->ttl;
    // For GET /cache's hottest digests (a hinted read has not made one yet).
    if (digest.empty()) digest = router::tsql::digest(text);
    cache_plan_.digest = std::move(digest);
    cache_plan_.active = true;
    capture_.clear();
    capture_ok_ = true;
    return true;
}

asio::awaitable<std::optional<bool>> TdsSession::serve_cached() {
    WorkerCache& wc = worker_.cache();
    const cache::Key key = cache_plan_.key;
    cache::L1::Value value = wc.l1().get(key, clock::now());
    WorkerStats& st = worker_.stats();
    CacheLayer layer = CacheLayer::l1;
    if (!value) {
        st.count_cache(CacheLayer::l1, CacheResult::miss);
        if (!wc.has_l2()) {
            wc.count_digest(cache_plan_.digest, false);
            co_return std::nullopt;
        }
        const auto entry = co_await wc.l2_get(key);
        if (closing_) co_return false;
        if (!entry || !entry->value) {
            st.count_cache(CacheLayer::l2, entry ? CacheResult::miss : CacheResult::bypass);
            wc.count_digest(cache_plan_.digest, false);
            co_return std::nullopt;
        }
        value = entry->value;
        layer = CacheLayer::l2;
        wc.l1().put(key, value, entry->expires);
    }
    st.count_cache(layer, CacheResult::hit);
    wc.count_digest(cache_plan_.digest, true);
    cache_plan_.active = false;
    const Bytes payload(reinterpret_cast<const std::uint8_t*>(value->data()), value->size());
    const error_code ec = co_await send_client(ptds::PacketType::tabular_result, payload);
    co_return !ec;
}

void TdsSession::proven_before_send(std::size_t backend) {
    // Evidence older than the read only: a reading the monitor makes while the read runs
    // says nothing of the snapshot the read saw.
    cache_plan_.reflects = true;
    const auto primary = worker_.tds_topology().primary;
    if (primary && *primary == backend) return;
    std::string lsn;
    clock::time_point at{};
    {
        auto& acked = worker_.shared().tds_acked;
        const std::lock_guard lock(acked.mutex);
        lsn = acked.lsn;
        at = acked.at;
    }
    const auto& t = worker_.tds_topology();
    if (backend >= t.backends.size()) {
        cache_plan_.reflects = false;
        return;
    }
    const auto& b = t.backends[backend];
    if (!lsn.empty())
        cache_plan_.reflects = pool::compare_lsn(b.gtid_position, lsn) >= 0;
    else if (at != clock::time_point{})
        cache_plan_.reflects = b.lag && *b.lag < clock::now() - at;
}

void TdsSession::fill_cache(const ptds::TokenScanner& scan) {
    if (!cache_plan_.active) return;
    cache_plan_.active = false;
    WorkerStats& st = worker_.stats();
    // Only a clean answer: no error, no change of database or transaction, complete.
    if (!capture_ok_ || scan.state() != ptds::TokenScanner::State::done ||
        scan.error_count() != 0 || scan.done_error() || !scan.env_changes().empty() ||
        scan.attention_acked()) {
        st.cache_uncacheable.add();
        return;
    }
    if (!cache_plan_.reflects) {
        // No stale populate: the secondary had not redone the newest TDS write this Sluice
        // acknowledged (whose bump made the versions in the key) when the read was sent.
        st.cache_stale_refused.add();
        return;
    }
    // The packets' payloads, in order: the token stream.
    std::string blob;
    blob.reserve(capture_.size());
    for (std::size_t at = 0; at + ptds::header_size <= capture_.size();) {
        const std::size_t len = (std::size_t{capture_[at + 2]} << 8) | capture_[at + 3];
        if (len < ptds::header_size || at + len > capture_.size()) return;
        blob.append(reinterpret_cast<const char*>(capture_.data() + at + ptds::header_size),
                    len - ptds::header_size);
        at += len;
    }
    capture_.clear();
    WorkerCache& wc = worker_.cache();
    const auto now = clock::now();
    auto value = std::make_shared<const std::string>(std::move(blob));
    wc.l1().put(cache_plan_.key, value, now + cache_plan_.ttl);
    wc.l2_put(cache_plan_.key, std::move(value), cache_plan_.ttl);
    st.cache_fills.add();
    st.l1_bytes.set(wc.l1().bytes());
    st.l1_entries.set(wc.l1().size());
    st.l1_evictions.set(wc.l1().evictions());
}

void TdsSession::plan_write(std::optional<std::string_view> text) {
    if (!worker_.shared().cache.enabled) return;
    WorkerCache& wc = worker_.cache();
    hold_tail_ = true;
    const router::TableRefs refs = text ? router::tsql::tables_written(*text) : router::TableRefs{};
    if (!refs.complete) {
        bump_.push_back(&wc.version(any_tds_table));
        return;
    }
    for (const router::TableName& t : refs.tables)
        bump_.push_back(&wc.version(version_name(t, state_.database())));
}

asio::awaitable<void> TdsSession::bump_planned(bool transaction_ended) {
    // Inside a transaction the tables are bumped now and again at its end (a read filled
    // from the primary meanwhile saw the data before the commit).
    if (tx_backend_) tx_written_.insert(tx_written_.end(), bump_.begin(), bump_.end());
    if (transaction_ended) {
        bump_.insert(bump_.end(), tx_written_.begin(), tx_written_.end());
        tx_written_.clear();
    }
    if (bump_.empty()) co_return;
    std::sort(bump_.begin(), bump_.end());
    bump_.erase(std::unique(bump_.begin(), bump_.end()), bump_.end());
    const std::vector<cache::TableState*> tables = std::move(bump_);
    bump_.clear();
    // The commit LSN goes with the bump: other Sluices store no secondary's answer that
    // has not redone it.
    const std::string tagged = std::string(tds_write_tag) + write_lsn_;
    co_await worker_.cache().bump(tables, false, 0, tagged);
}

} // namespace sluice
