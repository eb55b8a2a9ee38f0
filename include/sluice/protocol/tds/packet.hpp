#pragma once
// TDS packet framing (MS-TDS 2.2.3): an 8-byte header, then payload; a message is one or more
// packets of the same type, the last with END_OF_MESSAGE set.

#include "sluice/protocol/error.hpp"

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace sluice::protocol::tds {

/// Packet header Type (MS-TDS 2.2.3.1.1).
enum class PacketType : std::uint8_t {
    sql_batch = 1,            // SQL batch
    pre_tds7_login = 2,       // pre-TDS7 login
    rpc = 3,                  // RPC
    tabular_result = 4,       // tabular result (every server reply, PRELOGIN's included)
    attention = 6,            // attention signal
    bulk_load = 7,            // bulk load data
    federated_auth_token = 8, // federated authentication token
    transaction_manager = 14, // transaction manager request
    login7 = 16,              // TDS7 login
    sspi = 17,                // SSPI
    prelogin = 18,            // pre-login (and TLS handshake payloads inside it)
};

/// The spec's name of a packet type ("bulk load", "LOGIN7"), or "unknown" for a value MS-TDS
/// does not define.
std::string_view packet_type_name(std::uint8_t type) noexcept;

/// Packet header Status bits (MS-TDS 2.2.3.1.2). Other bits are not used and MUST be ignored:
/// a real client sends 0x04 on non-final packets.
namespace packet_status {
inline constexpr std::uint8_t eom = 0x01;                        // END_OF_MESSAGE
inline constexpr std::uint8_t ignore = 0x02;                     // IGNORE: drop this message
inline constexpr std::uint8_t reset_connection = 0x08;           // RESETCONNECTION
inline constexpr std::uint8_t reset_connection_skip_tran = 0x10; // RESETCONNECTIONSKIPTRAN
} // namespace packet_status

/// `Length` counts the header: the negotiated packet size (4096 until the login) is the
/// largest Length a peer may send (MS-TDS 2.2.3.1.3).
inline constexpr std::size_t header_size = 8;
/// The negotiable packet sizes (ENVCHANGE 4 "MUST be >= 512 and <= 32767", MS-TDS 2.2.7.9).
inline constexpr std::size_t min_packet_size = 512;
inline constexpr std::size_t max_packet_size = 32767;

/// The 8-byte packet header (MS-TDS 2.2.3.1). `length` includes the header itself.
struct PacketHeader {
    std::uint8_t type = 0;
    std::uint8_t status = 0;
    std::uint16_t length = 0; ///< big-endian on the wire
    std::uint16_t spid = 0;   ///< big-endian on the wire; for debugging only
    std::uint8_t packet_id = 0;
    std::uint8_t window = 0;
    bool operator==(const PacketHeader&) const = default;
};

/// The header at the front of `in` (at least 8 bytes, else codec_errc::truncated);
/// codec_errc::malformed when its length is under 8; codec_errc::oversized over `max_packet`.
result<PacketHeader> parse_header(Bytes in, std::size_t max_packet) noexcept;

/// Appends an 8-byte header.
void write_header(const PacketHeader& h, std::vector<std::uint8_t>& out);

/// A whole message: its packets' payloads joined.
struct Message {
    std::uint8_t type = 0;
    std::uint8_t status = 0; ///< the first packet's status (RESETCONNECTION lives there)
    Bytes payload;           ///< valid until the assembler is fed or reset again
    std::size_t packets = 0;
};

/// Joins packets into messages. Sans-I/O: feed it bytes as they arrive; it copies the payloads
/// of a multi-packet message into a buffer it owns (reused from message to message).
class MessageAssembler {
public:
    /// `max_packet`: the largest packet accepted (header included); `max_message`: the
    /// largest assembled payload.
    MessageAssembler(std::size_t max_packet, std::size_t max_message) noexcept
        : max_packet_(max_packet), max_message_(max_message) {}

    /// Consumes bytes from the front of `in`, never past the end of the current message.
    /// Returns how many; after it, complete() says whether a message is ready. Errors:
    /// codec_errc::malformed (a header length under 8, or a packet of another type inside a
    /// message), codec_errc::oversized (a packet over the packet limit, or a message over the
    /// message limit, reported as soon as the header announcing it is read).
    result<std::size_t> feed(Bytes in);
    bool complete() const noexcept { return complete_; }
    /// The message; precondition: complete().
    Message message() const noexcept;
    /// Drops the message (or a partial one) and begins the next.
    void reset() noexcept;
    /// Applies from the next packet (after the login, both sides switch to the negotiated size).
    void set_max_packet(std::size_t max_packet) noexcept { max_packet_ = max_packet; }

private:
    std::size_t max_packet_, max_message_;
    std::vector<std::uint8_t> payload_;
    std::uint8_t header_[header_size] = {};
    std::size_t header_have_ = 0;
    std::size_t packet_left_ = 0; // payload bytes of the current packet not yet read
    bool in_packet_ = false;      // header read, payload pending
    bool last_packet_ = false;    // the current packet has EOM
    bool complete_ = false;
    std::uint8_t type_ = 0, status_ = 0;
    std::size_t packets_ = 0;
};

/// Appends `payload` as a message of packets no larger than `packet_size` (clamped to
/// 512..32767): `first_status` bits on the first packet only, EOM on the last, packet ids
/// from `packet_id` incrementing modulo 256. An empty payload is one header-only packet.
/// Returns the packet id after the last one written.
std::uint8_t write_message(PacketType type, std::uint8_t first_status, Bytes payload,
                           std::size_t packet_size, std::uint8_t packet_id,
                           std::vector<std::uint8_t>& out, std::uint16_t spid = 0);

} // namespace sluice::protocol::tds
