#include "sluice/pool/monitor.hpp"

#include "mariadb_async.hpp"
#include "sluice/pool/probe.hpp"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <optional>
#include <random>
#include <spdlog/spdlog.h>

namespace sluice::pool {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
/// A breaker the monitor closes only with a successful probe.
constexpr auto never_half_open = std::chrono::hours(24 * 365);

std::optional<std::uint64_t> unsigned_of(const std::optional<std::string>& s) {
    if (!s) return std::nullopt;
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc{} || end != s->data() + s->size()) return std::nullopt;
    return v;
}

} // namespace

struct Monitor::State {
    MonitorOptions options;
    std::vector<MonitoredBackend> backends;
    Publish publish;
    std::vector<BackendHealth> health;
    std::vector<bool> probed; ///< for the first snapshot: every backend probed once
    std::size_t unprobed = 0;
    HeartbeatLog heartbeats;
    std::uint64_t instance = 0; ///< this process's heartbeat row
    std::uint64_t version = 0;
    std::vector<BackendState> published;
    std::optional<std::size_t> configured_primary;
    std::optional<std::size_t> writer;      ///< the backend that takes writes now
    std::optional<std::size_t> last_writer; ///< the last one known (failovers count changes)
    std::atomic<std::uint64_t> failovers{0};
    mutable std::mutex mutex;
    std::shared_ptr<const Topology> latest;
    bool stopped = false;
    asio::io_context io{1}; // last: destroyed first, with the probes' coroutine frames

    std::string heartbeat_name() const {
        return "`" + options.heartbeat_database + "`.`" + options.heartbeat_table + "`";
    }
    asio::awaitable<ProbeResult> probe_once(std::size_t i, detail::MariadbConnection& conn,
                                            bool& table_ready, bool& warned,
                                            bool& warned_heartbeat);
    asio::awaitable<void> probe_loop(std::size_t i);
    void on_result(std::size_t i, ProbeResult r);
    void publish_snapshot();
};

asio::awaitable<ProbeResult> Monitor::State::probe_once(std::size_t i,
                                                        detail::MariadbConnection& conn,
                                                        bool& table_ready, bool& warned,
                                                        bool& warned_heartbeat) {
    const MonitoredBackend& b = backends[i];
    const auto deadline = clock::now() + options.timeout;
    ProbeResult r;
    auto fail = [&](std::string what) {
        r.reachable = false;
        r.error = std::move(what);
        r.at = clock::now();
        return r;
    };
    if (!conn.connected()) {
        detail::MariadbTarget t;
        t.host = b.host;
        t.port = b.port;
        t.user = options.user;
        t.password = options.password;
        t.tls = b.tls;
        t.ca_file = b.ca_file;
        t.cert_file = b.cert_file;
        t.key_file = b.key_file;
        t.verify_server_cert = b.verify_server_cert;
        const std::string error = co_await conn.connect(t, deadline);
        if (!error.empty()) co_return fail("connect: " + error);
        table_ready = false;
    }
    const bool mariadb = conn.server_info().find("MariaDB") != std::string::npos;
    // The probe runs no SELECT: a server's Com_select counts its clients' reads only.
    const auto sent = clock::now();
    const bool pinged = co_await conn.ping(deadline);
    if (!pinged) co_return fail("ping: no answer");
    r.rtt = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - sent);

    const auto vars = co_await conn.query(
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only', 'gtid_current_pos', "
        "'gtid_executed')",
        deadline);
    if (!vars.ok) co_return fail("SHOW GLOBAL VARIABLES: " + vars.error);
    for (const auto& row : vars.rows) {
        if (row.size() < 2 || !row[0] || !row[1]) continue;
        if (*row[0] == "read_only") r.read_only = *row[1] == "ON" || *row[1] == "1";
        if (*row[0] == (mariadb ? "gtid_current_pos" : "gtid_executed")) r.gtid_position = *row[1];
    }

    const auto status = co_await conn.query("SHOW SLAVE STATUS", deadline);
    if (status.ok && !status.rows.empty()) {
        ReplicationStatus rs;
        // "Connecting": the replica lost its primary (a failover) and keeps what it applied;
        // it stays in rotation, judged by its lag, as long as it applies what it received.
        const auto io_state = status.first("Slave_IO_Running");
        rs.io_running = io_state == "Yes" || io_state == "Connecting";
        rs.sql_running = status.first("Slave_SQL_Running") == "Yes";
        if (auto sbm = unsigned_of(status.first("Seconds_Behind_Master")))
            rs.seconds_behind = static_cast<std::int64_t>(*sbm);
        r.replication = rs;
    } else if (!status.ok) {
        if (!conn.connected()) co_return fail("SHOW SLAVE STATUS: " + status.error);
        // Refused (the monitor user lacks SLAVE MONITOR / REPLICATION CLIENT): replication
        // cannot be judged, so it is not held against the replica.
        r.replication_unknown = true;
        if (!warned) {
            spdlog::warn("monitor: {} refuses SHOW SLAVE STATUS ({}): replication threads are "
                         "not checked there",
                         b.name, status.error);
            warned = true;
        }
    }

    if (!options.heartbeat_database.empty()) {
        // The writer, or before one is known the configured primary.
        const bool is_writer = writer ? *writer == i : b.role == Role::primary;
        if (is_writer && !r.read_only) {
            if (!table_ready) {
                const std::string create =
                    "CREATE TABLE IF NOT EXISTS " + heartbeat_name() +
                    " (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, seq BIGINT UNSIGNED NOT NULL, "
                    "written TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE "
                    "CURRENT_TIMESTAMP(6)) ENGINE=InnoDB";
                const std::string create_db =
                    "CREATE DATABASE IF NOT EXISTS `" + options.heartbeat_database + "`";
                const auto db = co_await conn.query(create_db, deadline);
                const auto table = co_await conn.query(create, deadline);
                const auto track = co_await conn.query(
                    mariadb ? "SET SESSION session_track_system_variables = 'last_gtid'"
                            : "SET SESSION session_track_gtids = OWN_GTID",
                    deadline);
                // Rows of Sluice processes gone for a day.
                const std::string purge =
                    "DELETE FROM " + heartbeat_name() + " WHERE written < NOW(6) - INTERVAL 1 DAY";
                const auto old = co_await conn.query(purge, deadline);
                if (!conn.connected()) co_return fail("heartbeat table: " + table.error);
                table_ready = db.ok && table.ok && old.ok && track.ok;
                if (!table_ready && !warned_heartbeat) {
                    spdlog::warn("monitor: cannot write the heartbeat {} on {} ({}): replica lag "
                                 "comes from Seconds_Behind_Master (whole seconds)",
                                 heartbeat_name(), b.name,
                                 !db.ok      ? db.error
                                 : !table.ok ? table.error
                                 : !old.ok   ? old.error
                                             : track.error);
                    warned_heartbeat = true;
                }
            }
            if (table_ready) {
                const std::uint64_t seq = heartbeats.next_seq();
                const std::string insert = "INSERT INTO " + heartbeat_name() +
                                           " (id, seq) VALUES (" + std::to_string(instance) + ", " +
                                           std::to_string(seq) +
                                           ") ON DUPLICATE KEY UPDATE seq = VALUES(seq)";
                const auto beat = co_await conn.query(insert, deadline);
                if (beat.ok)
                    heartbeats.acknowledged(seq, conn.tracked_gtid(), clock::now());
                else if (!conn.connected())
                    co_return fail("heartbeat: " + beat.error);
            }
        }
        // Replicas: their applied GTID position (above) says which heartbeats they have.
    }
    r.reachable = true;
    r.at = clock::now();
    co_return r;
}

asio::awaitable<void> Monitor::State::probe_loop(std::size_t i) {
    detail::MariadbConnection conn{co_await asio::this_coro::executor};
    asio::steady_timer tick{io};
    bool table_ready = false;
    bool warned = false;
    bool warned_heartbeat = false;
    for (;;) {
        const auto started = clock::now();
        ProbeResult r = co_await probe_once(i, conn, table_ready, warned, warned_heartbeat);
        on_result(i, std::move(r));
        tick.expires_at(started + options.interval);
        const auto [ec] = co_await tick.async_wait(use_tuple);
        if (ec) co_return;
    }
}

void Monitor::State::on_result(std::size_t i, ProbeResult r) {
    const MonitoredBackend& b = backends[i];
    const bool changed = record_probe(health[i], std::move(r), heartbeats);
    if (changed) {
        if (health[i].breaker.state(clock::now()) == Breaker::State::closed)
            spdlog::info("monitor: backend {} is up again", b.name);
        else
            spdlog::warn("monitor: backend {} is down after {} failed probes ({}): out of "
                         "rotation",
                         b.name, health[i].breaker.failures(), health[i].last_error);
    }
    if (!probed[i]) {
        probed[i] = true;
        --unprobed;
    }
    if (unprobed == 0) publish_snapshot();
}

void Monitor::State::publish_snapshot() {
    const auto now = clock::now();
    auto t = std::make_shared<Topology>();
    t->version = ++version;
    const auto found = discover_writer(health, configured_primary, writer, now);
    if (found != writer) {
        if (found && last_writer && *found != *last_writer)
            spdlog::warn("monitor: the primary is now {} (was {}): writes go there",
                         backends[*found].name, backends[*last_writer].name);
        else if (found)
            spdlog::info("monitor: the primary is {}", backends[*found].name);
        else
            spdlog::warn("monitor: no backend takes writes (none up with read_only=0): writes "
                         "and logins wait for one");
        if (found && last_writer && *found != *last_writer)
            failovers.fetch_add(1, std::memory_order_relaxed);
        writer = found;
        if (found) last_writer = found;
    }
    t->primary = writer;
    for (std::size_t i = 0; i < backends.size(); ++i) {
        const MonitoredBackend& b = backends[i];
        const Role role = writer == i ? Role::primary : Role::replica;
        t->backends.push_back(backend_state(role, b.zone, b.weight, health[i], now));
        const BackendState& s = t->backends.back();
        if (role == Role::replica && s.up && !published.empty() &&
            published[i].replicating != s.replicating) {
            if (s.replicating)
                spdlog::info("monitor: replica {} replicates again", b.name);
            else
                spdlog::warn("monitor: replica {} has stopped replicating: out of rotation",
                             b.name);
        }
    }
    published = t->backends;
    {
        const std::lock_guard lock(mutex);
        latest = t;
    }
    publish(std::move(t));
}

Monitor::Monitor(MonitorOptions options, std::vector<MonitoredBackend> backends, Publish publish)
    : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.options = std::move(options);
    s.backends = std::move(backends);
    s.publish = std::move(publish);
    const Breaker::Options breaker{.failures_to_open = s.options.failures_to_open,
                                   .open_for = never_half_open};
    BackendHealth initial;
    initial.breaker = Breaker(breaker);
    s.health.assign(s.backends.size(), initial);
    s.probed.assign(s.backends.size(), false);
    for (std::size_t i = 0; i < s.backends.size(); ++i) {
        if (s.backends[i].role == Role::primary) s.configured_primary = i;
    }
    s.unprobed = s.backends.size();
    std::random_device rd;
    // A row of its own per Sluice process: positive in a signed BIGINT too.
    s.instance = ((std::uint64_t{rd()} << 32) | rd()) & 0x7FFF'FFFF'FFFF'FFFFull;
}

Monitor::~Monitor() { stop(); }

void Monitor::start() {
    State& s = *state_;
    for (std::size_t i = 0; i < s.backends.size(); ++i) {
        asio::co_spawn(
            s.io, s.probe_loop(i), [name = s.backends[i].name](const std::exception_ptr& e) {
                if (!e) return;
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    spdlog::error("monitor: the probe of {} stopped: {}", name, ex.what());
                }
            });
    }
    thread_ = std::thread([&s] { s.io.run(); });
}

void Monitor::stop() {
    if (!state_ || state_->stopped) return;
    state_->stopped = true;
    state_->io.stop();
    if (thread_.joinable()) thread_.join();
}

std::uint64_t Monitor::failovers() const noexcept {
    return state_->failovers.load(std::memory_order_relaxed);
}

std::shared_ptr<const Topology> Monitor::latest() const {
    const std::lock_guard lock(state_->mutex);
    return state_->latest;
}

} // namespace sluice::pool
