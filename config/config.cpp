// Loading a config: reading the file, TOML syntax errors (with passwords kept out), the
// top-level table, the checks across sections, and Config's lookups.
#include "sluice/config/config.hpp"

#include "config_internal.hpp"

#include <array>
#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

namespace sluice::config::detail {

namespace {

constexpr std::int64_t max_workers = 256;
constexpr std::int64_t min_packet_size = 1024;
constexpr std::int64_t max_packet_size_limit = 1'073'741'824; // 1 GiB

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

Backend parse_mysql_backend(const Context& ctx, const toml::table& table, std::string path) {
    return parse_backend(ctx, table, std::move(path), 3306);
}
Backend parse_tds_backend(const Context& ctx, const toml::table& table, std::string path) {
    return parse_backend(ctx, table, std::move(path), 1433);
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

void check_one_primary(const Context& ctx, const Section& root, const List<Backend>& backends,
                       std::string_view list = "backends") {
    std::optional<std::size_t> primary;
    for (std::size_t i = 0; i < backends.items.size(); ++i) {
        if (backends.items[i].role != BackendRole::primary) continue;
        if (primary) {
            fail(ctx, line_in(*backends.tables[i], "role"), element(list, i) + ".role",
                 element(list, *primary) + " is already the primary");
        }
        primary = i;
    }
    if (!primary) root.fail_at(list, "one backend must have role \"primary\"");
}

Config parse_config(const Context& ctx, const toml::table& doc) {
    const Section root(ctx, doc, "",
                       {"workers",
                        "server_version",
                        "zone",
                        "max_packet_size",
                        "connect_timeout_ms",
                        "client_handshake_timeout_ms",
                        "shutdown_grace_ms",
                        "max_client_connections",
                        "pool",
                        "listeners",
                        "backends",
                        "backend_tls",
                        "users",
                        "query_rules",
                        "routing",
                        "monitor",
                        "tds_backends",
                        "tds_monitor",
                        "admin",
                        "logging",
                        "cache",
                        "cache_rules"});
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
    root.integer_into("max_client_connections", cfg.max_client_connections, 0, max_u32);

    auto listeners =
        parse_list(ctx, root, "listeners", "at least one listener is required", parse_listener);
    check_unique_names(ctx, "listeners", listeners);

    auto backends =
        parse_list(ctx, root, "backends", "at least one backend is required", parse_mysql_backend);
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

    if (const toml::table* cache = root.table("cache")) cfg.cache = parse_cache(ctx, *cache);
    List<CacheRule> cache_rules;
    cache_rules.tables = root.tables("cache_rules");
    for (std::size_t i = 0; i < cache_rules.tables.size(); ++i)
        cache_rules.items.push_back(
            parse_cache_rule(ctx, *cache_rules.tables[i], element("cache_rules", i)));
    check_unique_names(ctx, "cache_rules", cache_rules);
    cfg.cache_rules = std::move(cache_rules.items);

    if (const toml::table* routing = root.table("routing"))
        cfg.routing = parse_routing(ctx, *routing);
    if (const toml::table* pool = root.table("pool")) cfg.pool = parse_pool(ctx, *pool);
    if (const toml::table* monitor = root.table("monitor"))
        cfg.monitor = parse_monitor(ctx, *monitor);
    if (const toml::table* admin = root.table("admin")) cfg.admin = parse_admin(ctx, *admin);
    if (cfg.cache.binlog.enabled && cfg.cache.binlog.user.empty()) {
        // The follower logs in as the monitor unless told otherwise.
        if (!cfg.monitor.enabled) {
            const toml::table* cache = root.table("cache");
            fail(ctx, line_of(*cache->get("binlog")), "cache.binlog.user",
                 "is required without [monitor] (whose login it uses by default)");
        }
        cfg.cache.binlog.user = cfg.monitor.user;
        cfg.cache.binlog.password = cfg.monitor.password;
    }
    if (!root.tables("tds_backends").empty()) {
        auto tds = parse_list(ctx, root, "tds_backends", "", parse_tds_backend);
        check_unique_names(ctx, "tds_backends", tds);
        check_one_primary(ctx, root, tds, "tds_backends");
        if (tds.items.size() > max_backends)
            root.fail_at("tds_backends", "at most " + std::to_string(max_backends) + " backends");
        cfg.tds_backends = std::move(tds.items);
    }
    if (const toml::table* monitor = root.table("tds_monitor"))
        cfg.tds_monitor = parse_tds_monitor(ctx, *monitor);
    for (std::size_t i = 0; i < listeners.items.size(); ++i) {
        if (listeners.items[i].protocol == "tds" && cfg.tds_backends.empty())
            fail(ctx, line_in(*listeners.tables[i], "protocol"),
                 element("listeners", i) + ".protocol",
                 "\"tds\" needs [[tds_backends]] (SQL Server backends)");
    }
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

} // namespace sluice::config::detail

namespace sluice::config {

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
    const detail::Context ctx{path, std::filesystem::path(path).parent_path()};
    // The file is read by hand so that a missing or unreadable file gets the same message shape.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        detail::fail(ctx, 1, "(file)",
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
            detail::fail(ctx, 1, "(file)",
                         "cannot read: " + std::error_code(err, std::generic_category()).message());
        }
    }
    ::close(fd);
    return detail::load(text, ctx);
}

Config load_string(std::string_view text, const std::string& source_name) {
    return detail::load(text, detail::Context{source_name, {}});
}

} // namespace sluice::config
