#include "sluice/router/classify.hpp"

#include "hint.hpp"
#include "keywords.hpp"
#include "lexer.hpp"

#include <algorithm>

namespace sluice::router {

namespace {

using detail::Kw;
using detail::Token;
using detail::TokenKind;
namespace attr = detail::attr;

enum class Scope : std::uint8_t { session, global };

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

/// One pass over the tokens: a small recursive-descent reader for each statement's head,
/// with every token also going through a scanner for the flags that can appear anywhere.
class Classifier {
public:
    Classifier(std::string_view sql, SqlMode mode, Classification& out) noexcept
        : lex_(sql, mode), mode_(mode), out_(out) {}

    void run();

private:
    struct Value {
        int tokens = 0;
        bool constant = false;
        Token first;
        Token second;
        std::uint8_t first_attrs = 0;
    };

    void advance() noexcept;
    void scan() noexcept;
    bool at_end() const noexcept {
        return tok_.kind == TokenKind::end || tok_.kind == TokenKind::error ||
               (tok_.is_op(';') && !compound_);
    }
    void drain() noexcept {
        while (!at_end())
            advance();
    }
    bool is_name() const noexcept {
        return tok_.kind == TokenKind::word || tok_.kind == TokenKind::quoted_ident;
    }
    void skip_group() noexcept;

    StatementClass statement();
    StatementClass query_in_parens();
    StatementClass with_query();
    StatementClass main_verb();
    StatementClass show();
    bool names_catalog() const noexcept;
    StatementClass explain();
    StatementClass analyze();
    StatementClass explained(bool runs, bool table_name_ok);
    StatementClass handler();
    StatementClass create_or_alter(bool create);
    StatementClass drop();
    StatementClass transaction_start();
    StatementClass transaction_end(StatementClass base);
    StatementClass xa();
    StatementClass use();
    StatementClass flush();
    StatementClass backup();
    StatementClass set();
    StatementClass set_transaction(bool explicit_scope, Scope scope);
    StatementClass set_statement_for();
    bool set_item(Scope running);
    Value collect_value(int base_depth, std::string& text);
    void push_change(SessionChange::Kind kind, std::string name, std::string text, bool constant,
                     bool value_bool = false);

    detail::Lexer lex_;
    SqlMode mode_;
    Classification& out_;

    Token tok_;                   // the current code token
    Kw kw_ = Kw::none;            // its keyword, if a word
    std::uint8_t attrs_ = 0;      // its attributes, if a known word
    bool after_dot_ = false;      // it follows a `.` (qualified name part)
    Kw prev_kw_[3] = {};          // keywords of the three tokens before it (none if not)
    std::uint8_t prev_attrs_ = 0; // attributes of the token before it, if a word
    bool prev_word_ = false;      // the token before it is a word...
    bool prev_after_dot_ = false; // ...that followed a `.`
    bool seen_code_ = false;      // a code token came: later comments are not hints
    bool error_ = false;

    // Per statement.
    int depth_ = 0;         // parenthesis depth
    bool compound_ = false; // stored-program body: `;` does not end the statement
    bool saw_into_ = false;
    bool saw_var_ = false;        // a user variable that is not a SET target
    bool var_after_into_ = false; // ... after INTO
    bool var_out_args_ = false;   // CALL / GET DIAGNOSTICS: its variables may be assigned
    bool var_read_ = false;       // the current token is such a variable
    bool prev_var_ = false;       // the token before it was
    bool suppress_var_ = false;   // the next token is a SET target, not a read of it
    bool skip_lock_ = false;      // the next word names a sequence (NEXT VALUE FOR share)
    bool word_is_ = false;        // the token before is the word IS
    bool pending_global_ = false;
    Token pending_use_;
    int nesting_ = 0; // SET STATEMENT ... FOR recursion
};

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

StatementClass Classifier::statement() {
    if (tok_.is_op('(')) return query_in_parens();
    if (tok_.kind != TokenKind::word) return StatementClass::unknown;
    switch (kw_) {
    case Kw::select:
    case Kw::table:
    case Kw::values:
    case Kw::help:
        return StatementClass::read;
    case Kw::with:
        return with_query();
    case Kw::show:
        return show();
    case Kw::explain:
    case Kw::describe:
    case Kw::desc:
        return explain();
    case Kw::analyze:
        return analyze();
    case Kw::call:
        var_out_args_ = true;
        out_.flags.runs_hidden_statements = true;
        return StatementClass::write;
    case Kw::insert:
    case Kw::update:
    case Kw::delete_:
    case Kw::replace:
    case Kw::do_:
    case Kw::binlog:
        return StatementClass::write;
    case Kw::load:
        advance();
        return kw_ == Kw::index ? StatementClass::other : StatementClass::write; // LOAD INDEX
    case Kw::handler:
        return handler();
    case Kw::create:
        return create_or_alter(true);
    case Kw::alter:
        return create_or_alter(false);
    case Kw::drop:
        return drop();
    case Kw::rename:
    case Kw::truncate:
    case Kw::grant:
    case Kw::revoke:
    case Kw::optimize:
    case Kw::repair:
    case Kw::import:
        return StatementClass::ddl;
    case Kw::check:
    case Kw::checksum:
    case Kw::kill:
    case Kw::reset:
    case Kw::purge:
    case Kw::change:
    case Kw::stop:
    case Kw::shutdown:
    case Kw::restart:
    case Kw::install:
    case Kw::uninstall:
    case Kw::cache:
    case Kw::signal:
    case Kw::resignal:
    case Kw::clone:
        return StatementClass::other;
    case Kw::begin:
        advance();
        if (kw_ == Kw::not_) { // BEGIN NOT ATOMIC ... END: runs anything
            compound_ = true;
            out_.flags.runs_hidden_statements = true;
            return StatementClass::write;
        }
        return StatementClass::begin;
    case Kw::start:
        advance();
        return kw_ == Kw::transaction ? transaction_start() : StatementClass::other;
    case Kw::commit:
        return transaction_end(StatementClass::commit);
    case Kw::rollback:
        return transaction_end(StatementClass::rollback);
    case Kw::savepoint:
        return StatementClass::savepoint;
    case Kw::release:
        advance();
        return kw_ == Kw::savepoint ? StatementClass::savepoint : StatementClass::unknown;
    case Kw::xa:
        return xa();
    case Kw::set:
        return set();
    case Kw::use:
        return use();
    case Kw::lock:
        advance();
        return (kw_ == Kw::table || kw_ == Kw::tables || kw_ == Kw::instance)
                   ? StatementClass::lock_tables
                   : StatementClass::other;
    case Kw::unlock:
        advance();
        return (kw_ == Kw::table || kw_ == Kw::tables || kw_ == Kw::instance)
                   ? StatementClass::unlock_tables
                   : StatementClass::other;
    case Kw::flush:
        return flush();
    case Kw::prepare:
    case Kw::deallocate:
        return StatementClass::prepare_sql;
    case Kw::execute:
        advance();
        out_.flags.runs_hidden_statements = true;
        return kw_ == Kw::immediate ? StatementClass::write : StatementClass::prepare_sql;
    case Kw::get:
        advance();
        if (kw_ == Kw::current || kw_ == Kw::stacked) advance();
        if (kw_ == Kw::diagnostics) {
            out_.flags.reads_diagnostics = true;
            var_out_args_ = true;
        }
        return StatementClass::other;
    case Kw::backup:
        return backup();
    default:
        return StatementClass::unknown;
    }
}

StatementClass Classifier::query_in_parens() {
    while (tok_.is_op('('))
        advance();
    if (kw_ == Kw::with) return with_query();
    if (kw_ == Kw::select || kw_ == Kw::values || kw_ == Kw::table) return StatementClass::read;
    return StatementClass::unknown;
}

// WITH [RECURSIVE] name [(columns)] AS (query) [, ...] then the statement that uses them.
StatementClass Classifier::with_query() {
    advance();
    if (kw_ == Kw::recursive) advance();
    for (;;) {
        if (!is_name()) return StatementClass::unknown;
        advance();
        if (tok_.is_op('(')) skip_group();
        if (kw_ != Kw::as) return StatementClass::unknown;
        advance();
        if (!tok_.is_op('(')) return StatementClass::unknown;
        skip_group();
        if (!tok_.is_op(',')) break;
        advance();
    }
    return main_verb();
}

StatementClass Classifier::main_verb() {
    if (tok_.is_op('(')) return StatementClass::read;
    switch (kw_) {
    case Kw::select:
    case Kw::table:
    case Kw::values:
        return StatementClass::read;
    case Kw::update:
    case Kw::delete_:
    case Kw::insert:
    case Kw::replace:
        return StatementClass::write;
    default:
        return StatementClass::unknown;
    }
}

StatementClass Classifier::show() {
    advance();
    switch (kw_) {
    // Replication and server-local state: what the primary says is what is wanted.
    case Kw::master:
    case Kw::binlog:
    case Kw::binary:
    case Kw::relaylog:
    case Kw::slave:
    case Kw::replica:
    case Kw::replicas:
    case Kw::processlist:
    case Kw::explain: // SHOW EXPLAIN FOR <connection id>
    case Kw::analyze: // SHOW ANALYZE FOR <connection id>
        return StatementClass::other;
    case Kw::all: // SHOW ALL SLAVES STATUS
        advance();
        return (kw_ == Kw::slaves || kw_ == Kw::replicas) ? StatementClass::other
                                                          : StatementClass::read;
    case Kw::full:
        advance();
        if (kw_ == Kw::processlist) return StatementClass::other;
        if (names_catalog()) out_.flags.reads_catalog = true; // SHOW FULL TABLES / COLUMNS
        return StatementClass::read;
    case Kw::warnings:
    case Kw::errors:
    case Kw::profile:
    case Kw::profiles:
    case Kw::count: // SHOW COUNT(*) WARNINGS
        out_.flags.reads_diagnostics = true;
        out_.flags.primary_function = true;
        return StatementClass::read;
    default:
        if (names_catalog()) out_.flags.reads_catalog = true;
        return StatementClass::read;
    }
}

// The word after SHOW [FULL | EXTENDED] names schema objects (what DDL changes).
bool Classifier::names_catalog() const noexcept {
    constexpr std::string_view words[] = {
        "CREATE",    "TABLES",   "TABLE",    "COLUMNS", "FIELDS",    "INDEX",
        "INDEXES",   "KEYS",     "TRIGGERS", "EVENTS",  "DATABASES", "SCHEMAS",
        "PROCEDURE", "FUNCTION", "PACKAGE",  "OPEN",    "EXTENDED",  "SEQUENCES"};
    return std::any_of(std::begin(words), std::end(words),
                       [&](std::string_view w) { return detail::iequals(tok_.text, w); });
}

// EXPLAIN / DESCRIBE / DESC: of a table, or of a statement (run only with ANALYZE).
StatementClass Classifier::explain() {
    advance();
    bool runs = false;
    for (;;) {
        if (kw_ == Kw::extended || kw_ == Kw::partitions) {
            advance();
        } else if (kw_ == Kw::analyze) {
            runs = true; // MySQL 8 EXPLAIN ANALYZE executes the statement
            advance();
        } else if (kw_ == Kw::format) {
            advance();
            if (tok_.is_op('=')) advance();
            advance(); // TRADITIONAL / JSON / TREE
        } else {
            break;
        }
    }
    if (kw_ == Kw::for_) return StatementClass::other; // EXPLAIN FOR CONNECTION n
    return explained(runs, true);
}

// MariaDB ANALYZE [FORMAT=JSON] statement runs it; ANALYZE TABLE is maintenance.
StatementClass Classifier::analyze() {
    advance();
    if (kw_ == Kw::no_write_to_binlog || kw_ == Kw::local) advance();
    if (kw_ == Kw::table || kw_ == Kw::tables) return StatementClass::ddl;
    if (kw_ == Kw::format) {
        advance();
        if (tok_.is_op('=')) advance();
        advance();
    }
    return explained(true, false);
}

StatementClass Classifier::explained(bool runs, bool table_name_ok) {
    // A plain EXPLAIN of a write runs nothing, but it is about a write: primary.
    const StatementClass write_class = runs ? StatementClass::write : StatementClass::other;
    if (tok_.is_op('(')) return StatementClass::read;
    switch (kw_) {
    case Kw::select:
    case Kw::table:
    case Kw::values:
        return StatementClass::read;
    case Kw::with: {
        const StatementClass c = with_query();
        return c == StatementClass::write ? write_class : c;
    }
    case Kw::insert:
    case Kw::update:
    case Kw::delete_:
    case Kw::replace:
        return write_class;
    default:
        break;
    }
    if (table_name_ok && is_name()) return StatementClass::read; // DESCRIBE t [column]
    return StatementClass::unknown;
}

// HANDLER t OPEN / READ / CLOSE: a server-side cursor on one connection.
StatementClass Classifier::handler() {
    advance(); // the table
    advance();
    while (tok_.is_op('.')) { // db.t
        advance();
        advance();
    }
    if (kw_ == Kw::open) out_.flags.opens_handler = true;
    if (kw_ == Kw::close) out_.flags.closes_handler = true;
    return StatementClass::other;
}

StatementClass Classifier::create_or_alter(bool create) {
    advance();
    bool temporary = false;
    // Walk the prefix (OR REPLACE, DEFINER = ..., ALGORITHM = ..., TEMPORARY) up to the
    // kind of object.
    for (int i = 0; i < 32 && !at_end(); ++i, advance()) {
        switch (kw_) {
        case Kw::temporary:
            temporary = true;
            break;
        case Kw::table:
        case Kw::sequence:
            if (temporary && create) out_.flags.creates_temp_table = true;
            return StatementClass::ddl;
        case Kw::procedure:
        case Kw::function:
        case Kw::trigger:
        case Kw::event:
        case Kw::package:
            // A stored program's body holds `;`-separated statements of its own.
            compound_ = true;
            return StatementClass::ddl;
        case Kw::view:
        case Kw::index:
        case Kw::database:
        case Kw::schema:
        case Kw::user:
        case Kw::role:
        case Kw::server:
            return StatementClass::ddl;
        default:
            break;
        }
    }
    return StatementClass::ddl;
}

StatementClass Classifier::drop() {
    advance();
    if (kw_ == Kw::temporary) {
        advance();
        if (kw_ == Kw::table || kw_ == Kw::sequence) out_.flags.drops_temp_table = true;
        return StatementClass::ddl;
    }
    if (kw_ == Kw::prepare) return StatementClass::prepare_sql;
    return StatementClass::ddl;
}

// START TRANSACTION [READ ONLY | READ WRITE | WITH CONSISTENT SNAPSHOT] [, ...]
StatementClass Classifier::transaction_start() {
    bool read_only = false;
    advance();
    while (!at_end()) {
        if (kw_ == Kw::only && prev_kw_[0] == Kw::read) read_only = true;
        advance();
    }
    return read_only ? StatementClass::begin_read_only : StatementClass::begin;
}

// COMMIT|ROLLBACK [WORK] [AND [NO] CHAIN] [[NO] RELEASE]; ROLLBACK [WORK] TO [SAVEPOINT] x
StatementClass Classifier::transaction_end(StatementClass base) {
    advance();
    if (kw_ == Kw::work) advance();
    if (base == StatementClass::rollback && kw_ == Kw::to) return StatementClass::savepoint;
    while (!at_end()) {
        if (kw_ == Kw::chain && prev_kw_[0] == Kw::and_) out_.flags.chains_transaction = true;
        if (kw_ == Kw::release && prev_kw_[0] != Kw::no) out_.flags.releases_connection = true;
        advance();
    }
    return base;
}

// XA START/BEGIN opens; XA END and XA PREPARE keep the transaction on its connection (it is
// not over: only XA COMMIT / XA ROLLBACK end it); XA RECOVER is server state.
StatementClass Classifier::xa() {
    advance();
    switch (kw_) {
    case Kw::start:
    case Kw::begin:
        return StatementClass::begin;
    case Kw::commit:
        return StatementClass::commit;
    case Kw::rollback:
        return StatementClass::rollback;
    default:
        return StatementClass::other;
    }
}

StatementClass Classifier::use() {
    advance();
    if (!is_name()) return StatementClass::unknown;
    pending_use_ = tok_;
    advance();
    return StatementClass::use;
}

StatementClass Classifier::flush() {
    advance();
    if (kw_ == Kw::no_write_to_binlog || kw_ == Kw::local) advance();
    if (kw_ != Kw::table && kw_ != Kw::tables) return StatementClass::other;
    while (!at_end()) {
        if (kw_ == Kw::lock && prev_kw_[0] == Kw::read && prev_kw_[1] == Kw::with)
            return StatementClass::lock_tables; // FLUSH TABLES [t, ...] WITH READ LOCK
        if (kw_ == Kw::export_ && prev_kw_[0] == Kw::for_)
            return StatementClass::lock_tables; // FLUSH TABLES t FOR EXPORT
        advance();
    }
    return StatementClass::other;
}

// MariaDB BACKUP STAGE START ... END and BACKUP LOCK t / BACKUP UNLOCK.
StatementClass Classifier::backup() {
    advance();
    if (kw_ == Kw::stage) {
        advance();
        if (kw_ == Kw::start) return StatementClass::lock_tables;
        if (kw_ == Kw::end) return StatementClass::unlock_tables;
        return StatementClass::other;
    }
    if (kw_ == Kw::lock) return StatementClass::lock_tables;
    if (kw_ == Kw::unlock) return StatementClass::unlock_tables;
    return StatementClass::other;
}

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

} // namespace

Classification classify(std::string_view sql, SqlMode mode) {
    Classification out;
    Classifier(sql, mode, out).run();
    return out;
}

Classification classify(std::string_view sql) { return classify(sql, SqlMode{}); }

} // namespace sluice::router
