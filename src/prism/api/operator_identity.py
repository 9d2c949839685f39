"""Who an operator is: read from the credential they presented, never from a form field.

Two kinds of operator credential:
- `PRISM_OPERATOR_TOKENS_FILE`: one `name:token` per line (`#` comments); each person has a
  token, and the audit log names them as `operator:<name>`;
- the single operator token (`PRISM_OPERATOR_TOKEN(_FILE)`, else the shared token): whoever
  holds it is `operator:operator` — the log cannot say more, and does not pretend to.

Comparisons are constant-time and every configured token is compared, so timing says nothing
about which one matched.
"""

from __future__ import annotations

import hmac
import os
import re
from pathlib import Path

from fastapi import Request

from prism.config import Settings
from prism.errors import ConfigError

TOKENS_FILE_VARIABLE = "PRISM_OPERATOR_TOKENS_FILE"
SHARED_IDENTITY = "operator"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def parse_tokens_file(text: str) -> dict[str, str]:
    """name -> token; a malformed line, a duplicate name or a short token is a `ConfigError`."""
    tokens: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, token = line.partition(":")
        name, token = name.strip(), token.strip()
        if not sep or not _NAME.fullmatch(name):
            raise ConfigError(f"{TOKENS_FILE_VARIABLE} line {number}: expected 'name:token' with a plain name")
        if len(token) < 16:
            raise ConfigError(f"{TOKENS_FILE_VARIABLE} line {number}: the token of {name!r} is shorter than 16")
        if name in tokens:
            raise ConfigError(f"{TOKENS_FILE_VARIABLE} line {number}: {name!r} is named twice")
        tokens[name] = token
    return tokens


def named_tokens() -> dict[str, str]:
    path = os.environ.get(TOKENS_FILE_VARIABLE)
    if not path:
        return {}
    try:
        return parse_tokens_file(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        # The message names the variable, not the path: it may reach unauthenticated callers.
        raise ConfigError(f"{TOKENS_FILE_VARIABLE} cannot be read: {exc.strerror}") from exc


def identify(settings: Settings, presented: str) -> str | None:
    """The operator a token belongs to, or None."""
    found: str | None = None
    candidate = presented.strip().encode("utf-8")
    for name, token in named_tokens().items():
        if hmac.compare_digest(candidate, token.encode("utf-8")) and found is None:
            found = name
    shared = settings.operator_token
    if shared and hmac.compare_digest(candidate, shared.encode("utf-8")) and found is None:
        found = SHARED_IDENTITY
    return found


def any_operator_configured(settings: Settings) -> bool:
    return bool(settings.operator_token) or bool(named_tokens())


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def operator_actor(request: Request) -> str:
    """The audit actor of a request that already passed `require_operator`."""
    settings: Settings = request.app.state.settings
    name = identify(settings, bearer(request) or "")
    return f"operator:{name or SHARED_IDENTITY}"
