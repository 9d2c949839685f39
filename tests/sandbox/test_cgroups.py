"""Job cgroups on this host's real cgroup filesystem: CPU weight in proportion to each job's limit."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from prism.sandbox import cgroups
from prism.sandbox.cgroups import CgroupLayout, JobCgroup, cpu_weight
from prism.sandbox.errors import SandboxUnavailable
from prism.sandbox.spec import Limits

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="creating cgroups needs root")


def test_a_jobs_weight_is_its_cpu_limit_in_the_kernels_units() -> None:
    assert cpu_weight(1, 1.0) == 1024 and cpu_weight(2, 1.0) == 100  # one CPU: the kernel's default
    assert cpu_weight(1, 2.5) == 2560 and cpu_weight(2, 2.5) == 250
    assert cpu_weight(1, 0.001) == 2 and cpu_weight(2, 0.001) == 1  # the kernel's least
    assert cpu_weight(1, 1e6) == 262_144 and cpu_weight(2, 1e6) == 10_000  # and its most


@pytest.fixture
def layout() -> Iterator[CgroupLayout]:
    """The host's real layout, moved under a group of this test's own (others' jobs stay out)."""
    try:
        real = cgroups.detect_layout()
    except SandboxUnavailable as exc:
        pytest.skip(str(exc))
    tag = f"prism-test-{uuid.uuid4().hex[:8]}"
    parents = tuple((name, path.parent / tag / path.name) for name, path in real.parents)
    for _, path in parents:
        path.parent.mkdir(exist_ok=True)
    yield CgroupLayout(version=real.version, parents=parents)
    for _, path in parents:
        for directory in (path, path.parent):
            if directory.exists():
                directory.rmdir()


def _cpu_dir(job: JobCgroup) -> Path:
    return job.dirs["unified" if job.layout.version == 2 else "cpu"]


@needs_root
def test_each_job_weighs_its_cpu_limit_and_their_parent_the_sum(layout: CgroupLayout) -> None:
    name, per_cpu, default = ("cpu.weight", 100, 100) if layout.version == 2 else ("cpu.shares", 1024, 1024)
    limits = {"memory_bytes": 256 << 20, "memory_swap_bytes": 256 << 20}
    try:
        big = JobCgroup.create(layout, "big", Limits(cpus=2.0, **limits))
    except SandboxUnavailable as exc:  # v2 without a delegated subtree here
        pytest.skip(str(exc))
    small = JobCgroup.create(layout, "small", Limits(cpus=0.5, **limits))
    parent = _cpu_dir(big).parent

    def weight(path: Path) -> int:
        return int((path / name).read_text())

    try:
        assert weight(_cpu_dir(big)) == 2 * per_cpu
        assert weight(_cpu_dir(small)) == per_cpu // 2
        assert weight(parent) == 2 * per_cpu + per_cpu // 2  # all jobs together weigh what they may use
        big.close()
        assert not _cpu_dir(big).exists()
        assert weight(parent) == per_cpu // 2
    finally:
        big.close()
        small.close()
    assert weight(parent) == default  # no job left: the kernel's default
