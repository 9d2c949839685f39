"""The recorder's side of replays: a second model process that redoes recorded calls.

Why a second process: any scheme in which the process that answers the real batch also answers
its probe leaks. A model that memoises its last input returns cached logits for a probe's shared
prefix (and by comparing the two learns the perturbed position); one that counts calls cheats
after the last probe; one that runs probes differently (they ran under `no_grad`) tells them
apart. Here the training process only ever sees real batches, one forward and one step each, and
hands over its state after every step (so a request for state says nothing about which step is
replayed). At secret steps, drawn per step from the job's secret (their number is binomial, not
fixed, and a large fraction of steps), the replica, built by the same spawn path under the same
walls, gets the state from before the step, the recorder's seed for the call, and either

- `reproduce`: the real batch; its logits must match the recorded ones everywhere. A quarter of
  these (and step 0) are `charge` replays, which also get the targets and redo the whole step:
  what they measure on these real tensors is what the run is charged, FLOPs of the whole step
  (`train_step` included) and optimizer steps, and the ops the forward executes must be the
  graph the model was registered under.
- `causal`: a perturbed copy (stream order, across rows). Its logits must match the recorded
  ones before the perturbation.

For one step the replica sees the real batch or its probe, never both, and the training process
sees no probe at all. Since determinism is enforced, a cache, a call counter, state kept outside
the state dict, or learning in held-out shows as a mismatch. Replies are collected one replay
later, so the replica computes while training goes on.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from prism.evaluation import probes
from prism.evaluation.probes import MinerFailure, Rejected
from prism.evaluation.wire import WireError, tensor_to_bytes

if TYPE_CHECKING:
    from prism.evaluation.harness import ModelProcess
    from prism.evaluation.phase import PhaseSpec

REPRODUCE = "reproduce"
CHARGE = "charge"  # a reproduce replay that also redoes the step, to measure what it costs
CAUSAL = "causal"


def plan(secret: int, phase: str, steps: int, fraction: float) -> dict[int, str]:
    """Step -> replay kind. Step 0 always (charged); every other step independently with `fraction`:
    half causal, the other half reproduce, a quarter of those redoing the whole step (charge)."""
    chosen: dict[int, str] = {}
    for step in range(steps):
        digest = hashlib.sha256(f"prism.replay:{secret}:{phase}:{step}".encode()).digest()
        if step == 0:
            chosen[step] = CHARGE
        elif int.from_bytes(digest[:8], "big") / 2**64 < fraction:
            chosen[step] = CAUSAL if digest[8] & 1 else CHARGE if digest[9] % 4 == 0 else REPRODUCE
    return chosen


MEMORY_BASE_BYTES = 1024**3  # the interpreter, torch and its kernels: ~0.3 GiB measured on CPU
MEMORY_BYTES_PER_PARAMETER = 64  # weights, gradients, two Adam moments (16 B), four times over
MEMORY_BYTES_PER_TOKEN = 64 * 1024  # activations kept for backward


def memory_limit_bytes(spec: PhaseSpec) -> int:
    """The model process's data-segment limit: in proportion to the parameter cap, so weights the
    model keeps beyond what is counted have nowhere to live."""
    tokens = spec.batch_size * spec.seq_len
    return MEMORY_BASE_BYTES + MEMORY_BYTES_PER_PARAMETER * spec.parameter_cap + MEMORY_BYTES_PER_TOKEN * tokens


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (what the replica costs, whatever the host's load)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_state(model: ModelProcess, timeout: float) -> dict[str, torch.Tensor]:
    """The model's state dict as raw tensors (answered only once the previous step is done)."""
    model.channel.send_json({"op": "state"})
    names = model.message(timeout, "state").get("names")
    if not isinstance(names, list) or len(set(map(str, names))) != len(names):
        raise Rejected("protocol", "the state names are not a list of distinct strings", {})
    return dict(zip(map(str, names), model.tensors(timeout, len(names)), strict=True))


def state_count(state: dict[str, torch.Tensor]) -> int:
    """Values the model keeps in its state, in float32 equivalents, counting tied tensors once.

    Counted from the raw tensors received, whatever the model calls them: parameters hidden from
    `parameters()`, weights kept as (grad-requiring) buffers, float64 tensors holding two float32
    values each (hence bytes / 4 where that is more than the element count).
    """
    seen: set[tuple[str, tuple[int, ...], str]] = set()
    total = 0
    for tensor in state.values():
        key = (str(tensor.dtype), tuple(tensor.shape), hashlib.sha256(tensor_to_bytes(tensor.detach())).hexdigest())
        if key in seen:  # a tied weight arrives once per name, with identical bytes
            continue
        seen.add(key)
        total += max(tensor.numel(), tensor.numel() * tensor.element_size() // 4)
    return total


def check_state_cap(state: dict[str, torch.Tensor], cap: int, where: str) -> None:
    """The parameter cap holds for everything the model keeps in its state, not only parameters()."""
    count = state_count(state)
    if count > cap:
        raise Rejected(
            "parameter_cap_state",
            f"{where}: the model's state holds {count:,} values (float32 equivalents, tied tensors once); "
            f"the parameter cap is {cap:,}: weights kept as buffers, hidden from parameters() or packed "
            "into wider dtypes count too",
            {"state_values": count, "parameter_cap": cap},
        )


@dataclass
class _Pending:
    step: int
    kind: str
    where: str
    recorded: torch.Tensor
    keep: torch.Tensor
    tokens: int
    # Kept for the follow-up that tells a non-causal model from an unreproducible one.
    state: dict[str, torch.Tensor]
    seed: int
    inputs: torch.Tensor
    mode: str


@dataclass
class ReplayLog:
    """What the replays measured, for the phase's report."""

    steps: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    flops_per_token: float = 0.0
    optimizer_steps: int = 0
    graph_mismatch_steps: list[int] = field(default_factory=list)
    seconds: float = 0.0
    # The largest honest change seen (nats): the float noise the tolerance is measured against.
    max_change_nats: float = 0.0

    def figures(self) -> dict[str, Any]:
        return {
            "replayed_steps": list(self.steps),
            "replay_kinds": list(self.kinds),
            "replayed_flops_per_token": self.flops_per_token,
            "replayed_optimizer_steps": self.optimizer_steps,
            "graph_mismatch_steps": list(self.graph_mismatch_steps),
            "replay_seconds": round(self.seconds, 4),
            "replay_max_change_nats": self.max_change_nats,
        }


def _adapted(exc: Rejected) -> Rejected:
    """In held-out the weights are fixed, so a call that does not reproduce from them adapted."""
    return Rejected(
        "heldout_adaptation",
        f"{exc.detail}; in held-out that means the model changed while it was scored",
        exc.figures,
    )


class Replica:
    """The second model process and the one replay in flight."""

    def __init__(self, spec: PhaseSpec, process: ModelProcess, identity: dict[str, Any], deadline: float) -> None:
        # `process` was started by the recorder through the same spawn path as the training one.
        self.spec = spec
        self.deadline = deadline
        self.process = process
        self.log = ReplayLog()
        self.pending: _Pending | None = None
        ready = self.process.message(self._timeout(), "ready")
        if ready.get("graph_hash") != identity["graph_hash"]:
            raise Rejected(
                "unstable_model",
                "a second process built from the same code and seed has another architecture graph",
                {"graph_hash": identity["graph_hash"]},
            )
        self.dataflow_hash = str(ready.get("dataflow_hash", ""))

    def _timeout(self) -> float:
        return max(self.deadline - self.process.clock.now(), 0.001)

    def _send(
        self, state: dict[str, torch.Tensor], seed: int, inputs: torch.Tensor, targets: torch.Tensor | None, mode: str
    ) -> None:
        channel = self.process.channel
        try:
            channel.send_json(
                {"op": "replay", "names": list(state), "seed": seed, "mode": mode, "with_step": targets is not None}
            )
            channel.send_tensors(list(state.values()))
            channel.send_tensor(inputs)
            if targets is not None:
                channel.send_tensor(targets)
        except WireError as exc:
            # The replica went away: its last words (an error frame) say why, else it crashed.
            self.process.reply(5.0)
            raise MinerFailure("crashed", "the replica model process closed its channel") from exc

    def _receive(self) -> tuple[dict[str, Any], torch.Tensor]:
        figures = self.process.message(self._timeout(), "replayed")
        logits = self.process.tensor(self._timeout())
        probes.check_logits(logits, self.spec.batch_size, self.spec.seq_len, "replica")
        return figures, logits

    def submit(
        self,
        *,
        step: int,
        kind: str,
        where: str,
        state: dict[str, torch.Tensor],
        seed: int,
        inputs: torch.Tensor,
        targets: torch.Tensor | None,
        recorded: torch.Tensor,
        gen: torch.Generator,
        mode: str = "train",
    ) -> None:
        """Start a replay of the call that produced `recorded`; its verdict comes with the next."""
        self.collect()
        started = time.monotonic()
        if kind == CAUSAL:
            sent, keep = probes.perturb_stream(inputs, gen)
        else:
            keep = torch.ones(inputs.shape, dtype=torch.bool)
            sent = inputs
        self._send(state, seed, sent, targets if kind == CHARGE and mode == "train" else None, mode)
        tokens = inputs.numel()
        self.pending = _Pending(step, kind, where, recorded, keep, tokens, state, seed, inputs, mode)
        self.log.seconds += time.monotonic() - started

    def collect(self) -> None:
        """The verdict on the replay in flight, if any."""
        pending, self.pending = self.pending, None
        if pending is None:
            return
        started = time.monotonic()
        figures, logits = self._receive()
        self.log.steps.append(pending.step)
        self.log.kinds.append(pending.kind)
        try:
            worst = probes.check_replay(
                pending.recorded,
                logits,
                pending.keep,
                atol_nats=self.spec.causality_atol,
                where=f"{pending.where} ({pending.kind} replay)",
                kind=CAUSAL if pending.kind == CAUSAL else REPRODUCE,
            )
        except Rejected as exc:
            if pending.kind == CAUSAL:
                self._disambiguate(pending)
            if pending.mode == "eval" and exc.reason_code == "replay_mismatch":
                raise _adapted(exc) from exc
            raise
        self.log.max_change_nats = max(self.log.max_change_nats, worst)
        if pending.kind == CHARGE and pending.mode == "train":
            flops = probes.as_float(figures.get("flops"), "flops")
            self.log.flops_per_token = max(self.log.flops_per_token, flops / pending.tokens)
            steps = probes.as_int(figures.get("optimizer_steps"), "optimizer_steps")
            self.log.optimizer_steps = max(self.log.optimizer_steps, steps)
            if figures.get("dataflow_hash") != self.dataflow_hash:
                self.log.graph_mismatch_steps.append(pending.step)
        self.log.seconds += time.monotonic() - started

    def _disambiguate(self, pending: _Pending) -> None:
        """After a failed causal replay (the verdict is already negative, so nothing leaks now):
        does the real input reproduce? If not, the fault is unreproducibility, not causality."""
        self._send(pending.state, pending.seed, pending.inputs, None, pending.mode)
        _, logits = self._receive()
        keep = torch.ones(pending.inputs.shape, dtype=torch.bool)
        try:
            probes.check_replay(
                pending.recorded,
                logits,
                keep,
                atol_nats=self.spec.causality_atol,
                where=f"{pending.where} (reproduce replay after a failed causal one)",
                kind=REPRODUCE,
            )
        except Rejected as exc:
            raise _adapted(exc) if pending.mode == "eval" else exc from exc
