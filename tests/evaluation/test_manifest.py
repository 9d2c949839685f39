"""Manifest validation never trusts the manifest: each lie is found and its field named."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from prism.evaluation.data import LockedDataset
from prism.evaluation.graph import architecture_graph, canonical_json
from prism.evaluation.jobs import EvaluationJob, make_job
from prism.evaluation.manifest import build_manifest, validate_manifest
from prism.evaluation.metrics import LossCurve
from prism.evaluation.results import HeldoutResult, InspectResult, TrainResult
from prism.evaluation.runner import verified_artifact
from prism.evaluation.weights import encode_safetensors
from prism.runtime_config import EvaluationBudget, RuntimeConfig

Phases = tuple[EvaluationJob, InspectResult, TrainResult, HeldoutResult]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def phases(tmp_path: Path, fixture_dataset: LockedDataset) -> Phases:
    config = RuntimeConfig(evaluation=EvaluationBudget(seq_len=64, batch_size=4, smoke_token_budget=512))
    job = make_job(
        submission_id="sub-1",
        code_hash="c" * 64,
        mode="local_cpu_smoke",
        runtime_config=config,
        dataset=fixture_dataset,
        work_dir=tmp_path,
        probe_seed=5,
    )
    model = torch.nn.Sequential(torch.nn.Embedding(256, 8), torch.nn.Linear(8, 256))
    graph = canonical_json(architecture_graph(model, lambda: model(torch.zeros(1, 4, dtype=torch.long))))
    weights = encode_safetensors(model.state_dict())
    curve, held = LossCurve((5.5, 4.5), (256, 256)), LossCurve((4.0,), (256,))
    files = {
        ("inspect", "architecture_graph.json"): graph,
        ("train", "loss_curve.json"): curve.encode(),
        ("train", "weights.safetensors"): weights,
        ("heldout", "heldout_curve.json"): held.encode(),
    }
    for (phase, name), data in files.items():
        path = verified_artifact(job, phase, name)  # type: ignore[arg-type]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    count = sum(p.numel() for p in model.parameters())
    windows = (fixture_dataset.manifest.split_bytes("train") - 1) // 64
    inspect = InspectResult(
        parameter_count=count,
        buffer_count=0,
        architecture_graph_hash=_sha(graph),
        architecture_graph_sha256=_sha(graph),
        dataflow_source="torch.fx",
        flops_per_token=4352.0,
        duration_seconds=1.0,
    )
    train = TrainResult(
        parameter_count=count,
        buffer_count=0,
        graph_hash=_sha(graph),
        tokens=512,
        steps=2,
        tokens_per_step=256,
        budget_steps=2,
        data_windows=windows,
        stopped_reason="token_budget",
        bits_per_byte=curve.bits_per_byte(),
        first_batch_bits_per_byte=5.5 / 0.6931471805599453,
        probed_steps=(0, 1),
        loss_curve_sha256=_sha(curve.encode()),
        weights_sha256=_sha(weights),
        weights_numel=count,
        train_seconds=2.0,
        duration_seconds=2.0,
    )
    heldout = HeldoutResult(
        parameter_count=count,
        buffer_count=0,
        graph_hash=_sha(graph),
        heldout_bits_per_byte=held.bits_per_byte(),
        heldout_tokens=256,
        heldout_curve_sha256=_sha(held.encode()),
        weights_sha256=_sha(weights),
        duration_seconds=1.0,
    )
    return job, inspect, train, heldout


def _validate(phases: Phases, manifest: dict[str, Any] | None = None) -> set[str]:
    job, inspect, train, heldout = phases
    manifest = manifest if manifest is not None else build_manifest(job, inspect, train, heldout)
    report = validate_manifest(manifest, job=job, inspect=inspect, train=train, heldout=heldout)
    assert report.ok == (not report.findings)
    return {f.rule_id for f in report.findings}


def test_honest_manifest_validates(phases: Phases) -> None:
    assert _validate(phases) == set()
    job, inspect, train, heldout = phases
    manifest = build_manifest(job, inspect, train, heldout)
    assert manifest["validation"]["score_eligible"] is False
    assert manifest["compute"]["flops"] == 4352 * 512
    assert manifest["dataset"]["license"] == "CC0-1.0 (generated)"
    assert json.loads(json.dumps(manifest)) == manifest


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model.parameter_count", 1),
        ("model.architecture_graph_hash", "0" * 64),
        ("compute.gpu_count", 8),
        ("dataset.fingerprint", "f" * 64),
        ("metrics.bits_per_byte", 0.5),
        ("metrics.heldout_bits_per_byte", 0.1),
        ("compute.tokens", 10_000),
        ("compute.flops", 1),
        ("validation.score_eligible", True),
        ("submission.code_hash", "d" * 64),
        ("mode", "official"),
        ("artifacts.weights.safetensors", "e" * 64),
    ],
)
def test_each_lie_is_named(phases: Phases, field: str, value: Any) -> None:
    job, inspect, train, heldout = phases
    manifest = copy.deepcopy(build_manifest(job, inspect, train, heldout))
    if field.startswith("artifacts."):
        manifest["artifacts"][field.removeprefix("artifacts.")] = value
    else:
        node = manifest
        *parents, leaf = field.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    assert f"manifest.{field}" in _validate(phases, manifest)


def test_phase_runs_must_agree(phases: Phases) -> None:
    job, inspect, train, heldout = phases
    assert "manifest.model.parameter_count" in _validate((job, inspect, replace(train, parameter_count=7), heldout))
    assert "manifest.model.architecture_graph_hash" in _validate(
        (job, inspect, train, replace(heldout, graph_hash="a" * 64))
    )
    short = replace(train, steps=1, tokens=256)
    assert "manifest.compute.tokens" in _validate((job, inspect, short, heldout))


def test_a_manifest_planted_in_artifacts_loses(phases: Phases) -> None:
    job, inspect, train, heldout = phases
    planted = copy.deepcopy(build_manifest(job, inspect, train, heldout))
    planted["model"]["parameter_count"] = 1
    planted["metrics"]["bits_per_byte"] = 0.01
    dirty = replace(train, planted_manifest=json.dumps(planted), foreign_artifacts=("prism_run_manifest.v1.json",))
    rules = _validate((job, inspect, dirty, heldout))
    assert {"manifest.model.parameter_count", "manifest.metrics.bits_per_byte", "manifest.artifacts"} <= rules


def test_altered_artifact_is_found(phases: Phases) -> None:
    job = phases[0]
    path = verified_artifact(job, "train", "loss_curve.json")
    path.write_bytes(LossCurve((0.1, 0.1), (256, 256)).encode())
    rules = _validate(phases)
    assert {"manifest.metrics.bits_per_byte", "manifest.artifacts.loss_curve.json"} <= rules


def test_weights_must_match_the_graph(phases: Phases) -> None:
    job = phases[0]
    other = torch.nn.Sequential(torch.nn.Embedding(256, 16), torch.nn.Linear(16, 256))
    verified_artifact(job, "train", "weights.safetensors").write_bytes(encode_safetensors(other.state_dict()))
    assert "manifest.model.architecture_graph_hash" in _validate(phases)


def test_job_round_trips_through_json(phases: Phases) -> None:
    job, inspect, train, heldout = phases
    assert EvaluationJob.from_json(json.loads(json.dumps(job.to_json()))) == job
    assert TrainResult.from_json(json.loads(json.dumps(train.to_json()))) == train
    assert InspectResult.from_json(inspect.to_json()) == inspect
    assert HeldoutResult.from_json(heldout.to_json()) == heldout
