"""Configuration problems that can be found before any request: unreadable or empty secret files.

A secret file is read lazily when first needed; a missing one used to surface only as a 503 on
the first authenticated request, while `/health` said "ok". `configuration_problems` reads every
configured secret file afresh (so a file removed after start is noticed too) and names the
*variable*, never the path: the answer may reach unauthenticated callers, and a path to a secret
is a map for an attacker.
"""

from __future__ import annotations

import os
from pathlib import Path

SECRET_FILE_VARIABLES = (
    "PRISM_SHARED_TOKEN_FILE",
    "CHALLENGE_SHARED_TOKEN_FILE",
    "PRISM_OPERATOR_TOKEN_FILE",
    "PRISM_OPERATOR_TOKENS_FILE",
    "PRISM_LLM_API_KEY_FILE",
    "PRISM_BROKER_TOKEN_FILE",
)


def configuration_problems() -> tuple[str, ...]:
    """One line per secret file variable that is set but names no readable, non-empty file."""
    problems = []
    for name in SECRET_FILE_VARIABLES:
        path = os.environ.get(name)
        if not path:
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"{name} names a file that cannot be read ({exc.strerror})")
            continue
        if not text.strip():
            problems.append(f"{name} names an empty file")
    return tuple(problems)
