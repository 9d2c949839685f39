"""The Mermaid step is checked for basic syntax; prose or broken diagrams count as protocol failures."""

from __future__ import annotations

import pytest

from prism.review.llm.errors import LlmMermaidError
from prism.review.llm.mermaid import MAX_MERMAID_CHARS, validate_mermaid

VALID = [
    "flowchart TD\n  A[build_model] --> B(nn.Linear)\n  B --> C{train_step}",
    "```mermaid\ngraph LR\n  A-->B\n```",
    "sequenceDiagram\n  Harness->>Model: batch\n  Model-->>Harness: logits",
    "classDiagram\n  class Net {\n    +forward(x)\n  }",
    'flowchart TD\n  A["weird ) label"] --> B>asymmetric]',
    "%% comment first\nstateDiagram-v2\n  [*] --> Build",
]

INVALID = [
    ("", "empty"),
    ("The code builds a linear model and is safe.", "known diagram type"),
    ("flowchart TD", "no content"),
    ("flowchart TD\n  A[open --> B", "open"),
    ("flowchart TD\n  A --> B]", "unbalanced"),
    ("%%{init: {'securityLevel': 'loose'}}%%\nflowchart TD\n  A --> B", "directive"),
    ("flowchart TD\n  A --> B\n  click A callback", "click"),
    ("flowchart TD\n  A[<script>alert(1)</script>] --> B", "script"),
    ("flowchart TD\n" + "  A --> B\n" * (MAX_MERMAID_CHARS // 10), "max_mermaid"),
]


@pytest.mark.parametrize("text", VALID)
def test_plausible_diagrams_pass(text: str) -> None:
    diagram = validate_mermaid(text)

    assert "```" not in diagram
    assert diagram.strip()


@pytest.mark.parametrize(("text", "problem"), INVALID)
def test_broken_diagrams_are_refused(text: str, problem: str) -> None:
    with pytest.raises(LlmMermaidError, match=problem):
        validate_mermaid(text)
