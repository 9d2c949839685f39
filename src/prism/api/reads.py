"""Read routes: health, version, submissions, leaderboard, architectures, epochs, weights."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

import prism
from prism.api.auth import require_internal
from prism.api.bodies import MAX_EPOCH
from prism.api.errors import ApiError
from prism.api.state import app_state, session_scope
from prism.api.views import full_submission_view, public_submission_view
from prism.config import Settings
from prism.config_check import configuration_problems
from prism.scoring.ranking import leaderboard
from prism.store.base import utcnow
from prism.store.models import Submission
from prism.store.scores import architectures, eligible_results
from prism.store.submissions import epoch_at

router = APIRouter()

# Platform's orchestrator refuses a challenge whose /version lacks these (and `docker_executor`
# where the registry entry asks for it); the rest say what this PRISM does, and only when it does.
PLATFORM_CAPABILITIES = ("get_weights", "proxy_routes")
ALWAYS = ("bridge_submissions", "static_review", "duplicate_review", "sandboxed_evaluation", "manifest_validation")


def capabilities(settings: Settings) -> list[str]:
    """What is enabled now: signed submissions and LLM review only when switched on."""
    found = [*PLATFORM_CAPABILITIES, *ALWAYS, "weights"]
    if settings.sandbox_backend == "broker":
        found.append("docker_executor")
    if settings.public_submissions_enabled:
        found.append("signed_public_submissions")
    if settings.llm_review_enabled:
        found.append("llm_policy_review")
    return found


@router.get("/health", tags=["public"], responses={503: {"description": "a configured secret file is unreadable"}})
async def health(request: Request) -> Any:
    """Platform's readiness probe: `status` "ok" and the slug it registered; 503 naming each
    secret-file variable that no longer names a readable file."""
    # On the event loop, not the thread pool: a few small local file reads cost less than the hop.
    settings = app_state(request).settings
    problems = configuration_problems()
    if problems:
        return JSONResponse(
            {"status": "unhealthy", "problems": list(problems), "slug": settings.challenge_slug}, status_code=503
        )
    return {"status": "ok", "slug": settings.challenge_slug, "version": settings.challenge_version}


@router.get("/version", tags=["public"])
def version(request: Request) -> dict[str, Any]:
    """Platform's readiness contract: api_version "1.0", its registry's challenge_version, capabilities."""
    settings = app_state(request).settings
    return {
        "api_version": prism.API_VERSION,
        "challenge_version": settings.challenge_version,
        "sdk_version": prism.SDK_VERSION,
        "prism_version": prism.__version__,
        "capabilities": capabilities(settings),
    }


def _submission(session: Session, submission_id: str) -> Submission:
    submission = session.get(Submission, submission_id) if len(submission_id) <= 36 else None
    if submission is None:
        raise ApiError(404, "not_found", f"no submission {submission_id!r}")
    return submission


@router.get("/v1/submissions/{submission_id}", tags=["public"])
def get_submission(submission_id: str, session: Annotated[Session, Depends(session_scope)]) -> dict[str, Any]:
    """Safe for anonymous reads: state, reason code, queue position, timestamps and scores."""
    return public_submission_view(session, _submission(session, submission_id))


@router.get("/internal/v1/submissions/{submission_id}", tags=["internal"], dependencies=[Depends(require_internal)])
def get_submission_full(submission_id: str, session: Annotated[Session, Depends(session_scope)]) -> dict[str, Any]:
    """Everything about one submission, with each stage's evidence (for Platform to relay to its miner)."""
    return full_submission_view(session, _submission(session, submission_id))


def _current_epoch(request: Request) -> int:
    return epoch_at(utcnow(), app_state(request).settings.epoch_seconds)


@router.get("/v1/epochs/current", tags=["public"])
def current_epoch(request: Request) -> dict[str, Any]:
    seconds = app_state(request).settings.epoch_seconds
    epoch = _current_epoch(request)
    return {"epoch": epoch, "epoch_seconds": seconds, "starts_at": epoch * seconds, "ends_at": (epoch + 1) * seconds}


@router.get("/v1/leaderboard", tags=["public"])
def get_leaderboard(
    request: Request,
    session: Annotated[Session, Depends(session_scope)],
    epoch: Annotated[int | None, Query(ge=0, le=MAX_EPOCH)] = None,
) -> dict[str, Any]:
    """One row per hotkey (its best score-eligible result), ties to the earliest submission."""
    chosen = _current_epoch(request) if epoch is None else epoch
    rows = leaderboard(eligible_results(session, epoch=chosen))
    return {
        "epoch": chosen,
        "rows": [
            {
                "rank": row.rank,
                "hotkey": row.result.hotkey,
                "submission_id": row.result.submission_id,
                "final_score": row.result.final_score,
                "bits_per_byte": row.result.bits_per_byte,
                "architecture_hash": row.result.architecture_hash,
                "submitted_at": row.result.created_at.isoformat(),
            }
            for row in rows
        ],
    }


@router.get("/v1/architectures", tags=["public"])
def get_architectures(session: Annotated[Session, Depends(session_scope)]) -> dict[str, Any]:
    return {
        "architectures": [
            {
                "graph_hash": arch.graph_hash,
                "owner_hotkey": arch.owner_hotkey,
                "owner_submission_id": arch.owner_submission_id,
                "discovered_at": arch.discovered_at.isoformat(),
                "completed_submissions": members,
            }
            for arch, members in architectures(session)
        ]
    }


@router.get(
    "/internal/v1/get_weights",
    tags=["internal"],
    dependencies=[Depends(require_internal)],
    response_class=Response,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def get_weights(request: Request) -> Response:
    """Platform's contract: one normalized weight per hotkey; served from memory, never waiting
    on the database (a background refresh keeps it current), dry-run.

    Platform does not compare the slug it gets back, so a call meant for another challenge is
    refused here (400, as Platform's challenge template does).
    """
    settings = app_state(request).settings
    slug = request.headers.get("x-base-challenge-slug")
    if slug is not None and slug != settings.challenge_slug:
        raise ApiError(400, "wrong_challenge", f"challenge slug {slug[:64]!r} is not {settings.challenge_slug!r}")
    return Response(app_state(request).weights.body(), media_type="application/json")
