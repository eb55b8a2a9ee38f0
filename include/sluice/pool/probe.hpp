#pragma once
// What one monitor probe of a backend found, the heartbeat log that turns a replica's view of
// the primary's heartbeat into lag, and the step from probe results to a backend's state in
// the topology (issue #8, section 2). Pure: time is passed in, nothing here does I/O.

#include "sluice/pool/breaker.hpp"
#include "sluice/pool/topology.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace sluice::pool {

/// A replica's replication threads as SHOW SLAVE STATUS reports them.
struct ReplicationStatus {
    bool io_running = false;
    bool sql_running = false;
    std::optional<std::int64_t> seconds_behind; ///< Seconds_Behind_Master; NULL: unknown
};

/// One probe of one backend.
struct ProbeResult {
    bool reachable = false;           ///< connected, and every probe statement answered
    std::string error;                ///< why not (no passwords or values in it)
    std::chrono::microseconds rtt{0}; ///< a COM_PING round trip
    bool read_only = false;           ///< @@read_only
    std::string gtid_position;        ///< @@gtid_current_pos (MariaDB) / @@gtid_executed
    std::optional<ReplicationStatus> replication; ///< nullopt: no replication configured
    bool replication_unknown = false;           ///< SHOW SLAVE STATUS refused (privilege): trusted
    std::chrono::steady_clock::time_point at{}; ///< when the probe finished
};

/// The heartbeats Sluice wrote on the primary: each one's GTID (from the primary's OK) and
/// the time the primary acknowledged it. A replica's lag is how long the oldest heartbeat its
/// applied GTID position does not include has existed (0 when it includes them all): one
/// clock, Sluice's, so no skew between servers, and a resolution of milliseconds.
class HeartbeatLog {
public:
    using time_point = std::chrono::steady_clock::time_point;
    /// Keeps the last `capacity` heartbeats (at 500 ms a beat, 256 cover two minutes).
    explicit HeartbeatLog(std::size_t capacity = 256) : capacity_(capacity) {}

    /// The sequence number the next heartbeat writes into its row.
    std::uint64_t next_seq() const noexcept { return seq_ + 1; }
    /// The primary acknowledged the heartbeat write that got `gtid` at `at`.
    void acknowledged(std::uint64_t seq, std::string gtid, time_point at);
    /// The lag of a replica whose applied position is `position` at `now`; nullopt before
    /// the first heartbeat, or for a position that does not parse. A position older than
    /// the whole log gives the age of the oldest entry (a lower bound).
    std::optional<std::chrono::milliseconds> lag(std::string_view position, time_point now) const;
    std::size_t size() const noexcept { return beats_.size(); }

private:
    struct Beat {
        std::string gtid;
        time_point at;
    };
    std::size_t capacity_;
    std::deque<Beat> beats_;
    std::uint64_t seq_ = 0;
};

/// What the monitor knows of a backend from its probes so far.
struct BackendHealth {
    Breaker breaker; ///< consecutive failed probes take it out
    /// EWMA of the shortest of the last `rtt_window` pings: a busy host only ever adds to a
    /// round trip (scheduling, queueing), so the minimum of a few is the distance, and one
    /// slow ping does not make a near replica look far. 0: never measured.
    std::chrono::microseconds rtt_ewma{0};
    static constexpr std::size_t rtt_window = 4;
    std::array<std::chrono::microseconds, rtt_window> recent_rtt{}; ///< 0: no sample yet
    std::size_t recent_next = 0;
    std::optional<ProbeResult> last_ok; ///< the last probe that reached it
    std::string last_error;             ///< why the last probe failed; empty: it did not
    std::optional<std::chrono::milliseconds> lag;
};

/// Takes a probe's result into `h` (breaker, RTT average, a replica's lag from the heartbeat
/// or else from Seconds_Behind_Master). Returns true when the backend's availability
/// changed (the breaker opened or closed): the caller logs it once.
bool record_probe(BackendHealth& h, ProbeResult result, const HeartbeatLog& heartbeats);

/// Writer discovery: the backend that takes writes is one that is up and has read_only=0.
/// The previous writer stays while it qualifies (no flapping); else the configured primary;
/// else the first that qualifies in config order (a replica promoted by a failover); nullopt
/// while none does (the failover hold).
std::optional<std::size_t> discover_writer(const std::vector<BackendHealth>& health,
                                           std::optional<std::size_t> configured_primary,
                                           std::optional<std::size_t> previous,
                                           std::chrono::steady_clock::time_point now);

/// The topology entry of a backend: its configured role, zone and weight, and its health.
/// Up while its breaker is closed and a probe has reached it (a failed probe below the
/// threshold keeps the last good values); a replica counts as replicating only when both
/// its threads run.
BackendState backend_state(Role role, std::string zone, std::uint32_t weight,
                           const BackendHealth& h, std::chrono::steady_clock::time_point now);

} // namespace sluice::pool
