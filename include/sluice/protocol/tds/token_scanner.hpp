#pragma once
// Follows a server's token stream (MS-TDS 2.2.7) as it streams through, without buffering
// row data, and says where the response ends and what routing needs from it.

#include "sluice/protocol/error.hpp"
#include "sluice/protocol/tds/packet.hpp"
#include "sluice/protocol/tds/tokens.hpp"

#include <cstdint>
#include <optional>
#include <vector>

namespace sluice::protocol::tds {

/// Scans the payload of a server's response (packet headers already stripped; see
/// PacketTokenScanner for raw bytes). Sans-I/O: feed it each chunk as it arrives; tokens may
/// be split at any byte. Only bounded parts are buffered (headers of tokens, metadata of one
/// column, the length prefix of a value); row values and large tokens are skipped in place.
///
/// A response ends at a DONE or DONEPROC without DONE_MORE; after an ATTENTION was sent, only
/// at the DONE carrying DONE_ATTN.
class TokenScanner {
public:
    enum class State : std::uint8_t { running, done };

    /// The largest buffered piece (one ENVCHANGE, INFO, ERROR or LOGINACK token, the metadata
    /// of one column, a RETURNVALUE's header): codec_errc::oversized beyond it.
    static constexpr std::size_t max_buffered = 1 << 20;

    /// Begins a new response from a server speaking `tds_version` (DONE is 9 bytes before
    /// 7.2, 13 from it). A LOGINACK updates the version for the rest of the stream. Column
    /// metadata is kept from the previous response: a ROW after COLMETADATA 0xFFFF (RPC
    /// fNoMetaData) uses it.
    void start(std::uint32_t tds_version) noexcept;
    /// The client sent ATTENTION: from now on only a DONE with DONE_ATTN ends the response.
    void expect_attention_ack() noexcept;
    /// The columns a COLMETADATA 0xFFFF (NoMetaData) in this response stands for, when they
    /// came in another response: a cursor fetch's rows have the columns of its
    /// sp_cursoropen, an sp_execute with fNoMetaData those of its sp_prepare. Call after
    /// start().
    void use_columns(const std::vector<TypeInfo>& columns) { columns_ = columns; }

    /// Consumes bytes from the front of `in` up to the end of the response. Returns how many:
    /// all of `in` while running, fewer when the response ended inside it.
    /// codec_errc::malformed for an unknown token or bytes no server sends;
    /// codec_errc::oversized beyond max_buffered.
    result<std::size_t> feed(Bytes in) noexcept;

    State state() const noexcept { return state_; }
    std::uint32_t tds_version() const noexcept { return version_; }
    /// Bytes consumed since start().
    std::size_t offset() const noexcept { return offset_; }

    /// The last DONE, DONEPROC or DONEINPROC (the final one once done).
    const Done& last_done() const noexcept { return done_; }
    /// Some DONE-family token had DONE_ERROR (or DONE_SRVERROR).
    bool done_error() const noexcept { return done_error_; }
    /// The attention acknowledgement (DONE_ATTN) was seen.
    bool attention_acked() const noexcept { return attn_; }
    /// ERROR tokens seen, and the first one.
    std::size_t error_count() const noexcept { return error_count_; }
    const std::optional<ServerMessage>& first_error() const noexcept { return first_error_; }
    std::size_t info_count() const noexcept { return info_count_; }
    /// ENVCHANGE tokens in stream order.
    const std::vector<EnvChange>& env_changes() const noexcept { return env_; }
    const std::optional<LoginAck>& login_ack() const noexcept { return login_ack_; }
    /// The last RETURNSTATUS.
    const std::optional<std::int32_t>& return_status() const noexcept { return return_status_; }
    const std::vector<ReturnValue>& return_values() const noexcept { return return_values_; }
    /// A RETURNVALUE token has begun and is not complete: a proxy rewriting its value holds
    /// the bytes back until it is.
    bool inside_return_value() const noexcept { return unit_ == Unit::retval_head || in_retval_; }
    /// Columns of the current result set (empty before any COLMETADATA).
    const std::vector<TypeInfo>& columns() const noexcept { return columns_; }
    std::uint64_t rows() const noexcept { return rows_; }
    /// A FEATUREEXTACK, SSPI or FEDAUTHINFO token was seen (Sluice requests none of them).
    bool saw_auth_or_feature_token() const noexcept { return saw_auth_or_feature_; }
    /// Everything consumed so far is whole tokens (a row included): a relay that forwarded it
    /// may still end the response with tokens of its own. False inside a token, and once done.
    bool between_tokens() const noexcept {
        return state_ == State::running && unit_ == Unit::token_type && !skipping_ && buf_.empty();
    }
    /// The type byte of the token being read (or last read) and its offset: after an error
    /// from feed(), the token that could not be read.
    std::uint8_t token() const noexcept { return token_; }
    std::size_t token_offset() const noexcept { return token_start_; }

private:
    enum class Unit : std::uint8_t {
        token_type,
        fixed_body,   // DONE family, RETURNSTATUS, OFFSET
        length,       // a USHORT or DWORD token length
        parsed_body,  // ENVCHANGE, INFO, ERROR, LOGINACK: buffered, then parsed
        col_count,    // COLMETADATA's count
        column,       // one column's metadata
        null_bitmap,  // NBCROW
        value_prefix, // the length part of a value
        plp_chunk,    // a PLP chunk length
        retval_head,  // RETURNVALUE up to its value
        feature_id,   // FEATUREEXTACK: FeatureId
        feature_len,  // FEATUREEXTACK: FeatureAckDataLen
    };
    enum class After : std::uint8_t { token, value, feature };

    error_code on_unit() noexcept;
    error_code on_token_type(std::uint8_t t) noexcept;
    error_code on_parsed_body() noexcept;
    error_code on_done_body() noexcept;
    error_code next_value() noexcept; // the next column value of the row, or the row's end
    error_code begin_value(const TypeInfo& t) noexcept;
    error_code value_finished() noexcept;
    void expect(Unit u, std::size_t n) noexcept;
    void skip_then(std::uint64_t n, After after) noexcept;
    error_code after_skip() noexcept;

    State state_ = State::done;
    std::uint32_t version_ = tds_version::v7_4;
    bool want_attn_ = false;
    std::size_t offset_ = 0, token_start_ = 0;

    Unit unit_ = Unit::token_type;
    std::size_t need_ = 1;
    std::vector<std::uint8_t> buf_;
    bool skipping_ = false;
    std::uint64_t skip_left_ = 0;
    After after_ = After::token;

    std::uint8_t token_ = 0;
    std::size_t columns_left_ = 0; // COLMETADATA: columns still to read
    std::size_t col_ = 0;          // ROW: current column
    bool nbc_ = false;
    std::vector<std::uint8_t> nulls_;
    bool in_retval_ = false;
    ReturnValue retval_;
    std::uint8_t capture_[8] = {};
    std::size_t capture_len_ = 0;
    bool capture_ok_ = false;

    Done done_;
    bool done_error_ = false, attn_ = false, saw_auth_or_feature_ = false;
    std::size_t error_count_ = 0, info_count_ = 0;
    std::optional<ServerMessage> first_error_;
    std::vector<EnvChange> env_;
    std::optional<LoginAck> login_ack_;
    std::optional<std::int32_t> return_status_;
    std::vector<ReturnValue> return_values_;
    std::size_t procs_done_ = 0; // DONEPROC tokens: the RPC call a RETURNVALUE answers
    std::vector<TypeInfo> columns_, pending_columns_;
    std::uint64_t rows_ = 0;
};

/// Where a relay stands that forwarded a response up to a point between packets and between
/// tokens, and can still end it itself: the id of the next packet, and whether that packet
/// begins a new message (the last one had EOM, as before an attention acknowledgement).
struct CleanCut {
    std::uint8_t packet_id = 1;
    bool new_message = true;
    bool operator==(const CleanCut&) const = default;
};

/// A TokenScanner over raw bytes from the server: strips the 8-byte packet headers and feeds
/// the payloads. The response ends with the token stream's end, which must fall at the end of
/// a packet with EOM (codec_errc::trailing_bytes otherwise); a message ending before it is
/// codec_errc::malformed, except while waiting for an attention acknowledgement, which may
/// come in a message of its own.
class PacketTokenScanner {
public:
    explicit PacketTokenScanner(std::size_t max_packet = 32768) noexcept
        : max_packet_(max_packet) {}
    void start(std::uint32_t tds_version) noexcept;
    void expect_attention_ack() noexcept;
    /// See TokenScanner::use_columns.
    void use_columns(const std::vector<TypeInfo>& columns) { tokens_.use_columns(columns); }
    void set_max_packet(std::size_t max_packet) noexcept { max_packet_ = max_packet; }
    /// As TokenScanner::feed, on packets.
    result<std::size_t> feed(Bytes in) noexcept;
    TokenScanner::State state() const noexcept { return state_; }
    const TokenScanner& tokens() const noexcept { return tokens_; }
    /// Raw bytes consumed since start().
    std::size_t raw_offset() const noexcept { return raw_offset_; }
    /// The raw offset (since start()) of the token stream's byte at `payload_offset`, when it
    /// is in a packet begun since the last forget_packets(); nullopt otherwise.
    std::optional<std::size_t> raw_offset_of(std::size_t payload_offset) const noexcept;
    /// Forgets all packets but the current one (raw_offset_of() needs one entry per packet
    /// it can map: call this once the bytes before the current packet are relayed).
    void forget_packets() noexcept;
    /// After a successful feed(): where the bytes consumed so far end, if that is between two
    /// packets and between two tokens; nullopt inside a packet or a token (a row cut in two),
    /// where anything appended would corrupt the stream, and once the response is done.
    std::optional<CleanCut> clean_cut() const noexcept;

private:
    struct PacketStart {
        std::size_t payload = 0, raw = 0;
    };
    TokenScanner tokens_;
    std::size_t raw_offset_ = 0;
    std::vector<PacketStart> packets_;
    std::size_t max_packet_;
    TokenScanner::State state_ = TokenScanner::State::done;
    std::uint8_t header_[header_size] = {};
    std::size_t header_have_ = 0;
    std::size_t packet_left_ = 0;
    bool in_packet_ = false, eom_ = false, want_attn_ = false;
};

/// Ends a response a relay cut at `cut` (a backend broke it) with `m` as an ERROR token and a
/// DONE with DONE_ERROR: appends the packets, of at most `packet_size` bytes, that continue
/// the cut message (or begin one), the last with EOM.
void write_cut_end(const CleanCut& cut, const ServerMessage& m, std::uint32_t tds_version,
                   std::size_t packet_size, std::vector<std::uint8_t>& out);

/// Scans a whole response payload with `scanner` (restarted): codec_errc::truncated when the
/// payload ends before the response does, codec_errc::trailing_bytes when bytes follow it.
result<void> scan_response(Bytes payload, TokenScanner& scanner, std::uint32_t tds_version);

/// Appends `payload` (a login reply) without its routing ENVCHANGEs (types 20 and 21): a
/// client that saw one would leave the proxy.
result<void> strip_routing(Bytes payload, std::uint32_t tds_version,
                           std::vector<std::uint8_t>& out);

} // namespace sluice::protocol::tds
