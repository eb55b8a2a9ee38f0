#include "sluice/router/session_state.hpp"

#include <algorithm>
#include <cctype>

namespace sluice::router {

namespace {

bool contains_nocase(std::string_view text, std::string_view word) {
    return std::search(text.begin(), text.end(), word.begin(), word.end(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(b));
           }) != text.end();
}

/// Whether the value of an assignment `name = value` (as a SessionChange holds it) turns a
/// boolean variable on: 1, ON, TRUE, quoted or not. Anything else (0, OFF, DEFAULT, an
/// expression) reads as off.
bool assigns_true(std::string_view assignment) {
    const auto eq = assignment.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view v = assignment.substr(eq + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\'' || v.front() == '"'))
        v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\'' || v.back() == '"'))
        v.remove_suffix(1);
    const auto is = [v](std::string_view word) {
        return v.size() == word.size() && contains_nocase(v, word);
    };
    return is("1") || is("on") || is("true");
}

} // namespace

bool lexer_unsafe_charset(std::string_view charset_text) noexcept {
    for (std::string_view cs : {"big5", "cp932", "gbk", "sjis", "gb18030"}) {
        if (contains_nocase(charset_text, cs)) return true;
    }
    return false;
}

bool lexer_unsafe_charset(std::uint8_t collation) noexcept {
    // big5 (1, 84), sjis (13, 88), gbk (28, 87), cp932 (95, 96), gb18030 (248-250).
    switch (collation) {
    case 1:
    case 84:
    case 13:
    case 88:
    case 28:
    case 87:
    case 95:
    case 96:
    case 248:
    case 249:
    case 250:
        return true;
    default:
        return false;
    }
}

void SessionState::start(std::string database, std::uint8_t charset) noexcept {
    database_ = std::move(database);
    charset_ = charset;
}

void SessionState::record(std::string key, std::string text, bool standalone,
                          std::uint64_t version) {
    // The latest assignment of a key replaces the earlier one and moves to the end, so the
    // replay order keeps the effect of the order the client used.
    std::erase_if(assignments_, [&](const Assignment& a) { return a.key == key; });
    assignments_.push_back({std::move(key), std::move(text), version, standalone});
}

Applied SessionState::apply(const Classification& c) {
    using Kind = SessionChange::Kind;
    Applied applied;
    if (c.flags.has_placeholder && !c.session_changes.empty()) {
        // A prepared SET of `?`: the value is in the execute's binary parameters, not in the
        // text, so the text cannot be replayed; the primary keeps the session.
        pins_.unreplayable_variable = true;
        return applied;
    }
    const std::uint64_t next = version_ + 1;
    if (c.cls == StatementClass::use && !c.use_database.empty()) {
        database_ = c.use_database;
        applied.database_changed = true;
        applied.state_changed = true;
    }
    if (!c.global_set) {
        for (const auto& ch : c.session_changes) {
            switch (ch.kind) {
            case Kind::autocommit:
            case Kind::transaction_next:
                // The primary's status flags say whether a transaction is open; replicas stay
                // in autocommit. SET TRANSACTION applies to the next transaction only.
                continue;
            case Kind::user_variable:
                if (!ch.value_is_constant) {
                    // Replaying an expression would compute it again elsewhere: the value
                    // lives on the primary, and so does the session from now on.
                    pins_.unreplayable_variable = true;
                    continue;
                }
                record("@" + ch.name, ch.text, false, next);
                break;
            case Kind::names:
            case Kind::character_set:
                if (lexer_unsafe_charset(ch.text)) pins_.lexer_unsafe_charset = true;
                record("names", ch.text, false, next);
                break;
            case Kind::system_variable:
                if (ch.name == "sql_mode") sql_mode_.ansi_quotes = contains_nocase(ch.text, "ansi");
                if (ch.name == "session_track_system_variables" || ch.name == "session_track_gtids")
                    applied.tracking_changed = true;
                if (ch.name.starts_with("character_set") && lexer_unsafe_charset(ch.text))
                    pins_.lexer_unsafe_charset = true;
                if (ch.name == "sql_auto_is_null") auto_is_null_ = assigns_true(ch.text);
                record(ch.name, ch.text, false, next);
                break;
            case Kind::transaction_isolation:
                record(ch.name, ch.text, true, next);
                break;
            case Kind::role:
                record("role", ch.text, true, next);
                break;
            }
            applied.state_changed = true;
        }
    }
    if (applied.state_changed) version_ = next;

    const auto& f = c.flags;
    // Counted, so the pin ends once they are dropped. A DROP TEMPORARY TABLE IF EXISTS of a
    // table that never existed counts too: the session's pooled connection is reset before
    // another session uses it (DESIGN: nothing of one session reaches another).
    if (f.creates_temp_table) ++pins_.temp_table_count;
    if (f.drops_temp_table && pins_.temp_table_count > 0) --pins_.temp_table_count;
    pins_.temp_tables = pins_.temp_table_count > 0;
    if (f.takes_user_lock) ++pins_.user_locks;
    if (f.releases_user_lock && pins_.user_locks > 0) --pins_.user_locks;
    if (c.cls == StatementClass::lock_tables) pins_.lock_tables = true;
    if (c.cls == StatementClass::unlock_tables) pins_.lock_tables = false;
    if (f.calc_found_rows)
        pins_.found_rows_pending = true;
    else if (f.found_rows)
        pins_.found_rows_pending = false;
    if (f.opens_handler) ++pins_.handlers;
    if (f.closes_handler && pins_.handlers > 0) --pins_.handlers;
    if (f.assigns_user_variable) pins_.unreplayable_variable = true;
    return applied;
}

void SessionState::reset() noexcept {
    assignments_.clear();
    ++version_;
    pins_ = {};
    auto_is_null_ = false;
    sql_mode_ = {};
}

void SessionState::forget_primary_state() noexcept {
    // The assignments stay: they are replayed on the next connection like anywhere else.
    pins_.temp_tables = pins_.lock_tables = pins_.found_rows_pending = false;
    pins_.temp_table_count = 0;
    pins_.unreplayable_variable = pins_.user_variables_hidden = false;
    pins_.user_locks = pins_.handlers = 0;
}

ReplayPlan SessionState::replay_since(std::uint64_t synced,
                                      std::string_view backend_database) const {
    ReplayPlan plan;
    if (!database_.empty() && backend_database != database_) plan.database = database_;
    for (const Assignment& a : assignments_) {
        if (a.version <= synced) continue;
        (a.standalone ? plan.standalone : plan.combined).push_back(a.text);
    }
    return plan;
}

bool SessionState::pinned() const noexcept {
    return pins_.temp_tables || pins_.lock_tables || pins_.found_rows_pending ||
           pins_.unreplayable_variable || pins_.lexer_unsafe_charset ||
           lexer_unsafe_charset(charset_) || pins_.user_locks > 0 || pins_.handlers > 0;
}

bool SessionState::holds_primary_only_state() const noexcept {
    return pins_.temp_tables || pins_.lock_tables || pins_.user_locks > 0 || pins_.handlers > 0 ||
           pins_.unreplayable_variable || pins_.user_variables_hidden;
}

} // namespace sluice::router
