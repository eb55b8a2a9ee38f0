#pragma once
// What the admin server says of each backend: GET /backends (JSON) and the sluice_backend_*
// gauges, from the newest topology snapshot, the shared breakers and the workers' counters.
// SQL Server backends ([[tds_backends]]) are listed after the MySQL ones, from the TDS
// monitor's snapshot, with protocol "tds".

#include "server.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

struct BackendView {
    std::string name;
    std::string protocol = "mysql"; ///< "mysql" | "tds"
    std::string role;               ///< "primary" | "replica" (TDS: "primary" | "secondary")
    std::string state;              ///< "up" | "down" | "lagging" | "breaker_open" (MySQL only)
    bool monitored = false;
    bool replicating = true;
    bool read_only = false;
    std::optional<double> lag_ms;
    std::optional<double> rtt_ms;
    std::string zone;
    std::string gtid;
    std::string lsn;               ///< TDS: last_commit_lsn (primary), last_redone_lsn (secondary)
    std::uint64_t outstanding = 0; ///< statements sent to it and not yet answered
    /// MySQL: client sessions holding a replica connection to it. TDS: connections to it that
    /// sessions hold (one per session at most).
    std::uint64_t sessions = 0;
    std::uint64_t reads = 0; ///< statements of class read it ran (TDS: secondary-safe requests)
    std::uint64_t statements = 0; ///< every statement it ran (TDS: request)
};

/// One view per [[backends]] entry, in config order.
std::vector<BackendView> backend_views(const Shared& shared,
                                       const std::vector<std::unique_ptr<Worker>>& workers);

/// One view per [[tds_backends]] entry, in config order.
std::vector<BackendView> tds_backend_views(const Shared& shared,
                                           const std::vector<std::unique_ptr<Worker>>& workers);

/// Appends `s` as a JSON string (quoted, escaped).
void json_string(std::string& out, std::string_view s);

/// The GET /cache body: state, per-layer sizes and hit ratios, the hottest digests.
std::string cache_json(const Shared& shared, const std::vector<std::unique_ptr<Worker>>& workers);

/// The GET /backends body: {"topology_version": n, "monitor": bool, "backends": [...]}, and
/// with [[tds_backends]] "tds_topology_version" and "tds_monitor" (the TDS entries in
/// "backends" carry "protocol": "tds" and "lsn").
std::string backends_json(const Shared& shared, const std::vector<BackendView>& views);

} // namespace sluice
