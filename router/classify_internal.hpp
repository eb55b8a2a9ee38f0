#pragma once
// The classifier behind classify(): its state and the readers it is made of, shared by
// classify.cpp (driver and token scan), classify_statement.cpp (statement heads) and
// classify_set.cpp (SET). Private to sluice_router.

#include "keywords.hpp"
#include "lexer.hpp"
#include "sluice/router/classify.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::router::detail {

enum class Scope : std::uint8_t { session, global };

/// One pass over the tokens: a small recursive-descent reader for each statement's head,
/// with every token also going through a scanner for the flags that can appear anywhere.
class Classifier {
public:
    Classifier(std::string_view sql, SqlMode mode, Classification& out) noexcept
        : lex_(sql, mode), mode_(mode), out_(out) {}

    void run();

private:
    struct Value {
        int tokens = 0;
        bool constant = false;
        Token first;
        Token second;
        std::uint8_t first_attrs = 0;
    };

    void advance() noexcept;
    void scan() noexcept;
    bool at_end() const noexcept {
        return tok_.kind == TokenKind::end || tok_.kind == TokenKind::error ||
               (tok_.is_op(';') && !compound_);
    }
    void drain() noexcept {
        while (!at_end())
            advance();
    }
    bool is_name() const noexcept {
        return tok_.kind == TokenKind::word || tok_.kind == TokenKind::quoted_ident;
    }
    void skip_group() noexcept;

    StatementClass statement();
    StatementClass query_in_parens();
    StatementClass with_query();
    StatementClass main_verb();
    StatementClass show();
    bool names_catalog() const noexcept;
    StatementClass explain();
    StatementClass analyze();
    StatementClass explained(bool runs, bool table_name_ok);
    StatementClass handler();
    StatementClass create_or_alter(bool create);
    StatementClass drop();
    StatementClass transaction_start();
    StatementClass transaction_end(StatementClass base);
    StatementClass xa();
    StatementClass use();
    StatementClass flush();
    StatementClass backup();
    StatementClass set();
    StatementClass set_transaction(bool explicit_scope, Scope scope);
    StatementClass set_statement_for();
    bool set_item(Scope running);
    Value collect_value(int base_depth, std::string& text);
    void push_change(SessionChange::Kind kind, std::string name, std::string text, bool constant,
                     bool value_bool = false);

    detail::Lexer lex_;
    SqlMode mode_;
    Classification& out_;

    Token tok_;                   // the current code token
    Kw kw_ = Kw::none;            // its keyword, if a word
    std::uint8_t attrs_ = 0;      // its attributes, if a known word
    bool after_dot_ = false;      // it follows a `.` (qualified name part)
    Kw prev_kw_[3] = {};          // keywords of the three tokens before it (none if not)
    std::uint8_t prev_attrs_ = 0; // attributes of the token before it, if a word
    bool prev_word_ = false;      // the token before it is a word...
    bool prev_after_dot_ = false; // ...that followed a `.`
    bool seen_code_ = false;      // a code token came: later comments are not hints
    bool error_ = false;

    // Per statement.
    int depth_ = 0;         // parenthesis depth
    bool compound_ = false; // stored-program body: `;` does not end the statement
    bool saw_into_ = false;
    bool saw_var_ = false;        // a user variable that is not a SET target
    bool var_after_into_ = false; // ... after INTO
    bool var_out_args_ = false;   // CALL / GET DIAGNOSTICS: its variables may be assigned
    bool var_read_ = false;       // the current token is such a variable
    bool prev_var_ = false;       // the token before it was
    bool suppress_var_ = false;   // the next token is a SET target, not a read of it
    bool skip_lock_ = false;      // the next word names a sequence (NEXT VALUE FOR share)
    bool word_is_ = false;        // the token before is the word IS
    bool pending_global_ = false;
    Token pending_use_;
    int nesting_ = 0; // SET STATEMENT ... FOR recursion
};

} // namespace sluice::router::detail
