"""Taking a submission in: intake runs at once, so a hostile archive is stored as `rejected`
with its evidence (never an error), and a good one as `pending` with its source snapshot."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from prism.config import Settings
from prism.intake.archive import read_project
from prism.intake.errors import IntakeRejected
from prism.intake.limits import IntakeLimits
from prism.intake.project import Project
from prism.store.base import utcnow
from prism.store.models import Submission
from prism.store.submissions import NewSubmission, Rejection, create_submission, epoch_at


@dataclass(frozen=True, slots=True)
class Prepared:
    """A submission after intake, before storage: its project, or why intake refused it."""

    new: NewSubmission
    project: Project | None
    rejection: Rejection | None


def prepare_submission(
    settings: Settings,
    *,
    hotkey: str,
    filename: str,
    data: bytes,
    origin: str,
    metadata: dict[str, object] | None = None,
) -> Prepared:
    """Intake without the database, so it never runs while a write lock is held."""
    project: Project | None = None
    rejection: Rejection | None = None
    try:
        project = read_project(data, filename, limits=IntakeLimits.from_settings(settings))
    except IntakeRejected as exc:
        rejection = Rejection(exc.reason_code, str(exc), exc.evidence)
    new = NewSubmission(
        hotkey=hotkey,
        filename=filename,
        data=data,
        epoch=epoch_at(utcnow(), settings.epoch_seconds),
        origin=origin,
        metadata=dict(metadata or {}),
    )
    return Prepared(new, project, rejection)


def store_prepared(session: Session, prepared: Prepared, *, actor: str) -> tuple[Submission, bool]:
    return create_submission(session, prepared.new, project=prepared.project, rejection=prepared.rejection, actor=actor)


def accept_submission(
    session: Session,
    settings: Settings,
    *,
    hotkey: str,
    filename: str,
    data: bytes,
    origin: str,
    metadata: dict[str, object] | None = None,
    actor: str,
) -> tuple[Submission, bool]:
    prepared = prepare_submission(
        settings, hotkey=hotkey, filename=filename, data=data, origin=origin, metadata=metadata
    )
    return store_prepared(session, prepared, actor=actor)
