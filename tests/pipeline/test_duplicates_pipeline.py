"""Issue 8 end to end: a renamed copy, an exact copy and a real variant, through the real worker."""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.pipeline.worker import Worker
from tests.conftest import TOKEN
from tests.pipeline.conftest import (
    CPU_OFFICIAL,
    HOTKEYS,
    example_files,
    fresh_weights,
    project_zip,
    submit,
    use_runtime_config,
)
from tests.review.variants import rename

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# D brings its own training: warm-up, label smoothing and clipping on A's architecture, verbatim.
NEW_TRAINING = """

def train_step(model, batch, optimizer, ctx):
    for group in optimizer.param_groups:
        group["lr"] = min(2e-3, group["lr"] * 1.05)
    logits = batch.logits
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), batch.targets.reshape(-1), label_smoothing=0.05
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    optimizer.step()
    return loss.detach()
"""


def _view(api: TestClient, sid: str) -> dict[str, object]:
    body: dict[str, object] = api.get(f"/internal/v1/submissions/{sid}", headers=AUTH).json()
    return body


def test_copies_are_stopped_and_variants_attach(
    api: TestClient, worker_settings: Settings, worker_sessions: sessionmaker[Session]
) -> None:
    use_runtime_config(worker_sessions, CPU_OFFICIAL)
    worker = Worker(worker_settings, worker_sessions)
    original = example_files()

    a = submit(api, HOTKEYS["alice"], project_zip(original))
    assert worker.drain() == 1 and _view(api, a)["status"] == "completed"
    family = api.get("/v1/architectures").json()["architectures"]
    assert [f["owner_hotkey"] for f in family] == [HOTKEYS["alice"]]

    # B: A's model with every identifier renamed -> quarantined, no weight, nowhere on the board.
    renamed = {**original, **rename({"model.py": original["model.py"]}, random.Random(7))}
    assert renamed != original
    b = submit(api, HOTKEYS["bob"], project_zip(renamed))
    # C: A's exact files -> rejected.
    c = submit(api, HOTKEYS["charlie"], project_zip(original))
    # D: A's architecture verbatim, its own training step -> attached to A's family.
    variant = dict(original)
    variant["model.py"] = original["model.py"] + NEW_TRAINING
    d = submit(api, HOTKEYS["dave"], project_zip(variant))
    assert worker.drain() == 3

    b_view = _view(api, b)
    assert b_view["status"] == "quarantined", b_view
    assert str(b_view["reason_code"]).startswith("duplicate.")
    stage = next(s for s in b_view["stages"] if s["stage"] == "source_duplicates")  # type: ignore[attr-defined]
    assert stage["evidence"] and stage["data"]["candidates"][0]["submission_id"] == a

    c_view = _view(api, c)
    assert (c_view["status"], c_view["reason_code"]) == ("rejected", "duplicate.exact_source"), c_view

    d_view = _view(api, d)
    assert d_view["status"] == "completed", d_view
    graph = next(s for s in d_view["stages"] if s["stage"] == "graph_duplicates")  # type: ignore[attr-defined]
    assert graph["data"]["outcome"] == "attach"
    a_hash = _view(api, a)["scores"]["architecture_hash"]  # type: ignore[index]
    assert d_view["scores"]["architecture_hash"] == a_hash  # type: ignore[index]
    families = api.get("/v1/architectures").json()["architectures"]
    assert len(families) == 1 and families[0]["owner_hotkey"] == HOTKEYS["alice"]
    assert families[0]["completed_submissions"] == 2

    rows = api.get("/v1/leaderboard").json()["rows"]
    assert {row["hotkey"] for row in rows} == {HOTKEYS["alice"], HOTKEYS["dave"]}
    weights = fresh_weights(api)
    # One family: its owner (A) takes the owner share; the best implementation on it the rest.
    best = rows[0]["hotkey"]
    if best == HOTKEYS["alice"]:
        assert weights == {HOTKEYS["alice"]: pytest.approx(1.0)}
    else:
        assert weights == {HOTKEYS["alice"]: pytest.approx(0.6), HOTKEYS["dave"]: pytest.approx(0.4)}

    # The operator decides on B: rejecting it is final and audited.
    queue = api.get("/internal/v1/review-queue", headers=AUTH).json()["items"]
    assert [item["submission_id"] for item in queue] == [b]
    answer = api.post(
        f"/internal/v1/review-queue/{b}/resolve",
        headers=AUTH,
        json={"action": "reject", "reason": "renamed copy of an earlier submission"},
    )
    assert answer.status_code == 200 and answer.json()["status"] == "rejected"
    again = api.post(
        f"/internal/v1/review-queue/{b}/resolve", headers=AUTH, json={"action": "release", "reason": "changed my mind"}
    )
    assert again.status_code == 409
    assert fresh_weights(api) == weights
