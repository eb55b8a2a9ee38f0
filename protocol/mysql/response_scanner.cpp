#include "sluice/protocol/mysql/response_scanner.hpp"

#include "wire.hpp"

#include <algorithm>
#include <cstring>

namespace sluice::protocol::mysql {

namespace {
// Marks the response complete after the packet just classified.
error_code finished(bool& done) noexcept {
    done = true;
    return {};
}
} // namespace

void ResponseScanner::start(ResponseKind kind, bool deprecate_eof) noexcept {
    kind_ = kind;
    deprecate_eof_ = deprecate_eof;
    state_ = State::running;
    error_ = false;
    status_ = 0;
    continuation_ = false;
    pending_done_ = false;
    last_ok_ = false;
    status_seen_ = false;
    header_have_ = 0;
    payload_left_ = 0;
    prefix_have_ = 0;
    remaining_ = 0;
    packets_ = 0;
    stmt_id_ = 0;
    warnings_ = 0;
    insert_id_ = 0;
    switch (kind) {
    case ResponseKind::query:
    case ResponseKind::cursor:
    case ResponseKind::prepare:
        phase_ = Phase::first;
        break;
    case ResponseKind::rows:
    case ResponseKind::field_list:
        phase_ = Phase::rows;
        break;
    case ResponseKind::single:
        phase_ = Phase::single;
        break;
    }
}

void ResponseScanner::resume() noexcept {
    state_ = State::running;
    phase_ = Phase::first;
    kind_ = ResponseKind::query;
}

result<std::size_t> ResponseScanner::feed(Bytes in) noexcept {
    std::size_t pos = 0;
    while (pos < in.size() && state_ == State::running) {
        if (header_have_ < 4) {
            const std::size_t n = std::min<std::size_t>(4 - header_have_, in.size() - pos);
            std::memcpy(header_.data() + header_have_, in.data() + pos, n);
            header_have_ = static_cast<std::uint8_t>(header_have_ + n);
            pos += n;
            if (header_have_ < 4) break;
            payload_len_ = std::size_t{header_[0]} | (std::size_t{header_[1]} << 8) |
                           (std::size_t{header_[2]} << 16);
            payload_left_ = payload_len_;
            prefix_have_ = 0;
        }
        const std::size_t n = std::min(payload_left_, in.size() - pos);
        if (!continuation_ && prefix_have_ < prefix_cap) {
            const std::size_t keep = std::min(n, prefix_cap - prefix_have_);
            std::memcpy(prefix_.data() + prefix_have_, in.data() + pos, keep);
            prefix_have_ += keep;
        }
        pos += n;
        payload_left_ -= n;
        if (payload_left_ > 0) break;

        // A whole packet has been consumed.
        header_have_ = 0;
        const bool was_continuation = continuation_;
        continuation_ = payload_len_ == max_packet_payload;
        if (was_continuation) {
            // Its first byte is data, not a packet type. The message it continues may have
            // been the last of the response: then the response ends with its last fragment.
            if (!continuation_ && pending_done_) state_ = State::done;
            continue;
        }
        ++packets_;
        bool done = false;
        if (auto ec = on_packet(done)) return ec;
        if (done && continuation_)
            pending_done_ = true;
        else if (done)
            state_ = State::done;
    }
    return pos;
}

bool ResponseScanner::cursor_opened(std::uint16_t status) const noexcept {
    // Only an execute that asked for a cursor gets one. Stored programs that use cursors
    // leave CURSOR_EXISTS set in their result sets' flags (MariaDB 10.11), and those
    // results say more follow; they are sent whole like any other.
    return kind_ == ResponseKind::cursor && (status & status::cursor_exists) &&
           !(status & status::more_results_exists);
}

bool ResponseScanner::after_result(std::uint16_t status) noexcept {
    status_ = status;
    status_seen_ = true;
    if ((status & status::more_results_exists) &&
        (kind_ == ResponseKind::query || kind_ == ResponseKind::cursor)) {
        phase_ = Phase::first;
        return false;
    }
    return true;
}

error_code ResponseScanner::on_packet(bool& done) noexcept {
    const Bytes p{prefix_.data(), prefix_have_};
    const bool big = payload_len_ >= max_packet_payload;
    const std::uint8_t first = p.empty() ? 0 : p[0];
    // An EOF, or an OK with the 0xFE header, ends a result set; a row or definition can
    // start with 0xFE only when it is at least 0xFFFFFF bytes long.
    const bool terminator = first == 0xFE && !big && !p.empty();
    last_ok_ = false;

    auto ok_status = [&]() -> result<std::uint16_t> {
        wire::Reader r{p};
        if (auto h = r.u8(); !h) return h.error();
        if (auto a = r.lenenc(); !a) return a.error();
        auto id = r.lenenc();
        if (!id) return id.error();
        auto st = r.u16();
        if (!st) return st;
        insert_id_ = *id;
        auto w = r.u16();
        warnings_ = w ? *w : 0;
        return st;
    };
    auto eof_status = [&]() -> result<std::uint16_t> {
        // An EOF_Packet is exactly 5 bytes; an OK_Packet with the 0xFE header is longer.
        if (payload_len_ != 5) return ok_status();
        if (p.size() < 5) return codec_errc::truncated;
        warnings_ = static_cast<std::uint16_t>(p[1] | (p[2] << 8));
        return static_cast<std::uint16_t>(p[3] | (p[4] << 8));
    };

    // Inside a result set an ERR ends the response: among the rows, and right after the
    // column definitions or in their place when the statement fails once it runs (a cursor's
    // execution, a stored program). A definition starts with the catalog's length (0x03
    // "def") and a row starting with 0xFF is at least 0xFFFFFF bytes long, so neither is one.
    const bool in_result =
        phase_ == Phase::column_defs || phase_ == Phase::columns_eof || phase_ == Phase::rows;
    if (in_result && first == 0xFF && !big) {
        error_ = true;
        return finished(done);
    }

    switch (phase_) {
    case Phase::single:
        if (first == 0xFF) error_ = true;
        if (first == 0x00 && !big) {
            auto st = ok_status();
            if (!st) return st.error();
            status_ = *st;
            status_seen_ = true;
            last_ok_ = true;
        }
        return finished(done);
    case Phase::first: {
        if (p.empty()) return codec_errc::malformed;
        if (first == 0xFF) {
            error_ = true;
            return finished(done);
        }
        if (kind_ == ResponseKind::prepare) {
            if (first != 0x00 || p.size() < 12) return codec_errc::malformed;
            // COM_STMT_PREPARE_OK: 0x00, statement_id<4>, num_columns<2>, num_params<2>.
            stmt_id_ = static_cast<std::uint32_t>(p[1] | (p[2] << 8) | (p[3] << 16)) |
                       (std::uint32_t{p[4]} << 24);
            prep_columns_ = static_cast<std::uint16_t>(p[5] | (p[6] << 8));
            prep_params_ = static_cast<std::uint16_t>(p[7] | (p[8] << 8));
            const bool eofs = !deprecate_eof_;
            remaining_ = std::uint64_t{prep_params_} + prep_columns_ +
                         (eofs && prep_params_ ? 1 : 0) + (eofs && prep_columns_ ? 1 : 0);
            if (remaining_ == 0) return finished(done);
            phase_ = Phase::skip_defs;
            return {};
        }
        if (first == 0x00 && !big) {
            auto st = ok_status();
            if (!st) return st.error();
            last_ok_ = true;
            done = after_result(*st);
            return {};
        }
        if (first == 0xFB) {
            state_ = State::local_infile;
            return {};
        }
        wire::Reader r{p};
        auto count = r.lenenc();
        if (!count || *count == 0) return codec_errc::malformed;
        remaining_ = *count;
        phase_ = Phase::column_defs;
        return {};
    }
    case Phase::column_defs:
        if (--remaining_ == 0) phase_ = deprecate_eof_ ? Phase::rows : Phase::columns_eof;
        return {};
    case Phase::columns_eof: {
        if (!terminator) return codec_errc::malformed;
        auto st = eof_status();
        if (!st) return st.error();
        status_ = *st;
        status_seen_ = true;
        if (cursor_opened(*st)) return finished(done);
        phase_ = Phase::rows;
        return {};
    }
    case Phase::rows: {
        if (terminator) {
            auto st = eof_status();
            if (!st) return st.error();
            last_ok_ = payload_len_ != 5;
            // With CLIENT_DEPRECATE_EOF a cursor's definitions still end with this packet.
            if (cursor_opened(*st)) {
                status_ = *st;
                status_seen_ = true;
                return finished(done);
            }
            done = after_result(*st);
            return {};
        }
        return {};
    }
    case Phase::skip_defs:
        done = --remaining_ == 0;
        return {};
    }
    return codec_errc::malformed;
}

} // namespace sluice::protocol::mysql
