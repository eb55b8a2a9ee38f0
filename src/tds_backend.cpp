#include "tds_backend.hpp"

#include "sluice/protocol/tds/packet.hpp"
#include "sluice/protocol/tds/prelogin.hpp"
#include "sluice/protocol/tds/request.hpp"
#include "sluice/protocol/tds/text.hpp"
#include "sluice/protocol/tds/type_info.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::tds {

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using namespace asio::experimental::awaitable_operators;

std::uint16_t u16le(Bytes b, std::size_t at) {
    return static_cast<std::uint16_t>(b[at] | (b[at + 1] << 8));
}

/// Reads one whole message from `b` (packets joined).
asio::awaitable<std::variant<std::vector<std::uint8_t>, std::string>>
read_message(TdsBackend& b, std::uint8_t* type) {
    ptds::MessageAssembler assembler(32768 + 8, 64u << 20);
    for (;;) {
        if (b.buf.empty()) {
            const error_code ec = co_await b.stream.read_some(b.buf);
            if (ec) co_return std::string("read: ") + ec.message();
        }
        auto used = assembler.feed(b.buf);
        if (!used) co_return std::string("bad packet from the backend: ") + used.error().message();
        b.buf.erase(b.buf.begin(), b.buf.begin() + static_cast<std::ptrdiff_t>(*used));
        if (assembler.complete()) {
            const auto m = assembler.message();
            if (type != nullptr) *type = m.type;
            co_return std::vector<std::uint8_t>(m.payload.begin(), m.payload.end());
        }
    }
}

asio::awaitable<error_code> send(TdsBackend& b, ptds::PacketType type, std::uint8_t status,
                                 Bytes payload, std::size_t packet_size) {
    std::vector<std::uint8_t> out;
    ptds::write_message(type, status, payload, packet_size, 1, out);
    co_return co_await b.stream.write(out);
}

using Connected = std::variant<std::unique_ptr<TdsBackend>, TdsConnectFailure>;

asio::awaitable<Connected>
connect_once(std::string host, std::uint16_t port, const TdsEndpoint& ep, ptds::Login7 login,
             std::optional<std::pair<std::string, std::uint16_t>>& route) {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    const std::string service = std::to_string(port); // named: see check-coroutines.py
    auto [rec, results] = co_await resolver.async_resolve(host, service, use_tuple);
    if (rec) co_return TdsConnectFailure{"resolve " + host + ": " + rec.message(), {}};
    tcp::socket socket(ex);
    auto [cec, endpoint] = co_await asio::async_connect(socket, results, use_tuple);
    if (cec) co_return TdsConnectFailure{"connect: " + cec.message(), {}};
    socket.set_option(tcp::no_delay(true));
    auto b = std::make_unique<TdsBackend>(std::move(socket));

    // PRELOGIN: encryption on when the backend is configured with TLS, else not supported.
    ptds::Prelogin pre;
    pre.options.push_back(
        {static_cast<std::uint8_t>(ptds::PreloginOption::version), {16, 0, 0, 0, 0, 0}});
    pre.options.push_back({static_cast<std::uint8_t>(ptds::PreloginOption::encryption),
                           {ep.tls != nullptr ? ptds::encrypt::on : ptds::encrypt::not_sup}});
    pre.options.push_back({static_cast<std::uint8_t>(ptds::PreloginOption::instopt), {0}});
    pre.options.push_back(
        {static_cast<std::uint8_t>(ptds::PreloginOption::thread_id), {0, 0, 0, 0}});
    pre.options.push_back({static_cast<std::uint8_t>(ptds::PreloginOption::mars), {0}});
    std::vector<std::uint8_t> payload;
    ptds::write_prelogin(pre, payload);
    const error_code pec = co_await send(*b, ptds::PacketType::prelogin, 0, payload, 4096);
    if (pec) co_return TdsConnectFailure{"PRELOGIN: " + pec.message(), {}};
    auto reply = co_await read_message(*b, nullptr);
    if (auto* why = std::get_if<std::string>(&reply))
        co_return TdsConnectFailure{"PRELOGIN: " + *why, {}};
    auto parsed = ptds::parse_prelogin(std::get<0>(reply));
    if (!parsed) co_return TdsConnectFailure{"PRELOGIN reply: " + parsed.error().message(), {}};
    const auto enc = parsed->encryption().value_or(ptds::encrypt::not_sup);
    if (ep.tls != nullptr) {
        if (enc != ptds::encrypt::on && enc != ptds::encrypt::req)
            co_return TdsConnectFailure{"the backend does not offer encryption (tls = true)", {}};
        const error_code ec = co_await b->stream.handshake_in_prelogin(*ep.tls, false, host);
        if (ec) co_return TdsConnectFailure{"TLS: " + b->stream.tls_error(), {}};
    } else if (enc == ptds::encrypt::req) {
        co_return TdsConnectFailure{"the backend requires encryption: set tls = true for it", {}};
    }

    // LOGIN7, then the login reply.
    payload.clear();
    ptds::write_login7(login, payload);
    const error_code lec = co_await send(*b, ptds::PacketType::login7, 0, payload, 4096);
    if (lec) co_return TdsConnectFailure{"LOGIN7: " + lec.message(), {}};
    auto answer = co_await read_message(*b, nullptr);
    if (auto* why = std::get_if<std::string>(&answer))
        co_return TdsConnectFailure{"login: " + *why, {}};
    ptds::TokenScanner scan;
    const auto& bytes = std::get<0>(answer);
    if (auto r = ptds::scan_response(bytes, scan, login.tds_version); !r)
        co_return TdsConnectFailure{"login reply: " + r.error().message(), {}};
    if (scan.first_error() || !scan.login_ack())
        co_return TdsConnectFailure{"login refused", scan.first_error()};
    b->login_ack = *scan.login_ack();
    b->tds_version = scan.login_ack()->tds_version;
    b->login_env = scan.env_changes();
    for (const auto& e : scan.env_changes()) {
        if (e.type == ptds::env_type::packet_size && e.packet_size() != 0)
            b->packet_size = e.packet_size();
        if (e.type == ptds::env_type::database) b->database = b->login_database = e.new_value;
        if (e.type == ptds::env_type::routing && e.routing_port != 0)
            route = std::make_pair(e.routing_server, e.routing_port);
    }
    co_return std::move(b);
}

} // namespace

asio::awaitable<std::variant<std::unique_ptr<TdsBackend>, TdsConnectFailure>>
connect_tds_backend(const TdsEndpoint& ep, ptds::Login7 login, std::chrono::milliseconds timeout) {
    auto ex = co_await asio::this_coro::executor;
    std::string host = ep.host;
    std::uint16_t port = ep.port;
    // An availability group listener or Azure's gateway may route the login elsewhere:
    // Sluice follows, as a client would, and the client never sees the routing token.
    for (int hop = 0; hop < 5; ++hop) {
        std::optional<std::pair<std::string, std::uint16_t>> route;
        asio::steady_timer timer(ex, timeout);
        auto r =
            co_await (connect_once(host, port, ep, login, route) || timer.async_wait(use_tuple));
        // The awaitable operator flattens the result: the backend, the failure, the timer.
        if (r.index() == 2)
            co_return TdsConnectFailure{
                "timed out after " + std::to_string(timeout.count()) + " ms", {}};
        if (r.index() == 1) co_return std::move(std::get<1>(r));
        if (!route) co_return std::move(std::get<0>(r));
        host = route->first;
        port = route->second;
    }
    // A loop is the servers' configuration, not a failover: waiting for another primary
    // would only repeat it (5 logins every 100 ms) until the client's login times out
    // without a word, so the client is told now.
    co_return TdsConnectFailure{"more than 4 routing redirections (the next to " + host + ":" +
                                    std::to_string(port) + ")",
                                {},
                                false};
}

asio::awaitable<OwnResult> run_own_batch(TdsBackend& b, std::string_view sql, bool reset) {
    OwnResult out;
    std::vector<std::uint8_t> payload;
    ptds::write_sql_batch(sql,
                          ptds::at_least_7_2(b.tds_version)
                              ? std::optional<std::uint64_t>(b.descriptor)
                              : std::nullopt,
                          payload);
    const std::uint8_t status = reset ? ptds::packet_status::reset_connection : 0;
    const error_code ec =
        co_await send(b, ptds::PacketType::sql_batch, status, payload, b.packet_size);
    if (ec) {
        out.why = "write: " + ec.message();
        co_return out;
    }
    auto answer = co_await read_message(b, nullptr);
    if (auto* why = std::get_if<std::string>(&answer)) {
        out.why = *why;
        co_return out;
    }
    const auto& bytes = std::get<0>(answer);
    ptds::TokenScanner scan;
    if (auto r = ptds::scan_response(bytes, scan, b.tds_version); !r) {
        out.why = "bad answer: " + r.error().message();
        co_return out;
    }
    out.env_changes = scan.env_changes();
    for (const auto& e : out.env_changes) {
        if (e.type == ptds::env_type::begin_tran) b.descriptor = e.descriptor();
        if (e.type == ptds::env_type::commit_tran || e.type == ptds::env_type::rollback_tran ||
            e.type == ptds::env_type::tran_ended)
            b.descriptor = 0;
        if (e.type == ptds::env_type::database) b.database = e.new_value;
        if (e.type == ptds::env_type::reset_ack) {
            b.descriptor = 0;
            b.database = b.login_database;
        }
    }
    if (scan.first_error()) {
        out.why = scan.first_error()->message;
        co_return out;
    }
    out.ok = true;
    out.first_value = first_text_value(bytes, b.tds_version);
    co_return out;
}

std::optional<std::string> first_text_value(Bytes p, std::uint32_t v) {
    using namespace ptds;
    std::size_t i = 0;
    std::vector<TypeInfo> cols;
    while (i < p.size()) {
        const std::uint8_t t = p[i++];
        switch (t) {
        case token::col_metadata: {
            if (i + 2 > p.size()) return std::nullopt;
            const std::uint16_t n = u16le(p, i);
            i += 2;
            cols.clear();
            for (std::uint16_t c = 0; c < n && n != 0xFFFF; ++c) {
                i += at_least_7_2(v) ? 4 : 2; // UserType
                i += 2;                       // Flags
                if (i > p.size()) return std::nullopt;
                std::size_t used = 0;
                auto ti = parse_type_info(p.subspan(i), TypeContext::column, used);
                if (!ti) return std::nullopt;
                i += used;
                if (ti->format == ValueFormat::text_ptr) {
                    // text/ntext/image carry the table name parts
                    if (i >= p.size()) return std::nullopt;
                    std::uint8_t parts = p[i++];
                    while (parts-- > 0) {
                        if (i + 2 > p.size()) return std::nullopt;
                        i += 2 + 2 * std::size_t{u16le(p, i)};
                    }
                }
                if (i >= p.size()) return std::nullopt;
                i += 1 + 2 * std::size_t{p[i]}; // ColName
                cols.push_back(*ti);
            }
            break;
        }
        case token::row: {
            if (cols.empty() || i > p.size()) return std::nullopt;
            std::size_t used = 0;
            auto val = parse_value(p.subspan(i), cols[0], TypeContext::column, used);
            if (!val || val->is_null) return std::nullopt;
            if (auto s = value_as_text(cols[0], *val)) return s;
            if (auto n = value_as_int(cols[0], *val)) return std::to_string(*n);
            return std::nullopt;
        }
        case token::env_change:
        case token::info:
        case token::error:
        case token::login_ack:
        case token::order:
        case token::col_info:
        case token::tab_name:
            if (i + 2 > p.size()) return std::nullopt;
            i += 2 + std::size_t{u16le(p, i)};
            break;
        case token::done:
        case token::done_proc:
        case token::done_in_proc:
            i += at_least_7_2(v) ? 12 : 8;
            break;
        case token::return_status:
            i += 4;
            break;
        default:
            return std::nullopt; // NBCROW and the rest: not what Sluice's own queries get
        }
    }
    return std::nullopt;
}

} // namespace sluice::tds
