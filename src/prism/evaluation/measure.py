"""Figures the recorder measures itself, from the raw tensors the model's process sent it.

The model's process runs submitted code, so whatever it *says* (a parameter count from
`parameters()` or `numel()`, a graph) may be a lie: a `Parameter` subclass can answer `numel()`
with 3, a model can override `parameters()` with a decoy. The recorder therefore counts the
parameters behind the cap from the bytes it received (`Frame.tensor()` checks that the byte count
matches dtype and shape), and holds the graph's parameter and buffer shapes against those
tensors. Tied weights are counted once only where the model's claim that two names share storage
is borne out by identical bytes (and, after training, by identical trained weights).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from prism.evaluation.graph import state_shapes
from prism.evaluation.probes import Rejected

_SHOWN = 5


@dataclass(frozen=True, slots=True)
class StateFigures:
    parameter_count: int
    buffer_count: int


def tied_groups(tied: object, names: set[str]) -> list[list[str]]:
    if not isinstance(tied, list):
        raise Rejected("protocol", "the tied-weight groups are not a list", {})
    groups: list[list[str]] = []
    for group in tied:
        if not isinstance(group, list) or len(group) < 2 or not all(isinstance(n, str) for n in group):
            raise Rejected("protocol", "a tied-weight group is not a list of two or more names", {})
        unknown = [n for n in group if n not in names]
        if unknown:
            raise Rejected("graph_mismatch", f"tied weights name unknown state {unknown[:_SHOWN]}", {})
        groups.append(group)
    return groups


def check_tied(tensors: Mapping[str, torch.Tensor], groups: Sequence[Sequence[str]]) -> None:
    """Every name of a claimed tied group holds the same dtype, shape and bytes."""
    for group in groups:
        first = tensors[group[0]]
        for name in group[1:]:
            other = tensors[name]
            if other.dtype != first.dtype or other.shape != first.shape or not torch.equal(other, first):
                raise Rejected(
                    "graph_mismatch",
                    f"{group[0]} and {name} are reported as one tied weight but hold different values",
                    {"tied": list(group)},
                )


def measure_state(graph: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], tied: object) -> StateFigures:
    """Parameter and buffer counts from raw tensors, after holding the graph against them."""
    try:
        shapes = state_shapes(dict(graph))
        parameter_names = [str(item["name"]) for item in graph.get("parameters", ())]
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejected("protocol", f"the graph's state list is malformed: {exc}", {}) from exc
    wrong = [
        f"{name} {tuple(t.shape)} (graph: {shapes.get(name)})"
        for name, t in tensors.items()
        if shapes.get(name) != tuple(t.shape)
    ]
    missing = [name for name in dict.fromkeys(parameter_names) if name not in tensors]
    if wrong or missing:
        detail = "; ".join(
            part
            for part in (
                f"tensors unlike the graph: {', '.join(wrong[:_SHOWN])}" if wrong else "",
                f"graph parameters with no tensor: {', '.join(missing[:_SHOWN])}" if missing else "",
            )
            if part
        )
        raise Rejected(
            "graph_mismatch",
            f"the architecture graph does not match the state tensors the recorder received: {detail}",
            {"mismatched": len(wrong), "missing": len(missing)},
        )
    groups = tied_groups(tied, set(tensors))
    check_tied(tensors, groups)
    alias = {name: group[0] for group in groups for name in group}
    params = {alias.get(name, name) for name in parameter_names}
    parameter_count = sum(tensors[name].numel() for name in params)
    buffer_count = sum(t.numel() for name, t in tensors.items() if name not in set(parameter_names))
    return StateFigures(parameter_count=parameter_count, buffer_count=buffer_count)


def check_claim(claimed: int, measured: int, what: str) -> None:
    if claimed != measured:
        raise Rejected(
            "parameter_count_mismatch",
            f"the model's process reports {claimed:,} {what}; the recorder counted {measured:,} "
            "in the tensors it received",
            {"claimed": claimed, "measured": measured},
        )
