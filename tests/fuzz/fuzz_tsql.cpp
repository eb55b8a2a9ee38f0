// Fuzzes the T-SQL side of the router: tsql::classify() and tsql::digest() on arbitrary
// bytes. Invariants: nothing crashes or reads out of bounds; unlexable text is class unknown;
// a replay batch of the session changes a text made classifies as session changes again.

#include "sluice/router/tsql.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace sluice::router;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view sql(reinterpret_cast<const char*>(data), size);
    const Classification c = tsql::classify(sql);
    if (c.flags.bad_syntax && c.cls != StatementClass::unknown) std::abort();
    (void)tsql::digest(sql);
    if (!c.flags.bad_syntax && !c.session_changes.empty()) {
        std::vector<std::string> texts;
        ReplayPlan plan;
        for (const auto& ch : c.session_changes) {
            if (ch.kind == SessionChange::Kind::system_variable && ch.value_is_constant)
                texts.push_back(ch.text);
        }
        for (const auto& t : texts)
            plan.combined.push_back(t);
        if (!plan.empty()) {
            const Classification again = tsql::classify(tsql::replay_batch(plan));
            if (again.session_changes.size() < texts.size()) std::abort();
        }
    }
    return 0;
}
