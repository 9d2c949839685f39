"""The worker's evaluation in one sandbox start: the graph-duplicate decision at the gate, before
anything is trained; past it, train and held-out from the same start. Real bubblewrap."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.evaluation.phase import RESULT_PREFIX
from prism.evaluation.progress import PROGRESS_PREFIX
from prism.evaluation.results import InspectResult
from prism.evidence import Evidence
from prism.pipeline import eval_steps
from prism.pipeline.context import StepContext, StepOutcome
from prism.pipeline.worker import Worker
from prism.sandbox import get_sandbox
from tests.conftest import TOKEN
from tests.counted_sandbox import Counted
from tests.pipeline.conftest import HOTKEYS, SMOKE_ONLY, example_files, project_zip, submit, use_runtime_config

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _stages(api: TestClient, sid: str) -> dict[str, Any]:
    view: dict[str, Any] = api.get(f"/internal/v1/submissions/{sid}", headers=AUTH).json()
    return view


def test_one_start_carries_the_submission_to_its_score(
    api: TestClient, worker_settings: Settings, worker_sessions: sessionmaker[Session]
) -> None:
    use_runtime_config(worker_sessions, SMOKE_ONLY)
    sid = submit(api, HOTKEYS["alice"], project_zip(example_files()))
    sandbox = Counted(get_sandbox(worker_settings))
    assert Worker(worker_settings, worker_sessions, sandbox_factory=lambda: sandbox).run_once() == sid
    view = _stages(api, sid)
    assert view["status"] == "completed", view
    assert sandbox.labels == ["joint"]
    stages = {s["stage"]: s for s in view["stages"]}
    assert stages["graph_duplicates"]["data"]["outcome"] == "allow"
    assert stages["train"]["data"]["train"]["steps"] > 0 and stages["train"]["data"]["loss_curve"]
    assert stages["heldout"]["data"]["heldout"]["heldout_bits_per_byte"] > 0
    # The live curve was written while the joint run trained, as in a start of its own.
    curve = api.get(f"/v1/submissions/{sid}/curve").json()
    assert curve["live_points"] and curve["final"]


def test_a_graph_duplicate_stops_the_run_at_the_gate_before_training(
    api: TestClient,
    worker_settings: Settings,
    worker_sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_runtime_config(worker_sessions, SMOKE_ONLY)
    sid = submit(api, HOTKEYS["bob"], project_zip(example_files()))
    decided: list[StepOutcome] = []
    real = eval_steps._graph_decision

    def copy_found(ctx: StepContext, inspect: InspectResult, graph: dict[str, Any]) -> StepOutcome:
        # The real decision runs (and stores the fingerprint); its verdict is then a copy's, as it
        # would be with another hotkey's same graph on record (that rule: tests/review/similarity).
        decided.append(real(ctx, inspect, graph))
        why = "same architecture graph as another hotkey's earlier submission and no new training code"
        evidence = (Evidence.at("duplicate.graph_cosmetic_copy", "model.py", 1, why),)
        return StepOutcome("quarantined", "duplicate.graph_cosmetic_copy", why, {"outcome": "quarantine"}, evidence)

    monkeypatch.setattr(eval_steps, "_graph_decision", copy_found)
    sandbox = Counted(get_sandbox(worker_settings))
    assert Worker(worker_settings, worker_sessions, sandbox_factory=lambda: sandbox).run_once() == sid
    view = _stages(api, sid)
    assert (view["status"], view["reason_code"]) == ("quarantined", "duplicate.graph_cosmetic_copy"), view
    assert [s["stage"] for s in view["stages"]][-2:] == ["inspect", "graph_duplicates"]
    assert len(decided) == 1 and decided[0].outcome == "passed"
    assert sandbox.labels == ["joint"]
    # Nothing was trained: the recorder wrote inspect's report and stopped, no live point went by.
    lines = sandbox.stdout[0].splitlines()
    assert sum(line.startswith(RESULT_PREFIX) for line in lines) == 1
    assert not any(line.startswith(PROGRESS_PREFIX) for line in lines)
    assert api.get(f"/v1/submissions/{sid}/curve").json()["live_points"] == []
