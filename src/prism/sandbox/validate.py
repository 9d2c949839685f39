"""Refuse a malformed or unsafe job before any backend touches it (`SandboxSpecRejected`)."""

# ruff: noqa: S108 - every /tmp here is the sandbox's own private tmpfs, never the host's

from __future__ import annotations

import os
import posixpath
import re
from typing import TYPE_CHECKING

from prism.sandbox.errors import SandboxSpecRejected

if TYPE_CHECKING:
    from prism.sandbox.spec import Limits, RunSpec

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# Paths the sandbox's own runtime occupies; a job mount may not shadow them.
RESERVED_TARGETS = ("/", "/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc", "/proc", "/dev", "/tmp", "/opt/prism")
MIN_MEMORY = 16 * 1024**2


def _positive_int(name: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SandboxSpecRejected(f"limit {name} must be an int >= {minimum}, got {value!r}")


def check_limits(limits: Limits) -> None:
    if isinstance(limits.cpus, bool) or not isinstance(limits.cpus, int | float) or not limits.cpus > 0:
        raise SandboxSpecRejected(f"limit cpus must be a positive number, got {limits.cpus!r}")
    _positive_int("memory_bytes", limits.memory_bytes, MIN_MEMORY)
    _positive_int("memory_swap_bytes", limits.memory_swap_bytes, MIN_MEMORY)
    if limits.memory_swap_bytes < limits.memory_bytes:
        raise SandboxSpecRejected("limit memory_swap_bytes (memory + swap) must be >= memory_bytes")
    _positive_int("pids", limits.pids)
    _positive_int("tmpfs_bytes", limits.tmpfs_bytes)
    _positive_int("artifacts_bytes", limits.artifacts_bytes)
    _positive_int("output_bytes", limits.output_bytes)
    _positive_int("artifact_read_bytes", limits.artifact_read_bytes, 0)
    _positive_int("artifact_max_files", limits.artifact_max_files)
    _positive_int("gpu_count", limits.gpu_count, 0)
    if isinstance(limits.timeout_seconds, bool) or not limits.timeout_seconds > 0:
        raise SandboxSpecRejected(f"limit timeout_seconds must be positive, got {limits.timeout_seconds!r}")
    if limits.gpu_count == 0 and limits.gpu_type is not None:
        raise SandboxSpecRejected("gpu_type is set but gpu_count is 0")


def check_target(target: str) -> str:
    if not target.startswith("/") or "\0" in target or posixpath.normpath(target) != target:
        raise SandboxSpecRejected(f"mount target {target!r} must be an absolute, normalised path")
    for reserved in RESERVED_TARGETS:
        if target == reserved or (reserved != "/" and target.startswith(reserved + "/")):
            raise SandboxSpecRejected(f"mount target {target!r} would shadow the sandbox runtime at {reserved}")
    return target


def check_spec(spec: RunSpec) -> None:
    from prism.sandbox.spec import ARTIFACTS_MOUNT, SUBMISSION_MOUNT

    if not spec.command or any(not isinstance(a, str) or "\0" in a for a in spec.command):
        raise SandboxSpecRejected("command must be a non-empty tuple of strings without NUL bytes")
    targets = [check_target(m.target) for m in spec.mounts]
    if spec.artifacts_dir is not None:
        targets.append(ARTIFACTS_MOUNT)
    if len(set(targets)) != len(targets):
        raise SandboxSpecRejected(f"duplicate mount targets in {sorted(targets)}")
    for mount in spec.mounts:
        if not mount.source.is_dir() or mount.source.is_symlink():
            raise SandboxSpecRejected(f"mount source {mount.source} is not a real directory")
        if not os.stat(mount.source).st_mode & 0o005 == 0o005:
            raise SandboxSpecRejected(f"mount source {mount.source} must be world-readable (o+rx) for the sandbox uid")
        if mount.target == SUBMISSION_MOUNT or mount.target.startswith(SUBMISSION_MOUNT + "/"):
            _refuse_bytecode(mount.source)
    if spec.artifacts_dir is not None:
        path = spec.artifacts_dir
        if not path.is_dir() or path.is_symlink():
            raise SandboxSpecRejected(f"artifacts_dir {path} is not a real directory")
        if any(path.iterdir()):
            raise SandboxSpecRejected(f"artifacts_dir {path} must be empty; each run gets a fresh one")
    for key, value in spec.env.items():
        if not _ENV_NAME.match(key) or "\0" in value:
            raise SandboxSpecRejected(f"environment variable {key!r} has an invalid name or value")
    for key, value in spec.labels.items():
        if not _LABEL.match(key) or "\0" in value or "\n" in value or len(value) > 256:
            raise SandboxSpecRejected(f"label {key!r} has an invalid name or value")
    if not spec.workdir.startswith("/"):
        raise SandboxSpecRejected(f"workdir {spec.workdir!r} must be absolute")


def _refuse_bytecode(root: os.PathLike[str]) -> None:
    """Submitted bytecode would run code that static review never saw (an "unchecked" .pyc is
    loaded without looking at its source), so a submission may not carry any."""
    for dirpath, dirnames, filenames in os.walk(root):
        found = [n for n in dirnames if n == "__pycache__"] + [n for n in filenames if n.endswith((".pyc", ".pyo"))]
        if found:
            raise SandboxSpecRejected(
                f"submission carries Python bytecode ({os.path.join(dirpath, found[0])}); refusing"
            )
