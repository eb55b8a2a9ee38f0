// Fuzz target: MySQL packet framing. PacketSplitter and frame_message on arbitrary bytes;
// whatever frames must be re-written byte for byte by write_packets from its assembled
// payload; and any payload written by write_packets must frame and assemble back.

#include "sluice/protocol/mysql/packet.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

using namespace sluice;
using namespace sluice::protocol::mysql;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

void framed_input(Bytes in, std::size_t limit) {
    auto packet = PacketSplitter{limit}.next(in);
    if (packet && *packet) {
        check((*packet)->payload.size() <= limit);
        check((*packet)->wire_size() <= in.size());
        check((*packet)->payload.data() == in.data() + 4);
        check((*packet)->seq == in[3]);
    }
    auto frame = frame_message(in, limit);
    if (!frame || !*frame) return; // refusing or waiting is fine; crashing is not
    const MessageFrame& f = **frame;
    check(f.packets >= 1);
    check(f.wire_size <= in.size());
    check(f.wire_size == f.payload_size + 4 * f.packets);
    check(f.payload_size <= limit);
    check(f.first_seq == in[3]);
    check(f.next_seq == static_cast<std::uint8_t>(f.first_seq + f.packets));
    // A one-packet message is exactly what the splitter sees.
    if (f.packets == 1) {
        check(packet && *packet && (*packet)->wire_size() == f.wire_size);
    }
    std::vector<std::uint8_t> scratch;
    const Bytes payload = assemble_payload(in, f, scratch);
    check(payload.size() == f.payload_size);
    check(f.first_byte == (payload.empty() ? 0 : payload[0]));
    std::vector<std::uint8_t> again;
    check(write_packets(payload, f.first_seq, again) == f.next_seq);
    check(again.size() == f.wire_size);
    check(std::equal(again.begin(), again.end(), in.begin()));
}

void payload_input(Bytes payload, std::uint8_t seq) {
    std::vector<std::uint8_t> wire{0xAB}; // write_packets appends
    const std::uint8_t next = write_packets(payload, seq, wire);
    const Bytes written = Bytes{wire}.subspan(1);
    auto frame = frame_message(written, payload.size());
    check(frame && *frame);
    check((*frame)->wire_size == written.size());
    check((*frame)->next_seq == next);
    std::vector<std::uint8_t> scratch;
    const Bytes back = assemble_payload(written, **frame, scratch);
    check(back.size() == payload.size() && std::equal(back.begin(), back.end(), payload.begin()));
    // One byte less than the limit is refused, never misframed.
    if (!payload.empty()) {
        auto over = frame_message(written, payload.size() - 1);
        check(!over);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const Bytes in{data, size};
    for (std::size_t limit : {std::size_t{0}, std::size_t{7}, std::size_t{1} << 10,
                              max_packet_payload, std::size_t{1} << 30}) {
        framed_input(in, limit);
    }
    payload_input(in, size ? data[0] : 0);
    return 0;
}
