// Fuzz target: parse_prelogin on arbitrary bytes; whatever parses must survive write_prelogin
// and parse again to the same options.

#include "sluice/protocol/tds/prelogin.hpp"

#include <cstdlib>

using namespace sluice;
using namespace sluice::protocol::tds;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto p = parse_prelogin(Bytes{data, size});
    if (!p) return 0; // refusing input is fine; crashing is not
    (void)p->version();
    (void)p->encryption();
    (void)p->thread_id();
    if (auto e = p->encryption()) (void)negotiate_encryption(*e, ServerEncryption::off);
    std::vector<std::uint8_t> again;
    write_prelogin(*p, again);
    auto reparsed = parse_prelogin(again);
    if (!reparsed || *reparsed != *p) std::abort();
    return 0;
}
