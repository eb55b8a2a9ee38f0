#include "sluice/pool/probe.hpp"

#include "sluice/protocol/mysql/gtid.hpp"

#include <algorithm>

namespace sluice::pool {

void HeartbeatLog::acknowledged(std::uint64_t seq, std::string gtid, time_point at) {
    if (seq <= seq_ || gtid.empty()) return; // keep the log increasing
    seq_ = seq;
    beats_.push_back({std::move(gtid), at});
    while (beats_.size() > capacity_)
        beats_.pop_front();
}

std::optional<std::chrono::milliseconds> HeartbeatLog::lag(std::string_view position,
                                                           time_point now) const {
    if (beats_.empty() || !protocol::mysql::parse_gtid_position(position)) return std::nullopt;
    // A replica applies in order: the heartbeats it includes come first. The first one it
    // does not include is the oldest write it still owes.
    const auto it = std::partition_point(beats_.begin(), beats_.end(), [&](const Beat& b) {
        return protocol::mysql::gtid_covers(position, b.gtid);
    });
    if (it == beats_.end()) return std::chrono::milliseconds{0};
    if (now <= it->at) return std::chrono::milliseconds{0};
    return std::chrono::duration_cast<std::chrono::milliseconds>(now - it->at);
}

bool record_probe(BackendHealth& h, ProbeResult result, const HeartbeatLog& heartbeats) {
    if (!result.reachable) {
        h.last_error = result.error.empty() ? "unreachable" : result.error;
        return h.breaker.on_failure(result.at);
    }
    const bool changed = h.breaker.on_success();
    h.last_error.clear();
    h.recent_rtt[h.recent_next] = std::max(result.rtt, std::chrono::microseconds{1});
    h.recent_next = (h.recent_next + 1) % h.recent_rtt.size();
    std::chrono::microseconds shortest = result.rtt;
    for (const auto r : h.recent_rtt) {
        if (r.count() > 0) shortest = std::min(shortest, r);
    }
    h.rtt_ewma = ewma(h.rtt_ewma, shortest);
    h.lag.reset();
    if (result.replication) {
        h.lag = heartbeats.lag(result.gtid_position, result.at);
        if (!h.lag && result.replication->seconds_behind &&
            *result.replication->seconds_behind >= 0)
            h.lag = std::chrono::seconds(*result.replication->seconds_behind);
    }
    h.last_ok = std::move(result);
    return changed;
}

std::optional<std::size_t> discover_writer(const std::vector<BackendHealth>& health,
                                           std::optional<std::size_t> configured_primary,
                                           std::optional<std::size_t> previous,
                                           std::chrono::steady_clock::time_point now) {
    auto writable = [&](std::size_t i) {
        const BackendHealth& h = health[i];
        return i < health.size() && h.breaker.state(now) == Breaker::State::closed && h.last_ok &&
               h.last_ok->reachable && !h.last_ok->read_only;
    };
    if (previous && *previous < health.size() && writable(*previous)) return previous;
    if (configured_primary && *configured_primary < health.size() && writable(*configured_primary))
        return configured_primary;
    for (std::size_t i = 0; i < health.size(); ++i) {
        if (writable(i)) return i;
    }
    return std::nullopt;
}

BackendState backend_state(Role role, std::string zone, std::uint32_t weight,
                           const BackendHealth& h, std::chrono::steady_clock::time_point now) {
    BackendState s;
    s.role = role;
    s.zone = std::move(zone);
    s.weight = weight;
    s.up = h.breaker.state(now) == Breaker::State::closed && h.last_ok.has_value();
    s.rtt = h.rtt_ewma;
    s.lag = h.lag;
    if (h.last_ok) {
        const ProbeResult& p = *h.last_ok;
        s.gtid_position = p.gtid_position;
        s.read_only = p.read_only;
        if (role == Role::replica) {
            s.replicating = p.replication ? p.replication->io_running && p.replication->sql_running
                                          : p.replication_unknown;
        }
    }
    return s;
}

} // namespace sluice::pool
