#pragma once
// Helpers shared by the tests of the cache's Redis clients: redis-server child processes on
// free loopback ports (started with fork/exec and PR_SET_PDEATHSIG, stopped by pid), throw-
// away TLS certificates, in-process fake servers, and small coroutine utilities. Each test
// program includes this once.

#include "sluice/cache/redis_conn.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <ostream>
#include <string>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#ifndef SLUICE_SOURCE_DIR
#error "SLUICE_SOURCE_DIR must name the source tree (for tests/fixtures/make-certs.sh)"
#endif

// How Catch prints replies (and results holding them) when a check fails.
namespace sluice::cache {
inline std::ostream& operator<<(std::ostream& os, const Reply& r) {
    static constexpr const char* kinds[] = {"status", "error", "integer", "bulk", "nil", "array"};
    os << kinds[static_cast<int>(r.kind)] << ':';
    if (r.kind == ReplyKind::integer) return os << r.integer;
    if (r.kind != ReplyKind::array) return os << '"' << r.str << '"';
    os << '[';
    for (const Reply& e : r.elements)
        os << e << ' ';
    return os << ']';
}
inline std::ostream& operator<<(std::ostream& os, const std::vector<Reply>& replies) {
    os << replies.size() << " replies";
    return replies.empty() ? os : os << ", first " << replies.front();
}
} // namespace sluice::cache

namespace sluice::cache::test {

using namespace std::chrono_literals;
using tcp = boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
inline const std::string loopback = "127.0.0.1";

inline std::uint16_t free_port() {
    asio::io_context io;
    tcp::acceptor a{io, tcp::endpoint{asio::ip::make_address(loopback), 0}};
    return a.local_endpoint().port();
}

inline bool accepts_connections(std::uint16_t port) {
    asio::io_context io;
    tcp::socket s{io};
    error_code ec;
    s.connect(tcp::endpoint{asio::ip::make_address(loopback), port}, ec);
    return !ec;
}

/// Throw-away certificates from the project's own script, made once per test run.
inline const std::filesystem::path& cert_dir() {
    // Removed when the test program exits.
    struct TempDir {
        std::filesystem::path path;
        ~TempDir() {
            std::error_code ignored;
            std::filesystem::remove_all(path, ignored);
        }
    };
    static const TempDir dir = [] {
        char tmpl[] = "/tmp/sluice-redis-certs.XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        TempDir made{tmpl};
        const std::string cmd = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/make-certs.sh " +
                                tmpl + " >/dev/null";
        REQUIRE(std::system(cmd.c_str()) == 0);
        return made;
    }();
    return dir.path;
}

/// One redis-server child process, killed and reaped by the destructor.
class RedisServer {
public:
    /// `extra`: more arguments (ACL users, passwords); `tls`: a TLS port only (--port 0).
    explicit RedisServer(std::vector<std::string> extra = {}, bool tls = false)
        : extra_(std::move(extra)), tls_(tls) {
        // Another program may take the free port before the server binds it: try another.
        for (int attempt = 0; attempt < 5 && pid_ < 0; ++attempt) {
            port_ = free_port();
            try_start();
        }
        REQUIRE(pid_ > 0);
    }
    ~RedisServer() { kill(); }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    std::uint16_t port() const { return port_; }

    /// Starts it again on the same port.
    void start() {
        try_start();
        REQUIRE(pid_ > 0);
    }
    void kill() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGCONT); // a stopped process would not die of SIGKILL until continued
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        std::filesystem::remove(pidfile());
    }
    void pause() const { ::kill(pid_, SIGSTOP); }
    void resume() const { ::kill(pid_, SIGCONT); }

private:
    // Redis writes its pid file once its listening sockets are bound: a server answering on
    // the port is then known to be this one, not another program's.
    std::filesystem::path pidfile() const {
        return std::filesystem::temp_directory_path() /
               ("sluice-redis-test-" + std::to_string(::getpid()) + "-" + std::to_string(port_) +
                ".pid");
    }

    void try_start() {
        std::filesystem::remove(pidfile());
        std::vector<std::string> args{
            "/usr/bin/redis-server", "--bind", loopback,     "--save",  "",
            "--appendonly",          "no",     "--loglevel", "warning", "--pidfile",
            pidfile().string()};
        if (tls_) {
            const auto& d = cert_dir();
            args.insert(args.end(),
                        {"--port", "0", "--tls-port", std::to_string(port_), "--tls-cert-file",
                         (d / "server.pem").string(), "--tls-key-file", (d / "server.key").string(),
                         "--tls-ca-cert-file", (d / "ca.pem").string(), "--tls-auth-clients",
                         "no"});
        } else {
            args.insert(args.end(), {"--port", std::to_string(port_)});
        }
        args.insert(args.end(), extra_.begin(), extra_.end());
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        // fork and exec rather than posix_spawn, for PR_SET_PDEATHSIG: should this test
        // crash, its servers die with it instead of lingering. Only async-signal-safe calls
        // between fork and exec.
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            const int devnull = ::open("/dev/null", O_WRONLY);
            ::dup2(devnull, 1);
            ::dup2(devnull, 2);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        const auto give_up = Clock::now() + 5s;
        while (!std::filesystem::exists(pidfile()) || !accepts_connections(port_)) {
            int status = 0;
            if (::waitpid(pid, &status, WNOHANG) == pid) return; // exited: the port was taken
            REQUIRE(Clock::now() < give_up);
            std::this_thread::sleep_for(5ms);
        }
        pid_ = pid;
    }

    std::vector<std::string> extra_;
    bool tls_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

inline RedisEndpoint endpoint_for(std::uint16_t port) {
    RedisEndpoint ep;
    ep.host = loopback;
    ep.port = port;
    return ep;
}

/// One command's bytes. (Not an initializer_list: GCC 12 cannot keep the array behind a
/// braced list alive across a co_await in the same expression.)
template <class... Args> std::vector<std::uint8_t> cmd(const Args&... args) {
    std::vector<std::uint8_t> out;
    write_command(out, {std::string_view(args)...});
    return out;
}

/// One command, one reply; a failed call as its error.
inline asio::awaitable<result<Reply>> call(RedisConn& conn, std::vector<std::uint8_t> bytes) {
    auto r = co_await conn.run(bytes, 1);
    if (!r) co_return r.error();
    co_return std::move(r->front());
}

inline Reply status(std::string s) { return Reply{ReplyKind::status, std::move(s), 0, {}}; }
inline Reply bulk(std::string s) { return Reply{ReplyKind::bulk, std::move(s), 0, {}}; }
inline Reply integer(std::int64_t i) { return Reply{ReplyKind::integer, {}, i, {}}; }

inline asio::awaitable<void> sleep_for(Clock::duration d) {
    asio::steady_timer t{co_await asio::this_coro::executor, d};
    co_await t.async_wait(use_tuple);
}

template <class D> long long ms(D d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

/// Runs `body` on a fresh io_context. Every coroutine the test started, RedisConn's own
/// included, must have ended soon after `body` did (the io_context runs out of work).
inline void run_async(asio::awaitable<void> body) {
    asio::io_context io;
    std::exception_ptr failure;
    bool finished = false;
    asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) {
        failure = e;
        finished = true;
    });
    io.run_for(10s);
    REQUIRE(finished);
    if (failure) std::rethrow_exception(failure);
    CHECK(io.stopped()); // nothing left behind
}

/// A fake server on a free loopback port: accepts one connection and answers every read
/// with `answer` (nothing when it is empty) until the client closes.
struct FakeServer {
    explicit FakeServer(const asio::any_io_executor& ex)
        : acceptor(ex, tcp::endpoint{asio::ip::make_address(loopback), 0}) {}
    std::uint16_t port() const { return acceptor.local_endpoint().port(); }
    tcp::acceptor acceptor;
};

inline asio::awaitable<void> serve_once(FakeServer& server, std::string answer) {
    auto [aec, socket] = co_await server.acceptor.async_accept(use_tuple);
    server.acceptor.close();
    if (aec) co_return;
    std::array<char, 4096> buf{};
    for (;;) {
        auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), use_tuple);
        if (ec) co_return;
        if (answer.empty()) continue;
        auto [wec, w] = co_await asio::async_write(socket, asio::buffer(answer), use_tuple);
        if (wec) co_return;
    }
}

} // namespace sluice::cache::test
