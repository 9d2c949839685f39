"""The worker at the database boundary: expired leases requeued in order by any worker, a
database that fails mid-step never spends a submission's retries, a start-up migration that
waits for the database, and clean-up of what ended submissions leave behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.pipeline import worker as worker_module
from prism.pipeline.cleanup import clean_temp_dirs, clean_work_dirs
from prism.pipeline.context import StepContext, StepOutcome
from prism.pipeline.queue import claim_next, reap_expired
from prism.pipeline.stages import STAGES
from prism.pipeline.worker import Worker
from prism.store.base import utcnow
from prism.store.db import DatabaseUnavailable, make_engine
from prism.store.lifecycle import transition
from prism.store.migrate import upgrade_when_ready
from prism.store.models import Submission
from prism.store.models import SubmissionStatus as S
from prism.store.submissions import NewSubmission, create_submission
from tests.api.test_database_outage import _via
from tests.db_proxy import tcp_proxy
from tests.pipeline.conftest import HOTKEYS, project_zip

MODEL = "import torch\n\n\ndef build_model(ctx):\n    return torch.nn.Linear(4, 4)\n"


def _store(sessions: sessionmaker[Session], variant: int) -> str:
    with sessions() as session, session.begin():
        submission, _ = create_submission(
            session,
            NewSubmission(HOTKEYS["alice"], "project.zip", project_zip({"model.py": MODEL + f"# {variant}\n"}), 1),
            project=None,
            rejection=None,
            actor="test",
        )
        return submission.id


def test_expired_leases_are_requeued_by_any_worker_and_keep_their_place(sessions: sessionmaker[Session]) -> None:
    killed = _store(sessions, 0)
    later = _store(sessions, 1)
    with sessions() as session, session.begin():
        row = session.get(Submission, killed)
        assert row is not None
        transition(session, row, S.RUNNING, actor="worker:dead")
        row.lease_owner = "dead"
        row.lease_expires_at = utcnow() - timedelta(seconds=1)
    assert reap_expired(sessions) == 1  # what a busy worker's heartbeat does
    with sessions() as session:
        row = session.get(Submission, killed)
        assert row is not None and row.status == "pending" and row.infra_attempts == 0
    claim = claim_next(sessions, "restarted", lease_seconds=60)
    assert claim is not None and claim.submission_id == killed  # not `later`: order holds
    assert reap_expired(sessions) == 0
    assert later != killed


def test_a_database_failure_mid_step_spends_no_retry(
    sessions: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = _store(sessions, 2)
    dead = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    broken = {"yes": True}

    def flaky_step(_ctx: StepContext) -> StepOutcome:
        if broken["yes"]:
            with dead.connect() as conn:  # a real refused connection: OperationalError
                conn.execute(text("SELECT 1"))
        return StepOutcome.passed("ok")

    stages = (*((name, step) for name, step in STAGES if name == "static_review"), ("flaky", flaky_step))
    monkeypatch.setattr(worker_module, "STAGES", stages)
    fast = settings.model_copy(update={"db_retry_budget_seconds": 0.5, "worker_retry_base_seconds": 0.0})
    worker = Worker(fast, sessions)
    with pytest.raises(DatabaseUnavailable):
        worker.run_once()
    with sessions() as session:
        row = session.get(Submission, sid)
        assert row is not None and row.status == "pending" and row.infra_attempts == 0
    broken["yes"] = False
    assert worker.run_once() == sid
    with sessions() as session:
        row = session.get(Submission, sid)
        assert row is not None and row.status == "completed" and row.infra_attempts == 0


def test_start_up_migration_waits_for_the_database(fresh_postgres_url: str) -> None:
    target = urlsplit(fresh_postgres_url)
    with tcp_proxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        proxy.close()  # the database is down when the worker starts
        engine = make_engine(_via(fresh_postgres_url, proxy.port), connect_timeout=1)
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            if len(sleeps) == 2:
                proxy.resume()  # ...and comes back while the worker waits
            time.sleep(min(seconds, 0.2))

        upgrade_when_ready(engine, sleep=sleep)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM submissions")).scalar() == 0
        engine.dispose()
    assert len(sleeps) >= 2


def test_clean_up_keeps_what_an_operator_may_inspect(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # never touch this host's real temp dirs
    ids = {state: _store(sessions, 10 + i) for i, state in enumerate(("old_failed", "new_failed", "quarantined"))}
    with sessions() as session, session.begin():
        for state, sid in ids.items():
            row = session.get(Submission, sid)
            assert row is not None
            transition(session, row, S.RUNNING, actor="test")
            transition(session, row, S.QUARANTINED if state == "quarantined" else S.FAILED, actor="test")
            if state == "old_failed":
                row.finished_at = utcnow() - timedelta(hours=3)
    work = Path(settings.data_dir) / "work"
    for sid in ids.values():
        (work / sid / "train").mkdir(parents=True)
        (work / sid / "train" / "weights.safetensors").write_bytes(b"w" * 100)
    (work / "not-a-submission").mkdir()
    kept = settings.model_copy(update={"work_retention_hours": 1.0})
    assert clean_work_dirs(kept, sessions) == 1
    assert not (work / ids["old_failed"]).exists()
    assert (work / ids["new_failed"]).exists() and (work / ids["quarantined"]).exists()
    assert (work / "not-a-submission").exists()

    stray = Path(tempfile.mkdtemp(prefix="prism-project-"))
    fresh = Path(tempfile.mkdtemp(prefix="prism-project-"))
    old = time.time() - 2 * 3600
    os.utime(stray, (old, old))
    try:
        assert clean_temp_dirs(kept) >= 1
        assert not stray.exists() and fresh.exists()
    finally:
        fresh.rmdir()


def _fake_launcher(tmp_path: Path, submission_id: str) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """A process shaped like the bubblewrap launcher (its plan on the command line) and a
    'job' process listed in the plan's cgroup.procs file."""
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    procs = tmp_path / f"cgroup-{submission_id[:8]}.procs"
    procs.write_text(f"{job.pid}\n")
    plan = {
        "binds": [[f"/data/work/{submission_id}/train/job", "s4"]],
        "cgroup_procs": [str(procs)],
    }
    launcher = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "/opt/prism/sandbox/launcher.py", json.dumps(plan)]
    )
    return launcher, job


def test_a_worker_that_loses_its_lease_stops_its_sandbox_job(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sid = _store(sessions, 20)
    other = _store(sessions, 21)
    bystander, bystander_job = _fake_launcher(tmp_path, other)
    seen: dict[str, int | None] = {}

    def long_phase(ctx: StepContext) -> StepOutcome:
        launcher, job = _fake_launcher(tmp_path, ctx.submission.id)
        with sessions() as session, session.begin():  # another worker takes the submission over
            row = session.get(Submission, ctx.submission.id)
            assert row is not None
            row.lease_owner = "thief"
        seen["launcher"] = launcher.wait(timeout=60)
        seen["job"] = job.wait(timeout=60)
        return StepOutcome.passed("finished after losing the lease")

    monkeypatch.setattr(worker_module, "STAGES", (("long_phase", long_phase),))
    fast = settings.model_copy(update={"worker_heartbeat_seconds": 0.2})
    try:
        assert Worker(fast, sessions).run_once() == sid
        assert seen == {"launcher": -9, "job": -9}  # killed by the heartbeat, not finished
        assert bystander.poll() is None and bystander_job.poll() is None  # another submission's job runs on
        with sessions() as session:
            row = session.get(Submission, sid)
            assert row is not None and row.status == "running" and row.lease_owner == "thief"
            assert row.stage is None  # the old worker wrote nothing after losing its lease
    finally:
        for process in (bystander, bystander_job):
            process.kill()
            process.wait()
