#include "mysql_session.hpp"
#include "server.hpp"
#include "tds_session.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

namespace sluice {

router::Consistency to_router(config::Consistency c) noexcept {
    switch (c) {
    case config::Consistency::eventual:
        return router::Consistency::eventual;
    case config::Consistency::session:
        return router::Consistency::session;
    case config::Consistency::global:
        break;
    case config::Consistency::fleet:
        return router::Consistency::fleet;
    }
    return router::Consistency::global;
}

std::variant<router::RuleSet, std::string> compile_rules(const config::Config& cfg) {
    std::vector<router::RuleSpec> specs;
    for (const auto& r : cfg.query_rules) {
        router::RuleSpec spec;
        spec.name = r.name;
        spec.match_digest = r.match_digest;
        spec.user = r.user;
        spec.schema = r.schema;
        switch (r.route) {
        case config::QueryRule::Route::primary:
            spec.route = router::Destination::primary;
            break;
        case config::QueryRule::Route::replica:
            spec.route = router::Destination::replica;
            break;
        case config::QueryRule::Route::refuse:
            spec.route = router::Destination::refuse;
            break;
        }
        spec.error_code = r.error_code;
        spec.error_message = r.error_message;
        spec.max_lag_ms = r.max_lag_ms;
        if (r.consistency) spec.consistency = to_router(*r.consistency);
        specs.push_back(std::move(spec));
    }
    return router::RuleSet::compile(std::move(specs));
}

std::variant<router::RuleSet, std::string> compile_cache_rules(const config::Config& cfg) {
    std::vector<router::RuleSpec> specs;
    for (const auto& r : cfg.cache_rules) {
        router::RuleSpec spec;
        spec.name = r.name;
        spec.match_digest = r.match_digest;
        spec.user = r.user;
        spec.schema = r.schema;
        const auto ttl = r.ttl.value_or(cfg.cache.default_ttl);
        spec.cache_ttl_ms = static_cast<std::uint32_t>(ttl.count());
        spec.cache_shared = r.shared;
        specs.push_back(std::move(spec));
    }
    return router::RuleSet::compile(std::move(specs));
}

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> run_client_session(tcp::socket socket, Worker& worker,
                                         ListenerShared& listener) {
    // Config validation admits only "mysql" and "tds". Each session lives exactly as long
    // as this frame.
    if (listener.cfg->protocol == "tds") {
        TdsSession session{std::move(socket), worker, listener};
        co_await session.run();
        co_return;
    }
    MysqlSession session{std::move(socket), worker, listener};
    co_await session.run();
}
} // namespace

const char* client_error_name(ClientError e) noexcept {
    switch (e) {
    case ClientError::malformed_packet:
        return "malformed_packet";
    case ClientError::oversized_packet:
        return "oversized_packet";
    case ClientError::bad_sequence:
        return "bad_sequence";
    case ClientError::unknown_command:
        return "unknown_command";
    case ClientError::auth_failed:
        return "auth_failed";
    case ClientError::too_many_connections:
        return "too_many_connections";
    case ClientError::tls_required:
        return "tls_required";
    case ClientError::handshake_timeout:
        return "handshake_timeout";
    case ClientError::backend_unavailable:
        return "backend_unavailable";
    case ClientError::backend_lost:
        return "backend_lost";
    case ClientError::count_:
        break;
    }
    return "unknown";
}

bool AuthCache::contains(std::string_view user) const {
    std::lock_guard lock{mutex_};
    return users_.find(user) != users_.end();
}

void AuthCache::insert(std::string_view user) {
    std::lock_guard lock{mutex_};
    users_.emplace(user);
}

namespace {

/// Each backend's pool sizes: [pool]'s, with the backend's own overrides.
std::vector<pool::PoolLimits> pool_limits(const config::Config& cfg) {
    std::vector<pool::PoolLimits> out;
    for (const config::Backend& b : cfg.backends) {
        pool::PoolLimits l;
        l.max = b.pool_max_connections.value_or(cfg.pool.max_connections);
        l.min_idle = b.pool_min_idle.value_or(cfg.pool.min_idle);
        l.idle_timeout = b.pool_idle_timeout.value_or(cfg.pool.idle_timeout);
        l.max_lifetime = b.pool_max_lifetime.value_or(cfg.pool.max_lifetime);
        out.push_back(l);
    }
    return out;
}

} // namespace

Worker::Worker(unsigned index, Shared& shared)
    : index_(index), shared_(shared), pool_(pool_limits(shared.cfg)),
      tds_pool_(shared.cfg.pool.max_connections, shared.cfg.pool.idle_timeout),
      cache_(shared.cache, shared.cache.enabled ? shared.cfg.cache.l1_max_bytes : 0),
      topology_(shared.topology), tds_topology_(shared.tds_topology) {}

void Worker::set_topology(std::shared_ptr<const pool::Topology> t) {
    topology_ = std::move(t);
    routing_view_stale_ = true;
}

void Worker::wait_started(std::size_t index, std::uint64_t version) noexcept {
    if (index < gates_.size()) gates_[index].in_flight = std::max(gates_[index].in_flight, version);
}

void Worker::wait_finished(std::size_t index, std::uint64_t version) noexcept {
    if (index >= gates_.size()) return;
    WaitGate& g = gates_[index];
    if (g.in_flight <= version) g.in_flight = 0; // no later wait is in flight
    // Everyone looks again: those whose version is now known applied read at once; the others
    // park again behind a later wait in flight, or send their own.
    for (asio::steady_timer* t : g.parked) {
        try {
            t->cancel();
        } catch (const std::exception&) {
            // Cannot happen for a timer of this thread; the parked session wakes at its deadline.
        }
    }
    g.parked.clear();
}

void Worker::park(std::size_t index, asio::steady_timer* timer) {
    if (index < gates_.size()) gates_[index].parked.push_back(timer);
}

void Worker::unpark(std::size_t index, asio::steady_timer* timer) noexcept {
    if (index >= gates_.size()) return;
    auto& parked = gates_[index].parked;
    parked.erase(std::remove(parked.begin(), parked.end(), timer), parked.end());
}

const pool::Topology& Worker::routing_topology() {
    if (routing_view_stale_) {
        routing_view_ = *topology_; // a copy per snapshot, not per choice
        routing_view_stale_ = false;
    }
    const auto now = std::chrono::steady_clock::now();
    auto& backends = routing_view_.backends;
    for (std::size_t i = 0; i < backends.size() && i < pool::max_backends; ++i) {
        pool::BackendState& b = backends[i];
        b.outstanding = static_cast<std::uint32_t>(stats_.backend_outstanding[i].get());
        b.sessions = shared_.sessions_on[i].load(std::memory_order_relaxed);
        b.rtt = round_trips_[i].value(now, topology_->backends[i].rtt);
    }
    return routing_view_;
}

void ensure_port_free(const config::Listener& l) {
    // SO_REUSEPORT would let a second Sluice (or anything with that option) share the port
    // silently; a bind without it fails if anyone listens there already.
    asio::io_context io;
    tcp::acceptor probe{io};
    const tcp::endpoint ep{asio::ip::make_address(l.address), l.port};
    probe.open(ep.protocol());
    probe.set_option(asio::socket_base::reuse_address(true));
    error_code ec;
    probe.bind(ep, ec);
    if (ec)
        throw std::system_error(ec, "listener " + l.name + " on " + l.address + ":" +
                                        std::to_string(l.port));
}

void Worker::listen() {
    for (auto& l : shared_.listeners) {
        const tcp::endpoint ep{asio::ip::make_address(l->cfg->address), l->cfg->port};
        tcp::acceptor acceptor{io_};
        acceptor.open(ep.protocol());
        acceptor.set_option(asio::socket_base::reuse_address(true));
        // Every worker binds its own socket to the same port; the kernel spreads connections.
        const int one = 1;
        if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            throw std::system_error(errno, std::generic_category(), "SO_REUSEPORT");
        acceptor.bind(ep);
        acceptor.listen(asio::socket_base::max_listen_connections);
        acceptors_.emplace_back(std::move(acceptor), l.get());
    }
}

void Worker::start_thread() {
    for (auto& [acceptor, listener] : acceptors_) {
        asio::co_spawn(io_, accept_loop(acceptor, *listener), asio::detached);
    }
    asio::co_spawn(io_, sweep(), asio::detached);
    std::function<std::uint64_t()> resync_needs;
    if (index_ == 0) {
        // After table versions were lost, cached results must reflect what the primary had
        // then: its position as the monitor last read it, else only the primary's answers.
        resync_needs = [&shared = shared_, this]() -> std::uint64_t {
            const pool::Topology& t = topology();
            if (t.primary && *t.primary < t.backends.size() &&
                !t.backends[*t.primary].gtid_position.empty()) {
                shared.acked.acknowledge(t.backends[*t.primary].gtid_position);
                return shared.acked.version();
            }
            return ~std::uint64_t{0};
        };
    }
    cache_.tds_peer_write = [&acked = shared_.tds_acked](std::string_view lsn) {
        const std::lock_guard lock(acked.mutex);
        if (pool::compare_lsn(lsn, acked.lsn) > 0) acked.lsn = std::string(lsn);
        acked.at = std::chrono::steady_clock::now();
    };
    cache_.start(io_.get_executor(), stats_, std::move(resync_needs), &shared_.acked);
    thread_ = std::thread([this] {
        try {
            io_.run();
        } catch (const std::exception& e) {
            spdlog::critical("worker {} stopped: {}", index_, e.what());
        } catch (...) {
            spdlog::critical("worker {} stopped by an exception of unknown type", index_);
        }
    });
}

void Worker::join() {
    if (thread_.joinable()) thread_.join();
}

asio::awaitable<void> Worker::accept_loop(tcp::acceptor& acceptor, ListenerShared& listener) {
    asio::steady_timer pause{io_};
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        if (ec) {
            // Out of file descriptors: wait a little instead of spinning on the error.
            spdlog::warn("worker {} accept failed: {}", index_, ec.message());
            pause.expires_after(std::chrono::milliseconds(50));
            co_await pause.async_wait(use_tuple);
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        asio::co_spawn(io_, run_client_session(std::move(socket), *this, listener),
                       [this](const std::exception_ptr& e) {
                           if (!e) return;
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& ex) {
                               spdlog::error("worker {}: session ended by exception: {}", index_,
                                             ex.what());
                           } catch (...) {
                               // Whatever was thrown ends this one session, never the process.
                               spdlog::error("worker {}: session ended by an exception of "
                                             "unknown type",
                                             index_);
                           }
                       });
    }
}

asio::awaitable<void> Worker::sweep() {
    for (;;) {
        sweep_timer_.expires_after(std::chrono::seconds(1));
        auto [ec] = co_await sweep_timer_.async_wait(use_tuple);
        // Ends with the worker: drained with no session left, its io_context runs out.
        if (ec || (draining_ && sessions_.empty())) co_return;
        const auto now = std::chrono::steady_clock::now();
        const std::vector<ClientSession*> sessions(sessions_.begin(), sessions_.end());
        for (auto* s : sessions)
            s->check_client(now);
        pool_.sweep(now);
        tds_pool_.sweep(now);
        if (!draining_) {
            // min_idle: connections opened ahead of use, with logins sessions taught the pool.
            for (auto& opening : pool_.to_open())
                asio::co_spawn(io_, prewarm(*this, std::move(opening)), asio::detached);
        }
        for (std::size_t i = 0; i < pool_.backends() && i < stats_.pool_open.size(); ++i) {
            stats_.pool_open[i].set(pool_.open(i));
            stats_.pool_idle[i].set(pool_.idle(i));
            stats_.pool_waiting[i].set(pool_.waiting(i));
        }
    }
}

void Worker::drain() {
    asio::post(io_, [this] {
        draining_ = true;
        for (auto& [acceptor, listener] : acceptors_) {
            error_code ignored;
            acceptor.close(ignored);
        }
        if (sessions_.empty()) {
            sweep_timer_.cancel();
            cache_.stop();
        }
        // Copy: closing a session can end it and remove it from the set.
        const std::vector<ClientSession*> sessions(sessions_.begin(), sessions_.end());
        for (auto* s : sessions)
            s->close_if_idle();
    });
}

void Worker::kill_session(std::uint32_t id) {
    asio::post(io_, [this, id] {
        for (auto* s : sessions_) {
            if (s->id() == id) {
                s->kill();
                return;
            }
        }
    });
}

void SessionRegistry::set(std::uint32_t id, const Threads& t) {
    const std::lock_guard lock{mutex_};
    Threads& entry = map_[id];
    // The user changes only at a login or COM_CHANGE_USER: pooled sessions publish their
    // threads twice per statement, which copies no string then.
    if (entry.user != t.user) entry.user = t.user;
    entry.worker = t.worker;
    entry.primary = t.primary;
    entry.replica_index = t.replica_index;
    entry.replica = t.replica;
}

void SessionRegistry::erase(std::uint32_t id) noexcept {
    const std::lock_guard lock{mutex_};
    map_.erase(id);
}

std::optional<SessionRegistry::Threads> SessionRegistry::find(std::uint32_t id) const {
    const std::lock_guard lock{mutex_};
    auto it = map_.find(id);
    if (it == map_.end()) return std::nullopt;
    return it->second;
}

void Worker::force_close() {
    asio::post(io_, [this] {
        const std::vector<ClientSession*> sessions(sessions_.begin(), sessions_.end());
        for (auto* s : sessions)
            s->force_close();
    });
}

} // namespace sluice
