"""Housekeeping after submissions end: work dirs, stray sandbox temp dirs, empty job cgroups.

A worker killed during a sandbox phase leaves a `prism-project-*` temp dir and an empty cgroup
per controller; failed and rejected submissions keep their work dirs (the trained weights, up
to ~1.8 GB each). Whatever an operator may want to inspect is kept for `work_retention_hours`,
then removed. Every worker runs this now and then between claims; it is idempotent, so several
workers doing it at once is harmless.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.sandbox.cgroups import detect_layout
from prism.sandbox.errors import SandboxUnavailable
from prism.store.base import utcnow
from prism.store.models import Submission
from prism.store.models import SubmissionStatus as S

log = logging.getLogger(__name__)

ENDED = (S.COMPLETED.value, S.FAILED.value, S.REJECTED.value)
TEMP_PREFIX = "prism-project-"
INTERVAL_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class CleanupReport:
    work_dirs: int
    temp_dirs: int
    cgroups: int


def _older_than(path: Path, seconds: float, now: float) -> bool:
    try:
        return now - path.stat().st_mtime > seconds
    except OSError:
        return False


def clean_work_dirs(settings: Settings, sessions: sessionmaker[Session]) -> int:
    """Remove the work dir of every ended submission finished more than the retention ago.

    Quarantined and held submissions keep theirs: a release continues where they stopped.
    """
    root = Path(settings.data_dir) / "work"
    if not root.is_dir():
        return 0
    names = [entry.name for entry in root.iterdir() if entry.is_dir()]
    if not names:
        return 0
    cutoff = utcnow() - timedelta(hours=settings.work_retention_hours)
    removed = 0
    with sessions() as session:
        for start in range(0, len(names), 500):
            batch = names[start : start + 500]
            ended = session.scalars(
                select(Submission.id).where(
                    Submission.id.in_(batch),
                    Submission.status.in_(ENDED),
                    Submission.finished_at.is_not(None),
                    Submission.finished_at <= cutoff,
                )
            ).all()
            for submission_id in ended:
                shutil.rmtree(root / submission_id, ignore_errors=True)
                removed += 1
    return removed


def clean_temp_dirs(settings: Settings, *, now: float | None = None) -> int:
    """Project copies left in the temp dir by a killed worker (a live phase keeps its own fresh)."""
    now = time.time() if now is None else now
    horizon = settings.work_retention_hours * 3600
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        if path.is_dir() and _older_than(path, horizon, now):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def clean_cgroups(*, min_age_seconds: float = 600.0, now: float | None = None) -> int:
    """Empty job cgroups under `prism-sandbox` (rmdir refuses a cgroup that still has processes)."""
    now = time.time() if now is None else now
    try:
        layout = detect_layout()
    except (SandboxUnavailable, OSError):
        return 0
    removed = 0
    for _controller, parent in layout.parents:
        if not parent.is_dir():
            continue
        for job in parent.iterdir():
            # Old enough that no job is still between creating its cgroup and entering it.
            if job.is_dir() and _older_than(job, min_age_seconds, now):
                with contextlib.suppress(OSError):
                    job.rmdir()
                    removed += 1
    return removed


def clean_up(settings: Settings, sessions: sessionmaker[Session]) -> CleanupReport:
    return CleanupReport(
        work_dirs=clean_work_dirs(settings, sessions),
        temp_dirs=clean_temp_dirs(settings),
        cgroups=clean_cgroups(),
    )


@dataclass
class Housekeeping:
    """Runs `clean_up` at most every `interval` seconds; a failure is logged, never raised."""

    settings: Settings
    sessions: sessionmaker[Session]
    interval: float = INTERVAL_SECONDS
    _last: float = field(default=float("-inf"))

    def maybe_run(self) -> CleanupReport | None:
        if time.monotonic() - self._last < self.interval:
            return None
        self._last = time.monotonic()
        try:
            report = clean_up(self.settings, self.sessions)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("clean-up skipped: %s", type(exc).__name__)
            return None
        if report.work_dirs or report.temp_dirs or report.cgroups:
            log.info(
                "cleaned up %d work dir(s), %d temp dir(s), %d cgroup(s)",
                report.work_dirs,
                report.temp_dirs,
                report.cgroups,
            )
        return report
