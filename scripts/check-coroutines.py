#!/usr/bin/env python3
"""Refuses coroutine shapes that GCC 12.2 (Debian 12) miscompiles.

GCC PR106188: a `co_await` inside an `if` condition of a coroutine with no locals is
compiled without its resume point; resuming it executes a trap (SIGILL, or SIGSEGV), as
`if (!co_await primary_command(...)) co_return false;` did in
MysqlSession::on_reset_connection (issue #7). Sluice's rule is stricter than the bug: an
awaited value is bound to a named local first, so a `co_await` may only stand

    co_await x;                      a statement of its own
    co_return co_await x;
    auto v = co_await x;             a declaration or an assignment: `= co_await x`
    auto [a, b] = co_await x;

optionally as the unbraced body of an if/else/for/while. Anything else (inside a
condition, an argument, after `!`, `&&`, `||`, `?`) is reported with its file and line.
`co_await asio::this_coro::...` never suspends and is allowed anywhere.

Usage: check-coroutines.py DIR_OR_FILE...   exit 1 when a shape is refused.
"""
import pathlib
import re
import sys

SUFFIXES = {".cpp", ".hpp", ".h", ".cc"}


def strip_code(text: str) -> str:
    """Blanks comments and string/char literals (keeping newlines and offsets)."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a: int, b: int) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not text[i - 1].isalnum()):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i)
            j = n if end < 0 else end + len(m.group(1)) + 2
            blank(i + 1, j)
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, min(j, n))
            i = j + 1
        else:
            i += 1
    return "".join(out)


def strip_heads(prefix: str) -> str:
    """Drops leading `else` and `if (...)`/`for (...)`/`while (...)`/`switch (...)` heads."""
    while True:
        p = prefix.lstrip()
        m = re.match(r"else\b|case\b(?:[^:;]|::)*:(?!:)|default\s*:", p)
        if m:
            prefix = p[m.end():]
            continue
        m = re.match(r"(if|for|while|switch)\s*(constexpr\s*)?\(", p)
        if not m:
            return p
        depth, k = 1, m.end()
        while k < len(p) and depth:
            depth += {"(": 1, ")": -1}.get(p[k], 0)
            k += 1
        if depth:
            return p
        prefix = p[k:]


ALLOWED = re.compile(r"^(|co_return|[^=]*[^=!<>+\-*/%&|^]=)$")


def check(path: pathlib.Path) -> list[str]:
    text = strip_code(path.read_text(encoding="utf-8", errors="replace"))
    problems = []
    for m in re.finditer(r"\bco_await\b", text):
        if re.match(r"co_await\s+(boost::)?(asio::)?this_coro::", text[m.start():]):
            continue
        depth, k, why = 0, m.start() - 1, None
        while k >= 0:
            ch = text[k]
            if ch in ")]":
                depth += 1
            elif ch in "([":
                if depth == 0:
                    why = "inside parentheses (a condition or an argument)"
                    break
                depth -= 1
            elif ch in ";{}" and depth == 0:
                break
            k -= 1
        if why is None:
            prefix = " ".join(strip_heads(text[k + 1:m.start()]).split())
            if not ALLOWED.match(prefix):
                why = f"inside an expression (after '{prefix[-40:]}')"
        if why:
            line = text.count("\n", 0, m.start()) + 1
            problems.append(f"{path}:{line}: co_await {why}: bind the awaited value to a "
                            "named local first (GCC PR106188)")
    return problems


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    files = []
    for a in argv:
        p = pathlib.Path(a)
        files += sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES) if p.is_dir() else [p]
    problems = [msg for f in files for msg in check(f)]
    for msg in problems:
        print(msg)
    print(f"check-coroutines: {len(files)} files, {len(problems)} refused shapes",
          file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
