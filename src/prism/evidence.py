"""The one shape of a decision's proof.

Every rejection and quarantine in PRISM carries `Evidence`: which rule fired, where, a hash of
the exact snippet (so an operator can check it against the stored source without the API ever
showing one miner's code to another), and a sentence a human can read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Evidence:
    rule_id: str
    path: str
    line: int
    explanation: str
    snippet_sha256: str = ""
    column: int = 0

    @classmethod
    def at(
        cls, rule_id: str, path: str, line: int, explanation: str, *, snippet: str = "", column: int = 0
    ) -> Evidence:
        """Build evidence from the snippet itself; only its hash is kept."""
        return cls(
            rule_id=rule_id,
            path=path,
            line=line,
            column=column,
            explanation=explanation,
            snippet_sha256=sha256_text(snippet) if snippet else "",
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evidence:
        return cls(
            rule_id=str(data["rule_id"]),
            path=str(data.get("path", "")),
            line=int(data.get("line", 0)),
            column=int(data.get("column", 0)),
            explanation=str(data.get("explanation", "")),
            snippet_sha256=str(data.get("snippet_sha256", "")),
        )


def evidence_to_json(items: Iterable[Evidence]) -> list[dict[str, Any]]:
    return [item.to_json() for item in items]


def evidence_from_json(items: Iterable[Mapping[str, Any]]) -> tuple[Evidence, ...]:
    return tuple(Evidence.from_json(item) for item in items)
