"""Collect findings for one file: each is `Evidence` with the hash of the exact source snippet."""

from __future__ import annotations

import ast

from prism.evidence import Evidence


class FileFindings:
    """Findings for one file; the snippet of a node is its exact source segment (else its line)."""

    __slots__ = ("_lines", "items", "path", "text")

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.items: list[Evidence] = []
        self._lines: list[str] | None = None

    def _line(self, number: int) -> str:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines[number - 1] if 0 < number <= len(self._lines) else ""

    def add(self, rule_id: str, node: ast.AST, explanation: str) -> None:
        line = int(getattr(node, "lineno", 0) or 0)
        column = int(getattr(node, "col_offset", 0) or 0)
        snippet = ""
        if isinstance(node, ast.expr | ast.arg | ast.keyword | ast.alias):
            try:
                snippet = ast.get_source_segment(self.text, node) or ""
            except (IndexError, UnicodeError):  # a node from another text: fall back to the line
                snippet = ""
        self.items.append(
            Evidence.at(rule_id, self.path, line, explanation, snippet=snippet or self._line(line), column=column)
        )

    def add_at(self, rule_id: str, line: int, column: int, explanation: str) -> None:
        self.items.append(Evidence.at(rule_id, self.path, line, explanation, snippet=self._line(line), column=column))
