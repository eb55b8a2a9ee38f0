#include "sluice/protocol/mysql/cached_result.hpp"

#include "sluice/protocol/mysql/constants.hpp"
#include "sluice/protocol/mysql/messages.hpp"
#include "sluice/protocol/mysql/packet.hpp"
#include "wire.hpp"

#include <array>
#include <limits>

namespace sluice::protocol::mysql {

using wire::Reader;

namespace {

// Blob header: version<1>, format<1>, columns_status<2>, final_status<2>, rows<4>.
constexpr std::size_t columns_status_at = 2;
constexpr std::size_t final_status_at = 4;
constexpr std::size_t rows_at = 6;
constexpr std::size_t header_size = 10;

// Flags a cached result never carries: they promise packets a replay does not send.
constexpr std::uint16_t refused_status_bits =
    status::more_results_exists | status::cursor_exists | status::session_state_changed;

class UncacheableCategory final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "sluice.uncacheable"; }
    std::string message(int ev) const override {
        switch (static_cast<Uncacheable>(ev)) {
        case Uncacheable::error:
            return "the response is an error";
        case Uncacheable::warnings:
            return "the result carries warnings";
        case Uncacheable::more_results:
            return "the response has more than one result";
        case Uncacheable::no_result_set:
            return "the response has no result set";
        case Uncacheable::local_infile:
            return "the response is a LOCAL INFILE request";
        case Uncacheable::cursor:
            return "the result opened a cursor";
        case Uncacheable::too_large:
            return "the result is larger than the cache limit";
        case Uncacheable::session_state:
            return "the result carries session-state changes or a message";
        case Uncacheable::malformed:
            return "the response is malformed";
        case Uncacheable::incomplete:
            return "the response has not ended";
        case Uncacheable::too_many_rows:
            return "the result has too many rows";
        }
        return "unknown reason";
    }
};

bool is_big(Bytes p) noexcept { return p.size() >= max_packet_payload; }

std::size_t lenenc_size(std::uint64_t v) noexcept {
    if (v < 0xFB) return 1;
    if (v <= 0xFFFF) return 3;
    if (v <= 0xFFFFFF) return 4;
    return 9;
}

void put_u16_at(std::string& s, std::size_t at, std::uint16_t v) noexcept {
    s[at] = static_cast<char>(v & 0xFF);
    s[at + 1] = static_cast<char>(v >> 8);
}

void put_u32_at(std::string& s, std::size_t at, std::uint32_t v) noexcept {
    for (std::size_t i = 0; i < 4; ++i)
        s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

void put_u64_at(std::string& s, std::size_t at, std::uint64_t v) noexcept {
    for (std::size_t i = 0; i < 8; ++i)
        s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

void append(std::string& s, Bytes b) {
    s.append(reinterpret_cast<const char*>(b.data()), b.size());
}

void append_lenenc(std::string& s, std::uint64_t v) {
    std::array<std::uint8_t, 9> buf{};
    std::size_t n = 0;
    auto put = [&](std::uint64_t x, std::size_t bytes) {
        for (std::size_t i = 0; i < bytes; ++i)
            buf[n++] = static_cast<std::uint8_t>(x >> (8 * i));
    };
    if (v < 0xFB) {
        put(v, 1);
    } else if (v <= 0xFFFF) {
        put(0xFC, 1);
        put(v, 2);
    } else if (v <= 0xFFFFFF) {
        put(0xFD, 1);
        put(v, 3);
    } else {
        put(0xFE, 1);
        put(v, 8);
    }
    append(s, Bytes{buf.data(), n});
}

// A column definition or row as a client reads it: an ERR or EOF/OK header starts only a
// message of 0xFFFFFF bytes or more (a definition starts with the catalog's length).
bool plausible_data(Bytes p) noexcept {
    if (p.empty()) return false;
    return is_big(p) || (p[0] != 0xFE && p[0] != 0xFF);
}

// A Binary Protocol Resultset row starts with the 0x00 packet header.
bool plausible_row(Bytes p, ResultFormat format) noexcept {
    if (!plausible_data(p)) return false;
    return format == ResultFormat::text || p[0] == 0x00;
}

// The column-count payload: one length-encoded integer above 0, nothing after it (no
// CLIENT_OPTIONAL_RESULTSET_METADATA or MARIADB_CLIENT_CACHE_METADATA flag byte).
bool is_column_count(Bytes p) noexcept {
    Reader r{p};
    auto n = r.lenenc();
    return n && *n > 0 && r.empty();
}

std::uint16_t with_session(std::uint16_t captured, std::optional<std::uint16_t> session) noexcept {
    if (!session) return captured;
    return static_cast<std::uint16_t>((captured & ~session_status_bits) |
                                      (*session & session_status_bits));
}

// Appends the packet that ends the column definitions or the rows: an EOF_Packet (0xFE,
// warnings<2> 0, status<2>), or with CLIENT_DEPRECATE_EOF an OK_Packet with the 0xFE header
// (0xFE, affected rows 0, last insert id 0, status<2>, warnings<2> 0), what write_eof and
// write_ok produce, written in place so that a replay allocates nothing of its own.
std::uint8_t put_end_marker(bool ok_form, std::uint16_t status, std::uint8_t seq,
                            std::vector<std::uint8_t>& wire) {
    const std::uint8_t lo = static_cast<std::uint8_t>(status & 0xFF);
    const std::uint8_t hi = static_cast<std::uint8_t>(status >> 8);
    if (ok_form) {
        const std::array<std::uint8_t, 11> p{7, 0, 0, seq, 0xFE, 0, 0, lo, hi, 0, 0};
        wire.insert(wire.end(), p.begin(), p.end());
    } else {
        const std::array<std::uint8_t, 9> p{5, 0, 0, seq, 0xFE, 0, 0, lo, hi};
        wire.insert(wire.end(), p.begin(), p.end());
    }
    return static_cast<std::uint8_t>(seq + 1);
}

result<void> replay_into(std::string_view blob, bool client_deprecate_eof, std::uint8_t seq,
                         std::vector<std::uint8_t>& wire,
                         std::optional<std::uint16_t> status_override) {
    Reader r{wire::as_bytes(blob)};
    auto version = r.u8();
    if (!version) return version.error();
    if (*version != cached_result_version) return codec_errc::unexpected_message;
    auto format = r.u8();
    if (!format) return format.error();
    if (*format > static_cast<std::uint8_t>(ResultFormat::binary)) return codec_errc::malformed;
    const auto fmt = static_cast<ResultFormat>(*format);
    auto columns_status = r.u16();
    if (!columns_status) return columns_status.error();
    auto final_status = r.u16();
    if (!final_status) return final_status.error();
    if ((*columns_status | *final_status) & refused_status_bits) return codec_errc::malformed;
    auto rows = r.u32();
    if (!rows) return rows.error();

    auto count_msg = r.lenenc_bytes();
    if (!count_msg) return count_msg.error();
    if (!is_column_count(*count_msg)) return codec_errc::malformed;
    const std::uint64_t columns = *Reader{*count_msg}.lenenc(); // checked just above
    seq = write_packets(*count_msg, seq, wire);

    // Each message takes at least two bytes of the blob, so a corrupt count ends at the
    // blob's end rather than looping on.
    for (std::uint64_t i = 0; i < columns; ++i) {
        auto def = r.lenenc_bytes();
        if (!def) return def.error();
        if (!plausible_data(*def)) return codec_errc::malformed;
        seq = write_packets(*def, seq, wire);
    }
    if (!client_deprecate_eof)
        seq = put_end_marker(false, with_session(*columns_status, status_override), seq, wire);
    for (std::uint32_t i = 0; i < *rows; ++i) {
        auto row = r.lenenc_bytes();
        if (!row) return row.error();
        if (!plausible_row(*row, fmt)) return codec_errc::malformed;
        seq = write_packets(*row, seq, wire);
    }
    if (!r.empty()) return codec_errc::trailing_bytes;

    put_end_marker(client_deprecate_eof, with_session(*final_status, status_override), seq, wire);
    return {};
}

} // namespace

const boost::system::error_category& uncacheable_category() noexcept {
    static const UncacheableCategory category;
    return category;
}

const char* uncacheable_label(Uncacheable why) noexcept {
    switch (why) {
    case Uncacheable::error:
        return "error";
    case Uncacheable::warnings:
        return "warnings";
    case Uncacheable::more_results:
        return "more_results";
    case Uncacheable::no_result_set:
        return "no_result_set";
    case Uncacheable::local_infile:
        return "local_infile";
    case Uncacheable::cursor:
        return "cursor";
    case Uncacheable::too_large:
        return "too_large";
    case Uncacheable::session_state:
        return "session_state";
    case Uncacheable::malformed:
        return "malformed";
    case Uncacheable::incomplete:
        return "incomplete";
    case Uncacheable::too_many_rows:
        return "too_many_rows";
    }
    return "unknown";
}

// ---- Capture ----

void Capture::start(ResultFormat format, bool deprecate_eof, std::size_t max_bytes) {
    blob_.clear();
    phase_ = Phase::first;
    format_ = format;
    deprecate_eof_ = deprecate_eof;
    continuing_ = false;
    long_length_at_ = long_start_ = 0;
    max_bytes_ = max_bytes;
    columns_left_ = 0;
    rows_ = 0;
    columns_status_seen_ = false;
    refused_.reset();
    if (max_bytes < header_size) {
        refuse(Uncacheable::too_large);
        return;
    }
    blob_.push_back(static_cast<char>(cached_result_version));
    blob_.push_back(static_cast<char>(format));
    blob_.append(header_size - 2, '\0');
}

bool Capture::refuse(Uncacheable why) {
    refused_ = why;
    blob_.clear();
    return false;
}

bool Capture::check_status(std::uint16_t status, std::uint16_t warnings) {
    if (status & status::cursor_exists) return refuse(Uncacheable::cursor);
    if (status & status::more_results_exists) return refuse(Uncacheable::more_results);
    if (status & status::session_state_changed) return refuse(Uncacheable::session_state);
    if (warnings > 0) return refuse(Uncacheable::warnings);
    return true;
}

bool Capture::terminator(Bytes payload) {
    // The server's form decides which packet this is, but the length tells them apart as
    // well (an EOF_Packet is exactly 5 bytes), so either is read whatever was negotiated.
    std::uint16_t status = 0, warnings = 0;
    if (payload.size() == 5) {
        auto eof = parse_eof(payload);
        if (!eof) return refuse(Uncacheable::malformed);
        status = eof->status;
        warnings = eof->warnings;
    } else {
        auto ok = parse_ok(payload);
        if (!ok) return refuse(Uncacheable::malformed);
        status = ok->status;
        warnings = ok->warnings;
        // With CLIENT_SESSION_TRACK an empty message may still be sent as its length, 0.
        if (!ok->info.empty() && ok->info != std::string_view{"\0", 1})
            return refuse(Uncacheable::session_state);
    }
    if (!check_status(status, warnings)) return false;
    if (!columns_status_seen_) put_u16_at(blob_, columns_status_at, status);
    put_u16_at(blob_, final_status_at, status);
    phase_ = Phase::done;
    return false; // nothing more belongs to the response
}

bool Capture::store(Bytes payload, bool continues) {
    // Limits are checked before anything is copied; the difference cannot underflow because
    // the blob never grows past max_bytes_.
    const std::size_t room = max_bytes_ - blob_.size();
    if (continuing_) {
        if (payload.size() > room) return refuse(Uncacheable::too_large);
        append(blob_, payload);
    } else if (continues) {
        // The whole length is known only at the last packet: leave room for the 8-byte form.
        if (9 + payload.size() > room) return refuse(Uncacheable::too_large);
        blob_.push_back(static_cast<char>(0xFE));
        long_length_at_ = blob_.size();
        blob_.append(8, '\0');
        long_start_ = blob_.size();
        append(blob_, payload);
    } else {
        if (lenenc_size(payload.size()) + payload.size() > room)
            return refuse(Uncacheable::too_large);
        append_lenenc(blob_, payload.size());
        append(blob_, payload);
    }
    if (continues) {
        continuing_ = true;
        return true;
    }
    if (continuing_) {
        continuing_ = false;
        put_u64_at(blob_, long_length_at_, blob_.size() - long_start_);
    }
    message_done();
    return !refused_;
}

void Capture::message_done() {
    if (phase_ == Phase::column_defs) {
        if (--columns_left_ == 0) phase_ = deprecate_eof_ ? Phase::rows : Phase::columns_eof;
    } else if (phase_ == Phase::rows) {
        if (++rows_ > std::numeric_limits<std::uint32_t>::max()) refuse(Uncacheable::too_many_rows);
    }
}

bool Capture::add(Bytes payload) {
    if (refused_ || phase_ == Phase::idle) return false;
    if (phase_ == Phase::done) return refuse(Uncacheable::malformed);
    if (payload.size() > max_packet_payload) return refuse(Uncacheable::malformed);
    const bool continues = payload.size() == max_packet_payload;
    // A continuation packet's first byte is data, not a packet type.
    if (continuing_) return store(payload, continues);
    if (payload.empty()) return refuse(Uncacheable::malformed);
    const std::uint8_t first = payload[0];

    switch (phase_) {
    case Phase::first:
        if (first == 0xFF) return refuse(Uncacheable::error);
        if (first == 0x00) return refuse(Uncacheable::no_result_set);
        if (first == 0xFB) return refuse(Uncacheable::local_infile);
        if (continues || !is_column_count(payload)) return refuse(Uncacheable::malformed);
        columns_left_ = *Reader{payload}.lenenc(); // checked just above
        if (!store(payload, false)) return false;
        phase_ = Phase::column_defs;
        return true;
    case Phase::column_defs:
        // The statement can fail once its metadata is out (MariaDB: in a stored program).
        if (!continues && first == 0xFF) return refuse(Uncacheable::error);
        if (!plausible_data(payload)) return refuse(Uncacheable::malformed);
        return store(payload, continues);
    case Phase::columns_eof: {
        if (!continues && first == 0xFF) return refuse(Uncacheable::error);
        auto eof = parse_eof(payload);
        if (!eof) return refuse(Uncacheable::malformed);
        if (!check_status(eof->status, eof->warnings)) return false;
        put_u16_at(blob_, columns_status_at, eof->status);
        columns_status_seen_ = true;
        phase_ = Phase::rows;
        return true;
    }
    case Phase::rows:
        if (!continues && first == 0xFF) return refuse(Uncacheable::error);
        if (!continues && first == 0xFE) return terminator(payload);
        if (!plausible_row(payload, format_)) return refuse(Uncacheable::malformed);
        return store(payload, continues);
    case Phase::idle:
    case Phase::done:
        break;
    }
    return refuse(Uncacheable::malformed);
}

result<std::string> Capture::finish() {
    if (refused_) return make_error_code(*refused_);
    if (phase_ != Phase::done) {
        refuse(Uncacheable::incomplete);
        phase_ = Phase::idle;
        return make_error_code(Uncacheable::incomplete);
    }
    put_u32_at(blob_, rows_at, static_cast<std::uint32_t>(rows_));
    phase_ = Phase::idle;
    return std::move(blob_);
}

result<std::string> capture(ResultFormat format,
                            std::span<const std::vector<std::uint8_t>> payloads, bool deprecate_eof,
                            std::size_t max_bytes) {
    Capture c;
    c.start(format, deprecate_eof, max_bytes);
    for (const auto& p : payloads) {
        if (c.refused()) break;
        c.add(p); // a payload after the end refuses the response as malformed
    }
    return c.finish();
}

// ---- replay ----

result<void> replay(std::string_view blob, bool client_deprecate_eof, std::uint8_t first_seq,
                    std::vector<std::uint8_t>& wire, std::optional<std::uint16_t> status_override) {
    const std::size_t start = wire.size();
    auto r = replay_into(blob, client_deprecate_eof, first_seq, wire, status_override);
    if (!r) wire.resize(start);
    return r;
}

} // namespace sluice::protocol::mysql
