// Fuzz target: cached results (protocol/mysql/cached_result.cpp). The first input byte is a
// selector: bit 0 the row format, bit 1 the server's CLIENT_DEPRECATE_EOF, bit 2 a small
// max_bytes. The rest is used twice: as a blob for replay (any bytes must give wire bytes or
// an error, never a crash), and as the payloads of a server's response for capture, each
// preceded by a 2-byte little-endian length. Whatever replays must be a complete response to
// ResponseScanner and capture back to a blob that replays to the same bytes; whatever
// captures must replay in both client forms and, in the server's form, capture back to the
// same blob.

#include "sluice/protocol/mysql/cached_result.hpp"
#include "sluice/protocol/mysql/response_scanner.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace sluice;
using namespace sluice::protocol::mysql;

namespace {

using Payloads = std::vector<std::vector<std::uint8_t>>;

void check(bool ok) {
    if (!ok) std::abort();
}

// The payloads of a replayed response (its messages are far below 0xFFFFFF bytes here, but a
// continued packet is passed on as the relay would pass it).
Payloads split(Bytes wire) {
    Payloads out;
    while (!wire.empty()) {
        check(wire.size() >= 4);
        const std::size_t len = wire[0] | (wire[1] << 8) | (wire[2] << 16);
        check(wire.size() >= 4 + len);
        out.emplace_back(wire.begin() + 4, wire.begin() + 4 + static_cast<std::ptrdiff_t>(len));
        wire = wire.subspan(4 + len);
    }
    return out;
}

void check_complete(Bytes wire, bool deprecate_eof) {
    ResponseScanner s;
    s.start(ResponseKind::query, deprecate_eof);
    auto n = s.feed(wire);
    check(n && *n == wire.size());
    check(s.state() == ResponseScanner::State::done && !s.ended_with_error());
}

constexpr std::size_t unlimited = std::size_t{1} << 30;

void as_blob(std::string_view blob) {
    for (bool deof : {false, true}) {
        std::vector<std::uint8_t> wire{0x5A};
        auto r = replay(blob, deof, 1, wire);
        if (!r) {
            check(wire.size() == 1); // a refused blob leaves the buffer as it was
            continue;
        }
        check(blob.size() >= 10 && static_cast<std::uint8_t>(blob[0]) == cached_result_version);
        const Bytes response = Bytes{wire}.subspan(1);
        check_complete(response, deof);
        const auto format = static_cast<ResultFormat>(blob[1]);
        auto again = capture(format, split(response), deof, unlimited);
        check(again.has_value());
        std::vector<std::uint8_t> wire2{0x5A};
        check(replay(*again, deof, 1, wire2).has_value());
        check(wire2 == wire);
    }
}

void as_payloads(Bytes in, std::uint8_t selector) {
    Payloads payloads;
    while (in.size() >= 2) {
        const std::size_t len = std::min<std::size_t>(in[0] | (in[1] << 8), in.size() - 2);
        payloads.emplace_back(in.begin() + 2, in.begin() + 2 + static_cast<std::ptrdiff_t>(len));
        in = in.subspan(2 + len);
    }
    const auto format = (selector & 1) ? ResultFormat::binary : ResultFormat::text;
    const bool server_deof = (selector & 2) != 0;
    const std::size_t max_bytes = (selector & 4) ? 64 : unlimited;
    auto blob = capture(format, payloads, server_deof, max_bytes);
    if (!blob) return;
    check(blob->size() <= max_bytes);

    // The incremental form agrees with the whole-response form.
    Capture c;
    c.start(format, server_deof, max_bytes);
    for (const auto& p : payloads)
        c.add(p);
    check(c.done());
    auto incremental = c.finish();
    check(incremental && *incremental == *blob);

    for (bool client_deof : {false, true}) {
        std::vector<std::uint8_t> wire;
        check(replay(*blob, client_deof, 1, wire).has_value());
        check_complete(wire, client_deof);
        auto again = capture(format, split(wire), client_deof, unlimited);
        check(again.has_value());
        // The server's own form, and the form with EOFs, keep everything the blob holds.
        if (client_deof == server_deof || !client_deof) check(*again == *blob);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t selector = data[0];
    const Bytes rest{data + 1, size - 1};
    as_blob({reinterpret_cast<const char*>(rest.data()), rest.size()});
    as_payloads(rest, selector);
    return 0;
}
