// ResponseScanner: where a server's response ends, fed whole and in chunks of 1, 2, 3, 5 and 64
// bytes. Most vectors are real MariaDB 10.11 responses (tests/vectors/mysql/, captured by
// capture.py); the rest are built from packets as a server writes them.

#include "sluice/protocol/mysql/messages.hpp"
#include "sluice/protocol/mysql/packet.hpp"
#include "sluice/protocol/mysql/response_scanner.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>
#include <optional>

using namespace sluice;
using namespace sluice::protocol;
using namespace sluice::protocol::mysql;
using namespace sluice::test;

namespace {

using State = ResponseScanner::State;

/// What a scanner made of a byte stream.
struct Outcome {
    std::optional<error_code> error;
    std::size_t consumed = 0;
    State state = State::running;
    std::uint16_t status = 0;
    bool ended_with_error = false;
    std::uint64_t packets = 0;
    std::uint32_t statement_id = 0;
    bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
    os << "{error=" << (o.error ? o.error->message() : "none") << " consumed=" << o.consumed
       << " state=" << static_cast<int>(o.state) << " status=0x" << std::hex << o.status << std::dec
       << " err=" << o.ended_with_error << " packets=" << o.packets << " stmt=" << o.statement_id
       << "}";
    return os;
}

/// Feeds `in` to `s` in chunks of `chunk` bytes (0: all at once) until the response ends, an
/// error comes back or the input runs out. Checks that a chunk is consumed whole while the
/// scanner keeps running.
Outcome feed(ResponseScanner& s, Bytes in, std::size_t chunk) {
    Outcome o;
    std::size_t pos = 0;
    while (pos < in.size() && s.state() == State::running) {
        const std::size_t n = chunk == 0 ? in.size() - pos : std::min(chunk, in.size() - pos);
        auto r = s.feed(in.subspan(pos, n));
        if (!r) {
            // Where in the input the error shows depends on the chunking; that it does not.
            o.error = r.error();
            pos = 0;
            break;
        }
        if (s.state() == State::running && *r != n) {
            o.error = make_error_code(codec_errc::malformed); // a broken promise, reported
            break;
        }
        pos += *r;
    }
    o.consumed = pos;
    o.state = s.state();
    o.status = s.last_status();
    o.ended_with_error = s.ended_with_error();
    o.packets = s.packets();
    o.statement_id = s.statement_id();
    return o;
}

Outcome scan(ResponseKind kind, bool deprecate_eof, Bytes in, std::size_t chunk) {
    ResponseScanner s;
    s.start(kind, deprecate_eof);
    return feed(s, in, chunk);
}

constexpr std::size_t chunk_sizes[] = {0, 1, 2, 3, 5, 64};

/// The same bytes fed whole and in every chunk size give the same outcome; returns it.
Outcome scan_all_ways(ResponseKind kind, bool deprecate_eof, Bytes in) {
    const Outcome whole = scan(kind, deprecate_eof, in, 0);
    for (std::size_t chunk : chunk_sizes) {
        INFO("chunk " << chunk);
        CHECK(scan(kind, deprecate_eof, in, chunk) == whole);
    }
    return whole;
}

// Bytes that follow a response: the next response's first packet.
const ByteVec next_response = from_hex("07000001 00000002000000");

struct Expect {
    State state = State::done;
    std::optional<std::uint16_t> status; ///< unset: unchanged by this response
    bool error = false;
};

/// The vector ends exactly at its last byte: with extra bytes after it, the scanner stops
/// there; without them, one byte short it is still running.
void check_vector(const std::string& name, ResponseKind kind, bool deprecate_eof,
                  const Expect& expect) {
    INFO("vector " << name);
    const ByteVec response = read_vector(name);
    REQUIRE_FALSE(response.empty());
    ByteVec with_next = response;
    append(with_next, next_response);

    const Outcome o = scan_all_ways(kind, deprecate_eof, with_next);
    CHECK_FALSE(o.error);
    CHECK(o.consumed == response.size());
    CHECK(o.state == expect.state);
    CHECK(o.ended_with_error == expect.error);
    if (expect.status) {
        CHECK(o.status == *expect.status);
    } else {
        CHECK(o.status == 0); // a fresh scanner's
    }
    CHECK(o.packets == read_vector_packets(name).size());

    const Outcome exact = scan_all_ways(kind, deprecate_eof, response);
    CHECK(exact == o);
    const Outcome short_by_one =
        scan(kind, deprecate_eof, Bytes{response}.first(response.size() - 1), 1);
    CHECK_FALSE(short_by_one.error);
    CHECK(short_by_one.state == State::running);
    CHECK(short_by_one.consumed == response.size() - 1);
}

// ---- building responses by hand ----

ByteVec column_def(std::string_view name) {
    // Protocol::ColumnDefinition41: catalog "def", schema, table, org_table, name, org_name,
    // fixed-length fields (0x0C), charset, length, type, flags, decimals, filler.
    ByteVec p;
    auto lenenc_str = [&p](std::string_view s) {
        p.push_back(static_cast<std::uint8_t>(s.size()));
        append(p, bytes_of(s));
    };
    lenenc_str("def");
    lenenc_str("db");
    lenenc_str("t");
    lenenc_str("t");
    lenenc_str(name);
    lenenc_str(name);
    append(p, from_hex("0c 2100 50000000 fd 0000 00 0000"));
    return p;
}

ByteVec ok(std::uint8_t header, std::uint16_t st, std::uint64_t affected = 0) {
    ByteVec p;
    write_ok({header, affected, 0, st, 0, ""}, p);
    return p;
}

ByteVec eof(std::uint16_t st) {
    ByteVec p;
    write_eof({0, st}, p);
    return p;
}

ByteVec err(std::uint16_t code = 1146) {
    ByteVec p;
    write_err({code, "42S02", "Table 'x' doesn't exist"}, p);
    return p;
}

/// A response from payloads, with consecutive sequence numbers from 1; payloads of 0xFFFFFF
/// bytes or more are split as on the wire.
ByteVec response_of(const std::vector<ByteVec>& payloads) {
    ByteVec out;
    std::uint8_t seq = 1;
    for (const ByteVec& p : payloads)
        seq = write_packets(p, seq, out);
    return out;
}

/// A text result set: column count, definitions, [EOF], rows, terminator.
std::vector<ByteVec> result_set(bool deprecate_eof, std::size_t columns,
                                const std::vector<ByteVec>& rows, std::uint16_t st) {
    std::vector<ByteVec> ps;
    ps.push_back({static_cast<std::uint8_t>(columns)});
    for (std::size_t i = 0; i < columns; ++i)
        ps.push_back(column_def("c" + std::to_string(i)));
    if (!deprecate_eof) ps.push_back(eof(st & ~status::more_results_exists));
    for (const ByteVec& r : rows)
        ps.push_back(r);
    ps.push_back(deprecate_eof ? ok(0xFE, st) : eof(st));
    return ps;
}

std::vector<ByteVec> concat(std::vector<ByteVec> a, const std::vector<ByteVec>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

} // namespace

// ---- real MariaDB responses ----

TEST_CASE("ResponseScanner finds the end of real text result sets", "[protocol][mysql]") {
    // SELECT id, name, score FROM vec_t ORDER BY id: 3 columns, 3 rows (one with a NULL).
    check_vector("cli_select_rows", ResponseKind::query, false, {State::done, 0x0022});
    check_vector("eof_select_rows", ResponseKind::query, false, {State::done, 0x0022});
    check_vector("deof_select_rows", ResponseKind::query, true, {State::done, 0x0022});
    // A row whose first byte is 0xFB (NULL) is a row.
    check_vector("eof_select_null_first", ResponseKind::query, false, {State::done, 0x0002});
    check_vector("deof_select_null_first", ResponseKind::query, true, {State::done, 0x0002});
}

TEST_CASE("ResponseScanner follows real multi-statement responses to the last result",
          "[protocol][mysql]") {
    // SELECT 1; SELECT 2: the first terminator carries SERVER_MORE_RESULTS_EXISTS.
    check_vector("cli_multi_statement", ResponseKind::query, false, {State::done, 0x0002});
    check_vector("eof_multi_statement", ResponseKind::query, false, {State::done, 0x0002});
    check_vector("deof_multi_statement", ResponseKind::query, true, {State::done, 0x0002});
    // UPDATE ...; DELETE ...: an OK with more results, then the last OK.
    check_vector("eof_multi_dml", ResponseKind::query, false, {State::done, 0x0002});
    check_vector("deof_multi_dml", ResponseKind::query, true, {State::done, 0x0002});
    // BEGIN NOT ATOMIC SELECT ..; SELECT ..; END (as CALL): two result sets, then an OK.
    check_vector("eof_compound", ResponseKind::query, false, {State::done, 0x0002});
    check_vector("deof_compound", ResponseKind::query, true, {State::done, 0x0002});
}

TEST_CASE("ResponseScanner ends a multi-statement response at an ERR", "[protocol][mysql]") {
    // SELECT 1; SELECT * FROM no_such_table: the status is the first result's.
    check_vector("eof_multi_statement_error", ResponseKind::query, false,
                 {State::done, 0x000a, true});
    check_vector("deof_multi_statement_error", ResponseKind::query, true,
                 {State::done, 0x000a, true});
}

TEST_CASE("ResponseScanner ends at an ERR in the middle of the rows", "[protocol][mysql]") {
    // Two rows, then "Subquery returns more than 1 row" (1242).
    check_vector("eof_error_mid_rows", ResponseKind::query, false, {State::done, 0x0022, true});
    check_vector("deof_error_mid_rows", ResponseKind::query, true, {State::done, {}, true});
}

TEST_CASE("ResponseScanner takes real OK and ERR responses as one packet", "[protocol][mysql]") {
    check_vector("cli_insert", ResponseKind::query, false, {State::done, 0x0002});
    check_vector("cli_create_temporary", ResponseKind::query, false, {State::done, 0x0002});
    check_vector("eof_insert", ResponseKind::query, false, {State::done, 0x0002});
    check_vector("deof_insert", ResponseKind::query, true, {State::done, 0x0002});
    check_vector("cli_error", ResponseKind::query, false, {State::done, {}, true});
    check_vector("deof_error", ResponseKind::query, true, {State::done, {}, true});
    // The transaction flag travels in the status.
    check_vector("deof_begin", ResponseKind::query, true,
                 {State::done, status::autocommit | status::in_trans});
    check_vector("deof_select_in_trans", ResponseKind::query, true,
                 {State::done, status::autocommit | status::in_trans});
    check_vector("eof_select_in_trans", ResponseKind::query, false,
                 {State::done, status::autocommit | status::in_trans});
    check_vector("deof_commit", ResponseKind::query, true, {State::done, status::autocommit});
}

TEST_CASE("ResponseScanner hands over for LOCAL INFILE and resumes for the result",
          "[protocol][mysql]") {
    for (bool deof : {false, true}) {
        const std::string prefix = deof ? "deof_" : "eof_";
        INFO(prefix);
        check_vector(prefix + "local_infile_request", ResponseKind::query, deof,
                     {State::local_infile, {}});
        const ByteVec request = read_vector(prefix + "local_infile_request");
        const ByteVec result = read_vector(prefix + "local_infile_result");
        for (std::size_t chunk : chunk_sizes) {
            INFO("chunk " << chunk);
            ResponseScanner s;
            s.start(ResponseKind::query, deof);
            ByteVec in = request;
            append(in, from_hex("0c000002 35")); // client data is never fed to it
            const Outcome first = feed(s, in, chunk);
            CHECK(first.state == State::local_infile);
            CHECK(first.consumed == request.size());
            s.resume();
            CHECK(s.state() == State::running);
            ByteVec rest = result;
            append(rest, next_response);
            const Outcome second = feed(s, rest, chunk);
            CHECK_FALSE(second.error);
            CHECK(second.state == State::done);
            CHECK(second.consumed == result.size());
            CHECK(second.status == status::autocommit);
            CHECK_FALSE(second.ended_with_error);
        }
    }
}

TEST_CASE("ResponseScanner skips real COM_STMT_PREPARE responses", "[protocol][mysql]") {
    for (bool deof : {false, true}) {
        const std::string prefix = deof ? "deof_" : "eof_";
        INFO(prefix);
        // 2 parameters and 2 columns; 2 parameters only; 2 columns only; none.
        for (const char* name : {"prepare_params_columns", "prepare_params_only",
                                 "prepare_columns_only", "prepare_none"}) {
            check_vector(prefix + name, ResponseKind::prepare, deof, {State::done, {}});
            const ByteVec r = read_vector(prefix + name);
            const std::uint32_t id =
                r[5] | (r[6] << 8) | (r[7] << 16) | (std::uint32_t{r[8]} << 24);
            CHECK(scan(ResponseKind::prepare, deof, r, 0).statement_id == id);
            CHECK(id != 0);
        }
        check_vector(prefix + "prepare_error", ResponseKind::prepare, deof,
                     {State::done, {}, true});
    }
}

TEST_CASE("ResponseScanner follows real binary result sets and cursors", "[protocol][mysql]") {
    for (bool deof : {false, true}) {
        const std::string prefix = deof ? "deof_" : "eof_";
        INFO(prefix);
        // COM_STMT_EXECUTE: binary rows start with 0x00, which is not an OK here.
        check_vector(prefix + "execute_binary_rows", ResponseKind::query, deof,
                     {State::done, status::autocommit});
        check_vector(prefix + "execute_ok", ResponseKind::query, deof,
                     {State::done, status::autocommit});
        // With a cursor: column definitions, then an EOF (or 0xFE OK) with
        // SERVER_STATUS_CURSOR_EXISTS and no rows.
        check_vector(prefix + "execute_cursor", ResponseKind::cursor, deof, {State::done, 0x0062});
        // #7: a cursor whose statement fails when it runs: the definitions, then the ERR.
        check_vector(prefix + "execute_cursor_error", ResponseKind::cursor, deof,
                     {State::done, {}, true});
        // COM_STMT_FETCH: rows up to an EOF; the last one has SERVER_STATUS_LAST_ROW_SENT.
        check_vector(prefix + "fetch_some", ResponseKind::rows, deof, {State::done, 0x0042});
        check_vector(prefix + "fetch_rest", ResponseKind::rows, deof, {State::done, 0x0082});
    }
}

TEST_CASE("#7: stored programs with cursors leave CURSOR_EXISTS in flags; their results go on",
          "[protocol][mysql]") {
    for (bool deof : {false, true}) {
        const std::string prefix = deof ? "deof_" : "eof_";
        INFO(prefix);
        // CALL and BEGIN NOT ATOMIC ... END whose cursor was opened, fetched and closed: the
        // result set that follows says CURSOR_EXISTS | MORE_RESULTS, and the final OK ends it.
        for (auto kind : {ResponseKind::query, ResponseKind::cursor}) {
            check_vector(prefix + "call_cursor", kind, deof, {State::done, 0x0022});
            check_vector(prefix + "compound_cursor", kind, deof, {State::done, 0x0022});
        }
    }
}

TEST_CASE("#7: only an execute that asked for a cursor stops at CURSOR_EXISTS",
          "[protocol][mysql]") {
    // The same bytes as a plain query: the response is not over, rows may follow.
    const ByteVec cursor = read_vector("eof_execute_cursor");
    const Outcome o = scan(ResponseKind::query, false, cursor, 0);
    CHECK_FALSE(o.error);
    CHECK(o.state == State::running);
    CHECK(o.consumed == cursor.size());
}

TEST_CASE("ResponseScanner follows real COM_FIELD_LIST and single-packet responses",
          "[protocol][mysql]") {
    for (bool deof : {false, true}) {
        const std::string prefix = deof ? "deof_" : "eof_";
        INFO(prefix);
        check_vector(prefix + "field_list", ResponseKind::field_list, deof,
                     {State::done, status::autocommit});
        // COM_PING's OK, COM_STATISTICS' text, COM_INIT_DB's ERR: one packet each.
        // An OK's status flags are read whatever the response kind.
        check_vector(prefix + "ping", ResponseKind::single, deof,
                     {State::done, status::autocommit});
        check_vector(prefix + "statistics", ResponseKind::single, deof, {State::done, {}});
        check_vector(prefix + "init_db_error", ResponseKind::single, deof, {State::done, {}, true});
    }
}

// ---- built responses ----

TEST_CASE("ResponseScanner follows built text result sets with and without DEPRECATE_EOF",
          "[protocol][mysql]") {
    for (bool deof : {false, true}) {
        INFO("deprecate_eof " << deof);
        const std::vector<ByteVec> rows{from_hex("0131 0161"), from_hex("fb 0162"),
                                        from_hex("0133 fb")};
        const ByteVec r = response_of(result_set(deof, 2, rows, status::autocommit));
        ByteVec in = r;
        append(in, next_response);
        const Outcome o = scan_all_ways(ResponseKind::query, deof, in);
        CHECK_FALSE(o.error);
        CHECK(o.consumed == r.size());
        CHECK(o.state == State::done);
        CHECK(o.status == status::autocommit);
        CHECK(o.packets == (deof ? 7u : 8u));

        const ByteVec none = response_of(result_set(deof, 1, {}, status::in_trans));
        const Outcome empty = scan_all_ways(ResponseKind::query, deof, none);
        CHECK(empty.consumed == none.size());
        CHECK(empty.state == State::done);
        CHECK(empty.status == status::in_trans);
    }
}

TEST_CASE("ResponseScanner reads a column count written with a longer length encoding",
          "[protocol][mysql]") {
    // 300 columns: the count is 0xFC 0x2C 0x01.
    std::vector<ByteVec> ps{from_hex("fc2c01")};
    for (int i = 0; i < 300; ++i)
        ps.push_back(column_def("c"));
    ps.push_back(eof(2));
    ps.push_back(eof(2));
    const ByteVec r = response_of(ps);
    const Outcome o = scan_all_ways(ResponseKind::query, false, r);
    CHECK(o.state == State::done);
    CHECK(o.consumed == r.size());
}

TEST_CASE("ResponseScanner follows CALL: result sets and OK packets with more results",
          "[protocol][mysql]") {
    for (bool deof : {false, true}) {
        INFO("deprecate_eof " << deof);
        const std::uint16_t more = status::autocommit | status::more_results_exists;
        std::vector<ByteVec> ps = result_set(deof, 1, {from_hex("0131")}, more);
        ps = concat(ps, result_set(deof, 2, {from_hex("0132 0133")}, more));
        ps.push_back(ok(0x00, more, 1)); // a DML inside the procedure
        ps.push_back(ok(0x00, status::autocommit | status::in_trans));
        const ByteVec r = response_of(ps);
        ByteVec in = r;
        append(in, next_response);
        const Outcome o = scan_all_ways(ResponseKind::query, deof, in);
        CHECK_FALSE(o.error);
        CHECK(o.consumed == r.size());
        CHECK(o.state == State::done);
        CHECK(o.status == (status::autocommit | status::in_trans));
    }
}

TEST_CASE("ResponseScanner ends where a result set's ERR ends it", "[protocol][mysql]") {
    for (bool deof : {false, true}) {
        INFO("deprecate_eof " << deof);
        std::vector<ByteVec> ps{{0x01}, column_def("a")};
        if (!deof) ps.push_back(eof(2));
        ps.push_back(from_hex("0131"));
        ps.push_back(err(1317)); // query execution was interrupted
        const ByteVec r = response_of(ps);
        ByteVec in = r;
        append(in, next_response);
        const Outcome o = scan_all_ways(ResponseKind::query, deof, in);
        CHECK(o.consumed == r.size());
        CHECK(o.state == State::done);
        CHECK(o.ended_with_error);
    }
}

TEST_CASE("ResponseScanner follows prepare responses built by hand", "[protocol][mysql]") {
    auto prepare_ok = [](std::uint32_t id, std::uint16_t columns, std::uint16_t params) {
        ByteVec p{0x00};
        for (int i = 0; i < 4; ++i)
            p.push_back(static_cast<std::uint8_t>(id >> (8 * i)));
        p.push_back(static_cast<std::uint8_t>(columns));
        p.push_back(static_cast<std::uint8_t>(columns >> 8));
        p.push_back(static_cast<std::uint8_t>(params));
        p.push_back(static_cast<std::uint8_t>(params >> 8));
        append(p, from_hex("00 0000"));
        return p;
    };
    for (bool deof : {false, true}) {
        for (auto [columns, params] :
             {std::pair{0, 0}, std::pair{3, 0}, std::pair{0, 2}, std::pair{2, 300}}) {
            INFO("deprecate_eof " << deof << " columns " << columns << " params " << params);
            std::vector<ByteVec> ps{prepare_ok(0x01020304, static_cast<std::uint16_t>(columns),
                                               static_cast<std::uint16_t>(params))};
            for (int i = 0; i < params; ++i)
                ps.push_back(column_def("?"));
            if (params && !deof) ps.push_back(eof(2));
            for (int i = 0; i < columns; ++i)
                ps.push_back(column_def("c"));
            if (columns && !deof) ps.push_back(eof(2));
            const ByteVec r = response_of(ps);
            ByteVec in = r;
            append(in, next_response);
            const Outcome o = scan_all_ways(ResponseKind::prepare, deof, in);
            CHECK_FALSE(o.error);
            CHECK(o.consumed == r.size());
            CHECK(o.state == State::done);
            CHECK(o.statement_id == 0x01020304u);
            CHECK(o.packets == ps.size());
        }
    }
}

TEST_CASE("ResponseScanner follows rows and field lists that end with an ERR",
          "[protocol][mysql]") {
    const ByteVec rows = response_of({from_hex("00000131"), err(1243)});
    const Outcome o = scan_all_ways(ResponseKind::rows, false, rows);
    CHECK(o.state == State::done);
    CHECK(o.ended_with_error);
    CHECK(o.consumed == rows.size());
    const ByteVec fields = response_of({err(1146)});
    const Outcome f = scan_all_ways(ResponseKind::field_list, true, fields);
    CHECK(f.state == State::done);
    CHECK(f.ended_with_error);
}

TEST_CASE("ResponseScanner does not take a 16 MiB row starting with 0xFE for a terminator",
          "[protocol][mysql]") {
    // A row of one column whose length is written as 0xFE + 8 bytes: at least 0xFFFFFF bytes,
    // so it spans packets. The continuation packet's bytes are data: here they look like an
    // EOF, then like an ERR; the scanner must read neither.
    const std::size_t payload = max_packet_payload + 5;
    ByteVec row(payload, 'x');
    row[0] = 0xFE;
    const std::uint64_t value_len = payload - 9;
    for (int i = 0; i < 8; ++i)
        row[1 + i] = static_cast<std::uint8_t>(value_len >> (8 * i));
    for (bool deof : {false, true}) {
        for (const char* tail : {"fe00000200", "ff15042332"}) {
            INFO("deprecate_eof " << deof << " continuation " << tail);
            const ByteVec t = from_hex(tail);
            std::copy(t.begin(), t.end(), row.end() - 5);
            const ByteVec r = response_of(result_set(deof, 1, {row, from_hex("0161")}, 2));
            ByteVec in = r;
            append(in, next_response);
            const Outcome whole = scan(ResponseKind::query, deof, in, 0);
            CHECK_FALSE(whole.error);
            CHECK(whole.state == State::done);
            CHECK(whole.consumed == r.size());
            CHECK_FALSE(whole.ended_with_error);
            CHECK(whole.packets == (deof ? 5u : 6u)); // continuations are not counted
            for (std::size_t chunk : {1, 2, 3, 5, 64}) {
                INFO("chunk " << chunk);
                CHECK(scan(ResponseKind::query, deof, in, chunk) == whole);
            }
        }
    }
}

TEST_CASE("ResponseScanner follows a row of exactly 0xFFFFFF bytes and its empty continuation",
          "[protocol][mysql]") {
    ByteVec row(max_packet_payload, 'y');
    row[0] = 0xFE;
    const std::uint64_t value_len = max_packet_payload - 9;
    for (int i = 0; i < 8; ++i)
        row[1 + i] = static_cast<std::uint8_t>(value_len >> (8 * i));
    for (bool deof : {false, true}) {
        INFO("deprecate_eof " << deof);
        const ByteVec r = response_of(result_set(deof, 1, {row}, status::autocommit));
        // The row is a full packet and an empty one.
        const std::size_t row_at = r.size() - (max_packet_payload + 8) - (deof ? 11 : 9);
        CHECK(to_hex(Bytes{r}.subspan(row_at + 4 + max_packet_payload, 3)) == "000000");
        const Outcome whole = scan(ResponseKind::query, deof, r, 0);
        CHECK_FALSE(whole.error);
        CHECK(whole.state == State::done);
        CHECK(whole.consumed == r.size());
        for (std::size_t chunk : {3, 64}) {
            INFO("chunk " << chunk);
            CHECK(scan(ResponseKind::query, deof, r, chunk) == whole);
        }
    }
}

TEST_CASE("ResponseScanner stops at the end of a response and consumes nothing after",
          "[protocol][mysql]") {
    ResponseScanner s;
    s.start(ResponseKind::single, false);
    const ByteVec two = from_hex("07000001 00000002000000 07000001 00000002000000");
    auto first = s.feed(two);
    REQUIRE(first.has_value());
    CHECK(*first == 11);
    CHECK(s.state() == State::done);
    auto again = s.feed(Bytes{two}.subspan(11));
    REQUIRE(again.has_value());
    CHECK(*again == 0);
    auto empty = s.feed({});
    REQUIRE(empty.has_value());
    CHECK(*empty == 0);
}

TEST_CASE("ResponseScanner can be started again for the next response", "[protocol][mysql]") {
    ResponseScanner s;
    s.start(ResponseKind::query, false);
    const ByteVec e = read_vector("cli_error");
    REQUIRE(s.feed(e).has_value());
    CHECK(s.ended_with_error());
    s.start(ResponseKind::query, false);
    CHECK(s.state() == State::running);
    CHECK_FALSE(s.ended_with_error());
    CHECK(s.packets() == 0);
    const ByteVec rows = read_vector("cli_select_rows");
    auto r = s.feed(rows);
    REQUIRE(r.has_value());
    CHECK(*r == rows.size());
    CHECK(s.state() == State::done);
    CHECK(s.last_status() == 0x0022);
    CHECK(s.packets() == 9);
}

TEST_CASE("ResponseScanner reports no status for an ERR response: an ERR carries none",
          "[protocol][mysql]") {
    ResponseScanner s;
    s.start(ResponseKind::query, true);
    REQUIRE(s.feed(read_vector("deof_begin")).has_value());
    CHECK(s.last_status() == (status::autocommit | status::in_trans));
    s.start(ResponseKind::query, true);
    REQUIRE(s.feed(read_vector("deof_error")).has_value());
    CHECK(s.ended_with_error());
    CHECK(s.last_status() == 0);
}

// ---- malformed input ----

TEST_CASE("ResponseScanner refuses malformed responses without crashing", "[protocol][mysql]") {
    struct Case {
        const char* what;
        ResponseKind kind;
        bool deof;
        ByteVec bytes;
    };
    const std::vector<Case> cases{
        {"a column count of 0", ResponseKind::query, false, response_of({from_hex("fc0000")})},
        {"an empty first packet", ResponseKind::query, false, from_hex("00000001")},
        {"a column count with a bad length byte", ResponseKind::query, true,
         response_of({from_hex("fe0102")})},
        {"an OK too short for its status", ResponseKind::query, false,
         response_of({from_hex("000000")})},
        {"a garbage first packet for prepare", ResponseKind::prepare, false,
         response_of({from_hex("03646566")})},
        {"a prepare-OK too short", ResponseKind::prepare, false,
         response_of({from_hex("00010000000100")})},
        {"an empty prepare response packet", ResponseKind::prepare, true, from_hex("00000001")},
        {"a row where the columns' EOF belongs", ResponseKind::query, false,
         response_of({{0x01}, column_def("a"), from_hex("0131")})},
        {"a terminator too short for its status", ResponseKind::query, true,
         response_of({{0x01}, column_def("a"), from_hex("fe00")})},
        {"an EOF cut short after the rows", ResponseKind::rows, false,
         response_of({from_hex("fe0000")})},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        const Outcome whole = scan(c.kind, c.deof, c.bytes, 0);
        CHECK(whole.error);
        for (std::size_t chunk : chunk_sizes) {
            INFO("chunk " << chunk);
            const Outcome o = scan(c.kind, c.deof, c.bytes, chunk);
            CHECK(o.error == whole.error);
        }
    }
}

TEST_CASE("ResponseScanner survives every truncation and every single-byte corruption of a "
          "real response",
          "[protocol][mysql]") {
    // Never a crash; truncated input is still running; the same answer in any chunking.
    const ByteVec r = read_vector("eof_compound");
    for (std::size_t len = 0; len < r.size(); ++len) {
        const Outcome o = scan(ResponseKind::query, false, Bytes{r}.first(len), 0);
        if (o.error || o.state != State::running || o.consumed != len) {
            FAIL_CHECK("length " << len << ": " << o);
        }
    }
    for (std::size_t i = 0; i < r.size(); ++i) {
        for (std::uint8_t v :
             {std::uint8_t{0x00}, std::uint8_t{0xFB}, std::uint8_t{0xFE}, std::uint8_t{0xFF}}) {
            ByteVec bad = r;
            bad[i] = v;
            const Outcome whole = scan(ResponseKind::query, false, bad, 0);
            for (std::size_t chunk : {1, 3, 64}) {
                const Outcome o = scan(ResponseKind::query, false, bad, chunk);
                if (!(o == whole)) FAIL_CHECK("byte " << i << " = " << int{v} << ": " << o);
            }
        }
    }
}

TEST_CASE("ResponseScanner ends a single-message reply of 16 MiB after its last fragment",
          "[protocol][mysql]") {
    // COM_STATISTICS-style reply: one message of 0xFFFFFF + 10 bytes, in two packets.
    ByteVec payload(0xFFFFFF + 10, 'x');
    ByteVec wire;
    write_packets(payload, 1, wire);
    REQUIRE(wire.size() == 4 + 0xFFFFFF + 4 + 10);
    ResponseScanner s;
    s.start(ResponseKind::single, false);
    auto first = s.feed(Bytes{wire}.first(4 + 0xFFFFFF));
    REQUIRE(first.has_value());
    CHECK(s.state() == ResponseScanner::State::running);
    auto rest = s.feed(Bytes{wire}.subspan(4 + 0xFFFFFF));
    REQUIRE(rest.has_value());
    CHECK(*rest == 14);
    CHECK(s.state() == ResponseScanner::State::done);
}

TEST_CASE("ResponseScanner forgets the previous response's status when started again",
          "[protocol][mysql]") {
    ResponseScanner s;
    const ByteVec first = response_of({ok(0x00, status::in_trans)});
    s.start(ResponseKind::query, false);
    REQUIRE(s.feed(first).has_value());
    CHECK(s.last_status() == status::in_trans);
    s.start(ResponseKind::query, false);
    CHECK(s.last_status() == 0);
}

// ---- what the relay reads from the scanner: OK packets and whether a status came ----

namespace {
/// Feeds a vector packet by packet; the indexes of the packets that completed as OKs.
std::vector<std::size_t> ok_packets(const std::string& name, ResponseKind kind, bool deof,
                                    bool& has_status) {
    ResponseScanner s;
    s.start(kind, deof);
    std::vector<std::size_t> oks;
    const auto packets = read_vector_packets(name);
    for (std::size_t i = 0; i < packets.size(); ++i) {
        auto used = s.feed(packets[i]);
        REQUIRE(used.has_value());
        CHECK(*used == packets[i].size());
        if (s.last_packet_ok()) oks.push_back(i);
    }
    CHECK(s.state() == ResponseScanner::State::done);
    has_status = s.has_status();
    return oks;
}
} // namespace

TEST_CASE("ResponseScanner says which packets are OKs and whether a status came",
          "[protocol][mysql]") {
    using V = std::vector<std::size_t>;
    bool st = false;
    // An INSERT's answer is one OK; a COM_PING's too.
    CHECK(ok_packets("eof_insert", ResponseKind::query, false, st) == V{0});
    CHECK(st);
    CHECK(ok_packets("deof_ping", ResponseKind::single, true, st) == V{0});
    CHECK(st);
    // A result set ends with an OK (0xFE) only with DEPRECATE_EOF; otherwise with an EOF.
    const auto rows = read_vector_packets("deof_select_rows").size();
    CHECK(ok_packets("deof_select_rows", ResponseKind::query, true, st) == V{rows - 1});
    CHECK(st);
    CHECK(ok_packets("eof_select_rows", ResponseKind::query, false, st).empty());
    CHECK(st);
    // Prepare responses, errors and COM_STATISTICS' text carry no status and no OK.
    CHECK(ok_packets("deof_prepare_params_columns", ResponseKind::prepare, true, st).empty());
    CHECK_FALSE(st);
    CHECK(ok_packets("eof_error", ResponseKind::query, false, st).empty());
    CHECK_FALSE(st);
    CHECK(ok_packets("deof_statistics", ResponseKind::single, true, st).empty());
    CHECK_FALSE(st);
}
