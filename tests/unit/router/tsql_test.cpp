// The T-SQL classifier and dialect (issue #11): statements as SQL Server clients send them.

#include "sluice/router/tsql.hpp"

#include <catch2/catch.hpp>

using namespace sluice::router;
using C = StatementClass;

namespace {
Classification cl(std::string_view sql) { return tsql::classify(sql); }
} // namespace

TEST_CASE("T-SQL: reads, writes and DDL by their heads", "[router][tsql]") {
    CHECK(cl("SELECT 1").cls == C::read);
    CHECK(cl("select top (10) * from [dbo].[t] where a = N'x''y'").cls == C::read);
    CHECK(cl("WITH c AS (SELECT 1 AS a) SELECT a FROM c").cls == C::read);
    CHECK(cl("WITH c AS (SELECT 1 AS a) UPDATE t SET x = 1 FROM c").cls == C::write);
    CHECK(cl("(SELECT 1) UNION (SELECT 2)").cls == C::read);
    CHECK(cl("INSERT INTO t (a) VALUES (1)").cls == C::write);
    CHECK(cl("INSERT t SELECT a FROM u").cls == C::write);
    CHECK(cl("UPDATE t SET a = 1 WHERE b = 2").cls == C::write);
    CHECK(cl("DELETE FROM t").cls == C::write);
    CHECK(cl("MERGE t USING u ON t.a = u.a WHEN MATCHED THEN UPDATE SET b = 1 WHEN NOT "
             "MATCHED THEN INSERT (a) VALUES (u.a);")
              .cls == C::write);
    CHECK(cl("CREATE TABLE t (id INT IDENTITY(1,1) PRIMARY KEY)").cls == C::ddl);
    CHECK(cl("TRUNCATE TABLE t").cls == C::ddl);
    CHECK(cl("ALTER TABLE t DROP COLUMN a").cls == C::ddl);
    CHECK(cl("GRANT SELECT, INSERT ON t TO u").cls == C::ddl);
    CHECK(cl("CREATE PROCEDURE p AS SELECT 1 UPDATE t SET a = 1").cls == C::ddl);
    CHECK(cl("EXEC dbo.p @a = 1").cls == C::write);
    CHECK(cl("EXEC dbo.p @a = 1").flags.runs_hidden_statements);
    CHECK(cl("EXECUTE ('DELETE FROM t')").cls == C::write);
    CHECK(cl("KILL 53").cls == C::other);
    CHECK(cl("PRINT 'x'").cls == C::read);
    CHECK(cl("WAITFOR DELAY '00:00:01'").cls == C::read);
}

TEST_CASE("T-SQL: table variables are the batch's own", "[router][tsql]") {
    CHECK(cl("DECLARE @t TABLE (a int) INSERT INTO @t VALUES (1) SELECT a FROM @t").cls == C::read);
    CHECK(cl("UPDATE @t SET a = 2").cls == C::read);
    CHECK(cl("DELETE FROM @t").cls == C::read);
}

TEST_CASE("T-SQL: statements split without semicolons", "[router][tsql]") {
    auto c = cl("SELECT 1\nUPDATE t SET a = 1");
    CHECK(c.cls == C::write);
    CHECK(c.flags.multi_statement);
    CHECK_FALSE(cl("SELECT a FROM t UNION ALL SELECT b FROM u").flags.multi_statement);
    CHECK_FALSE(cl("SELECT CASE WHEN a = 1 THEN 2 ELSE 3 END FROM t").flags.multi_statement);
    CHECK_FALSE(cl("INSERT INTO t (a) SELECT a FROM u").flags.multi_statement);
    CHECK_FALSE(cl("INSERT INTO t EXEC p").flags.multi_statement);
    CHECK(cl("INSERT INTO t VALUES (1) SELECT 2").flags.multi_statement);
    CHECK_FALSE(cl("CREATE TABLE t (a int REFERENCES u ON DELETE CASCADE)").flags.multi_statement);
    // tedious's first batch after login
    auto init = cl("set textsize 2147483647\nset quoted_identifier on\nset arithabort off\n"
                   "set implicit_transactions off\nset language us_english\nset dateformat mdy\n"
                   "set datefirst 7\nset transaction isolation level read committed");
    CHECK(init.cls == C::session_set);
    REQUIRE(init.session_changes.size() == 8);
    CHECK(init.session_changes[0].name == "textsize");
    CHECK(init.session_changes[0].text == "TEXTSIZE 2147483647");
    CHECK(init.session_changes[3].kind == SessionChange::Kind::autocommit);
    CHECK(init.session_changes[3].value_bool);
    CHECK(init.session_changes[7].kind == SessionChange::Kind::transaction_isolation);
    CHECK(init.session_changes[7].text == "TRANSACTION ISOLATION LEVEL READ COMMITTED");
}

TEST_CASE("T-SQL: transactions", "[router][tsql]") {
    CHECK(cl("BEGIN TRAN").cls == C::begin);
    CHECK(cl("BEGIN TRANSACTION t1 WITH MARK 'm'").cls == C::begin);
    CHECK(cl("BEGIN DISTRIBUTED TRANSACTION").cls == C::begin);
    CHECK(cl("COMMIT").cls == C::commit);
    CHECK(cl("COMMIT TRAN t1").cls == C::commit);
    CHECK(cl("ROLLBACK TRANSACTION").cls == C::rollback);
    CHECK(cl("SAVE TRAN s1").cls == C::savepoint);
    CHECK(cl("IF @@TRANCOUNT > 0 COMMIT TRAN").cls == C::commit);
    CHECK(cl("IF @@TRANCOUNT > 0 ROLLBACK TRAN").cls == C::rollback);
    CHECK(cl("BEGIN TRAN UPDATE t SET a = 1 COMMIT").cls == C::commit);
    auto implicit = cl("SET IMPLICIT_TRANSACTIONS ON");
    REQUIRE(implicit.session_changes.size() == 1);
    CHECK(implicit.session_changes[0].kind == SessionChange::Kind::autocommit);
    CHECK_FALSE(implicit.session_changes[0].value_bool);
    // A block is not a transaction.
    CHECK(cl("BEGIN SELECT 1 END").cls == C::read);
    CHECK(cl("BEGIN TRY SELECT 1 END TRY BEGIN CATCH SELECT 2 END CATCH").cls == C::read);
    CHECK(cl("IF EXISTS (SELECT 1 FROM t) BEGIN UPDATE t SET a = 1 END ELSE SELECT 2").cls ==
          C::write);
}

TEST_CASE("T-SQL: what keeps a read on the primary", "[router][tsql]") {
    CHECK(cl("SELECT * FROM t WITH (UPDLOCK, ROWLOCK) WHERE a = 1").flags.locking_read);
    CHECK(cl("SELECT * FROM t WITH (HOLDLOCK)").flags.locking_read);
    CHECK_FALSE(cl("SELECT * FROM t WITH (NOLOCK)").flags.locking_read);
    CHECK_FALSE(cl("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").flags.locking_read);
    CHECK(cl("SELECT @@IDENTITY").flags.primary_function);
    CHECK(cl("SELECT SCOPE_IDENTITY()").flags.primary_function);
    CHECK(cl("SELECT IDENT_CURRENT('t')").flags.primary_function);
    CHECK(cl("SELECT @@ROWCOUNT").flags.reads_diagnostics);
    CHECK(cl("SELECT * FROM ##shared").flags.primary_function);
    CHECK(cl("SELECT NEXT VALUE FOR s").cls == C::write);
    CHECK(cl("SELECT name FROM sys.tables").flags.reads_catalog);
    CHECK(cl("SELECT * FROM INFORMATION_SCHEMA.TABLES").flags.reads_catalog);
    CHECK(cl("SELECT GETDATE()").flags.non_deterministic);
    CHECK_FALSE(cl("SELECT a FROM t WHERE b = 1").flags.non_deterministic);
    CHECK(cl("SELECT a FROM t WHERE b = @p").flags.reads_user_variable);
    CHECK_FALSE(cl("SELECT a FROM t WHERE b = @p").flags.non_deterministic);
}

TEST_CASE("T-SQL: temporary tables, cursors and SELECT INTO", "[router][tsql]") {
    auto mk = cl("CREATE TABLE #t (a int)");
    CHECK(mk.cls == C::ddl);
    CHECK(mk.flags.creates_temp_table);
    CHECK_FALSE(cl("CREATE TABLE ##g (a int)").flags.creates_temp_table);
    auto into = cl("SELECT a INTO #t FROM u");
    CHECK(into.cls == C::ddl);
    CHECK(into.flags.creates_temp_table);
    CHECK(into.flags.select_into);
    CHECK(cl("SELECT a INTO t2 FROM u").cls == C::ddl);
    CHECK(cl("DROP TABLE IF EXISTS #t").flags.drops_temp_table);
    CHECK_FALSE(cl("DROP TABLE t").flags.drops_temp_table);
    auto cur = cl("DECLARE c CURSOR FOR SELECT a FROM t OPEN c FETCH NEXT FROM c");
    CHECK(cur.flags.opens_handler);
    CHECK(cur.cls == C::read);
    CHECK(cl("DEALLOCATE c").flags.closes_handler);
}

TEST_CASE("T-SQL: SET options are session changes, variables are not", "[router][tsql]") {
    auto s = cl("SET ANSI_NULLS, QUOTED_IDENTIFIER ON");
    CHECK(s.cls == C::session_set);
    REQUIRE(s.session_changes.size() == 2);
    CHECK(s.session_changes[0].text == "ANSI_NULLS ON");
    CHECK(s.session_changes[1].text == "QUOTED_IDENTIFIER ON");
    auto lt = cl("SET LOCK_TIMEOUT -1");
    REQUIRE(lt.session_changes.size() == 1);
    CHECK(lt.session_changes[0].text == "LOCK_TIMEOUT -1");
    CHECK(lt.session_changes[0].value_is_constant);
    CHECK_FALSE(cl("SET ROWCOUNT @n").session_changes.at(0).value_is_constant);
    CHECK(cl("SET @x = (SELECT 1)").cls == C::read);
    CHECK(cl("SET @x = 1").session_changes.empty());
    auto ii = cl("SET IDENTITY_INSERT t ON");
    CHECK(ii.cls == C::other);
    CHECK(ii.flags.assigns_user_variable);
    auto use = cl("USE [my db]");
    CHECK(use.cls == C::use);
    CHECK(use.use_database == "my db");
}

TEST_CASE("T-SQL: sp_executesql with a literal is classified by its text", "[router][tsql]") {
    CHECK(cl("EXEC sp_executesql N'SELECT a FROM t WHERE b = @b', N'@b int', @b = 1").cls ==
          C::read);
    CHECK_FALSE(cl("EXEC sp_executesql N'SELECT 1'").flags.runs_hidden_statements);
    CHECK(cl("EXEC sys.sp_executesql N'DELETE FROM t'").cls == C::write);
    CHECK(cl("EXEC sp_executesql @sql").cls == C::write);
}

TEST_CASE("T-SQL: lexing", "[router][tsql]") {
    CHECK(cl("SELECT 'unterminated").flags.bad_syntax);
    CHECK(cl("SELECT [unterminated").flags.bad_syntax);
    CHECK(cl("SELECT 1 /* a /* nested */ still comment").flags.bad_syntax);
    CHECK(cl("SELECT 1 /* a /* nested */ b */").cls == C::read);
    CHECK(cl("SELECT 'a;UPDATE t SET a=1'").cls == C::read);
    CHECK(cl("SELECT [a]]UPDATE] FROM t").cls == C::read);
    CHECK(cl("SELECT 1 --UPDATE t\n").cls == C::read);
    // GO is sqlcmd's batch separator, not T-SQL: at a statement's start the server rejects
    // it (after an expression it is a column alias, as the server reads it too).
    CHECK(cl("GO\nSELECT 1").cls == C::unknown);
    CHECK(cl("SELECT 1\nGO").cls == C::read);
    CHECK(cl("").cls == C::unknown);
    auto h = cl("/* sluice: primary */ SELECT 1");
    CHECK(h.hint.target == Hint::Target::primary);
    CHECK(cl("--sluice: replica\nSELECT 1").cls == C::read);
}

TEST_CASE("T-SQL: digest", "[router][tsql]") {
    CHECK(tsql::digest("select a from t where b = N'x' and c = 12 -- x") ==
          "SELECT A FROM T WHERE B = ? AND C = ?");
}

TEST_CASE("T-SQL dialect: quoting and replay", "[router][tsql]") {
    CHECK(tsql::quote_identifier("a]b") == "[a]]b]");
    CHECK(tsql::quote_string("it's") == "N'it''s'");
    ReplayPlan plan;
    plan.database = "sales";
    plan.standalone = {"TRANSACTION ISOLATION LEVEL SNAPSHOT"};
    plan.combined = {"ANSI_NULLS OFF", "TEXTSIZE 100"};
    CHECK(tsql::replay_batch(plan) == "USE [sales];\nSET TRANSACTION ISOLATION LEVEL SNAPSHOT;\n"
                                      "SET ANSI_NULLS OFF;\nSET TEXTSIZE 100;\n");
    // The replay is itself classified as the session changes it made.
    auto again = tsql::classify(tsql::replay_batch(plan));
    CHECK(again.session_changes.size() == 3);
}

TEST_CASE("T-SQL: a SET's value text never joins two minuses into a comment", "[router][tsql]") {
    // Found by fuzz_tsql: `SET x - -` was kept as `x --`, and replayed, `--` commented
    // out the rest of the line.
    const auto c = tsql::classify("SET XOPT - - USE [my db]");
    REQUIRE_FALSE(c.session_changes.empty());
    const std::string text = c.session_changes[0].text;
    CHECK(text.find("--") == std::string::npos);
    ReplayPlan plan;
    plan.combined.push_back(text);
    CHECK(tsql::classify(tsql::replay_batch(plan)).session_changes.size() == 1);
    CHECK(tsql::classify("SET ROWCOUNT -1").session_changes.at(0).text == "ROWCOUNT -1");
}

TEST_CASE("T-SQL: a SET option is one word, or STATISTICS and one, never a statement's first word",
          "[router][tsql]") {
    // Found by fuzz_tsql: a CASE without END kept `SET a b CASE c, d SET e ON, f g` one
    // statement, whose options replayed one per SET read as more statements.
    CHECK(tsql::classify("SET A B CASE C, D SET E ON, F IF").session_changes.empty());
    // ... and no option or value is a word that starts a statement.
    CHECK(tsql::classify("SET ANSI_NULLS, B, UPDATE").session_changes.empty());
    CHECK(tsql::classify("SET NOCOUNT, XACT_ABORT ON").session_changes.size() == 2);
    const auto st = tsql::classify("SET STATISTICS IO, STATISTICS TIME ON");
    REQUIRE(st.session_changes.size() == 2);
    CHECK(st.session_changes[1].text == "STATISTICS TIME ON");
}
