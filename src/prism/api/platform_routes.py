"""Public read routes Platform's proxy maps for the `prism` slug (`prism_upstream_proxy_path`).

Platform's public proxy rewrites `/challenges/prism/<path>` to `/v1/<path>` for `epochs`,
`architectures/...`, `submissions/{id}/curve`, `training-variants`, `gpu/status` and
`health/eval-jobs`; a 404 there is a broken page on Platform. All of them are anonymous reads:
they name nothing a miner could not see on the leaderboard, and never a secret or a host path.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from prism.api.errors import ApiError
from prism.api.state import app_state, session_scope
from prism.evaluation.progress import MAX_POINTS
from prism.pipeline.eval_steps import choose_mode, host_gpu_count
from prism.pipeline.progress import running_stage
from prism.store.base import utcnow
from prism.store.live_curve import live_curve
from prism.store.models import Architecture, Evaluation, StageResult, Submission
from prism.store.runtime_configs import load_runtime_config
from prism.store.submissions import counts_by_status, epoch_at, oldest_pending_created_at

router = APIRouter(prefix="/v1", tags=["public"])
Db = Annotated[Session, Depends(session_scope)]
MAX_LIVE_SEQ = MAX_POINTS


@router.get("/epochs")
def list_epochs(request: Request, session: Db) -> dict[str, Any]:
    """Every epoch that holds a validated result, newest first, with the current epoch's bounds."""
    seconds = app_state(request).settings.epoch_seconds
    current = epoch_at(utcnow(), seconds)
    rows = session.execute(
        select(Evaluation.epoch, func.count(), func.min(Evaluation.bits_per_byte))
        .group_by(Evaluation.epoch)
        .order_by(Evaluation.epoch.desc())
    ).all()
    return {
        "current": {"epoch": current, "starts_at": current * seconds, "ends_at": (current + 1) * seconds},
        "epoch_seconds": seconds,
        "epochs": [
            {"epoch": epoch, "evaluations": count, "best_bits_per_byte": best, "starts_at": epoch * seconds}
            for epoch, count, best in rows
        ],
    }


@router.get("/architectures/{graph_hash}")
def get_architecture(graph_hash: str, session: Db) -> dict[str, Any]:
    """One architecture family: its owner (first discoverer) and its completed members."""
    arch = session.get(Architecture, graph_hash) if len(graph_hash) <= 64 else None
    if arch is None:
        raise ApiError(404, "not_found", f"no architecture {graph_hash[:64]!r}")
    members = session.execute(
        select(Evaluation.submission_id, Evaluation.hotkey, Evaluation.bits_per_byte, Evaluation.created_at)
        .where(Evaluation.architecture_hash == graph_hash)
        .order_by(Evaluation.created_at)
    ).all()
    return {
        "graph_hash": arch.graph_hash,
        "owner_hotkey": arch.owner_hotkey,
        "owner_submission_id": arch.owner_submission_id,
        "discovered_at": arch.discovered_at.isoformat(),
        "members": [
            {"submission_id": sid, "hotkey": hotkey, "bits_per_byte": bpb, "evaluated_at": at.isoformat()}
            for sid, hotkey, bpb, at in members
        ],
    }


@router.get("/submissions/{submission_id}/curve")
def get_curve(
    submission_id: str, session: Db, after: Annotated[int, Query(ge=-1, le=MAX_LIVE_SEQ)] = -1
) -> dict[str, Any]:
    """The training curve in bits per byte: the signed one once training finished, live points before.

    `points` is the prequential loss per step (thinned) from the recorder's signed report, `final`
    true, once the train stage has passed. `live_points` are what the recorder reported while it
    trained (every few steps, at most 200): advisory and unverified, never used for a score;
    `live` is true while training still runs. `after` returns only live points with a larger `seq`.
    """
    submission = session.get(Submission, submission_id) if len(submission_id) <= 36 else None
    if submission is None:
        raise ApiError(404, "not_found", f"no submission {submission_id!r}")
    train = session.get(StageResult, (submission_id, "train"))
    points = (train.data or {}).get("loss_curve") if train is not None and train.outcome == "passed" else None
    if not isinstance(points, list):
        points = []
    return {
        "submission_id": submission.id,
        "status": submission.status,
        "unit": "bits_per_byte",
        "points": [float(p) for p in points if isinstance(p, int | float)],
        "final": train is not None and train.outcome == "passed",
        "live": running_stage(submission.status, submission.stage) == "train",
        "live_points": [
            {
                "seq": point.seq,
                "step": point.step,
                "steps": point.steps,
                "tokens": point.tokens,
                "bits_per_byte": point.bits_per_byte,
                "mean_bits_per_byte": point.mean_bits_per_byte,
                "recorded_at": point.recorded_at.isoformat(),
            }
            for point in live_curve(session, submission.id, "train")
            if point.seq > after
        ],
    }


@router.get("/training-variants")
def training_variants(request: Request, session: Db) -> dict[str, Any]:
    """The execution profiles a submission may be trained under, and which one this PRISM uses now."""
    settings = app_state(request).settings
    config = load_runtime_config(session).config
    profile = config.gpu.official_profile
    return {
        "active": choose_mode(settings.sandbox_backend, config),
        "variants": [
            {
                "name": "official",
                "score_eligible": True,
                "gpu_count": profile.gpu_count,
                "gpu_type": profile.gpu_type,
                "cpus": profile.cpus,
                "memory": profile.memory,
            },
            {"name": "local_cpu_smoke", "score_eligible": False, "gpu_count": 0, "gpu_type": None},
        ],
        "parameter_cap": config.evaluation.parameter_cap,
    }


@router.get("/gpu/status")
def gpu_status(request: Request, session: Db) -> dict[str, Any]:
    """Where GPU work goes: the backend, the official profile, and (for local backends) this host's GPUs."""
    settings = app_state(request).settings
    config = load_runtime_config(session).config
    backend = settings.sandbox_backend
    return {
        "backend": backend,
        "placement": "platform_broker" if backend == "broker" else "this_host",
        "official_gpu_count": config.gpu.official_profile.gpu_count,
        "official_gpu_type": config.gpu.official_profile.gpu_type,
        "host_gpu_count": None if backend == "broker" else host_gpu_count(),
        "mode": choose_mode(backend, config),
    }


@router.get("/health/eval-jobs")
def eval_jobs_health(session: Db) -> dict[str, Any]:
    """The evaluation queue: submissions by state, and how long the oldest pending one has waited."""
    counts = counts_by_status(session)
    oldest = oldest_pending_created_at(session)
    waited = (utcnow() - oldest).total_seconds() if oldest is not None else None
    return {
        "status": "ok",
        "counts": counts,
        "pending": counts.get("pending", 0),
        "running": counts.get("running", 0),
        "oldest_pending_seconds": round(waited, 1) if waited is not None else None,
    }
