#pragma once
// MySQL client/server protocol constants, named as in the MySQL documentation
// ("Capabilities Flags", "Status Flags", "Text Protocol" command bytes).

#include <cstdint>

namespace sluice::protocol::mysql {

/// Largest payload of one packet; a payload of exactly this size continues in the next packet.
inline constexpr std::size_t max_packet_payload = 0xFFFFFF;

namespace cap {
inline constexpr std::uint32_t long_password = 1u
                                               << 0; // CLIENT_LONG_PASSWORD (MariaDB: CLIENT_MYSQL)
inline constexpr std::uint32_t found_rows = 1u << 1; // CLIENT_FOUND_ROWS
inline constexpr std::uint32_t long_flag = 1u << 2;  // CLIENT_LONG_FLAG
inline constexpr std::uint32_t connect_with_db = 1u << 3;    // CLIENT_CONNECT_WITH_DB
inline constexpr std::uint32_t no_schema = 1u << 4;          // CLIENT_NO_SCHEMA
inline constexpr std::uint32_t compress = 1u << 5;           // CLIENT_COMPRESS
inline constexpr std::uint32_t odbc = 1u << 6;               // CLIENT_ODBC
inline constexpr std::uint32_t local_files = 1u << 7;        // CLIENT_LOCAL_FILES
inline constexpr std::uint32_t ignore_space = 1u << 8;       // CLIENT_IGNORE_SPACE
inline constexpr std::uint32_t protocol_41 = 1u << 9;        // CLIENT_PROTOCOL_41
inline constexpr std::uint32_t interactive = 1u << 10;       // CLIENT_INTERACTIVE
inline constexpr std::uint32_t ssl = 1u << 11;               // CLIENT_SSL
inline constexpr std::uint32_t ignore_sigpipe = 1u << 12;    // CLIENT_IGNORE_SIGPIPE
inline constexpr std::uint32_t transactions = 1u << 13;      // CLIENT_TRANSACTIONS
inline constexpr std::uint32_t reserved = 1u << 14;          // CLIENT_RESERVED
inline constexpr std::uint32_t secure_connection = 1u << 15; // CLIENT_SECURE_CONNECTION
inline constexpr std::uint32_t multi_statements = 1u << 16;  // CLIENT_MULTI_STATEMENTS
inline constexpr std::uint32_t multi_results = 1u << 17;     // CLIENT_MULTI_RESULTS
inline constexpr std::uint32_t ps_multi_results = 1u << 18;  // CLIENT_PS_MULTI_RESULTS
inline constexpr std::uint32_t plugin_auth = 1u << 19;       // CLIENT_PLUGIN_AUTH
inline constexpr std::uint32_t connect_attrs = 1u << 20;     // CLIENT_CONNECT_ATTRS
inline constexpr std::uint32_t plugin_auth_lenenc_data =
    1u << 21; // CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
inline constexpr std::uint32_t can_handle_expired_passwords = 1u << 22;
inline constexpr std::uint32_t session_track = 1u << 23; // CLIENT_SESSION_TRACK
inline constexpr std::uint32_t deprecate_eof = 1u << 24; // CLIENT_DEPRECATE_EOF
inline constexpr std::uint32_t optional_resultset_metadata = 1u << 25;
inline constexpr std::uint32_t zstd_compression = 1u << 26;
inline constexpr std::uint32_t query_attributes = 1u << 27;
inline constexpr std::uint32_t ssl_verify_server_cert = 1u << 30;
inline constexpr std::uint32_t remember_options = 1u << 31;
} // namespace cap

/// MariaDB's extended capabilities: the greeting's and the handshake response's last 4
/// reserved bytes, used when CLIENT_LONG_PASSWORD (MariaDB: CLIENT_MYSQL) is not set.
namespace mariadb_cap {
inline constexpr std::uint32_t progress = 1u << 0;       // MARIADB_CLIENT_PROGRESS
inline constexpr std::uint32_t com_multi = 1u << 1;      // MARIADB_CLIENT_COM_MULTI
inline constexpr std::uint32_t stmt_bulk = 1u << 2;      // MARIADB_CLIENT_STMT_BULK_OPERATIONS
inline constexpr std::uint32_t extended_types = 1u << 3; // MARIADB_CLIENT_EXTENDED_TYPE_INFO
inline constexpr std::uint32_t cache_metadata = 1u << 4; // MARIADB_CLIENT_CACHE_METADATA
} // namespace mariadb_cap

namespace status {
inline constexpr std::uint16_t in_trans = 0x0001;              // SERVER_STATUS_IN_TRANS
inline constexpr std::uint16_t autocommit = 0x0002;            // SERVER_STATUS_AUTOCOMMIT
inline constexpr std::uint16_t more_results_exists = 0x0008;   // SERVER_MORE_RESULTS_EXISTS
inline constexpr std::uint16_t cursor_exists = 0x0040;         // SERVER_STATUS_CURSOR_EXISTS
inline constexpr std::uint16_t last_row_sent = 0x0080;         // SERVER_STATUS_LAST_ROW_SENT
inline constexpr std::uint16_t no_backslash_escapes = 0x0200;  // SERVER_STATUS_NO_BACKSLASH_ESCAPES
inline constexpr std::uint16_t in_trans_readonly = 0x2000;     // SERVER_STATUS_IN_TRANS_READONLY
inline constexpr std::uint16_t session_state_changed = 0x4000; // SERVER_SESSION_STATE_CHANGED
} // namespace status

/// Command bytes (first payload byte of a client command).
enum class Command : std::uint8_t {
    sleep = 0x00,               // COM_SLEEP
    quit = 0x01,                // COM_QUIT
    init_db = 0x02,             // COM_INIT_DB
    query = 0x03,               // COM_QUERY
    field_list = 0x04,          // COM_FIELD_LIST
    create_db = 0x05,           // COM_CREATE_DB
    drop_db = 0x06,             // COM_DROP_DB
    refresh = 0x07,             // COM_REFRESH
    shutdown = 0x08,            // COM_SHUTDOWN
    statistics = 0x09,          // COM_STATISTICS
    process_info = 0x0A,        // COM_PROCESS_INFO
    connect = 0x0B,             // COM_CONNECT
    process_kill = 0x0C,        // COM_PROCESS_KILL
    debug = 0x0D,               // COM_DEBUG
    ping = 0x0E,                // COM_PING
    time = 0x0F,                // COM_TIME
    delayed_insert = 0x10,      // COM_DELAYED_INSERT
    change_user = 0x11,         // COM_CHANGE_USER
    binlog_dump = 0x12,         // COM_BINLOG_DUMP
    table_dump = 0x13,          // COM_TABLE_DUMP
    connect_out = 0x14,         // COM_CONNECT_OUT
    register_slave = 0x15,      // COM_REGISTER_SLAVE
    stmt_prepare = 0x16,        // COM_STMT_PREPARE
    stmt_execute = 0x17,        // COM_STMT_EXECUTE
    stmt_send_long_data = 0x18, // COM_STMT_SEND_LONG_DATA
    stmt_close = 0x19,          // COM_STMT_CLOSE
    stmt_reset = 0x1A,          // COM_STMT_RESET
    set_option = 0x1B,          // COM_SET_OPTION
    stmt_fetch = 0x1C,          // COM_STMT_FETCH
    daemon = 0x1D,              // COM_DAEMON
    binlog_dump_gtid = 0x1E,    // COM_BINLOG_DUMP_GTID
    reset_connection = 0x1F,    // COM_RESET_CONNECTION
    stmt_bulk_execute = 0xFA,   // COM_STMT_BULK_EXECUTE (MariaDB)
};

/// Name of a command for logs and metric labels ("query", "stmt_execute", ... "unknown").
const char* command_name(std::uint8_t cmd) noexcept;

/// Server error codes and SQLSTATEs Sluice sends itself (MySQL "Server Error Message Reference").
namespace er {
inline constexpr std::uint16_t con_count_error = 1040;           // ER_CON_COUNT_ERROR, 08004
inline constexpr std::uint16_t handshake_error = 1043;           // ER_HANDSHAKE_ERROR, 08S01
inline constexpr std::uint16_t access_denied = 1045;             // ER_ACCESS_DENIED_ERROR, 28000
inline constexpr std::uint16_t unknown_com = 1047;               // ER_UNKNOWN_COM_ERROR, 08S01
inline constexpr std::uint16_t net_packet_too_large = 1153;      // ER_NET_PACKET_TOO_LARGE, 08S01
inline constexpr std::uint16_t net_read_error = 1158;            // ER_NET_READ_ERROR, 08S01
inline constexpr std::uint16_t net_packets_out_of_order = 1156;  // ER_NET_PACKETS_OUT_OF_ORDER
inline constexpr std::uint16_t unknown_stmt_handler = 1243;      // ER_UNKNOWN_STMT_HANDLER, HY000
inline constexpr std::uint16_t malformed_packet = 1835;          // ER_MALFORMED_PACKET, HY000
inline constexpr std::uint16_t secure_transport_required = 3159; // ER_SECURE_TRANSPORT_REQUIRED
// Codes from 2000 are the client library's own: a server (or Sluice) must not send them;
// libmariadb reports a server ERR carrying one as a malformed packet.
inline constexpr std::uint16_t server_gone = 2006;     // CR_SERVER_GONE_ERROR (client-side code)
inline constexpr std::uint16_t server_lost = 2013;     // CR_SERVER_LOST (client-side code)
inline constexpr std::uint16_t conn_host_error = 2003; // CR_CONN_HOST_ERROR (client-side code)
inline constexpr std::uint16_t unknown_error = 1105;   // ER_UNKNOWN_ERROR, HY000
} // namespace er

} // namespace sluice::protocol::mysql
