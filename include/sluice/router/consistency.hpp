#pragma once
// The consistency decision (DESIGN.md "Routing contract"): whether a replica may serve a read
// that must see the writes up to a causal token (a GTID from the primary's OK packets).

#include <cstdint>
#include <string_view>

namespace sluice::router {

enum class Freshness : std::uint8_t {
    fresh,    ///< known to have applied the token: read there at once
    wait_for, ///< not known: wait for the token there (bounded), or read on the primary
};

/// `token`: the GTID the read must see (empty: none); `known_applied`: the position the
/// replica is known to have applied (from the monitor or from a successful wait).
Freshness freshness(std::string_view token, std::string_view known_applied);

} // namespace sluice::router
