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

from prism.review.static_findings import FileFindings

# PEP 263, as the tokenizer applies it.
_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.ASCII)
_UTF8_NAMES = frozenset({"utf-8", "utf8", "utf_8", "u8", "utf", "cp65001", "utf-8-sig", "utf_8_sig"})
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def check_source(text: str, out: FileFindings) -> ast.Module | None:
    """Source-level rules, then the parse. Returns None when the file does not parse."""
    for number, line in enumerate(_first_lines(text, 2), start=1):
        match = _COOKIE.match(line)
        if match and match.group(1).lower().replace(" ", "") not in _UTF8_NAMES:
            out.add_at(
                "static.encoding_cookie",
                number,
                0,
                f"source-encoding cookie {match.group(1)!r}: the interpreter would decode this file "
                "differently from the UTF-8 text reviewed; only UTF-8 is accepted",
            )
            break
        if line.strip() and not line.lstrip().startswith("#"):
            break
    if not text.isascii():
        _check_unicode(text, out)
    try:
        return ast.parse(text, filename=out.path, type_comments=False)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        lineno = getattr(exc, "lineno", None) or 0
        out.add_at("static.syntax_error", int(lineno), 0, f"the file does not parse: {type(exc).__name__}: {exc}"[:300])
        return None


def _first_lines(text: str, count: int) -> list[str]:
    """`text.splitlines()[:count]` without splitting the whole file (only the cookie lines matter).

    A prefix holding more than `count` lines has the same first `count` lines as the text: each
    of them ends at a break inside the prefix (a break cut in two, `\r` of `\r\n`, can only
    end the prefix's last line).
    """
    size = 512
    while size < len(text):
        lines = text[:size].splitlines()
        if len(lines) > count:
            return lines[:count]
        size *= 8
    return text.splitlines()[:count]


def _check_unicode(text: str, out: FileFindings) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if _BIDI.search(line):
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
