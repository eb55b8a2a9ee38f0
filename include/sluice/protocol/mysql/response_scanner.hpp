#pragma once

#include "sluice/protocol/error.hpp"
#include "sluice/protocol/mysql/constants.hpp"

#include <array>

namespace sluice::protocol::mysql {

/// The shape of the response a command gets, which decides where that response ends.
enum class ResponseKind : std::uint8_t {
    query, ///< COM_QUERY, COM_STMT_EXECUTE: OK | ERR | LOCAL INFILE | result sets
    /// COM_STMT_EXECUTE that asked for a cursor: as `query`, but a result set whose column
    /// definitions end with SERVER_STATUS_CURSOR_EXISTS (and no more results) ends the
    /// response there: its rows come through COM_STMT_FETCH.
    cursor,
    prepare,    ///< COM_STMT_PREPARE: ERR | prepare-OK, parameter and column definitions
    rows,       ///< COM_STMT_FETCH: rows up to EOF/OK | ERR
    field_list, ///< COM_FIELD_LIST: column definitions up to EOF/OK | ERR
    single,     ///< one message: COM_PING, COM_INIT_DB, COM_STATISTICS, COM_STMT_RESET ...
};

/// Follows a server's response as bytes stream through, without buffering them, and says
/// where it ends (MySQL protocol: "Text Resultset", "Binary Protocol Resultset",
/// "COM_STMT_PREPARE Response", "LOCAL INFILE Request"). Packets of 0xFFFFFF bytes continue
/// in the next packet. Sans-I/O: feed it each chunk as it arrives.
class ResponseScanner {
public:
    enum class State : std::uint8_t {
        running,      ///< more bytes belong to this response
        done,         ///< the response is complete
        local_infile, ///< the server asked for a file: client data flows, then resume()
    };

    /// Begins a new response. `deprecate_eof`: CLIENT_DEPRECATE_EOF was negotiated.
    void start(ResponseKind kind, bool deprecate_eof) noexcept;
    /// After LOCAL INFILE data went to the server: its OK or ERR (and any results) follow.
    void resume() noexcept;

    /// Consumes bytes from the front of `in` up to the end of the response. Returns how many
    /// it consumed: all of `in` while running, fewer when the response ended inside `in`.
    /// codec_errc::malformed for bytes no server sends in this state.
    result<std::size_t> feed(Bytes in) noexcept;

    State state() const noexcept { return state_; }
    /// Status flags of the last OK or EOF of this response (SERVER_STATUS_IN_TRANS and friends);
    /// 0 when it had none (an ERR response).
    std::uint16_t last_status() const noexcept { return status_; }
    /// Whether the response carried status flags at all (prepare and field-list responses,
    /// ERRs and COM_STATISTICS' text do not).
    bool has_status() const noexcept { return status_seen_; }
    /// Whether the response ended with an ERR packet.
    bool ended_with_error() const noexcept { return error_; }
    /// For a prepare: the statement id from the prepare-OK.
    std::uint32_t statement_id() const noexcept { return stmt_id_; }
    /// For a prepare: the parameter count from the prepare-OK.
    std::uint16_t prepare_params() const noexcept { return prep_params_; }
    /// Whether the packet that completed last was an OK_Packet (0x00, or 0xFE ending a result
    /// set with CLIENT_DEPRECATE_EOF): one that may carry session-state information.
    bool last_packet_ok() const noexcept { return last_ok_; }
    /// Sequence id of the packet that completed last. After a LOCAL INFILE request the
    /// client's file packets continue from it + 1.
    std::uint8_t last_seq() const noexcept { return header_[3]; }
    /// Packets seen in this response (for metrics and tests).
    std::uint64_t packets() const noexcept { return packets_; }
    /// The last OK's last_insert_id (0 when none, or the response had no OK).
    std::uint64_t insert_id() const noexcept { return insert_id_; }
    /// Warnings the last OK or EOF reported.
    std::uint16_t warnings() const noexcept { return warnings_; }

private:
    enum class Phase : std::uint8_t {
        first,       ///< first packet of a (next) result
        column_defs, ///< `remaining_` column definitions to skip
        columns_eof, ///< the EOF after the column definitions
        rows,        ///< rows up to a terminator
        skip_defs,   ///< prepare: parameter/column definitions and their EOFs
        single,
    };
    static constexpr std::size_t prefix_cap = 24; // 0xFE + two 9-byte lenencs + status

    error_code on_packet(bool& done) noexcept; // classify the packet just consumed
    bool after_result(std::uint16_t status) noexcept;
    bool cursor_opened(std::uint16_t status) const noexcept;

    ResponseKind kind_ = ResponseKind::single;
    Phase phase_ = Phase::single;
    State state_ = State::done;
    bool deprecate_eof_ = false;
    bool error_ = false;
    bool continuation_ = false; // this packet continues a 0xFFFFFF-byte one
    bool pending_done_ = false; // the response ends when this message's fragments do
    bool last_ok_ = false;      // the packet just completed was an OK
    bool status_seen_ = false;  // status_ came from this response
    std::uint8_t header_have_ = 0;
    std::array<std::uint8_t, 4> header_{};
    std::size_t payload_len_ = 0;  // of the current packet
    std::size_t payload_left_ = 0; // bytes of it not yet consumed
    std::size_t prefix_have_ = 0;
    std::array<std::uint8_t, prefix_cap> prefix_{};
    std::uint64_t remaining_ = 0; // definitions left in column_defs / skip_defs
    std::uint16_t status_ = 0;
    std::uint16_t warnings_ = 0;
    std::uint64_t insert_id_ = 0;
    std::uint32_t stmt_id_ = 0;
    std::uint64_t packets_ = 0;
    std::uint16_t prep_params_ = 0, prep_columns_ = 0;
};

} // namespace sluice::protocol::mysql
