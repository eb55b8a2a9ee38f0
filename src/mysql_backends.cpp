// A MySQL session's backend connections: opening them (the primary at login, a replica on
// first read), noticing a lost one, replaying the session's state on a backend that is
// behind, and the read-your-writes wait on a replica.

#include "mysql_session.hpp"
#include "sluice/pool/error.hpp"
#include "sluice/protocol/mysql/command.hpp"
#include "sluice/protocol/mysql/packet.hpp"
#include "sluice/router/consistency.hpp"
#include "sluice/router/dialect.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace sluice {

namespace mysql = protocol::mysql;
using mysql::ResponseKind;
namespace dialect = router::mysql_dialect;

namespace {

// Capabilities whose value changes the bytes of a response: client and backend must agree
// on them for raw packets to pass through unchanged.
constexpr std::uint32_t response_shaping_caps =
    mysql::cap::deprecate_eof | mysql::cap::multi_results | mysql::cap::ps_multi_results |
    mysql::cap::session_track | mysql::cap::local_files | mysql::cap::found_rows |
    mysql::cap::multi_statements;

std::span<const std::uint8_t> bytes_of(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

} // namespace

asio::awaitable<std::pair<std::unique_ptr<pool::BackendConn>, pool::ConnectFailure>>
connect_backend(Worker& worker, std::size_t index, mysql::BackendLogin::Options opts,
                std::uint32_t client_caps) {
    Shared& shared = worker.shared();
    worker.stats().backend_connects_total.add();
    auto outcome = co_await pool::BackendConn::connect(shared.backends[index]->endpoint,
                                                       std::move(opts), shared.cfg.connect_timeout);
    if (outcome.first &&
        (outcome.first->capabilities() & response_shaping_caps & ~mysql::cap::session_track) !=
            (client_caps & response_shaping_caps & ~mysql::cap::session_track)) {
        outcome.first->close();
        outcome.first.reset();
        outcome.second.ec = make_error_code(pool::pool_errc::protocol_error);
        outcome.second.server_error =
            mysql::ErrPacket{mysql::er::handshake_error, "08S01",
                             "Sluice: backend capabilities do not match the client's"};
    }
    if (!outcome.first && !outcome.second.server_error)
        worker.stats().backend_connect_errors_total.add();
    co_return outcome;
}

mysql::BackendLogin::Options MysqlSession::backend_login(bool track_gtid) const {
    mysql::BackendLogin::Options opts;
    opts.user = user_;
    opts.password = password_;
    opts.database = state_.database();
    opts.charset = state_.charset();
    opts.capabilities = client_caps_ & ~mysql::cap::ssl;
    // CLIENT_IGNORE_SPACE puts IGNORE_SPACE into the session's sql_mode at login only: a
    // server's COM_RESET_CONNECTION / COM_CHANGE_USER leaves the global sql_mode, and so do
    // the backend sessions Sluice opens after one.
    if (login_sql_mode_gone_) opts.capabilities &= ~mysql::cap::ignore_space;
    opts.mariadb_ext_capabilities = client_ext_caps_;
    // The primary reports each write's GTID in its OK packets (read-your-writes).
    if (track_gtid) opts.capabilities |= mysql::cap::session_track;
    opts.attributes = {{"_client_name", "sluice"}, {"program_name", "sluice"}};
    return opts;
}

asio::awaitable<std::pair<std::unique_ptr<pool::BackendConn>, pool::ConnectFailure>>
MysqlSession::open_backend(std::size_t index, bool track_gtid) {
    if (closed_) {
        // Being closed (shutdown, KILL, client gone): no new backend work starts.
        co_return std::pair{
            std::unique_ptr<pool::BackendConn>{},
            pool::ConnectFailure{make_error_code(asio::error::operation_aborted), std::nullopt}};
    }
    co_return co_await connect_backend(worker_, index, backend_login(track_gtid), client_caps_);
}

asio::awaitable<MysqlSession::PrimaryAttempt> MysqlSession::open_primary() {
    Shared& shared = worker_.shared();
    const auto started = std::chrono::steady_clock::now();
    // Only the monitor can find a new primary: without it a failure is final at once.
    const auto deadline = started + (shared.monitor ? shared.cfg.routing.failover_hold
                                                    : std::chrono::milliseconds(0));
    asio::steady_timer pause{co_await asio::this_coro::executor};
    PrimaryAttempt last;
    last.index = shared.primary_index;
    last.failure.ec = make_error_code(asio::error::host_unreachable);
    bool held = false;
    for (;;) {
        const pool::Topology& t = worker_.topology();
        const bool known = t.primary && *t.primary < t.backends.size() && t.backends[*t.primary].up;
        if (known || !shared.monitor) {
            last.index = t.primary ? *t.primary : shared.primary_index;
            auto [conn, failure] =
                co_await lease_backend(primary_slot, last.index, shared.track_gtids);
            last.tried = true;
            last.conn = std::move(conn);
            last.failure = std::move(failure);
            // A refusal of the login is the server's answer, not an outage.
            if (last.conn || last.failure.server_error || !shared.monitor) break;
        }
        if (closed_ || std::chrono::steady_clock::now() >= deadline) break;
        if (!held)
            spdlog::info("{} no primary reachable: waiting up to {} ms for one", prefix(),
                         shared.cfg.routing.failover_hold.count());
        held = true;
        pause.expires_after(std::chrono::milliseconds(50));
        const auto [ec] = co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) break;
    }
    if (held) worker_.stats().observe_hold(std::chrono::steady_clock::now() - started);
    last.held = held;
    co_return last;
}

std::string MysqlSession::primary_unreachable(const PrimaryAttempt& a) const {
    const Shared& shared = worker_.shared();
    std::string why =
        a.tried ? fmt::format("Sluice cannot reach backend '{}': {}",
                              shared.backends[a.index]->endpoint.name, a.failure.ec.message())
                : std::string("Sluice knows no primary: no backend is up with "
                              "read_only=0");
    if (a.held)
        why += fmt::format(" (waited {} ms, failover_hold_ms)",
                           shared.cfg.routing.failover_hold.count());
    return why;
}

asio::awaitable<bool> MysqlSession::wait_primary_moved(std::size_t old) {
    const Shared& shared = worker_.shared();
    const auto started = std::chrono::steady_clock::now();
    const auto deadline = started + shared.cfg.routing.failover_hold;
    asio::steady_timer pause{co_await asio::this_coro::executor};
    bool moved = false;
    while (!closed_) {
        const pool::Topology& t = worker_.topology();
        moved = t.primary && *t.primary != old && *t.primary < t.backends.size() &&
                t.backends[*t.primary].up;
        if (moved || std::chrono::steady_clock::now() >= deadline) break;
        pause.expires_after(std::chrono::milliseconds(50));
        const auto [ec] = co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) break;
    }
    worker_.stats().observe_hold(std::chrono::steady_clock::now() - started);
    co_return moved;
}

asio::awaitable<bool> MysqlSession::connect_primary(std::uint8_t& seq) {
    Shared& shared = worker_.shared();
    const bool track = shared.track_gtids;
    PrimaryAttempt attempt = co_await open_primary();
    auto& conn = attempt.conn;
    auto& failure = attempt.failure;
    if (!conn) {
        if (failure.server_error) {
            // The backend's own refusal (unknown database, denied access) reaches the client
            // as the backend sent it.
            end_reason_ = "backend refused login";
            const auto& e = *failure.server_error;
            co_await send_error(seq, e.code, e.sql_state.empty() ? "HY000" : e.sql_state.c_str(),
                                e.message);
            co_return false;
        }
        worker_.stats().count_error(ClientError::backend_unavailable);
        end_reason_ = "backend unavailable";
        const std::string why = primary_unreachable(attempt);
        spdlog::warn("{} login: {}", prefix(), why);
        co_await send_error(seq, mysql::er::unknown_error, "08S01", why);
        co_return false;
    }
    const bool attached = co_await attach_primary(std::move(conn), attempt.index, track);
    if (!attached) {
        end_reason_ = "backend lost";
        co_await send_error(seq, mysql::er::net_read_error, "08S01",
                            "Lost connection to the primary during login");
        co_return false;
    }
    Backend& b = backends_[primary_slot];
    if (b.database != state_.database() && !state_.database().empty()) {
        // A borrowed connection is in another database: the one the client named must exist
        // (and be allowed) now, as at a login of its own.
        std::string payload(1, static_cast<char>(mysql::Command::init_db));
        payload += state_.database();
        auto reply = co_await exchange(primary_slot, bytes_of(payload), ResponseKind::single);
        if (!reply) {
            end_reason_ = "backend lost";
            co_await send_error(seq, mysql::er::net_read_error, "08S01",
                                "Lost connection to the primary during login");
            co_return false;
        }
        if (reply->error) {
            end_reason_ = "backend refused login";
            co_await send_error(seq, reply->err.code, reply->err.sql_state.c_str(),
                                reply->err.message);
            co_return false;
        }
        b.database = state_.database();
    }
    b.synced = state_.version();
    state_.set_no_backslash_escapes((b.conn->status() & mysql::status::no_backslash_escapes) != 0);
    co_return co_await send_ok(seq, b.conn->status());
}

asio::awaitable<bool> MysqlSession::attach_primary(std::unique_ptr<pool::BackendConn> conn,
                                                   std::size_t index, bool track) {
    Backend& b = backends_[primary_slot];
    b.conn = std::move(conn);
    b.index = index;
    b.synced = 0;
    b.database = state_.database(); // named in the login
    b.generation = worker_.next_generation();
    b.mariadb = b.conn->greeting().server_version.find("MariaDB") != std::string::npos;
    b.tracks_gtid = false;
    const bool tracking = (b.conn->capabilities() & mysql::cap::session_track) != 0;
    b.strip_tracking = tracking && !(client_caps_ & mysql::cap::session_track);
    bool tracked = true;
    const bool borrowed = b.conn->carried && b.conn->carried->set_up;
    if (borrowed)
        tracked = co_await take_over(primary_slot); // set up by its first borrower
    else if (track && tracking)
        tracked = co_await track_gtids();
    if (tracked && !borrowed) tracked = co_await take_over(primary_slot);
    // KILL of this session's id reaches its backend threads from login on, whether or not
    // it ever reads from a replica, and after COM_CHANGE_USER the new primary thread.
    if (tracked) publish_threads();
    co_return tracked;
}

asio::awaitable<void> MysqlSession::revive_primary() {
    if (closed_) co_return;
    Backend& b = backends_[primary_slot];
    const pool::Topology& t = worker_.topology();
    if (b.conn && t.primary && *t.primary != b.index && !primary_state_lost()) {
        // The monitor found another primary (a failover or a switchover): the session moves
        // there between statements, with its state replayed.
        spdlog::info("{} the primary moved to {}: reconnecting there", prefix(),
                     worker_.shared().backends[*t.primary]->endpoint.name);
        drop_slot(primary_slot);
    }
    if (b.conn && !unusable(b)) co_return;
    if (b.conn) {
        // Closed while the session was idle (a restart, wait_timeout), or after it refused a
        // statement: nothing of the next statement has reached it.
        primary_lost_state_ = primary_state_lost();
        spdlog::info("{} primary connection closed while idle; reconnecting", prefix());
        drop_slot(primary_slot);
    }
    // A transaction, temporary tables or locks died with the old connection: the client
    // hears about it (relay_failed) before the session goes on without them.
    if (primary_lost_state_) co_return;
    Shared& shared = worker_.shared();
    PrimaryAttempt attempt = co_await open_primary();
    if (!attempt.conn) {
        primary_unreachable_ = true;
        primary_unreachable_code_ = mysql::er::unknown_error;
        if (attempt.failure.ec == pool::pool_errc::pool_busy && attempt.failure.server_error) {
            // Every pooled connection stayed busy: the client gets the pool's 1040.
            primary_unreachable_code_ = attempt.failure.server_error->code;
            primary_unreachable_why_ = attempt.failure.server_error->message;
            co_return;
        }
        primary_unreachable_why_ = primary_unreachable(attempt);
        spdlog::warn("{} {}", prefix(), primary_unreachable_why_);
        co_return;
    }
    primary_unreachable_ = false;
    const bool attached =
        co_await attach_primary(std::move(attempt.conn), attempt.index, shared.track_gtids);
    if (!attached) drop_slot(primary_slot);
}

bool MysqlSession::primary_state_lost() const noexcept {
    const Backend& p = backends_[primary_slot];
    return p.in_trans() || state_.holds_primary_only_state();
}

asio::awaitable<bool> MysqlSession::track_gtids() {
    Backend& b = backends_[primary_slot];
    // MariaDB reports last_gtid as a tracked system variable; MySQL 8 as a GTID entry. The
    // client's own tracked variables stay as they were.
    auto reply = co_await run_sql(primary_slot, dialect::track_gtids(b.mariadb));
    if (!reply) co_return false;
    b.tracks_gtid = !reply->error;
    if (reply->error)
        spdlog::warn("{} primary does not report GTIDs ({}): a session that wrote reads from "
                     "the primary",
                     prefix(), reply->err.message);
    co_return true;
}

bool MysqlSession::unusable(Backend& b) noexcept {
    // Only after a pause of the session or of this connection: a connection the session
    // just used needs no check (one syscall saved per statement on the hot path). A read on
    // the replica right after the primary's server went away must not hide that the primary
    // connection is dead: the next write would go into it and fail as if it had been running.
    const bool idle = check_idle_ || command_started_ - b.used > idle_check_after;
    b.used = command_started_;
    return b.broken || (idle && (!b.conn->buffer().empty() || b.conn->transport().peer_gone()));
}

void MysqlSession::drop_slot(Slot slot) noexcept {
    Backend& b = backends_[slot];
    b.broken = false;
    b.dirty = false;
    if (b.conn) {
        const bool counted = b.conn->carried && b.conn->carried->pooled;
        b.conn->close();
        b.conn.reset();
        if (counted) worker_.pool().forget(b.index);
    }
    b.gtid_seen.clear();
    b.held.release();
}

bool MysqlSession::Backend::in_trans() const noexcept {
    if (!conn) return false;
    const auto st = conn->status();
    return (st & mysql::status::in_trans) || !(st & mysql::status::autocommit);
}

pool::ReplicaRequirements
MysqlSession::replica_requirements(std::chrono::steady_clock::time_point now,
                                   std::optional<std::uint32_t> max_lag_ms) const noexcept {
    const config::Config& cfg = worker_.shared().cfg;
    pool::ReplicaRequirements req;
    req.zone = cfg.zone;
    if (max_lag_ms)
        req.max_lag = std::chrono::milliseconds(*max_lag_ms);
    else if (user_config_ && user_config_->max_lag_ms)
        req.max_lag = std::chrono::milliseconds(*user_config_->max_lag_ms);
    else
        req.max_lag = cfg.routing.max_lag;
    // Sessions spread over equal replicas by their ids, as a round robin would; pooled
    // sessions choose per statement, so their statements spread too.
    req.tiebreak =
        pooling_ ? connection_id_ + static_cast<std::uint32_t>(queries_) : connection_id_;
    req.per_statement = pooling_;
    const pool::BreakerBoard& breakers = *worker_.shared().breakers;
    for (std::size_t i = 0; i < breakers.size(); ++i) {
        if (!breakers.allows(i, now)) req.excluded |= std::uint64_t{1} << i;
    }
    // Replicas that refused this session's login, until its state changes.
    if (refused_version_ == state_.version()) req.excluded |= refused_by_;
    // One that had not applied this session's write in time, for a while.
    if (lagging_replica_ < pool::max_backends && now < lagging_until_)
        req.excluded |= std::uint64_t{1} << lagging_replica_;
    return req;
}

bool MysqlSession::replica_possible() const noexcept {
    const Shared& shared = worker_.shared();
    if (shared.replica_indexes.empty() || replica_refused_version_ == state_.version())
        return false;
    if (backends_[replica_slot].conn) return true;
    const auto req = replica_requirements(std::chrono::steady_clock::now());
    return pool::choose_replica(worker_.routing_topology(), req).has_value();
}

asio::awaitable<bool> MysqlSession::ensure_replica(std::optional<std::uint32_t> max_lag_ms) {
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
    auto req = replica_requirements(std::chrono::steady_clock::now(), max_lag_ms);
    if (r.conn && !r.in_trans()) {
        // The monitor's view: a replica that went down, stopped replicating or fell too far
        // behind loses its sessions at their next read (a read-only transaction stays).
        auto held = req;
        held.excluded = 0;
        const auto why = pool::eligibility(worker_.topology().backends[r.index], r.index, held);
        if (why != pool::Ineligible::none) {
            spdlog::debug("{} replica {} is {}: choosing again", prefix(),
                          shared.backends[r.index]->endpoint.name, pool::ineligible_name(why));
            drop_slot(replica_slot);
            publish_threads();
        }
    }
    if (!r.conn) {
        for (;;) {
            const auto chosen = pool::choose_replica(worker_.routing_topology(), req);
            if (!chosen) break;
            const std::size_t index = *chosen;
            req.excluded |= std::uint64_t{1} << index; // tried once per call
            BackendShared& bs = *shared.backends[index];
            auto [conn, failure] = co_await lease_backend(replica_slot, index, false);
            if (!conn && failure.ec == pool::pool_errc::pool_busy) {
                // Its pool stayed busy: another replica, or the primary, serves the read.
                continue;
            }
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
                    if (refused_version_ != state_.version()) refused_by_ = 0;
                    refused_version_ = state_.version();
                    refused_by_ |= std::uint64_t{1} << index;
                    continue;
                }
                spdlog::warn("{} cannot reach replica {} ({}:{}): {}; skipped for {} ms", prefix(),
                             bs.endpoint.name, bs.endpoint.host, bs.endpoint.port,
                             failure.ec.message(), shared.cfg.routing.replica_retry.count());
                shared.breakers->on_failure(index, std::chrono::steady_clock::now());
                continue;
            }
            shared.breakers->on_success(index);
            r.conn = std::move(conn);
            r.index = index;
            r.held.hold(shared.sessions_on[index]);
            r.synced = 0;
            r.database = state_.database();
            r.generation = worker_.next_generation();
            r.mariadb = r.conn->greeting().server_version.find("MariaDB") != std::string::npos;
            r.strip_tracking = r.tracks_gtid = false;
            const bool taken = co_await take_over(replica_slot);
            if (!taken) {
                drop_slot(replica_slot);
                continue;
            }
            if (r.gtid_seen_index != index) r.gtid_seen.clear();
            publish_threads();
            break;
        }
        if (!r.conn) co_return false;
    }
    co_return co_await sync_state(replica_slot);
}

asio::awaitable<bool> MysqlSession::sync_state(Slot slot) {
    if (slot == primary_slot) co_await revive_primary();
    Backend& b = backends_[slot];
    // A borrowed connection with the session's settings may be in another database.
    if (!b.conn || (b.synced == state_.version() &&
                    (b.database == state_.database() || state_.database().empty())))
        co_return true;
    auto fail = [&](std::string_view what) {
        if (slot == replica_slot) {
            // The server's message can quote the session's values: debug only.
            spdlog::warn("{} replica {} cannot take the session's state: reads go to the "
                         "primary",
                         prefix(), worker_.shared().backends[b.index]->endpoint.name);
            spdlog::debug("{} replica state replay: {}", prefix(), what);
            replica_refused_version_ = state_.version();
            drop_slot(replica_slot);
        } else {
            spdlog::warn("{} primary did not take the session's state", prefix());
            spdlog::debug("{} primary state replay: {}", prefix(), what);
            b.synced = state_.version();
        }
    };
    // Each step: COM_INIT_DB or COM_QUERY with Sluice's own text.
    auto run = [&](mysql::Command command, std::string_view text) -> asio::awaitable<bool> {
        std::string payload(1, static_cast<char>(command));
        payload += text;
        const auto kind =
            command == mysql::Command::init_db ? ResponseKind::single : ResponseKind::query;
        auto reply = co_await exchange(slot, bytes_of(payload), kind);
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
    // Replaying the client's own session_track_* settings drops the GTID reporting Sluice
    // added to them: it is added back after.
    const bool retrack =
        slot == primary_slot && b.tracks_gtid &&
        std::any_of(state_.assignments().begin(), state_.assignments().end(),
                    [&](const router::Assignment& a) {
                        return a.version > b.synced && a.key.starts_with("session_track");
                    });
    const router::ReplayPlan plan = state_.replay_since(b.synced, b.database);
    if (!plan.database.empty()) {
        const bool done = co_await run(mysql::Command::init_db, plan.database);
        if (!done) co_return slot == primary_slot;
        b.database = state_.database();
    }
    for (const std::string& sql : dialect::replay_statements(plan)) {
        const bool done = co_await run(mysql::Command::query, sql);
        if (!done) co_return slot == primary_slot;
    }
    b.synced = state_.version();
    if (retrack) {
        const bool alive = co_await track_gtids();
        if (!alive) co_return true; // the slot was dropped: the statement's relay says so
    }
    co_return true;
}

void MysqlSession::acknowledged(std::string gtid) {
    worker_.shared().acked.acknowledge(gtid);
    last_gtid_ = std::move(gtid);
}

MysqlSession::Causal MysqlSession::consistency_token(router::Consistency level) {
    static const std::string none;
    switch (level) {
    case router::Consistency::eventual:
        return {&none, 0};
    case router::Consistency::session:
        return {&last_gtid_, 0};
    case router::Consistency::global:
    case router::Consistency::fleet: // the fleet's GTIDs were folded in first (choose())
        break;
    }
    const AckedWrites& acked = worker_.shared().acked;
    if (acked.version() != acked_version_) {
        auto [text, version] = acked.position();
        acked_token_ = std::move(text);
        acked_version_ = version;
    }
    return {&acked_token_, acked_version_};
}

router::Consistency MysqlSession::consistency_for(const router::Classification& c,
                                                  const router::Route& route) const noexcept {
    if (c.hint.consistency) return *c.hint.consistency;
    if (route.rule && route.rule->consistency) return *route.rule->consistency;
    if (user_config_ && user_config_->consistency) return to_router(*user_config_->consistency);
    return to_router(worker_.shared().cfg.routing.consistency);
}

bool MysqlSession::replica_has(const Causal& need) const {
    const Backend& r = backends_[replica_slot];
    AckedWrites& acked = worker_.shared().acked;
    if (need.version != 0 && acked.known_applied(r.index, need.version)) return true;
    const std::string_view token = *need.text;
    if (router::freshness(token, r.gtid_seen) == router::Freshness::fresh) return true;
    // The monitor's last reading of the replica's position counts too.
    const auto& topology = worker_.topology();
    if (r.index >= topology.backends.size() ||
        router::freshness(token, topology.backends[r.index].gtid_position) !=
            router::Freshness::fresh)
        return false;
    acked.confirm(r.index, need.version);
    return true;
}

void MysqlSession::waited(std::string token, std::uint64_t version) {
    Backend& r = backends_[replica_slot];
    worker_.shared().acked.confirm(r.index, version);
    r.gtid_seen = std::move(token);
    r.gtid_seen_index = r.index;
}

asio::awaitable<bool> MysqlSession::behind_shared_wait(std::uint64_t version) {
    const std::size_t index = backends_[replica_slot].index;
    const AckedWrites& acked = worker_.shared().acked;
    const auto deadline = std::chrono::steady_clock::now() +
                          worker_.shared().cfg.routing.causal_read_timeout +
                          std::chrono::milliseconds(100);
    asio::steady_timer timer{co_await asio::this_coro::executor};
    // Taken off the worker's list however the wait ends, the coroutine's destruction included.
    struct Parked {
        Worker& worker;
        std::size_t index;
        asio::steady_timer* timer;
        ~Parked() { worker.unpark(index, timer); }
    };
    while (!closed_ && worker_.wait_in_flight(index) >= version &&
           std::chrono::steady_clock::now() < deadline) {
        timer.expires_at(deadline);
        worker_.park(index, &timer);
        const Parked parked{worker_, index, &timer};
        const auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        (void)ec; // cancelled: the wait answered; expired: the deadline
        if (acked.known_applied(index, version)) break;
    }
    const bool fresh = acked.known_applied(index, version);
    if (fresh) worker_.stats().causal_waits[static_cast<std::size_t>(CausalWait::shared)].add();
    co_return fresh;
}

asio::awaitable<bool> MysqlSession::causal_wait(std::string token, std::uint64_t version) {
    const Shared& shared = worker_.shared();
    Backend& r = backends_[replica_slot];
    if (token.empty() || replica_has({&token, version})) co_return true;
    SharedWait shared_wait{worker_, r.index, version};
    const auto sent = std::chrono::steady_clock::now();
    auto reply = co_await run_sql(
        replica_slot,
        dialect::causal_wait(token, shared.cfg.routing.causal_read_timeout, r.mariadb));
    auto& waits = worker_.stats().causal_waits;
    if (reply) worker_.stats().observe_wait(std::chrono::steady_clock::now() - sent);
    if (!reply || reply->error) {
        waits[static_cast<std::size_t>(CausalWait::error)].add();
        if (!reply)
            replica_failed("connection lost");
        else
            spdlog::debug("{} read-your-writes wait failed: {}", prefix(), reply->err.message);
        co_return false;
    }
    const bool deprecate_eof = (client_caps_ & mysql::cap::deprecate_eof) != 0;
    if (mysql::first_text_value(reply->packets, deprecate_eof) == "0") {
        waits[static_cast<std::size_t>(CausalWait::ok)].add();
        waited(std::move(token), version);
        co_return true;
    }
    waits[static_cast<std::size_t>(CausalWait::timeout)].add();
    // Behind this session's write, not broken: only this session looks elsewhere for a
    // while; other sessions, which have not written, still read there.
    lagging_replica_ = r.index;
    lagging_until_ = std::chrono::steady_clock::now() + shared.cfg.routing.replica_retry;
    spdlog::debug("{} replica {} had not applied the writes the read must see in time", prefix(),
                  shared.backends[r.index]->endpoint.name);
    replica_failed("behind the writes a read must see");
    co_return false;
}

void MysqlSession::replica_failed(const char* why) noexcept {
    spdlog::debug("{} replica connection dropped: {}", prefix(), why);
    drop_slot(replica_slot);
    last_on_replica_ = false;
    try {
        publish_threads();
    } catch (const std::exception&) {
        // The registry keeps the old thread id: a later KILL of it finds no such thread.
    }
}

} // namespace sluice
