#include "sluice/pool/backend_conn.hpp"

#include "sluice/pool/conn_pool.hpp"
#include "sluice/pool/error.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>

namespace sluice::pool {

namespace mysql = protocol::mysql;
using namespace asio::experimental::awaitable_operators;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t backend_buffer_size = std::size_t{64} * 1024;
constexpr std::size_t login_max_payload = 1 << 20;

class PoolCategory final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sluice.pool"; }
    std::string message(int ev) const override {
        switch (static_cast<pool_errc>(ev)) {
        case pool_errc::connect_timeout:
            return "backend connect timed out";
        case pool_errc::login_refused:
            return "backend refused the login";
        case pool_errc::protocol_error:
            return "backend sent bytes that are not valid MySQL protocol";
        case pool_errc::tls_unavailable:
            return "backend does not offer TLS";
        case pool_errc::backend_closed:
            return "backend closed the connection";
        case pool_errc::pool_busy:
            return "every pooled connection to the backend stayed busy";
        }
        return "unknown pool error";
    }
};

using ConnectOutcome = std::pair<std::unique_ptr<BackendConn>, ConnectFailure>;

ConnectOutcome failed(error_code ec, std::optional<mysql::ErrPacket> err = std::nullopt) {
    return {nullptr, ConnectFailure{ec, std::move(err)}};
}

asio::awaitable<error_code> send_payload(Transport& t, Bytes payload, std::uint8_t& seq) {
    std::vector<std::uint8_t> out;
    seq = mysql::write_packets(payload, seq, out);
    co_return co_await t.write_all(asio::buffer(out));
}

asio::awaitable<std::pair<error_code, Transport>> open_socket(const BackendEndpoint& endpoint) {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver{ex};
    const std::string service = std::to_string(endpoint.port); // named: see check-coroutines.py
    auto [rec, results] = co_await resolver.async_resolve(endpoint.host, service, use_tuple);
    tcp::socket socket{ex};
    if (rec) co_return std::pair{rec, Transport{std::move(socket)}};
    auto [cec, ep] = co_await asio::async_connect(socket, results, use_tuple);
    if (!cec) socket.set_option(tcp::no_delay(true), cec);
    co_return std::pair{cec, Transport{std::move(socket)}};
}

asio::awaitable<ConnectOutcome> connect_and_login(const BackendEndpoint& endpoint,
                                                  mysql::BackendLogin::Options options) {
    auto [ec, transport] = co_await open_socket(endpoint);
    if (ec) co_return failed(ec);
    ReadBuffer buf{backend_buffer_size};
    const bool tls = endpoint.tls != nullptr;
    options.tls = tls;
    mysql::BackendLogin login{std::move(options)};

    auto frame = co_await read_message(transport, buf, login_max_payload);
    if (!frame) co_return failed(frame.error());
    std::vector<std::uint8_t> scratch;
    auto greeting = login.on_greeting(mysql::assemble_payload(buf.readable(), *frame, scratch));
    buf.consume(frame->wire_size);
    if (!greeting) co_return failed(pool_errc::protocol_error);
    if (greeting->kind == mysql::AuthAction::Kind::fail)
        co_return failed(pool_errc::login_refused, greeting->error);
    std::uint8_t seq = frame->next_seq;

    if (tls) {
        if (!(login.greeting().capabilities & mysql::cap::ssl))
            co_return failed(pool_errc::tls_unavailable);
        const auto wec = co_await send_payload(transport, login.ssl_request(), seq);
        if (wec) co_return failed(wec);
        const auto tec = co_await transport.start_tls_client(*endpoint.tls, endpoint.host,
                                                             endpoint.verify_hostname);
        if (tec) co_return failed(tec);
    }
    const auto hec = co_await send_payload(transport, login.handshake_response(), seq);
    if (hec) co_return failed(hec);

    for (;;) {
        auto f = co_await read_message(transport, buf, login_max_payload);
        if (!f) co_return failed(f.error());
        seq = f->next_seq;
        auto action = login.on_packet(mysql::assemble_payload(buf.readable(), *f, scratch));
        buf.consume(f->wire_size);
        if (!action) co_return failed(pool_errc::protocol_error);
        if (action->kind == mysql::AuthAction::Kind::fail)
            co_return failed(pool_errc::login_refused, action->error);
        for (const auto& p : action->packets) {
            const auto pec = co_await send_payload(transport, p, seq);
            if (pec) co_return failed(pec);
        }
        if (action->kind == mysql::AuthAction::Kind::send_and_succeed) break;
    }
    if (!buf.empty()) co_return failed(pool_errc::protocol_error);
    auto conn = std::make_unique<BackendConn>(std::move(transport), login.greeting(),
                                              login.capabilities(), login.final_ok().status);
    co_return ConnectOutcome{std::move(conn), ConnectFailure{}};
}

} // namespace

const boost::system::error_category& pool_category() noexcept {
    static const PoolCategory category;
    return category;
}

BackendConn::BackendConn(Transport transport, mysql::Greeting greeting, std::uint32_t caps,
                         std::uint16_t status)
    : transport_(std::move(transport)), buffer_(backend_buffer_size),
      greeting_(std::move(greeting)), capabilities_(caps), status_(status) {}

BackendConn::~BackendConn() = default;

Carried& BackendConn::pool_state() {
    if (!carried) carried = std::make_unique<Carried>();
    return *carried;
}

asio::awaitable<ConnectOutcome> BackendConn::connect(const BackendEndpoint& endpoint,
                                                     mysql::BackendLogin::Options login,
                                                     std::chrono::milliseconds timeout) {
    asio::steady_timer timer{co_await asio::this_coro::executor, timeout};
    auto outcome =
        co_await (connect_and_login(endpoint, std::move(login)) || timer.async_wait(use_tuple));
    if (outcome.index() == 1) co_return failed(pool_errc::connect_timeout);
    co_return std::move(std::get<0>(outcome));
}

asio::awaitable<result<mysql::MessageFrame>> read_message(Transport& t, ReadBuffer& buf,
                                                          std::size_t max_payload) {
    for (;;) {
        auto frame = mysql::frame_message(buf.readable(), max_payload);
        if (!frame) co_return frame.error();
        if (*frame) co_return **frame;
        // Room for at least the rest of the packet header we know about.
        auto space = buf.prepare(4096);
        auto [ec, n] = co_await t.read_some(asio::buffer(space.data(), space.size()));
        if (ec) co_return ec;
        buf.commit(n);
    }
}

asio::awaitable<result<mysql::Greeting>> probe_greeting(const BackendEndpoint& endpoint,
                                                        std::chrono::milliseconds timeout) {
    asio::steady_timer timer{co_await asio::this_coro::executor, timeout};
    auto probe = [&]() -> asio::awaitable<result<mysql::Greeting>> {
        auto [ec, transport] = co_await open_socket(endpoint);
        if (ec) co_return ec;
        ReadBuffer buf{4096};
        auto frame = co_await read_message(transport, buf, login_max_payload);
        if (!frame) co_return frame.error();
        std::vector<std::uint8_t> scratch;
        auto g = mysql::parse_greeting(mysql::assemble_payload(buf.readable(), *frame, scratch));
        transport.close();
        if (!g) co_return g.error();
        co_return std::move(*g);
    };
    auto outcome = co_await (probe() || timer.async_wait(use_tuple));
    if (outcome.index() == 1) co_return make_error_code(pool_errc::connect_timeout);
    co_return std::move(std::get<0>(outcome));
}

} // namespace sluice::pool
