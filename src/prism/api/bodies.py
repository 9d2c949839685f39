"""Reading submission bodies: bounded while streaming, then parsed into (filename, bytes, metadata)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from prism.api.errors import ApiError

_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.(zip|py)$")

# Limits on values that reach the database, checked at the edge (each error names its limit).
MAX_EPOCH = 2**31 - 1  # ~290,000 years of 72-minute epochs; larger cannot be a real epoch
MAX_JSON_DEPTH = 32
MAX_JSON_INT_DIGITS = 19  # within a signed 64-bit integer, which every JSON reader keeps exact
MAX_JSON_INT = 2**63 - 1
MAX_JSON_FLOAT = float(2**53)
_REQUEST_HASH = re.compile(r"^(?:sha256:)?[0-9a-fA-F]{64}$")


class _Refused(ValueError):
    """A JSON value PRISM will not store; the message says which rule."""


def _reject_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number JSON can carry (non-finite numbers are refused)")


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise _Refused(f"the number {text[:32]} is not finite")
    if abs(value) >= MAX_JSON_FLOAT:
        # PostgreSQL keeps JSON numbers as decimals: past 2^53 a float would come back as a
        # different number. Refused whole rather than stored changed.
        raise _Refused(f"the number {text[:32]} is outside ±2^53, where it cannot be kept exactly")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise _Refused(f"an integer has more than {MAX_JSON_INT_DIGITS} digits")
    value = int(text)
    if abs(value) > MAX_JSON_INT:
        raise _Refused("an integer is outside the signed 64-bit range")
    return value


def check_text(value: str, what: str) -> None:
    """No NUL (PostgreSQL cannot store it) and no lone surrogate (not encodable as UTF-8)."""
    if "\x00" in value:
        raise _Refused(f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Refused(f"{what} contains a lone surrogate (not valid Unicode)") from None


def check_json_value(value: Any, *, depth: int = 0, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Walk a parsed document: depth, strings and keys the database can store."""
    if depth > max_depth:
        raise _Refused(f"JSON is nested deeper than {max_depth} levels")
    if isinstance(value, str):
        check_text(value, "a string")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, "a key")
            check_json_value(item, depth=depth + 1, max_depth=max_depth)
    elif isinstance(value, list):
        for item in value:
            check_json_value(item, depth=depth + 1, max_depth=max_depth)


def strict_json(raw: bytes | str) -> Any:
    """Parse JSON refusing what PostgreSQL or SQLite cannot store faithfully (400 / 422 ApiError)."""
    try:
        document = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except _Refused as exc:
        raise ApiError(422, "invalid_value", f"JSON refused: {exc}") from None
    except RecursionError:
        raise ApiError(422, "invalid_value", f"JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {str(exc)[:200]}") from None
    try:
        check_json_value(document)
    except _Refused as exc:
        raise ApiError(422, "invalid_value", f"JSON refused: {exc}") from None
    return document


def check_request_hash(value: str) -> str:
    """The lowercase hex digest of an `X-Base-Request-Hash` (sha256, optionally `sha256:`-prefixed)."""
    if not _REQUEST_HASH.fullmatch(value):
        raise ApiError(400, "invalid_request_hash", "X-Base-Request-Hash must be 64 hex digits (sha256)")
    return value.lower().removeprefix("sha256:")


@dataclass(frozen=True, slots=True)
class SubmissionBody:
    filename: str
    data: bytes
    metadata: dict[str, Any] = field(default_factory=dict)


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it passes `limit` bytes (never buffered past it)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not re.fullmatch(r"[0-9]{1,19}", declared):
            raise ApiError(400, "invalid_content_length", "Content-Length is not a number")
        if int(declared) > limit:
            raise ApiError(413, "body_too_large", f"body of {declared} bytes exceeds max_body_bytes={limit}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "body_too_large", f"body exceeds max_body_bytes={limit}")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "incomplete_body", "the client closed the connection before the body ended") from None
    if declared is not None and size != int(declared):
        raise ApiError(400, "incomplete_body", f"the body has {size} bytes, Content-Length said {declared}")
    return b"".join(chunks)


def check_filename(filename: object) -> str:
    if not isinstance(filename, str) or not _FILENAME.fullmatch(filename):
        raise ApiError(
            400,
            "invalid_filename",
            "filename must be a plain name ending in .zip or .py (letters, digits, '.', '_', '-'; at most 128)",
        )
    return filename


def parse_submission(raw: bytes, *, content_type: str, filename_header: str | None) -> SubmissionBody:
    """JSON `{filename, code: base64, metadata}` or the raw archive with `X-Submission-Filename`."""
    if content_type.split(";", 1)[0].strip().lower() == "application/json":
        document = strict_json(raw)
        if not isinstance(document, dict):
            raise ApiError(422, "invalid_request", "JSON body must be an object {filename, code, metadata}")
        filename = check_filename(document.get("filename"))
        code = document.get("code")
        if not isinstance(code, str) or not code:
            raise ApiError(422, "invalid_request", "'code' must be a non-empty base64 string")
        try:
            data = base64.b64decode(code, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ApiError(400, "invalid_base64", "'code' is not valid base64") from exc
        metadata = document.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ApiError(422, "invalid_request", "'metadata' must be an object")
        if len(json.dumps(metadata)) > 16_384:
            raise ApiError(422, "invalid_request", "'metadata' is larger than 16 KiB")
        return SubmissionBody(filename, data, metadata)
    if filename_header is None:
        # Platform forwards X-Submission-Filename only when the miner sent it: name the upload by
        # its magic bytes (intake confirms the type again), a ZIP or else a single Python file.
        return SubmissionBody("submission.zip" if raw[:2] == b"PK" else "submission.py", raw)
    if not raw:
        raise ApiError(400, "empty_body", "the body is empty")
    return SubmissionBody(check_filename(filename_header), raw)
