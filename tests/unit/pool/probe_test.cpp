// The monitor's pure parts: heartbeat lag from GTID positions, probe results into a backend's
// health, and the topology entry made from it (issue #8, section 2).

#include "sluice/pool/probe.hpp"
#include "sluice/pool/tds_monitor.hpp"

#include <catch2/catch.hpp>

using namespace sluice::pool;
using namespace std::chrono_literals;

namespace {
const auto t0 = std::chrono::steady_clock::time_point{} + 100s;

ProbeResult replica_probe(std::string position, bool io = true, bool sql = true,
                          std::optional<std::int64_t> sbm = 0) {
    ProbeResult r;
    r.reachable = true;
    r.rtt = 300us;
    r.gtid_position = std::move(position);
    r.replication = ReplicationStatus{io, sql, sbm};
    r.at = t0 + 10s;
    return r;
}

BackendHealth fresh_health(std::uint32_t failures = 2) {
    BackendHealth h;
    h.breaker = Breaker({.failures_to_open = failures, .open_for = 24h});
    return h;
}
} // namespace

TEST_CASE("heartbeat lag: 0 when the replica has every heartbeat, else the age of the first "
          "one it lacks",
          "[pool][monitor]") {
    HeartbeatLog log;
    CHECK_FALSE(log.lag("0-1-1", t0)); // nothing written yet
    log.acknowledged(log.next_seq(), "0-1-10", t0);
    log.acknowledged(log.next_seq(), "0-1-12", t0 + 500ms);
    log.acknowledged(log.next_seq(), "0-1-15", t0 + 1000ms);
    CHECK(log.size() == 3);
    CHECK(log.lag("0-1-15", t0 + 1200ms) == 0ms);
    CHECK(log.lag("0-1-20", t0 + 1200ms) == 0ms);
    CHECK(log.lag("0-1-14", t0 + 1200ms) == 200ms); // lacks the third, written at t0 + 1000
    CHECK(log.lag("0-1-12", t0 + 1200ms) == 200ms);
    CHECK(log.lag("0-1-11", t0 + 1200ms) == 700ms); // lacks the second
    CHECK(log.lag("0-1-3", t0 + 1200ms) == 1200ms); // lacks them all: at least this old
    CHECK_FALSE(log.lag("not a position", t0));
}

TEST_CASE("the heartbeat log keeps its capacity and ignores what is not newer", "[pool][monitor]") {
    HeartbeatLog log(2);
    log.acknowledged(1, "0-1-1", t0);
    log.acknowledged(1, "0-1-2", t0 + 1s); // same sequence: ignored
    log.acknowledged(2, "", t0 + 1s);      // no GTID tracked: ignored
    CHECK(log.size() == 1);
    log.acknowledged(2, "0-1-2", t0 + 1s);
    log.acknowledged(3, "0-1-3", t0 + 2s);
    CHECK(log.size() == 2);
    CHECK(log.lag("0-1-1", t0 + 3s) == 2s); // the oldest kept is the second
}

TEST_CASE("a probe's replica lag comes from the heartbeat, else from Seconds_Behind_Master",
          "[pool][monitor]") {
    HeartbeatLog log;
    BackendHealth h = fresh_health();
    record_probe(h, replica_probe("0-1-5", true, true, 7), log);
    CHECK(h.lag == 7s); // no heartbeat yet
    log.acknowledged(1, "0-1-9", t0 + 9s);
    record_probe(h, replica_probe("0-1-5", true, true, 0), log);
    CHECK(h.lag == 1s); // behind the heartbeat of t0 + 9 s, probed at t0 + 10 s
    record_probe(h, replica_probe("0-1-9", true, false, std::nullopt), log);
    CHECK(h.lag == 0ms);
    CHECK(h.rtt_ewma.count() > 0);
}

TEST_CASE("a replica whose threads stop is not replicating; a refused SHOW SLAVE STATUS is "
          "trusted",
          "[pool][monitor]") {
    HeartbeatLog log;
    BackendHealth h = fresh_health();
    record_probe(h, replica_probe("0-1-5", true, false), log);
    CHECK_FALSE(backend_state(Role::replica, "a", 1, h, t0 + 10s).replicating);
    record_probe(h, replica_probe("0-1-5", false, true), log);
    CHECK_FALSE(backend_state(Role::replica, "a", 1, h, t0 + 10s).replicating);
    record_probe(h, replica_probe("0-1-5"), log);
    CHECK(backend_state(Role::replica, "a", 1, h, t0 + 10s).replicating);
    ProbeResult no_replication = replica_probe("0-1-5");
    no_replication.replication.reset();
    record_probe(h, no_replication, log);
    CHECK_FALSE(backend_state(Role::replica, "a", 1, h, t0 + 10s).replicating);
    no_replication.replication_unknown = true;
    record_probe(h, no_replication, log);
    CHECK(backend_state(Role::replica, "a", 1, h, t0 + 10s).replicating);
}

TEST_CASE("consecutive failed probes take a backend down; one success brings it back",
          "[pool][monitor]") {
    HeartbeatLog log;
    BackendHealth h = fresh_health(2);
    CHECK_FALSE(backend_state(Role::replica, "", 1, h, t0).up); // never probed
    CHECK(record_probe(h, replica_probe("0-1-5"), log) == false);
    CHECK(backend_state(Role::replica, "", 1, h, t0 + 10s).up);
    ProbeResult failed;
    failed.error = "connect: timed out";
    failed.at = t0 + 11s;
    CHECK_FALSE(record_probe(h, failed, log)); // one of two: still up, last values kept
    CHECK(backend_state(Role::replica, "", 1, h, t0 + 11s).up);
    CHECK(h.last_error == "connect: timed out");
    failed.at = t0 + 12s;
    CHECK(record_probe(h, failed, log)); // the change: logged once
    const auto down = backend_state(Role::replica, "", 1, h, t0 + 12s);
    CHECK_FALSE(down.up);
    CHECK(down.gtid_position == "0-1-5"); // what it said last, for /backends
    CHECK(record_probe(h, replica_probe("0-1-6"), log));
    CHECK(backend_state(Role::replica, "", 1, h, t0 + 13s).up);
    CHECK(h.last_error.empty());
}

TEST_CASE("the topology entry carries role, zone, weight, read_only and RTT", "[pool][monitor]") {
    HeartbeatLog log;
    BackendHealth h = fresh_health();
    ProbeResult p = replica_probe("0-1-5");
    p.read_only = true;
    record_probe(h, p, log);
    const BackendState s = backend_state(Role::replica, "b", 3, h, t0 + 10s);
    CHECK(s.role == Role::replica);
    CHECK(s.zone == "b");
    CHECK(s.weight == 3);
    CHECK(s.read_only);
    CHECK(s.rtt == 300us);
    CHECK(s.gtid_position == "0-1-5");
    const BackendState primary = backend_state(Role::primary, "a", 1, h, t0 + 10s);
    CHECK(primary.replicating); // not judged for a primary
}

TEST_CASE("#8: writer discovery keeps the writer, else the configured primary, else the first "
          "writable",
          "[pool][monitor]") {
    HeartbeatLog log;
    auto backend = [&](bool reachable, bool read_only) {
        BackendHealth h = fresh_health(1);
        ProbeResult p = replica_probe("0-1-5");
        p.reachable = reachable;
        p.read_only = read_only;
        record_probe(h, p, log);
        return h;
    };
    const auto now = t0 + 20s;
    // primary (0) writable, replicas read-only.
    std::vector<BackendHealth> h = {backend(true, false), backend(true, true), backend(true, true)};
    CHECK(discover_writer(h, 0, std::nullopt, now) == 0u);
    // The primary is gone: none writable, the hold.
    h[0] = backend(false, false);
    CHECK_FALSE(discover_writer(h, 0, 0, now));
    // replica1 promoted.
    h[1] = backend(true, false);
    CHECK(discover_writer(h, 0, std::nullopt, now) == 1u);
    // The old primary comes back writable too (split brain): the current writer stays.
    h[0] = backend(true, false);
    CHECK(discover_writer(h, 0, 1, now) == 1u);
    // Without a current writer the configured primary wins among the writable.
    CHECK(discover_writer(h, 0, std::nullopt, now) == 0u);
    // A demoted writer (read_only again) loses its place.
    h[1] = backend(true, true);
    CHECK(discover_writer(h, 0, 1, now) == 0u);
}

TEST_CASE("#8: the RTT average takes the shortest of the last four pings, so one slow ping on "
          "a busy host does not make a near replica look far",
          "[pool][monitor]") {
    HeartbeatLog log;
    BackendHealth h = fresh_health();
    auto ping = [&](std::chrono::microseconds rtt) {
        ProbeResult r = replica_probe("0-1-1");
        r.rtt = rtt;
        record_probe(h, r, log);
        return h.rtt_ewma;
    };
    CHECK(ping(300us) == 300us);
    CHECK(ping(3000us) == 300us); // scheduling on a busy host: ignored
    CHECK(ping(2500us) == 300us);
    CHECK(ping(2800us) == 300us);
    // Four slow pings in a row: the backend did move away; the average follows.
    CHECK(ping(2600us) == 740us); // 300 + 0.2 x (2500 - 300)
    CHECK(ping(2600us) > 740us);
}

TEST_CASE("#11: a SQL Server probe row: role, lag and LSN position", "[pool][tds]") {
    using sluice::pool::compare_lsn;
    using sluice::pool::tds_probe_result;
    using sluice::pool::TdsProbeRow;
    // The primary replica of an availability group.
    TdsProbeRow primary{"sql1",
                        "READ_WRITE",
                        "1",
                        std::nullopt,
                        "4200000000000012300001",
                        "4200000000000012300001",
                        "SYNCHRONIZED"};
    auto p = tds_probe_result(primary);
    CHECK(p.reachable);
    CHECK_FALSE(p.read_only);
    CHECK(p.gtid_position == "4200000000000012300001");
    CHECK_FALSE(p.replication.has_value());
    // A readable secondary, 3 s behind, at an older LSN.
    TdsProbeRow secondary{
        "sql2",         "READ_ONLY", "0", "3", "4200000000000012300001", "4200000000000011900001",
        "SYNCHRONIZING"};
    auto s = tds_probe_result(secondary);
    CHECK(s.read_only);
    CHECK(s.gtid_position == "4200000000000011900001");
    REQUIRE(s.replication.has_value());
    CHECK(s.replication->io_running);
    CHECK(s.replication->sql_running);
    CHECK(s.replication->seconds_behind == 3);
    // Not synchronizing: out of rotation like a replica whose threads stopped.
    secondary.synchronization_state = "NOT SYNCHRONIZING";
    CHECK_FALSE(tds_probe_result(secondary).replication->sql_running);
    // Outside an availability group: no replication to judge; updateability decides.
    TdsProbeRow standalone{"sql3",       "READ_WRITE", std::nullopt, std::nullopt,
                           std::nullopt, std::nullopt, std::nullopt};
    auto n = tds_probe_result(standalone);
    CHECK_FALSE(n.read_only);
    CHECK_FALSE(n.replication.has_value());
    CHECK(n.gtid_position.empty());
    // LSNs are numeric(25,0): compared as numbers, not as text.
    CHECK(compare_lsn("9", "10") < 0);
    CHECK(compare_lsn("0010", "10") == 0);
    CHECK(compare_lsn("4200000000000012300001", "4200000000000011900001") > 0);
    CHECK(compare_lsn("", "1") < 0);
    CHECK(compare_lsn("abc", "") == 0);
}
