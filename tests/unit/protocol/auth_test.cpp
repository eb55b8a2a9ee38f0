// Auth math against independent vectors, and the two login state machines transition by
// transition.

#include "sluice/protocol/mysql/auth.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

using namespace sluice;
using namespace sluice::protocol;
using namespace sluice::protocol::mysql;
using namespace sluice::test;

namespace {

using Kind = AuthAction::Kind;

// A fixed nonce for the math vectors: 20 printable 7-bit bytes, as a server makes them.
const std::string fixed_nonce = "6Z|p2#Nq;v0kR@x8e!Lw";

std::array<std::uint8_t, nonce_size> nonce_array(std::string_view s) {
    std::array<std::uint8_t, nonce_size> a{};
    std::copy_n(s.begin(), nonce_size, a.begin());
    return a;
}

ByteVec err_payload(const ErrPacket& e) {
    ByteVec out;
    write_err(e, out);
    return out;
}

// A throwaway RSA key pair, made once: the public half as PEM (what a server sends), the
// private half to check what the client encrypted.
class RsaKey {
public:
    RsaKey() : key_(nullptr, EVP_PKEY_free) {
        std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx{
            EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr), EVP_PKEY_CTX_free};
        EVP_PKEY* raw = nullptr;
        if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
            EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), 2048) != 1 ||
            EVP_PKEY_generate(ctx.get(), &raw) != 1)
            throw std::runtime_error("RSA key generation failed");
        key_.reset(raw);
        std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), BIO_free};
        if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1)
            throw std::runtime_error("PEM export failed");
        public_pem_.resize(BIO_ctrl_pending(bio.get()));
        BIO_read(bio.get(), public_pem_.data(), static_cast<int>(public_pem_.size()));
    }
    const std::string& public_pem() const { return public_pem_; }
    ByteVec decrypt_oaep(Bytes cipher) const {
        std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx{
            EVP_PKEY_CTX_new(key_.get(), nullptr), EVP_PKEY_CTX_free};
        std::size_t len = 0;
        if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
            EVP_PKEY_decrypt(ctx.get(), nullptr, &len, cipher.data(), cipher.size()) != 1)
            throw std::runtime_error("decrypt init failed");
        ByteVec plain(len);
        if (EVP_PKEY_decrypt(ctx.get(), plain.data(), &len, cipher.data(), cipher.size()) != 1)
            throw std::runtime_error("decrypt failed");
        plain.resize(len);
        return plain;
    }

private:
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_;
    std::string public_pem_;
};

const RsaKey& rsa_key() {
    static const RsaKey key;
    return key;
}

// (password + NUL) XOR nonce, the nonce repeated: what caching_sha2 encrypts.
ByteVec xored_password(std::string_view password, Bytes nonce) {
    ByteVec p(password.begin(), password.end());
    p.push_back(0);
    for (std::size_t i = 0; i < p.size(); ++i)
        p[i] ^= nonce[i % nonce.size()];
    return p;
}

} // namespace

// ---- scramble math ----
// Expected values computed independently with Python's hashlib from the documented formulas:
//   native       = SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw)))
//   caching_sha2 = SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce)

TEST_CASE("scramble_native matches independently computed vectors", "[protocol][mysql]") {
    const Bytes nonce{reinterpret_cast<const std::uint8_t*>(fixed_nonce.data()), 20};
    CHECK(to_hex(scramble_native("app", nonce)) == "e85e90c0db0c1ea22f25d67038dfe7fada35b133");
    CHECK(to_hex(scramble_native("s3cr3t-P@ss", nonce)) ==
          "f94d598781ca4e73bc0cae57031b60a9042334f9");
    CHECK(to_hex(scramble_native("p\xc3\xa4ssw\xc3\xb6rd", nonce)) ==
          "83f006603812d2e5cd1ba4f39eab18db859d67b8");
}

TEST_CASE("scramble_caching_sha2 matches independently computed vectors", "[protocol][mysql]") {
    const Bytes nonce{reinterpret_cast<const std::uint8_t*>(fixed_nonce.data()), 20};
    CHECK(to_hex(scramble_caching_sha2("app", nonce)) ==
          "1b0692fbb29fd3e8e24a1cedc94f53a496f5b93cda7d0f28f2a5aa8d913f6b20");
    CHECK(to_hex(scramble_caching_sha2("s3cr3t-P@ss", nonce)) ==
          "e0bf8afd8062ddefdfe9891cd42cde93585c3484c825dc7a2f04fcf005bcca54");
    CHECK(to_hex(scramble_caching_sha2("p\xc3\xa4ssw\xc3\xb6rd", nonce)) ==
          "67249c2f4a3942780a69e46bf7ede9fc63f3c63691cb91e6b1472700d8e1cf22");
}

TEST_CASE("An empty password gives an empty scramble", "[protocol][mysql]") {
    const ByteVec nonce = bytes_of(fixed_nonce);
    CHECK(scramble_native("", nonce).empty());
    CHECK(scramble_caching_sha2("", nonce).empty());
}

TEST_CASE("Scrambles use the first 20 bytes of a nonce that still has its NUL",
          "[protocol][mysql]") {
    const ByteVec nonce = bytes_of(fixed_nonce);
    ByteVec with_nul = nonce;
    with_nul.push_back(0);
    CHECK(scramble_native("app", with_nul) == scramble_native("app", nonce));
    CHECK(scramble_caching_sha2("app", with_nul) == scramble_caching_sha2("app", nonce));
}

TEST_CASE("scramble_native gives what the real mariadb CLI sent for the real greeting",
          "[protocol][mysql]") {
    // cli_greeting.hex / cli_handshake_response.hex: libmariadb's scramble for password "app".
    auto g = parse_greeting(payload_of(read_vector("cli_greeting")));
    REQUIRE(g.has_value());
    auto h = parse_handshake_response(payload_of(read_vector("cli_handshake_response")));
    REQUIRE(h.has_value());
    CHECK(to_hex(scramble_native("app", g->auth_data)) == to_hex(h->auth_response));
}

TEST_CASE("encrypt_password_rsa encrypts (password + NUL) XOR nonce with OAEP",
          "[protocol][mysql]") {
    const RsaKey& key = rsa_key();
    const ByteVec nonce = bytes_of(fixed_nonce);
    for (std::string pw : {"app", "a-password-longer-than-the-twenty-byte-nonce", ""}) {
        INFO("password " << pw);
        auto cipher = encrypt_password_rsa(pw, nonce, key.public_pem());
        REQUIRE(cipher.has_value());
        CHECK(cipher->size() == 256); // one RSA-2048 block
        CHECK(to_hex(key.decrypt_oaep(*cipher)) == to_hex(xored_password(pw, nonce)));
    }
}

TEST_CASE("encrypt_password_rsa refuses a bad key or an empty nonce", "[protocol][mysql]") {
    const ByteVec nonce = bytes_of(fixed_nonce);
    auto bad = encrypt_password_rsa("app", nonce, "-----BEGIN PUBLIC KEY-----\nnot a key\n");
    REQUIRE(bad.has_error());
    CHECK(bad.error() == codec_errc::malformed);
    auto no_nonce = encrypt_password_rsa("app", {}, rsa_key().public_pem());
    REQUIRE(no_nonce.has_error());
    CHECK(no_nonce.error() == codec_errc::malformed);
}

TEST_CASE("make_nonce never yields NUL or '$' and stays 7-bit", "[protocol][mysql]") {
    // Every possible random byte, 20 at a time.
    for (unsigned start = 0; start < 256; start += nonce_size) {
        ByteVec random(nonce_size);
        for (std::size_t i = 0; i < nonce_size; ++i)
            random[i] = static_cast<std::uint8_t>(start + i);
        std::array<std::uint8_t, nonce_size> out{};
        make_nonce(random, out);
        for (std::uint8_t c : out) {
            INFO("byte " << int{c});
            CHECK(c != 0);
            CHECK(c != '$');
            CHECK(c < 0x80);
        }
    }
    std::array<std::uint8_t, nonce_size> out{};
    make_nonce(bytes_of("A\x80\xc1"), out); // short input: the rest is filled, never NUL
    CHECK(out[0] == 'A');
    CHECK(out[1] == 1);
    CHECK(out[2] == 'A');
    for (std::uint8_t c : out)
        CHECK(c != 0);
}

TEST_CASE("equal_secret compares contents and lengths", "[protocol][mysql]") {
    CHECK(equal_secret(from_hex("0102"), from_hex("0102")));
    CHECK_FALSE(equal_secret(from_hex("0102"), from_hex("0103")));
    CHECK_FALSE(equal_secret(from_hex("0102"), from_hex("010203")));
    CHECK(equal_secret({}, {}));
}

TEST_CASE("access_denied says what MySQL says", "[protocol][mysql]") {
    const ErrPacket e = access_denied("u", "h", true);
    CHECK(e.code == 1045);
    CHECK(e.sql_state == "28000");
    CHECK(e.message == "Access denied for user 'u'@'h' (using password: YES)");
    CHECK(access_denied("u", "h", false).message ==
          "Access denied for user 'u'@'h' (using password: NO)");
}

// ---- ServerLogin ----

namespace {

std::optional<std::string> lookup_password(std::string_view user) {
    if (user == "u") return std::string{"pw"};
    if (user == "v") return std::string{"other"};
    if (user == "nopw") return std::string{};
    return std::nullopt;
}
const ServerLogin::PasswordLookup lookup = lookup_password;
const ServerLogin::CacheCheck cold = [](std::string_view) { return false; };
const ServerLogin::CacheCheck warm = [](std::string_view) { return true; };

ServerLogin make_server(std::string plugin) {
    return ServerLogin{{std::move(plugin), "h"}, nonce_array(fixed_nonce)};
}

HandshakeResponse response(std::string user, std::string plugin, ByteVec auth) {
    HandshakeResponse r;
    r.capabilities = cap::protocol_41 | cap::secure_connection | cap::plugin_auth;
    r.user = std::move(user);
    r.auth_plugin = std::move(plugin);
    r.auth_response = std::move(auth);
    return r;
}

ByteVec native(std::string_view pw) { return scramble_native(pw, bytes_of(fixed_nonce)); }
ByteVec sha2(std::string_view pw) { return scramble_caching_sha2(pw, bytes_of(fixed_nonce)); }

// The 1045 ERR payload, written out by hand: 0xFF, 1045 little-endian, '#', SQLSTATE, text.
ByteVec denied_bytes(std::string_view user, bool used_password) {
    ByteVec b = from_hex("ff1504 233238303030");
    append(b, bytes_of("Access denied for user '" + std::string(user) +
                       "'@'h' (using password: " + (used_password ? "YES" : "NO") + ")"));
    return b;
}

} // namespace

TEST_CASE("ServerLogin greets with its nonce and plugin", "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{caching_sha2_plugin});
    const std::uint32_t caps = cap::protocol_41 | cap::secure_connection | cap::plugin_auth;
    const Greeting g = login.make_greeting("10.11.0-sluice", 42, caps, 45, status::autocommit);
    CHECK(g.server_version == "10.11.0-sluice");
    CHECK(g.connection_id == 42);
    CHECK(string_of(g.auth_data) == fixed_nonce);
    CHECK(g.capabilities == caps);
    CHECK(g.charset == 45);
    CHECK(g.status == status::autocommit);
    CHECK(g.auth_plugin == "caching_sha2_password");
    CHECK(string_of(login.nonce()) == fixed_nonce);
    ByteVec wire;
    write_greeting(g, wire);
    auto back = parse_greeting(wire);
    REQUIRE(back.has_value());
    CHECK(*back == g);
}

TEST_CASE("ServerLogin accepts a correct mysql_native_password scramble with no packets",
          "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{native_password_plugin});
    const AuthAction a = login.on_handshake_response(
        response("u", "mysql_native_password", native("pw")), false, lookup, cold);
    CHECK(a.kind == Kind::send_and_succeed);
    CHECK(a.packets.empty());
    CHECK(login.user() == "u");
    CHECK(login.password() == "pw");
}

TEST_CASE("ServerLogin accepts the real mariadb CLI's login", "[protocol][mysql]") {
    auto g = parse_greeting(payload_of(read_vector("cli_greeting")));
    REQUIRE(g.has_value());
    auto h = parse_handshake_response(payload_of(read_vector("cli_handshake_response")));
    REQUIRE(h.has_value());
    std::array<std::uint8_t, nonce_size> nonce{};
    std::copy_n(g->auth_data.begin(), nonce_size, nonce.begin());
    ServerLogin login{{std::string{native_password_plugin}, "127.0.0.1"}, nonce};
    const ServerLogin::PasswordLookup app = [](std::string_view user) {
        return user == "app" ? std::optional<std::string>{"app"} : std::nullopt;
    };
    const AuthAction a = login.on_handshake_response(*h, false, app, cold);
    CHECK(a.kind == Kind::send_and_succeed);
    CHECK(a.packets.empty());
}

TEST_CASE("ServerLogin refuses a wrong password with ERR 1045, SQLSTATE 28000",
          "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{native_password_plugin});
    const AuthAction a = login.on_handshake_response(
        response("u", "mysql_native_password", native("wrong")), false, lookup, cold);
    CHECK(a.kind == Kind::fail);
    REQUIRE(a.packets.size() == 1);
    CHECK(to_hex(a.packets[0]) == to_hex(denied_bytes("u", true)));
    CHECK(a.error.code == 1045);
    CHECK(a.error.sql_state == "28000");
    CHECK(a.error.message == "Access denied for user 'u'@'h' (using password: YES)");
}

TEST_CASE("ServerLogin refuses an unknown user like a wrong password", "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{native_password_plugin});
    const AuthAction a = login.on_handshake_response(
        response("mallory", "mysql_native_password", native("pw")), false, lookup, cold);
    CHECK(a.kind == Kind::fail);
    REQUIRE(a.packets.size() == 1);
    CHECK(to_hex(a.packets[0]) == to_hex(denied_bytes("mallory", true)));
    CHECK(a.error.code == 1045);
}

TEST_CASE("ServerLogin says 'using password: NO' when the client sent no auth data",
          "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{native_password_plugin});
    const AuthAction a = login.on_handshake_response(response("u", "mysql_native_password", {}),
                                                     false, lookup, cold);
    CHECK(a.kind == Kind::fail);
    REQUIRE(a.packets.size() == 1);
    CHECK(to_hex(a.packets[0]) == to_hex(denied_bytes("u", false)));
    CHECK(a.error.message == "Access denied for user 'u'@'h' (using password: NO)");
}

TEST_CASE("ServerLogin accepts an empty password sent as empty auth data", "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{native_password_plugin});
    const AuthAction a = login.on_handshake_response(response("nopw", "mysql_native_password", {}),
                                                     false, lookup, cold);
    CHECK(a.kind == Kind::send_and_succeed);
    CHECK(a.packets.empty());
}

TEST_CASE("ServerLogin treats a client without CLIENT_PLUGIN_AUTH as mysql_native_password",
          "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{caching_sha2_plugin});
    HandshakeResponse r = response("u", "", native("pw"));
    r.capabilities &= ~cap::plugin_auth;
    const AuthAction a = login.on_handshake_response(r, false, lookup, cold);
    CHECK(a.kind == Kind::send_and_succeed);
}

TEST_CASE("ServerLogin takes the caching_sha2_password fast path: 0x01 0x03", "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{caching_sha2_plugin});
    SECTION("without TLS") {
        const AuthAction a = login.on_handshake_response(
            response("u", "caching_sha2_password", sha2("pw")), false, lookup, cold);
        CHECK(a.kind == Kind::send_and_succeed);
        CHECK(a.packets == std::vector<ByteVec>{{0x01, 0x03}});
    }
    SECTION("over TLS with the user cached") {
        const AuthAction a = login.on_handshake_response(
            response("u", "caching_sha2_password", sha2("pw")), true, lookup, warm);
        CHECK(a.kind == Kind::send_and_succeed);
        CHECK(a.packets == std::vector<ByteVec>{{0x01, 0x03}});
    }
    SECTION("a wrong scramble fails") {
        const AuthAction a = login.on_handshake_response(
            response("u", "caching_sha2_password", sha2("nope")), false, lookup, cold);
        CHECK(a.kind == Kind::fail);
        REQUIRE(a.packets.size() == 1);
        CHECK(to_hex(a.packets[0]) == to_hex(denied_bytes("u", true)));
    }
}

TEST_CASE("ServerLogin asks for the password over TLS when the cache is cold",
          "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{caching_sha2_plugin});
    const AuthAction first = login.on_handshake_response(
        response("u", "caching_sha2_password", sha2("pw")), true, lookup, cold);
    CHECK(first.kind == Kind::send);
    CHECK(first.packets == std::vector<ByteVec>{{0x01, 0x04}});
    SECTION("the right password, NUL-terminated, succeeds") {
        const AuthAction a = login.on_auth_data(bytes_of(std::string("pw\0", 3)));
        CHECK(a.kind == Kind::send_and_succeed);
        CHECK(a.packets.empty());
    }
    SECTION("a wrong cleartext password fails with 1045") {
        const AuthAction a = login.on_auth_data(bytes_of(std::string("pwx\0", 4)));
        CHECK(a.kind == Kind::fail);
        REQUIRE(a.packets.size() == 1);
        CHECK(to_hex(a.packets[0]) == to_hex(denied_bytes("u", true)));
    }
}

TEST_CASE("ServerLogin switches a client with another plugin to its own, same nonce",
          "[protocol][mysql]") {
    SECTION("configured mysql_native_password") {
        ServerLogin login = make_server(std::string{native_password_plugin});
        const AuthAction sw = login.on_handshake_response(
            response("u", "client_ed25519", from_hex("0011")), false, lookup, cold);
        CHECK(sw.kind == Kind::send);
        REQUIRE(sw.packets.size() == 1);
        auto req = parse_auth_switch(sw.packets[0]);
        REQUIRE(req.has_value());
        CHECK(req->plugin == "mysql_native_password");
        CHECK(string_of(req->data) == fixed_nonce);
        // On the wire: 0xFE, the plugin name, the nonce and its NUL.
        ByteVec expected{0xFE};
        append(expected, bytes_of(std::string("mysql_native_password\0", 22) + fixed_nonce));
        expected.push_back(0);
        CHECK(to_hex(sw.packets[0]) == to_hex(expected));

        const AuthAction done = login.on_auth_data(native("pw"));
        CHECK(done.kind == Kind::send_and_succeed);
        CHECK(done.packets.empty());
    }
    SECTION("configured caching_sha2_password") {
        ServerLogin login = make_server(std::string{caching_sha2_plugin});
        const AuthAction sw =
            login.on_handshake_response(response("u", "sha256_password", {}), false, lookup, cold);
        REQUIRE(sw.packets.size() == 1);
        auto req = parse_auth_switch(sw.packets[0]);
        REQUIRE(req.has_value());
        CHECK(req->plugin == "caching_sha2_password");
        CHECK(string_of(req->data) == fixed_nonce);
        const AuthAction done = login.on_auth_data(sha2("pw"));
        CHECK(done.kind == Kind::send_and_succeed);
        CHECK(done.packets == std::vector<ByteVec>{{0x01, 0x03}});
    }
    SECTION("a wrong answer to the switch fails") {
        ServerLogin login = make_server(std::string{native_password_plugin});
        login.on_handshake_response(response("u", "client_ed25519", {}), false, lookup, cold);
        const AuthAction a = login.on_auth_data(native("wrong"));
        CHECK(a.kind == Kind::fail);
        REQUIRE(a.packets.size() == 1);
        CHECK(to_hex(a.packets[0]) == to_hex(denied_bytes("u", true)));
    }
    SECTION("an unknown user is refused after the switch") {
        ServerLogin login = make_server(std::string{native_password_plugin});
        const AuthAction sw = login.on_handshake_response(response("mallory", "client_ed25519", {}),
                                                          false, lookup, cold);
        CHECK(sw.kind == Kind::send);
        const AuthAction a = login.on_auth_data(native("pw"));
        CHECK(a.kind == Kind::fail);
        CHECK(a.error.code == 1045);
    }
}

TEST_CASE("ServerLogin refuses auth data it did not ask for", "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{native_password_plugin});
    SECTION("before the handshake response") {}
    SECTION("after the login succeeded") {
        login.on_handshake_response(response("u", "mysql_native_password", native("pw")), false,
                                    lookup, cold);
    }
    const AuthAction a = login.on_auth_data(native("pw"));
    CHECK(a.kind == Kind::fail);
    CHECK(a.error.code == er::handshake_error);
    CHECK(a.error.sql_state == "08S01");
    REQUIRE(a.packets.size() == 1);
    CHECK(to_hex(a.packets[0]) == to_hex(err_payload(a.error)));
}

TEST_CASE("ServerLogin checks COM_CHANGE_USER against the session's nonce", "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{native_password_plugin});
    REQUIRE(login
                .on_handshake_response(response("u", "mysql_native_password", native("pw")), false,
                                       lookup, cold)
                .kind == Kind::send_and_succeed);
    ChangeUser c;
    c.user = "v";
    SECTION("the right scramble, no plugin named (native)") {
        c.auth_response = native("other");
        const AuthAction a = login.on_change_user(c, false, lookup, cold);
        CHECK(a.kind == Kind::send_and_succeed);
        CHECK(a.packets.empty());
        CHECK(login.user() == "v");
        CHECK(login.password() == "other");
    }
    SECTION("a wrong scramble") {
        c.auth_response = native("pw");
        const AuthAction a = login.on_change_user(c, false, lookup, cold);
        CHECK(a.kind == Kind::fail);
        REQUIRE(a.packets.size() == 1);
        CHECK(to_hex(a.packets[0]) == to_hex(denied_bytes("v", true)));
    }
    SECTION("another plugin: switched, then accepted") {
        c.auth_plugin = "client_ed25519";
        const AuthAction sw = login.on_change_user(c, false, lookup, cold);
        CHECK(sw.kind == Kind::send);
        REQUIRE(sw.packets.size() == 1);
        auto req = parse_auth_switch(sw.packets[0]);
        REQUIRE(req.has_value());
        CHECK(string_of(req->data) == fixed_nonce);
        CHECK(login.on_auth_data(native("other")).kind == Kind::send_and_succeed);
    }
}

// ---- BackendLogin ----

namespace {

BackendLogin::Options app_options() {
    BackendLogin::Options o;
    o.user = "app";
    o.password = "app";
    o.database = "sluice_test";
    o.capabilities = 0x00bfa28cu | cap::deprecate_eof | cap::compress;
    return o;
}

ByteVec greeting_with(std::string plugin, bool plugin_auth = true) {
    Greeting g;
    g.server_version = "8.0.36";
    g.connection_id = 7;
    g.auth_data = bytes_of(fixed_nonce);
    g.capabilities = 0xdfffffffu; // everything a MySQL 8 server offers
    if (!plugin_auth) g.capabilities &= ~cap::plugin_auth;
    g.charset = 255;
    g.status = status::autocommit;
    g.auth_plugin = std::move(plugin);
    ByteVec out;
    write_greeting(g, out);
    return out;
}

ByteVec ok_payload(std::uint16_t st = status::autocommit) {
    ByteVec out;
    write_ok({0x00, 0, 0, st, 0, ""}, out);
    return out;
}

ByteVec more_data(std::string_view data) {
    ByteVec out;
    write_auth_more_data(bytes_of(data), out);
    return out;
}

} // namespace

TEST_CASE("BackendLogin answers a real MariaDB greeting with a native scramble",
          "[protocol][mysql]") {
    // switch_greeting.hex: the server later accepted scramble_native("app", this nonce) as
    // switch_reply.hex, so the expected scramble is one a real server took.
    BackendLogin login{app_options()};
    auto a = login.on_greeting(payload_of(read_vector("switch_greeting")));
    REQUIRE(a.has_value());
    CHECK(a->kind == Kind::send);
    CHECK(a->packets.empty());
    CHECK(login.greeting().auth_plugin == "mysql_native_password");

    const std::uint32_t caps = login.capabilities();
    CHECK(caps & cap::protocol_41);
    CHECK(caps & cap::secure_connection);
    CHECK(caps & cap::plugin_auth);
    CHECK(caps & cap::connect_with_db);
    CHECK(caps & cap::deprecate_eof);
    CHECK_FALSE(caps & cap::ssl);
    CHECK_FALSE(caps & cap::compress);
    CHECK_FALSE(caps & cap::connect_attrs); // no attributes configured

    auto h = parse_handshake_response(login.handshake_response());
    REQUIRE(h.has_value());
    CHECK(h->capabilities == caps);
    CHECK(h->user == "app");
    CHECK(h->database == "sluice_test");
    CHECK(h->auth_plugin == "mysql_native_password");
    CHECK(h->charset == 45);
    CHECK(to_hex(h->auth_response) == to_hex(payload_of(read_vector("switch_reply"))));
}

TEST_CASE("BackendLogin succeeds on OK and keeps it", "[protocol][mysql]") {
    BackendLogin login{app_options()};
    REQUIRE(login.on_greeting(payload_of(read_vector("cli_greeting"))).has_value());
    auto a = login.on_packet(payload_of(read_vector("cli_handshake_ok")));
    REQUIRE(a.has_value());
    CHECK(a->kind == Kind::send_and_succeed);
    CHECK(a->packets.empty());
    CHECK(login.final_ok().status == (status::autocommit | status::session_state_changed));
}

TEST_CASE("BackendLogin fails with the server's ERR", "[protocol][mysql]") {
    BackendLogin login{app_options()};
    REQUIRE(login.on_greeting(greeting_with("mysql_native_password")).has_value());
    const ErrPacket denied = access_denied("app", "10.0.0.1", true);
    auto a = login.on_packet(err_payload(denied));
    REQUIRE(a.has_value());
    CHECK(a->kind == Kind::fail);
    CHECK(a->error == denied);
}

TEST_CASE("BackendLogin answers the real MariaDB auth switch as the real client did",
          "[protocol][mysql]") {
    BackendLogin login{app_options()};
    REQUIRE(login.on_greeting(payload_of(read_vector("switch_greeting"))).has_value());
    auto a = login.on_packet(payload_of(read_vector("switch_request")));
    REQUIRE(a.has_value());
    CHECK(a->kind == Kind::send);
    REQUIRE(a->packets.size() == 1);
    CHECK(to_hex(a->packets[0]) == to_hex(payload_of(read_vector("switch_reply"))));
    auto ok = login.on_packet(payload_of(read_vector("switch_ok")));
    REQUIRE(ok.has_value());
    CHECK(ok->kind == Kind::send_and_succeed);
}

TEST_CASE("BackendLogin answers an auth switch with the new nonce", "[protocol][mysql]") {
    BackendLogin login{app_options()};
    REQUIRE(login.on_greeting(greeting_with("caching_sha2_password")).has_value());
    SECTION("to mysql_native_password") {
        ByteVec sw;
        write_auth_switch({"mysql_native_password", bytes_of(fixed_nonce)}, sw);
        auto a = login.on_packet(sw);
        REQUIRE(a.has_value());
        CHECK(a->kind == Kind::send);
        REQUIRE(a->packets.size() == 1);
        CHECK(to_hex(a->packets[0]) == "e85e90c0db0c1ea22f25d67038dfe7fada35b133");
    }
    SECTION("to caching_sha2_password") {
        ByteVec sw;
        write_auth_switch({"caching_sha2_password", bytes_of(fixed_nonce)}, sw);
        auto a = login.on_packet(sw);
        REQUIRE(a.has_value());
        REQUIRE(a->packets.size() == 1);
        CHECK(to_hex(a->packets[0]) ==
              "1b0692fbb29fd3e8e24a1cedc94f53a496f5b93cda7d0f28f2a5aa8d913f6b20");
    }
}

TEST_CASE("BackendLogin fails when asked to switch to a plugin it does not speak",
          "[protocol][mysql]") {
    BackendLogin login{app_options()};
    REQUIRE(login.on_greeting(greeting_with("mysql_native_password")).has_value());
    ByteVec sw;
    write_auth_switch({"client_ed25519", bytes_of("0123456789abcdef0123456789abcdef")}, sw);
    auto a = login.on_packet(sw);
    REQUIRE(a.has_value());
    CHECK(a->kind == Kind::fail);
    CHECK(a->error.code == er::handshake_error);
    CHECK(a->error.message.find("client_ed25519") != std::string::npos);
}

TEST_CASE("BackendLogin speaks caching_sha2_password", "[protocol][mysql]") {
    BackendLogin::Options o = app_options();
    SECTION("fast path: 0x01 0x03, then OK") {
        BackendLogin login{o};
        REQUIRE(login.on_greeting(greeting_with("caching_sha2_password")).has_value());
        auto h = parse_handshake_response(login.handshake_response());
        REQUIRE(h.has_value());
        CHECK(h->auth_plugin == "caching_sha2_password");
        CHECK(to_hex(h->auth_response) ==
              "1b0692fbb29fd3e8e24a1cedc94f53a496f5b93cda7d0f28f2a5aa8d913f6b20");
        auto fast = login.on_packet(from_hex("0103"));
        REQUIRE(fast.has_value());
        CHECK(fast->kind == Kind::send);
        CHECK(fast->packets.empty());
        auto ok = login.on_packet(ok_payload());
        REQUIRE(ok.has_value());
        CHECK(ok->kind == Kind::send_and_succeed);
    }
    SECTION("full authentication over TLS: the password and a NUL") {
        o.tls = true;
        BackendLogin login{o};
        REQUIRE(login.on_greeting(greeting_with("caching_sha2_password")).has_value());
        CHECK(login.capabilities() & cap::ssl);
        auto full = login.on_packet(from_hex("0104"));
        REQUIRE(full.has_value());
        CHECK(full->kind == Kind::send);
        CHECK(full->packets == std::vector<ByteVec>{{'a', 'p', 'p', 0}});
        auto ok = login.on_packet(ok_payload());
        REQUIRE(ok.has_value());
        CHECK(ok->kind == Kind::send_and_succeed);
    }
    SECTION("full authentication without TLS: ask for the key, send the password RSA-encrypted") {
        BackendLogin login{o};
        REQUIRE(login.on_greeting(greeting_with("caching_sha2_password")).has_value());
        auto full = login.on_packet(from_hex("0104"));
        REQUIRE(full.has_value());
        CHECK(full->kind == Kind::send);
        CHECK(full->packets == std::vector<ByteVec>{{0x02}});
        auto enc = login.on_packet(more_data(rsa_key().public_pem()));
        REQUIRE(enc.has_value());
        CHECK(enc->kind == Kind::send);
        REQUIRE(enc->packets.size() == 1);
        CHECK(to_hex(rsa_key().decrypt_oaep(enc->packets[0])) ==
              to_hex(xored_password("app", bytes_of(fixed_nonce))));
        auto ok = login.on_packet(ok_payload());
        REQUIRE(ok.has_value());
        CHECK(ok->kind == Kind::send_and_succeed);
    }
    SECTION("a key that is not a key is an error") {
        BackendLogin login{o};
        REQUIRE(login.on_greeting(greeting_with("caching_sha2_password")).has_value());
        REQUIRE(login.on_packet(from_hex("0104")).has_value());
        auto enc = login.on_packet(more_data("not a PEM key"));
        REQUIRE(enc.has_error());
        CHECK(enc.error() == codec_errc::malformed);
    }
}

TEST_CASE("BackendLogin fails on an ERR instead of a greeting", "[protocol][mysql]") {
    BackendLogin login{app_options()};
    const ErrPacket too_many{er::con_count_error, "08004", "Too many connections"};
    auto a = login.on_greeting(err_payload(too_many));
    REQUIRE(a.has_value());
    CHECK(a->kind == Kind::fail);
    CHECK(a->error == too_many);
}

TEST_CASE("BackendLogin refuses a malformed or pre-4.1 greeting", "[protocol][mysql]") {
    BackendLogin login{app_options()};
    auto garbage = login.on_greeting(from_hex("0a3500"));
    CHECK(garbage.has_error());
    Greeting old;
    old.server_version = "4.0.1";
    old.auth_data = bytes_of("abcdefgh");
    old.capabilities = cap::long_password;
    ByteVec wire;
    write_greeting(old, wire);
    auto pre41 = login.on_greeting(wire);
    REQUIRE(pre41.has_error());
    CHECK(pre41.error() == codec_errc::malformed);
}

TEST_CASE("crash-backend-greeting-without-secure-connection: BackendLogin refuses a server "
          "without CLIENT_SECURE_CONNECTION",
          "[protocol][mysql]") {
    // Found by fuzz_handshake (tests/fuzz/corpus/handshake/
    // crash-backend-greeting-without-secure-connection): against such a greeting the 20-byte
    // binary scramble went out NUL-terminated, so the response did not parse back.
    BackendLogin login{app_options()};
    const ByteVec crash = from_hex(
        "0a352e352e352d31302e31ffffffffffffffffffffffffffffffff312e31392d4d6172696144422d302b64"
        "65cacacacacacacacacacacacacacaca62313275680000000a352e352e352d31302e31312e31392d4d6172"
        "696144422d302b646562313275312d6c6f6700320000742e6e6f5f737563685f6800746162006c");
    REQUIRE(parse_greeting(crash).has_value());
    auto a = login.on_greeting(crash);
    REQUIRE(a.has_error());
    CHECK(a.error() == codec_errc::malformed);

    Greeting g;
    g.server_version = "4.1.0";
    g.auth_data = bytes_of("abcdefgh");
    g.capabilities = cap::long_password | cap::protocol_41 | cap::plugin_auth;
    g.auth_plugin = "mysql_native_password";
    ByteVec wire;
    write_greeting(g, wire);
    auto b = BackendLogin{app_options()}.on_greeting(wire);
    REQUIRE(b.has_error());
    CHECK(b.error() == codec_errc::malformed);
}

TEST_CASE("BackendLogin answers an unknown greeting plugin with mysql_native_password",
          "[protocol][mysql]") {
    BackendLogin login{app_options()};
    REQUIRE(login.on_greeting(greeting_with("client_ed25519")).has_value());
    auto h = parse_handshake_response(login.handshake_response());
    REQUIRE(h.has_value());
    CHECK(h->auth_plugin == "mysql_native_password");
    CHECK(to_hex(h->auth_response) == "e85e90c0db0c1ea22f25d67038dfe7fada35b133");
}

TEST_CASE("BackendLogin sends an SSLRequest and attributes when asked", "[protocol][mysql]") {
    BackendLogin::Options o = app_options();
    o.tls = true;
    o.attributes = {{"_client_name", "sluice"}};
    BackendLogin login{o};
    REQUIRE(login.on_greeting(greeting_with("mysql_native_password")).has_value());
    const ByteVec ssl = login.ssl_request();
    CHECK(ssl.size() == 32);
    auto r = parse_handshake_response(ssl);
    REQUIRE(r.has_value());
    CHECK(r->is_ssl_request);
    CHECK(r->capabilities & cap::ssl);
    auto h = parse_handshake_response(login.handshake_response());
    REQUIRE(h.has_value());
    CHECK(h->capabilities & cap::connect_attrs);
    CHECK(h->attributes == o.attributes);
}

TEST_CASE("BackendLogin refuses packets that make no sense during login", "[protocol][mysql]") {
    BackendLogin login{app_options()};
    REQUIRE(login.on_greeting(greeting_with("mysql_native_password")).has_value());
    auto empty = login.on_packet({});
    REQUIRE(empty.has_error());
    CHECK(empty.error() == codec_errc::truncated);
    auto fast_for_native = login.on_packet(from_hex("0103"));
    REQUIRE(fast_for_native.has_error());
    CHECK(fast_for_native.error() == codec_errc::unexpected_message);
    auto other = login.on_packet(from_hex("0312"));
    REQUIRE(other.has_error());
    CHECK(other.error() == codec_errc::unexpected_message);
}

TEST_CASE("ServerLogin takes the fast path after an auth switch when the user is cached",
          "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{caching_sha2_plugin});
    const AuthAction sw =
        login.on_handshake_response(response("u", "sha256_password", {}), true, lookup, warm);
    REQUIRE(sw.packets.size() == 1);
    const AuthAction done = login.on_auth_data(sha2("pw"));
    CHECK(done.kind == Kind::send_and_succeed);
    CHECK(done.packets == std::vector<ByteVec>{{0x01, 0x03}});
}

TEST_CASE("ServerLogin asks for full authentication after a switch over TLS with a cold cache",
          "[protocol][mysql]") {
    ServerLogin login = make_server(std::string{caching_sha2_plugin});
    login.on_handshake_response(response("u", "sha256_password", {}), true, lookup, cold);
    const AuthAction full = login.on_auth_data(sha2("pw"));
    CHECK(full.kind == Kind::send);
    CHECK(full.packets == std::vector<ByteVec>{{0x01, 0x04}});
}
