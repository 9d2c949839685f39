"""Parsing submitted code survives another thread's parse (CPython 3.11, gh-106905)."""

from __future__ import annotations

import ast
import threading

import pytest

from prism import pyast


def test_a_transient_depth_mismatch_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    real, failures = ast.parse, iter([True, True])

    def flaky(*args: object, **kwargs: object) -> ast.Module:
        if next(failures, False):
            raise SystemError("AST constructor recursion depth mismatch (before=120, after=51)")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ast, "parse", flaky)
    assert isinstance(pyast.parse("x = 1\n").body[0], ast.Assign)


def test_other_system_errors_are_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> ast.Module:
        raise SystemError("something else")

    monkeypatch.setattr(ast, "parse", broken)
    with pytest.raises(SystemError, match="something else"):
        pyast.parse("x = 1\n")


def test_threads_parsing_at_once_all_succeed() -> None:
    source = "\n".join(f"def f{i}(a, b):\n    return [a * k + b for k in range({i})]" for i in range(300))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                pyast.parse(source)
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
