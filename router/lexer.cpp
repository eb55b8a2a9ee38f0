#include "lexer.hpp"

namespace sluice::router::detail {

namespace {
constexpr std::size_t npos = static_cast<std::size_t>(-1);

constexpr bool is_cntrl(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}
} // namespace

Token Lexer::make(TokenKind kind, std::size_t begin) noexcept {
    Token t;
    t.kind = kind;
    t.text = s_.substr(begin, pos_ - begin);
    if (kind != TokenKind::comment) {
        prev_end_ = pos_;
        prev_kind_ = kind;
        sep_dot_ = false;
    }
    return t;
}

Token Lexer::fail(LexError e, std::size_t begin) noexcept {
    done_ = true;
    pos_ = s_.size();
    Token t;
    t.kind = TokenKind::error;
    t.error = e;
    t.text = s_.substr(begin < s_.size() ? begin : s_.size());
    return t;
}

bool Lexer::word_before_adjacent(std::size_t pos) const noexcept {
    return prev_end_ == pos &&
           (prev_kind_ == TokenKind::word || prev_kind_ == TokenKind::quoted_ident);
}

Token Lexer::lex_quoted(std::size_t begin, std::size_t open, TokenKind kind) noexcept {
    const char q = s_[open];
    // Backslash escapes apply to strings (and @'...' names), never to `identifiers`.
    const bool escapes = q != '`' && kind != TokenKind::quoted_ident && !mode_.no_backslash_escapes;
    std::size_t i = open + 1;
    while (i < s_.size()) {
        const char ch = s_[i];
        if (ch == '\\' && escapes) {
            i += 2;
            continue;
        }
        if (ch == q) {
            if (i + 1 < s_.size() && s_[i + 1] == q) {
                i += 2;
                continue;
            }
            pos_ = i + 1;
            if (in_versioned_ &&
                s_.substr(begin, pos_ - begin).find("*/") != std::string_view::npos)
                return fail(LexError::ambiguous_versioned_comment, begin);
            return make(kind, begin);
        }
        ++i;
    }
    return fail(q == '`' || kind == TokenKind::quoted_ident ? LexError::unterminated_identifier
                                                            : LexError::unterminated_string,
                begin);
}

Token Lexer::lex_word(std::size_t begin) noexcept {
    std::size_t e = begin;
    std::uint32_t h = keyword_hash_basis;
    while (e < s_.size() && is_word_char(s_[e]))
        h = keyword_hash_step(h, s_[e++]);
    const char next = at(e);
    if (next == '\'' || (next == '"' && !mode_.ansi_quotes)) {
        const std::size_t len = e - begin;
        const char c0 = s_[begin];
        if (len == 1 && next == '\'' && (c0 == 'X' || c0 == 'x' || c0 == 'B' || c0 == 'b')) {
            // X'4142' / B'0101': no escapes inside.
            const std::size_t close = s_.find('\'', e + 1);
            if (close == std::string_view::npos) return fail(LexError::unterminated_string, begin);
            pos_ = close + 1;
            if (in_versioned_ &&
                s_.substr(begin, pos_ - begin).find("*/") != std::string_view::npos)
                return fail(LexError::ambiguous_versioned_comment, begin);
            return make(TokenKind::number, begin);
        }
        if ((len == 1 && next == '\'' && (c0 == 'N' || c0 == 'n')) || (len > 1 && c0 == '_'))
            return lex_quoted(begin, e, TokenKind::string); // N'..', _utf8mb4'..'
    }
    pos_ = e;
    Token t = make(TokenKind::word, begin);
    t.hash = h;
    return t;
}

Token Lexer::lex_number_or_word(std::size_t begin) noexcept {
    std::size_t i = begin;
    // 0x41 and 0b01 (lower-case x and b only); 0x4G or 0X41 are identifiers.
    if (s_[i] == '0' && (at(i + 1) == 'x' || at(i + 1) == 'b')) {
        const bool hex = at(i + 1) == 'x';
        std::size_t j = i + 2;
        while (j < s_.size() && (hex ? is_hex(s_[j]) : (s_[j] == '0' || s_[j] == '1')))
            ++j;
        if (j > i + 2 && !is_word_char(at(j))) {
            pos_ = j;
            return make(TokenKind::number, begin);
        }
        return lex_word(begin);
    }
    while (i < s_.size() && is_digit(s_[i]))
        ++i;
    bool real = false;
    if (at(i) == '.') {
        real = true;
        ++i;
        while (i < s_.size() && is_digit(s_[i]))
            ++i;
    }
    if (at(i) == 'e' || at(i) == 'E') {
        std::size_t j = i + 1;
        if (at(j) == '+' || at(j) == '-') ++j;
        if (is_digit(at(j))) {
            while (j < s_.size() && is_digit(s_[j]))
                ++j;
            pos_ = j;
            return make(TokenKind::number, begin);
        }
    }
    // Digits running into letters make an identifier (`1abc`), as in the server.
    if (!real && is_word_char(at(i))) return lex_word(begin);
    pos_ = i;
    return make(TokenKind::number, begin);
}

Token Lexer::lex_variable(std::size_t begin) noexcept {
    // 'user'@'host', `user`@localhost: the @ of an account name.
    if (prev_end_ == begin && (prev_kind_ == TokenKind::word || prev_kind_ == TokenKind::string ||
                               prev_kind_ == TokenKind::quoted_ident)) {
        pos_ = begin + 1;
        return make(TokenKind::op, begin);
    }
    if (at(begin + 1) == '@') {
        std::size_t i = begin + 2;
        const std::size_t name = i;
        while (i < s_.size() && is_word_char(s_[i]))
            ++i;
        if (i == name) {
            pos_ = begin + 1;
            return make(TokenKind::op, begin);
        }
        if (at(i) == '.' && is_word_char(at(i + 1))) { // @@session.x
            ++i;
            while (i < s_.size() && is_word_char(s_[i]))
                ++i;
        }
        pos_ = i;
        return make(TokenKind::sys_var, begin);
    }
    const char q = at(begin + 1);
    if (q == '\'' || q == '"' || q == '`') return lex_quoted(begin, begin + 1, TokenKind::user_var);
    std::size_t i = begin + 1;
    while (i < s_.size() && (is_word_char(s_[i]) || s_[i] == '.'))
        ++i;
    pos_ = i;
    return make(i == begin + 1 ? TokenKind::op : TokenKind::user_var, begin);
}

Token Lexer::lex_line_comment(std::size_t begin) noexcept {
    std::size_t i = begin;
    while (i < s_.size() && s_[i] != '\n')
        ++i;
    pos_ = i;
    if (in_versioned_ && s_.substr(begin, i - begin).find("*/") != std::string_view::npos)
        return fail(LexError::ambiguous_versioned_comment, begin);
    return make(TokenKind::comment, begin);
}

Token Lexer::lex_block_comment(std::size_t begin) noexcept {
    const std::size_t close = s_.find("*/", begin + 2);
    if (close == std::string_view::npos) return fail(LexError::unterminated_comment, begin);
    // Its */ would end a versioned comment around it on a server that skips that one.
    if (in_versioned_) return fail(LexError::ambiguous_versioned_comment, begin);
    pos_ = close + 2;
    return make(TokenKind::comment, begin);
}

Token Lexer::next() noexcept {
    if (done_) return {};
    const std::size_t n = s_.size();
    for (;;) {
        while (pos_ < n && is_space(s_[pos_]))
            ++pos_;
        if (pos_ >= n) {
            done_ = true;
            if (in_versioned_) return fail(LexError::unterminated_comment, n);
            return {};
        }
        const std::size_t b = pos_;
        const char c = s_[b];
        switch (c) {
        case '#':
            return lex_line_comment(b);
        case '-':
            // "--" starts a comment only before whitespace, a control character or the end.
            if (at(b + 1) == '-' && (b + 2 >= n || is_space(s_[b + 2]) || is_cntrl(s_[b + 2])))
                return lex_line_comment(b);
            pos_ = b + 1;
            if (at(b + 1) == '>') pos_ = at(b + 2) == '>' ? b + 3 : b + 2; // -> ->>
            return make(TokenKind::op, b);
        case '/':
            if (at(b + 1) == '*') {
                const char k = at(b + 2);
                if (k == '!' || (k == 'M' && at(b + 3) == '!')) {
                    if (in_versioned_) return fail(LexError::nested_versioned_comment, b);
                    std::size_t p = b + (k == '!' ? 3 : 4);
                    // A version has 5 digits (MySQL) or 6 (MariaDB takes the sixth if present).
                    std::size_t digits = 0;
                    while (digits < 6 && is_digit(at(p + digits)))
                        ++digits;
                    if (digits >= 5) p += digits;
                    pos_ = p;
                    in_versioned_ = true;
                    prev_end_ = npos;
                    sep_dot_ = false;
                    continue;
                }
                return lex_block_comment(b);
            }
            pos_ = b + 1;
            return make(TokenKind::op, b);
        case '*':
            if (in_versioned_ && at(b + 1) == '/') {
                pos_ = b + 2;
                in_versioned_ = false;
                prev_end_ = npos;
                sep_dot_ = false;
                continue;
            }
            pos_ = b + 1;
            return make(TokenKind::op, b);
        case '\'':
            return lex_quoted(b, b, TokenKind::string);
        case '"':
            return lex_quoted(b, b,
                              mode_.ansi_quotes ? TokenKind::quoted_ident : TokenKind::string);
        case '`':
            return lex_quoted(b, b, TokenKind::quoted_ident);
        case '@':
            return lex_variable(b);
        case '?':
            pos_ = b + 1;
            return make(TokenKind::placeholder, b);
        case '.': {
            const bool qualifier = word_before_adjacent(b);
            if (!qualifier && is_digit(at(b + 1))) return lex_number_or_word(b); // .5
            pos_ = b + 1;
            Token t = make(TokenKind::op, b);
            // t.1a: after the dot of a qualified name comes an identifier, digits or not.
            sep_dot_ = qualifier && is_word_char(at(b + 1));
            return t;
        }
        case '<':
            pos_ = b + 1;
            if (at(b + 1) == '=')
                pos_ = at(b + 2) == '>' ? b + 3 : b + 2; // <= <=>
            else if (at(b + 1) == '>' || at(b + 1) == '<')
                pos_ = b + 2; // <> <<
            return make(TokenKind::op, b);
        case '>':
            pos_ = (at(b + 1) == '=' || at(b + 1) == '>') ? b + 2 : b + 1; // >= >>
            return make(TokenKind::op, b);
        case '!':
            pos_ = at(b + 1) == '=' ? b + 2 : b + 1; // !=
            return make(TokenKind::op, b);
        case ':':
            pos_ = at(b + 1) == '=' ? b + 2 : b + 1; // :=
            return make(TokenKind::op, b);
        case '&':
        case '|':
            pos_ = at(b + 1) == c ? b + 2 : b + 1; // && ||
            return make(TokenKind::op, b);
        default:
            if (is_digit(c)) return sep_dot_ ? lex_word(b) : lex_number_or_word(b);
            if (is_word_char(c)) return lex_word(b);
            pos_ = b + 1;
            return make(TokenKind::op, b);
        }
    }
}

void append_unquoted(std::string_view quoted, bool backslash_escapes, std::string& out) {
    std::size_t open = 0;
    while (open < quoted.size() && quoted[open] != '\'' && quoted[open] != '"' &&
           quoted[open] != '`')
        ++open;
    if (open + 1 >= quoted.size()) return;
    const char q = quoted[open];
    const bool escapes = backslash_escapes && q != '`';
    const std::size_t last = quoted.size() - 1; // the closing quote
    for (std::size_t i = open + 1; i < last; ++i) {
        const char ch = quoted[i];
        if (ch == q && i + 1 < last && quoted[i + 1] == q) {
            out.push_back(q);
            ++i;
        } else if (ch == '\\' && escapes && i + 1 < last) {
            const char e = quoted[++i];
            switch (e) {
            case '0':
                out.push_back('\0');
                break;
            case 'n':
                out.push_back('\n');
                break;
            case 't':
                out.push_back('\t');
                break;
            case 'r':
                out.push_back('\r');
                break;
            case 'b':
                out.push_back('\b');
                break;
            case 'Z':
                out.push_back('\x1a');
                break;
            case '%':
            case '_': // kept with their backslash, as the server does
                out.push_back('\\');
                out.push_back(e);
                break;
            default:
                out.push_back(e);
                break;
            }
        } else {
            out.push_back(ch);
        }
    }
}

} // namespace sluice::router::detail
