"""The outermost layer: operator surfaces closed to Platform's public proxy, login throttled, no compression.

Platform's public proxy (`/challenges/<slug>/<path>`) forwards any path to PRISM, strips
`Authorization` and identity headers, and marks every forwarded request `X-Base-Proxy: true`.
So a request carrying that mark came from the internet. For such a request the operator
surfaces (`/metrics`, `/docs`, `/redoc`, `/openapi.json`, `/console...`, including the login
form) answer 404 unless the request proves an operator: a valid console session cookie, or the
operator bearer token. Operators reach the console at PRISM's own address (the challenge
overlay, an SSH tunnel); the proxy is for miners. The mark only ever closes doors: a caller
that adds it itself locks itself out, nothing more.

Failed console logins are throttled per client address (`LOGIN_FAILURES` within
`LOGIN_WINDOW_SECONDS`, then 429 with Retry-After), so the token cannot be guessed at speed.

Responses are never compressed: Platform's proxy reads the upstream body decoded and forwards
`content-encoding` unchanged, so a compressed answer reaches the miner corrupted. The request's
`Accept-Encoding` is removed here, before any inner layer could choose to compress.
"""

from __future__ import annotations

import hmac
import json
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

from prism.api.console_auth import COOKIE, verify_cookie
from prism.config import Settings
from prism.errors import PrismError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROXY_MARK = b"x-base-proxy"
OPERATOR_PATHS = ("/metrics", "/docs", "/redoc", "/openapi.json", "/console")
LOGIN_PATH = "/console/login"
LOGIN_FAILURES = 5
LOGIN_WINDOW_SECONDS = 300.0


def is_operator_surface(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in OPERATOR_PATHS)


class LoginThrottle:
    """Failed logins per client in a sliding window; thread-safe, per process."""

    def __init__(self, *, failures: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW_SECONDS) -> None:
        self.failures, self.window = failures, window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float) -> int | None:
        """Seconds until `client` may try again, or None when it may try now."""
        with self._lock:
            recent = self._recent(client, now)
            if len(recent) < self.failures:
                return None
            return max(1, math.ceil(recent[0] + self.window - now))

    def failed(self, client: str, now: float) -> None:
        with self._lock:
            self._recent(client, now).append(now)

    def _recent(self, client: str, now: float) -> deque[float]:
        recent = self._seen.setdefault(client, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(self._seen) > 10_000:  # bound memory against address churn
            self._seen = {k: v for k, v in self._seen.items() if v}
        return recent


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _proves_operator(scope: Scope, settings: Settings) -> bool:
    try:
        token = settings.operator_token
    except PrismError:  # an unreadable token file proves nothing (the routes themselves say 503)
        return False
    if not token:
        return False
    auth = _header(scope, b"authorization") or ""
    scheme, _, presented = auth.partition(" ")
    if scheme.lower() == "bearer" and presented and hmac.compare_digest(presented.strip().encode(), token.encode()):
        return True
    cookies = SimpleCookie()
    try:
        cookies.load(_header(scope, b"cookie") or "")
    except Exception:
        return False
    morsel = cookies.get(COOKIE)
    return morsel is not None and verify_cookie(settings, morsel.value) is not None


async def _reply(send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"error": {"code": code, "message": message}, "detail": message}).encode()
    base = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": base + headers})
    await send({"type": "http.response.body", "body": body})


class ProxyGuard:
    def __init__(self, app: ASGIApp, *, settings: Settings, throttle: LoginThrottle | None = None) -> None:
        self.app = app
        self.settings = settings
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["headers"] = [(k, v) for k, v in scope.get("headers", ()) if k.lower() != b"accept-encoding"]
        path = scope.get("path", "")
        proxied = (_header(scope, PROXY_MARK) or "").strip().lower() == "true"
        if proxied and is_operator_surface(path) and not _proves_operator(scope, self.settings):
            await _reply(send, 404, "not_found", "not found", [])
            return
        if path == LOGIN_PATH and scope.get("method") == "POST":
            await self._login(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.throttle.retry_after(client, time.monotonic())
        if wait is not None:
            message = f"too many failed logins; try again in {wait} s"
            await _reply(send, 429, "too_many_logins", message, [(b"retry-after", str(wait).encode())])
            return
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        await self.app(scope, receive, watch)
        if status and status[0] >= 400:
            self.throttle.failed(client, time.monotonic())
