#pragma once
// T-SQL (SQL Server) statement classification and the T-SQL text Sluice sends itself
// (issue #11). Pure, like the MySQL classifier beside it: text in, what it is out.
//
// The lexer follows SQL Server: `--` comments need no space, `/* */` comments nest,
// '...' and N'...' strings double their quotes, [identifiers] double their `]`, "..." is an
// identifier (QUOTED_IDENTIFIER ON, every driver's default), #t and ##t name temporary
// tables, @v is a batch-local variable and @@x a system function. Statements in a batch
// need no `;`: one ends where a statement keyword starts the next, as SQL Server parses it.
// `GO` is not T-SQL (it is sqlcmd's batch separator): a batch holding it is `unknown` and
// goes to the primary, which answers with its syntax error.

#include "sluice/router/classify.hpp"
#include "sluice/router/session_state.hpp"
#include "sluice/router/tables.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace sluice::router::tsql {

/// Classifies one SQLBatch text (UTF-8; the session converts from UCS-2). Never fails: what
/// it cannot make sense of is StatementClass::unknown or flags.bad_syntax. Uses the same
/// Classification as MySQL, with T-SQL meanings:
/// - begin: BEGIN TRAN[SACTION], BEGIN DISTRIBUTED TRAN; commit: COMMIT [TRAN|WORK];
///   rollback: ROLLBACK [TRAN|WORK] (a savepoint name cannot be told from a transaction
///   name: the server's ENVCHANGE is the authority); savepoint: SAVE TRAN.
/// - SET options are session_set: `SET IMPLICIT_TRANSACTIONS ON|OFF` is the autocommit
///   kind (ON = autocommit off), `SET TRANSACTION ISOLATION LEVEL` transaction_isolation
///   (session-wide in T-SQL), every other `SET option[, option] value` a system_variable
///   keyed by its option names. `SET @v = ...` is batch-local: a read.
/// - writes: INSERT/UPDATE/DELETE/MERGE (not into a table variable @t), SELECT ... INTO,
///   EXEC[UTE] of a procedure (runs_hidden_statements; `EXEC sp_executesql N'...'` with a
///   literal is classified by its text), BULK INSERT, WRITETEXT/UPDATETEXT, NEXT VALUE FOR.
/// - flags: locking_read for UPDLOCK/XLOCK/HOLDLOCK/TABLOCKX/SERIALIZABLE/REPEATABLEREAD/
///   READCOMMITTEDLOCK hints; primary_function for @@IDENTITY, SCOPE_IDENTITY(),
///   IDENT_CURRENT(), @@SPID, CONTEXT_INFO(), SESSION_CONTEXT(), APPLOCK_*, ##global temp
///   tables; reads_diagnostics for @@ROWCOUNT, ROWCOUNT_BIG(), @@ERROR; creates_temp_table
///   for CREATE TABLE #t and SELECT ... INTO #t, drops_temp_table for DROP TABLE #t;
///   opens_handler / closes_handler for DECLARE ... CURSOR / DEALLOCATE; reads_catalog for
///   sys.* and INFORMATION_SCHEMA.*; non_deterministic for GETDATE() and friends, NEWID(),
///   RAND() and @@ functions; reads_user_variable for @variables (a batch's may hold
///   anything; an RPC's are its parameters, part of a cache key).
/// - control flow (IF, ELSE, WHILE, BEGIN ... END, TRY/CATCH, RETURN, BREAK, CONTINUE) is
///   transparent: the statements inside are classified; an IF condition is a read.
Classification classify(std::string_view sql);

/// The tables a read batch reads, for the result cache's key (see router/tables.hpp for
/// TableRefs). Names are unquoted and lower case; `schema` holds the *database* of a
/// three-part name (empty: the session's), and T-SQL schemas are dropped (a user's default
/// schema is not known: dbo.t and app.t fold to one name, which invalidates more, never
/// less). complete only for one SELECT or WITH ... SELECT whose every FROM / JOIN / APPLY
/// item is a named table: false for table variables, temporary tables, functions in a table
/// position, schema-qualified function calls anywhere (user-defined functions read tables
/// the text does not name), four-part (linked server) names, OPENQUERY & co., sys.* and
/// INFORMATION_SCHEMA.*, and anything that writes, declares or executes. Views and synonyms
/// are reported as named (a write to a view's base table does not reach it).
TableRefs tables_read(std::string_view sql);

/// The tables a batch may change: the targets of INSERT, UPDATE, DELETE, MERGE, SELECT ...
/// INTO and OUTPUT ... INTO, TRUNCATE TABLE, CREATE / ALTER / DROP TABLE or VIEW, CREATE /
/// DROP INDEX ... ON, plus every table in a FROM list (over-reporting is harmless). Table
/// variables and temporary tables are session-local and left out. complete is false for EXEC
/// (a procedure may write anything), WRITETEXT/UPDATETEXT, remote sources, other DDL
/// (procedures, triggers, schemas, databases) and text the lexer cannot read: then anything
/// may have changed.
TableRefs tables_written(std::string_view sql);

/// The batch is `INSERT BULK ...` (what bcp and SqlBulkCopy send before their rows, which
/// follow in bulk load messages), comments and space before it allowed.
bool starts_bulk_load(std::string_view sql);

/// A digest: literals as `?`, comments gone, runs of space as one, every word (keywords and
/// names: SQL Server's names are case-insensitive) upper-cased. Rules that match T-SQL digests
/// are written in upper case or with RE2's `(?i)`.
std::string digest(std::string_view sql);

// --- the T-SQL Sluice writes itself ---

/// [name] with `]` doubled.
std::string quote_identifier(std::string_view name);
/// N'text' with `'` doubled.
std::string quote_string(std::string_view text);

/// One batch that brings a backend connection to the session's state: `USE [db]` when the
/// database differs, then each assignment as its own `SET ...` statement, in order.
std::string replay_batch(const ReplayPlan& plan);

/// The primary's newest commit LSN for the session's database (read-your-writes without
/// GTIDs): one row, one numeric column; NULL outside an availability group.
std::string_view commit_lsn_query() noexcept;

/// Ends whatever transaction a pooled connection was left in.
std::string_view rollback_if_open() noexcept;

} // namespace sluice::router::tsql
