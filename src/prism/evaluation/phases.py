"""The recorder's side of each phase: what to send, what to check, what to record.

`inspect`: counts, graph and FLOPs from the model's process, checked against its own behaviour on
random bytes (shape, finiteness, causality) and the parameter cap. `train`: one pass over the
train split in the order the recorder draws, loss recorded before each update, causality probed
at secret steps. `heldout`: the trained weights loaded, bits per byte on the validation split.

Deadlines are on the model's fair clock (`model.clock.now()`, see `fairtime.py`): time the host
took away from the model's process is not charged to its budget.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from prism.evaluation import measure, probes
from prism.evaluation.graph import canonical_json
from prism.evaluation.metrics import LossCurve
from prism.evaluation.phase import GRAPH_FILE, HELDOUT_CURVE_FILE, LOSS_CURVE_FILE, WEIGHTS_FILE, PhaseSpec, ShardRef
from prism.evaluation.probes import InfraFailure, Rejected
from prism.evaluation.weights import WeightsFormatError, decode_safetensors, encode_safetensors

if TYPE_CHECKING:
    from prism.evaluation.harness import ModelProcess

LN2 = math.log(2)


def _infra(message: str) -> InfraFailure:
    return InfraFailure(message)


def _write(artifacts: Path, name: str, data: bytes) -> str:
    (artifacts / name).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_split(data_dir: Path, shards: tuple[ShardRef, ...]) -> torch.Tensor:
    """The split's bytes, each shard checked against the sha256 the host locked."""
    if not shards:
        raise _infra("the job names no shards")
    chunks = bytearray()
    for shard in shards:
        try:
            raw = (data_dir / shard.path).read_bytes()
        except OSError as exc:
            raise _infra(f"shard {shard.path} is missing: {exc.strerror}") from exc
        if len(raw) != shard.size or hashlib.sha256(raw).hexdigest() != shard.sha256:
            raise _infra(f"shard {shard.path} does not match its locked sha256")
        chunks += raw
    return torch.frombuffer(chunks, dtype=torch.uint8)


def _windows(data: torch.Tensor, starts: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    window = data[starts[:, None] * seq_len + torch.arange(seq_len + 1)]
    return window[:, :-1].contiguous(), window[:, 1:].contiguous()


def _send(model: ModelProcess, op: str, tensor: torch.Tensor) -> None:
    model.channel.send_json({"op": op})
    model.channel.send_tensor(tensor)


def _probe(
    model: ModelProcess,
    spec: PhaseSpec,
    op: str,
    inputs: torch.Tensor,
    real: torch.Tensor,
    gen: torch.Generator,
    timeout: float,
    where: str,
) -> None:
    perturbed, position = probes.perturb(inputs, gen)
    _send(model, op, perturbed)
    probed = model.tensor(timeout)
    probes.check_logits(probed, spec.batch_size, spec.seq_len, where)
    probes.check_causality(real, probed, position, atol=spec.causality_atol, rtol=spec.causality_rtol, where=where)


def _received_state(model: ModelProcess, graph: dict[str, Any], deadline: float) -> measure.StateFigures:
    model.channel.send_json({"op": "state"})
    message = model.message(deadline - model.clock.now(), "state")
    names = message.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise Rejected("protocol", "the state names are not a list of distinct strings", {})
    tensors = {name: model.tensor(deadline - model.clock.now()) for name in names}
    return measure.measure_state(graph, tensors, message.get("tied", []))


def inspect(
    spec: PhaseSpec, model: ModelProcess, identity: dict[str, Any], artifacts: Path, deadline: float
) -> dict[str, Any]:
    model.channel.send_json({"op": "inspect"})
    report = model.message(deadline - model.clock.now(), "inspect")
    graph = report.get("graph")
    if not isinstance(graph, dict):
        raise Rejected("protocol", "the inspect report holds no graph", {})
    graph_bytes = canonical_json(graph)
    graph_hash = hashlib.sha256(graph_bytes).hexdigest()
    parameter_count = probes.as_int(report.get("parameter_count"), "parameter_count")
    if graph_hash != identity["graph_hash"] or parameter_count != identity["parameter_count"]:
        raise Rejected("unstable_model", "the model's graph or parameter count changed between two looks", {})
    flops_per_token = probes.as_float(report.get("flops_per_token"), "flops_per_token")
    # The count behind the cap is the recorder's own, from raw tensors; the model's claim must agree.
    measured = _received_state(model, graph, deadline)
    measure.check_claim(parameter_count, measured.parameter_count, "parameters")
    measure.check_claim(identity["buffer_count"], measured.buffer_count, "buffer values")
    if parameter_count > spec.parameter_cap:
        raise Rejected(
            "parameter_cap",
            f"the model has {parameter_count:,} parameters after a first forward; the cap is {spec.parameter_cap:,}",
            {"parameter_count": parameter_count, "parameter_cap": spec.parameter_cap},
        )
    # Behaviour on bytes the model cannot have seen: shape, finite values, causality.
    gen = torch.Generator().manual_seed(spec.probe_seed)
    inputs = torch.randint(0, 256, (spec.batch_size, spec.seq_len), generator=gen, dtype=torch.uint8)
    timeout = deadline - model.clock.now()
    _send(model, "forward", inputs)
    logits = model.tensor(timeout)
    probes.check_logits(logits, spec.batch_size, spec.seq_len, "inspect")
    _probe(model, spec, "probe", inputs, logits, gen, timeout, "inspect, random bytes")
    return {
        "parameter_count": parameter_count,
        "buffer_count": identity["buffer_count"],
        "architecture_graph_hash": graph_hash,
        "architecture_graph_sha256": _write(artifacts, GRAPH_FILE, graph_bytes),
        "dataflow_source": str(graph.get("dataflow_source", "")),
        "flops_per_token": flops_per_token,
    }


def train(
    spec: PhaseSpec, model: ModelProcess, identity: dict[str, Any], data_dir: Path, artifacts: Path, started: float
) -> dict[str, Any]:
    data = load_split(data_dir, spec.shards)
    tokens_per_step = spec.batch_size * spec.seq_len
    windows = (data.numel() - 1) // spec.seq_len
    budget_steps = spec.token_budget // tokens_per_step
    steps = min(budget_steps, windows // spec.batch_size)
    if steps == 0:
        raise _infra(f"the train split ({data.numel()} bytes) or the token budget holds less than one batch")
    stopped_reason = "token_budget" if steps == budget_steps else "data_exhausted"
    order = torch.randperm(windows, generator=torch.Generator().manual_seed(spec.data_order_seed))
    probed = probes.probe_steps(spec.probe_seed, steps, spec.probe_count)
    gen = torch.Generator().manual_seed(spec.probe_seed + 1)
    wall_deadline = started + spec.wall_clock_seconds
    losses: list[float] = []
    first_bpb: float | None = None
    loop_started = time.monotonic()
    for step in range(steps):
        if model.clock.now() >= wall_deadline:
            stopped_reason = "wall_clock"
            break
        inputs, targets = _windows(data, order[step * spec.batch_size : (step + 1) * spec.batch_size], spec.seq_len)
        timeout = wall_deadline + spec.grace_seconds - model.clock.now()
        _send(model, "forward", inputs)
        logits = model.tensor(timeout)
        probes.check_logits(logits, spec.batch_size, spec.seq_len, f"train step {step}")
        if step in probed:
            _probe(model, spec, "probe", inputs, logits, gen, timeout, f"train step {step}")
        # The loss is fixed by the logits already received; only now may the model see the targets.
        _send(model, "step", targets)
        nats = probes.loss_nats(logits, targets)
        if first_bpb is None:
            first_bpb = nats / LN2
        if step < spec.first_batches_checked and nats / LN2 < spec.first_batch_floor_bpb:
            raise Rejected(
                "impossible_first_batch_loss",
                f"train step {step}: {nats / LN2:.3f} bits per byte before any update on it, below the floor of "
                f"{spec.first_batch_floor_bpb} that no untrained model reaches (uniform is 8.0): "
                "knowledge came with the code",
                {"step": step, "bits_per_byte": nats / LN2, "floor": spec.first_batch_floor_bpb},
            )
        losses.append(nats)
    timeout = wall_deadline + spec.grace_seconds - model.clock.now()
    model.channel.send_json({"op": "state"})  # answered only once the last step is done
    state = model.message(timeout, "state")
    names = state.get("names")
    loop_seconds = time.monotonic() - loop_started
    if not isinstance(names, list) or len(set(map(str, names))) != len(names):
        raise Rejected("protocol", "the state names are not a list of distinct strings", {})
    tensors = {str(name): model.tensor(timeout) for name in names}
    measure.check_tied(tensors, measure.tied_groups(state.get("tied", []), set(tensors)))
    try:
        weights = encode_safetensors(tensors)
    except WeightsFormatError as exc:
        raise Rejected("weights_format", str(exc), {}) from exc
    curve = LossCurve(tuple(losses), (tokens_per_step,) * len(losses))
    return {
        **identity,
        "tokens": curve.total_tokens,
        "steps": len(losses),
        "tokens_per_step": tokens_per_step,
        "budget_steps": budget_steps,
        "data_windows": windows,
        "stopped_reason": stopped_reason,
        "bits_per_byte": curve.bits_per_byte(),
        "first_batch_bits_per_byte": first_bpb,
        "probed_steps": sorted(s for s in probed if s < len(losses)),
        "loss_curve_sha256": _write(artifacts, LOSS_CURVE_FILE, curve.encode()),
        "weights_sha256": _write(artifacts, WEIGHTS_FILE, weights),
        "weights_numel": sum(t.numel() for t in tensors.values()),
        "train_seconds": round(time.monotonic() - started, 3),
        "loop_seconds": round(loop_seconds, 4),
    }


def heldout(
    spec: PhaseSpec,
    model: ModelProcess,
    identity: dict[str, Any],
    data_dir: Path,
    job_dir: Path,
    artifacts: Path,
    deadline: float,
) -> dict[str, Any]:
    raw = (job_dir / WEIGHTS_FILE).read_bytes()
    if hashlib.sha256(raw).hexdigest() != spec.weights_sha256:
        raise _infra("the trained weights do not match the sha256 the host recorded")
    try:
        tensors = decode_safetensors(raw)
    except WeightsFormatError as exc:
        raise _infra(f"the trained weights are unreadable: {exc}") from exc
    model.channel.send_json({"op": "load_state", "names": list(tensors)})
    for tensor in tensors.values():
        model.channel.send_tensor(tensor)
    model.message(deadline - model.clock.now(), "loaded")
    data = load_split(data_dir, spec.shards)
    tokens_per_step = spec.batch_size * spec.seq_len
    windows = (data.numel() - 1) // spec.seq_len
    steps = min(spec.heldout_tokens // tokens_per_step, windows // spec.batch_size)
    if steps == 0:
        raise _infra(f"the validation split ({data.numel()} bytes) or heldout_tokens holds less than one batch")
    probe_at = min(probes.probe_steps(spec.probe_seed, steps, 1) - {0} or {0})
    gen = torch.Generator().manual_seed(spec.probe_seed + 2)
    losses: list[float] = []
    for step in range(steps):
        # In order, no shuffle: the held-out figure is a fixed function of the weights.
        inputs, targets = _windows(
            data, torch.arange(step * spec.batch_size, (step + 1) * spec.batch_size), spec.seq_len
        )
        timeout = deadline - model.clock.now()
        _send(model, "eval", inputs)
        logits = model.tensor(timeout)
        probes.check_logits(logits, spec.batch_size, spec.seq_len, f"heldout batch {step}")
        if step == probe_at:
            _probe(model, spec, "eval", inputs, logits, gen, timeout, f"heldout batch {step}")
        losses.append(probes.loss_nats(logits, targets))
    curve = LossCurve(tuple(losses), (tokens_per_step,) * len(losses))
    return {
        **identity,
        "heldout_bits_per_byte": curve.bits_per_byte(),
        "heldout_tokens": curve.total_tokens,
        "heldout_curve_sha256": _write(artifacts, HELDOUT_CURVE_FILE, curve.encode()),
        "weights_sha256": spec.weights_sha256,
    }
