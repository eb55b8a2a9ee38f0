// Fuzz target: ResponseScanner on arbitrary bytes for every ResponseKind, fed whole and in
// small chunks. It must not crash, and every chunking must agree with the whole feed on the
// bytes consumed and the state reached.

#include "sluice/protocol/mysql/response_scanner.hpp"

#include <cstdlib>

using namespace sluice;
using namespace sluice::protocol::mysql;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

struct Outcome {
    bool failed = false;
    error_code error;
    std::size_t consumed = 0;
    ResponseScanner::State state = ResponseScanner::State::running;
    std::uint16_t status = 0;
    bool ended_with_error = false;
    std::uint64_t packets = 0;
    std::uint32_t statement_id = 0;
    bool operator==(const Outcome&) const = default;
};

// Feeds `in` in chunks whose sizes come from `sizes` (cycled; 0 means all that is left). A
// LOCAL INFILE request is answered with resume(), so the rest is scanned too.
Outcome scan(ResponseKind kind, bool deprecate_eof, Bytes in, Bytes sizes) {
    ResponseScanner s;
    s.start(kind, deprecate_eof);
    Outcome o;
    std::size_t pos = 0, turn = 0;
    int resumes = 0;
    while (pos < in.size()) {
        if (s.state() == ResponseScanner::State::local_infile && resumes++ < 4) s.resume();
        if (s.state() != ResponseScanner::State::running) break;
        const std::size_t want = sizes.empty() ? 0 : sizes[turn++ % sizes.size()];
        const std::size_t n = want == 0 ? in.size() - pos : std::min(want, in.size() - pos);
        auto r = s.feed(in.subspan(pos, n));
        if (!r) {
            o.failed = true;
            o.error = r.error();
            pos = 0; // where the error shows depends on the chunking; that it shows does not
            break;
        }
        check(*r <= n);
        // While running, a chunk is consumed whole.
        if (s.state() == ResponseScanner::State::running) check(*r == n);
        pos += *r;
    }
    o.consumed = pos;
    o.state = s.state();
    o.status = s.last_status();
    o.ended_with_error = s.ended_with_error();
    o.packets = s.packets();
    o.statement_id = s.statement_id();
    return o;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    // The first byte picks the kind and CLIENT_DEPRECATE_EOF, the second an extra chunking.
    const auto kind = static_cast<ResponseKind>(data[0] % 6); // every ResponseKind
    const bool deprecate_eof = data[0] & 0x80;
    const std::uint8_t odd[] = {data[1], 1, 7, 2};
    const Bytes in{data + 2, size - 2};
    const Outcome whole = scan(kind, deprecate_eof, in, {});
    for (std::uint8_t c : {1, 2, 3, 5, 64}) {
        const std::uint8_t one[] = {c};
        check(scan(kind, deprecate_eof, in, one) == whole);
    }
    check(scan(kind, deprecate_eof, in, odd) == whole);
    return 0;
}
