"""What one claimed submission's steps can see, and the value each step returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.evidence import Evidence
from prism.intake.project import Project
from prism.runtime_config import RuntimeConfig
from prism.sandbox.spec import Sandbox

Outcome = Literal["passed", "rejected", "quarantined", "held", "failed"]


@dataclass(frozen=True, slots=True)
class StepOutcome:
    outcome: Outcome
    reason_code: str | None = None
    detail: str | None = None
    # The step's report as stored JSON (the one place a JSON document leaves a step).
    record: Mapping[str, Any] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()
    # Set by the score step: the architecture family this submission joins.
    architecture_hash: str | None = None

    @classmethod
    def passed(cls, detail: str | None = None, **record: Any) -> StepOutcome:
        return cls("passed", detail=detail, record=record)


@dataclass(frozen=True, slots=True)
class SubmissionInfo:
    id: str
    hotkey: str
    code_hash: str | None
    filename: str
    created_at: datetime
    infra_attempts: int


def _no_heldout_sandbox() -> Sandbox | None:
    return None


@dataclass
class StepContext:
    settings: Settings
    runtime_config: RuntimeConfig
    runtime_config_version: int | None
    sessions: sessionmaker[Session]
    submission: SubmissionInfo
    project: Project
    work_dir: Path
    sandbox_factory: Callable[[], Sandbox]
    # The held-out phase's own sandbox (`prism.sandbox.get_heldout_sandbox`); None: `sandbox`.
    heldout_sandbox_factory: Callable[[], Sandbox | None] = _no_heldout_sandbox
    # Stored records of the stages already finished (stage -> record), for later steps to read.
    records: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    # Their outcomes: "passed", or "released" where an operator let a quarantine continue.
    outcomes: dict[str, str] = field(default_factory=dict)
    _sandbox: Sandbox | None = None

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = self.sandbox_factory()
        return self._sandbox

    @property
    def heldout_sandbox(self) -> Sandbox | None:
        """Where the held-out phase runs when not on `sandbox` (a local one on Platform's scorer)."""
        return self.heldout_sandbox_factory()
