"""`prism_run_manifest.v1`: built by the host from its own phase results, then validated.

The manifest doubles as the run's model card (Mitchell et al.): what ran, on which data, under
which profile and limits, and what came out. `validate_manifest` trusts none of it: each figure
is recomputed or compared against the job, the separate phase runs and the verified artifacts,
and each disagreement becomes a finding whose rule id names the field (`manifest.<field>`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import prism
from prism.evaluation.graph import state_shapes
from prism.evaluation.jobs import EvaluationJob
from prism.evaluation.metrics import LossCurve
from prism.evaluation.phase import GRAPH_FILE, HELDOUT_CURVE_FILE, LOSS_CURVE_FILE, WEIGHTS_FILE, Phase
from prism.evaluation.results import HeldoutResult, InspectResult, TrainResult
from prism.evaluation.runner import MANIFEST_FILE, verified_artifact
from prism.evaluation.weights import WeightsFormatError, read_header
from prism.evidence import Evidence, evidence_to_json

SCHEMA = "prism_run_manifest.v1"
_ARTIFACT_PHASE: dict[str, Phase] = {
    GRAPH_FILE: "inspect",
    LOSS_CURVE_FILE: "train",
    WEIGHTS_FILE: "train",
    HELDOUT_CURVE_FILE: "heldout",
}
# field -> type every manifest must carry
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": str,
    "submission.id": str,
    "submission.code_hash": str,
    "submission.attempt": int,
    "mode": str,
    "validation.score_eligible": bool,
    "dataset.fingerprint": str,
    "model.parameter_count": int,
    "model.architecture_graph_hash": str,
    "model.flops_per_token": (int, float),
    "compute.tokens": int,
    "compute.flops": int,
    "compute.gpu_count": int,
    "metrics.bits_per_byte": float,
    "metrics.heldout_bits_per_byte": float,
    "artifacts": dict,
}


@dataclass(frozen=True, slots=True)
class ValidationReport:
    ok: bool
    findings: tuple[Evidence, ...]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "findings": evidence_to_json(self.findings)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ValidationReport:
        findings = tuple(Evidence.from_json(item) for item in data.get("findings", ()))
        return cls(ok=bool(data["ok"]), findings=findings)


def build_manifest(
    job: EvaluationJob, inspect: InspectResult, train: TrainResult, heldout: HeldoutResult
) -> dict[str, Any]:
    budget = job.budget
    sheet = job.dataset.manifest.datasheet

    def sha(phase: Phase, name: str) -> str:
        return hashlib.sha256(verified_artifact(job, phase, name).read_bytes()).hexdigest()

    return {
        "schema": SCHEMA,
        "challenge_version": prism.CHALLENGE_VERSION,
        "prism_version": prism.__version__,
        "submission": {"id": job.submission_id, "code_hash": job.code_hash, "attempt": job.attempt},
        "mode": job.mode,
        "validation": {"score_eligible": job.score_eligible},
        "profile": {
            "device": job.device,
            "gpu_count": job.gpu_count,
            "gpu_type": job.gpu_type,
            "cpus": job.cpus,
            "threads": job.threads,
            "memory_bytes": job.memory_bytes,
            "pids": job.pids,
        },
        "budget": {
            "token_budget": job.token_budget,
            "wall_clock_seconds": job.wall_clock_seconds,
            "seq_len": budget.seq_len,
            "batch_size": budget.batch_size,
            "heldout_tokens": budget.heldout_tokens,
            "parameter_cap": job.parameter_cap,
            "seed": budget.seed,
        },
        "dataset": {
            "fingerprint": job.dataset.fingerprint,
            "name": sheet.name,
            "source": sheet.source,
            "revision": sheet.revision,
            "license": sheet.license,
            "intended_use": sheet.intended_use,
            "transformations": list(sheet.transformations),
            "train_bytes": job.dataset.manifest.split_bytes("train"),
            "validation_bytes": job.dataset.manifest.split_bytes("validation"),
        },
        "model": {
            "parameter_count": inspect.parameter_count,
            "buffer_count": inspect.buffer_count,
            "architecture_graph_hash": inspect.architecture_graph_hash,
            "dataflow_source": inspect.dataflow_source,
            "flops_per_token": inspect.flops_per_token,
        },
        "compute": {
            "tokens": train.tokens,
            "steps": train.steps,
            # Charged on the work done: the larger of inspect's FLOPs per token and what the replica
            # measured over whole steps (train_step included) on real batches.
            "flops": round(charged_flops_per_token(inspect, train) * train.tokens),
            "charged_flops_per_token": charged_flops_per_token(inspect, train),
            "optimizer_steps_per_batch": train.replayed_optimizer_steps,
            "model_seconds": train.model_seconds,
            "gpu_count": job.gpu_count,
            "gpu_type": job.gpu_type,
            "stopped_reason": train.stopped_reason,
            "train_seconds": train.train_seconds,
        },
        "metrics": {
            "bits_per_byte": train.bits_per_byte,
            "first_batch_bits_per_byte": train.first_batch_bits_per_byte,
            "heldout_bits_per_byte": heldout.heldout_bits_per_byte,
            "heldout_tokens": heldout.heldout_tokens,
        },
        "harness": {
            "causality_probed_steps": list(train.probed_steps),
            "replay_kinds": list(train.replay_kinds),
            "replay_max_change_nats": train.replay_max_change_nats,
            "heldout_replayed_steps": list(heldout.heldout_replayed_steps),
            "prequential": True,
        },
        "artifacts": {name: sha(phase, name) for name, phase in _ARTIFACT_PHASE.items()},
    }


def charged_flops_per_token(inspect: InspectResult, train: TrainResult) -> float:
    return max(inspect.flops_per_token, train.replayed_flops_per_token)


def _get(manifest: Mapping[str, Any], dotted: str) -> Any:
    node: Any = manifest
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


class _Findings:
    def __init__(self) -> None:
        self.items: list[Evidence] = []

    def add(self, field: str, explanation: str) -> None:
        self.items.append(Evidence.at(f"manifest.{field}", MANIFEST_FILE, 0, f"{field}: {explanation}"))

    def equal(self, field: str, stated: Any, measured: Any, source: str) -> None:
        if stated != measured or type(stated) is not type(measured):
            self.add(field, f"the manifest says {stated!r}, {source} says {measured!r}")

    def close(self, field: str, stated: Any, measured: float, source: str, tol: float = 1e-9) -> None:
        ok = isinstance(stated, int | float) and not isinstance(stated, bool) and math.isfinite(stated)
        if not ok or abs(float(stated) - measured) > tol * max(1.0, abs(measured)):
            self.add(field, f"the manifest says {stated!r}, {source} gives {measured!r}")


def _read(job: EvaluationJob, phase: Phase, name: str, findings: _Findings, field: str) -> bytes | None:
    try:
        return verified_artifact(job, phase, name).read_bytes()
    except OSError:
        findings.add(field, f"the {name} artifact of the {phase} run is missing")
        return None


def validate_manifest(
    manifest: Mapping[str, Any],
    *,
    job: EvaluationJob,
    inspect: InspectResult,
    train: TrainResult,
    heldout: HeldoutResult,
) -> ValidationReport:
    f = _Findings()
    for field, kind in REQUIRED.items():
        value = _get(manifest, field)
        if value is None or not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            f.add(field, f"missing or not of type {getattr(kind, '__name__', kind)}")
    f.equal("schema", manifest.get("schema"), SCHEMA, "the schema")
    # Identity, mode and lease: the job is the only authority.
    f.equal("submission.id", _get(manifest, "submission.id"), job.submission_id, "the job")
    f.equal("submission.code_hash", _get(manifest, "submission.code_hash"), job.code_hash, "the job")
    f.equal("mode", manifest.get("mode"), job.mode, "the job")
    f.equal("validation.score_eligible", _get(manifest, "validation.score_eligible"), job.score_eligible, "the job")
    if job.mode == "local_cpu_smoke" and _get(manifest, "validation.score_eligible") is not False:
        f.add("validation.score_eligible", "a local_cpu_smoke run is never score-eligible")
    f.equal("compute.gpu_count", _get(manifest, "compute.gpu_count"), job.gpu_count, "the lease")
    f.equal("compute.gpu_type", _get(manifest, "compute.gpu_type"), job.gpu_type, "the lease")
    f.equal("dataset.fingerprint", _get(manifest, "dataset.fingerprint"), job.dataset.fingerprint, "the locked dataset")

    # The model: one parameter count and one graph across three separate runs and the artifacts.
    count = _get(manifest, "model.parameter_count")
    for source, measured in (
        ("inspect", inspect.parameter_count),
        ("train", train.parameter_count),
        ("heldout", heldout.parameter_count),
    ):
        f.equal("model.parameter_count", count, measured, f"the {source} run")
    if isinstance(count, int) and count > job.parameter_cap:
        f.add("model.parameter_count", f"{count:,} exceeds the parameter cap {job.parameter_cap:,}")
    graph_hash = _get(manifest, "model.architecture_graph_hash")
    for source, measured_hash in (
        ("inspect", inspect.architecture_graph_hash),
        ("train", train.graph_hash),
        ("heldout", heldout.graph_hash),
    ):
        f.equal("model.architecture_graph_hash", graph_hash, measured_hash, f"the {source} run")
    graph_bytes = _read(job, "inspect", GRAPH_FILE, f, "model.architecture_graph_hash")
    weights = _read(job, "train", WEIGHTS_FILE, f, "artifacts")
    if graph_bytes is not None:
        f.equal(
            "model.architecture_graph_hash", graph_hash, hashlib.sha256(graph_bytes).hexdigest(), "the graph artifact"
        )
    if graph_bytes is not None and weights is not None:
        _check_weights_against_graph(f, graph_bytes, weights, count)

    # Compute: tokens from the budget (or a recorded early stop), FLOPs from FLOPs per token.
    tokens = _get(manifest, "compute.tokens")
    f.equal("compute.tokens", tokens, train.tokens, "the train run")
    f.equal("compute.tokens", tokens, train.steps * train.tokens_per_step, "steps x tokens per step")
    tokens_per_step = job.budget.batch_size * job.budget.seq_len
    f.equal("compute.tokens_per_step", train.tokens_per_step, tokens_per_step, "the budget")
    windows = (job.dataset.manifest.split_bytes("train") - 1) // job.budget.seq_len  # from the locked data
    f.equal("compute.data_windows", train.data_windows, windows, "the locked dataset")
    allowed_steps = min(job.token_budget // tokens_per_step, windows // job.budget.batch_size)
    if train.stopped_reason == "wall_clock":
        if not train.steps < allowed_steps or train.train_seconds < job.wall_clock_seconds:
            f.add("compute.tokens", "an early stop for wall clock is recorded but the run did not reach its wall clock")
    elif train.steps != allowed_steps:
        f.add("compute.tokens", f"{train.steps} steps ran; the budget allowed {allowed_steps}")
    f.close(
        "model.flops_per_token", _get(manifest, "model.flops_per_token"), inspect.flops_per_token, "the inspect run"
    )
    flops = _get(manifest, "compute.flops")
    if isinstance(tokens, int):
        charged = charged_flops_per_token(inspect, train)
        f.close("compute.flops", flops, charged * tokens, "charged FLOPs per token x tokens", tol=1e-6)

    # Metrics: bits per byte recomputed from the curves the harness recorded.
    curve_bytes = _read(job, "train", LOSS_CURVE_FILE, f, "metrics.bits_per_byte")
    if curve_bytes is not None:
        try:
            curve = LossCurve.decode(curve_bytes)
            f.close(
                "metrics.bits_per_byte",
                _get(manifest, "metrics.bits_per_byte"),
                curve.bits_per_byte(),
                "the loss curve",
            )
            f.equal("compute.tokens", tokens, curve.total_tokens, "the loss curve")
        except ValueError as exc:
            f.add("metrics.bits_per_byte", f"the loss curve is unreadable: {exc}")
    f.close("metrics.bits_per_byte", _get(manifest, "metrics.bits_per_byte"), train.bits_per_byte, "the train run")
    held_bytes = _read(job, "heldout", HELDOUT_CURVE_FILE, f, "metrics.heldout_bits_per_byte")
    if held_bytes is not None:
        try:
            held = LossCurve.decode(held_bytes)
            f.close(
                "metrics.heldout_bits_per_byte",
                _get(manifest, "metrics.heldout_bits_per_byte"),
                held.bits_per_byte(),
                "the heldout curve",
            )
        except ValueError as exc:
            f.add("metrics.heldout_bits_per_byte", f"the heldout curve is unreadable: {exc}")
    f.close(
        "metrics.heldout_bits_per_byte",
        _get(manifest, "metrics.heldout_bits_per_byte"),
        heldout.heldout_bits_per_byte,
        "the heldout run",
    )
    f.equal(
        "artifacts.weights.safetensors",
        heldout.weights_sha256,
        train.weights_sha256,
        "the weights the heldout run loaded",
    )

    # Artifacts: every hash against the verified file, and each file against the phase's report.
    raw_artifacts = manifest.get("artifacts")
    stated: Mapping[str, Any] = raw_artifacts if isinstance(raw_artifacts, Mapping) else {}
    recorded = {
        GRAPH_FILE: inspect.architecture_graph_sha256,
        LOSS_CURVE_FILE: train.loss_curve_sha256,
        WEIGHTS_FILE: train.weights_sha256,
        HELDOUT_CURVE_FILE: heldout.heldout_curve_sha256,
    }
    for name, phase in _ARTIFACT_PHASE.items():
        data = _read(job, phase, name, f, f"artifacts.{name}")
        if data is None:
            continue
        digest = hashlib.sha256(data).hexdigest()
        f.equal(f"artifacts.{name}", stated.get(name), digest, "the artifact")
        f.equal(f"artifacts.{name}", recorded[name], digest, f"the {phase} report")

    # Anything the sandbox wrote beside the harness: never trusted, always reported.
    for result in (inspect, train, heldout):
        for name in result.foreign_artifacts:
            f.add("artifacts", f"{name} was written into /artifacts by something other than the harness")
        if result.planted_manifest is not None:
            _compare_planted(f, manifest, result.planted_manifest)
    return ValidationReport(ok=not f.items, findings=tuple(f.items))


def _check_weights_against_graph(f: _Findings, graph_bytes: bytes, weights: bytes, count: Any) -> None:
    """The weights file (read by the host itself) must hold exactly the graph's named state."""
    try:
        entries = read_header(weights)
        shapes = state_shapes(json.loads(graph_bytes))
    except (WeightsFormatError, ValueError, KeyError, TypeError) as exc:
        f.add("model.architecture_graph_hash", f"the graph or weights artifact is malformed: {exc}")
        return
    for entry in entries:
        if shapes.get(entry.name) != entry.shape:
            f.add(
                "model.architecture_graph_hash",
                f"weights hold {entry.name} {entry.shape}, the graph says {shapes.get(entry.name)}",
            )
    graph = json.loads(graph_bytes)
    names = {e.name for e in entries}
    for item in graph.get("parameters", ()):
        if item["name"] not in names:
            f.add("model.parameter_count", f"parameter {item['name']} of the graph is missing from the weights")
    numel = sum(e.numel for e in entries)
    if isinstance(count, int) and numel < count:
        f.add("model.parameter_count", f"the weights hold {numel:,} values, fewer than {count:,} parameters")


def _compare_planted(f: _Findings, manifest: Mapping[str, Any], planted_text: str) -> None:
    try:
        planted = json.loads(planted_text)
    except json.JSONDecodeError:
        f.add("schema", "a manifest planted in /artifacts is not JSON")
        return
    if not isinstance(planted, Mapping):
        f.add("schema", "a manifest planted in /artifacts is not an object")
        return
    ours = dict(_leaves(manifest))
    for field, value in _leaves(planted):
        if field in ours and ours[field] != value:
            f.add(field, f"a manifest planted in /artifacts says {value!r}, the measured value is {ours[field]!r}")
        elif field not in ours:
            f.add(field, "a manifest planted in /artifacts claims a field the harness never measured")
