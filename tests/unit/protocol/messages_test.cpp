// Connection-phase and generic response messages: golden vectors both ways, round trips,
// truncation at every length, trailing bytes.

#include "sluice/protocol/mysql/messages.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using namespace sluice::protocol;
using namespace sluice::protocol::mysql;
using namespace sluice::test;

namespace {

// A real MariaDB 10.11 greeting, captured from the fixture's primary (tests/fixtures/
// topology.sh, 127.0.0.1:3307) by tests/vectors/mysql/capture.py through its recording relay
// (the same bytes are in tests/vectors/mysql/cli_greeting.hex). Payload only.
const ByteVec mariadb_greeting = from_hex(
    "0a352e352e352d31302e31312e31392d4d6172696144422d302b646562313275312d6c6f6700320000004237"
    "2d783a54782200feff2d0200ff81150000000000001d0000003b427a61566b387564743c6c006d7973716c5f"
    "6e61746976655f70617373776f726400");

// The HandshakeResponse41 the mariadb CLI (libmariadb 3.3.20) sent back to that greeting,
// user app, password app, database sluice_test (cli_handshake_response.hex). Payload only.
const ByteVec cli_response = from_hex(
    "8ca2bf000000100021000000000000000000000000000000000000001d000000617070001467787a635bd590"
    "5381e08e71884059446a459b27736c756963655f74657374006d7973716c5f6e61746976655f70617373776f"
    "7264007f035f6f73054c696e75780c5f636c69656e745f6e616d650a6c69626d617269616462045f70696405"
    "31363738320f5f636c69656e745f76657273696f6e06332e332e3230095f706c6174666f726d067838365f36"
    "340c70726f6772616d5f6e616d65056d7973716c0c5f7365727665725f686f7374093132372e302e302e31");

template <class T>
ByteVec written(void (*write)(const T&, std::vector<std::uint8_t>&), const T& v) {
    ByteVec out;
    write(v, out);
    return out;
}

ByteVec with_extra(ByteVec b, std::uint8_t extra = 0x42) {
    b.push_back(extra);
    return b;
}

} // namespace

// ---- Protocol::HandshakeV10 ----

TEST_CASE("parse_greeting reads a real MariaDB 10.11 greeting", "[protocol][mysql]") {
    auto g = parse_greeting(mariadb_greeting);
    REQUIRE(g.has_value());
    CHECK(g->server_version == "5.5.5-10.11.19-MariaDB-0+deb12u1-log");
    CHECK(g->connection_id == 50);
    CHECK(string_of(g->auth_data) == "B7-x:Tx\";BzaVk8udt<l");
    CHECK(g->capabilities == 0x81fffffeu);
    CHECK_FALSE(g->capabilities & cap::long_password); // MariaDB: extended capabilities follow
    CHECK(g->capabilities & cap::deprecate_eof);
    CHECK(g->charset == 45);
    CHECK(g->status == status::autocommit);
    CHECK(g->mariadb_ext_capabilities == 0x1d);
    CHECK(g->auth_plugin == "mysql_native_password");
}

TEST_CASE("write_greeting reproduces the real MariaDB greeting byte for byte",
          "[protocol][mysql]") {
    auto g = parse_greeting(mariadb_greeting);
    REQUIRE(g.has_value());
    CHECK(to_hex(written(write_greeting, *g)) == to_hex(mariadb_greeting));
}

TEST_CASE("A greeting round-trips through write_greeting and parse_greeting", "[protocol][mysql]") {
    Greeting g;
    g.server_version = "8.0.36";
    g.connection_id = 0xDEADBEEF;
    g.auth_data = bytes_of("abcdefghijklmnopqrst");
    g.capabilities = cap::long_password | cap::protocol_41 | cap::secure_connection |
                     cap::plugin_auth | cap::deprecate_eof | cap::connect_attrs;
    g.charset = 255;
    g.status = status::autocommit | status::in_trans;
    g.auth_plugin = "caching_sha2_password";
    // With CLIENT_LONG_PASSWORD set (MySQL) the MariaDB field is not sent.
    const ByteVec wire = written(write_greeting, g);
    auto back = parse_greeting(wire);
    REQUIRE(back.has_value());
    CHECK(*back == g);

    g.capabilities &= ~cap::long_password;
    g.mariadb_ext_capabilities = 0x1d;
    auto back2 = parse_greeting(written(write_greeting, g));
    REQUIRE(back2.has_value());
    CHECK(*back2 == g);

    g.capabilities &= ~cap::plugin_auth;
    g.auth_plugin.clear();
    auto back3 = parse_greeting(written(write_greeting, g));
    REQUIRE(back3.has_value());
    CHECK(*back3 == g);
}

TEST_CASE("parse_greeting refuses a greeting truncated anywhere before the plugin name",
          "[protocol][mysql]") {
    // Everything up to the end of auth-plugin-data-part-2 has a known length; the plugin name
    // is the rest of the packet (its NUL is optional), so a cut there is not detectable.
    const std::size_t plugin_at = mariadb_greeting.size() - 22;
    auto full = parse_greeting(mariadb_greeting);
    REQUIRE(full.has_value());
    for (std::size_t len = 0; len < mariadb_greeting.size(); ++len) {
        INFO("length " << len);
        auto g = parse_greeting(Bytes{mariadb_greeting}.first(len));
        if (len < plugin_at) {
            REQUIRE(g.has_error());
            CHECK(g.error() == codec_errc::truncated);
        } else {
            // Without its NUL (a server bug MySQL clients tolerate) the name is complete.
            REQUIRE(g.has_value());
            CHECK(g->auth_plugin == full->auth_plugin.substr(0, len - plugin_at));
        }
    }
}

TEST_CASE("crash-greeting-part2-without-nul: a nonce part without its NUL round-trips",
          "[protocol][mysql]") {
    // Found by fuzz_handshake (tests/fuzz/corpus/handshake/crash-greeting-part2-without-nul):
    // a 13-byte auth-plugin-data-part-2 without a NUL was written back with a length byte one
    // too short for the NUL the writer did not add, so the plugin name's first byte was read
    // as nonce.
    const ByteVec crash = from_hex(
        "0a352e352e352d31302e31312e31392d4d6172696144422d302b646562313275312d6c6f6700320000004237"
        "2d783a54782200feff2d0200ff81150000000000003200000042372d783a54782200feff2d0200ff811500"
        "00000000001d0000003b427a6156726400");
    auto g = parse_greeting(crash);
    REQUIRE(g.has_value());
    CHECK(g->auth_data.size() == 21);
    CHECK(g->auth_plugin.size() == 21);
    auto again = parse_greeting(written(write_greeting, *g));
    REQUIRE(again.has_value());
    CHECK(*again == *g);
}

TEST_CASE("Greetings round-trip with nonces of unusual length", "[protocol][mysql]") {
    Greeting g;
    g.server_version = "x";
    g.capabilities = cap::long_password | cap::protocol_41 | cap::secure_connection;
    SECTION("13 bytes in part 2 without CLIENT_PLUGIN_AUTH: no room for the NUL") {
        g.auth_data = bytes_of("12345678abcdefghijklm");
    }
    SECTION("the longest nonce the length byte can announce, with CLIENT_PLUGIN_AUTH") {
        g.capabilities |= cap::plugin_auth;
        g.auth_plugin = "p";
        g.auth_data = ByteVec(255, 'n');
    }
    SECTION("a 30-byte nonce with CLIENT_PLUGIN_AUTH") {
        g.capabilities |= cap::plugin_auth;
        g.auth_plugin = "p";
        g.auth_data = ByteVec(30, 'n');
    }
    const ByteVec wire = written(write_greeting, g);
    auto back = parse_greeting(wire);
    REQUIRE(back.has_value());
    CHECK(*back == g);
}

TEST_CASE("parse_greeting ignores the nonce length byte without CLIENT_PLUGIN_AUTH",
          "[protocol][mysql]") {
    // The length byte is only meaningful with CLIENT_PLUGIN_AUTH; part 2 is then 13 bytes.
    Greeting g;
    g.server_version = "5.1.73";
    g.auth_data = bytes_of("abcdefghijklmnopqrst");
    g.capabilities = cap::long_password | cap::protocol_41 | cap::secure_connection;
    ByteVec wire = written(write_greeting, g);
    const std::size_t auth_len_at = 1 + 7 + 4 + 8 + 1 + 2 + 1 + 2 + 2;
    REQUIRE(wire[auth_len_at] == 0);
    wire[auth_len_at] = 40;
    auto back = parse_greeting(wire);
    REQUIRE(back.has_value());
    CHECK(*back == g);
}

TEST_CASE("parse_greeting refuses bytes after a greeting without a plugin name",
          "[protocol][mysql]") {
    Greeting g;
    g.server_version = "5.7.44";
    g.auth_data = bytes_of("abcdefghijklmnopqrst");
    g.capabilities = cap::long_password | cap::protocol_41 | cap::secure_connection;
    auto r = parse_greeting(with_extra(written(write_greeting, g)));
    REQUIRE(r.has_error());
    CHECK(r.error() == codec_errc::trailing_bytes);
}

TEST_CASE("parse_greeting refuses a protocol version other than 10", "[protocol][mysql]") {
    ByteVec bad = mariadb_greeting;
    bad[0] = 9;
    auto r = parse_greeting(bad);
    REQUIRE(r.has_error());
    CHECK(r.error() == codec_errc::malformed);
}

// ---- Protocol::HandshakeResponse41 ----

TEST_CASE("parse_handshake_response reads what the mariadb CLI sends", "[protocol][mysql]") {
    auto h = parse_handshake_response(cli_response);
    REQUIRE(h.has_value());
    CHECK(h->capabilities == 0x00bfa28cu);
    CHECK(h->capabilities & cap::plugin_auth_lenenc_data);
    CHECK_FALSE(h->capabilities & cap::deprecate_eof); // the CLI does not ask for it
    CHECK(h->max_packet == 0x00100000u);
    CHECK(h->charset == 33);
    CHECK(h->mariadb_ext_capabilities == 0x1d);
    CHECK_FALSE(h->is_ssl_request);
    CHECK(h->user == "app");
    CHECK(to_hex(h->auth_response) == "67787a635bd5905381e08e71884059446a459b27");
    CHECK(h->database == "sluice_test");
    CHECK(h->auth_plugin == "mysql_native_password");
    using Attr = std::pair<std::string, std::string>;
    CHECK(h->attributes == std::vector<Attr>{{"_os", "Linux"},
                                             {"_client_name", "libmariadb"},
                                             {"_pid", "16782"},
                                             {"_client_version", "3.3.20"},
                                             {"_platform", "x86_64"},
                                             {"program_name", "mysql"},
                                             {"_server_host", "127.0.0.1"}});
}

TEST_CASE("write_handshake_response reproduces the CLI's response byte for byte",
          "[protocol][mysql]") {
    auto h = parse_handshake_response(cli_response);
    REQUIRE(h.has_value());
    CHECK(to_hex(written(write_handshake_response, *h)) == to_hex(cli_response));
}

TEST_CASE("parse_handshake_response reads a captured caching_sha2_password response",
          "[protocol][mysql]") {
    // tests/vectors/mysql/switch_response.hex: CLIENT_SECURE_CONNECTION (1-byte length), no
    // CLIENT_CONNECT_WITH_DB, no attributes.
    const ByteVec payload = payload_of(read_vector("switch_response"));
    auto h = parse_handshake_response(payload);
    REQUIRE(h.has_value());
    CHECK(h->user == "app");
    CHECK(h->auth_response.size() == 32);
    CHECK(h->database.empty());
    CHECK(h->auth_plugin == "caching_sha2_password");
    CHECK(to_hex(written(write_handshake_response, *h)) == to_hex(payload));
}

TEST_CASE("Handshake responses round-trip in each auth-response encoding", "[protocol][mysql]") {
    HandshakeResponse h;
    h.max_packet = 1u << 24;
    h.charset = 45;
    h.user = "alice";
    h.auth_response = from_hex("0102030405060708090a0b0c0d0e0f1011121314");
    h.database = "shop";
    h.auth_plugin = "mysql_native_password";
    h.attributes = {{"_client_name", "sluice"}, {"k", ""}};
    const std::uint32_t base =
        cap::protocol_41 | cap::connect_with_db | cap::plugin_auth | cap::connect_attrs;
    SECTION("length-encoded") {
        h.capabilities = base | cap::secure_connection | cap::plugin_auth_lenenc_data;
    }
    SECTION("one length byte") { h.capabilities = base | cap::secure_connection; }
    SECTION("NUL-terminated") { h.capabilities = base; }
    SECTION("with MariaDB extended capabilities") {
        h.capabilities = base | cap::secure_connection;
        h.mariadb_ext_capabilities = 0x1d;
    }
    SECTION("no database, no plugin, no attributes") {
        h.capabilities = cap::protocol_41 | cap::secure_connection;
        h.database.clear();
        h.auth_plugin.clear();
        h.attributes.clear();
    }
    SECTION("empty password") {
        h.capabilities = base | cap::secure_connection;
        h.auth_response.clear();
    }
    auto back = parse_handshake_response(written(write_handshake_response, h));
    REQUIRE(back.has_value());
    CHECK(*back == h);
}

TEST_CASE("An SSLRequest is the first 32 bytes of a response with CLIENT_SSL",
          "[protocol][mysql]") {
    HandshakeResponse r;
    r.capabilities = 0x00bfa28cu | cap::ssl;
    r.max_packet = 0x00100000u;
    r.charset = 33;
    r.mariadb_ext_capabilities = 0x1d;
    r.is_ssl_request = true;
    const ByteVec wire = written(write_handshake_response, r);
    // The first 32 bytes the CLI sends with --ssl: its capabilities with CLIENT_SSL (0x800).
    CHECK(to_hex(wire) == "8caabf000000100021000000000000000000000000000000000000001d000000");
    auto back = parse_handshake_response(wire);
    REQUIRE(back.has_value());
    CHECK(back->is_ssl_request);
    CHECK(*back == r);
}

TEST_CASE("parse_handshake_response refuses the CLI's response truncated inside its fixed "
          "fields",
          "[protocol][mysql]") {
    // Database, plugin and attributes are each optional at the end of the packet, so a cut
    // right after one of them reads as a shorter, valid response; everything before the end
    // of the auth response is required.
    const std::size_t auth_end = 32 + 4 + 1 + 20;
    auto full = parse_handshake_response(cli_response);
    REQUIRE(full.has_value());
    for (std::size_t len = 0; len < cli_response.size(); ++len) {
        INFO("length " << len);
        auto h = parse_handshake_response(Bytes{cli_response}.first(len));
        if (len < auth_end) {
            REQUIRE(h.has_error());
            CHECK(h.error() == codec_errc::truncated);
        } else if (h.has_value()) {
            CHECK(*h != *full);
        }
    }
}

TEST_CASE("parse_handshake_response refuses bytes after the last field", "[protocol][mysql]") {
    HandshakeResponse h;
    h.capabilities = cap::protocol_41 | cap::secure_connection | cap::plugin_auth;
    h.user = "u";
    h.auth_plugin = "mysql_native_password";
    auto r = parse_handshake_response(with_extra(written(write_handshake_response, h)));
    REQUIRE(r.has_error());
    CHECK(r.error() == codec_errc::trailing_bytes);
}

TEST_CASE("parse_handshake_response refuses a pre-4.1 response", "[protocol][mysql]") {
    ByteVec old = cli_response;
    old[1] &= static_cast<std::uint8_t>(~(cap::protocol_41 >> 8));
    auto r = parse_handshake_response(old);
    REQUIRE(r.has_error());
    CHECK(r.error() == codec_errc::malformed);
}

// ---- COM_CHANGE_USER ----

namespace {
constexpr std::uint32_t change_user_caps =
    cap::protocol_41 | cap::secure_connection | cap::plugin_auth | cap::connect_attrs;

// COM_CHANGE_USER by hand from the protocol documentation: user "app", a 20-byte scramble,
// schema "sluice_test", character set 45, plugin mysql_native_password, one attribute.
const ByteVec change_user_golden =
    from_hex("11"                                           // COM_CHANGE_USER
             "61707000"                                     // user "app"
             "14 0102030405060708090a0b0c0d0e0f1011121314"  // auth response, 1-byte length
             "736c756963655f7465737400"                     // schema "sluice_test"
             "2d00"                                         // character set 45
             "6d7973716c5f6e61746976655f70617373776f726400" // plugin
             "0a 035f6f73 054c696e7578");                   // attributes: _os = Linux
} // namespace

TEST_CASE("parse_change_user reads a COM_CHANGE_USER and writes it back", "[protocol][mysql]") {
    auto c = parse_change_user(change_user_golden, change_user_caps);
    REQUIRE(c.has_value());
    CHECK(c->user == "app");
    CHECK(to_hex(c->auth_response) == "0102030405060708090a0b0c0d0e0f1011121314");
    CHECK(c->database == "sluice_test");
    CHECK(c->charset == 45);
    CHECK(c->auth_plugin == "mysql_native_password");
    CHECK(c->attributes == std::vector<std::pair<std::string, std::string>>{{"_os", "Linux"}});
    ByteVec out;
    write_change_user(*c, change_user_caps, out);
    CHECK(to_hex(out) == to_hex(change_user_golden));
}

TEST_CASE("parse_change_user accepts the short pre-plugin form", "[protocol][mysql]") {
    const ByteVec old = from_hex("11 61707000 00 00"); // user, empty auth, empty schema
    auto c = parse_change_user(old, change_user_caps);
    REQUIRE(c.has_value());
    CHECK(c->user == "app");
    CHECK(c->auth_response.empty());
    CHECK(c->database.empty());
    CHECK(c->charset == 0);
    CHECK(c->auth_plugin.empty());
}

TEST_CASE("COM_CHANGE_USER round-trips with and without CLIENT_SECURE_CONNECTION",
          "[protocol][mysql]") {
    ChangeUser c;
    c.user = "bob";
    c.auth_response = from_hex("aabbccdd");
    c.database = "db1";
    c.charset = 224;
    c.auth_plugin = "caching_sha2_password";
    c.attributes = {{"a", "1"}, {"b", "2"}};
    std::uint32_t caps = change_user_caps;
    SECTION("secure connection") {}
    SECTION("NUL-terminated auth") { caps &= ~cap::secure_connection; }
    SECTION("no plugin, no attributes") {
        caps = cap::protocol_41 | cap::secure_connection;
        c.auth_plugin.clear();
        c.attributes.clear();
    }
    ByteVec out;
    write_change_user(c, caps, out);
    auto back = parse_change_user(out, caps);
    REQUIRE(back.has_value());
    CHECK(*back == c);
}

TEST_CASE("parse_change_user refuses truncated input at every other length", "[protocol][mysql]") {
    // The trailing fields are optional: a cut right after the schema, the character set or
    // the plugin name is a valid, shorter COM_CHANGE_USER; every other cut is truncation.
    const std::size_t schema_end = 1 + 4 + 21 + 12;
    const std::size_t plugin_end = schema_end + 2 + 22;
    for (std::size_t len = 0; len < change_user_golden.size(); ++len) {
        INFO("length " << len);
        auto c = parse_change_user(Bytes{change_user_golden}.first(len), change_user_caps);
        if (len == schema_end) {
            REQUIRE(c.has_value());
            CHECK(c->charset == 0);
        } else if (len == schema_end + 2) {
            REQUIRE(c.has_value());
            CHECK(c->charset == 45);
            CHECK(c->auth_plugin.empty());
        } else if (len == plugin_end) {
            REQUIRE(c.has_value());
            CHECK(c->attributes.empty());
        } else {
            REQUIRE(c.has_error());
            CHECK(c.error() == codec_errc::truncated);
        }
    }
}

TEST_CASE("parse_change_user refuses trailing bytes and other commands", "[protocol][mysql]") {
    const std::uint32_t caps = cap::protocol_41 | cap::secure_connection | cap::plugin_auth;
    ChangeUser c;
    c.user = "u";
    c.auth_plugin = "mysql_native_password";
    ByteVec out;
    write_change_user(c, caps, out);
    auto extra = parse_change_user(with_extra(out), caps);
    REQUIRE(extra.has_error());
    CHECK(extra.error() == codec_errc::trailing_bytes);

    out[0] = 0x03;
    auto other = parse_change_user(out, caps);
    REQUIRE(other.has_error());
    CHECK(other.error() == codec_errc::unexpected_message);
}

// ---- OK_Packet ----

TEST_CASE("parse_ok reads the OK_Packet example of the protocol documentation",
          "[protocol][mysql]") {
    // dev.mysql.com page_protocol_basic_ok_packet: "07 00 00 02 00 00 00 02 00 00 00", OK with
    // 0 affected rows, last-insert-id 0, AUTOCOMMIT, 0 warnings.
    const ByteVec wire = from_hex("07000002 00000002000000");
    auto ok = parse_ok(payload_of(wire));
    REQUIRE(ok.has_value());
    CHECK(ok->header == 0x00);
    CHECK(ok->affected_rows == 0);
    CHECK(ok->last_insert_id == 0);
    CHECK(ok->status == status::autocommit);
    CHECK(ok->warnings == 0);
    CHECK(ok->info.empty());
    CHECK(to_hex(written(write_ok, *ok)) == to_hex(payload_of(wire)));
}

TEST_CASE("parse_ok reads captured MariaDB OK packets and writes them back", "[protocol][mysql]") {
    SECTION("an INSERT of 3 rows, with its info text") {
        const ByteVec p = payload_of(read_vector("cli_insert"));
        auto ok = parse_ok(p);
        REQUIRE(ok.has_value());
        CHECK(ok->affected_rows == 3);
        CHECK(ok->status == status::autocommit);
        // With CLIENT_SESSION_TRACK the info is a length-encoded string; kept raw.
        CHECK(ok->info == "\x26Records: 3  Duplicates: 0  Warnings: 0");
        CHECK(to_hex(written(write_ok, *ok)) == to_hex(p));
    }
    SECTION("the login OK with session state (the schema)") {
        const ByteVec p = payload_of(read_vector("cli_handshake_ok"));
        auto ok = parse_ok(p);
        REQUIRE(ok.has_value());
        CHECK(ok->status == (status::autocommit | status::session_state_changed));
        CHECK(to_hex(written(write_ok, *ok)) == to_hex(p));
    }
    SECTION("the 0xFE OK that ends a result set with CLIENT_DEPRECATE_EOF") {
        const auto packets = read_vector_packets("deof_select_rows");
        const ByteVec p = payload_of(packets.back());
        auto ok = parse_ok(p);
        REQUIRE(ok.has_value());
        CHECK(ok->header == 0xFE);
        CHECK(ok->status == 0x0022);
        CHECK(to_hex(written(write_ok, *ok)) == to_hex(p));
    }
}

TEST_CASE("write_ok encodes each length-encoded integer size", "[protocol][mysql]") {
    OkPacket ok;
    ok.affected_rows = 251;         // 0xFC + 2 bytes
    ok.last_insert_id = 1ull << 40; // 0xFE + 8 bytes
    ok.status = status::in_trans;
    ok.warnings = 3;
    CHECK(to_hex(written(write_ok, ok)) == "00"
                                           "fcfb00"
                                           "fe0000000000010000"
                                           "0100"
                                           "0300");
    ok.affected_rows = 1'000'000; // 0xFD + 3 bytes
    ok.last_insert_id = 250;      // 1 byte
    CHECK(to_hex(written(write_ok, ok)) == "00"
                                           "fd40420f"
                                           "fa"
                                           "0100"
                                           "0300");
    auto back = parse_ok(written(write_ok, ok));
    REQUIRE(back.has_value());
    CHECK(*back == ok);
}

TEST_CASE("parse_ok refuses truncated input at every length", "[protocol][mysql]") {
    std::vector<std::uint8_t> full;
    write_ok({0x00, 1'000'000, 7, 0x0002, 1, ""}, full);
    for (std::size_t len = 0; len < full.size(); ++len) {
        INFO("length " << len);
        auto ok = parse_ok(Bytes{full}.first(len));
        REQUIRE(ok.has_error());
        CHECK(ok.error() == codec_errc::truncated);
    }
}

TEST_CASE("parse_ok refuses other headers and a 0xFF length", "[protocol][mysql]") {
    auto err = parse_ok(from_hex("ff0000020000"));
    REQUIRE(err.has_error());
    CHECK(err.error() == codec_errc::unexpected_message);
    auto bad_len = parse_ok(from_hex("00ff00020000"));
    REQUIRE(bad_len.has_error());
    CHECK(bad_len.error() == codec_errc::malformed);
}

// ---- ERR_Packet ----

TEST_CASE("parse_err reads the ERR_Packet example of the protocol documentation",
          "[protocol][mysql]") {
    // dev.mysql.com page_protocol_basic_err_packet: 1096 (0x0448), HY000, "No tables used".
    const ByteVec wire = from_hex("17000001 ff4804234859303030 4e6f207461626c65732075736564");
    auto e = parse_err(payload_of(wire));
    REQUIRE(e.has_value());
    CHECK(e->code == 1096);
    CHECK(e->sql_state == "HY000");
    CHECK(e->message == "No tables used");
    CHECK(to_hex(written(write_err, *e)) == to_hex(payload_of(wire)));
}

TEST_CASE("parse_err reads a captured MariaDB error", "[protocol][mysql]") {
    const ByteVec p = payload_of(read_vector("cli_error"));
    auto e = parse_err(p);
    REQUIRE(e.has_value());
    CHECK(e->code == 1146); // ER_NO_SUCH_TABLE
    CHECK(e->sql_state == "42S02");
    CHECK(e->message == "Table 'sluice_test.no_such_table' doesn't exist");
    CHECK(to_hex(written(write_err, *e)) == to_hex(p));
}

TEST_CASE("parse_err reads an error without the SQLSTATE marker", "[protocol][mysql]") {
    ByteVec payload = from_hex("ff8404");
    append(payload, bytes_of("Got packets out of order"));
    auto e = parse_err(payload);
    REQUIRE(e.has_value());
    CHECK(e->code == 1156);
    CHECK(e->sql_state.empty());
    CHECK(e->message == "Got packets out of order");
    CHECK(to_hex(written(write_err, *e)) == to_hex(payload));
}

TEST_CASE("parse_err refuses truncated input where the length is known", "[protocol][mysql]") {
    const ByteVec full = from_hex("ff4804234859303030 4e6f");
    for (std::size_t len = 0; len < full.size(); ++len) {
        INFO("length " << len);
        auto e = parse_err(Bytes{full}.first(len));
        if (len == 3) {
            // Code only: a valid pre-4.1 error with an empty message.
            REQUIRE(e.has_value());
            CHECK(e->code == 1096);
        } else if (len < 9) {
            REQUIRE(e.has_error());
            CHECK(e.error() == codec_errc::truncated);
        } else {
            // The message is the rest of the packet.
            REQUIRE(e.has_value());
            CHECK(e->message.size() == len - 9);
        }
    }
}

TEST_CASE("parse_err refuses other headers", "[protocol][mysql]") {
    auto e = parse_err(from_hex("00000002000000"));
    REQUIRE(e.has_error());
    CHECK(e.error() == codec_errc::unexpected_message);
}

TEST_CASE("write_err pads a short SQLSTATE to five characters", "[protocol][mysql]") {
    CHECK(to_hex(written(write_err, ErrPacket{1045, "28", "x"})) == "ff1504"
                                                                    "233238303030"
                                                                    "78");
}

// ---- EOF_Packet ----

TEST_CASE("parse_eof reads the EOF_Packet example of the protocol documentation",
          "[protocol][mysql]") {
    // dev.mysql.com page_protocol_basic_eof_packet: "05 00 00 05 fe 00 00 02 00".
    const ByteVec wire = from_hex("05000005 fe00000200");
    auto e = parse_eof(payload_of(wire));
    REQUIRE(e.has_value());
    CHECK(e->warnings == 0);
    CHECK(e->status == status::autocommit);
    CHECK(to_hex(written(write_eof, *e)) == to_hex(payload_of(wire)));
}

TEST_CASE("parse_eof reads a captured MariaDB EOF", "[protocol][mysql]") {
    const auto packets = read_vector_packets("cli_select_rows");
    auto e = parse_eof(payload_of(packets.back()));
    REQUIRE(e.has_value());
    CHECK(e->status == 0x0022); // AUTOCOMMIT | NO_INDEX_USED
    EofPacket w{3, status::more_results_exists};
    auto back = parse_eof(written(write_eof, w));
    REQUIRE(back.has_value());
    CHECK(*back == w);
}

TEST_CASE("parse_eof refuses truncated input at every length and trailing bytes",
          "[protocol][mysql]") {
    const ByteVec full = from_hex("fe01000a00");
    for (std::size_t len = 0; len < full.size(); ++len) {
        INFO("length " << len);
        auto e = parse_eof(Bytes{full}.first(len));
        REQUIRE(e.has_error());
        CHECK(e.error() == codec_errc::truncated);
    }
    auto extra = parse_eof(with_extra(full));
    REQUIRE(extra.has_error());
    CHECK(extra.error() == codec_errc::trailing_bytes);
    auto other = parse_eof(from_hex("0001000a00"));
    REQUIRE(other.has_error());
    CHECK(other.error() == codec_errc::unexpected_message);
}

// ---- AuthSwitchRequest / AuthMoreData ----

TEST_CASE("parse_auth_switch reads a captured MariaDB auth switch request", "[protocol][mysql]") {
    // tests/vectors/mysql/switch_request.hex: the client named caching_sha2_password for a
    // mysql_native_password account; MariaDB switches it, with its greeting's nonce.
    const ByteVec p = payload_of(read_vector("switch_request"));
    auto a = parse_auth_switch(p);
    REQUIRE(a.has_value());
    CHECK(a->plugin == "mysql_native_password");
    auto g = parse_greeting(payload_of(read_vector("switch_greeting")));
    REQUIRE(g.has_value());
    CHECK(a->data == g->auth_data);
    CHECK(a->data.size() == 20);
    CHECK(to_hex(written(write_auth_switch, *a)) == to_hex(p));
}

TEST_CASE("An auth switch request round-trips and refuses truncation before its data",
          "[protocol][mysql]") {
    AuthSwitchRequest a{"caching_sha2_password", bytes_of("01234567890123456789")};
    const ByteVec full = written(write_auth_switch, a);
    CHECK(full.size() == 1 + 22 + 20 + 1);
    auto back = parse_auth_switch(full);
    REQUIRE(back.has_value());
    CHECK(*back == a);
    // The data is the rest of the packet: cuts inside it are not detectable.
    for (std::size_t len = 0; len < 23; ++len) {
        INFO("length " << len);
        auto r = parse_auth_switch(Bytes{full}.first(len));
        REQUIRE(r.has_error());
        CHECK(r.error() == codec_errc::truncated);
    }
    AuthSwitchRequest empty{"mysql_clear_password", {}};
    auto e = parse_auth_switch(written(write_auth_switch, empty));
    REQUIRE(e.has_value());
    CHECK(*e == empty);
    auto other = parse_auth_switch(from_hex("00000002000000"));
    REQUIRE(other.has_error());
    CHECK(other.error() == codec_errc::unexpected_message);
}

TEST_CASE("AuthMoreData is 0x01 and the data", "[protocol][mysql]") {
    ByteVec out;
    write_auth_more_data(from_hex("03"), out);
    CHECK(to_hex(out) == "0103");
    auto d = parse_auth_more_data(out);
    REQUIRE(d.has_value());
    CHECK(to_hex(*d) == "03");
    auto empty = parse_auth_more_data({});
    REQUIRE(empty.has_error());
    CHECK(empty.error() == codec_errc::truncated);
    auto other = parse_auth_more_data(from_hex("0203"));
    REQUIRE(other.has_error());
    CHECK(other.error() == codec_errc::unexpected_message);
}

TEST_CASE("Packet kinds are told apart by their first byte", "[protocol][mysql]") {
    CHECK(is_ok(from_hex("00000002000000")));
    CHECK_FALSE(is_ok({}));
    CHECK(is_err(from_hex("ff4804")));
    CHECK_FALSE(is_err(from_hex("00")));
    CHECK(is_eof_or_ok_fe(from_hex("fe00000200")));
    CHECK_FALSE(is_eof_or_ok_fe({}));
    // A row of 0xFFFFFF bytes or more may start with 0xFE (an 8-byte length).
    ByteVec big(max_packet_payload, 0);
    big[0] = 0xFE;
    CHECK_FALSE(is_eof_or_ok_fe(big));
    big.pop_back();
    CHECK(is_eof_or_ok_fe(big));
}

// ---- OK packets with session tracking (read-your-writes) ----

namespace {
/// An OK with CLIENT_SESSION_TRACK, built per the protocol documentation: affected 1,
/// status AUTOCOMMIT | SESSION_STATE_CHANGED, info `info`, then the state block `entries`.
ByteVec tracked_ok(const std::string& info, const ByteVec& entries) {
    ByteVec p = from_hex("00 01 00 0240 0000");
    p.push_back(static_cast<std::uint8_t>(info.size()));
    p.insert(p.end(), info.begin(), info.end());
    p.push_back(static_cast<std::uint8_t>(entries.size()));
    p.insert(p.end(), entries.begin(), entries.end());
    return p;
}
// SESSION_TRACK_SYSTEM_VARIABLES: name "last_gtid", value "0-1-42".
const ByteVec last_gtid_entry = from_hex("00 11 09 6c6173745f67746964 06 302d312d3432");
// SESSION_TRACK_SCHEMA (0x01): "shop" -- not a GTID.
const ByteVec schema_entry = from_hex("01 05 04 73686f70");
} // namespace

TEST_CASE("parse_tracked_ok finds MariaDB's last_gtid among tracked state", "[protocol][mysql]") {
    ByteVec entries = schema_entry;
    append(entries, last_gtid_entry);
    const ByteVec payload = tracked_ok("Rows matched: 1", entries);
    auto t = parse_tracked_ok(payload);
    REQUIRE(t.has_value());
    CHECK(t->ok.affected_rows == 1);
    CHECK(t->ok.info == "Rows matched: 1");
    CHECK((t->ok.status & status::session_state_changed) != 0);
    CHECK(t->state.size() == entries.size());
    CHECK(tracked_gtid(t->state) == "0-1-42");
    CHECK(tracked_gtid(Bytes{schema_entry}).empty());
}

TEST_CASE("tracked_gtid reads MySQL's SESSION_TRACK_GTIDS entry", "[protocol][mysql]") {
    const std::string gtid = "3e11fa47-71ca-11e1-9e33-c80aa9429562:23";
    ByteVec entry{0x03, static_cast<std::uint8_t>(gtid.size() + 2), 0x00,
                  static_cast<std::uint8_t>(gtid.size())};
    entry.insert(entry.end(), gtid.begin(), gtid.end());
    CHECK(tracked_gtid(entry) == gtid);
}

TEST_CASE("tracked_gtid ignores a malformed state block, never reading past it",
          "[protocol][mysql]") {
    for (std::size_t cut = 1; cut < last_gtid_entry.size(); ++cut)
        CHECK(tracked_gtid(Bytes{last_gtid_entry}.first(cut)).empty());
    CHECK(tracked_gtid(from_hex("00 05 09 6c")).empty()); // a name longer than its entry
}

TEST_CASE("write_untracked_ok gives the OK a client without session tracking expects",
          "[protocol][mysql]") {
    auto t = parse_tracked_ok(tracked_ok("Rows matched: 1", last_gtid_entry));
    REQUIRE(t.has_value());
    ByteVec out;
    write_untracked_ok(t->ok, out);
    // Status without SESSION_STATE_CHANGED, the message length-encoded as MariaDB sends it
    // to such a client (a PyMySQL session on MariaDB 10.11 reads "\x0fRows matched: 1"),
    // no state.
    const std::string msg = "Rows matched: 1";
    ByteVec expect = from_hex("00 01 00 0200 0000");
    expect.push_back(static_cast<std::uint8_t>(msg.size()));
    expect.insert(expect.end(), msg.begin(), msg.end());
    CHECK(out == expect);
    auto plain = parse_ok(out);
    REQUIRE(plain.has_value());
    CHECK(plain->info == static_cast<char>(msg.size()) + msg);
    // Nothing to say: the OK ends after the warnings.
    auto quiet = parse_tracked_ok(tracked_ok("", last_gtid_entry));
    REQUIRE(quiet.has_value());
    out.clear();
    write_untracked_ok(quiet->ok, out);
    CHECK(out == from_hex("00 01 00 0200 0000"));

    // An OK that ends after the warnings (nothing tracked, no message) parses too.
    auto bare = parse_tracked_ok(from_hex("00 00 00 0200 0000"));
    REQUIRE(bare.has_value());
    CHECK(bare->ok.info.empty());
    CHECK(bare->state.empty());
}

TEST_CASE("parse_tracked_ok refuses truncated OKs", "[protocol][mysql]") {
    const ByteVec payload = tracked_ok("x", last_gtid_entry);
    for (std::size_t cut = 1; cut < payload.size(); ++cut) {
        if (cut == 7) continue; // ends after the warnings: a valid bare OK
        INFO("cut " << cut);
        CHECK_FALSE(parse_tracked_ok(Bytes{payload}.first(cut)).has_value());
    }
}
