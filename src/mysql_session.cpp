// A MySQL client session: the connection phase (handshake, authentication, COM_CHANGE_USER),
// the command loop and its dispatch, and what Sluice writes to the client itself.

#include "mysql_session.hpp"

#include "sluice/pool/error.hpp"
#include "sluice/protocol/mysql/command.hpp"
#include "sluice/protocol/mysql/packet.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

namespace sluice {

namespace mysql = protocol::mysql;
using mysql::Command;
using mysql::ResponseKind;
using namespace asio::experimental::awaitable_operators;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// Small: an idle session holds it (issue #10: 10,000 idle clients under 200 MiB); a larger
// request grows it for as long as it takes.
constexpr std::size_t client_buffer_size = std::size_t{4} * 1024;
constexpr std::size_t max_idle_scratch = std::size_t{256} * 1024;
std::array<std::uint8_t, mysql::nonce_size> fresh_nonce() {
    std::array<std::uint8_t, mysql::nonce_size> raw{};
    RAND_bytes(raw.data(), static_cast<int>(raw.size()));
    std::array<std::uint8_t, mysql::nonce_size> nonce{};
    mysql::make_nonce(raw, nonce);
    return nonce;
}

mysql::ServerLogin::Options login_options(const ListenerShared& l, const std::string& peer) {
    mysql::ServerLogin::Options o;
    o.plugin = l.cfg->auth_plugin;
    o.client_host = peer;
    return o;
}

std::string peer_host(tcp::socket& s) {
    error_code ec;
    auto ep = s.remote_endpoint(ec);
    return ec ? std::string{"unknown"} : ep.address().to_string();
}
} // namespace

MysqlSession::MysqlSession(tcp::socket socket, Worker& worker, ListenerShared& listener)
    : worker_(worker), listener_(listener), client_(std::move(socket)), cbuf_(client_buffer_size),
      login_(login_options(listener, peer_host(client_.socket())), fresh_nonce()),
      peer_(peer_host(client_.socket())),
      connection_id_(worker.shared().next_connection_id.fetch_add(1, std::memory_order_relaxed)),
      opened_(std::chrono::steady_clock::now()) {
    worker_.add_session(this);
    auto& stats = worker_.stats();
    stats.connections_total.add();
    stats.connections_active.add();
}

MysqlSession::~MysqlSession() {
    worker_.shared().sessions.erase(connection_id_);
    // Between commands, connections that hold nothing of the session serve others.
    sticky_ = false;
    if (pooling_ && (idle_ || quitting_) && !closed_) release_leases(false);
    drop_slot(primary_slot);
    drop_slot(replica_slot);
    client_.close();
    if (counted_) {
        listener_.connections.fetch_sub(1, std::memory_order_relaxed);
        worker_.shared().clients.fetch_sub(1, std::memory_order_relaxed);
    }
    count_user(nullptr);
    worker_.stats().connections_active.sub();
    worker_.remove_session(this);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - opened_)
                        .count();
    spdlog::info("{} close after {} ms, {} commands: {}", prefix(), ms, queries_, end_reason_);
}

std::string MysqlSession::prefix() const { return fmt::format("s={}", connection_id_); }

void MysqlSession::close_if_idle() noexcept {
    if (idle_) {
        end_reason_ = "shutdown";
        client_.close();
    }
}

void MysqlSession::check_client(std::chrono::steady_clock::time_point now) noexcept {
    if (pooling_ && idle_ && sticky_ && !closed_ && now - last_done_ >= std::chrono::seconds(1)) {
        // Idle for a second: what its last statement left is no longer worth a connection.
        sticky_ = false;
        release_leases();
    }
    // Only requests running for a second or more are checked: one peek each.
    if (idle_ || closed_ || now - command_started_ < std::chrono::seconds(1)) return;
    if (!client_.peer_closed()) return;
    spdlog::info("{} client gone while its statement ran: closing its backend connections",
                 prefix());
    force_close();
    end_reason_ = "client gone during a statement";
}

void MysqlSession::force_close() noexcept {
    closed_ = true;
    end_reason_ = "shutdown grace period over";
    client_.close();
    for (auto& b : backends_) {
        if (b.conn) b.conn->close();
    }
}

void MysqlSession::kill() noexcept {
    end_reason_ = "killed";
    force_close();
    end_reason_ = "killed";
}

void MysqlSession::publish_threads() {
    // Thread-local: its user string keeps its storage from one call to the next.
    thread_local SessionRegistry::Threads t;
    t.worker = &worker_;
    t.user = user_;
    t.primary = t.replica = 0;
    t.replica_index = 0;
    if (const auto& p = backends_[primary_slot].conn) t.primary = p->greeting().connection_id;
    if (const auto& r = backends_[replica_slot].conn) {
        t.replica = r->greeting().connection_id;
        t.replica_index = backends_[replica_slot].index;
    }
    worker_.shared().sessions.set(connection_id_, t);
}

asio::awaitable<void> MysqlSession::run() {
    const auto max = listener_.cfg->max_connections;
    if (listener_.connections.fetch_add(1, std::memory_order_relaxed) >= max) {
        listener_.connections.fetch_sub(1, std::memory_order_relaxed);
        worker_.stats().count_error(ClientError::too_many_connections);
        end_reason_ = "too many connections";
        co_await send_error(0, mysql::er::con_count_error, "08004", "Too many connections");
        co_return;
    }
    counted_ = true;
    const auto total = worker_.shared().cfg.max_client_connections;
    if (worker_.shared().clients.fetch_add(1, std::memory_order_relaxed) >= total && total != 0) {
        worker_.stats().count_error(ClientError::too_many_connections);
        end_reason_ = "too many connections";
        co_await send_error(0, mysql::er::con_count_error, "08004",
                            "Too many connections (max_client_connections)");
        co_return;
    }
    spdlog::info("{} open from {} on {}", prefix(), peer_, listener_.cfg->name);

    // The connection phase has a deadline; the command phase has none of its own.
    asio::steady_timer timer{co_await asio::this_coro::executor,
                             worker_.shared().cfg.client_handshake_timeout};
    auto outcome = co_await (handshake() || timer.async_wait(use_tuple));
    if (outcome.index() == 1) {
        worker_.stats().count_error(ClientError::handshake_timeout);
        end_reason_ = "handshake timed out";
        co_return;
    }
    if (!std::get<0>(outcome)) co_return;
    co_await command_loop();
}

// ---- connection phase ----

mysql::ServerLogin::PasswordLookup MysqlSession::password_lookup() const {
    const config::Config& cfg = worker_.shared().cfg;
    return [&cfg](std::string_view name) -> std::optional<std::string> {
        const auto* u = cfg.find_user(name);
        if (!u) return std::nullopt;
        return u->password;
    };
}

mysql::ServerLogin::CacheCheck MysqlSession::cache_check() const {
    const AuthCache& cache = worker_.shared().auth_cache;
    return [&cache](std::string_view name) { return cache.contains(name); };
}

asio::awaitable<bool> MysqlSession::handshake() {
    Shared& shared = worker_.shared();
    std::uint32_t caps = shared.server_capabilities;
    if (listener_.tls) caps |= mysql::cap::ssl;
    auto greeting = login_.make_greeting(shared.server_version, connection_id_, caps,
                                         45 /* utf8mb4_general_ci */, mysql::status::autocommit);
    greeting.mariadb_ext_capabilities = shared.server_ext_capabilities;
    out_.clear();
    mysql::write_greeting(greeting, out_);
    std::uint8_t seq = 0;
    const bool greeted = co_await send_client(out_, seq);
    if (!greeted) co_return false;

    auto frame = co_await pool::read_message(client_, cbuf_, 1 << 16);
    if (!frame) {
        end_reason_ = "closed during handshake";
        co_return false;
    }
    auto response = mysql::parse_handshake_response(
        mysql::assemble_payload(cbuf_.readable(), *frame, scratch_));
    cbuf_.consume(frame->wire_size);
    seq = frame->next_seq;
    if (response && response->is_ssl_request) {
        if (!listener_.tls) {
            end_reason_ = "SSLRequest without TLS configured";
            co_await send_error(seq, mysql::er::handshake_error, "08S01", "Bad handshake");
            co_return false;
        }
        // The client may have sent its TLS ClientHello right behind the SSLRequest.
        const std::vector<std::uint8_t> early(cbuf_.readable().begin(), cbuf_.readable().end());
        cbuf_.consume(early.size());
        const auto ec = co_await client_.start_tls_server(*listener_.tls, early);
        if (ec) {
            end_reason_ = "TLS handshake failed";
            spdlog::info("{} TLS handshake failed: {}", prefix(), ec.message());
            co_return false;
        }
        worker_.stats().tls_connections_total.add();
        frame = co_await pool::read_message(client_, cbuf_, 1 << 16);
        if (!frame) {
            end_reason_ = "closed during handshake";
            co_return false;
        }
        response = mysql::parse_handshake_response(
            mysql::assemble_payload(cbuf_.readable(), *frame, scratch_));
        cbuf_.consume(frame->wire_size);
        seq = frame->next_seq;
    }
    if (!response || response->is_ssl_request) {
        worker_.stats().count_error(ClientError::malformed_packet);
        end_reason_ = "malformed handshake response";
        co_await send_error(seq, mysql::er::handshake_error, "08S01", "Bad handshake");
        co_return false;
    }
    if (listener_.cfg->require_tls && !client_.tls()) {
        worker_.stats().count_error(ClientError::tls_required);
        end_reason_ = "TLS required";
        co_await send_error(seq, mysql::er::secure_transport_required, "HY000",
                            "Connections using insecure transport are prohibited while "
                            "--require_secure_transport=ON.");
        co_return false;
    }
    client_caps_ = (response->capabilities & caps) | mysql::cap::protocol_41;
    if (!(client_caps_ & mysql::cap::long_password))
        client_ext_caps_ = response->mariadb_ext_capabilities & shared.server_ext_capabilities;

    auto action =
        login_.on_handshake_response(*response, client_.tls(), password_lookup(), cache_check());
    const Auth authenticated = co_await authenticate(std::move(action), seq);
    if (authenticated != Auth::ok) co_return false;
    user_ = login_.user();
    user_config_ = worker_.shared().cfg.find_user(user_);
    const bool allowed = co_await count_user_or_refuse(seq);
    if (!allowed) co_return false;
    state_.start(response->database, response->charset);
    setup_pooling();
    co_return co_await connect_primary(seq);
}

asio::awaitable<MysqlSession::Auth> MysqlSession::authenticate(mysql::AuthAction action,
                                                               std::uint8_t& seq) {
    for (;;) {
        for (auto& p : action.packets) {
            const bool sent = co_await send_client(p, seq);
            if (!sent) co_return Auth::lost;
        }
        if (action.kind == mysql::AuthAction::Kind::fail) {
            worker_.stats().count_error(ClientError::auth_failed);
            end_reason_ = "authentication failed";
            spdlog::info("{} login refused: {}", prefix(), action.error.message);
            co_return Auth::refused;
        }
        if (action.kind == mysql::AuthAction::Kind::send_and_succeed) {
            worker_.shared().auth_cache.insert(login_.user());
            password_ = login_.password();
            co_return Auth::ok;
        }
        auto frame = co_await pool::read_message(client_, cbuf_, 1 << 16);
        if (!frame) {
            end_reason_ = "closed during authentication";
            co_return Auth::lost;
        }
        seq = frame->next_seq;
        action = login_.on_auth_data(mysql::assemble_payload(cbuf_.readable(), *frame, scratch_));
        cbuf_.consume(frame->wire_size);
    }
}

// ---- command phase ----

asio::awaitable<void> MysqlSession::command_loop() {
    const std::size_t max_payload = worker_.shared().cfg.max_packet_size;
    for (;;) {
        // Transaction mode: connections that hold nothing of the session go back to the
        // pool before the session waits for its client.
        if (pooling_) release_leases();
        cbuf_.shrink_to(client_buffer_size);
        // Scratch buffers that grew for one large statement do not stay large for the
        // session's life (thousands of idle sessions must stay small).
        for (auto* v : {&out_, &scratch_, &request_, &wire_, &pipeline_}) {
            if (v->capacity() > max_idle_scratch) {
                v->clear();
                v->shrink_to_fit();
            }
        }
        if (worker_.draining() && cbuf_.empty()) {
            end_reason_ = "shutdown";
            co_return;
        }
        idle_ = true;
        auto frame = co_await pool::read_message(client_, cbuf_, max_payload);
        idle_ = false;
        if (!frame) {
            const error_code ec = frame.error();
            if (ec == protocol::codec_errc::oversized) {
                worker_.stats().count_error(ClientError::oversized_packet);
                end_reason_ = "packet over max_packet_size";
                co_await send_error(1, mysql::er::net_packet_too_large, "08S01",
                                    "Got a packet bigger than 'max_allowed_packet' bytes");
            } else if (ec == protocol::codec_errc::bad_sequence) {
                worker_.stats().count_error(ClientError::bad_sequence);
                end_reason_ = "packets out of order";
                co_await send_error(1, mysql::er::net_packets_out_of_order, "08S01",
                                    "Got packets out of order");
            } else if (ec != asio::error::eof && ec != asio::error::operation_aborted) {
                end_reason_ = "client connection error";
            }
            co_return;
        }
        if (frame->first_seq != 0) {
            worker_.stats().count_error(ClientError::bad_sequence);
            end_reason_ = "malformed command packet";
            co_await send_error(static_cast<std::uint8_t>(frame->first_seq + 1),
                                mysql::er::net_packets_out_of_order, "08S01",
                                "Got packets out of order");
            co_return;
        }
        if (frame->payload_size == 0) {
            // No command byte: an unknown command to a server too, and the session goes on.
            worker_.stats().count_error(ClientError::unknown_command);
            cbuf_.consume(frame->wire_size);
            const bool sent = co_await send_error(frame->next_seq, mysql::er::unknown_com, "08S01",
                                                  "Unknown command");
            if (!sent) co_return;
            continue;
        }
        ++queries_;
        const auto started = std::chrono::steady_clock::now();
        command_started_ = started;
        worker_.stats().count_command(frame->first_byte);
        worker_.stats().bytes_from_clients.add(frame->wire_size);
        // After a pause, backend connections are checked before use: one may have been
        // closed by its server meanwhile. Busy sessions skip the check.
        check_idle_ = started - last_done_ > idle_check_after;
        sticky_before_ = std::exchange(sticky_, false);
        diagnostics_read_ = wrote_ = false;
        held_before_ = {backends_[primary_slot].conn != nullptr,
                        backends_[replica_slot].conn != nullptr};
        const bool go_on = co_await dispatch(*frame);
        if (!go_on) co_return;
        // What only this connection can answer next (SHOW WARNINGS, LAST_INSERT_ID(), the
        // error): it stays with the session through its next command, and through reads of
        // the diagnostics, which leave them as they are.
        if (pooling_)
            sticky_ = scanner_.warnings() != 0 || scanner_.insert_id() != 0 ||
                      scanner_.ended_with_error() || wrote_ ||
                      (sticky_before_ && diagnostics_read_);
        last_done_ = std::chrono::steady_clock::now();
        worker_.stats().observe_latency(last_done_ - started);
    }
}

asio::awaitable<bool> MysqlSession::dispatch(const mysql::MessageFrame& frame) {
    spdlog::debug("{} command {} ({} bytes)", prefix(), mysql::command_name(frame.first_byte),
                  frame.payload_size);
    switch (static_cast<Command>(frame.first_byte)) {
    case Command::quit:
        end_reason_ = "client quit";
        quitting_ = true; // between statements: its connections may serve others
        co_return false;
    case Command::query:
        co_return co_await on_query(frame);
    case Command::stmt_prepare:
        co_return co_await on_prepare(frame);
    case Command::stmt_execute:
        co_return co_await on_execute(frame);
    case Command::stmt_bulk_execute:
        if (client_ext_caps_ & mysql::mariadb_cap::stmt_bulk) co_return co_await on_bulk(frame);
        break; // not negotiated: an unknown command, as the server would say
    case Command::stmt_fetch:
    case Command::stmt_reset:
        co_return co_await on_stmt_fetch_or_reset(frame);
    case Command::stmt_close:
        co_await on_stmt_close(frame);
        co_return true;
    case Command::stmt_send_long_data:
        on_long_data(frame);
        co_return true;
    case Command::init_db:
        co_return co_await on_init_db(frame);
    case Command::reset_connection:
        co_return co_await on_reset_connection(frame);
    case Command::change_user:
        co_return co_await change_user(frame);
    case Command::field_list:
        co_return co_await on_primary(frame, ResponseKind::field_list);
    case Command::process_kill: {
        const auto target =
            mysql::parse_process_kill(mysql::assemble_payload(cbuf_.readable(), frame, scratch_));
        if (target && *target >= SessionRegistry::first_id) {
            cbuf_.consume(frame.wire_size);
            co_return co_await on_kill(frame, false, *target);
        }
        co_return co_await on_primary(frame, ResponseKind::single);
    }
    case Command::ping:
    case Command::statistics:
    case Command::set_option:
    case Command::refresh:
    case Command::debug:
        // Connection-level commands: the primary is the session's home.
        co_return co_await on_primary(frame, ResponseKind::single);
    default:
        break;
    }
    worker_.stats().count_error(ClientError::unknown_command);
    cbuf_.consume(frame.wire_size);
    // As a server does: the command is refused and the connection stays usable.
    co_return co_await send_error(frame.next_seq, mysql::er::unknown_com, "08S01",
                                  "Unknown command");
}

asio::awaitable<bool> MysqlSession::change_user(const mysql::MessageFrame& frame) {
    auto request = mysql::parse_change_user(
        mysql::assemble_payload(cbuf_.readable(), frame, scratch_), client_caps_);
    cbuf_.consume(frame.wire_size);
    std::uint8_t seq = frame.next_seq;
    if (!request) {
        worker_.stats().count_error(ClientError::malformed_packet);
        end_reason_ = "malformed COM_CHANGE_USER";
        co_await send_error(seq, mysql::er::malformed_packet, "HY000", "Malformed packet");
        co_return false;
    }
    auto action = login_.on_change_user(*request, client_.tls(), password_lookup(), cache_check());
    const Auth authenticated = co_await authenticate(std::move(action), seq);
    // Refused: as on a direct connection, the session goes on as the user it was.
    if (authenticated == Auth::refused) {
        end_reason_ = "client closed";
        co_return true;
    }
    if (authenticated != Auth::ok) co_return false;
    // A changed user starts from a fresh session: new backend logins give exactly that.
    login_sql_mode_gone_ = true;
    drop_slot(primary_slot);
    drop_slot(replica_slot);
    reset_session_state();
    user_ = login_.user();
    user_config_ = worker_.shared().cfg.find_user(user_);
    const bool allowed = co_await count_user_or_refuse(seq);
    if (!allowed) co_return false;
    state_.start(request->database,
                 request->charset ? static_cast<std::uint8_t>(request->charset) : std::uint8_t{45});
    setup_pooling();
    co_return co_await connect_primary(seq);
}

void MysqlSession::count_user(const config::User* user) noexcept {
    Shared& shared = worker_.shared();
    const auto index_of = [&](const config::User* u) {
        return static_cast<std::size_t>(u - shared.cfg.users.data());
    };
    if (counted_user_) shared.user_clients[index_of(counted_user_)].fetch_sub(1);
    counted_user_ = user;
    if (user) shared.user_clients[index_of(user)].fetch_add(1);
}

asio::awaitable<bool> MysqlSession::count_user_or_refuse(std::uint8_t seq) {
    count_user(user_config_);
    if (!user_config_ || user_config_->max_connections == 0) co_return true;
    const auto now = worker_.shared()
                         .user_clients[static_cast<std::size_t>(user_config_ -
                                                                worker_.shared().cfg.users.data())]
                         .load(std::memory_order_relaxed);
    if (now <= user_config_->max_connections) co_return true;
    count_user(nullptr);
    worker_.stats().count_error(ClientError::too_many_connections);
    end_reason_ = "user over its max_connections";
    const std::string message = fmt::format("User {} already has more than "
                                            "'max_user_connections' active connections",
                                            user_);
    co_await send_error(seq, 1203, "42000", message);
    co_return false;
}

// ---- writing to the client ----

asio::awaitable<bool> MysqlSession::send_client(std::vector<std::uint8_t>& payload,
                                                std::uint8_t& seq) {
    scratch_.clear();
    seq = mysql::write_packets(payload, seq, scratch_);
    auto ec = co_await client_.write_all(asio::buffer(scratch_));
    worker_.stats().bytes_to_clients.add(scratch_.size());
    co_return !ec;
}

asio::awaitable<bool> MysqlSession::send_error(std::uint8_t seq, std::uint16_t code,
                                               const char* state, std::string_view message) {
    out_.clear();
    mysql::write_err({code, state, std::string(message)}, out_);
    co_return co_await send_client(out_, seq);
}

asio::awaitable<bool> MysqlSession::send_ok(std::uint8_t seq, std::uint16_t status) {
    mysql::OkPacket ok;
    ok.status = static_cast<std::uint16_t>(status & ~mysql::status::session_state_changed);
    // With CLIENT_SESSION_TRACK the info string is length-encoded: one 0 byte when empty.
    if (client_caps_ & mysql::cap::session_track) ok.info.assign(1, '\0');
    out_.clear();
    mysql::write_ok(ok, out_);
    co_return co_await send_client(out_, seq);
}

} // namespace sluice
