"""The recorder's checks on what the model's process returns: shape, finiteness, causality.

Causality is checked on the real batches, at steps chosen from a per-job secret seed the model
never sees: the bytes after a random position are replaced, and the logits before it must not
move. A model that reads the next byte, attends to the future, pads a convolution on both sides,
normalises over the time axis, or is causal only on short inputs moves them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from prism.contract import VOCAB_SIZE
from prism.evidence import Evidence


class Rejected(Exception):
    """A rule the submission broke, with the figures that show it."""

    def __init__(self, reason_code: str, detail: str, figures: Mapping[str, Any]) -> None:
        super().__init__(detail)
        self.reason_code = reason_code
        self.detail = detail
        self.figures = dict(figures)

    def evidence(self) -> dict[str, Any]:
        return Evidence.at(f"harness.{self.reason_code}", "<evaluation>", 0, self.detail).to_json()


class MinerFailure(Exception):
    """The model's process crashed, hung or broke the protocol's order (not a rule violation)."""

    def __init__(self, reason_code: str, detail: str) -> None:
        super().__init__(detail)
        self.reason_code = reason_code
        self.detail = detail


class InfraFailure(Exception):
    """Our side (data, environment) failed; the host retries or reports it, never scores."""


def as_int(value: object, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Rejected("protocol", f"{name} must be an integer >= {minimum}, got {str(value)[:64]!r}", {})
    return value


def as_float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise Rejected("protocol", f"{name} must be a finite number >= 0, got {str(value)[:64]!r}", {})
    return float(value)


def as_hex(value: object, name: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise Rejected("protocol", f"{name} must be a sha256 hex digest", {})
    return value


def check_logits(logits: torch.Tensor, batch: int, seq_len: int, where: str) -> None:
    expected = (batch, seq_len, VOCAB_SIZE)
    if tuple(logits.shape) != expected or logits.dtype != torch.float32:
        raise Rejected(
            "logits_shape",
            f"{where}: logits must be float32 of shape {expected}, got {tuple(logits.shape)} {logits.dtype}",
            {"expected_shape": list(expected), "shape": list(logits.shape)},
        )
    if not bool(torch.isfinite(logits).all()):
        bad = int((~torch.isfinite(logits)).sum())
        raise Rejected("non_finite_logits", f"{where}: {bad} logits are NaN or infinite", {"non_finite": bad})


def loss_nats(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean cross-entropy in nats, in float64 so the recorded figure does not depend on the model's precision."""
    value = torch.nn.functional.cross_entropy(
        logits.reshape(-1, VOCAB_SIZE).double(), targets.reshape(-1).long(), reduction="mean"
    ).item()
    if not math.isfinite(value):
        raise Rejected("non_finite_loss", f"the loss is {value}", {"loss_nats": str(value)})
    return float(value)


def probe_steps(seed: int, steps: int, count: int) -> frozenset[int]:
    """Step 0 and `count` other steps, drawn from the per-job secret seed."""
    if steps <= 0:
        return frozenset()
    gen = torch.Generator().manual_seed(seed)
    others = torch.randperm(max(steps - 1, 0), generator=gen)[: max(count, 0)] + 1
    return frozenset({0, *(int(s) for s in others)})


def perturb(inputs: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, int]:
    """A copy of `inputs` whose bytes from a random position on all differ from the original."""
    seq_len = inputs.shape[1]
    position = int(torch.randint(1, seq_len, (1,), generator=gen))
    shift = torch.randint(1, VOCAB_SIZE, (inputs.shape[0], seq_len - position), generator=gen)
    out = inputs.clone()
    out[:, position:] = ((inputs[:, position:].long() + shift) % VOCAB_SIZE).to(inputs.dtype)
    return out, position


def check_causality(
    real: torch.Tensor, probed: torch.Tensor, position: int, *, atol: float, rtol: float, where: str
) -> None:
    before, after = real[:, :position], probed[:, :position]
    diff = (before - after).abs()
    allowed = atol + rtol * before.abs()
    violating = ~(diff <= allowed)  # NaN counts as a violation
    if bool(violating.any()):
        first = int(violating.any(dim=2).any(dim=0).nonzero()[0])
        worst = float(torch.nan_to_num(diff, nan=math.inf).max())
        raise Rejected(
            "causality_violation",
            f"{where}: changing the bytes from position {position} on changed the logits at position {first} "
            f"(max |change| {worst:.3g}); a prediction may depend only on earlier bytes",
            {"perturbed_from": position, "first_changed_position": first, "max_abs_change": str(worst)},
        )
