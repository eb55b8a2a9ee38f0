#pragma once

#include "sluice/protocol/error.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <memory>
#include <string>
#include <utility>

namespace sluice::pool {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// A byte stream over TCP that may be upgraded to TLS in place (MySQL's SSLRequest, TDS
/// PRELOGIN). One type for plain and TLS so that sessions are written once; the branch is a
/// predictable test per call. Every operation returns errors as values and never throws.
class Transport {
public:
    explicit Transport(tcp::socket socket) noexcept : socket_(std::move(socket)) {}
    Transport(Transport&&) noexcept = default;
    Transport& operator=(Transport&&) = delete;
    ~Transport();

    tcp::socket& socket() noexcept { return tls_ ? tls_->next_layer() : socket_; }
    bool tls() const noexcept { return tls_ != nullptr; }

    /// TLS handshake as the server (clients that sent an SSLRequest). `already_read` holds
    /// bytes of the client's TLS handshake that arrived in the same read as the request.
    asio::awaitable<error_code> start_tls_server(asio::ssl::context& ctx, Bytes already_read);
    /// TLS handshake as the client; `host` names the server for SNI and verification.
    asio::awaitable<error_code> start_tls_client(asio::ssl::context& ctx, const std::string& host,
                                                 bool verify_hostname);

    /// Reads what is available (at least one byte); asio::error::eof when the peer closed.
    asio::awaitable<std::pair<error_code, std::size_t>> read_some(asio::mutable_buffer buf);
    /// Writes all of `buf`.
    asio::awaitable<error_code> write_all(asio::const_buffer buf);
    /// Closes the socket now, cancelling whatever is pending on it. Never fails.
    void close() noexcept;
    /// For an idle connection, where nothing is expected: whether the peer closed it or sent
    /// something unasked (a server's "shutdown in progress" ERR, a TLS alert). One
    /// non-blocking peek; nothing is consumed.
    bool peer_gone() noexcept;
    /// Whether the peer closed the connection (an end of stream or a reset is waiting to be
    /// read); bytes waiting to be read are not a close. One non-blocking peek.
    bool peer_closed() noexcept;

private:
    enum class Peek { nothing, bytes, closed };
    /// What waits to be read, without reading it (a reset or socket error reads as closed).
    Peek peek() noexcept;

    tcp::socket socket_; // moved into tls_ when TLS starts
    // The TLS stream owns the socket (not a reference to socket_), so a Transport can move
    // after its handshake: BackendConn takes the transport a TLS login built.
    std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
};

} // namespace sluice::pool
