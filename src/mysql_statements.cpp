// Prepared statements of a MySQL session: one client id (router::StatementMap) over the
// backends that prepared it, prepared lazily where an execution runs, parameter types and
// long data sent along to a backend that has not seen them.

#include "mysql_session.hpp"
#include "sluice/protocol/mysql/packet.hpp"
#include "sluice/protocol/mysql/stmt.hpp"
#include "sluice/router/route.hpp"

#include <spdlog/spdlog.h>

namespace sluice {

namespace mysql = protocol::mysql;
using mysql::ResponseKind;
using router::Destination;
using router::RouteReason;

asio::awaitable<std::optional<MysqlSession::Reply>> MysqlSession::prepare_on(Prepared& ps,
                                                                             Slot slot) {
    const std::string request = "\x16" + ps.sql;
    auto reply = co_await exchange(
        slot, {reinterpret_cast<const std::uint8_t*>(request.data()), request.size()},
        ResponseKind::prepare);
    if (reply && !reply->error) {
        ps.prepared(slot, scanner_.statement_id(), backends_[slot].generation,
                    scanner_.prepare_params());
        if (pooled(slot)) {
            // Kept on the connection for every session that borrows it; the oldest beyond the
            // bound is closed there (no response to read).
            pool::BackendConn& conn = *backends_[slot].conn;
            const std::uint32_t old = conn.carried->statements.add(
                statement_key(ps), {scanner_.statement_id(), scanner_.prepare_params()});
            if (old != 0) {
                // Own buffers: request_ and wire_ hold the execute this prepare is for.
                std::vector<std::uint8_t> close, wire;
                mysql::write_stmt_close(old, close);
                mysql::write_packets(close, 0, wire);
                const auto ec = co_await conn.transport().write_all(asio::buffer(wire));
                if (ec) backends_[slot].broken = true;
            }
        }
    }
    co_return reply;
}

asio::awaitable<bool> MysqlSession::ensure_prepared(Prepared& ps, Slot slot) {
    if (pooled(slot)) {
        // A pooled connection may have it from any session that borrowed it (or have closed
        // it since this session used it): its own list says.
        Backend& b = backends_[slot];
        if (const auto* e = b.conn->carried->statements.find(statement_key(ps))) {
            ps.prepared(slot, e->id, b.generation, e->params);
            co_return true;
        }
    } else if (prepared_on(ps, slot)) {
        co_return true;
    }
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
    ps.cls = router::classify(ps.sql, state_.sql_mode());
    if (!worker_.shared().rules.empty()) ps.digest = router::digest(ps.sql, state_.sql_mode()).text;
    if (auto own = own_connection_id(ps.cls, ps.sql)) ps.sql = std::move(*own);

    // Prepared where its executions will most likely run.
    router::Route route;
    Slot slot = co_await choose(ps.cls, ps.digest, route, false, false);
    if (route.destination == Destination::refuse)
        co_return co_await send_error(frame.next_seq, route.rule->error_code, "HY000",
                                      route.rule->error_message);
    auto reply = co_await prepare_on(ps, slot);
    if (slot == replica_slot && (!reply || reply->error)) {
        // The replica could not prepare it (gone, or lacking a table): the primary can.
        if (!reply) replica_failed("connection lost");
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
        const std::uint32_t id = statements_.add(std::move(ps));
        mysql::set_prepare_ok_id(reply->packets[0], id);
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
    const std::uint32_t id = *mysql::stmt_id(request_); // min_size >= 5
    Prepared* ps = statements_.find(id);
    if (!ps) {
        const std::string message =
            fmt::format("Unknown prepared statement handler ({}) given to {}", id, handler);
        const bool sent =
            co_await send_error(frame.next_seq, mysql::er::unknown_stmt_handler, "HY000", message);
        co_return std::pair{nullptr, sent};
    }
    co_return std::pair{ps, true};
}

asio::awaitable<bool> MysqlSession::on_execute(const mysql::MessageFrame& frame) {
    auto [found, go_on] = co_await statement_of(frame, 10, "mysqld_stmt_execute");
    if (!found) co_return go_on;
    Prepared& ps = *found;
    // At least 10 bytes of a COM_STMT_EXECUTE (dispatch saw its command byte): it parses.
    // The views point into request_, whose layout stays as it is below (ids are overwritten
    // in place).
    const auto execute = mysql::parse_execute(request_, ps.params);
    const bool bound = execute && execute->new_params_bound;
    const bool has_flag = execute && execute->has_bound_flag;
    const bool cursor = execute && execute->cursor();
    if (bound && !execute->types.empty())
        ps.bind_types({execute->types.begin(), execute->types.end()});

    // Cache check first, per bound parameters: their types (sent now or bound before) and
    // values. Long data and cursors are not cached.
    FillFlight flight;
    const CacheReadScope cache_scope{capture_wanted_, cache_plan_.active};
    if (ps.cls.cls == router::StatementClass::read && execute && !cursor && ps.long_data.empty()) {
        params_key_.assign(ps.types.begin(), ps.types.end());
        params_key_.push_back(0xff); // the types end here
        params_key_.insert(params_key_.end(), execute->params_block.begin(),
                           execute->params_block.end());
        const bool planned = co_await plan_cached_read(ps.cls, ps.sql, ps.digest, params_key_);
        if (planned) {
            const auto served = co_await serve_cached(frame.next_seq);
            if (served) {
                worker_.stats().statements[static_cast<std::size_t>(ps.cls.cls)].add();
                worker_.stats().routes[static_cast<std::size_t>(RouteReason::cache)].add();
                last_on_replica_ = false;
                co_return *served;
            }
            flight.start(worker_.cache(), cache_plan_.key);
            capture_wanted_ = true;
            capture_format_ = mysql::ResultFormat::binary;
        }
    }

    router::Route route;
    pending_wait_.clear();
    Slot slot = co_await choose(ps.cls, ps.digest, route, true, true);
    if (route.destination == Destination::refuse) {
        capture_wanted_ = false;
        cache_plan_.active = false;
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
            if (!backends_[replica_slot].conn) replica_failed("connection lost");
            slot = primary_slot;
            route = {Destination::primary, RouteReason::no_replica};
            co_await sync_state(primary_slot);
            ready = co_await ensure_prepared(ps, slot);
        }
        if (!ready) co_return co_await not_prepared(frame);
        wire_.clear();
        for (auto& chunk : ps.long_data) {
            mysql::set_stmt_id(chunk, ps.id[slot]);
            mysql::write_packets(chunk, 0, wire_);
        }
        mysql::set_stmt_id(request_, ps.id[slot]);
        if (has_flag && !bound && !ps.types.empty() && !ps.types_sent[slot]) {
            // This backend has not seen the parameter types the client bound earlier
            // elsewhere: send them along, as the client did the first time.
            scratch_.clear();
            mysql::write_execute_with_types(request_, ps.params, ps.types, scratch_);
            mysql::write_packets(scratch_, 0, wire_);
        } else {
            mysql::write_packets(request_, 0, wire_);
        }
        // A cursor (flags: CURSOR_TYPE_READ_ONLY and friends) ends the response at the
        // column definitions; its rows come through COM_STMT_FETCH.
        const ResponseKind kind = cursor ? ResponseKind::cursor : ResponseKind::query;
        if (slot == replica_slot && !pending_wait_.empty()) {
            // The read-your-writes wait goes in the same write as the execute.
            const WaitedRead w = co_await forward_after_wait(std::exchange(pending_wait_, {}),
                                                             pending_wait_version_, wire_, kind);
            r = w.relay;
            if (w.outcome == Waited::stale) { // only on the first attempt: then the primary
                // Its answer was dropped: the primary runs it.
                slot = primary_slot;
                route = {Destination::primary, RouteReason::read_your_writes};
                co_await sync_state(primary_slot);
                continue;
            }
            if (w.outcome == Waited::lost) r = Relay::backend_lost;
        } else {
            if (slot == primary_slot && ps.cls.cls != router::StatementClass::read)
                plan_write(ps.cls, ps.sql);
            r = co_await forward(slot, wire_, kind);
            if (r != Relay::ok && collect_bumps(false, 0)) co_await bump_collected();
        }
        if (r == Relay::backend_lost && slot == replica_slot && relayed_ == 0 && attempt == 0) {
            replica_failed("connection lost");
            slot = primary_slot;
            route = {Destination::primary, RouteReason::no_replica};
            co_await sync_state(primary_slot);
            continue;
        }
        break;
    }
    capture_wanted_ = false;
    if (r == Relay::ok) {
        fill_cache(slot);
    } else {
        cache_plan_.active = false;
    }
    flight.finish();
    count_statement(ps.cls, route, slot);
    if (r != Relay::ok) co_return co_await relay_failed(slot, r, frame.next_seq);
    if (!ps.types.empty()) ps.types_sent[slot] = true;
    ps.long_data.clear();
    ps.last_slot = slot;
    // An open cursor keeps its connection (the rows are fetched from it).
    const bool opened = cursor && !scanner_.ended_with_error() &&
                        (scanner_.last_status() & mysql::status::cursor_exists);
    if (opened != ps.cursor_open) {
        cursors_open_ += opened ? 1 : -1;
        ps.cursor_open = opened;
    }
    if (ps.cls.flags.runs_hidden_statements) state_.hide_user_variables();
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
    mysql::set_stmt_id(request_, ps.id[primary_slot]);
    wire_.clear();
    mysql::write_packets(request_, 0, wire_);
    plan_write(ps.cls, ps.sql);
    const Relay r = co_await forward(primary_slot, wire_, ResponseKind::query);
    if (r != Relay::ok && collect_bumps(false, 0)) co_await bump_collected();
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
    const std::uint32_t id = *mysql::stmt_id(request_); // min_size 5
    if (!fetch) ps.long_data.clear();
    const bool had_cursor = ps.cursor_open;
    if (!fetch && ps.cursor_open) {
        ps.cursor_open = false;
        --cursors_open_;
    }
    int slot = -1;
    if (ps.last_slot >= 0 && prepared_on(ps, static_cast<Slot>(ps.last_slot)))
        slot = ps.last_slot;
    else if (!fetch && prepared_on(ps, primary_slot))
        slot = primary_slot;
    else if (!fetch && prepared_on(ps, replica_slot))
        slot = replica_slot;
    // Pooled, without a cursor, there is nothing on a backend to reset: long data waits in
    // Sluice until the execute.
    if (!fetch && !had_cursor && slot >= 0 && pooled(static_cast<Slot>(slot))) slot = -1;
    if (slot < 0) {
        if (fetch) {
            const std::string message = fmt::format("The statement ({}) has no open cursor.", id);
            co_return co_await send_error(frame.next_seq, 1421, "HY000", message);
        }
        const auto& p = backends_[primary_slot].conn;
        co_return co_await send_ok(frame.next_seq, p ? p->status() : mysql::status::autocommit);
    }
    const auto s = static_cast<Slot>(slot);
    mysql::set_stmt_id(request_, ps.id[s]);
    wire_.clear();
    mysql::write_packets(request_, 0, wire_);
    const Relay r = co_await forward(s, wire_, fetch ? ResponseKind::rows : ResponseKind::single);
    if (fetch && ps.cursor_open &&
        (r != Relay::ok || scanner_.ended_with_error() ||
         (scanner_.last_status() & mysql::status::last_row_sent))) {
        ps.cursor_open = false; // read to its end (or gone): the connection is free again
        --cursors_open_;
    }
    if (r != Relay::ok) co_return co_await relay_failed(s, r, frame.next_seq);
    co_return true;
}

asio::awaitable<void> MysqlSession::on_stmt_close(const mysql::MessageFrame& frame) {
    const auto payload = mysql::assemble_payload(cbuf_.readable(), frame, scratch_);
    const auto id = mysql::stmt_id(payload);
    cbuf_.consume(frame.wire_size);
    const Prepared* ps = id ? statements_.find(*id) : nullptr;
    if (!ps) co_return; // as a server does: no answer, no error
    if (ps->cursor_open) --cursors_open_;
    for (Slot s : {primary_slot, replica_slot}) {
        // A pooled connection keeps its statements for whoever borrows it next.
        if (!prepared_on(*ps, s) || pooled(s)) continue;
        request_.clear();
        mysql::write_stmt_close(ps->id[s], request_);
        wire_.clear();
        mysql::write_packets(request_, 0, wire_);
        // No response; a lost connection shows at the next command.
        co_await backends_[s].conn->transport().write_all(asio::buffer(wire_));
    }
    statements_.erase(*id);
}

void MysqlSession::on_long_data(const mysql::MessageFrame& frame) {
    const auto payload = mysql::assemble_payload(cbuf_.readable(), frame, scratch_);
    // Kept until the execute shows which backend needs it (with that backend's id).
    if (const auto data = mysql::parse_long_data(payload)) {
        if (Prepared* ps = statements_.find(data->statement_id))
            ps->long_data.emplace_back(payload.begin(), payload.end());
    }
    cbuf_.consume(frame.wire_size);
}

} // namespace sluice
