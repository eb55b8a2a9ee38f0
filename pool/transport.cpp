#include "sluice/pool/transport.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <openssl/ssl.h>
#include <sys/socket.h>

namespace sluice::pool {

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}

Transport::~Transport() = default;

asio::awaitable<error_code> Transport::start_tls_server(asio::ssl::context& ctx,
                                                        Bytes already_read) {
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(socket_), ctx);
    auto [ec, used] = co_await tls_->async_handshake(
        asio::ssl::stream_base::server, asio::buffer(already_read.data(), already_read.size()),
        use_tuple);
    co_return ec;
}

asio::awaitable<error_code> Transport::start_tls_client(asio::ssl::context& ctx,
                                                        const std::string& host,
                                                        bool verify_hostname) {
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(socket_), ctx);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast" // OpenSSL's macro casts
    SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str());
#pragma GCC diagnostic pop
    if (verify_hostname) tls_->set_verify_callback(asio::ssl::host_name_verification(host));
    auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, use_tuple);
    co_return ec;
}

asio::awaitable<std::pair<error_code, std::size_t>> Transport::read_some(asio::mutable_buffer buf) {
    if (tls_) {
        auto [ec, n] = co_await tls_->async_read_some(buf, use_tuple);
        co_return std::pair{ec, n};
    }
    auto [ec, n] = co_await socket_.async_read_some(buf, use_tuple);
    co_return std::pair{ec, n};
}

asio::awaitable<error_code> Transport::write_all(asio::const_buffer buf) {
    if (tls_) {
        auto [ec, n] = co_await asio::async_write(*tls_, buf, use_tuple);
        co_return ec;
    }
    auto [ec, n] = co_await asio::async_write(socket_, buf, use_tuple);
    co_return ec;
}

Transport::Peek Transport::peek() noexcept {
    std::uint8_t byte = 0;
    const ssize_t n = ::recv(socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return Peek::bytes;
    if (n == 0) return Peek::closed;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? Peek::nothing : Peek::closed;
}

bool Transport::peer_gone() noexcept { return peek() != Peek::nothing; }

bool Transport::peer_closed() noexcept { return peek() == Peek::closed; }

void Transport::close() noexcept {
    error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
}

} // namespace sluice::pool
