// SET and its forms: the session changes a statement makes (variables, NAMES, CHARACTER SET,
// ROLE, TRANSACTION, autocommit) with the text to replay them, and SET STATEMENT ... FOR.
#include "classify_internal.hpp"

#include <string>
#include <string_view>

namespace sluice::router::detail {

namespace {

void append_lower(std::string_view s, std::string& out) {
    for (char c : s)
        out.push_back(detail::to_lower(c));
}

/// Name of a user variable token (@a, @'a', @`a`), unquoted and lower-cased.
std::string user_var_name(std::string_view tok, bool backslash_escapes) {
    std::string name;
    if (tok.size() > 1 && (tok[1] == '\'' || tok[1] == '"' || tok[1] == '`')) {
        std::string raw;
        detail::append_unquoted(tok.substr(1), backslash_escapes, raw);
        append_lower(raw, name);
    } else {
        append_lower(tok.substr(1), name);
    }
    return name;
}

bool plain_var_name(std::string_view name) noexcept {
    if (name.empty()) return false;
    for (char c : name) {
        if (!detail::is_word_char(c) && c != '.') return false;
    }
    return true;
}

} // namespace

void Classifier::push_change(SessionChange::Kind kind, std::string name, std::string text,
                             bool constant, bool value_bool) {
    SessionChange c;
    c.kind = kind;
    c.name = std::move(name);
    c.text = std::move(text);
    c.value_bool = value_bool;
    c.value_is_constant = constant;
    out_.session_changes.push_back(std::move(c));
}

// The tokens up to the next `,` at `base_depth` or the end of the statement, appended to
// `text` as written, one space wherever the text had space or comments between them.
Classifier::Value Classifier::collect_value(int base_depth, std::string& text) {
    Value v;
    const char* prev_end = nullptr;
    bool simple = true;
    while (!at_end() && !(tok_.is_op(',') && depth_ == base_depth)) {
        if (prev_end != nullptr && tok_.text.data() != prev_end) text.push_back(' ');
        text.append(tok_.text);
        prev_end = tok_.end_ptr();
        if (v.tokens == 0) {
            v.first = tok_;
            v.first_attrs = attrs_;
        } else if (v.tokens == 1) {
            v.second = tok_;
        }
        if ((tok_.kind != TokenKind::word && tok_.kind != TokenKind::string &&
             tok_.kind != TokenKind::number && tok_.kind != TokenKind::quoted_ident) ||
            (attrs_ & attr::nondet_bare))
            simple = false;
        ++v.tokens;
        advance();
    }
    const auto is_literal = [](const Token& t, std::uint8_t a) {
        return t.kind == TokenKind::number || t.kind == TokenKind::string ||
               (t.kind == TokenKind::word && !(a & attr::nondet_bare));
    };
    if (v.tokens == 1) {
        v.constant = is_literal(v.first, v.first_attrs);
    } else if (v.tokens == 2 && (v.first.is_op('-') || v.first.is_op('+'))) {
        v.constant = v.second.kind == TokenKind::number; // -1
    } else {
        // NAMES x COLLATE y, ISOLATION LEVEL READ COMMITTED: words only.
        v.constant = simple && v.tokens > 0;
    }
    return v;
}

StatementClass Classifier::set() {
    suppress_var_ = true;
    advance();
    switch (kw_) {
    case Kw::password: // never replayed, never kept
        return StatementClass::other;
    case Kw::default_: // SET DEFAULT ROLE: stored with the account
        return StatementClass::ddl;
    case Kw::role: {
        std::string text = "ROLE ";
        const int base = depth_;
        advance();
        const Value v = collect_value(base, text);
        if (v.tokens == 0) return StatementClass::unknown;
        push_change(SessionChange::Kind::role, "role", std::move(text), v.constant);
        return StatementClass::session_set;
    }
    case Kw::statement:
        return set_statement_for();
    default:
        break;
    }
    const std::size_t changes_before = out_.session_changes.size();
    Scope running = Scope::session;
    for (;;) {
        // A scope keyword holds for the items after it too (MariaDB); @@global.x does not.
        bool explicit_scope = false;
        if (kw_ == Kw::global || kw_ == Kw::persist || kw_ == Kw::persist_only) {
            running = Scope::global;
            explicit_scope = true;
            suppress_var_ = true;
            advance();
        } else if (kw_ == Kw::session || kw_ == Kw::local) {
            running = Scope::session;
            explicit_scope = true;
            suppress_var_ = true;
            advance();
        }
        if (kw_ == Kw::transaction) {
            if (out_.session_changes.size() != changes_before || pending_global_)
                return StatementClass::unknown; // only as the whole statement
            return set_transaction(explicit_scope, running);
        }
        if (!set_item(running)) return StatementClass::unknown;
        if (!tok_.is_op(',')) break;
        suppress_var_ = true;
        advance();
    }
    if (!at_end()) return StatementClass::unknown;
    if (out_.session_changes.size() != changes_before) return StatementClass::session_set;
    return StatementClass::other; // only GLOBAL / PERSIST assignments
}

// SET [GLOBAL|SESSION] TRANSACTION ISOLATION LEVEL x | READ ONLY | READ WRITE [, ...]
StatementClass Classifier::set_transaction(bool explicit_scope, Scope scope) {
    advance();
    const bool global = scope == Scope::global && explicit_scope;
    const SessionChange::Kind kind = explicit_scope ? SessionChange::Kind::transaction_isolation
                                                    : SessionChange::Kind::transaction_next;
    bool any = false;
    for (;;) {
        const char* name = nullptr;
        if (kw_ == Kw::isolation) {
            name = "transaction_isolation";
        } else if (kw_ == Kw::read) {
            name = "transaction_read_only";
        } else {
            return StatementClass::unknown;
        }
        std::string text = explicit_scope ? "SESSION TRANSACTION " : "TRANSACTION ";
        const Value v = collect_value(depth_, text);
        if (global) {
            pending_global_ = true;
        } else {
            push_change(kind, name, std::move(text), v.constant);
            any = true;
        }
        if (!tok_.is_op(',')) break;
        advance();
    }
    if (!at_end()) return StatementClass::unknown;
    return any ? StatementClass::session_set : StatementClass::other;
}

// MariaDB SET STATEMENT var = value [, ...] FOR statement: the variables last one statement.
StatementClass Classifier::set_statement_for() {
    advance();
    while (!at_end()) {
        if (kw_ == Kw::for_ && depth_ == 0) {
            if (++nesting_ > 4) return StatementClass::unknown;
            skip_lock_ = true; // FOR UPDATE t ... here is not a locking clause
            advance();
            return statement();
        }
        advance();
    }
    return StatementClass::unknown;
}

// One `target = value` of a SET (or NAMES / CHARACTER SET). False if it is not one.
bool Classifier::set_item(Scope running) {
    using Kind = SessionChange::Kind;
    if (kw_ == Kw::names || kw_ == Kw::charset || kw_ == Kw::character) {
        const bool names = kw_ == Kw::names;
        if (kw_ == Kw::character) {
            advance();
            if (kw_ != Kw::set) return false;
        }
        const int base = depth_;
        advance();
        std::string text = names ? "NAMES " : "CHARACTER SET ";
        const Value v = collect_value(base, text);
        if (v.tokens == 0) return false;
        // NAMES and CHARACTER SET are session-only, whatever scope keyword came before.
        push_change(names ? Kind::names : Kind::character_set, names ? "names" : "character_set",
                    std::move(text), v.constant);
        return true;
    }

    Kind kind = Kind::system_variable;
    Scope scope = running;
    std::string name;
    std::string text;
    switch (tok_.kind) {
    case TokenKind::user_var:
        kind = Kind::user_variable;
        scope = Scope::session; // user variables have no scope
        name = user_var_name(tok_.text, !mode_.no_backslash_escapes);
        text.push_back('@');
        if (plain_var_name(name)) {
            text.append(name);
        } else {
            text.push_back('`');
            for (char c : name) {
                if (c == '`') text.push_back('`');
                text.push_back(c);
            }
            text.push_back('`');
        }
        advance();
        break;
    case TokenKind::sys_var: {
        std::string_view v = tok_.text.substr(2);
        scope = Scope::session; // @@x and @@session.x, whatever came before
        if (const auto dot = v.find('.'); dot != std::string_view::npos) {
            const std::string_view prefix = v.substr(0, dot);
            if (detail::iequals(prefix, "GLOBAL") || detail::iequals(prefix, "PERSIST") ||
                detail::iequals(prefix, "PERSIST_ONLY")) {
                scope = Scope::global;
                v.remove_prefix(dot + 1);
            } else if (detail::iequals(prefix, "SESSION") || detail::iequals(prefix, "LOCAL")) {
                v.remove_prefix(dot + 1);
            }
        }
        append_lower(v, name);
        advance();
        break;
    }
    case TokenKind::word:
    case TokenKind::quoted_ident:
        // name, or a structured variable: keycache1.key_buffer_size
        for (;;) {
            if (tok_.kind == TokenKind::quoted_ident) {
                std::string raw;
                detail::append_unquoted(tok_.text, false, raw);
                append_lower(raw, name);
            } else if (tok_.kind == TokenKind::word) {
                append_lower(tok_.text, name);
            } else {
                return false;
            }
            advance();
            if (!tok_.is_op('.')) break;
            name.push_back('.');
            advance();
        }
        break;
    default:
        return false;
    }
    if (!(tok_.is_op('=') || (tok_.kind == TokenKind::op && tok_.text == ":="))) return false;
    const int base = depth_;
    advance();
    if (kind != Kind::user_variable) text = name;
    text.append(" = ");
    const Value v = collect_value(base, text);
    if (v.tokens == 0) return false;
    if (scope == Scope::global) {
        pending_global_ = true;
        return true;
    }
    if (kind == Kind::system_variable && name == "autocommit") {
        bool on = false;
        if (v.tokens == 1) {
            std::string_view lit = v.first.text;
            std::string unq;
            if (v.first.kind == TokenKind::string) {
                detail::append_unquoted(lit, !mode_.no_backslash_escapes, unq);
                lit = unq;
            }
            on = lit == "1" || detail::iequals(lit, "ON") || detail::iequals(lit, "TRUE");
        }
        push_change(Kind::autocommit, std::move(name), std::move(text), v.constant, on);
        return true;
    }
    push_change(kind, std::move(name), std::move(text), v.constant);
    return true;
}

} // namespace sluice::router::detail
