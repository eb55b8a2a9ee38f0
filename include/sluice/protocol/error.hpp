#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <cstdint>
#include <span>

namespace sluice {
/// A value or an error: `boost::system::result`. Check, then use `*r`; `.value()` throws.
template <class T> using result = boost::system::result<T>;
using boost::system::error_code;
using Bytes = std::span<const std::uint8_t>;
} // namespace sluice

namespace sluice::protocol {

/// What went wrong while decoding bytes from a peer.
enum class codec_errc {
    truncated = 1,      ///< a length points past the end of the message
    oversized,          ///< larger than the configured maximum
    bad_sequence,       ///< sequence number or packet id out of order
    unexpected_message, ///< valid bytes, wrong message for the current state
    malformed,          ///< anything else the spec forbids
    trailing_bytes,     ///< bytes left over after a complete message
};

/// The category of codec_errc; name() is "sluice.codec".
const boost::system::error_category& codec_category() noexcept;

inline boost::system::error_code make_error_code(codec_errc e) noexcept {
    return {static_cast<int>(e), codec_category()};
}

} // namespace sluice::protocol

template <>
struct boost::system::is_error_code_enum<sluice::protocol::codec_errc> : std::true_type {};
