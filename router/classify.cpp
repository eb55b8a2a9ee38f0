// classify(): the per-statement driver that combines each statement's class into one, and the
// token scan that sets the flags a token can raise wherever it stands.
#include "sluice/router/classify.hpp"

#include "classify_internal.hpp"
#include "hint.hpp"

namespace sluice::router::detail {

namespace {

constexpr bool is_boundary(StatementClass c) noexcept {
    switch (c) {
    case StatementClass::begin:
    case StatementClass::begin_read_only:
    case StatementClass::commit:
    case StatementClass::rollback:
    case StatementClass::lock_tables:
    case StatementClass::unlock_tables:
        return true;
    default:
        return false;
    }
}

/// Strength of a class that is neither unknown nor a boundary (see Classification).
constexpr int strength(StatementClass c) noexcept {
    switch (c) {
    case StatementClass::ddl:
        return 7;
    case StatementClass::write:
        return 6;
    case StatementClass::other:
        return 5;
    case StatementClass::savepoint:
        return 4;
    case StatementClass::prepare_sql:
        return 3;
    case StatementClass::session_set:
        return 2;
    case StatementClass::use:
        return 1;
    default:
        return 0;
    }
}

} // namespace

void Classifier::advance() noexcept {
    prev_kw_[2] = prev_kw_[1];
    prev_kw_[1] = prev_kw_[0];
    prev_kw_[0] = kw_;
    prev_attrs_ = attrs_;
    prev_word_ = tok_.kind == TokenKind::word;
    prev_after_dot_ = after_dot_;
    after_dot_ = tok_.is_op('.');
    prev_var_ = var_read_;
    var_read_ = false;
    for (;;) {
        tok_ = lex_.next();
        if (tok_.kind != TokenKind::comment) break;
        if (!seen_code_) detail::parse_hint_comment(tok_.text, out_.hint);
    }
    kw_ = Kw::none;
    attrs_ = 0;
    if (tok_.kind == TokenKind::error) error_ = true;
    if (tok_.kind != TokenKind::end && tok_.kind != TokenKind::error) seen_code_ = true;
    scan();
}

// Flags that do not depend on where in the statement a token stands.
void Classifier::scan() noexcept {
    StatementFlags& f = out_.flags;
    const bool suppress = suppress_var_;
    suppress_var_ = false;
    const bool after_is = word_is_;
    word_is_ = false;
    switch (tok_.kind) {
    case TokenKind::placeholder:
        f.has_placeholder = true;
        break;
    case TokenKind::quoted_ident:
        if (detail::iequals(tok_.text, "`INFORMATION_SCHEMA`") ||
            detail::iequals(tok_.text, "\"INFORMATION_SCHEMA\""))
            f.reads_catalog = true;
        break;
    case TokenKind::word: {
        if (const detail::KeywordInfo* k = detail::lookup_keyword(tok_.text, tok_.hash)) {
            kw_ = k->kw;
            attrs_ = k->attrs;
        }
        word_is_ = detail::iequals(tok_.text, "IS");
        if (after_is && kw_ == Kw::null_) f.tests_is_null = true;
        if (detail::iequals(tok_.text, "INFORMATION_SCHEMA")) f.reads_catalog = true;
        const bool skip_lock = skip_lock_;
        skip_lock_ = false;
        if ((attrs_ & attr::nondet_bare) && !after_dot_) f.non_deterministic = true;
        if (kw_ == Kw::none) break;
        switch (kw_) {
        case Kw::update:
        case Kw::share:
            if (prev_kw_[0] == Kw::for_ && !skip_lock) f.locking_read = true;
            break;
        case Kw::mode:
            if (prev_kw_[0] == Kw::share && prev_kw_[1] == Kw::in && prev_kw_[2] == Kw::lock)
                f.locking_read = true;
            break;
        case Kw::for_:
            if (prev_kw_[0] == Kw::value &&
                (prev_kw_[1] == Kw::next || prev_kw_[1] == Kw::previous)) {
                f.primary_function = true; // NEXT VALUE FOR s / PREVIOUS VALUE FOR s
                f.non_deterministic = true;
                skip_lock_ = true;
            }
            break;
        case Kw::into:
            saw_into_ = true;
            break;
        case Kw::sql_calc_found_rows:
            f.calc_found_rows = true;
            break;
        case Kw::nextval:
        case Kw::currval:
        case Kw::lastval:
            if (after_dot_) { // s.nextval (MariaDB, Oracle mode)
                f.primary_function = true;
                f.non_deterministic = true;
            }
            break;
        default:
            break;
        }
        break;
    }
    case TokenKind::op:
        if (tok_.is_op('(')) {
            ++depth_;
            // A call of a built-in: `name(` where name is not qualified (db.now() is a
            // stored function).
            if (prev_word_ && !prev_after_dot_ && prev_attrs_ != 0) {
                if (prev_attrs_ & attr::nondet_call) f.non_deterministic = true;
                if (prev_attrs_ & attr::primary_call) f.primary_function = true;
                switch (prev_kw_[0]) {
                case Kw::get_lock:
                    f.takes_user_lock = true;
                    break;
                case Kw::release_lock:
                case Kw::release_all_locks:
                    f.releases_user_lock = true;
                    break;
                case Kw::found_rows:
                    f.found_rows = true;
                    f.reads_diagnostics = true;
                    break;
                case Kw::row_count:
                    f.reads_diagnostics = true;
                    break;
                default:
                    break;
                }
            }
        } else if (tok_.is_op(')')) {
            if (depth_ > 0) --depth_;
        } else if (prev_var_ && tok_.text == ":=") {
            f.assigns_user_variable = true; // SELECT @n := @n + 1
        }
        break;
    case TokenKind::user_var:
        if (!suppress) {
            f.reads_user_variable = true;
            f.non_deterministic = true;
            saw_var_ = true;
            var_read_ = true;
            if (saw_into_) var_after_into_ = true;
        }
        break;
    case TokenKind::sys_var: {
        if (suppress) break; // SET @@x = ...: assigned, not read
        f.non_deterministic = true;
        std::string_view name = tok_.text.substr(2);
        if (const auto dot = name.find('.'); dot != std::string_view::npos)
            name.remove_prefix(dot + 1);
        if (detail::iequals(name, "IDENTITY") || detail::iequals(name, "LAST_INSERT_ID") ||
            detail::iequals(name, "LAST_GTID") || detail::iequals(name, "INSERT_ID")) {
            f.primary_function = true;
        } else if (detail::iequals(name, "WARNING_COUNT") || detail::iequals(name, "ERROR_COUNT")) {
            f.primary_function = true;
            f.reads_diagnostics = true;
        }
        break;
    }
    default:
        break;
    }
}

void Classifier::skip_group() noexcept {
    const int outer = depth_ - 1; // tok_ is the `(`, already counted
    for (;;) {
        advance();
        if (at_end()) return;
        if (tok_.is_op(')') && depth_ == outer) {
            advance();
            return;
        }
    }
}

void Classifier::run() {
    advance();
    int statements = 0;
    bool any_unknown = false;
    bool any_boundary = false;
    StatementClass last_boundary = StatementClass::unknown;
    StatementClass strongest = StatementClass::read;
    std::size_t changes_before = 0;
    for (;;) {
        while (tok_.is_op(';'))
            advance();
        if (tok_.kind == TokenKind::end || tok_.kind == TokenKind::error) break;
        changes_before = out_.session_changes.size();
        depth_ = 0;
        compound_ = false;
        nesting_ = 0;
        saw_into_ = false;
        saw_var_ = false;
        var_after_into_ = false;
        var_out_args_ = false;
        pending_global_ = false;
        pending_use_ = Token{};
        const StatementClass c = statement();
        drain();
        if (error_) {
            ++statements; // the server runs the ones before it, then fails on this one
            break;
        }
        ++statements;
        if (pending_global_) out_.global_set = true;
        if (pending_use_.kind == TokenKind::quoted_ident) {
            out_.use_database.clear();
            detail::append_unquoted(pending_use_.text, false, out_.use_database);
        } else if (pending_use_.kind == TokenKind::word) {
            out_.use_database.assign(pending_use_.text);
        }
        if (c == StatementClass::read && saw_into_) out_.flags.select_into = true;
        if ((c == StatementClass::read && var_after_into_) || (var_out_args_ && saw_var_))
            out_.flags.assigns_user_variable = true;
        if (c == StatementClass::unknown) {
            any_unknown = true;
        } else if (is_boundary(c)) {
            any_boundary = true;
            last_boundary = c;
        } else if (strength(c) > strength(strongest)) {
            strongest = c;
        }
        if (tok_.kind == TokenKind::end) break;
    }
    out_.flags.multi_statement = statements > 1;
    if (error_) {
        out_.session_changes.resize(changes_before);
        out_.flags.bad_syntax = true;
        out_.cls = StatementClass::unknown;
    } else if (statements == 0 || any_unknown) {
        out_.cls = StatementClass::unknown;
    } else {
        out_.cls = any_boundary ? last_boundary : strongest;
    }
}

} // namespace sluice::router::detail

namespace sluice::router {

Classification classify(std::string_view sql, SqlMode mode) {
    Classification out;
    detail::Classifier(sql, mode, out).run();
    return out;
}

Classification classify(std::string_view sql) { return classify(sql, SqlMode{}); }

} // namespace sluice::router
