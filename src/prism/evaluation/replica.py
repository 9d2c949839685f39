"""The replica's side of a replay: one recorded call redone inside a second model process.

Runs in a model process (it calls the submission), started through the same spawn path as the
training process, so it has every wall that one has. It is given the training process's state
from *before* the call, the recorder's seed for the call and either the real batch (with its
targets: the whole step is redone) or a perturbed copy of it, never both for one step. It returns
the logits together with what it measured on these real tensors: the FLOPs of the whole step
(`train_step` included), the optimizer steps taken, and the hash of the ops the forward executed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from prism.evaluation import graph as graph_mod

if TYPE_CHECKING:
    from prism.evaluation.model_proc import ModelHost


@dataclass(frozen=True, slots=True)
class ReplayedCall:
    logits: torch.Tensor
    figures: dict[str, Any]


def reseed(seed: int) -> None:
    """Seed every generator a forward may draw from, from the recorder's seed for the call."""
    random.seed(seed)
    torch.manual_seed(seed)


def replay_call(
    host: ModelHost, inputs: torch.Tensor, targets: torch.Tensor | None, *, seed: int, mode: str
) -> ReplayedCall:
    """Redo one call. With `targets` (a charge replay) the whole step is redone and measured: FLOPs,
    optimizer steps and the executed graph. Without, the forward runs bare (no per-op recording),
    so the many plain replays cost what a forward costs."""
    if targets is None:
        reseed(seed)
        if mode == "eval":
            host.model.eval()
            with torch.inference_mode():
                return ReplayedCall(host._logits(inputs).detach().float(), {})
        host.model.train()
        return ReplayedCall(host._logits(inputs).detach().float(), {})
    return _charge(host, inputs, targets, seed=seed)


def _charge(host: ModelHost, inputs: torch.Tensor, targets: torch.Tensor, *, seed: int) -> ReplayedCall:
    from torch.utils.flop_counter import FlopCounterMode

    steps = [0]

    def count(*_: object) -> None:
        steps[0] += 1

    # Every optimizer built on torch.optim.Optimizer passes through this hook, the miner's own too.
    handle = register_optimizer_step_post_hook(count)
    try:
        with FlopCounterMode(display=False) as counter:
            reseed(seed)
            host.model.train()
            with graph_mod.OpRecorder(host.model) as recorder:
                logits = host._logits(inputs)
            host.pending = (inputs, logits)
            host.step(targets.to(torch.uint8))
            out = logits.detach().float()
    finally:
        handle.remove()
        host.pending = None
    figures = {
        "flops": int(counter.get_total_flops()),
        "optimizer_steps": steps[0],
        "dataflow_hash": graph_mod.dataflow_hash(recorder.dataflow()),
    }
    return ReplayedCall(out, figures)
