"""Deterministic job ids: the same submission, attempt and phase always name the same job.

The broker and Docker clean up by job id; a worker that crashed mid-run and retries the cleanup
must hit exactly the containers the first attempt started, never another submission's.
"""

from __future__ import annotations

import hashlib
import re

from prism.sandbox.errors import SandboxSpecRejected

_PHASE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def job_id_for(submission_id: str, attempt: int, phase: str) -> str:
    """`prism-<phase>-<24 hex>`: safe as a container name, label value and path component."""
    if not submission_id:
        raise SandboxSpecRejected("job id needs a submission id")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise SandboxSpecRejected(f"attempt must be a non-negative int, got {attempt!r}")
    if not _PHASE.match(phase):
        raise SandboxSpecRejected(f"phase {phase!r} must match {_PHASE.pattern}")
    digest = hashlib.sha256(f"{submission_id}\0{attempt}\0{phase}".encode()).hexdigest()[:24]
    return f"prism-{phase}-{digest}"
