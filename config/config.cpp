#include "sluice/config/config.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <re2/re2.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <toml++/toml.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace sluice::config {

namespace {

constexpr std::int64_t max_port = 65535;
constexpr std::int64_t max_workers = 256;
constexpr std::int64_t min_packet_size = 1024;
constexpr std::int64_t max_packet_size_limit = 1'073'741'824; // 1 GiB
constexpr std::int64_t max_u32 = std::numeric_limits<std::uint32_t>::max();
// A day: long enough for any sane timeout, short enough that `now + timeout` never overflows.
constexpr std::int64_t max_timeout_ms = 86'400'000;

/// What every message needs: the name it starts with, and where relative file names start from.
struct Context {
    std::string source;
    std::filesystem::path base_dir; ///< empty: relative file names stay relative to the cwd
};

[[noreturn]] void fail(const Context& ctx, std::uint32_t line, std::string_view key,
                       std::string_view reason) {
    std::string msg = ctx.source;
    msg += ':';
    msg += std::to_string(line);
    msg += ": ";
    msg += key;
    msg += ": ";
    msg += reason;
    throw ConfigError(msg);
}

std::uint32_t line_of(const toml::node& node) noexcept { return node.source().begin.line; }

bool is_bare_key(std::string_view key) noexcept {
    return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

/// A key as TOML would write it: bare when it can be, quoted (control bytes escaped) otherwise.
std::string key_text(std::string_view key) {
    if (is_bare_key(key)) return std::string(key);
    std::string out = "\"";
    for (const char c : key) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (byte < 0x20 || byte == 0x7f) {
            constexpr std::string_view hex = "0123456789abcdef";
            out += "\\x";
            out += hex[byte >> 4U];
            out += hex[byte & 0xfU];
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

std::string join(std::string_view path, std::string_view key) {
    if (path.empty()) return key_text(key);
    std::string out(path);
    out += '.';
    out += key_text(key);
    return out;
}

std::string element(std::string_view path, std::size_t index) {
    std::string out(path);
    out += '[';
    out += std::to_string(index);
    out += ']';
    return out;
}

std::string in_quotes(std::string_view text) {
    std::string out = "\"";
    out += text;
    out += '"';
    return out;
}

bool is_one_of(std::string_view value, std::initializer_list<std::string_view> allowed) noexcept {
    return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

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

/// The canonical text of an IPv4 or IPv6 address (an IPv6 scope id kept as written), or nullopt.
std::optional<std::string> canonical_address(const std::string& address) {
    in_addr v4{};
    if (::inet_pton(AF_INET, address.c_str(), &v4) == 1) {
        std::array<char, INET_ADDRSTRLEN> buf{};
        ::inet_ntop(AF_INET, &v4, buf.data(), buf.size());
        return std::string(buf.data());
    }
    const std::size_t percent = address.find('%');
    const std::string host = address.substr(0, percent);
    in6_addr v6{};
    if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
        if (percent != std::string::npos && percent + 1 == address.size()) return std::nullopt;
        std::array<char, INET6_ADDRSTRLEN> buf{};
        ::inet_ntop(AF_INET6, &v6, buf.data(), buf.size());
        std::string out(buf.data());
        if (percent != std::string::npos) out += address.substr(percent);
        return out;
    }
    return std::nullopt;
}

std::string endpoint_text(const std::string& address, std::uint16_t port) {
    const bool v6 = address.find(':') != std::string::npos;
    return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

/// Reads a bind address: an IP literal, since listening needs an address, not a name.
void address_into(const Section& s, std::string_view key, std::string& out) {
    auto value = s.string(key);
    if (!value) return;
    if (!canonical_address(*value)) s.fail_at(key, "must be an IPv4 or IPv6 address");
    out = std::move(*value);
}

/// Why `path` cannot be read, or an empty string when it can.
std::string unreadable_reason(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::error_code(errno, std::generic_category()).message();
    struct stat st {};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    ::close(fd);
    return regular ? std::string() : std::string("not a regular file");
}

/// A file name from a TLS setting, resolved against the config file's directory; it must be
/// readable now, so a wrong path fails at load time rather than at the first TLS handshake.
std::string readable_file(const Context& ctx, const Section& s, std::string_view key,
                          const std::string& name) {
    std::filesystem::path path(name);
    if (path.is_relative() && !ctx.base_dir.empty()) path = ctx.base_dir / path;
    std::string resolved = path.string();
    const std::string why = unreadable_reason(resolved);
    if (!why.empty()) s.fail_at(key, "cannot read " + in_quotes(resolved) + ": " + why);
    return resolved;
}

/// A TLS file setting: absent stays empty; present must not be empty.
std::string tls_file_name(const Section& s, std::string_view key) {
    auto value = s.string(key);
    if (!value) return {};
    if (value->empty()) s.fail_at(key, "must not be empty");
    return std::move(*value);
}

/// cert_file and key_file come as a pair.
void check_cert_key_pair(const Section& s, const std::string& cert, const std::string& key) {
    if (!cert.empty() && key.empty()) s.fail_at("key_file", "is required when cert_file is set");
    if (cert.empty() && !key.empty()) s.fail_at("cert_file", "is required when key_file is set");
}

TlsFiles parse_listener_tls(const Context& ctx, const toml::table& table, std::string path) {
    const Section s(ctx, table, std::move(path), {"cert_file", "key_file", "ca_file"});
    TlsFiles tls;
    tls.cert_file = tls_file_name(s, "cert_file");
    tls.key_file = tls_file_name(s, "key_file");
    tls.ca_file = tls_file_name(s, "ca_file");
    check_cert_key_pair(s, tls.cert_file, tls.key_file);
    // Verifying client certificates only means something once TLS is on.
    if (!tls.ca_file.empty() && tls.cert_file.empty()) {
        s.fail_at("ca_file", "requires cert_file and key_file");
    }
    if (!tls.cert_file.empty()) tls.cert_file = readable_file(ctx, s, "cert_file", tls.cert_file);
    if (!tls.key_file.empty()) tls.key_file = readable_file(ctx, s, "key_file", tls.key_file);
    if (!tls.ca_file.empty()) tls.ca_file = readable_file(ctx, s, "ca_file", tls.ca_file);
    return tls;
}

Listener parse_listener(const Context& ctx, const toml::table& table, std::string path) {
    const Section s(ctx, table, std::move(path),
                    {"name", "protocol", "address", "port", "max_connections", "auth_plugin",
                     "require_tls", "tls"});
    Listener l;
    l.name = s.required_string("name");
    if (auto protocol = s.string("protocol")) {
        if (*protocol != "mysql") s.fail_at("protocol", "must be \"mysql\"");
        l.protocol = std::move(*protocol);
    }
    address_into(s, "address", l.address);
    s.integer_into("port", l.port, 1, max_port);
    s.integer_into("max_connections", l.max_connections, 1, max_u32);
    if (auto plugin = s.string("auth_plugin")) {
        if (!is_one_of(*plugin, {"mysql_native_password", "caching_sha2_password"})) {
            s.fail_at("auth_plugin", "must be one of mysql_native_password, caching_sha2_password");
        }
        l.auth_plugin = std::move(*plugin);
    }
    s.boolean_into("require_tls", l.require_tls);
    if (const toml::table* tls = s.table("tls")) {
        l.tls = parse_listener_tls(ctx, *tls, s.path_of("tls"));
    }
    if (l.require_tls && !l.tls.enabled()) {
        s.fail_at("require_tls", "requires tls (cert_file and key_file)");
    }
    return l;
}

Backend parse_backend(const Context& ctx, const toml::table& table, std::string path) {
    const Section s(ctx, table, std::move(path),
                    {"name", "host", "port", "role", "zone", "weight", "tls"});
    Backend b;
    b.name = s.required_string("name");
    b.host = s.required_string("host");
    s.integer_into("port", b.port, 1, max_port);
    if (auto role = s.string("role")) {
        if (*role == "primary") {
            b.role = BackendRole::primary;
        } else if (*role == "replica") {
            b.role = BackendRole::replica;
        } else {
            s.fail_at("role", "must be \"primary\" or \"replica\"");
        }
    }
    s.string_into("zone", b.zone);
    s.integer_into("weight", b.weight, 1, max_u32);
    s.boolean_into("tls", b.tls);
    return b;
}

BackendTls parse_backend_tls(const Context& ctx, const toml::table& table) {
    const Section s(ctx, table, "backend_tls",
                    {"ca_file", "cert_file", "key_file", "verify_hostname"});
    BackendTls tls;
    tls.ca_file = tls_file_name(s, "ca_file");
    tls.cert_file = tls_file_name(s, "cert_file");
    tls.key_file = tls_file_name(s, "key_file");
    s.boolean_into("verify_hostname", tls.verify_hostname);
    check_cert_key_pair(s, tls.cert_file, tls.key_file);
    // Without a CA nothing is verified, so asking for hostname checks would be a silent no-op.
    if (tls.verify_hostname && tls.ca_file.empty()) {
        s.fail_at("verify_hostname", "requires ca_file");
    }
    if (!tls.ca_file.empty()) tls.ca_file = readable_file(ctx, s, "ca_file", tls.ca_file);
    if (!tls.cert_file.empty()) tls.cert_file = readable_file(ctx, s, "cert_file", tls.cert_file);
    if (!tls.key_file.empty()) tls.key_file = readable_file(ctx, s, "key_file", tls.key_file);
    return tls;
}

// Messages here name the variable, never a password: they end up in logs.
std::string password_of(const Section& s) {
    auto password = s.string("password");
    auto env = s.string("password_env");
    if (password && env) s.fail_at("password_env", "cannot be set together with password");
    if (password) return std::move(*password);
    if (!env) s.fail_at("password", "is required (or password_env)");
    if (env->empty()) s.fail_at("password_env", "must not be empty");
    // Loading runs before any worker thread starts, so reading the environment is safe.
    const char* value = std::getenv(env->c_str()); // NOLINT(concurrency-mt-unsafe)
    if (value == nullptr) s.fail_at("password_env", "environment variable " + *env + " is not set");
    return value;
}

Consistency consistency_of(const Section& s, std::string_view key) {
    const std::string v = s.required_string(key);
    if (v == "eventual") return Consistency::eventual;
    if (v == "session") return Consistency::session;
    if (v == "global") return Consistency::global;
    s.fail_at(key, "must be one of eventual, session, global");
}

User parse_user(const Context& ctx, const toml::table& table, std::string path) {
    const Section s(ctx, table, std::move(path),
                    {"name", "password", "password_env", "max_lag_ms", "consistency"});
    User u;
    u.name = s.required_string("name");
    u.password = password_of(s);
    if (auto lag = s.integer("max_lag_ms", 0, max_timeout_ms))
        u.max_lag_ms = static_cast<std::uint32_t>(*lag);
    if (s.find("consistency") != nullptr) u.consistency = consistency_of(s, "consistency");
    return u;
}

/// A MariaDB identifier Sluice writes unquoted inside backticks: letters, digits, _ and $.
bool plain_identifier(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '$';
    });
}

Monitor parse_monitor(const Context& ctx, const toml::table& table) {
    const Section s(ctx, table, "monitor",
                    {"user", "password", "password_env", "interval_ms", "timeout_ms",
                     "heartbeat_table", "failures_to_open"});
    Monitor m;
    m.enabled = true;
    m.user = s.required_string("user");
    m.password = password_of(s);
    if (auto ms = s.integer("interval_ms", 50, max_timeout_ms))
        m.interval = std::chrono::milliseconds(*ms);
    if (auto ms = s.integer("timeout_ms", 10, max_timeout_ms))
        m.timeout = std::chrono::milliseconds(*ms);
    if (auto table_name = s.string("heartbeat_table")) {
        if (table_name->empty()) {
            m.heartbeat_database.clear();
            m.heartbeat_table.clear();
        } else {
            const auto dot = table_name->find('.');
            if (dot == std::string::npos ||
                !plain_identifier(std::string_view(*table_name).substr(0, dot)) ||
                !plain_identifier(std::string_view(*table_name).substr(dot + 1)))
                s.fail_at(
                    "heartbeat_table",
                    "must be \"database.table\" (letters, digits, _ and $), or \"\" for none");
            m.heartbeat_database = table_name->substr(0, dot);
            m.heartbeat_table = table_name->substr(dot + 1);
        }
    }
    s.integer_into("failures_to_open", m.failures_to_open, 1, 1000);
    return m;
}

QueryRule parse_query_rule(const Context& ctx, const toml::table& table, std::string path) {
    const Section s(ctx, table, std::move(path),
                    {"name", "match_digest", "user", "schema", "route", "error_code",
                     "error_message", "max_lag_ms", "consistency"});
    QueryRule r;
    r.name = s.required_string("name");
    s.string_into("match_digest", r.match_digest);
    if (!r.match_digest.empty()) {
        RE2::Options opts;
        opts.set_log_errors(false);
        const RE2 re(r.match_digest, opts);
        if (!re.ok()) s.fail_at("match_digest", "not a valid RE2 expression: " + re.error());
    }
    s.string_into("user", r.user);
    s.string_into("schema", r.schema);
    const std::string route = s.required_string("route");
    if (route == "primary") {
        r.route = QueryRule::Route::primary;
    } else if (route == "replica") {
        r.route = QueryRule::Route::replica;
    } else if (route == "refuse") {
        r.route = QueryRule::Route::refuse;
    } else {
        s.fail_at("route", "must be one of primary, replica, refuse");
    }
    // Server error codes run from 1000; 2000-2999 are client-side codes.
    s.integer_into("error_code", r.error_code, 1000, 65535);
    s.string_into("error_message", r.error_message);
    if (auto lag = s.integer("max_lag_ms", 0, max_timeout_ms))
        r.max_lag_ms = static_cast<std::uint32_t>(*lag);
    if (r.route != QueryRule::Route::refuse &&
        (s.find("error_code") != nullptr || s.find("error_message") != nullptr))
        s.fail_at(s.find("error_code") != nullptr ? "error_code" : "error_message",
                  "only applies to route = \"refuse\"");
    if (r.route != QueryRule::Route::replica && r.max_lag_ms)
        s.fail_at("max_lag_ms", "only applies to route = \"replica\"");
    if (s.find("consistency") != nullptr) {
        r.consistency = consistency_of(s, "consistency");
        if (r.route != QueryRule::Route::replica)
            s.fail_at("consistency", "only applies to route = \"replica\"");
    }
    return r;
}

Admin parse_admin(const Context& ctx, const toml::table& table) {
    const Section s(ctx, table, "admin", {"address", "port", "enabled"});
    Admin a;
    address_into(s, "address", a.address);
    s.integer_into("port", a.port, 1, max_port);
    s.boolean_into("enabled", a.enabled);
    return a;
}

Routing parse_routing(const Context& ctx, const toml::table& table) {
    const Section s(ctx, table, "routing",
                    {"read_your_writes", "consistency", "causal_read_timeout_ms",
                     "replica_retry_ms", "max_lag_ms", "failover_hold_ms"});
    Routing r;
    bool read_your_writes = true;
    s.boolean_into("read_your_writes", read_your_writes);
    if (s.find("consistency") != nullptr) {
        if (s.find("read_your_writes") != nullptr)
            s.fail_at("read_your_writes", "cannot be set together with consistency");
        r.consistency = consistency_of(s, "consistency");
    } else if (!read_your_writes) {
        r.consistency = Consistency::eventual;
    }
    if (auto ms = s.integer("causal_read_timeout_ms", 1, max_timeout_ms))
        r.causal_read_timeout = std::chrono::milliseconds(*ms);
    if (auto ms = s.integer("replica_retry_ms", 1, max_timeout_ms))
        r.replica_retry = std::chrono::milliseconds(*ms);
    if (auto ms = s.integer("max_lag_ms", 0, max_timeout_ms))
        r.max_lag = std::chrono::milliseconds(*ms);
    if (auto ms = s.integer("failover_hold_ms", 0, max_timeout_ms))
        r.failover_hold = std::chrono::milliseconds(*ms);
    return r;
}

Logging parse_logging(const Context& ctx, const toml::table& table) {
    const Section s(ctx, table, "logging", {"level"});
    Logging l;
    if (auto level = s.string("level")) {
        if (!is_one_of(*level, {"trace", "debug", "info", "warn", "error", "critical", "off"})) {
            s.fail_at("level", "must be one of trace, debug, info, warn, error, critical, off");
        }
        l.level = std::move(*level);
    }
    return l;
}

/// An array of tables parsed into `T`s, with the tables kept for the line numbers of later checks.
template <class T> struct List {
    std::vector<T> items;
    std::vector<const toml::table*> tables;
};

/// Each element of the array of tables `key`, at least one of them.
template <class T>
List<T> parse_list(const Context& ctx, const Section& root, std::string_view key,
                   std::string_view at_least_one,
                   T (*parse)(const Context&, const toml::table&, std::string)) {
    List<T> list;
    list.tables = root.tables(key);
    if (list.tables.empty()) root.fail_at(key, at_least_one);
    list.items.reserve(list.tables.size());
    for (std::size_t i = 0; i < list.tables.size(); ++i) {
        list.items.push_back(parse(ctx, *list.tables[i], element(key, i)));
    }
    return list;
}

/// The line of `key` in `table`, or of the table when `key` is absent.
std::uint32_t line_in(const toml::table& table, std::string_view key) {
    const toml::node* node = table.get(key);
    return line_of(node != nullptr ? *node : table);
}

/// Names must be unique within a list: `items[i].name`.
template <class T>
void check_unique_names(const Context& ctx, std::string_view key, const List<T>& list) {
    const std::vector<T>& items = list.items;
    for (std::size_t i = 0; i < items.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
            if (items[j].name != items[i].name) continue;
            fail(ctx, line_in(*list.tables[i], "name"), element(key, i) + ".name",
                 "name " + in_quotes(items[i].name) + " is already used by " + element(key, j));
        }
    }
}

void check_listener_endpoints(const Context& ctx, const List<Listener>& listeners,
                              const Admin& admin_cfg) {
    // Compare canonical forms, so "::1" and "0:0:0:0:0:0:0:1" are the same endpoint.
    // Addresses were checked while parsing, so every canonical form exists.
    std::vector<std::string> canon;
    for (const Listener& l : listeners.items) {
        canon.push_back(canonical_address(l.address).value());
    }
    const std::optional<std::string> admin =
        admin_cfg.enabled ? canonical_address(admin_cfg.address) : std::nullopt;
    for (std::size_t i = 0; i < listeners.items.size(); ++i) {
        const Listener& l = listeners.items[i];
        const std::uint32_t line = line_in(*listeners.tables[i], "port");
        const std::string key = element("listeners", i) + ".port";
        const std::string endpoint = endpoint_text(l.address, l.port);
        for (std::size_t j = 0; j < i; ++j) {
            if (canon[j] != canon[i] || listeners.items[j].port != l.port) continue;
            fail(ctx, line, key, endpoint + " is already used by " + element("listeners", j));
        }
        if (admin && *admin == canon[i] && admin_cfg.port == l.port) {
            fail(ctx, line, key, endpoint + " is already used by admin");
        }
    }
}

void check_one_primary(const Context& ctx, const Section& root, const List<Backend>& backends) {
    std::optional<std::size_t> primary;
    for (std::size_t i = 0; i < backends.items.size(); ++i) {
        if (backends.items[i].role != BackendRole::primary) continue;
        if (primary) {
            fail(ctx, line_in(*backends.tables[i], "role"), element("backends", i) + ".role",
                 element("backends", *primary) + " is already the primary");
        }
        primary = i;
    }
    if (!primary) root.fail_at("backends", "one backend must have role \"primary\"");
}

Config parse_config(const Context& ctx, const toml::table& doc) {
    const Section root(ctx, doc, "",
                       {"workers", "server_version", "zone", "max_packet_size",
                        "connect_timeout_ms", "client_handshake_timeout_ms", "shutdown_grace_ms",
                        "listeners", "backends", "backend_tls", "users", "query_rules", "routing",
                        "monitor", "admin", "logging"});
    Config cfg;
    cfg.source = ctx.source;
    root.integer_into("workers", cfg.workers, 0, max_workers);
    root.string_into("server_version", cfg.server_version);
    root.string_into("zone", cfg.zone);
    root.integer_into("max_packet_size", cfg.max_packet_size, min_packet_size,
                      max_packet_size_limit);
    if (auto ms = root.integer("connect_timeout_ms", 1, max_timeout_ms)) {
        cfg.connect_timeout = std::chrono::milliseconds(*ms);
    }
    if (auto ms = root.integer("client_handshake_timeout_ms", 1, max_timeout_ms)) {
        cfg.client_handshake_timeout = std::chrono::milliseconds(*ms);
    }
    if (auto ms = root.integer("shutdown_grace_ms", 1, max_timeout_ms)) {
        cfg.shutdown_grace = std::chrono::milliseconds(*ms);
    }

    auto listeners =
        parse_list(ctx, root, "listeners", "at least one listener is required", parse_listener);
    check_unique_names(ctx, "listeners", listeners);

    auto backends =
        parse_list(ctx, root, "backends", "at least one backend is required", parse_backend);
    check_unique_names(ctx, "backends", backends);
    check_one_primary(ctx, root, backends);
    if (backends.items.size() > max_backends)
        root.fail_at("backends", "at most " + std::to_string(max_backends) + " backends");
    cfg.backends = std::move(backends.items);
    if (const toml::table* tls = root.table("backend_tls")) {
        cfg.backend_tls = parse_backend_tls(ctx, *tls);
    }

    auto users = parse_list(ctx, root, "users", "at least one user is required", parse_user);
    check_unique_names(ctx, "users", users);
    cfg.users = std::move(users.items);

    List<QueryRule> rules;
    rules.tables = root.tables("query_rules");
    for (std::size_t i = 0; i < rules.tables.size(); ++i)
        rules.items.push_back(parse_query_rule(ctx, *rules.tables[i], element("query_rules", i)));
    check_unique_names(ctx, "query_rules", rules);
    cfg.query_rules = std::move(rules.items);

    if (const toml::table* routing = root.table("routing"))
        cfg.routing = parse_routing(ctx, *routing);
    if (const toml::table* monitor = root.table("monitor"))
        cfg.monitor = parse_monitor(ctx, *monitor);
    if (const toml::table* admin = root.table("admin")) cfg.admin = parse_admin(ctx, *admin);
    check_listener_endpoints(ctx, listeners, cfg.admin);
    cfg.listeners = std::move(listeners.items);
    if (const toml::table* logging = root.table("logging")) {
        cfg.logging = parse_logging(ctx, *logging);
    }
    return cfg;
}

/// Line `line` (1-based) of `text`, or an empty view past the end.
std::string_view line_text(std::string_view text, std::uint32_t line) {
    for (std::uint32_t i = 1; i < line; ++i) {
        const std::size_t end = text.find('\n');
        if (end == std::string_view::npos) return {};
        text.remove_prefix(end + 1);
    }
    return text.substr(0, text.find('\n'));
}

/// toml++ quotes pieces of the offending text ('99999999999999999999' is not representable...):
/// on a line that sets a password those pieces may be the password, so they are left out.
std::string syntax_reason(std::string_view text, const toml::parse_error& e) {
    const std::string_view desc = e.description();
    if (line_text(text, e.source().begin.line).find("password") == std::string_view::npos) {
        return std::string(desc);
    }
    std::string out;
    bool quoted_piece = false;
    for (const char c : desc) {
        if (c == '\'') {
            out += quoted_piece ? "(redacted)'" : "'";
            quoted_piece = !quoted_piece;
        } else if (!quoted_piece) {
            out += c;
        }
    }
    return out;
}

Config load(std::string_view text, const Context& ctx) {
    toml::table doc;
    try {
        doc = toml::parse(text, std::string_view(ctx.source));
    } catch (const toml::parse_error& e) {
        fail(ctx, e.source().begin.line, "(syntax)", syntax_reason(text, e));
    }
    return parse_config(ctx, doc);
}

} // namespace

const Backend& Config::primary() const {
    for (const Backend& b : backends) {
        if (b.role == BackendRole::primary) return b;
    }
    throw std::logic_error("sluice::config::Config::primary: no primary backend");
}

const User* Config::find_user(std::string_view name) const noexcept {
    for (const User& u : users) {
        if (u.name == name) return &u;
    }
    return nullptr;
}

Config load_file(const std::string& path) {
    const Context ctx{path, std::filesystem::path(path).parent_path()};
    // The file is read by hand so that a missing or unreadable file gets the same message shape.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail(ctx, 1, "(file)",
             "cannot read: " + std::error_code(errno, std::generic_category()).message());
    }
    std::string text;
    std::array<char, 16384> buf{};
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n > 0) {
            text.append(buf.data(), static_cast<std::size_t>(n));
        } else if (n == 0) {
            break;
        } else if (errno != EINTR) {
            const int err = errno;
            ::close(fd);
            fail(ctx, 1, "(file)",
                 "cannot read: " + std::error_code(err, std::generic_category()).message());
        }
    }
    ::close(fd);
    return load(text, ctx);
}

Config load_string(std::string_view text, const std::string& source_name) {
    return load(text, Context{source_name, {}});
}

} // namespace sluice::config
