"""Claiming work under a lease, keeping it alive, and proving we still hold it before writing.

SQLite claims inside BEGIN IMMEDIATE (one writer at a time); PostgreSQL uses
`FOR UPDATE SKIP LOCKED` so several workers never pick the same row. A lease that expired
(its worker died) is put back to `pending`; a live worker renews its lease by heartbeat, so a
long evaluation is never taken from it. Every write of a step's result is fenced: it checks the
lease is still ours in the same transaction, so a worker that lost its lease cannot write.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from prism.errors import PrismError
from prism.store.base import utcnow
from prism.store.db import write_session
from prism.store.lifecycle import transition
from prism.store.models import Submission
from prism.store.models import SubmissionStatus as S


class LeaseLost(PrismError):
    """Another worker owns this submission now; stop without writing anything."""


@dataclass(frozen=True, slots=True)
class Claim:
    submission_id: str
    worker_id: str


def _locked(session: Session, query):  # type: ignore[no-untyped-def]
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


# A transaction that takes SQLite's write lock at BEGIN, waiting (with back-off) while it is busy.
write_transaction = write_session


def requeue_expired(session: Session, now: datetime) -> int:
    """Running submissions whose worker stopped renewing the lease go back to the queue."""
    expired = session.scalars(
        _locked(
            session,
            select(Submission)
            .where(Submission.status == S.RUNNING.value, Submission.lease_expires_at < now)
            .order_by(Submission.created_at, Submission.id),
        )
    ).all()
    for submission in expired:
        transition(
            session,
            submission,
            S.PENDING,
            actor="worker",
            reason_code="lease_expired",
            reason=f"lease held by {submission.lease_owner} expired",
        )
    return len(expired)


def retry_due_holds(session: Session, now: datetime) -> int:
    """Held submissions whose back-off has passed are retried automatically."""
    due = session.scalars(
        _locked(
            session,
            select(Submission).where(
                Submission.status == S.HELD.value,
                Submission.next_attempt_at.is_not(None),
                Submission.next_attempt_at <= now,
            ),
        )
    ).all()
    for submission in due:
        transition(
            session,
            submission,
            S.PENDING,
            actor="worker",
            reason_code="hold_retry",
            reason="automatic retry after a hold",
        )
    return len(due)


def reap_expired(sessions: sessionmaker[Session]) -> int:
    """Requeue expired leases now (called by every worker, busy or idle, so none waits for a claim).

    A requeued submission keeps its `created_at`, and claims go oldest first, so it is taken
    before anything that arrived after it: recovery does not break queue order.
    """
    now = utcnow()
    with sessions() as session:
        # A cheap read first: the write lock is only taken when there is something to requeue.
        found = session.scalar(
            select(Submission.id)
            .where(Submission.status == S.RUNNING.value, Submission.lease_expires_at < now)
            .limit(1)
        )
    if found is None:
        return 0
    with write_session(sessions) as session:
        return requeue_expired(session, now)


def claim_next(sessions: sessionmaker[Session], worker_id: str, *, lease_seconds: int) -> Claim | None:
    now = utcnow()
    with write_transaction(sessions) as session:
        requeue_expired(session, now)
        retry_due_holds(session, now)
        submission = session.scalars(
            _locked(
                session,
                select(Submission)
                .where(
                    Submission.status == S.PENDING.value,
                    or_(Submission.next_attempt_at.is_(None), Submission.next_attempt_at <= now),
                )
                .order_by(Submission.created_at, Submission.id)
                .limit(1),
            )
        ).first()
        if submission is None:
            return None
        transition(session, submission, S.RUNNING, actor=f"worker:{worker_id}")
        submission.lease_owner = worker_id
        submission.lease_expires_at = now + timedelta(seconds=lease_seconds)
        return Claim(submission.id, worker_id)


def renew_lease(sessions: sessionmaker[Session], claim: Claim, *, lease_seconds: int) -> bool:
    with sessions() as session, session.begin():
        result = session.execute(
            update(Submission)
            .where(
                Submission.id == claim.submission_id,
                Submission.lease_owner == claim.worker_id,
                Submission.status == S.RUNNING.value,
            )
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


@contextmanager
def fenced(sessions: sessionmaker[Session], claim: Claim) -> Iterator[tuple[Session, Submission]]:
    """A write transaction that only proceeds while `claim` still holds the lease."""
    with write_transaction(sessions) as session:
        submission = session.get(Submission, claim.submission_id, with_for_update=True)
        if submission is None or submission.lease_owner != claim.worker_id or submission.status != S.RUNNING.value:
            raise LeaseLost(f"lease on {claim.submission_id} is no longer held by {claim.worker_id}")
        yield session, submission


def release_claim(sessions: sessionmaker[Session], claim: Claim, *, reason: str) -> None:
    """Put a claimed submission back to `pending` now, without counting an infrastructure retry."""
    with fenced(sessions, claim) as (session, submission):
        transition(
            session, submission, S.PENDING, actor=f"worker:{claim.worker_id}", reason_code="released", reason=reason
        )
