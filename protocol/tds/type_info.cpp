#include "sluice/protocol/tds/type_info.hpp"

#include "sluice/protocol/tds/text.hpp"
#include "types.hpp"

namespace sluice::protocol::tds {

namespace detail {

namespace {

// The size of a fixed-length type; -1 for a type that is not fixed-length.
int fixed_size(std::uint8_t type) noexcept {
    switch (type) {
    case data_type::null:
        return 0;
    case data_type::int1:
    case data_type::bit:
        return 1;
    case data_type::int2:
        return 2;
    case data_type::int4:
    case data_type::datetim4:
    case data_type::flt4:
    case data_type::money4:
        return 4;
    case data_type::money:
    case data_type::datetime:
    case data_type::flt8:
    case data_type::int8:
        return 8;
    default:
        return -1;
    }
}

result<void> read_collation(wire::Reader& r, TypeInfo& t) noexcept {
    auto c = r.bytes(5);
    if (!c) return c.error();
    std::copy(c->begin(), c->end(), t.collation.begin());
    t.has_collation = true;
    return {};
}

} // namespace

result<TypeInfo> read_type_info(wire::Reader& r, TypeContext ctx) noexcept {
    auto type = r.u8();
    if (!type) return type.error();
    TypeInfo t;
    t.type = *type;
    if (const int n = fixed_size(t.type); n >= 0) {
        t.format = ValueFormat::fixed;
        t.length = static_cast<std::uint32_t>(n);
        return t;
    }
    switch (t.type) {
    case data_type::guid:
    case data_type::intn:
    case data_type::bitn:
    case data_type::fltn:
    case data_type::moneyn:
    case data_type::datetimn:
    case data_type::char_legacy:
    case data_type::varchar_legacy:
    case data_type::binary_legacy:
    case data_type::varbinary_legacy:
    case data_type::decimal:
    case data_type::numeric:
    case data_type::decimaln:
    case data_type::numericn: {
        t.format = ValueFormat::byte_len;
        auto len = r.u8();
        if (!len) return len.error();
        t.length = *len;
        if (t.type == data_type::decimal || t.type == data_type::numeric ||
            t.type == data_type::decimaln || t.type == data_type::numericn) {
            auto p = r.u8();
            if (!p) return p.error();
            auto s = r.u8();
            if (!s) return s.error();
            t.precision = *p;
            t.scale = *s;
        }
        return t;
    }
    case data_type::daten:
        t.format = ValueFormat::byte_len;
        t.length = 3;
        return t;
    case data_type::timen:
    case data_type::datetime2n:
    case data_type::datetimeoffsetn: {
        t.format = ValueFormat::byte_len;
        auto s = r.u8();
        if (!s) return s.error();
        if (*s > 7) return codec_errc::malformed;
        t.scale = *s;
        return t;
    }
    case data_type::bigvarbinary:
    case data_type::bigvarchar:
    case data_type::bigbinary:
    case data_type::bigchar:
    case data_type::nvarchar:
    case data_type::nchar: {
        auto len = r.u16();
        if (!len) return len.error();
        t.length = *len;
        const bool can_be_max = t.type == data_type::bigvarbinary ||
                                t.type == data_type::bigvarchar || t.type == data_type::nvarchar;
        if (t.length == 0xFFFF && !can_be_max) return codec_errc::malformed;
        t.format = t.length == 0xFFFF ? ValueFormat::plp : ValueFormat::ushort_len;
        if (t.type == data_type::bigvarchar || t.type == data_type::bigchar ||
            t.type == data_type::nvarchar || t.type == data_type::nchar) {
            auto c = read_collation(r, t);
            if (!c) return c.error();
        }
        return t;
    }
    case data_type::xml: {
        t.format = ValueFormat::plp;
        t.length = 0xFFFF;
        auto schema = r.u8();
        if (!schema) return schema.error();
        if (*schema == 1) {
            for (int i = 0; i < 2; ++i) {
                auto name = r.b_varchar(); // DbName, OwningSchema
                if (!name) return name.error();
            }
            auto collection = r.us_varchar(); // XmlSchemaCollection
            if (!collection) return collection.error();
        } else if (*schema != 0) {
            return codec_errc::malformed;
        }
        return t;
    }
    case data_type::udt: {
        t.format = ValueFormat::plp;
        t.length = 0xFFFF;
        if (ctx == TypeContext::column) {
            auto max = r.u16(); // MaxByteSize
            if (!max) return max.error();
        }
        for (int i = 0; i < 3; ++i) {
            auto name = r.b_varchar(); // DB_NAME, SCHEMA_NAME, TYPE_NAME
            if (!name) return name.error();
        }
        if (ctx == TypeContext::column) {
            auto assembly = r.us_varchar(); // ASSEMBLY_QUALIFIED_NAME
            if (!assembly) return assembly.error();
        }
        return t;
    }
    case data_type::text:
    case data_type::ntext:
    case data_type::image: {
        t.format = ValueFormat::text_ptr;
        auto len = r.u32();
        if (!len) return len.error();
        t.length = *len;
        if (t.type != data_type::image) {
            auto c = read_collation(r, t);
            if (!c) return c.error();
        }
        return t;
    }
    case data_type::ssvariant: {
        t.format = ValueFormat::long_len;
        auto len = r.u32();
        if (!len) return len.error();
        t.length = *len;
        return t;
    }
    default:
        // TVPTYPE and anything unknown: their length cannot be known, so nothing after them can.
        return codec_errc::malformed;
    }
}

result<ValueView> read_value(wire::Reader& r, const TypeInfo& t, TypeContext ctx) noexcept {
    ValueView v;
    auto take = [&](std::size_t n) -> result<ValueView> {
        auto b = r.bytes(n);
        if (!b) return b.error();
        v.data = *b;
        return v;
    };
    switch (value_format(t, ctx)) {
    case ValueFormat::fixed:
        v.is_null = t.type == data_type::null;
        return take(t.length);
    case ValueFormat::byte_len: {
        auto n = r.u8();
        if (!n) return n.error();
        v.is_null = *n == 0;
        return take(*n);
    }
    case ValueFormat::ushort_len: {
        auto n = r.u16();
        if (!n) return n.error();
        if (*n == 0xFFFF) {
            v.is_null = true;
            return v;
        }
        return take(*n);
    }
    case ValueFormat::long_len: {
        auto n = r.u32();
        if (!n) return n.error();
        if (*n == 0xFFFFFFFF || (*n == 0 && t.type == data_type::ssvariant)) {
            v.is_null = true;
            return v;
        }
        return take(*n);
    }
    case ValueFormat::text_ptr: {
        auto ptr_len = r.u8();
        if (!ptr_len) return ptr_len.error();
        if (*ptr_len == 0) {
            v.is_null = true;
            return v;
        }
        auto skipped = r.skip(std::size_t{*ptr_len} + 8); // TextPtr, Timestamp
        if (!skipped) return skipped.error();
        auto n = r.u32();
        if (!n) return n.error();
        return take(*n);
    }
    case ValueFormat::plp: {
        auto total = r.u64();
        if (!total) return total.error();
        if (*total == ~std::uint64_t{0}) {
            v.is_null = true;
            return v;
        }
        const std::size_t start = r.pos();
        for (;;) {
            const std::size_t chunk = r.pos();
            auto n = r.u32();
            if (!n) return n.error();
            if (*n == 0) {
                v.data = r.between(start, chunk); // the chunks, without the terminator
                return v;
            }
            auto skipped = r.skip(*n);
            if (!skipped) return skipped.error();
        }
    }
    }
    return codec_errc::malformed;
}

} // namespace detail

bool TypeInfo::is_unicode_text() const noexcept {
    return type == data_type::nchar || type == data_type::nvarchar || type == data_type::ntext ||
           type == data_type::xml;
}

bool TypeInfo::is_ansi_text() const noexcept {
    return type == data_type::bigchar || type == data_type::bigvarchar || type == data_type::text ||
           type == data_type::char_legacy || type == data_type::varchar_legacy;
}

result<TypeInfo> parse_type_info(Bytes in, TypeContext ctx, std::size_t& used) {
    wire::Reader r{in};
    auto t = detail::read_type_info(r, ctx);
    used = r.pos();
    return t;
}

result<ValueView> parse_value(Bytes in, const TypeInfo& t, TypeContext ctx, std::size_t& used) {
    wire::Reader r{in};
    auto v = detail::read_value(r, t, ctx);
    used = r.pos();
    return v;
}

std::string plp_join(Bytes chunks) {
    std::string out;
    wire::Reader r{chunks};
    while (!r.empty()) {
        auto n = r.u32();
        if (!n) break;
        auto b = r.bytes(*n);
        if (!b) break;
        out.append(reinterpret_cast<const char*>(b->data()), b->size());
    }
    return out;
}

std::optional<std::int64_t> value_as_int(const TypeInfo& t, const ValueView& v) {
    if (v.is_null) return std::nullopt;
    switch (t.type) {
    case data_type::int1:
    case data_type::int2:
    case data_type::int4:
    case data_type::int8:
    case data_type::intn:
    case data_type::bit:
    case data_type::bitn:
        break;
    default:
        return std::nullopt;
    }
    const std::size_t n = v.data.size();
    if (n != 1 && n != 2 && n != 4 && n != 8) return std::nullopt;
    std::uint64_t u = 0;
    for (std::size_t i = 0; i < n; ++i)
        u |= std::uint64_t{v.data[i]} << (8 * i);
    // TINYINT is unsigned; the wider integers are two's complement.
    if (n == 1) return static_cast<std::int64_t>(u);
    if (n == 2) return static_cast<std::int16_t>(u);
    if (n == 4) return static_cast<std::int32_t>(u);
    return static_cast<std::int64_t>(u);
}

std::optional<std::string> value_as_text(const TypeInfo& t, const ValueView& v) {
    if (v.is_null || (!t.is_unicode_text() && !t.is_ansi_text())) return std::nullopt;
    if (t.format == ValueFormat::plp) {
        const std::string joined = plp_join(v.data);
        if (!t.is_unicode_text()) return joined;
        return utf16le_to_utf8(
            Bytes{reinterpret_cast<const std::uint8_t*>(joined.data()), joined.size()});
    }
    if (t.is_unicode_text()) return utf16le_to_utf8(v.data);
    return std::string(reinterpret_cast<const char*>(v.data.data()), v.data.size());
}

} // namespace sluice::protocol::tds
