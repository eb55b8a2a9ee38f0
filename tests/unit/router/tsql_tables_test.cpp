// The tables a T-SQL batch reads or changes (issue #11: the result cache for TDS).

#include "sluice/router/tsql.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace sluice::router;

namespace {

/// "db.t" or "t" for each table, or {"INCOMPLETE"}.
std::vector<std::string> names(const TableRefs& r) {
    if (!r.complete) return {"INCOMPLETE"};
    std::vector<std::string> out;
    for (const auto& t : r.tables)
        out.push_back(t.schema.empty() ? t.table : t.schema + "." + t.table);
    return out;
}
using V = std::vector<std::string>;
V reads(std::string_view sql) { return names(tsql::tables_read(sql)); }
V writes(std::string_view sql) { return names(tsql::tables_written(sql)); }

} // namespace

TEST_CASE("T-SQL tables read: names, joins, subqueries, CTEs", "[router][tsql]") {
    CHECK(reads("SELECT 1") == V{});
    CHECK(reads("SELECT * FROM items") == V{"items"});
    CHECK(reads("select a from [dbo].[Items] i where i.a = N'x''y'") == V{"items"});
    CHECK(reads("SELECT * FROM sales.dbo.orders o JOIN items i ON i.id = o.item") ==
          V{"items", "sales.orders"});
    CHECK(reads("SELECT * FROM a WITH (NOLOCK) INNER JOIN b ON a.x = b.x LEFT OUTER JOIN c ON "
                "c.y = b.y, d") == V{"a", "b", "c", "d"});
    CHECK(reads("SELECT * FROM a WHERE x IN (SELECT x FROM b WHERE EXISTS (SELECT 1 FROM c))") ==
          V{"a", "b", "c"});
    CHECK(reads("SELECT * FROM (SELECT x FROM b) AS d JOIN e ON d.x = e.x") == V{"b", "e"});
    CHECK(reads("WITH c AS (SELECT x FROM base) SELECT * FROM c JOIN other ON 1 = 1") ==
          V{"base", "other"});
    CHECK(reads("SELECT a FROM t UNION ALL SELECT a FROM [u]]v] ORDER BY a") == V{"t", "u]v"});
    CHECK(reads("SELECT * FROM db..t") == V{"db.t"});
    CHECK(reads("SELECT * FROM \"Quoted\"") == V{"quoted"});
    CHECK(reads("SELECT TOP (5) name, COUNT(*) FROM t GROUP BY name FOR JSON PATH") == V{"t"});
    CHECK(reads("SELECT * FROM a CROSS APPLY (SELECT TOP 1 * FROM b WHERE b.k = a.k) x") ==
          V{"a", "b"});
    // sp_executesql's parameters are variables: the tables are still known.
    CHECK(reads("SELECT name FROM items WHERE id = @P1") == V{"items"});
}

TEST_CASE("T-SQL tables read: what makes a read's tables unknown", "[router][tsql]") {
    for (const char* sql : {
             "SELECT * FROM #tmp",
             "SELECT * FROM @t",
             "SELECT * FROM dbo.f(1)",
             "SELECT * FROM STRING_SPLIT('a,b', ',')",
             "SELECT dbo.price(id) FROM items",
             "SELECT * FROM a CROSS APPLY OPENJSON(a.j)",
             "SELECT * FROM srv.db.dbo.t",
             "SELECT * FROM OPENQUERY(srv, 'select 1')",
             "SELECT * FROM sys.objects",
             "SELECT * FROM INFORMATION_SCHEMA.TABLES",
             "SELECT * INTO x FROM t",
             "INSERT INTO t VALUES (1)",
             "EXEC p",
             "DECLARE @x int; SELECT @x = a FROM t",
             "SELECT 'unterminated",
         }) {
        INFO(sql);
        CHECK(reads(sql) == V{"INCOMPLETE"});
    }
}

TEST_CASE("T-SQL tables written", "[router][tsql]") {
    CHECK(writes("INSERT INTO items (name) VALUES (N'a')") == V{"items"});
    CHECK(writes("INSERT items SELECT * FROM src") == V{"items", "src"});
    CHECK(writes("INSERT TOP (5) INTO [dbo].[Items] SELECT * FROM s") == V{"items", "s"});
    CHECK(writes("UPDATE TOP (1) t SET a = 1 WHERE b = 2") == V{"t"});
    CHECK(writes("UPDATE x SET a = 1 FROM items x JOIN other o ON o.k = x.k") ==
          V{"items", "other", "x"});
    CHECK(writes("DELETE FROM t WHERE a = 1") == V{"t"});
    CHECK(writes("DELETE t FROM t JOIN u ON t.k = u.k") == V{"t", "u"});
    CHECK(writes("MERGE INTO tgt AS t USING src AS s ON t.k = s.k WHEN MATCHED THEN UPDATE SET "
                 "t.v = s.v WHEN NOT MATCHED THEN INSERT (k, v) VALUES (s.k, s.v) WHEN NOT "
                 "MATCHED BY SOURCE THEN DELETE;") == V{"tgt"});
    CHECK(writes("SELECT * INTO archive FROM items") == V{"archive", "items"});
    CHECK(writes("UPDATE t SET a = 1 OUTPUT inserted.a INTO log_t") == V{"log_t", "t"});
    CHECK(writes("SET NOCOUNT ON; INSERT INTO a VALUES (1); SELECT SCOPE_IDENTITY()") == V{"a"});
    CHECK(writes("INSERT INTO @t VALUES (1)") == V{});
    CHECK(writes("SELECT * INTO #t FROM items") == V{"items"});
    CHECK(writes("TRUNCATE TABLE sales.dbo.orders") == V{"sales.orders"});
    CHECK(writes("DROP TABLE IF EXISTS a, dbo.b") == V{"a", "b"});
    CHECK(writes("ALTER TABLE t ADD c INT") == V{"t"});
    CHECK(writes("CREATE TABLE n (id INT)") == V{"n"});
    CHECK(writes("CREATE OR ALTER VIEW v AS SELECT * FROM t") == V{"t", "v"});
    CHECK(writes("CREATE UNIQUE NONCLUSTERED INDEX ix ON t (a)") == V{"t"});
    CHECK(writes("BEGIN TRAN; UPDATE a SET x = 1; COMMIT") == V{"a"});
    for (const char* sql :
         {"EXEC p", "EXECUTE sp_executesql N'DELETE FROM t'", "INSERT INTO t EXEC p",
          "CREATE PROCEDURE p AS SELECT 1", "DROP DATABASE d",
          "INSERT INTO srv.db.dbo.t VALUES (1)", "UPDATE 'x"}) {
        INFO(sql);
        CHECK(writes(sql) == V{"INCOMPLETE"});
    }
}

TEST_CASE("T-SQL: INSERT BULK is told apart from BULK INSERT and INSERT", "[router][tsql]") {
    CHECK(tsql::starts_bulk_load("INSERT BULK t (a INT)"));
    CHECK(tsql::starts_bulk_load(" /* bcp */ insert -- x\n bulk [dbo].[t] (a INT) WITH (TABLOCK)"));
    CHECK_FALSE(tsql::starts_bulk_load("BULK INSERT t FROM 'f.csv'"));
    CHECK_FALSE(tsql::starts_bulk_load("INSERT INTO bulk VALUES (1)"));
    CHECK_FALSE(tsql::starts_bulk_load("SELECT 1"));
}
