#pragma once
// What the config readers share: the message context, `file:line: key: reason` failures, key
// paths, the Section reader, and the parsers of each section that parse_config() puts together.
// Private to sluice_config.

#include "sluice/config/config.hpp"

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <toml++/toml.h>
#include <utility>
#include <vector>

namespace sluice::config::detail {

// A day: long enough for any sane timeout, short enough that `now + timeout` never overflows.
inline constexpr std::int64_t max_timeout_ms = 86'400'000;
inline constexpr std::int64_t max_u32 = 4'294'967'295;

/// What every message needs: the name it starts with, and where relative file names start from.
struct Context {
    std::string source;
    std::filesystem::path base_dir; ///< empty: relative file names stay relative to the cwd
};

/// Throws ConfigError("source:line: key: reason").
[[noreturn]] void fail(const Context& ctx, std::uint32_t line, std::string_view key,
                       std::string_view reason);
/// The line a node starts on.
std::uint32_t line_of(const toml::node& node) noexcept;
/// `path.key`, the key quoted as TOML would write it when it is not bare.
std::string join(std::string_view path, std::string_view key);
/// `path[index]`.
std::string element(std::string_view path, std::size_t index);
/// `"text"`.
std::string in_quotes(std::string_view text);
bool is_one_of(std::string_view value, std::initializer_list<std::string_view> allowed) noexcept;

/// One TOML table being read. Construction refuses keys outside `known`, so a typo is never
/// silently ignored; the readers then check types and ranges and name the dotted path on errors.
class Section {
public:
    Section(const Context& ctx, const toml::table& table, std::string path,
            std::initializer_list<std::string_view> known)
        : ctx_(ctx), table_(table), path_(std::move(path)) {
        // Report the first unknown key in the file, not the first in the table's sorted order.
        const toml::key* unknown = nullptr;
        for (auto&& [key, value] : table_) {
            if (is_one_of(key.str(), known)) continue;
            if (unknown == nullptr || key.source().begin < unknown->source().begin) unknown = &key;
        }
        if (unknown != nullptr) {
            fail(ctx_, unknown->source().begin.line, join(path_, unknown->str()), "unknown key");
        }
    }

    std::string path_of(std::string_view key) const { return join(path_, key); }
    /// The table's own line: where a missing key is reported.
    std::uint32_t line() const noexcept { return line_of(table_); }
    const toml::node* find(std::string_view key) const { return table_.get(key); }

    /// Fails at `key`'s value, or at the table when `key` is absent.
    [[noreturn]] void fail_at(std::string_view key, std::string_view reason) const {
        const toml::node* node = find(key);
        fail(ctx_, node != nullptr ? line_of(*node) : line(), path_of(key), reason);
    }

    std::optional<std::string> string(std::string_view key) const {
        const toml::node* node = find(key);
        if (node == nullptr) return std::nullopt;
        if (const auto* value = node->as_string()) return value->get();
        fail_at(key, "expected a string");
    }

    /// A string that must be present and not empty.
    std::string required_string(std::string_view key) const {
        auto value = string(key);
        if (!value) fail_at(key, "is required");
        if (value->empty()) fail_at(key, "must not be empty");
        return std::move(*value);
    }

    std::optional<bool> boolean(std::string_view key) const {
        const toml::node* node = find(key);
        if (node == nullptr) return std::nullopt;
        if (const auto* value = node->as_boolean()) return value->get();
        fail_at(key, "expected a boolean");
    }

    std::optional<std::int64_t> integer(std::string_view key, std::int64_t min,
                                        std::int64_t max) const {
        const toml::node* node = find(key);
        if (node == nullptr) return std::nullopt;
        const auto* value = node->as_integer();
        if (value == nullptr) fail_at(key, "expected an integer");
        const std::int64_t v = value->get();
        if (v < min || v > max) {
            fail_at(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
        }
        return v;
    }

    /// Reads an integer into `out` (left as it is when absent); the range must fit `T`.
    template <class T>
    void integer_into(std::string_view key, T& out, std::int64_t min, std::int64_t max) const {
        if (auto v = integer(key, min, max)) out = static_cast<T>(*v);
    }

    void string_into(std::string_view key, std::string& out) const {
        if (auto v = string(key)) out = std::move(*v);
    }

    void boolean_into(std::string_view key, bool& out) const {
        if (auto v = boolean(key)) out = *v;
    }

    const toml::table* table(std::string_view key) const {
        const toml::node* node = find(key);
        if (node == nullptr) return nullptr;
        if (const auto* value = node->as_table()) return value;
        fail_at(key, "expected a table");
    }

    /// The elements of an array of tables (`[[key]]` or `key = [{...}]`); none when absent.
    std::vector<const toml::table*> tables(std::string_view key) const {
        std::vector<const toml::table*> out;
        const toml::node* node = find(key);
        if (node == nullptr) return out;
        const auto* array = node->as_array();
        if (array == nullptr) fail_at(key, "expected an array of tables");
        for (const toml::node& item : *array) {
            const auto* table = item.as_table();
            if (table == nullptr) {
                fail(ctx_, line_of(item), element(path_of(key), out.size()), "expected a table");
            }
            out.push_back(table);
        }
        return out;
    }

private:
    const Context& ctx_;
    const toml::table& table_;
    std::string path_;
};

/// A file name from a TLS setting, resolved against the config file's directory; it must be
/// readable now, so a wrong path fails at load time rather than at the first TLS handshake.
std::string readable_file(const Context& ctx, const Section& s, std::string_view key,
                          const std::string& name);

// network.cpp: addresses, listeners, backends, backend TLS, admin.
std::optional<std::string> canonical_address(const std::string& address);
std::string endpoint_text(const std::string& address, std::uint16_t port);
Listener parse_listener(const Context& ctx, const toml::table& table, std::string path);
/// One [[backends]] (default port 3306) or [[tds_backends]] (1433) element.
Backend parse_backend(const Context& ctx, const toml::table& table, std::string path,
                      std::uint16_t default_port);
BackendTls parse_backend_tls(const Context& ctx, const toml::table& table);
Admin parse_admin(const Context& ctx, const toml::table& table);

// policy.cpp: users, query rules, routing, monitor.
User parse_user(const Context& ctx, const toml::table& table, std::string path);
QueryRule parse_query_rule(const Context& ctx, const toml::table& table, std::string path);
Routing parse_routing(const Context& ctx, const toml::table& table);
Pool parse_pool(const Context& ctx, const toml::table& table);
/// "transaction" or "session" at `key`.
PoolMode pool_mode_of(const Section& s, std::string_view key);
Monitor parse_monitor(const Context& ctx, const toml::table& table);
/// [tds_monitor]: a login, interval, timeout and failures_to_open (no heartbeat table).
Monitor parse_tds_monitor(const Context& ctx, const toml::table& table);
/// A password from `password` or `password_env` (required unless `optional`).
std::string password_of(const Section& s, bool optional = false);
/// Whether `pattern` is valid RE2; fails at `key` of `s` when not.
void check_regex(const Section& s, std::string_view key, const std::string& pattern);

// cache.cpp: [cache], [[cache.redis]], [[cache_rules]].
Cache parse_cache(const Context& ctx, const toml::table& table);
CacheRule parse_cache_rule(const Context& ctx, const toml::table& table, std::string path);

} // namespace sluice::config::detail
