// Parsing of the sections about who connects and how statements are routed: [[users]],
// [[query_rules]], [routing] and [monitor], with their passwords and consistency settings.
#include "config_internal.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <re2/re2.h>
#include <string>
#include <string_view>
#include <utility>

namespace sluice::config::detail {

// Messages here name the variable, never a password: they end up in logs.
std::string password_of(const Section& s, bool optional) {
    auto password = s.string("password");
    auto env = s.string("password_env");
    if (password && env) s.fail_at("password_env", "cannot be set together with password");
    if (password) return std::move(*password);
    if (!env && optional) return {};
    if (!env) s.fail_at("password", "is required (or password_env)");
    if (env->empty()) s.fail_at("password_env", "must not be empty");
    // Loading runs before any worker thread starts, so reading the environment is safe.
    const char* value = std::getenv(env->c_str()); // NOLINT(concurrency-mt-unsafe)
    if (value == nullptr) s.fail_at("password_env", "environment variable " + *env + " is not set");
    return value;
}

void check_regex(const Section& s, std::string_view key, const std::string& pattern) {
    if (pattern.empty()) return;
    RE2::Options opts;
    opts.set_log_errors(false);
    const RE2 re(pattern, opts);
    if (!re.ok()) s.fail_at(key, "not a valid RE2 expression: " + re.error());
}

namespace {

Consistency consistency_of(const Section& s, std::string_view key) {
    const std::string v = s.required_string(key);
    if (v == "eventual") return Consistency::eventual;
    if (v == "session") return Consistency::session;
    if (v == "global") return Consistency::global;
    if (v == "fleet") return Consistency::fleet;
    s.fail_at(key, "must be one of eventual, session, global, fleet");
}

/// A MariaDB identifier Sluice writes unquoted inside backticks: letters, digits, _ and $.
bool plain_identifier(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '$';
    });
}

} // namespace

User parse_user(const Context& ctx, const toml::table& table, std::string path) {
    const Section s(ctx, table, std::move(path),
                    {"name", "password", "password_env", "max_lag_ms", "consistency",
                     "max_connections", "pool_mode"});
    User u;
    u.name = s.required_string("name");
    u.password = password_of(s);
    if (auto lag = s.integer("max_lag_ms", 0, max_timeout_ms))
        u.max_lag_ms = static_cast<std::uint32_t>(*lag);
    if (s.find("consistency") != nullptr) u.consistency = consistency_of(s, "consistency");
    s.integer_into("max_connections", u.max_connections, 0, max_u32);
    if (s.find("pool_mode") != nullptr) u.pool_mode = pool_mode_of(s, "pool_mode");
    return u;
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

Monitor parse_tds_monitor(const Context& ctx, const toml::table& table) {
    const Section s(
        ctx, table, "tds_monitor",
        {"user", "password", "password_env", "interval_ms", "timeout_ms", "failures_to_open"});
    Monitor m;
    m.enabled = true;
    m.user = s.required_string("user");
    m.password = password_of(s);
    if (auto ms = s.integer("interval_ms", 50, max_timeout_ms))
        m.interval = std::chrono::milliseconds(*ms);
    if (auto ms = s.integer("timeout_ms", 10, max_timeout_ms))
        m.timeout = std::chrono::milliseconds(*ms);
    m.heartbeat_database.clear();
    m.heartbeat_table.clear();
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
    check_regex(s, "match_digest", r.match_digest);
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

PoolMode pool_mode_of(const Section& s, std::string_view key) {
    const std::string v = s.required_string(key);
    if (v == "transaction") return PoolMode::transaction;
    if (v == "session") return PoolMode::session;
    s.fail_at(key, "must be \"transaction\" or \"session\"");
}

Pool parse_pool(const Context& ctx, const toml::table& table) {
    const Section s(ctx, table, "pool",
                    {"mode", "max_connections", "min_idle", "idle_timeout_ms", "max_lifetime_ms",
                     "queue_timeout_ms", "prepared_per_connection"});
    Pool p;
    if (s.find("mode") != nullptr) p.mode = pool_mode_of(s, "mode");
    s.integer_into("max_connections", p.max_connections, 1, 100000);
    s.integer_into("min_idle", p.min_idle, 0, 100000);
    if (p.min_idle > p.max_connections) s.fail_at("min_idle", "must not exceed max_connections");
    if (auto ms = s.integer("idle_timeout_ms", 1, max_timeout_ms))
        p.idle_timeout = std::chrono::milliseconds(*ms);
    if (auto ms = s.integer("max_lifetime_ms", 1, max_timeout_ms))
        p.max_lifetime = std::chrono::milliseconds(*ms);
    if (auto ms = s.integer("queue_timeout_ms", 1, max_timeout_ms))
        p.queue_timeout = std::chrono::milliseconds(*ms);
    s.integer_into("prepared_per_connection", p.prepared_per_connection, 1, 16382);
    return p;
}

} // namespace sluice::config::detail
