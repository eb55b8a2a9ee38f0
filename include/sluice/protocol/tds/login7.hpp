#pragma once
// LOGIN7 (MS-TDS 2.2.6.4): a fixed part, an offset/length table into a variable part of
// UCS-2LE strings, and (TDS 7.4) an optional FeatureExt block.

#include "sluice/protocol/error.hpp"
#include "sluice/protocol/tds/version.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace sluice::protocol::tds {

namespace login7_flags {
// OptionFlags1
inline constexpr std::uint8_t use_db = 0x20;   // fUseDB: the initial database must succeed
inline constexpr std::uint8_t database = 0x40; // fDatabase: INIT_DB_FATAL
inline constexpr std::uint8_t set_lang = 0x80; // fSetLang: SET_LANG_ON
// OptionFlags2
inline constexpr std::uint8_t language = 0x01;     // fLanguage: INIT_LANG_FATAL
inline constexpr std::uint8_t odbc = 0x02;         // fODBC: ODBC_ON
inline constexpr std::uint8_t int_security = 0x80; // fIntSecurity: integrated (SSPI) login
// TypeFlags
inline constexpr std::uint8_t read_only_intent = 0x20; // fReadOnlyIntent (ApplicationIntent)
// OptionFlags3
inline constexpr std::uint8_t change_password = 0x01;   // fChangePassword
inline constexpr std::uint8_t unknown_collation = 0x08; // fUnknownCollationHandling
inline constexpr std::uint8_t extension = 0x10;         // fExtension: FeatureExt present
} // namespace login7_flags

/// A LOGIN7 message, strings in UTF-8 and the password in clear.
struct Login7 {
    std::uint32_t tds_version = tds_version::v7_4;
    std::uint32_t packet_size = 4096;
    std::uint32_t client_prog_version = 0;
    std::uint32_t client_pid = 0;
    std::uint32_t connection_id = 0;
    std::uint8_t option_flags1 =
        login7_flags::use_db | login7_flags::database | login7_flags::set_lang;
    std::uint8_t option_flags2 = login7_flags::language | login7_flags::odbc;
    std::uint8_t type_flags = 0;
    std::uint8_t option_flags3 = 0;
    std::int32_t client_time_zone = 0;
    std::uint32_t client_lcid = 0x0409;
    std::string host_name, user_name, password, app_name, server_name;
    std::string client_interface_name; ///< CltIntName
    std::string language, database;
    std::array<std::uint8_t, 6> client_id{}; ///< usually the client's MAC address
    std::vector<std::uint8_t> sspi;
    std::string attach_db_file, change_password;
    /// The FeatureExt block as sent, its 0xFF terminator included (empty: none). Sluice acks
    /// no feature, so it is kept only to be skipped or passed on.
    std::vector<std::uint8_t> feature_ext;

    bool read_only_intent() const noexcept { return type_flags & login7_flags::read_only_intent; }
    bool operator==(const Login7&) const = default;
};

/// Parses a LOGIN7 payload. Every offset and length is checked against the record's Length
/// (itself checked against the payload): codec_errc::truncated when one points past the end;
/// codec_errc::malformed when a string points into the fixed part, exceeds its maximum length
/// (128 characters; 260 for AtchDBFile) or the FeatureExt block is broken;
/// codec_errc::trailing_bytes for bytes after Length. The fixed part is 94 bytes from TDS 7.2
/// on, 86 before (no ChangePassword, no cbSSPILong).
result<Login7> parse_login7(Bytes payload);

/// Appends a LOGIN7 payload: strings in the order of the offset table, the password
/// obfuscated, FeatureExt (when given) after the strings with fExtension set.
void write_login7(const Login7& login, std::vector<std::uint8_t>& out);

/// LOGIN7 password obfuscation, in place: per byte swap the nibbles, then XOR 0xA5.
void obfuscate_password(std::span<std::uint8_t> bytes) noexcept;
/// Its inverse: per byte XOR 0xA5, then swap the nibbles.
void deobfuscate_password(std::span<std::uint8_t> bytes) noexcept;

} // namespace sluice::protocol::tds
