#!/usr/bin/env python3
"""Self-test of check-coroutines.py: C++ snippets it must refuse and ones it must let pass,
for both of its rules (PR106188's co_await inside a condition or an expression, and a
temporary with a destructor in a co_await expression, which GCC 12 destroys twice).

Usage: check-coroutines-test.py   one line per snippet that went wrong; exit 1 if any did.
"""
import importlib.util
import pathlib
import sys

spec = importlib.util.spec_from_file_location(
    "check_coroutines", pathlib.Path(__file__).with_name("check-coroutines.py"))
checker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checker)

TEMPORARY = "a temporary in a co_await expression"
PR106188 = "named local first (GCC PR106188)"

# (snippet, the rule it breaks: what its report must say)
REFUSED = [
    ('co_await run_own_batch(b, std::string("SET NOCOUNT ON"));', "std::string made on the spot"),
    ("auto r = co_await obj.f(std::to_string(n));", "std::to_string(...)"),
    ("const auto r = co_await obj->f(1, std::to_string(n), use_tuple);", "std::to_string(...)"),
    ('co_await send_error(4014, 20, "Malformed PRELOGIN: " + why);', '"..." + x'),
    ('co_return co_await send_error(1, 2, why + ": the statement did not run");', '"..." + x'),
    ('co_await send_error(1, 2, fmt::format("Unknown thread id: {}", id));', "fmt::format(...)"),
    ('co_await send(std::format("{}", id));', "std::format(...)"),
    ("co_await f(std::vector<int>{1, 2, 3});", "std::vector made on the spot"),
    ("co_await f(std::vector<std::pair<int, int>>(4));", "std::vector made on the spot"),
    ("co_await f(std::map<int, std::string>{});", "std::map made on the spot"),
    ("co_await f(Message{code, text});", "Message{...}"),
    ("co_await f(ns::Reply<int>{1});", "ns::Reply{...}"),
    ('co_await f(x, {"a", "b"});', "a braced argument with a string literal"),
    ("co_await run([s] { return s.size(); });", "a lambda capturing s by value"),
    ("co_await run([=]() { return n; });", "a lambda capturing = by value"),
    ("co_await run([this, p = std::move(p)]() -> asio::awaitable<void> { co_return; });",
     "a lambda capturing p = std::move(p) by value"),
    ('co_await f("abc"s);', '"..."s'),
    ('const auto old = co_await conn.query("DELETE FROM " + heartbeat_name() +\n'
     '                                     " WHERE written < NOW(6)",\n'
     "                                     deadline);", '"..." + x'),
    ('co_await tds::run(b, g(std::string("nested")));', "std::string made on the spot"),
    ("auto [ec, n] = co_await write(std::make_shared<Buffer>(64), use_tuple);", "std::make_shared(...)"),
    ('co_await ptr->send(std::string_view{}, std::string{"x"});', "std::string made on the spot"),
    ("co_await (login() || send(std::to_string(id)));", "std::to_string(...)"),
    ("co_await [&]() -> asio::awaitable<void> { co_return; }(std::to_string(1));", "std::to_string(...)"),
    ("if (x) co_await f(std::to_string(n));", "std::to_string(...)"),
    # PR106188, the first rule.
    ("if (co_await f()) co_return;", PR106188),
    ("if (!co_await primary_command(x)) co_return false;", PR106188),
    ("x = !co_await f();", PR106188),
    ("g(co_await f());", PR106188),
    ("auto v = cond ? co_await f() : 0;", PR106188),
]

ALLOWED = [
    "co_await f(std::move(s));",
    "co_await f(s, std::string_view{});",
    "auto reply = co_await exchange(slot, {&reset, 1}, ResponseKind::single);",
    "co_await stream.socket.async_connect(tcp::endpoint{address, ep.port}, use_tuple);",
    'const bool up = co_await wait_until([&] { return std::string("x").empty(); }, 2s);',
    "co_await pool.run([&]() -> asio::awaitable<void> { out = co_await pool.acquire(i, k); });",
    "co_await run([this, &out] { out = 1; });",
    "auto [ec] = co_await timer.async_wait(use_tuple);",
    "asio::steady_timer t{co_await asio::this_coro::executor, std::chrono::seconds{1}};",
    'co_await send_error(1, 2, "a literal: no temporary the script can see");',
    "co_await f(a + b, n + 1);",
    'co_await f(n + 1, "x");',
    "co_await f(x[i], y[j + 1]);",
    "co_await f(std::chrono::milliseconds{5}, std::span<const int>{p, n});",
    'const std::string text = "a" + why;\nco_await f(text);',
    '// co_await f(std::string("in a comment"));\nco_await f(s);',
    'const char* s = "co_await f(std::to_string(1))";',
    "auto outcome = co_await (login() || timer.async_wait(use_tuple));",
    "const WaitedRead w = co_await forward_after_wait(std::exchange(pending_wait_, {}), seq);",
    "co_await worker_.cache().bump(tables, false, 0, std::string_view{});",
    "co_await f(std::string::npos, s);",
    "auto v = co_await f();",
    "co_return co_await f(x);",
    "auto [a, b] = co_await f(x);",
    "co_await f(); co_await g(h);",
    "for (auto& x : xs) co_await f(x);",
    "else co_await f(x);",
]


def wrap(snippet: str) -> str:
    return "asio::awaitable<void> Session::step() {\n    int local = 0;\n    %s\n}\n" % snippet


def main() -> int:
    wrong = []
    for snippet, says in REFUSED:
        problems = checker.check_text(wrap(snippet), "refused.cpp")
        if not any(says in p for p in problems):
            wrong.append("not refused as %r: %s\n    got %s" % (says, snippet, problems or "nothing"))
    for snippet in ALLOWED:
        problems = checker.check_text(wrap(snippet), "allowed.cpp")
        if problems:
            wrong.append("refused: %s\n    %s" % (snippet, "\n    ".join(problems)))
    for line in wrong:
        print(line)
    print("check-coroutines-test: %d refused and %d allowed snippets, %d wrong"
          % (len(REFUSED), len(ALLOWED), len(wrong)), file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
