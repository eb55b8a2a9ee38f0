// RESP2 codec: commands encoded byte for byte, every reply type decoded (examples from the
// RESP specification, https://redis.io/docs/reference/protocol-spec/), replies split at every
// byte and in chunks, pipelines, bad input, limits, Redis Cluster redirections and hash slots.

#include "sluice/cache/resp.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

using namespace sluice;
using namespace sluice::cache;
using namespace std::string_view_literals;

namespace {

using ByteVec = std::vector<std::uint8_t>;

ByteVec bytes(std::string_view s) { return ByteVec(s.begin(), s.end()); }
std::string text(const ByteVec& b) { return std::string(b.begin(), b.end()); }

Reply status(std::string s) { return {ReplyKind::status, std::move(s), 0, {}}; }
Reply error(std::string s) { return {ReplyKind::error, std::move(s), 0, {}}; }
Reply integer(std::int64_t v) { return {ReplyKind::integer, {}, v, {}}; }
Reply bulk(std::string s) { return {ReplyKind::bulk, std::move(s), 0, {}}; }
Reply nil() { return {}; }
Reply array(std::vector<Reply> e) { return {ReplyKind::array, {}, 0, std::move(e)}; }

// Every reply next() gives until it needs more bytes; fails the test on an error.
std::vector<Reply> drain(ReplyReader& reader) {
    std::vector<Reply> out;
    for (;;) {
        auto step = reader.next();
        REQUIRE(step.has_value());
        if (!*step) return out;
        out.push_back(std::move(**step));
    }
}

// The first error next() returns after feeding `wire` whole, draining good replies first.
error_code first_error(std::string_view wire, ReaderLimits limits = {}) {
    ReplyReader reader{limits};
    reader.feed(bytes(wire));
    for (;;) {
        auto step = reader.next();
        if (step.has_error()) return step.error();
        if (!*step) return {};
    }
}

struct Golden {
    std::string_view name;
    std::string_view wire;
    Reply reply;
};

const std::vector<Golden>& goldens() {
    static const std::vector<Golden> g = {
        {"status", "+OK\r\n", status("OK")},
        {"empty status", "+\r\n", status("")},
        {"error", "-ERR unknown command 'foobar'\r\n", error("ERR unknown command 'foobar'")},
        {"error with a kind",
         "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
         error("WRONGTYPE Operation against a key holding the wrong kind of value")},
        {"integer", ":1000\r\n", integer(1000)},
        {"zero", ":0\r\n", integer(0)},
        {"negative integer", ":-42\r\n", integer(-42)},
        {"largest integer", ":9223372036854775807\r\n", integer(INT64_MAX)},
        {"smallest integer", ":-9223372036854775808\r\n", integer(INT64_MIN)},
        {"bulk", "$5\r\nhello\r\n", bulk("hello")},
        {"empty bulk", "$0\r\n\r\n", bulk("")},
        {"binary bulk", "$6\r\na\r\nb\0\r\r\n"sv, bulk(std::string("a\r\nb\0\r"sv))},
        {"nil bulk", "$-1\r\n", nil()},
        {"nil array", "*-1\r\n", nil()},
        {"empty array", "*0\r\n", array({})},
        {"array of bulks", "*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n", array({bulk("foo"), bulk("bar")})},
        {"mixed array", "*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n$5\r\nhello\r\n",
         array({integer(1), integer(2), integer(3), integer(4), bulk("hello")})},
        {"nested arrays", "*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Foo\r\n-Bar\r\n",
         array(
             {array({integer(1), integer(2), integer(3)}), array({status("Foo"), error("Bar")})})},
        {"nil inside an array", "*3\r\n$3\r\nfoo\r\n$-1\r\n$3\r\nbar\r\n",
         array({bulk("foo"), nil(), bulk("bar")})},
        {"nil array inside an array", "*2\r\n*-1\r\n*0\r\n", array({nil(), array({})})},
        {"eight nested arrays", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:7\r\n",
         array({array({array({array({array({array({array({array({integer(7)})})})})})})})})},
    };
    return g;
}

std::string all_golden_wire() {
    std::string wire;
    for (const auto& g : goldens())
        wire += g.wire;
    return wire;
}

std::vector<Reply> all_golden_replies() {
    std::vector<Reply> out;
    for (const auto& g : goldens())
        out.push_back(g.reply);
    return out;
}

} // namespace

// ---- encoder ----

TEST_CASE("write_command encodes a command as an array of bulk strings", "[cache][resp]") {
    ByteVec out;
    write_command(out, {"SET", "key", "value"});
    CHECK(text(out) == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
}

TEST_CASE("write_command keeps CR, LF and NUL inside arguments", "[cache][resp]") {
    ByteVec out;
    write_command(out, {"SET", "a\r\nb"sv, "\0\r\n\0"sv, ""});
    CHECK(text(out) == "*4\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$4\r\n\0\r\n\0\r\n$0\r\n\r\n"sv);
}

TEST_CASE("write_command from a vector writes what the list form writes", "[cache][resp]") {
    const std::vector<std::string_view> args{"MGET", "k1", "k2", "k3"};
    ByteVec from_span, from_list;
    write_command(from_span, args);
    write_command(from_list, {"MGET", "k1", "k2", "k3"});
    CHECK(from_span == from_list);
    CHECK(text(from_span) == "*4\r\n$4\r\nMGET\r\n$2\r\nk1\r\n$2\r\nk2\r\n$2\r\nk3\r\n");
}

TEST_CASE("write_command appends, so commands in one buffer make a pipeline", "[cache][resp]") {
    ByteVec out{'x'};
    write_command(out, {"PING"});
    write_command(out, {"GET", "k"});
    CHECK(text(out) == "x*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
}

TEST_CASE("an encoded command reads back as its arguments", "[cache][resp]") {
    const std::string big(100'000, 'v');
    const std::vector<std::string_view> args{"SET", "k\r\n\0"sv, big, ""};
    ByteVec out;
    write_command(out, args);
    ReplyReader reader;
    reader.feed(out);
    auto replies = drain(reader);
    REQUIRE(replies.size() == 1);
    std::vector<Reply> expected;
    for (auto a : args)
        expected.push_back(bulk(std::string(a)));
    CHECK(replies[0] == array(expected));
}

// ---- reader: every type ----

TEST_CASE("the reader decodes every RESP2 reply type", "[cache][resp]") {
    for (const auto& g : goldens()) {
        INFO(g.name);
        ReplyReader reader;
        reader.feed(bytes(g.wire));
        auto step = reader.next();
        REQUIRE(step.has_value());
        REQUIRE(step->has_value());
        CHECK(**step == g.reply);
        auto after = reader.next();
        REQUIRE(after.has_value());
        CHECK_FALSE(after->has_value());
    }
}

TEST_CASE("the reader needs more bytes for every proper prefix of a reply", "[cache][resp]") {
    for (const auto& g : goldens()) {
        for (std::size_t len = 0; len < g.wire.size(); ++len) {
            INFO(g.name << ", length " << len);
            ReplyReader reader;
            reader.feed(bytes(g.wire.substr(0, len)));
            auto step = reader.next();
            REQUIRE(step.has_value());
            CHECK_FALSE(step->has_value());
        }
    }
}

TEST_CASE("a stream split at every byte gives the same replies in order", "[cache][resp]") {
    const std::string wire = all_golden_wire();
    const auto expected = all_golden_replies();
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        INFO("cut at " << cut);
        ReplyReader reader;
        reader.feed(bytes(std::string_view(wire).substr(0, cut)));
        auto got = drain(reader);
        reader.feed(bytes(std::string_view(wire).substr(cut)));
        auto rest = drain(reader);
        got.insert(got.end(), rest.begin(), rest.end());
        CHECK(got == expected);
    }
}

TEST_CASE("a stream fed in chunks of 1, 2, 3, 5 and 64 bytes gives the same replies",
          "[cache][resp]") {
    const std::string wire = all_golden_wire();
    const auto expected = all_golden_replies();
    for (std::size_t chunk : {1, 2, 3, 5, 64}) {
        INFO("chunk " << chunk);
        ReplyReader reader;
        std::vector<Reply> got;
        for (std::size_t at = 0; at < wire.size(); at += chunk) {
            reader.feed(bytes(std::string_view(wire).substr(at, chunk)));
            auto some = drain(reader);
            got.insert(got.end(), some.begin(), some.end());
        }
        CHECK(got == expected);
    }
}

TEST_CASE("a pipeline's replies fed at once come out in order, one per next()", "[cache][resp]") {
    ReplyReader reader;
    reader.feed(bytes("+OK\r\n$3\r\nbar\r\n$-1\r\n:2\r\n-MOVED 1 h:1\r\n"));
    auto replies = drain(reader);
    CHECK(replies ==
          std::vector<Reply>{status("OK"), bulk("bar"), nil(), integer(2), error("MOVED 1 h:1")});
}

TEST_CASE("the reader keeps working across many replies and a large bulk", "[cache][resp]") {
    // Exercises hiredis's buffer compaction (after 1 KiB consumed) and release (maxbuf).
    ReplyReader reader;
    const std::string big(200'000, 'z');
    std::string wire;
    for (int i = 0; i < 500; ++i)
        wire += ":" + std::to_string(i) + "\r\n";
    wire += "$" + std::to_string(big.size()) + "\r\n" + big + "\r\n";
    std::vector<Reply> got;
    for (std::size_t at = 0; at < wire.size(); at += 4096) {
        reader.feed(bytes(std::string_view(wire).substr(at, 4096)));
        auto some = drain(reader);
        got.insert(got.end(), some.begin(), some.end());
    }
    reader.feed(bytes("+after\r\n"));
    auto last = drain(reader);
    REQUIRE(got.size() == 501);
    for (int i = 0; i < 500; ++i)
        CHECK(got[static_cast<std::size_t>(i)] == integer(i));
    CHECK(got[500] == bulk(big));
    CHECK(last == std::vector<Reply>{status("after")});
}

TEST_CASE("a reader can be moved between replies and mid-reply", "[cache][resp]") {
    ReplyReader first;
    first.feed(bytes("*2\r\n:1\r\n"));
    REQUIRE(drain(first).empty());
    ReplyReader second = std::move(first);
    second.feed(bytes(":2\r\n"));
    CHECK(drain(second) == std::vector<Reply>{array({integer(1), integer(2)})});
}

// ---- reader: bad input ----

TEST_CASE("the reader refuses bytes that are not RESP2", "[cache][resp]") {
    struct Case {
        std::string_view name, wire;
    };
    const Case cases[] = {
        {"unknown type byte", "x"},
        {"RESP3 map type byte", "%1\r\n"},
        {"inline text", "PING\r\n"},
        {"bulk length not a number", "$abc\r\n"},
        {"bulk length with a space", "$ 3\r\nfoo\r\n"},
        {"bulk length with a leading zero", "$03\r\nfoo\r\n"},
        {"bulk length below -1", "$-2\r\n"},
        {"bulk payload longer than announced", "$3\r\nfooXY"},
        {"bulk payload without CRLF", "$3\r\nfoo\n\r"},
        {"integer with letters", ":12a\r\n"},
        {"integer with a plus sign", ":+5\r\n"},
        {"empty integer", ":\r\n"},
        {"integer overflow", ":9223372036854775808\r\n"},
        {"array count not a number", "*x\r\n"},
        {"array count below -1", "*-5\r\n"},
        {"array count over INT_MAX", "*4294967297\r\n:1\r\n"},
        {"bad element inside an array", "*3\r\n$3\r\nfoo\r\n?\r\n"},
        {"nine nested arrays", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*0\r\n"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        CHECK(first_error(c.wire) == cache_errc::malformed);
    }
}

TEST_CASE("after an error the reader stays failed", "[cache][resp]") {
    ReplyReader reader;
    reader.feed(bytes("+OK\r\n*2\r\n:1\r\n!oops\r\n"));
    auto ok = reader.next();
    REQUIRE(ok.has_value());
    REQUIRE(ok->has_value());
    CHECK(**ok == status("OK"));
    CHECK_FALSE(reader.failed());
    auto bad = reader.next();
    REQUIRE(bad.has_error());
    CHECK(bad.error() == cache_errc::malformed);
    CHECK(reader.failed());
    reader.feed(bytes("+OK\r\n"));
    for (int i = 0; i < 3; ++i) {
        auto again = reader.next();
        REQUIRE(again.has_error());
        CHECK(again.error() == cache_errc::malformed);
    }
}

TEST_CASE("cache errors have their own category and messages", "[cache][resp]") {
    const error_code ec = cache_errc::oversized;
    CHECK(ec.category().name() == std::string_view("sluice.cache"));
    CHECK(ec.message() == "Redis reply larger than the allowed maximum");
    CHECK(error_code(cache_errc::malformed) != error_code(protocol::codec_errc::malformed));
}

// ---- reader: limits ----

TEST_CASE("a bulk over the limit is refused as soon as its header arrives", "[cache][resp]") {
    ReaderLimits limits;
    limits.max_bulk = 10;
    ReplyReader reader{limits};
    reader.feed(bytes("$11\r\n"));
    auto step = reader.next();
    REQUIRE(step.has_error());
    CHECK(step.error() == cache_errc::oversized);
    CHECK(reader.failed());
}

TEST_CASE("the default bulk limit is Redis's 512 MiB", "[cache][resp]") {
    CHECK(first_error("$536870912\r\n") == error_code{}); // waits for the payload
    CHECK(first_error("$536870913\r\n") == cache_errc::oversized);
    CHECK(first_error("$9223372036854775807\r\n") == cache_errc::oversized);
    // Beyond a signed 64-bit number hiredis 0.14 refuses the length itself.
    CHECK(first_error("$18446744073709551615\r\n") == cache_errc::malformed);
}

TEST_CASE("the limits are inclusive and apply however the bytes arrive", "[cache][resp]") {
    ReaderLimits limits;
    limits.max_bulk = 10;
    limits.max_elements = 3;
    limits.max_line = 8;
    CHECK(first_error("$10\r\n0123456789\r\n", limits) == error_code{});
    CHECK(first_error("$11\r\n0123456789a\r\n", limits) == cache_errc::oversized);
    CHECK(first_error("*2\r\n$3\r\nabc\r\n$11\r\n0123456789a\r\n", limits) ==
          cache_errc::oversized);
    CHECK(first_error("*3\r\n:1\r\n:2\r\n:3\r\n", limits) == error_code{});
    CHECK(first_error("*4\r\n", limits) == cache_errc::oversized);
    CHECK(first_error("*1\r\n*4\r\n", limits) == cache_errc::oversized);
    CHECK(first_error("+12345678\r\n", limits) == error_code{});
    CHECK(first_error("+123456789\r\n", limits) == cache_errc::oversized);
    CHECK(first_error("-123456789\r\n", limits) == cache_errc::oversized);
    CHECK(first_error("+12345678", limits) == error_code{});           // may still end here
    CHECK(first_error("+123456789", limits) == cache_errc::oversized); // cannot any more
    CHECK(first_error("$123456789", limits) == cache_errc::oversized);
    CHECK(first_error(":123456789", limits) == cache_errc::oversized);
}

TEST_CASE("a line at the limit is kept while its LF has not arrived", "[cache][resp]") {
    // Found by fuzz_resp (corpus/resp/crash-line-at-limit-cr-before-chunk-end): the pending
    // CR was counted as part of the line.
    ReaderLimits limits;
    limits.max_line = 8;
    ReplyReader reader{limits};
    reader.feed(bytes("+12345678\r"));
    auto pending = reader.next();
    REQUIRE(pending.has_value());
    CHECK_FALSE(pending->has_value());
    reader.feed(bytes("\n"));
    CHECK(drain(reader) == std::vector<Reply>{status("12345678")});
    CHECK(first_error("+123456789\r", limits) == cache_errc::oversized);
}

TEST_CASE("an oversized element after good replies fails only at that element", "[cache][resp]") {
    ReaderLimits limits;
    limits.max_bulk = 4;
    ReplyReader reader{limits};
    reader.feed(bytes(":1\r\n$4\r\nabcd\r\n*2\r\n$1\r\na\r\n$5\r\n"));
    auto first = reader.next();
    auto second = reader.next();
    REQUIRE((first.has_value() && first->has_value()));
    REQUIRE((second.has_value() && second->has_value()));
    CHECK(**second == bulk("abcd"));
    auto third = reader.next();
    REQUIRE(third.has_error());
    CHECK(third.error() == cache_errc::oversized);
}

// ---- Redis Cluster ----

TEST_CASE("parse_redirect reads MOVED and ASK errors", "[cache][resp][cluster]") {
    using K = Redirect::Kind;
    struct Case {
        Reply reply;
        std::optional<Redirect> expected;
    };
    const Case cases[] = {
        {error("MOVED 3999 127.0.0.1:6381"), Redirect{K::moved, 3999, "127.0.0.1", 6381}},
        {error("ASK 3999 127.0.0.1:6381"), Redirect{K::ask, 3999, "127.0.0.1", 6381}},
        {error("MOVED 0 redis-1.example:7000"), Redirect{K::moved, 0, "redis-1.example", 7000}},
        {error("MOVED 16383 h:65535"), Redirect{K::moved, 16383, "h", 65535}},
        {error("MOVED 12182 ::1:30001"), Redirect{K::moved, 12182, "::1", 30001}},
        {error("MOVED 5 :6380"), Redirect{K::moved, 5, "", 6380}},
        {error("MOVED 16384 h:1"), std::nullopt},
        {error("MOVED -1 h:1"), std::nullopt},
        {error("MOVED 1 h:0"), std::nullopt},
        {error("MOVED 1 h:65536"), std::nullopt},
        {error("MOVED 1 h"), std::nullopt},
        {error("MOVED 1 h:"), std::nullopt},
        {error("MOVED 1"), std::nullopt},
        {error("MOVED x h:1"), std::nullopt},
        {error("MOVED 1 h:1 extra"), std::nullopt},
        {error("MOVED  1 h:1"), std::nullopt},
        {error("moved 1 h:1"), std::nullopt},
        {error("ASKING 1 h:1"), std::nullopt},
        {error("ERR unknown command"), std::nullopt},
        {status("MOVED 1 h:1"), std::nullopt},
        {bulk("MOVED 1 h:1"), std::nullopt},
    };
    for (const auto& c : cases) {
        INFO(c.reply.str);
        CHECK(parse_redirect(c.reply) == c.expected);
        CHECK(is_moved(c.reply) == (c.expected && c.expected->kind == K::moved));
        CHECK(is_ask(c.reply) == (c.expected && c.expected->kind == K::ask));
    }
}

TEST_CASE("a MOVED error read from the wire is recognised", "[cache][resp][cluster]") {
    ReplyReader reader;
    reader.feed(bytes("-MOVED 3999 127.0.0.1:6381\r\n"));
    auto replies = drain(reader);
    REQUIRE(replies.size() == 1);
    CHECK(is_moved(replies[0]));
    CHECK(parse_redirect(replies[0])->port == 6381);
}

TEST_CASE("crc16 is the XMODEM variant Redis Cluster specifies", "[cache][resp][cluster]") {
    // Redis Cluster specification, appendix "CRC16 reference implementation": the output for
    // "123456789" is 0x31C3.
    CHECK(crc16("123456789") == 0x31C3);
    CHECK(crc16("") == 0);
}

TEST_CASE("key_slot matches the slots Redis documents", "[cache][resp][cluster]") {
    // CLUSTER KEYSLOT command page (https://redis.io/commands/cluster-keyslot): somekey 11058,
    // foo{hash_tag} and bar{hash_tag} 2515. The cluster tutorial redirects "foo" to 12182.
    CHECK(key_slot("somekey") == 11058);
    CHECK(key_slot("foo{hash_tag}") == 2515);
    CHECK(key_slot("bar{hash_tag}") == 2515);
    CHECK(key_slot("foo") == 12182);
    CHECK(key_slot("123456789") == (0x31C3 & 16383));
}

TEST_CASE("key_slot hashes only a non-empty hash tag", "[cache][resp][cluster]") {
    // Redis Cluster specification, "Hash tags": its four examples, then the edges.
    struct Case {
        std::string_view key, hashed;
    };
    const Case cases[] = {
        {"{user1000}.following", "user1000"},
        {"{user1000}.followers", "user1000"},
        {"foo{}{bar}", "foo{}{bar}"}, // empty first tag: the whole key
        {"foo{{bar}}zap", "{bar"},    // from the first '{' to the first '}' after it
        {"foo{bar}{zap}", "bar"},     // the first tag only
        {"no tag", "no tag"},
        {"{", "{"},
        {"}{", "}{"},
        {"a{b", "a{b"},
        {"a}b{c}", "c"},
        {"{}", "{}"},
        {"{a}", "a"},
        {"", ""},
    };
    for (const auto& c : cases) {
        INFO(c.key);
        CHECK(key_slot(c.key) == crc16(c.hashed) % 16384);
    }
    CHECK(key_slot("foo{}{bar}") != key_slot("bar"));
    CHECK(key_slot("{user1000}.following") == key_slot("{user1000}.followers"));
}

TEST_CASE("key_slot is always below 16384", "[cache][resp][cluster]") {
    std::string key;
    for (int i = 0; i < 2000; ++i) {
        key.push_back(static_cast<char>(i * 37));
        CHECK(key_slot(key) < 16384);
    }
}
