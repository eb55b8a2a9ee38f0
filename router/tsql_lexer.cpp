// T-SQL lexer (see tsql_lexer.hpp).
#include "tsql_lexer.hpp"

namespace sluice::router::tsql::detail {

namespace {

constexpr bool is_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
// Bytes of UTF-8 sequences (>= 0x80) count as letters, as SQL Server's Unicode letters do.
constexpr bool is_ident_start(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           static_cast<unsigned char>(c) >= 0x80;
}
constexpr bool is_ident_char(char c) noexcept {
    return is_ident_start(c) || is_digit(c) || c == '$' || c == '@' || c == '#';
}

} // namespace

bool iequals(std::string_view a, std::string_view upper) noexcept {
    if (a.size() != upper.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char c = a[i];
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        if (c != upper[i]) return false;
    }
    return true;
}

bool Token::is(std::string_view upper) const noexcept {
    return kind == TokenKind::word && iequals(text, upper);
}

Token Lexer::next() noexcept {
    const std::size_t n = s_.size();
    while (pos_ < n && is_space(s_[pos_]))
        ++pos_;
    if (done_ || pos_ >= n) return {};
    const std::size_t start = pos_;
    const char c = s_[pos_];
    auto make = [&](TokenKind k) { return Token{k, s_.substr(start, pos_ - start)}; };
    auto fail = [&] {
        done_ = true;
        return Token{TokenKind::error, s_.substr(start)};
    };
    // Comments: -- to the end of the line; /* */ nesting.
    if (c == '-' && pos_ + 1 < n && s_[pos_ + 1] == '-') {
        while (pos_ < n && s_[pos_] != '\n')
            ++pos_;
        return make(TokenKind::comment);
    }
    if (c == '/' && pos_ + 1 < n && s_[pos_ + 1] == '*') {
        int depth = 0;
        while (pos_ + 1 < n) {
            if (s_[pos_] == '/' && s_[pos_ + 1] == '*') {
                ++depth;
                pos_ += 2;
            } else if (s_[pos_] == '*' && s_[pos_ + 1] == '/') {
                pos_ += 2;
                if (--depth == 0) return make(TokenKind::comment);
            } else {
                ++pos_;
            }
        }
        return fail();
    }
    // Strings: '...' and N'...', the quote doubled inside.
    if (c == '\'' || ((c == 'N' || c == 'n') && pos_ + 1 < n && s_[pos_ + 1] == '\'')) {
        pos_ += c == '\'' ? 1 : 2;
        for (;;) {
            if (pos_ >= n) return fail();
            if (s_[pos_] == '\'') {
                if (pos_ + 1 < n && s_[pos_ + 1] == '\'') {
                    pos_ += 2;
                    continue;
                }
                ++pos_;
                return make(TokenKind::string);
            }
            ++pos_;
        }
    }
    // Delimited identifiers: [..]] ..] and "..""..".
    if (c == '[' || c == '"') {
        const char close = c == '[' ? ']' : '"';
        ++pos_;
        for (;;) {
            if (pos_ >= n) return fail();
            if (s_[pos_] == close) {
                if (pos_ + 1 < n && s_[pos_ + 1] == close) {
                    pos_ += 2;
                    continue;
                }
                ++pos_;
                return make(TokenKind::quoted_ident);
            }
            ++pos_;
        }
    }
    if (c == '@') {
        const bool sys = pos_ + 1 < n && s_[pos_ + 1] == '@';
        pos_ += sys ? 2 : 1;
        while (pos_ < n && is_ident_char(s_[pos_]))
            ++pos_;
        return make(sys ? TokenKind::sys_var : TokenKind::variable);
    }
    if (c == '#') {
        ++pos_;
        while (pos_ < n && is_ident_char(s_[pos_]))
            ++pos_;
        return make(TokenKind::temp_table);
    }
    if (is_digit(c) || (c == '.' && pos_ + 1 < n && is_digit(s_[pos_ + 1])) ||
        (c == '$' && pos_ + 1 < n && (is_digit(s_[pos_ + 1]) || s_[pos_ + 1] == '.'))) {
        if (c == '0' && pos_ + 1 < n && (s_[pos_ + 1] == 'x' || s_[pos_ + 1] == 'X')) {
            pos_ += 2;
            while (pos_ < n && (is_digit(s_[pos_]) || (s_[pos_] >= 'a' && s_[pos_] <= 'f') ||
                                (s_[pos_] >= 'A' && s_[pos_] <= 'F')))
                ++pos_;
            return make(TokenKind::number);
        }
        if (c == '$') ++pos_;
        while (pos_ < n && (is_digit(s_[pos_]) || s_[pos_] == '.'))
            ++pos_;
        if (pos_ < n && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            std::size_t p = pos_ + 1;
            if (p < n && (s_[p] == '+' || s_[p] == '-')) ++p;
            if (p < n && is_digit(s_[p])) {
                pos_ = p;
                while (pos_ < n && is_digit(s_[pos_]))
                    ++pos_;
            }
        }
        return make(TokenKind::number);
    }
    if (is_ident_start(c)) {
        while (pos_ < n && is_ident_char(s_[pos_]))
            ++pos_;
        return make(TokenKind::word);
    }
    // Two-byte operators that matter to nobody here still come as one token each way.
    ++pos_;
    if (pos_ < n && ((c == '<' && (s_[pos_] == '>' || s_[pos_] == '=')) ||
                     (c == '>' && s_[pos_] == '=') || (c == '!' && s_[pos_] == '=')))
        ++pos_;
    return make(TokenKind::op);
}

} // namespace sluice::router::tsql::detail
