#pragma once
// Helpers for the TDS codec tests: the byte-exact vectors of tests/vectors/tds/ (whole TDS
// packets in hex, '#' lines are comments with their sources) and packet building.

#include "test_support.hpp"

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::test::tds {

/// All bytes of tests/vectors/tds/<name>.hex: one or more whole packets, headers included.
inline ByteVec read_wire(const std::string& name) {
    std::ifstream f(std::string(SLUICE_TDS_VECTOR_DIR) + "/" + name + ".hex");
    if (!f) throw std::runtime_error("cannot open vector " + name);
    std::string line, hex;
    while (std::getline(f, line))
        if (!line.empty() && line[0] != '#') hex += line + " ";
    return from_hex(hex);
}

/// The packets of a wire capture, split by their header lengths (throws if they do not add up).
inline std::vector<ByteVec> split_packets(const ByteVec& wire) {
    std::vector<ByteVec> out;
    std::size_t pos = 0;
    while (pos < wire.size()) {
        if (wire.size() - pos < 8) throw std::runtime_error("partial header");
        const std::size_t len = (std::size_t{wire[pos + 2]} << 8) | wire[pos + 3];
        if (len < 8 || wire.size() - pos < len) throw std::runtime_error("bad packet length");
        out.emplace_back(wire.begin() + static_cast<std::ptrdiff_t>(pos),
                         wire.begin() + static_cast<std::ptrdiff_t>(pos + len));
        pos += len;
    }
    return out;
}

/// The message payload of a vector: its packets' payloads joined.
inline ByteVec read_payload(const std::string& name) {
    ByteVec out;
    for (const auto& p : split_packets(read_wire(name)))
        out.insert(out.end(), p.begin() + 8, p.end());
    return out;
}

/// Every vector file, by name.
inline const std::vector<std::string>& all_vectors() {
    static const std::vector<std::string> names = {
        "mstds-4.1-prelogin-request",
        "mstds-4.10-attention",
        "mstds-4.2-login7-request",
        "mstds-4.4-login-response",
        "mstds-4.6-sqlbatch-request",
        "mstds-4.7-sqlbatch-response",
        "mstds-4.8-rpc-request",
        "mstds-4.9-rpc-response",
        "real-rpc-batched-sp_execute-request",
        "real-rpc-batched-sp_execute-response",
        "real-rpc-named-proc-resetconnection-request",
        "real-rpc-sp_prepexec-request",
        "real-rpc-sp_prepexec-response",
        "real-sql2008-begin-tran-response",
        "real-sql2008-login-response",
        "real-sql2008-prelogin-response",
        "real-tds71-commit-batch-request",
        "real-tds71-commit-batch-response",
        "teleport-resetack-select1-response",
        "teleport-sql2019-login-response",
    };
    return names;
}

/// A one-packet message: header (EOM set unless `status` says otherwise) and payload.
inline ByteVec tds_packet(std::uint8_t type, std::uint8_t status, Bytes payload,
                          std::uint8_t packet_id = 1) {
    const std::size_t len = payload.size() + 8;
    ByteVec out{type,
                status,
                static_cast<std::uint8_t>(len >> 8),
                static_cast<std::uint8_t>(len),
                0,
                0,
                packet_id,
                0};
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

/// UTF-16LE bytes of an ASCII string.
inline ByteVec ucs2(std::string_view s) {
    ByteVec out;
    for (char c : s) {
        out.push_back(static_cast<std::uint8_t>(c));
        out.push_back(0);
    }
    return out;
}

} // namespace sluice::test::tds
