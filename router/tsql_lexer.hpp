#pragma once
// T-SQL lexer: views into the caller's text, no allocation, one pass, never reads past the
// end. Private to sluice_router.

#include <cstdint>
#include <string_view>

namespace sluice::router::tsql::detail {

enum class TokenKind : std::uint8_t {
    end,          ///< no more tokens
    word,         ///< keyword or bare identifier (letters, digits, _, $, @ and # inside)
    temp_table,   ///< #t (local temporary table) or ##t (global)
    quoted_ident, ///< [a]]b] or "a""b", delimiters included
    string,       ///< '...' or N'...', prefix and quotes included
    number,       ///< 12, 1.5, .5, 1e10, 0xFF, $12.50
    variable,     ///< @v
    sys_var,      ///< @@x
    op,           ///< operators and punctuation; any other byte
    comment,      ///< -- ... or /* ... */ (nested)
    error,        ///< unterminated string, identifier or comment; `end` follows
};

struct Token {
    TokenKind kind = TokenKind::end;
    std::string_view text;

    bool is_op(char c) const noexcept {
        return kind == TokenKind::op && text.size() == 1 && text[0] == c;
    }
    /// Case-insensitive comparison of a word with an upper-case keyword.
    bool is(std::string_view upper) const noexcept;
};

class Lexer {
public:
    explicit Lexer(std::string_view sql) noexcept : s_(sql) {}
    Token next() noexcept;

private:
    std::string_view s_;
    std::size_t pos_ = 0;
    bool done_ = false;
};

/// Upper-case ASCII comparison of `a` with the upper-case `upper`.
bool iequals(std::string_view a, std::string_view upper) noexcept;

} // namespace sluice::router::tsql::detail
