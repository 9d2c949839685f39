"""Collect findings for one file: each is `Evidence` with the hash of the exact source snippet.

The snippet of a node is what `ast.get_source_segment` would return, but taken from line offsets
computed once per file: `get_source_segment` re-splits the whole text on every call, so a file
with many findings cost findings × size (512 KiB of findings-heavy code took minutes). Lines are
split as the parser splits them (`\\r\\n`, `\\r`, `\\n`; not `\\f`, `\\v` or Unicode breaks), so that
line numbers and snippets agree with what Python compiles. A file keeps at most `cap` findings:
one more says how many were left out, and the file is rejected either way.
"""

from __future__ import annotations

import ast
import itertools
import operator
import re

from prism.evidence import Evidence

_BREAK = re.compile(r"\r\n|\r|\n")
DEFAULT_CAP = 200


class FileFindings:
    """Findings for one file; the snippet of a node is its exact source segment (else its line)."""

    __slots__ = ("_ascii", "_starts", "cap", "dropped", "items", "path", "text")

    def __init__(self, path: str, text: str, *, cap: int = DEFAULT_CAP) -> None:
        self.path = path
        self.text = text
        self.items: list[Evidence] = []
        self.cap = cap
        self.dropped = 0
        self._starts: list[int] | None = None
        self._ascii = text.isascii()

    def _line_starts(self) -> list[int]:
        if self._starts is None:
            text = self.text
            if "\r" in text:
                self._starts = [0, *(m.end() for m in _BREAK.finditer(text))]
            else:  # only `\n` breaks: offsets summed in C rather than a match object per line
                lengths = map(operator.add, map(len, text.split("\n")), itertools.repeat(1))
                starts = [0, *itertools.accumulate(lengths)]
                starts.pop()
                self._starts = starts
        return self._starts

    def _raw_line(self, number: int) -> str:
        """Line `number` (1-based) with its line break, as the parser counts lines."""
        starts = self._line_starts()
        if not 0 < number <= len(starts):
            return ""
        end = starts[number] if number < len(starts) else len(self.text)
        return self.text[starts[number - 1] : end]

    def line(self, number: int) -> str:
        return self._raw_line(number).rstrip("\r\n")

    def _cut(self, line: str, start: int | None, end: int | None) -> str:
        """Slice a line by UTF-8 byte offsets (the unit of `col_offset`)."""
        if self._ascii:
            return line[start:end]
        return line.encode("utf-8")[start:end].decode("utf-8", errors="replace")

    def segment(self, node: ast.AST) -> str:
        """`ast.get_source_segment(text, node)`, in time proportional to the segment."""
        try:
            first = int(node.lineno)  # type: ignore[attr-defined]
            last = int(node.end_lineno)  # type: ignore[attr-defined]
            col = int(node.col_offset)  # type: ignore[attr-defined]
            end_col = int(node.end_col_offset)  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            return ""
        if first == last:
            return self._cut(self._raw_line(first), col, end_col)
        if last - first > 2000:  # a snippet is evidence, not a copy of the file: hash its ends
            return self._cut(self._raw_line(first), col, None) + self._cut(self._raw_line(last), None, end_col)
        parts = [self._cut(self._raw_line(first), col, None)]
        parts.extend(self._raw_line(n) for n in range(first + 1, last))
        parts.append(self._cut(self._raw_line(last), None, end_col))
        return "".join(parts)

    def _room(self) -> bool:
        if len(self.items) < self.cap:
            return True
        self.dropped += 1
        return False

    def add(self, rule_id: str, node: ast.AST, explanation: str) -> None:
        if not self._room():
            return
        line = int(getattr(node, "lineno", 0) or 0)
        column = int(getattr(node, "col_offset", 0) or 0)
        snippet = ""
        if isinstance(node, ast.expr | ast.arg | ast.keyword | ast.alias):
            snippet = self.segment(node)
        self.items.append(
            Evidence.at(rule_id, self.path, line, explanation, snippet=snippet or self.line(line), column=column)
        )

    def add_at(self, rule_id: str, line: int, column: int, explanation: str) -> None:
        if not self._room():
            return
        self.items.append(Evidence.at(rule_id, self.path, line, explanation, snippet=self.line(line), column=column))

    def close(self) -> None:
        """Record how many findings the cap left out (the file is rejected by those kept)."""
        if self.dropped:
            self.items.append(
                Evidence.at(
                    "static.findings_capped",
                    self.path,
                    0,
                    f"{self.dropped} more findings in this file were not listed (at most {self.cap} per file)",
                )
            )
            self.dropped = 0
