"""Stop a submission's sandbox job the moment its lease is lost.

After a stall longer than the lease, another worker may already run the same submission; the
old run must not go on beside it. The local backend (bubblewrap) starts each phase through
`sandbox/launcher.py` as a child of the worker process, with its plan — the job's cgroups and
the phase's work dir, which names the submission — on its command line. This finds this
process's launchers for the submission and kills every process in their cgroups, then the
launcher itself. Container backends are stopped through their own cleanup: Docker by the
`prism.submission` label every phase carries, the broker by the deterministic job ids of the
submission's phases (`job_id_for`, for every attempt the retry budget allows).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from pathlib import Path

from prism.config import Settings
from prism.errors import PrismError
from prism.evaluation.phase import PHASES
from prism.sandbox import job_id_for

log = logging.getLogger(__name__)
LAUNCHER = "launcher.py"


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def _plan(pid: int) -> dict[str, object] | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    for index, arg in enumerate(argv[:-1]):
        if arg.endswith(LAUNCHER.encode()):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                plan = json.loads(argv[index + 1])
                return plan if isinstance(plan, dict) else None
    return None


def _kill_cgroup(procs_file: str) -> int:
    killed = 0
    with contextlib.suppress(OSError):
        for line in Path(procs_file).read_text().split():
            with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                os.kill(int(line), signal.SIGKILL)
                killed += 1
    return killed


def stop_local_jobs(submission_id: str, *, parent: int | None = None) -> int:
    """Kill this process's sandbox jobs for `submission_id`; returns how many launchers it stopped."""
    marker = f"/work/{submission_id}/"
    stopped = 0
    for pid in _children(os.getpid() if parent is None else parent):
        plan = _plan(pid)
        if plan is None or marker not in json.dumps(plan.get("binds", [])):
            continue
        procs = plan.get("cgroup_procs", [])
        for procs_file in procs if isinstance(procs, list) else []:
            _kill_cgroup(str(procs_file))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        stopped += 1
    if stopped:
        log.warning("lease lost: stopped %d sandbox job(s)", stopped, extra={"submission_id": submission_id})
    return stopped


def stop_container_jobs(settings: Settings, submission_id: str) -> int:
    """Remove the submission's containers on the Docker or broker backend; returns how many
    removals were asked for. A failure is logged, never raised: the heartbeat goes on."""
    asked = 0
    try:
        if settings.sandbox_backend == "docker":
            from prism.sandbox.docker import DockerSandbox

            asked = len(DockerSandbox(settings).cleanup_labelled("prism.submission", submission_id[:200]))
        elif settings.sandbox_backend == "broker":
            from prism.sandbox.broker import BrokerSandbox

            broker = BrokerSandbox(settings)
            for attempt in range(settings.worker_max_infra_retries + 2):
                for phase in PHASES:
                    broker.cleanup(job_id_for(submission_id, attempt, phase))
                    asked += 1
    except (PrismError, OSError) as exc:
        log.warning("lease lost: could not stop the container jobs: %s", exc, extra={"submission_id": submission_id})
    if asked:
        log.warning("lease lost: asked %d container removal(s)", asked, extra={"submission_id": submission_id})
    return asked
