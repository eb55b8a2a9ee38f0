// T-SQL classification (see sluice/router/tsql.hpp): statements found by their leading
// keywords as SQL Server's parser finds them, each classified by its head, flags raised by
// tokens wherever they stand, the classes combined as for MySQL.
#include "hint.hpp"
#include "sluice/router/tsql.hpp"
#include "tsql_lexer.hpp"

#include <array>
#include <vector>

namespace sluice::router::tsql {

namespace {

using detail::iequals;
using detail::Token;
using detail::TokenKind;

bool one_of(const Token& t, std::initializer_list<std::string_view> words) noexcept {
    if (t.kind != TokenKind::word) return false;
    for (auto w : words)
        if (iequals(t.text, w)) return true;
    return false;
}

// Words that start a statement (or a control-flow element) in a batch.
bool starts_statement(const Token& t) noexcept {
    return one_of(
        t,
        {"SELECT",     "INSERT",   "UPDATE",    "DELETE",     "MERGE",       "CREATE",   "DROP",
         "ALTER",      "TRUNCATE", "SET",       "USE",        "BEGIN",       "COMMIT",   "ROLLBACK",
         "SAVE",       "IF",       "ELSE",      "WHILE",      "END",         "DECLARE",  "EXEC",
         "EXECUTE",    "PRINT",    "RAISERROR", "THROW",      "WAITFOR",     "RETURN",   "BREAK",
         "CONTINUE",   "GOTO",     "GRANT",     "REVOKE",     "DENY",        "KILL",     "DBCC",
         "CHECKPOINT", "BACKUP",   "RESTORE",   "BULK",       "OPEN",        "FETCH",    "CLOSE",
         "DEALLOCATE", "READTEXT", "WRITETEXT", "UPDATETEXT", "RECONFIGURE", "SHUTDOWN", "REVERT",
         "ENABLE",     "DISABLE",  "SEND",      "RECEIVE",    "GET",         "MOVE"});
}

bool is_boundary(StatementClass c) noexcept {
    return c == StatementClass::begin || c == StatementClass::commit ||
           c == StatementClass::rollback;
}

int strength(StatementClass c) noexcept {
    switch (c) {
    case StatementClass::ddl:
        return 7;
    case StatementClass::write:
        return 6;
    case StatementClass::other:
        return 5;
    case StatementClass::savepoint:
        return 4;
    case StatementClass::session_set:
        return 2;
    case StatementClass::use:
        return 1;
    default:
        return 0;
    }
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

/// A [quoted] or "quoted" identifier without its delimiters, doubled closers made single.
std::string unquote(const Token& t) {
    if (t.kind != TokenKind::quoted_ident || t.text.size() < 2) return std::string(t.text);
    const char close = t.text[0] == '[' ? ']' : '"';
    std::string out;
    for (std::size_t i = 1; i + 1 < t.text.size(); ++i) {
        out += t.text[i];
        if (t.text[i] == close) ++i;
    }
    return out;
}

/// The value of a '...' or N'...' literal.
std::string string_value(std::string_view lit) {
    std::size_t i = lit.front() == '\'' ? 1 : 2;
    std::string out;
    for (; i + 1 < lit.size(); ++i) {
        out += lit[i];
        if (lit[i] == '\'') ++i;
    }
    return out;
}

std::string join(const std::vector<Token>& t, std::size_t from, std::size_t to) {
    std::string out;
    for (std::size_t i = from; i < to; ++i) {
        // No space after a minus (-1), unless the next token starts with one: `--` would
        // begin a comment when the text is replayed (found by fuzz_tsql).
        if (i > from && !out.empty() && !t[i].is_op(',') && !t[i].is_op('.') && !t[i].is_op(')') &&
            !t[i - 1].is_op('.') && !t[i - 1].is_op('(') &&
            !(t[i - 1].is_op('-') && !t[i].text.starts_with('-')))
            out += ' ';
        out += t[i].text;
    }
    return out;
}

class Classifier {
public:
    Classifier(std::string_view sql, Classification& out) : out_(out) {
        detail::Lexer lex(sql);
        bool seen_code = false;
        for (;;) {
            Token t = lex.next();
            if (t.kind == TokenKind::end) break;
            if (t.kind == TokenKind::error) {
                error_ = true;
                break;
            }
            if (t.kind == TokenKind::comment) {
                if (!seen_code) router::detail::parse_hint_comment(t.text, out_.hint);
                continue;
            }
            seen_code = true;
            toks_.push_back(t);
        }
    }

    void run() {
        int statements = 0;
        bool any_unknown = false, any_boundary = false;
        StatementClass last_boundary = StatementClass::read, strongest = StatementClass::read;
        std::size_t i = 0;
        while (i < toks_.size()) {
            if (toks_[i].is_op(';')) {
                ++i;
                continue;
            }
            const std::size_t end = statement_end(i);
            bool transparent = false;
            const StatementClass c = statement(i, end, transparent);
            scan_flags(i, end, c);
            i = end;
            if (transparent) continue;
            ++statements;
            if (c == StatementClass::unknown) {
                any_unknown = true;
            } else if (is_boundary(c)) {
                any_boundary = true;
                last_boundary = c;
            } else if (strength(c) > strength(strongest)) {
                strongest = c;
            }
        }
        out_.flags.multi_statement = statements > 1;
        if (error_) {
            out_.flags.bad_syntax = true;
            out_.session_changes.clear();
            out_.cls = StatementClass::unknown;
        } else if (statements == 0 && toks_.empty()) {
            out_.cls = StatementClass::unknown;
        } else if (any_unknown) {
            out_.cls = StatementClass::unknown;
        } else {
            out_.cls = any_boundary ? last_boundary : strongest;
        }
        // NEXT VALUE FOR moves a sequence: a write wherever it stands.
        if (sequence_ && out_.cls == StatementClass::read) out_.cls = StatementClass::write;
    }

private:
    const Token& at(std::size_t i) const noexcept {
        static const Token end{};
        return i < toks_.size() ? toks_[i] : end;
    }

    /// Where the statement starting at `i` ends: at `;`, at the batch's end, or where a
    /// statement keyword at parenthesis depth 0 starts the next one.
    std::size_t statement_end(std::size_t i) const {
        const Token& head = toks_[i];
        // Single-token control flow.
        if (one_of(head, {"ELSE", "BREAK", "CONTINUE"})) return i + 1;
        if (one_of(head, {"BEGIN", "END"})) {
            if (one_of(at(i + 1), {"TRY", "CATCH"})) return i + 2;
            if (head.is("END") || !one_of(at(i + 1), {"TRAN", "TRANSACTION", "DISTRIBUTED",
                                                      "DIALOG", "CONVERSATION"}))
                return i + 1;
        }
        if (one_of(head, {"BEGIN", "COMMIT", "ROLLBACK", "SAVE"})) return transaction_end(i);
        if (head.kind == TokenKind::word && at(i + 1).is_op(':') && !starts_statement(head))
            return i + 2; // a label
        // A module definition runs to the end of the batch (it must be alone in it).
        if (one_of(head, {"CREATE", "ALTER"})) {
            std::size_t k = i + 1;
            if (at(k).is("OR") && at(k + 1).is("ALTER")) k += 2;
            if (one_of(at(k), {"PROCEDURE", "PROC", "FUNCTION", "TRIGGER", "VIEW"}))
                return toks_.size();
        }
        int depth = 0, case_depth = 0;
        bool insert_source = false; // INSERT: its SELECT / EXEC / VALUES started
        bool update_set = false;    // UPDATE: its SET seen
        bool cursor_for = false;    // DECLARE c CURSOR FOR
        const bool merge = head.is("MERGE");
        const bool alter = head.is("ALTER");
        const bool grant = one_of(head, {"GRANT", "REVOKE", "DENY"});
        const bool insert = head.is("INSERT") || (head.is("WITH") && has_verb(i, "INSERT"));
        const bool update = head.is("UPDATE") || (head.is("WITH") && has_verb(i, "UPDATE"));
        std::size_t verb = head.is("WITH") ? cte_verb(i) : i;
        for (std::size_t k = i + 1; k < toks_.size(); ++k) {
            const Token& t = toks_[k];
            if (t.is_op('(')) {
                ++depth;
                continue;
            }
            if (t.is_op(')')) {
                if (depth > 0) --depth;
                continue;
            }
            if (depth > 0) continue;
            if (t.is_op(';')) return k;
            if (t.is("CASE")) ++case_depth;
            if (t.is("END") && case_depth > 0) {
                --case_depth;
                continue;
            }
            if (case_depth > 0) continue;
            if (k <= verb) continue; // the CTE list before the main verb
            if (merge) continue;     // MERGE must end with `;`
            if (!starts_statement(t)) {
                if (insert && one_of(t, {"VALUES", "DEFAULT"})) insert_source = true;
                if (head.is("DECLARE") && t.is("FOR")) cursor_for = true;
                continue;
            }
            const Token& prev = toks_[k - 1];
            if (t.is("SELECT") &&
                (one_of(prev, {"UNION", "ALL", "EXCEPT", "INTERSECT", "AS"}) || prev.is_op('(')))
                continue;
            if (insert && !insert_source && one_of(t, {"SELECT", "EXEC", "EXECUTE"})) {
                insert_source = true;
                continue;
            }
            if (update && !update_set && t.is("SET")) {
                update_set = true;
                continue;
            }
            if (one_of(t, {"UPDATE", "DELETE", "INSERT"}) &&
                (one_of(prev, {"ON", "FOR", "AFTER", "OF"}) || prev.is_op(',')))
                continue;
            if (cursor_for && t.is("SELECT") && prev.is("FOR")) continue;
            if (alter && one_of(t, {"DROP", "ALTER", "SET"})) continue;
            // DROP TABLE IF EXISTS t (the IF of the object, not a new IF statement)
            if (t.is("IF") && at(k + 1).is("EXISTS") &&
                one_of(prev, {"TABLE", "VIEW", "PROCEDURE", "PROC", "FUNCTION", "INDEX", "TRIGGER",
                              "SCHEMA", "DATABASE", "SEQUENCE", "TYPE", "SYNONYM", "USER", "ROLE",
                              "COLUMN", "CONSTRAINT", "DEFAULT", "RULE"}))
                continue;
            if (grant && one_of(t, {"SELECT", "INSERT", "UPDATE", "DELETE", "EXEC", "EXECUTE",
                                    "CREATE", "ALTER"}))
                continue;
            if (one_of(head, {"BULK"}) && t.is("INSERT") && k == i + 1) continue;
            if (head.is("SET") && k == i + 1) continue;
            return k;
        }
        return toks_.size();
    }

    /// BEGIN TRAN [name] [WITH MARK ['d']], COMMIT [TRAN|WORK] [name] [WITH (...)],
    /// ROLLBACK [TRAN|WORK] [name], SAVE TRAN name.
    std::size_t transaction_end(std::size_t i) const noexcept {
        std::size_t k = i + 1;
        if (toks_[i].is("BEGIN") && at(k).is("DISTRIBUTED")) ++k;
        if (one_of(at(k), {"TRAN", "TRANSACTION", "WORK"})) ++k;
        const Token& name = at(k);
        if ((name.kind == TokenKind::word && !starts_statement(name) && !name.is("WITH")) ||
            name.kind == TokenKind::variable || name.kind == TokenKind::quoted_ident)
            ++k;
        if (at(k).is("WITH")) {
            ++k;
            if (at(k).is("MARK")) {
                ++k;
                if (at(k).kind == TokenKind::string) ++k;
            } else if (at(k).is_op('(')) {
                while (k < toks_.size() && !toks_[k].is_op(')'))
                    ++k;
                if (k < toks_.size()) ++k;
            }
        }
        return k;
    }

    /// WITH a AS (...), b (x) AS (...) VERB: the index of VERB.
    std::size_t cte_verb(std::size_t i) const noexcept {
        int depth = 0;
        for (std::size_t k = i + 1; k < toks_.size(); ++k) {
            if (toks_[k].is_op('(')) ++depth;
            if (toks_[k].is_op(')')) --depth;
            if (depth == 0 && one_of(toks_[k], {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"}))
                return k;
        }
        return toks_.size();
    }
    bool has_verb(std::size_t i, std::string_view verb) const noexcept {
        const std::size_t k = cte_verb(i);
        return k < toks_.size() && toks_[k].is(verb);
    }

    StatementClass statement(std::size_t i, std::size_t end, bool& transparent) {
        const Token& h = toks_[i];
        if (h.is_op('(')) return StatementClass::read; // (SELECT ...) UNION (SELECT ...)
        if (h.kind != TokenKind::word) return StatementClass::unknown;
        if (one_of(h, {"ELSE", "BREAK", "CONTINUE", "END", "RETURN", "GOTO"}) ||
            (end == i + 2 && at(i + 1).is_op(':'))) {
            transparent = true;
            if (h.is("END") && one_of(at(i + 1), {"CONVERSATION"})) {
                transparent = false;
                return StatementClass::write;
            }
            return StatementClass::read;
        }
        if (h.is("BEGIN")) {
            const Token& n = at(i + 1);
            if (one_of(n, {"TRAN", "TRANSACTION", "DISTRIBUTED"})) return StatementClass::begin;
            if (one_of(n, {"DIALOG", "CONVERSATION"})) return StatementClass::write;
            transparent = true; // BEGIN ... END block, BEGIN TRY / CATCH
            return StatementClass::read;
        }
        if (h.is("COMMIT")) return StatementClass::commit;
        if (h.is("ROLLBACK")) return StatementClass::rollback;
        if (h.is("SAVE")) return StatementClass::savepoint;
        if (one_of(h, {"IF", "WHILE"})) {
            transparent = true; // the condition: reads only, its flags still count
            return StatementClass::read;
        }
        if (h.is("SELECT")) return select(i, end);
        if (h.is("WITH")) {
            const std::size_t v = cte_verb(i);
            if (v >= end) return StatementClass::unknown;
            return toks_[v].is("SELECT") ? select(v, end) : dml(v, end);
        }
        if (one_of(h, {"INSERT", "UPDATE", "DELETE", "MERGE"})) return dml(i, end);
        if (one_of(h, {"CREATE", "ALTER", "DROP", "TRUNCATE", "GRANT", "REVOKE", "DENY", "ENABLE",
                       "DISABLE"}))
            return ddl(i, end);
        if (h.is("SET")) return set(i, end);
        if (h.is("USE")) {
            if (end != i + 2) return StatementClass::unknown;
            out_.use_database = unquote(toks_[i + 1]);
            return StatementClass::use;
        }
        if (h.is("DECLARE")) {
            for (std::size_t k = i + 1; k < end; ++k)
                if (toks_[k].is("CURSOR")) out_.flags.opens_handler = true;
            return StatementClass::read;
        }
        if (h.is("DEALLOCATE")) {
            out_.flags.closes_handler = true;
            return StatementClass::read;
        }
        if (one_of(h, {"OPEN", "FETCH", "CLOSE", "PRINT", "RAISERROR", "THROW", "READTEXT"}))
            return StatementClass::read;
        if (h.is("WAITFOR"))
            return at(i + 1).is_op('(') ? StatementClass::write : StatementClass::read;
        if (one_of(h, {"EXEC", "EXECUTE"})) return exec(i, end);
        if (one_of(h, {"BULK", "WRITETEXT", "UPDATETEXT", "SEND", "RECEIVE", "GET", "MOVE"}))
            return StatementClass::write;
        if (one_of(h, {"KILL", "DBCC", "CHECKPOINT", "BACKUP", "RESTORE", "RECONFIGURE", "SHUTDOWN",
                       "REVERT"}))
            return StatementClass::other;
        return StatementClass::unknown; // GO, a procedure called without EXEC, anything else
    }

    StatementClass select(std::size_t i, std::size_t end) {
        // SELECT ... INTO target FROM: creates a table (a #temp one in tempdb).
        int depth = 0;
        for (std::size_t k = i + 1; k < end; ++k) {
            const Token& t = toks_[k];
            if (t.is_op('(')) ++depth;
            if (t.is_op(')')) --depth;
            if (depth != 0) continue;
            if (t.is("FROM")) break;
            if (t.is("INTO") && k + 1 < end) {
                out_.flags.select_into = true;
                if (toks_[k + 1].kind == TokenKind::temp_table) {
                    if (!toks_[k + 1].text.starts_with("##")) out_.flags.creates_temp_table = true;
                }
                return StatementClass::ddl;
            }
        }
        return StatementClass::read;
    }

    StatementClass dml(std::size_t i, std::size_t end) {
        // INSERT [INTO] @t / UPDATE @t / DELETE [FROM] @t: a table variable lives in the
        // batch (tempdb): the statement writes nothing shared.
        std::size_t k = i + 1;
        if (at(k).is("TOP")) {
            ++k;
            if (at(k).is_op('(')) {
                while (k < end && !toks_[k].is_op(')'))
                    ++k;
                ++k;
            } else {
                ++k;
            }
        }
        if (one_of(at(k), {"INTO", "FROM"})) ++k;
        if (k < end && toks_[k].kind == TokenKind::variable && !toks_[i].is("MERGE"))
            return StatementClass::read;
        return StatementClass::write;
    }

    StatementClass ddl(std::size_t i, std::size_t end) {
        const Token& h = toks_[i];
        if (h.is("CREATE") && at(i + 1).is("TABLE") && at(i + 2).kind == TokenKind::temp_table &&
            !at(i + 2).text.starts_with("##"))
            out_.flags.creates_temp_table = true;
        if (h.is("DROP") && at(i + 1).is("TABLE")) {
            std::size_t k = i + 2;
            if (at(k).is("IF") && at(k + 1).is("EXISTS")) k += 2;
            for (; k < end; ++k) {
                const Token& t = toks_[k];
                if (t.kind == TokenKind::temp_table && !t.text.starts_with("##"))
                    out_.flags.drops_temp_table = true;
            }
        }
        return StatementClass::ddl;
    }

    StatementClass exec(std::size_t i, std::size_t end) {
        std::size_t k = i + 1;
        if (one_of(at(k), {"AS"})) return StatementClass::other; // EXECUTE AS: security context
        if (at(k).kind == TokenKind::variable && at(k + 1).is_op('=')) k += 2; // @rc = proc
        out_.flags.runs_hidden_statements = true;
        if (at(k).is_op('(')) return StatementClass::write; // EXEC ('dynamic SQL')
        // sys.sp_executesql / dbo.sp_executesql / sp_executesql with a literal: its text.
        std::size_t name = k;
        while (name + 2 < end && toks_[name + 1].is_op('.'))
            name += 2;
        if (name < end && toks_[name].is("SP_EXECUTESQL") && name + 1 < end &&
            toks_[name + 1].kind == TokenKind::string && depth_ == 0) {
            ++depth_;
            Classification inner = tsql::classify(string_value(toks_[name + 1].text));
            --depth_;
            merge_flags(inner.flags);
            for (auto& ch : inner.session_changes)
                out_.session_changes.push_back(std::move(ch));
            if (inner.cls != StatementClass::unknown && !inner.flags.runs_hidden_statements)
                out_.flags.runs_hidden_statements = false;
            return inner.cls;
        }
        return StatementClass::write;
    }

    void merge_flags(const StatementFlags& f) noexcept {
        StatementFlags& o = out_.flags;
        o.locking_read |= f.locking_read;
        o.select_into |= f.select_into;
        o.primary_function |= f.primary_function;
        o.creates_temp_table |= f.creates_temp_table;
        o.drops_temp_table |= f.drops_temp_table;
        o.non_deterministic |= f.non_deterministic;
        o.reads_diagnostics |= f.reads_diagnostics;
        o.opens_handler |= f.opens_handler;
        o.closes_handler |= f.closes_handler;
        o.reads_catalog |= f.reads_catalog;
        o.runs_hidden_statements |= f.runs_hidden_statements;
        o.bad_syntax |= f.bad_syntax;
    }

    StatementClass set(std::size_t i, std::size_t end) {
        using Kind = SessionChange::Kind;
        const std::size_t k = i + 1;
        if (k >= end) return StatementClass::unknown;
        if (toks_[k].kind == TokenKind::variable) return StatementClass::read; // SET @v = ...
        if (toks_[k].is("TRANSACTION")) {
            SessionChange ch{Kind::transaction_isolation, "transaction_isolation",
                             upper(join(toks_, k, end)), false, true};
            out_.session_changes.push_back(std::move(ch));
            return StatementClass::session_set;
        }
        if (toks_[k].is("IDENTITY_INSERT")) {
            // Holds for the table on the connection that ran it: not replayed elsewhere.
            out_.flags.assigns_user_variable = true;
            return StatementClass::other;
        }
        // SET option[, option ...] value: one change per option, the value last.
        std::size_t value = end - 1;
        if (value > k && toks_[value - 1].is_op('-')) --value; // SET LOCK_TIMEOUT -1
        if (value <= k) return StatementClass::unknown;
        // Option names are words (STATISTICS IO, ANSI_NULLS) separated by commas, and the
        // value one token: anything else is not a SET option, and is not replayed.
        for (std::size_t o = k; o < value; ++o) {
            if (toks_[o].kind != TokenKind::word && !toks_[o].is_op(','))
                return StatementClass::unknown;
        }
        if (end - value > 2 || (end - value == 2 && !toks_[value].is_op('-')))
            return StatementClass::unknown;
        // Each option is one word, or STATISTICS and one (IO, TIME, PROFILE, XML), and neither
        // an option nor the value is a word that starts a statement: replayed one per SET,
        // such text would read as other statements (found by fuzz_tsql: a CASE without END
        // held `SET a b CASE c, d SET e ON` in one statement; `SET A, B, UPDATE` kept the
        // UPDATE after a comma, as in GRANT INSERT, UPDATE).
        for (std::size_t o = k; o < end; ++o) {
            if (starts_statement(toks_[o])) return StatementClass::unknown;
        }
        for (std::size_t o = k, words = 0; o <= value; ++o) {
            if (o < value && !toks_[o].is_op(',')) {
                ++words;
                continue;
            }
            if (words > 2 || (words == 2 && !toks_[o - 2].is("STATISTICS")))
                return StatementClass::unknown;
            words = 0;
        }
        const std::string value_text = join(toks_, value, end);
        bool constant = true;
        for (std::size_t v = value; v < end; ++v) {
            const auto kind = toks_[v].kind;
            if (kind != TokenKind::word && kind != TokenKind::number && kind != TokenKind::string &&
                !toks_[v].is_op('-'))
                constant = false;
        }
        std::size_t from = k;
        for (std::size_t o = k; o <= value; ++o) {
            if (o < value && !toks_[o].is_op(',')) continue;
            if (o == from) return StatementClass::unknown;
            const std::string name = join(toks_, from, o);
            SessionChange ch;
            ch.name = lower(name);
            ch.text = upper(name) + " " + value_text;
            ch.value_is_constant = constant;
            if (ch.name == "implicit_transactions") {
                ch.kind = Kind::autocommit;
                ch.value_bool = iequals(value_text, "OFF");
            } else {
                ch.kind = Kind::system_variable;
            }
            out_.session_changes.push_back(std::move(ch));
            from = o + 1;
        }
        return StatementClass::session_set;
    }

    void scan_flags(std::size_t i, std::size_t end, StatementClass c) {
        StatementFlags& f = out_.flags;
        const bool in_set = c == StatementClass::session_set;
        for (std::size_t k = i; k < end; ++k) {
            const Token& t = toks_[k];
            switch (t.kind) {
            case TokenKind::sys_var:
                f.non_deterministic = true;
                if (iequals(t.text, "@@IDENTITY") || iequals(t.text, "@@SPID"))
                    f.primary_function = true;
                if (iequals(t.text, "@@ROWCOUNT") || iequals(t.text, "@@ERROR"))
                    f.reads_diagnostics = true;
                break;
            case TokenKind::variable:
                // A batch's variable may hold anything; an RPC's are its parameters.
                f.reads_user_variable = true;
                break;
            case TokenKind::temp_table:
                if (t.text.starts_with("##")) f.primary_function = true;
                break;
            case TokenKind::word: {
                const bool call = at(k + 1).is_op('(');
                if (!in_set && one_of(t, {"UPDLOCK", "XLOCK", "HOLDLOCK", "TABLOCKX",
                                          "SERIALIZABLE", "REPEATABLEREAD", "READCOMMITTEDLOCK"}))
                    f.locking_read = true;
                if (call && one_of(t, {"SCOPE_IDENTITY", "IDENT_CURRENT", "CONTEXT_INFO",
                                       "SESSION_CONTEXT", "APPLOCK_MODE", "APPLOCK_TEST"}))
                    f.primary_function = true;
                if (call && t.is("ROWCOUNT_BIG")) f.reads_diagnostics = true;
                if ((call && one_of(t, {"GETDATE", "GETUTCDATE", "SYSDATETIME", "SYSUTCDATETIME",
                                        "SYSDATETIMEOFFSET", "NEWID", "NEWSEQUENTIALID", "RAND",
                                        "CRYPT_GEN_RANDOM", "CURRENT_TIMESTAMP"})) ||
                    t.is("CURRENT_TIMESTAMP"))
                    f.non_deterministic = true;
                if (t.is("NEXT") && at(k + 1).is("VALUE") && at(k + 2).is("FOR")) {
                    f.primary_function = true;
                    sequence_ = true;
                }
                if ((t.is("SYS") && at(k + 1).is_op('.')) || t.is("INFORMATION_SCHEMA"))
                    f.reads_catalog = true;
                break;
            }
            case TokenKind::quoted_ident:
                if (iequals(unquote(t), "SYS") && at(k + 1).is_op('.')) f.reads_catalog = true;
                break;
            default:
                break;
            }
        }
    }

    std::vector<Token> toks_;
    Classification& out_;
    bool error_ = false;
    bool sequence_ = false;
    static thread_local int depth_; // sp_executesql inside sp_executesql is not looked into
};

thread_local int Classifier::depth_ = 0;

} // namespace

Classification classify(std::string_view sql) {
    Classification out;
    Classifier c(sql, out);
    c.run();
    return out;
}

std::string digest(std::string_view sql) {
    detail::Lexer lex(sql);
    std::string out;
    for (Token t = lex.next(); t.kind != TokenKind::end; t = lex.next()) {
        if (t.kind == TokenKind::comment) continue;
        if (!out.empty()) out += ' ';
        switch (t.kind) {
        case TokenKind::string:
        case TokenKind::number:
            out += '?';
            break;
        case TokenKind::word:
            out += upper(t.text);
            break;
        default:
            out += t.text;
        }
        if (t.kind == TokenKind::error) break;
    }
    return out;
}

} // namespace sluice::router::tsql
