// The tables a T-SQL batch reads or changes (see tsql.hpp): the TDS side of the result
// cache's keys and bumps. One pass over the T-SQL lexer's tokens.
#include "sluice/router/tsql.hpp"
#include "tsql_lexer.hpp"

#include <algorithm>
#include <array>

namespace sluice::router::tsql {

namespace {

using detail::Lexer;
using detail::Token;
using detail::TokenKind;

/// A name part, unquoted and ASCII lower case ([a]]b] -> a]b, "x" -> x).
std::string unquote_lower(const Token& t) {
    std::string_view s = t.text;
    char close = 0;
    if (t.kind == TokenKind::quoted_ident && s.size() >= 2) {
        close = s.front() == '[' ? ']' : '"';
        s = s.substr(1, s.size() - 2);
    }
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (close != 0 && c == close && i + 1 < s.size() && s[i + 1] == close) ++i;
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        out += c;
    }
    return out;
}

bool is_ident(const Token& t) noexcept {
    return t.kind == TokenKind::word || t.kind == TokenKind::quoted_ident;
}

/// Words that end a FROM list at its own depth.
bool ends_from_list(const Token& t) noexcept {
    static constexpr std::array words{
        "WHERE",  "GROUP",  "HAVING",  "ORDER",  "UNION",   "EXCEPT", "INTERSECT",
        "OPTION", "FOR",    "SELECT",  "INSERT", "UPDATE",  "DELETE", "MERGE",
        "SET",    "OUTPUT", "WHEN",    "THEN",   "RETURN",  "IF",     "ELSE",
        "BEGIN",  "END",    "DECLARE", "EXEC",   "EXECUTE", "VALUES", "INTO"};
    if (t.is_op(';')) return true;
    if (t.kind != TokenKind::word) return false;
    return std::any_of(words.begin(), words.end(), [&](const char* w) { return t.is(w); });
}

class Scanner {
public:
    explicit Scanner(std::string_view sql) {
        Lexer lx(sql);
        for (Token t = lx.next(); t.kind != TokenKind::end; t = lx.next()) {
            if (t.kind == TokenKind::comment) continue;
            if (t.kind == TokenKind::error) {
                ok_ = false;
                return;
            }
            toks_.push_back(t);
        }
    }

    /// Reads: a batch of one read statement (SELECT or WITH ... SELECT).
    TableRefs reads() {
        TableRefs out;
        if (!ok_ || toks_.empty()) return out;
        if (!toks_[0].is("SELECT") && !toks_[0].is("WITH") && !toks_[0].is_op('(')) return out;
        for (const Token& t : toks_) {
            // Anything that writes, calls, declares or opens a remote source: not a plain read.
            if (t.is("INSERT") || t.is("UPDATE") || t.is("DELETE") || t.is("MERGE") ||
                t.is("INTO") || t.is("EXEC") || t.is("EXECUTE") || t.is("DECLARE") ||
                t.is("OPENQUERY") || t.is("OPENROWSET") || t.is("OPENDATASOURCE") ||
                t.is("OPENXML") || t.is("CONTAINSTABLE") || t.is("FREETEXTTABLE") ||
                t.is("SEMANTICKEYPHRASETABLE") || t.kind == TokenKind::temp_table)
                return out;
        }
        collect_ctes();
        if (!scan_tables(out.tables)) return out;
        finish(out);
        return out;
    }

    /// Writes: every target of INSERT, UPDATE, DELETE, MERGE, SELECT/OUTPUT ... INTO,
    /// TRUNCATE, DROP/ALTER/CREATE TABLE|VIEW|INDEX, plus every table in a FROM list.
    TableRefs writes() {
        TableRefs out;
        if (!ok_) return out;
        collect_ctes();
        std::size_t taken_into = toks_.size(); // the INTO of INSERT / MERGE INTO
        for (std::size_t i = 0; i < toks_.size(); ++i) {
            const Token& t = toks_[i];
            if (t.is("EXEC") || t.is("EXECUTE") || t.is("WRITETEXT") || t.is("UPDATETEXT") ||
                t.is("OPENQUERY") || t.is("OPENROWSET") || t.is("OPENDATASOURCE"))
                return out; // a procedure or a remote source may change anything
            std::size_t at = i + 1;
            if (t.is("INSERT") || t.is("UPDATE") || t.is("DELETE") || t.is("MERGE")) {
                at = skip_top(at);
                if (at < toks_.size() && toks_[at].is("INTO")) taken_into = at;
                if (at < toks_.size() && (toks_[at].is("INTO") || toks_[at].is("FROM"))) ++at;
                if (t.is("UPDATE") && at < toks_.size() && toks_[at].is("STATISTICS")) continue;
                // MERGE's WHEN ... THEN INSERT (...) / UPDATE SET / DELETE: its target is
                // the MERGE's.
                if (at >= toks_.size() ||
                    (!is_ident(toks_[at]) && toks_[at].kind != TokenKind::variable &&
                     toks_[at].kind != TokenKind::temp_table) ||
                    toks_[at].is("SET") || toks_[at].is("VALUES") || toks_[at].is("DEFAULT") ||
                    toks_[at].is("WHEN") || toks_[at].is("OUTPUT"))
                    continue;
                if (!target(at, out.tables)) return out;
            } else if (t.is("INTO")) {
                // SELECT ... INTO t, OUTPUT ... INTO t.
                if (i == taken_into) continue;
                if (!target(at, out.tables)) return out;
            } else if (t.is("TRUNCATE") || t.is("ALTER") || t.is("DROP") || t.is("CREATE")) {
                if (!ddl(i, out.tables)) return out;
            }
        }
        if (!scan_tables(out.tables)) return out;
        finish(out);
        return out;
    }

private:
    std::vector<Token> toks_;
    std::vector<std::string> ctes_;
    bool ok_ = true;

    void finish(TableRefs& out) const {
        std::sort(out.tables.begin(), out.tables.end());
        out.tables.erase(std::unique(out.tables.begin(), out.tables.end()), out.tables.end());
        out.complete = true;
    }

    /// WITH a AS (...), b (x, y) AS (...): names a reference must not be taken for a table.
    void collect_ctes() {
        for (std::size_t i = 0; i + 1 < toks_.size(); ++i) {
            if (!toks_[i].is("WITH") && !(toks_[i].is_op(',') && !ctes_.empty())) continue;
            std::size_t j = i + 1;
            if (!is_ident(toks_[j])) continue;
            std::size_t k = j + 1;
            if (k < toks_.size() && toks_[k].is_op('(')) k = skip_parens(k);
            if (k < toks_.size() && toks_[k].is("AS")) ctes_.push_back(unquote_lower(toks_[j]));
        }
    }

    /// From an opening parenthesis to just past its match (toks_.size() if unbalanced).
    std::size_t skip_parens(std::size_t i) const {
        int depth = 0;
        for (; i < toks_.size(); ++i) {
            if (toks_[i].is_op('(')) ++depth;
            if (toks_[i].is_op(')') && --depth == 0) return i + 1;
        }
        return toks_.size();
    }

    /// TOP (n) [PERCENT] after INSERT/UPDATE/DELETE/MERGE.
    std::size_t skip_top(std::size_t i) const {
        if (i < toks_.size() && toks_[i].is("TOP")) {
            ++i;
            if (i < toks_.size() && toks_[i].is_op('(')) i = skip_parens(i);
            if (i < toks_.size() && toks_[i].is("PERCENT")) ++i;
        }
        return i;
    }

    /// A possibly qualified name at `i`: [server.][db.][schema.]table. Returns the index after
    /// it, or 0 when there is none. `db` is empty when not given (schemas are dropped: a user's
    /// default schema is not known, and folding them invalidates more, never less).
    std::size_t name_at(std::size_t i, std::string& db, std::string& table, bool& remote,
                        std::string* schema = nullptr) const {
        std::vector<std::string> parts;
        remote = false;
        for (;;) {
            if (i < toks_.size() && is_ident(toks_[i])) {
                parts.push_back(unquote_lower(toks_[i]));
                ++i;
            } else if (!parts.empty() || (i < toks_.size() && toks_[i].is_op('.'))) {
                parts.emplace_back(); // db..t: the default schema
            } else {
                return 0;
            }
            if (i < toks_.size() && toks_[i].is_op('.')) {
                ++i;
                continue;
            }
            break;
        }
        if (parts.empty() || parts.back().empty() || parts.size() > 4) return 0;
        remote = parts.size() == 4;
        table = parts.back();
        db = parts.size() >= 3 ? parts[parts.size() - 3] : std::string();
        if (schema != nullptr)
            *schema = parts.size() >= 2 ? parts[parts.size() - 2] : std::string();
        return i;
    }

    /// The target of a write at `i`: a table (recorded), a table variable or temporary table
    /// (session-local, nothing cached reads it), or a CTE (its base table is in its FROM).
    bool target(std::size_t i, std::vector<TableName>& out) const {
        if (i >= toks_.size()) return false;
        if (toks_[i].kind == TokenKind::variable || toks_[i].kind == TokenKind::temp_table)
            return true;
        std::string db, table;
        bool remote = false;
        if (name_at(i, db, table, remote) == 0 || remote) return false;
        out.push_back({db, table});
        return true;
    }

    /// TRUNCATE TABLE t; DROP TABLE|VIEW [IF EXISTS] a, b; ALTER TABLE|VIEW t;
    /// CREATE TABLE|VIEW t; CREATE [UNIQUE] [[NON]CLUSTERED] INDEX i ON t; DROP INDEX i ON t.
    /// Anything else (procedures, functions, triggers, schemas, databases): false.
    bool ddl(std::size_t i, std::vector<TableName>& out) const {
        const Token& verb = toks_[i];
        std::size_t j = i + 1;
        if (verb.is("CREATE") && j + 1 < toks_.size() && toks_[j].is("OR") &&
            toks_[j + 1].is("ALTER"))
            j += 2;
        while (j < toks_.size() && (toks_[j].is("UNIQUE") || toks_[j].is("CLUSTERED") ||
                                    toks_[j].is("NONCLUSTERED") || toks_[j].is("COLUMNSTORE")))
            ++j;
        if (j >= toks_.size()) return false;
        if (toks_[j].is("INDEX")) {
            if (verb.is("TRUNCATE")) return false;
            for (std::size_t k = j + 1; k < toks_.size(); ++k) {
                if (toks_[k].is("ON")) return target(k + 1, out);
            }
            return false;
        }
        if (!toks_[j].is("TABLE") && !(toks_[j].is("VIEW") && !verb.is("TRUNCATE"))) return false;
        ++j;
        if (verb.is("DROP") && j + 1 < toks_.size() && toks_[j].is("IF") &&
            toks_[j + 1].is("EXISTS"))
            j += 2;
        for (;;) {
            if (!target(j, out)) return false;
            if (!verb.is("DROP")) return true;
            std::string db, table;
            bool remote = false;
            const std::size_t after =
                toks_[j].kind == TokenKind::temp_table ? j + 1 : name_at(j, db, table, remote);
            if (after < toks_.size() && toks_[after].is_op(',')) {
                j = after + 1;
                continue;
            }
            return true;
        }
    }

    /// Every table in a FROM or JOIN list, at any depth; false for what a table position may
    /// hold that is not a named table (a function, a table variable, a temporary table, a
    /// remote name) and for a call of a schema-qualified function anywhere (T-SQL calls
    /// user-defined functions, which may read any table, with their schema).
    bool scan_tables(std::vector<TableName>& out) const {
        // The parenthesis depth of each FROM list still open.
        std::vector<int> lists;
        int depth = 0;
        bool expect_table = false;
        for (std::size_t i = 0; i < toks_.size(); ++i) {
            const Token& t = toks_[i];
            if (is_ident(t) && i + 2 < toks_.size() && toks_[i + 1].is_op('.')) {
                // a.b( or a.b.c(: a user-defined function.
                std::size_t k = i;
                while (k + 2 < toks_.size() && toks_[k + 1].is_op('.') && is_ident(toks_[k + 2]))
                    k += 2;
                if (k + 1 < toks_.size() && toks_[k + 1].is_op('(')) return false;
            }
            if (t.is_op('(')) {
                ++depth;
                expect_table = false;
                continue;
            }
            if (t.is_op(')')) {
                while (!lists.empty() && lists.back() >= depth)
                    lists.pop_back();
                --depth;
                expect_table = false;
                continue;
            }
            const bool in_list = !lists.empty() && lists.back() == depth;
            if (t.is("FROM")) {
                if (!in_list) lists.push_back(depth);
                expect_table = true;
                continue;
            }
            if (in_list && ends_from_list(t)) {
                lists.pop_back();
                expect_table = false;
                continue;
            }
            if (in_list && (t.is("JOIN") || t.is("APPLY") || t.is_op(','))) {
                expect_table = true;
                continue;
            }
            if (!expect_table) continue;
            expect_table = false;
            if (t.kind == TokenKind::variable || t.kind == TokenKind::temp_table) return false;
            if (!is_ident(t)) return false;
            std::string db, table, schema;
            bool remote = false;
            const std::size_t after = name_at(i, db, table, remote, &schema);
            if (after == 0 || remote) return false;
            if (after < toks_.size() && toks_[after].is_op('(')) return false; // a function
            // The catalog changes without a write through Sluice.
            if (schema == "sys" || schema == "information_schema") return false;
            const bool is_cte = db.empty() && after == i + 1 &&
                                std::find(ctes_.begin(), ctes_.end(), table) != ctes_.end();
            if (!is_cte) out.push_back({db, table});
            i = after - 1;
        }
        return true;
    }
};

} // namespace

bool starts_bulk_load(std::string_view sql) {
    Lexer lx(sql);
    Token t = lx.next();
    while (t.kind == TokenKind::comment)
        t = lx.next();
    if (!t.is("INSERT")) return false;
    t = lx.next();
    while (t.kind == TokenKind::comment)
        t = lx.next();
    return t.is("BULK");
}

TableRefs tables_read(std::string_view sql) { return Scanner(sql).reads(); }

TableRefs tables_written(std::string_view sql) { return Scanner(sql).writes(); }

} // namespace sluice::router::tsql
