"""The recorder's side of each phase: what to send, what to check, what to record.

`inspect`: counts, graph and FLOPs from the model's process, checked against its own behaviour on
random bytes (shape, finiteness, causality) and the parameter cap. `train`: one pass over the
train split in the order the recorder draws, loss recorded before each update, causality probed
at secret steps. `heldout`: the trained weights loaded, bits per byte on the held-out window
(the start of the validation split the host cut, in /job: the split itself never comes here).

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

from prism.evaluation import measure, platform_data, probes, replay
from prism.evaluation.errors import DatasetError
from prism.evaluation.graph import canonical_json
from prism.evaluation.metrics import LossCurve
from prism.evaluation.phase import (
    DATA_IN_JOB,
    DATA_MOUNTED,
    DATA_STAGED,
    GRAPH_FILE,
    HELDOUT_CURVE_FILE,
    LOSS_CURVE_FILE,
    WEIGHTS_FILE,
    PhaseSpec,
    ShardRef,
)
from prism.evaluation.probes import InfraFailure, MinerFailure, Rejected
from prism.evaluation.progress import ProgressEmitter
from prism.evaluation.weights import WeightsFormatError, decode_safetensors, encode_safetensors

if TYPE_CHECKING:
    from prism.evaluation.harness import ModelProcess

LN2 = math.log(2)


def _infra(message: str) -> InfraFailure:
    return InfraFailure(message)


def _write(artifacts: Path, name: str, data: bytes) -> str:
    (artifacts / name).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def data_dir_for(spec: PhaseSpec, *, data: Path, job_dir: Path) -> Path:
    """Where this phase's shards are: the staged /data, the job directory, or the platform's mount."""
    if spec.data_source == DATA_IN_JOB:
        return job_dir
    if spec.data_source == DATA_MOUNTED:
        if not spec.mount_dir.startswith("/"):
            raise _infra(f"the job names no absolute mount for its data ({spec.mount_dir!r})")
        return Path(spec.mount_dir)
    if spec.data_source != DATA_STAGED:
        raise _infra(f"the job names an unknown data source {spec.data_source!r}")
    return data


def _read_shard(data_dir: Path, shard: ShardRef, what: str) -> bytes:
    """One shard, read once and checked against its size and sha256 before any byte is used."""
    if "/" in shard.path or shard.path in ("", ".", ".."):
        raise _infra(f"{what} {shard.path!r} is not a plain file name")
    try:
        raw = (data_dir / shard.path).read_bytes()
    except OSError as exc:
        raise _infra(f"{what} {shard.path} is missing under {data_dir}: {exc.strerror}") from exc
    if len(raw) != shard.size or hashlib.sha256(raw).hexdigest() != shard.sha256:
        raise _infra(f"{what} {shard.path} under {data_dir} does not match its locked size and sha256")
    return raw


def _from_platform(data_dir: Path, sources: tuple[ShardRef, ...], shards: tuple[ShardRef, ...]) -> bytearray:
    """Platform's JSONL shards turned into tokens exactly as `prism data lock` turned them into the
    locked shards, then checked, shard by shard, against those: byte-identical or refused."""
    stream = bytearray()
    for source in sources:
        raw = _read_shard(data_dir, source, "Platform shard")
        try:
            stream += platform_data.jsonl_stream(raw, source.path)
        except DatasetError as exc:
            raise _infra(str(exc)) from exc
    view, offset = memoryview(stream), 0
    for shard in shards:
        piece = view[offset : offset + shard.size]
        if len(piece) != shard.size or hashlib.sha256(piece).hexdigest() != shard.sha256:
            raise _infra(f"the tokens built from Platform's shards differ from the locked shard {shard.path}")
        offset += shard.size
    view.release()
    if offset != len(stream):
        raise _infra(f"Platform's shards hold {len(stream) - offset} bytes more than the locked split")
    return stream


def load_split(data_dir: Path, shards: tuple[ShardRef, ...], sources: tuple[ShardRef, ...] = ()) -> torch.Tensor:
    """The split's bytes, each shard checked against the sha256 the host locked; with `sources`,
    built from Platform's JSONL shards in `data_dir` (its read-only mount) and checked likewise."""
    if not shards:
        raise _infra("the job names no shards")
    if sources:
        return torch.frombuffer(_from_platform(data_dir, sources, shards), dtype=torch.uint8)
    chunks = bytearray()
    for shard in shards:
        chunks += _read_shard(data_dir, shard, "shard")
    return torch.frombuffer(chunks, dtype=torch.uint8)


def _windows(data: torch.Tensor, starts: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    window = data[starts[:, None] * seq_len + torch.arange(seq_len + 1)]
    return window[:, :-1].contiguous(), window[:, 1:].contiguous()


def _send(model: ModelProcess, op: str, tensor: torch.Tensor, **extra: Any) -> None:
    model.channel.send_json({"op": op, **extra})
    model.channel.send_tensor(tensor)


def _received_state(
    model: ModelProcess, graph: dict[str, Any], deadline: float
) -> tuple[measure.StateFigures, dict[str, torch.Tensor]]:
    """The model's state as raw tensors, and the recorder's own figures of it."""
    model.channel.send_json({"op": "state"})
    message = model.message(deadline - model.clock.now(), "state")
    names = message.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise Rejected("protocol", "the state names are not a list of distinct strings", {})
    tensors = dict(zip(names, model.tensors(deadline - model.clock.now(), len(names)), strict=True))
    return measure.measure_state(graph, tensors, message.get("tied", [])), tensors


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
    measured, state = _received_state(model, graph, deadline)
    measure.check_claim(parameter_count, measured.parameter_count, "parameters")
    # Buffers are not compared: non-persistent ones (cached RoPE tables) are never in the state,
    # and every value that is in it counts against the cap below (`check_state_cap`).
    if parameter_count > spec.parameter_cap:
        raise Rejected(
            "parameter_cap",
            f"the model has {parameter_count:,} parameters after a first forward; the cap is {spec.parameter_cap:,}",
            {"parameter_count": parameter_count, "parameter_cap": spec.parameter_cap},
        )
    # Every value it keeps, wherever it keeps it (buffers, packed dtypes), under the same cap.
    replay.check_state_cap(state, spec.parameter_cap, "inspect")
    # Behaviour on bytes the model cannot have seen: shape, finite values, causality.
    gen = torch.Generator().manual_seed(spec.probe_seed)
    inputs = torch.randint(0, 256, (spec.batch_size, spec.seq_len), generator=gen, dtype=torch.uint8)
    timeout = deadline - model.clock.now()
    seed = probes.call_seed(spec.probe_seed, "inspect", 0)
    _send(model, "forward", inputs, seed=seed)
    logits = model.tensor(timeout)
    probes.check_logits(logits, spec.batch_size, spec.seq_len, "inspect")
    # A quick screen for blatant readers of the future, in this process (no score rests on it):
    # one cut inside a row, one at a row's start. The binding checks are the replica's replays.
    for at_row_start in (False, True):
        perturbed, keep = probes.perturb_stream(inputs, gen, at_row_start=at_row_start)
        _send(model, "forward", perturbed, seed=seed)
        probed = model.tensor(timeout)
        probes.check_logits(probed, spec.batch_size, spec.seq_len, "inspect")
        probes.check_replay(
            logits, probed, keep, atol_nats=spec.causality_atol, where="inspect, random bytes", kind=replay.CAUSAL
        )
    figures: dict[str, Any] = {
        "parameter_count": parameter_count,
        "buffer_count": identity["buffer_count"],
        "architecture_graph_hash": graph_hash,
        "architecture_graph_sha256": _write(artifacts, GRAPH_FILE, graph_bytes),
        "dataflow_source": str(graph.get("dataflow_source", "")),
        "flops_per_token": flops_per_token,
    }
    if spec.gated:  # the host decides on the graph while this run waits; /artifacts comes back only at the end
        figures["architecture_graph_json"] = graph_bytes.decode("utf-8")
    return figures


def train(
    spec: PhaseSpec,
    model: ModelProcess,
    identity: dict[str, Any],
    data_dir: Path,
    artifacts: Path,
    started: float,
    replica_process: ModelProcess,
    *,
    progress: ProgressEmitter | None = None,
) -> dict[str, Any]:
    loading = time.monotonic()
    data = load_split(data_dir, spec.shards, spec.source_shards)
    # The recorder's reading (from Platform's mount, parsing too) while the model waits is not its time.
    loading = time.monotonic() - loading
    tokens_per_step = spec.batch_size * spec.seq_len
    windows = (data.numel() - 1) // spec.seq_len
    budget_steps = spec.token_budget // tokens_per_step
    steps = min(budget_steps, windows // spec.batch_size)
    if steps == 0:
        raise _infra(f"the train split ({data.numel()} bytes) or the token budget holds less than one batch")
    stopped_reason = "token_budget" if steps == budget_steps else "data_exhausted"
    order = torch.randperm(windows, generator=torch.Generator().manual_seed(spec.data_order_seed))
    wall_deadline = started + loading + spec.wall_clock_seconds
    hard_deadline = wall_deadline + spec.grace_seconds
    chosen = replay.plan(spec.probe_seed, "train", steps, spec.replay_fraction)
    gen = torch.Generator().manual_seed(spec.probe_seed + 1)
    replica = replay.Replica(spec, replica_process, identity, hard_deadline)
    losses: list[float] = []
    model_seconds = 0.0
    loop_started = time.monotonic()
    state = replay.read_state(model, hard_deadline - model.clock.now())
    replay.check_state_cap(state, spec.parameter_cap, "before training")
    if progress is not None:
        progress.start(steps)
    for step in range(steps):
        if model.clock.now() >= wall_deadline:
            stopped_reason = "wall_clock"
            break
        starts = order[step * spec.batch_size : (step + 1) * spec.batch_size]
        inputs, targets = _windows(data, starts, spec.seq_len)
        timeout = hard_deadline - model.clock.now()
        seed = probes.call_seed(spec.probe_seed, "train", step)
        call_started = model.clock.now()
        _send(model, "forward", inputs, seed=seed)
        logits = model.tensor(timeout)
        probes.check_logits(logits, spec.batch_size, spec.seq_len, f"train step {step}")
        # The loss is fixed by the logits already received; only now may the model see the targets.
        _send(model, "step", targets)
        # State after every step, replayed or not: asking says nothing about which step is replayed.
        after = replay.read_state(model, hard_deadline - model.clock.now())
        model_seconds += time.monotonic() - call_started
        losses.append(probes.loss_nats(logits, targets))
        if progress is not None:
            progress.record(step, losses[-1], tokens_per_step)
        if step in chosen:
            replica.submit(
                step=step,
                kind=chosen[step],
                where=f"train step {step}",
                state=state,
                seed=seed,
                inputs=inputs,
                targets=targets,
                recorded=logits,
                gen=gen,
            )
        state = after
    replica.collect()
    loop_seconds = time.monotonic() - loop_started
    cpu = {
        "model_cpu_seconds": round(replay.cpu_seconds(model.proc.pid), 3),
        "replica_cpu_seconds": round(replay.cpu_seconds(replica_process.proc.pid), 3),
    }
    if not losses:
        raise MinerFailure("timeout", "the wall clock ran out before the first batch was answered")
    replay.check_state_cap(state, spec.parameter_cap, "after training")
    try:
        weights = encode_safetensors(state)
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
        "first_batch_bits_per_byte": losses[0] / LN2,
        "probed_steps": list(replica.log.steps),
        **replica.log.figures(),
        "loss_curve_sha256": _write(artifacts, LOSS_CURVE_FILE, curve.encode()),
        "weights_sha256": _write(artifacts, WEIGHTS_FILE, weights),
        "weights_numel": sum(t.numel() for t in state.values()),
        "train_seconds": round(time.monotonic() - started, 3),
        "loop_seconds": round(loop_seconds, 4),
        "model_seconds": round(model_seconds, 4),
        **cpu,
    }


def heldout_order(windows: int, batch_size: int, steps: int) -> torch.Tensor:
    """Window indices by batch: row r of batch j is window j + r*steps, so no two rows of a batch
    are neighbours in the stream (row r+1's first byte is never row r's last target)."""
    return torch.arange(steps)[:, None] + torch.arange(batch_size)[None, :] * steps


def heldout(
    spec: PhaseSpec,
    model: ModelProcess,
    identity: dict[str, Any],
    data_dir: Path,
    weights: Path,
    artifacts: Path,
    deadline: float,
    replica_process: ModelProcess,
) -> dict[str, Any]:
    raw = weights.read_bytes()
    if hashlib.sha256(raw).hexdigest() != spec.weights_sha256:
        raise _infra("the trained weights do not match the sha256 the host recorded")
    try:
        tensors = decode_safetensors(raw)
    except WeightsFormatError as exc:
        raise _infra(f"the trained weights are unreadable: {exc}") from exc
    # Only the state the recorder saved reaches this fresh process: whatever the model kept
    # elsewhere in training (a Python list, an attribute) does not survive into held-out.
    model.channel.send_json({"op": "load_state", "names": list(tensors)})
    for tensor in tensors.values():
        model.channel.send_tensor(tensor)
    model.message(deadline - model.clock.now(), "loaded")
    data = load_split(data_dir, spec.shards, spec.source_shards)
    tokens_per_step = spec.batch_size * spec.seq_len
    windows = (data.numel() - 1) // spec.seq_len
    steps = min(spec.heldout_tokens // tokens_per_step, windows // spec.batch_size)
    if steps == 0:
        raise _infra(f"the validation split ({data.numel()} bytes) or heldout_tokens holds less than one batch")
    order = heldout_order(windows, spec.batch_size, steps)
    chosen = replay.plan(spec.probe_seed, "heldout", steps, spec.replay_fraction)
    gen = torch.Generator().manual_seed(spec.probe_seed + 2)
    replica = replay.Replica(spec, replica_process, identity, deadline)
    losses: list[float] = []
    for step in range(steps):
        # A fixed order, no shuffle: the held-out figure is a fixed function of the weights.
        inputs, targets = _windows(data, order[step], spec.seq_len)
        timeout = deadline - model.clock.now()
        seed = probes.call_seed(spec.probe_seed, "heldout", step)
        _send(model, "eval", inputs, seed=seed)
        logits = model.tensor(timeout)
        probes.check_logits(logits, spec.batch_size, spec.seq_len, f"heldout batch {step}")
        losses.append(probes.loss_nats(logits, targets))
        if step in chosen:
            replica.submit(
                step=step,
                kind=chosen[step],
                where=f"heldout batch {step}",
                state=tensors,
                seed=seed,
                inputs=inputs,
                targets=None,
                recorded=logits,
                gen=gen,
                mode="eval",
            )
    replica.collect()
    _check_unchanged(model, tensors, deadline)
    curve = LossCurve(tuple(losses), (tokens_per_step,) * len(losses))
    return {
        **identity,
        "heldout_bits_per_byte": curve.bits_per_byte(),
        "heldout_tokens": curve.total_tokens,
        "heldout_curve_sha256": _write(artifacts, HELDOUT_CURVE_FILE, curve.encode()),
        "weights_sha256": spec.weights_sha256,
        "heldout_replayed_steps": list(replica.log.steps),
        "heldout_replay_max_change_nats": replica.log.max_change_nats,
    }


def _check_unchanged(model: ModelProcess, loaded: dict[str, torch.Tensor], deadline: float) -> None:
    """Held-out is inference: the state after it must be, bit for bit, the state loaded before it."""
    after = replay.read_state(model, deadline - model.clock.now())
    changed = sorted(
        name
        for name in set(loaded) | set(after)
        if name not in loaded
        or name not in after
        or loaded[name].shape != after[name].shape
        or loaded[name].dtype != after[name].dtype
        or not torch.equal(loaded[name], after[name])
    )
    if changed:
        raise Rejected(
            "heldout_adaptation",
            f"the model's state changed during held-out scoring ({', '.join(changed[:5])}"
            f"{'...' if len(changed) > 5 else ''}): it learned from the bytes it was scored on",
            {"changed_tensors": changed[:50], "changed_count": len(changed)},
        )
