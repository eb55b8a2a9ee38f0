#pragma once

#include "server.hpp"

#include <memory>
#include <vector>

namespace sluice {

/// The admin HTTP listener on its own thread: GET /metrics (Prometheus text format),
/// GET /backends (JSON: each backend's role, state, lag, RTT, zone, GTID position, load) and
/// GET /healthz. Reads the workers' counters at scrape time.
class AdminServer {
public:
    AdminServer(const config::Admin& cfg, const std::vector<std::unique_ptr<Worker>>& workers,
                const Shared& shared);
    ~AdminServer();
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    /// Binds (throws std::system_error if it cannot) and starts the thread.
    void start();
    /// Says /healthz should answer 503 (shutting down).
    void set_draining() noexcept;
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace sluice
