#include "mysql_session.hpp"

#include "sluice/pool/error.hpp"
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
constexpr std::size_t client_buffer_size = std::size_t{16} * 1024;
constexpr std::size_t backend_buffer_size = std::size_t{64} * 1024;
constexpr std::size_t max_idle_scratch = std::size_t{256} * 1024;
constexpr auto idle_check_after = std::chrono::milliseconds(250);
// Capabilities whose value changes the bytes of a response: client and backend must agree
// on them for raw packets to pass through unchanged.
constexpr std::uint32_t response_shaping_caps =
    mysql::cap::deprecate_eof | mysql::cap::multi_results | mysql::cap::ps_multi_results |
    mysql::cap::session_track | mysql::cap::local_files | mysql::cap::found_rows |
    mysql::cap::multi_statements;

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
    drop_slot(primary_slot);
    drop_slot(replica_slot);
    client_.close();
    if (counted_) listener_.connections.fetch_sub(1, std::memory_order_relaxed);
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
    SessionRegistry::Threads t;
    t.worker = &worker_;
    if (const auto& p = backends_[primary_slot].conn) t.primary = p->greeting().connection_id;
    if (const auto& r = backends_[replica_slot].conn) {
        t.replica = r->greeting().connection_id;
        t.replica_index = backends_[replica_slot].index;
    }
    worker_.shared().sessions.set(connection_id_, t);
}

bool MysqlSession::unusable(Backend& b) noexcept {
    // Only after a pause: a busy session's connections were just used (one syscall saved per
    // statement on the hot path).
    return b.broken ||
           (check_idle_ && (!b.conn->buffer().empty() || b.conn->transport().peer_gone()));
}

void MysqlSession::drop_slot(Slot slot) noexcept {
    Backend& b = backends_[slot];
    b.broken = false;
    if (b.conn) {
        b.conn->close();
        b.conn.reset();
    }
    b.gtid_seen.clear();
}

bool MysqlSession::Backend::in_trans() const noexcept {
    if (!conn) return false;
    const auto st = conn->status();
    return (st & mysql::status::in_trans) || !(st & mysql::status::autocommit);
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
    database_ = response->database;
    charset_ = response->charset;
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

asio::awaitable<std::pair<std::unique_ptr<pool::BackendConn>, pool::ConnectFailure>>
MysqlSession::open_backend(std::size_t index, bool track_gtid) {
    Shared& shared = worker_.shared();
    if (closed_) {
        // Being closed (shutdown, KILL, client gone): no new backend work starts.
        co_return std::pair{
            std::unique_ptr<pool::BackendConn>{},
            pool::ConnectFailure{make_error_code(asio::error::operation_aborted), std::nullopt}};
    }
    mysql::BackendLogin::Options opts;
    opts.user = user_;
    opts.password = password_;
    opts.database = database_;
    opts.charset = charset_;
    opts.capabilities = client_caps_ & ~mysql::cap::ssl;
    // CLIENT_IGNORE_SPACE puts IGNORE_SPACE into the session's sql_mode at login only: a
    // server's COM_RESET_CONNECTION / COM_CHANGE_USER leaves the global sql_mode, and so do
    // the backend sessions Sluice opens after one.
    if (login_sql_mode_gone_) opts.capabilities &= ~mysql::cap::ignore_space;
    opts.mariadb_ext_capabilities = client_ext_caps_;
    // The primary reports each write's GTID in its OK packets (read-your-writes).
    if (track_gtid) opts.capabilities |= mysql::cap::session_track;
    opts.attributes = {{"_client_name", "sluice"}, {"program_name", "sluice"}};
    worker_.stats().backend_connects_total.add();
    auto outcome = co_await pool::BackendConn::connect(shared.backends[index]->endpoint,
                                                       std::move(opts), shared.cfg.connect_timeout);
    if (outcome.first &&
        (outcome.first->capabilities() & response_shaping_caps & ~mysql::cap::session_track) !=
            (client_caps_ & response_shaping_caps & ~mysql::cap::session_track)) {
        outcome.first->close();
        outcome.first.reset();
        outcome.second.ec = make_error_code(pool::pool_errc::protocol_error);
        outcome.second.server_error =
            mysql::ErrPacket{mysql::er::handshake_error, "08S01",
                             "Sluice: backend capabilities do not match the client's"};
    }
    if (!outcome.first && !outcome.second.server_error)
        worker_.stats().backend_connect_errors_total.add();
    co_return outcome;
}

asio::awaitable<bool> MysqlSession::connect_primary(std::uint8_t& seq) {
    Shared& shared = worker_.shared();
    const bool track = shared.cfg.routing.read_your_writes && !shared.replica_indexes.empty();
    auto [conn, failure] = co_await open_backend(shared.primary_index, track);
    if (!conn) {
        if (failure.server_error) {
            // The backend's own refusal (unknown database, denied access) reaches the client
            // as the backend sent it.
            end_reason_ = "backend refused login";
            const auto& e = *failure.server_error;
            co_await send_error(seq, e.code, e.sql_state.empty() ? "HY000" : e.sql_state.c_str(),
                                e.message);
            co_return false;
        }
        worker_.stats().count_error(ClientError::backend_unavailable);
        end_reason_ = "backend unavailable";
        const auto& ep = shared.primary();
        spdlog::warn("{} cannot reach backend {} ({}:{}): {}", prefix(), ep.name, ep.host, ep.port,
                     failure.ec.message());
        co_await send_error(
            seq, mysql::er::unknown_error, "08S01",
            fmt::format("Sluice cannot reach backend '{}': {}", ep.name, failure.ec.message()));
        co_return false;
    }
    const bool attached = co_await attach_primary(std::move(conn), track);
    if (!attached) {
        end_reason_ = "backend lost";
        co_await send_error(seq, mysql::er::net_read_error, "08S01",
                            "Lost connection to the primary during login");
        co_return false;
    }
    Backend& b = backends_[primary_slot];
    b.synced = state_version_;
    sql_mode_.no_backslash_escapes = (b.conn->status() & mysql::status::no_backslash_escapes) != 0;
    co_return co_await send_ok(seq, b.conn->status());
}

asio::awaitable<bool> MysqlSession::attach_primary(std::unique_ptr<pool::BackendConn> conn,
                                                   bool track) {
    Backend& b = backends_[primary_slot];
    b.conn = std::move(conn);
    b.index = worker_.shared().primary_index;
    b.synced = 0;
    b.database = database_; // named in the login
    b.generation = next_generation_++;
    b.mariadb = b.conn->greeting().server_version.find("MariaDB") != std::string::npos;
    b.tracks_gtid = false;
    const bool tracking = (b.conn->capabilities() & mysql::cap::session_track) != 0;
    b.strip_tracking = tracking && !(client_caps_ & mysql::cap::session_track);
    bool tracked = true;
    if (track && tracking) tracked = co_await track_gtids();
    // KILL of this session's id reaches its backend threads from login on, whether or not
    // it ever reads from a replica, and after COM_CHANGE_USER the new primary thread.
    if (tracked) publish_threads();
    co_return tracked;
}

asio::awaitable<void> MysqlSession::revive_primary() {
    if (closed_) co_return;
    Backend& b = backends_[primary_slot];
    if (b.conn && !unusable(b)) co_return;
    if (b.conn) {
        // Closed while the session was idle (a restart, wait_timeout), or after it refused a
        // statement: nothing of the next statement has reached it.
        primary_lost_state_ = primary_state_lost();
        spdlog::info("{} primary connection closed while idle; reconnecting", prefix());
        drop_slot(primary_slot);
    }
    // A transaction, temporary tables or locks died with the old connection: the client
    // hears about it (relay_failed) before the session goes on without them.
    if (primary_lost_state_) co_return;
    Shared& shared = worker_.shared();
    const bool track = shared.cfg.routing.read_your_writes && !shared.replica_indexes.empty();
    auto [conn, failure] = co_await open_backend(shared.primary_index, track);
    if (!conn) {
        const auto& ep = shared.primary();
        spdlog::warn("{} cannot reach backend {} ({}:{}): {}", prefix(), ep.name, ep.host, ep.port,
                     failure.ec.message());
        co_return;
    }
    const bool attached = co_await attach_primary(std::move(conn), track);
    if (!attached) drop_slot(primary_slot);
}

bool MysqlSession::primary_state_lost() const noexcept {
    const Backend& p = backends_[primary_slot];
    return p.in_trans() || temp_tables_ || lock_tables_ || user_locks_ > 0 || handlers_ > 0 ||
           unreplayable_variable_ || user_variables_hidden_;
}

asio::awaitable<bool> MysqlSession::track_gtids() {
    Backend& b = backends_[primary_slot];
    // MariaDB reports last_gtid as a tracked system variable; MySQL 8 as a GTID entry. The
    // client's own tracked variables stay as they were.
    const std::string_view set = b.mariadb
                                     ? "\x03SET session_track_system_variables = CONCAT_WS(',', "
                                       "NULLIF(@@session_track_system_variables, ''), 'last_gtid')"
                                     : "\x03SET session_track_gtids = OWN_GTID";
    auto reply = co_await exchange(primary_slot,
                                   {reinterpret_cast<const std::uint8_t*>(set.data()), set.size()},
                                   ResponseKind::query);
    if (!reply) co_return false;
    b.tracks_gtid = !reply->error;
    if (reply->error)
        spdlog::warn("{} primary does not report GTIDs ({}): a session that wrote reads from "
                     "the primary",
                     prefix(), reply->err.message);
    co_return true;
}

// ---- command phase ----

asio::awaitable<void> MysqlSession::command_loop() {
    const std::size_t max_payload = worker_.shared().cfg.max_packet_size;
    for (;;) {
        cbuf_.shrink_to(client_buffer_size);
        // Scratch buffers that grew for one large statement do not stay large for the
        // session's life (thousands of idle sessions must stay small).
        for (auto* v : {&out_, &scratch_, &request_, &wire_}) {
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
        const bool go_on = co_await dispatch(*frame);
        if (!go_on) co_return;
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
        const auto payload = mysql::assemble_payload(cbuf_.readable(), frame, scratch_);
        if (payload.size() >= 5) {
            const std::uint32_t target =
                std::uint32_t{payload[1]} | (std::uint32_t{payload[2]} << 8) |
                (std::uint32_t{payload[3]} << 16) | (std::uint32_t{payload[4]} << 24);
            if (target >= SessionRegistry::first_id) {
                cbuf_.consume(frame.wire_size);
                co_return co_await on_kill(frame, false, target);
            }
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

asio::awaitable<bool> MysqlSession::on_primary(const mysql::MessageFrame& frame,
                                               ResponseKind kind) {
    const Outcome outcome = co_await primary_command(frame, kind);
    co_return outcome != Outcome::end;
}

asio::awaitable<MysqlSession::Outcome>
MysqlSession::primary_command(const mysql::MessageFrame& frame, ResponseKind kind) {
    co_await sync_state(primary_slot);
    const Relay r = co_await forward(primary_slot, cbuf_.readable().first(frame.wire_size), kind);
    cbuf_.consume(frame.wire_size);
    if (r != Relay::ok) {
        const bool go_on = co_await relay_failed(primary_slot, r, frame.next_seq);
        co_return go_on ? Outcome::failed : Outcome::end;
    }
    last_on_replica_ = false;
    co_return Outcome::answered;
}

asio::awaitable<MysqlSession::Relay>
MysqlSession::forward(Slot slot, std::span<const std::uint8_t> request, ResponseKind kind) {
    relayed_ = 0;
    scanner_.start(kind, (client_caps_ & mysql::cap::deprecate_eof) != 0);
    if (!backends_[slot].conn) co_return Relay::backend_lost; // failed during state replay
    pool::BackendConn& b = *backends_[slot].conn;
    const auto ec = co_await b.transport().write_all(asio::buffer(request.data(), request.size()));
    if (ec) {
        // The server may have refused the statement and closed the connection before taking
        // all of it (1153: more than its max_allowed_packet): its ERR is the answer. The
        // connection is replaced before the session's next statement.
        backends_[slot].broken = true;
        // A replica's refusal is not relayed: the primary gets the statement instead.
        if (slot != primary_slot) co_return Relay::backend_lost;
        const Relay r = co_await relay(slot);
        const bool refused = r == Relay::ok && scanner_.ended_with_error();
        co_return refused ? Relay::ok : Relay::backend_lost;
    }
    co_return co_await relay(slot);
}

asio::awaitable<bool> MysqlSession::relay_failed(Slot slot, Relay r, std::uint8_t reply_seq) {
    const auto& name = worker_.shared().backends[backends_[slot].index]->endpoint.name;
    switch (r) {
    case Relay::ok:
        co_return true;
    case Relay::client_lost:
        end_reason_ = "client gone mid-result";
        co_return false;
    case Relay::client_protocol:
        // The backend is in the middle of the exchange the client broke: closing its
        // connection aborts the statement there.
        drop_slot(slot);
        co_return false;
    case Relay::backend_lost:
    case Relay::backend_protocol: {
        worker_.stats().count_error(ClientError::backend_lost);
        // Asked before the connection is dropped: its status says whether a transaction
        // was open.
        const bool state_lost =
            slot == primary_slot && (primary_lost_state_ || primary_state_lost());
        if (r == Relay::backend_protocol)
            spdlog::warn("{} backend {} sent bytes that are not valid MySQL protocol", prefix(),
                         name);
        if (slot == replica_slot)
            replica_failed("connection lost", false);
        else
            drop_slot(slot);
        end_reason_ =
            r == Relay::backend_lost ? "backend lost mid-query" : "backend protocol error";
        if (relayed_ != 0 || r != Relay::backend_lost) co_return false; // the stream is broken
        if (state_lost) {
            // What the session held on the primary is gone: it says so, and goes on without.
            primary_lost_state_ = false;
            const bool sent = co_await send_error(
                reply_seq, mysql::er::net_read_error, "08S01",
                fmt::format("Lost connection to backend '{}': the session's open transaction, "
                            "temporary tables, locks and user variables there are gone",
                            name));
            forget_primary_state();
            co_return sent;
        }
        const bool sent =
            co_await send_error(reply_seq, mysql::er::net_read_error, "08S01",
                                fmt::format("Lost connection to backend '{}' during query", name));
        // Nothing reached the client: the next statement gets a new connection.
        const bool go_on = sent && slot == primary_slot;
        co_return go_on;
    }
    }
    co_return false;
}

asio::awaitable<MysqlSession::Relay> MysqlSession::relay(Slot slot) {
    Backend& backend = backends_[slot];
    pool::ReadBuffer& bbuf = backend.conn->buffer();
    pool::Transport& transport = backend.conn->transport();
    // The primary's OKs are read for the GTID of each write, and rewritten for a client that
    // did not ask for session tracking: Sluice walks its responses packet by packet. Other
    // responses stream as they come.
    const bool inspect = backend.tracks_gtid || backend.strip_tracking;
    bool need_more = bbuf.empty();
    std::size_t want = 4096;
    for (;;) {
        if (need_more) {
            auto space = bbuf.prepare(want);
            auto [ec, n] = co_await transport.read_some(asio::buffer(space.data(), space.size()));
            if (ec) co_return Relay::backend_lost;
            bbuf.commit(n);
            need_more = false;
        }
        const auto chunk = bbuf.readable();
        std::size_t used = 0;
        bool rewritten = false;
        if (!inspect) {
            auto n = scanner_.feed(chunk);
            if (!n) co_return Relay::backend_protocol;
            used = *n;
        } else {
            out_.clear();
            while (scanner_.state() == mysql::ResponseScanner::State::running &&
                   chunk.size() - used >= 4) {
                const std::size_t len = std::size_t{chunk[used]} |
                                        (std::size_t{chunk[used + 1]} << 8) |
                                        (std::size_t{chunk[used + 2]} << 16);
                if (chunk.size() - used - 4 < len) {
                    want = 4 + len - (chunk.size() - used);
                    break;
                }
                const auto packet = chunk.subspan(used, 4 + len);
                auto n = scanner_.feed(packet);
                if (!n) co_return Relay::backend_protocol;
                if (*n != packet.size()) co_return Relay::backend_protocol;
                bool replaced = false;
                if (scanner_.last_packet_ok()) {
                    auto ok = mysql::parse_tracked_ok(packet.subspan(4));
                    if (ok && backend.tracks_gtid && !ok->state.empty()) {
                        auto gtid = mysql::tracked_gtid(ok->state);
                        if (!gtid.empty()) last_gtid_ = std::move(gtid);
                    }
                    if (ok && backend.strip_tracking) {
                        if (!rewritten) {
                            out_.assign(chunk.begin(), chunk.begin() + static_cast<long>(used));
                            rewritten = true;
                        }
                        scratch_.clear();
                        mysql::write_untracked_ok(ok->ok, scratch_);
                        mysql::write_packets(scratch_, packet[3], out_); // same sequence id
                        replaced = true;
                    }
                }
                if (rewritten && !replaced) out_.insert(out_.end(), packet.begin(), packet.end());
                used += packet.size();
            }
            if (used == 0) {
                need_more = true;
                continue;
            }
            want = 4096;
        }
        // Result packets go to the client as they arrive, one write per read.
        const std::span<const std::uint8_t> send =
            rewritten ? std::span<const std::uint8_t>(out_) : chunk.first(used);
        const auto ec = co_await client_.write_all(asio::buffer(send.data(), send.size()));
        if (ec) co_return Relay::client_lost;
        relayed_ += send.size();
        worker_.stats().bytes_to_clients.add(send.size());
        bbuf.consume(used);
        switch (scanner_.state()) {
        case mysql::ResponseScanner::State::running:
            need_more = bbuf.empty();
            break;
        case mysql::ResponseScanner::State::done:
            // Nothing may follow a complete response until the next command.
            if (!bbuf.empty()) co_return Relay::backend_protocol;
            // An ERR carries no status flags: the backend's last known status stands.
            if (!scanner_.ended_with_error() && scanner_.has_status())
                backend.conn->set_status(scanner_.last_status());
            bbuf.shrink_to(backend_buffer_size);
            co_return Relay::ok;
        case mysql::ResponseScanner::State::local_infile: {
            const Relay r = co_await pump_local_infile(slot);
            if (r != Relay::ok) co_return r;
            scanner_.resume();
            need_more = bbuf.empty();
            break;
        }
        }
    }
}

asio::awaitable<MysqlSession::Relay> MysqlSession::pump_local_infile(Slot slot) {
    // The client sends the file as packets and ends it with an empty one; all go to the
    // backend unchanged. Their sequence ids continue the server's request: a packet out of
    // order gets the server's own answer (1156) from Sluice, before it reaches the backend,
    // which would answer it and then wait for the rest of the file.
    pool::Transport& backend = backends_[slot].conn->transport();
    const mysql::PacketSplitter splitter{mysql::max_packet_payload};
    auto seq = static_cast<std::uint8_t>(scanner_.last_seq() + 1);
    for (;;) {
        std::size_t pos = 0;
        bool finished = false;
        bool out_of_order = false;
        for (;;) {
            auto p = splitter.next(cbuf_.readable().subspan(pos));
            if (!p || !*p) break;
            if ((*p)->seq != seq) {
                out_of_order = true;
                break;
            }
            ++seq;
            pos += (*p)->wire_size();
            if ((*p)->payload.empty()) {
                finished = true;
                break;
            }
        }
        if (pos > 0) {
            const auto bytes = cbuf_.readable().first(pos);
            const auto wec = co_await backend.write_all(asio::buffer(bytes.data(), bytes.size()));
            if (wec) co_return Relay::backend_lost;
            worker_.stats().bytes_from_clients.add(pos);
            cbuf_.consume(pos);
        }
        if (finished) co_return Relay::ok;
        if (out_of_order) {
            worker_.stats().count_error(ClientError::malformed_packet);
            end_reason_ = "LOCAL INFILE data out of order";
            co_await send_error(seq, mysql::er::net_packets_out_of_order, "08S01",
                                "Got packets out of order");
            co_return Relay::client_protocol;
        }
        auto space = cbuf_.prepare(4096);
        auto [ec, n] = co_await client_.read_some(asio::buffer(space.data(), space.size()));
        if (ec) co_return Relay::client_lost;
        cbuf_.commit(n);
    }
}

asio::awaitable<std::optional<MysqlSession::Reply>>
MysqlSession::exchange(Slot slot, std::span<const std::uint8_t> payload, ResponseKind kind) {
    Backend& backend = backends_[slot];
    if (!backend.conn) co_return std::nullopt;
    pool::BackendConn& conn = *backend.conn;
    scratch_.clear();
    mysql::write_packets(payload, 0, scratch_);
    const auto ec = co_await conn.transport().write_all(asio::buffer(scratch_));
    if (ec) {
        drop_slot(slot);
        co_return std::nullopt;
    }
    // Sluice's own commands get whole packets; their responses are small.
    const bool deprecate_eof = (conn.capabilities() & mysql::cap::deprecate_eof) != 0;
    scanner_.start(kind, deprecate_eof);
    Reply reply;
    while (scanner_.state() != mysql::ResponseScanner::State::done) {
        auto frame = co_await pool::read_message(conn.transport(), conn.buffer(),
                                                 mysql::max_packet_payload * 4);
        if (!frame || scanner_.state() == mysql::ResponseScanner::State::local_infile) {
            drop_slot(slot);
            co_return std::nullopt;
        }
        auto used = scanner_.feed(conn.buffer().readable().first(frame->wire_size));
        if (!used || *used != frame->wire_size) {
            drop_slot(slot);
            co_return std::nullopt;
        }
        auto bytes = mysql::assemble_payload(conn.buffer().readable(), *frame, out_);
        reply.packets.emplace_back(bytes.begin(), bytes.end());
        if (scanner_.last_packet_ok() && backend.tracks_gtid) {
            auto ok = mysql::parse_tracked_ok(bytes);
            if (ok && !ok->state.empty()) {
                auto gtid = mysql::tracked_gtid(ok->state);
                if (!gtid.empty()) last_gtid_ = std::move(gtid);
            }
        }
        conn.buffer().consume(frame->wire_size);
    }
    reply.error = scanner_.ended_with_error();
    if (reply.error) {
        if (auto err = mysql::parse_err(reply.packets.back())) reply.err = std::move(*err);
    } else if (scanner_.has_status()) {
        conn.set_status(scanner_.last_status());
    }
    co_return reply;
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
    database_ = request->database;
    charset_ = request->charset ? static_cast<std::uint8_t>(request->charset) : std::uint8_t{45};
    co_return co_await connect_primary(seq);
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
                                               const char* state, std::string message) {
    out_.clear();
    mysql::write_err({code, state, std::move(message)}, out_);
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
