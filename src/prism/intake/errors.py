"""Intake's one error: an archive or upload PRISM refuses, with the evidence of why.

    PrismError
    └── IntakeRejected   hostile, corrupt or unsupported input; `reason_code` names the rule

Every byte sequence given to intake ends either as a `Project` or as `IntakeRejected`; the
adapters in `archive.py` translate whatever `zipfile`/`zlib` raise into this at the boundary.
"""

from __future__ import annotations

from prism.errors import PrismError
from prism.evidence import Evidence


class IntakeRejected(PrismError):
    """The upload is refused. `reason_code` is the rule id of the first evidence item."""

    def __init__(self, reason_code: str, evidence: tuple[Evidence, ...]) -> None:
        self.reason_code = reason_code
        self.evidence = evidence
        detail = evidence[0].explanation if evidence else reason_code
        super().__init__(f"{reason_code}: {detail}")


def reject(reason_code: str, explanation: str, *, path: str = "", snippet: str = "") -> IntakeRejected:
    """Build the rejection for one rule; intake stops at the first hostile property it finds."""
    return IntakeRejected(reason_code, (Evidence.at(reason_code, path, 0, explanation, snippet=snippet),))
