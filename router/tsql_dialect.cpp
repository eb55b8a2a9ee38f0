// The T-SQL Sluice writes itself (see sluice/router/tsql.hpp).
#include "sluice/router/tsql.hpp"

namespace sluice::router::tsql {

std::string quote_identifier(std::string_view name) {
    std::string out = "[";
    for (char c : name) {
        out += c;
        if (c == ']') out += ']';
    }
    out += ']';
    return out;
}

std::string quote_string(std::string_view text) {
    std::string out = "N'";
    for (char c : text) {
        out += c;
        if (c == '\'') out += '\'';
    }
    out += '\'';
    return out;
}

std::string replay_batch(const ReplayPlan& plan) {
    std::string out;
    if (!plan.database.empty()) out += "USE " + quote_identifier(plan.database) + ";\n";
    // T-SQL has no combined SET of several options with different values: each its own.
    for (auto a : plan.standalone)
        out.append("SET ").append(a).append(";\n");
    for (auto a : plan.combined)
        out.append("SET ").append(a).append(";\n");
    return out;
}

std::string_view commit_lsn_query() noexcept {
    return "SELECT CAST(MAX(last_commit_lsn) AS nvarchar(40)) FROM "
           "sys.dm_hadr_database_replica_states WHERE is_local = 1 AND database_id = DB_ID()";
}

std::string_view rollback_if_open() noexcept { return "IF @@TRANCOUNT > 0 ROLLBACK TRAN"; }

} // namespace sluice::router::tsql
