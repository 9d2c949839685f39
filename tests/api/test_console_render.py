"""The console's pure rendering helpers: excerpts, snippet location, plots, diffs, Mermaid records."""

from __future__ import annotations

import ast
import re

from prism.api.console_render import (
    MAX_DIFF_ROWS,
    diff_projects,
    excerpt,
    locate_snippet,
    loss_plot_svg,
    mermaid_diagrams,
    numbers,
    pretty_json,
    redact,
)
from prism.evidence import sha256_text

SOURCE = """import torch


def build_model(ctx):
    layer = torch.nn.Linear(
        ctx.vocab_size,
        ctx.vocab_size,
    )
    return layer
"""


def test_excerpt_highlights_the_cited_line_with_context() -> None:
    shown = excerpt({"model.py": SOURCE}, "model.py", 4, context=2)
    assert [line.number for line in shown.lines] == [2, 3, 4, 5, 6]
    assert [line.number for line in shown.lines if line.cited] == [4]
    assert excerpt({"model.py": SOURCE}, "model.py", 99).missing.startswith("line 99 is outside")
    assert excerpt({}, "other.py", 1).missing == "other.py is not in the stored source"


def test_the_static_reviews_multiline_segment_hash_is_located() -> None:
    """The static review hashes `ast.get_source_segment`: from the column, across lines."""
    tree = ast.parse(SOURCE)
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call))
    segment = ast.get_source_segment(SOURCE, call)
    assert segment is not None and "\n" in segment
    lines = SOURCE.splitlines()
    assert locate_snippet(lines, call.lineno, call.col_offset, sha256_text(segment)) == (5, 8)
    shown = excerpt({"m.py": SOURCE}, "m.py", call.lineno, column=call.col_offset, sha256=sha256_text(segment))
    assert [line.number for line in shown.lines if line.cited] == [5, 6, 7, 8]
    # Whole lines (the LLM gate hashes the cited lines joined) are found too; a wrong hash is not.
    assert locate_snippet(lines, 4, 0, sha256_text(lines[3])) == (4, 4)
    assert locate_snippet(lines, 4, 0, sha256_text("something else")) is None
    assert locate_snippet(lines, 400, 0, sha256_text(lines[3])) is None


def test_numbers_read_only_finite_numeric_lists() -> None:
    assert numbers([3, 2.5, float("nan"), 1]) == [3.0, 2.5, 1.0]
    assert numbers([1, "2"]) == []
    assert numbers([True, 1.0]) == []
    assert numbers({"losses": [1, 2]}) == []
    assert numbers(None) == []


def test_loss_plot_is_svg_built_from_numbers_only() -> None:
    svg = str(loss_plot_svg([4.0, 3.0, 2.5, 2.4], label='<script>"x"</script>'))
    assert svg.startswith('<svg class="plot"')
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert len(re.findall(r"[ML][\d.]+,[\d.]+", svg)) == 4
    assert str(loss_plot_svg([1.0])) == ""
    many = str(loss_plot_svg([float(i % 7) for i in range(50_000)]))
    assert len(re.findall(r"[ML][\d.]+,[\d.]+", many)) <= 2001


def test_side_by_side_diff_pairs_files_and_marks_changes() -> None:
    left = {"model.py": "a\nb\nc\n", "helpers.py": "def f():\n    return 1\n"}
    right = {"model.py": "a\nB\nc\n", "utils.py": "def f():\n    return 1\n", "new.py": "x = 1\n"}
    diffs = {(d.left_path, d.right_path): d for d in diff_projects(left, right)}
    assert set(diffs) == {("model.py", "model.py"), ("helpers.py", "utils.py"), (None, "new.py")}
    kinds = [row.kind for row in diffs[("model.py", "model.py")].rows]
    assert kinds == ["equal", "replace", "equal"]
    assert diffs[("helpers.py", "utils.py")].rows == ()  # identical after the rename: nothing to show
    assert [row.kind for row in diffs[(None, "new.py")].rows] == ["insert"]


def test_diff_is_bounded() -> None:
    left = {"a.py": "\n".join(f"x{i}" for i in range(5000))}
    right = {"a.py": "\n".join(f"y{i}" for i in range(5000))}
    rows = diff_projects(left, right)[0].rows
    assert len(rows) == MAX_DIFF_ROWS + 1
    assert rows[-1].kind == "skip"


def test_mermaid_records_are_read_defensively() -> None:
    flow = "flowchart TD\n A --> B"
    assert [d.text for d in mermaid_diagrams("llm_review", {"mermaid": flow})] == [flow]
    chunks = {"mermaid": "combined", "chunks": [{"index": 0, "mermaid": flow}, {"index": 1, "mermaid": None}, "junk"]}
    found = mermaid_diagrams("llm_review", chunks)
    assert [(d.label, d.text) for d in found] == [("part 1 of 3", flow)]
    assert mermaid_diagrams("llm_review", {"mermaid": 42, "chunks": "nope"}) == []
    assert mermaid_diagrams("llm_review", {}) == []


def test_redact_and_json() -> None:
    assert redact("a secret-long and secret", ("secret", "secret-long")) == "a [redacted] and [redacted]"
    assert pretty_json({"b": 1, "a": [1]}).startswith('{\n  "a"')
