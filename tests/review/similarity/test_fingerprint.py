"""Fingerprints: what obfuscation must not move, what a real change must move, stability."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from array import array
from dataclasses import replace
from pathlib import Path

import pytest

from prism.intake.project import Project, ProjectConfig
from prism.review.similarity import (
    SourceFingerprint,
    assemble_fingerprint,
    containment,
    fingerprint_files,
    fingerprint_project,
)
from prism.review.similarity.errors import FingerprintError, SimilarityError
from tests.review.similarity_support import corpus, corpus_fingerprints, with_new_train_step
from tests.review.variants import TRANSFORMS, obfuscate

ROOT = Path(__file__).resolve().parents[3]
# Transforms the normalizer undoes completely: the exact-duplicate hash must not move.
NORMALIZED_AWAY = ("rename", "reorder", "dead_code", "cosmetic", "split", "merge", "inline", "equivalents")


@pytest.mark.parametrize("transform", NORMALIZED_AWAY)
def test_cosmetic_transforms_keep_the_normalized_hash(transform: str) -> None:
    for name, project in corpus().items():
        for seed in range(2):
            variant = obfuscate(project, seed, transforms=(transform,))
            assert variant.files != project.files or transform in ("merge", "inline", "equivalents")
            fp = fingerprint_project(variant)
            assert fp.normalized_sha256 == corpus_fingerprints()[name].normalized_sha256, (name, seed)


def test_every_transform_together_keeps_high_containment() -> None:
    for name, project in corpus().items():
        original = corpus_fingerprints()[name].hash_set()
        fp = fingerprint_project(obfuscate(project, 7))
        assert len(fp.regions) >= 1
        assert containment(original, fp.hash_set()) >= 0.8, name


def test_transforms_really_change_the_text() -> None:
    project = corpus()["gpt_mini"]
    for transform in TRANSFORMS:
        if transform in ("merge", "inline"):
            continue  # gpt_mini is one file with no one-line helper
        assert obfuscate(project, 1, transforms=(transform,)).files != project.files, transform


def test_a_functional_change_moves_the_hash() -> None:
    project = corpus()["gpt_mini"]
    text = project.files["model.py"].replace("F.gelu(self.c_fc(x))", "F.relu(self.c_fc(x))")
    changed = fingerprint_project(Project({"model.py": text}))
    original = corpus_fingerprints()["gpt_mini"]
    assert changed.normalized_sha256 != original.normalized_sha256
    assert changed.architecture_sha256 != original.architecture_sha256
    assert changed.training_sha256 == original.training_sha256


def test_new_training_code_moves_only_the_training_part() -> None:
    original = corpus_fingerprints()["gpt_mini"]
    variant = fingerprint_project(with_new_train_step(corpus()["gpt_mini"]))
    assert variant.architecture_sha256 == original.architecture_sha256
    assert variant.training_sha256 != original.training_sha256
    assert variant.hash_set(["training"]) - original.hash_set()
    kinds = {r.name: r.kind for r in variant.regions}
    assert kinds["GPT"] == "architecture" and kinds["train_step"] == "training"


def test_dead_definitions_are_not_fingerprinted() -> None:
    base = corpus()["lstm_tied"].files["model.py"]
    padded = base + "\n\nclass Unused:\n    def go(self, x):\n        return [x * i for i in range(99)]\n"
    a, b = fingerprint_files({"model.py": base}, "model.py"), fingerprint_files({"model.py": padded}, "model.py")
    assert a.source_sha256 != b.source_sha256  # the files differ as written
    assert replace(a, source_sha256="") == replace(b, source_sha256="")


def test_source_hash_ignores_comments_docstrings_and_formatting_only() -> None:
    base = corpus()["gpt_mini"]
    reformatted = obfuscate(base, 3, transforms=("cosmetic",))
    renamed = obfuscate(base, 3, transforms=("rename",))
    original = corpus_fingerprints()["gpt_mini"]
    assert fingerprint_project(reformatted).source_sha256 == original.source_sha256
    assert fingerprint_project(renamed).source_sha256 != original.source_sha256


def test_split_files_resolve_to_the_same_program() -> None:
    merged = obfuscate(corpus()["gru_residual"], 0, transforms=("merge",))
    assert set(merged.files) == {"model.py"}
    assert fingerprint_project(merged).normalized_sha256 == corpus_fingerprints()["gru_residual"].normalized_sha256


def test_entrypoint_from_config_is_used() -> None:
    text = corpus()["char_cnn"].files["model.py"]
    fp = fingerprint_project(Project({"net.py": text, "model.py": "x = 1\n"}, ProjectConfig(entrypoint="net.py")))
    assert fp.regions[0].name == "build_model" and fp.regions[0].path == "net.py"


def test_regions_point_at_the_submitted_lines() -> None:
    fp = corpus_fingerprints()["gpt_mini"]
    text = corpus()["gpt_mini"].files["model.py"].splitlines()
    region = next(r for r in fp.regions if r.name == "MLP")
    assert text[region.line - 1].startswith("class MLP")
    located = [fp.locate(h) for h in fp.hashes]
    assert all(loc is not None for loc in located)
    assert fp.locate(12345) is None


def test_unparsable_python_is_a_typed_error_with_evidence() -> None:
    with pytest.raises(FingerprintError) as info:
        fingerprint_files({"model.py": "def build_model(ctx):\n    return (\n"}, "model.py")
    assert info.value.evidence.rule_id == "similarity.unparsable"
    assert info.value.evidence.path == "model.py"


def test_blob_round_trip_and_corruption() -> None:
    fp = corpus_fingerprints()["moe_switch"]
    assert SourceFingerprint.from_blob(fp.to_blob()) == fp
    with pytest.raises(SimilarityError):
        SourceFingerprint.from_blob(b"\x01\x00")
    with pytest.raises(SimilarityError):
        SourceFingerprint.from_blob(fp.to_blob()[:-3])  # a truncated packed tail
    with pytest.raises(SimilarityError):
        SourceFingerprint.from_blob(fp.to_blob() + b"\x00")


def _first_layout(fp: SourceFingerprint) -> bytes:
    """The blob as stored before the packed tail: every MinHash value and band key in the JSON."""
    header = json.dumps(
        {
            "version": fp.version,
            "source_sha256": fp.source_sha256,
            "normalized_sha256": fp.normalized_sha256,
            "architecture_sha256": fp.architecture_sha256,
            "training_sha256": fp.training_sha256,
            "regions": [[r.kind, r.name, r.path, r.line, r.end_line, r.snippet_sha256] for r in fp.regions],
            "minhash": list(fp.minhash),
            "band_keys": list(fp.band_keys),
        },
        separators=(",", ":"),
    ).encode("utf-8")
    columns = [
        array(code, values).tobytes()
        for code, values in (("Q", fp.hashes), ("I", fp.hash_regions), ("I", fp.hash_lines))
    ]
    return b"".join([struct.pack("<II", len(header), len(fp.hashes)), header, *columns])


def test_blobs_stored_in_the_first_layout_still_decode() -> None:
    """Rows written before the packed tail are read as they are (same FINGERPRINT_VERSION)."""
    for fp in corpus_fingerprints().values():
        old = _first_layout(fp)
        assert SourceFingerprint.from_blob(old) == fp
        assert len(fp.to_blob()) < len(old)


def test_an_empty_minhash_keeps_the_json_layout() -> None:
    """A fingerprint with no values has a MinHash past 64 bits: it is stored in JSON, unpacked."""
    empty = assemble_fingerprint(
        regions=(),
        region_hashes=[],
        source_sha256="s",
        normalized_sha256="n",
        architecture_sha256="a",
        training_sha256="t",
    )
    assert any(v >= 1 << 64 for v in empty.minhash)
    assert SourceFingerprint.from_blob(empty.to_blob()) == empty


def test_band_keys_fit_a_signed_bigint() -> None:
    for fp in corpus_fingerprints().values():
        assert fp.band_keys and all(-(2**63) <= k < 2**63 for k in fp.band_keys)
        assert list(fp.band_keys) == sorted(set(fp.band_keys))


def test_fingerprints_are_identical_in_another_process() -> None:
    names = ["gpt_mini", "gru_residual", "wavenet"]
    script = (
        "import json, sys\n"
        "from tests.review.similarity_support import corpus_fingerprints\n"
        f"fps = corpus_fingerprints()\n"
        f"print(json.dumps({{n: fps[n].to_blob().hex() for n in {names!r}}}))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120
    )
    theirs = json.loads(out.stdout)
    for name in names:
        assert theirs[name] == corpus_fingerprints()[name].to_blob().hex()


def test_independent_models_share_little() -> None:
    fps = corpus_fingerprints()
    worst = max(containment(fps[a].hash_set(), fps[b].hash_set()) for a in fps for b in fps if a != b)
    assert worst < 0.4
