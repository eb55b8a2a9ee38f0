// Packet framing: PacketSplitter, frame_message, assemble_payload, write_packets.

#include "sluice/protocol/mysql/packet.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using namespace sluice::protocol;
using namespace sluice::protocol::mysql;
using namespace sluice::test;

namespace {

// A payload of `size` bytes with a recognisable pattern (so misplaced bytes show).
ByteVec pattern(std::size_t size) {
    ByteVec p(size);
    for (std::size_t i = 0; i < size; ++i)
        p[i] = static_cast<std::uint8_t>((i * 7 + i / 251) & 0xFF);
    return p;
}

std::size_t header_length(const ByteVec& wire, std::size_t pos) {
    return std::size_t{wire[pos]} | (std::size_t{wire[pos + 1]} << 8) |
           (std::size_t{wire[pos + 2]} << 16);
}

} // namespace

TEST_CASE("write_packets frames a COM_QUERY exactly as the mariadb CLI sends it",
          "[protocol][mysql]") {
    // Captured from the mariadb CLI (tests/vectors/mysql/capture.py relay): "select 1".
    const ByteVec expected = from_hex("09000000 0373656c6563742031");
    ByteVec out;
    const std::uint8_t next = write_packets(bytes_of("\x03select 1"), 0, out);
    CHECK(to_hex(out) == to_hex(expected));
    CHECK(next == 1);
}

TEST_CASE("write_packets appends to what the buffer already holds", "[protocol][mysql]") {
    ByteVec out{0xAA};
    write_packets(bytes_of("x"), 5, out);
    CHECK(to_hex(out) == "aa01000005"
                         "78");
}

TEST_CASE("write_packets writes an empty payload as one empty packet", "[protocol][mysql]") {
    ByteVec out;
    CHECK(write_packets({}, 3, out) == 4);
    CHECK(to_hex(out) == "00000003");
}

TEST_CASE("PacketSplitter returns the packet at the front of the input, viewed in place",
          "[protocol][mysql]") {
    const ByteVec in = from_hex("03000007 616263 ffff");
    auto step = PacketSplitter{100}.next(in);
    REQUIRE(step.has_value());
    REQUIRE(step->has_value());
    const Packet& p = **step;
    CHECK(p.seq == 7);
    CHECK(string_of(p.payload) == "abc");
    CHECK(p.payload.data() == in.data() + 4);
    CHECK(p.wire_size() == 7);
}

TEST_CASE("PacketSplitter waits while the input holds only part of a packet", "[protocol][mysql]") {
    const ByteVec in = from_hex("05000001 6162636465");
    for (std::size_t len = 0; len < in.size(); ++len) {
        INFO("length " << len);
        auto step = PacketSplitter{100}.next(Bytes{in}.first(len));
        REQUIRE(step.has_value());
        CHECK_FALSE(step->has_value());
    }
    auto whole = PacketSplitter{100}.next(in);
    REQUIRE(whole.has_value());
    CHECK(whole->has_value());
}

TEST_CASE("PacketSplitter accepts an empty packet", "[protocol][mysql]") {
    const ByteVec in = from_hex("00000009");
    auto step = PacketSplitter{0}.next(in);
    REQUIRE(step.has_value());
    REQUIRE(step->has_value());
    CHECK((*step)->payload.empty());
    CHECK((*step)->seq == 9);
}

TEST_CASE("PacketSplitter refuses an oversized packet from its header alone", "[protocol][mysql]") {
    // Only the 4 header bytes are there: the limit is checked before the payload arrives.
    const ByteVec header = from_hex("65000000"); // 101 bytes announced
    auto over = PacketSplitter{100}.next(header);
    REQUIRE(over.has_error());
    CHECK(over.error() == codec_errc::oversized);

    auto at_limit = PacketSplitter{101}.next(header);
    REQUIRE(at_limit.has_value());
    CHECK_FALSE(at_limit->has_value());

    const ByteVec max_header = from_hex("ffffff00");
    auto max = PacketSplitter{max_packet_payload - 1}.next(max_header);
    REQUIRE(max.has_error());
    CHECK(max.error() == codec_errc::oversized);
}

TEST_CASE("PacketSplitter splits a captured result set into its packets", "[protocol][mysql]") {
    const ByteVec stream = read_vector("cli_select_rows");
    Bytes rest{stream};
    std::vector<std::uint8_t> seqs;
    while (!rest.empty()) {
        auto step = PacketSplitter{max_packet_payload}.next(rest);
        REQUIRE(step.has_value());
        REQUIRE(step->has_value());
        seqs.push_back((*step)->seq);
        rest = rest.subspan((*step)->wire_size());
    }
    CHECK(seqs == std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("frame_message describes a one-packet message", "[protocol][mysql]") {
    ByteVec in = from_hex("09000000 0373656c6563742031");
    append(in, from_hex("01000000 0e")); // the next command must be left alone
    auto f = frame_message(in, 1024);
    REQUIRE(f.has_value());
    REQUIRE(f->has_value());
    const MessageFrame& m = **f;
    CHECK(m.wire_size == 13);
    CHECK(m.payload_size == 9);
    CHECK(m.first_seq == 0);
    CHECK(m.next_seq == 1);
    CHECK(m.first_byte == 0x03);
    CHECK(m.packets == 1);

    ByteVec scratch;
    const Bytes payload = assemble_payload(in, m, scratch);
    CHECK(string_of(payload) == "\x03select 1");
    CHECK(payload.data() == in.data() + 4); // a one-packet payload is not copied
    CHECK(scratch.empty());
}

TEST_CASE("frame_message describes an empty message", "[protocol][mysql]") {
    const ByteVec in = from_hex("00000004");
    auto f = frame_message(in, 0);
    REQUIRE(f.has_value());
    REQUIRE(f->has_value());
    CHECK((*f)->wire_size == 4);
    CHECK((*f)->payload_size == 0);
    CHECK((*f)->first_byte == 0);
    CHECK((*f)->first_seq == 4);
    CHECK((*f)->next_seq == 5);
    CHECK((*f)->packets == 1);
}

TEST_CASE("frame_message waits for incomplete input at every length", "[protocol][mysql]") {
    ByteVec in;
    write_packets(bytes_of("\x03SELECT * FROM t"), 0, in);
    for (std::size_t len = 0; len < in.size(); ++len) {
        INFO("length " << len);
        auto f = frame_message(Bytes{in}.first(len), 1024);
        REQUIRE(f.has_value());
        CHECK_FALSE(f->has_value());
    }
}

TEST_CASE("frame_message lets the sequence number wrap from 255 to 0", "[protocol][mysql]") {
    const ByteVec payload = pattern(max_packet_payload + 3);
    ByteVec in;
    CHECK(write_packets(payload, 255, in) == 1);
    CHECK(in[3] == 255);
    CHECK(in[4 + max_packet_payload + 3] == 0);
    auto f = frame_message(in, 1u << 25);
    REQUIRE(f.has_value());
    REQUIRE(f->has_value());
    CHECK((*f)->first_seq == 255);
    CHECK((*f)->next_seq == 1);
}

TEST_CASE("A payload of exactly 0xFFFFFF bytes is followed by an empty packet",
          "[protocol][mysql]") {
    const ByteVec payload = pattern(max_packet_payload);
    ByteVec wire;
    CHECK(write_packets(payload, 0, wire) == 2);
    REQUIRE(wire.size() == max_packet_payload + 8);
    CHECK(header_length(wire, 0) == max_packet_payload);
    CHECK(wire[3] == 0);
    CHECK(to_hex(Bytes{wire}.subspan(max_packet_payload + 4)) == "00000001");

    auto f = frame_message(wire, max_packet_payload);
    REQUIRE(f.has_value());
    REQUIRE(f->has_value());
    CHECK((*f)->packets == 2);
    CHECK((*f)->wire_size == wire.size());
    CHECK((*f)->payload_size == max_packet_payload);
    CHECK((*f)->first_byte == payload[0]);
    CHECK((*f)->next_seq == 2);

    ByteVec scratch;
    const Bytes assembled = assemble_payload(wire, **f, scratch);
    CHECK(assembled.size() == payload.size());
    CHECK(std::equal(assembled.begin(), assembled.end(), payload.begin()));

    // Without the empty packet the message is not complete yet.
    auto partial = frame_message(Bytes{wire}.first(wire.size() - 1), max_packet_payload);
    REQUIRE(partial.has_value());
    CHECK_FALSE(partial->has_value());
}

TEST_CASE("A 16 MiB payload splits at 0xFFFFFF bytes and assembles back", "[protocol][mysql]") {
    const std::size_t size = (std::size_t{1} << 24) + 100; // 16 MiB + 100
    const ByteVec payload = pattern(size);
    ByteVec wire;
    CHECK(write_packets(payload, 3, wire) == 5);
    const std::size_t tail = size - max_packet_payload;
    REQUIRE(wire.size() == size + 8);
    CHECK(header_length(wire, 0) == max_packet_payload);
    CHECK(wire[3] == 3);
    CHECK(header_length(wire, max_packet_payload + 4) == tail);
    CHECK(wire[max_packet_payload + 7] == 4);

    // Extra bytes after the message are not part of it.
    ByteVec in = wire;
    append(in, from_hex("01000000 0e"));
    auto f = frame_message(in, size);
    REQUIRE(f.has_value());
    REQUIRE(f->has_value());
    CHECK((*f)->packets == 2);
    CHECK((*f)->wire_size == wire.size());
    CHECK((*f)->payload_size == size);
    CHECK((*f)->first_seq == 3);
    CHECK((*f)->next_seq == 5);

    ByteVec scratch;
    const Bytes assembled = assemble_payload(in, **f, scratch);
    REQUIRE(assembled.size() == size);
    CHECK(std::equal(assembled.begin(), assembled.end(), payload.begin()));
    CHECK(assembled.data() == scratch.data());

    // Incomplete at the lengths where the framer changes its mind: around each header and
    // at the very end (every length would take minutes for 16 MiB; the small message above
    // covers every length).
    const std::size_t second = max_packet_payload + 4;
    for (std::size_t len :
         {std::size_t{0}, std::size_t{3}, std::size_t{4}, std::size_t{5}, second - 1, second,
          second + 1, second + 3, second + 4, wire.size() - 1}) {
        INFO("length " << len);
        auto part = frame_message(Bytes{wire}.first(len), size);
        REQUIRE(part.has_value());
        CHECK_FALSE(part->has_value());
    }
}

TEST_CASE("Two maximal packets and an empty one make a payload of 2 x 0xFFFFFF bytes",
          "[protocol][mysql]") {
    const ByteVec payload = pattern(2 * max_packet_payload);
    ByteVec wire;
    CHECK(write_packets(payload, 0, wire) == 3);
    REQUIRE(wire.size() == payload.size() + 12);
    CHECK(header_length(wire, 0) == max_packet_payload);
    CHECK(header_length(wire, max_packet_payload + 4) == max_packet_payload);
    CHECK(to_hex(Bytes{wire}.subspan(wire.size() - 4)) == "00000002");
    auto f = frame_message(wire, payload.size());
    REQUIRE(f.has_value());
    REQUIRE(f->has_value());
    CHECK((*f)->packets == 3);
    ByteVec scratch;
    const Bytes assembled = assemble_payload(wire, **f, scratch);
    CHECK(assembled.size() == payload.size());
    CHECK(std::equal(assembled.begin(), assembled.end(), payload.begin()));
}

TEST_CASE("frame_message refuses an oversized message before its bytes arrive",
          "[protocol][mysql]") {
    SECTION("a single packet, from its header") {
        const ByteVec header = from_hex("e9030000"); // 1001 bytes announced
        auto f = frame_message(header, 1000);
        REQUIRE(f.has_error());
        CHECK(f.error() == codec_errc::oversized);
    }
    SECTION("a continued message, from the header of the packet that crosses the limit") {
        ByteVec wire;
        write_packets(pattern(max_packet_payload + 10), 0, wire);
        // The first packet fits; the continuation's header pushes the total over the limit,
        // before any of the continuation's payload is there.
        const Bytes upto_second_header = Bytes{wire}.first(max_packet_payload + 8);
        auto f = frame_message(upto_second_header, max_packet_payload + 9);
        REQUIRE(f.has_error());
        CHECK(f.error() == codec_errc::oversized);
        auto fits = frame_message(wire, max_packet_payload + 10);
        REQUIRE(fits.has_value());
        CHECK(fits->has_value());
    }
    SECTION("a maximal first packet, when only its header is there") {
        const ByteVec header = from_hex("ffffff00");
        auto f = frame_message(header, 1u << 20);
        REQUIRE(f.has_error());
        CHECK(f.error() == codec_errc::oversized);
    }
}

TEST_CASE("frame_message refuses a continuation packet with the wrong sequence number",
          "[protocol][mysql]") {
    ByteVec wire;
    write_packets(pattern(max_packet_payload + 10), 0, wire);
    const std::size_t second = max_packet_payload + 4;
    for (std::uint8_t bad : {std::uint8_t{0}, std::uint8_t{2}, std::uint8_t{255}}) {
        INFO("sequence " << int{bad});
        wire[second + 3] = bad;
        // Detected from the continuation's header alone.
        auto f = frame_message(Bytes{wire}.first(second + 4), 1u << 25);
        REQUIRE(f.has_error());
        CHECK(f.error() == codec_errc::bad_sequence);
    }
}

TEST_CASE("command_name names commands for logs and labels", "[protocol][mysql]") {
    CHECK(std::string(command_name(0x03)) == "query");
    CHECK(std::string(command_name(0x16)) == "stmt_prepare");
    CHECK(std::string(command_name(0x1F)) == "reset_connection");
    CHECK(std::string(command_name(0x20)) == "unknown");
    CHECK(std::string(command_name(0xFF)) == "unknown");
}
