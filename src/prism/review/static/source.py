"""Review exactly what the interpreter will read: encoding cookie, invisible characters, identifiers.

Python honours a PEP 263 cookie in the first two lines of a file; `# coding: utf-7` makes it see
different code from the UTF-8 text reviewed here, so every cookie but UTF-8 is refused. The
parser NFKC-normalizes identifiers (`ｅｖａｌ` is `eval`), which hides look-alikes from a human
reader: identifiers must be ASCII. Bidirectional controls reorder what a reviewer sees
("Trojan Source") and are refused anywhere in the file.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

from prism.review.static.findings import FileFindings

# PEP 263, as the tokenizer applies it.
_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.ASCII)
_UTF8_NAMES = frozenset({"utf-8", "utf8", "utf_8", "u8", "utf", "cp65001", "utf-8-sig", "utf_8_sig"})
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
    if not text.isascii():
        _check_unicode(text, out)
    try:
        return ast.parse(text, filename=out.path, type_comments=False)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        lineno = getattr(exc, "lineno", None) or 0
        out.add_at("static.syntax_error", int(lineno), 0, f"the file does not parse: {type(exc).__name__}: {exc}"[:300])
        return None


def _foreign_cookie(text: str) -> tuple[int, str] | None:
    """The first cookie that names anything but UTF-8, with its line, as CPython would find it.

    CPython reads the cookie from the first two lines of the *bytes*, and a line ends only at
    `\n` (`tokenize.detect_encoding`, `compile` of bytes) or also at `\r` (the file tokenizer's
    universal newlines) -- never at `\v`, `\f`, `\x1c`-`\x1e`, `\x85`, `\u2028` or `\u2029`,
    where `str.splitlines` would break. Both readings are checked; `detect_encoding` itself is
    the final word (it also refuses a cookie that contradicts a BOM).
    """
    by_newline = _split_first(text, _NEWLINE_ONLY)
    if not any("coding" in line for line in by_newline):
        return None  # the universal-newline lines are pieces of these two
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


def _check_unicode(text: str, out: FileFindings) -> None:
    seen: set[int] = set()
    for match in _BIDI.finditer(text):
        number = len(_UNIVERSAL.findall(text, 0, match.start())) + 1 if len(seen) < 20 else 0
        if number not in seen:
            seen.add(number)
            out.add_at(
                "static.bidi_control", number, 0, "bidirectional control character: the text shown is not the code"
            )
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return  # the parse reports it
    for tok in tokens:
        if tok.type == tokenize.NAME and not tok.string.isascii():
            out.add_at(
                "static.unicode_identifier",
                tok.start[0],
                tok.start[1],
                f"identifier {tok.string!r} is not ASCII; Python would read it as "
                f"{_nfkc(tok.string)!r}, and look-alike names hide what code does",
            )


def _nfkc(name: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", name)
