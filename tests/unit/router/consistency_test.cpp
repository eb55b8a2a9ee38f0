// The freshness decision of read-your-writes (issue #8: the consistency token).

#include "sluice/router/consistency.hpp"

#include <catch2/catch.hpp>

using namespace sluice::router;

TEST_CASE("freshness: no token or a known position at or past it reads at once; else wait",
          "[router][consistency]") {
    CHECK(freshness("", "") == Freshness::fresh);
    CHECK(freshness("0-1-5", "0-1-5") == Freshness::fresh);
    CHECK(freshness("0-1-5", "0-1-9") == Freshness::fresh);
    CHECK(freshness("0-1-5", "") == Freshness::wait_for);
    CHECK(freshness("0-1-5", "0-1-4") == Freshness::wait_for);
    CHECK(freshness("odd", "odd") == Freshness::fresh); // seen as is: the wait succeeded
}
