#pragma once
// The cache key (issue #9 "What is cached, and under which key"): a 128-bit XXH3 hash of
// everything that changes a read's answer. Pure: no clock, no I/O, no allocation but hex().

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sluice::cache {

/// The wire protocol the client speaks: the same statement answered over MySQL and over TDS
/// is different bytes, so the protocol is part of the key.
enum class Protocol : std::uint8_t { mysql = 1, tds = 2 };

/// One table a statement reads and the version it has now (bumped by every write to it).
/// `name` is the table as the version store names it (qualified `schema.table`), so that a
/// bump under that name changes every key that read it.
struct TableVersion {
    std::string_view name;
    std::uint64_t version = 0;
};

/// Everything that changes a cacheable read's answer. Views only: they must stay valid for
/// the call to make_key().
struct KeyInput {
    Protocol protocol = Protocol::mysql;
    /// The authenticated user. Left out of the key when `shared` is set.
    std::string_view user;
    /// The current (default) database: unqualified names in the statement resolve against it.
    std::string_view database;
    /// The statement as sent, normalized as the router likes (comments and spacing folded),
    /// but with its literal values: a text that folds literals to `?` (the router's digest
    /// text) makes `WHERE id = 1` and `WHERE id = 2` one key, so it may only be used here if
    /// the folded values go into `params`.
    std::string_view statement;
    /// The bound parameters of a prepared-statement execution (COM_STMT_EXECUTE, TDS RPC),
    /// in a form that identifies them on their own (types and values, not "the types bound
    /// last time"). std::nullopt for a text query; an empty span for an execution without
    /// parameters. The two differ because a MySQL text query's rows and a prepared
    /// statement's binary rows are different bytes for the same statement.
    std::optional<std::span<const std::uint8_t>> params;
    /// The result-affecting session settings, as the session tracks them (for MySQL: the
    /// `SET NAMES` character set, collation_connection, sql_mode, time_zone).
    std::string_view charset;
    std::string_view collation;
    std::string_view sql_mode;
    std::string_view time_zone;
    /// Any other session setting that changes answers (lc_time_names,
    /// div_precision_increment, group_concat_max_len, sql_select_limit, ...), and the client
    /// capabilities that change result bytes (MariaDB's extended metadata): the daemon puts
    /// every tracked assignment here in a canonical form.
    std::string_view settings;
    /// A rule says the entry is shared between users: `user` is left out, so every user
    /// running the statement gets the same key. Without it users never share an entry.
    bool shared = false;
    /// The tables the statement reads with their current versions, hashed in the order
    /// given: the caller sorts them by name and removes duplicates, so that one statement
    /// always gives one key however the router listed its tables.
    std::span<const TableVersion> tables;
};

/// A 128-bit cache key: XXH3_128bits of a length-prefixed encoding of a KeyInput.
struct Key {
    std::uint64_t high = 0;
    std::uint64_t low = 0;
    bool operator==(const Key&) const = default;
    /// 32 lowercase hex digits, `high` first (the XXH128 canonical, big-endian form).
    std::string hex() const;
};

/// The key of `in`. Every field enters the hash length-prefixed, after a format version tag,
/// so no two different inputs share an encoding: ("ab", "c") and ("a", "bc") differ, an empty
/// field differs from an absent one, and a new format never collides with an old one in a
/// Redis that proxies of two versions share.
Key make_key(const KeyInput& in) noexcept;

/// The Redis key of a cache entry: `prefix` then the hex digits in braces, e.g. with prefix
/// "sluice:" `sluice:{0123...ef}`. Redis Cluster hashes only the part inside the first `{}`
/// of a key (the hash tag) to choose its slot: with the hex digits as the tag, the slot is a
/// function of the cache key alone, so the keys that belong to one entry (the value, and any
/// companion such as a fill lock `...lock:{hex}` built with another prefix) land in one slot
/// on one node, and one lookup or one MULTI/script over them needs one node with no
/// CROSSSLOT error; different entries still spread over every slot.
/// Precondition: redis_prefix_ok(prefix) (a brace in the prefix would become the tag and put
/// every entry in one slot).
std::string redis_key(const Key& key, std::string_view prefix);

/// Whether `prefix` can start a Redis key made by redis_key(): it holds no `{` or `}`. For the
/// config validation.
constexpr bool redis_prefix_ok(std::string_view prefix) noexcept {
    return prefix.find_first_of("{}") == std::string_view::npos;
}

} // namespace sluice::cache

/// Keys are already uniform hashes: the low half is the bucket hash.
template <> struct std::hash<sluice::cache::Key> {
    std::size_t operator()(const sluice::cache::Key& k) const noexcept {
        return static_cast<std::size_t>(k.low);
    }
};
