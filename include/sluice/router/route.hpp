#pragma once
// The routing decision (issue #3): a pure function of the statement's classification, the
// session's state, the query rules and whether a replica is available. No sockets, no clock.

#include "sluice/router/classify.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace re2 {
class RE2;
}

namespace sluice::router {

enum class Destination : std::uint8_t { primary, replica, refuse };

/// Why a statement goes where it goes; a label of sluice_router_routes_total.
enum class RouteReason : std::uint8_t {
    read,             ///< a plain read: a replica
    write,            ///< writes, DDL, anything that changes data or the server
    transaction,      ///< inside a read-write transaction, or starting/ending one
    pin,              ///< the session holds state on the primary (temp table, lock, ...)
    rule,             ///< a query rule decided
    hint,             ///< a /* sluice: ... */ hint decided
    locking_read,     ///< FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE
    primary_function, ///< LAST_INSERT_ID(), GET_LOCK(), NEXTVAL() ... or SELECT ... INTO
    multi_statement,  ///< several statements in one COM_QUERY
    session_command,  ///< SET / USE: run where the session is, replayed elsewhere later
    unclassified,     ///< the lexer could not classify it: the primary
    no_replica,       ///< a replica was wanted but none is available: fallback to the primary
    diagnostics,      ///< SHOW WARNINGS, FOUND_ROWS() ...: where the previous statement ran
    read_your_writes, ///< the replica did not show the session's last write in time: primary
    catalog,          ///< SHOW CREATE / TABLE STATUS / INDEX, information_schema: the primary
    cache,            ///< answered from the result cache: no backend
    count_
};
const char* route_reason_name(RouteReason r) noexcept;

/// One query rule as configured: matched in order; the first match decides.
struct RuleSpec {
    std::string name;
    std::string match_digest; ///< RE2 pattern, searched in the digest text; empty: any
    std::string user;         ///< exact user name; empty: any
    std::string schema;       ///< exact current database; empty: any
    Destination route = Destination::primary;
    std::uint16_t error_code = 1105; ///< for refuse (ER_UNKNOWN_ERROR)
    std::string error_message = "Query refused by a Sluice rule";
    std::optional<std::uint32_t> max_lag_ms;
    std::optional<Consistency> consistency; ///< for the reads it matches
    /// Cache rules only ([[cache_rules]], matched as a RuleSet of their own): how long the
    /// reads it matches stay cached (0: never), and whether users share the entries.
    std::uint32_t cache_ttl_ms = 0;
    bool cache_shared = false;
};

/// Compiled rules. Build once per configuration; matching allocates nothing.
class RuleSet {
public:
    /// Compiles the rules; a pattern RE2 refuses comes back as its error text with the rule's
    /// index (config validation checks patterns first, so this is a second line of defence).
    static std::variant<RuleSet, std::string> compile(std::vector<RuleSpec> specs);
    RuleSet();
    RuleSet(RuleSet&&) noexcept;
    RuleSet& operator=(RuleSet&&) noexcept;
    ~RuleSet();

    /// The first rule that matches, or nullptr.
    const RuleSpec* match(std::string_view digest_text, std::string_view user,
                          std::string_view schema) const;
    bool empty() const noexcept { return specs_.empty(); }

private:
    std::vector<RuleSpec> specs_;
    std::vector<std::unique_ptr<re2::RE2>> patterns_; // null where match_digest is empty
};

/// What the router needs to know about the session.
struct SessionView {
    bool in_transaction = false;        ///< explicit BEGIN, autocommit=0, or the server's flag
    bool read_only_transaction = false; ///< START TRANSACTION READ ONLY, on a replica
    bool pinned = false; ///< temp tables, user locks, LOCK TABLES, FOUND_ROWS pending
    std::string_view user;
    std::string_view schema;
    /// The session's previous statement ran on its replica (diagnostics go there too).
    bool last_on_replica = false;
    /// A statement Sluice could not see into (CALL, a compound block, EXECUTE) may have set
    /// user variables: statements that read them go to the primary.
    bool user_variables_on_primary = false;
    /// SQL_AUTO_IS_NULL is on: `id IS NULL` means the row the primary inserted last.
    bool auto_is_null = false;
};

struct Route {
    Route() = default;
    Route(Destination d, RouteReason r, std::optional<std::uint32_t> lag = std::nullopt,
          const RuleSpec* decided_by = nullptr) noexcept
        : destination(d), reason(r), max_lag_ms(lag), rule(decided_by) {}

    Destination destination = Destination::primary;
    RouteReason reason = RouteReason::write;
    std::optional<std::uint32_t> max_lag_ms; ///< from a hint or rule (replica reads)
    const RuleSpec* rule = nullptr;          ///< the rule that decided (refuse: its error)
    bool operator==(const Route&) const = default;
};

/// Decides where one statement runs (DESIGN.md "Routing contract"):
/// a read-write transaction and pins keep everything on the primary; a read-only transaction
/// keeps everything on its replica (writes get that server's own refusal) except what takes
/// primary state (user locks, temporary tables); then the first
/// matching rule; then a hint; then the statement's own class. A rule or hint can send a
/// statement to the primary, never a write or a locking read to a replica. A statement that
/// reads the previous statement's diagnostics (SHOW WARNINGS, FOUND_ROWS(), ROW_COUNT())
/// goes where that one ran. A replica destination falls back to the primary when
/// `replica_available` is false.
Route decide_route(const Classification& c, std::string_view digest_text, const SessionView& s,
                   const RuleSet& rules, bool replica_available);

} // namespace sluice::router
