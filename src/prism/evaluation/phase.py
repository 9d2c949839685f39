"""What the host tells the harness for one phase, and what the harness tells the host back.

`PhaseSpec` is written by the host to `/job/job.json` (read-only inside the sandbox, and out of the
model's reach behind its jail). The harness reports on its own stdout, one line prefixed with
`RESULT_PREFIX` and ending in an HMAC-SHA256 under a per-phase key that only the host and the
recorder know: the host writes it to the sandbox's stdin, the recorder reads it before the
model's process exists, and no model process ever holds that stream. A line without a valid MAC is
a forgery, whoever wrote it. One sandbox start may run several phases (`PhaseSpec.then`): one
line each, each under its own phase's MAC. Kept free of pydantic and torch: the harness imports it inside the sandbox.
"""

from __future__ import annotations

import hashlib
import hmac
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
KEY_BYTES = 32
REPORT_KEY_FILE = "report.key"  # only where the backend has no stdin (the Platform broker)
GO_LINE = b"go\n"  # the host's answer at a gate (`PhaseSpec.gated`): go on; anything else stops
HELDOUT_WINDOW_FILE = "heldout-window.bin"  # the held-out bytes scored, in /job: never the split
# Where the recorder finds a phase's data (`PhaseSpec.data_source`):
DATA_STAGED = "staged"  # PRISM's shards, staged by the host and mounted at /data
DATA_IN_JOB = "job"  # PRISM's shards in /job (the held-out window)
DATA_MOUNTED = "mounted"  # Platform's JSONL shards in a read-only mount the platform adds itself
DATA_SOURCES = (DATA_STAGED, DATA_IN_JOB, DATA_MOUNTED)
_MAC_CONTEXT = b"prism.phase-report.v1\n"


def report_mac(key: bytes, phase: str, body: str) -> str:
    """HMAC-SHA256 over the phase and the exact JSON text of the report."""
    return hmac.new(key, _MAC_CONTEXT + phase.encode() + b"\n" + body.encode(), hashlib.sha256).hexdigest()


def report_line(key: bytes, phase: str, body: str) -> str:
    return f"{RESULT_PREFIX}{body} {report_mac(key, phase, body)}"


def split_report_line(line: str) -> tuple[str, str]:
    """(JSON body, MAC hex) of one result line; the MAC is the last space-separated word."""
    body, _, mac = line[len(RESULT_PREFIX) :].rstrip("\r\n").rpartition(" ")
    return body, mac


def verify_report_line(key: bytes, phase: str, line: str) -> str | None:
    """The JSON body if the line's MAC is valid under `key` for `phase`, else None."""
    body, mac = split_report_line(line)
    if not body or not hmac.compare_digest(report_mac(key, phase, body), mac):
        return None
    return body


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
    # The outer bound in wall-clock seconds: past it with budget left, the host was too busy to
    # judge the model (`host_starved`, our failure). The sandbox's own timeout lies beyond it.
    outer_wall_seconds: float = 3600.0
    # Official runs: a wall the kernel cannot build fails the run as our infrastructure's fault.
    require_walls: bool = False
    # Where the data are (DATA_SOURCES). `shards` are always PRISM's locked shards, the bytes the
    # phase reads, in order; for `mounted` they are checked against what the recorder builds from
    # `source_shards` (Platform's JSONL files, each with its size and sha256) under `mount_dir`.
    data_source: str = DATA_STAGED
    mount_dir: str = ""
    source_shards: tuple[ShardRef, ...] = ()
    # Phases the same recorder runs after this one, in order, each from `/job/<phase>.json`
    # (`next_spec_file`): one sandbox start, one import of torch, for the whole evaluation. A
    # phase that does not end `ok` ends the run. `gated`: before the first of them, the recorder
    # waits for the host's `GO_LINE` on stdin (the host's graph-duplicate decision); anything else stops it.
    then: tuple[Phase, ...] = ()
    gated: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["shards"] = [asdict(s) for s in self.shards]
        data["source_shards"] = [asdict(s) for s in self.source_shards]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhaseSpec:
        values = dict(data)
        values["shards"] = tuple(ShardRef(**s) for s in values.get("shards", ()))
        values["source_shards"] = tuple(ShardRef(**s) for s in values.get("source_shards", ()))
        values["then"] = tuple(values.get("then", ()))
        return cls(**values)


def next_spec_file(phase: str) -> str:
    """Where a phase run after another in the same sandbox start finds its spec, in /job."""
    return f"{phase}.json"


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
