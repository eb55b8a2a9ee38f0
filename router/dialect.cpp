#include "sluice/router/dialect.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace sluice::router::mysql_dialect {

namespace {

bool is_word(std::string_view w, std::string_view keyword) {
    return w.size() == keyword.size() &&
           std::equal(w.begin(), w.end(), keyword.begin(), [](char a, char b) {
               return std::toupper(static_cast<unsigned char>(a)) == b;
           });
}

} // namespace

std::string quote_string(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'' || c == '\\')
            out += c == '\'' ? "''" : "\\\\";
        else
            out += c;
    }
    out += '\'';
    return out;
}

std::vector<std::string> replay_statements(const ReplayPlan& plan) {
    std::vector<std::string> out;
    for (std::string_view a : plan.standalone)
        out.push_back("SET " + std::string(a));
    if (!plan.combined.empty()) {
        std::string sql = "SET ";
        for (std::size_t i = 0; i < plan.combined.size(); ++i) {
            if (i > 0) sql += ", ";
            sql += plan.combined[i];
        }
        out.push_back(std::move(sql));
    }
    return out;
}

std::string causal_wait(std::string_view gtid, std::chrono::milliseconds timeout, bool mariadb) {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.3f", static_cast<double>(timeout.count()) / 1000.0);
    return std::string("SELECT ") + (mariadb ? "MASTER_GTID_WAIT" : "WAIT_FOR_EXECUTED_GTID_SET") +
           "(" + quote_string(gtid) + ", " + seconds + ")";
}

std::string_view track_gtids(bool mariadb) noexcept {
    return mariadb ? "SET session_track_system_variables = CONCAT_WS(',', "
                     "NULLIF(@@session_track_system_variables, ''), 'last_gtid')"
                   : "SET session_track_gtids = OWN_GTID";
}

std::string_view clear_diagnostics() noexcept {
    return "SELECT 1 FROM (SELECT 1) AS sluice_clear LIMIT 0";
}

std::string_view may_kill_others() noexcept {
    return "SELECT COUNT(*) > 0 FROM information_schema.USER_PRIVILEGES "
           "WHERE PRIVILEGE_TYPE IN ('SUPER', 'CONNECTION ADMIN')";
}

std::string_view add_ignore_space() noexcept {
    return "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@sql_mode, ''), 'IGNORE_SPACE')";
}

std::string kill(bool query, std::uint64_t thread) {
    return (query ? "KILL QUERY " : "KILL CONNECTION ") + std::to_string(thread);
}

std::string_view commit() noexcept { return "COMMIT"; }

std::optional<KillStatement> parse_kill(std::string_view sql) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < sql.size()) {
        while (i < sql.size() &&
               (std::isspace(static_cast<unsigned char>(sql[i])) || sql[i] == ';'))
            ++i;
        const std::size_t start = i;
        while (i < sql.size() && !std::isspace(static_cast<unsigned char>(sql[i])) && sql[i] != ';')
            ++i;
        if (i > start) words.push_back(sql.substr(start, i - start));
        if (words.size() > 5) return std::nullopt;
    }
    std::size_t w = 0;
    if (words.empty() || !is_word(words[w++], "KILL")) return std::nullopt;
    KillStatement k;
    if (w < words.size() && (is_word(words[w], "HARD") || is_word(words[w], "SOFT"))) ++w;
    if (w < words.size() && is_word(words[w], "CONNECTION")) {
        ++w;
    } else if (w < words.size() && is_word(words[w], "QUERY")) {
        k.query = true;
        ++w;
        if (w < words.size() && is_word(words[w], "ID")) ++w;
    }
    if (w + 1 != words.size() || words[w].size() > 10) return std::nullopt;
    for (char ch : words[w]) {
        if (ch < '0' || ch > '9') return std::nullopt;
        k.target = k.target * 10 + static_cast<std::uint64_t>(ch - '0');
    }
    return k;
}

} // namespace sluice::router::mysql_dialect
