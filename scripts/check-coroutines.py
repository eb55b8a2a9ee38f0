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

GCC 12 also destroys twice a temporary with a destructor that stands in an awaited
expression: a double free in TdsSession, from `co_await tds::run_own_batch(b,
router::tsql::replay_batch(plan))` and `co_await send_error(..., "Malformed ...: " + why)`
(all named now). Types are beyond a script, so it refuses the shapes that surely make such a
temporary, anywhere in the expression after `co_await` (up to its `;`) but in a lambda's body:

    std::string(...), std::vector<T>{...}, ...     an owning std type made on the spot
    std::to_string(...), std::make_shared<T>(...), fmt::format(...), std::format(...)
    "..." + x, x + "...", "..."s                    a std::string made from a literal
    Type{...}                                       a brace-init of a class (not of a span,
                                                    string_view, endpoint, duration, ...)
    f(..., {..., "...", ...})                       a braced argument with a string literal
    [x], [=], [p = std::move(p)]                    a lambda capturing by value

The cure is the same: make it a named local first. (A function returning such a type by
value, or a literal converted to a std::string parameter, makes one too: that needs the
types, and is not seen.)

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

# --- temporaries in the awaited expression --------------------------------------------------
OWNING = re.compile(r"\bstd\s*::\s*(basic_string|string|wstring|u8string|u16string|u32string|vector|"
                    r"deque|list|forward_list|map|multimap|set|multiset|unordered_map|"
                    r"unordered_multimap|unordered_set|unordered_multiset|function|shared_ptr|"
                    r"unique_ptr|any)\b")
CALLS = re.compile(r"\b(?:std\s*::\s*(?:to_string|to_wstring|make_shared|make_unique|format|vformat)|"
                   r"fmt\s*::\s*(?:format|vformat|to_string|sprintf))\b")
LITERALS = [(re.compile(r'"\s*\+(?![+=])|(?<![+])\+\s*"'), '"..." + x'), (re.compile(r'"s\b'), '"..."s')]
# Brace-initialised types without a destructor of their own.
TRIVIAL = re.compile(r"(?:^|::)(?:(?:basic_|w|u8|u16|u32)?string_view|span|Bytes|(?:basic_)?endpoint|"
                     r"address(?:_v[46])?|error_code|errc|(?:nano|micro|milli)?seconds|minutes|"
                     r"hours|days|duration|time_point|(?:const_|mutable_)buffer|byte|size_t|"
                     r"ptrdiff_t|u?int(?:8|16|32|64)_t|int|unsigned|long|short|char|bool|float|"
                     r"double|auto)$")
KEYWORDS = {"return", "co_return", "co_await", "co_yield", "else", "do", "try", "const", "mutable",
            "noexcept", "constexpr", "operator"}
NAME = re.compile(r"[A-Za-z_]\w*(?:\s*::\s*[A-Za-z_]\w*)*")


def skip_group(text: str, i: int) -> int:
    """The index after the bracket group opening at text[i] (end of text if unclosed)."""
    pairs = {"(": ")", "[": "]", "{": "}", "<": ">"}
    stack = [pairs[text[i]]]
    j = i + 1
    while j < len(text) and stack:
        c = text[j]
        if c == stack[-1]:
            stack.pop()
        elif c in "([{" or (c == "<" and stack[-1] == ">"):
            stack.append(pairs[c])
        elif c in ")]}" and stack[-1] != ">":
            return j  # unbalanced: give up at the stray closer
        j += 1
    return j


def awaited_end(text: str, start: int) -> int:
    """Where the expression after `co_await` at START ends: `;` or `,` outside brackets, or the
    bracket that closes around it."""
    depth, k = 0, start
    while k < len(text):
        c = text[k]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return k
            depth -= 1
        elif c in ";," and depth == 0:
            return k
        k += 1
    return k


def lambda_at(text: str, i: int) -> tuple[int, str] | None:
    """For a lambda starting with `[` at text[i]: (the index after its body, its captures)."""
    before = text[max(0, i - 200):i].rstrip()
    subscript = before and (before[-1].isalnum() or before[-1] in "_)]")
    if subscript and not re.search(r"\b(co_await|co_return|co_yield|return)$", before):
        return None
    close = skip_group(text, i)
    captures = text[i + 1:close - 1]
    j = close
    while j < len(text) and text[j] != "{":
        if text[j] == "(":
            j = skip_group(text, j)
            continue
        if text[j] in ";,)]}":
            return None  # not a lambda after all (an attribute, a subscript of a literal)
        j += 1
    if j >= len(text):
        return None
    return skip_group(text, j), captures


def by_value(captures: str) -> str | None:
    """The first capture by value (a copy with a destructor, maybe) among CAPTURES."""
    depth, item, items = 0, "", []
    for c in captures + ",":
        if c == "," and depth == 0:
            items.append(item.strip())
            item = ""
            continue
        depth += c in "([{<"
        depth -= c in ")]}>"
        item += c
    for item in items:
        if item and not item.startswith("&") and item != "this":
            return item
    return None


def temporaries(text: str, start: int, end: int) -> list[tuple[int, str]]:
    """(offset, what) of each temporary with a destructor in text[start:end], an awaited expression."""
    found = []
    seen = list(text[start:end])  # lambda bodies blanked: their statements are their own
    i = start
    while i < end:
        if text[i] == "[":
            lam = lambda_at(text, i)
            if lam:
                after, captures = lam
                copied = by_value(captures)
                if copied:
                    found.append((i, f"a lambda capturing {copied} by value"))
                for k in range(i, min(after, end)):
                    seen[k - start] = " "
                i = after
                continue
        i += 1
    visible = "".join(seen)
    for m in OWNING.finditer(visible):
        k = m.end()
        while k < len(visible) and visible[k].isspace():
            k += 1
        if k < len(visible) and visible[k] == "<":
            k = skip_group(visible, k)
            while k < len(visible) and visible[k].isspace():
                k += 1
        if k < len(visible) and visible[k] in "({":
            found.append((start + m.start(), "a std::%s made on the spot" % m.group(1)))
    for m in CALLS.finditer(visible):
        found.append((start + m.start(), re.sub(r"\s+", "", m.group(0)) + "(...)"))
    for rx, what in LITERALS:
        for m in rx.finditer(visible):
            found.append((start + m.start(), what))
    for m in re.finditer(r"\{", visible):
        k = m.start()
        head = visible[:k].rstrip()
        name = re.search(r"(" + NAME.pattern + r")\s*(<[^;{}]*>)?$", head)
        if name and name.group(1).split("::")[-1].strip() not in KEYWORDS:
            type_name = re.sub(r"\s+", "", name.group(1))
            if not TRIVIAL.search(type_name) and not OWNING.match(type_name):
                found.append((start + k, "%s{...}" % type_name))
        elif head.endswith(("(", ",")):
            body = visible[k:skip_group(visible, k)]
            if '"' in body:
                found.append((start + k, 'a braced argument with a string literal'))
    return sorted(set(found))


def check(path: pathlib.Path) -> list[str]:
    return check_text(path.read_text(encoding="utf-8", errors="replace"), str(path))


def check_text(source: str, path: str) -> list[str]:
    text = strip_code(source)
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
        found = temporaries(text, m.end(), awaited_end(text, m.end()))
        if found:
            line = text.count("\n", 0, found[0][0]) + 1
            whats = "; ".join(dict.fromkeys(what for _, what in found))
            problems.append(f"{path}:{line}: a temporary in a co_await expression ({whats}): "
                            "GCC 12 destroys it twice; make it a named local first")
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
