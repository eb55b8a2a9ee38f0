#include "sluice/pool/breaker.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace sluice::pool;
using namespace std::chrono_literals;
using State = Breaker::State;

namespace {

// An arbitrary steady-clock instant: tests pass time in and never read the clock.
const Breaker::time_point t0 = Breaker::time_point{} + 3600s;

Breaker::Options opens_after(std::uint32_t failures, std::chrono::milliseconds open_for = 1000ms) {
    Breaker::Options o;
    o.failures_to_open = failures;
    o.open_for = open_for;
    return o;
}

} // namespace

TEST_CASE("a new breaker is closed and lets attempts through", "[pool]") {
    const Breaker b;
    CHECK(b.state(t0) == State::closed);
    CHECK(b.allows(t0));
    CHECK(b.failures() == 0);
    CHECK(b.options().failures_to_open == 1);
    CHECK(b.options().open_for == 1000ms);
}

TEST_CASE("with the defaults one failure skips the backend for open_for, then it is tried again",
          "[pool]") {
    Breaker b{opens_after(1, 500ms)};
    CHECK(b.on_failure(t0));
    struct Row {
        std::chrono::milliseconds after;
        State expected;
    };
    const std::vector<Row> rows = {
        {0ms, State::open},        {1ms, State::open},        {499ms, State::open},
        {500ms, State::half_open}, {501ms, State::half_open}, {3600000ms, State::half_open},
    };
    for (const auto& row : rows) {
        INFO(row.after.count() << " ms after the failure");
        CHECK(b.state(t0 + row.after) == row.expected);
        CHECK(b.allows(t0 + row.after) == (row.expected != State::open));
    }
    // One nanosecond before the boundary it is still open.
    CHECK(b.state(t0 + 500ms - std::chrono::nanoseconds{1}) == State::open);
    // A successful attempt then closes it.
    CHECK(b.on_success());
    CHECK(b.state(t0 + 500ms) == State::closed);
}

TEST_CASE("a breaker with a threshold opens only at that many consecutive failures", "[pool]") {
    Breaker b{opens_after(3)};
    CHECK_FALSE(b.on_failure(t0));
    CHECK(b.state(t0) == State::closed);
    CHECK_FALSE(b.on_failure(t0 + 10ms));
    CHECK(b.state(t0 + 10ms) == State::closed);
    CHECK(b.failures() == 2);
    CHECK(b.on_failure(t0 + 20ms));
    CHECK(b.failures() == 3);
    // Open from the failure that reached the threshold, not from the first.
    CHECK(b.state(t0 + 1019ms) == State::open);
    CHECK(b.state(t0 + 1020ms) == State::half_open);
}

TEST_CASE("a success resets the count of consecutive failures", "[pool]") {
    Breaker b{opens_after(3)};
    CHECK_FALSE(b.on_failure(t0));
    CHECK_FALSE(b.on_failure(t0));
    CHECK_FALSE(b.on_success()); // it was closed: no change to report
    CHECK(b.failures() == 0);
    CHECK_FALSE(b.on_failure(t0));
    CHECK_FALSE(b.on_failure(t0));
    CHECK(b.state(t0) == State::closed);
    CHECK(b.on_failure(t0));
    CHECK(b.state(t0) == State::open);
}

TEST_CASE("a failure while half_open re-opens the breaker at once, from that moment", "[pool]") {
    Breaker b{opens_after(3, 1000ms)};
    for (int i = 0; i < 3; ++i)
        b.on_failure(t0);
    REQUIRE(b.state(t0 + 1000ms) == State::half_open);
    // One failure is enough now, whatever the threshold.
    CHECK(b.on_failure(t0 + 1500ms));
    CHECK(b.state(t0 + 1500ms) == State::open);
    CHECK(b.state(t0 + 2499ms) == State::open);
    CHECK(b.state(t0 + 2500ms) == State::half_open);
    // Failing at exactly the boundary counts as half_open too.
    CHECK(b.on_failure(t0 + 2500ms));
    CHECK(b.state(t0 + 3499ms) == State::open);
    CHECK(b.state(t0 + 3500ms) == State::half_open);
}

TEST_CASE("a failure while open neither reports a change nor extends the open period", "[pool]") {
    Breaker b{opens_after(1, 1000ms)};
    CHECK(b.on_failure(t0));
    CHECK_FALSE(b.on_failure(t0 + 400ms));
    CHECK_FALSE(b.on_failure(t0 + 999ms));
    CHECK(b.failures() == 3);
    CHECK(b.state(t0 + 1000ms) == State::half_open);
}

TEST_CASE("on_success closes the breaker and says whether that changed its state", "[pool]") {
    struct Row {
        const char* what;
        std::uint32_t failures; // before the success, at t0
        std::chrono::milliseconds success_after;
        bool changed;
    };
    const std::vector<Row> rows = {
        {"closed, never failed", 0, 0ms, false},
        {"closed, failures below the threshold", 2, 0ms, false},
        {"open", 3, 10ms, true},
        {"half_open", 3, 1000ms, true},
    };
    for (const auto& row : rows) {
        INFO(row.what);
        Breaker b{opens_after(3, 1000ms)};
        for (std::uint32_t i = 0; i < row.failures; ++i)
            b.on_failure(t0);
        CHECK(b.on_success() == row.changed);
        CHECK(b.state(t0 + row.success_after) == State::closed);
        CHECK(b.failures() == 0);
        // Closed again: the full threshold applies anew.
        CHECK_FALSE(b.on_failure(t0 + 2000ms));
        CHECK_FALSE(b.on_failure(t0 + 2000ms));
        CHECK(b.on_failure(t0 + 2000ms));
    }
}

TEST_CASE("a threshold of 0 failures counts as 1", "[pool]") {
    Breaker b{opens_after(0)};
    CHECK(b.state(t0) == State::closed);
    CHECK(b.on_failure(t0));
    CHECK(b.state(t0) == State::open);
}

TEST_CASE("an open_for of 0 lets the next attempt through at once", "[pool]") {
    Breaker b{opens_after(1, 0ms)};
    CHECK(b.on_failure(t0));
    CHECK(b.state(t0) == State::half_open);
    CHECK(b.allows(t0));
}

TEST_CASE("breaker state names are the enumerators' names", "[pool]") {
    CHECK(std::string{breaker_state_name(State::closed)} == "closed");
    CHECK(std::string{breaker_state_name(State::open)} == "open");
    CHECK(std::string{breaker_state_name(State::half_open)} == "half_open");
}

TEST_CASE("a breaker board keeps every backend's breaker and publishes when each is open",
          "[pool]") {
    using namespace std::chrono_literals;
    const auto start = std::chrono::steady_clock::time_point{} + 10s;
    BreakerBoard board(3, {.failures_to_open = 2, .open_for = 1000ms});
    CHECK(board.size() == 3);
    CHECK(board.allows(1, start));
    CHECK_FALSE(board.on_failure(1, start)); // one of two
    CHECK(board.allows(1, start));
    CHECK(board.on_failure(1, start + 1ms)); // opened now
    CHECK_FALSE(board.allows(1, start + 1ms));
    CHECK_FALSE(board.allows(1, start + 1000ms));
    CHECK(board.allows(1, start + 1001ms)); // half_open: let through
    CHECK(board.state(1, start + 1001ms) == Breaker::State::half_open);
    CHECK(board.allows(0, start + 1ms)); // the others are untouched
    CHECK(board.allows(2, start + 1ms));
    CHECK(board.on_success(1));
    CHECK(board.state(1, start + 1001ms) == Breaker::State::closed);
    CHECK(board.allows(1, start + 1001ms));
    CHECK_FALSE(board.on_success(1));
}

TEST_CASE("a success on the board resets the count of consecutive failures", "[pool]") {
    using namespace std::chrono_literals;
    const auto start = std::chrono::steady_clock::time_point{} + 10s;
    BreakerBoard board(1, {.failures_to_open = 2, .open_for = 1000ms});
    CHECK_FALSE(board.on_failure(0, start));
    CHECK_FALSE(board.on_success(0));
    CHECK_FALSE(board.on_failure(0, start + 1ms)); // one again, not two
    CHECK(board.allows(0, start + 1ms));
}
