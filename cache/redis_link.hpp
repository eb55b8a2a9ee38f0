#pragma once
// What every Redis connection of the cache layer does the same way (RedisConn,
// RedisSubscriber): open a TCP or TLS stream to an endpoint, log in, read and write on it,
// wake a parked coroutine. Private to cache/; defined in redis_conn.cpp.

#include "sluice/cache/redis_conn.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace sluice::cache::detail {

using tcp = asio::ip::tcp;
inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// Wakes a coroutine parked on `timer` (one that never expires) by cancelling it.
void wake(asio::steady_timer& timer) noexcept;

/// True for the errors a server's orderly or abrupt close shows as (end of stream, a reset,
/// a TLS stream ended without close_notify).
bool peer_closed(const error_code& ec) noexcept;

/// One TCP connection to a Redis server, TLS over it when the endpoint asks for it. Not
/// connected until open_stream() succeeded. One read and one write may be in progress at once.
struct RedisStream {
    explicit RedisStream(const asio::any_io_executor& ex) : resolver(ex), socket(ex) {}

    tcp::socket& lowest() noexcept { return tls ? tls->next_layer() : socket; }
    /// Cancels the name lookup and closes the socket: every operation in progress on the
    /// stream completes (with an error) soon after.
    void close() noexcept;
    asio::awaitable<std::pair<error_code, std::size_t>> read_some(asio::mutable_buffer buf);
    asio::awaitable<error_code> write_all(asio::const_buffer buf);

    tcp::resolver resolver; ///< for a host name (an address needs none)
    tcp::socket socket;     ///< the connection, until TLS takes it over
    std::optional<asio::ssl::stream<tcp::socket>> tls;
};

/// Resolves `ep.host` (unless it is an address), connects, sets TCP_NODELAY and, when ep.tls,
/// sets SNI and the name to verify (tls_server_name, else host) and completes the handshake.
/// No deadline of its own: the caller enforces connect_timeout by closing the stream.
/// asio::error::invalid_argument when ep.tls and `ctx` is null.
asio::awaitable<error_code> open_stream(const RedisEndpoint& ep, asio::ssl::context* ctx,
                                        RedisStream& stream);

/// Appends `AUTH [user] password` when ep.password is set; false (nothing appended) otherwise.
bool write_auth(std::vector<std::uint8_t>& out, const RedisEndpoint& ep);

} // namespace sluice::cache::detail
