#include "sluice/protocol/tds/login7.hpp"

#include "sluice/protocol/tds/text.hpp"
#include "wire.hpp"

namespace sluice::protocol::tds {

namespace {

constexpr std::size_t fixed_size_7_2 = 94;
constexpr std::size_t fixed_size_7_0 = 86;
constexpr std::size_t max_name = 128;      // characters, for every string but AtchDBFile
constexpr std::size_t max_file_name = 260; // AtchDBFile

struct Span {
    std::uint16_t offset = 0, length = 0;
};

result<Span> read_span(wire::Reader& r) noexcept {
    auto ib = r.u16();
    if (!ib) return ib.error();
    auto cch = r.u16();
    if (!cch) return cch.error();
    return Span{*ib, *cch};
}

// The bytes a table entry points at, checked against the record and the fixed part. An
// empty entry reads nothing, so its offset is not checked (clients point those anywhere).
result<Bytes> field(Bytes record, std::size_t fixed, std::size_t offset, std::size_t bytes) {
    if (bytes == 0) return Bytes{};
    if (offset < fixed) return codec_errc::malformed;
    if (offset > record.size() || record.size() - offset < bytes) return codec_errc::truncated;
    return record.subspan(offset, bytes);
}

result<std::string> text_field(Bytes record, std::size_t fixed, Span s, std::size_t max_chars) {
    if (s.length > max_chars) return codec_errc::malformed;
    auto b = field(record, fixed, s.offset, std::size_t{s.length} * 2);
    if (!b) return b.error();
    return utf16le_to_utf8(*b);
}

// FeatureExt (MS-TDS 2.2.6.4): FeatureId BYTE, FeatureDataLen DWORD, data; up to 0xFF.
result<std::size_t> feature_ext_size(Bytes from) noexcept {
    wire::Reader r{from};
    for (;;) {
        auto id = r.u8();
        if (!id) return id.error();
        if (*id == 0xFF) return r.pos();
        auto len = r.u32();
        if (!len) return len.error();
        auto skipped = r.skip(*len);
        if (!skipped) return skipped.error();
    }
}

std::uint8_t swap_nibbles(std::uint8_t b) noexcept {
    return static_cast<std::uint8_t>((b << 4) | (b >> 4));
}

} // namespace

void obfuscate_password(std::span<std::uint8_t> bytes) noexcept {
    for (auto& b : bytes)
        b = swap_nibbles(b) ^ 0xA5;
}

void deobfuscate_password(std::span<std::uint8_t> bytes) noexcept {
    for (auto& b : bytes)
        b = swap_nibbles(b ^ 0xA5);
}

result<Login7> parse_login7(Bytes payload) {
    wire::Reader r{payload};
    auto length = r.u32();
    if (!length) return length.error();
    if (*length > payload.size()) return codec_errc::truncated;
    if (*length < payload.size()) return codec_errc::trailing_bytes;
    const Bytes record = payload;

    Login7 l;
    auto version = r.u32();
    if (!version) return version.error();
    l.tds_version = *version;
    const std::size_t fixed = at_least_7_2(l.tds_version) ? fixed_size_7_2 : fixed_size_7_0;
    if (record.size() < fixed) return codec_errc::truncated;
    // The fixed part is all there, so the reads below cannot fail.
    l.packet_size = *r.u32();
    l.client_prog_version = *r.u32();
    l.client_pid = *r.u32();
    l.connection_id = *r.u32();
    l.option_flags1 = *r.u8();
    l.option_flags2 = *r.u8();
    l.type_flags = *r.u8();
    l.option_flags3 = *r.u8();
    l.client_time_zone = static_cast<std::int32_t>(*r.u32());
    l.client_lcid = *r.u32();

    Span spans[9];
    for (auto& s : spans)
        s = *read_span(r);
    const Bytes client_id = *r.bytes(6);
    std::copy(client_id.begin(), client_id.end(), l.client_id.begin());
    const Span sspi = *read_span(r);
    const Span attach = *read_span(r);
    Span change{};
    std::uint32_t sspi_long = 0;
    if (fixed == fixed_size_7_2) {
        change = *read_span(r);
        sspi_long = *r.u32();
    }

    // Table order: HostName, UserName, Password, AppName, ServerName, Extension, CltIntName,
    // Language, Database.
    const Span password = spans[2], extension = spans[5];
    std::string* texts[] = {&l.host_name,
                            &l.user_name,
                            nullptr,
                            &l.app_name,
                            &l.server_name,
                            nullptr,
                            &l.client_interface_name,
                            &l.language,
                            &l.database};
    for (std::size_t i = 0; i < 9; ++i) {
        if (!texts[i]) continue;
        auto t = text_field(record, fixed, spans[i], max_name);
        if (!t) return t.error();
        *texts[i] = std::move(*t);
    }
    for (auto [span, target] : {std::pair{password, &l.password}, {change, &l.change_password}}) {
        if (span.length > max_name) return codec_errc::malformed;
        auto b = field(record, fixed, span.offset, std::size_t{span.length} * 2);
        if (!b) return b.error();
        std::vector<std::uint8_t> clear(b->begin(), b->end());
        deobfuscate_password(clear);
        *target = utf16le_to_utf8(clear);
    }
    auto file = text_field(record, fixed, attach, max_file_name);
    if (!file) return file.error();
    l.attach_db_file = std::move(*file);

    // cbSSPI 0xFFFF means the length is in cbSSPILong (TDS 7.2+).
    const std::size_t sspi_size = sspi.length == 0xFFFF && sspi_long > 0 ? sspi_long : sspi.length;
    auto sspi_bytes = field(record, fixed, sspi.offset, sspi_size);
    if (!sspi_bytes) return sspi_bytes.error();
    l.sspi.assign(sspi_bytes->begin(), sspi_bytes->end());

    if (l.option_flags3 & login7_flags::extension) {
        // ibExtension points at a DWORD holding the offset of the FeatureExt block.
        if (extension.length < 4) return codec_errc::malformed;
        auto ptr = field(record, fixed, extension.offset, 4);
        if (!ptr) return ptr.error();
        const std::size_t at = std::size_t{(*ptr)[0]} | (std::size_t{(*ptr)[1]} << 8) |
                               (std::size_t{(*ptr)[2]} << 16) | (std::size_t{(*ptr)[3]} << 24);
        if (at < fixed) return codec_errc::malformed;
        if (at >= record.size()) return codec_errc::truncated;
        auto size = feature_ext_size(record.subspan(at));
        if (!size) return size.error();
        l.feature_ext.assign(record.begin() + static_cast<std::ptrdiff_t>(at),
                             record.begin() + static_cast<std::ptrdiff_t>(at + *size));
    }
    return l;
}

void write_login7(const Login7& l, std::vector<std::uint8_t>& out) {
    const std::size_t base = out.size();
    const bool v72 = at_least_7_2(l.tds_version);
    const std::size_t fixed = v72 ? fixed_size_7_2 : fixed_size_7_0;
    const bool has_ext = !l.feature_ext.empty();
    const auto flags3 =
        static_cast<std::uint8_t>(has_ext ? (l.option_flags3 | login7_flags::extension)
                                          : (l.option_flags3 & ~login7_flags::extension));
    out.resize(base + fixed);
    std::vector<std::uint8_t> data;

    std::size_t table = base + 36; // where the next offset/length pair goes
    auto put_span = [&](std::size_t offset, std::size_t length) {
        wire::set_le(out, table, offset, 2);
        wire::set_le(out, table + 2, length, 2);
        table += 4;
    };
    auto put_text = [&](std::string_view s, std::size_t max_chars, bool obfuscate) {
        const std::size_t at = fixed + data.size();
        const std::size_t start = data.size();
        const std::size_t units = append_utf16le(s, data, max_chars);
        if (obfuscate) obfuscate_password(std::span{data}.subspan(start));
        put_span(at, units);
    };
    put_text(l.host_name, max_name, false);
    put_text(l.user_name, max_name, false);
    put_text(l.password, max_name, true);
    put_text(l.app_name, max_name, false);
    put_text(l.server_name, max_name, false);
    std::size_t ext_ptr = 0; // where in `data` the FeatureExt offset goes
    if (has_ext) {
        put_span(fixed + data.size(), 4);
        ext_ptr = data.size();
        wire::put_le(data, 0, 4);
    } else {
        put_span(fixed + data.size(), 0);
    }
    put_text(l.client_interface_name, max_name, false);
    put_text(l.language, max_name, false);
    put_text(l.database, max_name, false);
    std::copy(l.client_id.begin(), l.client_id.end(),
              out.begin() + static_cast<std::ptrdiff_t>(table));
    table += 6;
    const bool sspi_long = v72 && l.sspi.size() >= 0xFFFF;
    const std::size_t sspi_at = fixed + data.size();
    wire::put_bytes(data, l.sspi);
    put_span(sspi_at, sspi_long ? 0xFFFF : l.sspi.size() & 0xFFFF);
    put_text(l.attach_db_file, max_file_name, false);
    if (v72) {
        put_text(l.change_password, max_name, true);
        wire::set_le(out, table, sspi_long ? l.sspi.size() : 0, 4);
    }
    if (has_ext) {
        wire::set_le(data, ext_ptr, fixed + data.size(), 4);
        wire::put_bytes(data, l.feature_ext);
    }
    wire::put_bytes(out, data);

    wire::set_le(out, base, out.size() - base, 4);
    wire::set_le(out, base + 4, l.tds_version, 4);
    wire::set_le(out, base + 8, l.packet_size, 4);
    wire::set_le(out, base + 12, l.client_prog_version, 4);
    wire::set_le(out, base + 16, l.client_pid, 4);
    wire::set_le(out, base + 20, l.connection_id, 4);
    out[base + 24] = l.option_flags1;
    out[base + 25] = l.option_flags2;
    out[base + 26] = l.type_flags;
    out[base + 27] = flags3;
    wire::set_le(out, base + 28, static_cast<std::uint32_t>(l.client_time_zone), 4);
    wire::set_le(out, base + 32, l.client_lcid, 4);
}

} // namespace sluice::protocol::tds
