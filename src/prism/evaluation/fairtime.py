"""Fair time: budgets charged for the time a model had the CPU, not for the time the host took it away.

On a busy host the model's process is runnable but waits in the scheduler's queue; wall-clock
deadlines then turn the host's load into the miner's timeout. The kernel records that waiting
per task (`/proc/<pid>/schedstat`, second field: run_delay in ns). The recorder's clock charges

    charged = wall − (run_delay of the model's main thread + run_delay of the recorder)

so time spent waiting for a CPU is not the miner's, while time spent computing, sleeping or
blocking is. One exception closes the obvious game (a model starving its own main thread with
extra threads): a process that received at least `FULL_SHARE` of its cores over the interval was
not starved, and is charged the whole wall time. Wall clock remains the outer bound: past
`outer_wall_seconds` with budget left, the recorder reports `host_starved`, which is our
infrastructure's failure and retried, never the miner's.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

FULL_SHARE = 0.9
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ProcFiles:
    """`/proc` files kept open and read again at offset 0, which regenerates them: a fresh reading
    without an open and a close each time (the clock reads three files per sample, often)."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def read(self, path: str) -> str:
        fd = self._fds.get(path)
        if fd is None:
            fd = self._fds[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return os.pread(fd, 4096, 0).decode("ascii")

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


def _read(path: str, files: ProcFiles | None) -> str:
    if files is not None:
        return files.read(path)
    with open(path, encoding="ascii") as handle:
        return handle.read()


def run_delay_seconds(pid: int, files: ProcFiles | None = None) -> float:
    """Seconds the main thread of `pid` spent runnable but waiting for a CPU (0 when unknown)."""
    try:
        return int(_read(f"/proc/{pid}/schedstat", files).split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def process_cpu_seconds(pid: int, files: ProcFiles | None = None) -> float:
    """User + system CPU seconds of all threads of `pid` (0 when unknown)."""
    try:
        fields = _read(f"/proc/{pid}/stat", files).rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, ValueError, IndexError):
        return 0.0


@dataclass(frozen=True, slots=True)
class Sample:
    wall: float
    waited: float  # run_delay of the model's main thread + the recorder's
    model_cpu: float


@dataclass
class FairClock:
    """Charged seconds for one model process, with `origin` on the monotonic clock."""

    model_pid: int
    cores: int
    origin: float = field(default_factory=time.monotonic)
    recorder_pid: int = field(default_factory=os.getpid)
    start: Sample | None = None
    files: ProcFiles = field(default_factory=ProcFiles, repr=False)

    def __post_init__(self) -> None:
        self.start = Sample(self.origin, 0.0, 0.0)
        self.start = self.sample()

    def sample(self) -> Sample:
        waited = run_delay_seconds(self.model_pid, self.files) + run_delay_seconds(self.recorder_pid, self.files)
        return Sample(time.monotonic(), waited, process_cpu_seconds(self.model_pid, self.files))

    def close(self) -> None:
        self.files.close()

    def charged_between(self, a: Sample, b: Sample) -> float:
        wall = max(b.wall - a.wall, 0.0)
        if wall <= 0:
            return 0.0
        if b.model_cpu - a.model_cpu >= FULL_SHARE * self.cores * wall:
            return wall  # it had its cores: the waiting was its own doing
        return min(wall, max(wall - (b.waited - a.waited), 0.0))

    def now(self) -> float:
        """`origin` + charged seconds since the clock started: comparable with monotonic deadlines."""
        assert self.start is not None
        return self.origin + self.charged_between(self.start, self.sample())
