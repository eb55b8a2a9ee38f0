#pragma once
// MySQL/MariaDB lexer: views into the caller's text, no allocation, one pass, never reads
// past the end. Private to sluice_router.

#include "sluice/router/classify.hpp"

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
    std::string_view text; ///< into the lexed text; empty for end

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
    TokenKind prev_kind_ = TokenKind::end;                 ///< kind of the last code token
    bool in_versioned_ = false; ///< inside /*! ... */: its closing */ is skipped
    bool sep_dot_ = false;      ///< the last token was the `.` of a qualified name
    bool done_ = false;
};

/// ASCII-only character classes, as the server's lexer uses them for the syntax it cares
/// about; every byte >= 0x80 counts as part of an identifier.
constexpr bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_word_char(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
           u == '_' || u == '$' || u >= 0x80;
}
constexpr char to_upper(char c) noexcept {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}
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
