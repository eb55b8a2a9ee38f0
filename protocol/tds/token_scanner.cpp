#include "sluice/protocol/tds/token_scanner.hpp"

#include "sluice/protocol/tds/text.hpp"
#include "types.hpp"

#include <algorithm>
#include <cstring>

namespace sluice::protocol::tds {

namespace {

bool is_parsed(std::uint8_t t) noexcept {
    return t == token::env_change || t == token::info || t == token::error || t == token::login_ack;
}

std::uint64_t le_of(const std::vector<std::uint8_t>& b, std::size_t at, std::size_t n) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i)
        v |= std::uint64_t{b[at + i]} << (8 * i);
    return v;
}

result<ServerMessage> read_server_message(wire::Reader& r, std::uint32_t version) {
    ServerMessage m;
    auto number = r.u32();
    if (!number) return number.error();
    m.number = static_cast<std::int32_t>(*number);
    auto state = r.u8();
    if (!state) return state.error();
    m.state = *state;
    auto severity = r.u8();
    if (!severity) return severity.error();
    m.severity = *severity;
    auto text = r.us_varchar();
    if (!text) return text.error();
    m.message = utf16le_to_utf8(*text);
    auto server = r.b_varchar();
    if (!server) return server.error();
    m.server = utf16le_to_utf8(*server);
    auto proc = r.b_varchar();
    if (!proc) return proc.error();
    m.procedure = utf16le_to_utf8(*proc);
    auto line = r.le(at_least_7_2(version) ? 4 : 2);
    if (!line) return line.error();
    m.line = static_cast<std::int32_t>(*line);
    return m;
}

result<void> read_env_change(wire::Reader& r, EnvChange& e) {
    auto type = r.u8();
    if (!type) return type.error();
    e.type = *type;
    auto text_pair = [&]() -> result<void> {
        auto n = r.b_varchar();
        if (!n) return n.error();
        auto o = r.b_varchar();
        if (!o) return o.error();
        e.new_value = utf16le_to_utf8(*n);
        e.old_value = utf16le_to_utf8(*o);
        return {};
    };
    auto bytes_pair = [&]() -> result<void> {
        auto n = r.b_varbyte();
        if (!n) return n.error();
        auto o = r.b_varbyte();
        if (!o) return o.error();
        e.new_bytes.assign(n->begin(), n->end());
        e.old_bytes.assign(o->begin(), o->end());
        return {};
    };
    switch (e.type) {
    case env_type::database:
    case env_type::language:
    case env_type::charset:
    case env_type::packet_size:
    case env_type::sort_locale:
    case env_type::sort_flags:
    case env_type::mirror_partner:
    case env_type::user_instance:
        return text_pair();
    case env_type::collation:
    case env_type::begin_tran:
    case env_type::commit_tran:
    case env_type::rollback_tran:
    case env_type::enlist_dtc:
    case env_type::defect_tran:
    case env_type::tran_manager_address:
    case env_type::tran_ended:
    case env_type::reset_ack:
        return bytes_pair();
    case env_type::promote_tran: {
        auto n = r.u32(); // a LONGLEN new value, then a zero-length old value
        if (!n) return n.error();
        auto v = r.bytes(*n);
        if (!v) return v.error();
        e.new_bytes.assign(v->begin(), v->end());
        auto o = r.b_varbyte();
        if (!o) return o.error();
        e.old_bytes.assign(o->begin(), o->end());
        return {};
    }
    case env_type::routing: {
        auto len = r.u16(); // RoutingDataValueLength
        if (!len) return len.error();
        auto data = r.bytes(*len);
        if (!data) return data.error();
        wire::Reader d{*data};
        auto protocol = d.u8();
        if (!protocol) return protocol.error();
        auto port = d.u16();
        if (!port) return port.error();
        auto server = d.us_varchar();
        if (!server) return server.error();
        if (!d.empty()) return codec_errc::malformed;
        e.routing_protocol = *protocol;
        e.routing_port = *port;
        e.routing_server = utf16le_to_utf8(*server);
        e.new_bytes.assign(data->begin(), data->end());
        auto old = r.u16(); // an empty old value
        if (!old) return old.error();
        if (*old != 0) return codec_errc::malformed;
        return {};
    }
    default: {
        // Enhanced routing (21) and types not listed in MS-TDS: kept raw; the token's length
        // already bounds them.
        auto rest = r.bytes(r.remaining());
        e.new_bytes.assign(rest->begin(), rest->end());
        return {};
    }
    }
}

} // namespace

std::uint64_t EnvChange::descriptor() const noexcept {
    const auto& b = new_bytes.size() == 8 ? new_bytes : old_bytes;
    if (b.size() != 8) return 0;
    return le_of(b, 0, 8);
}

std::uint32_t EnvChange::packet_size() const noexcept {
    if (new_value.empty() || new_value.size() > 9) return 0;
    std::uint32_t v = 0;
    for (char c : new_value) {
        if (c < '0' || c > '9') return 0;
        v = v * 10 + static_cast<std::uint32_t>(c - '0');
    }
    return v;
}

void TokenScanner::start(std::uint32_t tds_version) noexcept {
    state_ = State::running;
    version_ = tds_version;
    want_attn_ = false;
    offset_ = token_start_ = 0;
    expect(Unit::token_type, 1);
    skipping_ = false;
    skip_left_ = 0;
    columns_left_ = 0;
    col_ = 0;
    nbc_ = false;
    in_retval_ = false;
    capture_ok_ = false;
    done_ = {};
    done_error_ = attn_ = saw_auth_or_feature_ = false;
    error_count_ = info_count_ = 0;
    first_error_.reset();
    env_.clear();
    login_ack_.reset();
    return_status_.reset();
    return_values_.clear();
    procs_done_ = 0;
    rows_ = 0;
}

void TokenScanner::expect_attention_ack() noexcept { want_attn_ = true; }

void TokenScanner::expect(Unit u, std::size_t n) noexcept {
    unit_ = u;
    need_ = n;
    buf_.clear();
}

void TokenScanner::skip_then(std::uint64_t n, After after) noexcept {
    skipping_ = true;
    skip_left_ = n;
    after_ = after;
}

result<std::size_t> TokenScanner::feed(Bytes in) noexcept {
    std::size_t pos = 0;
    while (state_ == State::running) {
        if (skipping_) {
            if (skip_left_ > 0) {
                const auto n =
                    static_cast<std::size_t>(std::min<std::uint64_t>(skip_left_, in.size() - pos));
                if (n == 0) break;
                if (capture_ok_) {
                    // A return value's bytes, kept when they fit (integers do).
                    if (capture_len_ + n <= sizeof capture_) {
                        std::memcpy(capture_ + capture_len_, in.data() + pos, n);
                        capture_len_ += n;
                    } else {
                        capture_ok_ = false;
                    }
                }
                pos += n;
                offset_ += n;
                skip_left_ -= n;
                if (skip_left_ > 0) break;
            }
            skipping_ = false;
            if (auto ec = after_skip()) return ec;
            continue;
        }
        if (buf_.size() < need_) {
            const std::size_t n = std::min(need_ - buf_.size(), in.size() - pos);
            if (n == 0) break;
            buf_.insert(buf_.end(), in.begin() + static_cast<std::ptrdiff_t>(pos),
                        in.begin() + static_cast<std::ptrdiff_t>(pos + n));
            pos += n;
            offset_ += n;
            if (buf_.size() < need_) break;
        }
        if (auto ec = on_unit()) return ec;
    }
    return pos;
}

error_code TokenScanner::after_skip() noexcept {
    switch (after_) {
    case After::token:
        expect(Unit::token_type, 1);
        return {};
    case After::value:
        if (unit_ == Unit::plp_chunk) {
            expect(Unit::plp_chunk, 4);
            return {};
        }
        return value_finished();
    case After::feature:
        expect(Unit::feature_id, 1);
        return {};
    }
    return codec_errc::malformed;
}

error_code TokenScanner::on_token_type(std::uint8_t t) noexcept {
    token_ = t;
    switch (t) {
    case token::done:
    case token::done_proc:
    case token::done_in_proc:
        expect(Unit::fixed_body, at_least_7_2(version_) ? 12 : 8);
        return {};
    case token::return_status:
    case token::offset:
        expect(Unit::fixed_body, 4);
        return {};
    case token::env_change:
    case token::info:
    case token::error:
    case token::login_ack:
    case token::order:
    case token::col_info:
    case token::tab_name:
        expect(Unit::length, 2);
        return {};
    case token::sspi:
        saw_auth_or_feature_ = true;
        expect(Unit::length, 2);
        return {};
    case token::fed_auth_info:
        saw_auth_or_feature_ = true;
        expect(Unit::length, 4);
        return {};
    case token::session_state:
        expect(Unit::length, 4);
        return {};
    case token::col_metadata:
        expect(Unit::col_count, 2);
        return {};
    case token::row:
        if (columns_.empty()) return codec_errc::malformed; // a row needs metadata
        nbc_ = false;
        col_ = 0;
        return next_value();
    case token::nbc_row:
        if (columns_.empty()) return codec_errc::malformed;
        nbc_ = true;
        expect(Unit::null_bitmap, (columns_.size() + 7) / 8);
        return {};
    case token::return_value:
        expect(Unit::retval_head, 1);
        return {};
    case token::feature_ext_ack:
        saw_auth_or_feature_ = true;
        expect(Unit::feature_id, 1);
        return {};
    default:
        // ALTMETADATA/ALTROW (COMPUTE BY, gone since SQL Server 2012), DATACLASSIFICATION
        // (never requested) and anything unknown: nothing after them can be found.
        return codec_errc::malformed;
    }
}

error_code TokenScanner::on_done_body() noexcept {
    const bool wide = at_least_7_2(version_);
    done_.token = token_;
    done_.status = static_cast<std::uint16_t>(le_of(buf_, 0, 2));
    done_.cur_cmd = static_cast<std::uint16_t>(le_of(buf_, 2, 2));
    done_.row_count = le_of(buf_, 4, wide ? 8 : 4);
    if (done_.status & (done_status::error | done_status::srv_error)) done_error_ = true;
    if (done_.status & done_status::attn) attn_ = true;
    if (token_ == token::done_proc) ++procs_done_;
    bool end;
    if (want_attn_) {
        end = token_ == token::done && (done_.status & done_status::attn);
    } else {
        end = token_ != token::done_in_proc && !(done_.status & done_status::more);
    }
    if (end) {
        state_ = State::done;
        return {};
    }
    expect(Unit::token_type, 1);
    return {};
}

error_code TokenScanner::on_parsed_body() noexcept {
    wire::Reader r{buf_};
    switch (token_) {
    case token::env_change: {
        EnvChange e;
        e.offset = token_start_;
        e.size = 3 + buf_.size();
        auto ok = read_env_change(r, e);
        if (!ok) return ok.error();
        if (!r.empty()) return codec_errc::malformed;
        env_.push_back(std::move(e));
        break;
    }
    case token::info:
    case token::error: {
        auto m = read_server_message(r, version_);
        if (!m) return m.error();
        if (!r.empty()) return codec_errc::malformed;
        if (token_ == token::info) {
            ++info_count_;
        } else {
            ++error_count_;
            if (!first_error_) first_error_ = std::move(*m);
        }
        break;
    }
    case token::login_ack: {
        LoginAck ack;
        auto iface = r.u8();
        if (!iface) return iface.error();
        ack.interface = *iface;
        auto version = r.be(4);
        if (!version) return version.error();
        ack.tds_version = static_cast<std::uint32_t>(*version);
        auto name = r.b_varchar();
        if (!name) return name.error();
        ack.prog_name = utf16le_to_utf8(*name);
        auto prog = r.bytes(4);
        if (!prog) return prog.error();
        std::copy(prog->begin(), prog->end(), ack.prog_version.begin());
        if (!r.empty()) return codec_errc::malformed;
        // The rest of the login reply is in the version the server chose.
        if ((ack.tds_version >> 24) >= 0x70) version_ = ack.tds_version;
        login_ack_ = std::move(ack);
        break;
    }
    default:
        return codec_errc::malformed;
    }
    expect(Unit::token_type, 1);
    return {};
}

error_code TokenScanner::next_value() noexcept {
    while (col_ < columns_.size()) {
        if (nbc_ && (nulls_[col_ / 8] >> (col_ % 8)) & 1) {
            ++col_; // NULL: no bytes at all
            continue;
        }
        return begin_value(columns_[col_]);
    }
    ++rows_;
    expect(Unit::token_type, 1);
    return {};
}

error_code TokenScanner::begin_value(const TypeInfo& t) noexcept {
    capture_ok_ = false;
    capture_len_ = 0;
    if (in_retval_) retval_.is_null = false;
    switch (t.format) {
    case ValueFormat::fixed:
        if (in_retval_) {
            retval_.is_null = t.type == data_type::null;
            capture_ok_ = t.length <= sizeof capture_;
            retval_.value_offset = offset_;
        }
        unit_ = Unit::value_prefix;
        skip_then(t.length, After::value);
        return {};
    case ValueFormat::byte_len:
    case ValueFormat::text_ptr:
        expect(Unit::value_prefix, 1);
        return {};
    case ValueFormat::ushort_len:
        expect(Unit::value_prefix, 2);
        return {};
    case ValueFormat::long_len:
        expect(Unit::value_prefix, 4);
        return {};
    case ValueFormat::plp:
        expect(Unit::value_prefix, 8);
        return {};
    }
    return codec_errc::malformed;
}

error_code TokenScanner::value_finished() noexcept {
    if (in_retval_) {
        in_retval_ = false;
        if (!retval_.is_null && capture_ok_) {
            retval_.int_value =
                value_as_int(retval_.type, ValueView{false, {capture_, capture_len_}});
            if (retval_.int_value) retval_.value_size = capture_len_;
        }
        if (!retval_.value_size) retval_.value_offset = 0;
        retval_.call = procs_done_;
        return_values_.push_back(std::move(retval_));
        capture_ok_ = false;
        expect(Unit::token_type, 1);
        return {};
    }
    ++col_;
    return next_value();
}

error_code TokenScanner::on_unit() noexcept {
    switch (unit_) {
    case Unit::token_type:
        token_start_ = offset_ - 1;
        return on_token_type(buf_[0]);
    case Unit::fixed_body:
        if (token_ == token::return_status) {
            return_status_ = static_cast<std::int32_t>(le_of(buf_, 0, 4));
        } else if (token_ != token::offset) {
            return on_done_body();
        }
        expect(Unit::token_type, 1);
        return {};
    case Unit::length: {
        const std::uint64_t len = le_of(buf_, 0, buf_.size());
        if (is_parsed(token_)) {
            if (len == 0) return codec_errc::malformed;
            if (len > max_buffered) return codec_errc::oversized;
            expect(Unit::parsed_body, static_cast<std::size_t>(len));
            return {};
        }
        skip_then(len, After::token);
        return {};
    }
    case Unit::parsed_body:
        return on_parsed_body();
    case Unit::col_count: {
        const auto n = static_cast<std::size_t>(le_of(buf_, 0, 2));
        if (n == 0xFFFF) { // NoMetaData: the columns of an earlier COLMETADATA apply
            expect(Unit::token_type, 1);
            return {};
        }
        pending_columns_.clear();
        columns_left_ = n;
        if (n == 0) {
            columns_.clear();
            expect(Unit::token_type, 1);
            return {};
        }
        expect(Unit::column, 1);
        return {};
    }
    case Unit::column:
    case Unit::retval_head: {
        // Parsed again from the start each time more bytes are needed; the reader says how
        // many, so that happens once per length field, not once per byte.
        wire::Reader r{buf_};
        const bool wide = at_least_7_2(version_);
        ReturnValue rv;
        auto parse = [&]() -> result<TypeInfo> {
            if (unit_ == Unit::retval_head) {
                auto ordinal = r.u16();
                if (!ordinal) return ordinal.error();
                auto name = r.b_varchar();
                if (!name) return name.error();
                auto status = r.u8();
                if (!status) return status.error();
                rv.ordinal = *ordinal;
                rv.name = utf16le_to_utf8(*name);
                rv.status = *status;
            }
            auto user_type = r.le(wide ? 4 : 2);
            if (!user_type) return user_type.error();
            auto flags = r.u16();
            if (!flags) return flags.error();
            auto t = detail::read_type_info(r, TypeContext::column);
            if (!t) return t.error();
            if (unit_ == Unit::retval_head) return t;
            if (t->format == ValueFormat::text_ptr) {
                // TableName: NumParts and parts from TDS 7.2, one US_VARCHAR before.
                std::size_t parts = 1;
                if (wide) {
                    auto n = r.u8();
                    if (!n) return n.error();
                    parts = *n;
                }
                for (std::size_t i = 0; i < parts; ++i) {
                    auto part = r.us_varchar();
                    if (!part) return part.error();
                }
            }
            auto col_name = r.b_varchar();
            if (!col_name) return col_name.error();
            return t;
        };
        auto t = parse();
        if (!t) {
            if (t.error() != codec_errc::truncated) return t.error();
            if (r.needed() > max_buffered) return codec_errc::oversized;
            need_ = r.needed();
            return {};
        }
        if (r.pos() != buf_.size()) return codec_errc::malformed; // cannot happen; see above
        if (unit_ == Unit::retval_head) {
            rv.type = *t;
            retval_ = std::move(rv);
            in_retval_ = true;
            return begin_value(retval_.type);
        }
        pending_columns_.push_back(*t);
        if (--columns_left_ == 0) {
            columns_.swap(pending_columns_);
            expect(Unit::token_type, 1);
        } else {
            expect(Unit::column, 1);
        }
        return {};
    }
    case Unit::null_bitmap:
        nulls_.assign(buf_.begin(), buf_.end());
        col_ = 0;
        return next_value();
    case Unit::value_prefix: {
        const TypeInfo& t = in_retval_ ? retval_.type : columns_[col_];
        std::uint64_t len = 0;
        bool null = false;
        switch (t.format) {
        case ValueFormat::byte_len:
            len = buf_[0];
            null = len == 0;
            break;
        case ValueFormat::ushort_len:
            len = le_of(buf_, 0, 2);
            null = len == 0xFFFF;
            break;
        case ValueFormat::long_len:
            len = le_of(buf_, 0, 4);
            null = len == 0xFFFFFFFF || (len == 0 && t.type == data_type::ssvariant);
            break;
        case ValueFormat::text_ptr:
            if (buf_.size() == 1) {
                if (buf_[0] == 0) {
                    null = true;
                    break;
                }
                need_ = 1 + buf_[0] + 8 + 4; // TextPtr, Timestamp, length
                return {};
            }
            len = le_of(buf_, buf_.size() - 4, 4);
            break;
        case ValueFormat::plp:
            if (le_of(buf_, 0, 8) == ~std::uint64_t{0}) {
                null = true;
                break;
            }
            expect(Unit::plp_chunk, 4);
            return {};
        case ValueFormat::fixed:
            return codec_errc::malformed; // fixed values have no prefix
        }
        if (null) {
            if (in_retval_) retval_.is_null = true;
            return value_finished();
        }
        capture_ok_ = in_retval_ && len <= sizeof capture_;
        capture_len_ = 0;
        if (in_retval_) retval_.value_offset = offset_;
        skip_then(len, After::value);
        return {};
    }
    case Unit::plp_chunk: {
        const std::uint64_t len = le_of(buf_, 0, 4);
        if (len == 0) return value_finished();
        // The after-skip step sees unit_ == plp_chunk and reads the next chunk length.
        capture_ok_ = false;
        skip_then(len, After::value);
        return {};
    }
    case Unit::feature_id:
        if (buf_[0] == 0xFF) {
            expect(Unit::token_type, 1);
            return {};
        }
        expect(Unit::feature_len, 4);
        return {};
    case Unit::feature_len:
        skip_then(le_of(buf_, 0, 4), After::feature);
        return {};
    }
    return codec_errc::malformed;
}

void PacketTokenScanner::start(std::uint32_t tds_version) noexcept {
    tokens_.start(tds_version);
    state_ = TokenScanner::State::running;
    header_have_ = 0;
    packet_left_ = 0;
    in_packet_ = false;
    eom_ = false;
    want_attn_ = false;
    raw_offset_ = 0;
    packets_.clear();
}

std::optional<std::size_t>
PacketTokenScanner::raw_offset_of(std::size_t payload_offset) const noexcept {
    // The last packet starting at or before it (empty packets share a payload offset).
    for (auto it = packets_.rbegin(); it != packets_.rend(); ++it) {
        if (it->payload <= payload_offset) return it->raw + (payload_offset - it->payload);
    }
    return std::nullopt;
}

void PacketTokenScanner::forget_packets() noexcept {
    if (packets_.size() > 1) packets_.erase(packets_.begin(), packets_.end() - 1);
}

std::optional<CleanCut> PacketTokenScanner::clean_cut() const noexcept {
    if (state_ != TokenScanner::State::running || in_packet_ || header_have_ != 0 ||
        !tokens_.between_tokens())
        return std::nullopt;
    // header_ still holds the last packet's header once its payload is consumed.
    if (raw_offset_ == 0 || eom_) return CleanCut{1, true};
    return CleanCut{static_cast<std::uint8_t>(header_[6] + 1), false};
}

void write_cut_end(const CleanCut& cut, const ServerMessage& m, std::uint32_t tds_version,
                   std::size_t packet_size, std::vector<std::uint8_t>& out) {
    std::vector<std::uint8_t> payload;
    write_error_response(m, tds_version, payload);
    write_message(PacketType::tabular_result, 0, payload, packet_size, cut.packet_id, out);
}

void PacketTokenScanner::expect_attention_ack() noexcept {
    tokens_.expect_attention_ack();
    want_attn_ = true;
}

result<std::size_t> PacketTokenScanner::feed(Bytes in) noexcept {
    std::size_t pos = 0;
    while (state_ == TokenScanner::State::running && pos < in.size()) {
        if (!in_packet_) {
            const std::size_t n = std::min(header_size - header_have_, in.size() - pos);
            std::memcpy(header_ + header_have_, in.data() + pos, n);
            header_have_ += n;
            pos += n;
            if (header_have_ < header_size) break;
            auto h = parse_header(Bytes{header_, header_size}, max_packet_);
            if (!h) return h.error();
            if (h->type != static_cast<std::uint8_t>(PacketType::tabular_result))
                return codec_errc::unexpected_message;
            packet_left_ = h->length - header_size;
            eom_ = h->status & packet_status::eom;
            in_packet_ = true;
            packets_.push_back({tokens_.offset(), raw_offset_ + pos});
        }
        if (packet_left_ > 0) {
            if (tokens_.state() == TokenScanner::State::done) return codec_errc::trailing_bytes;
            const std::size_t n = std::min(packet_left_, in.size() - pos);
            auto used = tokens_.feed(in.subspan(pos, n));
            if (!used) return used.error();
            if (*used < n) return codec_errc::trailing_bytes;
            pos += n;
            packet_left_ -= n;
            if (packet_left_ > 0) break;
        }
        in_packet_ = false;
        header_have_ = 0;
        if (tokens_.state() == TokenScanner::State::done) {
            if (!eom_) return codec_errc::trailing_bytes; // more packets of this message follow
            state_ = TokenScanner::State::done;
        } else if (eom_ && !want_attn_) {
            return codec_errc::malformed; // the message ended, the response did not
        }
    }
    raw_offset_ += pos;
    return pos;
}

result<void> scan_response(Bytes payload, TokenScanner& scanner, std::uint32_t tds_version) {
    scanner.start(tds_version);
    auto used = scanner.feed(payload);
    if (!used) return used.error();
    if (scanner.state() != TokenScanner::State::done) return codec_errc::truncated;
    if (*used < payload.size()) return codec_errc::trailing_bytes;
    return {};
}

result<void> strip_routing(Bytes payload, std::uint32_t tds_version,
                           std::vector<std::uint8_t>& out) {
    TokenScanner scanner;
    auto ok = scan_response(payload, scanner, tds_version);
    if (!ok) return ok.error();
    std::size_t pos = 0;
    for (const auto& e : scanner.env_changes()) {
        if (e.type != env_type::routing && e.type != env_type::enhanced_routing) continue;
        out.insert(out.end(), payload.begin() + static_cast<std::ptrdiff_t>(pos),
                   payload.begin() + static_cast<std::ptrdiff_t>(e.offset));
        pos = e.offset + e.size;
    }
    out.insert(out.end(), payload.begin() + static_cast<std::ptrdiff_t>(pos), payload.end());
    return {};
}

} // namespace sluice::protocol::tds
