"""JSON shapes the API returns, built from store rows. Public views never include evidence snippets."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from prism.pipeline.progress import running_stage
from prism.store.models import Evaluation, StageResult, Submission
from prism.store.submissions import queue_position, stage_results


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def scores_view(evaluation: Evaluation | None) -> dict[str, Any] | None:
    if evaluation is None:
        return None
    return {
        "final_score": evaluation.final_score,
        "bits_per_byte": evaluation.bits_per_byte,
        "heldout_bits_per_byte": evaluation.heldout_bits_per_byte,
        "parameter_count": evaluation.parameter_count,
        "architecture_hash": evaluation.architecture_hash,
        "mode": evaluation.mode,
        "score_eligible": evaluation.score_eligible,
    }


def public_submission_view(session: Session, submission: Submission) -> dict[str, Any]:
    evaluation = session.get(Evaluation, submission.id)
    return {
        "id": submission.id,
        "hotkey": submission.hotkey,
        "status": submission.status,
        "reason_code": submission.reason_code,
        "stage": submission.stage,
        # The stage the worker is in now (`stage` is the last finished one); None unless running.
        "running_stage": running_stage(submission.status, submission.stage),
        "epoch": submission.epoch,
        "queue_position": queue_position(session, submission),
        "created_at": _iso(submission.created_at),
        "updated_at": _iso(submission.updated_at),
        "started_at": _iso(submission.started_at),
        "finished_at": _iso(submission.finished_at),
        "scores": scores_view(evaluation),
    }


# Stage-record keys that may hold other miners' source (the LLM prompt shows the closest earlier
# submissions): operators see them, Platform's relay to a miner does not.
OPERATOR_ONLY_KEYS = frozenset({"transcript", "unverified_claims"})


def _without_operator_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_operator_keys(v) for k, v in value.items() if k not in OPERATOR_ONLY_KEYS}
    if isinstance(value, list):
        return [_without_operator_keys(item) for item in value]
    return value


def stage_view(row: StageResult, *, operator: bool = False) -> dict[str, Any]:
    data = row.data if operator else _without_operator_keys(row.data)
    return {
        "stage": row.stage,
        "outcome": row.outcome,
        "detail": row.detail,
        "evidence": row.evidence,
        "data": data,
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
    }


def full_submission_view(session: Session, submission: Submission, *, operator: bool = False) -> dict[str, Any]:
    """For Platform and operators: the public view plus the reason and every stage's evidence.

    Only operators get the LLM transcripts, which can quote earlier submissions of other miners.
    """
    view = public_submission_view(session, submission)
    view["reason"] = submission.reason
    view["filename"] = submission.filename
    view["byte_size"] = submission.byte_size
    view["code_hash"] = submission.code_hash
    view["stages"] = [stage_view(row, operator=operator) for row in stage_results(session, submission.id)]
    return view
