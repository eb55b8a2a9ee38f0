// The statement heads: which statement a token stream starts, and the readers for each kind
// (queries, SHOW, EXPLAIN, DDL, transactions, locks, USE) that decide its class and flags.
#include "classify_internal.hpp"

#include <algorithm>

namespace sluice::router::detail {

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

} // namespace sluice::router::detail
