"""One evaluation job: what the operator side decided, never what the project asked for.

Mode, score eligibility, GPU count and type, budgets and limits come from settings and the
runtime config. `local_cpu_smoke` is never score-eligible and uses the smoke budget on CPU;
`official` uses the fixed profile of the runtime config (which may declare `gpu_count: 0` for a
CPU-only deployment) and is score-eligible.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prism.errors import ConfigError
from prism.evaluation.data import LockedDataset
from prism.evaluation.errors import DatasetError
from prism.runtime_config import EvaluationBudget, RuntimeConfig

Mode = Literal["local_cpu_smoke", "official"]
MODES: tuple[Mode, ...] = ("local_cpu_smoke", "official")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'64g' -> bytes (binary units, as Docker reads them)."""
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"cannot read size {text!r}")
    return int(float(match.group(1)) * 1024 ** " kmgt".index((match.group(2) or " ").lower()))


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationJob:
    submission_id: str
    code_hash: str
    attempt: int
    mode: Mode
    score_eligible: bool
    budget: EvaluationBudget
    gpu_count: int
    gpu_type: str | None
    work_dir: Path
    dataset: LockedDataset
    parameter_cap: int
    token_budget: int
    wall_clock_seconds: float
    # Secret per job (never in the model's ctx): which steps and positions are probed for
    # causality. Persisted with the job so a resumed job probes the same way.
    probe_seed: int
    cpus: float
    memory_bytes: int
    memory_swap_bytes: int
    pids: int
    tmpfs_bytes: int

    @property
    def device(self) -> str:
        return "cuda" if self.gpu_count > 0 else "cpu"

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus))

    def to_json(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "code_hash": self.code_hash,
            "attempt": self.attempt,
            "mode": self.mode,
            "score_eligible": self.score_eligible,
            "budget": self.budget.model_dump(mode="json"),
            "gpu_count": self.gpu_count,
            "gpu_type": self.gpu_type,
            "work_dir": str(self.work_dir),
            "dataset": self.dataset.to_json(),
            "parameter_cap": self.parameter_cap,
            "token_budget": self.token_budget,
            "wall_clock_seconds": self.wall_clock_seconds,
            "probe_seed": self.probe_seed,
            "cpus": self.cpus,
            "memory_bytes": self.memory_bytes,
            "memory_swap_bytes": self.memory_swap_bytes,
            "pids": self.pids,
            "tmpfs_bytes": self.tmpfs_bytes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvaluationJob:
        values = dict(data)
        if values["mode"] not in MODES:
            raise ConfigError(f"unknown evaluation mode {values['mode']!r}")
        values["budget"] = EvaluationBudget.model_validate(values["budget"])
        values["work_dir"] = Path(values["work_dir"])
        values["dataset"] = LockedDataset.from_json(values["dataset"])
        return cls(**values)


def is_fixture(dataset: LockedDataset) -> bool:
    """The synthetic fixture, which its datasheet says is not for scoring miners."""
    from prism.evaluation.fixture import FIXTURE_DATASHEET

    sheet = dataset.manifest.datasheet
    return sheet.name == FIXTURE_DATASHEET.name or sheet.intended_use == FIXTURE_DATASHEET.intended_use


def make_job(
    *,
    submission_id: str,
    code_hash: str,
    mode: Mode,
    runtime_config: RuntimeConfig,
    dataset: LockedDataset,
    work_dir: Path,
    attempt: int = 1,
    probe_seed: int | None = None,
) -> EvaluationJob:
    """The job for `mode` under the operator's runtime config."""
    budget = runtime_config.evaluation
    seed = secrets.randbits(63) if probe_seed is None else probe_seed
    if mode == "local_cpu_smoke":
        return EvaluationJob(
            submission_id=submission_id,
            code_hash=code_hash,
            attempt=attempt,
            mode=mode,
            score_eligible=False,
            budget=budget,
            gpu_count=0,
            gpu_type=None,
            work_dir=work_dir,
            dataset=dataset,
            parameter_cap=budget.parameter_cap,
            token_budget=budget.smoke_token_budget,
            wall_clock_seconds=budget.smoke_wall_clock_seconds,
            probe_seed=seed,
            cpus=budget.smoke_cpus,
            memory_bytes=parse_size(budget.smoke_memory),
            memory_swap_bytes=parse_size(budget.smoke_memory),
            pids=256,
            tmpfs_bytes=256 * 1024**2,
        )
    if mode != "official":
        raise ConfigError(f"unknown evaluation mode {mode!r}")
    if is_fixture(dataset):
        # Fail closed: the fixture is public code (anyone can rebuild it, train on it, embed it).
        raise DatasetError(
            "an official, score-eligible run refuses the synthetic fixture: configure a locked dataset "
            "that cannot be rebuilt from public code (PRISM_DATASET_DIR)"
        )
    profile = runtime_config.gpu.official_profile
    return EvaluationJob(
        submission_id=submission_id,
        code_hash=code_hash,
        attempt=attempt,
        mode=mode,
        score_eligible=True,
        budget=budget,
        gpu_count=profile.gpu_count,
        gpu_type=profile.gpu_type if profile.gpu_count > 0 else None,
        work_dir=work_dir,
        dataset=dataset,
        parameter_cap=budget.parameter_cap,
        token_budget=budget.token_budget,
        wall_clock_seconds=budget.wall_clock_seconds,
        probe_seed=seed,
        cpus=profile.cpus,
        memory_bytes=parse_size(profile.memory),
        memory_swap_bytes=parse_size(profile.memory_swap),
        pids=profile.pids,
        tmpfs_bytes=parse_size(profile.tmpfs_size),
    )
