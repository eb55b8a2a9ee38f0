// Read/write splitting inside a MySQL session (issue #3): where each statement runs, the
// session state replayed on the backend that runs it, read-your-writes waits, pins, and
// prepared statements with one client id over several backends.

#include "mysql_session.hpp"
#include "sluice/protocol/mysql/packet.hpp"
#include "sluice/router/rewrite.hpp"
#include "sluice/router/route.hpp"

#include <algorithm>
#include <spdlog/spdlog.h>

namespace sluice {

namespace mysql = protocol::mysql;
using mysql::ResponseKind;
using router::Destination;
using router::RouteReason;
using router::StatementClass;

namespace {

std::string_view text_of(Bytes payload) {
    return {reinterpret_cast<const char*>(payload.data()) + 1, payload.size() - 1};
}

std::uint32_t get_u32(std::span<const std::uint8_t> p, std::size_t at) {
    return std::uint32_t{p[at]} | (std::uint32_t{p[at + 1]} << 8) |
           (std::uint32_t{p[at + 2]} << 16) | (std::uint32_t{p[at + 3]} << 24);
}

void put_u32(std::span<std::uint8_t> p, std::size_t at, std::uint32_t v) {
    for (std::size_t i = 0; i < 4; ++i)
        p[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

bool contains_nocase(std::string_view text, std::string_view word) {
    return std::search(text.begin(), text.end(), word.begin(), word.end(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(b));
           }) != text.end();
}

/// Whether the value of an assignment `name = value` (as a SessionChange holds it) turns a
/// boolean variable on: 1, ON, TRUE, quoted or not. Anything else (0, OFF, DEFAULT, an
/// expression) reads as off.
bool assigns_true(std::string_view assignment) {
    const auto eq = assignment.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view v = assignment.substr(eq + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\'' || v.front() == '"'))
        v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\'' || v.back() == '"'))
        v.remove_suffix(1);
    const auto is = [v](std::string_view word) {
        return v.size() == word.size() && contains_nocase(v, word);
    };
    return is("1") || is("on") || is("true");
}

/// Character sets whose multi-byte characters may contain 0x5C ('\'): text in them cannot
/// be lexed byte by byte, so such sessions stay on the primary.
bool lexer_unsafe(std::string_view charset_text) {
    for (std::string_view cs : {"big5", "cp932", "gbk", "sjis", "gb18030"}) {
        if (contains_nocase(charset_text, cs)) return true;
    }
    return false;
}

bool lexer_unsafe(std::uint8_t collation) {
    // big5 (1, 84), sjis (13, 88), gbk (28, 87), cp932 (95, 96), gb18030 (248-250).
    switch (collation) {
    case 1:
    case 84:
    case 13:
    case 88:
    case 28:
    case 87:
    case 95:
    case 96:
    case 248:
    case 249:
    case 250:
        return true;
    default:
        return false;
    }
}

std::string sql_string(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'' || c == '\\')
            out += c == '\'' ? "''" : "\\\\";
        else
            out += c;
    }
    out += '\'';
    return out;
}

/// The first column of the first row of a text result set, or nullopt (no row, NULL).
std::optional<std::string> first_value(const std::vector<std::vector<std::uint8_t>>& packets,
                                       bool deprecate_eof) {
    if (packets.empty() || packets[0].empty()) return std::nullopt;
    const std::size_t columns = packets[0][0]; // a handful of columns: one-byte length
    const std::size_t row = 1 + columns + (deprecate_eof ? 0 : 1);
    if (row >= packets.size()) return std::nullopt;
    const auto& p = packets[row];
    if (p.empty() || p[0] >= 0xFB || p.size() < 1u + p[0]) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(p.data()) + 1, p[0]);
}

struct KillRequest {
    bool query = false;
    std::uint64_t target = 0;
};

/// `KILL [HARD|SOFT] [CONNECTION | QUERY [ID]] n` (plain form only: with comments, `KILL
/// USER` or an expression it is left to the server).
std::optional<KillRequest> parse_kill(std::string_view sql) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < sql.size()) {
        while (i < sql.size() &&
               (std::isspace(static_cast<unsigned char>(sql[i])) || sql[i] == ';'))
            ++i;
        const std::size_t start = i;
        while (i < sql.size() && !std::isspace(static_cast<unsigned char>(sql[i])) && sql[i] != ';')
            ++i;
        if (i > start) words.push_back(sql.substr(start, i - start));
        if (words.size() > 5) return std::nullopt;
    }
    auto is = [](std::string_view w, std::string_view kw) {
        return w.size() == kw.size() && contains_nocase(w, kw);
    };
    std::size_t w = 0;
    if (words.empty() || !is(words[w++], "KILL")) return std::nullopt;
    KillRequest k;
    if (w < words.size() && (is(words[w], "HARD") || is(words[w], "SOFT"))) ++w;
    if (w < words.size() && is(words[w], "CONNECTION")) {
        ++w;
    } else if (w < words.size() && is(words[w], "QUERY")) {
        k.query = true;
        ++w;
        if (w < words.size() && is(words[w], "ID")) ++w;
    }
    if (w + 1 != words.size() || words[w].size() > 10) return std::nullopt;
    for (char ch : words[w]) {
        if (ch < '0' || ch > '9') return std::nullopt;
        k.target = k.target * 10 + static_cast<std::uint64_t>(ch - '0');
    }
    return k;
}

} // namespace

// ---- where a statement runs ----

router::SessionView MysqlSession::view() const noexcept {
    router::SessionView v;
    const Backend& p = backends_[primary_slot];
    const Backend& r = backends_[replica_slot];
    const bool primary_trx = p.in_trans();
    const bool replica_trx = r.conn && (r.conn->status() & mysql::status::in_trans);
    v.in_transaction = primary_trx || replica_trx;
    v.read_only_transaction = replica_trx && !primary_trx;
    v.pinned = temp_tables_ || lock_tables_ || found_rows_pending_ || unreplayable_variable_ ||
               lexer_unsafe_charset_ || lexer_unsafe(charset_) || wrote_untracked_ ||
               user_locks_ > 0 || handlers_ > 0;
    v.last_on_replica = last_on_replica_ && r.conn != nullptr;
    v.user_variables_on_primary = user_variables_hidden_;
    v.auto_is_null = auto_is_null_;
    v.user = user_;
    v.schema = database_;
    return v;
}

bool MysqlSession::replica_usable(std::size_t index,
                                  std::chrono::steady_clock::time_point now) const noexcept {
    if (worker_.shared().backends[index]->skipped(now)) return false;
    if (refused_version_ == state_version_ && ((refused_by_ >> index) & 1)) return false;
    return index != lagging_replica_ || now >= lagging_until_;
}

bool MysqlSession::replica_possible() const noexcept {
    const Shared& shared = worker_.shared();
    if (shared.replica_indexes.empty() || replica_refused_version_ == state_version_) return false;
    if (backends_[replica_slot].conn) return true;
    const auto now = std::chrono::steady_clock::now();
    return std::any_of(shared.replica_indexes.begin(), shared.replica_indexes.end(),
                       [&](std::size_t i) { return replica_usable(i, now); });
}

asio::awaitable<MysqlSession::Slot> MysqlSession::choose(const router::Classification& c,
                                                         std::string_view digest,
                                                         router::Route& route,
                                                         bool wait_for_writes) {
    const Shared& shared = worker_.shared();
    if (retrack_) {
        // The client set its own tracked variables: add the GTID back before anything runs.
        retrack_ = false;
        co_await track_gtids();
    }
    route = router::decide_route(c, digest, view(), shared.rules, replica_possible());
    spdlog::debug("{} {} statement: {} ({})", prefix(), router::statement_class_name(c.cls),
                  route.destination == Destination::replica ? "replica" : "primary",
                  router::route_reason_name(route.reason));
    if (route.destination == Destination::refuse) co_return primary_slot;
    if (route.destination == Destination::replica) {
        const bool ready = co_await ensure_replica();
        if (!ready) {
            route = {Destination::primary, RouteReason::no_replica};
        } else if (!wait_for_writes || backends_[replica_slot].in_trans()) {
            co_return replica_slot;
        } else {
            const bool caught_up = co_await causal_wait();
            if (caught_up) co_return replica_slot;
            route = {Destination::primary, RouteReason::read_your_writes};
        }
    }
    co_await sync_state(primary_slot);
    co_return primary_slot;
}

asio::awaitable<bool> MysqlSession::ensure_replica() {
    // A session being closed starts nothing new, and its failures say nothing of a replica.
    if (closed_) co_return false;
    Shared& shared = worker_.shared();
    Backend& r = backends_[replica_slot];
    if (r.conn && unusable(r)) {
        // The replica closed this session's connection (its timeouts, a statement it
        // refused): this session reconnects; the replica is not at fault for anyone else.
        spdlog::debug("{} replica connection closed; reconnecting", prefix());
        drop_slot(replica_slot);
        publish_threads();
    }
    if (!r.conn) {
        const std::size_t n = shared.replica_indexes.size();
        for (std::size_t tries = 0; tries < n && !r.conn; ++tries) {
            const std::size_t index =
                shared.replica_indexes[shared.next_replica.fetch_add(1, std::memory_order_relaxed) %
                                       n];
            BackendShared& bs = *shared.backends[index];
            const auto now = std::chrono::steady_clock::now();
            if (!replica_usable(index, now)) continue;
            auto [conn, failure] = co_await open_backend(index, false);
            if (!conn) {
                const std::uint16_t code =
                    failure.server_error ? failure.server_error->code : std::uint16_t{0};
                // Refusals of the server as a whole (too many connections, this host
                // blocked or not allowed) skip it for everyone, like a server that is down.
                if (failure.server_error && code != 1040 && code != 1129 && code != 1130) {
                    // It refused this session (its user or database is missing or locked
                    // there): this session tries the other replicas, and this one again once
                    // its state changes.
                    spdlog::warn("{} replica {} refused the session's login ({}): trying "
                                 "another",
                                 prefix(), bs.endpoint.name, code);
                    spdlog::debug("{} replica {}: {}", prefix(), bs.endpoint.name,
                                  failure.server_error->message);
                    if (refused_version_ != state_version_) refused_by_ = 0;
                    refused_version_ = state_version_;
                    refused_by_ |= std::uint64_t{1} << index;
                    continue;
                }
                spdlog::warn("{} cannot reach replica {} ({}:{}): {}; skipped for {} ms", prefix(),
                             bs.endpoint.name, bs.endpoint.host, bs.endpoint.port,
                             failure.ec.message(), shared.cfg.routing.replica_retry.count());
                bs.skip_for(now, shared.cfg.routing.replica_retry);
                continue;
            }
            r.conn = std::move(conn);
            r.index = index;
            r.synced = 0;
            r.database = database_;
            r.gtid_seen.clear();
            r.generation = next_generation_++;
            r.mariadb = r.conn->greeting().server_version.find("MariaDB") != std::string::npos;
            r.strip_tracking = r.tracks_gtid = false;
            publish_threads();
        }
        if (!r.conn) co_return false;
    }
    co_return co_await sync_state(replica_slot);
}

asio::awaitable<bool> MysqlSession::sync_state(Slot slot) {
    if (slot == primary_slot) co_await revive_primary();
    Backend& b = backends_[slot];
    if (!b.conn || b.synced == state_version_) co_return true;
    auto fail = [&](std::string_view what) {
        if (slot == replica_slot) {
            // The server's message can quote the session's values: debug only.
            spdlog::warn("{} replica {} cannot take the session's state: reads go to the "
                         "primary",
                         prefix(), worker_.shared().backends[b.index]->endpoint.name);
            spdlog::debug("{} replica state replay: {}", prefix(), what);
            replica_refused_version_ = state_version_;
            drop_slot(replica_slot);
        } else {
            spdlog::warn("{} primary did not take the session's state", prefix());
            spdlog::debug("{} primary state replay: {}", prefix(), what);
            b.synced = state_version_;
        }
    };
    auto run = [&](std::string_view sql, ResponseKind kind) -> asio::awaitable<bool> {
        auto reply = co_await exchange(
            slot, {reinterpret_cast<const std::uint8_t*>(sql.data()), sql.size()}, kind);
        if (!reply) {
            fail("connection lost");
            co_return false;
        }
        if (reply->error) {
            fail(reply->err.message);
            co_return false;
        }
        co_return true;
    };
    if (!database_.empty() && b.database != database_) {
        std::string init = "\x02" + database_;
        const bool done = co_await run(init, ResponseKind::single);
        if (!done) co_return slot == primary_slot;
        b.database = database_;
    }
    std::string sql;
    for (const Assignment& a : assignments_) {
        if (a.version <= b.synced) continue;
        if (a.standalone) {
            const bool done = co_await run("\x03SET " + a.text, ResponseKind::query);
            if (!done) co_return slot == primary_slot;
            continue;
        }
        sql += sql.empty() ? "\x03SET " : ", ";
        sql += a.text;
    }
    if (!sql.empty()) {
        const bool done = co_await run(sql, ResponseKind::query);
        if (!done) co_return slot == primary_slot;
    }
    b.synced = state_version_;
    co_return true;
}

asio::awaitable<bool> MysqlSession::causal_wait() {
    const Shared& shared = worker_.shared();
    Backend& r = backends_[replica_slot];
    if (!shared.cfg.routing.read_your_writes || last_gtid_.empty() || r.gtid_seen == last_gtid_)
        co_return true;
    const double seconds =
        std::chrono::duration<double>(shared.cfg.routing.causal_read_timeout).count();
    const std::string sql = fmt::format(
        "\x03SELECT {}({}, {:.3f})", r.mariadb ? "MASTER_GTID_WAIT" : "WAIT_FOR_EXECUTED_GTID_SET",
        sql_string(last_gtid_), seconds);
    auto reply = co_await exchange(replica_slot,
                                   {reinterpret_cast<const std::uint8_t*>(sql.data()), sql.size()},
                                   ResponseKind::query);
    auto& waits = worker_.stats().causal_waits;
    if (!reply || reply->error) {
        waits[static_cast<std::size_t>(CausalWait::error)].add();
        if (!reply)
            replica_failed("connection lost", false);
        else
            spdlog::debug("{} read-your-writes wait failed: {}", prefix(), reply->err.message);
        co_return false;
    }
    const bool deprecate_eof = (client_caps_ & mysql::cap::deprecate_eof) != 0;
    if (first_value(reply->packets, deprecate_eof) == "0") {
        waits[static_cast<std::size_t>(CausalWait::ok)].add();
        r.gtid_seen = last_gtid_;
        co_return true;
    }
    waits[static_cast<std::size_t>(CausalWait::timeout)].add();
    // Behind this session's write, not broken: only this session looks elsewhere for a
    // while; other sessions, which have not written, still read there.
    lagging_replica_ = r.index;
    lagging_until_ = std::chrono::steady_clock::now() + shared.cfg.routing.replica_retry;
    spdlog::debug("{} replica {} had not applied the session's last write in time", prefix(),
                  shared.backends[r.index]->endpoint.name);
    replica_failed("behind the session's last write", false);
    co_return false;
}

void MysqlSession::replica_failed(const char* why, bool skip) noexcept {
    Backend& r = backends_[replica_slot];
    if (r.conn && skip) {
        const Shared& shared = worker_.shared();
        BackendShared& bs = *shared.backends[r.index];
        bs.skip_for(std::chrono::steady_clock::now(), shared.cfg.routing.replica_retry);
        spdlog::info("{} replica {}: {}; skipped for {} ms", prefix(), bs.endpoint.name, why,
                     shared.cfg.routing.replica_retry.count());
    }
    drop_slot(replica_slot);
    last_on_replica_ = false;
    try {
        publish_threads();
    } catch (const std::exception&) {
        // The registry keeps the old thread id: a later KILL of it finds no such thread.
    }
}

void MysqlSession::count_statement(const router::Classification& c, const router::Route& r,
                                   Slot s) noexcept {
    WorkerStats& st = worker_.stats();
    st.statements[static_cast<std::size_t>(c.cls)].add();
    st.routes[static_cast<std::size_t>(r.reason)].add();
    st.backend_statements[backends_[s].index].add();
}

std::optional<std::string> MysqlSession::own_connection_id(const router::Classification& c,
                                                           std::string_view sql) const {
    // Both functions set primary_function; only then is the text searched.
    if (!c.flags.primary_function ||
        (!contains_nocase(sql, "connection_id") && !contains_nocase(sql, "is_used_lock")))
        return std::nullopt;
    return router::rewrite_connection_id(sql, sql_mode_, connection_id_);
}

// ---- what a statement did to the session ----

void MysqlSession::record(std::string key, std::string text, bool standalone,
                          std::uint64_t version) {
    // The latest assignment of a key replaces the earlier one and moves to the end, so the
    // replay order keeps the effect of the order the client used.
    std::erase_if(assignments_, [&](const Assignment& a) { return a.key == key; });
    assignments_.push_back({std::move(key), std::move(text), version, standalone});
}

void MysqlSession::after_statement(const router::Classification& c, Slot slot) {
    using Kind = router::SessionChange::Kind;
    const std::uint64_t next = state_version_ + 1;
    bool changed = false;
    if (c.flags.has_placeholder && !c.session_changes.empty()) {
        // A prepared SET of `?`: the value is in the execute's binary parameters, not in the
        // text, so the text cannot be replayed; the primary keeps the session.
        unreplayable_variable_ = true;
        return;
    }
    if (c.cls == StatementClass::use && !c.use_database.empty()) {
        database_ = c.use_database;
        backends_[slot].database = database_;
        changed = true;
    }
    if (!c.global_set) {
        for (const auto& ch : c.session_changes) {
            switch (ch.kind) {
            case Kind::autocommit:
            case Kind::transaction_next:
                // The primary's status flags say whether a transaction is open; replicas stay
                // in autocommit. SET TRANSACTION applies to the next transaction only.
                continue;
            case Kind::user_variable:
                if (!ch.value_is_constant) {
                    // Replaying an expression would compute it again elsewhere: the value
                    // lives on the primary, and so does the session from now on.
                    unreplayable_variable_ = true;
                    continue;
                }
                record("@" + ch.name, ch.text, false, next);
                break;
            case Kind::names:
            case Kind::character_set:
                if (lexer_unsafe(ch.text)) lexer_unsafe_charset_ = true;
                record("names", ch.text, false, next);
                break;
            case Kind::system_variable:
                if (ch.name == "sql_mode") sql_mode_.ansi_quotes = contains_nocase(ch.text, "ansi");
                if (ch.name == "session_track_system_variables" || ch.name == "session_track_gtids")
                    retrack_ = backends_[primary_slot].tracks_gtid;
                if (ch.name.starts_with("character_set") && lexer_unsafe(ch.text))
                    lexer_unsafe_charset_ = true;
                if (ch.name == "sql_auto_is_null") auto_is_null_ = assigns_true(ch.text);
                record(ch.name, ch.text, false, next);
                break;
            case Kind::transaction_isolation:
                record(ch.name, ch.text, true, next);
                break;
            case Kind::role:
                record("role", ch.text, true, next);
                break;
            }
            changed = true;
        }
    }
    if (changed) {
        // The backend that ran the statement has the new state already.
        Backend& ran = backends_[slot];
        const bool was_synced = ran.synced == state_version_;
        state_version_ = next;
        if (was_synced) ran.synced = state_version_;
    }

    const auto& f = c.flags;
    if (f.creates_temp_table) temp_tables_ = true;
    if (f.takes_user_lock) ++user_locks_;
    if (f.releases_user_lock && user_locks_ > 0) --user_locks_;
    if (c.cls == StatementClass::lock_tables) lock_tables_ = true;
    if (c.cls == StatementClass::unlock_tables) lock_tables_ = false;
    if (f.calc_found_rows)
        found_rows_pending_ = true;
    else if (f.found_rows)
        found_rows_pending_ = false;
    if (f.opens_handler) ++handlers_;
    if (f.closes_handler && handlers_ > 0) --handlers_;
    if (f.assigns_user_variable) unreplayable_variable_ = true;

    if (slot == primary_slot && backends_[primary_slot].conn) {
        const Backend& p = backends_[primary_slot];
        sql_mode_.no_backslash_escapes =
            (p.conn->status() & mysql::status::no_backslash_escapes) != 0;
        // Without GTIDs from the primary, a session that wrote reads from the primary.
        const Shared& shared = worker_.shared();
        if (!p.tracks_gtid && shared.cfg.routing.read_your_writes &&
            !shared.replica_indexes.empty() && c.cls != StatementClass::read &&
            c.cls != StatementClass::session_set && c.cls != StatementClass::use)
            wrote_untracked_ = true;
    }
}

void MysqlSession::reset_session_state() noexcept {
    assignments_.clear();
    ++state_version_;
    replica_refused_version_ = 0;
    temp_tables_ = lock_tables_ = found_rows_pending_ = unreplayable_variable_ = false;
    user_variables_hidden_ = auto_is_null_ = false;
    lexer_unsafe_charset_ = false;
    user_locks_ = handlers_ = 0;
    statements_.clear();
    sql_mode_ = {};
    last_on_replica_ = false;
}

void MysqlSession::forget_primary_state() noexcept {
    // The assignments stay: they are replayed on the next connection like anywhere else.
    temp_tables_ = lock_tables_ = found_rows_pending_ = unreplayable_variable_ = false;
    user_variables_hidden_ = false;
    user_locks_ = handlers_ = 0;
}

// ---- text protocol ----

asio::awaitable<bool> MysqlSession::on_query(const mysql::MessageFrame& frame) {
    // A statement of 16 MiB or more arrives in several packets. It is not copied into one
    // piece to be classified (that would hold it twice): it goes to the primary as written,
    // like any statement Sluice cannot classify.
    const bool multi_packet = frame.packets > 1;
    const std::string_view sql =
        multi_packet ? std::string_view{}
                     : text_of(mysql::assemble_payload(cbuf_.readable(), frame, scratch_));
    if (sql.size() < 64) {
        if (auto k = parse_kill(sql); k && k->target >= SessionRegistry::first_id) {
            cbuf_.consume(frame.wire_size);
            co_return co_await on_kill(frame, k->query, k->target);
        }
    }
    router::Classification c; // StatementClass::unknown: the primary
    if (!multi_packet) c = router::classify(sql, sql_mode_);
    std::string digest;
    if (!worker_.shared().rules.empty()) digest = router::digest(sql, sql_mode_).text;

    router::Route route;
    Slot slot = co_await choose(c, digest, route, true);
    if (route.destination == Destination::refuse) {
        cbuf_.consume(frame.wire_size);
        worker_.stats().statements[static_cast<std::size_t>(c.cls)].add();
        worker_.stats().routes[static_cast<std::size_t>(route.reason)].add();
        co_return co_await send_error(frame.next_seq, route.rule->error_code, "HY000",
                                      route.rule->error_message);
    }
    std::span<const std::uint8_t> request = cbuf_.readable().first(frame.wire_size);
    if (auto own = own_connection_id(c, sql)) {
        own->insert(own->begin(), '\x03');
        wire_.clear();
        mysql::write_packets({reinterpret_cast<const std::uint8_t*>(own->data()), own->size()}, 0,
                             wire_);
        request = wire_;
    }
    Relay r;
    if (slot == primary_slot) {
        // Consumed before the answer: LOAD DATA LOCAL INFILE reads the file from what follows.
        cbuf_.consume(frame.wire_size); // the bytes stay in place until the next read
        r = co_await forward(slot, request, ResponseKind::query);
    } else {
        // A read stays in the buffer until answered, for a retry on the primary if the replica
        // goes away before answering.
        r = co_await forward(slot, request, ResponseKind::query);
        if (r == Relay::backend_lost && relayed_ == 0) {
            replica_failed("connection lost", false);
            slot = primary_slot;
            route = {Destination::primary, RouteReason::no_replica};
            co_await sync_state(primary_slot);
            r = co_await forward(slot, request, ResponseKind::query);
        }
        cbuf_.consume(frame.wire_size);
    }
    count_statement(c, route, slot);
    if (r != Relay::ok) co_return co_await relay_failed(slot, r, frame.next_seq);
    // Even a CALL that failed half-way may have set variables before it failed.
    if (c.flags.runs_hidden_statements) user_variables_hidden_ = true;
    if (!scanner_.ended_with_error()) after_statement(c, slot);
    last_on_replica_ = slot == replica_slot;
    const bool implicit_commit = c.cls == StatementClass::ddl || c.cls == StatementClass::other ||
                                 c.cls == StatementClass::lock_tables ||
                                 c.cls == StatementClass::unlock_tables;
    if (slot == primary_slot && route.reason == RouteReason::transaction && implicit_commit &&
        view().read_only_transaction && !scanner_.ended_with_error()) {
        // DDL, FLUSH, LOCK TABLES and the like, which the primary ran for a read-only
        // transaction on the replica, commit a transaction implicitly on a server: so does
        // Sluice, on the replica where that transaction lives.
        // COM_QUERY (0x03) "COMMIT"; the command byte is its own literal: "\x03C" would be
        // one hex escape.
        static constexpr std::string_view commit = "\x03"
                                                   "COMMIT";
        const auto reply = co_await exchange(
            replica_slot, {reinterpret_cast<const std::uint8_t*>(commit.data()), commit.size()},
            ResponseKind::query);
        if (!reply) replica_failed("connection lost", false);
    }
    co_return true;
}

asio::awaitable<bool> MysqlSession::on_init_db(const mysql::MessageFrame& frame) {
    std::string db{text_of(mysql::assemble_payload(cbuf_.readable(), frame, scratch_))};
    co_await sync_state(primary_slot);
    const Outcome outcome = co_await primary_command(frame, ResponseKind::single);
    if (outcome != Outcome::answered) co_return outcome != Outcome::end;
    if (!scanner_.ended_with_error()) {
        router::Classification use;
        use.cls = StatementClass::use;
        use.use_database = std::move(db);
        after_statement(use, primary_slot);
    }
    co_return true;
}

asio::awaitable<bool> MysqlSession::on_reset_connection(const mysql::MessageFrame& frame) {
    // Bound to a local first: GCC 12.2 drops the resume point of a co_await in an `if`
    // condition of a coroutine without locals (PR106188), and this one crashed with SIGILL.
    const Outcome outcome = co_await primary_command(frame, ResponseKind::single);
    if (outcome != Outcome::answered) co_return outcome != Outcome::end;
    if (!scanner_.ended_with_error()) {
        // The server forgot the session's state and prepared statements; the replica
        // connection goes, so no state is left behind there either.
        drop_slot(replica_slot);
        reset_session_state();
        login_sql_mode_gone_ = true;
        Backend& p = backends_[primary_slot];
        p.synced = state_version_;
        publish_threads();
        // The server also forgot the session tracking that reports each write's GTID:
        // without it read-your-writes would silently stop.
        if (p.tracks_gtid) {
            p.tracks_gtid = false;
            const bool alive = co_await track_gtids();
            if (!alive) drop_slot(primary_slot);
        }
    }
    co_return true;
}

// ---- prepared statements ----

asio::awaitable<std::optional<MysqlSession::Reply>> MysqlSession::prepare_on(Prepared& ps,
                                                                             Slot slot) {
    const std::string request = "\x16" + ps.sql;
    auto reply = co_await exchange(
        slot, {reinterpret_cast<const std::uint8_t*>(request.data()), request.size()},
        ResponseKind::prepare);
    if (reply && !reply->error) {
        ps.params = scanner_.prepare_params();
        ps.id[slot] = scanner_.statement_id();
        ps.generation[slot] = backends_[slot].generation;
        ps.types_sent[slot] = false;
    }
    co_return reply;
}

asio::awaitable<bool> MysqlSession::ensure_prepared(Prepared& ps, Slot slot) {
    if (ps.on(slot, backends_[slot])) co_return true;
    auto reply = co_await prepare_on(ps, slot);
    if (!reply) {
        last_error_ = {mysql::er::net_read_error, "08S01", "Lost connection to backend"};
        co_return false;
    }
    if (reply->error) {
        last_error_ = reply->err;
        co_return false;
    }
    co_return true;
}

asio::awaitable<bool> MysqlSession::on_prepare(const mysql::MessageFrame& frame) {
    const auto payload = mysql::assemble_payload(cbuf_.readable(), frame, scratch_);
    Prepared ps;
    ps.sql = text_of(payload);
    cbuf_.consume(frame.wire_size);
    ps.cls = router::classify(ps.sql, sql_mode_);
    if (!worker_.shared().rules.empty()) ps.digest = router::digest(ps.sql, sql_mode_).text;
    if (auto own = own_connection_id(ps.cls, ps.sql)) ps.sql = std::move(*own);

    // Prepared where its executions will most likely run.
    router::Route route;
    Slot slot = co_await choose(ps.cls, ps.digest, route, false);
    if (route.destination == Destination::refuse)
        co_return co_await send_error(frame.next_seq, route.rule->error_code, "HY000",
                                      route.rule->error_message);
    auto reply = co_await prepare_on(ps, slot);
    if (slot == replica_slot && (!reply || reply->error)) {
        // The replica could not prepare it (gone, or lacking a table): the primary can.
        if (!reply) replica_failed("connection lost", false);
        slot = primary_slot;
        co_await sync_state(primary_slot);
        reply = co_await prepare_on(ps, slot);
    }
    if (!reply) {
        worker_.stats().count_error(ClientError::backend_lost);
        end_reason_ = "backend lost mid-query";
        co_await send_error(frame.next_seq, mysql::er::net_read_error, "08S01",
                            "Lost connection to backend during query");
        co_return false;
    }
    std::uint8_t seq = frame.next_seq;
    out_.clear();
    if (!reply->error) {
        const std::uint32_t id = next_statement_id_++;
        if (next_statement_id_ == 0) next_statement_id_ = 1;
        put_u32(reply->packets[0], 1, id);
        statements_.insert_or_assign(id, std::move(ps));
    }
    for (const auto& p : reply->packets)
        seq = mysql::write_packets(p, seq, out_);
    auto ec = co_await client_.write_all(asio::buffer(out_));
    worker_.stats().bytes_to_clients.add(out_.size());
    co_return !ec;
}

asio::awaitable<std::pair<MysqlSession::Prepared*, bool>>
MysqlSession::statement_of(const mysql::MessageFrame& frame, std::size_t min_size,
                           const char* handler) {
    const auto payload = mysql::assemble_payload(cbuf_.readable(), frame, scratch_);
    request_.assign(payload.begin(), payload.end());
    cbuf_.consume(frame.wire_size);
    if (request_.size() < min_size) {
        const bool sent = co_await send_error(frame.next_seq, mysql::er::malformed_packet, "HY000",
                                              "Malformed communication packet");
        co_return std::pair{nullptr, sent};
    }
    const std::uint32_t id = get_u32(request_, 1);
    auto it = statements_.find(id);
    if (it == statements_.end()) {
        const bool sent = co_await send_error(
            frame.next_seq, mysql::er::unknown_stmt_handler, "HY000",
            fmt::format("Unknown prepared statement handler ({}) given to {}", id, handler));
        co_return std::pair{nullptr, sent};
    }
    co_return std::pair{&it->second, true};
}

asio::awaitable<bool> MysqlSession::on_execute(const mysql::MessageFrame& frame) {
    // COM_STMT_EXECUTE: 0x17, statement_id<4>, flags<1>, iteration_count<4>, then with
    // parameters: null bitmap, new_params_bound_flag<1>, [types<2 each>], values.
    auto [found, go_on] = co_await statement_of(frame, 10, "mysqld_stmt_execute");
    if (!found) co_return go_on;
    Prepared& ps = *found;
    const std::size_t flag_at = 10 + (std::size_t{ps.params} + 7) / 8;
    const std::size_t types_size = std::size_t{ps.params} * 2;
    bool bound = false;
    if (ps.params > 0 && request_.size() > flag_at) {
        bound = request_[flag_at] == 1;
        if (bound && request_.size() >= flag_at + 1 + types_size) {
            ps.types.assign(request_.begin() + static_cast<long>(flag_at + 1),
                            request_.begin() + static_cast<long>(flag_at + 1 + types_size));
            ps.types_sent = {false, false};
        }
    }

    router::Route route;
    Slot slot = co_await choose(ps.cls, ps.digest, route, true);
    if (route.destination == Destination::refuse) {
        worker_.stats().statements[static_cast<std::size_t>(ps.cls.cls)].add();
        worker_.stats().routes[static_cast<std::size_t>(route.reason)].add();
        co_return co_await send_error(frame.next_seq, route.rule->error_code, "HY000",
                                      route.rule->error_message);
    }
    Relay r = Relay::ok;
    for (int attempt = 0; attempt < 2; ++attempt) {
        bool ready = co_await ensure_prepared(ps, slot);
        if (!ready && slot == replica_slot) {
            // The replica could not prepare it (gone, or lacking a table): the primary can.
            if (!backends_[replica_slot].conn) replica_failed("connection lost", false);
            slot = primary_slot;
            route = {Destination::primary, RouteReason::no_replica};
            co_await sync_state(primary_slot);
            ready = co_await ensure_prepared(ps, slot);
        }
        if (!ready) co_return co_await not_prepared(frame);
        wire_.clear();
        for (auto& chunk : ps.long_data) {
            put_u32(chunk, 1, ps.id[slot]);
            mysql::write_packets(chunk, 0, wire_);
        }
        put_u32(request_, 1, ps.id[slot]);
        if (ps.params > 0 && !bound && !ps.types.empty() && !ps.types_sent[slot] &&
            request_.size() > flag_at) {
            // This backend has not seen the parameter types the client bound earlier
            // elsewhere: send them along, as the client did the first time.
            scratch_.assign(request_.begin(), request_.begin() + static_cast<long>(flag_at));
            scratch_.push_back(1);
            scratch_.insert(scratch_.end(), ps.types.begin(), ps.types.end());
            scratch_.insert(scratch_.end(), request_.begin() + static_cast<long>(flag_at + 1),
                            request_.end());
            mysql::write_packets(scratch_, 0, wire_);
        } else {
            mysql::write_packets(request_, 0, wire_);
        }
        // A cursor (flags: CURSOR_TYPE_READ_ONLY and friends) ends the response at the
        // column definitions; its rows come through COM_STMT_FETCH.
        const bool cursor = request_.size() > 5 && (request_[5] & 0x07) != 0;
        r = co_await forward(slot, wire_, cursor ? ResponseKind::cursor : ResponseKind::query);
        if (r == Relay::backend_lost && slot == replica_slot && relayed_ == 0 && attempt == 0) {
            replica_failed("connection lost", false);
            slot = primary_slot;
            route = {Destination::primary, RouteReason::no_replica};
            co_await sync_state(primary_slot);
            continue;
        }
        break;
    }
    count_statement(ps.cls, route, slot);
    if (r != Relay::ok) co_return co_await relay_failed(slot, r, frame.next_seq);
    if (!ps.types.empty()) ps.types_sent[slot] = true;
    ps.long_data.clear();
    ps.last_slot = slot;
    if (ps.cls.flags.runs_hidden_statements) user_variables_hidden_ = true;
    if (!scanner_.ended_with_error()) after_statement(ps.cls, slot);
    last_on_replica_ = slot == replica_slot;
    co_return true;
}

asio::awaitable<bool> MysqlSession::not_prepared(const mysql::MessageFrame& frame) {
    if (!backends_[primary_slot].conn) {
        end_reason_ = "backend lost";
        co_await send_error(frame.next_seq, mysql::er::net_read_error, "08S01",
                            "Lost connection to the primary during query");
        co_return false;
    }
    co_return co_await send_error(frame.next_seq, last_error_.code, last_error_.sql_state.c_str(),
                                  last_error_.message);
}

asio::awaitable<bool> MysqlSession::on_bulk(const mysql::MessageFrame& frame) {
    // COM_STMT_BULK_EXECUTE: 0xFA, statement_id<4>, bulk_flags<2>, then parameter types
    // (when SEND_TYPES_TO_SERVER) and rows of values. Batches of INSERT/UPDATE/DELETE: the
    // primary runs them, with its own id for the statement.
    auto [found, go_on] = co_await statement_of(frame, 7, "mysqld_stmt_bulk_execute");
    if (!found) co_return go_on;
    Prepared& ps = *found;
    router::Route route{Destination::primary, RouteReason::write};
    co_await sync_state(primary_slot);
    const bool ready = co_await ensure_prepared(ps, primary_slot);
    if (!ready) co_return co_await not_prepared(frame);
    put_u32(request_, 1, ps.id[primary_slot]);
    wire_.clear();
    mysql::write_packets(request_, 0, wire_);
    const Relay r = co_await forward(primary_slot, wire_, ResponseKind::query);
    count_statement(ps.cls, route, primary_slot);
    if (r != Relay::ok) co_return co_await relay_failed(primary_slot, r, frame.next_seq);
    ps.last_slot = primary_slot;
    if (!scanner_.ended_with_error()) after_statement(ps.cls, primary_slot);
    last_on_replica_ = false;
    co_return true;
}

asio::awaitable<bool> MysqlSession::on_stmt_fetch_or_reset(const mysql::MessageFrame& frame) {
    const bool fetch = frame.first_byte == static_cast<std::uint8_t>(mysql::Command::stmt_fetch);
    auto [found, go_on] =
        co_await statement_of(frame, 5, fetch ? "mysqld_stmt_fetch" : "mysqld_stmt_reset");
    if (!found) co_return go_on;
    Prepared& ps = *found;
    const std::uint32_t id = get_u32(request_, 1);
    if (!fetch) ps.long_data.clear();
    int slot = -1;
    if (ps.last_slot >= 0 && ps.on(static_cast<Slot>(ps.last_slot), backends_[ps.last_slot]))
        slot = ps.last_slot;
    else if (!fetch && ps.on(primary_slot, backends_[primary_slot]))
        slot = primary_slot;
    else if (!fetch && ps.on(replica_slot, backends_[replica_slot]))
        slot = replica_slot;
    if (slot < 0) {
        if (fetch)
            co_return co_await send_error(
                frame.next_seq, 1421, "HY000",
                fmt::format("The statement ({}) has no open cursor.", id));
        const auto& p = backends_[primary_slot].conn;
        co_return co_await send_ok(frame.next_seq, p ? p->status() : mysql::status::autocommit);
    }
    const auto s = static_cast<Slot>(slot);
    put_u32(request_, 1, ps.id[s]);
    wire_.clear();
    mysql::write_packets(request_, 0, wire_);
    const Relay r = co_await forward(s, wire_, fetch ? ResponseKind::rows : ResponseKind::single);
    if (r != Relay::ok) co_return co_await relay_failed(s, r, frame.next_seq);
    co_return true;
}

asio::awaitable<void> MysqlSession::on_stmt_close(const mysql::MessageFrame& frame) {
    const auto payload = mysql::assemble_payload(cbuf_.readable(), frame, scratch_);
    const std::uint32_t id = payload.size() >= 5 ? get_u32(payload, 1) : 0;
    cbuf_.consume(frame.wire_size);
    auto it = statements_.find(id);
    if (it == statements_.end()) co_return; // as a server does: no answer, no error
    for (Slot s : {primary_slot, replica_slot}) {
        if (!it->second.on(s, backends_[s])) continue;
        std::array<std::uint8_t, 5> close{0x19, 0, 0, 0, 0};
        put_u32(close, 1, it->second.id[s]);
        wire_.clear();
        mysql::write_packets(close, 0, wire_);
        // No response; a lost connection shows at the next command.
        co_await backends_[s].conn->transport().write_all(asio::buffer(wire_));
    }
    statements_.erase(it);
}

void MysqlSession::on_long_data(const mysql::MessageFrame& frame) {
    const auto payload = mysql::assemble_payload(cbuf_.readable(), frame, scratch_);
    // COM_STMT_SEND_LONG_DATA: 0x18, statement_id<4>, param_id<2>, data. Kept until the
    // execute shows which backend needs it.
    if (payload.size() >= 7) {
        auto it = statements_.find(get_u32(payload, 1));
        if (it != statements_.end())
            it->second.long_data.emplace_back(payload.begin(), payload.end());
    }
    cbuf_.consume(frame.wire_size);
}

} // namespace sluice

namespace sluice {

// ---- KILL of a Sluice connection id ----

asio::awaitable<bool> MysqlSession::on_kill(const mysql::MessageFrame& frame, bool query,
                                            std::uint64_t target) {
    if (target == connection_id_) {
        // As a server answers a connection that kills itself: the statement is interrupted,
        // and KILL CONNECTION ends the session.
        if (query)
            co_return co_await send_error(frame.next_seq, 1317, "70100",
                                          "Query execution was interrupted");
        end_reason_ = "killed itself";
        co_await send_error(frame.next_seq, 1927, "70100", "Connection was killed");
        co_return false;
    }
    const auto threads = target <= 0xFFFFFFFFu
                             ? worker_.shared().sessions.find(static_cast<std::uint32_t>(target))
                             : std::nullopt;
    if (!threads)
        co_return co_await send_error(frame.next_seq, 1094, "HY000",
                                      fmt::format("Unknown thread id: {}", target));
    const std::string verb = query ? "KILL QUERY " : "KILL CONNECTION ";
    if (threads->primary != 0) {
        // The primary checks the privilege: killing another user's thread needs it there.
        const std::string sql = "\x03" + verb + std::to_string(threads->primary);
        auto reply = co_await exchange(
            primary_slot, {reinterpret_cast<const std::uint8_t*>(sql.data()), sql.size()},
            ResponseKind::query);
        if (!reply) {
            end_reason_ = "backend lost";
            co_await send_error(frame.next_seq, mysql::er::net_read_error, "08S01",
                                "Lost connection to the primary during KILL");
            co_return false;
        }
        if (reply->error && reply->err.code != 1094) // no such thread: it ended already
            co_return co_await send_error(frame.next_seq, reply->err.code,
                                          reply->err.sql_state.c_str(), reply->err.message);
    }
    if (threads->replica != 0)
        co_await kill_on_replica(threads->replica_index, verb + std::to_string(threads->replica));
    if (!query) threads->worker->kill_session(static_cast<std::uint32_t>(target));
    spdlog::info("{} {}{}", prefix(), verb, target);
    const auto& p = backends_[primary_slot].conn;
    co_return co_await send_ok(frame.next_seq, p ? p->status() : mysql::status::autocommit);
}

asio::awaitable<void> MysqlSession::kill_on_replica(std::size_t index, const std::string& sql) {
    // Best effort: the query may have ended, or the replica gone, by now.
    const std::string payload = "\x03" + sql;
    const std::span<const std::uint8_t> bytes{reinterpret_cast<const std::uint8_t*>(payload.data()),
                                              payload.size()};
    Backend& r = backends_[replica_slot];
    if (r.conn && r.index == index) {
        co_await exchange(replica_slot, bytes, ResponseKind::query);
        co_return;
    }
    auto [conn, failure] = co_await open_backend(index, false);
    if (!conn) co_return;
    std::vector<std::uint8_t> wire;
    mysql::write_packets(bytes, 0, wire);
    const auto ec = co_await conn->transport().write_all(asio::buffer(wire));
    if (!ec) {
        // One OK or ERR: read it so the server is done before the connection closes.
        co_await pool::read_message(conn->transport(), conn->buffer(), 1 << 16);
    }
    conn->close();
}

} // namespace sluice
