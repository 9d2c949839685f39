"""Reason codes: the one place a stage's namespace is joined to a rule's code.

A reason code is dotted: `<namespace>.<rule>` (`static.import.forbidden`, `llm_review.rejected`).
Rule ids from the reviewers already carry their namespace (`static.import.forbidden`,
`contract.missing_build_model`), so joining blindly doubles it (`static.static.import.forbidden`);
`qualify` completes only a bare code, and `is_well_formed` is the check the tests run over
every path that makes a code.
"""

from __future__ import annotations

import itertools
import re

_SEGMENT = re.compile(r"[a-z0-9_]+")


def qualify(namespace: str, code: str) -> str:
    """`namespace.code` for a bare code; a code that names its own namespace stays as it is."""
    if not code:
        return namespace
    if "." in code or code == namespace:
        return code
    return f"{namespace}.{code}"


def is_well_formed(code: str) -> bool:
    """Lower-case dotted segments, no empty segment, no segment repeated right after itself."""
    segments = code.split(".")
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        return False
    return all(a != b for a, b in itertools.pairwise(segments))
