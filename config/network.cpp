// Parsing of the sections about where to listen and connect: [[listeners]] (with their TLS),
// [[backends]], [backend_tls] and [admin]; bind addresses and TLS files are checked here.
#include "config_internal.hpp"

#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <utility>

namespace sluice::config::detail {

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

namespace {

constexpr std::int64_t max_port = 65535;

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

} // namespace

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

Listener parse_listener(const Context& ctx, const toml::table& table, std::string path) {
    const Section s(ctx, table, std::move(path),
                    {"name", "protocol", "address", "port", "max_connections", "auth_plugin",
                     "require_tls", "tls", "pool_mode"});
    Listener l;
    l.name = s.required_string("name");
    if (auto protocol = s.string("protocol")) {
        if (*protocol != "mysql" && *protocol != "tds")
            s.fail_at("protocol", "must be \"mysql\" or \"tds\"");
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
    if (s.find("pool_mode") != nullptr) l.pool_mode = pool_mode_of(s, "pool_mode");
    if (const toml::table* tls = s.table("tls")) {
        l.tls = parse_listener_tls(ctx, *tls, s.path_of("tls"));
    }
    if (l.require_tls && !l.tls.enabled()) {
        s.fail_at("require_tls", "requires tls (cert_file and key_file)");
    }
    return l;
}

Backend parse_backend(const Context& ctx, const toml::table& table, std::string path,
                      std::uint16_t default_port) {
    const Section s(ctx, table, std::move(path),
                    {"name", "host", "port", "role", "zone", "weight", "tls",
                     "pool_max_connections", "pool_min_idle", "pool_idle_timeout_ms",
                     "pool_max_lifetime_ms"});
    Backend b;
    b.port = default_port;
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
    if (auto n = s.integer("pool_max_connections", 1, 100000))
        b.pool_max_connections = static_cast<std::uint32_t>(*n);
    if (auto n = s.integer("pool_min_idle", 0, 100000))
        b.pool_min_idle = static_cast<std::uint32_t>(*n);
    if (auto ms = s.integer("pool_idle_timeout_ms", 1, max_timeout_ms))
        b.pool_idle_timeout = std::chrono::milliseconds(*ms);
    if (auto ms = s.integer("pool_max_lifetime_ms", 1, max_timeout_ms))
        b.pool_max_lifetime = std::chrono::milliseconds(*ms);
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
Admin parse_admin(const Context& ctx, const toml::table& table) {
    const Section s(ctx, table, "admin", {"address", "port", "enabled"});
    Admin a;
    address_into(s, "address", a.address);
    s.integer_into("port", a.port, 1, max_port);
    s.boolean_into("enabled", a.enabled);
    return a;
}

} // namespace sluice::config::detail
