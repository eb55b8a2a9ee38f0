#pragma once
// The primary's binary log as a source of invalidations (issue #9): writes that do not pass
// through Sluice (another client on the primary, triggers, cascades, events, a second Sluice
// without Redis) change tables too. BinlogFollower connects to the primary as a replica
// (COM_BINLOG_DUMP with a GTID start position, through MariaDB Connector/C's mariadb_rpl_*)
// and reports, for every committed transaction, the tables it changed.
//
// What the primary must have: log_bin, GTIDs (any MariaDB >= 10.0) and binlog_format=ROW.
// Under STATEMENT or MIXED, a statement-logged write is named from its text (the router's
// tables_written), which cannot see what triggers and foreign-key cascades change: those
// changes are missed. A statement it cannot read counts as "everything changed". What no
// format shows: writes made with sql_log_bin=0, and changes to temporary tables.
//
// The user needs REPLICATION SLAVE (COM_BINLOG_DUMP); reading @@gtid_binlog_pos and
// @@binlog_checksum needs no privilege. The server_id must be unique among everything that
// replicates from the primary, its replicas and other Sluice processes included: when a
// dump starts with a server_id already streaming, the primary ends the older stream (its
// reader gets error 4052, ER_SLAVE_SAME_ID, "A slave with the same server_uuid/server_id is
// already connected"), so two followers sharing an id knock each other out at every
// reconnect, each flapping between up and down (MariaDB 10.11, seen in the test).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sluice::cache {

/// A MariaDB global transaction id, domain-server-sequence.
struct Gtid {
    std::uint32_t domain = 0;
    std::uint32_t server = 0;
    std::uint64_t seq = 0;
    bool operator==(const Gtid&) const = default;
    std::string to_string() const; ///< "0-1-42"
};

/// Parses one "domain-server-seq"; std::nullopt unless it is exactly that (decimal, in range).
std::optional<Gtid> parse_gtid(std::string_view text) noexcept;
/// Parses a GTID position such as @@gtid_binlog_pos: comma-separated GTIDs (spaces around
/// them allowed), at most one per domain; "" is the empty position. std::nullopt if malformed.
std::optional<std::vector<Gtid>> parse_gtid_list(std::string_view text);

/// What one committed transaction (or DDL statement) changed.
struct BinlogChange {
    /// "schema.table", ASCII lower case, sorted, no duplicates.
    std::vector<std::string> tables;
    /// True when the tables are not all known (a statement the router cannot read, DROP
    /// DATABASE, XA COMMIT, a resume position the primary no longer has): anything may have
    /// changed. `tables` then holds whatever was known, possibly nothing.
    bool all = false;
    std::string gtid;           ///< "domain-server-seq" of the transaction; "" if none
    std::uint32_t timestamp{0}; ///< the event's time on the primary (Unix seconds); 0 unknown
    bool operator==(const BinlogChange&) const = default;
};

/// The sql_mode bits (Q_SQL_MODE_CODE) in a QUERY event's status variables: the session's
/// mode, which says how the statement's text is lexed (ANSI_QUOTES, NO_BACKSLASH_ESCAPES).
/// 0 (the default lexing) when the variables do not say or cannot be read.
/// MariaDB KB "Query_event", status variables.
std::uint64_t query_event_sql_mode(std::span<const std::uint8_t> status_vars) noexcept;

/// Groups binlog events into transactions. Pure: events in, changes out; no I/O, no clock.
///
/// A group starts at a GTID event and ends at its XID event, at the COMMIT / ROLLBACK query
/// event of a non-transactional group, at the one statement of a group flagged standalone
/// (DDL), or at an XA_PREPARE event; each end yields the tables the group's TABLE_MAP events
/// named plus those of its QUERY events. A group left open is never dropped: it is handed out
/// when the next GTID event arrives or when the primary says it is idle (a heartbeat comes
/// only between groups, so an open group then is complete).
class BinlogAssembler {
public:
    /// GTID_EVENT: a new group. Yields the previous group if it was left open.
    /// `flags`: the event's FL_* bits (FL_STANDALONE = 0x01).
    std::optional<BinlogChange> gtid(const Gtid& id, std::uint8_t flags, std::uint32_t timestamp);
    /// TABLE_MAP_EVENT: rows of schema.table follow.
    void table_map(std::string_view schema, std::string_view table);
    /// QUERY_EVENT: a statement run with default database `db` under `sql_mode` (see
    /// query_event_sql_mode). Yields the group when the statement ends it.
    std::optional<BinlogChange> query(std::string_view db, std::string_view sql,
                                      std::uint64_t sql_mode, std::uint32_t timestamp);
    /// XID_EVENT or XA_PREPARE_LOG_EVENT: the group is committed (or prepared).
    std::optional<BinlogChange> commit(std::uint32_t timestamp);
    /// A heartbeat: the primary has nothing more to send. Yields an open group.
    std::optional<BinlogChange> idle();
    /// The stream broke: whatever was gathered is dropped (it will be read again).
    void reset();

private:
    std::optional<BinlogChange> finish(std::uint32_t timestamp);
    void add(std::string_view schema, std::string_view table);

    bool open_ = false;       ///< inside a group (or events seen since the last end)
    bool standalone_ = false; ///< the group is one statement
    std::string gtid_;
    std::uint32_t timestamp_ = 0;
    std::vector<std::string> tables_;
    bool all_ = false;
};

/// Where and how to follow the binlog.
struct BinlogOptions {
    /// A name or address reached over TCP; "localhost" means libmariadb's default unix socket.
    std::string host;
    std::uint16_t port = 3306;
    std::string user, password;
    /// This follower's replica id: nonzero, unique among the primary's replicas (see above).
    std::uint32_t server_id = 0;
    std::chrono::milliseconds reconnect_delay{500};
    /// Connecting gives up after this long (a stop() waits for a pending connect at most this).
    std::chrono::seconds connect_timeout{2};
    /// The primary sends a heartbeat after this long without events; a stream silent for
    /// four periods is taken as dead (a primary gone without closing the connection).
    std::chrono::milliseconds heartbeat_period{1000};
    /// Where to start instead of the primary's current position: a GTID position (as
    /// position() returns), e.g. the old follower's when the primary changes, so the
    /// transactions in between are not missed. Empty: the current position. Unreadable: the
    /// current position, with one change "everything changed".
    std::string start_position;
};

/// Follows a primary's binlog on a thread of its own and reports committed changes.
///
/// The first connection starts at the primary's current position (@@gtid_binlog_pos), so
/// history is not replayed; later connections resume after the last transaction delivered,
/// so a transaction committed while the follower was disconnected is still reported, late.
/// A transaction may be reported twice (one read again after a reconnect): harmless for
/// invalidation. When the primary no longer has the resume position (binlogs purged, or a
/// crashed primary that lost the transactions it had sent), one change with all=true is
/// reported and following restarts at the current position.
///
/// Both callbacks run on the follower's thread, one at a time; they must not block for
/// long (each delays the stream) and must not call stop().
class BinlogFollower {
public:
    /// `on_change`: one committed transaction's tables. `on_state`: the stream is up (true)
    /// or down (false), with a reason for logs; called on each change of state, the first
    /// time when the first connection succeeds or fails.
    BinlogFollower(BinlogOptions options, std::function<void(BinlogChange)> on_change,
                   std::function<void(bool up, std::string why)> on_state);
    ~BinlogFollower(); ///< stop()
    BinlogFollower(const BinlogFollower&) = delete;
    BinlogFollower& operator=(const BinlogFollower&) = delete;

    /// Starts the thread. Call once.
    void start();
    /// Ends the stream (the blocking read is woken by shutting its socket down) and joins
    /// the thread. Prompt while idle or streaming; while a connect is pending it waits for
    /// it, at most connect_timeout. Idempotent.
    void stop();

    /// Events read (heartbeats included), transactions delivered, connections made.
    std::uint64_t events() const noexcept { return events_.load(std::memory_order_relaxed); }
    std::uint64_t changes() const noexcept { return changes_.load(std::memory_order_relaxed); }
    std::uint64_t connects() const noexcept { return connects_.load(std::memory_order_relaxed); }
    /// Seconds between the last delivered transaction's commit on the primary and its
    /// delivery (whole seconds: binlog timestamps have no fraction); 0 before the first.
    double lag_seconds() const noexcept { return lag_.load(std::memory_order_relaxed); }
    /// The GTID position the next connection would resume from ("" before the first).
    std::string position() const;
    /// The primary's @@GLOBAL.binlog_format at the last connection ("" before the first);
    /// anything but "ROW" misses what triggers and cascades change (see above).
    std::string binlog_format() const;

private:
    void run();
    /// One connection: connect, stream until it breaks; the reason it ended.
    std::string stream();
    void set_state(bool up, const std::string& why);
    void deliver(BinlogChange change);
    bool stopping() const;

    BinlogOptions options_;
    std::function<void(BinlogChange)> on_change_;
    std::function<void(bool, std::string)> on_state_;

    mutable std::mutex mu_; ///< guards stopping_, socket_, position_, binlog_format_
    std::condition_variable wake_;
    bool stopping_ = false;
    int socket_ = -1; ///< the streaming connection's socket, for stop() to shut down
    std::map<std::uint32_t, Gtid> position_; ///< by domain; valid when have_position_
    bool have_position_ = false;
    std::string binlog_format_;

    bool unknown_start_ = false; ///< start_position was unreadable: report "all" once
    std::optional<bool> up_;     ///< follower thread only
    BinlogAssembler assembler_;
    std::thread thread_;

    std::atomic<std::uint64_t> events_{0}, changes_{0}, connects_{0};
    std::atomic<double> lag_{0};
};

} // namespace sluice::cache
