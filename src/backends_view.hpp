#pragma once
// What the admin server says of each backend: GET /backends (JSON) and the sluice_backend_*
// gauges, from the newest topology snapshot, the shared breakers and the workers' counters.

#include "server.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

struct BackendView {
    std::string name;
    std::string role;  ///< "primary" | "replica"
    std::string state; ///< "up" | "down" | "lagging" | "breaker_open"
    bool monitored = false;
    bool replicating = true;
    bool read_only = false;
    std::optional<double> lag_ms;
    std::optional<double> rtt_ms;
    std::string zone;
    std::string gtid;
    std::uint64_t outstanding = 0; ///< statements sent to it and not yet answered
    std::uint64_t sessions = 0;    ///< client sessions holding a replica connection to it
    std::uint64_t reads = 0;       ///< statements of class read it ran
    std::uint64_t statements = 0;  ///< every statement it ran
};

/// One view per backend, in config order.
std::vector<BackendView> backend_views(const Shared& shared,
                                       const std::vector<std::unique_ptr<Worker>>& workers);

/// Appends `s` as a JSON string (quoted, escaped).
void json_string(std::string& out, std::string_view s);

/// The GET /cache body: state, per-layer sizes and hit ratios, the hottest digests.
std::string cache_json(const Shared& shared, const std::vector<std::unique_ptr<Worker>>& workers);

/// The GET /backends body: {"topology_version": n, "monitor": bool, "backends": [...]}.
std::string backends_json(const Shared& shared, const std::vector<BackendView>& views);

} // namespace sluice
