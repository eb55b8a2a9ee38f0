// GTID positions: parsing and coverage (read-your-writes, the monitor's heartbeat).

#include "sluice/protocol/mysql/gtid.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace sluice::protocol::mysql;

TEST_CASE("MariaDB positions cover a GTID of the same domain up to their sequence number",
          "[protocol][gtid]") {
    struct Row {
        const char* position;
        const char* token;
        bool covered;
    };
    const Row rows[] = {
        {"0-1-100", "0-1-100", true},
        {"0-1-100", "0-1-99", true},
        {"0-1-100", "0-2-50", true}, // another server of the same domain: seq is domain-wide
        {"0-1-100", "0-1-101", false},
        {"0-1-100", "1-1-5", false}, // a domain the position has not seen
        {"0-1-100,1-3-7", "1-1-5", true},
        {"0-1-100, 1-3-7", "0-1-100,1-3-8", false},
        {"", "0-1-1", false},
        {"0-1-5", "", true},
        {"garbage", "0-1-1", false},
        {"0-1-5", "garbage", false},
        {"0-1", "0-1-1", false},
        {"0-1-5-", "0-1-1", false},
    };
    for (const Row& r : rows) {
        INFO(r.position << " covers " << r.token);
        CHECK(gtid_covers(r.position, r.token) == r.covered);
    }
}

TEST_CASE("MySQL GTID sets cover a transaction inside one of the source's intervals",
          "[protocol][gtid]") {
    const char* uuid = "3E11FA47-71CA-11E1-9E33-C80AA9429562";
    const std::string pos = std::string(uuid) + ":1-5:7-9";
    CHECK(gtid_covers(pos, std::string(uuid) + ":3"));
    CHECK(gtid_covers(pos, "3e11fa47-71ca-11e1-9e33-c80aa9429562:8")); // case of the uuid
    CHECK(gtid_covers(pos, std::string(uuid) + ":7-9"));
    CHECK_FALSE(gtid_covers(pos, std::string(uuid) + ":6"));
    CHECK_FALSE(gtid_covers(pos, std::string(uuid) + ":4-7"));
    CHECK_FALSE(gtid_covers(pos, "4E11FA47-71CA-11E1-9E33-C80AA9429562:1"));
    CHECK_FALSE(gtid_covers(std::string(uuid) + ":5-1", std::string(uuid) + ":3"));
    // @@gtid_executed wraps lines.
    CHECK(gtid_covers(std::string(uuid) + ":1-5,\n4E11FA47-71CA-11E1-9E33-C80AA9429562:1-2",
                      "4E11FA47-71CA-11E1-9E33-C80AA9429562:2"));
}

TEST_CASE("parse_gtid_position reads both forms and refuses anything else", "[protocol][gtid]") {
    auto p = parse_gtid_position("0-1-10,2-5-3");
    REQUIRE(p);
    REQUIRE(p->size() == 2);
    CHECK((*p)[1].source == "2");
    CHECK((*p)[1].intervals == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{1, 3}});
    CHECK(parse_gtid_position("")->empty());
    CHECK_FALSE(parse_gtid_position("0-1-x"));
    CHECK_FALSE(parse_gtid_position("abc:1"));
    // Transaction numbers start at 1 (a fuzz finding: "uuid:0" made a watermark "uuid:1-0").
    CHECK_FALSE(parse_gtid_position("3e11fa47-71ca-11e1-9e33-c80aa9429562:0"));
    CHECK_FALSE(parse_gtid_position("3e11fa47-71ca-11e1-9e33-c80aa9429562:0-4"));
    CHECK_FALSE(parse_gtid_position("0-1-99999999999999999999999"));
}

TEST_CASE("#8: the watermark keeps the newest GTID per stream and writes a waitable position",
          "[protocol][gtid]") {
    GtidWatermark w;
    CHECK(w.text().empty());
    CHECK(w.advance("0-1-5"));
    CHECK(w.text() == "0-1-5");
    CHECK_FALSE(w.advance("0-1-4")); // older: nothing changes
    CHECK_FALSE(w.advance("0-1-5"));
    CHECK(w.advance("0-2-9")); // another server of the domain (after a failover)
    CHECK(w.text() == "0-2-9");
    CHECK(w.advance("3-1-1"));
    CHECK(w.text() == "0-2-9,3-1-1");
    CHECK_FALSE(w.advance("garbage"));
    CHECK(gtid_covers("0-2-9,3-1-1", w.text()));
    CHECK_FALSE(gtid_covers("0-2-9", w.text()));

    GtidWatermark m;
    const std::string uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    CHECK(m.advance(uuid + ":7"));
    CHECK(m.advance(uuid + ":9"));
    CHECK(m.text() == uuid + ":1-9");
    CHECK(gtid_covers(uuid + ":1-20", m.text()));
}
