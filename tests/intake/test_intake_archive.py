"""Intake of well-formed uploads, the limits' wiring, and the directory door."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from prism.config import Settings
from prism.intake.archive import read_project
from prism.intake.directory import read_directory
from prism.intake.errors import IntakeRejected
from prism.intake.limits import IntakeLimits
from prism.intake.project_yaml import parse_project_config

MODEL = "def build_model(ctx):\n    return None\n"


def zip_of(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_zip_becomes_project_with_config() -> None:
    data = zip_of(
        {
            "prism.yaml": "entrypoint: src/main.py\nname: demo\nhelpers: [src/util.py]\n"
            "claims: {params: 12, ok: true}\n",
            "src/main.py": MODEL,
            "src/util.py": "X = 1\n",
            "src/": b"",
            "README.md": "# hi\n",
        }
    )
    project = read_project(data, "upload.zip", limits=IntakeLimits())
    assert set(project.files) == {"prism.yaml", "src/main.py", "src/util.py", "README.md"}
    assert project.entrypoint == "src/main.py"
    assert project.config.helpers == ("src/util.py",)
    assert dict(project.config.claims) == {"params": 12, "ok": True}


def test_a_zipped_project_folder_is_that_project() -> None:
    data = zip_of({"proj/": b"", "proj/model.py": MODEL, "proj/prism.yaml": "name: p\n", "proj/lib/x.py": "X = 1\n"})
    project = read_project(data, "upload.zip", limits=IntakeLimits())
    assert set(project.files) == {"model.py", "prism.yaml", "lib/x.py"}
    assert project.config.name == "p"


def test_two_top_level_folders_keep_their_paths() -> None:
    data = zip_of({"a/model.py": MODEL, "b/util.py": "X = 1\n"})
    with pytest.raises(IntakeRejected) as caught:
        read_project(data, "upload.zip", limits=IntakeLimits())
    assert caught.value.reason_code == "project.entrypoint_missing"


def test_single_py_is_model_py_and_bom_is_dropped() -> None:
    project = read_project(b"\xef\xbb\xbf" + MODEL.encode(), "anything.py", limits=IntakeLimits())
    assert dict(project.files) == {"model.py": MODEL}


def test_limits_from_settings_follow_settings() -> None:
    settings = Settings(max_files=7, max_file_bytes=1000, max_total_bytes=5000, max_path_depth=3, max_body_bytes=4096)
    limits = IntakeLimits.from_settings(settings)
    assert (limits.max_files, limits.max_file_bytes, limits.max_total_bytes) == (7, 1000, 5000)
    assert (limits.max_path_depth, limits.max_archive_bytes) == (3, 4096)
    with pytest.raises(IntakeRejected) as caught:
        read_project(zip_of({"model.py": MODEL, "a/b/c/d.py": "x = 1\n"}), "u.zip", limits=limits)
    assert caught.value.reason_code == "archive.path_too_deep"


def test_ratio_counted_while_inflating_not_from_header() -> None:
    """A small declared size passes the header check; the real inflation is refused while reading."""
    limits = IntakeLimits(max_compression_ratio=50.0, ratio_floor_bytes=1024)
    data = zip_of({"model.py": MODEL, "notes.txt": "\n" * 200_000})
    with pytest.raises(IntakeRejected) as caught:
        read_project(data, "u.zip", limits=limits)
    assert caught.value.reason_code == "archive.compression_ratio"


def test_yaml_defaults_and_rejections() -> None:
    limits = IntakeLimits()
    assert parse_project_config("", limits=limits).entrypoint == "model.py"
    for text, code in [
        ("- a\n- b\n", "project.config_invalid"),
        ("entrypoint: model.txt\n", "project.config_invalid"),
        ("claims: {a: [1, 2]}\n", "project.config_invalid"),
        ("name: '../../x'\n", "project.config_invalid"),
        ("x" * 70_000, "project.config_too_large"),
    ]:
        with pytest.raises(IntakeRejected) as caught:
            parse_project_config(text, limits=limits)
        assert caught.value.reason_code == code, text[:40]


def test_directory_reads_project_and_refuses_symlinks(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "util.py").write_text("X = 1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\x00\x01")
    project = read_directory(tmp_path, limits=IntakeLimits())
    assert set(project.files) == {"model.py", "pkg/util.py"}
    os.symlink("/etc/passwd", tmp_path / "pkg" / "leak.txt")
    with pytest.raises(IntakeRejected) as caught:
        read_directory(tmp_path, limits=IntakeLimits())
    assert caught.value.reason_code == "archive.symlink"


def test_directory_applies_suffix_and_size_rules(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "weights.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(IntakeRejected) as caught:
        read_directory(tmp_path, limits=IntakeLimits())
    assert caught.value.reason_code == "archive.unsupported_suffix"
    (tmp_path / "weights.bin").unlink()
    (tmp_path / "big.txt").write_text("x" * 2000)
    with pytest.raises(IntakeRejected) as caught:
        read_directory(tmp_path, limits=IntakeLimits(max_file_bytes=1000))
    assert caught.value.reason_code == "archive.file_too_large"


def test_rejection_carries_evidence_and_is_a_prism_error() -> None:
    from prism.errors import PrismError

    with pytest.raises(PrismError) as caught:
        read_project(zip_of({"model.py": MODEL, "../x.py": "x"}), "u.zip", limits=IntakeLimits())
    assert isinstance(caught.value, IntakeRejected)
    evidence = caught.value.evidence[0]
    assert evidence.rule_id == "archive.path_traversal" and evidence.explanation
