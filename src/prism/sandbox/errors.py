"""Errors of the isolation layer.

    PrismError
    └── SandboxError                the isolation layer could not do its job
        ├── SandboxUnavailable      bubblewrap, cgroups or a runtime piece is missing: refuse, never run unconfined
        ├── SandboxSpecRejected     the job spec itself is unsafe or malformed (caller's bug, not retryable)
        ├── GpuRequestRefused       a GPU request that policy or the host cannot honour (refused before placement)
        └── SandboxInfraError       the job could not be started or finished by the infrastructure (retryable)
            └── BrokerBusy          the Platform broker answered 429: try again later

A job that ran and failed (non-zero exit, timeout, OOM) is not an error: it is a `RunResult`.
"""

from __future__ import annotations

from prism.errors import PrismError


class SandboxError(PrismError):
    """The isolation layer could not do its job."""

    retryable: bool = False


class SandboxUnavailable(SandboxError):
    """A required isolation mechanism is missing on this host; the job is refused, never run unconfined."""


class SandboxSpecRejected(SandboxError):
    """The spec asks for something unsafe or malformed (a bad mount, bytecode in the submission...)."""


class GpuRequestRefused(SandboxError):
    """A GPU request that the policy or the host cannot honour; refused before any placement."""


class SandboxInfraError(SandboxError):
    """The job could not be started or collected by the infrastructure; retrying may succeed."""

    retryable = True


class BrokerBusy(SandboxInfraError):
    """The Platform broker answered 429 (no capacity now)."""
