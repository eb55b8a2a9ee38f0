#include "sluice/protocol/tds/prelogin.hpp"

#include "wire.hpp"

#include <algorithm>

namespace sluice::protocol::tds {

namespace {

// The data size each known option must have; -1: any (INSTOPT is a NUL-terminated string).
int expected_size(std::uint8_t token, std::size_t have) noexcept {
    switch (static_cast<PreloginOption>(token)) {
    case PreloginOption::version:
        return 6;
    case PreloginOption::encryption:
    case PreloginOption::mars:
    case PreloginOption::fedauth_required:
        return 1;
    case PreloginOption::thread_id:
        // Clients send 4 bytes; a real SQL Server 2008 replies with an empty THREADID.
        return have == 0 ? 0 : 4;
    case PreloginOption::trace_id:
        return 36;
    case PreloginOption::nonce:
        return 32;
    default:
        return -1;
    }
}

std::optional<std::uint8_t> one_byte(const Prelogin& p, PreloginOption o) noexcept {
    const PreloginEntry* e = p.find(o);
    if (!e || e->data.size() != 1) return std::nullopt;
    return e->data[0];
}

} // namespace

const PreloginEntry* Prelogin::find(PreloginOption o) const noexcept {
    for (const auto& e : options)
        if (e.token == static_cast<std::uint8_t>(o)) return &e;
    return nullptr;
}

std::optional<PreloginVersion> Prelogin::version() const noexcept {
    const PreloginEntry* e = find(PreloginOption::version);
    if (!e || e->data.size() != 6) return std::nullopt;
    const auto& d = e->data;
    return PreloginVersion{d[0], d[1], static_cast<std::uint16_t>((d[2] << 8) | d[3]),
                           static_cast<std::uint16_t>(d[4] | (d[5] << 8))};
}

std::optional<std::uint8_t> Prelogin::encryption() const noexcept {
    return one_byte(*this, PreloginOption::encryption);
}
std::optional<std::uint8_t> Prelogin::mars() const noexcept {
    return one_byte(*this, PreloginOption::mars);
}
std::optional<std::uint8_t> Prelogin::fedauth_required() const noexcept {
    return one_byte(*this, PreloginOption::fedauth_required);
}
std::optional<std::uint32_t> Prelogin::thread_id() const noexcept {
    const PreloginEntry* e = find(PreloginOption::thread_id);
    if (!e || e->data.size() != 4) return std::nullopt;
    // The specification does not say; clients write it in their own (little-endian) order.
    return static_cast<std::uint32_t>(e->data[0] | (e->data[1] << 8) | (e->data[2] << 16) |
                                      (std::uint32_t{e->data[3]} << 24));
}

result<Prelogin> parse_prelogin(Bytes payload) {
    wire::Reader r{payload};
    Prelogin p;
    std::size_t table_end = 0;
    std::vector<std::pair<std::size_t, std::size_t>> spans;
    for (;;) {
        auto token = r.u8();
        if (!token) return token.error();
        if (*token == static_cast<std::uint8_t>(PreloginOption::terminator)) break;
        auto offset = r.be(2);
        if (!offset) return offset.error();
        auto length = r.be(2);
        if (!length) return length.error();
        for (const auto& e : p.options)
            if (e.token == *token) return codec_errc::malformed;
        p.options.push_back({*token, {}});
        spans.emplace_back(*offset, *length);
        // Options are at most 8 plus a few unknown ones; a table longer than any real one is
        // an attack on the loop, not a message.
        if (p.options.size() > 64) return codec_errc::malformed;
    }
    table_end = r.pos();
    for (std::size_t i = 0; i < p.options.size(); ++i) {
        const auto [offset, length] = spans[i];
        if (length > 0 && offset < table_end) return codec_errc::malformed;
        if (offset + length > payload.size()) return codec_errc::truncated;
        const int want = expected_size(p.options[i].token, length);
        if (want >= 0 && static_cast<std::size_t>(want) != length) return codec_errc::malformed;
        const Bytes data = payload.subspan(offset, length);
        p.options[i].data.assign(data.begin(), data.end());
    }
    return p;
}

void write_prelogin(const Prelogin& p, std::vector<std::uint8_t>& out) {
    std::size_t offset = p.options.size() * 5 + 1;
    for (const auto& e : p.options) {
        out.push_back(e.token);
        wire::put_be(out, offset, 2);
        wire::put_be(out, e.data.size(), 2);
        offset += e.data.size();
    }
    out.push_back(static_cast<std::uint8_t>(PreloginOption::terminator));
    for (const auto& e : p.options)
        wire::put_bytes(out, e.data);
}

Prelogin make_prelogin_reply(PreloginVersion v, std::uint8_t encryption) {
    Prelogin p;
    p.options.push_back(
        {static_cast<std::uint8_t>(PreloginOption::version),
         {v.major, v.minor, static_cast<std::uint8_t>(v.build >> 8),
          static_cast<std::uint8_t>(v.build), static_cast<std::uint8_t>(v.sub_build),
          static_cast<std::uint8_t>(v.sub_build >> 8)}});
    p.options.push_back({static_cast<std::uint8_t>(PreloginOption::encryption), {encryption}});
    p.options.push_back({static_cast<std::uint8_t>(PreloginOption::instopt), {0x00}});
    p.options.push_back({static_cast<std::uint8_t>(PreloginOption::thread_id), {}});
    p.options.push_back({static_cast<std::uint8_t>(PreloginOption::mars), {0x00}});
    return p;
}

EncryptionDecision negotiate_encryption(std::uint8_t client, ServerEncryption server) noexcept {
    using M = EncryptionMode;
    const std::uint8_t c = client & static_cast<std::uint8_t>(~encrypt::client_cert);
    if (c > encrypt::req) return {encrypt::not_sup, M::terminate};
    switch (server) {
    case ServerEncryption::off:
        if (c == encrypt::off) return {encrypt::off, M::login_only};
        if (c == encrypt::not_sup) return {encrypt::not_sup, M::none};
        return {encrypt::on, M::full}; // client ON or REQ
    case ServerEncryption::on:
        if (c == encrypt::not_sup) return {encrypt::req, M::terminate};
        if (c == encrypt::off) return {encrypt::req, M::full};
        return {encrypt::on, M::full};
    case ServerEncryption::not_sup:
        if (c == encrypt::on || c == encrypt::req) return {encrypt::not_sup, M::terminate};
        return {encrypt::not_sup, M::none};
    }
    return {encrypt::not_sup, M::terminate};
}

} // namespace sluice::protocol::tds
