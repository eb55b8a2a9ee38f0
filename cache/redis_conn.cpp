#include "sluice/cache/redis_conn.hpp"

#include "redis_link.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <exception>
#include <openssl/ssl.h>
#include <optional>
#include <utility>

namespace sluice::cache {

namespace {

using detail::peer_closed;
using detail::tcp;
using detail::use_tuple;
using detail::wake;
using Clock = std::chrono::steady_clock;

constexpr std::size_t read_chunk = std::size_t{16} << 10;
// A write buffer that once held a large value is given back rather than kept per worker.
constexpr std::size_t max_kept_write_buffer = std::size_t{1} << 20;

class RedisCategory final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sluice.redis"; }
    std::string message(int ev) const override {
        switch (static_cast<redis_errc>(ev)) {
        case redis_errc::unavailable:
            return "Redis unavailable (waiting before the next connection attempt)";
        case redis_errc::connect_timeout:
            return "Redis connect timed out";
        case redis_errc::timeout:
            return "Redis reply timed out";
        case redis_errc::auth_refused:
            return "Redis refused AUTH";
        case redis_errc::unexpected_reply:
            return "Redis sent a reply nothing asked for";
        case redis_errc::closed:
            return "Redis connection closed";
        case redis_errc::internal:
            return "internal error in the Redis connection";
        }
        return "unknown Redis error";
    }
};

bool is_ip_address(const std::string& name) {
    error_code ec;
    asio::ip::make_address(name, ec);
    return !ec;
}

} // namespace

const boost::system::error_category& redis_category() noexcept {
    static const RedisCategory category;
    return category;
}

result<asio::ssl::context> make_tls_context(const RedisEndpoint& endpoint) {
    try {
        asio::ssl::context ctx{asio::ssl::context::tls_client};
        error_code ec;
        ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1,
                        ec);
        if (ec) return ec;
        if (endpoint.tls_ca_file.empty())
            ctx.set_default_verify_paths(ec);
        else
            ctx.load_verify_file(endpoint.tls_ca_file, ec);
        if (ec) return ec;
        ctx.set_verify_mode(endpoint.tls_verify ? asio::ssl::verify_peer : asio::ssl::verify_none,
                            ec);
        if (ec) return ec;
        return result<asio::ssl::context>{std::move(ctx)};
    } catch (const boost::system::system_error& e) {
        return e.code(); // OpenSSL could not make the context at all
    }
}

namespace detail {

// Waking a parked coroutine is cancelling the timer it waits on (as Worker::wait_finished
// does); cancel() only throws for errors a timer of this thread cannot have.
void wake(asio::steady_timer& timer) noexcept {
    try {
        timer.cancel();
    } catch (const std::exception&) {
    }
}

bool peer_closed(const error_code& ec) noexcept {
    return ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::ssl::error::stream_truncated;
}

void RedisStream::close() noexcept {
    resolver.cancel();
    error_code ignored;
    lowest().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close(ignored);
}

asio::awaitable<std::pair<error_code, std::size_t>>
RedisStream::read_some(asio::mutable_buffer buf) {
    if (tls) {
        auto [ec, n] = co_await tls->async_read_some(buf, use_tuple);
        co_return std::pair{ec, n};
    }
    auto [ec, n] = co_await socket.async_read_some(buf, use_tuple);
    co_return std::pair{ec, n};
}

asio::awaitable<error_code> RedisStream::write_all(asio::const_buffer buf) {
    if (tls) {
        auto [ec, n] = co_await asio::async_write(*tls, buf, use_tuple);
        co_return ec;
    }
    auto [ec, n] = co_await asio::async_write(socket, buf, use_tuple);
    co_return ec;
}

asio::awaitable<error_code> open_stream(const RedisEndpoint& ep, asio::ssl::context* ctx,
                                        RedisStream& stream) {
    if (ep.tls && !ctx) co_return make_error_code(asio::error::invalid_argument);
    error_code ec;
    const auto address = asio::ip::make_address(ep.host, ec);
    if (!ec) {
        // An address needs no resolver (whose getaddrinfo runs on a thread of its own).
        auto [cec] =
            co_await stream.socket.async_connect(tcp::endpoint{address, ep.port}, use_tuple);
        if (cec) co_return cec;
    } else {
        const std::string service = std::to_string(ep.port); // named: see check-coroutines.py
        auto [rec, results] = co_await stream.resolver.async_resolve(ep.host, service, use_tuple);
        if (rec) co_return rec;
        auto [cec, peer] = co_await asio::async_connect(stream.socket, results, use_tuple);
        if (cec) co_return cec;
    }
    stream.socket.set_option(tcp::no_delay(true), ec);
    if (ec || !ep.tls) co_return ec;

    const std::string& name = ep.tls_server_name.empty() ? ep.host : ep.tls_server_name;
    auto& tls = stream.tls.emplace(std::move(stream.socket), *ctx);
    if (!is_ip_address(name)) { // SNI carries host names only (RFC 6066, section 3)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast" // OpenSSL's macro casts
        SSL_set_tlsext_host_name(tls.native_handle(), name.c_str());
#pragma GCC diagnostic pop
    }
    if (ep.tls_verify) {
        tls.set_verify_mode(asio::ssl::verify_peer, ec);
        if (!ec) tls.set_verify_callback(asio::ssl::host_name_verification(name), ec);
    } else {
        tls.set_verify_mode(asio::ssl::verify_none, ec);
    }
    if (ec) co_return ec;
    auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, use_tuple);
    co_return hec;
}

bool write_auth(std::vector<std::uint8_t>& out, const RedisEndpoint& ep) {
    if (ep.password.empty()) return false;
    if (ep.user.empty())
        write_command(out, {"AUTH", ep.password});
    else
        write_command(out, {"AUTH", ep.user, ep.password});
    return true;
}

} // namespace detail

// One call waiting in run(): lives in run()'s frame. The reader fills it and wakes it.
struct RedisConn::Pending {
    explicit Pending(const asio::any_io_executor& ex) : wake(ex, Clock::time_point::max()) {}
    ~Pending();
    Pending(const Pending&) = delete;
    Pending& operator=(const Pending&) = delete;

    asio::steady_timer wake; // never expires: cancelled when the call is done
    std::vector<Reply> replies;
    error_code ec;
    Impl* conn = nullptr; // set while a queue slot points here; cleared by whoever ends it
    bool done = false;
};

// One TCP (or TLS) connection: made per connect, shared by the coroutines that use it, so
// that a stream whose operations are still completing after a drop stays alive until they
// have. The Impl forgets it at once on a drop; the coroutines see that and end.
struct RedisConn::Link {
    Link(const asio::any_io_executor& ex, ReaderLimits limits)
        : stream(ex), write_wake(ex, Clock::time_point::max()),
          deadline(ex, Clock::time_point::max()), reader(limits) {}

    void close() noexcept {
        stream.close();
        wake(write_wake);
        wake(deadline);
    }

    detail::RedisStream stream;
    asio::steady_timer write_wake; // the writer parks here while nothing is queued
    asio::steady_timer deadline;   // the connect deadline, then the oldest request's, or parked
    ReplyReader reader;
    std::vector<std::uint8_t> writing; // the bytes of the write in progress
    std::array<std::uint8_t, read_chunk> in;
    bool proven = false;          // a reply has come on this connection
    bool writer_parked = false;   // the writer waits on write_wake
    bool watchdog_parked = false; // the watchdog waits with nothing in flight
};

struct RedisConn::Impl {
    enum class State : std::uint8_t {
        idle,       // no connection; the next call makes one
        connecting, // calls queue until it is made
        open,       // calls are sent
        backoff,    // calls fail with unavailable until retry_at
        closed,     // close() was called
    };
    // One call's place in the reply order. A call whose coroutine went away keeps its slot
    // (owner null) so that its replies are still read and dropped.
    struct Slot {
        Pending* owner;
        std::size_t left; // replies still to come
        Clock::time_point deadline;
        bool auth; // the AUTH sent on connect, not a caller's
    };

    Impl(asio::any_io_executor executor, RedisEndpoint endpoint, asio::ssl::context* tls_ctx,
         ReaderLimits reader_limits)
        : ex(std::move(executor)), ep(std::move(endpoint)), tls(tls_ctx), limits(reader_limits),
          backoff(ep.backoff_min) {}

    ~Impl() {
        for (Slot& s : slots)
            if (s.owner) s.owner->conn = nullptr;
    }

    bool current(const std::shared_ptr<Link>& l) const noexcept { return l && link == l; }

    void start_connect(const std::shared_ptr<Impl>& self);
    bool connecting(const std::shared_ptr<Link>& l) const noexcept {
        return state == State::connecting && current(l);
    }
    void enqueue(Pending& p, Bytes commands, std::size_t replies);
    void opened(const std::shared_ptr<Impl>& self, const std::shared_ptr<Link>& l);
    error_code deliver(Link& l, Reply&& reply);
    void prove(Link& l);
    void fail_link(std::shared_ptr<Link> l, error_code ec);
    void finish(Pending& p, error_code ec) noexcept;
    void abandon(Pending& p) noexcept;
    void set_health(RedisHealth h, error_code why);

    static asio::awaitable<void> connect_link(std::shared_ptr<Impl> self, std::shared_ptr<Link> l);
    static asio::awaitable<void> read_loop(std::shared_ptr<Impl> self, std::shared_ptr<Link> l);
    static asio::awaitable<void> write_loop(std::shared_ptr<Impl> self, std::shared_ptr<Link> l);
    static asio::awaitable<void> watchdog(std::shared_ptr<Impl> self, std::shared_ptr<Link> l);
    static void spawn(const std::shared_ptr<Impl>& self, const std::shared_ptr<Link>& l,
                      asio::awaitable<void> work);

    asio::any_io_executor ex;
    RedisEndpoint ep;
    asio::ssl::context* tls;
    ReaderLimits limits;
    State state = State::idle;
    std::shared_ptr<Link> link;        // the connection being made or open; null otherwise
    std::vector<std::uint8_t> out;     // queued bytes the writer has not taken yet
    std::deque<Slot> slots;            // every request queued or in flight, in reply order
    std::chrono::milliseconds backoff; // the wait after the next failure
    Clock::time_point retry_at{};
    RedisHealth health = RedisHealth::unknown;
    std::uint64_t transitions = 0;
    RedisStats stats;
    std::string last_error;
    std::function<void(RedisHealth, error_code)> on_change;
};

RedisConn::Pending::~Pending() {
    if (conn) conn->abandon(*this);
}

void RedisConn::Impl::spawn(const std::shared_ptr<Impl>& self, const std::shared_ptr<Link>& l,
                            asio::awaitable<void> work) {
    // An exception here would leave the connection half-used: drop it instead. (When the
    // io_context is destroyed with the coroutine suspended, nothing runs, nor needs to.)
    asio::co_spawn(self->ex, std::move(work), [self, l](std::exception_ptr e) {
        if (e) self->fail_link(l, redis_errc::internal);
    });
}

void RedisConn::Impl::start_connect(const std::shared_ptr<Impl>& self) {
    state = State::connecting;
    auto l = std::make_shared<Link>(ex, limits);
    link = l;
    // co_spawn runs a coroutine at once, up to its first suspension, when called on the
    // executor's own thread: the watchdog goes first and parks on the connect deadline; the
    // connect may then fail before returning here (no TLS context), dropping `link`.
    spawn(self, l, watchdog(self, l));
    spawn(self, l, connect_link(self, l));
}

void RedisConn::Impl::enqueue(Pending& p, Bytes commands, std::size_t replies) {
    out.insert(out.end(), commands.begin(), commands.end());
    // While connecting, the clock starts when the connection is open (opened()).
    const auto deadline =
        state == State::open ? Clock::now() + ep.command_timeout : Clock::time_point::max();
    slots.push_back(Slot{&p, replies, deadline, false});
    p.conn = this;
    if (state != State::open) return;
    Link& l = *link;
    if (l.writer_parked) {
        l.writer_parked = false;
        wake(l.write_wake);
    }
    // Only an idle watchdog needs waking: a busy one is armed for an older, earlier deadline.
    if (l.watchdog_parked) {
        l.watchdog_parked = false;
        wake(l.deadline);
    }
}

void RedisConn::Impl::opened(const std::shared_ptr<Impl>& self, const std::shared_ptr<Link>& l) {
    state = State::open;
    const auto deadline = Clock::now() + ep.command_timeout;
    for (Slot& s : slots)
        s.deadline = deadline;
    std::vector<std::uint8_t> auth;
    if (detail::write_auth(auth, ep)) {
        // AUTH goes first, in the same write as the calls that queued while connecting: one
        // round trip. Should it be refused, their replies (NOAUTH errors) are never seen.
        out.insert(out.begin(), auth.begin(), auth.end());
        slots.push_front(Slot{nullptr, 1, deadline, true});
    }
    wake(l->deadline); // from the connect deadline to the requests'
    spawn(self, l, read_loop(self, l));
    spawn(self, l, write_loop(self, l));
}

void RedisConn::Impl::prove(Link& l) {
    if (l.proven) return;
    // Only a reply proves the server works: a stopped or overloaded server still completes
    // TCP connects from its listen backlog.
    l.proven = true;
    backoff = ep.backoff_min;
    ++stats.connects;
    set_health(RedisHealth::up, {});
}

error_code RedisConn::Impl::deliver(Link& l, Reply&& reply) {
    if (slots.empty()) return redis_errc::unexpected_reply;
    Slot& slot = slots.front();
    if (slot.auth) {
        if (reply.kind == ReplyKind::error) {
            last_error = std::move(reply.str);
            return redis_errc::auth_refused;
        }
        slots.pop_front();
        prove(l);
        return {};
    }
    prove(l);
    // run() reserved room for every reply: this does not allocate.
    if (slot.owner) slot.owner->replies.push_back(std::move(reply));
    if (--slot.left == 0) {
        Pending* owner = slot.owner;
        slots.pop_front();
        if (owner) finish(*owner, {});
    }
    return {};
}

void RedisConn::Impl::finish(Pending& p, error_code ec) noexcept {
    if (ec) ++stats.failed_calls;
    p.ec = ec;
    p.done = true;
    p.conn = nullptr;
    wake(p.wake);
}

void RedisConn::Impl::abandon(Pending& p) noexcept {
    ++stats.failed_calls;
    // Rare (a cancelled caller): a walk over the calls in flight is fine.
    for (Slot& s : slots)
        if (s.owner == &p) s.owner = nullptr;
    p.conn = nullptr;
}

void RedisConn::Impl::fail_link(std::shared_ptr<Link> l, error_code ec) {
    if (!current(l)) return; // already dropped: the first reason stands
    link.reset();
    l->close();
    const bool was_proven = l->proven;
    const bool idle = slots.empty();
    // Every call in flight fails: replies after a gap can no longer be matched to callers.
    // (finish() only wakes them; they run later, so `slots` does not change meanwhile.)
    for (Slot& s : slots)
        if (s.owner) finish(*s.owner, ec);
    slots.clear();
    out.clear();
    if (state == State::closed) return;
    if (was_proven)
        ++stats.drops;
    else
        ++stats.connect_failures;
    if (ec == redis_errc::timeout) ++stats.timeouts;
    if (ec == redis_errc::unexpected_reply || ec.category() == cache_category())
        ++stats.protocol_errors;
    if (was_proven && idle && peer_closed(ec)) {
        // Closed by the server while unused (its idle timeout, a restart): nothing suggests the
        // next attempt will fail, and if it does, that failure starts the backoff.
        state = State::idle;
    } else {
        state = State::backoff;
        retry_at = Clock::now() + backoff;
        backoff = std::min(backoff * 2, std::max(ep.backoff_max, ep.backoff_min));
    }
    set_health(RedisHealth::down, ec);
}

void RedisConn::Impl::set_health(RedisHealth h, error_code why) {
    if (h == health) return;
    health = h;
    ++transitions;
    if (on_change) on_change(h, why);
}

asio::awaitable<void> RedisConn::Impl::connect_link(std::shared_ptr<Impl> self,
                                                    std::shared_ptr<Link> l) {
    Impl& s = *self;
    // The watchdog enforces connect_timeout by dropping the link, which ends this at once.
    const error_code ec = co_await detail::open_stream(s.ep, s.tls, l->stream);
    if (!s.current(l)) co_return; // timed out or closed meanwhile
    if (ec) {
        s.fail_link(l, ec);
        co_return;
    }
    s.opened(self, l);
}

asio::awaitable<void> RedisConn::Impl::read_loop(std::shared_ptr<Impl> self,
                                                 std::shared_ptr<Link> l) {
    Impl& s = *self;
    for (;;) {
        auto [ec, n] = co_await l->stream.read_some(asio::buffer(l->in));
        if (!s.current(l)) co_return;
        if (ec) {
            s.fail_link(l, ec);
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
            const error_code dec = s.deliver(*l, std::move(**r));
            if (dec) {
                s.fail_link(l, dec);
                co_return;
            }
        }
    }
}

asio::awaitable<void> RedisConn::Impl::write_loop(std::shared_ptr<Impl> self,
                                                  std::shared_ptr<Link> l) {
    Impl& s = *self;
    for (;;) {
        if (s.out.empty()) {
            l->writer_parked = true;
            co_await l->write_wake.async_wait(use_tuple);
            if (!s.current(l)) co_return;
            continue;
        }
        // Everything queued since the last write goes in this one; calls made meanwhile
        // queue for the next.
        std::swap(s.out, l->writing);
        s.out.clear();
        ++s.stats.writes;
        const error_code ec = co_await l->stream.write_all(asio::buffer(l->writing));
        if (!s.current(l)) co_return;
        if (ec) {
            s.fail_link(l, ec);
            co_return;
        }
        if (l->writing.capacity() > max_kept_write_buffer)
            std::vector<std::uint8_t>{}.swap(l->writing);
    }
}

asio::awaitable<void> RedisConn::Impl::watchdog(std::shared_ptr<Impl> self,
                                                std::shared_ptr<Link> l) {
    Impl& s = *self;
    const auto connect_deadline = Clock::now() + s.ep.connect_timeout;
    // One timer per connection: first the connect deadline, then the oldest request's
    // (deadlines grow with call order), re-armed only when it fires, not one timer per call.
    for (;;) {
        if (s.connecting(l)) {
            l->watchdog_parked = false;
            l->deadline.expires_at(connect_deadline);
        } else {
            l->watchdog_parked = s.slots.empty();
            l->deadline.expires_at(l->watchdog_parked ? Clock::time_point::max()
                                                      : s.slots.front().deadline);
        }
        co_await l->deadline.async_wait(use_tuple);
        if (!s.current(l)) co_return;
        const auto now = Clock::now();
        if (s.connecting(l)) {
            if (now < connect_deadline) continue;
            s.fail_link(l, redis_errc::connect_timeout);
            co_return;
        }
        if (!s.slots.empty() && s.slots.front().deadline <= now) {
            s.fail_link(l, redis_errc::timeout);
            co_return;
        }
    }
}

RedisConn::RedisConn(asio::any_io_executor executor, RedisEndpoint endpoint,
                     asio::ssl::context* tls, ReaderLimits limits)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(endpoint), tls, limits)) {}

RedisConn::~RedisConn() { close(); }

asio::awaitable<result<std::vector<Reply>>> RedisConn::run(Bytes commands, std::size_t replies) {
    Impl& s = *impl_;
    ++s.stats.calls;
    error_code refusal;
    if (commands.empty() || replies == 0) {
        refusal = asio::error::invalid_argument;
    } else if (s.state == Impl::State::closed) {
        refusal = redis_errc::closed;
    } else if (s.state == Impl::State::backoff) {
        if (Clock::now() < s.retry_at) {
            ++s.stats.unavailable;
            refusal = redis_errc::unavailable;
        } else {
            s.state = Impl::State::idle;
        }
    }
    if (refusal) {
        ++s.stats.failed_calls;
        co_return refusal;
    }

    Pending p{s.ex};
    p.replies.reserve(replies);
    s.enqueue(p, commands, replies);
    if (s.state == Impl::State::idle) s.start_connect(impl_); // may fail `p` at once
    if (!p.done) co_await p.wake.async_wait(use_tuple);
    // From here `s` may be gone (this object destroyed while the call waited): only `p` is
    // read. Not done: the caller's coroutine was cancelled; ~Pending gives up the slot.
    if (!p.done) co_return error_code{asio::error::operation_aborted};
    if (p.ec) co_return p.ec;
    co_return std::move(p.replies);
}

void RedisConn::close() noexcept {
    Impl& s = *impl_;
    if (s.state == Impl::State::closed) return;
    s.state = Impl::State::closed;
    s.on_change = nullptr; // its owner may be on its way out too
    if (s.link) s.fail_link(s.link, redis_errc::closed);
    s.health = RedisHealth::down;
}

bool RedisConn::up() const noexcept { return impl_->health == RedisHealth::up; }
RedisHealth RedisConn::health() const noexcept { return impl_->health; }
std::uint64_t RedisConn::transitions() const noexcept { return impl_->transitions; }
void RedisConn::on_health_change(std::function<void(RedisHealth, error_code)> callback) {
    impl_->on_change = std::move(callback);
}
const RedisStats& RedisConn::stats() const noexcept { return impl_->stats; }
const std::string& RedisConn::last_error() const noexcept { return impl_->last_error; }
const RedisEndpoint& RedisConn::endpoint() const noexcept { return impl_->ep; }

} // namespace sluice::cache
