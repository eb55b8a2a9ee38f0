// TDS packet framing: parse_header, MessageAssembler, write_message (MS-TDS 2.2.3).

#include "sluice/protocol/tds/packet.hpp"
#include "tds_test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using namespace sluice::protocol;
using namespace sluice::protocol::tds;
using namespace sluice::test;
using namespace sluice::test::tds;

namespace {

ByteVec pattern(std::size_t size) {
    ByteVec p(size);
    for (std::size_t i = 0; i < size; ++i)
        p[i] = static_cast<std::uint8_t>((i * 7 + i / 251) & 0xFF);
    return p;
}

// Feeds `in` in chunks of `chunk` bytes (0: whole) and returns the assembled messages.
struct Assembled {
    std::vector<Message> messages;
    std::vector<ByteVec> payloads;
    std::optional<error_code> error;
};

Assembled assemble(Bytes in, std::size_t chunk, std::size_t max_packet = 32768,
                   std::size_t max_message = 1 << 20) {
    MessageAssembler a{max_packet, max_message};
    Assembled out;
    std::size_t pos = 0;
    while (pos < in.size()) {
        const std::size_t n = chunk == 0 ? in.size() - pos : std::min(chunk, in.size() - pos);
        auto used = a.feed(in.subspan(pos, n));
        if (!used) {
            out.error = used.error();
            return out;
        }
        pos += *used;
        if (a.complete()) {
            out.messages.push_back(a.message());
            out.payloads.emplace_back(a.message().payload.begin(), a.message().payload.end());
            a.reset();
        } else {
            REQUIRE(*used == n); // an incomplete message takes every byte offered
        }
    }
    return out;
}

} // namespace

TEST_CASE("every TDS vector is whole packets whose lengths add up to the file", "[protocol][tds]") {
    for (const auto& name : all_vectors()) {
        INFO(name);
        const ByteVec wire = read_wire(name);
        std::size_t pos = 0, packets = 0;
        while (pos < wire.size()) {
            auto h = parse_header(Bytes{wire}.subspan(pos), 32768);
            REQUIRE(h.has_value());
            pos += h->length;
            ++packets;
        }
        CHECK(pos == wire.size());
        CHECK(packets >= 1);
        // Each vector is one message: its last packet, and only that one, has EOM.
        const Assembled a = assemble(wire, 0);
        REQUIRE_FALSE(a.error);
        CHECK(a.messages.size() == 1);
    }
}

TEST_CASE("parse_header reads the big-endian length and spid", "[protocol][tds]") {
    const ByteVec wire = read_wire("real-tds71-commit-batch-response");
    auto h = parse_header(wire, 32768);
    REQUIRE(h.has_value());
    CHECK(*h == PacketHeader{4, 0x01, 17, 314, 1, 0});
    ByteVec again;
    write_header(*h, again);
    CHECK(to_hex(again) == to_hex(Bytes{wire}.first(8)));
}

TEST_CASE("parse_header refuses short headers, lengths under 8 and over the limit",
          "[protocol][tds]") {
    const ByteVec wire = read_wire("mstds-4.1-prelogin-request");
    for (std::size_t len = 0; len < 8; ++len)
        CHECK(parse_header(Bytes{wire}.first(len), 32768).error() == codec_errc::truncated);
    CHECK(parse_header(from_hex("12 01 00 07 00 00 01 00"), 32768).error() ==
          codec_errc::malformed);
    CHECK(parse_header(from_hex("12 01 00 00 00 00 01 00"), 32768).error() ==
          codec_errc::malformed);
    CHECK(parse_header(wire, 46).error() == codec_errc::oversized);
    CHECK(parse_header(wire, 47).has_value());
}

TEST_CASE("the assembler yields the same message for every chunking", "[protocol][tds]") {
    for (const auto& name : all_vectors()) {
        INFO(name);
        const ByteVec wire = read_wire(name);
        const Assembled whole = assemble(wire, 0);
        REQUIRE(whole.messages.size() == 1);
        CHECK(whole.messages[0].type == wire[0]);
        CHECK(whole.messages[0].status == wire[1]);
        CHECK(to_hex(whole.payloads[0]) == to_hex(read_payload(name)));
        for (std::size_t chunk : {1, 2, 3, 5, 64}) {
            INFO("chunk " << chunk);
            const Assembled a = assemble(wire, chunk);
            REQUIRE(a.messages.size() == 1);
            CHECK(a.payloads[0] == whole.payloads[0]);
            CHECK(a.messages[0].status == whole.messages[0].status);
        }
    }
}

TEST_CASE("the assembler keeps the first packet's status (RESETCONNECTION)", "[protocol][tds]") {
    const Assembled a = assemble(read_wire("real-rpc-named-proc-resetconnection-request"), 0);
    REQUIRE(a.messages.size() == 1);
    CHECK(a.messages[0].status == (packet_status::eom | packet_status::reset_connection));
    CHECK(a.messages[0].type == static_cast<std::uint8_t>(PacketType::rpc));
}

TEST_CASE("an ATTENTION message is a header-only packet", "[protocol][tds]") {
    const Assembled a = assemble(read_wire("mstds-4.10-attention"), 1);
    REQUIRE(a.messages.size() == 1);
    CHECK(a.messages[0].type == static_cast<std::uint8_t>(PacketType::attention));
    CHECK(a.payloads[0].empty());
}

TEST_CASE("undefined status bits are ignored: 0x04 on non-final packets", "[protocol][tds]") {
    // As in the capture's 8000-byte RPC: status 0x04 on the first packet, 0x01 on the last.
    const ByteVec body = pattern(100);
    ByteVec wire = tds_packet(3, 0x04, Bytes{body}.first(60));
    append(wire, tds_packet(3, 0x01, Bytes{body}.subspan(60), 2));
    const Assembled a = assemble(wire, 7);
    REQUIRE(a.messages.size() == 1);
    CHECK(a.payloads[0] == body);
    CHECK(a.messages[0].packets == 2);
    CHECK(a.messages[0].status == 0x04);
}

TEST_CASE("two messages back to back come out one at a time", "[protocol][tds]") {
    ByteVec wire = read_wire("mstds-4.6-sqlbatch-request");
    append(wire, read_wire("mstds-4.10-attention"));
    append(wire, read_wire("mstds-4.8-rpc-request"));
    for (std::size_t chunk : {0, 1, 5}) {
        const Assembled a = assemble(wire, chunk);
        REQUIRE(a.messages.size() == 3);
        CHECK(a.messages[0].type == 1);
        CHECK(a.messages[1].type == 6);
        CHECK(a.messages[2].type == 3);
    }
}

TEST_CASE("the assembler refuses a packet over the packet limit", "[protocol][tds]") {
    const Assembled a = assemble(read_wire("real-rpc-sp_prepexec-request"), 3, 291);
    CHECK(a.error == make_error_code(codec_errc::oversized));
}

TEST_CASE("the assembler refuses a message over the message limit before its bytes arrive",
          "[protocol][tds]") {
    const ByteVec body = pattern(3000);
    ByteVec wire;
    write_message(PacketType::sql_batch, 0, body, 1024, 1, wire);
    MessageAssembler a{4096, 2000};
    // The second packet's header announces the excess; its payload is not needed.
    auto used = a.feed(Bytes{wire}.first(1024 + 8));
    CHECK(used.error() == codec_errc::oversized);
}

TEST_CASE("the assembler refuses a header length under 8 and a type change mid-message",
          "[protocol][tds]") {
    CHECK(assemble(from_hex("01 01 00 04 00 00 01 00"), 0).error ==
          make_error_code(codec_errc::malformed));
    ByteVec wire = tds_packet(1, 0x00, bytes_of("ab"));
    append(wire, tds_packet(3, 0x01, bytes_of("cd")));
    CHECK(assemble(wire, 0).error == make_error_code(codec_errc::malformed));
}

TEST_CASE("write_message splits at the packet size, EOM on the last packet only",
          "[protocol][tds]") {
    const ByteVec body = pattern(1200);
    ByteVec wire;
    const std::uint8_t next =
        write_message(PacketType::rpc, packet_status::reset_connection, body, 512, 255, wire);
    CHECK(next == 2); // 255, 0, 1: modulo 256
    const auto packets = split_packets(wire);
    REQUIRE(packets.size() == 3);
    CHECK(packets[0].size() == 512);
    CHECK(packets[1].size() == 512);
    CHECK(packets[2].size() == 1200 - 2 * 504 + 8);
    CHECK(packets[0][1] == packet_status::reset_connection);
    CHECK(packets[1][1] == 0);
    CHECK(packets[2][1] == packet_status::eom);
    CHECK(packets[0][6] == 255);
    CHECK(packets[1][6] == 0);
    CHECK(packets[2][6] == 1);
    const Assembled a = assemble(wire, 0);
    REQUIRE(a.messages.size() == 1);
    CHECK(a.payloads[0] == body);
    CHECK(a.messages[0].status == packet_status::reset_connection);
}

TEST_CASE("write_message reproduces the one-packet vectors", "[protocol][tds]") {
    for (const char* name :
         {"mstds-4.1-prelogin-request", "mstds-4.2-login7-request", "mstds-4.6-sqlbatch-request",
          "mstds-4.10-attention", "real-rpc-named-proc-resetconnection-request"}) {
        INFO(name);
        const ByteVec wire = read_wire(name);
        ByteVec out;
        write_message(static_cast<PacketType>(wire[0]), wire[1] & ~packet_status::eom,
                      read_payload(name), 4096, wire[6], out);
        CHECK(to_hex(out) == to_hex(wire));
    }
}

TEST_CASE("write_message clamps the packet size to 512..32767", "[protocol][tds]") {
    const ByteVec body = pattern(40000);
    ByteVec small, big;
    write_message(PacketType::sql_batch, 0, body, 100, 1, small);
    write_message(PacketType::sql_batch, 0, body, 100000, 1, big);
    CHECK(split_packets(small)[0].size() == 512);
    CHECK(split_packets(big)[0].size() == 32767);
    CHECK(assemble(big, 0).payloads.at(0) == body);
}

TEST_CASE("the packet size limit counts the header: a packet of exactly the size is accepted",
          "[protocol][tds]") {
    // A client that negotiated 512 may send packets whose Length is 512, header included.
    for (const std::size_t length : {std::size_t{512}, std::size_t{513}}) {
        const ByteVec body(length - 8, 0x20);
        MessageAssembler a(512, 64u << 20);
        auto used = a.feed(tds_packet(1, 0x01, body));
        if (length == 512) {
            REQUIRE(used.has_value());
            CHECK(*used == length);
            CHECK(a.complete());
        } else {
            CHECK(used.error() == codec_errc::oversized);
        }
    }
}

TEST_CASE("packet_type_name names the types MS-TDS defines", "[protocol][tds]") {
    CHECK(packet_type_name(7) == "bulk load data");
    CHECK(packet_type_name(16) == "LOGIN7");
    CHECK(packet_type_name(18) == "PRELOGIN");
    CHECK(packet_type_name(0x55) == "unknown");
    CHECK(packet_type_name(0) == "unknown");
}
