"""The recorder's half of the jail: what the model's process may read and write, and its start.

`spawn_jailed` is the only way a model's process is started (`harness.ModelProcess.start` calls
it, for the main model and any replica): the child executes `python -m prism.evaluation.jail`,
which builds the walls and then executes the model's interpreter. The recorder reads the jail's
status line before it sends anything; a jail that could not build a required wall is our
infrastructure's failure (`InfraFailure`), never the miner's, and never a run without the wall.

Read roots are computed from the recorder's own runtime (interpreter prefix, site-packages,
PRISM's source) plus the submission, and refused if one of them contains a path the model must
not see (the data, the job spec, /artifacts): a misconfigured layout fails closed here.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from prism.evaluation.probes import InfraFailure

if TYPE_CHECKING:
    from prism.evaluation.prefork import Spare

# System files every Python process needs (shared libraries, the loader cache, CPU facts).
_SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/etc/ld.so.cache", "/proc/cpuinfo")
_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
_GPU_READ = ("/proc/driver/nvidia", "/sys/devices", "/sys/bus/pci", "/sys/module/nvidia")
_STATUS_TIMEOUT_S = 120.0


class ChildProcess(Protocol):
    """What the recorder asks of a model's process: `subprocess.Popen`, or `prefork.ForkedChild`."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Jailed:
    proc: ChildProcess
    scratch: Path
    walls: Mapping[str, Any]


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def read_roots(submission: Path) -> tuple[str, ...]:
    """The runtime the recorder itself runs on, and the submission: nothing else."""
    import prism

    candidates = {sys.base_prefix, sys.prefix, sys.exec_prefix, str(Path(prism.__file__).resolve().parent.parent)}
    for entry in sys.path:
        if entry and ("site-packages" in entry or "dist-packages" in entry) and os.path.isdir(entry):
            candidates.add(entry)
    candidates.add(str(submission))
    roots = {os.path.realpath(p) for p in candidates if p}
    roots.discard("/")
    return tuple(sorted(roots | set(_SYSTEM_READ)))


def _gpu_devices() -> tuple[str, ...]:
    dev = Path("/dev")
    return tuple(str(p) for p in sorted(dev.glob("nvidia*")))


def jail_config(
    *, submission: Path, scratch: Path, status_fd: int, require: bool, device: str, forbidden: Iterable[Path]
) -> dict[str, Any]:
    reads = read_roots(submission)
    for secret in forbidden:
        real = os.path.realpath(secret)
        for root in reads:
            if _within(real, os.path.realpath(root)):
                raise InfraFailure(f"jail layout: read root {root} would expose {real} to the model's process")
    devices = list(_DEVICES)
    if device.startswith("cuda"):
        devices += _gpu_devices()
        reads = (*reads, *_GPU_READ)
    biggest = 1 << 34  # 16 GiB: files only in scratch, which the tmpfs bounds anyway
    return {
        "status_fd": status_fd,
        "require": require,
        "read": list(reads),
        "write": [str(scratch)],
        "devices": devices,
        "rlimits": {"RLIMIT_CORE": [0, 0], "RLIMIT_NOFILE": [1024, 1024], "RLIMIT_FSIZE": [biggest, biggest]},
    }


def _read_status(fd: int, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The jail's last status line; EOF comes when it executes the model (close-on-exec)."""
    data = b""
    deadline = time.monotonic() + _STATUS_TIMEOUT_S
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise InfraFailure("the jail did not report within its start-up time")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    lines = [line for line in data.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        raise InfraFailure(f"the jail exited without a status (exit {proc.wait()})")
    try:
        status = json.loads(lines[-1])
    except ValueError as exc:
        raise InfraFailure(f"the jail's status is unreadable: {lines[-1][:200]!r}") from exc
    if not isinstance(status, dict) or status.get("ok") is not True:
        error = status.get("error") if isinstance(status, dict) else status
        raise InfraFailure(f"the model's jail could not be built: {error}")
    return status


def spawn_jailed(
    argv: list[str],
    *,
    submission: Path,
    env: Mapping[str, str],
    pass_fds: tuple[int, ...],
    require: bool,
    device: str,
    forbidden: Iterable[Path] = (),
) -> Jailed:
    """Start `argv` inside the jail; its stdout and stderr are the recorder's stderr."""
    scratch = Path(tempfile.mkdtemp(prefix="prism-model-"))
    status_r, status_w = os.pipe()
    try:
        config = jail_config(
            submission=submission,
            scratch=scratch,
            status_fd=status_w,
            require=require,
            device=device,
            forbidden=forbidden,
        )
        child_env = {**env, "HOME": str(scratch), "TMPDIR": str(scratch)}
        trampoline = [sys.executable, "-S", "-B", "-m", "prism.evaluation.jail", json.dumps(config), "--"]
        proc = subprocess.Popen(
            [*trampoline, *argv],
            pass_fds=(*pass_fds, status_w),
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr.fileno(),  # the model's prints never reach the report stream
            stderr=sys.stderr.fileno(),
            env=child_env,
            cwd="/",
        )
    except BaseException:
        os.close(status_r)
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        os.close(status_w)
    try:
        walls = _read_status(status_r, proc)
    except InfraFailure:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        os.close(status_r)
    return Jailed(proc=proc, scratch=scratch, walls={**walls, "started": "exec"})


def start_forked(
    spare: Spare,
    *,
    submission: Path,
    env: Mapping[str, str],
    require: bool,
    device: str,
    forbidden: Iterable[Path] = (),
) -> Jailed:
    """Jail a child forked before any secret was read (`prefork`): the same configuration and the
    same walls as `spawn_jailed`, built by the child itself before it runs anything else."""
    from prism.evaluation.wire import WireError

    scratch = Path(tempfile.mkdtemp(prefix="prism-model-"))
    try:
        config = jail_config(
            submission=submission, scratch=scratch, status_fd=-1, require=require, device=device, forbidden=forbidden
        )
        spare.channel.send_json(
            {"op": "jail", "config": config, "env": {**env, "HOME": str(scratch), "TMPDIR": str(scratch)}}
        )
        status = spare.channel.recv_json(timeout=_STATUS_TIMEOUT_S)
    except (InfraFailure, WireError, ValueError) as exc:
        spare.child.kill()
        spare.child.wait()
        spare.channel.close()
        shutil.rmtree(scratch, ignore_errors=True)
        if isinstance(exc, InfraFailure):
            raise
        raise InfraFailure(f"the forked model process did not report its jail: {exc}") from exc
    if status.get("ok") is not True:
        spare.child.wait()
        spare.channel.close()
        shutil.rmtree(scratch, ignore_errors=True)
        raise InfraFailure(f"the model's jail could not be built: {status.get('error')}")
    walls = {key: value for key, value in status.items() if key != "op"}
    return Jailed(proc=spare.child, scratch=scratch, walls={**walls, "started": "fork"})
