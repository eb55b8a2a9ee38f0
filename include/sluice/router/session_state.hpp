#pragma once

#include "sluice/router/classify.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::router {

/// A session-state assignment that backends must replay: "SET " + text.
struct Assignment {
    std::string key;  ///< what it sets: "@name", "names", a variable name, "role"
    std::string text; ///< the assignment after "SET "
    std::uint64_t version = 0;
    bool standalone = false; ///< SET TRANSACTION / SET ROLE: a statement of its own
};

/// What a backend whose state is at an older version must run, in order: the database
/// (COM_INIT_DB), each standalone assignment as its own SET, then the others in one SET.
/// The views are valid until the SessionState changes.
struct ReplayPlan {
    std::string_view database; ///< empty: the backend has the session's database
    std::vector<std::string_view> standalone;
    std::vector<std::string_view> combined;
    bool empty() const noexcept {
        return database.empty() && standalone.empty() && combined.empty();
    }
};

/// State that lives on the primary only and keeps the session's statements there.
struct Pins {
    bool temp_tables = false; ///< temp_table_count > 0
    int temp_table_count = 0; ///< CREATE TEMPORARY less DROP TEMPORARY (never below 0)
    bool lock_tables = false;
    bool found_rows_pending = false;    ///< SQL_CALC_FOUND_ROWS until FOUND_ROWS()
    bool unreplayable_variable = false; ///< a value Sluice cannot replay (an expression, `?`)
    bool user_variables_hidden = false; ///< a CALL / compound block / EXECUTE ran: @vars unknown
    bool lexer_unsafe_charset = false;  ///< big5, sjis ...: text cannot be classified safely
    int user_locks = 0;                 ///< GET_LOCK not yet released
    int handlers = 0;                   ///< HANDLER ... OPEN not yet closed
};

/// What SessionState::apply found a statement did.
struct Applied {
    bool state_changed = false;    ///< the version moved: other backends are now behind
    bool database_changed = false; ///< USE: the backend that ran it has the new database
    bool tracking_changed = false; ///< session_track_* set: the GTID tracking must be re-added
};

/// What a MySQL session has changed that a backend must know before it serves the session
/// (DESIGN.md "Routing contract": settings tracked and replayed, pins). Pure: no I/O. Each
/// change moves a version; a backend that has applied version v gets `replay_since(v)`.
class SessionState {
public:
    /// The session after login: its database and character set (collation id) from the
    /// handshake.
    void start(std::string database, std::uint8_t charset) noexcept;

    /// Records what a statement that succeeded changed (its classification).
    Applied apply(const Classification& c);
    /// COM_RESET_CONNECTION / COM_CHANGE_USER: assignments, pins and sql_mode gone (the
    /// database and character set stay; change_user sets them with start()).
    void reset() noexcept;
    /// The primary connection died with its state: pins and hidden variables are gone; the
    /// assignments stay and are replayed on the next connection.
    void forget_primary_state() noexcept;

    /// What a backend at version `synced` with database `backend_database` must run.
    ReplayPlan replay_since(std::uint64_t synced, std::string_view backend_database) const;

    /// Whether anything keeps the session on the primary (pins, an unsafe character set).
    bool pinned() const noexcept;
    /// Whether the primary connection holds state a new connection cannot be given.
    bool holds_primary_only_state() const noexcept;

    std::uint64_t version() const noexcept { return version_; }
    const std::string& database() const noexcept { return database_; }
    std::uint8_t charset() const noexcept { return charset_; }
    SqlMode sql_mode() const noexcept { return sql_mode_; }
    /// From the primary's status flags after each statement it ran.
    void set_no_backslash_escapes(bool on) noexcept { sql_mode_.no_backslash_escapes = on; }
    bool auto_is_null() const noexcept { return auto_is_null_; }
    const Pins& pins() const noexcept { return pins_; }
    const std::vector<Assignment>& assignments() const noexcept { return assignments_; }
    /// After CALL, a compound block or EXECUTE: user variables may have changed unseen.
    void hide_user_variables() noexcept { pins_.user_variables_hidden = true; }

private:
    void record(std::string key, std::string text, bool standalone, std::uint64_t version);

    std::string database_;
    std::uint8_t charset_ = 45;
    std::vector<Assignment> assignments_;
    std::uint64_t version_ = 1;
    SqlMode sql_mode_;
    bool auto_is_null_ = false; ///< SQL_AUTO_IS_NULL = 1
    Pins pins_;
};

/// Whether a character set's multi-byte characters may contain 0x5C ('\'), so its text
/// cannot be lexed byte by byte: by name (as SET NAMES writes it) or by collation id.
bool lexer_unsafe_charset(std::string_view charset_text) noexcept;
bool lexer_unsafe_charset(std::uint8_t collation) noexcept;

} // namespace sluice::router
