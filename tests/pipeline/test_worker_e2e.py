"""The worker end to end on the embedded default: real intake, review, bubblewrap and scoring."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.evaluation.progress import PROGRESS_PREFIX
from prism.pipeline.worker import Worker
from prism.sandbox import get_sandbox
from prism.sandbox.spec import RunResult, RunSpec, Sandbox
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


class CurveDuringTraining:
    """The real backend; while the train phase's recorder streams, it reads the public curve route.

    Its stdout tap hands every chunk to the runner's real tap first; once two progress lines went
    by, it waits (unhurried: the writer is a thread) until the route shows two live points. That
    happens inside `run`, so the train phase has not ended: its sandbox is still being read and no
    train stage result exists yet.
    """

    name = "bubblewrap"
    accepts_stdin = True

    def __init__(self, inner: Sandbox, api: TestClient) -> None:
        self.inner = inner
        self.api = api
        self.submission_id = ""
        self.during: dict[str, Any] | None = None

    def run(self, spec: RunSpec) -> RunResult:
        tap = spec.stdout_tap
        if spec.labels.get("prism.phase") != "train" or tap is None:
            return self.inner.run(spec)
        seen = bytearray()

        def watching(chunk: bytes) -> None:
            tap(chunk)
            seen.extend(chunk)
            if self.during is None and seen.count(PROGRESS_PREFIX.encode()) >= 2:
                self.during = self._curve_with_two_points()

        return self.inner.run(dataclasses.replace(spec, stdout_tap=watching))

    def _curve_with_two_points(self) -> dict[str, Any]:
        give_up = time.monotonic() + 120  # a fault bound, not a speed requirement
        while True:
            curve: dict[str, Any] = self.api.get(f"/v1/submissions/{self.submission_id}/curve").json()
            if len(curve["live_points"]) >= 2 or time.monotonic() > give_up:
                return curve
            time.sleep(0.05)


def test_default_config_on_a_cpu_host_completes_as_a_non_scoring_run(
    api: TestClient, worker_settings: Settings, worker_sessions: sessionmaker[Session]
) -> None:
    use_runtime_config(worker_sessions, SMOKE_ONLY)  # the default GPU profile, smaller budgets
    sid = submit(api, HOTKEYS["alice"], project_zip(example_files()))
    sandbox = CurveDuringTraining(get_sandbox(worker_settings), api)
    sandbox.submission_id = sid
    assert Worker(worker_settings, worker_sessions, sandbox_factory=lambda: sandbox).run_once() == sid
    view = api.get(f"/v1/submissions/{sid}").json()
    assert view["status"] == "completed"

    # Live points were served while the recorder still trained: advisory, not yet the final curve.
    during = sandbox.during
    assert during is not None and during["status"] == "running"
    assert during["live"] is True and during["final"] is False and during["points"] == []
    assert len(during["live_points"]) >= 2
    steps = [p["step"] for p in during["live_points"]]
    assert steps == sorted(set(steps))
    # Afterwards: the signed curve is final; the live points agree with it but stay apart.
    after = api.get(f"/v1/submissions/{sid}/curve").json()
    assert after["final"] is True and after["live"] is False and len(after["points"]) == 16
    live = after["live_points"]
    assert [p["seq"] for p in live] == list(range(16)) and live[-1]["step"] == live[-1]["steps"] == 16
    assert live[-1]["tokens"] == 4096
    assert live[-1]["mean_bits_per_byte"] == pytest.approx(view["scores"]["bits_per_byte"], abs=1e-5)
    assert api.get(f"/v1/submissions/{sid}/curve", params={"after": 13}).json()["live_points"] == live[14:]
    assert view["scores"]["mode"] == "local_cpu_smoke" and view["scores"]["score_eligible"] is False
    assert api.get("/v1/leaderboard").json()["rows"] == []
    assert api.get("/v1/architectures").json()["architectures"] == []
    assert fresh_weights(api) == {}
