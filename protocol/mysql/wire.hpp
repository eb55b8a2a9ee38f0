#pragma once
// Private to protocol/mysql: a bounds-checked reader and append-only writer for the MySQL
// basic data types (MySQL client/server protocol, "Basic Data Types": fixed-length and
// length-encoded integers, NUL-terminated, length-encoded and rest-of-packet strings).

#include "sluice/protocol/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::protocol::mysql::wire {

class Reader {
public:
    explicit Reader(Bytes in) noexcept : in_(in) {}

    std::size_t remaining() const noexcept { return in_.size() - pos_; }
    bool empty() const noexcept { return pos_ == in_.size(); }
    Bytes rest() noexcept {
        Bytes r = in_.subspan(pos_);
        pos_ = in_.size();
        return r;
    }

    result<std::uint64_t> fixed(std::size_t n) noexcept {
        if (remaining() < n) return codec_errc::truncated;
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i)
            v |= std::uint64_t{in_[pos_ + i]} << (8 * i);
        pos_ += n;
        return v;
    }
    result<std::uint8_t> u8() noexcept {
        auto v = fixed(1);
        if (!v) return v.error();
        return static_cast<std::uint8_t>(*v);
    }
    result<std::uint16_t> u16() noexcept {
        auto v = fixed(2);
        if (!v) return v.error();
        return static_cast<std::uint16_t>(*v);
    }
    result<std::uint32_t> u32() noexcept {
        auto v = fixed(4);
        if (!v) return v.error();
        return static_cast<std::uint32_t>(*v);
    }
    /// Length-encoded integer; 0xFB (NULL) and 0xFF are not integers here.
    result<std::uint64_t> lenenc() noexcept {
        auto first = u8();
        if (!first) return first.error();
        if (*first < 0xFB) return std::uint64_t{*first};
        if (*first == 0xFC) return fixed(2);
        if (*first == 0xFD) return fixed(3);
        if (*first == 0xFE) return fixed(8);
        return codec_errc::malformed;
    }
    result<Bytes> bytes(std::size_t n) noexcept {
        if (remaining() < n) return codec_errc::truncated;
        Bytes r = in_.subspan(pos_, n);
        pos_ += n;
        return r;
    }
    result<Bytes> lenenc_bytes() noexcept {
        auto n = lenenc();
        if (!n) return n.error();
        if (*n > remaining()) return codec_errc::truncated;
        return bytes(static_cast<std::size_t>(*n));
    }
    /// A NUL-terminated string; the NUL is consumed, not returned.
    result<Bytes> null_terminated() noexcept {
        for (std::size_t i = pos_; i < in_.size(); ++i) {
            if (in_[i] == 0) {
                Bytes r = in_.subspan(pos_, i - pos_);
                pos_ = i + 1;
                return r;
            }
        }
        return codec_errc::truncated;
    }
    result<void> skip(std::size_t n) noexcept {
        if (remaining() < n) return codec_errc::truncated;
        pos_ += n;
        return {};
    }

private:
    Bytes in_;
    std::size_t pos_ = 0;
};

inline std::string to_string(Bytes b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline void put_fixed(std::vector<std::uint8_t>& out, std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
inline void put_lenenc(std::vector<std::uint8_t>& out, std::uint64_t v) {
    if (v < 0xFB) {
        out.push_back(static_cast<std::uint8_t>(v));
    } else if (v <= 0xFFFF) {
        out.push_back(0xFC);
        put_fixed(out, v, 2);
    } else if (v <= 0xFFFFFF) {
        out.push_back(0xFD);
        put_fixed(out, v, 3);
    } else {
        out.push_back(0xFE);
        put_fixed(out, v, 8);
    }
}
inline void put_bytes(std::vector<std::uint8_t>& out, Bytes b) {
    out.insert(out.end(), b.begin(), b.end());
}
inline void put_str(std::vector<std::uint8_t>& out, std::string_view s) {
    put_bytes(out, as_bytes(s));
}
inline void put_null_str(std::vector<std::uint8_t>& out, std::string_view s) {
    put_str(out, s);
    out.push_back(0);
}
inline void put_lenenc_str(std::vector<std::uint8_t>& out, std::string_view s) {
    put_lenenc(out, s.size());
    put_str(out, s);
}

} // namespace sluice::protocol::mysql::wire
