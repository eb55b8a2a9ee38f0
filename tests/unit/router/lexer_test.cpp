// The MySQL/MariaDB lexer (router/lexer.hpp, private): token kinds and extents.

#include "lexer.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace sluice::router;
using namespace sluice::router::detail;
using namespace std::string_view_literals;

namespace {

/// Tokens as "kind:text" strings, comments included; an error shows as "error:<n>:text".
std::vector<std::string> lex(std::string_view sql, SqlMode mode = {}) {
    static constexpr const char* names[] = {"end",  "word", "qid", "str", "num",  "ph",
                                            "uvar", "svar", "op",  "cmt", "error"};
    std::vector<std::string> out;
    Lexer lx(sql, mode);
    for (int guard = 0; guard < 1000; ++guard) {
        const Token t = lx.next();
        if (t.kind == TokenKind::end) break;
        std::string s = names[static_cast<int>(t.kind)];
        if (t.kind == TokenKind::error) s += ":" + std::to_string(static_cast<int>(t.error));
        s += ":";
        s += t.text;
        out.push_back(std::move(s));
    }
    return out;
}

using V = std::vector<std::string>;

} // namespace

TEST_CASE("words, numbers, placeholders and operators", "[router][lexer]") {
    CHECK(lex("SELECT a1, _b$ FROM t") ==
          V{"word:SELECT", "word:a1", "op:,", "word:_b$", "word:FROM", "word:t"});
    CHECK(lex("1 12.5 .5 1e10 1E+3 1.5e-2 10. 1.e2") == V{"num:1", "num:12.5", "num:.5", "num:1e10",
                                                          "num:1E+3", "num:1.5e-2", "num:10.",
                                                          "num:1.e2"});
    CHECK(lex("0xFF 0b101 X'4A' x'' B'01' b'1'") ==
          V{"num:0xFF", "num:0b101", "num:X'4A'", "num:x''", "num:B'01'", "num:b'1'"});
    CHECK(lex("0xZZ 0X41 0b2 1abc 1e 1e+ 1e5x") == V{"word:0xZZ", "word:0X41", "word:0b2",
                                                     "word:1abc", "word:1e", "word:1e", "op:+",
                                                     "num:1e5", "word:x"});
    CHECK(lex("1.5abc") == V{"num:1.5", "word:abc"});
    CHECK(lex("? ??") == V{"ph:?", "ph:?", "ph:?"});
    CHECK(lex("a<=>b<=c>=d<>e!=f:=g&&h||i<<j>>k->l->>m") ==
          V{"word:a", "op:<=>", "word:b", "op:<=",  "word:c", "op:>=",  "word:d",
            "op:<>",  "word:e", "op:!=",  "word:f", "op::=",  "word:g", "op:&&",
            "word:h", "op:||",  "word:i", "op:<<",  "word:j", "op:>>",  "word:k",
            "op:->",  "word:l", "op:->>", "word:m"});
    CHECK(lex("(a);{b}") == V{"op:(", "word:a", "op:)", "op:;", "op:{", "word:b", "op:}"});
    CHECK(lex("héllo wörld") == V{"word:héllo", "word:wörld"});
}

TEST_CASE("qualified names: the part after a dot is a name, digits or not", "[router][lexer]") {
    CHECK(lex("t.a") == V{"word:t", "op:.", "word:a"});
    CHECK(lex("t.1a") == V{"word:t", "op:.", "word:1a"});
    CHECK(lex("t.1") == V{"word:t", "op:.", "word:1"});
    CHECK(lex("`t`.1e5") == V{"qid:`t`", "op:.", "word:1e5"});
    CHECK(lex("t .5") == V{"word:t", "num:.5"});
    CHECK(lex("t. 5") == V{"word:t", "op:.", "num:5"});
    CHECK(lex("(.5)") == V{"op:(", "num:.5", "op:)"});
    CHECK(lex("db.t.*") == V{"word:db", "op:.", "word:t", "op:.", "op:*"});
}

TEST_CASE("strings with escapes, doubled quotes and introducers", "[router][lexer]") {
    CHECK(lex("'a' \"b\"") == V{"str:'a'", "str:\"b\""});
    CHECK(lex("'it''s' 'a\\'b' 'c\\\\'") == V{"str:'it''s'", "str:'a\\'b'", "str:'c\\\\'"});
    CHECK(lex("\"a\"\"b\" \"c\\\"d\"") == V{"str:\"a\"\"b\"", "str:\"c\\\"d\""});
    CHECK(lex("N'x' n'y' _utf8mb4'z' _latin1\"w\"") ==
          V{"str:N'x'", "str:n'y'", "str:_utf8mb4'z'", "str:_latin1\"w\""});
    CHECK(lex("_utf8mb4 'z'") == V{"word:_utf8mb4", "str:'z'"});
    CHECK(lex("'a\nb'") == V{"str:'a\nb'"});
    CHECK(lex("'a' 'b'") == V{"str:'a'", "str:'b'"});
}

TEST_CASE("backtick names double their backticks and take no escapes", "[router][lexer]") {
    CHECK(lex("`a``b` `c\\`") == V{"qid:`a``b`", "qid:`c\\`"});
    CHECK(lex("`select`.`from`") == V{"qid:`select`", "op:.", "qid:`from`"});
}

TEST_CASE("user and system variables", "[router][lexer]") {
    CHECK(lex("@a @a.b @a$1 @`a b` @'c' @\"d\"") ==
          V{"uvar:@a", "uvar:@a.b", "uvar:@a$1", "uvar:@`a b`", "uvar:@'c'", "uvar:@\"d\""});
    CHECK(lex("@@x @@session.x @@GLOBAL.y @@local.z") ==
          V{"svar:@@x", "svar:@@session.x", "svar:@@GLOBAL.y", "svar:@@local.z"});
    CHECK(lex("@ @@ @(") == V{"op:@", "op:@", "op:@", "op:@", "op:("});
    CHECK(lex("'u'@'h' `u`@`h` u@h") == V{"str:'u'", "op:@", "str:'h'", "qid:`u`", "op:@",
                                          "qid:`h`", "word:u", "op:@", "word:h"});
    CHECK(lex("'u' @'h'") == V{"str:'u'", "uvar:@'h'"});
}

TEST_CASE("comments of every kind", "[router][lexer]") {
    CHECK(lex("a # x\nb") == V{"word:a", "cmt:# x", "word:b"});
    CHECK(lex("a -- x\nb") == V{"word:a", "cmt:-- x", "word:b"});
    CHECK(lex("a --\tx\nb") == V{"word:a", "cmt:--\tx", "word:b"});
    CHECK(lex("a --") == V{"word:a", "cmt:--"});
    CHECK(lex("a --\n") == V{"word:a", "cmt:--"});
    CHECK(lex("a --x") == V{"word:a", "op:-", "op:-", "word:x"});
    CHECK(lex("a--1") == V{"word:a", "op:-", "op:-", "num:1"});
    CHECK(lex("a /* x */ b") == V{"word:a", "cmt:/* x */", "word:b"});
    CHECK(lex("a /**/b/*+ hint */") == V{"word:a", "cmt:/**/", "word:b", "cmt:/*+ hint */"});
    CHECK(lex("/* a /* b */ c") == V{"cmt:/* a /* b */", "word:c"}); // no nesting
}

TEST_CASE("versioned comments are code without their markers", "[router][lexer]") {
    CHECK(lex("/*!40101 SET x=1 */") == V{"word:SET", "word:x", "op:=", "num:1"});
    CHECK(lex("/*!100100 a */") == V{"word:a"});
    CHECK(lex("/*!1001001 */") == V{"num:1"});             // six version digits at most
    CHECK(lex("/*!4010 a */") == V{"num:4010", "word:a"}); // under five: no version
    CHECK(lex("/*!a*/b") == V{"word:a", "word:b"});
    CHECK(lex("/*M!100100 a */ /*M!b*/") == V{"word:a", "word:b"});
    CHECK(lex("/*M a */") == V{"cmt:/*M a */"});
    CHECK(lex("a/*!*/b") == V{"word:a", "word:b"});
    CHECK(lex("*/") == V{"op:*", "op:/"});
}

TEST_CASE("what cannot be lexed is an error token, then nothing", "[router][lexer]") {
    const auto err = [](LexError e, std::string_view rest) {
        return "error:" + std::to_string(static_cast<int>(e)) + ":" + std::string(rest);
    };
    CHECK(lex("a 'x") == V{"word:a", err(LexError::unterminated_string, "'x")});
    CHECK(lex("a \"x\\\"") == V{"word:a", err(LexError::unterminated_string, "\"x\\\"")});
    CHECK(lex("a `x") == V{"word:a", err(LexError::unterminated_identifier, "`x")});
    CHECK(lex("a /* x") == V{"word:a", err(LexError::unterminated_comment, "/* x")});
    CHECK(lex("a X'41") == V{"word:a", err(LexError::unterminated_string, "X'41")});
    CHECK(lex("@'x") == V{err(LexError::unterminated_string, "@'x")});
    CHECK(lex("/*!40101 a") == V{"word:a", err(LexError::unterminated_comment, "")});
    CHECK(lex("/*!40101 '*/' */") == V{err(LexError::ambiguous_versioned_comment, "'*/' */")});
    CHECK(lex("/*! # */\n*/") == V{err(LexError::ambiguous_versioned_comment, "# */\n*/")});
    CHECK(lex("/*! /* c */ */") == V{err(LexError::ambiguous_versioned_comment, "/* c */ */")});
    CHECK(lex("/*! /*! */ */") == V{err(LexError::nested_versioned_comment, "/*! */ */")});
    CHECK(lex("'\\") == V{err(LexError::unterminated_string, "'\\")});
}

TEST_CASE("sql_mode flags change strings and names", "[router][lexer]") {
    const SqlMode nbe{.no_backslash_escapes = true, .ansi_quotes = false};
    CHECK(lex("'a\\' b", nbe) == V{"str:'a\\'", "word:b"});
    const SqlMode ansi{.no_backslash_escapes = false, .ansi_quotes = true};
    CHECK(lex("\"a\\\" 'b'", ansi) == V{"qid:\"a\\\"", "str:'b'"});
    CHECK(lex("_latin1\"x\"", ansi) == V{"word:_latin1", "qid:\"x\""});
}

TEST_CASE("any byte at all lexes to something, and embedded NULs are bytes", "[router][lexer]") {
    std::string all;
    for (int c = 0; c < 256; ++c)
        all.push_back(static_cast<char>(c));
    // Nothing to compare against: this must simply end.
    Lexer lx(all);
    int n = 0;
    while (lx.next().kind != TokenKind::end && n < 100000)
        ++n;
    CHECK(n < 100000);
    CHECK(lex("a\0b"sv) == V{"word:a", std::string("op:\0", 4), "word:b"});
}

TEST_CASE("a lexer state can be saved and restored", "[router][lexer]") {
    Lexer lx("a (1, 2) b");
    CHECK(lx.next().text == "a");
    CHECK(lx.next().text == "(");
    const auto st = lx.save();
    CHECK(lx.next().text == "1");
    CHECK(lx.next().text == ",");
    lx.restore(st);
    CHECK(lx.next().text == "1");
}

TEST_CASE("unquoting resolves doubled quotes and escapes", "[router][lexer]") {
    const auto unq = [](std::string_view q, bool esc = true) {
        std::string s;
        append_unquoted(q, esc, s);
        return s;
    };
    CHECK(unq("`a``b`") == "a`b");
    CHECK(unq("'it''s'") == "it's");
    CHECK(unq("'a\\'b\\n'") == "a'b\n");
    CHECK(unq("'a\\%'") == "a\\%");
    CHECK(unq("'a\\'b'", false) == "a\\'b");
    CHECK(unq("N'x'") == "x");
    CHECK(unq("@'v'") == "v");
    CHECK(unq("`c\\`") == "c\\");
}
