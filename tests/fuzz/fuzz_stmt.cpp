// Fuzz target: prepared-statement commands and the commands the proxy reads itself
// (protocol/mysql/stmt.cpp, command.cpp). The first input byte is a selector (the parameter
// count for COM_STMT_EXECUTE, the EOF setting for result sets); the rest is fed to every
// parser as one payload, and to first_text_value as packet payloads, each preceded by a
// 2-byte little-endian length. Whatever parses must come back equal through its writer.

#include "sluice/protocol/mysql/command.hpp"
#include "sluice/protocol/mysql/stmt.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::protocol::mysql;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

bool same(Bytes a, Bytes b) { return std::ranges::equal(a, b); }

void statement_ids(Bytes payload) {
    auto id = stmt_id(payload);
    check(id.has_value() == (payload.size() >= 5));
    if (!id) return;
    std::vector<std::uint8_t> copy(payload.begin(), payload.end());
    set_stmt_id(copy, *id);
    check(same(copy, payload));
    set_stmt_id(copy, ~*id);
    check(stmt_id(copy) == ~*id);
    check(same(Bytes{copy}.first(1), payload.first(1)) &&
          same(Bytes{copy}.subspan(5), payload.subspan(5)));
    std::vector<std::uint8_t> close, reset;
    write_stmt_close(*id, close);
    write_stmt_reset(*id, reset);
    check(close.size() == 5 && stmt_id(close) == id);
    check(reset.size() == 5 && stmt_id(reset) == id);
}

void prepare_ok(Bytes payload) {
    auto ok = parse_prepare_ok(payload);
    if (!ok) return;
    check(payload.size() == 9 || payload.size() == 12);
    std::vector<std::uint8_t> again;
    write_prepare_ok(*ok, again);
    check(again.size() == 12);
    // The 12-byte form comes back byte for byte; the 9-byte form gains filler and warnings.
    check(same(Bytes{again}.first(payload.size()), payload));
    auto back = parse_prepare_ok(again);
    check(back && *back == *ok);
    set_prepare_ok_id(again, ok->statement_id + 1);
    auto moved = parse_prepare_ok(again);
    check(moved && moved->statement_id == ok->statement_id + 1 && moved->columns == ok->columns &&
          moved->params == ok->params && moved->warnings == ok->warnings);
}

void execute(Bytes payload, std::uint16_t params) {
    auto e = parse_execute(payload, params);
    if (!e) return;
    check(payload.size() >= 10);
    check(stmt_id(payload) == e->statement_id);
    check(!e->new_params_bound || params > 0);
    check(e->types.empty() || e->types.size() == std::size_t{params} * 2);
    std::vector<std::uint8_t> again;
    write_execute(*e, again);
    check(same(again, payload));
    auto back = parse_execute(again, params);
    check(back && *back == *e);
    if (params == 0) return;

    const std::size_t flag_at = 10 + (std::size_t{params} + 7) / 8;
    if (payload.size() <= flag_at) return;
    if (!e->new_params_bound) {
        // Types added for a backend that has not seen them must read back as bound.
        std::vector<std::uint8_t> types(std::size_t{params} * 2);
        for (std::size_t i = 0; i < types.size(); ++i)
            types[i] = payload[i % payload.size()];
        std::vector<std::uint8_t> with;
        write_execute_with_types(payload, params, types, with);
        check(with.size() == payload.size() + types.size());
        auto bound = parse_execute(with, params);
        check(bound && bound->new_params_bound && same(bound->types, types));
        check(bound->statement_id == e->statement_id && bound->flags == e->flags &&
              bound->iteration_count == e->iteration_count);
        check(same(Bytes{with}.subspan(flag_at + 1 + types.size()), payload.subspan(flag_at + 1)));
    } else if (!e->types.empty()) {
        // The same request without its types, given them back, is the request again.
        std::vector<std::uint8_t> bare(payload.begin(), payload.begin() + flag_at);
        bare.push_back(0);
        bare.insert(bare.end(), payload.begin() + flag_at + 1 + e->types.size(), payload.end());
        auto unbound = parse_execute(bare, params);
        check(unbound && !unbound->new_params_bound && unbound->types.empty());
        std::vector<std::uint8_t> with;
        write_execute_with_types(bare, params, e->types, with);
        check(same(with, payload));
    }
}

void long_data(Bytes payload) {
    auto d = parse_long_data(payload);
    if (!d) return;
    check(stmt_id(payload) == d->statement_id);
    std::vector<std::uint8_t> again;
    write_long_data(*d, again);
    check(same(again, payload));
    auto back = parse_long_data(again);
    check(back && *back == *d);
}

void fetch(Bytes payload) {
    auto f = parse_stmt_fetch(payload);
    if (!f) return;
    check(stmt_id(payload) == f->statement_id);
    std::vector<std::uint8_t> again;
    write_stmt_fetch(f->statement_id, f->rows, again);
    check(same(again, payload));
    auto back = parse_stmt_fetch(again);
    check(back && *back == *f);
}

void process_kill(Bytes payload) {
    auto id = parse_process_kill(payload);
    if (!id) return;
    std::vector<std::uint8_t> again;
    write_process_kill(*id, again);
    check(same(again, payload.first(5)));
    check(parse_process_kill(again) == id);
}

// The shortcut src/mysql_routing.cpp used before first_text_value: right for a one-byte
// column count and a one-byte value length, which is where the two must agree.
std::optional<std::string> shortcut(const std::vector<std::vector<std::uint8_t>>& packets,
                                    bool deprecate_eof) {
    if (packets.empty() || packets[0].empty()) return std::nullopt;
    const std::size_t columns = packets[0][0];
    const std::size_t row = 1 + columns + (deprecate_eof ? 0 : 1);
    if (row >= packets.size()) return std::nullopt;
    const auto& p = packets[row];
    if (p.empty() || p[0] >= 0xFB || p.size() < 1u + p[0]) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(p.data()) + 1, p[0]);
}

void text_value(Bytes in, bool deprecate_eof) {
    std::vector<std::vector<std::uint8_t>> payloads;
    while (in.size() >= 2) {
        const std::size_t len = std::min<std::size_t>(in[0] | (in[1] << 8), in.size() - 2);
        payloads.emplace_back(in.begin() + 2, in.begin() + 2 + static_cast<std::ptrdiff_t>(len));
        in = in.subspan(2 + len);
    }
    auto value = first_text_value(payloads, deprecate_eof);
    if (!value) return;
    check(payloads.size() >= 2);
    // Where the count and the value's length are one byte each (a length may also be sent in
    // a longer form than it needs, which the shortcut did not read).
    if (payloads[0].size() != 1) return;
    const std::size_t row = 1 + payloads[0][0] + (deprecate_eof ? 0 : 1);
    check(row < payloads.size() && !payloads[row].empty());
    if (payloads[row][0] < 0xFB) check(shortcut(payloads, deprecate_eof) == value);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t selector = data[0];
    const Bytes payload{data + 1, size - 1};
    statement_ids(payload);
    prepare_ok(payload);
    execute(payload, selector);
    execute(payload, static_cast<std::uint16_t>(selector * 257u));
    long_data(payload);
    fetch(payload);
    process_kill(payload);
    text_value(payload, (selector & 1) != 0);
    return 0;
}
