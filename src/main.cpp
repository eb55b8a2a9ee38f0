// sluice: a read/write-splitting SQL proxy. Entry point: arguments, configuration, workers,
// the admin listener, signals and shutdown.

#include "admin.hpp"
#include "binlog_sync.hpp"
#include "server.hpp"
#include "sluice/pool/backend_conn.hpp"
#include "sluice/protocol/mysql/constants.hpp"
#include "tds_stream.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <string_view>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
namespace mysql = sluice::protocol::mysql;

constexpr const char* usage = R"(Usage: sluice --config FILE
       sluice --check-config FILE
       sluice --version | --help

Sluice is a read/write-splitting proxy for MySQL and MariaDB clients, and for SQL Server
clients (TDS) in front of an availability group.

Options:
  -c, --config FILE        run with the TOML configuration FILE
      --check-config FILE  validate FILE, print what is wrong with file:line, and exit
                           (exit code 0 when valid, 2 when not)
  -V, --version            print the version and exit
  -h, --help               print this help and exit

Signals: SIGTERM and SIGINT stop accepting, let running statements finish for up to
shutdown_grace_ms, then close the remaining connections; a second one closes them at
once. SIGHUP is logged and ignored (reload is not supported yet). SIGPIPE is ignored.
See sluice.example.toml for every configuration key.
)";

// What Sluice can offer clients; the primary's own capabilities narrow it at start.
constexpr std::uint32_t proxy_capabilities =
    mysql::cap::long_password | mysql::cap::found_rows | mysql::cap::long_flag |
    mysql::cap::connect_with_db | mysql::cap::no_schema | mysql::cap::local_files |
    mysql::cap::ignore_space | mysql::cap::protocol_41 | mysql::cap::interactive |
    mysql::cap::ignore_sigpipe | mysql::cap::transactions | mysql::cap::secure_connection |
    mysql::cap::multi_statements | mysql::cap::multi_results | mysql::cap::ps_multi_results |
    mysql::cap::plugin_auth | mysql::cap::connect_attrs | mysql::cap::plugin_auth_lenenc_data |
    mysql::cap::can_handle_expired_passwords | mysql::cap::session_track |
    mysql::cap::deprecate_eof;

std::unique_ptr<asio::ssl::context> server_tls(const sluice::config::TlsFiles& f) {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    ctx->use_certificate_chain_file(f.cert_file);
    ctx->use_private_key_file(f.key_file, asio::ssl::context::pem);
    if (!f.ca_file.empty()) {
        ctx->load_verify_file(f.ca_file);
        ctx->set_verify_mode(asio::ssl::verify_peer);
    }
    return ctx;
}

std::unique_ptr<asio::ssl::context> client_tls(const sluice::config::BackendTls& t) {
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    if (!t.ca_file.empty()) {
        ctx->load_verify_file(t.ca_file);
        ctx->set_verify_mode(asio::ssl::verify_peer);
    } else {
        ctx->set_verify_mode(asio::ssl::verify_none);
    }
    if (!t.cert_file.empty()) {
        ctx->use_certificate_chain_file(t.cert_file);
        ctx->use_private_key_file(t.key_file, asio::ssl::context::pem);
    }
    return ctx;
}

/// The L2's Redis servers, their TLS contexts and the names Sluice uses in Redis.
void setup_cache_redis(const sluice::config::Config& cfg, sluice::CacheShared& cache) {
    for (const auto& r : cfg.cache.redis) {
        sluice::RedisTarget t;
        t.endpoint.host = r.host;
        t.endpoint.port = r.port;
        t.endpoint.user = r.user;
        t.endpoint.password = r.password;
        t.endpoint.tls = r.tls;
        t.endpoint.tls_ca_file = r.tls_ca_file;
        t.endpoint.tls_server_name = r.tls_server_name;
        t.endpoint.tls_verify = r.tls_verify;
        t.endpoint.connect_timeout = r.connect_timeout;
        t.endpoint.command_timeout = r.command_timeout;
        t.endpoint.region = r.region;
        if (r.tls) {
            auto ctx = sluice::cache::make_tls_context(t.endpoint);
            if (!ctx)
                throw std::runtime_error("cache.redis " + r.host +
                                         ": TLS: " + ctx.error().message());
            t.tls = std::make_unique<asio::ssl::context>(std::move(*ctx));
        }
        t.own = r.region == cfg.cache.region;
        t.cluster = r.cluster;
        cache.redis.push_back(std::move(t));
    }
    cache.prefix = cfg.cache.key_prefix;
    // One hash tag for both: the bump script touches both keys, in one Redis Cluster slot.
    cache.versions_key = cfg.cache.key_prefix + "{meta}versions";
    cache.gtids_key = cfg.cache.key_prefix + "{meta}gtids";
    cache.channel = cfg.cache.key_prefix + "bumps";
    // Tells this process's own messages from the others' (they carry it first).
    cache.origin = fmt::format("{:x}-{:x}", ::getpid(),
                               std::chrono::steady_clock::now().time_since_epoch().count());
    // Until the versions were read from Redis, nothing cached can be trusted.
    cache.trusted = cache.redis.empty();
}

/// Learns the primary's version and capabilities from its greeting, so clients see the
/// server they would see directly.
sluice::pool::MonitorOptions monitor_options(const sluice::config::Monitor& m) {
    sluice::pool::MonitorOptions o;
    o.user = m.user;
    o.password = m.password;
    o.interval = m.interval;
    o.timeout = m.timeout;
    o.heartbeat_database = m.heartbeat_database;
    o.heartbeat_table = m.heartbeat_table;
    o.failures_to_open = m.failures_to_open;
    return o;
}

/// The SQL Server backends every worker reaches, and their topology as configured until
/// the TDS monitor measures it.
void setup_tds(const sluice::config::Config& cfg, sluice::Shared& shared) {
    auto topology = std::make_shared<sluice::pool::Topology>();
    for (std::size_t i = 0; i < cfg.tds_backends.size(); ++i) {
        const auto& b = cfg.tds_backends[i];
        if (b.tls && !shared.backend_tls) shared.backend_tls = client_tls(cfg.backend_tls);
        shared.tds_backends.push_back(
            {b.name, b.host, b.port, b.tls ? shared.backend_tls.get() : nullptr});
        sluice::pool::BackendState state;
        state.role = b.role == sluice::config::BackendRole::primary ? sluice::pool::Role::primary
                                                                    : sluice::pool::Role::replica;
        state.zone = b.zone;
        state.weight = b.weight;
        if (state.role == sluice::pool::Role::primary) topology->primary = i;
        topology->backends.push_back(std::move(state));
    }
    shared.tds_topology = std::move(topology);
}

/// What a monitor probes: `backends` ([[backends]] or [[tds_backends]]) with [backend_tls].
std::vector<sluice::pool::MonitoredBackend>
monitored_backends(const sluice::config::Config& cfg,
                   const std::vector<sluice::config::Backend>& backends) {
    std::vector<sluice::pool::MonitoredBackend> out;
    for (const auto& b : backends) {
        sluice::pool::MonitoredBackend m;
        m.name = b.name;
        m.host = b.host;
        m.port = b.port;
        m.role = b.role == sluice::config::BackendRole::primary ? sluice::pool::Role::primary
                                                                : sluice::pool::Role::replica;
        m.zone = b.zone;
        m.weight = b.weight;
        m.tls = b.tls;
        m.ca_file = cfg.backend_tls.ca_file;
        m.cert_file = cfg.backend_tls.cert_file;
        m.key_file = cfg.backend_tls.key_file;
        m.verify_server_cert = cfg.backend_tls.verify_hostname;
        out.push_back(std::move(m));
    }
    return out;
}

void probe_primary(sluice::Shared& shared) {
    asio::io_context io;
    auto fut = asio::co_spawn(
        io, sluice::pool::probe_greeting(shared.primary(), shared.cfg.connect_timeout),
        asio::use_future);
    io.run();
    auto greeting = fut.get();
    std::uint32_t primary_caps = ~0u;
    if (greeting) {
        primary_caps = greeting->capabilities;
        if (shared.server_version.empty()) shared.server_version = greeting->server_version;
        spdlog::info("primary {} at {}:{} is {}", shared.primary().name, shared.primary().host,
                     shared.primary().port, greeting->server_version);
    } else {
        spdlog::warn("primary {} at {}:{} did not answer at start ({}); clients will get "
                     "errors until it does",
                     shared.primary().name, shared.primary().host, shared.primary().port,
                     greeting.error().message());
        if (shared.server_version.empty()) shared.server_version = "8.0.0-sluice";
    }
    shared.server_capabilities = (proxy_capabilities & primary_caps) | mysql::cap::long_password |
                                 mysql::cap::protocol_41 | mysql::cap::secure_connection |
                                 mysql::cap::plugin_auth;
    // MariaDB's COM_STMT_BULK_EXECUTE (Connector/J useBulkStmts, batch inserts) passes
    // through when the primary has it. Its extended capabilities are only read when the
    // greeting does not claim CLIENT_MYSQL (the CLIENT_LONG_PASSWORD bit), as MariaDB's own.
    if (greeting && !(primary_caps & mysql::cap::long_password) &&
        (greeting->mariadb_ext_capabilities & mysql::mariadb_cap::stmt_bulk)) {
        shared.server_ext_capabilities = mysql::mariadb_cap::stmt_bulk;
        shared.server_capabilities &= ~mysql::cap::long_password;
    }
}

int run(const sluice::config::Config& cfg, sluice::router::RuleSet rules,
        sluice::router::RuleSet cache_rules) {
    // A peer that closed its socket is an error value on the write, never a signal.
    std::signal(SIGPIPE, SIG_IGN);
    // Until the signal set below takes SIGHUP over, a hang-up during start-up is ignored too.
    std::signal(SIGHUP, SIG_IGN);
    spdlog::set_default_logger(spdlog::stderr_color_mt("sluice"));
    spdlog::set_level(spdlog::level::from_str(cfg.logging.level));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

    sluice::Shared shared{cfg};
    shared.server_version = cfg.server_version;
    for (const auto& l : cfg.listeners) {
        auto ls = std::make_unique<sluice::ListenerShared>();
        ls->cfg = &l;
        if (l.tls.enabled()) ls->tls = server_tls(l.tls);
        if (ls->tls && l.protocol == "tds") sluice::tds::accept_tds8_alpn(*ls->tls);
        shared.listeners.push_back(std::move(ls));
    }
    for (const auto& b : cfg.backends) {
        if (b.tls && !shared.backend_tls) shared.backend_tls = client_tls(cfg.backend_tls);
    }
    for (const auto& b : cfg.backends) {
        auto bs = std::make_unique<sluice::BackendShared>();
        bs->endpoint = {b.name, b.host, b.port, b.tls ? shared.backend_tls.get() : nullptr,
                        cfg.backend_tls.verify_hostname};
        bs->replica = b.role == sluice::config::BackendRole::replica;
        if (bs->replica)
            shared.replica_indexes.push_back(shared.backends.size());
        else
            shared.primary_index = shared.backends.size();
        shared.backends.push_back(std::move(bs));
    }
    auto topology = std::make_shared<sluice::pool::Topology>();
    for (std::size_t i = 0; i < shared.backends.size(); ++i) {
        sluice::pool::BackendState state;
        state.role =
            shared.backends[i]->replica ? sluice::pool::Role::replica : sluice::pool::Role::primary;
        state.zone = cfg.backends[i].zone;
        state.weight = cfg.backends[i].weight;
        topology->backends.push_back(std::move(state));
    }
    topology->primary = shared.primary_index;
    shared.topology = std::move(topology);
    shared.breakers = std::make_unique<sluice::pool::BreakerBoard>(
        shared.backends.size(), sluice::pool::Breaker::Options{
                                    .failures_to_open = 1, .open_for = cfg.routing.replica_retry});
    shared.rules = std::move(rules);
    shared.cache.enabled = cfg.cache.enabled;
    shared.cache.rules = std::move(cache_rules);
    shared.cache.binlog = cfg.cache.binlog.enabled;
    if (cfg.cache.enabled) setup_cache_redis(cfg, shared.cache);
    // The cache needs each write's GTID too: a replica's result is cached under a table's
    // new version only when the replica is known to have applied the write that made it.
    shared.track_gtids =
        !shared.replica_indexes.empty() &&
        (cfg.cache.enabled || cfg.routing.consistency != sluice::config::Consistency::eventual ||
         std::any_of(cfg.users.begin(), cfg.users.end(),
                     [](const auto& u) {
                         return u.consistency &&
                                *u.consistency != sluice::config::Consistency::eventual;
                     }) ||
         std::any_of(cfg.query_rules.begin(), cfg.query_rules.end(), [](const auto& r) {
             return r.consistency && *r.consistency != sluice::config::Consistency::eventual;
         }));
    probe_primary(shared);
    setup_tds(cfg, shared);

    for (const auto& l : cfg.listeners)
        sluice::ensure_port_free(l);
    unsigned n = cfg.workers ? cfg.workers : std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::unique_ptr<sluice::Worker>> workers;
    for (unsigned i = 0; i < n; ++i) {
        workers.push_back(std::make_unique<sluice::Worker>(i, shared));
        workers.back()->listen();
    }
    // Writes made around Sluice: the binary log of whichever backend is the primary.
    std::unique_ptr<sluice::BinlogSync> binlog;
    if (cfg.cache.enabled && cfg.cache.binlog.enabled)
        binlog = std::make_unique<sluice::BinlogSync>(shared, *workers.front());
    if (cfg.monitor.enabled) {
        shared.monitor = std::make_unique<sluice::pool::Monitor>(
            monitor_options(cfg.monitor), monitored_backends(cfg, cfg.backends),
            [&workers, &shared, &binlog](std::shared_ptr<const sluice::pool::Topology> t) {
                if (binlog && t->primary) binlog->follow(*t->primary);
                // A backend that went down may come back from an older copy: what it was
                // known to have applied is forgotten.
                for (std::size_t i = 0; i < t->backends.size(); ++i) {
                    if (!t->backends[i].up) shared.acked.forget(i);
                }
                for (auto& w : workers)
                    asio::post(w->io(), [worker = w.get(), t] { worker->set_topology(t); });
            });
    } else {
        spdlog::warn("no [monitor] section: replicas are not checked for lag or health");
    }
    if (!cfg.tds_backends.empty() && cfg.tds_monitor.enabled) {
        const char* tmp = std::getenv("TMPDIR");
        std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/sluice-freetds-" +
                          std::to_string(::getpid());
        std::filesystem::create_directories(dir);
        shared.tds_monitor = std::make_unique<sluice::pool::TdsMonitor>(
            monitor_options(cfg.tds_monitor), monitored_backends(cfg, cfg.tds_backends),
            [&workers](std::shared_ptr<const sluice::pool::Topology> t) {
                for (auto& w : workers)
                    asio::post(w->io(), [worker = w.get(), t] { worker->set_tds_topology(t); });
            },
            dir);
    } else if (!cfg.tds_backends.empty()) {
        spdlog::warn("no [tds_monitor] section: SQL Server secondaries are not checked for lag "
                     "or health");
    }
    sluice::AdminServer admin{cfg.admin, workers, shared};
    if (cfg.admin.enabled) admin.start();

    asio::io_context main_io;
    asio::signal_set signals{main_io, SIGINT, SIGTERM};
    // Operators send SIGHUP expecting a reload; until reload exists it changes nothing.
    asio::signal_set hangup{main_io, SIGHUP};
    std::function<void(const boost::system::error_code&, int)> on_hangup =
        [&](const boost::system::error_code& ec, int) {
            if (ec) return;
            spdlog::warn("SIGHUP: reload is not supported yet; ignored");
            hangup.async_wait(on_hangup);
        };
    hangup.async_wait(on_hangup);
    asio::steady_timer grace{main_io};
    bool stopping = false;
    std::function<void(const boost::system::error_code&, int)> on_signal =
        [&](const boost::system::error_code& ec, int sig) {
            if (ec) return;
            if (stopping) {
                spdlog::info("second signal {}: closing every connection now", sig);
                for (auto& w : workers)
                    w->force_close();
                return;
            }
            stopping = true;
            spdlog::info("signal {}: draining, grace period {} ms", sig,
                         cfg.shutdown_grace.count());
            admin.set_draining();
            for (auto& w : workers)
                w->drain();
            grace.expires_after(cfg.shutdown_grace);
            grace.async_wait([&](const boost::system::error_code& tec) {
                if (tec) return;
                spdlog::info("grace period over: closing the remaining connections");
                for (auto& w : workers)
                    w->force_close();
            });
            signals.async_wait(on_signal);
        };
    signals.async_wait(on_signal);

    if (shared.monitor) shared.monitor->start();
    if (shared.tds_monitor) shared.tds_monitor->start();
    for (auto& w : workers)
        w->start_thread();
    if (binlog) binlog->follow(shared.primary_index);
    for (const auto& l : cfg.listeners)
        spdlog::info("listening for {} clients on {}:{} ({} workers)", l.protocol, l.address,
                     l.port, n);
    if (cfg.admin.enabled) spdlog::info("admin HTTP on {}:{}", cfg.admin.address, cfg.admin.port);

    std::thread signal_thread{[&] { main_io.run(); }};
    for (auto& w : workers)
        w->join();
    // Workers are done: stop waiting for signals and the grace timer.
    asio::post(main_io, [&] {
        signals.cancel();
        hangup.cancel();
        grace.cancel();
    });
    signal_thread.join();
    // Before the workers go: the monitor and the binary log follower post to them.
    if (shared.monitor) shared.monitor->stop();
    if (shared.tds_monitor) shared.tds_monitor->stop();
    if (binlog) binlog->stop();
    admin.stop();
    spdlog::info("stopped");
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::string config_path;
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "-h" || a == "--help") {
            std::fputs(usage, stdout);
            return 0;
        }
        if (a == "-V" || a == "--version") {
            std::printf("sluice %s\n", SLUICE_VERSION);
            return 0;
        }
        if ((a == "-c" || a == "--config" || a == "--check-config") && i + 1 < argc) {
            check_only = check_only || a == "--check-config";
            config_path = argv[++i];
            continue;
        }
        std::fprintf(stderr, "sluice: unknown argument '%s'\n\n%s", argv[i], usage);
        return 2;
    }
    if (config_path.empty()) {
        std::fputs(usage, stderr);
        return 2;
    }
    sluice::config::Config cfg;
    try {
        cfg = sluice::config::load_file(config_path);
    } catch (const sluice::config::ConfigError& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
    }
    auto rules = sluice::compile_rules(cfg);
    if (auto* error = std::get_if<std::string>(&rules)) {
        std::fprintf(stderr, "%s: %s\n", config_path.c_str(), error->c_str());
        return 2;
    }
    auto cache_rules = sluice::compile_cache_rules(cfg);
    if (auto* error = std::get_if<std::string>(&cache_rules)) {
        std::fprintf(stderr, "%s: %s\n", config_path.c_str(), error->c_str());
        return 2;
    }
    if (check_only) {
        std::printf("%s: ok\n", config_path.c_str());
        return 0;
    }
    try {
        return run(cfg, std::move(std::get<sluice::router::RuleSet>(rules)),
                   std::move(std::get<sluice::router::RuleSet>(cache_rules)));
    } catch (const std::exception& e) {
        // Binding a port, reading a certificate: the daemon does not start half-configured.
        spdlog::critical("cannot start: {}", e.what());
        return 1;
    }
}
