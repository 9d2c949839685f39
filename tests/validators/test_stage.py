"""The train stage in validator mode, driven step by step (no sandbox: the validators' results are given).

Units open for the quorum; a silent validator's lease runs out and is replaced; a liar's
figure holds the submission with the figures side by side; a tie-breaker decides; the chosen
result's artifacts are what the next stages read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from prism.config import Settings
from prism.evaluation.evaluate import locked_dataset
from prism.evaluation.jobs import make_job
from prism.evaluation.metrics import LossCurve
from prism.evaluation.phase import LOSS_CURVE_FILE, WEIGHTS_FILE
from prism.evaluation.runner import verified_artifact
from prism.intake.archive import read_project
from prism.intake.limits import IntakeLimits
from prism.pipeline.context import StepContext, SubmissionInfo
from prism.pipeline.eval_steps import load_job
from prism.runtime_config import parse_runtime_config
from prism.store.base import utcnow
from prism.store.models import Submission
from prism.store.validators import ValidatorStanding, ValidatorUnit
from prism.validators import units as unit_store
from prism.validators.signing import ValidatorKey
from prism.validators.stage import validator_train_step
from tests.pipeline.conftest import HOTKEYS, example_files, project_zip, submit
from tests.validators.conftest import key, validators_config

GRAPH = "a" * 64
STEPS, TOKENS_PER_STEP = 8, 256  # FAST_EVALUATION: batch 4 x seq 64


def _context(
    api: TestClient, settings: Settings, sessions: sessionmaker[Session], tmp_path: Path, **policy: Any
) -> StepContext:
    config = parse_runtime_config(validators_config(**policy))
    data = project_zip(example_files())
    sid = submit(api, HOTKEYS["alice"], data)
    with sessions() as session:
        row = session.get(Submission, sid)
        assert row is not None
        info = SubmissionInfo(row.id, row.hotkey, row.code_hash, row.filename, row.created_at, 0)
    work = tmp_path / "work"
    work.mkdir(mode=0o755)
    job = make_job(
        submission_id=sid,
        code_hash=str(info.code_hash),
        mode="official",
        runtime_config=config,
        dataset=locked_dataset(settings),
        work_dir=work,
    )
    (work / "job.json").write_text(json.dumps(job.to_json()))
    inspect = {
        "duration_seconds": 1.0,
        "parameter_count": 1000,
        "buffer_count": 0,
        "architecture_graph_hash": GRAPH,
        "architecture_graph_sha256": "b" * 64,
        "dataflow_source": "fx",
        "flops_per_token": 10.0,
    }
    return StepContext(
        settings=settings.model_copy(update={"validators_wait_seconds": 0.0}),
        runtime_config=config,
        runtime_config_version=None,
        sessions=sessions,
        submission=info,
        project=read_project(data, "project.zip", limits=IntakeLimits.from_settings(settings)),
        work_dir=work,
        sandbox_factory=lambda: (_ for _ in ()).throw(AssertionError("no sandbox in validator mode")),
        records={"inspect": {"inspect": inspect}},
    )


def _result(scale: float = 1.0) -> dict[str, Any]:
    losses = tuple(scale * (6.0 - 0.3 * step) * math.log(2) for step in range(STEPS))
    curve = LossCurve(losses, (TOKENS_PER_STEP,) * STEPS)
    encoded, weights = curve.encode(), f"weights-{scale}".encode()
    train = {
        "duration_seconds": 2.0,
        "parameter_count": 1000,
        "buffer_count": 0,
        "graph_hash": GRAPH,
        "tokens": STEPS * TOKENS_PER_STEP,
        "steps": STEPS,
        "tokens_per_step": TOKENS_PER_STEP,
        "budget_steps": 16,
        "data_windows": 100,
        "stopped_reason": "data",
        "bits_per_byte": curve.bits_per_byte(),
        "first_batch_bits_per_byte": 6.0 * scale,
        "probed_steps": [0],
        "loss_curve_sha256": hashlib.sha256(encoded).hexdigest(),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "weights_numel": 1000,
        "train_seconds": 1.0,
    }
    return {
        "status": "ok",
        "figures": {"inspect": {"architecture_graph_hash": GRAPH}, "train": train},
        "artifacts": {"loss_curve": base64.b64encode(encoded).decode(), "weights": base64.b64encode(weights).decode()},
    }


def _report(
    sessions: sessionmaker[Session], ctx: StepContext, unit_id: str, who: ValidatorKey, result: dict[str, Any] | None
) -> None:
    with sessions() as session, session.begin():
        unit = session.get(ValidatorUnit, unit_id)
        assert unit is not None
        sign = {"slug": "prism", "work_unit_id": unit_id, "archive_sha256": unit.archive_sha256}
        unit_store.claim(session, who.sign(kind="claim", payload={}, **sign), ctx.runtime_config.validators)
        if result is not None:
            unit_store.accept_result(session, who.sign(kind="result", payload=result, **sign))


def _open(sessions: sessionmaker[Session], submission_id: str) -> list[str]:
    with sessions() as session:
        rows = session.scalars(select(ValidatorUnit).where(ValidatorUnit.submission_id == submission_id))
        return [u.id for u in rows if u.status in unit_store.LIVE and u.validator_hotkey is None]


def test_silent_liar_tie_breaker_then_agreement(
    api: TestClient, worker_settings: Settings, worker_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    ctx = _context(api, worker_settings, worker_sessions, tmp_path, max_units=4, lease_seconds=600)
    sid = ctx.submission.id

    waiting = validator_train_step(ctx)
    assert (waiting.outcome, waiting.reason_code) == ("held", "validators.awaiting")
    first, second = _open(worker_sessions, sid)

    _report(worker_sessions, ctx, first, key("silent"), None)  # claims, never answers
    _report(worker_sessions, ctx, second, key("liar"), _result(scale=0.8))
    with worker_sessions() as session, session.begin():
        unit = session.get(ValidatorUnit, first)
        assert unit is not None
        unit.lease_expires_at = utcnow() - timedelta(seconds=1)
    assert validator_train_step(ctx).reason_code == "validators.awaiting"
    (replacement,) = _open(worker_sessions, sid)  # the silent validator's unit was replaced
    assert replacement.endswith(".3")

    _report(worker_sessions, ctx, replacement, key("honest1"), _result())
    held = validator_train_step(ctx)
    assert (held.outcome, held.reason_code) == ("held", "validators.disagree")  # figures side by side
    (tie_breaker,) = _open(worker_sessions, sid)  # and a tie-breaker is out
    figures = held.record["validators"]["figures"]
    assert {row["validator"] for row in figures} == {key("liar").hotkey, key("honest1").hotkey}

    _report(worker_sessions, ctx, tie_breaker, key("honest2"), _result())
    passed = validator_train_step(ctx)
    assert passed.outcome == "passed", passed
    honest_bpb = _result()["figures"]["train"]["bits_per_byte"]
    assert passed.record["train"]["bits_per_byte"] == honest_bpb
    assert set(passed.record["validators"]["odd_one_out"]) == {second}
    job_dir = ctx.work_dir
    assert verified_artifact_bytes(job_dir, WEIGHTS_FILE) == b"weights-1.0"
    assert LossCurve.decode(verified_artifact_bytes(job_dir, LOSS_CURVE_FILE)).bits_per_byte() == honest_bpb
    with worker_sessions() as session:
        standing = {s.hotkey: s for s in session.scalars(select(ValidatorStanding))}
        assert standing[key("liar").hotkey].odd_one_out == 1 and standing[key("silent").hotkey].expired == 1
        assert standing[key("honest1").hotkey].agreed == 1 and standing[key("honest2").hotkey].agreed == 1
        assert _open(worker_sessions, sid) == []


def verified_artifact_bytes(work: Path, name: str) -> bytes:
    return (work / "train" / "verified" / name).read_bytes()


def test_disagreement_with_no_tie_breaker_left_is_held_with_the_figures(
    api: TestClient, worker_settings: Settings, worker_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    ctx = _context(api, worker_settings, worker_sessions, tmp_path, max_units=2)
    validator_train_step(ctx)
    first, second = _open(worker_sessions, ctx.submission.id)
    _report(worker_sessions, ctx, first, key("honest1"), _result())
    _report(worker_sessions, ctx, second, key("liar"), _result(scale=0.8))
    held = validator_train_step(ctx)
    assert (held.outcome, held.reason_code) == ("held", "validators.disagree")
    (evidence,) = held.evidence
    assert evidence.rule_id == "validators.disagree"
    for scale in (1.0, 0.8):
        assert f"bpb={_result(scale)['figures']['train']['bits_per_byte']}" in evidence.explanation
    assert _open(worker_sessions, ctx.submission.id) == []  # max_units reached: an operator decides


def test_a_result_for_another_model_is_invalid_and_never_counts(
    api: TestClient, worker_settings: Settings, worker_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    ctx = _context(api, worker_settings, worker_sessions, tmp_path, max_units=3)
    validator_train_step(ctx)
    first, second = _open(worker_sessions, ctx.submission.id)
    other = _result()
    other["figures"]["train"]["graph_hash"] = "f" * 64
    _report(worker_sessions, ctx, first, key("liar"), other)
    _report(worker_sessions, ctx, second, key("honest1"), _result())
    assert validator_train_step(ctx).reason_code == "validators.awaiting"  # one valid result, one more unit
    with worker_sessions() as session:
        standing = session.get(ValidatorStanding, key("liar").hotkey)
        assert standing is not None and standing.invalid == 1
    assert len(_open(worker_sessions, ctx.submission.id)) == 1
    assert verified_artifact(job=_job(ctx), phase="train", name=WEIGHTS_FILE).exists() is False


def _job(ctx: StepContext) -> Any:
    return load_job(ctx)


def test_an_audited_submission_is_decided_by_prisms_own_run(
    api: TestClient, worker_settings: Settings, worker_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    ctx = _context(api, worker_settings, worker_sessions, tmp_path, mode="both", quorum=1, audit_rate=1.0)
    honest = _result()
    # PRISM's own run of the submission, as `run_train` leaves it (kept across passes).
    (ctx.work_dir / "audit.json").write_text(json.dumps(honest["figures"]["train"]))
    verified = ctx.work_dir / "train" / "verified"
    verified.mkdir(parents=True)
    (verified / LOSS_CURVE_FILE).write_bytes(base64.b64decode(honest["artifacts"]["loss_curve"]))

    assert validator_train_step(ctx).reason_code == "validators.awaiting"
    (first,) = _open(worker_sessions, ctx.submission.id)
    _report(worker_sessions, ctx, first, key("liar"), _result(scale=0.8))
    held = validator_train_step(ctx)
    assert held.reason_code == "validators.disagree"  # the only validator contradicts PRISM's run
    (second,) = _open(worker_sessions, ctx.submission.id)
    _report(worker_sessions, ctx, second, key("honest1"), _result())
    passed = validator_train_step(ctx)
    assert passed.outcome == "passed" and passed.record["validators"]["source"] == {
        "unit_id": "prism",
        "validator": "prism",
    }
    assert set(passed.record["validators"]["odd_one_out"]) == {first}
    assert not (verified / WEIGHTS_FILE).exists()  # PRISM's own artifacts are the ones kept
