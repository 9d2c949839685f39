"""GPU placement policy: official runs use the fixed profile; everything else is checked first.

Inputs come only from operators (the SQL runtime config) and PRISM's own pipeline, never from a
miner: nothing in a submission, its `prism.yaml`, its metadata or a request header reaches
`requested` or `official`. A request is refused before any placement when it is not a plain
int from 1 to `max_gpu_count` (0, negatives, bools, strings and floats are all refused), and an
official run whose runtime config does not validate fails closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prism.errors import ConfigError
from prism.runtime_config import GpuPolicy, GpuProfile, RuntimeConfig, parse_runtime_config
from prism.sandbox.errors import GpuRequestRefused
from prism.sandbox.sizes import parse_size
from prism.sandbox.spec import Limits

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GpuAllocation:
    gpu_count: int
    gpu_type: str | None
    profile: GpuProfile
    official: bool


def gpu_policy_from_document(document: object | None, *, official: bool) -> GpuPolicy:
    """The GPU policy from a runtime-config document (None: no active row, defaults apply).

    An invalid document fails official runs closed; a development run falls back to the
    defaults with a warning so an operator's typo does not stop smoke tests.
    """
    if document is None:
        return RuntimeConfig().gpu
    try:
        return parse_runtime_config(document).gpu
    except ConfigError:
        if official:
            raise
        log.warning("runtime config is invalid; a non-scoring run uses the default GPU policy")
        return RuntimeConfig().gpu


def _check_count(requested: object, policy: GpuPolicy) -> int:
    if isinstance(requested, bool) or not isinstance(requested, int):
        raise GpuRequestRefused(f"a GPU request must be a plain integer, got {type(requested).__name__} {requested!r}")
    if requested < 1:
        raise GpuRequestRefused(f"a GPU request must be at least 1, got {requested}")
    if requested > policy.max_gpu_count:
        raise GpuRequestRefused(f"{requested} GPUs requested; the maximum is {policy.max_gpu_count}")
    return requested


def resolve_gpu_request(policy: GpuPolicy, *, official: bool, requested: object = None) -> GpuAllocation:
    """Decide the GPUs of one run. Raises `GpuRequestRefused` before anything is placed."""
    profile = policy.official_profile
    if requested is not None:
        count = _check_count(requested, policy)
        if official and count != profile.gpu_count:
            raise GpuRequestRefused(
                f"official runs use the fixed profile ({profile.gpu_count} x {profile.gpu_type}); {count} requested"
            )
    if official or requested is None:
        if profile.gpu_count > policy.max_gpu_count:  # the validator forbids it; keep the guard local too
            raise GpuRequestRefused(
                f"official profile asks for {profile.gpu_count} GPUs over max {policy.max_gpu_count}"
            )
        return GpuAllocation(gpu_count=profile.gpu_count, gpu_type=profile.gpu_type, profile=profile, official=official)
    if policy.allocation_policy != "autosplit" and not policy.autosplit_allowed_for_smoke:
        raise GpuRequestRefused("autosplit is disabled: non-scoring runs also use the fixed profile")
    return GpuAllocation(gpu_count=count, gpu_type=profile.gpu_type, profile=profile, official=False)


def limits_for(allocation: GpuAllocation, *, timeout_seconds: float, **overrides: object) -> Limits:
    """Sandbox limits from the allocation's profile; `overrides` may set the other Limits fields."""
    profile = allocation.profile
    values: dict[str, object] = {
        "cpus": profile.cpus,
        "memory_bytes": parse_size(profile.memory),
        "memory_swap_bytes": parse_size(profile.memory_swap),
        "pids": profile.pids,
        "tmpfs_bytes": parse_size(profile.tmpfs_size),
        "gpu_count": allocation.gpu_count,
        "gpu_type": allocation.gpu_type if allocation.gpu_count else None,
        "timeout_seconds": timeout_seconds,
    }
    for key in ("gpu_count", "gpu_type"):
        if key in overrides:
            raise GpuRequestRefused(f"{key} comes from the allocation, not from an override")
    values.update(overrides)
    return Limits(**values)  # type: ignore[arg-type]
