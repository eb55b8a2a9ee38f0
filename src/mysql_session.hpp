#pragma once

#include "cache_layer.hpp"
#include "server.hpp"
#include "sluice/pool/backend_conn.hpp"
#include "sluice/pool/conn_pool.hpp"
#include "sluice/protocol/mysql/auth.hpp"
#include "sluice/protocol/mysql/cached_result.hpp"
#include "sluice/protocol/mysql/messages.hpp"
#include "sluice/protocol/mysql/response_scanner.hpp"
#include "sluice/router/classify.hpp"
#include "sluice/router/session_state.hpp"
#include "sluice/router/statement_map.hpp"

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

/// The text after a command byte (COM_QUERY, COM_STMT_PREPARE, COM_INIT_DB); the payload
/// holds at least that byte.
inline std::string_view text_of(std::span<const std::uint8_t> payload) {
    return {reinterpret_cast<const char*>(payload.data()) + 1, payload.size() - 1};
}

/// Connects to backend `index` and logs in with `opts` (counted in the worker's metrics);
/// refused when the backend would shape responses otherwise than `client_caps` ask.
asio::awaitable<std::pair<std::unique_ptr<pool::BackendConn>, pool::ConnectFailure>>
connect_backend(Worker& worker, std::size_t index, protocol::mysql::BackendLogin::Options opts,
                std::uint32_t client_caps);

/// Opens one connection for a pool below its min_idle (ConnPool::to_open) and gives it to the
/// pool; its first borrower sets it up as a new one.
asio::awaitable<void> prewarm(Worker& worker, pool::ConnPool::Opening o);

/// A read looked up in the cache: whatever way the command ends, nothing captured leaks into
/// the session's next response and no plan outlives it.
struct CacheReadScope {
    CacheReadScope(bool& wanted, bool& active) noexcept
        : capture_wanted(wanted), plan_active(active) {}
    bool& capture_wanted;
    bool& plan_active;
    CacheReadScope(const CacheReadScope&) = delete;
    CacheReadScope& operator=(const CacheReadScope&) = delete;
    ~CacheReadScope() {
        capture_wanted = false;
        plan_active = false;
    }
};

/// One MySQL client connection. Sluice authenticates the client, logs in to the primary
/// with the same credentials, and then routes each statement: writes and everything that
/// needs the primary go there, reads to one replica connection opened on first use (issue
/// #3, DESIGN.md "Routing contract"). Session state is replayed on a backend before it runs
/// the session's next statement there; reads after a write wait for that write's GTID on the
/// replica, or go to the primary.
///
/// The decisions live in pure types (router::SessionState, router::StatementMap, the
/// router::mysql_dialect text, router::freshness); this class wires them to the sockets:
/// mysql_session.cpp (connection phase, command loop), mysql_relay.cpp (responses streamed
/// to the client), mysql_backends.cpp (backend connections, state replay, waits),
/// mysql_routing.cpp (where a statement runs), mysql_statements.cpp (prepared statements),
/// mysql_kill.cpp (KILL of a Sluice id).
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
    std::uint32_t id() const noexcept override { return connection_id_; }
    void kill() noexcept override;
    void check_client(std::chrono::steady_clock::time_point now) noexcept override;

private:
    /// How relaying a response ended. client_protocol: the client broke the exchange (its
    /// LOCAL INFILE packets out of order); it has been told, and the session ends.
    /// primary_read_only: the primary refused the statement because it is read-only (a
    /// switchover), only when the caller asked (hold_read_only_): nothing reached the client,
    /// the refusal is in held_error_.
    enum class Relay {
        ok,
        client_lost,
        client_protocol,
        backend_lost,
        backend_protocol,
        primary_read_only
    };
    /// The session's two backend connections.
    enum Slot : std::uint8_t { primary_slot = 0, replica_slot = 1 };

    struct Backend {
        std::unique_ptr<pool::BackendConn> conn;
        std::size_t index = 0;           ///< in Shared::backends
        std::uint64_t synced = 0;        ///< session-state version applied there
        std::string database;            ///< its current database
        std::string gtid_seen;           ///< replica: the session's last GTID, known applied
        std::size_t gtid_seen_index = 0; ///< ... on this backend (kept between leases)
        std::uint32_t generation = 0;    ///< which connection (prepared statement ids are per one)
        bool strip_tracking = false;     ///< OKs carry session tracking the client did not ask for
        bool tracks_gtid = false;        ///< the backend reports each write's GTID
        bool mariadb = true;             ///< MASTER_GTID_WAIT (else WAIT_FOR_EXECUTED_GTID_SET)
        bool broken = false;             ///< a write to it failed: replaced before its next use
        bool dirty = false; ///< pooled: may hold what its settings do not say (reset before reuse)
        SessionHold held;   ///< replica: counted in Shared::sessions_on
        /// The start of the last command that used it: a connection idle for a while is
        /// checked before use even when the session was busy on its other connection.
        std::chrono::steady_clock::time_point used{};
        bool in_trans() const noexcept;
    };

    using Prepared = router::PreparedStatement;
    /// Whether `ps` is prepared on the connection now in `slot`.
    bool prepared_on(const Prepared& ps, Slot slot) const noexcept {
        const Backend& b = backends_[slot];
        return b.conn && ps.prepared_on(slot, b.generation);
    }

    /// A whole response read for Sluice itself (state replay, waits, lazy prepares).
    struct Reply {
        std::vector<std::vector<std::uint8_t>> packets; ///< payloads
        bool error = false;
        protocol::mysql::ErrPacket err;
    };

    // ---- connection phase (mysql_session.cpp) ----
    protocol::mysql::ServerLogin::PasswordLookup password_lookup() const;
    protocol::mysql::ServerLogin::CacheCheck cache_check() const;
    asio::awaitable<bool> handshake();
    enum class Auth { ok, refused, lost };
    /// Runs an authentication exchange with the client to its end; `refused` after the
    /// client was sent its error.
    asio::awaitable<Auth> authenticate(protocol::mysql::AuthAction action, std::uint8_t& seq);
    asio::awaitable<bool> connect_primary(std::uint8_t& seq);
    /// Counts the session for its user (null: for none); the user's max_connections.
    void count_user(const config::User* user) noexcept;
    /// Counts the session for user_config_; false after refusing it (error 1203) for being
    /// over the user's max_connections.
    asio::awaitable<bool> count_user_or_refuse(std::uint8_t seq);
    /// Makes `conn` the session's primary connection (GTID tracking switched on when `track`);
    /// false when the connection failed meanwhile. The state is replayed before its next use.
    asio::awaitable<bool> attach_primary(std::unique_ptr<pool::BackendConn> conn, std::size_t index,
                                         bool track);
    /// A new connection to the primary the topology names now (`index`: which backend).
    /// With the monitor, while none is known or it cannot be reached (a failover), retried
    /// until `[routing] failover_hold_ms` has passed; a login refusal is final at once.
    struct PrimaryAttempt {
        std::unique_ptr<pool::BackendConn> conn;
        pool::ConnectFailure failure;
        std::size_t index = 0;
        bool tried = false; ///< a connect was attempted (else the monitor knew no primary)
        bool held = false;  ///< it waited for the failover hold
    };
    /// Why no primary connection could be opened, for the client: which backend, what failed,
    /// and that the failover hold ran out.
    std::string primary_unreachable(const PrimaryAttempt& a) const;
    /// revive_primary() found no primary: a statement for it did not run (relay_failed says so).
    bool primary_unreachable_ = false;
    std::string primary_unreachable_why_;
    asio::awaitable<PrimaryAttempt> open_primary();
    /// After the primary refused a write as read-only: waits (the failover hold) until the
    /// monitor names another primary; false when none came in time.
    asio::awaitable<bool> wait_primary_moved(std::size_t old);
    /// Before the primary serves a statement: a connection closed while the session was idle
    /// is replaced, unless it took session state with it (then the slot stays empty and the
    /// statement gets an error that says so).
    asio::awaitable<void> revive_primary();
    /// Whether the primary connection holds state a new connection cannot be given.
    bool primary_state_lost() const noexcept;
    /// After that state was lost: the session goes on without it.
    void forget_primary_state() noexcept;
    /// Switches on GTID reporting on the primary connection; false when the connection failed.
    asio::awaitable<bool> track_gtids();
    asio::awaitable<std::pair<std::unique_ptr<pool::BackendConn>, pool::ConnectFailure>>
    open_backend(std::size_t index, bool track_gtid);
    /// The login of this session's backend connections.
    protocol::mysql::BackendLogin::Options backend_login(bool track_gtid) const;

    // ---- pooling (mysql_pooling.cpp, issue #10) ----
    /// A connection to backend `index` for this session: in transaction mode borrowed from
    /// the worker's pool (an idle one, a new one in a free place, or one returned while this
    /// session queued), else opened for the session. A pool that stayed busy past
    /// queue_timeout_ms fails with error 1040.
    asio::awaitable<std::pair<std::unique_ptr<pool::BackendConn>, pool::ConnectFailure>>
    lease_backend(Slot slot, std::size_t index, bool track_gtid);
    /// After a borrowed connection went into `slot`: what it carried is taken over (its
    /// database, statements, tracking) and, when it carries another session's settings, it is
    /// reset (COM_RESET_CONNECTION) so only this session's are replayed. False: it failed.
    asio::awaitable<bool> take_over(Slot slot);
    /// After each command: connections that hold nothing of the session go back to the pool.
    /// `publish`: the registry learns the session's backend threads are gone.
    void release_leases(bool publish = true) noexcept;
    /// Whether the connection in `slot` may serve another session now.
    bool releasable(Slot slot) const noexcept;
    /// The session's settings, in the order they apply: equal texts, equal settings; empty:
    /// none.
    const std::string& state_text();
    /// Decides the pool mode and the pool keys after a login or COM_CHANGE_USER.
    void setup_pooling();
    /// The pool of connections for `slot` in `database` (only whether one is selected counts).
    const std::string& pool_key(Slot slot, std::string_view database) const;
    /// Whether the connection in `slot` is a pool's.
    bool pooled(Slot slot) const noexcept;
    /// The pool's cache key of a prepared statement on the connection in `slot`.
    const std::string& statement_key(Prepared& ps);
    asio::awaitable<bool> change_user(const protocol::mysql::MessageFrame& frame);

    // ---- command phase (mysql_session.cpp) ----
    asio::awaitable<void> command_loop();
    asio::awaitable<bool> dispatch(const protocol::mysql::MessageFrame& frame);
    /// Sends `request` (whole packets) to `slot` and streams the response to the client.
    asio::awaitable<Relay> forward(Slot slot, std::span<const std::uint8_t> request,
                                   protocol::mysql::ResponseKind kind);
    /// Streams the response to the client; `discard`: reads it to its end and drops it.
    asio::awaitable<Relay> relay(Slot slot, bool discard);
    /// How a read sent behind a consistency wait went: answered (the wait succeeded; `relay`
    /// says how the answer went), stale (the replica was not there in time: its answer was
    /// dropped, nothing reached the client), lost (the replica failed before answering).
    enum class Waited { answered, stale, lost };
    struct WaitedRead {
        Waited outcome;
        Relay relay = Relay::ok;
    };
    /// Sends MASTER_GTID_WAIT(token) and the read (`request`, whole packets: a COM_QUERY, or
    /// a COM_STMT_EXECUTE with the long data before it) to the replica in one write, and
    /// relays the read's answer (of `kind`) only if the wait succeeded.
    asio::awaitable<WaitedRead>
    forward_after_wait(std::string token, std::uint64_t version,
                       std::span<const std::uint8_t> request,
                       protocol::mysql::ResponseKind kind = protocol::mysql::ResponseKind::query);
    /// Reads a whole response for Sluice itself (after exchange() or a pipelined write).
    asio::awaitable<std::optional<Reply>> read_reply(Slot slot, protocol::mysql::ResponseKind kind);
    /// The primary reported a write's GTID to this session: its causal token, and the
    /// process-wide watermark of acknowledged writes.
    void acknowledged(std::string gtid);
    /// What a read must see: a GTID position (empty: nothing) and, under `global`, the
    /// version of the process-wide watermark it is (0 otherwise). `text` points into the
    /// session: valid until its next write or its next call of consistency_token().
    struct Causal {
        const std::string* text = nullptr;
        std::uint64_t version = 0;
    };
    /// The position a read must see under `level`.
    Causal consistency_token(router::Consistency level);
    /// Whether the session's replica is known to have applied `need`: under `global` a wait
    /// of any session or the monitor found it there (two atomic loads), else a wait of this
    /// session, or the monitor's last reading of its position.
    bool replica_has(const Causal& need) const;
    /// The level for a statement: its hint, its rule, the user's, `[routing] consistency`.
    router::Consistency consistency_for(const router::Classification& c,
                                        const router::Route& route) const noexcept;
    asio::awaitable<Relay> pump_local_infile(Slot slot);
    /// Runs one command for Sluice itself and reads its whole response; nullopt when the
    /// connection failed (the slot is dropped).
    asio::awaitable<std::optional<Reply>> exchange(Slot slot, std::span<const std::uint8_t> payload,
                                                   protocol::mysql::ResponseKind kind);
    /// exchange() of a COM_QUERY of Sluice's own SQL text (router::mysql_dialect).
    asio::awaitable<std::optional<Reply>> run_sql(Slot slot, std::string_view sql);
    /// After a relay that did not return ok: the client's error, logs, whether to go on.
    asio::awaitable<bool> relay_failed(Slot slot, Relay r, std::uint8_t reply_seq);
    /// How a command sent to the primary went: answered by it; failed (the client was told,
    /// the session goes on); or the session ends.
    enum class Outcome { answered, failed, end };
    /// A connection-level command the primary answers; whether the session goes on.
    asio::awaitable<bool> on_primary(const protocol::mysql::MessageFrame& frame,
                                     protocol::mysql::ResponseKind kind);
    asio::awaitable<Outcome> primary_command(const protocol::mysql::MessageFrame& frame,
                                             protocol::mysql::ResponseKind kind);

    // ---- routing (mysql_routing.cpp) ----
    asio::awaitable<bool> on_query(const protocol::mysql::MessageFrame& frame);
    asio::awaitable<bool> on_init_db(const protocol::mysql::MessageFrame& frame);
    asio::awaitable<bool> on_reset_connection(const protocol::mysql::MessageFrame& frame);
    asio::awaitable<bool> on_prepare(const protocol::mysql::MessageFrame& frame);
    /// Copies a statement command into request_ and finds its statement. Null when Sluice
    /// answered the client itself (malformed, unknown id), with whether the session goes on.
    asio::awaitable<std::pair<Prepared*, bool>>
    statement_of(const protocol::mysql::MessageFrame& frame, std::size_t min_size,
                 const char* handler);
    asio::awaitable<bool> on_execute(const protocol::mysql::MessageFrame& frame);
    /// COM_STMT_BULK_EXECUTE (MariaDB): a batch of executions of one statement, a write on
    /// the primary.
    asio::awaitable<bool> on_bulk(const protocol::mysql::MessageFrame& frame);
    /// A statement the primary could not prepare for an execute: its refusal (kept in
    /// last_error_) goes to the client, or the session ends with the lost connection.
    asio::awaitable<bool> not_prepared(const protocol::mysql::MessageFrame& frame);
    asio::awaitable<bool> on_stmt_fetch_or_reset(const protocol::mysql::MessageFrame& frame);
    asio::awaitable<void> on_stmt_close(const protocol::mysql::MessageFrame& frame);
    /// KILL [QUERY] of a Sluice connection id: the target session's backend threads.
    asio::awaitable<bool> on_kill(const protocol::mysql::MessageFrame& frame, bool query,
                                  std::uint64_t target);
    asio::awaitable<void> kill_on_replica(std::size_t index, std::string sql);
    /// Tells the registry which backend threads serve this session now.
    void publish_threads();
    void on_long_data(const protocol::mysql::MessageFrame& frame);

    // ---- the result cache (mysql_cache.cpp) ----
    /// Whether a read is to be looked up in the cache (a hint or rule asks, it is
    /// deterministic, it would run on a replica, its tables are known): cache_plan_ then
    /// holds its key. `digest`: the digest text, computed here if empty and needed.
    /// `params`: an execution's bound parameters (types and values), nullopt for a text query.
    bool plan_read(const router::Classification& c, std::string_view sql, std::string& digest,
                   std::optional<std::span<const std::uint8_t>> params = std::nullopt);
    /// Answers the planned read from the cache: true/false (whether the session goes on)
    /// when it did, nullopt on a miss (the caller runs the read and calls fill_cache()).
    asio::awaitable<std::optional<bool>> serve_cached(std::uint8_t seq);
    /// plan_read(), then for a `fleet` read the versions of its tables read from Redis (and
    /// the fleet's GTIDs) and the key made again with them.
    asio::awaitable<bool> plan_cached_read(const router::Classification& c, std::string_view sql,
                                           std::string& digest,
                                           std::optional<std::span<const std::uint8_t>> params);
    /// After a missed read was relayed from `slot`: stores what was captured, unless the
    /// result may not reflect the writes its key's table versions stand for.
    void fill_cache(Slot slot);
    /// Whether backend `index` is known to have applied watermark version `needs`.
    bool replica_reflects(std::size_t index, std::uint64_t needs) const;
    /// Right before a planned read goes to the replica: whether its answer will reflect what
    /// the key's versions need. Known only from evidence older than the read (a position the
    /// monitor read, a wait that returned): evidence that arrives while the read runs says
    /// nothing of the snapshot it read.
    void proven_before_send() noexcept;
    /// A statement about to run on the primary that may change tables: their versions are
    /// bumped when its answer arrives, before the client gets it (collect_bumps()).
    void plan_write(const router::Classification& c, std::string_view sql);
    /// The primary's answer is complete and about to reach the client: collects what the
    /// statement and, when it ended one, its transaction wrote into bumping_; whether any.
    bool collect_bumps(bool has_status, std::uint16_t status);
    /// Bumps what collect_bumps() found (awaits Redis when there is one).
    asio::awaitable<void> bump_collected();
    /// The session settings that change answers, canonical, for cache keys.
    const std::string& cache_settings();
    struct CachePlan {
        cache::Key key;
        std::chrono::milliseconds ttl{0};
        std::uint64_t needs = 0; ///< the watermark version a replica's result must reflect
        const std::string* digest = nullptr; ///< the statement's digest text (on_query's)
        bool fleet = false; ///< consistency "fleet": versions are read from Redis first
        bool active = false;
        /// A replica's answer may be stored: it was known to reflect `needs` before the read
        /// was sent (proven_before_send()), or the read's own wait proved it.
        bool reflects = false;
    };
    CachePlan cache_plan_;
    bool capture_wanted_ = false; ///< relay(): capture the answer for the cache
    protocol::mysql::ResultFormat capture_format_ = protocol::mysql::ResultFormat::text;
    protocol::mysql::Capture capture_;
    std::vector<std::uint8_t> params_key_;            ///< scratch: an execution's types and values
    std::vector<std::string> names_;                  ///< scratch: a read's qualified tables
    std::vector<cache::TableVersion> table_versions_; ///< scratch: their versions
    std::vector<cache::TableState*> bump_;            ///< the running statement's tables
    bool bump_all_ = false;                           ///< ... not known: everything
    bool bump_pending_ = false;
    std::vector<cache::TableState*> trx_written_; ///< bumped again when the trx ends
    std::vector<cache::TableState*> bumping_;     ///< collect_bumps(): bumped now
    bool bumping_all_ = false;
    bool trx_written_all_ = false;
    std::string settings_;
    std::uint64_t settings_version_ = ~std::uint64_t{0};

    router::SessionView view() const noexcept;
    /// The statement with CONNECTION_ID() replaced by the session's own id (the one in the
    /// greeting, which KILL and mysql_thread_id() know), or nullopt when it has no such call.
    std::optional<std::string> own_connection_id(const router::Classification& c,
                                                 std::string_view sql) const;
    /// Whether a read may go to a replica: the session has one, or one is eligible.
    bool replica_possible() const noexcept;
    /// What a replica must be for this session now: not behind an open breaker, not
    /// one that refused the session's login at this state, not one that lagged behind its
    /// last write a moment ago; ties spread by the session id.
    /// `max_lag_ms`: a hint's or rule's; else the user's; else `[routing] max_lag_ms`.
    pool::ReplicaRequirements
    replica_requirements(std::chrono::steady_clock::time_point now,
                         std::optional<std::uint32_t> max_lag_ms = std::nullopt) const noexcept;
    /// Where a statement runs: the route, then the replica made ready (connected, state
    /// replayed, the session's last write visible), or the primary when it cannot be.
    /// `wait`: reads must be as fresh as their consistency level says (not for a prepare).
    /// `pipeline`: the caller sends the wait with the read (pending_wait_ holds the token);
    /// otherwise the wait runs here first.
    asio::awaitable<Slot> choose(const router::Classification& c, std::string_view digest,
                                 router::Route& route, bool wait, bool pipeline);
    /// The session's replica connection, ready: kept while the monitor finds it eligible
    /// (up, replicating, within the allowed lag), else dropped and another chosen.
    asio::awaitable<bool> ensure_replica(std::optional<std::uint32_t> max_lag_ms);
    asio::awaitable<bool> sync_state(Slot slot);
    /// Waits (bounded) on the replica until it has applied `token`; false: not in time, or
    /// the replica failed (it is dropped, and avoided by this session for a while).
    asio::awaitable<bool> causal_wait(std::string token, std::uint64_t version);
    /// Parks until the wait in flight on the session's replica (another session's, covering
    /// `version`) answers; true when the replica is then known to have `version`. Bounded by
    /// causal_read_timeout_ms (plus a margin for the round trip).
    asio::awaitable<bool> behind_shared_wait(std::uint64_t version);
    /// A wait on the replica for `token` succeeded: the session, and under `global` every
    /// session (by `version`), know it is there.
    void waited(std::string token, std::uint64_t version);
    /// The replica connection is dropped (lost, or behind the session's write); the next
    /// read chooses again.
    void replica_failed(const char* why) noexcept;
    void count_statement(const router::Classification& c, const router::Route& r, Slot s) noexcept;
    /// What a statement that succeeded did to the session (state, pins, sql_mode).
    void after_statement(const router::Classification& c, Slot slot);
    /// COM_RESET_CONNECTION / COM_CHANGE_USER: state, pins and prepared statements gone.
    void reset_session_state() noexcept;
    /// Prepares `ps` on `slot` and records its id there; the backend's whole reply, or nullopt
    /// when the connection failed.
    asio::awaitable<std::optional<Reply>> prepare_on(Prepared& ps, Slot slot);
    asio::awaitable<bool> ensure_prepared(Prepared& ps, Slot slot);
    void drop_slot(Slot slot) noexcept;
    /// A connection not to send the next statement to: broken, or, after the session was
    /// idle, closed by its server or sent something unasked.
    bool unusable(Backend& b) noexcept;

    asio::awaitable<bool> send_client(std::vector<std::uint8_t>& payload, std::uint8_t& seq);
    /// `message`: a literal or a named string (GCC 12 destroys a temporary argument of a
    /// co_awaited call twice).
    asio::awaitable<bool> send_error(std::uint8_t seq, std::uint16_t code, const char* state,
                                     std::string_view message);
    asio::awaitable<bool> send_ok(std::uint8_t seq, std::uint16_t status);
    std::string prefix() const;

    Worker& worker_;
    ListenerShared& listener_;
    pool::Transport client_;
    pool::ReadBuffer cbuf_;
    std::array<Backend, 2> backends_;
    protocol::mysql::ResponseScanner scanner_;
    protocol::mysql::ServerLogin login_;
    std::vector<std::uint8_t> out_, scratch_, request_, wire_;
    protocol::mysql::ErrPacket last_error_; ///< a lazy prepare's refusal
    std::string peer_;
    std::string user_;
    const config::User* user_config_ = nullptr;  ///< its [[users]] entry (max_lag_ms)
    const config::User* counted_user_ = nullptr; ///< counted in Shared::user_clients
    std::string password_; ///< of user_, for the backend logins made for this session
    std::uint32_t client_caps_ = 0;
    std::uint32_t client_ext_caps_ = 0; ///< MariaDB extended capabilities of the session
    std::uint32_t connection_id_ = 0;
    std::uint64_t queries_ = 0;
    std::uint64_t relayed_ = 0; ///< bytes of the current response already sent to the client
    std::chrono::steady_clock::time_point opened_;
    bool idle_ = false;
    bool check_idle_ = false; ///< the session was idle: check connections before use
    /// A session or a connection unused this long has its connections checked before use.
    static constexpr std::chrono::milliseconds idle_check_after{250};
    bool primary_lost_state_ = false; ///< the primary connection died holding session state
    std::chrono::steady_clock::time_point last_done_{};
    std::chrono::steady_clock::time_point command_started_{};
    bool closed_ = false; ///< force_close() or kill(): no new backend connection, no retry
    bool counted_ = false;
    const char* end_reason_ = "client closed";

    // Session state (replayed on each backend before it serves the session) and pins.
    router::SessionState state_;
    router::StatementMap statements_;
    std::uint64_t replica_refused_version_ = 0; ///< replay failed there at this version
    std::uint64_t refused_by_ = 0;      ///< replicas (bit per backend index) that refused the login
    std::uint64_t refused_version_ = 0; ///< ... at this state version
    std::string last_gtid_;             ///< of the session's last write, from the primary's OK
    std::string pending_wait_;          ///< choose() left this wait to be sent with the read
    std::uint64_t pending_wait_version_ = 0; ///< ... and its watermark version (global)
    std::string acked_token_;                ///< the process-wide watermark as last copied
    std::uint64_t acked_version_ = 0;
    std::vector<std::uint8_t> pipeline_; ///< a wait and a read written together
    bool hold_read_only_ = false;        ///< relay(): keep a read-only refusal from the client
    protocol::mysql::ErrPacket held_error_;
    /// A replica that did not show the session's write in time; avoided until lagging_until_.
    std::size_t lagging_replica_ = static_cast<std::size_t>(-1);
    std::chrono::steady_clock::time_point lagging_until_{};
    bool wrote_untracked_ = false; ///< wrote, and the primary does not report GTIDs
    bool retrack_ = false;         ///< the client changed session tracking: switch GTIDs on again
    bool last_on_replica_ = false;
    bool login_sql_mode_gone_ = false; ///< reset or change_user: no IGNORE_SPACE from login

    // Pooling (transaction mode).
    bool pooling_ = false;
    /// Primary connections (GTID tracking) then replicas', each without then with a database.
    std::array<std::string, 4> pool_keys_;
    std::string state_text_;
    std::uint64_t state_text_version_ = 0; ///< the state version state_text_ is of (0: none)
    /// The last statement left something its connection alone can answer (warnings, an
    /// insert id, an error for SHOW WARNINGS): its connection is kept through the next
    /// command, or until the session has been idle a second.
    bool sticky_ = false;
    bool sticky_before_ = false;    ///< sticky_ as the current command found it
    bool quitting_ = false;         ///< COM_QUIT: the session ends between statements
    bool diagnostics_read_ = false; ///< the current command reads the diagnostics area
    bool wrote_ = false; ///< the current command wrote on the primary (ROW_COUNT() may follow)
    std::array<bool, 2> held_before_{}; ///< the session held these slots as the command came
    /// SET TRANSACTION (the next transaction only) ran: the primary connection is kept until
    /// the primary runs the session's next statement.
    bool next_trx_set_ = false;
    int cursors_open_ = 0; ///< executions with an open cursor (fetched rows come from it)
    std::uint16_t primary_unreachable_code_ = 1105;
};

} // namespace sluice
