"""What a sandbox is asked to run, and what comes back. Frozen values, one seam.

A backend implements `Sandbox.run(spec) -> RunResult`. Nothing about the job's meaning lives
here: the evaluation harness, a self-test, or an operator's command all go through this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

SUBMISSION_MOUNT = "/submission"
DATA_MOUNT = "/data"
ARTIFACTS_MOUNT = "/artifacts"


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    cpus: float = 2.0
    memory_bytes: int = 4 * 1024**3
    memory_swap_bytes: int = 4 * 1024**3  # memory + swap; equal to memory means no swap
    pids: int = 256
    network: bool = False
    read_only: bool = True
    tmpfs_bytes: int = 256 * 1024**2
    artifacts_bytes: int = 512 * 1024**2
    gpu_count: int = 0
    gpu_type: str | None = None
    timeout_seconds: float = 600.0
    output_bytes: int = 256 * 1024  # per stream; the tail is kept
    # How much of /artifacts is read back into `RunResult.artifacts`; the rest stays on disk.
    artifact_read_bytes: int = 64 * 1024**2
    artifact_max_files: int = 4096

    def __post_init__(self) -> None:
        from prism.sandbox.validate import check_limits  # local: validate.py imports this module

        check_limits(self)


@dataclass(frozen=True, slots=True)
class Mount:
    """A host directory shown read-only inside the sandbox at `target`."""

    source: Path
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSpec:
    command: tuple[str, ...]
    mounts: tuple[Mount, ...] = ()
    # Host directory that appears writable at /artifacts; the caller creates and owns it.
    artifacts_dir: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    labels: Mapping[str, str] = field(default_factory=dict)
    workdir: str = "/"
    # Secrets to scrub from anything that comes back (stdout, stderr).
    redact: tuple[str, ...] = ()
    # Bytes written to the job's stdin, then closed (the evaluation's per-phase report key).
    # Backends that cannot deliver them say so with `accepts_stdin = False` (or no attribute).
    stdin: bytes = b""
    # Called with each chunk of the job's stdout as it arrives, before the tail is cut (live
    # progress). It runs in the backend's read loop and must not block. Backends that only see
    # stdout once the job has ended (the Platform broker) never call it.
    stdout_tap: Callable[[bytes], None] | None = field(default=None, compare=False)
    # Called once `stdin` is written, on a thread of the backend's: what it returns is written to
    # the job's stdin, which is then closed. It may block (the evaluation's host decides between
    # two phases while the job waits); the job's end does not wait for it. Only backends with
    # `accepts_stdin` and a live `stdout_tap` (bubblewrap, docker) call it.
    stdin_reply: Callable[[], bytes] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    exit_code: int | None
    timed_out: bool
    oom_killed: bool
    stdout: str
    stderr: str
    duration_seconds: float
    peak_memory_bytes: int | None = None
    # Regular files read back from /artifacts: relative path -> bytes (size-capped).
    artifacts: Mapping[str, bytes] = field(default_factory=dict)
    # Regular files too big for the read-back budget: still in the artifacts directory on disk.
    artifacts_left_on_disk: tuple[str, ...] = ()
    # Entries that were not regular files (links, fifos...) and were ignored.
    artifacts_skipped: tuple[str, ...] = ()
    stdout_bytes: int = 0  # how much the job wrote, before the tail was cut
    stderr_bytes: int = 0
    backend: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "artifacts", MappingProxyType(dict(self.artifacts)))

    def to_json(self) -> dict[str, object]:
        """A JSON-ready view; artifact contents are summarised by size, never dumped."""
        return {
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "oom_killed": self.oom_killed,
            "ok": self.ok,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "stdout_bytes": self.stdout_bytes,
            "stderr_bytes": self.stderr_bytes,
            "duration_seconds": round(self.duration_seconds, 3),
            "peak_memory_bytes": self.peak_memory_bytes,
            "artifacts": {name: len(data) for name, data in sorted(self.artifacts.items())},
            "artifacts_left_on_disk": list(self.artifacts_left_on_disk),
            "artifacts_skipped": list(self.artifacts_skipped),
            "backend": self.backend,
        }

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed


class Sandbox(Protocol):
    """Optional attributes a backend may declare: `accepts_stdin` (see `RunSpec.stdin`),
    `live_stdout` (`stdout_tap` sees output as it is written, and `stdin_reply` is honoured) and
    `train_mount`, the path where the platform itself mounts the locked train split, read-only,
    in every job (Platform's broker: docs/evaluation.md, "Where the data come from")."""

    name: str

    def run(self, spec: RunSpec) -> RunResult: ...
