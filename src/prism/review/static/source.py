"""Review exactly what the interpreter will read: encoding cookie, invisible characters, identifiers.

Python honours a PEP 263 cookie in the first two lines of a file; `# coding: utf-7` makes it see
different code from the UTF-8 text reviewed here, so every cookie but UTF-8 is refused. The
parser NFKC-normalizes identifiers (`ｅｖａｌ` is `eval`), which hides look-alikes from a human
reader: identifiers must be ASCII. Bidirectional controls reorder what a reviewer sees
("Trojan Source") and are refused anywhere in the file.
"""

from __future__ import annotations

import ast
import bisect
import io
import re
import tokenize

from prism import pyast
from prism.review.static.findings import FileFindings
from prism.review.static.scope import children

# PEP 263, as the tokenizer applies it.
_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.ASCII)
_UTF8_NAMES = frozenset({"utf-8", "utf8", "utf_8", "u8", "utf", "cp65001", "utf-8-sig", "utf_8_sig"})
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_WORD_AROUND = re.compile(r"\w*[^\x00-\x7f]\w*")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def check_source(text: str, out: FileFindings) -> ast.Module | None:
    """Source-level rules, then the parse. Returns None when the file does not parse."""
    cookie = _foreign_cookie(text)
    if cookie is not None:
        number, name = cookie
        out.add_at(
            "static.encoding_cookie",
            number,
            0,
            f"source-encoding cookie {name!r}: the interpreter would decode this file "
            "differently from the UTF-8 text reviewed; only UTF-8 is accepted",
        )
    try:
        tree = pyast.parse(text, filename=out.path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        lineno = getattr(exc, "lineno", None) or 0
        out.add_at("static.syntax_error", int(lineno), 0, f"the file does not parse: {type(exc).__name__}: {exc}"[:300])
        tree = None
    if not text.isascii():
        _check_bidi(text, out)
        if tree is not None:
            _check_identifiers(text, tree, out)
    return tree


def _foreign_cookie(text: str) -> tuple[int, str] | None:
    """The first cookie that names anything but UTF-8, with its line, as CPython would find it.

    CPython reads the cookie from the first two lines of the *bytes*, and a line ends only at
    `\n` (`tokenize.detect_encoding`, `compile` of bytes) or also at `\r` (the file tokenizer's
    universal newlines) -- never at `\v`, `\f`, `\x1c`-`\x1e`, `\x85`, `\u2028` or `\u2029`,
    where `str.splitlines` would break. Both readings are checked; `detect_encoding` itself is
    the final word (it also refuses a cookie that contradicts a BOM).
    """
    first = text.find("\n")
    second = text.find("\n", first + 1) if first != -1 else -1
    if "coding" not in text[: second if second != -1 else len(text)]:
        return None  # not in the first two lines; the universal-newline lines are pieces of them
    by_newline = _split_first(text, _NEWLINE_ONLY)
    for lines in (_split_first(text, _UNIVERSAL), by_newline):
        for number, line in enumerate(lines, start=1):
            match = _COOKIE.match(line)
            if match and match.group(1).lower() not in _UTF8_NAMES:
                return number, match.group(1)
    head = "".join(f"{line}\n" for line in by_newline).encode("utf-8", errors="replace")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(head).readline)
    except SyntaxError as exc:
        return 1, str(exc)[:80]
    if encoding not in ("utf-8", "utf-8-sig"):
        return 1, encoding
    return None


_NEWLINE_ONLY = re.compile(r"\n")
_UNIVERSAL = re.compile(r"\r\n|\r|\n")


def _split_first(text: str, breaks: re.Pattern[str], count: int = 2) -> list[str]:
    lines: list[str] = []
    start = 0
    for match in breaks.finditer(text):
        lines.append(text[start : match.start()])
        start = match.end()
        if len(lines) == count:
            return lines
    lines.append(text[start:])
    return lines[:count]


def _check_bidi(text: str, out: FileFindings) -> None:
    seen: set[int] = set()
    for match in _BIDI.finditer(text):
        number = len(_UNIVERSAL.findall(text, 0, match.start())) + 1 if len(seen) < 20 else 0
        if number not in seen:
            seen.add(number)
            out.add_at(
                "static.bidi_control", number, 0, "bidirectional control character: the text shown is not the code"
            )


def _check_identifiers(text: str, tree: ast.Module, out: FileFindings) -> None:
    """Non-ASCII identifiers, found without tokenizing (pure-Python `tokenize` took 15 s on 1 MiB).

    In a file that parses, a non-ASCII character outside string literals and comments can only
    be part of an identifier. String spans come from the tree (f-string expressions excluded);
    a comment is a `#` before the character, on its line, outside every string span.
    """
    starts = [0, *(m.end() for m in _UNIVERSAL.finditer(text))]
    matches = list(_NON_ASCII.finditer(text))
    lines = sorted({bisect.bisect_right(starts, m.start()) for m in matches})
    spans = _string_spans(text, tree, starts, lines)
    begins = [b for b, _ in spans]
    for match in matches:
        position = match.start()
        if _inside(spans, begins, position):
            continue
        number = bisect.bisect_right(starts, position)
        line_start = starts[number - 1]
        if _in_comment(text, line_start, position, spans, begins):
            continue
        word = _WORD_AROUND.search(text, max(line_start, position - 80))
        name = word.group(0) if word else match.group(0)
        out.add_at(
            "static.unicode_identifier",
            number,
            0,
            f"identifier {name!r} is not ASCII; Python would read it as {_nfkc(name)!r}, and look-alike "
            "names hide what code does",
        )


def _in_comment(text: str, start: int, position: int, spans: list[tuple[int, int]], begins: list[int]) -> bool:
    """A `#` outside every string literal before `position` on its line starts a comment."""
    mark = text.find("#", start, position)
    while mark != -1:
        if not _inside(spans, begins, mark):
            return True
        mark = text.find("#", mark + 1, position)
    return False


def _inside(spans: list[tuple[int, int]], begins: list[int], position: int) -> bool:
    index = bisect.bisect_right(begins, position) - 1
    return index >= 0 and position < spans[index][1]


def _string_spans(text: str, tree: ast.Module, starts: list[int], lines: list[int]) -> list[tuple[int, int]]:
    """Character spans of the string literals that touch `lines` (sorted line numbers), sorted
    and disjoint (f-string expressions cut out).

    Only those matter: a character of these lines, or a `#` before it on its line, lies in a
    literal only if that literal's lines include its line. So a subtree whose lines miss them
    all is not entered (a file with a few non-ASCII comments is not walked whole, which cost
    several parses' worth on large files).
    """

    def offset(line: int, column: int) -> int:
        start = starts[line - 1]
        end = starts[line] if line < len(starts) else len(text)
        segment = text[start:end]
        if segment.isascii():
            return start + column
        return start + len(segment.encode("utf-8")[:column].decode("utf-8", errors="ignore"))

    def add(node: ast.AST) -> None:
        if isinstance(node, ast.JoinedStr):
            begin = offset(node.lineno, node.col_offset)
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    expr = value.value
                    cut = offset(expr.lineno, expr.col_offset)
                    spans.append((begin, cut))
                    begin = offset(expr.end_lineno or expr.lineno, expr.end_col_offset or 0)
            spans.append((begin, offset(node.end_lineno or node.lineno, node.end_col_offset or 0)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            spans.append((offset(node.lineno, node.col_offset), offset(node.end_lineno or 0, node.end_col_offset or 0)))

    spans: list[tuple[int, int]] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        first = getattr(node, "lineno", None)
        if first is not None:
            last = getattr(node, "end_lineno", None) or first
            decorators = getattr(node, "decorator_list", None)
            if decorators:  # a definition's lines start at `def`/`class`, below its decorators
                first = min(first, *(d.lineno for d in decorators))
            at = bisect.bisect_left(lines, first)
            if at == len(lines) or lines[at] > last:
                continue  # no line of interest within this node: nor within any node below it
        if isinstance(node, ast.JoinedStr):
            for sub in ast.walk(node):  # f-string parts, unpruned: their positions are not nested
                add(sub)
            continue
        add(node)
        pending.extend(children(node))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for begin, end in spans:
        if merged and begin < merged[-1][1]:
            continue  # a constant inside a JoinedStr already covered (format specs)
        merged.append((begin, end))
    return merged


def _nfkc(name: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", name)
