"""Work units for Platform's validators: the master's internal routes and the validators' signed ones.

Platform's master (bearer token + `X-Base-Challenge-Slug`, every 30 s) reads
`GET /internal/v1/work_units` and turns each unit into one `gpu` assignment: `submission_id`
becomes the assignment's `work_unit_id`, `submission_ref` is the miner's hotkey, `payload` is
copied to the validator (an optional `resume_checkpoint_ref` is lifted out of it). The listing
holds nothing secret: no probe seed, no data order, no held-out data, no archive bytes.

A validator reaches PRISM through Platform's public proxy (`/challenges/<slug>/v1/...`), which
strips signature headers, so every validator request is a signed JSON envelope
(`prism.validators.signing`): `claim` binds the unit and returns the job (with the unit's probe
seed), `archive` returns the submission's bytes by content hash, `result` takes the one result.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from prism.api.auth import require_internal, require_operator
from prism.api.bodies import read_limited
from prism.api.errors import ApiError
from prism.api.state import app_state, session_scope
from prism.config import Settings
from prism.store.runtime_configs import load_runtime_config
from prism.store.submissions import load_archive
from prism.store.validators import UnitStatus, ValidatorStanding, ValidatorUnit
from prism.validators import units as unit_store
from prism.validators.errors import ValidatorRefused
from prism.validators.signing import Envelope, EnvelopeError, Kind, parse_envelope, verify_envelope

router = APIRouter()
ENVELOPE_LIMIT = 64 * 1024
_SLUG_HEADERS = ("x-base-challenge-slug", "x-platform-challenge-slug")
_ENVELOPE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": [
                        "kind",
                        "work_unit_id",
                        "archive_sha256",
                        "validator_hotkey",
                        "nonce",
                        "timestamp",
                        "signature",
                    ],
                    "properties": {
                        "kind": {"type": "string", "enum": ["claim", "archive", "progress", "result"]},
                        "work_unit_id": {"type": "string"},
                        "archive_sha256": {"type": "string"},
                        "validator_hotkey": {"type": "string"},
                        "nonce": {"type": "string"},
                        "timestamp": {"type": "integer"},
                        "payload": {"type": "object"},
                        "signature": {"type": "string", "description": "0x-hex sr25519 signature"},
                    },
                }
            }
        },
    }
}


def _check_slug(request: Request, settings: Settings) -> None:
    for name in _SLUG_HEADERS:
        value = request.headers.get(name)
        if value is not None and value.strip() != settings.challenge_slug:
            raise ApiError(400, "wrong_challenge", f"slug {value.strip()!r} is not {settings.challenge_slug!r}")


def paths(unit: ValidatorUnit) -> dict[str, str]:
    return {
        "claim_path": f"/v1/validators/work_units/{unit.id}/claim",
        "archive_path": f"/v1/validators/archives/{unit.archive_sha256}",
        "progress_path": f"/v1/validators/work_units/{unit.id}/progress",
        "result_path": f"/v1/validators/work_units/{unit.id}/result",
    }


def work_unit_view(unit: ValidatorUnit, settings: Settings) -> dict[str, Any]:
    """One unit in Platform's shape: nothing secret in it."""
    job = unit.job
    budget = job.get("budget", {})
    return {
        "submission_id": unit.id,
        "submission_ref": unit.hotkey,
        "payload": {
            "prism_submission_id": unit.submission_id,
            "replica": unit.replica,
            "archive_sha256": unit.archive_sha256,
            "code_hash": job.get("code_hash"),
            "runtime_config_version": unit.runtime_config_version,
            "dataset_fingerprint": job.get("dataset_fingerprint"),
            "phases": ["inspect", "train"],
            "mode": job.get("mode"),
            "gpu": {"gpu_count": job.get("gpu_count"), "gpu_type": job.get("gpu_type")},
            "budget": {key: budget.get(key) for key in ("seq_len", "batch_size", "token_budget", "wall_clock_seconds")},
            "prism_url": settings.validators_public_url,
            **paths(unit),
        },
    }


@router.get(
    "/internal/v1/work_units",
    dependencies=[Depends(require_internal)],
    tags=["internal"],
    summary="Platform's master: the submissions waiting for a validator's GPU run",
)
def list_work_units(request: Request, session: Annotated[Session, Depends(session_scope)]) -> dict[str, Any]:
    settings = app_state(request).settings
    _check_slug(request, settings)
    units = unit_store.listed_units(session)
    return {"challenge_slug": settings.challenge_slug, "work_units": [work_unit_view(u, settings) for u in units]}


class FoldBody(BaseModel):
    job_id: str = Field(min_length=1, max_length=128)
    task_id: str = Field(min_length=1, max_length=128)
    reason: str = Field("work_unit_max_attempts_exhausted", max_length=200)


@router.post(
    "/internal/v1/work_units/fold",
    dependencies=[Depends(require_internal)],
    tags=["internal"],
    summary="Platform's master: a unit it gave up on (retries exhausted)",
)
def fold_work_unit(
    request: Request, body: FoldBody, session: Annotated[Session, Depends(session_scope)]
) -> dict[str, Any]:
    """Platform folds only units that carry `job_id`/`task_id`; PRISM's carry neither, so this
    answers 200 and folds a PRISM unit only when `job_id` names one still open or leased: it is
    withdrawn and the train stage opens a replacement. Repeating it is harmless (Platform retries)."""
    _check_slug(request, app_state(request).settings)
    unit = session.get(ValidatorUnit, body.job_id, with_for_update=True)
    folded = unit is not None and unit.status in unit_store.LIVE
    if unit is not None and folded:
        unit.status = UnitStatus.EXPIRED.value
        session.commit()
    return {"job_id": body.job_id, "task_id": body.task_id, "folded": folded, "reason": body.reason}


# -- validators ---------------------------------------------------------------------------------


async def _envelope(request: Request, kind: Kind, limit: int, unit_id: str | None) -> Envelope:
    settings = app_state(request).settings
    raw = await read_limited(request, limit)
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", "the body is not JSON") from exc
    try:
        envelope = parse_envelope(data, expected_kind=kind)
        verify_envelope(envelope, slug=settings.challenge_slug, ttl_seconds=settings.signature_ttl_seconds)
    except EnvelopeError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    if unit_id is not None and envelope.work_unit_id != unit_id:
        raise ApiError(400, "unit_mismatch", "the envelope names another work unit than the path")
    return envelope


def _admitted(session: Session, envelope: Envelope, settings: Settings) -> None:
    """Allowed validator, unused nonce; raises `ValidatorRefused`."""
    # SQLite: take the write lock now, so two validators cannot both bind one unit.
    session.connection(execution_options={"immediate": True})
    policy = load_runtime_config(session).config.validators
    unit_store.check_allowed(policy, envelope.validator_hotkey)
    unit_store.consume_nonce(session, envelope, ttl_seconds=settings.signature_ttl_seconds)


def _refused(exc: ValidatorRefused) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


def _claim(session: Session, envelope: Envelope, settings: Settings) -> dict[str, Any]:
    try:
        _admitted(session, envelope, settings)
        unit = unit_store.claim(session, envelope, load_runtime_config(session).config.validators)
    except ValidatorRefused as exc:
        if exc.code == "not_independent":
            session.commit()  # the unit is withdrawn so that a replacement can open
        else:
            session.rollback()
        raise _refused(exc) from exc
    answer = {
        "work_unit_id": unit.id,
        "archive_sha256": unit.archive_sha256,
        "lease_expires_at": unit.lease_expires_at.isoformat() if unit.lease_expires_at else None,
        "lease_seconds": load_runtime_config(session).config.validators.lease_seconds,
        # Secret to this unit: the steps and positions its causality probes use.
        "job": {**unit.job, "probe_seed": unit.probe_seed},
        **paths(unit),
    }
    session.commit()
    return answer


@router.post(
    "/v1/validators/work_units/{unit_id}/claim",
    tags=["validators"],
    summary="A validator claims a work unit (signed envelope); answers the job to run",
    openapi_extra=_ENVELOPE_BODY,
)
async def claim_work_unit(
    unit_id: str, request: Request, session: Annotated[Session, Depends(session_scope)]
) -> dict[str, Any]:
    envelope = await _envelope(request, "claim", ENVELOPE_LIMIT, unit_id)
    answer: dict[str, Any] = await run_in_threadpool(_claim, session, envelope, app_state(request).settings)
    return answer


def _archive(session: Session, envelope: Envelope, settings: Settings, sha256: str) -> bytes:
    if envelope.archive_sha256 != sha256:
        raise ApiError(400, "archive_mismatch", "the envelope names another archive than the path")
    try:
        _admitted(session, envelope, settings)
        unit = unit_store.assigned_unit(session, envelope)
    except ValidatorRefused as exc:
        session.rollback()
        raise _refused(exc) from exc
    data = load_archive(session, unit.submission_id)
    if data is None:
        raise ApiError(404, "archive_missing", "the submission's archive is gone")
    session.commit()
    return data


@router.post(
    "/v1/validators/archives/{sha256}",
    tags=["validators"],
    summary="The archive of a unit assigned to this validator, by content hash (signed envelope)",
    openapi_extra=_ENVELOPE_BODY,
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
async def fetch_archive(sha256: str, request: Request, session: Annotated[Session, Depends(session_scope)]) -> Response:
    envelope = await _envelope(request, "archive", ENVELOPE_LIMIT, None)
    data = await run_in_threadpool(_archive, session, envelope, app_state(request).settings, sha256)
    return Response(data, media_type="application/zip", headers={"X-Archive-Sha256": envelope.archive_sha256})


def _progress(session: Session, envelope: Envelope, settings: Settings) -> dict[str, Any]:
    try:
        _admitted(session, envelope, settings)
        unit = unit_store.renew(session, envelope, load_runtime_config(session).config.validators)
    except ValidatorRefused as exc:
        session.rollback()
        raise _refused(exc) from exc
    answer = {
        "work_unit_id": unit.id,
        "lease_expires_at": unit.lease_expires_at.isoformat() if unit.lease_expires_at else None,
    }
    session.commit()
    return answer


@router.post(
    "/v1/validators/work_units/{unit_id}/progress",
    tags=["validators"],
    summary="A validator renews the lease of the unit it is running (signed envelope)",
    openapi_extra=_ENVELOPE_BODY,
)
async def renew_lease(
    unit_id: str, request: Request, session: Annotated[Session, Depends(session_scope)]
) -> dict[str, Any]:
    envelope = await _envelope(request, "progress", ENVELOPE_LIMIT, unit_id)
    answer: dict[str, Any] = await run_in_threadpool(_progress, session, envelope, app_state(request).settings)
    return answer


def _result(session: Session, envelope: Envelope, settings: Settings) -> dict[str, Any]:
    try:
        _admitted(session, envelope, settings)
        result = unit_store.accept_result(session, envelope)
    except ValidatorRefused as exc:
        session.rollback()
        raise _refused(exc) from exc
    answer = {"work_unit_id": result.unit_id, "accepted": True, "status": result.status, "verdict": result.verdict}
    session.commit()
    return answer


@router.post(
    "/v1/validators/work_units/{unit_id}/result",
    tags=["validators"],
    summary="A validator's one result for its unit (signed envelope; counted once)",
    openapi_extra=_ENVELOPE_BODY,
)
async def post_result(
    unit_id: str, request: Request, session: Annotated[Session, Depends(session_scope)]
) -> dict[str, Any]:
    settings = app_state(request).settings
    envelope = await _envelope(request, "result", settings.validators_max_result_bytes, unit_id)
    answer: dict[str, Any] = await run_in_threadpool(_result, session, envelope, settings)
    return answer


@router.get(
    "/internal/v1/validators",
    dependencies=[Depends(require_operator)],
    tags=["operator"],
    summary="Each validator's standing: agreed, odd one out, invalid, expired, flagged",
)
def validator_standing(session: Annotated[Session, Depends(session_scope)]) -> dict[str, Any]:
    rows = session.scalars(select(ValidatorStanding).order_by(ValidatorStanding.hotkey))
    return {
        "validators": [
            {
                "hotkey": r.hotkey,
                "agreed": r.agreed,
                "odd_one_out": r.odd_one_out,
                "invalid": r.invalid,
                "expired": r.expired,
                "flagged": r.flagged,
            }
            for r in rows
        ]
    }
