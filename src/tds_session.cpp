#include "tds_session.hpp"

#include "sluice/pool/tds_monitor.hpp"
#include "sluice/protocol/tds/prelogin.hpp"
#include "sluice/protocol/tds/text.hpp"
#include "sluice/protocol/tds/tokens.hpp"
#include "sluice/router/tsql.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <limits>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

namespace sluice {

namespace ptds = protocol::tds;
using namespace asio::experimental::awaitable_operators;
using clock = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool same_secret(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

/// What a request needs from routing, whatever its message type.
struct Need {
    bool primary = true;                ///< false: a read a secondary may serve
    bool write = false;                 ///< the session's later reads must see its effect
    std::optional<std::size_t> backend; ///< a prepared handle's backend
    router::Classification cls;         ///< of the statement text, when there is one
    bool classified = false;
};

/// A statement a secondary may answer. A batch's statements may read the catalog there; an
/// RPC's (sp_executesql, sp_prepare, sp_prepexec) go to the primary then, as before.
bool secondary_may_answer(const router::Classification& c, bool batch) noexcept {
    return c.cls == router::StatementClass::read && !c.flags.locking_read &&
           !c.flags.primary_function && !c.flags.select_into && !c.flags.runs_hidden_statements &&
           !(batch && c.flags.reads_catalog) && !c.flags.opens_handler &&
           c.hint.target != router::Hint::Target::primary;
}

/// A statement whose effect the session's later reads must see.
bool is_write(const router::Classification& c) noexcept {
    using SC = router::StatementClass;
    return c.cls == SC::write || c.cls == SC::ddl || c.cls == SC::commit || c.cls == SC::unknown ||
           c.flags.runs_hidden_statements;
}

} // namespace

TdsSession::TdsSession(tcp::socket socket, Worker& worker, ListenerShared& listener)
    : client_(std::move(socket)), worker_(worker), listener_(listener),
      id_(worker.shared().next_connection_id.fetch_add(1, std::memory_order_relaxed)),
      limits_(listener, worker.shared()) {
    worker_.add_session(this);
    worker_.stats().tds.connections_total.add();
    worker_.stats().tds.connections_active.add();
}

TdsSession::~TdsSession() {
    // Connections that hold nothing of the session serve others; the rest are closed.
    if (pooling_ && idle_ && !closing_) {
        sticky_.reset();
        release_connections();
    }
    for (auto& [i, c] : conns_) {
        c->stream.close();
        if (pooled_[i]) worker_.tds_pool().forget(i);
    }
    client_.close();
    worker_.stats().tds.connections_active.sub();
    worker_.remove_session(this);
}

void TdsSession::check_client(std::chrono::steady_clock::time_point now) noexcept {
    // Idle for a second after a write: what it left is no longer worth a connection.
    if (pooling_ && idle_ && sticky_ && !closing_ && now - last_done_ >= std::chrono::seconds(1)) {
        sticky_.reset();
        release_connections();
    }
}

void TdsSession::close_if_idle() noexcept {
    if (idle_) force_close();
}

void TdsSession::force_close() noexcept {
    closing_ = true;
    client_.close();
    for (auto& [i, c] : conns_)
        c->stream.close();
}

asio::awaitable<error_code> TdsSession::send_client(ptds::PacketType type, Bytes payload) {
    std::vector<std::uint8_t> out;
    ptds::write_message(type, 0, payload, packet_size_, 1, out);
    co_return co_await client_.write(out);
}

asio::awaitable<void> TdsSession::send_error(int number, int severity, std::string_view text) {
    ptds::ServerMessage m;
    m.number = number;
    m.state = 1;
    m.severity = static_cast<std::uint8_t>(severity);
    m.message = std::string(text);
    m.server = "sluice";
    worker_.stats().tds.count_error(tds_client_error(number));
    std::vector<std::uint8_t> payload;
    ptds::write_error_response(m, tds_version_, payload);
    const error_code ignored = co_await send_client(ptds::PacketType::tabular_result, payload);
    (void)ignored;
}

asio::awaitable<void> TdsSession::end_cut_response(std::optional<ptds::CleanCut> cut, int number,
                                                   std::string_view text) {
    // Cut inside a token (a row in two) or inside a packet, whatever came next would be read as
    // the rest of it: the client can only see the close. Else the response ends well, with an
    // error that ends the session (severity 20: the rest of the answer is lost).
    if (!cut) co_return;
    ptds::ServerMessage m;
    m.number = number;
    m.state = 1;
    m.severity = 20;
    m.message = std::string(text);
    m.server = "sluice";
    worker_.stats().tds.count_error(tds_client_error(number));
    std::vector<std::uint8_t> out;
    ptds::write_cut_end(*cut, m, tds_version_, packet_size_, out);
    const error_code ignored = co_await client_.write(out);
    (void)ignored;
}

asio::awaitable<bool> TdsSession::read_client_message() {
    for (;;) {
        if (!inbuf_.empty()) {
            auto used = assembler_.feed(inbuf_);
            if (!used) {
                spdlog::info("tds s={}: bad packet from the client: {}", id_,
                             used.error().message());
                {
                    const std::string message =
                        "A fatal error occurred while reading the input stream from "
                        "the network: " +
                        used.error().message();
                    co_await send_error(4014, 20, message);
                }
                co_return false;
            }
            inbuf_.erase(inbuf_.begin(), inbuf_.begin() + static_cast<std::ptrdiff_t>(*used));
            if (assembler_.complete()) {
                const auto m = assembler_.message();
                message_type_ = m.type;
                message_status_ = m.status;
                message_.assign(m.payload.begin(), m.payload.end());
                assembler_.reset();
                co_return true;
            }
        }
        const error_code ec = co_await client_.read_some(inbuf_);
        if (ec) co_return false;
    }
}

asio::awaitable<bool> TdsSession::login() {
    Shared& shared = worker_.shared();
    const auto& cfg = *listener_.cfg;
    // TDS 8.0 clients start with a TLS handshake (0x16); TDS 7.x with PRELOGIN (0x12).
    {
        auto [wec] = co_await client_.socket().async_wait(tcp::socket::wait_read, use_tuple);
        if (wec) co_return false;
        std::uint8_t first = 0;
        error_code pec;
        const std::size_t n =
            client_.socket().receive(asio::buffer(&first, 1), tcp::socket::message_peek, pec);
        if (pec || n == 0) co_return false;
        if (first == 0x16) {
            if (!listener_.tls) co_return false; // no certificate: nothing to offer
            const error_code hec = co_await client_.handshake_direct(*listener_.tls, true);
            if (hec) {
                spdlog::info("tds s={}: TLS (TDS 8.0) handshake failed: {}", id_,
                             client_.tls_error());
                co_return false;
            }
        }
    }
    const bool strict = client_.encrypted();
    bool got = co_await read_client_message();
    if (!got) co_return false;
    if (message_type_ == static_cast<std::uint8_t>(ptds::PacketType::prelogin)) {
        auto pre = ptds::parse_prelogin(message_);
        if (!pre) {
            {
                const std::string message = "Malformed PRELOGIN: " + pre.error().message();
                co_await send_error(4014, 20, message);
            }
            co_return false;
        }
        const ptds::ServerEncryption offer = !listener_.tls    ? ptds::ServerEncryption::not_sup
                                             : cfg.require_tls ? ptds::ServerEncryption::on
                                                               : ptds::ServerEncryption::off;
        auto decision =
            strict ? ptds::EncryptionDecision{ptds::encrypt::not_sup, ptds::EncryptionMode::none}
                   : ptds::negotiate_encryption(pre->encryption().value_or(ptds::encrypt::not_sup),
                                                offer);
        // The version a client sees before login: the backends' (SQL Server 2019 until known).
        const auto reply = ptds::make_prelogin_reply({15, 0, 2000, 0}, decision.reply);
        std::vector<std::uint8_t> payload;
        ptds::write_prelogin(reply, payload);
        const error_code wec = co_await send_client(ptds::PacketType::tabular_result, payload);
        if (wec || decision.mode == ptds::EncryptionMode::terminate) co_return false;
        if (decision.mode != ptds::EncryptionMode::none) {
            const error_code hec = co_await client_.handshake_in_prelogin(*listener_.tls, true);
            if (hec) {
                spdlog::info("tds s={}: TLS handshake failed: {}", id_, client_.tls_error());
                co_return false;
            }
        }
        got = co_await read_client_message();
        if (!got) co_return false;
        if (message_type_ != static_cast<std::uint8_t>(ptds::PacketType::login7)) {
            {
                const std::string message = "Expected LOGIN7 after PRELOGIN";
                co_await send_error(4014, 20, message);
            }
            co_return false;
        }
        if (decision.mode == ptds::EncryptionMode::login_only) client_.drop_tls();
    } else if (message_type_ != static_cast<std::uint8_t>(ptds::PacketType::login7)) {
        {
            const std::string message = "Expected PRELOGIN or LOGIN7";
            co_await send_error(4014, 20, message);
        }
        co_return false;
    } else if (cfg.require_tls && !strict) {
        {
            const std::string message = "Encryption is required to connect to this server.";
            co_await send_error(18456, 14, message);
        }
        co_return false;
    }
    auto parsed = ptds::parse_login7(message_);
    if (!parsed) {
        {
            const std::string message = "Malformed LOGIN7: " + parsed.error().message();
            co_await send_error(4014, 20, message);
        }
        co_return false;
    }
    login_ = std::move(*parsed);
    tds_version_ =
        ptds::at_least_7_4(login_.tds_version) ? ptds::tds_version::v7_4 : login_.tds_version;
    read_only_intent_ = login_.read_only_intent();
    // SQL authentication against [[users]]: the same login opens the backends.
    const config::User* user = shared.cfg.find_user(login_.user_name);
    if (user == nullptr || !same_secret(user->password, login_.password) ||
        (login_.option_flags2 & ptds::login7_flags::int_security)) {
        spdlog::info("tds s={}: login failed for user '{}'", id_, login_.user_name);
        {
            const std::string message = "Login failed for user '" + login_.user_name + "'.";
            co_await send_error(18456, 14, message);
        }
        co_return false;
    }
    if (const auto refused = limits_.admit(*user)) {
        spdlog::info("tds s={}: refused: {}", id_, *refused);
        co_await send_error(17809, 20, *refused);
        co_return false;
    }
    const std::size_t asked = login_.packet_size == 0 ? 4096 : login_.packet_size;
    packet_size_ = std::clamp<std::size_t>(asked, ptds::min_packet_size, ptds::max_packet_size);
    login_.packet_size = static_cast<std::uint32_t>(packet_size_);
    login_.feature_ext.clear(); // Sluice acknowledges no feature: none is asked of backends
    login_.option_flags3 &= static_cast<std::uint8_t>(~ptds::login7_flags::extension);
    login_.sspi.clear();
    login_.app_name = login_.app_name.empty() ? "sluice" : login_.app_name;
    config::PoolMode mode = shared.cfg.pool.mode;
    if (user->pool_mode)
        mode = *user->pool_mode;
    else if (cfg.pool_mode)
        mode = *cfg.pool_mode;
    pooling_ = mode == config::PoolMode::transaction;

    // The primary (or, for ApplicationIntent=ReadOnly, a secondary) answers the login: its
    // database check and its values shape the reply.
    std::optional<std::size_t> first;
    if (read_only_intent_) first = choose_replica();
    tds::TdsBackend* b = nullptr;
    if (first) b = co_await backend_for(*first);
    if (b == nullptr && !last_failure_.server_error) b = co_await primary_backend();
    if (b == nullptr) {
        co_await report_connect_failure();
        co_return false;
    }
    for (int attempt = 0; b->reset_pending; ++attempt) {
        // A pooled connection: reset to its login's state before its values are told. One
        // that died while idle is replaced.
        const auto r = co_await tds::run_own_batch(*b, tds::reset_text, true);
        if (r.ok) {
            b->reset_pending = false;
            break;
        }
        const std::size_t index = b->index;
        drop_connection(index);
        if (attempt == 0) b = co_await backend_for(index);
        if (attempt > 0 || b == nullptr) {
            {
                const std::string message = "Sluice could not reset a pooled connection: " + r.why;
                co_await send_error(10054, 14, message);
            }
            co_return false;
        }
    }
    state_.start(b->database, 0);
    ptds::LoginReply reply;
    reply.tds_version = b->tds_version;
    tds_version_ = b->tds_version;
    reply.database = b->database;
    reply.packet_size = static_cast<std::uint32_t>(packet_size_);
    reply.old_packet_size = static_cast<std::uint32_t>(asked);
    reply.server_name = "sluice"; // in the INFO messages: the proxy, not a backend
    reply.prog_name = b->login_ack.prog_name;
    reply.prog_version = b->login_ack.prog_version;
    for (const auto& e : b->login_env) {
        if (e.type == ptds::env_type::collation && e.new_bytes.size() == 5)
            std::copy(e.new_bytes.begin(), e.new_bytes.end(), reply.collation.begin());
        if (e.type == ptds::env_type::language) reply.language = e.new_value;
    }
    std::vector<std::uint8_t> payload;
    ptds::write_login_reply(reply, payload);
    const error_code wec = co_await send_client(ptds::PacketType::tabular_result, payload);
    if (wec) co_return false;
    // Length counts the header: the negotiated size is the largest packet (MS-TDS 2.2.3.1.3).
    assembler_.set_max_packet(packet_size_);
    spdlog::info("tds s={}: user '{}' logged in (TDS {:#x}, packet size {}{})", id_,
                 login_.user_name, tds_version_, packet_size_,
                 read_only_intent_ ? ", read-only intent" : "");
    co_return true;
}

asio::awaitable<void> TdsSession::run() {
    // The login has a deadline, as a MySQL client's handshake has.
    asio::steady_timer timer{client_.socket().get_executor(),
                             worker_.shared().cfg.client_handshake_timeout};
    auto outcome = co_await (login() || timer.async_wait(use_tuple));
    if (outcome.index() == 1) {
        worker_.stats().tds.count_error(ClientError::handshake_timeout);
        spdlog::info("tds s={}: login timed out", id_);
        co_return;
    }
    if (!std::get<0>(outcome)) co_return;
    while (!closing_) {
        idle_ = true;
        const bool got = co_await read_client_message();
        idle_ = false;
        if (!got || closing_) break;
        const Outcome o = co_await handle_request();
        if (o != Outcome::ok) break;
    }
}

std::optional<std::size_t> TdsSession::choose_replica() {
    const pool::Topology& t = worker_.tds_topology();
    const auto& routing = worker_.shared().cfg.routing;
    pool::ReplicaRequirements req;
    req.max_lag = routing.max_lag;
    req.zone = worker_.shared().cfg.zone;
    req.tiebreak = id_;
    // Read-your-writes: a secondary whose redone LSN does not cover the last write the
    // read must see (the session's; under `global` any TDS client's acknowledged write),
    // or, without LSNs, whose lag is not shorter than the time since that write.
    std::string lsn;
    std::optional<clock::time_point> when;
    switch (routing.consistency) {
    case config::Consistency::eventual:
        break;
    case config::Consistency::session:
        lsn = write_lsn_;
        when = write_time_;
        break;
    case config::Consistency::global:
    case config::Consistency::fleet: {
        const auto& acked = worker_.shared().tds_acked;
        const std::lock_guard lock(acked.mutex);
        lsn = acked.lsn;
        if (acked.at != clock::time_point{}) when = acked.at;
        if (pool::compare_lsn(write_lsn_, lsn) > 0) lsn = write_lsn_;
        if (write_time_ && (!when || *write_time_ > *when)) when = write_time_;
        break;
    }
    }
    for (std::size_t i = 0; i < t.backends.size() && i < pool::max_backends; ++i) {
        const auto& b = t.backends[i];
        bool behind = false;
        if (!lsn.empty()) {
            behind = pool::compare_lsn(b.gtid_position, lsn) < 0;
        } else if (when) {
            const auto since = clock::now() - *when;
            behind = !b.lag || *b.lag >= since;
        }
        if (behind) req.excluded |= std::uint64_t{1} << i;
    }
    const auto chosen = pool::choose_replica(t, req);
    spdlog::debug("tds s={}: replica choice: lsn '{}', excluded {:#x}, chose {} (-1: none)", id_,
                  lsn, req.excluded, chosen ? static_cast<long>(*chosen) : -1L);
    return chosen;
}

asio::awaitable<std::optional<std::size_t>> TdsSession::wait_for_primary() {
    const auto deadline = clock::now() + worker_.shared().cfg.routing.failover_hold;
    asio::steady_timer timer(client_.socket().get_executor());
    for (;;) {
        const auto primary = worker_.tds_topology().primary;
        if (primary || clock::now() >= deadline || closing_) co_return primary;
        // A failover: writes wait for the monitor to find the new primary.
        timer.expires_after(std::chrono::milliseconds(100));
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec) co_return std::nullopt;
    }
}

asio::awaitable<void> TdsSession::report_connect_failure() {
    if (last_failure_.server_error) {
        worker_.stats().tds.count_error(ClientError::backend_unavailable);
        std::vector<std::uint8_t> payload;
        ptds::write_error_response(*last_failure_.server_error, tds_version_, payload);
        const error_code ignored = co_await send_client(ptds::PacketType::tabular_result, payload);
        (void)ignored;
    } else if (last_failure_.why.empty()) {
        {
            const std::string message = "No SQL Server backend takes writes now (failover)";
            co_await send_error(983, 16, message);
        }
    } else {
        {
            const std::string message = last_failure_.why;
            co_await send_error(10054, 16, message);
        }
    }
}

asio::awaitable<tds::TdsBackend*> TdsSession::primary_backend() {
    // A primary that does not answer may be failing over: until the hold ends, wait for the
    // monitor to name a primary that does (the same one back, or a promoted secondary).
    const auto deadline = clock::now() + worker_.shared().cfg.routing.failover_hold;
    asio::steady_timer timer(client_.socket().get_executor());
    for (;;) {
        const auto primary = co_await wait_for_primary();
        if (!primary) {
            // The monitor has found no primary for the whole hold: every backend down, often
            // for a reason of their own (TLS demanded or refused, a wrong login). One connect
            // to the configured primary gives the client that reason instead of a bare
            // "failover" (and, should it answer, the request: a former primary refuses
            // writes itself with 3906).
            const auto& backends = worker_.shared().cfg.tds_backends;
            for (std::size_t i = 0; i < backends.size(); ++i) {
                if (backends[i].role != config::BackendRole::primary) continue;
                tds::TdsBackend* configured = co_await backend_for(i);
                co_return configured;
            }
            co_return nullptr;
        }
        tds::TdsBackend* b = co_await backend_for(*primary);
        if (b != nullptr || last_failure_.server_error || !last_failure_.retry ||
            clock::now() >= deadline || closing_)
            co_return b;
        timer.expires_after(std::chrono::milliseconds(100));
        auto [ec] = co_await timer.async_wait(use_tuple);
        if (ec) co_return nullptr;
    }
}

asio::awaitable<tds::TdsBackend*> TdsSession::backend_for(std::size_t index) {
    if (auto it = conns_.find(index); it != conns_.end()) {
        // Between requests a server sends nothing: readable means closed (a restart, a
        // failover). Such a connection is replaced before the request is sent, so the
        // request is not lost with it.
        auto& sock = it->second->stream.socket();
        error_code ec;
        const std::size_t waiting = sock.available(ec);
        std::uint8_t probe = 0;
        bool closed = ec.failed() || waiting > 0 || !it->second->buf.empty();
        if (!closed) {
            sock.non_blocking(true, ec);
            error_code peek;
            sock.receive(asio::buffer(&probe, 1), tcp::socket::message_peek, peek);
            sock.non_blocking(false, ec);
            closed = peek != asio::error::would_block; // eof, a reset, or bytes nobody asked for
        }
        if (!closed) co_return it->second.get();
        spdlog::info("tds s={}: the connection to {} was closed while idle: reconnecting", id_,
                     worker_.shared().tds_backends[index].name);
        if (tx_backend_ == index) tx_backend_.reset();
        drop_connection(index);
    }
    if (pooling_) {
        auto& pool = worker_.tds_pool();
        const auto key = pool_key(index);
        // A pooled connection of the same login, alive; it is reset before its first use.
        // Else a new one, within [pool] max_connections per backend, waiting up to
        // queue_timeout_ms for either.
        const auto deadline = clock::now() + worker_.shared().cfg.pool.queue_timeout;
        asio::steady_timer timer(client_.socket().get_executor());
        for (;;) {
            if (auto conn = pool.take(key, id_)) {
                auto& sock = conn->stream.socket();
                error_code ec;
                sock.non_blocking(true, ec);
                std::uint8_t probe = 0;
                error_code peek;
                sock.receive(asio::buffer(&probe, 1), tcp::socket::message_peek, peek);
                sock.non_blocking(false, ec);
                if (peek != asio::error::would_block || !conn->buf.empty()) {
                    conn->stream.close(); // closed while idle
                    pool.forget(index);
                    continue;
                }
                auto* raw = conn.get();
                conns_[index] = std::move(conn);
                pooled_[index] = true;
                co_return raw;
            }
            if (pool.reserve(index)) break;
            if (clock::now() >= deadline || closing_) {
                last_failure_ = {};
                last_failure_.retry = false;
                last_failure_.why = "Sluice's pool for " +
                                    worker_.shared().tds_backends[index].name +
                                    " is exhausted (pool max_connections)";
                co_return nullptr;
            }
            timer.expires_after(std::chrono::milliseconds(5));
            auto [ec] = co_await timer.async_wait(use_tuple);
            if (ec) co_return nullptr;
        }
    }
    Shared& shared = worker_.shared();
    if (index >= shared.tds_backends.size()) co_return nullptr;
    const auto& sb = shared.tds_backends[index];
    tds::TdsEndpoint ep{sb.name, sb.host, sb.port, sb.tls};
    ptds::Login7 login = login_;
    login.tds_version = tds_version_;
    // Secondaries that admit read-intent connections only need the flag.
    if (not_primary(index))
        login.type_flags |= ptds::login7_flags::read_only_intent;
    else if (!read_only_intent_)
        login.type_flags &= static_cast<std::uint8_t>(~ptds::login7_flags::read_only_intent);
    worker_.stats().tds.backend_connects_total.add();
    auto r = co_await tds::connect_tds_backend(ep, std::move(login), shared.cfg.connect_timeout);
    if (auto* failure = std::get_if<tds::TdsConnectFailure>(&r)) {
        worker_.stats().tds.backend_connect_errors_total.add();
        if (pooling_) worker_.tds_pool().forget(index);
        spdlog::warn("tds s={}: cannot log in to {}: {}{}", id_, sb.name, failure->why,
                     failure->server_error ? " (" + failure->server_error->message + ")" : "");
        last_failure_ = std::move(*failure);
        last_failure_.why =
            "Sluice cannot reach SQL Server backend " + sb.name + ": " + last_failure_.why;
        co_return nullptr;
    }
    auto conn = std::move(std::get<0>(r));
    conn->index = index;
    conn->count_open(worker_.stats().tds);
    conn->owner = id_;
    conn->synced = 0; // the login's state only: every change of the session is replayed
    auto* raw = conn.get();
    conns_[index] = std::move(conn);
    pooled_[index] = pooling_;
    co_return raw;
}

tds::PoolKey TdsSession::pool_key(std::size_t index) const {
    return {index,
            login_.user_name,
            login_.database,
            tds_version_,
            static_cast<std::uint32_t>(packet_size_),
            read_only_intent_ || not_primary(index)};
}

bool TdsSession::not_primary(std::size_t index) const {
    // Before the monitor names a primary (or while it finds none), the configured role says
    // which one is: a primary that refuses read-intent logins (978) would otherwise hide
    // the reason its first connect failed.
    const auto& known = worker_.tds_topology().primary;
    if (known) return *known != index;
    const auto& configured = worker_.shared().cfg.tds_backends;
    return index >= configured.size() || configured[index].role != config::BackendRole::primary;
}

void TdsSession::drop_connection(std::size_t index) {
    auto it = conns_.find(index);
    if (it == conns_.end()) return;
    it->second->stream.close();
    if (pooled_[index]) worker_.tds_pool().forget(index);
    pooled_.erase(index);
    conns_.erase(it);
    // Its handles died with it (a new connection could reuse their numbers).
    forget_handles_of(index);
}

void TdsSession::release_connections() {
    const auto primary = worker_.tds_topology().primary;
    for (auto it = conns_.begin(); it != conns_.end();) {
        const std::size_t i = it->first;
        if (it->second->doomed) {
            // The server ends a connection after a fatal error: never handed to another.
            it->second->stream.close();
            if (pooled_[i]) worker_.tds_pool().forget(i);
            pooled_.erase(i);
            it = conns_.erase(it);
            continue;
        }
        bool keep = tx_backend_ == i || it->second->descriptor != 0 || sticky_ == i || !pooled_[i];
        // Temporary tables, cursors and IMPLICIT_TRANSACTIONS live on the primary connection.
        if ((state_.pinned() || implicit_transactions_) && primary && *primary == i) keep = true;
        for (const auto& [mine, h] : handles_)
            if (h.backend == i) keep = true;
        if (keep) {
            ++it;
            continue;
        }
        worker_.tds_pool().give_back(pool_key(i), std::move(it->second));
        pooled_.erase(i);
        it = conns_.erase(it);
    }
}

asio::awaitable<bool> TdsSession::bring_up_to_date(tds::TdsBackend& b) {
    if (b.reset_pending) {
        // A pooled connection another session used, or one the client's reset did not
        // reach: reset, then the session's settings, in one batch of Sluice's own whose
        // answer (the reset acknowledgement) stays here.
        const auto plan = state_.replay_since(0, b.login_database);
        const std::string text = router::tsql::replay_batch(plan);
        const std::string_view batch = text.empty() ? tds::reset_text : std::string_view(text);
        const auto r = co_await tds::run_own_batch(b, batch, true);
        if (!r.ok) {
            spdlog::info("tds s={}: resetting a connection for the session failed: {}", id_, r.why);
            co_return false;
        }
        b.reset_pending = false;
        b.synced = state_.version();
        co_return true;
    }
    if (b.synced == state_.version()) co_return true;
    const auto plan = state_.replay_since(b.synced, b.database);
    if (!plan.empty()) {
        // Named: a temporary in a co_await expression is destroyed twice by GCC 12.
        const std::string text = router::tsql::replay_batch(plan);
        const auto r = co_await tds::run_own_batch(b, text);
        if (!r.ok) {
            spdlog::info("tds s={}: replaying the session's settings failed: {}", id_, r.why);
            co_return false;
        }
    }
    b.synced = state_.version();
    co_return true;
}

void TdsSession::learn(tds::TdsBackend& b, const ptds::TokenScanner& scan) {
    if (scan.first_error() && scan.first_error()->severity >= 20) b.doomed = true;
    for (const auto& e : scan.env_changes()) {
        switch (e.type) {
        case ptds::env_type::begin_tran:
            b.descriptor = e.descriptor();
            tx_backend_ = b.index;
            break;
        case ptds::env_type::commit_tran:
        case ptds::env_type::rollback_tran:
        case ptds::env_type::tran_ended:
            tx_ended_ = true;
            b.descriptor = 0;
            if (tx_backend_ == b.index) tx_backend_.reset();
            break;
        case ptds::env_type::database: {
            b.database = e.new_value;
            router::Classification use;
            use.cls = router::StatementClass::use;
            use.use_database = e.new_value;
            state_.apply(use);
            b.synced = state_.version();
            break;
        }
        case ptds::env_type::reset_ack:
            b.descriptor = 0;
            break;
        default:
            break;
        }
    }
}

std::int32_t TdsSession::adopt_handle(std::size_t backend, std::int64_t backend_handle,
                                      const HandleOut& out) {
    do {
        last_handle_ =
            last_handle_ == std::numeric_limits<std::int32_t>::max() ? 1 : last_handle_ + 1;
    } while (handles_.count(last_handle_) != 0);
    handles_[last_handle_] = Handle{backend, backend_handle, out.writes, out.text, {}};
    adopted_.push_back(last_handle_);
    return last_handle_;
}

bool TdsSession::rewrite_handles(const ptds::PacketTokenScanner& scan, std::size_t& seen,
                                 std::vector<std::uint8_t>& held, std::size_t held_start,
                                 std::size_t backend) {
    const auto& values = scan.tokens().return_values();
    for (; seen < values.size(); ++seen) {
        const auto& rv = values[seen];
        // 0 or NULL: the prepare failed, nothing to name.
        if (!(rv.status & ptds::param_status::by_ref) || !rv.int_value || *rv.int_value == 0 ||
            rv.value_size == 0)
            continue;
        const auto out = std::find_if(handle_outs_.begin(), handle_outs_.end(), [&](const auto& h) {
            return h.call == rv.call && h.ordinal == rv.ordinal;
        });
        if (out == handle_outs_.end()) continue;
        const auto mine = static_cast<std::uint32_t>(adopt_handle(backend, *rv.int_value, *out));
        for (std::size_t i = 0; i < rv.value_size; ++i) {
            const auto raw = scan.raw_offset_of(rv.value_offset + i);
            if (!raw || *raw < held_start || *raw - held_start >= held.size()) return false;
            held[*raw - held_start] = static_cast<std::uint8_t>(i < 4 ? mine >> (8 * i) : 0);
        }
    }
    return true;
}

void TdsSession::forget_handles_of(std::size_t backend) {
    std::erase_if(handles_, [&](const auto& h) { return h.second.backend == backend; });
}

asio::awaitable<void> TdsSession::remember_write(tds::TdsBackend& primary) {
    // The commit LSN of what the session just wrote: later reads go to secondaries that
    // have redone it. Outside an availability group there is none: the time bound decides.
    write_time_ = clock::now();
    const auto r = co_await tds::run_own_batch(primary, router::tsql::commit_lsn_query());
    write_lsn_ = r.ok && r.first_value ? *r.first_value : std::string{};
    auto& acked = worker_.shared().tds_acked;
    const std::lock_guard lock(acked.mutex);
    if (pool::compare_lsn(write_lsn_, acked.lsn) > 0) acked.lsn = write_lsn_;
    acked.at = *write_time_;
}

asio::awaitable<TdsSession::Outcome> TdsSession::forward(tds::TdsBackend& b, std::uint8_t type,
                                                         std::uint8_t status,
                                                         std::vector<std::uint8_t> payload) {
    // The transaction descriptor the client echoes is one backend's: each request carries
    // its own connection's (0 outside a transaction).
    if (type != static_cast<std::uint8_t>(ptds::PacketType::attention)) {
        auto patched = ptds::patch_transaction_descriptor(payload, b.descriptor);
        (void)patched; // a 7.1 request has no ALL_HEADERS to patch
    }
    std::vector<std::uint8_t> out;
    ptds::write_message(static_cast<ptds::PacketType>(type), status, payload, b.packet_size, 1,
                        out);
    if (cache_plan_.active) proven_before_send(b.index);
    const error_code wec = co_await b.stream.write(out);
    if (wec) co_return Outcome::backend_lost;

    ptds::PacketTokenScanner scan(std::max<std::size_t>(b.packet_size, 4096) + ptds::header_size);
    scan.start(b.tds_version);
    if (request_handle_) {
        // A fetch's rows come after COLMETADATA 0xFFFF: the columns are its open's.
        const auto it = handles_.find(*request_handle_);
        if (it != handles_.end()) scan.use_columns(it->second.columns);
    }
    bool attention_sent = false;
    bool relayed = false; // part of the answer reached the client
    // Where the relayed bytes end, when the client's stream can still be ended well there.
    std::optional<ptds::CleanCut> cut;
    std::vector<std::uint8_t> client_bytes;
    // A request that makes handles: its RETURNVALUEs are held until complete and get
    // Sluice's numbers (held: the unrelayed bytes from raw offset held_start).
    const bool rewrite = !handle_outs_.empty();
    std::vector<std::uint8_t> held;
    std::size_t held_start = 0, seen = 0;
    for (;;) {
        if (b.buf.empty()) {
            // The backend's next bytes, or the client's (an ATTENTION) while it works.
            auto r = co_await (b.stream.read_some(b.buf) ||
                               client_.socket().async_wait(tcp::socket::wait_read, use_tuple));
            if (r.index() == 1) {
                const error_code cec = co_await client_.read_some(client_bytes);
                if (cec) co_return Outcome::client_gone;
                if (client_bytes.size() >= ptds::header_size &&
                    client_bytes[0] == static_cast<std::uint8_t>(ptds::PacketType::attention) &&
                    !attention_sent) {
                    client_bytes.erase(client_bytes.begin(),
                                       client_bytes.begin() + ptds::header_size);
                    std::vector<std::uint8_t> attn;
                    ptds::write_message(ptds::PacketType::attention, 0, {}, b.packet_size, 1, attn);
                    const error_code aec = co_await b.stream.write(attn);
                    if (aec) co_return Outcome::backend_lost;
                    scan.expect_attention_ack();
                    attention_sent = true;
                }
                continue;
            }
            const error_code rec = std::get<0>(r);
            if (rec || b.buf.empty()) {
                if (!relayed) co_return Outcome::backend_lost;
                const std::string why = "The connection to SQL Server backend " +
                                        worker_.shared().tds_backends[b.index].name +
                                        " was lost in the middle of its answer";
                co_await end_cut_response(cut, 10054, why);
                co_return Outcome::broken;
            }
        }
        auto used = scan.feed(b.buf);
        if (!used) {
            // A protocol violation, not a lost connection: said as such. The connection is
            // dropped (nothing after the bad byte can be found); other sessions are untouched.
            const std::string why =
                "SQL Server backend " + worker_.shared().tds_backends[b.index].name +
                " sent a malformed response: " + used.error().message() +
                fmt::format(" (last token {:#04x}, at byte {} of its token stream)",
                            scan.tokens().token(), scan.tokens().token_offset());
            spdlog::warn("tds s={}: {}", id_, why);
            if (relayed) {
                co_await end_cut_response(cut, 50000, why);
                co_return Outcome::broken;
            }
            const std::string message =
                tx_backend_ == b.index ? why + "; the transaction is rolled back" : why;
            co_await send_error(50000, 16, message);
            co_return Outcome::backend_malformed;
        }
        const auto n = static_cast<std::ptrdiff_t>(*used);
        if (cache_plan_.active && capture_ok_) {
            // The planned read's answer, for the cache; too large (with packet headers of
            // packets as small as 512 bytes) is not cached.
            const std::size_t max = worker_.shared().cfg.cache.max_result_bytes;
            if (rewrite || capture_.size() + static_cast<std::size_t>(n) > max + max / 64 + 64) {
                capture_ok_ = false;
                capture_.clear();
            } else {
                capture_.insert(capture_.end(), b.buf.begin(), b.buf.begin() + n);
            }
        }
        // A write's last bytes wait for its bumps (handle_request sends them).
        const bool hold = hold_tail_ && scan.state() == ptds::TokenScanner::State::done;
        if (rewrite) {
            held.insert(held.end(), b.buf.begin(), b.buf.begin() + n);
            b.buf.erase(b.buf.begin(), b.buf.begin() + n);
            if (!rewrite_handles(scan, seen, held, held_start, b.index)) {
                spdlog::warn("tds s={}: a handle from backend {} could not be renumbered", id_,
                             b.index);
                co_return relayed ? Outcome::broken : Outcome::backend_lost;
            }
            if (scan.tokens().inside_return_value()) continue;
            if (hold) {
                tail_ = std::move(held);
                break;
            }
            const error_code cw = co_await client_.write(held);
            if (cw) co_return Outcome::client_gone;
            held_start += held.size();
            held.clear();
        } else if (hold) {
            tail_.assign(b.buf.begin(), b.buf.begin() + n);
            b.buf.erase(b.buf.begin(), b.buf.begin() + n);
            break;
        } else {
            const error_code cw = co_await client_.write(Bytes(b.buf.data(), *used));
            b.buf.erase(b.buf.begin(), b.buf.begin() + n);
            if (cw) co_return Outcome::client_gone;
        }
        scan.forget_packets();
        relayed = true;
        cut = scan.clean_cut();
        if (scan.state() == ptds::TokenScanner::State::done) break;
    }
    // Bytes the client sent meanwhile (after an ATTENTION) come before its next request.
    inbuf_.insert(inbuf_.begin(), client_bytes.begin(), client_bytes.end());
    learn(b, scan.tokens());
    fill_cache(scan.tokens());
    // The columns of what the handles made or used now return.
    if (!scan.tokens().columns().empty()) {
        for (const auto h : adopted_) {
            const auto it = handles_.find(h);
            if (it != handles_.end()) it->second.columns = scan.tokens().columns();
        }
        if (request_handle_) {
            const auto it = handles_.find(*request_handle_);
            if (it != handles_.end()) it->second.columns = scan.tokens().columns();
        }
    }
    last_backend_ = b.index;
    co_return Outcome::ok;
}

asio::awaitable<TdsSession::Outcome> TdsSession::handle_request() {
    using PT = ptds::PacketType;
    const auto type = static_cast<PT>(message_type_);
    if (type == PT::attention) {
        // Nothing runs: acknowledge at once.
        std::vector<std::uint8_t> payload;
        ptds::write_attention_ack(tds_version_, payload);
        const error_code ec = co_await send_client(PT::tabular_result, payload);
        co_return ec ? Outcome::client_gone : Outcome::ok;
    }
    if (type != PT::sql_batch && type != PT::rpc && type != PT::transaction_manager) {
        // Bulk load data, PRELOGIN or LOGIN7 again, SSPI, unknown types: never sent to a
        // backend (a server ends its connection over them, with the transaction on it). The
        // packets framed the message whole, so the client's stream is still in step and its
        // session intact: an error it can go on after (severity 16), not 4014's usual 20.
        const std::string message =
            fmt::format("Sluice does not support TDS messages of type {} ({}) after the "
                        "login; nothing was run",
                        message_type_, ptds::packet_type_name(message_type_));
        spdlog::info("tds s={}: {}", id_, message);
        co_await send_error(4014, 16, message);
        co_return Outcome::ok;
    }
    Need need;
    handle_outs_.clear();
    request_handle_.reset();
    adopted_.clear();
    cache_plan_.active = false;
    hold_tail_ = false;
    tail_.clear();
    bump_.clear();
    tx_ended_ = false;
    // What the cache may answer: a batch's text, or the one sp_executesql of an RPC.
    std::string cache_text;
    std::optional<Bytes> cache_params;
    std::optional<router::Classification> rpc_cls;
    const router::Classification* cache_cls = nullptr;
    sticky_.reset(); // the previous request's backend is released after this one
    const bool reset = message_status_ & (ptds::packet_status::reset_connection |
                                          ptds::packet_status::reset_connection_skip_tran);
    if (type == PT::sql_batch) {
        auto batch = ptds::parse_sql_batch(message_);
        if (!batch) {
            {
                const std::string message = "Malformed SQLBatch: " + batch.error().message();
                co_await send_error(4014, 20, message);
            }
            co_return Outcome::client_gone;
        }
        if (router::tsql::starts_bulk_load(batch->text)) {
            // Its rows follow in bulk load messages, which Sluice does not relay: refused
            // before a backend connection waits for rows that never come.
            const std::string message =
                "Sluice does not relay bulk loads (INSERT BULK, bcp, SqlBulkCopy); nothing was "
                "run. Load through a direct connection to the primary.";
            co_await send_error(4014, 16, message);
            co_return Outcome::ok;
        }
        need.cls = router::tsql::classify(batch->text);
        need.classified = true;
        if (is_write(need.cls)) plan_write(batch->text);
        cache_text = std::move(batch->text);
    } else if (type == PT::rpc) {
        auto rpc = ptds::parse_rpc(message_);
        if (!rpc) {
            {
                const std::string message =
                    "The incoming tabular data stream (TDS) remote procedure call "
                    "(RPC) protocol stream is incorrect: " +
                    rpc.error().message();
                co_await send_error(8009, 16, message);
            }
            co_return Outcome::ok;
        }
        // A batch of calls is as strong as its strongest call.
        bool all_reads = !rpc->calls.empty();
        std::vector<std::int64_t> released;
        for (std::size_t ci = 0; ci < rpc->calls.size(); ++ci) {
            const auto& call = rpc->calls[ci];
            const auto id = call.effective_proc_id();
            bool read = false, writes = false;
            if (auto text = call.statement_text()) {
                const auto c = router::tsql::classify(*text);
                // Cursors are opened on the primary.
                read = (id == ptds::proc_id::execute_sql || id == ptds::proc_id::prepare ||
                        id == ptds::proc_id::prep_exec) &&
                       secondary_may_answer(c, false);
                // As for a batch: a COMMIT in sp_executesql or sp_prepexec (tdsodbc sends
                // every statement so) ends a transaction whose commit LSN later reads must
                // wait for.
                writes = is_write(c);
                if (writes) plan_write(*text);
                if (id == ptds::proc_id::execute_sql && rpc->calls.size() == 1 &&
                    worker_.shared().cache.enabled) {
                    // Its parameters' values are part of the key: the request after
                    // ALL_HEADERS (whose transaction descriptor is 0 outside one).
                    const std::size_t headers =
                        rpc->headers && message_.size() >= 4
                            ? std::min<std::size_t>(message_.size(),
                                                    message_[0] | (message_[1] << 8) |
                                                        (message_[2] << 16) |
                                                        (std::size_t{message_[3]} << 24))
                            : 0;
                    cache_params = Bytes(message_).subspan(headers);
                    rpc_cls = c;
                    cache_cls = &*rpc_cls;
                    cache_text = std::move(*text);
                }
            } else if (auto h = call.handle()) {
                // Sluice's number: the backend that made it, and its own number there.
                const auto it = handles_.find(*h);
                if (it == handles_.end() || (need.backend && *need.backend != it->second.backend)) {
                    const bool cursor =
                        id != ptds::proc_id::execute && id != ptds::proc_id::unprepare;
                    const std::string message =
                        it == handles_.end()
                            ? (cursor ? "Could not find cursor or prepared statement with handle "
                                      : "Could not find prepared statement with handle ") +
                                  std::to_string(*h) + "."
                            : std::string("Sluice cannot run handles of two backend "
                                          "connections in one RPC batch");
                    co_await send_error(8179, 16, message);
                    co_return Outcome::ok;
                }
                need.backend = it->second.backend;
                request_handle_ = *h;
                const auto& v = call.params[0].value;
                const auto at = static_cast<std::size_t>(v.data.data() - message_.data());
                const auto backend_handle = static_cast<std::uint64_t>(it->second.backend_handle);
                for (std::size_t i = 0; i < v.data.size() && i < 8; ++i)
                    message_[at + i] = static_cast<std::uint8_t>(backend_handle >> (8 * i));
                read = id != ptds::proc_id::cursor;
                writes = id == ptds::proc_id::cursor ||
                         ((id == ptds::proc_id::execute || id == ptds::proc_id::cursor_execute) &&
                          it->second.writes);
                if (writes) {
                    plan_write(it->second.text.empty()
                                   ? std::nullopt
                                   : std::optional<std::string_view>(it->second.text));
                }
                if (id == ptds::proc_id::unprepare || id == ptds::proc_id::cursor_unprepare ||
                    id == ptds::proc_id::cursor_close)
                    released.push_back(*h);
            } else {
                // Named procedures: the primary (a procedure may write).
                writes = true;
                plan_write(std::nullopt);
            }
            for (std::uint16_t o = 0; o < 8; ++o) {
                if (call.handle_outputs() & (1u << o)) {
                    auto text = writes ? call.statement_text() : std::nullopt;
                    handle_outs_.push_back(
                        {ci, o, writes, text ? std::move(*text) : std::string()});
                }
            }
            if (!read) all_reads = false;
            if (writes) need.write = true;
        }
        for (const auto h : released)
            handles_.erase(h);
        need.primary = !all_reads;
    } else if (type == PT::transaction_manager) {
        need.primary = true;
        need.write = true;              // a commit through TM_COMMIT_XACT: later reads must see it
        plan_write(std::string_view{}); // its transaction's tables, bumped at its end
    }
    if (need.classified) {
        const auto& c = need.cls;
        need.primary = !secondary_may_answer(c, true);
        need.write = is_write(c);
        if (c.flags.reads_diagnostics && last_backend_) need.backend = last_backend_;
        cache_cls = &c;
    }
    // The result cache answers reads a secondary would answer.
    if (cache_cls != nullptr && !need.backend && !tx_backend_ && !implicit_transactions_ &&
        !state_.pinned() && !reset && (read_only_intent_ || !need.primary) &&
        plan_read(*cache_cls, cache_text, cache_params)) {
        const auto served = co_await serve_cached();
        if (served) co_return *served ? Outcome::ok : Outcome::client_gone;
    }
    // Where it runs.
    std::optional<std::size_t> target;
    if (need.backend) {
        target = need.backend;
    } else if (tx_backend_) {
        target = tx_backend_;
    } else if (!implicit_transactions_ && !state_.pinned() && !reset &&
               (read_only_intent_ || !need.primary)) {
        target = choose_replica();
    }
    last_failure_ = {};
    tds::TdsBackend* b = nullptr;
    if (target) b = co_await backend_for(*target);
    // The primary, also when a secondary or the primary did not answer (outside a
    // transaction and without a prepared handle, which live on their own backend).
    const auto primary_index = worker_.tds_topology().primary;
    const bool target_is_primary = target && primary_index && *target == *primary_index;
    if (b == nullptr && !need.backend && !tx_backend_ && !last_failure_.server_error &&
        (last_failure_.retry || !target_is_primary))
        b = co_await primary_backend();
    if (b == nullptr) {
        co_await report_connect_failure();
        co_return Outcome::ok;
    }
    target = b->index;
    spdlog::debug("tds s={}: type {} {} -> backend {}", id_, message_type_,
                  need.primary ? "primary" : "read", *target);
    if (!reset) {
        const bool from_pool = b->reset_pending;
        bool ready = co_await bring_up_to_date(*b);
        if (!ready && from_pool) {
            // A pooled connection that died while idle: the request has not been sent, so
            // another connection takes it.
            drop_connection(*target);
            b = co_await backend_for(*target);
            if (b != nullptr) ready = co_await bring_up_to_date(*b);
        }
        if (!ready) {
            drop_connection(*target);
            {
                const std::string message = "Sluice could not bring a backend connection to the "
                                            "session's state";
                co_await send_error(10054, 16, message);
            }
            co_return Outcome::ok;
        }
    } else {
        // The client resets its session: this backend with its request, the others before
        // their next use.
        state_.reset();
        handles_.clear();
        tx_backend_.reset();
        implicit_transactions_ = false;
        for (auto& [i, c] : conns_) {
            if (i != *target) c->reset_pending = true;
        }
        b->reset_pending = false;
    }
    const std::size_t index = *target;
    const auto primary_then = worker_.tds_topology().primary;
    worker_.stats().tds.count_request(index, primary_then && *primary_then == index, !need.primary);
    const CounterHold in_flight{worker_.stats().tds.outstanding[index]};
    const Outcome o = co_await forward(*b, message_type_, message_status_, std::move(message_));
    if (o == Outcome::backend_lost || o == Outcome::backend_malformed || o == Outcome::broken) {
        if (o != Outcome::backend_malformed)
            spdlog::warn("tds s={}: lost the connection to backend {}", id_, index);
        drop_connection(index);
        const bool in_tx = tx_backend_ == index;
        if (tx_backend_ == index) tx_backend_.reset();
        if (o == Outcome::broken) co_return o;
        if (o == Outcome::backend_malformed) co_return Outcome::ok; // forward() told the client
        // Nothing of the answer reached the client: it gets an error and keeps its session
        // (a failover must not drop clients); the next request finds the new primary.
        {
            const std::string message =
                in_tx ? "The connection running the transaction was lost; the "
                        "transaction is rolled back"
                      : "The backend connection was lost before it answered; the "
                        "request may or may not have run";
            co_await send_error(in_tx ? 3971 : 10054, 16, message);
        }
        co_return Outcome::ok;
    }
    if (o != Outcome::ok) co_return o;
    if (need.classified) {
        const auto applied = state_.apply(need.cls);
        if (applied.state_changed) b->synced = state_.version();
        for (const auto& ch : need.cls.session_changes) {
            if (ch.kind == router::SessionChange::Kind::autocommit)
                implicit_transactions_ = !ch.value_bool;
        }
    }
    const auto primary_now = worker_.tds_topology().primary;
    const bool on_primary = primary_now && *primary_now == index;
    if (need.write && on_primary && !tx_backend_) co_await remember_write(*b);
    if (hold_tail_) {
        // The write's tables bumped (and its commit LSN known) before its last bytes go.
        co_await bump_planned(tx_ended_);
        if (!tail_.empty()) {
            const error_code ec = co_await client_.write(tail_);
            tail_.clear();
            if (ec) co_return Outcome::client_gone;
        }
    }
    // The backend that just wrote stays for the next request (@@IDENTITY, @@ROWCOUNT); not
    // after COMMIT or ROLLBACK, which leave nothing to ask about.
    const bool ends_tx = need.classified && (need.cls.cls == router::StatementClass::commit ||
                                             need.cls.cls == router::StatementClass::rollback);
    if (need.write && !ends_tx && type != PT::transaction_manager) sticky_ = index;
    last_done_ = clock::now();
    if (pooling_) release_connections();
    co_return Outcome::ok;
}

} // namespace sluice
