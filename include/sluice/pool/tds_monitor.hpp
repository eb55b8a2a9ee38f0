#pragma once
// The monitor of SQL Server backends (issue #11): probes each with FreeTDS db-lib (a real
// third-party TDS client, so Sluice's own codec is not judge of its own backends) and
// publishes a Topology as the MySQL monitor does, through the same pure steps (breaker,
// RTT average, writer discovery). Role and updateability come from
// DATABASEPROPERTYEX(..., 'Updateability') and sys.dm_hadr_database_replica_states; a
// secondary's lag from secondary_lag_seconds, its position from last_redone_lsn (the
// primary's from last_commit_lsn), which read-your-writes compares with a write's LSN.

#include "sluice/pool/monitor.hpp"
#include "sluice/pool/probe.hpp"

#include <optional>
#include <string>

namespace sluice::pool {

/// The monitor's probe of a SQL Server backend: one row with the server's name, whether
/// its current database is writable ("READ_WRITE" / "READ_ONLY"), and, when the server is
/// in an availability group, this replica's is_primary_replica, secondary_lag_seconds,
/// last_commit_lsn and last_redone_lsn for the database, and its synchronization state
/// (NULLs outside a group).
std::string_view tds_probe_query() noexcept;

/// The probe query's row, as text; nullopt for NULL.
struct TdsProbeRow {
    std::optional<std::string> server_name;
    std::optional<std::string> updateability; ///< READ_WRITE / READ_ONLY
    std::optional<std::string> is_primary_replica;
    std::optional<std::string> secondary_lag_seconds;
    std::optional<std::string> last_commit_lsn;
    std::optional<std::string> last_redone_lsn;
    std::optional<std::string> synchronization_state;
};

/// What a probe row says (pure): read_only when the database is not updateable or the
/// replica is not primary; a secondary replicates while SYNCHRONIZING or SYNCHRONIZED and
/// lags by secondary_lag_seconds; the position is the LSN as decimal text. Outside an
/// availability group (all DMV columns NULL) there is no replication to judge.
ProbeResult tds_probe_result(const TdsProbeRow& row);

/// Compares two LSNs as decimal text (numeric(25,0)): <0, 0, >0; an empty or non-numeric
/// one is below every number.
int compare_lsn(std::string_view a, std::string_view b) noexcept;

class TdsMonitor {
public:
    /// `options.heartbeat_*` are not used. `freetds_conf_dir`: where the monitor writes the
    /// freetds.conf that names each backend (host, port, TDS 7.4, encryption for `tls`
    /// backends); it holds no password.
    TdsMonitor(MonitorOptions options, std::vector<MonitoredBackend> backends,
               Monitor::Publish publish, std::string freetds_conf_dir);
    TdsMonitor(const TdsMonitor&) = delete;
    TdsMonitor& operator=(const TdsMonitor&) = delete;
    ~TdsMonitor();

    void start();
    void stop();
    std::shared_ptr<const Topology> latest() const;
    std::uint64_t failovers() const noexcept;

private:
    struct State;
    std::unique_ptr<State> state_;
};

} // namespace sluice::pool
