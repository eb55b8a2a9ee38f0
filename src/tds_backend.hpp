#pragma once
// One connection from Sluice to a SQL Server backend (issue #11): PRELOGIN (TLS inside it
// when the backend is configured with tls), LOGIN7 with the client's login, the backend's
// routing ENVCHANGE followed by Sluice itself, and Sluice's own batches (replays, resets,
// the commit-LSN query) whose answers never reach the client.

#include "sluice/protocol/tds/login7.hpp"
#include "sluice/protocol/tds/token_scanner.hpp"
#include "sluice/protocol/tds/tokens.hpp"
#include "stats.hpp"
#include "tds_stream.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <variant>

namespace sluice::tds {

namespace ptds = protocol::tds;

/// Where and how to reach one SQL Server backend.
struct TdsEndpoint {
    std::string name; ///< from the config: logs and messages
    std::string host;
    std::uint16_t port = 1433;
    asio::ssl::context* tls = nullptr; ///< non-null: encrypt the whole connection
};

/// A logged-in backend connection.
struct TdsBackend {
    explicit TdsBackend(tcp::socket s) : stream(std::move(s)) {}
    TdsStream stream;
    std::size_t index = 0; ///< in [[tds_backends]]
    std::uint32_t tds_version = ptds::tds_version::v7_4;
    std::size_t packet_size = 4096;
    std::uint64_t descriptor = 0; ///< the open transaction's, from ENVCHANGE 8; 0: none
    std::uint64_t synced = 0;     ///< the session state version this connection has
    std::string database;         ///< its current database
    std::string login_database;   ///< the login's: where a reset takes it back
    std::uint32_t owner = 0;      ///< the session that used it last (pooling)
    bool reset_pending = false;   ///< the client reset its session: reset before use
    bool doomed = false;      ///< answered with a fatal error (severity >= 20): the server ends it
    ptds::LoginAck login_ack; ///< what it said at login
    std::vector<ptds::EnvChange> login_env; ///< the login reply's ENVCHANGEs
    std::vector<std::uint8_t> buf;          ///< bytes read past the end of a response
    /// Counts the connection in `stats.open` (by `index`, set first) while it lives: lent,
    /// held by a session or idle in the pool.
    void count_open(TdsStats& stats) {
        if (index < stats.open.size()) open_count.emplace(stats.open[index]);
    }

private:
    std::optional<CounterHold> open_count;
};

/// Why a connect failed: a transport or protocol error, and the backend's own ERROR when it
/// sent one (a wrong password, an unknown database): that one goes to the client.
struct TdsConnectFailure {
    std::string why;
    std::optional<ptds::ServerMessage> server_error;
    /// false: waiting for another primary would not help (Sluice's own pool is exhausted).
    bool retry = true;
};

/// Connects and logs in as `login` says (its tds_version and packet_size are asked for;
/// the backend's answer is in the result). Follows at most 4 routing ENVCHANGEs.
asio::awaitable<std::variant<std::unique_ptr<TdsBackend>, TdsConnectFailure>>
connect_tds_backend(const TdsEndpoint& ep, ptds::Login7 login, std::chrono::milliseconds timeout);

/// The outcome of a batch Sluice sent itself.
struct OwnResult {
    bool ok = false;                          ///< answered without an error
    std::string why;                          ///< transport failure or the server's message
    std::optional<std::string> first_value;   ///< the first column of the first row, as text
    std::vector<ptds::EnvChange> env_changes; ///< what it changed (database, transaction)
};

/// The text of a batch whose only work is its RESETCONNECTION bit: a comment, not nothing. A
/// TDS 7.1 batch has no ALL_HEADERS: an empty one would be a bare packet header, and one of
/// fewer than 4 bytes is malformed to dissectors that look for ALL_HEADERS' length first
/// (tshark did so with a single space).
inline constexpr std::string_view reset_text = "/**/";

/// Runs `sql` on `b` and reads the whole answer (which stays in Sluice). `reset`: with the
/// RESETCONNECTION bit, which resets the connection first.
asio::awaitable<OwnResult> run_own_batch(TdsBackend& b, std::string_view sql, bool reset = false);

/// The first column of the first row of a response payload, as text (NVARCHAR, VARCHAR or
/// integer columns); nullopt for NULL or when there is no row.
std::optional<std::string> first_text_value(Bytes payload, std::uint32_t tds_version);

} // namespace sluice::tds
