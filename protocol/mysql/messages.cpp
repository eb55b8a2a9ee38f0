#include "sluice/protocol/mysql/messages.hpp"

#include "wire.hpp"

#include <algorithm>

namespace sluice::protocol::mysql {

using wire::Reader;

namespace {
std::vector<std::uint8_t> to_vec(Bytes b) { return {b.begin(), b.end()}; }

result<std::vector<std::pair<std::string, std::string>>> parse_attributes(Reader& r) noexcept {
    std::vector<std::pair<std::string, std::string>> attrs;
    auto block = r.lenenc_bytes();
    if (!block) return block.error();
    Reader a{*block};
    while (!a.empty()) {
        auto k = a.lenenc_bytes();
        if (!k) return k.error();
        auto v = a.lenenc_bytes();
        if (!v) return v.error();
        attrs.emplace_back(wire::to_string(*k), wire::to_string(*v));
    }
    return attrs;
}

void write_attributes(const std::vector<std::pair<std::string, std::string>>& attrs,
                      std::vector<std::uint8_t>& out) {
    std::vector<std::uint8_t> block;
    for (const auto& [k, v] : attrs) {
        wire::put_lenenc_str(block, k);
        wire::put_lenenc_str(block, v);
    }
    wire::put_lenenc(out, block.size());
    wire::put_bytes(out, block);
}

// A trailing NUL some servers leave in the last string is not part of its value.
Bytes rest_without_nul(Reader& r) noexcept {
    Bytes b = r.rest();
    if (!b.empty() && b.back() == 0) b = b.first(b.size() - 1);
    return b;
}
} // namespace

// ---- Protocol::HandshakeV10 ----

result<Greeting> parse_greeting(Bytes payload) noexcept {
    Reader r{payload};
    Greeting g;
    auto version = r.u8();
    if (!version) return version.error();
    if (*version != 10) return codec_errc::malformed;
    auto sv = r.null_terminated();
    if (!sv) return sv.error();
    g.server_version = wire::to_string(*sv);
    auto id = r.u32();
    if (!id) return id.error();
    g.connection_id = *id;
    auto part1 = r.bytes(8);
    if (!part1) return part1.error();
    g.auth_data = to_vec(*part1);
    if (auto f = r.skip(1); !f) return f.error();
    auto caps_low = r.u16();
    if (!caps_low) return caps_low.error();
    g.capabilities = *caps_low;
    auto charset = r.u8();
    if (!charset) return charset.error();
    g.charset = *charset;
    auto st = r.u16();
    if (!st) return st.error();
    g.status = *st;
    auto caps_high = r.u16();
    if (!caps_high) return caps_high.error();
    g.capabilities |= std::uint32_t{*caps_high} << 16;
    auto auth_len = r.u8();
    if (!auth_len) return auth_len.error();
    if (auto f = r.skip(6); !f) return f.error();
    auto ext = r.u32();
    if (!ext) return ext.error();
    if (!(g.capabilities & cap::long_password)) g.mariadb_ext_capabilities = *ext;
    if (g.capabilities & cap::secure_connection) {
        // auth-plugin-data-part-2 is MAX(13, auth_plugin_data_len - 8) bytes, all required;
        // the length byte counts only with CLIENT_PLUGIN_AUTH (it is 0 otherwise).
        const std::size_t data_len = (g.capabilities & cap::plugin_auth) ? *auth_len : 0u;
        const std::size_t len = std::max<std::size_t>(13, data_len > 8 ? data_len - 8u : 0u);
        auto part2 = r.bytes(len);
        if (!part2) return part2.error();
        Bytes p2 = *part2;
        if (!p2.empty() && p2.back() == 0) p2 = p2.first(p2.size() - 1);
        g.auth_data.insert(g.auth_data.end(), p2.begin(), p2.end());
    }
    if (g.capabilities & cap::plugin_auth) {
        // Some servers omit the terminating NUL of the plugin name.
        g.auth_plugin = wire::to_string(rest_without_nul(r));
    }
    if (!r.empty()) return codec_errc::trailing_bytes;
    return g;
}

void write_greeting(const Greeting& g, std::vector<std::uint8_t>& out) {
    out.push_back(10);
    wire::put_null_str(out, g.server_version);
    wire::put_fixed(out, g.connection_id, 4);
    const std::size_t n1 = std::min<std::size_t>(8, g.auth_data.size());
    wire::put_bytes(out, Bytes{g.auth_data}.first(n1));
    for (std::size_t i = n1; i < 8; ++i)
        out.push_back(0);
    out.push_back(0);
    wire::put_fixed(out, g.capabilities & 0xFFFF, 2);
    out.push_back(g.charset);
    wire::put_fixed(out, g.status, 2);
    wire::put_fixed(out, g.capabilities >> 16, 2);
    // The second part is the rest of the nonce and a NUL, at least 13 bytes and at most 247 so
    // that the length byte (8 + its size) fits; exactly 13 without CLIENT_PLUGIN_AUTH, where
    // the length byte is 0.
    Bytes part2 = g.auth_data.size() > 8 ? Bytes{g.auth_data}.subspan(8) : Bytes{};
    std::size_t part2_len = 13;
    if (g.capabilities & cap::plugin_auth)
        part2_len = std::clamp<std::size_t>(part2.size() + 1, 13, 247);
    part2 = part2.first(std::min(part2.size(), part2_len));
    std::uint8_t auth_len = 0;
    if (g.capabilities & cap::plugin_auth) {
        auth_len = static_cast<std::uint8_t>(
            (g.capabilities & cap::secure_connection) ? 8 + part2_len : g.auth_data.size() + 1);
    }
    out.push_back(auth_len);
    for (int i = 0; i < 6; ++i)
        out.push_back(0);
    wire::put_fixed(out, (g.capabilities & cap::long_password) ? 0 : g.mariadb_ext_capabilities, 4);
    if (g.capabilities & cap::secure_connection) {
        wire::put_bytes(out, part2);
        for (std::size_t i = part2.size(); i < part2_len; ++i)
            out.push_back(0);
    }
    if (g.capabilities & cap::plugin_auth) wire::put_null_str(out, g.auth_plugin);
}

// ---- Protocol::HandshakeResponse41 / SSLRequest ----

result<HandshakeResponse> parse_handshake_response(Bytes payload) noexcept {
    Reader r{payload};
    HandshakeResponse h;
    auto caps = r.u32();
    if (!caps) return caps.error();
    h.capabilities = *caps;
    if (!(h.capabilities & cap::protocol_41)) return codec_errc::malformed;
    auto maxp = r.u32();
    if (!maxp) return maxp.error();
    h.max_packet = *maxp;
    auto cs = r.u8();
    if (!cs) return cs.error();
    h.charset = *cs;
    if (auto f = r.skip(19); !f) return f.error();
    auto ext = r.u32();
    if (!ext) return ext.error();
    h.mariadb_ext_capabilities = *ext;
    if (r.empty() && (h.capabilities & cap::ssl)) {
        h.is_ssl_request = true;
        return h;
    }
    auto user = r.null_terminated();
    if (!user) return user.error();
    h.user = wire::to_string(*user);
    result<Bytes> auth = codec_errc::malformed;
    if (h.capabilities & cap::plugin_auth_lenenc_data) {
        auth = r.lenenc_bytes();
    } else if (h.capabilities & cap::secure_connection) {
        auto n = r.u8();
        if (!n) return n.error();
        auth = r.bytes(*n);
    } else {
        auth = r.null_terminated();
    }
    if (!auth) return auth.error();
    h.auth_response = to_vec(*auth);
    if ((h.capabilities & cap::connect_with_db) && !r.empty()) {
        auto db = r.null_terminated();
        if (!db) return db.error();
        h.database = wire::to_string(*db);
    }
    if ((h.capabilities & cap::plugin_auth) && !r.empty()) {
        auto plugin = r.null_terminated();
        if (!plugin) return plugin.error();
        h.auth_plugin = wire::to_string(*plugin);
    }
    if ((h.capabilities & cap::connect_attrs) && !r.empty()) {
        auto attrs = parse_attributes(r);
        if (!attrs) return attrs.error();
        h.attributes = std::move(*attrs);
    }
    if ((h.capabilities & cap::zstd_compression) && !r.empty()) {
        if (auto f = r.skip(1); !f) return f.error();
    }
    if (!r.empty()) return codec_errc::trailing_bytes;
    return h;
}

void write_handshake_response(const HandshakeResponse& h, std::vector<std::uint8_t>& out) {
    wire::put_fixed(out, h.capabilities, 4);
    wire::put_fixed(out, h.max_packet, 4);
    out.push_back(h.charset);
    for (int i = 0; i < 19; ++i)
        out.push_back(0);
    wire::put_fixed(out, h.mariadb_ext_capabilities, 4);
    if (h.is_ssl_request) return;
    wire::put_null_str(out, h.user);
    if (h.capabilities & cap::plugin_auth_lenenc_data) {
        wire::put_lenenc(out, h.auth_response.size());
        wire::put_bytes(out, h.auth_response);
    } else if (h.capabilities & cap::secure_connection) {
        out.push_back(static_cast<std::uint8_t>(h.auth_response.size()));
        wire::put_bytes(out, h.auth_response);
    } else {
        wire::put_bytes(out, h.auth_response);
        out.push_back(0);
    }
    if (h.capabilities & cap::connect_with_db) wire::put_null_str(out, h.database);
    if (h.capabilities & cap::plugin_auth) wire::put_null_str(out, h.auth_plugin);
    if (h.capabilities & cap::connect_attrs) write_attributes(h.attributes, out);
}

// ---- COM_CHANGE_USER ----

result<ChangeUser> parse_change_user(Bytes payload, std::uint32_t capabilities) noexcept {
    Reader r{payload};
    auto cmd = r.u8();
    if (!cmd) return cmd.error();
    if (*cmd != static_cast<std::uint8_t>(Command::change_user))
        return codec_errc::unexpected_message;
    ChangeUser c;
    auto user = r.null_terminated();
    if (!user) return user.error();
    c.user = wire::to_string(*user);
    result<Bytes> auth = codec_errc::malformed;
    if (capabilities & cap::secure_connection) {
        auto n = r.u8();
        if (!n) return n.error();
        auth = r.bytes(*n);
    } else {
        auth = r.null_terminated();
    }
    if (!auth) return auth.error();
    c.auth_response = to_vec(*auth);
    auto db = r.null_terminated();
    if (!db) return db.error();
    c.database = wire::to_string(*db);
    if (r.empty()) return c;
    auto cs = r.u16();
    if (!cs) return cs.error();
    c.charset = *cs;
    if ((capabilities & cap::plugin_auth) && !r.empty()) {
        auto plugin = r.null_terminated();
        if (!plugin) return plugin.error();
        c.auth_plugin = wire::to_string(*plugin);
    }
    if ((capabilities & cap::connect_attrs) && !r.empty()) {
        auto attrs = parse_attributes(r);
        if (!attrs) return attrs.error();
        c.attributes = std::move(*attrs);
    }
    if (!r.empty()) return codec_errc::trailing_bytes;
    return c;
}

void write_change_user(const ChangeUser& c, std::uint32_t capabilities,
                       std::vector<std::uint8_t>& out) {
    out.push_back(static_cast<std::uint8_t>(Command::change_user));
    wire::put_null_str(out, c.user);
    if (capabilities & cap::secure_connection) {
        out.push_back(static_cast<std::uint8_t>(c.auth_response.size()));
        wire::put_bytes(out, c.auth_response);
    } else {
        wire::put_bytes(out, c.auth_response);
        out.push_back(0);
    }
    wire::put_null_str(out, c.database);
    wire::put_fixed(out, c.charset, 2);
    if (capabilities & cap::plugin_auth) wire::put_null_str(out, c.auth_plugin);
    if (capabilities & cap::connect_attrs) write_attributes(c.attributes, out);
}

// ---- OK / ERR / EOF ----

namespace {
/// The fields every OK_Packet starts with: header, affected rows, insert id, status, warnings.
error_code read_ok_head(Reader& r, OkPacket& ok) noexcept {
    auto h = r.u8();
    if (!h) return h.error();
    if (*h != 0x00 && *h != 0xFE) return codec_errc::unexpected_message;
    ok.header = *h;
    auto affected = r.lenenc();
    if (!affected) return affected.error();
    ok.affected_rows = *affected;
    auto id = r.lenenc();
    if (!id) return id.error();
    ok.last_insert_id = *id;
    auto st = r.u16();
    if (!st) return st.error();
    ok.status = *st;
    auto w = r.u16();
    if (!w) return w.error();
    ok.warnings = *w;
    return {};
}
} // namespace

result<OkPacket> parse_ok(Bytes payload) noexcept {
    Reader r{payload};
    OkPacket ok;
    if (auto ec = read_ok_head(r, ok)) return ec;
    ok.info = wire::to_string(r.rest());
    return ok;
}

void write_ok(const OkPacket& ok, std::vector<std::uint8_t>& out) {
    out.push_back(ok.header);
    wire::put_lenenc(out, ok.affected_rows);
    wire::put_lenenc(out, ok.last_insert_id);
    wire::put_fixed(out, ok.status, 2);
    wire::put_fixed(out, ok.warnings, 2);
    wire::put_str(out, ok.info);
}

result<TrackedOk> parse_tracked_ok(Bytes payload) {
    Reader r{payload};
    TrackedOk t;
    OkPacket& ok = t.ok;
    if (auto ec = read_ok_head(r, ok)) return ec;
    // Servers leave the info out when it is empty and no state changed.
    if (r.remaining() == 0) return t;
    auto info = r.lenenc_bytes();
    if (!info) return info.error();
    ok.info = wire::to_string(*info);
    if (ok.status & status::session_state_changed) {
        auto block = r.lenenc_bytes();
        if (!block) return block.error();
        t.state = *block;
    }
    return t;
}

std::string tracked_gtid(Bytes state) {
    // Entries: type<1>, data<lenenc string>.
    constexpr std::uint8_t track_system_variables = 0x00, track_gtids = 0x03;
    Reader r{state};
    std::string gtid;
    while (r.remaining() > 0) {
        auto type = r.u8();
        if (!type) return {};
        auto data = r.lenenc_bytes();
        if (!data) return {};
        Reader d{*data};
        if (*type == track_system_variables) {
            // name<lenenc string>, value<lenenc string>.
            auto name = d.lenenc_bytes();
            if (!name) return {};
            auto value = d.lenenc_bytes();
            if (!value) return {};
            if (wire::to_string(*name) == "last_gtid") gtid = wire::to_string(*value);
        } else if (*type == track_gtids) {
            // encoding specification<1> (0: the GTID set as text), gtids<lenenc string>.
            auto spec = d.u8();
            if (!spec || *spec != 0) return {};
            auto value = d.lenenc_bytes();
            if (!value) return {};
            gtid = wire::to_string(*value);
        }
    }
    return gtid;
}

void write_untracked_ok(const OkPacket& tracked, std::vector<std::uint8_t>& out) {
    out.push_back(tracked.header);
    wire::put_lenenc(out, tracked.affected_rows);
    wire::put_lenenc(out, tracked.last_insert_id);
    wire::put_fixed(out, tracked.status & ~status::session_state_changed, 2);
    wire::put_fixed(out, tracked.warnings, 2);
    // MariaDB and MySQL both send a non-empty message length-encoded even to clients without
    // CLIENT_SESSION_TRACK (the documentation says string<EOF>; the servers' net_send_ok
    // stores it with its length): do what the server would have done.
    if (!tracked.info.empty()) wire::put_lenenc_str(out, tracked.info);
}

result<ErrPacket> parse_err(Bytes payload) noexcept {
    Reader r{payload};
    auto h = r.u8();
    if (!h) return h.error();
    if (*h != 0xFF) return codec_errc::unexpected_message;
    ErrPacket e;
    auto code = r.u16();
    if (!code) return code.error();
    e.code = *code;
    if (r.remaining() > 0 && payload[3] == '#') {
        if (auto f = r.skip(1); !f) return f.error();
        auto state = r.bytes(5);
        if (!state) return state.error();
        e.sql_state = wire::to_string(*state);
    } else {
        e.sql_state.clear();
    }
    e.message = wire::to_string(r.rest());
    return e;
}

void write_err(const ErrPacket& e, std::vector<std::uint8_t>& out) {
    out.push_back(0xFF);
    wire::put_fixed(out, e.code, 2);
    if (!e.sql_state.empty()) {
        out.push_back('#');
        std::string state = e.sql_state;
        state.resize(5, '0');
        wire::put_str(out, state);
    }
    wire::put_str(out, e.message);
}

result<EofPacket> parse_eof(Bytes payload) noexcept {
    Reader r{payload};
    auto h = r.u8();
    if (!h) return h.error();
    if (*h != 0xFE) return codec_errc::unexpected_message;
    EofPacket e;
    auto w = r.u16();
    if (!w) return w.error();
    e.warnings = *w;
    auto st = r.u16();
    if (!st) return st.error();
    e.status = *st;
    if (!r.empty()) return codec_errc::trailing_bytes;
    return e;
}

void write_eof(const EofPacket& e, std::vector<std::uint8_t>& out) {
    out.push_back(0xFE);
    wire::put_fixed(out, e.warnings, 2);
    wire::put_fixed(out, e.status, 2);
}

// ---- Auth switch / more data ----

result<AuthSwitchRequest> parse_auth_switch(Bytes payload) noexcept {
    Reader r{payload};
    auto h = r.u8();
    if (!h) return h.error();
    if (*h != 0xFE) return codec_errc::unexpected_message;
    auto plugin = r.null_terminated();
    if (!plugin) return plugin.error();
    AuthSwitchRequest a;
    a.plugin = wire::to_string(*plugin);
    a.data = to_vec(rest_without_nul(r));
    return a;
}

void write_auth_switch(const AuthSwitchRequest& a, std::vector<std::uint8_t>& out) {
    out.push_back(0xFE);
    wire::put_null_str(out, a.plugin);
    wire::put_bytes(out, a.data);
    out.push_back(0);
}

result<Bytes> parse_auth_more_data(Bytes payload) noexcept {
    if (payload.empty()) return codec_errc::truncated;
    if (payload[0] != 0x01) return codec_errc::unexpected_message;
    return payload.subspan(1);
}

void write_auth_more_data(Bytes data, std::vector<std::uint8_t>& out) {
    out.push_back(0x01);
    wire::put_bytes(out, data);
}

} // namespace sluice::protocol::mysql
