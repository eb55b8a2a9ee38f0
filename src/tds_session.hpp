#pragma once
// One SQL Server client connection (issue #11). Sluice terminates the login (PRELOGIN with
// TLS as negotiated, LOGIN7 checked against [[users]]), logs in to the primary with the
// same credentials, answers the client with a login reply forged from the backend's values,
// and then routes each request by the contract of DESIGN.md in T-SQL words: transactions
// (tracked from ENVCHANGE 8/9/10, not from DONE), writes, locking hints, @@IDENTITY and
// friends, EXEC of procedures and whatever cannot be classified go to the primary; reads go
// to a secondary that is up, within the allowed lag and has the session's last write (its
// redone LSN covers the write's commit LSN; without LSNs, its lag is shorter than the time
// since the write). Temporary tables, cursors and prepared handles keep their backend.
// Responses stream back as the backend sends them; the token scanner finds their end and
// what routing needs. ATTENTION reaches the backend running the request.
//
// Not yet (see the README): pooled backend connections shared across sessions, the cache,
// and the session fuzzer for TDS; a session holds its own connections.

#include "server.hpp"
#include "sluice/protocol/tds/packet.hpp"
#include "sluice/protocol/tds/request.hpp"
#include "sluice/protocol/tds/token_scanner.hpp"
#include "sluice/router/session_state.hpp"
#include "tds_backend.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

/// A TDS session's place under the client-connection limits MySQL sessions count against
/// too: its listener's max_connections and max_client_connections from the connection's
/// start, its user's max_connections from its login; given back when the session ends.
class TdsClientLimits {
public:
    TdsClientLimits(ListenerShared& listener, Shared& shared)
        : listener_(listener), shared_(shared) {
        const auto max = listener.cfg->max_connections;
        if (listener.connections.fetch_add(1, std::memory_order_relaxed) >= max) {
            listener.connections.fetch_sub(1, std::memory_order_relaxed);
            over_ = {max, "listener " + listener.cfg->name + "'s max_connections"};
            return;
        }
        listener_counted_ = true;
        const auto total = shared.cfg.max_client_connections;
        if (shared.clients.fetch_add(1, std::memory_order_relaxed) >= total && total != 0) {
            shared.clients.fetch_sub(1, std::memory_order_relaxed);
            over_ = {total, "max_client_connections"};
            return;
        }
        clients_counted_ = true;
    }
    TdsClientLimits(const TdsClientLimits&) = delete;
    TdsClientLimits& operator=(const TdsClientLimits&) = delete;
    ~TdsClientLimits() {
        if (listener_counted_) listener_.connections.fetch_sub(1, std::memory_order_relaxed);
        if (clients_counted_) shared_.clients.fetch_sub(1, std::memory_order_relaxed);
        if (user_) shared_.user_clients[*user_].fetch_sub(1, std::memory_order_relaxed);
    }
    /// At login, `user` (of shared.cfg.users) logged in: nullopt if the session may go on
    /// (the user is counted), else the text of SQL Server's 17809 naming the limit reached.
    std::optional<std::string> admit(const config::User& user) {
        if (over_.second.empty()) {
            const auto i = static_cast<std::size_t>(&user - shared_.cfg.users.data());
            const auto now = shared_.user_clients[i].fetch_add(1, std::memory_order_relaxed) + 1;
            if (user.max_connections == 0 || now <= user.max_connections) {
                user_ = i;
                return std::nullopt;
            }
            shared_.user_clients[i].fetch_sub(1, std::memory_order_relaxed);
            over_ = {user.max_connections, "user " + user.name + "'s max_connections"};
        }
        return "Could not connect because the maximum number of '" + std::to_string(over_.first) +
               "' user connections has already been reached (" + over_.second +
               "). The connection has been closed.";
    }

private:
    ListenerShared& listener_;
    Shared& shared_;
    bool listener_counted_ = false, clients_counted_ = false;
    std::optional<std::size_t> user_;            ///< counted in Shared::user_clients
    std::pair<std::uint32_t, std::string> over_; ///< the limit reached and its name
};

class TdsSession final : public ClientSession {
public:
    TdsSession(tcp::socket socket, Worker& worker, ListenerShared& listener);
    TdsSession(const TdsSession&) = delete;
    TdsSession& operator=(const TdsSession&) = delete;
    ~TdsSession() override;

    asio::awaitable<void> run();
    void close_if_idle() noexcept override;
    void force_close() noexcept override;
    std::uint32_t id() const noexcept override { return id_; }
    void kill() noexcept override { force_close(); }
    void check_client(std::chrono::steady_clock::time_point now) noexcept override;

private:
    /// backend_lost: before any of its answer reached the client (it gets an error and the
    /// session goes on); backend_malformed: the backend broke the protocol before that (the
    /// client was told so; the session goes on); broken: in the middle of it (the session
    /// must end).
    enum class Outcome { ok, client_gone, backend_lost, backend_malformed, broken };

    asio::awaitable<bool> login();
    asio::awaitable<bool> read_client_message();
    asio::awaitable<error_code> send_client(protocol::tds::PacketType type, Bytes payload);
    /// `text`: a named string (GCC 12 destroys a temporary argument of a co_await call twice).
    asio::awaitable<void> send_error(int number, int severity, std::string_view text);
    /// A backend's answer broke off after part of it was relayed: at a clean `cut` the client
    /// gets a fatal ERROR `number` (`text`, named) and a DONE with DONE_ERROR; else nothing.
    asio::awaitable<void> end_cut_response(std::optional<protocol::tds::CleanCut> cut, int number,
                                           std::string_view text);
    asio::awaitable<Outcome> handle_request();

    /// The backend a request goes to; nullopt: the primary is unknown (failover) or the
    /// connect failed (the client got an error).
    asio::awaitable<tds::TdsBackend*> backend_for(std::size_t index);
    /// The primary's connection, through a failover: see primary_backend() in the .cpp.
    asio::awaitable<tds::TdsBackend*> primary_backend();
    /// The last failed connect's error to the client (the backend's own, or Sluice's).
    asio::awaitable<void> report_connect_failure();
    std::optional<std::size_t> choose_replica();
    /// The primary, waiting up to [routing] failover_hold while the monitor knows none.
    asio::awaitable<std::optional<std::size_t>> wait_for_primary();
    asio::awaitable<bool> bring_up_to_date(tds::TdsBackend& b);
    asio::awaitable<Outcome> forward(tds::TdsBackend& b, std::uint8_t type, std::uint8_t status,
                                     std::vector<std::uint8_t> payload);
    void learn(tds::TdsBackend& b, const protocol::tds::TokenScanner& scan);
    asio::awaitable<void> remember_write(tds::TdsBackend& primary);
    /// Transaction pooling: the connections that hold nothing of the session go back to the
    /// worker's pool (a transaction, temporary tables, cursors, prepared handles and the
    /// backend that just wrote keep theirs).
    void release_connections();
    tds::PoolKey pool_key(std::size_t index) const;
    /// Whether backend `index` is logged in to with read-only intent: every one but the
    /// primary (the monitor's, else the configured one).
    bool not_primary(std::size_t index) const;
    /// A connection of conns_ is gone (lost, closed while idle).
    void drop_connection(std::size_t index);

    tds::TdsStream client_;
    Worker& worker_;
    ListenerShared& listener_;
    std::uint32_t id_ = 0;
    TdsClientLimits limits_; ///< counted from the start; refused at login when over a limit
    bool idle_ = false;
    bool closing_ = false;

    protocol::tds::Login7 login_; ///< the client's, password included (in memory only)
    std::uint32_t tds_version_ = protocol::tds::tds_version::v7_4;
    std::size_t packet_size_ = 4096;
    /// Packets up to 4096 bytes, header included, until the login negotiates the size.
    protocol::tds::MessageAssembler assembler_{4096, 64u << 20};
    std::vector<std::uint8_t> inbuf_;
    std::vector<std::uint8_t> message_; ///< the client's current request payload
    std::uint8_t message_type_ = 0, message_status_ = 0;

    std::map<std::size_t, std::unique_ptr<tds::TdsBackend>> conns_; ///< by backend index
    router::SessionState state_;
    std::optional<std::size_t> tx_backend_; ///< where the open transaction runs
    bool implicit_transactions_ = false;
    /// Prepared and cursor handles. Backends number them per connection, so two backends
    /// can give one session the same number: the client sees Sluice's own numbers, and each
    /// names the backend and the backend's number (rewritten both ways in place).
    struct Handle {
        std::size_t backend = 0;
        std::int64_t backend_handle = 0;
        bool writes = false; ///< its statement writes (executing it is a write)
        std::string text;    ///< a writing statement's text: the tables it bumps
        /// Its result's columns: what a COLMETADATA 0xFFFF stands for in the answer to a
        /// request that uses it (a cursor fetch, an sp_execute with fNoMetaData).
        std::vector<protocol::tds::TypeInfo> columns;
    };
    std::map<std::int64_t, Handle> handles_;
    std::int32_t last_handle_ = 0;
    /// The current request's calls that hand out a handle: RPC call index, OUTPUT ordinal.
    struct HandleOut {
        std::size_t call = 0;
        std::uint16_t ordinal = 0;
        bool writes = false;
        std::string text;
    };
    std::vector<HandleOut> handle_outs_;
    /// The current request's: the handle it uses, and the handles its answer made.
    std::optional<std::int64_t> request_handle_;
    std::vector<std::int64_t> adopted_;
    /// A new handle from a backend's RETURNVALUE: Sluice's number for it.
    std::int32_t adopt_handle(std::size_t backend, std::int64_t backend_handle,
                              const HandleOut& out);
    /// Rewrites the new handles of the return values scan found since `seen` inside `held`
    /// (the unrelayed bytes from raw offset held_start); false if one lies outside it.
    bool rewrite_handles(const protocol::tds::PacketTokenScanner& scan, std::size_t& seen,
                         std::vector<std::uint8_t>& held, std::size_t held_start,
                         std::size_t backend);
    void forget_handles_of(std::size_t backend);

    // ---- the result cache (tds_cache.cpp) ----
    /// A read that a secondary would answer and a rule or hint asks to cache: its key, and
    /// false when the cache has nothing to do with it (counted as a bypass when it should).
    bool plan_read(const router::Classification& c, std::string_view text,
                   std::optional<Bytes> params);
    /// The planned read from L1 or L2: true answered, false the client is gone, nullopt a
    /// miss (the read runs, and its answer is captured).
    asio::awaitable<std::optional<bool>> serve_cached();
    /// After the read ran: its captured answer stored, if clean and proven fresh before it
    /// was sent (proven_before_send()).
    void fill_cache(const protocol::tds::TokenScanner& scan);
    /// The tables a write changes (`text`'s; all TDS tables when not known), bumped once its
    /// answer is complete and again when its transaction ends.
    void plan_write(std::optional<std::string_view> text);
    asio::awaitable<void> bump_planned(bool transaction_ended);
    std::string cache_settings() const;

    /// Right before the planned read is sent to `backend`: whether its answer will reflect
    /// the newest TDS write (cache_plan_.reflects).
    void proven_before_send(std::size_t backend);

    struct CachePlan {
        bool active = false;
        cache::Key key;
        std::chrono::milliseconds ttl{0};
        std::string digest;
        bool reflects = false; ///< proven_before_send(): the answer may be stored
    };
    CachePlan cache_plan_;
    std::vector<std::uint8_t> capture_; ///< the raw answer of the planned read
    bool capture_ok_ = false;
    std::vector<cache::TableState*> bump_, tx_written_;
    /// The last bytes of a write's answer, held until its tables are bumped and its commit
    /// LSN is known (another client must not read the old answer after this one's DONE).
    bool hold_tail_ = false;
    std::vector<std::uint8_t> tail_;
    bool tx_ended_ = false;                   ///< learn() saw the transaction commit or roll back
    std::optional<std::size_t> last_backend_; ///< ran the previous request
    bool read_only_intent_ = false;
    /// Read-your-writes: the commit LSN of the session's last write, or when it committed
    /// (no LSN outside an availability group: the time-based bound).
    std::string write_lsn_;
    std::optional<std::chrono::steady_clock::time_point> write_time_;
    tds::TdsConnectFailure last_failure_;
    bool pooling_ = false;              ///< [pool] mode transaction (user, listener)
    std::optional<std::size_t> sticky_; ///< ran the last write: kept for @@IDENTITY & co.
    std::map<std::size_t, bool> pooled_;
    std::chrono::steady_clock::time_point last_done_{}; ///< conns_ entries lent by the pool
};

} // namespace sluice
