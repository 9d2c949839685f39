"""Independent validators' results → one decision, with the figures side by side.

Pure functions over frozen values; the train stage feeds them what the store holds.

1. `check_claim` — PRISM's own mechanical checks on one result: the model it reports is the one
   PRISM inspected (parameter count, architecture graph), the token count is what the budget
   allows and what the loss curve holds, and the bits per byte is the curve's (recomputed
   here, exactly). A result that fails is `invalid`: it never counts and never agrees.
2. `decide` — results agree when they report the same status and, for a finished run, the same
   parameter count, graph, steps and tokens, a prequential bits per byte within
   `bpb_abs_tolerance` and every step's loss within `curve_abs_tolerance` (bits). The same
   data-order and model seeds give the same record, so honest runs agree; a forged figure, a run
   that skipped training or ran another model does not. A group of `quorum` agreeing validators
   decides; results outside it are the odd ones out. With a PRISM audit run (mode `both`), the
   decision must also agree with PRISM's own figures, which win.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prism.evaluation.metrics import LossCurve
from prism.runtime_config import ValidatorPolicy

LN2 = math.log(2)


@dataclass(frozen=True, slots=True)
class Claim:
    """One validator's result, as the figures it reports and the curve it sent."""

    unit_id: str
    validator: str
    status: str
    reason_code: str | None
    train: Mapping[str, Any]
    inspect: Mapping[str, Any]
    curve: LossCurve | None

    @property
    def bpb(self) -> float | None:
        value = self.train.get("bits_per_byte")
        return float(value) if isinstance(value, int | float) else None

    def row(self) -> dict[str, Any]:
        """This claim's line in the side-by-side table."""
        return {
            "unit_id": self.unit_id,
            "validator": self.validator,
            "status": self.status,
            "reason_code": self.reason_code,
            "bits_per_byte": self.bpb,
            "tokens": self.train.get("tokens"),
            "steps": self.train.get("steps"),
            "parameter_count": self.train.get("parameter_count"),
            "graph_hash": self.train.get("graph_hash"),
            "weights_sha256": self.train.get("weights_sha256"),
        }


@dataclass(frozen=True, slots=True)
class Expected:
    """What PRISM knows independently of any validator: its own inspect run and the budget."""

    parameter_count: int
    graph_hash: str
    tokens_per_step: int
    max_tokens: int


def check_claim(claim: Claim, expected: Expected) -> str | None:
    """Why this result cannot be believed, or None when PRISM's own checks pass."""
    if claim.status != "ok":
        return None  # a claimed rejection or crash is compared with the others, not checked here
    train = claim.train
    if claim.curve is None:
        return "no loss curve"
    if train.get("parameter_count") != expected.parameter_count:
        return f"parameter count {train.get('parameter_count')} is not the inspected {expected.parameter_count}"
    if train.get("graph_hash") != expected.graph_hash or claim.inspect.get("architecture_graph_hash") not in (
        None,
        expected.graph_hash,
    ):
        return "the architecture graph is not the one PRISM inspected (another model ran)"
    tokens, steps = train.get("tokens"), train.get("steps")
    if not isinstance(tokens, int) or not isinstance(steps, int) or steps <= 0:
        return "tokens and steps must be positive integers"
    if train.get("tokens_per_step") != expected.tokens_per_step or tokens != steps * expected.tokens_per_step:
        return f"{tokens} tokens in {steps} steps is not {expected.tokens_per_step} tokens per step"
    if tokens > expected.max_tokens:
        return f"{tokens} tokens exceed the budget of {expected.max_tokens}"
    if len(claim.curve.tokens) != steps or claim.curve.total_tokens != tokens:
        return "the loss curve does not hold the steps and tokens reported"
    bpb = claim.bpb
    if bpb is None or not math.isfinite(bpb) or abs(claim.curve.bits_per_byte() - bpb) > 1e-9:
        return "bits per byte is not the loss curve's"
    return None


def difference(a: Claim, b: Claim) -> str | None:
    """Why two results disagree, or None when they agree within the tolerances."""
    if a.status != b.status:
        return f"status {a.status} vs {b.status}"
    if a.status != "ok":
        return None if a.reason_code == b.reason_code else f"reason {a.reason_code} vs {b.reason_code}"
    for key in ("parameter_count", "graph_hash", "steps", "tokens"):
        if a.train.get(key) != b.train.get(key):
            return f"{key} {a.train.get(key)} vs {b.train.get(key)}"
    return None


def _within(a: Claim, b: Claim, policy: ValidatorPolicy) -> str | None:
    reason = difference(a, b)
    if reason or a.status != "ok":
        return reason
    assert a.curve is not None and b.curve is not None and a.bpb is not None and b.bpb is not None
    gap = abs(a.bpb - b.bpb)
    if gap > policy.bpb_abs_tolerance:
        return f"bits per byte {a.bpb:.6f} vs {b.bpb:.6f} (gap {gap:.2e} > {policy.bpb_abs_tolerance:.1e})"
    worst = max((abs(x - y) / LN2 for x, y in zip(a.curve.losses_nats, b.curve.losses_nats, strict=True)), default=0.0)
    if worst > policy.curve_abs_tolerance:
        return f"a step's loss differs by {worst:.2e} bits (> {policy.curve_abs_tolerance:.1e})"
    return None


Kind = Literal["agreed", "waiting", "disagreed"]


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind
    chosen: str | None  # the unit whose artifacts PRISM continues with
    agreeing: tuple[str, ...]
    odd: Mapping[str, str]  # unit id → why it is the odd one out
    table: tuple[dict[str, Any], ...]
    explanation: str


def decide(claims: Sequence[Claim], policy: ValidatorPolicy, reference: Claim | None = None) -> Decision:
    """Group the (already checked) claims by agreement and decide what they establish."""
    table = tuple(c.row() for c in claims) + ((reference.row(),) if reference else ())
    groups: list[list[Claim]] = []
    for claim in claims:
        for group in groups:
            if _within(group[0], claim, policy) is None:
                group.append(claim)
                break
        else:
            groups.append([claim])
    groups.sort(key=len, reverse=True)
    if reference is not None:
        # PRISM's own run decides; validators are compared with it.
        agreeing = [c for c in claims if _within(reference, c, policy) is None]
        odd = {c.unit_id: _within(reference, c, policy) or "" for c in claims if c not in agreeing}
        if len(agreeing) >= policy.quorum:
            return Decision("agreed", None, tuple(c.unit_id for c in agreeing), odd, table, "agrees with PRISM's run")
        kind: Kind = "disagreed" if odd else "waiting"
        return Decision(kind, None, tuple(c.unit_id for c in agreeing), odd, table, _summary(groups, policy))
    if groups and len(groups[0]) >= policy.quorum and (len(groups) == 1 or len(groups[1]) < len(groups[0])):
        winners = groups[0]
        chosen = _median(winners)
        odd = {c.unit_id: _within(winners[0], c, policy) or "" for group in groups[1:] for c in group}
        return Decision(
            "agreed",
            chosen.unit_id,
            tuple(c.unit_id for c in winners),
            odd,
            table,
            f"{len(winners)} independent validators agree",
        )
    kind = "disagreed" if len(groups) > 1 else "waiting"
    return Decision(kind, None, (), {}, table, _summary(groups, policy))


def _median(group: Sequence[Claim]) -> Claim:
    ordered = sorted(group, key=lambda c: (c.bpb if c.bpb is not None else 0.0, c.unit_id))
    return ordered[(len(ordered) - 1) // 2]


def _summary(groups: Sequence[Sequence[Claim]], policy: ValidatorPolicy) -> str:
    if not groups:
        return f"no validator result yet (quorum {policy.quorum})"
    if len(groups) == 1:
        return f"{len(groups[0])} of {policy.quorum} agreeing results so far"
    first, second = groups[0][0], groups[1][0]
    return f"validators disagree: {_within(first, second, policy)}; {len(groups)} groups, quorum {policy.quorum}"
