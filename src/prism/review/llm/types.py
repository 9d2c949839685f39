"""The values that cross the LLM review's boundary: its inputs besides the project, and its result.

All are frozen; `to_json()` gives what the pipeline stores. Nothing here holds a secret: the
transcript is redacted before it is built (see `llm_redact.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Literal

from prism.evidence import Evidence, evidence_to_json

Outcome = Literal["approve", "reject", "quarantine", "hold", "advisory_pass", "disabled"]


@dataclass(frozen=True, slots=True)
class SimilarSource:
    """An earlier submission the duplicate review found close; shown to the reviewer for plagiarism."""

    submission_id: str
    score: float
    files: Mapping[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", MappingProxyType(dict(sorted(self.files.items()))))


@dataclass(frozen=True, slots=True)
class Finding:
    """A finding PRISM derived itself, deterministically (a measured claim contradiction, ...).

    A reviewer's rejection citing lines that overlap one with the same rule is proven by it.
    """

    rule_id: str
    path: str
    line_start: int
    line_end: int
    explanation: str


@dataclass(frozen=True, slots=True)
class ReviewContext:
    # Earlier submissions PRISM's duplicate report made candidates (never anything else), shown as
    # reference for the plagiarism rule; a rejection can never rest on them (see `proof.py`).
    similar: tuple[SimilarSource, ...] = ()
    # Measured manifest figures (parameter_count, flops, tokens, bits_per_byte...) for the
    # post-evaluation claims review; None before evaluation.
    measured: Mapping[str, object] | None = None
    findings: tuple[Finding, ...] = ()

    def __post_init__(self) -> None:
        if self.measured is not None:
            object.__setattr__(self, "measured", MappingProxyType(dict(self.measured)))


@dataclass(frozen=True, slots=True)
class ClaimedEvidence:
    """One evidence item as the model claimed it; `problem` says why PRISM could not verify it."""

    path: str
    line_start: int
    line_end: int
    quote: str
    rule_id: str
    explanation: str
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One message of a conversation, redacted. `role` is system, user, assistant, tool_call, tool or error.

    `content` is capped (see `transcript.py`); `chars` and `sha256` describe the whole redacted
    text, so an operator can tell what was cut and match it against a provider's own log.
    """

    chunk: int
    attempt: int
    role: str
    content: str
    name: str = ""
    chars: int = 0
    sha256: str = ""
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """Lines `line_start..line_end` (1-based, inclusive) of one file, reviewed in one request."""

    path: str
    line_start: int
    line_end: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


ChunkOutcome = Literal["approve", "reject", "quarantine", "provider_error", "protocol_error"]


@dataclass(frozen=True, slots=True)
class ChunkReview:
    """What one part of the project got: its own Mermaid, verdict and verified evidence."""

    index: int
    spans: tuple[ChunkSpan, ...]
    outcome: ChunkOutcome
    attempts: int
    mermaid: str | None = None
    reason: str = ""
    rule_ids: tuple[str, ...] = ()
    confidence: float | None = None
    verified_evidence: tuple[Evidence, ...] = ()
    unverified_claims: tuple[ClaimedEvidence, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "spans": [span.to_json() for span in self.spans],
            "outcome": self.outcome,
            "attempts": self.attempts,
            "mermaid": self.mermaid,
            "reason": self.reason,
            "rule_ids": list(self.rule_ids),
            "confidence": self.confidence,
            "verified_evidence": evidence_to_json(self.verified_evidence),
            "unverified_claims": [claim.to_json() for claim in self.unverified_claims],
        }


@dataclass(frozen=True, slots=True)
class LlmReviewResult:
    """The combined decision over every chunk.

    `evidence` is what the pipeline attaches to the decision: the verified items for a
    rejection, pointers to the unverified claims for a quarantine, the failure for a hold or an
    advisory pass. `verified_evidence` holds only items PRISM checked against the source.
    """

    outcome: Outcome
    reason: str
    evidence: tuple[Evidence, ...] = ()
    verified_evidence: tuple[Evidence, ...] = ()
    unverified_claims: tuple[ClaimedEvidence, ...] = ()
    chunks: tuple[ChunkReview, ...] = ()
    transcript: tuple[TranscriptEntry, ...] = ()
    rule_ids: tuple[str, ...] = ()
    confidence: float | None = None
    model: str = ""
    chunks_total: int = 0

    @property
    def chunks_reviewed(self) -> int:
        """Chunks that reached a verdict (approve, reject or quarantine)."""
        return sum(1 for chunk in self.chunks if chunk.outcome in ("approve", "reject", "quarantine"))

    @property
    def mermaid(self) -> str | None:
        """Every chunk's diagram, each after a `%%` comment naming its chunk; None when there is none."""
        diagrams = [chunk for chunk in self.chunks if chunk.mermaid]
        if not diagrams:
            return None
        if len(self.chunks) == 1:
            return diagrams[0].mermaid
        return "\n\n".join(f"%% chunk {c.index + 1} of {len(self.chunks)}\n{c.mermaid}" for c in diagrams)

    @property
    def blocks(self) -> bool:
        """True when the submission must not continue now (reject, quarantine or hold)."""
        return self.outcome in ("reject", "quarantine", "hold")

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "model": self.model,
            "rule_ids": list(self.rule_ids),
            "confidence": self.confidence,
            "chunks_total": self.chunks_total,
            "chunks_reviewed": self.chunks_reviewed,
            "mermaid": self.mermaid,
            "evidence": evidence_to_json(self.evidence),
            "verified_evidence": evidence_to_json(self.verified_evidence),
            "unverified_claims": [claim.to_json() for claim in self.unverified_claims],
            "chunks": [chunk.to_json() for chunk in self.chunks],
            "transcript": [entry.to_json() for entry in self.transcript],
        }
