// Cached results (issue #9): capture of a server's response into a blob, replay to a client of
// either form. Most responses are real MariaDB 10.11 ones (tests/vectors/mysql/, captured by
// capture.py in both forms, CLIENT_DEPRECATE_EOF off and on); the rest are built by hand.

#include "sluice/protocol/mysql/cached_result.hpp"
#include "sluice/protocol/mysql/constants.hpp"
#include "sluice/protocol/mysql/packet.hpp"
#include "sluice/protocol/mysql/response_scanner.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace sluice;
using namespace sluice::protocol;
using namespace sluice::protocol::mysql;
using namespace sluice::test;

namespace {

using Payloads = std::vector<ByteVec>;

constexpr std::size_t unlimited = std::size_t{1} << 30;

/// The payloads of a vector file's packets, headers dropped.
Payloads vector_payloads(const std::string& name) {
    Payloads out;
    for (const auto& p : read_vector_packets(name))
        out.push_back(payload_of(p));
    return out;
}

/// The payloads of a one-packet-per-message wire stream.
Payloads split_wire(Bytes wire) {
    Payloads out;
    while (!wire.empty()) {
        const std::size_t len = wire[0] | (wire[1] << 8) | (wire[2] << 16);
        out.emplace_back(wire.begin() + 4, wire.begin() + 4 + static_cast<std::ptrdiff_t>(len));
        wire = wire.subspan(4 + len);
    }
    return out;
}

Bytes view(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string blob_of(ResultFormat format, const Payloads& payloads, bool deprecate_eof) {
    auto blob = capture(format, payloads, deprecate_eof, unlimited);
    if (!blob) FAIL("capture refused: " << blob.error().message());
    return *blob;
}

ByteVec replayed(std::string_view blob, bool deprecate_eof, std::uint8_t first_seq = 1,
                 std::optional<std::uint16_t> status_override = std::nullopt) {
    ByteVec wire;
    auto r = replay(blob, deprecate_eof, first_seq, wire, status_override);
    if (!r) FAIL("replay failed: " << r.error().message());
    return wire;
}

/// What ResponseScanner makes of a whole response.
struct Scanned {
    bool complete = false;
    std::uint16_t status = 0;
    std::uint64_t packets = 0;
};

Scanned scan(Bytes wire, bool deprecate_eof) {
    ResponseScanner s;
    s.start(ResponseKind::query, deprecate_eof);
    auto n = s.feed(wire);
    Scanned out;
    out.complete = n && *n == wire.size() && s.state() == ResponseScanner::State::done &&
                   !s.ended_with_error() && s.has_status();
    out.status = s.last_status();
    out.packets = s.packets();
    return out;
}

// A hand-built result of 2 columns and 2 rows, as MariaDB would send `SELECT a, b`
// (ColumnDefinition41: catalog "def", empty schema/table/org_table, name, empty org_name, 0x0c,
// charset<2>, length<4>, type<1>, flags<2>, decimals<1>, filler<2>).
const ByteVec def_a = from_hex("03646566 00 00 00 0161 00 0c 3f00 0b000000 03 0000 00 0000");
const ByteVec def_b = from_hex("03646566 00 00 00 0162 00 0c 2100 0c000000 fd 0000 00 0000");
const ByteVec row_1 = from_hex("0131 0178"); // "1", "x"
const ByteVec row_2 = from_hex("0132 fb");   // "2", NULL

const ByteVec small_eof_wire = from_hex("01000001 02"
                                        "17000002 03646566000000016100 0c3f000b00000003000000 0000"
                                        "17000003 03646566000000016200 0c21000c000000fd000000 0000"
                                        "05000004 fe00000200" // EOF: warnings 0, AUTOCOMMIT
                                        "04000005 01310178"
                                        "03000006 0132fb"
                                        "05000007 fe00000200");
const ByteVec small_deof_wire = from_hex("01000001 02"
                                         "17000002 03646566000000016100 0c3f000b00000003000000 0000"
                                         "17000003 03646566000000016200 0c21000c000000fd000000 0000"
                                         "04000004 01310178"
                                         "03000005 0132fb"
                                         // OK, 0xFE header: affected 0, insert id 0,
                                         // AUTOCOMMIT, warnings 0
                                         "07000006 fe0000 0200 0000");

/// The hand-built result as a server of either form sends it, with the given terminators.
Payloads small_payloads(bool deprecate_eof, ByteVec columns_eof = from_hex("fe00000200"),
                        ByteVec end = {}) {
    if (end.empty()) end = deprecate_eof ? from_hex("fe000002000000") : from_hex("fe00000200");
    Payloads p{{0x02}, def_a, def_b};
    if (!deprecate_eof) p.push_back(columns_eof);
    p.push_back(row_1);
    p.push_back(row_2);
    p.push_back(end);
    return p;
}

struct Golden {
    const char* name;
    ResultFormat format;
};
const Golden goldens[] = {
    {"select_rows", ResultFormat::text},
    {"select_null_first", ResultFormat::text},
    {"select_in_trans", ResultFormat::text},
    {"execute_binary_rows", ResultFormat::binary},
};

} // namespace

TEST_CASE("A small text result captured in either form is stored in the documented layout",
          "[protocol][mysql][cache]") {
    const ByteVec expected = from_hex("01"       // version
                                      "00"       // text rows
                                      "0200"     // columns_status: AUTOCOMMIT
                                      "0200"     // final_status: AUTOCOMMIT
                                      "02000000" // 2 rows
                                      "0102"     // the column count, 2
                                      "17"
                                      "03646566000000016100 0c3f000b00000003000000 0000"
                                      "17"
                                      "03646566000000016200 0c21000c000000fd000000 0000"
                                      "0401310178"
                                      "030132fb");
    for (bool deof : {false, true}) {
        INFO("server deprecate_eof " << deof);
        CHECK(to_hex(view(blob_of(ResultFormat::text, small_payloads(deof), deof))) ==
              to_hex(expected));
    }
}

TEST_CASE("A small text result replays byte for byte as a server sends it, in both client forms",
          "[protocol][mysql][cache]") {
    for (bool server_deof : {false, true}) {
        INFO("server deprecate_eof " << server_deof);
        const auto blob = blob_of(ResultFormat::text, small_payloads(server_deof), server_deof);
        CHECK(to_hex(replayed(blob, false)) == to_hex(small_eof_wire));
        CHECK(to_hex(replayed(blob, true)) == to_hex(small_deof_wire));
    }
}

TEST_CASE(
    "Real MariaDB results replay byte for byte in either client form, from either server form",
    "[protocol][mysql][cache]") {
    for (const auto& g : goldens) {
        const ByteVec eof_wire = read_vector(std::string("eof_") + g.name);
        const ByteVec deof_wire = read_vector(std::string("deof_") + g.name);
        for (bool server_deof : {false, true}) {
            INFO(g.name << ", server deprecate_eof " << server_deof);
            const auto blob =
                blob_of(g.format, split_wire(server_deof ? deof_wire : eof_wire), server_deof);
            CHECK(to_hex(replayed(blob, false)) == to_hex(eof_wire));
            CHECK(to_hex(replayed(blob, true)) == to_hex(deof_wire));
        }
    }
}

TEST_CASE("One result captured from either server form gives the same blob",
          "[protocol][mysql][cache]") {
    for (const auto& g : goldens) {
        INFO(g.name);
        CHECK(blob_of(g.format, vector_payloads(std::string("eof_") + g.name), false) ==
              blob_of(g.format, vector_payloads(std::string("deof_") + g.name), true));
    }
}

TEST_CASE("A replayed result is a complete, valid response to ResponseScanner",
          "[protocol][mysql][cache]") {
    for (const auto& g : goldens) {
        const auto blob = blob_of(g.format, vector_payloads(std::string("eof_") + g.name), false);
        const std::size_t rows = static_cast<std::uint8_t>(blob[6]);
        const std::uint16_t status = static_cast<std::uint16_t>(
            static_cast<std::uint8_t>(blob[4]) | (static_cast<std::uint8_t>(blob[5]) << 8));
        const std::size_t columns = static_cast<std::uint8_t>(blob[11]);
        for (bool client_deof : {false, true}) {
            INFO(g.name << ", client deprecate_eof " << client_deof);
            const auto wire = replayed(blob, client_deof);
            const Scanned s = scan(wire, client_deof);
            CHECK(s.complete);
            CHECK(s.status == status);
            CHECK(s.packets == 1 + columns + (client_deof ? 0 : 1) + rows + 1);
        }
    }
}

TEST_CASE("Replayed sequence ids count up from first_seq and wrap after 255",
          "[protocol][mysql][cache]") {
    const auto blob = blob_of(ResultFormat::text, small_payloads(false), false);
    for (std::uint8_t first : {std::uint8_t{1}, std::uint8_t{0}, std::uint8_t{0xFD}}) {
        for (bool client_deof : {false, true}) {
            INFO("first_seq " << int{first} << ", client deprecate_eof " << client_deof);
            const auto wire = replayed(blob, client_deof, first);
            std::uint8_t expected = first;
            std::size_t packets = 0;
            Bytes rest{wire};
            while (!rest.empty()) {
                REQUIRE(rest.size() >= 4);
                const std::size_t len = rest[0] | (rest[1] << 8) | (rest[2] << 16);
                CHECK(int{rest[3]} == int{expected});
                ++expected;
                ++packets;
                rest = rest.subspan(4 + len);
            }
            CHECK(packets == (client_deof ? 6u : 7u));
        }
    }
}

TEST_CASE("Replay appends to what the buffer already holds", "[protocol][mysql][cache]") {
    const auto blob = blob_of(ResultFormat::text, small_payloads(true), true);
    ByteVec wire{0xAA, 0xBB};
    REQUIRE(replay(blob, true, 1, wire));
    ByteVec expected{0xAA, 0xBB};
    append(expected, small_deof_wire);
    CHECK(to_hex(wire) == to_hex(expected));
}

TEST_CASE("A status override replaces only the session's transaction flags",
          "[protocol][mysql][cache]") {
    // Captured: AUTOCOMMIT | SERVER_QUERY_NO_INDEX_USED (0x22) in both EOFs.
    const auto blob = blob_of(ResultFormat::text, vector_payloads("eof_select_rows"), false);
    struct Row {
        std::uint16_t session, expected;
    };
    const Row table[] = {
        {0x0000, 0x0020}, // autocommit off, no transaction
        {0x0003, 0x0023}, // in a transaction with autocommit
        {0x2001, 0x2021}, // in a read-only transaction, autocommit off
        {0xFFFF, 0x2023}, // flags that describe the result are not taken from the session
    };
    for (const auto& row : table) {
        INFO("session status 0x" << std::hex << row.session);
        const auto eof_wire = replayed(blob, false, 1, row.session);
        const auto s = scan(eof_wire, false);
        CHECK(s.complete);
        CHECK(s.status == row.expected);
        // The EOF after the column definitions carries the same flags.
        const auto packets = split_wire(eof_wire);
        REQUIRE(packets.size() == 9);
        CHECK(to_hex(packets[4]) ==
              to_hex(ByteVec{0xFE, 0, 0, static_cast<std::uint8_t>(row.expected),
                             static_cast<std::uint8_t>(row.expected >> 8)}));
        const auto deof_wire = replayed(blob, true, 1, row.session);
        CHECK(scan(deof_wire, true).status == row.expected);
    }
    CHECK(scan(replayed(blob, true), true).status == 0x0022);
}

TEST_CASE("Responses that must not be cached are refused with their reason",
          "[protocol][mysql][cache]") {
    struct Row {
        const char* what;
        ResultFormat format;
        bool deprecate_eof;
        Payloads payloads;
        Uncacheable why;
    };
    const auto text = ResultFormat::text;
    const auto binary = ResultFormat::binary;
    const ByteVec err = from_hex("ff7a04233432533032"); // ERR 1146, #42S02, no message
    auto with_row = [](Payloads p, std::size_t at, ByteVec row) {
        p.insert(p.begin() + static_cast<std::ptrdiff_t>(at), std::move(row));
        return p;
    };
    const std::vector<Row> table = {
        {"an ERR in place of the result", text, false, vector_payloads("eof_error"),
         Uncacheable::error},
        {"an ERR in place of the result (deprecate_eof)", text, true, vector_payloads("deof_error"),
         Uncacheable::error},
        {"an ERR among the rows", text, false, vector_payloads("eof_error_mid_rows"),
         Uncacheable::error},
        {"an ERR among the rows (deprecate_eof)", text, true,
         vector_payloads("deof_error_mid_rows"), Uncacheable::error},
        {"an ERR in place of the EOF after the definitions",
         text,
         false,
         {{0x02}, def_a, def_b, err},
         Uncacheable::error},
        {"an ERR in place of a column definition",
         text,
         true,
         {{0x02}, def_a, err},
         Uncacheable::error},
        {"warnings in the final EOF", text, false,
         small_payloads(false, from_hex("fe00000200"), from_hex("fe01000200")),
         Uncacheable::warnings},
        {"warnings in the EOF after the definitions", text, false,
         small_payloads(false, from_hex("fe02000200")), Uncacheable::warnings},
        {"warnings in the final OK (deprecate_eof)", text, true,
         small_payloads(true, {}, from_hex("fe000002000100")), Uncacheable::warnings},
        {"several result sets", text, false, vector_payloads("eof_multi_statement"),
         Uncacheable::more_results},
        {"several result sets (deprecate_eof)", text, true, vector_payloads("deof_multi_statement"),
         Uncacheable::more_results},
        {"a stored program's results", text, false, vector_payloads("eof_compound"),
         Uncacheable::more_results},
        {"an OK alone", text, false, vector_payloads("eof_insert"), Uncacheable::no_result_set},
        {"an execute's OK alone", binary, true, vector_payloads("deof_execute_ok"),
         Uncacheable::no_result_set},
        {"a LOCAL INFILE request", text, false, vector_payloads("eof_local_infile_request"),
         Uncacheable::local_infile},
        {"an execute that opened a cursor", binary, false, vector_payloads("eof_execute_cursor"),
         Uncacheable::cursor},
        {"an execute that opened a cursor (deprecate_eof)", binary, true,
         vector_payloads("deof_execute_cursor"), Uncacheable::cursor},
        {"a final OK with session-state changes", text, true,
         small_payloads(true, {}, from_hex("fe00000240000000 00 04 0003 01 31")),
         Uncacheable::session_state},
        {"a final OK with a message", text, true,
         small_payloads(true, {}, from_hex("fe000002000000 026869")), Uncacheable::session_state},
        {"a column count of 0", text, false, {from_hex("fc0000")}, Uncacheable::malformed},
        {"a column count followed by a metadata flag",
         text,
         true,
         {{0x02, 0x01}},
         Uncacheable::malformed},
        {"an empty first packet", text, false, {{}}, Uncacheable::malformed},
        {"an empty row", text, true, with_row(small_payloads(true), 3, {}), Uncacheable::malformed},
        {"a binary row without its 0x00 header", binary, true,
         with_row(vector_payloads("deof_execute_binary_rows"), 3, from_hex("0131")),
         Uncacheable::malformed},
        {"a row in place of the EOF after the definitions",
         text,
         false,
         {{0x02}, def_a, def_b, row_1},
         Uncacheable::malformed},
        {"a packet after the end", text, false, with_row(small_payloads(false), 7, row_1),
         Uncacheable::malformed},
        {"a terminator too short to be one", text, true,
         with_row(small_payloads(true), 5, from_hex("fe0000")), Uncacheable::malformed},
        {"rows with no end",
         text,
         false,
         {{0x02}, def_a, def_b, from_hex("fe00000200"), row_1},
         Uncacheable::incomplete},
        {"nothing at all", text, false, {}, Uncacheable::incomplete},
    };
    for (const auto& row : table) {
        INFO(row.what);
        auto blob = capture(row.format, row.payloads, row.deprecate_eof, unlimited);
        REQUIRE(blob.has_error());
        CHECK(blob.error() == row.why);
    }
}

TEST_CASE("A payload longer than one packet's maximum is refused", "[protocol][mysql][cache]") {
    Capture c;
    c.start(ResultFormat::text, true, unlimited);
    REQUIRE(c.add(ByteVec{0x01}));
    REQUIRE(c.add(def_a));
    CHECK_FALSE(c.add(ByteVec(max_packet_payload + 1, 0x41)));
    CHECK(c.refused() == Uncacheable::malformed);
}

TEST_CASE("A result is refused once its blob would pass max_bytes, and copying stops",
          "[protocol][mysql][cache]") {
    const auto payloads = vector_payloads("eof_select_rows");
    const auto full = blob_of(ResultFormat::text, payloads, false);
    auto exact = capture(ResultFormat::text, payloads, false, full.size());
    REQUIRE(exact);
    CHECK(*exact == full);
    for (std::size_t max = 0; max < full.size(); ++max) {
        INFO("max_bytes " << max);
        auto blob = capture(ResultFormat::text, payloads, false, max);
        REQUIRE(blob.has_error());
        CHECK(blob.error() == Uncacheable::too_large);
    }

    Capture c;
    c.start(ResultFormat::text, false, 60);
    std::size_t fed = 0;
    while (fed < payloads.size() && c.add(payloads[fed]))
        ++fed;
    CHECK(fed < payloads.size() - 1); // refused while the relay still had packets to pass
    CHECK(c.refused() == Uncacheable::too_large);
    CHECK(c.size() == 0);
    CHECK_FALSE(c.add(payloads[fed + 1]));
    CHECK(c.size() == 0);
}

TEST_CASE("The default limit is 1 MiB", "[protocol][mysql][cache]") {
    CHECK(default_cached_result_max_bytes == 1024 * 1024);
}

TEST_CASE("A Capture can be reused after a refusal and after a blob", "[protocol][mysql][cache]") {
    Capture c;
    CHECK_FALSE(c.add(ByteVec{0x01})); // not started
    CHECK(c.finish().error() == Uncacheable::incomplete);
    for (int round = 0; round < 2; ++round) {
        c.start(ResultFormat::text, false, unlimited);
        for (const auto& p : vector_payloads("eof_error"))
            c.add(p);
        CHECK(c.finish().error() == Uncacheable::error);
        c.start(ResultFormat::text, false, unlimited);
        bool more = true;
        for (const auto& p : small_payloads(false)) {
            REQUIRE(more);
            more = c.add(p);
        }
        CHECK_FALSE(more); // the terminator ends it
        CHECK(c.done());
        auto blob = c.finish();
        REQUIRE(blob);
        CHECK(to_hex(replayed(*blob, false)) == to_hex(small_eof_wire));
    }
}

TEST_CASE("Rows of 0xFFFFFF bytes or more are stored whole and split again on replay",
          "[protocol][mysql][cache]") {
    // One text column; the row is the value's length (0xFE + 8 bytes) and the value.
    for (std::size_t total : {max_packet_payload, max_packet_payload + 10}) {
        INFO("row of " << total << " bytes");
        ByteVec row(total, 'a');
        row[0] = 0xFE;
        for (std::size_t i = 0; i < 8; ++i)
            row[1 + i] = static_cast<std::uint8_t>((total - 9) >> (8 * i));
        for (bool server_deof : {false, true}) {
            Payloads p{{0x01}, def_b};
            if (!server_deof) p.push_back(from_hex("fe00000200"));
            // The server sends the row as a full packet and the rest (empty when the row is
            // exactly 0xFFFFFF bytes).
            p.emplace_back(row.begin(), row.begin() + max_packet_payload);
            p.emplace_back(row.begin() + max_packet_payload, row.end());
            p.push_back(server_deof ? from_hex("fe000002000000") : from_hex("fe00000200"));
            const auto blob = blob_of(ResultFormat::text, p, server_deof);
            for (bool client_deof : {false, true}) {
                INFO("server deprecate_eof " << server_deof << ", client " << client_deof);
                const auto wire = replayed(blob, client_deof);
                CHECK(scan(wire, client_deof).complete);
                ByteVec expected;
                std::uint8_t seq = 1;
                seq = write_packets(ByteVec{0x01}, seq, expected);
                seq = write_packets(def_b, seq, expected);
                if (!client_deof) seq = write_packets(from_hex("fe00000200"), seq, expected);
                seq = write_packets(row, seq, expected);
                write_packets(client_deof ? from_hex("fe000002000000") : from_hex("fe00000200"),
                              seq, expected);
                CHECK(wire == expected);
                // Those wire bytes captured again give the same blob.
                ByteVec again_wire = wire;
                Payloads again;
                Bytes rest{again_wire};
                while (!rest.empty()) {
                    const std::size_t len = rest[0] | (rest[1] << 8) | (rest[2] << 16);
                    again.emplace_back(rest.begin() + 4,
                                       rest.begin() + 4 + static_cast<std::ptrdiff_t>(len));
                    rest = rest.subspan(4 + len);
                }
                CHECK(blob_of(ResultFormat::text, again, client_deof) == blob);
            }
        }
    }
}

TEST_CASE("Replay refuses a blob truncated at every length and leaves the buffer alone",
          "[protocol][mysql][cache]") {
    for (const auto& g : goldens) {
        const auto blob = blob_of(g.format, vector_payloads(std::string("eof_") + g.name), false);
        for (std::size_t len = 0; len < blob.size(); ++len) {
            for (bool client_deof : {false, true}) {
                INFO(g.name << ", length " << len << ", client deprecate_eof " << client_deof);
                ByteVec wire{0x11, 0x22};
                auto r = replay(std::string_view{blob}.substr(0, len), client_deof, 1, wire);
                REQUIRE(r.has_error());
                CHECK(r.error() == codec_errc::truncated);
                CHECK(wire == ByteVec{0x11, 0x22});
            }
        }
    }
}

TEST_CASE("Replay refuses corrupt blobs with a codec error", "[protocol][mysql][cache]") {
    const auto good = blob_of(ResultFormat::text, small_payloads(false), false);
    // Layout: 0 version, 1 format, 2-3 columns_status, 4-5 final_status, 6-9 rows,
    // 10 count length, 11 count, 12 def_a length, 13.. def_a, then def_b, row_1, row_2.
    auto edit = [&](std::size_t at, std::uint8_t value) {
        std::string b = good;
        b[at] = static_cast<char>(value);
        return b;
    };
    const std::size_t row_1_at = 12 + 1 + def_a.size() + 1 + def_b.size();
    struct Row {
        const char* what;
        std::string blob;
        codec_errc errc;
    };
    const std::vector<Row> table = {
        {"another format version", edit(0, 2), codec_errc::unexpected_message},
        {"an unknown row format", edit(1, 2), codec_errc::malformed},
        {"SERVER_MORE_RESULTS_EXISTS in the final status", edit(4, 0x0A), codec_errc::malformed},
        {"SERVER_STATUS_CURSOR_EXISTS in the columns status", edit(2, 0x42), codec_errc::malformed},
        {"SERVER_SESSION_STATE_CHANGED in the final status", edit(5, 0x40), codec_errc::malformed},
        {"one row more than stored", edit(6, 3), codec_errc::truncated},
        {"one row fewer than stored", edit(6, 1), codec_errc::trailing_bytes},
        {"a column count of 0", edit(11, 0), codec_errc::malformed},
        {"a column count that is not an integer", edit(11, 0xFB), codec_errc::malformed},
        {"a length of 0xFF", edit(12, 0xFF), codec_errc::malformed},
        {"a length past the end", edit(12, 0xFA), codec_errc::truncated},
        {"a row that reads as an EOF", edit(row_1_at + 1, 0xFE), codec_errc::malformed},
        {"a row that reads as an ERR", edit(row_1_at + 1, 0xFF), codec_errc::malformed},
        {"a byte after the end", good + 'x', codec_errc::trailing_bytes},
        {"a huge column count",
         [&] {
             std::string b = good.substr(0, 10);
             b += std::string("\x09\xfe\xff\xff\xff\xff\xff\xff\xff\x7f", 10);
             return b + good.substr(12);
         }(),
         codec_errc::truncated}, // the definitions run out
    };
    for (const auto& row : table) {
        INFO(row.what);
        for (bool client_deof : {false, true}) {
            ByteVec wire{0x33};
            auto r = replay(row.blob, client_deof, 1, wire);
            REQUIRE(r.has_error());
            CHECK(r.error() == row.errc);
            CHECK(wire == ByteVec{0x33});
        }
    }
    const auto binary =
        blob_of(ResultFormat::binary, vector_payloads("eof_execute_binary_rows"), false);
    std::string text_rows_as_binary = good;
    text_rows_as_binary[1] = 1; // text rows do not start with the 0x00 header
    ByteVec wire;
    CHECK(replay(text_rows_as_binary, false, 1, wire).error() == codec_errc::malformed);
    CHECK(replay(binary, false, 1, wire));
}

TEST_CASE("Every reason has a label and a message", "[protocol][mysql][cache]") {
    for (int i = 1; i <= static_cast<int>(Uncacheable::too_many_rows); ++i) {
        const auto why = static_cast<Uncacheable>(i);
        CHECK(std::string(uncacheable_label(why)) != "unknown");
        CHECK(make_error_code(why).message() != "unknown reason");
    }
    CHECK(std::string(uncacheable_category().name()) == "sluice.uncacheable");
    CHECK(std::string(uncacheable_label(Uncacheable::too_large)) == "too_large");
}
