#include "sluice/protocol/tds/text.hpp"
#include "sluice/protocol/tds/tokens.hpp"
#include "wire.hpp"

#include <algorithm>
#include <string>

namespace sluice::protocol::tds {

namespace {

// Appends a token with a USHORT length: the type, a placeholder, then `body` fills it.
template <class Body> void put_token(std::uint8_t type, std::vector<std::uint8_t>& out, Body body) {
    out.push_back(type);
    const std::size_t at = out.size();
    wire::put_le(out, 0, 2);
    body();
    wire::set_le(out, at, out.size() - at - 2, 2);
}

} // namespace

void write_env_change_text(std::uint8_t type, std::string_view new_value,
                           std::string_view old_value, std::vector<std::uint8_t>& out) {
    put_token(token::env_change, out, [&] {
        out.push_back(type);
        wire::put_b_varchar(out, new_value);
        wire::put_b_varchar(out, old_value);
    });
}

void write_env_change_bytes(std::uint8_t type, Bytes new_value, Bytes old_value,
                            std::vector<std::uint8_t>& out) {
    put_token(token::env_change, out, [&] {
        out.push_back(type);
        out.push_back(static_cast<std::uint8_t>(new_value.size()));
        wire::put_bytes(out, new_value.first(std::min<std::size_t>(new_value.size(), 255)));
        out.push_back(static_cast<std::uint8_t>(old_value.size()));
        wire::put_bytes(out, old_value.first(std::min<std::size_t>(old_value.size(), 255)));
    });
}

void write_reset_ack(std::vector<std::uint8_t>& out) {
    write_env_change_bytes(env_type::reset_ack, {}, {}, out);
}

void write_server_message(bool info, const ServerMessage& m, std::uint32_t tds_version,
                          std::vector<std::uint8_t>& out) {
    put_token(info ? token::info : token::error, out, [&] {
        wire::put_le(out, static_cast<std::uint32_t>(m.number), 4);
        out.push_back(m.state);
        out.push_back(m.severity);
        // The token's own USHORT length bounds the whole; a message is cut well before that.
        const std::size_t at = out.size();
        wire::put_le(out, 0, 2);
        const std::size_t units = append_utf16le(m.message, out, 32000);
        wire::set_le(out, at, units, 2);
        wire::put_b_varchar(out, m.server);
        wire::put_b_varchar(out, m.procedure);
        wire::put_le(out, static_cast<std::uint32_t>(m.line), at_least_7_2(tds_version) ? 4 : 2);
    });
}

void write_login_ack(const LoginAck& ack, std::vector<std::uint8_t>& out) {
    put_token(token::login_ack, out, [&] {
        out.push_back(ack.interface);
        wire::put_be(out, ack.tds_version, 4);
        wire::put_b_varchar(out, ack.prog_name);
        wire::put_bytes(out, ack.prog_version);
    });
}

void write_done(const Done& d, std::uint32_t tds_version, std::vector<std::uint8_t>& out) {
    out.push_back(d.token);
    wire::put_le(out, d.status, 2);
    wire::put_le(out, d.cur_cmd, 2);
    wire::put_le(out, d.row_count, at_least_7_2(tds_version) ? 8 : 4);
}

void write_login_reply(const LoginReply& r, std::vector<std::uint8_t>& out) {
    write_env_change_text(env_type::database, r.database, r.old_database, out);
    if (r.info_messages) {
        write_server_message(
            true,
            {5701, 2, 0, "Changed database context to '" + r.database + "'.", r.server_name, "", 1},
            r.tds_version, out);
    }
    write_env_change_bytes(env_type::collation, r.collation, {}, out);
    write_env_change_text(env_type::language, r.language, r.old_language, out);
    if (r.info_messages) {
        write_server_message(
            true,
            {5703, 1, 0, "Changed language setting to " + r.language + ".", r.server_name, "", 1},
            r.tds_version, out);
    }
    write_login_ack({1, r.tds_version, r.prog_name, r.prog_version}, out);
    write_env_change_text(env_type::packet_size, std::to_string(r.packet_size),
                          std::to_string(r.old_packet_size), out);
    write_done({token::done, done_status::final, 0, 0}, r.tds_version, out);
}

void write_error_response(const ServerMessage& m, std::uint32_t tds_version,
                          std::vector<std::uint8_t>& out) {
    write_server_message(false, m, tds_version, out);
    write_done({token::done, done_status::error, 0, 0}, tds_version, out);
}

void write_attention_ack(std::uint32_t tds_version, std::vector<std::uint8_t>& out) {
    write_done({token::done, done_status::attn, 0, 0}, tds_version, out);
}

} // namespace sluice::protocol::tds
