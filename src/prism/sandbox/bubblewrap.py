"""The embedded backend: bubblewrap namespaces + cgroup limits + seccomp, as an unprivileged uid.

The chain for one job (see `launcher.py` for the root half):

    worker ──▶ launcher (root, private mount ns: stages mounts, artifacts tmpfs of quota size)
                 └─▶ fork: join job cgroup ▸ rlimits ▸ setuid(sandbox uid) ▸ exec bwrap, empty env
                       └─▶ bwrap: new user/pid/net/ipc/uts/cgroup/mount ns, no nested userns,
                                  tmpfs root remounted read-only, seccomp, die-with-parent ▸ job

The root of the sandbox is an empty tmpfs holding only `/usr`, the interpreter prefix, the
packages and PRISM's `src` (read-only), a private `/proc`, a minimal `/dev`, sized `/tmp` and
`/dev/shm`, the job's mounts and `/artifacts`. The network namespace holds only loopback.
bubblewrap is never run as root (that would map the sandbox user onto host root).
"""

# ruff: noqa: S108 - every /tmp here is the sandbox's own private tmpfs, never the host's

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from prism.config import Settings
from prism.sandbox import launcher
from prism.sandbox.artifacts import read_artifacts
from prism.sandbox.cgroups import CgroupLayout, JobCgroup, detect_layout
from prism.sandbox.errors import GpuRequestRefused, SandboxInfraError, SandboxSpecRejected, SandboxUnavailable
from prism.sandbox.output import TailBuffer, build_result, feed_stdin, pump
from prism.sandbox.runtime import INNER_BIN, INNER_SITE, INNER_SRC, RuntimeLayout, discover_runtime
from prism.sandbox.seccomp import build_filter
from prism.sandbox.spec import ARTIFACTS_MOUNT, Limits, RunResult, RunSpec
from prism.sandbox.validate import check_spec

_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_GPU_CONTROL = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
_LAUNCH_GRACE_S = 30.0


@dataclass(frozen=True, slots=True)
class DataFds:
    """Descriptors bubblewrap reads file contents from (memfds, made by the worker)."""

    seccomp: int
    passwd: int
    group: int
    hosts: int


def gpu_devices(count: int, dev: Path = Path("/dev")) -> tuple[str, ...]:
    """The device nodes for `count` GPUs, or `GpuRequestRefused` when the host has fewer."""
    if count <= 0:
        return ()
    gpus = sorted((p for p in dev.glob("nvidia[0-9]*") if p.name[6:].isdigit()), key=lambda p: int(p.name[6:]))
    if len(gpus) < count:
        raise GpuRequestRefused(f"{count} GPU(s) requested but this host exposes {len(gpus)}")
    control = [dev / name for name in _GPU_CONTROL if (dev / name).exists()]
    return tuple(str(p) for p in (*control, *gpus[:count]))


def sandbox_env(spec: RunSpec, runtime: RuntimeLayout) -> dict[str, str]:
    """The job's whole environment: a fixed base, the spec's own variables, forced safety flags."""
    threads = str(max(1, int(spec.limits.cpus)))
    env = {
        "PATH": f"{INNER_BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }
    env.update(spec.env)
    env["PYTHONPATH"] = ":".join(p for p in (spec.env.get("PYTHONPATH", ""), runtime.pythonpath) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # never write a cache next to anything
    env["PYTHONNOUSERSITE"] = "1"
    return env


def build_bwrap_argv(
    *,
    bwrap: str,
    spec: RunSpec,
    runtime: RuntimeLayout,
    stages: dict[str, str],
    fds: DataFds,
    devices: tuple[str, ...] = (),
) -> list[str]:
    """The bubblewrap command line. `stages` maps a bind target inside to its staged source."""
    limits = spec.limits
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]
    argv += ["--hostname", "prism-sandbox", "--ro-bind", "/usr", "/usr"]
    for name in _ROOT_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{name}"]
    argv += ["--dir", "/etc"]
    if Path("/etc/ld.so.cache").is_file():
        argv += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for fd, path in ((fds.passwd, "/etc/passwd"), (fds.group, "/etc/group"), (fds.hosts, "/etc/hosts")):
        argv += ["--perms", "0444", "--ro-bind-data", str(fd), path]
    for target, staged in stages.items():
        if target != ARTIFACTS_MOUNT:
            argv += ["--ro-bind", staged, target]
    for name in ("python3", "python"):
        argv += ["--symlink", str(runtime.python_executable), f"{INNER_BIN}/{name}"]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--size", str(limits.tmpfs_bytes), "--tmpfs", "/dev/shm"]
    argv += ["--size", str(limits.tmpfs_bytes), "--tmpfs", "/tmp"]
    for device in devices:
        argv += ["--dev-bind", device, device]
    if ARTIFACTS_MOUNT in stages:
        argv += ["--bind", stages[ARTIFACTS_MOUNT], ARTIFACTS_MOUNT]
    if limits.read_only:
        argv += ["--remount-ro", "/"]
    argv += ["--chdir", spec.workdir, "--clearenv"]
    for key, value in sorted(sandbox_env(spec, runtime).items()):
        argv += ["--setenv", key, value]
    argv += ["--seccomp", str(fds.seccomp), "--", *spec.command]
    return argv


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)  # no MFD_CLOEXEC: it must reach bubblewrap
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _stage_plan(spec: RunSpec, runtime: RuntimeLayout) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(host source, stage name) pairs for the launcher, and inner target -> staged path."""
    binds: list[tuple[str, str]] = []
    stages: dict[str, str] = {}

    def add(source: Path, target: str) -> None:
        name = f"s{len(binds)}"
        binds.append((str(source), name))
        stages[target] = f"{launcher.STAGE}/{name}"

    if not runtime.python_prefix.is_relative_to("/usr"):
        add(runtime.python_prefix, str(runtime.python_prefix))
    for index, packages in enumerate(runtime.site_packages):
        add(packages, f"{INNER_SITE}/{index}")
    if runtime.prism_src is not None:
        add(runtime.prism_src, INNER_SRC)
    for mount in spec.mounts:
        add(mount.source, mount.target)
    if spec.artifacts_dir is not None:
        stages[ARTIFACTS_MOUNT] = launcher.ARTIFACTS_STAGE
    return binds, stages


class BubblewrapSandbox:
    name = "bubblewrap"
    accepts_stdin = True  # through the launcher and bubblewrap to the job's fd 0
    live_stdout = True  # `stdout_tap` sees each chunk as the job writes it

    def __init__(self, settings: Settings, *, runtime: RuntimeLayout | None = None) -> None:
        if settings.sandbox_uid == 0 or settings.sandbox_gid == 0:
            raise SandboxUnavailable("sandbox_uid and sandbox_gid must not be 0: the sandbox never runs as root")
        self.uid = settings.sandbox_uid
        self.gid = settings.sandbox_gid
        self.bwrap_binary = settings.sandbox_bwrap_binary
        self.cgroup_parent = settings.sandbox_cgroup_parent
        self.secrets = settings.known_secrets()
        self._runtime = runtime

    @property
    def runtime(self) -> RuntimeLayout:
        if self._runtime is None:
            self._runtime = discover_runtime()
        return self._runtime

    def preflight(self) -> tuple[str, CgroupLayout]:
        """Everything isolation needs on this host, or `SandboxUnavailable` naming what is missing."""
        bwrap = shutil.which(self.bwrap_binary)
        if bwrap is None:
            raise SandboxUnavailable(f"bubblewrap ({self.bwrap_binary}) is not installed: apt-get install bubblewrap")
        if os.geteuid() != 0:
            raise SandboxUnavailable("the bubblewrap backend needs root to create cgroups and drop to the sandbox uid")
        build_filter()
        return bwrap, detect_layout(self.cgroup_parent)

    def run(self, spec: RunSpec) -> RunResult:
        check_spec(spec)
        for value in spec.env.values():
            if any(secret in value for secret in self.secrets):
                raise SandboxSpecRejected("the job environment contains one of PRISM's secrets")
        bwrap, layout = self.preflight()
        devices = gpu_devices(spec.limits.gpu_count)
        job = re.sub(r"[^A-Za-z0-9_.-]", "_", spec.labels.get("job_id", "job"))[:64]
        cgroup = JobCgroup.create(layout, f"{job}-{uuid.uuid4().hex[:12]}", spec.limits)
        try:
            return self._run_in(cgroup, spec, bwrap, devices)
        finally:
            cgroup.close()

    def _run_in(self, cgroup: JobCgroup, spec: RunSpec, bwrap: str, devices: tuple[str, ...]) -> RunResult:
        limits = spec.limits
        binds, stages = _stage_plan(spec, self.runtime)
        user = "nobody" if self.uid == 65534 else "sandbox"
        group = "nogroup" if self.gid == 65534 else "sandbox"
        fds = DataFds(
            seccomp=_memfd("seccomp", build_filter()),
            passwd=_memfd(
                "passwd",
                f"root:x:0:0::/:/usr/sbin/nologin\n{user}:x:{self.uid}:{self.gid}::/tmp:/usr/sbin/nologin\n".encode(),
            ),
            group=_memfd("group", f"root:x:0:\n{group}:x:{self.gid}:\n".encode()),
            hosts=_memfd("hosts", b"127.0.0.1 localhost\n::1 localhost\n"),
        )
        status_r, status_w = os.pipe()
        json_r, json_w = os.pipe()
        argv = build_bwrap_argv(bwrap=bwrap, spec=spec, runtime=self.runtime, stages=stages, fds=fds, devices=devices)
        argv[1:1] = ["--json-status-fd", str(json_w)]
        plan = {
            "parent_pid": os.getpid(),
            "binds": binds,
            "artifacts": None
            if spec.artifacts_dir is None
            else {
                "host": str(spec.artifacts_dir),
                "size": limits.artifacts_bytes,
                "max_files": limits.artifact_max_files,
            },
            "cgroup_procs": list(cgroup.procs_files),
            "uid": self.uid,
            "gid": self.gid,
            "rlimits": _rlimits(limits),
            "argv": argv,
            "status_fd": status_w,
        }
        passed = (status_w, json_w, fds.seccomp, fds.passwd, fds.group, fds.hosts)
        out = TailBuffer(limits.output_bytes, slack=256, tap=spec.stdout_tap)
        err = TailBuffer(limits.output_bytes, slack=256)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                [str(self.runtime.python_executable), "-I", "-S", "-B", launcher.__file__, json.dumps(plan)],
                env={},
                cwd="/",
                stdin=subprocess.PIPE if spec.stdin or spec.stdin_reply else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=passed,
                start_new_session=True,
            )
        finally:
            for fd in passed:
                os.close(fd)
        try:
            assert proc.stdout is not None and proc.stderr is not None
            feed_stdin(proc, spec.stdin, spec.stdin_reply)
            streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
            deadline = start + limits.timeout_seconds
            timed_out = pump(streams, deadline=deadline, done=lambda: proc.poll() is not None)
            if timed_out:
                cgroup.kill_all()
                pump(streams, deadline=time.monotonic() + _LAUNCH_GRACE_S, done=lambda: proc.poll() is not None)
            proc.wait(timeout=_LAUNCH_GRACE_S)
        except subprocess.TimeoutExpired as exc:
            raise SandboxInfraError("the sandbox launcher did not exit after the job ended") from exc
        finally:
            cgroup.kill_all()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            duration = time.monotonic() - start
            status = _read_json(status_r)
            bwrap_status = _read_json_stream(json_r)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        return self._result(spec, cgroup, status, bwrap_status, out, err, timed_out, duration)

    def _result(
        self,
        spec: RunSpec,
        cgroup: JobCgroup,
        status: dict[str, object],
        bwrap_status: list[dict[str, object]],
        out: TailBuffer,
        err: TailBuffer,
        timed_out: bool,
        duration: float,
    ) -> RunResult:
        secrets = (*self.secrets, *spec.redact)
        if not status.get("ok"):
            raise SandboxInfraError(f"the sandbox could not start: {status.get('error') or 'no status from launcher'}")
        started = any("child-pid" in doc for doc in bwrap_status)
        if not started and not timed_out:
            raise SandboxInfraError(f"bubblewrap could not set up the sandbox: {err.text(secrets)[-2000:]}")
        exit_code: int | None = None
        for doc in bwrap_status:
            if isinstance(doc.get("exit-code"), int):
                exit_code = int(str(doc["exit-code"]))
        wait_status = status.get("wait_status")
        if exit_code is None and isinstance(wait_status, int) and not timed_out:
            exit_code = os.waitstatus_to_exitcode(wait_status)
        stats = cgroup.stats()
        readback = None
        if spec.artifacts_dir is not None:
            readback = read_artifacts(spec.artifacts_dir, max_total_bytes=spec.limits.artifact_read_bytes)
        raw_skipped = status.get("skipped")
        skipped = tuple(str(s) for s in raw_skipped) if isinstance(raw_skipped, list) else ()
        return build_result(
            backend=self.name,
            exit_code=exit_code,
            timed_out=timed_out,
            oom_killed=stats.oom_killed,
            out=out,
            err=err,
            secrets=secrets,
            duration=duration,
            readback=readback,
            peak_memory_bytes=stats.peak_memory_bytes,
            skipped=skipped,
        )


def _rlimits(limits: Limits) -> dict[str, tuple[int, int]]:
    # A second line behind the cgroup: no core dumps (they could hold secrets of the job and
    # fill the disk), bounded descriptors, no file larger than the biggest writable area.
    biggest = max(limits.artifacts_bytes, limits.tmpfs_bytes)
    return {"RLIMIT_CORE": (0, 0), "RLIMIT_NOFILE": (4096, 4096), "RLIMIT_FSIZE": (biggest, biggest)}


def _read_json(fd: int) -> dict[str, object]:
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(1 << 20)
    with contextlib.suppress(ValueError):
        value = json.loads(data)
        if isinstance(value, dict):
            return value
    return {}


def _read_json_stream(fd: int) -> list[dict[str, object]]:
    """bubblewrap's --json-status-fd: one JSON object per line (child-pid, then exit-code)."""
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(1 << 16).decode(errors="replace")
    docs: list[dict[str, object]] = []
    for line in data.splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                docs.append(value)
    return docs
