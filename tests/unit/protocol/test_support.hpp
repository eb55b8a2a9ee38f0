#pragma once
// Helpers shared by the protocol unit tests: hex, golden vector files, packet framing.

#include "sluice/protocol/error.hpp"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::test {

using ByteVec = std::vector<std::uint8_t>;

/// Bytes from hex digits; whitespace is ignored.
inline ByteVec from_hex(std::string_view hex) {
    ByteVec out;
    int hi = -1;
    for (char c : hex) {
        int v;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v = c - 'A' + 10;
        } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            continue;
        } else {
            throw std::invalid_argument("not a hex digit");
        }
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(hi * 16 + v));
            hi = -1;
        }
    }
    if (hi >= 0) throw std::invalid_argument("odd number of hex digits");
    return out;
}

inline std::string to_hex(Bytes b) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    for (std::uint8_t c : b) {
        s.push_back(digits[c >> 4]);
        s.push_back(digits[c & 15]);
    }
    return s;
}

/// The bytes of tests/vectors/mysql/<name>.hex: one packet per line in hex, '#' lines are
/// comments.
inline ByteVec read_vector(const std::string& name) {
    std::ifstream f(std::string(SLUICE_VECTOR_DIR) + "/" + name + ".hex");
    if (!f) throw std::runtime_error("cannot open vector " + name);
    std::string line, hex;
    while (std::getline(f, line)) {
        if (!line.empty() && line[0] != '#') hex += line;
    }
    return from_hex(hex);
}

/// The packets of a vector file, each with its 4-byte header.
inline std::vector<ByteVec> read_vector_packets(const std::string& name) {
    std::ifstream f(std::string(SLUICE_VECTOR_DIR) + "/" + name + ".hex");
    if (!f) throw std::runtime_error("cannot open vector " + name);
    std::vector<ByteVec> out;
    std::string line;
    while (std::getline(f, line)) {
        if (!line.empty() && line[0] != '#') out.push_back(from_hex(line));
    }
    return out;
}

/// The payload of a one-packet wire message (its 4-byte header dropped).
inline ByteVec payload_of(const ByteVec& wire) { return {wire.begin() + 4, wire.end()}; }

/// One packet: 3-byte length, sequence number, payload. The payload must be under 0xFFFFFF.
inline ByteVec packet(std::uint8_t seq, Bytes payload) {
    ByteVec out{static_cast<std::uint8_t>(payload.size()),
                static_cast<std::uint8_t>(payload.size() >> 8),
                static_cast<std::uint8_t>(payload.size() >> 16), seq};
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

inline void append(ByteVec& out, Bytes more) { out.insert(out.end(), more.begin(), more.end()); }

inline ByteVec bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

inline std::string string_of(Bytes b) { return {b.begin(), b.end()}; }

} // namespace sluice::test
