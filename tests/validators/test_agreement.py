"""Independent results → one decision: honest runs agree; forged, skipped or foreign runs never win."""

from __future__ import annotations

import math
from typing import Any

import pytest

from prism.evaluation.metrics import LossCurve
from prism.runtime_config import ValidatorPolicy
from prism.validators.agreement import Claim, Expected, check_claim, decide

POLICY = ValidatorPolicy(mode="validators", allowed_hotkeys=("v",), quorum=2)
EXPECTED = Expected(parameter_count=1000, graph_hash="g" * 64, tokens_per_step=256, max_tokens=4096)
HONEST = tuple(6.0 - 0.2 * step for step in range(8))


def claim(unit: str, losses: tuple[float, ...] = HONEST, **train: Any) -> Claim:
    curve = LossCurve(tuple(x * math.log(2) for x in losses), (256,) * len(losses))
    figures = {
        "parameter_count": 1000,
        "graph_hash": "g" * 64,
        "tokens": 256 * len(losses),
        "steps": len(losses),
        "tokens_per_step": 256,
        "bits_per_byte": curve.bits_per_byte(),
        **train,
    }
    return Claim(unit, f"validator-{unit}", "ok", None, figures, {"architecture_graph_hash": "g" * 64}, curve)


def test_honest_runs_agree_and_the_median_is_chosen() -> None:
    a, b = claim("a"), claim("b", tuple(x + 1e-7 for x in HONEST))
    decision = decide([a, b], POLICY)
    assert decision.kind == "agreed" and set(decision.agreeing) == {"a", "b"} and decision.odd == {}
    assert decision.chosen in {"a", "b"}


def test_one_result_is_not_enough() -> None:
    decision = decide([claim("a")], POLICY)
    assert decision.kind == "waiting" and decision.chosen is None


def test_a_forged_figure_disagrees_and_loses_to_two_honest_runs() -> None:
    forged = claim("liar", tuple(x * 0.8 for x in HONEST))
    assert check_claim(forged, EXPECTED) is None  # self-consistent: only another validator catches it
    held = decide([claim("a"), forged], POLICY)
    assert held.kind == "disagreed" and "bits per byte" in held.explanation
    assert {row["unit_id"] for row in held.table} == {"a", "liar"}
    settled = decide([claim("a"), forged, claim("b")], POLICY)
    assert settled.kind == "agreed" and settled.chosen in {"a", "b"}
    assert set(settled.odd) == {"liar"}


def test_skipped_training_is_the_odd_one_out() -> None:
    untrained = claim("lazy", (8.0,) * 8)  # what a model that never learned records
    settled = decide([untrained, claim("a"), claim("b")], POLICY)
    assert settled.kind == "agreed" and set(settled.odd) == {"lazy"}


def test_a_small_curve_gap_with_the_same_mean_still_disagrees() -> None:
    wobble = tuple(x + (0.05 if i % 2 else -0.05) for i, x in enumerate(HONEST))
    decision = decide([claim("a"), claim("w", wobble)], POLICY)
    assert decision.kind == "disagreed" and "step's loss" in decision.explanation


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"bits_per_byte": 1.0}, "not the loss curve's"),
        ({"graph_hash": "h" * 64}, "another model ran"),
        ({"parameter_count": 999}, "parameter count"),
        ({"tokens": 512}, "tokens per step"),
    ],
)
def test_prism_checks_each_result_itself(change: dict[str, Any], reason: str) -> None:
    problem = check_claim(claim("x", **change), EXPECTED)
    assert problem is not None and reason in problem


def test_a_run_past_the_budget_is_invalid() -> None:
    long = claim("x", HONEST * 3)
    assert "exceed the budget" in (check_claim(long, EXPECTED) or "")


def test_prisms_own_run_decides_in_audited_mode() -> None:
    policy = ValidatorPolicy(mode="both", allowed_hotkeys=("v",), quorum=1, audit_rate=1.0)
    reference = claim("prism")
    forged = claim("liar", tuple(x * 0.8 for x in HONEST))
    assert decide([forged], policy, reference).kind == "disagreed"
    decision = decide([forged, claim("a")], policy, reference)
    assert decision.kind == "agreed" and decision.agreeing == ("a",) and set(decision.odd) == {"liar"}


def test_claimed_rejections_agree_only_on_the_same_reason() -> None:
    def rejected(unit: str, reason: str) -> Claim:
        return Claim(unit, unit, "rejected", reason, {}, {}, None)

    assert decide([rejected("a", "causality"), rejected("b", "causality")], POLICY).kind == "agreed"
    assert decide([rejected("a", "causality"), claim("b")], POLICY).kind == "disagreed"


def test_policy_refuses_a_single_trusted_validator() -> None:
    with pytest.raises(ValueError, match="quorum >= 2"):
        ValidatorPolicy(mode="validators", allowed_hotkeys=("v",), quorum=1)
    with pytest.raises(ValueError, match="allowed_hotkeys"):
        ValidatorPolicy(mode="validators")
