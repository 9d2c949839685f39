"""The one place a submission's status changes. Illegal moves raise; every move is audited.

pending ──▶ running ──▶ completed | failed | rejected | quarantined | held
   ▲           │
   └───────────┘  (lease expired, infrastructure retry)
quarantined | held ──▶ pending (released: continues where it stopped) | rejected
pending ──▶ rejected   (intake refused the archive at the bridge)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from prism.errors import PrismError
from prism.evidence import Evidence, evidence_to_json
from prism.store.base import utcnow
from prism.store.models import AuditEvent, Submission
from prism.store.models import SubmissionStatus as S
from prism.store.weights_generation import weights_changed

ALLOWED: dict[S, frozenset[S]] = {
    S.PENDING: frozenset({S.RUNNING, S.REJECTED}),
    S.RUNNING: frozenset({S.PENDING, S.COMPLETED, S.FAILED, S.REJECTED, S.QUARANTINED, S.HELD}),
    S.QUARANTINED: frozenset({S.PENDING, S.REJECTED}),
    S.HELD: frozenset({S.PENDING, S.REJECTED}),
    S.FAILED: frozenset({S.PENDING}),
    S.COMPLETED: frozenset(),
    S.REJECTED: frozenset(),
}
TERMINAL = frozenset({S.COMPLETED, S.REJECTED})
FINISHED = frozenset({S.COMPLETED, S.FAILED, S.REJECTED})


class IllegalTransition(PrismError):
    def __init__(self, submission_id: str, current: str, target: str) -> None:
        super().__init__(f"submission {submission_id} cannot move from {current} to {target}")
        self.current = current
        self.target = target


def audit(
    session: Session,
    *,
    submission_id: str | None,
    actor: str,
    action: str,
    from_status: str | None = None,
    to_status: str | None = None,
    reason_code: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEvent(
            submission_id=submission_id,
            actor=actor,
            action=action,
            from_status=from_status,
            to_status=to_status,
            reason_code=reason_code,
            reason=reason,
            data=data or {},
            at=utcnow(),
        )
    )


def transition(
    session: Session,
    submission: Submission,
    target: S,
    *,
    actor: str,
    reason_code: str | None = None,
    reason: str | None = None,
    evidence: Sequence[Evidence] = (),
    data: dict[str, Any] | None = None,
) -> None:
    current = S(submission.status)
    if target not in ALLOWED[current]:
        raise IllegalTransition(submission.id, current.value, target.value)
    now = utcnow()
    submission.status = target.value
    submission.updated_at = now
    if target is S.COMPLETED:
        # Completed is terminal and the only state the weights read: the one move that changes them.
        weights_changed(session)
    if target is S.RUNNING:
        submission.started_at = submission.started_at or now
    if target in FINISHED or target in (S.QUARANTINED, S.HELD):
        submission.finished_at = now if target in FINISHED else None
        submission.lease_owner = None
        submission.lease_expires_at = None
    if target is S.PENDING:
        submission.lease_owner = None
        submission.lease_expires_at = None
    if target is not S.RUNNING and target is not S.PENDING:
        submission.reason_code = reason_code
        submission.reason = reason
    elif target is S.PENDING and current in (S.QUARANTINED, S.HELD, S.FAILED):
        submission.reason_code = None
        submission.reason = None
    payload = dict(data or {})
    if evidence:
        payload["evidence"] = evidence_to_json(evidence)
    audit(
        session,
        submission_id=submission.id,
        actor=actor,
        action="transition",
        from_status=current.value,
        to_status=target.value,
        reason_code=reason_code,
        reason=reason,
        data=payload,
    )
