#include "sluice/protocol/tds/packet.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace sluice::protocol::tds {

std::string_view packet_type_name(std::uint8_t type) noexcept {
    switch (static_cast<PacketType>(type)) {
    case PacketType::sql_batch:
        return "SQL batch";
    case PacketType::pre_tds7_login:
        return "pre-TDS7 login";
    case PacketType::rpc:
        return "RPC";
    case PacketType::tabular_result:
        return "tabular result";
    case PacketType::attention:
        return "attention signal";
    case PacketType::bulk_load:
        return "bulk load data";
    case PacketType::federated_auth_token:
        return "federated authentication token";
    case PacketType::transaction_manager:
        return "transaction manager request";
    case PacketType::login7:
        return "LOGIN7";
    case PacketType::sspi:
        return "SSPI";
    case PacketType::prelogin:
        return "PRELOGIN";
    }
    return "unknown";
}

result<PacketHeader> parse_header(Bytes in, std::size_t max_packet) noexcept {
    if (in.size() < header_size) return codec_errc::truncated;
    PacketHeader h;
    h.type = in[0];
    h.status = in[1];
    h.length = static_cast<std::uint16_t>((in[2] << 8) | in[3]);
    h.spid = static_cast<std::uint16_t>((in[4] << 8) | in[5]);
    h.packet_id = in[6];
    h.window = in[7];
    if (h.length < header_size) return codec_errc::malformed;
    if (h.length > max_packet) return codec_errc::oversized;
    return h;
}

void write_header(const PacketHeader& h, std::vector<std::uint8_t>& out) {
    out.push_back(h.type);
    out.push_back(h.status);
    out.push_back(static_cast<std::uint8_t>(h.length >> 8));
    out.push_back(static_cast<std::uint8_t>(h.length));
    out.push_back(static_cast<std::uint8_t>(h.spid >> 8));
    out.push_back(static_cast<std::uint8_t>(h.spid));
    out.push_back(h.packet_id);
    out.push_back(h.window);
}

result<std::size_t> MessageAssembler::feed(Bytes in) {
    std::size_t pos = 0;
    while (!complete_ && pos < in.size()) {
        if (!in_packet_) {
            const std::size_t n = std::min(header_size - header_have_, in.size() - pos);
            std::memcpy(header_ + header_have_, in.data() + pos, n);
            header_have_ += n;
            pos += n;
            if (header_have_ < header_size) break;
            auto h = parse_header(Bytes{header_, header_size}, max_packet_);
            if (!h) return h.error();
            if (packets_ == 0) {
                type_ = h->type;
                status_ = h->status;
            } else if (h->type != type_) {
                return codec_errc::malformed;
            }
            packet_left_ = h->length - header_size;
            // The limit applies to the assembled message, so it is checked on every header,
            // before the packet's bytes are waited for.
            if (payload_.size() + packet_left_ > max_message_) return codec_errc::oversized;
            last_packet_ = h->status & packet_status::eom;
            in_packet_ = true;
            ++packets_;
        }
        // A header-only packet (ATTENTION) falls through with nothing to copy.
        const std::size_t n = std::min(packet_left_, in.size() - pos);
        payload_.insert(payload_.end(), in.begin() + static_cast<std::ptrdiff_t>(pos),
                        in.begin() + static_cast<std::ptrdiff_t>(pos + n));
        pos += n;
        packet_left_ -= n;
        if (packet_left_ > 0) break;
        in_packet_ = false;
        header_have_ = 0;
        if (last_packet_) complete_ = true;
    }
    return pos;
}

Message MessageAssembler::message() const noexcept {
    assert(complete_); // callers check complete() first
    return Message{type_, status_, Bytes{payload_}, packets_};
}

void MessageAssembler::reset() noexcept {
    payload_.clear();
    header_have_ = 0;
    packet_left_ = 0;
    in_packet_ = false;
    last_packet_ = false;
    complete_ = false;
    type_ = status_ = 0;
    packets_ = 0;
}

std::uint8_t write_message(PacketType type, std::uint8_t first_status, Bytes payload,
                           std::size_t packet_size, std::uint8_t packet_id,
                           std::vector<std::uint8_t>& out, std::uint16_t spid) {
    const std::size_t room =
        std::clamp(packet_size, min_packet_size, max_packet_size) - header_size;
    std::size_t pos = 0;
    bool first = true;
    do {
        const std::size_t n = std::min(room, payload.size() - pos);
        const bool last = pos + n == payload.size();
        // RESETCONNECTION "MUST be part of the first packet of the message" (MS-TDS 2.2.3.1.2).
        std::uint8_t status = first ? first_status : 0;
        status = last ? (status | packet_status::eom)
                      : static_cast<std::uint8_t>(status & ~packet_status::eom);
        write_header({static_cast<std::uint8_t>(type), status,
                      static_cast<std::uint16_t>(header_size + n), spid, packet_id++, 0},
                     out);
        out.insert(out.end(), payload.begin() + static_cast<std::ptrdiff_t>(pos),
                   payload.begin() + static_cast<std::ptrdiff_t>(pos + n));
        pos += n;
        first = false;
    } while (pos < payload.size());
    return packet_id;
}

} // namespace sluice::protocol::tds
