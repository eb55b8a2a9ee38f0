#pragma once
// Shared helpers for the router tests: flag strings, the autocommit route rule.

#include "sluice/router/classify.hpp"
#include "sluice/router/route.hpp"

#include <catch2/catch.hpp>
#include <ostream>
#include <string>
#include <string_view>

namespace sluice::router::test {

/// Letters for StatementFlags, so a table row can say "LP" for locking_read + primary_function.
///   L locking_read      I select_into        P primary_function   K takes_user_lock
///   R releases_user_lock C calc_found_rows   F found_rows         T creates_temp_table
///   D drops_temp_table  M multi_statement    N non_deterministic  U reads_user_variable
///   B bad_syntax        G reads_diagnostics  H chains_transaction X releases_connection
///   O opens_handler     Z closes_handler     A assigns_user_variable
///   V runs_hidden_statements                 Y reads_catalog      W tests_is_null
///   Q has_placeholder
inline std::string flag_letters(const StatementFlags& f) {
    std::string s;
    if (f.locking_read) s += 'L';
    if (f.select_into) s += 'I';
    if (f.primary_function) s += 'P';
    if (f.takes_user_lock) s += 'K';
    if (f.releases_user_lock) s += 'R';
    if (f.calc_found_rows) s += 'C';
    if (f.found_rows) s += 'F';
    if (f.creates_temp_table) s += 'T';
    if (f.drops_temp_table) s += 'D';
    if (f.multi_statement) s += 'M';
    if (f.non_deterministic) s += 'N';
    if (f.reads_user_variable) s += 'U';
    if (f.bad_syntax) s += 'B';
    if (f.reads_diagnostics) s += 'G';
    if (f.chains_transaction) s += 'H';
    if (f.releases_connection) s += 'X';
    if (f.opens_handler) s += 'O';
    if (f.closes_handler) s += 'Z';
    if (f.assigns_user_variable) s += 'A';
    if (f.runs_hidden_statements) s += 'V';
    if (f.reads_catalog) s += 'Y';
    if (f.tests_is_null) s += 'W';
    if (f.has_placeholder) s += 'Q';
    return s;
}

/// The same letters in canonical order, whatever order a table row wrote them in.
inline std::string canonical_letters(std::string_view letters) {
    static constexpr std::string_view order = "LIPKRCFTDMNUBGHXOZAVYWQ";
    std::string s;
    for (char c : order) {
        if (letters.find(c) != std::string_view::npos) s += c;
    }
    return s;
}

enum class Where { primary, replica };

inline std::ostream& operator<<(std::ostream& os, Where r) {
    return os << (r == Where::primary ? "primary" : "replica");
}

/// The route decide_route() gives for an autocommit session outside a transaction, with no
/// pin, no rules and a replica available: the contract the table's route column states.
inline Where autocommit_route(const Classification& c) {
    static const RuleSet no_rules;
    const SessionView autocommit{false, false, false, "app", "db"};
    const auto r = decide_route(c, "", autocommit, no_rules, true);
    return r.destination == Destination::replica ? Where::replica : Where::primary;
}

} // namespace sluice::router::test

template <> struct Catch::StringMaker<sluice::router::StatementClass> {
    static std::string convert(sluice::router::StatementClass c) {
        return sluice::router::statement_class_name(c);
    }
};
