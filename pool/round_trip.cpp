#include "sluice/pool/round_trip.hpp"

#include "sluice/pool/topology.hpp"

#include <algorithm>

namespace sluice::pool {

void RoundTrip::query(std::chrono::microseconds round_trip, clock::time_point now) noexcept {
    round_trip = std::max(round_trip, std::chrono::microseconds{1});
    if (window_min_.count() == 0 || now - window_start_ > fresh_for) {
        // The first query, or one after a long pause: what the open window saw is too old
        // to be a sample now.
        window_min_ = round_trip;
        window_start_ = now;
        return;
    }
    if (now - window_start_ < window) {
        window_min_ = std::min(window_min_, round_trip);
        return;
    }
    // The window is over: its minimum is a sample (starting a new average when the old one
    // went stale), and this query opens the next window.
    if (now - sampled_ > fresh_for) ewma_ = std::chrono::microseconds{0};
    ewma_ = ewma(ewma_, window_min_);
    sampled_ = now;
    window_min_ = round_trip;
    window_start_ = now;
}

std::chrono::microseconds RoundTrip::value(clock::time_point now,
                                           std::chrono::microseconds probed) const noexcept {
    if (ewma_.count() > 0 && now - sampled_ <= fresh_for) return ewma_;
    return probed;
}

} // namespace sluice::pool
