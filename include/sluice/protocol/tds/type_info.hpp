#pragma once
// TYPE_INFO and data values (MS-TDS 2.2.5.4-2.2.5.6): enough to know how long every value is,
// and to read the few a proxy needs (integer handles, statement text).

#include "sluice/protocol/error.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace sluice::protocol::tds {

/// Data type bytes (MS-TDS 2.2.5.4).
namespace data_type {
// Fixed-length types.
inline constexpr std::uint8_t null = 0x1F;     // NULLTYPE
inline constexpr std::uint8_t int1 = 0x30;     // INT1TYPE
inline constexpr std::uint8_t bit = 0x32;      // BITTYPE
inline constexpr std::uint8_t int2 = 0x34;     // INT2TYPE
inline constexpr std::uint8_t int4 = 0x38;     // INT4TYPE
inline constexpr std::uint8_t datetim4 = 0x3A; // DATETIM4TYPE
inline constexpr std::uint8_t flt4 = 0x3B;     // FLT4TYPE
inline constexpr std::uint8_t money = 0x3C;    // MONEYTYPE
inline constexpr std::uint8_t datetime = 0x3D; // DATETIMETYPE
inline constexpr std::uint8_t flt8 = 0x3E;     // FLT8TYPE
inline constexpr std::uint8_t money4 = 0x7A;   // MONEY4TYPE
inline constexpr std::uint8_t int8 = 0x7F;     // INT8TYPE
// BYTELEN types.
inline constexpr std::uint8_t guid = 0x24;             // GUIDTYPE
inline constexpr std::uint8_t intn = 0x26;             // INTNTYPE
inline constexpr std::uint8_t decimal = 0x37;          // DECIMALTYPE (legacy)
inline constexpr std::uint8_t numeric = 0x3F;          // NUMERICTYPE (legacy)
inline constexpr std::uint8_t bitn = 0x68;             // BITNTYPE
inline constexpr std::uint8_t decimaln = 0x6A;         // DECIMALNTYPE
inline constexpr std::uint8_t numericn = 0x6C;         // NUMERICNTYPE
inline constexpr std::uint8_t fltn = 0x6D;             // FLTNTYPE
inline constexpr std::uint8_t moneyn = 0x6E;           // MONEYNTYPE
inline constexpr std::uint8_t datetimn = 0x6F;         // DATETIMNTYPE
inline constexpr std::uint8_t daten = 0x28;            // DATENTYPE
inline constexpr std::uint8_t timen = 0x29;            // TIMENTYPE
inline constexpr std::uint8_t datetime2n = 0x2A;       // DATETIME2NTYPE
inline constexpr std::uint8_t datetimeoffsetn = 0x2B;  // DATETIMEOFFSETNTYPE
inline constexpr std::uint8_t char_legacy = 0x2F;      // CHARTYPE
inline constexpr std::uint8_t varchar_legacy = 0x27;   // VARCHARTYPE
inline constexpr std::uint8_t binary_legacy = 0x2D;    // BINARYTYPE
inline constexpr std::uint8_t varbinary_legacy = 0x25; // VARBINARYTYPE
// USHORTLEN types (PLP when the maximum length is 0xFFFF).
inline constexpr std::uint8_t bigvarbinary = 0xA5; // BIGVARBINTYPE
inline constexpr std::uint8_t bigvarchar = 0xA7;   // BIGVARCHRTYPE
inline constexpr std::uint8_t bigbinary = 0xAD;    // BIGBINARYTYPE
inline constexpr std::uint8_t bigchar = 0xAF;      // BIGCHARTYPE
inline constexpr std::uint8_t nvarchar = 0xE7;     // NVARCHARTYPE
inline constexpr std::uint8_t nchar = 0xEF;        // NCHARTYPE
// PLP types.
inline constexpr std::uint8_t xml = 0xF1; // XMLTYPE
inline constexpr std::uint8_t udt = 0xF0; // UDTTYPE
// LONGLEN types.
inline constexpr std::uint8_t text = 0x23;      // TEXTTYPE
inline constexpr std::uint8_t image = 0x22;     // IMAGETYPE
inline constexpr std::uint8_t ntext = 0x63;     // NTEXTTYPE
inline constexpr std::uint8_t ssvariant = 0x62; // SSVARIANTTYPE
inline constexpr std::uint8_t tvp = 0xF3;       // TVPTYPE: not supported
} // namespace data_type

/// How a value of a type is laid out on the wire.
enum class ValueFormat : std::uint8_t {
    fixed,      ///< exactly TypeInfo::length bytes, never NULL
    byte_len,   ///< a length byte (0: NULL), then the bytes
    ushort_len, ///< a USHORT length (0xFFFF: NULL), then the bytes
    long_len,   ///< a LONG length (0xFFFFFFFF, or 0 for sql_variant: NULL), then the bytes
    text_ptr,   ///< text/ntext/image in a row: a text pointer (length 0: NULL), a timestamp,
                ///< a LONG length, then the bytes
    plp,        ///< partially length-prefixed: a ULONGLONG total (all ones: NULL), chunks
                ///< each with a DWORD length, ended by a zero-length chunk
};

/// Where TYPE_INFO appears: text/ntext/image values carry a text pointer in rows and return
/// values but not in RPC parameters; UDT_INFO differs too.
enum class TypeContext : std::uint8_t { column, rpc };

/// A parsed TYPE_INFO.
struct TypeInfo {
    std::uint8_t type = data_type::null;
    ValueFormat format = ValueFormat::fixed;
    std::uint32_t length = 0; ///< fixed size, or the declared maximum (0xFFFF for PLP)
    std::uint8_t precision = 0, scale = 0;
    bool has_collation = false;
    std::array<std::uint8_t, 5> collation{};
    bool operator==(const TypeInfo&) const = default;

    /// The value is UTF-16 text (NCHAR, NVARCHAR, NTEXT, XML).
    bool is_unicode_text() const noexcept;
    /// The value is single-byte text in the column's collation (CHAR, VARCHAR, TEXT).
    bool is_ansi_text() const noexcept;
};

/// Parses the TYPE_INFO at the front of `in`, setting `used` to its size. codec_errc::truncated
/// when cut short; codec_errc::malformed for an unknown type, a bad fixed length or a TVP.
result<TypeInfo> parse_type_info(Bytes in, TypeContext ctx, std::size_t& used);

/// A value viewed in place.
struct ValueView {
    bool is_null = false;
    /// The value's bytes; for a PLP value, its chunks with their DWORD length prefixes (up to
    /// and excluding the terminator): join them with plp_join().
    Bytes data;
};

/// Parses the value of type `t` at the front of `in`, setting `used` to its size.
result<ValueView> parse_value(Bytes in, const TypeInfo& t, TypeContext ctx, std::size_t& used);

/// The bytes of a PLP value's chunks (ValueView::data of a PLP type), joined.
std::string plp_join(Bytes chunks);

/// An integer value (INT1/2/4/8, INTN, BIT, BITN); std::nullopt for NULL or another type.
std::optional<std::int64_t> value_as_int(const TypeInfo& t, const ValueView& v);

/// A text value in UTF-8 (UTF-16 types decoded; single-byte types taken as they are, which is
/// right for ASCII); std::nullopt for NULL or a non-text type.
std::optional<std::string> value_as_text(const TypeInfo& t, const ValueView& v);

} // namespace sluice::protocol::tds
