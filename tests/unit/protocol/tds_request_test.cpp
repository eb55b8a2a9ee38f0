// Client requests: ALL_HEADERS, SQLBatch, RPC, transaction manager requests, ATTENTION.

#include "sluice/protocol/tds/request.hpp"
#include "sluice/protocol/tds/text.hpp"
#include "tds_test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice;
using namespace sluice::protocol;
using namespace sluice::protocol::tds;
using namespace sluice::test;
using namespace sluice::test::tds;

namespace {

std::size_t param_total(const RpcRequest& r) {
    std::size_t n = 0;
    for (const auto& c : r.calls)
        n += c.params.size() + 1;
    return n;
}

void put_u16(ByteVec& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v));
    b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void put_u32(ByteVec& b, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// A B_VARCHAR of an ASCII name.
void put_name(ByteVec& b, std::string_view s) {
    b.push_back(static_cast<std::uint8_t>(s.size()));
    append(b, ucs2(s));
}

} // namespace

TEST_CASE("parse_sql_batch reads the MS-TDS 4.6 batch and its ALL_HEADERS", "[protocol][tds]") {
    const ByteVec payload = read_payload("mstds-4.6-sqlbatch-request");
    auto b = parse_sql_batch(payload);
    REQUIRE(b.has_value());
    REQUIRE(b->headers);
    CHECK(b->headers->size == 22);
    // Quirk of the MS-TDS 4.6 and 4.8 examples: the 0x01 sits one byte earlier than in real
    // captures (descriptor 0 and outstanding count 1 there), so these bytes say descriptor
    // 0x0100000000000000 and an outstanding request count of 0.
    CHECK(b->headers->transaction_descriptor == 0x0100000000000000u);
    CHECK(b->headers->outstanding_requests == 0);
    CHECK(b->text == "\nselect 'foo' as 'bar'\n        ");
    ByteVec out;
    write_all_headers(*b->headers->transaction_descriptor, b->headers->outstanding_requests, out);
    append_utf16le(b->text, out);
    CHECK(to_hex(out) == to_hex(payload));
}

TEST_CASE("write_sql_batch writes the ALL_HEADERS real 7.2+ clients send", "[protocol][tds]") {
    ByteVec out;
    write_sql_batch("select 1", 0, out);
    // As in the captured RPCs: descriptor 0, one outstanding request.
    CHECK(to_hex(Bytes{out}.first(22)) == "16000000120000000200000000000000000001000000");
    const auto real_payload = read_payload("real-rpc-sp_prepexec-request");
    auto real = parse_rpc(real_payload);
    REQUIRE(real.has_value());
    CHECK(real->headers->transaction_descriptor == 0u);
    CHECK(real->headers->outstanding_requests == 1);
}

TEST_CASE("a TDS 7.1 SQLBatch has no ALL_HEADERS and is told apart", "[protocol][tds]") {
    const ByteVec payload = read_payload("real-tds71-commit-batch-request");
    auto b = parse_sql_batch(payload);
    REQUIRE(b.has_value());
    CHECK_FALSE(b->headers);
    CHECK(b->text == "COMMIT TRANSACTION");
    ByteVec out;
    write_sql_batch(b->text, std::nullopt, out);
    CHECK(to_hex(out) == to_hex(payload));
}

TEST_CASE("parse_sql_batch decodes UTF-16 and refuses an odd byte count", "[protocol][tds]") {
    ByteVec out;
    write_sql_batch("SELECT N'Grüße 😀'", 7, out);
    auto b = parse_sql_batch(out);
    REQUIRE(b.has_value());
    CHECK(b->text == "SELECT N'Grüße 😀'");
    CHECK(b->headers->transaction_descriptor == 7u);
    out.push_back(0x41);
    CHECK(parse_sql_batch(out).error() == codec_errc::malformed);
}

TEST_CASE("ALL_HEADERS that claims to be there but breaks is refused", "[protocol][tds]") {
    ByteVec b = read_payload("mstds-4.6-sqlbatch-request");
    b[8] = 9; // header type 9
    CHECK(parse_sql_batch(b).error() == codec_errc::malformed);
    b = read_payload("mstds-4.6-sqlbatch-request");
    b[4] = 0x13; // header length 19 overruns the block of 22
    CHECK(parse_sql_batch(b).error() == codec_errc::malformed);
}

TEST_CASE("rewrite_transaction_descriptor replaces, adds, or prepends ALL_HEADERS",
          "[protocol][tds]") {
    const std::uint64_t tx = 0x0000005a00000001; // as ENVCHANGE 8 of the SQL Server 2008 capture
    SECTION("replaces the descriptor of a 7.2 batch") {
        ByteVec out;
        REQUIRE(
            rewrite_transaction_descriptor(read_payload("mstds-4.6-sqlbatch-request"), tx, 1, out));
        auto b = parse_sql_batch(out);
        REQUIRE(b.has_value());
        CHECK(b->headers->transaction_descriptor == tx);
        CHECK(b->headers->outstanding_requests == 0); // kept from the request
        CHECK(b->text == "\nselect 'foo' as 'bar'\n        ");
        CHECK(out.size() == read_payload("mstds-4.6-sqlbatch-request").size());
    }
    SECTION("prepends ALL_HEADERS to a 7.1 batch") {
        ByteVec out;
        REQUIRE(rewrite_transaction_descriptor(read_payload("real-tds71-commit-batch-request"), tx,
                                               1, out));
        auto b = parse_sql_batch(out);
        REQUIRE(b.has_value());
        REQUIRE(b->headers);
        CHECK(b->headers->transaction_descriptor == tx);
        CHECK(b->text == "COMMIT TRANSACTION");
    }
    SECTION("adds a descriptor header to a block without one") {
        ByteVec p;
        put_u32(p, 4 + 26);
        put_u32(p, 26); // trace activity: 16-byte GUID + 4-byte sequence
        put_u16(p, header_type::trace_activity);
        p.insert(p.end(), 20, 0xAB);
        append(p, ucs2("select 1"));
        ByteVec out;
        REQUIRE(rewrite_transaction_descriptor(p, tx, 1, out));
        auto b = parse_sql_batch(out);
        REQUIRE(b.has_value());
        CHECK(b->headers->trace_activity);
        CHECK(b->headers->transaction_descriptor == tx);
        CHECK(b->headers->size == 4 + 26 + 18);
        CHECK(b->text == "select 1");
    }
    SECTION("rewrites an RPC request") {
        ByteVec out;
        REQUIRE(rewrite_transaction_descriptor(read_payload("real-rpc-sp_prepexec-request"), tx, 1,
                                               out));
        auto r = parse_rpc(out);
        REQUIRE(r.has_value());
        CHECK(r->headers->transaction_descriptor == tx);
        CHECK(r->calls.at(0).proc_id == proc_id::prep_exec);
    }
}

TEST_CASE("patch_transaction_descriptor works in place and says when it cannot",
          "[protocol][tds]") {
    ByteVec b = read_payload("real-rpc-batched-sp_execute-request");
    auto patched = patch_transaction_descriptor(b, 0x1122334455667788);
    REQUIRE(patched.has_value());
    CHECK(*patched);
    CHECK(parse_rpc(b)->headers->transaction_descriptor == 0x1122334455667788u);
    ByteVec old = read_payload("real-tds71-commit-batch-request");
    auto not_there = patch_transaction_descriptor(old, 1);
    REQUIRE(not_there.has_value());
    CHECK_FALSE(*not_there);
    CHECK(old == read_payload("real-tds71-commit-batch-request"));
}

TEST_CASE("parse_rpc reads the MS-TDS 4.8 call by name with a NULL INTN", "[protocol][tds]") {
    const auto r_payload = read_payload("mstds-4.8-rpc-request");
    auto r = parse_rpc(r_payload);
    REQUIRE(r.has_value());
    REQUIRE(r->headers);
    REQUIRE(r->calls.size() == 1);
    const RpcCall& c = r->calls[0];
    CHECK(c.proc_id == 0);
    CHECK(c.proc_name == "foo3");
    CHECK(c.effective_proc_id() == 0);
    REQUIRE(c.params.size() == 1);
    CHECK(c.params[0].name.empty());
    CHECK(c.params[0].type.type == data_type::intn);
    CHECK(c.params[0].type.length == 2);
    CHECK(c.params[0].value.is_null);
    CHECK_FALSE(c.statement_text());
    CHECK_FALSE(c.handle());
}

TEST_CASE("parse_rpc reads sp_prepexec: handle OUTPUT, parameter list, statement",
          "[protocol][tds]") {
    const auto r_payload = read_payload("real-rpc-sp_prepexec-request");
    auto r = parse_rpc(r_payload);
    REQUIRE(r.has_value());
    REQUIRE(r->calls.size() == 1);
    const RpcCall& c = r->calls[0];
    CHECK(c.proc_id == proc_id::prep_exec);
    REQUIRE(c.params.size() == 5);
    CHECK(c.params[0].status == param_status::by_ref);
    CHECK(value_as_int(c.params[0].type, c.params[0].value) == 0);
    CHECK(value_as_text(c.params[1].type, c.params[1].value) == "@P0 nvarchar(4000),@P1 int");
    auto text = c.statement_text();
    REQUIRE(text);
    CHECK(text->rfind("select * from test_table_1 where name = @P0 and id = @P1", 0) == 0);
    CHECK(c.params[2].type.type == data_type::nvarchar);
    CHECK(c.params[2].type.length == 8000);
    CHECK(c.params[2].type.collation == std::array<std::uint8_t, 5>{0x09, 0x04, 0xd0, 0x00, 0x34});
    CHECK(value_as_text(c.params[3].type, c.params[3].value) == "zzz");
    CHECK(value_as_int(c.params[4].type, c.params[4].value) == 2);
    CHECK_FALSE(c.handle());
    CHECK(c.handle_outputs() == 0x01);
}

TEST_CASE("parse_rpc splits batched sp_execute calls at the 0xFF separator", "[protocol][tds]") {
    const auto r_payload = read_payload("real-rpc-batched-sp_execute-request");
    auto r = parse_rpc(r_payload);
    REQUIRE(r.has_value());
    REQUIRE(r->calls.size() == 2);
    CHECK(r->calls[0].separator == rpc_separator::batch);
    CHECK(r->calls[1].separator == 0);
    for (const auto& c : r->calls) {
        CHECK(c.proc_id == proc_id::execute);
        CHECK(c.handle_outputs() == 0);
        CHECK(c.handle() == 2);
    }
}

TEST_CASE("parse_rpc reads named parameters of a call sent with RESETCONNECTION",
          "[protocol][tds]") {
    const auto r_payload = read_payload("real-rpc-named-proc-resetconnection-request");
    auto r = parse_rpc(r_payload);
    REQUIRE(r.has_value());
    REQUIRE(r->calls.size() == 1);
    const RpcCall& c = r->calls[0];
    CHECK(c.proc_name == "p_GetBogusData");
    REQUIRE(c.params.size() == 3);
    CHECK(c.params[0].name == "@SearchType");
    CHECK(value_as_int(c.params[0].type, c.params[0].value) == 1);
    CHECK(c.params[1].name == "@MaxWaitTimeInSeconds");
    CHECK(value_as_int(c.params[1].type, c.params[1].value) == 0);
    CHECK(c.params[2].name == "@ProcessNegativeAck");
    CHECK(value_as_int(c.params[2].type, c.params[2].value) == 0);
}

TEST_CASE("sp_executesql by name with an nvarchar(max) statement in PLP chunks",
          "[protocol][tds]") {
    ByteVec p;
    write_all_headers(0, 1, p);
    put_u16(p, 13);
    append(p, ucs2("sp_executesql"));
    put_u16(p, 0); // option flags
    put_name(p, "@stmt");
    p.push_back(0);
    append(p, from_hex("e7 ff ff 09 04 d0 00 34"));
    const ByteVec a = ucs2("SELECT * FROM t "), b = ucs2("WHERE id = @id");
    for (int i = 0; i < 8; ++i)
        p.push_back(0xFE); // UNKNOWN_PLP_LEN: the total is not announced
    put_u32(p, static_cast<std::uint32_t>(a.size()));
    append(p, a);
    put_u32(p, static_cast<std::uint32_t>(b.size()));
    append(p, b);
    put_u32(p, 0);
    put_name(p, "@params");
    p.push_back(0);
    append(p, from_hex("e7 40 1f 09 04 d0 00 34"));
    const ByteVec decl = ucs2("@id int");
    put_u16(p, static_cast<std::uint16_t>(decl.size()));
    append(p, decl);
    put_name(p, "@id");
    p.push_back(0);
    append(p, from_hex("26 04 04 2a 00 00 00"));
    p.push_back(0xFF); // a final separator is allowed
    auto r = parse_rpc(p);
    REQUIRE(r.has_value());
    REQUIRE(r->calls.size() == 1);
    CHECK(r->calls[0].effective_proc_id() == proc_id::execute_sql);
    CHECK(r->calls[0].statement_text() == "SELECT * FROM t WHERE id = @id");
    CHECK(value_as_int(r->calls[0].params[2].type, r->calls[0].params[2].value) == 42);
}

TEST_CASE("well_known_proc_id maps names, prefixes and case", "[protocol][tds]") {
    CHECK(well_known_proc_id("sp_executesql") == proc_id::execute_sql);
    CHECK(well_known_proc_id("SP_PREPEXEC") == proc_id::prep_exec);
    CHECK(well_known_proc_id("sys.sp_prepare") == proc_id::prepare);
    CHECK(well_known_proc_id("master..[sp_unprepare]") == proc_id::unprepare);
    CHECK(well_known_proc_id("p_GetBogusData") == 0);
    CHECK(well_known_proc_id(std::string(100, 'x')) == 0);
}

TEST_CASE("parse_rpc refuses every truncation or reads fewer parameters", "[protocol][tds]") {
    for (const char* name :
         {"mstds-4.8-rpc-request", "real-rpc-sp_prepexec-request",
          "real-rpc-batched-sp_execute-request", "real-rpc-named-proc-resetconnection-request"}) {
        INFO(name);
        const ByteVec payload = read_payload(name);
        auto full = parse_rpc(payload);
        REQUIRE(full.has_value());
        for (std::size_t len = 0; len < payload.size(); ++len) {
            INFO("length " << len);
            auto r = parse_rpc(Bytes{payload}.first(len));
            // A cut at a parameter boundary is a shorter request; anywhere else an error.
            if (r) CHECK(param_total(*r) < param_total(*full));
        }
    }
}

TEST_CASE("parse_rpc refuses TVPs, unknown types and encrypted parameters", "[protocol][tds]") {
    ByteVec base;
    put_u16(base, 0xFFFF);
    put_u16(base, proc_id::execute);
    put_u16(base, 0);
    put_name(base, "");
    ByteVec tvp = base;
    tvp.push_back(0);
    tvp.push_back(data_type::tvp);
    CHECK(parse_rpc(tvp).error() == codec_errc::malformed);
    ByteVec unknown = base;
    unknown.push_back(0);
    unknown.push_back(0x99);
    CHECK(parse_rpc(unknown).error() == codec_errc::malformed);
    ByteVec encrypted = base;
    encrypted.push_back(param_status::encrypted);
    append(encrypted, from_hex("26 04 04 01 00 00 00"));
    CHECK(parse_rpc(encrypted).error() == codec_errc::malformed);
}

TEST_CASE("parse_tm_request reads begin, commit with a new transaction, save and others",
          "[protocol][tds]") {
    ByteVec begin;
    write_all_headers(0, 1, begin);
    put_u16(begin, 5);
    begin.push_back(0x02); // read committed
    put_name(begin, "t1");
    auto b = parse_tm_request(begin);
    REQUIRE(b.has_value());
    CHECK(b->type == TmRequestType::begin_xact);
    CHECK(b->isolation_level == 2);
    CHECK(b->name == "t1");
    CHECK(b->headers->transaction_descriptor == 0u);

    ByteVec commit;
    write_all_headers(0x5a00000001, 1, commit);
    put_u16(commit, 7);
    put_name(commit, "");
    commit.push_back(0x01); // fBeginXact
    commit.push_back(0x05); // snapshot
    put_name(commit, "next");
    auto c = parse_tm_request(commit);
    REQUIRE(c.has_value());
    CHECK(c->type == TmRequestType::commit_xact);
    CHECK(c->flags == 1);
    CHECK(c->new_isolation_level == 5);
    CHECK(c->new_name == "next");
    CHECK(c->headers->transaction_descriptor == 0x5a00000001u);

    ByteVec rollback;
    write_all_headers(0x5a00000001, 1, rollback);
    put_u16(rollback, 8);
    put_name(rollback, "");
    rollback.push_back(0);
    CHECK(parse_tm_request(rollback)->type == TmRequestType::rollback_xact);

    ByteVec save;
    write_all_headers(1, 1, save);
    put_u16(save, 9);
    put_name(save, "sp1");
    CHECK(parse_tm_request(save)->name == "sp1");

    ByteVec dtc;
    write_all_headers(0, 1, dtc);
    put_u16(dtc, 0);
    put_u16(dtc, 0);
    CHECK(parse_tm_request(dtc)->type == TmRequestType::get_dtc_address);

    ByteVec propagate;
    write_all_headers(0, 1, propagate);
    put_u16(propagate, 1);
    put_u16(propagate, 3);
    append(propagate, from_hex("01 02 03"));
    CHECK(parse_tm_request(propagate)->propagate_cookie.size() == 3);

    ByteVec unknown;
    write_all_headers(0, 1, unknown);
    put_u16(unknown, 0x63);
    CHECK(parse_tm_request(unknown).error() == codec_errc::malformed);
    save.push_back(0);
    CHECK(parse_tm_request(save).error() == codec_errc::trailing_bytes);
    for (std::size_t len = 0; len < commit.size(); ++len)
        CHECK(parse_tm_request(Bytes{commit}.first(len)).has_error());
}

TEST_CASE("ATTENTION has no payload", "[protocol][tds]") {
    CHECK(parse_attention(read_payload("mstds-4.10-attention")).has_value());
    CHECK(parse_attention(from_hex("00")).error() == codec_errc::trailing_bytes);
}

TEST_CASE("UTF-16 conversion handles surrogates and bad input", "[protocol][tds]") {
    ByteVec out;
    CHECK(append_utf16le("a😀é", out) == 4);
    CHECK(to_hex(out) == "61003dd800dee900");
    CHECK(utf16le_to_utf8(out) == "a😀é");
    CHECK(utf16_length("a😀é") == 4);
    CHECK(utf16le_to_utf8(from_hex("00d8 4100")) == "\xEF\xBF\xBD"
                                                    "A"); // lone high surrogate
    out.clear();
    append_utf16le("\xff\xc3", out); // invalid UTF-8
    CHECK(to_hex(out) == "fdfffdff");
    out.clear();
    CHECK(append_utf16le("ab😀", out, 3) == 2); // the pair would not fit
}
