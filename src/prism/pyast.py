"""`ast.parse` for submitted code, safe while other threads parse.

CPython 3.11 keeps the recursion depth of its parse-tree-to-objects conversion in state shared by
all threads (gh-106905): two threads converting at once can fail with "SystemError: AST
constructor recursion depth mismatch". One PRISM process parses in several threads (the worker
and the review lane of `prism up`), so PRISM's own parses take one lock; the standard library
parses too where no lock reaches (3.11's `traceback` parses a source line to place its carets
whenever a thread formats an exception), so that failure, which says nothing about the code, is
retried.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable

_LOCK = threading.Lock()
_TRIES = 5


def _guarded(convert: Callable[[], ast.Module]) -> ast.Module:
    for attempt in range(_TRIES):
        try:
            with _LOCK:
                return convert()
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc) or attempt == _TRIES - 1:
                raise
    raise AssertionError("unreachable")


def parse(source: str, filename: str = "<unknown>", *, type_comments: bool = False) -> ast.Module:
    return _guarded(lambda: ast.parse(source, filename=filename, type_comments=type_comments))


def reparse(node: ast.AST) -> ast.Module:
    """A fresh tree of `node`'s source (unparse, then parse)."""
    return _guarded(lambda: ast.parse(ast.unparse(node)))
