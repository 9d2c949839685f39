"""Run a command under limits: bubblewrap (local), Docker CLI, Platform broker. One method: `run(spec)`.

`get_sandbox(settings)` picks the backend named by `settings.sandbox_backend`; nothing a miner
sends can reach that choice.
"""

from __future__ import annotations

from prism.config import Settings
from prism.sandbox.errors import SandboxUnavailable
from prism.sandbox.jobs import job_id_for
from prism.sandbox.spec import (
    ARTIFACTS_MOUNT,
    DATA_MOUNT,
    SUBMISSION_MOUNT,
    Limits,
    Mount,
    RunResult,
    RunSpec,
    Sandbox,
)

__all__ = [
    "ARTIFACTS_MOUNT",
    "DATA_MOUNT",
    "SUBMISSION_MOUNT",
    "Limits",
    "Mount",
    "RunResult",
    "RunSpec",
    "Sandbox",
    "get_sandbox",
    "job_id_for",
]


def get_sandbox(settings: Settings) -> Sandbox:
    backend = settings.sandbox_backend
    if backend == "bubblewrap":
        from prism.sandbox.bubblewrap import BubblewrapSandbox

        return BubblewrapSandbox(settings)
    if backend == "docker":
        from prism.sandbox.docker import DockerSandbox

        return DockerSandbox(settings)
    if backend == "broker":
        from prism.sandbox.broker import BrokerSandbox

        return BrokerSandbox(settings)
    raise SandboxUnavailable(f"unknown sandbox backend {backend!r}")
