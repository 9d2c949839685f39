"""Real worker processes: killed mid-evaluation, and several draining one PostgreSQL queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.store.db import make_engine, make_session_factory
from prism.store.live_curve import LiveCurvePoint
from prism.store.migrate import upgrade
from prism.store.models import AuditEvent, Evaluation, StageResult, Submission
from prism.store.runtime_configs import set_runtime_config
from prism.store.submissions import NewSubmission, create_submission
from tests.pipeline.conftest import CPU_OFFICIAL, HOTKEYS, example_files, project_zip

LEASE_SECONDS = 5


def _env(settings: Settings, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRISM_")}
    env.update(
        PRISM_DATA_DIR=str(settings.data_dir),
        PRISM_DATABASE_URL=url,
        PRISM_DATASET_DIR=str(settings.dataset_dir),
        PRISM_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
        PRISM_WORKER_HEARTBEAT_SECONDS="1",
        PRISM_WORKER_POLL_SECONDS="0.2",
        PRISM_LOG_LEVEL="WARNING",
    )
    return env


def _worker(settings: Settings, url: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "prism", "worker", *args],
        env=_env(settings, url),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _enqueue(sessions: sessionmaker[Session], hotkey: str, data: bytes) -> str:
    from prism.intake.archive import read_project
    from prism.intake.limits import IntakeLimits

    project = read_project(data, "project.zip", limits=IntakeLimits())
    with sessions() as session, session.begin():
        submission, _ = create_submission(
            session, NewSubmission(hotkey, "project.zip", data, epoch=1), project=project, rejection=None, actor="test"
        )
        return submission.id


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.sandbox
def test_sigkill_mid_evaluation_finishes_exactly_once(worker_settings: Settings) -> None:
    url = worker_settings.resolved_database_url
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        set_runtime_config(session, CPU_OFFICIAL, actor="test")
    sid = _enqueue(sessions, HOTKEYS["alice"], project_zip(example_files()))

    def stage_done(stage: str) -> bool:
        with sessions() as session:
            return session.get(StageResult, (sid, stage)) is not None

    def training() -> bool:
        with sessions() as session:
            return bool(session.scalar(select(func.count()).where(LiveCurvePoint.submission_id == sid)))

    doomed = _worker(worker_settings, url, "--once")
    try:
        # The recorder's first live point: the model is training in the sandbox now.
        _wait_for(training, 120, "the evaluation to reach training")
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        if doomed.poll() is None:
            os.killpg(doomed.pid, signal.SIGKILL)
    assert not stage_done("train")
    with sessions() as session:
        row = session.get(Submission, sid)
        assert row is not None and row.status == "running"  # the dead worker still "holds" it

    time.sleep(LEASE_SECONDS + 0.5)  # the lease of the killed worker runs out
    survivor = _worker(worker_settings, url, "--drain")
    _, stderr = survivor.communicate(timeout=300)
    assert survivor.returncode == 0, stderr.decode()[-2000:]

    with sessions() as session:
        row = session.get(Submission, sid)
        assert row is not None and row.status == "completed", (row.status if row else None, row.reason if row else None)
        assert session.scalar(select(func.count()).select_from(Evaluation)) == 1
        reasons = session.scalars(select(AuditEvent.reason_code).where(AuditEvent.submission_id == sid)).all()
        assert reasons.count("lease_expired") == 1
        claims = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.submission_id == sid, AuditEvent.to_status == "running")
        )
        assert claims == 2  # the killed worker, then the survivor: one completion
    engine.dispose()


@pytest.mark.slow
def test_several_workers_drain_postgres_without_processing_anything_twice(
    worker_settings: Settings, fresh_postgres_url: str
) -> None:
    engine = make_engine(fresh_postgres_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    # Workers first, polling an empty queue, so the work arrives while all of them are looking.
    workers = [_worker(worker_settings, fresh_postgres_url) for _ in range(3)]
    # Each is rejected by static review, so the test measures claiming, not training.
    ids = {
        _enqueue(
            sessions,
            HOTKEYS["bob"],
            project_zip({"model.py": f"import socket\nN = {i}\ndef build_model(ctx):\n    return socket\n"}),
        )
        for i in range(50)
    }

    def drained() -> bool:
        with sessions() as session:
            pending = session.scalar(
                select(func.count()).select_from(Submission).where(Submission.status.in_(("pending", "running")))
            )
            return pending == 0

    try:
        _wait_for(drained, 240, "the workers to drain the queue")
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGINT)
        for proc in workers:
            _, stderr = proc.communicate(timeout=60)
            assert proc.returncode == 0, stderr.decode()[-2000:]
    with sessions() as session:
        statuses = dict(session.execute(select(Submission.id, Submission.status)).all())
        assert set(statuses) == ids and set(statuses.values()) == {"rejected"}
        claims = session.execute(
            select(AuditEvent.submission_id, func.count())
            .where(AuditEvent.to_status == "running")
            .group_by(AuditEvent.submission_id)
        ).all()
        assert len(claims) == 50 and all(n == 1 for _, n in claims)
        owners = session.execute(
            select(func.count(func.distinct(AuditEvent.actor))).where(AuditEvent.to_status == "running")
        ).scalar()
        assert owners is not None and owners >= 2  # the work really was shared
    engine.dispose()
