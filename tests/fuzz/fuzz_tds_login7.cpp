// Fuzz target: parse_login7 on arbitrary bytes (every offset and length is attacker-chosen);
// whatever parses must survive write_login7 and parse again to the same fields.

#include "sluice/protocol/tds/login7.hpp"

#include <cstdlib>

using namespace sluice;
using namespace sluice::protocol::tds;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto l = parse_login7(Bytes{data, size});
    if (!l) return 0;
    std::vector<std::uint8_t> again;
    write_login7(*l, again);
    auto reparsed = parse_login7(again);
    if (!reparsed) std::abort();
    // fExtension follows the FeatureExt block: the writer sets or clears it to match.
    Login7 expected = *l;
    if (expected.feature_ext.empty()) expected.option_flags3 &= ~login7_flags::extension;
    if (*reparsed != expected) std::abort();
    return 0;
}
