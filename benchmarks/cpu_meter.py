"""CPU seconds of this process and everything it starts, sandboxes included (for the benchmarks).

A sandbox's processes are not all reaped by this process's descendants (bubblewrap's init in its
PID namespace is not waited for), so children's rusage misses them. A cgroup-v1 cpuacct group of
this process's own does not: job cgroups are made under the worker's own cgroup (`cgroups.py`),
and in the cpuacct hierarchy, where PRISM makes none, every job stays in ours. Without a v1
cpuacct hierarchy this falls back to rusage (self + children), which undercounts sandboxes.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path


class CpuMeter:
    def __init__(self) -> None:
        self.group: Path | None = None
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            rest = right.split()
            if len(rest) > 2 and rest[0] == "cgroup" and "cpuacct" in rest[2].split(","):
                own = next(
                    row.split(":", 2)[2]
                    for row in Path("/proc/self/cgroup").read_text().splitlines()
                    if "cpuacct" in row.split(":", 2)[1].split(",")
                )
                self.group = Path(left.split()[4]) / own.lstrip("/") / f"prism-bench-{os.getpid()}"
                self.group.mkdir()
                (self.group / "cgroup.procs").write_text(str(os.getpid()))
                break
        if self.group is None:
            print("warning: no cgroup-v1 cpuacct hierarchy; sandboxes' CPU is undercounted", file=sys.stderr)

    def seconds(self) -> float:
        if self.group is not None:
            return int((self.group / "cpuacct.usage").read_text()) / 1e9
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    def close(self) -> None:
        if self.group is not None:
            (self.group.parent / "cgroup.procs").write_text(str(os.getpid()))
            self.group.rmdir()
