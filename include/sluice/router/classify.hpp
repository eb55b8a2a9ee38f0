#pragma once
// MySQL-dialect statement classification (issue #3). Pure: a statement's text in, what it
// is and what it needs out. No sockets, no logging, no allocation beyond the result.
//
// The lexer follows MariaDB 10.11 (checked against a real server) and MySQL 8 where they
// agree: `-- ` needs a space or control character after the dashes (`1 --1` is `1 - -1`),
// `#` and `/* */` comments, `/*!NNNNN ... */`, `/*!NNNNNN ... */`, `/*!...*/` and
// `/*M!... */` are code whatever their version, `/*+ ... */` (optimizer hints) are comments.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::router {

/// What a statement does, as far as routing is concerned.
enum class StatementClass : std::uint8_t {
    read,  ///< SELECT / WITH...SELECT / SHOW / EXPLAIN / DESCRIBE / HELP / TABLE / VALUES
    write, ///< INSERT, UPDATE, DELETE, REPLACE, LOAD DATA, WITH...UPDATE/DELETE, CALL, DO,
           ///< EXPLAIN ANALYZE / MariaDB ANALYZE of a write, BEGIN NOT ATOMIC, BINLOG
    ddl,   ///< CREATE/ALTER/DROP/RENAME/TRUNCATE, GRANT/REVOKE, ANALYZE/OPTIMIZE/REPAIR TABLE
    begin, ///< BEGIN, START TRANSACTION (read write or default), XA START/BEGIN
    begin_read_only, ///< START TRANSACTION READ ONLY (may run on a replica)
    commit,          ///< COMMIT, XA COMMIT
    rollback,        ///< ROLLBACK, XA ROLLBACK (not ROLLBACK TO SAVEPOINT: that stays inside)
    savepoint,       ///< SAVEPOINT, ROLLBACK TO, RELEASE SAVEPOINT
    session_set,     ///< SET of session state that must be replayed (see SessionChange)
    use,             ///< USE db
    lock_tables,     ///< LOCK TABLES / LOCK TABLE / FLUSH TABLES WITH READ LOCK / FLUSH TABLES t
                     ///< FOR EXPORT / LOCK INSTANCE FOR BACKUP / BACKUP LOCK / BACKUP STAGE START
                     ///< (pin until the matching unlock)
    unlock_tables,   ///< UNLOCK TABLES / UNLOCK INSTANCE / BACKUP UNLOCK / BACKUP STAGE END
    prepare_sql,     ///< PREPARE / EXECUTE / DEALLOCATE PREPARE / DROP PREPARE (SQL-level prepared
                     ///< statements; EXECUTE IMMEDIATE is a write)
    other,           ///< statements that go to the primary (KILL, FLUSH, RESET, CHECKSUM, HANDLER,
                     ///< XA END/PREPARE/RECOVER, SET GLOBAL, SET PASSWORD, SHOW MASTER STATUS,
                     ///< SHOW PROCESSLIST, EXPLAIN of a write without ANALYZE ...)
    unknown,         ///< the lexer could not make sense of it: primary
};

/// The class's name for metric labels: "read", "write", "ddl", "begin" ...
const char* statement_class_name(StatementClass c) noexcept;

/// Why a read has to leave the replicas, or what a statement does to the session.
struct StatementFlags {
    bool locking_read = false;        ///< FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE anywhere
    bool select_into = false;         ///< SELECT ... INTO @var / OUTFILE / DUMPFILE
    bool primary_function = false;    ///< LAST_INSERT_ID(), FOUND_ROWS(), ROW_COUNT(), @@identity,
                                      ///< NEXTVAL/LASTVAL/SETVAL, NEXT VALUE FOR, GET_LOCK...,
                                      ///< CONNECTION_ID() (the thread KILL reaches)
    bool takes_user_lock = false;     ///< GET_LOCK(
    bool releases_user_lock = false;  ///< RELEASE_LOCK( / RELEASE_ALL_LOCKS(
    bool calc_found_rows = false;     ///< SQL_CALC_FOUND_ROWS: pin until the FOUND_ROWS() after it
    bool found_rows = false;          ///< FOUND_ROWS(
    bool creates_temp_table = false;  ///< CREATE TEMPORARY TABLE / SEQUENCE
    bool drops_temp_table = false;    ///< DROP TEMPORARY TABLE / SEQUENCE (a plain DROP TABLE may
                                      ///< also drop a temporary table: the text cannot tell)
    bool multi_statement = false;     ///< more than one statement in the text
    bool non_deterministic = false;   ///< NOW(), RAND(), UUID(), user variables... (cache: later)
    bool reads_user_variable = false; ///< @var in the statement (not @@system, not a SET target)
    bool bad_syntax =
        false; ///< unterminated string/comment/identifier: primary, let the server say
    /// The answer describes the previous statement on the same backend connection: SHOW
    /// WARNINGS / ERRORS / COUNT(*) WARNINGS / PROFILE(S), GET DIAGNOSTICS, ROW_COUNT(),
    /// FOUND_ROWS(), @@warning_count, @@error_count. Send it where the previous one ran.
    bool reads_diagnostics = false;
    bool chains_transaction =
        false; ///< COMMIT/ROLLBACK AND CHAIN: a new transaction starts at once
    bool releases_connection = false; ///< COMMIT/ROLLBACK RELEASE: the server closes the connection
    bool opens_handler = false;       ///< HANDLER t OPEN: a server-side cursor; pin until CLOSE
    bool closes_handler = false;      ///< HANDLER t CLOSE
    /// A user variable gets a value outside SET: SELECT ... INTO @v, @v := in an expression,
    /// CALL p(@v) (maybe an OUT parameter), GET DIAGNOSTICS @v = .... Only the backend that
    /// ran it knows the value, so it cannot be replayed (SET @v = ... is a SessionChange).
    bool assigns_user_variable = false;
    /// Runs statements Sluice cannot see (CALL, BEGIN NOT ATOMIC ... END, EXECUTE of an SQL
    /// prepared statement): afterwards the session's user variables are only known where it ran.
    bool runs_hidden_statements = false;
    /// Reads the catalog: SHOW CREATE / TABLES / TABLE STATUS / COLUMNS / INDEX / TRIGGERS /
    /// EVENTS / DATABASES / PROCEDURE|FUNCTION STATUS|CODE ..., or names information_schema.
    /// DDL runs on the primary and does not always replicate as written (a storage engine
    /// chosen by the session): the primary's catalog is the one the session created.
    bool reads_catalog = false;
    /// `x IS NULL`: under SQL_AUTO_IS_NULL=1 it finds the row the session inserted last,
    /// which only the primary connection knows.
    bool tests_is_null = false;
    /// A `?` placeholder (in a COM_STMT_PREPARE text): a SET of it cannot be replayed as text.
    bool has_placeholder = false;
};

/// A hint in a leading comment: /* sluice: primary */, /* sluice: replica */,
/// /* sluice: max_lag=2s */ (units ms, s; plain number = seconds),
/// /* sluice: consistency=eventual */ (or session, global). Several may be combined
/// with commas or spaces: /* sluice: replica, max_lag=500ms */.
/// Only comments before the statement's first token count (`#` and `-- ` comments too);
/// `sluice` is case-insensitive. A comment with anything it does not understand (an unknown
/// word, max_lag=abc, a lag over 2^32-1 ms) is ignored as a whole. `primary` beats `replica`
/// when both are given; with several hint comments a later max_lag replaces an earlier one.
/// How fresh a read must be (DESIGN.md "Routing contract"): `eventual` any eligible replica;
/// `session` one that has applied the session's own last write; `global` one that has
/// applied every write whose OK this Sluice relayed to any client before the read arrived;
/// `fleet` (with a Redis cache) the same for every Sluice sharing that Redis: the read first
/// fetches the newest GTIDs their writes recorded there.
enum class Consistency : std::uint8_t { eventual, session, global, fleet };

/// Caching (issue #9): /* sluice: cache */ caches a read for the default TTL,
/// /* sluice: cache ttl=60s */ (or ttl=500ms; ttl alone implies cache) for that long, and
/// /* sluice: nocache */ keeps a read out of the cache whatever the rules say.
struct Hint {
    enum class Target : std::uint8_t { none, primary, replica };
    enum class Cache : std::uint8_t { none, cache, nocache };
    Target target = Target::none;
    std::optional<std::uint32_t> max_lag_ms;
    std::optional<Consistency> consistency; ///< consistency=eventual|session|global
    Cache cache = Cache::none;
    std::optional<std::uint32_t> cache_ttl_ms; ///< ttl=...: with Cache::cache
    bool operator==(const Hint&) const = default;
};

/// A change to session state that must be replayed on every backend that serves the session
/// afterwards (issue #3: "Session state is tracked ... and brought up to date").
/// Replaying is `"SET " + text`. Scope keywords follow MariaDB: `SET GLOBAL a=1, b=2` sets
/// both globally (a GLOBAL/SESSION/LOCAL keyword holds for the items after it), while
/// `@@global.x` / `@@session.x` apply to their own item only.
struct SessionChange {
    enum class Kind : std::uint8_t {
        system_variable,       ///< SET [SESSION|@@session.|@@|LOCAL] name = value (not GLOBAL)
        user_variable,         ///< SET @name = value
        names,                 ///< SET NAMES x [COLLATE y]
        character_set,         ///< SET CHARACTER SET x / SET CHARSET x
        autocommit,            ///< SET autocommit = 0|1|ON|OFF  (value_bool holds it)
        transaction_isolation, ///< SET SESSION TRANSACTION ISOLATION LEVEL ... (not the next-trx
                               ///< form)
        transaction_next,      ///< SET TRANSACTION ... (applies to the next transaction only)
        role,                  ///< SET ROLE name | NONE (MariaDB)
    };
    Kind kind;
    /// Lower-cased variable name (without @, @@, session.); "names", "character_set", "role";
    /// for the transaction kinds "transaction_isolation" or "transaction_read_only".
    std::string name;
    /// The assignment as SQL to replay after "SET ", e.g. "sql_mode = 'ANSI'",
    /// "@`a b` = 1", "NAMES utf8mb4 COLLATE utf8mb4_bin", "SESSION TRANSACTION READ ONLY".
    /// The value is the statement's own tokens (comments dropped, runs of space made one).
    std::string text;
    /// autocommit's value. A value that is not a literal 0/1/ON/OFF/TRUE/FALSE (an expression,
    /// DEFAULT) reads as false: the safe side; the server's status flags tell the truth later.
    bool value_bool = false;
    /// The value is one literal (number, string, word such as ON or utf8mb4), so replaying
    /// `text` gives the same value. False for expressions (`@a + 1`, `(SELECT ...)`, NOW()):
    /// replaying those evaluates them again.
    bool value_is_constant = false;
    bool operator==(const SessionChange&) const = default;
};

/// Everything the router learns from one statement's text.
///
/// A multi-statement text gets the flags of all its parts (OR) and one class: unknown if
/// any part is unknown; else, if any part is a transaction or table-lock boundary (begin,
/// begin_read_only, commit, rollback, lock_tables, unlock_tables), the last such part's
/// class; else the strongest of ddl > write > other > savepoint > prepare_sql >
/// session_set > use > read. session_changes and use_database are filled whatever the
/// final class: apply them whenever they are non-empty. After a multi-statement text the
/// server's status flags (in transaction, autocommit) are the authority. A stored-program
/// definition (CREATE PROCEDURE / FUNCTION / TRIGGER / EVENT / PACKAGE, ALTER EVENT, BEGIN NOT
/// ATOMIC) runs to the end of the text: the `;` in its body do not split it.
struct Classification {
    StatementClass cls = StatementClass::unknown;
    StatementFlags flags;
    Hint hint;
    std::vector<SessionChange> session_changes; ///< for session_set (one SET may assign many)
    std::string use_database;                   ///< for use: the database named (unquoted)
    bool global_set = false;                    ///< SET GLOBAL / PERSIST: primary, not replayed
};

/// The sql_mode parts that change how text is lexed; the default is the server's default
/// (backslash escapes on, ANSI_QUOTES off), which classify(sql) assumes. The server reports
/// NO_BACKSLASH_ESCAPES in every OK packet's status flags (SERVER_STATUS_NO_BACKSLASH_ESCAPES);
/// ANSI_QUOTES only through sql_mode. Character sets whose multi-byte characters can contain
/// a 0x5C byte (big5, cp932, gbk, sjis, gb18030) cannot be lexed byte-wise: do not route
/// sessions using them as a client character set away from the primary.
struct SqlMode {
    bool no_backslash_escapes = false; ///< '\' is an ordinary character inside strings
    bool ansi_quotes = false;          ///< "x" is an identifier, not a string
};

/// The statement without the comments and spaces before its first token (where hints are):
/// `/* sluice: cache */ SELECT 1` and `SELECT 1` are one statement to the cache. Versioned
/// comments (`/*!...*/`, `/*M!...*/`) are code and stay; an unterminated comment stays too.
std::string_view without_leading_comments(std::string_view sql) noexcept;

/// Classifies one COM_QUERY text (or a COM_STMT_PREPARE text). Never fails: what it cannot
/// make sense of is StatementClass::unknown or flags.bad_syntax.
Classification classify(std::string_view sql);
Classification classify(std::string_view sql, SqlMode mode);

/// Statement digest: literals folded to `?`, IN (...) lists of literals collapsed to
/// `IN (...)`, comments removed (versioned comments' contents kept), whitespace collapsed to
/// single spaces, keywords upper-cased, identifiers kept as written.
///
/// In detail: strings, numbers, hex/bit literals and `?` become `?`, together with any
/// unary + or - in front of them and adjacent strings ('a' 'b' is one literal); NULL, TRUE
/// and FALSE stay keywords. Reserved words, statement keywords and built-in function names
/// directly followed by `(` are upper-cased unless they are qualified (next to a `.`); other
/// words, `quoted` identifiers and @variables stay as written. Spacing is fixed: one space
/// between tokens except none after `(`, before `)`, `,`, `;`, around `.`, after a unary
/// operator, and between a name and its `(`; a trailing `;` is dropped.
/// digest(digest(x).text, mode) == digest(x, mode) whenever classify(x, mode) has no bad_syntax.
struct Digest {
    std::string text;
    std::uint64_t hash = 0; ///< XXH3_64bits of text
};
Digest digest(std::string_view sql);
Digest digest(std::string_view sql, SqlMode mode);

} // namespace sluice::router
