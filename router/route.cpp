#include "sluice/router/route.hpp"

#include <algorithm>
#include <re2/re2.h>

namespace sluice::router {

const char* statement_class_name(StatementClass c) noexcept {
    switch (c) {
    case StatementClass::read:
        return "read";
    case StatementClass::write:
        return "write";
    case StatementClass::ddl:
        return "ddl";
    case StatementClass::begin:
        return "begin";
    case StatementClass::begin_read_only:
        return "begin_read_only";
    case StatementClass::commit:
        return "commit";
    case StatementClass::rollback:
        return "rollback";
    case StatementClass::savepoint:
        return "savepoint";
    case StatementClass::session_set:
        return "session_set";
    case StatementClass::use:
        return "use";
    case StatementClass::lock_tables:
        return "lock_tables";
    case StatementClass::unlock_tables:
        return "unlock_tables";
    case StatementClass::prepare_sql:
        return "prepare_sql";
    case StatementClass::other:
        return "other";
    case StatementClass::unknown:
        return "unknown";
    }
    return "unknown";
}

const char* route_reason_name(RouteReason r) noexcept {
    switch (r) {
    case RouteReason::read:
        return "read";
    case RouteReason::write:
        return "write";
    case RouteReason::transaction:
        return "transaction";
    case RouteReason::pin:
        return "pin";
    case RouteReason::rule:
        return "rule";
    case RouteReason::hint:
        return "hint";
    case RouteReason::locking_read:
        return "locking_read";
    case RouteReason::primary_function:
        return "primary_function";
    case RouteReason::multi_statement:
        return "multi_statement";
    case RouteReason::session_command:
        return "session_command";
    case RouteReason::unclassified:
        return "unclassified";
    case RouteReason::no_replica:
        return "no_replica";
    case RouteReason::diagnostics:
        return "diagnostics";
    case RouteReason::read_your_writes:
        return "read_your_writes";
    case RouteReason::catalog:
        return "catalog";
    case RouteReason::cache:
        return "cache";
    case RouteReason::count_:
        break;
    }
    return "unknown";
}

std::variant<RuleSet, std::string> RuleSet::compile(std::vector<RuleSpec> specs) {
    RuleSet set;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        std::unique_ptr<re2::RE2> re;
        if (!specs[i].match_digest.empty()) {
            RE2::Options opts;
            opts.set_log_errors(false);
            re = std::make_unique<re2::RE2>(specs[i].match_digest, opts);
            if (!re->ok())
                return "query_rules[" + std::to_string(i) + "].match_digest: " + re->error();
        }
        set.patterns_.push_back(std::move(re));
    }
    set.specs_ = std::move(specs);
    return set;
}

RuleSet::RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;
RuleSet::~RuleSet() = default;

const RuleSpec* RuleSet::match(std::string_view digest_text, std::string_view user,
                               std::string_view schema) const {
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        const RuleSpec& r = specs_[i];
        if (!r.user.empty() && r.user != user) continue;
        if (!r.schema.empty() && r.schema != schema) continue;
        if (patterns_[i] &&
            !re2::RE2::PartialMatch(re2::StringPiece(digest_text.data(), digest_text.size()),
                                    *patterns_[i]))
            continue;
        return &r;
    }
    return nullptr;
}

namespace {

/// Whether a statement may run on a replica at all, and if not, why.
std::optional<RouteReason> primary_only(const Classification& c) {
    if (c.flags.bad_syntax) return RouteReason::unclassified;
    if (c.flags.multi_statement) return RouteReason::multi_statement;
    switch (c.cls) {
    case StatementClass::read:
        break;
    case StatementClass::begin_read_only:
        return std::nullopt;
    case StatementClass::unknown:
        return RouteReason::unclassified;
    case StatementClass::begin:
    case StatementClass::commit:
    case StatementClass::rollback:
    case StatementClass::savepoint:
        return RouteReason::transaction;
    case StatementClass::session_set:
    case StatementClass::use:
        return RouteReason::session_command;
    case StatementClass::lock_tables:
    case StatementClass::unlock_tables:
        return RouteReason::pin;
    default:
        return RouteReason::write;
    }
    if (c.flags.locking_read) return RouteReason::locking_read;
    // These read or leave state that lives on one backend: the primary holds it.
    if (c.flags.select_into || c.flags.primary_function || c.flags.calc_found_rows ||
        c.flags.found_rows || c.flags.takes_user_lock || c.flags.releases_user_lock ||
        c.flags.assigns_user_variable || c.flags.reads_diagnostics)
        return RouteReason::primary_function;
    return std::nullopt;
}

Route to_replica(RouteReason reason, std::optional<std::uint32_t> max_lag, const RuleSpec* rule,
                 bool replica_available) {
    if (!replica_available) return {Destination::primary, RouteReason::no_replica, max_lag, rule};
    return {Destination::replica, reason, max_lag, rule};
}

} // namespace

Route decide_route(const Classification& c, std::string_view digest_text, const SessionView& s,
                   const RuleSet& rules, bool replica_available) {
    const auto unsafe = primary_only(c);
    // A read-only transaction lives on the replica that started it; everything else inside
    // a transaction sees the primary's data and locks.
    if (s.in_transaction) {
        if (!s.read_only_transaction) return {Destination::primary, RouteReason::transaction};
        // The replica answers for the transaction, refusals of writes included, as the
        // server the client would be talking to does; locks and temporary tables are
        // primary state the session keeps.
        if (c.flags.takes_user_lock || c.flags.releases_user_lock)
            return {Destination::primary, RouteReason::pin};
        // The transaction refuses it there (1792), as a server does.
        if (c.flags.creates_temp_table) return {Destination::replica, RouteReason::transaction};
        // The replica answers reads, refuses writes (the transaction is read-only there) and
        // takes transaction control. Anything else could change the replica itself: DDL,
        // FLUSH and the like commit implicitly and write its binary log, which breaks its
        // replication (a GTID of its own): the primary runs those.
        // autocommit is the primary's: whether the statements after the transaction open a
        // new one is its status to tell, and a replica connection stays in autocommit.
        const bool sets_autocommit = std::any_of(
            c.session_changes.begin(), c.session_changes.end(),
            [](const SessionChange& ch) { return ch.kind == SessionChange::Kind::autocommit; });
        if (sets_autocommit) return {Destination::primary, RouteReason::transaction};
        switch (c.cls) {
        case StatementClass::read:
        case StatementClass::write:
        case StatementClass::session_set:
        case StatementClass::use:
        case StatementClass::begin:
        case StatementClass::begin_read_only:
        case StatementClass::commit:
        case StatementClass::rollback:
        case StatementClass::savepoint:
            if (!c.flags.multi_statement && !c.flags.runs_hidden_statements)
                return {Destination::replica, RouteReason::transaction};
            break;
        default:
            break;
        }
        return {Destination::primary, RouteReason::transaction};
    }
    if (s.pinned) return {Destination::primary, RouteReason::pin};
    // State only the primary has: what a hidden statement put in user variables, and the
    // row that `IS NULL` finds under SQL_AUTO_IS_NULL.
    if ((s.user_variables_on_primary && c.flags.reads_user_variable) ||
        (s.auto_is_null && c.flags.tests_is_null))
        return {Destination::primary, RouteReason::pin};
    if (c.flags.reads_diagnostics && s.last_on_replica && replica_available &&
        !c.flags.locking_read && !c.flags.select_into && !c.flags.takes_user_lock &&
        !c.flags.releases_user_lock && !c.flags.assigns_user_variable && !c.flags.multi_statement &&
        !c.flags.bad_syntax && (c.cls == StatementClass::read || c.cls == StatementClass::other))
        return {Destination::replica, RouteReason::diagnostics};

    if (const RuleSpec* rule = rules.match(digest_text, s.user, s.schema)) {
        if (rule->route == Destination::refuse)
            return {Destination::refuse, RouteReason::rule, std::nullopt, rule};
        if (rule->route == Destination::primary || unsafe)
            return {Destination::primary, unsafe ? *unsafe : RouteReason::rule, std::nullopt, rule};
        return to_replica(RouteReason::rule,
                          rule->max_lag_ms ? rule->max_lag_ms : c.hint.max_lag_ms, rule,
                          replica_available);
    }
    if (c.hint.target == Hint::Target::primary) return {Destination::primary, RouteReason::hint};
    if (unsafe) return {Destination::primary, *unsafe};
    if (c.flags.reads_catalog && c.hint.target != Hint::Target::replica)
        return {Destination::primary, RouteReason::catalog};
    RouteReason reason = RouteReason::read;
    if (c.cls == StatementClass::begin_read_only) reason = RouteReason::transaction;
    if (c.hint.target == Hint::Target::replica || c.hint.max_lag_ms) reason = RouteReason::hint;
    return to_replica(reason, c.hint.max_lag_ms, nullptr, replica_available);
}

} // namespace sluice::router
