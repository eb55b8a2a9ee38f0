#pragma once
// The worker's connection to the Redis L2 (issue #9): one per worker thread, shared by every
// session of that worker. Calls are pipelined in call order and their replies handed back in
// the same order; the connection is made on first use (TCP or TLS, then AUTH), dropped when a
// reply is late or the byte stream breaks, and made again after an exponential backoff during
// which calls fail at once. Single-threaded: the object and every call on it belong to the
// thread running its executor; there is no lock. RESP2 (no HELLO).

#include "sluice/cache/resp.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sluice::cache {

namespace asio = boost::asio;

/// Why a call on a RedisConn failed, beside the socket's own errors (connection refused, a
/// reset, end of stream, a TLS verification failure) and the reader's cache_errc.
enum class redis_errc {
    unavailable = 1,  ///< refused without I/O: the connection failed and its backoff is not over
    connect_timeout,  ///< TCP connect and TLS handshake did not finish within connect_timeout
    timeout,          ///< a reply was not there within command_timeout; the connection was dropped
    auth_refused,     ///< the server answered AUTH with an error (its text: last_error())
    unexpected_reply, ///< a reply arrived with no command waiting for it
    closed,           ///< close() was called
    internal,         ///< an exception left the connection's own coroutines (a bug, or no memory)
};

/// The category of redis_errc; name() is "sluice.redis".
const boost::system::error_category& redis_category() noexcept;
inline boost::system::error_code make_error_code(redis_errc e) noexcept {
    return {static_cast<int>(e), redis_category()};
}

/// Where and how to reach one Redis server.
struct RedisEndpoint {
    std::string host = "127.0.0.1"; ///< an IP address (used as is) or a name (resolved per connect)
    std::uint16_t port = 6379;
    /// `AUTH user password` (Redis 6 ACL) when user is set, `AUTH password` when it is empty;
    /// no AUTH at all when password is empty.
    std::string user;
    std::string password;
    bool tls = false;
    std::string tls_ca_file;     ///< PEM; empty: the system's CAs (see make_tls_context)
    std::string tls_server_name; ///< SNI and the name verified; empty: host
    bool tls_verify = true;      ///< verify the chain and that the certificate names the server
    std::chrono::milliseconds connect_timeout{200}; ///< name lookup, TCP connect, TLS handshake
    /// How long a command may wait for its reply once it can be sent. Calls made while the
    /// connection is being made wait up to connect_timeout more.
    std::chrono::milliseconds command_timeout{100};
    std::chrono::milliseconds backoff_min{100}; ///< the first wait after a failure
    std::chrono::milliseconds backoff_max{5000};
    std::string region; ///< for logs and metrics only
};

/// A client TLS context for `endpoint`: TLS 1.2 or later, trusting `tls_ca_file` (or the
/// system's CAs when it is empty), verifying the peer when `tls_verify`. Made once and shared
/// by every worker's RedisConn (an ssl::context may serve several threads). The error when
/// the CA file cannot be read.
result<asio::ssl::context> make_tls_context(const RedisEndpoint& endpoint);

/// Whether the connection is known to work: up once a reply came on it, down once it failed.
enum class RedisHealth : std::uint8_t { unknown, up, down };

/// What happened on one RedisConn, for metrics (counters only grow).
struct RedisStats {
    std::uint64_t calls = 0;            ///< run() calls
    std::uint64_t failed_calls = 0;     ///< run() calls that ended in an error of any kind
    std::uint64_t unavailable = 0;      ///< of those, refused during a backoff without I/O
    std::uint64_t connects = 0;         ///< connections that worked (their first reply came)
    std::uint64_t connect_failures = 0; ///< connections lost before their first reply
    std::uint64_t drops = 0;            ///< connections lost after their first reply
    std::uint64_t timeouts = 0;         ///< connections dropped because a reply was late
    std::uint64_t protocol_errors = 0;  ///< connections dropped for bytes that are not RESP2
                                        ///< or answer nothing that was asked
    std::uint64_t writes = 0; ///< socket writes; calls / writes shows how well calls pipeline
};

/// One Redis connection shared by the coroutines of one thread. Each run() appends its
/// commands to a write queue (never interleaved with another call's bytes) and one writer
/// sends everything queued in one write; one reader hands the replies back in order. So
/// concurrent calls pipeline by themselves: many requests in flight, one round trip for all.
///
/// Failures: a late reply (command_timeout) or a broken byte stream drops the connection and
/// fails every call in flight on it, since later replies could no longer be matched. After a
/// failure, calls fail at once with redis_errc::unavailable until the backoff is over; the
/// next call then connects again. The backoff starts at backoff_min, doubles with each
/// failure up to backoff_max, and goes back to backoff_min once a connection works (its first
/// reply came). A connection the server closed while nothing was in flight (an idle timeout,
/// a restart) is made again by the next call without a backoff. An error reply (`-ERR ...`)
/// is an ordinary Reply of kind error and does not touch the connection.
class RedisConn {
public:
    /// Makes nothing yet: the connection is made by the first run(). `tls` must outlive this
    /// object and is used when endpoint.tls (a missing one fails each connect with
    /// asio::error::invalid_argument). `limits` bound what one reply may hold.
    RedisConn(asio::any_io_executor executor, RedisEndpoint endpoint, asio::ssl::context* tls,
              ReaderLimits limits = {});
    /// close(); the connection's coroutines finish on their own afterwards.
    ~RedisConn();
    RedisConn(const RedisConn&) = delete;
    RedisConn& operator=(const RedisConn&) = delete;

    /// Sends `commands` (one or more commands made by write_command, a pipeline) and returns
    /// their `replies` replies in order; `commands` is copied before run() first suspends.
    /// Errors: redis_errc (unavailable, connect_timeout, timeout, auth_refused, closed, ...),
    /// cache_errc when the server's bytes are not valid RESP2, the socket's or TLS's own
    /// errors, asio::error::operation_aborted when the caller's coroutine was cancelled (its
    /// replies are then read and dropped), asio::error::invalid_argument for no commands or
    /// no replies. Never throws for any of these.
    asio::awaitable<result<std::vector<Reply>>> run(Bytes commands, std::size_t replies);

    /// Fails every pending call at once with redis_errc::closed and closes the socket; every
    /// later call fails the same way. health() becomes down without calling the callback or
    /// counting a transition (the daemon is shutting down, not losing Redis).
    void close() noexcept;

    bool up() const noexcept;
    RedisHealth health() const noexcept;
    /// How many times health() has changed: compare with the last value seen to log once per
    /// change, not once per query.
    std::uint64_t transitions() const noexcept;
    /// Called on each change of health() with the new health and, when down, the error that
    /// caused it. Runs inside the connection's own work: it must not call run() or close().
    void on_health_change(std::function<void(RedisHealth, error_code)> callback);
    const RedisStats& stats() const noexcept;
    /// The server's text of the last AUTH refusal (e.g. "WRONGPASS invalid username-password
    /// pair or user is disabled."); empty if there has been none.
    const std::string& last_error() const noexcept;
    const RedisEndpoint& endpoint() const noexcept;

private:
    struct Impl;
    struct Link;
    struct Pending;
    // Shared with the connection's coroutines, which may outlive this object by a few handler
    // runs after close(); copied once per connection, never per call.
    std::shared_ptr<Impl> impl_;
};

} // namespace sluice::cache

template <> struct boost::system::is_error_code_enum<sluice::cache::redis_errc> : std::true_type {};
