"""Taking a submission in: intake runs at once, so a hostile archive is stored as `rejected`
with its evidence (never an error), and a good one as `pending` with its source snapshot."""

from __future__ import annotations

from contextlib import suppress

from sqlalchemy.orm import Session

from prism.config import Settings
from prism.intake.archive import read_project
from prism.intake.errors import IntakeRejected
from prism.intake.limits import IntakeLimits
from prism.intake.project import Project
from prism.review.similarity import fingerprint_project
from prism.review.similarity_errors import FingerprintError
from prism.store.base import utcnow
from prism.store.fingerprints import save_fingerprint
from prism.store.models import Submission
from prism.store.submissions import NewSubmission, Rejection, create_submission, epoch_at


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
    submission, created = create_submission(session, new, project=project, rejection=rejection, actor=actor)
    if created and project is not None:
        # Indexed now, not when a worker reaches it: a copy checked first must still find it.
        # A file that does not parse cannot be fingerprinted; static review rejects it with evidence.
        with suppress(FingerprintError):
            save_fingerprint(session, submission.id, fingerprint_project(project))
    return submission, created
