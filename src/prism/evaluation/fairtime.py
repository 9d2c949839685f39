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

import os
import time
from dataclasses import dataclass, field

FULL_SHARE = 0.9
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def run_delay_seconds(pid: int) -> float:
    """Seconds the main thread of `pid` spent runnable but waiting for a CPU (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as handle:
            return int(handle.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of all threads of `pid` (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
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

    def __post_init__(self) -> None:
        self.start = Sample(self.origin, 0.0, 0.0)
        self.start = self.sample()

    def sample(self) -> Sample:
        waited = run_delay_seconds(self.model_pid) + run_delay_seconds(self.recorder_pid)
        return Sample(time.monotonic(), waited, process_cpu_seconds(self.model_pid))

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
