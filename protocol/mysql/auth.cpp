#include "sluice/protocol/mysql/auth.hpp"

#include "wire.hpp"

#include <memory>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

namespace sluice::protocol::mysql {

namespace {

template <std::size_t N> using Digest = std::array<std::uint8_t, N>;

template <std::size_t N> Digest<N> digest(const EVP_MD* md, std::initializer_list<Bytes> parts) {
    Digest<N> out{};
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
    unsigned len = 0;
    if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) return out;
    for (Bytes p : parts)
        EVP_DigestUpdate(ctx.get(), p.data(), p.size());
    EVP_DigestFinal_ex(ctx.get(), out.data(), &len);
    return out;
}

Bytes first_nonce(Bytes nonce) noexcept {
    return nonce.size() > nonce_size ? nonce.first(nonce_size) : nonce;
}

std::vector<std::uint8_t> payload_of(auto&& write, const auto& msg) {
    std::vector<std::uint8_t> p;
    write(msg, p);
    return p;
}

} // namespace

std::vector<std::uint8_t> scramble_native(std::string_view password, Bytes nonce) {
    if (password.empty()) return {};
    const auto stage1 = digest<20>(EVP_sha1(), {wire::as_bytes(password)});
    const auto stage2 = digest<20>(EVP_sha1(), {stage1});
    const auto mix = digest<20>(EVP_sha1(), {first_nonce(nonce), stage2});
    std::vector<std::uint8_t> out(20);
    for (std::size_t i = 0; i < 20; ++i)
        out[i] = stage1[i] ^ mix[i];
    return out;
}

std::vector<std::uint8_t> scramble_caching_sha2(std::string_view password, Bytes nonce) {
    if (password.empty()) return {};
    const auto p1 = digest<32>(EVP_sha256(), {wire::as_bytes(password)});
    const auto p2 = digest<32>(EVP_sha256(), {p1});
    const auto p3 = digest<32>(EVP_sha256(), {p2, first_nonce(nonce)});
    std::vector<std::uint8_t> out(32);
    for (std::size_t i = 0; i < 32; ++i)
        out[i] = p1[i] ^ p3[i];
    return out;
}

result<std::vector<std::uint8_t>> encrypt_password_rsa(std::string_view password, Bytes nonce,
                                                       std::string_view public_key_pem) {
    if (nonce.empty()) return codec_errc::malformed;
    std::vector<std::uint8_t> plain(password.begin(), password.end());
    plain.push_back(0);
    const Bytes n = first_nonce(nonce);
    for (std::size_t i = 0; i < plain.size(); ++i)
        plain[i] ^= n[i % n.size()];

    std::unique_ptr<BIO, decltype(&BIO_free)> bio{
        BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())), BIO_free};
    if (!bio) return codec_errc::malformed;
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{
        PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free};
    if (!key) return codec_errc::malformed;
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx{
        EVP_PKEY_CTX_new(key.get(), nullptr), EVP_PKEY_CTX_free};
    std::size_t out_len = 0;
    if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_encrypt(ctx.get(), nullptr, &out_len, plain.data(), plain.size()) != 1)
        return codec_errc::malformed;
    std::vector<std::uint8_t> out(out_len);
    if (EVP_PKEY_encrypt(ctx.get(), out.data(), &out_len, plain.data(), plain.size()) != 1)
        return codec_errc::malformed;
    out.resize(out_len);
    return out;
}

void make_nonce(Bytes random, std::array<std::uint8_t, nonce_size>& out) noexcept {
    for (std::size_t i = 0; i < nonce_size; ++i) {
        std::uint8_t c = i < random.size() ? static_cast<std::uint8_t>(random[i] & 0x7F) : 1;
        if (c == 0 || c == '$') c = static_cast<std::uint8_t>(c + 1);
        out[i] = c;
    }
}

bool equal_secret(Bytes a, Bytes b) noexcept {
    if (a.size() != b.size()) return false;
    std::uint8_t diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<std::uint8_t>(a[i] ^ b[i]);
    return diff == 0;
}

ErrPacket access_denied(std::string_view user, std::string_view host, bool used_password) {
    ErrPacket e;
    e.code = er::access_denied;
    e.sql_state = "28000";
    e.message = "Access denied for user '" + std::string(user) + "'@'" + std::string(host) +
                "' (using password: " + (used_password ? "YES" : "NO") + ")";
    return e;
}

// ---- ServerLogin ----

ServerLogin::ServerLogin(Options options, std::array<std::uint8_t, nonce_size> nonce) noexcept
    : options_(std::move(options)), nonce_(nonce) {}

Greeting ServerLogin::make_greeting(std::string server_version, std::uint32_t connection_id,
                                    std::uint32_t capabilities, std::uint8_t charset,
                                    std::uint16_t status) const {
    Greeting g;
    g.server_version = std::move(server_version);
    g.connection_id = connection_id;
    g.auth_data.assign(nonce_.begin(), nonce_.end());
    g.capabilities = capabilities;
    g.charset = charset;
    g.status = status;
    g.auth_plugin = options_.plugin;
    return g;
}

AuthAction ServerLogin::deny(bool used_password) const {
    AuthAction a;
    a.kind = AuthAction::Kind::fail;
    a.error = access_denied(user_, options_.client_host, used_password);
    a.packets.push_back(payload_of(write_err, a.error));
    return a;
}

AuthAction ServerLogin::on_handshake_response(const HandshakeResponse& response, bool tls,
                                              const PasswordLookup& lookup,
                                              const CacheCheck& cached) {
    std::string_view plugin = response.auth_plugin;
    // Without CLIENT_PLUGIN_AUTH the client speaks mysql_native_password.
    if (!(response.capabilities & cap::plugin_auth)) plugin = native_password_plugin;
    return start(response.user, plugin, response.auth_response, tls, lookup, cached);
}

AuthAction ServerLogin::on_change_user(const ChangeUser& request, bool tls,
                                       const PasswordLookup& lookup, const CacheCheck& cached) {
    state_ = State::greeting;
    std::string_view plugin = request.auth_plugin;
    if (plugin.empty()) plugin = native_password_plugin;
    return start(request.user, plugin, request.auth_response, tls, lookup, cached);
}

AuthAction ServerLogin::start(std::string user, std::string_view plugin, Bytes auth, bool tls,
                              const PasswordLookup& lookup, const CacheCheck& cached) {
    user_ = std::move(user);
    tls_ = tls;
    auto pw = lookup(user_);
    user_known_ = pw.has_value();
    password_ = pw.value_or(std::string{});
    if (plugin == native_password_plugin || plugin == caching_sha2_plugin) {
        // The client already answered our nonce with a plugin we speak: check it directly.
        cached_ = user_known_ && cached(user_);
        return verify(plugin, auth, tls, cached_);
    }
    // Any other plugin (sha256_password, client_ed25519, none): ask for ours instead.
    cached_ = user_known_ && cached(user_);
    state_ = State::switched;
    AuthAction a;
    AuthSwitchRequest sw{options_.plugin, {nonce_.begin(), nonce_.end()}};
    a.packets.push_back(payload_of(write_auth_switch, sw));
    return a;
}

AuthAction ServerLogin::verify(std::string_view plugin, Bytes auth, bool tls, bool cached) {
    if (!user_known_) {
        state_ = State::done;
        return deny(!auth.empty());
    }
    const bool native = plugin == native_password_plugin;
    const auto expected =
        native ? scramble_native(password_, nonce_) : scramble_caching_sha2(password_, nonce_);
    if (!equal_secret(expected, auth)) {
        state_ = State::done;
        return deny(!auth.empty());
    }
    AuthAction a;
    if (!native && !password_.empty()) {
        if (tls && !cached) {
            // As a MySQL 8 server with a cold cache: full authentication, the password
            // travelling in the clear inside TLS.
            state_ = State::full_auth;
            a.packets.push_back({0x01, 0x04}); // perform_full_authentication
            return a;
        }
        a.packets.push_back({0x01, 0x03}); // fast_auth_success
    }
    state_ = State::done;
    a.kind = AuthAction::Kind::send_and_succeed;
    return a;
}

AuthAction ServerLogin::on_auth_data(Bytes payload) {
    switch (state_) {
    case State::switched:
        return verify(options_.plugin, payload, tls_, cached_);
    case State::full_auth: {
        state_ = State::done;
        if (!tls_) return deny(true); // never asked for without TLS
        Bytes pw = payload;
        if (!pw.empty() && pw.back() == 0) pw = pw.first(pw.size() - 1);
        if (!equal_secret(pw, wire::as_bytes(password_))) return deny(true);
        AuthAction a;
        a.kind = AuthAction::Kind::send_and_succeed;
        return a;
    }
    case State::greeting:
    case State::done:
        break;
    }
    AuthAction a;
    a.kind = AuthAction::Kind::fail;
    a.error = ErrPacket{er::handshake_error, "08S01", "Bad handshake"};
    a.packets.push_back(payload_of(write_err, a.error));
    return a;
}

// ---- BackendLogin ----

result<AuthAction> BackendLogin::on_greeting(Bytes payload) {
    if (is_err(payload)) {
        auto err = parse_err(payload);
        if (!err) return err.error();
        AuthAction a;
        a.kind = AuthAction::Kind::fail;
        a.error = std::move(*err);
        return a;
    }
    auto g = parse_greeting(payload);
    if (!g) return g.error();
    greeting_ = std::move(*g);
    // Without CLIENT_SECURE_CONNECTION the server predates 4.1 authentication, and our binary
    // scramble would go out NUL-terminated.
    if (!(greeting_.capabilities & cap::protocol_41) ||
        !(greeting_.capabilities & cap::secure_connection))
        return codec_errc::malformed;
    capabilities_ = (options_.capabilities & greeting_.capabilities) | cap::protocol_41 |
                    cap::secure_connection | cap::plugin_auth;
    capabilities_ &= greeting_.capabilities | cap::protocol_41;
    capabilities_ &= ~(cap::ssl | cap::connect_with_db | cap::compress | cap::zstd_compression);
    if (options_.tls) capabilities_ |= cap::ssl;
    if (!options_.database.empty()) capabilities_ |= cap::connect_with_db;
    if (!options_.attributes.empty() && (greeting_.capabilities & cap::connect_attrs))
        capabilities_ |= cap::connect_attrs;
    else
        capabilities_ &= ~cap::connect_attrs;
    plugin_ =
        greeting_.auth_plugin.empty() ? std::string{native_password_plugin} : greeting_.auth_plugin;
    nonce_ = greeting_.auth_data;
    return AuthAction{};
}

std::vector<std::uint8_t> BackendLogin::ssl_request() const {
    HandshakeResponse r;
    r.capabilities = capabilities_;
    r.mariadb_ext_capabilities = ext_capabilities();
    r.max_packet = 0x40000000;
    r.charset = options_.charset;
    r.is_ssl_request = true;
    return payload_of(write_handshake_response, r);
}

std::vector<std::uint8_t> BackendLogin::scramble_for(std::string_view plugin, Bytes nonce) const {
    if (plugin == caching_sha2_plugin) return scramble_caching_sha2(options_.password, nonce);
    return scramble_native(options_.password, nonce);
}

std::vector<std::uint8_t> BackendLogin::handshake_response() const {
    HandshakeResponse r;
    r.capabilities = capabilities_;
    r.mariadb_ext_capabilities = ext_capabilities();
    r.max_packet = 0x40000000;
    r.charset = options_.charset;
    r.user = options_.user;
    // Plugins we do not speak get the native scramble; the server will ask to switch.
    const bool known = plugin_ == native_password_plugin || plugin_ == caching_sha2_plugin;
    const std::string_view plugin = known ? std::string_view{plugin_} : native_password_plugin;
    r.auth_response = scramble_for(plugin, nonce_);
    r.database = options_.database;
    r.auth_plugin = std::string{plugin};
    r.attributes = options_.attributes;
    return payload_of(write_handshake_response, r);
}

result<AuthAction> BackendLogin::on_packet(Bytes payload) {
    AuthAction a;
    if (payload.empty()) return codec_errc::truncated;
    if (is_ok(payload)) {
        auto ok = parse_ok(payload);
        if (!ok) return ok.error();
        ok_ = std::move(*ok);
        a.kind = AuthAction::Kind::send_and_succeed;
        return a;
    }
    if (is_err(payload)) {
        auto err = parse_err(payload);
        if (!err) return err.error();
        a.kind = AuthAction::Kind::fail;
        a.error = std::move(*err);
        return a;
    }
    if (payload[0] == 0xFE) {
        auto sw = parse_auth_switch(payload);
        if (!sw) return sw.error();
        if (sw->plugin != native_password_plugin && sw->plugin != caching_sha2_plugin) {
            a.kind = AuthAction::Kind::fail;
            a.error = ErrPacket{er::handshake_error, "08S01",
                                "backend asked for unsupported auth plugin " + sw->plugin};
            return a;
        }
        plugin_ = sw->plugin;
        nonce_ = sw->data;
        a.packets.push_back(scramble_for(plugin_, nonce_));
        return a;
    }
    if (payload[0] == 0x01) {
        Bytes data = payload.subspan(1);
        if (awaiting_public_key_) {
            awaiting_public_key_ = false;
            auto enc = encrypt_password_rsa(
                options_.password, nonce_,
                std::string_view{reinterpret_cast<const char*>(data.data()), data.size()});
            if (!enc) return enc.error();
            a.packets.push_back(std::move(*enc));
            return a;
        }
        if (plugin_ == caching_sha2_plugin && data.size() == 1) {
            if (data[0] == 0x03) { // fast_auth_success: the OK follows
                awaiting_ok_ = true;
                return a;
            }
            if (data[0] == 0x04) { // perform_full_authentication
                if (options_.tls) {
                    std::vector<std::uint8_t> pw(options_.password.begin(),
                                                 options_.password.end());
                    pw.push_back(0);
                    a.packets.push_back(std::move(pw));
                } else {
                    awaiting_public_key_ = true;
                    a.packets.push_back({0x02}); // request_public_key
                }
                return a;
            }
        }
    }
    return codec_errc::unexpected_message;
}

} // namespace sluice::protocol::mysql
