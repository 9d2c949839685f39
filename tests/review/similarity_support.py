"""Shared helpers for the similarity and duplicate tests: the corpus, fingerprinted once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from prism.intake.project import Project
from prism.review.similarity import Candidate, SourceFingerprint, fingerprint_project
from tests.review.variants import load_corpus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=1)
def corpus() -> dict[str, Project]:
    return load_corpus()


@lru_cache(maxsize=1)
def corpus_fingerprints() -> dict[str, SourceFingerprint]:
    return {name: fingerprint_project(p) for name, p in corpus().items()}


def candidate(
    fp: SourceFingerprint,
    *,
    submission_id: str = "a",
    hotkey: str = "hk-a",
    status: str = "completed",
    minute: int = 0,
    scored: bool = True,
) -> Candidate:
    return Candidate(
        submission_id=submission_id,
        hotkey=hotkey,
        status=status,
        created_at=T0 + timedelta(minutes=minute),
        band_hits=1,
        fingerprint=fp,
        scored=scored and status == "completed",
    )


NEW_TRAIN_STEP = '''

def train_step(model, batch, optimizer, ctx):
    """Sharpness-aware step: climb to the worst nearby weights, then descend from there."""
    inputs, targets = batch
    first = model(inputs)
    loss = torch.nn.functional.cross_entropy(first.flatten(0, 1), targets.flatten())
    loss.backward()
    saved = []
    with torch.no_grad():
        norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters() if p.grad is not None))
        for p in model.parameters():
            if p.grad is None:
                saved.append(None)
                continue
            e = 0.05 * p.grad / (norm + 1e-12)
            p.add_(e)
            saved.append(e)
    optimizer.zero_grad()
    second = torch.nn.functional.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
    second.backward()
    with torch.no_grad():
        for p, e in zip(model.parameters(), saved):
            if e is not None:
                p.sub_(e)
    optimizer.step()
    optimizer.zero_grad()
    return loss.detach()
'''


def with_new_train_step(project: Project) -> Project:
    """The same architecture verbatim with the miner's own, new training step."""
    files = dict(project.files)
    text = files["model.py"]
    if "def train_step" in text:
        text = text[: text.index("def train_step")]
    files["model.py"] = text.rstrip() + "\n" + NEW_TRAIN_STEP
    return Project(files, project.config)


def graph_doc(user_class: str, field: str, width: int = 16) -> dict[str, Any]:
    """A graph document in the evaluation helper's schema; names are the miner's choice."""
    return {
        "schema": "prism.architecture_graph.v1",
        "modules": [
            {"path": "", "type": user_class},
            {"path": field, "type": "torch.nn.modules.sparse.Embedding"},
            {"path": "out", "type": "torch.nn.modules.linear.Linear"},
        ],
        "parameters": [
            {"name": f"{field}.weight", "shape": [256, width], "dtype": "float32"},
            {"name": "out.weight", "shape": [256, width], "dtype": "float32"},
            {"name": "out.bias", "shape": [256], "dtype": "float32"},
        ],
        "buffers": [],
        "dataflow": [
            {"op": "placeholder", "target": "input", "inputs": []},
            {"op": "call_module", "target": field, "inputs": [0]},
            {"op": "call_module", "target": "out", "inputs": [1]},
            {"op": "output", "target": "output", "inputs": [2]},
        ],
        "dataflow_source": "torch.fx",
    }
