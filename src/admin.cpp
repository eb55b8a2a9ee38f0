#include "admin.hpp"

#include "backends_view.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <system_error>
#include <thread>

namespace sluice {

namespace http = boost::beast::http;
namespace mysql = protocol::mysql;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// Sums the workers' counters into metric families at scrape time.
class WorkerCollector final : public prometheus::Collectable {
public:
    WorkerCollector(const std::vector<std::unique_ptr<Worker>>& workers, const Shared& shared)
        : workers_(workers), shared_(shared) {}

    std::vector<prometheus::MetricFamily> Collect() const override {
        std::vector<prometheus::MetricFamily> out;
        auto sum = [this](auto field) {
            std::uint64_t total = 0;
            for (const auto& w : workers_)
                total += field(w->stats()).get();
            return static_cast<double>(total);
        };
        auto counter = [&](const char* name, const char* help, auto field) {
            prometheus::MetricFamily f{name, help, prometheus::MetricType::Counter, {}};
            prometheus::ClientMetric m;
            m.counter.value = sum(field);
            f.metric.push_back(std::move(m));
            out.push_back(std::move(f));
        };
        // The SQL Server side shares the families: its series carry protocol="tds" (the
        // unlabeled and backend-labeled ones are MySQL's, as before TDS existed). Only with
        // [[tds_backends]], so a MySQL-only Sluice's page is unchanged.
        const bool tds = !shared_.tds_backends.empty();
        auto tds_sum = [this](auto field) {
            std::uint64_t total = 0;
            for (const auto& w : workers_)
                total += field(w->stats().tds).get();
            return static_cast<double>(total);
        };
        auto tds_series = [](prometheus::MetricFamily& f, double v,
                             std::vector<prometheus::ClientMetric::Label> labels = {}) {
            prometheus::ClientMetric m;
            m.label = std::move(labels);
            m.label.push_back({"protocol", "tds"});
            if (f.type == prometheus::MetricType::Gauge)
                m.gauge.value = v;
            else
                m.counter.value = v;
            f.metric.push_back(std::move(m));
        };
        counter("sluice_client_connections_total", "Client connections accepted",
                [](WorkerStats& s) -> Counter& { return s.connections_total; });
        if (tds)
            tds_series(out.back(),
                       tds_sum([](TdsStats& s) -> Counter& { return s.connections_total; }));
        counter("sluice_client_tls_connections_total", "Client connections upgraded to TLS",
                [](WorkerStats& s) -> Counter& { return s.tls_connections_total; });
        counter("sluice_client_bytes_received_total", "Bytes received from clients",
                [](WorkerStats& s) -> Counter& { return s.bytes_from_clients; });
        counter("sluice_client_bytes_sent_total", "Bytes sent to clients",
                [](WorkerStats& s) -> Counter& { return s.bytes_to_clients; });
        counter("sluice_backend_connects_total", "Backend connections attempted",
                [](WorkerStats& s) -> Counter& { return s.backend_connects_total; });
        if (tds)
            tds_series(out.back(),
                       tds_sum([](TdsStats& s) -> Counter& { return s.backend_connects_total; }));
        counter("sluice_backend_connect_errors_total",
                "Backend connections that failed (unreachable, timeout, protocol)",
                [](WorkerStats& s) -> Counter& { return s.backend_connect_errors_total; });
        if (tds)
            tds_series(out.back(), tds_sum([](TdsStats& s) -> Counter& {
                           return s.backend_connect_errors_total;
                       }));
        counter("sluice_pool_queue_timeouts_total",
                "Statements that waited queue_timeout_ms for a pooled connection and got 1040",
                [](WorkerStats& s) -> Counter& { return s.pool_timeouts_total; });
        counter("sluice_pool_resets_total",
                "Pooled connections reset to drop another session's settings",
                [](WorkerStats& s) -> Counter& { return s.pool_resets_total; });
        if (tds) {
            std::uint64_t resets = 0;
            for (const auto& w : workers_)
                resets += w->tds_pool().resets();
            tds_series(out.back(), static_cast<double>(resets));
        }
        counter("sluice_pool_replaced_total",
                "Idle pooled connections found closed by their server and replaced",
                [](WorkerStats& s) -> Counter& { return s.pool_replaced_total; });
        {
            prometheus::MetricFamily f{"sluice_client_connections_active",
                                       "Client connections open now",
                                       prometheus::MetricType::Gauge,
                                       {}};
            prometheus::ClientMetric m;
            m.gauge.value = sum([](WorkerStats& s) -> Counter& { return s.connections_active; });
            f.metric.push_back(std::move(m));
            if (tds)
                tds_series(f,
                           tds_sum([](TdsStats& s) -> Counter& { return s.connections_active; }));
            out.push_back(std::move(f));
        }
        {
            prometheus::MetricFamily f{"sluice_client_commands_total",
                                       "Client commands by MySQL command",
                                       prometheus::MetricType::Counter,
                                       {}};
            for (std::size_t i = 0; i <= 32; ++i) {
                const double v = sum([i](WorkerStats& s) -> Counter& { return s.commands[i]; });
                if (v == 0) continue;
                prometheus::ClientMetric m;
                m.label.push_back(
                    {"command",
                     i < 32 ? mysql::command_name(static_cast<std::uint8_t>(i)) : "unknown"});
                m.counter.value = v;
                f.metric.push_back(std::move(m));
            }
            out.push_back(std::move(f));
        }
        {
            prometheus::MetricFamily f{"sluice_client_errors_total",
                                       "Client sessions refused or ended by an error, by reason",
                                       prometheus::MetricType::Counter,
                                       {}};
            for (std::size_t i = 0; i < static_cast<std::size_t>(ClientError::count_); ++i) {
                prometheus::ClientMetric m;
                m.label.push_back({"reason", client_error_name(static_cast<ClientError>(i))});
                m.counter.value =
                    sum([i](WorkerStats& s) -> Counter& { return s.client_errors[i]; });
                f.metric.push_back(std::move(m));
            }
            for (std::size_t i = 0; tds && i < static_cast<std::size_t>(ClientError::count_); ++i)
                tds_series(f, tds_sum([i](TdsStats& s) -> Counter& { return s.client_errors[i]; }),
                           {{"reason", client_error_name(static_cast<ClientError>(i))}});
            out.push_back(std::move(f));
        }
        // One family with a label per index; series that are still 0 are left out unless
        // `all` (a fixed, short set whose zero is worth seeing).
        auto labeled = [&](const char* name, const char* help, const char* label, std::size_t n,
                           auto label_of, auto field, bool all) {
            prometheus::MetricFamily f{name, help, prometheus::MetricType::Counter, {}};
            for (std::size_t i = 0; i < n; ++i) {
                const double v = sum([&](WorkerStats& s) -> Counter& { return field(s, i); });
                if (v == 0 && !all) continue;
                prometheus::ClientMetric m;
                m.label.push_back({label, label_of(i)});
                m.counter.value = v;
                f.metric.push_back(std::move(m));
            }
            out.push_back(std::move(f));
        };
        labeled(
            "sluice_statements_total", "Statements (COM_QUERY, COM_STMT_EXECUTE) by class", "class",
            statement_classes,
            [](std::size_t i) {
                return router::statement_class_name(static_cast<router::StatementClass>(i));
            },
            [](WorkerStats& s, std::size_t i) -> Counter& { return s.statements[i]; }, false);
        labeled(
            "sluice_backend_statements_total", "Statements by the backend that ran them", "backend",
            shared_.backends.size(),
            [this](std::size_t i) { return shared_.backends[i]->endpoint.name; },
            [](WorkerStats& s, std::size_t i) -> Counter& { return s.backend_statements[i]; },
            true);
        // TDS requests by backend and destination: the primary, or a secondary.
        for (std::size_t i = 0; i < shared_.tds_backends.size() && i < pool::max_backends; ++i) {
            const std::string& name = shared_.tds_backends[i].name;
            tds_series(out.back(),
                       tds_sum([i](TdsStats& s) -> Counter& { return s.to_primary[i]; }),
                       {{"backend", name}, {"destination", "primary"}});
            tds_series(out.back(),
                       tds_sum([i](TdsStats& s) -> Counter& { return s.to_secondary[i]; }),
                       {{"backend", name}, {"destination", "secondary"}});
        }
        {
            // Pooled connections per backend (all workers; sampled once a second).
            prometheus::MetricFamily conns{"sluice_pool_connections",
                                           "Pooled backend connections, by state (busy: lent "
                                           "to a session or being opened)",
                                           prometheus::MetricType::Gauge,
                                           {}};
            prometheus::MetricFamily waiting{"sluice_pool_waiting",
                                             "Statements queued for a pooled connection",
                                             prometheus::MetricType::Gauge,
                                             {}};
            for (std::size_t i = 0; i < shared_.backends.size(); ++i) {
                const std::string& name = shared_.backends[i]->endpoint.name;
                const double open = sum([&](WorkerStats& s) -> Counter& { return s.pool_open[i]; });
                const double idle = sum([&](WorkerStats& s) -> Counter& { return s.pool_idle[i]; });
                for (const auto& [state, v] :
                     {std::pair{"idle", idle}, std::pair{"busy", open - idle}}) {
                    prometheus::ClientMetric m;
                    m.label.push_back({"backend", name});
                    m.label.push_back({"state", state});
                    m.gauge.value = v;
                    conns.metric.push_back(std::move(m));
                }
                prometheus::ClientMetric w;
                w.label.push_back({"backend", name});
                w.gauge.value = sum([&](WorkerStats& s) -> Counter& { return s.pool_waiting[i]; });
                waiting.metric.push_back(std::move(w));
            }
            // TDS: every open connection (lent, held by a session, idle in the pool).
            for (std::size_t i = 0; i < shared_.tds_backends.size() && i < pool::max_backends;
                 ++i) {
                double open = 0, idle = 0;
                for (const auto& w : workers_) {
                    const std::uint64_t o = w->stats().tds.open[i].get();
                    const std::uint64_t d = w->tds_pool().idle_now(i);
                    open += static_cast<double>(o);
                    idle += static_cast<double>(std::min(o, d));
                }
                const std::string& name = shared_.tds_backends[i].name;
                tds_series(conns, idle, {{"backend", name}, {"state", "idle"}});
                tds_series(conns, open - idle, {{"backend", name}, {"state", "busy"}});
            }
            out.push_back(std::move(conns));
            out.push_back(std::move(waiting));
        }
        labeled(
            "sluice_routes_total", "Routing decisions by reason", "reason",
            static_cast<std::size_t>(router::RouteReason::count_),
            [](std::size_t i) {
                return router::route_reason_name(static_cast<router::RouteReason>(i));
            },
            [](WorkerStats& s, std::size_t i) -> Counter& { return s.routes[i]; }, false);
        labeled(
            "sluice_causal_waits_total",
            "Read-your-writes waits on a replica before a read, by outcome (timeout and error: "
            "the primary answered; shared: another session's wait answered for the read)",
            "outcome", static_cast<std::size_t>(CausalWait::count_),
            [](std::size_t i) {
                static constexpr std::array<const char*, 4> names{"ok", "timeout", "error",
                                                                  "shared"};
                return names[i];
            },
            [](WorkerStats& s, std::size_t i) -> Counter& { return s.causal_waits[i]; }, true);
        backend_gauges(out);
        if (shared_.cache.enabled) cache_metrics(out, labeled, sum);
        {
            prometheus::MetricFamily f{"sluice_failovers_total",
                                       "Times the monitor found the primary on another backend",
                                       prometheus::MetricType::Counter,
                                       {}};
            prometheus::ClientMetric m;
            m.counter.value =
                shared_.monitor ? static_cast<double>(shared_.monitor->failovers()) : 0.0;
            f.metric.push_back(std::move(m));
            if (tds)
                tds_series(f, shared_.tds_monitor
                                  ? static_cast<double>(shared_.tds_monitor->failovers())
                                  : 0.0);
            out.push_back(std::move(f));
        }
        // A histogram summed over the workers: `buckets(stats, i)` and `sum_ns(stats)`.
        auto histogram = [&](const char* name, const char* help, const auto& bounds, auto buckets,
                             auto sum_ns) {
            prometheus::MetricFamily f{name, help, prometheus::MetricType::Histogram, {}};
            prometheus::ClientMetric m;
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i <= bounds.size(); ++i) {
                cumulative += static_cast<std::uint64_t>(
                    sum([&](WorkerStats& s) -> Counter& { return buckets(s, i); }));
                prometheus::ClientMetric::Bucket b;
                b.cumulative_count = cumulative;
                b.upper_bound =
                    i < bounds.size() ? bounds[i] : std::numeric_limits<double>::infinity();
                m.histogram.bucket.push_back(b);
            }
            m.histogram.sample_count = cumulative;
            m.histogram.sample_sum = sum(sum_ns) / 1e9;
            f.metric.push_back(std::move(m));
            out.push_back(std::move(f));
        };
        histogram(
            "sluice_write_hold_seconds",
            "How long logins and statements waited for a primary (failover hold)", hold_bounds,
            [](WorkerStats& s, std::size_t i) -> Counter& { return s.hold_buckets[i]; },
            [](WorkerStats& s) -> Counter& { return s.hold_sum_ns; });
        histogram(
            "sluice_causal_wait_seconds",
            "How long reads waited on a replica for the writes they must see (from sending "
            "the wait to its answer, round trip included)",
            latency_bounds,
            [](WorkerStats& s, std::size_t i) -> Counter& { return s.wait_buckets[i]; },
            [](WorkerStats& s) -> Counter& { return s.wait_sum_ns; });
        if (shared_.cache.enabled && !shared_.cache.redis.empty())
            histogram(
                "sluice_cache_redis_seconds",
                "Redis round trips of the cache (lookups, fills, bumps), sent to answered",
                latency_bounds,
                [](WorkerStats& s, std::size_t i) -> Counter& { return s.redis_buckets[i]; },
                [](WorkerStats& s) -> Counter& { return s.redis_sum_ns; });
        histogram(
            "sluice_query_duration_seconds",
            "Time from a client command to the end of its response", latency_bounds,
            [](WorkerStats& s, std::size_t i) -> Counter& { return s.latency_buckets[i]; },
            [](WorkerStats& s) -> Counter& { return s.latency_sum_ns; });
        return out;
    }

private:
    /// sluice_cache_*: requests by layer and result, bypass reasons, invalidations, fills,
    /// and the L1's size (summed over the workers).
    template <class Labeled, class Sum>
    void cache_metrics(std::vector<prometheus::MetricFamily>& out, Labeled& labeled,
                       Sum& sum) const {
        prometheus::MetricFamily req{"sluice_cache_requests_total",
                                     "Cache lookups by layer (l1, l2) and result (hit, miss, "
                                     "bypass: a read a rule or hint names that cannot be cached)",
                                     prometheus::MetricType::Counter,
                                     {}};
        static constexpr std::array<const char*, 2> layers{"l1", "l2"};
        static constexpr std::array<const char*, 3> results{"hit", "miss", "bypass"};
        for (std::size_t l = 0; l < layers.size(); ++l) {
            for (std::size_t r = 0; r < results.size(); ++r) {
                prometheus::ClientMetric m;
                m.label.push_back({"layer", layers[l]});
                m.label.push_back({"result", results[r]});
                m.counter.value =
                    sum([&](WorkerStats& s) -> Counter& { return s.cache_requests[l * 3 + r]; });
                req.metric.push_back(std::move(m));
            }
        }
        out.push_back(std::move(req));
        labeled(
            "sluice_cache_bypass_total", "Reads a rule or hint names that were not cached, by why",
            "reason", static_cast<std::size_t>(CacheBypass::count_),
            [](std::size_t i) { return cache_bypass_name(static_cast<CacheBypass>(i)); },
            [](WorkerStats& s, std::size_t i) -> Counter& { return s.cache_bypass[i]; }, true);
        labeled(
            "sluice_cache_invalidations_total",
            "Table versions bumped (a table, or every table at once), by what caused it", "source",
            static_cast<std::size_t>(InvalidationSource::count_),
            [](std::size_t i) {
                static constexpr std::array<const char*, 3> names{"write", "binlog", "peer"};
                return names[i];
            },
            [](WorkerStats& s, std::size_t i) -> Counter& { return s.cache_invalidations[i]; },
            true);
        auto single = [&](const char* name, const char* help, prometheus::MetricType type,
                          auto field) {
            prometheus::MetricFamily f{name, help, type, {}};
            prometheus::ClientMetric m;
            const double v = sum(field);
            if (type == prometheus::MetricType::Gauge)
                m.gauge.value = v;
            else
                m.counter.value = v;
            f.metric.push_back(std::move(m));
            out.push_back(std::move(f));
        };
        using prometheus::MetricType;
        single("sluice_cache_fills_total", "Results stored in the cache after a miss",
               MetricType::Counter, [](WorkerStats& s) -> Counter& { return s.cache_fills; });
        single("sluice_cache_uncacheable_total",
               "Missed reads whose result was not stored (an error, warnings, too large, several "
               "results)",
               MetricType::Counter, [](WorkerStats& s) -> Counter& { return s.cache_uncacheable; });
        single("sluice_cache_stale_fill_refused_total",
               "Results from a replica not stored: it was not known to have the writes their "
               "table versions stand for",
               MetricType::Counter,
               [](WorkerStats& s) -> Counter& { return s.cache_stale_refused; });
        single("sluice_cache_redis_errors_total",
               "Redis calls of the cache that failed (unreachable, late, refused, not RESP)",
               MetricType::Counter, [](WorkerStats& s) -> Counter& { return s.redis_errors; });
        single("sluice_cache_evictions_total", "L1 entries evicted to make room",
               MetricType::Counter, [](WorkerStats& s) -> Counter& { return s.l1_evictions; });
        single("sluice_cache_entries", "Entries in the L1 caches", MetricType::Gauge,
               [](WorkerStats& s) -> Counter& { return s.l1_entries; });
        if (shared_.cfg.cache.binlog.enabled) {
            auto gauge = [&](const char* name, const char* help, double v) {
                prometheus::MetricFamily f{name, help, MetricType::Gauge, {}};
                prometheus::ClientMetric g;
                g.gauge.value = v;
                f.metric.push_back(std::move(g));
                out.push_back(std::move(f));
            };
            gauge("sluice_cache_binlog_up", "1 while the cache follows the primary's binary log",
                  shared_.cache.binlog_up.load() ? 1.0 : 0.0);
            gauge("sluice_cache_binlog_lag_seconds",
                  "Commit on the primary to its bump here, for the last transaction followed",
                  static_cast<double>(shared_.cache.binlog_lag_s.load()));
        }
        prometheus::MetricFamily bytes{
            "sluice_cache_bytes", "Bytes held by a cache layer", MetricType::Gauge, {}};
        prometheus::ClientMetric m;
        m.label.push_back({"layer", "l1"});
        m.gauge.value = sum([](WorkerStats& s) -> Counter& { return s.l1_bytes; });
        bytes.metric.push_back(std::move(m));
        out.push_back(std::move(bytes));
    }

    /// sluice_backend_{up,role,replicating,lag_seconds,rtt_seconds,outstanding}{backend}, and
    /// the same of the [[tds_backends]] with protocol="tds".
    void backend_gauges(std::vector<prometheus::MetricFamily>& out) const {
        auto views = backend_views(shared_, workers_);
        for (auto& v : tds_backend_views(shared_, workers_))
            views.push_back(std::move(v));
        auto labels = [](const BackendView& v, prometheus::ClientMetric& m) {
            m.label.push_back({"backend", v.name});
            if (v.protocol != "mysql") m.label.push_back({"protocol", v.protocol});
        };
        auto family = [&](const char* name, const char* help, auto value) {
            prometheus::MetricFamily f{name, help, prometheus::MetricType::Gauge, {}};
            for (const BackendView& v : views) {
                const std::optional<double> x = value(v);
                if (!x) continue;
                prometheus::ClientMetric m;
                labels(v, m);
                m.gauge.value = *x;
                f.metric.push_back(std::move(m));
            }
            out.push_back(std::move(f));
        };
        family("sluice_backend_up", "1 while the backend is up (monitor and breakers)",
               [](const BackendView& v) -> std::optional<double> {
                   return v.state == "down" || v.state == "breaker_open" ? 0.0 : 1.0;
               });
        family("sluice_backend_replicating", "1 while a replica's replication threads run",
               [](const BackendView& v) -> std::optional<double> {
                   if (v.role == "primary") return std::nullopt;
                   return v.replicating ? 1.0 : 0.0;
               });
        family("sluice_backend_lag_seconds", "Replication lag the monitor measured",
               [](const BackendView& v) -> std::optional<double> {
                   if (!v.lag_ms) return std::nullopt;
                   return *v.lag_ms / 1000.0;
               });
        family("sluice_backend_rtt_seconds", "Round-trip time of the monitor's pings (EWMA)",
               [](const BackendView& v) -> std::optional<double> {
                   if (!v.rtt_ms) return std::nullopt;
                   return *v.rtt_ms / 1000.0;
               });
        family("sluice_backend_outstanding", "Statements sent to the backend and not answered yet",
               [](const BackendView& v) -> std::optional<double> {
                   return static_cast<double>(v.outstanding);
               });
        prometheus::MetricFamily roles{"sluice_backend_role",
                                       "The backend's role (value 1)",
                                       prometheus::MetricType::Gauge,
                                       {}};
        for (const BackendView& v : views) {
            prometheus::ClientMetric m;
            labels(v, m);
            m.label.push_back({"role", v.role});
            m.gauge.value = 1;
            roles.metric.push_back(std::move(m));
        }
        out.push_back(std::move(roles));
    }

    const std::vector<std::unique_ptr<Worker>>& workers_;
    const Shared& shared_;
};
} // namespace

struct AdminServer::Impl {
    Impl(const config::Admin& c, const std::vector<std::unique_ptr<Worker>>& ws, const Shared& s)
        : cfg(c), shared(s), workers(ws), collector(ws, s),
          registry(std::make_shared<prometheus::Registry>()) {
        auto& info = prometheus::BuildGauge()
                         .Name("sluice_build_info")
                         .Help("Sluice version and the server version it announces")
                         .Register(*registry);
        info.Add({{"version", SLUICE_VERSION}, {"server_version", shared.server_version}}).Set(1);
        auto& w = prometheus::BuildGauge()
                      .Name("sluice_workers")
                      .Help("Worker threads")
                      .Register(*registry);
        w.Add({}).Set(static_cast<double>(workers.size()));
    }

    std::string metrics_text() const {
        auto families = registry->Collect();
        auto more = collector.Collect();
        families.insert(families.end(), std::make_move_iterator(more.begin()),
                        std::make_move_iterator(more.end()));
        return prometheus::TextSerializer{}.Serialize(families);
    }

    asio::awaitable<void> serve(tcp::socket socket) {
        boost::beast::tcp_stream stream{std::move(socket)};
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> req;
            stream.expires_after(std::chrono::seconds(30));
            auto [ec, n] = co_await http::async_read(stream, buffer, req, use_tuple);
            if (ec) co_return;
            http::response<http::string_body> res;
            res.version(req.version());
            res.keep_alive(req.keep_alive());
            res.set(http::field::server, "sluice");
            const auto target = req.target();
            const auto path = target.substr(0, target.find('?'));
            if (req.method() != http::verb::get && req.method() != http::verb::head) {
                res.result(http::status::method_not_allowed);
                res.body() = "method not allowed\n";
            } else if (path == "/metrics") {
                res.result(http::status::ok);
                res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
                res.body() = metrics_text();
            } else if (path == "/backends") {
                res.result(http::status::ok);
                res.set(http::field::content_type, "application/json");
                auto views = backend_views(shared, workers);
                for (auto& v : tds_backend_views(shared, workers))
                    views.push_back(std::move(v));
                res.body() = backends_json(shared, views);
            } else if (path == "/cache") {
                res.result(http::status::ok);
                res.set(http::field::content_type, "application/json");
                res.body() = cache_json(shared, workers);
            } else if (path == "/healthz") {
                const bool ok = !draining.load();
                res.result(ok ? http::status::ok : http::status::service_unavailable);
                res.set(http::field::content_type, "text/plain");
                res.body() = ok ? "ok\n" : "draining\n";
            } else {
                res.result(http::status::not_found);
                res.body() = "not found\n";
            }
            res.prepare_payload();
            auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
            if (wec || !res.keep_alive()) co_return;
        }
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
            if (ec) continue;
            asio::co_spawn(io, serve(std::move(socket)), asio::detached);
        }
    }

    const config::Admin& cfg;
    const Shared& shared;
    const std::vector<std::unique_ptr<Worker>>& workers;
    WorkerCollector collector;
    std::shared_ptr<prometheus::Registry> registry;
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    std::thread thread;
    std::atomic<bool> draining{false};
};

AdminServer::AdminServer(const config::Admin& cfg,
                         const std::vector<std::unique_ptr<Worker>>& workers, const Shared& shared)
    : impl_(std::make_unique<Impl>(cfg, workers, shared)) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::start() {
    const tcp::endpoint ep{asio::ip::make_address(impl_->cfg.address), impl_->cfg.port};
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
    boost::system::error_code ec;
    impl_->acceptor.bind(ep, ec);
    if (ec)
        throw std::system_error(ec, "admin listener on " + impl_->cfg.address + ":" +
                                        std::to_string(impl_->cfg.port));
    impl_->acceptor.listen();
    asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
    impl_->thread = std::thread([this] { impl_->io.run(); });
}

void AdminServer::set_draining() noexcept { impl_->draining = true; }

void AdminServer::stop() {
    if (!impl_->thread.joinable()) return;
    impl_->io.stop();
    impl_->thread.join();
}

} // namespace sluice
