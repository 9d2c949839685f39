"""Structural graph comparison on graphs the evaluation helper really produces."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from prism.evaluation.graph import architecture_graph, graph_hash
from prism.review.similarity.errors import GraphFormatError
from prism.review.similarity.graph import (
    WIDTH_NEAR,
    GraphFingerprint,
    generic_graph_adapter,
    graph_fingerprint,
    graph_similarity,
    prism_graph_adapter,
    width_similarity,
)


class Mlp(nn.Module):
    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(256, dim)
        self.fc = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(torch.relu(self.fc(self.emb(x))))
        return out


class Renamed(nn.Module):  # the same network under other names
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.table = nn.Embedding(256, width)
        self.hidden = nn.Linear(width, width)
        self.readout = nn.Linear(width, 256)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.readout(torch.relu(self.hidden(self.table(tokens))))
        return out


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(256, 16)
        self.rnn = nn.GRU(16, 32, batch_first=True)
        self.head = nn.Linear(32, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.rnn(self.emb(x))[0])
        return out


def _fp(model: nn.Module) -> tuple[GraphFingerprint, dict[str, Any]]:
    doc = architecture_graph(model)
    return graph_fingerprint(graph_hash(doc), doc), doc


def test_renamed_model_has_a_new_hash_but_the_same_structure() -> None:
    a, doc_a = _fp(Mlp())
    b, _doc_b = _fp(Renamed())
    assert doc_a["dataflow"] is not None
    assert a.graph_hash != b.graph_hash
    assert graph_similarity(a, b) == 1.0


def test_different_architectures_are_far_apart() -> None:
    a, _ = _fp(Mlp())
    assert graph_similarity(a, _fp(Recurrent())[0]) < 0.5


def test_structure_ignores_widths_and_the_width_check_tells_a_tweak_from_another_scale() -> None:
    # Issue 15: labels with exact shapes let a 128 -> 136 tweak drop similarity to 0.3-0.7.
    base, _ = _fp(Mlp(dim=128))
    tweaked, _ = _fp(Mlp(dim=136))
    doubled, _ = _fp(Mlp(dim=256))
    assert base.graph_hash != tweaked.graph_hash
    assert graph_similarity(base, tweaked) == 1.0 and graph_similarity(base, doubled) == 1.0
    tweak = width_similarity(base, tweaked)
    scale = width_similarity(base, doubled)
    assert tweak is not None and tweak >= WIDTH_NEAR
    assert scale is not None and scale < WIDTH_NEAR
    assert width_similarity(base, base) == 1.0


def test_fingerprint_round_trips_and_bands_exist() -> None:
    a, _ = _fp(Mlp())
    assert GraphFingerprint.from_blob(a.to_blob()) == a
    assert a.band_keys and a.node_count > 3


def test_generic_form_is_accepted() -> None:
    doc = {
        "nodes": [{"id": "in", "op": "input"}, {"id": "l", "op": "linear", "shape": [4, 4]}, {"id": "o", "op": "out"}],
        "edges": [["in", "l"], {"src": "l", "dst": "o"}],
    }
    view = generic_graph_adapter(doc)
    assert len(view.labels) == 3 and view.edges == ((0, 1), (1, 2))
    assert prism_graph_adapter(doc) == view


@pytest.mark.parametrize(
    "doc",
    [
        {"modules": "nope"},
        {"modules": [{"path": ""}]},
        {"modules": [], "dataflow": [{"op": "x", "inputs": [5]}]},
        {"nodes": [{"id": 1}], "edges": [[1, 2]]},
        {"nodes": ["bare"]},
    ],
)
def test_malformed_graphs_are_typed_errors(doc: dict[str, Any]) -> None:
    with pytest.raises(GraphFormatError):
        graph_fingerprint("h", doc)
