// Parsing of the result cache's sections (issue #9): [cache], its [[cache.redis]] servers and
// the [[cache_rules]] that say which reads are cached.
#include "config_internal.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

namespace sluice::config::detail {

namespace {

// A TTL of a day at most keeps `now + ttl` far from overflowing and an entry from outliving
// any sane expectation; the binary log follower and version bumps are what keep it fresh.
constexpr std::int64_t max_ttl_ms = 86'400'000;

CacheRedis parse_cache_redis(const Context& ctx, const toml::table& table, std::string path) {
    const Section s(ctx, table, std::move(path),
                    {"host", "port", "region", "user", "password", "password_env", "tls",
                     "tls_ca_file", "tls_server_name", "tls_verify", "connect_timeout_ms",
                     "command_timeout_ms", "cluster"});
    CacheRedis r;
    r.host = s.required_string("host");
    s.integer_into("port", r.port, 1, 65535);
    s.string_into("region", r.region);
    s.string_into("user", r.user);
    r.password = password_of(s, true);
    if (!r.user.empty() && r.password.empty()) s.fail_at("user", "needs password or password_env");
    s.boolean_into("tls", r.tls);
    s.boolean_into("cluster", r.cluster);
    if (auto ca = s.string("tls_ca_file")) {
        if (ca->empty()) s.fail_at("tls_ca_file", "must not be empty");
        r.tls_ca_file = readable_file(ctx, s, "tls_ca_file", *ca);
    }
    s.string_into("tls_server_name", r.tls_server_name);
    s.boolean_into("tls_verify", r.tls_verify);
    if (!r.tls) {
        for (const char* key : {"tls_ca_file", "tls_server_name", "tls_verify"})
            if (s.find(key) != nullptr) s.fail_at(key, "only applies with tls = true");
    } else if (r.tls_verify && r.tls_ca_file.empty()) {
        s.fail_at("tls_ca_file", "is required with tls = true (or set tls_verify = false)");
    }
    if (auto ms = s.integer("connect_timeout_ms", 1, max_timeout_ms))
        r.connect_timeout = std::chrono::milliseconds(*ms);
    if (auto ms = s.integer("command_timeout_ms", 1, max_timeout_ms))
        r.command_timeout = std::chrono::milliseconds(*ms);
    return r;
}

} // namespace

Cache parse_cache(const Context& ctx, const toml::table& table) {
    const Section s(ctx, table, "cache",
                    {"enabled", "default_ttl_ms", "max_result_bytes", "l1_max_bytes", "key_prefix",
                     "region", "redis", "binlog"});
    Cache c;
    c.enabled = true;
    s.boolean_into("enabled", c.enabled);
    if (auto ms = s.integer("default_ttl_ms", 1, max_ttl_ms))
        c.default_ttl = std::chrono::milliseconds(*ms);
    s.integer_into("max_result_bytes", c.max_result_bytes, 1, std::int64_t{1} << 30);
    s.integer_into("l1_max_bytes", c.l1_max_bytes, 0, std::int64_t{1} << 40);
    s.string_into("key_prefix", c.key_prefix);
    if (c.key_prefix.find_first_of("{}") != std::string::npos)
        s.fail_at("key_prefix", "must not contain { or } (Redis Cluster hash tags)");
    s.string_into("region", c.region);
    if (const toml::table* b = s.table("binlog")) {
        const Section bs(ctx, *b, "cache.binlog",
                         {"user", "password", "password_env", "server_id"});
        c.binlog.enabled = true;
        bs.string_into("user", c.binlog.user);
        c.binlog.password = password_of(bs, true);
        bs.integer_into("server_id", c.binlog.server_id, 0, 4294967295);
    }
    const std::vector<const toml::table*> servers = s.tables("redis");
    for (std::size_t i = 0; i < servers.size(); ++i)
        c.redis.push_back(parse_cache_redis(ctx, *servers[i], element("cache.redis", i)));
    if (!c.redis.empty() && std::none_of(c.redis.begin(), c.redis.end(),
                                         [&](const CacheRedis& r) { return r.region == c.region; }))
        s.fail_at("region", "no [[cache.redis]] is in region " + in_quotes(c.region) +
                                " (the one this Sluice reads from)");
    return c;
}

CacheRule parse_cache_rule(const Context& ctx, const toml::table& table, std::string path) {
    const Section s(ctx, table, std::move(path),
                    {"name", "match_digest", "user", "schema", "ttl_ms", "shared"});
    CacheRule r;
    r.name = s.required_string("name");
    s.string_into("match_digest", r.match_digest);
    check_regex(s, "match_digest", r.match_digest);
    s.string_into("user", r.user);
    s.string_into("schema", r.schema);
    if (auto ms = s.integer("ttl_ms", 0, max_ttl_ms)) r.ttl = std::chrono::milliseconds(*ms);
    s.boolean_into("shared", r.shared);
    return r;
}

} // namespace sluice::config::detail
