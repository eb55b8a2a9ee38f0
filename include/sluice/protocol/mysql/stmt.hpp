#pragma once
// Prepared-statement messages of the MySQL client/server protocol ("Prepared Statements":
// COM_STMT_PREPARE Response, COM_STMT_EXECUTE, COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE,
// COM_STMT_RESET, COM_STMT_FETCH; MariaDB's COM_STMT_BULK_EXECUTE shares their id layout).
// Parse and write, sans-I/O. Views returned point into the caller's payload.

#include "sluice/protocol/error.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace sluice::protocol::mysql {

/// The statement id of any COM_STMT_* command but PREPARE (EXECUTE 0x17, SEND_LONG_DATA 0x18,
/// CLOSE 0x19, RESET 0x1A, FETCH 0x1C, BULK_EXECUTE 0xFA): little-endian bytes 1..4. The
/// command byte is not checked (the caller dispatched on it). std::nullopt when the payload
/// is shorter than 5 bytes.
std::optional<std::uint32_t> stmt_id(Bytes payload) noexcept;

/// Overwrites the statement id (bytes 1..4) of a COM_STMT_* command in place, to give a
/// backend its own handle for the statement. Precondition: payload.size() >= 5.
void set_stmt_id(std::span<std::uint8_t> payload, std::uint32_t id) noexcept;

/// COM_STMT_PREPARE Response, its first packet (COM_STMT_PREPARE_OK): 0x00, statement_id<4>,
/// num_columns<2>, num_params<2>, reserved 0x00, warning_count<2>.
struct PrepareOk {
    std::uint32_t statement_id = 0;
    std::uint16_t columns = 0, params = 0, warnings = 0;
    bool operator==(const PrepareOk&) const = default;
};

/// Reads a PREPARE_OK packet: the 12-byte form MariaDB and MySQL send, or the 9-byte form
/// that ends before the filler (warnings 0). codec_errc::unexpected_message when the header is
/// not 0x00 (an ERR), truncated for 0-8, 10 or 11 bytes, malformed for a filler other than
/// 0x00, trailing_bytes beyond 12 (as with CLIENT_OPTIONAL_RESULTSET_METADATA, not supported).
result<PrepareOk> parse_prepare_ok(Bytes payload) noexcept;

/// Appends the 12-byte PREPARE_OK payload.
void write_prepare_ok(const PrepareOk& ok, std::vector<std::uint8_t>& out);

/// Overwrites the statement id of a PREPARE_OK payload in place (bytes 1..4), to give the
/// client the proxy's own id. Precondition: payload.size() >= 5.
void set_prepare_ok_id(std::span<std::uint8_t> payload, std::uint32_t id) noexcept;

/// COM_STMT_EXECUTE: 0x17, statement_id<4>, flags<1>, iteration_count<4>, then, when the
/// statement has parameters: null_bitmap<(params+7)/8>, new_params_bound_flag<1>,
/// [parameter types<2 each> when the flag is 1], values. The values are not decoded. Views
/// point into the parsed payload.
struct ExecuteRequest {
    std::uint32_t statement_id = 0;
    std::uint8_t flags = 0; ///< cursor type (CURSOR_TYPE_READ_ONLY 0x01 ...) in the low bits
    std::uint32_t iteration_count = 0;
    /// The request reaches the new_params_bound_flag (the statement has parameters and the
    /// payload is long enough): write_execute_with_types can be applied to it.
    bool has_bound_flag = false;
    /// The new_params_bound_flag is present and exactly 1.
    bool new_params_bound = false;
    /// The 2 * params type bytes when bound and all present; empty otherwise (a bound
    /// request cut short inside its types keeps whatever types the statement had).
    Bytes types;
    /// Everything after iteration_count as sent (null bitmap, flag, types, values): what
    /// write_execute copies back; `new_params_bound` and `types` are read from it.
    Bytes params_block;
    /// The request asked for a cursor: its rows come through COM_STMT_FETCH.
    bool cursor() const noexcept { return (flags & 0x07) != 0; }
    /// Equal fields, views compared by content.
    friend bool operator==(const ExecuteRequest& a, const ExecuteRequest& b) noexcept;
};

/// Reads a COM_STMT_EXECUTE for a statement with `params` parameters, as leniently as a
/// server: codec_errc::truncated only when shorter than 10 bytes (the fixed part),
/// unexpected_message when the command byte is not 0x17. A payload that ends before the
/// new_params_bound_flag is not bound; a flag other than 1 is not bound.
result<ExecuteRequest> parse_execute(Bytes payload, std::uint16_t params) noexcept;

/// Appends a COM_STMT_EXECUTE: the fixed fields of `e`, then `e.params_block` unchanged.
void write_execute(const ExecuteRequest& e, std::vector<std::uint8_t>& out);

/// Appends `request` (a COM_STMT_EXECUTE for a statement with `params` parameters whose
/// new_params_bound_flag is not 1) with the flag set to 1 and `types` inserted right after it,
/// the values unchanged: the execute for a backend that has not seen the types the client
/// bound in an earlier execute (libmariadb sends them only once). Preconditions: params > 0;
/// request.size() > 10 + (params + 7) / 8 (the flag is present); types.size() == 2 * params.
void write_execute_with_types(Bytes request, std::uint16_t params, Bytes types,
                              std::vector<std::uint8_t>& out);

/// COM_STMT_SEND_LONG_DATA: 0x18, statement_id<4>, param_id<2>, data (to the end). No response.
struct LongData {
    std::uint32_t statement_id = 0;
    std::uint16_t param_id = 0;
    Bytes data; ///< a view into the parsed payload
    /// Equal fields, `data` compared by content.
    friend bool operator==(const LongData& a, const LongData& b) noexcept;
};

/// Reads a COM_STMT_SEND_LONG_DATA. codec_errc::truncated when shorter than 7 bytes,
/// unexpected_message when the command byte is not 0x18.
result<LongData> parse_long_data(Bytes payload) noexcept;

/// Appends a COM_STMT_SEND_LONG_DATA payload.
void write_long_data(const LongData& d, std::vector<std::uint8_t>& out);

/// COM_STMT_FETCH: 0x1C, statement_id<4>, num_rows<4>.
struct StmtFetch {
    std::uint32_t statement_id = 0;
    std::uint32_t rows = 0;
    bool operator==(const StmtFetch&) const = default;
};

/// Reads a COM_STMT_FETCH. codec_errc::unexpected_message when the command byte is not 0x1C,
/// truncated when shorter than 9 bytes, trailing_bytes when longer.
result<StmtFetch> parse_stmt_fetch(Bytes payload) noexcept;

/// Appends the 9-byte COM_STMT_FETCH payload.
void write_stmt_fetch(std::uint32_t id, std::uint32_t rows, std::vector<std::uint8_t>& out);

/// Appends the 5-byte COM_STMT_CLOSE payload (0x19, statement_id<4>; it gets no response).
/// Read one back with stmt_id().
void write_stmt_close(std::uint32_t id, std::vector<std::uint8_t>& out);

/// Appends the 5-byte COM_STMT_RESET payload (0x1A, statement_id<4>). Read one back with
/// stmt_id().
void write_stmt_reset(std::uint32_t id, std::vector<std::uint8_t>& out);

} // namespace sluice::protocol::mysql
