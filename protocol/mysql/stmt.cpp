#include "sluice/protocol/mysql/stmt.hpp"

#include "sluice/protocol/mysql/constants.hpp"
#include "wire.hpp"

#include <algorithm>
#include <cassert>

namespace sluice::protocol::mysql {

using wire::Reader;

namespace {

constexpr auto cmd(Command c) noexcept { return static_cast<std::uint8_t>(c); }

// Offset of the new_params_bound_flag in a COM_STMT_EXECUTE: the fixed part (command,
// statement_id, flags, iteration_count) and the null bitmap come before it.
constexpr std::size_t execute_fixed_size = 10;
constexpr std::size_t bound_flag_at(std::uint16_t params) noexcept {
    return execute_fixed_size + (std::size_t{params} + 7) / 8;
}

void put_u32_at(std::span<std::uint8_t> p, std::size_t at, std::uint32_t v) noexcept {
    for (std::size_t i = 0; i < 4; ++i)
        p[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

bool same_bytes(Bytes a, Bytes b) noexcept { return std::ranges::equal(a, b); }

} // namespace

// ---- statement id of COM_STMT_* commands ----

std::optional<std::uint32_t> stmt_id(Bytes payload) noexcept {
    if (payload.size() < 5) return std::nullopt;
    Reader r{payload.subspan(1)};
    return *r.u32(); // four bytes are there
}

void set_stmt_id(std::span<std::uint8_t> payload, std::uint32_t id) noexcept {
    assert(payload.size() >= 5);
    put_u32_at(payload, 1, id);
}

// ---- COM_STMT_PREPARE Response (COM_STMT_PREPARE_OK) ----

result<PrepareOk> parse_prepare_ok(Bytes payload) noexcept {
    Reader r{payload};
    auto header = r.u8();
    if (!header) return header.error();
    if (*header != 0x00) return codec_errc::unexpected_message;
    PrepareOk ok;
    auto id = r.u32();
    if (!id) return id.error();
    ok.statement_id = *id;
    auto columns = r.u16();
    if (!columns) return columns.error();
    ok.columns = *columns;
    auto params = r.u16();
    if (!params) return params.error();
    ok.params = *params;
    // The oldest servers end here; every current one adds the filler and warning count.
    if (r.empty()) return ok;
    auto filler = r.u8();
    if (!filler) return filler.error();
    auto warnings = r.u16();
    if (!warnings) return warnings.error();
    if (*filler != 0x00) return codec_errc::malformed;
    ok.warnings = *warnings;
    if (!r.empty()) return codec_errc::trailing_bytes;
    return ok;
}

void write_prepare_ok(const PrepareOk& ok, std::vector<std::uint8_t>& out) {
    out.push_back(0x00);
    wire::put_fixed(out, ok.statement_id, 4);
    wire::put_fixed(out, ok.columns, 2);
    wire::put_fixed(out, ok.params, 2);
    out.push_back(0x00);
    wire::put_fixed(out, ok.warnings, 2);
}

void set_prepare_ok_id(std::span<std::uint8_t> payload, std::uint32_t id) noexcept {
    assert(payload.size() >= 5);
    put_u32_at(payload, 1, id);
}

// ---- COM_STMT_EXECUTE ----

bool operator==(const ExecuteRequest& a, const ExecuteRequest& b) noexcept {
    return a.statement_id == b.statement_id && a.flags == b.flags &&
           a.iteration_count == b.iteration_count && a.has_bound_flag == b.has_bound_flag &&
           a.new_params_bound == b.new_params_bound && same_bytes(a.types, b.types) &&
           same_bytes(a.params_block, b.params_block);
}

result<ExecuteRequest> parse_execute(Bytes payload, std::uint16_t params) noexcept {
    if (!payload.empty() && payload[0] != cmd(Command::stmt_execute))
        return codec_errc::unexpected_message;
    if (payload.size() < execute_fixed_size) return codec_errc::truncated;
    Reader r{payload.subspan(1)};
    ExecuteRequest e;
    // The fixed part is all there (checked above), so these reads cannot fail.
    e.statement_id = *r.u32();
    e.flags = *r.u8();
    e.iteration_count = *r.u32();
    e.params_block = r.rest();
    if (params == 0) return e;
    // A server reads no further than it needs: a request that ends before the flag, or in
    // the middle of its types, is still run (with the types it had), so it is accepted here.
    const std::size_t flag_at = bound_flag_at(params);
    if (payload.size() <= flag_at) return e;
    e.has_bound_flag = true;
    if (payload[flag_at] != 1) return e;
    e.new_params_bound = true;
    const std::size_t types_size = std::size_t{params} * 2;
    if (payload.size() - (flag_at + 1) >= types_size)
        e.types = payload.subspan(flag_at + 1, types_size);
    return e;
}

void write_execute(const ExecuteRequest& e, std::vector<std::uint8_t>& out) {
    out.push_back(cmd(Command::stmt_execute));
    wire::put_fixed(out, e.statement_id, 4);
    out.push_back(e.flags);
    wire::put_fixed(out, e.iteration_count, 4);
    wire::put_bytes(out, e.params_block);
}

void write_execute_with_types(Bytes request, std::uint16_t params, Bytes types,
                              std::vector<std::uint8_t>& out) {
    const std::size_t flag_at = bound_flag_at(params);
    assert(params > 0);
    assert(request.size() > flag_at);
    // Types already bound in this request would be sent twice.
    assert(request[flag_at] != 1);
    assert(types.size() == std::size_t{params} * 2);
    out.reserve(out.size() + request.size() + types.size());
    wire::put_bytes(out, request.first(flag_at));
    out.push_back(1);
    wire::put_bytes(out, types);
    wire::put_bytes(out, request.subspan(flag_at + 1));
}

// ---- COM_STMT_SEND_LONG_DATA ----

bool operator==(const LongData& a, const LongData& b) noexcept {
    return a.statement_id == b.statement_id && a.param_id == b.param_id &&
           same_bytes(a.data, b.data);
}

result<LongData> parse_long_data(Bytes payload) noexcept {
    Reader r{payload};
    auto command = r.u8();
    if (!command) return command.error();
    if (*command != cmd(Command::stmt_send_long_data)) return codec_errc::unexpected_message;
    LongData d;
    auto id = r.u32();
    if (!id) return id.error();
    d.statement_id = *id;
    auto param = r.u16();
    if (!param) return param.error();
    d.param_id = *param;
    d.data = r.rest();
    return d;
}

void write_long_data(const LongData& d, std::vector<std::uint8_t>& out) {
    out.push_back(cmd(Command::stmt_send_long_data));
    wire::put_fixed(out, d.statement_id, 4);
    wire::put_fixed(out, d.param_id, 2);
    wire::put_bytes(out, d.data);
}

// ---- COM_STMT_FETCH, COM_STMT_CLOSE, COM_STMT_RESET ----

result<StmtFetch> parse_stmt_fetch(Bytes payload) noexcept {
    Reader r{payload};
    auto command = r.u8();
    if (!command) return command.error();
    if (*command != cmd(Command::stmt_fetch)) return codec_errc::unexpected_message;
    StmtFetch f;
    auto id = r.u32();
    if (!id) return id.error();
    f.statement_id = *id;
    auto rows = r.u32();
    if (!rows) return rows.error();
    f.rows = *rows;
    if (!r.empty()) return codec_errc::trailing_bytes;
    return f;
}

void write_stmt_fetch(std::uint32_t id, std::uint32_t rows, std::vector<std::uint8_t>& out) {
    out.push_back(cmd(Command::stmt_fetch));
    wire::put_fixed(out, id, 4);
    wire::put_fixed(out, rows, 4);
}

void write_stmt_close(std::uint32_t id, std::vector<std::uint8_t>& out) {
    out.push_back(cmd(Command::stmt_close));
    wire::put_fixed(out, id, 4);
}

void write_stmt_reset(std::uint32_t id, std::vector<std::uint8_t>& out) {
    out.push_back(cmd(Command::stmt_reset));
    wire::put_fixed(out, id, 4);
}

} // namespace sluice::protocol::mysql
