"""Errors of the evaluation family.

    PrismError
    └── EvaluationError              the evaluation could not produce a trustworthy result
        ├── DatasetError             locked data missing, altered or malformed (operator's fault)
        ├── HarnessProtocolError     the harness's own output could not be read (infrastructure)
        ├── EvaluationRejected       the miner broke a rule: parameter cap, causality, non-finite
        │                            loss, wrong logits shape, impossible first-batch loss,
        │                            manifest mismatch (terminal, carries Evidence)
        └── MinerCodeFailed          the miner's code crashed or ran out of time (terminal)

Sandbox infrastructure errors (`prism.sandbox.errors.SandboxError`) are not caught here: they
propagate so the worker can retry.
"""

from __future__ import annotations

from prism.errors import PrismError
from prism.evidence import Evidence


class EvaluationError(PrismError):
    """Base of every evaluation failure."""


class DatasetError(EvaluationError):
    """The locked dataset is missing, altered or malformed; never produce a score from it."""


class HarnessProtocolError(EvaluationError):
    """The trusted harness did not report a readable result (not the miner's fault)."""


class EvaluationRejected(EvaluationError):
    """A deterministic rule violation caused by the submission."""

    def __init__(self, reason_code: str, evidence: tuple[Evidence, ...]) -> None:
        self.reason_code = reason_code
        self.evidence = tuple(evidence)
        detail = "; ".join(item.explanation for item in self.evidence) or reason_code
        super().__init__(f"{reason_code}: {detail}")


class MinerCodeFailed(EvaluationError):
    """The submitted code crashed, hung or was killed; terminal, never retried."""

    def __init__(self, reason_code: str, detail: str) -> None:
        self.reason_code = reason_code
        self.detail = detail
        super().__init__(f"{reason_code}: {detail}")
