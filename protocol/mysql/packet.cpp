#include "sluice/protocol/mysql/packet.hpp"

#include <algorithm>
#include <cassert>

namespace sluice::protocol::mysql {

namespace {
std::size_t header_length(Bytes in) noexcept {
    return std::size_t{in[0]} | (std::size_t{in[1]} << 8) | (std::size_t{in[2]} << 16);
}
} // namespace

result<std::optional<Packet>> PacketSplitter::next(Bytes in) const noexcept {
    if (in.size() < 4) return std::optional<Packet>{};
    const std::size_t len = header_length(in);
    if (len > max_payload_) return codec_errc::oversized;
    if (in.size() < 4 + len) return std::optional<Packet>{};
    return std::optional<Packet>{Packet{in[3], in.subspan(4, len)}};
}

result<std::optional<MessageFrame>> frame_message(Bytes in, std::size_t max_payload) noexcept {
    MessageFrame f;
    std::size_t pos = 0;
    for (;;) {
        if (in.size() - pos < 4) return std::optional<MessageFrame>{};
        const std::size_t len = header_length(in.subspan(pos));
        const std::uint8_t seq = in[pos + 3];
        if (f.packets == 0) {
            f.first_seq = seq;
        } else if (seq != f.next_seq) {
            return codec_errc::bad_sequence;
        }
        // The limit applies to the assembled message, so it is checked on every header,
        // before the packet's bytes are waited for.
        if (f.payload_size + len > max_payload) return codec_errc::oversized;
        if (in.size() - pos - 4 < len) return std::optional<MessageFrame>{};
        if (f.packets == 0 && len > 0) f.first_byte = in[pos + 4];
        f.payload_size += len;
        f.packets += 1;
        f.next_seq = static_cast<std::uint8_t>(seq + 1);
        pos += 4 + len;
        if (len < max_packet_payload) break;
    }
    f.wire_size = pos;
    return std::optional<MessageFrame>{f};
}

Bytes assemble_payload(Bytes in, const MessageFrame& frame, std::vector<std::uint8_t>& scratch) {
    assert(frame.wire_size <= in.size()); // the frame was made from this buffer
    if (frame.packets == 1) return in.subspan(4, frame.payload_size);
    scratch.clear();
    scratch.reserve(frame.payload_size);
    std::size_t pos = 0;
    for (std::size_t i = 0; i < frame.packets; ++i) {
        const std::size_t len = header_length(in.subspan(pos));
        scratch.insert(scratch.end(), in.begin() + static_cast<std::ptrdiff_t>(pos + 4),
                       in.begin() + static_cast<std::ptrdiff_t>(pos + 4 + len));
        pos += 4 + len;
    }
    return scratch;
}

std::uint8_t write_packets(Bytes payload, std::uint8_t seq, std::vector<std::uint8_t>& out) {
    std::size_t pos = 0;
    for (;;) {
        const std::size_t len = std::min(payload.size() - pos, max_packet_payload);
        out.push_back(static_cast<std::uint8_t>(len));
        out.push_back(static_cast<std::uint8_t>(len >> 8));
        out.push_back(static_cast<std::uint8_t>(len >> 16));
        out.push_back(seq++);
        out.insert(out.end(), payload.begin() + static_cast<std::ptrdiff_t>(pos),
                   payload.begin() + static_cast<std::ptrdiff_t>(pos + len));
        pos += len;
        if (len < max_packet_payload) break;
    }
    return seq;
}

const char* command_name(std::uint8_t cmd) noexcept {
    static constexpr const char* names[] = {
        "sleep",
        "quit",
        "init_db",
        "query",
        "field_list",
        "create_db",
        "drop_db",
        "refresh",
        "shutdown",
        "statistics",
        "process_info",
        "connect",
        "process_kill",
        "debug",
        "ping",
        "time",
        "delayed_insert",
        "change_user",
        "binlog_dump",
        "table_dump",
        "connect_out",
        "register_slave",
        "stmt_prepare",
        "stmt_execute",
        "stmt_send_long_data",
        "stmt_close",
        "stmt_reset",
        "set_option",
        "stmt_fetch",
        "daemon",
        "binlog_dump_gtid",
        "reset_connection",
    };
    if (cmd == 0xFA) return "stmt_bulk_execute";
    return cmd < std::size(names) ? names[cmd] : "unknown";
}

} // namespace sluice::protocol::mysql
