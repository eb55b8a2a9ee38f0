// Where each statement of a MySQL session runs (issue #3, DESIGN.md "Routing contract"): the
// route, the replica made ready or the primary, what a statement that succeeded changed,
// and the text-protocol commands that change the session (COM_QUERY, COM_INIT_DB,
// COM_RESET_CONNECTION).

#include "mysql_session.hpp"
#include "sluice/protocol/mysql/packet.hpp"
#include "sluice/router/dialect.hpp"
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
namespace dialect = router::mysql_dialect;

namespace {

bool contains_nocase(std::string_view text, std::string_view word) {
    return std::search(text.begin(), text.end(), word.begin(), word.end(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(b));
           }) != text.end();
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
    v.pinned = state_.pinned() || wrote_untracked_;
    v.last_on_replica = last_on_replica_ && r.conn != nullptr;
    v.user_variables_on_primary = state_.pins().user_variables_hidden;
    v.auto_is_null = state_.auto_is_null();
    v.user = user_;
    v.schema = state_.database();
    return v;
}

asio::awaitable<MysqlSession::Slot> MysqlSession::choose(const router::Classification& c,
                                                         std::string_view digest,
                                                         router::Route& route, bool wait,
                                                         bool pipeline) {
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
    if (pooling_ && sticky_before_ && !c.flags.reads_diagnostics && !c.flags.primary_function) {
        // Kept for what the last statement left (warnings, an insert id, affected rows):
        // this one does not ask, and replaces them, so the connection serves others now
        // instead of through this statement (a write's primary connection during the read
        // after it).
        release_leases();
    }
    if (route.destination == Destination::replica) {
        const bool ready = co_await ensure_replica(route.max_lag_ms);
        if (!ready) {
            route = {Destination::primary, RouteReason::no_replica};
        } else if (!wait || backends_[replica_slot].in_trans()) {
            co_return replica_slot;
        } else {
            const router::Consistency level = consistency_for(c, route);
            // `fleet`: the newest GTIDs every Sluice sharing the Redis recorded join this
            // process's watermark first; then the read is as fresh as under `global`.
            if (level == router::Consistency::fleet)
                co_await worker_.cache().pull_fleet(worker_.shared().acked);
            const Causal need = consistency_token(level);
            if (need.text->empty() || replica_has(need)) co_return replica_slot;
            if (need.version != 0 &&
                worker_.wait_in_flight(backends_[replica_slot].index) >= need.version) {
                // Another session of this worker waits there for as much or more.
                const bool fresh = co_await behind_shared_wait(need.version);
                if (fresh) co_return replica_slot;
            }
            if (pipeline) {
                // The caller writes the wait and the read together.
                pending_wait_ = *need.text;
                pending_wait_version_ = need.version;
                co_return replica_slot;
            }
            const bool caught_up = co_await causal_wait(*need.text, need.version);
            if (caught_up) co_return replica_slot;
            route = {Destination::primary, RouteReason::read_your_writes};
        }
    }
    co_await sync_state(primary_slot);
    co_return primary_slot;
}

void MysqlSession::count_statement(const router::Classification& c, const router::Route& r,
                                   Slot s) noexcept {
    WorkerStats& st = worker_.stats();
    st.statements[static_cast<std::size_t>(c.cls)].add();
    st.routes[static_cast<std::size_t>(r.reason)].add();
    st.backend_statements[backends_[s].index].add();
    if (c.cls == StatementClass::read) st.backend_reads[backends_[s].index].add();
}

std::optional<std::string> MysqlSession::own_connection_id(const router::Classification& c,
                                                           std::string_view sql) const {
    // Both functions set primary_function; only then is the text searched.
    if (!c.flags.primary_function ||
        (!contains_nocase(sql, "connection_id") && !contains_nocase(sql, "is_used_lock")))
        return std::nullopt;
    return router::rewrite_connection_id(sql, state_.sql_mode(), connection_id_);
}

// ---- what a statement did to the session ----

void MysqlSession::after_statement(const router::Classification& c, Slot slot) {
    Backend& ran = backends_[slot];
    const bool was_synced = ran.synced == state_.version();
    const router::Applied applied = state_.apply(c);
    // The backend that ran the statement has the new state already.
    if (was_synced) ran.synced = state_.version();
    if (applied.database_changed) ran.database = state_.database();
    if (applied.tracking_changed) retrack_ = backends_[primary_slot].tracks_gtid;
    // State Sluice counts but cannot see exactly (temporary tables, user locks, handlers,
    // LOCK TABLES): once the pins end, the connection is still reset before another session
    // borrows it.
    const auto& f = c.flags;
    if (f.creates_temp_table || f.takes_user_lock || f.opens_handler ||
        c.cls == StatementClass::lock_tables)
        backends_[slot].dirty = true;
    if (slot == primary_slot && c.cls == StatementClass::write) wrote_ = true;
    if (slot == primary_slot) {
        // SET TRANSACTION applies to the primary connection's next transaction: that
        // connection stays with the session until the primary runs its next statement.
        next_trx_set_ =
            std::any_of(c.session_changes.begin(), c.session_changes.end(),
                        [](const router::SessionChange& ch) {
                            return ch.kind == router::SessionChange::Kind::transaction_next;
                        });
    }

    if (slot == primary_slot && backends_[primary_slot].conn) {
        const Backend& p = backends_[primary_slot];
        state_.set_no_backslash_escapes((p.conn->status() & mysql::status::no_backslash_escapes) !=
                                        0);
        // Without GTIDs from the primary, a session that wrote reads from the primary.
        const Shared& shared = worker_.shared();
        if (!p.tracks_gtid && shared.track_gtids && !shared.replica_indexes.empty() &&
            c.cls != StatementClass::read && c.cls != StatementClass::session_set &&
            c.cls != StatementClass::use)
            wrote_untracked_ = true;
    }
}

void MysqlSession::reset_session_state() noexcept {
    state_.reset();
    statements_.clear();
    cursors_open_ = 0;
    next_trx_set_ = false;
    replica_refused_version_ = 0;
    last_on_replica_ = false;
}

void MysqlSession::forget_primary_state() noexcept { state_.forget_primary_state(); }

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
        if (auto k = dialect::parse_kill(sql); k && k->target >= SessionRegistry::first_id) {
            cbuf_.consume(frame.wire_size);
            co_return co_await on_kill(frame, k->query, k->target);
        }
    }
    router::Classification c; // StatementClass::unknown: the primary
    if (!multi_packet) c = router::classify(sql, state_.sql_mode());
    std::string digest;
    if (!worker_.shared().rules.empty()) digest = router::digest(sql, state_.sql_mode()).text;

    // Cache check first (DESIGN.md: cache, then the nearest replica, then fill the cache).
    FillFlight flight;
    const CacheReadScope cache_scope{capture_wanted_, cache_plan_.active};
    bool planned = false;
    if (c.cls == StatementClass::read)
        planned = co_await plan_cached_read(c, sql, digest, std::nullopt);
    if (planned) {
        const auto served = co_await serve_cached(frame.next_seq);
        if (served) {
            cbuf_.consume(frame.wire_size);
            worker_.stats().statements[static_cast<std::size_t>(c.cls)].add();
            worker_.stats().routes[static_cast<std::size_t>(RouteReason::cache)].add();
            last_on_replica_ = false;
            co_return *served;
        }
        flight.start(worker_.cache(), cache_plan_.key);
        capture_wanted_ = true;
        capture_format_ = mysql::ResultFormat::text;
    }

    router::Route route;
    pending_wait_.clear();
    Slot slot = co_await choose(c, digest, route, true, true);
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
    if (pooling_ && c.flags.reads_diagnostics) {
        diagnostics_read_ = true;
        if (!held_before_[slot]) {
            // The connection's diagnostics are its last borrower's: cleared first, so the
            // session sees only its own (none: its last statement left none).
            const auto cleared = co_await run_sql(slot, dialect::clear_diagnostics());
            (void)cleared; // a lost connection shows when the statement is sent
        }
    }
    Relay r;
    if (slot == primary_slot) {
        if (c.cls != StatementClass::read) plan_write(c, sql);
        // Consumed before the answer: LOAD DATA LOCAL INFILE reads the file from what follows.
        cbuf_.consume(frame.wire_size); // the bytes stay in place until the next read
        // During a switchover the old primary turns read-only before the new one takes
        // writes: a single autocommit write it refuses for that did not run, and runs on the
        // new primary once the monitor names it (the failover hold).
        hold_read_only_ = worker_.shared().monitor != nullptr && !c.flags.multi_statement &&
                          c.cls != StatementClass::read && !view().in_transaction &&
                          !primary_state_lost();
        r = co_await forward(slot, request, ResponseKind::query);
        hold_read_only_ = false;
        if (r == Relay::primary_read_only) {
            const std::size_t old = backends_[primary_slot].index;
            const bool moved = co_await wait_primary_moved(old);
            if (moved) {
                spdlog::info("{} the primary refused a write as read-only: running it on the new "
                             "primary",
                             prefix());
                drop_slot(primary_slot);
                co_await sync_state(primary_slot);
                r = co_await forward(slot, request, ResponseKind::query);
            } else {
                const bool sent =
                    co_await send_error(frame.next_seq, held_error_.code,
                                        held_error_.sql_state.c_str(), held_error_.message);
                if (!sent) co_return false;
                r = Relay::ok; // answered: the server's own refusal
            }
        }
    } else {
        // A read stays in the buffer until answered, for a retry on the primary if the replica
        // goes away before answering.
        bool retry = false;
        if (!pending_wait_.empty()) {
            const WaitedRead w = co_await forward_after_wait(std::exchange(pending_wait_, {}),
                                                             pending_wait_version_, request);
            r = w.relay;
            if (w.outcome == Waited::stale) {
                slot = primary_slot;
                route = {Destination::primary, RouteReason::read_your_writes};
                co_await sync_state(primary_slot);
                r = co_await forward(slot, request, ResponseKind::query);
            } else {
                retry =
                    w.outcome == Waited::lost || (w.relay == Relay::backend_lost && relayed_ == 0);
            }
        } else {
            r = co_await forward(slot, request, ResponseKind::query);
            retry = r == Relay::backend_lost && relayed_ == 0;
        }
        if (retry) {
            replica_failed("connection lost");
            slot = primary_slot;
            route = {Destination::primary, RouteReason::no_replica};
            co_await sync_state(primary_slot);
            r = co_await forward(slot, request, ResponseKind::query);
        }
        cbuf_.consume(frame.wire_size);
    }
    capture_wanted_ = false;
    if (r == Relay::ok) {
        fill_cache(slot);
    } else {
        cache_plan_.active = false;
    }
    flight.finish();
    // A write whose answer was lost may have run all the same.
    if (r != Relay::ok && collect_bumps(false, 0)) co_await bump_collected();
    count_statement(c, route, slot);
    if (r != Relay::ok) co_return co_await relay_failed(slot, r, frame.next_seq);
    // Even a CALL that failed half-way may have set variables before it failed.
    if (c.flags.runs_hidden_statements) state_.hide_user_variables();
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
        const auto reply = co_await run_sql(replica_slot, dialect::commit());
        if (!reply) replica_failed("connection lost");
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
        p.synced = state_.version();
        setup_pooling();
        if (pooled(primary_slot)) {
            // The server closed the connection's statements and forgot its settings.
            pool::Carried& carried = *p.conn->carried;
            carried.statements.clear();
            carried.state.clear();
            carried.key = pool_key(primary_slot, p.database);
            carried.generation = p.generation = worker_.next_generation();
        }
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

} // namespace sluice
