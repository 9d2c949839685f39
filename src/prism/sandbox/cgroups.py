"""One cgroup per job: cpu quota and weight, memory + swap, pids; the whole tree killed at the end.

cgroup v2 is used when its unified hierarchy carries the memory, pids and cpu controllers;
otherwise cgroup v1 with one directory per controller (memory, pids, cpu, and freezer so the
kill cannot race a fork). A host with neither raises `SandboxUnavailable`: a job is never run
without limits. The job's cgroup is a child of this process's own cgroup, so whatever limits the
host put on the worker still apply on top.

CPU weight: under contention the kernel shares CPU between sibling groups by weight, and every
job sits in one `prism-sandbox` group. With the default weight there, all jobs together would
weigh as much as one host process, and under load a job starves until its wall-clock budget runs
out. So each job gets a weight in proportion to its CPU limit (v1 `cpu.shares` 1024 per CPU, v2
`cpu.weight` 100 per CPU) and the parent the sum of its active jobs' (recomputed under a lock on
the parent whenever a job starts or ends, from the jobs actually there, so several workers agree).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from prism.sandbox.errors import SandboxInfraError, SandboxUnavailable
from prism.sandbox.spec import Limits

_V1_REQUIRED = ("memory", "pids", "cpu")
_CPU_PERIOD_US = 100_000
# (file, weight of one CPU, least, most, the kernel's default) for cgroup v1 and v2.
_WEIGHT = {1: ("cpu.shares", 1024, 2, 262_144, 1024), 2: ("cpu.weight", 100, 1, 10_000, 100)}


def cpu_weight(version: int, cpus: float) -> int:
    """The weight of a job with a limit of `cpus` CPUs (the kernel's default is one CPU's worth)."""
    _, per_cpu, least, most, _ = _WEIGHT[version]
    return min(most, max(least, round(per_cpu * cpus)))


@dataclass(frozen=True, slots=True)
class CgroupStats:
    peak_memory_bytes: int | None
    oom_killed: bool


@dataclass(frozen=True, slots=True)
class CgroupLayout:
    """Where job cgroups are created on this host."""

    version: int
    # v1: controller -> directory under which job cgroups go; v2: {"unified": that directory}.
    parents: tuple[tuple[str, Path], ...]


def _mountinfo() -> list[tuple[str, str, str, str]]:
    """(root, mountpoint, fstype, super options) for every cgroup mount."""
    rows = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if rest and rest[0] in ("cgroup", "cgroup2"):
            rows.append((fields[3], fields[4], rest[0], rest[2] if len(rest) > 2 else ""))
    return rows


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) -> this process's cgroup path."""
    paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _under_mount(mount_root: str, mountpoint: str, own: str) -> Path:
    relative = own[len(mount_root) :] if own.startswith(mount_root) and mount_root != "/" else own
    return Path(mountpoint) / relative.lstrip("/")


def detect_layout(v2_parent: Path | None = None) -> CgroupLayout:
    """Find usable controllers or refuse with a message that says what is missing."""
    mounts = _mountinfo()
    own = _own_paths()
    for root, mountpoint, fstype, _ in mounts:
        if fstype != "cgroup2":
            continue
        base = v2_parent or _under_mount(root, mountpoint, own.get("", "/"))
        controllers = set((Path(mountpoint) / "cgroup.controllers").read_text().split())
        if set(_V1_REQUIRED) <= controllers:
            return CgroupLayout(version=2, parents=(("unified", base / "prism-sandbox"),))
    parents: dict[str, Path] = {}
    for root, mountpoint, fstype, options in mounts:
        if fstype != "cgroup":
            continue
        for name in options.split(","):
            if name in (*_V1_REQUIRED, "freezer") and name not in parents:
                parents[name] = _under_mount(root, mountpoint, own.get(name, "/")) / "prism-sandbox"
    missing = [name for name in _V1_REQUIRED if name not in parents]
    if missing:
        raise SandboxUnavailable(
            f"cgroup controllers {', '.join(missing)} are not available (neither cgroup v2 nor v1); "
            "refusing to run a job without cpu, memory and pids limits"
        )
    return CgroupLayout(version=1, parents=tuple(sorted(parents.items())))


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise SandboxUnavailable(f"cannot set {path} to {value!r}: {exc.strerror}") from exc


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_keyed(path: Path, key: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        return None
    return None


class JobCgroup:
    """The cgroup(s) of one job. Create with `create`, always `close()` (kills and removes)."""

    def __init__(self, layout: CgroupLayout, dirs: dict[str, Path]) -> None:
        self.layout = layout
        self.dirs = dirs

    @classmethod
    def create(cls, layout: CgroupLayout, name: str, limits: Limits) -> JobCgroup:
        dirs: dict[str, Path] = {}
        try:
            for controller, parent in layout.parents:
                if layout.version == 2:
                    parent.mkdir(exist_ok=True)
                    _enable_v2_controllers(parent.parent)
                    _enable_v2_controllers(parent)
                else:
                    parent.mkdir(exist_ok=True)
                path = parent / name
                path.mkdir()
                dirs[controller] = path
        except FileExistsError as exc:
            raise SandboxInfraError(f"cgroup for job {name} already exists: {exc.filename}") from exc
        except OSError as exc:
            for path in dirs.values():
                with contextlib.suppress(OSError):
                    path.rmdir()
            raise SandboxUnavailable(f"cannot create the job cgroup under {exc.filename}: {exc.strerror}") from exc
        job = cls(layout, dirs)
        try:
            job._apply(limits)
        except SandboxUnavailable:
            job.close()
            raise
        return job

    def _apply(self, limits: Limits) -> None:
        quota = max(1000, int(limits.cpus * _CPU_PERIOD_US))
        swap_total = max(limits.memory_swap_bytes, limits.memory_bytes)
        if self.layout.version == 2:
            d = self.dirs["unified"]
            _write(d / "memory.max", str(limits.memory_bytes))
            if (d / "memory.swap.max").exists():
                _write(d / "memory.swap.max", str(swap_total - limits.memory_bytes))
            _write(d / "pids.max", str(limits.pids))
            _write(d / "cpu.max", f"{quota} {_CPU_PERIOD_US}")
            _write(d / "cpu.weight", str(cpu_weight(2, limits.cpus)))
            self.rebalance()
            return
        memory = self.dirs["memory"]
        _write(memory / "memory.limit_in_bytes", str(limits.memory_bytes))
        if (memory / "memory.memsw.limit_in_bytes").exists():
            _write(memory / "memory.memsw.limit_in_bytes", str(swap_total))
        elif swap_total == limits.memory_bytes:
            # No swap accounting: keep the job out of swap so the memory limit means what it says.
            _write(memory / "memory.swappiness", "0")
        _write(self.dirs["pids"] / "pids.max", str(limits.pids))
        _write(self.dirs["cpu"] / "cpu.cfs_period_us", str(_CPU_PERIOD_US))
        _write(self.dirs["cpu"] / "cpu.cfs_quota_us", str(quota))
        _write(self.dirs["cpu"] / "cpu.shares", str(cpu_weight(1, limits.cpus)))
        self.rebalance()

    def rebalance(self) -> None:
        """Give the jobs' parent the sum of its active jobs' weights (the default when none)."""
        directory = self.dirs.get("unified" if self.layout.version == 2 else "cpu")
        if directory is None:
            return
        rebalance_parent(directory.parent, self.layout.version)

    @property
    def procs_files(self) -> tuple[str, ...]:
        """Every `cgroup.procs` a process must join (written by the launcher before exec)."""
        return tuple(str(path / "cgroup.procs") for path in self.dirs.values())

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.dirs.values():
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
        return found

    def kill_all(self, *, timeout: float = 10.0) -> bool:
        """SIGKILL everything in the job, orphans included; True once the cgroup is empty."""
        deadline = time.monotonic() + timeout
        unified = self.dirs.get("unified")
        if unified is not None and (unified / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (unified / "cgroup.kill").write_text("1")
        while True:
            pids = self.pids()
            if not pids:
                return True
            self._freeze(True)
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            self._freeze(False)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def _freeze(self, frozen: bool) -> None:
        # Freezing first means no process can fork a new one between our listing and our kill.
        with contextlib.suppress(OSError):
            if "freezer" in self.dirs:
                (self.dirs["freezer"] / "freezer.state").write_text("FROZEN" if frozen else "THAWED")
            elif "unified" in self.dirs:
                (self.dirs["unified"] / "cgroup.freeze").write_text("1" if frozen else "0")

    def stats(self) -> CgroupStats:
        if self.layout.version == 2:
            d = self.dirs["unified"]
            kills = _read_keyed(d / "memory.events", "oom_kill")
            return CgroupStats(peak_memory_bytes=_read_int(d / "memory.peak"), oom_killed=bool(kills))
        memory = self.dirs["memory"]
        kills = _read_keyed(memory / "memory.oom_control", "oom_kill")
        if kills is None:  # kernels before 4.13: fall back to "the limit was hit"
            kills = _read_int(memory / "memory.memsw.failcnt") or _read_int(memory / "memory.failcnt")
        return CgroupStats(peak_memory_bytes=_read_int(memory / "memory.max_usage_in_bytes"), oom_killed=bool(kills))

    def close(self) -> None:
        self.kill_all()
        for path in self.dirs.values():
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        with contextlib.suppress(SandboxUnavailable):
            self.rebalance()


def rebalance_parent(parent: Path, version: int) -> int:
    """Set `parent`'s weight to the sum of its job groups' weights; returns what was written."""
    name, _, least, most, default = _WEIGHT[version]
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # workers starting and ending jobs at once write in turn
        weights = [_read_int(child / name) for child in parent.iterdir() if child.is_dir()]
        total = sum(w for w in weights if w is not None)
        value = min(most, max(least, total)) if total else default
        _write(parent / name, str(value))
        return value
    finally:
        os.close(fd)  # releases the lock


def _enable_v2_controllers(path: Path) -> None:
    control = path / "cgroup.subtree_control"
    enabled = set(control.read_text().split())
    wanted = [name for name in _V1_REQUIRED if name not in enabled]
    if not wanted:
        return
    try:
        control.write_text(" ".join(f"+{name}" for name in wanted))
    except OSError as exc:
        raise SandboxUnavailable(
            f"cannot enable {', '.join(wanted)} in {control}: {exc.strerror}; point PRISM_SANDBOX_CGROUP_PARENT "
            "at a delegated cgroup that holds no processes"
        ) from exc
