#pragma once
// The backend monitor (issue #8, section 2): one thread probes every backend each interval
// with MariaDB Connector/C (connect, COM_PING round trip, @@read_only, GTID position,
// replication threads, the heartbeat) and publishes an immutable Topology after each probe.
// Probes run concurrently on the thread's io_context: a backend that hangs delays only its
// own probe, never the others or routing.

#include "sluice/pool/topology.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::pool {

struct MonitorOptions {
    std::string user;
    std::string password;
    std::chrono::milliseconds interval{500};
    std::chrono::milliseconds timeout{1000}; ///< one probe's deadline, connect included
    /// The heartbeat row's table (created if missing); empty database: no heartbeat.
    std::string heartbeat_database = "sluice";
    std::string heartbeat_table = "heartbeat";
    std::uint32_t failures_to_open = 2;
};

/// One backend as the monitor probes it.
struct MonitoredBackend {
    std::string name;
    std::string host;
    std::uint16_t port = 3306;
    Role role = Role::replica;
    std::string zone;
    std::uint32_t weight = 1;
    bool tls = false;
    std::string ca_file, cert_file, key_file;
    bool verify_server_cert = false;
};

class Monitor {
public:
    /// Called on the monitor's thread with each new snapshot (the first after every backend
    /// was probed once).
    using Publish = std::function<void(std::shared_ptr<const Topology>)>;

    Monitor(MonitorOptions options, std::vector<MonitoredBackend> backends, Publish publish);
    Monitor(const Monitor&) = delete;
    Monitor& operator=(const Monitor&) = delete;
    ~Monitor();

    void start();
    /// Stops probing and joins the thread (idempotent).
    void stop();
    /// The snapshot published last (null before the first): for the admin server.
    std::shared_ptr<const Topology> latest() const;
    /// Times the writer moved from one backend to another (sluice_failovers_total).
    std::uint64_t failovers() const noexcept;

private:
    struct State;
    std::unique_ptr<State> state_;
    std::thread thread_;
};

} // namespace sluice::pool
