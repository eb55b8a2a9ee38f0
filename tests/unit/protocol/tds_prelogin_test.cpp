// PRELOGIN (MS-TDS 2.2.6.5): option table parsing, the reply Sluice sends, and the encryption
// negotiation table.

#include "sluice/protocol/tds/prelogin.hpp"
#include "tds_test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using namespace sluice::protocol;
using namespace sluice::protocol::tds;
using namespace sluice::test;
using namespace sluice::test::tds;

TEST_CASE("parse_prelogin reads the MS-TDS 4.1 request", "[protocol][tds]") {
    const ByteVec payload = read_payload("mstds-4.1-prelogin-request");
    auto p = parse_prelogin(payload);
    REQUIRE(p.has_value());
    REQUIRE(p->options.size() == 5);
    CHECK(p->version() == PreloginVersion{9, 0, 0, 0});
    // The vector's comment line says ENCRYPT_OFF, but the byte at the ENCRYPTION offset (32)
    // is 0x01: ENCRYPT_ON. The bytes are what the specification page shows.
    CHECK(p->encryption() == encrypt::on);
    CHECK(p->find(PreloginOption::instopt)->data == ByteVec{0x00});
    CHECK(p->thread_id() == 0x00000DB8);
    CHECK(p->mars() == 1);
    CHECK_FALSE(p->fedauth_required());
}

TEST_CASE("write_prelogin rebuilds the MS-TDS 4.1 request byte for byte", "[protocol][tds]") {
    const ByteVec payload = read_payload("mstds-4.1-prelogin-request");
    auto p = parse_prelogin(payload);
    REQUIRE(p.has_value());
    ByteVec out;
    write_prelogin(*p, out);
    CHECK(to_hex(out) == to_hex(payload));
}

TEST_CASE("a real SQL Server 2008 PRELOGIN reply parses, with an empty THREADID",
          "[protocol][tds]") {
    // Quirk: the reply travels in a packet of type 4 (tabular result), not 0x12.
    const ByteVec wire = read_wire("real-sql2008-prelogin-response");
    CHECK(wire[0] == 0x04);
    auto p = parse_prelogin(read_payload("real-sql2008-prelogin-response"));
    REQUIRE(p.has_value());
    CHECK(p->version() == PreloginVersion{10, 0, 5512, 0});
    CHECK(p->encryption() == encrypt::not_sup);
    CHECK(p->mars() == 0);
    REQUIRE(p->find(PreloginOption::thread_id));
    CHECK(p->find(PreloginOption::thread_id)->data.empty());
    CHECK_FALSE(p->thread_id());
}

TEST_CASE("make_prelogin_reply builds what SQL Server 2008 sends, MARS included",
          "[protocol][tds]") {
    ByteVec out;
    write_prelogin(make_prelogin_reply({10, 0, 5512, 0}, encrypt::not_sup), out);
    CHECK(to_hex(out) == to_hex(read_payload("real-sql2008-prelogin-response")));
    auto p = parse_prelogin(out);
    REQUIRE(p.has_value());
    CHECK(p->mars() == 0); // FreeTDS falls back to TDS 7.1 without it
}

TEST_CASE("parse_prelogin refuses every truncation of the request", "[protocol][tds]") {
    const ByteVec payload = read_payload("mstds-4.1-prelogin-request");
    for (std::size_t len = 0; len < payload.size(); ++len) {
        INFO("length " << len);
        auto p = parse_prelogin(Bytes{payload}.first(len));
        REQUIRE(p.has_error());
        CHECK(p.error() == codec_errc::truncated);
    }
}

TEST_CASE("parse_prelogin refuses offsets outside the payload or into the table",
          "[protocol][tds]") {
    // VERSION at offset 0xFFFF.
    CHECK(parse_prelogin(from_hex("00 ff ff 00 06 ff")).error() == codec_errc::truncated);
    // VERSION pointing into the option table itself.
    CHECK(parse_prelogin(from_hex("00 00 00 00 06 ff 00 00 00 00 00 00")).error() ==
          codec_errc::malformed);
    // ENCRYPTION with two bytes; a repeated option.
    CHECK(parse_prelogin(from_hex("01 00 06 00 02 ff 00 00")).error() == codec_errc::malformed);
    CHECK(parse_prelogin(from_hex("01 00 0b 00 01 01 00 0c 00 01 ff 00 00")).error() ==
          codec_errc::malformed);
    // Unknown options are kept, not refused.
    auto p = parse_prelogin(from_hex("42 00 06 00 02 ff ab cd"));
    REQUIRE(p.has_value());
    CHECK(p->options.at(0).token == 0x42);
}

TEST_CASE("negotiate_encryption follows the MS-TDS 2.2.6.5 table", "[protocol][tds]") {
    using M = EncryptionMode;
    using S = ServerEncryption;
    struct Row {
        std::uint8_t client;
        S server;
        EncryptionDecision expected;
    };
    const Row table[] = {
        {encrypt::off, S::off, {encrypt::off, M::login_only}},
        {encrypt::off, S::on, {encrypt::req, M::full}},
        {encrypt::off, S::not_sup, {encrypt::not_sup, M::none}},
        {encrypt::on, S::off, {encrypt::on, M::full}},
        {encrypt::on, S::on, {encrypt::on, M::full}},
        {encrypt::on, S::not_sup, {encrypt::not_sup, M::terminate}},
        {encrypt::not_sup, S::off, {encrypt::not_sup, M::none}},
        {encrypt::not_sup, S::on, {encrypt::req, M::terminate}},
        {encrypt::not_sup, S::not_sup, {encrypt::not_sup, M::none}},
        {encrypt::req, S::off, {encrypt::on, M::full}},
        {encrypt::req, S::on, {encrypt::on, M::full}},
        {encrypt::req, S::not_sup, {encrypt::not_sup, M::terminate}},
        // ENCRYPT_CLIENT_CERT is OR'ed in; Sluice ignores the bit.
        {encrypt::on | encrypt::client_cert, S::on, {encrypt::on, M::full}},
        {0x07, S::on, {encrypt::not_sup, M::terminate}},
    };
    for (const auto& row : table) {
        INFO("client " << int(row.client) << " server " << int(row.server));
        CHECK(negotiate_encryption(row.client, row.server) == row.expected);
    }
}
