"""`prism review PATH [--json]`: decision, findings, exit status 0 / 3 / 2."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from prism.cli import app

BENIGN = Path(__file__).resolve().parents[2] / "redteam" / "benign" / "tiny_bigram"
runner = CliRunner()


def test_accepts_a_benign_directory() -> None:
    result = runner.invoke(app, ["review", str(BENIGN)])
    assert result.exit_code == 0, result.output
    assert "decision: accept" in result.output


def test_rejects_a_hostile_py_with_json(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("import os\n\ndef build_model(ctx):\n    return eval('1')\n")
    result = runner.invoke(app, ["review", str(path), "--json"])
    assert result.exit_code == 3
    payload = json.loads(result.stdout)
    assert payload["decision"] == "reject"
    assert {f["rule_id"] for f in payload["findings"]} == {"static.import.forbidden", "static.name.forbidden"}
    assert set(payload["findings"][0]) == {"rule_id", "path", "line", "snippet_sha256", "explanation"}


def test_hostile_archive_is_a_rejection_not_an_error(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("model.py", "def build_model(ctx):\n    return None\n")
        zf.writestr("../../evil.py", "x = 1\n")
    path = tmp_path / "s.zip"
    path.write_bytes(buffer.getvalue())
    result = runner.invoke(app, ["review", str(path), "--json"])
    assert result.exit_code == 3
    assert json.loads(result.stdout)["findings"][0]["rule_id"] == "archive.path_traversal"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["review"]).exit_code == 2
    assert runner.invoke(app, ["review", str(tmp_path / "missing.zip")]).exit_code == 2
