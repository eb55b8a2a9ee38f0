#include "sluice/protocol/mysql/gtid.hpp"

#include <algorithm>
#include <charconv>

namespace sluice::protocol::mysql {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

std::optional<std::uint64_t> number(std::string_view s) {
    std::uint64_t v = 0;
    if (s.empty()) return std::nullopt;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

/// MariaDB `domain-server-seq`.
std::optional<GtidStream> mariadb_gtid(std::string_view s) {
    const auto a = s.find('-');
    if (a == std::string_view::npos) return std::nullopt;
    const auto b = s.find('-', a + 1);
    if (b == std::string_view::npos) return std::nullopt;
    const auto domain = number(s.substr(0, a));
    const auto server = number(s.substr(a + 1, b - a - 1));
    const auto seq = number(s.substr(b + 1));
    if (!domain || !server || !seq) return std::nullopt;
    GtidStream g;
    g.source = std::to_string(*domain);
    g.server = std::to_string(*server);
    g.intervals.emplace_back(1, *seq);
    return g;
}

/// MySQL `uuid:1-5:7` (a uuid of 36 characters, then intervals).
std::optional<GtidStream> mysql_gtid(std::string_view s) {
    const auto colon = s.find(':');
    if (colon != 36) return std::nullopt;
    GtidStream g;
    g.source = std::string(s.substr(0, colon));
    for (char& ch : g.source) {
        if (ch >= 'A' && ch <= 'F') ch = static_cast<char>(ch - 'A' + 'a');
    }
    std::string_view rest = s.substr(colon + 1);
    while (!rest.empty()) {
        const auto next = rest.find(':');
        const std::string_view item = rest.substr(0, next);
        rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next + 1);
        const auto dash = item.find('-');
        const auto lo = number(item.substr(0, dash));
        const auto hi = dash == std::string_view::npos ? lo : number(item.substr(dash + 1));
        // MySQL numbers a source's transactions from 1.
        if (!lo || !hi || *lo == 0 || *hi < *lo) return std::nullopt;
        g.intervals.emplace_back(*lo, *hi);
        if (next == std::string_view::npos) break;
    }
    if (g.intervals.empty()) return std::nullopt;
    return g;
}

} // namespace

std::optional<std::vector<GtidStream>> parse_gtid_position(std::string_view text) {
    std::vector<GtidStream> out;
    while (true) {
        const auto comma = text.find(',');
        const std::string_view item = trim(text.substr(0, comma));
        if (!item.empty()) {
            auto g =
                item.find(':') != std::string_view::npos ? mysql_gtid(item) : mariadb_gtid(item);
            if (!g) return std::nullopt;
            out.push_back(std::move(*g));
        }
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return out;
}

bool gtid_covers(std::string_view position, std::string_view token) {
    const auto want = parse_gtid_position(token);
    if (!want) return false;
    if (want->empty()) return true;
    const auto have = parse_gtid_position(position);
    if (!have) return false;
    for (const GtidStream& w : *want) {
        for (const auto& [lo, hi] : w.intervals) {
            // Every transaction lo..hi of this source must lie in one of the position's
            // intervals of the same source (intervals of a set do not touch: one suffices).
            bool inside = false;
            for (const GtidStream& h : *have) {
                if (h.source != w.source) continue;
                for (const auto& [hlo, hhi] : h.intervals) {
                    if (hlo <= lo && hi <= hhi) inside = true;
                }
            }
            if (!inside) return false;
        }
    }
    return true;
}

bool GtidWatermark::advance(std::string_view gtid) {
    const auto streams = parse_gtid_position(gtid);
    if (!streams) return false;
    bool advanced = false;
    for (const GtidStream& g : *streams) {
        std::uint64_t hi = 0;
        for (const auto& iv : g.intervals)
            hi = std::max(hi, iv.second);
        const bool mysql = g.server.empty();
        auto it = std::find_if(heads_.begin(), heads_.end(),
                               [&](const Head& h) { return h.source == g.source; });
        if (it == heads_.end()) {
            heads_.push_back({g.source, g.server, hi, mysql});
            advanced = true;
        } else if (hi > it->seq) {
            it->seq = hi;
            it->server = g.server;
            advanced = true;
        }
    }
    if (!advanced) return false;
    text_.clear();
    for (const Head& h : heads_) {
        if (!text_.empty()) text_ += ',';
        text_ += h.mysql ? h.source + ":1-" + std::to_string(h.seq)
                         : h.source + "-" + h.server + "-" + std::to_string(h.seq);
    }
    return true;
}

} // namespace sluice::protocol::mysql
