#pragma once
// TDS strings are UCS-2LE on the wire (MS-TDS 2.2.5.1.2); SQL Server stores UTF-16, so
// surrogate pairs are decoded as such. Sluice works in UTF-8 everywhere else.

#include "sluice/protocol/error.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::protocol::tds {

/// UTF-16LE bytes to UTF-8. Unpaired surrogates become U+FFFD; an odd final byte is ignored.
std::string utf16le_to_utf8(Bytes in);

/// Appends `utf8` to `out` as UTF-16LE, stopping before a character that would exceed
/// `max_units` code units. Invalid UTF-8 bytes become U+FFFD. Returns the code units written.
std::size_t append_utf16le(std::string_view utf8, std::vector<std::uint8_t>& out,
                           std::size_t max_units = std::numeric_limits<std::size_t>::max());

/// The number of UTF-16 code units `utf8` encodes to (what TDS length fields count).
std::size_t utf16_length(std::string_view utf8) noexcept;

} // namespace sluice::protocol::tds
