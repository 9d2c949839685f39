"""The harness as a plain subprocess: the recorder, the model's process, and their checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from prism.evaluation.metrics import LossCurve

from .conftest import EXAMPLE, HarnessRunner, cheat_project

pytestmark = pytest.mark.slow


def test_example_inspect_train_heldout_and_determinism(run_harness: HarnessRunner) -> None:
    inspect = run_harness("inspect", EXAMPLE)
    assert inspect["status"] == "ok", inspect
    figures = inspect["figures"]
    assert figures["parameter_count"] > 100_000 and figures["flops_per_token"] > figures["parameter_count"]
    assert figures["dataflow_source"] == "executed_ops"

    first = run_harness("train", EXAMPLE)
    second = run_harness("train", EXAMPLE)
    assert first["status"] == second["status"] == "ok", first
    a, b = first["figures"], second["figures"]
    assert a["tokens"] == 2048 and a["steps"] == 8 and a["stopped_reason"] == "token_budget"
    assert a["graph_hash"] == figures["architecture_graph_hash"]
    assert a["probed_steps"][0] == 0 and a["replay_max_change_nats"] == 0.0  # bit-exact on one CPU
    assert a["replayed_optimizer_steps"] == 1 and a["graph_mismatch_steps"] == []
    assert a["replayed_flops_per_token"] == pytest.approx(figures["flops_per_token"], rel=1e-6)
    # Same submission twice on CPU: the same bits per byte and the same trained weights.
    assert a["bits_per_byte"] == b["bits_per_byte"]
    assert a["weights_sha256"] == b["weights_sha256"]
    curve = LossCurve.decode((Path(first["artifacts_dir"]) / "loss_curve.json").read_bytes())
    assert curve.bits_per_byte() == a["bits_per_byte"]
    assert curve.losses_nats[-1] < curve.losses_nats[0]  # it learns from the first batches on

    weights = Path(first["artifacts_dir"]) / "weights.safetensors"
    assert "head.weight" in load_file(weights)
    heldout = run_harness("heldout", EXAMPLE, weights=weights)
    assert heldout["status"] == "ok", heldout
    assert 0 < heldout["figures"]["heldout_bits_per_byte"] < 8.0
    assert heldout["figures"]["heldout_tokens"] == 1024


def test_next_byte_reader_is_rejected_by_a_causal_replay(run_harness: HarnessRunner, tmp_path: Path) -> None:
    report = run_harness("train", cheat_project(tmp_path, "next_byte"))
    assert report["status"] == "rejected"
    assert report["reason_code"] == "causality_violation"
    assert report["evidence"][0]["rule_id"] == "harness.causality_violation"
    assert "causal replay" in report["detail"]


def test_over_cap_is_rejected_at_inspect_after_lazy_modules_materialise(
    run_harness: HarnessRunner, tmp_path: Path
) -> None:
    # Before the first forward the model holds 1,065,216 parameters: under the cap. After it, 1,331,456.
    report = run_harness("inspect", cheat_project(tmp_path, "over_cap"), parameter_cap=1_200_000)
    assert report["status"] == "rejected" and report["reason_code"] == "parameter_cap"
    assert report["figures"]["parameter_count"] == 1_331_456


@pytest.mark.parametrize(
    ("cheat", "reason"),
    [
        ("nan_logits", "non_finite_logits"),
        ("opens_file", "runtime_guard"),
        ("unmasked_attention", "causality_violation"),
    ],
)
def test_cheats_are_rejected_at_inspect(run_harness: HarnessRunner, tmp_path: Path, cheat: str, reason: str) -> None:
    report = run_harness("inspect", cheat_project(tmp_path, cheat))
    assert report["status"] == "rejected", report
    assert report["reason_code"] == reason
    assert not (Path(report["artifacts_dir"]) / "prism_run_manifest.v1.json").exists()


def test_crashing_model_is_a_miner_failure(run_harness: HarnessRunner, tmp_path: Path) -> None:
    project = tmp_path / "crash"
    project.mkdir()
    (project / "model.py").write_text("def build_model(ctx):\n    raise RuntimeError('boom')\n")
    report = run_harness("inspect", project)
    assert report["status"] == "failed" and report["reason_code"] == "miner_exception"
    assert "boom" in report["detail"]


def test_altered_data_is_an_infrastructure_failure(run_harness: HarnessRunner) -> None:
    from prism.evaluation.phase import ShardRef

    # A shard whose bytes are not the ones the host locked: the harness refuses to train on it.
    report = run_harness("train", EXAMPLE, shards=(ShardRef(path="train-00000.bin", sha256="0" * 64, size=1),))
    assert report["status"] == "failed" and report["reason_code"] == "infrastructure"
