"""The train stage when validators train (runtime config `validators.mode`).

`embedded` (default): PRISM trains on its own sandbox, as before. `validators` / `both`: the
stage opens work units (Platform lists them and hands each to one validator), waits for the
results, and continues only with a record that `quorum` independent validators agree on — or,
for an audited submission in mode `both`, with PRISM's own run that the validators must match.
Inspect (before) and held-out scoring (after) always run on PRISM: the held-out split never
leaves PRISM; held-out bits per byte is measured here on the weights the chosen validator
returned, and manifest validation checks those weights against PRISM's own architecture graph.

Outcomes: `passed` with the agreed train record; `held` (`validators.awaiting`) while results are
missing — the worker retries with back-off, leases that ran out are replaced; `held`
(`validators.disagree`) with every validator's figures side by side when they disagree and no
tie-breaker is left.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from prism.evaluation.jobs import EvaluationJob
from prism.evaluation.metrics import LossCurve
from prism.evaluation.phase import LOSS_CURVE_FILE, WEIGHTS_FILE
from prism.evaluation.results import InspectResult, TrainResult
from prism.evaluation.runner import run_train, verified_artifact
from prism.evidence import Evidence, evidence_from_json
from prism.pipeline.context import StepContext, StepOutcome
from prism.pipeline.eval_steps import JOB_RECORD, choose_mode, load_job, train_step
from prism.runtime_config import ValidatorPolicy
from prism.store.lifecycle import audit
from prism.store.models import Submission
from prism.store.validators import ValidatorResult
from prism.validators import units as unit_store
from prism.validators.agreement import Claim, Decision, Expected, check_claim, decide

POLL_SECONDS = 0.5
AUDIT_RECORD = "audit.json"


def unit_job(job: EvaluationJob) -> dict[str, Any]:
    """The job a validator needs, without PRISM's paths or the per-unit probe seed."""
    document = job.to_json()
    for key in ("work_dir", "dataset", "probe_seed"):
        document.pop(key)
    document["dataset_fingerprint"] = job.dataset.fingerprint
    return document


def audited(submission_id: str, policy: ValidatorPolicy) -> bool:
    """Mode `both`: whether PRISM re-runs this submission itself (a stable draw per submission)."""
    if policy.mode != "both" or policy.audit_rate <= 0:
        return False
    digest = hashlib.sha256(f"prism-audit:{submission_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < policy.audit_rate


def validator_train_step(ctx: StepContext) -> StepOutcome:
    policy = ctx.runtime_config.validators
    if policy.mode == "embedded":
        return train_step(ctx)
    job = load_job(ctx)
    inspect = InspectResult.from_json(ctx.records["inspect"]["inspect"])
    job = _fresh_data_order(ctx, job)
    if audited(ctx.submission.id, policy):
        _first_units(ctx, job, policy)  # validators start while PRISM runs its own audit
        reference: Claim | None = _audit(ctx, job)
    else:
        reference = None
    expected = Expected(
        parameter_count=inspect.parameter_count,
        graph_hash=inspect.architecture_graph_hash,
        tokens_per_step=job.budget.batch_size * job.budget.seq_len,
        max_tokens=job.token_budget,
    )
    deadline = time.monotonic() + ctx.settings.validators_wait_seconds
    while True:
        decision, exhausted = _pass(ctx, job, expected, policy, reference)
        if decision.kind == "agreed":
            return _agreed(ctx, job, decision, reference)
        if (decision.kind == "disagreed" and exhausted) or time.monotonic() >= deadline:
            return _held(decision)
        time.sleep(POLL_SECONDS)


def _fresh_data_order(ctx: StepContext, job: EvaluationJob) -> EvaluationJob:
    """A data order drawn after the code was fixed, the same for every unit of the submission.

    Validators must all see it (the same order gives the same record), so it cannot stay secret
    from them; drawing it per submission keeps it unknown to the miner until the code is fixed.
    """
    marker = ctx.work_dir / "data_order.drawn"
    if marker.is_file():
        return job
    with ctx.sessions() as session:
        units = unit_store.units_of(session, ctx.submission.id)
    # Units already out (this work directory was rebuilt) keep the order they were given.
    seed = int(units[0].job["budget"]["data_order_seed"]) if units else secrets.randbits(62)
    job = replace(job, budget=job.budget.model_copy(update={"data_order_seed": seed}))
    save_job(ctx.work_dir / JOB_RECORD, job)
    marker.write_text("1", encoding="utf-8")
    return job


def on_this_host(ctx: StepContext, job: EvaluationJob) -> EvaluationJob:
    """The job as PRISM's own host runs it: without GPUs unless this host (or its broker) has them."""
    if choose_mode(ctx.settings.sandbox_backend, ctx.runtime_config) == "official":
        return job
    return replace(job, gpu_count=0, gpu_type=None)


def save_job(path: Path, job: EvaluationJob) -> None:
    """The job record the later stages load (owner-only: it holds the probe seed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(job.to_json(), handle)


def _audit(ctx: StepContext, job: EvaluationJob) -> Claim:
    """PRISM's own train run of an audited submission (once; kept in the work directory)."""
    record = ctx.work_dir / AUDIT_RECORD
    if record.is_file():
        train = TrainResult.from_json(json.loads(record.read_text(encoding="utf-8")))
    else:
        inspect = InspectResult.from_json(ctx.records["inspect"]["inspect"])
        train = run_train(on_this_host(ctx, job), ctx.project, ctx.sandbox, inspect)
        record.write_text(json.dumps(train.to_json()), encoding="utf-8")
    curve = LossCurve.decode(verified_artifact(job, "train", LOSS_CURVE_FILE).read_bytes())
    return Claim("prism", "prism", "ok", None, train.to_json(), {}, curve)


def _write_lock(session: Session) -> None:
    """SQLite: these transactions read, then write; take the write lock at BEGIN so a concurrent
    commit (the worker's own heartbeat) cannot make the upgrade fail (no-op on PostgreSQL)."""
    session.connection(execution_options={"immediate": True})


def _claim(result: ValidatorResult) -> Claim:
    figures = result.figures
    curve = None
    if result.loss_curve is not None:
        try:
            curve = LossCurve.decode(result.loss_curve)
        except (ValueError, TypeError):
            curve = None
    train = figures.get("train")
    inspect = figures.get("inspect")
    train = train if isinstance(train, dict) else {}
    inspect = inspect if isinstance(inspect, dict) else {}
    return Claim(result.unit_id, result.validator_hotkey, result.status, result.reason_code, train, inspect, curve)


def _complete(claim: Claim) -> str | None:
    if claim.status != "ok":
        return None
    try:
        TrainResult.from_json(claim.train)
    except TypeError as exc:
        return f"the train figures are incomplete: {exc}"
    return None


def _pass(
    ctx: StepContext, job: EvaluationJob, expected: Expected, policy: ValidatorPolicy, reference: Claim | None
) -> tuple[Decision, bool]:
    """One look at the results; opens the units still needed. Returns the decision and whether
    no further unit can be opened."""
    with ctx.sessions() as session, session.begin():
        _write_lock(session)
        unit_store.expire_leases(session, ctx.submission.id)
        results = unit_store.results_of(session, ctx.submission.id)
        invalid: dict[str, tuple[str, str]] = {}
        valid: list[Claim] = []
        for result in results:
            claim = _claim(result)
            if result.verdict == "invalid":
                continue
            problem = _complete(claim) or check_claim(claim, expected)
            if problem:
                invalid[result.unit_id] = ("invalid", problem)
            else:
                valid.append(claim)
        flagged = unit_store.record_verdicts(session, results, invalid, policy)
        decision = decide(valid, policy, reference)
        exhausted = False
        if decision.kind != "agreed":
            exhausted = _open_needed(session, ctx, job, policy, decision, len(valid))
        if flagged:
            _note_flagged(session, ctx.submission.id, flagged)
    return decision, exhausted


def _open_needed(
    session: Session, ctx: StepContext, job: EvaluationJob, policy: ValidatorPolicy, decision: Decision, valid: int
) -> bool:
    units = unit_store.units_of(session, ctx.submission.id)
    live = sum(1 for u in units if u.status in unit_store.LIVE)
    # Waiting: all valid results agree so far, `quorum - valid` more are needed. Disagreeing:
    # one tie-breaker at a time.
    wanted = 1 if decision.kind == "disagreed" else policy.quorum - valid
    missing = max(0, wanted - live)
    room = policy.max_units - len(units)
    count = min(missing, room)
    if count > 0:
        submission = session.get(Submission, ctx.submission.id)
        assert submission is not None
        unit_store.open_units(
            session,
            submission_id=ctx.submission.id,
            hotkey=ctx.submission.hotkey,
            archive_sha256=submission.archive_sha256,
            job={**unit_job(job), "filename": submission.filename},
            runtime_config_version=ctx.runtime_config_version,
            count=count,
        )
    return live + count == 0


def _first_units(ctx: StepContext, job: EvaluationJob, policy: ValidatorPolicy) -> None:
    with ctx.sessions() as session, session.begin():
        _write_lock(session)
        if not unit_store.units_of(session, ctx.submission.id):
            waiting = Decision("waiting", None, (), {}, (), "")
            _open_needed(session, ctx, job, policy, waiting, 0)


def _note_flagged(session: Session, submission_id: str, flagged: list[str]) -> None:
    for hotkey in flagged:
        audit(
            session,
            submission_id=submission_id,
            actor="prism:validators",
            action="validator.flagged",
            reason_code="validators.odd_one_out",
            reason=f"validator {hotkey} was repeatedly the odd one out or sent invalid results",
            data={"validator": hotkey},
        )


def _agreed(ctx: StepContext, job: EvaluationJob, decision: Decision, reference: Claim | None) -> StepOutcome:
    with ctx.sessions() as session, session.begin():
        _write_lock(session)
        results = {r.unit_id: r for r in unit_store.results_of(session, ctx.submission.id)}
        verdicts = {uid: ("agreed", decision.explanation) for uid in decision.agreeing}
        verdicts.update({uid: ("odd_one_out", why) for uid, why in decision.odd.items()})
        flagged = unit_store.record_verdicts(session, list(results.values()), verdicts, ctx.runtime_config.validators)
        if flagged:
            _note_flagged(session, ctx.submission.id, flagged)
        unit_store.close_open_units(session, ctx.submission.id)
        if reference is None:
            assert decision.chosen is not None
            chosen = results[decision.chosen]
            if chosen.status != "ok":
                return _agreed_refusal(decision, chosen)
            train = TrainResult.from_json(chosen.figures["train"])
            _write_verified(job, {LOSS_CURVE_FILE: chosen.loss_curve, WEIGHTS_FILE: chosen.weights})
            source = {"unit_id": chosen.unit_id, "validator": chosen.validator_hotkey}
        else:
            train = TrainResult.from_json(reference.train)
            source = {"unit_id": "prism", "validator": "prism"}
    curve = LossCurve.decode(verified_artifact(job, "train", LOSS_CURVE_FILE).read_bytes())
    bits = [loss / 0.6931471805599453 for loss in curve.losses_nats]
    stride = max(1, -(-len(bits) // 200))
    return StepOutcome(
        "passed",
        "validators.agreed",
        f"{decision.explanation}: {train.tokens:,} tokens, {train.bits_per_byte:.4f} bits/byte",
        {
            "train": train.to_json(),
            "loss_curve": [round(v, 5) for v in bits[::stride]],
            "validators": {
                "decision": decision.kind,
                "source": source,
                "agreeing": list(decision.agreeing),
                "odd_one_out": dict(decision.odd),
                "figures": list(decision.table),
            },
        },
    )


def _agreed_refusal(decision: Decision, chosen: ValidatorResult) -> StepOutcome:
    """Independent validators agree the harness rejected the model, or that the model crashed."""
    code = chosen.reason_code or "validators.agreed"
    note = f"{decision.explanation}: {chosen.status} ({code}); units {', '.join(decision.agreeing)}"
    record = {
        "validators": {"decision": decision.kind, "agreeing": list(decision.agreeing), "figures": list(decision.table)}
    }
    if chosen.status == "failed":
        return StepOutcome("failed", code, note, record)
    reported = evidence_from_json(chosen.figures.get("evidence") or [])
    evidence = (*reported, Evidence.at("validators.agreed_rejection", "<validators>", 0, note))
    return StepOutcome("rejected", code, note, record, evidence)


def _write_verified(job: EvaluationJob, files: Mapping[str, bytes | None]) -> None:
    verified = job.work_dir / "train" / "verified"
    verified.mkdir(parents=True, exist_ok=True)
    for directory in (job.work_dir / "train", verified):
        directory.chmod(0o755)
    for name, data in files.items():
        assert data is not None  # an ok result carries both (checked at intake)
        (verified / name).write_bytes(data)


def _held(decision: Decision) -> StepOutcome:
    code = "validators.disagree" if decision.kind == "disagreed" else "validators.awaiting"
    record = {"validators": {"decision": decision.kind, "figures": list(decision.table)}}
    if decision.kind != "disagreed":
        return StepOutcome("held", code, decision.explanation, record)
    side_by_side = "; ".join(
        f"{row['validator'][:10]}…: {row['status']} bpb={row['bits_per_byte']} tokens={row['tokens']}"
        for row in decision.table
    )
    evidence = Evidence.at(
        "validators.disagree",
        "<validators>",
        0,
        f"{decision.explanation}. Figures side by side: {side_by_side}",
    )
    return StepOutcome("held", code, decision.explanation, record, (evidence,))
