"""Paced intake while workers run the read-then-write review steps: no "database is locked",
no retry spent, nothing lost — one and two workers, on SQLite and on PostgreSQL (`prism up`
runs a review lane beside its worker, so even the embedded default has two writers).

Scaled down for the suite (a few seconds at 10/s); `benchmarks/intake.py --paced` runs the
5/s × 60 s version. The stages are cut after the source-duplicate check (the step that reads
the fingerprints, then writes its own, while uploads commit in between); what follows needs a
sandbox and is covered by the end-to-end tests.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from prism.api.app import create_app
from prism.config import Settings
from prism.pipeline import worker as worker_module
from prism.pipeline.stages import STAGES
from prism.pipeline.worker import Worker
from prism.store.db import make_engine, make_session_factory
from prism.store.migrate import upgrade
from prism.store.models import AuditEvent, Submission
from tests.conftest import TOKEN
from tests.pipeline.conftest import HOTKEYS, example_files, project_zip

RATE = 10.0  # submissions per second
SECONDS = 3.0
REVIEW_ONLY = tuple((name, step) for name, step in STAGES if name in ("static_review", "source_duplicates"))


@pytest.mark.parametrize("workers", [1, 2])
def test_paced_intake_never_meets_a_locked_database(
    db_url: str, settings: Settings, workers: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(worker_module, "STAGES", REVIEW_ONLY)
    engine = make_engine(db_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    fast = settings.model_copy(update={"worker_retry_base_seconds": 0.0, "worker_heartbeat_seconds": 0.5})
    files = example_files()
    total = int(RATE * SECONDS)
    bodies = [project_zip({**files, "model.py": files["model.py"] + f"\nVARIANT = {i}\n"}) for i in range(total)]
    hotkeys = list(HOTKEYS.values())
    stop = threading.Event()
    done_ids: list[str] = []

    def work(index: int) -> None:
        worker = Worker(fast, sessions, worker_id=f"paced-{index}")
        while not stop.is_set():
            processed = worker.run_once()
            if processed is None:
                time.sleep(0.05)
            else:
                done_ids.append(processed)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    ids = []
    with TestClient(create_app(fast, engine=engine)) as client:
        started = time.monotonic()
        for i, body in enumerate(bodies):
            time.sleep(max(0.0, started + i / RATE - time.monotonic()))  # paced, not a burst
            response = client.post(
                "/internal/v1/bridge/submissions",
                headers={
                    "Authorization": f"Bearer {TOKEN}",
                    "X-Base-Verified-Hotkey": hotkeys[i % len(hotkeys)],
                    "X-Submission-Filename": "project.zip",
                },
                content=body,
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        deadline = time.monotonic() + 300
        while True:
            with sessions() as session:
                states = dict(session.execute(select(Submission.id, Submission.status)).all())
            if all(states[i] not in ("pending", "running") for i in ids):
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    with sessions() as session:
        rows = session.scalars(select(Submission).where(Submission.id.in_(ids))).all()
        retries = session.scalars(
            select(AuditEvent).where(AuditEvent.reason_code.in_(("infrastructure_retry", "infrastructure")))
        ).all()
    engine.dispose()
    assert len(rows) == total
    # Copies of one example from four hotkeys: each is completed or stopped by the duplicate
    # check — never failed, never retried for infrastructure.
    assert {row.status for row in rows} <= {"completed", "rejected", "quarantined"}, {r.status for r in rows}
    assert all(row.infra_attempts == 0 for row in rows)
    assert retries == []
    assert "database is locked" not in caplog.text
