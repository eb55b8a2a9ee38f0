#pragma once
// The tables a MySQL/MariaDB statement reads or changes (issue #9): a cached read is keyed by
// the versions of the tables it reads, and a write bumps the versions of the tables it
// changes. Pure: text in, names out; one pass over the router's lexer, no allocation beyond
// the result.
//
// What the text cannot say, and callers must handle elsewhere: a view's base tables (a read
// of view v reports v; a write to v's base table t bumps only t), triggers and foreign-key
// cascades (a write reports the tables it names, not the ones the server changes for it),
// temporary tables (a session's TEMPORARY t hides the base table t: the names are the same).

#include "sluice/router/classify.hpp"

#include <compare>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::router {

/// A table as the statement names it: unquoted, ASCII lower case (under
/// lower_case_table_names=0 `T` and `t` are two tables that fold to one name: more
/// invalidation, never less). `schema` is empty when the statement did not qualify the name:
/// the session's current database applies.
struct TableName {
    std::string schema;
    std::string table;
    auto operator<=>(const TableName&) const = default;
};

/// The tables found, and whether they are all of them.
struct TableRefs {
    std::vector<TableName> tables; ///< sorted by (schema, table), no duplicates
    /// True only when every table reference in the text was understood. When false, `tables`
    /// holds what was found before or around the part that was not: never all of them.
    bool complete = false;
};

/// The tables a read reads: SELECT, WITH ... SELECT, TABLE t, VALUES, parenthesized queries
/// and UNION / INTERSECT / EXCEPT; every table in a FROM or JOIN list anywhere in the
/// statement (subqueries, derived tables, CTE bodies, IN / EXISTS / scalar subqueries, join
/// conditions), and `TABLE t`. Names defined by WITH are left out where they are in scope and
/// unqualified (compared byte for byte after unquoting, so `WITH c ... FROM C` reports `c`).
/// `FROM DUAL` and a SELECT without FROM are complete with no tables.
///
/// complete is false for a statement that is not one of those reads, more than one
/// statement, text the lexer cannot read, unbalanced parentheses, and anything in a table
/// position it does not understand: a table function (JSON_TABLE(...), any `name(` in FROM),
/// `{ OJ ... }`, a placeholder or a string, FOR SYSTEM_TIME, a word after a table that is
/// neither an alias nor what may follow one. It is also false for anything that reads tables
/// the text does not name: a call of a function that is not a built-in (a stored function:
/// `f(x)`, `db.f(x)`, `` `f`(x) ``; built-ins are the functions router/keywords.cpp knows plus
/// a short list in tables.cpp) and sequence functions (NEXT VALUE FOR s, NEXTVAL(s),
/// SETVAL(s, n), s.nextval).
TableRefs tables_read(std::string_view sql, SqlMode mode = {});

/// The tables a statement that changes data or schema may change. Over-reporting is harmless
/// (tables it only reads may be included: subqueries, INSERT ... SELECT sources, UPDATE join
/// partners); under-reporting would serve stale rows, so when in doubt complete is false,
/// which means "anything may have changed".
///
/// Understood: INSERT / REPLACE [LOW_PRIORITY | DELAYED | HIGH_PRIORITY] [IGNORE] [INTO] t
/// (VALUES, SET, SELECT, TABLE, ON DUPLICATE KEY UPDATE, RETURNING); UPDATE with one or many
/// tables (the whole table-reference list); DELETE from one table, `DELETE t1, t2 FROM <refs>`
/// and `DELETE FROM t1, t2 USING <refs>` (every table in <refs>: the targets are among them,
/// aliases included); WITH ... UPDATE / DELETE; LOAD DATA | XML ... INTO TABLE t; TRUNCATE
/// [TABLE] t; ALTER TABLE t (and the u of RENAME [TO | AS] u, EXCHANGE PARTITION ... WITH
/// TABLE u); ALTER VIEW v; DROP [TEMPORARY] TABLE | VIEW [IF EXISTS] a, b; RENAME TABLE a TO
/// b, c TO d; CREATE [OR REPLACE] [TEMPORARY] TABLE t (definitions, LIKE, AS SELECT);
/// CREATE [OR REPLACE] VIEW v; CREATE / DROP INDEX i ON t.
///
/// complete is false for anything else (CALL, DO, EXECUTE, HANDLER, XA, GRANT, stored
/// programs, BEGIN NOT ATOMIC, databases, sequences, SET STATEMENT ... FOR, a read), for more
/// than one statement, unreadable text, and the same doubts as tables_read (a stored
/// function may write tables of its own). CREATE TABLE ... AS SELECT and DDL tails are not
/// searched for stored-function calls.
TableRefs tables_written(std::string_view sql, SqlMode mode = {});

} // namespace sluice::router
