"""Scrub known secrets from any text PRISM stores or logs about an LLM conversation.

Redaction is by value: every secret PRISM holds (`Settings.known_secrets()`, the LLM key among
them) is replaced wherever it appears, including inside provider error bodies that echo a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"
# Values shorter than this are too likely to occur by chance to be scrubbed blindly.
MIN_SECRET_CHARS = 6
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    # An Authorization header echoed back by a proxy carries a token we may not know.
    return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
