"""Validated results, architecture ownership, and the reads that scoring surfaces need."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from prism.scoring.ranking import ScoredResult
from prism.store.base import utcnow
from prism.store.models import Architecture, Evaluation, Submission
from prism.store.models import SubmissionStatus as S
from prism.store.weights_generation import weights_changed


def record_evaluation(session: Session, evaluation: Evaluation) -> Evaluation:
    """Insert once; a second call for the same submission returns the stored row unchanged."""
    existing = session.get(Evaluation, evaluation.submission_id)
    if existing is not None:
        return existing
    session.add(evaluation)
    session.flush()
    weights_changed(session)
    return evaluation


def claim_architecture(
    session: Session, *, graph_hash: str, hotkey: str, submission_id: str, graph: dict[str, Any]
) -> Architecture:
    """First discovery wins, forever: an existing owner is never replaced."""
    existing = session.get(Architecture, graph_hash)
    if existing is not None:
        return existing
    row = Architecture(
        graph_hash=graph_hash,
        owner_hotkey=hotkey,
        owner_submission_id=submission_id,
        graph=graph,
        discovered_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        claimed = session.get(Architecture, graph_hash)
        if claimed is None:
            raise
        return claimed
    weights_changed(session)
    return row


def eligible_results(session: Session, *, epoch: int | None = None, eligible_only: bool = True) -> list[ScoredResult]:
    """Completed submissions' validated results; quarantined/held/failed never appear."""
    query = (
        select(Evaluation, Submission.created_at)
        .join(Submission, Submission.id == Evaluation.submission_id)
        .where(Submission.status == S.COMPLETED.value)
    )
    if eligible_only:
        query = query.where(Evaluation.score_eligible.is_(True))
    if epoch is not None:
        query = query.where(Evaluation.epoch == epoch)
    return [
        ScoredResult(
            submission_id=ev.submission_id,
            hotkey=ev.hotkey,
            final_score=ev.final_score,
            bits_per_byte=ev.bits_per_byte,
            architecture_hash=ev.architecture_hash,
            created_at=created_at,
        )
        for ev, created_at in session.execute(query)
    ]


def latest_scored_epoch(session: Session, *, at_or_before: int) -> int | None:
    return session.scalar(
        select(func.max(Evaluation.epoch))
        .join(Submission, Submission.id == Evaluation.submission_id)
        .where(
            Evaluation.score_eligible.is_(True),
            Submission.status == S.COMPLETED.value,
            Evaluation.epoch <= at_or_before,
        )
    )


def owners(session: Session) -> dict[str, str]:
    # Two columns only: loading whole rows would decode every family's stored graph JSON.
    rows = session.execute(select(Architecture.graph_hash, Architecture.owner_hotkey))
    return {graph_hash: owner for graph_hash, owner in rows}


def architectures(session: Session) -> list[tuple[Architecture, int]]:
    """Each family with the number of completed submissions attached to it."""
    members = (
        select(Submission.architecture_hash, func.count().label("n"))
        .where(Submission.status == S.COMPLETED.value, Submission.architecture_hash.is_not(None))
        .group_by(Submission.architecture_hash)
        .subquery()
    )
    rows = session.execute(
        select(Architecture, func.coalesce(members.c.n, 0))
        .outerjoin(members, members.c.architecture_hash == Architecture.graph_hash)
        .order_by(Architecture.discovered_at)
    )
    return [(arch, int(n)) for arch, n in rows]
