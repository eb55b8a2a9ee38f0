#pragma once
// Client requests: ALL_HEADERS (MS-TDS 2.2.5.3), SQLBatch (2.2.6.7), RPC (2.2.6.6), transaction
// manager requests (2.2.6.9) and ATTENTION (2.2.1.6). Views into the payload stay valid while
// the caller's buffer does.

#include "sluice/protocol/error.hpp"
#include "sluice/protocol/tds/type_info.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::protocol::tds {

/// ALL_HEADERS header types.
namespace header_type {
inline constexpr std::uint16_t query_notification = 1;
inline constexpr std::uint16_t transaction_descriptor = 2;
inline constexpr std::uint16_t trace_activity = 3;
} // namespace header_type

/// What a request's ALL_HEADERS carried.
struct AllHeaders {
    std::size_t size = 0; ///< TotalLength: bytes of the whole block, the field included
    std::optional<std::uint64_t> transaction_descriptor;
    std::uint32_t outstanding_requests = 0;
    bool query_notification = false;
    bool trace_activity = false;
    bool operator==(const AllHeaders&) const = default;
};

/// The ALL_HEADERS at the front of a SQLBatch, RPC or TM request payload, or std::nullopt when
/// it has none (TDS 7.1 clients send none; they are told apart by the first DWORD, which is
/// the block's total length only if it is between 10 and the payload size: in a 7.1 request
/// those bytes are text or a procedure name and read as a far larger number). A block that
/// claims to be there but does not parse: codec_errc::malformed or truncated.
result<std::optional<AllHeaders>> parse_all_headers(Bytes payload);

/// Appends an ALL_HEADERS holding only a transaction descriptor header (22 bytes): what a
/// TDS 7.2+ client sends. `descriptor` is 0 outside a transaction.
void write_all_headers(std::uint64_t descriptor, std::uint32_t outstanding_requests,
                       std::vector<std::uint8_t>& out);

/// Appends `payload` (a SQLBatch, RPC or TM request) with its transaction descriptor replaced
/// by `descriptor`: the backend's, since descriptors belong to a backend connection. A block
/// without a descriptor header gains one; a payload without ALL_HEADERS (TDS 7.1) gains the
/// whole block, with `outstanding_requests`.
result<void> rewrite_transaction_descriptor(Bytes payload, std::uint64_t descriptor,
                                            std::uint32_t outstanding_requests,
                                            std::vector<std::uint8_t>& out);

/// In place: replaces the transaction descriptor of `payload`. Returns false (and changes
/// nothing) when the payload has no descriptor header; then use rewrite_transaction_descriptor.
result<bool> patch_transaction_descriptor(std::span<std::uint8_t> payload,
                                          std::uint64_t descriptor) noexcept;

/// SQLBatch.
struct SqlBatch {
    std::optional<AllHeaders> headers;
    std::string text; ///< UTF-8
};

/// Parses a SQLBatch payload; codec_errc::malformed for text of an odd number of bytes.
result<SqlBatch> parse_sql_batch(Bytes payload);

/// Appends a SQLBatch payload. With a descriptor (TDS 7.2+ sessions: 0 outside a transaction)
/// it starts with ALL_HEADERS (outstanding requests 1); without one it is a TDS 7.1 batch.
void write_sql_batch(std::string_view sql, std::optional<std::uint64_t> transaction_descriptor,
                     std::vector<std::uint8_t>& out);

/// Well-known procedure ids (RPC ProcID, MS-TDS 2.2.6.6).
namespace proc_id {
inline constexpr std::uint16_t cursor = 1;
inline constexpr std::uint16_t cursor_open = 2;
inline constexpr std::uint16_t cursor_prepare = 3;
inline constexpr std::uint16_t cursor_execute = 4;
inline constexpr std::uint16_t cursor_prep_exec = 5;
inline constexpr std::uint16_t cursor_unprepare = 6;
inline constexpr std::uint16_t cursor_fetch = 7;
inline constexpr std::uint16_t cursor_option = 8;
inline constexpr std::uint16_t cursor_close = 9;
inline constexpr std::uint16_t execute_sql = 10; // sp_executesql
inline constexpr std::uint16_t prepare = 11;     // sp_prepare
inline constexpr std::uint16_t execute = 12;     // sp_execute
inline constexpr std::uint16_t prep_exec = 13;   // sp_prepexec
inline constexpr std::uint16_t prep_exec_rpc = 14;
inline constexpr std::uint16_t unprepare = 15; // sp_unprepare
} // namespace proc_id

/// The id of a well-known procedure from its name (case-insensitive, "sp_executesql" ...,
/// with or without a "sys." or "master..sys." style prefix); 0 for any other name.
std::uint16_t well_known_proc_id(std::string_view name) noexcept;

/// Parameter status flags.
namespace param_status {
inline constexpr std::uint8_t by_ref = 0x01; // fByRefValue: OUTPUT
inline constexpr std::uint8_t default_value = 0x02;
inline constexpr std::uint8_t encrypted = 0x08; // fEncrypted: not supported
} // namespace param_status

struct RpcParam {
    std::string name; ///< UTF-8, "" for positional parameters
    std::uint8_t status = 0;
    TypeInfo type;
    ValueView value;
};

/// Batch separators between RPC calls.
namespace rpc_separator {
inline constexpr std::uint8_t batch_7_1 = 0x80; // BatchFlag before TDS 7.2
inline constexpr std::uint8_t batch = 0xFF;     // BatchFlag
inline constexpr std::uint8_t no_exec = 0xFE;   // NoExecFlag: the preceding call is not run
} // namespace rpc_separator

/// One call of an RPC request.
struct RpcCall {
    std::uint16_t proc_id = 0; ///< 0 when called by name
    std::string proc_name;     ///< UTF-8, when called by name
    std::uint16_t option_flags = 0;
    std::vector<RpcParam> params;
    std::uint8_t separator = 0; ///< the flag byte after this call; 0 after the last

    /// proc_id, or well_known_proc_id(proc_name).
    std::uint16_t effective_proc_id() const noexcept;
    /// The SQL text of sp_executesql, sp_prepare, sp_prepexec, sp_cursoropen,
    /// sp_cursorprepare and sp_cursorprepexec (by id or by name); std::nullopt otherwise.
    std::optional<std::string> statement_text() const;
    /// The prepared or cursor handle sp_execute, sp_unprepare, sp_cursorexecute,
    /// sp_cursorunprepare, sp_cursorfetch, sp_cursoroption, sp_cursorclose and sp_cursor
    /// pass as their first parameter; std::nullopt otherwise.
    std::optional<std::int64_t> handle() const;
    /// The OUTPUT parameters (bit i: ordinal i) through which the server hands out a new
    /// prepared or cursor handle: 0 of sp_prepare, sp_prepexec, sp_prepexecrpc,
    /// sp_cursorprepare and sp_cursoropen; 1 of sp_cursorexecute; 0 and 1 of
    /// sp_cursorprepexec.
    std::uint8_t handle_outputs() const noexcept;
};

struct RpcRequest {
    std::optional<AllHeaders> headers;
    std::vector<RpcCall> calls;
};

/// Parses an RPC payload: one or more calls, separated by 0x80/0xFF (batch) or 0xFE (no-exec),
/// a final separator allowed. codec_errc::malformed for encrypted parameters, a TVP or an
/// unknown type; codec_errc::truncated when a length points past the end.
/// The result's values view into `payload`, so a temporary buffer is refused at compile time.
result<RpcRequest> parse_rpc(Bytes payload);
result<RpcRequest> parse_rpc(std::vector<std::uint8_t>&&) = delete;

/// Transaction manager request types.
enum class TmRequestType : std::uint16_t {
    get_dtc_address = 0, // TM_GET_DTC_ADDRESS
    propagate_xact = 1,  // TM_PROPAGATE_XACT
    begin_xact = 5,      // TM_BEGIN_XACT
    promote_xact = 6,    // TM_PROMOTE_XACT
    commit_xact = 7,     // TM_COMMIT_XACT
    rollback_xact = 8,   // TM_ROLLBACK_XACT
    save_xact = 9,       // TM_SAVE_XACT
};

struct TmRequest {
    std::optional<AllHeaders> headers;
    TmRequestType type = TmRequestType::get_dtc_address;
    std::uint8_t isolation_level = 0;     ///< begin
    std::string name;                     ///< begin, commit, rollback: transaction; save: savepoint
    std::uint8_t flags = 0;               ///< commit, rollback: XACT_FLAGS (0x01 fBeginXact)
    std::uint8_t new_isolation_level = 0; ///< commit, rollback with fBeginXact
    std::string new_name;                 ///< commit, rollback with fBeginXact
    Bytes propagate_cookie;               ///< propagate
};

/// Parses a transaction manager request; codec_errc::malformed for an unknown request type.
/// propagate_cookie views into `payload`: a temporary buffer is refused at compile time.
result<TmRequest> parse_tm_request(Bytes payload);
result<TmRequest> parse_tm_request(std::vector<std::uint8_t>&&) = delete;

/// An ATTENTION message has no payload: codec_errc::trailing_bytes otherwise.
result<void> parse_attention(Bytes payload) noexcept;

} // namespace sluice::protocol::tds
