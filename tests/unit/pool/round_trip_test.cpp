#include "sluice/pool/round_trip.hpp"

#include <catch2/catch.hpp>

using namespace sluice::pool;
using namespace std::chrono_literals;

namespace {
const RoundTrip::clock::time_point t0 = RoundTrip::clock::time_point{} + 100s;
}

TEST_CASE("RoundTrip gives the probes' value until a window of queries ends", "[pool]") {
    RoundTrip rt;
    CHECK(rt.value(t0, 700us) == 700us);
    rt.query(900us, t0);
    rt.query(300us, t0 + 50ms);
    CHECK(rt.value(t0 + 60ms, 700us) == 700us); // the window is still open
    rt.query(800us, t0 + 100ms);
    // The first window's shortest round trip, taken as is.
    CHECK(rt.value(t0 + 100ms, 700us) == 300us);
}

TEST_CASE("RoundTrip takes each window's shortest query: execution and queueing only add",
          "[pool]") {
    RoundTrip rt;
    // A busy replica: most answers take 20 ms, its quickest 1.2 ms.
    rt.query(20ms, t0);
    rt.query(1200us, t0 + 10ms);
    rt.query(25ms, t0 + 60ms);
    rt.query(20ms, t0 + 120ms); // closes the window: sample 1200 us
    rt.query(1000us, t0 + 150ms);
    rt.query(30ms, t0 + 240ms);                 // closes the next: 1000 us
    CHECK(rt.value(t0 + 240ms, 5ms) == 1160us); // 1200 + 0.2 x (1000 - 1200)
}

TEST_CASE("RoundTrip follows a replica that moved away within a few windows", "[pool]") {
    RoundTrip rt;
    auto now = t0;
    for (int i = 0; i < 4; ++i) {
        rt.query(300us, now);
        now += 60ms;
    }
    CHECK(rt.value(now, 300us) == 300us);
    // 10 ms away now (a relay): every query takes at least that.
    for (int i = 0; i < 12; ++i) {
        rt.query(10ms + std::chrono::microseconds{i * 100}, now);
        now += 60ms;
    }
    // Several windows of 10 ms samples: well on the way, not there yet.
    CHECK(rt.value(now, 300us) > 5ms);
    CHECK(rt.value(now, 300us) < 10ms);
}

TEST_CASE("RoundTrip hands back to the probes when this worker's queries stop, and starts a "
          "new average when they resume",
          "[pool]") {
    RoundTrip rt;
    rt.query(300us, t0);
    rt.query(300us, t0 + 100ms);
    CHECK(rt.value(t0 + 1100ms, 9ms) == 300us);
    // No query for more than fresh_for: the monitor's value (the relay moved it away).
    CHECK(rt.value(t0 + 1101ms, 9ms) == 9ms);
    // Queries again, now 10 ms away: the old 300 us does not drag the new average.
    rt.query(10ms, t0 + 5s);
    rt.query(10ms, t0 + 5s + 100ms);
    CHECK(rt.value(t0 + 5s + 100ms, 300us) == 10ms);
}
