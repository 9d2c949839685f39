"""GPU policy: official runs use the fixed profile; bad requests are refused before placement."""

from __future__ import annotations

import pytest

from prism.errors import ConfigError
from prism.runtime_config import GpuPolicy, GpuProfile
from prism.sandbox.bubblewrap import gpu_devices
from prism.sandbox.errors import GpuRequestRefused
from prism.sandbox.gpu import gpu_policy_from_document, limits_for, resolve_gpu_request

POLICY = GpuPolicy(official_profile=GpuProfile(gpu_count=2, gpu_type="H100"))


def test_official_runs_always_use_the_fixed_profile() -> None:
    allocation = resolve_gpu_request(POLICY, official=True)
    assert (allocation.gpu_count, allocation.gpu_type, allocation.official) == (2, "H100", True)
    assert resolve_gpu_request(POLICY, official=True, requested=2).gpu_count == 2
    with pytest.raises(GpuRequestRefused, match="fixed profile"):
        resolve_gpu_request(POLICY, official=True, requested=4)


@pytest.mark.parametrize("requested", [0, -1, True, False, "2", 2.0, 1.5, 9, 100, [1], None.__class__])
def test_bad_requests_are_refused_before_placement(requested: object) -> None:
    for official in (True, False):
        with pytest.raises(GpuRequestRefused):
            resolve_gpu_request(POLICY, official=official, requested=requested)


def test_autosplit_only_for_non_scoring_runs() -> None:
    assert resolve_gpu_request(POLICY, official=False, requested=3).gpu_count == 3
    closed = GpuPolicy(allocation_policy="fixed", autosplit_allowed_for_smoke=False)
    with pytest.raises(GpuRequestRefused, match="autosplit"):
        resolve_gpu_request(closed, official=False, requested=3)
    assert resolve_gpu_request(closed, official=False).gpu_count == 1


def test_invalid_runtime_config_fails_official_runs_closed() -> None:
    bad = {"gpu": {"max_gpu_count": 16}}
    with pytest.raises(ConfigError, match="max_gpu_count"):
        gpu_policy_from_document(bad, official=True)
    assert gpu_policy_from_document(bad, official=False) == GpuPolicy()
    assert gpu_policy_from_document(None, official=True) == GpuPolicy()
    with pytest.raises(ConfigError):
        gpu_policy_from_document({"gpu": {"official_profile": {"gpu_count": 9}}}, official=True)
    with pytest.raises(ConfigError):
        gpu_policy_from_document({"gpu": {"official_profile": {"gpu_count": "1"}}}, official=True)


def test_limits_follow_the_profile() -> None:
    limits = limits_for(resolve_gpu_request(POLICY, official=True), timeout_seconds=60)
    assert (limits.gpu_count, limits.gpu_type, limits.cpus, limits.memory_bytes, limits.pids) == (
        2,
        "H100",
        8.0,
        64 << 30,
        512,
    )
    with pytest.raises(GpuRequestRefused):
        limits_for(resolve_gpu_request(POLICY, official=True), timeout_seconds=60, gpu_count=8)
    cpu = limits_for(
        resolve_gpu_request(GpuPolicy(official_profile=GpuProfile(gpu_count=0, gpu_type=None)), official=True),
        timeout_seconds=5,
    )
    assert (cpu.gpu_count, cpu.gpu_type) == (0, None)


def test_gpu_devices_only_when_asked_and_present(tmp_path: object) -> None:
    from pathlib import Path

    dev = Path(str(tmp_path))
    assert gpu_devices(0, dev) == ()
    with pytest.raises(GpuRequestRefused, match="exposes 0"):
        gpu_devices(1, dev)
    for name in ("nvidia0", "nvidia1", "nvidia10", "nvidiactl", "nvidia-uvm"):
        (dev / name).touch()
    assert gpu_devices(2, dev) == tuple(str(dev / n) for n in ("nvidiactl", "nvidia-uvm", "nvidia0", "nvidia1"))
