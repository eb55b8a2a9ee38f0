#include "hint.hpp"

#include "lexer.hpp"

#include <cstdint>

namespace sluice::router::detail {

namespace {
constexpr bool is_letter(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
constexpr bool is_separator(char c) noexcept { return is_space(c) || c == ','; }

void skip_spaces(std::string_view& s) noexcept {
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
}
std::string_view take_word(std::string_view& s) noexcept {
    std::size_t n = 0;
    while (n < s.size() && is_letter(s[n]))
        ++n;
    const std::string_view w = s.substr(0, n);
    s.remove_prefix(n);
    return w;
}

/// A duration (max_lag's, ttl's): digits, then ms, s or nothing (seconds). nullopt if
/// malformed or too big.
std::optional<std::uint32_t> take_lag(std::string_view& s) noexcept {
    std::uint64_t n = 0;
    std::size_t digits = 0;
    while (digits < s.size() && is_digit(s[digits])) {
        n = n * 10 + static_cast<std::uint64_t>(s[digits] - '0');
        if (n > 0xFFFFFFFFull) return std::nullopt;
        ++digits;
    }
    if (digits == 0) return std::nullopt;
    s.remove_prefix(digits);
    const std::string_view unit = take_word(s);
    std::uint64_t ms = 0;
    if (unit.empty() || iequals(unit, "S")) {
        ms = n * 1000;
    } else if (iequals(unit, "MS")) {
        ms = n;
    } else {
        return std::nullopt;
    }
    if (ms > 0xFFFFFFFFull) return std::nullopt;
    return static_cast<std::uint32_t>(ms);
}
} // namespace

bool parse_hint_comment(std::string_view c, Hint& hint) noexcept {
    if (c.starts_with("/*")) {
        c.remove_prefix(2);
        if (c.starts_with("+")) c.remove_prefix(1);
        if (c.ends_with("*/")) c.remove_suffix(2);
    } else if (c.starts_with("#")) {
        c.remove_prefix(1);
    } else if (c.starts_with("--")) {
        c.remove_prefix(2);
    } else {
        return false;
    }
    skip_spaces(c);
    if (!iequals(take_word(c), "SLUICE")) return false;
    skip_spaces(c);
    if (!c.starts_with(":")) return false;
    c.remove_prefix(1);

    bool primary = false;
    bool replica = false;
    std::optional<std::uint32_t> lag;
    std::optional<Consistency> consistency;
    std::optional<std::uint32_t> ttl;
    bool cache = false;
    bool nocache = false;
    bool any = false;
    for (;;) {
        while (!c.empty() && is_separator(c.front()))
            c.remove_prefix(1);
        if (c.empty()) break;
        const std::string_view word = take_word(c);
        if (iequals(word, "PRIMARY")) {
            primary = true;
        } else if (iequals(word, "REPLICA")) {
            replica = true;
        } else if (iequals(word, "MAX_LAG")) {
            skip_spaces(c);
            if (!c.starts_with("=")) return false;
            c.remove_prefix(1);
            skip_spaces(c);
            lag = take_lag(c);
            if (!lag) return false;
        } else if (iequals(word, "CACHE")) {
            cache = true;
        } else if (iequals(word, "NOCACHE")) {
            nocache = true;
        } else if (iequals(word, "TTL")) {
            skip_spaces(c);
            if (!c.starts_with("=")) return false;
            c.remove_prefix(1);
            skip_spaces(c);
            ttl = take_lag(c);
            if (!ttl) return false;
            cache = true;
        } else if (iequals(word, "CONSISTENCY")) {
            skip_spaces(c);
            if (!c.starts_with("=")) return false;
            c.remove_prefix(1);
            skip_spaces(c);
            const std::string_view level = take_word(c);
            if (iequals(level, "EVENTUAL"))
                consistency = Consistency::eventual;
            else if (iequals(level, "SESSION"))
                consistency = Consistency::session;
            else if (iequals(level, "GLOBAL"))
                consistency = Consistency::global;
            else if (iequals(level, "FLEET"))
                consistency = Consistency::fleet;
            else
                return false;
        } else {
            return false;
        }
        // Each item ends at a separator or the end: "primaryx" or "2sx" is not a hint.
        if (!c.empty() && !is_separator(c.front())) return false;
        any = true;
    }
    if (!any) return false;
    if (primary) {
        hint.target = Hint::Target::primary;
    } else if (replica && hint.target != Hint::Target::primary) {
        hint.target = Hint::Target::replica;
    }
    if (lag) hint.max_lag_ms = lag;
    if (consistency) hint.consistency = consistency;
    // nocache beats cache, as primary beats replica: the safe word wins.
    if (nocache) {
        hint.cache = Hint::Cache::nocache;
        hint.cache_ttl_ms.reset();
    } else if (cache && hint.cache != Hint::Cache::nocache) {
        hint.cache = Hint::Cache::cache;
        if (ttl) hint.cache_ttl_ms = ttl;
    }
    return true;
}

} // namespace sluice::router::detail

namespace sluice::router {

std::string_view without_leading_comments(std::string_view sql) noexcept {
    for (;;) {
        std::size_t i = 0;
        while (i < sql.size() && detail::is_space(sql[i]))
            ++i;
        sql.remove_prefix(i);
        std::size_t end = std::string_view::npos;
        if (sql.starts_with("/*") && !sql.starts_with("/*!") && !sql.starts_with("/*M!")) {
            end = sql.find("*/", 2);
            if (end != std::string_view::npos) end += 2;
        } else if (sql.starts_with("#") ||
                   (sql.starts_with("--") && (sql.size() == 2 || detail::is_space(sql[2]) ||
                                              static_cast<unsigned char>(sql[2]) < 0x20))) {
            end = sql.find('\n');
            if (end == std::string_view::npos) end = sql.size();
        }
        if (end == std::string_view::npos) return sql;
        sql.remove_prefix(end);
    }
}

} // namespace sluice::router
