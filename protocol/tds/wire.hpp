#pragma once
// Private to protocol/tds: a bounds-checked reader and append-only writer for the TDS basic
// data types (MS-TDS 2.2.5.1-2.2.5.2: little-endian integers, B_VARCHAR/US_VARCHAR strings
// counted in UCS-2 code units, B_VARBYTE/US_VARBYTE). PRELOGIN and the packet header are the
// only big-endian parts of the protocol.

#include "sluice/protocol/error.hpp"
#include "sluice/protocol/tds/text.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::protocol::tds::wire {

class Reader {
public:
    explicit Reader(Bytes in) noexcept : in_(in) {}

    std::size_t pos() const noexcept { return pos_; }
    std::size_t remaining() const noexcept { return in_.size() - pos_; }
    bool empty() const noexcept { return pos_ == in_.size(); }
    /// After a codec_errc::truncated: how many bytes of input the failed read needed in all.
    /// A streaming caller waits for that many before trying again.
    std::size_t needed() const noexcept { return needed_; }
    /// The input from `from` to `to` (positions already read past).
    Bytes between(std::size_t from, std::size_t to) const noexcept {
        return in_.subspan(from, to - from);
    }

    result<std::uint64_t> le(std::size_t n) noexcept {
        if (!have(n)) return codec_errc::truncated;
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i)
            v |= std::uint64_t{in_[pos_ + i]} << (8 * i);
        pos_ += n;
        return v;
    }
    result<std::uint64_t> be(std::size_t n) noexcept {
        if (!have(n)) return codec_errc::truncated;
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i)
            v = (v << 8) | in_[pos_ + i];
        pos_ += n;
        return v;
    }
    result<std::uint8_t> u8() noexcept {
        auto v = le(1);
        if (!v) return v.error();
        return static_cast<std::uint8_t>(*v);
    }
    result<std::uint16_t> u16() noexcept {
        auto v = le(2);
        if (!v) return v.error();
        return static_cast<std::uint16_t>(*v);
    }
    result<std::uint32_t> u32() noexcept {
        auto v = le(4);
        if (!v) return v.error();
        return static_cast<std::uint32_t>(*v);
    }
    result<std::uint64_t> u64() noexcept { return le(8); }
    result<Bytes> bytes(std::size_t n) noexcept {
        if (!have(n)) return codec_errc::truncated;
        Bytes r = in_.subspan(pos_, n);
        pos_ += n;
        return r;
    }
    result<void> skip(std::size_t n) noexcept {
        if (!have(n)) return codec_errc::truncated;
        pos_ += n;
        return {};
    }
    /// B_VARCHAR: a byte count of UCS-2 code units, then the UTF-16LE bytes.
    result<Bytes> b_varchar() noexcept {
        auto n = u8();
        if (!n) return n.error();
        return bytes(std::size_t{*n} * 2);
    }
    /// US_VARCHAR: a USHORT count of UCS-2 code units, then the UTF-16LE bytes.
    result<Bytes> us_varchar() noexcept {
        auto n = u16();
        if (!n) return n.error();
        return bytes(std::size_t{*n} * 2);
    }
    /// B_VARBYTE: a byte count of bytes, then the bytes.
    result<Bytes> b_varbyte() noexcept {
        auto n = u8();
        if (!n) return n.error();
        return bytes(*n);
    }
    /// US_VARBYTE: a USHORT count of bytes, then the bytes.
    result<Bytes> us_varbyte() noexcept {
        auto n = u16();
        if (!n) return n.error();
        return bytes(*n);
    }

private:
    bool have(std::size_t n) noexcept {
        if (in_.size() - pos_ >= n) return true;
        needed_ = pos_ + n;
        return false;
    }

    Bytes in_;
    std::size_t pos_ = 0;
    std::size_t needed_ = 0;
};

inline void put_le(std::vector<std::uint8_t>& out, std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void put_be(std::vector<std::uint8_t>& out, std::uint64_t v, std::size_t n) {
    for (std::size_t i = n; i-- > 0;)
        out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void set_le(std::vector<std::uint8_t>& out, std::size_t at, std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        out[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline void put_bytes(std::vector<std::uint8_t>& out, Bytes b) {
    out.insert(out.end(), b.begin(), b.end());
}
/// B_VARCHAR from UTF-8; text longer than 255 code units is cut (callers pass names).
inline void put_b_varchar(std::vector<std::uint8_t>& out, std::string_view utf8) {
    const std::size_t at = out.size();
    out.push_back(0);
    append_utf16le(utf8, out, 255);
    out[at] = static_cast<std::uint8_t>((out.size() - at - 1) / 2);
}
/// US_VARCHAR from UTF-8; text longer than 65535 code units is cut.
inline void put_us_varchar(std::vector<std::uint8_t>& out, std::string_view utf8) {
    const std::size_t at = out.size();
    put_le(out, 0, 2);
    append_utf16le(utf8, out, 65535);
    set_le(out, at, (out.size() - at - 2) / 2, 2);
}

} // namespace sluice::protocol::tds::wire
