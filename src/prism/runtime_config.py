"""The runtime config: versioned JSON rows in SQL, one active, validated by this schema.

Operators change it with `prism runtime-config set FILE`. When no row is active the defaults
below apply. A row that does not validate fails official runs closed (`ConfigError`); it is never
silently replaced by defaults on a path that produces scores.

Each domain owns its section; nothing a miner sends can reach any of it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prism.errors import ConfigError

MAX_GPU_COUNT = 8
_SIZE = re.compile(r"^[1-9][0-9]*[kmgt]?$")
_SIZE_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def _size_bytes(value: str) -> int:
    unit = _SIZE_UNITS.get(value[-1], 1)
    return int(value.rstrip("kmgt")) * unit


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuProfile(_Section):
    """A fixed execution profile. `gpu_count` 0 declares a CPU-only official profile."""

    gpu_count: int = Field(1, ge=0, le=MAX_GPU_COUNT, strict=True)
    gpu_type: str | None = "H100"
    cpus: float = Field(8.0, gt=0)
    memory: str = "64g"
    memory_swap: str = "64g"
    pids: int = Field(512, ge=16)
    tmpfs_size: str = "1g"

    @field_validator("memory", "memory_swap", "tmpfs_size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not _SIZE.match(value):
            raise ValueError(f"{value!r} is not a size like 512m or 64g")
        return value

    @model_validator(mode="after")
    def _swap_covers_memory(self) -> GpuProfile:
        if _size_bytes(self.memory_swap) < _size_bytes(self.memory):
            raise ValueError("memory_swap (memory + swap) must be at least memory")
        return self


class GpuPolicy(_Section):
    max_gpu_count: int = Field(MAX_GPU_COUNT, ge=1, le=MAX_GPU_COUNT, strict=True)
    official_profile: GpuProfile = GpuProfile()
    allocation_policy: Literal["fixed", "autosplit"] = "fixed"
    autosplit_allowed_for_smoke: bool = True

    @model_validator(mode="after")
    def _profile_within_cap(self) -> GpuPolicy:
        if self.official_profile.gpu_count > self.max_gpu_count:
            raise ValueError(
                f"official_profile.gpu_count {self.official_profile.gpu_count} "
                f"exceeds max_gpu_count {self.max_gpu_count}"
            )
        return self


class EvaluationBudget(_Section):
    parameter_cap: int = Field(150_000_000, ge=1)
    seq_len: int = Field(128, ge=8, le=8192)
    batch_size: int = Field(8, ge=1)
    token_budget: int = Field(262_144, ge=1)
    wall_clock_seconds: float = Field(600.0, gt=0)
    heldout_tokens: int = Field(65_536, ge=1)
    seed: int = 1234
    # A CPU smoke run: small budgets, never score-eligible.
    smoke_token_budget: int = Field(65_536, ge=1)
    smoke_wall_clock_seconds: float = Field(300.0, gt=0)
    smoke_cpus: float = Field(2.0, gt=0)
    smoke_memory: str = "4g"
    # The order of the train split. Unlike `seed` (the model's init seed, in its ctx), it is
    # never given to the submission; rotating it reorders the data for every later run.
    data_order_seed: int = 20_240_611
    # Harness checks: a first batch below this many bits per byte means knowledge came with the
    # code; causality probes per train run; tolerance on logits that must not move.
    first_batch_floor_bpb: float = Field(1.0, ge=0, le=8)
    causality_probes: int = Field(4, ge=0, le=64)
    causality_atol: float = Field(1e-4, gt=0)
    causality_rtol: float = Field(1e-4, ge=0)


class LlmReviewPolicy(_Section):
    """The evidence gate and the operator's extra review rules (see docs/llm-review.md).

    `rules` are one rule per item, optionally `rule_id: text`; they are added to the rules from
    `PRISM_LLM_RULES_FILE`. The gate's default (true) means a rejection needs verified evidence.
    """

    evidence_required_for_rejection: bool = True
    rules: tuple[str, ...] = ()
    # An evidence item may cite at most this many lines: a quote of half a file is not evidence.
    max_evidence_lines: int = Field(40, ge=1, le=500)


class SimilarityPolicy(_Section):
    """Duplicate review thresholds (docs/similarity.md explains each one)."""

    # Containment (either direction) of a candidate's normalized fingerprints in the new one.
    quarantine_threshold: float = Field(0.7, ge=0, le=1)
    # Containment of the architecture part alone that makes a candidate's architecture "reused".
    architecture_threshold: float = Field(0.7, ge=0, le=1)
    # Below this containment of the new training code in the candidate's, the training is "new".
    variant_training_max: float = Field(0.5, ge=0, le=1)
    # New training code must bring at least this many fingerprints of its own to count.
    min_new_training_fingerprints: int = Field(4, ge=1)
    # Containment computed on fewer shared fingerprints than this is too weak to act on.
    min_shared_fingerprints: int = Field(12, ge=1)
    # Structural (Weisfeiler-Lehman) similarity of two graphs with different hashes: ambiguous.
    graph_quarantine_threshold: float = Field(0.9, ge=0, le=1)
    candidate_limit: int = Field(20, ge=1, le=200)
    # Not implemented yet: must stay off (see docs/similarity.md).
    pair_sandbox_enabled: bool = False

    @model_validator(mode="after")
    def _pair_sandbox_not_available(self) -> SimilarityPolicy:
        if self.pair_sandbox_enabled:
            raise ValueError("pair_sandbox_enabled: the pair-sandbox review is not implemented")
        return self


class RewardPolicy(_Section):
    """How a hotkey's weight is split between architecture ownership and implementation."""

    owner_share: float = Field(0.6, ge=0, le=1)

    @property
    def implementation_share(self) -> float:
        return 1.0 - self.owner_share


class ValidatorPolicy(_Section):
    """Who trains: PRISM's own sandbox (`embedded`), Platform's validators, or both (docs/architecture.md).

    A validator's figure is a claim: it counts only from a hotkey in `allowed_hotkeys`, and a
    score needs `quorum` results from distinct validators that agree within the tolerances.
    `both` also re-runs training on PRISM's own sandbox for a fraction `audit_rate` of the
    submissions and requires the validators' figure to agree with PRISM's.
    """

    mode: Literal["embedded", "validators", "both"] = "embedded"
    allowed_hotkeys: tuple[str, ...] = ()
    quorum: int = Field(2, ge=1, le=8)
    # Measured: the same unit on two hosts gives the same prequential bpb to ~1e-6 (see
    # docs/architecture.md); the defaults leave room for GPU kernels that differ between models.
    bpb_abs_tolerance: float = Field(2e-3, ge=0, le=1)
    curve_abs_tolerance: float = Field(2e-2, ge=0, le=8)
    lease_seconds: int = Field(300, ge=5)  # renewed by the validator every third of it
    # Units opened for one submission, replacements and tie-breakers included.
    max_units: int = Field(6, ge=1, le=32)
    audit_rate: float = Field(0.0, ge=0, le=1)
    # A validator whose result disagreed with the agreeing group this many times is flagged.
    odd_one_out_flag: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _nobody_alone(self) -> ValidatorPolicy:
        if self.mode == "validators" and self.quorum < 2:
            raise ValueError("validators mode needs quorum >= 2: no single validator is trusted alone")
        if self.mode == "both" and self.quorum < 2 and self.audit_rate < 1.0:
            raise ValueError("both mode with quorum 1 needs audit_rate 1.0 (PRISM re-runs every submission)")
        if self.mode != "embedded" and not self.allowed_hotkeys:
            raise ValueError("validator modes need allowed_hotkeys (the validators whose results count)")
        if self.max_units < self.quorum:
            raise ValueError("max_units must be at least quorum")
        return self


class RuntimeConfig(_Section):
    gpu: GpuPolicy = GpuPolicy()
    evaluation: EvaluationBudget = EvaluationBudget()
    llm_review_policy: LlmReviewPolicy = LlmReviewPolicy()
    similarity: SimilarityPolicy = SimilarityPolicy()
    rewards: RewardPolicy = RewardPolicy()
    validators: ValidatorPolicy = ValidatorPolicy()


DEFAULT_RUNTIME_CONFIG = RuntimeConfig()


def parse_runtime_config(data: Any) -> RuntimeConfig:
    """Validate a runtime-config document; every problem is named in the `ConfigError`."""
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid runtime config: {problems}") from exc
