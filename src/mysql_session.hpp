#pragma once

#include "server.hpp"
#include "sluice/pool/backend_conn.hpp"
#include "sluice/protocol/mysql/auth.hpp"
#include "sluice/protocol/mysql/response_scanner.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace sluice {

/// One MySQL client connection: Sluice authenticates the client, logs in to the primary with
/// the same credentials, then relays commands and streams the raw response packets back.
class MysqlSession final : public ClientSession {
public:
    MysqlSession(tcp::socket socket, Worker& worker, ListenerShared& listener);
    MysqlSession(const MysqlSession&) = delete;
    MysqlSession& operator=(const MysqlSession&) = delete;
    ~MysqlSession() override;

    /// Runs the session to its end; errors end it and are logged, never thrown.
    asio::awaitable<void> run();
    void close_if_idle() noexcept override;
    void force_close() noexcept override;

private:
    enum class Relay { ok, client_lost, backend_lost, backend_protocol };

    /// The configured users' passwords, and the caching_sha2 cache, for ServerLogin.
    protocol::mysql::ServerLogin::PasswordLookup password_lookup() const;
    protocol::mysql::ServerLogin::CacheCheck cache_check() const;
    asio::awaitable<bool> handshake();
    asio::awaitable<bool> authenticate(protocol::mysql::AuthAction action, std::uint8_t& seq);
    asio::awaitable<bool> connect_backend(const std::string& user, const std::string& password,
                                          const std::string& database, std::uint8_t charset,
                                          std::uint8_t& seq);
    asio::awaitable<void> command_loop();
    asio::awaitable<bool> forward_command(const protocol::mysql::MessageFrame& frame);
    asio::awaitable<Relay> relay(protocol::mysql::ResponseKind kind);
    asio::awaitable<Relay> pump_local_infile();
    asio::awaitable<bool> change_user(const protocol::mysql::MessageFrame& frame);

    asio::awaitable<bool> send_client(std::vector<std::uint8_t>& payload, std::uint8_t& seq);
    asio::awaitable<bool> send_error(std::uint8_t seq, std::uint16_t code, const char* state,
                                     std::string message);
    asio::awaitable<bool> send_ok(std::uint8_t seq, std::uint16_t status);
    void drop_backend() noexcept;
    std::string prefix() const;

    Worker& worker_;
    ListenerShared& listener_;
    pool::Transport client_;
    pool::ReadBuffer cbuf_;
    std::unique_ptr<pool::BackendConn> backend_;
    protocol::mysql::ResponseScanner scanner_;
    protocol::mysql::ServerLogin login_;
    std::vector<std::uint8_t> out_, scratch_;
    std::string peer_;
    std::string user_;
    std::uint32_t client_caps_ = 0;
    std::uint32_t connection_id_ = 0;
    std::uint64_t queries_ = 0;
    std::chrono::steady_clock::time_point opened_;
    bool idle_ = false;
    bool counted_ = false;
    const char* end_reason_ = "client closed";
};

} // namespace sluice
