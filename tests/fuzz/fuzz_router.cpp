// Fuzzes the router's statement side: classify() and digest() on arbitrary bytes.
// Invariants: nothing crashes or reads out of bounds; unlexable text is class unknown;
// a digest of a digest is the same digest for any text that lexes (in the same sql_mode).

#include "sluice/router/classify.hpp"
#include "sluice/router/tables.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace sluice::router;

namespace {

void check(std::string_view sql, SqlMode mode) {
    const Classification c = classify(sql, mode);
    if (c.flags.bad_syntax && c.cls != StatementClass::unknown) std::abort();
    (void)tables_read(sql, mode);
    (void)tables_written(sql, mode);
    const Digest d = digest(sql, mode);
    if (c.flags.bad_syntax) return;
    const Digest again = digest(d.text, mode);
    if (again.text != d.text || again.hash != d.hash) std::abort();
    // The digest lexes as well as the text did.
    if (classify(d.text, mode).flags.bad_syntax) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view sql{reinterpret_cast<const char*>(data), size};
    check(sql, SqlMode{});
    check(sql, SqlMode{.no_backslash_escapes = true, .ansi_quotes = false});
    check(sql, SqlMode{.no_backslash_escapes = false, .ansi_quotes = true});
    return 0;
}
