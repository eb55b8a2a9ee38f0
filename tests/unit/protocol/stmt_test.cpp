// Prepared-statement messages: golden bytes both ways (built from the protocol documentation's
// layouts, and a PREPARE_OK captured from MariaDB), round trips, truncation at every length,
// trailing bytes, and the lenient COM_STMT_EXECUTE reading the session relies on.

#include "sluice/protocol/mysql/stmt.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using namespace sluice::protocol;
using namespace sluice::protocol::mysql;
using namespace sluice::test;

namespace {

ByteVec with_extra(ByteVec b, std::uint8_t extra = 0x42) {
    b.push_back(extra);
    return b;
}

// COM_STMT_EXECUTE of statement 0x01020304, no cursor, iteration count 1, for a statement
// with two parameters bound as LONGLONG (0x08) and VARCHAR-ish VAR_STRING (0xFD): null bitmap
// 0x00, new_params_bound_flag 1, types, then the values 7 (8 bytes) and "ab".
const ByteVec execute_bound = from_hex("17 04030201 00 01000000"
                                       "00 01 0800 fd00"
                                       "0700000000000000 026162");
// The same execute as libmariadb sends it the second time: flag 0, no types.
const ByteVec execute_unbound = from_hex("17 04030201 00 01000000"
                                         "00 00"
                                         "0700000000000000 026162");

} // namespace

// ---- statement ids ----

TEST_CASE("stmt_id reads bytes 1 to 4 of every COM_STMT command little-endian",
          "[protocol][mysql][stmt]") {
    for (std::uint8_t command : {0x17, 0x18, 0x19, 0x1a, 0x1c, 0xfa}) {
        INFO("command " << int{command});
        ByteVec p{command, 0x78, 0x56, 0x34, 0x12};
        CHECK(stmt_id(p) == 0x12345678u);
        p.push_back(0xff); // whatever follows the id is not read
        CHECK(stmt_id(p) == 0x12345678u);
    }
}

TEST_CASE("stmt_id has no id for a payload shorter than 5 bytes", "[protocol][mysql][stmt]") {
    const ByteVec full = from_hex("19 01000000");
    for (std::size_t len = 0; len < full.size(); ++len) {
        INFO("length " << len);
        CHECK_FALSE(stmt_id(Bytes{full}.first(len)).has_value());
    }
    CHECK(stmt_id(full) == 1u);
}

TEST_CASE("set_stmt_id overwrites only the id bytes", "[protocol][mysql][stmt]") {
    ByteVec p = execute_bound;
    set_stmt_id(p, 0xa1b2c3d4);
    ByteVec expected = execute_bound;
    expected[1] = 0xd4;
    expected[2] = 0xc3;
    expected[3] = 0xb2;
    expected[4] = 0xa1;
    CHECK(to_hex(p) == to_hex(expected));
    CHECK(stmt_id(p) == 0xa1b2c3d4u);
}

// ---- COM_STMT_PREPARE Response ----

TEST_CASE("parse_prepare_ok reads the PREPARE_OK MariaDB sent and writes it back",
          "[protocol][mysql][stmt]") {
    // 'SELECT ?, name FROM vec_t WHERE id > ?' (deof_prepare_params_columns.hex): id 21,
    // 2 columns, 2 parameters, 0 warnings.
    const ByteVec p = payload_of(read_vector_packets("deof_prepare_params_columns").at(0));
    REQUIRE(to_hex(p) == "001500000002000200000000");
    auto ok = parse_prepare_ok(p);
    REQUIRE(ok.has_value());
    CHECK(*ok == PrepareOk{21, 2, 2, 0});
    ByteVec out;
    write_prepare_ok(*ok, out);
    CHECK(to_hex(out) == to_hex(p));
}

TEST_CASE("write_prepare_ok lays out every field little-endian", "[protocol][mysql][stmt]") {
    ByteVec out{0xaa}; // appends
    write_prepare_ok({0x04030201, 0x0605, 0x0807, 0x0a09}, out);
    CHECK(to_hex(out) == "aa"
                         "00"
                         "01020304"
                         "0506"
                         "0708"
                         "00"
                         "090a");
    auto back = parse_prepare_ok(Bytes{out}.subspan(1));
    REQUIRE(back.has_value());
    CHECK(*back == PrepareOk{0x04030201, 0x0605, 0x0807, 0x0a09});
}

TEST_CASE("parse_prepare_ok accepts the 9-byte form without filler and warnings",
          "[protocol][mysql][stmt]") {
    auto ok = parse_prepare_ok(from_hex("00 07000000 0100 0300"));
    REQUIRE(ok.has_value());
    CHECK(*ok == PrepareOk{7, 1, 3, 0});
}

TEST_CASE("parse_prepare_ok refuses truncated input at every length but the short form",
          "[protocol][mysql][stmt]") {
    ByteVec full;
    write_prepare_ok({9, 1, 2, 3}, full);
    for (std::size_t len = 0; len < full.size(); ++len) {
        INFO("length " << len);
        auto ok = parse_prepare_ok(Bytes{full}.first(len));
        if (len == 9) {
            CHECK(ok.has_value());
            continue;
        }
        REQUIRE(ok.has_error());
        CHECK(ok.error() == codec_errc::truncated);
    }
}

TEST_CASE("parse_prepare_ok refuses trailing bytes, a non-zero filler and an ERR",
          "[protocol][mysql][stmt]") {
    ByteVec full;
    write_prepare_ok({9, 1, 2, 3}, full);
    auto longer = parse_prepare_ok(with_extra(full, 0x01)); // MySQL's metadata_follows
    REQUIRE(longer.has_error());
    CHECK(longer.error() == codec_errc::trailing_bytes);

    ByteVec filler = full;
    filler[9] = 0x01;
    auto bad = parse_prepare_ok(filler);
    REQUIRE(bad.has_error());
    CHECK(bad.error() == codec_errc::malformed);

    const ByteVec err = payload_of(read_vector_packets("deof_prepare_error").at(0));
    auto e = parse_prepare_ok(err);
    REQUIRE(e.has_error());
    CHECK(e.error() == codec_errc::unexpected_message);
}

TEST_CASE("set_prepare_ok_id gives the client another id and keeps the rest",
          "[protocol][mysql][stmt]") {
    ByteVec p;
    write_prepare_ok({21, 2, 2, 1}, p);
    set_prepare_ok_id(p, 0x01000000);
    CHECK(to_hex(p) == "00"
                       "00000001"
                       "0200"
                       "0200"
                       "00"
                       "0100");
    auto ok = parse_prepare_ok(p);
    REQUIRE(ok.has_value());
    CHECK(*ok == PrepareOk{0x01000000, 2, 2, 1});
}

// ---- COM_STMT_EXECUTE ----

TEST_CASE("parse_execute reads a request that binds its parameter types",
          "[protocol][mysql][stmt]") {
    auto e = parse_execute(execute_bound, 2);
    REQUIRE(e.has_value());
    CHECK(e->statement_id == 0x01020304u);
    CHECK(e->flags == 0);
    CHECK_FALSE(e->cursor());
    CHECK(e->iteration_count == 1);
    CHECK(e->new_params_bound);
    CHECK(to_hex(e->types) == "0800fd00");
    CHECK(to_hex(e->params_block) == "00010800fd000700000000000000026162");
    ByteVec out;
    write_execute(*e, out);
    CHECK(to_hex(out) == to_hex(execute_bound));
}

TEST_CASE("parse_execute reads a request that relies on types bound earlier",
          "[protocol][mysql][stmt]") {
    auto e = parse_execute(execute_unbound, 2);
    REQUIRE(e.has_value());
    CHECK(e->statement_id == 0x01020304u);
    CHECK_FALSE(e->new_params_bound);
    CHECK(e->types.empty());
    ByteVec out;
    write_execute(*e, out);
    CHECK(to_hex(out) == to_hex(execute_unbound));
}

TEST_CASE("parse_execute reads a statement without parameters", "[protocol][mysql][stmt]") {
    const ByteVec p = from_hex("17 05000000 00 01000000");
    auto e = parse_execute(p, 0);
    REQUIRE(e.has_value());
    CHECK(e->statement_id == 5);
    CHECK_FALSE(e->new_params_bound);
    CHECK(e->types.empty());
    CHECK(e->params_block.empty());
    // Without parameters a byte where the flag would be is not a flag.
    auto extra = parse_execute(from_hex("17 05000000 00 01000000 00 01 0800"), 0);
    REQUIRE(extra.has_value());
    CHECK_FALSE(extra->new_params_bound);
}

TEST_CASE("parse_execute tells cursor requests by the low three flag bits",
          "[protocol][mysql][stmt]") {
    struct Case {
        std::uint8_t flags;
        bool cursor;
    };
    const Case cases[] = {
        {0x00, false}, // CURSOR_TYPE_NO_CURSOR
        {0x01, true},  // CURSOR_TYPE_READ_ONLY
        {0x02, true},  // CURSOR_TYPE_FOR_UPDATE
        {0x04, true},  // CURSOR_TYPE_SCROLLABLE
        {0x08, false}, // PARAMETER_COUNT_AVAILABLE (MySQL 8), not a cursor
        {0x09, true},
    };
    for (const Case& c : cases) {
        INFO("flags " << int{c.flags});
        ByteVec p = execute_unbound;
        p[5] = c.flags;
        auto e = parse_execute(p, 2);
        REQUIRE(e.has_value());
        CHECK(e->flags == c.flags);
        CHECK(e->cursor() == c.cursor);
    }
}

TEST_CASE("parse_execute refuses only a request shorter than its fixed 10 bytes",
          "[protocol][mysql][stmt]") {
    // As the session does today: from 10 bytes on the request runs; what is missing after
    // the fixed part decides only whether types were bound.
    struct Case {
        std::size_t len;
        bool bound;
        std::size_t types;
    };
    const Case cases[] = {
        {10, false, 0}, // ends before the null bitmap
        {11, false, 0}, // ends before the flag
        {12, true, 0},  // flag 1, types cut short: bound, the old types stay
        {13, true, 0},  {14, true, 0}, {15, true, 0}, {16, true, 4}, // all types, no values
        {17, true, 4},
    };
    for (std::size_t len = 0; len < 10; ++len) {
        INFO("length " << len);
        auto e = parse_execute(Bytes{execute_bound}.first(len), 2);
        REQUIRE(e.has_error());
        CHECK(e.error() == codec_errc::truncated);
    }
    for (const Case& c : cases) {
        INFO("length " << c.len);
        const Bytes cut = Bytes{execute_bound}.first(c.len);
        auto e = parse_execute(cut, 2);
        REQUIRE(e.has_value());
        CHECK(e->statement_id == 0x01020304u);
        CHECK(e->new_params_bound == c.bound);
        CHECK(e->types.size() == c.types);
        ByteVec out;
        write_execute(*e, out);
        CHECK(to_hex(out) == to_hex(cut));
    }
}

TEST_CASE("parse_execute counts a new_params_bound_flag other than 1 as not bound",
          "[protocol][mysql][stmt]") {
    ByteVec p = execute_bound;
    p[11] = 2;
    auto e = parse_execute(p, 2);
    REQUIRE(e.has_value());
    CHECK_FALSE(e->new_params_bound);
    CHECK(e->types.empty());
}

TEST_CASE("parse_execute finds the flag after a null bitmap of several bytes",
          "[protocol][mysql][stmt]") {
    // 9 parameters: a 2-byte null bitmap, then the flag and 18 type bytes.
    ByteVec p = from_hex("17 01000000 00 01000000 ffff 01");
    for (int i = 0; i < 9; ++i) {
        p.push_back(0x06); // MYSQL_TYPE_NULL
        p.push_back(0x00);
    }
    auto e = parse_execute(p, 9);
    REQUIRE(e.has_value());
    CHECK(e->new_params_bound);
    CHECK(e->types.size() == 18);
    // Read as 8 parameters the flag would be 0xFF: not bound.
    auto eight = parse_execute(p, 8);
    REQUIRE(eight.has_value());
    CHECK_FALSE(eight->new_params_bound);
}

TEST_CASE("parse_execute refuses another command", "[protocol][mysql][stmt]") {
    ByteVec p = execute_bound;
    p[0] = 0x18;
    auto e = parse_execute(p, 2);
    REQUIRE(e.has_error());
    CHECK(e.error() == codec_errc::unexpected_message);
}

TEST_CASE("write_execute_with_types turns a later execute into a first one",
          "[protocol][mysql][stmt]") {
    const ByteVec types = from_hex("0800fd00");
    ByteVec out{0xaa}; // appends
    write_execute_with_types(execute_unbound, 2, types, out);
    CHECK(to_hex(Bytes{out}.subspan(1)) == to_hex(execute_bound));
    auto e = parse_execute(Bytes{out}.subspan(1), 2);
    REQUIRE(e.has_value());
    CHECK(e->new_params_bound);
    CHECK(to_hex(e->types) == "0800fd00");
}

TEST_CASE("write_execute_with_types keeps a request without values whole",
          "[protocol][mysql][stmt]") {
    // The flag is the last byte (all parameters NULL, nothing follows it).
    const ByteVec request = from_hex("17 02000000 01 01000000 01 00");
    ByteVec out;
    write_execute_with_types(request, 1, from_hex("0600"), out);
    CHECK(to_hex(out) == "17020000000101000000"
                         "01"
                         "01"
                         "0600");
    auto e = parse_execute(out, 1);
    REQUIRE(e.has_value());
    CHECK(e->cursor());
    CHECK(e->new_params_bound);
    CHECK(to_hex(e->types) == "0600");
}

// ---- COM_STMT_SEND_LONG_DATA ----

TEST_CASE("parse_long_data reads statement, parameter and data, and writes them back",
          "[protocol][mysql][stmt]") {
    const ByteVec p = from_hex("18 2a000000 0100 68656c6c6f");
    auto d = parse_long_data(p);
    REQUIRE(d.has_value());
    CHECK(d->statement_id == 42);
    CHECK(d->param_id == 1);
    CHECK(string_of(d->data) == "hello");
    CHECK(d->data.data() == p.data() + 7); // a view into the payload
    ByteVec out;
    write_long_data(*d, out);
    CHECK(to_hex(out) == to_hex(p));
}

TEST_CASE("parse_long_data accepts empty data and refuses fewer than 7 bytes",
          "[protocol][mysql][stmt]") {
    ByteVec full;
    write_long_data({0x01020304, 0x0506, {}}, full);
    CHECK(to_hex(full) == "18"
                          "04030201"
                          "0605");
    auto d = parse_long_data(full);
    REQUIRE(d.has_value());
    CHECK(*d == LongData{0x01020304, 0x0506, {}});
    for (std::size_t len = 0; len < full.size(); ++len) {
        INFO("length " << len);
        auto cut = parse_long_data(Bytes{full}.first(len));
        REQUIRE(cut.has_error());
        CHECK(cut.error() == codec_errc::truncated);
    }
    full[0] = 0x17;
    auto other = parse_long_data(full);
    REQUIRE(other.has_error());
    CHECK(other.error() == codec_errc::unexpected_message);
}

TEST_CASE("LongData compares its data by content", "[protocol][mysql][stmt]") {
    const ByteVec a = bytes_of("abc"), b = bytes_of("abc"), c = bytes_of("abd");
    CHECK(LongData{1, 2, a} == LongData{1, 2, b});
    CHECK_FALSE(LongData{1, 2, a} == LongData{1, 2, c});
    CHECK_FALSE(LongData{1, 2, a} == LongData{1, 3, a});
}

// ---- COM_STMT_FETCH, COM_STMT_CLOSE, COM_STMT_RESET ----

TEST_CASE("COM_STMT_FETCH is read and written as the documentation lays it out",
          "[protocol][mysql][stmt]") {
    ByteVec out;
    write_stmt_fetch(0x01020304, 0x00000100, out);
    CHECK(to_hex(out) == "1c"
                         "04030201"
                         "00010000");
    auto f = parse_stmt_fetch(out);
    REQUIRE(f.has_value());
    CHECK(*f == StmtFetch{0x01020304, 256});
    CHECK(stmt_id(out) == 0x01020304u);
}

TEST_CASE("parse_stmt_fetch refuses truncated input at every length, trailing bytes and "
          "another command",
          "[protocol][mysql][stmt]") {
    ByteVec full;
    write_stmt_fetch(7, 1, full);
    for (std::size_t len = 0; len < full.size(); ++len) {
        INFO("length " << len);
        auto f = parse_stmt_fetch(Bytes{full}.first(len));
        REQUIRE(f.has_error());
        CHECK(f.error() == codec_errc::truncated);
    }
    auto longer = parse_stmt_fetch(with_extra(full));
    REQUIRE(longer.has_error());
    CHECK(longer.error() == codec_errc::trailing_bytes);
    full[0] = 0x1a;
    auto reset = parse_stmt_fetch(full);
    REQUIRE(reset.has_error());
    CHECK(reset.error() == codec_errc::unexpected_message);
}

TEST_CASE("write_stmt_close and write_stmt_reset append 5 bytes stmt_id reads back",
          "[protocol][mysql][stmt]") {
    ByteVec close{0xaa};
    write_stmt_close(0xdeadbeef, close);
    CHECK(to_hex(close) == "aa19efbeadde");
    CHECK(stmt_id(Bytes{close}.subspan(1)) == 0xdeadbeefu);
    ByteVec reset;
    write_stmt_reset(3, reset);
    CHECK(to_hex(reset) == "1a03000000");
    CHECK(stmt_id(reset) == 3u);
}
