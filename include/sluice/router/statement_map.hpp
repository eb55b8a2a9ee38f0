#pragma once

#include "sluice/router/classify.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::router {

/// A prepared statement as the client sees it (one id, Sluice's) and as each backend
/// connection of the session has it (its own id there).
struct PreparedStatement {
    /// Backend connections a session holds (the primary's, a replica's); pooling makes these
    /// leases, each with its own map.
    static constexpr std::size_t slots = 2;

    Classification cls;
    std::string sql;
    std::string digest; ///< only with query rules
    std::uint16_t params = 0;
    std::array<std::uint32_t, slots> id{};            ///< the backend's own statement id
    std::array<std::uint32_t, slots> generation{};    ///< connection it was prepared on; 0: none
    std::vector<std::uint8_t> types;                  ///< parameter types last bound by the client
    std::array<bool, slots> types_sent{};             ///< that backend has seen `types`
    std::vector<std::vector<std::uint8_t>> long_data; ///< COM_STMT_SEND_LONG_DATA payloads
    int last_slot = -1;                               ///< where it last ran (fetch, reset)
    bool cursor_open = false; ///< its last execution left a cursor open (rows to fetch)
    std::string pool_key;     ///< pooled connections' cache key (Sluice's; empty: not made yet)
    std::uint64_t pool_key_version = 0; ///< the session state version pool_key was made at

    /// Whether it is prepared on the connection of `generation` in `slot`.
    bool prepared_on(std::size_t slot, std::uint32_t connection_generation) const noexcept {
        return generation[slot] != 0 && generation[slot] == connection_generation;
    }
    /// Records the backend's id after a successful prepare there.
    void prepared(std::size_t slot, std::uint32_t backend_id, std::uint32_t connection_generation,
                  std::uint16_t param_count) noexcept {
        params = param_count;
        id[slot] = backend_id;
        generation[slot] = connection_generation;
        types_sent[slot] = false;
    }
    /// The client bound new parameter types: no backend has seen them yet.
    void bind_types(std::vector<std::uint8_t> new_types) {
        types = std::move(new_types);
        types_sent.fill(false);
    }
};

/// The session's prepared statements by the ids Sluice gave the client. Ids count up from 1,
/// never 0 (wrapping after 2^32 - 1), and stay unique while a statement lives.
class StatementMap {
public:
    /// Takes a statement the backend prepared; returns the client's id for it.
    std::uint32_t add(PreparedStatement ps);
    /// Null when the client never had this id or closed it.
    PreparedStatement* find(std::uint32_t id) noexcept;
    bool erase(std::uint32_t id) noexcept { return map_.erase(id) != 0; }
    /// COM_RESET_CONNECTION / COM_CHANGE_USER: every statement is gone (ids keep counting).
    void clear() noexcept { map_.clear(); }
    std::size_t size() const noexcept { return map_.size(); }

private:
    std::unordered_map<std::uint32_t, PreparedStatement> map_;
    std::uint32_t next_id_ = 1;
};

} // namespace sluice::router
