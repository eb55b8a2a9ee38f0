// Fuzz target: GTID positions (protocol/mysql/gtid). Whatever parses covers itself; the
// watermark built from it covers nothing it has not seen and is covered by the text itself.

#include "sluice/protocol/mysql/gtid.hpp"

#include <cstdlib>
#include <string_view>

using namespace sluice::protocol::mysql;

namespace {
void check(bool ok) {
    if (!ok) std::abort();
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto split = in.find('|');
    const std::string_view a = in.substr(0, split);
    const std::string_view b =
        split == std::string_view::npos ? std::string_view{} : in.substr(split + 1);
    const auto parsed = parse_gtid_position(a);
    if (parsed) check(gtid_covers(a, a));
    (void)gtid_covers(a, b);
    GtidWatermark w;
    const bool advanced = w.advance(a);
    if (advanced) {
        // The watermark's text parses, and the input covers it (it holds the newest
        // transaction of each stream the input names).
        check(parse_gtid_position(w.text()).has_value());
        check(gtid_covers(w.text(), w.text()));
    }
    w.advance(b);
    return 0;
}
