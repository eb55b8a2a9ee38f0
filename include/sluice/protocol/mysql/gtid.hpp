#pragma once
// GTID positions as MariaDB and MySQL write them, and whether one includes another: what
// read-your-writes (router) and the monitor's heartbeat (pool) compare.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::protocol::mysql {

/// One replication stream's progress in a GTID position: MariaDB `domain-server-seq` (the
/// highest sequence number of a domain) or MySQL `uuid:interval[:interval...]` (the
/// transactions of one source).
struct GtidStream {
    std::string source; ///< MariaDB: the domain id as written; MySQL: the source uuid
    /// MariaDB: one interval [1, seq]; MySQL: the intervals as written (inclusive).
    std::vector<std::pair<std::uint64_t, std::uint64_t>> intervals;
};

/// A GTID position or set as servers write it (`@@gtid_current_pos`, `@@gtid_executed`,
/// the `last_gtid` a MariaDB OK packet tracks, MySQL's OWN_GTID): comma-separated streams,
/// spaces and newlines ignored. nullopt when the text is neither form.
std::optional<std::vector<GtidStream>> parse_gtid_position(std::string_view text);

/// Whether `position` includes every transaction of `token` (a GTID or a set). An empty
/// token is covered by anything; text that does not parse covers nothing and is covered by
/// nothing (the safe side).
bool gtid_covers(std::string_view position, std::string_view token);

} // namespace sluice::protocol::mysql
