// LOGIN7 (MS-TDS 2.2.6.4): the fixed part, the offset table checked against the packet,
// password obfuscation, FeatureExt, and the LOGIN7 Sluice sends to backends.

#include "sluice/protocol/tds/login7.hpp"
#include "tds_test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using namespace sluice::protocol;
using namespace sluice::protocol::tds;
using namespace sluice::test;
using namespace sluice::test::tds;

namespace {

Login7 backend_login() {
    Login7 l;
    l.user_name = "app";
    l.password = "s3cr€t!";
    l.database = "shop";
    l.app_name = "sluice";
    l.host_name = "proxy-1";
    l.server_name = "primary";
    l.language = "us_english";
    l.client_interface_name = "sluice";
    l.packet_size = 8192;
    l.type_flags = login7_flags::read_only_intent;
    l.client_pid = 4242;
    l.client_id = {1, 2, 3, 4, 5, 6};
    return l;
}

void set_u16(ByteVec& b, std::size_t at, std::uint16_t v) {
    b[at] = static_cast<std::uint8_t>(v);
    b[at + 1] = static_cast<std::uint8_t>(v >> 8);
}

} // namespace

TEST_CASE("parse_login7 reads the MS-TDS 4.2 login", "[protocol][tds]") {
    auto l = parse_login7(read_payload("mstds-4.2-login7-request"));
    REQUIRE(l.has_value());
    CHECK(l->tds_version == tds_version::v7_2);
    CHECK(l->packet_size == 4096);
    CHECK(l->client_prog_version == 0x07000000);
    CHECK(l->client_pid == 0x100);
    CHECK(l->connection_id == 0);
    CHECK(l->option_flags1 == 0xE0);
    CHECK(l->option_flags2 == 0x03);
    CHECK(l->type_flags == 0);
    CHECK_FALSE(l->read_only_intent());
    CHECK(l->option_flags3 == 0);
    CHECK(l->client_time_zone == 0);
    CHECK(l->client_lcid == 0x0409);
    CHECK(l->host_name == "skostov1");
    CHECK(l->user_name == "sa");
    CHECK(l->password.empty());
    CHECK(l->app_name == "OSQL-32");
    CHECK(l->server_name.empty());
    CHECK(l->client_interface_name == "ODBC");
    CHECK(l->language.empty());
    CHECK(l->database.empty());
    CHECK(l->client_id == std::array<std::uint8_t, 6>{0x00, 0x50, 0x8b, 0xe2, 0xb7, 0x8f});
    CHECK(l->sspi.empty());
    CHECK(l->feature_ext.empty());
}

TEST_CASE("write_login7 rebuilds the MS-TDS 4.2 login from its parsed fields", "[protocol][tds]") {
    const ByteVec payload = read_payload("mstds-4.2-login7-request");
    auto l = parse_login7(payload);
    REQUIRE(l.has_value());
    ByteVec out;
    write_login7(*l, out);
    CHECK(to_hex(out) == to_hex(payload));
}

TEST_CASE("password obfuscation swaps nibbles then XORs 0xA5, and inverts", "[protocol][tds]") {
    // "a" in UCS-2LE: 61 00 -> swap 16, xor a5 -> b3; 00 -> 00 ^ a5 = a5.
    ByteVec b = ucs2("a");
    obfuscate_password(b);
    CHECK(to_hex(b) == "b3a5");
    deobfuscate_password(b);
    CHECK(b == ucs2("a"));
    ByteVec all(256);
    for (std::size_t i = 0; i < 256; ++i)
        all[i] = static_cast<std::uint8_t>(i);
    ByteVec copy = all;
    obfuscate_password(copy);
    deobfuscate_password(copy);
    CHECK(copy == all);
}

TEST_CASE("a backend LOGIN7 round-trips: password, database, read-only intent", "[protocol][tds]") {
    const Login7 l = backend_login();
    ByteVec out;
    write_login7(l, out);
    // The password is not on the wire in clear.
    const ByteVec clear = ucs2("s3cr");
    CHECK(std::search(out.begin(), out.end(), clear.begin(), clear.end()) == out.end());
    auto back = parse_login7(out);
    REQUIRE(back.has_value());
    CHECK(*back == l);
    CHECK(back->read_only_intent());
    CHECK(back->tds_version == tds_version::v7_4);
    CHECK(back->option_flags2 & login7_flags::odbc);
}

TEST_CASE("FeatureExt is skipped by parse and placed after the strings by write",
          "[protocol][tds]") {
    Login7 l = backend_login();
    // SESSIONRECOVERY (0x01) with 3 bytes of data, then the terminator.
    l.feature_ext = from_hex("01 03 00 00 00 aa bb cc ff");
    ByteVec out;
    write_login7(l, out);
    auto back = parse_login7(out);
    REQUIRE(back.has_value());
    CHECK(back->feature_ext == l.feature_ext);
    CHECK(back->option_flags3 & login7_flags::extension);
    l.option_flags3 |= login7_flags::extension;
    CHECK(*back == l);
}

TEST_CASE("parse_login7 refuses every truncation", "[protocol][tds]") {
    ByteVec full;
    write_login7(backend_login(), full);
    for (std::size_t len = 0; len < full.size(); ++len) {
        INFO("length " << len);
        // A cut record whose Length field still claims the whole is truncated; with Length
        // rewritten to match, the offsets point past the end.
        ByteVec cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
        auto l = parse_login7(cut);
        REQUIRE(l.has_error());
        CHECK(l.error() == codec_errc::truncated);
        if (len >= 4) {
            cut[0] = static_cast<std::uint8_t>(len);
            cut[1] = static_cast<std::uint8_t>(len >> 8);
            cut[2] = cut[3] = 0;
            auto again = parse_login7(cut);
            REQUIRE(again.has_error());
            CHECK(again.error() == codec_errc::truncated);
        }
    }
}

TEST_CASE("parse_login7 checks every offset and length against the packet", "[protocol][tds]") {
    const ByteVec good = read_payload("mstds-4.2-login7-request");
    // Each of the nine offset/length pairs, then SSPI, AtchDBFile and ChangePassword.
    const std::size_t pairs[] = {36, 40, 44, 48, 52, 60, 64, 68, 78, 82, 86};
    for (std::size_t at : pairs) {
        INFO("pair at " << at);
        ByteVec b = good;
        set_u16(b, at, 0xFFFF); // offset far outside
        set_u16(b, at + 2, 1);
        CHECK(parse_login7(b).error() == codec_errc::truncated);
        b = good;
        set_u16(b, at, 0x80); // in range, length 0xFFFF
        set_u16(b, at + 2, 0xFFFF);
        CHECK(parse_login7(b).has_error());
        b = good;
        set_u16(b, at, 10); // into the fixed part
        set_u16(b, at + 2, 1);
        CHECK(parse_login7(b).error() == codec_errc::malformed);
        b = good;
        set_u16(b, at, static_cast<std::uint16_t>(good.size() - 1)); // straddles the end
        set_u16(b, at + 2, 2);
        CHECK(parse_login7(b).error() == codec_errc::truncated);
    }
    // The Extension pair is read only with fExtension: then its DWORD must point inside.
    ByteVec b = good;
    b[27] |= login7_flags::extension;
    CHECK(parse_login7(b).error() == codec_errc::malformed); // cbExtension is 0
    set_u16(b, 56, 0x80);
    set_u16(b, 58, 4);
    b[0x80] = 0xFF;
    b[0x81] = 0xFF;
    CHECK(parse_login7(b).error() == codec_errc::truncated);
}

TEST_CASE("parse_login7 refuses names over 128 characters and bytes after Length",
          "[protocol][tds]") {
    Login7 l = backend_login();
    l.user_name = std::string(128, 'u');
    ByteVec out;
    write_login7(l, out);
    REQUIRE(parse_login7(out).has_value());
    // Make UserName claim 129 characters (the bytes are there: it swallows the password).
    ByteVec b = out;
    set_u16(b, 42, 129);
    CHECK(parse_login7(b).error() == codec_errc::malformed);
    b = out;
    b.push_back(0);
    CHECK(parse_login7(b).error() == codec_errc::trailing_bytes);
}

TEST_CASE("a TDS 7.1 LOGIN7 has an 86-byte fixed part", "[protocol][tds]") {
    Login7 l = backend_login();
    l.tds_version = tds_version::v7_1;
    l.change_password.clear();
    ByteVec out;
    write_login7(l, out);
    CHECK(out[36] == 86); // HostName right after the shorter fixed part
    auto back = parse_login7(out);
    REQUIRE(back.has_value());
    CHECK(*back == l);
}
