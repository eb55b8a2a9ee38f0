#include "sluice/cache/versions.hpp"

namespace sluice::cache {

void TableState::store_max(std::atomic<std::uint64_t>& a, std::uint64_t v) noexcept {
    std::uint64_t seen = a.load(std::memory_order_relaxed);
    while (seen < v && !a.compare_exchange_weak(seen, v, std::memory_order_release,
                                                std::memory_order_relaxed)) {
    }
}

void TableState::bump(std::uint64_t needs) noexcept {
    store_max(needs_, needs);
    version_.fetch_add(1, std::memory_order_acq_rel);
}

void TableState::raise_to(std::uint64_t version, std::uint64_t needs) noexcept {
    store_max(needs_, needs);
    store_max(version_, version);
}

TableVersions::TableVersions() { all_ = &table(all_tables); }

TableState& TableVersions::table(std::string_view name) {
    const std::lock_guard lock(mutex_);
    auto it = map_.find(name);
    if (it == map_.end())
        it = map_.emplace(std::string(name), std::make_unique<TableState>(std::string(name))).first;
    return *it->second;
}

void TableVersions::for_each(const std::function<void(TableState&)>& f) {
    const std::lock_guard lock(mutex_);
    for (const auto& entry : map_)
        f(*entry.second);
}

std::size_t TableVersions::size() const {
    const std::lock_guard lock(mutex_);
    return map_.size();
}

} // namespace sluice::cache
