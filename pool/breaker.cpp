#include "sluice/pool/breaker.hpp"

#include <algorithm>
#include <limits>

namespace sluice::pool {

Breaker::State Breaker::state(time_point now) const noexcept {
    if (!opened_at_) return State::closed;
    return now < *opened_at_ + options_.open_for ? State::open : State::half_open;
}

bool Breaker::on_failure(time_point now) noexcept {
    if (failures_ < std::numeric_limits<std::uint32_t>::max()) ++failures_;
    switch (state(now)) {
    case State::open:
        return false;
    case State::half_open:
        // The trial failed: the backend gets another full period to recover.
        opened_at_ = now;
        return true;
    case State::closed:
        if (failures_ < std::max<std::uint32_t>(options_.failures_to_open, 1)) return false;
        opened_at_ = now;
        return true;
    }
    return false;
}

bool Breaker::on_success() noexcept {
    failures_ = 0;
    const bool was_open = opened_at_.has_value();
    opened_at_.reset();
    return was_open;
}

BreakerBoard::BreakerBoard(std::size_t backends, Breaker::Options options)
    : breakers_(backends, Breaker(options)),
      open_until_(std::make_unique<std::atomic<std::int64_t>[]>(backends)) {
    for (std::size_t i = 0; i < backends; ++i)
        open_until_[i].store(0, std::memory_order_relaxed);
}

void BreakerBoard::publish(std::size_t backend) noexcept {
    const auto until = breakers_[backend].open_until();
    open_until_[backend].store(until ? until->time_since_epoch().count() : 0,
                               std::memory_order_relaxed);
}

bool BreakerBoard::allows(std::size_t backend, time_point now) const noexcept {
    return now.time_since_epoch().count() >= open_until_[backend].load(std::memory_order_relaxed);
}

bool BreakerBoard::on_failure(std::size_t backend, time_point now) {
    const std::lock_guard lock(mutex_);
    const bool opened = breakers_[backend].on_failure(now);
    publish(backend);
    return opened;
}

bool BreakerBoard::on_success(std::size_t backend) {
    const std::lock_guard lock(mutex_);
    const bool closed = breakers_[backend].on_success();
    publish(backend);
    return closed;
}

Breaker::State BreakerBoard::state(std::size_t backend, time_point now) const {
    const std::lock_guard lock(mutex_);
    return breakers_[backend].state(now);
}

const char* breaker_state_name(Breaker::State s) noexcept {
    switch (s) {
    case Breaker::State::closed:
        return "closed";
    case Breaker::State::open:
        return "open";
    case Breaker::State::half_open:
        return "half_open";
    }
    return "?";
}

} // namespace sluice::pool
