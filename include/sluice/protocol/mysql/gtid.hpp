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
    std::string server; ///< MariaDB: the server id of the GTID; MySQL: empty
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

/// The newest transaction seen per stream (MariaDB domain, MySQL source): what a read must
/// see to include every write acknowledged so far. GTIDs of one stream are assigned in order
/// (MariaDB sequence numbers per domain, MySQL numbers per source), so the newest stands for
/// all before it.
class GtidWatermark {
public:
    /// Takes a GTID (or a position) in; false when nothing advanced or it does not parse.
    bool advance(std::string_view gtid);
    /// The watermark as a position servers accept (MASTER_GTID_WAIT, WAIT_FOR_EXECUTED_GTID_SET):
    /// MariaDB `domain-server-seq`, MySQL `uuid:1-N`, comma-separated; empty when nothing
    /// was seen.
    const std::string& text() const noexcept { return text_; }

private:
    struct Head {
        std::string source, server;
        std::uint64_t seq = 0;
        bool mysql = false;
    };
    std::vector<Head> heads_;
    std::string text_;
};

} // namespace sluice::protocol::mysql
