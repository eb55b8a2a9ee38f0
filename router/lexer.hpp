#pragma once
// MySQL/MariaDB lexer: views into the caller's text, no allocation, one pass, never reads
// past the end. Private to sluice_router.

#include "sluice/router/classify.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::router::detail {

enum class TokenKind : std::uint8_t {
    end,          ///< no more tokens
    word,         ///< keyword or bare identifier (also `1abc`, `0xZZ`)
    quoted_ident, ///< `a``b` (and "x" under ANSI_QUOTES), quotes included
    string,       ///< '...', "...", N'...', _charset'...' (prefix and quotes included)
    number,       ///< 12, 1.5, .5, 1e10, 0xFF, X'FF', 0b101, B'101'
    placeholder,  ///< ?
    user_var,     ///< @a, @`a b`, @'a', @"a" (the @ included)
    sys_var,      ///< @@x, @@session.x, @@global.x
    op,           ///< operators and punctuation: ( ) , ; . = := <=> ... and any other byte
    comment,      ///< #..., -- ..., /* ... */, /*+ ... */ (not versioned comments: those are code)
    error,        ///< the text cannot be lexed further (see LexError); `end` follows
};

enum class LexError : std::uint8_t {
    none,
    unterminated_string,
    unterminated_identifier,
    unterminated_comment,
    /// Inside a versioned comment, a string, identifier or comment contains `*/`: a server
    /// that skips the versioned comment (its version is newer) ends it there, one that runs
    /// it does not, so the two would see different statements.
    ambiguous_versioned_comment,
    /// A versioned comment opened inside another one.
    nested_versioned_comment,
};

struct Token {
    TokenKind kind = TokenKind::end;
    LexError error = LexError::none;
    std::uint32_t hash = 0; ///< words only: keyword_hash() of the text, for lookup_keyword()
    std::string_view text;  ///< into the lexed text; empty for end

    bool is_op(char c) const noexcept {
        return kind == TokenKind::op && text.size() == 1 && text[0] == c;
    }
    const char* end_ptr() const noexcept { return text.data() + text.size(); }
};

/// Pull lexer. `next()` returns comments too; callers skip what they do not need.
class Lexer {
public:
    explicit Lexer(std::string_view sql, SqlMode mode = {}) noexcept : s_(sql), mode_(mode) {}

    Token next() noexcept;

    /// Where the lexer stands, to look ahead and come back.
    struct State {
        std::size_t pos;
        std::size_t prev_end;
        TokenKind prev_kind;
        bool in_versioned;
        bool sep_dot;
        bool done;
    };
    State save() const noexcept {
        return {pos_, prev_end_, prev_kind_, in_versioned_, sep_dot_, done_};
    }
    void restore(const State& st) noexcept {
        pos_ = st.pos;
        prev_end_ = st.prev_end;
        prev_kind_ = st.prev_kind;
        in_versioned_ = st.in_versioned;
        sep_dot_ = st.sep_dot;
        done_ = st.done;
    }

private:
    Token make(TokenKind kind, std::size_t begin) noexcept;
    Token fail(LexError e, std::size_t begin) noexcept;
    Token lex_quoted(std::size_t begin, std::size_t open, TokenKind kind) noexcept;
    Token lex_number_or_word(std::size_t begin) noexcept;
    Token lex_word(std::size_t begin) noexcept;
    Token lex_variable(std::size_t begin) noexcept;
    Token lex_block_comment(std::size_t begin) noexcept;
    Token lex_line_comment(std::size_t begin) noexcept;
    bool word_before_adjacent(std::size_t at) const noexcept;
    char at(std::size_t i) const noexcept { return i < s_.size() ? s_[i] : '\0'; }

    std::string_view s_;
    SqlMode mode_;
    std::size_t pos_ = 0;
    std::size_t prev_end_ = static_cast<std::size_t>(-1); ///< end of the last code token
    TokenKind prev_kind_ = TokenKind::end;                ///< kind of the last code token
    bool in_versioned_ = false; ///< inside /*! ... */: its closing */ is skipped
    bool sep_dot_ = false;      ///< the last token was the `.` of a qualified name
    bool done_ = false;
};

/// ASCII-only character classes, as the server's lexer uses them for the syntax it cares
/// about; every byte >= 0x80 counts as part of an identifier.
namespace cclass {
constexpr std::uint8_t space = 1, digit = 2, word = 4, hex = 8;
constexpr std::array<std::uint8_t, 256> table = [] {
    std::array<std::uint8_t, 256> t{};
    for (int c : {' ', '\t', '\n', '\r', '\v', '\f'})
        t[static_cast<unsigned char>(c)] |= space;
    for (int c = '0'; c <= '9'; ++c)
        t[c] |= digit | word | hex;
    for (int c = 'a'; c <= 'z'; ++c)
        t[c] |= word;
    for (int c = 'A'; c <= 'Z'; ++c)
        t[c] |= word;
    for (int c = 'a'; c <= 'f'; ++c)
        t[c] |= hex;
    for (int c = 'A'; c <= 'F'; ++c)
        t[c] |= hex;
    t['_'] |= word;
    t['$'] |= word;
    for (int c = 0x80; c < 0x100; ++c)
        t[c] |= word;
    return t;
}();
constexpr bool is(char c, std::uint8_t cls) noexcept {
    return (table[static_cast<unsigned char>(c)] & cls) != 0;
}
} // namespace cclass

/// ASCII upper case of a byte; other bytes unchanged.
constexpr std::array<char, 256> upper_table = [] {
    std::array<char, 256> t{};
    for (int c = 0; c < 256; ++c)
        t[c] = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    return t;
}();

/// FNV-1a over the upper-cased bytes: how words find their keyword entry.
constexpr std::uint32_t keyword_hash_basis = 2166136261u;
constexpr std::uint32_t keyword_hash_step(std::uint32_t h, char c) noexcept {
    return (h ^ static_cast<unsigned char>(upper_table[static_cast<unsigned char>(c)])) * 16777619u;
}
constexpr std::uint32_t keyword_hash(std::string_view w) noexcept {
    std::uint32_t h = keyword_hash_basis;
    for (char c : w)
        h = keyword_hash_step(h, c);
    return h;
}

constexpr bool is_space(char c) noexcept { return cclass::is(c, cclass::space); }
constexpr bool is_digit(char c) noexcept { return cclass::is(c, cclass::digit); }
constexpr bool is_word_char(char c) noexcept { return cclass::is(c, cclass::word); }
constexpr bool is_hex(char c) noexcept { return cclass::is(c, cclass::hex); }
constexpr char to_upper(char c) noexcept { return upper_table[static_cast<unsigned char>(c)]; }
constexpr char to_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
/// Case-insensitive comparison with an upper-case ASCII literal.
constexpr bool iequals(std::string_view text, std::string_view upper) noexcept {
    if (text.size() != upper.size()) return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (to_upper(text[i]) != upper[i]) return false;
    }
    return true;
}

/// The contents of a quoted token ('..', "..", `..`, N'..', @'..'), with doubled quotes and
/// backslash escapes resolved. Appends to `out`.
void append_unquoted(std::string_view quoted, bool backslash_escapes, std::string& out);

} // namespace sluice::router::detail
