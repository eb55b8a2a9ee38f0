#pragma once

#include "sluice/pool/read_buffer.hpp"
#include "sluice/pool/transport.hpp"
#include "sluice/protocol/mysql/auth.hpp"
#include "sluice/protocol/mysql/packet.hpp"

#include <chrono>
#include <memory>
#include <optional>

namespace sluice::pool {

/// Where and how to reach one MySQL backend.
struct BackendEndpoint {
    std::string name; ///< the backend's name from the config (logs, metrics, messages)
    std::string host;
    std::uint16_t port = 3306;
    asio::ssl::context* tls = nullptr; ///< non-null: log in over TLS
    bool verify_hostname = false;
};

/// Why a connect failed: the error, and the backend's own ERR packet when it sent one
/// (an unknown database, a wrong password): that one goes to the client unchanged.
struct ConnectFailure {
    error_code ec;
    std::optional<protocol::mysql::ErrPacket> server_error;
};

/// One logged-in connection to a MySQL backend, with its receive buffer.
class BackendConn {
public:
    BackendConn(Transport transport, protocol::mysql::Greeting greeting, std::uint32_t caps,
                std::uint16_t status);
    BackendConn(const BackendConn&) = delete;
    BackendConn& operator=(const BackendConn&) = delete;
    ~BackendConn();

    /// Connects to `endpoint` and logs in with `login`, all within `timeout`.
    static asio::awaitable<std::pair<std::unique_ptr<BackendConn>, ConnectFailure>>
    connect(const BackendEndpoint& endpoint, protocol::mysql::BackendLogin::Options login,
            std::chrono::milliseconds timeout);

    Transport& transport() noexcept { return transport_; }
    ReadBuffer& buffer() noexcept { return buffer_; }
    const protocol::mysql::Greeting& greeting() const noexcept { return greeting_; }
    std::uint32_t capabilities() const noexcept { return capabilities_; }
    std::uint16_t status() const noexcept { return status_; }
    void set_status(std::uint16_t s) noexcept { status_ = s; }
    void close() noexcept { transport_.close(); }

    /// Whatever travels with the connection through a pool (conn_pool.hpp fills it in).
    std::unique_ptr<struct Carried> carried;
    /// carried, made when first needed.
    Carried& pool_state();

private:
    Transport transport_;
    ReadBuffer buffer_;
    protocol::mysql::Greeting greeting_;
    std::uint32_t capabilities_;
    std::uint16_t status_;
};

/// Reads until a whole message is at the front of `buf` and returns its frame; the caller
/// consumes `frame.wire_size` when done with it. Errors: the transport's, or codec_errc.
asio::awaitable<result<protocol::mysql::MessageFrame>> read_message(Transport& t, ReadBuffer& buf,
                                                                    std::size_t max_payload);

/// Connects to `endpoint` and returns its greeting only (startup probe of the version and
/// capabilities). Does not log in.
asio::awaitable<result<protocol::mysql::Greeting>>
probe_greeting(const BackendEndpoint& endpoint, std::chrono::milliseconds timeout);

} // namespace sluice::pool
