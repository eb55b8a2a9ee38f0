#include "binlog_sync.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

namespace sluice {

BinlogSync::BinlogSync(Shared& shared, Worker& worker) : shared_(shared), worker_(worker) {
    const auto& m = shared.cfg.monitor;
    if (m.enabled && !m.heartbeat_table.empty()) {
        heartbeat_ = m.heartbeat_database + "." + m.heartbeat_table;
        std::transform(heartbeat_.begin(), heartbeat_.end(), heartbeat_.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
}

void BinlogSync::follow(std::size_t index) {
    {
        const std::lock_guard lock(mutex_);
        if (index == index_ || index >= shared_.backends.size() || stopped_) return;
        index_ = index;
    }
    if (switcher_.joinable()) switcher_.join();
    switcher_ = std::thread([this, index] { switch_to(index); });
}

void BinlogSync::switch_to(std::size_t index) {
    const std::lock_guard lock(mutex_);
    if (stopped_ || index != index_) return; // another change came meanwhile
    std::string from;
    if (follower_) {
        from = follower_->position();
        follower_->stop();
        follower_.reset();
    }
    const auto& cfg = shared_.cfg.cache.binlog;
    const pool::BackendEndpoint& ep = shared_.backends[index]->endpoint;
    cache::BinlogOptions o;
    o.host = ep.host;
    o.port = ep.port;
    o.user = cfg.user;
    o.password = cfg.password;
    // Unique among the primary's replicas: a second one with the same id and the primary
    // ends the first one's stream (error 4052). The configured id, else one from the pid.
    o.server_id = cfg.server_id != 0
                      ? cfg.server_id
                      : (0x53u << 24) | (static_cast<std::uint32_t>(::getpid()) & 0xffffffu);
    o.start_position = std::move(from);
    auto on_change = [this](cache::BinlogChange c) {
        if (!heartbeat_.empty()) {
            std::erase(c.tables, heartbeat_);
            if (c.tables.empty() && !c.all) return; // only the monitor's heartbeat
        }
        if (c.timestamp != 0) {
            const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
            shared_.cache.binlog_lag_s.store(std::max<std::int64_t>(0, now - c.timestamp),
                                             std::memory_order_relaxed);
        }
        // The follower's thread: the bump runs on the sync worker.
        asio::post(worker_.io(), [w = &worker_, c = std::move(c)]() mutable {
            w->cache().binlog_change(std::move(c), w->shared().acked);
        });
    };
    auto on_state = [this, name = ep.name](bool up, std::string why) {
        shared_.cache.binlog_up.store(up, std::memory_order_relaxed);
        if (up)
            spdlog::info("cache: following the binary log of {}", name);
        else
            spdlog::warn("cache: the binary log of {} cannot be followed ({}): writes made around "
                         "Sluice invalidate by TTL only until it can",
                         name, why);
    };
    follower_ = std::make_unique<cache::BinlogFollower>(std::move(o), std::move(on_change),
                                                        std::move(on_state));
    follower_->start();
}

void BinlogSync::stop() {
    {
        const std::lock_guard lock(mutex_);
        stopped_ = true;
    }
    if (switcher_.joinable()) switcher_.join();
    const std::lock_guard lock(mutex_);
    if (follower_) follower_->stop();
    follower_.reset();
}

} // namespace sluice
