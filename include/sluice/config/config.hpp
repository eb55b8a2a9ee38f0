#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::config {

/// Where a TLS certificate and key come from (PEM files). An empty `cert_file` means TLS off.
struct TlsFiles {
    std::string cert_file;
    std::string key_file;
    std::string ca_file; ///< peers' CA; for listeners: verify client certificates when set
    bool enabled() const noexcept { return !cert_file.empty(); }
};

/// How client sessions hold backend connections ([pool] mode; a user's or a listener's):
/// `transaction` lends a pooled connection per statement, or per transaction, and keeps it
/// while the session holds state a pooled connection cannot carry (issue #10); `session`
/// keeps the session's connections from first use to its end.
enum class PoolMode { transaction, session };

/// One client-facing listener.
struct Listener {
    std::string name;
    std::string protocol = "mysql"; ///< "mysql", or "tds" (SQL Server clients, issue #11)
    std::string address = "127.0.0.1";
    std::uint16_t port = 6033;
    std::uint32_t max_connections = 10000; ///< over this, clients get error 1040
    /// MySQL: offered to clients that send SSL_REQUEST. TDS: offered in PRELOGIN (the
    /// client chooses login-only or full encryption) and to TDS 8.0 (TLS-first) clients.
    TlsFiles tls;
    /// MySQL: refuse clients that do not upgrade. TDS: encrypt every connection (SQL
    /// Server's Force Encryption); clients that cannot are refused.
    bool require_tls = false;
    /// Auth plugin named in the greeting: "mysql_native_password" or "caching_sha2_password".
    std::string auth_plugin = "mysql_native_password";
    std::optional<PoolMode> pool_mode; ///< absent: the user's, else [pool] mode
};

enum class BackendRole { primary, replica };

/// How fresh a read must be ([routing] consistency; a user's, a rule's): eventual (any
/// eligible replica), session (has the session's own writes), global (has every write whose
/// OK any client of this Sluice got before the read arrived), fleet (the same for every
/// Sluice sharing the cache's Redis: their writes' GTIDs are read from there first).
enum class Consistency { eventual, session, global, fleet };

/// The most backends one configuration may list (per-backend counters are fixed arrays).
inline constexpr std::size_t max_backends = 64;

/// One database server behind Sluice.
struct Backend {
    std::string name;
    std::string host;
    std::uint16_t port = 3306;
    BackendRole role = BackendRole::replica;
    std::string zone;
    std::uint32_t weight = 1;
    bool tls = false; ///< reach this backend over TLS (settings in [backend_tls])
    // Overrides of the [pool] sizes for this backend (absent: [pool]'s).
    std::optional<std::uint32_t> pool_max_connections;
    std::optional<std::uint32_t> pool_min_idle;
    std::optional<std::chrono::milliseconds> pool_idle_timeout;
    std::optional<std::chrono::milliseconds> pool_max_lifetime;
};

/// Backend connection pools ([pool], issue #10). Sizes are per worker and per backend.
struct Pool {
    PoolMode mode = PoolMode::transaction;
    std::uint32_t max_connections = 32; ///< open to one backend, per worker, all users
    std::uint32_t min_idle = 0;         ///< kept open per backend and user once it logged in
    std::chrono::milliseconds idle_timeout{60000};   ///< an idle connection is closed after it
    std::chrono::milliseconds max_lifetime{3600000}; ///< closed when returned after this age
    /// How long a statement waits for a connection when all are busy before its client gets
    /// error 1040.
    std::chrono::milliseconds queue_timeout{5000};
    /// Prepared statements kept open per backend connection (oldest closed beyond it).
    std::uint32_t prepared_per_connection = 64;
};

/// TLS toward backends.
struct BackendTls {
    std::string ca_file;   ///< CA to verify the server certificate; empty: no verification
    std::string cert_file; ///< client certificate, optional
    std::string key_file;
    bool verify_hostname = false;
};

/// A user clients log in as; Sluice logs in to the backends with the same credentials.
struct User {
    std::string name;
    std::string password; ///< resolved: from `password` or from the `password_env` variable
    std::optional<std::uint32_t> max_lag_ms; ///< this user's reads: allowed staleness
    std::optional<Consistency> consistency;  ///< this user's reads
    std::uint32_t max_connections = 0;       ///< client connections at once; 0: no limit
    std::optional<PoolMode> pool_mode;       ///< absent: [pool] mode
};

/// The backend monitor ([monitor], issue #8): its own login on every backend.
struct Monitor {
    bool enabled = false; ///< a [monitor] section is present
    std::string user;
    std::string password; ///< resolved like a user's
    std::chrono::milliseconds interval{500};
    std::chrono::milliseconds timeout{1000}; ///< one probe's deadline, connect included
    /// Where the heartbeat row lives: "database.table", created if missing; empty: no
    /// heartbeat (lag from Seconds_Behind_Master, whole seconds).
    std::string heartbeat_database = "sluice";
    std::string heartbeat_table = "heartbeat";
    std::uint32_t failures_to_open = 2; ///< consecutive failed probes that take a backend out
};

/// A query rule ([[query_rules]]): matched in order against the statement digest, the user
/// and the current database; the first match decides (issue #3).
struct QueryRule {
    enum class Route { primary, replica, refuse };
    std::string name;
    std::string match_digest; ///< RE2 pattern searched in the digest text; empty: any
    std::string user;         ///< exact user; empty: any
    std::string schema;       ///< exact current database; empty: any
    Route route = Route::primary;
    std::uint16_t error_code = 1105; ///< refuse: the error the client gets
    std::string error_message = "Query refused by a Sluice rule";
    std::optional<std::uint32_t> max_lag_ms; ///< replica: allowed staleness
    std::optional<Consistency> consistency;  ///< the reads it matches
};

/// Read/write splitting ([routing], issue #3).
struct Routing {
    /// The default consistency of reads. `read_your_writes = false` (the key before
    /// `consistency` existed) means eventual.
    Consistency consistency = Consistency::global;
    /// How long a replica may take to show the session's last write before the read goes to
    /// the primary instead.
    std::chrono::milliseconds causal_read_timeout{100};
    /// How long a replica that failed (connect error, lost connection) is skipped when
    /// sessions choose their replica; and how long a session whose read-your-writes wait timed
    /// out on a replica avoids that replica.
    std::chrono::milliseconds replica_retry{2000};
    /// Reads go only to replicas whose measured lag is at most this (a user, rule or hint
    /// may say otherwise).
    std::chrono::milliseconds max_lag{5000};
    /// With the monitor: how long writes and logins wait for a primary while none is
    /// reachable (a failover), before they fail.
    std::chrono::milliseconds failover_hold{30000};
};

/// One Redis server (or Redis Cluster seed) of the L2 cache ([[cache.redis]], issue #9).
struct CacheRedis {
    std::string host;
    std::uint16_t port = 6379;
    std::string region;   ///< empty: this Sluice's own region
    std::string user;     ///< ACL user (Redis 6+); empty: AUTH with the password alone
    std::string password; ///< resolved like a user's; empty: no AUTH
    bool tls = false;
    std::string tls_ca_file;     ///< CA that signed the server's certificate
    std::string tls_server_name; ///< SNI and the name verified; empty: host
    bool tls_verify = true;
    std::chrono::milliseconds connect_timeout{200};
    std::chrono::milliseconds command_timeout{100};
    bool cluster = false; ///< a Redis Cluster seed: the slot map comes from CLUSTER SLOTS
};

/// The cache's binary log follower ([cache.binlog]): writes made around Sluice invalidate.
struct CacheBinlog {
    bool enabled = false; ///< a [cache.binlog] table is present
    std::string user;     ///< needs REPLICATION SLAVE; default: [monitor]'s login
    std::string password;
    std::uint32_t server_id = 0; ///< among the primary's replicas; 0: chosen at start
};

/// The result cache ([cache], issue #9).
struct Cache {
    bool enabled = false; ///< a [cache] section is present and does not say enabled = false
    std::chrono::milliseconds default_ttl{300000};       ///< for hints and rules without their own
    std::size_t max_result_bytes = std::size_t{1} << 20; ///< larger results are not cached
    std::size_t l1_max_bytes = std::size_t{64} << 20;    ///< per worker; 0: no L1
    std::string key_prefix = "sluice:";                  ///< Redis keys start with it
    /// This Sluice's region: it reads and fills the [[cache.redis]] of this region (bumps go
    /// to every region's).
    std::string region;
    std::vector<CacheRedis> redis; ///< empty: L1 only
    CacheBinlog binlog;
};

/// A cache rule ([[cache_rules]]): which reads are cached and for how long; the first
/// matching rule decides (a hint in the statement beats every rule).
struct CacheRule {
    std::string name;
    std::string match_digest; ///< RE2 pattern searched in the digest text; empty: any
    std::string user;         ///< exact user; empty: any
    std::string schema;       ///< exact current database; empty: any
    /// Absent: [cache] default_ttl_ms; 0: the reads it matches are never cached.
    std::optional<std::chrono::milliseconds> ttl;
    bool shared = false; ///< one entry for every user (else each user has their own)
};

struct Admin {
    std::string address = "127.0.0.1";
    std::uint16_t port = 6090;
    bool enabled = true;
};

struct Logging {
    std::string level = "info"; ///< trace, debug, info, warn, error, critical, off
};

/// The whole configuration, validated: every field holds an allowed value.
struct Config {
    std::string source;         ///< the file it came from
    unsigned workers = 0;       ///< 0: one per core
    std::string server_version; ///< greeting version; empty: learned from the primary
    std::string zone;           ///< this Sluice's availability zone: its replicas come first
    std::uint32_t max_packet_size = 64 * 1024 * 1024; ///< largest client command (bytes)
    std::chrono::milliseconds connect_timeout{3000};  ///< backend connect + handshake
    std::chrono::milliseconds client_handshake_timeout{10000};
    std::chrono::milliseconds shutdown_grace{10000};
    std::uint32_t max_client_connections = 0; ///< over every listener; 0: no limit
    std::vector<Listener> listeners;
    std::vector<Backend> backends;
    BackendTls backend_tls;
    std::vector<User> users;
    std::vector<QueryRule> query_rules;
    Cache cache;
    std::vector<CacheRule> cache_rules;
    Routing routing;
    Pool pool;
    Monitor monitor;
    /// SQL Server backends ([[tds_backends]], issue #11): TDS listeners' sessions go there.
    /// Empty: no TDS listener may be configured.
    std::vector<Backend> tds_backends;
    /// Their monitor ([tds_monitor]): SQL logins differ from MySQL's. Only user, password,
    /// interval, timeout and failures_to_open apply (lag comes from the availability
    /// group's DMV, not from a heartbeat).
    Monitor tds_monitor;
    Admin admin;
    Logging logging;

    /// The first backend with role primary (validation guarantees exactly one).
    const Backend& primary() const;
    /// The user by name, or nullptr.
    const User* find_user(std::string_view name) const noexcept;
};

/// Thrown by load_file / load_string: `what()` is "file:line: key: reason".
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Parses and validates a TOML configuration file. Throws ConfigError.
/// Relative TLS file names are resolved against the file's directory; Config holds the result.
Config load_file(const std::string& path);
/// The same from text; `source_name` stands for the file name in messages. Relative TLS file
/// names are taken relative to the current directory.
Config load_string(std::string_view text, const std::string& source_name);

} // namespace sluice::config
