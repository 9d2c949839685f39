"""A miner's claims in `prism.yaml` against what PRISM measured.

Claims are never scored. The decision: a deterministic contradiction between a claim and a
measurement is evidence that the miner misdescribed the submission, so the submission is
*quarantined* with the figures, for an operator to release or reject. It never passes as
"approved" with the contradiction tucked into a record, and it is not rejected outright: a
rounding habit or a changed `prism.yaml` is not proof of bad faith, and an operator reads the
figures in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prism.evidence import Evidence

CLAIM_TOLERANCE = 0.05  # relative; claims are rounded by people, lies are not 5% off
REASON_CODE = "claims.contradiction"


@dataclass(frozen=True, slots=True)
class ClaimsVerdict:
    """What the claims review decided on the measured figures alone."""

    contradictions: tuple[Evidence, ...]
    measured: Mapping[str, float | int | None]

    @property
    def contradicted(self) -> bool:
        return bool(self.contradictions)

    def detail(self) -> str:
        figures = "; ".join(item.explanation for item in self.contradictions)
        return f"prism.yaml claims contradict what PRISM measured: {figures}"


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def measured_figures(manifest: Mapping[str, Any]) -> dict[str, float | int | None]:
    """The figures a claim may be held against, from a validated manifest."""
    model = manifest.get("model", {}) or {}
    compute = manifest.get("compute", {}) or {}
    metrics = manifest.get("metrics", {}) or {}
    return {
        "parameter_count": _number(model.get("parameter_count")),
        "flops": _number(compute.get("flops")),
        "flops_per_token": _number(model.get("flops_per_token")),
        "tokens": _number(compute.get("tokens")),
        "bits_per_byte": _number(metrics.get("bits_per_byte")),
        "heldout_bits_per_byte": _number(metrics.get("heldout_bits_per_byte")),
    }


def claim_contradictions(
    project_yaml: str, claims: Mapping[str, object], measured: Mapping[str, object]
) -> tuple[Evidence, ...]:
    """Each numeric claim that misses what PRISM measured by more than the tolerance."""
    lines = project_yaml.splitlines()
    found = []
    for key, claimed in sorted(claims.items()):
        actual = measured.get(key)
        if isinstance(claimed, bool) or not isinstance(claimed, int | float):
            continue
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            continue
        if abs(claimed - actual) <= CLAIM_TOLERANCE * max(abs(actual), 1e-9):
            continue
        line = next((i for i, text in enumerate(lines, 1) if text.strip().startswith(f"{key}:")), 0)
        found.append(
            Evidence.at(
                REASON_CODE,
                "prism.yaml",
                line,
                f"claims {key} = {claimed}, PRISM measured {actual}",
                snippet=lines[line - 1] if line else "",
            )
        )
    return tuple(found)


def review_claims(project_yaml: str, claims: Mapping[str, object], manifest: Mapping[str, Any]) -> ClaimsVerdict:
    measured = measured_figures(manifest)
    return ClaimsVerdict(claim_contradictions(project_yaml, claims, measured), measured)
