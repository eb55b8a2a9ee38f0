#pragma once
// The server's token stream (MS-TDS 2.2.7): token types, the values the proxy reads from
// them, and writers for the tokens and messages Sluice sends to clients itself.

#include "sluice/protocol/error.hpp"
#include "sluice/protocol/tds/type_info.hpp"
#include "sluice/protocol/tds/version.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::protocol::tds {

/// Token types (MS-TDS 2.2.7).
namespace token {
inline constexpr std::uint8_t offset = 0x78;              // OFFSET (before TDS 7.2)
inline constexpr std::uint8_t return_status = 0x79;       // RETURNSTATUS
inline constexpr std::uint8_t col_metadata = 0x81;        // COLMETADATA
inline constexpr std::uint8_t alt_metadata = 0x88;        // ALTMETADATA: not supported
inline constexpr std::uint8_t data_classification = 0xA3; // not supported (never requested)
inline constexpr std::uint8_t tab_name = 0xA4;            // TABNAME (TABINFO)
inline constexpr std::uint8_t col_info = 0xA5;            // COLINFO
inline constexpr std::uint8_t order = 0xA9;               // ORDER
inline constexpr std::uint8_t error = 0xAA;               // ERROR
inline constexpr std::uint8_t info = 0xAB;                // INFO
inline constexpr std::uint8_t return_value = 0xAC;        // RETURNVALUE
inline constexpr std::uint8_t login_ack = 0xAD;           // LOGINACK
inline constexpr std::uint8_t feature_ext_ack = 0xAE;     // FEATUREEXTACK
inline constexpr std::uint8_t row = 0xD1;                 // ROW
inline constexpr std::uint8_t nbc_row = 0xD2;             // NBCROW
inline constexpr std::uint8_t alt_row = 0xD3;             // ALTROW: not supported
inline constexpr std::uint8_t env_change = 0xE3;          // ENVCHANGE
inline constexpr std::uint8_t session_state = 0xE4;       // SESSIONSTATE
inline constexpr std::uint8_t sspi = 0xED;                // SSPI
inline constexpr std::uint8_t fed_auth_info = 0xEE;       // FEDAUTHINFO
inline constexpr std::uint8_t done = 0xFD;                // DONE
inline constexpr std::uint8_t done_proc = 0xFE;           // DONEPROC
inline constexpr std::uint8_t done_in_proc = 0xFF;        // DONEINPROC
} // namespace token

/// DONE, DONEPROC and DONEINPROC status bits (MS-TDS 2.2.7.6).
namespace done_status {
inline constexpr std::uint16_t final = 0x0000;        // DONE_FINAL
inline constexpr std::uint16_t more = 0x0001;         // DONE_MORE
inline constexpr std::uint16_t error = 0x0002;        // DONE_ERROR
inline constexpr std::uint16_t in_xact = 0x0004;      // DONE_INXACT: never set by SQL Server
inline constexpr std::uint16_t count = 0x0010;        // DONE_COUNT
inline constexpr std::uint16_t attn = 0x0020;         // DONE_ATTN: attention acknowledged
inline constexpr std::uint16_t rpc_in_batch = 0x0080; // DONE_RPCINBATCH
inline constexpr std::uint16_t srv_error = 0x0100;    // DONE_SRVERROR
} // namespace done_status

/// ENVCHANGE types (MS-TDS 2.2.7.9).
namespace env_type {
inline constexpr std::uint8_t database = 1;
inline constexpr std::uint8_t language = 2;
inline constexpr std::uint8_t charset = 3;
inline constexpr std::uint8_t packet_size = 4;
inline constexpr std::uint8_t sort_locale = 5;
inline constexpr std::uint8_t sort_flags = 6;
inline constexpr std::uint8_t collation = 7;
inline constexpr std::uint8_t begin_tran = 8;
inline constexpr std::uint8_t commit_tran = 9;
inline constexpr std::uint8_t rollback_tran = 10;
inline constexpr std::uint8_t enlist_dtc = 11;
inline constexpr std::uint8_t defect_tran = 12;
inline constexpr std::uint8_t mirror_partner = 13;
inline constexpr std::uint8_t promote_tran = 15;
inline constexpr std::uint8_t tran_manager_address = 16;
inline constexpr std::uint8_t tran_ended = 17;
inline constexpr std::uint8_t reset_ack = 18;
inline constexpr std::uint8_t user_instance = 19;
inline constexpr std::uint8_t routing = 20;
inline constexpr std::uint8_t enhanced_routing = 21;
} // namespace env_type

/// A DONE, DONEPROC or DONEINPROC token.
struct Done {
    std::uint8_t token = tds::token::done;
    std::uint16_t status = 0;
    std::uint16_t cur_cmd = 0;
    std::uint64_t row_count = 0;
    bool operator==(const Done&) const = default;
};

/// An ERROR or INFO token (MS-TDS 2.2.7.10, 2.2.7.13).
struct ServerMessage {
    std::int32_t number = 0;
    std::uint8_t state = 0;
    std::uint8_t severity = 0; ///< Class
    std::string message, server, procedure;
    std::int32_t line = 0;
    bool operator==(const ServerMessage&) const = default;
};

/// LOGINACK (MS-TDS 2.2.7.14).
struct LoginAck {
    std::uint8_t interface = 1; ///< 1: SQL_TSQL
    std::uint32_t tds_version = tds_version::v7_4;
    std::string prog_name;                      ///< as sent: real servers append two NUL characters
    std::array<std::uint8_t, 4> prog_version{}; ///< major, minor, build high, build low
    bool operator==(const LoginAck&) const = default;
};

/// One ENVCHANGE token, where it was in the stream and what it said.
struct EnvChange {
    std::uint8_t type = 0;
    std::size_t offset = 0;           ///< of the token type byte, counted from the response's start
    std::size_t size = 0;             ///< of the whole token
    std::string new_value, old_value; ///< UTF-8, for the B_VARCHAR types
    std::vector<std::uint8_t> new_bytes, old_bytes; ///< for the B_VARBYTE types (7, 8-12,
                                                    ///< 15-18), and the raw value of type 21
    std::uint8_t routing_protocol = 0;              ///< type 20: 0 is TCP
    std::uint16_t routing_port = 0;                 ///< type 20
    std::string routing_server;                     ///< type 20, UTF-8
    /// The 8-byte descriptor of begin (new value) or commit/rollback/ended (old value); 0
    /// when absent.
    std::uint64_t descriptor() const noexcept;
    /// The packet size of type 4 (new value); 0 when not a number.
    std::uint32_t packet_size() const noexcept;
};

/// A RETURNVALUE (MS-TDS 2.2.7.18): output parameter values, like a prepared handle.
struct ReturnValue {
    std::uint16_t ordinal = 0;
    std::string name;        ///< UTF-8
    std::uint8_t status = 0; ///< 0x01 output parameter, 0x02 user-defined function result
    TypeInfo type;
    bool is_null = false;
    std::optional<std::int64_t> int_value; ///< for integer types
    /// Where int_value's bytes are in the response payload (TokenScanner offsets), for a
    /// proxy that rewrites them in place; value_size 0 when there is no int_value.
    std::size_t value_offset = 0, value_size = 0;
    /// The RPC call of a batched request it answers: DONEPROCs seen before it.
    std::size_t call = 0;
    bool operator==(const ReturnValue&) const = default;
};

// ---- writers: each appends one token (or a message payload) to `out` ----

/// ENVCHANGE with B_VARCHAR values (types 1-6, 13, 19).
void write_env_change_text(std::uint8_t type, std::string_view new_value,
                           std::string_view old_value, std::vector<std::uint8_t>& out);
/// ENVCHANGE with B_VARBYTE values (types 7-12, 16-18).
void write_env_change_bytes(std::uint8_t type, Bytes new_value, Bytes old_value,
                            std::vector<std::uint8_t>& out);
/// ENVCHANGE 18: the RESETCONNECTION acknowledgement (empty old and new values).
void write_reset_ack(std::vector<std::uint8_t>& out);
/// INFO (`info`) or ERROR (`!info`); the line number is 2 bytes before TDS 7.2.
void write_server_message(bool info, const ServerMessage& m, std::uint32_t tds_version,
                          std::vector<std::uint8_t>& out);
void write_login_ack(const LoginAck& ack, std::vector<std::uint8_t>& out);
/// DONE family; the row count is 4 bytes before TDS 7.2, 8 from it.
void write_done(const Done& d, std::uint32_t tds_version, std::vector<std::uint8_t>& out);

/// What Sluice tells a client about the session it has logged into.
struct LoginReply {
    std::uint32_t tds_version = tds_version::v7_4;
    std::string database = "master", old_database = "master";
    std::string language = "us_english", old_language;
    std::array<std::uint8_t, 5> collation{0x09, 0x04, 0xD0, 0x00, 0x34}; ///< Latin1_General_CI_AS
    std::uint32_t packet_size = 4096, old_packet_size = 4096;
    std::string server_name; ///< in the INFO messages
    std::string prog_name = std::string("Microsoft SQL Server\0\0", 22);
    std::array<std::uint8_t, 4> prog_version{16, 0, 0x10, 0x00};
    bool info_messages = true; ///< INFO 5701/5703, as SQL Server sends them
};

/// Appends a login reply payload in the order a real SQL Server 2008 sends it: ENVCHANGE
/// database, INFO 5701, ENVCHANGE collation, ENVCHANGE language, INFO 5703, LOGINACK,
/// ENVCHANGE packet size, DONE.
void write_login_reply(const LoginReply& reply, std::vector<std::uint8_t>& out);

/// Appends an error response payload: ERROR, then DONE with DONE_ERROR.
void write_error_response(const ServerMessage& m, std::uint32_t tds_version,
                          std::vector<std::uint8_t>& out);

/// Appends the attention acknowledgement: DONE with DONE_ATTN.
void write_attention_ack(std::uint32_t tds_version, std::vector<std::uint8_t>& out);

} // namespace sluice::protocol::tds
