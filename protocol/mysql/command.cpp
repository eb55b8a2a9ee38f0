#include "sluice/protocol/mysql/command.hpp"

#include "sluice/protocol/mysql/constants.hpp"
#include "sluice/protocol/mysql/messages.hpp"
#include "wire.hpp"

namespace sluice::protocol::mysql {

using wire::Reader;

// ---- COM_PROCESS_KILL ----

std::optional<std::uint32_t> parse_process_kill(Bytes payload) noexcept {
    if (payload.size() < 5 || payload[0] != static_cast<std::uint8_t>(Command::process_kill))
        return std::nullopt;
    Reader r{payload.subspan(1)};
    return *r.u32(); // four bytes are there
}

void write_process_kill(std::uint32_t id, std::vector<std::uint8_t>& out) {
    out.push_back(static_cast<std::uint8_t>(Command::process_kill));
    wire::put_fixed(out, id, 4);
}

// ---- Text Resultset: the first value ----

std::optional<std::string> first_text_value(const std::vector<std::vector<std::uint8_t>>& payloads,
                                            bool deprecate_eof) {
    if (payloads.empty()) return std::nullopt;
    // The column count packet is a length-encoded integer and nothing else (no
    // metadata_follows byte: optional or cached metadata is not negotiated). An OK (0x00:
    // zero columns), an ERR (0xFF) or a LOCAL INFILE request (0xFB) is not a result set.
    Reader count_reader{payloads[0]};
    auto columns = count_reader.lenenc();
    if (!columns || *columns == 0 || !count_reader.empty()) return std::nullopt;
    const std::size_t eof = deprecate_eof ? 0 : 1;
    // Compared before adding, so a huge count cannot overflow the index.
    if (*columns >= payloads.size() - 1 || payloads.size() - 1 - *columns <= eof)
        return std::nullopt;
    const std::size_t defs_end = 1 + static_cast<std::size_t>(*columns);
    for (std::size_t i = 1; i < defs_end; ++i) {
        // A column definition starts with its catalog ("def"), never with a marker byte; one
        // here means the count and the packets disagree.
        const Bytes def{payloads[i]};
        if (def.empty() || is_err(def) || is_eof_or_ok_fe(def)) return std::nullopt;
    }
    if (!deprecate_eof && !is_eof_or_ok_fe(payloads[defs_end])) return std::nullopt;
    const Bytes row{payloads[defs_end + eof]};
    // The EOF or OK that ends the rows (no row), or an ERR in their place.
    if (row.empty() || is_err(row) || is_eof_or_ok_fe(row)) return std::nullopt;
    if (row[0] == 0xFB) return std::nullopt; // NULL
    Reader r{row};
    auto value = r.lenenc_bytes();
    if (!value) return std::nullopt;
    return wire::to_string(*value);
}

} // namespace sluice::protocol::mysql
