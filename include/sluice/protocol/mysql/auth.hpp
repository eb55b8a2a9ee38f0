#pragma once
// Authentication for the MySQL protocol: the scramble math of mysql_native_password and
// caching_sha2_password, and the two login state machines Sluice runs: as a server toward
// its clients (ServerLogin) and as a client toward a backend (BackendLogin).
// Pure: no sockets, no clock; randomness comes in from the caller.

#include "sluice/protocol/mysql/messages.hpp"

#include <array>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::protocol::mysql {

inline constexpr std::string_view native_password_plugin = "mysql_native_password";
inline constexpr std::string_view caching_sha2_plugin = "caching_sha2_password";
inline constexpr std::size_t nonce_size = 20;

/// mysql_native_password: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))); empty for an empty
/// password. `nonce` is the 20-byte scramble.
std::vector<std::uint8_t> scramble_native(std::string_view password, Bytes nonce);
/// caching_sha2_password fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce).
std::vector<std::uint8_t> scramble_caching_sha2(std::string_view password, Bytes nonce);
/// caching_sha2_password full authentication without TLS: (password + NUL) XOR nonce
/// (repeated), encrypted with the server's RSA public key (PEM) using OAEP padding.
/// codec_errc::malformed when the key cannot be read.
result<std::vector<std::uint8_t>> encrypt_password_rsa(std::string_view password, Bytes nonce,
                                                       std::string_view public_key_pem);
/// Fills `out` with a nonce as MySQL servers make it: 7-bit bytes, never NUL or '$'.
/// `random` supplies raw random bytes.
void make_nonce(Bytes random, std::array<std::uint8_t, nonce_size>& out) noexcept;

/// Constant-time comparison of two byte strings.
bool equal_secret(Bytes a, Bytes b) noexcept;

/// What a login state machine wants done next.
struct AuthAction {
    enum class Kind {
        send, ///< send `packets` (payloads, in order, consecutive sequence numbers); then wait
        send_and_succeed, ///< send `packets` (the last is the final OK); the login succeeded
        fail,             ///< send `packets` (an ERR) if any; the login failed with `error`
    };
    Kind kind = Kind::send;
    std::vector<std::vector<std::uint8_t>> packets;
    ErrPacket error; ///< for fail
};

/// Sluice as the server: checks a client's login against the configured users.
/// Flow: make_greeting → on_handshake_response → on_auth_data (repeat while Kind::send).
class ServerLogin {
public:
    /// Returns the user's password, or std::nullopt for an unknown user.
    using PasswordLookup = std::function<std::optional<std::string>(std::string_view user)>;
    /// Says whether this user already logged in once with this password (caching_sha2 cache).
    using CacheCheck = std::function<bool(std::string_view user)>;

    struct Options {
        std::string plugin{native_password_plugin}; ///< the plugin named in the greeting
        std::string client_host;                    ///< for the 1045 message
    };

    ServerLogin(Options options, std::array<std::uint8_t, nonce_size> nonce) noexcept;

    /// The greeting to send; `capabilities`, `server_version`, `connection_id`, `charset`
    /// and `status` come from the caller, the nonce and plugin from this login.
    Greeting make_greeting(std::string server_version, std::uint32_t connection_id,
                           std::uint32_t capabilities, std::uint8_t charset,
                           std::uint16_t status) const;

    /// The client's HandshakeResponse41 (never an SSLRequest). `tls` says whether the
    /// connection is encrypted now. On success the final packet is not included: the caller
    /// sends its own OK once the backend side is ready (Kind::send_and_succeed with the
    /// packets to send before it, possibly none).
    AuthAction on_handshake_response(const HandshakeResponse& response, bool tls,
                                     const PasswordLookup& lookup, const CacheCheck& cached);
    /// The client's next packet (auth switch response or full-auth password).
    AuthAction on_auth_data(Bytes payload);
    /// COM_CHANGE_USER: checks its auth data against this session's nonce; switches
    /// plugin if needed, just as on_handshake_response.
    AuthAction on_change_user(const ChangeUser& request, bool tls, const PasswordLookup& lookup,
                              const CacheCheck& cached);

    const std::string& user() const noexcept { return user_; }
    const std::string& password() const noexcept { return password_; }
    Bytes nonce() const noexcept { return nonce_; }

private:
    enum class State { greeting, switched, full_auth, done };
    AuthAction start(std::string user, std::string_view plugin, Bytes auth, bool tls,
                     const PasswordLookup& lookup, const CacheCheck& cached);
    AuthAction deny(bool used_password) const;
    AuthAction verify(std::string_view plugin, Bytes auth, bool tls, bool cached);

    Options options_;
    std::array<std::uint8_t, nonce_size> nonce_;
    State state_ = State::greeting;
    std::string user_, password_;
    bool tls_ = false;
    bool user_known_ = false;
    bool cached_ = false; // the user logged in before (caching_sha2 fast path over TLS)
};

/// Sluice as a client logging in to a backend with a user's credentials.
/// Flow: on_greeting → (TLS upgrade by the caller if wanted) → handshake_response →
/// on_packet for every server packet until send_and_succeed or fail.
class BackendLogin {
public:
    struct Options {
        std::string user, password, database;
        std::uint32_t capabilities = 0; ///< wanted; intersected with the server's
        /// MariaDB extended capabilities wanted; intersected with the server's, sent only to
        /// a server that offers them (no CLIENT_MYSQL in its greeting).
        std::uint32_t mariadb_ext_capabilities = 0;
        std::uint8_t charset = 45; ///< utf8mb4_general_ci
        bool tls = false;          ///< upgrade with SSLRequest before the response
        std::vector<std::pair<std::string, std::string>> attributes;
    };
    explicit BackendLogin(Options options) : options_(std::move(options)) {}

    /// Parses the greeting (an ERR here, e.g. "too many connections", fails the login).
    /// codec_errc on malformed bytes, or codec_errc::malformed for a server without 4.1
    /// authentication (CLIENT_PROTOCOL_41 and CLIENT_SECURE_CONNECTION); an ERR packet comes
    /// back as Kind::fail.
    result<AuthAction> on_greeting(Bytes payload);
    /// The SSLRequest payload to send before the TLS handshake (only when tls).
    std::vector<std::uint8_t> ssl_request() const;
    /// The HandshakeResponse41 payload (after the TLS handshake if tls).
    std::vector<std::uint8_t> handshake_response() const;
    /// The server's next packet after the handshake response.
    result<AuthAction> on_packet(Bytes payload);

    const Greeting& greeting() const noexcept { return greeting_; }
    std::uint32_t capabilities() const noexcept { return capabilities_; }
    /// The MariaDB extended capabilities both sides have (0 with a MySQL server, or when the
    /// login itself announces CLIENT_MYSQL).
    std::uint32_t ext_capabilities() const noexcept {
        if ((greeting_.capabilities | capabilities_) & cap::long_password) return 0;
        return options_.mariadb_ext_capabilities & greeting_.mariadb_ext_capabilities;
    }
    const OkPacket& final_ok() const noexcept { return ok_; }

private:
    std::vector<std::uint8_t> scramble_for(std::string_view plugin, Bytes nonce) const;

    Options options_;
    Greeting greeting_;
    std::uint32_t capabilities_ = 0;
    std::string plugin_;
    std::vector<std::uint8_t> nonce_;
    bool awaiting_public_key_ = false;
    bool awaiting_ok_ = false;
    OkPacket ok_;
};

/// The ERR packet a server sends for a wrong password (1045, SQLSTATE 28000).
ErrPacket access_denied(std::string_view user, std::string_view host, bool used_password);

} // namespace sluice::protocol::mysql
