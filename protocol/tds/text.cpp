#include "sluice/protocol/tds/text.hpp"

namespace sluice::protocol::tds {

namespace {

constexpr char32_t replacement = 0xFFFD;

void put_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (c >> 18)));
        out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
}

// Decodes one character from the front of `s` at `i`, advancing `i`; malformed sequences
// (overlong, surrogates, out of range, cut short) yield U+FFFD and consume one byte.
char32_t next_utf8(std::string_view s, std::size_t& i) noexcept {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        ++i;
        return b0;
    }
    std::size_t len = 0;
    char32_t c = 0;
    if ((b0 & 0xE0) == 0xC0) {
        len = 2;
        c = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3;
        c = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4;
        c = b0 & 0x07;
    } else {
        ++i;
        return replacement;
    }
    if (s.size() - i < len) {
        ++i;
        return replacement;
    }
    for (std::size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) {
            ++i;
            return replacement;
        }
        c = (c << 6) | (b & 0x3F);
    }
    static constexpr char32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_for_len[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        ++i;
        return replacement;
    }
    i += len;
    return c;
}

} // namespace

std::string utf16le_to_utf8(Bytes in) {
    std::string out;
    out.reserve(in.size() / 2);
    const std::size_t units = in.size() / 2;
    for (std::size_t i = 0; i < units; ++i) {
        const char32_t u = in[2 * i] | (char32_t{in[2 * i + 1]} << 8);
        if (u >= 0xD800 && u <= 0xDBFF && i + 1 < units) {
            const char32_t lo = in[2 * i + 2] | (char32_t{in[2 * i + 3]} << 8);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                put_utf8(out, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
                ++i;
                continue;
            }
        }
        put_utf8(out, (u >= 0xD800 && u <= 0xDFFF) ? replacement : u);
    }
    return out;
}

std::size_t append_utf16le(std::string_view utf8, std::vector<std::uint8_t>& out,
                           std::size_t max_units) {
    std::size_t units = 0;
    std::size_t i = 0;
    while (i < utf8.size()) {
        std::size_t next = i;
        const char32_t c = next_utf8(utf8, next);
        const std::size_t need = c >= 0x10000 ? 2 : 1;
        if (max_units - units < need) break;
        if (c >= 0x10000) {
            const char32_t v = c - 0x10000;
            const char32_t hi = 0xD800 + (v >> 10), lo = 0xDC00 + (v & 0x3FF);
            out.push_back(static_cast<std::uint8_t>(hi));
            out.push_back(static_cast<std::uint8_t>(hi >> 8));
            out.push_back(static_cast<std::uint8_t>(lo));
            out.push_back(static_cast<std::uint8_t>(lo >> 8));
        } else {
            out.push_back(static_cast<std::uint8_t>(c));
            out.push_back(static_cast<std::uint8_t>(c >> 8));
        }
        units += need;
        i = next;
    }
    return units;
}

std::size_t utf16_length(std::string_view utf8) noexcept {
    std::size_t units = 0;
    for (std::size_t i = 0; i < utf8.size();)
        units += next_utf8(utf8, i) >= 0x10000 ? 2 : 1;
    return units;
}

} // namespace sluice::protocol::tds
