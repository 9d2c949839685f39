"""Reading submission bodies: bounded while streaming, then parsed into (filename, bytes, metadata)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from prism.api.errors import ApiError

_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.(zip|py)$")


@dataclass(frozen=True, slots=True)
class SubmissionBody:
    filename: str
    data: bytes
    metadata: dict[str, Any] = field(default_factory=dict)


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it passes `limit` bytes (never buffered past it)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "invalid_content_length", "Content-Length is not a number")
        if int(declared) > limit:
            raise ApiError(413, "body_too_large", f"body of {declared} bytes exceeds max_body_bytes={limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"body exceeds max_body_bytes={limit}")
        chunks.append(chunk)
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
        try:
            document = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from exc
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
