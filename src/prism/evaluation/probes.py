"""The recorder's checks on what the model's process returns: shape, finiteness, causality.

Logits are compared as normalised log-probabilities (`log_softmax`, in float64) with an absolute
tolerance in nats: a constant offset on every logit changes no probability and so widens
nothing (a relative tolerance on raw logits grew with the offset). The tolerance is measured from
honest models' float noise (docs/evaluation.md, "Tolerance"); on one device with deterministic
kernels a replay is bit-exact, so the default is orders of magnitude above the noise and orders
of magnitude below anything that carries information about a byte.

A perturbation works in stream order over the whole batch: from one (row, position) on, every
byte of that row and every byte of every later row is replaced, and everything before it in the
stream must not move. A model that reads the next byte, attends to the future, pads a convolution
on both sides, normalises over the time axis or over the batch, or lets one row see another
(row r+1's first byte is row r's last target where rows are consecutive) moves them.
"""

from __future__ import annotations

import hashlib
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
    # A NaN or an infinity anywhere makes the sum non-finite; only then (or on an overflowing sum
    # of finite values) is each element looked at: one reduction per batch when all is well.
    if not math.isfinite(float(logits.sum())) and not bool(torch.isfinite(logits).all()):
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


def call_seed(secret: int, phase: str, step: int) -> int:
    """The RNG seed the recorder gives a call: a hash, so the seeds reveal nothing of the secret."""
    digest = hashlib.sha256(f"prism.call_seed:{secret}:{phase}:{step}".encode()).digest()
    return int.from_bytes(digest[:7], "big")


def perturb_stream(
    inputs: torch.Tensor, gen: torch.Generator, *, at_row_start: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A copy whose bytes from a random (row, position) on, in stream order, all differ.

    Returns the copy and the mask of logits that must not move (everything before that point).
    One time in three (or always/never with `at_row_start`) the point is the start of a row,
    which catches a row reading the next row's first byte (its own last target where rows are
    consecutive); a cut inside a row catches a row reading its own later bytes.
    """
    rows, seq_len = inputs.shape
    if at_row_start and rows > 1:
        row = int(torch.randint(1, rows, (1,), generator=gen))
    else:
        row = int(torch.randint(0, rows, (1,), generator=gen))
    if at_row_start is None:
        at_row_start = row > 0 and int(torch.randint(0, 3, (1,), generator=gen)) == 0
    position = 0 if at_row_start and row > 0 else int(torch.randint(1, seq_len, (1,), generator=gen))
    changed = torch.zeros(rows, seq_len, dtype=torch.bool)
    changed[row, position:] = True
    changed[row + 1 :, :] = True
    shift = torch.randint(1, VOCAB_SIZE, (rows, seq_len), generator=gen)
    out = inputs.clone()
    out[changed] = ((inputs.long() + shift) % VOCAB_SIZE).to(inputs.dtype)[changed]
    return out, ~changed


def max_logprob_change(real: torch.Tensor, other: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Per (row, position): the largest |change| in log-probability (nats) over the vocabulary."""
    a = torch.log_softmax(real.double(), dim=-1)
    b = torch.log_softmax(other.double(), dim=-1)
    diff = torch.nan_to_num((a - b).abs(), nan=math.inf).amax(dim=-1)
    return torch.where(keep, diff, torch.zeros_like(diff))


def check_replay(
    real: torch.Tensor, other: torch.Tensor, keep: torch.Tensor, *, atol_nats: float, where: str, kind: str
) -> float:
    """`other` must give the log-probabilities of `real` wherever `keep` is set, within `atol_nats`.

    `kind` is `reproduce` (the same input replayed: any change means the recorded logits did not
    come from the weights and the input alone) or `causal` (a perturbed input: a change before
    the perturbation means the model read later bytes, or other rows).
    """
    diff = max_logprob_change(real, other, keep)
    worst = float(diff.max())
    if not bool((diff > atol_nats).any()):
        return worst
    bad = (diff > atol_nats).nonzero()
    row, position = int(bad[0, 0]), int(bad[0, 1])
    figures: dict[str, Any] = {
        "max_logprob_change_nats": worst if math.isfinite(worst) else str(worst),
        "tolerance_nats": atol_nats,
        "first_changed": [row, position],
    }
    if kind == "reproduce":
        raise Rejected(
            "replay_mismatch",
            f"{where}: a replica holding the same weights, given the same input and seed, predicts differently "
            f"(max change {worst:.3g} nats at row {row}, position {position}); the recorded logits depend on "
            "something other than the weights and the input (a cache, a call counter, state kept outside the "
            "module's state_dict, or learning where no learning is allowed)",
            figures,
        )
    first_perturbed = (~keep).nonzero()
    perturbed_row = int(first_perturbed[0, 0]) if len(first_perturbed) else rows_of(keep)
    figures["perturbed_from"] = [perturbed_row, int(first_perturbed[0, 1]) if len(first_perturbed) else 0]
    if row < perturbed_row:
        raise Rejected(
            "row_leak",
            f"{where}: changing rows from {perturbed_row} on changed the predictions of row {row} "
            f"(max change {worst:.3g} nats); a row may not see another row's bytes",
            figures,
        )
    raise Rejected(
        "causality_violation",
        f"{where}: changing the bytes from position {figures['perturbed_from'][1]} of row {perturbed_row} on changed "
        f"the prediction at position {position} (max change {worst:.3g} nats); a prediction may depend only on "
        "earlier bytes",
        figures,
    )


def rows_of(mask: torch.Tensor) -> int:
    return int(mask.shape[0])
