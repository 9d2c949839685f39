"""Run a command under limits: bubblewrap (local), Docker CLI, Platform broker. One method: `run(spec)`.

`get_sandbox(settings)` picks the backend named by `settings.sandbox_backend`; nothing a miner
sends can reach that choice. `get_heldout_sandbox(settings)` is the backend of the held-out phase
where it is not that one (`heldout_backend`): on Platform, a local sandbox on the scorer's host,
where the secret val split and the trained weights already are.
"""

from __future__ import annotations

from prism.config import Settings
from prism.sandbox.errors import SandboxError, SandboxUnavailable
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
    "get_heldout_sandbox",
    "get_sandbox",
    "heldout_backend",
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


def heldout_backend(settings: Settings) -> str | None:
    """The local backend the held-out phase runs on, or None: where the other phases run.

    `auto`: on Platform (the broker is the backend and the secret val split is mounted on this
    host, `PRISM_BASE_EVAL_VAL_DATA_DIR`) the held-out phase runs here in bubblewrap, so no broker
    request carries the trained weights or validation bytes, whatever the model's size; elsewhere
    it runs where training ran.
    """
    choice = settings.heldout_sandbox
    if choice == "same":
        return None
    if choice == "auto":
        on_platform = settings.sandbox_backend == "broker" and settings.base_eval_val_data_dir is not None
        return "bubblewrap" if on_platform else None
    return None if choice == settings.sandbox_backend else choice


def heldout_unavailable(backend: str, settings: Settings, exc: SandboxError) -> SandboxError:
    """The same kind of error (our infrastructure's, never the miner's), naming the setting."""
    return type(exc)(
        f"the held-out phase runs in the local {backend} sandbox on this host "
        f"(PRISM_HELDOUT_SANDBOX={settings.heldout_sandbox}) and it cannot run here: {exc}. "
        f"Give the worker's container what {backend} needs (docs/operators.md, the held-out sandbox) "
        "or set PRISM_HELDOUT_SANDBOX=same to ship the held-out phase to the main backend"
    )


def get_heldout_sandbox(settings: Settings) -> Sandbox | None:
    """The held-out phase's own sandbox, or None where it runs on the main one."""
    backend = heldout_backend(settings)
    if backend is None:
        return None
    try:
        return get_sandbox(settings.model_copy(update={"sandbox_backend": backend}))
    except SandboxError as exc:
        raise heldout_unavailable(backend, settings, exc) from exc
