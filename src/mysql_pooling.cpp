// Pooling of a MySQL session's backend connections (issue #10): in transaction mode the
// session's two slots hold leases from the worker's ConnPool, borrowed when a statement needs
// one and given back after each command unless the connection holds something of the session
// (a transaction, temporary tables, locks, an open cursor, a pending SET TRANSACTION, warnings
// or an insert id the client may ask about next).

#include "mysql_session.hpp"
#include "sluice/pool/error.hpp"
#include "sluice/protocol/mysql/packet.hpp"
#include "sluice/router/dialect.hpp"

#include <algorithm>
#include <spdlog/spdlog.h>

namespace sluice {

namespace mysql = protocol::mysql;
using mysql::ResponseKind;

void MysqlSession::setup_pooling() {
    const config::Config& cfg = worker_.shared().cfg;
    config::PoolMode mode = cfg.pool.mode;
    if (user_config_ && user_config_->pool_mode)
        mode = *user_config_->pool_mode;
    else if (listener_.cfg->pool_mode)
        mode = *listener_.cfg->pool_mode;
    pooling_ = mode == config::PoolMode::transaction;
    if (!pooling_) return;
    // Connections of one key answer alike: same user, same capabilities that shape the
    // bytes of responses, same login character set. Whether a database was named at login
    // does not matter (COM_INIT_DB brings each borrower's), but whether one is selected now
    // does: nothing takes a connection back to no database, so those stay apart (pool_key()).
    const std::uint32_t caps = client_caps_ & ~(mysql::cap::ssl | mysql::cap::connect_with_db);
    // Made once here: a key is looked up twice per statement (borrow, return).
    for (std::size_t i = 0; i < pool_keys_.size(); ++i) {
        const bool primary = i < 2;
        const bool database = i % 2 == 1;
        pool_keys_[i] = fmt::format("{}\n{:x}\n{:x}\n{}\n{}\n{}\n{}", user_, caps, client_ext_caps_,
                                    state_.charset(), login_sql_mode_gone_ ? 0 : 1,
                                    primary ? "primary" : "replica", database ? '+' : '-');
    }
}

const std::string& MysqlSession::pool_key(Slot slot, std::string_view database) const {
    return pool_keys_[(slot == primary_slot ? 0 : 2) + (database.empty() ? 0 : 1)];
}

bool MysqlSession::pooled(Slot slot) const noexcept {
    const auto& c = backends_[slot].conn;
    return c && c->carried && c->carried->pooled;
}

const std::string& MysqlSession::state_text() {
    if (state_text_version_ == state_.version()) return state_text_;
    // In the order they apply (a key set again moves to the end): SET NAMES then SET
    // character_set_client is another state than the same two the other way round.
    state_text_.clear();
    for (const router::Assignment& a : state_.assignments()) {
        state_text_ += a.text;
        state_text_ += '\n';
    }
    state_text_version_ = state_.version();
    return state_text_;
}

const std::string& MysqlSession::statement_key(Prepared& ps) {
    // A statement's parse depends on the database (unqualified names) and the settings
    // (sql_mode, character set): the same text under others is another statement. Both move
    // the state's version, so the key is made again only then, not per execution.
    if (ps.pool_key_version == state_.version() && !ps.pool_key.empty()) return ps.pool_key;
    ps.pool_key = state_.database();
    ps.pool_key += '\0';
    ps.pool_key += state_text();
    ps.pool_key += '\0';
    ps.pool_key += ps.sql;
    ps.pool_key_version = state_.version();
    return ps.pool_key;
}

asio::awaitable<std::pair<std::unique_ptr<pool::BackendConn>, pool::ConnectFailure>>
MysqlSession::lease_backend(Slot slot, std::size_t index, bool track_gtid) {
    if (!pooling_) co_return co_await open_backend(index, track_gtid);
    Shared& shared = worker_.shared();
    pool::ConnPool& pool = worker_.pool();
    const std::string& key = pool_key(slot, state_.database());
    for (;;) {
        if (closed_) {
            co_return std::pair{std::unique_ptr<pool::BackendConn>{},
                                pool::ConnectFailure{
                                    make_error_code(asio::error::operation_aborted), std::nullopt}};
        }
        pool::ConnPool::Grant grant =
            co_await pool.acquire(index, key, shared.cfg.pool.queue_timeout);
        if (grant.conn) {
            // Closed by its server while idle (wait_timeout, a restart, a KILL): replaced.
            // One peek per borrow: a connection returned a moment ago may be dead too (a
            // restart takes them all at once).
            if (!grant.conn->buffer().empty() || grant.conn->transport().peer_gone()) {
                grant.conn->close();
                pool.forget(index);
                worker_.stats().pool_replaced_total.add();
                continue;
            }
            co_return std::pair{std::move(grant.conn), pool::ConnectFailure{}};
        }
        if (grant.open) {
            auto outcome = co_await open_backend(index, track_gtid);
            if (!outcome.first) {
                pool.forget(index);
                co_return outcome;
            }
            pool.remember(index, key, backend_login(track_gtid)); // for min_idle
            pool::Carried& c = outcome.first->pool_state();
            c.pooled = true;
            c.index = index;
            c.key = key;
            c.created = std::chrono::steady_clock::now();
            c.generation = worker_.next_generation();
            c.statements.set_max(shared.cfg.pool.prepared_per_connection);
            co_return outcome;
        }
        const std::string& name = shared.backends[index]->endpoint.name;
        worker_.stats().pool_timeouts_total.add();
        spdlog::warn("{} every pooled connection to {} stayed busy for {} ms", prefix(), name,
                     shared.cfg.pool.queue_timeout.count());
        pool::ConnectFailure failure;
        failure.ec = make_error_code(pool::pool_errc::pool_busy);
        failure.server_error = mysql::ErrPacket{
            mysql::er::con_count_error, "08004",
            fmt::format("Too many connections: all {} of Sluice's pooled connections to backend "
                        "'{}' stayed busy for {} ms (pool queue_timeout_ms)",
                        pool.open(index), name, shared.cfg.pool.queue_timeout.count())};
        co_return std::pair{std::unique_ptr<pool::BackendConn>{}, std::move(failure)};
    }
}

asio::awaitable<bool> MysqlSession::take_over(Slot slot) {
    Backend& b = backends_[slot];
    pool::Carried* c = b.conn->carried.get();
    if (!c || !c->pooled) co_return true;
    if (!c->set_up) {
        // New: the caller set it up as for a session of its own. One the pool opened ahead
        // of use logged in to the database of the session it learned the login from.
        if (c->prewarmed) b.database = c->database;
        c->set_up = true;
        c->database = b.database;
        c->generation = b.generation;
        co_return true;
    }
    b.generation = c->generation;
    b.database = c->database;
    b.mariadb = c->mariadb;
    b.tracks_gtid = c->tracks_gtid;
    b.strip_tracking = c->strip_tracking;
    const std::string& mine = state_text();
    if (c->state == mine) {
        b.synced = state_.version(); // only the database may differ: replay_since sees to it
        co_return true;
    }
    b.synced = 0;
    if (c->state.empty()) co_return true; // nothing to take away: this session's are added
    // Another session's settings are there: the server forgets them (and the connection's
    // prepared statements and session tracking), keeping the database and the login's
    // character set; then this session's are replayed.
    worker_.stats().pool_resets_total.add();
    const std::uint8_t reset = static_cast<std::uint8_t>(mysql::Command::reset_connection);
    auto reply = co_await exchange(slot, {&reset, 1}, ResponseKind::single);
    if (!reply || reply->error) {
        if (reply) drop_slot(slot);
        co_return false;
    }
    c->state.clear();
    c->statements.clear();
    c->generation = b.generation = worker_.next_generation();
    c->tracks_gtid = b.tracks_gtid = false;
    if (slot == primary_slot && worker_.shared().track_gtids &&
        (b.conn->capabilities() & mysql::cap::session_track)) {
        const bool alive = co_await track_gtids();
        if (!alive) co_return false;
        c->tracks_gtid = b.tracks_gtid;
    }
    if ((client_caps_ & mysql::cap::ignore_space) && !login_sql_mode_gone_) {
        // The reset dropped the IGNORE_SPACE the login's capability put in sql_mode.
        auto again = co_await run_sql(slot, router::mysql_dialect::add_ignore_space());
        if (!again) co_return false;
    }
    co_return true;
}

asio::awaitable<void> prewarm(Worker& worker, pool::ConnPool::Opening o) {
    const std::uint32_t caps = o.login.capabilities;
    const std::string database = o.login.database;
    auto outcome = co_await connect_backend(worker, o.index, std::move(o.login), caps);
    pool::ConnPool& pool = worker.pool();
    pool.opened(o.index, o.key);
    if (!outcome.first) {
        pool.forget(o.index);
        co_return;
    }
    const auto now = std::chrono::steady_clock::now();
    pool::Carried& c = outcome.first->pool_state();
    c.pooled = true;
    c.prewarmed = true;
    c.index = o.index;
    c.key = std::move(o.key);
    c.database = database;
    c.created = now;
    c.generation = worker.next_generation();
    c.statements.set_max(worker.shared().cfg.pool.prepared_per_connection);
    pool.release(std::move(outcome.first), now);
}

bool MysqlSession::releasable(Slot slot) const noexcept {
    const Backend& b = backends_[slot];
    if (!b.conn || b.broken || !b.conn->carried || !b.conn->carried->pooled) return false;
    if (!b.conn->buffer().empty() || cursors_open_ > 0) return false;
    if (b.synced != state_.version()) return false; // its settings are not known exactly
    if (sticky_ && (slot == replica_slot) == last_on_replica_) return false;
    if (retrack_ && slot == primary_slot) return false; // choose() adds the GTID back first
    if (slot == replica_slot) return !(b.conn->status() & mysql::status::in_trans);
    const auto& pins = state_.pins();
    return !b.in_trans() && !next_trx_set_ && !state_.holds_primary_only_state() &&
           !pins.found_rows_pending && !primary_lost_state_;
}

void MysqlSession::release_leases(bool publish) noexcept {
    bool changed = false;
    const auto now = std::chrono::steady_clock::now();
    for (const Slot slot : {primary_slot, replica_slot}) {
        if (!releasable(slot)) continue;
        Backend& b = backends_[slot];
        pool::Carried& c = *b.conn->carried;
        c.database = b.database;
        c.key = pool_key(slot, b.database);
        // A connection that held temporary tables or locks is reset before its next borrower
        // uses it: no session's state text is this one.
        c.state = b.dirty ? std::string("\x01 reset before use") : state_text();
        b.dirty = false;
        c.generation = b.generation;
        c.mariadb = b.mariadb;
        c.tracks_gtid = b.tracks_gtid;
        c.strip_tracking = b.strip_tracking;
        b.held.release();
        worker_.pool().release(std::move(b.conn), now);
        changed = true;
    }
    if (!changed || !publish) return;
    try {
        publish_threads();
    } catch (const std::exception&) {
        // The registry keeps the old thread ids: a KILL of this session finds them gone.
    }
}

} // namespace sluice
