"""The HTTP edge, before any route runs: values the database cannot store, ambiguous identity
headers, bodies that stall, and requests that cannot finish because the database hangs.

- A NUL, or percent-encoding that is not UTF-8 (a lone surrogate), in the path or the query is
  refused with 400: such an id could only reach the database as an error.
- Identity headers that appear twice (two verified hotkeys, two challenge slugs, ...) are refused
  with 400 instead of letting the first one win silently.
- A body that stops arriving (shorter than its Content-Length, or a slow client) ends in 408 once
  one read waits longer than `body_read_timeout_seconds`.
- A request with no answer after `request_timeout_seconds` (a hung database) gets 503 with a JSON
  body and Retry-After; the work left behind in its thread ends with the statement timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prism.api.errors import ApiError

# Headers that name who is asking, for what, or how to read the body: each must appear once.
IDENTITY_HEADERS = frozenset(
    name.encode()
    for name in (
        "authorization",
        "content-length",
        "content-type",
        "x-base-verified-hotkey",
        "x-platform-verified-hotkey",
        "x-base-challenge-slug",
        "x-platform-challenge-slug",
        "x-base-verified-nonce",
        "x-platform-verified-nonce",
        "x-base-request-hash",
        "x-platform-request-hash",
        "x-submission-filename",
        "x-hotkey",
        "x-signature",
        "x-nonce",
        "x-timestamp",
    )
)
# Old and new generations of one Platform header must agree when both are sent.
HEADER_GENERATIONS = (
    (b"x-base-verified-hotkey", b"x-platform-verified-hotkey"),
    (b"x-base-challenge-slug", b"x-platform-challenge-slug"),
    (b"x-base-verified-nonce", b"x-platform-verified-nonce"),
    (b"x-base-request-hash", b"x-platform-request-hash"),
)
RETRY_AFTER_SECONDS = 5


class BodyReadTimeout(ApiError):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, "body_timeout", f"the request body stopped arriving for {seconds:g}s")


def request_problem(scope: Scope) -> tuple[str, str] | None:
    """(code, message) when the request line or headers cannot be served, else None."""
    raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
    for part, what in ((raw_path, "path"), (scope.get("query_string", b""), "query")):
        decoded = unquote_to_bytes(part)
        if b"\x00" in decoded:
            return "invalid_characters", f"the {what} contains a NUL character"
        try:
            decoded.decode("utf-8")
        except UnicodeDecodeError:
            return "invalid_characters", f"the {what} is not valid UTF-8 (e.g. a lone surrogate)"
    seen: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        key = name.lower()
        if key in IDENTITY_HEADERS:
            if key in seen:
                return "duplicate_header", f"the header {key.decode()} appears more than once"
            seen[key] = value
    for new, old in HEADER_GENERATIONS:
        if new in seen and old in seen and seen[new].strip() != seen[old].strip():
            return "conflicting_headers", f"{new.decode()} and {old.decode()} disagree"
    return None


def _json_error(
    status: int, code: str, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> tuple[Message, Message]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


class EdgeGuard:
    """Pure ASGI middleware (no buffering, so uploads still stream through `read_limited`)."""

    def __init__(self, app: ASGIApp, *, request_timeout: float, body_read_timeout: float) -> None:
        self.app = app
        self.request_timeout = request_timeout
        self.body_read_timeout = body_read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = request_problem(scope)
        if problem is not None:
            for message in _json_error(400, *problem):
                await send(message)
            return
        started = False
        answered = False

        async def timed_receive() -> Message:
            try:
                return await asyncio.wait_for(receive(), self.body_read_timeout)
            except TimeoutError:
                raise BodyReadTimeout(self.body_read_timeout) from None

        async def watched_send(message: Message) -> None:
            nonlocal started
            if answered:  # the guard already answered 503; the late work's reply is dropped
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, timed_receive, watched_send))
        done, _pending = await asyncio.wait({task}, timeout=self.request_timeout)
        if task in done:
            task.result()
            return
        if started:  # already answering (a long download): let it finish
            await task
            return
        answered = True
        task.cancel()
        retry = ((b"retry-after", str(RETRY_AFTER_SECONDS).encode()),)
        for message in _json_error(
            503,
            "request_timeout",
            f"no answer within {self.request_timeout:g}s (the database may be unavailable); retry later",
            retry,
        ):
            await send(message)
        # The client already has its answer; whatever the abandoned work ends with is moot.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def install(app: Any, *, request_timeout: float, body_read_timeout: float) -> None:
    app.add_middleware(EdgeGuard, request_timeout=request_timeout, body_read_timeout=body_read_timeout)
