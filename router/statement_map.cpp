#include "sluice/router/statement_map.hpp"

namespace sluice::router {

std::uint32_t StatementMap::add(PreparedStatement ps) {
    // After a wrap an id may still be taken by a statement that has lived that long.
    while (next_id_ == 0 || map_.contains(next_id_))
        ++next_id_;
    const std::uint32_t id = next_id_++;
    map_.insert_or_assign(id, std::move(ps));
    return id;
}

PreparedStatement* StatementMap::find(std::uint32_t id) noexcept {
    auto it = map_.find(id);
    return it == map_.end() ? nullptr : &it->second;
}

} // namespace sluice::router
