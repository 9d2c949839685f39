"""Suspicions from measured figures, the state count, the executed graph and the fixture refusal."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from prism.evaluation.data import LockedDataset
from prism.evaluation.errors import DatasetError
from prism.evaluation.graph import architecture_graph, graph_hash
from prism.evaluation.jobs import make_job
from prism.evaluation.replay import state_count
from prism.evaluation.results import HeldoutResult, InspectResult, TrainResult
from prism.evaluation.suspicion import graph_flops_disagreement, suspicions
from prism.runtime_config import RuntimeConfig

INSPECT = InspectResult(
    duration_seconds=1.0,
    parameter_count=100_000,
    buffer_count=0,
    architecture_graph_hash="a" * 64,
    architecture_graph_sha256="b" * 64,
    dataflow_source="executed_ops",
    flops_per_token=600_000.0,
)
TRAIN = TrainResult(
    duration_seconds=1.0,
    parameter_count=100_000,
    buffer_count=0,
    graph_hash="a" * 64,
    tokens=2048,
    steps=8,
    tokens_per_step=256,
    budget_steps=8,
    data_windows=1000,
    stopped_reason="token_budget",
    bits_per_byte=5.0,
    first_batch_bits_per_byte=8.02,
    probed_steps=(0, 3),
    loss_curve_sha256="c" * 64,
    weights_sha256="d" * 64,
    weights_numel=100_000,
    train_seconds=1.0,
    replayed_flops_per_token=600_000.0,
    replayed_optimizer_steps=1,
)
HELDOUT = HeldoutResult(
    duration_seconds=1.0,
    parameter_count=100_000,
    buffer_count=0,
    graph_hash="a" * 64,
    heldout_bits_per_byte=4.6,
    heldout_tokens=1024,
    heldout_curve_sha256="e" * 64,
    weights_sha256="d" * 64,
)


def _rules(inspect: InspectResult = INSPECT, train: TrainResult = TRAIN, heldout: HeldoutResult = HELDOUT) -> set[str]:
    return {item.rule_id for item in suspicions(inspect, train, heldout)}


def test_an_ordinary_run_raises_nothing() -> None:
    assert _rules() == set()


@pytest.mark.parametrize(
    ("train", "heldout", "rule"),
    [
        (replace(TRAIN, first_batch_bits_per_byte=4.3), HELDOUT, "contamination.first_batch"),
        (TRAIN, replace(HELDOUT, heldout_bits_per_byte=7.2), "heldout_gap"),
        (replace(TRAIN, replayed_optimizer_steps=4), HELDOUT, "budget.optimizer_steps"),
        (replace(TRAIN, replayed_flops_per_token=3_000_000.0), HELDOUT, "budget.work_mismatch"),
        (replace(TRAIN, graph_mismatch_steps=(5,)), HELDOUT, "graph.unbound"),
    ],
)
def test_each_figure_no_honest_run_produces_is_quarantined_by_its_rule(
    train: TrainResult, heldout: HeldoutResult, rule: str
) -> None:
    found = suspicions(INSPECT, train, heldout)
    assert [item.rule_id for item in found] == [rule]
    assert found[0].explanation  # the figures travel with the evidence


def test_flops_below_twice_the_parameters_is_suspicious() -> None:
    few = replace(INSPECT, flops_per_token=150_000.0)
    assert "budget.flops_below_parameters" in _rules(few, replace(TRAIN, replayed_flops_per_token=150_000.0))


def test_the_state_count_sees_hidden_values_and_counts_tied_tensors_once() -> None:
    weight = torch.randn(256, 32)
    state = {"embed.weight": weight, "head.weight": weight.clone(), "packed": torch.zeros(10, dtype=torch.float64)}
    assert state_count(state) == 256 * 32 + 20


def test_a_rewired_model_with_the_same_module_tree_has_another_graph() -> None:
    class Net(torch.nn.Module):
        def __init__(self, rewired: bool) -> None:
            super().__init__()
            self.a, self.b, self.rewired = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8), rewired

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(x) + self.a(x) if self.rewired else self.b(self.a(x))

    x = torch.randn(2, 8)
    graphs = [architecture_graph(net, lambda net=net: net(x)) for net in (Net(False), Net(True))]
    assert graphs[0]["modules"] == graphs[1]["modules"] and graphs[0]["parameters"] == graphs[1]["parameters"]
    assert all(g["dataflow_source"] == "executed_ops" for g in graphs)
    assert graph_hash(graphs[0]) != graph_hash(graphs[1])


def test_an_official_job_refuses_the_fixture(tmp_path: Path, fixture_dataset: LockedDataset) -> None:
    with pytest.raises(DatasetError, match="fixture"):
        make_job(
            submission_id="s",
            code_hash="c" * 64,
            mode="official",
            runtime_config=RuntimeConfig(),
            dataset=fixture_dataset,
            work_dir=tmp_path,
        )


def test_the_same_graph_must_cost_the_same_work_across_submissions() -> None:
    assert graph_flops_disagreement(600_000.0, []) is None
    assert graph_flops_disagreement(600_000.0, [("s1", 600_000.0), ("s2", 601_000.0)]) is None
    found = graph_flops_disagreement(600_000.0, [("s1", 600_000.0), ("s2", 900_000.0)])
    assert found is not None and found.rule_id == "budget.graph_flops_mismatch" and "s2" in found.explanation
    assert graph_flops_disagreement(600_000.0, [("s1", 0.0)]) is None  # nothing measured, nothing to hold against
