"""The tool protocol: the two tools the reviewer must call, and strict parsing of its calls.

The outcome of a review comes only from these calls (and then the evidence gate), never from
free text, so nothing a submission makes the model *say* can decide anything. Parsing is strict:
an argument that is not JSON, a missing field or a wrong type is a protocol error, retried.
Lengths are bounded so a runaway answer cannot bloat what PRISM stores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from prism.review.llm.errors import LlmProtocolError
from prism.review.llm.gate import sanitize_rule_id
from prism.review.llm.types import ClaimedEvidence

MERMAID_TOOL = "submit_mermaid"
VERDICT_TOOL = "submit_verdict"
MAX_EVIDENCE_ITEMS = 20
MAX_TEXT_CHARS = 4_000
MAX_QUOTE_CHARS = 4_000
MAX_RULE_IDS = 20

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": MERMAID_TOOL,
            "description": (
                "Step 1, required before any verdict: a Mermaid diagram of how the reviewed code is structured "
                "and where data flows (files, functions, I/O, network, subprocesses)."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "mermaid": {"type": "string", "description": "Mermaid source, e.g. starting with 'flowchart TD'."},
                    "notes": {"type": "string", "description": "Short notes on what the diagram shows."},
                },
                "required": ["mermaid"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": VERDICT_TOOL,
            "description": (
                "Step 2, only after submit_mermaid: the verdict. A rejection must cite evidence: the file path, "
                "the line range, and the exact text of those lines copied verbatim (without the line-number prefix)."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "verdict": {"type": "string", "enum": ["approve", "reject"]},
                    "reason": {"type": "string"},
                    "rule_ids": {"type": "array", "items": {"type": "string"}},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "evidence": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "path": {"type": "string"},
                                "line_start": {"type": "integer", "minimum": 1},
                                "line_end": {"type": "integer", "minimum": 1},
                                "quote": {"type": "string"},
                                "rule_id": {"type": "string"},
                                "explanation": {"type": "string"},
                            },
                            "required": ["path", "line_start", "line_end", "quote", "rule_id"],
                        },
                    },
                },
                "required": ["verdict", "reason", "rule_ids", "confidence", "evidence"],
            },
        },
    },
]


@dataclass(frozen=True, slots=True)
class MermaidCall:
    mermaid: str
    notes: str


@dataclass(frozen=True, slots=True)
class VerdictCall:
    verdict: Literal["approve", "reject"]
    reason: str
    rule_ids: tuple[str, ...]
    confidence: float | None
    evidence: tuple[ClaimedEvidence, ...]


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} more characters dropped]"


def _string(data: dict[str, Any], key: str, *, required: bool, limit: int = MAX_TEXT_CHARS) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise LlmProtocolError(f"argument {key!r} must be a string")
    return _bounded(value, limit)


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    # bool is an int in Python; a model sending `true` for a line number is broken, not line 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise LlmProtocolError(f"evidence {key!r} must be an integer")
    return value


def _arguments(raw: str) -> dict[str, Any]:
    try:
        data = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise LlmProtocolError(f"tool arguments are not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise LlmProtocolError("tool arguments must be a JSON object")
    return data


def _evidence(item: object) -> ClaimedEvidence:
    if not isinstance(item, dict):
        raise LlmProtocolError("each evidence item must be an object")
    return ClaimedEvidence(
        path=_string(item, "path", required=True, limit=400),
        line_start=_int(item, "line_start"),
        line_end=_int(item, "line_end"),
        quote=_string(item, "quote", required=True, limit=MAX_QUOTE_CHARS),
        rule_id=sanitize_rule_id(_string(item, "rule_id", required=False, limit=200) or "unspecified"),
        explanation=_string(item, "explanation", required=False),
    )


def _confidence(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LlmProtocolError("argument 'confidence' must be a number")
    return min(1.0, max(0.0, float(value)))


def parse_call(name: str, raw_arguments: str) -> MermaidCall | VerdictCall:
    """Parse one tool call; anything but the two tools with valid arguments is a protocol error."""
    data = _arguments(raw_arguments)
    if name == MERMAID_TOOL:
        return MermaidCall(
            mermaid=_string(data, "mermaid", required=True, limit=10**6), notes=_string(data, "notes", required=False)
        )
    if name != VERDICT_TOOL:
        raise LlmProtocolError(f"unknown tool {name[:60]!r}")
    verdict = data.get("verdict")
    if verdict not in ("approve", "reject"):
        raise LlmProtocolError("argument 'verdict' must be 'approve' or 'reject'")
    raw_rules = data.get("rule_ids") or []
    raw_evidence = data.get("evidence") or []
    if not isinstance(raw_rules, list) or not all(isinstance(r, str) for r in raw_rules):
        raise LlmProtocolError("argument 'rule_ids' must be a list of strings")
    if not isinstance(raw_evidence, list):
        raise LlmProtocolError("argument 'evidence' must be a list")
    return VerdictCall(
        verdict="approve" if verdict == "approve" else "reject",
        reason=_string(data, "reason", required=False),
        rule_ids=tuple(dict.fromkeys(sanitize_rule_id(r) for r in raw_rules[:MAX_RULE_IDS])),
        confidence=_confidence(data.get("confidence")),
        evidence=tuple(_evidence(item) for item in raw_evidence[:MAX_EVIDENCE_ITEMS]),
    )
