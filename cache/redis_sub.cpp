#include "sluice/cache/redis_sub.hpp"

#include "redis_link.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <exception>
#include <string_view>
#include <utility>

namespace sluice::cache {

namespace {

using detail::use_tuple;
using detail::wake;
using Clock = std::chrono::steady_clock;

constexpr std::size_t read_chunk = std::size_t{16} << 10;
// PING with no argument; in subscribe mode Redis answers ["pong", ""].
constexpr std::string_view ping_command = "*1\r\n$4\r\nPING\r\n";

bool is_bulk(const Reply& r) noexcept { return r.kind == ReplyKind::bulk; }

} // namespace

// One attempt: a connection from its connect to its failure (or close()). Shared by the
// coroutines that use it, so that a stream whose operations are still completing after a
// drop stays alive until they have; the Impl forgets it at once on a drop.
struct RedisSubscriber::Link {
    enum class Phase : std::uint8_t { connecting, subscribing, subscribed };

    Link(const asio::any_io_executor& ex, ReaderLimits limits)
        : stream(ex), deadline(ex, Clock::time_point::max()), reader(limits) {}

    void close() noexcept {
        stream.close();
        wake(deadline);
    }

    detail::RedisStream stream;
    asio::steady_timer deadline; // the watchdog's: the connect, the confirmations, then pings
    ReplyReader reader;
    std::array<std::uint8_t, read_chunk> in;
    Phase phase = Phase::connecting;
    bool awaiting_auth = false;          // the next reply answers AUTH
    std::size_t confirmations = 0;       // SUBSCRIBE confirmations so far
    Clock::time_point reply_deadline;    // for the confirmations
    Clock::time_point next_ping;         // while subscribed
    std::deque<Clock::time_point> pings; // when each unanswered PING was sent, oldest first
    bool writing = false;                // a write is in progress
};

struct RedisSubscriber::Impl {
    Impl(asio::any_io_executor executor, RedisEndpoint endpoint, asio::ssl::context* context,
         std::vector<std::string> chans, SubscriberCallbacks cbs, SubscriberOptions opts)
        : ex(std::move(executor)), ep(std::move(endpoint)), tls(context),
          channels(std::move(chans)), callbacks(std::move(cbs)), options(opts),
          backoff_timer(ex, Clock::time_point::max()), backoff(ep.backoff_min) {}

    bool current(const std::shared_ptr<Link>& l) const noexcept { return !closed && link == l; }
    void fail_link(const std::shared_ptr<Link>& l, error_code ec);
    void report_down(error_code ec);
    error_code handle(Link& l, Reply&& reply);
    void now_subscribed(Link& l);

    static asio::awaitable<void> supervise(std::shared_ptr<Impl> self);
    static asio::awaitable<void> session(std::shared_ptr<Impl> self, std::shared_ptr<Link> l);
    static asio::awaitable<void> watchdog(std::shared_ptr<Impl> self, std::shared_ptr<Link> l);
    static asio::awaitable<void> send_ping(std::shared_ptr<Impl> self, std::shared_ptr<Link> l);
    static void spawn(const std::shared_ptr<Impl>& self, const std::shared_ptr<Link>& l,
                      asio::awaitable<void> work);

    asio::any_io_executor ex;
    RedisEndpoint ep;
    asio::ssl::context* tls;
    std::vector<std::string> channels;
    SubscriberCallbacks callbacks;
    SubscriberOptions options;
    bool started = false;
    bool closed = false;
    bool up = false;
    bool down_reported = false;        // `down` was called for the outage going on
    std::shared_ptr<Link> link;        // the attempt in progress; null between attempts
    asio::steady_timer backoff_timer;  // the wait between attempts
    std::chrono::milliseconds backoff; // the wait after the next failure
    std::chrono::milliseconds retry_wait{0};
    SubscriberStats stats;
    std::string last_error;
};

void RedisSubscriber::Impl::spawn(const std::shared_ptr<Impl>& self, const std::shared_ptr<Link>& l,
                                  asio::awaitable<void> work) {
    asio::co_spawn(self->ex, std::move(work), [self, l](std::exception_ptr e) {
        if (e) self->fail_link(l, redis_errc::internal);
    });
}

void RedisSubscriber::Impl::report_down(error_code ec) {
    if (down_reported) return;
    down_reported = true;
    if (callbacks.down) callbacks.down(ec);
}

void RedisSubscriber::Impl::fail_link(const std::shared_ptr<Link>& l, error_code ec) {
    if (!current(l)) return; // already dropped, or closed: the first reason stands
    link.reset();
    l->close();
    up = false;
    if (l->phase == Link::Phase::subscribed)
        ++stats.drops;
    else
        ++stats.connect_failures;
    if (ec == redis_errc::timeout) ++stats.timeouts;
    if (ec == redis_errc::unexpected_reply || ec.category() == cache_category())
        ++stats.protocol_errors;
    retry_wait = backoff;
    backoff = std::min(backoff * 2, std::max(ep.backoff_max, ep.backoff_min));
    report_down(ec); // last: it may call close()
}

void RedisSubscriber::Impl::now_subscribed(Link& l) {
    l.phase = Link::Phase::subscribed;
    l.next_ping = Clock::now() + options.ping_interval;
    wake(l.deadline); // from the confirmations' deadline to the first PING
    up = true;
    down_reported = false;
    backoff = ep.backoff_min;
    ++stats.subscriptions;
    if (callbacks.subscribed) callbacks.subscribed();
}

// In subscribe mode (RESP2) every reply is a push: ["subscribe", channel, count] per channel
// subscribed, ["message", channel, payload], and ["pong", ""] per PING. The one exception is
// the AUTH reply, which comes first.
error_code RedisSubscriber::Impl::handle(Link& l, Reply&& reply) {
    if (l.awaiting_auth) {
        l.awaiting_auth = false;
        if (reply.kind == ReplyKind::error) {
            last_error = std::move(reply.str);
            return redis_errc::auth_refused;
        }
        return reply.kind == ReplyKind::status ? error_code{} : redis_errc::unexpected_reply;
    }
    if (reply.kind == ReplyKind::error) { // SUBSCRIBE refused (NOPERM, NOAUTH)
        last_error = std::move(reply.str);
        return redis_errc::unexpected_reply;
    }
    const auto& e = reply.elements;
    if (reply.kind != ReplyKind::array || e.empty() || !is_bulk(e[0]))
        return redis_errc::unexpected_reply;
    const std::string_view kind = e[0].str;
    if (kind == "message" && e.size() == 3 && is_bulk(e[1]) && is_bulk(e[2]) &&
        l.phase != Link::Phase::connecting) {
        ++stats.messages;
        if (callbacks.message) callbacks.message(e[1].str, e[2].str);
        return {};
    }
    if (kind == "subscribe" && e.size() == 3 && l.phase == Link::Phase::subscribing) {
        // A channel named twice is confirmed twice: counting confirmations, not channels,
        // matches what was sent.
        if (++l.confirmations == channels.size()) now_subscribed(l);
        return {};
    }
    if (kind == "pong" && l.phase == Link::Phase::subscribed && !l.pings.empty()) {
        l.pings.pop_front();
        return {};
    }
    return redis_errc::unexpected_reply;
}

asio::awaitable<void> RedisSubscriber::Impl::supervise(std::shared_ptr<Impl> self) {
    Impl& s = *self;
    while (!s.closed) {
        auto l = std::make_shared<Link>(s.ex, s.options.limits);
        s.link = l;
        spawn(self, l, watchdog(self, l));
        try {
            // Returns once `l` is no longer current: failed (then retry_wait is set) or closed.
            co_await session(self, l);
        } catch (const std::exception&) {
            s.fail_link(l, redis_errc::internal);
        }
        if (s.closed) break;
        s.backoff_timer.expires_after(s.retry_wait);
        co_await s.backoff_timer.async_wait(use_tuple); // close() cancels it
    }
}

asio::awaitable<void> RedisSubscriber::Impl::session(std::shared_ptr<Impl> self,
                                                     std::shared_ptr<Link> l) {
    Impl& s = *self;
    // The watchdog enforces connect_timeout by dropping the link, which ends this at once.
    const error_code ec = co_await detail::open_stream(s.ep, s.tls, l->stream);
    if (!s.current(l)) co_return;
    if (ec) {
        s.fail_link(l, ec);
        co_return;
    }

    // AUTH and SUBSCRIBE in one write: one round trip.
    std::vector<std::uint8_t> out;
    l->awaiting_auth = detail::write_auth(out, s.ep);
    std::vector<std::string_view> args;
    args.reserve(s.channels.size() + 1);
    args.emplace_back("SUBSCRIBE");
    for (const std::string& c : s.channels)
        args.emplace_back(c);
    write_command(out, std::span<const std::string_view>{args});
    l->phase = Link::Phase::subscribing;
    l->reply_deadline = Clock::now() + s.options.reply_timeout;
    wake(l->deadline); // from the connect deadline to the confirmations'
    // No PING is sent before the confirmations, which are read after this write: the two
    // writes never overlap.
    l->writing = true;
    const error_code wec = co_await l->stream.write_all(asio::buffer(out));
    l->writing = false;
    if (!s.current(l)) co_return;
    if (wec) {
        s.fail_link(l, wec);
        co_return;
    }

    for (;;) {
        auto [rec, n] = co_await l->stream.read_some(asio::buffer(l->in));
        if (!s.current(l)) co_return;
        if (rec) {
            s.fail_link(l, rec);
            co_return;
        }
        // Fed one read at a time and drained after each, as ReplyReader asks.
        l->reader.feed(Bytes{l->in.data(), n});
        for (;;) {
            auto r = l->reader.next();
            if (!r) {
                s.fail_link(l, r.error());
                co_return;
            }
            if (!*r) break;
            const error_code hec = s.handle(*l, std::move(**r));
            if (!s.current(l)) co_return; // a callback called close()
            if (hec) {
                s.fail_link(l, hec);
                co_return;
            }
        }
    }
}

asio::awaitable<void> RedisSubscriber::Impl::watchdog(std::shared_ptr<Impl> self,
                                                      std::shared_ptr<Link> l) {
    Impl& s = *self;
    const auto connect_deadline = Clock::now() + s.ep.connect_timeout;
    // One timer per connection, re-armed for whichever comes first: the connect deadline, the
    // confirmations' deadline, then the next PING or the oldest PING's deadline.
    for (;;) {
        Clock::time_point at = connect_deadline;
        if (l->phase == Link::Phase::subscribing) {
            at = l->reply_deadline;
        } else if (l->phase == Link::Phase::subscribed) {
            at = l->next_ping;
            if (!l->pings.empty()) at = std::min(at, l->pings.front() + s.options.reply_timeout);
        }
        l->deadline.expires_at(at);
        co_await l->deadline.async_wait(use_tuple);
        if (!s.current(l)) co_return;
        const auto now = Clock::now();
        switch (l->phase) {
        case Link::Phase::connecting:
            if (now >= connect_deadline) {
                s.fail_link(l, redis_errc::connect_timeout);
                co_return;
            }
            break;
        case Link::Phase::subscribing:
            if (now >= l->reply_deadline) {
                s.fail_link(l, redis_errc::timeout);
                co_return;
            }
            break;
        case Link::Phase::subscribed:
            if (!l->pings.empty() && now >= l->pings.front() + s.options.reply_timeout) {
                s.fail_link(l, redis_errc::timeout);
                co_return;
            }
            if (now >= l->next_ping) {
                l->next_ping = now + s.options.ping_interval;
                // A write still in progress is an unanswered PING already: its deadline
                // covers this one.
                if (!l->writing) spawn(self, l, send_ping(self, l));
            }
            break;
        }
    }
}

asio::awaitable<void> RedisSubscriber::Impl::send_ping(std::shared_ptr<Impl> self,
                                                       std::shared_ptr<Link> l) {
    Impl& s = *self;
    l->writing = true;
    l->pings.push_back(Clock::now());
    ++s.stats.pings;
    const error_code ec =
        co_await l->stream.write_all(asio::buffer(ping_command.data(), ping_command.size()));
    l->writing = false;
    if (!s.current(l)) co_return;
    if (ec) s.fail_link(l, ec);
}

RedisSubscriber::RedisSubscriber(asio::any_io_executor executor, RedisEndpoint endpoint,
                                 asio::ssl::context* tls, std::vector<std::string> channels,
                                 SubscriberCallbacks callbacks, SubscriberOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(endpoint), tls,
                                   std::move(channels), std::move(callbacks), options)) {}

RedisSubscriber::~RedisSubscriber() { close(); }

void RedisSubscriber::start() {
    Impl& s = *impl_;
    if (s.started || s.closed) return;
    s.started = true;
    if (s.channels.empty()) {
        s.report_down(asio::error::invalid_argument);
        return;
    }
    asio::co_spawn(s.ex, Impl::supervise(impl_), [self = impl_](std::exception_ptr e) {
        // Only an allocation failure gets here; the subscription stays down.
        if (e && !self->closed) {
            self->up = false;
            self->down_reported = false;
            self->report_down(redis_errc::internal);
        }
    });
}

void RedisSubscriber::close() noexcept {
    Impl& s = *impl_;
    if (s.closed) return;
    s.closed = true;
    s.up = false;
    // The callbacks are kept (one may be running now) but never called again: every path
    // to them checks `closed` first.
    if (auto l = std::move(s.link)) l->close();
    wake(s.backoff_timer);
}

bool RedisSubscriber::up() const noexcept { return impl_->up; }
const SubscriberStats& RedisSubscriber::stats() const noexcept { return impl_->stats; }
const std::string& RedisSubscriber::last_error() const noexcept { return impl_->last_error; }
const RedisEndpoint& RedisSubscriber::endpoint() const noexcept { return impl_->ep; }

} // namespace sluice::cache
