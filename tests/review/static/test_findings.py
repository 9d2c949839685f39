"""Evidence snippets are `ast.get_source_segment` without its cost; a file keeps a bounded list."""

from __future__ import annotations

import ast

import pytest

from prism.evidence import sha256_text
from prism.intake.project import Project
from prism.review.static import StaticPolicy, review_project
from prism.review.static.findings import FileFindings

TEXTS = [
    "x = f(a,\n      b)\ny = 'é' + g(\"ü\")\n",
    "def f():\r\n    return [1,\r\n            2]\r\n",
    "a = 1\rb = (2 +\r     3)\r",
    "s = '\x0c'\nt = '\u2028' ; u = h(1)\n",
    "class Ünï:\n    v = '日本' + k(\n        '語')\n",
]


@pytest.mark.parametrize("text", TEXTS)
def test_segment_is_get_source_segment(text: str) -> None:
    out = FileFindings("m.py", text)
    nodes = [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.expr)]
    assert nodes
    for node in nodes:
        assert out.segment(node) == ast.get_source_segment(text, node), ast.dump(node)


def test_lines_are_counted_as_the_parser_counts_them() -> None:
    # `\x0c` and `\u2028` break lines for str.splitlines, not for Python.
    text = "a = '\x0c'\nb = '\u2028'\nc = eval\n"
    report = review_project(Project(files={"model.py": text + "def build_model(ctx):\n    return None\n"}))
    (finding,) = [f for f in report.findings if f.rule_id == "static.name.forbidden"]
    assert finding.line == 3
    assert finding.snippet_sha256 == sha256_text("eval")


def test_findings_per_file_are_capped_and_the_rest_counted() -> None:
    body = "".join(f"def f{i}(x):\n    return eval(x)\n" for i in range(50))
    policy = StaticPolicy(max_findings_per_file=10)
    report = review_project(
        Project(files={"model.py": body + "def build_model(ctx):\n    return None\n"}), policy=policy
    )
    assert not report.accepted
    assert sum(f.rule_id == "static.name.forbidden" for f in report.findings) == 10
    (capped,) = [f for f in report.findings if f.rule_id == "static.findings_capped"]
    assert capped.explanation.startswith("40 more findings")
