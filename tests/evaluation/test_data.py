from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from prism.evaluation.data import (
    MANIFEST_NAME,
    Datasheet,
    LockedDataset,
    build_dataset,
    ensure_fixture_dataset,
    load_locked_dataset,
)
from prism.evaluation.errors import DatasetError
from prism.evaluation.fixture import fixture_documents

SHEET = Datasheet(name="t", source="tests", revision="r1", license="CC0-1.0")


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir(parents=True)
    for i in range(40):
        (src / f"doc{i:02d}.txt").write_text(f"document {i}: " + "lorem ipsum " * (i + 1))
    (src / "more.jsonl").write_text("\n".join(json.dumps({"text": f"json line {i} ü"}) for i in range(40)) + "\n")
    return src


def test_build_then_load_verifies_every_shard(tmp_path: Path) -> None:
    manifest = build_dataset(_source(tmp_path), tmp_path / "out", datasheet=SHEET, validation_fraction=0.2)
    dataset = load_locked_dataset(tmp_path / "out")
    assert dataset.fingerprint == hashlib.sha256((tmp_path / "out" / MANIFEST_NAME).read_bytes()).hexdigest()
    assert {s.split for s in manifest.shards} == {"train", "validation"}
    assert dataset.manifest.datasheet.license == "CC0-1.0"
    assert any("JSONL" in t for t in dataset.manifest.datasheet.transformations)
    assert dataset.manifest.split_bytes("train") > dataset.manifest.split_bytes("validation") > 0


def test_altered_or_missing_shard_is_refused(tmp_path: Path) -> None:
    build_dataset(_source(tmp_path), tmp_path / "out", datasheet=SHEET, validation_fraction=0.2)
    shard = next((tmp_path / "out").glob("train-*.bin"))
    data = bytearray(shard.read_bytes())
    data[0] ^= 1
    shard.chmod(0o644)
    shard.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="sha256"):
        load_locked_dataset(tmp_path / "out")
    shard.unlink()
    with pytest.raises(DatasetError, match="missing"):
        load_locked_dataset(tmp_path / "out")
    with pytest.raises(DatasetError, match="MANIFEST"):
        load_locked_dataset(tmp_path / "nowhere")


def test_manifest_cannot_point_outside_the_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_dataset(_source(tmp_path), out, datasheet=SHEET, validation_fraction=0.2)
    document = json.loads((out / MANIFEST_NAME).read_text())
    document["shards"][0]["path"] = "../../etc/passwd"
    (out / MANIFEST_NAME).write_text(json.dumps(document))
    with pytest.raises(DatasetError, match="plain file name"):
        load_locked_dataset(out)


def test_never_overwrites(tmp_path: Path) -> None:
    build_dataset(_source(tmp_path), tmp_path / "out", datasheet=SHEET)
    with pytest.raises(DatasetError, match="not empty"):
        build_dataset(_source(tmp_path / "again"), tmp_path / "out", datasheet=SHEET)


def test_fixture_is_generated_deterministically(fixture_dataset: LockedDataset, tmp_path: Path) -> None:
    assert list(fixture_documents(count=5)) == list(fixture_documents(count=5))
    again = ensure_fixture_dataset(tmp_path / "second")
    assert again.fingerprint == fixture_dataset.fingerprint
    assert fixture_dataset.manifest.split_bytes("train") > 300_000
    assert fixture_dataset.manifest.split_bytes("validation") > 20_000


def test_fixture_alteration_is_not_silently_repaired(tmp_path: Path) -> None:
    dataset = ensure_fixture_dataset(tmp_path / "fx")
    shard = dataset.root / dataset.manifest.split("validation")[0].path
    shard.chmod(0o644)
    shard.write_bytes(b"tampered")
    with pytest.raises(DatasetError):
        ensure_fixture_dataset(tmp_path / "fx")


def test_stage_split_holds_only_that_split(fixture_dataset: LockedDataset, tmp_path: Path) -> None:
    shards = fixture_dataset.stage_split("validation", tmp_path / "v")
    assert {p.name for p in (tmp_path / "v").iterdir()} == {s.path for s in shards}
    assert all(s.split == "validation" for s in shards)
