"""Operator routes (operator token): the review queue and its resolution."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from prism.api.auth import require_operator
from prism.api.errors import ApiError
from prism.api.operator_identity import operator_actor
from prism.api.state import app_state, session_scope
from prism.api.views import full_submission_view
from prism.pipeline.resolution import NotResolvable, resolve, review_queue
from prism.store.models import Submission

router = APIRouter(prefix="/internal/v1/review-queue", tags=["operator"], dependencies=[Depends(require_operator)])


class Resolution(BaseModel):
    action: Literal["release", "reject"]
    reason: str = Field(min_length=1, max_length=2000)
    # Ignored: the audit log names the operator by the token presented (`operator_identity`).
    operator: str | None = Field(None, max_length=64, deprecated=True)


@router.get("")
def list_queue(session: Annotated[Session, Depends(session_scope)]) -> dict[str, Any]:
    """Quarantined and held submissions, oldest first."""
    return {"items": [asdict(item) for item in review_queue(session)]}


@router.get("/{submission_id}")
def queue_item(submission_id: str, session: Annotated[Session, Depends(session_scope)]) -> dict[str, Any]:
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise ApiError(404, "not_found", f"no submission {submission_id!r}")
    return full_submission_view(session, submission, operator=True)


@router.post("/{submission_id}/resolve")
def resolve_item(
    submission_id: str,
    resolution: Resolution,
    request: Request,
    session: Annotated[Session, Depends(session_scope)],
) -> dict[str, Any]:
    """Release (the submission continues after the stage that stopped it) or reject; audited."""
    try:
        submission = resolve(
            session,
            submission_id,
            action=resolution.action,
            reason=resolution.reason,
            actor=operator_actor(request),
        )
    except NotResolvable as exc:
        raise ApiError(409, "not_resolvable", str(exc)) from exc
    session.commit()
    app_state(request).weights.invalidate()
    return {"id": submission.id, "status": submission.status}
