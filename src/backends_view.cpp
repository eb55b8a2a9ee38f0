#include "backends_view.hpp"

#include <chrono>
#include <cstdio>

namespace sluice {

void json_string(std::string& out, std::string_view s) {
    out += '"';
    for (const char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
                out += buf;
            } else {
                out += c;
            }
        }
    }
    out += '"';
}

namespace {

void json_number(std::string& out, std::optional<double> v) {
    if (!v) {
        out += "null";
        return;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", *v);
    out += buf;
}

/// The monitor's reading of a backend into `v`; its GTID or LSN into `v.*position`.
void fill_state(BackendView& v, const pool::BackendState& s, bool replica,
                std::chrono::milliseconds max_lag, std::string BackendView::*position) {
    v.replicating = s.replicating;
    v.read_only = s.read_only;
    if (s.lag) v.lag_ms = static_cast<double>(s.lag->count());
    if (s.rtt.count() > 0) v.rtt_ms = static_cast<double>(s.rtt.count()) / 1000.0;
    v.zone = s.zone;
    v.*position = s.gtid_position;
    if (!s.up)
        v.state = "down";
    else if (replica && (!s.replicating || (s.lag && *s.lag > max_lag)))
        v.state = "lagging";
}

} // namespace

std::vector<BackendView> backend_views(const Shared& shared,
                                       const std::vector<std::unique_ptr<Worker>>& workers) {
    const auto topology = shared.current_topology();
    const auto now = std::chrono::steady_clock::now();
    const bool monitored = shared.monitor != nullptr && shared.monitor->latest() != nullptr;
    std::vector<BackendView> out;
    for (std::size_t i = 0; i < shared.backends.size(); ++i) {
        BackendView v;
        v.name = shared.backends[i]->endpoint.name;
        v.monitored = monitored;
        if (i < shared.sessions_on.size())
            v.sessions = shared.sessions_on[i].load(std::memory_order_relaxed);
        const pool::BackendState* s =
            topology && i < topology->backends.size() ? &topology->backends[i] : nullptr;
        const bool replica = s ? s->role == pool::Role::replica : shared.backends[i]->replica;
        v.role = replica ? "replica" : "primary";
        v.state = "up";
        if (s) fill_state(v, *s, replica, shared.cfg.routing.max_lag, &BackendView::gtid);
        if (v.state == "up" && !shared.breakers->allows(i, now)) v.state = "breaker_open";
        for (const auto& w : workers) {
            v.outstanding += w->stats().backend_outstanding[i].get();
            v.reads += w->stats().backend_reads[i].get();
            v.statements += w->stats().backend_statements[i].get();
        }
        out.push_back(std::move(v));
    }
    return out;
}

std::vector<BackendView> tds_backend_views(const Shared& shared,
                                           const std::vector<std::unique_ptr<Worker>>& workers) {
    const auto topology = shared.current_tds_topology();
    const bool monitored = shared.tds_monitor != nullptr && shared.tds_monitor->latest() != nullptr;
    std::vector<BackendView> out;
    for (std::size_t i = 0; i < shared.tds_backends.size(); ++i) {
        BackendView v;
        v.name = shared.tds_backends[i].name;
        v.protocol = "tds";
        v.monitored = monitored;
        const pool::BackendState* s =
            topology && i < topology->backends.size() ? &topology->backends[i] : nullptr;
        const bool secondary = s == nullptr || s->role == pool::Role::replica;
        v.role = secondary ? "secondary" : "primary";
        v.state = "up";
        if (s) fill_state(v, *s, secondary, shared.cfg.routing.max_lag, &BackendView::lsn);
        if (i < pool::max_backends) {
            for (const auto& w : workers) {
                const TdsStats& t = w->stats().tds;
                v.outstanding += t.outstanding[i].get();
                v.reads += t.reads[i].get();
                v.statements += t.to_primary[i].get() + t.to_secondary[i].get();
                // Read apart from each other: a connection given back between the two reads
                // must not make the difference wrap.
                const std::uint64_t open = t.open[i].get(), idle = w->tds_pool().idle_now(i);
                v.sessions += open > idle ? open - idle : 0;
            }
        }
        out.push_back(std::move(v));
    }
    return out;
}

std::string backends_json(const Shared& shared, const std::vector<BackendView>& views) {
    const auto topology = shared.current_topology();
    std::string out = "{\"topology_version\": ";
    out += std::to_string(topology ? topology->version : 0);
    out += ", \"monitor\": ";
    out += shared.monitor ? "true" : "false";
    if (!shared.tds_backends.empty()) {
        const auto tds = shared.current_tds_topology();
        out += ", \"tds_topology_version\": ";
        out += std::to_string(tds ? tds->version : 0);
        out += ", \"tds_monitor\": ";
        out += shared.tds_monitor ? "true" : "false";
    }
    out += ", \"backends\": [";
    for (std::size_t i = 0; i < views.size(); ++i) {
        const BackendView& v = views[i];
        out += i ? ",\n  {" : "\n  {";
        out += "\"name\": ";
        json_string(out, v.name);
        out += ", \"role\": ";
        json_string(out, v.role);
        out += ", \"state\": ";
        json_string(out, v.state);
        out += ", \"monitored\": ";
        out += v.monitored ? "true" : "false";
        out += ", \"replicating\": ";
        out += v.replicating ? "true" : "false";
        out += ", \"read_only\": ";
        out += v.read_only ? "true" : "false";
        out += ", \"lag_ms\": ";
        json_number(out, v.lag_ms);
        out += ", \"rtt_ms\": ";
        json_number(out, v.rtt_ms);
        out += ", \"zone\": ";
        json_string(out, v.zone);
        out += ", \"gtid\": ";
        json_string(out, v.gtid);
        out += ", \"outstanding\": " + std::to_string(v.outstanding);
        out += ", \"sessions\": " + std::to_string(v.sessions);
        out += ", \"reads\": " + std::to_string(v.reads);
        out += ", \"statements\": " + std::to_string(v.statements);
        out += ", \"protocol\": ";
        json_string(out, v.protocol);
        if (v.protocol == "tds") {
            out += ", \"lsn\": ";
            json_string(out, v.lsn);
        }
        out += "}";
    }
    out += "\n]}\n";
    return out;
}

} // namespace sluice
