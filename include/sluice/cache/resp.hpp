#pragma once
// RESP2, the Redis serialization protocol (https://redis.io/docs/reference/protocol-spec/),
// sans-I/O: commands are encoded into the caller's buffer, replies are decoded from bytes the
// caller feeds in. The decoding is hiredis 0.14's reader (libhiredis, <hiredis/read.h>) with
// reply functions that build Sluice's own Reply directly, plus the checks 0.14 lacks: the CRLF
// after a bulk payload, and limits on bulk strings, arrays and lines. Also the Redis Cluster
// helpers a client needs: MOVED/ASK redirections and the key's hash slot.

#include "sluice/protocol/error.hpp"

#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::cache {

/// What went wrong in the cache layer. For now: decoding the replies of a Redis server. Each
/// of these leaves the reader failed; the connection must be dropped (and the cache bypassed).
enum class cache_errc {
    malformed = 1, ///< not valid RESP2: bad type byte, bad number, no CRLF, nesting too deep
    oversized,     ///< a bulk string, an array or a line larger than the reader's limits
    out_of_memory, ///< allocating a reply failed
};

/// The category of cache_errc; name() is "sluice.cache".
const boost::system::error_category& cache_category() noexcept;
inline boost::system::error_code make_error_code(cache_errc e) noexcept {
    return {static_cast<int>(e), cache_category()};
}

/// The RESP2 reply types. `nil` stands for both the null bulk string `$-1` and the null array
/// `*-1`.
enum class ReplyKind : std::uint8_t { status, error, integer, bulk, nil, array };

/// One decoded Redis reply, owning its data.
struct Reply {
    ReplyKind kind = ReplyKind::nil;
    std::string str;             ///< status, error (without the leading +/-) or bulk bytes
    std::int64_t integer = 0;    ///< integer replies
    std::vector<Reply> elements; ///< array replies, in order
    bool operator==(const Reply&) const = default;
};

/// Appends one command as a RESP array of bulk strings (`*<n>\r\n` then `$<len>\r\n<arg>\r\n`
/// per argument). Arguments are binary-safe: they may hold CR, LF and NUL. Appending several
/// commands to one buffer makes a pipeline; their replies come back in the same order.
/// Precondition: `args` is not empty.
void write_command(std::vector<std::uint8_t>& out, std::initializer_list<std::string_view> args);
/// The same for arguments held in a container (e.g. a std::vector<std::string_view>).
void write_command(std::vector<std::uint8_t>& out, std::span<const std::string_view> args);

/// How much one reply may ask the reader to hold. A limit is checked as soon as the header
/// announcing the size has arrived, before the payload is buffered.
struct ReaderLimits {
    /// The longest bulk string; Redis's own proto-max-bulk-len defaults to 512 MiB. A client
    /// that only stores bounded values should pass something close to its largest value.
    std::size_t max_bulk = std::size_t{512} << 20;
    /// The most elements one array may announce (hiredis 0.14 allows up to INT_MAX).
    std::size_t max_elements = std::size_t{1} << 20;
    /// The longest status, error or integer line and the longest length header, CRLF not
    /// counted (hiredis 0.14 has no bound: it buffers until a CRLF arrives). 64 KiB is the
    /// bound Redis itself puts on an inline request.
    std::size_t max_line = std::size_t{64} << 10;
};

/// Decodes a stream of RESP2 replies with hiredis 0.14's reader. Feed it the bytes read from
/// the connection, then call next() until it returns std::nullopt (more bytes needed) or an
/// error. Replies come out in the order they were sent, so the answers to a pipeline are
/// matched to its commands by position. After an error the reader stays failed: next()
/// returns the same error and feed() ignores its input; the connection cannot be trusted and
/// must be dropped.
///
/// Buffering (hiredis 0.14): feed() copies the bytes into the reader's own buffer, which grows
/// as needed. Consumed bytes stay at its front until more than 1 KiB has been consumed; the
/// next reply taken then moves the unconsumed rest to the front, keeping the capacity. The
/// capacity is given back (when over 16 KiB, hiredis's maxbuf) by the first feed() after
/// everything buffered has been consumed. So feed one read at a time and drain next() after
/// each: that bounds what is held to one read plus one partial reply within the limits, and
/// keeps the moves short.
class ReplyReader {
public:
    /// A reader with the given limits. Throws std::bad_alloc if hiredis cannot allocate one.
    explicit ReplyReader(ReaderLimits limits = {});
    ~ReplyReader();
    ReplyReader(ReplyReader&&) noexcept;
    ReplyReader& operator=(ReplyReader&&) noexcept;
    ReplyReader(const ReplyReader&) = delete;
    ReplyReader& operator=(const ReplyReader&) = delete;

    /// Appends bytes read from the connection. Ignored once the reader has failed.
    void feed(Bytes bytes);
    /// The next complete reply; std::nullopt while the bytes fed so far hold only part of
    /// one; a cache_errc when the stream is not valid RESP2 or breaks a limit (and from then
    /// on, every time).
    result<std::optional<Reply>> next();
    /// True once next() has returned an error.
    bool failed() const noexcept;

private:
    struct State;
    std::unique_ptr<State> state_;
};

/// A Redis Cluster redirection: the slot now lives elsewhere (MOVED, for good) or is being
/// migrated and this one command should go to the other node (ASK, after an ASKING).
struct Redirect {
    enum class Kind : std::uint8_t { moved, ask };
    Kind kind = Kind::moved;
    std::uint16_t slot = 0;
    std::string host; ///< as sent: a name, an IPv4 address, or an IPv6 address without brackets
    std::uint16_t port = 0;
    bool operator==(const Redirect&) const = default;
};

/// Reads an error reply `-MOVED <slot> <host>:<port>` or `-ASK <slot> <host>:<port>` (Redis
/// Cluster specification, "Redirection and resharding"). The host is everything before the
/// last ':' (IPv6 addresses are sent bare); it may be empty, which Redis 7 sends when the node
/// has no known endpoint (meaning: the host of the connection that got the error).
/// std::nullopt for any other reply, and for a MOVED or ASK whose slot is not below 16384 or
/// whose port is not a number from 1 to 65535.
std::optional<Redirect> parse_redirect(const Reply& reply);

/// True when the reply is a well-formed MOVED redirection.
bool is_moved(const Reply& reply);
/// True when the reply is a well-formed ASK redirection.
bool is_ask(const Reply& reply);

/// The Redis Cluster hash slot of a key (specification, "Keys distribution model"):
/// CRC16-CCITT in its XMODEM form (polynomial 0x1021, initial value 0, no reflection) modulo
/// 16384. When the key holds a '{' followed later by a '}' with at least one byte between the
/// first '{' and the first '}' after it, only those bytes are hashed (a hash tag), so keys
/// sharing a tag share a slot.
std::uint16_t key_slot(std::string_view key) noexcept;

/// CRC16 as Redis Cluster uses it (XMODEM: polynomial 0x1021, initial 0, no reflection, no
/// final xor). crc16("123456789") is 0x31C3.
std::uint16_t crc16(std::string_view bytes) noexcept;

} // namespace sluice::cache

template <> struct boost::system::is_error_code_enum<sluice::cache::cache_errc> : std::true_type {};
