// Responses streamed from a backend to the client as they arrive (walked packet by packet
// where OKs must be read or rewritten), LOAD DATA LOCAL INFILE, and whole responses read
// for Sluice's own commands.

#include "mysql_session.hpp"
#include "sluice/protocol/mysql/command.hpp"
#include "sluice/protocol/mysql/packet.hpp"
#include "sluice/router/dialect.hpp"

#include <spdlog/spdlog.h>

namespace sluice {

namespace mysql = protocol::mysql;
using mysql::ResponseKind;
namespace dialect = router::mysql_dialect;

namespace {
constexpr std::size_t backend_buffer_size = std::size_t{64} * 1024;

/// A request in flight on a backend, for /backends: counted while this lives (a coroutine
/// destroyed mid-relay uncounts it too).
class Outstanding {
public:
    explicit Outstanding(Counter& c) noexcept : c_(c) { c_.add(); }
    Outstanding(const Outstanding&) = delete;
    Outstanding& operator=(const Outstanding&) = delete;
    ~Outstanding() { c_.sub(); }

private:
    Counter& c_;
};
} // namespace

asio::awaitable<bool> MysqlSession::on_primary(const mysql::MessageFrame& frame,
                                               ResponseKind kind) {
    const Outcome outcome = co_await primary_command(frame, kind);
    co_return outcome != Outcome::end;
}

asio::awaitable<MysqlSession::Outcome>
MysqlSession::primary_command(const mysql::MessageFrame& frame, ResponseKind kind) {
    co_await sync_state(primary_slot);
    const Relay r = co_await forward(primary_slot, cbuf_.readable().first(frame.wire_size), kind);
    cbuf_.consume(frame.wire_size);
    if (r != Relay::ok) {
        const bool go_on = co_await relay_failed(primary_slot, r, frame.next_seq);
        co_return go_on ? Outcome::failed : Outcome::end;
    }
    last_on_replica_ = false;
    co_return Outcome::answered;
}

asio::awaitable<MysqlSession::Relay>
MysqlSession::forward(Slot slot, std::span<const std::uint8_t> request, ResponseKind kind) {
    relayed_ = 0;
    scanner_.start(kind, (client_caps_ & mysql::cap::deprecate_eof) != 0);
    if (!backends_[slot].conn) co_return Relay::backend_lost; // failed during state replay
    const Outstanding in_flight{worker_.stats().backend_outstanding[backends_[slot].index]};
    if (slot == replica_slot) proven_before_send();
    pool::BackendConn& b = *backends_[slot].conn;
    const auto ec = co_await b.transport().write_all(asio::buffer(request.data(), request.size()));
    if (ec) {
        // The server may have refused the statement and closed the connection before taking
        // all of it (1153: more than its max_allowed_packet): its ERR is the answer. The
        // connection is replaced before the session's next statement.
        backends_[slot].broken = true;
        // A replica's refusal is not relayed: the primary gets the statement instead.
        if (slot != primary_slot) co_return Relay::backend_lost;
        const Relay r = co_await relay(slot, false);
        const bool refused = r == Relay::ok && scanner_.ended_with_error();
        co_return refused ? Relay::ok : Relay::backend_lost;
    }
    if (slot != replica_slot) co_return co_await relay(slot, false);
    // A replica's answers teach this worker its round-trip time (Worker::routing_topology).
    const auto sent = std::chrono::steady_clock::now();
    const Relay r = co_await relay(slot, false);
    if (r == Relay::ok) {
        const auto now = std::chrono::steady_clock::now();
        worker_.observe_round_trip(
            backends_[slot].index,
            std::chrono::duration_cast<std::chrono::microseconds>(now - sent), now);
    }
    co_return r;
}

asio::awaitable<bool> MysqlSession::relay_failed(Slot slot, Relay r, std::uint8_t reply_seq) {
    const auto& name = worker_.shared().backends[backends_[slot].index]->endpoint.name;
    switch (r) {
    case Relay::ok:
        co_return true;
    case Relay::client_lost:
        end_reason_ = "client gone mid-result";
        co_return false;
    case Relay::client_protocol:
        // The backend is in the middle of the exchange the client broke: closing its
        // connection aborts the statement there.
        drop_slot(slot);
        co_return false;
    case Relay::primary_read_only:
        // Only relay() asked to keep it answers this: not reached.
        co_return co_await send_error(reply_seq, held_error_.code, held_error_.sql_state.c_str(),
                                      held_error_.message);
    case Relay::backend_lost:
    case Relay::backend_protocol: {
        worker_.stats().count_error(ClientError::backend_lost);
        // Asked before the connection is dropped: its status says whether a transaction
        // was open.
        const bool state_lost =
            slot == primary_slot && (primary_lost_state_ || primary_state_lost());
        if (r == Relay::backend_protocol)
            spdlog::warn("{} backend {} sent bytes that are not valid MySQL protocol", prefix(),
                         name);
        if (slot == replica_slot)
            replica_failed("connection lost");
        else
            drop_slot(slot);
        end_reason_ =
            r == Relay::backend_lost ? "backend lost mid-query" : "backend protocol error";
        if (relayed_ != 0 || r != Relay::backend_lost) co_return false; // the stream is broken
        if (slot == primary_slot && primary_unreachable_) {
            // No primary to send it to: it did not run, and the session goes on.
            primary_unreachable_ = false;
            if (primary_unreachable_code_ == mysql::er::con_count_error)
                co_return co_await send_error(reply_seq, primary_unreachable_code_, "08004",
                                              primary_unreachable_why_);
            const std::string message = primary_unreachable_why_ + ": the statement did not run";
            co_return co_await send_error(reply_seq, mysql::er::unknown_error, "08S01", message);
        }
        if (state_lost) {
            // What the session held on the primary is gone: it says so, and goes on without.
            primary_lost_state_ = false;
            const std::string message =
                fmt::format("Lost connection to backend '{}': the session's open transaction, "
                            "temporary tables, locks and user variables there are gone",
                            name);
            const bool sent =
                co_await send_error(reply_seq, mysql::er::net_read_error, "08S01", message);
            forget_primary_state();
            co_return sent;
        }
        const std::string message =
            fmt::format("Lost connection to backend '{}' during query", name);
        const bool sent =
            co_await send_error(reply_seq, mysql::er::net_read_error, "08S01", message);
        // Nothing reached the client: the next statement gets a new connection.
        const bool go_on = sent && slot == primary_slot;
        co_return go_on;
    }
    }
    co_return false;
}

asio::awaitable<MysqlSession::Relay> MysqlSession::relay(Slot slot, bool discard) {
    Backend& backend = backends_[slot];
    pool::ReadBuffer& bbuf = backend.conn->buffer();
    pool::Transport& transport = backend.conn->transport();
    // The primary's OKs are read for the GTID of each write, and rewritten for a client that
    // did not ask for session tracking: Sluice walks its responses packet by packet. Other
    // responses stream as they come.
    // A read missed in the cache is captured as it streams, to be stored after (fill_cache).
    bool capturing = capture_wanted_ && !discard;
    if (capturing)
        capture_.start(capture_format_,
                       (backend.conn->capabilities() & mysql::cap::deprecate_eof) != 0,
                       worker_.shared().cfg.cache.max_result_bytes);
    const bool inspect = backend.tracks_gtid || backend.strip_tracking || capturing;
    bool need_more = bbuf.empty();
    std::size_t want = 4096;
    for (;;) {
        if (need_more) {
            auto space = bbuf.prepare(want);
            auto [ec, n] = co_await transport.read_some(asio::buffer(space.data(), space.size()));
            if (ec) co_return Relay::backend_lost;
            bbuf.commit(n);
            need_more = false;
        }
        const auto chunk = bbuf.readable();
        std::size_t used = 0;
        bool rewritten = false;
        if (!inspect) {
            auto n = scanner_.feed(chunk);
            if (!n) co_return Relay::backend_protocol;
            used = *n;
        } else {
            out_.clear();
            while (scanner_.state() == mysql::ResponseScanner::State::running &&
                   chunk.size() - used >= 4) {
                const std::size_t len = std::size_t{chunk[used]} |
                                        (std::size_t{chunk[used + 1]} << 8) |
                                        (std::size_t{chunk[used + 2]} << 16);
                if (chunk.size() - used - 4 < len) {
                    want = 4 + len - (chunk.size() - used);
                    break;
                }
                const auto packet = chunk.subspan(used, 4 + len);
                auto n = scanner_.feed(packet);
                if (!n) co_return Relay::backend_protocol;
                if (*n != packet.size()) co_return Relay::backend_protocol;
                if (capturing) {
                    capture_.add(packet.subspan(4));
                    capturing = !capture_.refused().has_value();
                }
                bool replaced = false;
                if (scanner_.last_packet_ok()) {
                    auto ok = mysql::parse_tracked_ok(packet.subspan(4));
                    if (ok && backend.tracks_gtid && !ok->state.empty()) {
                        // Known before the OK leaves: a read that arrives after any client
                        // has it sees the write (consistency "global").
                        auto gtid = mysql::tracked_gtid(ok->state);
                        if (!gtid.empty()) acknowledged(std::move(gtid));
                    }
                    if (ok && backend.strip_tracking) {
                        if (!rewritten) {
                            out_.assign(chunk.begin(), chunk.begin() + static_cast<long>(used));
                            rewritten = true;
                        }
                        scratch_.clear();
                        mysql::write_untracked_ok(ok->ok, scratch_);
                        mysql::write_packets(scratch_, packet[3], out_); // same sequence id
                        replaced = true;
                    }
                }
                if (rewritten && !replaced) out_.insert(out_.end(), packet.begin(), packet.end());
                used += packet.size();
            }
            if (used == 0) {
                need_more = true;
                continue;
            }
            want = 4096;
        }
        if (hold_read_only_ && relayed_ == 0 &&
            scanner_.state() == mysql::ResponseScanner::State::done &&
            scanner_.ended_with_error() && scanner_.packets() == 1 && used > 4) {
            // A write the primary refused because it is read-only (ER_OPTION_PREVENTS_STATEMENT
            // naming --read-only) did not run: the caller runs it on the next primary.
            auto err = mysql::parse_err(chunk.subspan(4, used - 4));
            if (err && err->code == 1290 && err->message.find("read-only") != std::string::npos) {
                held_error_ = std::move(*err);
                bbuf.consume(used);
                co_return Relay::primary_read_only;
            }
        }
        if (slot == primary_slot && scanner_.state() == mysql::ResponseScanner::State::done &&
            collect_bumps(scanner_.has_status() && !scanner_.ended_with_error(),
                          scanner_.last_status()))
            // Table versions move before the client learns of the write (invalidate, then
            // respond): a read it sends next cannot find what was cached before.
            co_await bump_collected();
        // Result packets go to the client as they arrive, one write per read.
        const std::span<const std::uint8_t> send =
            rewritten ? std::span<const std::uint8_t>(out_) : chunk.first(used);
        if (!discard) {
            const auto ec = co_await client_.write_all(asio::buffer(send.data(), send.size()));
            if (ec) co_return Relay::client_lost;
            relayed_ += send.size();
            worker_.stats().bytes_to_clients.add(send.size());
        }
        bbuf.consume(used);
        switch (scanner_.state()) {
        case mysql::ResponseScanner::State::running:
            need_more = bbuf.empty();
            break;
        case mysql::ResponseScanner::State::done:
            // Nothing may follow a complete response until the next command.
            if (!bbuf.empty()) co_return Relay::backend_protocol;
            // An ERR carries no status flags: the backend's last known status stands.
            if (!scanner_.ended_with_error() && scanner_.has_status())
                backend.conn->set_status(scanner_.last_status());
            bbuf.shrink_to(backend_buffer_size);
            co_return Relay::ok;
        case mysql::ResponseScanner::State::local_infile: {
            const Relay r = co_await pump_local_infile(slot);
            if (r != Relay::ok) co_return r;
            scanner_.resume();
            need_more = bbuf.empty();
            break;
        }
        }
    }
}

asio::awaitable<MysqlSession::Relay> MysqlSession::pump_local_infile(Slot slot) {
    // The client sends the file as packets and ends it with an empty one; all go to the
    // backend unchanged. Their sequence ids continue the server's request: a packet out of
    // order gets the server's own answer (1156) from Sluice, before it reaches the backend,
    // which would answer it and then wait for the rest of the file.
    pool::Transport& backend = backends_[slot].conn->transport();
    const mysql::PacketSplitter splitter{mysql::max_packet_payload};
    auto seq = static_cast<std::uint8_t>(scanner_.last_seq() + 1);
    for (;;) {
        std::size_t pos = 0;
        bool finished = false;
        bool out_of_order = false;
        for (;;) {
            auto p = splitter.next(cbuf_.readable().subspan(pos));
            if (!p || !*p) break;
            if ((*p)->seq != seq) {
                out_of_order = true;
                break;
            }
            ++seq;
            pos += (*p)->wire_size();
            if ((*p)->payload.empty()) {
                finished = true;
                break;
            }
        }
        if (pos > 0) {
            const auto bytes = cbuf_.readable().first(pos);
            const auto wec = co_await backend.write_all(asio::buffer(bytes.data(), bytes.size()));
            if (wec) co_return Relay::backend_lost;
            worker_.stats().bytes_from_clients.add(pos);
            cbuf_.consume(pos);
        }
        if (finished) co_return Relay::ok;
        if (out_of_order) {
            worker_.stats().count_error(ClientError::malformed_packet);
            end_reason_ = "LOCAL INFILE data out of order";
            co_await send_error(seq, mysql::er::net_packets_out_of_order, "08S01",
                                "Got packets out of order");
            co_return Relay::client_protocol;
        }
        auto space = cbuf_.prepare(4096);
        auto [ec, n] = co_await client_.read_some(asio::buffer(space.data(), space.size()));
        if (ec) co_return Relay::client_lost;
        cbuf_.commit(n);
    }
}

asio::awaitable<std::optional<MysqlSession::Reply>>
MysqlSession::exchange(Slot slot, std::span<const std::uint8_t> payload, ResponseKind kind) {
    Backend& backend = backends_[slot];
    if (!backend.conn) co_return std::nullopt;
    pool::BackendConn& conn = *backend.conn;
    scratch_.clear();
    mysql::write_packets(payload, 0, scratch_);
    const auto ec = co_await conn.transport().write_all(asio::buffer(scratch_));
    if (ec) {
        drop_slot(slot);
        co_return std::nullopt;
    }
    auto reply = co_await read_reply(slot, kind);
    co_return reply;
}

asio::awaitable<std::optional<MysqlSession::Reply>> MysqlSession::read_reply(Slot slot,
                                                                             ResponseKind kind) {
    Backend& backend = backends_[slot];
    pool::BackendConn& conn = *backend.conn;
    // Sluice's own commands get whole packets; their responses are small.
    const bool deprecate_eof = (conn.capabilities() & mysql::cap::deprecate_eof) != 0;
    scanner_.start(kind, deprecate_eof);
    Reply reply;
    while (scanner_.state() != mysql::ResponseScanner::State::done) {
        auto frame = co_await pool::read_message(conn.transport(), conn.buffer(),
                                                 mysql::max_packet_payload * 4);
        if (!frame || scanner_.state() == mysql::ResponseScanner::State::local_infile) {
            drop_slot(slot);
            co_return std::nullopt;
        }
        auto used = scanner_.feed(conn.buffer().readable().first(frame->wire_size));
        if (!used || *used != frame->wire_size) {
            drop_slot(slot);
            co_return std::nullopt;
        }
        auto bytes = mysql::assemble_payload(conn.buffer().readable(), *frame, out_);
        reply.packets.emplace_back(bytes.begin(), bytes.end());
        if (scanner_.last_packet_ok() && backend.tracks_gtid) {
            auto ok = mysql::parse_tracked_ok(bytes);
            if (ok && !ok->state.empty()) {
                auto gtid = mysql::tracked_gtid(ok->state);
                if (!gtid.empty()) acknowledged(std::move(gtid));
            }
        }
        conn.buffer().consume(frame->wire_size);
    }
    reply.error = scanner_.ended_with_error();
    if (reply.error) {
        if (auto err = mysql::parse_err(reply.packets.back())) reply.err = std::move(*err);
    } else if (scanner_.has_status()) {
        conn.set_status(scanner_.last_status());
    }
    co_return reply;
}

asio::awaitable<MysqlSession::WaitedRead>
MysqlSession::forward_after_wait(std::string token, std::uint64_t version,
                                 std::span<const std::uint8_t> request, ResponseKind kind) {
    Backend& r = backends_[replica_slot];
    relayed_ = 0;
    if (!r.conn) co_return WaitedRead{Waited::lost};
    const Shared& shared = worker_.shared();
    const Outstanding in_flight{worker_.stats().backend_outstanding[r.index]};
    // The wait and the read in one write: the replica runs them in order, so the read sees
    // what the wait waited for, and the wait costs no round trip of its own.
    std::string wait(1, static_cast<char>(mysql::Command::query));
    wait += dialect::causal_wait(token, shared.cfg.routing.causal_read_timeout, r.mariadb);
    pipeline_.clear();
    mysql::write_packets({reinterpret_cast<const std::uint8_t*>(wait.data()), wait.size()}, 0,
                         pipeline_);
    pipeline_.insert(pipeline_.end(), request.begin(), request.end());
    SharedWait shared_wait{worker_, r.index, version};
    proven_before_send();
    const auto sent = std::chrono::steady_clock::now();
    const auto ec = co_await r.conn->transport().write_all(asio::buffer(pipeline_));
    if (ec) {
        replica_failed("connection lost");
        co_return WaitedRead{Waited::lost};
    }
    auto reply = co_await read_reply(replica_slot, ResponseKind::query);
    auto& waits = worker_.stats().causal_waits;
    if (!reply) {
        waits[static_cast<std::size_t>(CausalWait::error)].add();
        replica_failed("connection lost");
        co_return WaitedRead{Waited::lost};
    }
    worker_.stats().observe_wait(std::chrono::steady_clock::now() - sent);
    const bool deprecate_eof = (client_caps_ & mysql::cap::deprecate_eof) != 0;
    const bool in_time =
        !reply->error && mysql::first_text_value(reply->packets, deprecate_eof) == "0";
    relayed_ = 0;
    scanner_.start(kind, deprecate_eof);
    if (in_time) {
        waits[static_cast<std::size_t>(CausalWait::ok)].add();
        // The read ran after the wait: it reflects the watermark version the wait was for.
        if (cache_plan_.active && version != 0 && version >= cache_plan_.needs)
            cache_plan_.reflects = true;
        waited(std::move(token), version);
        shared_wait.finish(); // sessions parked behind this wait read now
        const Relay answered = co_await relay(replica_slot, false);
        co_return WaitedRead{Waited::answered, answered};
    }
    waits[static_cast<std::size_t>(reply->error ? CausalWait::error : CausalWait::timeout)].add();
    // Not in time: the read's answer is read and dropped; the primary answers instead, and
    // this session reads elsewhere for a while (the replica is behind, not broken).
    const Relay dropped = co_await relay(replica_slot, true);
    lagging_replica_ = r.index;
    lagging_until_ = std::chrono::steady_clock::now() + shared.cfg.routing.replica_retry;
    replica_failed(dropped == Relay::ok ? "behind the writes a read must see" : "connection lost");
    co_return WaitedRead{Waited::stale};
}

asio::awaitable<std::optional<MysqlSession::Reply>> MysqlSession::run_sql(Slot slot,
                                                                          std::string_view sql) {
    std::string payload(1, static_cast<char>(mysql::Command::query));
    payload += sql;
    auto reply = co_await exchange(
        slot, {reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()},
        ResponseKind::query);
    co_return reply;
}

} // namespace sluice
