#pragma once

#include "sluice/protocol/error.hpp"
#include "sluice/protocol/mysql/constants.hpp"

#include <optional>
#include <vector>

namespace sluice::protocol::mysql {

/// One packet, viewed in place: `payload` is valid until the caller's buffer changes.
struct Packet {
    std::uint8_t seq;
    Bytes payload;
    std::size_t wire_size() const noexcept { return 4 + payload.size(); }
};

/// Finds packet boundaries in a byte stream. Owns no buffer, does no I/O.
class PacketSplitter {
public:
    explicit PacketSplitter(std::size_t max_payload) noexcept : max_payload_(max_payload) {}
    /// The packet at the front of `in`; std::nullopt while `in` holds only part of one;
    /// codec_errc::oversized as soon as a header announces more than the maximum.
    result<std::optional<Packet>> next(Bytes in) const noexcept;

private:
    std::size_t max_payload_;
};

/// A whole message (a client command or one server packet) at the front of a buffer: one
/// packet, or several when payloads of exactly 0xFFFFFF bytes continue in the next packet.
struct MessageFrame {
    std::size_t wire_size = 0;    ///< bytes of all its packets, headers included
    std::size_t payload_size = 0; ///< bytes of the assembled payload
    std::uint8_t first_seq = 0;   ///< sequence number of the first packet
    std::uint8_t next_seq = 0;    ///< sequence number the following packet must carry
    std::uint8_t first_byte = 0;  ///< first payload byte (0 for an empty payload)
    std::size_t packets = 0;
};

/// Frames the message at the front of `in`. std::nullopt while incomplete;
/// codec_errc::oversized as soon as the assembled payload is known to exceed `max_payload`
/// (before the rest arrives); codec_errc::bad_sequence if continuation packets skip a number.
result<std::optional<MessageFrame>> frame_message(Bytes in, std::size_t max_payload) noexcept;

/// The payload of a framed message: contiguous for a one-packet message; for a multi-packet
/// message the fragments are copied into `scratch` and a view of it is returned.
Bytes assemble_payload(Bytes in, const MessageFrame& frame, std::vector<std::uint8_t>& scratch);

/// Appends `payload` as packets starting at sequence `seq`, splitting at 0xFFFFFF bytes (and
/// ending with an empty packet when the payload is a multiple of it). Returns the next seq.
std::uint8_t write_packets(Bytes payload, std::uint8_t seq, std::vector<std::uint8_t>& out);

} // namespace sluice::protocol::mysql
