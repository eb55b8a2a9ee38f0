#include "sluice/router/rewrite.hpp"

#include "keywords.hpp"
#include "lexer.hpp"

#include <string>
#include <vector>

namespace sluice::router {

namespace {

using detail::iequals;
using detail::Token;
using detail::TokenKind;

/// A code token and the parenthesis depth it stands at.
struct Tok {
    Token t;
    int depth = 0;
};

/// Words after which a select list has ended (at its own depth).
bool ends_select_list(const Token& t) noexcept {
    if (t.kind != TokenKind::word) return false;
    for (std::string_view w : {"FROM", "INTO", "UNION", "EXCEPT", "INTERSECT", "WHERE", "GROUP",
                               "HAVING", "ORDER", "LIMIT", "FOR", "LOCK", "WINDOW", "RETURNING"}) {
        if (iequals(t.text, w)) return true;
    }
    return false;
}

/// Whether the last token of a select-list item can be its alias (`expr name`, `expr 'name'`):
/// a name, but not a reserved word or one that ends an operand (NULL, TRUE, END ...).
bool may_be_alias(const Token& t) noexcept {
    if (t.kind == TokenKind::quoted_ident || t.kind == TokenKind::string) return true;
    if (t.kind != TokenKind::word) return false;
    const detail::KeywordInfo* k = detail::lookup_keyword(t.text, t.hash);
    return k == nullptr || !(k->attrs & (detail::attr::reserved | detail::attr::value));
}

/// SELECT's options before the first item (not part of its name).
bool is_select_option(const Token& t) noexcept {
    if (t.kind != TokenKind::word) return false;
    for (std::string_view w : {"ALL", "DISTINCT", "DISTINCTROW", "HIGH_PRIORITY", "STRAIGHT_JOIN",
                               "SQL_SMALL_RESULT", "SQL_BIG_RESULT", "SQL_BUFFER_RESULT",
                               "SQL_CACHE", "SQL_NO_CACHE", "SQL_CALC_FOUND_ROWS"}) {
        if (iequals(t.text, w)) return true;
    }
    return false;
}

/// One call to replace: tokens [first, last] become `text`.
struct Call {
    std::size_t first, last;
    std::string text;
};

/// A select-list item without an alias, named by the server after its text: tokens
/// [first, last]. Aliased items and text outside select lists are not listed.
struct Item {
    std::size_t first, last;
};

/// The items of every select list in `toks` that have no alias.
std::vector<Item> unaliased_items(const std::vector<Tok>& toks) {
    std::vector<Item> out;
    for (std::size_t i = 0; i < toks.size(); ++i) {
        if (toks[i].t.kind != TokenKind::word || !iequals(toks[i].t.text, "SELECT")) continue;
        const int d = toks[i].depth;
        std::size_t start = i + 1;
        while (start < toks.size() && is_select_option(toks[start].t))
            ++start;
        bool aliased = false;
        for (std::size_t j = i + 1;; ++j) {
            const bool end =
                j == toks.size() || toks[j].depth < d ||
                (toks[j].depth == d && (toks[j].t.is_op(';') || ends_select_list(toks[j].t)));
            if (end || (toks[j].depth == d && toks[j].t.is_op(','))) {
                if (j > start) {
                    const std::size_t last = j - 1;
                    // `expr name`: the last token is a name right after an operand.
                    const Token& before = toks[last - 1].t;
                    const bool implicit = last > start && toks[last].depth == d &&
                                          may_be_alias(toks[last].t) &&
                                          (before.kind != TokenKind::op || before.is_op(')'));
                    if (!aliased && !implicit) out.push_back({start, last});
                }
                if (end) break;
                start = j + 1;
                aliased = false;
                continue;
            }
            if (toks[j].depth == d && toks[j].t.kind == TokenKind::word &&
                iequals(toks[j].t.text, "AS"))
                aliased = true;
        }
    }
    return out;
}

} // namespace

std::optional<std::string> rewrite_connection_id(std::string_view sql, SqlMode mode,
                                                 std::uint32_t id) {
    std::vector<Tok> toks;
    {
        detail::Lexer lex{sql, mode};
        int depth = 0;
        for (Token t = lex.next(); t.kind != TokenKind::end; t = lex.next()) {
            if (t.kind == TokenKind::error) return std::nullopt; // the server will say why
            if (t.kind == TokenKind::comment) continue;
            if (t.is_op(')') && depth > 0) --depth;
            toks.push_back({t, depth});
            if (t.is_op('(')) ++depth;
        }
    }
    const std::string own = std::to_string(id);
    std::vector<Call> calls;
    for (std::size_t i = 0; i + 2 < toks.size(); ++i) {
        const Token& t = toks[i].t;
        if (t.kind != TokenKind::word || (i > 0 && toks[i - 1].t.is_op('.'))) continue;
        const bool own_id = iequals(t.text, "CONNECTION_ID");
        if ((!own_id && !iequals(t.text, "IS_USED_LOCK")) || !toks[i + 1].t.is_op('(')) continue;
        std::size_t close = i + 2;
        while (close < toks.size() && toks[close].depth > toks[i].depth)
            ++close;
        if (close == toks.size() || (own_id && close != i + 2)) continue;
        const auto from = static_cast<std::size_t>(t.text.data() - sql.data());
        const auto to = static_cast<std::size_t>(toks[close].t.end_ptr() - sql.data());
        const std::string_view call = sql.substr(from, to - from);
        std::string text;
        if (own_id) {
            text = own;
        } else {
            // The lock's holder is this session's backend thread: name it by the session's
            // id, so `IS_USED_LOCK(x) = CONNECTION_ID()` holds as on a direct connection.
            text.append("IF(").append(call).append(" <=> CONNECTION_ID(), ").append(own);
            text.append(", ").append(call).append(")");
        }
        calls.push_back({i, close, std::move(text)});
        i = close;
    }
    if (calls.empty()) return std::nullopt;

    // A select-list item that held a call keeps the name the server would have given it.
    std::vector<std::size_t> alias_after; // token index after which an alias goes
    std::vector<std::string> aliases;
    for (const Item& item : unaliased_items(toks)) {
        bool has_call = false;
        for (const Call& c : calls)
            has_call = has_call || (c.first >= item.first && c.last <= item.last);
        if (!has_call) continue;
        const auto from = static_cast<std::size_t>(toks[item.first].t.text.data() - sql.data());
        const auto to = static_cast<std::size_t>(toks[item.last].t.end_ptr() - sql.data());
        if (to - from > 256) continue; // longer than a name may be: the server's name differs
        std::string alias = " AS `";
        for (char ch : sql.substr(from, to - from)) {
            if (ch == '`') alias += '`'; // doubled inside a quoted name
            alias += ch;
        }
        alias += '`';
        alias_after.push_back(item.last);
        aliases.push_back(std::move(alias));
    }

    std::string out;
    std::size_t copied = 0; // sql[0, copied) is in `out`
    std::size_t next_call = 0;
    for (std::size_t i = 0; i < toks.size(); ++i) {
        if (next_call < calls.size() && calls[next_call].first == i) {
            const Call& c = calls[next_call++];
            const auto from = static_cast<std::size_t>(toks[i].t.text.data() - sql.data());
            out.append(sql.substr(copied, from - copied)).append(c.text);
            copied = static_cast<std::size_t>(toks[c.last].t.end_ptr() - sql.data());
            i = c.last;
        }
        for (std::size_t a = 0; a < alias_after.size(); ++a) {
            if (alias_after[a] != i) continue;
            const auto end = static_cast<std::size_t>(toks[i].t.end_ptr() - sql.data());
            out.append(sql.substr(copied, end - copied)).append(aliases[a]);
            copied = end;
        }
    }
    out.append(sql.substr(copied));
    return out;
}

} // namespace sluice::router
