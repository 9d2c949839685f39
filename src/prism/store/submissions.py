"""Repository for submissions: create (idempotently), read, stage results, counts."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from prism.evidence import Evidence, evidence_to_json
from prism.intake.project import Project
from prism.store.base import Base, utcnow
from prism.store.lifecycle import transition
from prism.store.models import (
    AuditEvent,
    Miner,
    SourceFile,
    StageResult,
    Submission,
    SubmissionArchive,
)
from prism.store.models import SubmissionStatus as S


@dataclass(frozen=True, slots=True)
class NewSubmission:
    hotkey: str
    filename: str
    data: bytes
    epoch: int
    origin: str = "bridge"
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    reason_code: str
    reason: str
    evidence: tuple[Evidence, ...]


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


_SUBMISSIONS = _table(Submission)
# Built once, on the tables, and run on the session's connection: an ORM `insert(Model)` goes
# through the ORM's bulk-insert machinery, which was most of the CPU of storing an upload.
_INSERT_ARCHIVE = insert(_table(SubmissionArchive))
_INSERT_SOURCE = insert(_table(SourceFile))
_INSERT_AUDIT = insert(_table(AuditEvent))
_INSERT_STAGE = insert(_table(StageResult))
_SAME_BYTES = select(_SUBMISSIONS.c.id).where(
    _SUBMISSIONS.c.hotkey == bindparam("hotkey"),
    _SUBMISSIONS.c.archive_sha256 == bindparam("archive_sha256"),
)
_SUBMISSION_INSERT = {
    "sqlite": sqlite_insert(_SUBMISSIONS)
    .on_conflict_do_nothing(index_elements=["hotkey", "archive_sha256"])
    .returning(_SUBMISSIONS.c.id),
    "postgresql": pg_insert(_SUBMISSIONS)
    .on_conflict_do_nothing(index_elements=["hotkey", "archive_sha256"])
    .returning(_SUBMISSIONS.c.id),
}
_MINER_UPSERT = {
    "sqlite": sqlite_insert(_table(Miner)).on_conflict_do_nothing(index_elements=["hotkey"]),
    "postgresql": pg_insert(_table(Miner)).on_conflict_do_nothing(index_elements=["hotkey"]),
}


def epoch_at(moment: datetime, epoch_seconds: int) -> int:
    return int(moment.timestamp()) // epoch_seconds


def find_same_bytes(session: Session, hotkey: str, archive_sha256: str) -> Submission | None:
    # The id alone first (almost every upload is new); the ORM object only for a repeat.
    found = session.connection().execute(_SAME_BYTES, {"hotkey": hotkey, "archive_sha256": archive_sha256})
    submission_id = found.scalar()
    return session.get(Submission, submission_id) if submission_id is not None else None


def create_submission(
    session: Session, new: NewSubmission, *, project: Project | None, rejection: Rejection | None, actor: str
) -> tuple[Submission, bool]:
    """Store a submission with its bytes and, when intake accepted it, its source snapshot.

    Returns (submission, created). The same bytes from the same hotkey return the first
    submission unchanged (created=False): a retrying client gets one id, not a duplicate.
    """
    archive_sha256 = hashlib.sha256(new.data).hexdigest()
    existing = find_same_bytes(session, new.hotkey, archive_sha256)
    if existing is not None:
        return existing, False
    _ensure_miner(session, new.hotkey)
    now = utcnow()
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "hotkey": new.hotkey,
        "status": S.PENDING.value,
        "reason_code": None,
        "reason": None,
        "code_hash": project.code_hash if project else None,
        "archive_sha256": archive_sha256,
        "filename": new.filename,
        "byte_size": len(new.data),
        "epoch": new.epoch,
        "origin": new.origin,
        "submit_metadata": new.metadata or {},
        "stage": None,
        "infra_attempts": 0,
        "next_attempt_at": None,
        "lease_owner": None,
        "lease_expires_at": None,
        "architecture_hash": None,
        "created_at": now,
        "updated_at": now,
        "started_at": None,
        "finished_at": None,
    }
    upsert = _SUBMISSION_INSERT.get(session.get_bind().dialect.name)
    if upsert is None:
        submission, created = _insert_with_orm(session, values)
        if not created:
            return submission, False
    else:
        # One statement, no savepoint: when the same bytes from this hotkey went in meanwhile
        # (a concurrent retry), it inserts nothing and the first submission is the answer.
        if session.connection().execute(upsert, values).scalar() is None:
            raced = find_same_bytes(session, new.hotkey, archive_sha256)
            if raced is None:
                raise LookupError(f"the insert of {archive_sha256} conflicted, yet no submission holds it")
            return raced, False
        # Every column was just written from `values`: the ORM object is attached as persistent
        # with all of them loaded, without reading the row back.
        submission = Submission(**values)
        make_transient_to_detached(submission)
        session.add(submission)
    # The rows that hang off the submission go in as plain INSERTs: the ORM's unit of work was
    # most of intake's database CPU, and nothing here needs identity tracking.
    now = utcnow()
    connection = session.connection()
    connection.execute(_INSERT_ARCHIVE, {"submission_id": submission.id, "data": new.data})
    if project is not None:
        connection.execute(
            _INSERT_SOURCE, [{"submission_id": submission.id, "path": p, "text": t} for p, t in project.files.items()]
        )
    connection.execute(
        _INSERT_AUDIT,
        {
            "submission_id": submission.id,
            "actor": actor,
            "action": "created",
            "to_status": S.PENDING.value,
            "data": {},
            "at": now,
        },
    )
    if project is not None:
        # Strictly after the "created" event, so the journey reads in order.
        now = max(utcnow(), now + timedelta(microseconds=1))
        connection.execute(
            _INSERT_STAGE,
            {
                "submission_id": submission.id,
                "stage": "intake",
                "outcome": "passed",
                "detail": f"{len(project.files)} file(s), entrypoint {project.entrypoint}",
                "data": {"files": sorted(project.files)},
                "evidence": [],
                "started_at": now,
                "finished_at": now,
            },
        )
    if rejection is not None:
        record_stage(session, submission.id, "intake", "rejected", detail=rejection.reason, evidence=rejection.evidence)
        transition(
            session,
            submission,
            S.REJECTED,
            actor=actor,
            reason_code=rejection.reason_code,
            reason=rejection.reason,
            evidence=rejection.evidence,
        )
    return submission, True


def _insert_with_orm(session: Session, values: dict[str, Any]) -> tuple[Submission, bool]:
    """A database without ON CONFLICT: the ORM insert in a savepoint, so a concurrent insert of
    the same bytes leaves the caller's transaction usable."""
    submission = Submission(**values)
    try:
        with session.begin_nested():
            session.add(submission)
            session.flush()
    except IntegrityError:
        raced = find_same_bytes(session, values["hotkey"], values["archive_sha256"])
        if raced is None:
            raise
        return raced, False
    return submission, True


def _ensure_miner(session: Session, hotkey: str) -> None:
    """The miner's row, created on first sight in one statement (no read, no savepoint)."""
    upsert = _MINER_UPSERT.get(session.get_bind().dialect.name)
    if upsert is not None:
        session.connection().execute(upsert, {"hotkey": hotkey, "first_seen_at": utcnow()})
        return
    if session.get(Miner, hotkey) is None:
        try:
            with session.begin_nested():
                session.add(Miner(hotkey=hotkey, first_seen_at=utcnow()))
        except IntegrityError:
            pass  # the same miner's first two submissions arrived together; the row exists now


def load_project(session: Session, submission_id: str) -> dict[str, str]:
    rows = session.scalars(select(SourceFile).where(SourceFile.submission_id == submission_id))
    return {row.path: row.text for row in rows}


def load_archive(session: Session, submission_id: str) -> bytes | None:
    row = session.get(SubmissionArchive, submission_id)
    return row.data if row else None


def record_stage(
    session: Session,
    submission_id: str,
    stage: str,
    outcome: str,
    *,
    detail: str | None = None,
    data: dict[str, Any] | None = None,
    evidence: Sequence[Evidence] = (),
    started_at: datetime | None = None,
) -> StageResult:
    """Persist (or replace) one stage's decision and evidence."""
    now = utcnow()
    row = session.get(StageResult, (submission_id, stage))
    if row is None:
        row = StageResult(submission_id=submission_id, stage=stage)
        session.add(row)
    row.outcome = outcome
    row.detail = detail
    row.data = data or {}
    row.evidence = evidence_to_json(evidence)
    row.started_at = started_at or now
    row.finished_at = now
    return row


def stage_results(session: Session, submission_id: str) -> list[StageResult]:
    return list(
        session.scalars(
            select(StageResult).where(StageResult.submission_id == submission_id).order_by(StageResult.finished_at)
        )
    )


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Submission.status, func.count()).group_by(Submission.status))
    counts = {status.value: 0 for status in S}
    counts.update({status: int(n) for status, n in rows})
    return counts


def queue_position(session: Session, submission: Submission) -> int | None:
    """1-based position among pending submissions, or None when it is not pending."""
    if submission.status != S.PENDING.value:
        return None
    ahead = session.scalar(
        select(func.count())
        .select_from(Submission)
        .where(Submission.status == S.PENDING.value, Submission.created_at < submission.created_at)
    )
    return int(ahead or 0) + 1


def oldest_pending_created_at(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Submission.created_at)).where(Submission.status == S.PENDING.value))
