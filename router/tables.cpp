// tables_read() / tables_written(): a small recursive-descent reader over the router's lexer
// that knows where tables are named (FROM and JOIN lists, TABLE t, DML and DDL targets) and
// scans everything else only for the parentheses, subqueries and calls inside it.
#include "sluice/router/tables.hpp"

#include "keywords.hpp"
#include "lexer.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

namespace sluice::router::detail {

namespace {

/// The words this reader tests for; other: any other token.
enum class W : std::uint8_t {
    other,
    algorithm,
    alter,
    as,
    by,
    character,
    column,
    concurrent,
    create,
    cross,
    currval,
    cycle,
    data,
    definer,
    delayed,
    delete_,
    drop,
    dual,
    duplicate,
    except,
    exists,
    fetch,
    first,
    for_,
    force,
    from,
    fulltext,
    group,
    having,
    high_priority,
    if_,
    ignore,
    index,
    infile,
    inner,
    insert,
    intersect,
    into,
    join,
    key,
    last,
    lastval,
    lateral,
    left,
    limit,
    load,
    local,
    lock,
    low_priority,
    natural,
    next,
    nextval,
    not_,
    nowait,
    offline,
    offset,
    on,
    online,
    or_,
    order,
    outer,
    over,
    partition,
    previous,
    procedure,
    quick,
    recursive,
    rename,
    replace,
    respect,
    restrict,
    returning,
    right,
    security,
    select,
    set,
    setval,
    spatial,
    sql,
    straight_join,
    system_time,
    table,
    tables,
    temporary,
    to,
    truncate,
    union_,
    unique,
    update,
    use,
    using_,
    value,
    values,
    view,
    wait,
    where,
    window,
    with,
    xml,
};

struct WordEntry {
    std::string_view word; ///< upper case
    W w;
};

constexpr WordEntry k_words[] = {
    {"ALGORITHM", W::algorithm},
    {"ALTER", W::alter},
    {"AS", W::as},
    {"BY", W::by},
    {"CHARACTER", W::character},
    {"COLUMN", W::column},
    {"CONCURRENT", W::concurrent},
    {"CREATE", W::create},
    {"CROSS", W::cross},
    {"CURRVAL", W::currval},
    {"CYCLE", W::cycle},
    {"DATA", W::data},
    {"DEFINER", W::definer},
    {"DELAYED", W::delayed},
    {"DELETE", W::delete_},
    {"DROP", W::drop},
    {"DUAL", W::dual},
    {"DUPLICATE", W::duplicate},
    {"EXCEPT", W::except},
    {"EXISTS", W::exists},
    {"FETCH", W::fetch},
    {"FIRST", W::first},
    {"FOR", W::for_},
    {"FORCE", W::force},
    {"FROM", W::from},
    {"FULLTEXT", W::fulltext},
    {"GROUP", W::group},
    {"HAVING", W::having},
    {"HIGH_PRIORITY", W::high_priority},
    {"IF", W::if_},
    {"IGNORE", W::ignore},
    {"INDEX", W::index},
    {"INFILE", W::infile},
    {"INNER", W::inner},
    {"INSERT", W::insert},
    {"INTERSECT", W::intersect},
    {"INTO", W::into},
    {"JOIN", W::join},
    {"KEY", W::key},
    {"LAST", W::last},
    {"LASTVAL", W::lastval},
    {"LATERAL", W::lateral},
    {"LEFT", W::left},
    {"LIMIT", W::limit},
    {"LOAD", W::load},
    {"LOCAL", W::local},
    {"LOCK", W::lock},
    {"LOW_PRIORITY", W::low_priority},
    {"NATURAL", W::natural},
    {"NEXT", W::next},
    {"NEXTVAL", W::nextval},
    {"NOT", W::not_},
    {"NOWAIT", W::nowait},
    {"OFFLINE", W::offline},
    {"OFFSET", W::offset},
    {"ON", W::on},
    {"ONLINE", W::online},
    {"OR", W::or_},
    {"ORDER", W::order},
    {"OUTER", W::outer},
    {"OVER", W::over},
    {"PARTITION", W::partition},
    {"PREVIOUS", W::previous},
    {"PROCEDURE", W::procedure},
    {"QUICK", W::quick},
    {"RECURSIVE", W::recursive},
    {"RENAME", W::rename},
    {"REPLACE", W::replace},
    {"RESPECT", W::respect},
    {"RESTRICT", W::restrict},
    {"RETURNING", W::returning},
    {"RIGHT", W::right},
    {"SECURITY", W::security},
    {"SELECT", W::select},
    {"SET", W::set},
    {"SETVAL", W::setval},
    {"SPATIAL", W::spatial},
    {"SQL", W::sql},
    {"STRAIGHT_JOIN", W::straight_join},
    {"SYSTEM_TIME", W::system_time},
    {"TABLE", W::table},
    {"TABLES", W::tables},
    {"TEMPORARY", W::temporary},
    {"TO", W::to},
    {"TRUNCATE", W::truncate},
    {"UNION", W::union_},
    {"UNIQUE", W::unique},
    {"UPDATE", W::update},
    {"USE", W::use},
    {"USING", W::using_},
    {"VALUE", W::value},
    {"VALUES", W::values},
    {"VIEW", W::view},
    {"WAIT", W::wait},
    {"WHERE", W::where},
    {"WINDOW", W::window},
    {"WITH", W::with},
    {"XML", W::xml},
};

constexpr std::size_t k_max_word = 16;
constexpr std::size_t k_slots = 512; // a power of two, about 5 slots per word

struct WordIndex {
    std::array<std::int16_t, k_slots> slot{};
    std::array<std::uint32_t, k_slots> hash{};
};

constexpr WordIndex build_word_index() {
    WordIndex ix;
    for (auto& s : ix.slot)
        s = -1;
    for (std::size_t i = 0; i < std::size(k_words); ++i) {
        const std::string_view w = k_words[i].word;
        if (w.size() > k_max_word) throw "word too long";
        const std::uint32_t h = keyword_hash(w);
        std::size_t at = h & (k_slots - 1);
        while (ix.slot[at] >= 0) {
            if (k_words[ix.slot[at]].word == w) throw "duplicate word";
            at = (at + 1) & (k_slots - 1);
        }
        ix.slot[at] = static_cast<std::int16_t>(i);
        ix.hash[at] = h;
    }
    return ix;
}

constexpr WordIndex k_word_index = build_word_index();

W word_of(const Token& t) noexcept {
    if (t.kind != TokenKind::word || t.text.size() > k_max_word) return W::other;
    for (std::size_t at = t.hash & (k_slots - 1);; at = (at + 1) & (k_slots - 1)) {
        const int s = k_word_index.slot[at];
        if (s < 0) return W::other;
        if (k_word_index.hash[at] == t.hash && iequals(t.text, k_words[s].word))
            return k_words[s].w;
    }
}

bool is_reserved(const Token& t) noexcept {
    const KeywordInfo* k = lookup_keyword(t.text, t.hash);
    return k != nullptr && (k->attrs & attr::reserved) != 0;
}

/// Built-in functions and sized types that router/keywords.cpp does not list, so that calling
/// them is not taken for a stored function. Looked at only for a `name(` whose name is not
/// a known word.
// clang-format off
constexpr std::string_view k_more_builtins[] = {
    "ADD_MONTHS", "BINLOG_GTID_POS", "BIN_TO_UUID", "CHR", "COLUMN_ADD", "COLUMN_CHECK",
    "COLUMN_CREATE", "COLUMN_DELETE", "COLUMN_EXISTS", "COLUMN_GET", "COLUMN_JSON", "COLUMN_LIST",
    "CRC32C", "DATETIME", "DECODE_ORACLE", "DES_DECRYPT", "DES_ENCRYPT", "ENCRYPT", "FORMAT_BYTES",
    "FORMAT_PICO_TIME", "GROUPING", "IS_IPV4", "IS_IPV4_COMPAT", "IS_IPV4_MAPPED", "IS_IPV6",
    "IS_UUID", "JSON_ARRAY_APPEND", "JSON_ARRAY_INSERT", "JSON_ARRAY_INTERSECT", "JSON_COMPACT",
    "JSON_CONTAINS_PATH", "JSON_DEPTH", "JSON_DETAILED", "JSON_EQUALS", "JSON_EXISTS",
    "JSON_INSERT", "JSON_KEY_VALUE", "JSON_LOOSE", "JSON_MERGE", "JSON_MERGE_PATCH",
    "JSON_MERGE_PRESERVE", "JSON_NORMALIZE", "JSON_OVERLAPS", "JSON_PRETTY", "JSON_QUERY",
    "JSON_REMOVE", "JSON_REPLACE", "JSON_SCHEMA_VALID", "JSON_SEARCH", "JSON_STORAGE_FREE",
    "JSON_STORAGE_SIZE", "JSON_TYPE", "KDF", "LENGTHB", "LINESTRING", "MAKE_SET", "MEDIAN",
    "NATURAL_SORT_KEY", "NCHAR", "NUMBER", "NVARCHAR", "NVL", "NVL2", "OLD_PASSWORD", "PASSWORD",
    "PERCENTILE_CONT", "PERCENTILE_DISC", "POINT", "POLYGON", "REGEXP_LIKE", "ROWNUM", "SFORMAT",
    "ST_ASTEXT", "ST_ASWKT", "ST_CONTAINS", "ST_DISTANCE", "ST_DISTANCE_SPHERE", "ST_GEOMFROMTEXT",
    "ST_INTERSECTS", "ST_SRID", "ST_WITHIN", "ST_X", "ST_Y", "TO_CHAR", "UUID_TO_BIN", "VARCHAR2",
};
// clang-format on

bool is_more_builtin(std::string_view name) noexcept {
    return std::any_of(std::begin(k_more_builtins), std::end(k_more_builtins),
                       [&](std::string_view b) { return iequals(name, b); });
}

/// The characters of a name token's value: a word as written, a quoted identifier without
/// its quotes and with doubled quotes made single.
class NameChars {
public:
    explicit NameChars(const Token& t) noexcept : s_(t.text), end_(t.text.size()) {
        if (t.kind == TokenKind::quoted_ident && s_.size() >= 2) {
            quote_ = s_[0];
            i_ = 1;
            end_ = s_.size() - 1;
        }
    }
    bool next(char& c) noexcept {
        if (i_ >= end_) return false;
        c = s_[i_];
        i_ += (quote_ != 0 && c == quote_) ? 2 : 1;
        return true;
    }

private:
    std::string_view s_;
    std::size_t i_ = 0;
    std::size_t end_;
    char quote_ = 0;
};

bool same_name(const Token& a, const Token& b) noexcept {
    NameChars x(a), y(b);
    char cx = 0, cy = 0;
    for (;;) {
        const bool more_x = x.next(cx);
        const bool more_y = y.next(cy);
        if (more_x != more_y) return false;
        if (!more_x) return true;
        if (cx != cy) return false;
    }
}

void append_name(const Token& t, std::string& out) {
    const std::size_t from = out.size();
    if (t.kind == TokenKind::quoted_ident)
        append_unquoted(t.text, false, out); // identifiers know no backslash escapes
    else if (t.kind == TokenKind::word)
        out.append(t.text);
    for (std::size_t i = from; i < out.size(); ++i)
        out[i] = to_lower(out[i]);
}

/// Parenthesis levels deeper than this are not followed (the reader recurses per level).
constexpr int k_max_depth = 64;
/// WITH names remembered at once; more are reported as tables, which is harmless.
constexpr std::size_t k_max_ctes = 16;

struct Name {
    Token schema; ///< kind end when the name was not qualified
    Token table;
};

class Extractor {
public:
    Extractor(std::string_view sql, SqlMode mode, TableRefs& out) noexcept
        : lex_(sql, mode), out_(out) {}

    void read();
    void written();
    bool complete() const noexcept { return complete_; }

private:
    // Tokens.
    void advance() noexcept;
    Token peek() noexcept;
    bool at_end() const noexcept {
        return stop_ || tok_.kind == TokenKind::end || tok_.kind == TokenKind::error ||
               tok_.is_op(';');
    }
    bool is_name() const noexcept {
        return tok_.kind == TokenKind::word || tok_.kind == TokenKind::quoted_ident;
    }
    void unsure() noexcept { complete_ = false; }
    void give_up() noexcept {
        complete_ = false;
        stop_ = true;
    }

    // Queries and expressions.
    void scan_level(bool on_condition);
    bool ends_condition() noexcept;
    void nested();
    void skip_group() noexcept;
    bool query_follows() noexcept;
    bool cte_follows() noexcept;
    bool sequence_follows() noexcept;
    bool window_from_follows() noexcept;
    void with_clause();
    void check_call() noexcept;

    // Table references.
    void table_list(bool allow_star);
    bool table_factor(bool allow_star);
    bool join_operator() noexcept;
    bool list_ends() noexcept;
    void alias_and_hints(bool derived) noexcept;
    bool name(Name& n, bool allow_star) noexcept;
    bool name_and_add();
    void add(const Name& n);
    void push_cte(const Token& name) noexcept;
    bool is_cte(const Token& name) const noexcept;

    // Statements that change things.
    void insert();
    void update();
    void delete_();
    void load();
    void truncate();
    void alter();
    void drop();
    void rename();
    void create();
    W object_after_prefix() noexcept;
    void if_exists() noexcept;
    bool table_after_on();
    void drain() noexcept {
        while (!at_end())
            advance();
    }
    void finish() noexcept;

    Lexer lex_;
    TableRefs& out_;
    bool complete_ = true;
    bool stop_ = false; // gave up: every loop ends

    Token tok_;                   // the current code token
    W w_ = W::other;              // its word, if it is one and does not follow a `.`
    bool after_dot_ = false;      // it follows a `.`
    bool after_as_ = false;       // it follows AS
    Token prev_;                  // the code token before it
    bool prev_after_dot_ = false; // ... and whether that one followed a `.`
    bool prev_after_as_ = false;  // ... or AS
    int depth_ = 0;               // parenthesis levels entered

    std::array<Token, k_max_ctes> ctes_{}; // WITH names in scope, innermost last
    std::size_t cte_count_ = 0;
};

void Extractor::advance() noexcept {
    prev_ = tok_;
    prev_after_dot_ = after_dot_;
    prev_after_as_ = after_as_;
    after_dot_ = tok_.is_op('.');
    after_as_ = w_ == W::as;
    do {
        tok_ = lex_.next();
    } while (tok_.kind == TokenKind::comment);
    // After a `.` comes a name, reserved word or not: `t.from` is a column.
    w_ = after_dot_ ? W::other : word_of(tok_);
}

Token Extractor::peek() noexcept {
    const Lexer::State st = lex_.save();
    Token t;
    do {
        t = lex_.next();
    } while (t.kind == TokenKind::comment);
    lex_.restore(st);
    return t;
}

// Scans one parenthesis level from tok_ to the `)` that closes it (left for the caller) or
// the end of the statement, finding the queries, calls and nested levels in it. With
// `on_condition` it is a join condition and also stops where the condition ends.
void Extractor::scan_level(bool on_condition) {
    const std::size_t ctes = cte_count_; // WITH names defined here are in scope to its end
    bool query = false;                  // a SELECT at this level: FROM starts a table list
    while (!at_end()) {
        if (tok_.is_op(')')) {
            if (depth_ == 0) give_up(); // closes nothing
            break;
        }
        if (on_condition && ends_condition()) break;
        if (tok_.is_op('(')) {
            check_call();
            nested();
            continue;
        }
        if (after_dot_ && tok_.kind == TokenKind::word) {
            const W w = word_of(tok_);
            if (w == W::nextval || w == W::currval || w == W::lastval) unsure(); // s.nextval
        }
        switch (w_) {
        case W::select:
            query = true;
            break;
        case W::from:
            // Without a SELECT at this level, FROM belongs to EXTRACT(x FROM d), TRIM(.. FROM s),
            // SUBSTRING(s FROM n) or FOR PORTION OF p FROM a TO b; NTH_VALUE(..) FROM FIRST is
            // not a table list either.
            if (query) {
                if (prev_.is_op(')') && window_from_follows()) break;
                advance();
                table_list(false);
                continue;
            }
            break;
        case W::table: // TABLE t, also as a query term: UNION TABLE t, IN (TABLE t)
            advance();
            name_and_add();
            continue;
        case W::with:
            if (cte_follows()) {
                with_clause();
                continue;
            }
            break; // WITH ROLLUP, WITH CHECK OPTION
        case W::join:
            unsure(); // a join outside a table list: the list was lost somewhere
            break;
        case W::next:
        case W::previous:
            if (sequence_follows()) unsure(); // NEXT VALUE FOR s
            break;
        default:
            break;
        }
        advance();
    }
    cte_count_ = ctes;
}

// Where a join condition (ON ...) ends: the next join, the next table, or the clause after
// the table list.
bool Extractor::ends_condition() noexcept {
    if (tok_.is_op(',')) return true;
    switch (w_) {
    case W::left:
    case W::right:
        return !peek().is_op('('); // LEFT(s, 2) is a function
    case W::join:
    case W::inner:
    case W::cross:
    case W::natural:
    case W::straight_join:
    case W::on:
    case W::using_:
        return true;
    default:
        return list_ends();
    }
}

// tok_ is `(`: reads the level it opens and the `)` that closes it.
void Extractor::nested() {
    if (depth_ >= k_max_depth) {
        give_up();
        return;
    }
    advance();
    ++depth_;
    scan_level(false);
    --depth_;
    if (tok_.is_op(')'))
        advance();
    else
        unsure(); // unbalanced
}

// tok_ is `(`: moves past its `)`, looking at nothing inside (column lists, index names,
// definitions).
void Extractor::skip_group() noexcept {
    int depth = 0;
    while (!at_end()) {
        if (tok_.is_op('(')) {
            ++depth;
        } else if (tok_.is_op(')')) {
            if (--depth <= 0) {
                advance();
                return;
            }
        }
        advance();
    }
    unsure(); // unbalanced
}

// tok_ is `(`: whether a query comes inside it (after any further `(`), rather than a table
// list or column names.
bool Extractor::query_follows() noexcept {
    const Lexer::State st = lex_.save();
    Token t;
    do {
        t = lex_.next();
    } while (t.kind == TokenKind::comment || t.is_op('('));
    lex_.restore(st);
    const W w = word_of(t);
    return w == W::select || w == W::with || w == W::values || w == W::table;
}

// tok_ is WITH: whether common table expressions follow (WITH [RECURSIVE] name [(...)] AS).
bool Extractor::cte_follows() noexcept {
    const Lexer::State st = lex_.save();
    Token t;
    do {
        t = lex_.next();
    } while (t.kind == TokenKind::comment);
    bool cte = word_of(t) == W::recursive;
    if (!cte && (t.kind == TokenKind::word || t.kind == TokenKind::quoted_ident)) {
        do {
            t = lex_.next();
        } while (t.kind == TokenKind::comment);
        cte = t.is_op('(') || word_of(t) == W::as;
    }
    lex_.restore(st);
    return cte;
}

// tok_ is FROM after `)`: whether it is NTH_VALUE(..) FROM {FIRST | LAST} [RESPECT NULLS]
// OVER, not a table named first or last.
bool Extractor::window_from_follows() noexcept {
    const Lexer::State st = lex_.save();
    Token t[3];
    for (auto& x : t) {
        do {
            x = lex_.next();
        } while (x.kind == TokenKind::comment);
    }
    lex_.restore(st);
    const W w0 = word_of(t[0]), w1 = word_of(t[1]);
    if (w0 != W::first && w0 != W::last) return false;
    return w1 == W::over || (w1 == W::respect && iequals(t[2].text, "NULLS"));
}

// tok_ is NEXT or PREVIOUS: whether VALUE FOR follows.
bool Extractor::sequence_follows() noexcept {
    const Lexer::State st = lex_.save();
    Token t;
    do {
        t = lex_.next();
    } while (t.kind == TokenKind::comment);
    bool seq = word_of(t) == W::value;
    if (seq) {
        do {
            t = lex_.next();
        } while (t.kind == TokenKind::comment);
        seq = word_of(t) == W::for_;
    }
    lex_.restore(st);
    return seq;
}

// WITH [RECURSIVE] name [(columns)] AS (query) [CYCLE ... RESTRICT] [, ...]
void Extractor::with_clause() {
    advance();
    const bool recursive = w_ == W::recursive;
    if (recursive) advance();
    for (;;) {
        if (!is_name()) {
            unsure();
            return;
        }
        const Token cte = tok_;
        advance();
        if (tok_.is_op('(')) skip_group();
        if (w_ != W::as) {
            unsure();
            return;
        }
        advance();
        if (!tok_.is_op('(')) {
            unsure();
            return;
        }
        // A recursive CTE's body may name the CTE itself; a plain one means the table by
        // that name, if any.
        if (recursive) push_cte(cte);
        nested();
        if (!recursive) push_cte(cte);
        if (w_ == W::cycle) { // MariaDB: CYCLE columns RESTRICT
            while (!at_end() && w_ != W::restrict)
                advance();
            if (w_ == W::restrict) advance();
        }
        if (!tok_.is_op(',')) return;
        advance();
    }
}

// tok_ is `(` after prev_: a call of a built-in is fine; a stored function may read or write
// tables the text does not name.
void Extractor::check_call() noexcept {
    if (prev_after_as_) return; // AS alias (columns), CAST(x AS DECIMAL(10, 2))
    if (prev_.kind == TokenKind::quoted_ident) {
        unsure(); // `f`(x)
        return;
    }
    if (prev_.kind != TokenKind::word) return;
    if (prev_after_dot_) {
        unsure(); // db.f(x)
        return;
    }
    switch (word_of(prev_)) {
    case W::nextval: // sequences are tables too
    case W::lastval:
    case W::setval:
        unsure();
        return;
    default:
        break;
    }
    if (lookup_keyword(prev_.text, prev_.hash) != nullptr || is_more_builtin(prev_.text)) return;
    unsure();
}

// table_reference [, table_reference ...], each a factor with joins, up to what follows the
// list. allow_star: DELETE targets, `t.*`.
void Extractor::table_list(bool allow_star) {
    for (;;) {
        if (!table_factor(allow_star)) return;
        for (;;) { // conditions, also nested: t1 JOIN t2 JOIN t3 ON c1 ON c2
            if (w_ == W::on) {
                if (word_of(peek()) == W::duplicate) return; // INSERT ... SELECT ... FROM t ON
                advance();                                   // DUPLICATE KEY UPDATE
                scan_level(true);
            } else if (w_ == W::using_ && peek().is_op('(')) {
                advance();
                skip_group();
            } else {
                break;
            }
        }
        if (tok_.is_op(',')) {
            advance();
            continue;
        }
        if (join_operator()) continue;
        if (!list_ends()) unsure();
        return;
    }
}

// [NATURAL] [INNER | CROSS | LEFT [OUTER] | RIGHT [OUTER]] JOIN, STRAIGHT_JOIN: consumed.
bool Extractor::join_operator() noexcept {
    bool modifiers = false;
    while (w_ == W::natural || w_ == W::inner || w_ == W::cross || w_ == W::left ||
           w_ == W::right || w_ == W::outer) {
        modifiers = true;
        advance();
    }
    if (w_ == W::join || w_ == W::straight_join) {
        advance();
        return true;
    }
    if (modifiers) unsure();
    return false;
}

// What may follow a table list (left for the caller).
bool Extractor::list_ends() noexcept {
    if (at_end() || tok_.is_op(')')) return true;
    switch (w_) {
    case W::where:
    case W::group:
    case W::having:
    case W::order:
    case W::limit:
    case W::window:
    case W::union_:
    case W::intersect:
    case W::except:
    case W::into:
    case W::lock:
    case W::procedure:
    case W::set:       // UPDATE t SET
    case W::returning: // MariaDB DELETE ... RETURNING
    case W::offset:
    case W::fetch:
    case W::with:   // CREATE VIEW ... WITH CHECK OPTION
    case W::from:   // DELETE t1 FROM ...
    case W::using_: // DELETE FROM t1 USING ...
        return true;
    case W::for_: // FOR UPDATE, FOR SHARE, FOR PORTION OF; not FOR SYSTEM_TIME
        return word_of(peek()) != W::system_time;
    default:
        return false;
    }
}

// One table factor: a name, a derived table, or a parenthesized table list; with what may
// follow it (PARTITION, alias, index hints). False, with the result marked incomplete, when
// it is none of those.
bool Extractor::table_factor(bool allow_star) {
    if (w_ == W::lateral) advance(); // LATERAL (subquery) AS d
    if (tok_.is_op('(')) {
        if (query_follows()) { // (SELECT ...) AS d [(columns)]
            nested();
            alias_and_hints(true);
            return true;
        }
        if (depth_ >= k_max_depth) { // (t1 JOIN t2 ...)
            give_up();
            return false;
        }
        advance();
        ++depth_;
        table_list(false);
        --depth_;
        if (!tok_.is_op(')')) {
            unsure();
            return false;
        }
        advance();
        return true;
    }
    if (w_ == W::dual) { // FROM DUAL: no table
        advance();
        return true;
    }
    Name n;
    if (!name(n, allow_star)) return false;
    if (tok_.is_op('(')) { // JSON_TABLE(...), a table function
        unsure();
        return false;
    }
    add(n);
    if (w_ == W::partition) {
        advance();
        if (!tok_.is_op('(')) {
            unsure();
            return false;
        }
        skip_group();
    }
    if (w_ == W::for_ && word_of(peek()) == W::system_time) {
        unsure(); // MariaDB system versioning: history rows are read too
        return false;
    }
    alias_and_hints(false);
    return true;
}

// [AS] alias [(columns) of a derived table] [{USE | FORCE | IGNORE} {INDEX | KEY}
// [FOR {JOIN | ORDER BY | GROUP BY}] (names) ...]
void Extractor::alias_and_hints(bool derived) noexcept {
    if (w_ == W::as) {
        advance();
        if (!is_name() && tok_.kind != TokenKind::string) {
            unsure();
            return;
        }
        advance();
    } else if (tok_.kind == TokenKind::quoted_ident ||
               (tok_.kind == TokenKind::word && !is_reserved(tok_))) {
        advance();
    }
    if (derived && tok_.is_op('(')) skip_group();
    while (w_ == W::use || w_ == W::force || w_ == W::ignore) {
        const W next = word_of(peek());
        if (next != W::index && next != W::key) return;
        advance();
        advance();
        if (w_ == W::for_) {
            advance();
            if (w_ == W::order || w_ == W::group) advance();
            advance(); // JOIN, or the BY of ORDER BY / GROUP BY
        }
        if (!tok_.is_op('(')) {
            unsure();
            return;
        }
        skip_group();
    }
}

// [schema.]table at tok_, and `.*` after it when allow_star. False, with the result marked
// incomplete, when tok_ does not start a name (a placeholder, a string, a reserved word).
bool Extractor::name(Name& n, bool allow_star) noexcept {
    if (!is_name() || (tok_.kind == TokenKind::word && is_reserved(tok_))) {
        unsure();
        return false;
    }
    n.schema = Token{};
    n.table = tok_;
    advance();
    if (tok_.is_op('.')) {
        advance();
        if (allow_star && tok_.is_op('*')) {
            advance();
            return true;
        }
        if (!is_name()) {
            unsure();
            return false;
        }
        n.schema = n.table;
        n.table = tok_;
        advance();
    }
    if (allow_star && tok_.is_op('.') && peek().is_op('*')) {
        advance();
        advance();
    }
    return true;
}

bool Extractor::name_and_add() {
    Name n;
    if (!name(n, false)) return false;
    add(n);
    return true;
}

void Extractor::add(const Name& n) {
    if (n.schema.kind == TokenKind::end && is_cte(n.table)) return;
    TableName t;
    append_name(n.schema, t.schema);
    append_name(n.table, t.table);
    out_.tables.push_back(std::move(t));
}

void Extractor::push_cte(const Token& name) noexcept {
    if (cte_count_ < k_max_ctes) ctes_[cte_count_++] = name;
}

bool Extractor::is_cte(const Token& name) const noexcept {
    for (std::size_t i = 0; i < cte_count_; ++i) {
        if (same_name(ctes_[i], name)) return true;
    }
    return false;
}

void Extractor::finish() noexcept {
    if (tok_.kind == TokenKind::error) unsure();
    while (tok_.is_op(';'))
        advance();
    if (tok_.kind != TokenKind::end) unsure(); // a second statement, or unreadable text
}

void Extractor::read() {
    advance();
    if (w_ == W::with) {
        with_clause();
        if (w_ != W::select && w_ != W::table && w_ != W::values && !tok_.is_op('(')) {
            unsure(); // WITH ... UPDATE / DELETE
            return;
        }
    } else if (w_ != W::select && w_ != W::table && w_ != W::values && !tok_.is_op('(')) {
        unsure();
        return;
    }
    scan_level(false);
    finish();
}

void Extractor::written() {
    advance();
    if (w_ == W::with) {
        with_clause();
        if (w_ != W::update && w_ != W::delete_) {
            unsure(); // WITH ... SELECT changes nothing; WITH ... INSERT is not SQL
            return;
        }
    }
    switch (w_) {
    case W::insert:
    case W::replace:
        insert();
        break;
    case W::update:
        update();
        break;
    case W::delete_:
        delete_();
        break;
    case W::load:
        load();
        break;
    case W::truncate:
        truncate();
        break;
    case W::alter:
        alter();
        break;
    case W::drop:
        drop();
        break;
    case W::rename:
        rename();
        break;
    case W::create:
        create();
        break;
    default:
        unsure();
        return;
    }
    finish();
}

// INSERT | REPLACE [LOW_PRIORITY | DELAYED | HIGH_PRIORITY] [IGNORE] [INTO] t [PARTITION (..)]
// [(columns)] then VALUES / SET / SELECT / TABLE / (query), ON DUPLICATE KEY UPDATE, RETURNING.
void Extractor::insert() {
    advance();
    while (w_ == W::low_priority || w_ == W::delayed || w_ == W::high_priority || w_ == W::ignore)
        advance();
    if (w_ == W::into) advance();
    if (!name_and_add()) return;
    if (w_ == W::partition) {
        advance();
        if (tok_.is_op('(')) skip_group();
    }
    if (tok_.is_op('(')) {
        if (query_follows())
            nested(); // INSERT INTO t (SELECT ...)
        else
            skip_group(); // the column list
    }
    scan_level(false);
}

// UPDATE [LOW_PRIORITY] [IGNORE] table_references SET ...
void Extractor::update() {
    advance();
    while (w_ == W::low_priority || w_ == W::ignore)
        advance();
    table_list(false);
    scan_level(false);
}

// DELETE [LOW_PRIORITY] [QUICK] [IGNORE] FROM t ... | t1[.*], ... FROM refs | FROM t1[.*], ...
// USING refs. In the multi-table forms every target is in refs (by name or alias: the server
// refuses others), so refs alone are reported and aliases never pass for tables.
void Extractor::delete_() {
    advance();
    while (w_ == W::low_priority || w_ == W::quick || w_ == W::ignore)
        advance();
    const std::size_t targets = out_.tables.size();
    if (w_ == W::from) {
        advance();
        table_list(true);
        if (w_ == W::using_) {
            out_.tables.resize(targets);
            advance();
            table_list(false);
        }
    } else {
        table_list(true);
        if (w_ != W::from) {
            unsure();
            return;
        }
        out_.tables.resize(targets);
        advance();
        table_list(false);
    }
    scan_level(false);
}

// LOAD {DATA | XML} [LOW_PRIORITY | CONCURRENT] [LOCAL] INFILE 'file' [REPLACE | IGNORE]
// INTO TABLE t ...
void Extractor::load() {
    advance();
    if (w_ != W::data && w_ != W::xml) {
        unsure(); // LOAD INDEX INTO CACHE
        return;
    }
    advance();
    while (w_ == W::low_priority || w_ == W::concurrent || w_ == W::local)
        advance();
    if (w_ != W::infile) {
        unsure();
        return;
    }
    advance();
    if (tok_.kind != TokenKind::string) {
        unsure();
        return;
    }
    advance();
    if (w_ == W::replace || w_ == W::ignore) advance();
    if (w_ != W::into) {
        unsure();
        return;
    }
    advance();
    if (w_ != W::table) {
        unsure();
        return;
    }
    advance();
    if (!name_and_add()) return;
    // The options and the column list name no table; SET col = expr may call functions or
    // hold subqueries.
    while (!at_end()) {
        if (w_ == W::set && word_of(prev_) != W::character) {
            advance();
            scan_level(false);
            return;
        }
        if (tok_.is_op('('))
            skip_group();
        else
            advance();
    }
}

// TRUNCATE [TABLE] t [WAIT n | NOWAIT]
void Extractor::truncate() {
    advance();
    if (w_ == W::table) advance();
    if (!name_and_add()) return;
    drain();
}

// ALTER [ONLINE] [IGNORE] TABLE [IF EXISTS] t ...; ALTER [ALGORITHM = ..] [DEFINER = ..]
// [SQL SECURITY ..] VIEW v ...
void Extractor::alter() {
    advance();
    const W object = object_after_prefix();
    if (object == W::view) {
        advance();
        if (name_and_add()) drain();
        return;
    }
    if (object != W::table) {
        unsure();
        return;
    }
    advance();
    if_exists();
    if (!name_and_add()) return;
    while (!at_end()) {
        if (tok_.is_op('(')) {
            skip_group();
        } else if (w_ == W::rename) { // RENAME [TO | AS] u; not RENAME COLUMN | INDEX | KEY
            advance();
            if (w_ == W::column || w_ == W::index || w_ == W::key) {
                advance();
                continue;
            }
            if (w_ == W::to || w_ == W::as) advance();
            name_and_add();
        } else if (w_ == W::table) { // EXCHANGE PARTITION p WITH TABLE u, CONVERT ... TABLE u
            advance();
            name_and_add();
        } else {
            advance();
        }
    }
}

// DROP [TEMPORARY] TABLE | VIEW [IF EXISTS] a, b ...; DROP INDEX i ON t
void Extractor::drop() {
    advance();
    if (w_ == W::temporary) advance();
    if (w_ == W::index) {
        if (table_after_on()) drain();
        return;
    }
    if (w_ != W::table && w_ != W::view) {
        unsure();
        return;
    }
    advance();
    if_exists();
    for (;;) {
        if (!name_and_add()) return;
        if (!tok_.is_op(',')) break;
        advance();
    }
    drain(); // RESTRICT, CASCADE, WAIT n, NOWAIT
}

// RENAME TABLE[S] [IF EXISTS] a [WAIT n | NOWAIT] TO b [, c TO d ...]
void Extractor::rename() {
    advance();
    if (w_ != W::table && w_ != W::tables) {
        unsure(); // RENAME USER
        return;
    }
    advance();
    if_exists();
    for (;;) {
        if (!name_and_add()) return;
        if (w_ == W::wait) {
            advance();
            advance();
        } else if (w_ == W::nowait) {
            advance();
        }
        if (w_ != W::to) {
            unsure();
            return;
        }
        advance();
        if (!name_and_add()) return;
        if (!tok_.is_op(',')) break;
        advance();
    }
    drain();
}

// CREATE [OR REPLACE] [TEMPORARY] TABLE [IF NOT EXISTS] t ...; CREATE [OR REPLACE]
// [ALGORITHM = ..] [DEFINER = ..] [SQL SECURITY ..] VIEW [IF NOT EXISTS] v ...;
// CREATE [UNIQUE | FULLTEXT | SPATIAL] INDEX i ... ON t ...
void Extractor::create() {
    advance();
    const W object = object_after_prefix();
    if (object == W::index) {
        if (table_after_on()) drain();
        return;
    }
    if (object != W::table && object != W::view) {
        unsure();
        return;
    }
    advance();
    if_exists();
    if (name_and_add()) drain(); // definitions, LIKE u, AS SELECT: nothing else changes
}

// Walks the words between CREATE / ALTER and the kind of object, and returns that kind:
// TABLE, VIEW, INDEX, or other for anything else (DATABASE, PROCEDURE, TRIGGER, ...).
W Extractor::object_after_prefix() noexcept {
    for (int i = 0; i < 16 && !at_end(); ++i) {
        switch (w_) {
        case W::table:
        case W::view:
        case W::index:
            return w_;
        case W::or_: // OR REPLACE
        case W::replace:
        case W::temporary:
        case W::online:
        case W::offline:
        case W::ignore:
        case W::unique:
        case W::fulltext:
        case W::spatial:
            advance();
            break;
        case W::algorithm: // ALGORITHM = MERGE
            advance();
            if (tok_.is_op('=')) advance();
            advance();
            break;
        case W::sql: // SQL SECURITY INVOKER
            advance();
            if (w_ == W::security) advance();
            advance();
            break;
        case W::definer: // DEFINER = user[@host] | CURRENT_USER[()] | CURRENT_ROLE
            advance();
            if (tok_.is_op('=')) advance();
            advance();
            if (tok_.is_op('@')) {
                advance();
                advance();
            } else if (tok_.kind == TokenKind::user_var) { // 'u' @'h' lexes as @'h'
                advance();
            } else if (tok_.is_op('(')) {
                skip_group();
            }
            break;
        default:
            return W::other;
        }
    }
    return W::other;
}

// IF [NOT] EXISTS
void Extractor::if_exists() noexcept {
    if (w_ != W::if_) return;
    advance();
    if (w_ == W::not_) advance();
    if (w_ == W::exists) advance();
}

// tok_ is INDEX: the t of `INDEX [IF [NOT] EXISTS] i [USING ..] ON t`.
bool Extractor::table_after_on() {
    for (int i = 0; i < 16 && !at_end(); ++i) {
        if (w_ == W::on) {
            advance();
            return name_and_add();
        }
        advance();
    }
    unsure();
    return false;
}

void sort_unique(std::vector<TableName>& tables) {
    std::sort(tables.begin(), tables.end());
    tables.erase(std::unique(tables.begin(), tables.end()), tables.end());
}

} // namespace

} // namespace sluice::router::detail

namespace sluice::router {

TableRefs tables_read(std::string_view sql, SqlMode mode) {
    TableRefs out;
    detail::Extractor x(sql, mode, out);
    x.read();
    out.complete = x.complete();
    detail::sort_unique(out.tables);
    return out;
}

TableRefs tables_written(std::string_view sql, SqlMode mode) {
    TableRefs out;
    detail::Extractor x(sql, mode, out);
    x.written();
    out.complete = x.complete();
    detail::sort_unique(out.tables);
    return out;
}

} // namespace sluice::router
