#pragma once
// Client commands the proxy reads itself (COM_PROCESS_KILL), and the one answer it reads from
// its own queries (the first value of a small text result set). Sans-I/O.

#include "sluice/protocol/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::protocol::mysql {

/// The connection id of a COM_PROCESS_KILL (0x0C, connection_id<4>). Bytes after the id are
/// ignored, as a server ignores them. std::nullopt when shorter than 5 bytes or when the
/// command byte is not 0x0C (the session then leaves the command to the primary).
std::optional<std::uint32_t> parse_process_kill(Bytes payload) noexcept;

/// Appends the 5-byte COM_PROCESS_KILL payload.
void write_process_kill(std::uint32_t id, std::vector<std::uint8_t>& out);

/// The first column of the first row of a whole text result set ("Text Resultset"), given as
/// the payloads of its packets: column count (a length-encoded integer), that many column
/// definitions, an EOF unless `deprecate_eof`, then rows (each value a length-encoded string,
/// 0xFB for NULL) and the closing EOF/OK. std::nullopt for a result without rows, a NULL
/// value, an OK or ERR instead of a result set, or anything malformed.
std::optional<std::string> first_text_value(const std::vector<std::vector<std::uint8_t>>& payloads,
                                            bool deprecate_eof);

} // namespace sluice::protocol::mysql
