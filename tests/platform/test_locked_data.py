"""Platform's staged FineWeb-Edu layout read as a locked dataset: verified, locked, evaluated on."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prism.cli import app
from prism.config import Settings
from prism.evaluation.data import load_locked_dataset
from prism.evaluation.errors import DatasetError
from prism.evaluation.evaluate import evaluate_project, locked_dataset
from prism.evaluation.platform_data import verify_platform_dataset
from prism.intake.project import Project
from prism.runtime_config import EvaluationBudget, RuntimeConfig
from prism.sandbox import get_sandbox

from .locked_layout import write_platform_layout

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny_transformer" / "model.py"
DOCS = {"train": 300, "val": 60, "test": 20}


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    return write_platform_layout(tmp_path / "locked", docs=DOCS)


def test_a_staged_layout_is_verified_and_tampering_refused(staged: Path) -> None:
    manifest = verify_platform_dataset(staged)
    assert {split: len(shards) for split, shards in manifest.splits.items()} == {"train": 5, "val": 1, "test": 1}
    shard = staged / "train" / "train-00002.jsonl"
    original = shard.read_bytes()
    shard.write_bytes(original.replace(b"model", b"mode1", 1))  # same size, other bytes
    with pytest.raises(DatasetError, match=re.escape("train-00002.jsonl does not match its sha256")):
        verify_platform_dataset(staged)
    shard.write_bytes(original)
    (staged / "train" / "train-00099.jsonl").write_text('{"id": "x", "text": "planted"}\n')
    with pytest.raises(DatasetError, match=re.escape("unlisted shard train-00099.jsonl")):
        verify_platform_dataset(staged)
    (staged / "train" / "train-00099.jsonl").unlink()
    with pytest.raises(DatasetError, match="pinned revision"):
        verify_platform_dataset(staged, pin="0" * 40)
    (staged / "val" / "val-00000.jsonl").unlink()
    with pytest.raises(DatasetError, match=re.escape("val/val-00000.jsonl is missing")):
        verify_platform_dataset(staged)


def test_a_flat_split_volume_is_verified_with_the_manifest_given_apart(staged: Path, tmp_path: Path) -> None:
    # What Platform mounts at /data/fineweb-edu/train: the train shards at the volume root, no manifest.
    volume = tmp_path / "prism_fineweb_edu_train"
    shutil.copytree(staged / "train", volume)
    manifest = verify_platform_dataset(volume, manifest=staged / "MANIFEST.json", splits=("train",))
    assert len(manifest.splits["train"]) == 5
    with pytest.raises(DatasetError, match=re.escape("val/val-00000.jsonl is missing")):
        verify_platform_dataset(volume, manifest=staged / "MANIFEST.json", splits=("train", "val"))


def test_prism_data_lock_locks_the_layout(staged: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "lock", str(staged), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    dataset = load_locked_dataset(tmp_path / "out")
    assert f"fingerprint: {dataset.fingerprint}" in result.output
    sheet = dataset.manifest.datasheet
    assert sheet.revision == json.loads((staged / "MANIFEST.json").read_text())["dataset"]["pin_sha"]
    assert {s.split for s in dataset.manifest.shards} == {"train", "validation"}
    # Bytes are the documents' text: nothing of the JSON envelope reaches the model.
    train = b"".join((tmp_path / "out" / s.path).read_bytes() for s in dataset.manifest.split("train"))
    assert b'"id"' not in train and b"{" not in train and train.endswith(b".\n\n")
    (staged / "train" / "train-00000.jsonl").write_text('{"id": "x", "text": "swapped"}\n')
    refused = CliRunner().invoke(app, ["data", "lock", str(staged), str(tmp_path / "out2")])
    assert refused.exit_code == 2 and "refused" in refused.output
    assert not (tmp_path / "out2" / "MANIFEST.json").exists()


CAN_SANDBOX = shutil.which("bwrap") is not None and os.geteuid() == 0


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.skipif(not CAN_SANDBOX, reason="needs bubblewrap and root (for cgroups)")
def test_evaluation_runs_on_a_platform_layout(staged: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", dataset_dir=staged)
    dataset = locked_dataset(settings)  # what `prism evaluate` and the worker call
    assert dataset.manifest.datasheet.revision == verify_platform_dataset(staged).pin_sha
    assert locked_dataset(settings).fingerprint == dataset.fingerprint  # converted once, re-verified
    config = RuntimeConfig(
        evaluation=EvaluationBudget(
            seq_len=64, batch_size=4, smoke_token_budget=2048, heldout_tokens=1024, smoke_cpus=2
        )
    )
    outcome = evaluate_project(
        Project(files={"model.py": EXAMPLE.read_text()}),
        settings=settings,
        runtime_config=config,
        mode="local_cpu_smoke",
        sandbox=get_sandbox(settings),
        submission_id="platform-data",
        work_dir=tmp_path / "work",
    )
    assert outcome.decision == "accepted", outcome.to_json()
    assert outcome.manifest["dataset"]["fingerprint"] == dataset.fingerprint
