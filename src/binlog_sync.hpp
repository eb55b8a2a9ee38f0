#pragma once
// The cache's binary log follower in the daemon (issue #9 "Invalidation"): follows the
// primary the topology names, and turns each transaction it sees into a bump on the sync
// worker, so writes made around Sluice invalidate too.

#include "server.hpp"
#include "sluice/cache/binlog.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace sluice {

class BinlogSync {
public:
    /// `worker`: the one that keeps the versions in step with Redis (worker 0).
    BinlogSync(Shared& shared, Worker& worker);
    BinlogSync(const BinlogSync&) = delete;
    BinlogSync& operator=(const BinlogSync&) = delete;
    ~BinlogSync() { stop(); }

    /// Follows backend `index` (the primary), from where the previous follower stopped
    /// when there was one, else from the primary's current position. Any thread; returns at
    /// once (a change of primary is made on a thread of its own: stopping a follower that
    /// is reconnecting to a dead primary can take its connect timeout).
    void follow(std::size_t index);
    void stop();

private:
    void switch_to(std::size_t index);
    std::thread switcher_;
    Shared& shared_;
    Worker& worker_;
    std::string heartbeat_; ///< the monitor's own writes, not worth a bump each beat
    std::mutex mutex_;
    std::unique_ptr<cache::BinlogFollower> follower_;
    std::size_t index_ = static_cast<std::size_t>(-1);
    bool stopped_ = false;
};

} // namespace sluice
