"""Bearer-token checks for internal and operator routes.

Fail closed: a route whose token is not configured answers 503, never opens. Comparisons are
constant-time. Identity headers are read only after the token has been verified.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from prism.api.errors import ApiError
from prism.config import Settings


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def check_bearer(request: Request, expected: str | None, *, what: str, code: str = "unauthorized") -> None:
    if not expected:
        raise ApiError(503, "auth_not_configured", f"{what} is not configured on this PRISM; the route is closed")
    presented = _presented_token(request)
    if presented is None:
        raise ApiError(401, code, f"missing bearer token: {what} is required", {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise ApiError(401, code, f"invalid bearer token: it is not {what}", {"WWW-Authenticate": "Bearer"})


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def require_internal(request: Request) -> None:
    """Platform's shared token: the only requests whose verified-hotkey header is believed.

    `async` although it awaits nothing: it never blocks (the token is read once and kept), and a
    plain `def` dependency costs every internal request a hop to the thread pool and back.

    Platform relays PRISM's answer to the miner verbatim, so a wrong gateway token must not look
    like a bad signature: it carries its own code and says whose configuration is wrong.
    """
    check_bearer(
        request,
        settings_of(request).shared_token,
        what="the shared Platform token (a gateway configuration fault, not the miner's signature)",
        code="platform_token_rejected",
    )


def require_operator(request: Request) -> None:
    """The operator token, or one of the named operators' tokens (`operator_identity`)."""
    from prism.api.operator_identity import any_operator_configured, identify

    settings = settings_of(request)
    if not any_operator_configured(settings):
        raise ApiError(
            503, "auth_not_configured", "the operator token is not configured on this PRISM; the route is closed"
        )
    presented = _presented_token(request)
    if presented is None:
        raise ApiError(401, "unauthorized", "missing bearer token", {"WWW-Authenticate": "Bearer"})
    if identify(settings, presented) is None:
        raise ApiError(401, "unauthorized", "invalid bearer token", {"WWW-Authenticate": "Bearer"})
