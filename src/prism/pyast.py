"""`ast.parse` behind one process-wide lock.

CPython 3.11 keeps the recursion depth of its parse-tree-to-objects conversion in state shared by
all threads (gh-106905): two threads parsing at once can fail with "SystemError: AST constructor
recursion depth mismatch". One PRISM process parses in several threads (the API, the worker and
the review lane of `prism up`), so every parse of submitted code goes through here.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>", *, type_comments: bool = False) -> ast.Module:
    with _LOCK:
        return ast.parse(source, filename=filename, type_comments=type_comments)


def reparse(node: ast.AST) -> ast.Module:
    """A fresh tree of `node`'s source (unparse, then parse), under the same lock."""
    with _LOCK:
        return ast.parse(ast.unparse(node))
