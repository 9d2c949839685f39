"""What the host tells the harness for one phase, and what the harness tells the host back.

`PhaseSpec` is written by the host to `/job/job.json` (read-only inside the sandbox). The harness
reports on its own stdout, one line prefixed with `RESULT_PREFIX`; the model's process never holds
that stream (its stdout and stderr go to the harness's stderr), so it cannot forge the report.
Kept free of pydantic and torch: the harness imports it inside the sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Phase = Literal["inspect", "train", "heldout"]
PHASES: tuple[Phase, ...] = ("inspect", "train", "heldout")
RESULT_PREFIX = "PRISM_PHASE_RESULT "
JOB_MOUNT = "/job"
JOB_FILE = "job.json"
WEIGHTS_FILE = "weights.safetensors"
GRAPH_FILE = "architecture_graph.json"
LOSS_CURVE_FILE = "loss_curve.json"
HELDOUT_CURVE_FILE = "heldout_curve.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardRef:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseSpec:
    phase: Phase
    entrypoint: str
    seed: int
    data_order_seed: int
    # Secret per job: which steps are probed for causality, and where. Never in the model's ctx.
    probe_seed: int
    seq_len: int
    batch_size: int
    token_budget: int
    wall_clock_seconds: float
    heldout_tokens: int
    parameter_cap: int
    device: str
    threads: int
    shards: tuple[ShardRef, ...] = ()
    # Heldout only: the sha256 of the trained weights the host placed at /job/weights.safetensors.
    weights_sha256: str = ""
    # No longer read (replays replaced the fixed probe count; the first-batch rule is the host's
    # quarantine in `suspicion`); kept so job files and runtime configs written before still load.
    probe_count: int = 4
    first_batch_floor_bpb: float = 1.0
    first_batches_checked: int = 3
    # Tolerance in nats on log-probabilities (replays and causality; see probes). rtol is unused
    # since logits are normalised first; kept so older job files still load.
    causality_atol: float = 1e-4
    causality_rtol: float = 0.0
    # Each step (after step 0, always replayed) is replayed with this probability.
    replay_fraction: float = 0.1
    grace_seconds: float = 30.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["shards"] = [asdict(s) for s in self.shards]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhaseSpec:
        values = dict(data)
        values["shards"] = tuple(ShardRef(**s) for s in values.get("shards", ()))
        return cls(**values)


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseReport:
    """The harness's one-line report: status `ok`, `rejected` (rule broken) or `failed` (crash)."""

    phase: Phase
    status: Literal["ok", "rejected", "failed"]
    reason_code: str = ""
    detail: str = ""
    evidence: tuple[Mapping[str, Any], ...] = ()
    figures: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "status": self.status,
            "reason_code": self.reason_code,
            "detail": self.detail,
            "evidence": [dict(e) for e in self.evidence],
            "figures": dict(self.figures),
        }
