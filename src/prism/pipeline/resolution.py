"""Operators resolve quarantined and held submissions: release (continue where it stopped) or reject."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from prism.errors import PrismError
from prism.evidence import evidence_from_json
from prism.store.lifecycle import audit, transition
from prism.store.models import StageResult, Submission
from prism.store.models import SubmissionStatus as S

REVIEWABLE = (S.QUARANTINED.value, S.HELD.value)
Action = Literal["release", "reject"]


class NotResolvable(PrismError):
    """The submission does not exist or is not waiting for an operator."""


@dataclass(frozen=True, slots=True)
class QueueItem:
    submission_id: str
    hotkey: str
    status: str
    reason_code: str | None
    reason: str | None
    stage: str | None
    updated_at: str


def review_queue(session: Session) -> list[QueueItem]:
    rows = session.scalars(select(Submission).where(Submission.status.in_(REVIEWABLE)).order_by(Submission.updated_at))
    return [
        QueueItem(s.id, s.hotkey, s.status, s.reason_code, s.reason, s.stage, s.updated_at.isoformat()) for s in rows
    ]


def resolve(session: Session, submission_id: str, *, action: Action, reason: str, actor: str) -> Submission:
    """Release: the stage that stopped it counts as passed and the worker continues after it.
    Reject: terminal, with the stopping stage's evidence carried into the rejection."""
    submission = session.get(Submission, submission_id, with_for_update=True)
    if submission is None or submission.status not in REVIEWABLE:
        state = submission.status if submission else "missing"
        raise NotResolvable(f"submission {submission_id} is {state}, not quarantined or held")
    if not reason.strip():
        raise NotResolvable("a resolution needs a reason")
    stopped = session.get(StageResult, (submission_id, submission.stage)) if submission.stage else None
    if action == "release":
        if stopped is not None and submission.status == S.QUARANTINED.value:
            stopped.outcome = "released"
            stopped.detail = f"released by {actor}: {reason}"
        submission.next_attempt_at = None
        transition(session, submission, S.PENDING, actor=actor, reason_code="operator.release", reason=reason)
    else:
        evidence = evidence_from_json(stopped.evidence) if stopped is not None else ()
        transition(
            session,
            submission,
            S.REJECTED,
            actor=actor,
            reason_code="operator.reject",
            reason=reason,
            evidence=evidence,
        )
    audit(session, submission_id=submission_id, actor=actor, action=f"review_queue.{action}", reason=reason)
    return submission
