#pragma once
// The circuit breaker of one backend (issue #8): consecutive failures open it, and after a while
// it lets attempts through again. Time is passed in; no clock, no logging.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace sluice::pool {

/// Whether a backend is tried. `closed`: yes; `open`: no, until `open_for` has passed since it
/// opened; `half_open`: yes again, and the next failure re-opens it at once while a success
/// closes it. Not thread-safe: one owner (the monitor) feeds it and publishes its state.
/// With the default options it does what `[routing] replica_retry_ms` did: one failure skips
/// the backend for open_for, then it is tried again.
class Breaker {
public:
    using time_point = std::chrono::steady_clock::time_point;

    struct Options {
        /// Consecutive failures that open a closed breaker; 0 counts as 1.
        std::uint32_t failures_to_open = 1;
        /// How long it stays open before attempts are let through again.
        std::chrono::milliseconds open_for{1000};
    };
    enum class State : std::uint8_t { closed, open, half_open };

    /// A closed breaker with the default options.
    Breaker() noexcept = default;
    /// A closed breaker.
    explicit Breaker(Options options) noexcept : options_(options) {}

    /// `open` from the time it opened until opened_at + open_for (excluded), `half_open` from
    /// then on until a success or a failure; `closed` otherwise.
    State state(time_point now) const noexcept;
    /// Whether an attempt may go to the backend now: closed or half_open.
    bool allows(time_point now) const noexcept { return state(now) != State::open; }

    /// Counts a failure. Closed: opens at the threshold of consecutive failures; half_open:
    /// re-opens at once (from `now`); open: counted only, the open period is not extended (an
    /// attempt that started before it opened says nothing new). True when this call opened
    /// it, so the caller logs the change once.
    bool on_failure(time_point now) noexcept;
    /// Closes it and resets the count of failures. True when it was open or half_open.
    bool on_success() noexcept;

    /// Consecutive failures since the last success (saturates; for `/backends` and tests).
    std::uint32_t failures() const noexcept { return failures_; }
    const Options& options() const noexcept { return options_; }
    /// Until when no attempt is let through: the end of the open period, or nullopt while
    /// closed (half_open: a time already past).
    std::optional<time_point> open_until() const noexcept {
        if (!opened_at_) return std::nullopt;
        return *opened_at_ + options_.open_for;
    }

private:
    Options options_;
    std::uint32_t failures_ = 0;
    std::optional<time_point> opened_at_; // set while open or half_open
};

/// The breakers of every backend (config order), shared by all worker threads: a failure one
/// session sees keeps every session off that backend. Updates (failures, successes: rare)
/// take a mutex; `allows` (every replica choice) reads one atomic per backend. Successes are
/// connects, not statements: the mutex stays off the per-statement path.
class BreakerBoard {
public:
    using time_point = Breaker::time_point;
    BreakerBoard(std::size_t backends, Breaker::Options options);
    BreakerBoard(const BreakerBoard&) = delete;
    BreakerBoard& operator=(const BreakerBoard&) = delete;

    std::size_t size() const noexcept { return breakers_.size(); }
    /// Whether an attempt may go to `backend` now (index < size()).
    bool allows(std::size_t backend, time_point now) const noexcept;
    /// Breaker::on_failure; true when this call opened it (log it once).
    bool on_failure(std::size_t backend, time_point now);
    /// Breaker::on_success; true when it was open or half_open.
    bool on_success(std::size_t backend);
    /// The breaker's state now (for `/backends` and tests).
    Breaker::State state(std::size_t backend, time_point now) const;

private:
    void publish(std::size_t backend) noexcept; // under mutex_

    mutable std::mutex mutex_;
    std::vector<Breaker> breakers_;
    /// Per backend: the end of its open period, steady-clock ticks since the epoch (0: closed).
    std::unique_ptr<std::atomic<std::int64_t>[]> open_until_;
};

/// "closed", "open" or "half_open": for logs and `/backends`.
const char* breaker_state_name(Breaker::State s) noexcept;

} // namespace sluice::pool
