"""Submission intake over HTTP: the Platform bridge (bearer) and the optional signed public route."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from prism.api.auth import require_internal
from prism.api.bodies import SubmissionBody, check_request_hash, parse_submission, read_limited
from prism.api.errors import ApiError
from prism.api.signatures import InvalidHotkey, canonical_message, ss58_decode, verify_signature
from prism.api.state import app_state
from prism.pipeline.accept import prepare_submission, store_prepared
from prism.store.base import utcnow
from prism.store.db import writer_gate
from prism.store.models import Nonce, Submission

router = APIRouter()

# The bodies are read as a bounded stream, so FastAPI cannot infer them; describe them here.
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
            "text/x-python": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["filename", "code"],
                    "properties": {
                        "filename": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\\.(zip|py)$"},
                        "code": {"type": "string", "format": "byte", "description": "base64 of the archive"},
                        "metadata": {"type": "object"},
                    },
                }
            },
        },
    },
    "parameters": [
        {
            "name": "X-Submission-Filename",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "optional for raw bodies; without it the type comes from the magic bytes (ZIP or Python)",
        },
    ],
}
_BRIDGE_HEADERS = [
    {"name": name, "in": "header", "required": name == "X-Base-Verified-Hotkey", "schema": {"type": "string"}}
    for name in ("X-Base-Verified-Hotkey", "X-Base-Challenge-Slug", "X-Base-Verified-Nonce", "X-Base-Request-Hash")
]

# Header generations Platform has used, newest first.
_HOTKEY = ("x-base-verified-hotkey", "x-platform-verified-hotkey")
_SLUG = ("x-base-challenge-slug", "x-platform-challenge-slug")
_NONCE = ("x-base-verified-nonce", "x-platform-verified-nonce")
_REQUEST_HASH = ("x-base-request-hash", "x-platform-request-hash")


def _header(request: Request, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = request.headers.get(name)
        if value is not None:
            return value.strip()
    return None


def _check_hotkey(hotkey: str | None) -> str:
    if not hotkey:
        raise ApiError(400, "missing_hotkey", "the verified hotkey header is missing")
    try:
        ss58_decode(hotkey)
    except InvalidHotkey as exc:
        raise ApiError(400, "invalid_hotkey", f"hotkey is not an SS58 address: {exc}") from exc
    return hotkey


def _created(
    request: Request,
    body: SubmissionBody,
    *,
    hotkey: str,
    origin: str,
    actor: str,
    extra: dict[str, Any],
    nonce: str | None = None,
) -> JSONResponse:
    """Intake, then one short transaction (run in a worker thread, off the event loop)."""
    state = app_state(request)
    # Intake first, outside any transaction: the write lock is held only to store.
    prepared = prepare_submission(
        state.settings,
        hotkey=hotkey,
        filename=body.filename,
        data=body.data,
        origin=origin,
        metadata={**body.metadata, **extra},
    )
    with writer_gate(state.engine), state.sessions() as session:
        # The transaction reads before it writes: take SQLite's write lock at BEGIN so concurrent
        # requests queue on the busy timeout instead of failing to upgrade (no-op on PostgreSQL).
        session.connection(execution_options={"immediate": True})
        if nonce is not None:
            _consume_nonce(session, hotkey, nonce, ttl=state.settings.signature_ttl_seconds)
        submission, created = store_prepared(session, prepared, actor=actor)
        session.commit()
    return _submission_answer(submission, created)


def _submission_answer(submission: Submission, created: bool) -> JSONResponse:
    return JSONResponse(
        {
            "id": submission.id,
            "status": submission.status,
            "reason_code": submission.reason_code,
            "created": created,
        },
        status_code=201 if created else 200,
    )


@router.post(
    "/internal/v1/bridge/submissions",
    dependencies=[Depends(require_internal)],
    tags=["internal"],
    summary="Platform bridge: store a verified miner's submission",
    openapi_extra={**_BODY, "parameters": _BODY["parameters"] + _BRIDGE_HEADERS},
    responses={201: {"description": "stored"}, 200: {"description": "the same bytes from this hotkey already exist"}},
)
async def bridge_submission(request: Request) -> JSONResponse:
    settings = app_state(request).settings
    slug = _header(request, _SLUG)
    if slug is not None and slug != settings.challenge_slug:
        raise ApiError(400, "wrong_challenge", f"challenge slug {slug!r} is not {settings.challenge_slug!r}")
    hotkey = _check_hotkey(_header(request, _HOTKEY))
    raw = await read_limited(request, settings.max_body_bytes)
    request_hash = _header(request, _REQUEST_HASH)
    if request_hash is not None:
        expected = check_request_hash(request_hash)
        actual = hashlib.sha256(raw).hexdigest()
        if not hmac.compare_digest(expected, actual):
            raise ApiError(400, "request_hash_mismatch", "X-Base-Request-Hash does not match the sha256 of the body")
    body = parse_submission(
        raw,
        content_type=request.headers.get("content-type", ""),
        filename_header=request.headers.get("x-submission-filename"),
    )
    nonce = _header(request, _NONCE)
    if nonce is not None and not (1 <= len(nonce) <= 128 and nonce.isascii() and nonce.isprintable()):
        raise ApiError(400, "invalid_nonce", "the verified nonce must be 1 to 128 printable ASCII characters")
    extra = {"platform_nonce": nonce} if nonce else {}
    # Intake and the database are blocking work: off the event loop, so reads stay responsive.
    return await run_in_threadpool(
        _created, request, body, hotkey=hotkey, origin="bridge", actor="platform", extra=extra
    )


@router.post(
    "/v1/submissions",
    tags=["public"],
    summary="Direct signed submission (disabled unless PRISM_PUBLIC_SUBMISSIONS_ENABLED)",
    openapi_extra=_BODY,
)
async def public_submission(
    request: Request,
    x_hotkey: Annotated[str | None, Header()] = None,
    x_signature: Annotated[str | None, Header()] = None,
    x_nonce: Annotated[str | None, Header()] = None,
    x_timestamp: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    settings = app_state(request).settings
    if not settings.public_submissions_enabled:
        raise ApiError(403, "public_submissions_disabled", "direct submissions are disabled; submit through Platform")
    if not (x_hotkey and x_signature and x_nonce and x_timestamp):
        raise ApiError(401, "missing_signature", "X-Hotkey, X-Signature, X-Nonce and X-Timestamp are all required")
    hotkey = _check_hotkey(x_hotkey)
    if not (1 <= len(x_nonce) <= 128) or not x_nonce.isprintable() or not x_nonce.isascii():
        raise ApiError(400, "invalid_nonce", "X-Nonce must be 1 to 128 printable characters")
    try:
        timestamp = float(x_timestamp)
    except ValueError as exc:
        raise ApiError(401, "invalid_timestamp", "X-Timestamp must be Unix seconds") from exc
    if not math.isfinite(timestamp) or abs(time.time() - timestamp) > settings.signature_ttl_seconds:
        raise ApiError(401, "stale_request", f"X-Timestamp is outside ±{settings.signature_ttl_seconds}s of now")
    raw = await read_limited(request, settings.max_body_bytes)
    message = canonical_message(
        challenge_slug=settings.challenge_slug, hotkey=hotkey, nonce=x_nonce, timestamp=x_timestamp, body=raw
    )
    if not verify_signature(hotkey=hotkey, signature_hex=x_signature, message=message):
        raise ApiError(401, "invalid_signature", "X-Signature is not this hotkey's sr25519 signature of the request")
    body = parse_submission(
        raw,
        content_type=request.headers.get("content-type", ""),
        filename_header=request.headers.get("x-submission-filename"),
    )
    return await run_in_threadpool(
        _created,
        request,
        body,
        hotkey=hotkey,
        origin="public",
        actor=f"miner:{hotkey}",
        extra={},
        nonce=x_nonce,
    )


def _consume_nonce(session: Session, hotkey: str, nonce: str, *, ttl: int) -> None:
    """Each nonce works once per hotkey. Nonces older than twice the TTL can go: such requests are stale anyway."""
    session.execute(delete(Nonce).where(Nonce.created_at < utcnow() - timedelta(seconds=2 * ttl)))
    try:
        with session.begin_nested():
            session.add(Nonce(hotkey=hotkey, nonce=nonce, created_at=utcnow()))
    except IntegrityError as exc:
        raise ApiError(409, "nonce_replayed", "this nonce was already used by this hotkey") from exc
