from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from prism.cli import app
from prism.evaluation.data import load_locked_dataset


def test_data_build_locks_a_folder(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(30):
        (src / f"{i}.txt").write_text(f"text number {i} " * 20)
    result = CliRunner().invoke(app, ["data", "build", str(src), str(tmp_path / "out"), "--license", "CC0-1.0"])
    assert result.exit_code == 0, result.output
    dataset = load_locked_dataset(tmp_path / "out")
    assert f"fingerprint: {dataset.fingerprint}" in result.output
    again = CliRunner().invoke(app, ["data", "build", str(src), str(tmp_path / "out")])
    assert again.exit_code == 2 and "not empty" in again.output


def test_evaluate_refuses_an_unknown_mode(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path), "--mode", "turbo"])
    assert result.exit_code != 0


def test_unreviewed_runs_are_never_official(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text("def build_model(ctx):\n    return None\n")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path), "--unreviewed", "--mode", "official"])
    assert result.exit_code == 2
    assert "never official" in result.output
