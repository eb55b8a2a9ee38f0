#include "sluice/router/rewrite.hpp"

#include "lexer.hpp"

#include <string>

namespace sluice::router {

namespace {

using detail::iequals;
using detail::Token;
using detail::TokenKind;

/// Words after which a select-list item without an alias has ended.
bool ends_select_item(const Token& t) noexcept {
    if (t.kind == TokenKind::end || t.is_op(',') || t.is_op(';')) return true;
    if (t.kind != TokenKind::word) return false;
    for (std::string_view w : {"FROM", "INTO", "UNION", "EXCEPT", "INTERSECT", "WHERE", "GROUP",
                               "HAVING", "ORDER", "LIMIT", "FOR", "LOCK", "WINDOW", "RETURNING"}) {
        if (iequals(t.text, w)) return true;
    }
    return false;
}

/// Words and marks after which a select-list item starts.
bool starts_select_item(const Token& t) noexcept {
    return t.is_op(',') || (t.kind == TokenKind::word &&
                            (iequals(t.text, "SELECT") || iequals(t.text, "DISTINCT") ||
                             iequals(t.text, "ALL") || iequals(t.text, "DISTINCTROW")));
}

/// The next token that is not a comment.
Token next_code(detail::Lexer& lex) noexcept {
    for (;;) {
        Token t = lex.next();
        if (t.kind != TokenKind::comment) return t;
    }
}

} // namespace

std::optional<std::string> rewrite_connection_id(std::string_view sql, SqlMode mode,
                                                 std::uint32_t id) {
    detail::Lexer lex{sql, mode};
    std::string out;
    std::size_t copied = 0; // sql[0, copied) is in `out`
    Token prev;             // the code token before the current one
    int depth = 0;
    int select_depth = -1; // depth of the select list being read; -1: none
    bool prev_dot = false;
    for (Token t = next_code(lex); t.kind != TokenKind::end && t.kind != TokenKind::error;
         t = next_code(lex)) {
        if (t.is_op('(')) ++depth;
        if (t.is_op(')') && depth > 0) --depth;
        if (t.kind == TokenKind::word && iequals(t.text, "SELECT")) select_depth = depth;
        if (t.kind == TokenKind::word && iequals(t.text, "FROM") && depth == select_depth)
            select_depth = -1;
        const bool qualified = prev_dot;
        prev_dot = t.is_op('.');
        const bool own_id = t.kind == TokenKind::word && iequals(t.text, "CONNECTION_ID");
        const bool lock_owner = t.kind == TokenKind::word && iequals(t.text, "IS_USED_LOCK");
        if (qualified || (!own_id && !lock_owner)) {
            prev = t;
            continue;
        }
        // The call's parentheses: empty for CONNECTION_ID(), anything balanced for
        // IS_USED_LOCK(...).
        const auto saved = lex.save();
        Token close;
        if (next_code(lex).is_op('(')) {
            for (int nest = 1; nest > 0;) {
                close = next_code(lex);
                if (close.kind == TokenKind::end || close.kind == TokenKind::error) break;
                if (close.is_op('(')) ++nest;
                if (close.is_op(')')) --nest;
                if (own_id && nest > 0) break; // CONNECTION_ID takes no argument
            }
        }
        if (!close.is_op(')')) {
            lex.restore(saved);
            prev = t;
            continue;
        }
        const auto after_call = lex.save();
        const Token following = next_code(lex);
        lex.restore(after_call);
        const std::size_t from = static_cast<std::size_t>(t.text.data() - sql.data());
        const std::size_t to = static_cast<std::size_t>(close.end_ptr() - sql.data());
        const std::string_view call = sql.substr(from, to - from);
        out.append(sql.substr(copied, from - copied));
        if (own_id) {
            out += std::to_string(id);
        } else {
            // The lock's holder is this session's backend thread: name it by the session's
            // id, so `IS_USED_LOCK(x) = CONNECTION_ID()` holds as on a direct connection.
            out += "IF(";
            out.append(call);
            out += " <=> CONNECTION_ID(), ";
            out += std::to_string(id);
            out += ", ";
            out.append(call);
            out += ')';
        }
        // A whole select-list item keeps the column name the server would have given it.
        if (depth == select_depth && starts_select_item(prev) && ends_select_item(following)) {
            out += " AS `";
            for (char ch : call) {
                if (ch == '`') out += '`'; // doubled inside a quoted name
                out += ch;
            }
            out += '`';
        }
        copied = to;
        prev = close;
    }
    if (copied == 0) return std::nullopt;
    out.append(sql.substr(copied));
    return out;
}

} // namespace sluice::router
