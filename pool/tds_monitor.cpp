// The SQL Server monitor (see sluice/pool/tds_monitor.hpp). db-lib is blocking: each backend
// has a thread of its own, so one that hangs delays only its own probe; db-lib's login and
// query timeouts bound each call.
#include "sluice/pool/tds_monitor.hpp"

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <spdlog/spdlog.h>
#include <sybdb.h>
#include <sys/stat.h>
#include <thread>

namespace sluice::pool {

using clock = std::chrono::steady_clock;

namespace {

constexpr auto never_half_open = std::chrono::hours(24 * 365);

bool is_digits(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// db-lib reports through process-wide handlers; each probe thread keeps its own last error.
thread_local std::string last_dblib_error;

int on_dblib_error(DBPROCESS*, int, int dberr, int, char* dberrstr, char* oserrstr) {
    last_dblib_error = dberrstr != nullptr ? dberrstr : "db-lib error " + std::to_string(dberr);
    if (oserrstr != nullptr && *oserrstr != '\0')
        last_dblib_error += std::string(" (") + oserrstr + ")";
    return INT_CANCEL;
}

int on_dblib_message(DBPROCESS*, DBINT msgno, int, int severity, char* msgtext, char*, char*, int) {
    // Informational messages (database context, language) are not errors.
    if (severity > 10)
        last_dblib_error =
            "server error " + std::to_string(msgno) + ": " + (msgtext ? msgtext : "");
    return 0;
}

std::once_flag dblib_once;
bool dblib_ok = false;

} // namespace

std::string_view tds_probe_query() noexcept {
    // MAX() over the local row keeps it one row, NULLs outside an availability group. The
    // LSN is numeric(25,0): as text, so no client-side numeric conversion is needed.
    return "SELECT @@SERVERNAME AS server_name, "
           "CAST(DATABASEPROPERTYEX(DB_NAME(), 'Updateability') AS nvarchar(20)) AS updateability, "
           "(SELECT MAX(CAST(is_primary_replica AS int)) FROM sys.dm_hadr_database_replica_states "
           "WHERE is_local = 1 AND database_id = DB_ID()) AS is_primary_replica, "
           "(SELECT MAX(secondary_lag_seconds) FROM sys.dm_hadr_database_replica_states "
           "WHERE is_local = 1 AND database_id = DB_ID()) AS secondary_lag_seconds, "
           "(SELECT CAST(MAX(last_commit_lsn) AS nvarchar(40)) FROM "
           "sys.dm_hadr_database_replica_states WHERE is_local = 1 AND database_id = DB_ID()) "
           "AS last_commit_lsn, "
           "(SELECT CAST(MAX(last_redone_lsn) AS nvarchar(40)) FROM "
           "sys.dm_hadr_database_replica_states WHERE is_local = 1 AND database_id = DB_ID()) "
           "AS last_redone_lsn, "
           "(SELECT MAX(synchronization_state_desc) FROM sys.dm_hadr_database_replica_states "
           "WHERE is_local = 1 AND database_id = DB_ID()) AS synchronization_state";
}

int compare_lsn(std::string_view a, std::string_view b) noexcept {
    const bool da = is_digits(a), db = is_digits(b);
    if (!da || !db) return da == db ? 0 : (da ? 1 : -1);
    while (a.size() > 1 && a.front() == '0')
        a.remove_prefix(1);
    while (b.size() > 1 && b.front() == '0')
        b.remove_prefix(1);
    if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
    const int c = a.compare(b);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

ProbeResult tds_probe_result(const TdsProbeRow& row) {
    ProbeResult r;
    r.reachable = true;
    const bool in_group = row.is_primary_replica.has_value();
    const bool primary_replica = in_group && *row.is_primary_replica == "1";
    r.read_only =
        (row.updateability && *row.updateability == "READ_ONLY") || (in_group && !primary_replica);
    if (in_group) {
        const auto& lsn = primary_replica ? row.last_commit_lsn : row.last_redone_lsn;
        if (lsn) r.gtid_position = *lsn;
    }
    if (in_group && !primary_replica) {
        ReplicationStatus rs;
        const std::string state = row.synchronization_state.value_or("");
        rs.io_running = rs.sql_running = state == "SYNCHRONIZING" || state == "SYNCHRONIZED";
        if (row.secondary_lag_seconds) {
            std::int64_t v = 0;
            const auto& s = *row.secondary_lag_seconds;
            const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
            if (ec == std::errc{} && end == s.data() + s.size()) rs.seconds_behind = v;
        }
        r.replication = rs;
    }
    return r;
}

struct TdsMonitor::State {
    MonitorOptions options;
    std::vector<MonitoredBackend> backends;
    Monitor::Publish publish;
    std::string conf_path;
    std::mutex mutex; // guards everything below and the topology built from it
    std::vector<BackendHealth> health;
    std::vector<bool> probed;
    std::size_t unprobed = 0;
    HeartbeatLog no_heartbeats;
    std::uint64_t version = 0;
    std::optional<std::size_t> configured_primary, writer, last_writer;
    std::atomic<std::uint64_t> failovers{0};
    std::shared_ptr<const Topology> latest;
    std::condition_variable wake;
    bool stopping = false;
    std::vector<std::thread> threads;

    void loop(std::size_t i);
    ProbeResult probe(std::size_t i, DBPROCESS*& conn);
    void on_result(std::size_t i, ProbeResult r);
    void publish_snapshot();
};

ProbeResult TdsMonitor::State::probe(std::size_t i, DBPROCESS*& conn) {
    const MonitoredBackend& b = backends[i];
    ProbeResult r;
    auto fail = [&](std::string what) {
        r.reachable = false;
        r.error = std::move(what) + (last_dblib_error.empty() ? "" : ": " + last_dblib_error);
        r.at = clock::now();
        if (conn != nullptr) {
            dbclose(conn);
            conn = nullptr;
        }
        return r;
    };
    last_dblib_error.clear();
    if (conn == nullptr) {
        LOGINREC* login = dblogin();
        if (login == nullptr) return fail("dblogin");
        DBSETLUSER(login, options.user.c_str());
        DBSETLPWD(login, options.password.c_str());
        DBSETLAPP(login, "sluice-monitor");
        dbsetlversion(login, DBVERSION_74);
        // The section of the monitor's freetds.conf named after the backend.
        conn = dbopen(login, b.name.c_str());
        dbloginfree(login);
        if (conn == nullptr) return fail("connect");
    }
    auto run = [&](std::string_view sql, std::vector<std::optional<std::string>>* row) {
        if (dbcmd(conn, std::string(sql).c_str()) == FAIL || dbsqlexec(conn) == FAIL) return false;
        bool got = false;
        RETCODE rc;
        while ((rc = dbresults(conn)) != NO_MORE_RESULTS) {
            if (rc == FAIL) return false;
            const int cols = dbnumcols(conn);
            STATUS s;
            while ((s = dbnextrow(conn)) != NO_MORE_ROWS) {
                if (s == FAIL) return false;
                if (row == nullptr || got) continue;
                got = true;
                for (int c = 1; c <= cols; ++c) {
                    BYTE* data = dbdata(conn, c);
                    const DBINT len = dbdatlen(conn, c);
                    if (data == nullptr && len == 0) {
                        row->emplace_back();
                        continue;
                    }
                    char buf[128];
                    const DBINT n = dbconvert(conn, dbcoltype(conn, c), data, len, SYBCHAR,
                                              reinterpret_cast<BYTE*>(buf), sizeof buf - 1);
                    if (n < 0) return false;
                    std::string v(buf, static_cast<std::size_t>(n));
                    while (!v.empty() && v.back() == ' ')
                        v.pop_back();
                    row->emplace_back(std::move(v));
                }
            }
        }
        return row == nullptr || got;
    };
    const auto sent = clock::now();
    if (!run("SELECT 1", nullptr)) return fail("round trip");
    r.rtt = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - sent);
    std::vector<std::optional<std::string>> row;
    if (!run(tds_probe_query(), &row) || row.size() < 7) return fail("probe query");
    TdsProbeRow p{row[0], row[1], row[2], row[3], row[4], row[5], row[6]};
    ProbeResult found = tds_probe_result(p);
    found.rtt = r.rtt;
    found.at = clock::now();
    return found;
}

void TdsMonitor::State::loop(std::size_t i) {
    DBPROCESS* conn = nullptr;
    for (;;) {
        const auto started = clock::now();
        ProbeResult r = probe(i, conn);
        std::unique_lock lock(mutex);
        if (stopping) break;
        on_result(i, std::move(r));
        wake.wait_until(lock, started + options.interval, [&] { return stopping; });
        if (stopping) break;
    }
    if (conn != nullptr) dbclose(conn);
}

void TdsMonitor::State::on_result(std::size_t i, ProbeResult r) {
    const bool changed = record_probe(health[i], std::move(r), no_heartbeats);
    if (changed) {
        if (health[i].breaker.state(clock::now()) == Breaker::State::closed)
            spdlog::info("tds monitor: backend {} is up again", backends[i].name);
        else
            spdlog::warn("tds monitor: backend {} is down after {} failed probes ({}): out of "
                         "rotation",
                         backends[i].name, health[i].breaker.failures(), health[i].last_error);
    }
    if (!probed[i]) {
        probed[i] = true;
        --unprobed;
    }
    if (unprobed == 0) publish_snapshot();
}

void TdsMonitor::State::publish_snapshot() {
    const auto now = clock::now();
    auto t = std::make_shared<Topology>();
    t->version = ++version;
    const auto found = discover_writer(health, configured_primary, writer, now);
    if (found != writer) {
        if (found && last_writer && *found != *last_writer) {
            spdlog::warn("tds monitor: the primary is now {} (was {}): writes go there",
                         backends[*found].name, backends[*last_writer].name);
            failovers.fetch_add(1, std::memory_order_relaxed);
        } else if (found) {
            spdlog::info("tds monitor: the primary is {}", backends[*found].name);
        } else {
            spdlog::warn("tds monitor: no SQL Server backend takes writes: writes and logins "
                         "wait for one");
        }
        writer = found;
        if (found) last_writer = found;
    }
    t->primary = writer;
    for (std::size_t i = 0; i < backends.size(); ++i) {
        const Role role = writer == i ? Role::primary : Role::replica;
        t->backends.push_back(
            backend_state(role, backends[i].zone, backends[i].weight, health[i], now));
    }
    latest = t;
    publish(std::move(t));
}

TdsMonitor::TdsMonitor(MonitorOptions options, std::vector<MonitoredBackend> backends,
                       Monitor::Publish publish, std::string freetds_conf_dir)
    : state_(std::make_unique<State>()) {
    State& s = *state_;
    s.options = std::move(options);
    s.backends = std::move(backends);
    s.publish = std::move(publish);
    const Breaker::Options breaker{.failures_to_open = s.options.failures_to_open,
                                   .open_for = never_half_open};
    BackendHealth initial;
    initial.breaker = Breaker(breaker);
    s.health.assign(s.backends.size(), initial);
    s.probed.assign(s.backends.size(), false);
    s.unprobed = s.backends.size();
    for (std::size_t i = 0; i < s.backends.size(); ++i)
        if (s.backends[i].role == Role::primary) s.configured_primary = i;
    // FreeTDS takes a server's address and encryption from freetds.conf: one section per
    // backend, in a file of Sluice's own (no password in it).
    s.conf_path = freetds_conf_dir + "/freetds.conf";
    std::ofstream conf(s.conf_path, std::ios::trunc);
    const int secs = static_cast<int>((s.options.timeout.count() + 999) / 1000);
    conf << "# written by Sluice for its SQL Server monitor\n[global]\n"
         << "\ttds version = 7.4\n\tclient charset = UTF-8\n";
    for (const auto& b : s.backends) {
        conf << "[" << b.name << "]\n\thost = " << b.host << "\n\tport = " << b.port << "\n"
             << "\tencryption = " << (b.tls ? "require" : "off") << "\n"
             << "\tconnect timeout = " << secs << "\n\ttimeout = " << secs << "\n";
        if (b.tls && !b.ca_file.empty()) conf << "\tca file = " << b.ca_file << "\n";
    }
    conf.close();
    ::chmod(s.conf_path.c_str(), 0600);
}

TdsMonitor::~TdsMonitor() { stop(); }

void TdsMonitor::start() {
    State& s = *state_;
    std::call_once(dblib_once, [&] {
        // FreeTDS reads FREETDSCONF once, at its first connect.
        ::setenv("FREETDSCONF", s.conf_path.c_str(), 1);
        dblib_ok = dbinit() == SUCCEED;
        if (dblib_ok) {
            dberrhandle(on_dblib_error);
            dbmsghandle(on_dblib_message);
        }
    });
    if (!dblib_ok) throw std::runtime_error("FreeTDS db-lib could not be initialised");
    for (std::size_t i = 0; i < s.backends.size(); ++i)
        s.threads.emplace_back([&s, i] { s.loop(i); });
}

void TdsMonitor::stop() {
    if (!state_) return;
    {
        std::lock_guard lock(state_->mutex);
        if (state_->stopping) return;
        state_->stopping = true;
    }
    state_->wake.notify_all();
    for (auto& t : state_->threads)
        if (t.joinable()) t.join();
}

std::shared_ptr<const Topology> TdsMonitor::latest() const {
    std::lock_guard lock(state_->mutex);
    return state_->latest;
}

std::uint64_t TdsMonitor::failovers() const noexcept {
    return state_->failovers.load(std::memory_order_relaxed);
}

} // namespace sluice::pool
