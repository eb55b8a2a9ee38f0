// Fuzz target: connection-phase messages, OK packets with session tracking, and the login
// state machines. Whatever parses must survive a round trip: written back and parsed again,
// it is equal.

#include "sluice/protocol/mysql/auth.hpp"
#include "sluice/protocol/mysql/messages.hpp"
#include "sluice/protocol/mysql/packet.hpp"

#include <cstdlib>

using namespace sluice;
using namespace sluice::protocol::mysql;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

void tracked_ok(Bytes in);

template <class T, class Parse, class Write> void round_trip(Bytes in, Parse parse, Write write) {
    result<T> first = parse(in);
    if (!first) return; // refusing input is fine; crashing is not
    std::vector<std::uint8_t> again;
    write(*first, again);
    result<T> second = parse(again);
    check(second.has_value() && *second == *first);
}

void messages(Bytes in) {
    round_trip<Greeting>(in, parse_greeting, write_greeting);
    round_trip<HandshakeResponse>(in, parse_handshake_response, write_handshake_response);
    for (std::uint32_t caps : {std::uint32_t{0}, cap::secure_connection,
                               cap::secure_connection | cap::plugin_auth | cap::connect_attrs,
                               cap::plugin_auth | cap::connect_attrs, ~std::uint32_t{0}}) {
        round_trip<ChangeUser>(
            in, [caps](Bytes b) { return parse_change_user(b, caps); },
            [caps](const ChangeUser& c, std::vector<std::uint8_t>& out) {
                write_change_user(c, caps, out);
            });
    }
    round_trip<OkPacket>(in, parse_ok, write_ok);
    round_trip<ErrPacket>(in, parse_err, write_err);
    round_trip<EofPacket>(in, parse_eof, write_eof);
    round_trip<AuthSwitchRequest>(in, parse_auth_switch, write_auth_switch);
    tracked_ok(in);
}

/// OK packets read with session tracking (the primary's, for read-your-writes): the state
/// block lies inside the payload, the GTID search never fails, and the rewrite for clients
/// without tracking parses as a plain OK with the same fields, the message length-encoded.
void tracked_ok(Bytes in) {
    auto t = parse_tracked_ok(in);
    if (!t) return;
    if (!t->state.empty()) {
        check(t->state.data() >= in.data() &&
              t->state.data() + t->state.size() <= in.data() + in.size());
    }
    const std::string gtid = tracked_gtid(t->state);
    check(gtid.size() <= t->state.size());
    std::vector<std::uint8_t> out;
    write_untracked_ok(t->ok, out);
    auto plain = parse_ok(out);
    check(plain.has_value());
    const std::size_t n = t->ok.info.size();
    const std::size_t prefix = n == 0 ? 0 : n < 251 ? 1 : n <= 0xFFFF ? 3 : n <= 0xFFFFFF ? 4 : 9;
    check(plain->affected_rows == t->ok.affected_rows && plain->header == t->ok.header &&
          plain->info.size() == n + prefix && (plain->status & status::session_state_changed) == 0);
}

// The input as a stream of server packets: greeting first, then login replies.
void backend_login(Bytes in) {
    BackendLogin::Options o;
    o.user = "app";
    o.password = "app";
    o.database = "db";
    o.capabilities = ~std::uint32_t{0};
    o.tls = !in.empty() && (in[0] & 1);
    BackendLogin login{o};
    bool greeted = false;
    while (!in.empty()) {
        auto p = PacketSplitter{1 << 16}.next(in);
        if (!p || !*p) return;
        in = in.subspan((*p)->wire_size());
        if (!greeted) {
            auto a = login.on_greeting((*p)->payload);
            if (!a || a->kind == AuthAction::Kind::fail) return;
            greeted = true;
            auto h = parse_handshake_response(login.handshake_response());
            check(h.has_value() && h->user == "app" && h->database == "db");
            if (o.tls) {
                auto ssl = parse_handshake_response(login.ssl_request());
                check(ssl.has_value() && ssl->is_ssl_request);
            }
            continue;
        }
        auto a = login.on_packet((*p)->payload);
        if (!a || a->kind != AuthAction::Kind::send) return;
    }
}

// The input as a client's handshake response, then its further auth packets.
void server_login(Bytes in) {
    auto p = PacketSplitter{1 << 16}.next(in);
    if (!p || !*p) return;
    auto h = parse_handshake_response((*p)->payload);
    if (!h || h->is_ssl_request) return;
    const bool tls = (*p)->seq & 1;
    std::array<std::uint8_t, nonce_size> nonce{};
    make_nonce(in.subspan(4), nonce);
    ServerLogin login{
        {std::string{(*p)->seq & 2 ? caching_sha2_plugin : native_password_plugin}, "h"}, nonce};
    const ServerLogin::PasswordLookup lookup = [](std::string_view user) {
        return user.size() % 2 ? std::optional<std::string>{"pw"} : std::nullopt;
    };
    const ServerLogin::CacheCheck cached = [](std::string_view user) { return user.empty(); };
    AuthAction a = login.on_handshake_response(*h, tls, lookup, cached);
    in = in.subspan((*p)->wire_size());
    while (a.kind == AuthAction::Kind::send && !in.empty()) {
        auto next = PacketSplitter{1 << 16}.next(in);
        if (!next || !*next) return;
        in = in.subspan((*next)->wire_size());
        a = login.on_auth_data((*next)->payload);
    }
    if (a.kind == AuthAction::Kind::fail) check(!a.packets.empty() && is_err(a.packets[0]));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const Bytes in{data, size};
    messages(in);
    backend_login(in);
    server_login(in);
    return 0;
}
