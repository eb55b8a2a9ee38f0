// Fuzz target: TokenScanner on arbitrary bytes, fed whole, one byte at a time and in the
// chunking the second byte picks; all must agree on where the response ends and what it said.
// A response that scans must keep scanning after strip_routing, without routing ENVCHANGEs.

#include "sluice/protocol/tds/token_scanner.hpp"

#include <cstdlib>

using namespace sluice;
using namespace sluice::protocol::tds;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

struct Outcome {
    bool failed = false;
    error_code error;
    std::size_t consumed = 0;
    TokenScanner::State state = TokenScanner::State::running;
    Done done;
    std::size_t errors = 0, envs = 0, return_values = 0;
    std::uint64_t rows = 0;
    bool operator==(const Outcome&) const = default;
};

Outcome scan(Bytes in, std::uint32_t version, bool attention, std::size_t chunk) {
    TokenScanner s;
    s.start(version);
    if (attention) s.expect_attention_ack();
    Outcome o;
    std::size_t pos = 0;
    while (pos < in.size() && s.state() == TokenScanner::State::running) {
        const std::size_t n = chunk == 0 ? in.size() - pos : std::min(chunk, in.size() - pos);
        auto used = s.feed(in.subspan(pos, n));
        if (!used) {
            o.failed = true;
            o.error = used.error();
            pos = 0; // where the error shows depends on the chunking; that it shows does not
            break;
        }
        check(*used <= n);
        if (s.state() == TokenScanner::State::running) check(*used == n);
        pos += *used;
    }
    o.consumed = pos;
    o.state = s.state();
    o.done = s.last_done();
    o.errors = s.error_count();
    o.envs = s.env_changes().size();
    o.return_values = s.return_values().size();
    o.rows = s.rows();
    return o;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    // The first byte picks the TDS version and whether an ATTENTION was sent.
    const std::uint32_t version = (data[0] & 1) ? tds_version::v7_1 : tds_version::v7_4;
    const bool attention = data[0] & 2;
    const std::size_t chunk = data[1] == 0 ? 1 : data[1];
    const Bytes in{data + 2, size - 2};
    const Outcome whole = scan(in, version, attention, 0);
    check(scan(in, version, attention, 1) == whole);
    check(scan(in, version, attention, chunk) == whole);
    if (!attention && whole.state == TokenScanner::State::done && !whole.failed) {
        std::vector<std::uint8_t> stripped;
        const Bytes response = in.first(whole.consumed);
        check(strip_routing(response, version, stripped).has_value());
        TokenScanner s;
        check(scan_response(stripped, s, version).has_value());
        for (const auto& e : s.env_changes())
            check(e.type != env_type::routing && e.type != env_type::enhanced_routing);
    }
    return 0;
}
