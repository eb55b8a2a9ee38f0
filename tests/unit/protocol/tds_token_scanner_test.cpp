// TokenScanner: where a server's response ends and what it says, on every response vector fed
// whole, one byte at a time and in every 2-way split; PacketTokenScanner on raw packets; the
// builders for what Sluice sends to clients.

#include "sluice/protocol/tds/token_scanner.hpp"
#include "sluice/protocol/tds/tokens.hpp"
#include "tds_test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using namespace sluice::protocol;
using namespace sluice::protocol::tds;
using namespace sluice::test;
using namespace sluice::test::tds;

namespace {

using State = TokenScanner::State;

/// What a scanner made of a payload.
struct Outcome {
    std::optional<error_code> error;
    std::size_t consumed = 0;
    State state = State::running;
    Done done;
    bool done_error = false, attn = false;
    std::size_t errors = 0, infos = 0;
    std::vector<std::uint8_t> env_types;
    std::optional<std::int32_t> return_status;
    std::vector<ReturnValue> return_values;
    std::optional<LoginAck> login_ack;
    std::uint64_t rows = 0;
    std::size_t columns = 0;
    bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
    os << "{error=" << (o.error ? o.error->message() : "none") << " consumed=" << o.consumed
       << " state=" << int(o.state) << " done=" << std::hex << o.done.status << std::dec
       << " rows=" << o.rows << " envs=" << o.env_types.size() << "}";
    return os;
}

Outcome capture(const TokenScanner& s, std::size_t consumed, std::optional<error_code> error) {
    Outcome o;
    o.error = error;
    o.consumed = error ? 0 : consumed; // where an error shows depends on the chunking
    o.state = s.state();
    o.done = s.last_done();
    o.done_error = s.done_error();
    o.attn = s.attention_acked();
    o.errors = s.error_count();
    o.infos = s.info_count();
    for (const auto& e : s.env_changes())
        o.env_types.push_back(e.type);
    o.return_status = s.return_status();
    o.return_values = s.return_values();
    o.login_ack = s.login_ack();
    o.rows = s.rows();
    o.columns = s.columns().size();
    return o;
}

/// Feeds `in` split at the given cut points, checking that a running scanner takes every
/// chunk whole.
Outcome feed_cuts(Bytes in, std::uint32_t version, const std::vector<std::size_t>& cuts,
                  bool attention = false) {
    TokenScanner s;
    s.start(version);
    if (attention) s.expect_attention_ack();
    std::size_t pos = 0;
    std::vector<std::size_t> ends = cuts;
    ends.push_back(in.size());
    for (std::size_t end : ends) {
        if (s.state() != State::running || end <= pos) continue;
        auto used = s.feed(in.subspan(pos, end - pos));
        if (!used) return capture(s, pos, used.error());
        if (s.state() == State::running) REQUIRE(*used == end - pos);
        pos += *used;
    }
    return capture(s, pos, std::nullopt);
}

Outcome feed_chunks(Bytes in, std::uint32_t version, std::size_t chunk, bool attention = false) {
    std::vector<std::size_t> cuts;
    if (chunk > 0)
        for (std::size_t c = chunk; c < in.size(); c += chunk)
            cuts.push_back(c);
    return feed_cuts(in, version, cuts, attention);
}

/// The outcome fed whole, which every other chunking must match.
Outcome check_all_chunkings(Bytes in, std::uint32_t version, bool attention = false) {
    const Outcome whole = feed_chunks(in, version, 0, attention);
    for (std::size_t chunk : {1, 2, 3, 5, 64}) {
        INFO("chunk " << chunk);
        CHECK(feed_chunks(in, version, chunk, attention) == whole);
    }
    for (std::size_t cut = 1; cut < in.size(); ++cut) {
        INFO("cut at " << cut);
        CHECK(feed_cuts(in, version, {cut}, attention) == whole);
    }
    return whole;
}

struct VectorCase {
    const char* name;
    std::uint32_t version;
};

const VectorCase responses[] = {
    {"mstds-4.4-login-response", tds_version::v7_4},
    {"mstds-4.7-sqlbatch-response", tds_version::v7_2},
    {"mstds-4.9-rpc-response", tds_version::v7_2},
    {"real-rpc-batched-sp_execute-response", tds_version::v7_2},
    {"real-rpc-sp_prepexec-response", tds_version::v7_2},
    {"real-sql2008-begin-tran-response", tds_version::v7_3b},
    {"real-sql2008-login-response", tds_version::v7_4},
    {"real-tds71-commit-batch-response", tds_version::v7_1},
    {"teleport-resetack-select1-response", tds_version::v7_4},
    {"teleport-sql2019-login-response", tds_version::v7_4},
};

ByteVec token_bytes(std::uint8_t type, const ByteVec& body) {
    ByteVec out{type, static_cast<std::uint8_t>(body.size()),
                static_cast<std::uint8_t>(body.size() >> 8)};
    append(out, body);
    return out;
}

ByteVec done_bytes(std::uint16_t status, std::uint64_t rows = 0,
                   std::uint32_t version = tds_version::v7_4, std::uint8_t tok = token::done) {
    ByteVec out;
    write_done({tok, status, 0xC1, rows}, version, out);
    return out;
}

} // namespace

TEST_CASE("every response vector is scanned to its last byte, in every chunking",
          "[protocol][tds]") {
    for (const auto& v : responses) {
        INFO(v.name);
        const ByteVec payload = read_payload(v.name);
        const Outcome o = check_all_chunkings(payload, v.version);
        CHECK_FALSE(o.error);
        CHECK(o.state == State::done);
        CHECK(o.consumed == payload.size());
        TokenScanner s;
        CHECK(scan_response(payload, s, v.version).has_value());
    }
}

TEST_CASE("the MS-TDS 4.4 login reply: ENVCHANGEs, INFOs, LOGINACK with NULs in the name",
          "[protocol][tds]") {
    TokenScanner s;
    REQUIRE(scan_response(read_payload("mstds-4.4-login-response"), s, tds_version::v7_4));
    CHECK(s.info_count() == 2);
    CHECK(s.error_count() == 0);
    REQUIRE(s.env_changes().size() == 4);
    const auto& env = s.env_changes();
    CHECK(env[0].type == env_type::database);
    CHECK(env[0].new_value == "master");
    CHECK(env[0].old_value == "master");
    CHECK(env[0].offset == 0);
    CHECK(env[0].size == 30);
    CHECK(env[1].type == env_type::collation);
    CHECK(env[1].new_bytes == ByteVec{0x09, 0x04, 0xd0, 0x00, 0x34});
    CHECK(env[2].type == env_type::language);
    CHECK(env[2].new_value == "us_english");
    CHECK(env[3].type == env_type::packet_size);
    CHECK(env[3].packet_size() == 4096);
    REQUIRE(s.login_ack());
    CHECK(s.login_ack()->interface == 1);
    CHECK(s.login_ack()->tds_version == tds_version::v7_2);
    // Quirk: "Microsoft SQL Server" plus two NUL characters (length byte 0x16).
    CHECK(s.login_ack()->prog_name == std::string("Microsoft SQL Server\0\0", 22));
    CHECK(s.tds_version() == tds_version::v7_2); // taken from LOGINACK
    CHECK(s.last_done() == Done{token::done, 0, 0, 0});
}

TEST_CASE("real login replies: SQL Server 2008 (TDS 7.3B) and 2019 (TDS 7.4)", "[protocol][tds]") {
    TokenScanner s;
    REQUIRE(scan_response(read_payload("real-sql2008-login-response"), s, tds_version::v7_4));
    CHECK(s.login_ack()->tds_version == tds_version::v7_3b);
    CHECK(s.login_ack()->prog_version == std::array<std::uint8_t, 4>{10, 0, 0x15, 0x88});
    CHECK(s.env_changes().at(0).new_value == "SubmissionPortal");
    CHECK(s.env_changes().at(0).old_value == "master");
    CHECK(s.info_count() == 2);

    REQUIRE(scan_response(read_payload("teleport-sql2019-login-response"), s, tds_version::v7_4));
    CHECK(s.login_ack()->tds_version == tds_version::v7_4);
    CHECK(s.login_ack()->prog_version == std::array<std::uint8_t, 4>{15, 0, 0x0f, 0xe9});
    CHECK(s.info_count() == 0);
    CHECK(s.env_changes().size() == 4);
}

TEST_CASE("a result set: COLMETADATA, ROW, DONE with a count", "[protocol][tds]") {
    TokenScanner s;
    REQUIRE(scan_response(read_payload("mstds-4.7-sqlbatch-response"), s, tds_version::v7_2));
    REQUIRE(s.columns().size() == 1);
    CHECK(s.columns()[0].type == data_type::bigvarchar);
    CHECK(s.columns()[0].length == 3);
    CHECK(s.rows() == 1);
    CHECK(s.last_done() == Done{token::done, done_status::count, 0xC1, 1});
}

TEST_CASE("sp_prepexec's reply exposes the prepared handle from RETURNVALUE", "[protocol][tds]") {
    TokenScanner s;
    REQUIRE(scan_response(read_payload("real-rpc-sp_prepexec-response"), s, tds_version::v7_2));
    CHECK(s.columns().size() == 4);
    CHECK(s.rows() == 1);
    CHECK(s.return_status() == 0);
    REQUIRE(s.return_values().size() == 1);
    const ReturnValue& rv = s.return_values()[0];
    CHECK(rv.ordinal == 0);
    CHECK(rv.name.empty());
    CHECK(rv.status == 1);
    CHECK(rv.type.type == data_type::intn);
    CHECK_FALSE(rv.is_null);
    CHECK(rv.int_value == 1);
    CHECK(s.last_done().token == token::done_proc);
}

TEST_CASE("batched RPC replies continue past DONEPROC with DONE_MORE|DONE_RPCINBATCH",
          "[protocol][tds]") {
    const ByteVec payload = read_payload("real-rpc-batched-sp_execute-response");
    TokenScanner s;
    REQUIRE(scan_response(payload, s, tds_version::v7_2));
    CHECK(s.last_done() == Done{token::done_proc, 0, 0xE0, 0});
    // Cut after the first DONEPROC (0x81): the response is not over.
    s.start(tds_version::v7_2);
    auto used = s.feed(Bytes{payload}.first(0x2c - 8));
    REQUIRE(used.has_value());
    CHECK(s.state() == State::running);
    CHECK(s.last_done().status == (done_status::more | done_status::rpc_in_batch));
}

TEST_CASE("ENVCHANGE 8 carries the transaction descriptor", "[protocol][tds]") {
    TokenScanner s;
    REQUIRE(scan_response(read_payload("real-sql2008-begin-tran-response"), s, tds_version::v7_3b));
    REQUIRE(s.env_changes().size() == 1);
    CHECK(s.env_changes()[0].type == env_type::begin_tran);
    CHECK(s.env_changes()[0].descriptor() == 0x0000005a00000001u);
    CHECK(s.last_done().cur_cmd == 0xFD);
}

TEST_CASE("DONE is 9 bytes before TDS 7.2 and 13 from it", "[protocol][tds]") {
    const ByteVec payload = read_payload("real-tds71-commit-batch-response");
    REQUIRE(payload.size() == 9);
    TokenScanner s;
    REQUIRE(scan_response(payload, s, tds_version::v7_1));
    CHECK(s.last_done() == Done{token::done, 0, 0xD5, 0});
    // Read as TDS 7.2 the same bytes are a DONE cut short.
    CHECK(scan_response(payload, s, tds_version::v7_2).error() == codec_errc::truncated);
    ByteVec wide;
    write_done({token::done, 0, 0xD5, 0}, tds_version::v7_2, wide);
    CHECK(wide.size() == 13);
    ByteVec narrow;
    write_done({token::done, 0, 0xD5, 0}, tds_version::v7_1, narrow);
    CHECK(narrow == payload);
}

TEST_CASE("the reset acknowledgement is ENVCHANGE 18 with empty values", "[protocol][tds]") {
    TokenScanner s;
    const ByteVec payload = read_payload("teleport-resetack-select1-response");
    REQUIRE(scan_response(payload, s, tds_version::v7_4));
    CHECK(s.env_changes().at(0).type == env_type::reset_ack);
    ByteVec ack;
    write_reset_ack(ack);
    CHECK(to_hex(ack) == to_hex(Bytes{payload}.first(6)));
    CHECK(s.rows() == 1);
    CHECK(s.columns().at(0).type == data_type::int4);
}

TEST_CASE("an unknown token is malformed, wherever the chunks fall", "[protocol][tds]") {
    ByteVec payload = read_payload("mstds-4.7-sqlbatch-response");
    payload.insert(payload.begin() + 24, 0x42); // before the DONE
    const Outcome o = check_all_chunkings(payload, tds_version::v7_2);
    CHECK(o.error == make_error_code(codec_errc::malformed));
    for (std::uint8_t t : {token::alt_metadata, token::alt_row, token::data_classification}) {
        const ByteVec b{t, 0, 0, 0};
        CHECK(feed_chunks(b, tds_version::v7_4, 0).error == make_error_code(codec_errc::malformed));
    }
}

TEST_CASE("a response cut short is not done; trailing bytes are reported", "[protocol][tds]") {
    for (const auto& v : responses) {
        INFO(v.name);
        const ByteVec payload = read_payload(v.name);
        TokenScanner s;
        for (std::size_t len = 0; len < payload.size(); ++len) {
            auto r = scan_response(Bytes{payload}.first(len), s, v.version);
            REQUIRE(r.has_error());
            // A cut right after a DONE_MORE token is a response cut short as well.
            CHECK(r.error() == codec_errc::truncated);
        }
        ByteVec longer = payload;
        longer.push_back(0xFD);
        CHECK(scan_response(longer, s, v.version).error() == codec_errc::trailing_bytes);
    }
}

TEST_CASE("after ATTENTION only the DONE with DONE_ATTN ends the response", "[protocol][tds]") {
    // A result set's final DONE, then the attention acknowledgement.
    ByteVec payload = read_payload("mstds-4.7-sqlbatch-response");
    const std::size_t first_end = payload.size();
    write_attention_ack(tds_version::v7_2, payload);
    const Outcome normal = feed_chunks(payload, tds_version::v7_2, 0);
    CHECK(normal.state == State::done);
    CHECK(normal.consumed == first_end);
    const Outcome cancelled = check_all_chunkings(payload, tds_version::v7_2, true);
    CHECK(cancelled.state == State::done);
    CHECK(cancelled.consumed == payload.size());
    CHECK(cancelled.attn);
    // ATTENTION sent while the response streams: the scanner is told half-way.
    TokenScanner s;
    s.start(tds_version::v7_2);
    REQUIRE(s.feed(Bytes{payload}.first(10)).has_value());
    s.expect_attention_ack();
    auto used = s.feed(Bytes{payload}.subspan(10));
    REQUIRE(used.has_value());
    CHECK(*used == payload.size() - 10);
    CHECK(s.attention_acked());
}

TEST_CASE("strip_routing drops ENVCHANGE 20 and 21 from a login reply", "[protocol][tds]") {
    const ByteVec reply = read_payload("teleport-sql2019-login-response");
    // ENVCHANGE 20: RoutingDataValueLength, protocol 0 (TCP), port 14330, server "replica2".
    ByteVec routing_value{0};
    routing_value.push_back(static_cast<std::uint8_t>(14330 & 0xFF));
    routing_value.push_back(static_cast<std::uint8_t>(14330 >> 8));
    routing_value.push_back(8);
    routing_value.push_back(0);
    append(routing_value, ucs2("replica2"));
    ByteVec body{env_type::routing, static_cast<std::uint8_t>(routing_value.size()), 0};
    append(body, routing_value);
    body.push_back(0);
    body.push_back(0);
    const ByteVec routing = token_bytes(token::env_change, body);
    const ByteVec enhanced = token_bytes(token::env_change, from_hex("15 00 04 00 aa bb cc dd"));
    // Put both before the DONE (the last 13 bytes).
    ByteVec with = reply;
    with.insert(with.end() - 13, routing.begin(), routing.end());
    with.insert(with.begin(), enhanced.begin(), enhanced.end());

    TokenScanner s;
    REQUIRE(scan_response(with, s, tds_version::v7_4));
    const auto& env = s.env_changes();
    REQUIRE(env.size() == 6);
    CHECK(env.front().type == env_type::enhanced_routing);
    CHECK(env.back().type == env_type::routing);
    CHECK(env.back().routing_protocol == 0);
    CHECK(env.back().routing_port == 14330);
    CHECK(env.back().routing_server == "replica2");

    ByteVec stripped;
    REQUIRE(strip_routing(with, tds_version::v7_4, stripped));
    CHECK(to_hex(stripped) == to_hex(reply));
    ByteVec unchanged;
    REQUIRE(strip_routing(reply, tds_version::v7_4, unchanged));
    CHECK(unchanged == reply);
}

TEST_CASE("rows of every value format: NBCROW nulls, PLP chunks, text pointers, variants",
          "[protocol][tds]") {
    ByteVec p{token::col_metadata, 8, 0};
    auto column = [&](const ByteVec& type_info, std::string_view name) {
        append(p, from_hex("00 00 00 00 09 00")); // UserType, Flags
        append(p, type_info);
        p.push_back(static_cast<std::uint8_t>(name.size()));
        append(p, ucs2(name));
    };
    column(from_hex("e7 ff ff 09 04 d0 00 34"), "big");                      // nvarchar(max): PLP
    column(from_hex("26 08"), "id");                                         // bigint NULL
    column(from_hex("23 ff ff ff 7f 09 04 d0 00 34 01 01 00 74 00"), "doc"); // text, table "t"
    column(from_hex("62 10 1f 00 00"), "v");                                 // sql_variant
    column(from_hex("6c 11 26 02"), "n");                                    // numeric(38, 2)
    column(from_hex("2a 07"), "dt");                                         // datetime2(7)
    column(from_hex("24 10"), "g");                                          // uniqueidentifier
    column(from_hex("7f"), "i8");                                            // bigint NOT NULL
    // ROW: every value present.
    p.push_back(token::row);
    append(p, from_hex("fe ff ff ff ff ff ff ff")); // UNKNOWN_PLP_LEN
    append(p, from_hex("04 00 00 00 41 00 42 00 02 00 00 00 43 00 00 00 00 00"));
    append(p, from_hex("08 2a 00 00 00 00 00 00 00"));
    append(p, from_hex("10"));
    p.insert(p.end(), 16, 0x11); // TextPtr
    p.insert(p.end(), 8, 0x22);  // Timestamp
    append(p, from_hex("03 00 00 00 61 62 63"));
    append(p, from_hex("06 00 00 00 38 01 2a 00 00 00")); // variant: int 42
    append(p, from_hex("11 01"));
    p.insert(p.end(), 16, 0x00);
    append(p, from_hex("08 00 00 00 00 00 00 00 00"));
    append(p, from_hex("10"));
    p.insert(p.end(), 16, 0xAB);
    append(p, from_hex("01 00 00 00 00 00 00 00"));
    // NBCROW: big, id, doc, v, n, dt, g NULL (bitmap 0x7F), i8 present.
    p.push_back(token::nbc_row);
    append(p, from_hex("7f 02 00 00 00 00 00 00 00"));
    // ROW with NULLs written in each format.
    p.push_back(token::row);
    append(p, from_hex("ff ff ff ff ff ff ff ff")); // PLP NULL
    append(p, from_hex("00"));                      // INTN NULL
    append(p, from_hex("00"));                      // text NULL: TextPtr length 0
    append(p, from_hex("00 00 00 00"));             // variant NULL
    append(p, from_hex("00 00 00"));                // numeric, datetime2, guid NULL
    append(p, from_hex("03 00 00 00 00 00 00 00"));
    append(p, done_bytes(done_status::count, 3));
    const Outcome o = check_all_chunkings(p, tds_version::v7_4);
    CHECK_FALSE(o.error);
    CHECK(o.state == State::done);
    CHECK(o.rows == 3);
    CHECK(o.columns == 8);
    CHECK(o.consumed == p.size());
}

TEST_CASE("tokens skipped by length: ORDER, TABNAME, COLINFO, SSPI, SESSIONSTATE, "
          "FEDAUTHINFO, FEATUREEXTACK, OFFSET",
          "[protocol][tds]") {
    ByteVec p;
    append(p, token_bytes(token::order, from_hex("01 00")));
    append(p, token_bytes(token::tab_name, from_hex("01 00 74 00")));
    append(p, token_bytes(token::col_info, from_hex("01 01 00")));
    append(p, token_bytes(token::sspi, from_hex("aa bb")));
    append(p, from_hex("e4 05 00 00 00 01 02 03 04 05"));             // SESSIONSTATE, DWORD length
    append(p, from_hex("ee 02 00 00 00 00 00"));                      // FEDAUTHINFO, DWORD length
    append(p, from_hex("ae 01 02 00 00 00 aa bb 0a 00 00 00 00 ff")); // FEATUREEXTACK
    append(p, from_hex("78 01 00 02 00"));                            // OFFSET
    append(p, from_hex("79 05 00 00 00"));                            // RETURNSTATUS 5
    append(p, done_bytes(done_status::final));
    const Outcome o = check_all_chunkings(p, tds_version::v7_4);
    CHECK_FALSE(o.error);
    CHECK(o.state == State::done);
    CHECK(o.return_status == 5);
    TokenScanner s;
    REQUIRE(scan_response(p, s, tds_version::v7_4));
    CHECK(s.saw_auth_or_feature_token());
}

TEST_CASE("ROW before any COLMETADATA is malformed; COLMETADATA 0xFFFF keeps the columns",
          "[protocol][tds]") {
    TokenScanner s;
    s.start(tds_version::v7_4);
    CHECK(s.feed(from_hex("d1 01")).error() == codec_errc::malformed);
    const ByteVec first = read_payload("teleport-resetack-select1-response");
    REQUIRE(scan_response(first, s, tds_version::v7_4));
    // fNoMetaData: the next response's rows use the earlier columns.
    ByteVec next = from_hex("81 ff ff d1 07 00 00 00");
    append(next, done_bytes(done_status::count, 1));
    REQUIRE(scan_response(next, s, tds_version::v7_4));
    CHECK(s.rows() == 1);
}

TEST_CASE("a column's metadata beyond the buffering limit is oversized", "[protocol][tds]") {
    // A text column whose table name has 255 parts of 65535 characters each.
    ByteVec p = from_hex("81 01 00 00 00 00 00 00 00 23 ff ff ff 7f 09 04 d0 00 34 ff");
    for (int i = 0; i < 9; ++i) {
        append(p, from_hex("ff ff"));
        p.insert(p.end(), 0xFFFF * 2, 0x41);
    }
    TokenScanner s;
    s.start(tds_version::v7_4);
    auto used = s.feed(p);
    CHECK(used.error() == codec_errc::oversized);
}

TEST_CASE("ERROR responses: fields, DONE_ERROR, and the builder", "[protocol][tds]") {
    const ServerMessage m{18456, 1, 14, "Login failed for user 'bob'.", "sluice", "", 1};
    for (std::uint32_t v : {tds_version::v7_1, tds_version::v7_4}) {
        ByteVec out;
        write_error_response(m, v, out);
        const Outcome o = check_all_chunkings(out, v);
        CHECK(o.state == State::done);
        CHECK(o.errors == 1);
        CHECK(o.done_error);
        TokenScanner s;
        REQUIRE(scan_response(out, s, v));
        CHECK(s.first_error() == m);
    }
}

TEST_CASE("write_attention_ack is a DONE with DONE_ATTN", "[protocol][tds]") {
    ByteVec out;
    write_attention_ack(tds_version::v7_4, out);
    CHECK(to_hex(out) == "fd200000000000000000000000");
    TokenScanner s;
    s.start(tds_version::v7_4);
    s.expect_attention_ack();
    REQUIRE(s.feed(out).has_value());
    CHECK(s.state() == State::done);
    CHECK(s.attention_acked());
}

TEST_CASE("write_login_reply reproduces real login replies byte for byte", "[protocol][tds]") {
    SECTION("SQL Server 2008, with INFO messages") {
        LoginReply r;
        r.tds_version = tds_version::v7_3b;
        r.database = "SubmissionPortal";
        r.old_database = "master";
        r.collation = {0x09, 0x04, 0x00, 0x01, 0x00};
        r.server_name = "MSSQLHV30";
        r.prog_version = {10, 0, 0x15, 0x88};
        ByteVec out;
        write_login_reply(r, out);
        CHECK(to_hex(out) == to_hex(read_payload("real-sql2008-login-response")));
    }
    SECTION("SQL Server 2019 as Teleport's fixture has it, without INFO messages") {
        LoginReply r;
        r.prog_version = {15, 0, 0x0f, 0xe9};
        r.info_messages = false;
        ByteVec out;
        write_login_reply(r, out);
        CHECK(to_hex(out) == to_hex(read_payload("teleport-sql2019-login-response")));
    }
}

TEST_CASE("PacketTokenScanner follows raw packets to the response's end", "[protocol][tds]") {
    for (const auto& v : responses) {
        INFO(v.name);
        const ByteVec wire = read_wire(v.name);
        for (std::size_t chunk : {1, 3, 7, 4096}) {
            PacketTokenScanner s;
            s.start(v.version);
            std::size_t pos = 0;
            while (pos < wire.size() && s.state() == State::running) {
                auto used = s.feed(Bytes{wire}.subspan(pos, std::min(chunk, wire.size() - pos)));
                REQUIRE(used.has_value());
                pos += *used;
            }
            CHECK(s.state() == State::done);
            CHECK(pos == wire.size());
        }
    }
}

TEST_CASE("PacketTokenScanner: multi-packet replies, a message ending early, trailing bytes",
          "[protocol][tds]") {
    const ByteVec payload = read_payload("real-rpc-sp_prepexec-response");
    SECTION("a reply split over packets of 512 bytes") {
        ByteVec big;
        // Many rows: repeat the ROW token (0x62..0x135 of the payload, after the metadata).
        const ByteVec meta(payload.begin(), payload.begin() + 0x5a);
        const ByteVec row(payload.begin() + 0x5a, payload.begin() + 0x12d);
        const ByteVec tail(payload.begin() + 0x12d, payload.end());
        ByteVec body = meta;
        for (int i = 0; i < 20; ++i)
            append(body, row);
        append(body, tail);
        write_message(PacketType::tabular_result, 0x04, body, 512, 1, big);
        PacketTokenScanner s;
        s.start(tds_version::v7_4);
        auto used = s.feed(big);
        REQUIRE(used.has_value());
        CHECK(*used == big.size());
        CHECK(s.state() == State::done);
        CHECK(s.tokens().rows() == 20);
        CHECK(s.tokens().return_values().at(0).int_value == 1);
    }
    SECTION("EOM before the response's end") {
        ByteVec wire = tds_packet(4, 0x01, Bytes{payload}.first(100));
        PacketTokenScanner s;
        s.start(tds_version::v7_4);
        CHECK(s.feed(wire).error() == codec_errc::malformed);
    }
    SECTION("bytes after the final DONE inside the message") {
        ByteVec body = payload;
        append(body, done_bytes(0));
        PacketTokenScanner s;
        s.start(tds_version::v7_4);
        CHECK(s.feed(tds_packet(4, 0x01, body)).error() == codec_errc::trailing_bytes);
    }
    SECTION("a packet that is not a tabular result") {
        PacketTokenScanner s;
        s.start(tds_version::v7_4);
        CHECK(s.feed(tds_packet(1, 0x01, payload)).error() == codec_errc::unexpected_message);
    }
    SECTION("the attention acknowledgement in a message of its own") {
        ByteVec ack;
        write_attention_ack(tds_version::v7_4, ack);
        ByteVec wire = tds_packet(4, 0x01, payload);
        append(wire, tds_packet(4, 0x01, ack));
        PacketTokenScanner s;
        s.start(tds_version::v7_4);
        s.expect_attention_ack();
        auto used = s.feed(wire);
        REQUIRE(used.has_value());
        CHECK(*used == wire.size());
        CHECK(s.state() == State::done);
        CHECK(s.tokens().attention_acked());
    }
}

TEST_CASE("RETURNVALUE: where its integer lies, which call it answers, raw offsets across packets",
          "[protocol][tds]") {
    const ByteVec one = read_payload("real-rpc-sp_prepexec-response");
    // Two calls of a batched RPC: the first DONEPROC gets DONE_MORE | DONE_RPCINBATCH.
    ByteVec first = one;
    const std::size_t status_at = first.size() - 12; // DONEPROC (7.2+): 0xFE, status, ...
    REQUIRE(first[status_at - 1] == token::done_proc);
    first[status_at] = done_status::more | done_status::rpc_in_batch;
    ByteVec two = first;
    append(two, one);
    // The second call's handle is 7.
    TokenScanner whole;
    REQUIRE(scan_response(two, whole, tds_version::v7_4));
    REQUIRE(whole.return_values().size() == 2);
    const ReturnValue& a = whole.return_values()[0];
    const ReturnValue& b = whole.return_values()[1];
    CHECK(a.call == 0);
    CHECK(b.call == 1);
    REQUIRE(a.value_size == 4);
    REQUIRE(b.value_size == 4);
    CHECK(b.value_offset == a.value_offset + one.size());
    CHECK(two[a.value_offset] == 1);
    CHECK(two[a.value_offset + 1] == 0);
    ByteVec changed = two;
    changed[b.value_offset] = 7;
    REQUIRE(scan_response(changed, whole, tds_version::v7_4));
    CHECK(whole.return_values()[1].int_value == 7);

    // In packets of 64 bytes fed in odd chunks, each of the value's bytes maps to its raw
    // offset; the value is held back while the token is incomplete.
    ByteVec wire;
    write_message(PacketType::tabular_result, 0x00, changed, 64, 1, wire);
    for (std::size_t chunk : {1, 5, 13, 64, 4096}) {
        INFO("chunk " << chunk);
        PacketTokenScanner s;
        s.start(tds_version::v7_4);
        std::size_t pos = 0, seen = 0;
        bool held_mid_token = false;
        while (pos < wire.size() && s.state() == State::running) {
            auto used = s.feed(Bytes{wire}.subspan(pos, std::min(chunk, wire.size() - pos)));
            REQUIRE(used.has_value());
            pos += *used;
            if (s.tokens().inside_return_value()) held_mid_token = true;
            const auto& rvs = s.tokens().return_values();
            for (; seen < rvs.size(); ++seen) {
                for (std::size_t i = 0; i < rvs[seen].value_size; ++i) {
                    auto raw = s.raw_offset_of(rvs[seen].value_offset + i);
                    REQUIRE(raw);
                    REQUIRE(*raw < pos);
                    CHECK(wire[*raw] == changed[rvs[seen].value_offset + i]);
                }
                s.forget_packets();
            }
        }
        CHECK(s.state() == State::done);
        CHECK(seen == 2);
        CHECK(s.raw_offset() == wire.size());
        if (chunk < 64) CHECK(held_mid_token);
    }
}

namespace {

/// COLMETADATA of one INT column "v", then a ROW per value.
ByteVec int_rows(std::initializer_list<std::int32_t> values) {
    ByteVec out{token::col_metadata, 1, 0, 0, 0, 0, 0, 0x09, 0x00, 0x26, 4, 1, 'v', 0};
    for (const std::int32_t v : values) {
        const auto u = static_cast<std::uint32_t>(v);
        append(out, ByteVec{token::row, 4, static_cast<std::uint8_t>(u),
                            static_cast<std::uint8_t>(u >> 8), static_cast<std::uint8_t>(u >> 16),
                            static_cast<std::uint8_t>(u >> 24)});
    }
    return out;
}

} // namespace

TEST_CASE("clean_cut: a relay may end a response between packets and tokens, nowhere else",
          "[protocol][tds]") {
    const ServerMessage m{50000, 1, 20, "backend b sent a malformed response", "sluice", "", 0};
    const ByteVec rows = int_rows({1, 2});
    PacketTokenScanner s;
    s.start(tds_version::v7_4);
    CHECK(s.clean_cut() == CleanCut{1, true}); // nothing consumed: a message of its own

    SECTION("after whole packets of whole rows: the cut message continues") {
        const ByteVec first = tds_packet(4, 0x00, rows, 7); // no EOM
        REQUIRE(s.feed(Bytes{first}.first(20)).has_value());
        CHECK(!s.clean_cut()); // inside a packet
        REQUIRE(s.feed(Bytes{first}.subspan(20)).has_value());
        const auto cut = s.clean_cut();
        REQUIRE(cut);
        CHECK(*cut == CleanCut{8, false});
        // The mended stream: the rows, then the relay's ERROR and DONE in packet 8, EOM.
        ByteVec wire = first;
        write_cut_end(*cut, m, tds_version::v7_4, 512, wire);
        REQUIRE(wire.size() > first.size() + 8);
        CHECK(wire[first.size()] == 4);
        CHECK(wire[first.size() + 1] == 0x01);
        CHECK(wire[first.size() + 6] == 8);
        PacketTokenScanner check;
        check.start(tds_version::v7_4);
        auto used = check.feed(wire);
        REQUIRE(used.has_value());
        CHECK(*used == wire.size());
        CHECK(check.state() == State::done);
        CHECK(check.tokens().rows() == 2);
        CHECK(check.tokens().first_error() == m);
        CHECK(check.tokens().done_error());
    }
    SECTION("a packet ending inside a row: no clean cut") {
        const ByteVec first = tds_packet(4, 0x00, Bytes{rows}.first(rows.size() - 2));
        REQUIRE(s.feed(first).has_value());
        CHECK(!s.clean_cut());
    }
    SECTION("a packet ending inside a token's length: no clean cut") {
        ByteVec body = rows;
        body.push_back(token::info);
        REQUIRE(s.feed(tds_packet(4, 0x00, body)).has_value());
        CHECK(!s.clean_cut());
    }
    SECTION("a whole message while an attention acknowledgement is awaited: a new message") {
        s.expect_attention_ack();
        ByteVec body = rows;
        append(body, done_bytes(done_status::count, 2));
        REQUIRE(s.feed(tds_packet(4, 0x01, body, 3)).has_value());
        CHECK(s.state() == State::running);
        CHECK(s.clean_cut() == CleanCut{1, true});
    }
    SECTION("once done: none") {
        ByteVec body = rows;
        append(body, done_bytes(done_status::count, 2));
        REQUIRE(s.feed(tds_packet(4, 0x01, body)).has_value());
        CHECK(s.state() == State::done);
        CHECK(!s.clean_cut());
    }
    SECTION("an unknown token: which one, and where") {
        ByteVec body = rows;
        body.push_back(0x01);
        CHECK(s.feed(tds_packet(4, 0x00, body)).error() == codec_errc::malformed);
        CHECK(s.tokens().token() == 0x01);
        CHECK(s.tokens().token_offset() == rows.size());
    }
}

TEST_CASE("COLMETADATA 0xFFFF (NoMetaData) uses columns from another response", "[protocol][tds]") {
    // A cursor fetch's answer: rows under NoMetaData, then the procedure's end; the columns
    // came with the sp_cursoropen (here: the sp_prepexec reply's own COLMETADATA).
    const ByteVec full = read_payload("real-rpc-sp_prepexec-response");
    TokenScanner open;
    REQUIRE(scan_response(full, open, tds_version::v7_4));
    REQUIRE(open.columns().size() == 4);
    ByteVec fetch = {token::col_metadata, 0xFF, 0xFF};
    fetch.insert(fetch.end(), full.begin() + 0x5a, full.end()); // the row and the tail
    TokenScanner fresh;
    CHECK_FALSE(scan_response(fetch, fresh, tds_version::v7_4)); // no columns to read a row by
    TokenScanner s;
    s.start(tds_version::v7_4);
    s.use_columns(open.columns());
    auto used = s.feed(fetch);
    REQUIRE(used.has_value());
    CHECK(*used == fetch.size());
    CHECK(s.state() == State::done);
    CHECK(s.rows() == 1);
    CHECK(s.columns().size() == 4);
}
