#include "sluice/protocol/tds/request.hpp"

#include "sluice/protocol/tds/text.hpp"
#include "types.hpp"

#include <algorithm>
#include <cctype>

namespace sluice::protocol::tds {

namespace {

constexpr std::size_t tx_header_size = 18; // HeaderLength, HeaderType, descriptor, count

// Where the transaction descriptor header starts inside ALL_HEADERS; 0 when there is none.
struct HeaderWalk {
    AllHeaders headers;
    std::size_t tx_at = 0;
};

result<std::optional<HeaderWalk>> walk_all_headers(Bytes payload) noexcept {
    if (payload.size() < 4) return std::optional<HeaderWalk>{};
    const std::size_t total = std::size_t{payload[0]} | (std::size_t{payload[1]} << 8) |
                              (std::size_t{payload[2]} << 16) | (std::size_t{payload[3]} << 24);
    if (total < 10 || total > payload.size()) return std::optional<HeaderWalk>{};
    HeaderWalk w;
    w.headers.size = total;
    wire::Reader r{payload.first(total)};
    (void)r.skip(4);
    while (!r.empty()) {
        const std::size_t at = r.pos();
        auto len = r.u32();
        if (!len) return len.error();
        auto type = r.u16();
        if (!type) return type.error();
        if (*len < 6 || *len > total - at) return codec_errc::malformed;
        auto data = r.bytes(*len - 6);
        if (!data) return data.error();
        wire::Reader d{*data};
        switch (*type) {
        case header_type::query_notification:
            w.headers.query_notification = true;
            break;
        case header_type::transaction_descriptor: {
            if (*len != tx_header_size || w.headers.transaction_descriptor)
                return codec_errc::malformed;
            w.headers.transaction_descriptor = *d.u64();
            w.headers.outstanding_requests = *d.u32();
            w.tx_at = at;
            break;
        }
        case header_type::trace_activity:
            w.headers.trace_activity = true;
            break;
        default:
            return codec_errc::malformed;
        }
    }
    return std::optional<HeaderWalk>{w};
}

void put_tx_header(std::uint64_t descriptor, std::uint32_t outstanding,
                   std::vector<std::uint8_t>& out) {
    wire::put_le(out, tx_header_size, 4);
    wire::put_le(out, header_type::transaction_descriptor, 2);
    wire::put_le(out, descriptor, 8);
    wire::put_le(out, outstanding, 4);
}

// The ALL_HEADERS in front of a request, and the reader moved past it.
result<std::optional<AllHeaders>> skip_all_headers(Bytes payload, wire::Reader& r) {
    auto h = parse_all_headers(payload);
    if (!h) return h.error();
    if (*h) (void)r.skip((*h)->size);
    return h;
}

result<RpcParam> read_param(wire::Reader& r) {
    RpcParam p;
    auto name = r.b_varchar();
    if (!name) return name.error();
    p.name = utf16le_to_utf8(*name);
    auto status = r.u8();
    if (!status) return status.error();
    p.status = *status;
    if (p.status & param_status::encrypted) return codec_errc::malformed;
    auto type = detail::read_type_info(r, TypeContext::rpc);
    if (!type) return type.error();
    p.type = *type;
    auto value = detail::read_value(r, p.type, TypeContext::rpc);
    if (!value) return value.error();
    p.value = *value;
    return p;
}

bool is_separator(std::uint8_t b) noexcept {
    return b == rpc_separator::batch_7_1 || b == rpc_separator::batch ||
           b == rpc_separator::no_exec;
}

result<std::string> read_b_varchar_text(wire::Reader& r) {
    auto b = r.b_varchar();
    if (!b) return b.error();
    return utf16le_to_utf8(*b);
}

} // namespace

result<std::optional<AllHeaders>> parse_all_headers(Bytes payload) {
    auto w = walk_all_headers(payload);
    if (!w) return w.error();
    if (!*w) return std::optional<AllHeaders>{};
    return std::optional<AllHeaders>{(*w)->headers};
}

void write_all_headers(std::uint64_t descriptor, std::uint32_t outstanding_requests,
                       std::vector<std::uint8_t>& out) {
    wire::put_le(out, 4 + tx_header_size, 4);
    put_tx_header(descriptor, outstanding_requests, out);
}

result<void> rewrite_transaction_descriptor(Bytes payload, std::uint64_t descriptor,
                                            std::uint32_t outstanding_requests,
                                            std::vector<std::uint8_t>& out) {
    auto w = walk_all_headers(payload);
    if (!w) return w.error();
    if (!*w) {
        write_all_headers(descriptor, outstanding_requests, out);
        wire::put_bytes(out, payload);
        return {};
    }
    const HeaderWalk& h = **w;
    if (h.headers.transaction_descriptor) {
        const std::size_t at = out.size();
        wire::put_bytes(out, payload);
        wire::set_le(out, at + h.tx_at + 6, descriptor, 8);
        return {};
    }
    // No descriptor header: add one at the end of the block.
    const std::size_t at = out.size();
    wire::put_bytes(out, payload.first(h.headers.size));
    wire::set_le(out, at, h.headers.size + tx_header_size, 4);
    put_tx_header(descriptor, outstanding_requests, out);
    wire::put_bytes(out, payload.subspan(h.headers.size));
    return {};
}

result<bool> patch_transaction_descriptor(std::span<std::uint8_t> payload,
                                          std::uint64_t descriptor) noexcept {
    auto w = walk_all_headers(payload);
    // result<bool> is built explicitly: an error_code converts to bool as well.
    if (!w) return result<bool>{boost::system::in_place_error, w.error()};
    if (!*w || !(*w)->headers.transaction_descriptor) return false;
    const std::size_t at = (*w)->tx_at + 6;
    for (std::size_t i = 0; i < 8; ++i)
        payload[at + i] = static_cast<std::uint8_t>(descriptor >> (8 * i));
    return true;
}

result<SqlBatch> parse_sql_batch(Bytes payload) {
    wire::Reader r{payload};
    SqlBatch b;
    auto h = skip_all_headers(payload, r);
    if (!h) return h.error();
    b.headers = *h;
    if (r.remaining() % 2 != 0) return codec_errc::malformed;
    b.text = utf16le_to_utf8(*r.bytes(r.remaining()));
    return b;
}

void write_sql_batch(std::string_view sql, std::optional<std::uint64_t> transaction_descriptor,
                     std::vector<std::uint8_t>& out) {
    if (transaction_descriptor) write_all_headers(*transaction_descriptor, 1, out);
    append_utf16le(sql, out);
}

std::uint16_t well_known_proc_id(std::string_view name) noexcept {
    static constexpr std::pair<std::string_view, std::uint16_t> names[] = {
        {"sp_cursor", proc_id::cursor},
        {"sp_cursoropen", proc_id::cursor_open},
        {"sp_cursorprepare", proc_id::cursor_prepare},
        {"sp_cursorexecute", proc_id::cursor_execute},
        {"sp_cursorprepexec", proc_id::cursor_prep_exec},
        {"sp_cursorunprepare", proc_id::cursor_unprepare},
        {"sp_cursorfetch", proc_id::cursor_fetch},
        {"sp_cursoroption", proc_id::cursor_option},
        {"sp_cursorclose", proc_id::cursor_close},
        {"sp_executesql", proc_id::execute_sql},
        {"sp_prepare", proc_id::prepare},
        {"sp_execute", proc_id::execute},
        {"sp_prepexec", proc_id::prep_exec},
        {"sp_prepexecrpc", proc_id::prep_exec_rpc},
        {"sp_unprepare", proc_id::unprepare},
    };
    // "sys.sp_executesql", "master.sys.sp_executesql", "[sp_executesql]": the last part counts.
    if (const auto dot = name.rfind('.'); dot != std::string_view::npos)
        name = name.substr(dot + 1);
    if (name.size() >= 2 && name.front() == '[' && name.back() == ']')
        name = name.substr(1, name.size() - 2);
    if (name.size() > 32) return 0;
    char buf[32];
    for (std::size_t i = 0; i < name.size(); ++i)
        buf[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
    const std::string_view key{buf, name.size()};
    for (const auto& [n, id] : names)
        if (n == key) return id;
    return 0;
}

std::uint16_t RpcCall::effective_proc_id() const noexcept {
    return proc_id != 0 ? proc_id : well_known_proc_id(proc_name);
}

std::optional<std::string> RpcCall::statement_text() const {
    std::size_t index = 0;
    switch (effective_proc_id()) {
    case proc_id::execute_sql:
        index = 0; // @stmt, @params, values...
        break;
    case proc_id::cursor_open:
        index = 1; // @cursor OUTPUT, @stmt, ...
        break;
    case proc_id::prepare:
    case proc_id::prep_exec:
    case proc_id::cursor_prepare:
        index = 2; // @handle OUTPUT, @params, @stmt, ...
        break;
    case proc_id::cursor_prep_exec:
        index = 3; // @prepared_handle OUTPUT, @cursor OUTPUT, @params, @stmt, ...
        break;
    default:
        return std::nullopt;
    }
    if (params.size() <= index) return std::nullopt;
    return value_as_text(params[index].type, params[index].value);
}

std::optional<std::int64_t> RpcCall::handle() const {
    switch (effective_proc_id()) {
    case proc_id::execute:
    case proc_id::unprepare:
    case proc_id::cursor:
    case proc_id::cursor_execute:
    case proc_id::cursor_unprepare:
    case proc_id::cursor_fetch:
    case proc_id::cursor_option:
    case proc_id::cursor_close:
        break;
    default:
        return std::nullopt;
    }
    if (params.empty()) return std::nullopt;
    return value_as_int(params[0].type, params[0].value);
}

std::uint8_t RpcCall::handle_outputs() const noexcept {
    switch (effective_proc_id()) {
    case proc_id::prepare:
    case proc_id::prep_exec:
    case proc_id::prep_exec_rpc:
    case proc_id::cursor_prepare:
    case proc_id::cursor_open:
        return 0x01;
    case proc_id::cursor_execute:
        return 0x02;
    case proc_id::cursor_prep_exec:
        return 0x03;
    default:
        return 0;
    }
}

result<RpcRequest> parse_rpc(Bytes payload) {
    wire::Reader r{payload};
    RpcRequest req;
    auto h = skip_all_headers(payload, r);
    if (!h) return h.error();
    req.headers = *h;
    for (;;) {
        RpcCall call;
        auto name_len = r.u16();
        if (!name_len) return name_len.error();
        if (*name_len == 0xFFFF) {
            auto id = r.u16();
            if (!id) return id.error();
            call.proc_id = *id;
        } else {
            auto name = r.bytes(std::size_t{*name_len} * 2);
            if (!name) return name.error();
            call.proc_name = utf16le_to_utf8(*name);
        }
        auto flags = r.u16();
        if (!flags) return flags.error();
        call.option_flags = *flags;
        bool more = false;
        while (!r.empty()) {
            auto peek = r.between(r.pos(), r.pos() + 1);
            if (is_separator(peek[0])) {
                call.separator = peek[0];
                (void)r.skip(1);
                more = !r.empty(); // a final separator ends the request
                break;
            }
            auto p = read_param(r);
            if (!p) return p.error();
            call.params.push_back(std::move(*p));
        }
        req.calls.push_back(std::move(call));
        if (!more) return req;
    }
}

result<TmRequest> parse_tm_request(Bytes payload) {
    wire::Reader r{payload};
    TmRequest tm;
    auto h = skip_all_headers(payload, r);
    if (!h) return h.error();
    tm.headers = *h;
    auto type = r.u16();
    if (!type) return type.error();
    tm.type = static_cast<TmRequestType>(*type);
    switch (tm.type) {
    case TmRequestType::get_dtc_address: {
        auto zero = r.u16(); // RequestPayload: a zero USHORT
        if (!zero) return zero.error();
        break;
    }
    case TmRequestType::propagate_xact: {
        auto cookie = r.us_varbyte();
        if (!cookie) return cookie.error();
        tm.propagate_cookie = *cookie;
        break;
    }
    case TmRequestType::begin_xact: {
        auto iso = r.u8();
        if (!iso) return iso.error();
        tm.isolation_level = *iso;
        auto name = read_b_varchar_text(r);
        if (!name) return name.error();
        tm.name = std::move(*name);
        break;
    }
    case TmRequestType::promote_xact:
        break;
    case TmRequestType::commit_xact:
    case TmRequestType::rollback_xact: {
        auto name = read_b_varchar_text(r);
        if (!name) return name.error();
        tm.name = std::move(*name);
        auto flags = r.u8();
        if (!flags) return flags.error();
        tm.flags = *flags;
        if (tm.flags & 0x01) { // fBeginXact: a new transaction starts at once
            auto iso = r.u8();
            if (!iso) return iso.error();
            tm.new_isolation_level = *iso;
            auto new_name = read_b_varchar_text(r);
            if (!new_name) return new_name.error();
            tm.new_name = std::move(*new_name);
        }
        break;
    }
    case TmRequestType::save_xact: {
        auto name = read_b_varchar_text(r);
        if (!name) return name.error();
        tm.name = std::move(*name);
        break;
    }
    default:
        return codec_errc::malformed;
    }
    if (!r.empty()) return codec_errc::trailing_bytes;
    return tm;
}

result<void> parse_attention(Bytes payload) noexcept {
    if (!payload.empty()) return codec_errc::trailing_bytes;
    return {};
}

} // namespace sluice::protocol::tds
