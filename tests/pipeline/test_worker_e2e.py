"""The worker end to end on the embedded default: real intake, review, bubblewrap and scoring."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.pipeline.worker import Worker
from prism.store.models import AuditEvent, Evaluation
from tests.conftest import TOKEN
from tests.pipeline.conftest import (
    CPU_OFFICIAL,
    HOTKEYS,
    SMOKE_ONLY,
    example_files,
    fresh_weights,
    project_zip,
    submit,
    use_runtime_config,
)

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _metric(client: TestClient, state: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'prism_submissions{{state="{state}"}}'):
            return float(line.split()[-1])
    raise AssertionError(f"no metric for {state}")


def test_score_eligible_run_reaches_leaderboard_ownership_and_weights(
    api: TestClient, worker_settings: Settings, worker_sessions: sessionmaker[Session]
) -> None:
    use_runtime_config(worker_sessions, CPU_OFFICIAL)
    good = submit(api, HOTKEYS["alice"], project_zip(example_files()))
    hostile = submit(
        api, HOTKEYS["bob"], project_zip({"model.py": "import os\ndef build_model(ctx):\n    os.system('id')\n"})
    )
    worker = Worker(worker_settings, worker_sessions)
    assert worker.drain() == 2

    view = api.get(f"/internal/v1/submissions/{good}", headers=AUTH).json()
    assert view["status"] == "completed", view
    assert [s["stage"] for s in view["stages"]][-1] == "score"
    scores = view["scores"]
    assert scores["score_eligible"] is True and scores["mode"] == "official"
    assert 0 < scores["bits_per_byte"] < 8.0 and scores["final_score"] > 2**-8
    assert "score-eligible" in view["reason"]

    rows = api.get("/v1/leaderboard").json()["rows"]
    assert [(r["hotkey"], r["submission_id"]) for r in rows] == [(HOTKEYS["alice"], good)]
    families = api.get("/v1/architectures").json()["architectures"]
    assert len(families) == 1 and families[0]["owner_hotkey"] == HOTKEYS["alice"]
    assert families[0]["graph_hash"] == scores["architecture_hash"]
    weights = fresh_weights(api)
    assert weights == {HOTKEYS["alice"]: pytest.approx(1.0)}

    rejected = api.get(f"/internal/v1/submissions/{hostile}", headers=AUTH).json()
    assert rejected["status"] == "rejected" and rejected["scores"] is None
    assert any(
        item["rule_id"].startswith("import") or "os" in item["explanation"]
        for stage in rejected["stages"]
        for item in stage["evidence"]
    )
    assert (_metric(api, "completed"), _metric(api, "rejected")) == (1.0, 1.0)
    for state in ("quarantined", "held", "failed", "pending", "running"):
        assert _metric(api, state) == 0.0

    # Nothing runs twice: one evaluation, one claim per submission.
    with worker_sessions() as session:
        assert session.scalar(select(func.count()).select_from(Evaluation)) == 1
        claims = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.to_status == "running"))
        assert claims == 2


def test_default_config_on_a_cpu_host_completes_as_a_non_scoring_run(
    api: TestClient, worker_settings: Settings, worker_sessions: sessionmaker[Session]
) -> None:
    use_runtime_config(worker_sessions, SMOKE_ONLY)  # the default GPU profile, smaller budgets
    sid = submit(api, HOTKEYS["alice"], project_zip(example_files()))
    assert Worker(worker_settings, worker_sessions).run_once() == sid
    view = api.get(f"/v1/submissions/{sid}").json()
    assert view["status"] == "completed"
    assert view["scores"]["mode"] == "local_cpu_smoke" and view["scores"]["score_eligible"] is False
    assert api.get("/v1/leaderboard").json()["rows"] == []
    assert api.get("/v1/architectures").json()["architectures"] == []
    assert fresh_weights(api) == {}
