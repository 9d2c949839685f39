"""The miner's contract: the only PRISM module a submission may import.

The entrypoint defines `build_model(ctx) -> torch.nn.Module`; optional hooks
`configure_optimizer(model, ctx)` and `train_step(model, batch, optimizer, ctx)` let a miner own
the optimizer and the update step. `ctx` carries the values the challenge controls. This module
imports nothing of PRISM's so that importing it gives a submission no path into PRISM's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VOCAB_SIZE = 256  # bytes are tokens, so the metric is bits per byte


@dataclass(frozen=True, slots=True)
class ModelContext:
    vocab_size: int = VOCAB_SIZE
    seq_len: int = 128
    batch_size: int = 8
    parameter_cap: int = 150_000_000
    seed: int = 1234
    device: str = "cpu"
    token_budget: int = 262_144
    wall_clock_seconds: float = 600.0


@dataclass(frozen=True, slots=True)
class Batch:
    """What `train_step(model, batch, optimizer, ctx)` receives.

    `inputs` and `targets` are int64 tensors of shape (batch_size, seq_len) holding byte values;
    `targets` is `inputs` shifted by one byte. `logits` is the model's output on `inputs` from the
    forward whose loss the harness already recorded, still attached to its autograd graph, so a
    step can call `backward` on a loss built from it instead of paying for a second forward.
    """

    inputs: Any
    targets: Any
    logits: Any
