"""Evaluation steps: inspect, graph duplicates, train, heldout, validation, score.

The evaluation job (mode, budgets, GPU profile, the secret causality-probe seed) is decided once,
at `inspect`, from the operator's side only, and kept in the work directory on the host so a
resumed worker runs the later phases under exactly the same job.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from prism.errors import PrismError
from prism.evaluation.errors import EvaluationError
from prism.evaluation.evaluate import locked_dataset
from prism.evaluation.heldout_host import local_heldout_job, run_heldout_here
from prism.evaluation.jobs import EvaluationJob, Mode, make_job
from prism.evaluation.joint import JointResults, run_joint, runs_jointly
from prism.evaluation.manifest import build_manifest, validate_manifest
from prism.evaluation.metrics import LossCurve
from prism.evaluation.phase import GRAPH_FILE, LOSS_CURVE_FILE
from prism.evaluation.results import HeldoutResult, InspectResult, TrainResult
from prism.evaluation.runner import run_heldout, run_inspect, run_train, verified_artifact
from prism.evaluation.suspicion import graph_flops_disagreement, suspicions
from prism.pipeline.context import StepContext, StepOutcome
from prism.pipeline.live_curve import LiveCurveWriter
from prism.review.similarity import fingerprint_project
from prism.review.similarity.duplicates import DuplicateReport, decide_graph
from prism.review.similarity.graph import graph_fingerprint
from prism.runtime_config import RuntimeConfig
from prism.scoring.score import final_score
from prism.store.base import utcnow
from prism.store.db import run_write
from prism.store.fingerprints import find_graph_priors, save_graph_fingerprint, save_report
from prism.store.models import Evaluation
from prism.store.scores import claim_architecture, record_evaluation
from prism.store.submissions import epoch_at

JOB_RECORD = "job.json"
LOSS_POINTS = 200  # enough for a plot; the full curve stays an artifact


class EvaluationRestart(PrismError):
    """The host-side evaluation state is gone (e.g. another machine picked the job up): start over."""


def host_gpu_count() -> int:
    devices = Path("/dev")
    return sum(1 for p in devices.glob("nvidia[0-9]*") if p.name[len("nvidia") :].isdigit())


def choose_mode(backend: str, runtime_config: RuntimeConfig) -> Mode:
    """Official when the fixed profile can be honoured here, else a non-scoring CPU smoke run.

    A CPU-only official profile (`gpu_count: 0`) runs anywhere; the broker places GPU jobs
    itself; the local backends need the GPUs on this host.
    """
    wanted = runtime_config.gpu.official_profile.gpu_count
    if wanted == 0 or backend == "broker" or host_gpu_count() >= wanted:
        return "official"
    return "local_cpu_smoke"


def _save_job(job: EvaluationJob) -> None:
    path = job.work_dir / JOB_RECORD
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(job.to_json(), handle)


def load_job(ctx: StepContext) -> EvaluationJob:
    path = ctx.work_dir / JOB_RECORD
    if not path.is_file():
        raise EvaluationRestart(f"the evaluation work directory {ctx.work_dir} is missing; evaluation restarts")
    return EvaluationJob.from_json(json.loads(path.read_text(encoding="utf-8")))


def inspect_step(ctx: StepContext) -> StepOutcome:
    dataset = locked_dataset(ctx.settings)
    mode = choose_mode(ctx.settings.sandbox_backend, ctx.runtime_config)
    if ctx.work_dir.exists():
        shutil.rmtree(ctx.work_dir)
    ctx.work_dir.mkdir(parents=True, mode=0o755)
    job = make_job(
        submission_id=ctx.submission.id,
        code_hash=ctx.project.code_hash,
        mode=mode,
        runtime_config=ctx.runtime_config,
        dataset=dataset,
        work_dir=ctx.work_dir,
        attempt=ctx.submission.infra_attempts + 1,
    )
    _save_job(job)
    inspect = _inspect_jointly(ctx, job) if _joint_here(ctx) else run_inspect(job, ctx.project, ctx.sandbox)
    return StepOutcome.passed(
        f"{inspect.parameter_count:,} parameters, graph {inspect.architecture_graph_hash[:12]}, mode {mode}",
        mode=mode,
        score_eligible=job.score_eligible,
        gpu_count=job.gpu_count,
        gpu_type=job.gpu_type,
        dataset_fingerprint=dataset.fingerprint,
        runtime_config_version=ctx.runtime_config_version,
        inspect=inspect.to_json(),
    )


# -- the phases in one sandbox start (`evaluation/joint.py`) -------------------------------------
#
# Where the backend can hold them (stdin, live stdout), held-out runs with the other phases and
# PRISM trains itself, `inspect_step` runs inspect, train and held-out in one sandbox start: the
# graph-duplicate decision is made at the run's gate, between inspect and train, and the later
# steps take what the run produced from here. Kept in this worker process only: a resumed worker
# finds nothing and runs each remaining phase a start of its own, as before.


@dataclass(frozen=True, slots=True)
class _Ahead:
    attempt: int
    graph: StepOutcome | None  # the gate's decision; None where inspect never reached it
    results: JointResults


_AHEAD: OrderedDict[str, _Ahead] = OrderedDict()
_AHEAD_LOCK = threading.Lock()
_AHEAD_MAX = 16  # submissions; each entry is a few small records (artifacts stay on disk)


def _joint_here(ctx: StepContext) -> bool:
    return (
        ctx.runtime_config.validators.mode == "embedded" and runs_jointly(ctx.sandbox) and ctx.heldout_sandbox is None
    )


def _inspect_jointly(ctx: StepContext, job: EvaluationJob) -> InspectResult:
    decided: list[StepOutcome] = []

    def gate(inspect: InspectResult, graph: dict[str, Any]) -> bool:
        decided.append(_graph_decision(ctx, inspect, graph))
        return decided[-1].outcome == "passed"

    _forget(ctx, job)
    # The recorder's points while it trains, for `--wait` and the curve route (advisory).
    with LiveCurveWriter(ctx.sessions, ctx.submission.id, "train", attempt=job.attempt) as live:
        results = run_joint(job, ctx.project, ctx.sandbox, gate=gate, on_progress=live.put)
    with _AHEAD_LOCK:
        _AHEAD[str(ctx.work_dir)] = _Ahead(job.attempt, decided[0] if decided else None, results)
        while len(_AHEAD) > _AHEAD_MAX:
            _AHEAD.popitem(last=False)
    return results.inspect


def _ahead(ctx: StepContext, job: EvaluationJob) -> _Ahead | None:
    with _AHEAD_LOCK:
        found = _AHEAD.get(str(ctx.work_dir))
    return found if found is not None and found.attempt == job.attempt else None


def _forget(ctx: StepContext, job: EvaluationJob) -> _Ahead | None:
    with _AHEAD_LOCK:
        found = _AHEAD.pop(str(ctx.work_dir), None)
    return found if found is not None and found.attempt == job.attempt else None


def _graph_document(job: EvaluationJob) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(verified_artifact(job, "inspect", GRAPH_FILE).read_text(encoding="utf-8"))
    return document


def graph_duplicates_step(ctx: StepContext) -> StepOutcome:
    job = load_job(ctx)
    ahead = _ahead(ctx, job)
    if ahead is not None and ahead.graph is not None:
        return ahead.graph  # decided at the joint run's gate, before anything was trained
    inspect = InspectResult.from_json(ctx.records["inspect"]["inspect"])
    return _graph_decision(ctx, inspect, _graph_document(job))


def _graph_decision(ctx: StepContext, inspect: InspectResult, graph: dict[str, Any]) -> StepOutcome:
    fingerprint = graph_fingerprint(inspect.architecture_graph_hash, graph)
    source = fingerprint_project(ctx.project)
    source_candidates = [
        str(c["submission_id"]) for c in ctx.records.get("source_duplicates", {}).get("candidates", [])
    ]

    def decide(session: Session) -> DuplicateReport:
        priors = find_graph_priors(session, fingerprint, submission_id=ctx.submission.id, also=source_candidates)
        save_graph_fingerprint(session, ctx.submission.id, fingerprint)
        decided = decide_graph(
            inspect.architecture_graph_hash,
            graph,
            hotkey=ctx.submission.hotkey,
            source=source,
            priors=priors,
            policy=ctx.runtime_config.similarity,
        )
        save_report(session, ctx.submission.id, decided)
        return decided

    # Reads then writes: the write lock is taken up front and a busy lock is waited out here.
    report = run_write(ctx.sessions, decide, budget_seconds=ctx.settings.db_retry_budget_seconds, what="graph check")
    record = report.to_json()
    if report.outcome == "reject":
        return StepOutcome("rejected", report.reason_code, report.explanation, record, report.evidence)
    if report.outcome == "quarantine" and ctx.outcomes.get("source_duplicates") == "released":
        # An operator already judged this source not a copy: the same suspicion does not stop it
        # twice. It joins its graph's family; ownership stays with the first discoverer.
        return StepOutcome(
            "passed",
            "similarity.released_variant",
            f"{report.explanation}; the source quarantine was released by an operator",
            record,
            report.evidence,
            architecture_hash=inspect.architecture_graph_hash,
        )
    if report.outcome == "quarantine":
        return StepOutcome("quarantined", report.reason_code, report.explanation, record, report.evidence)
    family = report.attach_to if report.outcome == "attach" and report.attach_to else inspect.architecture_graph_hash
    return StepOutcome(
        "passed", report.reason_code, report.explanation, record, report.evidence, architecture_hash=family
    )


def _loss_points(job: EvaluationJob) -> list[float]:
    """The prequential loss per step in bits per byte, thinned to at most LOSS_POINTS points."""
    curve = LossCurve.decode(verified_artifact(job, "train", LOSS_CURVE_FILE).read_bytes())
    bits = [loss / 0.6931471805599453 for loss in curve.losses_nats]
    stride = max(1, -(-len(bits) // LOSS_POINTS))
    return [round(value, 5) for value in bits[::stride]]


def train_step(ctx: StepContext) -> StepOutcome:
    job = load_job(ctx)
    inspect = InspectResult.from_json(ctx.records["inspect"]["inspect"])
    ahead = _ahead(ctx, job)
    if ahead is not None and ahead.results.train is not None:
        try:
            train = ahead.results.trained()  # trained in the joint run, past the graph-duplicate gate
        except EvaluationError:
            _forget(ctx, job)  # told once: a retry after our own fault runs the phase again
            raise
    else:
        # The recorder's points while it trains, for `--wait` and the curve route (advisory).
        with LiveCurveWriter(ctx.sessions, ctx.submission.id, "train", attempt=job.attempt) as live:
            train = run_train(job, ctx.project, ctx.sandbox, inspect, on_progress=live.put)
    return StepOutcome.passed(
        f"{train.tokens:,} tokens in {train.steps} steps, {train.bits_per_byte:.4f} bits/byte ({train.stopped_reason})",
        train=train.to_json(),
        loss_curve=_loss_points(job),
    )


def heldout_step(ctx: StepContext) -> StepOutcome:
    """Held-out scoring where the settings place it: with the other phases, or (on Platform) in a
    local sandbox on this host, beside the secret val split and the weights (`heldout_host`)."""
    job = load_job(ctx)
    train = TrainResult.from_json(ctx.records["train"]["train"])
    ahead = _forget(ctx, job)
    local = ctx.heldout_sandbox
    if ahead is not None and ahead.results.heldout is not None and local is None:
        heldout = ahead.results.scored()
        where = {"sandbox": ctx.settings.sandbox_backend, "device": job.device}
    elif local is None:
        heldout = run_heldout(job, ctx.project, ctx.sandbox, train)
        where = {"sandbox": ctx.settings.sandbox_backend, "device": job.device}
    else:
        heldout = run_heldout_here(job, ctx.project, local, train, ctx.settings)
        where = {"sandbox": local.name, "device": local_heldout_job(job).device}
    return StepOutcome.passed(
        f"{heldout.heldout_bits_per_byte:.4f} held-out bits/byte ({where['sandbox']}, {where['device']})",
        heldout=heldout.to_json(),
        heldout_ran_on=where,
    )


def validation_step(ctx: StepContext) -> StepOutcome:
    """The manifest is built from PRISM's own phase results and checked field by field."""
    job = load_job(ctx)
    inspect = InspectResult.from_json(ctx.records["inspect"]["inspect"])
    train = TrainResult.from_json(ctx.records["train"]["train"])
    heldout = HeldoutResult.from_json(ctx.records["heldout"]["heldout"])
    manifest = build_manifest(job, inspect, train, heldout)
    report = validate_manifest(manifest, job=job, inspect=inspect, train=train, heldout=heldout)
    record = {
        "manifest": manifest,
        "validation": report.to_json(),
        "mode": job.mode,
        "score_eligible": job.score_eligible,
    }
    if not report.ok:
        fields = sorted({item.rule_id for item in report.findings})
        return StepOutcome(
            "rejected", "manifest.mismatch", f"manifest validation failed: {', '.join(fields)}", record, report.findings
        )
    found = suspicions(inspect, train, heldout)
    mismatch = graph_flops_disagreement(inspect.flops_per_token, _same_graph_flops(ctx, manifest))
    if mismatch is not None:
        found = (*found, mismatch)
    if found:
        detail = "; ".join(item.explanation for item in found)
        return StepOutcome("quarantined", found[0].rule_id, detail, record, found)
    return StepOutcome.passed("manifest validated", **record)


def _same_graph_flops(ctx: StepContext, manifest: dict[str, Any]) -> list[tuple[str, float]]:
    """FLOPs per token of earlier runs of this exact graph at this sequence length (newest first)."""
    graph_hash = str(manifest["model"]["architecture_graph_hash"])
    seq_len = manifest["budget"]["seq_len"]
    with ctx.sessions() as session:
        rows = session.scalars(
            select(Evaluation)
            .where(Evaluation.architecture_hash == graph_hash, Evaluation.submission_id != ctx.submission.id)
            .order_by(Evaluation.created_at.desc())
            .limit(16)
        ).all()
    found: list[tuple[str, float]] = []
    for row in rows:
        model, budget = row.manifest.get("model", {}), row.manifest.get("budget", {})
        if model.get("architecture_graph_hash") == graph_hash and budget.get("seq_len") == seq_len:
            found.append((row.submission_id, float(model.get("flops_per_token") or 0.0)))
    return found


def score_step(ctx: StepContext) -> StepOutcome:
    """One evaluation row per submission; ownership only for score-eligible runs."""
    validation = ctx.records["validation"]
    manifest: dict[str, Any] = validation["manifest"]
    eligible = bool(validation["score_eligible"])
    graph_hash = str(manifest["model"]["architecture_graph_hash"])
    family = str(ctx.records.get("graph_duplicates", {}).get("attach_to") or graph_hash)
    bpb = float(manifest["metrics"]["bits_per_byte"])
    score = final_score(bpb)

    def record(session: Session) -> tuple[Evaluation, str | None]:
        row = record_evaluation(
            session,
            Evaluation(
                submission_id=ctx.submission.id,
                hotkey=ctx.submission.hotkey,
                epoch=epoch_at(utcnow(), ctx.settings.epoch_seconds),
                mode=str(manifest["mode"]),
                score_eligible=eligible,
                bits_per_byte=bpb,
                heldout_bits_per_byte=float(manifest["metrics"]["heldout_bits_per_byte"]),
                final_score=score,
                parameter_count=int(manifest["model"]["parameter_count"]),
                architecture_hash=family,
                manifest=manifest,
                created_at=utcnow(),
            ),
        )
        owner = None
        if eligible:
            graph = _graph_document(load_job(ctx)) if (ctx.work_dir / JOB_RECORD).is_file() else {}
            owner = claim_architecture(
                session, graph_hash=family, hotkey=ctx.submission.hotkey, submission_id=ctx.submission.id, graph=graph
            ).owner_hotkey
        return row, owner

    row, owner = run_write(ctx.sessions, record, budget_seconds=ctx.settings.db_retry_budget_seconds, what="score")
    kind = "score-eligible" if eligible else "non-scoring (local_cpu_smoke)"
    return StepOutcome(
        "passed",
        "score.recorded",
        f"final score {row.final_score:.6f} from {row.bits_per_byte:.4f} bits/byte; {kind}",
        {
            "final_score": row.final_score,
            "score_eligible": eligible,
            "architecture_hash": family,
            "architecture_owner": owner,
        },
        architecture_hash=family,
    )
