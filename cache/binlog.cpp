#include "sluice/cache/binlog.hpp"

#include "sluice/router/classify.hpp"
#include "sluice/router/tables.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>
#include <mysqld_error.h>
#include <sys/socket.h>

// mariadb_rpl.h uses the types mysql.h declares but does not include it.
// clang-format off
#include <mysql.h>
#include <mariadb_rpl.h>
// clang-format on

namespace sluice::cache {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
        if (x != b[i]) return false;
    }
    return true;
}

bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_space(s.back()))
        s.remove_suffix(1);
    return s;
}

/// The next word of `s` (letters, digits, `_`), after spaces; `s` moves past it.
std::string_view next_word(std::string_view& s) noexcept {
    s = trim(s);
    std::size_t n = 0;
    while (n < s.size() && (std::isalnum(static_cast<unsigned char>(s[n])) || s[n] == '_'))
        ++n;
    const std::string_view word = s.substr(0, n);
    s.remove_prefix(n);
    return word;
}

template <class T> bool parse_number(std::string_view s, T& out) noexcept {
    if (s.empty()) return false;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size();
}

// sql_mode bits (MariaDB sql/sql_class.h MODE_*), as mariadb_rpl.h names them.
constexpr std::uint64_t mode_ansi_quotes = MODE_ANSI_QUOTES;
constexpr std::uint64_t mode_no_backslash_escapes = MODE_NO_BACKSLASH_ESCAPES;

} // namespace

std::string Gtid::to_string() const {
    return std::to_string(domain) + '-' + std::to_string(server) + '-' + std::to_string(seq);
}

std::optional<Gtid> parse_gtid(std::string_view text) noexcept {
    const auto first = text.find('-');
    if (first == std::string_view::npos) return std::nullopt;
    const auto second = text.find('-', first + 1);
    if (second == std::string_view::npos) return std::nullopt;
    Gtid g;
    if (!parse_number(text.substr(0, first), g.domain) ||
        !parse_number(text.substr(first + 1, second - first - 1), g.server) ||
        !parse_number(text.substr(second + 1), g.seq))
        return std::nullopt;
    return g;
}

std::optional<std::vector<Gtid>> parse_gtid_list(std::string_view text) {
    std::vector<Gtid> out;
    text = trim(text);
    if (text.empty()) return out;
    for (;;) {
        const auto comma = text.find(',');
        const auto one = parse_gtid(trim(text.substr(0, comma)));
        if (!one) return std::nullopt;
        for (const Gtid& g : out) {
            if (g.domain == one->domain) return std::nullopt;
        }
        out.push_back(*one);
        if (comma == std::string_view::npos) return out;
        text.remove_prefix(comma + 1);
    }
}

std::uint64_t query_event_sql_mode(std::span<const std::uint8_t> v) noexcept {
    // Each status variable is a code byte and a value whose length the code fixes. Servers
    // write Q_FLAGS2_CODE then Q_SQL_MODE_CODE first, but the walk does not rely on it; it
    // stops at a code it does not know (the lengths after it cannot be known).
    std::size_t i = 0;
    auto has = [&](std::size_t n) { return v.size() - i >= n; };
    while (i < v.size()) {
        const std::uint8_t code = v[i++];
        std::size_t skip = 0;
        switch (code) {
        case Q_SQL_MODE_CODE: {
            if (!has(8)) return 0;
            std::uint64_t mode = 0;
            for (int b = 7; b >= 0; --b)
                mode = (mode << 8) | v[i + static_cast<std::size_t>(b)];
            return mode;
        }
        case Q_FLAGS2_CODE:
        case Q_AUTO_INCREMENT_CODE:
        case Q_MASTER_DATA_WRITTEN_CODE:
            skip = 4;
            break;
        case Q_CHARSET_CODE:
            skip = 6;
            break;
        case Q_LC_TIME_NAMES_CODE:
        case Q_CHARSET_DATABASE_CODE:
            skip = 2;
            break;
        case Q_TABLE_MAP_FOR_UPDATE_CODE:
        case Q_XID:
            skip = 8;
            break;
        case Q_MICROSECONDS_CODE:
        case Q_HRNOW:
            skip = 3;
            break;
        case Q_TIMEZONE_CODE:
        case Q_CATALOG_NZ_CODE:
            if (!has(1)) return 0;
            skip = 1 + v[i];
            break;
        case Q_CATALOG_CODE: // length, name, NUL (servers before 5.0.4)
            if (!has(1)) return 0;
            skip = 2 + v[i];
            break;
        case Q_INVOKERS_CODE: { // user and host, each length-prefixed
            if (!has(1)) return 0;
            const std::size_t user = 1 + v[i];
            if (!has(user + 1)) return 0;
            skip = user + 1 + v[i + user];
            break;
        }
        default: // Q_UPDATED_DB_NAMES_CODE and newer ones: lengths not worth knowing
            return 0;
        }
        if (!has(skip)) return 0;
        i += skip;
    }
    return 0;
}

// ------------------------------------------------------------------ BinlogAssembler ----

void BinlogAssembler::add(std::string_view schema, std::string_view table) {
    std::string name = lower(schema);
    name += '.';
    name += lower(table);
    tables_.push_back(std::move(name));
}

std::optional<BinlogChange> BinlogAssembler::finish(std::uint32_t timestamp) {
    BinlogChange change;
    std::sort(tables_.begin(), tables_.end());
    tables_.erase(std::unique(tables_.begin(), tables_.end()), tables_.end());
    change.tables = std::move(tables_);
    change.all = all_;
    change.gtid = std::move(gtid_);
    change.timestamp = timestamp != 0 ? timestamp : timestamp_;
    reset();
    return change;
}

void BinlogAssembler::reset() {
    open_ = false;
    standalone_ = false;
    gtid_.clear();
    timestamp_ = 0;
    tables_.clear();
    all_ = false;
}

std::optional<BinlogChange> BinlogAssembler::gtid(const Gtid& id, std::uint8_t flags,
                                                  std::uint32_t timestamp) {
    // The previous group had no end the assembler knows: hand it out rather than lose it.
    std::optional<BinlogChange> left;
    if (open_) left = finish(0);
    open_ = true;
    standalone_ = (flags & FL_STANDALONE) != 0;
    gtid_ = id.to_string();
    timestamp_ = timestamp;
    return left;
}

void BinlogAssembler::table_map(std::string_view schema, std::string_view table) {
    open_ = true;
    add(schema, table);
}

std::optional<BinlogChange> BinlogAssembler::query(std::string_view db, std::string_view sql,
                                                   std::uint64_t sql_mode,
                                                   std::uint32_t timestamp) {
    open_ = true;
    const std::string_view text = router::without_leading_comments(sql);

    // XA: the prepared group was handed out at its XA_PREPARE event; which tables an XA
    // COMMIT makes visible would take remembering every prepared XID, and XA is rare.
    std::string_view rest = text;
    if (iequals(next_word(rest), "XA")) {
        const std::string_view verb = next_word(rest);
        if (iequals(verb, "COMMIT") || iequals(verb, "ROLLBACK")) {
            all_ = true;
            return finish(timestamp);
        }
        return standalone_ ? finish(timestamp) : std::nullopt; // START, END, PREPARE
    }

    router::SqlMode mode;
    mode.ansi_quotes = (sql_mode & mode_ansi_quotes) != 0;
    mode.no_backslash_escapes = (sql_mode & mode_no_backslash_escapes) != 0;
    switch (router::classify(text, mode).cls) {
    case router::StatementClass::begin:
    case router::StatementClass::begin_read_only:
    case router::StatementClass::savepoint:
        return std::nullopt;
    case router::StatementClass::commit:
    case router::StatementClass::rollback:
        // A ROLLBACK in the binlog ends a group whose non-transactional changes stayed.
        return finish(timestamp);
    default:
        break;
    }

    const router::TableRefs refs = router::tables_written(text, mode);
    for (const router::TableName& t : refs.tables) {
        if (!t.schema.empty()) {
            add(t.schema, t.table);
        } else if (!db.empty()) {
            add(db, t.table);
        } else {
            all_ = true; // no default database: the server refused it, or we cannot tell
        }
    }
    if (!refs.complete) all_ = true;
    if (standalone_) return finish(timestamp);
    return std::nullopt;
}

std::optional<BinlogChange> BinlogAssembler::commit(std::uint32_t timestamp) {
    open_ = true;
    return finish(timestamp);
}

std::optional<BinlogChange> BinlogAssembler::idle() {
    if (!open_) return std::nullopt;
    return finish(0);
}

// ------------------------------------------------------------------- BinlogFollower ----

namespace {

struct MysqlClose {
    void operator()(MYSQL* m) const noexcept { mysql_close(m); }
};
struct RplClose {
    void operator()(MARIADB_RPL* r) const noexcept { mariadb_rpl_close(r); }
};
struct EventFree {
    void operator()(MARIADB_RPL_EVENT* e) const noexcept { mariadb_free_rpl_event(e); }
};
using MysqlPtr = std::unique_ptr<MYSQL, MysqlClose>;
using RplPtr = std::unique_ptr<MARIADB_RPL, RplClose>;
using EventPtr = std::unique_ptr<MARIADB_RPL_EVENT, EventFree>;

std::string error_of(MYSQL* m) {
    const char* e = mysql_error(m);
    if (e && *e) return std::to_string(mysql_errno(m)) + ": " + e;
    return "connection closed";
}

/// A global system variable's value ("" when the server has no such variable); std::nullopt
/// on error. SHOW, not SELECT: a server's Com_select counts its clients' reads only (tests
/// prove where reads ran by it), as for the monitor's probes.
std::optional<std::string> global_variable(MYSQL* m, std::string_view name) {
    const std::string sql =
        "SHOW GLOBAL VARIABLES WHERE Variable_name = '" + std::string(name) + "'";
    if (mysql_real_query(m, sql.data(), sql.size()) != 0) return std::nullopt;
    MYSQL_RES* res = mysql_store_result(m);
    if (!res) return std::nullopt;
    std::optional<std::string> out = std::string();
    if (MYSQL_ROW row = mysql_fetch_row(res); row && mysql_num_fields(res) >= 2) {
        const unsigned long* len = mysql_fetch_lengths(res);
        out = row[1] ? std::string(row[1], len[1]) : std::string();
    }
    mysql_free_result(res);
    return out;
}

std::string_view view(const MARIADB_STRING& s) noexcept {
    return s.str ? std::string_view(s.str, s.length) : std::string_view();
}

std::string join(const std::map<std::uint32_t, Gtid>& position) {
    std::string out;
    for (const auto& [domain, g] : position) {
        if (!out.empty()) out += ',';
        out += g.to_string();
    }
    return out;
}

} // namespace

BinlogFollower::BinlogFollower(BinlogOptions options, std::function<void(BinlogChange)> on_change,
                               std::function<void(bool, std::string)> on_state)
    : options_(std::move(options)), on_change_(std::move(on_change)),
      on_state_(std::move(on_state)) {
    // A given start is a resume position: refused, it is reported as "everything changed",
    // and so is one that cannot be read.
    if (trim(options_.start_position).empty()) return;
    if (const auto list = parse_gtid_list(options_.start_position)) {
        for (const Gtid& g : *list)
            position_[g.domain] = g;
        have_position_ = true;
    } else {
        unknown_start_ = true;
    }
}

BinlogFollower::~BinlogFollower() { stop(); }

void BinlogFollower::start() {
    // mysql_init() initializes the library on first use, which is not thread-safe.
    static std::once_flag library;
    std::call_once(library, [] { mysql_library_init(0, nullptr, nullptr); });
    thread_ = std::thread([this] { run(); });
}

void BinlogFollower::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        // Wakes the blocking read at once; the follower thread closes the connection. Under
        // the lock, so the descriptor cannot be closed and reused meanwhile.
        if (socket_ >= 0) ::shutdown(socket_, SHUT_RDWR);
    }
    wake_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

bool BinlogFollower::stopping() const {
    std::lock_guard lock(mu_);
    return stopping_;
}

std::string BinlogFollower::position() const {
    std::lock_guard lock(mu_);
    return have_position_ ? join(position_) : std::string();
}

std::string BinlogFollower::binlog_format() const {
    std::lock_guard lock(mu_);
    return binlog_format_;
}

void BinlogFollower::set_state(bool up, const std::string& why) {
    if (up_ == up) return;
    up_ = up;
    if (on_state_) on_state_(up, why);
}

void BinlogFollower::deliver(BinlogChange change) {
    if (const auto g = parse_gtid(change.gtid)) {
        std::lock_guard lock(mu_);
        position_[g->domain] = *g;
    }
    if (change.tables.empty() && !change.all) return; // nothing to invalidate
    if (change.timestamp != 0) {
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        lag_.store(std::max(0.0, static_cast<double>(now) - change.timestamp),
                   std::memory_order_relaxed);
    }
    changes_.fetch_add(1, std::memory_order_relaxed);
    if (on_change_) on_change_(std::move(change));
}

void BinlogFollower::run() {
    while (!stopping()) {
        const std::string why = stream();
        assembler_.reset(); // a group cut short is read again from its GTID
        if (stopping()) break;
        set_state(false, why);
        std::unique_lock lock(mu_);
        wake_.wait_for(lock, options_.reconnect_delay, [this] { return stopping_; });
    }
}

std::string BinlogFollower::stream() {
    const std::string where = options_.host + ':' + std::to_string(options_.port);
    if (options_.server_id == 0) return "server_id 0 cannot follow a binlog";
    MysqlPtr m{mysql_init(nullptr)};
    if (!m) return "out of memory";
    const unsigned connect_timeout =
        static_cast<unsigned>(std::max<std::int64_t>(1, options_.connect_timeout.count()));
    // Heartbeats keep an idle stream talking: a read that waits four periods for nothing
    // means the primary or the path to it is gone.
    const auto period_ms = std::max<std::int64_t>(1, options_.heartbeat_period.count());
    const unsigned read_timeout =
        static_cast<unsigned>(std::max<std::int64_t>(2, (4 * period_ms + 999) / 1000));
    mysql_options(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(m.get(), MYSQL_OPT_READ_TIMEOUT, &read_timeout);
    mysql_options(m.get(), MYSQL_OPT_WRITE_TIMEOUT, &read_timeout);
    if (!mysql_real_connect(m.get(), options_.host.c_str(), options_.user.c_str(),
                            options_.password.c_str(), nullptr, options_.port, nullptr, 0))
        return "connect to " + where + ": " + error_of(m.get());

    bool resuming = false;
    std::string state;
    {
        std::lock_guard lock(mu_);
        if (stopping_) return "stopped";
        socket_ = static_cast<int>(mysql_get_socket(m.get()));
        resuming = have_position_;
        state = join(position_);
    }
    // Declared after `m`: the socket is withdrawn from stop() before the connection closes.
    struct Withdraw {
        BinlogFollower& self;
        ~Withdraw() {
            std::lock_guard lock(self.mu_);
            self.socket_ = -1;
        }
    } withdraw{*this};
    connects_.fetch_add(1, std::memory_order_relaxed);

    if (!resuming) {
        // The first stream starts at the current end of the binlog: no history. A transaction
        // committed between this query and the dump is after the position, so it is sent.
        const auto pos = global_variable(m.get(), "gtid_binlog_pos");
        if (!pos) return "read @@gtid_binlog_pos on " + where + ": " + error_of(m.get());
        const auto list = parse_gtid_list(*pos);
        if (!list) return "unreadable @@gtid_binlog_pos on " + where + ": '" + *pos + "'";
        std::lock_guard lock(mu_);
        position_.clear();
        for (const Gtid& g : *list)
            position_[g.domain] = g;
        have_position_ = true;
        state = join(position_);
    }
    if (unknown_start_) {
        unknown_start_ = false;
        BinlogChange everything;
        everything.all = true;
        deliver(std::move(everything));
    }

    const auto format = global_variable(m.get(), "binlog_format");
    if (!format) return "read @@binlog_format on " + where + ": " + error_of(m.get());
    {
        std::lock_guard lock(mu_);
        binlog_format_ = *format;
    }

    // The dump's parameters are user variables of the session (sql/sql_repl.cc): checksums
    // as the binlog has them (libmariadb strips or checks them by the FORMAT_DESCRIPTION
    // event, and expects this setting for the artificial ROTATE it gets first), GTID events
    // rather than their pre-GTID stand-ins, the start position, and heartbeats (ns).
    const auto heartbeat_ns = static_cast<std::int64_t>(period_ms) * 1'000'000;
    for (const std::string& sql :
         {std::string("SET @master_binlog_checksum = @@GLOBAL.binlog_checksum"),
          std::string("SET @mariadb_slave_capability = 4"), // MARIA_SLAVE_CAPABILITY_GTID
          "SET @slave_connect_state = '" + state + "'",     // digits, '-' and ',' only
          "SET @master_heartbeat_period = " + std::to_string(heartbeat_ns)}) {
        if (mysql_real_query(m.get(), sql.data(), sql.size()) != 0)
            return "prepare the binlog dump on " + where + ": " + error_of(m.get());
    }

    RplPtr rpl{mariadb_rpl_init(m.get())};
    if (!rpl) return "mariadb_rpl_init: " + error_of(m.get());
    mariadb_rpl_optionsv(rpl.get(), MARIADB_RPL_SERVER_ID,
                         static_cast<unsigned>(options_.server_id));
    // Ignored by the primary once @slave_connect_state is set; 4 is the first event's offset.
    mariadb_rpl_optionsv(rpl.get(), MARIADB_RPL_START, static_cast<unsigned long>(4));
    // log_bin_compress: a compressed QUERY event's text is needed to name its tables.
    mariadb_rpl_optionsv(rpl.get(), MARIADB_RPL_UNCOMPRESS, 1u);
    if (mariadb_rpl_open(rpl.get()) != 0)
        return "binlog dump on " + where + ": " + error_of(m.get());

    for (;;) {
        // A new event each time: libmariadb frees an event it was handed back when a fetch
        // fails, which would leave a reused one dangling.
        EventPtr ev{mariadb_rpl_fetch(rpl.get(), nullptr)};
        if (!ev) {
            if (stopping()) return "stopped";
            std::string why = error_of(m.get());
            if (mysql_errno(m.get()) == 0 && mariadb_rpl_errno(rpl.get()) != 0)
                why = std::to_string(mariadb_rpl_errno(rpl.get())) + ": " +
                      mariadb_rpl_error(rpl.get());
            if (mysql_errno(m.get()) == ER_MASTER_FATAL_ERROR_READING_BINLOG) {
                // The primary cannot send from our position: its binlogs were purged past
                // it, or it lost transactions we had (a crash without sync_binlog). Whatever
                // happened in between is unknown; start over at its current position.
                {
                    std::lock_guard lock(mu_);
                    have_position_ = false;
                }
                if (resuming) {
                    BinlogChange everything;
                    everything.all = true;
                    deliver(std::move(everything));
                }
                return "binlog position " + state + " refused by " + where + " (" + why +
                       "); restarting at its current position";
            }
            return "binlog stream from " + where + ": " + why;
        }
        events_.fetch_add(1, std::memory_order_relaxed);
        set_state(true, "following the binlog of " + where + " from " + state +
                            " (binlog_format=" + *format + ")");

        std::optional<BinlogChange> change;
        switch (ev->event_type) {
        case GTID_EVENT:
            change = assembler_.gtid(
                Gtid{ev->event.gtid.domain_id, ev->server_id, ev->event.gtid.sequence_nr},
                ev->event.gtid.flags, ev->timestamp);
            break;
        case TABLE_MAP_EVENT:
            assembler_.table_map(view(ev->event.table_map.database),
                                 view(ev->event.table_map.table));
            break;
        case QUERY_EVENT:
        case QUERY_COMPRESSED_EVENT: {
            const MARIADB_STRING& status = ev->event.query.status;
            const std::uint64_t mode =
                query_event_sql_mode({reinterpret_cast<const std::uint8_t*>(status.str),
                                      status.str ? status.length : 0});
            change = assembler_.query(view(ev->event.query.database),
                                      view(ev->event.query.statement), mode, ev->timestamp);
            break;
        }
        case XID_EVENT:
        case XA_PREPARE_LOG_EVENT:
            change = assembler_.commit(ev->timestamp);
            break;
        case HEARTBEAT_LOG_EVENT:
            change = assembler_.idle();
            break;
        default:
            // ROTATE, FORMAT_DESCRIPTION, GTID_LIST, BINLOG_CHECKPOINT, ANNOTATE_ROWS, rows
            // (their tables came with TABLE_MAP), INTVAR/RAND/USER_VAR, STOP: nothing to do.
            break;
        }
        if (change) deliver(std::move(*change));
    }
}

} // namespace sluice::cache
