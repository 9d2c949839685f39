"""What each phase measured, as the host accepted it from the harness's report.

Frozen values with `to_json`/`from_json` so the worker can persist them and resume after a crash.
`planted_manifest` keeps the text of a `prism_run_manifest.v1.json` found in /artifacts: the
harness never writes one, so its presence alone is evidence, and validation names every field in
which it differs from the manifest the host built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

_T = TypeVar("_T")


def _from_json(cls: type[_T], data: Mapping[str, Any]) -> _T:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {key: value for key, value in data.items() if key in names}
    for key in ("probed_steps", "foreign_artifacts", "replay_kinds", "graph_mismatch_steps", "heldout_replayed_steps"):
        if key in values and isinstance(values[key], list):
            values[key] = tuple(values[key])
    return cls(**values)


@dataclass(frozen=True, slots=True, kw_only=True)
class _PhaseResult:
    duration_seconds: float
    # Files the harness did not write but found in /artifacts (names only).
    foreign_artifacts: tuple[str, ...] = ()
    planted_manifest: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["foreign_artifacts"] = list(self.foreign_artifacts)
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class InspectResult(_PhaseResult):
    parameter_count: int
    buffer_count: int
    architecture_graph_hash: str
    architecture_graph_sha256: str
    dataflow_source: str
    flops_per_token: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InspectResult:
        return _from_json(cls, data)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainResult(_PhaseResult):
    parameter_count: int
    buffer_count: int
    graph_hash: str
    tokens: int
    steps: int
    tokens_per_step: int
    budget_steps: int
    data_windows: int
    stopped_reason: str
    bits_per_byte: float
    first_batch_bits_per_byte: float
    probed_steps: tuple[int, ...]
    loss_curve_sha256: str
    weights_sha256: str
    weights_numel: int
    train_seconds: float
    # Measured by the replica on real batches at the replayed steps (`replay`): what is charged.
    replay_kinds: tuple[str, ...] = ()
    replayed_flops_per_token: float = 0.0
    replayed_optimizer_steps: int = 0
    graph_mismatch_steps: tuple[int, ...] = ()
    replay_max_change_nats: float = 0.0
    # Measured by the recorder: seconds the model's process spent answering the real calls.
    model_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = _PhaseResult.to_json(self)
        for key in ("probed_steps", "replay_kinds", "graph_mismatch_steps"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainResult:
        return _from_json(cls, data)


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldoutResult(_PhaseResult):
    parameter_count: int
    buffer_count: int
    graph_hash: str
    heldout_bits_per_byte: float
    heldout_tokens: int
    heldout_curve_sha256: str
    weights_sha256: str
    heldout_replayed_steps: tuple[int, ...] = ()
    heldout_replay_max_change_nats: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = _PhaseResult.to_json(self)
        data["heldout_replayed_steps"] = list(self.heldout_replayed_steps)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HeldoutResult:
        return _from_json(cls, data)
