// The helpers Section stands on: `file:line: key: reason` failures and the dotted key paths
// that messages name.
#include "config_internal.hpp"

#include <algorithm>
#include <string>
#include <string_view>

namespace sluice::config::detail {

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

namespace {

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

} // namespace

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
} // namespace sluice::config::detail
