"""The bytes Python runs: cookies as CPython finds them, non-ASCII identifiers wherever they hide."""

from __future__ import annotations

import pytest

from prism.review.static.findings import FileFindings
from prism.review.static.source import check_source


def _rules(text: str) -> dict[str, set[int]]:
    out = FileFindings("m.py", text)
    check_source(text, out)
    found: dict[str, set[int]] = {}
    for item in out.items:
        found.setdefault(item.rule_id, set()).add(item.line)
    return found


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("def f(s):\n    return ｅｖａｌ(s)\n", {2}),
        ("x = 'café'  # café\ny = 1\n", set()),
        ("x = f'{ｅｖａｌ}é'\n", {1}),  # inside an f-string expression (3.11's tokenize misses it)
        ("x = f'é{a:é>10}' + \"#\" + ｏｓ\n", {1}),
        ("s = '''\nmulti é\n''' ; t = 1 # é\nnamé = 2\n", {4}),
        ('x = ("a"  # é comment\n     "b")\n', set()),
        ("d = {'#': 1}; ñ = 2\n", {1}),
        ("class Ｃ:\n    pass\n", {1}),
        ("import math as ｍ\n", {1}),
        ("x = 1 # '\nｙ = 'é'\n", {2}),
        # Only the subtrees holding a non-ASCII line are searched for literals: a decorator
        # sits above its `def` line, a literal deep in a body, a docstring far from its use.
        ("@mark('é # x')\ndef f():\n    pass\n", set()),
        ("class A:\n    @staticmethod\n    @mark('é')\n    def f():\n        pass\n", set()),
        ("def f():\n    if x:\n        return {'k': ['é', g('#é')]}\n    ｙ = 2\n", {4}),
        ('"""\nd é\n"""\n' + "x = 1\n" * 50 + "def f(a='ñ'):\n    return a # é\nñ = 1\n", {56}),
    ],
)
def test_non_ascii_identifiers_outside_strings_and_comments(text: str, lines: set[int]) -> None:
    assert _rules(text).get("static.unicode_identifier", set()) == lines


@pytest.mark.parametrize("hide", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_a_cookie_behind_a_break_python_does_not_see_is_found(hide: str) -> None:
    assert _rules(f"#{hide}# coding: utf-7\nx = 1\n").get("static.encoding_cookie") == {1}


def test_utf8_cookies_pass_and_others_on_line_two_are_found() -> None:
    assert "static.encoding_cookie" not in _rules("# -*- coding: utf-8 -*-\nx = 1\n")
    assert _rules("#!/usr/bin/env python\n# vim: set fileencoding=latin-1 :\nx = 1\n")["static.encoding_cookie"] == {2}
    assert _rules("#!/usr/bin/env python\r# coding: utf-7\rx = 1\n")["static.encoding_cookie"] == {2}
