#include "sluice/config/config.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace {

using namespace sluice::config;
namespace fs = std::filesystem;

// Valid sections that tests append after the part they are about, so line numbers in the
// expected messages count from the start of each test's own text.
const std::string listener = "[[listeners]]\nname = \"l\"\n";
const std::string backend = "[[backends]]\nname = \"p\"\nhost = \"db\"\nrole = \"primary\"\n";
const std::string user = "[[users]]\nname = \"u\"\npassword = \"pw\"\n";
const std::string minimal = listener + backend + user;

Config load(const std::string& text) { return load_string(text, "t.toml"); }

/// The message load_string throws, or "(no error)".
std::string error_of(const std::string& text) {
    try {
        load(text);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

/// A fresh directory under the system temp directory, removed with everything in it.
class TempDir {
public:
    TempDir() {
        static int counter = 0;
        path_ = fs::temp_directory_path() / ("sluice_config_test_" + std::to_string(::getpid()) +
                                             "_" + std::to_string(counter++));
        fs::create_directories(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    /// Writes `content` to `name` in the directory; returns the full path.
    std::string write(const std::string& name, const std::string& content = "x\n") const {
        const fs::path file = path_ / name;
        std::ofstream(file) << content;
        return file.string();
    }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

} // namespace

TEST_CASE("the sample configuration loads and validates", "[config]") {
    const std::string path = SLUICE_SOURCE_DIR "/sluice.example.toml";
    const Config cfg = load_file(path);
    CHECK(cfg.source == path);
    CHECK(cfg.workers == 0);
    CHECK(cfg.server_version.empty());
    CHECK(cfg.max_packet_size == 67108864);
    CHECK(cfg.connect_timeout == std::chrono::milliseconds(3000));
    CHECK(cfg.client_handshake_timeout == std::chrono::milliseconds(10000));
    CHECK(cfg.shutdown_grace == std::chrono::milliseconds(10000));
    REQUIRE(cfg.listeners.size() == 2);
    CHECK(cfg.listeners[1].protocol == "tds");
    CHECK(cfg.listeners[1].port == 11433);
    CHECK(cfg.tds_backends.size() == 3);
    CHECK(cfg.tds_monitor.enabled);
    CHECK(cfg.listeners[0].name == "mysql");
    CHECK(cfg.listeners[0].protocol == "mysql");
    CHECK(cfg.listeners[0].address == "127.0.0.1");
    CHECK(cfg.listeners[0].port == 6033);
    CHECK(cfg.listeners[0].max_connections == 10000);
    CHECK(cfg.listeners[0].auth_plugin == "mysql_native_password");
    CHECK_FALSE(cfg.listeners[0].require_tls);
    CHECK_FALSE(cfg.listeners[0].tls.enabled());
    REQUIRE(cfg.backends.size() == 3);
    CHECK(cfg.backends[1].name == "replica1");
    CHECK(cfg.backends[1].port == 3308);
    CHECK(cfg.backends[1].role == BackendRole::replica);
    CHECK(cfg.backends[2].zone == "b");
    CHECK(cfg.primary().name == "primary");
    CHECK(cfg.primary().port == 3307);
    REQUIRE(cfg.users.size() == 1);
    REQUIRE(cfg.find_user("app") != nullptr);
    CHECK(cfg.find_user("app")->password == "app");
    CHECK(cfg.admin.address == "127.0.0.1");
    CHECK(cfg.admin.port == 6090);
    CHECK(cfg.admin.enabled);
    CHECK(cfg.logging.level == "info");
}

TEST_CASE("omitted keys take their defaults", "[config]") {
    const Config cfg = load(minimal);
    CHECK(cfg.source == "t.toml");
    CHECK(cfg.workers == 0);
    CHECK(cfg.server_version.empty());
    CHECK(cfg.max_packet_size == 64 * 1024 * 1024);
    CHECK(cfg.connect_timeout == std::chrono::milliseconds(3000));
    CHECK(cfg.client_handshake_timeout == std::chrono::milliseconds(10000));
    CHECK(cfg.shutdown_grace == std::chrono::milliseconds(10000));
    REQUIRE(cfg.listeners.size() == 1);
    const Listener& l = cfg.listeners[0];
    CHECK(l.protocol == "mysql");
    CHECK(l.address == "127.0.0.1");
    CHECK(l.port == 6033);
    CHECK(l.max_connections == 10000);
    CHECK(l.auth_plugin == "mysql_native_password");
    CHECK_FALSE(l.require_tls);
    CHECK(l.tls.cert_file.empty());
    CHECK(l.tls.key_file.empty());
    CHECK(l.tls.ca_file.empty());
    REQUIRE(cfg.backends.size() == 1);
    const Backend& b = cfg.backends[0];
    CHECK(b.port == 3306);
    CHECK(b.zone.empty());
    CHECK(b.weight == 1);
    CHECK_FALSE(b.tls);
    CHECK(cfg.backend_tls.ca_file.empty());
    CHECK(cfg.backend_tls.cert_file.empty());
    CHECK(cfg.backend_tls.key_file.empty());
    CHECK_FALSE(cfg.backend_tls.verify_hostname);
    CHECK(cfg.admin.address == "127.0.0.1");
    CHECK(cfg.admin.port == 6090);
    CHECK(cfg.admin.enabled);
    CHECK(cfg.logging.level == "info");
}

TEST_CASE("a backend without a role is a replica", "[config]") {
    const Config cfg = load(listener + backend + user + R"([[backends]]
name = "r"
host = "db2"
)");
    REQUIRE(cfg.backends.size() == 2);
    CHECK(cfg.backends[1].role == BackendRole::replica);
    CHECK(&cfg.primary() == &cfg.backends[0]);
}

TEST_CASE("every key is read into the model", "[config]") {
    const Config cfg = load(R"(workers = 8
server_version = "8.0.36-sluice"
max_packet_size = 1048576
connect_timeout_ms = 500
client_handshake_timeout_ms = 2000
shutdown_grace_ms = 30000
[[listeners]]
name = "front"
protocol = "mysql"
address = "0.0.0.0"
port = 3306
max_connections = 42
auth_plugin = "caching_sha2_password"
[[backends]]
name = "r1"
host = "10.0.0.2"
port = 3310
role = "replica"
zone = "east"
weight = 5
tls = true
[[backends]]
name = "p"
host = "10.0.0.1"
role = "primary"
[backend_tls]
[[users]]
name = "a"
password = ""
[[users]]
name = "b"
password = "bee"
[admin]
address = "::1"
port = 9000
enabled = false
[logging]
level = "debug"
)");
    CHECK(cfg.workers == 8);
    CHECK(cfg.server_version == "8.0.36-sluice");
    CHECK(cfg.max_packet_size == 1048576);
    CHECK(cfg.connect_timeout == std::chrono::milliseconds(500));
    CHECK(cfg.client_handshake_timeout == std::chrono::milliseconds(2000));
    CHECK(cfg.shutdown_grace == std::chrono::milliseconds(30000));
    const Listener& l = cfg.listeners.at(0);
    CHECK(l.name == "front");
    CHECK(l.address == "0.0.0.0");
    CHECK(l.port == 3306);
    CHECK(l.max_connections == 42);
    CHECK(l.auth_plugin == "caching_sha2_password");
    const Backend& r = cfg.backends.at(0);
    CHECK(r.name == "r1");
    CHECK(r.host == "10.0.0.2");
    CHECK(r.port == 3310);
    CHECK(r.role == BackendRole::replica);
    CHECK(r.zone == "east");
    CHECK(r.weight == 5);
    CHECK(r.tls);
    CHECK(cfg.primary().name == "p");
    CHECK(cfg.find_user("a")->password.empty());
    CHECK(cfg.find_user("b")->password == "bee");
    CHECK(cfg.admin.address == "::1");
    CHECK(cfg.admin.port == 9000);
    CHECK_FALSE(cfg.admin.enabled);
    CHECK(cfg.logging.level == "debug");
}

TEST_CASE("find_user finds users by exact name only", "[config]") {
    const Config cfg = load(minimal);
    REQUIRE(cfg.find_user("u") != nullptr);
    CHECK(cfg.find_user("u")->name == "u");
    CHECK(cfg.find_user("U") == nullptr);
    CHECK(cfg.find_user("") == nullptr);
    CHECK(cfg.find_user("nobody") == nullptr);
}

TEST_CASE("a file that cannot be read is reported with its name", "[config]") {
    const TempDir dir;
    const std::string path = dir.file("missing.toml");
    CHECK_THROWS_WITH(load_file(path), path + ":1: (file): cannot read: No such file or directory");
}

TEST_CASE("TOML syntax errors carry the line and the parser's description", "[config]") {
    CHECK(error_of("workers = 1\n\nworkers = \n") ==
          "t.toml:3: (syntax): Error while parsing key-value pair: expected value, saw '\\n'");
    CHECK(error_of("workers = 1\nworkers = ") ==
          "t.toml:2: (syntax): Error while parsing key-value pair: encountered end-of-file");
    CHECK(error_of("workers = 1\nworkers = 2\n") ==
          "t.toml:2: (syntax): Error while parsing key-value pair: cannot redefine existing "
          "integer 'workers'");
}

TEST_CASE("syntax errors never quote the text of a password line", "[config]") {
    const std::string message = error_of(listener + "[[users]]\nname = \"u\"\n"
                                                    "password = 99999999999999999999\n");
    CHECK(message == "t.toml:5: (syntax): Error while parsing decimal integer: '(redacted)' is "
                     "not representable in 64 bits");
    CHECK(message.find("9999") == std::string::npos);
}

TEST_CASE("unknown keys are refused in every table", "[config]") {
    CHECK(error_of("worker = 4\n" + minimal) == "t.toml:1: worker: unknown key");
    CHECK(error_of(R"([[listeners]]
name = "l"
prot = 1
)" + backend + user) == "t.toml:3: listeners[0].prot: unknown key");
    CHECK(error_of(R"([[listeners]]
name = "l"
tls = { cert = "x" }
)" + backend + user) == "t.toml:3: listeners[0].tls.cert: unknown key");
    CHECK(error_of(listener + R"([[backends]]
name = "p"
host = "db"
role = "primary"
wieght = 2
)" + user) == "t.toml:7: backends[0].wieght: unknown key");
    CHECK(error_of(minimal + R"([backend_tls]
ca = "x"
)") == "t.toml:11: backend_tls.ca: unknown key");
    CHECK(error_of(minimal + R"([[users]]
name = "v"
pasword = "x"
)") == "t.toml:12: users[1].pasword: unknown key");
    CHECK(error_of(minimal + R"([admin]
enable = false
)") == "t.toml:11: admin.enable: unknown key");
    CHECK(error_of(minimal + R"([logging]
lvl = "info"
)") == "t.toml:11: logging.lvl: unknown key");
}

TEST_CASE("of several unknown keys the first in the file is reported", "[config]") {
    CHECK(error_of("zzz = 1\naaa = 2\n" + minimal) == "t.toml:1: zzz: unknown key");
}

TEST_CASE("an unknown key that is not a bare key is quoted", "[config]") {
    CHECK(error_of("\"my key\" = 1\n" + minimal) == "t.toml:1: \"my key\": unknown key");
}

TEST_CASE("values of the wrong type are refused", "[config]") {
    CHECK(error_of("workers = \"4\"\n" + minimal) == "t.toml:1: workers: expected an integer");
    CHECK(error_of("workers = 4.0\n" + minimal) == "t.toml:1: workers: expected an integer");
    CHECK(error_of("server_version = 8\n" + minimal) ==
          "t.toml:1: server_version: expected a string");
    CHECK(error_of(R"([[listeners]]
name = "l"
require_tls = "yes"
)" + backend + user) == "t.toml:3: listeners[0].require_tls: expected a boolean");
    CHECK(error_of(R"([[listeners]]
name = "l"
tls = "on"
)" + backend + user) == "t.toml:3: listeners[0].tls: expected a table");
    CHECK(error_of("admin = 5\n" + minimal) == "t.toml:1: admin: expected a table");
    CHECK(error_of("listeners = 5\n" + backend + user) ==
          "t.toml:1: listeners: expected an array of tables");
    CHECK(error_of("[listeners]\nname = \"l\"\n" + backend + user) ==
          "t.toml:1: listeners: expected an array of tables");
    CHECK(error_of("listeners = [{ name = \"l\" }, 2]\n" + backend + user) ==
          "t.toml:1: listeners[1]: expected a table");
    CHECK(error_of(listener + R"([[backends]]
name = "p"
host = "db"
role = "primary"
tls = 1
)" + user) == "t.toml:7: backends[0].tls: expected a boolean");
}

TEST_CASE("ports must be between 1 and 65535", "[config]") {
    const std::string range = "must be between 1 and 65535";
    CHECK(error_of("[[listeners]]\nname = \"l\"\nport = 0\n" + backend + user) ==
          "t.toml:3: listeners[0].port: " + range);
    CHECK(error_of("[[listeners]]\nname = \"l\"\nport = 65536\n" + backend + user) ==
          "t.toml:3: listeners[0].port: " + range);
    CHECK(error_of(listener + "[[backends]]\nname = \"p\"\nhost = \"db\"\nrole = \"primary\"\n" +
                   "port = -1\n" + user) == "t.toml:7: backends[0].port: " + range);
    CHECK(error_of(minimal + "[admin]\nport = 70000\n") == "t.toml:11: admin.port: " + range);
    CHECK(load("[[listeners]]\nname = \"l\"\nport = 65535\n" + backend + user).listeners[0].port ==
          65535);
    CHECK(load("[[listeners]]\nname = \"l\"\nport = 1\n" + backend + user).listeners[0].port == 1);
}

TEST_CASE("workers must be between 0 and 256", "[config]") {
    CHECK(error_of("workers = 257\n" + minimal) == "t.toml:1: workers: must be between 0 and 256");
    CHECK(error_of("workers = -1\n" + minimal) == "t.toml:1: workers: must be between 0 and 256");
    CHECK(load("workers = 256\n" + minimal).workers == 256);
}

TEST_CASE("max_packet_size must be between 1 KiB and 1 GiB", "[config]") {
    const std::string reason = "must be between 1024 and 1073741824";
    CHECK(error_of("max_packet_size = 1023\n" + minimal) == "t.toml:1: max_packet_size: " + reason);
    CHECK(error_of("max_packet_size = 1073741825\n" + minimal) ==
          "t.toml:1: max_packet_size: " + reason);
    CHECK(load("max_packet_size = 1024\n" + minimal).max_packet_size == 1024);
    CHECK(load("max_packet_size = 1073741824\n" + minimal).max_packet_size == 1073741824);
}

TEST_CASE("timeouts must be positive", "[config]") {
    const std::string reason = "must be between 1 and 86400000";
    CHECK(error_of("connect_timeout_ms = 0\n" + minimal) ==
          "t.toml:1: connect_timeout_ms: " + reason);
    CHECK(error_of("\nclient_handshake_timeout_ms = -5\n" + minimal) ==
          "t.toml:2: client_handshake_timeout_ms: " + reason);
    CHECK(error_of("shutdown_grace_ms = 0\n" + minimal) ==
          "t.toml:1: shutdown_grace_ms: " + reason);
    CHECK(error_of("shutdown_grace_ms = 86400001\n" + minimal) ==
          "t.toml:1: shutdown_grace_ms: " + reason);
    CHECK(load("connect_timeout_ms = 1\n" + minimal).connect_timeout ==
          std::chrono::milliseconds(1));
}

TEST_CASE("at least one listener is required", "[config]") {
    CHECK(error_of(backend + user) == "t.toml:1: listeners: at least one listener is required");
    CHECK(error_of("workers = 1\nlisteners = []\n" + backend + user) ==
          "t.toml:2: listeners: at least one listener is required");
}

TEST_CASE("listener names are required, non-empty and unique", "[config]") {
    CHECK(error_of("[[listeners]]\nport = 1\n" + backend + user) ==
          "t.toml:1: listeners[0].name: is required");
    CHECK(error_of("[[listeners]]\nname = \"\"\n" + backend + user) ==
          "t.toml:2: listeners[0].name: must not be empty");
    CHECK(error_of(R"([[listeners]]
name = "a"
port = 1
[[listeners]]
name = "a"
port = 2
)" + backend + user) == "t.toml:5: listeners[1].name: name \"a\" is already used by listeners[0]");
}

TEST_CASE("the listener protocol must be mysql or tds", "[config]") {
    CHECK(error_of("[[listeners]]\nname = \"l\"\nprotocol = \"pgsql\"\n" + backend + user) ==
          "t.toml:3: listeners[0].protocol: must be \"mysql\" or \"tds\"");
}

TEST_CASE("the auth plugin must be one Sluice speaks", "[config]") {
    CHECK(error_of("[[listeners]]\nname = \"l\"\nauth_plugin = \"sha256_password\"\n" + backend +
                   user) == "t.toml:3: listeners[0].auth_plugin: must be one of "
                            "mysql_native_password, caching_sha2_password");
    CHECK(load("[[listeners]]\nname = \"l\"\nauth_plugin = \"caching_sha2_password\"\n" + backend +
               user)
              .listeners[0]
              .auth_plugin == "caching_sha2_password");
}

TEST_CASE("listener addresses must be IP addresses", "[config]") {
    CHECK(error_of("[[listeners]]\nname = \"l\"\naddress = \"localhost\"\n" + backend + user) ==
          "t.toml:3: listeners[0].address: must be an IPv4 or IPv6 address");
    CHECK(error_of(minimal + "[admin]\naddress = \"\"\n") ==
          "t.toml:11: admin.address: must be an IPv4 or IPv6 address");
    CHECK(load("[[listeners]]\nname = \"l\"\naddress = \"fe80::1%lo\"\n" + backend + user)
              .listeners[0]
              .address == "fe80::1%lo");
}

TEST_CASE("listener tls needs both cert_file and key_file", "[config]") {
    const TempDir dir;
    const std::string cert = dir.write("server.pem");
    const std::string key = dir.write("server.key");
    CHECK(error_of("[[listeners]]\nname = \"l\"\ntls = { cert_file = \"" + cert + "\" }\n" +
                   backend + user) ==
          "t.toml:3: listeners[0].tls.key_file: is required when cert_file is set");
    CHECK(error_of("[[listeners]]\nname = \"l\"\n[listeners.tls]\nkey_file = \"" + key + "\"\n" +
                   backend + user) ==
          "t.toml:3: listeners[0].tls.cert_file: is required when key_file is set");
    CHECK(error_of("[[listeners]]\nname = \"l\"\ntls = { ca_file = \"" + cert + "\" }\n" + backend +
                   user) == "t.toml:3: listeners[0].tls.ca_file: requires cert_file "
                            "and key_file");
    CHECK(error_of("[[listeners]]\nname = \"l\"\ntls = { cert_file = \"\", key_file = \"\" }\n" +
                   backend + user) == "t.toml:3: listeners[0].tls.cert_file: must not be empty");
    const Config cfg =
        load("[[listeners]]\nname = \"l\"\ntls = { cert_file = \"" + cert + "\", key_file = \"" +
             key + "\", ca_file = \"" + cert + "\" }\n" + backend + user);
    CHECK(cfg.listeners[0].tls.enabled());
    CHECK(cfg.listeners[0].tls.cert_file == cert);
    CHECK(cfg.listeners[0].tls.key_file == key);
    CHECK(cfg.listeners[0].tls.ca_file == cert);
}

TEST_CASE("require_tls needs tls", "[config]") {
    CHECK(error_of("[[listeners]]\nname = \"l\"\nrequire_tls = true\n" + backend + user) ==
          "t.toml:3: listeners[0].require_tls: requires tls (cert_file and key_file)");
    const TempDir dir;
    const std::string cert = dir.write("server.pem");
    const std::string key = dir.write("server.key");
    const std::string tls = "tls = { cert_file = \"" + cert + "\", key_file = \"" + key + "\" }\n";
    const Config cfg =
        load("[[listeners]]\nname = \"l\"\nrequire_tls = true\n" + tls + backend + user);
    CHECK(cfg.listeners[0].require_tls);
}

TEST_CASE("tls files must exist and be readable", "[config]") {
    const TempDir dir;
    const std::string cert = dir.write("server.pem");
    const std::string missing = dir.file("nope.key");
    CHECK(error_of("[[listeners]]\nname = \"l\"\ntls = { cert_file = \"" + cert +
                   "\", key_file = \"" + missing + "\" }\n" + backend + user) ==
          "t.toml:3: listeners[0].tls.key_file: cannot read \"" + missing +
              "\": No such file or directory");
    CHECK(error_of(minimal + "[backend_tls]\nca_file = \"" + missing + "\"\n") ==
          "t.toml:11: backend_tls.ca_file: cannot read \"" + missing +
              "\": No such file or directory");
    const std::string subdir = dir.file("");
    CHECK(error_of(minimal + "[backend_tls]\nca_file = \"" + subdir + "\"\n") ==
          "t.toml:11: backend_tls.ca_file: cannot read \"" + subdir + "\": not a regular file");
}

TEST_CASE("relative tls file names are resolved against the config file's directory", "[config]") {
    const TempDir dir;
    const std::string cert = dir.write("server.pem");
    const std::string key = dir.write("server.key");
    const std::string text = "[[listeners]]\nname = \"l\"\n"
                             "tls = { cert_file = \"server.pem\", key_file = \"server.key\" }\n";
    const std::string path = dir.write("sluice.toml", text + backend + user);
    const Config cfg = load_file(path);
    CHECK(cfg.listeners[0].tls.cert_file == cert);
    CHECK(cfg.listeners[0].tls.key_file == key);
}

TEST_CASE("two listeners on the same address and port are refused", "[config]") {
    CHECK(error_of(R"([[listeners]]
name = "a"
[[listeners]]
name = "b"
address = "127.0.0.1"
port = 6033
)" + backend + user) ==
          "t.toml:6: listeners[1].port: 127.0.0.1:6033 is already used by listeners[0]");
    CHECK(error_of(R"([[listeners]]
name = "a"
address = "::1"
port = 7000
[[listeners]]
name = "b"
address = "0:0:0:0:0:0:0:1"
port = 7000
)" + backend + user) == "t.toml:8: listeners[1].port: [0:0:0:0:0:0:0:1]:7000 is already used "
                        "by listeners[0]");
    const Config cfg = load(R"([[listeners]]
name = "a"
[[listeners]]
name = "b"
port = 6034
[[listeners]]
name = "c"
address = "0.0.0.0"
)" + backend + user);
    CHECK(cfg.listeners.size() == 3);
}

TEST_CASE("a listener on the admin endpoint is refused while admin is enabled", "[config]") {
    CHECK(error_of("[[listeners]]\nname = \"l\"\nport = 6090\n" + backend + user) ==
          "t.toml:3: listeners[0].port: 127.0.0.1:6090 is already used by admin");
    CHECK(load("[[listeners]]\nname = \"l\"\nport = 6090\n" + backend + user +
               "[admin]\nenabled = false\n")
              .listeners[0]
              .port == 6090);
}

TEST_CASE("at least one backend is required", "[config]") {
    CHECK(error_of(listener + user) == "t.toml:1: backends: at least one backend is required");
    CHECK(error_of("backends = []\n" + listener + user) ==
          "t.toml:1: backends: at least one backend is required");
}

TEST_CASE("exactly one backend is the primary", "[config]") {
    CHECK(error_of(listener + "[[backends]]\nname = \"r\"\nhost = \"db\"\nrole = \"replica\"\n" +
                   user) == "t.toml:3: backends: one backend must have role \"primary\"");
    CHECK(error_of(listener + backend + R"([[backends]]
name = "q"
host = "db2"
role = "primary"
)" + user) == "t.toml:10: backends[1].role: backends[0] is already the primary");
}

TEST_CASE("a backend role is primary or replica", "[config]") {
    CHECK(error_of(listener + "[[backends]]\nname = \"p\"\nhost = \"db\"\nrole = \"master\"\n" +
                   user) == "t.toml:6: backends[0].role: must be \"primary\" or \"replica\"");
}

TEST_CASE("backend names are required and unique", "[config]") {
    CHECK(error_of(listener + "[[backends]]\nhost = \"db\"\nrole = \"primary\"\n" + user) ==
          "t.toml:3: backends[0].name: is required");
    CHECK(error_of(listener + backend + "[[backends]]\nname = \"p\"\nhost = \"db2\"\n" + user) ==
          "t.toml:8: backends[1].name: name \"p\" is already used by backends[0]");
}

TEST_CASE("a backend host is required and non-empty", "[config]") {
    CHECK(error_of(listener + "[[backends]]\nname = \"p\"\nrole = \"primary\"\n" + user) ==
          "t.toml:3: backends[0].host: is required");
    CHECK(error_of(listener + "[[backends]]\nname = \"p\"\nhost = \"\"\nrole = \"primary\"\n" +
                   user) == "t.toml:5: backends[0].host: must not be empty");
}

TEST_CASE("a backend weight is at least 1", "[config]") {
    CHECK(error_of(listener + backend + "weight = 0\n" + user) ==
          "t.toml:7: backends[0].weight: must be between 1 and 4294967295");
    CHECK(load(listener + backend + "weight = 100\n" + user).backends[0].weight == 100);
}

TEST_CASE("backends may use tls with an empty or absent backend_tls", "[config]") {
    CHECK(load(listener + backend + "tls = true\n" + user).backends[0].tls);
    const Config cfg = load(listener + backend + "tls = true\n" + user + "[backend_tls]\n");
    CHECK(cfg.backends[0].tls);
    CHECK(cfg.backend_tls.ca_file.empty());
}

TEST_CASE("backend_tls needs cert_file and key_file together", "[config]") {
    const TempDir dir;
    const std::string cert = dir.write("client.pem");
    CHECK(error_of(minimal + "[backend_tls]\ncert_file = \"" + cert + "\"\n") ==
          "t.toml:10: backend_tls.key_file: is required when cert_file is set");
    CHECK(error_of(minimal + "[backend_tls]\nkey_file = \"" + cert + "\"\n") ==
          "t.toml:10: backend_tls.cert_file: is required when key_file is set");
}

TEST_CASE("backend_tls hostname checks need a CA", "[config]") {
    CHECK(error_of(minimal + "[backend_tls]\nverify_hostname = true\n") ==
          "t.toml:11: backend_tls.verify_hostname: requires ca_file");
    const TempDir dir;
    const std::string ca = dir.write("ca.pem");
    const Config cfg =
        load(minimal + "[backend_tls]\nverify_hostname = true\nca_file = \"" + ca + "\"\n");
    CHECK(cfg.backend_tls.verify_hostname);
    CHECK(cfg.backend_tls.ca_file == ca);
}

TEST_CASE("at least one user is required", "[config]") {
    CHECK(error_of(listener + backend) == "t.toml:1: users: at least one user is required");
}

TEST_CASE("user names are required, non-empty and unique", "[config]") {
    CHECK(error_of(listener + backend + "[[users]]\npassword = \"x\"\n") ==
          "t.toml:7: users[0].name: is required");
    CHECK(error_of(listener + backend + "[[users]]\nname = \"\"\npassword = \"x\"\n") ==
          "t.toml:8: users[0].name: must not be empty");
    CHECK(error_of(minimal + "[[users]]\nname = \"u\"\npassword = \"y\"\n") ==
          "t.toml:11: users[1].name: name \"u\" is already used by users[0]");
}

TEST_CASE("a user has exactly one of password and password_env", "[config]") {
    ::setenv("SLUICE_TEST_PASSWORD", "from-env", 1);
    CHECK(error_of(listener + backend + "[[users]]\nname = \"u\"\n") ==
          "t.toml:7: users[0].password: is required (or password_env)");
    const std::string both = error_of(listener + backend +
                                      "[[users]]\nname = \"u\"\npassword = "
                                      "\"hunter2\"\npassword_env = \"SLUICE_TEST_PASSWORD\"\n");
    CHECK(both == "t.toml:10: users[0].password_env: cannot be set together with password");
    CHECK(both.find("hunter2") == std::string::npos);
    CHECK(both.find("from-env") == std::string::npos);
}

TEST_CASE("password_env is resolved from the environment at load time", "[config]") {
    ::setenv("SLUICE_TEST_PASSWORD", "s3cret", 1);
    const Config cfg = load(listener + backend +
                            "[[users]]\nname = \"u\"\npassword_env = \"SLUICE_TEST_PASSWORD\"\n");
    CHECK(cfg.find_user("u")->password == "s3cret");
    ::setenv("SLUICE_TEST_PASSWORD", "", 1);
    CHECK(load(listener + backend +
               "[[users]]\nname = \"u\"\npassword_env = \"SLUICE_TEST_PASSWORD\"\n")
              .find_user("u")
              ->password.empty());
    ::unsetenv("SLUICE_TEST_PASSWORD");
}

TEST_CASE("password_env must name a variable that is set", "[config]") {
    ::unsetenv("SLUICE_TEST_UNSET_PASSWORD");
    CHECK(error_of(listener + backend +
                   "[[users]]\nname = \"u\"\npassword_env = \"SLUICE_TEST_UNSET_PASSWORD\"\n") ==
          "t.toml:9: users[0].password_env: environment variable SLUICE_TEST_UNSET_PASSWORD is "
          "not set");
    CHECK(error_of(listener + backend + "[[users]]\nname = \"u\"\npassword_env = \"\"\n") ==
          "t.toml:9: users[0].password_env: must not be empty");
}

TEST_CASE("errors after a resolved password never show it", "[config]") {
    ::setenv("SLUICE_TEST_PASSWORD", "topsecret", 1);
    const std::string message = error_of(
        listener + backend + "[[users]]\nname = \"u\"\npassword_env = \"SLUICE_TEST_PASSWORD\"\n" +
        "[[users]]\nname = \"u\"\npassword = \"alsosecret\"\n");
    CHECK(message == "t.toml:11: users[1].name: name \"u\" is already used by users[0]");
    CHECK(message.find("topsecret") == std::string::npos);
    CHECK(message.find("alsosecret") == std::string::npos);
    ::unsetenv("SLUICE_TEST_PASSWORD");
}

TEST_CASE("the log level must be one spdlog knows", "[config]") {
    CHECK(error_of(minimal + "[logging]\nlevel = \"verbose\"\n") ==
          "t.toml:11: logging.level: must be one of trace, debug, info, warn, error, critical, "
          "off");
    for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
        INFO(level);
        CHECK(load(minimal + "[logging]\nlevel = \"" + level + "\"\n").logging.level == level);
    }
}

TEST_CASE("max_connections must be at least 1", "[config]") {
    CHECK(error_of("[[listeners]]\nname = \"l\"\nmax_connections = 0\n" + backend + user) ==
          "t.toml:3: listeners[0].max_connections: must be between 1 and 4294967295");
}

TEST_CASE("primary() refuses a hand-built config without a primary", "[config]") {
    const Config cfg;
    CHECK_THROWS_AS(cfg.primary(), std::logic_error);
}

TEST_CASE("query rules are read in order with their defaults", "[config]") {
    const Config cfg = load(minimal + R"([[query_rules]]
name = "no drops"
match_digest = "^DROP "
route = "refuse"
error_code = 1142
error_message = "not here"

[[query_rules]]
name = "reports"
user = "report"
schema = "shop"
route = "replica"
max_lag_ms = 2000

[[query_rules]]
name = "all to primary"
route = "primary"
)");
    REQUIRE(cfg.query_rules.size() == 3);
    CHECK(cfg.query_rules[0].name == "no drops");
    CHECK(cfg.query_rules[0].match_digest == "^DROP ");
    CHECK(cfg.query_rules[0].route == QueryRule::Route::refuse);
    CHECK(cfg.query_rules[0].error_code == 1142);
    CHECK(cfg.query_rules[0].error_message == "not here");
    CHECK(cfg.query_rules[1].user == "report");
    CHECK(cfg.query_rules[1].schema == "shop");
    CHECK(cfg.query_rules[1].route == QueryRule::Route::replica);
    CHECK(cfg.query_rules[1].max_lag_ms == 2000u);
    CHECK(cfg.query_rules[2].route == QueryRule::Route::primary);
    CHECK(cfg.query_rules[2].match_digest.empty());
    CHECK(cfg.query_rules[2].error_code == 1105);
    CHECK_FALSE(cfg.query_rules[2].max_lag_ms.has_value());
}

TEST_CASE("query rules are validated with their line", "[config]") {
    CHECK(
        error_of("[[query_rules]]\nname = \"r\"\nmatch_digest = \"(open\"\nroute = \"primary\"\n" +
                 minimal)
            .rfind("t.toml:3: query_rules[0].match_digest: not a valid RE2 expression: ", 0) == 0);
    CHECK(error_of("[[query_rules]]\nname = \"r\"\nroute = \"sideways\"\n" + minimal) ==
          "t.toml:3: query_rules[0].route: must be one of primary, replica, refuse");
    CHECK(error_of("[[query_rules]]\nname = \"r\"\n" + minimal) ==
          "t.toml:1: query_rules[0].route: is required");
    CHECK(error_of("[[query_rules]]\nname = \"r\"\nroute = \"primary\"\nerror_code = 1142\n" +
                   minimal) ==
          "t.toml:4: query_rules[0].error_code: only applies to route = \"refuse\"");
    CHECK(
        error_of("[[query_rules]]\nname = \"r\"\nroute = \"refuse\"\nmax_lag_ms = 5\n" + minimal) ==
        "t.toml:4: query_rules[0].max_lag_ms: only applies to route = \"replica\"");
    CHECK(error_of("[[query_rules]]\nname = \"r\"\nroute = \"refuse\"\nerror_code = 99\n" +
                   minimal) ==
          "t.toml:4: query_rules[0].error_code: must be between 1000 and 65535");
    CHECK(error_of("[[query_rules]]\nname = \"r\"\nroute = \"primary\"\nbogus = 1\n" + minimal) ==
          "t.toml:4: query_rules[0].bogus: unknown key");
    CHECK(error_of("[[query_rules]]\nname = \"r\"\nroute = \"primary\"\n[[query_rules]]\nname = "
                   "\"r\"\nroute = \"primary\"\n" +
                   minimal) ==
          "t.toml:5: query_rules[1].name: name \"r\" is already used by query_rules[0]");
}

TEST_CASE("[routing] is read with its defaults and checked", "[config]") {
    const Config d = load(minimal);
    CHECK(d.routing.consistency == Consistency::global);
    CHECK(d.routing.causal_read_timeout == std::chrono::milliseconds(100));
    CHECK(d.routing.replica_retry == std::chrono::milliseconds(2000));
    const Config cfg = load(minimal + "[routing]\nread_your_writes = false\n"
                                      "causal_read_timeout_ms = 250\nreplica_retry_ms = 500\n");
    CHECK(cfg.routing.consistency == Consistency::eventual); // the key before consistency
    CHECK(cfg.routing.causal_read_timeout == std::chrono::milliseconds(250));
    CHECK(cfg.routing.replica_retry == std::chrono::milliseconds(500));
    CHECK(error_of(minimal + "[routing]\ncausal_read_timeout_ms = 0\n")
              .find("t.toml:11: routing.causal_read_timeout_ms: must be between 1 and") == 0);
    CHECK(error_of(minimal + "[routing]\nwait = 1\n").find("t.toml:11: routing.wait:") == 0);
    CHECK(error_of(minimal + "[routing]\nread_your_writes = 1\n")
              .find("t.toml:11: routing.read_your_writes:") == 0);
}

TEST_CASE("at most 64 backends", "[config]") {
    std::string many = listener + backend + user;
    for (int i = 0; i < 64; ++i)
        many += "[[backends]]\nname = \"r" + std::to_string(i) + "\"\nhost = \"db\"\n";
    CHECK(error_of(many).find("backends: at most 64 backends") != std::string::npos);
}

TEST_CASE("#8: [monitor] takes its own login, interval, timeout, heartbeat table and threshold",
          "[config]") {
    const Config off = load(minimal);
    CHECK_FALSE(off.monitor.enabled);
    CHECK(off.routing.max_lag == std::chrono::milliseconds(5000));
    CHECK(off.zone.empty());
    const Config on =
        load("zone = \"b\"\n" + minimal +
             "[monitor]\nuser = \"mon\"\npassword = \"pw\"\ninterval_ms = 250\ntimeout_ms = 800\n"
             "heartbeat_table = \"ops.beat\"\nfailures_to_open = 3\n"
             "[routing]\nmax_lag_ms = 1500\n");
    CHECK(on.zone == "b");
    CHECK(on.monitor.enabled);
    CHECK(on.monitor.user == "mon");
    CHECK(on.monitor.password == "pw");
    CHECK(on.monitor.interval == std::chrono::milliseconds(250));
    CHECK(on.monitor.timeout == std::chrono::milliseconds(800));
    CHECK(on.monitor.heartbeat_database == "ops");
    CHECK(on.monitor.heartbeat_table == "beat");
    CHECK(on.monitor.failures_to_open == 3);
    CHECK(on.routing.max_lag == std::chrono::milliseconds(1500));
    const Config defaults = load(minimal + "[monitor]\nuser = \"mon\"\npassword = \"pw\"\n");
    CHECK(defaults.monitor.interval == std::chrono::milliseconds(500));
    CHECK(defaults.monitor.heartbeat_database == "sluice");
    CHECK(defaults.monitor.heartbeat_table == "heartbeat");
    const Config no_beat =
        load(minimal + "[monitor]\nuser = \"mon\"\npassword = \"pw\"\nheartbeat_table = \"\"\n");
    CHECK(no_beat.monitor.heartbeat_database.empty());
}

TEST_CASE("#8: [monitor] refuses a missing login and a heartbeat table it cannot write safely",
          "[config]") {
    CHECK(error_of(minimal + "[monitor]\npassword = \"pw\"\n") ==
          "t.toml:10: monitor.user: is required");
    CHECK(error_of(minimal + "[monitor]\nuser = \"mon\"\n") ==
          "t.toml:10: monitor.password: is required (or password_env)");
    for (const char* bad : {"beat", "a.b.c", "ops.`x`", ".beat", "ops.", "o ps.beat"}) {
        INFO(bad);
        CHECK(error_of(minimal +
                       "[monitor]\nuser = \"mon\"\npassword = \"pw\"\nheartbeat_table = \"" + bad +
                       "\"\n")
                  .find("monitor.heartbeat_table: must be \"database.table\"") !=
              std::string::npos);
    }
    CHECK(error_of(minimal + "[monitor]\nuser = \"mon\"\npassword = \"pw\"\ninterval_ms = 10\n")
              .find("monitor.interval_ms") != std::string::npos);
}

TEST_CASE("#8: a user may have its own max_lag_ms", "[config]") {
    const Config cfg =
        load(listener + backend + "[[users]]\nname = \"u\"\npassword = \"pw\"\nmax_lag_ms = 250\n");
    REQUIRE(cfg.find_user("u")->max_lag_ms);
    CHECK(*cfg.find_user("u")->max_lag_ms == 250);
    CHECK_FALSE(load(minimal).find_user("u")->max_lag_ms);
}

TEST_CASE("#8: consistency for routing, users and replica rules", "[config]") {
    const Config cfg =
        load(listener + backend +
             "[[users]]\nname = \"u\"\npassword = \"pw\"\nconsistency = \"session\"\n"
             "[[query_rules]]\nname = \"r\"\nroute = \"replica\"\nconsistency = \"eventual\"\n"
             "[routing]\nconsistency = \"session\"\n");
    CHECK(cfg.routing.consistency == Consistency::session);
    CHECK(cfg.find_user("u")->consistency == Consistency::session);
    CHECK(cfg.query_rules[0].consistency == Consistency::eventual);
    CHECK_FALSE(load(minimal).find_user("u")->consistency);
    CHECK(load(minimal + "[routing]\nconsistency = \"fleet\"\n").routing.consistency ==
          Consistency::fleet);
    CHECK(error_of(minimal + "[routing]\nconsistency = \"strong\"\n") ==
          "t.toml:11: routing.consistency: must be one of eventual, session, global, fleet");
    CHECK(error_of(minimal + "[routing]\nconsistency = \"global\"\nread_your_writes = true\n")
              .find("routing.read_your_writes: cannot be set together with consistency") !=
          std::string::npos);
    CHECK(error_of(listener + backend + user +
                   "[[query_rules]]\nname = \"r\"\nroute = \"primary\"\nconsistency = \"global\"\n")
              .find("query_rules[0].consistency: only applies to route = \"replica\"") !=
          std::string::npos);
}

TEST_CASE("#9: [cache], [[cache.redis]] and [[cache_rules]]", "[config]") {
    CHECK_FALSE(load(minimal).cache.enabled);
    const Config cfg = load(minimal + R"([cache]
default_ttl_ms = 60000
max_result_bytes = 4096
l1_max_bytes = 0
key_prefix = "app1:"
region = "eu"

[[cache.redis]]
host = "10.0.0.1"
port = 6380
region = "eu"
user = "sluice"
password = "pw"
command_timeout_ms = 50

[[cache.redis]]
host = "10.1.0.1"
region = "us"

[[cache_rules]]
name = "hot"
match_digest = "FROM t"
user = "u"
shared = true

[[cache_rules]]
name = "never"
ttl_ms = 0
)");
    CHECK(cfg.cache.enabled);
    CHECK(cfg.cache.default_ttl == std::chrono::milliseconds(60000));
    CHECK(cfg.cache.max_result_bytes == 4096);
    CHECK(cfg.cache.l1_max_bytes == 0);
    CHECK(cfg.cache.key_prefix == "app1:");
    REQUIRE(cfg.cache.redis.size() == 2);
    CHECK(cfg.cache.redis[0].port == 6380);
    CHECK(cfg.cache.redis[0].user == "sluice");
    CHECK(cfg.cache.redis[0].password == "pw");
    CHECK(cfg.cache.redis[0].command_timeout == std::chrono::milliseconds(50));
    CHECK(cfg.cache.redis[1].port == 6379);
    CHECK(cfg.cache.redis[1].region == "us");
    REQUIRE(cfg.cache_rules.size() == 2);
    CHECK(cfg.cache_rules[0].shared);
    CHECK_FALSE(cfg.cache_rules[0].ttl);
    CHECK(*cfg.cache_rules[1].ttl == std::chrono::milliseconds(0));
    CHECK_FALSE(load(minimal + "[cache]\nenabled = false\n").cache.enabled);
}

TEST_CASE("#9: cache settings Sluice cannot use are refused with their line", "[config]") {
    CHECK(error_of(minimal + "[cache]\nttl = 5\n") == "t.toml:11: cache.ttl: unknown key");
    CHECK(error_of(minimal + "[cache]\nkey_prefix = \"a{b}\"\n")
              .find("cache.key_prefix: must not contain { or }") != std::string::npos);
    CHECK(error_of(minimal + "[cache]\nregion = \"eu\"\n[[cache.redis]]\nhost = \"r\"\n")
              .find("cache.region: no [[cache.redis]] is in region \"eu\"") != std::string::npos);
    CHECK(error_of(minimal + "[cache]\n[[cache.redis]]\nhost = \"r\"\ntls = true\n")
              .find("tls_ca_file: is required with tls = true") != std::string::npos);
    CHECK(error_of(minimal + "[cache]\n[[cache.redis]]\nhost = \"r\"\ntls_verify = false\n")
              .find("tls_verify: only applies with tls = true") != std::string::npos);
    CHECK(error_of(minimal + "[cache]\n[[cache.redis]]\nhost = \"r\"\nuser = \"x\"\n")
              .find("cache.redis[0].user: needs password or password_env") != std::string::npos);
    CHECK(error_of(minimal + "[[cache_rules]]\nname = \"a\"\nmatch_digest = \"(\"\n")
              .find("cache_rules[0].match_digest: not a valid RE2 expression") !=
          std::string::npos);
    CHECK(error_of(minimal + "[[cache_rules]]\nname = \"a\"\nttl_ms = -1\n")
              .find("cache_rules[0].ttl_ms: must be between 0 and") != std::string::npos);
}

TEST_CASE("#10: [pool], per-backend overrides, user and listener pool modes and limits",
          "[config]") {
    const Config defaults = load(minimal);
    CHECK(defaults.pool.mode == PoolMode::transaction);
    CHECK(defaults.pool.max_connections == 32);
    CHECK(defaults.pool.queue_timeout == std::chrono::milliseconds(5000));
    CHECK(defaults.max_client_connections == 0);
    const Config c = load("max_client_connections = 100\n"
                          "[pool]\nmode = \"session\"\nmax_connections = 8\nmin_idle = 2\n"
                          "idle_timeout_ms = 1000\nmax_lifetime_ms = 2000\nqueue_timeout_ms = 300\n"
                          "prepared_per_connection = 16\n" +
                          listener + "pool_mode = \"transaction\"\n" + backend +
                          "pool_max_connections = 4\npool_min_idle = 1\npool_idle_timeout_ms = 5\n"
                          "pool_max_lifetime_ms = 6\n" +
                          user + "max_connections = 3\npool_mode = \"session\"\n");
    CHECK(c.max_client_connections == 100);
    CHECK(c.pool.mode == PoolMode::session);
    CHECK(c.pool.max_connections == 8);
    CHECK(c.pool.min_idle == 2);
    CHECK(c.pool.idle_timeout == std::chrono::milliseconds(1000));
    CHECK(c.pool.max_lifetime == std::chrono::milliseconds(2000));
    CHECK(c.pool.queue_timeout == std::chrono::milliseconds(300));
    CHECK(c.pool.prepared_per_connection == 16);
    CHECK(c.listeners[0].pool_mode == PoolMode::transaction);
    CHECK(c.backends[0].pool_max_connections == 4u);
    CHECK(c.backends[0].pool_min_idle == 1u);
    CHECK(c.backends[0].pool_idle_timeout == std::chrono::milliseconds(5));
    CHECK(c.backends[0].pool_max_lifetime == std::chrono::milliseconds(6));
    CHECK(c.users[0].max_connections == 3);
    CHECK(c.users[0].pool_mode == PoolMode::session);
    CHECK(error_of("[pool]\nmode = \"statement\"\n" + minimal) ==
          "t.toml:2: pool.mode: must be \"transaction\" or \"session\"");
    CHECK(error_of("[pool]\nmax_connections = 2\nmin_idle = 3\n" + minimal) ==
          "t.toml:3: pool.min_idle: must not exceed max_connections");
    CHECK(error_of("[pool]\nmax_connections = 0\n" + minimal).find("pool.max_connections") !=
          std::string::npos);
}

TEST_CASE("#11: TDS listeners, [[tds_backends]] and [tds_monitor]", "[config]") {
    const std::string tds_listener =
        "[[listeners]]\nname = \"t\"\nprotocol = \"tds\"\nport = 11433\n";
    const std::string tds_backends = "[[tds_backends]]\nname = \"ag1\"\nhost = \"sql1\"\n"
                                     "role = \"primary\"\n[[tds_backends]]\nname = \"ag2\"\n"
                                     "host = \"sql2\"\nport = 14333\n";
    const Config c = load(minimal + tds_listener + tds_backends +
                          "[tds_monitor]\nuser = \"mon\"\npassword = \"pw\"\ninterval_ms = 250\n");
    REQUIRE(c.listeners.size() == 2);
    CHECK(c.listeners[1].protocol == "tds");
    REQUIRE(c.tds_backends.size() == 2);
    CHECK(c.tds_backends[0].port == 1433); // SQL Server's default port
    CHECK(c.tds_backends[0].role == BackendRole::primary);
    CHECK(c.tds_backends[1].port == 14333);
    CHECK(c.tds_backends[1].role == BackendRole::replica);
    CHECK(c.backends[0].port == 3306);
    CHECK(c.tds_monitor.enabled);
    CHECK(c.tds_monitor.user == "mon");
    CHECK(c.tds_monitor.interval == std::chrono::milliseconds(250));
    CHECK(c.tds_monitor.heartbeat_table.empty());
    // A TDS listener needs SQL Server backends; they need one primary; no heartbeat there.
    CHECK(error_of(minimal + tds_listener) ==
          "t.toml:12: listeners[1].protocol: \"tds\" needs [[tds_backends]] (SQL Server backends)");
    CHECK(error_of(minimal + "[[tds_backends]]\nname = \"x\"\nhost = \"h\"\n") ==
          "t.toml:10: tds_backends: one backend must have role \"primary\"");
    CHECK(error_of(minimal + tds_backends +
                   "[tds_monitor]\nuser = \"m\"\npassword = \"p\"\n"
                   "heartbeat_table = \"a.b\"\n")
              .find("tds_monitor.heartbeat_table") != std::string::npos);
    CHECK(error_of("[[listeners]]\nname = \"l\"\nprotocol = \"pg\"\n" + backend + user) ==
          "t.toml:3: listeners[0].protocol: must be \"mysql\" or \"tds\"");
}
