#pragma once
// A backend's round-trip time as one worker learns it from its own queries (issue #8, "The
// EWMA also learns from real query round trips, not only probes"). Pure: time is passed in.

#include <chrono>
#include <cstdint>

namespace sluice::pool {

/// The round trip choose_replica scores a backend by: while this worker's queries to it are
/// recent, an EWMA of their round trips; otherwise the monitor's (the probes' EWMA). A query's
/// round trip includes its execution and the server's queueing, which say nothing of
/// distance; the shortest one of each window is the closest to the distance, so each window's
/// minimum is one sample (a busy replica still answers its quickest point select in about its
/// round-trip time). Query samples follow a change of distance within a few windows, faster
/// than probes every interval; a replica this worker stopped reading from is judged by the
/// monitor again, so an old measurement never outlives the conditions it measured.
class RoundTrip {
public:
    using clock = std::chrono::steady_clock;
    /// Queries answered within one window make one sample: their shortest round trip.
    static constexpr std::chrono::milliseconds window{100};
    /// Query samples older than this no longer count: the probes' value is used, and the next
    /// query sample starts a new average.
    static constexpr std::chrono::milliseconds fresh_for{1000};

    /// A query's round trip (request written to the end of its answer), at `now`.
    void query(std::chrono::microseconds round_trip, clock::time_point now) noexcept;
    /// The round trip to score by at `now`: the queries' EWMA while fresh, else `probed`.
    std::chrono::microseconds value(clock::time_point now,
                                    std::chrono::microseconds probed) const noexcept;

private:
    std::chrono::microseconds ewma_{0};       ///< 0: no sample yet
    clock::time_point sampled_{};             ///< when ewma_ last took a sample
    std::chrono::microseconds window_min_{0}; ///< 0: no query in this window yet
    clock::time_point window_start_{};
};

} // namespace sluice::pool
