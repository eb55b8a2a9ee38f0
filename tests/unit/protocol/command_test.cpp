// Commands the proxy reads itself: COM_PROCESS_KILL both ways, and the first value of text
// result sets captured from MariaDB (tests/vectors/mysql/) or built from the documentation.

#include "sluice/protocol/mysql/command.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using namespace sluice::protocol;
using namespace sluice::protocol::mysql;
using namespace sluice::test;

namespace {

using Payloads = std::vector<std::vector<std::uint8_t>>;

/// The payloads of a captured response (tests/vectors/mysql/<name>.hex).
Payloads captured(const std::string& name) {
    Payloads out;
    for (const ByteVec& wire : read_vector_packets(name))
        out.push_back(payload_of(wire));
    return out;
}

// A column definition as MariaDB sends it for a one-character VARCHAR column `s` with no
// table (eof_select_null_first.hex, second column).
const ByteVec column_def = from_hex("036465660000000173000c2d0004000000fd0100270000");
const ByteVec eof = from_hex("fe00000200");           // EOF_Packet, AUTOCOMMIT
const ByteVec ok_fe = from_hex("fe000002000000");     // the OK that ends rows with DEPRECATE_EOF
const ByteVec err = from_hex("ff7a0423343253303254"); // ERR 1146, 42S02, message cut

/// A text result set of `columns` columns and the given rows, as a server sends it.
Payloads result_set(std::uint64_t columns, const std::vector<ByteVec>& rows, bool deprecate_eof) {
    Payloads out;
    ByteVec count;
    if (columns < 0xfb) {
        count.push_back(static_cast<std::uint8_t>(columns));
    } else {
        count = {0xfc, static_cast<std::uint8_t>(columns), static_cast<std::uint8_t>(columns >> 8)};
    }
    out.push_back(count);
    for (std::uint64_t i = 0; i < columns; ++i)
        out.push_back(column_def);
    if (!deprecate_eof) out.push_back(eof);
    for (const ByteVec& row : rows)
        out.push_back(row);
    out.push_back(deprecate_eof ? ok_fe : eof);
    return out;
}

/// The shortcut the session used before first_text_value (src/mysql_routing.cpp,
/// `first_value`), kept here to show both give the same answers where it applies.
std::optional<std::string> shortcut_first_value(const Payloads& packets, bool deprecate_eof) {
    if (packets.empty() || packets[0].empty()) return std::nullopt;
    const std::size_t columns = packets[0][0];
    const std::size_t row = 1 + columns + (deprecate_eof ? 0 : 1);
    if (row >= packets.size()) return std::nullopt;
    const auto& p = packets[row];
    if (p.empty() || p[0] >= 0xFB || p.size() < 1u + p[0]) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(p.data()) + 1, p[0]);
}

} // namespace

// ---- COM_PROCESS_KILL ----

TEST_CASE("COM_PROCESS_KILL is read and written as the documentation lays it out",
          "[protocol][mysql][command]") {
    ByteVec out{0xaa}; // appends
    write_process_kill(0x00010203, out);
    CHECK(to_hex(out) == "aa"
                         "0c"
                         "03020100");
    CHECK(parse_process_kill(Bytes{out}.subspan(1)) == 0x00010203u);
    CHECK(parse_process_kill(from_hex("0c ffffffff")) == 0xffffffffu);
}

TEST_CASE("parse_process_kill has no id for fewer than 5 bytes or another command",
          "[protocol][mysql][command]") {
    ByteVec full;
    write_process_kill(77, full);
    for (std::size_t len = 0; len < full.size(); ++len) {
        INFO("length " << len);
        CHECK_FALSE(parse_process_kill(Bytes{full}.first(len)).has_value());
    }
    CHECK_FALSE(parse_process_kill(from_hex("03 4d000000")).has_value());
}

TEST_CASE("parse_process_kill ignores bytes after the id, as the session always has",
          "[protocol][mysql][command]") {
    CHECK(parse_process_kill(from_hex("0c 4d000000 00")) == 77u);
}

// ---- first_text_value ----

TEST_CASE("first_text_value reads the first column of captured MariaDB result sets",
          "[protocol][mysql][command]") {
    struct Case {
        const char* vector;
        bool deprecate_eof;
        std::optional<std::string> value;
    };
    const Case cases[] = {
        // SELECT id, name, score FROM vec_t ORDER BY id: rows (1, alpha, 1.5) ...
        {"eof_select_rows", false, "1"},
        {"deof_select_rows", true, "1"},
        // SELECT NULL AS n, 'x' AS s: the first value is NULL.
        {"eof_select_null_first", false, std::nullopt},
        {"deof_select_null_first", true, std::nullopt},
        // SELECT * FROM no_such_table: an ERR, no result set.
        {"eof_error", false, std::nullopt},
        {"deof_error", true, std::nullopt},
        // INSERT: an OK, no result set.
        {"eof_insert", false, std::nullopt},
        {"deof_insert", true, std::nullopt},
    };
    for (const Case& c : cases) {
        INFO(c.vector);
        const Payloads p = captured(c.vector);
        CHECK(first_text_value(p, c.deprecate_eof) == c.value);
        CHECK(shortcut_first_value(p, c.deprecate_eof) == c.value);
    }
}

TEST_CASE("first_text_value needs the EOF setting the result was sent with",
          "[protocol][mysql][command]") {
    // Read the wrong way, the EOF after the definitions would be taken for a row, or the
    // first row for the EOF: neither is a value.
    CHECK_FALSE(first_text_value(captured("eof_select_rows"), true).has_value());
    CHECK_FALSE(first_text_value(captured("deof_select_rows"), false).has_value());
}

TEST_CASE("first_text_value decides on built result sets", "[protocol][mysql][command]") {
    const ByteVec row_0 = from_hex("0130 0178");  // ('0', 'x'): MASTER_GTID_WAIT's success
    const ByteVec row_m1 = from_hex("022d31");    // ('-1'): its timeout
    const ByteVec row_null = from_hex("fb");      // (NULL)
    const ByteVec row_empty = from_hex("00");     // ('')
    const ByteVec row_cut = from_hex("05616263"); // length 5, 3 bytes: malformed
    const ByteVec row_ff = from_hex("ff");        // not a length
    ByteVec row_long{0xfc, 0x2c, 0x01};           // a 300-byte value
    row_long.insert(row_long.end(), 300, 'v');
    struct Case {
        const char* name;
        std::uint64_t columns;
        std::vector<ByteVec> rows;
        std::optional<std::string> value;
    };
    const Case cases[] = {
        {"one column, value 0", 1, {row_0}, "0"},
        {"one column, value -1", 1, {row_m1}, "-1"},
        {"two rows: the first counts", 1, {row_m1, row_0}, "-1"},
        {"two columns", 2, {row_0}, "0"},
        {"NULL", 1, {row_null}, std::nullopt},
        {"empty string", 1, {row_empty}, ""},
        {"no row", 1, {}, std::nullopt},
        {"no row, three columns", 3, {}, std::nullopt},
        {"a value cut short", 1, {row_cut}, std::nullopt},
        {"a 0xFF length", 1, {row_ff}, std::nullopt},
        {"an ERR instead of a row", 1, {err}, std::nullopt},
        {"a value of 251 bytes or more", 1, {row_long}, std::string(300, 'v')},
        // crash-text-value-long-form-length (tests/fuzz/corpus/stmt): a length sent in a
        // longer form than it needs is still that length.
        {"an empty value, its length as 0xFC 00 00", 1, {from_hex("fc0000")}, ""},
        {"251 columns, count as 0xFC fb 00", 251, {row_0}, "0"},
        {"300 columns, count as 0xFC 2c 01", 300, {row_m1}, "-1"},
    };
    for (bool deprecate_eof : {false, true}) {
        for (const Case& c : cases) {
            INFO(c.name << (deprecate_eof ? ", DEPRECATE_EOF" : ", EOF"));
            const Payloads p = result_set(c.columns, c.rows, deprecate_eof);
            CHECK(first_text_value(p, deprecate_eof) == c.value);
        }
    }
}

TEST_CASE("first_text_value agrees with the session's old shortcut where it applies",
          "[protocol][mysql][command]") {
    // The shortcut read the column count as one byte and the value's length as one byte:
    // fewer than 251 columns, values shorter than 251 bytes.
    const std::vector<ByteVec> rows[] = {
        {from_hex("0130")}, {from_hex("fb")}, {from_hex("00")}, {}, {from_hex("03616263 00")}};
    for (bool deprecate_eof : {false, true}) {
        for (std::uint64_t columns : {1, 2, 5}) {
            for (const auto& r : rows) {
                INFO(columns << " columns, " << r.size() << " rows, deprecate_eof "
                             << deprecate_eof);
                const Payloads p = result_set(columns, r, deprecate_eof);
                CHECK(first_text_value(p, deprecate_eof) == shortcut_first_value(p, deprecate_eof));
            }
        }
    }
}

TEST_CASE("first_text_value refuses malformed result sets", "[protocol][mysql][command]") {
    const ByteVec row = from_hex("0131");
    struct Case {
        const char* name;
        Payloads payloads;
        bool deprecate_eof;
    };
    const Case cases[] = {
        {"nothing", {}, true},
        {"an empty first packet", {{}, column_def, row, ok_fe}, true},
        {"a column count of 0", {{0x00}, row, ok_fe}, true},
        {"a NULL column count", {{0xfb}, column_def, row, ok_fe}, true},
        {"a column count cut short", {{0xfc, 0x01}, column_def, row, ok_fe}, true},
        {"bytes after the column count", {{0x01, 0x01}, column_def, row, ok_fe}, true},
        {"a huge column count", {from_hex("fe ffffffffffffffff"), column_def, row, ok_fe}, true},
        {"fewer definitions than columns", {{0x03}, column_def, row, ok_fe}, true},
        {"an EOF among the definitions", {{0x02}, column_def, eof, row, eof}, false},
        {"an ERR among the definitions", {{0x02}, column_def, err}, true},
        {"an empty definition", {{0x01}, {}, row, ok_fe}, true},
        {"no EOF after the definitions", {{0x01}, column_def, row, row, eof}, false},
        {"ends after the definitions", {{0x01}, column_def}, true},
        {"ends after their EOF", {{0x01}, column_def, eof}, false},
        {"an empty row packet", {{0x01}, column_def, {}, ok_fe}, true},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        CHECK_FALSE(first_text_value(c.payloads, c.deprecate_eof).has_value());
    }
}
