#include "keywords.hpp"
#include "lexer.hpp"
#include "sluice/router/classify.hpp"

#include <xxhash.h>

namespace sluice::router {

namespace {

using detail::Kw;
using detail::Token;
using detail::TokenKind;
namespace attr = detail::attr;

constexpr std::size_t npos = static_cast<std::size_t>(-1);

/// What the digest wrote last: decides the spacing and whether a `-` is unary.
enum class Last : std::uint8_t {
    none,      // nothing yet
    open,      // (
    close,     // )
    comma,     // ,
    dot,       // .
    semicolon, // ;
    op,        // a binary operator
    unary,     // a unary operator: + - ! ~
    keyword,   // an upper-cased keyword that does not end an operand (SELECT, AND, IN)
    value,     // a keyword that ends an operand (NULL, TRUE, CURRENT_DATE, END)
    name,      // identifier, function name before its `(`, @variable
    literal,   // ?
};

/// What is about to be written, for the spacing rule.
enum class Next : std::uint8_t { operand, open, close, comma, dot, op };

class DigestWriter {
public:
    DigestWriter(std::string_view sql, SqlMode mode) : lex_(sql, mode) {
        out_.reserve(sql.size() + 16);
    }

    std::string run();

private:
    struct Context {
        Last last;
        Kw last_kw;
        bool dot_after_name;
        bool last_var;
    };

    Token code() noexcept {
        Token t = lex_.next();
        while (t.kind == TokenKind::comment)
            t = lex_.next();
        return t;
    }
    void begin_token();
    void separate(Next n, char first);
    void write_upper(std::string_view s);
    void emit_word();
    void emit_literal(bool is_string);
    void emit_op();
    bool name_position() const noexcept;
    bool try_in_list();
    bool in_list_element(Token& t) noexcept;

    detail::Lexer lex_;
    std::string out_;
    Token cur_;
    Token next_;
    Last last_ = Last::none;
    Kw last_kw_ = Kw::none;       // the keyword written last, if last_ is keyword or value
    bool dot_after_name_ = false; // last_ is a dot that qualifies the name before it
    bool last_var_ = false;       // the name written last is an @variable
    bool last_string_ = false;    // the ? written last was a string
    bool pending_semicolon_ = false;
    std::size_t chain_start_ = npos; // where a run of unary + / - began
    Context before_chain_{};
};

// A `;` is written only once something follows it: trailing and repeated ones vanish.
void DigestWriter::begin_token() {
    if (pending_semicolon_) {
        pending_semicolon_ = false;
        if (!out_.empty()) {
            out_.push_back(';');
            last_ = Last::semicolon;
            chain_start_ = npos;
        }
    }
}

void DigestWriter::separate(Next n, char first) {
    bool space = true;
    switch (last_) {
    case Last::none:
        return;
    case Last::open:
        space = false;
        break;
    case Last::dot:
        // `.1a` after anything but a name would lex as the number .1.
        space = detail::is_digit(first) && !dot_after_name_;
        break;
    case Last::unary:
        space = n == Next::op; // `- -x`: never `--`, and never `!=` from `! =`
        break;
    default:
        space = !(n == Next::open && last_ == Last::name);
        break;
    }
    if (n == Next::close || n == Next::comma) space = false;
    // `@a.b` and `@.b` would lex as one variable.
    if (n == Next::dot) space = last_var_ || (last_ == Last::op && out_.back() == '@');
    if (space) out_.push_back(' ');
}

void DigestWriter::write_upper(std::string_view s) {
    for (char c : s)
        out_.push_back(detail::to_upper(c));
}

// Words that name a table, view or routine when they follow these keywords.
bool DigestWriter::name_position() const noexcept {
    if (last_ != Last::keyword) return false;
    switch (last_kw_) {
    case Kw::into:
    case Kw::from:
    case Kw::join:
    case Kw::table:
    case Kw::update:
    case Kw::references:
    case Kw::exists:
    case Kw::view:
    case Kw::procedure:
    case Kw::function:
    case Kw::trigger:
    case Kw::index:
    case Kw::key:
    case Kw::insert:
    case Kw::replace:
    case Kw::use:
    case Kw::describe:
    case Kw::desc:
        return true;
    default:
        return false;
    }
}

void DigestWriter::emit_word() {
    const std::string_view text = cur_.text;
    const detail::KeywordInfo* k = detail::lookup_keyword(text, cur_.hash);
    const bool qualified = last_ == Last::dot || next_.is_op('.');
    const bool call = next_.is_op('(');
    chain_start_ = npos;
    enum class As : std::uint8_t { name, called, keyword } as = As::name;
    if (k != nullptr && !qualified) {
        const bool callable = call && (k->attrs & attr::func);
        if (k->attrs & attr::reserved) {
            as = callable ? As::called : As::keyword;
        } else if (name_position()) {
            as = As::name;
        } else if (callable) {
            as = As::called;
        } else if (k->attrs & attr::upper) {
            as = As::keyword;
        }
    }
    separate(Next::operand, text[0]);
    if (as == As::name) {
        out_.append(text);
        last_ = Last::name;
    } else {
        write_upper(text);
        last_ = as == As::called           ? Last::name
                : (k->attrs & attr::value) ? Last::value
                                           : Last::keyword;
        last_kw_ = k->kw;
    }
    last_var_ = false;
    if (as == As::keyword && k->kw == Kw::in && next_.is_op('(') && try_in_list()) {
        next_ = code(); // the token after the list's `)`
    }
}

void DigestWriter::emit_literal(bool is_string) {
    if (is_string && last_ == Last::literal && last_string_) return; // 'a' 'b' is one string
    if (chain_start_ != npos) {
        // -5, - -5, +?: the signs belong to the literal.
        out_.resize(chain_start_);
        last_ = before_chain_.last;
        last_kw_ = before_chain_.last_kw;
        dot_after_name_ = before_chain_.dot_after_name;
        last_var_ = before_chain_.last_var;
        chain_start_ = npos;
    }
    separate(Next::operand, '?');
    out_.push_back('?');
    last_ = Last::literal;
    last_string_ = is_string;
    last_var_ = false;
}

void DigestWriter::emit_op() {
    const std::string_view text = cur_.text;
    if (text.size() == 1) {
        switch (text[0]) {
        case '(':
            chain_start_ = npos;
            separate(Next::open, '(');
            out_.push_back('(');
            last_ = Last::open;
            last_var_ = false;
            return;
        case ')':
            chain_start_ = npos;
            separate(Next::close, ')');
            out_.push_back(')');
            last_ = Last::close;
            last_var_ = false;
            return;
        case ',':
            chain_start_ = npos;
            separate(Next::comma, ',');
            out_.push_back(',');
            last_ = Last::comma;
            last_var_ = false;
            return;
        case '.': {
            chain_start_ = npos;
            const bool after_name =
                last_ == Last::name || last_ == Last::keyword || last_ == Last::value;
            separate(Next::dot, '.');
            out_.push_back('.');
            dot_after_name_ = after_name && !last_var_;
            last_ = Last::dot;
            last_var_ = false;
            return;
        }
        case ';':
            pending_semicolon_ = true;
            return;
        case '-':
        case '+': {
            const bool unary = last_ == Last::none || last_ == Last::open || last_ == Last::comma ||
                               last_ == Last::semicolon || last_ == Last::op ||
                               last_ == Last::unary || last_ == Last::keyword;
            if (unary) {
                if (chain_start_ == npos) {
                    chain_start_ = out_.size();
                    before_chain_ = {last_, last_kw_, dot_after_name_, last_var_};
                }
                separate(Next::op, text[0]);
                out_.push_back(text[0]);
                last_ = Last::unary;
                last_var_ = false;
                return;
            }
            break;
        }
        case '!':
        case '~':
            chain_start_ = npos;
            separate(Next::op, text[0]);
            out_.push_back(text[0]);
            last_ = Last::unary;
            last_var_ = false;
            return;
        default:
            break;
        }
    }
    chain_start_ = npos;
    separate(Next::op, text[0]);
    out_.append(text);
    last_ = Last::op;
    last_var_ = false;
}

// One element of an IN list: [+|-]... literal, where adjacent strings are one literal,
// NULL / TRUE / FALSE count, and a parenthesized tuple of such elements is one too.
bool DigestWriter::in_list_element(Token& t) noexcept {
    while (t.is_op('-') || t.is_op('+'))
        t = code();
    if (t.kind == TokenKind::string) {
        do
            t = code();
        while (t.kind == TokenKind::string);
        return true;
    }
    if (t.kind == TokenKind::number || t.kind == TokenKind::placeholder) {
        t = code();
        return true;
    }
    if (t.kind == TokenKind::word) {
        const detail::KeywordInfo* k = detail::lookup_keyword(t.text, t.hash);
        if (k != nullptr && (k->kw == Kw::null_ || k->kw == Kw::true_ || k->kw == Kw::false_)) {
            t = code();
            return true;
        }
    }
    return false;
}

// After `IN (`: a list of literals becomes `(...)`. The lexer stands after the `(`; it is
// put back there if the list holds anything else.
bool DigestWriter::try_in_list() {
    const detail::Lexer::State start = lex_.save();
    Token t = code();
    for (;;) {
        if (t.is_op('(')) {
            t = code();
            bool ok = false;
            while (in_list_element(t)) {
                ok = t.is_op(')');
                if (!t.is_op(',')) break;
                t = code();
            }
            if (!ok) {
                lex_.restore(start);
                return false;
            }
            t = code();
        } else if (!in_list_element(t)) {
            lex_.restore(start);
            return false;
        }
        if (t.is_op(',')) {
            t = code();
            continue;
        }
        if (t.is_op(')')) break;
        lex_.restore(start);
        return false;
    }
    separate(Next::open, '(');
    out_.append("(...)");
    last_ = Last::close;
    return true;
}

std::string DigestWriter::run() {
    cur_ = code();
    next_ = code();
    while (cur_.kind != TokenKind::end) {
        if (cur_.kind == TokenKind::error) {
            begin_token();
            if (cur_.error == detail::LexError::unterminated_string) {
                emit_literal(true);
            } else if (cur_.error == detail::LexError::unterminated_identifier) {
                separate(Next::operand, '`');
                out_.append(cur_.text);
            }
            break;
        }
        if (!cur_.is_op(';')) begin_token();
        switch (cur_.kind) {
        case TokenKind::word:
            emit_word();
            break;
        case TokenKind::string:
            emit_literal(true);
            break;
        case TokenKind::number:
        case TokenKind::placeholder:
            emit_literal(false);
            break;
        case TokenKind::quoted_ident:
        case TokenKind::user_var:
        case TokenKind::sys_var:
            chain_start_ = npos;
            separate(Next::operand, cur_.text[0]);
            out_.append(cur_.text);
            last_ = Last::name;
            last_var_ = cur_.kind != TokenKind::quoted_ident;
            break;
        default:
            emit_op();
            break;
        }
        cur_ = next_;
        next_ = code();
    }
    return std::move(out_);
}

} // namespace

Digest digest(std::string_view sql, SqlMode mode) {
    Digest d;
    d.text = DigestWriter(sql, mode).run();
    d.hash = XXH3_64bits(d.text.data(), d.text.size());
    return d;
}

Digest digest(std::string_view sql) { return digest(sql, SqlMode{}); }

} // namespace sluice::router
