#pragma once
// PRELOGIN (MS-TDS 2.2.6.5): an option table (token, big-endian offset and length), 0xFF,
// then the option data. The server's reply has the same shape, in a packet of type 4.

#include "sluice/protocol/error.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace sluice::protocol::tds {

/// PL_OPTION_TOKEN values.
enum class PreloginOption : std::uint8_t {
    version = 0x00,
    encryption = 0x01,
    instopt = 0x02,
    thread_id = 0x03,
    mars = 0x04,
    trace_id = 0x05,
    fedauth_required = 0x06,
    nonce = 0x07,
    terminator = 0xFF,
};

/// ENCRYPTION option values; ENCRYPT_CLIENT_CERT (0x80) may be OR'ed in by a client.
namespace encrypt {
inline constexpr std::uint8_t off = 0x00;     // ENCRYPT_OFF: available, but off
inline constexpr std::uint8_t on = 0x01;      // ENCRYPT_ON
inline constexpr std::uint8_t not_sup = 0x02; // ENCRYPT_NOT_SUP
inline constexpr std::uint8_t req = 0x03;     // ENCRYPT_REQ
inline constexpr std::uint8_t client_cert = 0x80;
} // namespace encrypt

/// VERSION option: UL_VERSION (major, minor, big-endian build) and US_SUBBUILD.
struct PreloginVersion {
    std::uint8_t major = 0, minor = 0;
    std::uint16_t build = 0, sub_build = 0;
    bool operator==(const PreloginVersion&) const = default;
};

/// One option as sent: its token and its data bytes.
struct PreloginEntry {
    std::uint8_t token = 0;
    std::vector<std::uint8_t> data;
    bool operator==(const PreloginEntry&) const = default;
};

/// A PRELOGIN message: the options in the order of the option table.
struct Prelogin {
    std::vector<PreloginEntry> options;

    const PreloginEntry* find(PreloginOption o) const noexcept;
    std::optional<PreloginVersion> version() const noexcept;
    std::optional<std::uint8_t> encryption() const noexcept;
    std::optional<std::uint8_t> mars() const noexcept;
    /// THREADID, when present with its 4 bytes (servers send it empty).
    std::optional<std::uint32_t> thread_id() const noexcept;
    std::optional<std::uint8_t> fedauth_required() const noexcept;
    bool operator==(const Prelogin&) const = default;
};

/// Parses a PRELOGIN payload (client request or server reply). Every offset and length is
/// checked against the payload: codec_errc::truncated past its end, codec_errc::malformed for
/// data overlapping the option table, a repeated option, or a known option of the wrong size
/// (VERSION 6, ENCRYPTION 1, THREADID 0 or 4, MARS 1, TRACEID 36, FEDAUTHREQUIRED 1, NONCE 32).
/// Unknown option tokens are kept, as the specification lets them be skipped.
result<Prelogin> parse_prelogin(Bytes payload);

/// Appends a PRELOGIN payload: the option table in `p.options` order, then the data in the
/// same order.
void write_prelogin(const Prelogin& p, std::vector<std::uint8_t>& out);

/// The options of Sluice's reply to a client: VERSION, ENCRYPTION, INSTOPT 0 (the default
/// instance), THREADID empty and MARS 0. MARS must be present: FreeTDS falls back to TDS 7.1
/// when the reply lacks it.
Prelogin make_prelogin_reply(PreloginVersion version, std::uint8_t encryption);

/// What the server was configured to offer (MS-TDS 2.2.6.5 "Encryption").
enum class ServerEncryption : std::uint8_t {
    off,     ///< TLS available; only the login packet is encrypted unless the client asks
    on,      ///< TLS required for the whole connection
    not_sup, ///< no TLS
};

/// What follows the PRELOGIN exchange.
enum class EncryptionMode : std::uint8_t {
    none,       ///< plaintext throughout
    login_only, ///< TLS for the LOGIN7 packet only, then plaintext
    full,       ///< TLS for the whole connection
    terminate,  ///< send the reply, then close: the two sides cannot agree
};

struct EncryptionDecision {
    std::uint8_t reply = encrypt::not_sup; ///< the ENCRYPTION value to send back
    EncryptionMode mode = EncryptionMode::none;
    bool operator==(const EncryptionDecision&) const = default;
};

/// The negotiation table of MS-TDS 2.2.6.5 (client value x server setting). ENCRYPT_CLIENT_CERT
/// is not supported: the bit is ignored. Unknown client values terminate.
EncryptionDecision negotiate_encryption(std::uint8_t client, ServerEncryption server) noexcept;

} // namespace sluice::protocol::tds
