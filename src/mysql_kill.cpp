// KILL of a Sluice connection id (COM_PROCESS_KILL, KILL [QUERY] n): the target session's
// backend threads, found in the session registry.

#include "mysql_session.hpp"
#include "sluice/protocol/mysql/command.hpp"
#include "sluice/protocol/mysql/packet.hpp"
#include "sluice/router/dialect.hpp"

#include <spdlog/spdlog.h>

namespace sluice {

namespace mysql = protocol::mysql;
using mysql::ResponseKind;
namespace dialect = router::mysql_dialect;

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
    if (!threads) {
        const std::string message = fmt::format("Unknown thread id: {}", target);
        co_return co_await send_error(frame.next_seq, 1094, "HY000", message);
    }
    if (threads->primary == 0 && threads->user != user_) {
        // Pooled and idle, the target holds no backend thread whose KILL the primary would
        // refuse: the privilege to kill another user's session is asked of it instead.
        co_await sync_state(primary_slot);
        auto reply = co_await run_sql(primary_slot, dialect::may_kill_others());
        if (!reply) {
            end_reason_ = "backend lost";
            co_await send_error(frame.next_seq, mysql::er::net_read_error, "08S01",
                                "Lost connection to the primary during KILL");
            co_return false;
        }
        const bool deprecate_eof = (client_caps_ & mysql::cap::deprecate_eof) != 0;
        if (reply->error || mysql::first_text_value(reply->packets, deprecate_eof) != "1") {
            const std::string message = fmt::format("You are not owner of thread {}", target);
            co_return co_await send_error(frame.next_seq, 1095, "HY000", message);
        }
    }
    if (threads->primary != 0) {
        // The primary checks the privilege: killing another user's thread needs it there.
        co_await sync_state(primary_slot); // pooled: borrow a connection for it
        auto reply = co_await run_sql(primary_slot, dialect::kill(query, threads->primary));
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
        co_await kill_on_replica(threads->replica_index, dialect::kill(query, threads->replica));
    if (!query) threads->worker->kill_session(static_cast<std::uint32_t>(target));
    spdlog::info("{} {}", prefix(), dialect::kill(query, target));
    const auto& p = backends_[primary_slot].conn;
    co_return co_await send_ok(frame.next_seq, p ? p->status() : mysql::status::autocommit);
}

asio::awaitable<void> MysqlSession::kill_on_replica(std::size_t index, std::string sql) {
    // Best effort: the query may have ended, or the replica gone, by now.
    Backend& r = backends_[replica_slot];
    if (r.conn && r.index == index) {
        co_await run_sql(replica_slot, sql);
        co_return;
    }
    std::string payload(1, static_cast<char>(mysql::Command::query));
    payload += sql;
    const std::span<const std::uint8_t> bytes{reinterpret_cast<const std::uint8_t*>(payload.data()),
                                              payload.size()};
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
