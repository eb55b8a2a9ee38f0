#pragma once
// A TDS connection's byte stream (issue #11): TCP, optionally TLS, where TDS 7.x carries the
// TLS handshake inside PRELOGIN messages (MS-TDS 2.2.6.5), TDS 8.0 starts with it, and
// login-only encryption drops TLS after LOGIN7. Asio's ssl::stream cannot carry a handshake
// inside another protocol's framing, so OpenSSL runs over memory BIOs here and the
// coroutine moves the bytes. One stream serves both sides: clients (server role) and
// backends (client role).

#include "sluice/protocol/error.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

struct ssl_st;

namespace sluice::tds {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class TdsStream {
public:
    explicit TdsStream(tcp::socket socket) : socket_(std::move(socket)) {}
    TdsStream(const TdsStream&) = delete;
    TdsStream& operator=(const TdsStream&) = delete;
    ~TdsStream();

    tcp::socket& socket() noexcept { return socket_; }
    bool encrypted() const noexcept { return ssl_ != nullptr; }

    /// Reads what arrives (at least one byte unless the peer closed: 0), decrypted when TLS
    /// is on, appended to `out`. Bytes read ahead (a peeked first byte, bytes after a TLS
    /// record) come first.
    asio::awaitable<error_code> read_some(std::vector<std::uint8_t>& out);
    /// Writes all of `data`, encrypted when TLS is on.
    asio::awaitable<error_code> write(Bytes data);

    /// TDS 7.x: the TLS handshake inside PRELOGIN messages, one message per flight (the peer
    /// answers each of ours with one of its own). `server`: Sluice is the TLS server (a
    /// client connection); else the TLS client (a backend). The packets Sluice writes use
    /// type 0x12 (PRELOGIN), as TDS 7.2+ servers send them; a backend's type 4 is accepted.
    asio::awaitable<error_code> handshake_in_prelogin(asio::ssl::context& ctx, bool server,
                                                      std::string server_name = {});
    /// TDS 8.0: a TLS handshake first, raw on the socket (ALPN "tds/8.0").
    asio::awaitable<error_code> handshake_direct(asio::ssl::context& ctx, bool server);
    /// Login-only encryption: TLS ends after LOGIN7 (no close_notify: the peer drops it too).
    void drop_tls() noexcept;
    /// The reason of the last TLS failure (OpenSSL's), for logs.
    const std::string& tls_error() const noexcept { return tls_error_; }

    /// Puts bytes back in front of what read_some returns (a peeked first byte).
    void unread(Bytes data) { pending_.insert(pending_.begin(), data.begin(), data.end()); }

    void close() noexcept;

private:
    asio::awaitable<error_code> read_raw(std::vector<std::uint8_t>& out);
    asio::awaitable<error_code> flush_tls_output(bool wrap_in_prelogin);
    error_code decrypt_into(std::vector<std::uint8_t>& out);

    tcp::socket socket_;
    ssl_st* ssl_ = nullptr;
    void* in_bio_ = nullptr;  // BIO*: bytes from the peer, for OpenSSL
    void* out_bio_ = nullptr; // BIO*: OpenSSL's bytes, for the peer
    std::vector<std::uint8_t> pending_;
    std::vector<std::uint8_t> plain_pending_; // decrypted with the peer's last handshake flight
    std::vector<std::uint8_t> raw_;
    std::string tls_error_;
};

/// Makes `ctx` answer ALPN "tds/8.0" (TDS 8.0 clients offer it); other protocols are
/// declined, so a client offering only others gets no ALPN.
void accept_tds8_alpn(asio::ssl::context& ctx);

} // namespace sluice::tds
