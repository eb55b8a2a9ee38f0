#include "mariadb_async.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <mysql.h>
#include <sys/socket.h>

namespace sluice::pool::detail {

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using namespace asio::experimental::awaitable_operators;
} // namespace

std::optional<std::string> MariadbResult::first(std::string_view column) const {
    if (rows.empty()) return std::nullopt;
    for (std::size_t i = 0; i < columns.size() && i < rows[0].size(); ++i) {
        if (columns[i] == column) return rows[0][i];
    }
    return std::nullopt;
}

template <class Cont>
asio::awaitable<bool> MariadbConnection::drive(int status, Cont cont, clock::time_point deadline) {
    while (status != 0) {
        if (!socket_) {
            const auto fd = mysql_get_socket(mysql_);
            if (fd < 0) co_return false;
            socket_.emplace(ex_, fd);
        }
        asio::steady_timer timer{ex_, deadline};
        const auto what = (status & MYSQL_WAIT_READ) ? asio::posix::stream_descriptor::wait_read
                                                     : asio::posix::stream_descriptor::wait_write;
        if (!(status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE))) {
            // Only libmariadb's own timer: ours is the deadline.
            auto [ec] = co_await timer.async_wait(use_tuple);
            (void)ec;
            co_return false;
        }
        auto outcome =
            co_await (socket_->async_wait(what, use_tuple) || timer.async_wait(use_tuple));
        if (outcome.index() == 1) co_return false; // the deadline passed first
        const auto [ec] = std::get<0>(outcome);
        if (ec) co_return false;
        const int ready = (status & MYSQL_WAIT_READ) ? MYSQL_WAIT_READ : MYSQL_WAIT_WRITE;
        status = cont(ready);
    }
    co_return true;
}

asio::awaitable<std::string> MariadbConnection::connect(const MariadbTarget& t,
                                                        clock::time_point deadline) {
    close();
    mysql_ = mysql_init(nullptr);
    if (!mysql_) co_return std::string("out of memory");
    mysql_options(mysql_, MYSQL_OPT_NONBLOCK, nullptr);
    if (t.tls) {
        mysql_ssl_set(mysql_, t.key_file.empty() ? nullptr : t.key_file.c_str(),
                      t.cert_file.empty() ? nullptr : t.cert_file.c_str(),
                      t.ca_file.empty() ? nullptr : t.ca_file.c_str(), nullptr, nullptr);
        const my_bool verify = t.verify_server_cert ? 1 : 0;
        mysql_options(mysql_, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    }
    MYSQL* ret = nullptr;
    // Session tracking: the heartbeat's OK says which GTID it got.
    const int status =
        mysql_real_connect_start(&ret, mysql_, t.host.c_str(), t.user.c_str(), t.password.c_str(),
                                 nullptr, t.port, nullptr, CLIENT_SESSION_TRACKING);
    const bool done = co_await drive(
        status, [&](int ready) { return mysql_real_connect_cont(&ret, mysql_, ready); }, deadline);
    if (!done) {
        close();
        co_return std::string("timed out");
    }
    if (!ret) {
        std::string why = mysql_error(mysql_);
        close();
        co_return why.empty() ? std::string("connect failed") : why;
    }
    connected_ = true;
    co_return std::string();
}

asio::awaitable<bool> MariadbConnection::ping(clock::time_point deadline) {
    if (!connected()) co_return false;
    int ret = 0;
    const int status = mysql_ping_start(&ret, mysql_);
    const bool done = co_await drive(
        status, [&](int ready) { return mysql_ping_cont(&ret, mysql_, ready); }, deadline);
    if (!done || ret != 0) {
        connected_ = false;
        close();
        co_return false;
    }
    co_return true;
}

asio::awaitable<MariadbResult> MariadbConnection::query(std::string_view sql,
                                                        clock::time_point deadline) {
    MariadbResult r;
    if (!connected()) {
        r.error = "not connected";
        co_return r;
    }
    int ret = 0;
    int status = mysql_real_query_start(&ret, mysql_, sql.data(), sql.size());
    bool done = co_await drive(
        status, [&](int ready) { return mysql_real_query_cont(&ret, mysql_, ready); }, deadline);
    auto failed = [&](bool timed_out) {
        r.error_code = timed_out ? 0 : mysql_errno(mysql_);
        r.error = timed_out ? "timed out" : mysql_error(mysql_);
        // Client errors (2000-2999: lost connection, out of sync ...) leave the connection
        // unusable; a server's error leaves it ready for the next statement.
        if (timed_out || (r.error_code >= 2000 && r.error_code < 3000)) {
            connected_ = false; // given up mid-exchange: see close()
            close();
        }
    };
    if (!done || ret != 0) {
        failed(!done);
        co_return r;
    }
    MYSQL_RES* res = nullptr;
    status = mysql_store_result_start(&res, mysql_);
    done = co_await drive(
        status, [&](int ready) { return mysql_store_result_cont(&res, mysql_, ready); }, deadline);
    if (!done || (!res && mysql_field_count(mysql_) != 0)) {
        if (res) mysql_free_result(res);
        failed(!done);
        co_return r;
    }
    if (res) {
        const unsigned n = mysql_num_fields(res);
        const MYSQL_FIELD* fields = mysql_fetch_fields(res);
        for (unsigned i = 0; i < n; ++i)
            r.columns.emplace_back(fields[i].name, fields[i].name_length);
        // A stored result is in memory: fetching rows does no I/O.
        while (MYSQL_ROW row = mysql_fetch_row(res)) {
            const unsigned long* lengths = mysql_fetch_lengths(res);
            auto& out = r.rows.emplace_back();
            for (unsigned i = 0; i < n; ++i) {
                if (row[i])
                    out.emplace_back(std::string(row[i], lengths[i]));
                else
                    out.emplace_back(std::nullopt);
            }
        }
        mysql_free_result(res);
    }
    r.ok = true;
    co_return r;
}

std::string MariadbConnection::server_info() const {
    const char* info = mysql_ ? mysql_get_server_info(mysql_) : nullptr;
    return info ? info : "";
}

std::string MariadbConnection::tracked_gtid() const {
    if (!mysql_) return {};
    const char* data = nullptr;
    size_t length = 0;
    // MariaDB: pairs of name and value among the tracked system variables.
    if (mysql_session_track_get_first(mysql_, SESSION_TRACK_SYSTEM_VARIABLES, &data, &length) ==
        0) {
        bool value_next = false;
        do {
            const std::string_view item(data, length);
            if (value_next) return std::string(item);
            value_next = item == "last_gtid";
        } while (mysql_session_track_get_next(mysql_, SESSION_TRACK_SYSTEM_VARIABLES, &data,
                                              &length) == 0);
    }
    // MySQL 8: the transaction's GTID set.
    if (mysql_session_track_get_first(mysql_, SESSION_TRACK_GTIDS, &data, &length) == 0)
        return std::string(data, length);
    return {};
}

void MariadbConnection::close() noexcept {
    if (socket_) {
        // The descriptor belongs to libmariadb; a connection given up mid-exchange is shut
        // down first so that mysql_close's COM_QUIT cannot wait on it.
        const int fd = socket_->release();
        if (!connected_) ::shutdown(fd, SHUT_RDWR);
        socket_.reset();
    }
    if (mysql_) {
        mysql_close(mysql_);
        mysql_ = nullptr;
    }
    connected_ = false;
}

} // namespace sluice::pool::detail
