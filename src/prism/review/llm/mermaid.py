"""A basic syntax check for the Mermaid diagram the reviewer must submit before its verdict.

PRISM does not render or fully parse Mermaid here; it checks what catches a model that skipped
the step or answered with prose: a known diagram type on the first line, balanced brackets
outside quoted labels, and a bounded size. The text is model output that a hostile submission
may have steered, so directives (`%%{...}%%`), `click` callbacks and raw HTML script tags are
refused: the operator console must still render it with Mermaid's `securityLevel: "strict"`.
"""

from __future__ import annotations

import re

from prism.review.llm.errors import LlmMermaidError

MAX_MERMAID_CHARS = 20_000
MAX_MERMAID_LINES = 400

DIAGRAM_TYPES = frozenset(
    {
        "flowchart",
        "graph",
        "sequenceDiagram",
        "classDiagram",
        "stateDiagram",
        "stateDiagram-v2",
        "erDiagram",
        "journey",
        "gantt",
        "pie",
        "mindmap",
        "timeline",
        "gitGraph",
        "quadrantChart",
        "requirementDiagram",
        "C4Context",
        "C4Container",
        "C4Component",
        "block-beta",
        "sankey-beta",
        "xychart-beta",
        "architecture-beta",
        "packet-beta",
        "kanban",
    }
)

_FENCE = re.compile(r"^\s*```(?:mermaid)?\s*\n(?P<body>.*?)\n\s*```\s*$", re.DOTALL)
_QUOTED = re.compile(r'"[^"\n]*"')
# Flowchart's asymmetric node shape `id>label]` closes a bracket it never opened.
_ASYMMETRIC = re.compile(r"(\w)>([^\]\n]*)\]")
_PAIRS = {")": "(", "]": "[", "}": "{"}
_FORBIDDEN = (re.compile(r"%%\{"), re.compile(r"^\s*click\s", re.MULTILINE), re.compile(r"<\s*script", re.IGNORECASE))


def normalize_mermaid(text: str) -> str:
    """Strip a Markdown code fence, which models often add, and surrounding blank lines."""
    match = _FENCE.match(text)
    body = match.group("body") if match else text
    return body.strip("\n").rstrip()


def validate_mermaid(text: str) -> str:
    """Return the normalized diagram, or raise `LlmMermaidError` naming what is wrong."""
    diagram = normalize_mermaid(text)
    if not diagram.strip():
        raise LlmMermaidError("the Mermaid diagram is empty")
    if len(diagram) > MAX_MERMAID_CHARS:
        raise LlmMermaidError(f"the Mermaid diagram exceeds max_mermaid_chars={MAX_MERMAID_CHARS}")
    lines = [line for line in diagram.splitlines() if line.strip() and not line.strip().startswith("%%")]
    if len(lines) > MAX_MERMAID_LINES:
        raise LlmMermaidError(f"the Mermaid diagram exceeds max_mermaid_lines={MAX_MERMAID_LINES}")
    header = lines[0].split()[0].rstrip(":;") if lines else ""
    if header not in DIAGRAM_TYPES:
        raise LlmMermaidError(f"the Mermaid diagram does not start with a known diagram type (got {header[:40]!r})")
    if len(lines) < 2:
        raise LlmMermaidError("the Mermaid diagram has a header but no content")
    for pattern in _FORBIDDEN:
        if pattern.search(diagram):
            raise LlmMermaidError("the Mermaid diagram contains a directive, click callback or script tag")
    _check_brackets(diagram)
    return diagram


def _check_brackets(diagram: str) -> None:
    # Over the whole text, not per line: class and state diagrams open braces across lines.
    stack: list[tuple[str, int]] = []
    for number, raw in enumerate(diagram.splitlines(), start=1):
        if raw.strip().startswith("%%"):
            continue
        line = _ASYMMETRIC.sub(r"\1[\2]", _QUOTED.sub('""', raw))
        for char in line:
            if char in "([{":
                stack.append((char, number))
            elif char in _PAIRS and (not stack or stack.pop()[0] != _PAIRS[char]):
                raise LlmMermaidError(f"the Mermaid diagram has an unbalanced {char!r} on line {number}")
    if stack:
        char, number = stack[-1]
        raise LlmMermaidError(f"the Mermaid diagram leaves {char!r} from line {number} open")
