"""Console sessions: an operator logs in with the operator token once and gets a signed cookie.

The cookie never holds the token. It holds `issued.nonce.mac`, where `mac` is an HMAC over the
issue time and a random nonce, keyed by a key *derived* from the operator token. So:
- rotating the token logs every console session out (old MACs no longer verify);
- a stolen cookie expires after `SESSION_SECONDS` and never reveals the token;
- PRISM keeps no session table (several API processes verify the same cookie).

Every POST carries a CSRF token: an HMAC of the session's nonce under the same derived key, so it
is bound to one session and cannot be forged without the token. The cookie is HttpOnly and
SameSite=Strict as a second line. All comparisons are constant-time. Fail closed: with no
operator token configured the console answers 503, never opens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request

from prism.api.errors import ApiError
from prism.api.operator_identity import SHARED_IDENTITY, identify, named_tokens
from prism.config import Settings

COOKIE = "prism_console"
SESSION_SECONDS = 12 * 3600
_KEY_LABEL = b"prism-console-session-v1"


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    nonce: str
    issued_at: int
    csrf: str
    # Who logged in, from the token they used (see `operator_identity`); the audit actor.
    operator: str = SHARED_IDENTITY


def _key(token: str) -> bytes:
    return hmac.new(token.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()


def _mac(key: bytes, purpose: str, *parts: str) -> str:
    return hmac.new(key, "|".join((purpose, *parts)).encode("utf-8"), hashlib.sha256).hexdigest()


def operator_token(settings: Settings) -> str:
    token = settings.operator_token
    if not token and named_tokens():
        return ""  # only named operators: each has a token of their own
    if not token:
        raise ApiError(
            503, "auth_not_configured", "the operator token is not configured on this PRISM; the console is closed"
        )
    return token


def token_matches(settings: Settings, presented: str) -> bool:
    operator_token(settings)
    return identify(settings, presented) is not None


def _token_of(settings: Settings, operator: str) -> str | None:
    if operator == SHARED_IDENTITY:
        return settings.operator_token
    return named_tokens().get(operator)


def issue_cookie(settings: Settings, *, now: float | None = None, operator: str = SHARED_IDENTITY) -> str:
    """`issued.nonce.mac` for the shared operator token; `issued.nonce.mac.name` for a named one."""
    operator_token(settings)
    token = _token_of(settings, operator)
    if not token:
        raise ApiError(401, "unauthorized", "no such operator")
    key = _key(token)
    issued = str(int(now if now is not None else time.time()))
    nonce = secrets.token_hex(16)
    if operator == SHARED_IDENTITY:
        return f"{issued}.{nonce}.{_mac(key, 'session', issued, nonce)}"
    return f"{issued}.{nonce}.{_mac(key, 'session', issued, nonce, operator)}.{operator}"


def verify_cookie(settings: Settings, value: str | None, *, now: float | None = None) -> ConsoleSession | None:
    """The session a cookie proves, or None when it is missing, forged, from an old token, or expired."""
    if not value or len(value) > 300:
        return None
    parts = value.split(".")
    if len(parts) not in (3, 4):
        return None
    issued, nonce, mac = parts[:3]
    operator = parts[3] if len(parts) == 4 else SHARED_IDENTITY
    if len(parts) == 4 and operator == SHARED_IDENTITY:
        return None
    token = _token_of(settings, operator)
    if not token or not (issued.isdigit() and nonce and mac):
        return None
    key = _key(token)
    signed = (issued, nonce) if len(parts) == 3 else (issued, nonce, operator)
    if not hmac.compare_digest(mac.encode(), _mac(key, "session", *signed).encode()):
        return None
    age = (now if now is not None else time.time()) - int(issued)
    if not 0 <= age <= SESSION_SECONDS:
        return None
    return ConsoleSession(nonce=nonce, issued_at=int(issued), csrf=_mac(key, "csrf", nonce), operator=operator)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def page_session(request: Request) -> ConsoleSession:
    """For pages: a browser without a valid session is sent to the login page."""
    operator_token(settings_of(request))
    session = verify_cookie(settings_of(request), request.cookies.get(COOKIE))
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise ApiError(
            303,
            "login_required",
            "log in to the console first",
            {"Location": f"/console/login?next={quote(target, safe='')}", "Cache-Control": "no-store"},
        )
    return session


def action_session(request: Request) -> ConsoleSession:
    """For POST actions, before the body is read: 401 without a valid session."""
    operator_token(settings_of(request))
    session = verify_cookie(settings_of(request), request.cookies.get(COOKIE))
    if session is None:
        raise ApiError(401, "unauthorized", "no console session; log in first")
    return session


def check_csrf(session: ConsoleSession, presented: str | None) -> None:
    """403 unless the form carries this session's CSRF token."""
    if not presented or not hmac.compare_digest(presented.encode(), session.csrf.encode()):
        raise ApiError(403, "csrf_failed", "the form's CSRF token is missing or does not belong to this session")


def safe_next(target: str | None) -> str:
    """Only a console path is a valid place to go after login (no open redirect)."""
    if target and target.startswith("/console") and "//" not in target and "\\" not in target:
        return target
    return "/console"
