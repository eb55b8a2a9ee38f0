#pragma once

#include "sluice/router/session_state.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// The SQL text Sluice writes itself for MySQL and MariaDB backends (state replay,
/// read-your-writes waits, GTID tracking, KILL), and the client statements it answers on
/// its own. A T-SQL dialect will sit beside it.
namespace sluice::router::mysql_dialect {

/// A string literal: quotes doubled, backslashes escaped (valid whatever
/// NO_BACKSLASH_ESCAPES says, since the text holds no backslash otherwise).
std::string quote_string(std::string_view s);

/// The statements that bring a backend to the session's state, in order (without the
/// database: that is COM_INIT_DB): each standalone assignment, then one SET of the rest.
std::vector<std::string> replay_statements(const ReplayPlan& plan);

/// Waits up to `timeout` for a GTID on a replica; the result is one row, "0" when it was
/// applied in time. MariaDB: MASTER_GTID_WAIT; MySQL 8: WAIT_FOR_EXECUTED_GTID_SET.
std::string causal_wait(std::string_view gtid, std::chrono::milliseconds timeout, bool mariadb);

/// Switches on the reporting of each write's GTID in OK packets, keeping the client's own
/// tracked variables (MariaDB: last_gtid in session_track_system_variables; MySQL 8:
/// session_track_gtids = OWN_GTID).
std::string_view track_gtids(bool mariadb) noexcept;

/// Puts IGNORE_SPACE back into the session's sql_mode (a login with CLIENT_IGNORE_SPACE has
/// it; COM_RESET_CONNECTION drops it).
std::string_view add_ignore_space() noexcept;

/// A statement that empties the session's diagnostics area (warnings, errors) and returns
/// no rows: one that uses a table (a derived one), since statements that use none keep it.
std::string_view clear_diagnostics() noexcept;

/// One row, one column: 1 when the current user may kill other users' threads (SUPER or
/// CONNECTION ADMIN), else 0.
std::string_view may_kill_others() noexcept;

/// KILL [QUERY | CONNECTION] of a backend thread.
std::string kill(bool query, std::uint64_t thread);

/// Ends a read-only transaction on a replica (an implicit commit the primary saw).
std::string_view commit() noexcept;

/// A client's `KILL [HARD|SOFT] [CONNECTION | QUERY [ID]] n`.
struct KillStatement {
    bool query = false;
    std::uint64_t target = 0;
};
/// The plain form only (no comments, no KILL USER, no expression): anything else is
/// nullopt and goes to the server as written.
std::optional<KillStatement> parse_kill(std::string_view sql);

} // namespace sluice::router::mysql_dialect
