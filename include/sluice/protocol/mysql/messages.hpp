#pragma once
// Connection-phase and generic response messages of the MySQL client/server protocol.

#include "sluice/protocol/error.hpp"
#include "sluice/protocol/mysql/constants.hpp"

#include <string>
#include <utility>
#include <vector>

namespace sluice::protocol::mysql {

/// Protocol::HandshakeV10, the server's greeting. MariaDB puts its extended capabilities in
/// the last 4 of the 10 reserved bytes when the server does not set CLIENT_LONG_PASSWORD.
struct Greeting {
    std::string server_version;
    std::uint32_t connection_id = 0;
    std::vector<std::uint8_t> auth_data; ///< the nonce (normally 20 bytes, no trailing NUL)
    std::uint32_t capabilities = 0;
    std::uint8_t charset = 0;
    std::uint16_t status = 0;
    std::uint32_t mariadb_ext_capabilities = 0;
    std::string auth_plugin;
    bool operator==(const Greeting&) const = default;
};
result<Greeting> parse_greeting(Bytes payload) noexcept;
void write_greeting(const Greeting& g, std::vector<std::uint8_t>& out);

/// Protocol::HandshakeResponse41, or the SSLRequest that precedes it (only the first 32
/// bytes, with CLIENT_SSL set: `is_ssl_request`).
struct HandshakeResponse {
    std::uint32_t capabilities = 0;
    std::uint32_t max_packet = 0;
    std::uint8_t charset = 0;
    std::uint32_t mariadb_ext_capabilities = 0;
    bool is_ssl_request = false;
    std::string user;
    std::vector<std::uint8_t> auth_response;
    std::string database;
    std::string auth_plugin;
    std::vector<std::pair<std::string, std::string>> attributes;
    bool operator==(const HandshakeResponse&) const = default;
};
result<HandshakeResponse> parse_handshake_response(Bytes payload) noexcept;
void write_handshake_response(const HandshakeResponse& r, std::vector<std::uint8_t>& out);

/// COM_CHANGE_USER. `capabilities` are the session's (they decide which fields are present).
struct ChangeUser {
    std::string user;
    std::vector<std::uint8_t> auth_response;
    std::string database;
    std::uint16_t charset = 0;
    std::string auth_plugin;
    std::vector<std::pair<std::string, std::string>> attributes;
    bool operator==(const ChangeUser&) const = default;
};
result<ChangeUser> parse_change_user(Bytes payload, std::uint32_t capabilities) noexcept;
void write_change_user(const ChangeUser& c, std::uint32_t capabilities,
                       std::vector<std::uint8_t>& out);

/// OK_Packet, protocol 4.1: the fields the proxy reads. `info` holds the rest of the payload
/// unparsed (human-readable info, and session-state data when CLIENT_SESSION_TRACK is on).
struct OkPacket {
    std::uint8_t header = 0x00; ///< 0x00, or 0xFE where it ends a result set (DEPRECATE_EOF)
    std::uint64_t affected_rows = 0, last_insert_id = 0;
    std::uint16_t status = 0, warnings = 0;
    std::string info;
    bool operator==(const OkPacket&) const = default;
};
result<OkPacket> parse_ok(Bytes payload) noexcept;
void write_ok(const OkPacket& ok, std::vector<std::uint8_t>& out);

/// An OK_Packet on a connection with CLIENT_SESSION_TRACK: the info string is length-encoded
/// (and may be absent at the end of the payload), followed by the session-state-change block
/// when the status has SERVER_SESSION_STATE_CHANGED. `ok.info` is the human-readable message
/// only; `state` views the block's entries (without its total length), in `payload`.
struct TrackedOk {
    OkPacket ok;
    Bytes state;
};
result<TrackedOk> parse_tracked_ok(Bytes payload);

/// The GTID a session-state block reports for the session's last write: MariaDB's
/// `last_gtid` system variable (session_track_system_variables), or MySQL 8's
/// SESSION_TRACK_GTIDS entry (session_track_gtids = OWN_GTID). Empty when there is none or
/// the block is malformed (the block is advice: a bad one never fails the response).
std::string tracked_gtid(Bytes state);

/// The same OK as a connection without CLIENT_SESSION_TRACK receives it from MariaDB or MySQL:
/// no session-state block, no SERVER_SESSION_STATE_CHANGED flag, and the message (if any)
/// length-encoded, as those servers send it (checked against MariaDB 10.11 with PyMySQL).
void write_untracked_ok(const OkPacket& tracked, std::vector<std::uint8_t>& out);

/// ERR_Packet, protocol 4.1 (with SQLSTATE marker).
struct ErrPacket {
    std::uint16_t code = 0;
    std::string sql_state = "HY000";
    std::string message;
    bool operator==(const ErrPacket&) const = default;
};
result<ErrPacket> parse_err(Bytes payload) noexcept;
void write_err(const ErrPacket& err, std::vector<std::uint8_t>& out);

/// EOF_Packet, protocol 4.1.
struct EofPacket {
    std::uint16_t warnings = 0, status = 0;
    bool operator==(const EofPacket&) const = default;
};
result<EofPacket> parse_eof(Bytes payload) noexcept;
void write_eof(const EofPacket& eof, std::vector<std::uint8_t>& out);

/// Protocol::AuthSwitchRequest (0xFE): the server asks for another auth plugin.
struct AuthSwitchRequest {
    std::string plugin;
    std::vector<std::uint8_t> data; ///< the new nonce, trailing NUL removed
    bool operator==(const AuthSwitchRequest&) const = default;
};
result<AuthSwitchRequest> parse_auth_switch(Bytes payload) noexcept;
void write_auth_switch(const AuthSwitchRequest& a, std::vector<std::uint8_t>& out);

/// Protocol::AuthMoreData (0x01 + data).
result<Bytes> parse_auth_more_data(Bytes payload) noexcept;
void write_auth_more_data(Bytes data, std::vector<std::uint8_t>& out);

/// Packet kinds told apart by their first byte where the state allows several.
inline bool is_ok(Bytes p) noexcept { return !p.empty() && p[0] == 0x00; }
inline bool is_err(Bytes p) noexcept { return !p.empty() && p[0] == 0xFF; }
/// An EOF packet, or an OK packet with the 0xFE header: 0xFE and shorter than 0xFFFFFF bytes.
inline bool is_eof_or_ok_fe(Bytes p) noexcept {
    return !p.empty() && p[0] == 0xFE && p.size() < max_packet_payload;
}

} // namespace sluice::protocol::mysql
