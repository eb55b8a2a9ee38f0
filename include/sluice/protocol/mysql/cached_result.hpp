#pragma once
// A MySQL result set as the cache stores it (issue #9): captured from the server's response
// to one COM_QUERY or COM_STMT_EXECUTE as it is relayed, and replayed later to any client,
// with sequence numbers and the end-of-result markers (CLIENT_DEPRECATE_EOF) made to fit it.
// MySQL client/server protocol: "Text Resultset", "Binary Protocol Resultset", "EOF_Packet",
// "OK_Packet". Sans-I/O.
//
// Blob format, version 1 (integers little-endian). One normalised, structured form whatever
// the server's form was; no sequence numbers, no EOF or OK packets (they are rebuilt):
//
//   version<1>          1
//   format<1>           0: text rows (COM_QUERY), 1: binary rows (COM_STMT_EXECUTE)
//   columns_status<2>   status flags of the EOF after the column definitions; the final
//                       status when the server's form had none (CLIENT_DEPRECATE_EOF)
//   final_status<2>     status flags of the EOF / OK that ended the rows
//   rows<4>             number of rows
//   message x (1 + column count + rows): the column-count payload, each column definition,
//                       each row, each as a length-encoded integer and the payload bytes
//
// A message the server sent in several packets (0xFFFFFF-byte payloads continued in the next
// packet) is stored reassembled, and split again on replay. Warning counts are not stored:
// a result with warnings is never captured. A blob holds exactly one result set: responses
// with SERVER_MORE_RESULTS_EXISTS (multi-statements, CALL) are not cached. The final OK's
// affected-rows and last-insert-id fields (0 from every server seen) are not kept either.
// The blob carries no checksum: replay checks its structure (lengths, counts, packet types a
// client would misread), so a damaged blob gives an error rather than a broken stream, but a
// byte changed inside a row replays as changed.

#include "sluice/protocol/error.hpp"
#include "sluice/protocol/mysql/constants.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sluice::protocol::mysql {

/// The first byte of every blob this code writes; a blob with another is refused by replay.
inline constexpr std::uint8_t cached_result_version = 1;

/// The default largest blob worth caching (issue #9: 1 MiB).
inline constexpr std::size_t default_cached_result_max_bytes = std::size_t{1} << 20;

/// Status flags that describe the session rather than the result (SERVER_STATUS_IN_TRANS,
/// SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS_READONLY): what replay's status override
/// replaces.
inline constexpr std::uint16_t session_status_bits =
    status::in_trans | status::autocommit | status::in_trans_readonly;

/// The row format of a result: which command it answers.
enum class ResultFormat : std::uint8_t {
    text = 0,   ///< COM_QUERY: Text Resultset rows
    binary = 1, ///< COM_STMT_EXECUTE: Binary Protocol Resultset rows
};

/// Why a response was not captured. An error_code enum (category "sluice.uncacheable"), so
/// Capture::finish can return it in a result<>.
enum class Uncacheable {
    error = 1,     ///< an ERR packet, in place of the result or among its rows
    warnings,      ///< an EOF or OK with a warning count above 0
    more_results,  ///< SERVER_MORE_RESULTS_EXISTS: multi-statements and stored programs
    no_result_set, ///< an OK packet alone: nothing to cache
    local_infile,  ///< a LOCAL INFILE request (0xFB)
    cursor,        ///< SERVER_STATUS_CURSOR_EXISTS: rows come later through COM_STMT_FETCH
    too_large,     ///< the blob would exceed max_bytes
    session_state, ///< the final OK carries session-state changes or a message
    malformed,     ///< bytes no server sends here (or metadata options Sluice does not use)
    incomplete,    ///< finish() before the response ended, or no start()
    too_many_rows, ///< more rows than the blob's 32-bit count holds
};

/// The category of Uncacheable; name() is "sluice.uncacheable".
const boost::system::error_category& uncacheable_category() noexcept;

/// Makes Uncacheable values error_codes (found by argument-dependent lookup).
inline boost::system::error_code make_error_code(Uncacheable e) noexcept {
    return {static_cast<int>(e), uncacheable_category()};
}

/// A short snake_case name for a metric label ("warnings", "too_large", ...).
const char* uncacheable_label(Uncacheable why) noexcept;

/// Copies a server's response to one COM_QUERY or COM_STMT_EXECUTE into a blob while the
/// relay forwards it: fed each packet's payload once, in order. As soon as the response
/// proves uncacheable (an ERR, warnings, too large ...) it stops copying and drops what it
/// had. Reusable: start() begins again (keeping the buffer's capacity unless finish() moved
/// the blob out).
class Capture {
public:
    /// Begins a new response. `deprecate_eof`: CLIENT_DEPRECATE_EOF was negotiated with the
    /// backend (the form the server sends); `max_bytes`: the largest blob to keep.
    void start(ResultFormat format, bool deprecate_eof, std::size_t max_bytes);

    /// Takes the payload of the next packet (without its 4-byte header; at most 0xFFFFFF
    /// bytes; one of exactly 0xFFFFFF continues in the next). Returns whether the response
    /// is still worth feeding: false once it is refused or complete, after which further
    /// payloads are ignored (a payload after the end refuses it as malformed).
    bool add(Bytes payload);

    /// Whether the last packet of a response still being captured has been added (a refused
    /// one is not followed further: the relay's ResponseScanner says where it ends).
    bool done() const noexcept { return phase_ == Phase::done; }
    /// Why the response was refused, once it is.
    std::optional<Uncacheable> refused() const noexcept { return refused_; }
    /// Bytes copied so far (0 once refused).
    std::size_t size() const noexcept { return blob_.size(); }

    /// The blob, moved out; Uncacheable (as an error_code) when the response was refused or
    /// has not ended. The Capture must be start()ed again before the next response.
    result<std::string> finish();

private:
    enum class Phase : std::uint8_t { idle, first, column_defs, columns_eof, rows, done };

    bool refuse(Uncacheable why);
    bool check_status(std::uint16_t status, std::uint16_t warnings);
    bool terminator(Bytes payload);
    bool store(Bytes payload, bool continues);
    void message_done();

    std::string blob_;
    Phase phase_ = Phase::idle;
    ResultFormat format_ = ResultFormat::text;
    bool deprecate_eof_ = false;
    bool continuing_ = false;        // the last payload was 0xFFFFFF bytes long
    std::size_t long_length_at_ = 0; // where a multi-packet message's 8-byte length goes
    std::size_t long_start_ = 0;     // where its bytes begin
    std::size_t max_bytes_ = 0;
    std::uint64_t columns_left_ = 0;
    std::uint64_t rows_ = 0;
    bool columns_status_seen_ = false; // the server's form had an EOF after the definitions
    std::optional<Uncacheable> refused_;
};

/// Runs a Capture over a whole response's payloads: the blob, or why there is none.
result<std::string> capture(ResultFormat format,
                            std::span<const std::vector<std::uint8_t>> payloads, bool deprecate_eof,
                            std::size_t max_bytes);

/// Appends the response stored in `blob` to `wire` as packets with 4-byte headers, sequence
/// ids counting up from `first_seq` (1 for the answer to a command), in the client's form:
/// with `client_deprecate_eof` no EOF after the column definitions and the rows ended by an
/// OK packet with the 0xFE header (affected rows 0, last insert id 0, status, warnings 0, no
/// message: 7 bytes, as MariaDB 10.11 sends it); without, EOF packets (warnings 0).
/// Messages of 0xFFFFFF bytes or more are split as the protocol requires.
/// `status_override`: when set, its session_status_bits replace the captured ones in every
/// EOF / OK (the daemon passes the session's current transaction state); the other flags stay
/// as captured.
/// A blob that is not a whole, valid version-1 blob gives codec_errc (unexpected_message for
/// another version, truncated, malformed, trailing_bytes) and leaves `wire` as it was.
result<void> replay(std::string_view blob, bool client_deprecate_eof, std::uint8_t first_seq,
                    std::vector<std::uint8_t>& wire,
                    std::optional<std::uint16_t> status_override = std::nullopt);

} // namespace sluice::protocol::mysql

template <>
struct boost::system::is_error_code_enum<sluice::protocol::mysql::Uncacheable> : std::true_type {};
