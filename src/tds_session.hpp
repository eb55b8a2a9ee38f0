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
#include "sluice/router/session_state.hpp"
#include "tds_backend.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

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
    /// session goes on); broken: in the middle of it (the session must end).
    enum class Outcome { ok, client_gone, backend_lost, broken };

    asio::awaitable<bool> login();
    asio::awaitable<bool> read_client_message();
    asio::awaitable<error_code> send_client(protocol::tds::PacketType type, Bytes payload);
    /// `text`: a named string (GCC 12 destroys a temporary argument of a co_await call twice).
    asio::awaitable<void> send_error(int number, int severity, std::string_view text);
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
    /// A connection of conns_ is gone (lost, closed while idle).
    void drop_connection(std::size_t index);

    tds::TdsStream client_;
    Worker& worker_;
    ListenerShared& listener_;
    std::uint32_t id_ = 0;
    bool idle_ = false;
    bool closing_ = false;

    protocol::tds::Login7 login_; ///< the client's, password included (in memory only)
    std::uint32_t tds_version_ = protocol::tds::tds_version::v7_4;
    std::size_t packet_size_ = 4096;
    protocol::tds::MessageAssembler assembler_{4096 + 8, 64u << 20};
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
    };
    std::map<std::int64_t, Handle> handles_;
    std::int32_t last_handle_ = 0;
    /// The current request's calls that hand out a handle: RPC call index, OUTPUT ordinal.
    struct HandleOut {
        std::size_t call = 0;
        std::uint16_t ordinal = 0;
        bool writes = false;
    };
    std::vector<HandleOut> handle_outs_;
    /// A new handle from a backend's RETURNVALUE: Sluice's number for it.
    std::int32_t adopt_handle(std::size_t backend, std::int64_t backend_handle, bool writes);
    /// Rewrites the new handles of the return values scan found since `seen` inside `held`
    /// (the unrelayed bytes from raw offset held_start); false if one lies outside it.
    bool rewrite_handles(const protocol::tds::PacketTokenScanner& scan, std::size_t& seen,
                         std::vector<std::uint8_t>& held, std::size_t held_start,
                         std::size_t backend);
    void forget_handles_of(std::size_t backend);
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
