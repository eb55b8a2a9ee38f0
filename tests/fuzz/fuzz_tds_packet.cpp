// Fuzz target: the TDS MessageAssembler on arbitrary bytes, fed whole and in chunks. Every
// chunking must yield the same messages, and every message must survive write_message and a
// second assembly. The first byte picks the packet limit and the chunk size.

#include "sluice/protocol/tds/packet.hpp"

#include <cstdlib>
#include <vector>

using namespace sluice;
using namespace sluice::protocol::tds;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

struct Out {
    bool failed = false;
    error_code error;
    std::vector<std::vector<std::uint8_t>> payloads;
    std::vector<std::uint8_t> types, statuses;
    bool operator==(const Out&) const = default;
};

Out assemble(Bytes in, std::size_t chunk, std::size_t max_packet) {
    MessageAssembler a{max_packet, 1 << 16};
    Out o;
    std::size_t pos = 0;
    while (pos < in.size()) {
        const std::size_t n = chunk == 0 ? in.size() - pos : std::min(chunk, in.size() - pos);
        auto used = a.feed(in.subspan(pos, n));
        if (!used) {
            o.failed = true;
            o.error = used.error();
            return o;
        }
        check(*used <= n);
        pos += *used;
        if (a.complete()) {
            const Message m = a.message();
            o.payloads.emplace_back(m.payload.begin(), m.payload.end());
            o.types.push_back(m.type);
            o.statuses.push_back(m.status);
            a.reset();
        } else {
            check(*used == n);
        }
    }
    return o;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t max_packet = 8 + (std::size_t{data[0]} << 4);
    const std::size_t chunk = (data[0] & 0x0F) + 1;
    const Bytes in{data + 1, size - 1};
    const Out whole = assemble(in, 0, max_packet);
    check(assemble(in, 1, max_packet) == whole);
    check(assemble(in, chunk, max_packet) == whole);
    for (std::size_t i = 0; i < whole.payloads.size(); ++i) {
        std::vector<std::uint8_t> wire;
        write_message(static_cast<PacketType>(whole.types[i]), whole.statuses[i], whole.payloads[i],
                      512, 1, wire);
        const Out again = assemble(wire, 0, 512);
        check(!again.failed && again.payloads.size() == 1);
        check(again.payloads[0] == whole.payloads[i] && again.types[0] == whole.types[i]);
    }
    return 0;
}
