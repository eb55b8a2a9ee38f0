#pragma once
// The worker's subscription to the invalidation channels (issue #9): one Redis connection in
// SUBSCRIBE mode receiving what other Sluice processes PUBLISH. Made as RedisConn makes its
// connection (TCP or TLS, then AUTH, from the same RedisEndpoint), kept alive by a PING every
// second, and made again after a backoff whenever it fails. Single-threaded: the object and
// its callbacks belong to the thread running its executor. RESP2.

#include "sluice/cache/redis_conn.hpp"
#include "sluice/cache/resp.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::cache {

/// What a RedisSubscriber tells its owner. Each is optional. They run inside the subscriber's
/// own work: they may call close() (nothing more is called after it), but must not block.
struct SubscriberCallbacks {
    /// One published message, in the order the server sent them. The views are valid only
    /// during the call.
    std::function<void(std::string_view channel, std::string_view payload)> message;
    /// The subscription is (again) in place: Redis confirmed SUBSCRIBE for every channel.
    /// Called at the first subscription and after each reconnection: messages published
    /// while the subscription was down are lost, so the owner re-reads what they would have
    /// told it (or drops what they would have invalidated).
    std::function<void()> subscribed;
    /// The subscription is lost, or could not be made: once per outage (when up() turns
    /// false, or when the first attempt fails), not again for each failed reconnection.
    std::function<void(error_code)> down;
};

/// How a RedisSubscriber watches its connection.
struct SubscriberOptions {
    /// How often a PING is sent while subscribed (in subscribe mode Redis answers
    /// ["pong", ""]).
    std::chrono::milliseconds ping_interval{1000};
    /// How long Redis may take to answer a PING, and to confirm the SUBSCRIBE (and AUTH)
    /// once connected; later, the connection is taken for dead and made again. Generous
    /// beside RedisConn's command_timeout (10 times its default): a late reply here only
    /// delays a message, while a reconnection loses the ones published meanwhile. A stopped
    /// server is noticed within ping_interval + reply_timeout.
    std::chrono::milliseconds reply_timeout{1000};
    /// Bounds on what one message may ask the reader to hold.
    ReaderLimits limits{};
};

/// What happened on one RedisSubscriber, for metrics (counters only grow).
struct SubscriberStats {
    std::uint64_t subscriptions = 0;    ///< subscriptions made (the `subscribed` calls)
    std::uint64_t messages = 0;         ///< messages delivered
    std::uint64_t connect_failures = 0; ///< attempts that failed before the subscription
    std::uint64_t drops = 0;            ///< subscriptions lost
    std::uint64_t timeouts = 0;         ///< of the failures, a PING or SUBSCRIBE unanswered
    std::uint64_t protocol_errors = 0;  ///< of the failures, bytes not RESP2 or not pushes
    std::uint64_t pings = 0;            ///< PINGs sent
};

/// A connection subscribed to a fixed list of channels, made again whenever it fails.
///
/// start() connects (TCP or TLS, then AUTH when endpoint.password is set, as RedisConn does),
/// sends SUBSCRIBE for every channel and hands each published message to the `message`
/// callback. Once every channel is confirmed, up() is true and `subscribed` is called; from
/// then a PING goes out every ping_interval. Any failure (the connect, TLS, AUTH or
/// SUBSCRIBE refused, a reply later than reply_timeout, bytes that are not RESP2 or a reply
/// that is not a push) closes the connection, makes up() false, calls `down` (once per
/// outage), and a new attempt follows after a backoff: backoff_min, doubling with each failed
/// attempt up to backoff_max, back to backoff_min once a subscription is made. The
/// endpoint's connect_timeout bounds the name lookup, TCP connect and TLS handshake; its
/// command_timeout is not used (see SubscriberOptions::reply_timeout).
class RedisSubscriber {
public:
    /// Does nothing until start(). `tls` must outlive this object and is used when
    /// endpoint.tls. `channels` should not be empty (with none, start() only reports down
    /// with asio::error::invalid_argument).
    RedisSubscriber(asio::any_io_executor executor, RedisEndpoint endpoint, asio::ssl::context* tls,
                    std::vector<std::string> channels, SubscriberCallbacks callbacks,
                    SubscriberOptions options = {});
    /// close(); its coroutines finish on their own soon after.
    ~RedisSubscriber();
    RedisSubscriber(const RedisSubscriber&) = delete;
    RedisSubscriber& operator=(const RedisSubscriber&) = delete;

    /// Starts subscribing, in the background, until close(). A second call does nothing.
    void start();
    /// Stops at once: closes the connection, ends the backoff wait, and calls no callback
    /// from then on. up() becomes false. start() does nothing after it.
    void close() noexcept;
    /// True while subscribed (every channel confirmed, no failure since).
    bool up() const noexcept;
    const SubscriberStats& stats() const noexcept;
    /// The server's text of the last error reply (an AUTH or SUBSCRIBE refused, e.g.
    /// "WRONGPASS ..." or "NOPERM ..."); empty if there has been none.
    const std::string& last_error() const noexcept;
    const RedisEndpoint& endpoint() const noexcept;

private:
    struct Impl;
    struct Link;
    // Shared with the subscriber's coroutines, which may outlive this object by a few handler
    // runs after close().
    std::shared_ptr<Impl> impl_;
};

} // namespace sluice::cache
