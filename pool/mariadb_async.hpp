#pragma once
// MariaDB Connector/C (libmariadb) driven by Asio: its non-blocking API (MYSQL_OPT_NONBLOCK,
// mysql_*_start / mysql_*_cont) waits on the connection's socket through the io_context, so
// one thread runs many connections and a server that hangs holds only its own. Private to
// pool/ (the monitor's probes).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct st_mysql;

namespace sluice::pool::detail {

namespace asio = boost::asio;

/// Where and as whom a probe connects.
struct MariadbTarget {
    std::string host;
    std::uint16_t port = 3306;
    std::string user;
    std::string password;
    bool tls = false;
    std::string ca_file, cert_file, key_file;
    bool verify_server_cert = false;
};

/// A text result read whole: column names and rows (NULL as nullopt), or the server's error.
struct MariadbResult {
    bool ok = false;
    unsigned error_code = 0;
    std::string error; ///< the client library's or server's message
    std::vector<std::string> columns;
    std::vector<std::vector<std::optional<std::string>>> rows;
    /// The value of a column by name in the first row, if any.
    std::optional<std::string> first(std::string_view column) const;
};

class MariadbConnection {
public:
    using clock = std::chrono::steady_clock;
    explicit MariadbConnection(asio::any_io_executor ex) : ex_(std::move(ex)) {}
    MariadbConnection(const MariadbConnection&) = delete;
    MariadbConnection& operator=(const MariadbConnection&) = delete;
    ~MariadbConnection() { close(); }

    bool connected() const noexcept { return mysql_ != nullptr && connected_; }
    /// Connects (closing any previous connection); an empty string on success, else why not.
    asio::awaitable<std::string> connect(const MariadbTarget& t, clock::time_point deadline);
    /// COM_PING; false when it failed (the connection is closed then).
    asio::awaitable<bool> ping(clock::time_point deadline);
    /// Runs one statement and reads its whole result. A failure of the connection (not an
    /// error the server answered) closes it.
    asio::awaitable<MariadbResult> query(std::string_view sql, clock::time_point deadline);
    /// The server's version string (after connect).
    std::string server_info() const;
    /// The GTID the last statement's OK reported (after `SET session_track_system_variables
    /// = 'last_gtid'` on MariaDB, `session_track_gtids = OWN_GTID` on MySQL); empty: none.
    std::string tracked_gtid() const;
    void close() noexcept;

private:
    /// Waits for what libmariadb asked (`status`: MYSQL_WAIT_* bits) and calls `cont` until
    /// the operation completes (status 0); false at the deadline or on a socket error.
    template <class Cont>
    asio::awaitable<bool> drive(int status, Cont cont, clock::time_point deadline);

    asio::any_io_executor ex_;
    st_mysql* mysql_ = nullptr;
    bool connected_ = false;
    std::optional<asio::posix::stream_descriptor> socket_; ///< does not own the descriptor
};

} // namespace sluice::pool::detail
