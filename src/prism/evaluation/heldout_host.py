"""The held-out phase on the scorer's own host, in a local sandbox (`PRISM_HELDOUT_SANDBOX`).

On Platform the secret val split is mounted only where PRISM's worker runs, and the trained
weights are already here (drained from the train job, verified by sha256 in `work_dir`). Shipping
them to the broker would put the weights in the job's environment (Platform carries a GPU job's
mounts there, ~1.5 MiB at most: a few hundred thousand parameters) and validation bytes on a GPU
node. So the held-out phase runs here instead, in a local sandbox with the same walls, the job's
CPU and memory limits and no GPU: it is inference over a fixed window, cheap next to training.

The job is the same job (budgets, seeds, score eligibility, the lease the manifest records); only
where this phase runs changes, so `compute.gpu_count` still says what training had. A local
sandbox that cannot run is our infrastructure's fault, named with the setting: the worker retries
and holds the submission, never scores it and never blames the miner.
"""

from __future__ import annotations

from dataclasses import replace

from prism.config import Settings
from prism.evaluation.jobs import EvaluationJob
from prism.evaluation.results import HeldoutResult, TrainResult
from prism.evaluation.runner import run_heldout
from prism.intake.project import Project
from prism.sandbox import heldout_backend, heldout_unavailable
from prism.sandbox.errors import SandboxInfraError, SandboxUnavailable
from prism.sandbox.spec import Sandbox


def local_heldout_job(job: EvaluationJob) -> EvaluationJob:
    """The job as the scorer's host runs its held-out phase: on the CPU, under the job's limits."""
    return replace(job, gpu_count=0, gpu_type=None)


def run_heldout_here(
    job: EvaluationJob, project: Project, sandbox: Sandbox, train: TrainResult, settings: Settings
) -> HeldoutResult:
    """`run_heldout` in the local held-out sandbox; its faults name PRISM_HELDOUT_SANDBOX."""
    try:
        return run_heldout(local_heldout_job(job), project, sandbox, train)
    except (SandboxUnavailable, SandboxInfraError) as exc:
        backend = heldout_backend(settings) or sandbox.name
        raise heldout_unavailable(backend, settings, exc) from exc


def run_heldout_placed(
    job: EvaluationJob,
    project: Project,
    sandbox: Sandbox,
    train: TrainResult,
    *,
    heldout_sandbox: Sandbox | None,
    settings: Settings,
) -> HeldoutResult:
    """The held-out phase where the settings place it: `heldout_sandbox`, else with the others."""
    if heldout_sandbox is None:
        return run_heldout(job, project, sandbox, train)
    return run_heldout_here(job, project, heldout_sandbox, train, settings)
