"""Faults of ours are retried and never blamed on the miner; a bad runtime config fails closed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.pipeline.worker import Worker
from prism.sandbox.errors import SandboxUnavailable
from prism.sandbox.spec import Sandbox
from prism.store.models import AuditEvent, RuntimeConfigRow, Submission
from tests.pipeline.conftest import HOTKEYS, SMOKE_ONLY, example_files, project_zip, use_runtime_config
from tests.pipeline.test_worker_processes import _enqueue


def _no_sandbox() -> Sandbox:
    raise SandboxUnavailable("bubblewrap is not installed on this host")


def _status(sessions: sessionmaker[Session], sid: str) -> Submission:
    with sessions() as session:
        row = session.get(Submission, sid)
        assert row is not None
        return row


def test_sandbox_unavailable_is_retried_then_failed_as_infrastructure(
    worker_settings: Settings, worker_sessions: sessionmaker[Session]
) -> None:
    settings = worker_settings.model_copy(update={"worker_max_infra_retries": 2})
    use_runtime_config(worker_sessions, SMOKE_ONLY)
    sid = _enqueue(worker_sessions, HOTKEYS["alice"], project_zip(example_files()))
    worker = Worker(settings, worker_sessions, sandbox_factory=_no_sandbox)
    for _ in range(3):
        assert worker.run_once() == sid
    row = _status(worker_sessions, sid)
    assert (row.status, row.reason_code) == ("failed", "infrastructure")
    assert "not the miner's fault" in (row.reason or "") and "bubblewrap" in (row.reason or "")
    with worker_sessions() as session:
        retries = session.scalars(
            select(AuditEvent.reason_code).where(AuditEvent.submission_id == sid, AuditEvent.to_status == "pending")
        ).all()
    assert retries.count("infrastructure_retry") == 2
    # The review stages before the sandbox ran once each and were not repeated.
    assert worker.run_once() is None


def test_invalid_runtime_config_fails_closed(worker_settings: Settings, worker_sessions: sessionmaker[Session]) -> None:
    settings = worker_settings.model_copy(update={"worker_max_infra_retries": 0})
    with worker_sessions() as session, session.begin():
        session.add(RuntimeConfigRow(document={"gpu": {"max_gpu_count": 99}}, active=True, created_by="sql"))
    sid = _enqueue(worker_sessions, HOTKEYS["alice"], project_zip(example_files()))
    assert Worker(settings, worker_sessions, sandbox_factory=_no_sandbox).run_once() == sid
    row = _status(worker_sessions, sid)
    assert row.status == "failed" and "invalid runtime config" in (row.reason or "")
    assert row.stage is None  # nothing ran under a config nobody can vouch for


def test_a_copy_checked_before_its_original_still_finds_it(
    worker_settings: Settings, worker_sessions: sessionmaker[Session]
) -> None:
    """Two workers can reach a copy's source check first; the original is fingerprinted then."""
    from datetime import timedelta

    from prism.store.base import utcnow

    original = _enqueue(worker_sessions, HOTKEYS["alice"], project_zip(example_files()))
    copy = _enqueue(worker_sessions, HOTKEYS["bob"], project_zip(example_files()))
    with worker_sessions() as session, session.begin():
        row = session.get(Submission, original)
        assert row is not None
        row.next_attempt_at = utcnow() + timedelta(hours=1)  # another worker will get to it later
    assert Worker(worker_settings, worker_sessions, sandbox_factory=_no_sandbox).run_once() == copy
    row = _status(worker_sessions, copy)
    assert (row.status, row.reason_code) == ("rejected", "duplicate.exact_source")
